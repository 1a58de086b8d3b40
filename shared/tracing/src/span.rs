//! Domain spans made with the OpenTelemetry API directly, for the hot ones
//! (`llm.inference` on every chat request).
//!
//! A `tracing` span through the bridge (tracing-opentelemetry) does its work
//! whatever the sampling decision: it formats and collects every field into
//! the SDK's builder before the sampler runs, and activates its context on
//! every poll. An [`OtelSpan`] asks the sampler first, so a caller builds
//! attributes only for a span that is kept (`is_recording`), and its context
//! is attached once per poll of the future it wraps. Its parent is
//! `Context::current()`: the request's SERVER span (the server layer
//! attaches it) or the innermost entered `tracing` span. Work inside it sees
//! it as current: `tracing` spans nest under it, the traced HTTP client
//! makes its CLIENT span its child, log lines carry its ids.

use std::future::Future;

use opentelemetry::context::{ContextGuard, FutureExt as _, WithContext};
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanKind, TraceContextExt, TraceFlags, Tracer,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator, SdkTracer, Span as SdkSpan};

use crate::errors::record_error_on_span;

/// Room for the attributes of a domain span (`llm.inference` sets about 20).
const DOMAIN_SPAN_ATTRIBUTES: usize = 32;

/// Starts `builder` under `parent` and returns the context that holds the
/// new span; `record` gives a kept span its attributes (and name).
///
/// Two savings (docs/performance.md, "Product path"), the span and its
/// parent links unchanged:
/// - A span whose parent has already dropped the trace records nothing
///   (ParentBased, sampler.rs), whatever the rate: it is not built by the
///   SDK (builder, sampler, a boxed non-recording span) but is only a span
///   context with its own span id, the parent's trace id and trace state,
///   not sampled — what the SDK's span would carry — so the decision still
///   travels on, to our children and to the next service.
/// - Any other span may be kept, and its builder brings an empty `Vec` with
///   room for `room` attributes, which the SDK moves into the kept span
///   (it started empty and grew three to four times per span, copying its
///   contents each time); a root the sampler drops frees it unused.
pub(crate) fn start_in_context(
    tracer: &SdkTracer,
    mut builder: SpanBuilder,
    parent: &Context,
    room: usize,
    record: impl FnOnce(&mut SdkSpan),
) -> Context {
    if crate::sampler::parent_drops(parent) {
        let parent_span = parent.span();
        let parent_sc = parent_span.span_context();
        let sc = SpanContext::new(
            parent_sc.trace_id(),
            RandomIdGenerator::default().new_span_id(),
            TraceFlags::default(),
            false,
            parent_sc.trace_state().clone(),
        );
        return parent.with_remote_span_context(sc);
    }
    builder.attributes = Some(Vec::with_capacity(room));
    let mut span = builder.start_with_context(tracer, parent);
    if span.is_recording() {
        record(&mut span);
    }
    parent.with_span(span)
}

/// A span on the OpenTelemetry API; it ends when dropped (or at [`OtelSpan::end`]).
#[derive(Debug)]
pub struct OtelSpan {
    cx: Context,
    /// Whether `cx` holds a span of ours (not only the caller's context).
    owned: bool,
}

impl OtelSpan {
    /// A CLIENT span (a call to another system) under the current context.
    pub fn client(name: &'static str) -> Self {
        Self::start(name, SpanKind::Client)
    }

    /// An INTERNAL span under the current context.
    pub fn internal(name: &'static str) -> Self {
        Self::start(name, SpanKind::Internal)
    }

    fn start(name: &'static str, kind: SpanKind) -> Self {
        let parent = Context::current();
        match crate::init::tracer() {
            Some(tracer) => Self {
                cx: start_in_context(
                    tracer,
                    tracer.span_builder(name).with_kind(kind),
                    &parent,
                    DOMAIN_SPAN_ATTRIBUTES,
                    |_| {},
                ),
                owned: true,
            },
            // Tracing is off: the work inside still passes the caller's context on.
            None => Self {
                cx: parent,
                owned: false,
            },
        }
    }

    /// Whether the span is kept: build attributes only when it is.
    pub fn is_recording(&self) -> bool {
        self.owned && self.cx.span().is_recording()
    }

