//! The consumer side: a worker in a consumer group, at least once.
//!
//! Order per job: run it, push its result on `reply_to` (with an expiry),
//! THEN acknowledge the entry. A worker that dies before the ack leaves the
//! entry pending; after `claim_idle` another worker takes it over
//! (XAUTOCLAIM) and runs it again. After `max_deliveries` the job goes to the
//! dead-letter stream and its caller gets an error result instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use autobot_tracing::redis::{RedisTarget, command_span, consumer_span, extract_context, query};
use autobot_wire::jobs::{
    ENVELOPE_FIELD, FailureCode, JobEnvelope, JobFailure, JobOutcome, JobResult,
    NPU_CONSUMER_GROUP, NPU_DEAD_LETTER_STREAM, NPU_STREAM, REPLY_PREFIX, dead_letter,
};
use opentelemetry::trace::TraceContextExt;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use tokio::sync::watch;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::backoff::Backoff;
use crate::link::Link;
use crate::metrics::{ConsumerMetrics, Outcome, sample_queue};
use crate::{JobsError, is_connection_error, now_ms};

/// How a worker reads its stream.
#[derive(Clone)]
pub struct ConsumerConfig {
    /// `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS).
    pub redis_url: String,
    pub stream: String,
    pub group: String,
    pub dead_letter_stream: String,
    /// Unique per process (see [`default_consumer_name`]).
    pub consumer_name: String,
    /// Entries pending this long on another consumer are taken over.
    pub claim_idle: Duration,
    /// A job delivered more often than this is dead-lettered.
    pub max_deliveries: u64,
    /// How long one XREADGROUP waits for new entries (also bounds shutdown).
    pub block: Duration,
    /// How long Redis keeps a result nobody took.
    pub reply_ttl: Duration,
    /// The dead-letter stream is trimmed to about this many entries.
    pub dead_letter_max_len: usize,
    /// An entry whose envelope is larger is not run: it is dead-lettered
    /// (without its envelope) and counted.
    pub max_payload_bytes: usize,
    /// The TLS files of a `rediss://` URL (AUTOBOT_TLS_*).
    pub redis_tls: Option<autobot_tls::TlsFiles>,
}

// The URL may hold a password: printed redacted.
impl std::fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerConfig")
            .field(
                "redis_url",
                &autobot_tracing::redact::redact_url_str(&self.redis_url),
            )
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer_name", &self.consumer_name)
            .field("claim_idle", &self.claim_idle)
            .field("max_deliveries", &self.max_deliveries)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("redis_tls", &self.redis_tls.is_some())
            .finish_non_exhaustive()
    }
}

impl ConsumerConfig {
    /// The NPU stream, group and dead-letter stream with the documented defaults.
    pub fn npu(redis_url: impl Into<String>, consumer_name: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            stream: NPU_STREAM.to_owned(),
            group: NPU_CONSUMER_GROUP.to_owned(),
            dead_letter_stream: NPU_DEAD_LETTER_STREAM.to_owned(),
            consumer_name: consumer_name.into(),
            claim_idle: Duration::from_millis(30_000),
            max_deliveries: 5,
            block: Duration::from_secs(1),
            reply_ttl: Duration::from_secs(600),
            dead_letter_max_len: 10_000,
            max_payload_bytes: crate::DEFAULT_MAX_PAYLOAD_BYTES,
            redis_tls: None,
        }
    }

    /// How often pending entries of other consumers are looked at.
    fn claim_interval(&self) -> Duration {
        (self.claim_idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// `{host}-{pid}`: unique per worker process, readable in XINFO and in spans.
pub fn default_consumer_name() -> String {
    let host = hostname_or_unknown();
    format!("{host}-{}", std::process::id())
}

fn hostname_or_unknown() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The work for each job. An `Err` is the job's answer (an error result to
/// the caller, the entry acknowledged), not a reason to retry: redelivery is
/// for workers that died.
pub trait JobHandler: Send + Sync + 'static {
    fn handle(
        &self,
        job: JobEnvelope,
    ) -> impl Future<Output = Result<serde_json::Value, JobFailure>> + Send;
}

/// Counters and the connection state, for health checks and tests.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    connected: AtomicBool,
    answered: AtomicU64,
    dead_lettered: AtomicU64,
    trimmed_unprocessed: AtomicU64,
    refused_too_large: AtomicU64,
    group_recreated: AtomicU64,
}

