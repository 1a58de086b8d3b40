//! The bounded in-memory span store behind `serve`.
//!
//! Spans are kept as received (protobuf structs), grouped by trace; the
//! Jaeger JSON is built only when somebody asks. When the total number of
//! spans passes the bound, whole traces go, oldest first (by the arrival of
//! their first span), so a trace is never half there.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use autobot_otlp_receiver::{ExportTraceServiceRequest, SpanSink};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::trace_id::TraceId;

/// A span with the resource and scope it came with.
#[derive(Clone, Debug)]
pub struct StoredSpan {
    pub service: Arc<str>,
    pub resource: Arc<Resource>,
    pub scope: Arc<InstrumentationScope>,
    pub span: Span,
}

impl StoredSpan {
    pub fn duration_nanos(&self) -> u64 {
        self.span
            .end_time_unix_nano
            .saturating_sub(self.span.start_time_unix_nano)
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
    traces: HashMap<TraceId, Vec<StoredSpan>>,
    /// Trace ids in the order their first span arrived (eviction order).
    arrival: VecDeque<TraceId>,
    spans: usize,
    evicted_traces: u64,
    evicted_spans: u64,
    /// service -> operation name -> span kinds seen (bit per OTLP kind);
    /// Jaeger keeps these after eviction too.
    operations: HashMap<String, BTreeMap<String, u8>>,
}

/// What `GET /api/traces` asks for; times in nanoseconds since the epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanQuery {
    pub service: String,
    pub operation: Option<String>,
    /// Every pair must match a span tag (or a resource attribute) of the same span.
    pub tags: BTreeMap<String, String>,
    pub start_min: Option<u64>,
    pub start_max: Option<u64>,
    pub duration_min: Option<u64>,
    pub duration_max: Option<u64>,
    pub limit: usize,
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

    pub fn insert(&self, request: ExportTraceServiceRequest) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for resource_spans in request.resource_spans {
            let resource = Arc::new(resource_spans.resource.unwrap_or_default());
            let service: Arc<str> = Arc::from(service_name(&resource));
            for scope_spans in resource_spans.scope_spans {
                let scope = Arc::new(scope_spans.scope.unwrap_or_default());
                for span in scope_spans.spans {
                    // validate() has checked the id; a bad one cannot get here.
                    let Some(trace_id) = TraceId::from_bytes(&span.trace_id) else {
                        continue;
                    };
                    remember_operation(&mut inner.operations, &service, &span.name, span.kind);
                    let spans = inner.traces.entry(trace_id).or_insert_with(|| {
                        inner.arrival.push_back(trace_id);
                        Vec::new()
                    });
                    spans.push(StoredSpan {
                        service: service.clone(),
                        resource: resource.clone(),
                        scope: scope.clone(),
                        span,
                    });
                    inner.spans += 1;
                }
            }
        }
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

    pub fn trace(&self, id: TraceId) -> Option<Vec<StoredSpan>> {
        self.lock().traces.get(&id).cloned()
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

    /// (operation, OTLP span kind) pairs of a service, by name then kind.
    pub fn operations_with_kind(&self, service: &str) -> Vec<(String, i32)> {
        let inner = self.lock();
        let Some(ops) = inner.operations.get(service) else {
            return Vec::new();
        };
        ops.iter()
            .flat_map(|(name, kinds)| {
                (0..8)
                    .filter(move |k| kinds & (1 << k) != 0)
                    .map(move |k| (name.clone(), k))
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
        let inner = self.lock();
        let mut found: Vec<(u64, TraceId)> = inner
            .traces
            .iter()
            .filter(|(_, spans)| spans.iter().any(|s| query.matches(s)))
            .map(|(id, spans)| {
                let newest = spans
                    .iter()
                    .map(|s| s.span.start_time_unix_nano)
                    .max()
                    .unwrap_or(0);
                (newest, *id)
            })
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        found
            .into_iter()
            .take(query.limit)
            .map(|(_, id)| (id, inner.traces[&id].clone()))
            .collect()
    }
}

impl SpanSink for Store {
    fn accept(&self, request: ExportTraceServiceRequest) {
        self.insert(request);
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

impl SpanQuery {
    pub fn matches(&self, s: &StoredSpan) -> bool {
        if *s.service != *self.service {
            return false;
        }
        if self
            .operation
            .as_deref()
            .is_some_and(|op| op != s.span.name)
        {
            return false;
        }
        let start = s.span.start_time_unix_nano;
        if self.start_min.is_some_and(|min| start < min)
            || self.start_max.is_some_and(|max| start > max)
        {
            return false;
        }
        let duration = s.duration_nanos();
        if self.duration_min.is_some_and(|min| duration < min)
            || self.duration_max.is_some_and(|max| duration > max)
        {
            return false;
        }
        self.tags
            .iter()
            .all(|(key, want)| tag_matches(s, key, want))
    }
}

/// A tag filter matches a span attribute, a derived Jaeger tag, a resource
/// attribute or an event attribute (Jaeger's memory store looks at all of them).
fn tag_matches(s: &StoredSpan, key: &str, want: &str) -> bool {
    crate::jaeger::span_tags(s)
        .iter()
        .chain(crate::jaeger::process_tags(&s.resource).iter())
        .chain(
            crate::jaeger::logs(&s.span)
                .iter()
                .flat_map(|log| log.fields.iter()),
        )
        .any(|kv| kv.key == key && kv.text() == want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

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
            ("op1".to_owned(), 0),
            "the test spans have no kind"
        );
    }

    #[test]
    fn search_filters_by_operation_time_and_duration() {
        let store = Store::new(100);
        store.insert(request(1, 2));
        store.insert(request(2, 1));
        let all = SpanQuery {
            service: "svc".into(),
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
            service: "nope".into(),
            ..all.clone()
        };
        assert!(store.search(&other).is_empty());
        let one = SpanQuery { limit: 1, ..all };
        assert_eq!(store.search(&one).len(), 1);
    }
}
