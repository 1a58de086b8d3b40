//! Traces as the tests read them: Jaeger's JSON from the trace tool (or a
//! real Jaeger) parsed into `autobot_trace::model`, checked for wholeness
//! with `autobot_trace::check_trace`, and each span flattened into a
//! [`Span`] that assertions read easily.

use std::collections::BTreeMap;

pub use autobot_trace::model::Trace;
use serde_json::Value;

/// The caller of the services' tests: a trace id and span id a test sends in
/// `traceparent` and expects to see continued.
pub const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// `00-CALLER_TRACE-CALLER_SPAN-01`: a sampled caller.
pub fn caller_traceparent() -> String {
    format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")
}

/// The trace id of a response's `traceresponse` header (W3C Trace Context
/// Level 2); panics when there is none.
pub fn traceresponse_trace_id(response: &reqwest::Response) -> String {
    let value = response
        .headers()
        .get("traceresponse")
        .expect("a traceresponse header")
        .to_str()
        .expect("an ASCII traceresponse");
    value
        .split('-')
        .nth(1)
        .unwrap_or_else(|| panic!("malformed traceresponse {value:?}"))
        .to_owned()
}

/// The OpenTelemetry span kind, from Jaeger's `span.kind` tag (absent: internal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// The span status, from Jaeger's `otel.status_code` tag (absent: unset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Unset,
    Ok,
    Error,
}

/// A span event (Jaeger: a log; its `event` field is the name).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: String,
    pub attributes: BTreeMap<String, Value>,
}

/// One span, flattened: its process's service and host resolved, Jaeger's
/// own tags for kind, status and scope turned back into fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// The CHILD_OF reference; None for a root.
    pub parent: Option<String>,
    /// FOLLOWS_FROM references: (trace id, span id).
    pub links: Vec<(String, String)>,
    pub name: String,
    pub service: String,
    /// `host.name` of the process that sent it ("" when absent).
    pub host: String,
    pub kind: Kind,
    /// The span's attributes (an int64 Jaeger sent as a string is a number again).
    pub attributes: BTreeMap<String, Value>,
    pub status: Status,
    pub status_message: String,
    pub events: Vec<Event>,
    /// Microseconds since the Unix epoch.
    pub start_us: u64,
    pub end_us: u64,
}

/// Tags Jaeger makes from fields of the OTLP span, not from its attributes.
const JAEGER_OWN_TAGS: [&str; 6] = [
    "span.kind",
    "otel.status_code",
    "otel.status_description",
    "error",
    "otel.scope.name",
    "otel.scope.version",
];

fn value_of(kv: &autobot_trace::model::KeyValue) -> Value {
    match &kv.value {
        // Jaeger sends an int64 beyond ±2^53 as a string.
        Value::String(s) if kv.value_type == "int64" => s
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(kv.value.clone()),
        other => other.clone(),
    }
}

fn fields(list: &[autobot_trace::model::KeyValue]) -> BTreeMap<String, Value> {
    list.iter()
        .map(|kv| (kv.key.clone(), value_of(kv)))
        .collect()
}

impl Span {
    /// `span` of `trace`, flattened.
    pub fn from_model(trace: &Trace, span: &autobot_trace::model::Span) -> Self {
        use autobot_trace::model::RefType;
        let mut attributes = fields(&span.tags);
        let text = |v: Option<Value>| v.map(|v| text_of(&v)).unwrap_or_default();
        let kind = match text(attributes.remove("span.kind")).as_str() {
            "server" => Kind::Server,
            "client" => Kind::Client,
            "producer" => Kind::Producer,
            "consumer" => Kind::Consumer,
            _ => Kind::Internal,
        };
        let status = match text(attributes.remove("otel.status_code")).as_str() {
            "ERROR" => Status::Error,
            "OK" => Status::Ok,
            _ => Status::Unset,
        };
        let status_message = text(attributes.remove("otel.status_description"));
        for own in JAEGER_OWN_TAGS {
            attributes.remove(own);
        }
        let process = trace
            .processes
            .get(&span.process_id)
            .or(span.process.as_ref());
        Self {
            trace_id: span.trace_id.clone(),
            span_id: span.span_id.clone(),
            parent: span.parent_span_id().map(str::to_owned),
            links: span
                .references
                .iter()
                .filter(|r| r.ref_type == RefType::FollowsFrom)
                .map(|r| (r.trace_id.clone(), r.span_id.clone()))
                .collect(),
            name: span.operation_name.clone(),
            service: trace.service_of(span).to_owned(),
            host: process
                .and_then(|p| p.tags.iter().find(|t| t.key == "host.name"))
                .map(|t| t.text())
                .unwrap_or_default(),
            kind,
            attributes,
            status,
            status_message,
            events: span
                .logs
                .iter()
                .map(|log| {
                    let mut attributes = fields(&log.fields);
                    let name = text(attributes.remove("event"));
                    Event { name, attributes }
                })
                .collect(),
            start_us: span.start_time,
            end_us: span.end_time(),
        }
    }

