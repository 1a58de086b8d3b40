//! The producer side: put a job on the stream, wait for its result.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autobot_tracing::redis::{RedisTarget, inject_context, producer_span, query};
use autobot_wire::jobs::{
    ENVELOPE_FIELD, JobEnvelope, JobResult, NPU_CONSUMER_GROUP, NPU_STREAM, REPLY_PREFIX,
};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamInfoGroupsReply, StreamPendingReply};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::link::Link;
use crate::{JobsError, is_connection_error, now_ms};

/// Longest single BLPOP; a longer wait is several, so a broken connection is noticed.
const WAIT_SLICE: Duration = Duration::from_secs(5);

/// Default of [`ProducerConfig::max_payload_bytes`] (and of the consumer's):
/// twice the backend's 1 MiB body limit, room for JSON escaping.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;
/// Default of [`ProducerConfig::reply_connections`].
pub const DEFAULT_REPLY_CONNECTIONS: usize = 16;

/// Where the producer sends jobs.
#[derive(Clone)]
pub struct ProducerConfig {
    /// `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS).
    pub redis_url: String,
    /// The stream, e.g. `autobot:jobs:npu`.
    pub stream: String,
    /// The consumer group the workers read with. Created (from `$`, with
    /// the stream) before the first job, so no job waits in a stream
    /// without a group; trimming keeps every entry it has not processed.
    pub group: String,
    /// Entries the stream may hold. At the cap the entries the group has
    /// processed are trimmed (XTRIM MINID, never an unprocessed one); if
    /// the stream is still full, `submit` refuses the job
    /// ([`JobsError::QueueFull`]).
    pub max_len: usize,
    /// A job whose envelope (JSON) is larger is refused
    /// ([`JobsError::PayloadTooLarge`]).
    pub max_payload_bytes: usize,
    /// Redis connections waiting for results at once (BLPOP blocks its
    /// connection); more waiters wait for one, within their own timeout.
    pub reply_connections: usize,
    /// How long Redis keeps a `reply_to` list nobody took.
    pub reply_ttl: Duration,
    /// How long `submit` keeps retrying while Redis is unreachable.
    pub submit_retry_for: Duration,
    /// The TLS files of a `rediss://` URL (AUTOBOT_TLS_*).
    pub redis_tls: Option<autobot_tls::TlsFiles>,
}

// The URL may hold a password: printed redacted.
impl std::fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerConfig")
            .field(
                "redis_url",
                &autobot_tracing::redact::redact_url_str(&self.redis_url),
            )
            .field("stream", &self.stream)
            .field("max_len", &self.max_len)
            .field("reply_ttl", &self.reply_ttl)
            .field("submit_retry_for", &self.submit_retry_for)
            .field("redis_tls", &self.redis_tls.is_some())
            .finish()
    }
}

impl ProducerConfig {
    /// The NPU job stream with its defaults.
    pub fn npu(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            stream: NPU_STREAM.to_owned(),
            group: NPU_CONSUMER_GROUP.to_owned(),
            max_len: 100_000,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            reply_connections: DEFAULT_REPLY_CONNECTIONS,
            reply_ttl: Duration::from_secs(600),
            submit_retry_for: Duration::from_secs(10),
            redis_tls: None,
        }
    }
}

/// A job the stream accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmittedJob {
    /// The job's id (also in the result).
    pub id: String,
    /// Its stream entry id.
    pub message_id: String,
    /// The list its result will be pushed on.
    pub reply_to: String,
    /// The trace the job belongs to (the PRODUCER span's), when traced.
    pub trace_id: Option<String>,
}

/// Puts jobs on a Redis Stream and waits for their results. Cheap to clone;
/// connects on first use, so it can be built while Redis is still down.
#[derive(Clone)]
pub struct JobProducer {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ProducerConfig,
    target: RedisTarget,
    client: crate::RedisClient,
    link: Link,
    /// Each waiter blocks its own connection (BLPOP would stall a shared
    /// one); a permit per connection bounds how many exist.
    idle_waiters: Mutex<Vec<MultiplexedConnection>>,
    reply_permits: Arc<Semaphore>,
    /// The group exists (created by us or found): checked once per process.
    group_ready: AtomicBool,
    stats: Arc<ProducerStats>,
}

