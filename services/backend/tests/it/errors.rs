//! Failures downstream: each answered with the status that says what
//! happened, a JSON error and the trace id.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::standin::FAILURE_MESSAGE;
use crate::support::*;

fn chat_body() -> Value {
    json!({ "messages": [{ "role": "user", "content": "hello" }] })
}

async fn failing_chat(backend: &Process, status: u16) -> (String, String) {
    let r = reqwest::Client::new()
        .post(backend.url("/api/chat"))
        .header("traceparent", caller_traceparent())
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), status);
    let trace = traceresponse_trace_id(&r);
    assert_eq!(trace, CALLER_TRACE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["trace_id"], trace.as_str(), "{body}");
    (body["error"].as_str().unwrap().to_owned(), trace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_stack_that_is_down_is_a_502_with_the_trace_id() {
    let receiver = TraceTool::start();
    let down = free_addr();
    let mut backend = start_backend(&receiver, &format!("http://{down}"), &[]);
    let (error, trace) = failing_chat(&backend, 502).await;
    assert!(error.contains("ai-stack is unreachable"), "{error}");
    assert!(error.contains(&down.port().to_string()), "{error}");
    let spans = receiver
        .wait_for_spans(&trace, |s| {
            s.iter().any(|s| s.name == "POST /api/chat") && s.iter().any(|s| s.kind == Kind::Client)
        })
        .await;
    backend.stop();
    let server = one(&spans, "autobot-backend", "POST /api/chat");
    assert_eq!(server.status, Status::Error);
    assert_eq!(server.int_attr("http.response.status_code"), 502);
    let client = one(&spans, "autobot-backend", "POST");
    assert_eq!(client.status, Status::Error);
    assert_eq!(client.str_attr("error.type"), "connect_error");
    assert!(
        backend
            .output_lines()
            .iter()
            .any(|l| l.contains("ai-stack is unreachable")),
        "the failure is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_server_that_is_down_is_a_502_through_both_services() {
    let receiver = TraceTool::start();
    let down = free_addr();
    let mut ai = Launch::workspace_bin("autobot-ai-stack")
        .env("AUTOBOT_JAEGER_ENDPOINT", receiver.otlp_grpc_endpoint())
        .env("AUTOBOT_OLLAMA_URL", format!("http://{down}"))
        .start();
    let mut backend = start_backend(&receiver, &ai.url(""), &[]);
    let (error, trace) = failing_chat(&backend, 502).await;
    assert!(error.contains("ollama is unreachable"), "{error}");
    let spans = receiver
        .wait_for_spans(&trace, |s| {
            s.iter().any(|s| s.name == "llm.inference")
                && s.iter().any(|s| s.name == "POST /api/chat")
        })
        .await;
    backend.stop();
    ai.stop();
    let llm = one(&spans, "autobot-ai-stack", "llm.inference");
    assert_eq!(llm.str_attr("error.type"), "connect_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_server_answering_500_is_a_502_with_its_message() {
    let mut stack = Stack::start(Mode::Fail, &[], &[]).await;
    let (error, trace) = failing_chat(&stack.backend, 502).await;
    assert!(
        error.contains(FAILURE_MESSAGE),
        "the provider's message is passed on: {error}"
    );
    let spans = stack
        .receiver
        .wait_for_spans(&trace, |s| {
            s.iter().any(|s| s.name == "llm.inference")
                && s.iter().any(|s| s.name == "POST /api/chat")
                && s.iter()
                    .any(|s| s.service == "autobot-backend" && s.kind == Kind::Client)
        })
        .await;
    stack.stop();
    let llm = one(&spans, "autobot-ai-stack", "llm.inference");
    assert_eq!(llm.status, Status::Error);
    assert_eq!(llm.str_attr("error.type"), "provider_error");
    let client = one(&spans, "autobot-backend", "POST");
    assert_eq!(client.int_attr("http.response.status_code"), 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_llm_server_is_a_504_through_both_services() {
    let mut stack = Stack::start(
        Mode::Slow(Duration::from_secs(30)),
        &[("AUTOBOT_LLM_TIMEOUT_MS", "300".to_owned())],
        &[],
    )
    .await;
    let (error, trace) = failing_chat(&stack.backend, 504).await;
    assert!(error.contains("did not answer within 300 ms"), "{error}");
    let spans = stack
        .receiver
        .wait_for_spans(&trace, |s| {
            s.iter().any(|s| s.name == "llm.inference")
                && s.iter().any(|s| s.name == "POST /api/chat")
        })
        .await;
    stack.stop();
    assert_eq!(
        one(&spans, "autobot-ai-stack", "llm.inference").str_attr("error.type"),
        "timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_ai_stack_is_a_504_after_the_backends_own_timeout() {
    let mut stack = Stack::start(
        Mode::Slow(Duration::from_secs(30)),
        // The ai-stack gives up after 2 s, so its in-flight call ends and it can stop.
        &[("AUTOBOT_LLM_TIMEOUT_MS", "2000".to_owned())],
        &[("AUTOBOT_UPSTREAM_TIMEOUT_MS", "300".to_owned())],
    )
    .await;
    let (error, trace) = failing_chat(&stack.backend, 504).await;
    assert!(
        error.contains("ai-stack did not answer within 300 ms"),
        "{error}"
    );
    let spans = stack
        .receiver
        .wait_for_spans(&trace, |s| {
            s.iter().any(|s| s.name == "POST /api/chat")
                && s.iter()
                    .any(|s| s.service == "autobot-backend" && s.kind == Kind::Client)
        })
        .await;
    stack.stop();
    let client = one(&spans, "autobot-backend", "POST");
    assert_eq!(client.str_attr("error.type"), "timeout");
}
