//! Context propagation: the global composite propagator and the carriers
//! AutoBot uses (HTTP headers, string maps). Extraction never fails: a
//! malformed or oversized value is ignored and the caller starts a new root.

use std::collections::BTreeMap;

use http::HeaderMap;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, global};
use opentelemetry_propagator_b3::{B3Encoding, Propagator as B3Propagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

use crate::config::Propagators;

/// Context values longer than this are ignored. W3C asks for 512 bytes of
/// tracestate and 8192 of baggage; nothing legitimate is longer.
pub const MAX_CONTEXT_VALUE_BYTES: usize = 8192;

/// Builds the composite propagator. B3 comes first and W3C after it:
/// extraction is a fold in which the last valid context wins, so a caller
/// that sends both is continued from its `traceparent`.
pub(crate) fn build_propagator(p: &Propagators) -> TextMapCompositePropagator {
    let mut list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
    let b3 = match (p.b3_single, p.b3_multi) {
        (true, true) => Some(B3Encoding::SingleAndMultiHeader),
        (true, false) => Some(B3Encoding::SingleHeader),
        (false, true) => Some(B3Encoding::MultipleHeader),
        (false, false) => None,
    };
    if let Some(encoding) = b3 {
        list.push(Box::new(B3Propagator::with_encoding(encoding)));
    }
    if p.tracecontext {
        list.push(Box::new(TraceContextPropagator::new()));
    }
    if p.baggage {
        list.push(Box::new(BaggagePropagator::new()));
    }
    TextMapCompositePropagator::new(list)
}

/// Hides values that are too large to be a trace context.
struct Bounded<'a>(&'a dyn Extractor);

impl Extractor for Bounded<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .filter(|v| v.len() <= MAX_CONTEXT_VALUE_BYTES)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

/// Extracts a context with the global propagator; never fails.
pub fn extract(carrier: &dyn Extractor) -> Context {
    global::get_text_map_propagator(|p| p.extract(&Bounded(carrier)))
}

/// Injects `cx` with the global propagator.
pub fn inject(cx: &Context, carrier: &mut dyn Injector) {
    global::get_text_map_propagator(|p| p.inject_context(cx, carrier));
}

/// Extracts the caller's context from HTTP headers.
pub fn extract_headers(headers: &HeaderMap) -> Context {
    extract(&opentelemetry_http::HeaderExtractor(headers))
}

/// Injects `cx` into HTTP headers (traceparent, tracestate, baggage, b3, x-b3-*).
pub fn inject_headers(cx: &Context, headers: &mut HeaderMap) {
    inject(cx, &mut opentelemetry_http::HeaderInjector(headers));
}

/// A string map carrier with lower-case keys (the Redis job envelope's `trace` map).
pub(crate) struct MapCarrier<'a>(pub &'a BTreeMap<String, String>);

impl Extractor for MapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(&key.to_ascii_lowercase()).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

pub(crate) struct MapInjector<'a>(pub &'a mut BTreeMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if !value.is_empty() {
            self.0.insert(key.to_ascii_lowercase(), value);
        }
    }
}

/// Injects the current context into a string map (empty values are skipped).
pub fn inject_current_into_map(map: &mut BTreeMap<String, String>) {
    inject(&current_context(), &mut MapInjector(map));
}

/// Extracts a context from a string map.
pub fn extract_from_map(map: &BTreeMap<String, String>) -> Context {
    extract(&MapCarrier(map))
}

/// The current OpenTelemetry context: the innermost entered `tracing` span,
/// or the context an AutoBot server layer attached to the request.
pub fn current_context() -> Context {
    Context::current()
}

/// The trace id of the current context, as 32 lower-case hex digits.
pub fn current_trace_id() -> Option<String> {
    let cx = Context::current();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The W3C `traceresponse` value for a context: `00-{trace}-{span}-{flags}`.
pub fn traceresponse_value(cx: &Context) -> Option<String> {
    traceresponse_bytes(cx).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `traceresponse` written as hex into a fixed buffer: it is on every
/// response, and `format!` cost ten times as much (docs/performance.md).
pub(crate) fn traceresponse_bytes(cx: &Context) -> Option<[u8; 55]> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let mut out = [b'-'; 55];
    out[0] = b'0';
    out[1] = b'0';
    let mut put = |at: usize, bytes: &[u8]| {
        for (i, b) in bytes.iter().enumerate() {
            out[at + 2 * i] = HEX[usize::from(b >> 4)];
            out[at + 2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
    };
    put(3, &sc.trace_id().to_bytes());
    put(36, &sc.span_id().to_bytes());
    put(53, &[sc.trace_flags().to_u8() & 0x01]);
    Some(out)
}
