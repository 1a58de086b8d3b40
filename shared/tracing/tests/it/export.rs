//! Real OTLP export from a process of its own (`autobot-otlp-probe`): to a
//! receiver, to a port nobody listens on, and to one that accepts and never
//! answers. The exporting process's own figures tell what happened.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use autobot_testkit::ports::free_port;
use autobot_testkit::process::Launch;
use serde_json::Value;

const PROBE: &str = env!("CARGO_BIN_EXE_autobot-otlp-probe");

/// Runs the probe (testkit's launcher: a clean environment); fails the
/// test if it does not finish within 60 s (it must never hang).
pub fn probe(endpoint: &str, spans: u64, extra_env: &[(&str, &str)]) -> (i32, Value, String) {
    let out = Launch::program(PROBE)
        .args(["--spans", &spans.to_string()])
        .env("AUTOBOT_JAEGER_ENDPOINT", endpoint)
        .envs(extra_env.iter().copied())
        .within(Duration::from_secs(60))
        .run();
    let report: Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {:?}", out.stdout));
    (out.code().unwrap_or(-1), report, out.stderr)
}

/// Accepts connections and never answers: the worst receiver there is.
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

const SPANS: u64 = 50_000;
/// Far above what a bounded queue of 2048 spans needs, far below 50 000 unbounded spans.
const MAX_PEAK_RSS_KIB: u64 = 48 * 1024;

fn assert_nothing_held_up(report: &Value, stderr: &str) {
    assert_eq!(report["ended"], SPANS);
    assert_eq!(report["exported"], 0);
    assert_eq!(
        report["not_exported"], SPANS,
        "every span is counted as not exported"
    );
    assert!(
        report["peak_rss_kib"].as_u64().unwrap() < MAX_PEAK_RSS_KIB,
        "memory stays bounded: {report}"
    );
    assert!(
        stderr.contains("span export failed") || stderr.contains("not exported"),
        "the loss is logged: {stderr}"
    );
}

#[test]
fn with_no_receiver_listening_spans_are_dropped_counted_and_bounded() {
    for endpoint in [
        format!("http://127.0.0.1:{}", free_port()),
        format!("http://127.0.0.1:{}/v1/traces", free_port()),
    ] {
        let (code, report, stderr) = probe(
            &endpoint,
            SPANS,
            &[("AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS", "2000")],
        );
        assert_eq!(code, 1, "the probe says not everything arrived");
        assert_nothing_held_up(&report, &stderr);
    }
}

#[test]
fn a_receiver_that_never_answers_does_not_hold_up_the_loop() {
    for path in ["", "/v1/traces"] {
        let endpoint = format!("http://127.0.0.1:{}{path}", black_hole());
        let (code, report, stderr) = probe(
            &endpoint,
            SPANS,
            &[
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000"),
                ("AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS", "1500"),
            ],
        );
        assert_eq!(code, 1);
        // The first export waits 30 s for an answer; had the loop waited for
        // it, that export would have ended (failed) before the loop did.
        assert_eq!(
            report["failed_at_loop_end"], 0,
            "the loop never waited for the exporter: {report}"
        );
        assert_eq!(report["exported_at_loop_end"], 0);
        assert_nothing_held_up(&report, &stderr);
    }
}

