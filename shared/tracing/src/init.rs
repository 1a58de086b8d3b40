//! `init`: one call per process that installs the tracer provider, the
//! propagator and the `tracing` subscriber, and returns the guard whose
//! shutdown flushes every finished span within a bound.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SimpleSpanProcessor,
    SpanExporter as SdkSpanExporter,
};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use autobot_settings::{DotEnvError, SettingError};

use crate::config::{LogFormat, TracingConfig, merge_attributes};
use crate::export::{
    CountingExporter, CountingProcessor, ExportCounters, ExportStats, ExporterError, build_otlp,
    register_pipeline_metrics, sdk_queue_size,
};
use crate::limits::LimitedProcessor;
use crate::logging::WithTraceIds;
use crate::propagation::build_propagator;
use crate::sampler::AutobotSampler;

/// The instrumentation scope of every span AutoBot creates.
pub const SCOPE_NAME: &str = "autobot-tracing";

/// Targets whose own spans never reach OpenTelemetry: the exporter's
/// transport would otherwise trace itself (opentelemetry-rust#761). Targets
/// are prefixes. `reqwest` needs no entry: it makes no `tracing` spans (it
/// logs through `log`), and the HTTP CLIENT spans are made with the
/// OpenTelemetry API (`http/client.rs`), which this filter does not see.
const SPAN_FILTER: &str =
    "info,h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,opentelemetry=off,rustls=off";

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The tracer `init` installed; `None` when tracing is off (OTEL_SDK_DISABLED)
/// or `init` has not run.
pub(crate) fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Why `init` failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A telemetry setting is not valid (it names the variable).
    #[error(transparent)]
    Config(#[from] SettingError),
    #[error(transparent)]
    DotEnv(#[from] DotEnvError),
    #[error(transparent)]
    Exporter(#[from] ExporterError),
    #[error("a tracing subscriber is already installed in this process: {0}")]
    AlreadyInitialized(String),
}

/// Reads the configuration from the environment (after loading `.env`) and
/// installs telemetry. A service's `main` has `autobot_lifecycle::Service`
/// do this; a short-lived tool may call it directly.
pub fn init(service_name: &str, service_version: &str) -> Result<TelemetryGuard, InitError> {
    autobot_settings::load_dotenv()?;
    init_with(service_name, service_version, TracingConfig::from_env()?)
}

/// Installs telemetry with an explicit configuration.
pub fn init_with(
    service_name: &str,
    service_version: &str,
    cfg: TracingConfig,
) -> Result<TelemetryGuard, InitError> {
    let counters = Arc::new(ExportCounters::default());
    global::set_text_map_propagator(build_propagator(&cfg.propagators));
    set_metrics_service(&cfg, service_name, service_version);
    if cfg.sdk_disabled {
        install_subscriber(&cfg, None)?;
        return Ok(TelemetryGuard::new(None, counters, &cfg));
    }
    let mut builder = provider_builder(&cfg, service_name, service_version);
    if cfg.otlp {
        let exporter = build_otlp(&cfg, counters.clone())?;
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(sdk_queue_size(
                cfg.batch.max_queue_size,
                cfg.batch.max_export_batch_size,
            ))
            .with_max_export_batch_size(cfg.batch.max_export_batch_size)
            .with_scheduled_delay(cfg.batch.scheduled_delay)
            .build();
        let bsp = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        builder = builder.with_span_processor(LimitedProcessor {
            inner: CountingProcessor {
                inner: bsp,
                counters: counters.clone(),
                capacity: cfg.batch.max_queue_size as u64,
            },
            limits: cfg.limits,
        });
        register_pipeline_metrics(counters.clone(), cfg.batch.max_queue_size as u64);
    }
    if cfg.console {
        builder = builder.with_span_processor(LimitedProcessor {
            inner: SimpleSpanProcessor::new(opentelemetry_stdout::SpanExporter::default()),
            limits: cfg.limits,
        });
    }
    install_provider(builder.build(), &cfg, counters)
}

/// The provider's resource, sampler and attribute counts (the SDK applies
/// them as attributes are set; `LimitedProcessor` cuts the values).
fn provider_builder(
    cfg: &TracingConfig,
    service_name: &str,
    service_version: &str,
) -> opentelemetry_sdk::trace::TracerProviderBuilder {
    SdkTracerProvider::builder()
        .with_resource(build_resource(cfg, service_name, service_version))
        .with_sampler(AutobotSampler::new(cfg.sample_rate))
        .with_max_attributes_per_span(cfg.limits.span_attributes)
        .with_max_attributes_per_event(cfg.limits.event_attributes)
        .with_max_attributes_per_link(cfg.limits.link_attributes)
}

/// Installs telemetry that hands spans to `exporter` as they end (tests).
#[doc(hidden)]
pub fn init_with_exporter<E: SdkSpanExporter + 'static>(
    service_name: &str,
    service_version: &str,
    cfg: TracingConfig,
    exporter: E,
) -> Result<TelemetryGuard, InitError> {
    global::set_text_map_propagator(build_propagator(&cfg.propagators));
    let provider = provider_builder(&cfg, service_name, service_version)
        .with_span_processor(LimitedProcessor {
            inner: SimpleSpanProcessor::new(exporter),
            limits: cfg.limits,
        })
        .build();
    install_provider(provider, &cfg, Arc::new(ExportCounters::default()))
}

/// Installs telemetry with the production batch processor in front of
/// `exporter` (benchmarks measure the real queue without a network).
#[doc(hidden)]
pub fn init_with_batch_exporter<E: SdkSpanExporter + 'static>(
    service_name: &str,
    service_version: &str,
    cfg: TracingConfig,
    exporter: E,
) -> Result<TelemetryGuard, InitError> {
    global::set_text_map_propagator(build_propagator(&cfg.propagators));
    let counters = Arc::new(ExportCounters::default());
    set_metrics_service(&cfg, service_name, service_version);
    register_pipeline_metrics(counters.clone(), cfg.batch.max_queue_size as u64);
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(sdk_queue_size(
            cfg.batch.max_queue_size,
            cfg.batch.max_export_batch_size,
        ))
        .with_max_export_batch_size(cfg.batch.max_export_batch_size)
        .with_scheduled_delay(cfg.batch.scheduled_delay)
        .build();
    let provider = provider_builder(&cfg, service_name, service_version)
        .with_span_processor(LimitedProcessor {
            inner: CountingProcessor {
                inner: BatchSpanProcessor::builder(CountingExporter::new(
                    exporter,
                    counters.clone(),
                    "in-process".into(),
                ))
                .with_batch_config(batch)
                .build(),
                counters: counters.clone(),
                capacity: cfg.batch.max_queue_size as u64,
            },
            limits: cfg.limits,
        })
        .build();
    install_provider(provider, &cfg, counters)
}

