//! Is a trace whole? The verdict the UI's badges show, by the same rules
//! and the same code as `autobot-trace check` ([`crate::check::check_spans`]):
//! one root, every parent present, every expected service present.

use serde_json::{Value, json};

use crate::check::{CheckedSpan, Problem, check_spans};
use crate::stored::StoredSpan;
use crate::trace_id::span_id_hex;

/// A badge: `whole`, `orphans`, `roots` (none or several) or
/// `missing-services`, with the words the UI shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Badge {
    pub kind: &'static str,
    pub text: String,
}

/// The check's problems for a trace, and the badges that sum them up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completeness {
    pub problems: Vec<Problem>,
    pub badges: Vec<Badge>,
}

impl Completeness {
    pub fn of(spans: &[StoredSpan], expected_services: &[String]) -> Self {
        // In Jaeger's order (by start), as `check` reads them.
        let mut ordered: Vec<&StoredSpan> = spans.iter().collect();
        ordered.sort_by_key(|s| s.span.start_time_unix_nano);
        let checked: Vec<CheckedSpan> = ordered
            .iter()
            .map(|s| CheckedSpan {
                span_id: span_id_hex(&s.span.span_id),
                parent_span_id: (!s.span.parent_span_id.is_empty())
                    .then(|| span_id_hex(&s.span.parent_span_id)),
                service: &s.service,
                operation: &s.span.name,
            })
            .collect();
        let problems = check_spans(&checked, expected_services, &[]);
        let badges = badges(&problems);
        Self { problems, badges }
    }

    pub fn is_whole(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "whole": self.is_whole(),
            "badges": self.badges,
            "problems": self.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn badges(problems: &[Problem]) -> Vec<Badge> {
    if problems.is_empty() {
        return vec![Badge {
            kind: "whole",
            text: "whole".into(),
        }];
    }
    let mut badges = Vec::new();
    let orphans = problems
        .iter()
        .filter(|p| matches!(p, Problem::Orphan { .. }))
        .count();
    if orphans > 0 {
        badges.push(Badge {
            kind: "orphans",
            text: plural(orphans, "orphan", "orphans"),
        });
    }
    for p in problems {
        match p {
            Problem::NoRoot => badges.push(Badge {
                kind: "roots",
                text: "no root".into(),
            }),
            Problem::SeveralRoots(roots) => badges.push(Badge {
                kind: "roots",
                text: plural(roots.len(), "root", "roots"),
            }),
            _ => {}
        }
    }
    let missing: Vec<&str> = problems
        .iter()
        .filter_map(|p| match p {
            Problem::MissingService(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        badges.push(Badge {
            kind: "missing-services",
            text: format!("missing {}", missing.join(", ")),
        });
    }
    badges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::test_spans::span;

    #[test]
    fn whole_orphans_roots_and_missing_services() {
        let whole = [span("a", 1, 0, 0, 10), span("b", 2, 1, 1, 5)];
        let c = Completeness::of(&whole, &["a".into(), "b".into()]);
        assert!(c.is_whole());
        assert_eq!(c.badges[0].kind, "whole");

        let c = Completeness::of(&whole, &["a".into(), "c".into()]);
        assert_eq!(c.badges.len(), 1);
        assert_eq!(c.badges[0].kind, "missing-services");
        assert_eq!(c.badges[0].text, "missing c");

        let orphaned = [
            span("a", 1, 0, 0, 10),
            span("b", 2, 7, 1, 5),
            span("b", 3, 8, 1, 5),
        ];
        let c = Completeness::of(&orphaned, &[]);
        assert_eq!(c.badges.len(), 1, "{:?}", c.badges);
        assert_eq!(
            (c.badges[0].kind, c.badges[0].text.as_str()),
            ("orphans", "2 orphans")
        );
        assert_eq!(c.problems.len(), 2);

        let two_roots = [span("a", 1, 0, 0, 10), span("b", 2, 0, 1, 5)];
        let c = Completeness::of(&two_roots, &[]);
        assert_eq!(
            (c.badges[0].kind, c.badges[0].text.as_str()),
            ("roots", "2 roots")
        );
        let v = c.to_json();
        assert_eq!(v["whole"], false);
        assert!(v["problems"][0].as_str().unwrap().contains("2 root spans"));
    }

    /// The badges' problems are `check`'s, word for word.
    #[test]
    fn the_same_verdict_as_check() {
        let spans = [
            span("a", 1, 0, 0, 10),
            span("b", 2, 7, 1, 5),
            span("c", 3, 0, 2, 5),
        ];
        let expected = vec!["a".to_owned(), "d".to_owned()];
        let trace = crate::jaeger::trace(crate::trace_id::TraceId(1), &spans);
        assert_eq!(
            Completeness::of(&spans, &expected).problems,
            crate::check::check_trace(&trace, &expected, &[])
        );
    }
}
