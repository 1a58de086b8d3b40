//! Jobs through Redis to the real worker binary, and their traces.

use std::time::Duration;

use autobot_jobs::{FailureCode, JobOutcome, JobProducer, ProducerConfig};
use autobot_npu_worker::embedding::cosine;
use autobot_testkit::redis::RedisServer;
use serde_json::json;

use autobot_testkit::traces::{self, Kind, Span};

use crate::support::{Telemetry, WorkerOptions, start_worker, vectors};

const WEATHER: &str = "The weather is lovely today.";
const SUNNY: &str = "It's so sunny outside!";
const STADIUM: &str = "He drove to the stadium.";
const TEST_SERVICE: &str = "npu-worker-test";
const WORKER_SERVICE: &str = "autobot-npu-worker";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_embed_job_is_one_trace_from_the_producer_to_the_worker_process() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let telemetry = Telemetry::start();
    let redis = RedisServer::start().unwrap();
    let mut opts = WorkerOptions::new("worker-a", &redis.url());
    opts.otlp_endpoint = Some(telemetry.endpoint());
    let worker = start_worker(opts);
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();

    let job = producer
        .submit("embed", json!({ "texts": [WEATHER, SUNNY, STADIUM] }))
        .await
        .unwrap();
    let result = producer.wait(&job, Duration::from_secs(60)).await.unwrap();
    let JobOutcome::Ok { result: body } = &result.outcome else {
        panic!(
            "expected vectors, got {:?}\n{}",
            result.outcome,
            worker.output()
        );
    };
    assert_eq!(
        (body["model"].as_str(), body["dimensions"].as_u64()),
        (Some("all-MiniLM-L6-v2"), Some(384))
    );
    let v = vectors(body);
    let sunny = cosine(&v[0], &v[1]);
    let stadium = cosine(&v[0], &v[2]);
    assert!((sunny - 0.666).abs() <= 0.01, "weather~sunny = {sunny}");
    assert!(
        (stadium - 0.105).abs() <= 0.01,
        "weather~stadium = {stadium}"
    );
    assert_eq!(
        (result.delivery_count, result.worker.as_str()),
        (1, "worker-a")
    );

    // Read back from the trace tool (another process), as an operator would.
    let trace_id = job.trace_id.clone().expect("the job is traced");
    let spans = telemetry
        .trace(&trace_id, |spans| {
            [
                "send autobot:jobs:npu",
                "process autobot:jobs:npu",
                "npu.inference",
                "redis.XACK",
            ]
            .iter()
            .all(|n| spans.iter().any(|s| s.name == *n))
        })
        .await;
    let send = traces::first(&spans, TEST_SERVICE, "send autobot:jobs:npu");
    let process = traces::first(&spans, WORKER_SERVICE, "process autobot:jobs:npu");
    let inference = traces::first(&spans, WORKER_SERVICE, "npu.inference");
    assert_eq!(send.kind, Kind::Producer);
    assert_eq!(process.kind, Kind::Consumer);
    assert_eq!(
        process.parent.as_ref(),
        Some(&send.span_id),
        "CONSUMER is the child of PRODUCER"
    );
    assert_eq!(
        process.links,
        vec![(trace_id.clone(), send.span_id.clone())]
    );
    assert_eq!(inference.parent.as_ref(), Some(&process.span_id));
    for (key, value) in [
        ("messaging.system", "redis"),
        ("messaging.destination.name", "autobot:jobs:npu"),
        ("messaging.consumer.group.name", "npu-workers"),
        ("messaging.operation.name", "process"),
        ("messaging.operation.type", "process"),
        ("messaging.message.id", job.message_id.as_str()),
    ] {
        assert_eq!(process.attr_text(key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(
        send.attr_text("messaging.message.id").as_deref(),
        Some(job.message_id.as_str())
    );
    assert_eq!(
        inference.attr_text("npu.model").as_deref(),
        Some("all-MiniLM-L6-v2")
    );
    assert_eq!(inference.attr_text("npu.batch_size").as_deref(), Some("3"));
    let tokens: u64 = inference
        .attr_text("npu.token_count")
        .unwrap()
        .parse()
        .unwrap();
    assert!(tokens >= 3 * 3, "{tokens} tokens");
    assert!(inference.attr_text("npu.duration_ms").is_some());
    // Redis commands on both sides are CLIENT spans in the same trace.
    let xadd = traces::first(&spans, TEST_SERVICE, "redis.XADD");
    assert_eq!(xadd.parent.as_ref(), Some(&send.span_id));
    let xack = traces::first(&spans, WORKER_SERVICE, "redis.XACK");
    assert_eq!(
        (xack.kind, xack.parent.as_deref()),
        (Kind::Client, Some(process.span_id.as_str()))
    );
    let reply = traces::first(&spans, WORKER_SERVICE, "redis.MULTI");
    assert!(
        reply.end_us <= xack.start_us,
        "the result is stored before the ack"
    );
}

/// Enough text that one attempt takes many seconds: the worker is surely
/// mid-job when it is killed.
fn long_texts() -> Vec<String> {
    (0..24)
        .map(|i| {
            format!(
                "{i} {}",
                "the quick brown fox jumps over the lazy dog ".repeat(30)
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_replaced_and_the_trace_shows_both_attempts() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let telemetry = Telemetry::start();
    let redis = RedisServer::start().unwrap();
    let mut opts = WorkerOptions::new("worker-a", &redis.url());
    opts.otlp_endpoint = Some(telemetry.endpoint());
    let mut first = start_worker(opts);
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let job = producer
        .submit("embed", json!({ "texts": long_texts() }))
        .await
        .unwrap();
    let trace_id = job.trace_id.clone().expect("the job is traced");

    // The first worker took the job (its `receive` span arrived): kill it.
    let took = |s: &Span, worker: &str| {
        s.name == "receive autobot:jobs:npu"
            && s.attr_text("messaging.client.id").as_deref() == Some(worker)
    };
    telemetry
        .trace(&trace_id, |spans| spans.iter().any(|s| took(s, "worker-a")))
        .await;
    first.kill();
    assert_eq!(
        redis.command(&format!("LLEN {}", job.reply_to)).unwrap(),
        ":0\r\n",
        "the first worker answered before it was killed: the job was too short for this test"
    );

    let mut opts = WorkerOptions::new("worker-b", &redis.url());
    opts.otlp_endpoint = Some(telemetry.endpoint());
    let second = start_worker(opts);
    let result = producer.wait(&job, Duration::from_secs(180)).await.unwrap();
    assert!(
        matches!(result.outcome, JobOutcome::Ok { .. }),
        "{:?}\n{}",
        result.outcome,
        second.output()
    );
    assert_eq!(
        (result.delivery_count, result.worker.as_str()),
        (2, "worker-b")
    );

    let spans = telemetry
        .trace(&trace_id, |spans| {
            spans.iter().any(|s| s.name == "process autobot:jobs:npu")
                && spans.iter().any(|s| took(s, "worker-b"))
        })
        .await;
    let send = traces::first(&spans, TEST_SERVICE, "send autobot:jobs:npu");
    let attempts: Vec<(Option<String>, Option<String>, Option<&str>)> = spans
        .iter()
        .filter(|s| s.name == "receive autobot:jobs:npu")
        .map(|s| {
            (
                s.attr_text("messaging.client.id"),
                s.attr_text("messaging.redis.message.delivery_count"),
                s.parent.as_deref(),
            )
        })
        .collect();
    assert!(
        attempts.contains(&(
            Some("worker-a".into()),
            Some("1".into()),
            Some(send.span_id.as_str())
        )),
        "{attempts:?}"
    );
    assert!(
        attempts.contains(&(
            Some("worker-b".into()),
            Some("2".into()),
            Some(send.span_id.as_str())
        )),
        "{attempts:?}"
    );
    let process = traces::first(&spans, WORKER_SERVICE, "process autobot:jobs:npu");
    assert_eq!(
        process.parent.as_ref(),
        Some(&send.span_id),
        "a redelivered job keeps its producer as parent"
    );
    assert_eq!(
        process
            .attr_text("messaging.redis.message.delivery_count")
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        process.attr_text("messaging.client.id").as_deref(),
        Some("worker-b")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_and_malformed_jobs_land_in_the_dead_letter_stream() {
    let redis = RedisServer::start().unwrap();
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    redis
        .command("XGROUP CREATE autobot:jobs:npu npu-workers 0 MKSTREAM")
        .unwrap();
    // A job that already took down five workers: delivered five times, never acknowledged.
    let poison = producer
        .submit("embed", json!({"texts": ["poison"]}))
        .await
        .unwrap();
    let taken = redis
        .command("XREADGROUP GROUP npu-workers crashed COUNT 1 STREAMS autobot:jobs:npu >")
        .unwrap();
    assert!(taken.contains(&poison.id), "{taken}");
    redis
        .command(&format!(
            "XCLAIM autobot:jobs:npu npu-workers crashed 0 {} RETRYCOUNT 5",
            poison.message_id
        ))
        .unwrap();
    // Not an envelope at all.
    redis
        .command("XADD autobot:jobs:npu * envelope {broken")
        .unwrap();

    let worker = start_worker(WorkerOptions::new("worker-a", &redis.url()));
    let result = producer
        .wait(&poison, Duration::from_secs(60))
        .await
        .unwrap();
    match &result.outcome {
        JobOutcome::Error { error } => {
            assert_eq!(error.code, FailureCode::DeadLettered, "{error}");
            assert!(error.message.contains("delivered 6 times"), "{error}");
        }
        other => panic!("expected a dead-letter error, got {other:?}"),
    }
    assert_eq!(
        (result.delivery_count, result.worker.as_str()),
        (6, "worker-a")
    );

    // A kind nobody runs is answered, not dead-lettered; the worker goes on.
    let unknown = producer
        .request("transcribe", json!({}), Duration::from_secs(60))
        .await
        .unwrap();
    match unknown.outcome {
        JobOutcome::Error { error } => assert_eq!(error.code, FailureCode::UnknownKind),
        other => panic!("expected unknown_kind, got {other:?}"),
    }
    let dead = redis.command("XRANGE autobot:jobs:npu:dead - +").unwrap();
    assert!(
        dead.contains(&poison.id) && dead.contains("more than the limit of 5"),
        "{dead}"
    );
    assert!(
        dead.contains("{broken") && dead.contains("malformed envelope"),
        "{dead}"
    );
    assert_eq!(
        redis.command("XLEN autobot:jobs:npu:dead").unwrap(),
        ":2\r\n"
    );
    // Nothing is left pending. The worker writes the reply before it
    // acknowledges (a crash in between redelivers rather than loses), so the
    // last acknowledgement may land just after the reply was read.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pending = loop {
        let pending = redis
            .command("XPENDING autobot:jobs:npu npu-workers")
            .unwrap();
        if pending.starts_with("*4\r\n:0") || std::time::Instant::now() > deadline {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(pending.starts_with("*4\r\n:0"), "{pending:?}");
    let health = reqwest::get(worker.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200, "{}", worker.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_embed_job_is_lost_when_redis_restarts_under_load() {
    let mut redis = RedisServer::start().unwrap();
    let worker = start_worker(WorkerOptions::new("worker-a", &redis.url()));
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    const JOBS: usize = 40;
    let mut callers = Vec::new();
    for i in 0..JOBS {
        let producer = producer.clone();
        callers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
            let text = format!("sentence number {i}");
            let result = producer
                .request(
                    "embed",
                    json!({ "texts": [text] }),
                    Duration::from_secs(120),
                )
                .await;
            (text, result)
        }));
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Down for a while: jobs are submitted into the outage and others are in flight.
    redis.kill();
    tokio::time::sleep(Duration::from_millis(400)).await;
    redis.start_again().unwrap();

    let npu = autobot_npu_worker::embedding::Embedder::load(&crate::support::model_dir()).unwrap();
    for caller in callers {
        let (text, result) = caller.await.unwrap();
        let result = result.unwrap_or_else(|e| panic!("{text}: {e}\n{}", worker.output()));
        let JobOutcome::Ok { result } = result.outcome else {
            panic!("{text}: {:?}", result.outcome);
        };
        // The answer is the vector of this job's own text.
        let expected = npu.embed(&[text.as_str()]).unwrap();
        assert!(
            cosine(&vectors(&result)[0], &expected.vectors[0]) > 0.9999,
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_job_in_hand_flushes_its_spans_and_exits() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let telemetry = Telemetry::start();
    let redis = RedisServer::start().unwrap();
    let mut opts = WorkerOptions::new("worker-a", &redis.url());
    opts.otlp_endpoint = Some(telemetry.endpoint());
    let mut worker = start_worker(opts);
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let job = producer
        .submit("embed", json!({ "texts": long_texts()[..16] }))
        .await
        .unwrap();
    let trace_id = job.trace_id.clone().expect("the job is traced");
    telemetry
        .trace(&trace_id, |spans| {
            spans.iter().any(|s| s.name == "receive autobot:jobs:npu")
        })
        .await;
    assert_eq!(
        redis.command(&format!("LLEN {}", job.reply_to)).unwrap(),
        ":0\r\n",
        "the job was answered before SIGTERM: too short for this test"
    );
    worker.send_sigterm();
    let status = worker.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "{status}\n{}", worker.output());
    // The job was answered before the worker left, and its spans were flushed.
    let result = producer.wait(&job, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        (result.delivery_count, result.worker.as_str()),
        (1, "worker-a")
    );
    assert!(matches!(result.outcome, JobOutcome::Ok { .. }));
    let spans = telemetry
        .trace(&trace_id, |spans| {
            spans.iter().any(|s| s.name == "npu.inference")
        })
        .await;
    traces::first(&spans, WORKER_SERVICE, "process autobot:jobs:npu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_a_model_answers_embed_jobs_with_an_error_never_vectors() {
    let redis = RedisServer::start().unwrap();
    let mut opts = WorkerOptions::new("worker-a", &redis.url());
    opts.model = false;
    let worker = start_worker(opts);
    let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();
    let result = producer
        .request(
            "embed",
            json!({"texts": ["hello"]}),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    match result.outcome {
        JobOutcome::Error { error } => {
            assert_eq!(error.code, FailureCode::ModelUnavailable);
            assert!(error.message.contains("AUTOBOT_NPU_MODEL_DIR"), "{error}");
        }
        other => panic!("expected model_unavailable, got {other:?}"),
    }
    let health = reqwest::get(worker.url("/health")).await.unwrap();
    assert_eq!(health.status(), 503);
}
