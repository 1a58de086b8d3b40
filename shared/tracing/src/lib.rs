//! # autobot-tracing
//!
//! The one place in AutoBot that knows OpenTelemetry. A service calls
//! [`init`] once, adds [`http::server_layer`] to its router, makes its calls
//! with [`http::client`], and uses [`redis`] and [`env_carrier`] to carry the trace
//! across Redis and SSH. Domain spans are plain `tracing` spans
//! (`tracing::info_span!("npu.inference", otel.kind = "client", …)`), or, on
//! a hot path, [`span::OtelSpan`]s (`llm.inference`), which cost nothing
//! beyond the sampler's decision when the trace is not kept.
//!
//! Rules this crate enforces for every service:
//! - sampling is ParentBased(TraceIdRatioBased(rate)) at every rate, so a
//!   trace is kept or dropped whole;
//! - the caller's context is extracted before a SERVER span starts, and a
//!   CLIENT span injects from inside itself;
//! - a malformed context header starts a new root, never an error;
//! - secrets never reach a span (see [`redact`]).

pub mod config;
pub mod env_carrier;
mod errors;
mod export;
pub mod http;
mod init;
mod limits;
mod logging;
mod propagation;
pub mod redact;
pub mod redis;
mod sampler;
pub mod span;

pub use config::{AttributeLimits, Compression, LogFormat, Propagators, Protocol, TracingConfig};
pub use errors::{error_chain, record_error, record_error_message};
pub use export::ExportStats;
/// gzip of OTLP bodies as the exporter does it, public for its benchmark.
#[doc(hidden)]
pub use export::compress::{GZIP_LEVEL, gzip, gzip_at};
/// AutoBot's OTLP protobuf encoder, public for its equivalence tests and benchmarks.
#[doc(hidden)]
pub use export::encode::TraceEncoder;
pub use init::{
    InitError, SCOPE_NAME, TelemetryGuard, init, init_with, init_with_batch_exporter,
    init_with_exporter,
};
pub use opentelemetry::{Context, KeyValue};
pub use propagation::{
    AutobotPropagator, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, MAX_CONTEXT_VALUE_BYTES,
    MAX_TRACESTATE_BYTES, MAX_TRACESTATE_MEMBERS, cap_baggage, cap_tracestate, current_context,
    current_trace_id, extract_from_map, extract_headers, inject_current_into_map, inject_headers,
    traceresponse_value,
};
pub use sampler::AutobotSampler;

/// The trace id of a `tracing` span when it is sampled: the exemplar its
/// metrics carry (autobot-metrics), so that a latency bucket leads to a trace.
pub fn exemplar_of(span: &tracing::Span) -> Option<autobot_metrics::TraceId> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    http::exemplar(&span.context())
}

/// The trace id of a `tracing` span, as 32 lower-case hex digits.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}
