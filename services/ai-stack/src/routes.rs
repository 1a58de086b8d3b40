//! The handlers: parse, validate, call the gateway, answer.

use autobot_wire::chat::{ChatRequest, ChatResponse, ModelsResponse, Provider};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use serde::Deserialize;

use crate::{AppError, AppState};

pub async fn chat(
    State(state): State<AppState>,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Json<ChatResponse>, AppError> {
    let Json(request) = body?;
    request.validate().map_err(AppError::Invalid)?;
    // Nothing reaches an LLM server outside the limits (AUTOBOT_LLM_*).
    let admitted = state
        .gateway
        .config()
        .admit(&request)
        .map_err(AppError::Invalid)?;
    Ok(Json(state.gateway.chat(&request, admitted).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsQuery {
    provider: Option<Provider>,
}

pub async fn models(
    State(state): State<AppState>,
    query: Result<Query<ModelsQuery>, QueryRejection>,
) -> Result<Json<ModelsResponse>, AppError> {
    let Query(query) = query?;
    let provider = query
        .provider
        .unwrap_or(state.gateway.config().default_provider);
    state
        .gateway
        .config()
        .serves(provider)
        .map_err(AppError::Invalid)?;
    Ok(Json(state.gateway.models(provider).await?))
}

pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "service": crate::SERVICE_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "default_provider": state.gateway.config().default_provider,
    }))
}
