//! The web UI's answers over a full store: 100 000 spans (5 000 research
//! traces of 20 spans over five services, stored as `serve` stores what it
//! receives), then each UI route timed, in process and over HTTP through
//! `serve`'s own router. The target: a search answers in under 200 ms.
//!
//! Run: `cargo bench -p autobot-trace --bench ui_search` (release build).
//! `UI_BENCH_SPANS` (default 100000) sets the store's size, `UI_BENCH_RUNS`
//! (default 30) how often each request is timed.

use std::time::{Duration, Instant};

use autobot_otlp_receiver::SpanBatch;
use autobot_trace::serve::{ServeConfig, Server};
use autobot_trace::trace_id::TraceId;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

const SPANS_PER_TRACE: u64 = 20;
/// Traces per export request (a batch processor's batch holds many traces).
const TRACES_PER_BATCH: u64 = 25;

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

/// One research trace's spans: (service, name, kind, parent index).
const SHAPE: [(&str, &str, i32, Option<usize>); SPANS_PER_TRACE as usize] = [
    ("autobot-backend", "POST /api/research", 2, Some(18)),
    ("autobot-backend", "POST", 3, Some(0)),
    ("autobot-browser", "POST /navigate", 2, Some(1)),
    ("autobot-browser", "browser.navigate", 1, Some(2)),
    ("autobot-browser", "GET", 3, Some(3)),
    ("autobot-backend", "send autobot:jobs:npu", 4, Some(0)),
    ("autobot-backend", "redis.XADD", 3, Some(5)),
    ("autobot-npu-worker", "process autobot:jobs:npu", 5, Some(5)),
    ("autobot-npu-worker", "npu.inference", 1, Some(7)),
    ("autobot-npu-worker", "redis.SET", 3, Some(7)),
    ("autobot-npu-worker", "redis.XACK", 3, Some(7)),
    ("autobot-backend", "redis.GET", 3, Some(0)),
    ("autobot-backend", "research.rank", 1, Some(0)),
    ("autobot-backend", "POST", 3, Some(0)),
    ("autobot-ai-stack", "POST /v1/chat", 2, Some(13)),
    ("autobot-ai-stack", "llm.inference", 1, Some(14)),
    ("autobot-ai-stack", "POST", 3, Some(15)),
    ("autobot-frontend", "research.submit", 1, None),
    ("autobot-frontend", "HTTP POST", 3, Some(17)),
    ("autobot-backend", "redis.GET", 3, Some(0)),
];

fn span_id(trace: u64, index: usize) -> Vec<u8> {
    (trace << 8 | (index as u64 + 1)).to_be_bytes().to_vec()
}

