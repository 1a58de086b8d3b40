//! Jaeger's v1 query JSON (`internal/uimodel/model.go` in jaegertracing/jaeger):
//! what `serve` writes and what the client reads, from `serve` or a real Jaeger.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The envelope of every v1 response (`structuredResponse`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub data: Option<T>,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
    #[serde(default)]
    pub errors: Option<Vec<EnvelopeError>>,
}

impl<T> Envelope<T> {
    pub fn data(data: T, total: i64) -> Self {
        Self {
            data: Some(data),
            total,
            limit: 0,
            offset: 0,
            errors: None,
        }
    }
}

/// One entry of the envelope's `errors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub msg: String,
    #[serde(rename = "traceID", default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<Span>,
    #[serde(default)]
    pub processes: BTreeMap<String, Process>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
    #[serde(rename = "operationName")]
    pub operation_name: String,
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Microseconds since the Unix epoch.
    #[serde(rename = "startTime")]
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    #[serde(default)]
    pub logs: Vec<Log>,
    #[serde(rename = "processID", default)]
    pub process_id: String,
    /// Only in the raw/embedded form; normally the trace's `processes` has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefType {
    #[serde(rename = "CHILD_OF")]
    ChildOf,
    #[serde(rename = "FOLLOWS_FROM")]
    FollowsFrom,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(rename = "refType")]
    pub ref_type: RefType,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A typed tag: `type` is string, bool, int64, float64 or binary; an int64
/// beyond ±2^53 travels as a string, binary as base64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(rename = "type", default)]
    pub value_type: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

impl KeyValue {
    pub fn string(key: &str, value: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value_type: "string".into(),
            value: serde_json::Value::String(value.into()),
        }
    }

    pub fn bool(key: &str, value: bool) -> Self {
        Self {
            key: key.to_owned(),
            value_type: "bool".into(),
            value: serde_json::Value::Bool(value),
        }
    }

    /// The value as text (a string without quotes).
    pub fn text(&self) -> String {
        match &self.value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Log {
    /// Microseconds since the Unix epoch.
    pub timestamp: u64,
    #[serde(default)]
    pub fields: Vec<KeyValue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Process {
    #[serde(rename = "serviceName")]
    pub service_name: String,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

impl Span {
    pub fn tag(&self, key: &str) -> Option<&KeyValue> {
        self.tags.iter().find(|t| t.key == key)
    }

    /// The parent: the first CHILD_OF reference (Jaeger puts it first), or
    /// the deprecated `parentSpanID` form is not used by v2.
    pub fn parent_span_id(&self) -> Option<&str> {
        self.references
            .iter()
            .find(|r| r.ref_type == RefType::ChildOf)
            .map(|r| r.span_id.as_str())
    }

    pub fn end_time(&self) -> u64 {
        self.start_time.saturating_add(self.duration)
    }
}

impl Trace {
    /// The service of a span, through `processes` or the embedded process.
    pub fn service_of<'a>(&'a self, span: &'a Span) -> &'a str {
        self.processes
            .get(&span.process_id)
            .or(span.process.as_ref())
            .map(|p| p.service_name.as_str())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jaeger's own fixture (`internal/uimodel/converter/v1/json/fixtures/ui_01.json`, 3 of 5 spans).
    #[test]
    fn parses_jaegers_ui_fixture() {
        let trace: Trace =
            serde_json::from_str(include_str!("../fixtures/jaeger/ui_01.json")).unwrap();
        assert_eq!(trace.trace_id, "0000000000000001");
        assert_eq!(trace.spans.len(), 3);
        let first = &trace.spans[0];
        assert_eq!(first.start_time, 1485467191639875);
        assert_eq!(first.duration, 5);
        assert_eq!(trace.service_of(first), "service-x");
        assert_eq!(
            first.tag("peer.ipv4").unwrap().value,
            serde_json::json!(23456)
        );
        assert_eq!(
            first.tag("javascript_limit").unwrap().text(),
            "9223372036854775222"
        );
        assert_eq!(first.tag("blob").unwrap().value_type, "binary");
        assert_eq!(first.parent_span_id(), None);
        assert_eq!(trace.spans[1].parent_span_id(), Some("0000000000000002"));
        // A foreign CHILD_OF comes first here; the FOLLOWS_FROM is a link.
        let third = &trace.spans[2];
        assert_eq!(third.references.len(), 3);
        assert_eq!(third.references[2].ref_type, RefType::FollowsFrom);
        assert_eq!(
            third.warnings.as_deref(),
            Some(&["some span warning".to_owned()][..])
        );
        assert_eq!(
            trace.warnings.as_deref(),
            Some(&["some trace warning".to_owned()][..])
        );
    }

    /// Jaeger's OTLP-translated output (`jaegerquery/internal/fixture/otlp2jaeger-out.json`).
    #[test]
    fn parses_jaegers_otlp_envelope_fixture() {
        let envelope: Envelope<Vec<Trace>> =
            serde_json::from_str(include_str!("../fixtures/jaeger/otlp2jaeger-out.json")).unwrap();
        let traces = envelope.data.unwrap();
        assert!(envelope.errors.is_none());
        let span = &traces[0].spans[0];
        assert_eq!(span.trace_id, "83a9efd15c1c98a977e0711cc93ee28b");
        assert_eq!(span.duration, 123);
        assert_eq!(span.tag("span.kind").unwrap().text(), "server");
        assert_eq!(span.parent_span_id(), Some("909541b92cf05311"));
        assert_eq!(traces[0].service_of(span), "telemetrygen");
    }

    #[test]
    fn parses_jaegers_error_envelope() {
        let body = r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#;
        let envelope: Envelope<Vec<Trace>> = serde_json::from_str(body).unwrap();
        assert!(envelope.data.is_none());
        assert_eq!(envelope.errors.unwrap()[0].code, 404);
    }
}