    /// The attribute `key`; panics naming the span and what it has.
    pub fn attr(&self, key: &str) -> &Value {
        self.attributes.get(key).unwrap_or_else(|| {
            panic!(
                "span {} has no attribute {key}: {:?}",
                self.name, self.attributes
            )
        })
    }

    pub fn str_attr(&self, key: &str) -> &str {
        self.attr(key)
            .as_str()
            .unwrap_or_else(|| panic!("{key} of {} is not a string", self.name))
    }

    pub fn int_attr(&self, key: &str) -> i64 {
        self.attr(key).as_i64().unwrap_or_else(|| {
            panic!(
                "{key} of {} is not an integer: {:?}",
                self.name,
                self.attr(key)
            )
        })
    }

    /// The attribute as text (a string without quotes, a number as written),
    /// or None when the span does not have it.
    pub fn attr_text(&self, key: &str) -> Option<String> {
        self.attributes.get(key).map(text_of)
    }

    pub fn is_error(&self) -> bool {
        self.status == Status::Error
    }

    /// Everything a span says, as text: for "this secret appears nowhere".
    pub fn text(&self) -> String {
        format!(
            "{} {:?} {} {:?}",
            self.name, self.attributes, self.status_message, self.events
        )
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every span of `trace`, flattened.
pub fn spans(trace: &Trace) -> Vec<Span> {
    trace
        .spans
        .iter()
        .map(|s| Span::from_model(trace, s))
        .collect()
}

/// `service:name` of each span: what a failing assertion shows.
pub fn names(spans: &[Span]) -> Vec<String> {
    spans
        .iter()
        .map(|s| format!("{}:{}", s.service, s.name))
        .collect()
}

/// The one span called `name` (of `service`, unless it is ""); panics when
/// there is none or more than one.
pub fn one<'a>(spans: &'a [Span], service: &str, name: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == name && (service.is_empty() || s.service == service))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one span {service}:{name}, have {:?}",
        names(spans)
    );
    found[0]
}

/// The first span called `name` of `service`; panics listing what there is.
pub fn first<'a>(spans: &'a [Span], service: &str, name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name && s.service == service)
        .unwrap_or_else(|| panic!("no span {service}:{name} in {:#?}", names(spans)))
}

/// What keeps `trace` from being whole, in words; empty when it is whole.
///
/// Whole means what `autobot-trace check` means (`check_trace`: one root,
/// every parent present, every expected service present), and, with
/// `continues: Some(span_id)`, that the trace continues that caller's span
/// (the one parent allowed to be missing, and required).
pub fn problems(trace: &Trace, expected_services: &[&str], continues: Option<&str>) -> Vec<String> {
    let expected: Vec<String> = expected_services.iter().map(|s| (*s).to_owned()).collect();
    let remote: Vec<String> = continues.map(str::to_owned).into_iter().collect();
    let mut problems: Vec<String> = autobot_trace::check_trace(trace, &expected, &remote)
        .iter()
        .map(ToString::to_string)
        .collect();
    // check_trace allows the caller's span as a parent; here it is required:
    // a trace that started a root of its own did not continue the caller.
    if let Some(caller) = continues
        && !trace.spans.iter().any(|s| {
            s.parent_span_id()
                .is_some_and(|p| p.eq_ignore_ascii_case(caller))
        })
    {
        problems.push(format!("no span continues the caller's span {caller}"));
    }
    problems
}

