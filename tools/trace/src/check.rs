//! Is a trace whole? Exactly one root, every parent present, every expected
//! service present.
//!
//! Strict by default: a span whose parent never arrived makes the trace
//! incomplete, even when it is the only one (it may be the top of a trace
//! whose real root was lost). A trace that legitimately continues a caller
//! outside the system (a browser, a test that sends its own `traceparent`)
//! names that caller's span as a remote parent: a span whose parent is a
//! named remote parent counts as the trace's root.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use crate::client::{ClientError, JaegerClient};
use crate::model::Trace;
use crate::trace_id::TraceId;

/// One thing wrong with a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    NotFound,
    NoRoot,
    SeveralRoots(Vec<String>),
    /// A span whose parent is not in the trace and not a named remote parent.
    Orphan {
        span: String,
        parent: String,
    },
    MissingService(String),
    /// The query API answered, but not with a trace.
    QueryFailed(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => write!(f, "trace not found"),
            Self::NoRoot => write!(
                f,
                "no root span: every span has a parent, and none is a named remote parent"
            ),
            Self::SeveralRoots(roots) => {
                write!(
                    f,
                    "{} root spans, expected one: {}",
                    roots.len(),
                    roots.join(", ")
                )
            }
            Self::Orphan { span, parent } => {
                write!(
                    f,
                    "orphan span {span}: its parent {parent} is not in the trace"
                )
            }
            Self::MissingService(s) => write!(f, "service {s} has no span in the trace"),
            Self::QueryFailed(e) => write!(f, "query failed: {e}"),
        }
    }
}

/// What the check reads of one span: its id and its parent's (lower-case
/// hex), its service and operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedSpan<'a> {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub service: &'a str,
    pub operation: &'a str,
}

impl CheckedSpan<'_> {
    fn describe(&self) -> String {
        format!("{} ({} {})", self.span_id, self.service, self.operation)
    }
}

/// Checks a trace; an empty list means it is whole. `remote_parents`: span
/// ids (16 hex digits) of callers known not to be exported; a span whose
/// parent is one of them is a root, any other missing parent is an orphan.
pub fn check_trace(
    trace: &Trace,
    expected_services: &[String],
    remote_parents: &[String],
) -> Vec<Problem> {
    let spans: Vec<CheckedSpan> = trace
        .spans
        .iter()
        .map(|s| CheckedSpan {
            span_id: s.span_id.to_ascii_lowercase(),
            parent_span_id: s.parent_span_id().map(str::to_ascii_lowercase),
            service: trace.service_of(s),
            operation: &s.operation_name,
        })
        .collect();
    check_spans(&spans, expected_services, remote_parents)
}

/// [`check_trace`] on the spans as the check reads them (in the order the
/// problems should name them: Jaeger's, by start time), for callers that
/// hold spans in another shape (the web UI's badges, `crate::ui`).
pub fn check_spans(
    spans: &[CheckedSpan],
    expected_services: &[String],
    remote_parents: &[String],
) -> Vec<Problem> {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let remote: HashSet<String> = remote_parents
        .iter()
        .map(|p| p.trim().to_ascii_lowercase())
        .collect();
    let mut roots = Vec::new();
    let mut orphans = Vec::new();
    for span in spans {
        match span.parent_span_id.as_deref() {
            None => roots.push(span),
            Some(parent) if ids.contains(parent) => {}
            Some(parent) if remote.contains(parent) => roots.push(span),
            Some(parent) => orphans.push((span, parent.to_owned())),
        }
    }
    let mut problems: Vec<Problem> = orphans
        .into_iter()
        .map(|(s, parent)| Problem::Orphan {
            span: s.describe(),
            parent,
        })
        .collect();
    match roots.len() {
        1 => {}
        0 => problems.push(Problem::NoRoot),
        _ => problems.push(Problem::SeveralRoots(
            roots.iter().map(|s| s.describe()).collect(),
        )),
    }
    let present: BTreeSet<&str> = spans.iter().map(|s| s.service).collect();
    problems.extend(
        expected_services
            .iter()
            .filter(|s| !present.contains(s.as_str()))
            .map(|s| Problem::MissingService(s.clone())),
    );
    problems
}

#[derive(Debug)]
pub enum CheckOutcome {
    Whole(Trace),
    Broken {
        trace: Option<Trace>,
        problems: Vec<Problem>,
    },
    /// The query API never answered.
    Unreachable(ClientError),
}

impl CheckOutcome {
    /// 0 whole, 1 broken or missing, 2 Jaeger unreachable.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Whole(_) => 0,
            Self::Broken { .. } => 1,
            Self::Unreachable(_) => 2,
        }
    }
}

/// What a whole trace must hold, besides one root and every parent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Services that must have a span.
    pub services: Vec<String>,
    /// Span ids of callers known not to be exported (see [`check_trace`]).
    pub remote_parents: Vec<String>,
}

/// Whether `text` is a span id (16 hex digits, not all zero).
pub fn is_span_id(text: &str) -> bool {
    text.len() == 16
        && text.bytes().all(|b| b.is_ascii_hexdigit())
        && text.bytes().any(|b| b != b'0')
}

