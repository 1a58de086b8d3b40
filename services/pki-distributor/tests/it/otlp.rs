//! An OTLP/HTTP receiver inside the test process: the distributor and each
//! agent export to it over real HTTP (protobuf), and the test reads the
//! spans back. Stand-in until testkit::trace_tool (the shared trace tool)
//! is available.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message;

/// One received span, flattened.
#[derive(Clone, Debug)]
pub struct Span {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    /// 1 = INTERNAL, 3 = CLIENT (OTLP numbering).
    pub kind: i32,
    pub service: String,
    pub host: String,
    pub attributes: BTreeMap<String, String>,
    /// 2 = ERROR.
    pub status_code: i32,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Clone, Default)]
struct Store(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

pub struct Receiver {
    /// `http://127.0.0.1:PORT/v1/traces`: OTLP/HTTP protobuf.
    pub endpoint: String,
    store: Store,
}

async fn accept(State(store): State<Store>, body: Bytes) -> impl axum::response::IntoResponse {
    match ExportTraceServiceRequest::decode(body) {
        Ok(req) => {
            store.0.lock().unwrap().push(req);
            (
                axum::http::StatusCode::OK,
                [("content-type", "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }
        Err(_) => (
            axum::http::StatusCode::BAD_REQUEST,
            [("content-type", "application/x-protobuf")],
            Vec::new(),
        ),
    }
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Receiver {
    pub async fn start() -> Self {
        let store = Store::default();
        let app = axum::Router::new()
            .route("/v1/traces", post(accept))
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { endpoint, store }
    }

    pub fn spans(&self) -> Vec<Span> {
        let mut out = Vec::new();
        for req in self.store.0.lock().unwrap().iter() {
            for rs in &req.resource_spans {
                let resource = attrs(
                    rs.resource
                        .as_ref()
                        .map(|r| &r.attributes[..])
                        .unwrap_or(&[]),
                );
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        out.push(Span {
                            name: s.name.clone(),
                            trace_id: hex(&s.trace_id),
                            span_id: hex(&s.span_id),
                            parent_span_id: hex(&s.parent_span_id),
                            kind: s.kind,
                            service: resource.get("service.name").cloned().unwrap_or_default(),
                            host: resource.get("host.name").cloned().unwrap_or_default(),
                            attributes: attrs(&s.attributes),
                            status_code: s.status.as_ref().map(|st| st.code).unwrap_or(0),
                        });
                    }
                }
            }
        }
        out
    }

    /// Everything received, as JSON text (events and status messages included).
    pub fn dump(&self) -> String {
        self.store
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls until `done` holds for the spans received, or `within` ends.
    pub async fn wait_for(&self, within: Duration, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + within;
        loop {
            let spans = self.spans();
            if done(&spans) || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
