//! The HTTP API, driven through `app()` without a socket.

use autobot_pki_distributor::distribute::Distributor;
use autobot_pki_distributor::{AppState, app};
use autobot_wire::error::ErrorBody;
use autobot_wire::pki::{DistributeResponse, StatusResponse};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::cluster::{Cluster, Vm};

async fn call(router: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

fn build_router(cluster: &Cluster) -> axum::Router {
    app(AppState::new(Distributor::new(cluster.config()).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_bad_requests_are_answered_in_json() {
    let cluster = Cluster::start(&[Vm::Down], "http://127.0.0.1:9/v1/traces");
    let router = build_router(&cluster);
    let (status, body) = call(&router, "GET", "/health", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"],
        "ok"
    );

    let (status, body) = call(
        &router,
        "POST",
        "/distribute",
        r#"{"targets": ["nope", "vm-0-down"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err: ErrorBody = serde_json::from_slice(&body).unwrap();
    assert!(
        err.error.contains("nope") && !err.error.contains("vm-0-down"),
        "{err:?}"
    );

    let (status, body) = call(&router, "POST", "/distribute", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        serde_json::from_slice::<ErrorBody>(&body)
            .unwrap()
            .error
            .contains("bad request body")
    );

    let (status, body) = call(
        &router,
        "POST",
        "/distribute",
        r#"{"targets": ["vm-0-down"], "force": true}"#,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    assert!(
        serde_json::from_slice::<ErrorBody>(&body)
            .unwrap()
            .error
            .contains("force")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_distribute_reports_each_target_and_status_remembers_it() {
    let cluster = Cluster::start(
        &[Vm::AcceptEnv, Vm::Down, Vm::UnknownHostKey],
        "http://127.0.0.1:9/v1/traces",
    );
    let router = build_router(&cluster);
    let (status, body) = call(&router, "GET", "/status", "").await;
    assert_eq!(status, StatusCode::OK);
    let before: StatusResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(before.targets.len(), 3);
    assert!(before.targets.iter().all(|t| t.last_distribution.is_none()));

    // An empty body means every target; the down one fails, the other installs.
    let (status, body) = call(&router, "POST", "/distribute", "").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let response: DistributeResponse = serde_json::from_slice(&body).unwrap();
    let up = &response.results[0];
    let down = &response.results[1];
    assert!(up.ok, "{up:?}");
    assert!(!down.ok);
    assert_eq!(down.error_type.as_deref(), Some("connect_error"));
    assert!(
        down.error.as_deref().unwrap().contains("cannot connect"),
        "{down:?}"
    );

    let (_, body) = call(&router, "GET", "/status", "").await;
    let after: StatusResponse = serde_json::from_slice(&body).unwrap();
    let up_status = after
        .targets
        .iter()
        .find(|t| t.target == up.target)
        .unwrap();
    assert!(up_status.last_distribution.as_ref().unwrap().ok);
    assert_eq!(up_status.certificate, up.certificate);
    let down_status = after
        .targets
        .iter()
        .find(|t| t.target == down.target)
        .unwrap();
    let last = down_status.last_distribution.as_ref().unwrap();
    assert!(!last.ok);
    assert!(last.error.is_some());
    assert!(down_status.certificate.is_none());

    // The status is on disk: a new process (here a new Distributor) sees it.
    let (_, body) = call(&build_router(&cluster), "GET", "/status", "").await;
    let reread: StatusResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(reread.targets, after.targets);
}

/// What the backend will do: call `POST /distribute` inside its own trace.
/// The run continues that trace down to each VM's `pki.install`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_distribute_continues_the_callers_trace_down_to_the_agent() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let tool = autobot_testkit::trace_tool::TraceTool::start();
    let cfg = autobot_tracing::TracingConfig::from_lookup(|k| match k {
        "AUTOBOT_JAEGER_ENDPOINT" => Some(tool.otlp_grpc_endpoint()),
        _ => None,
    })
    .unwrap();
    let guard = autobot_tracing::init_with("autobot-pki-distributor", "test", cfg).unwrap();
    let cluster = Cluster::start(&[Vm::NoAcceptEnv], &tool.otlp_http_endpoint());
    let router = build_router(&cluster);

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let req = Request::builder()
        .method("POST")
        .uri("/distribute")
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .body(Body::from("{}"))
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let traceresponse = resp
        .headers()
        .get("traceresponse")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(traceresponse.contains(caller_trace), "{traceresponse}");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let response: DistributeResponse = serde_json::from_slice(&body).unwrap();
    assert!(response.results[0].ok, "{response:?}");
    assert_eq!(response.trace_id.as_deref(), Some(caller_trace));
    guard.shutdown().await;

    let spans = tool
        .wait_for_spans(caller_trace, |s| {
            s.iter().any(|s| s.name == "pki.install")
                && s.iter().any(|s| s.name == "POST /distribute")
        })
        .await;
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} in {spans:#?}"))
    };
    let server = find("POST /distribute");
    let run = find("pki.distribute");
    let target = find("ssh.distribute_certificates");
    let install = find("pki.install");
    // All four came back under the caller's trace id, each under the one before.
    assert_eq!(server.parent.as_deref(), Some(caller_span));
    assert_eq!(run.parent.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(target.parent.as_deref(), Some(run.span_id.as_str()));
    assert_eq!(install.parent.as_deref(), Some(target.span_id.as_str()));
    assert_eq!(install.service, "autobot-pki-agent");
}
