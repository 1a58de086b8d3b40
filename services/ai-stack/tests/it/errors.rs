//! Failure paths: each answered with the right status, a JSON error naming
//! the trace, and an `llm.inference` span marked ERROR with `error.type`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::standin::FAILURE_MESSAGE;
use crate::support::*;

fn chat(provider: &str) -> Value {
    json!({ "messages": [{ "role": "user", "content": "hello there" }], "provider": provider })
}

/// Sends a chat request and checks the error answer; returns the error text and trace id.
async fn failing_chat(ai: &Process, body: &Value, status: u16) -> (String, String) {
    let r = reqwest::Client::new()
        .post(ai.url("/v1/chat"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), status);
    let trace = traceresponse_trace_id(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["trace_id"],
        trace.as_str(),
        "the error names the trace: {body}"
    );
    (body["error"].as_str().unwrap().to_owned(), trace)
}

async fn failed_llm_span(receiver: &TraceTool, trace: &str) -> Span {
    let spans = receiver
        .wait_for_spans(trace, |s| {
            s.iter().any(|s| s.name == "llm.inference")
                && s.iter().any(|s| s.name == "POST /v1/chat")
        })
        .await;
    let llm = one(&spans, "", "llm.inference").clone();
    assert_eq!(llm.status, Status::Error, "{llm:?}");
    let server = one(&spans, "", "POST /v1/chat");
    assert_eq!(
        server.status,
        Status::Error,
        "a 5xx marks the SERVER span too"
    );
    assert!(llm.events.iter().any(|e| e.name == "exception"));
    llm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_llm_server_is_a_502() {
    let down = free_addr();
    let receiver = TraceTool::start();
    let mut ai = Launch::program(env!("CARGO_BIN_EXE_autobot-ai-stack"))
        .env("AUTOBOT_JAEGER_ENDPOINT", receiver.otlp_http_endpoint())
        .env("AUTOBOT_OLLAMA_URL", format!("http://{down}"))
        .env("AUTOBOT_OPENAI_BASE_URL", format!("http://{down}/v1"))
        .env("AUTOBOT_LLM_PROVIDERS", "ollama,openai")
        .env("AUTOBOT_LLM_MODELS", "llama3.2,gpt-4o-mini")
        .start();
    for provider in ["ollama", "openai"] {
        let (error, trace) = failing_chat(&ai, &chat(provider), 502).await;
        assert!(error.contains("unreachable"), "{error}");
        assert!(
            error.contains(&down.port().to_string()),
            "names where it looked: {error}"
        );
        let llm = failed_llm_span(&receiver, &trace).await;
        assert_eq!(llm.str_attr("error.type"), "connect_error");
    }
    ai.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_llm_server_is_a_504_after_the_timeout() {
    let mut stack = Stack::start(
        Mode::Slow(Duration::from_secs(30)),
        &[("AUTOBOT_LLM_TIMEOUT_MS", "300".into())],
    )
    .await;
    for provider in ["ollama", "openai"] {
        let (error, trace) = failing_chat(&stack.ai, &chat(provider), 504).await;
        assert!(error.contains("did not answer within 300 ms"), "{error}");
        let llm = failed_llm_span(&stack.receiver, &trace).await;
        assert_eq!(llm.str_attr("error.type"), "timeout");
        assert!(llm.int_attr("llm.duration_ms") >= 300);
    }
    stack.ai.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_llm_server_is_a_502_with_its_message() {
    let mut stack = Stack::start(Mode::Fail, &[("OPENAI_API_KEY", "sk-x".into())]).await;
    for provider in ["ollama", "openai"] {
        let (error, trace) = failing_chat(&stack.ai, &chat(provider), 502).await;
        assert!(
            error.contains(FAILURE_MESSAGE),
            "the provider's message is passed on: {error}"
        );
        let llm = failed_llm_span(&stack.receiver, &trace).await;
        assert_eq!(llm.str_attr("error.type"), "provider_error");
        assert!(llm.status_message.contains(FAILURE_MESSAGE));
    }
    // The service is still healthy, and answers once the server recovers.
    stack.llm.set_mode(Mode::Normal);
    let r = reqwest::Client::new()
        .post(stack.ai.url("/v1/chat"))
        .json(&chat("ollama"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    stack.ai.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_400_or_413_with_a_reason_and_traceresponse() {
    let mut stack = Stack::start(Mode::Normal, &[]).await;
    let http = reqwest::Client::new();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("invalid JSON", "{\"messages\": [".into(), 400, "JSON"),
        (
            "wrong type",
            r#"{"messages": "hi"}"#.into(),
            400,
            "invalid type",
        ),
        (
            "wrong role",
            r#"{"messages": [{"role":"robot","content":"x"}]}"#.into(),
            400,
            "unknown variant `robot`",
        ),
        (
            "no messages",
            r#"{"messages": []}"#.into(),
            400,
            "at least one message",
        ),
        (
            "empty content",
            r#"{"messages": [{"role":"user","content":""}]}"#.into(),
            400,
            "messages[0].content",
        ),
        (
            "too large",
            format!(
                r#"{{"messages": [{{"role":"user","content":"{}"}}]}}"#,
                "x".repeat(1024 * 1024 + 10)
            ),
            413,
            "length limit",
        ),
        (
            "a model outside the list",
            r#"{"messages": [{"role":"user","content":"x"}], "model": "gpt-4"}"#.into(),
            400,
            "AUTOBOT_LLM_MODELS",
        ),
        (
            "max_tokens over the cap",
            r#"{"messages": [{"role":"user","content":"x"}], "max_tokens": 4097}"#.into(),
            400,
            "over the limit of 4096 (AUTOBOT_LLM_MAX_TOKENS)",
        ),
    ];
    for (what, body, status, needle) in cases {
        let r = http
            .post(stack.ai.url("/v1/chat"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{what}");
        assert!(r.headers().contains_key("traceresponse"), "{what}");
        let trace = traceresponse_trace_id(&r);
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
        assert_eq!(body["trace_id"], trace.as_str());
    }
    assert!(
        stack.llm.seen().is_empty(),
        "nothing reached the LLM server"
    );
    stack.ai.stop();
}

#[test]
fn a_bad_setting_stops_the_process_at_start_naming_it() {
    let out = Launch::program(env!("CARGO_BIN_EXE_autobot-ai-stack"))
        .env("AUTOBOT_LLM_TIMEOUT_MS", "soon")
        .env("OTEL_SDK_DISABLED", "true")
        .run();
    assert!(!out.status.success());
    let stderr = &out.stderr;
    assert!(
        stderr.contains("AUTOBOT_LLM_TIMEOUT_MS") && stderr.contains("soon"),
        "{stderr}"
    );
}

/// A VM without a CA trust store: the OpenAI client cannot start its TLS
/// backend. The process stops at start saying what to install (no panic).
#[test]
fn without_a_ca_store_the_process_stops_at_start_saying_what_is_missing() {
    let store = tempfile::tempdir().unwrap();
    let empty = store.path().join("none.pem");
    std::fs::write(&empty, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_autobot-ai-stack"))
        .current_dir(std::env::temp_dir())
        .env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", store.path())
        .env("OTEL_SDK_DISABLED", "true")
        .env("AUTOBOT_BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("No CA certificates") && stderr.contains("apt-get install ca-certificates"),
        "{stderr}"
    );
}
