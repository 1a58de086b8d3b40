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

use autobot_tracing::Propagators;

use crate::support::{in_memory, in_memory_with};

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
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
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

/// `OTEL_PROPAGATORS=tracecontext,baggage,b3,b3multi`.
const ALL_FOUR: Propagators = Propagators {
    tracecontext: true,
    baggage: true,
    b3_single: true,
    b3_multi: true,
};

#[test]
fn by_default_b3_is_injected_as_the_single_header_only() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, _e) = in_memory(1.0);
    let span = tracing::info_span!("client");
    let cx = span.context();
    let mut out = HeaderMap::new();
    inject_headers(&cx, &mut out);
    let (trace, span_id, _) = ids(&cx);
    assert_eq!(out["b3"], format!("{trace}-{span_id}-1").as_str());
    assert!(out.contains_key("traceparent"));
    let multi: Vec<_> = out
        .keys()
        .filter(|k| k.as_str().starts_with("x-b3-"))
        .collect();
    assert!(multi.is_empty(), "X-B3-* sent by default: {multi:?}");
    // The multi form is still understood when a caller sends it.
    let mut h = HeaderMap::new();
    h.insert("x-b3-traceid", trace.parse().unwrap());
    h.insert("x-b3-spanid", span_id.parse().unwrap());
    h.insert("x-b3-sampled", "1".parse().unwrap());
    assert_eq!(ids(&extract_headers(&h)), (trace, span_id, true));
}

#[test]
fn without_a_trace_nothing_is_injected() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, _e) = in_memory_with(1.0, ALL_FOUR);
    let mut out = HeaderMap::new();
    inject_headers(&Context::new(), &mut out);
    assert!(out.is_empty(), "headers sent without a trace: {out:?}");
}

#[test]
fn every_format_is_injected_and_each_alone_is_extracted() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, _e) = in_memory_with(1.0, ALL_FOUR);
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
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, _e) = in_memory(1.0);
    let cx = extract_headers(&headers(&[
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
    ]));
    assert_eq!(ids(&cx).0, TRACE);
}

#[test]
fn malformed_headers_give_a_new_root_and_no_error() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
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
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
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
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
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

#[test]
fn arbitrary_header_values_never_panic() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, _e) = in_memory(1.0);
    proptest!(
        ProptestConfig::with_cases(512),
        |(
            traceparent in ".{0,120}",
            tracestate in ".{0,200}",
            b3 in "[0-9a-fA-F-]{0,80}",
            baggage in ".{0,200}",
            raw in proptest::collection::vec(any::<u8>(), 0..100),
        )| {
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
    );
}

// ---------------------------------------------------------------------------
// Differential tests: AutoBot's propagator (the HTTP fast path and the
// `TextMapPropagator` the map carriers use) against the SDK's propagators,
// composed the way `build_propagator` composed them before the fast path
// (B3, then W3C, then baggage; values over MAX_CONTEXT_VALUE_BYTES hidden).

mod differential {
    use std::collections::HashMap;

