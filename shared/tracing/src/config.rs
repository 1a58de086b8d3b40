//! Telemetry settings, read once from the environment (and `.env`) through
//! the workspace's one settings reader (autobot-settings).
//!
//! Every AUTOBOT_* variable wins over its OTEL_* twin; every value that does
//! not parse is a [`SettingError`] naming the variable and the value, so a
//! service stops at start instead of running untraced by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use autobot_settings::{Env, SettingError, parse_bool_setting};
use url::Url;

/// Where spans go when nothing is configured: Jaeger's OTLP/gRPC port on this host.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4317";

/// OTLP compression when OTEL_EXPORTER_OTLP_COMPRESSION is not set (the
/// OpenTelemetry default; docs/performance.md, "Compressed export", has the
/// figures it was chosen from).
pub const DEFAULT_COMPRESSION: Compression = Compression::None;

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (Jaeger port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (Jaeger port 4318, path /v1/traces).
    HttpProtobuf,
}

/// How OTLP request bodies are compressed (OTEL_EXPORTER_OTLP_COMPRESSION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// As encoded.
    None,
    /// gzip: `grpc-encoding: gzip` on gRPC, `Content-Encoding: gzip` on HTTP.
    Gzip,
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
    /// OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION; the default is chosen from
    /// the figures in docs/performance.md ("Compressed export").
    pub compression: Compression,
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
    /// OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE, _CLIENT_CERTIFICATE and
    /// _CLIENT_KEY: the CA the receiver's certificate must chain to (the
    /// system's roots without it) and the client certificate presented to
    /// it. `None`: an https endpoint is checked against the system's roots.
    pub otlp_tls: Option<autobot_tls::TlsFiles>,
    /// How much of what a span records is kept (the OTEL_*_LIMIT variables).
    pub limits: AttributeLimits,
}

/// Default characters of a string attribute value: OpenTelemetry sets no
/// limit; AutoBot keeps 4096 so that a queued span is bounded in bytes.
pub const DEFAULT_ATTRIBUTE_VALUE_LENGTH: usize = 4096;
/// Default attributes per span, event and link (OpenTelemetry's).
pub const DEFAULT_ATTRIBUTE_COUNT: u32 = 128;

/// The attribute limits of the OpenTelemetry specification; the span-,
/// event- and link-specific variables win over the general ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributeLimits {
    /// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, else
    /// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: characters of a string value
    /// (of span, event and link attributes, and of the status message).
    pub value_length: usize,
    /// OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, else OTEL_ATTRIBUTE_COUNT_LIMIT.
    pub span_attributes: u32,
    /// OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, else OTEL_ATTRIBUTE_COUNT_LIMIT.
    pub event_attributes: u32,
    /// OTEL_LINK_ATTRIBUTE_COUNT_LIMIT, else OTEL_ATTRIBUTE_COUNT_LIMIT.
    pub link_attributes: u32,
}

impl Default for AttributeLimits {
    fn default() -> Self {
        Self {
            value_length: DEFAULT_ATTRIBUTE_VALUE_LENGTH,
            span_attributes: DEFAULT_ATTRIBUTE_COUNT,
            event_attributes: DEFAULT_ATTRIBUTE_COUNT,
            link_attributes: DEFAULT_ATTRIBUTE_COUNT,
        }
    }
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            service_name_override: None,
            endpoint: Url::parse(DEFAULT_ENDPOINT).expect("default endpoint is a URL"),
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            compression: DEFAULT_COMPRESSION,
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
            limits: AttributeLimits::default(),
            otlp_tls: None,
        }
    }
}

