//! AutoBot's OTLP encoder against the SDK's own path: for the same spans and
//! resource, `opentelemetry_proto`'s transform (what `opentelemetry-otlp`
//! sends) and our bytes must decode to the same `ExportTraceServiceRequest`,
//! and our bytes must be exactly what prost writes for it.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use autobot_tracing::TraceEncoder;
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use proptest::prelude::*;
use prost::Message;

/// What the SDK's exporter would send for `spans`.
fn sdk_request(spans: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
    let resource: ResourceAttributesWithSchema = resource.into();
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans.to_vec(), &resource),
    }
}

/// Decodes our bytes and compares them with the SDK's request, field by
/// field and byte by byte.
fn assert_same(spans: &[SpanData], resource: &Resource) {
    let ours = TraceEncoder::new(resource).encode_to_vec(spans);
    let expected = sdk_request(spans, resource);
    let decoded = ExportTraceServiceRequest::decode(ours.as_slice())
        .unwrap_or_else(|e| panic!("our bytes do not decode: {e}"));
    if !has_nan(spans) {
        assert_eq!(decoded, expected, "decoded request differs from the SDK's");
    }
    let expected_bytes = expected.encode_to_vec();
    assert!(
        ours == expected_bytes,
        "bytes differ from prost's encoding of the SDK's request ({} vs {} bytes)",
        ours.len(),
        expected_bytes.len()
    );
}

/// NaN != NaN: such spans are compared by their bytes only.
fn has_nan(spans: &[SpanData]) -> bool {
    fn nan(v: &Value) -> bool {
        match v {
            Value::F64(f) => f.is_nan(),
            Value::Array(Array::F64(fs)) => fs.iter().any(|f| f.is_nan()),
            _ => false,
        }
    }
    spans.iter().any(|s| {
        s.attributes.iter().any(|kv| nan(&kv.value))
            || s.events
                .iter()
                .any(|e| e.attributes.iter().any(|kv| nan(&kv.value)))
            || s.links
                .iter()
                .any(|l| l.attributes.iter().any(|kv| nan(&kv.value)))
    })
}

fn at(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("autobot-tracing")
        .with_version("0.1.0")
        .build()
}

fn span(id: u64, scope: InstrumentationScope) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c_u128),
            SpanId::from(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("GET /api/health"),
        start_time: at(1_763_750_000_000_000_000),
        end_time: at(1_763_750_000_000_350_000),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.path", "/api/health"),
            KeyValue::new("server.port", 8001_i64),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope,
    }
}

/// Every `Value` variant, with the edge values of each.
fn every_value() -> Vec<KeyValue> {
    vec![
        KeyValue::new("bool.true", true),
        KeyValue::new("bool.false", false),
        KeyValue::new("int.zero", 0_i64),
        KeyValue::new("int.small", 127_i64),
        KeyValue::new("int.big", i64::MAX),
        KeyValue::new("int.negative", -1_i64),
        KeyValue::new("int.min", i64::MIN),
        KeyValue::new("float.zero", 0.0_f64),
        KeyValue::new("float.negative_zero", -0.0_f64),
        KeyValue::new("float", 3.25_f64),
        KeyValue::new("float.inf", f64::INFINITY),
        KeyValue::new("string", "value"),
        KeyValue::new("string.empty", ""),
        KeyValue::new("string.unicode", "grüße, 世界 🚀"),
        KeyValue::new("string.long", "x".repeat(300)),
        KeyValue::new("", "an empty key"),
        KeyValue::new("array.bool", Value::Array(vec![true, false].into())),
        KeyValue::new(
            "array.int",
            Value::Array(vec![0_i64, 1, -1, i64::MAX, i64::MIN].into()),
        ),
        KeyValue::new(
            "array.float",
            Value::Array(vec![0.0_f64, -2.5, f64::MAX].into()),
        ),
        KeyValue::new(
            "array.string",
            Value::Array(Array::String(vec![
                StringValue::from("a"),
                StringValue::from(""),
                StringValue::from("x".repeat(200)),
            ])),
        ),
        KeyValue::new("array.empty", Value::Array(Array::Bool(vec![]))),
        KeyValue::new("array.empty_string", Value::Array(Array::String(vec![]))),
    ]
}

