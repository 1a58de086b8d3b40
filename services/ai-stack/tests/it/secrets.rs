//! Secrets — the caller's Authorization header, the OpenAI key, key-like
//! query parameters — reach no span and no log line; malformed context
//! headers change nothing but the trace id.

use serde_json::{Value, json};

use crate::support::*;

const KEY: &str = "sk-live-SECRETKEY42";
const CALLER_TOKEN: &str = "caller-bearer-SECRET77";
const QUERY_SECRET: &str = "query-SECRET99";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_span_or_a_log_line() {
    let mut stack = Stack::start(
        Mode::Normal,
        &[
            ("OPENAI_API_KEY", KEY.to_owned()),
            ("RUST_LOG", "debug".to_owned()),
            ("AUTOBOT_TRACE_LLM_CONTENT", "true".to_owned()),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    for provider in ["openai", "ollama"] {
        let r = http
            .post(stack.ai.url(&format!(
                "/v1/chat?api_key={QUERY_SECRET}&token={QUERY_SECRET}&x=1"
            )))
            .header("traceparent", caller_traceparent())
            .header("authorization", format!("Bearer {CALLER_TOKEN}"))
            .header("x-api-key", CALLER_TOKEN)
            .json(
                &json!({ "messages": [{ "role": "user", "content": "hi" }], "provider": provider }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{provider}");
    }
    // A failure too: the server refuses, its message must not carry the key.
    stack.llm.set_mode(Mode::Fail);
    let r = http
        .post(stack.ai.url("/v1/chat"))
        .header("traceparent", caller_traceparent())
        .json(&json!({ "messages": [{ "role": "user", "content": "hi" }], "provider": "openai" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert!(!body.to_string().contains(KEY));

    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().filter(|s| s.name == "llm.inference").count() == 3
                && s.iter().filter(|s| s.name == "POST /v1/chat").count() == 3
        })
        .await;
    stack.ai.stop();
    // The key was used: the server got it.
    assert!(
        stack
            .llm
            .seen()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {KEY}")))
    );
    let server = spans.iter().find(|s| s.name == "POST /v1/chat").unwrap();
    assert!(server.str_attr("url.query").contains("api_key=REDACTED"));
    for s in stack.receiver.all_spans().await {
        for secret in [KEY, CALLER_TOKEN, QUERY_SECRET] {
            assert!(
                !s.text().contains(secret),
                "{secret} in span {}: {}",
                s.name,
                s.text()
            );
        }
    }
    let output = stack.ai.output_lines();
    assert!(output.len() > 3, "the service logged: {output:?}");
    for line in &output {
        for secret in [KEY, CALLER_TOKEN, QUERY_SECRET] {
            assert!(!line.contains(secret), "{secret} in log line: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_context_headers_change_nothing_but_the_trace_id() {
    let mut stack = Stack::start(Mode::Normal, &[]).await;
    let http = reqwest::Client::new();
    let mut traces = Vec::new();
    for (name, value) in [
        ("traceparent", "00-not-hex-at-all-01"),
        (
            "traceparent",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("b3", "🙃-garbage"),
        ("x-b3-traceid", "zz"),
        ("baggage", "=;=;=,,,"),
        ("tracestate", "k=v,k=v,=="),
    ] {
        let r = http
            .post(stack.ai.url("/v1/chat"))
            .header(name, value)
            .json(&json!({ "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}: {value}");
        let trace = traceresponse_trace_id(&r);
        assert_ne!(trace, CALLER_TRACE);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["reply"], "echo: hi", "{name}: {value}");
        traces.push(trace);
    }
    for trace in &traces {
        let spans = stack
            .receiver
            .wait_for_spans(trace, |s| {
                s.iter().any(|s| s.name == "llm.inference")
                    && s.iter().any(|s| s.name == "POST /v1/chat")
            })
            .await;
        let server = one(&spans, "", "POST /v1/chat");
        assert_eq!(server.parent, None, "a new root");
    }
    stack.ai.stop();
}
