//! A STAND-IN LLM server, for tests and the local run: it runs no model. It speaks the
//! real wire formats the client libraries expect — Ollama's `/api/chat`
//! (JSON, and NDJSON when `stream` is true) and `/api/tags`, OpenAI's
//! `/v1/chat/completions` and `/v1/models` — and records every request's
//! headers and body. Its reply is computed from the prompt: when the prompt
//! lists numbered sources (`[1] …`) it answers with source 1, otherwise it
//! echoes the last user message ("echo: …"); its token counts are the words
//! it saw and said.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
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
pub struct Shared {
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Recorded>>>,
    /// Keep and log every request (tests, the local run); off for benchmarks.
    record: bool,
}

pub struct StandIn {
    pub addr: SocketAddr,
    shared: Shared,
}

pub const FAILURE_MESSAGE: &str = "model exploded while loading";

impl Shared {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode: Arc::new(Mutex::new(mode)),
            seen: Arc::default(),
            record: true,
        }
    }

    /// Answers without keeping or logging the requests: a benchmark sends
    /// hundreds of thousands, and the stand-in must not be what it measures
    /// (bench/product.sh).
    pub fn quiet(mut self) -> Self {
        self.record = false;
        self
    }

    /// Ollama's and OpenAI's routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/chat", post(ollama_chat))
            .route("/api/tags", get(ollama_tags))
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/models", get(openai_models))
            .with_state(self.clone())
    }
}

impl StandIn {
    /// Serves on a free loopback port from this runtime (tests).
    pub async fn start(mode: Mode) -> Self {
        let shared = Shared::new(mode);
        let app = shared.router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, shared }
    }

    pub fn ollama_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn seen(&self) -> Vec<Recorded> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The only request received on `path`.
    pub fn only(&self, path: &str) -> Recorded {
        let seen: Vec<Recorded> = self.seen().into_iter().filter(|r| r.path == path).collect();
        assert_eq!(seen.len(), 1, "requests on {path}: {seen:?}");
        seen.into_iter().next().unwrap()
    }
}

/// What the stand-in answers a list of chat messages with.
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
        .map(|c| c.split_whitespace().count() as u64)
        .sum()
}

pub fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

async fn record(shared: &Shared, uri: &Uri, headers: HeaderMap, body: &Value) -> Mode {
    let mode = *shared.mode.lock().unwrap();
    if shared.record {
        let traceparent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        eprintln!(
            "stand-in LLM (not a model): {} traceparent={traceparent}",
            uri.path()
        );
        shared.seen.lock().unwrap().push(Recorded {
            path: uri.path().to_owned(),
            headers,
            body: body.clone(),
        });
    }
    if let Mode::Slow(d) = mode {
        tokio::time::sleep(d).await;
    }
    mode
}

async fn ollama_chat(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if record(&shared, &uri, headers, &body).await == Mode::Fail {
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
    if body["stream"] == Value::Bool(true) {
        // NDJSON: one object per word, then the final object with the counts.
        let mut lines = String::new();
        let pieces: Vec<String> = reply.split(' ').map(str::to_owned).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let text = if i + 1 < pieces.len() {
                format!("{piece} ")
            } else {
                piece.clone()
            };
            lines.push_str(
                &json!({
                    "model": model,
                    "created_at": "2026-11-21T17:00:00Z",
                    "message": { "role": "assistant", "content": text },
                    "done": false,
                })
                .to_string(),
            );
            lines.push('\n');
        }
        lines.push_str(&last("").to_string());
        lines.push('\n');
        return Response::builder()
            .header("content-type", "application/x-ndjson")
            .body(Body::from(lines))
            .unwrap();
    }
    Json(last(&reply)).into_response()
}

async fn ollama_tags(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    if record(&shared, &uri, headers, &Value::Null).await == Mode::Fail {
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
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorized = headers.contains_key("authorization");
    if record(&shared, &uri, headers, &body).await == Mode::Fail {
        return openai_error(StatusCode::INTERNAL_SERVER_ERROR, FAILURE_MESSAGE);
    }
    if !authorized {
        return openai_error(StatusCode::UNAUTHORIZED, "no API key");
    }
    let reply = reply_for(&body["messages"]);
    let prompt = prompt_tokens(&body["messages"]);
    let completion = words(&reply);
    let model = format!("{}-2026-01-01", body["model"].as_str().unwrap_or_default());
    if body["stream"] == Value::Bool(true) {
        // Server-sent events: one delta per word, the usage chunk, [DONE].
        let chunk = |choices: Value, usage: Value| {
            format!(
                "data: {}\n\n",
                json!({
                    "id": "chatcmpl-standin", "object": "chat.completion.chunk",
                    "created": 1_763_744_400u32, "model": model,
                    "choices": choices, "usage": usage
                })
            )
        };
        let mut events = String::new();
        let pieces: Vec<&str> = reply.split(' ').collect();
        for (i, piece) in pieces.iter().enumerate() {
            let text = if i + 1 < pieces.len() {
                format!("{piece} ")
            } else {
                (*piece).to_owned()
            };
            events.push_str(&chunk(
                json!([{ "index": 0, "delta": { "role": "assistant", "content": text }, "finish_reason": null }]),
                Value::Null,
            ));
        }
        let include_usage = body["stream_options"]["include_usage"] == Value::Bool(true);
        if include_usage {
            events.push_str(&chunk(
                json!([]),
                json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion }),
            ));
        }
        events.push_str("data: [DONE]\n\n");
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from(events))
            .unwrap();
    }
    Json(json!({
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 1_763_744_400u32,
        "model": model,
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

async fn openai_models(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    if record(&shared, &uri, headers, &Value::Null).await == Mode::Fail {
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
