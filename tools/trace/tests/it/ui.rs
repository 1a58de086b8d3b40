//! The web UI in a real browser: traces sent to `serve` over OTLP/gRPC,
//! then searched, opened and read in headless Chromium (testkit's
//! `Chromium`, WebDriver). Screenshots: `.run/test-artifacts/ui/<test>/`.

use std::collections::BTreeSet;
use std::time::Duration;

use autobot_testkit::chromium::Chromium;
use autobot_testkit::trace_tool::TraceTool;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span};

use crate::support::{raw_span, request, send_grpc};

const WAIT: Duration = Duration::from_secs(20);

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn hex(trace: u128) -> String {
    format!("{trace:032x}")
}

fn timed(mut s: Span, start_ms: u64, end_ms: u64, base: u64) -> Span {
    s.start_time_unix_nano = base + start_ms * 1_000_000;
    s.end_time_unix_nano = base + end_ms * 1_000_000;
    s
}

/// A whole trace A (gateway → api, with attributes) and a trace B whose
/// worker span's parent never arrived.
async fn send_two_traces(serve: &TraceTool) -> (u128, u128) {
    let (a, b) = (
        0xa1a1_0000_0000_0000_0000_0000_0000_0001u128,
        0xb2b2_0000_0000_0000_0000_0000_0000_0002u128,
    );
    let base = crate::support::now_nanos() - 5_000_000_000;
    let mut root = timed(raw_span(a, 1, 0, "GET /a"), 0, 100, base);
    root.attributes = vec![attr("http.route", "/a")];
    let mut api = timed(raw_span(a, 2, 1, "GET /b"), 10, 90, base);
    api.attributes = vec![attr("http.route", "/b"), attr("user.tier", "gold plated")];
    let b_root = timed(raw_span(b, 3, 0, "POST /jobs"), 0, 50, base);
    let orphan = timed(raw_span(b, 4, 99, "process jobs"), 60, 80, base);
    send_grpc(
        serve,
        request(&[
            ("ui-gateway", vec![root, b_root]),
            ("ui-api", vec![api]),
            ("ui-worker", vec![orphan]),
        ]),
    )
    .await
    .unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_page_finds_traces_and_badges_their_completeness() {
    let serve = TraceTool::start();
    let (a, b) = send_two_traces(&serve).await;
    let browser = Chromium::start("search").await.unwrap();

    browser
        .goto(&format!("{}/search", serve.query_url()))
        .await
        .unwrap();
    let whole = browser
        .wait_for(
            &format!(".result[data-trace-id='{}'] .badge-whole", hex(a)),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(browser.text(&whole).await.unwrap(), "whole");
    let orphans = browser
        .wait_for(
            &format!(".result[data-trace-id='{}'] .badge-orphans", hex(b)),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(browser.text(&orphans).await.unwrap(), "1 orphan");
    let title = browser
        .find_all(&format!(
            ".result[data-trace-id='{}'] .result-title",
            hex(a)
        ))
        .await
        .unwrap();
    assert!(
        browser
            .text(&title[0])
            .await
            .unwrap()
            .starts_with("ui-gateway: GET /a"),
        "the root's service and operation"
    );
    let facts = browser
        .find_all(&format!(
            ".result[data-trace-id='{}'] .result-facts",
            hex(b)
        ))
        .await
        .unwrap();
    let facts = browser.text(&facts[0]).await.unwrap();
    assert!(facts.contains("2 spans"), "{facts}");
    assert!(facts.contains("ui-worker (1)"), "{facts}");
    browser.screenshot("all-traces").await.unwrap();

    // The form: a service and a tag (of one and the same span, as in
    // Jaeger), the value quoted, and an expected service trace A lacks.
    let service = browser
        .wait_for("#service option[value='ui-api']", WAIT)
        .await
        .unwrap();
    browser.click(&service).await.unwrap();
    let tags = browser.wait_for("#tags", WAIT).await.unwrap();
    browser
        .type_into(&tags, r#"user.tier="gold plated""#)
        .await
        .unwrap();
    let expect = browser.wait_for("#expect", WAIT).await.unwrap();
    browser
        .type_into(&expect, "ui-gateway,ui-billing")
        .await
        .unwrap();
    let find = browser.wait_for("#find", WAIT).await.unwrap();
    browser.click(&find).await.unwrap();
    let missing = browser
        .wait_for(
            &format!(
                ".result[data-trace-id='{}'] .badge-missing-services",
                hex(a)
            ),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(browser.text(&missing).await.unwrap(), "missing ui-billing");
    let url = browser.current_url().await.unwrap();
    assert!(url.contains("service=ui-api"), "{url}");
    assert!(url.contains("expect=ui-gateway%2Cui-billing"), "{url}");
    let results = browser.find_all(".result").await.unwrap();
    assert_eq!(
        results.len(),
        1,
        "only trace A has user.tier=\"gold plated\""
    );
    let count = browser.wait_for("#result-count", WAIT).await.unwrap();
    assert!(browser.text(&count).await.unwrap().starts_with("1 trace"));
    browser.screenshot("tag-search").await.unwrap();

    // A bad condition is said, not swallowed.
    browser
        .goto(&format!("{}/search?tags=nonsense", serve.query_url()))
        .await
        .unwrap();
    let error = browser.wait_for("#results .error", WAIT).await.unwrap();
    assert!(
        browser
            .text(&error)
            .await
            .unwrap()
            .contains("tags: expected key=value")
    );
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_page_shows_the_waterfall_the_critical_path_and_span_details() {
    let serve = TraceTool::start();
    let trace = 0xc3c3_0000_0000_0000_0000_0000_0000_0003u128;
    let base = crate::support::now_nanos() - 5_000_000_000;
    let root = timed(raw_span(trace, 1, 0, "POST /api/embeddings"), 0, 100, base);
    let mut producer = timed(raw_span(trace, 2, 1, "send autobot:jobs:npu"), 5, 8, base);
    producer.kind = 4;
    producer.attributes = vec![attr("messaging.destination.name", "autobot:jobs:npu")];
    let mut consumer = timed(
        raw_span(trace, 3, 2, "process autobot:jobs:npu"),
        10,
        90,
        base,
    );
    consumer.kind = 5;
    consumer.links = vec![span::Link {
        trace_id: trace.to_be_bytes().to_vec(),
        span_id: 2u64.to_be_bytes().to_vec(),
        ..Default::default()
    }];
    let mut inference = timed(raw_span(trace, 4, 3, "npu.inference"), 20, 80, base);
    inference.kind = 1;
    inference.status = Some(Status {
        code: 2,
        message: "model not loaded".into(),
    });
    inference.events = vec![span::Event {
        time_unix_nano: base + 79_000_000,
        name: "exception".into(),
        attributes: vec![attr("exception.type", "ModelMissing")],
        ..Default::default()
    }];
    inference.attributes = vec![attr("npu.model", "all-MiniLM-L6-v2")];
    send_grpc(
        &serve,
        request(&[
            ("autobot-backend", vec![root, producer]),
            ("autobot-npu-worker", vec![consumer, inference]),
        ]),
    )
    .await
    .unwrap();

    let browser = Chromium::start("trace-page").await.unwrap();
    browser
        .goto(&format!("{}/trace/{}", serve.query_url(), hex(trace)))
        .await
        .unwrap();
    browser
        .wait_for(".span-row[data-span-id]", WAIT)
        .await
        .unwrap();
    let rows = browser.find_all(".span-row[data-span-id]").await.unwrap();
    let mut shown = Vec::new();
    for row in &rows {
        shown.push(
            browser
                .attribute(row, "data-service")
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let names = browser
        .find_all(".span-row[data-span-id] .span-name")
        .await
        .unwrap();
    let mut shown_names = Vec::new();
    for n in &names {
        shown_names.push(browser.text(n).await.unwrap());
    }
    assert_eq!(
        shown_names,
        [
            "POST /api/embeddings",
            "send autobot:jobs:npu",
            "process autobot:jobs:npu",
            "npu.inference"
        ],
        "in waterfall order"
    );
    assert_eq!(
        shown,
        [
            "autobot-backend",
            "autobot-backend",
            "autobot-npu-worker",
            "autobot-npu-worker"
        ]
    );
    assert_eq!(
        browser
            .find_all(".span-row.is-error .error-mark")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        browser.find_all(".span-row .critical").await.unwrap().len() >= 4,
        "the critical path runs through the root, the job and the inference"
    );
    let badge = browser
        .wait_for(".trace-head .badge-whole", WAIT)
        .await
        .unwrap();
    assert_eq!(browser.text(&badge).await.unwrap(), "whole");
    browser.screenshot("waterfall").await.unwrap();

    // The failed span's details: status, attributes, events.
    let failed = browser
        .wait_for(&format!(".span-row[data-span-id='{:016x}']", 4), WAIT)
        .await
        .unwrap();
    browser.click(&failed).await.unwrap();
    let model = browser
        .wait_for("#details .attributes tr[data-key='npu.model'] td", WAIT)
        .await
        .unwrap();
    assert_eq!(browser.text(&model).await.unwrap(), "all-MiniLM-L6-v2");
    let status = browser
        .wait_for("#details .status-error", WAIT)
        .await
        .unwrap();
    assert_eq!(
        browser.text(&status).await.unwrap(),
        "ERROR: model not loaded"
    );
    let event = browser
        .wait_for("#details .events .event-name", WAIT)
        .await
        .unwrap();
    assert_eq!(browser.text(&event).await.unwrap(), "exception");
    let resource = browser
        .wait_for("#details .resource tr[data-key='service.name'] td", WAIT)
        .await
        .unwrap();
    assert_eq!(browser.text(&resource).await.unwrap(), "autobot-npu-worker");
    browser.screenshot("failed-span").await.unwrap();

    // PRODUCER → CONSUMER and back.
    let producer_row = browser
        .wait_for(&format!(".span-row[data-span-id='{:016x}']", 2), WAIT)
        .await
        .unwrap();
    browser.click(&producer_row).await.unwrap();
    let consumed_by = browser
        .wait_for("#details .relation-consumed-by a", WAIT)
        .await
        .unwrap();
    assert!(
        browser
            .text(&consumed_by)
            .await
            .unwrap()
            .contains("autobot-npu-worker: process autobot:jobs:npu")
    );
    browser.screenshot("producer").await.unwrap();
    browser.click(&consumed_by).await.unwrap();
    let produced_by = browser
        .wait_for("#details .relation-produced-by a", WAIT)
        .await
        .unwrap();
    assert!(
        browser
            .text(&produced_by)
            .await
            .unwrap()
            .contains("autobot-backend: send autobot:jobs:npu")
    );
    let selected = browser.wait_for(".span-row.selected", WAIT).await.unwrap();
    assert_eq!(
        browser
            .attribute(&selected, "data-span-id")
            .await
            .unwrap()
            .as_deref(),
        Some(format!("{:016x}", 3).as_str())
    );
    let url = browser.current_url().await.unwrap();
    assert!(url.ends_with(&format!("?span={:016x}", 3)), "{url}");
    browser.screenshot("consumer").await.unwrap();

    // The service graph: one call from the backend to the worker, with its error.
    browser
        .goto(&format!("{}/graph", serve.query_url()))
        .await
        .unwrap();
    let calls = browser
        .wait_for(
            "tr.edge[data-parent='autobot-backend'][data-child='autobot-npu-worker'] td.calls",
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(browser.text(&calls).await.unwrap(), "1");
    assert_eq!(browser.find_all("tr.edge").await.unwrap().len(), 1);
    assert_eq!(
        browser
            .find_all("svg.graph .graph-node")
            .await
            .unwrap()
            .len(),
        2
    );
    browser.screenshot("service-graph").await.unwrap();

    // An unknown trace is said so.
    browser
        .goto(&format!(
            "{}/trace/{}",
            serve.query_url(),
            "0".repeat(31) + "9"
        ))
        .await
        .unwrap();
    let error = browser.wait_for("#main .error", WAIT).await.unwrap();
    assert!(browser.text(&error).await.unwrap().contains("not found"));
    let console: BTreeSet<String> = browser.console().await.unwrap().into_iter().collect();
    assert!(
        !console
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "nothing the page does is blocked by its own CSP: {console:?}"
    );
    browser.close().await.unwrap();
}
