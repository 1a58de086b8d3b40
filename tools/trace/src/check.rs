//! Is a trace whole? Exactly one root (or exactly one span continuing a
//! remote parent), every parent present, every expected service present.

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
    /// A span whose parent is not in the trace (and it is not the one allowed remote parent).
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
                "no root span: every span has a parent that is not in the trace"
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

fn describe(trace: &Trace, span: &crate::model::Span) -> String {
    format!(
        "{} ({} {})",
        span.span_id,
        trace.service_of(span),
        span.operation_name
    )
}

/// Checks a trace; an empty list means it is whole.
pub fn check_trace(trace: &Trace, expected_services: &[String]) -> Vec<Problem> {
    let ids: HashSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut roots = Vec::new();
    let mut orphans = Vec::new();
    for span in &trace.spans {
        match span.parent_span_id() {
            None => roots.push(span),
            Some(parent) if !ids.contains(parent) => orphans.push((span, parent)),
            Some(_) => {}
        }
    }
    let mut problems = Vec::new();
    match (roots.len(), orphans.len()) {
        // A whole trace, or one that continues a single remote parent.
        (1, 0) | (0, 1) => {}
        (0, 0) => problems.push(Problem::NoRoot),
        (r, _) => {
            if r > 1 {
                problems.push(Problem::SeveralRoots(
                    roots.iter().map(|s| describe(trace, s)).collect(),
                ));
            }
            problems.extend(orphans.iter().map(|(s, parent)| Problem::Orphan {
                span: describe(trace, s),
                parent: (*parent).to_owned(),
            }));
        }
    }
    let present: BTreeSet<&str> = trace.spans.iter().map(|s| trace.service_of(s)).collect();
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

/// How often to ask, as Jaeger's own all-in-one test does (every second).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Polls until the trace is there and whole, or `wait` passes; the verdict
/// is that of the last answer (spans of a trace arrive from several
/// services at different times, so an early incomplete answer is not final).
pub async fn wait_and_check(
    client: &JaegerClient,
    id: TraceId,
    expected_services: &[String],
    wait: Duration,
    interval: Duration,
) -> CheckOutcome {
    let deadline = tokio::time::Instant::now() + wait;
    let mut last: Option<CheckOutcome> = None;
    loop {
        let outcome = match client.trace(id).await {
            Ok(Some(trace)) => {
                let problems = check_trace(&trace, expected_services);
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
        assert_eq!(check_trace(&t, &services(&["a", "b"])), vec![]);
    }

    #[test]
    fn one_remote_parent_is_allowed() {
        let t = trace(vec![
            span("s", Some("remote"), "p1"),
            span("c", Some("s"), "p2"),
        ]);
        assert_eq!(check_trace(&t, &services(&["a"])), vec![]);
    }

    #[test]
    fn missing_service_orphan_and_two_roots_fail_with_reasons() {
        let t = trace(vec![span("r", None, "p1")]);
        assert_eq!(
            check_trace(&t, &services(&["a", "b"])),
            vec![Problem::MissingService("b".into())]
        );
        let t = trace(vec![span("r", None, "p1"), span("o", Some("gone"), "p2")]);
        let problems = check_trace(&t, &[]);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].to_string().contains("orphan span o (b op-o)"),
            "{problems:?}"
        );
        assert!(problems[0].to_string().contains("gone"));
        let t = trace(vec![span("r1", None, "p1"), span("r2", None, "p2")]);
        let problems = check_trace(&t, &[]);
        assert!(matches!(&problems[..], [Problem::SeveralRoots(r)] if r.len() == 2));
        let t = trace(vec![
            span("x", Some("gone1"), "p1"),
            span("y", Some("gone2"), "p2"),
        ]);
        assert_eq!(
            check_trace(&t, &[]).len(),
            2,
            "two orphans, no root: both reported"
        );
    }
}