    use autobot_tracing::config::Propagators;
    use autobot_tracing::{AutobotPropagator, MAX_CONTEXT_VALUE_BYTES};
    use http::{HeaderMap, HeaderValue};
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator};
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_propagator_b3::{B3Encoding, Propagator as B3Propagator};
    use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
    use proptest::prelude::*;
    use proptest::sample::select;

    /// The SDK composite, as `build_propagator` built it before.
    fn sdk(p: &Propagators) -> TextMapCompositePropagator {
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

    /// Everything a context carries that propagation can change.
    type View = (
        bool,
        String,
        String,
        u8,
        bool,
        String,
        Vec<(String, String, String)>,
    );

    fn view(cx: &Context) -> View {
        let span = cx.span();
        let sc = span.span_context();
        let mut baggage: Vec<_> = cx
            .baggage()
            .iter()
            .map(|(k, (v, m))| (k.to_string(), v.to_string(), m.as_str().to_owned()))
            .collect();
        baggage.sort();
        (
            cx.has_active_span(),
            sc.trace_id().to_string(),
            sc.span_id().to_string(),
            sc.trace_flags().to_u8(),
            sc.is_remote(),
            sc.trace_state().header(),
            baggage,
        )
    }

    fn every_set() -> Vec<Propagators> {
        (0u8..16)
            .map(|bits| Propagators {
                tracecontext: bits & 1 != 0,
                baggage: bits & 2 != 0,
                b3_single: bits & 4 != 0,
                b3_multi: bits & 8 != 0,
            })
            .collect()
    }

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";

    /// Mostly `good`, else its near misses, else noise.
    fn id_part(good: &'static str) -> impl Strategy<Value = String> {
        prop_oneof![
            6 => Just(good.to_owned()),
            3 => select(vec![
                good.to_uppercase(),
                "0".repeat(good.len()),
                "463ac35c9f6413ad".to_owned(),
                T.to_owned(),
                S.to_owned(),
                format!("+{}", &good[1..]),
                format!("{good}ab"),
                format!("{good}a"),
                format!("{}g", &good[1..]),
                good[1..].to_owned(),
                "1".to_owned(),
                String::new(),
                "zz".to_owned(),
            ]),
            1 => "[0-9a-gA-G+]{0,34}",
        ]
    }

    fn traceparent() -> impl Strategy<Value = String> {
        let version = select(vec![
            "00", "01", "fe", "ff", "0", "000", "+0", "A0", "qw", "",
        ]);
        let flags = prop_oneof![
            3 => select(vec!["00", "01"]),
            1 => select(vec!["03", "09", "08", "A1", "+1", "1", "0100", "zz", ""]),
        ];
        let tail = prop_oneof![3 => Just(""), 1 => select(vec!["-", "-xyz", "-a-b", "--"])];
        let pad = select(vec!["", " ", "\t"]);
        prop_oneof![
            4 => (version, id_part(T), id_part(S), flags, tail, pad).prop_map(
                |(v, t, s, f, tail, pad)| format!("{pad}{v}-{t}-{s}-{f}{tail}{pad}")
            ),
            1 => ".{0,80}",
        ]
    }

    fn b3_single() -> impl Strategy<Value = String> {
        let sampled = select(vec![
            None,
            Some("0"),
            Some("1"),
            Some("d"),
            Some("true"),
            Some("false"),
            Some("x"),
            Some(""),
        ]);
        let parent = select(vec![
            None,
            Some(S),
            Some("xyz"),
            Some(""),
            Some("a-b"),
            Some("00f067aa0ba902b7-00f067aa0ba902b7"),
        ]);
        prop_oneof![
            4 => (id_part(T), id_part(S), sampled, parent).prop_map(|(t, s, sampled, parent)| {
                let mut v = format!("{t}-{s}");
                if let Some(x) = sampled {
                    v.push('-');
                    v.push_str(x);
                }
                if let Some(p) = parent {
                    v.push('-');
                    v.push_str(p);
                }
                v
            }),
            1 => select(vec!["0".to_owned(), "1".to_owned(), "d".to_owned(), "-".to_owned()]),
            1 => "[0-9a-f-]{0,80}",
        ]
    }

    fn flag_value() -> impl Strategy<Value = Option<String>> {
        select(vec![
            None,
            Some("0"),
            Some("1"),
            Some("d"),
            Some("true"),
            Some("false"),
            Some("2"),
        ])
        .prop_map(|o| o.map(str::to_owned))
    }

    fn tracestate() -> impl Strategy<Value = Option<String>> {
        select(vec![
            None,
            Some(""),
            Some("vendor=opaque,other=1"),
            Some("=,,=bad"),
            Some("k=v,k=v"),
            Some("a=1,b=2,c=3"),
        ])
        .prop_map(|o| o.map(str::to_owned))
    }

    fn baggage() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            select(vec![
                None,
                Some(String::new()),
                Some("session=s-42".to_owned()),
                Some("a=b;p=1, c = d ,e=%20f".to_owned()),
                Some(";;;=%%%".to_owned()),
                Some("%ff=1,ok=2".to_owned()),
                Some(format!("k={}", "v".repeat(9000))),
            ]),
            ".{0,60}".prop_map(Some),
        ]
    }

    #[derive(Debug, Clone)]
    struct Carried {
        traceparent: Option<String>,
        tracestate: Option<String>,
        b3: Option<String>,
        b3_trace: Option<String>,
        b3_span: Option<String>,
        b3_sampled: Option<String>,
        b3_flags: Option<String>,
        b3_parent: Option<String>,
        baggage: Option<String>,
    }

    fn carried() -> impl Strategy<Value = Carried> {
        (
            proptest::option::of(traceparent()),
            tracestate(),
            proptest::option::of(b3_single()),
            proptest::option::of(id_part(T)),
            proptest::option::of(id_part(S)),
            flag_value(),
            flag_value(),
            proptest::option::weighted(0.2, id_part(S)),
            baggage(),
            any::<bool>(),
        )
            .prop_map(
                |(tp, ts, b3, bt, bs, sampled, flags, parent, baggage, huge)| {
                    // Now and then a value just over the bound.
                    let tp = if huge {
                        tp.map(|v| format!("{v}{}", "0".repeat(MAX_CONTEXT_VALUE_BYTES)))
                    } else {
                        tp
                    };
                    Carried {
                        traceparent: tp,
                        tracestate: ts,
                        b3,
                        b3_trace: bt,
                        b3_span: bs,
                        b3_sampled: sampled,
                        b3_flags: flags,
                        b3_parent: parent,
                        baggage,
                    }
                },
            )
    }

    impl Carried {
        fn pairs(&self) -> Vec<(&'static str, &str)> {
            [
                ("traceparent", &self.traceparent),
                ("tracestate", &self.tracestate),
                ("b3", &self.b3),
                ("x-b3-traceid", &self.b3_trace),
                ("x-b3-spanid", &self.b3_span),
                ("x-b3-sampled", &self.b3_sampled),
                ("x-b3-flags", &self.b3_flags),
                ("x-b3-parentspanid", &self.b3_parent),
                ("baggage", &self.baggage),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
            .collect()
        }

        fn headers(&self) -> HeaderMap {
            let mut h = HeaderMap::new();
            for (k, v) in self.pairs() {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            }
            h
        }

        fn map(&self) -> HashMap<String, String> {
            self.pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// HTTP headers: the fast path reads what the SDK composite reads.
        #[test]
        fn header_extraction_agrees_with_the_sdk(c in carried()) {
            let h = c.headers();
            for set in every_set() {
                let ours = AutobotPropagator::new(set).extract_headers(&h);
                let theirs = sdk(&set).extract(&Bounded(&opentelemetry_http::HeaderExtractor(&h)));
                prop_assert_eq!(view(&ours), view(&theirs), "{:?} with {:?}", c, set);
            }
        }

        /// String maps (any Unicode): the `TextMapPropagator` side agrees too.
        #[test]
        fn map_extraction_agrees_with_the_sdk(c in carried(), junk in "\\PC{0,40}") {
            let mut m = c.map();
            m.entry("b3".into()).or_insert(junk.clone());
            m.entry("x-b3-traceid".into()).or_insert(junk);
            for set in every_set() {
                let ours = AutobotPropagator::new(set).extract(&m);
                let theirs = sdk(&set).extract(&Bounded(&m));
                prop_assert_eq!(view(&ours), view(&theirs), "{:?} with {:?}", m, set);
            }
        }

        /// Injection writes the SDK's headers, except an empty `tracestate`.
        #[test]
        fn injection_agrees_with_the_sdk(
            trace in any::<u128>(),
            span in any::<u64>(),
            flags in select(vec![0u8, 1, 2, 3, 4, 5, 6, 7, 0xff]),
            state in select(vec!["", "vendor=opaque,other=1"]),
            baggage in select(vec![vec![], vec![("session", "s 42")], vec![("a", "b"), ("c", "d=e,f")]]),
            valid in prop::bool::weighted(0.9),
        ) {
            let (trace, span) = if valid {
                (TraceId::from(trace | 1), SpanId::from(span | 1))
            } else {
                (TraceId::INVALID, SpanId::from(span))
            };
            let sc = SpanContext::new(
                trace,
                span,
                TraceFlags::new(flags),
                false,
                state.parse::<TraceState>().unwrap(),
            );
            let cx = Context::new()
                .with_remote_span_context(sc)
                .with_baggage(baggage.iter().map(|(k, v)| KeyValue::new(*k, *v)));
            for set in every_set() {
                let mut ours = HeaderMap::new();
                AutobotPropagator::new(set).inject_headers(&cx, &mut ours);
                let mut theirs = HeaderMap::new();
                sdk(&set).inject_context(&cx, &mut opentelemetry_http::HeaderInjector(&mut theirs));
                theirs.retain_non_empty();
                if !valid {
                    // Without a trace we send no B3 at all; the SDK sends a
                    // bare "deny" (`b3: 0` / `x-b3-sampled: 0`).
                    theirs.remove("b3");
                    theirs.remove("x-b3-sampled");
                }
                if set.b3_single && !set.b3_multi {
                    // opentelemetry-propagator-b3 0.33.1 writes the multi
                    // headers for every encoding (`support(&UnSpecified)` is
                    // always true); `OTEL_PROPAGATORS=b3` means the single one.
                    for name in ["x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"] {
                        theirs.remove(name);
                    }
                }
                prop_assert_eq!(&ours, &theirs, "{:?}", set);
            }
        }
    }

    trait RetainNonEmpty {
        fn retain_non_empty(&mut self);
    }
    impl RetainNonEmpty for HeaderMap {
        fn retain_non_empty(&mut self) {
            let empty: Vec<_> = self
                .iter()
                .filter(|(_, v)| v.is_empty())
                .map(|(k, _)| k.clone())
                .collect();
            for k in empty {
                self.remove(k);
            }
        }
    }

    /// The cases the SDK's own tests list, plus B3's flag quirks, one by one
    /// (readable failures before the generated ones).
    #[test]
    fn known_cases_agree_with_the_sdk() {
        let cases: &[&[(&str, &str)]] = &[
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            )],
            &[(
                "traceparent",
                "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-XYZxsf09",
            )],
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            )],
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            )],
            &[(
                "traceparent",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            &[(
                "traceparent",
                "00-AB000000000000000000000000000000-cd00000000000000-01",
            )],
            &[(
                "traceparent",
                " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            )],
            &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d")],
            &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1")],
            &[("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")],
            &[(
                "b3",
                "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-x",
            )],
            &[("b3", "0")],
            &[(
                "b3",
                "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-05e3ac9a4f6e3b90",
            )],
            &[
                ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
                ("x-b3-sampled", "true"),
            ],
            &[
                ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
                ("x-b3-sampled", "d"),
            ],
            &[
                ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
                ("x-b3-flags", "1"),
            ],
            &[
                ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
                ("x-b3-flags", "0"),
                ("x-b3-sampled", "1"),
            ],
            &[
                ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ],
            &[
                ("b3", "bad"),
                ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
                ("x-b3-sampled", "1"),
            ],
            &[
                ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                ),
                ("tracestate", "a=1"),
            ],
            &[
                ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
                ("traceparent", "00-zz-00f067aa0ba902b7-01"),
            ],
            &[("baggage", "a=b;p=1, c = d ,e=%20f")],
        ];
        for pairs in cases {
            let mut h = HeaderMap::new();
            for (k, v) in *pairs {
                h.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            for set in every_set() {
                let ours = AutobotPropagator::new(set).extract_headers(&h);
                let theirs = sdk(&set).extract(&Bounded(&opentelemetry_http::HeaderExtractor(&h)));
                assert_eq!(view(&ours), view(&theirs), "{pairs:?} with {set:?}");
            }
        }
    }
}
