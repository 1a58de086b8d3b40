//! An OTLP trace receiver, over gRPC and over HTTP (`POST /v1/traces`,
//! protobuf or JSON), that hands every valid export request to a [`SpanSink`]
//! as a [`SpanBatch`] (the spans as received, checked and indexed, decoded
//! only when asked for). A malformed request is refused whole (gRPC
//! `InvalidArgument`, HTTP 400, with the reason) and nothing of it reaches
//! the sink.
//!
//! The trace tool's `serve` stores what it receives; tests use [`MemorySink`]
//! and the flat view of spans in [`FlatSpan`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autobot_tls::server::TlsListener;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod batch;
pub mod cors;
mod grpc;

pub use batch::{Refused, SpanBatch, SpanGroup, SpanMeta, service_name};
pub use cors::CorsPolicy;
pub use grpc::{GrpcTraceService, SERVICE_NAME};

/// Where received spans go: every span of a batch is valid.
pub trait SpanSink: Send + Sync + 'static {
    fn accept(&self, batch: SpanBatch);
}

/// Why an export request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidExport {
    #[error(
        "span {index} of scope {scope}: trace id must be 16 bytes, not all zero (got {len} bytes)"
    )]
    TraceId {
        scope: usize,
        index: usize,
        len: usize,
    },
    #[error(
        "span {index} of scope {scope}: span id must be 8 bytes, not all zero (got {len} bytes)"
    )]
    SpanId {
        scope: usize,
        index: usize,
        len: usize,
    },
    #[error(
        "span {index} of scope {scope}: parent span id must be empty or 8 bytes (got {len} bytes)"
    )]
    ParentSpanId {
        scope: usize,
        index: usize,
        len: usize,
    },
    #[error("span {index} of scope {scope}: a link has an invalid trace or span id")]
    Link { scope: usize, index: usize },
    #[error("span {index} of scope {scope}: it ends before it starts")]
    EndBeforeStart { scope: usize, index: usize },
    #[error("span {index} of scope {scope}: it has no name")]
    NoName { scope: usize, index: usize },
}

fn valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|b| *b != 0)
}

/// Checks every span of a request; the first problem refuses the whole request.
pub fn validate(request: &ExportTraceServiceRequest) -> Result<(), InvalidExport> {
    let mut scope = 0;
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for (index, s) in ss.spans.iter().enumerate() {
                if !valid_id(&s.trace_id, 16) {
                    return Err(InvalidExport::TraceId {
                        scope,
                        index,
                        len: s.trace_id.len(),
                    });
                }
                if !valid_id(&s.span_id, 8) {
                    return Err(InvalidExport::SpanId {
                        scope,
                        index,
                        len: s.span_id.len(),
                    });
                }
                if !(s.parent_span_id.is_empty() || s.parent_span_id.len() == 8) {
                    return Err(InvalidExport::ParentSpanId {
                        scope,
                        index,
                        len: s.parent_span_id.len(),
                    });
                }
                if s.links
                    .iter()
                    .any(|l| !valid_id(&l.trace_id, 16) || !valid_id(&l.span_id, 8))
                {
                    return Err(InvalidExport::Link { scope, index });
                }
                if s.end_time_unix_nano < s.start_time_unix_nano {
                    return Err(InvalidExport::EndBeforeStart { scope, index });
                }
                if s.name.is_empty() {
                    return Err(InvalidExport::NoName { scope, index });
                }
            }
            scope += 1;
        }
    }
    Ok(())
}

/// The gRPC service (`opentelemetry.proto.collector.trace.v1.TraceService`).
pub fn grpc_service(sink: Arc<dyn SpanSink>) -> GrpcTraceService {
    GrpcTraceService::new(sink)
}

/// The largest export body accepted, compressed or after decompression.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Decompresses a `Content-Encoding: gzip` body, refusing more than [`MAX_BODY_BYTES`].
fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(body)
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip body does not decompress: {e}"))?;
    if out.len() > MAX_BODY_BYTES {
        return Err(format!(
            "body larger than {MAX_BODY_BYTES} bytes once decompressed"
        ));
    }
    Ok(out)
}

/// How the HTTP receiver answers browsers.
#[derive(Clone, Debug, Default)]
pub struct HttpOptions {
    /// Origins of web pages that may send spans ([`cors`]); none by default.
    pub cors: CorsPolicy,
}

/// The HTTP router: `POST /v1/traces` with `application/x-protobuf` or `application/json`.
pub fn http_router(sink: Arc<dyn SpanSink>) -> axum::Router {
    http_router_with(sink, &HttpOptions::default())
}

