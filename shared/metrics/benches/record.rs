//! Cost of counting one request, as the server layer does it: resolve the
//! route's series, take the time, resolve the outcome, add to a bucket and
//! the sum. One thread, then two threads counting the same route at once
//! (the series' atomics are shared; no lock is). Release build:
//!   cargo bench -p autobot-metrics --bench record
//! Prints ns per request; docs/performance.md, "Metrics", has the figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use autobot_metrics::TraceId;
use autobot_metrics::http;
use autobot_metrics::spans::{SpanKind, operation};

const ITERATIONS: u64 = 2_000_000;

fn request(i: u64) {
    let route = http::server().route(black_box("POST"), Some(black_box("/api/research")), true);
    let started = Instant::now();
    let exemplar = i.is_multiple_of(10).then_some(TraceId(u128::from(i)));
    route.record(
        Some(200),
        started.elapsed() + Duration::from_micros(i % 5000),
        exemplar,
    );
}

fn per_op(threads: u64, f: fn(u64)) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..ITERATIONS {
                    f(i + t);
                }
            });
        }
    });
    start.elapsed().as_nanos() as f64 / ITERATIONS as f64
}

fn main() {
    // Warm: the label sets resolved once, as after a service's first request.
    request(0);
    let clock = |_: u64| {
        black_box(Instant::now().elapsed());
    };
    let op = operation("bench.op", SpanKind::Internal);
    let _ = op;
    type Row = (&'static str, u64, fn(u64));
    let rows: [Row; 5] = [
        (
            "Instant::now + elapsed alone (the floor of any timing)",
            1,
            clock,
        ),
        (
            "count one server request (route, time, outcome, bucket, 1 in 10 with an exemplar)",
            1,
            request,
        ),
        (
            "the same, 2 threads on the same route at once (per request, per thread)",
            2,
            request,
        ),
        ("count one client call", 1, |i| {
            let peer = http::client().peer("GET", black_box("172.16.168.24"), 8080);
            let started = Instant::now();
            peer.record(
                Some(200),
                "",
                started.elapsed(),
                i.is_multiple_of(10).then_some(TraceId(1)),
            );
        }),
        ("count one domain operation (llm.inference)", 1, |i| {
            operation("llm.inference", SpanKind::Client).record(
                Duration::from_micros(i % 5000),
                false,
                None,
            );
        }),
    ];
    println!("| operation | ns/op (median of 3) |");
    println!("|---|---:|");
    for (name, threads, f) in rows {
        let mut runs: Vec<f64> = (0..3).map(|_| per_op(threads, f)).collect();
        runs.sort_by(f64::total_cmp);
        println!("| {name} | {:.1} |", runs[1]);
    }
    let exposition = autobot_metrics::render(autobot_metrics::Format::OpenMetrics);
    let start = Instant::now();
    for _ in 0..100 {
        black_box(autobot_metrics::render(
            autobot_metrics::Format::OpenMetrics,
        ));
    }
    println!(
        "| one scrape (OpenMetrics, {} bytes) | {:.0} |",
        exposition.len(),
        start.elapsed().as_nanos() as f64 / 100.0
    );
}
