//! One trace as the UI's trace page shows it (`GET /api/autobot/traces/{id}`):
//! the spans in waterfall order (each under its parent, siblings by start),
//! with depth, times relative to the trace's start, kind, status, the
//! critical path's sections ([`super::critical_path`]), every detail
//! (attributes, events, links, resource, scope, Jaeger's warnings), and the
//! spans each one is related to:
//!
//! - `produced-by` / `consumed-by`: a CONSUMER and the PRODUCER whose
//!   message it processed, by parent or by span link, both ways;
//! - `links-to` / `linked-from`: any other span link, both ways.
//!
//! Related spans may be in other traces: the caller hands over the other
//! traces it found ([`related_traces`]), so a link is followed whichever
//! side of it the page shows.

use std::collections::{HashMap, HashSet};

use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::{Value, json};

use super::completeness::Completeness;
use super::critical_path::{Timed, critical_path};
use crate::search::{SpanQuery, kind_name};
use crate::store::Store;
use crate::stored::StoredSpan;
use crate::trace_id::{TraceId, span_id_hex};

const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// How long after a PRODUCER span its CONSUMERs in other traces are looked
/// for (a job may wait in the queue, or be redelivered, before it runs).
pub const CONSUMER_WINDOW_NANOS: u64 = 15 * 60 * 1_000_000_000;
/// At most this many traces are read to resolve a trace's links into other
/// traces, and as many (the newest) to find other traces' links to it.
pub const MAX_RELATED_TRACES: usize = 50;

/// Where a PRODUCER sends: `messaging.destination.name`, else what its
/// name says after the operation (semconv names it `{operation} {destination}`).
fn destination(s: &StoredSpan) -> Option<String> {
    s.span
        .attributes
        .iter()
        .find(|kv| kv.key == "messaging.destination.name")
        .map(|kv| crate::attr::value_text(kv.value.as_ref()))
        .filter(|d| !d.is_empty())
        .or_else(|| s.span.name.split_once(' ').map(|(_, d)| d.to_owned()))
}

/// The other traces a trace's spans are related to by span links, both
/// ways: the traces its links point into, and traces with a CONSUMER
/// operation on one of its PRODUCERs' destinations (`process {destination}`
/// or `receive {destination}`, semconv's names) that started within
/// [`CONSUMER_WINDOW_NANOS`] after the producer (whether such a span links
/// here is decided in [`trace_view`]). Found by operation name, so the
/// search reads no span it does not return.
pub fn related_traces(
    store: &Store,
    id: TraceId,
    spans: &[StoredSpan],
) -> Vec<(TraceId, Vec<StoredSpan>)> {
    let mut out: Vec<(TraceId, Vec<StoredSpan>)> = Vec::new();
    let mut seen: HashSet<TraceId> = HashSet::from([id]);
    let targets = spans
        .iter()
        .flat_map(|s| &s.span.links)
        .filter_map(|l| TraceId::from_bytes(&l.trace_id));
    for other in targets {
        if out.len() >= MAX_RELATED_TRACES {
            break;
        }
        if seen.insert(other)
            && let Some(found) = store.trace(other)
        {
            out.push((other, found));
        }
    }
    let mut destinations: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for s in spans.iter().filter(|s| s.span.kind == PRODUCER) {
        if let Some(d) = destination(s) {
            let start = s.span.start_time_unix_nano;
            let window = destinations.entry(d).or_insert((start, start));
            *window = (window.0.min(start), window.1.max(start));
        }
    }
    let mut candidates = 0;
    for (destination, (first, last)) in destinations {
        for operation in ["process", "receive"] {
            let query = SpanQuery {
                operation: Some(format!("{operation} {destination}")),
                start_min: Some(first),
                start_max: Some(last.saturating_add(CONSUMER_WINDOW_NANOS)),
                limit: MAX_RELATED_TRACES,
                ..Default::default()
            };
            for (other, found) in store.search(&query) {
                if candidates >= MAX_RELATED_TRACES {
                    return out;
                }
                candidates += 1;
                // Kept only when one of its spans links into this trace.
                let links_here = found.iter().any(|o| {
                    o.span
                        .links
                        .iter()
                        .any(|l| TraceId::from_bytes(&l.trace_id) == Some(id))
                });
                if links_here && seen.insert(other) {
                    out.push((other, found));
                }
            }
        }
    }
    out
}