/// How often to ask, as Jaeger's own all-in-one test does (every second).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Polls until the trace is there and whole, or `wait` passes; the verdict
/// is that of the last answer (spans of a trace arrive from several
/// services at different times, so an early incomplete answer is not final).
pub async fn wait_and_check(
    client: &JaegerClient,
    id: TraceId,
    expected: &Expected,
    wait: Duration,
    interval: Duration,
) -> CheckOutcome {
    let deadline = tokio::time::Instant::now() + wait;
    let mut last: Option<CheckOutcome> = None;
    loop {
        let outcome = match client.trace(id).await {
            Ok(Some(trace)) => {
                let problems = check_trace(&trace, &expected.services, &expected.remote_parents);
                if problems.is_empty() {
                    return CheckOutcome::Whole(trace);
                }
                CheckOutcome::Broken {
                    trace: Some(trace),
                    problems,
                }
            }
            Ok(None) => CheckOutcome::Broken {
                trace: None,
                problems: vec![Problem::NotFound],
            },
            Err(e) if e.is_unreachable() => match last {
                // Reached before: keep that verdict rather than a blip.
                Some(previous @ CheckOutcome::Broken { .. }) => previous,
                _ => CheckOutcome::Unreachable(e),
            },
            Err(e) => CheckOutcome::Broken {
                trace: None,
                problems: vec![Problem::QueryFailed(e.to_string())],
            },
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return outcome;
        }
        last = Some(outcome);
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Process, RefType, Reference, Span};

    fn span(id: &str, parent: Option<&str>, process: &str) -> Span {
        Span {
            trace_id: "1".into(),
            span_id: id.into(),
            flags: 0,
            operation_name: format!("op-{id}"),
            references: parent
                .map(|p| {
                    vec![Reference {
                        ref_type: RefType::ChildOf,
                        trace_id: "1".into(),
                        span_id: p.into(),
                    }]
                })
                .unwrap_or_default(),
            start_time: 0,
            duration: 1,
            tags: vec![],
            logs: vec![],
            process_id: process.into(),
            process: None,
            warnings: None,
        }
    }

    fn trace(spans: Vec<Span>) -> Trace {
        Trace {
            trace_id: "1".into(),
            spans,
            processes: [("p1", "a"), ("p2", "b")]
                .into_iter()
                .map(|(k, s)| {
                    (
                        k.to_owned(),
                        Process {
                            service_name: s.into(),
                            tags: vec![],
                        },
                    )
                })
                .collect(),
            warnings: None,
        }
    }

    fn services(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_whole_trace_passes() {
        let t = trace(vec![span("r", None, "p1"), span("c", Some("r"), "p2")]);
        assert_eq!(check_trace(&t, &services(&["a", "b"]), &[]), vec![]);
    }

    #[test]
    fn a_lone_orphan_fails_unless_its_parent_is_a_named_remote_parent() {
        let t = trace(vec![
            span("s", Some("00f067aa0ba902b7"), "p1"),
            span("c", Some("s"), "p2"),
        ]);
        let problems = check_trace(&t, &services(&["a"]), &[]);
        assert_eq!(
            problems,
            vec![
                Problem::Orphan {
                    span: "s (a op-s)".into(),
                    parent: "00f067aa0ba902b7".into()
                },
                Problem::NoRoot
            ]
        );
        assert_eq!(
            check_trace(&t, &services(&["a"]), &["00F067AA0BA902B7".into()]),
            vec![],
            "named (in any case) it is the root"
        );
        assert_eq!(
            check_trace(&t, &[], &["1111111111111111".into()]).len(),
            2,
            "another remote parent does not excuse it"
        );
        // A named remote parent and a true root: two roots.
        let t = trace(vec![
            span("r", None, "p1"),
            span("s", Some("00f067aa0ba902b7"), "p2"),
        ]);
        assert!(matches!(
            &check_trace(&t, &[], &["00f067aa0ba902b7".into()])[..],
            [Problem::SeveralRoots(r)] if r.len() == 2
        ));
    }

    #[test]
    fn span_ids_are_sixteen_hex_digits() {
        assert!(is_span_id("00f067aa0ba902b7"));
        for bad in [
            "",
            "0000000000000000",
            "00f067aa0ba902b",
            "xyz0000000000000",
            "00f067aa0ba902b71",
        ] {
            assert!(!is_span_id(bad), "{bad}");
        }
    }

    #[test]
    fn missing_service_orphan_and_two_roots_fail_with_reasons() {
        let t = trace(vec![span("r", None, "p1")]);
        assert_eq!(
            check_trace(&t, &services(&["a", "b"]), &[]),
            vec![Problem::MissingService("b".into())]
        );
        let t = trace(vec![span("r", None, "p1"), span("o", Some("gone"), "p2")]);
        let problems = check_trace(&t, &[], &[]);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].to_string().contains("orphan span o (b op-o)"),
            "{problems:?}"
        );
        assert!(problems[0].to_string().contains("gone"));
        let t = trace(vec![span("r1", None, "p1"), span("r2", None, "p2")]);
        let problems = check_trace(&t, &[], &[]);
        assert!(matches!(&problems[..], [Problem::SeveralRoots(r)] if r.len() == 2));
        let t = trace(vec![
            span("x", Some("gone1"), "p1"),
            span("y", Some("gone2"), "p2"),
        ]);
        assert_eq!(
            check_trace(&t, &[], &[]).len(),
            3,
            "two orphans, no root: each reported"
        );
    }
}
