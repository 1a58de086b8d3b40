//! The worker's settings, read once from the environment (and `.env`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError};
use autobot_tracing::redact::redact_url_str;

/// Default listen address: the npu-worker's port on its VM.
pub const DEFAULT_BIND: &str = "0.0.0.0:8081";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// Everything the worker needs to start.
#[derive(Clone)]
pub struct Config {
    /// AUTOBOT_REDIS_URL. May hold a password: never printed (see `Debug`).
    pub redis_url: String,
    /// AUTOBOT_NPU_MODEL_DIR; `None`: no model, embed jobs are refused.
    pub model_dir: Option<PathBuf>,
    /// AUTOBOT_NPU_CLAIM_IDLE_MS: jobs pending this long on a silent worker are taken over.
    pub claim_idle: Duration,
    /// AUTOBOT_NPU_MAX_DELIVERIES: deliveries before a job is dead-lettered.
    pub max_deliveries: u64,
    /// AUTOBOT_BIND.
    pub bind: SocketAddr,
    /// AUTOBOT_NPU_CONSUMER_NAME, default `{host}-{pid}`.
    pub consumer_name: String,
    /// AUTOBOT_JOBS_MAX_PAYLOAD_BYTES: a larger job is dead-lettered unread.
    pub max_payload_bytes: usize,
    /// AUTOBOT_TLS_*: with a `rediss://` URL, the CA Redis's certificate
    /// must chain to and the client certificate presented to it.
    pub redis_tls: Option<autobot_tls::TlsFiles>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("redis", &redact_url_str(&self.redis_url))
            .field("model_dir", &self.model_dir)
            .field("claim_idle", &self.claim_idle)
            .field("max_deliveries", &self.max_deliveries)
            .field("bind", &self.bind)
            .field("consumer_name", &self.consumer_name)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("redis_tls", &self.redis_tls.is_some())
            .finish()
    }
}

impl ServiceConfig for Config {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        // A whole number, 0 refused with `zero`.
        let at_least_1 = |zero: &'static str| {
            move |v: &str| match v.parse::<u64>() {
                Ok(0) => Err(zero.to_owned()),
                Ok(n) => Ok(n),
                Err(e) => Err(e.to_string()),
            }
        };
        Ok(Self {
            // The URL may carry a password: an error shows it without.
            redis_url: env.parse_secret_or(
                "AUTOBOT_REDIS_URL",
                DEFAULT_REDIS_URL,
                redact_url_str,
                |v| {
                    redis::Client::open(v)
                        .map(|_| v.to_owned())
                        .map_err(|e| e.to_string())
                },
            )?,
            claim_idle: Duration::from_millis(
                env.parse_with(
                    "AUTOBOT_NPU_CLAIM_IDLE_MS",
                    at_least_1("must be at least 1 (milliseconds)"),
                )?
                .unwrap_or(30_000),
            ),
            max_deliveries: env
                .parse_with(
                    "AUTOBOT_NPU_MAX_DELIVERIES",
                    at_least_1("must be at least 1"),
                )?
                .unwrap_or(5),
            bind: env.bind(DEFAULT_BIND)?,
            model_dir: env.get("AUTOBOT_NPU_MODEL_DIR").map(PathBuf::from),
            consumer_name: env
                .get("AUTOBOT_NPU_CONSUMER_NAME")
                .unwrap_or_else(autobot_jobs::default_consumer_name),
            max_payload_bytes: env
                .parse_with("AUTOBOT_JOBS_MAX_PAYLOAD_BYTES", |v| {
                    autobot_settings::whole_number_in(v, 1024usize, 512 * 1024 * 1024)
                })?
                .unwrap_or(autobot_jobs::DEFAULT_MAX_PAYLOAD_BYTES),
            redis_tls: autobot_tls::service_tls_files(&env)?,
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

    fn from(vars: &[(&str, &str)]) -> Result<Config, SettingError> {
        Config::from_lookup(pairs(vars))
    }

    #[test]
    fn defaults() {
        let c = from(&[]).unwrap();
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379/0");
        assert_eq!(c.bind.to_string(), "0.0.0.0:8081");
        assert_eq!(c.claim_idle, Duration::from_millis(30_000));
        assert_eq!(c.max_deliveries, 5);
        assert_eq!(c.max_payload_bytes, 2 * 1024 * 1024);
        assert!(c.model_dir.is_none());
        assert!(
            c.consumer_name
                .ends_with(&format!("-{}", std::process::id()))
        );
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_value() {
        assert_refused(
            from,
            &[
                ("AUTOBOT_NPU_CLAIM_IDLE_MS", "soon"),
                ("AUTOBOT_NPU_MAX_DELIVERIES", "0"),
                ("AUTOBOT_BIND", "8081"),
                ("AUTOBOT_JOBS_MAX_PAYLOAD_BYTES", "12"),
            ],
        );
    }

    #[test]
    fn a_redis_password_never_shows() {
        let e = from(&[("AUTOBOT_REDIS_URL", "rediss+nope://u:hunter2@h/0")]).unwrap_err();
        assert_eq!(e.variable, "AUTOBOT_REDIS_URL");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let c = from(&[("AUTOBOT_REDIS_URL", "redis://u:hunter2@10.0.0.3:6379/0")]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    /// The exact texts an operator sees, pinned.
    #[test]
    fn error_texts_keep_their_wording() {
        assert_error_texts(
            from,
            &[
                r#"AUTOBOT_BIND="8081" is not valid: invalid socket address syntax (expected an IP address and a port, such as 0.0.0.0:8081)"#,
                r#"AUTOBOT_NPU_CLAIM_IDLE_MS="0" is not valid: must be at least 1 (milliseconds)"#,
                r#"AUTOBOT_NPU_CLAIM_IDLE_MS="soon" is not valid: invalid digit found in string"#,
                r#"AUTOBOT_NPU_MAX_DELIVERIES="0" is not valid: must be at least 1"#,
            ],
        );
    }
}
