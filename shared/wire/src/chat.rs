//! Wire types for the chat flow: the backend's `POST /api/chat` and the
//! ai-stack's `POST /v1/chat` take the same body and give the same answer;
//! `GET /v1/models` lists what a provider serves.
use serde::{Deserialize, Serialize};

/// Which LLM server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Ollama's own API (`/api/chat`), through ollama-rs.
    Ollama,
    /// Any OpenAI-compatible server (`/chat/completions`), through async-openai.
    Openai,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::Openai => "openai",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ollama" => Ok(Self::Ollama),
            "openai" => Ok(Self::Openai),
            other => Err(format!(
                "unknown provider {other:?} (expected \"ollama\" or \"openai\")"
            )),
        }
    }
}

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// `POST /api/chat` and `POST /v1/chat`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// The provider's model name; the ai-stack's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Ask the provider for a streamed answer (Ollama's NDJSON form); the
    /// reply is still returned whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

/// The most messages one request may carry.
pub const MAX_MESSAGES: usize = 256;

impl ChatRequest {
    /// Checks what serde cannot: an answer for the caller naming the problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.messages.is_empty() {
            return Err("messages: at least one message is required".into());
        }
        if self.messages.len() > MAX_MESSAGES {
            return Err(format!(
                "messages: at most {MAX_MESSAGES} messages, got {}",
                self.messages.len()
            ));
        }
        if let Some(i) = self
            .messages
            .iter()
            .position(|m| m.content.trim().is_empty())
        {
            return Err(format!("messages[{i}].content: must not be empty"));
        }
        if let Some(model) = &self.model
            && model.trim().is_empty()
        {
            return Err("model: must not be empty when given".into());
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(format!("temperature: must be between 0 and 2, got {t}"));
        }
        if self.max_tokens == Some(0) {
            return Err("max_tokens: must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// The answer of `POST /api/chat` and `POST /v1/chat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub reply: String,
    /// The model that answered, as the provider names it.
    pub model: String,
    pub provider: Provider,
    pub usage: Usage,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelsResponse {
    pub provider: Provider,
    pub models: Vec<ModelInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ChatRequest, String> {
        serde_json::from_str::<ChatRequest>(json)
            .map_err(|e| e.to_string())
            .and_then(|r| r.validate().map(|()| r))
    }

    #[test]
    fn a_full_request_parses() {
        let r = parse(r#"{"messages":[{"role":"user","content":"hi"}],"model":"m","provider":"openai","temperature":0.2,"max_tokens":5,"stream":true}"#).unwrap();
        assert_eq!(r.provider, Some(Provider::Openai));
        assert_eq!(r.max_tokens, Some(5));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (json, needle) in [
            (r#"{"messages":[]}"#, "at least one message"),
            (
                r#"{"messages":[{"role":"user","content":"  "}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"messages":[{"role":"robot","content":"x"}]}"#,
                "unknown variant `robot`",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"provider":"bard"}"#,
                "unknown variant `bard`",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"temperature":9}"#,
                "temperature",
            ),
            (r#"{"messages":"hi"}"#, "invalid type"),
            (r#"{}"#, "missing field `messages`"),
        ] {
            let e = parse(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
