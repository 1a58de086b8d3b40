//! The service graph: who calls whom, from stored spans. An edge
//! `parent → child` is counted once for each span of service `child` whose
//! parent span (in the same trace) belongs to service `parent`, as Jaeger
//! derives its dependency links; over Redis the CONSUMER is the PRODUCER's
//! child, so a job counts as a call from the producing to the consuming
//! service. A call is an error when either side's span has status ERROR
//! (the caller's CLIENT span alone errs on a timeout, the callee's SERVER
//! span alone when it answers 5xx to a caller that does not check).

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde::Serialize;

use crate::stored::StoredSpan;
use crate::trace_id::TraceId;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceNode {
    pub name: String,
    pub span_count: u64,
    pub error_span_count: u64,
    /// Traces whose root span is in this service.
    pub root_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub parent: String,
    pub child: String,
    pub calls: u64,
    pub errors: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceGraph {
    /// By name.
    pub services: Vec<ServiceNode>,
    /// By parent, then child.
    pub edges: Vec<Edge>,
    pub trace_count: u64,
    pub span_count: u64,
}

fn is_error(s: &StoredSpan) -> bool {
    s.span.status.as_ref().map(|st| st.code) == Some(StatusCode::Error as i32)
}

pub fn service_graph(traces: &[(TraceId, Vec<StoredSpan>)]) -> ServiceGraph {
    let mut services: BTreeMap<&str, ServiceNode> = BTreeMap::new();
    let mut edges: BTreeMap<(&str, &str), Edge> = BTreeMap::new();
    let mut span_count = 0;
    for (_, spans) in traces {
        let by_id: HashMap<&[u8], &StoredSpan> = spans
            .iter()
            .map(|s| (s.span.span_id.as_slice(), s))
            .collect();
        for s in spans {
            span_count += 1;
            let node = services.entry(&s.service).or_insert_with(|| ServiceNode {
                name: s.service.to_string(),
                ..Default::default()
            });
            node.span_count += 1;
            node.error_span_count += u64::from(is_error(s));
            if s.span.parent_span_id.is_empty() {
                node.root_count += 1;
                continue;
            }
            let Some(parent) = by_id.get(s.span.parent_span_id.as_slice()) else {
                continue;
            };
            if parent.service == s.service {
                continue;
            }
            let edge = edges
                .entry((&parent.service, &s.service))
                .or_insert_with(|| Edge {
                    parent: parent.service.to_string(),
                    child: s.service.to_string(),
                    ..Default::default()
                });
            edge.calls += 1;
            edge.errors += u64::from(is_error(s) || is_error(parent));
        }
    }
    ServiceGraph {
        services: services.into_values().collect(),
        edges: edges.into_values().collect(),
        trace_count: traces.len() as u64,
        span_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::test_spans::{failed, in_trace, span};

    #[test]
    fn calls_and_errors_per_edge() {
        let trace1 = vec![
            span("backend", 1, 0, 0, 100),
            span("backend", 2, 1, 10, 50),
            span("browser", 3, 2, 11, 49),
            failed(span("backend", 4, 1, 60, 90)),
            span("ai-stack", 5, 4, 61, 89),
            span("worker", 6, 9, 1, 2),
        ];
        let trace2 = vec![
            in_trace(span("backend", 1, 0, 0, 100), 2),
            in_trace(failed(span("browser", 3, 1, 11, 49)), 2),
        ];
        let graph = service_graph(&[(TraceId(1), trace1), (TraceId(2), trace2)]);
        let edges: Vec<(&str, &str, u64, u64)> = graph
            .edges
            .iter()
            .map(|e| (e.parent.as_str(), e.child.as_str(), e.calls, e.errors))
            .collect();
        assert_eq!(
            edges,
            [("backend", "ai-stack", 1, 1), ("backend", "browser", 2, 1)],
            "an orphan's missing parent is no edge"
        );
        let names: Vec<&str> = graph.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ai-stack", "backend", "browser", "worker"]);
        assert_eq!(graph.services[1].root_count, 2);
        assert_eq!(graph.services[1].error_span_count, 1);
        assert_eq!((graph.trace_count, graph.span_count), (2, 8));
    }
}