/// The trace page's data; `expected_services` as `check --services`.
pub fn trace_view(
    id: TraceId,
    spans: &[StoredSpan],
    others: &[(TraceId, Vec<StoredSpan>)],
    expected_services: &[String],
) -> Value {
    let start = spans
        .iter()
        .map(|s| s.span.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.span.end_time_unix_nano)
        .max()
        .unwrap_or(0);
    let tree = Tree::new(spans);
    let mut critical: Vec<Vec<(u64, u64)>> = vec![Vec::new(); spans.len()];
    if let Some(root) = tree.main_root(spans) {
        for section in critical_path(&tree.timed, root) {
            critical[section.span].push((section.start - start, section.end - start));
        }
    }
    let relations = relations(id, spans, &tree, others);
    let summary = crate::search::summarize(id, spans);
    let rows: Vec<Value> = tree
        .order()
        .into_iter()
        .map(|(i, depth)| {
            let s = &spans[i];
            let mut sections = std::mem::take(&mut critical[i]);
            sections.reverse(); // earliest first
            json!({
                "spanId": span_id_hex(&s.span.span_id),
                "parentSpanId": span_id_hex(&s.span.parent_span_id),
                "service": &*s.service,
                "name": s.span.name,
                "kind": kind_text(s.span.kind),
                "depth": depth,
                "hasChildren": !tree.children[i].is_empty(),
                "orphan": !s.span.parent_span_id.is_empty() && tree.parents[i].is_none(),
                "startNanos": s.span.start_time_unix_nano.saturating_sub(start),
                "durationNanos": s.duration_nanos(),
                "error": is_error(s),
                "status": status_json(s),
                "critical": sections.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
                "attributes": attributes_json(&s.span.attributes, &[crate::jaeger::WARNINGS_ATTRIBUTE]),
                "events": s.span.events.iter().map(|e| json!({
                    "name": e.name,
                    "offsetNanos": e.time_unix_nano as i128 - start as i128,
                    "attributes": attributes_json(&e.attributes, &[]),
                })).collect::<Vec<_>>(),
                "links": s.span.links.iter().map(|l| json!({
                    "traceId": TraceId::from_bytes(&l.trace_id).map(TraceId::full).unwrap_or_default(),
                    "spanId": span_id_hex(&l.span_id),
                    "attributes": attributes_json(&l.attributes, &[]),
                })).collect::<Vec<_>>(),
                "related": relations[i],
                "resource": attributes_json(&s.resource.attributes, &[]),
                "scope": {
                    "name": s.scope.name,
                    "version": s.scope.version,
                    "attributes": attributes_json(&s.scope.attributes, &[]),
                },
                "warnings": crate::jaeger::warnings(&s.span).unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "traceId": id.full(),
        "startMicros": start / 1_000,
        "durationNanos": end.saturating_sub(start),
        "spanCount": spans.len(),
        "errorSpanCount": summary.error_span_count,
        "rootService": summary.root_service,
        "rootOperation": summary.root_operation,
        "services": summary.services.iter().map(|s| json!({
            "name": s.name,
            "spanCount": s.span_count,
            "errorSpanCount": s.error_span_count,
        })).collect::<Vec<_>>(),
        "completeness": Completeness::of(spans, expected_services).to_json(),
        "spans": rows,
    })
}

/// Parents and children by index, and the times the critical path needs.
struct Tree {
    parents: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    timed: Vec<Timed>,
}

impl Tree {
    fn new(spans: &[StoredSpan]) -> Self {
        let mut by_id: HashMap<&[u8], usize> = HashMap::with_capacity(spans.len());
        for (i, s) in spans.iter().enumerate() {
            by_id.entry(s.span.span_id.as_slice()).or_insert(i);
        }
        let parents: Vec<Option<usize>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                by_id
                    .get(s.span.parent_span_id.as_slice())
                    .copied()
                    .filter(|p| *p != i)
            })
            .collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        for (i, p) in parents.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        let by_start = |list: &mut Vec<usize>| {
            list.sort_by(|a, b| {
                let (sa, sb) = (&spans[*a].span, &spans[*b].span);
                (sa.start_time_unix_nano, &sa.name).cmp(&(sb.start_time_unix_nano, &sb.name))
            })
        };
        children.iter_mut().for_each(by_start);
        let mut timed: Vec<Timed> = spans
            .iter()
            .zip(&parents)
            .map(|(s, p)| Timed {
                parent: *p,
                start: s.span.start_time_unix_nano,
                end: s.span.end_time_unix_nano,
            })
            .collect();
        // A CONSUMER that starts after its PRODUCER ended (a job taken from
        // a queue) is work the producer's caller waited for: on the critical
        // path it counts under the nearest ancestor still running when it
        // started (Jaeger's walk would drop it, as outside its parent).
        for (i, s) in spans.iter().enumerate() {
            let Some(p) = parents[i] else { continue };
            if s.span.kind != CONSUMER
                || spans[p].span.kind != PRODUCER
                || timed[i].start <= timed[p].end
            {
                continue;
            }
            let mut ancestor = parents[p];
            for _ in 0..spans.len() {
                let Some(a) = ancestor else { break };
                if timed[a].end >= timed[i].start {
                    timed[i].parent = Some(a);
                    break;
                }
                ancestor = parents[a];
            }
        }
        Self {
            parents,
            children,
            timed,
        }
    }

    /// Spans without a parent in the trace, by start.
    fn tops(&self) -> Vec<usize> {
        let mut tops: Vec<usize> = (0..self.parents.len())
            .filter(|i| self.parents[*i].is_none())
            .collect();
        tops.sort_by_key(|i| self.timed[*i].start);
        tops
    }

    /// Where the critical path starts: the earliest span without a parent
    /// at all, else (the root was lost) the earliest orphan.
    fn main_root(&self, spans: &[StoredSpan]) -> Option<usize> {
        let tops = self.tops();
        tops.iter()
            .copied()
            .find(|i| spans[*i].span.parent_span_id.is_empty())
            .or_else(|| tops.first().copied())
    }

    /// Every span once, each under its parent: (index, depth). Spans caught
    /// in a parent cycle (bad data) come last, at depth 0.
    fn order(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(self.parents.len());
        let mut visited = vec![false; self.parents.len()];
        let mut stack: Vec<(usize, usize)> =
            self.tops().into_iter().rev().map(|i| (i, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            out.push((i, depth));
            stack.extend(self.children[i].iter().rev().map(|c| (*c, depth + 1)));
        }
        for (i, seen) in visited.iter().enumerate() {
            if !seen {
                out.push((i, 0));
            }
        }
        out
    }
}

fn kind_text(kind: i32) -> &'static str {
    match kind_name(kind) {
        "" => "unspecified",
        name => name,
    }
}

