//! Recording a failure on a span the way OpenTelemetry expects it: status
//! ERROR with the message, an `exception` event, and `error.type`. Two doors,
//! the same record: a `tracing` span ([`record_error_message`]) and an
//! OpenTelemetry span ([`record_error_on_span`], for the spans made with the
//! OpenTelemetry API directly, such as the HTTP CLIENT span).

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanRef, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Marks `span` failed. `error_type` is a low-cardinality class such as
/// `timeout`, `connect_error` or `502`; the message must carry no secret.
pub fn record_error(span: &tracing::Span, error_type: &str, error: &dyn std::error::Error) {
    record_error_message(span, error_type, &error_chain(error));
}

/// Like [`record_error`] for a failure that is only a message.
pub fn record_error_message(span: &tracing::Span, error_type: &str, message: &str) {
    span.set_attribute("error.type", error_type.to_owned());
    span.add_event(
        "exception",
        exception_attributes(error_type.to_owned(), message.to_owned()),
    );
    span.set_status(Status::error(message.to_owned()));
}

/// [`record_error_message`] on an OpenTelemetry span: the same `error.type`,
/// `exception` event and status.
pub(crate) fn record_error_on_span(span: &SpanRef<'_>, error_type: String, message: String) {
    span.set_attribute(KeyValue::new("error.type", error_type.clone()));
    span.add_event(
        "exception",
        exception_attributes(error_type, message.clone()),
    );
    span.set_status(Status::error(message));
}

/// The `exception` event's attributes.
fn exception_attributes(error_type: String, message: String) -> Vec<KeyValue> {
    vec![
        KeyValue::new("exception.type", error_type),
        KeyValue::new("exception.message", message),
    ]
}

/// `outer: inner: innermost`, the way operators read errors.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        source = e.source();
    }
    out
}
