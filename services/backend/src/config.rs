//! The backend's settings, parsed once from the environment at start. A
//! value that does not parse is an error naming the variable and the value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError, whole_number_in};
use autobot_tracing::config::TracingConfig;
use autobot_tracing::http::TrustedNetworks;
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
/// Entries the NPU job stream may hold (processed ones are trimmed first).
pub const DEFAULT_JOBS_MAX_QUEUED: usize = 100_000;
/// A peer's answer is read up to this many bytes (the browser's pages are
/// cut at 5 MiB before they are extracted; answers are far smaller).
pub const DEFAULT_MAX_PEER_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

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
    /// AUTOBOT_JOBS_MAX_PAYLOAD_BYTES: a larger NPU job is refused (413).
    pub jobs_max_payload_bytes: usize,
    /// AUTOBOT_JOBS_REPLY_CONNECTIONS: Redis connections waiting for NPU results at once.
    pub jobs_reply_connections: usize,
    /// AUTOBOT_JOBS_MAX_QUEUED: entries the job stream holds; a job that finds
    /// it full of unprocessed ones is refused (503).
    pub jobs_max_queued: usize,
    /// AUTOBOT_MAX_PEER_RESPONSE_BYTES: a peer's answer larger than this is refused (502).
    pub max_peer_response_bytes: usize,
    /// AUTOBOT_API_KEYS_FILE (the operator keys), or AUTOBOT_AUTH=off.
    pub auth: ApiAuth,
    /// AUTOBOT_TLS_CERT, AUTOBOT_TLS_KEY, AUTOBOT_TLS_CA: the peers are
    /// called over https with this certificate, trusting only this CA.
    pub tls: Option<Arc<autobot_tls::TlsSource>>,
    /// AutoBot's page (`GET /`) and how the browser traces it.
    pub web: WebConfig,
}

/// What AutoBot's page needs to trace the browser (routes/page.rs).
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// AUTOBOT_WEB_OTLP_URL: the OTLP/HTTP traces URL the user's browser
    /// sends the page's spans to (Jaeger's 4318, `/v1/traces` added when the
    /// URL has no path). Unset: the page is not traced, the backend starts
    /// the trace.
    pub otlp_url: Option<Url>,
    /// The services' own sampling (AUTOBOT_TRACE_SAMPLE_RATE; 0 when
    /// OTEL_SDK_DISABLED): the page decides as the backend would.
    pub sample_rate: f64,
    /// deployment.environment of the page's spans (AUTOBOT_ENV).
    pub environment: String,
}

/// The path an OTLP/HTTP traces URL ends in.
const OTLP_TRACES_PATH: &str = "/v1/traces";

fn web_config(
    env: &Env<impl Fn(&str) -> Option<String>>,
    tracing: &TracingConfig,
) -> Result<WebConfig, SettingError> {
    let otlp_url = env.http_url("AUTOBOT_WEB_OTLP_URL")?.map(|mut url| {
        if url.path().is_empty() || url.path() == "/" {
            url.set_path(OTLP_TRACES_PATH);
        }
        url
    });
    Ok(WebConfig {
        otlp_url,
        sample_rate: if tracing.sdk_disabled {
            0.0
        } else {
            tracing.sample_rate
        },
        environment: tracing.environment.clone(),
    })
}

/// The variable naming the operator keys file.
pub const API_KEYS_FILE_VAR: &str = "AUTOBOT_API_KEYS_FILE";
/// `off` runs the API without keys (local experiments only).
pub const AUTH_VAR: &str = "AUTOBOT_AUTH";

impl ServiceConfig for Config {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        // The tracing settings once more, for the page's sampling (the runner reads them too).
        let tracing = TracingConfig::from_lookup(&lookup)?;
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
            web: web_config(&env, &tracing)?,
            jobs_max_payload_bytes: env
                .parse_with("AUTOBOT_JOBS_MAX_PAYLOAD_BYTES", |v| {
                    whole_number_in(v, 1024usize, 512 * 1024 * 1024)
                })?
                .unwrap_or(autobot_jobs::DEFAULT_MAX_PAYLOAD_BYTES),
            jobs_reply_connections: env
                .parse_with("AUTOBOT_JOBS_REPLY_CONNECTIONS", |v| {
                    whole_number_in(v, 1usize, 10_000)
                })?
                .unwrap_or(autobot_jobs::DEFAULT_REPLY_CONNECTIONS),
            jobs_max_queued: env
                .parse_with("AUTOBOT_JOBS_MAX_QUEUED", |v| {
                    whole_number_in(v, 1usize, 100_000_000)
                })?
                .unwrap_or(DEFAULT_JOBS_MAX_QUEUED),
            max_peer_response_bytes: env
                .parse_with("AUTOBOT_MAX_PEER_RESPONSE_BYTES", |v| {
                    whole_number_in(v, 1024usize, 1024 * 1024 * 1024)
                })?
                .unwrap_or(DEFAULT_MAX_PEER_RESPONSE_BYTES),
            trusted_context_from: env.parse_or_with(
                "AUTOBOT_TRUSTED_CONTEXT_FROM",
                "",
                TrustedNetworks::parse,
            )?,
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
        assert_eq!(c.jobs_max_payload_bytes, 2 * 1024 * 1024);
        assert_eq!(c.jobs_reply_connections, 16);
        assert_eq!(c.jobs_max_queued, 100_000);
        assert_eq!(c.max_peer_response_bytes, 16 * 1024 * 1024);
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
                ("AUTOBOT_JOBS_MAX_PAYLOAD_BYTES", "10"),
                ("AUTOBOT_JOBS_REPLY_CONNECTIONS", "0"),
                ("AUTOBOT_JOBS_MAX_QUEUED", "lots"),
                ("AUTOBOT_MAX_PEER_RESPONSE_BYTES", "1"),
                ("AUTOBOT_TRUSTED_CONTEXT_FROM", "the frontend"),
            ],
        );
    }

    #[test]
    fn the_page_traces_when_an_otlp_url_is_named() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.web.otlp_url, None);
        assert_eq!(c.web.sample_rate, 1.0);
        let c = cfg(&[
            ("AUTOBOT_WEB_OTLP_URL", "http://172.16.168.23:4318"),
            ("AUTOBOT_TRACE_SAMPLE_RATE", "0.25"),
            ("AUTOBOT_ENV", "prod"),
        ])
        .unwrap();
        assert_eq!(
            c.web.otlp_url.unwrap().as_str(),
            "http://172.16.168.23:4318/v1/traces",
            "the traces path is added to a bare endpoint"
        );
        assert_eq!(
            (c.web.sample_rate, c.web.environment.as_str()),
            (0.25, "prod")
        );
        let c = cfg(&[(
            "AUTOBOT_WEB_OTLP_URL",
            "https://otel.example/collector/v1/traces",
        )])
        .unwrap();
        assert_eq!(
            c.web.otlp_url.unwrap().as_str(),
            "https://otel.example/collector/v1/traces"
        );
        let c = cfg(&[("OTEL_SDK_DISABLED", "true")]).unwrap();
        assert_eq!(c.web.sample_rate, 0.0);
        assert_refused(cfg, &[("AUTOBOT_WEB_OTLP_URL", "vm3:4318")]);
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
