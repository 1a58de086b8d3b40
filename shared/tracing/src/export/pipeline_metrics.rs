//! The span pipeline's own metrics on `/metrics` (docs/metrics.md,
//! "Telemetry pipeline"): spans started, ended, exported, dropped by reason,
//! the queue, and how long exports take. Read from [`ExportCounters`] at
//! scrape time, so the spans' path pays nothing more than its counters.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use autobot_metrics::{Collect, Family, HistogramSeries, Kind, Writer, buckets};

use super::ExportCounters;

/// `autobot_telemetry_export_duration_seconds{outcome}`.
pub(crate) fn export_duration(ok: bool) -> &'static HistogramSeries {
    family().with(&[if ok { "success" } else { "failure" }])
}

fn family() -> &'static Family<HistogramSeries> {
    autobot_metrics::histogram(
        "autobot_telemetry_export_duration_seconds",
        "Duration of one OTLP export call (retries included), by outcome.",
        &["outcome"],
        &buckets::JOB,
        buckets::SECONDS,
    )
}

struct Pipeline {
    counters: Arc<ExportCounters>,
    capacity: u64,
}

/// Exposes `counters` (the pipeline of the telemetry just started) on
/// `/metrics`; `capacity` is the batch queue's size.
pub(crate) fn register_pipeline_metrics(counters: Arc<ExportCounters>, capacity: u64) {
    let _ = family();
    autobot_metrics::set_collector("autobot_telemetry", Pipeline { counters, capacity });
}

impl Collect for Pipeline {
    fn collect(&self, out: &mut Writer) {
        let c = &self.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let counters = [
            (
                "autobot_telemetry_spans_started",
                "Sampled spans started (unsampled ones cost nothing and are not counted).",
                load(&c.spans_started),
            ),
            (
                "autobot_telemetry_spans_ended",
                "Sampled spans ended and handed to the batch queue.",
                load(&c.ended),
            ),
            (
                "autobot_telemetry_spans_exported",
                "Spans the OTLP receiver accepted.",
                load(&c.exported),
            ),
        ];
        for (name, help, value) in counters {
            out.family(name, help, Kind::Counter);
            out.counter(name, "", value);
        }
        let failed = load(&c.failed);
        let rejected = load(&c.rejected).min(failed);
        out.family(
            "autobot_telemetry_spans_dropped",
            "Spans lost, by reason: queue_full (ended while the queue was full), export_failed (the export failed after its retries), rejected (the receiver refused them in an accepted request).",
            Kind::Counter,
        );
        for (reason, value) in [
            ("queue_full", load(&c.dropped_queue_full)),
            ("export_failed", failed - rejected),
            ("rejected", rejected),
        ] {
            out.counter(
                "autobot_telemetry_spans_dropped",
                &format!("reason=\"{reason}\""),
                value,
            );
        }
        out.family(
            "autobot_telemetry_queue_size",
            "Spans ended and waiting for an export.",
            Kind::Gauge,
        );
        out.gauge("autobot_telemetry_queue_size", "", load(&c.queued) as f64);
        out.family(
            "autobot_telemetry_queue_capacity",
            "Spans the queue holds before it drops (OTEL_BSP_MAX_QUEUE_SIZE).",
            Kind::Gauge,
        );
        out.gauge("autobot_telemetry_queue_capacity", "", self.capacity as f64);
    }
}
