//! What encoding one batch for OTLP costs per span, side by side in one run:
//! (a) the SDK's path, as `opentelemetry-otlp` takes it: `opentelemetry_proto`'s
//! transform (`group_spans_by_resource_and_scope`) into the generated structs,
//! prost's `encode_to_vec`, dropping the structs; (b) AutoBot's encoder, the
//! same spans straight to bytes. Both outputs are checked equal first.
//!
//! The batch: 512 server spans as autobot-tracing's server layer records
//! them (9 attributes, remote parent), one scope, the resource `init` builds.
//! The SDK's transform consumes the batch (its exporter clones it per
//! attempt), so (a) clones first; that clone is timed alone and subtracted.
//!
//! Then compression (`OTEL_EXPORTER_OTLP_COMPRESSION`), side by side: the
//! same batch with random trace and span ids (as in production; sequential
//! ids would compress better than real ones), its body bytes per span as
//! sent with `none` and with `gzip` (level 6: tonic's fixed level, which the
//! HTTP path uses too; level 1 for reference), and the CPU per span to
//! encode, to compress, and at the receiver to decompress.
//!
//! Run: `cargo bench -p autobot-tracing --bench export_cost`
//! Instruction counts: `valgrind --tool=callgrind --callgrind-out-file=/dev/null
//! target/release/deps/export_cost-* --count <sdk|ours|clone> <batches>`
//! (the difference between two batch counts, divided, is the cost per batch).

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use autobot_tracing::TraceEncoder;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message;

const BATCH: usize = 512;
const ROUNDS: u32 = 400;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let resource = resource();
    let spans = batch();
    if let [flag, mode, n] = args.as_slice()
        && flag == "--count"
    {
        let n: u32 = n.parse().expect("batches");
        count(mode, n, &spans, &resource);
        return;
    }
    let sdk_resource: ResourceAttributesWithSchema = (&resource).into();
    let encoder = TraceEncoder::new(&resource);
    let ours = encoder.encode_to_vec(&spans);
    let theirs = sdk(&spans, &sdk_resource);
    assert!(ours == theirs, "both paths must produce the same bytes");

    println!(
        "OTLP encoding of a batch of {BATCH} server spans ({} bytes), {ROUNDS} batches per run, median of 5 runs",
        ours.len()
    );
    let clone = median(|| {
        time(|| {
            black_box(spans.clone());
        })
    });
    let sdk_total = median(|| {
        time(|| {
            black_box(sdk(&spans, &sdk_resource));
        })
    });
    let mut last_len = 0;
    let ours_ns = median(|| {
        time(|| {
            // As the exporter does: one buffer sized from the last batch.
            let mut out = Vec::with_capacity(last_len + last_len / 8);
            encoder.encode(&spans, &mut out);
            last_len = out.len();
            black_box(out);
        })
    });
    let sdk_ns = sdk_total - clone;
    println!("{:<70} {:>9}", "path", "ns/span");
    println!(
        "{:<70} {:>9.0}",
        "(a) SDK: transform + prost encode_to_vec + drop (clone subtracted)", sdk_ns
    );
    println!(
        "{:<70} {:>9.0}",
        "    the batch clone the SDK's exporter also makes", clone
    );
    println!(
        "{:<70} {:>9.0}",
        "(b) autobot-tracing TraceEncoder::encode", ours_ns
    );
    println!("{:<70} {:>8.1}x", "(a) / (b)", sdk_ns / ours_ns);
    println!();
    compression(&encoder, &random_ids(spans));
}

/// Body bytes and CPU per span with and without gzip, for one batch.
fn compression(encoder: &TraceEncoder, spans: &[SpanData]) {
    let plain = encoder.encode_to_vec(spans);
    let n = spans.len() as f64;
    let gz6 = autobot_tracing::gzip(&plain);
    let gz1 = autobot_tracing::gzip_at(&plain, 1);
    assert_eq!(gunzip(&gz6), plain, "gzip round-trips");
    let encode_ns = median(|| {
        time(|| {
            black_box(encoder.encode_to_vec(spans));
        })
    });
    let gzip_ns = |level: u32| {
        median(|| {
            time(|| {
                black_box(autobot_tracing::gzip_at(&plain, level));
            })
        })
    };
    let (gz6_ns, gz1_ns) = (gzip_ns(autobot_tracing::GZIP_LEVEL), gzip_ns(1));
    let gunzip_ns = median(|| {
        time(|| {
            black_box(gunzip(&gz6));
        })
    });
    println!(
        "OTLP compression of a batch of {BATCH} server spans with random ids, median of 5 runs of {ROUNDS}"
    );
    println!(
        "{:<44} {:>11} {:>9} {:>15} {:>14}",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "bytes/span",
        "ratio",
        "exporter ns/span",
        "receiver ns/span"
    );
    println!(
        "{:<44} {:>11.1} {:>8.2}x {:>16.0} {:>14}",
        "none (encode only)",
        plain.len() as f64 / n,
        1.0,
        encode_ns,
        "0"
    );
    println!(
        "{:<44} {:>11.1} {:>8.2}x {:>16.0} {:>14.0}",
        format!(
            "gzip (level {}, encode + gzip)",
            autobot_tracing::GZIP_LEVEL
        ),
        gz6.len() as f64 / n,
        plain.len() as f64 / gz6.len() as f64,
        encode_ns + gz6_ns,
        gunzip_ns
    );
    println!(
        "{:<44} {:>11.1} {:>8.2}x {:>16.0} {:>14}",
        "  (level 1, for reference)",
        gz1.len() as f64 / n,
        plain.len() as f64 / gz1.len() as f64,
        encode_ns + gz1_ns,
        "-"
    );
    println!(
        "{:<44} {:>11.1} {:>9} {:>16.0} {:>14.0}",
        "gzip - none",
        (gz6.len() as f64 - plain.len() as f64) / n,
        "",
        gz6_ns,
        gunzip_ns
    );
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

/// The batch with ids as random as real ones (xorshift; fixed seed).
fn random_ids(mut spans: Vec<SpanData>) -> Vec<SpanData> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for s in &mut spans {
        let trace = (u128::from(next()) << 64) | u128::from(next());
        s.span_context = SpanContext::new(
            TraceId::from(trace),
            SpanId::from(next()),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        s.parent_span_id = SpanId::from(next());
        s.end_time = s.start_time + Duration::from_micros(200 + next() % 5_000);
    }
    spans
}

/// The SDK's path for one batch (the clone included: the transform consumes it).
fn sdk(spans: &[SpanData], resource: &ResourceAttributesWithSchema) -> Vec<u8> {
    let request = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans.to_vec(), resource),
    };
    request.encode_to_vec()
}

