//! Jaeger's API v3 over HTTP (`cmd/jaeger/internal/extension/jaegerquery/
//! internal/apiv3/http_gateway.go` and `query_parser.go`; messages in
//! jaeger-idl `proto/api_v3/query_service.proto`), answered as Jaeger
//! answers it:
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v3/services` | `{"services":[…]}` |
//! | `GET /api/v3/operations?service=&spanKind=` | `{"operations":[{"name","spanKind"}]}` |
//! | `GET /api/v3/traces/{trace_id}?startTime=&endTime=&rawTraces=` | `{"result":TracesData}` |
//! | `GET /api/v3/traces?query.…` | `{"result":TracesData}`, every found trace |
//! | `GET /api/v3/trace-summaries?query.…` | `{"summaries":[…]}` |
//!
//! Messages go through gogo `jsonpb` in Jaeger, which leaves out empty
//! lists and zero numbers (`{}` when there is no service), writes `fixed64`
//! as a decimal string and names fields in lowerCamelCase. No trace found
//! is a 404; every error is `{"error":{"httpCode":…,"message":…}}` written
//! by Go's `http.Error` (text/plain, a trailing newline).
//!
//! Search parameters: `query.serviceName`, `query.operationName`,
//! `query.startTimeMin`/`query.startTimeMax` (RFC 3339, required),
//! `query.durationMin`/`query.durationMax` (Go durations),
//! `query.searchDepth` (default 100), `query.rawTraces`, `query.attributes`
//! (a JSON object of strings); each also under its snake_case name, which
//! every Jaeger 2.x accepts (`query.service_name`, `query.num_traces`, …).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::search::{SpanQuery, TraceSummary, summarize};
use crate::store::Store;
use crate::time_text::{parse_go_duration, parse_rfc3339};
use crate::trace_id::TraceId;

/// Jaeger's `defaultSearchDepth`.
pub const DEFAULT_SEARCH_DEPTH: usize = 100;

pub fn routes() -> axum::Router<Arc<Store>> {
    axum::Router::new()
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/traces/{trace_id}", get(get_trace))
        .route("/api/v3/trace-summaries", get(find_trace_summaries))
}

/// An API v3 error: `{"error":{"httpCode":…,"message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct V3Error {
    pub status: StatusCode,
    pub message: String,
}

impl V3Error {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn malformed(param: &str, reason: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("malformed parameter {param}: {reason}"))
    }

    /// What Jaeger answers when a search or a trace id finds nothing.
    pub fn no_traces() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: "No traces found".into(),
        }
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        // Go's http.Error: text/plain, nosniff, the body and a newline.
        let body = json!({"error": {"httpCode": self.status.as_u16(), "message": self.message}});
        (
            self.status,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            format!("{body}\n"),
        )
            .into_response()
    }
}

fn json_answer(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `jsonpb` without EmitDefaults: an empty list is left out.
fn list_field(name: &str, values: Vec<Value>) -> Value {
    let mut m = Map::new();
    if !values.is_empty() {
        m.insert(name.to_owned(), Value::Array(values));
    }
    Value::Object(m)
}

async fn services(State(store): State<Arc<Store>>) -> Response {
    let names = store.services().into_iter().map(Value::String).collect();
    json_answer(list_field("services", names))
}

async fn operations(
    State(store): State<Arc<Store>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let service = get_param(&params, &["service"])
        .map(|(_, v)| v)
        .unwrap_or("");
    let kind = get_param(&params, &["spanKind", "span_kind"])
        .map(|(_, v)| v)
        .unwrap_or("");
    let ops = store
        .operations_with_kind(service)
        .into_iter()
        .filter(|op| kind.is_empty() || op.span_kind == kind)
        .map(|op| {
            // An operation of unspecified kind is reported as internal.
            let span_kind = if op.span_kind.is_empty() {
                "internal"
            } else {
                op.span_kind
            };
            json!({"name": op.name, "spanKind": span_kind})
        })
        .collect();
    json_answer(list_field("operations", ops))
}

/// The first of `names` that is set and not empty (canonical name first,
/// then its deprecated aliases), with the name it came under.
fn get_param<'a>(params: &'a [(String, String)], names: &[&'a str]) -> Option<(&'a str, &'a str)> {
    names.iter().find_map(|name| {
        params
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| (*name, v.as_str()))
    })
}

