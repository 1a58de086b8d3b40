//! Where the services under test send their spans, and how the tests read
//! them back. Preferably the trace tool (`autobot-trace serve`, started by
//! autobot-testkit) in its own process: the services export to it over OTLP
//! and the tests read its Jaeger query API, as an operator reads Jaeger.
//! When the tool is not built (a lone `cargo nextest run -p …`; CI builds
//! every binary first), an OTLP/HTTP receiver inside the test process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autobot_testkit::trace_tool::TraceTool;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message;
use serde_json::Value;

/// A finished span as it arrived.
#[derive(Clone, Debug)]
pub struct Span {
    pub service: String,
    pub trace_id: String,
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

#[derive(Clone, Default)]
pub struct Store(Arc<Mutex<Vec<Span>>>);

pub enum Receiver {
    Tool(TraceTool),
    InProcess { addr: SocketAddr, store: Store },
}

impl Receiver {
    /// The trace tool when it is built, else the in-process receiver.
    pub async fn start() -> Self {
        if autobot_testkit::bins::workspace_bin("autobot-trace").is_ok() {
            return Self::Tool(TraceTool::start().started());
        }
        eprintln!("autobot-trace is not built: spans go to an in-process OTLP receiver");
        let store = Store::default();
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self::InProcess { addr, store }
    }

    /// The value for AUTOBOT_JAEGER_ENDPOINT (OTLP/HTTP).
    pub fn endpoint(&self) -> String {
        match self {
            Self::Tool(tool) => tool.otlp_http_endpoint(),
            Self::InProcess { addr, .. } => format!("http://{addr}/v1/traces"),
        }
    }

    /// An OTLP/gRPC endpoint when the receiver speaks gRPC (the trace tool does),
    /// else the OTLP/HTTP one.
    #[allow(dead_code)] // the backend's tests use it
    pub fn endpoint_grpc_or_http(&self) -> String {
        match self {
            Self::Tool(tool) => tool.otlp_grpc_endpoint(),
            Self::InProcess { .. } => self.endpoint(),
        }
    }

    /// Every span received, from every service.
    pub async fn spans(&self) -> Vec<Span> {
        match self {
            Self::InProcess { store, .. } => store.0.lock().unwrap().clone(),
            Self::Tool(tool) => {
                let base = tool.query_url();
                let services: Value = get_json(&format!("{base}/api/services")).await;
                let mut spans = Vec::new();
                for service in services["data"].as_array().into_iter().flatten() {
                    let service = service.as_str().unwrap_or_default();
                    let found: Value =
                        get_json(&format!("{base}/api/traces?service={service}&limit=10000")).await;
                    for trace in found["data"].as_array().into_iter().flatten() {
                        let id = trace["traceID"].as_str().unwrap_or_default().to_owned();
                        spans.extend(from_jaeger(&id, trace));
                    }
                }
                // A trace with several services is found once per service.
                spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
                spans.dedup_by(|a, b| a.span_id == b.span_id);
                spans
            }
        }
    }

    pub async fn trace(&self, trace_id: &str) -> Vec<Span> {
        match self {
            Self::InProcess { store, .. } => store
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect(),
            Self::Tool(tool) => {
                let url = format!("{}/api/traces/{trace_id}", tool.query_url());
                let response = reqwest::get(&url)
                    .await
                    .unwrap_or_else(|e| panic!("GET {url}: {e}"));
                if response.status() == reqwest::StatusCode::NOT_FOUND {
                    return Vec::new();
                }
                let body: Value = response
                    .error_for_status()
                    .unwrap_or_else(|e| panic!("GET {url}: {e}"))
                    .json()
                    .await
                    .unwrap_or_else(|e| panic!("GET {url}: {e}"));
                match body["data"].get(0) {
                    Some(trace) => from_jaeger(trace_id, trace),
                    None => Vec::new(),
                }
            }
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

async fn export(State(store): State<Store>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut spans = Vec::new();
    for rs in request.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref())
            .map(|v| value(v).as_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                spans.push(Span {
                    service: service.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name,
                    kind: s.kind,
                    attributes: s
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                kv.value.as_ref().map(value).unwrap_or(Value::Null),
                            )
                        })
                        .collect(),
                    status_code: s.status.as_ref().map(|st| st.code).unwrap_or(0),
                    status_message: s.status.map(|st| st.message).unwrap_or_default(),
                    events: s
                        .events
                        .into_iter()
                        .map(|e| {
                            let attrs = e
                                .attributes
                                .iter()
                                .map(|kv| {
                                    (
                                        kv.key.clone(),
                                        kv.value.as_ref().map(value).unwrap_or(Value::Null),
                                    )
                                })
                                .collect();
                            (e.name, attrs)
                        })
                        .collect(),
                });
            }
        }
    }
    store.0.lock().unwrap().extend(spans);
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

/// `TraceTool::start()` returned a `Result` at first and returns the tool
/// itself (panicking on failure) now; this takes either.
trait Started {
    fn started(self) -> TraceTool;
}

impl Started for TraceTool {
    fn started(self) -> TraceTool {
        self
    }
}

impl<E: std::fmt::Display> Started for Result<TraceTool, E> {
    fn started(self) -> TraceTool {
        self.unwrap_or_else(|e| panic!("autobot-trace serve did not start: {e}"))
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
fn from_jaeger(trace_id: &str, trace: &Value) -> Vec<Span> {
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
                trace_id: trace_id.to_owned(),
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Value::from(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::from(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(*d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(any_value::Value::KvlistValue(l)) => Value::Object(
            l.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map(value).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        ),
        Some(any_value::Value::BytesValue(b)) => Value::from(hex(b)),
        _ => Value::Null,
    }
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