fn full_span() -> SpanData {
    let mut s = span(0x1020_3040_5060_7080, scope());
    s.span_context = SpanContext::new(
        TraceId::from(0x1122_3344_5566_7788_99aa_bbcc_ddee_ff00_u128),
        SpanId::from(0x1020_3040_5060_7080),
        TraceFlags::SAMPLED,
        false,
        "vendor=span,other=1".parse().unwrap(),
    );
    s.parent_span_id = SpanId::from(0x8877_6655_4433_2211);
    s.parent_span_is_remote = true;
    s.span_kind = SpanKind::Client;
    s.name = "llm.inference".into();
    s.attributes = every_value();
    s.dropped_attributes_count = 2;
    let mut events = SpanEvents::default();
    events.events = vec![
        Event::new(
            "exception",
            at(1_763_750_000_000_100_000),
            vec![
                KeyValue::new("exception.type", "timeout"),
                KeyValue::new("exception.message", "x".repeat(500)),
            ],
            3,
        ),
        Event::new("", UNIX_EPOCH, vec![], 0),
        Event::new("all values", at(1), every_value(), 0),
    ];
    events.dropped_count = 4;
    s.events = events;
    let mut links = SpanLinks::default();
    links.links = vec![
        Link::new(
            SpanContext::new(
                TraceId::from(0x2233_4455_6677_8899_aabb_ccdd_eeff_0011_u128),
                SpanId::from(0x2030_4050_6070_8090),
                TraceFlags::SAMPLED,
                true,
                "vendor=link".parse().unwrap(),
            ),
            vec![KeyValue::new("messaging.operation.type", "process")],
            5,
        ),
        Link::new(SpanContext::empty_context(), vec![], 0),
        Link::new(
            SpanContext::new(
                TraceId::from(7),
                SpanId::from(8),
                TraceFlags::NOT_SAMPLED,
                false,
                TraceState::NONE,
            ),
            every_value(),
            0,
        ),
    ];
    links.dropped_count = 6;
    s.links = links;
    s.status = Status::error("upstream timed out after 30 s");
    s
}

#[test]
fn a_span_with_every_field_and_every_value_variant() {
    let resource = Resource::builder_empty()
        .with_schema_url(
            [
                KeyValue::new("service.name", "autobot-backend"),
                KeyValue::new("service.instance.id", "5f0c3c1e"),
                KeyValue::new("process.pid", 4242_i64),
                KeyValue::new("debug", true),
            ],
            "https://opentelemetry.io/schemas/1.42.0",
        )
        .build();
    assert_same(&[full_span()], &resource);
}

#[test]
fn every_kind_status_and_flag_combination() {
    let mut spans = Vec::new();
    let kinds = [
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];
    let statuses = [
        Status::Unset,
        Status::Ok,
        Status::error(""),
        Status::error("e"),
    ];
    let mut id = 1;
    for kind in &kinds {
        for status in &statuses {
            for (flags, remote_parent) in [
                (TraceFlags::SAMPLED, false),
                (TraceFlags::NOT_SAMPLED, true),
                (TraceFlags::new(0xff), true),
            ] {
                let mut s = span(id, scope());
                id += 1;
                s.span_kind = kind.clone();
                s.status = status.clone();
                s.span_context = SpanContext::new(
                    TraceId::from(id as u128),
                    SpanId::from(id),
                    flags,
                    remote_parent,
                    TraceState::NONE,
                );
                s.parent_span_is_remote = remote_parent;
                s.parent_span_id = if remote_parent {
                    SpanId::from(9)
                } else {
                    SpanId::INVALID
                };
                spans.push(s);
            }
        }
    }
    assert_same(&spans, &Resource::builder().build());
}

