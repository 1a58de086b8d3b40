//! Context propagation: AutoBot's propagator and the carriers it uses (HTTP
//! headers, string maps). Extraction never fails: a malformed or oversized
//! value is ignored and the caller starts a new root.
//!
//! Each format's rules are written once, over a small carrier trait, and
//! used by two doors:
//! - [`inject_headers`] / [`extract_headers`], the HTTP fast path: static
//!   header names, the ids hex-encoded once into stack buffers, no `String`
//!   per header and no header-name parsing (every request and response of
//!   every service goes through it, docs/performance.md);
//! - [`AutobotPropagator`] as a `TextMapPropagator` (installed as the
//!   global propagator by `init`), for the string-map carriers.
//!
//! The W3C and B3 rules are the SDK's (`TraceContextPropagator`,
//! `opentelemetry_propagator_b3::Propagator`) to the letter, including their
//! leniencies; `tests/it/propagation.rs` compares both on generated headers.
//! Baggage goes through the SDK's `BaggagePropagator`, only when there is
//! baggage to carry.
//!
//! What a caller sends is cut to the W3C limits before it is read, in every
//! carrier (HTTP, the Redis job map, SSH's environment), so no service
//! carries more on: `tracestate` to its first 32 members and 512 bytes
//! (members over 128 bytes dropped first, then members from the end, as
//! Trace Context asks), `baggage` to its first 180 members and 8192 bytes
//! (the SDK's propagator then keeps at most 64 of them).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::BaggagePropagator;

use crate::config::Propagators;

/// Context values longer than this are ignored (traceparent and B3; tracestate
/// and baggage are cut to their own limits below). Nothing legitimate is longer.
pub const MAX_CONTEXT_VALUE_BYTES: usize = 8192;
/// W3C Trace Context: a tracestate carries at most 32 list members…
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// …and is propagated up to 512 bytes; beyond, members are dropped.
pub const MAX_TRACESTATE_BYTES: usize = 512;
/// W3C Trace Context: a member this long or longer is dropped first.
const LONG_TRACESTATE_MEMBER: usize = 128;
/// W3C Baggage: at most 180 list members…
pub const MAX_BAGGAGE_MEMBERS: usize = 180;
/// …and 8192 bytes.
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// B3's "deferred" flag (ids without a sampling decision), as the B3
/// propagator stores it in the trace flags; `sampler.rs` honours it.
const B3_DEFERRED: TraceFlags = TraceFlags::new(0x02);
/// B3's debug flag, as the B3 propagator stores it.
const B3_DEBUG: TraceFlags = TraceFlags::new(0x04);

/// The propagation fields, with their header names built at compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Traceparent,
    Tracestate,
    Baggage,
    B3,
    B3TraceId,
    B3SpanId,
    B3Sampled,
    B3Flags,
    B3ParentSpanId,
}

impl Field {
    const fn name(self) -> &'static str {
        match self {
            Field::Traceparent => "traceparent",
            Field::Tracestate => "tracestate",
            Field::Baggage => "baggage",
            Field::B3 => "b3",
            Field::B3TraceId => "x-b3-traceid",
            Field::B3SpanId => "x-b3-spanid",
            Field::B3Sampled => "x-b3-sampled",
            Field::B3Flags => "x-b3-flags",
            Field::B3ParentSpanId => "x-b3-parentspanid",
        }
    }

    /// The header name, built at compile time: no parsing, no allocation.
    fn header(self) -> HeaderName {
        const TRACEPARENT: HeaderName = HeaderName::from_static(Field::Traceparent.name());
        const TRACESTATE: HeaderName = HeaderName::from_static(Field::Tracestate.name());
        const BAGGAGE: HeaderName = HeaderName::from_static(Field::Baggage.name());
        const B3: HeaderName = HeaderName::from_static(Field::B3.name());
        const B3_TRACE_ID: HeaderName = HeaderName::from_static(Field::B3TraceId.name());
        const B3_SPAN_ID: HeaderName = HeaderName::from_static(Field::B3SpanId.name());
        const B3_SAMPLED: HeaderName = HeaderName::from_static(Field::B3Sampled.name());
        const B3_FLAGS: HeaderName = HeaderName::from_static(Field::B3Flags.name());
        const B3_PARENT: HeaderName = HeaderName::from_static(Field::B3ParentSpanId.name());
        match self {
            Field::Traceparent => TRACEPARENT,
            Field::Tracestate => TRACESTATE,
            Field::Baggage => BAGGAGE,
            Field::B3 => B3,
            Field::B3TraceId => B3_TRACE_ID,
            Field::B3SpanId => B3_SPAN_ID,
            Field::B3Sampled => B3_SAMPLED,
            Field::B3Flags => B3_FLAGS,
            Field::B3ParentSpanId => B3_PARENT,
        }
    }
}