/// Counters of the producer, for health checks and metrics.
#[derive(Debug, Default)]
pub struct ProducerStats {
    submitted: AtomicU64,
    refused_too_large: AtomicU64,
    refused_queue_full: AtomicU64,
    trimmed_processed: AtomicU64,
    waited_for_reply_connection: AtomicU64,
}

impl ProducerStats {
    /// Jobs the stream accepted.
    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }
    /// Jobs refused because their envelope was over `max_payload_bytes`.
    pub fn refused_too_large(&self) -> u64 {
        self.refused_too_large.load(Ordering::Relaxed)
    }
    /// Jobs refused because the stream held `max_len` unprocessed entries.
    pub fn refused_queue_full(&self) -> u64 {
        self.refused_queue_full.load(Ordering::Relaxed)
    }
    /// Processed entries removed from the stream by trimming.
    pub fn trimmed_processed(&self) -> u64 {
        self.trimmed_processed.load(Ordering::Relaxed)
    }
    /// Waits that had to wait for a free reply connection first.
    pub fn waited_for_reply_connection(&self) -> u64 {
        self.waited_for_reply_connection.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for JobProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobProducer")
            .field("stream", &self.inner.cfg.stream)
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

impl JobProducer {
    /// Checks the URL; connects later, on first use.
    pub fn new(cfg: ProducerConfig) -> Result<Self, JobsError> {
        let client = crate::RedisClient::new(&cfg.redis_url, cfg.redis_tls.as_ref())
            .map_err(|e| JobsError::InvalidUrl(e.to_string()))?;
        let target = RedisTarget::from_url(&cfg.redis_url)
            .ok_or_else(|| JobsError::InvalidUrl("no host".to_owned()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                link: Link::new(client.clone(), Duration::from_secs(5)),
                client,
                target,
                reply_permits: Arc::new(Semaphore::new(cfg.reply_connections.max(1))),
                cfg,
                idle_waiters: Mutex::new(Vec::new()),
                group_ready: AtomicBool::new(false),
                stats: Arc::default(),
            }),
        })
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.inner.cfg
    }

    pub fn stats(&self) -> Arc<ProducerStats> {
        self.inner.stats.clone()
    }

    /// PING: is Redis reachable?
    pub async fn ping(&self) -> Result<(), JobsError> {
        let mut con = self.inner.link.get().await?;
        let r: redis::RedisResult<String> =
            query(&mut con, &self.inner.target, &redis::cmd("PING")).await;
        if let Err(e) = &r
            && is_connection_error(e)
        {
            self.inner.link.reset().await;
        }
        r?;
        Ok(())
    }

    /// Adds a job to the stream inside a PRODUCER span `send {stream}`, whose
    /// context goes into the envelope's `trace` map. Retries while Redis is
    /// unreachable, for up to `submit_retry_for`.
    pub async fn submit(
        &self,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<SubmittedJob, JobsError> {
        let span = producer_span(&self.inner.cfg.stream);
        let result = self
            .submit_in_span(kind, payload)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(job) => {
                span.record("messaging.message.id", job.message_id.as_str());
            }
            Err(e) => autobot_tracing::record_error(&span, e.error_type(), e),
        }
        result
    }

    async fn submit_in_span(
        &self,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<SubmittedJob, JobsError> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut envelope = JobEnvelope {
            reply_to: format!("{REPLY_PREFIX}{id}"),
            id,
            kind: kind.to_owned(),
            payload,
            trace: BTreeMap::new(),
            created_at: now_ms(),
        };
        inject_context(&mut envelope.trace);
        let body = serde_json::to_string(&envelope).map_err(|source| JobsError::BadResult {
            job_id: envelope.id.clone(),
            source,
        })?;
        let limit = self.inner.cfg.max_payload_bytes;
        if body.len() > limit {
            self.inner
                .stats
                .refused_too_large
                .fetch_add(1, Ordering::Relaxed);
            return Err(JobsError::PayloadTooLarge {
                bytes: body.len(),
                limit,
            });
        }
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.inner.cfg.stream)
            .arg("*")
            .arg(ENVELOPE_FIELD)
            .arg(body);

        let deadline = Instant::now() + self.inner.cfg.submit_retry_for;
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        let message_id: String = loop {
            let attempt = async {
                let mut con = self.inner.link.get().await?;
                self.make_room(&mut con).await?;
                query(&mut con, &self.inner.target, &cmd)
                    .await
                    .map_err(Refusal::Redis)
            };
            match attempt.await {
                Ok(id) => break id,
                Err(Refusal::Redis(e)) if is_connection_error(&e) && Instant::now() < deadline => {
                    tracing::warn!(error = %e, "Redis unreachable, retrying XADD");
                    self.inner.group_ready.store(false, Ordering::Relaxed);
                    self.inner.link.reset().await;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(Refusal::Redis(e)) => return Err(e.into()),
                Err(Refusal::Full(e)) => return Err(e),
            }
        };
        self.inner.stats.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(SubmittedJob {
            id: envelope.id,
            message_id,
            reply_to: envelope.reply_to,
            trace_id: autobot_tracing::current_trace_id(),
        })
    }

    /// Waits up to `timeout` for the job's result (BLPOP on `reply_to`).
    /// Rides out a Redis restart. On timeout the error names the job, which
    /// stays queued and still runs.
    pub async fn wait(
        &self,
        job: &SubmittedJob,
        timeout: Duration,
    ) -> Result<JobResult, JobsError> {
        let start = Instant::now();
        // One of `reply_connections` connections, within the same timeout.
        let permits = self.inner.reply_permits.clone();
        let _permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.inner
                    .stats
                    .waited_for_reply_connection
                    .fetch_add(1, Ordering::Relaxed);
                match tokio::time::timeout(timeout, permits.acquire_owned()).await {
                    Ok(permit) => permit.expect("never closed"),
                    Err(_) => {
                        return Err(JobsError::Timeout {
                            job_id: job.id.clone(),
                            waited: start.elapsed(),
                        });
                    }
                }
            }
        };
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            let remaining = timeout.saturating_sub(start.elapsed());
            if remaining.is_zero() {
                return Err(JobsError::Timeout {
                    job_id: job.id.clone(),
                    waited: start.elapsed(),
                });
            }
            let mut con = match self.waiter().await {
                Ok(con) => con,
                Err(e) if is_connection_error(&e) => {
                    tokio::time::sleep(backoff.next_delay().min(remaining)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // BLPOP takes seconds with a decimal part; 0 would mean "forever".
            let slice = remaining.min(WAIT_SLICE).max(Duration::from_millis(10));
            let mut cmd = redis::cmd("BLPOP");
            cmd.arg(&job.reply_to).arg(slice.as_secs_f64());
            let reply: redis::RedisResult<Option<(String, String)>> =
                query(&mut con, &self.inner.target, &cmd).await;
            match reply {
                Ok(Some((_, raw))) => {
                    self.return_waiter(con);
                    return serde_json::from_str(&raw).map_err(|source| JobsError::BadResult {
                        job_id: job.id.clone(),
                        source,
                    });
                }
                Ok(None) => self.return_waiter(con),
                Err(e) if is_connection_error(&e) => {
                    // A timed-out reply may still arrive on this connection: drop it.
                    tracing::warn!(error = %e, job.id = %job.id, "Redis unreachable while waiting for a result, retrying");
                    tokio::time::sleep(backoff.next_delay().min(remaining)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// [`submit`](Self::submit) then [`wait`](Self::wait).
    pub async fn request(
        &self,
        kind: &str,
        payload: serde_json::Value,
        timeout: Duration,
    ) -> Result<JobResult, JobsError> {
        let job = self.submit(kind, payload).await?;
        self.wait(&job, timeout).await
    }

    /// Before an XADD: the group exists (created from `$` with the stream
    /// when missing, once per process), and the stream has room: at
    /// `max_len` entries, the ones the group has processed are trimmed;
    /// if it is still full, the job is refused, never an older one dropped.
    async fn make_room(&self, con: &mut MultiplexedConnection) -> Result<(), Refusal> {
        let cfg = &self.inner.cfg;
        if !self.inner.group_ready.load(Ordering::Relaxed) {
            crate::create_group_from_now(con, &self.inner.target, &cfg.stream, &cfg.group)
                .await
                .map_err(Refusal::Redis)?;
            self.inner.group_ready.store(true, Ordering::Relaxed);
        }
        let mut xlen = redis::cmd("XLEN");
        xlen.arg(&cfg.stream);
        let len: usize = query(con, &self.inner.target, &xlen)
            .await
            .map_err(Refusal::Redis)?;
        if len < cfg.max_len {
            return Ok(());
        }
        let trimmed = self.trim_processed(con).await.map_err(Refusal::Redis)?;
        let left = len.saturating_sub(trimmed);
        if left < cfg.max_len {
            return Ok(());
        }
        self.inner
            .stats
            .refused_queue_full
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(stream = %cfg.stream, queued = left, limit = cfg.max_len, "job queue full: refusing a job (workers behind or stopped)");
        Err(Refusal::Full(JobsError::QueueFull {
            queued: left,
            limit: cfg.max_len,
        }))
    }

    /// XTRIM MINID to the group's oldest unprocessed entry (its oldest
    /// pending one, else the one after the last delivered): only entries
    /// the group has acknowledged go. Returns how many.
    async fn trim_processed(&self, con: &mut MultiplexedConnection) -> redis::RedisResult<usize> {
        let cfg = &self.inner.cfg;
        let mut info = redis::cmd("XINFO");
        info.arg("GROUPS").arg(&cfg.stream);
        let groups: StreamInfoGroupsReply = query(con, &self.inner.target, &info).await?;
        let Some(group) = groups.groups.into_iter().find(|g| g.name == cfg.group) else {
            return Ok(0);
        };
        let threshold = if group.pending > 0 {
            let mut pending = redis::cmd("XPENDING");
            pending.arg(&cfg.stream).arg(&cfg.group);
            match query::<StreamPendingReply, _>(con, &self.inner.target, &pending).await? {
                StreamPendingReply::Data(data) => data.start_id,
                _ => next_id(&group.last_delivered_id),
            }
        } else {
            next_id(&group.last_delivered_id)
        };
        let Some(threshold) = threshold_or_none(threshold) else {
            return Ok(0);
        };
        let mut trim = redis::cmd("XTRIM");
        trim.arg(&cfg.stream).arg("MINID").arg(&threshold);
        let trimmed: usize = query(con, &self.inner.target, &trim).await?;
        if trimmed > 0 {
            self.inner
                .stats
                .trimmed_processed
                .fetch_add(trimmed as u64, Ordering::Relaxed);
            tracing::info!(stream = %cfg.stream, trimmed, "trimmed processed jobs from the stream");
        }
        Ok(trimmed)
    }

    async fn waiter(&self) -> redis::RedisResult<MultiplexedConnection> {
        let idle = self
            .inner
            .idle_waiters
            .lock()
            .ok()
            .and_then(|mut v| v.pop());
        match idle {
            Some(con) => Ok(con),
            None => crate::connect(&self.inner.client, WAIT_SLICE + Duration::from_secs(2)).await,
        }
    }

    fn return_waiter(&self, con: MultiplexedConnection) {
        if let Ok(mut idle) = self.inner.idle_waiters.lock()
            && idle.len() < self.inner.cfg.reply_connections
        {
            idle.push(con);
        }
    }
}

/// Why `make_room` or the XADD did not happen.
enum Refusal {
    Redis(redis::RedisError),
    Full(JobsError),
}

impl From<redis::RedisError> for Refusal {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e)
    }
}

/// The stream id right after `id` (`ms-seq` → `ms-(seq+1)`).
fn next_id(id: &str) -> String {
    match id.split_once('-') {
        Some((ms, seq)) => match seq.parse::<u64>() {
            Ok(seq) => format!("{ms}-{}", seq.saturating_add(1)),
            Err(_) => String::new(),
        },
        None => String::new(),
    }
}

/// A MINID threshold worth sending (`0-1` and below trim nothing).
fn threshold_or_none(id: String) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    (ms > 0 || seq > 1).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_step_and_thresholds_skip_nothing_to_trim() {
        assert_eq!(next_id("1700000000000-0"), "1700000000000-1");
        assert_eq!(next_id("0-0"), "0-1");
        assert_eq!(next_id("garbage"), "");
        assert_eq!(threshold_or_none("0-1".into()), None);
        assert_eq!(threshold_or_none(String::new()), None);
        assert_eq!(
            threshold_or_none("1700000000000-3".into()).as_deref(),
            Some("1700000000000-3")
        );
    }
}
