//! LLM spending: the ai-stack serves only the models of AUTOBOT_LLM_MODELS
//! and the providers of AUTOBOT_LLM_PROVIDERS, and caps `max_tokens` at
//! AUTOBOT_LLM_MAX_TOKENS. Anything else is a 400 that names the limit,
//! straight to the ai-stack and through the backend, and no call reaches
//! the LLM server (the stand-in counts them). An allowed request without
//! `max_tokens` is sent with the cap.

use autobot_standins::llm::{Mode, StandIn};
use autobot_testkit::process::Launch;
use serde_json::{Value, json};

use crate::web::{NO_TRACES, client};

const CAP: u32 = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_outside_the_list_or_too_many_tokens_is_a_400_and_no_llm_call() {
    let llm = StandIn::start(Mode::Normal).await;
    let ai = Launch::workspace_bin("autobot-ai-stack")
        .env("AUTOBOT_JAEGER_ENDPOINT", NO_TRACES)
        .env("AUTOBOT_OLLAMA_URL", llm.ollama_url())
        .env("AUTOBOT_OPENAI_BASE_URL", llm.openai_url())
        .env("OPENAI_API_KEY", "sk-must-not-be-spent")
        .env("AUTOBOT_LLM_MODEL", "standin")
        .env("AUTOBOT_LLM_MAX_TOKENS", CAP.to_string())
        .start();
    let backend = Launch::workspace_bin("autobot-backend")
        .env("AUTOBOT_JAEGER_ENDPOINT", NO_TRACES)
        .env("AUTOBOT_AI_STACK_URL", ai.url(""))
        .env("AUTOBOT_AUTH", "off")
        .start();
    let message = json!([{"role": "user", "content": "spend"}]);
    let refused: [(&str, Value, &str); 5] = [
        (
            "a model outside the list",
            json!({"messages": message, "model": "gpt-4o"}),
            "AUTOBOT_LLM_MODELS",
        ),
        (
            "max_tokens over the cap",
            json!({"messages": message, "max_tokens": 100_000}),
            "over the limit of 256 (AUTOBOT_LLM_MAX_TOKENS)",
        ),
        (
            "max_tokens one over the cap",
            json!({"messages": message, "max_tokens": CAP + 1}),
            "AUTOBOT_LLM_MAX_TOKENS",
        ),
        (
            "a provider not served",
            json!({"messages": message, "provider": "openai", "model": "standin"}),
            "AUTOBOT_LLM_PROVIDERS",
        ),
        (
            "an allowed model and a forbidden count",
            json!({"messages": message, "model": "standin", "max_tokens": u32::MAX}),
            "AUTOBOT_LLM_MAX_TOKENS",
        ),
    ];
    for (path, via) in [
        (ai.url("/v1/chat"), "ai-stack"),
        (backend.url("/api/chat"), "backend"),
    ] {
        for (what, body, names) in &refused {
            let r = client().post(&path).json(body).send().await.unwrap();
            assert_eq!(r.status(), 400, "{what} via {via}");
            let answer: Value = r.json().await.unwrap();
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(error.contains(names), "{what} via {via}: {error}");
        }
    }
    let r = client()
        .get(ai.url("/v1/models?provider=openai"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "listing another provider's models");
    assert!(
        llm.seen().is_empty(),
        "a refused request reached the LLM server: {:?}",
        llm.seen().iter().map(|r| &r.path).collect::<Vec<_>>()
    );

    // Allowed, without max_tokens: sent with the cap.
    let r = client()
        .post(backend.url("/api/chat"))
        .json(&json!({"messages": message}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let calls = llm.seen();
    assert_eq!(calls.len(), 1, "one call for one allowed request");
    assert_eq!(calls[0].path, "/api/chat");
    assert_eq!(calls[0].body["model"], "standin");
    assert_eq!(calls[0].body["options"]["num_predict"], CAP);
}
