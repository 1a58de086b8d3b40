//! OTLP spans to Jaeger's v1 JSON, following the rules Jaeger itself uses
//! (collector-contrib `pkg/translator/jaeger`): resource → process,
//! kind → `span.kind`, status → `otel.status_code`/`otel.status_description`
//! and `error=true`, scope → `otel.scope.name`/`otel.scope.version`,
//! parent → CHILD_OF, links → FOLLOWS_FROM, events → logs with `event`.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as OtlpKeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, span::SpanKind, status::StatusCode};
use serde_json::{Value, json};

use crate::model::{KeyValue, Log, Process, RefType, Reference, Span, Trace};
use crate::stored::StoredSpan;
use crate::trace_id::{TraceId, span_id_hex};

/// Integers beyond this travel as strings (JavaScript numbers are doubles).
const MAX_SAFE_INT: i64 = (1 << 53) - 1;

fn trace_id_text(bytes: &[u8]) -> String {
    TraceId::from_bytes(bytes)
        .map(TraceId::jaeger)
        .unwrap_or_else(|| span_id_hex(bytes))
}

/// One trace in Jaeger's shape; spans ordered by start time.
pub fn trace(id: TraceId, spans: &[StoredSpan]) -> Trace {
    let mut ordered: Vec<&StoredSpan> = spans.iter().collect();
    ordered.sort_by_key(|s| s.span.start_time_unix_nano);
    let mut processes: Vec<(&Resource, Process)> = Vec::new();
    let mut out = Vec::with_capacity(ordered.len());
    for stored in ordered {
        // Jaeger hashes processes (p1, p2, …): equal resources share a key.
        let index = match processes.iter().position(|(r, _)| **r == *stored.resource) {
            Some(i) => i,
            None => {
                processes.push((
                    &stored.resource,
                    Process {
                        service_name: stored.service.to_string(),
                        tags: process_tags(&stored.resource),
                    },
                ));
                processes.len() - 1
            }
        };
        out.push(span(stored, format!("p{}", index + 1)));
    }
    Trace {
        trace_id: id.jaeger(),
        spans: out,
        processes: processes
            .into_iter()
            .enumerate()
            .map(|(i, (_, p))| (format!("p{}", i + 1), p))
            .collect(),
        warnings: None,
    }
}

fn span(stored: &StoredSpan, process_id: String) -> Span {
    let s = &stored.span;
    let trace_id = trace_id_text(&s.trace_id);
    let mut references = Vec::with_capacity(1 + s.links.len());
    if !s.parent_span_id.is_empty() {
        references.push(Reference {
            ref_type: RefType::ChildOf,
            trace_id: trace_id.clone(),
            span_id: span_id_hex(&s.parent_span_id),
        });
    }
    references.extend(s.links.iter().map(|l| Reference {
        ref_type: RefType::FollowsFrom,
        trace_id: trace_id_text(&l.trace_id),
        span_id: span_id_hex(&l.span_id),
    }));
    Span {
        trace_id,
        span_id: span_id_hex(&s.span_id),
        flags: s.flags & 0xff,
        operation_name: s.name.clone(),
        references,
        start_time: s.start_time_unix_nano / 1_000,
        duration: stored.duration_nanos() / 1_000,
        tags: span_tags(stored),
        logs: logs(s),
        process_id,
        process: None,
        warnings: warnings(s),
    }
}

/// The attribute where Jaeger's query service puts a span's warnings
/// (`jptrace.WarningsAttribute`); v1 shows them as the span's `warnings`.
pub const WARNINGS_ATTRIBUTE: &str = "@jaeger@warnings";

/// The warnings Jaeger's adjusters left on a span, if any.
pub fn warnings(s: &OtlpSpan) -> Option<Vec<String>> {
    let value = s
        .attributes
        .iter()
        .find(|kv| kv.key == WARNINGS_ATTRIBUTE)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        any_value::Value::ArrayValue(a) => a
            .values
            .iter()
            .map(|v| crate::attr::value_text(Some(v)))
            .collect(),
        other => vec![crate::attr::value_text(Some(&AnyValue {
            value: Some(other.clone()),
        }))],
    })
}

