//! Every failure the ai-stack answers with, mapped to HTTP in one place:
//! `{"error": "...", "trace_id": "..."}`.

use autobot_lifecycle::http::{error_response, json_rejection};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::llm::LlmError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request body or query could not be read (400, 413, 415).
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// The body parsed but asks for something impossible.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Llm(#[from] LlmError),
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        let (status, message) = json_rejection(&r);
        Self::Rejected { status, message }
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        Self::Rejected {
            status: r.status(),
            message: r.body_text(),
        }
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Rejected { status, .. } => *status,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Llm(e) => e.status(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        error_response(self.status(), self.to_string())
    }
}