#[test]
fn a_bad_setting_stops_the_probe_naming_the_variable() {
    let (code, _, stderr) = {
        let out = Command::new(PROBE)
            .env("AUTOBOT_TRACE_SAMPLE_RATE", "1.5")
            .output()
            .expect("runs");
        (
            out.status.code(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("AUTOBOT_TRACE_SAMPLE_RATE") && stderr.contains("1.5"),
        "{stderr}"
    );
}

async fn receiver() -> (
    autobot_otlp_receiver::RunningReceiver,
    autobot_otlp_receiver::MemorySink,
) {
    let sink = autobot_otlp_receiver::MemorySink::default();
    let rx = autobot_otlp_receiver::start(
        std::sync::Arc::new(sink.clone()),
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("receiver binds");
    (rx, sink)
}

/// Runs the probe off the async threads, so the in-process receiver keeps serving.
async fn probe_async(
    endpoint: String,
    spans: u64,
    env: Vec<(&'static str, &'static str)>,
) -> (i32, Value, String) {
    tokio::task::spawn_blocking(move || probe(&endpoint, spans, &env))
        .await
        .unwrap()
}

fn assert_whole_trace_with_resource(
    report: &Value,
    received: &[autobot_otlp_receiver::FlatSpan],
    spans: u64,
) {
    let trace_id = report["trace_id"].as_str().unwrap();
    let ours: Vec<_> = received.iter().filter(|s| s.trace_id == trace_id).collect();
    assert_eq!(
        ours.len() as u64,
        spans,
        "every span finished before shutdown arrived"
    );
    let root = ours.iter().find(|s| s.name == "probe.run").expect("root");
    assert!(root.parent_span_id.is_empty());
    assert!(
        ours.iter()
            .filter(|s| s.name == "probe.step")
            .all(|s| s.parent_span_id == root.span_id)
    );
    let r = &root.resource;
    assert_eq!(r["service.name"].to_string(), "autobot-otlp-probe");
    assert_eq!(r["service.namespace"].to_string(), "autobot");
    assert_eq!(r["deployment.environment.name"].to_string(), "staging");
    assert_eq!(
        r["team"].to_string(),
        "platform",
        "OTEL_RESOURCE_ATTRIBUTES are kept"
    );
    for key in [
        "service.version",
        "service.instance.id",
        "host.name",
        "telemetry.sdk.name",
    ] {
        assert!(!r[key].to_string().is_empty(), "{key}");
    }
    assert_eq!(root.scope_name, "autobot-tracing");
}

const ENV: [(&str, &str); 2] = [
    ("AUTOBOT_ENV", "staging"),
    ("OTEL_RESOURCE_ATTRIBUTES", "team=platform"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_over_grpc_with_their_resource() {
    let (rx, sink) = receiver().await;
    let (code, report, stderr) = probe_async(rx.grpc_endpoint(), 40, ENV.to_vec()).await;
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(report["exported"], 40);
    assert_whole_trace_with_resource(&report, &sink.spans(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_over_http_with_their_resource() {
    let (rx, sink) = receiver().await;
    // A base URL on port 4318 would get /v1/traces appended; here the path says HTTP.
    let (code, report, stderr) = probe_async(rx.http_endpoint(), 40, ENV.to_vec()).await;
    assert_eq!(code, 0, "{report} {stderr}");
    assert_whole_trace_with_resource(&report, &sink.spans(), 40);
}

/// OTEL_EXPORTER_OTLP_HEADERS reach the receiver (vendor auth), and no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_auth_headers_reach_the_receiver_but_no_log() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                record.lock().unwrap().push(auth.to_owned());
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (code, report, stderr) = probe_async(
        endpoint,
        3,
        vec![(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20s3cr3t-token,api-key=k3y",
        )],
    )
    .await;
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(
        seen.lock().unwrap().first().map(String::as_str),
        Some("Bearer s3cr3t-token")
    );
    assert!(
        !stderr.contains("s3cr3t")
            && !stderr.contains("k3y")
            && !report.to_string().contains("s3cr3t")
    );
}

/// The guard's shutdown on a single-threaded runtime: the gRPC exporter's
/// connection lives on that runtime, and shutdown must still deliver every
/// span, within its bound (opentelemetry-rust#2580 hangs 15 s and loses them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_a_current_thread_runtime_delivers_every_span() {
    let (rx, sink) = receiver().await;
    let endpoint = rx.grpc_endpoint();
    let (code, report, stderr) = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(PROBE);
        cmd.args(["--spans", "25", "--runtime", "current"])
            .env("AUTOBOT_JAEGER_ENDPOINT", &endpoint)
            .env("AUTOBOT_ENV", "staging")
            .env("OTEL_RESOURCE_ATTRIBUTES", "team=platform")
            .env("OTEL_BSP_SCHEDULE_DELAY", "60000");
        let out = cmd.output().expect("probe runs");
        (
            out.status.code().unwrap_or(-1),
            serde_json::from_slice::<Value>(&out.stdout).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{report} {stderr}");
    // With a 60 s schedule delay nothing left before shutdown: shutdown sent it all.
    assert_eq!(report["exported_at_loop_end"], 0);
    assert_whole_trace_with_resource(&report, &sink.spans(), 25);
}

/// Log lines written inside a trace carry its ids, in text and in JSON.
#[test]
fn log_lines_carry_the_trace_id() {
    for format in ["text", "json"] {
        let out = Command::new(PROBE)
            .env(
                "AUTOBOT_JAEGER_ENDPOINT",
                format!("http://127.0.0.1:{}", free_port()),
            )
            .env("AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS", "500")
            .env("AUTOBOT_LOG_FORMAT", format)
            .output()
            .expect("probe runs");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let trace_id = report["trace_id"].as_str().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains("probe trace sent"))
            .unwrap_or_else(|| panic!("{stderr}"));
        match format {
            "text" => assert!(
                line.contains(&format!("trace_id={trace_id} span_id=")),
                "{line}"
            ),
            _ => {
                let json: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(json["trace_id"], trace_id);
                assert_eq!(json["span_id"].as_str().map(str::len), Some(16));
                assert_eq!(json["fields"]["message"], "probe trace sent");
            }
        }
    }
}
