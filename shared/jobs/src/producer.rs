//! The producer side: put a job on the stream, wait for its result.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autobot_tracing::redis::{RedisTarget, inject_context, producer_span, query};
use autobot_wire::jobs::{ENVELOPE_FIELD, JobEnvelope, JobResult, NPU_STREAM, REPLY_PREFIX};
use redis::aio::MultiplexedConnection;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::link::Link;
use crate::{JobsError, is_connection_error, now_ms};

/// Longest single BLPOP; a longer wait is several, so a broken connection is noticed.
const WAIT_SLICE: Duration = Duration::from_secs(5);
/// Idle BLPOP connections kept for the next waiters.
const MAX_IDLE_WAITERS: usize = 16;

/// Where the producer sends jobs.
#[derive(Clone)]
pub struct ProducerConfig {
    /// `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS).
    pub redis_url: String,
    /// The stream, e.g. `autobot:jobs:npu`.
    pub stream: String,
    /// The stream is trimmed to about this many entries (`XADD … MAXLEN ~`).
    pub max_len: usize,
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
            max_len: 100_000,
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
    /// Each waiter blocks its own connection (BLPOP would stall a shared one).
    idle_waiters: Mutex<Vec<MultiplexedConnection>>,
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
                cfg,
                idle_waiters: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.inner.cfg
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
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.inner.cfg.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.inner.cfg.max_len)
            .arg("*")
            .arg(ENVELOPE_FIELD)
            .arg(body);

        let deadline = Instant::now() + self.inner.cfg.submit_retry_for;
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        let message_id: String = loop {
            let attempt = async {
                let mut con = self.inner.link.get().await?;
                query(&mut con, &self.inner.target, &cmd).await
            };
            match attempt.await {
                Ok(id) => break id,
                Err(e) if is_connection_error(&e) && Instant::now() < deadline => {
                    tracing::warn!(error = %e, "Redis unreachable, retrying XADD");
                    self.inner.link.reset().await;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
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
            && idle.len() < MAX_IDLE_WAITERS
        {
            idle.push(con);
        }
    }
}
