//! Telemetry settings, read once from the environment (and `.env`).
//!
//! Every AUTOBOT_* variable wins over its OTEL_* twin; every value that does
//! not parse is a [`ConfigError`] naming the variable and the value, so a
//! service stops at start instead of running untraced by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use url::Url;

/// Where spans go when nothing is configured: Jaeger's OTLP/gRPC port on this host.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4317";

/// A variable that is set but does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable}={value:?} is not valid: {reason}")]
    Invalid {
        variable: String,
        value: String,
        reason: String,
    },
    /// The value is withheld because it may hold a secret (an auth header).
    #[error("{variable} is not valid: {reason}")]
    InvalidSecret { variable: String, reason: String },
    #[error(".env file could not be read: {0}")]
    DotEnv(String),
}

impl ConfigError {
    pub fn invalid(variable: &str, value: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            variable: variable.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// The variable this error is about, if any.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Self::Invalid { variable, .. } | Self::InvalidSecret { variable, .. } => Some(variable),
            Self::DotEnv(_) => None,
        }
    }
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (Jaeger port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (Jaeger port 4318, path /v1/traces).
    HttpProtobuf,
}

/// Format of the log lines written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which propagation formats are injected and extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagators {
    pub tracecontext: bool,
    pub baggage: bool,
    pub b3_single: bool,
    pub b3_multi: bool,
}

/// W3C, baggage and B3 as the single `b3` header. The OpenTelemetry spec has
/// a B3 propagator inject the single header by default; the four `X-B3-*`
/// headers cost about 9 000 instructions per hop (docs/performance.md) and
/// are sent only with `OTEL_PROPAGATORS=...,b3multi`. Both are always extracted.
impl Default for Propagators {
    fn default() -> Self {
        Self {
            tracecontext: true,
            baggage: true,
            b3_single: true,
            b3_multi: false,
        }
    }
}

/// An OTLP request header; the value is hidden from `Debug` (it is usually a credential).
#[derive(Clone, PartialEq, Eq)]
pub struct ExportHeader {
    pub name: String,
    pub value: String,
}

impl fmt::Debug for ExportHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.name)
    }
}

/// Batch span processor bounds (OTEL_BSP_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub scheduled_delay: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            // 2048 (the SDK's default) dropped 0.2–2.5 % of a service's spans at
            // 14 000 req/s in the two-hop benchmark; 8192 dropped none (+2.4 MB).
            max_queue_size: 8192,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(1000),
        }
    }
}

/// Everything `init` needs, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// OTEL_SERVICE_NAME; when unset the name passed to `init` is used.
    pub service_name_override: Option<String>,
    /// Full OTLP endpoint; for HTTP it ends with /v1/traces.
    pub endpoint: Url,
    pub protocol: Protocol,
    pub headers: Vec<ExportHeader>,
    pub export_timeout: Duration,
    /// Ratio for ParentBased(TraceIdRatioBased), 0.0..=1.0.
    pub sample_rate: f64,
    /// Export over OTLP (false when OTEL_TRACES_EXPORTER=none).
    pub otlp: bool,
    /// Also print finished spans to stdout.
    pub console: bool,
    /// OTEL_SDK_DISABLED=true: no span is recorded or exported.
    pub sdk_disabled: bool,
    pub environment: String,
    /// OTEL_RESOURCE_ATTRIBUTES, in order.
    pub resource_attributes: Vec<(String, String)>,
    pub propagators: Propagators,
    pub batch: BatchSettings,
    pub log_format: LogFormat,
    /// RUST_LOG-style filter for log lines (not for spans).
    pub log_filter: String,
    /// Upper bound for the final flush at shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            service_name_override: None,
            endpoint: Url::parse(DEFAULT_ENDPOINT).expect("default endpoint is a URL"),
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            export_timeout: Duration::from_secs(10),
            sample_rate: 1.0,
            otlp: true,
            console: false,
            sdk_disabled: false,
            environment: "development".to_owned(),
            resource_attributes: Vec::new(),
            propagators: Propagators::default(),
            batch: BatchSettings::default(),
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// Loads `.env` from the working directory (or a parent) into the process
/// environment; variables already set win. Call before threads are spawned.
pub fn load_dotenv() -> Result<(), ConfigError> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => Err(ConfigError::DotEnv(e.to_string())),
    }
}

