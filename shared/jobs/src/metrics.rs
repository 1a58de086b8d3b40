//! The job queue's metrics (docs/metrics.md, "Job queue"): what a consumer
//! does (deliveries, dead letters, job durations, the spanmetrics series of
//! its `process {stream}` CONSUMER span) and what the queue holds, sampled
//! from Redis every few seconds (stream length, pending entries per group,
//! age of the oldest pending entry, dead-letter stream length), with
//! `autobot_redis_up` saying whether the last sample reached Redis.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use autobot_metrics::spans::{Operation, SpanKind};
use autobot_metrics::{Counter, Family, Gauge, HistogramSeries, buckets};
use redis::AsyncCommands as _;
use redis::streams::StreamPendingReply;
use tokio::sync::watch;

use crate::consumer::ConsumerConfig;

/// How often the queue's gauges are read from Redis.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// How a delivery ended, the `outcome` label of the job duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Error,
    DeadLettered,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// A consumer's series, resolved once at its start.
pub(crate) struct ConsumerMetrics {
    deliveries: &'static Counter,
    dead_letters: &'static Family<Counter>,
    durations: &'static Family<HistogramSeries>,
    process: &'static Operation,
    stream: String,
    group: String,
}

impl ConsumerMetrics {
    pub(crate) fn new(cfg: &ConsumerConfig) -> Self {
        let labels = [cfg.stream.as_str(), cfg.group.as_str()];
        let deliveries = autobot_metrics::counter(
            "autobot_jobs_deliveries",
            "Job deliveries to this consumer (first deliveries and re-deliveries after a claim).",
            &["stream", "group"],
        )
        .with(&labels);
        let dead_letters = autobot_metrics::counter(
            "autobot_jobs_dead_letters",
            "Jobs this consumer moved to the dead-letter stream, by reason.",
            &["stream", "group", "reason"],
        );
        let durations = autobot_metrics::histogram(
            "autobot_jobs_duration_seconds",
            "Time from a delivery to its acknowledgement, by outcome.",
            &["stream", "group", "outcome"],
            &buckets::JOB,
            buckets::SECONDS,
        );
        // Resolved now, so each series exists (at 0) before the first job.
        for reason in ["malformed_envelope", "max_deliveries_exceeded"] {
            dead_letters.with(&[labels[0], labels[1], reason]);
        }
        for outcome in [Outcome::Ok, Outcome::Error, Outcome::DeadLettered] {
            durations.with(&[labels[0], labels[1], outcome.as_str()]);
        }
        Self {
            deliveries,
            dead_letters,
            durations,
            process: autobot_metrics::spans::operation(
                &format!("process {}", cfg.stream),
                SpanKind::Consumer,
            ),
            stream: cfg.stream.clone(),
            group: cfg.group.clone(),
        }
    }

    pub(crate) fn delivered(&self) {
        self.deliveries.inc();
    }

    pub(crate) fn dead_lettered(&self, reason: &str) {
        self.dead_letters
            .with(&[&self.stream, &self.group, reason])
            .inc();
    }

    /// Counts a finished delivery and its CONSUMER span's spanmetrics series.
    pub(crate) fn finished(&self, started: Instant, outcome: Outcome, span: &tracing::Span) {
        let elapsed = started.elapsed();
        let exemplar = autobot_tracing::exemplar_of(span);
        self.durations
            .with(&[&self.stream, &self.group, outcome.as_str()])
            .observe_duration(elapsed, exemplar);
        self.process
            .record(elapsed, outcome != Outcome::Ok, exemplar);
    }
}

/// The queue's gauges for one stream and group.
struct QueueGauges {
    length: &'static Gauge,
    dead_length: &'static Gauge,
    pending: &'static Gauge,
    oldest_age: &'static Gauge,
    redis_up: &'static Gauge,
}