fn is_error(s: &StoredSpan) -> bool {
    s.span.status.as_ref().map(|st| st.code) == Some(StatusCode::Error as i32)
}

fn status_json(s: &StoredSpan) -> Value {
    let (code, message) = match &s.span.status {
        Some(st) => (
            match StatusCode::try_from(st.code) {
                Ok(StatusCode::Ok) => "OK",
                Ok(StatusCode::Error) => "ERROR",
                _ => "UNSET",
            },
            st.message.as_str(),
        ),
        None => ("UNSET", ""),
    };
    json!({"code": code, "message": message})
}

fn value_type(kv: &KeyValue) -> &'static str {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(_)) => "string",
        Some(any_value::Value::BoolValue(_)) => "bool",
        Some(any_value::Value::IntValue(_)) => "int",
        Some(any_value::Value::DoubleValue(_)) => "double",
        Some(any_value::Value::BytesValue(_)) => "bytes",
        Some(any_value::Value::ArrayValue(_)) => "array",
        Some(any_value::Value::KvlistValue(_)) => "map",
        Some(any_value::Value::StringValueStrindex(_)) => "strindex",
        None => "empty",
    }
}

/// Attributes as `[{key, value (text), type}]`, keys in `skip` left out.
fn attributes_json(attributes: &[KeyValue], skip: &[&str]) -> Vec<Value> {
    attributes
        .iter()
        .filter(|kv| !skip.contains(&kv.key.as_str()))
        .map(|kv| {
            json!({
                "key": kv.key,
                "value": crate::attr::value_text(kv.value.as_ref()),
                "type": value_type(kv),
            })
        })
        .collect()
}

