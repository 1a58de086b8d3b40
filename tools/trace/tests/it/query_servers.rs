//! `show`, `check` and `smoke` against the query servers an operator meets:
//! a Jaeger after v2.20 (API v3 only: every removed v1 route a plain 404, as
//! Jaeger's `/api/` catch-all answers) and a Jaeger without API v3 (v1
//! only). Both are small servers in this test speaking Jaeger's wire format
//! (the routes of `autobot_trace::query`, checked against Jaeger's recorded
//! answers in `api_v3.rs`); one more answers with Jaeger's recorded bodies
//! themselves.

use std::net::SocketAddr;
use std::sync::Arc;

use autobot_trace::store::Store;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::support::{cli, raw_span, request};

#[derive(Clone, Copy, Debug)]
enum Server {
    /// Jaeger ≥ 2.21: API v3; v1 search gone (404).
    V3Only,
    /// A Jaeger without API v3.
    V1Only,
}

async fn listen(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Go's `http.NotFound`, what Jaeger answers for an `/api/` route it lacks.
async fn go_not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
}

async fn query_server(kind: Server, store: Arc<Store>) -> String {
    let routes = match kind {
        Server::V3Only => autobot_trace::query::v3::routes(),
        Server::V1Only => autobot_trace::query::v1::routes(),
    };
    let router = routes.fallback(go_not_found).with_state(store);
    format!("http://{}", listen(router).await)
}

/// backend → browser, npu-worker (over Redis), ai-stack: the research trace
/// shape `smoke` checks, under `parent` (0: the backend span is the root).
fn research_spans(trace: u128, parent: u64) -> Vec<(&'static str, Vec<Span>)> {
    vec![
        (
            "autobot-backend",
            vec![raw_span(trace, 10, parent, "POST /api/research")],
        ),
        (
            "autobot-browser",
            vec![raw_span(trace, 11, 10, "POST /navigate")],
        ),
        (
            "autobot-npu-worker",
            vec![raw_span(trace, 12, 10, "process autobot:jobs:npu")],
        ),
        (
            "autobot-ai-stack",
            vec![raw_span(trace, 13, 10, "POST /v1/chat")],
        ),
    ]
}

async fn run(args: &[&str]) -> (i32, String) {
    let (code, out, err) = cli(args).await;
    (code, format!("{out}{err}"))
}

#[tokio::test]
async fn show_and_check_work_against_a_v3_only_and_a_v1_only_jaeger() {
    for kind in [Server::V3Only, Server::V1Only] {
        let store = Arc::new(Store::new(1000));
        let whole = 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c_u128;
        let orphan = 0x0af7_6519_16cd_43dd_8448_eb21_1c80_0001_u128;
        store.insert(request(&research_spans(whole, 0)));
        store.insert(request(&research_spans(orphan, 0x00f0_67aa_0ba9_02b7)));
        let url = query_server(kind, store).await;
        let id = |t: u128| format!("{t:032x}");

        let (code, out) = run(&["show", &id(whole), "--jaeger", &url]).await;
        assert_eq!(code, 0, "{kind:?}: {out}");
        assert!(out.contains("4 spans, 4 services"), "{kind:?}: {out}");
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .starts_with("autobot-backend POST /api/research [server]"),
            "{kind:?}: {out}"
        );

        let services = "autobot-backend,autobot-browser,autobot-npu-worker,autobot-ai-stack";
        let check = |trace: String, extra: &'static [&'static str]| {
            let url = url.clone();
            async move {
                let mut args = vec!["check", &trace, "--services", services, "--wait", "1s"];
                args.extend(["--jaeger", &url]);
                args.extend(extra);
                run(&args).await
            }
        };
        let (code, out) = check(id(whole), &[]).await;
        assert_eq!(code, 0, "{kind:?}: {out}");
        let (code, out) = check(id(orphan), &[]).await;
        assert_eq!(code, 1, "{kind:?}: {out}");
        assert!(
            out.contains("orphan span 000000000000000a (autobot-backend POST /api/research): its parent 00f067aa0ba902b7 is not in the trace"),
            "{kind:?}: {out}"
        );
        let (code, out) = check(id(orphan), &["--remote-parent", "00f067aa0ba902b7"]).await;
        assert_eq!(code, 0, "{kind:?}: {out}");
        assert!(
            out.contains("continuing remote parent 00f067aa0ba902b7"),
            "{out}"
        );

        let (code, out) = check(id(whole + 1), &[]).await;
        assert_eq!(code, 1, "{kind:?}: {out}");
        assert!(out.contains("trace not found"), "{kind:?}: {out}");
    }
}