impl ConsumerStats {
    /// Whether the last Redis command succeeded.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
    /// Jobs answered (ok or error) and acknowledged.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }
    /// Jobs delivered but not answered that vanished from the stream
    /// (trimmed or deleted by someone else): their callers time out.
    pub fn trimmed_unprocessed(&self) -> u64 {
        self.trimmed_unprocessed.load(Ordering::Relaxed)
    }
    /// Entries over `max_payload_bytes`, dead-lettered without running.
    pub fn refused_too_large(&self) -> u64 {
        self.refused_too_large.load(Ordering::Relaxed)
    }
    /// Times the consumer group was found missing and created again.
    pub fn group_recreated(&self) -> u64 {
        self.group_recreated.load(Ordering::Relaxed)
    }
}

/// A worker of a consumer group. [`Consumer::run`] until shutdown.
pub struct Consumer<H> {
    cfg: ConsumerConfig,
    target: RedisTarget,
    client: crate::RedisClient,
    handler: Arc<H>,
    stats: Arc<ConsumerStats>,
    metrics: ConsumerMetrics,
}

/// One entry to process and how often it has been delivered.
struct Delivery {
    entry: StreamId,
    delivery_count: u64,
}

/// A delivery that is not run but dead-lettered, and why.
struct Refusal {
    envelope: Option<JobEnvelope>,
    reason: String,
    error_type: &'static str,
}

