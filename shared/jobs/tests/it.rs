//! autobot-jobs against a real redis-server: a job's way through the queue,
//! its trace, and what happens when things go wrong.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use autobot_jobs::{
    Consumer, ConsumerConfig, FailureCode, JobEnvelope, JobFailure, JobHandler, JobOutcome,
    JobProducer, JobsError, ProducerConfig,
};
use autobot_testkit::redis::RedisServer;
use autobot_tracing::{TelemetryGuard, TracingConfig};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use serde_json::json;
use tokio::sync::watch;

/// Answers `{"echo": payload}`; kind "fail" answers an error result.
#[derive(Clone, Default)]
struct Echo {
    calls: Arc<AtomicU64>,
}

impl JobHandler for Echo {
    async fn handle(&self, job: JobEnvelope) -> Result<serde_json::Value, JobFailure> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match job.kind.as_str() {
            "fail" => Err(JobFailure::new(FailureCode::InvalidPayload, "told to fail")),
            _ => Ok(json!({ "echo": job.payload })),
        }
    }
}

fn consumer_config(redis: &RedisServer, name: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::npu(redis.url(), name);
    cfg.claim_idle = Duration::from_millis(300);
    cfg.block = Duration::from_millis(200);
    cfg
}

/// Starts a consumer task; the returned sender stops it.
fn spawn_consumer(
    cfg: ConsumerConfig,
    handler: Echo,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    let consumer = Consumer::new(cfg, handler).expect("valid config");
    let task = tokio::spawn(async move { consumer.run(stopped).await });
    (stop, task)
}

fn in_memory_telemetry() -> (TelemetryGuard, InMemorySpanExporter) {
    autobot_testkit::alone::assert_alone();
    let exporter = InMemorySpanExporter::default();
    let cfg = TracingConfig {
        log_filter: "warn".into(),
        ..TracingConfig::default()
    };
    let guard = autobot_tracing::init_with_exporter("jobs-test", "0.0.0", cfg, exporter.clone())
        .expect("telemetry installs");
    (guard, exporter)
}

fn attrs(span: &SpanData) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

/// XRANGE of a stream through the inline protocol.
fn xrange(redis: &RedisServer, stream: &str) -> String {
    redis
        .command(&format!("XRANGE {stream} - +"))
        .expect("XRANGE answers")
}

#[tokio::test]
async fn a_job_is_answered_and_its_consumer_span_is_the_child_of_its_producer_span() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_guard, exporter) = in_memory_telemetry();
    let redis = RedisServer::start().unwrap();
    let (stop, task) = spawn_consumer(consumer_config(&redis, "w1"), Echo::default());
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();

    let result = producer
        .request("echo", json!({"n": 1}), Duration::from_secs(30))
        .await
        .expect("answered");
    assert_eq!(
        result.outcome,
        JobOutcome::Ok {
            result: json!({"echo": {"n": 1}})
        }
    );
    assert_eq!((result.delivery_count, result.worker.as_str()), (1, "w1"));

    stop.send(true).unwrap();
    task.await.unwrap();
    // The entry was acknowledged: nothing pending.
    let pending = redis
        .command("XPENDING autobot:jobs:npu npu-workers")
        .unwrap();
    assert!(pending.starts_with("*4\r\n:0"), "{pending:?}");

    let spans = exporter.get_finished_spans().unwrap();
    let send = spans
        .iter()
        .find(|s| s.name == "send autobot:jobs:npu")
        .expect("PRODUCER span");
    let process = spans
        .iter()
        .find(|s| s.name == "process autobot:jobs:npu")
        .expect("CONSUMER span");
    assert_eq!(send.span_kind, opentelemetry::trace::SpanKind::Producer);
    assert_eq!(process.span_kind, opentelemetry::trace::SpanKind::Consumer);
    assert_eq!(
        process.span_context.trace_id(),
        send.span_context.trace_id()
    );
    assert_eq!(process.parent_span_id, send.span_context.span_id());
    assert_eq!(process.links.links.len(), 1);
    assert_eq!(
        process.links.links[0].span_context.span_id(),
        send.span_context.span_id()
    );
    let a = attrs(process);
    assert_eq!(a["messaging.system"], "redis");
    assert_eq!(a["messaging.destination.name"], "autobot:jobs:npu");
    assert_eq!(a["messaging.consumer.group.name"], "npu-workers");
    assert_eq!(a["messaging.operation.type"], "process");
    assert_eq!(
        attrs(send)["messaging.message.id"],
        a["messaging.message.id"]
    );
    // Redis commands inside the trace are CLIENT spans redis.{COMMAND}.
    for name in ["redis.XADD", "redis.MULTI", "redis.XACK"] {
        let span = spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(span.span_context.trace_id(), send.span_context.trace_id());
        assert_eq!(attrs(span)["db.system.name"], "redis");
    }
}

