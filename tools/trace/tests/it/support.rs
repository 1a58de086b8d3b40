//! Runs `show`/`check` (the binary cargo built for this test) and builds raw
//! OTLP requests; `serve` itself is started by testkit's TraceTool.

use std::time::{SystemTime, UNIX_EPOCH};

use autobot_testkit::trace_tool::TraceTool;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

pub const BIN: &str = env!("CARGO_BIN_EXE_autobot-trace");

/// Runs `autobot-trace ARGS`; returns (exit code, stdout, stderr).
pub async fn cli(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .env_remove("AUTOBOT_JAEGER_QUERY_URL")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// A raw OTLP span: trace `trace`, id `id`, parent `parent` (0 = none).
pub fn raw_span(trace: u128, id: u64, parent: u64, name: &str) -> Span {
    let start = now_nanos();
    Span {
        trace_id: trace.to_be_bytes().to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: if parent == 0 {
            vec![]
        } else {
            parent.to_be_bytes().to_vec()
        },
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000,
        ..Default::default()
    }
}

/// One export request: spans grouped under their service.
pub fn request(services: &[(&str, Vec<Span>)]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: services
            .iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: spans.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

pub async fn send_grpc(
    serve: &TraceTool,
    request: ExportTraceServiceRequest,
) -> Result<(), tonic::Status> {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    let mut client = TraceServiceClient::connect(serve.otlp_grpc_endpoint())
        .await
        .unwrap();
    client.export(request).await.map(|_| ())
}