impl<H: JobHandler> Consumer<H> {
    /// Checks the URL; connects in [`run`](Self::run).
    pub fn new(cfg: ConsumerConfig, handler: H) -> Result<Self, JobsError> {
        let client = crate::RedisClient::new(&cfg.redis_url, cfg.redis_tls.as_ref())
            .map_err(|e| JobsError::InvalidUrl(e.to_string()))?;
        let target = RedisTarget::from_url(&cfg.redis_url)
            .ok_or_else(|| JobsError::InvalidUrl("no host".to_owned()))?;
        Ok(Self {
            metrics: ConsumerMetrics::new(&cfg),
            cfg,
            target,
            client,
            handler: Arc::new(handler),
            stats: Arc::new(ConsumerStats::default()),
        })
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }

    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Consumes until `shutdown` turns true; the job in hand is finished
    /// (answered and acknowledged) before it returns. A lost connection is
    /// re-made with backoff.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let link = Link::new(self.client.clone(), self.cfg.block + Duration::from_secs(3));
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut state = LoopState {
            group_ready: false,
            group_seen: false,
            next_claim: Instant::now(),
            cursor: "0-0".to_owned(),
        };
        tracing::info!(
            stream = %self.cfg.stream,
            group = %self.cfg.group,
            consumer = %self.cfg.consumer_name,
            "consuming jobs"
        );
        let sampler = tokio::spawn(sample_queue(
            self.client.clone(),
            self.cfg.clone(),
            shutdown.clone(),
        ));
        while !*shutdown.borrow() {
            match self.step(&link, &mut state, &shutdown).await {
                Ok(()) => {
                    backoff.reset();
                    self.stats.connected.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    if is_connection_error(&e) {
                        self.stats.connected.store(false, Ordering::Relaxed);
                        link.reset().await;
                        state.group_ready = false;
                        tracing::warn!(error = %e, "Redis unreachable, reconnecting");
                    } else if e.code() == Some("NOGROUP") {
                        // The stream or group vanished (a Redis without persistence restarted).
                        state.group_ready = false;
                        tracing::warn!(error = %e, "consumer group missing, creating it again");
                    } else {
                        tracing::error!(error = %e, "reading jobs failed");
                    }
                    let delay = backoff.next_delay();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        let _ = sampler.await;
        tracing::info!(consumer = %self.cfg.consumer_name, "stopped consuming jobs");
    }

    /// One round: reclaim entries of dead consumers when due, else read new ones.
    async fn step(
        &self,
        link: &Link,
        state: &mut LoopState,
        shutdown: &watch::Receiver<bool>,
    ) -> redis::RedisResult<()> {
        let mut con = link.get().await?;
        if !state.group_ready {
            let created = self.ensure_group(&mut con).await?;
            if created && state.group_seen {
                self.stats.group_recreated.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    stream = %self.cfg.stream,
                    group = %self.cfg.group,
                    "the consumer group vanished and was created again from new entries on: \
                     jobs added while it was missing are not run (their callers time out); \
                     acknowledged jobs are not run again"
                );
            }
            state.group_ready = true;
            state.group_seen = true;
        }
        if Instant::now() >= state.next_claim {
            // One entry at a time: a claimed entry's idle clock restarts, and
            // a batch would sit idle behind the first job long enough to be
            // claimed again by another worker.
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&self.cfg.stream)
                .arg(&self.cfg.group)
                .arg(&self.cfg.consumer_name)
                .arg(self.cfg.claim_idle.as_millis() as u64)
                .arg(&state.cursor)
                .arg("COUNT")
                .arg(1);
            let reply: StreamAutoClaimReply = query(&mut con, &self.target, &cmd).await?;
            for id in &reply.deleted_ids {
                self.stats
                    .trimmed_unprocessed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(message.id = %id, "a pending job was removed from the stream before it was answered (trimmed or deleted outside AutoBot); its caller times out");
            }
            state.cursor = reply.next_stream_id;
            if state.cursor == "0-0" {
                state.next_claim = Instant::now() + self.cfg.claim_interval();
            }
            if !reply.claimed.is_empty() {
                for entry in reply.claimed {
                    let delivery_count = self.delivery_count(&mut con, &entry.id).await?;
                    tracing::info!(message.id = %entry.id, delivery_count, "reclaimed a job of a consumer that stopped answering");
                    self.process(
                        link,
                        Delivery {
                            entry,
                            delivery_count,
                        },
                        shutdown,
                    )
                    .await;
                }
                return Ok(());
            }
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer_name)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(self.cfg.block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.cfg.stream)
            .arg(">");
        let reply: Option<StreamReadReply> = query(&mut con, &self.target, &cmd).await?;
        self.stats.connected.store(true, Ordering::Relaxed);
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                self.process(
                    link,
                    Delivery {
                        entry,
                        delivery_count: 1,
                    },
                    shutdown,
                )
                .await;
            }
        }
        Ok(())
    }

    /// The group, created from `$` (new entries only) when missing: after
    /// a group was deleted, acknowledged jobs still in the stream are not
    /// run again. (The producer creates the group before its first job, so
    /// jobs queued before any worker ran are served.) `true`: created now.
    async fn ensure_group(&self, con: &mut MultiplexedConnection) -> redis::RedisResult<bool> {
        crate::create_group_from_now(con, &self.target, &self.cfg.stream, &self.cfg.group).await
    }

    /// How often an entry has been delivered (XPENDING), this delivery included.
    async fn delivery_count(
        &self,
        con: &mut MultiplexedConnection,
        message_id: &str,
    ) -> redis::RedisResult<u64> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(message_id)
            .arg(message_id)
            .arg(1);
        let reply: StreamPendingCountReply = query(con, &self.target, &cmd).await?;
        Ok(reply
            .ids
            .first()
            .map(|p| p.times_delivered as u64)
            .unwrap_or(1))
    }

    /// One delivery, start to acknowledgement, in the CONSUMER span.
    async fn process(&self, link: &Link, delivery: Delivery, shutdown: &watch::Receiver<bool>) {
        let started = Instant::now();
        self.metrics.delivered();
        let message_id = delivery.entry.id.clone();
        let raw: Option<String> = delivery.entry.get(ENVELOPE_FIELD);
        let oversized = raw
            .as_ref()
            .map(String::len)
            .filter(|len| *len > self.cfg.max_payload_bytes);
        let parsed = match oversized {
            Some(len) => Err(format!(
                "the envelope is {len} bytes, over the limit of {} (AUTOBOT_JOBS_MAX_PAYLOAD_BYTES)",
                self.cfg.max_payload_bytes
            )),
            None => parse_envelope(raw.as_deref()),
        };
        // An oversized envelope is neither parsed nor copied anywhere.
        let raw = if oversized.is_some() {
            self.stats.refused_too_large.fetch_add(1, Ordering::Relaxed);
            None
        } else {
            raw
        };
        let trace = match &parsed {
            Ok(envelope) => envelope.trace.clone(),
            Err(_) => Default::default(),
        };
        self.record_receive(&message_id, &trace, delivery.delivery_count);

        let span = consumer_span(
            &self.cfg.stream,
            &self.cfg.group,
            &message_id,
            &trace,
            delivery.delivery_count,
        );
        span.set_attribute("messaging.client.id", self.cfg.consumer_name.clone());
        if let Ok(envelope) = &parsed {
            span.set_attribute("autobot.job.id", envelope.id.clone());
            span.set_attribute("autobot.job.kind", envelope.kind.clone());
        }
        let decision = match parsed {
            Err(why) if oversized.is_some() => Err(Refusal {
                envelope: None,
                reason: why,
                error_type: "payload_too_large",
            }),
            Err(why) => Err(Refusal {
                envelope: None,
                reason: format!("malformed envelope: {why}"),
                error_type: "malformed_envelope",
            }),
            Ok(envelope) if delivery.delivery_count > self.cfg.max_deliveries => Err(Refusal {
                envelope: Some(envelope),
                reason: format!(
                    "delivered {} times, more than the limit of {}",
                    delivery.delivery_count, self.cfg.max_deliveries
                ),
                error_type: "max_deliveries_exceeded",
            }),
            Ok(envelope) => Ok(envelope),
        };
        let work = async {
            let (job_id, reply_to, outcome, counted) = match decision {
                Ok(envelope) => {
                    let job_id = envelope.id.clone();
                    let reply_to = envelope.reply_to.clone();
                    let outcome = self.run_keeping_claim(link, &message_id, envelope).await;
                    if let JobOutcome::Error { error } = &outcome {
                        autobot_tracing::record_error_message(
                            &tracing::Span::current(),
                            error.code.as_str(),
                            &error.message,
                        );
                    }
                    let counted = match outcome {
                        JobOutcome::Ok { .. } => Outcome::Ok,
                        JobOutcome::Error { .. } => Outcome::Error,
                    };
                    (Some(job_id), Some(reply_to), outcome, counted)
                }
                Err(refusal) => {
                    autobot_tracing::record_error_message(
                        &tracing::Span::current(),
                        refusal.error_type,
                        &refusal.reason,
                    );
                    tracing::warn!(message.id = %message_id, reason = %refusal.reason, "dead-lettering a job");
                    let dead = self.dead_letter_cmd(
                        &message_id,
                        raw.as_deref().unwrap_or(""),
                        &refusal.reason,
                        delivery.delivery_count,
                    );
                    if !self.store(link, &dead, shutdown).await {
                        return None;
                    }
                    self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    self.metrics.dead_lettered(refusal.error_type);
                    let (job_id, reply_to) = match refusal.envelope {
                        Some(envelope) => (Some(envelope.id), Some(envelope.reply_to)),
                        None => caller_of(raw.as_deref()),
                    };
                    let outcome = JobOutcome::Error {
                        error: JobFailure::new(FailureCode::DeadLettered, refusal.reason),
                    };
                    (job_id, reply_to, outcome, Outcome::DeadLettered)
                }
            };
            if let (Some(id), Some(reply_to)) = (job_id, reply_to) {
                let result = JobResult {
                    id,
                    outcome,
                    delivery_count: delivery.delivery_count,
                    worker: self.cfg.consumer_name.clone(),
                    completed_at: now_ms(),
                };
                if !self.reply(link, &reply_to, &result, shutdown).await {
                    return None;
                }
            }
            let mut ack = redis::cmd("XACK");
            ack.arg(&self.cfg.stream)
                .arg(&self.cfg.group)
                .arg(&message_id);
            if self.store(link, &ack, shutdown).await {
                self.stats.answered.fetch_add(1, Ordering::Relaxed);
            }
            Some(counted)
        };
        // Counted once answered (a delivery cut short by shutdown is not).
        if let Some(outcome) = work.instrument(span.clone()).await {
            self.metrics.finished(started, outcome, &span);
        }
    }

    /// Runs the handler while telling the group, every third of
    /// `claim_idle`, that this worker still holds the entry: a job longer
    /// than `claim_idle` is not taken over by another worker while it runs.
    async fn run_keeping_claim(
        &self,
        link: &Link,
        message_id: &str,
        envelope: JobEnvelope,
    ) -> JobOutcome {
        let work = self.run_handler(envelope);
        tokio::pin!(work);
        let every = (self.cfg.claim_idle / 3).max(Duration::from_millis(10));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                outcome = &mut work => return outcome,
                _ = ticks.tick() => {
                    if let Err(e) = self.keep_claim(link, message_id).await {
                        tracing::warn!(error = %e, message.id = %message_id, "could not refresh the claim on a running job");
                    }
                }
            }
        }
    }

    /// Resets the entry's idle time (XCLAIM … JUSTID, which leaves the
    /// delivery count alone), only while this consumer still owns it.
    async fn keep_claim(&self, link: &Link, message_id: &str) -> redis::RedisResult<()> {
        let mut con = link.get().await?;
        let mut owner = redis::cmd("XPENDING");
        owner
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(message_id)
            .arg(message_id)
            .arg(1);
        // Untraced on purpose: a heartbeat per tick would clutter the job's trace.
        let pending: StreamPendingCountReply = owner.query_async(&mut con).await?;
        if pending.ids.first().map(|p| p.consumer.as_str()) != Some(self.cfg.consumer_name.as_str())
        {
            return Ok(());
        }
        let mut touch = redis::cmd("XCLAIM");
        touch
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer_name)
            .arg(0)
            .arg(message_id)
            .arg("JUSTID");
        touch.query_async::<redis::Value>(&mut con).await.map(drop)
    }

    /// Runs the handler in its own task, so a panic becomes an error result
    /// instead of taking the worker down with the job in hand.
    async fn run_handler(&self, envelope: JobEnvelope) -> JobOutcome {
        let handler = self.handler.clone();
        let task = tokio::spawn(
            async move { handler.handle(envelope).await }.instrument(tracing::Span::current()),
        );
        match task.await {
            Ok(Ok(result)) => JobOutcome::Ok { result },
            Ok(Err(error)) => JobOutcome::Error { error },
            Err(e) => JobOutcome::Error {
                error: JobFailure::new(
                    FailureCode::Failed,
                    format!("the job handler crashed: {e}"),
                ),
            },
        }
    }

    /// A short span `receive {stream}` for every delivery, ended at once, so
    /// that a delivery shows in the trace even when its worker dies mid-job
    /// (its CONSUMER span then never ends, and is never exported).
    fn record_receive(
        &self,
        message_id: &str,
        trace: &std::collections::BTreeMap<String, String>,
        delivery_count: u64,
    ) {
        let span = tracing::info_span!(
            target: "autobot_jobs::messaging",
            "receive",
            otel.name = %format_args!("receive {}", self.cfg.stream),
            otel.kind = "client",
            messaging.system = "redis",
            messaging.operation.name = "receive",
            messaging.operation.type = "receive",
            messaging.destination.name = self.cfg.stream.as_str(),
            messaging.consumer.group.name = self.cfg.group.as_str(),
            messaging.message.id = message_id,
            messaging.client.id = self.cfg.consumer_name.as_str(),
            messaging.redis.message.delivery_count = delivery_count as i64,
        );
        let parent = extract_context(trace);
        let producer = parent.span().span_context().clone();
        if producer.is_valid() {
            let _ = span.set_parent(parent);
            span.add_link(producer);
        }
    }

    fn dead_letter_cmd(
        &self,
        message_id: &str,
        raw: &str,
        reason: &str,
        delivery_count: u64,
    ) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.cfg.dead_letter_stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.cfg.dead_letter_max_len)
            .arg("*")
            .arg(ENVELOPE_FIELD)
            .arg(raw)
            .arg(dead_letter::REASON)
            .arg(reason)
            .arg(dead_letter::MESSAGE_ID)
            .arg(message_id)
            .arg(dead_letter::DELIVERY_COUNT)
            .arg(delivery_count)
            .arg(dead_letter::CONSUMER)
            .arg(&self.cfg.consumer_name)
            .arg(dead_letter::DEAD_AT)
            .arg(now_ms());
        cmd
    }

    /// LPUSH the result and set the list's expiry, atomically; retried until
    /// stored or shutdown. `false`: not stored (the entry stays pending).
    async fn reply(
        &self,
        link: &Link,
        reply_to: &str,
        result: &JobResult,
        shutdown: &watch::Receiver<bool>,
    ) -> bool {
        let body = match serde_json::to_string(result) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "a job result does not serialise");
                return false;
            }
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .lpush(reply_to, body)
            .ignore()
            .expire(reply_to, self.cfg.reply_ttl.as_secs().max(1) as i64)
            .ignore();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let attempt = async {
                let mut con = link.get().await?;
                let span = command_span(&self.target, "MULTI");
                let r: redis::RedisResult<()> =
                    pipe.query_async(&mut con).instrument(span.clone()).await;
                if let Err(e) = &r {
                    autobot_tracing::redis::record_redis_error(&span, e);
                }
                r
            };
            match attempt.await {
                Ok(()) => return true,
                Err(e) => {
                    if !self.retry_after(link, &e, &mut backoff, shutdown).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Runs `cmd` until it succeeds; `false` when it cannot (shutdown while
    /// Redis is away, or a command error).
    async fn store(&self, link: &Link, cmd: &redis::Cmd, shutdown: &watch::Receiver<bool>) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let attempt = async {
                let mut con = link.get().await?;
                query::<redis::Value, _>(&mut con, &self.target, cmd).await
            };
            match attempt.await {
                Ok(_) => return true,
                Err(e) => {
                    if !self.retry_after(link, &e, &mut backoff, shutdown).await {
                        return false;
                    }
                }
            }
        }
    }

    /// After a failed write: wait and say "retry" for a lost connection,
    /// give up for anything else or when shutting down.
    async fn retry_after(
        &self,
        link: &Link,
        e: &redis::RedisError,
        backoff: &mut Backoff,
        shutdown: &watch::Receiver<bool>,
    ) -> bool {
        if !is_connection_error(e) {
            tracing::error!(error = %e, "storing a job's outcome failed; the job stays pending");
            return false;
        }
        self.stats.connected.store(false, Ordering::Relaxed);
        link.reset().await;
        if *shutdown.borrow() {
            tracing::warn!(error = %e, "shutting down with Redis unreachable; the job stays pending for another worker");
            return false;
        }
        tracing::warn!(error = %e, "Redis unreachable while storing a job's outcome, retrying");
        tokio::time::sleep(backoff.next_delay()).await;
        true
    }
}

