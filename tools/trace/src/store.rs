//! The bounded in-memory span store behind `serve`.
//!
//! Spans are kept as received: each export request's bytes in one
//! [`SpanBatch`] (checked and indexed by the receiver), and per trace a list
//! of (batch, span) references. Nothing is decoded on ingest; a span is
//! decoded, and the Jaeger JSON built, only when somebody asks, outside the
//! store's lock. When the number of spans or the bytes held pass their
//! bounds, whole traces go, oldest first (by the arrival of their first
//! span), so a trace is never half there; with them go their operations
//! from the index, once no kept span has them.
//!
//! A batch's bytes go with the last of its spans. So that a few kept spans
//! do not hold a large request's bytes (one span pinning 64 MB), a batch
//! whose kept spans fall under half its bytes is compacted: those spans are
//! copied out into a batch of their own ([`SpanBatch::select`]) and the old
//! one is let go. The bytes counted are therefore at most about twice the
//! bytes of the spans kept.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::search::{Operation, SpanQuery, kind_name};
use crate::stored::StoredSpan;
use crate::trace_id::TraceId;
use autobot_otlp_receiver::{ExportTraceServiceRequest, SpanBatch, SpanMeta, SpanSink};

/// Default bound of the bytes held (received spans and their index).
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;

/// A batch as the store holds it, with how much of it is still kept (the
/// spans of traces not evicted). The counts change under the store's lock.
struct Held {
    batch: SpanBatch,
    live_spans: AtomicU32,
    /// Encoded bytes of the live spans.
    live_bytes: AtomicUsize,
}

impl Held {
    fn new(batch: SpanBatch) -> Arc<Self> {
        let live_bytes = batch
            .metas()
            .iter()
            .map(|m| batch.span_bytes(m).len())
            .sum();
        Arc::new(Self {
            live_spans: AtomicU32::new(batch.len() as u32),
            live_bytes: AtomicUsize::new(live_bytes),
            batch,
        })
    }
}

/// One stored span: which batch, which of its spans.
#[derive(Clone)]
struct Entry {
    batch: Arc<Held>,
    index: u32,
}

impl Entry {
    fn meta(&self) -> &SpanMeta {
        &self.batch.batch.metas()[self.index as usize]
    }

    fn decode(&self) -> StoredSpan {
        let meta = self.meta();
        let batch = &self.batch.batch;
        let group = batch.group_of(meta);
        StoredSpan {
            service: group.service.clone(),
            resource: group.resource.clone(),
            scope: group.scope.clone(),
            span: batch.span(meta),
        }
    }
}

/// Trace ids are random (W3C): their own bits, mixed once with a per-store
/// key, are hash enough; SipHash costs more than the rest of an insert.
#[derive(Clone, Copy)]
struct TraceIdHash(u64);

impl Default for TraceIdHash {
    fn default() -> Self {
        Self(std::collections::hash_map::RandomState::new().hash_one(0u8) | 1)
    }
}

impl BuildHasher for TraceIdHash {
    type Hasher = TraceIdHasher;
    fn build_hasher(&self) -> TraceIdHasher {
        TraceIdHasher(self.0)
    }
}

struct TraceIdHasher(u64);

impl Hasher for TraceIdHasher {
    fn finish(&self) -> u64 {
        // A multiply-xorshift finaliser (the low bits pick the bucket).
        let h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(31);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
}

/// Counters for operators and tests (`GET /api/autobot/stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreStats {
    pub traces: usize,
    pub spans: usize,
    pub max_spans: usize,
    pub evicted_traces: u64,
    pub evicted_spans: u64,
    /// Bytes held: the batches kept (received spans) and their index.
    #[serde(default)]
    pub bytes: usize,
    #[serde(default)]
    pub max_bytes: usize,
    /// Batches whose kept spans were copied out so their bytes could go.
    #[serde(default)]
    pub compacted_batches: u64,
}

