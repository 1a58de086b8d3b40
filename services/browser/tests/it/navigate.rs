//! `POST /navigate` against the local site: extraction, the trace carried to
//! the site and into the trace tool, and every limit answered with its error.

use autobot_testkit::trace_tool::TraceTool;
use autobot_testkit::traces::{CALLER_SPAN, CALLER_TRACE, Kind, Status, one};
use autobot_wire::browse::{NavigateResponse, StatusResponse};
use autobot_wire::error::ErrorBody;
use serde_json::{Value, json};

use autobot_testkit::process::{Launch, Process};

use crate::support::{HUGE_PAGE_BYTES, Site, client, peak_rss, start_browser};

async fn navigate(browser: &Process, body: Value) -> (u16, Value) {
    let r = client()
        .post(browser.url("/navigate"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn expect_error(browser: &Process, body: Value, status: u16, says: &str) -> ErrorBody {
    let (got, answer) = navigate(browser, body.clone()).await;
    assert_eq!(got, status, "{body}: {answer}");
    let error: ErrorBody = serde_json::from_value(answer).unwrap();
    assert!(
        error.error.contains(says),
        "{body}: {:?} should say {says:?}",
        error.error
    );
    assert!(error.trace_id.is_some(), "errors name their trace");
    error
}

async fn assert_healthy(browser: &Process) {
    let r = client().get(browser.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_read_and_the_callers_trace_reaches_the_site_and_the_trace_tool() {
    let tool = TraceTool::start();
    let site = Site::start().await;
    let browser = start_browser(&tool.otlp_grpc_endpoint(), &[]);

    // Three redirects first, so the trace has four CLIENT spans under browser.navigate.
    let r = client()
        .post(browser.url("/navigate"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"url": site.url("/hop/2?api_key=s3cr3t")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: NavigateResponse = r.json().await.unwrap();

    assert_eq!(page.url, site.url("/docs/article.html"));
    assert_eq!(page.status, 200);
    assert_eq!(page.title.as_deref(), Some("The Rust Tracing Guide"));
    assert_eq!(
        page.description.as_deref(),
        Some("How spans cross services.")
    );
    assert!(!page.truncated);
    assert!(
        page.text.contains("A trace is a tree of spans."),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("traceparent\ntracestate"),
        "{}",
        page.text
    );
    for hidden in [
        "script text",
        "hidden paragraph",
        "display none",
        "noscript",
        "color: black",
    ] {
        assert!(
            !page.text.contains(hidden),
            "{hidden:?} leaked: {}",
            page.text
        );
    }
    assert_eq!(
        page.links,
        [
            site.url("/"),
            site.url("/docs/intro.html"),
            "https://example.org/spec".to_owned(),
        ],
        "absolute (against <base href>), deduplicated, http(s) only, hidden ones dropped"
    );
    assert!(!page.passages.is_empty());
    assert!(
        page.passages[0].starts_with("Home Intro Intro again\nDistributed tracing\nA trace is"),
        "tiny blocks merge with what follows: {:#?}",
        page.passages
    );
    assert_eq!(
        page.passages
            .join("\n")
            .split_whitespace()
            .collect::<Vec<_>>(),
        page.text.split_whitespace().collect::<Vec<_>>(),
        "passages cover the text"
    );

    // The site saw the caller's trace on every hop.
    let seen = site.seen();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        ["/hop/2", "/hop/1", "/hop/0", "/docs/article.html"]
    );
    for s in &seen {
        let tp = s
            .traceparent
            .as_deref()
            .expect("traceparent sent to the site");
        assert_eq!(tp.split('-').nth(1), Some(CALLER_TRACE), "{tp}");
    }

    // The trace tool has the whole story, with correct parents.
    let spans = tool
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().any(|s| s.name == "POST /navigate")
                && s.iter().any(|s| s.name == "browser.extract")
                && s.iter().filter(|s| s.name == "GET").count() == 4
        })
        .await;
    let server = one(&spans, "", "POST /navigate");
    let nav = one(&spans, "", "browser.navigate");
    let extract = one(&spans, "", "browser.extract");
    assert_eq!(server.parent.as_deref(), Some(CALLER_SPAN));
    assert_eq!(nav.parent.as_ref(), Some(&server.span_id));
    assert_eq!(extract.parent.as_ref(), Some(&nav.span_id));
    let clients: Vec<_> = spans.iter().filter(|s| s.name == "GET").collect();
    for c in &clients {
        assert_eq!(c.parent.as_ref(), Some(&nav.span_id));
        assert_eq!(c.kind, Kind::Client);
    }
    // Each hop's server saw the CLIENT span of that hop as its parent.
    let client_ids: Vec<&str> = clients.iter().map(|c| c.span_id.as_str()).collect();
    for s in &seen {
        let parent = s.traceparent.as_deref().unwrap().split('-').nth(2).unwrap();
        assert!(
            client_ids.contains(&parent),
            "{parent} not in {client_ids:?}"
        );
    }
    assert_eq!(nav.attr("browser.redirects"), 3);
    assert_eq!(nav.attr("browser.links_count"), 3);
    assert_eq!(nav.attr("browser.truncated"), false);
    assert_eq!(nav.attr("http.response.status_code"), 200);
    assert_eq!(nav.attr("browser.bytes"), super::support::ARTICLE.len());
    assert_eq!(
        nav.attr("url.full"),
        site.url("/hop/2?api_key=REDACTED").as_str(),
        "the secret never reaches a span"
    );
    assert_eq!(extract.attr("browser.passages_count"), page.passages.len());
    assert_eq!(
        extract.attr("browser.text_length"),
        page.text.chars().count()
    );
    let trace_json = tool.trace_json(CALLER_TRACE).await.expect("the trace");
    assert!(!trace_json.to_string().contains("s3cr3t"));

    // A failure is on the span too: kind and status.
    let slow_trace = "0af7651916cd43dd8448eb211c80319c";
    let r = client()
        .post(browser.url("/navigate"))
        .header(
            "traceparent",
            format!("00-{slow_trace}-b7ad6b7169203331-01"),
        )
        .json(&json!({"url": site.url("/slow"), "timeout_ms": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let spans = tool
        .wait_for_spans(slow_trace, |s| s.iter().any(|s| s.name == "POST /navigate"))
        .await;
    let nav = one(&spans, "", "browser.navigate");
    assert_eq!(nav.attr("error.type"), "timeout");
    assert_eq!(nav.status, Status::Error);
    assert_eq!(
        one(&spans, "", "POST /navigate").attr("http.response.status_code"),
        504
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_propagation_off_the_site_sees_no_trace_headers() {
    let site = Site::start().await;
    let browser = start_browser(
        "http://127.0.0.1:9",
        &[("AUTOBOT_BROWSER_PROPAGATE", "false")],
    );
    let r = client()
        .post(browser.url("/navigate"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"url": site.url("/docs/article.html")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = site.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].traceparent, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_is_an_error_that_says_which_and_the_service_stays_healthy() {
    let site = Site::start().await;
    let browser = start_browser("http://127.0.0.1:9", &[]);

    expect_error(
        &browser,
        json!({"url": site.url("/loop")}),
        502,
        "too many redirects",
    )
    .await;
    // Five redirects are allowed, the sixth is not.
    let (status, _) = navigate(&browser, json!({"url": site.url("/hop/4")})).await;
    assert_eq!(status, 200);
    expect_error(
        &browser,
        json!({"url": site.url("/hop/5")}),
        502,
        "the limit is 5",
    )
    .await;

    expect_error(
        &browser,
        json!({"url": site.url("/slow"), "timeout_ms": 300}),
        504,
        "timed out after 300 ms",
    )
    .await;
    expect_error(
        &browser,
        json!({"url": site.url("/binary")}),
        502,
        "image/png",
    )
    .await;
    expect_error(&browser, json!({"url": site.url("/gone")}), 502, "HTTP 404").await;
    expect_error(
        &browser,
        json!({"url": "ftp://127.0.0.1/file"}),
        400,
        "not ftp",
    )
    .await;
    expect_error(
        &browser,
        json!({"url": "not a url at all"}),
        400,
        "not a URL",
    )
    .await;
    expect_error(&browser, json!({"url": 42}), 400, "the body must be JSON").await;
    expect_error(
        &browser,
        json!({"url": "http://a/", "timeout_ms": 0}),
        400,
        "timeout_ms",
    )
    .await;
    expect_error(
        &browser,
        json!({"url": "http://169.254.169.254/latest/meta-data/"}),
        403,
        "(169.254.0.0/16: link-local (cloud metadata)); AUTOBOT_BROWSER_ALLOW lifts it",
    )
    .await;
    expect_error(
        &browser,
        json!({"url": format!("http://127.0.0.2:{}/docs/article.html", site.addr.port())}),
        403,
        "127.0.0.0/8: loopback",
    )
    .await;
    expect_error(
        &browser,
        json!({"url": site.url("/to-metadata")}),
        403,
        "169.254.169.254",
    )
    .await;
    // A body without Content-Type: application/json is refused whatever it
    // holds (a web page's form post cannot make the browser fetch).
    let r = client()
        .post(browser.url("/navigate"))
        .header("content-type", "text/plain")
        .body(json!({"url": site.url("/docs/article.html")}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = client()
        .post(browser.url("/navigate"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The huge page: cut at the limit, and the site never had to send it whole.
    let limit = 1024 * 1024;
    let (status, answer) = navigate(
        &browser,
        json!({"url": site.url("/huge"), "max_bytes": limit}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let page: NavigateResponse = serde_json::from_value(answer).unwrap();
    assert!(page.truncated);
    assert!(
        page.text.len() <= limit && page.text.len() > limit / 2,
        "{}",
        page.text.len()
    );
    let sent = site.huge_sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < HUGE_PAGE_BYTES / 4,
        "the browser stopped reading: {sent} of {HUGE_PAGE_BYTES} bytes left the site"
    );

    // The default limit (5 MiB) on the same 256 MiB page: memory stays near it.
    let (status, answer) = navigate(&browser, json!({"url": site.url("/huge")})).await;
    assert_eq!(status, 200);
    assert_eq!(answer["truncated"], true);
    let peak = peak_rss(&browser);
    assert!(
        peak < 128 * 1024 * 1024,
        "peak memory {} MiB after a 256 MiB page",
        peak >> 20
    );

    assert_healthy(&browser).await;
    let status: StatusResponse = client()
        .get(browser.url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status.pages_fetched, 3);
    assert_eq!(status.errors["too_many_redirects"], 2);
    assert_eq!(status.errors["timeout"], 1);
    assert_eq!(status.errors["not_html"], 1);
    assert_eq!(status.errors["denied_address"], 3);
    assert_eq!(status.errors["bad_request"], 4);
    assert_eq!(status.limits.max_redirects, 5);
    assert_eq!(status.limits.allow, ["127.0.0.1/32"]);
    assert!(status.limits.deny.contains(&"127.0.0.0/8".to_owned()));
    assert!(site.seen().iter().all(|s| s.path != "/latest/meta-data/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_a_denied_address_is_refused_before_connecting() {
    let site = Site::start().await;
    // Without the tests' exception: loopback is refused, as by default.
    let browser = start_browser("http://127.0.0.1:9", &[("AUTOBOT_BROWSER_ALLOW", "")]);
    let url = format!("http://localhost:{}/docs/article.html", site.addr.port());
    let refused = expect_error(&browser, json!({"url": url}), 403, "localhost resolves to").await;
    assert!(refused.error.contains("loopback"), "{}", refused.error);
    expect_error(
        &browser,
        json!({"url": site.url("/docs/article.html")}),
        403,
        "127.0.0.0/8",
    )
    .await;
    assert!(site.seen().is_empty(), "nothing reached the site");
    assert_healthy(&browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigations_beyond_the_bound_are_a_503_with_retry_after() {
    let site = Site::start().await;
    let browser = start_browser(
        "http://127.0.0.1:9",
        &[("AUTOBOT_BROWSER_MAX_NAVIGATIONS", "1")],
    );
    let slow = tokio::spawn({
        let url = browser.url("/navigate");
        let body = json!({"url": site.url("/slow"), "timeout_ms": 3000});
        async move {
            client()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    // The slow navigation holds the one permit once the site has seen it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !site.seen().iter().any(|s| s.path == "/slow") {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow page was never asked for"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = client()
        .post(browser.url("/navigate"))
        .json(&json!({"url": site.url("/docs/article.html")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let error: ErrorBody = r.json().await.unwrap();
    assert!(
        error.error.contains("AUTOBOT_BROWSER_MAX_NAVIGATIONS"),
        "{}",
        error.error
    );
    assert_healthy(&browser).await;
    assert_eq!(slow.await.unwrap(), 504);
    // The permit is back.
    let (status, _) = navigate(&browser, json!({"url": site.url("/docs/article.html")})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_stops_the_process_naming_the_variable() {
    let out = Launch::workspace_bin("autobot-browser")
        .env("AUTOBOT_JAEGER_ENDPOINT", "http://127.0.0.1:9")
        .env("AUTOBOT_BROWSER_MAX_BYTES", "lots")
        .run();
    assert!(!out.status.success());
    let stderr = &out.stderr;
    assert!(
        stderr.contains("AUTOBOT_BROWSER_MAX_BYTES") && stderr.contains("lots"),
        "{stderr}"
    );
}
