//! `POST /api/browse {"url", ...}` → the browser service's `POST /navigate`.
//! The body is passed on as it is (the browser owns its options); only the
//! `url` the backend's API promises is checked here.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use crate::upstream::post_json;
use crate::{AppError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/browse", post(browse))
}

async fn browse(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(request) = body?;
    let Some(object) = request.as_object() else {
        return Err(AppError::Invalid("the body must be a JSON object".into()));
    };
    match object.get("url") {
        Some(Value::String(url)) if !url.trim().is_empty() => {}
        Some(Value::String(_)) => return Err(AppError::Invalid("url: must not be empty".into())),
        Some(_) => return Err(AppError::Invalid("url: must be a string".into())),
        None => return Err(AppError::Invalid("url: missing field".into())),
    }
    let answer = post_json(
        &state.http,
        &state.peers.browser,
        "/navigate",
        &request,
        state.cfg.upstream_timeout,
    )
    .await?;
    Ok(Json(answer))
}