#[tokio::test]
async fn the_client_searches_over_v3_or_v1_and_knows_which() {
    use autobot_trace::{JaegerClient, QueryApi, TraceSearch};
    for (kind, api) in [
        (Server::V3Only, QueryApi::V3),
        (Server::V1Only, QueryApi::V1),
    ] {
        let store = Arc::new(Store::new(1000));
        store.insert(request(&research_spans(7, 0)));
        store.insert(request(&research_spans(8, 0)));
        let client = JaegerClient::new(&query_server(kind, store).await).unwrap();
        assert_eq!(client.api().await.unwrap(), api);
        let mut services = client.services().await.unwrap();
        services.sort();
        assert_eq!(services.len(), 4, "{kind:?}: {services:?}");
        let found = client
            .find_traces(&TraceSearch::service("autobot-browser"))
            .await
            .unwrap();
        let mut ids: Vec<&str> = found.iter().map(|t| t.trace_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["0000000000000007", "0000000000000008"], "{kind:?}");
        assert!(found.iter().all(|t| t.spans.len() == 4), "{kind:?}");
        let mut search = TraceSearch::service("autobot-browser");
        search.operation = Some("nothing".into());
        assert!(
            client.find_traces(&search).await.unwrap().is_empty(),
            "{kind:?}"
        );
        assert!(
            client
                .trace(autobot_trace::TraceId(9))
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// Jaeger's recorded answers, served as recorded: the client reads them.
#[tokio::test]
async fn jaegers_recorded_answers_are_read() {
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/fixtures/jaeger/apiv3/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let (services, trace) = (fixture("GetServices"), fixture("GetTrace"));
    let router = axum::Router::new()
        .route(
            "/api/v3/services",
            axum::routing::get(move || async move { services }),
        )
        .route(
            "/api/v3/traces/00000000000000000000000000000001",
            axum::routing::get(move || async move { trace }),
        )
        .fallback(go_not_found);
    let url = format!("http://{}", listen(router).await);
    let (code, out) = run(&["show", "1", "--jaeger", &url]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("trace 0000000000000001  1 spans, 1 services"),
        "{out}"
    );
    assert!(out.contains(" foobar [server] "), "{out}");
    assert!(out.contains(" ERROR"), "{out}");
    let (code, out) = run(&["check", "1", "--wait", "0s", "--jaeger", &url]).await;
    assert_eq!(code, 0, "{out}");
}

/// A backend stand-in for `smoke`: it answers `POST /api/research` with a
/// `traceresponse`, and its trace (four services, continuing the caller's
/// `traceparent` when there is one) lands in the store.
async fn fake_backend(store: Arc<Store>) -> String {
    let router = axum::Router::new().route(
        "/api/research",
        axum::routing::post(move |headers: HeaderMap| {
            let store = store.clone();
            async move {
                let caller = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| {
                        let parts: Vec<&str> = v.split('-').collect();
                        Some((
                            u128::from_str_radix(parts.get(1)?, 16).ok()?,
                            u64::from_str_radix(parts.get(2)?, 16).ok()?,
                        ))
                    });
                let (trace, parent) = caller.unwrap_or((0x5eed_u128 << 64 | 42, 0));
                store.insert(request(&research_spans(trace, parent)));
                (
                    [("traceresponse", format!("00-{trace:032x}-{:016x}-01", 10))],
                    axum::Json(serde_json::json!({"answer": "traceparent"})),
                )
            }
        }),
    );
    format!("http://{}", listen(router).await)
}

#[tokio::test]
async fn smoke_works_against_both_and_passes_its_own_remote_parent() {
    for kind in [Server::V3Only, Server::V1Only] {
        let store = Arc::new(Store::new(1000));
        let jaeger = query_server(kind, store.clone()).await;
        let backend = fake_backend(store).await;
        for force in [false, true] {
            let mut args = vec![
                "smoke",
                "--backend",
                &backend,
                "--jaeger",
                &jaeger,
                "--wait",
                "5s",
            ];
            if force {
                args.push("--force-sample");
            }
            let (code, out) = run(&args).await;
            assert_eq!(code, 0, "{kind:?} force={force}: {out}");
            assert!(out.contains("OK smoke: trace"), "{out}");
        }
    }
}