/// Spans kept per span kind (OTLP kinds 0..=5) of one operation.
type KindCounts = [u32; 6];

#[derive(Default)]
struct Inner {
    traces: HashMap<TraceId, Vec<Entry>, TraceIdHash>,
    /// Trace ids in the order their first span arrived (eviction order).
    arrival: VecDeque<TraceId>,
    spans: usize,
    /// Heap bytes of the batches held.
    bytes: usize,
    evicted_traces: u64,
    evicted_spans: u64,
    compacted_batches: u64,
    /// service -> operation name -> spans kept per kind: an operation (and
    /// a service) is listed while a kept span has it, and goes with the last.
    operations: HashMap<String, BTreeMap<String, KindCounts>>,
}

pub struct Store {
    inner: Mutex<Inner>,
    max_spans: usize,
    max_bytes: usize,
}

impl Store {
    /// At most `max_spans` spans and [`DEFAULT_MAX_BYTES`] bytes.
    pub fn new(max_spans: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_spans: max_spans.max(1),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// The same store bounded at `max_bytes` bytes held instead.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(1);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (each step is whole).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a decoded request (tests and tools); a request that is not
    /// valid (see `autobot_otlp_receiver::validate`) is not stored.
    pub fn insert(&self, request: ExportTraceServiceRequest) {
        if let Ok(batch) = SpanBatch::from_request(request) {
            self.insert_batch(batch);
        }
    }

    /// Stores the spans of a batch (what `serve` receives).
    pub fn insert_batch(&self, batch: SpanBatch) {
        if batch.is_empty() {
            return;
        }
        let held = Held::new(batch);
        let batch = &held.batch;
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.bytes += batch.heap_bytes();
        // Spans per (group, name, kind), counted here and added to
        // `operations` once: spans of a batch mostly repeat a few operations.
        let mut known: Vec<(u32, &[u8], i32, u32)> = Vec::new();
        for (index, meta) in batch.metas().iter().enumerate() {
            let name = batch.name_bytes(meta);
            match known
                .iter()
                .position(|(g, n, k, _)| *g == meta.group && *k == meta.kind && *n == name)
            {
                Some(at) => known[at].3 += 1,
                None if known.len() < 16 => known.push((meta.group, name, meta.kind, 1)),
                None => count_operation(
                    &mut inner.operations,
                    &batch.group_of(meta).service,
                    batch.name(meta),
                    meta.kind,
                    1,
                ),
            }
            let trace_id = TraceId(u128::from_be_bytes(meta.trace_id));
            let entry = Entry {
                batch: held.clone(),
                index: index as u32,
            };
            match inner.traces.get_mut(&trace_id) {
                Some(spans) => spans.push(entry),
                None => {
                    inner.arrival.push_back(trace_id);
                    let mut spans = Vec::with_capacity(4);
                    spans.push(entry);
                    inner.traces.insert(trace_id, spans);
                }
            }
            inner.spans += 1;
        }
        for (group, name, kind, count) in known {
            let service = &batch.groups()[group as usize].service;
            let name = std::str::from_utf8(name).unwrap_or_default();
            count_operation(&mut inner.operations, service, name, kind, count);
        }
        while inner.spans > self.max_spans || inner.bytes > self.max_bytes {
            let Some(oldest) = inner.arrival.pop_front() else {
                break;
            };
            self.evict(inner, oldest);
        }
    }

    /// Takes a trace out: its spans, their operations, the batches only
    /// they kept; batches it leaves mostly unkept are compacted.
    fn evict(&self, inner: &mut Inner, id: TraceId) {
        let Some(spans) = inner.traces.remove(&id) else {
            return;
        };
        let evicted = spans.len();
        inner.spans -= evicted;
        inner.evicted_traces += 1;
        inner.evicted_spans += spans.len() as u64;
        let mut touched: Vec<Arc<Held>> = Vec::new();
        for entry in &spans {
            let meta = entry.meta();
            let held = &entry.batch;
            let batch = &held.batch;
            forget_operation(
                &mut inner.operations,
                &batch.group_of(meta).service,
                batch.name(meta),
                meta.kind,
            );
            held.live_bytes
                .fetch_sub(batch.span_bytes(meta).len(), Ordering::Relaxed);
            if held.live_spans.fetch_sub(1, Ordering::Relaxed) == 1 {
                inner.bytes -= batch.heap_bytes();
            } else if !touched.iter().any(|t| Arc::ptr_eq(t, held)) {
                touched.push(held.clone());
            }
        }
        drop(spans);
        for held in touched {
            let live = held.live_bytes.load(Ordering::Relaxed);
            if held.live_spans.load(Ordering::Relaxed) > 0 && live * 2 < held.batch.heap_bytes() {
                compact(inner, &held);
            }
        }
        tracing::info!(
            trace_id = %id,
            spans = evicted,
            evicted_traces = inner.evicted_traces,
            max_spans = self.max_spans,
            bytes = inner.bytes,
            max_bytes = self.max_bytes,
            "store full: evicted the oldest trace"
        );
    }

    /// A trace's spans, decoded (outside the lock), in arrival order.
    pub fn trace(&self, id: TraceId) -> Option<Vec<StoredSpan>> {
        let entries = self.lock().traces.get(&id).cloned()?;
        Some(entries.iter().map(Entry::decode).collect())
    }

    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().operations.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn operations(&self, service: &str) -> Vec<String> {
        self.lock()
            .operations
            .get(service)
            .map(|ops| ops.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The operations of a service with their span kinds, by name then kind
    /// (an operation seen with two kinds is listed twice).
    pub fn operations_with_kind(&self, service: &str) -> Vec<Operation> {
        let inner = self.lock();
        let Some(ops) = inner.operations.get(service) else {
            return Vec::new();
        };
        ops.iter()
            .flat_map(|(name, counts)| {
                (0..counts.len())
                    .filter(move |&k| counts[k] > 0)
                    .map(move |k| Operation {
                        name: name.clone(),
                        span_kind: kind_name(k as i32),
                    })
            })
            .collect()
    }

    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            traces: inner.traces.len(),
            spans: inner.spans,
            max_spans: self.max_spans,
            evicted_traces: inner.evicted_traces,
            evicted_spans: inner.evicted_spans,
            bytes: inner.bytes,
            max_bytes: self.max_bytes,
            compacted_batches: inner.compacted_batches,
        }
    }

    /// Traces with at least one span matching every condition, newest first.
    /// The lock is held only to find the candidates by what is indexed
    /// (service, operation, times) and to take each one's spans; spans are
    /// decoded (tags compared, results built) outside it.
    pub fn search(&self, query: &SpanQuery) -> Vec<(TraceId, Vec<StoredSpan>)> {
        let mut candidates: Vec<(u64, TraceId)> = {
            let inner = self.lock();
            inner
                .traces
                .iter()
                .filter(|(_, spans)| spans.iter().any(|s| matches_summary(query, s)))
                .map(|(id, spans)| {
                    let newest = spans
                        .iter()
                        .map(|s| s.meta().start_unix_nano)
                        .max()
                        .unwrap_or(0);
                    (newest, *id)
                })
                .collect()
        };
        candidates.sort_by(|a, b| b.cmp(a));
        let mut found = Vec::new();
        for (_, id) in candidates {
            if found.len() == query.limit {
                break;
            }
            // Evicted since: not found.
            let Some(entries) = self.lock().traces.get(&id).cloned() else {
                continue;
            };
            if query.has_tags()
                && !entries
                    .iter()
                    .any(|e| matches_summary(query, e) && query.matches_tags(&e.decode()))
            {
                continue;
            }
            found.push((id, entries.iter().map(Entry::decode).collect()));
        }
        found
    }
}

impl SpanSink for Store {
    fn accept(&self, batch: SpanBatch) {
        self.insert_batch(batch);
    }
}

/// A kind's slot in [`KindCounts`]: kinds 0..=5 are defined; anything
/// else is kept as "unspecified" (0).
fn kind_slot(kind: i32) -> usize {
    usize::try_from(kind).ok().filter(|k| *k <= 5).unwrap_or(0)
}

fn count_operation(
    operations: &mut HashMap<String, BTreeMap<String, KindCounts>>,
    service: &str,
    op: &str,
    kind: i32,
    spans: u32,
) {
    let slot = kind_slot(kind);
    // Look up before inserting: the common case allocates nothing.
    let ops = match operations.get_mut(service) {
        Some(ops) => ops,
        None => operations.entry(service.to_owned()).or_default(),
    };
    match ops.get_mut(op) {
        Some(counts) => counts[slot] += spans,
        None => {
            let mut counts = KindCounts::default();
            counts[slot] = spans;
            ops.insert(op.to_owned(), counts);
        }
    }
}

/// One span of `op` is no longer kept; the operation (and its service) go
/// with their last span.
fn forget_operation(
    operations: &mut HashMap<String, BTreeMap<String, KindCounts>>,
    service: &str,
    op: &str,
    kind: i32,
) {
    let Some(ops) = operations.get_mut(service) else {
        return;
    };
    if let Some(counts) = ops.get_mut(op) {
        let slot = kind_slot(kind);
        counts[slot] = counts[slot].saturating_sub(1);
        if counts.iter().all(|c| *c == 0) {
            ops.remove(op);
        }
    }
    if ops.is_empty() {
        operations.remove(service);
    }
}

/// Copies the kept spans of `held` into a batch of their own and points
/// their entries at it, so the old batch's bytes go.
fn compact(inner: &mut Inner, held: &Arc<Held>) {
    let old = &held.batch;
    // The kept spans are those still referenced by a trace's entries.
    let mut trace_ids: Vec<TraceId> = old
        .metas()
        .iter()
        .map(|m| TraceId(u128::from_be_bytes(m.trace_id)))
        .collect();
    trace_ids.sort_unstable();
    trace_ids.dedup();
    let mut kept: Vec<usize> = Vec::new();
    for id in &trace_ids {
        if let Some(entries) = inner.traces.get(id) {
            kept.extend(
                entries
                    .iter()
                    .filter(|e| Arc::ptr_eq(&e.batch, held))
                    .map(|e| e.index as usize),
            );
        }
    }
    kept.sort_unstable();
    let fresh = Held::new(old.select(&kept));
    let mut new_index = vec![u32::MAX; old.len()];
    for (new, &old_index) in kept.iter().enumerate() {
        new_index[old_index] = new as u32;
    }
    for id in &trace_ids {
        if let Some(entries) = inner.traces.get_mut(id) {
            for e in entries.iter_mut().filter(|e| Arc::ptr_eq(&e.batch, held)) {
                *e = Entry {
                    batch: fresh.clone(),
                    index: new_index[e.index as usize],
                };
            }
        }
    }
    inner.bytes = inner.bytes - old.heap_bytes() + fresh.batch.heap_bytes();
    inner.compacted_batches += 1;
}

/// [`SpanQuery::matches_summary`] on a stored span: what is indexed,
/// nothing decoded.
fn matches_summary(query: &SpanQuery, e: &Entry) -> bool {
    let meta = e.meta();
    let batch = &e.batch.batch;
    query.matches_summary(
        &batch.group_of(meta).service,
        batch.name(meta),
        meta.start_unix_nano,
        meta.duration_nanos(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use autobot_otlp_receiver::SpanBatch;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn request(trace: u8, spans: u8) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
                        key: "service.name".into(),
                        value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                            value: Some(any_value::Value::StringValue("svc".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: (1..=spans)
                        .map(|i| Span {
                            trace_id: vec![trace; 16],
                            span_id: vec![i; 8],
                            name: format!("op{i}"),
                            start_time_unix_nano: 1_000 * u64::from(trace),
                            end_time_unix_nano: 1_000 * u64::from(trace) + 500,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn evicts_whole_oldest_traces_and_counts_them() {
        let store = Store::new(5);
        store.insert(request(1, 3));
        store.insert(request(2, 2));
        assert_eq!(store.stats().spans, 5);
        store.insert(request(3, 2));
        let stats = store.stats();
        assert_eq!((stats.traces, stats.spans), (2, 4));
        assert_eq!((stats.evicted_traces, stats.evicted_spans), (1, 3));
        assert!(store.trace(TraceId(u128::from_be_bytes([1; 16]))).is_none());
        assert_eq!(
            store
                .trace(TraceId(u128::from_be_bytes([2; 16])))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(store.services(), ["svc"]);
        assert_eq!(
            store.operations("svc"),
            ["op1", "op2"],
            "op3 went with the last span that had it"
        );
        assert_eq!(
            store.operations_with_kind("svc")[0],
            Operation {
                name: "op1".into(),
                span_kind: ""
            },
            "the test spans have no kind"
        );
    }

    /// A request with `big` spans of trace `fat` (each with 8 KiB of
    /// attribute) and one small span of each trace in `small`, service `svc`.
    fn mixed(fat: u8, big: u8, small: &[u8]) -> SpanBatch {
        use prost::Message;
        let span = |trace: u8, id: u8, padding: usize| Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("op-{trace}"),
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 2_000,
            attributes: vec![opentelemetry_proto::tonic::common::v1::KeyValue {
                key: "pad".into(),
                value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: Some(any_value::Value::StringValue("p".repeat(padding))),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut request = request(1, 0);
        let spans = &mut request.resource_spans[0].scope_spans[0].spans;
        spans.extend((1..=big).map(|i| span(fat, i, 8192)));
        spans.extend(small.iter().map(|&t| span(t, 100 + t, 10)));
        SpanBatch::from_protobuf(request.encode_to_vec()).unwrap()
    }

    #[test]
    fn a_span_kept_from_a_large_batch_is_copied_out_and_the_batch_goes() {
        let store = Store::new(5);
        store.insert_batch(mixed(1, 3, &[2]));
        let before = store.stats();
        assert!(before.bytes > 3 * 8192, "{before:?}");
        // Two more spans: trace 1 (the oldest, 3 spans) goes; trace 2's one
        // small span is all that is kept of the first batch.
        store.insert_batch(mixed(1, 0, &[3, 4]));
        let after = store.stats();
        assert_eq!((after.traces, after.spans), (3, 3));
        assert_eq!(after.compacted_batches, 1);
        assert!(after.bytes < 4096, "the 24 KiB batch went: {after:?}");
        let kept = store.trace(TraceId(u128::from_be_bytes([2; 16]))).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].span.name, "op-2");
        assert_eq!(kept[0].span.span_id, vec![102; 8]);
        assert_eq!(&*kept[0].service, "svc");
        assert_eq!(store.operations("svc"), ["op-2", "op-3", "op-4"]);
    }

    #[test]
    fn the_byte_bound_evicts_like_the_span_bound() {
        let store = Store::new(1_000).with_max_bytes(40 * 1024);
        for trace in 1..=10u8 {
            store.insert_batch(mixed(trace, 2, &[]));
            let stats = store.stats();
            assert!(stats.bytes <= 40 * 1024, "{stats:?}");
        }
        let stats = store.stats();
        assert_eq!(stats.max_bytes, 40 * 1024);
        assert!(stats.evicted_traces >= 7, "{stats:?}");
        assert!(
            store
                .trace(TraceId(u128::from_be_bytes([10; 16])))
                .is_some()
        );
        assert!(store.trace(TraceId(u128::from_be_bytes([1; 16]))).is_none());
        assert_eq!(
            store.operations("svc").len(),
            10 - stats.evicted_traces as usize
        );
    }

    #[test]
    fn search_filters_by_operation_time_and_duration() {
        let store = Store::new(100);
        store.insert(request(1, 2));
        store.insert(request(2, 1));
        let all = SpanQuery {
            service: Some("svc".into()),
            limit: 10,
            ..Default::default()
        };
        let found = store.search(&all);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].0,
            TraceId(u128::from_be_bytes([2; 16])),
            "newest first"
        );
        let op2 = SpanQuery {
            operation: Some("op2".into()),
            ..all.clone()
        };
        assert_eq!(store.search(&op2).len(), 1);
        let late = SpanQuery {
            start_min: Some(1_500),
            ..all.clone()
        };
        assert_eq!(store.search(&late).len(), 1);
        let long = SpanQuery {
            duration_min: Some(501),
            ..all.clone()
        };
        assert!(store.search(&long).is_empty());
        let other = SpanQuery {
            service: Some("nope".into()),
            ..all.clone()
        };
        assert!(store.search(&other).is_empty());
        let one = SpanQuery { limit: 1, ..all };
        assert_eq!(store.search(&one).len(), 1);
    }

    /// What gRPC hands over: the request's bytes, indexed. Operations are
    /// remembered per service and kind, tag filters decode the span.
    #[test]
    fn a_protobuf_batch_is_stored_searched_and_decoded() {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
        use prost::Message;
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        };
        let group = |service: &str, trace: u8, spans: Vec<(u8, i32, &str)>| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service), kv("host.name", "h1")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: spans
                    .into_iter()
                    .map(|(id, kind, route)| Span {
                        trace_id: vec![trace; 16],
                        span_id: vec![id; 8],
                        name: "GET".into(),
                        kind,
                        start_time_unix_nano: 1_000 * u64::from(id),
                        end_time_unix_nano: 1_000 * u64::from(id) + 10,
                        attributes: vec![kv("http.route", route)],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                group("a", 1, vec![(1, 2, "/x"), (2, 2, "/y"), (3, 3, "/x")]),
                group("b", 2, vec![(4, 2, "/z")]),
            ],
        };
        let store = Store::new(100);
        store.insert_batch(SpanBatch::from_protobuf(request.encode_to_vec()).unwrap());
        assert_eq!(store.services(), ["a", "b"]);
        let op = |kind| Operation {
            name: "GET".into(),
            span_kind: kind,
        };
        assert_eq!(
            store.operations_with_kind("a"),
            [op("server"), op("client")]
        );
        assert_eq!(store.operations_with_kind("b"), [op("server")]);

        let spans = store.trace(TraceId(u128::from_be_bytes([1; 16]))).unwrap();
        assert_eq!(spans.len(), 3);
        assert_eq!(
            spans[1].span,
            request.resource_spans[0].scope_spans[0].spans[1]
        );
        assert_eq!(&*spans[1].service, "a");
        assert_eq!(
            *spans[1].resource,
            request.resource_spans[0].resource.clone().unwrap()
        );

        let tagged = |service: &str, tags: &[(&str, &str)]| SpanQuery {
            service: Some(service.into()),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.search(&tagged("a", &[("http.route", "/y")])).len(), 1);
        assert_eq!(
            store.search(&tagged("a", &[("http.route", "/y"), ("host.name", "h1")]))[0]
                .1
                .len(),
            3,
            "a resource attribute matches too; the whole trace comes back"
        );
        assert!(
            store
                .search(&tagged("a", &[("http.route", "/z")]))
                .is_empty()
        );
        assert!(
            store
                .search(&tagged("b", &[("span.kind", "client")]))
                .is_empty()
        );
        assert_eq!(
            store.search(&tagged("a", &[("span.kind", "client")])).len(),
            1
        );
    }
}
