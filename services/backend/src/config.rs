//! The backend's settings, parsed once from the environment at start. A
//! value that does not parse is an error naming the variable and the value.

use std::net::SocketAddr;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError};
use autobot_tracing::http::TrustedNetworks;
use url::Url;

pub const DEFAULT_BIND: &str = "0.0.0.0:8001";
pub const DEFAULT_AI_STACK_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_BROWSER_URL: &str = "http://127.0.0.1:3000";
pub const DEFAULT_PKI_URL: &str = "http://127.0.0.1:8002";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";
/// Longer than the ai-stack's own LLM timeout (120 s), so its 504 arrives first.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 130_000;
pub const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 2_000;
pub const DEFAULT_NPU_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Clone)]
pub struct Config {
    /// AUTOBOT_BIND
    pub bind: SocketAddr,
    /// AUTOBOT_AI_STACK_URL
    pub ai_stack_url: Url,
    /// AUTOBOT_BROWSER_URL
    pub browser_url: Url,
    /// AUTOBOT_PKI_URL
    pub pki_url: Url,
    /// AUTOBOT_NPU_URL: the npu-worker's HTTP API, checked by the cluster health when set.
    pub npu_url: Option<Url>,
    /// AUTOBOT_REDIS_URL (the credentials in it are never logged).
    pub redis_url: String,
    /// AUTOBOT_UPSTREAM_TIMEOUT_MS: a whole call to ai-stack, browser or pki-distributor.
    pub upstream_timeout: Duration,
    /// AUTOBOT_HEALTH_TIMEOUT_MS: one peer's health check.
    pub health_timeout: Duration,
    /// AUTOBOT_NPU_TIMEOUT_MS: how long a request waits for an NPU job's result.
    pub npu_timeout: Duration,
    /// AUTOBOT_TRUSTED_CONTEXT_FROM: networks whose callers keep their
    /// `tracestate` and `baggage` (everyone else's are dropped at the edge).
    pub trusted_context_from: TrustedNetworks,
}

impl ServiceConfig for Config {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        Ok(Self {
            bind: env.bind(DEFAULT_BIND)?,
            // The value may hold a password: an error shows it without.
            redis_url: env.parse_secret_or(
                "AUTOBOT_REDIS_URL",
                DEFAULT_REDIS_URL,
                autobot_tracing::redact::redact_url_str,
                |v| {
                    redis::Client::open(v)
                        .map(|_| v.to_owned())
                        .map_err(|e| e.to_string())
                },
            )?,
            ai_stack_url: env.http_url_or("AUTOBOT_AI_STACK_URL", DEFAULT_AI_STACK_URL)?,
            browser_url: env.http_url_or("AUTOBOT_BROWSER_URL", DEFAULT_BROWSER_URL)?,
            pki_url: env.http_url_or("AUTOBOT_PKI_URL", DEFAULT_PKI_URL)?,
            npu_url: env.http_url("AUTOBOT_NPU_URL")?,
            upstream_timeout: env
                .millis("AUTOBOT_UPSTREAM_TIMEOUT_MS", DEFAULT_UPSTREAM_TIMEOUT_MS)?,
            health_timeout: env.millis("AUTOBOT_HEALTH_TIMEOUT_MS", DEFAULT_HEALTH_TIMEOUT_MS)?,
            npu_timeout: env.millis("AUTOBOT_NPU_TIMEOUT_MS", DEFAULT_NPU_TIMEOUT_MS)?,
            trusted_context_from: env.parse_or_with(
                "AUTOBOT_TRUSTED_CONTEXT_FROM",
                "",
                TrustedNetworks::parse,
            )?,
        })
    }

    fn bind(&self) -> SocketAddr {
        self.bind
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
        assert_eq!(c.ai_stack_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(c.browser_url.as_str(), "http://127.0.0.1:3000/");
        assert_eq!(c.pki_url.as_str(), "http://127.0.0.1:8002/");
        assert!(c.npu_url.is_none());
        assert_eq!(c.redis_url, DEFAULT_REDIS_URL);
        assert!(c.trusted_context_from.is_empty(), "no caller is trusted");
        let c = cfg(&[("AUTOBOT_TRUSTED_CONTEXT_FROM", "172.16.168.21, 10.0.0.0/8")]).unwrap();
        assert_eq!(
            c.trusted_context_from.networks(),
            ["172.16.168.21/32", "10.0.0.0/8"]
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        assert_refused(
            cfg,
            &[
                ("AUTOBOT_BIND", "8001"),
                ("AUTOBOT_AI_STACK_URL", "not a url"),
                ("AUTOBOT_BROWSER_URL", "ftp://h/"),
                ("AUTOBOT_PKI_URL", "http//x"),
                ("AUTOBOT_NPU_URL", "nope"),
                ("AUTOBOT_REDIS_URL", "mongodb://h"),
                ("AUTOBOT_UPSTREAM_TIMEOUT_MS", "-1"),
                ("AUTOBOT_HEALTH_TIMEOUT_MS", "0"),
                ("AUTOBOT_TRUSTED_CONTEXT_FROM", "the frontend"),
            ],
        );
    }

    #[test]
    fn a_redis_password_is_not_repeated_in_the_error() {
        let e = cfg(&[("AUTOBOT_REDIS_URL", "mongodb://u:hunter2@h")]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    /// The exact texts an operator sees, pinned.
    #[test]
    fn error_texts_keep_their_wording() {
        assert_error_texts(
            cfg,
            &[
                r#"AUTOBOT_BIND="8001" is not valid: invalid socket address syntax (expected an IP address and a port, such as 0.0.0.0:8001)"#,
                r#"AUTOBOT_BROWSER_URL="ftp://h/" is not valid: expected an http:// or https:// URL with a host"#,
                r#"AUTOBOT_NPU_URL="nope" is not valid: relative URL without a base"#,
                r#"AUTOBOT_HEALTH_TIMEOUT_MS="0" is not valid: must be at least 1"#,
                r#"AUTOBOT_UPSTREAM_TIMEOUT_MS="-1" is not valid: invalid digit found in string"#,
            ],
        );
    }
}
