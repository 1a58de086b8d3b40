//! `POST /api/chat`: one trace from the caller through backend and ai-stack
//! to the LLM server, with the right parents, whatever the caller speaks.

use serde_json::{Value, json};

use crate::support::*;

fn chat_body() -> Value {
    json!({
        "messages": [{ "role": "user", "content": "explain spans" }],
        "temperature": 0.5,
        "max_tokens": 32
    })
}

/// Checks the whole chain of one chat trace and returns its spans.
async fn whole_chain(stack: &Stack, trace: &str) -> Vec<Span> {
    let spans = stack
        .receiver
        .wait_for_spans(trace, |s| {
            s.iter().any(|s| s.name == "llm.inference")
                && s.iter()
                    .any(|s| s.service == "autobot-backend" && s.name == "POST /api/chat")
                && s.iter()
                    .any(|s| s.service == "autobot-backend" && s.kind == Kind::Client)
                && s.iter()
                    .any(|s| s.service == "autobot-ai-stack" && s.name == "POST /v1/chat")
        })
        .await;
    let backend = one(&spans, "autobot-backend", "POST /api/chat");
    assert_eq!(backend.kind, Kind::Server);
    let client = one(&spans, "autobot-backend", "POST");
    assert_eq!(client.kind, Kind::Client);
    assert_eq!(
        client.parent.as_ref(),
        Some(&backend.span_id),
        "the CLIENT span is inside the backend's SERVER span"
    );
    let ai = one(&spans, "autobot-ai-stack", "POST /v1/chat");
    assert_eq!(ai.kind, Kind::Server);
    assert_eq!(
        ai.parent.as_ref(),
        Some(&client.span_id),
        "the ai-stack SERVER span is the child of the backend CLIENT span"
    );
    let llm = one(&spans, "autobot-ai-stack", "llm.inference");
    assert_eq!(llm.parent.as_ref(), Some(&ai.span_id));
    assert_eq!(llm.kind, Kind::Client);
    for (key, expected) in [
        ("llm.provider", json!("ollama")),
        ("llm.model", json!("llama-test")),
        ("llm.temperature", json!(0.5)),
        ("llm.prompt_messages", json!(1)),
        ("llm.streaming", json!(false)),
        ("llm.prompt_tokens", json!(2)),
        ("llm.completion_tokens", json!(3)),
        ("llm.response_length", json!("echo: explain spans".len())),
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.provider.name", json!("ollama")),
        ("gen_ai.request.model", json!("llama-test")),
        ("gen_ai.response.model", json!("llama-test")),
        ("gen_ai.usage.input_tokens", json!(2)),
        ("gen_ai.usage.output_tokens", json!(3)),
    ] {
        assert_eq!(llm.attr(key), &expected, "{key}");
    }
    assert!(llm.int_attr("llm.duration_ms") >= 0);
    assert_eq!(
        client.str_attr("url.full"),
        format!("{}/v1/chat", stack.ai.url(""))
    );
    // The LLM server was called from inside llm.inference.
    let seen = stack
        .llm
        .seen()
        .into_iter()
        .find(|r| r.header("traceparent").is_some_and(|t| t.contains(trace)))
        .expect("the LLM server received the trace");
    assert_eq!(
        seen.header("traceparent").unwrap(),
        format!("00-{trace}-{}-01", llm.span_id)
    );
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_w3c_callers_trace_crosses_backend_and_ai_stack() {
    // The test calls from 127.0.0.1: a trusted network here, so its
    // tracestate and baggage are kept (tools/hostile checks a stranger's are not).
    let mut stack = Stack::start(
        Mode::Normal,
        &[],
        &[("AUTOBOT_TRUSTED_CONTEXT_FROM", "127.0.0.1".to_owned())],
    )
    .await;
    let r = reqwest::Client::new()
        .post(stack.backend.url("/api/chat"))
        .header("traceparent", caller_traceparent())
        .header("tracestate", "vendor=abc")
        .header("baggage", "user.tier=gold")
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(traceresponse_trace_id(&r), CALLER_TRACE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reply"], "echo: explain spans");
    assert_eq!(body["provider"], "ollama");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 3})
    );

    let spans = whole_chain(&stack, CALLER_TRACE).await;
    stack.stop();
    let backend = one(&spans, "autobot-backend", "POST /api/chat");
    assert_eq!(
        backend.parent.as_deref(),
        Some(CALLER_SPAN),
        "the caller's context is continued"
    );
    // tracestate and baggage of a trusted caller travel on with the trace.
    let seen = stack.llm.only("/api/chat");
    assert_eq!(seen.header("tracestate"), Some("vendor=abc"));
    assert!(seen.header("baggage").unwrap().contains("user.tier=gold"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_b3_only_caller_is_continued() {
    let mut stack = Stack::start(Mode::Normal, &[], &[]).await;
    let http = reqwest::Client::new();
    // Multi-header B3 (what Zipkin-era clients send).
    let multi = "463ac35c9f6413ad48485a3953bb6124";
    let r = http
        .post(stack.backend.url("/api/chat"))
        .header("x-b3-traceid", multi)
        .header("x-b3-spanid", "a2fb4a1d1a96d312")
        .header("x-b3-sampled", "1")
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(traceresponse_trace_id(&r), multi);
    // Single-header B3.
    let single = "80f198ee56343ba864fe8b2a57d3eff7";
    let r = http
        .post(stack.backend.url("/api/chat"))
        .header("b3", format!("{single}-e457b5a2e4d86bd1-1"))
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(traceresponse_trace_id(&r), single);

    let spans = whole_chain(&stack, multi).await;
    assert_eq!(
        one(&spans, "autobot-backend", "POST /api/chat")
            .parent
            .as_deref(),
        Some("a2fb4a1d1a96d312")
    );
    let spans = whole_chain(&stack, single).await;
    assert_eq!(
        one(&spans, "autobot-backend", "POST /api/chat")
            .parent
            .as_deref(),
        Some("e457b5a2e4d86bd1")
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_context_headers_change_nothing_but_the_trace_id() {
    let mut stack = Stack::start(Mode::Normal, &[], &[]).await;
    let http = reqwest::Client::new();
    let mut traces = Vec::new();
    for (name, value) in [
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ),
        ("traceparent", "garbage"),
        ("b3", "not-a-b3-value-at-all"),
        ("x-b3-traceid", "xyz"),
        ("baggage", "=;=;=,,,"),
        ("tracestate", "k=v,k=v,=="),
    ] {
        let r = http
            .post(stack.backend.url("/api/chat"))
            .header(name, value)
            .json(&chat_body())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}: {value}");
        let trace = traceresponse_trace_id(&r);
        assert_ne!(trace, CALLER_TRACE, "{name}: {value}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["reply"], "echo: explain spans", "{name}: {value}");
        traces.push(trace);
    }
    for trace in &traces {
        let spans = whole_chain(&stack, trace).await;
        assert_eq!(
            one(&spans, "autobot-backend", "POST /api/chat").parent,
            None,
            "a new root"
        );
    }
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_span_or_a_log_line() {
    const KEY: &str = "sk-live-BACKENDSECRET1";
    const TOKEN: &str = "bearer-SECRET-TOKEN-2";
    const QUERY: &str = "query-SECRET-3";
    let mut stack = Stack::start(
        Mode::Normal,
        &[
            ("OPENAI_API_KEY", KEY.to_owned()),
            ("RUST_LOG", "debug".to_owned()),
        ],
        &[("RUST_LOG", "debug".to_owned())],
    )
    .await;
    let http = reqwest::Client::new();
    for provider in ["openai", "ollama"] {
        let mut body = chat_body();
        body["provider"] = json!(provider);
        let r = http
            .post(stack.backend.url(&format!(
                "/api/chat?api_key={QUERY}&access_token={QUERY}&page=1"
            )))
            .header("traceparent", caller_traceparent())
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("cookie", format!("session={TOKEN}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{provider}");
    }
    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().filter(|s| s.name == "llm.inference").count() == 2
                && s.iter().filter(|s| s.name == "POST /api/chat").count() == 2
        })
        .await;
    stack.stop();
    assert!(
        stack
            .llm
            .seen()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {KEY}"))),
        "the key was sent to the OpenAI-compatible server"
    );
    let server = spans.iter().find(|s| s.name == "POST /api/chat").unwrap();
    assert_eq!(
        server.str_attr("url.query"),
        "api_key=REDACTED&access_token=REDACTED&page=1"
    );
    for s in stack.receiver.all_spans().await {
        for secret in [KEY, TOKEN, QUERY] {
            assert!(
                !s.text().contains(secret),
                "{secret} in span {}: {}",
                s.name,
                s.text()
            );
        }
    }
    for (who, output) in [
        ("backend", stack.backend.output_lines()),
        ("ai-stack", stack.ai.output_lines()),
    ] {
        assert!(!output.is_empty(), "{who} logged nothing");
        for line in &output {
            for secret in [KEY, TOKEN, QUERY] {
                assert!(
                    !line.contains(secret),
                    "{secret} in a {who} log line: {line}"
                );
            }
        }
    }
}