/// The span's tags as Jaeger shows them.
pub fn span_tags(stored: &StoredSpan) -> Vec<KeyValue> {
    let s = &stored.span;
    let mut tags = Vec::with_capacity(s.attributes.len() + 5);
    if !stored.scope.name.is_empty() {
        tags.push(KeyValue::string("otel.scope.name", &stored.scope.name));
    }
    if !stored.scope.version.is_empty() {
        tags.push(KeyValue::string(
            "otel.scope.version",
            &stored.scope.version,
        ));
    }
    tags.extend(
        s.attributes
            .iter()
            .filter(|kv| kv.key != WARNINGS_ATTRIBUTE)
            .map(key_value),
    );
    let kind = match SpanKind::try_from(s.kind) {
        Ok(SpanKind::Server) => Some("server"),
        Ok(SpanKind::Client) => Some("client"),
        Ok(SpanKind::Producer) => Some("producer"),
        Ok(SpanKind::Consumer) => Some("consumer"),
        _ => None,
    };
    if let Some(kind) = kind {
        tags.push(KeyValue::string("span.kind", kind));
    }
    if let Some(status) = &s.status {
        match StatusCode::try_from(status.code) {
            Ok(StatusCode::Ok) => tags.push(KeyValue::string("otel.status_code", "OK")),
            Ok(StatusCode::Error) => {
                tags.push(KeyValue::string("otel.status_code", "ERROR"));
                tags.push(KeyValue::bool("error", true));
            }
            _ => {}
        }
        if !status.message.is_empty() {
            tags.push(KeyValue::string("otel.status_description", &status.message));
        }
    }
    if !s.trace_state.is_empty() {
        tags.push(KeyValue::string("w3c.tracestate", &s.trace_state));
    }
    tags
}

/// Resource attributes except `service.name` (that is the process's name).
pub fn process_tags(resource: &Resource) -> Vec<KeyValue> {
    resource
        .attributes
        .iter()
        .filter(|kv| kv.key != "service.name")
        .map(key_value)
        .collect()
}

pub fn logs(s: &OtlpSpan) -> Vec<Log> {
    s.events
        .iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(e.attributes.len() + 1);
            if !e.name.is_empty() {
                fields.push(KeyValue::string("event", &e.name));
            }
            fields.extend(e.attributes.iter().map(key_value));
            Log {
                timestamp: e.time_unix_nano / 1_000,
                fields,
            }
        })
        .collect()
}

