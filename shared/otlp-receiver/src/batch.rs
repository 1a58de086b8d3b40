//! [`SpanBatch`]: the spans of one accepted export request, kept as their
//! protobuf encoding with a small index, instead of prost's structs.
//!
//! Decoding an `ExportTraceServiceRequest` into `opentelemetry_proto`'s
//! structs allocates a `Vec` per id and a `String` per name, key and value,
//! and then everything is dropped again: that was 90 % of the trace tool's
//! ingest. Here one pass over the request bytes checks everything prost
//! would check (wire types, lengths, UTF-8 of every string, nesting) and
//! everything [`validate`](crate::validate) checks, and records per span only
//! what storing needs (trace id, times, name, kind, where its bytes are).
//! Resources and scopes (one per group of spans) are decoded with prost.
//! A span is decoded in full only when somebody asks for it
//! ([`SpanBatch::span`]).
//!
//! Anything unusual the fast pass does not handle (groups, a field with an
//! unexpected wire type, deep nesting, any error) sends the request down the
//! old path: prost decodes it whole and [`validate`](crate::validate) checks
//! it, so what is refused, and with which reason, is exactly what it was.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::InvalidExport;

/// Why an export request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("not an OTLP protobuf export request: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error(transparent)]
    Invalid(#[from] InvalidExport),
}

/// The resource and scope a run of spans came with.
#[derive(Clone, Debug)]
pub struct SpanGroup {
    /// `service.name` of the resource, or `unknown_service`.
    pub service: Arc<str>,
    pub resource: Arc<Resource>,
    pub scope: Arc<InstrumentationScope>,
}

/// What is known of a span without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanMeta {
    pub trace_id: [u8; 16],
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// OTLP span kind as sent.
    pub kind: i32,
    /// Index into [`SpanBatch::groups`].
    pub group: u32,
    /// The span's protobuf message in the batch's bytes.
    offset: u32,
    len: u32,
    /// The span's name (valid UTF-8, checked) in the batch's bytes.
    name_offset: u32,
    name_len: u32,
}

impl SpanMeta {
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// The valid spans of one export request.
#[derive(Debug, Default)]
pub struct SpanBatch {
    bytes: Box<[u8]>,
    groups: Vec<SpanGroup>,
    spans: Vec<SpanMeta>,
}

/// Used by the fast pass: "take the slow path" (an error, or something it does not handle).
#[derive(Debug)]
struct Slow;

type Fast<T> = Result<T, Slow>;

/// Deeper nesting of attribute values than this goes the slow path (prost's limit is 100).
const MAX_DEPTH: u32 = 32;

// Wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// A cursor over one protobuf message.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn more(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// A varint as prost reads it: at most 10 bytes, the 10th at most 1.
    #[inline]
    fn varint(&mut self) -> Fast<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(Slow)?;
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(Slow);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(Slow)
    }

    /// A field key: (tag, wire type); tag 0, keys beyond u32 and wire types
    /// 6, 7 are errors, groups (3, 4) are left to prost.
    #[inline]
    fn key(&mut self) -> Fast<(u32, u8)> {
        // One-byte keys (tags 1..=15) are nearly all of them.
        let key = match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                u64::from(b)
            }
            _ => self.varint()?,
        };
        let key = u32::try_from(key).map_err(|_| Slow)?;
        let wire_type = (key & 7) as u8;
        let tag = key >> 3;
        if tag == 0 || !matches!(wire_type, VARINT | I64 | LEN | I32) {
            return Err(Slow);
        }
        Ok((tag, wire_type))
    }

    fn take(&mut self, len: usize) -> Fast<&'a [u8]> {
        let end = self.pos.checked_add(len).ok_or(Slow)?;
        let bytes = self.buf.get(self.pos..end).ok_or(Slow)?;
        self.pos = end;
        Ok(bytes)
    }

    /// A length-delimited field's payload and its offset in this reader's buffer.
    #[inline]
    fn len_delimited(&mut self) -> Fast<(usize, &'a [u8])> {
        let len = match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                usize::from(b)
            }
            _ => usize::try_from(self.varint()?).map_err(|_| Slow)?,
        };
        let offset = self.pos;
        Ok((offset, self.take(len)?))
    }

    fn string(&mut self) -> Fast<(usize, &'a [u8])> {
        let (offset, bytes) = self.len_delimited()?;
        if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
            Ok((offset, bytes))
        } else {
            Err(Slow)
        }
    }

    fn fixed64(&mut self) -> Fast<u64> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| Slow)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Skips a field this scanner does not need, as prost would.
    fn skip(&mut self, wire_type: u8) -> Fast<()> {
        match wire_type {
            VARINT => self.varint().map(drop),
            I64 => self.take(8).map(drop),
            I32 => self.take(4).map(drop),
            LEN => self.len_delimited().map(drop),
            _ => Err(Slow),
        }
    }

    /// A field prost knows: the wire type must be the declared one.
    #[inline]
    fn expect(&self, wire_type: u8, declared: u8) -> Fast<()> {
        if wire_type == declared {
            Ok(())
        } else {
            Err(Slow)
        }
    }
}

