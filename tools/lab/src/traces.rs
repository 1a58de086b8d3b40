//! Reading a trace back from the query API, as the checks need it: whole
//! (the trace tool's check), plus what a check asks on top (the machine each
//! span ran on, the spans of an operation), waited for until it holds.

use std::time::Duration;

use autobot_trace::model::{Span, Trace};
use autobot_trace::{JaegerClient, TraceId, check_trace};

/// A tag of a span, as text.
pub fn tag(span: &Span, key: &str) -> Option<String> {
    span.tag(key).map(|t| t.text())
}

/// `host.name` of the process (resource) a span came from.
pub fn host_of<'a>(trace: &'a Trace, span: &'a Span) -> Option<&'a str> {
    trace
        .processes
        .get(&span.process_id)
        .or(span.process.as_ref())
        .and_then(|p| p.tags.iter().find(|t| t.key == "host.name"))
        .and_then(|t| t.value.as_str())
}

pub fn spans_named<'a>(trace: &'a Trace, operation: &str) -> Vec<&'a Span> {
    trace
        .spans
        .iter()
        .filter(|s| s.operation_name == operation)
        .collect()
}

pub fn is_error(span: &Span) -> bool {
    tag(span, "otel.status_code").as_deref() == Some("ERROR")
}

/// Spans of `service` whose `host.name` is not `host` (or missing).
pub fn host_problems(trace: &Trace, service: &str, host: &str) -> Vec<String> {
    let spans: Vec<&Span> = trace
        .spans
        .iter()
        .filter(|s| trace.service_of(s) == service)
        .collect();
    if spans.is_empty() {
        return vec![format!("no span of {service}")];
    }
    spans
        .iter()
        .filter(|s| host_of(trace, s) != Some(host))
        .map(|s| {
            format!(
                "{service} span {} ({}) has host.name {:?}, expected {host}",
                s.span_id,
                s.operation_name,
                host_of(trace, s)
            )
        })
        .collect()
}

/// Polls the query API until the trace is whole with `services` and `more`
/// has no complaint, or `within` passes; then the last problems.
/// `caller`: the span id of the `traceparent` the request was sent with
/// (a parent that is never exported), if any.
pub async fn wait_whole(
    query: &JaegerClient,
    id: &str,
    caller: Option<&str>,
    services: &[&str],
    within: Duration,
    more: impl Fn(&Trace) -> Vec<String>,
) -> Result<Trace, Vec<String>> {
    let id = TraceId::parse(id).map_err(|e| vec![format!("trace id {id:?}: {e}")])?;
    let services: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    let remote: Vec<String> = caller.map(str::to_owned).into_iter().collect();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let problems = match query.trace(id).await {
            Ok(Some(trace)) => {
                let mut problems: Vec<String> = check_trace(&trace, &services, &remote)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                if problems.is_empty() {
                    problems = more(&trace);
                }
                if problems.is_empty() {
                    return Ok(trace);
                }
                problems
            }
            Ok(None) => vec![format!("trace {} not found", id.jaeger())],
            Err(e) => vec![format!("query API: {e}")],
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(problems);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The trace as `autobot-trace show` prints it.
pub fn render(trace: &Trace) -> String {
    autobot_trace::show::render(trace)
}

/// A request's own caller: a sampled `traceparent` with a fresh trace id, so
/// that the trace id is known before the answer comes (and every service
/// keeps the trace).
pub struct Caller {
    pub trace_id: String,
    /// The caller's span id: the parent of the backend's span, never exported.
    pub span_id: String,
    pub traceparent: String,
}

pub fn new_caller() -> Caller {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 3];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        *w = h.finish() | 1;
    }
    let trace_id = format!("{:016x}{:016x}", words[0], words[1]);
    let span_id = format!("{:016x}", words[2]);
    Caller {
        traceparent: format!("00-{trace_id}-{span_id}-01"),
        trace_id,
        span_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trace() -> Trace {
        serde_json::from_value(json!({
            "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
            "spans": [
                {"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "0000000000000001",
                 "flags": 1, "operationName": "POST /api/research", "references": [],
                 "startTime": 1, "duration": 10, "tags": [], "logs": [], "processID": "p1"},
                {"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "0000000000000002",
                 "flags": 1, "operationName": "pki.install",
                 "references": [{"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "0000000000000001"}],
                 "startTime": 2, "duration": 5,
                 "tags": [{"key": "otel.status_code", "type": "string", "value": "ERROR"}],
                 "logs": [], "processID": "p2"}
            ],
            "processes": {
                "p1": {"serviceName": "autobot-backend", "tags": [{"key": "host.name", "type": "string", "value": "autobot-main"}]},
                "p2": {"serviceName": "autobot-pki-agent", "tags": [{"key": "host.name", "type": "string", "value": "autobot-browser"}]}
            }
        }))
        .unwrap()
    }

    #[test]
    fn host_names_come_from_the_process() {
        let t = trace();
        assert_eq!(host_of(&t, &t.spans[1]), Some("autobot-browser"));
        assert!(host_problems(&t, "autobot-backend", "autobot-main").is_empty());
        let wrong = host_problems(&t, "autobot-pki-agent", "autobot-main");
        assert_eq!(wrong.len(), 1);
        assert!(wrong[0].contains("autobot-browser"), "{wrong:?}");
        assert_eq!(
            host_problems(&t, "autobot-ai-stack", "x"),
            vec!["no span of autobot-ai-stack"]
        );
    }

    #[test]
    fn spans_by_name_and_status() {
        let t = trace();
        let installs = spans_named(&t, "pki.install");
        assert_eq!(installs.len(), 1);
        assert!(is_error(installs[0]));
        assert!(!is_error(&t.spans[0]));
    }

    #[test]
    fn callers_are_sampled_and_fresh() {
        let c = new_caller();
        assert_eq!(c.trace_id.len(), 32);
        assert_eq!(c.span_id.len(), 16);
        assert_eq!(c.traceparent, format!("00-{}-{}-01", c.trace_id, c.span_id));
        assert_ne!(new_caller().trace_id, c.trace_id);
    }
}