struct LoopState {
    group_ready: bool,
    /// The group existed once in this run: creating it again is a recreation.
    group_seen: bool,
    next_claim: Instant,
    cursor: String,
}

/// The envelope of a stream entry, or why it is not one.
fn parse_envelope(raw: Option<&str>) -> Result<JobEnvelope, String> {
    let raw = raw.ok_or_else(|| format!("the entry has no `{ENVELOPE_FIELD}` field"))?;
    let envelope: JobEnvelope = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    if envelope.id.is_empty() {
        return Err("empty `id`".to_owned());
    }
    if !envelope.reply_to.starts_with(REPLY_PREFIX) {
        return Err(format!("`reply_to` must start with `{REPLY_PREFIX}`"));
    }
    Ok(envelope)
}

/// Who to tell when an unreadable envelope still names its id and reply list.
fn caller_of(raw: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(value) = raw.and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) else {
        return (None, None);
    };
    let id = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
    let reply_to = value
        .get("reply_to")
        .and_then(|v| v.as_str())
        .filter(|r| r.starts_with(REPLY_PREFIX))
        .map(str::to_owned);
    match (id, reply_to) {
        (Some(id), Some(reply_to)) => (Some(id), Some(reply_to)),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked() {
        assert!(parse_envelope(None).unwrap_err().contains("no `envelope`"));
        assert!(parse_envelope(Some("{not json")).is_err());
        let ok = r#"{"id":"j","kind":"embed","payload":{},"reply_to":"autobot:jobs:reply:j","created_at":0}"#;
        assert_eq!(parse_envelope(Some(ok)).unwrap().id, "j");
        let elsewhere = r#"{"id":"j","kind":"embed","payload":{},"reply_to":"autobot:jobs:npu","created_at":0}"#;
        assert!(
            parse_envelope(Some(elsewhere))
                .unwrap_err()
                .contains("reply_to")
        );
    }

    #[test]
    fn a_broken_envelope_still_names_its_caller_when_it_can() {
        let partial = r#"{"id":"j","reply_to":"autobot:jobs:reply:j","kind":7}"#;
        assert_eq!(
            caller_of(Some(partial)),
            (Some("j".into()), Some("autobot:jobs:reply:j".into()))
        );
        assert_eq!(caller_of(Some("garbage")), (None, None));
        assert_eq!(
            caller_of(Some(r#"{"id":"j","reply_to":"somewhere:else"}"#)),
            (None, None)
        );
    }

    #[test]
    fn claim_interval_follows_claim_idle_within_bounds() {
        let mut cfg = ConsumerConfig::npu("redis://127.0.0.1/", "w");
        assert_eq!(cfg.claim_interval(), Duration::from_secs(5));
        cfg.claim_idle = Duration::from_millis(500);
        assert_eq!(cfg.claim_interval(), Duration::from_millis(250));
        cfg.claim_idle = Duration::from_millis(10);
        assert_eq!(cfg.claim_interval(), Duration::from_millis(100));
    }
}
