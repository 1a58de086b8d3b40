//! `POST /api/chat` → the ai-stack's `POST /v1/chat`.

use autobot_wire::chat::{ChatRequest, ChatResponse};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::routing::post;
use axum::{Json, Router};

use crate::upstream::post_json;
use crate::{AppError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/chat", post(chat))
}

async fn chat(
    State(state): State<AppState>,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Json<ChatResponse>, AppError> {
    let Json(request) = body?;
    request.validate().map_err(AppError::Invalid)?;
    let answer = post_json(
        &state.http,
        &state.peers.ai_stack,
        "/v1/chat",
        &request,
        state.cfg.upstream_timeout,
    )
    .await?;
    Ok(Json(answer))
}
