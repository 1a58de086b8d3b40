//! A STAND-IN LLM server: Ollama's `/api/chat` (JSON, and NDJSON when
//! `stream` is true) and `/api/tags`, OpenAI's `/v1/chat/completions` and
//! `/v1/models`. It records what it receives (headers included) so tests can
//! look, and can be told to fail or to be slow.
//!
//! Its answer: when the prompt lists numbered sources (`[1] …`), it answers
//! with source 1; otherwise it echoes the last user message (`echo: …`).
//! Token counts are the words it saw and said.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// How the stand-in behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Answers 500 with an error message in the provider's format.
    Fail,
    /// Waits this long before answering.
    Slow(Duration),
}

/// The message of [`Mode::Fail`] answers.
pub const FAILURE_MESSAGE: &str = "model exploded while loading";

/// One request the stand-in received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The stand-in's state: its mode and what it received.
#[derive(Clone)]
pub struct LlmStandIn {
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl Default for LlmStandIn {
    fn default() -> Self {
        Self::new(Mode::Normal)
    }
}

impl LlmStandIn {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode: Arc::new(Mutex::new(mode)),
            seen: Arc::default(),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode lock") = mode;
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().expect("seen lock").clone()
    }

    /// The requests received on `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.seen().into_iter().filter(|r| r.path == path).collect()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/chat", post(ollama_chat))
            .route("/api/tags", get(ollama_tags))
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/models", get(openai_models))
            .with_state(self.clone())
    }

    async fn record(&self, uri: &Uri, headers: HeaderMap, body: Value) -> Mode {
        let traceparent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        eprintln!(
            "stand-in LLM (not a model): {} traceparent={traceparent}",
            uri.path()
        );
        self.seen.lock().expect("seen lock").push(Recorded {
            path: uri.path().to_owned(),
            headers,
            body,
        });
        let mode = *self.mode.lock().expect("mode lock");
        if let Mode::Slow(d) = mode {
            tokio::time::sleep(d).await;
        }
        mode
    }
}

/// The stand-in's answer to a conversation.
pub fn reply_for(messages: &Value) -> String {
    let last_user = messages
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str())
        .next_back()
        .unwrap_or("");
    match last_user.lines().find_map(|l| l.trim().strip_prefix("[1]")) {
        Some(source) => format!(
            "(stand-in LLM, no model) According to source [1]: {}",
            source.trim()
        ),
        None => format!("echo: {last_user}"),
    }
}

/// Words in all messages: the stand-in's "prompt tokens".
pub fn prompt_tokens(messages: &Value) -> u64 {
    messages
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .map(words)
        .sum()
}

pub fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

async fn ollama_chat(
    State(s): State<LlmStandIn>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if s.record(&uri, headers, body.clone()).await == Mode::Fail {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": FAILURE_MESSAGE })),
        )
            .into_response();
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let reply = reply_for(&body["messages"]);
    let last = |content: &str| {
        json!({
            "model": model,
            "created_at": "2026-11-21T17:00:00Z",
            "message": { "role": "assistant", "content": content },
            "done": true,
            "done_reason": "stop",
            "total_duration": 5_000_000u64,
            "load_duration": 1_000_000u64,
            "prompt_eval_count": prompt_tokens(&body["messages"]),
            "prompt_eval_duration": 1_000_000u64,
            "eval_count": words(&reply),
            "eval_duration": 3_000_000u64,
        })
    };
    if body["stream"] != Value::Bool(true) {
        return Json(last(&reply)).into_response();
    }
    // NDJSON: one object per word, then the final object with the counts.
    let pieces: Vec<&str> = reply.split(' ').collect();
    let mut lines = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        let text = if i + 1 < pieces.len() {
            format!("{piece} ")
        } else {
            (*piece).to_owned()
        };
        let chunk = json!({
            "model": model,
            "created_at": "2026-11-21T17:00:00Z",
            "message": { "role": "assistant", "content": text },
            "done": false,
        });
        lines.push_str(&chunk.to_string());
        lines.push('\n');
    }
    lines.push_str(&last("").to_string());
    lines.push('\n');
    ([("content-type", "application/x-ndjson")], lines).into_response()
}

async fn ollama_tags(State(s): State<LlmStandIn>, uri: Uri, headers: HeaderMap) -> Response {
    if s.record(&uri, headers, Value::Null).await == Mode::Fail {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": FAILURE_MESSAGE })),
        )
            .into_response();
    }
    Json(json!({
        "models": [
            { "name": "llama-test:latest", "model": "llama-test:latest", "modified_at": "2026-11-01T00:00:00Z", "size": 1234, "digest": "abc" },
            { "name": "qwen-test:1b", "model": "qwen-test:1b", "modified_at": "2026-11-02T00:00:00Z", "size": 999, "digest": "def" }
        ]
    }))
    .into_response()
}

fn openai_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "message": message, "type": "server_error", "param": null, "code": null } })),
    )
        .into_response()
}

async fn openai_chat(
    State(s): State<LlmStandIn>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorized = headers.contains_key("authorization");
    if s.record(&uri, headers, body.clone()).await == Mode::Fail {
        return openai_error(StatusCode::INTERNAL_SERVER_ERROR, FAILURE_MESSAGE);
    }
    if !authorized {
        return openai_error(StatusCode::UNAUTHORIZED, "no API key");
    }
    let reply = reply_for(&body["messages"]);
    let prompt = prompt_tokens(&body["messages"]);
    let completion = words(&reply);
    Json(json!({
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 1_763_744_400u32,
        "model": format!("{}-2026-01-01", body["model"].as_str().unwrap_or_default()),
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": reply, "refusal": null },
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion }
    }))
    .into_response()
}

async fn openai_models(State(s): State<LlmStandIn>, uri: Uri, headers: HeaderMap) -> Response {
    if s.record(&uri, headers, Value::Null).await == Mode::Fail {
        return openai_error(StatusCode::INTERNAL_SERVER_ERROR, FAILURE_MESSAGE);
    }
    Json(json!({
        "object": "list",
        "data": [
            { "id": "gpt-test", "object": "model", "created": 1_700_000_000u32, "owned_by": "standin" }
        ]
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_source_one_or_echoes() {
        let research = json!([{ "role": "user", "content": "Sources:\n[1] The traceparent header carries it.\n[2] Other.\n\nQuestion: which header?" }]);
        assert_eq!(
            reply_for(&research),
            "(stand-in LLM, no model) According to source [1]: The traceparent header carries it."
        );
        let chat = json!([{ "role": "system", "content": "be brief" }, { "role": "user", "content": "hello there" }]);
        assert_eq!(reply_for(&chat), "echo: hello there");
        assert_eq!(prompt_tokens(&chat), 4);
    }
}
