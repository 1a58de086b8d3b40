//! What one span costs end to end: created, given attributes, ended and
//! queued to the real batch processor (whose exporter discards, so no network
//! noise), at sampling rate 1.0 and 0.0, through the `tracing` bridge and
//! through the OpenTelemetry API the server layer uses; and what one
//! inject + extract of the HTTP headers costs.
//!
//! Run: `cargo bench -p autobot-tracing --bench span_cost`
//! Each mode runs in a child process of its own (a process holds one
//! global subscriber); the parent prints one table.

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use autobot_tracing::{TracingConfig, extract_headers, inject_headers};
use opentelemetry::trace::{SpanKind, Tracer, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

const ITERATIONS: u32 = 200_000;

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--mode"), Some(mode)) => child(&mode),
        _ => parent(),
    }
}

fn parent() {
    let exe = std::env::current_exe().expect("own path");
    println!(
        "autobot-tracing span cost, {ITERATIONS} iterations per row, ns per operation (median of 3 runs)"
    );
    println!("{:<62} {:>8} {:>14}", "operation", "ns/op", "not exported");
    for mode in [
        "tracing-span-rate-1.0",
        "tracing-span-rate-0.0",
        "otel-api-span-rate-1.0",
        "otel-api-span-rate-0.0",
        "inject+extract",
    ] {
        let mut runs: Vec<(f64, u64)> = (0..3)
            .map(|_| {
                let out = Command::new(&exe)
                    .args(["--mode", mode])
                    .output()
                    .expect("child runs");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let mut fields = text.split_whitespace();
                let ns = fields
                    .next()
                    .and_then(|f| f.parse().ok())
                    .unwrap_or(f64::NAN);
                let lost = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
                (ns, lost)
            })
            .collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ns, lost) = runs[1];
        println!("{:<62} {:>8.0} {:>14}", describe(mode), ns, lost);
    }
}

fn describe(mode: &str) -> &'static str {
    match mode {
        "tracing-span-rate-1.0" => "tracing span, 6 attributes, end, queue (rate 1.0)",
        "tracing-span-rate-0.0" => "tracing span, 6 attributes, end (rate 0.0)",
        "otel-api-span-rate-1.0" => "OTel API span (server layer), 8 attributes, end, queue (1.0)",
        "otel-api-span-rate-0.0" => "OTel API span (server layer), 8 attributes, end (0.0)",
        _ => "inject + extract of W3C, B3 and baggage headers",
    }
}

fn child(mode: &str) {
    let rate = if mode.ends_with("rate-0.0") { 0.0 } else { 1.0 };
    let cfg = TracingConfig {
        sample_rate: rate,
        log_filter: "error".into(),
        ..TracingConfig::default()
    };
    let guard =
        autobot_tracing::init_with_batch_exporter("bench", "0", cfg, Discard).expect("init");
    let per_op = match mode {
        m if m.starts_with("tracing-span") => measure(|i| {
            let span = tracing::info_span!(
                "llm.inference",
                otel.kind = "client",
                llm.provider = "ollama",
                llm.model = "llama3",
                llm.prompt_tokens = i64::from(i),
                llm.completion_tokens = 42i64,
                http.response.status_code = 200i64,
            );
            drop(span.enter());
        }),
        m if m.starts_with("otel-api-span") => {
            let tracer = global::tracer_provider().tracer("bench");
            measure(|i| {
                let span = tracer
                    .span_builder("GET /api/chat")
                    .with_kind(SpanKind::Server)
                    .with_attributes([
                        KeyValue::new("http.request.method", "GET"),
                        KeyValue::new("url.path", "/api/chat"),
                        KeyValue::new("url.scheme", "http"),
                        KeyValue::new("http.route", "/api/chat"),
                        KeyValue::new("server.address", "127.0.0.1"),
                        KeyValue::new("server.port", 8001i64),
                        KeyValue::new("network.protocol.version", "1.1"),
                        KeyValue::new("http.response.status_code", i64::from(i % 500)),
                    ])
                    .start(&tracer);
                drop(black_box(span));
            })
        }
        _ => {
            let span = tracing::info_span!("client");
            let cx = {
                let _in = span.enter();
                autobot_tracing::current_context()
            };
            measure(|_| {
                let mut headers = http::HeaderMap::new();
                inject_headers(&cx, &mut headers);
                black_box(extract_headers(&headers));
            })
        }
    };
    // Spans the queue could not take would make a row look cheaper than it is.
    let stats = guard.shutdown_blocking();
    println!("{per_op:.1} {}", stats.ended.saturating_sub(stats.exported));
}

fn measure(mut op: impl FnMut(u32)) -> f64 {
    for i in 0..10_000 {
        op(i);
    }
    let start = Instant::now();
    for i in 0..ITERATIONS {
        op(i);
    }
    start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
}
