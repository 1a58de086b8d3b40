//! The ai-stack's settings, parsed once from the environment at start. A
//! value that does not parse is an error naming the variable and the value.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError, whole_number_in};
use autobot_wire::chat::{ChatRequest, Provider};
use url::Url;

pub const DEFAULT_BIND: &str = "0.0.0.0:8080";
pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_OLLAMA_MODEL: &str = "llama3.2";
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// Default cap of `max_tokens`, and what a request without one is sent with.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
const MAX_MAX_TOKENS: u32 = 1_000_000;

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
    /// AUTOBOT_LLM_PROVIDERS: the providers callers may name (default: the
    /// default provider alone).
    pub providers: Vec<Provider>,
    /// AUTOBOT_LLM_MODELS: the models served (default: the default model).
    pub models: Vec<String>,
    /// AUTOBOT_LLM_MAX_TOKENS: the most a request may ask for, and what a
    /// request that names no `max_tokens` is sent with.
    pub max_tokens: u32,
}

/// A chat request the limits let through, with what it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub provider: Provider,
    pub model: String,
    pub max_tokens: u32,
}

impl ServiceConfig for Config {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        let mut cfg = Self {
            bind: env.bind(DEFAULT_BIND)?,
            default_provider: env.parse_or("AUTOBOT_LLM_PROVIDER", Provider::Ollama)?,
            timeout: env.millis("AUTOBOT_LLM_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)?,
            trace_content: env.bool("AUTOBOT_TRACE_LLM_CONTENT", false)?,
            ollama_url: env.http_url_or("AUTOBOT_OLLAMA_URL", DEFAULT_OLLAMA_URL)?,
            openai_base_url: env.http_url_or("AUTOBOT_OPENAI_BASE_URL", DEFAULT_OPENAI_BASE_URL)?,
            openai_api_key: ApiKey::new(env.get("OPENAI_API_KEY").unwrap_or_default()),
            default_model: env.get("AUTOBOT_LLM_MODEL"),
            providers: Vec::new(),
            models: Vec::new(),
            max_tokens: env
                .parse_with("AUTOBOT_LLM_MAX_TOKENS", |v| {
                    whole_number_in(v, 1, MAX_MAX_TOKENS)
                })?
                .unwrap_or(DEFAULT_MAX_TOKENS),
        };
        let default_provider = cfg.default_provider;
        cfg.providers = env
            .parse_with("AUTOBOT_LLM_PROVIDERS", |v| {
                let providers = list(v)
                    .map(str::parse)
                    .collect::<Result<Vec<Provider>, _>>()?;
                if !providers.contains(&default_provider) {
                    return Err(format!(
                        "must include the default provider {default_provider} (AUTOBOT_LLM_PROVIDER)"
                    ));
                }
                Ok(providers)
            })?
            .unwrap_or_else(|| vec![default_provider]);
        let default_model = cfg.default_model_for(default_provider);
        cfg.models = env
            .parse_with("AUTOBOT_LLM_MODELS", |v| {
                let models: Vec<String> = list(v).map(str::to_owned).collect();
                if !models.contains(&default_model) {
                    return Err(format!(
                        "must include the default model {default_model:?} (AUTOBOT_LLM_MODEL)"
                    ));
                }
                Ok(models)
            })?
            .unwrap_or_else(|| vec![default_model]);
        Ok(cfg)
    }

    fn bind(&self) -> SocketAddr {
        self.bind
    }
}

/// A comma- (or space-) separated list, empty items skipped.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