impl TracingConfig {
    /// Reads the process environment, after loading `.env`.
    pub fn from_env() -> Result<Self, ConfigError> {
        load_dotenv()?;
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (tests pass a map instead of the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let first = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|n| get(n).map(|v| (*n, v.trim().to_owned())))
        };
        let mut cfg = Self {
            service_name_override: get("OTEL_SERVICE_NAME").map(|v| v.trim().to_owned()),
            ..Self::default()
        };
        if let Some((var, v)) = first(&["OTEL_SDK_DISABLED"]) {
            cfg.sdk_disabled = parse_bool(var, &v)?;
        }

        // Endpoint: AUTOBOT_JAEGER_ENDPOINT, else the OTEL twins. The signal-specific
        // OTEL variable is a full URL (used verbatim); the others are base URLs.
        let (endpoint_var, endpoint_raw, verbatim) = if let Some(v) = get("AUTOBOT_JAEGER_ENDPOINT")
        {
            ("AUTOBOT_JAEGER_ENDPOINT", v, false)
        } else if let Some(v) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v, true)
        } else if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            ("OTEL_EXPORTER_OTLP_ENDPOINT", v, false)
        } else {
            (
                "AUTOBOT_JAEGER_ENDPOINT",
                DEFAULT_ENDPOINT.to_owned(),
                false,
            )
        };
        let endpoint = parse_endpoint(endpoint_var, endpoint_raw.trim())?;

        cfg.protocol = match first(&[
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]) {
            Some((var, v)) => parse_protocol(var, &v)?,
            None => infer_protocol(&endpoint),
        };
        cfg.endpoint = match cfg.protocol {
            Protocol::HttpProtobuf if !verbatim => with_traces_path(endpoint),
            _ => endpoint,
        };

        if let Some((var, v)) = first(&[
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ]) {
            cfg.headers = parse_headers(var, &v)?;
        }
        if let Some((var, v)) = first(&[
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]) {
            cfg.export_timeout = parse_millis(var, &v)?;
        }

        cfg.sample_rate = match get("AUTOBOT_TRACE_SAMPLE_RATE") {
            Some(v) => parse_rate("AUTOBOT_TRACE_SAMPLE_RATE", v.trim())?,
            None => sampler_from_otel(&get)?.unwrap_or(1.0),
        };

        if let Some(v) = get("OTEL_TRACES_EXPORTER") {
            let (otlp, console) = parse_exporters("OTEL_TRACES_EXPORTER", v.trim())?;
            cfg.otlp = otlp;
            cfg.console = console;
        }
        if let Some(v) = get("AUTOBOT_TRACE_CONSOLE") {
            cfg.console = parse_bool("AUTOBOT_TRACE_CONSOLE", v.trim())?;
        }

        if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
            cfg.resource_attributes = parse_key_values("OTEL_RESOURCE_ATTRIBUTES", v.trim())?;
        }
        cfg.environment = match get("AUTOBOT_ENV") {
            Some(v) => v.trim().to_owned(),
            None => cfg
                .resource_attributes
                .iter()
                .find(|(k, _)| k == "deployment.environment.name" || k == "deployment.environment")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "development".to_owned()),
        };

        if let Some(v) = get("OTEL_PROPAGATORS") {
            cfg.propagators = parse_propagators("OTEL_PROPAGATORS", v.trim())?;
        }

        if let Some(v) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
            cfg.batch.max_queue_size = parse_count("OTEL_BSP_MAX_QUEUE_SIZE", v.trim())?;
        }
        if let Some(v) = get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            cfg.batch.max_export_batch_size =
                parse_count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", v.trim())?;
        }
        if let Some(v) = get("OTEL_BSP_SCHEDULE_DELAY") {
            cfg.batch.scheduled_delay = parse_millis("OTEL_BSP_SCHEDULE_DELAY", v.trim())?;
        }
        if cfg.batch.max_export_batch_size > cfg.batch.max_queue_size {
            cfg.batch.max_export_batch_size = cfg.batch.max_queue_size;
        }
        if let Some(v) = get("OTEL_BSP_EXPORT_TIMEOUT") {
            // The SDK's thread-based processor bounds each export by the exporter
            // timeout; the smaller of the two is what holds.
            let t = parse_millis("OTEL_BSP_EXPORT_TIMEOUT", v.trim())?;
            cfg.export_timeout = cfg.export_timeout.min(t);
        }

        if let Some(v) = get("AUTOBOT_LOG_FORMAT") {
            cfg.log_format = match v.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::invalid(
                        "AUTOBOT_LOG_FORMAT",
                        &v,
                        "expected text or json",
                    ));
                }
            };
        }
        if let Some(v) = get("RUST_LOG") {
            tracing_subscriber::EnvFilter::try_new(v.trim())
                .map_err(|e| ConfigError::invalid("RUST_LOG", &v, e.to_string()))?;
            cfg.log_filter = v.trim().to_owned();
        }
        if let Some(v) = get("AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS") {
            cfg.shutdown_timeout = parse_millis("AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS", v.trim())?;
        }
        Ok(cfg)
    }

    /// The service name spans are reported under.
    pub fn service_name<'a>(&'a self, default: &'a str) -> &'a str {
        self.service_name_override.as_deref().unwrap_or(default)
    }
}