impl TracingConfig {
    /// Reads the process environment (`.env` must be loaded already, as
    /// `autobot_lifecycle::Service` and `init` do).
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(autobot_settings::process_lookup)
    }

    /// Reads settings through `lookup` (tests pass a map instead of the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        let mut cfg = Self {
            service_name_override: env.get("OTEL_SERVICE_NAME"),
            ..Self::default()
        };
        if let Some(disabled) = env.parse_with("OTEL_SDK_DISABLED", parse_bool_setting)? {
            cfg.sdk_disabled = disabled;
        }

        // Endpoint: AUTOBOT_JAEGER_ENDPOINT, else the OTEL twins. The signal-specific
        // OTEL variable is a full URL (used verbatim); the others are base URLs.
        let (endpoint_var, endpoint_raw) = env
            .first(&[
                "AUTOBOT_JAEGER_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ])
            .unwrap_or(("AUTOBOT_JAEGER_ENDPOINT", DEFAULT_ENDPOINT.to_owned()));
        let verbatim = endpoint_var == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
        let endpoint = parse_endpoint(&endpoint_raw)
            .map_err(|reason| SettingError::new(endpoint_var, &endpoint_raw, reason))?;

        cfg.protocol = env
            .parse_first_with(
                &[
                    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                ],
                parse_protocol,
            )?
            .unwrap_or_else(|| infer_protocol(&endpoint));
        cfg.endpoint = match cfg.protocol {
            Protocol::HttpProtobuf if !verbatim => with_traces_path(endpoint),
            _ => endpoint,
        };

        if let Some((var, v)) = env.first(&[
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ]) {
            // The value is a credential: the error names the entry, never the text.
            cfg.headers =
                parse_headers(&v).map_err(|reason| SettingError::withheld(var, reason))?;
        }
        if let Some(compression) = env.parse_first_with(
            &[
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ],
            parse_compression,
        )? {
            cfg.compression = compression;
        }
        if let Some(timeout) = env.parse_first_with(
            &[
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ],
            parse_millis,
        )? {
            cfg.export_timeout = timeout;
        }

        cfg.sample_rate = match env.parse_with("AUTOBOT_TRACE_SAMPLE_RATE", parse_rate)? {
            Some(rate) => rate,
            None => sampler_from_otel(&env)?.unwrap_or(1.0),
        };

        if let Some((otlp, console)) = env.parse_with("OTEL_TRACES_EXPORTER", parse_exporters)? {
            cfg.otlp = otlp;
            cfg.console = console;
        }
        if let Some(console) = env.parse_with("AUTOBOT_TRACE_CONSOLE", parse_bool_setting)? {
            cfg.console = console;
        }

        if let Some(attributes) = env.parse_with("OTEL_RESOURCE_ATTRIBUTES", parse_key_values)? {
            cfg.resource_attributes = attributes;
        }
        cfg.environment = match env.get("AUTOBOT_ENV") {
            Some(v) => v,
            None => cfg
                .resource_attributes
                .iter()
                .find(|(k, _)| k == "deployment.environment.name" || k == "deployment.environment")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "development".to_owned()),
        };

        if let Some(propagators) = env.parse_with("OTEL_PROPAGATORS", parse_propagators)? {
            cfg.propagators = propagators;
        }

        if let Some(n) = env.parse_with("OTEL_BSP_MAX_QUEUE_SIZE", parse_count)? {
            cfg.batch.max_queue_size = n;
        }
        if let Some(n) = env.parse_with("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", parse_count)? {
            cfg.batch.max_export_batch_size = n;
        }
        if let Some(delay) = env.parse_with("OTEL_BSP_SCHEDULE_DELAY", parse_millis)? {
            cfg.batch.scheduled_delay = delay;
        }
        if cfg.batch.max_export_batch_size > cfg.batch.max_queue_size {
            cfg.batch.max_export_batch_size = cfg.batch.max_queue_size;
        }
        if let Some(t) = env.parse_with("OTEL_BSP_EXPORT_TIMEOUT", parse_millis)? {
            // The SDK's thread-based processor bounds each export by the exporter
            // timeout; the smaller of the two is what holds.
            cfg.export_timeout = cfg.export_timeout.min(t);
        }

        if let Some(format) = env.parse_with("AUTOBOT_LOG_FORMAT", parse_log_format)? {
            cfg.log_format = format;
        }
        if let Some(filter) = env.parse_with("RUST_LOG", parse_log_filter)? {
            cfg.log_filter = filter;
        }
        if let Some(t) = env.parse_with("AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS", parse_millis)? {
            cfg.shutdown_timeout = t;
        }

        if let Some(n) = env.parse_first_with(
            &[
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ],
            parse_count,
        )? {
            cfg.limits.value_length = n;
        }
        let general = env.parse_with("OTEL_ATTRIBUTE_COUNT_LIMIT", parse_attribute_count)?;
        let count = |specific: &'static str| -> Result<u32, SettingError> {
            Ok(env
                .parse_with(specific, parse_attribute_count)?
                .or(general)
                .unwrap_or(DEFAULT_ATTRIBUTE_COUNT))
        };
        cfg.limits.span_attributes = count("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT")?;
        cfg.limits.event_attributes = count("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT")?;
        cfg.limits.link_attributes = count("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT")?;
        cfg.otlp_tls = otlp_tls_files(&env)?;
        // Without OTLP export the files are not used (nor checked): the
        // first certificate distribution runs with OTEL_TRACES_EXPORTER=none
        // before the files it installs exist.
        if !cfg.otlp || cfg.sdk_disabled {
            cfg.otlp_tls = None;
        }
        if let Some(files) = &cfg.otlp_tls {
            if cfg.endpoint.scheme() != "https" {
                let named = files.all_vars().join(", ");
                return Err(SettingError::new(
                    endpoint_var,
                    &endpoint_raw,
                    format!(
                        "{named} {} set: the endpoint must be https://",
                        if named.contains(',') { "are" } else { "is" }
                    ),
                ));
            }
            // Read and checked now, so that a bad file stops the start naming its variable.
            autobot_tls::TlsSource::load(files.clone(), false)?;
        }
        Ok(cfg)
    }

    /// The service name spans are reported under.
    pub fn service_name<'a>(&'a self, default: &'a str) -> &'a str {
        self.service_name_override.as_deref().unwrap_or(default)
    }
}

