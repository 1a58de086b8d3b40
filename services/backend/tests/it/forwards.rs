//! The thin forwards: `POST /api/browse` → browser `POST /navigate`,
//! `POST /api/pki/distribute` → pki-distributor `POST /distribute`. The
//! peer's answer and its errors (status and message) are passed on; a peer
//! that is down is a 502 with the trace id.

use serde_json::{Value, json};

use crate::support::peers::Peers;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_and_distribute_are_forwarded_in_the_callers_trace() {
    let receiver = TraceTool::start();
    let peers = Peers::start().await;
    let mut backend = start_backend(
        &receiver,
        "http://127.0.0.1:9",
        &[
            ("AUTOBOT_BROWSER_URL", peers.url()),
            ("AUTOBOT_PKI_URL", peers.url()),
        ],
    );
    let http = reqwest::Client::new();
    let r = http
        .post(backend.url("/api/browse"))
        .header("traceparent", caller_traceparent())
        .json(&json!({ "url": "https://example.org/page", "timeout_ms": 5000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["title"], "A page");

    let r = http
        .post(backend.url("/api/pki/distribute"))
        .header("traceparent", caller_traceparent())
        .json(&json!({ "targets": ["npu-worker"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["results"],
        json!([{"target": "npu-worker", "ok": true, "files_copied": 3}])
    );

    let seen = peers.seen();
    let (_, headers, navigate) = seen.iter().find(|(p, _, _)| p == "/navigate").unwrap();
    assert_eq!(
        navigate,
        &json!({ "url": "https://example.org/page", "timeout_ms": 5000 }),
        "the body is passed on whole"
    );
    assert!(
        headers["traceparent"]
            .to_str()
            .unwrap()
            .contains(CALLER_TRACE)
    );
    let (_, _, distribute) = seen.iter().find(|(p, _, _)| p == "/distribute").unwrap();
    assert_eq!(distribute, &json!({ "targets": ["npu-worker"] }));

    let spans = receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().any(|s| s.name == "POST /api/browse")
                && s.iter().any(|s| s.name == "POST /api/pki/distribute")
                && s.iter().filter(|s| s.kind == Kind::Client).count() == 2
        })
        .await;
    backend.stop();
    for route in ["POST /api/browse", "POST /api/pki/distribute"] {
        let server = one(&spans, "autobot-backend", route);
        assert_eq!(server.parent.as_deref(), Some(CALLER_SPAN));
        let client = spans
            .iter()
            .find(|s| s.kind == Kind::Client && s.parent.as_ref() == Some(&server.span_id))
            .unwrap();
        let sent = client.span_id.as_str();
        assert!(
            seen.iter()
                .any(|(_, h, _)| h["traceparent"].to_str().unwrap().contains(sent)),
            "the peer saw the CLIENT span of {route} as its parent"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_errors_are_passed_on_and_a_peer_down_is_a_502() {
    let receiver = TraceTool::start();
    let peers = Peers::start().await;
    let down = free_addr();
    let mut backend = start_backend(
        &receiver,
        "http://127.0.0.1:9",
        &[
            ("AUTOBOT_BROWSER_URL", peers.url()),
            ("AUTOBOT_PKI_URL", format!("http://{down}")),
        ],
    );
    let http = reqwest::Client::new();
    let r = http
        .post(backend.url("/api/browse"))
        .json(&json!({ "url": "ftp://files.example.org/x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the browser's status is passed on");
    let trace = traceresponse_trace_id(&r);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("only http and https URLs are allowed"),
        "{body}"
    );
    assert_eq!(body["trace_id"], trace.as_str());

    let r = http
        .post(backend.url("/api/pki/distribute"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let trace = traceresponse_trace_id(&r);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("pki-distributor is unreachable"),
        "{body}"
    );
    assert_eq!(body["trace_id"], trace.as_str());
    backend.stop();
}
