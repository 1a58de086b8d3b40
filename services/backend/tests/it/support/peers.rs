//! A recording stand-in for the browser's `POST /navigate` and the
//! pki-distributor's `POST /distribute` (their services are built
//! elsewhere): it answers in their wire shapes, refuses what they refuse with
//! their `{"error"}` body, and keeps the headers it received.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, HeaderMap, Value)>>>);

pub struct Peers {
    pub addr: SocketAddr,
    seen: Seen,
}

impl Peers {
    pub async fn start() -> Self {
        let seen = Seen::default();
        let app = Router::new()
            .route("/navigate", post(navigate))
            .route("/distribute", post(distribute))
            .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<(String, HeaderMap, Value)> {
        self.seen.0.lock().unwrap().clone()
    }
}

async fn navigate(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    seen.0
        .lock()
        .unwrap()
        .push(("/navigate".into(), headers, body.clone()));
    let url = body["url"].as_str().unwrap_or_default();
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("only http and https URLs are allowed: {url}"), "trace_id": null})),
        )
            .into_response();
    }
    Json(json!({
        "url": url, "status": 200, "title": "A page", "description": "",
        "text": "Some text.", "passages": ["Some text."], "links": []
    }))
    .into_response()
}

async fn distribute(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    seen.0
        .lock()
        .unwrap()
        .push(("/distribute".into(), headers, body.clone()));
    let targets: Vec<String> = match body.get("targets") {
        Some(Value::Array(t)) => t
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec!["npu-worker".into(), "browser".into()],
    };
    if let Some(unknown) = targets.iter().find(|t| t.as_str() == "nowhere") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("unknown target {unknown}")})),
        )
            .into_response();
    }
    Json(json!({
        "results": targets.iter().map(|t| json!({"target": t, "ok": true, "files_copied": 3})).collect::<Vec<_>>()
    }))
    .into_response()
}