fn key_value(kv: &OtlpKeyValue) -> KeyValue {
    let (value_type, value) = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => ("string", Value::String(s.clone())),
        Some(any_value::Value::BoolValue(b)) => ("bool", Value::Bool(*b)),
        Some(any_value::Value::IntValue(i)) if i.abs() <= MAX_SAFE_INT => ("int64", json!(i)),
        Some(any_value::Value::IntValue(i)) => ("int64", Value::String(i.to_string())),
        Some(any_value::Value::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => ("float64", Value::Number(n)),
            None => ("float64", Value::String(d.to_string())),
        },
        Some(any_value::Value::BytesValue(b)) => ("binary", Value::String(crate::attr::base64(b))),
        // Arrays and maps travel as their JSON text, as Jaeger's translator does.
        Some(other) => (
            "string",
            Value::String(crate::attr::any_json(other).to_string()),
        ),
        None => ("string", Value::String(String::new())),
    };
    KeyValue {
        key: kv.key.clone(),
        value_type: value_type.to_owned(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::test_support::kv as attr;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::trace::v1::{Status, span};

    /// The input of Jaeger's `otlp2jaeger-in.json` gives its `otlp2jaeger-out.json`.
    #[test]
    fn converts_like_jaeger_does() {
        let resource = Resource {
            attributes: vec![attr(
                "service.name",
                any_value::Value::StringValue("telemetrygen".into()),
            )],
            ..Default::default()
        };
        let stored = StoredSpan {
            service: Arc::from("telemetrygen"),
            resource: Arc::new(resource),
            scope: Arc::new(InstrumentationScope {
                name: "telemetrygen".into(),
                ..Default::default()
            }),
            span: OtlpSpan {
                trace_id: TraceId::parse("83a9efd15c1c98a977e0711cc93ee28b")
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
                span_id: vec![0xe1, 0x27, 0xaf, 0x99, 0xe3, 0xb3, 0xe0, 0x74],
                parent_span_id: vec![0x90, 0x95, 0x41, 0xb9, 0x2c, 0xf0, 0x53, 0x11],
                name: "okey-dokey-0".into(),
                kind: SpanKind::Server as i32,
                start_time_unix_nano: 1706678909209712000,
                end_time_unix_nano: 1706678909209835000,
                attributes: vec![
                    attr(
                        "net.peer.ip",
                        any_value::Value::StringValue("1.2.3.4".into()),
                    ),
                    attr(
                        "peer.service",
                        any_value::Value::StringValue("telemetrygen-client".into()),
                    ),
                ],
                ..Default::default()
            },
        };
        let id = TraceId::parse("83a9efd15c1c98a977e0711cc93ee28b").unwrap();
        let ours =
            serde_json::to_value(crate::model::Envelope::data(vec![trace(id, &[stored])], 0))
                .unwrap();
        let theirs: Value =
            serde_json::from_str(include_str!("../fixtures/jaeger/otlp2jaeger-out.json")).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn status_links_events_and_value_types() {
        let stored = StoredSpan {
            service: Arc::from("svc"),
            resource: Arc::new(Resource::default()),
            scope: Arc::new(InstrumentationScope::default()),
            span: OtlpSpan {
                trace_id: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                span_id: vec![2; 8],
                name: "op".into(),
                kind: SpanKind::Internal as i32,
                status: Some(Status {
                    code: StatusCode::Error as i32,
                    message: "boom".into(),
                }),
                links: vec![span::Link {
                    trace_id: vec![3; 16],
                    span_id: vec![4; 8],
                    ..Default::default()
                }],
                events: vec![span::Event {
                    name: "exception".into(),
                    time_unix_nano: 5_000,
                    attributes: vec![attr(
                        "exception.message",
                        any_value::Value::StringValue("boom".into()),
                    )],
                    ..Default::default()
                }],
                attributes: vec![
                    attr("big", any_value::Value::IntValue(9223372036854775222)),
                    attr("small", any_value::Value::IntValue(42)),
                    attr("blob", any_value::Value::BytesValue(vec![0, 0, 0x30, 0x39])),
                ],
                ..Default::default()
            },
        };
        let t = trace(TraceId(1), &[stored]);
        assert_eq!(t.trace_id, "0000000000000001", "Jaeger's short form");
        let s = &t.spans[0];
        assert!(s.tag("span.kind").is_none(), "INTERNAL gets no span.kind");
        assert_eq!(s.tag("otel.status_code").unwrap().text(), "ERROR");
        assert_eq!(s.tag("otel.status_description").unwrap().text(), "boom");
        assert_eq!(s.tag("error").unwrap().value, json!(true));
        assert_eq!(s.tag("big").unwrap().value, json!("9223372036854775222"));
        assert_eq!(s.tag("small").unwrap().value, json!(42));
        assert_eq!(
            s.tag("blob").unwrap().value,
            json!("AAAwOQ=="),
            "Jaeger's own fixture value"
        );
        assert_eq!(s.references.len(), 1);
        assert_eq!(s.references[0].ref_type, RefType::FollowsFrom);
        assert_eq!(s.logs[0].timestamp, 5);
        assert_eq!(s.logs[0].fields[0], KeyValue::string("event", "exception"));
    }
}
