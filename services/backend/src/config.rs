//! The backend's settings, parsed once from the environment at start. A
//! value that does not parse is an error naming the variable and the value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError};
use url::Url;

use crate::auth::ApiAuth;

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
    /// AUTOBOT_API_KEYS_FILE (the operator keys), or AUTOBOT_AUTH=off.
    pub auth: ApiAuth,
    /// AUTOBOT_TLS_CERT, AUTOBOT_TLS_KEY, AUTOBOT_TLS_CA: the peers are
    /// called over https with this certificate, trusting only this CA.
    pub tls: Option<Arc<autobot_tls::TlsSource>>,
}

/// The variable naming the operator keys file.
pub const API_KEYS_FILE_VAR: &str = "AUTOBOT_API_KEYS_FILE";
/// `off` runs the API without keys (local experiments only).
pub const AUTH_VAR: &str = "AUTOBOT_AUTH";

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
            auth: read_auth(&env)?,
            tls: match autobot_tls::service_tls_files(&env)? {
                Some(files) => Some(autobot_tls::TlsSource::load(files, true)?),
                None => None,
            },
        })
        .and_then(Self::peers_over_https_with_tls)
    }

    fn bind(&self) -> SocketAddr {
        self.bind
    }
}

impl Config {
    /// With TLS on, the peers serve only TLS: an http:// URL would fail at
    /// every call, so it stops the start instead.
    fn peers_over_https_with_tls(self) -> Result<Self, SettingError> {
        if self.tls.is_none() {
            return Ok(self);
        }
        let peers = [
            ("AUTOBOT_AI_STACK_URL", Some(&self.ai_stack_url)),
            ("AUTOBOT_BROWSER_URL", Some(&self.browser_url)),
            ("AUTOBOT_PKI_URL", Some(&self.pki_url)),
            ("AUTOBOT_NPU_URL", self.npu_url.as_ref()),
        ];
        for (var, url) in peers {
            if let Some(url) = url
                && url.scheme() != "https"
            {
                return Err(SettingError::new(
                    var,
                    url.as_str(),
                    "must be an https:// URL while AUTOBOT_TLS_CERT is set: the services serve only TLS",
                ));
            }
        }
        Ok(self)
    }
}

/// AUTOBOT_AUTH and AUTOBOT_API_KEYS_FILE: a file that cannot be read or
/// has a bad line stops the start, naming the file and the line.
fn read_auth<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<ApiAuth, SettingError> {
    let on = env.parse_with(AUTH_VAR, |v| match v.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".to_owned()),
    })?;
    if on == Some(false) {
        return Ok(ApiAuth::Off);
    }
    let Some(path) = env.get(API_KEYS_FILE_VAR) else {
        return Err(SettingError::withheld(
            API_KEYS_FILE_VAR,
            "unset: every /api/* route but /api/health needs an operator key; make one with `autobot-backend keygen NAME ROLE` and put its line in this file (or set AUTOBOT_AUTH=off for a local experiment)",
        ));
    };
    crate::auth::read_keys_file(&PathBuf::from(&path))
        .map_err(|e| SettingError::new(API_KEYS_FILE_VAR, &path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autobot_settings::checks::{assert_error_texts, assert_refused};
    use autobot_settings::pairs;

    /// The settings with `vars`, and AUTOBOT_AUTH=off unless they set up keys.
    fn cfg(vars: &[(&str, &str)]) -> Result<Config, SettingError> {
        let mut all = vars.to_vec();
        if !vars
            .iter()
            .any(|(k, _)| *k == AUTH_VAR || *k == API_KEYS_FILE_VAR)
        {
            all.push((AUTH_VAR, "off"));
        }
        Config::from_lookup(pairs(&all))
    }

    #[test]
    fn keys_are_required_unless_auth_is_off() {
        let e = Config::from_lookup(pairs(&[])).unwrap_err();
        assert_eq!(e.variable, API_KEYS_FILE_VAR);
        assert!(e.to_string().starts_with("AUTOBOT_API_KEYS_FILE is not valid: unset: every /api/* route but /api/health needs an operator key"), "{e}");
        assert_eq!(cfg(&[("AUTOBOT_AUTH", "OFF")]).unwrap().auth, ApiAuth::Off);
        let e = cfg(&[("AUTOBOT_AUTH", "maybe")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"AUTOBOT_AUTH="maybe" is not valid: expected on or off"#
        );
    }

    #[test]
    fn a_keys_file_error_names_the_file_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-keys");
        std::fs::write(&path, "# operators\nalice admin\n").unwrap();
        let file = path.display().to_string();
        let e = cfg(&[(API_KEYS_FILE_VAR, &file)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "AUTOBOT_API_KEYS_FILE={file:?} is not valid: line 2: expected `<name> <role> <sha256 of the key>`, found 2 fields"
            )
        );
        let missing = dir.path().join("nope").display().to_string();
        let e = cfg(&[(API_KEYS_FILE_VAR, &missing)]).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "AUTOBOT_API_KEYS_FILE={missing:?} is not valid: cannot read the file:"
            )),
            "{e}"
        );
    }

    #[test]
    fn with_tls_every_peer_is_called_over_https() {
        let ca = autobot_testkit::pki::TestCa::new("project");
        let me = ca.issue_local("backend");
        let tls = me.service_env();
        let mut vars: Vec<(&str, &str)> = tls.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let e = cfg(&vars).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"AUTOBOT_AI_STACK_URL="http://127.0.0.1:8080/" is not valid: must be an https:// URL while AUTOBOT_TLS_CERT is set: the services serve only TLS"#
        );
        vars.extend([
            ("AUTOBOT_AI_STACK_URL", "https://10.0.0.24:8080"),
            ("AUTOBOT_BROWSER_URL", "https://10.0.0.25:3000"),
            ("AUTOBOT_PKI_URL", "https://10.0.0.20:8002"),
        ]);
        assert!(cfg(&vars).unwrap().tls.is_some());
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