#[test]
fn odd_times_names_and_ids() {
    let mut before_epoch = span(1, scope());
    before_epoch.start_time = UNIX_EPOCH - Duration::from_secs(5);
    before_epoch.end_time = UNIX_EPOCH;
    before_epoch.name = "".into();
    before_epoch.attributes.clear();
    let mut zero_ids = span(0, scope());
    zero_ids.span_context = SpanContext::empty_context();
    let mut tiny = span(2, InstrumentationScope::builder("").build());
    tiny.attributes.clear();
    tiny.name = "x".into();
    assert_same(
        &[before_epoch, zero_ids, tiny],
        &Resource::builder_empty().build(),
    );
}

#[test]
fn spans_are_grouped_by_scope_in_first_seen_order() {
    let lib = |version: &str, schema: &str, attrs: Vec<KeyValue>| {
        InstrumentationScope::builder("lib")
            .with_version(version.to_owned())
            .with_schema_url(schema.to_owned())
            .with_attributes(attrs)
            .build()
    };
    let a = lib("1.0", "https://s/1", vec![KeyValue::new("enabled", true)]);
    let b = lib("2.0", "https://s/1", vec![KeyValue::new("enabled", true)]);
    let c = lib("1.0", "https://s/2", vec![]);
    let ab = lib(
        "1.0",
        "",
        vec![KeyValue::new("a", 1_i64), KeyValue::new("b", 2_i64)],
    );
    // The same scope as `ab`: attribute order does not change identity.
    let ba = lib(
        "1.0",
        "",
        vec![KeyValue::new("b", 2_i64), KeyValue::new("a", 1_i64)],
    );
    let spans = vec![
        span(1, a.clone()),
        span(2, b.clone()),
        span(3, a.clone()),
        span(4, c),
        span(5, ab),
        span(6, b),
        span(7, ba),
        span(8, a),
        span(9, scope()),
    ];
    let resource = Resource::builder_empty()
        .with_attributes([KeyValue::new("service.name", "grouped")])
        .build();
    assert_same(&spans, &resource);
}

#[test]
fn not_a_number_is_sent_bit_for_bit() {
    let mut s = span(1, scope());
    s.attributes = vec![
        KeyValue::new("nan", f64::NAN),
        KeyValue::new("nans", Value::Array(vec![f64::NAN, 1.0].into())),
    ];
    assert_same(&[s], &Resource::builder_empty().build());
}

#[test]
fn length_prefixes_of_every_size() {
    // A span above 16 KiB (3-byte length), a batch above 2 MiB (4-byte
    // group lengths), an event above 127 bytes.
    let mut big = span(1, scope());
    big.attributes
        .push(KeyValue::new("http.response.body", "b".repeat(20_000)));
    let mut spans = vec![big];
    for i in 0..150 {
        let mut s = span(100 + i, scope());
        s.attributes
            .push(KeyValue::new("payload", "p".repeat(16_000)));
        spans.push(s);
    }
    assert_same(&spans, &Resource::builder().build());
}

#[test]
fn the_resource_is_encoded_once_and_reused() {
    let resource = Resource::builder()
        .with_attributes([KeyValue::new("service.name", "reuse")])
        .build();
    let encoder = TraceEncoder::new(&resource);
    let first = encoder.encode_to_vec(&[span(1, scope())]);
    let second = encoder.encode_to_vec(&[span(1, scope())]);
    assert_eq!(first, second);
    let mut appended = vec![0xaa];
    encoder.encode(&[span(1, scope())], &mut appended);
    assert_eq!(&appended[1..], first.as_slice(), "encode appends");
    assert_same(&[], &resource);
}

// ---------------------------------------------------------------------------
// Property test: random spans, compared the same way.

fn any_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        any::<f64>().prop_map(Value::F64),
        ".{0,40}".prop_map(|s: String| Value::String(s.into())),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any_scalar(),
        1 => prop::collection::vec(any::<bool>(), 0..5).prop_map(|v| Value::Array(v.into())),
        1 => prop::collection::vec(any::<i64>(), 0..5).prop_map(|v| Value::Array(v.into())),
        1 => prop::collection::vec(any::<f64>(), 0..5).prop_map(|v| Value::Array(v.into())),
        1 => prop::collection::vec(".{0,20}", 0..5).prop_map(|v| Value::Array(Array::String(
            v.into_iter().map(StringValue::from).collect()
        ))),
    ]
}