/// A span seen from a relation: where it is and what it is.
fn span_ref(relation: &str, trace: TraceId, s: &StoredSpan, same_trace: bool) -> Value {
    json!({
        "relation": relation,
        "traceId": trace.full(),
        "spanId": span_id_hex(&s.span.span_id),
        "service": &*s.service,
        "name": s.span.name,
        "kind": kind_text(s.span.kind),
        "sameTrace": same_trace,
        "found": true,
    })
}

/// Every span's related spans (see the module docs), each once, the
/// messaging relation before the plain link.
fn relations(
    id: TraceId,
    spans: &[StoredSpan],
    tree: &Tree,
    others: &[(TraceId, Vec<StoredSpan>)],
) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = vec![Vec::new(); spans.len()];
    let mut seen: Vec<HashSet<(TraceId, Vec<u8>)>> = vec![HashSet::new(); spans.len()];
    let mut add = |i: usize, key: (TraceId, Vec<u8>), value: Value| {
        if seen[i].insert(key) {
            out[i].push(value);
        }
    };
    // Messaging by parent: a CONSUMER under its PRODUCER.
    for (i, p) in tree.parents.iter().enumerate() {
        if let Some(p) = *p
            && spans[i].span.kind == CONSUMER
            && spans[p].span.kind == PRODUCER
        {
            let (c, pr) = (&spans[i], &spans[p]);
            add(
                i,
                (id, pr.span.span_id.clone()),
                span_ref("produced-by", id, pr, true),
            );
            add(
                p,
                (id, c.span.span_id.clone()),
                span_ref("consumed-by", id, c, true),
            );
        }
    }
    let own: HashMap<&[u8], usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span.span_id.as_slice(), i))
        .collect();
    let find_other = |trace: TraceId, span: &[u8]| {
        others
            .iter()
            .filter(|(t, _)| *t == trace)
            .flat_map(|(_, list)| list)
            .find(|s| s.span.span_id == span)
    };
    let messaging =
        |from: &StoredSpan, to: &StoredSpan| from.span.kind == CONSUMER && to.span.kind == PRODUCER;
    // This trace's links, both ways when the target is here.
    for (i, s) in spans.iter().enumerate() {
        for link in &s.span.links {
            let Some(target_trace) = TraceId::from_bytes(&link.trace_id) else {
                continue;
            };
            let key = (target_trace, link.span_id.clone());
            let here = (target_trace == id)
                .then(|| own.get(link.span_id.as_slice()).copied())
                .flatten();
            match here {
                Some(j) => {
                    let (to, back) = if messaging(s, &spans[j]) {
                        ("produced-by", "consumed-by")
                    } else {
                        ("links-to", "linked-from")
                    };
                    add(i, key, span_ref(to, id, &spans[j], true));
                    add(j, (id, s.span.span_id.clone()), span_ref(back, id, s, true));
                }
                None => match find_other(target_trace, &link.span_id) {
                    Some(target) => {
                        let to = if messaging(s, target) {
                            "produced-by"
                        } else {
                            "links-to"
                        };
                        add(i, key, span_ref(to, target_trace, target, false));
                    }
                    None => add(
                        i,
                        key,
                        json!({
                            "relation": "links-to",
                            "traceId": target_trace.full(),
                            "spanId": span_id_hex(&link.span_id),
                            "sameTrace": target_trace == id,
                            "found": false,
                        }),
                    ),
                },
            }
        }
    }
    // Other traces' links to this one.
    for (other_id, other_spans) in others {
        for o in other_spans {
            for link in &o.span.links {
                if TraceId::from_bytes(&link.trace_id) != Some(id) {
                    continue;
                }
                if let Some(&j) = own.get(link.span_id.as_slice()) {
                    let back = if messaging(o, &spans[j]) {
                        "consumed-by"
                    } else {
                        "linked-from"
                    };
                    add(
                        j,
                        (*other_id, o.span.span_id.clone()),
                        span_ref(back, *other_id, o, false),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::test_spans::{failed, in_trace, kind, linked, span};

    fn names(view: &Value) -> Vec<(String, u64)> {
        view["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_owned(),
                    s["depth"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    fn row<'a>(view: &'a Value, name: &str) -> &'a Value {
        view["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
    }

    #[test]
    fn waterfall_order_depth_times_and_critical_path() {
        // Arrival order is not start order.
        let spans = vec![
            span("b", 3, 1, 1_050, 1_090),
            span("a", 1, 0, 1_000, 1_100),
            span("b", 2, 1, 1_010, 1_040),
            failed(span("c", 4, 3, 1_060, 1_080)),
            span("c", 5, 9, 1_020, 1_030),
        ];
        let view = trace_view(TraceId(1), &spans, &[], &[]);
        assert_eq!(
            names(&view),
            [
                ("op1".into(), 0),
                ("op2".into(), 1),
                ("op3".into(), 1),
                ("op4".into(), 2),
                ("op5".into(), 0)
            ]
        );
        assert_eq!(view["durationNanos"], 100);
        assert_eq!(view["startMicros"], 1);
        let op4 = row(&view, "op4");
        assert_eq!(op4["startNanos"], 60);
        assert_eq!(op4["durationNanos"], 20);
        assert_eq!(op4["error"], true);
        assert_eq!(op4["status"]["message"], "boom");
        assert_eq!(row(&view, "op5")["orphan"], true);
        assert_eq!(row(&view, "op1")["hasChildren"], true);
        // op1 90..100, op3 80..90, op4 60..80, op3 50..60, op1 40..50, op2 10..40, op1 0..10.
        assert_eq!(
            row(&view, "op1")["critical"],
            json!([[0, 10], [40, 50], [90, 100]])
        );
        assert_eq!(row(&view, "op2")["critical"], json!([[10, 40]]));
        assert_eq!(row(&view, "op4")["critical"], json!([[60, 80]]));
        assert_eq!(
            row(&view, "op5")["critical"],
            json!([]),
            "orphans are not on it"
        );
        assert_eq!(view["completeness"]["badges"][0]["kind"], "orphans");
        assert_eq!(view["errorSpanCount"], 1);
        assert_eq!(view["services"].as_array().unwrap().len(), 3);
    }

    /// The backend waits for a job's result: the worker's CONSUMER span,
    /// which starts after the PRODUCER span ended, is on the critical path.
    #[test]
    fn a_queued_job_the_caller_waited_for_is_on_the_critical_path() {
        let spans = vec![
            span("backend", 1, 0, 0, 100),
            kind(span("backend", 2, 1, 10, 12), PRODUCER),
            kind(span("worker", 3, 2, 20, 80), CONSUMER),
            span("worker", 4, 3, 30, 70),
        ];
        let view = trace_view(TraceId(1), &spans, &[], &[]);
        assert_eq!(row(&view, "op3")["critical"], json!([[20, 30], [70, 80]]));
        assert_eq!(row(&view, "op4")["critical"], json!([[30, 70]]));
        assert_eq!(
            row(&view, "op1")["critical"],
            json!([[0, 10], [12, 20], [80, 100]])
        );
        assert_eq!(row(&view, "op2")["critical"], json!([[10, 12]]));
        assert_eq!(
            row(&view, "op3")["depth"],
            2,
            "the waterfall keeps the real parent"
        );
    }

    #[test]
    fn producer_and_consumer_are_related_both_ways() {
        // Same trace: the consumer is the producer's child and links to it.
        let producer = kind(span("backend", 2, 1, 10, 20), PRODUCER);
        let consumer = linked(kind(span("worker", 3, 2, 30, 50), CONSUMER), 1, 2);
        let spans = vec![span("backend", 1, 0, 0, 60), producer, consumer];
        let view = trace_view(TraceId(1), &spans, &[], &[]);
        let producer_related = row(&view, "op2")["related"].as_array().unwrap();
        assert_eq!(
            producer_related.len(),
            1,
            "once, though parent and link both say so"
        );
        assert_eq!(producer_related[0]["relation"], "consumed-by");
        assert_eq!(producer_related[0]["service"], "worker");
        assert_eq!(producer_related[0]["sameTrace"], true);
        let consumer_related = row(&view, "op3")["related"].as_array().unwrap();
        assert_eq!(consumer_related.len(), 1);
        assert_eq!(consumer_related[0]["relation"], "produced-by");
        assert_eq!(consumer_related[0]["spanId"], "0202020202020202");
        assert_eq!(row(&view, "op3")["links"][0]["spanId"], "0202020202020202");
    }

    #[test]
    fn links_across_traces_are_followed_both_ways() {
        let producer = kind(span("backend", 2, 1, 10, 20), PRODUCER);
        let trace1 = vec![span("backend", 1, 0, 0, 60), producer.clone()];
        // Trace 2: a consumer that started its own trace and links back.
        let consumer = in_trace(
            linked(kind(span("worker", 7, 0, 30, 50), CONSUMER), 1, 2),
            2,
        );
        let trace2 = vec![consumer.clone()];
        let view1 = trace_view(TraceId(1), &trace1, &[(TraceId(2), trace2.clone())], &[]);
        let related = row(&view1, "op2")["related"].as_array().unwrap();
        assert_eq!(related.len(), 1);
        assert_eq!(related[0]["relation"], "consumed-by");
        assert_eq!(related[0]["traceId"], TraceId(2).full());
        assert_eq!(related[0]["sameTrace"], false);

        let view2 = trace_view(TraceId(2), &trace2, &[(TraceId(1), trace1)], &[]);
        let related = row(&view2, "op7")["related"].as_array().unwrap();
        assert_eq!(related[0]["relation"], "produced-by");
        assert_eq!(related[0]["traceId"], TraceId(1).full());
        assert_eq!(related[0]["service"], "backend");

        // A link to a span nobody stored is shown, as not found.
        let view3 = trace_view(TraceId(2), &trace2, &[], &[]);
        let related = row(&view3, "op7")["related"].as_array().unwrap();
        assert_eq!(
            (
                related[0]["relation"].as_str(),
                related[0]["found"].as_bool()
            ),
            (Some("links-to"), Some(false))
        );
    }

    #[test]
    fn related_traces_come_from_the_store() {
        use crate::store::Store;
        let store = Store::new(100);
        let request = |spans: Vec<StoredSpan>| {
            use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
            use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
            ExportTraceServiceRequest {
                resource_spans: spans
                    .into_iter()
                    .map(|s| ResourceSpans {
                        resource: Some((*s.resource).clone()),
                        scope_spans: vec![ScopeSpans {
                            spans: vec![s.span],
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
            }
        };
        let named = |mut s: StoredSpan, name: &str| {
            s.span.name = name.into();
            s
        };
        let producer = named(kind(span("backend", 2, 1, 10, 20), PRODUCER), "send jobs");
        let trace1 = vec![span("backend", 1, 0, 0, 60), producer];
        let consumer = named(
            in_trace(
                linked(kind(span("worker", 7, 0, 30, 50), CONSUMER), 1, 2),
                2,
            ),
            "process jobs",
        );
        // The same operation, no link: not related.
        let unrelated = named(
            in_trace(kind(span("worker", 8, 0, 30, 50), CONSUMER), 3),
            "process jobs",
        );
        store.insert(request(trace1.clone()));
        store.insert(request(vec![consumer.clone(), unrelated]));
        let found = related_traces(&store, TraceId(1), &trace1);
        let ids: Vec<TraceId> = found.iter().map(|(t, _)| *t).collect();
        assert_eq!(ids, [TraceId(2)]);
        let back = related_traces(&store, TraceId(2), &[consumer]);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].0, TraceId(1));
    }
}
