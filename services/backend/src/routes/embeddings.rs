//! `POST /api/embeddings {"texts": [...]}` → an `embed` job on the Redis
//! Stream, answered by an npu-worker. The PRODUCER span `send
//! autobot:jobs:npu` carries the trace across the queue; the worker's
//! CONSUMER span is its child.

use autobot_jobs::{FailureCode, JobOutcome, JobResult};
use autobot_wire::jobs::{EmbedRequest, EmbedResponse, KIND_EMBED};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use crate::{AppError, AppState};

/// At most this many texts per request.
pub const MAX_TEXTS: usize = 256;
/// At most this many characters per text.
pub const MAX_TEXT_CHARS: usize = 8192;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/embeddings", post(embeddings))
}

async fn embeddings(
    State(state): State<AppState>,
    body: Result<Json<EmbedRequest>, JsonRejection>,
) -> Result<Json<EmbedResponse>, AppError> {
    let Json(request) = body?;
    validate(&request.texts)?;
    Ok(Json(embed(&state, request.texts).await?))
}

/// Checks a list of texts to embed: 400 for none or an empty one, 413 for too many or too long.
pub fn validate(texts: &[String]) -> Result<(), AppError> {
    if texts.is_empty() {
        return Err(AppError::Invalid(
            "texts: at least one text is needed".into(),
        ));
    }
    if texts.len() > MAX_TEXTS {
        return Err(AppError::Rejected {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "texts: {} texts, at most {MAX_TEXTS} per request",
                texts.len()
            ),
        });
    }
    for (i, text) in texts.iter().enumerate() {
        if text.trim().is_empty() {
            return Err(AppError::Invalid(format!("texts[{i}]: must not be empty")));
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(AppError::Rejected {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("texts[{i}]: {chars} characters, at most {MAX_TEXT_CHARS}"),
            });
        }
    }
    Ok(())
}

/// Runs one `embed` job and reads its result.
pub async fn embed(state: &AppState, texts: Vec<String>) -> Result<EmbedResponse, AppError> {
    let payload =
        serde_json::to_value(EmbedRequest { texts }).map_err(|e| AppError::Queue(e.to_string()))?;
    let result: JobResult = state
        .jobs
        .request(KIND_EMBED, payload, state.cfg.npu_timeout)
        .await?;
    match result.outcome {
        JobOutcome::Ok { result } => {
            serde_json::from_value(result).map_err(|e| AppError::UpstreamInvalid {
                peer: "npu-worker",
                detail: e.to_string(),
            })
        }
        JobOutcome::Error { error } => {
            let status = match error.code {
                FailureCode::InvalidPayload => StatusCode::BAD_REQUEST,
                FailureCode::ModelUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            };
            Err(AppError::JobFailed {
                status,
                message: error.to_string(),
            })
        }
    }
}
