//! The OTLP exporter and the counters around it.
//!
//! The exporter is AutoBot's own ([`transport::OtlpExporter`]): it encodes a
//! batch straight into OTLP protobuf bytes ([`encode::TraceEncoder`]) instead
//! of going through `opentelemetry_proto`'s structs, and sends them over gRPC
//! or HTTP/protobuf.
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
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter as SdkSpanExporter, SpanProcessor};

use crate::config::{Protocol, TracingConfig};

pub mod compress;
pub mod encode;
mod pipeline_metrics;
mod transport;

pub(crate) use pipeline_metrics::register_pipeline_metrics;

pub(crate) use transport::OtlpExporter;

/// How often an ongoing export failure is logged again.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Counters of one process's span pipeline.
#[derive(Debug, Default)]
pub struct ExportCounters {
    ended: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    last_failure_log_ms: AtomicU64,
    /// Spans the receiver rejected in an accepted request (OTLP partial
    /// success), reported by the exporter during its current export and
    /// moved from "exported" to "failed" when that export returns.
    rejected_pending: AtomicU64,
    started: std::sync::OnceLock<Instant>,
    /// Sampled spans started (the processor's `on_start`).
    spans_started: AtomicU64,
    /// Of `failed`, the spans a receiver rejected in an accepted request.
    rejected: AtomicU64,
    /// Spans ended but not yet handed to an export (the batch queue).
    queued: AtomicU64,
    /// Spans dropped because the queue was full.
    dropped_queue_full: AtomicU64,
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
    /// Spans dropped at the batch queue, full when they ended.
    pub dropped_queue_full: u64,
}

impl ExportStats {
    /// Spans not (yet) exported: failed, dropped at the full queue, or still queued.
    pub fn not_exported(&self) -> u64 {
        self.ended.saturating_sub(self.exported)
    }
}

impl ExportCounters {
    pub(crate) fn note_rejected(&self, spans: u64) {
        self.rejected_pending.fetch_add(spans, Ordering::Relaxed);
    }

    /// Whether a warning about the pipeline may be logged now: the first
    /// one, then at most one per [`FAILURE_LOG_INTERVAL`].
    pub(crate) fn log_due(&self) -> bool {
        let now = self.started.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
        let last = self.last_failure_log_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= FAILURE_LOG_INTERVAL.as_millis() as u64;
        due && self
            .last_failure_log_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    pub fn snapshot(&self) -> ExportStats {
        ExportStats {
            ended: self.ended.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            export_failed: self.failed.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
        }
    }
}

/// Wraps the batch processor to count what it is given, and keeps its
/// queue: a span that ends while `capacity` spans wait for an export is
/// dropped here, and counted, instead of inside the SDK's processor, which
/// keeps that number to itself. (The SDK's own queue is built larger, by
/// one batch, so that it never drops first: see [`sdk_queue_size`].)
#[derive(Debug)]
pub(crate) struct CountingProcessor<P> {
    pub(crate) inner: P,
    pub(crate) counters: Arc<ExportCounters>,
    pub(crate) capacity: u64,
}

/// The SDK batch processor's queue for a queue of `capacity` spans kept by
/// [`CountingProcessor`]: the spans the export thread took out of the SDK's
/// channel but has not yet handed to an export still count in ours.
pub(crate) fn sdk_queue_size(capacity: usize, max_export_batch_size: usize) -> usize {
    capacity + max_export_batch_size
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.counters.spans_started.fetch_add(1, Ordering::Relaxed);
        self.inner.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        self.counters.ended.fetch_add(1, Ordering::Relaxed);
        let admitted = self
            .counters
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                (q < self.capacity).then_some(q + 1)
            })
            .is_ok();
        if !admitted {
            self.counters
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
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
}

impl<E> CountingExporter<E> {
    pub(crate) fn new(inner: E, counters: Arc<ExportCounters>, endpoint: String) -> Self {
        Self {
            inner,
            counters,
            endpoint,
        }
    }
}

impl<E: SdkSpanExporter> SdkSpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        // Out of the queue: room for as many new spans.
        let _ = self
            .counters
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(n))
            });
        let started = Instant::now();
        let result = self.inner.export(batch).await;
        pipeline_metrics::export_duration(result.is_ok()).observe_duration(started.elapsed(), None);
        let rejected = self
            .counters
            .rejected_pending
            .swap(0, Ordering::Relaxed)
            .min(n);
        match &result {
            Ok(()) => {
                self.counters
                    .exported
                    .fetch_add(n - rejected, Ordering::Relaxed);
                self.counters.failed.fetch_add(rejected, Ordering::Relaxed);
                self.counters
                    .rejected
                    .fetch_add(rejected, Ordering::Relaxed);
            }
            Err(e) => {
                let failed = self.counters.failed.fetch_add(n, Ordering::Relaxed) + n;
                if self.counters.log_due() {
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
    Build(String),
}

pub(crate) fn build_otlp(
    cfg: &TracingConfig,
    counters: Arc<ExportCounters>,
) -> Result<CountingExporter<OtlpExporter>, ExporterError> {
    let endpoint = cfg.endpoint.to_string();
    let files = cfg
        .otlp_tls
        .clone()
        .map(|files| autobot_tls::TlsSource::load(files, false))
        .transpose()
        .map_err(|e| ExporterError::Build(e.to_string()))?;
    let exporter = match cfg.protocol {
        Protocol::Grpc => {
            // tonic spawns its connection task on the current runtime.
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(ExporterError::NoRuntime);
            }
            let mut metadata = tonic::metadata::MetadataMap::new();
            for h in &cfg.headers {
                // Only the name is ever reported: values are credentials.
                let key = tonic::metadata::MetadataKey::from_bytes(h.name.as_bytes())
                    .map_err(|_| invalid_header(&h.name))?;
                let value = h.value.parse().map_err(|_| invalid_header(&h.name))?;
                metadata.insert(key, value);
            }
            OtlpExporter::grpc(
                endpoint.trim_end_matches('/'),
                cfg.endpoint.scheme() == "https",
                files,
                metadata,
                cfg.compression,
                cfg.export_timeout,
                counters.clone(),
            )
            .map_err(ExporterError::Build)?
        }
        Protocol::HttpProtobuf => {
            // The configuration already made the endpoint the full traces
            // URL (…/v1/traces, or the signal-specific endpoint verbatim).
            let mut headers = reqwest::header::HeaderMap::new();
            for h in &cfg.headers {
                let name = reqwest::header::HeaderName::from_bytes(h.name.as_bytes())
                    .map_err(|_| invalid_header(&h.name))?;
                let mut value = reqwest::header::HeaderValue::from_str(&h.value)
                    .map_err(|_| invalid_header(&h.name))?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
            OtlpExporter::http(
                &endpoint,
                headers,
                files,
                cfg.compression,
                cfg.export_timeout,
                counters.clone(),
            )
        }
    };
    Ok(CountingExporter::new(exporter, counters, endpoint))
}

fn invalid_header(name: &str) -> ExporterError {
    ExporterError::Build(format!(
        "the export header {name:?} is not a valid HTTP header name and value"
    ))
}
