//! What the exporter puts on the wire and how it meets refusals, against
//! receivers that check and answer as the OTLP specification describes:
//! - `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` sends gzip (`Content-Encoding:
//!   gzip` on HTTP, `grpc-encoding: gzip` on gRPC), and the spans arrive;
//!   without it, nothing is compressed;
//! - retries: HTTP 429/502/503/504 and gRPC UNAVAILABLE are retried after
//!   the server's `Retry-After` / `RetryInfo` delay, RESOURCE_EXHAUSTED only
//!   with RetryInfo, anything else never, and never past the export timeout.
//!
//! Spans come from `autobot-otlp-probe`, a process of its own.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::export::probe;

fn span_count(request: &ExportTraceServiceRequest) -> u64 {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len() as u64)
        .sum()
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    /// `Content-Encoding` (HTTP) or `grpc-encoding` (gRPC), "" when absent.
    encoding: String,
    /// Body bytes as sent (compressed when it was).
    wire_bytes: usize,
    spans: u64,
}

/// How the test receiver answers the n-th request (0-based).
type Script = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

#[derive(Clone, Debug)]
enum Answer {
    Accept,
    /// HTTP: a status and an optional Retry-After value.
    Http(u16, Option<String>),
    /// HTTP: a status and Retry-After as the HTTP-date this far ahead of
    /// the answer (whole seconds: the date is cut to the second).
    HttpDate(u16, Duration),
    /// gRPC: a code and an optional RetryInfo delay.
    Grpc(tonic::Code, Option<Duration>),
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    accepted_spans: Arc<AtomicU64>,
    script: Script,
}

impl Receiver {
    fn new(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        Self {
            seen: Arc::default(),
            accepted_spans: Arc::default(),
            script: Arc::new(script),
        }
    }