impl QueueGauges {
    fn new(cfg: &ConsumerConfig) -> Self {
        let stream = cfg.stream.as_str();
        let group = cfg.group.as_str();
        let length = autobot_metrics::gauge(
            "autobot_jobs_stream_length",
            "Entries in the stream (XLEN), sampled every 5 s.",
            &["stream"],
        );
        Self {
            length: length.with(&[stream]),
            dead_length: length.with(&[&cfg.dead_letter_stream]),
            pending: autobot_metrics::gauge(
                "autobot_jobs_pending",
                "Entries delivered to the group and not yet acknowledged (XPENDING), sampled every 5 s.",
                &["stream", "group"],
            )
            .with(&[stream, group]),
            oldest_age: autobot_metrics::gauge(
                "autobot_jobs_oldest_pending_age_seconds",
                "Age of the oldest pending entry (since it was added to the stream); 0 when none is pending.",
                &["stream", "group"],
            )
            .with(&[stream, group]),
            redis_up: autobot_metrics::single_gauge(
                "autobot_redis_up",
                "1 when the last sample of the job queue reached Redis, 0 when it did not.",
            )
,
        }
    }
}

/// Reads the queue's gauges every [`SAMPLE_INTERVAL`] until `shutdown`.
pub(crate) async fn sample_queue(
    client: crate::RedisClient,
    cfg: ConsumerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let gauges = QueueGauges::new(&cfg);
    let mut con: Option<redis::aio::MultiplexedConnection> = None;
    while !*shutdown.borrow() {
        let sampled = sample_once(&client, &mut con, &cfg, &gauges).await;
        gauges.redis_up.set(if sampled.is_ok() { 1.0 } else { 0.0 });
        if sampled.is_err() {
            con = None;
        }
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_INTERVAL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn sample_once(
    client: &crate::RedisClient,
    con: &mut Option<redis::aio::MultiplexedConnection>,
    cfg: &ConsumerConfig,
    gauges: &QueueGauges,
) -> redis::RedisResult<()> {
    let con = match con {
        Some(con) => con,
        None => {
            let fresh = tokio::time::timeout(
                Duration::from_secs(3),
                crate::connect(client, Duration::from_secs(3)),
            )
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
            con.insert(fresh)
        }
    };
    let length: u64 = con.xlen(&cfg.stream).await?;
    let dead_length: u64 = con.xlen(&cfg.dead_letter_stream).await?;
    gauges.length.set(length as f64);
    gauges.dead_length.set(dead_length as f64);
    // No group yet (nothing consumed so far): nothing is pending.
    let pending = match con
        .xpending::<_, _, StreamPendingReply>(&cfg.stream, &cfg.group)
        .await
    {
        Ok(reply) => reply,
        Err(e) if e.code() == Some("NOGROUP") => StreamPendingReply::Empty,
        Err(e) => return Err(e),
    };
    match pending {
        StreamPendingReply::Data(data) => {
            gauges.pending.set(data.count as f64);
            gauges
                .oldest_age
                .set(age_of_entry(&data.start_id).as_secs_f64());
        }
        _ => {
            gauges.pending.set(0.0);
            gauges.oldest_age.set(0.0);
        }
    }
    Ok(())
}

/// How long ago the entry `id` (`{ms}-{seq}`) was added; zero for an id
/// that is not one or lies in the future.
fn age_of_entry(id: &str) -> Duration {
    let added_ms = id
        .split_once('-')
        .map_or(id, |(ms, _)| ms)
        .parse::<u64>()
        .unwrap_or(0);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if added_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(now_ms.saturating_sub(added_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entrys_age_comes_from_its_id() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let age = age_of_entry(&format!("{}-3", now_ms - 90_000));
        assert!(age >= Duration::from_secs(90) && age < Duration::from_secs(100));
        assert_eq!(age_of_entry("nonsense"), Duration::ZERO);
        assert_eq!(
            age_of_entry(&format!("{}-0", now_ms + 60_000)),
            Duration::ZERO
        );
    }
}
