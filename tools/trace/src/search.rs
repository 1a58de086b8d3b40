//! Searching traces: one query type for Jaeger's v1 search
//! (`GET /api/traces?service=…`) and API v3 (`GET /api/v3/traces?query.…`),
//! and the per-trace summary API v3's `trace-summaries` answers.
//!
//! `Store::search` (store.rs) runs a [`SpanQuery`]: a trace is found
//! when ONE of its spans meets every condition (service, operation, time,
//! duration, attributes), as in Jaeger's stores. Attribute conditions follow
//! Jaeger v2's memory store (`internal/storage/v2/memory/tenant.go`) and the
//! v1 tags Jaeger derives from OTLP (`span.kind`, `otel.status_code`, …):
//! - `error=true|false`: the span's status is (not) ERROR;
//! - `span.kind` (`server`, `client`, …), `span.status` (`OK`, `ERROR`, `UNSET`);
//! - `scope.name`, `scope.version`; `resource.<key>`: that resource attribute only;
//! - any other key: a span, scope, resource, event or link attribute, or a
//!   derived v1 tag, whose value as text is the wanted text.

use std::collections::{BTreeMap, HashSet};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use crate::stored::StoredSpan;
use crate::trace_id::TraceId;

/// What a search asks for; times in nanoseconds since the Unix epoch,
/// durations in nanoseconds. Every condition holds for one and the same span.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanQuery {
    /// `None`: any service (API v3 allows it; v1 requires one).
    pub service: Option<String>,
    pub operation: Option<String>,
    /// Every pair must match (see the module docs).
    pub tags: BTreeMap<String, String>,
    pub start_min: Option<u64>,
    pub start_max: Option<u64>,
    pub duration_min: Option<u64>,
    pub duration_max: Option<u64>,
    /// At most this many traces, newest first.
    pub limit: usize,
}

impl SpanQuery {
    /// The conditions that need no decoding: the store checks them on what
    /// it indexed, and decodes the span only when they hold.
    pub fn matches_summary(&self, service: &str, name: &str, start: u64, duration: u64) -> bool {
        if self.service.as_deref().is_some_and(|s| s != service) {
            return false;
        }
        if self.operation.as_deref().is_some_and(|op| op != name) {
            return false;
        }
        if self.start_min.is_some_and(|min| start < min)
            || self.start_max.is_some_and(|max| start > max)
        {
            return false;
        }
        !(self.duration_min.is_some_and(|min| duration < min)
            || self.duration_max.is_some_and(|max| duration > max))
    }

    /// Whether the tag conditions need the span decoded at all.
    pub fn has_tags(&self) -> bool {
        !self.tags.is_empty()
    }

    /// Every condition on a decoded span.
    pub fn matches(&self, s: &StoredSpan) -> bool {
        self.matches_summary(
            &s.service,
            &s.span.name,
            s.span.start_time_unix_nano,
            s.duration_nanos(),
        ) && self.matches_tags(s)
    }

    pub fn matches_tags(&self, s: &StoredSpan) -> bool {
        self.tags
            .iter()
            .all(|(key, want)| tag_matches(s, key, want))
    }
}

/// One attribute condition on one span (see the module docs).
pub fn tag_matches(s: &StoredSpan, key: &str, want: &str) -> bool {
    let status = s
        .span
        .status
        .as_ref()
        .and_then(|st| StatusCode::try_from(st.code).ok())
        .unwrap_or(StatusCode::Unset);
    match key {
        "error" => {
            return match want.to_ascii_lowercase().as_str() {
                "true" | "1" | "t" => status == StatusCode::Error,
                "false" | "0" | "f" => status != StatusCode::Error,
                _ => false,
            };
        }
        "span.kind" => return kind_name(s.span.kind).eq_ignore_ascii_case(want),
        "span.status" => {
            let name = match status {
                StatusCode::Ok => "OK",
                StatusCode::Error => "ERROR",
                StatusCode::Unset => "UNSET",
            };
            return name.eq_ignore_ascii_case(want);
        }
        "scope.name" => return s.scope.name == want,
        "scope.version" => return s.scope.version == want,
        _ => {}
    }
    if let Some(resource_key) = key.strip_prefix("resource.") {
        return attribute_is(&s.resource.attributes, resource_key, want);
    }
    attribute_is(&s.span.attributes, key, want)
        || attribute_is(&s.scope.attributes, key, want)
        || attribute_is(&s.resource.attributes, key, want)
        || s.span
            .events
            .iter()
            .any(|e| attribute_is(&e.attributes, key, want) || (key == "event" && e.name == want))
        || s.span
            .links
            .iter()
            .any(|l| attribute_is(&l.attributes, key, want))
        || derived_tag_is(s, key, want, status)
}