/// One export request of [`TRACES_PER_BATCH`] traces; every 50th trace failed (a 500).
fn batch(first_trace: u64, base: u64) -> ExportTraceServiceRequest {
    let mut groups: Vec<(&str, Vec<Span>)> = Vec::new();
    for trace in first_trace..first_trace + TRACES_PER_BATCH {
        let start = base + trace * 2_000_000;
        let failed = trace % 50 == 0;
        for (i, (service, name, kind, parent)) in SHAPE.iter().enumerate() {
            let status = if failed && i == 0 { 500 } else { 200 };
            let span = Span {
                trace_id: (u128::from(trace) + 1).to_be_bytes().to_vec(),
                span_id: span_id(trace, i),
                parent_span_id: parent.map(|p| span_id(trace, p)).unwrap_or_default(),
                name: (*name).into(),
                kind: *kind,
                start_time_unix_nano: start + i as u64 * 10_000,
                end_time_unix_nano: start + 1_500_000 - i as u64 * 10_000,
                attributes: vec![
                    kv("http.request.method", s("POST")),
                    kv("http.route", s("/api/research")),
                    kv("server.address", s("172.16.168.20")),
                    kv(
                        "http.response.status_code",
                        any_value::Value::IntValue(status),
                    ),
                    kv("network.protocol.version", s("1.1")),
                ],
                status: Some(Status {
                    code: if status == 500 { 2 } else { 0 },
                    message: String::new(),
                }),
                ..Default::default()
            };
            match groups.iter_mut().find(|(g, _)| g == service) {
                Some((_, spans)) => spans.push(span),
                None => groups.push((service, vec![span])),
            }
        }
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s(service)),
                        kv("service.namespace", s("autobot")),
                        kv("host.name", s("main")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "autobot-tracing".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

struct Figures {
    median: Duration,
    max: Duration,
    /// CPU time of the whole process per run (user + system): on a shared,
    /// loaded machine the wall time also holds the time spent waiting for a core.
    cpu_per_run: Duration,
    answer_bytes: usize,
}

fn report(what: &str, f: &Figures) {
    println!(
        "{what:<62} median {:>7.1} ms  max {:>7.1} ms  cpu {:>7.1} ms/run  answer {:>6} B  {}",
        f.median.as_secs_f64() * 1e3,
        f.max.as_secs_f64() * 1e3,
        f.cpu_per_run.as_secs_f64() * 1e3,
        f.answer_bytes,
        if f.median < Duration::from_millis(200) {
            "under 200 ms"
        } else {
            "OVER 200 ms"
        }
    );
}

/// User + system CPU time of this process so far (Linux, 100 Hz ticks).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: utime is the 14th field, stime the 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn measure(runs: usize, mut once: impl FnMut() -> usize) -> Figures {
    let mut times = Vec::with_capacity(runs);
    let mut answer_bytes = 0;
    let cpu_before = process_cpu();
    for _ in 0..runs {
        let start = Instant::now();
        answer_bytes = once();
        times.push(start.elapsed());
    }
    let cpu = process_cpu().saturating_sub(cpu_before);
    times.sort();
    Figures {
        median: times[times.len() / 2],
        max: *times.last().unwrap(),
        cpu_per_run: cpu / runs as u32,
        answer_bytes,
    }
}

fn main() {
    let spans: u64 = std::env::var("UI_BENCH_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runs: usize = std::env::var("UI_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let traces = spans / SPANS_PER_TRACE;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // The traces end a minute ago, one every 2 ms before that.
    let base = now - 60_000_000_000 - traces * 2_000_000;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(async {
        Server::start(&ServeConfig {
            otlp_grpc: "127.0.0.1:0".parse().unwrap(),
            otlp_http: "127.0.0.1:0".parse().unwrap(),
            query: "127.0.0.1:0".parse().unwrap(),
            max_spans: spans as usize + 1,
            ..ServeConfig::default()
        })
        .await
        .unwrap()
    });
    let store = server.store.clone();
    let fill = Instant::now();
    for first in (0..traces).step_by(TRACES_PER_BATCH as usize) {
        let bytes = batch(first, base).encode_to_vec();
        store.insert_batch(SpanBatch::from_protobuf(bytes).expect("a valid batch"));
    }
    let stats = store.stats();
    println!(
        "store: {} spans in {} traces, filled in {:.2} s; each figure: {runs} runs; load average {}",
        stats.spans,
        stats.traces,
        fill.elapsed().as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(stats.spans as u64, traces * SPANS_PER_TRACE);

    let range = [
        ("start".to_owned(), (base / 1_000 - 1).to_string()),
        ("end".to_owned(), (now / 1_000).to_string()),
    ];
    let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain(range.iter().cloned())
            .collect()
    };
    let searches: [(&str, Vec<(String, String)>); 5] = [
        (
            "service + operation, 20 results",
            params(&[
                ("service", "autobot-backend"),
                ("operation", "POST /api/research"),
            ]),
        ),
        ("any service, 20 results", params(&[])),
        (
            "service + tag (1 trace in 50 matches), 20 results",
            params(&[
                ("service", "autobot-backend"),
                ("tags", "http.response.status_code=500"),
            ]),
        ),
        (
            "any service + tag matching nothing (every span read)",
            params(&[("tags", "http.route=/nowhere")]),
        ),
        (
            "service + operation, 1500 results",
            params(&[
                ("service", "autobot-backend"),
                ("operation", "POST /api/research"),
                ("limit", "1500"),
            ]),
        ),
    ];

    println!("\nin process (autobot_trace::ui, what the HTTP handlers run):");
    for (what, p) in &searches {
        let f = measure(runs, || {
            autobot_trace::ui::search_answer(&store, p, now)
                .unwrap()
                .to_string()
                .len()
        });
        report(&format!("search: {what}"), &f);
    }

    println!("\nover HTTP (GET on serve's query port, JSON read whole):");
    let client = reqwest::Client::new();
    let base_url = format!("http://{}", server.query);
    let get = |path: String| {
        let client = client.clone();
        runtime.block_on(async move {
            let response = client.get(&path).send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response.bytes().await.unwrap().len()
        })
    };
    for (what, p) in &searches {
        let query = serde_urlencode(p);
        let f = measure(runs, || {
            get(format!("{base_url}/api/autobot/search?{query}"))
        });
        report(&format!("GET /api/autobot/search: {what}"), &f);
    }
    let one = TraceId(u128::from(traces / 2) + 1).full();
    let f = measure(runs, || get(format!("{base_url}/api/autobot/traces/{one}")));
    report(
        "GET /api/autobot/traces/{id} (20 spans, links looked up)",
        &f,
    );
    let graph_query = serde_urlencode(&params(&[]));
    let f = measure(runs.min(10), || {
        get(format!(
            "{base_url}/api/autobot/service-graph?{graph_query}"
        ))
    });
    report(
        &format!("GET /api/autobot/service-graph ({} traces)", traces),
        &f,
    );
    let f = measure(runs, || get(format!("{base_url}/search")));
    report("GET /search (the page itself)", &f);
    runtime.block_on(server.shutdown());
}

/// Query parameters, percent-encoded.
fn serde_urlencode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