/// ns per span of `ROUNDS` batches after a warm-up.
fn time(mut op: impl FnMut()) -> f64 {
    for _ in 0..20 {
        op();
    }
    let start = Instant::now();
    for _ in 0..ROUNDS {
        op();
    }
    start.elapsed().as_nanos() as f64 / f64::from(ROUNDS) / BATCH as f64
}

fn median(mut run: impl FnMut() -> f64) -> f64 {
    let mut runs: Vec<f64> = (0..5).map(|_| run()).collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

/// `n` batches of one path, for callgrind.
fn count(mode: &str, n: u32, spans: &[SpanData], resource: &Resource) {
    let sdk_resource: ResourceAttributesWithSchema = resource.into();
    let encoder = TraceEncoder::new(resource);
    let mut last_len = 0;
    for _ in 0..n {
        match mode {
            "sdk" => {
                black_box(sdk(spans, &sdk_resource));
            }
            "clone" => {
                black_box(spans.to_vec());
            }
            "ours" => {
                let mut out = Vec::with_capacity(last_len + last_len / 8);
                encoder.encode(spans, &mut out);
                last_len = out.len();
                black_box(out);
            }
            other => panic!("unknown mode {other}"),
        }
    }
}

/// The resource `init` builds for a service.
fn resource() -> Resource {
    Resource::builder()
        .with_attributes([
            KeyValue::new("service.name", "autobot-backend"),
            KeyValue::new("service.version", "0.1.0"),
            KeyValue::new("service.namespace", "autobot"),
            KeyValue::new(
                "service.instance.id",
                "5f0c3c1e-8d4b-4f7e-9a61-2b7d0c9e4a13",
            ),
            KeyValue::new("deployment.environment.name", "production"),
            KeyValue::new("host.name", "autobot-main"),
        ])
        .build()
}

/// Server spans as autobot-tracing's server layer records them.
fn batch() -> Vec<SpanData> {
    let scope = InstrumentationScope::builder("autobot-tracing")
        .with_version("0.1.0")
        .build();
    let routes = [
        "/api/chat",
        "/api/research",
        "/api/embeddings",
        "/api/health",
    ];
    (0..BATCH as u64)
        .map(|i| {
            let route = routes[i as usize % routes.len()];
            let start =
                UNIX_EPOCH + Duration::from_nanos(1_763_750_000_000_000_000 + i * 1_000_000);
            SpanData {
                span_context: SpanContext::new(
                    TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_0000_u128 + u128::from(i)),
                    SpanId::from(0x00f0_67aa_0ba9_0000 + i),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::NONE,
                ),
                parent_span_id: SpanId::from(0x5c2e_0000_0000_0000 + i),
                parent_span_is_remote: true,
                span_kind: SpanKind::Server,
                name: Cow::Owned(format!("POST {route}")),
                start_time: start,
                end_time: start + Duration::from_micros(350 + i % 200),
                attributes: vec![
                    KeyValue::new("http.request.method", "POST".to_owned()),
                    KeyValue::new("url.path", route.to_owned()),
                    KeyValue::new("url.scheme", "http".to_owned()),
                    KeyValue::new("http.route", route.to_owned()),
                    KeyValue::new("server.address", "172.16.168.20".to_owned()),
                    KeyValue::new("server.port", 8001_i64),
                    KeyValue::new("network.protocol.version", "1.1"),
                    KeyValue::new("user_agent.original", "autobot-frontend/1.0".to_owned()),
                    KeyValue::new("http.response.status_code", 200_i64),
                ],
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status: Status::Unset,
                instrumentation_scope: scope.clone(),
            }
        })
        .collect()
}
