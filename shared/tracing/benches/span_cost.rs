//! What one span costs end to end: created, given attributes, ended and
//! queued to the real batch processor (whose exporter discards, so no network
//! noise), at sampling rate 1.0 and 0.0, through the `tracing` bridge and
//! through the OpenTelemetry API the server layer uses; what one inject +
//! extract of the HTTP headers costs, through the fast path and through the
//! SDK's composite propagator with `HeaderInjector`/`HeaderExtractor` (the
//! path before it), side by side; and what the traced client's CLIENT span
//! adds to a request that never leaves the process.
//!
//! Run: `cargo bench -p autobot-tracing --bench span_cost`
//! Each mode runs in a child process of its own (a process holds one
//! global subscriber); the parent prints one table.

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use autobot_tracing::{TracingConfig, extract_headers, inject_headers};
use opentelemetry::propagation::{Extractor, TextMapCompositePropagator};
use opentelemetry::trace::{SpanKind, Tracer, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_propagator_b3::{B3Encoding, Propagator as B3Propagator};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

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
    let mut results = std::collections::HashMap::new();
    for mode in [
        "tracing-span-rate-1.0",
        "tracing-span-rate-0.0",
        "otel-api-span-rate-1.0",
        "otel-api-span-rate-0.0",
        "inject+extract",
        "inject+extract-sdk",
        "request-untraced",
        "request-client-span-rate-1.0",
        "request-client-span-rate-0.0",
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
        results.insert(mode, ns);
        println!("{:<62} {:>8.0} {:>14}", describe(mode), ns, lost);
    }
    println!(
        "propagation, fast path / SDK composite: {:.2}",
        results["inject+extract"] / results["inject+extract-sdk"]
    );
    for rate in ["1.0", "0.0"] {
        println!(
            "CLIENT span, added to a request at rate {rate}: {:.0} ns",
            results[format!("request-client-span-rate-{rate}").as_str()]
                - results["request-untraced"]
        );
    }
}

fn describe(mode: &str) -> &'static str {
    match mode {
        "tracing-span-rate-1.0" => "tracing span, 6 attributes, end, queue (rate 1.0)",
        "tracing-span-rate-0.0" => "tracing span, 6 attributes, end (rate 0.0)",
        "otel-api-span-rate-1.0" => "OTel API span (server layer), 8 attributes, end, queue (1.0)",
        "otel-api-span-rate-0.0" => "OTel API span (server layer), 8 attributes, end (0.0)",
        "inject+extract-sdk" => "the same via SDK composite + HeaderInjector/Extractor (before)",
        "inject+extract" => "inject + extract of W3C, B3 (single + multi), baggage headers",
        "request-untraced" => "request through reqwest-middleware, canned response, no span",
        "request-client-span-rate-1.0" => "the same with the CLIENT span (ClientTrace), rate 1.0",
        _ => "the same with the CLIENT span (ClientTrace), rate 0.0",
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
        m if m.starts_with("inject+extract") => {
            let span = tracing::info_span!("client");
            let cx = {
                let _in = span.enter();
                autobot_tracing::current_context()
            };
            if m == "inject+extract-sdk" {
                // The path before the fast path: the global composite
                // propagator, HeaderInjector/HeaderExtractor, values bounded.
                global::set_text_map_propagator(sdk_composite());
                measure(|_| {
                    let mut headers = http::HeaderMap::new();
                    global::get_text_map_propagator(|p| {
                        p.inject_context(&cx, &mut opentelemetry_http::HeaderInjector(&mut headers))
                    });
                    black_box(global::get_text_map_propagator(|p| {
                        p.extract(&Bounded(&opentelemetry_http::HeaderExtractor(&headers)))
                    }));
                })
            } else {
                measure(|_| {
                    let mut headers = http::HeaderMap::new();
                    inject_headers(&cx, &mut headers);
                    black_box(extract_headers(&headers));
                })
            }
        }
        m => {
            // A request that never leaves the process: reqwest-middleware
            // with a last middleware that answers, with or without ClientTrace
            // in front; inside a SERVER-like span so it has a parent.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let mut builder = ClientBuilder::new(reqwest::Client::new());
            if m != "request-untraced" {
                builder = builder.with(autobot_tracing::http::ClientTrace::new());
            }
            let client: ClientWithMiddleware = builder.with(Canned).build();
            let parent = tracing::info_span!("parent");
            let _in = parent.enter();
            measure(|_| {
                let response = runtime.block_on(client.get("http://127.0.0.1:9/leaf").send());
                black_box(response.expect("canned"));
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

/// The composite `build_propagator` returned before the fast path.
fn sdk_composite() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(B3Propagator::with_encoding(
            B3Encoding::SingleAndMultiHeader,
        )),
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

/// The extractor wrapper of the path before: values over the bound hidden.
struct Bounded<'a>(&'a dyn Extractor);

impl Extractor for Bounded<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .filter(|v| v.len() <= autobot_tracing::MAX_CONTEXT_VALUE_BYTES)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

/// Answers every request with 200 and an empty body, without a socket.
struct Canned;

#[async_trait::async_trait]
impl Middleware for Canned {
    async fn handle(
        &self,
        req: reqwest::Request,
        _extensions: &mut http::Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        black_box(req);
        Ok(reqwest::Response::from(
            http::Response::builder()
                .status(200)
                .body(Vec::<u8>::new())
                .expect("a response"),
        ))
    }
}
