//! The operator's view, for real: Debian's Prometheus (started here, with
//! infra/prometheus's rules and short intervals) scrapes every service of
//! the running system while requests go through it at sampling rate 0.1.
//! Every request is counted, errors by status code and `error.type`, the
//! spanmetrics series carry the labels Jaeger's Monitor tab queries, an
//! exemplar leads to a trace the trace tool holds, every dashboard panel's
//! query returns data, and the ai-stack error alert fires when the LLM
//! answers 500.

use std::path::{Path, PathBuf};
use std::time::Duration;

use autobot_e2e::system::{Options, System};
use autobot_standins::llm::Mode;
use autobot_testkit::process::Launch;
use autobot_testkit::prometheus::{Prometheus, PrometheusOptions};
use autobot_testkit::traces::spans;
use serde_json::{Value, json};

const SERVICES: [&str; 5] = [
    "autobot-backend",
    "autobot-ai-stack",
    "autobot-browser",
    "autobot-npu-worker",
    "autobot-pki-distributor",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Prometheus scraping every service of `system` each second, with the
/// production rules evaluated each second.
async fn prometheus_for(system: &System) -> Prometheus {
    let rules = repo().join("infra/prometheus/rules");
    let mut options = PrometheusOptions {
        rule_files: vec![rules.join("recording.yml"), rules.join("alerts.yml")],
        ..PrometheusOptions::default()
    };
    for (job, service) in [
        ("autobot-backend", &system.backend),
        ("autobot-ai-stack", &system.ai_stack),
        ("autobot-browser", &system.browser),
        ("autobot-npu-worker", &system.npu),
        ("autobot-pki-distributor", &system.pki),
    ] {
        options = options.job(job, &[service.addr().to_string()]);
    }
    let prometheus =
        Prometheus::start(&options).expect("prometheus starts (scripts/setup.sh installs it)");
    prometheus
        .wait_targets_up(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", prometheus.output()));
    prometheus
}

fn chat(content: &str) -> Value {
    json!({"messages": [{"role": "user", "content": content}]})
}

/// A sampled caller's traceparent with a trace id of our choosing.
fn sampled_parent(i: u32) -> (String, String) {
    let trace_id = format!(
        "{:032x}",
        0x5eed_0000_0000_0000_0000_0000_0000_0000u128 + u128::from(i)
    );
    (
        format!("00-{trace_id}-{:016x}-01", 0x1000 + u64::from(i)),
        trace_id,
    )
}

/// Waits until Prometheus' number for `promql` is `expected` (scrapes are
/// each second: the last requests show within a few).
async fn assert_eventually(prometheus: &Prometheus, promql: &str, expected: f64) {
    let seen = prometheus
        .wait_for(promql, Duration::from_secs(20), |r| {
            r.len() == 1
                && r[0]["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    == Some(expected)
        })
        .await;
    if let Err(e) = seen {
        panic!("{promql} should be {expected}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counts_every_request_at_rate_0_1_with_errors_spanmetrics_and_exemplars() {
    let system = System::start(Options {
        sample_rate: 0.1,
        ..Options::default()
    })
    .await;
    let prometheus = prometheus_for(&system).await;

    // N chats at rate 0.1; the first three come from a sampled caller, so
    // some of them are sampled whatever the dice say (their exemplars).
    const N: u32 = 40;
    for i in 0..N {
        let (parent, trace_id) = sampled_parent(i);
        let headers: Vec<(&str, &str)> = if i < 3 {
            vec![("traceparent", &parent)]
        } else {
            vec![]
        };
        let answer = system.post("/api/chat", chat("hello"), &headers).await;
        assert_eq!(answer.status, 200, "{}\n{}", answer.body, system.logs());
        if i < 3 {
            assert_eq!(answer.trace_id, trace_id);
        }
    }
    // K failures: the LLM answers 500.
    const K: u32 = 7;
    system.llm.set_mode(Mode::Fail);
    for _ in 0..K {
        let answer = system.post("/api/chat", chat("hello"), &[]).await;
        assert_eq!(answer.status, 502, "{}", answer.body);
    }
    system.llm.set_mode(Mode::Normal);
    // A bad body: the caller's error (400), not the service's.
    let answer = system
        .post("/api/chat", json!({"messages": "nope"}), &[])
        .await;
    assert_eq!(answer.status, 400);
    // Work for the other services: a research request (browser, Redis, npu-worker) and a distribution.
    let answer = system
        .post(
            "/api/research",
            json!({"url": system.article_url(), "question": "Which header carries the trace context?", "top_k": 2}),
            &[],
        )
        .await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, system.logs());
    let answer = system.post("/api/pki/distribute", json!({}), &[]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, system.logs());

    // Exactly N + K + 1 chats on the backend (the 400 included), N + K + 1
    // on the ai-stack (the research asked it once): every request, not
    // about a tenth of them.
    let backend_chats = r#"sum(http_server_request_duration_seconds_count{job="autobot-backend", http_route="/api/chat"})"#;
    assert_eventually(&prometheus, backend_chats, f64::from(N + K + 1)).await;
    assert_eventually(
        &prometheus,
        r#"sum(http_server_request_duration_seconds_count{job="autobot-ai-stack", http_route="/v1/chat"})"#,
        f64::from(N + K + 1),
    )
    .await;
    // The same in the spanmetrics series, under the names and labels Jaeger reads.
    assert_eventually(
        &prometheus,
        r#"sum(traces_span_metrics_calls_total{service_name="autobot-backend", span_name="POST /api/chat", span_kind="SPAN_KIND_SERVER"})"#,
        f64::from(N + K + 1),
    )
    .await;

    // Errors by status code and error.type, on both sides of the hop.
    for (promql, expected) in [
        (
            r#"sum(http_server_request_duration_seconds_count{job="autobot-ai-stack", http_route="/v1/chat", http_response_status_code="502", error_type="502"})"#,
            K,
        ),
        (
            r#"sum(http_server_request_duration_seconds_count{job="autobot-backend", http_route="/api/chat", http_response_status_code="502", error_type="502"})"#,
            K,
        ),
        (
            r#"sum(http_server_request_duration_seconds_count{job="autobot-backend", http_route="/api/chat", http_response_status_code="400", error_type=""})"#,
            1,
        ),
        (
            r#"sum(http_client_request_duration_seconds_count{job="autobot-backend", http_response_status_code="502", error_type="502"})"#,
            K,
        ),
        (
            r#"sum(traces_span_metrics_calls_total{service_name="autobot-ai-stack", span_kind="SPAN_KIND_SERVER", span_name="POST /v1/chat", status_code="STATUS_CODE_ERROR"})"#,
            K,
        ),
        (
            r#"sum(traces_span_metrics_calls_total{service_name="autobot-ai-stack", span_name="llm.inference", span_kind="SPAN_KIND_CLIENT", status_code="STATUS_CODE_ERROR"})"#,
            K,
        ),
        (
            r#"sum(traces_span_metrics_calls_total{service_name="autobot-ai-stack", span_name="llm.inference", span_kind="SPAN_KIND_CLIENT", status_code="STATUS_CODE_UNSET"})"#,
            N + 1,
        ),
        (
            r#"sum(gen_ai_client_operation_duration_seconds_count{job="autobot-ai-stack", error_type!=""})"#,
            K,
        ),
    ] {
        assert_eventually(&prometheus, promql, f64::from(expected)).await;
    }

    // Jaeger's Monitor tab: its own queries (reader.go) answer for every service.
    let services = SERVICES.join("|");
    for promql in [
        format!(
            r#"sum(rate(traces_span_metrics_calls_total{{service_name =~ "{services}", span_kind =~ "SPAN_KIND_SERVER"}}[1m])) by (service_name,span_name)"#
        ),
        format!(
            r#"sum(rate(traces_span_metrics_calls_total{{service_name =~ "{services}", status_code = "STATUS_CODE_ERROR", span_kind =~ "SPAN_KIND_SERVER"}}[1m])) by (service_name) / sum(rate(traces_span_metrics_calls_total{{service_name =~ "{services}", span_kind =~ "SPAN_KIND_SERVER"}}[1m])) by (service_name)"#
        ),
        format!(
            r#"histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{{service_name =~ "{services}", span_kind =~ "SPAN_KIND_SERVER"}}[1m])) by (service_name,le))"#
        ),
    ] {
        // rate() needs two scrapes of a series in its window; the counts
        // above may have been seen in the first.
        let answered = prometheus
            .wait_for(&promql, Duration::from_secs(20), |r| !r.is_empty())
            .await;
        assert!(answered.is_ok(), "Jaeger's query gives nothing: {promql}");
    }
    // Every service that answered a traced HTTP request has its SERVER
    // series (the npu-worker's work comes over Redis: its CONSUMER one below).
    let http_services = [
        "autobot-backend",
        "autobot-ai-stack",
        "autobot-browser",
        "autobot-pki-distributor",
    ];
    prometheus
        .wait_for(
            r#"count by (service_name) (traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER"})"#,
            Duration::from_secs(20),
            |r| {
                http_services
                    .iter()
                    .all(|service| r.iter().any(|s| s["metric"]["service_name"] == *service))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("SERVER spanmetrics series of {http_services:?}: {e}"));
    for (service, span_name, kind) in [
        ("autobot-npu-worker", "npu.inference", "SPAN_KIND_INTERNAL"),
        (
            "autobot-npu-worker",
            "process autobot:jobs:npu",
            "SPAN_KIND_CONSUMER",
        ),
        ("autobot-browser", "browser.navigate", "SPAN_KIND_INTERNAL"),
        (
            "autobot-pki-distributor",
            "ssh.distribute_certificates",
            "SPAN_KIND_CLIENT",
        ),
    ] {
        let promql = format!(
            r#"sum(traces_span_metrics_calls_total{{service_name="{service}", span_name="{span_name}", span_kind="{kind}"}})"#
        );
        assert_eventually(&prometheus, &promql, 1.0).await;
    }

    // The exemplars of the backend's chats are sampled traces the trace tool holds.
    let found = prometheus
        .exemplars(
            r#"http_server_request_duration_seconds_bucket{job="autobot-backend", http_route="/api/chat"}"#,
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let trace_ids: Vec<String> = found
        .iter()
        .flat_map(|s| s["exemplars"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
        .collect();
    assert!(!trace_ids.is_empty(), "no exemplars: {found:?}");
    let mut unique = trace_ids.clone();
    unique.sort();
    unique.dedup();
    for trace_id in &unique {
        let trace = system
            .tool
            .wait_for_trace(trace_id, |t| !spans(t).is_empty(), Duration::from_secs(30))
            .await;
        assert!(
            trace.is_ok_and(|t| spans(&t).iter().any(|s| s.service == "autobot-backend")),
            "exemplar {trace_id} is no backend trace the trace tool holds"
        );
    }
    // Which sampled requests left exemplars depends on the scrapes: a
    // bucket shows only its latest exemplar. Whichever they are, they are
    // sampled traces the trace tool holds (above), the callers' among them
    // when a scrape came between their requests and the next sampled one.

    // /metrics needs no key and starts no trace; it answers OpenMetrics when asked.
    let response = reqwest::Client::new()
        .get(system.backend.url("/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("traceresponse").is_none());
    assert!(response.text().await.unwrap().ends_with("# EOF\n"));

    // Every dashboard panel's query parses and returns data.
    check_dashboards(&prometheus).await;
}

/// Every query of every panel of infra/grafana/dashboards, with Grafana's
/// variables given values, through Prometheus' HTTP API: it must parse and
/// give at least one series.
async fn check_dashboards(prometheus: &Prometheus) {
    let dir = repo().join("infra/grafana/dashboards");
    let mut checked = 0;
    let mut empty = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "1m")
                    .replace("$__interval", "15s")
                    .replace("$job", ".*");
                // It must parse now; data may need a second scrape (rate()
                // needs two samples in its window), so an empty answer is
                // asked again for a while.
                prometheus
                    .query(&expr)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", path.display(), panel["title"]));
                let answered = prometheus
                    .wait_for(&expr, Duration::from_secs(20), |r| !r.is_empty())
                    .await;
                checked += 1;
                if answered.is_err() {
                    empty.push(format!(
                        "{} / {}: {expr}",
                        path.file_name().unwrap().to_string_lossy(),
                        panel["title"]
                    ));
                }
            }
        }
    }
    assert!(checked >= 30, "{checked} queries");
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ai_stack_error_alert_fires_when_the_llm_answers_500() {
    let system = System::start(Options {
        sample_rate: 0.1,
        ..Options::default()
    })
    .await;
    let prometheus = prometheus_for(&system).await;
    // A little good traffic first, then the LLM fails for a while: the
    // requests go on, spread over several scrapes, so the error rate is
    // seen rising (rate() needs two samples of each series).
    for _ in 0..5 {
        let answer = system.post("/api/chat", chat("hello"), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    system.llm.set_mode(Mode::Fail);
    let firing = async {
        loop {
            let answer = system.post("/api/chat", chat("hello"), &[]).await;
            assert_eq!(answer.status, 502);
            let alerts = prometheus.alerts().await.unwrap();
            if let Some(alert) = alerts.iter().find(|a| {
                a["labels"]["alertname"] == "AutobotErrorBudgetBurnFast"
                    && a["labels"]["job"] == "autobot-ai-stack"
                    && a["state"] == "firing"
            }) {
                return alert.clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let alert = tokio::time::timeout(Duration::from_secs(60), firing)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the ai-stack error alert did not fire within 60 s\n{}",
                prometheus.output()
            )
        });
    assert_eq!(alert["labels"]["severity"], "page");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("autobot-ai-stack answers"),
        "{alert}"
    );
    // The LLM answers again: once the 5-minute window has no errors the
    // alert stops; here it is enough that the errors stopped being counted.
    system.llm.set_mode(Mode::Normal);
    let answer = system.post("/api/chat", chat("hello"), &[]).await;
    assert_eq!(answer.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_metrics_bind_metrics_are_served_there_only() {
    let browser = Launch::workspace_bin("autobot-browser")
        .env("AUTOBOT_METRICS_BIND", "127.0.0.1:0")
        .start();
    let prefix = "autobot-browser metrics on ";
    let url = browser
        .output_lines()
        .iter()
        .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no `{prefix}…` line:\n{}", browser.output()));
    let http = reqwest::Client::new();
    // A request to count first.
    let health = http.get(browser.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let scraped = http.get(&url).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains(r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/health",http_response_status_code="200"} 1"#),
        "{text}"
    );
    let on_the_api = http.get(browser.url("/metrics")).send().await.unwrap();
    assert_eq!(
        on_the_api.status(),
        404,
        "not on the service's own listener"
    );
}