impl Config {
    /// What `request` runs with, or why it may not run (a 400 that names
    /// the limit): a provider outside AUTOBOT_LLM_PROVIDERS, a model outside
    /// AUTOBOT_LLM_MODELS, `max_tokens` over AUTOBOT_LLM_MAX_TOKENS.
    pub fn admit(&self, request: &ChatRequest) -> Result<Admitted, String> {
        let provider = request.provider.unwrap_or(self.default_provider);
        self.serves(provider)?;
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.default_model_for(provider));
        if !self.models.contains(&model) {
            return Err(format!(
                "model: {:?} is not served here (AUTOBOT_LLM_MODELS: {})",
                model.chars().take(100).collect::<String>(),
                self.models.join(", ")
            ));
        }
        let max_tokens = match request.max_tokens {
            Some(n) if n > self.max_tokens => {
                return Err(format!(
                    "max_tokens: {n} is over the limit of {} (AUTOBOT_LLM_MAX_TOKENS)",
                    self.max_tokens
                ));
            }
            Some(n) => n,
            None => self.max_tokens,
        };
        Ok(Admitted {
            provider,
            model,
            max_tokens,
        })
    }

    /// `Err` naming AUTOBOT_LLM_PROVIDERS when `provider` is not served.
    pub fn serves(&self, provider: Provider) -> Result<(), String> {
        if self.providers.contains(&provider) {
            return Ok(());
        }
        let served: Vec<&str> = self.providers.iter().map(|p| p.as_str()).collect();
        Err(format!(
            "provider: {provider} is not served here (AUTOBOT_LLM_PROVIDERS: {})",
            served.join(", ")
        ))
    }

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
        assert_eq!(c.providers, [Provider::Ollama]);
        assert_eq!(c.models, [DEFAULT_OLLAMA_MODEL]);
        assert_eq!(c.max_tokens, DEFAULT_MAX_TOKENS);
    }

    fn ask(
        provider: Option<Provider>,
        model: Option<&str>,
        max_tokens: Option<u32>,
    ) -> ChatRequest {
        ChatRequest {
            messages: Vec::new(),
            provider,
            model: model.map(str::to_owned),
            max_tokens,
            ..Default::default()
        }
    }

    #[test]
    fn only_the_listed_providers_and_models_are_served_within_the_token_cap() {
        let c = cfg(&[
            ("AUTOBOT_LLM_MODEL", "llama-test"),
            ("AUTOBOT_LLM_PROVIDERS", "ollama, openai"),
            ("AUTOBOT_LLM_MODELS", "llama-test gpt-test"),
            ("AUTOBOT_LLM_MAX_TOKENS", "100"),
        ])
        .unwrap();
        assert_eq!(
            c.admit(&ask(None, None, None)),
            Ok(Admitted {
                provider: Provider::Ollama,
                model: "llama-test".into(),
                max_tokens: 100
            }),
            "no max_tokens: the cap is sent"
        );
        let openai = c
            .admit(&ask(Some(Provider::Openai), Some("gpt-test"), Some(7)))
            .unwrap();
        assert_eq!((openai.provider, openai.max_tokens), (Provider::Openai, 7));
        assert_eq!(
            c.admit(&ask(None, Some("gpt-4"), None)).unwrap_err(),
            r#"model: "gpt-4" is not served here (AUTOBOT_LLM_MODELS: llama-test, gpt-test)"#
        );
        assert_eq!(
            c.admit(&ask(None, None, Some(101))).unwrap_err(),
            "max_tokens: 101 is over the limit of 100 (AUTOBOT_LLM_MAX_TOKENS)"
        );
        // openai's default model (gpt-4o-mini) is not listed.
        assert!(c.admit(&ask(Some(Provider::Openai), None, None)).is_err());

        let alone = cfg(&[]).unwrap();
        assert_eq!(
            alone
                .admit(&ask(
                    Some(Provider::Openai),
                    Some(DEFAULT_OLLAMA_MODEL),
                    None
                ))
                .unwrap_err(),
            "provider: openai is not served here (AUTOBOT_LLM_PROVIDERS: ollama)"
        );
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
                ("AUTOBOT_LLM_PROVIDERS", "openai"),
                ("AUTOBOT_LLM_PROVIDERS", "ollama,bard"),
                ("AUTOBOT_LLM_MODELS", "gpt-4"),
                ("AUTOBOT_LLM_MAX_TOKENS", "0"),
                ("AUTOBOT_LLM_MAX_TOKENS", "lots"),
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
                r#"AUTOBOT_LLM_PROVIDERS="openai" is not valid: must include the default provider ollama (AUTOBOT_LLM_PROVIDER)"#,
                r#"AUTOBOT_LLM_MODELS="gpt-4" is not valid: must include the default model "llama3.2" (AUTOBOT_LLM_MODEL)"#,
                r#"AUTOBOT_LLM_MAX_TOKENS="0" is not valid: must be between 1 and 1000000"#,
            ],
        );
    }
}
