//! Ollama through ollama-rs. ollama-rs (on its own reqwest 0.12) cannot take
//! our traced client, but its `headers` feature sends fixed headers with each
//! request: each call clones the client with the current trace context
//! injected, so Ollama (or a traced proxy in front of it) sees the
//! `llm.inference` span as its parent. No HTTP CLIENT span is made under
//! `llm.inference` for Ollama; the `llm.inference` span is the client span.

use autobot_wire::chat::{ChatMessage, ModelInfo, Provider, Role, Usage};
use futures::StreamExt;
use ollama_rs::Ollama;
use ollama_rs::error::OllamaError;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::chat::{ChatMessage as OllamaMessage, ChatMessageResponse};
use ollama_rs::models::ModelOptions;
use url::Url;

use super::error::{LlmError, chain, without_url};
use super::{Call, Completion};

const PROVIDER: Provider = Provider::Ollama;

pub(crate) struct OllamaProvider {
    base: Ollama,
    endpoint: String,
}

impl OllamaProvider {
    pub fn new(url: &Url) -> Self {
        // ollama-rs appends "api/chat" to the URL as it is: keep a trailing slash.
        let mut url = url.clone();
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Self {
            endpoint: autobot_tracing::redact::redact_url(&url),
            base: Ollama::from_url(url),
        }
    }

    /// A client whose requests carry the current trace context.
    fn traced(&self) -> Ollama {
        let mut headers = http::HeaderMap::new();
        autobot_tracing::inject_headers(&autobot_tracing::current_context(), &mut headers);
        let mut ollama = self.base.clone();
        ollama.set_headers(Some(headers));
        ollama
    }

    pub async fn chat(&self, call: &Call<'_>) -> Result<Completion, LlmError> {
        let messages = call.messages.iter().map(to_ollama).collect();
        let mut request = ChatMessageRequest::new(call.model.to_owned(), messages);
        if call.temperature.is_some() || call.max_tokens.is_some() {
            let mut options = ModelOptions::default();
            if let Some(t) = call.temperature {
                options = options.temperature(t);
            }
            if let Some(n) = call.max_tokens {
                options = options.num_predict(i32::try_from(n).unwrap_or(i32::MAX));
            }
            request = request.options(options);
        }
        let ollama = self.traced();
        if !call.stream {
            let answer = ollama
                .send_chat_messages(request)
                .await
                .map_err(|e| self.error(e))?;
            return Ok(completion(answer.message.content.clone(), &answer));
        }
        // Streaming (NDJSON, one JSON object per line): the reply is the
        // concatenation; the last object (done=true) carries the counts.
        let mut stream = ollama
            .send_chat_messages_stream(request)
            .await
            .map_err(|e| self.error(e))?;
        let mut reply = String::new();
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(|()| LlmError::InvalidResponse {
                provider: PROVIDER,
                detail: "the NDJSON stream broke off".into(),
            })?;
            reply.push_str(&chunk.message.content);
            if chunk.done {
                return Ok(completion(reply, &chunk));
            }
        }
        Err(LlmError::InvalidResponse {
            provider: PROVIDER,
            detail: "the NDJSON stream ended without a final (done) object".into(),
        })
    }

    pub async fn models(&self) -> Result<Vec<ModelInfo>, LlmError> {
        let models = self
            .traced()
            .list_local_models()
            .await
            .map_err(|e| self.error(e))?;
        Ok(models
            .into_iter()
            .map(|m| ModelInfo { id: m.name })
            .collect())
    }

    fn error(&self, e: OllamaError) -> LlmError {
        match e {
            OllamaError::ReqwestError(e) if e.is_connect() || e.is_request() => {
                LlmError::Unreachable {
                    provider: PROVIDER,
                    endpoint: self.endpoint.clone(),
                    detail: chain(&e),
                }
            }
            OllamaError::ReqwestError(e) => LlmError::InvalidResponse {
                provider: PROVIDER,
                detail: chain(&e),
            },
            // A non-2xx answer: ollama-rs hands over the body, `{"error": "..."}`.
            OllamaError::Other(body) => LlmError::Provider {
                provider: PROVIDER,
                status: None,
                message: error_message(&body),
            },
            OllamaError::InternalError(e) => LlmError::Provider {
                provider: PROVIDER,
                status: None,
                message: e.message,
            },
            OllamaError::JsonError(e) => LlmError::InvalidResponse {
                provider: PROVIDER,
                detail: e.to_string(),
            },
            other => LlmError::InvalidResponse {
                provider: PROVIDER,
                detail: without_url(&other.to_string()),
            },
        }
    }
}

fn to_ollama(m: &ChatMessage) -> OllamaMessage {
    let content = m.content.clone();
    match m.role {
        Role::System => OllamaMessage::system(content),
        Role::User => OllamaMessage::user(content),
        Role::Assistant => OllamaMessage::assistant(content),
    }
}

fn completion(reply: String, last: &ChatMessageResponse) -> Completion {
    Completion {
        reply,
        model: last.model.clone(),
        usage: last.final_data.as_ref().map(|d| Usage {
            prompt_tokens: u32::try_from(d.prompt_eval_count).unwrap_or(u32::MAX),
            completion_tokens: u32::try_from(d.eval_count).unwrap_or(u32::MAX),
        }),
        response_id: None,
    }
}

/// Ollama's error body is `{"error": "..."}`; anything else is passed on as text (bounded).
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            let text = body.trim();
            if text.is_empty() {
                "empty error answer".to_owned()
            } else {
                text.chars().take(500).collect()
            }
        })
}
