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