#[tokio::test]
async fn a_handler_error_is_the_callers_answer_not_a_retry() {
    let redis = RedisServer::start().unwrap();
    let echo = Echo::default();
    let (stop, task) = spawn_consumer(consumer_config(&redis, "w1"), echo.clone());
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let result = producer
        .request("fail", json!({}), Duration::from_secs(30))
        .await
        .unwrap();
    match result.outcome {
        JobOutcome::Error { error } => assert_eq!(error.code, FailureCode::InvalidPayload),
        other => panic!("expected an error result, got {other:?}"),
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(echo.calls.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn waiting_without_a_worker_times_out_naming_the_job_which_still_runs_later() {
    let redis = RedisServer::start().unwrap();
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let job = producer
        .submit("echo", json!({"late": true}))
        .await
        .unwrap();
    let err = producer
        .wait(&job, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(&err, JobsError::Timeout { job_id, .. } if *job_id == job.id));
    assert!(err.to_string().contains(&job.id));

    // A worker that comes later still serves it.
    let (stop, task) = spawn_consumer(consumer_config(&redis, "late"), Echo::default());
    let result = producer.wait(&job, Duration::from_secs(30)).await.unwrap();
    assert_eq!(result.id, job.id);
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_job_left_pending_by_a_dead_consumer_is_reclaimed_with_its_delivery_count() {
    let redis = RedisServer::start().unwrap();
    redis
        .command("XGROUP CREATE autobot:jobs:npu npu-workers 0 MKSTREAM")
        .unwrap();
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let job = producer.submit("echo", json!({"x": 1})).await.unwrap();
    // A consumer takes it and dies without answering.
    let taken = redis
        .command("XREADGROUP GROUP npu-workers dead-one COUNT 1 STREAMS autobot:jobs:npu >")
        .unwrap();
    assert!(taken.contains(&job.id), "{taken}");

    let (stop, task) = spawn_consumer(consumer_config(&redis, "rescuer"), Echo::default());
    let result = producer.wait(&job, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        (result.delivery_count, result.worker.as_str()),
        (2, "rescuer")
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn a_job_delivered_too_often_is_dead_lettered_and_its_caller_told() {
    let redis = RedisServer::start().unwrap();
    redis
        .command("XGROUP CREATE autobot:jobs:npu npu-workers 0 MKSTREAM")
        .unwrap();
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let job = producer
        .submit("echo", json!({"poison": true}))
        .await
        .unwrap();
    // It already killed five workers: delivered five times, never acknowledged.
    redis
        .command("XREADGROUP GROUP npu-workers crashed COUNT 1 STREAMS autobot:jobs:npu >")
        .unwrap();
    redis
        .command(&format!(
            "XCLAIM autobot:jobs:npu npu-workers crashed 0 {} RETRYCOUNT 5",
            job.message_id
        ))
        .unwrap();

    let echo = Echo::default();
    let (stop, task) = spawn_consumer(consumer_config(&redis, "w1"), echo.clone());
    let result = producer.wait(&job, Duration::from_secs(30)).await.unwrap();
    match &result.outcome {
        JobOutcome::Error { error } => {
            assert_eq!(error.code, FailureCode::DeadLettered);
            assert!(
                error.message.contains("delivered 6 times"),
                "{}",
                error.message
            );
        }
        other => panic!("expected a dead-letter error, got {other:?}"),
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(echo.calls.load(Ordering::Relaxed), 0, "the poison job ran");
    let dead = xrange(&redis, "autobot:jobs:npu:dead");
    assert!(
        dead.contains(&job.id) && dead.contains("more than the limit of 5"),
        "{dead}"
    );
    assert!(dead.contains(&job.message_id));
}

#[tokio::test]
async fn a_malformed_envelope_is_dead_lettered_and_the_worker_goes_on() {
    let redis = RedisServer::start().unwrap();
    // As a producer does before its first job: the group exists first.
    redis
        .command("XGROUP CREATE autobot:jobs:npu npu-workers $ MKSTREAM")
        .unwrap();
    let echo = Echo::default();
    let (stop, task) = spawn_consumer(consumer_config(&redis, "w1"), echo.clone());
    assert!(
        redis
            .command("XADD autobot:jobs:npu * envelope {not-json")
            .unwrap()
            .starts_with('$')
    );
    assert!(
        redis
            .command("XADD autobot:jobs:npu * something else")
            .unwrap()
            .starts_with('$')
    );
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let result = producer
        .request("echo", json!("after"), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(matches!(result.outcome, JobOutcome::Ok { .. }));
    stop.send(true).unwrap();
    task.await.unwrap();
    let dead = xrange(&redis, "autobot:jobs:npu:dead");
    assert!(
        dead.contains("{not-json") && dead.contains("malformed envelope"),
        "{dead}"
    );
    assert!(dead.contains("no `envelope` field"), "{dead}");
    assert_eq!(echo.calls.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn no_job_is_lost_when_redis_restarts_under_load() {
    let mut redis = RedisServer::start().unwrap();
    let (stop, task) = spawn_consumer(consumer_config(&redis, "w1"), Echo::default());
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    const JOBS: usize = 60;
    let mut callers = Vec::new();
    for i in 0..JOBS {
        let producer = producer.clone();
        callers.push(tokio::spawn(async move {
            // Spread the jobs over the restart.
            tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
            producer
                .request("echo", json!({ "i": i }), Duration::from_secs(60))
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Keep the handle: dropping the server would stop it for good.
    let restarted = tokio::task::spawn_blocking(move || {
        // Down long enough that about 30 jobs are submitted into the outage.
        redis.kill();
        std::thread::sleep(Duration::from_millis(300));
        redis.start_again().expect("redis restarts");
        redis
    });
    let mut answered = Vec::new();
    for caller in callers {
        let result = caller.await.unwrap().expect("every job is answered");
        match result.outcome {
            JobOutcome::Ok { result } => answered.push(result["echo"]["i"].as_u64().unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let redis = restarted.await.unwrap();
    assert!(redis.dir().join("appendonlydir").exists());
    answered.sort_unstable();
    answered.dedup();
    assert_eq!(answered, (0..JOBS as u64).collect::<Vec<_>>());
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Takes `millis` from the payload as its working time.
#[derive(Clone, Default)]
struct Slow {
    calls: Arc<AtomicU64>,
}

impl JobHandler for Slow {
    async fn handle(&self, job: JobEnvelope) -> Result<serde_json::Value, JobFailure> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let millis = job.payload["millis"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(json!("done"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_claim_idle_is_not_taken_over_while_it_runs() {
    let redis = RedisServer::start().unwrap();
    let slow = Slow::default();
    let mut consumers = Vec::new();
    for name in ["w1", "w2"] {
        let mut cfg = consumer_config(&redis, name);
        cfg.claim_idle = Duration::from_millis(600);
        let (stop, stopped) = watch::channel(false);
        let consumer = Consumer::new(cfg, slow.clone()).unwrap();
        consumers.push((
            stop,
            tokio::spawn(async move { consumer.run(stopped).await }),
        ));
    }
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    // Five times claim_idle: without the heartbeat the idle worker would take it over.
    let result = producer
        .request("slow", json!({"millis": 3000}), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(result.delivery_count, 1);
    for (stop, task) in consumers {
        stop.send(true).unwrap();
        task.await.unwrap();
    }
    assert_eq!(slow.calls.load(Ordering::Relaxed), 1, "the job ran twice");
}

/// Starts a consumer and keeps its stats.
fn spawn_consumer_with_stats(
    cfg: ConsumerConfig,
    handler: Echo,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
    Arc<autobot_jobs::ConsumerStats>,
) {
    let (stop, stopped) = watch::channel(false);
    let consumer = Consumer::new(cfg, handler).expect("valid config");
    let stats = consumer.stats();
    let task = tokio::spawn(async move { consumer.run(stopped).await });
    (stop, task, stats)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_deleted_group_is_created_again_from_new_entries_and_acknowledged_jobs_do_not_run_again()
{
    let redis = RedisServer::start().unwrap();
    let echo = Echo::default();
    let (stop, task, stats) =
        spawn_consumer_with_stats(consumer_config(&redis, "w1"), echo.clone());
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    for i in 0..3 {
        producer
            .request("echo", json!({ "i": i }), Duration::from_secs(30))
            .await
            .unwrap();
    }
    assert_eq!(echo.calls.load(Ordering::Relaxed), 3);

    // Someone deletes the group under the running worker.
    assert_eq!(
        redis
            .command("XGROUP DESTROY autobot:jobs:npu npu-workers")
            .unwrap(),
        ":1\r\n"
    );
    wait_until("the worker creates the group again", || {
        stats.group_recreated() == 1
    })
    .await;
    let after = producer
        .request("echo", json!("after"), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(matches!(after.outcome, JobOutcome::Ok { .. }));
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(
        echo.calls.load(Ordering::Relaxed),
        4,
        "the three acknowledged jobs did not run again"
    );

    // A worker that starts while the group is missing does the same.
    redis
        .command("XGROUP DESTROY autobot:jobs:npu npu-workers")
        .unwrap();
    let (stop, task, _) = spawn_consumer_with_stats(consumer_config(&redis, "w2"), echo.clone());
    wait_until("a new worker creates the group", || {
        redis
            .command("XINFO GROUPS autobot:jobs:npu")
            .unwrap()
            .contains("npu-workers")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(echo.calls.load(Ordering::Relaxed), 4, "nothing ran again");
}

#[tokio::test]
async fn a_job_over_the_byte_limit_is_refused_before_it_is_queued() {
    let redis = RedisServer::start().unwrap();
    let mut cfg = ProducerConfig::npu(redis.url());
    cfg.max_payload_bytes = 1_000;
    let producer = JobProducer::new(cfg).unwrap();
    let err = producer
        .submit("echo", json!({ "text": "a".repeat(2_000) }))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "payload_too_large");
    assert!(
        err.to_string()
            .contains("over the limit of 1000 (AUTOBOT_JOBS_MAX_PAYLOAD_BYTES)"),
        "{err}"
    );
    assert_eq!(producer.stats().refused_too_large(), 1);
    assert_eq!(redis.command("XLEN autobot:jobs:npu").unwrap(), ":0\r\n");
    // A small one still goes.
    producer.submit("echo", json!("small")).await.unwrap();
    assert_eq!(producer.stats().submitted(), 1);
}

#[tokio::test]
async fn an_entry_over_the_byte_limit_is_dead_lettered_without_its_envelope() {
    let redis = RedisServer::start().unwrap();
    redis
        .command("XGROUP CREATE autobot:jobs:npu npu-workers $ MKSTREAM")
        .unwrap();
    // Refused on its size before anything reads it (the inline protocol
    // takes no quotes, so the "envelope" is plain bytes).
    let big = "x".repeat(5_000);
    redis
        .command(&format!("XADD autobot:jobs:npu * envelope {big}"))
        .unwrap();
    let echo = Echo::default();
    let mut cfg = consumer_config(&redis, "w1");
    cfg.max_payload_bytes = 1_000;
    let (stop, task, stats) = spawn_consumer_with_stats(cfg, echo.clone());
    wait_until("the entry is dead-lettered", || stats.dead_lettered() == 1).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(stats.refused_too_large(), 1);
    assert_eq!(echo.calls.load(Ordering::Relaxed), 0);
    let dead = xrange(&redis, "autobot:jobs:npu:dead");
    assert!(dead.contains("over the limit of 1000"), "{dead}");
    assert!(
        !dead.contains("xxxxxxxxxx"),
        "the envelope is not copied: {dead}"
    );
}

#[tokio::test]
async fn at_the_cap_processed_jobs_are_trimmed_and_unprocessed_ones_never_dropped() {
    let redis = RedisServer::start().unwrap();
    let mut cfg = ProducerConfig::npu(redis.url());
    cfg.max_len = 4;
    let producer = JobProducer::new(cfg).unwrap();
    // No worker yet: four jobs wait, the fifth is refused, none is dropped.
    let mut waiting = Vec::new();
    for i in 0..4 {
        waiting.push(producer.submit("echo", json!({ "i": i })).await.unwrap());
    }
    let err = producer.submit("echo", json!("fifth")).await.unwrap_err();
    assert_eq!(err.error_type(), "queue_full", "{err}");
    assert!(
        err.to_string().contains("4 jobs not yet processed"),
        "{err}"
    );
    assert_eq!(producer.stats().refused_queue_full(), 1);
    assert_eq!(redis.command("XLEN autobot:jobs:npu").unwrap(), ":4\r\n");

    // A worker answers the four; then the processed entries make room.
    let echo = Echo::default();
    let (stop, task, stats) =
        spawn_consumer_with_stats(consumer_config(&redis, "w1"), echo.clone());
    for job in &waiting {
        producer.wait(job, Duration::from_secs(30)).await.unwrap();
    }
    wait_until("all four acknowledged", || stats.answered() == 4).await;
    for i in 0..3 {
        producer
            .request("echo", json!({ "again": i }), Duration::from_secs(30))
            .await
            .unwrap();
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(echo.calls.load(Ordering::Relaxed), 7);
    assert!(
        producer.stats().trimmed_processed() >= 3,
        "trimmed {}",
        producer.stats().trimmed_processed()
    );
    assert_eq!(stats.trimmed_unprocessed(), 0);
}

#[tokio::test]
async fn a_pending_job_removed_from_the_stream_is_counted_not_silent() {
    let redis = RedisServer::start().unwrap();
    redis
        .command("XGROUP CREATE autobot:jobs:npu npu-workers $ MKSTREAM")
        .unwrap();
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let job = producer.submit("echo", json!("lost")).await.unwrap();
    // A worker takes it and dies; then someone trims the stream to nothing.
    redis
        .command("XREADGROUP GROUP npu-workers dead-one COUNT 1 STREAMS autobot:jobs:npu >")
        .unwrap();
    redis
        .command(&format!("XDEL autobot:jobs:npu {}", job.message_id))
        .unwrap();
    let (stop, task, stats) =
        spawn_consumer_with_stats(consumer_config(&redis, "rescuer"), Echo::default());
    wait_until("the vanished job is counted", || {
        stats.trimmed_unprocessed() == 1
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn waiting_for_results_uses_a_bounded_number_of_redis_connections() {
    let redis = RedisServer::start().unwrap();
    let mut cfg = ProducerConfig::npu(redis.url());
    cfg.reply_connections = 2;
    let producer = JobProducer::new(cfg).unwrap();
    let mut jobs = Vec::new();
    for i in 0..8 {
        jobs.push(producer.submit("echo", json!({ "i": i })).await.unwrap());
    }
    let clients = || -> usize {
        let info = redis.command("INFO clients").unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = clients();
    let mut waiters = Vec::new();
    for job in jobs {
        let producer = producer.clone();
        waiters.push(tokio::spawn(async move {
            producer.wait(&job, Duration::from_secs(3)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let during = clients();
    assert!(
        during <= before + 2,
        "eight waiters opened {} connections (limit 2)",
        during - before
    );
    // A worker answers them all, two connections at a time.
    let (stop, task) = spawn_consumer(consumer_config(&redis, "w1"), Echo::default());
    let mut answered = 0;
    for waiter in waiters {
        if waiter.await.unwrap().is_ok() {
            answered += 1;
        }
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert!(producer.stats().waited_for_reply_connection() >= 6);
    // Those that timed out waiting for a connection were told so (the job
    // still ran); the others were answered.
    assert!(answered >= 2, "answered {answered}");
}