/// `[key][len < 128][len ASCII bytes]` at the start of `bytes`: what follows.
#[inline(always)]
fn short_ascii_field(bytes: &[u8], key: u8) -> Option<&[u8]> {
    match bytes {
        [k, len, rest @ ..] if *k == key && *len < 0x80 && rest.len() >= usize::from(*len) => {
            let (text, rest) = rest.split_at(usize::from(*len));
            text.is_ascii().then_some(rest)
        }
        _ => None,
    }
}

/// An `AnyValue` that is exactly one short ASCII string, one int or bool
/// (a whole valid varint) or one double: nearly every attribute value.
#[inline(always)]
fn simple_value(value: &[u8]) -> bool {
    match value {
        [0x0a, ..] => short_ascii_field(value, 0x0a).is_some_and(<[u8]>::is_empty),
        [0x10 | 0x18, varint @ ..] => match varint.split_last() {
            Some((last, init)) => {
                *last < 0x80
                    && init.len() < 10
                    && init.iter().all(|b| *b >= 0x80)
                    && (init.len() < 9 || *last <= 1)
            }
            None => false,
        },
        [0x21, double @ ..] => double.len() == 8,
        _ => false,
    }
}

/// A `KeyValue`: the common shape (a short ASCII key, then one simple
/// value) inline, anything else in [`check_key_value_in_full`].
#[inline(always)]
fn check_key_value(bytes: &[u8], depth: u32) -> Fast<()> {
    if let Some([0x12, len, value @ ..]) = short_ascii_field(bytes, 0x0a)
        && usize::from(*len) == value.len()
        && simple_value(value)
    {
        return Ok(());
    }
    check_key_value_in_full(bytes, depth)
}

