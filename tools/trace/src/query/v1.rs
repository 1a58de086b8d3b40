//! Jaeger's v1 query API (`cmd/jaeger/internal/extension/jaegerquery/
//! internal/http_handler.go` and `query_parser.go` in v2.20): every answer in
//! the envelope `{data,total,limit,offset,errors}`, traces in the v1 JSON of
//! [`crate::model`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::model::{Envelope, EnvelopeError, Trace};
use crate::search::SpanQuery;
use crate::store::Store;
use crate::time_text::parse_go_duration;
use crate::trace_id::TraceId;

/// Jaeger's default search window when `start` is not given.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(48 * 3600);
const DEFAULT_LIMIT: usize = 100;

/// The v1 routes (Jaeger ≤ v2.20; later releases keep only `/api/traces/{id}`).
pub fn routes() -> axum::Router<Arc<Store>> {
    axum::Router::new()
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(operations))
        .route("/api/operations", get(operations_by_kind))
        .route("/api/traces", get(search))
        .route("/api/traces/{trace_id}", get(trace))
}

/// Every error of the v1 API, in Jaeger's error envelope.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("trace not found")]
    TraceNotFound,
    #[error("{0}")]
    BadRequest(String),
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::TraceNotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        let body: Envelope<()> = Envelope {
            data: None,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![EnvelopeError {
                code: i64::from(status.as_u16()),
                msg: self.to_string(),
                trace_id: None,
            }]),
        };
        (status, Json(body)).into_response()
    }
}

async fn services(State(store): State<Arc<Store>>) -> Json<Envelope<Vec<String>>> {
    let names = store.services();
    let total = names.len() as i64;
    Json(Envelope::data(names, total))
}

async fn operations(
    State(store): State<Arc<Store>>,
    Path(service): Path<String>,
) -> Json<Envelope<Vec<String>>> {
    let ops = store.operations(&service);
    let total = ops.len() as i64;
    Json(Envelope::data(ops, total))
}

/// `GET /api/operations?service=X[&spanKind=server]`: `[{name, spanKind}]`.
async fn operations_by_kind(
    State(store): State<Arc<Store>>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Envelope<Vec<serde_json::Value>>>, QueryError> {
    let service = params
        .get("service")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| QueryError::BadRequest("parameter 'service' is required".into()))?;
    let wanted = params.get("spanKind").map(String::as_str).unwrap_or("");
    let ops: Vec<_> = store
        .operations_with_kind(service)
        .into_iter()
        .filter(|op| wanted.is_empty() || op.span_kind == wanted)
        .map(|op| json!({"name": op.name, "spanKind": op.span_kind}))
        .collect();
    let total = ops.len() as i64;
    Ok(Json(Envelope::data(ops, total)))
}

