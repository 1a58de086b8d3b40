//! Ingest benchmark of `serve`: spans/s received over OTLP/gRPC in batches of
//! 512 with the server on ONE core (its own current-thread runtime on its own
//! OS thread; the client runs on another thread), and memory per stored span.
//!
//! Run: `cargo bench -p autobot-trace --bench ingest` (release build).
//! `INGEST_BATCHES` (default 600) sets how many batches are sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use autobot_otlp_receiver::SpanBatch;
use autobot_trace::serve::{ServeConfig, Server};
use autobot_trace::store::Store;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

const BATCH: usize = 512;
/// Requests in flight at once (an SDK's batch processor sends one at a time;
/// several services export at once).
const IN_FLIGHT: usize = 4;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// A batch like a service's: 512 spans, 64 traces of 8 spans, HTTP server
/// attributes, a resource with the usual five attributes.
fn batch(seed: u64) -> ExportTraceServiceRequest {
    let base = 1_700_000_000_000_000_000u64 + seed * 1_000_000;
    let spans = (0..BATCH as u64)
        .map(|i| {
            let trace = u128::from(seed) << 64 | u128::from(i / 8 + 1);
            let id = seed << 20 | (i + 1);
            Span {
                trace_id: trace.to_be_bytes().to_vec(),
                span_id: id.to_be_bytes().to_vec(),
                parent_span_id: if i % 8 == 0 {
                    vec![]
                } else {
                    (seed << 20 | (i - i % 8 + 1)).to_be_bytes().to_vec()
                },
                name: "POST /api/chat".into(),
                kind: 2,
                start_time_unix_nano: base + i * 1_000,
                end_time_unix_nano: base + i * 1_000 + 250_000,
                attributes: vec![
                    kv("http.request.method", s("POST")),
                    kv("http.route", s("/api/chat")),
                    kv("url.path", s("/api/chat")),
                    kv("url.scheme", s("http")),
                    kv("server.address", s("172.16.168.20")),
                    kv("http.response.status_code", any_value::Value::IntValue(200)),
                    kv("user_agent.original", s("autobot-frontend/2.0")),
                    kv("network.protocol.version", s("1.1")),
                ],
                status: Some(Status::default()),
                flags: 0x101,
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("autobot-backend")),
                    kv("service.version", s("0.1.0")),
                    kv("service.namespace", s("autobot")),
                    kv("deployment.environment.name", s("development")),
                    kv("host.name", s("main")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "autobot-tracing".into(),
                    version: "0.1.0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Resident set size in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// (user, system) CPU time of one thread of this process (Linux, 100 Hz ticks).
fn thread_cpu(tid: &str) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // Fields after the command name in parentheses: utime is 14th, stime 15th overall.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = |i: usize| Duration::from_millis(fields.get(i).copied().unwrap_or(0) * 10);
    (ticks(11), ticks(12))
}

fn main() {
    let batches: u64 = std::env::var("INGEST_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);

    // Memory first, while the heap is fresh: a store filled directly with
    // what the receiver makes of each request's bytes, measured by the RSS
    // it adds (freed memory would hide it later).
    let memory_spans = 200_000u64;
    let fresh = Arc::new(Store::new(usize::MAX));
    let before = rss();
    for seed in 0..memory_spans / BATCH as u64 {
        let bytes = batch(1_000_000 + seed).encode_to_vec();
        fresh.insert_batch(SpanBatch::from_protobuf(bytes).expect("a valid batch"));
    }
    let added = rss().saturating_sub(before);
    let filled = fresh.stats().spans as u64;

    drop(fresh);

    // The server: one OS thread, one current-thread runtime.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_thread = std::thread::spawn(move || {
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let config = ServeConfig {
                otlp_grpc: "127.0.0.1:0".parse().unwrap(),
                otlp_http: "127.0.0.1:0".parse().unwrap(),
                query: "127.0.0.1:0".parse().unwrap(),
                max_spans: usize::MAX,
                otlp_tls: None,
            };
            let server = Server::start(&config).await.unwrap();
            ready_tx
                .send((server.otlp_grpc, server.store.clone(), tid))
                .unwrap();
            let _ = stop_rx.await;
            server.shutdown().await;
        });
    });
    let (grpc, store, server_tid) = ready_rx.recv().unwrap();

    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let requests: Vec<ExportTraceServiceRequest> = (1..=batches).map(batch).collect();
    let bytes_per_batch = requests[0].encoded_len();
    let (elapsed, server_cpu) = client_runtime.block_on(async move {
        let client = TraceServiceClient::connect(format!("http://{grpc}"))
            .await
            .unwrap()
            .max_encoding_message_size(64 * 1024 * 1024);
        // Warm up: connection, allocator, hash maps.
        client.clone().export(batch(batches + 1)).await.unwrap();
        let cpu_before = thread_cpu(&server_tid);
        let started = Instant::now();
        let mut queue = requests.into_iter();
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.len() < IN_FLIGHT {
                let Some(request) = queue.next() else { break };
                let mut c = client.clone();
                in_flight.spawn(async move { c.export(request).await.map(|_| ()) });
            }
            match in_flight.join_next().await {
                Some(result) => result.unwrap().unwrap(),
                None => break,
            }
        }
        let cpu_after = thread_cpu(&server_tid);
        (
            started.elapsed(),
            (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1),
        )
    });
    let spans = batches * BATCH as u64;
    let stored = store.stats().spans as u64;
    assert_eq!(stored, spans + BATCH as u64, "every span stored");
    // The client's connection lives on its runtime: close it before the server stops.
    drop(client_runtime);
    let _ = stop_tx.send(());
    server_thread.join().unwrap();
    drop(store);

    println!(
        "trace tool ingest over OTLP/gRPC (server on one core, {IN_FLIGHT} requests in flight)"
    );
    println!(
        "  {spans} spans in {batches} batches of {BATCH} ({:.1} KiB protobuf each)",
        bytes_per_batch as f64 / 1024.0
    );
    println!(
        "  wall {:.3}s -> {:.0} spans/s",
        elapsed.as_secs_f64(),
        spans as f64 / elapsed.as_secs_f64()
    );
    let (server_user, server_system) = server_cpu;
    let server_cpu = server_user + server_system;
    if server_cpu > Duration::ZERO {
        println!(
            "  server thread CPU {:.2}s (user {:.2}s, system {:.2}s) -> {:.0} spans per CPU-second",
            server_cpu.as_secs_f64(),
            server_user.as_secs_f64(),
            server_system.as_secs_f64(),
            spans as f64 / server_cpu.as_secs_f64()
        );
    }
    println!(
        "  memory: {filled} stored spans (8 attributes each) added {:.1} MiB RSS -> {:.0} bytes per span",
        added as f64 / (1024.0 * 1024.0),
        added as f64 / filled as f64
    );
}