#[inline(never)]
fn check_key_value_in_full(bytes: &[u8], depth: u32) -> Fast<()> {
    let mut r = Reader::new(bytes);
    while r.more() {
        match r.key()? {
            (1, wt) => {
                r.expect(wt, LEN)?;
                r.string()?;
            }
            (2, wt) => {
                r.expect(wt, LEN)?;
                check_any_value(r.len_delimited()?.1, depth + 1)?;
            }
            (3, wt) => {
                r.expect(wt, VARINT)?;
                r.varint()?;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    Ok(())
}

fn check_any_value(bytes: &[u8], depth: u32) -> Fast<()> {
    if depth > MAX_DEPTH {
        return Err(Slow);
    }
    let mut r = Reader::new(bytes);
    while r.more() {
        match r.key()? {
            (1, wt) => {
                r.expect(wt, LEN)?;
                r.string()?;
            }
            (2 | 3 | 8, wt) => {
                r.expect(wt, VARINT)?;
                r.varint()?;
            }
            (4, wt) => {
                r.expect(wt, I64)?;
                r.take(8)?;
            }
            (5, wt) => {
                r.expect(wt, LEN)?;
                let mut array = Reader::new(r.len_delimited()?.1);
                while array.more() {
                    match array.key()? {
                        (1, wt) => {
                            array.expect(wt, LEN)?;
                            check_any_value(array.len_delimited()?.1, depth + 1)?;
                        }
                        (_, wt) => array.skip(wt)?,
                    }
                }
            }
            (6, wt) => {
                r.expect(wt, LEN)?;
                check_key_values(r.len_delimited()?.1, depth + 1)?;
            }
            (7, wt) => {
                r.expect(wt, LEN)?;
                r.len_delimited()?;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    Ok(())
}

/// A `KeyValueList`: field 1, repeated `KeyValue`.
fn check_key_values(bytes: &[u8], depth: u32) -> Fast<()> {
    let mut r = Reader::new(bytes);
    while r.more() {
        match r.key()? {
            (1, wt) => {
                r.expect(wt, LEN)?;
                check_key_value(r.len_delimited()?.1, depth + 1)?;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    Ok(())
}

fn check_resource(bytes: &[u8]) -> Fast<()> {
    let mut r = Reader::new(bytes);
    while r.more() {
        match r.key()? {
            (1, wt) => {
                r.expect(wt, LEN)?;
                check_key_value(r.len_delimited()?.1, 1)?;
            }
            (2, wt) => {
                r.expect(wt, VARINT)?;
                r.varint()?;
            }
            (3, wt) => {
                // EntityRef: four string fields (two repeated).
                r.expect(wt, LEN)?;
                let mut e = Reader::new(r.len_delimited()?.1);
                while e.more() {
                    match e.key()? {
                        (1..=4, wt) => {
                            e.expect(wt, LEN)?;
                            e.string()?;
                        }
                        (_, wt) => e.skip(wt)?,
                    }
                }
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    Ok(())
}

fn check_scope(bytes: &[u8]) -> Fast<()> {
    let mut r = Reader::new(bytes);
    while r.more() {
        match r.key()? {
            (1 | 2, wt) => {
                r.expect(wt, LEN)?;
                r.string()?;
            }
            (3, wt) => {
                r.expect(wt, LEN)?;
                check_key_value(r.len_delimited()?.1, 1)?;
            }
            (4, wt) => {
                r.expect(wt, VARINT)?;
                r.varint()?;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    Ok(())
}

fn valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|b| *b != 0)
}

/// One `Span` message at `base` in the request: checked, and indexed.
fn scan_span(bytes: &[u8], base: usize, group: u32) -> Fast<SpanMeta> {
    let mut r = Reader::new(bytes);
    let (mut trace_id, mut span_id, mut parent): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let (mut name_offset, mut name_len) = (0, 0);
    let (mut kind, mut start, mut end) = (0i32, 0u64, 0u64);
    while r.more() {
        match r.key()? {
            (1, wt) => {
                r.expect(wt, LEN)?;
                trace_id = r.len_delimited()?.1;
            }
            (2, wt) => {
                r.expect(wt, LEN)?;
                span_id = r.len_delimited()?.1;
            }
            (3, wt) => {
                r.expect(wt, LEN)?;
                r.string()?;
            }
            (4, wt) => {
                r.expect(wt, LEN)?;
                parent = r.len_delimited()?.1;
            }
            (5, wt) => {
                r.expect(wt, LEN)?;
                let (offset, name) = r.string()?;
                (name_offset, name_len) = (base + offset, name.len());
            }
            (6, wt) => {
                r.expect(wt, VARINT)?;
                // prost reads an int32 field as a truncated varint.
                kind = r.varint()? as i32;
            }
            (7, wt) => {
                r.expect(wt, I64)?;
                start = r.fixed64()?;
            }
            (8, wt) => {
                r.expect(wt, I64)?;
                end = r.fixed64()?;
            }
            (9, wt) => {
                r.expect(wt, LEN)?;
                check_key_value(r.len_delimited()?.1, 1)?;
            }
            (10 | 12 | 14, wt) => {
                r.expect(wt, VARINT)?;
                r.varint()?;
            }
            (11, wt) => {
                r.expect(wt, LEN)?;
                check_event(r.len_delimited()?.1)?;
            }
            (13, wt) => {
                r.expect(wt, LEN)?;
                check_link(r.len_delimited()?.1)?;
            }
            (15, wt) => {
                r.expect(wt, LEN)?;
                check_status(r.len_delimited()?.1)?;
            }
            (16, wt) => {
                r.expect(wt, I32)?;
                r.take(4)?;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    // What validate() checks; a problem goes the slow path for its reason.
    if !valid_id(trace_id, 16)
        || !valid_id(span_id, 8)
        || !(parent.is_empty() || parent.len() == 8)
        || end < start
        || name_len == 0
    {
        return Err(Slow);
    }
    let small = |n: usize| u32::try_from(n).map_err(|_| Slow);
    Ok(SpanMeta {
        trace_id: trace_id.try_into().map_err(|_| Slow)?,
        start_unix_nano: start,
        end_unix_nano: end,
        kind,
        group,
        offset: small(base)?,
        len: small(bytes.len())?,
        name_offset: small(name_offset)?,
        name_len: small(name_len)?,
    })
}

fn check_event(bytes: &[u8]) -> Fast<()> {
    let mut r = Reader::new(bytes);
    while r.more() {
        match r.key()? {
            (1, wt) => {
                r.expect(wt, I64)?;
                r.take(8)?;
            }
            (2, wt) => {
                r.expect(wt, LEN)?;
                r.string()?;
            }
            (3, wt) => {
                r.expect(wt, LEN)?;
                check_key_value(r.len_delimited()?.1, 1)?;
            }
            (4, wt) => {
                r.expect(wt, VARINT)?;
                r.varint()?;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    Ok(())
}

fn check_link(bytes: &[u8]) -> Fast<()> {
    let mut r = Reader::new(bytes);
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    while r.more() {
        match r.key()? {
            (1, wt) => {
                r.expect(wt, LEN)?;
                trace_id = r.len_delimited()?.1;
            }
            (2, wt) => {
                r.expect(wt, LEN)?;
                span_id = r.len_delimited()?.1;
            }
            (3, wt) => {
                r.expect(wt, LEN)?;
                r.string()?;
            }
            (4, wt) => {
                r.expect(wt, LEN)?;
                check_key_value(r.len_delimited()?.1, 1)?;
            }
            (5, wt) => {
                r.expect(wt, VARINT)?;
                r.varint()?;
            }
            (6, wt) => {
                r.expect(wt, I32)?;
                r.take(4)?;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    if valid_id(trace_id, 16) && valid_id(span_id, 8) {
        Ok(())
    } else {
        Err(Slow)
    }
}

fn check_status(bytes: &[u8]) -> Fast<()> {
    let mut r = Reader::new(bytes);
    while r.more() {
        match r.key()? {
            (2, wt) => {
                r.expect(wt, LEN)?;
                r.string()?;
            }
            (3, wt) => {
                r.expect(wt, VARINT)?;
                r.varint()?;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    Ok(())
}

/// `service.name` of a resource, as the trace tool and Jaeger show it.
pub fn service_name(resource: &Resource) -> String {
    resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
        // What the OpenTelemetry SDKs and Jaeger show for a resource without a name.
        .unwrap_or_else(|| "unknown_service".to_owned())
}

impl SpanBatch {
    /// Checks and indexes a protobuf `ExportTraceServiceRequest`; refuses it
    /// whole, with prost's or [`validate`](crate::validate)'s reason.
    pub fn from_protobuf(bytes: impl Into<Box<[u8]>>) -> Result<Self, Refused> {
        let bytes: Box<[u8]> = bytes.into();
        match Self::scan(&bytes) {
            Ok((groups, spans)) => Ok(Self {
                bytes,
                groups,
                spans,
            }),
            Err(Slow) => {
                let request = ExportTraceServiceRequest::decode(&*bytes)?;
                Ok(Self::from_request(request)?)
            }
        }
    }

    /// The fast pass over a whole request.
    fn scan(bytes: &[u8]) -> Fast<(Vec<SpanGroup>, Vec<SpanMeta>)> {
        let mut groups = Vec::new();
        let mut spans = Vec::new();
        let mut r = Reader::new(bytes);
        // Where the ResourceSpans' parts are; reused for each.
        let mut resources: Vec<&[u8]> = Vec::new();
        let mut scope_spans: Vec<(usize, &[u8])> = Vec::new();
        while r.more() {
            match r.key()? {
                (1, wt) => {
                    r.expect(wt, LEN)?;
                    let (rs_offset, rs) = r.len_delimited()?;
                    resources.clear();
                    scope_spans.clear();
                    let mut rr = Reader::new(rs);
                    while rr.more() {
                        match rr.key()? {
                            (1, wt) => {
                                rr.expect(wt, LEN)?;
                                let part = rr.len_delimited()?.1;
                                check_resource(part)?;
                                resources.push(part);
                            }
                            (2, wt) => {
                                rr.expect(wt, LEN)?;
                                let (offset, ss) = rr.len_delimited()?;
                                scope_spans.push((rs_offset + offset, ss));
                            }
                            (3, wt) => {
                                rr.expect(wt, LEN)?;
                                rr.string()?;
                            }
                            (_, wt) => rr.skip(wt)?,
                        }
                    }
                    // A message field sent twice is merged (prost, and the protobuf spec).
                    let mut resource = Resource::default();
                    for part in &resources {
                        resource.merge(*part).map_err(|_| Slow)?;
                    }
                    let resource = Arc::new(resource);
                    let service: Arc<str> = Arc::from(service_name(&resource));
                    for (ss_offset, ss) in &scope_spans {
                        Self::scan_scope_spans(
                            ss,
                            *ss_offset,
                            &resource,
                            &service,
                            &mut groups,
                            &mut spans,
                        )?;
                    }
                }
                (_, wt) => r.skip(wt)?,
            }
        }
        Ok((groups, spans))
    }

    fn scan_scope_spans(
        bytes: &[u8],
        base: usize,
        resource: &Arc<Resource>,
        service: &Arc<str>,
        groups: &mut Vec<SpanGroup>,
        spans: &mut Vec<SpanMeta>,
    ) -> Fast<()> {
        let index = u32::try_from(groups.len()).map_err(|_| Slow)?;
        let mut scope = InstrumentationScope::default();
        let mut r = Reader::new(bytes);
        while r.more() {
            match r.key()? {
                (1, wt) => {
                    r.expect(wt, LEN)?;
                    let part = r.len_delimited()?.1;
                    check_scope(part)?;
                    scope.merge(part).map_err(|_| Slow)?;
                }
                (2, wt) => {
                    r.expect(wt, LEN)?;
                    let (offset, span) = r.len_delimited()?;
                    spans.push(scan_span(span, base + offset, index)?);
                }
                (3, wt) => {
                    r.expect(wt, LEN)?;
                    r.string()?;
                }
                (_, wt) => r.skip(wt)?,
            }
        }
        groups.push(SpanGroup {
            service: service.clone(),
            resource: resource.clone(),
            scope: Arc::new(scope),
        });
        Ok(())
    }

    /// From decoded structs (OTLP/JSON, and requests the fast pass leaves to
    /// prost): validated, then each span encoded again.
    pub fn from_request(request: ExportTraceServiceRequest) -> Result<Self, InvalidExport> {
        crate::validate(&request)?;
        let mut bytes = Vec::with_capacity(request.encoded_len());
        let mut groups = Vec::new();
        let mut spans = Vec::new();
        for rs in request.resource_spans {
            let resource = Arc::new(rs.resource.unwrap_or_default());
            let service: Arc<str> = Arc::from(service_name(&resource));
            for ss in rs.scope_spans {
                let index = groups.len() as u32;
                groups.push(SpanGroup {
                    service: service.clone(),
                    resource: resource.clone(),
                    scope: Arc::new(ss.scope.unwrap_or_default()),
                });
                for span in ss.spans {
                    let offset = bytes.len();
                    span.encode(&mut bytes).expect("a Vec grows");
                    let (name_offset, name_len) = name_in(&bytes[offset..]);
                    spans.push(SpanMeta {
                        trace_id: span.trace_id.as_slice().try_into().unwrap_or_default(),
                        start_unix_nano: span.start_time_unix_nano,
                        end_unix_nano: span.end_time_unix_nano,
                        kind: span.kind,
                        group: index,
                        offset: offset as u32,
                        len: (bytes.len() - offset) as u32,
                        name_offset: (offset + name_offset) as u32,
                        name_len: name_len as u32,
                    });
                }
            }
        }
        Ok(Self {
            bytes: bytes.into_boxed_slice(),
            groups,
            spans,
        })
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn groups(&self) -> &[SpanGroup] {
        &self.groups
    }

    pub fn metas(&self) -> &[SpanMeta] {
        &self.spans
    }

    pub fn group_of(&self, meta: &SpanMeta) -> &SpanGroup {
        &self.groups[meta.group as usize]
    }

    /// The span's name without decoding the span.
    pub fn name(&self, meta: &SpanMeta) -> &str {
        // Checked when the batch was made.
        std::str::from_utf8(self.name_bytes(meta)).unwrap_or_default()
    }

    /// The span's name as bytes (valid UTF-8): comparing needs no check.
    pub fn name_bytes(&self, meta: &SpanMeta) -> &[u8] {
        let start = meta.name_offset as usize;
        &self.bytes[start..start + meta.name_len as usize]
    }

    /// The span's protobuf encoding (a `Span` message).
    pub fn span_bytes(&self, meta: &SpanMeta) -> &[u8] {
        let start = meta.offset as usize;
        &self.bytes[start..start + meta.len as usize]
    }

    /// The span, decoded.
    pub fn span(&self, meta: &SpanMeta) -> Span {
        // Checked when the batch was made: it decodes.
        Span::decode(self.span_bytes(meta)).unwrap_or_default()
    }

    /// Bytes held by the batch (encoded spans and index), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len() + self.spans.capacity() * std::mem::size_of::<SpanMeta>()
    }

    /// A batch of the spans at `indexes` (in that order): their bytes
    /// copied, nothing else of this batch's bytes; the groups they belong
    /// to shared. A store that keeps a few spans of a large request copies
    /// them out with this, so the request's bytes can go.
    pub fn select(&self, indexes: &[usize]) -> SpanBatch {
        let size = indexes.iter().map(|&i| self.spans[i].len as usize).sum();
        let mut bytes = Vec::with_capacity(size);
        let mut spans = Vec::with_capacity(indexes.len());
        let mut groups: Vec<SpanGroup> = Vec::new();
        // Old group index -> new one, for the few groups a batch has.
        let mut group_map: Vec<(u32, u32)> = Vec::new();
        for &i in indexes {
            let meta = &self.spans[i];
            let group = match group_map.iter().find(|(old, _)| *old == meta.group) {
                Some(&(_, new)) => new,
                None => {
                    let new = groups.len() as u32;
                    groups.push(self.groups[meta.group as usize].clone());
                    group_map.push((meta.group, new));
                    new
                }
            };
            let offset = bytes.len() as u32;
            bytes.extend_from_slice(self.span_bytes(meta));
            spans.push(SpanMeta {
                group,
                offset,
                name_offset: offset + (meta.name_offset - meta.offset),
                ..*meta
            });
        }
        SpanBatch {
            bytes: bytes.into_boxed_slice(),
            groups,
            spans,
        }
    }
}

/// Where the name is in an encoded span (offset, length): its last field 5.
/// Only the span's own fields are read, so nesting does not matter.
fn name_in(span: &[u8]) -> (usize, usize) {
    let mut r = Reader::new(span);
    let mut name = (0, 0);
    while r.more() {
        let Ok((tag, wt)) = r.key() else { break };
        if tag == 5 && wt == LEN {
            match r.len_delimited() {
                Ok((offset, bytes)) => name = (offset, bytes.len()),
                Err(Slow) => break,
            }
        } else if r.skip(wt).is_err() {
            break;
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn text(v: &str) -> any_value::Value {
        any_value::Value::StringValue(v.into())
    }

    fn span(trace: u8, id: u8, parent: u8, name: &str) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
            name: name.into(),
            kind: 2,
            start_time_unix_nano: 1_000 + u64::from(id),
            end_time_unix_nano: 2_000 + u64::from(id),
            attributes: vec![
                kv("http.request.method", text("GET")),
                kv("http.response.status_code", any_value::Value::IntValue(200)),
                kv("ok", any_value::Value::BoolValue(true)),
                kv("ratio", any_value::Value::DoubleValue(0.5)),
                kv("blob", any_value::Value::BytesValue(vec![0, 1, 2])),
                kv(
                    "list",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue {
                                value: Some(text("a")),
                            },
                            AnyValue {
                                value: Some(any_value::Value::KvlistValue(KeyValueList {
                                    values: vec![kv("k", text("v é"))],
                                })),
                            },
                        ],
                    }),
                ),
            ],
            events: vec![span::Event {
                time_unix_nano: 1_500,
                name: "exception".into(),
                attributes: vec![kv("exception.message", text("boom"))],
                dropped_attributes_count: 1,
            }],
            links: vec![span::Link {
                trace_id: vec![9; 16],
                span_id: vec![8; 8],
                trace_state: "k=v".into(),
                flags: 1,
                ..Default::default()
            }],
            status: Some(Status {
                code: 2,
                message: "failed".into(),
            }),
            trace_state: "vendor=1".into(),
            flags: 0x101,
            dropped_attributes_count: 3,
            ..Default::default()
        }
    }

    fn request() -> ExportTraceServiceRequest {
        let resource = |service: &str| Resource {
            attributes: vec![
                kv("service.name", text(service)),
                kv("host.name", text("main")),
            ],
            dropped_attributes_count: 1,
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(resource("a")),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: "autobot-tracing".into(),
                                version: "0.1.0".into(),
                                ..Default::default()
                            }),
                            spans: vec![span(1, 1, 0, "GET /hop"), span(1, 2, 1, "GET")],
                            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
                        },
                        ScopeSpans {
                            scope: None,
                            spans: vec![span(2, 3, 0, "other")],
                            ..Default::default()
                        },
                    ],
                    schema_url: "s".into(),
                },
                ResourceSpans {
                    resource: None,
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span(1, 4, 2, "GET /leaf")],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    /// What the receiver did before the fast pass: prost, validate, then the batch.
    fn reference(bytes: &[u8]) -> Result<SpanBatch, Refused> {
        let request = ExportTraceServiceRequest::decode(bytes)?;
        Ok(SpanBatch::from_request(request)?)
    }

    /// Everything a sink can see of a batch, decoded.
    fn seen(batch: &SpanBatch) -> Vec<(SpanMeta, &str, Span, SpanGroup)> {
        batch
            .metas()
            .iter()
            .map(|m| (*m, batch.name(m), batch.span(m), batch.group_of(m).clone()))
            .collect()
    }

    fn assert_same(ours: &Result<SpanBatch, Refused>, theirs: &Result<SpanBatch, Refused>) {
        match (ours, theirs) {
            (Ok(a), Ok(b)) => {
                let (a, b) = (seen(a), seen(b));
                assert_eq!(a.len(), b.len());
                for ((ma, na, sa, ga), (mb, nb, sb, gb)) in a.iter().zip(&b) {
                    // Offsets differ (the reference re-encodes); the rest may not.
                    assert_eq!(
                        (ma.trace_id, ma.start_unix_nano, ma.end_unix_nano),
                        (mb.trace_id, mb.start_unix_nano, mb.end_unix_nano)
                    );
                    assert_eq!((ma.kind, ma.group, na), (mb.kind, mb.group, nb));
                    assert_eq!(sa, sb);
                    assert_eq!(ga.service, gb.service);
                    assert_eq!(ga.resource, gb.resource);
                    assert_eq!(ga.scope, gb.scope);
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("fast pass {a:?}, prost {b:?}"),
        }
    }

    #[test]
    fn the_fast_pass_indexes_what_prost_decodes() {
        let bytes = request().encode_to_vec();
        let (groups, spans) = SpanBatch::scan(&bytes).expect("the fast pass takes it");
        assert_eq!((groups.len(), spans.len()), (3, 4));
        let ours = SpanBatch::from_protobuf(bytes.clone());
        assert_same(&ours, &reference(&bytes));
        let ours = ours.unwrap();
        assert_eq!(
            ours.metas()
                .iter()
                .map(|m| ours.name(m))
                .collect::<Vec<_>>(),
            ["GET /hop", "GET", "other", "GET /leaf"]
        );
        assert_eq!(&*ours.groups()[0].service, "a");
        assert_eq!(&*ours.groups()[2].service, "unknown_service");
        assert_eq!(
            ours.span(&ours.metas()[0]),
            request().resource_spans[0].scope_spans[0].spans[0]
        );
    }

    #[test]
    fn selected_spans_are_copied_out_with_their_groups_and_nothing_else() {
        let batch = SpanBatch::from_protobuf(request().encode_to_vec()).unwrap();
        let picked = batch.select(&[3, 1]);
        assert_eq!(picked.len(), 2);
        let spans = request().resource_spans;
        assert_eq!(
            picked.span(&picked.metas()[0]),
            spans[1].scope_spans[0].spans[0]
        );
        assert_eq!(
            picked.span(&picked.metas()[1]),
            spans[0].scope_spans[0].spans[1]
        );
        assert_eq!(picked.name(&picked.metas()[0]), "GET /leaf");
        assert_eq!(picked.name(&picked.metas()[1]), "GET");
        assert_eq!(
            picked.groups().len(),
            2,
            "only the groups of the spans kept"
        );
        assert_eq!(
            &*picked.group_of(&picked.metas()[0]).service,
            "unknown_service"
        );
        assert_eq!(&*picked.group_of(&picked.metas()[1]).service, "a");
        let span_bytes: usize = [3, 1]
            .iter()
            .map(|&i| batch.span_bytes(&batch.metas()[i]).len())
            .sum();
        assert_eq!(picked.bytes.len(), span_bytes);
    }

    #[test]
    fn merged_and_unknown_fields_are_read_as_prost_reads_them() {
        let mut bytes = request().encode_to_vec();
        // An unknown top-level field of every wire type but groups.
        bytes.extend_from_slice(&[0x98, 0x06, 0x07]); // field 99, varint
        bytes.extend_from_slice(&[0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]); // fixed64
        bytes.extend_from_slice(&[0x9d, 0x06, 1, 2, 3, 4]); // fixed32
        bytes.extend_from_slice(&[0x9a, 0x06, 2, b'h', b'i']); // bytes
        // A ResourceSpans whose resource comes in two parts, after its spans,
        // and a span sending its name and trace id twice (the last wins).
        let first = span(7, 1, 0, "first name");
        let mut span_bytes = first.encode_to_vec();
        prost::encoding::string::encode(5, &"second name".to_owned(), &mut span_bytes);
        prost::encoding::bytes::encode(1, &vec![6u8; 16], &mut span_bytes);
        let mut scope_spans = Vec::new();
        prost::encoding::bytes::encode(2, &span_bytes, &mut scope_spans);
        let mut rs = Vec::new();
        prost::encoding::bytes::encode(2, &scope_spans, &mut rs);
        let part = |k: &str, v: &str| {
            Resource {
                attributes: vec![kv(k, text(v))],
                ..Default::default()
            }
            .encode_to_vec()
        };
        prost::encoding::bytes::encode(1, &part("service.name", "merged"), &mut rs);
        prost::encoding::bytes::encode(1, &part("extra", "x"), &mut rs);
        prost::encoding::bytes::encode(1, &rs, &mut bytes);
        assert!(SpanBatch::scan(&bytes).is_ok(), "the fast pass takes it");
        let ours = SpanBatch::from_protobuf(bytes.clone());
        assert_same(&ours, &reference(&bytes));
        let ours = ours.unwrap();
        let last = ours.metas().last().unwrap();
        assert_eq!(ours.name(last), "second name");
        assert_eq!(last.trace_id, [6; 16]);
        assert_eq!(&*ours.group_of(last).service, "merged");
        assert_eq!(ours.group_of(last).resource.attributes.len(), 2);
    }

    /// Every truncation and every single-byte change of a request is taken or
    /// refused exactly as prost + validate() take or refuse it, with the same
    /// reason, and what is taken reads the same.
    #[test]
    fn every_corruption_is_refused_or_taken_like_prost_does() {
        let small = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", text("s"))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "sc".into(),
                        ..Default::default()
                    }),
                    spans: vec![span(1, 1, 0, "op"), span(1, 2, 1, "op2")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = small.encode_to_vec();
        let mut fast = 0;
        let mut compared = 0;
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            assert_same(&SpanBatch::from_protobuf(cut.to_vec()), &reference(cut));
            compared += 1;
        }
        for i in 0..bytes.len() {
            for value in [0x00, 0x01, 0x02, 0x05, 0x07, 0x0b, 0x7f, 0x80, 0xc3, 0xff]
                .into_iter()
                .chain([bytes[i] ^ 0x01, bytes[i] ^ 0x80, bytes[i].wrapping_add(1)])
            {
                let mut changed = bytes.clone();
                changed[i] = value;
                if SpanBatch::scan(&changed).is_ok() {
                    fast += 1;
                }
                assert_same(
                    &SpanBatch::from_protobuf(changed.clone()),
                    &reference(&changed),
                );
                compared += 1;
            }
        }
        assert!(compared > 5_000, "{compared}");
        assert!(fast > 500, "the fast pass took {fast} of them");
    }

    #[test]
    fn deep_nesting_goes_the_slow_path_and_too_deep_is_refused() {
        let nested = |depth: usize| {
            let mut value = AnyValue {
                value: Some(text("leaf")),
            };
            for _ in 0..depth {
                value = AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![value],
                    })),
                };
            }
            let mut s = span(1, 1, 0, "deep");
            s.attributes = vec![KeyValue {
                key: "deep".into(),
                value: Some(value),
                ..Default::default()
            }];
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![s],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec()
        };
        let bytes = nested(40);
        assert!(SpanBatch::scan(&bytes).is_err(), "slow path");
        assert_same(&SpanBatch::from_protobuf(bytes.clone()), &reference(&bytes));
        assert!(SpanBatch::from_protobuf(bytes).is_ok());
        let bytes = nested(120);
        let refused = SpanBatch::from_protobuf(bytes.clone()).unwrap_err();
        assert!(refused.to_string().contains("recursion limit"), "{refused}");
        assert_same(&Err(refused), &reference(&bytes));
    }

    #[test]
    fn invalid_spans_are_refused_with_validates_reason() {
        let mut request = request();
        request.resource_spans[1].scope_spans[0].spans[0].end_time_unix_nano = 0;
        let refused = SpanBatch::from_protobuf(request.encode_to_vec()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "span 0 of scope 2: it ends before it starts"
        );
        let mut request = self::request();
        request.resource_spans[0].scope_spans[0].spans[1].links[0].span_id = vec![0; 8];
        assert_eq!(
            SpanBatch::from_protobuf(request.encode_to_vec())
                .unwrap_err()
                .to_string(),
            "span 1 of scope 0: a link has an invalid trace or span id"
        );
        let refused = SpanBatch::from_protobuf(vec![0x0a, 0x05, 0x01]).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("not an OTLP protobuf export request:"),
            "{refused}"
        );
    }

    #[test]
    fn an_empty_request_is_an_empty_batch() {
        let batch = SpanBatch::from_protobuf(Vec::new()).unwrap();
        assert!(batch.is_empty());
    }
}
