//! The backend's settings, parsed once from the environment at start. A
//! value that does not parse is an error naming the variable and the value.

use std::net::SocketAddr;
use std::time::Duration;

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

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
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let invalid = |variable: &'static str, value: &str, reason: String| ConfigError {
            variable,
            value: value.to_owned(),
            reason,
        };
        let bind_text = get("AUTOBOT_BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind = bind_text.parse().map_err(|e: std::net::AddrParseError| {
            invalid("AUTOBOT_BIND", &bind_text, e.to_string())
        })?;
        let http_url = |variable: &'static str, text: String| -> Result<Url, ConfigError> {
            let url = Url::parse(&text).map_err(|e| invalid(variable, &text, e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid(
                    variable,
                    &text,
                    "expected an http:// or https:// URL with a host".into(),
                ));
            }
            Ok(url)
        };
        let with_default = |variable: &'static str, default: &str| {
            http_url(
                variable,
                get(variable).unwrap_or_else(|| default.to_owned()),
            )
        };
        let millis = |variable: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match get(variable) {
                None => Ok(Duration::from_millis(default)),
                Some(v) => match v.parse::<u64>() {
                    Ok(0) => Err(invalid(variable, &v, "must be at least 1".into())),
                    Ok(ms) => Ok(Duration::from_millis(ms)),
                    Err(e) => Err(invalid(variable, &v, e.to_string())),
                },
            }
        };
        let redis_url = get("AUTOBOT_REDIS_URL").unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
        if let Err(e) = redis::Client::open(redis_url.as_str()) {
            // The value may hold a password: name the variable, not the value.
            return Err(invalid(
                "AUTOBOT_REDIS_URL",
                &autobot_tracing::redact::redact_url_str(&redis_url),
                e.to_string(),
            ));
        }
        Ok(Self {
            bind,
            ai_stack_url: with_default("AUTOBOT_AI_STACK_URL", DEFAULT_AI_STACK_URL)?,
            browser_url: with_default("AUTOBOT_BROWSER_URL", DEFAULT_BROWSER_URL)?,
            pki_url: with_default("AUTOBOT_PKI_URL", DEFAULT_PKI_URL)?,
            npu_url: get("AUTOBOT_NPU_URL")
                .map(|v| http_url("AUTOBOT_NPU_URL", v))
                .transpose()?,
            redis_url,
            upstream_timeout: millis("AUTOBOT_UPSTREAM_TIMEOUT_MS", DEFAULT_UPSTREAM_TIMEOUT_MS)?,
            health_timeout: millis("AUTOBOT_HEALTH_TIMEOUT_MS", DEFAULT_HEALTH_TIMEOUT_MS)?,
            npu_timeout: millis("AUTOBOT_NPU_TIMEOUT_MS", DEFAULT_NPU_TIMEOUT_MS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
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
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        for (var, value) in [
            ("AUTOBOT_BIND", "8001"),
            ("AUTOBOT_AI_STACK_URL", "not a url"),
            ("AUTOBOT_BROWSER_URL", "ftp://h/"),
            ("AUTOBOT_PKI_URL", "http//x"),
            ("AUTOBOT_NPU_URL", "nope"),
            ("AUTOBOT_REDIS_URL", "mongodb://h"),
            ("AUTOBOT_UPSTREAM_TIMEOUT_MS", "-1"),
            ("AUTOBOT_HEALTH_TIMEOUT_MS", "0"),
        ] {
            let e = cfg(&[(var, value)]).unwrap_err();
            assert_eq!(e.variable, var);
            assert!(e.to_string().contains(var), "{e}");
        }
    }

    #[test]
    fn a_redis_password_is_not_repeated_in_the_error() {
        let e = cfg(&[("AUTOBOT_REDIS_URL", "mongodb://u:hunter2@h")]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