/// Where a format reads its fields.
trait Carrier {
    fn get(&self, field: Field) -> Option<&str>;
}

/// Where a format writes its fields.
trait Sink {
    fn set(&mut self, field: Field, value: &str);
}

/// A field's value, unless it is too large to be a trace context.
fn read(carrier: &dyn Carrier, field: Field) -> Option<&str> {
    carrier
        .get(field)
        .filter(|v| v.len() <= MAX_CONTEXT_VALUE_BYTES)
}

/// The non-empty list members of a W3C list header (`a=1, b=2`), trimmed,
/// with the byte offset where each ends in `value`.
fn list_members(value: &str) -> impl Iterator<Item = (&str, usize)> {
    let mut start = 0;
    value.split(',').filter_map(move |piece| {
        let end = start + piece.len();
        start = end + 1;
        let member = piece.trim_matches([' ', '\t']);
        (!member.is_empty()).then_some((member, end))
    })
}

/// `tracestate` within the W3C limits: a value of at most
/// [`MAX_TRACESTATE_BYTES`] as it is (the SDK's parser reads its first
/// [`MAX_TRACESTATE_MEMBERS`] members); a longer one as its first 32
/// members, without those of 128 bytes or more, then without members from
/// the end until it fits. Only as much of the value as 33 members is read.
pub fn cap_tracestate(value: &str) -> Cow<'_, str> {
    if value.len() <= MAX_TRACESTATE_BYTES {
        return Cow::Borrowed(value);
    }
    let mut members: Vec<&str> = list_members(value)
        .map(|(m, _)| m)
        .take(MAX_TRACESTATE_MEMBERS)
        .collect();
    let size = |members: &[&str]| {
        members.iter().map(|m| m.len()).sum::<usize>() + members.len().saturating_sub(1)
    };
    if size(&members) > MAX_TRACESTATE_BYTES {
        members.retain(|m| m.len() < LONG_TRACESTATE_MEMBER);
    }
    while size(&members) > MAX_TRACESTATE_BYTES {
        members.pop();
    }
    Cow::Owned(members.join(","))
}

/// `baggage` within the W3C limits: the longest start of the value holding
/// at most [`MAX_BAGGAGE_MEMBERS`] members in [`MAX_BAGGAGE_BYTES`] bytes.
pub fn cap_baggage(value: &str) -> &str {
    if value.len() <= MAX_BAGGAGE_BYTES && value.matches(',').count() < MAX_BAGGAGE_MEMBERS {
        return value;
    }
    let mut kept = 0;
    for (count, (_, end)) in list_members(value).enumerate() {
        if count == MAX_BAGGAGE_MEMBERS || end > MAX_BAGGAGE_BYTES {
            break;
        }
        kept = end;
    }
    &value[..kept]
}

impl Carrier for HeaderMap {
    fn get(&self, field: Field) -> Option<&str> {
        // First value only, visible ASCII only: what `HeaderExtractor` did.
        HeaderMap::get(self, field.header()).and_then(|v| v.to_str().ok())
    }
}

impl Sink for HeaderMap {
    fn set(&mut self, field: Field, value: &str) {
        if value.is_empty() {
            // An empty tracestate is not sent (W3C: SHOULD avoid sending
            // it); a stale one the caller set must not pair with our ids.
            self.remove(field.header());
        } else if let Ok(value) = HeaderValue::from_str(value) {
            self.insert(field.header(), value);
        }
    }
}

impl Carrier for &dyn Extractor {
    fn get(&self, field: Field) -> Option<&str> {
        Extractor::get(*self, field.name())
    }
}

impl Sink for &mut dyn Injector {
    fn set(&mut self, field: Field, value: &str) {
        Injector::set(*self, field.name(), value.to_owned());
    }
}