    /// Records a request and says how to answer it.
    fn take(&self, seen: Seen) -> Answer {
        let spans = seen.spans;
        let mut all = self.seen.lock().unwrap();
        all.push(seen);
        let answer = (self.script)(all.len() - 1);
        if matches!(answer, Answer::Accept) {
            self.accepted_spans.fetch_add(spans, Ordering::Relaxed);
        }
        answer
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// An OTLP/HTTP receiver; returns its /v1/traces URL.
    async fn http(self) -> String {
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let receiver = self.clone();
                async move {
                    let encoding = headers
                        .get("content-encoding")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let raw = if encoding == "gzip" {
                        let mut out = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut out)
                            .expect("a gzip body");
                        out
                    } else {
                        body.to_vec()
                    };
                    let request = ExportTraceServiceRequest::decode(&raw[..]).expect("OTLP");
                    let answer = receiver.take(Seen {
                        at: Instant::now(),
                        encoding,
                        wire_bytes: body.len(),
                        spans: span_count(&request),
                    });
                    let answer = match answer {
                        Answer::HttpDate(status, ahead) => Answer::Http(
                            status,
                            Some(httpdate::fmt_http_date(
                                std::time::SystemTime::now() + ahead,
                            )),
                        ),
                        other => other,
                    };
                    match answer {
                        Answer::Http(status, retry_after) => {
                            let mut response =
                                StatusCode::from_u16(status).unwrap().into_response();
                            if let Some(value) = retry_after {
                                response
                                    .headers_mut()
                                    .insert("retry-after", value.parse().unwrap());
                            }
                            response
                        }
                        _ => (
                            [("content-type", "application/x-protobuf")],
                            ExportTraceServiceResponse::default().encode_to_vec(),
                        )
                            .into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// An OTLP/gRPC receiver that accepts gzip; returns its endpoint.
    async fn grpc(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(self)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        let server = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);
        endpoint
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let encoding = request
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let answer = self.take(Seen {
            at: Instant::now(),
            encoding,
            wire_bytes: request.get_ref().encoded_len(),
            spans: span_count(request.get_ref()),
        });
        match answer {
            Answer::Grpc(code, delay) => {
                use tonic_types::{ErrorDetails, StatusExt};
                let details = match delay {
                    Some(d) => ErrorDetails::with_retry_info(Some(d)),
                    None => ErrorDetails::new(),
                };
                Err(tonic::Status::with_error_details(code, "busy", details))
            }
            _ => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
        }
    }
}

const SPANS: u64 = 40;

async fn run_probe(
    endpoint: String,
    env: &'static [(&'static str, &'static str)],
) -> (i32, serde_json::Value, String) {
    tokio::task::spawn_blocking(move || probe(&endpoint, SPANS, env))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_reaches_receivers_that_check_the_encoding() {
    for grpc in [false, true] {
        let gzipped = Receiver::new(|_| Answer::Accept);
        let plain = Receiver::new(|_| Answer::Accept);
        let (gz_endpoint, plain_endpoint) = if grpc {
            (gzipped.clone().grpc().await, plain.clone().grpc().await)
        } else {
            (gzipped.clone().http().await, plain.clone().http().await)
        };
        let (code, report, stderr) =
            run_probe(gz_endpoint, &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).await;
        assert_eq!(code, 0, "grpc={grpc}: {report} {stderr}");
        assert_eq!(gzipped.accepted_spans.load(Ordering::Relaxed), SPANS);
        assert!(
            gzipped.seen().iter().all(|s| s.encoding == "gzip"),
            "grpc={grpc}: {:?}",
            gzipped.seen()
        );
        let (code, report, stderr) = run_probe(
            plain_endpoint,
            &[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none")],
        )
        .await;
        assert_eq!(code, 0, "grpc={grpc}: {report} {stderr}");
        assert_eq!(plain.accepted_spans.load(Ordering::Relaxed), SPANS);
        assert!(
            plain
                .seen()
                .iter()
                .all(|s| s.encoding.is_empty() || s.encoding == "identity"),
            "grpc={grpc}: {:?}",
            plain.seen()
        );
        if !grpc {
            let bytes = |r: &Receiver| r.seen().iter().map(|s| s.wire_bytes).sum::<usize>();
            assert!(
                bytes(&gzipped) < bytes(&plain),
                "gzip sends fewer bytes: {} vs {}",
                bytes(&gzipped),
                bytes(&plain)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_over_grpc_and_http_reaches_the_trace_tools_receiver() {
    let sink = autobot_otlp_receiver::MemorySink::default();
    let receiver = autobot_otlp_receiver::start(
        Arc::new(sink.clone()),
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    for endpoint in [receiver.grpc_endpoint(), receiver.http_endpoint()] {
        let (code, report, stderr) = run_probe(
            endpoint.clone(),
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")],
        )
        .await;
        assert_eq!(code, 0, "{endpoint}: {report} {stderr}");
    }
    assert_eq!(sink.spans().len() as u64, 2 * SPANS);
}

/// A probe exporting to a receiver that refuses the first `refusals`
/// requests; returns (exit code, the requests seen, stderr).
async fn against(
    grpc: bool,
    refusal: Answer,
    refusals: usize,
    env: &'static [(&'static str, &'static str)],
) -> (i32, Vec<Seen>, String) {
    let receiver = Receiver::new(move |n| {
        if n < refusals {
            refusal.clone()
        } else {
            Answer::Accept
        }
    });
    let endpoint = if grpc {
        receiver.clone().grpc().await
    } else {
        receiver.clone().http().await
    };
    // One batch: the probe's spans, sent when it shuts down.
    let mut all_env = vec![("OTEL_BSP_SCHEDULE_DELAY", "60000")];
    all_env.extend_from_slice(env);
    let all_env: &'static [(&'static str, &'static str)] = Box::leak(all_env.into_boxed_slice());
    let (code, _, stderr) = run_probe(endpoint, all_env).await;
    (code, receiver.seen(), stderr)
}

fn gap(seen: &[Seen], i: usize) -> Duration {
    seen[i + 1].at.duration_since(seen[i].at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_throttling_is_retried_after_retry_after() {
    // Seconds.
    let (code, seen, stderr) = against(false, Answer::Http(503, Some("1".into())), 2, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(seen.len(), 3, "two refusals, then accepted: {seen:?}");
    assert!(
        gap(&seen, 0) >= Duration::from_millis(950),
        "{:?}",
        gap(&seen, 0)
    );
    assert!(
        gap(&seen, 1) >= Duration::from_millis(950),
        "{:?}",
        gap(&seen, 1)
    );

    // An HTTP-date two seconds ahead of the answer, cut to the second: the
    // client waits more than one second (backoff alone would be ~0.1 s).
    let (code, seen, stderr) =
        against(false, Answer::HttpDate(429, Duration::from_secs(2)), 1, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(seen.len(), 2);
    assert!(
        gap(&seen, 0) >= Duration::from_millis(900),
        "{:?}",
        gap(&seen, 0)
    );

    // Without Retry-After: exponential backoff (100 ms and up), retried.
    for status in [502, 504] {
        let (code, seen, stderr) = against(false, Answer::Http(status, None), 1, &[]).await;
        assert_eq!(code, 0, "{status}: {stderr}");
        assert_eq!(seen.len(), 2, "{status}");
        assert!(gap(&seen, 0) >= Duration::from_millis(100), "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refusals_that_are_not_retryable_are_not_retried() {
    for status in [400, 401, 403, 404, 413, 500] {
        let (code, seen, stderr) = against(false, Answer::Http(status, None), 1, &[]).await;
        assert_eq!(code, 1, "{status}: the spans are lost: {stderr}");
        assert_eq!(seen.len(), 1, "{status}: not retried");
        assert!(stderr.contains(&format!("HTTP {status}")), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_past_the_export_timeout_ends_the_export() {
    let started = Instant::now();
    let (code, seen, stderr) = against(
        false,
        Answer::Http(503, Some("3600".into())),
        usize::MAX,
        &[("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        seen.len(),
        1,
        "an hour is past the 2 s timeout: not retried"
    );
    assert!(stderr.contains("would pass the export timeout"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // Retried until the time is up, never past it.
    let started = Instant::now();
    let (code, seen, stderr) = against(
        true,
        Answer::Grpc(tonic::Code::Unavailable, Some(Duration::from_millis(700))),
        usize::MAX,
        &[("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        (2..=3).contains(&seen.len()),
        "0, 0.7, 1.4 s fit in 2 s; 2.1 s does not: {}",
        seen.len()
    );
    assert!(
        seen.last().unwrap().at.duration_since(seen[0].at) < Duration::from_secs(2),
        "{seen:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_retries_follow_the_code_and_retry_info() {
    // UNAVAILABLE with RetryInfo: after the server's delay.
    let (code, seen, stderr) = against(
        true,
        Answer::Grpc(tonic::Code::Unavailable, Some(Duration::from_secs(1))),
        1,
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(seen.len(), 2);
    assert!(
        gap(&seen, 0) >= Duration::from_millis(950),
        "{:?}",
        gap(&seen, 0)
    );

    // RESOURCE_EXHAUSTED: retried only when the server sends RetryInfo.
    let (code, seen, stderr) = against(
        true,
        Answer::Grpc(tonic::Code::ResourceExhausted, None),
        1,
        &[],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(seen.len(), 1, "no RetryInfo: not retried");
    let (code, seen, stderr) = against(
        true,
        Answer::Grpc(
            tonic::Code::ResourceExhausted,
            Some(Duration::from_millis(500)),
        ),
        1,
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(seen.len(), 2);
    assert!(gap(&seen, 0) >= Duration::from_millis(450));

    // Codes the spec calls permanent: never retried, even with RetryInfo.
    for code_sent in [
        tonic::Code::InvalidArgument,
        tonic::Code::Internal,
        tonic::Code::PermissionDenied,
    ] {
        let (code, seen, stderr) = against(
            true,
            Answer::Grpc(code_sent, Some(Duration::from_millis(100))),
            1,
            &[],
        )
        .await;
        assert_eq!(code, 1, "{code_sent:?}: {stderr}");
        assert_eq!(seen.len(), 1, "{code_sent:?}");
    }
}
