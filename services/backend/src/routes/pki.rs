//! `POST /api/pki/distribute {"targets"?}` → the pki-distributor's `POST /distribute`.
//! The distributor's answer (one result per target) is passed on as it is.

use autobot_wire::pki::DistributeRequest;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use crate::upstream::post_json;
use crate::{AppError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/pki/distribute", post(distribute))
}

async fn distribute(
    State(state): State<AppState>,
    body: Result<Json<DistributeRequest>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(request) = body?;
    if let Some(targets) = &request.targets
        && let Some(i) = targets.iter().position(|t| t.trim().is_empty())
    {
        return Err(AppError::Invalid(format!(
            "targets[{i}]: must not be empty"
        )));
    }
    let answer = post_json(
        &state.http,
        &state.peers.pki,
        "/distribute",
        &request,
        state.cfg.upstream_timeout,
    )
    .await?;
    Ok(Json(answer))
}