// ---------------------------------------------------------------- hex ids

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut [u8], bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
}

/// `v` as 16 lower-case hex digits, all at once: each nibble is spread
/// into a byte of a `u128`, then turned into its digit with adds and masks.
/// Three ids go out on every traced request; this took a byte-by-byte
/// table lookup's place (docs/performance.md, "Product path").
fn hex_u64(v: u64) -> [u8; 16] {
    const ONES: u128 = u128::from_ne_bytes([1; 16]);
    let mut x = u128::from(v);
    x = (x | x << 32) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    x = (x | x << 16) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    x = (x | x << 8) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
    x = (x | x << 4) & (ONES * 0x0f);
    // Byte i now holds nibble i (0..=15). Nibbles above 9 get a carry into
    // bit 4 when 6 is added: those take `'a' - '0' - 10` more.
    let letters = ((x + ONES * 6) >> 4) & ONES;
    (x + ONES * u128::from(b'0') + letters * u128::from(b'a' - b'0' - 10)).to_be_bytes()
}

/// `{trace}{span}` as 48 lower-case hex digits, encoded once per inject.
struct HexIds([u8; 48]);

impl HexIds {
    fn new(sc: &SpanContext) -> Self {
        let trace = u128::from_be_bytes(sc.trace_id().to_bytes());
        let mut out = [0u8; 48];
        // Truncation on purpose: the high and the low half of the trace id.
        out[..16].copy_from_slice(&hex_u64((trace >> 64) as u64));
        out[16..32].copy_from_slice(&hex_u64(trace as u64));
        out[32..].copy_from_slice(&hex_u64(u64::from_be_bytes(sc.span_id().to_bytes())));
        Self(out)
    }
    fn trace(&self) -> &str {
        ascii(&self.0[..32])
    }
    fn span(&self) -> &str {
        ascii(&self.0[32..])
    }
}

/// The buffers here hold only ASCII hex, dashes and flag letters.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

// ---------------------------------------------------------------- W3C

/// `00-{trace}-{span}-{flags}` for a valid span context: the `traceparent`
/// value, and the `traceresponse` value of every HTTP response.
fn traceparent_bytes(sc: &SpanContext) -> Option<[u8; 55]> {
    if !sc.is_valid() {
        return None;
    }
    let ids = HexIds::new(sc);
    let mut out = [b'-'; 55];
    out[..2].copy_from_slice(b"00");
    out[3..35].copy_from_slice(&ids.0[..32]);
    out[36..52].copy_from_slice(&ids.0[32..]);
    put_hex(
        &mut out[53..],
        &[(sc.trace_flags() & TraceFlags::SAMPLED).to_u8()],
    );
    Some(out)
}

fn inject_w3c(sc: &SpanContext, sink: &mut dyn Sink) {
    if let Some(value) = traceparent_bytes(sc) {
        sink.set(Field::Traceparent, ascii(&value));
        sink.set(Field::Tracestate, &sc.trace_state().header());
    }
}

/// `TraceContextPropagator`'s rules: version ≤ 0xfe (exactly four fields
/// for version 00), lower-case ids, only the sampled flag kept.
fn extract_w3c(carrier: &dyn Carrier) -> Option<SpanContext> {
    let value = read(carrier, Field::Traceparent)?;
    let (trace_id, span_id, flags) =
        traceparent_v00(value).or_else(|| traceparent_any(value.trim()))?;
    let state = carrier
        .get(Field::Tracestate)
        .map(|s| TraceState::from_str(&cap_tracestate(s)).unwrap_or_default())
        .unwrap_or_default();
    let sc = SpanContext::new(trace_id, span_id, flags, true, state);
    sc.is_valid().then_some(sc)
}

type TraceparentIds = (TraceId, SpanId, TraceFlags);

/// The form every W3C caller sends, `00-{32}-{16}-{2}` in lower-case hex,
/// read by position; anything else is left to `traceparent_any`, which
/// gives the same answer for this form (a test checks).
fn traceparent_v00(value: &str) -> Option<TraceparentIds> {
    let b = value.as_bytes();
    if b.len() != 55 || !b.starts_with(b"00-") || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let trace = lower_hex(value.get(3..35)?, 32)?;
    let span = u64::try_from(lower_hex(value.get(36..52)?, 16)?).ok()?;
    let flags = u8::try_from(lower_hex(value.get(53..)?, 2)?).ok()?;
    Some((
        TraceId::from(trace),
        SpanId::from(span),
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
    ))
}

