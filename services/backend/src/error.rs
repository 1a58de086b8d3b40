//! Every failure the backend answers with, mapped to HTTP in one place:
//! `{"error": "...", "trace_id": "..."}`.

use autobot_lifecycle::http::{error_response, json_rejection};
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body could not be read as the JSON asked for (400, 413, 415).
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// The body parsed but is not a valid request.
    #[error("{0}")]
    Invalid(String),
    /// No answer from a peer service: connection refused, reset, DNS.
    #[error("{peer} is unreachable at {url}: {detail}")]
    UpstreamUnreachable {
        peer: &'static str,
        url: String,
        detail: String,
    },
    #[error("{peer} did not answer within {timeout_ms} ms")]
    UpstreamTimeout { peer: &'static str, timeout_ms: u64 },
    /// A peer answered with an error: its status and its message are passed on.
    #[error("{peer}: {message}")]
    Upstream {
        peer: &'static str,
        status: StatusCode,
        message: String,
    },
    /// The NPU job got no result in time; it stays queued and still runs.
    #[error("{0}")]
    JobTimeout(String),
    /// Redis (the job queue) could not take or answer the job.
    #[error("job queue: {0}")]
    Queue(String),
    /// The job queue refused the job: too large (413) or full (503).
    #[error("job queue: {message}")]
    QueueRefused { status: StatusCode, message: String },
    /// The worker answered the job with an error.
    #[error("npu-worker: {message}")]
    JobFailed { status: StatusCode, message: String },
    /// The request is well-formed but the data it points at cannot answer it.
    #[error("{0}")]
    Unprocessable(String),
    /// A peer answered 2xx with a body that is not what it should send.
    #[error("{peer} sent an answer that could not be read: {detail}")]
    UpstreamInvalid { peer: &'static str, detail: String },
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        let (status, message) = json_rejection(&r);
        Self::Rejected { status, message }
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Rejected { status, .. } => *status,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::UpstreamUnreachable { .. } | Self::UpstreamInvalid { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Self::UpstreamTimeout { .. } | Self::JobTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Queue(_) => StatusCode::BAD_GATEWAY,
            Self::JobFailed { status, .. } | Self::QueueRefused { status, .. } => *status,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Upstream { status, .. } => *status,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "{self}");
        }
        error_response(status, self.to_string())
    }
}

impl From<autobot_jobs::JobsError> for AppError {
    fn from(e: autobot_jobs::JobsError) -> Self {
        match e {
            autobot_jobs::JobsError::Timeout { .. } => Self::JobTimeout(e.to_string()),
            autobot_jobs::JobsError::PayloadTooLarge { .. } => Self::QueueRefused {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: e.to_string(),
            },
            autobot_jobs::JobsError::QueueFull { .. } => Self::QueueRefused {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
            },
            other => Self::Queue(other.to_string()),
        }
    }
}
