//! Shared test helpers: in-memory telemetry and small lookups on finished spans.

use std::collections::HashMap;

use autobot_tracing::{Propagators, TelemetryGuard, TracingConfig};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};

/// Installs telemetry that keeps finished spans in memory (in a test that
/// has a process of its own: see autobot_testkit::alone).
pub fn in_memory(rate: f64) -> (TelemetryGuard, InMemorySpanExporter) {
    in_memory_with(rate, Propagators::default())
}

/// [`in_memory`] with the given propagators (`OTEL_PROPAGATORS`).
pub fn in_memory_with(
    rate: f64,
    propagators: Propagators,
) -> (TelemetryGuard, InMemorySpanExporter) {
    autobot_testkit::alone::assert_alone();
    let exporter = InMemorySpanExporter::default();
    let cfg = TracingConfig {
        sample_rate: rate,
        log_filter: "warn".into(),
        propagators,
        ..TracingConfig::default()
    };
    let guard = autobot_tracing::init_with_exporter("test-service", "0.0.0", cfg, exporter.clone())
        .expect("telemetry installs");
    (guard, exporter)
}

pub fn spans(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter.get_finished_spans().expect("finished spans")
}

pub fn find<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name:?} in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

pub fn attrs(span: &SpanData) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}
