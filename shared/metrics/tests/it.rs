//! The exposition as a scraper reads it, and the hot path's promise: after
//! a label set's first use, counting allocates nothing.

// The counting allocator below needs `unsafe impl GlobalAlloc`; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use autobot_metrics::spans::{SpanKind, operation};
use autobot_metrics::{Format, TraceId, http};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The on/off switch is process-wide: tests that count take turns (plain
/// `cargo test` runs them on threads of one process).
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn counting_a_known_label_set_allocates_nothing() {
    let _turn = turn();
    let server = http::server();
    let client = http::client();
    let op = operation("alloc.test", SpanKind::Internal);
    // First use resolves the label sets (allocates once).
    server
        .route("GET", Some("/a/{id}"), true)
        .record(Some(200), Duration::from_millis(3), None);
    client
        .peer("POST", "10.0.0.1", 8080)
        .record(Some(200), "", Duration::from_millis(3), None);
    let requests = allocations_in(|| {
        for i in 0..1000u64 {
            let exemplar = (i % 10 == 0).then_some(TraceId(u128::from(i) + 1));
            server.route("GET", Some("/a/{id}"), true).record(
                Some(200),
                Duration::from_micros(i * 37),
                exemplar,
            );
            client.peer("POST", "10.0.0.1", 8080).record(
                Some(200),
                "",
                Duration::from_micros(i),
                exemplar,
            );
            op.record(Duration::from_micros(i), false, exemplar);
        }
    });
    assert_eq!(requests, 0, "allocations in 1000 counted requests");
}

#[test]
fn the_text_format_has_the_semconv_and_spanmetrics_series() {
    let _turn = turn();
    autobot_metrics::set_service("autobot-test", "1.2.3", "instance-1");
    let route = http::server().route("POST", Some("/api/chat"), true);
    route.record(Some(200), Duration::from_millis(3), None);
    route.record(Some(200), Duration::from_millis(30), None);
    route.record(Some(502), Duration::from_millis(7), None);
    route.record(None, Duration::from_millis(1), None);
    http::server().route("GET", Some("/health"), false).record(
        Some(200),
        Duration::from_micros(50),
        None,
    );
    operation("llm.inference", SpanKind::Client).record(Duration::from_millis(120), true, None);
    let text = autobot_metrics::render(Format::Text);

    for line in [
        "# TYPE http_server_request_duration_seconds histogram",
        r#"http_server_request_duration_seconds_bucket{http_request_method="POST",http_route="/api/chat",http_response_status_code="200",le="0.005"} 1"#,
        r#"http_server_request_duration_seconds_bucket{http_request_method="POST",http_route="/api/chat",http_response_status_code="200",le="0.05"} 2"#,
        r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/api/chat",http_response_status_code="502",error_type="502"} 1"#,
        r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/api/chat",error_type="_OTHER"} 1"#,
        r#"http_server_request_duration_seconds_sum{http_request_method="POST",http_route="/api/chat",http_response_status_code="200"} 0.033"#,
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/health",http_response_status_code="200"} 1"#,
        "# TYPE traces_span_metrics_calls_total counter",
        r#"traces_span_metrics_calls_total{service_name="autobot-test",span_name="POST /api/chat",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 2"#,
        r#"traces_span_metrics_calls_total{service_name="autobot-test",span_name="POST /api/chat",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"} 2"#,
        r#"traces_span_metrics_calls_total{service_name="autobot-test",span_name="llm.inference",span_kind="SPAN_KIND_CLIENT",status_code="STATUS_CODE_ERROR"} 1"#,
        "# TYPE traces_span_metrics_duration_milliseconds histogram",
        r#"traces_span_metrics_duration_milliseconds_bucket{service_name="autobot-test",span_name="POST /api/chat",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",le="4.0"} 1"#,
        r#"traces_span_metrics_duration_milliseconds_bucket{service_name="autobot-test",span_name="POST /api/chat",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",le="50.0"} 2"#,
        r#"traces_span_metrics_duration_milliseconds_sum{service_name="autobot-test",span_name="llm.inference",span_kind="SPAN_KIND_CLIENT",status_code="STATUS_CODE_ERROR"} 120"#,
        r#"target_info{service_name="autobot-test",service_namespace="autobot",service_version="1.2.3",service_instance_id="instance-1"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    // /health without a trace has no SERVER span: not in the spanmetrics.
    assert!(!text.contains(r#"span_name="GET /health""#), "{text}");
    assert!(!text.contains("# EOF"));
    assert!(!text.contains(" # {"), "no exemplars in the text format");
}

#[test]
fn openmetrics_carries_exemplars_on_the_buckets_and_ends_with_eof() {
    let _turn = turn();
    autobot_metrics::set_service("autobot-test", "1", "i");
    // As the runner does at start (shared/lifecycle/src/metrics.rs).
    autobot_metrics::spans::register_families();
    let route = http::server().route("GET", Some("/x"), true);
    let trace = TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736);
    route.record(Some(200), Duration::from_millis(60), Some(trace));
    let om = autobot_metrics::render(Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains("# TYPE traces_span_metrics_calls counter"),
        "{om}"
    );
    assert!(om.contains("# TYPE target_info info"), "{om}");
    // 60 ms: the semconv bucket le=0.075 (seconds) and the spanmetrics le=100 (ms).
    let semconv = om
        .lines()
        .find(|l| {
            l.starts_with(r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/x",http_response_status_code="200",le="0.075"}"#)
        })
        .expect("bucket");
    assert!(
        semconv.ends_with(&format!(
            "1 # {{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"}} 0.06 {}",
            semconv.rsplit(' ').next().unwrap()
        )),
        "{semconv}"
    );
    let spanmetrics = om
        .lines()
        .find(|l| {
            l.starts_with("traces_span_metrics_duration_milliseconds_bucket")
                && l.contains(r#"span_name="GET /x""#)
                && l.contains(r#"le="100.0""#)
        })
        .expect("spanmetrics bucket");
    assert!(
        spanmetrics.contains(r#" # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 60 "#),
        "{spanmetrics}"
    );
    // The bucket below holds no exemplar.
    let below = om
        .lines()
        .find(|l| {
            l.starts_with("traces_span_metrics_duration_milliseconds_bucket")
                && l.contains(r#"span_name="GET /x""#)
                && l.contains(r#"le="50.0""#)
        })
        .unwrap();
    assert!(!below.contains('#'), "{below}");
}

#[test]
fn families_by_name_are_one_and_label_sets_past_capacity_overflow() {
    let _turn = turn();
    let deliveries = autobot_metrics::counter("test_deliveries", "help", &["stream", "group"]);
    let again = autobot_metrics::counter("test_deliveries", "other help", &["stream", "group"]);
    assert!(std::ptr::eq(deliveries, again));
    deliveries.with(&["s", "g"]).inc();
    deliveries.with(&["s", "g"]).add(2);
    let hosts = autobot_metrics::counter("test_hosts", "help", &["host"]);
    for i in 0..600 {
        hosts.with(&[&format!("h{i}")]).inc();
    }
    let text = autobot_metrics::render(Format::Text);
    assert!(
        text.contains("test_deliveries_total{stream=\"s\",group=\"g\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("test_hosts_total{otel_metric_overflow=\"true\"} 88\n"),
        "{text}"
    );
}

#[test]
fn switched_off_nothing_is_counted() {
    let _turn = turn();
    let route = http::server().route("GET", Some("/off"), true);
    autobot_metrics::set_enabled(false);
    route.record(Some(200), Duration::from_millis(1), None);
    autobot_metrics::set_enabled(true);
    let text = autobot_metrics::render(Format::Text);
    assert!(
        !text.contains("http_route=\"/off\",http_response"),
        "{text}"
    );
}