/// The OpenTelemetry TLS variables of the OTLP exporter, the signal's own
/// first. The client certificate and its key go together.
fn otlp_tls_files<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<autobot_tls::TlsFiles>, SettingError> {
    use autobot_tls::PemFile;
    let file = |names: &[&'static str]| env.first(names).map(|(var, path)| PemFile::new(var, path));
    let ca = file(&[
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ]);
    let cert = file(&[
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    ]);
    let key = file(&[
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    ]);
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(cert), None) => {
            return Err(SettingError::withheld(
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                format!(
                    "unset while {} is set: the client certificate needs its key",
                    cert.var
                ),
            ));
        }
        (None, Some(key)) => {
            return Err(SettingError::withheld(
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                format!(
                    "unset while {} is set: the key needs its certificate",
                    key.var
                ),
            ));
        }
    };
    if ca.is_none() && identity.is_none() {
        return Ok(None);
    }
    Ok(Some(autobot_tls::TlsFiles {
        ca,
        identity,
        check_every: env.millis(autobot_tls::TLS_RELOAD_VAR, autobot_tls::DEFAULT_RELOAD_MS)?,
    }))
}

fn parse_rate(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err("expected a number from 0.0 to 1.0".to_owned()),
    }
}

fn parse_millis(v: &str) -> Result<Duration, String> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| "expected a whole number of milliseconds".to_owned())
}

fn parse_count(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".to_owned()),
    }
}

/// An attribute count: 0 (no attribute kept) up to what the SDK counts in.
fn parse_attribute_count(v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .map_err(|_| "expected a whole number from 0 to 4294967295".to_owned())
}

fn parse_log_format(v: &str) -> Result<LogFormat, String> {
    match v.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".to_owned()),
    }
}

fn parse_log_filter(v: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(v).map_err(|e| e.to_string())?;
    Ok(v.to_owned())
}

