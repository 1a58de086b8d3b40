//! The workspace's own telemetry (autobot-tracing: `tracing` spans bridged
//! to OpenTelemetry, batch OTLP exporter) into `serve`, over gRPC and HTTP,
//! found by the tool's checker; `testkit::trace_tool` drives `serve` here.

use std::collections::HashMap;
use std::time::Duration;

use autobot_testkit::trace_tool::TraceTool;
use autobot_tracing::TracingConfig;

use crate::support::cli;

async fn traced_request(endpoint: String) -> String {
    let env = HashMap::from([
        ("AUTOBOT_JAEGER_ENDPOINT", endpoint),
        ("AUTOBOT_ENV", "test".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]);
    let config = TracingConfig::from_lookup(|k| env.get(k).cloned()).expect("config");
    let guard = autobot_tracing::init_with("it-traced", "0.1.0", config).expect("init");
    let trace_id = {
        let server = tracing::info_span!(
            "GET /api/chat",
            otel.kind = "server",
            http.route = "/api/chat"
        );
        let _entered = server.enter();
        let llm = tracing::info_span!(
            "llm.inference",
            otel.kind = "client",
            llm.model = "tinyllama"
        );
        llm.in_scope(|| tracing::info!("asked"));
        autobot_tracing::trace_id_of(&server).expect("a sampled trace")
    };
    guard.shutdown().await;
    trace_id
}

async fn arrives_whole(tool: &TraceTool, trace_id: &str) {
    tool.wait_for_trace(trace_id, |t| t.spans.len() == 2, Duration::from_secs(20))
        .await
        .unwrap();
    // Jaeger's JSON as it came, not as a parser reads it.
    let trace = tool.trace_json(trace_id).await.expect("the trace");
    let llm = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == "llm.inference")
        .expect("llm.inference");
    let tags = llm["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["key"] == "span.kind" && t["value"] == "client"),
        "{llm}"
    );
    assert!(
        tags.iter()
            .any(|t| t["key"] == "llm.model" && t["value"] == "tinyllama"),
        "{llm}"
    );
    let process = &trace["processes"][llm["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], "it-traced");
    assert!(
        process["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "host.name"),
        "host.name for Jaeger's clock-skew adjuster: {process}"
    );
    let (code, out, err) = cli(&[
        "check",
        trace_id,
        "--services",
        "it-traced",
        "--wait",
        "5s",
        "--jaeger",
        &tool.query_url(),
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobot_tracing_over_grpc_arrives_whole() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let tool = TraceTool::start();
    let trace_id = traced_request(tool.otlp_grpc_endpoint()).await;
    arrives_whole(&tool, &trace_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobot_tracing_over_http_arrives_whole() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let tool = TraceTool::start();
    let trace_id = traced_request(tool.otlp_http_endpoint()).await;
    arrives_whole(&tool, &trace_id).await;
}
