//! ParentBased(TraceIdRatioBased) at every rate.

use autobot_tracing::{AutobotSampler, extract_headers};
use http::HeaderMap;
use opentelemetry::trace::{SpanKind, TraceContextExt, TraceId};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::support::{in_memory, spans};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

#[test]
fn a_sampled_remote_parent_is_kept_at_rate_zero() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_guard, exporter) = in_memory(0.0);
    let parent = extract_headers(&headers(&[(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )]));
    let span = tracing::info_span!("child");
    span.set_parent(parent).unwrap();
    drop(span.entered());
    let done = spans(&exporter);
    assert_eq!(done.len(), 1, "the parent's decision wins over rate 0");
    assert_eq!(
        done[0].span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(done[0].parent_span_id.to_string(), "b7ad6b7169203331");
}

#[test]
fn an_unsampled_remote_parent_is_dropped_at_rate_one() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_guard, exporter) = in_memory(1.0);
    let parent = extract_headers(&headers(&[(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
    )]));
    let span = tracing::info_span!("child");
    span.set_parent(parent).unwrap();
    let cx = span.context();
    drop(span.entered());
    assert!(spans(&exporter).is_empty(), "the caller said not sampled");
    assert!(!cx.span().span_context().is_sampled());
    assert_eq!(
        cx.span().span_context().trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c",
        "the trace id is kept for propagation"
    );
}

#[test]
fn roots_follow_the_rate() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_guard, exporter) = in_memory(0.0);
    drop(tracing::info_span!("root").entered());
    assert!(spans(&exporter).is_empty());
}

#[test]
fn a_deferred_b3_parent_gets_the_ratio_decision() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_guard, exporter) = in_memory(1.0);
    // b3 without a sampling flag: the caller defers the decision to us.
    let parent = extract_headers(&headers(&[(
        "b3",
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1",
    )]));
    let span = tracing::info_span!("child");
    span.set_parent(parent).unwrap();
    drop(span.entered());
    let done = spans(&exporter);
    assert_eq!(done.len(), 1);
    assert_eq!(
        done[0].span_context.trace_id().to_string(),
        "80f198ee56343ba864fe8b2a57d3eff7"
    );
}

/// Two services configured alike take the same decision for the same trace
/// id, so a trace is never half kept.
#[test]
fn same_trace_id_same_decision_in_two_samplers() {
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};
    let (a, b) = (AutobotSampler::new(0.5), AutobotSampler::new(0.5));
    let mut kept = 0u32;
    for i in 0..2000u128 {
        let trace_id = TraceId::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) | 1);
        let decide = |s: &AutobotSampler| {
            s.should_sample(None, trace_id, "x", &SpanKind::Server, &[], &[])
                .decision
                == SamplingDecision::RecordAndSample
        };
        let (da, db) = (decide(&a), decide(&b));
        assert_eq!(da, db, "trace {trace_id}");
        kept += u32::from(da);
    }
    let ratio = f64::from(kept) / 2000.0;
    assert!(
        (0.4..0.6).contains(&ratio),
        "about half kept at 0.5, got {ratio}"
    );
}
