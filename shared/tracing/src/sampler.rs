//! The sampler every AutoBot service uses: ParentBased(TraceIdRatioBased).
//!
//! A parent's decision always wins, at every rate, so a trace is kept or
//! dropped whole. One refinement over the SDK's ParentBased: a B3 caller that
//! "defers" (sends ids without a sampling flag) gets the ratio decision
//! instead of being dropped, as the B3 specification intends.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceFlags, TraceId};
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
        let deferred = parent.is_remote()
            && !parent.is_sampled()
            && parent.trace_flags() & B3_DEFERRED == B3_DEFERRED;
        let decision = if parent.is_sampled() {
            SamplingDecision::RecordAndSample
        } else if deferred {
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
