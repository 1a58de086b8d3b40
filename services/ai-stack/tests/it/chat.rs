//! Successful calls: the caller's trace is continued down to the LLM server,
//! and `llm.inference` carries its attributes.

use serde_json::{Value, json};

use crate::support::*;

fn request(provider: &str, stream: bool) -> Value {
    json!({
        "messages": [
            { "role": "system", "content": "You answer briefly." },
            { "role": "user", "content": "what is tracing" }
        ],
        "provider": provider,
        "temperature": 0.25,
        "max_tokens": 64,
        "stream": stream
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_chat_continues_the_callers_trace_to_the_llm_server() {
    let mut stack = Stack::start(Mode::Normal, &[]).await;
    let r = reqwest::Client::new()
        .post(stack.ai.url("/v1/chat"))
        .header("traceparent", caller_traceparent())
        .json(&request("ollama", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(traceresponse_trace_id(&r), CALLER_TRACE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reply"], "echo: what is tracing");
    assert_eq!(body["provider"], "ollama");
    assert_eq!(body["model"], "llama-test");
    assert_eq!(body["usage"]["prompt_tokens"], 6);
    assert_eq!(body["usage"]["completion_tokens"], 4);

    let seen = stack.llm.only("/api/chat");
    assert_eq!(seen.body["model"], "llama-test");
    assert_eq!(seen.body["stream"], false);
    assert_eq!(seen.body["options"]["temperature"], 0.25);
    assert_eq!(seen.body["options"]["num_predict"], 64);

    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().any(|s| s.name == "llm.inference")
                && s.iter().any(|s| s.name == "POST /v1/chat")
        })
        .await;
    stack.ai.stop();
    let server = one(&spans, "autobot-ai-stack", "POST /v1/chat");
    assert_eq!(server.kind, Kind::Server);
    assert_eq!(
        server.parent.as_deref(),
        Some(CALLER_SPAN),
        "the caller's context is continued"
    );
    let llm = one(&spans, "autobot-ai-stack", "llm.inference");
    assert_eq!(llm.kind, Kind::Client);
    assert_eq!(llm.parent.as_ref(), Some(&server.span_id));

    // Ollama received the llm.inference span as its parent.
    let traceparent = seen
        .header("traceparent")
        .expect("traceparent sent to Ollama");
    assert_eq!(traceparent, format!("00-{CALLER_TRACE}-{}-01", llm.span_id));
    assert!(seen.header("b3").unwrap().starts_with(CALLER_TRACE));

    for (key, expected) in [
        ("llm.provider", json!("ollama")),
        ("llm.model", json!("llama-test")),
        ("llm.streaming", json!(false)),
        ("llm.temperature", json!(0.25)),
        ("llm.prompt_messages", json!(2)),
        ("llm.response_length", json!("echo: what is tracing".len())),
        ("llm.prompt_tokens", json!(6)),
        ("llm.completion_tokens", json!(4)),
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.provider.name", json!("ollama")),
        ("gen_ai.request.model", json!("llama-test")),
        ("gen_ai.request.temperature", json!(0.25)),
        ("gen_ai.request.max_tokens", json!(64)),
        ("gen_ai.request.stream", json!(false)),
        ("gen_ai.response.model", json!("llama-test")),
        ("gen_ai.usage.input_tokens", json!(6)),
        ("gen_ai.usage.output_tokens", json!(4)),
        ("server.address", json!("127.0.0.1")),
        ("server.port", json!(stack.llm.addr.port())),
    ] {
        assert_eq!(llm.attr(key), &expected, "{key}");
    }
    assert!(llm.int_attr("llm.duration_ms") >= 0);
    for content in ["gen_ai.input.messages", "gen_ai.output.messages"] {
        assert!(
            !llm.attributes.contains_key(content),
            "{content} is recorded only when asked"
        );
    }
    assert!(
        !llm.text().contains("what is tracing"),
        "no prompt text: {}",
        llm.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_streaming_answers_are_read_whole() {
    let mut stack = Stack::start(Mode::Normal, &[]).await;
    let r = reqwest::Client::new()
        .post(stack.ai.url("/v1/chat"))
        .header("traceparent", caller_traceparent())
        .json(&request("ollama", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reply"], "echo: what is tracing");
    assert_eq!(body["usage"]["completion_tokens"], 4);
    assert_eq!(stack.llm.only("/api/chat").body["stream"], true);

    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().any(|s| s.name == "llm.inference")
        })
        .await;
    stack.ai.stop();
    let llm = one(&spans, "", "llm.inference");
    assert_eq!(llm.attr("llm.streaming"), &json!(true));
    assert_eq!(llm.attr("gen_ai.request.stream"), &json!(true));
    assert_eq!(llm.int_attr("llm.completion_tokens"), 4);
    assert_eq!(llm.int_attr("llm.response_length"), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_goes_through_the_traced_client_with_the_key() {
    let key = "sk-standin-0123456789abcdef";
    let mut stack = Stack::start(
        Mode::Normal,
        &[
            ("OPENAI_API_KEY", key.to_owned()),
            ("AUTOBOT_LLM_PROVIDER", "openai".into()),
        ],
    )
    .await;
    let mut req = request("openai", false);
    req["model"] = json!("gpt-test");
    let r = reqwest::Client::new()
        .post(stack.ai.url("/v1/chat"))
        .header("traceparent", caller_traceparent())
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reply"], "echo: what is tracing");
    assert_eq!(body["provider"], "openai");
    assert_eq!(body["model"], "gpt-test-2026-01-01");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 4})
    );

    let seen = stack.llm.only("/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    assert_eq!(seen.body["model"], "gpt-test");
    assert_eq!(seen.body["max_completion_tokens"], 64);
    assert_eq!(seen.body["messages"][0]["role"], "system");

    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().any(|s| s.name == "llm.inference")
                && s.iter().any(|s| s.name == "POST" && s.kind == Kind::Client)
                && s.iter().any(|s| s.name == "POST /v1/chat")
        })
        .await;
    stack.ai.stop();
    let server = one(&spans, "", "POST /v1/chat");
    let llm = one(&spans, "", "llm.inference");
    let http = one(&spans, "", "POST");
    assert_eq!(llm.parent.as_ref(), Some(&server.span_id));
    assert_eq!(
        http.parent.as_ref(),
        Some(&llm.span_id),
        "the HTTP CLIENT span is inside llm.inference"
    );
    assert_eq!(
        seen.header("traceparent").unwrap(),
        format!("00-{CALLER_TRACE}-{}-01", http.span_id),
        "the server sees the HTTP CLIENT span as its parent"
    );
    assert_eq!(
        http.str_attr("url.full"),
        format!("{}/chat/completions", stack.llm.openai_url())
    );
    assert_eq!(http.int_attr("http.response.status_code"), 200);
    for (key, expected) in [
        ("llm.provider", json!("openai")),
        ("gen_ai.provider.name", json!("openai")),
        ("llm.model", json!("gpt-test")),
        ("gen_ai.request.model", json!("gpt-test")),
        ("gen_ai.response.model", json!("gpt-test-2026-01-01")),
        ("gen_ai.usage.input_tokens", json!(6)),
        ("gen_ai.usage.output_tokens", json!(4)),
        ("llm.prompt_messages", json!(2)),
        ("gen_ai.response.id", json!("chatcmpl-standin")),
    ] {
        assert_eq!(llm.attr(key), &expected, "{key}");
    }
    for s in &spans {
        assert!(!s.text().contains(key), "the key is in span {}", s.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_streaming_answers_are_read_whole_with_their_usage() {
    let mut stack = Stack::start(Mode::Normal, &[("OPENAI_API_KEY", "sk-x".to_owned())]).await;
    let mut req = request("openai", true);
    req["model"] = json!("gpt-test");
    let r = reqwest::Client::new()
        .post(stack.ai.url("/v1/chat"))
        .header("traceparent", caller_traceparent())
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reply"], "echo: what is tracing");
    assert_eq!(body["model"], "gpt-test-2026-01-01");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 4})
    );
    let seen = stack.llm.only("/v1/chat/completions");
    assert_eq!(seen.body["stream"], true);
    assert_eq!(seen.body["stream_options"]["include_usage"], true);

    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().any(|s| s.name == "llm.inference")
        })
        .await;
    stack.ai.stop();
    let llm = one(&spans, "", "llm.inference");
    assert_eq!(llm.attr("llm.streaming"), &json!(true));
    assert_eq!(llm.int_attr("gen_ai.usage.output_tokens"), 4);
    assert_eq!(llm.str_attr("gen_ai.response.model"), "gpt-test-2026-01-01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_is_recorded_only_when_asked() {
    let mut stack = Stack::start(
        Mode::Normal,
        &[("AUTOBOT_TRACE_LLM_CONTENT", "true".into())],
    )
    .await;
    let r = reqwest::Client::new()
        .post(stack.ai.url("/v1/chat"))
        .header("traceparent", caller_traceparent())
        .json(&request("ollama", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().any(|s| s.name == "llm.inference")
        })
        .await;
    stack.ai.stop();
    let llm = one(&spans, "", "llm.inference");
    let input: Value = serde_json::from_str(llm.str_attr("gen_ai.input.messages")).unwrap();
    assert_eq!(input[1]["content"], "what is tracing");
    let output: Value = serde_json::from_str(llm.str_attr("gen_ai.output.messages")).unwrap();
    assert_eq!(output[0]["content"], "echo: what is tracing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_per_provider() {
    let mut stack = Stack::start(Mode::Normal, &[("OPENAI_API_KEY", "sk-x".into())]).await;
    let http = reqwest::Client::new();
    let r = http
        .get(stack.ai.url("/v1/models"))
        .header("traceparent", caller_traceparent())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["provider"], "ollama");
    assert_eq!(
        body["models"],
        json!([{"id": "llama-test:latest"}, {"id": "qwen-test:1b"}])
    );
    let tags = stack.llm.only("/api/tags");
    assert!(tags.header("traceparent").unwrap().contains(CALLER_TRACE));

    let r = http
        .get(stack.ai.url("/v1/models?provider=openai"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"provider": "openai", "models": [{"id": "gpt-test"}]})
    );

    let r = http
        .get(stack.ai.url("/v1/models?provider=bard"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("traceresponse"));

    let spans = stack
        .receiver
        .wait_for_spans(CALLER_TRACE, |s| {
            s.iter().any(|s| s.name == "llm.list_models")
        })
        .await;
    stack.ai.stop();
    let list = one(&spans, "", "llm.list_models");
    assert_eq!(list.kind, Kind::Client);
    assert_eq!(list.int_attr("llm.models"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers() {
    let mut stack = Stack::start(Mode::Normal, &[]).await;
    let r = reqwest::get(stack.ai.url("/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    // A poll without a caller's trace starts none.
    assert!(!r.headers().contains_key("traceresponse"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["default_provider"], "ollama");
    stack.ai.stop();
}