/// Whether one of the tags Jaeger derives for v1 (`crate::jaeger::span_tags`:
/// otel.scope.*, otel.status_*, w3c.tracestate, and a double attribute as
/// its JSON number) has this text; computed for the one key asked about,
/// without building every tag (a search tries it on each span it reads).
fn derived_tag_is(s: &StoredSpan, key: &str, want: &str, status: StatusCode) -> bool {
    let non_empty_is = |value: &str| !value.is_empty() && value == want;
    match key {
        "otel.scope.name" => non_empty_is(&s.scope.name),
        "otel.scope.version" => non_empty_is(&s.scope.version),
        "otel.status_code" => match status {
            StatusCode::Ok => want == "OK",
            StatusCode::Error => want == "ERROR",
            StatusCode::Unset => false,
        },
        "otel.status_description" => s
            .span
            .status
            .as_ref()
            .is_some_and(|st| non_empty_is(&st.message)),
        "w3c.tracestate" => non_empty_is(&s.span.trace_state),
        _ => s.span.attributes.iter().any(|kv| {
            kv.key == key
                && kv.key != crate::jaeger::WARNINGS_ATTRIBUTE
                && matches!(
                    kv.value.as_ref().and_then(|v| v.value.as_ref()),
                    Some(opentelemetry_proto::tonic::common::v1::any_value::Value::DoubleValue(d))
                        if serde_json::Number::from_f64(*d).is_some_and(|n| n.to_string() == want)
                )
        }),
    }
}

fn attribute_is(attributes: &[KeyValue], key: &str, want: &str) -> bool {
    attributes
        .iter()
        .any(|kv| kv.key == key && crate::attr::value_text(kv.value.as_ref()) == want)
}

/// Jaeger's lower-case names of OTLP span kinds ("" when unspecified).
pub fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "",
    }
}

/// An operation a service reported: its span name and kind (lower case, ""
/// when unspecified).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    pub name: String,
    pub span_kind: &'static str,
}

/// Spans and errors of one service in a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSummary {
    pub name: String,
    pub span_count: usize,
    pub error_span_count: usize,
}

/// A trace at a glance, as Jaeger's `summarizeTrace` (querysvc/summary.go)
/// computes it: the root is the earliest span without a parent; an orphan
/// is a span whose parent is not in the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    pub root_service: String,
    pub root_operation: String,
    pub min_start_unix_nano: u64,
    pub max_end_unix_nano: u64,
    pub span_count: usize,
    pub error_span_count: usize,
    pub orphan_span_count: usize,
    /// By name.
    pub services: Vec<ServiceSummary>,
}