fn parse_bool(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(var, v, "expected true or false")),
    }
}

fn parse_rate(var: &str, v: &str) -> Result<f64, ConfigError> {
    let rate: f64 = v
        .parse()
        .map_err(|_| ConfigError::invalid(var, v, "expected a number from 0.0 to 1.0"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(ConfigError::invalid(
            var,
            v,
            "expected a number from 0.0 to 1.0",
        ));
    }
    Ok(rate)
}

fn parse_millis(var: &str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| ConfigError::invalid(var, v, "expected a whole number of milliseconds"))
}

fn parse_count(var: &str, v: &str) -> Result<usize, ConfigError> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::invalid(
            var,
            v,
            "expected a whole number above 0",
        )),
    }
}

fn parse_endpoint(var: &str, v: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(v).map_err(|e| {
        ConfigError::invalid(
            var,
            v,
            format!("expected a URL such as http://jaeger:4317 ({e})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            var,
            v,
            "the scheme must be http or https",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(var, v, "the URL has no host"));
    }
    Ok(url)
}

/// 4318 or a path ending in /v1/traces means OTLP/HTTP; anything else gRPC.
fn infer_protocol(url: &Url) -> Protocol {
    if url.port_or_known_default() == Some(4318)
        || url.path().trim_end_matches('/').ends_with("/v1/traces")
    {
        Protocol::HttpProtobuf
    } else {
        Protocol::Grpc
    }
}

fn with_traces_path(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.ends_with("/v1/traces") {
        url.set_path(&format!("{path}/v1/traces"));
    }
    url
}

fn parse_protocol(var: &str, v: &str) -> Result<Protocol, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Err(ConfigError::invalid(
            var,
            v,
            "http/json is not supported; use grpc or http/protobuf",
        )),
        _ => Err(ConfigError::invalid(
            var,
            v,
            "expected grpc or http/protobuf",
        )),
    }
}

/// `key=value,key2=value2` with percent-encoded values (W3C baggage syntax,
/// as the OTel spec prescribes for OTEL_EXPORTER_OTLP_HEADERS).
fn parse_headers(var: &str, v: &str) -> Result<Vec<ExportHeader>, ConfigError> {
    let items: Vec<&str> = v.split(',').filter(|s| !s.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some((name, value)) = item.split_once('=') else {
            return Err(ConfigError::InvalidSecret {
                variable: var.to_owned(),
                reason: format!(
                    "entry {} of {} has no '=' (expected name=value,...)",
                    i + 1,
                    items.len()
                ),
            });
        };
        let name = name.trim();
        if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConfigError::InvalidSecret {
                variable: var.to_owned(),
                reason: format!(
                    "entry {} of {} has no valid header name",
                    i + 1,
                    items.len()
                ),
            });
        }
        let value = percent_decode(value.trim());
        if http::HeaderValue::from_str(&value).is_err() {
            return Err(ConfigError::InvalidSecret {
                variable: var.to_owned(),
                reason: format!(
                    "the value of header '{name}' has characters a header cannot carry"
                ),
            });
        }
        out.push(ExportHeader {
            name: name.to_ascii_lowercase(),
            value,
        });
    }
    Ok(out)
}