fn install_provider(
    provider: SdkTracerProvider,
    cfg: &TracingConfig,
    counters: Arc<ExportCounters>,
) -> Result<TelemetryGuard, InitError> {
    let scope = InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let tracer = provider.tracer_with_scope(scope);
    install_subscriber(cfg, Some(tracer.clone()))?;
    let _ = TRACER.set(tracer);
    global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard::new(Some(provider), counters, cfg))
}

fn install_subscriber(cfg: &TracingConfig, tracer: Option<SdkTracer>) -> Result<(), InitError> {
    // The exporter's own chatter (one error per failed batch) is replaced by
    // AutoBot's rate-limited warning; RUST_LOG can bring it back.
    let log_filter = if cfg.log_filter.contains("opentelemetry") {
        cfg.log_filter.clone()
    } else {
        format!("{},opentelemetry=off", cfg.log_filter)
    };
    let log_filter = EnvFilter::try_new(log_filter).map_err(|e| {
        InitError::Config(SettingError::new(
            "RUST_LOG",
            &cfg.log_filter,
            e.to_string(),
        ))
    })?;
    let fmt_layer = match cfg.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .event_format(WithTraceIds {
                inner: tracing_subscriber::fmt::format().with_target(true),
                format: LogFormat::Text,
            })
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(WithTraceIds {
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .with_current_span(false),
                format: LogFormat::Json,
            })
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .with_filter(log_filter)
            .boxed(),
    };
    let otel_layer = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Code location, thread and busy/idle time cost more than the
            // rest of a span together and nobody reads them in Jaeger.
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_level(false)
            .with_error_events_to_status(true)
            .with_error_events_to_exceptions(true)
            .with_filter(EnvFilter::new(SPAN_FILTER))
    });
    tracing_subscriber::registry()
        .with(otel_layer)
        .with(fmt_layer)
        .try_init()
        .map_err(|e| InitError::AlreadyInitialized(e.to_string()))
}