/// Every version and form `TraceContextPropagator` accepts.
fn traceparent_any(value: &str) -> Option<TraceparentIds> {
    let mut parts = value.split_terminator('-');
    let (Some(version), Some(trace), Some(span), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let version = u8::from_str_radix(version, 16).ok()?;
    if version == 0xff || (version == 0 && parts.next().is_some()) {
        return None;
    }
    if has_upper(flags) {
        return None;
    }
    let trace_id = trace_id(trace)?;
    let span_id = span_id(span)?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?) & TraceFlags::SAMPLED;
    Some((trace_id, span_id, flags))
}

fn has_upper(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_uppercase())
}

/// 1 to `max` lower-case hex digits, decoded in one pass: the form every
/// caller sends. Anything else returns `None` and takes the exact slow path.
fn lower_hex(s: &str, max: usize) -> Option<u128> {
    if s.is_empty() || s.len() > max {
        return None;
    }
    let mut value = 0u128;
    for b in s.bytes() {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = value << 4 | u128::from(digit);
    }
    Some(value)
}

/// A trace id as the SDK propagators read it: no upper case, then
/// `TraceId::from_hex` (`u128::from_str_radix`, with its leniencies).
fn trace_id(s: &str) -> Option<TraceId> {
    match lower_hex(s, 32) {
        Some(v) => Some(TraceId::from(v)),
        None if has_upper_any(s) => None,
        None => TraceId::from_hex(s).ok(),
    }
}

/// A span id, likewise (`u64::from_str_radix`).
fn span_id(s: &str) -> Option<SpanId> {
    match lower_hex(s, 16) {
        Some(v) => u64::try_from(v).ok().map(SpanId::from),
        None if has_upper_any(s) => None,
        None => SpanId::from_hex(s).ok(),
    }
}

// ---------------------------------------------------------------- B3

/// B3 single (`b3`) and/or multi (`x-b3-*`), as `opentelemetry_propagator_b3` writes them.
fn inject_b3(sc: &SpanContext, single: bool, multi: bool, sink: &mut dyn Sink) {
    if !sc.is_valid() {
        // No trace: send nothing, as for W3C. The SDK's B3 propagator sends a
        // bare `b3: 0` here, which B3 defines as "deny": a Zipkin-instrumented
        // callee would stop sampling calls from a service whose tracing is
        // merely off. (A caller's bare decision is not kept on extraction.)
        return;
    }
    let ids = HexIds::new(sc);
    let flags = sc.trace_flags();
    let deferred = flags & B3_DEFERRED == B3_DEFERRED;
    let debug = flags & B3_DEBUG == B3_DEBUG;
    let sampled = if sc.is_sampled() { "1" } else { "0" };
    if single {
        let mut value = [b'-'; 51];
        value[..32].copy_from_slice(&ids.0[..32]);
        value[33..49].copy_from_slice(&ids.0[32..]);
        let len = if deferred {
            49
        } else {
            value[50] = match (debug, sampled) {
                (true, _) => b'd',
                (false, "1") => b'1',
                _ => b'0',
            };
            51
        };
        sink.set(Field::B3, ascii(&value[..len]));
    }
    if multi {
        sink.set(Field::B3TraceId, ids.trace());
        sink.set(Field::B3SpanId, ids.span());
        if debug {
            sink.set(Field::B3Flags, "1");
        } else if !deferred {
            sink.set(Field::B3Sampled, sampled);
        }
    }
}

/// The single header first, the multi headers if it is absent or invalid.
/// `single` is whether the single encoding is configured: the B3 propagator
/// accepts `d` only then, and `true` only otherwise.
fn extract_b3(carrier: &dyn Carrier, single: bool) -> Option<SpanContext> {
    extract_b3_single(carrier, single)
        .or_else(|| extract_b3_multi(carrier, single))
        .filter(SpanContext::is_valid)
}