fn parse_key_values(var: &str, v: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for item in v.split(',').filter(|s| !s.trim().is_empty()) {
        let Some((k, val)) = item.split_once('=') else {
            return Err(ConfigError::invalid(
                var,
                v,
                format!("entry {item:?} has no '=' (expected key=value,...)"),
            ));
        };
        if k.trim().is_empty() {
            return Err(ConfigError::invalid(
                var,
                v,
                format!("entry {item:?} has an empty key"),
            ));
        }
        out.push((k.trim().to_owned(), percent_decode(val.trim())));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_exporters(var: &str, v: &str) -> Result<(bool, bool), ConfigError> {
    let (mut otlp, mut console) = (false, false);
    for name in v.split(',').map(|s| s.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "otlp" => otlp = true,
            "console" => console = true,
            "none" => {}
            _ => {
                return Err(ConfigError::invalid(
                    var,
                    v,
                    format!("unknown exporter {name:?}; expected otlp, console or none"),
                ));
            }
        }
    }
    Ok((otlp, console))
}

fn parse_propagators(var: &str, v: &str) -> Result<Propagators, ConfigError> {
    let mut p = Propagators {
        tracecontext: false,
        baggage: false,
        b3_single: false,
        b3_multi: false,
    };
    for name in v.split(',').map(|s| s.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "tracecontext" => p.tracecontext = true,
            "baggage" => p.baggage = true,
            "b3" => p.b3_single = true,
            "b3multi" => p.b3_multi = true,
            "none" => {}
            _ => {
                return Err(ConfigError::invalid(
                    var,
                    v,
                    format!(
                        "unknown propagator {name:?}; expected tracecontext, baggage, b3, b3multi or none"
                    ),
                ));
            }
        }
    }
    Ok(p)
}

/// OTEL_TRACES_SAMPLER(_ARG), accepted only in parent-based forms: a sampler
/// that ignores the caller's decision splits traces, which AutoBot never does.
fn sampler_from_otel(get: &impl Fn(&str) -> Option<String>) -> Result<Option<f64>, ConfigError> {
    let Some(sampler) = get("OTEL_TRACES_SAMPLER") else {
        return Ok(None);
    };
    let name = sampler.trim().to_ascii_lowercase();
    match name.as_str() {
        "parentbased_always_on" => Ok(Some(1.0)),
        "parentbased_always_off" => Ok(Some(0.0)),
        "parentbased_traceidratio" => match get("OTEL_TRACES_SAMPLER_ARG") {
            Some(arg) => parse_rate("OTEL_TRACES_SAMPLER_ARG", arg.trim()).map(Some),
            None => Ok(Some(1.0)),
        },
        "always_on" | "always_off" | "traceidratio" => Err(ConfigError::invalid(
            "OTEL_TRACES_SAMPLER",
            &sampler,
            "a sampler that ignores the parent splits traces; use parentbased_traceidratio (or AUTOBOT_TRACE_SAMPLE_RATE)",
        )),
        _ => Err(ConfigError::invalid(
            "OTEL_TRACES_SAMPLER",
            &sampler,
            "expected parentbased_traceidratio, parentbased_always_on or parentbased_always_off",
        )),
    }
}

