//! A receiver that accepts a request but rejects some of its spans (OTLP
//! partial success): the exporter does not retry, counts the rejected spans
//! as not exported, and logs the receiver's message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::export::probe;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_spans_of_a_partial_success_are_counted_as_not_exported() {
    let requests = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let content_types: Arc<Mutex<Vec<String>>> = Arc::default();
    let (r, n, ct) = (requests.clone(), received.clone(), content_types.clone());
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (r, n, ct) = (r.clone(), n.clone(), ct.clone());
                async move {
                    ct.lock().unwrap().push(
                        headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned(),
                    );
                    let request = ExportTraceServiceRequest::decode(body).expect("valid OTLP");
                    let spans: usize = request
                        .resource_spans
                        .iter()
                        .flat_map(|rs| &rs.scope_spans)
                        .map(|ss| ss.spans.len())
                        .sum();
                    r.fetch_add(1, Ordering::Relaxed);
                    n.fetch_add(spans as u64, Ordering::Relaxed);
                    // One span of every request is refused.
                    let answer = ExportTraceServiceResponse {
                        partial_success: Some(ExportTracePartialSuccess {
                            rejected_spans: 1,
                            error_message: "span too old".into(),
                        }),
                    };
                    (
                        [("content-type", "application/x-protobuf")],
                        answer.encode_to_vec(),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (code, report, stderr) = tokio::task::spawn_blocking(move || probe(&endpoint, 30, &[]))
        .await
        .unwrap();

    let requests = requests.load(Ordering::Relaxed);
    assert!(requests >= 1, "{report} {stderr}");
    assert_eq!(
        received.load(Ordering::Relaxed),
        30,
        "every span was sent once: a partial success is not retried"
    );
    assert_eq!(code, 1, "not every span was accepted: {report}");
    assert_eq!(report["ended"], 30);
    assert_eq!(report["exported"], 30 - requests, "{report}");
    assert_eq!(report["not_exported"], requests, "{report}");
    assert!(stderr.contains("span too old"), "{stderr}");
    assert!(
        content_types
            .lock()
            .unwrap()
            .iter()
            .all(|c| c == "application/x-protobuf")
    );
}

/// The same over gRPC, through a receiver built from the OTLP service
/// definition: the configured headers arrive as metadata, the answer's
/// partial success is read, and the rejected spans are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_grpc_metadata_arrives_and_rejected_spans_are_counted() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };

    #[derive(Default, Clone)]
    struct Rejecting {
        requests: Arc<AtomicU64>,
        received: Arc<AtomicU64>,
        auth: Arc<Mutex<Vec<String>>>,
    }

    #[tonic::async_trait]
    impl TraceService for Rejecting {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            self.auth.lock().unwrap().push(
                request
                    .metadata()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned(),
            );
            let spans: usize = request
                .get_ref()
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum();
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.received.fetch_add(spans as u64, Ordering::Relaxed);
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: 1,
                    error_message: "span too old".into(),
                }),
            }))
        }
    }

    let service = Rejecting::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(service.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);

    let (code, report, stderr) = tokio::task::spawn_blocking(move || {
        probe(
            &endpoint,
            30,
            &[("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t0k")],
        )
    })
    .await
    .unwrap();

    let requests = service.requests.load(Ordering::Relaxed);
    assert!(requests >= 1, "{report} {stderr}");
    assert_eq!(service.received.load(Ordering::Relaxed), 30, "not retried");
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["exported"], 30 - requests, "{report}");
    assert_eq!(report["not_exported"], requests, "{report}");
    assert!(stderr.contains("span too old"), "{stderr}");
    assert!(!stderr.contains("t0k"), "no credential in the logs");
    assert!(
        service
            .auth
            .lock()
            .unwrap()
            .iter()
            .all(|a| a == "Bearer t0k")
    );
}
