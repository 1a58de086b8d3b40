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
use opentelemetry::trace::{SpanBuilder, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span as SdkSpan};

use crate::errors::record_error_on_span;

/// Room for the attributes of a domain span (`llm.inference` sets about 20).
const DOMAIN_SPAN_ATTRIBUTES: usize = 32;

/// Starts `builder` under `parent` with room for `room` attributes.
///
/// The SDK keeps a span's attributes in a `Vec` that starts empty unless the
/// builder brings one, and every `set_attribute` pushed into it: it grew
/// three to four times per span, copying its contents each time
/// (docs/performance.md, "Product path"). A span whose parent has already
/// dropped the trace records nothing (ParentBased, sampler.rs), so it gets
/// no room; any other may be kept, and its builder brings an empty `Vec`
/// with the room, which the SDK moves into the kept span (a root the
/// sampler drops frees it unused).
pub(crate) fn start_with_room(
    tracer: &SdkTracer,
    mut builder: SpanBuilder,
    parent: &Context,
    room: usize,
) -> SdkSpan {
    if !crate::sampler::parent_drops(parent) {
        builder.attributes = Some(Vec::with_capacity(room));
    }
    builder.start_with_context(tracer, parent)
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
            Some(tracer) => {
                let span = start_with_room(
                    tracer,
                    tracer.span_builder(name).with_kind(kind),
                    &parent,
                    DOMAIN_SPAN_ATTRIBUTES,
                );
                Self {
                    cx: parent.with_span(span),
                    owned: true,
                }
            }
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
