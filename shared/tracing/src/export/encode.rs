//! `SpanData` straight to the protobuf bytes of an OTLP
//! `ExportTraceServiceRequest` (opentelemetry/proto/collector/trace/v1).
//!
//! The SDK's path converts every span into `opentelemetry_proto`'s generated
//! structs (a `String` per attribute key and value), lets prost compute the
//! nested lengths, writes, and drops it all; that was the biggest cost of a
//! traced request (docs/performance.md, "Profile"). This encoder walks the
//! spans once and writes the wire format itself:
//!
//! - attributes (`KeyValue`, `AnyValue`, `ArrayValue`) have sizes that are
//!   cheap to compute, so they are written with their exact length prefix;
//! - a span, an event, a link, a scope group and the resource group reserve
//!   the bytes their length prefix will most likely need, are written in
//!   place, and get the prefix patched in afterwards (the body moves by a few
//!   bytes only in the rare case the guess was wrong);
//! - the resource is encoded once, in [`TraceEncoder::new`] /
//!   [`TraceEncoder::set_resource`], and copied into every batch.
//!
//! The output is what `opentelemetry_proto::transform::trace::tonic::
//! group_spans_by_resource_and_scope` + prost would produce for the same
//! spans, byte for byte (fields in tag order, proto3 defaults omitted, the
//! status always present), which tests/it/otlp_encode.rs checks.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

/// Wire types.
const LEN: u32 = 2;
const VARINT: u32 = 0;
const I64: u32 = 1;
const I32: u32 = 5;

const fn tag(field: u32, wire_type: u32) -> u8 {
    // Every field written here has a number below 16, so its tag is one byte.
    ((field << 3) | wire_type) as u8
}

