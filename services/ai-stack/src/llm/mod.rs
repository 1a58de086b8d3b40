//! The LLM gateway: one `llm.inference` CLIENT span per call, whichever
//! provider answers. The span carries AutoBot's `llm.*` attributes and the
//! GenAI semantic-convention ones (`gen_ai.*`); prompt and reply text only
//! when AUTOBOT_TRACE_LLM_CONTENT=true.

mod error;
mod metrics;
mod ollama;
mod openai;

use std::sync::Arc;
use std::time::Instant;

use autobot_tracing::KeyValue;
use autobot_tracing::span::OtelSpan;
use autobot_wire::chat::{ChatMessage, ChatRequest, ChatResponse, ModelsResponse, Provider, Usage};
use tracing::Instrument;
use tracing::field::Empty;

use crate::config::{Admitted, Config};
pub use error::LlmError;

/// What a provider answered.
#[derive(Debug)]
pub(crate) struct Completion {
    pub reply: String,
    pub model: String,
    pub usage: Option<Usage>,
    /// The server's id of the answer, when it gives one (OpenAI's `id`).
    pub response_id: Option<String>,
}

/// A chat call as the providers see it: everything resolved.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub model: &'a str,
    pub messages: &'a [ChatMessage],
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stream: bool,
}

/// Both providers, built once at start.
pub struct Gateway {
    cfg: Arc<Config>,
    /// Each provider's host and port (`server.*`, the metrics' `host`), read once.
    endpoints: [(String, u16); 2],
    ollama: ollama::OllamaProvider,
    openai: openai::OpenAiProvider,
    metrics: metrics::LlmMetrics,
}