/// The same, answering browsers as `options` says.
pub fn http_router_with(sink: Arc<dyn SpanSink>, options: &HttpOptions) -> axum::Router {
    axum::Router::new()
        .route("/v1/traces", axum::routing::post(http_export))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(options.cors.clone()),
            cors::layer,
        ))
        .with_state(sink)
}

fn refuse(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

async fn http_export(
    State(sink): State<Arc<dyn SpanSink>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let body: Vec<u8> = match encoding.as_str() {
        "" | "identity" => body.into(),
        "gzip" => match gunzip(&body) {
            Ok(b) => b,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
        },
        other => {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content encoding {other:?}: expected gzip or none"),
            );
        }
    };
    let (batch, json) = match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => (
            SpanBatch::from_protobuf(body).map_err(|e| e.to_string()),
            false,
        ),
        "application/json" => match serde_json::from_slice::<ExportTraceServiceRequest>(&body) {
            Ok(r) => (SpanBatch::from_request(r).map_err(|e| e.to_string()), true),
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("not an OTLP/JSON export request: {e}"),
                );
            }
        },
        other => {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type {other:?}: expected application/x-protobuf or application/json"
                ),
            );
        }
    };
    match batch {
        Ok(batch) => sink.accept(batch),
        Err(reason) => return refuse(StatusCode::BAD_REQUEST, reason),
    }
    let empty = ExportTraceServiceResponse {
        partial_success: None,
    };
    if json {
        ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            empty.encode_to_vec(),
        )
            .into_response()
    }
}

/// How long [`RunningReceiver::shutdown`] waits for open connections to go.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A receiver listening on both transports; stops when dropped or on
/// [`shutdown`](Self::shutdown).
pub struct RunningReceiver {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    stop: watch::Sender<()>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    /// `https` when both listeners serve TLS.
    scheme: &'static str,
}

impl RunningReceiver {
    /// `http://host:port` of the gRPC listener (what an exporter is given;
    /// `https://` with TLS).
    pub fn grpc_endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.grpc_addr)
    }
    /// `http://host:port/v1/traces` of the HTTP listener (`https://` with TLS).
    pub fn http_endpoint(&self) -> String {
        format!("{}://{}/v1/traces", self.scheme, self.http_addr)
    }

    /// Stops accepting, lets requests in flight finish, and returns when both
    /// servers have stopped. Exporters keep their connections open between
    /// exports, so after [`SHUTDOWN_GRACE`] the servers are stopped anyway.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(());
        for mut server in self.servers.drain(..) {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

/// Binds both listeners (port 0 picks a free port) and serves until dropped.
pub async fn start(
    sink: Arc<dyn SpanSink>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
) -> std::io::Result<RunningReceiver> {
    start_with(sink, grpc_addr, http_addr, HttpOptions::default(), None).await
}

/// TLS on both OTLP listeners, each with its own policy on client
/// certificates (exporters show one; a browser sending to OTLP/HTTP cannot).
#[derive(Clone, Debug)]
pub struct ReceiverTls {
    pub grpc: Arc<autobot_tls::server::ServerTls>,
    pub http: Arc<autobot_tls::server::ServerTls>,
}

/// [`start`] with the HTTP receiver's options, serving only TLS on both
/// listeners when `tls` is given: a client without a certificate the
/// configuration accepts fails at the handshake (how Jaeger's OTLP receivers
/// are set up with mutual TLS).
pub async fn start_with(
    sink: Arc<dyn SpanSink>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    http_options: HttpOptions,
    tls: Option<ReceiverTls>,
) -> std::io::Result<RunningReceiver> {
    let grpc_listener = TcpListener::bind(grpc_addr).await?;
    let http_listener = TcpListener::bind(http_addr).await?;
    let (grpc_addr, http_addr) = (grpc_listener.local_addr()?, http_listener.local_addr()?);
    // Both servers stop when the sender is dropped with the receiver handle.
    let (stop, stopped) = watch::channel(());
    let until_stopped = |mut rx: watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    if let Some(tls) = tls {
        // axum serves gRPC too (HTTP/2, negotiated by ALPN), over the TLS listener.
        let grpc_app = axum::Router::new().fallback_service(grpc_service(sink.clone()));
        let servers = [
            (TlsListener::new(grpc_listener, tls.grpc)?, grpc_app, "gRPC"),
            (
                TlsListener::new(http_listener, tls.http)?,
                http_router_with(sink, &http_options),
                "HTTP",
            ),
        ]
        .into_iter()
        .map(|(listener, app, transport)| {
            let server =
                axum::serve(listener, app).with_graceful_shutdown(until_stopped(stopped.clone()));
            tokio::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "OTLP {transport} receiver (TLS) stopped");
                }
            })
        })
        .collect();
        return Ok(RunningReceiver {
            grpc_addr,
            http_addr,
            stop,
            servers,
            scheme: "https",
        });
    }
    let grpc = tonic::transport::Server::builder()
        .add_service(grpc_service(sink.clone()))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            until_stopped(stopped.clone()),
        );
    let http = axum::serve(http_listener, http_router_with(sink, &http_options))
        .with_graceful_shutdown(until_stopped(stopped));
    let grpc = tokio::spawn(async move {
        if let Err(e) = grpc.await {
            tracing::error!(error = %e, "OTLP gRPC receiver stopped");
        }
    });
    let http = tokio::spawn(async move {
        if let Err(e) = http.await {
            tracing::error!(error = %e, "OTLP HTTP receiver stopped");
        }
    });
    Ok(RunningReceiver {
        grpc_addr,
        http_addr,
        stop,
        servers: vec![grpc, http],
        scheme: "http",
    })
}

