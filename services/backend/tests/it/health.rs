//! `GET /api/health` and `GET /api/health/cluster`: every peer checked in
//! parallel, each in its own span; a peer that is down is reported, and the
//! endpoint still answers 200.

use serde_json::Value;

use autobot_testkit::redis::RedisServer;

use crate::support::peers::Peers;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_itself_is_healthy() {
    let receiver = TraceTool::start();
    let mut backend = start_backend(&receiver, "http://127.0.0.1:9", &[]);
    let r = reqwest::get(backend.url("/api/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    // A poll without a caller's trace starts none.
    assert!(!r.headers().contains_key("traceresponse"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], "autobot-backend");
    backend.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_check_reports_every_peer_in_its_own_span() {
    let redis = RedisServer::start().expect("redis-server starts");
    let peers = Peers::start().await;
    let npu_down = free_addr();
    let mut stack = Stack::start(
        Mode::Normal,
        &[],
        &[
            ("AUTOBOT_BROWSER_URL", peers.url()),
            ("AUTOBOT_PKI_URL", peers.url()),
            ("AUTOBOT_NPU_URL", format!("http://{npu_down}")),
            ("AUTOBOT_REDIS_URL", redis.url()),
        ],
    )
    .await;
    let r = reqwest::Client::new()
        .get(stack.backend.url("/api/health/cluster"))
        .header("traceparent", caller_traceparent())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a peer down is reported, not an error");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["trace_id"], CALLER_TRACE);
    let peer = |name: &str| {
        body["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {body}"))
            .clone()
    };
    for up in ["ai-stack", "browser", "pki-distributor", "redis"] {
        assert_eq!(peer(up)["ok"], true, "{up}: {body}");
    }
    let npu = peer("npu-worker");
    assert_eq!(npu["ok"], false);
    assert!(
        npu["error"].as_str().unwrap().contains("unreachable"),
        "{npu}"
    );

    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().filter(|s| s.name == "health.check").count() == 5
                && s.iter().any(|s| s.name == "GET /api/health/cluster")
                && s.iter()
                    .any(|s| s.name == "GET /health" && s.service == "autobot-ai-stack")
        })
        .await;
    stack.stop();
    let server = one(&spans, "autobot-backend", "GET /api/health/cluster");
    assert_ne!(server.status, Status::Error);
    let checks: Vec<&Span> = spans.iter().filter(|s| s.name == "health.check").collect();
    for check in &checks {
        assert_eq!(
            check.parent.as_ref(),
            Some(&server.span_id),
            "each check is a child of the request"
        );
        assert_eq!(check.kind, Kind::Internal);
        let down = check.str_attr("autobot.peer") == "npu-worker";
        assert_eq!(check.attr("health.ok"), &Value::Bool(!down));
        assert_eq!(check.is_error(), down, "{check:?}");
    }
    // The ai-stack's own span hangs under the backend's CLIENT span of its check.
    let ai_check = checks
        .iter()
        .find(|c| c.str_attr("autobot.peer") == "ai-stack")
        .unwrap();
    let ai_client = spans
        .iter()
        .find(|s| s.kind == Kind::Client && s.parent.as_ref() == Some(&ai_check.span_id))
        .expect("a CLIENT span under the ai-stack check");
    let ai_server = one(&spans, "autobot-ai-stack", "GET /health");
    assert_eq!(ai_server.parent.as_ref(), Some(&ai_client.span_id));
    // Redis: a PING CLIENT span under its check.
    let redis_check = checks
        .iter()
        .find(|c| c.str_attr("autobot.peer") == "redis")
        .unwrap();
    let ping = one(&spans, "autobot-backend", "redis.PING");
    assert_eq!(ping.parent.as_ref(), Some(&redis_check.span_id));
    assert_eq!(ping.kind, Kind::Client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_reported() {
    let redis_down = free_addr();
    let receiver = TraceTool::start();
    let mut backend = start_backend(
        &receiver,
        "http://127.0.0.1:9",
        &[("AUTOBOT_REDIS_URL", format!("redis://{redis_down}/0"))],
    );
    let r = reqwest::get(backend.url("/api/health/cluster"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    backend.stop();
    assert_eq!(body["status"], "degraded");
    let peers = body["peers"].as_array().unwrap();
    assert!(peers.iter().all(|p| p["ok"] == false), "{body}");
    let redis = peers.iter().find(|p| p["name"] == "redis").unwrap();
    assert!(
        redis["error"].as_str().unwrap().contains("cannot connect"),
        "{redis}"
    );
    assert_eq!(redis["target"], format!("redis://{redis_down}/0"));
}

#[test]
fn a_bad_setting_stops_the_process_at_start_naming_it() {
    for (variable, value) in [
        ("AUTOBOT_AI_STACK_URL", "not-a-url"),
        ("AUTOBOT_UPSTREAM_TIMEOUT_MS", "later"),
    ] {
        let out = Launch::program(env!("CARGO_BIN_EXE_autobot-backend"))
            .env(variable, value)
            .env("OTEL_SDK_DISABLED", "true")
            .run();
        assert!(!out.status.success(), "{variable}");
        let stderr = &out.stderr;
        assert!(
            stderr.contains(variable) && stderr.contains(value),
            "{stderr}"
        );
    }
}

/// A VM without a CA trust store (no `ca-certificates`): the HTTP client's
/// TLS backend cannot start. The process stops at once saying what to
/// install, and does not panic. SSL_CERT_FILE/SSL_CERT_DIR point the TLS
/// backend at an empty store, as a minimal Debian has.
#[test]
fn without_a_ca_store_the_process_stops_at_start_saying_what_is_missing() {
    let store = tempfile::tempdir().unwrap();
    let empty = store.path().join("none.pem");
    std::fs::write(&empty, "").unwrap();
    let out = Launch::program(env!("CARGO_BIN_EXE_autobot-backend"))
        .env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", store.path())
        .env("OTEL_SDK_DISABLED", "true")
        .env("AUTOBOT_AUTH", "off")
        .run();
    let stderr = &out.stderr;
    assert_eq!(out.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("No CA certificates") && stderr.contains("apt-get install ca-certificates"),
        "{stderr}"
    );
}
