//! # autobot-jobs
//!
//! Jobs over Redis Streams, at least once, with one trace across the queue.
//!
//! - [`JobProducer`] (the backend): [`JobProducer::submit`] adds the job to
//!   the stream (XADD, capped with `MAXLEN ~`) inside a PRODUCER span
//!   `send {stream}` whose context travels in the envelope's `trace` map;
//!   [`JobProducer::wait`] takes the result from the job's `reply_to` list
//!   (BLPOP) or gives up with [`JobsError::Timeout`] naming the job, which
//!   still runs. [`JobProducer::request`] does both.
//! - [`Consumer`] (the workers): a consumer group read with XREADGROUP; the
//!   entries of dead consumers are reclaimed with XAUTOCLAIM; each job runs
//!   in a CONSUMER span `process {stream}` whose parent is the producer's
//!   span (and which links to it); the result is pushed on `reply_to` BEFORE
//!   the entry is acknowledged; a job delivered too often, or unreadable, goes
//!   to the dead-letter stream and its caller gets an error result.
//!   A lost connection is re-made with backoff; no job is lost.
//!
//! A caller (the backend's `POST /api/embeddings`), inside its request span:
//!
//! ```text
//! let jobs = JobProducer::new(ProducerConfig::npu(&redis_url))?;     // once, at start
//! let job = jobs.submit(KIND_EMBED, json!({"texts": texts})).await?;  // PRODUCER span + XADD
//! match jobs.wait(&job, timeout).await {
//!     Ok(JobResult { outcome: JobOutcome::Ok { result }, .. }) => /* EmbedResponse JSON */,
//!     Ok(JobResult { outcome: JobOutcome::Error { error }, .. }) => /* map error.code */,
//!     Err(JobsError::Timeout { job_id, .. }) => /* 504 naming job_id; the job still runs */,
//!     Err(e) => /* Redis unreachable: 503 */,
//! }
//! ```

mod backoff;
mod consumer;
mod error;
mod link;
mod producer;
mod redis_client;

pub use autobot_wire::jobs::{
    FailureCode, JobEnvelope, JobFailure, JobOutcome, JobResult, NPU_CONSUMER_GROUP,
    NPU_DEAD_LETTER_STREAM, NPU_STREAM,
};
pub use consumer::{Consumer, ConsumerConfig, ConsumerStats, JobHandler, default_consumer_name};
pub use error::JobsError;
pub use producer::{JobProducer, ProducerConfig, SubmittedJob};
pub use redis_client::RedisClient;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Opens a multiplexed connection whose replies may take `response_timeout`
/// (blocking commands need more than redis-rs's 500 ms default).
pub(crate) async fn connect(
    client: &RedisClient,
    response_timeout: std::time::Duration,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    client.connect(response_timeout).await
}

/// Whether a Redis error means "the connection is gone": reconnect and retry.
pub(crate) fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.code() == Some("LOADING")
}
