//! The caller's context at the edge: the backend continues any caller's
//! trace (W3C or B3) but drops the `tracestate` and `baggage` of a caller
//! outside AUTOBOT_TRUSTED_CONTEXT_FROM; a trusted caller's are kept, cut to
//! the W3C limits. What travels on is read where it arrives: the LLM
//! stand-in behind the ai-stack records every header. The browser sends no
//! baggage to the site it reads.
//!
//! One backend, two callers: the test connects from 127.0.0.3 (a stranger)
//! and from 127.0.0.2 (the trusted network here).

use autobot_standins::llm::{Mode, Recorded, StandIn};
use autobot_testkit::process::{Launch, Process};
use serde_json::json;

use crate::web::{NO_TRACES, SITE_IP, Site, client_from, start_browser};

const STRANGER: &str = "127.0.0.3";
const TRUSTED: &str = SITE_IP;

struct Edge {
    llm: StandIn,
    _ai: Process,
    _browser: Process,
    backend: Process,
    site: Site,
}

impl Edge {
    async fn start() -> Edge {
        let llm = StandIn::start(Mode::Normal).await;
        let site = Site::start().await;
        let ai = Launch::workspace_bin("autobot-ai-stack")
            .env("AUTOBOT_JAEGER_ENDPOINT", NO_TRACES)
            .env("AUTOBOT_OLLAMA_URL", llm.ollama_url())
            .env("AUTOBOT_LLM_MODEL", "standin")
            .start();
        let browser = start_browser(&[]);
        let backend = Launch::workspace_bin("autobot-backend")
            .env("AUTOBOT_JAEGER_ENDPOINT", NO_TRACES)
            .env("AUTOBOT_AI_STACK_URL", ai.url(""))
            .env("AUTOBOT_BROWSER_URL", browser.url(""))
            .env("AUTOBOT_TRUSTED_CONTEXT_FROM", TRUSTED)
            .env("AUTOBOT_AUTH", "off")
            .start();
        Edge {
            llm,
            _ai: ai,
            _browser: browser,
            backend,
            site,
        }
    }

    /// A chat from `source` with `headers`; the request the LLM server got
    /// for it (found by the trace id, which every case changes).
    async fn chat(&self, source: &str, trace: &str, headers: &[(&str, String)]) -> Recorded {
        let mut request = client_from(source)
            .post(self.backend.url("/api/chat"))
            .json(&json!({"messages": [{"role": "user", "content": "hello"}]}));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200, "{trace}");
        let traceresponse = r.headers()["traceresponse"].to_str().unwrap().to_owned();
        assert_eq!(
            traceresponse.split('-').nth(1),
            Some(trace),
            "the caller's trace is continued"
        );
        self.llm
            .seen()
            .into_iter()
            .find(|r| r.header("traceparent").is_some_and(|t| t.contains(trace)))
            .unwrap_or_else(|| panic!("the LLM server got no request of trace {trace}"))
    }
}

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-00f067aa0ba902b7-01")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_tracestate_and_baggage_stop_at_the_edge_and_its_trace_goes_on() {
    let edge = Edge::start().await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let seen = edge
        .chat(
            STRANGER,
            trace,
            &[
                ("traceparent", traceparent(trace)),
                ("tracestate", "k=';touch /tmp/pwned;#,vendor=abc".to_owned()),
                ("baggage", "user.tier=gold,role=admin".to_owned()),
            ],
        )
        .await;
    assert_eq!(seen.header("tracestate"), None, "{:?}", seen.headers);
    assert_eq!(seen.header("baggage"), None, "{:?}", seen.headers);

    // A B3 caller: continued too, its baggage dropped as well.
    let b3_trace = "80f198ee56343ba864fe8b2a57d3eff7";
    let seen = edge
        .chat(
            STRANGER,
            b3_trace,
            &[
                ("b3", format!("{b3_trace}-e457b5a2e4d86bd1-1")),
                ("baggage", "user.tier=gold".to_owned()),
            ],
        )
        .await;
    assert_eq!(seen.header("baggage"), None);

    // The same from the trusted network: kept.
    let trusted = "0af7651916cd43dd8448eb211c80319c";
    let seen = edge
        .chat(
            TRUSTED,
            trusted,
            &[
                ("traceparent", traceparent(trusted)),
                ("tracestate", "vendor=abc".to_owned()),
                ("baggage", "user.tier=gold".to_owned()),
            ],
        )
        .await;
    assert_eq!(seen.header("tracestate"), Some("vendor=abc"));
    assert!(
        seen.header("baggage")
            .is_some_and(|b| b.contains("user.tier=gold")),
        "{:?}",
        seen.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_callers_context_is_cut_to_the_w3c_limits() {
    let edge = Edge::start().await;

    // 40 tracestate members of 24 bytes: 999 bytes; baggage of 200 small members.
    let tracestate: Vec<String> = (0..40)
        .map(|i| format!("v{i:02}=abcdefghijklmnopqrst"))
        .collect();
    let baggage: Vec<String> = (0..200).map(|i| format!("k{i:03}=v")).collect();
    let trace = "11111111111111111111111111111111";
    let seen = edge
        .chat(
            TRUSTED,
            trace,
            &[
                ("traceparent", traceparent(trace)),
                ("tracestate", tracestate.join(",")),
                ("baggage", baggage.join(",")),
            ],
        )
        .await;
    let kept = seen.header("tracestate").expect("a tracestate");
    let members: Vec<&str> = kept.split(',').collect();
    assert!(kept.len() <= 512, "{} bytes", kept.len());
    assert!(members.len() <= 32);
    assert_eq!(members[..3], tracestate[..3], "the first members are kept");
    let kept = seen.header("baggage").expect("a baggage");
    let count = kept.split(',').count();
    assert!((1..=180).contains(&count), "{count} baggage members");

    // 20 KB of baggage: cut to at most 8192 bytes, not dropped whole.
    let big: Vec<String> = (0..200)
        .map(|i| format!("k{i:03}={}", "v".repeat(95)))
        .collect();
    let trace = "22222222222222222222222222222222";
    let seen = edge
        .chat(
            TRUSTED,
            trace,
            &[
                ("traceparent", traceparent(trace)),
                ("baggage", big.join(",")),
            ],
        )
        .await;
    let kept = seen.header("baggage").expect("the first members are kept");
    assert!(kept.len() <= 8192, "{} bytes", kept.len());
    assert!(kept.contains("k000="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_sends_no_baggage_to_the_site() {
    let edge = Edge::start().await;
    let trace = "33333333333333333333333333333333";
    let r = client_from(TRUSTED)
        .post(edge.backend.url("/api/browse"))
        .header("traceparent", traceparent(trace))
        .header("baggage", "user.tier=gold")
        .json(&json!({"url": edge.site.url("/ok")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = edge.site.seen();
    let page = seen
        .iter()
        .find(|s| s.path == "/ok")
        .expect("the site was read");
    assert!(
        page.header("traceparent")
            .is_some_and(|t| t.contains(trace)),
        "the trace still reaches the site: {:?}",
        page.headers
    );
    assert_eq!(page.header("baggage"), None, "{:?}", page.headers);
}
