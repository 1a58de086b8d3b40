//! Traces as OTLP-JSON, the body of Jaeger's API v3 (`{"result": TracesData}`).
//!
//! Written the way Jaeger writes it: Jaeger hands the traces to the
//! Collector's `ptrace.JSONMarshaler` (jaeger `internal/jptrace/traces.go`),
//! whose rules (collector `pdata/internal/generated_proto_*.go`) are: ids in
//! lower-case hex, 64-bit integers as decimal strings, enums as integers,
//! fields at their zero value left out, except that `resource`, `scope`,
//! `status` and a key-value's `value` are always there (`{}` when empty);
//! bytes in base64; a non-finite double as `"NaN"`, `"Infinity"`,
//! `"-Infinity"`.
//!
//! Read back leniently (the same rules, plus numbers where strings are
//! expected, as OTLP/JSON allows), into [`StoredSpan`]s.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span, Status, span};
use serde_json::{Map, Value, json};

use crate::stored::StoredSpan;
use crate::trace_id::span_id_hex;

/// The spans of one scope.
type ScopeGroup<'a> = (&'a InstrumentationScope, Vec<&'a Span>);

/// Spans grouped as OTLP groups them: spans with an equal resource under one
/// `resourceSpans` entry, then by equal scope, each in first-seen order.
pub fn traces_data(spans: &[StoredSpan]) -> Value {
    let mut groups: Vec<(&Resource, Vec<ScopeGroup>)> = Vec::new();
    for s in spans {
        let resource_index = match groups.iter().position(|(r, _)| **r == *s.resource) {
            Some(i) => i,
            None => {
                groups.push((&s.resource, Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[resource_index].1;
        match scopes.iter_mut().find(|(scope, _)| **scope == *s.scope) {
            Some((_, list)) => list.push(&s.span),
            None => scopes.push((&s.scope, vec![&s.span])),
        }
    }
    let mut out = Map::new();
    if !groups.is_empty() {
        let resource_spans = groups
            .into_iter()
            .map(|(resource, scopes)| {
                let mut rs = Map::new();
                rs.insert("resource".into(), resource_json(resource));
                rs.insert(
                    "scopeSpans".into(),
                    scopes
                        .into_iter()
                        .map(|(scope, spans)| {
                            let mut ss = Map::new();
                            ss.insert("scope".into(), scope_json(scope));
                            ss.insert("spans".into(), spans.into_iter().map(span_json).collect());
                            Value::Object(ss)
                        })
                        .collect(),
                );
                Value::Object(rs)
            })
            .collect();
        out.insert("resourceSpans".into(), resource_spans);
    }
    Value::Object(out)
}

/// Inserts `key: value` unless the value is its type's zero.
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let zero = match &value {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Number(n) => n.as_u64() == Some(0) || n.as_i64() == Some(0),
        Value::Null => true,
        _ => false,
    };
    if !zero {
        map.insert(key.to_owned(), value);
    }
}

fn resource_json(r: &Resource) -> Value {
    let mut m = Map::new();
    put(&mut m, "attributes", attributes_json(&r.attributes));
    put(
        &mut m,
        "droppedAttributesCount",
        json!(r.dropped_attributes_count),
    );
    Value::Object(m)
}

fn scope_json(s: &InstrumentationScope) -> Value {
    let mut m = Map::new();
    put(&mut m, "name", json!(s.name));
    put(&mut m, "version", json!(s.version));
    put(&mut m, "attributes", attributes_json(&s.attributes));
    put(
        &mut m,
        "droppedAttributesCount",
        json!(s.dropped_attributes_count),
    );
    Value::Object(m)
}

/// A 64-bit integer as JSON writes it for protobuf: a decimal string.
fn int64(value: impl ToString) -> Value {
    Value::String(value.to_string())
}

fn nonzero_u64(value: u64) -> Value {
    if value == 0 {
        Value::Null
    } else {
        int64(value)
    }
}

fn id_json(bytes: &[u8]) -> Value {
    Value::String(span_id_hex(bytes))
}

pub fn span_json(s: &Span) -> Value {
    let mut m = Map::new();
    put(&mut m, "traceId", id_json(&s.trace_id));
    put(&mut m, "spanId", id_json(&s.span_id));
    put(&mut m, "traceState", json!(s.trace_state));
    put(&mut m, "parentSpanId", id_json(&s.parent_span_id));
    put(&mut m, "flags", json!(s.flags));
    put(&mut m, "name", json!(s.name));
    put(&mut m, "kind", json!(s.kind));
    put(
        &mut m,
        "startTimeUnixNano",
        nonzero_u64(s.start_time_unix_nano),
    );
    put(&mut m, "endTimeUnixNano", nonzero_u64(s.end_time_unix_nano));
    put(&mut m, "attributes", attributes_json(&s.attributes));
    put(
        &mut m,
        "droppedAttributesCount",
        json!(s.dropped_attributes_count),
    );
    put(&mut m, "events", s.events.iter().map(event_json).collect());
    put(&mut m, "droppedEventsCount", json!(s.dropped_events_count));
    put(&mut m, "links", s.links.iter().map(link_json).collect());
    put(&mut m, "droppedLinksCount", json!(s.dropped_links_count));
    m.insert(
        "status".into(),
        status_json(s.status.as_ref().unwrap_or(&Status::default())),
    );
    Value::Object(m)
}

fn status_json(s: &Status) -> Value {
    let mut m = Map::new();
    put(&mut m, "message", json!(s.message));
    put(&mut m, "code", json!(s.code));
    Value::Object(m)
}

fn event_json(e: &span::Event) -> Value {
    let mut m = Map::new();
    put(&mut m, "timeUnixNano", nonzero_u64(e.time_unix_nano));
    put(&mut m, "name", json!(e.name));
    put(&mut m, "attributes", attributes_json(&e.attributes));
    put(
        &mut m,
        "droppedAttributesCount",
        json!(e.dropped_attributes_count),
    );
    Value::Object(m)
}

fn link_json(l: &span::Link) -> Value {
    let mut m = Map::new();
    put(&mut m, "traceId", id_json(&l.trace_id));
    put(&mut m, "spanId", id_json(&l.span_id));
    put(&mut m, "traceState", json!(l.trace_state));
    put(&mut m, "attributes", attributes_json(&l.attributes));
    put(
        &mut m,
        "droppedAttributesCount",
        json!(l.dropped_attributes_count),
    );
    put(&mut m, "flags", json!(l.flags));
    Value::Object(m)
}

fn attributes_json(kvs: &[KeyValue]) -> Value {
    Value::Array(kvs.iter().map(key_value_json).collect())
}

fn key_value_json(kv: &KeyValue) -> Value {
    let mut m = Map::new();
    put(&mut m, "key", json!(kv.key));
    m.insert(
        "value".into(),
        any_value_json(kv.value.as_ref().unwrap_or(&AnyValue::default())),
    );
    Value::Object(m)
}

fn any_value_json(v: &AnyValue) -> Value {
    let mut m = Map::new();
    match &v.value {
        Some(any_value::Value::StringValue(s)) => {
            m.insert("stringValue".into(), json!(s));
        }
        Some(any_value::Value::BoolValue(b)) => {
            m.insert("boolValue".into(), json!(b));
        }
        Some(any_value::Value::IntValue(i)) => {
            m.insert("intValue".into(), int64(i));
        }
        Some(any_value::Value::DoubleValue(d)) => {
            let value = match serde_json::Number::from_f64(*d) {
                Some(n) => Value::Number(n),
                None if d.is_nan() => json!("NaN"),
                None if *d > 0.0 => json!("Infinity"),
                None => json!("-Infinity"),
            };
            m.insert("doubleValue".into(), value);
        }
        Some(any_value::Value::ArrayValue(a)) => {
            let mut inner = Map::new();
            put(
                &mut inner,
                "values",
                Value::Array(a.values.iter().map(any_value_json).collect()),
            );
            m.insert("arrayValue".into(), Value::Object(inner));
        }
        Some(any_value::Value::KvlistValue(kvs)) => {
            let mut inner = Map::new();
            put(&mut inner, "values", attributes_json(&kvs.values));
            m.insert("kvlistValue".into(), Value::Object(inner));
        }
        Some(any_value::Value::BytesValue(b)) => {
            m.insert("bytesValue".into(), json!(crate::attr::base64(b)));
        }
        Some(any_value::Value::StringValueStrindex(i)) => {
            m.insert("stringValueStrindex".into(), json!(i));
        }
        None => {}
    }
    Value::Object(m)
}

/// Reads a `TracesData` object (`{"resourceSpans": […]}`) into spans.
pub fn read_traces_data(data: &Value) -> Result<Vec<StoredSpan>, String> {
    let Some(list) = data.get("resourceSpans") else {
        return if data.is_object() {
            Ok(Vec::new())
        } else {
            Err("not an OTLP TracesData object".into())
        };
    };
    let mut list = list.clone();
    finite_doubles(&mut list);
    let groups: Vec<ResourceSpans> =
        serde_json::from_value(list).map_err(|e| format!("not OTLP-JSON resourceSpans: {e}"))?;
    let mut out = Vec::new();
    for rs in groups {
        let resource = Arc::new(rs.resource.unwrap_or_default());
        let service: Arc<str> = Arc::from(service_of(&resource));
        for ss in rs.scope_spans {
            let scope = Arc::new(ss.scope.unwrap_or_default());
            out.extend(ss.spans.into_iter().map(|span| StoredSpan {
                service: service.clone(),
                resource: resource.clone(),
                scope: scope.clone(),
                span,
            }));
        }
    }
    Ok(out)
}

/// The resource's `service.name` (what Jaeger shows as the service).
pub fn service_of(resource: &Resource) -> String {
    resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .map(|kv| crate::attr::value_text(kv.value.as_ref()))
        .unwrap_or_default()
}

/// `"doubleValue": "NaN"` (and the infinities) is valid OTLP-JSON, but a
/// JSON number cannot hold it: such a value is kept as its text.
fn finite_doubles(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let text = match map.get("doubleValue") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            if let Some(text) = text {
                map.remove("doubleValue");
                match text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Some(n) => map.insert("doubleValue".into(), Value::Number(n)),
                    None => map.insert("stringValue".into(), Value::String(text)),
                };
            }
            map.values_mut().for_each(finite_doubles);
        }
        Value::Array(list) => list.iter_mut().for_each(finite_doubles),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The span of Jaeger's apiv3 snapshots (`makeTestTrace` in gateway_test.go).
    fn snapshot_span() -> StoredSpan {
        StoredSpan {
            service: Arc::from(""),
            resource: Arc::new(Resource::default()),
            scope: Arc::new(InstrumentationScope::default()),
            span: Span {
                trace_id: {
                    let mut id = vec![0; 16];
                    id[15] = 1;
                    id
                },
                span_id: vec![0, 0, 0, 0, 0, 0, 0, 2],
                name: "foobar".into(),
                kind: 2,
                status: Some(Status {
                    code: 2,
                    message: String::new(),
                }),
                ..Default::default()
            },
        }
    }

    #[test]
    fn written_as_jaegers_snapshot() {
        let ours = json!({ "result": traces_data(&[snapshot_span()]) });
        let theirs: Value =
            serde_json::from_str(include_str!("../fixtures/jaeger/apiv3/GetTrace.json")).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn read_back_from_jaegers_snapshot() {
        let theirs: Value =
            serde_json::from_str(include_str!("../fixtures/jaeger/apiv3/FindTraces.json")).unwrap();
        let spans = read_traces_data(&theirs["result"]).unwrap();
        assert_eq!(spans, vec![snapshot_span()]);
    }

    #[test]
    fn every_value_type_round_trips() {
        let kv = |key: &str, value| KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        };
        let mut s = snapshot_span();
        s.span.attributes = vec![
            kv("s", any_value::Value::StringValue("x".into())),
            kv("b", any_value::Value::BoolValue(false)),
            kv("i", any_value::Value::IntValue(i64::MIN)),
            kv("d", any_value::Value::DoubleValue(0.5)),
            kv(
                "bytes",
                any_value::Value::BytesValue(vec![0, 0, 0x30, 0x39]),
            ),
            kv(
                "a",
                any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![AnyValue {
                        value: Some(any_value::Value::IntValue(1)),
                    }],
                }),
            ),
        ];
        s.span.start_time_unix_nano = 1_706_678_909_209_712_000;
        s.span.end_time_unix_nano = 1_706_678_909_209_835_000;
        s.span.events = vec![span::Event {
            time_unix_nano: 5,
            name: "e".into(),
            ..Default::default()
        }];
        let written = traces_data(std::slice::from_ref(&s));
        let span = &written["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["startTimeUnixNano"], "1706678909209712000");
        assert_eq!(
            span["attributes"][2]["value"],
            json!({"intValue": i64::MIN.to_string()})
        );
        assert_eq!(
            span["attributes"][4]["value"],
            json!({"bytesValue": "AAAwOQ=="})
        );
        assert_eq!(span["events"][0], json!({"timeUnixNano": "5", "name": "e"}));
        assert!(span.get("parentSpanId").is_none() && span.get("links").is_none());
        assert_eq!(read_traces_data(&written).unwrap(), vec![s]);
    }

    #[test]
    fn non_finite_doubles_are_written_and_read() {
        let mut s = snapshot_span();
        s.span.attributes = vec![KeyValue {
            key: "nan".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::DoubleValue(f64::NAN)),
            }),
            ..Default::default()
        }];
        let written = traces_data(&[s]);
        let attr = &written["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][0];
        assert_eq!(attr["value"], json!({"doubleValue": "NaN"}));
        let read = read_traces_data(&written).unwrap();
        assert_eq!(
            crate::attr::value_text(read[0].span.attributes[0].value.as_ref()),
            "NaN"
        );
        assert!(read_traces_data(&json!([])).is_err());
        assert_eq!(read_traces_data(&json!({})).unwrap(), vec![]);
    }
}