fn extract_b3_single(carrier: &dyn Carrier, single: bool) -> Option<SpanContext> {
    let value = read(carrier, Field::B3)?;
    let mut it = value.split_terminator('-');
    let parts = [it.next(), it.next(), it.next(), it.next()];
    let count = parts.iter().flatten().count();
    if count < 2 || it.next().is_some() {
        return None;
    }
    let trace_id = b3_trace_id(parts[0]?)?;
    let span_id = b3_span_id(parts[1]?)?;
    let flags = match parts[2] {
        Some(sampled) => b3_sampled(sampled, single)?,
        None => B3_DEFERRED,
    };
    if let Some(parent) = parts[3] {
        b3_span_id(parent)?;
    }
    let sc = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    sc.is_valid().then_some(sc)
}

fn extract_b3_multi(carrier: &dyn Carrier, single: bool) -> Option<SpanContext> {
    let trace_id = b3_trace_id(read(carrier, Field::B3TraceId).unwrap_or(""))?;
    let span_id = b3_span_id(read(carrier, Field::B3SpanId).unwrap_or(""))?;
    // x-b3-parentspanid is read but, as in the B3 propagator, never decides.
    let _ = read(carrier, Field::B3ParentSpanId);
    let debug = match read(carrier, Field::B3Flags).unwrap_or("") {
        "0" => Some(TraceFlags::default()),
        "1" => Some(B3_DEBUG | TraceFlags::SAMPLED),
        _ => None,
    };
    let flags = match (debug, read(carrier, Field::B3Sampled)) {
        (Some(debug), _) => debug,
        (None, Some(sampled)) => b3_sampled(sampled, single)?,
        (None, None) => B3_DEFERRED,
    };
    let sc = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    sc.is_valid().then_some(sc)
}

fn b3_trace_id(s: &str) -> Option<TraceId> {
    if s.len() != 16 && s.len() != 32 {
        return None;
    }
    trace_id(s)
}

fn b3_span_id(s: &str) -> Option<SpanId> {
    if s.len() != 16 {
        return None;
    }
    span_id(s)
}

/// Any upper-case letter: the W3C propagator tests ASCII, the B3 one
/// `to_lowercase() != s`; a non-ASCII id fails to parse either way.
fn has_upper_any(s: &str) -> bool {
    if s.is_ascii() {
        has_upper(s)
    } else {
        s.to_lowercase() != s
    }
}

fn b3_sampled(s: &str, single: bool) -> Option<TraceFlags> {
    match s {
        "0" | "false" => Some(TraceFlags::default()),
        "1" => Some(TraceFlags::SAMPLED),
        "true" if !single => Some(TraceFlags::SAMPLED),
        "d" if single => Some(B3_DEBUG),
        _ => None,
    }
}

// ---------------------------------------------------------------- baggage

/// Takes the one value `BaggagePropagator` writes.
struct BaggageValue(Option<String>);

impl Injector for BaggageValue {
    fn set(&mut self, _key: &str, value: String) {
        self.0 = Some(value);
    }
}

/// Hands `BaggagePropagator` the one header it reads.
struct BaggageHeader<'a>(&'a str);

impl Extractor for BaggageHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == Field::Baggage.name()).then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec![Field::Baggage.name()]
    }
}

// ---------------------------------------------------------------- the propagator

/// The formats in the configured set, injected in the composite's order
/// (B3, W3C, baggage) and extracted with its precedence: a valid W3C
/// `traceparent` wins over B3, B3's single header over its multi headers.
fn inject_into(formats: &Propagators, cx: &Context, sink: &mut dyn Sink) {
    let span = cx.span();
    let sc = span.span_context();
    if formats.b3_single || formats.b3_multi {
        inject_b3(sc, formats.b3_single, formats.b3_multi, sink);
    }
    if formats.tracecontext {
        inject_w3c(sc, sink);
    }
    if formats.baggage && !cx.baggage().is_empty() {
        let mut value = BaggageValue(None);
        BaggagePropagator::new().inject_context(cx, &mut value);
        if let Some(value) = value.0 {
            sink.set(Field::Baggage, &value);
        }
    }
}