/// `Span.flags` is field 16: its tag needs two bytes.
const SPAN_FLAGS_TAG: [u8; 2] = [(16 << 3 | I32) as u8 | 0x80, 0x01];

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` / `..._IS_REMOTE_MASK`.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// Length-prefix bytes reserved before a body whose size is known only after
/// writing it: spans are mostly 128 B – 16 KiB, events and links mostly
/// below 128 B, a whole scope or resource group below 2 MiB.
const RESERVE_SPAN: usize = 2;
const RESERVE_SMALL: usize = 1;
const RESERVE_GROUP: usize = 3;

/// Encodes span batches for one resource.
#[derive(Debug, Clone)]
pub struct TraceEncoder {
    /// `ResourceSpans.resource` (field 1) with its tag and length.
    resource: Vec<u8>,
    /// `ResourceSpans.schema_url` (field 3) with its tag and length, or empty.
    resource_schema_url: Vec<u8>,
}

impl Default for TraceEncoder {
    /// An encoder for the empty resource (what the SDK sends before
    /// `set_resource`).
    fn default() -> Self {
        Self::new(&Resource::builder_empty().build())
    }
}

impl TraceEncoder {
    pub fn new(resource: &Resource) -> Self {
        let mut encoder = Self {
            resource: Vec::new(),
            resource_schema_url: Vec::new(),
        };
        encoder.set_resource(resource);
        encoder
    }

    /// Encodes `resource` once; every later batch reuses the bytes.
    pub fn set_resource(&mut self, resource: &Resource) {
        let mut body = Vec::with_capacity(64 * resource.len());
        for (key, value) in resource.iter() {
            put_key_value(&mut body, 1, key.as_str(), value);
        }
        // Resource.dropped_attributes_count and entity_refs: the SDK sends
        // neither (0 and empty).
        self.resource.clear();
        put_bytes_field(&mut self.resource, 1, &body);
        self.resource_schema_url.clear();
        if let Some(url) = resource.schema_url() {
            put_str_field(&mut self.resource_schema_url, 3, url);
        }
    }

    /// The protobuf bytes of an `ExportTraceServiceRequest` carrying `spans`.
    pub fn encode_to_vec(&self, spans: &[SpanData]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.resource.len() + 64 + 400 * spans.len());
        self.encode(spans, &mut out);
        out
    }

    /// Appends the protobuf bytes of an `ExportTraceServiceRequest` carrying
    /// `spans` to `out`: one `ResourceSpans`, one `ScopeSpans` per distinct
    /// instrumentation scope in the order scopes first appear, spans in batch
    /// order within their scope.
    pub fn encode(&self, spans: &[SpanData], out: &mut Vec<u8>) {
        // ExportTraceServiceRequest.resource_spans (1)
        out.push(tag(1, LEN));
        let resource_spans = begin(out, RESERVE_GROUP);
        out.extend_from_slice(&self.resource);
        let groups = ScopeGroups::of(spans);
        for (group, scope) in groups.scopes.iter().enumerate() {
            // ResourceSpans.scope_spans (2)
            out.push(tag(2, LEN));
            let scope_spans = begin(out, RESERVE_GROUP);
            put_scope(out, scope);
            match &groups.index {
                None => spans.iter().for_each(|span| put_span(out, span)),
                Some(index) => spans
                    .iter()
                    .zip(index)
                    .filter(|(_, g)| **g as usize == group)
                    .for_each(|(span, _)| put_span(out, span)),
            }
            if let Some(url) = scope.schema_url() {
                put_str_field(out, 3, url);
            }
            end(out, scope_spans, RESERVE_GROUP);
        }
        out.extend_from_slice(&self.resource_schema_url);
        end(out, resource_spans, RESERVE_GROUP);
    }
}

/// The distinct instrumentation scopes of a batch (equal as the SDK compares
/// them: attribute order does not matter), and each span's group when there
/// is more than one.
struct ScopeGroups<'a> {
    scopes: Vec<&'a InstrumentationScope>,
    index: Option<Vec<u32>>,
}

impl<'a> ScopeGroups<'a> {
    fn of(spans: &'a [SpanData]) -> Self {
        let Some(first) = spans.first() else {
            return Self {
                scopes: Vec::new(),
                index: None,
            };
        };
        let mut scopes = vec![&first.instrumentation_scope];
        let mut index: Option<Vec<u32>> = None;
        let mut last = 0usize;
        for (i, span) in spans.iter().enumerate() {
            let scope = &span.instrumentation_scope;
            let g = if same_scope(scopes[last], scope) {
                last
            } else {
                match scopes.iter().position(|s| same_scope(s, scope)) {
                    Some(g) => g,
                    None => {
                        scopes.push(scope);
                        scopes.len() - 1
                    }
                }
            };
            last = g;
            if g != 0 && index.is_none() {
                let mut v = Vec::with_capacity(spans.len());
                v.resize(i, 0);
                index = Some(v);
            }
            if let Some(v) = index.as_mut() {
                v.push(g as u32);
            }
        }
        Self { scopes, index }
    }
}

/// `a == b` as the SDK groups scopes, without its two `Vec`s per comparison
/// when neither scope has attributes (the common case).
fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    if a.name() != b.name() || a.version() != b.version() || a.schema_url() != b.schema_url() {
        return false;
    }
    (a.attributes().next().is_none() && b.attributes().next().is_none()) || a == b
}

/// ScopeSpans.scope (1): InstrumentationScope { name, version, attributes }.
fn put_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    out.push(tag(1, LEN));
    let at = begin(out, RESERVE_SMALL);
    put_str_field(out, 1, scope.name());
    if let Some(version) = scope.version() {
        put_str_field(out, 2, version);
    }
    for kv in scope.attributes() {
        put_key_value(out, 3, kv.key.as_str(), &kv.value);
    }
    end(out, at, RESERVE_SMALL);
}

/// ScopeSpans.spans (2): one Span, fields in tag order.
fn put_span(out: &mut Vec<u8>, span: &SpanData) {
    out.push(tag(2, LEN));
    let at = begin(out, RESERVE_SPAN);
    let cx = &span.span_context;
    put_ids(out, cx);
    if span.parent_span_id != SpanId::INVALID {
        put_span_id(out, 4, span.parent_span_id.to_bytes());
    }
    put_str_field(out, 5, &span.name);
    put_varint_field(out, 6, span_kind(&span.span_kind));
    put_fixed64_field(out, 7, to_nanos(span.start_time));
    put_fixed64_field(out, 8, to_nanos(span.end_time));
    put_attributes(out, 9, &span.attributes);
    put_varint_field(out, 10, span.dropped_attributes_count.into());
    for event in span.events.iter() {
        out.push(tag(11, LEN));
        let e = begin(out, RESERVE_SMALL);
        put_fixed64_field(out, 1, to_nanos(event.timestamp));
        put_str_field(out, 2, &event.name);
        put_attributes(out, 3, &event.attributes);
        put_varint_field(out, 4, event.dropped_attributes_count.into());
        end(out, e, RESERVE_SMALL);
    }
    put_varint_field(out, 12, span.events.dropped_count.into());
    for link in span.links.iter() {
        out.push(tag(13, LEN));
        let l = begin(out, RESERVE_SMALL);
        put_ids(out, &link.span_context);
        put_attributes(out, 4, &link.attributes);
        put_varint_field(out, 5, link.dropped_attributes_count.into());
        put_fixed32_field(
            out,
            6,
            flags(&link.span_context, link.span_context.is_remote()),
        );
        end(out, l, RESERVE_SMALL);
    }
    put_varint_field(out, 14, span.links.dropped_count.into());
    put_status(out, &span.status);
    // flags (16) is the last field in tag order; never 0 (HAS_IS_REMOTE is set).
    out.extend_from_slice(&SPAN_FLAGS_TAG);
    out.extend_from_slice(&flags(cx, span.parent_span_is_remote).to_le_bytes());
    end(out, at, RESERVE_SPAN);
}

/// trace_id (1), span_id (2), trace_state (3): the same numbers in Span and Link.
fn put_ids(out: &mut Vec<u8>, cx: &SpanContext) {
    // Always 16 and 8 bytes, so always present (even all zeroes), as in the SDK.
    let mut trace_id = [0u8; 18];
    trace_id[0] = tag(1, LEN);
    trace_id[1] = 16;
    trace_id[2..].copy_from_slice(&cx.trace_id().to_bytes());
    out.extend_from_slice(&trace_id);
    put_span_id(out, 2, cx.span_id().to_bytes());
    let state = cx.trace_state();
    if *state != opentelemetry::trace::TraceState::NONE {
        put_str_field(out, 3, &state.header());
    }
}

fn put_span_id(out: &mut Vec<u8>, field: u32, id: [u8; 8]) {
    let mut b = [0u8; 10];
    b[0] = tag(field, LEN);
    b[1] = 8;
    b[2..].copy_from_slice(&id);
    out.extend_from_slice(&b);
}

/// The trace flags plus the "is the parent remote" bits (OTLP `SpanFlags`),
/// as `opentelemetry_proto`'s `build_span_flags` sets them.
fn flags(cx: &SpanContext, remote: bool) -> u32 {
    let mut flags = u32::from(cx.trace_flags().to_u8()) | FLAG_HAS_IS_REMOTE;
    if remote {
        flags |= FLAG_IS_REMOTE;
    }
    flags
}

fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// Span.status (15): always present, as the SDK always sets it.
fn put_status(out: &mut Vec<u8>, status: &Status) {
    let (code, message) = match status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error { description } => (2, description.as_ref()),
    };
    let body = field_str_len(2, message) + field_varint_len(3, code);
    out.push(tag(15, LEN));
    put_varint(out, body as u64);
    put_str_field(out, 2, message);
    put_varint_field(out, 3, code);
}

fn to_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Attributes: KeyValue { key = 1; value = 2 (AnyValue) }, exact sizes.

fn put_attributes(out: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        put_key_value(out, field, kv.key.as_str(), &kv.value);
    }
}

fn put_key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    // The common attribute: a short key and a short string or an integer,
    // every length one byte; written with a few copies.
    let k = key.as_bytes();
    if !k.is_empty() && k.len() < 120 {
        match value {
            Value::String(v) if v.as_str().len() < 120 => {
                let v = v.as_str().as_bytes();
                let value_len = 2 + v.len();
                let body = 2 + k.len() + 2 + value_len;
                if body < 128 {
                    out.reserve(2 + body);
                    out.extend_from_slice(&[
                        tag(field, LEN),
                        body as u8,
                        tag(1, LEN),
                        k.len() as u8,
                    ]);
                    out.extend_from_slice(k);
                    out.extend_from_slice(&[
                        tag(2, LEN),
                        value_len as u8,
                        tag(1, LEN),
                        v.len() as u8,
                    ]);
                    out.extend_from_slice(v);
                    return;
                }
            }
            Value::I64(i) => {
                let n = varint_len(*i as u64);
                let body = 2 + k.len() + 2 + 1 + n;
                if body < 128 {
                    out.reserve(2 + body);
                    out.extend_from_slice(&[
                        tag(field, LEN),
                        body as u8,
                        tag(1, LEN),
                        k.len() as u8,
                    ]);
                    out.extend_from_slice(k);
                    out.extend_from_slice(&[tag(2, LEN), (1 + n) as u8, tag(3, VARINT)]);
                    put_varint(out, *i as u64);
                    return;
                }
            }
            _ => {}
        }
    }
    let value_len = any_value_len(value);
    let body = field_str_len(1, key) + 1 + varint_len(value_len as u64) + value_len;
    out.push(tag(field, LEN));
    put_varint(out, body as u64);
    put_str_field(out, 1, key);
    // KeyValue.value is a message: present even when its body is empty.
    out.push(tag(2, LEN));
    put_varint(out, value_len as u64);
    put_any_value(out, value);
}

/// The body length of an AnyValue holding `value`.
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => 2,
        Value::I64(i) => 1 + varint_len(*i as u64),
        Value::F64(_) => 9,
        Value::String(s) => oneof_str_len(s.as_str()),
        Value::Array(array) => {
            let n = array_len(array);
            1 + varint_len(n as u64) + n
        }
        other => oneof_str_len(&other.to_string()),
    }
}

/// The body length of an ArrayValue: `values` (1), each an AnyValue.
fn array_len(array: &Array) -> usize {
    fn each(n: usize, body: usize) -> usize {
        n * (1 + varint_len(body as u64) + body)
    }
    match array {
        Array::Bool(v) => each(v.len(), 2),
        Array::F64(v) => each(v.len(), 9),
        Array::I64(v) => v
            .iter()
            .map(|i| {
                let body = 1 + varint_len(*i as u64);
                2 + body
            })
            .sum(),
        Array::String(v) => v
            .iter()
            .map(|s| {
                let body = oneof_str_len(s.as_str());
                1 + varint_len(body as u64) + body
            })
            .sum(),
        other => {
            let body = oneof_str_len(&other.to_string());
            1 + varint_len(body as u64) + body
        }
    }
}

/// A string member of a oneof: written even when empty.
fn oneof_str_len(s: &str) -> usize {
    1 + varint_len(s.len() as u64) + s.len()
}

/// The body of an AnyValue (its oneof member), which the SDK always sets.
fn put_any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(b) => out.extend_from_slice(&[tag(2, VARINT), u8::from(*b)]),
        Value::I64(i) => {
            out.push(tag(3, VARINT));
            put_varint(out, *i as u64);
        }
        Value::F64(f) => {
            out.push(tag(4, I64));
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::String(s) => put_oneof_str(out, s.as_str()),
        Value::Array(array) => {
            out.push(tag(5, LEN));
            put_varint(out, array_len(array) as u64);
            put_array(out, array);
        }
        // `Value` is non-exhaustive; a future variant goes out as its text
        // rather than being lost (the SDK's transform would panic).
        other => put_oneof_str(out, &other.to_string()),
    }
}

fn put_oneof_str(out: &mut Vec<u8>, s: &str) {
    out.push(tag(1, LEN));
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_array(out: &mut Vec<u8>, array: &Array) {
    // ArrayValue.values (1): AnyValue messages.
    const VALUES: u8 = tag(1, LEN);
    match array {
        Array::Bool(v) => {
            for b in v {
                out.extend_from_slice(&[VALUES, 2, tag(2, VARINT), u8::from(*b)]);
            }
        }
        Array::I64(v) => {
            for i in v {
                out.extend_from_slice(&[VALUES, (1 + varint_len(*i as u64)) as u8]);
                out.push(tag(3, VARINT));
                put_varint(out, *i as u64);
            }
        }
        Array::F64(v) => {
            for f in v {
                out.extend_from_slice(&[VALUES, 9, tag(4, I64)]);
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        Array::String(v) => {
            for s in v {
                put_array_str(out, s);
            }
        }
        other => put_array_str(out, &StringValue::from(other.to_string())),
    }
}

fn put_array_str(out: &mut Vec<u8>, s: &StringValue) {
    out.push(tag(1, LEN));
    put_varint(out, oneof_str_len(s.as_str()) as u64);
    put_oneof_str(out, s.as_str());
}

// ---------------------------------------------------------------------------
// Wire primitives. proto3 scalars equal to their default are not written.

fn varint_len(v: u64) -> usize {
    // 1 byte per started 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline(always)]
fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else {
        put_long_varint(out, v);
    }
}

#[inline(never)]
fn put_long_varint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    out.extend_from_slice(&buf[..=n]);
}

fn field_str_len(_field: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + varint_len(s.len() as u64) + s.len()
    }
}

fn field_varint_len(_field: u32, v: u64) -> usize {
    if v == 0 { 0 } else { 1 + varint_len(v) }
}

fn put_str_field(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_bytes_field(out, field, s.as_bytes());
    }
}

/// A length-delimited field, always written (messages, fixed-size ids).
fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    out.push(tag(field, LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        out.push(tag(field, VARINT));
        put_varint(out, v);
    }
}

fn put_fixed64_field(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        let mut b = [0u8; 9];
        b[0] = tag(field, I64);
        b[1..].copy_from_slice(&v.to_le_bytes());
        out.extend_from_slice(&b);
    }
}

fn put_fixed32_field(out: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        out.push(tag(field, I32));
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reserves `reserve` bytes for the length prefix of the body that follows;
/// returns where the prefix goes.
#[inline]
fn begin(out: &mut Vec<u8>, reserve: usize) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0u8; RESERVE_GROUP][..reserve]);
    at
}

/// Writes the length of the body that started at `at + reserve`, moving the
/// body when its length needs more or fewer bytes than reserved.
#[inline]
fn end(out: &mut Vec<u8>, at: usize, reserve: usize) {
    let body_start = at + reserve;
    let len = out.len() - body_start;
    let need = varint_len(len as u64);
    if need != reserve {
        if need > reserve {
            out.resize(out.len() + need - reserve, 0);
        }
        out.copy_within(body_start..body_start + len, at + need);
        out.truncate(at + need + len);
    }
    let mut v = len as u64;
    for i in 0..need {
        let more = if i + 1 < need { 0x80 } else { 0 };
        out[at + i] = (v as u8 & 0x7f) | more;
        v >>= 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for (v, n) in [
            (0u64, 1),
            (1, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), n, "{v}");
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), n, "{v}");
        }
    }

    #[test]
    fn a_length_prefix_that_needs_more_or_fewer_bytes_moves_the_body() {
        for len in [0usize, 5, 127, 128, 300, 16_383, 16_384, 70_000, 3_000_000] {
            for reserve in [1, 2, 3] {
                let mut out = vec![0xee];
                let at = begin(&mut out, reserve);
                out.extend((0..len).map(|i| i as u8));
                end(&mut out, at, reserve);
                let mut expected = vec![0xee];
                put_varint(&mut expected, len as u64);
                expected.extend((0..len).map(|i| i as u8));
                assert!(out == expected, "len {len}, reserve {reserve}");
            }
        }
    }

    #[test]
    fn an_empty_batch_is_one_resource_group_without_scopes() {
        let encoder = TraceEncoder::default();
        // resource_spans { resource {} }
        assert_eq!(encoder.encode_to_vec(&[]), vec![0x0a, 0x02, 0x0a, 0x00]);
    }
}