fn bool_param(params: &[(String, String)], names: &[&str]) -> Result<bool, V3Error> {
    match get_param(params, names) {
        None => Ok(false),
        Some((name, v)) => super::parse_go_bool(v)
            .ok_or_else(|| V3Error::malformed(name, format!("{v:?} is not a boolean"))),
    }
}

/// A trace id as Jaeger's `TraceIDFromString` reads it: 1 to 32 hex digits,
/// or base64 (standard or URL-safe, padded or not) of 16 bytes.
pub fn parse_trace_id(text: &str) -> Result<TraceId, V3Error> {
    if let Ok(id) = TraceId::parse(text) {
        return Ok(id);
    }
    text.len()
        .le(&24)
        .then(|| crate::attr::base64_decode(text))
        .flatten()
        .and_then(|bytes| TraceId::from_bytes(&bytes))
        .ok_or_else(|| {
            V3Error::malformed(
                "trace_id",
                format!("{text:?} is neither 32 hex digits nor base64 of 16 bytes"),
            )
        })
}

async fn get_trace(
    State(store): State<Arc<Store>>,
    Path(trace_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, V3Error> {
    let id = parse_trace_id(&trace_id)?;
    for names in [["startTime", "start_time"], ["endTime", "end_time"]] {
        if let Some((name, v)) = get_param(&params, &names) {
            parse_rfc3339(v).map_err(|e| V3Error::malformed(name, e))?;
        }
    }
    let raw = bool_param(&params, &["rawTraces", "raw_traces"])?;
    let spans = super::trace_spans(&store, id, raw).ok_or_else(V3Error::no_traces)?;
    Ok(json_answer(
        json!({ "result": crate::otlp_json::traces_data(&spans) }),
    ))
}

/// The search parameters of `/api/v3/traces` and `/api/v3/trace-summaries`;
/// the second value is `rawTraces`.
pub fn parse_find_traces(params: &[(String, String)]) -> Result<(SpanQuery, bool), V3Error> {
    let text = |names: &[&'static str]| get_param(params, names);
    let service = text(&["query.serviceName", "query.service_name"]).map(|(_, v)| v.to_owned());
    let operation =
        text(&["query.operationName", "query.operation_name"]).map(|(_, v)| v.to_owned());
    let mut query = SpanQuery {
        service,
        operation,
        ..Default::default()
    };
    if let Some((name, v)) = text(&["query.attributes"]) {
        query.tags = serde_json::from_str(v).map_err(|e| {
            V3Error::malformed(name, format!("expected a JSON object of strings: {e}"))
        })?;
    }
    if let Some((name, _)) = text(&["query.filter"]) {
        return Err(V3Error::malformed(
            name,
            "the structured filter is not supported by autobot-trace serve; use query.attributes",
        ));
    }
    let (min, max) = (
        text(&["query.startTimeMin", "query.start_time_min"]),
        text(&["query.startTimeMax", "query.start_time_max"]),
    );
    let (Some((min_name, min)), Some((max_name, max))) = (min, max) else {
        return Err(V3Error::bad_request(
            "query.startTimeMin and query.startTimeMax are required",
        ));
    };
    let min = parse_rfc3339(min).map_err(|e| V3Error::malformed(min_name, e))?;
    let max = parse_rfc3339(max).map_err(|e| V3Error::malformed(max_name, e))?;
    if min >= max {
        return Err(V3Error::bad_request(
            "query.startTimeMin must be before query.startTimeMax",
        ));
    }
    query.start_min = Some(min);
    query.start_max = Some(max);
    query.limit = match text(&[
        "query.searchDepth",
        "query.search_depth",
        "query.num_traces",
    ]) {
        None => DEFAULT_SEARCH_DEPTH,
        Some((name, v)) => match v.parse::<i64>() {
            Ok(n) if n > 0 => n as usize,
            Ok(_) => {
                return Err(V3Error::bad_request(
                    "search depth must be greater than 0 and less than max traces",
                ));
            }
            Err(e) => return Err(V3Error::malformed(name, e)),
        },
    };
    for (names, slot) in [
        (
            ["query.durationMin", "query.duration_min"],
            &mut query.duration_min,
        ),
        (
            ["query.durationMax", "query.duration_max"],
            &mut query.duration_max,
        ),
    ] {
        if let Some((name, v)) = text(&names) {
            *slot = Some(parse_go_duration(v).map_err(|e| V3Error::malformed(name, e))?);
        }
    }
    let raw = bool_param(params, &["query.rawTraces", "query.raw_traces"])?;
    Ok((query, raw))
}

async fn find_traces(
    State(store): State<Arc<Store>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, V3Error> {
    let (query, raw) = parse_find_traces(&params)?;
    let found = super::search(&store, &query, raw);
    if found.is_empty() {
        return Err(V3Error::no_traces());
    }
    // Jaeger concatenates the traces' resourceSpans into one TracesData.
    let resource_spans: Vec<Value> = found
        .iter()
        .flat_map(|(_, spans)| match crate::otlp_json::traces_data(spans) {
            Value::Object(mut m) => match m.remove("resourceSpans") {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
        .collect();
    Ok(json_answer(
        json!({ "result": { "resourceSpans": resource_spans } }),
    ))
}

async fn find_trace_summaries(
    State(store): State<Arc<Store>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, V3Error> {
    // Summaries always use adjusted data; rawTraces has no effect (as in Jaeger).
    let (query, _) = parse_find_traces(&params)?;
    let summaries = super::search(&store, &query, false)
        .iter()
        .map(|(id, spans)| summary_json(&summarize(*id, spans)))
        .collect();
    Ok(json_answer(list_field("summaries", summaries)))
}

/// A `TraceSummary` message as `jsonpb` writes it (zeros left out, `fixed64`
/// times as strings).
pub fn summary_json(s: &TraceSummary) -> Value {
    let mut m = Map::new();
    let put = |m: &mut Map<String, Value>, key: &str, value: Value| {
        let zero = matches!(&value, Value::String(t) if t.is_empty() || t == "0")
            || value.as_u64() == Some(0)
            || matches!(&value, Value::Array(a) if a.is_empty());
        if !zero {
            m.insert(key.to_owned(), value);
        }
    };
    put(&mut m, "traceId", json!(s.trace_id.full()));
    put(&mut m, "rootServiceName", json!(s.root_service));
    put(&mut m, "rootOperationName", json!(s.root_operation));
    put(
        &mut m,
        "minStartTimeUnixNano",
        json!(s.min_start_unix_nano.to_string()),
    );
    put(
        &mut m,
        "maxEndTimeUnixNano",
        json!(s.max_end_unix_nano.to_string()),
    );
    put(&mut m, "spanCount", json!(s.span_count));
    put(&mut m, "errorSpanCount", json!(s.error_span_count));
    put(&mut m, "orphanSpanCount", json!(s.orphan_span_count));
    let services = s
        .services
        .iter()
        .map(|svc| {
            let mut o = Map::new();
            put(&mut o, "name", json!(svc.name));
            put(&mut o, "spanCount", json!(svc.span_count));
            put(&mut o, "errorSpanCount", json!(svc.error_span_count));
            Value::Object(o)
        })
        .collect();
    put(&mut m, "services", Value::Array(services));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::params;

    #[test]
    fn camel_case_and_snake_case_parameters() {
        let camel = parse_find_traces(&params(&[
            ("query.serviceName", "svc"),
            ("query.operationName", "GET /x"),
            ("query.startTimeMin", "2026-08-20T00:00:00Z"),
            ("query.startTimeMax", "2026-08-20T01:00:00Z"),
            ("query.durationMin", "1ms"),
            ("query.durationMax", "2s"),
            ("query.searchDepth", "5"),
            ("query.attributes", r#"{"http.route":"/x","error":"true"}"#),
            ("query.rawTraces", "true"),
        ]))
        .unwrap();
        let snake = parse_find_traces(&params(&[
            ("query.service_name", "svc"),
            ("query.operation_name", "GET /x"),
            ("query.start_time_min", "2026-08-20T00:00:00Z"),
            ("query.start_time_max", "2026-08-20T01:00:00Z"),
            ("query.duration_min", "1ms"),
            ("query.duration_max", "2s"),
            ("query.num_traces", "5"),
            ("query.attributes", r#"{"http.route":"/x","error":"true"}"#),
            ("query.raw_traces", "1"),
        ]))
        .unwrap();
        assert_eq!(camel, snake);
        let (q, raw) = camel;
        assert!(raw);
        assert_eq!(q.service.as_deref(), Some("svc"));
        assert_eq!(q.limit, 5);
        assert_eq!(q.tags["error"], "true");
        assert_eq!(q.duration_min, Some(1_000_000));
        assert_eq!(
            q.start_max.unwrap() - q.start_min.unwrap(),
            3_600_000_000_000
        );
    }

    #[test]
    fn bad_parameters_are_400s_that_say_why() {
        let base = [
            ("query.start_time_min", "2026-08-20T00:00:00Z"),
            ("query.start_time_max", "2026-08-20T01:00:00Z"),
        ];
        let err = |extra: &[(&str, &str)]| {
            let mut p = params(&base);
            p.extend(params(extra));
            parse_find_traces(&p).unwrap_err()
        };
        assert_eq!(
            parse_find_traces(&params(&[("query.service_name", "svc")]))
                .unwrap_err()
                .message,
            "query.startTimeMin and query.startTimeMax are required"
        );
        assert!(
            err(&[("query.num_traces", "many")])
                .message
                .contains("query.num_traces")
        );
        assert!(
            err(&[("query.searchDepth", "0")])
                .message
                .contains("greater than 0")
        );
        assert!(
            err(&[("query.duration_min", "fast")])
                .message
                .contains("query.duration_min")
        );
        assert!(
            err(&[("query.attributes", "[1]")])
                .message
                .contains("query.attributes")
        );
        assert!(
            err(&[("query.raw_traces", "yes")])
                .message
                .contains("query.raw_traces")
        );
        assert!(
            err(&[("query.filter", "{}")])
                .message
                .contains("not supported")
        );
        let swapped = parse_find_traces(&params(&[
            ("query.start_time_min", "2026-08-20T01:00:00Z"),
            ("query.start_time_max", "2026-08-20T00:00:00Z"),
        ]))
        .unwrap_err();
        assert_eq!(swapped.status, StatusCode::BAD_REQUEST);
        assert!(swapped.message.contains("must be before"));
    }

    #[test]
    fn trace_ids_in_hex_or_base64() {
        assert_eq!(parse_trace_id("1").unwrap(), TraceId(1));
        assert_eq!(
            parse_trace_id("AAAAAAAAAAAAAAAAAAAAAQ==").unwrap(),
            TraceId(1)
        );
        assert_eq!(
            parse_trace_id("EjRWeJq83vD-3LqYdlQyEA").unwrap(),
            TraceId(0x123456789ABCDEF0FEDCBA9876543210)
        );
        assert!(parse_trace_id("zz").is_err());
    }

    /// Jaeger's FindTraceSummaries snapshot, from the same two spans.
    #[test]
    fn summaries_as_jaegers_snapshot() {
        use crate::stored::StoredSpan;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::{Span, Status};
        let resource = Arc::new(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("frontend".into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
        let span = |id: u8, parent: u8, name: &str, start: u64, end: u64, error: bool| StoredSpan {
            service: Arc::from("frontend"),
            resource: resource.clone(),
            scope: Arc::default(),
            span: Span {
                trace_id: TraceId(1).to_bytes().to_vec(),
                span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
                parent_span_id: if parent == 0 {
                    vec![]
                } else {
                    vec![0, 0, 0, 0, 0, 0, 0, parent]
                },
                name: name.into(),
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                status: error.then(|| Status {
                    code: 2,
                    message: String::new(),
                }),
                ..Default::default()
            },
        };
        let spans = [
            span(
                1,
                0,
                "HTTP GET /",
                1_000_000_000_000,
                1_001_000_000_000,
                false,
            ),
            span(2, 1, "", 1_000_000_000_100, 1_000_000_000_900, true),
        ];
        let ours = list_field(
            "summaries",
            vec![summary_json(&summarize(TraceId(1), &spans))],
        );
        let theirs: Value = serde_json::from_str(include_str!(
            "../../fixtures/jaeger/apiv3/FindTraceSummaries.json"
        ))
        .unwrap();
        assert_eq!(ours, theirs);
    }
}