fn extract_from(formats: &Propagators, base: &Context, carrier: &dyn Carrier) -> Context {
    // A valid traceparent wins, so B3 is read only without one.
    let mut remote = None;
    if formats.tracecontext {
        remote = extract_w3c(carrier);
    }
    if remote.is_none() && (formats.b3_single || formats.b3_multi) {
        remote = extract_b3(carrier, formats.b3_single);
    }
    let cx = match remote {
        Some(sc) => base.with_remote_span_context(sc),
        None => base.clone(),
    };
    match formats
        .baggage
        .then(|| carrier.get(Field::Baggage))
        .flatten()
        .map(cap_baggage)
    {
        Some(value) if !value.is_empty() => {
            BaggagePropagator::new().extract_with_context(&cx, &BaggageHeader(value))
        }
        _ => cx,
    }
}

/// AutoBot's propagator: the configured set of tracecontext, baggage, b3
/// and b3multi (`OTEL_PROPAGATORS`). `init` installs it; public so tools and
/// tests can use the same rules with another set.
#[derive(Clone, Debug)]
pub struct AutobotPropagator {
    formats: Propagators,
    fields: Vec<String>,
}

impl AutobotPropagator {
    pub fn new(formats: Propagators) -> Self {
        let mut fields = Vec::new();
        if formats.b3_single {
            fields.push(Field::B3);
        }
        if formats.b3_multi {
            fields.extend([
                Field::B3TraceId,
                Field::B3SpanId,
                Field::B3Sampled,
                Field::B3Flags,
            ]);
        }
        if formats.tracecontext {
            fields.extend([Field::Traceparent, Field::Tracestate]);
        }
        if formats.baggage {
            fields.push(Field::Baggage);
        }
        Self {
            formats,
            fields: fields.into_iter().map(|f| f.name().to_owned()).collect(),
        }
    }

    /// Writes `cx` into HTTP headers (replacing values already there).
    pub fn inject_headers(&self, cx: &Context, headers: &mut HeaderMap) {
        inject_into(&self.formats, cx, headers);
    }

    /// Reads the caller's context from HTTP headers, on top of the current context.
    pub fn extract_headers(&self, headers: &HeaderMap) -> Context {
        Context::map_current(|base| extract_from(&self.formats, base, headers))
    }
}