/// A typed attribute value, flattened from OTLP's `AnyValue`.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// Arrays, maps and bytes, rendered as text.
    Other(String),
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Str(s) | Self::Other(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
        }
    }
}

impl AttrValue {
    pub fn from_any(value: Option<&AnyValue>) -> Self {
        match value.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => Self::Str(s.clone()),
            Some(any_value::Value::BoolValue(b)) => Self::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Self::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => Self::Double(*d),
            Some(other) => Self::Other(format!("{other:?}")),
            None => Self::Other(String::new()),
        }
    }
}

pub fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), AttrValue::from_any(kv.value.as_ref())))
        .collect()
}

/// A span event.
#[derive(Clone, Debug, PartialEq)]
pub struct FlatEvent {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: BTreeMap<String, AttrValue>,
}

/// One span with its resource, in plain types (ids as lower-case hex).
#[derive(Clone, Debug, PartialEq)]
pub struct FlatSpan {
    pub service_name: String,
    pub resource: BTreeMap<String, AttrValue>,
    pub scope_name: String,
    pub name: String,
    /// OTLP span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, AttrValue>,
    pub events: Vec<FlatEvent>,
    /// (trace id, span id) of each link.
    pub links: Vec<(String, String)>,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

impl FlatSpan {
    pub fn attr(&self, key: &str) -> Option<String> {
        self.attributes.get(key).map(ToString::to_string)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn flat_span(
    service_name: &str,
    resource: &BTreeMap<String, AttrValue>,
    scope_name: &str,
    s: Span,
) -> FlatSpan {
    let status = s.status.unwrap_or_default();
    FlatSpan {
        service_name: service_name.to_owned(),
        resource: resource.clone(),
        scope_name: scope_name.to_owned(),
        kind: s.kind,
        trace_id: hex(&s.trace_id),
        span_id: hex(&s.span_id),
        parent_span_id: hex(&s.parent_span_id),
        attributes: attributes(&s.attributes),
        events: s
            .events
            .iter()
            .map(|e| FlatEvent {
                name: e.name.clone(),
                time_unix_nano: e.time_unix_nano,
                attributes: attributes(&e.attributes),
            })
            .collect(),
        links: s
            .links
            .iter()
            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
            .collect(),
        status_code: status.code,
        status_message: status.message,
        start_unix_nano: s.start_time_unix_nano,
        end_unix_nano: s.end_time_unix_nano,
        name: s.name,
    }
}

fn resource_service(resource: &BTreeMap<String, AttrValue>) -> String {
    resource
        .get("service.name")
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Flattens an export request into spans.
pub fn flatten(request: &ExportTraceServiceRequest) -> Vec<FlatSpan> {
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service_name = resource_service(&resource);
        for ss in &rs.scope_spans {
            let scope_name = ss.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            for s in &ss.spans {
                out.push(flat_span(&service_name, &resource, scope_name, s.clone()));
            }
        }
    }
    out
}

/// Flattens a batch into spans (each span decoded).
pub fn flatten_batch(batch: &SpanBatch) -> Vec<FlatSpan> {
    let groups: Vec<(String, BTreeMap<String, AttrValue>)> = batch
        .groups()
        .iter()
        .map(|g| {
            let resource = attributes(&g.resource.attributes);
            (resource_service(&resource), resource)
        })
        .collect();
    batch
        .metas()
        .iter()
        .map(|meta| {
            let (service_name, resource) = &groups[meta.group as usize];
            let scope = &batch.group_of(meta).scope;
            flat_span(service_name, resource, &scope.name, batch.span(meta))
        })
        .collect()
}

/// Keeps every accepted request in memory (tests).
#[derive(Clone, Default)]
pub struct MemorySink {
    batches: Arc<Mutex<Vec<SpanBatch>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl SpanSink for MemorySink {
    fn accept(&self, batch: SpanBatch) {
        self.batches.lock().expect("sink lock").push(batch);
        self.changed.notify_waiters();
    }
}

impl MemorySink {
    pub fn spans(&self) -> Vec<FlatSpan> {
        self.batches
            .lock()
            .expect("sink lock")
            .iter()
            .flat_map(flatten_batch)
            .collect()
    }

    /// Waits until `predicate` holds for the spans received, or `timeout` passes;
    /// returns the spans either way (the caller asserts).
    pub async fn wait_for(
        &self,
        predicate: impl Fn(&[FlatSpan]) -> bool,
        timeout: Duration,
    ) -> Vec<FlatSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let spans = self.spans();
            if predicate(&spans) || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn request(span: Span) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn good() -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "op".into(),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            ..Default::default()
        }
    }

    #[test]
    fn validation_refuses_bad_ids_and_times() {
        assert_eq!(validate(&request(good())), Ok(()));
        for (bad, what) in [
            (
                Span {
                    trace_id: vec![0; 16],
                    ..good()
                },
                "zero trace id",
            ),
            (
                Span {
                    trace_id: vec![1; 8],
                    ..good()
                },
                "short trace id",
            ),
            (
                Span {
                    span_id: vec![],
                    ..good()
                },
                "no span id",
            ),
            (
                Span {
                    parent_span_id: vec![1; 3],
                    ..good()
                },
                "bad parent",
            ),
            (
                Span {
                    end_time_unix_nano: 0,
                    ..good()
                },
                "end before start",
            ),
            (
                Span {
                    name: String::new(),
                    ..good()
                },
                "no name",
            ),
        ] {
            assert!(validate(&request(bad)).is_err(), "{what}");
        }
    }

    #[tokio::test]
    async fn both_transports_deliver_and_refuse_garbage() {
        let sink = MemorySink::default();
        let rx = start(
            Arc::new(sink.clone()),
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let body = request(good()).encode_to_vec();
        let r = http
            .post(rx.http_endpoint())
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = http
            .post(rx.http_endpoint())
            .header("content-type", "application/x-protobuf")
            .body(vec![0xff, 0xff, 0x01])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let bad = request(Span {
            trace_id: vec![0; 16],
            ..good()
        })
        .encode_to_vec();
        let r = http
            .post(rx.http_endpoint())
            .header("content-type", "application/x-protobuf")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"json-op","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000"}]}]}]}"#;
        let r = http
            .post(rx.http_endpoint())
            .header("content-type", "application/json")
            .body(json)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text().await);

        let mut grpc = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
            rx.grpc_endpoint(),
        )
        .await
        .unwrap();
        grpc.export(request(good())).await.unwrap();
        let refused = grpc
            .export(request(Span {
                span_id: vec![0; 8],
                ..good()
            }))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);

        let spans = sink.spans();
        assert_eq!(
            spans.len(),
            3,
            "two good protobuf spans and one JSON span, nothing of the refused ones"
        );
        let json_span = spans.iter().find(|s| s.name == "json-op").unwrap();
        assert_eq!(json_span.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(json_span.service_name, "svc");
        assert_eq!(json_span.kind, 2);

        let gzipped = {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder
                .write_all(
                    &request(Span {
                        name: "gzipped".into(),
                        ..good()
                    })
                    .encode_to_vec(),
                )
                .unwrap();
            encoder.finish().unwrap()
        };
        let r = http
            .post(rx.http_endpoint())
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(gzipped)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = http
            .post(rx.http_endpoint())
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(b"not gzip".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = http
            .post(rx.http_endpoint())
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "br")
            .body(vec![1])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);
        assert!(sink.spans().iter().any(|s| s.name == "gzipped"));

        let waited = sink
            .wait_for(|s| s.len() == 4, Duration::from_secs(5))
            .await;
        assert_eq!(waited.len(), 4);
        let http_addr = rx.http_addr;
        rx.shutdown().await;
        assert!(
            tokio::net::TcpStream::connect(http_addr).await.is_err(),
            "nothing listens after shutdown"
        );
    }

    /// Bytes that are no OTLP request, over gRPC: refused with
    /// InvalidArgument and prost's reason; an unknown method is Unimplemented.
    #[tokio::test]
    async fn grpc_refuses_undecodable_bytes_with_a_reason() {
        let sink = MemorySink::default();
        let rx = start(
            Arc::new(sink.clone()),
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        let call = |method: &'static str, message: Vec<u8>| {
            let mut frame = vec![0u8];
            frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
            frame.extend_from_slice(&message);
            client
                .post(format!(
                    "{}/opentelemetry.proto.collector.trace.v1.TraceService/{method}",
                    rx.grpc_endpoint()
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(frame)
                .send()
        };
        let status = |r: &reqwest::Response| {
            let header = |name: &str| {
                r.headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            };
            (header("grpc-status"), header("grpc-message"))
        };
        // A ResourceSpans that claims 5 bytes and has 1.
        let r = call("Export", vec![0x0a, 0x05, 0x01]).await.unwrap();
        let (code, message) = status(&r);
        assert_eq!(code, "3", "InvalidArgument: {message}");
        assert!(
            message.contains("not%20an%20OTLP%20protobuf%20export%20request"),
            "{message}"
        );
        let r = call("Export", request(good()).encode_to_vec())
            .await
            .unwrap();
        assert_eq!(status(&r).0, "", "OK comes in the trailers");
        let _ = r.bytes().await;
        let r = call("Nope", Vec::new()).await.unwrap();
        assert_eq!(status(&r).0, "12", "Unimplemented");
        assert_eq!(sink.spans().len(), 1);
    }

    /// An exporter keeps its connection open between exports (and its
    /// runtime may not answer a GOAWAY): shutdown must still return.
    #[tokio::test]
    async fn shutdown_returns_with_an_idle_exporter_connected() {
        let rx = start(
            Arc::new(MemorySink::default()),
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let endpoint = rx.grpc_endpoint();
        let (connected_tx, connected_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let client_thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let client = runtime.block_on(async {
                let mut c = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(endpoint).await.unwrap();
                c.export(request(good())).await.unwrap();
                c
            });
            connected_tx.send(()).unwrap();
            // The runtime is idle now: nothing drives the connection.
            let _ = release_rx.recv();
            drop(client);
        });
        tokio::task::spawn_blocking(move || connected_rx.recv().unwrap())
            .await
            .unwrap();
        tokio::time::timeout(SHUTDOWN_GRACE * 5, rx.shutdown())
            .await
            .expect("shutdown returned");
        release_tx.send(()).unwrap();
        client_thread.join().unwrap();
    }

    /// A browser's preflight and export from an allowed page; any other
    /// origin is refused and stores nothing; an exporter without Origin is
    /// not concerned.
    #[tokio::test]
    async fn browsers_from_allowed_origins_only() {
        let sink = MemorySink::default();
        let rx = start_with(
            Arc::new(sink.clone()),
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            HttpOptions {
                cors: CorsPolicy::new(["http://127.0.0.1:8001"]).unwrap(),
            },
            None,
        )
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let preflight = http
            .request(reqwest::Method::OPTIONS, rx.http_endpoint())
            .header("origin", "http://127.0.0.1:8001")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204);
        let h = preflight.headers();
        assert_eq!(h["access-control-allow-origin"], "http://127.0.0.1:8001");
        assert_eq!(h["access-control-allow-methods"], "POST");
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("content-type")
        );
        assert_eq!(h["vary"], "origin");

        let body = request(good()).encode_to_vec();
        let post = |origin: Option<&'static str>| {
            let mut r = http
                .post(rx.http_endpoint())
                .header("content-type", "application/x-protobuf")
                .body(body.clone());
            if let Some(o) = origin {
                r = r.header("origin", o);
            }
            r.send()
        };
        let allowed = post(Some("http://127.0.0.1:8001")).await.unwrap();
        assert_eq!(allowed.status(), 200);
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            "http://127.0.0.1:8001"
        );
        assert_eq!(sink.spans().len(), 1);

        let other = post(Some("http://evil.example")).await.unwrap();
        assert_eq!(other.status(), 403);
        assert!(!other.headers().contains_key("access-control-allow-origin"));
        assert!(other.text().await.unwrap().contains("CORS allowed origins"));
        let other_preflight = http
            .request(reqwest::Method::OPTIONS, rx.http_endpoint())
            .header("origin", "http://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(other_preflight.status(), 403);
        assert_eq!(
            sink.spans().len(),
            1,
            "nothing stored from the refused origin"
        );

        let exporter = post(None).await.unwrap();
        assert_eq!(exporter.status(), 200);
        assert!(
            !exporter
                .headers()
                .contains_key("access-control-allow-origin")
        );
        assert_eq!(sink.spans().len(), 2);
        rx.shutdown().await;
    }
}
