//! Where the services under test send their spans, and how the tests read
//! them back: the trace tool (`autobot-trace serve`, started by
//! autobot-testkit) in its own process. The services export to it over
//! OTLP — gRPC or HTTP, the real exporter — and the tests read traces from
//! its Jaeger query API, as an operator reads Jaeger.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use autobot_testkit::trace_tool::TraceTool;
use serde_json::Value;

/// A finished span as it arrived.
#[derive(Clone, Debug)]
pub struct Span {
    pub service: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// OTLP kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    pub attributes: HashMap<String, Value>,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: String,
    pub events: Vec<(String, HashMap<String, Value>)>,
}

pub const SERVER: i32 = 2;
pub const CLIENT: i32 = 3;
#[allow(dead_code)] // the backend's tests use it
pub const INTERNAL: i32 = 1;
pub const STATUS_ERROR: i32 = 2;

impl Span {
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

    /// Everything a span says, as text: for "this secret appears nowhere".
    pub fn text(&self) -> String {
        format!(
            "{} {:?} {} {:?}",
            self.name, self.attributes, self.status_message, self.events
        )
    }
}

pub struct Receiver {
    tool: TraceTool,
}

impl Receiver {
    pub async fn start() -> Self {
        Self {
            tool: TraceTool::start(),
        }
    }

    /// AUTOBOT_JAEGER_ENDPOINT for OTLP/HTTP.
    pub fn endpoint(&self) -> String {
        self.tool.otlp_http_endpoint()
    }

    /// AUTOBOT_JAEGER_ENDPOINT for OTLP/gRPC.
    #[allow(dead_code)] // the backend's tests use it
    pub fn endpoint_grpc(&self) -> String {
        self.tool.otlp_grpc_endpoint()
    }

    /// Every span stored, from every service.
    pub async fn spans(&self) -> Vec<Span> {
        let base = self.tool.query_url();
        let services = get_json(&format!("{base}/api/services")).await;
        let mut spans = Vec::new();
        for service in services["data"].as_array().into_iter().flatten() {
            let service = service.as_str().unwrap_or_default();
            let found = get_json(&format!("{base}/api/traces?service={service}&limit=10000")).await;
            for trace in found["data"].as_array().into_iter().flatten() {
                spans.extend(from_jaeger(trace));
            }
        }
        // A trace with several services is found once per service.
        spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
        spans.dedup_by(|a, b| a.span_id == b.span_id);
        spans
    }

    /// The spans of one trace stored so far.
    pub async fn trace(&self, trace_id: &str) -> Vec<Span> {
        match self.tool.trace(trace_id).await {
            Some(trace) => from_jaeger(&trace),
            None => Vec::new(),
        }
    }

    /// Polls until `done` holds for the spans of `trace_id` (bounded wait).
    pub async fn wait_trace(&self, trace_id: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.trace(trace_id).await;
            if done(&spans) {
                return spans;
            }
            if Instant::now() > deadline {
                panic!(
                    "trace {trace_id} incomplete after 15 s: {:#?}",
                    spans
                        .iter()
                        .map(|s| format!("{}:{}", s.service, s.name))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A trace in Jaeger's JSON (`data[0]` of `/api/traces/{id}`) as spans.
fn from_jaeger(trace: &Value) -> Vec<Span> {
    let service_of = |pid: &str| {
        trace["processes"][pid]["serviceName"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let fields = |list: &Value| -> HashMap<String, Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|kv| {
                let key = kv["key"].as_str().unwrap_or_default().to_owned();
                let value = match (&kv["type"], &kv["value"]) {
                    // Jaeger sends integers beyond 2^53 as strings.
                    (t, Value::String(s)) if t == "int64" => s
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or(Value::String(s.clone())),
                    (_, v) => v.clone(),
                };
                (key, value)
            })
            .collect()
    };
    trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let mut attributes = fields(&s["tags"]);
            let kind = match attributes
                .remove("span.kind")
                .as_ref()
                .and_then(Value::as_str)
            {
                Some("server") => SERVER,
                Some("client") => CLIENT,
                Some("producer") => 4,
                Some("consumer") => 5,
                _ => 1,
            };
            let status_code = match attributes
                .remove("otel.status_code")
                .as_ref()
                .and_then(Value::as_str)
            {
                Some("ERROR") => STATUS_ERROR,
                Some("OK") => 1,
                _ => 0,
            };
            let status_message = attributes
                .remove("otel.status_description")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            for synthetic in ["error", "otel.scope.name", "otel.scope.version"] {
                attributes.remove(synthetic);
            }
            let parent_span_id = s["references"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["refType"] == "CHILD_OF")
                .and_then(|r| r["spanID"].as_str())
                .unwrap_or_default()
                .to_owned();
            let events = s["logs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|log| {
                    let mut f = fields(&log["fields"]);
                    let name = f
                        .remove("event")
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    (name, f)
                })
                .collect();
            Span {
                service: service_of(s["processID"].as_str().unwrap_or_default()),
                span_id: s["spanID"].as_str().unwrap_or_default().to_owned(),
                parent_span_id,
                name: s["operationName"].as_str().unwrap_or_default().to_owned(),
                kind,
                attributes,
                status_code,
                status_message,
                events,
            }
        })
        .collect()
}

/// The one span called `name` (of `service`, when given).
pub fn one<'a>(spans: &'a [Span], service: &str, name: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == name && (service.is_empty() || s.service == service))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one span {service}:{name}, have {:?}",
        spans
            .iter()
            .map(|s| format!("{}:{}", s.service, s.name))
            .collect::<Vec<_>>()
    );
    found[0]
}
