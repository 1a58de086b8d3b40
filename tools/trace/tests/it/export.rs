//! Spans from the real OpenTelemetry SDK and OTLP exporter, over gRPC and
//! over HTTP, come back from the query API in Jaeger's shape; `check`
//! passes the trace and `show` draws it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

use autobot_testkit::trace_tool::TraceTool;

use crate::support::cli;

enum Transport {
    Grpc,
    Http,
}

fn provider(serve: &TraceTool, transport: &Transport, service: &'static str) -> SdkTracerProvider {
    let exporter = match transport {
        Transport::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_protocol(Protocol::Grpc)
            .with_endpoint(serve.otlp_grpc_endpoint())
            .build(),
        Transport::Http => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(serve.otlp_http_endpoint())
            .build(),
    }
    .expect("exporter");
    SdkTracerProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service)
                .with_attribute(KeyValue::new("host.name", "it-host"))
                .build(),
        )
        .with_batch_exporter(exporter)
        .build()
}

/// Flushing blocks: off the async threads, so the exporter's runtime keeps going.
async fn flush(provider: SdkTracerProvider) {
    tokio::task::spawn_blocking(move || {
        provider.force_flush().expect("flush");
        provider.shutdown().expect("shutdown");
    })
    .await
    .unwrap();
}

fn at(micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros)
}

const T0: u64 = 1_700_000_000_123_456;