/// Collects resource attributes in precedence order (later wins).
pub(crate) fn merge_attributes(layers: &[&[(String, String)]]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for layer in layers {
        for (k, v) in layer.iter() {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<TracingConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TracingConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_grpc_to_local_jaeger_at_full_rate() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.endpoint.as_str(), "http://127.0.0.1:4317/");
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(c.sample_rate, 1.0);
        assert_eq!(c.environment, "development");
        assert!(c.otlp && !c.console && !c.sdk_disabled);
    }

    #[test]
    fn port_4318_or_traces_path_means_http() {
        let c = cfg(&[("AUTOBOT_JAEGER_ENDPOINT", "http://jaeger:4318")]).unwrap();
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        assert_eq!(c.endpoint.as_str(), "http://jaeger:4318/v1/traces");
        let c = cfg(&[(
            "AUTOBOT_JAEGER_ENDPOINT",
            "https://otlp.example.com/v1/traces",
        )])
        .unwrap();
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        assert_eq!(c.endpoint.as_str(), "https://otlp.example.com/v1/traces");
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "http://c:4318/custom",
            "the signal-specific endpoint is verbatim"
        );
    }

    #[test]
    fn autobot_variables_win_over_otel_twins() {
        let c = cfg(&[
            ("AUTOBOT_JAEGER_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://b:4317"),
            ("AUTOBOT_TRACE_SAMPLE_RATE", "0.25"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.75"),
            ("AUTOBOT_ENV", "production"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=staging",
            ),
        ])
        .unwrap();
        assert_eq!(c.endpoint.host_str(), Some("a"));
        assert_eq!(c.sample_rate, 0.25);
        assert_eq!(c.environment, "production");
        let c = cfg(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.75"),
        ])
        .unwrap();
        assert_eq!(c.sample_rate, 0.75);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_value() {
        for (var, value) in [
            ("AUTOBOT_TRACE_SAMPLE_RATE", "1.5"),
            ("AUTOBOT_TRACE_SAMPLE_RATE", "abc"),
            ("AUTOBOT_JAEGER_ENDPOINT", "not a url"),
            ("AUTOBOT_JAEGER_ENDPOINT", "ftp://jaeger:4317"),
            ("AUTOBOT_TRACE_CONSOLE", "maybe"),
            ("OTEL_SDK_DISABLED", "sometimes"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "-1"),
            ("OTEL_PROPAGATORS", "tracecontext,xray"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_RESOURCE_ATTRIBUTES", "team"),
            ("AUTOBOT_LOG_FORMAT", "xml"),
        ] {
            let err = cfg(&[(var, value)]).expect_err(var);
            assert_eq!(err.variable(), Some(var));
            let msg = err.to_string();
            assert!(msg.contains(var) && msg.contains(value), "{msg}");
        }
    }

    #[test]
    fn header_errors_never_echo_the_value() {
        let err = cfg(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Bearer s3cr3t,api-key",
        )])
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("OTEL_EXPORTER_OTLP_HEADERS") && msg.contains("entry 2 of 2"),
            "{msg}"
        );
        assert!(!msg.contains("s3cr3t") && !msg.contains("api-key"), "{msg}");
    }

    #[test]
    fn vendor_headers_are_parsed_and_hidden_from_debug() {
        let c = cfg(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Bearer%20tok123,api-key=k=y",
        )])
        .unwrap();
        assert_eq!(c.headers[0].name, "authorization");
        assert_eq!(c.headers[0].value, "Bearer tok123");
        assert_eq!(c.headers[1].value, "k=y");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("tok123") && !debug.contains("k=y"),
            "{debug}"
        );
    }

    #[test]
    fn exporters_propagators_and_batch_settings() {
        let c = cfg(&[
            ("OTEL_TRACES_EXPORTER", "none"),
            ("AUTOBOT_TRACE_CONSOLE", "true"),
            ("OTEL_PROPAGATORS", "tracecontext"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_SDK_DISABLED", "true"),
        ])
        .unwrap();
        assert!(!c.otlp && c.console && c.sdk_disabled);
        assert!(c.propagators.tracecontext && !c.propagators.b3_single && !c.propagators.baggage);
        assert_eq!(c.batch.max_queue_size, 100);
        assert_eq!(c.batch.max_export_batch_size, 100, "clamped to the queue");
        assert_eq!(TracingConfig::default().batch.max_queue_size, 8192);
        assert_eq!(c.batch.scheduled_delay, Duration::from_millis(50));
    }
}