impl TextMapPropagator for AutobotPropagator {
    fn inject_context(&self, cx: &Context, mut injector: &mut dyn Injector) {
        inject_into(&self.formats, cx, &mut injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        extract_from(&self.formats, cx, &extractor)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// The set `init` installed, for the free functions below (which run on
/// every request, so they read one atomic instead of the global
/// propagator's lock). `NONE`: `init` has not run, nothing is propagated,
/// as with OpenTelemetry's default no-op propagator.
static INSTALLED: AtomicU8 = AtomicU8::new(NONE);
const NONE: u8 = 0x80;

fn installed() -> Option<Propagators> {
    let bits = INSTALLED.load(Ordering::Relaxed);
    (bits & NONE == 0).then_some(Propagators {
        tracecontext: bits & 1 != 0,
        baggage: bits & 2 != 0,
        b3_single: bits & 4 != 0,
        b3_multi: bits & 8 != 0,
    })
}

/// The propagator `init` installs globally; the HTTP fast path and the map
/// carriers use the same set from now on.
pub(crate) fn build_propagator(p: &Propagators) -> AutobotPropagator {
    let bits = u8::from(p.tracecontext)
        | u8::from(p.baggage) << 1
        | u8::from(p.b3_single) << 2
        | u8::from(p.b3_multi) << 3;
    INSTALLED.store(bits, Ordering::Relaxed);
    AutobotPropagator::new(*p)
}

/// Extracts a context with the installed propagator; never fails.
pub fn extract(carrier: &dyn Extractor) -> Context {
    match installed() {
        Some(formats) => Context::map_current(|base| extract_from(&formats, base, &carrier)),
        None => Context::current(),
    }
}

/// Injects `cx` with the installed propagator.
pub fn inject(cx: &Context, mut carrier: &mut dyn Injector) {
    if let Some(formats) = installed() {
        inject_into(&formats, cx, &mut carrier);
    }
}

/// Extracts the caller's context from HTTP headers.
pub fn extract_headers(headers: &HeaderMap) -> Context {
    match installed() {
        Some(formats) => Context::map_current(|base| extract_from(&formats, base, headers)),
        None => Context::current(),
    }
}

/// Injects `cx` into HTTP headers (traceparent, tracestate, baggage, b3, x-b3-*).
pub fn inject_headers(cx: &Context, headers: &mut HeaderMap) {
    if let Some(formats) = installed() {
        inject_into(&formats, cx, headers);
    }
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
/// Same layout as `traceparent`.
pub(crate) fn traceresponse_bytes(cx: &Context) -> Option<[u8; 55]> {
    traceparent_bytes(cx.span().span_context())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize, len: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("k{i:03}={}", "v".repeat(len.saturating_sub(5))))
            .collect()
    }

    #[test]
    fn ids_are_written_as_lower_case_hex_with_every_digit() {
        for v in [
            0,
            1,
            9,
            10,
            0x0123_4567_89ab_cdef,
            0xfedc_ba98_7654_3210,
            0xa0a0_9f9f_0a0a_f9f9,
            u64::MAX,
        ] {
            assert_eq!(ascii(&hex_u64(v)), format!("{v:016x}"));
        }
        // And a thousand more, spread over the whole range.
        let mut v = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..1000 {
            v = v
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            assert_eq!(ascii(&hex_u64(v)), format!("{v:016x}"));
        }
        let sc = SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
            SpanId::from(0xb7ad_6b71_6920_3331),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let ids = HexIds::new(&sc);
        assert_eq!(ids.trace(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(ids.span(), "b7ad6b7169203331");
    }

    #[test]
    fn the_usual_traceparent_is_read_by_position_with_the_general_rules_answer() {
        let usual = [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        ];
        for value in usual {
            let fast = traceparent_v00(value);
            assert!(fast.is_some(), "{value}");
            assert_eq!(fast, traceparent_any(value), "{value}");
        }
        // Not the usual form: left to the general rules, whatever they say.
        let other = [
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0G",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c8031é-b7ad6b7169203331-01",
        ];
        for value in other {
            assert_eq!(traceparent_v00(value), None, "{value}");
        }
    }

    #[test]
    fn a_tracestate_within_the_limits_is_left_as_it_is() {
        let value = members(32, 15).join(",");
        assert!(value.len() <= MAX_TRACESTATE_BYTES);
        assert!(matches!(cap_tracestate(&value), Cow::Borrowed(v) if v == value));
    }

    #[test]
    fn a_long_tracestate_loses_its_long_members_then_its_last_ones() {
        let mut list = members(3, 20);
        list.insert(1, format!("long={}", "x".repeat(200)));
        list.extend(members(40, 20).into_iter().skip(3));
        let value = list.join(", ");
        let capped = cap_tracestate(&value);
        assert!(capped.len() <= MAX_TRACESTATE_BYTES, "{}", capped.len());
        assert!(!capped.contains("long="), "long members go first");
        let kept: Vec<&str> = capped.split(',').collect();
        assert_eq!(
            kept[..3],
            [&list[0], &list[2], &list[3]].map(String::as_str)
        );
        // 20 bytes a member and a comma: 24 fit in 512.
        assert_eq!(kept.len(), 24);
        assert!(TraceState::from_str(&capped).is_ok());
    }

    #[test]
    fn a_huge_tracestate_is_read_only_as_far_as_its_members_go() {
        let value = format!("{},{}", members(40, 10).join(","), "x".repeat(400_000));
        let capped = cap_tracestate(&value);
        assert_eq!(capped.split(',').count(), MAX_TRACESTATE_MEMBERS);
        assert!(capped.len() <= MAX_TRACESTATE_BYTES);
    }

    #[test]
    fn baggage_keeps_its_first_members_within_the_limits() {
        let small = "a=1, b=2;p=3";
        assert_eq!(cap_baggage(small), small);
        let many = members(200, 10).join(",");
        let capped = cap_baggage(&many);
        assert_eq!(capped.split(',').count(), MAX_BAGGAGE_MEMBERS);
        assert!(many.starts_with(capped));
        let big = members(100, 200).join(",");
        let capped = cap_baggage(&big);
        assert!(capped.len() <= MAX_BAGGAGE_BYTES && capped.len() > MAX_BAGGAGE_BYTES - 201);
        assert!(capped.ends_with('v'), "whole members only");
        assert_eq!(cap_baggage(&format!("k={}", "v".repeat(9000))), "");
    }
}
