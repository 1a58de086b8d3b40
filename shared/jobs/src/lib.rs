//! # autobot-jobs
//!
//! Jobs over Redis Streams, at least once, with one trace across the queue.
//!
//! - [`JobProducer`] (the backend): [`JobProducer::submit`] adds the job to
//!   the stream (XADD; a job over `max_payload_bytes` is refused; at
//!   `max_len` entries only processed ones are trimmed, and a job that still
//!   finds the stream full is refused, never an older one dropped) inside a PRODUCER span
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
mod metrics;
mod producer;
mod redis_client;

pub use autobot_wire::jobs::{
    FailureCode, JobEnvelope, JobFailure, JobOutcome, JobResult, NPU_CONSUMER_GROUP,
    NPU_DEAD_LETTER_STREAM, NPU_STREAM,
};
pub use consumer::{Consumer, ConsumerConfig, ConsumerStats, JobHandler, default_consumer_name};
pub use error::JobsError;
pub use producer::{
    DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_REPLY_CONNECTIONS, JobProducer, ProducerConfig,
    ProducerStats, SubmittedJob,
};
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

/// XGROUP CREATE stream group `$` MKSTREAM: a missing group starts at the
/// stream's end, so entries already in the stream (acknowledged ones, after
/// the group was deleted) are not run again. The producer creates it before
/// its first job, so a job never waits in a stream without its group.
pub(crate) async fn create_group_from_now(
    con: &mut redis::aio::MultiplexedConnection,
    target: &autobot_tracing::redis::RedisTarget,
    stream: &str,
    group: &str,
) -> redis::RedisResult<bool> {
    let mut cmd = redis::cmd("XGROUP");
    cmd.arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("$")
        .arg("MKSTREAM");
    match autobot_tracing::redis::query::<(), _>(con, target, &cmd).await {
        Ok(()) => {
            tracing::info!(
                stream,
                group,
                "created the consumer group (from new entries on)"
            );
            Ok(true)
        }
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
        Err(e) => Err(e),
    }
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