impl Gateway {
    pub fn new(cfg: Arc<Config>) -> Result<Self, autobot_tracing::http::ClientBuildError> {
        let endpoint = |url: &url::Url| {
            (
                url.host_str().unwrap_or_default().to_owned(),
                url.port_or_known_default().unwrap_or_default(),
            )
        };
        Ok(Self {
            endpoints: [endpoint(&cfg.ollama_url), endpoint(&cfg.openai_base_url)],
            ollama: ollama::OllamaProvider::new(&cfg.ollama_url),
            openai: openai::OpenAiProvider::new(&cfg.openai_base_url, &cfg.openai_api_key)?,
            metrics: metrics::LlmMetrics::new(),
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Runs one chat completion inside its `llm.inference` span, with the
    /// provider, model and token cap the limits admitted (`Config::admit`).
    pub async fn chat(
        &self,
        request: &ChatRequest,
        admitted: Admitted,
    ) -> Result<ChatResponse, LlmError> {
        let Admitted {
            provider,
            model,
            max_tokens,
        } = admitted;
        let call = Call {
            model: &model,
            messages: &request.messages,
            temperature: request.temperature,
            max_tokens: Some(max_tokens),
            stream: request.stream.unwrap_or(false),
        };
        let (host, port) = self.endpoint(provider);
        // On the OpenTelemetry API (autobot_tracing::span): attributes are
        // built only for a kept span; a `tracing` span through the bridge
        // formatted and collected all 24 fields at every rate.
        let span = OtelSpan::client("llm.inference");
        if span.is_recording() {
            let mut attributes = Vec::with_capacity(16);
            attributes.extend([
                KeyValue::new("llm.provider", provider.as_str()),
                KeyValue::new("llm.model", model.clone()),
                KeyValue::new("llm.streaming", call.stream),
                KeyValue::new("llm.prompt_messages", call.messages.len() as i64),
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", provider.as_str()),
                KeyValue::new("gen_ai.request.model", model.clone()),
                KeyValue::new("gen_ai.request.stream", call.stream),
                KeyValue::new("server.address", host.to_owned()),
                KeyValue::new("server.port", i64::from(port)),
            ]);
            if let Some(t) = call.temperature {
                attributes.push(KeyValue::new("llm.temperature", f64::from(t)));
                attributes.push(KeyValue::new("gen_ai.request.temperature", f64::from(t)));
            }
            if let Some(n) = call.max_tokens {
                attributes.push(KeyValue::new("gen_ai.request.max_tokens", i64::from(n)));
            }
            if self.cfg.trace_content {
                attributes.push(KeyValue::new(
                    "gen_ai.input.messages",
                    serde_json::to_string(call.messages).unwrap_or_default(),
                ));
            }
            span.set_attributes(attributes);
        }
        let started = Instant::now();
        let outcome = span
            .wrap(async {
                let work = async {
                    match provider {
                        Provider::Ollama => self.ollama.chat(&call).await,
                        Provider::Openai => self.openai.chat(&call).await,
                    }
                };
                match tokio::time::timeout(self.cfg.timeout, work).await {
                    Ok(result) => result,
                    Err(_) => Err(LlmError::Timeout {
                        provider,
                        timeout_ms: self.cfg.timeout.as_millis() as u64,
                    }),
                }
            })
            .await;
        let elapsed = started.elapsed();
        span.set_attribute(KeyValue::new("llm.duration_ms", elapsed.as_millis() as i64));
        self.metrics.chat(
            provider,
            &model,
            host,
            elapsed,
            outcome
                .as_ref()
                .map(|done| done.usage)
                .map_err(LlmError::error_type),
            span.exemplar(),
        );
        match outcome {
            Ok(done) => {
                if span.is_recording() {
                    let mut attributes = vec![
                        KeyValue::new("llm.response_length", done.reply.chars().count() as i64),
                        KeyValue::new("gen_ai.response.model", done.model.clone()),
                    ];
                    if let Some(id) = &done.response_id {
                        attributes.push(KeyValue::new("gen_ai.response.id", id.clone()));
                    }
                    if let Some(u) = done.usage {
                        attributes.extend([
                            KeyValue::new("llm.prompt_tokens", i64::from(u.prompt_tokens)),
                            KeyValue::new("llm.completion_tokens", i64::from(u.completion_tokens)),
                            KeyValue::new("gen_ai.usage.input_tokens", i64::from(u.prompt_tokens)),
                            KeyValue::new(
                                "gen_ai.usage.output_tokens",
                                i64::from(u.completion_tokens),
                            ),
                        ]);
                    }
                    if self.cfg.trace_content {
                        attributes.push(KeyValue::new(
                            "gen_ai.output.messages",
                            serde_json::json!([{"role": "assistant", "content": done.reply}])
                                .to_string(),
                        ));
                    }
                    span.set_attributes(attributes);
                }
                Ok(ChatResponse {
                    reply: done.reply,
                    model: done.model,
                    provider,
                    usage: done.usage.unwrap_or_default(),
                })
            }
            Err(e) => {
                let e = e.scrubbed(self.cfg.openai_api_key.expose());
                span.record_error(e.error_type(), &e.to_string());
                let _current = span.attach();
                tracing::warn!(error.type = e.error_type(), "LLM call failed: {e}");
                Err(e)
            }
        }
    }

    /// The provider's model list, inside an `llm.list_models` CLIENT span.
    pub async fn models(&self, provider: Provider) -> Result<ModelsResponse, LlmError> {
        let (host, port) = self.endpoint(provider);
        let span = tracing::info_span!(
            "llm.list_models",
            otel.kind = "client",
            llm.provider = provider.as_str(),
            gen_ai.provider.name = provider.as_str(),
            server.address = %host,
            server.port = i64::from(port),
            llm.models = Empty,
        );
        let outcome = async {
            let work = async {
                match provider {
                    Provider::Ollama => self.ollama.models().await,
                    Provider::Openai => self.openai.models().await,
                }
            };
            match tokio::time::timeout(self.cfg.timeout, work).await {
                Ok(result) => result,
                Err(_) => Err(LlmError::Timeout {
                    provider,
                    timeout_ms: self.cfg.timeout.as_millis() as u64,
                }),
            }
        }
        .instrument(span.clone())
        .await;
        match outcome {
            Ok(models) => {
                span.record("llm.models", models.len() as i64);
                Ok(ModelsResponse { provider, models })
            }
            Err(e) => {
                let e = e.scrubbed(self.cfg.openai_api_key.expose());
                autobot_tracing::record_error_message(&span, e.error_type(), &e.to_string());
                Err(e)
            }
        }
    }

    fn endpoint(&self, provider: Provider) -> (&str, u16) {
        let (host, port) = match provider {
            Provider::Ollama => &self.endpoints[0],
            Provider::Openai => &self.endpoints[1],
        };
        (host, *port)
    }
}
