//! Spans bounded in bytes: the OpenTelemetry attribute limits
//! (OTEL_[SPAN_]ATTRIBUTE_VALUE_LENGTH_LIMIT, OTEL_[SPAN_]ATTRIBUTE_COUNT_LIMIT,
//! config.rs reads them). The SDK applies the counts as attributes are set;
//! it has no value-length limit, so [`LimitedProcessor`] cuts every string
//! (span, event and link attributes, arrays element by element, and the
//! status message) when the span ends, before it is queued: whatever a
//! caller sends (a 400 KB Host header, a 1 MB prompt), a queued span holds
//! at most the limit per value.

use std::time::Duration;

use opentelemetry::trace::Status;
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::config::AttributeLimits;

/// The longest start of `s` that holds at most `max` characters, or `None`
/// when `s` is not longer.
fn cut(s: &str, max: usize) -> Option<&str> {
    // Bytes first: a string of at most `max` bytes has at most `max` characters.
    if s.len() <= max {
        return None;
    }
    s.char_indices().nth(max).map(|(at, _)| &s[..at])
}

fn limit_string(s: &mut StringValue, max: usize) {
    if let Some(kept) = cut(s.as_str(), max) {
        *s = StringValue::from(kept.to_owned());
    }
}

fn limit_value(value: &mut Value, max: usize) {
    match value {
        Value::String(s) => limit_string(s, max),
        Value::Array(Array::String(items)) => {
            for s in items {
                limit_string(s, max);
            }
        }
        _ => {}
    }
}

fn limit_attributes(attributes: &mut [KeyValue], max: usize) {
    for kv in attributes {
        limit_value(&mut kv.value, max);
    }
}

/// Cuts every string value of `span` to `limits.value_length` characters.
pub(crate) fn limit_span(span: &mut SpanData, limits: &AttributeLimits) {
    let max = limits.value_length;
    limit_attributes(&mut span.attributes, max);
    for event in &mut span.events.events {
        limit_attributes(&mut event.attributes, max);
    }
    for link in &mut span.links.links {
        limit_attributes(&mut link.attributes, max);
    }
    if let Status::Error { description } = &span.status
        && let Some(kept) = cut(description, max)
    {
        span.status = Status::error(kept.to_owned());
    }
}

/// Applies the value-length limit to each span before handing it on.
#[derive(Debug)]
pub(crate) struct LimitedProcessor<P> {
    pub(crate) inner: P,
    pub(crate) limits: AttributeLimits,
}

impl<P: SpanProcessor> SpanProcessor for LimitedProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }
    fn on_end(&self, mut span: SpanData) {
        limit_span(&mut span, &self.limits);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_cut_at_the_limit_in_characters_and_nothing_else_changes() {
        assert_eq!(cut("abc", 3), None);
        assert_eq!(cut("abcd", 3), Some("abc"));
        assert_eq!(cut("ééé", 3), None, "6 bytes, 3 characters");
        assert_eq!(cut("éééé", 3), Some("ééé"));

        let mut attributes = vec![
            KeyValue::new("host", "h".repeat(400_000)),
            KeyValue::new("n", 7_i64),
            KeyValue::new(
                "list",
                Value::Array(Array::String(vec!["x".repeat(10).into(), "y".into()])),
            ),
        ];
        limit_attributes(&mut attributes, 4);
        assert_eq!(attributes[0].value.as_str(), "hhhh");
        assert_eq!(attributes[1].value, Value::I64(7));
        assert_eq!(
            attributes[2].value,
            Value::Array(Array::String(vec!["xxxx".into(), "y".into()]))
        );
    }
}
