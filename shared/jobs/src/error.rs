//! What can go wrong on the jobs path.

use std::time::Duration;

/// Errors of [`crate::JobProducer`] and [`crate::Consumer`].
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The Redis URL does not parse (the URL itself is not repeated: it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No result in time. The job is not lost: it stays queued and runs.
    #[error("job {job_id}: no result after {} ms (the job is still queued and will run)", waited.as_millis())]
    Timeout { job_id: String, waited: Duration },
    /// The job's envelope is over the byte limit; it was not queued.
    #[error(
        "the job is {bytes} bytes, over the limit of {limit} (AUTOBOT_JOBS_MAX_PAYLOAD_BYTES); it was not queued"
    )]
    PayloadTooLarge { bytes: usize, limit: usize },
    /// The stream holds its limit of unprocessed jobs; this one was not queued.
    #[error("the job queue is full ({queued} jobs not yet processed, limit {limit}); retry later")]
    QueueFull { queued: usize, limit: usize },
    /// The result on `reply_to` is not a job result.
    #[error("job {job_id}: unreadable result: {source}")]
    BadResult {
        job_id: String,
        source: serde_json::Error,
    },
}

impl JobsError {
    /// Low-cardinality class, for `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid_url",
            Self::Redis(e) if crate::is_connection_error(e) => "redis_unreachable",
            Self::Redis(_) => "redis_error",
            Self::Timeout { .. } => "timeout",
            Self::BadResult { .. } => "bad_result",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::QueueFull { .. } => "queue_full",
        }
    }

    /// The job id, for the errors that concern one job.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Self::Timeout { job_id, .. } | Self::BadResult { job_id, .. } => Some(job_id),
            _ => None,
        }
    }
}