/// `GET /api/traces/{traceID}[?raw=true]`.
async fn trace(
    State(store): State<Arc<Store>>,
    Path(trace_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Envelope<Vec<Trace>>>, QueryError> {
    let id = TraceId::parse(&trace_id).map_err(|e| QueryError::BadRequest(e.to_string()))?;
    let spans = super::trace_spans(&store, id, raw(&params)?).ok_or(QueryError::TraceNotFound)?;
    Ok(Json(Envelope::data(
        vec![crate::jaeger::trace(id, &spans)],
        0,
    )))
}

fn raw(params: &[(String, String)]) -> Result<bool, QueryError> {
    match one(params, "raw") {
        None => Ok(false),
        Some(v) => super::parse_go_bool(v)
            .ok_or_else(|| QueryError::BadRequest(format!("unable to parse param 'raw': {v:?}"))),
    }
}

/// `GET /api/traces`: Jaeger's search (v2.20 `query_parser.go`).
async fn search(
    State(store): State<Arc<Store>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Envelope<Vec<Trace>>>, QueryError> {
    let ids: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "traceID")
        .map(|(_, v)| v.as_str())
        .collect();
    if !ids.is_empty() {
        // Multi-get: found traces in `data`, a missing one as an error entry.
        let mut traces = Vec::new();
        let mut errors = Vec::new();
        for text in ids {
            let id = TraceId::parse(text).map_err(|e| QueryError::BadRequest(e.to_string()))?;
            match super::trace_spans(&store, id, raw(&params)?) {
                Some(spans) => traces.push(crate::jaeger::trace(id, &spans)),
                None => errors.push(EnvelopeError {
                    code: 404,
                    msg: "trace not found".into(),
                    trace_id: Some(id.jaeger()),
                }),
            }
        }
        return Ok(Json(Envelope {
            data: Some(traces),
            total: 0,
            limit: 0,
            offset: 0,
            errors: (!errors.is_empty()).then_some(errors),
        }));
    }
    let query = parse_search(&params, SystemTime::now()).map_err(QueryError::BadRequest)?;
    let traces = super::search(&store, &query, raw(&params)?)
        .into_iter()
        .map(|(id, spans)| crate::jaeger::trace(id, &spans))
        .collect();
    Ok(Json(Envelope::data(traces, 0)))
}

fn one<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Parses the search parameters; errors are worded like Jaeger's.
pub fn parse_search(params: &[(String, String)], now: SystemTime) -> Result<SpanQuery, String> {
    let service = one(params, "service")
        .ok_or("parameter 'service' is required")?
        .to_owned();
    let micros = |key: &str| -> Result<Option<u64>, String> {
        one(params, key)
            .map(|v| {
                v.parse::<u64>()
                    .map(|us| us.saturating_mul(1_000))
                    .map_err(|_| format!("unable to parse param '{key}': {v:?} is not microseconds since the epoch"))
            })
            .transpose()
    };
    let duration = |key: &str| -> Result<Option<u64>, String> {
        one(params, key)
            .map(|v| {
                parse_go_duration(v).map_err(|e| format!("unable to parse param '{key}': {e}"))
            })
            .transpose()
    };
    let now_nanos = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let start_min = micros("start")?
        .unwrap_or_else(|| now_nanos.saturating_sub(DEFAULT_LOOKBACK.as_nanos() as u64));
    // No `end` means now; spans from a slightly fast clock are still found.
    let start_max = micros("end")?;
    let duration_min = duration("minDuration")?;
    let duration_max = duration("maxDuration")?;
    if let (Some(min), Some(max)) = (duration_min, duration_max)
        && max < min
    {
        return Err("'maxDuration' should be greater than 'minDuration'".into());
    }
    let limit = match one(params, "limit") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("unable to parse param 'limit': {v:?}"))?,
        None => DEFAULT_LIMIT,
    };
    let mut tags = BTreeMap::new();
    for (key, value) in params {
        match key.as_str() {
            "tag" => {
                let (k, v) = value.split_once(':').ok_or_else(|| {
                    format!("malformed 'tag' parameter, expecting key:value, got {value:?}")
                })?;
                tags.insert(k.to_owned(), v.to_owned());
            }
            "tags" if !value.is_empty() => {
                let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(value)
                    .map_err(|e| {
                        format!("malformed 'tags' parameter, expecting JSON object: {e}")
                    })?;
                for (k, v) in map {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    tags.insert(k, text);
                }
            }
            _ => {}
        }
    }
    Ok(SpanQuery {
        service: Some(service),
        operation: one(params, "operation").map(str::to_owned),
        tags,
        start_min: Some(start_min),
        start_max,
        duration_min,
        duration_max,
        limit: if limit == 0 { DEFAULT_LIMIT } else { limit },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::params;

    #[test]
    fn search_parameters_like_jaeger() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let q = parse_search(
            &params(&[
                ("service", "svc"),
                ("operation", "GET /x"),
                ("tag", "http.route:/x"),
                ("tags", r#"{"error":true,"user":"u1"}"#),
                ("limit", "5"),
                ("start", "10"),
                ("end", "20"),
                ("minDuration", "1ms"),
                ("maxDuration", "2s"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("svc"));
        assert_eq!(q.operation.as_deref(), Some("GET /x"));
        assert_eq!(q.tags["http.route"], "/x");
        assert_eq!(q.tags["error"], "true");
        assert_eq!(q.tags["user"], "u1");
        assert_eq!((q.start_min, q.start_max), (Some(10_000), Some(20_000)));
        assert_eq!(
            (q.duration_min, q.duration_max),
            (Some(1_000_000), Some(2_000_000_000))
        );
        assert_eq!(q.limit, 5);

        let defaults = parse_search(&params(&[("service", "svc")]), now).unwrap();
        assert_eq!(defaults.limit, 100);
        assert_eq!(
            defaults.start_min,
            Some((1_000_000 - 48 * 3600) * 1_000_000_000)
        );

        assert!(
            parse_search(&params(&[]), now)
                .unwrap_err()
                .contains("'service' is required")
        );
        assert!(
            parse_search(
                &params(&[
                    ("service", "s"),
                    ("minDuration", "2s"),
                    ("maxDuration", "1s")
                ]),
                now
            )
            .is_err()
        );
        assert!(parse_search(&params(&[("service", "s"), ("tag", "nocolon")]), now).is_err());
    }
}