    /// Sets attributes (a no-op on a span that is not kept; build them
    /// behind [`OtelSpan::is_recording`] to save the work).
    pub fn set_attributes(&self, attributes: impl IntoIterator<Item = KeyValue>) {
        if self.is_recording() {
            self.cx.span().set_attributes(attributes);
        }
    }

    /// Sets one attribute.
    pub fn set_attribute(&self, attribute: KeyValue) {
        if self.is_recording() {
            self.cx.span().set_attribute(attribute);
        }
    }

    /// Marks the span failed: status ERROR, an `exception` event and
    /// `error.type` (as [`crate::record_error_message`] does on a `tracing` span).
    pub fn record_error(&self, error_type: &str, message: &str) {
        if self.is_recording() {
            record_error_on_span(&self.cx.span(), error_type.to_owned(), message.to_owned());
        }
    }

    /// Runs `future` with this span as the current context on every poll.
    pub fn wrap<F: Future>(&self, future: F) -> WithContext<F> {
        future.with_context(self.cx.clone())
    }

    /// Makes this span current until the guard is dropped (log lines written
    /// meanwhile carry its ids).
    pub fn attach(&self) -> ContextGuard {
        self.cx.clone().attach()
    }

    /// The span's context (to inject, or to parent other spans).
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// The trace id metrics carry as an exemplar, when the span is sampled.
    pub fn exemplar(&self) -> Option<autobot_metrics::TraceId> {
        crate::http::exemplar(&self.cx)
    }

    /// Ends the span now.
    pub fn end(self) {}
}

impl Drop for OtelSpan {
    fn drop(&mut self) {
        if self.owned {
            self.cx.span().end();
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceId, TraceState, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    use super::*;
    use crate::sampler::AutobotSampler;

    fn caller(flags: TraceFlags) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0x1234),
            SpanId::from(0x99),
            flags,
            true,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        ))
    }

    fn tracer() -> (SdkTracerProvider, SdkTracer, InMemorySpanExporter) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(AutobotSampler::new(1.0))
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("test");
        (provider, tracer, exporter)
    }

    #[test]
    fn under_a_caller_that_dropped_the_trace_a_span_is_a_new_id_that_carries_the_decision() {
        let (_provider, tracer, exporter) = tracer();
        let parent = caller(TraceFlags::default());
        let mut recorded = false;
        let cx = start_in_context(&tracer, tracer.span_builder("GET"), &parent, 8, |_| {
            recorded = true;
        });
        let span = cx.span();
        let sc = span.span_context();
        assert!(!recorded, "nothing is built for a span that is not kept");
        assert!(!span.is_recording());
        assert_eq!(sc.trace_id(), TraceId::from(0x1234));
        assert!(sc.is_valid());
        assert_ne!(sc.span_id(), SpanId::from(0x99), "a span id of its own");
        assert!(!sc.is_sampled());
        assert!(!sc.is_remote());
        assert_eq!(sc.trace_state().get("vendor"), Some("x"));
        // Its own children are dropped the same way, in the same trace.
        let child = start_in_context(&tracer, tracer.span_builder("POST"), &cx, 8, |_| {});
        let child_sc = child.span().span_context().clone();
        assert_eq!(child_sc.trace_id(), sc.trace_id());
        assert_ne!(child_sc.span_id(), sc.span_id());
        assert!(!child_sc.is_sampled());
        child.span().end();
        cx.span().end();
        assert!(exporter.get_finished_spans().unwrap().is_empty());
    }

    #[test]
    fn under_a_sampled_caller_the_span_is_kept_with_its_attributes_and_parent() {
        let (_provider, tracer, exporter) = tracer();
        let parent = caller(TraceFlags::SAMPLED);
        let cx = start_in_context(&tracer, tracer.span_builder("GET"), &parent, 2, |span| {
            span.update_name("GET /items");
            for i in 0..5_i64 {
                span.set_attribute(KeyValue::new(format!("k{i}"), i));
            }
        });
        assert!(cx.span().is_recording());
        cx.span().end();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.name, "GET /items");
        assert_eq!(span.parent_span_id, SpanId::from(0x99));
        assert_eq!(span.span_context.trace_id(), TraceId::from(0x1234));
        assert_eq!(span.attributes.len(), 5, "more than the room is kept too");
    }
}