pub fn summarize(trace_id: TraceId, spans: &[StoredSpan]) -> TraceSummary {
    let ids: HashSet<&[u8]> = spans.iter().map(|s| s.span.span_id.as_slice()).collect();
    let mut services: BTreeMap<&str, ServiceSummary> = BTreeMap::new();
    let mut summary = TraceSummary {
        trace_id,
        root_service: String::new(),
        root_operation: String::new(),
        min_start_unix_nano: 0,
        max_end_unix_nano: 0,
        span_count: spans.len(),
        error_span_count: 0,
        orphan_span_count: 0,
        services: Vec::new(),
    };
    let mut root_start: Option<u64> = None;
    for s in spans {
        let service = services
            .entry(&s.service)
            .or_insert_with(|| ServiceSummary {
                name: s.service.to_string(),
                span_count: 0,
                error_span_count: 0,
            });
        service.span_count += 1;
        if s.span.status.as_ref().map(|st| st.code) == Some(StatusCode::Error as i32) {
            service.error_span_count += 1;
            summary.error_span_count += 1;
        }
        let (start, end) = (s.span.start_time_unix_nano, s.span.end_time_unix_nano);
        if summary.min_start_unix_nano == 0 || start < summary.min_start_unix_nano {
            summary.min_start_unix_nano = start;
        }
        summary.max_end_unix_nano = summary.max_end_unix_nano.max(end);
        if s.span.parent_span_id.is_empty() {
            if root_start.is_none_or(|r| start < r) {
                root_start = Some(start);
                summary.root_service = s.service.to_string();
                summary.root_operation = s.span.name.clone();
            }
        } else if !ids.contains(s.span.parent_span_id.as_slice()) {
            summary.orphan_span_count += 1;
        }
    }
    summary.services = services.into_values().collect();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::test_support::{kv, string};
    use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{Span, Status, span};

    fn stored(service: &str, id: u8, parent: u8, error: bool) -> StoredSpan {
        StoredSpan {
            service: Arc::from(service),
            resource: Arc::new(Resource {
                attributes: vec![string("service.name", service), string("host.name", "h1")],
                ..Default::default()
            }),
            scope: Arc::new(InstrumentationScope {
                name: "lib".into(),
                version: "1.2".into(),
                ..Default::default()
            }),
            span: Span {
                trace_id: vec![1; 16],
                span_id: vec![id; 8],
                parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
                name: format!("op{id}"),
                kind: 3,
                start_time_unix_nano: 1_000 * u64::from(id),
                end_time_unix_nano: 1_000 * u64::from(id) + 500,
                attributes: vec![
                    string("http.route", "/x"),
                    kv("http.response.status_code", any_value::Value::IntValue(503)),
                    kv("retry", any_value::Value::BoolValue(true)),
                    kv("ratio", any_value::Value::DoubleValue(1.0)),
                ],
                events: vec![span::Event {
                    name: "exception".into(),
                    attributes: vec![string("exception.type", "Timeout")],
                    ..Default::default()
                }],
                status: error.then(|| Status {
                    code: StatusCode::Error as i32,
                    message: "boom".into(),
                }),
                ..Default::default()
            },
        }
    }

    #[test]
    fn attribute_conditions_like_jaegers_stores() {
        let s = stored("svc", 1, 0, true);
        let q = |pairs: &[(&str, &str)]| SpanQuery {
            tags: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        for (pairs, expected) in [
            (&[("http.route", "/x")][..], true),
            (&[("http.route", "/y")], false),
            (&[("http.response.status_code", "503")], true),
            (&[("retry", "true")], true),
            (&[("error", "true")], true),
            (&[("error", "false")], false),
            (&[("span.kind", "CLIENT")], true),
            (&[("span.kind", "server")], false),
            (&[("span.status", "error")], true),
            (&[("otel.status_code", "ERROR")], true),
            (&[("otel.status_description", "boom")], true),
            (&[("scope.name", "lib"), ("scope.version", "1.2")], true),
            (&[("otel.scope.name", "lib")], true),
            (&[("host.name", "h1")], true),
            (&[("resource.host.name", "h1")], true),
            (&[("resource.http.route", "/x")], false),
            (&[("exception.type", "Timeout")], true),
            (&[("http.route", "/x"), ("host.name", "h2")], false),
            (&[("ratio", "1.0")], true),
            (&[("ratio", "1")], true),
            (&[("ratio", "2.0")], false),
            (&[("otel.scope.version", "1.2")], true),
            (&[("otel.status_code", "OK")], false),
            (&[("w3c.tracestate", "")], false),
        ] {
            assert_eq!(q(pairs).matches(&s), expected, "{pairs:?}");
        }
        assert!(q(&[("error", "false")]).matches(&stored("svc", 1, 0, false)));
    }

    #[test]
    fn summary_like_jaegers() {
        let spans = vec![
            stored("b", 3, 1, true),
            stored("a", 1, 0, false),
            stored("b", 2, 1, false),
            stored("c", 4, 9, true),
        ];
        let summary = summarize(TraceId(7), &spans);
        assert_eq!(summary.root_service, "a");
        assert_eq!(summary.root_operation, "op1");
        assert_eq!(summary.min_start_unix_nano, 1_000);
        assert_eq!(summary.max_end_unix_nano, 4_500);
        assert_eq!(
            (
                summary.span_count,
                summary.error_span_count,
                summary.orphan_span_count
            ),
            (4, 2, 1)
        );
        let names: Vec<&str> = summary.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(summary.services[1].span_count, 2);
        assert_eq!(summary.services[1].error_span_count, 1);
    }
}