fn any_attributes(max: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(
        ("[a-z._]{0,24}", any_value()).prop_map(|(k, v)| KeyValue::new(k, v)),
        0..max,
    )
}

fn any_time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(UNIX_EPOCH),
        (0u64..=u64::MAX / 2).prop_map(at),
        (1u64..1_000_000).prop_map(|s| UNIX_EPOCH - Duration::from_secs(s)),
    ]
}

fn any_trace_state() -> impl Strategy<Value = TraceState> {
    prop_oneof![
        Just(TraceState::NONE),
        Just("vendor=a".parse().unwrap()),
        Just("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".parse().unwrap()),
    ]
}

fn any_context() -> impl Strategy<Value = SpanContext> {
    (
        any::<u128>(),
        any::<u64>(),
        any::<u8>(),
        any::<bool>(),
        any_trace_state(),
    )
        .prop_map(|(t, s, f, remote, state)| {
            SpanContext::new(
                TraceId::from(t),
                SpanId::from(s),
                TraceFlags::new(f),
                remote,
                state,
            )
        })
}

fn any_scope() -> impl Strategy<Value = InstrumentationScope> {
    prop_oneof![
        Just(scope()),
        Just(InstrumentationScope::builder("reqwest-tracing").build()),
        Just(
            InstrumentationScope::builder("lib")
                .with_version("9")
                .with_schema_url("https://opentelemetry.io/schemas/1.42.0")
                .with_attributes([KeyValue::new("k", 1_i64)])
                .build()
        ),
    ]
}

fn any_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unset),
        Just(Status::Ok),
        ".{0,30}".prop_map(Status::error),
    ]
}

fn any_kind() -> impl Strategy<Value = SpanKind> {
    prop_oneof![
        Just(SpanKind::Internal),
        Just(SpanKind::Server),
        Just(SpanKind::Client),
        Just(SpanKind::Producer),
        Just(SpanKind::Consumer),
    ]
}

prop_compose! {
    fn any_event()(name in ".{0,20}", time in any_time(), attrs in any_attributes(4), dropped in any::<u32>()) -> Event {
        Event::new(name, time, attrs, dropped)
    }
}

prop_compose! {
    fn any_link()(cx in any_context(), attrs in any_attributes(4), dropped in any::<u32>()) -> Link {
        Link::new(cx, attrs, dropped)
    }
}

prop_compose! {
    fn any_span()(
        cx in any_context(),
        parent in prop_oneof![Just(0u64), any::<u64>()],
        parent_remote in any::<bool>(),
        kind in any_kind(),
        name in ".{0,40}",
        start in any_time(),
        end in any_time(),
        attributes in any_attributes(8),
        dropped_attributes in any::<u32>(),
        events in prop::collection::vec(any_event(), 0..3),
        dropped_events in any::<u32>(),
        links in prop::collection::vec(any_link(), 0..3),
        dropped_links in any::<u32>(),
        status in any_status(),
        scope in any_scope(),
    ) -> SpanData {
        let mut span_events = SpanEvents::default();
        span_events.events = events;
        span_events.dropped_count = dropped_events;
        let mut span_links = SpanLinks::default();
        span_links.links = links;
        span_links.dropped_count = dropped_links;
        SpanData {
            span_context: cx,
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: parent_remote,
            span_kind: kind,
            name: name.into(),
            start_time: start,
            end_time: end,
            attributes,
            dropped_attributes_count: dropped_attributes,
            events: span_events,
            links: span_links,
            status,
            instrumentation_scope: scope,
        }
    }
}

fn any_resource() -> impl Strategy<Value = Resource> {
    (
        any_attributes(6),
        prop_oneof![
            Just(None),
            Just(Some("https://opentelemetry.io/schemas/1.42.0"))
        ],
    )
        .prop_map(|(attrs, schema)| match schema {
            Some(url) => Resource::builder_empty()
                .with_schema_url(attrs, url)
                .build(),
            None => Resource::builder_empty().with_attributes(attrs).build(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_batches_encode_as_the_sdk_does(
        spans in prop::collection::vec(any_span(), 0..12),
        resource in any_resource(),
    ) {
        assert_same(&spans, &resource);
    }
}
