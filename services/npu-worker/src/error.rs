//! The one place where errors become HTTP responses.

use autobot_lifecycle::http::error_response;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::inference::InferenceError;

/// Errors of the HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not the JSON the route takes.
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
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