/// Names the process in its metrics as in its spans (the spanmetrics
/// series' `service_name`, `target_info`).
fn set_metrics_service(cfg: &TracingConfig, service_name: &str, service_version: &str) {
    let instance = cfg
        .resource_attributes
        .iter()
        .find(|(k, _)| k == "service.instance.id")
        .map_or(instance_id(), |(_, v)| v.as_str());
    autobot_metrics::set_service(cfg.service_name(service_name), service_version, instance);
}

/// This process's service.instance.id, the same in its spans and its metrics.
fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// service.name, service.version, service.namespace, service.instance.id,
/// deployment.environment.name and host.name, over OTEL_RESOURCE_ATTRIBUTES.
fn build_resource(cfg: &TracingConfig, service_name: &str, service_version: &str) -> Resource {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_owned());
    let detected = [
        ("host.name".to_owned(), host),
        ("service.namespace".to_owned(), "autobot".to_owned()),
        ("service.instance.id".to_owned(), instance_id().to_owned()),
    ];
    let ours = [
        (
            "service.name".to_owned(),
            cfg.service_name(service_name).to_owned(),
        ),
        ("service.version".to_owned(), service_version.to_owned()),
        (
            "deployment.environment.name".to_owned(),
            cfg.environment.clone(),
        ),
    ];
    let attrs: BTreeMap<String, String> =
        merge_attributes(&[&detected, &cfg.resource_attributes, &ours]);
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(attrs.into_iter().map(|(k, v)| KeyValue::new(k, v)))
        .build()
}

/// Keeps telemetry running; `shutdown().await` flushes every finished span.
///
/// Dropping the guard also shuts down (bounded), but cannot drive a gRPC
/// export from a single-threaded runtime it blocks: prefer `shutdown().await`.
#[must_use = "dropping the guard shuts telemetry down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    counters: Arc<ExportCounters>,
    timeout: Duration,
}

impl TelemetryGuard {
    fn new(
        provider: Option<SdkTracerProvider>,
        counters: Arc<ExportCounters>,
        cfg: &TracingConfig,
    ) -> Self {
        Self {
            provider,
            counters,
            timeout: cfg.shutdown_timeout,
        }
    }

    /// Whether spans are recorded at all (false with OTEL_SDK_DISABLED).
    pub fn is_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Span counters so far.
    pub fn stats(&self) -> ExportStats {
        self.counters.snapshot()
    }

    /// Exports every finished span now (bounded by the shutdown timeout).
    pub async fn flush(&self) {
        if let Some(p) = self.provider.clone() {
            let work = tokio::task::spawn_blocking(move || p.force_flush());
            let _ = tokio::time::timeout(self.timeout, work).await;
        }
    }

    /// Flushes and stops telemetry. The blocking part runs off the async
    /// threads, so the gRPC exporter's connection keeps being driven even on
    /// a current-thread runtime; it never waits longer than the bound.
    pub async fn shutdown(mut self) -> ExportStats {
        let Some(provider) = self.provider.take() else {
            return self.stats();
        };
        let timeout = self.timeout;
        let work = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout));
        let outcome = tokio::time::timeout(timeout + Duration::from_millis(500), work).await;
        self.report(matches!(outcome, Ok(Ok(Ok(())))))
    }

    /// Shutdown for code outside any async runtime (a CLI's last line).
    pub fn shutdown_blocking(mut self) -> ExportStats {
        let done = self.stop_on_thread();
        self.report(done)
    }

    fn stop_on_thread(&mut self) -> bool {
        let Some(provider) = self.provider.take() else {
            return true;
        };
        let timeout = self.timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(provider.shutdown_with_timeout(timeout).is_ok());
        });
        rx.recv_timeout(timeout + Duration::from_millis(500))
            .unwrap_or(false)
    }

    fn report(&self, completed: bool) -> ExportStats {
        let stats = self.stats();
        if stats.not_exported() > 0 || !completed {
            tracing::warn!(
                target: "autobot_tracing",
                ended = stats.ended,
                exported = stats.exported,
                not_exported = stats.not_exported(),
                completed,
                "telemetry shut down with spans not exported"
            );
        } else {
            tracing::info!(target: "autobot_tracing", exported = stats.exported, "telemetry shut down, every span exported");
        }
        stats
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if self.provider.is_some() {
            let done = self.stop_on_thread();
            self.report(done);
        }
    }
}
