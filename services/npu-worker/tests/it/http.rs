//! The HTTP API, driven in process through `app()`.

use std::sync::Arc;

use autobot_npu_worker::{AppState, Npu, RedisProbe, app};
use autobot_testkit::redis::RedisServer;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::model_dir;

fn state(npu: Npu, redis_url: &str) -> AppState {
    AppState {
        npu,
        redis: Arc::new(RedisProbe::new(redis_url).unwrap()),
        stats: Arc::new(Default::default()),
        consumer_name: "test".into(),
    }
}

async fn call(app: axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn post(body: &str) -> Request<Body> {
    Request::post("/inference")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn inference_health_and_models_with_the_model_and_redis() {
    let redis = RedisServer::start().unwrap();
    let app = app(state(Npu::load(Some(&model_dir())), &redis.url()));

    let (status, body) = call(app.clone(), post(r#"{"texts":["hello","world"]}"#)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dimensions"], 384);
    assert_eq!(body["embeddings"].as_array().unwrap().len(), 2);

    let (status, body) = call(
        app.clone(),
        Request::get("/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["redis"]["reachable"].as_bool(),
            body["model"]["loaded"].as_bool()
        ),
        (Some(true), Some(true))
    );

    let (status, body) = call(
        app.clone(),
        Request::get("/models").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["models"][0]["id"], "all-MiniLM-L6-v2");
    assert_eq!(body["models"][0]["max_tokens"], 256);

    // Redis gone: health says so.
    drop(redis);
    let (status, body) = call(app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["redis"]["reachable"], false);
}

#[tokio::test]
async fn bad_input_is_a_clear_client_error() {
    let app = app(state(
        Npu::load(Some(&model_dir())),
        "redis://127.0.0.1:1/0",
    ));
    let (status, body) = call(app.clone(), post(r#"{"texts":[]}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("empty"), "{body}");
    let (status, body) = call(app.clone(), post(r#"{"text":"x"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("texts"), "{body}");
    let many = serde_json::json!({ "texts": vec!["a"; 257] }).to_string();
    let (status, _) = call(app.clone(), post(&many)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let long = serde_json::json!({ "texts": ["x".repeat(8193)] }).to_string();
    let (status, body) = call(app, post(&long)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].as_str().unwrap().contains("8192"), "{body}");
}

#[tokio::test]
async fn without_a_model_inference_is_refused_and_health_says_why() {
    let redis = RedisServer::start().unwrap();
    let app = app(state(Npu::load(None), &redis.url()));
    let (status, body) = call(app.clone(), post(r#"{"texts":["hello"]}"#)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("AUTOBOT_NPU_MODEL_DIR"),
        "{body}"
    );
    let (status, body) = call(app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["model"]["loaded"], false);
    assert_eq!(body["redis"]["reachable"], true);
}

#[tokio::test]
async fn inference_over_http_continues_the_callers_trace_in_an_npu_inference_span() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let cfg = autobot_tracing::TracingConfig {
        log_filter: "warn".into(),
        ..Default::default()
    };
    let _guard =
        autobot_tracing::init_with_exporter("autobot-npu-worker", "0.0.0", cfg, exporter.clone())
            .unwrap();
    let app = app(state(
        Npu::load(Some(&model_dir())),
        "redis://127.0.0.1:1/0",
    ));
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let req = Request::post("/inference")
        .header("content-type", "application/json")
        .header(
            "traceparent",
            format!("00-{caller_trace}-00f067aa0ba902b7-01"),
        )
        .body(Body::from(r#"{"texts":["one","two"]}"#))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("traceresponse"));

    let spans = exporter.get_finished_spans().unwrap();
    let server = spans
        .iter()
        .find(|s| s.name == "POST /inference")
        .unwrap_or_else(|| panic!("{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()));
    let inference = spans.iter().find(|s| s.name == "npu.inference").unwrap();
    assert_eq!(server.span_context.trace_id().to_string(), caller_trace);
    assert_eq!(inference.parent_span_id, server.span_context.span_id());
    let attr = |key: &str| {
        inference
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("npu.model").as_deref(), Some("all-MiniLM-L6-v2"));
    assert_eq!(attr("npu.batch_size").as_deref(), Some("2"));
    assert_eq!(attr("npu.token_count").as_deref(), Some("6"));
}