fn parse_endpoint(v: &str) -> Result<Url, String> {
    let url =
        Url::parse(v).map_err(|e| format!("expected a URL such as http://jaeger:4317 ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
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

fn parse_protocol(v: &str) -> Result<Protocol, String> {
    match v.to_ascii_lowercase().as_str() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Err("http/json is not supported; use grpc or http/protobuf".to_owned()),
        _ => Err("expected grpc or http/protobuf".to_owned()),
    }
}

fn parse_compression(v: &str) -> Result<Compression, String> {
    match v.to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err("expected gzip or none".to_owned()),
    }
}

/// `key=value,key2=value2` with percent-encoded values (W3C baggage syntax,
/// as the OTel spec prescribes for OTEL_EXPORTER_OTLP_HEADERS). The reason
/// of an error never quotes the value: it is usually a credential.
fn parse_headers(v: &str) -> Result<Vec<ExportHeader>, String> {
    let items: Vec<&str> = v.split(',').filter(|s| !s.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!(
                "entry {} of {} has no '=' (expected name=value,...)",
                i + 1,
                items.len()
            ));
        };
        let name = name.trim();
        if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!(
                "entry {} of {} has no valid header name",
                i + 1,
                items.len()
            ));
        }
        let value = percent_decode(value.trim());
        if http::HeaderValue::from_str(&value).is_err() {
            return Err(format!(
                "the value of header '{name}' has characters a header cannot carry"
            ));
        }
        out.push(ExportHeader {
            name: name.to_ascii_lowercase(),
            value,
        });
    }
    Ok(out)
}

fn parse_key_values(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in v.split(',').filter(|s| !s.trim().is_empty()) {
        let Some((k, val)) = item.split_once('=') else {
            return Err(format!(
                "entry {item:?} has no '=' (expected key=value,...)"
            ));
        };
        if k.trim().is_empty() {
            return Err(format!("entry {item:?} has an empty key"));
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

fn parse_exporters(v: &str) -> Result<(bool, bool), String> {
    let (mut otlp, mut console) = (false, false);
    for name in v.split(',').map(|s| s.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "otlp" => otlp = true,
            "console" => console = true,
            "none" => {}
            _ => {
                return Err(format!(
                    "unknown exporter {name:?}; expected otlp, console or none"
                ));
            }
        }
    }
    Ok((otlp, console))
}

fn parse_propagators(v: &str) -> Result<Propagators, String> {
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
                return Err(format!(
                    "unknown propagator {name:?}; expected tracecontext, baggage, b3, b3multi or none"
                ));
            }
        }
    }
    Ok(p)
}

