//! The bounded in-memory span store behind `serve`.
//!
//! Spans are kept as received: each export request's bytes in one
//! [`SpanBatch`] (checked and indexed by the receiver), and per trace a list
//! of (batch, span) references. Nothing is decoded on ingest; a span is
//! decoded, and the Jaeger JSON built, only when somebody asks. When the
//! total number of spans passes the bound, whole traces go, oldest first (by
//! the arrival of their first span), so a trace is never half there; a
//! batch's bytes go with the last of its spans.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::search::{Operation, SpanQuery, kind_name};
use crate::stored::StoredSpan;
use crate::trace_id::TraceId;
use autobot_otlp_receiver::{ExportTraceServiceRequest, SpanBatch, SpanMeta, SpanSink};

/// One stored span: which batch, which of its spans.
#[derive(Clone)]
struct Entry {
    batch: Arc<SpanBatch>,
    index: u32,
}

impl Entry {
    fn meta(&self) -> &SpanMeta {
        &self.batch.metas()[self.index as usize]
    }

    fn decode(&self) -> StoredSpan {
        let meta = self.meta();
        let group = self.batch.group_of(meta);
        StoredSpan {
            service: group.service.clone(),
            resource: group.resource.clone(),
            scope: group.scope.clone(),
            span: self.batch.span(meta),
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
}

#[derive(Default)]
struct Inner {
    traces: HashMap<TraceId, Vec<Entry>, TraceIdHash>,
    /// Trace ids in the order their first span arrived (eviction order).
    arrival: VecDeque<TraceId>,
    spans: usize,
    evicted_traces: u64,
    evicted_spans: u64,
    /// service -> operation name -> span kinds seen (bit per OTLP kind);
    /// Jaeger keeps these after eviction too.
    operations: HashMap<String, BTreeMap<String, u8>>,
}

pub struct Store {
    inner: Mutex<Inner>,
    max_spans: usize,
}

impl Store {
    pub fn new(max_spans: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_spans: max_spans.max(1),
        }
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
        let batch = Arc::new(batch);
        let mut inner = self.lock();
        let inner = &mut *inner;
        // (group, name, kind) already in `operations`: spans of a batch
        // mostly repeat a few operations.
        let mut known: Vec<(u32, &[u8], i32)> = Vec::new();
        for (index, meta) in batch.metas().iter().enumerate() {
            let name = batch.name_bytes(meta);
            if !known
                .iter()
                .any(|(g, n, k)| *g == meta.group && *k == meta.kind && *n == name)
            {
                let service = &batch.group_of(meta).service;
                remember_operation(&mut inner.operations, service, batch.name(meta), meta.kind);
                if known.len() < 16 {
                    known.push((meta.group, name, meta.kind));
                }
            }
            let trace_id = TraceId(u128::from_be_bytes(meta.trace_id));
            let entry = Entry {
                batch: batch.clone(),
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
        drop(known);
        while inner.spans > self.max_spans {
            let Some(oldest) = inner.arrival.pop_front() else {
                break;
            };
            if let Some(spans) = inner.traces.remove(&oldest) {
                inner.spans -= spans.len();
                inner.evicted_traces += 1;
                inner.evicted_spans += spans.len() as u64;
                tracing::info!(
                    trace_id = %oldest,
                    spans = spans.len(),
                    evicted_traces = inner.evicted_traces,
                    max_spans = self.max_spans,
                    "store full: evicted the oldest trace"
                );
            }
        }
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
            .flat_map(|(name, kinds)| {
                (0..8)
                    .filter(move |k| kinds & (1 << k) != 0)
                    .map(move |k| Operation {
                        name: name.clone(),
                        span_kind: kind_name(k),
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
        }
    }

    /// Traces with at least one span matching every condition, newest first.
    pub fn search(&self, query: &SpanQuery) -> Vec<(TraceId, Vec<StoredSpan>)> {
        let found: Vec<Vec<Entry>> = {
            let inner = self.lock();
            let mut found: Vec<(u64, TraceId)> = inner
                .traces
                .iter()
                .filter(|(_, spans)| spans.iter().any(|s| matches_entry(query, s)))
                .map(|(id, spans)| {
                    let newest = spans
                        .iter()
                        .map(|s| s.meta().start_unix_nano)
                        .max()
                        .unwrap_or(0);
                    (newest, *id)
                })
                .collect();
            found.sort_by(|a, b| b.cmp(a));
            found
                .into_iter()
                .take(query.limit)
                .map(|(_, id)| inner.traces[&id].clone())
                .collect()
        };
        found
            .into_iter()
            .map(|entries| {
                let id = TraceId(u128::from_be_bytes(entries[0].meta().trace_id));
                (id, entries.iter().map(Entry::decode).collect())
            })
            .collect()
    }
}

impl SpanSink for Store {
    fn accept(&self, batch: SpanBatch) {
        self.insert_batch(batch);
    }
}

fn remember_operation(
    operations: &mut HashMap<String, BTreeMap<String, u8>>,
    service: &str,
    op: &str,
    kind: i32,
) {
    // Kinds 0..=5 are defined; anything else is kept as "unspecified" (0).
    let bit = 1u8 << u8::try_from(kind).ok().filter(|k| *k <= 5).unwrap_or(0);
    // Look up before inserting: the common case allocates nothing.
    match operations.get_mut(service) {
        Some(ops) => match ops.get_mut(op) {
            Some(kinds) => *kinds |= bit,
            None => {
                ops.insert(op.to_owned(), bit);
            }
        },
        None => {
            operations.insert(service.to_owned(), BTreeMap::from([(op.to_owned(), bit)]));
        }
    }
}

/// [`SpanQuery::matches`] on a stored span: the span is decoded only when
/// the indexed fields match and tags must be compared.
fn matches_entry(query: &SpanQuery, e: &Entry) -> bool {
    let meta = e.meta();
    query.matches_summary(
        &e.batch.group_of(meta).service,
        e.batch.name(meta),
        meta.start_unix_nano,
        meta.duration_nanos(),
    ) && (!query.has_tags() || query.matches_tags(&e.decode()))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(store.operations("svc"), ["op1", "op2", "op3"]);
        assert_eq!(
            store.operations_with_kind("svc")[0],
            Operation {
                name: "op1".into(),
                span_kind: ""
            },
            "the test spans have no kind"
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
        use autobot_otlp_receiver::SpanBatch;
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
