//! Every failure the distributor's HTTP API answers with, mapped to HTTP in
//! one place: `{"error": "...", "trace_id": "..."}`.

use autobot_lifecycle::http::error_response;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::distribute::DistributeError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body could not be read as a distribution request (400, or 413 over the limit).
    #[error("bad request body: {message}")]
    Body { status: StatusCode, message: String },
    #[error(transparent)]
    Distribute(#[from] DistributeError),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Body { status, .. } => *status,
            Self::Distribute(DistributeError::UnknownTargets(_) | DistributeError::NoTargets) => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        // All are the caller's mistakes: answered, not logged as failures.
        error_response(self.status(), self.to_string())
    }
}