/// OTEL_TRACES_SAMPLER(_ARG), accepted only in parent-based forms: a sampler
/// that ignores the caller's decision splits traces, which AutoBot never does.
fn sampler_from_otel<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<f64>, SettingError> {
    let rate = env.parse_with("OTEL_TRACES_SAMPLER", |sampler| {
        match sampler.to_ascii_lowercase().as_str() {
            "parentbased_always_on" => Ok(Some(1.0)),
            "parentbased_always_off" => Ok(Some(0.0)),
            // The ratio comes from OTEL_TRACES_SAMPLER_ARG, read below.
            "parentbased_traceidratio" => Ok(None),
            "always_on" | "always_off" | "traceidratio" => Err(
                "a sampler that ignores the parent splits traces; use parentbased_traceidratio (or AUTOBOT_TRACE_SAMPLE_RATE)".to_owned(),
            ),
            _ => Err(
                "expected parentbased_traceidratio, parentbased_always_on or parentbased_always_off".to_owned(),
            ),
        }
    })?;
    match rate {
        None => Ok(None),
        Some(Some(rate)) => Ok(Some(rate)),
        Some(None) => Ok(Some(
            env.parse_with("OTEL_TRACES_SAMPLER_ARG", parse_rate)?
                .unwrap_or(1.0),
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

    fn cfg(vars: &[(&str, &str)]) -> Result<TracingConfig, SettingError> {
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
    fn compression_from_the_signal_variable_then_the_general_one() {
        assert_eq!(cfg(&[]).unwrap().compression, DEFAULT_COMPRESSION);
        let c = cfg(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).unwrap();
        assert_eq!(c.compression, Compression::Gzip);
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
        ])
        .unwrap();
        assert_eq!(c.compression, Compression::None);
        let e = cfg(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=\"zstd\" is not valid: expected gzip or none"
        );
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
    fn attribute_limits_from_the_specific_variable_then_the_general_one() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.limits, AttributeLimits::default());
        assert_eq!(c.limits.value_length, 4096);
        let c = cfg(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "20"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "30"),
        ])
        .unwrap();
        assert_eq!(
            c.limits,
            AttributeLimits {
                value_length: 100,
                span_attributes: 30,
                event_attributes: 20,
                link_attributes: 20,
            }
        );
        let c = cfg(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "50"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "0"),
        ])
        .unwrap();
        assert_eq!(c.limits.value_length, 50);
        assert_eq!(c.limits.event_attributes, 0);
        assert_eq!(c.limits.span_attributes, DEFAULT_ATTRIBUTE_COUNT);
        let e = cfg(&[("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "0")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT="0" is not valid: expected a whole number above 0"#
        );
        let e = cfg(&[("OTEL_ATTRIBUTE_COUNT_LIMIT", "-1")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_ATTRIBUTE_COUNT_LIMIT");
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
            assert_eq!(err.variable, var);
            let msg = err.to_string();
            assert!(msg.contains(var) && msg.contains(value), "{msg}");
        }
    }

    /// The exact texts an operator sees, pinned.
    #[test]
    fn error_texts_keep_their_wording() {
        for (var, value, text) in [
            (
                "AUTOBOT_TRACE_SAMPLE_RATE",
                "1.5",
                "AUTOBOT_TRACE_SAMPLE_RATE=\"1.5\" is not valid: expected a number from 0.0 to 1.0",
            ),
            (
                "AUTOBOT_JAEGER_ENDPOINT",
                "ftp://jaeger:4317",
                "AUTOBOT_JAEGER_ENDPOINT=\"ftp://jaeger:4317\" is not valid: the scheme must be http or https",
            ),
            (
                "OTEL_TRACES_SAMPLER_ARG",
                "2",
                "OTEL_TRACES_SAMPLER_ARG=\"2\" is not valid: expected a number from 0.0 to 1.0",
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization",
                "OTEL_EXPORTER_OTLP_HEADERS is not valid: entry 1 of 1 has no '=' (expected name=value,...)",
            ),
        ] {
            let vars = [
                (var, value),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ];
            assert_eq!(cfg(&vars).unwrap_err().to_string(), text);
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
    fn otlp_tls_files_from_the_signal_variables_then_the_general_ones() {
        let ca = autobot_testkit::pki::TestCa::new("jaeger");
        let me = ca.issue_local("exporter");
        let (ca_file, cert, key) = (
            me.ca.display().to_string(),
            me.cert.display().to_string(),
            me.key.display().to_string(),
        );
        let c = cfg(&[
            ("AUTOBOT_JAEGER_ENDPOINT", "https://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/not/read"),
            ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", &ca_file),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &cert),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
        ])
        .unwrap();
        let files = c.otlp_tls.unwrap();
        assert_eq!(
            files.all_vars(),
            [
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CLIENT_KEY"
            ]
        );
        assert_eq!(cfg(&[]).unwrap().otlp_tls, None);
    }

    #[test]
    fn otlp_tls_errors_name_the_variable() {
        let e = cfg(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "OTEL_EXPORTER_OTLP_CLIENT_KEY is not valid: unset while OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is set: the client certificate needs its key"
        );
        let e = cfg(&[
            ("AUTOBOT_JAEGER_ENDPOINT", "http://jaeger:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "AUTOBOT_JAEGER_ENDPOINT=\"http://jaeger:4317\" is not valid: OTEL_EXPORTER_OTLP_CERTIFICATE is set: the endpoint must be https://"
        );
        let e = cfg(&[
            ("AUTOBOT_JAEGER_ENDPOINT", "https://jaeger:4317"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                "/nonexistent/ca.pem",
            ),
        ])
        .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE=\"/nonexistent/ca.pem\" is not valid: cannot read the file"
            ),
            "{e}"
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
