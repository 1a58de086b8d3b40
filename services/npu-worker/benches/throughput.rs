//! Embeddings per second on this CPU (batch 1 and 32) and the overhead of
//! the Redis job path (a job's round trip minus its inference), p50/p99.
//!
//!     scripts/setup.sh   # the model, redis-server
//!     cargo bench -p autobot-npu-worker --bench throughput
//!
//! Prints figures; asserts nothing about speed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use autobot_jobs::{
    Consumer, ConsumerConfig, JobEnvelope, JobFailure, JobHandler, JobOutcome, JobProducer,
    ProducerConfig,
};
use autobot_npu_worker::Npu;
use autobot_npu_worker::embedding::Embedder;
use autobot_npu_worker::jobs::NpuJobs;
use autobot_testkit::redis::RedisServer;
use serde_json::json;

const SENTENCES: [&str; 8] = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "A distributed trace crosses every service a request touches.",
    "Redis streams keep jobs until a worker acknowledges them.",
    "The worker computes sentence embeddings on the CPU.",
    "Operators read traces in Jaeger to find slow requests.",
    "Each span records how long one operation took.",
];

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("AUTOBOT_NPU_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.run/models/all-MiniLM-L6-v2")
        });
    assert!(
        dir.join("model.safetensors").is_file(),
        "no model in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| SENTENCES[i % SENTENCES.len()].to_owned())
        .collect()
}

fn throughput(embedder: &Embedder, batch: usize, min_time: Duration) -> (f64, usize, f64) {
    let input = texts(batch);
    let _ = embedder.embed(&input).expect("warm-up");
    let start = Instant::now();
    let mut calls = 0;
    let mut tokens = 0;
    while start.elapsed() < min_time || calls < 3 {
        tokens = embedder.embed(&input).expect("embeds").token_count;
        calls += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    (
        (calls * batch) as f64 / secs,
        calls,
        tokens as f64 / batch as f64,
    )
}

/// The NPU handler, plus how long its inference took.
struct Timed(NpuJobs);

impl JobHandler for Timed {
    async fn handle(&self, job: JobEnvelope) -> Result<serde_json::Value, JobFailure> {
        let start = Instant::now();
        let mut result = self.0.handle(job).await?;
        result["inference_us"] = json!(start.elapsed().as_micros() as u64);
        Ok(result)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let dir = model_dir();
    let embedder = Embedder::load(&dir).expect("model loads");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("all-MiniLM-L6-v2 on candle, CPU, {threads} hardware threads");
    for batch in [1, 32] {
        let (per_sec, calls, tokens) = throughput(&embedder, batch, Duration::from_secs(5));
        println!(
            "batch {batch:>2}: {per_sec:>8.1} embeddings/s ({calls} calls, {tokens:.1} tokens per text)"
        );
    }
    drop(embedder);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let redis = RedisServer::start().expect("redis-server starts");
        let npu = tokio::task::spawn_blocking(move || Npu::load(Some(&dir)))
            .await
            .unwrap();
        let consumer = Consumer::new(
            ConsumerConfig::npu(redis.url(), "bench-worker"),
            Timed(NpuJobs { npu }),
        )
        .unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(async move { consumer.run(stopped).await });
        let producer = JobProducer::new(ProducerConfig::npu(redis.url())).unwrap();

        const JOBS: usize = 300;
        let mut overhead_ms = Vec::with_capacity(JOBS);
        for i in 0..JOBS + 20 {
            let start = Instant::now();
            let result = producer
                .request(
                    "embed",
                    json!({ "texts": [SENTENCES[i % SENTENCES.len()]] }),
                    Duration::from_secs(30),
                )
                .await
                .expect("answered");
            let round_trip = start.elapsed();
            let JobOutcome::Ok { result } = result.outcome else {
                panic!("job failed: {:?}", result.outcome);
            };
            let inference = Duration::from_micros(result["inference_us"].as_u64().unwrap());
            if i >= 20 {
                // The first jobs warm up connections and the model.
                overhead_ms.push((round_trip.saturating_sub(inference)).as_secs_f64() * 1000.0);
            }
        }
        overhead_ms.sort_by(f64::total_cmp);
        println!(
            "queue overhead (round trip minus inference, {JOBS} sequential jobs of 1 text): p50 {:.2} ms, p99 {:.2} ms",
            percentile(&overhead_ms, 0.50),
            percentile(&overhead_ms, 0.99)
        );
        let _ = stop.send(true);
        let _ = worker.await;
    });
}
