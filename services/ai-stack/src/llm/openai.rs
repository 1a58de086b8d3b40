//! Any OpenAI-compatible server through async-openai. async-openai's
//! `middleware` feature lets a tower service send its requests: ours sends
//! them through AutoBot's traced client, so each call gets an HTTP CLIENT
//! span `POST` under `llm.inference`, and the trace context is injected from
//! inside that span. The API key travels only in the Authorization header,
//! which no span and no log line records.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    ChatCompletionStreamOptions, CreateChatCompletionRequest,
};
use autobot_wire::chat::{ChatMessage, ModelInfo, Provider, Role, Usage};
use futures::StreamExt;
use url::Url;

use super::error::{LlmError, chain, without_url};
use super::{Call, Completion};
use crate::config::ApiKey;

const PROVIDER: Provider = Provider::Openai;

pub(crate) struct OpenAiProvider {
    client: Client<OpenAIConfig>,
    endpoint: String,
}

impl OpenAiProvider {
    pub fn new(base: &Url, key: &ApiKey) -> Result<Self, autobot_tracing::http::ClientBuildError> {
        let api_base = base.as_str().trim_end_matches('/').to_owned();
        let config = OpenAIConfig::new()
            .with_api_base(api_base)
            .with_api_key(key.expose());
        let http = autobot_tracing::http::client()?;
        // No retry layer: a failing provider is reported at once, and the
        // caller decides whether to try again.
        let service = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            async move {
                let request = factory.build().await?;
                http.execute(request).await.map_err(|e| match e {
                    reqwest_middleware::Error::Reqwest(e) => OpenAIError::Reqwest(e),
                    reqwest_middleware::Error::Middleware(e) => OpenAIError::Boxed(e.into()),
                })
            }
        });
        Ok(Self {
            client: Client::with_config(config).with_http_service(service),
            endpoint: autobot_tracing::redact::redact_url(base),
        })
    }

    pub async fn chat(&self, call: &Call<'_>) -> Result<Completion, LlmError> {
        let request = CreateChatCompletionRequest {
            model: call.model.to_owned(),
            messages: call.messages.iter().map(to_openai).collect(),
            temperature: call.temperature,
            max_completion_tokens: call.max_tokens,
            ..Default::default()
        };
        if call.stream {
            return self.chat_streamed(call, request).await;
        }
        let answer = self
            .client
            .chat()
            .create(request)
            .await
            .map_err(|e| self.error(e))?;
        let reply = answer
            .choices
            .first()
            .and_then(|c| c.message.content.clone())
            .ok_or_else(|| LlmError::InvalidResponse {
                provider: PROVIDER,
                detail: "the answer has no choice with text content".into(),
            })?;
        Ok(Completion {
            reply,
            response_id: Some(answer.id),
            model: answer.model,
            usage: answer.usage.map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
        })
    }

    /// Server-sent events, one delta per event; the usage comes in a last
    /// chunk (`stream_options.include_usage`), then `data: [DONE]`.
    async fn chat_streamed(
        &self,
        call: &Call<'_>,
        mut request: CreateChatCompletionRequest,
    ) -> Result<Completion, LlmError> {
        request.stream_options = Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            ..Default::default()
        });
        let mut stream = self
            .client
            .chat()
            .create_stream(request)
            .await
            .map_err(|e| self.error(e))?;
        let mut reply = String::new();
        let mut model = None;
        let mut response_id = None;
        let mut usage = None;
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(|e| self.error(e))?;
            if model.is_none() && !chunk.model.is_empty() {
                model = Some(chunk.model.clone());
                response_id = Some(chunk.id.clone());
            }
            for choice in &chunk.choices {
                if let Some(text) = &choice.delta.content {
                    reply.push_str(text);
                }
            }
            if let Some(u) = chunk.usage {
                usage = Some(Usage {
                    prompt_tokens: u.prompt_tokens,
                    completion_tokens: u.completion_tokens,
                });
            }
        }
        Ok(Completion {
            reply,
            model: model.unwrap_or_else(|| call.model.to_owned()),
            response_id,
            usage,
        })
    }

    pub async fn models(&self) -> Result<Vec<ModelInfo>, LlmError> {
        let list = self
            .client
            .models()
            .list()
            .await
            .map_err(|e| self.error(e))?;
        Ok(list
            .data
            .into_iter()
            .map(|m| ModelInfo { id: m.id })
            .collect())
    }

    fn error(&self, e: OpenAIError) -> LlmError {
        match e {
            OpenAIError::Reqwest(e) if e.is_connect() || (e.is_request() && !e.is_body()) => {
                LlmError::Unreachable {
                    provider: PROVIDER,
                    endpoint: self.endpoint.clone(),
                    detail: chain(&e),
                }
            }
            OpenAIError::Reqwest(e) => LlmError::InvalidResponse {
                provider: PROVIDER,
                detail: chain(&e),
            },
            OpenAIError::ApiError(e) => LlmError::Provider {
                provider: PROVIDER,
                status: Some(e.status_code.as_u16()),
                message: e.api_error.message,
            },
            OpenAIError::JSONDeserialize(e, _content) => LlmError::InvalidResponse {
                provider: PROVIDER,
                detail: e.to_string(),
            },
            OpenAIError::Boxed(e) => LlmError::Unreachable {
                provider: PROVIDER,
                endpoint: self.endpoint.clone(),
                detail: without_url(&autobot_tracing::error_chain(e.as_ref())),
            },
            other => LlmError::InvalidResponse {
                provider: PROVIDER,
                detail: without_url(&other.to_string()),
            },
        }
    }
}

fn to_openai(m: &ChatMessage) -> ChatCompletionRequestMessage {
    let content = m.content.clone();
    match m.role {
        Role::System => ChatCompletionRequestSystemMessage::from(content).into(),
        Role::User => ChatCompletionRequestUserMessage::from(content).into(),
        Role::Assistant => ChatCompletionRequestAssistantMessage::from(content).into(),
    }
}
