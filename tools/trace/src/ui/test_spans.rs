//! Spans the UI's unit tests build traces from.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span};

use crate::stored::StoredSpan;
use crate::test_support::string;

/// A span of trace 1: id and parent as one repeated byte (0: no parent),
/// times in nanoseconds.
pub fn span(service: &str, id: u8, parent: u8, start: u64, end: u64) -> StoredSpan {
    StoredSpan {
        service: Arc::from(service),
        resource: Arc::new(Resource {
            attributes: vec![string("service.name", service)],
            ..Default::default()
        }),
        scope: Arc::new(InstrumentationScope::default()),
        span: Span {
            trace_id: vec![0; 15].into_iter().chain([1]).collect(),
            span_id: vec![id; 8],
            parent_span_id: if parent == 0 {
                Vec::new()
            } else {
                vec![parent; 8]
            },
            name: format!("op{id}"),
            kind: 1,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        },
    }
}

/// The same, of another kind (OTLP's numbers: 2 server, 3 client, 4 producer, 5 consumer).
pub fn kind(mut s: StoredSpan, kind: i32) -> StoredSpan {
    s.span.kind = kind;
    s
}

/// The same, with status ERROR.
pub fn failed(mut s: StoredSpan) -> StoredSpan {
    s.span.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    s
}

/// The same, in another trace (its id: 15 zero bytes then `trace`).
pub fn in_trace(mut s: StoredSpan, trace: u8) -> StoredSpan {
    s.span.trace_id = vec![0; 15].into_iter().chain([trace]).collect();
    s
}

/// The same, with a link to span `id` of trace `trace`.
pub fn linked(mut s: StoredSpan, trace: u8, id: u8) -> StoredSpan {
    s.span.links.push(span::Link {
        trace_id: vec![0; 15].into_iter().chain([trace]).collect(),
        span_id: vec![id; 8],
        ..Default::default()
    });
    s
}
