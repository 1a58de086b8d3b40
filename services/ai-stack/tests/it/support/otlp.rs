//! An OTLP/HTTP (protobuf) receiver on a free loopback port: the services
//! under test are separate processes that export their spans to it over the
//! real exporter, the way they export to Jaeger.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
struct Store(Arc<Mutex<Vec<Span>>>);

pub struct Receiver {
    addr: SocketAddr,
    store: Store,
}

impl Receiver {
    pub async fn start() -> Self {
        let store = Store::default();
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, store }
    }

    /// The value for AUTOBOT_JAEGER_ENDPOINT (OTLP/HTTP).
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    pub fn spans(&self) -> Vec<Span> {
        self.store.0.lock().unwrap().clone()
    }

    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// Polls until `done` holds for the spans of `trace_id` (bounded wait).
    pub async fn wait_trace(&self, trace_id: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.trace(trace_id);
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
