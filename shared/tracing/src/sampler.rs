//! The sampler every AutoBot service uses: ParentBased(TraceIdRatioBased).
//!
//! A parent's decision always wins, at every rate, so a trace is kept or
//! dropped whole. One refinement over the SDK's ParentBased: a B3 caller that
//! "defers" (sends ids without a sampling flag) gets the ratio decision
//! instead of being dropped, as the B3 specification intends.

use opentelemetry::trace::{Link, SpanContext, SpanKind, TraceContextExt, TraceFlags, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

/// B3's "deferred" flag as the B3 propagator stores it in the trace flags.
const B3_DEFERRED: TraceFlags = TraceFlags::new(0x02);

/// The sampler `init` installs; public so tools and tests can use the same decision.
#[derive(Debug, Clone)]
pub struct AutobotSampler {
    root: Sampler,
}

impl AutobotSampler {
    /// ParentBased(TraceIdRatioBased(`rate`)), honouring B3 "deferred".
    pub fn new(rate: f64) -> Self {
        Self {
            root: Sampler::TraceIdRatioBased(rate),
        }
    }
}

/// Whether a span started under `parent` is dropped whatever the rate: the
/// parent is a valid span context that is not sampled and not a B3 caller
/// deferring the decision (the same rule as `should_sample` below). Lets a
/// span's start skip work for a span that will record nothing.
pub(crate) fn parent_drops(parent: &Context) -> bool {
    if !parent.has_active_span() {
        return false;
    }
    let span = parent.span();
    let sc = span.span_context();
    sc.is_valid() && !sc.is_sampled() && !is_deferred(sc)
}

fn is_deferred(sc: &SpanContext) -> bool {
    sc.is_remote() && !sc.is_sampled() && sc.trace_flags() & B3_DEFERRED == B3_DEFERRED
}

impl ShouldSample for AutobotSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid());
        let Some(parent) = parent else {
            return self.root.should_sample(
                parent_context,
                trace_id,
                name,
                span_kind,
                attributes,
                links,
            );
        };
        let decision = if parent.is_sampled() {
            SamplingDecision::RecordAndSample
        } else if is_deferred(&parent) {
            self.root
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
                .decision
        } else {
            SamplingDecision::Drop
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: parent.trace_state().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceState};

    use super::*;

    fn under(flags: TraceFlags, remote: bool) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            flags,
            remote,
            TraceState::default(),
        ))
    }

    #[test]
    fn only_a_parent_that_dropped_the_trace_drops_the_span_before_the_sampler() {
        assert!(
            !parent_drops(&Context::new()),
            "a root is the rate's to decide"
        );
        assert!(!parent_drops(&under(TraceFlags::SAMPLED, true)));
        assert!(parent_drops(&under(TraceFlags::default(), true)));
        assert!(parent_drops(&under(TraceFlags::default(), false)));
        assert!(
            !parent_drops(&under(B3_DEFERRED, true)),
            "a B3 caller that defers gets the rate's decision"
        );
        // The same answers as the sampler itself.
        let sampler = AutobotSampler::new(1.0);
        for (cx, dropped) in [
            (under(TraceFlags::default(), true), true),
            (under(TraceFlags::SAMPLED, true), false),
            (under(B3_DEFERRED, true), false),
        ] {
            let decision = sampler
                .should_sample(
                    Some(&cx),
                    TraceId::from(7),
                    "x",
                    &SpanKind::Server,
                    &[],
                    &[],
                )
                .decision;
            assert_eq!(decision == SamplingDecision::Drop, dropped);
        }
    }
}
