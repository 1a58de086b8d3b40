//! The ai-stack's settings, parsed once from the environment at start. A
//! value that does not parse is an error naming the variable and the value.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError};
use autobot_wire::chat::Provider;
use url::Url;

pub const DEFAULT_BIND: &str = "0.0.0.0:8080";
pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_OLLAMA_MODEL: &str = "llama3.2";
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;

/// The OpenAI key: never printed, never put in a span or a log line.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "ApiKey(unset)"
        } else {
            "ApiKey(<redacted>)"
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// AUTOBOT_BIND
    pub bind: SocketAddr,
    /// AUTOBOT_OLLAMA_URL
    pub ollama_url: Url,
    /// AUTOBOT_OPENAI_BASE_URL
    pub openai_base_url: Url,
    /// OPENAI_API_KEY
    pub openai_api_key: ApiKey,
    /// AUTOBOT_LLM_PROVIDER
    pub default_provider: Provider,
    /// AUTOBOT_LLM_MODEL: the default provider's default model.
    pub default_model: Option<String>,
    /// AUTOBOT_LLM_TIMEOUT_MS: the whole call to the provider, streamed or not.
    pub timeout: Duration,
    /// AUTOBOT_TRACE_LLM_CONTENT: put prompt and reply text in the span.
    pub trace_content: bool,
}

impl ServiceConfig for Config {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        Ok(Self {
            bind: env.bind(DEFAULT_BIND)?,
            default_provider: env.parse_or("AUTOBOT_LLM_PROVIDER", Provider::Ollama)?,
            timeout: env.millis("AUTOBOT_LLM_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)?,
            trace_content: env.bool("AUTOBOT_TRACE_LLM_CONTENT", false)?,
            ollama_url: env.http_url_or("AUTOBOT_OLLAMA_URL", DEFAULT_OLLAMA_URL)?,
            openai_base_url: env.http_url_or("AUTOBOT_OPENAI_BASE_URL", DEFAULT_OPENAI_BASE_URL)?,
            openai_api_key: ApiKey::new(env.get("OPENAI_API_KEY").unwrap_or_default()),
            default_model: env.get("AUTOBOT_LLM_MODEL"),
        })
    }

    fn bind(&self) -> SocketAddr {
        self.bind
    }
}

impl Config {
    /// The model a request without one is sent to.
    pub fn default_model_for(&self, provider: Provider) -> String {
        match (&self.default_model, provider) {
            (Some(m), p) if p == self.default_provider => m.clone(),
            (_, Provider::Ollama) => DEFAULT_OLLAMA_MODEL.to_owned(),
            (_, Provider::Openai) => DEFAULT_OPENAI_MODEL.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autobot_settings::checks::{assert_error_texts, assert_refused};
    use autobot_settings::pairs;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, SettingError> {
        Config::from_lookup(pairs(vars))
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.default_provider, Provider::Ollama);
        assert_eq!(c.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert!(!c.trace_content);
        assert_eq!(c.default_model_for(Provider::Openai), DEFAULT_OPENAI_MODEL);
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        assert_refused(
            cfg,
            &[
                ("AUTOBOT_BIND", "nowhere"),
                ("AUTOBOT_OLLAMA_URL", "ftp://x"),
                ("AUTOBOT_OPENAI_BASE_URL", "::"),
                ("AUTOBOT_LLM_PROVIDER", "bard"),
                ("AUTOBOT_LLM_TIMEOUT_MS", "soon"),
                ("AUTOBOT_LLM_TIMEOUT_MS", "0"),
                ("AUTOBOT_TRACE_LLM_CONTENT", "maybe"),
            ],
        );
    }

    #[test]
    fn the_key_never_prints() {
        let c = cfg(&[("OPENAI_API_KEY", "sk-live-123")]).unwrap();
        assert!(!format!("{c:?}").contains("sk-live-123"));
        assert_eq!(c.openai_api_key.expose(), "sk-live-123");
    }

    #[test]
    fn the_default_model_belongs_to_the_default_provider() {
        let c = cfg(&[
            ("AUTOBOT_LLM_PROVIDER", "openai"),
            ("AUTOBOT_LLM_MODEL", "m1"),
        ])
        .unwrap();
        assert_eq!(c.default_model_for(Provider::Openai), "m1");
        assert_eq!(c.default_model_for(Provider::Ollama), DEFAULT_OLLAMA_MODEL);
    }

    /// The exact texts an operator sees, pinned.
    #[test]
    fn error_texts_keep_their_wording() {
        assert_error_texts(
            cfg,
            &[
                r#"AUTOBOT_BIND="nowhere" is not valid: invalid socket address syntax (expected an IP address and a port, such as 0.0.0.0:8080)"#,
                r#"AUTOBOT_LLM_PROVIDER="bard" is not valid: unknown provider "bard" (expected "ollama" or "openai")"#,
                r#"AUTOBOT_LLM_TIMEOUT_MS="0" is not valid: must be at least 1"#,
                r#"AUTOBOT_TRACE_LLM_CONTENT="maybe" is not valid: expected true or false"#,
            ],
        );
    }
}
