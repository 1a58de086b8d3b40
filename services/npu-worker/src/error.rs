//! Every failure the worker's HTTP API answers with, mapped to HTTP in one
//! place: `{"error": "...", "trace_id": "..."}`.

use autobot_lifecycle::http::{error_response, json_rejection};
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::inference::InferenceError;

/// Errors of the HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body could not be read as the JSON asked for (400, 413, 415).
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        let (status, message) = json_rejection(&r);
        Self::Rejected { status, message }
    }
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Rejected { status, .. } => *status,
            Self::Inference(e) => match e {
                InferenceError::InvalidInput(_) => StatusCode::BAD_REQUEST,
                InferenceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                InferenceError::ModelUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                InferenceError::Failed(_) | InferenceError::Crashed(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        error_response(status, self.to_string())
    }
}
