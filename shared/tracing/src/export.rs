//! The OTLP exporter and the counters around it.
//!
//! The SDK's batch processor drops spans when its bounded queue is full and
//! discards a batch whose export failed; it keeps those numbers to itself.
//! AutoBot counts them here: spans ended (queued), exported, and lost in a
//! failed export; what was queued but neither exported nor failed was dropped
//! at the queue. Export failures are logged at most once per interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter as SdkSpanExporter, SpanProcessor};

use crate::config::{Protocol, TracingConfig};

/// How often an ongoing export failure is logged again.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Counters of one process's span pipeline.
#[derive(Debug, Default)]
pub struct ExportCounters {
    ended: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    failed_batches: AtomicU64,
    last_failure_log_ms: AtomicU64,
}

/// A snapshot of [`ExportCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportStats {
    /// Sampled spans that ended and were handed to the batch processor.
    pub ended: u64,
    /// Spans the receiver accepted.
    pub exported: u64,
    /// Spans lost because their export failed (receiver down or refusing).
    pub export_failed: u64,
}

impl ExportStats {
    /// Spans not (yet) exported: failed, dropped at the full queue, or still queued.
    pub fn not_exported(&self) -> u64 {
        self.ended.saturating_sub(self.exported)
    }
}

impl ExportCounters {
    pub fn snapshot(&self) -> ExportStats {
        ExportStats {
            ended: self.ended.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            export_failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Wraps the batch processor to count what it is given.
#[derive(Debug)]
pub(crate) struct CountingProcessor<P> {
    pub(crate) inner: P,
    pub(crate) counters: Arc<ExportCounters>,
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        self.counters.ended.fetch_add(1, Ordering::Relaxed);
        self.inner.on_end(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Wraps the OTLP exporter to count results and log failures sparingly.
#[derive(Debug)]
pub(crate) struct CountingExporter<E> {
    inner: E,
    counters: Arc<ExportCounters>,
    endpoint: String,
    started: Instant,
}

impl<E> CountingExporter<E> {
    pub(crate) fn new(inner: E, counters: Arc<ExportCounters>, endpoint: String) -> Self {
        Self {
            inner,
            counters,
            endpoint,
            started: Instant::now(),
        }
    }
}

impl<E: SdkSpanExporter> SdkSpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                self.counters.exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                let failed = self.counters.failed.fetch_add(n, Ordering::Relaxed) + n;
                let batches = self.counters.failed_batches.fetch_add(1, Ordering::Relaxed) + 1;
                let now = self.started.elapsed().as_millis() as u64;
                let last = self.counters.last_failure_log_ms.load(Ordering::Relaxed);
                let due = batches == 1
                    || now.saturating_sub(last) >= FAILURE_LOG_INTERVAL.as_millis() as u64;
                if due
                    && self
                        .counters
                        .last_failure_log_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(
                        target: "autobot_tracing::export",
                        endpoint = %self.endpoint,
                        error = %e,
                        spans_lost_so_far = failed,
                        "span export failed; spans are dropped until the receiver answers (logged at most every 30 s)"
                    );
                }
            }
        }
        result
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Errors building the exporter.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("OTLP over gRPC needs a running tokio runtime: call init from inside #[tokio::main]")]
    NoRuntime,
    #[error("the OTLP exporter could not be built: {0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
}

pub(crate) fn build_otlp(
    cfg: &TracingConfig,
    counters: Arc<ExportCounters>,
) -> Result<CountingExporter<SpanExporter>, ExporterError> {
    let endpoint = cfg.endpoint.to_string();
    let exporter = match cfg.protocol {
        Protocol::Grpc => {
            // tonic spawns its connection task on the current runtime.
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(ExporterError::NoRuntime);
            }
            let mut metadata = tonic::metadata::MetadataMap::new();
            for h in &cfg.headers {
                if let (Ok(k), Ok(v)) = (
                    tonic::metadata::MetadataKey::from_bytes(h.name.as_bytes()),
                    h.value.parse(),
                ) {
                    metadata.insert(k, v);
                }
            }
            let mut b = SpanExporter::builder()
                .with_tonic()
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_timeout(cfg.export_timeout)
                .with_metadata(metadata);
            if cfg.endpoint.scheme() == "https" {
                b = b.with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
            }
            b.build()?
        }
        Protocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint.clone())
            .with_timeout(cfg.export_timeout)
            .with_headers(
                cfg.headers
                    .iter()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            )
            .build()?,
    };
    Ok(CountingExporter::new(exporter, counters, endpoint))
}
