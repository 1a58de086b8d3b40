//! Round trips through the global composite propagator, and what a malformed
//! header does (nothing: a new root).

use std::collections::BTreeMap;

use autobot_tracing::{extract_from_map, extract_headers, inject_current_into_map, inject_headers};
use http::HeaderMap;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use proptest::prelude::*;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::support::in_memory;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

fn ids(cx: &Context) -> (String, String, bool) {
    let span = cx.span();
    let sc = span.span_context();
    (
        sc.trace_id().to_string(),
        sc.span_id().to_string(),
        sc.is_sampled(),
    )
}

#[test]
fn w3c_traceparent_and_tracestate_are_continued() {
    let (_g, _e) = in_memory(1.0);
    let cx = extract_headers(&headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("tracestate", "vendor=opaque,other=1"),
    ]));
    assert_eq!(ids(&cx), (TRACE.into(), SPAN.into(), true));
    assert!(cx.span().span_context().is_remote());
    let mut out = HeaderMap::new();
    inject_headers(&cx, &mut out);
    assert_eq!(out["traceparent"], format!("00-{TRACE}-{SPAN}-01").as_str());
    assert_eq!(out["tracestate"], "vendor=opaque,other=1");
}

#[test]
fn every_format_is_injected_and_each_alone_is_extracted() {
    let (_g, _e) = in_memory(1.0);
    let span = tracing::info_span!("client");
    let cx = span
        .context()
        .with_baggage(vec![KeyValue::new("session", "s-42")]);
    let mut out = HeaderMap::new();
    inject_headers(&cx, &mut out);
    let (trace, span_id, _) = ids(&cx);
    assert_eq!(
        out["traceparent"],
        format!("00-{trace}-{span_id}-01").as_str()
    );
    assert_eq!(out["b3"], format!("{trace}-{span_id}-1").as_str());
    assert_eq!(out["x-b3-traceid"], trace.as_str());
    assert_eq!(out["x-b3-spanid"], span_id.as_str());
    assert_eq!(out["x-b3-sampled"], "1");
    assert_eq!(out["baggage"], "session=s-42");

    for only in [
        &["traceparent"][..],
        &["b3"],
        &["x-b3-traceid", "x-b3-spanid", "x-b3-sampled"],
    ] {
        let mut h = HeaderMap::new();
        for name in only {
            h.insert(*name, out[*name].clone());
        }
        let back = extract_headers(&h);
        assert_eq!(
            ids(&back),
            (trace.clone(), span_id.clone(), true),
            "from {only:?}"
        );
    }
    let back = extract_headers(&headers(&[("baggage", "session=s-42")]));
    assert_eq!(
        back.baggage().get("session").map(|v| v.to_string()),
        Some("s-42".into())
    );
}

#[test]
fn w3c_wins_when_a_caller_sends_both() {
    let (_g, _e) = in_memory(1.0);
    let cx = extract_headers(&headers(&[
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
    ]));
    assert_eq!(ids(&cx).0, TRACE);
}

#[test]
fn malformed_headers_give_a_new_root_and_no_error() {
    let (_g, _e) = in_memory(1.0);
    for bad in [
        vec![("traceparent", "00-zzzz-00f067aa0ba902b7-01")],
        vec![(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
        vec![(
            "traceparent",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
        vec![("traceparent", "garbage")],
        vec![("b3", "not-a-b3-header")],
        vec![("x-b3-traceid", "xyz"), ("x-b3-spanid", "1")],
        vec![("tracestate", "=,,=bad"), ("baggage", ";;;=%%%")],
    ] {
        let cx = extract_headers(&headers(&bad));
        assert!(
            !cx.span().span_context().is_valid(),
            "{bad:?} must not yield a parent"
        );
    }
}

#[test]
fn oversized_values_are_ignored() {
    let (_g, _e) = in_memory(1.0);
    let huge = format!("00-{TRACE}-{SPAN}-01{}", " ".repeat(9000));
    let cx = extract_headers(&headers(&[
        ("traceparent", huge.trim_end()),
        ("baggage", &format!("k={}", "v".repeat(9000))),
    ]));
    assert_eq!(ids(&cx).0, TRACE, "a normal traceparent still counts");
    assert!(cx.baggage().is_empty(), "9 KB of baggage is ignored");
}

#[test]
fn string_map_carrier_round_trip() {
    let (_g, _e) = in_memory(1.0);
    let span = tracing::info_span!("producer");
    let mut map = BTreeMap::new();
    {
        let _in = span.enter();
        inject_current_into_map(&mut map);
    }
    assert!(map.contains_key("traceparent") && map.contains_key("b3"));
    assert!(
        !map.contains_key("tracestate"),
        "empty values are skipped: {map:?}"
    );
    let back = extract_from_map(&map);
    assert_eq!(ids(&back).0, ids(&span.context()).0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn arbitrary_header_values_never_panic(
        traceparent in ".{0,120}",
        tracestate in ".{0,200}",
        b3 in "[0-9a-fA-F-]{0,80}",
        baggage in ".{0,200}",
        raw in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        crate::support::shared_in_memory();
        let mut h = HeaderMap::new();
        for (name, value) in [("traceparent", traceparent), ("tracestate", tracestate), ("b3", b3), ("baggage", baggage)] {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        if let Ok(v) = http::HeaderValue::from_bytes(&raw) {
            h.append("traceparent", v.clone());
            h.insert("x-b3-traceid", v);
        }
        let _ = extract_headers(&h);
    }
}