/// backend: SERVER `POST /api/chat` → CLIENT `POST`; ai-stack: SERVER
/// `POST /v1/chat` (child of the CLIENT span, with a link, an event, an error).
async fn send_two_service_trace(serve: &TraceTool, transport: Transport) -> (String, String) {
    let backend = provider(serve, &transport, "it-backend");
    let ai = provider(serve, &transport, "it-ai-stack");
    let (tb, ta) = (backend.tracer("it"), ai.tracer("it-ai"));
    let root = tb
        .span_builder("POST /api/chat")
        .with_kind(SpanKind::Server)
        .with_start_time(at(T0))
        .with_attributes([
            KeyValue::new("http.route", "/api/chat"),
            KeyValue::new("http.response.status_code", 200i64),
        ])
        .start(&tb);
    let trace_id = root.span_context().trace_id().to_string();
    let root_cx = Context::new().with_span(root);
    let client = tb
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_start_time(at(T0 + 1_000))
        .start_with_context(&tb, &root_cx);
    let client_span_id = client.span_context().span_id().to_string();
    let client_cx = root_cx.with_span(client);
    let linked = SpanContext::new(
        TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
        SpanId::from(0x00f067aa0ba902b7_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let mut server = ta
        .span_builder("POST /v1/chat")
        .with_kind(SpanKind::Server)
        .with_start_time(at(T0 + 2_000))
        .with_links(vec![Link::with_context(linked)])
        .start_with_context(&ta, &client_cx);
    server.add_event_with_timestamp(
        "llm.retry",
        at(T0 + 3_000),
        vec![KeyValue::new("attempt", 2i64)],
    );
    server.set_attribute(KeyValue::new("error.type", "timeout"));
    server.set_status(Status::error("upstream timed out"));
    server.end_with_timestamp(at(T0 + 100_000));
    client_cx.span().end_with_timestamp(at(T0 + 101_000));
    root_cx.span().end_with_timestamp(at(T0 + 250_000));
    flush(backend).await;
    flush(ai).await;
    (trace_id, client_span_id)
}

fn tag<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["tags"]
        .as_array()
        .and_then(|tags| tags.iter().find(|t| t["key"] == key))
        .unwrap_or_else(|| panic!("no tag {key} in {span}"))
}

fn span<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

async fn assert_jaeger_shape(serve: &TraceTool, trace_id: &str, client_span_id: &str) {
    serve
        .wait_for_trace(trace_id, |t| t.spans.len() == 3, Duration::from_secs(20))
        .await
        .unwrap();
    // Jaeger's JSON as it came, not as a parser reads it.
    let trace = serve.trace_json(trace_id).await.expect("the trace");
    assert_eq!(trace["traceID"], trace_id);
    let root = span(&trace, "POST /api/chat");
    assert_eq!(root["startTime"], T0, "microseconds since the epoch");
    assert_eq!(root["duration"], 250_000, "microseconds");
    assert_eq!(root["references"], serde_json::json!([]));
    assert_eq!(tag(root, "span.kind")["value"], "server");
    assert_eq!(tag(root, "http.response.status_code")["type"], "int64");
    assert_eq!(tag(root, "http.response.status_code")["value"], 200);
    assert_eq!(tag(root, "otel.scope.name")["value"], "it");
    assert_eq!(
        trace["processes"][root["processID"].as_str().unwrap()]["serviceName"],
        "it-backend"
    );

    let server = span(&trace, "POST /v1/chat");
    let references = server["references"].as_array().unwrap();
    assert_eq!(
        references[0]["refType"], "CHILD_OF",
        "the parent comes first"
    );
    assert_eq!(references[0]["spanID"], client_span_id);
    assert_eq!(references[1]["refType"], "FOLLOWS_FROM", "a link");
    assert_eq!(references[1]["traceID"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(references[1]["spanID"], "00f067aa0ba902b7");
    assert_eq!(tag(server, "otel.status_code")["value"], "ERROR");
    assert_eq!(
        tag(server, "otel.status_description")["value"],
        "upstream timed out"
    );
    assert_eq!(tag(server, "error")["value"], true);
    assert_eq!(tag(server, "error.type")["value"], "timeout");
    let log = &server["logs"][0];
    assert_eq!(log["timestamp"], T0 + 3_000);
    assert_eq!(
        log["fields"][0],
        serde_json::json!({"key": "event", "type": "string", "value": "llm.retry"})
    );
    assert_eq!(log["fields"][1]["value"], 2);
    let process = &trace["processes"][server["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], "it-ai-stack");
    assert!(
        process["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "host.name" && t["value"] == "it-host"),
        "resource attributes become process tags: {process}"
    );

    let (status, services) = serve.get("/api/services").await;
    assert_eq!(status, 200);
    let names = services["data"].as_array().unwrap();
    assert!(names.contains(&"it-backend".into()) && names.contains(&"it-ai-stack".into()));
    assert_eq!(services["total"], names.len());
    let (_, ops) = serve.get("/api/services/it-backend/operations").await;
    assert_eq!(ops["data"], serde_json::json!(["POST", "POST /api/chat"]));
    let (_, ops) = serve
        .get("/api/operations?service=it-backend&spanKind=client")
        .await;
    assert_eq!(
        ops["data"],
        serde_json::json!([{"name": "POST", "spanKind": "client"}])
    );
    let (status, _) = serve.get("/api/operations").await;
    assert_eq!(status, 400, "service is required");

    let (status, found) = serve
        .get("/api/traces?service=it-ai-stack&tags=%7B%22error.type%22%3A%22timeout%22%7D&limit=5&start=0&minDuration=50ms")
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["data"][0]["traceID"], trace_id);
    let (_, none) = serve
        .get("/api/traces?service=it-ai-stack&start=0&maxDuration=1ms")
        .await;
    assert_eq!(none["data"], serde_json::json!([]));

    let (status, v3) = serve.get(&format!("/api/v3/traces/{trace_id}")).await;
    assert_eq!(status, 200);
    let v3_spans: Vec<&Value> = v3["result"]["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
        .flat_map(|ss| ss["spans"].as_array().unwrap())
        .collect();
    assert_eq!(v3_spans.len(), 3);
    assert!(
        v3_spans
            .iter()
            .all(|s| s["traceId"] == trace_id && s["kind"].is_i64())
    );
    assert!(
        v3_spans.iter().all(|s| s["startTimeUnixNano"].is_string()),
        "int64 as strings"
    );
}

async fn check_and_show(serve: &TraceTool, trace_id: &str) {
    let url = serve.query_url();
    let (code, out, err) = cli(&[
        "check",
        trace_id,
        "--services",
        "it-backend,it-ai-stack",
        "--wait",
        "5s",
        "--jaeger",
        &url,
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("OK trace"), "{out}");

    let (code, out, err) = cli(&["show", trace_id, "--jaeger", &url]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("3 spans, 2 services"), "{out}");
    assert!(
        lines[1].starts_with("it-backend POST /api/chat [server] +0µs 250.00ms"),
        "{out}"
    );
    assert!(
        lines[1].contains("http.route=/api/chat http.response.status_code=200"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("└─ it-backend POST [client] +1.00ms"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("   └─ it-ai-stack POST /v1/chat [server] +2.00ms"),
        "{out}"
    );
    assert!(
        lines[3].contains("ERROR: upstream timed out error.type=timeout"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_over_grpc_come_back_in_jaegers_shape() {
    let serve = TraceTool::start();
    let (trace_id, client) = send_two_service_trace(&serve, Transport::Grpc).await;
    assert_jaeger_shape(&serve, &trace_id, &client).await;
    check_and_show(&serve, &trace_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_spans_over_http_come_back_in_jaegers_shape() {
    let serve = TraceTool::start();
    let (trace_id, client) = send_two_service_trace(&serve, Transport::Http).await;
    assert_jaeger_shape(&serve, &trace_id, &client).await;
    check_and_show(&serve, &trace_id).await;
}
