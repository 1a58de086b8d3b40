//! Research requests per second through the whole system, and where the time
//! goes, read from the traces themselves (not from timers in the services).
//!
//! Run: `cargo bench -p autobot-e2e --bench research` (after
//! `cargo build --workspace --bins`; debug binaries unless AUTOBOT_BIN_DIR
//! points at target/release). Prints a table; asserts nothing.

use std::time::{Duration, Instant};

use autobot_e2e::system::{Options, RESEARCH_SERVICES, System};
use autobot_testkit::traces::{Kind, Span, is_whole, spans};
use serde_json::json;

/// Reads one stage's duration (µs) from a trace's spans.
type Stage = fn(&[Span]) -> Option<u64>;

const SEQUENTIAL: usize = 20;
const CONCURRENT: usize = 24;
const IN_FLIGHT: usize = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let system = System::start(Options::default()).await;
    let body = |i: usize| json!({"url": system.article_url(), "question": format!("Question {i}: which header carries the trace context?"), "top_k": 3});
    for i in 0..3 {
        assert_eq!(
            system.post("/api/research", body(i), &[]).await.status,
            200,
            "warm-up"
        );
    }

    let mut ids = Vec::new();
    let start = Instant::now();
    for i in 0..SEQUENTIAL {
        let a = system.post("/api/research", body(i), &[]).await;
        assert_eq!(a.status, 200, "{}", a.body);
        ids.push(a.trace_id);
    }
    let sequential = SEQUENTIAL as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut next = 0;
    while next < CONCURRENT {
        let batch: Vec<_> = (next..(next + IN_FLIGHT).min(CONCURRENT))
            .map(|i| system.post("/api/research", body(i), &[]))
            .collect();
        next += batch.len();
        for a in futures::future::join_all(batch).await {
            assert_eq!(a.status, 200);
        }
    }
    let concurrent = CONCURRENT as f64 / start.elapsed().as_secs_f64();

    println!(
        "research workflow through backend, browser, demo site, Redis, npu-worker, ai-stack (stand-in LLM)"
    );
    println!("  sequential:            {sequential:>6.2} req/s ({SEQUENTIAL} requests)");
    println!("  {IN_FLIGHT} in flight:           {concurrent:>6.2} req/s ({CONCURRENT} requests)");

    // Latency split of the sequential requests, from their traces.
    let stages: [(&str, Stage); 9] = [
        ("backend, whole request", |s| {
            op(s, "POST /api/research", "autobot-backend")
        }),
        ("browser: POST /navigate", |s| {
            op(s, "POST /navigate", "autobot-browser")
        }),
        ("  demo site: GET /articles/tracing", |s| {
            op(s, "GET /articles/tracing", "autobot-demo-site")
        }),
        ("queue: XADD to consumer start", |s| {
            let producer = s.iter().find(|x| x.kind == Kind::Producer)?;
            let consumer = s.iter().find(|x| x.kind == Kind::Consumer)?;
            Some(consumer.start_us.saturating_sub(producer.end_us))
        }),
        ("npu-worker: process job", |s| {
            op(s, "process autobot:jobs:npu", "autobot-npu-worker")
        }),
        ("  npu.inference (embeddings)", |s| {
            op(s, "npu.inference", "autobot-npu-worker")
        }),
        ("backend: research.rank", |s| {
            op(s, "research.rank", "autobot-backend")
        }),
        ("ai-stack: POST /v1/chat", |s| {
            op(s, "POST /v1/chat", "autobot-ai-stack")
        }),
        ("  llm.inference", |s| {
            op(s, "llm.inference", "autobot-ai-stack")
        }),
    ];
    let mut traces = Vec::new();
    for id in &ids {
        let t = system
            .tool
            .wait_for_trace(
                id,
                |t| is_whole(t, &RESEARCH_SERVICES),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        traces.push(spans(&t));
    }
    println!(
        "  latency split (ms), from {} traces:       p50      p90",
        traces.len()
    );
    for (name, stage) in stages {
        let mut values: Vec<u64> = traces.iter().filter_map(|t| stage(t)).collect();
        values.sort_unstable();
        if values.is_empty() {
            println!("  {name:<40} {:>8}", "-");
            continue;
        }
        let pick =
            |q: f64| values[((values.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        println!("  {name:<40} {:>8.2} {:>8.2}", pick(0.5), pick(0.9));
    }
}

fn op(spans: &[Span], operation: &str, service: &str) -> Option<u64> {
    spans
        .iter()
        .find(|s| s.name == operation && s.service == service)
        .map(|s| s.end_us - s.start_us)
}
