//! HTTP API: `POST /distribute`, `GET /status`, `GET /health`.

use autobot_lifecycle::http::json_body;
use autobot_wire::pki::{DistributeRequest, DistributeResponse, StatusResponse};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::AppState;
use crate::error::AppError;

/// The routes, with their state; `crate::app` adds the layers every service has.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/distribute", post(distribute))
        .route("/status", get(status))
        .route("/health", get(health))
        .with_state(state)
}

/// `{"targets"?: [names]}` → one result per target; 200 even when some
/// targets failed (each result says why); 400 for unknown names. The body
/// is read whatever its Content-Type says.
async fn distribute(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DistributeResponse>, AppError> {
    // An empty body means "every target", as `{}` does.
    let request: DistributeRequest = match body {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => DistributeRequest::default(),
        body => json_body(body).map_err(|(status, message)| AppError::Body { status, message })?,
    };
    let _one_run = state.run_lock.lock().await;
    let response = state
        .distributor
        .distribute(request.targets.as_deref())
        .await?;
    Ok(Json(response))
}

async fn status(State(state): State<AppState>) -> Json<StatusResponse> {
    Json(state.distributor.status())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "service": crate::SERVICE_NAME}))
}
