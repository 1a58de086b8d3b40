//! The experiment of issue 21 (docs/performance.md, "Product path"): what a
//! kept SERVER span costs from start to encoded bytes on the SDK's path, and
//! what it would cost recorded without the SDK's span machinery, feeding the
//! same encoder. Side by side, in instructions (callgrind, which does not
//! drift with the machine's load):
//!
//! - `sdk`: as the server layer records it: the SDK tracer and sampler,
//!   attribute room (autobot_tracing's `start_in_context`), nine attributes,
//!   the span in a `Context`, the status code, end; the batch processor's
//!   thread encodes with `TraceEncoder` (the bytes are then dropped: no
//!   network).
//! - `direct`: the same span's data kept in a plain struct: the same
//!   sampler and id generator, the same attributes, a `Context` carrying its
//!   span context; at end one `SpanData` is made and encoded with the same
//!   `TraceEncoder` into a shared buffer on the caller's thread, no channel,
//!   no batch thread.
//!
//! Run: `cargo bench -p autobot-tracing --bench span_pipeline` (ns per span,
//! median of 3 runs), and for instructions per span:
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null
//! target/release/deps/span_pipeline-* --mode MODE --spans N` at N = 2000
//! and 12000, (difference) / 10000.

use std::borrow::Cow;
use std::hint::black_box;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use autobot_tracing::{AutobotSampler, TraceEncoder};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, IdGenerator, RandomIdGenerator, SamplingDecision, SdkTracerProvider,
    ShouldSample, SpanData, SpanEvents, SpanExporter, SpanLinks,
};

const SPANS: u32 = 200_000;
/// Encoded bytes kept before the buffer is handed on (here: cleared).
const BUFFER_BYTES: usize = 256 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match value("--mode") {
        Some(mode) => {
            let spans = value("--spans")
                .and_then(|n| n.parse().ok())
                .unwrap_or(SPANS);
            let started = Instant::now();
            run(&mode, spans);
            println!(
                "{:.0}",
                started.elapsed().as_nanos() as f64 / f64::from(spans)
            );
        }
        None => parent(),
    }
}

fn parent() {
    let exe = std::env::current_exe().expect("own path");
    println!(
        "kept SERVER span, start to encoded bytes, {SPANS} spans per run, ns per span (median of 3 runs)"
    );
    for mode in ["sdk", "direct"] {
        let mut runs: Vec<f64> = (0..3)
            .map(|_| {
                let out = Command::new(&exe)
                    .args(["--mode", mode])
                    .output()
                    .expect("child runs");
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(f64::NAN)
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        println!("{mode:<8} {:>8.0}", runs[1]);
    }
}

/// The caller's context, as the ai-stack's SERVER span finds it: remote, sampled.
fn remote_parent() -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
        SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

/// The server layer's nine attributes at the start (http/server.rs).
fn request_attributes(i: u32) -> [KeyValue; 9] {
    [
        KeyValue::new("http.request.method", "POST"),
        KeyValue::new("url.path", format!("/api/chat/{}", i % 7)),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("http.route", "/api/chat/{id}"),
        KeyValue::new("server.address", String::from("127.0.0.1")),
        KeyValue::new("server.port", 8001i64),
        KeyValue::new("network.protocol.version", "1.1"),
        KeyValue::new("user_agent.original", String::from("autobot-backend/0.1")),
        KeyValue::new("client.address", String::from("127.0.0.1")),
    ]
}

fn run(mode: &str, spans: u32) {
    let resource = Resource::builder_empty()
        .with_service_name("autobot-ai-stack")
        .build();
    let encoder = TraceEncoder::new(&resource);
    let parent = remote_parent();
    match mode {
        "sdk" => sdk(encoder, &parent, spans),
        "direct" => direct(encoder, &parent, spans),
        other => panic!("unknown mode {other} (sdk or direct)"),
    }
}

#[derive(Debug)]
struct EncodeAndDrop(TraceEncoder);

impl SpanExporter for EncodeAndDrop {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(self.0.encode_to_vec(&batch));
        Ok(())
    }
}

fn sdk(encoder: TraceEncoder, parent: &Context, spans: u32) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(AutobotSampler::new(1.0))
        .with_span_processor(BatchSpanProcessor::builder(EncodeAndDrop(encoder)).build())
        .build();
    let tracer = provider.tracer("autobot-ai-stack");
    for i in 0..spans {
        let mut builder = tracer.span_builder("POST").with_kind(SpanKind::Server);
        builder.attributes = Some(Vec::with_capacity(16));
        let mut span = builder.start_with_context(&tracer, parent);
        span.update_name("POST /api/chat/{id}");
        for kv in request_attributes(i) {
            span.set_attribute(kv);
        }
        let cx = parent.with_span(span);
        cx.span()
            .set_attribute(KeyValue::new("http.response.status_code", 200i64));
        cx.span().end();
        // The batch queue holds 8 192 spans by default; a tight loop outruns
        // the batch thread, so it is emptied as the services' pace would.
        if i % 4096 == 4095 {
            let _ = provider.force_flush();
        }
    }
    provider.shutdown().expect("flushed");
}

/// A span kept as plain data until it ends.
struct DirectSpan {
    context: SpanContext,
    parent_span_id: SpanId,
    name: Cow<'static, str>,
    start: SystemTime,
    attributes: Vec<KeyValue>,
}

fn direct(encoder: TraceEncoder, parent: &Context, spans: u32) {
    let sampler = AutobotSampler::new(1.0);
    let ids = RandomIdGenerator::default();
    let scope = InstrumentationScope::builder("autobot-ai-stack").build();
    let buffer = Mutex::new(Vec::<u8>::with_capacity(BUFFER_BYTES + 4096));
    for i in 0..spans {
        let parent_span = parent.span();
        let parent_sc = parent_span.span_context();
        let trace_id = parent_sc.trace_id();
        let decision = sampler
            .should_sample(Some(parent), trace_id, "POST", &SpanKind::Server, &[], &[])
            .decision;
        if decision == SamplingDecision::Drop {
            continue;
        }
        let mut span = DirectSpan {
            context: SpanContext::new(
                trace_id,
                ids.new_span_id(),
                TraceFlags::SAMPLED,
                false,
                parent_sc.trace_state().clone(),
            ),
            parent_span_id: parent_sc.span_id(),
            name: Cow::Borrowed("POST /api/chat/{id}"),
            start: SystemTime::now(),
            attributes: Vec::with_capacity(16),
        };
        span.attributes.extend(request_attributes(i));
        // Children would find it in the context, as they find the SDK's span.
        let cx = parent.with_remote_span_context(span.context.clone());
        black_box(&cx);
        span.attributes
            .push(KeyValue::new("http.response.status_code", 200i64));
        let data = SpanData {
            span_context: span.context,
            parent_span_id: span.parent_span_id,
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: span.name,
            start_time: span.start,
            end_time: SystemTime::now(),
            attributes: span.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        };
        let mut out = buffer.lock().expect("buffer");
        encoder.encode(std::slice::from_ref(&data), &mut out);
        if out.len() > BUFFER_BYTES {
            black_box(&out[..]);
            out.clear();
        }
    }
}
