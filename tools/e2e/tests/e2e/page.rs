//! AutoBot's page in headless Chromium: the research question asked in the
//! browser is ONE trace whose root is the browser's click, through the
//! backend, the browser service, Redis, the npu-worker and the ai-stack,
//! every parent present; then the trace UI finds that trace by the
//! backend's operation, and its waterfall shows every span.
//! Screenshots: `.run/test-artifacts/ui/autobot-page/`.

use std::collections::BTreeMap;
use std::time::Duration;

use autobot_e2e::system::{Options, RESEARCH_SERVICES, System};
use autobot_testkit::chromium::Chromium;
use autobot_testkit::process::Launch;
use autobot_testkit::traces::{Kind, spans};

const WAIT: Duration = Duration::from_secs(30);
/// The page's service.name (services/backend/src/routes/page.rs).
const FRONTEND: &str = "autobot-frontend";
const QUESTION: &str = "Which header carries the trace context between services?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_asked_in_the_browser_is_one_trace_from_the_click_to_the_llm() {
    let system = System::start(Options::default()).await;
    let browser = Chromium::start("autobot-page").await.unwrap();

    // The user asks.
    browser.goto(&system.backend.url("/")).await.unwrap();
    browser
        .wait_for("body[data-state='ready']", WAIT)
        .await
        .unwrap();
    let tracing = browser.wait_for("#tracing", WAIT).await.unwrap();
    assert!(
        browser
            .text(&tracing)
            .await
            .unwrap()
            .contains("This page is traced"),
        "the backend named the OTLP endpoint to the page"
    );
    // The operator's key, pasted into the page as a user does (kept in the tab).
    let key = browser.wait_for("#api-key", WAIT).await.unwrap();
    browser.type_into(&key, &system.operator.key).await.unwrap();
    let url = browser.wait_for("#url", WAIT).await.unwrap();
    browser
        .type_into(&url, &system.article_url())
        .await
        .unwrap();
    let question = browser.wait_for("#question", WAIT).await.unwrap();
    browser.type_into(&question, QUESTION).await.unwrap();
    browser.screenshot("question").await.unwrap();
    let ask = browser.wait_for("#ask", WAIT).await.unwrap();
    browser.click(&ask).await.unwrap();

    // The answer with its numbered sources.
    browser
        .wait_for("body[data-state='answered']", Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", system.logs()));
    if let Some(error) = browser.find_all("#error").await.unwrap().first() {
        panic!(
            "the page shows an error: {}\n{}",
            browser.text(error).await.unwrap(),
            system.logs()
        );
    }
    let answer = browser.wait_for("#answer-text", WAIT).await.unwrap();
    assert!(
        browser
            .text(&answer)
            .await
            .unwrap()
            .contains("traceparent header")
    );
    let sources = browser.find_all("#sources li").await.unwrap();
    assert_eq!(sources.len(), 3);
    assert!(
        browser
            .text(&sources[0])
            .await
            .unwrap()
            .contains("traceparent header"),
        "source [1] is the passage that answers"
    );
    let shown_trace = browser.wait_for("#trace-id", WAIT).await.unwrap();
    let trace_id = browser.text(&shown_trace).await.unwrap();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    browser.screenshot("answer").await.unwrap();

    // ONE trace, whole, rooted in the browser: `autobot-trace check` says so.
    let mut expected = vec![FRONTEND];
    expected.extend(RESEARCH_SERVICES);
    let check = Launch::workspace_bin("autobot-trace")
        .args([
            "check",
            &trace_id,
            "--jaeger",
            &system.tool.query_url(),
            "--services",
            &expected.join(","),
            "--wait",
            "60s",
        ])
        .within(Duration::from_secs(90))
        .run();
    assert_eq!(
        check.code(),
        Some(0),
        "autobot-trace check: {check:?}\n{}",
        system.logs()
    );
    let trace = system
        .tool
        .trace(&trace_id)
        .await
        .expect("the trace the check found");
    let all = spans(&trace);
    let roots: Vec<_> = all.iter().filter(|s| s.parent.is_none()).collect();
    assert_eq!(roots.len(), 1, "{roots:?}");
    assert_eq!(
        (roots[0].service.as_str(), roots[0].name.as_str()),
        (FRONTEND, "research.submit"),
        "the click is the root"
    );
    let by_id = |id: &str| all.iter().find(|s| s.span_id == id).unwrap();
    let backend_root = all
        .iter()
        .find(|s| s.service == "autobot-backend" && s.name == "POST /api/research")
        .expect("the backend's server span");
    let fetch = by_id(backend_root.parent.as_deref().unwrap());
    assert_eq!(
        (fetch.service.as_str(), fetch.kind),
        (FRONTEND, Kind::Client),
        "the backend continues the browser's fetch span"
    );
    assert_eq!(fetch.parent.as_deref(), Some(roots[0].span_id.as_str()));
    assert!(
        !roots[0].attributes.contains_key("research.question"),
        "the question's text is not recorded"
    );

    // The trace UI: search the backend's research trace with the form, open it.
    browser
        .goto(&format!("{}/search", system.tool.query_url()))
        .await
        .unwrap();
    let service = browser
        .wait_for("#service option[value='autobot-backend']", WAIT)
        .await
        .unwrap();
    browser.click(&service).await.unwrap();
    let operation = browser
        .wait_for("#operation option[value='POST /api/research']", WAIT)
        .await
        .unwrap();
    browser.click(&operation).await.unwrap();
    let find = browser.wait_for("#find", WAIT).await.unwrap();
    browser.click(&find).await.unwrap();
    let result = browser
        .wait_for(
            &format!(".result[data-trace-id='{trace_id}'] .result-title"),
            WAIT,
        )
        .await
        .unwrap();
    let badge = browser
        .wait_for(&format!(".result[data-trace-id='{trace_id}'] .badge"), WAIT)
        .await
        .unwrap();
    assert_eq!(browser.text(&badge).await.unwrap(), "whole");
    browser.screenshot("ui-search").await.unwrap();
    browser.click(&result).await.unwrap();

    // The waterfall holds every span: each service and name, as often as in the trace.
    let rows_selector = ".span-row[data-span-id]";
    browser.wait_for(rows_selector, WAIT).await.unwrap();
    let rows = browser.find_all(rows_selector).await.unwrap();
    let names = browser
        .find_all(&format!("{rows_selector} .span-name"))
        .await
        .unwrap();
    assert_eq!(rows.len(), all.len());
    let mut shown: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (row, name) in rows.iter().zip(&names) {
        let service = browser
            .attribute(row, "data-service")
            .await
            .unwrap()
            .unwrap();
        *shown
            .entry((service, browser.text(name).await.unwrap()))
            .or_default() += 1;
    }
    let mut stored: BTreeMap<(String, String), usize> = BTreeMap::new();
    for s in &all {
        *stored
            .entry((s.service.clone(), s.name.clone()))
            .or_default() += 1;
    }
    assert_eq!(shown, stored, "every service and span name of the trace");
    browser.screenshot("ui-waterfall").await.unwrap();

    // Selecting the backend's span shows its attributes.
    let row = browser
        .wait_for(
            &format!(".span-row[data-span-id='{}']", backend_root.span_id),
            WAIT,
        )
        .await
        .unwrap();
    browser.click(&row).await.unwrap();
    let route = browser
        .wait_for("#details .attributes tr[data-key='http.route'] td", WAIT)
        .await
        .unwrap();
    assert_eq!(browser.text(&route).await.unwrap(), "/api/research");
    let method = browser
        .wait_for(
            "#details .attributes tr[data-key='http.request.method'] td",
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(browser.text(&method).await.unwrap(), "POST");
    browser.screenshot("ui-span-details").await.unwrap();

    // The service graph: the browser calls the backend, the backend its peers.
    browser
        .goto(&format!("{}/graph", system.tool.query_url()))
        .await
        .unwrap();
    for (parent, child) in [
        (FRONTEND, "autobot-backend"),
        ("autobot-backend", "autobot-browser"),
        ("autobot-backend", "autobot-npu-worker"),
        ("autobot-backend", "autobot-ai-stack"),
    ] {
        browser
            .wait_for(
                &format!("tr.edge[data-parent='{parent}'][data-child='{child}']"),
                WAIT,
            )
            .await
            .unwrap();
    }
    browser.screenshot("ui-service-graph").await.unwrap();
    browser.close().await.unwrap();
}
