//! HTTP: `GET /health`, `GET /models`, `POST /inference`.

use autobot_wire::jobs::{EmbedRequest, EmbedResponse};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::AppState;
use crate::error::AppError;

/// 200 when Redis answers and the model is loaded, else 503 saying which is missing.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let redis = state.redis.ping().await;
    let model = state.npu.info();
    let healthy = redis.is_ok() && model.loaded;
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "service": crate::SERVICE_NAME,
        "consumer": state.consumer_name,
        "redis": match &redis {
            Ok(()) => json!({"reachable": true}),
            Err(e) => json!({"reachable": false, "error": e}),
        },
        "model": model,
        "jobs_answered": state.stats.answered(),
        "jobs_dead_lettered": state.stats.dead_lettered(),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// The models this worker serves.
pub async fn models(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "models": [state.npu.info()] }))
}

/// `{"texts": [...]}` → the same embeddings as an `embed` job, synchronously.
pub async fn inference(
    State(state): State<AppState>,
    body: Result<Json<EmbedRequest>, JsonRejection>,
) -> Result<Json<EmbedResponse>, AppError> {
    let Json(request) = body?;
    Ok(Json(state.npu.embed(request.texts).await?))
}