/// The trace starts at a root of its own and is whole (see [`problems`]).
pub fn is_whole(trace: &Trace, expected_services: &[&str]) -> bool {
    problems(trace, expected_services, None).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trace(spans: Value) -> Trace {
        serde_json::from_value(json!({
            "traceID": "t1",
            "spans": spans,
            "processes": {
                "p1": {"serviceName": "front", "tags": [{"key": "host.name", "type": "string", "value": "vm-a"}]},
                "p2": {"serviceName": "back", "tags": []}
            }
        }))
        .unwrap()
    }

    fn span(id: &str, parent: Option<&str>, process: &str) -> Value {
        json!({
            "traceID": "t1", "spanID": id, "operationName": format!("op-{id}"),
            "references": parent.map(|p| vec![json!({"refType": "CHILD_OF", "traceID": "t1", "spanID": p})]).unwrap_or_default(),
            "startTime": 10, "duration": 5, "tags": [], "logs": [], "processID": process
        })
    }

    #[test]
    fn a_span_is_flattened_with_jaegers_own_tags_turned_into_fields() {
        let t = trace(json!([{
            "traceID": "t1", "spanID": "s2", "operationName": "POST /v1/chat",
            "references": [
                {"refType": "CHILD_OF", "traceID": "t1", "spanID": "s1"},
                {"refType": "FOLLOWS_FROM", "traceID": "t0", "spanID": "s0"}
            ],
            "startTime": 1000, "duration": 250,
            "tags": [
                {"key": "span.kind", "type": "string", "value": "server"},
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {"key": "otel.status_description", "type": "string", "value": "boom"},
                {"key": "error", "type": "bool", "value": true},
                {"key": "otel.scope.name", "type": "string", "value": "autobot"},
                {"key": "http.response.status_code", "type": "int64", "value": 502},
                {"key": "big", "type": "int64", "value": "9223372036854775000"},
                {"key": "url.path", "type": "string", "value": "/v1/chat"}
            ],
            "logs": [{"timestamp": 1100, "fields": [
                {"key": "event", "type": "string", "value": "exception"},
                {"key": "exception.message", "type": "string", "value": "boom"}
            ]}],
            "processID": "p1"
        }]));
        let s = &spans(&t)[0];
        assert_eq!((s.service.as_str(), s.host.as_str()), ("front", "vm-a"));
        assert_eq!(s.parent.as_deref(), Some("s1"));
        assert_eq!(s.links, vec![("t0".to_owned(), "s0".to_owned())]);
        assert_eq!(
            (s.kind, s.status, s.status_message.as_str()),
            (Kind::Server, Status::Error, "boom")
        );
        assert!(s.is_error());
        assert_eq!(
            s.attributes.keys().collect::<Vec<_>>(),
            ["big", "http.response.status_code", "url.path"]
        );
        assert_eq!(s.int_attr("http.response.status_code"), 502);
        assert_eq!(s.int_attr("big"), 9223372036854775000);
        assert_eq!(s.str_attr("url.path"), "/v1/chat");
        assert_eq!(
            s.attr_text("http.response.status_code").as_deref(),
            Some("502")
        );
        assert_eq!(s.attr_text("missing"), None);
        assert_eq!(s.events[0].name, "exception");
        assert_eq!(s.events[0].attributes["exception.message"], "boom");
        assert_eq!((s.start_us, s.end_us), (1000, 1250));
        assert!(s.text().contains("boom"));
    }

    #[test]
    fn a_whole_trace_has_no_problems_and_a_broken_one_says_why() {
        let whole = trace(json!([span("r", None, "p1"), span("c", Some("r"), "p2")]));
        assert!(is_whole(&whole, &["front", "back"]));
        assert_eq!(problems(&whole, &["front"], None), Vec::<String>::new());

        let missing = problems(&whole, &["front", "back", "side"], None);
        assert_eq!(missing, ["service side has no span in the trace"]);

        let orphan = trace(json!([
            span("r", None, "p1"),
            span("o", Some("gone"), "p2")
        ]));
        let found = problems(&orphan, &[], None);
        assert!(
            found.iter().any(|p| p.contains("orphan span o")),
            "{found:?}"
        );
    }

    #[test]
    fn a_continued_trace_must_start_under_the_callers_span() {
        let continued = trace(json!([
            span("s", Some("caller"), "p1"),
            span("c", Some("s"), "p2")
        ]));
        assert_eq!(
            problems(&continued, &["front", "back"], Some("caller")),
            Vec::<String>::new()
        );
        // Not a root of its own…
        let own_root = problems(&continued, &[], None);
        assert!(
            own_root.iter().any(|p| p.contains("orphan span s")),
            "{own_root:?}"
        );
        // …nor under another caller.
        assert!(!problems(&continued, &[], Some("other")).is_empty());
        // A root where a caller's span was expected.
        let rooted = trace(json!([span("r", None, "p1")]));
        assert_eq!(
            problems(&rooted, &[], Some("caller")),
            ["no span continues the caller's span caller"]
        );
    }

    #[test]
    fn one_and_first_find_spans_by_service_and_name() {
        let t = trace(json!([span("a", None, "p1"), span("b", Some("a"), "p2")]));
        let all = spans(&t);
        assert_eq!(one(&all, "", "op-b").span_id, "b");
        assert_eq!(one(&all, "back", "op-b").span_id, "b");
        assert_eq!(first(&all, "front", "op-a").span_id, "a");
        assert_eq!(names(&all), ["front:op-a", "back:op-b"]);
        let missing = std::panic::catch_unwind(|| one(&all, "front", "op-b").span_id.clone());
        assert!(missing.is_err());
    }
}
