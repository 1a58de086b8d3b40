//! One span as `serve` keeps it and the client reads it back: the OTLP span
//! with the resource and scope it came with. Every view of a trace (Jaeger's
//! v1 JSON in `jaeger.rs`, OTLP-JSON in `otlp_json.rs`, searches in
//! `search.rs`) is built from these.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

/// A span decoded, with the resource and scope it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSpan {
    /// The resource's `service.name` ("" when it has none).
    pub service: Arc<str>,
    pub resource: Arc<Resource>,
    pub scope: Arc<InstrumentationScope>,
    pub span: Span,
}

impl StoredSpan {
    pub fn duration_nanos(&self) -> u64 {
        self.span
            .end_time_unix_nano
            .saturating_sub(self.span.start_time_unix_nano)
    }
}
