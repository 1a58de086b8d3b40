//! The parts of Jaeger's query API (v2.20, port 16686) that `serve` answers,
//! in Jaeger's JSON: the v1 envelope `{data,total,limit,offset,errors}` and
//! the api_v3 OTLP-JSON `{result}` / `{error:{httpCode,message}}`.

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
use crate::store::{SpanQuery, Store};
use crate::trace_id::TraceId;

/// Jaeger's default search window when `start` is not given.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(48 * 3600);
const DEFAULT_LIMIT: usize = 100;

pub fn app(store: Arc<Store>) -> axum::Router {
    axum::Router::new()
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(operations))
        .route("/api/operations", get(operations_by_kind))
        .route("/api/traces", get(search))
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/v3/services", get(v3_services))
        .route("/api/v3/traces/{trace_id}", get(v3_trace))
        .route("/api/autobot/stats", get(stats))
        .with_state(store)
}

/// Every error of the query API, mapped to Jaeger's envelopes in one place.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("trace not found")]
    TraceNotFound,
    #[error("{0}")]
    BadRequest(String),
    /// The api_v3 routes answer in their own error shape.
    #[error("trace not found")]
    V3TraceNotFound,
    #[error("{0}")]
    V3BadRequest(String),
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let (status, v3) = match &self {
            Self::TraceNotFound => (StatusCode::NOT_FOUND, false),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, false),
            Self::V3TraceNotFound => (StatusCode::NOT_FOUND, true),
            Self::V3BadRequest(_) => (StatusCode::BAD_REQUEST, true),
        };
        let message = self.to_string();
        if v3 {
            let body = json!({"error": {"httpCode": status.as_u16(), "message": message}});
            return (status, Json(body)).into_response();
        }
        let body: Envelope<()> = Envelope {
            data: None,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![EnvelopeError {
                code: i64::from(status.as_u16()),
                msg: message,
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
        .map(|(name, kind)| (name, kind_name(kind)))
        .filter(|(_, kind)| wanted.is_empty() || *kind == wanted)
        .map(|(name, kind)| json!({"name": name, "spanKind": kind}))
        .collect();
    let total = ops.len() as i64;
    Ok(Json(Envelope::data(ops, total)))
}

/// Jaeger's names for OTLP span kinds ("" when unspecified).
fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "",
    }
}

async fn trace(
    State(store): State<Arc<Store>>,
    Path(trace_id): Path<String>,
) -> Result<Json<Envelope<Vec<Trace>>>, QueryError> {
    let id = TraceId::parse(&trace_id).map_err(|e| QueryError::BadRequest(e.to_string()))?;
    let spans = store.trace(id).ok_or(QueryError::TraceNotFound)?;
    Ok(Json(Envelope::data(
        vec![crate::jaeger::trace(id, &spans)],
        0,
    )))
}

async fn v3_trace(
    State(store): State<Arc<Store>>,
    Path(trace_id): Path<String>,
) -> Result<Json<serde_json::Value>, QueryError> {
    let id = TraceId::parse(&trace_id).map_err(|e| QueryError::V3BadRequest(e.to_string()))?;
    let spans = store.trace(id).ok_or(QueryError::V3TraceNotFound)?;
    Ok(Json(crate::jaeger::otlp_json(&spans)))
}

async fn v3_services(State(store): State<Arc<Store>>) -> Json<serde_json::Value> {
    Json(json!({ "services": store.services() }))
}

async fn stats(State(store): State<Arc<Store>>) -> Json<crate::store::StoreStats> {
    Json(store.stats())
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
            match store.trace(id) {
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
    let traces = store
        .search(&query)
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
        service,
        operation: one(params, "operation").map(str::to_owned),
        tags,
        start_min: Some(start_min),
        start_max,
        duration_min,
        duration_max,
        limit: if limit == 0 { DEFAULT_LIMIT } else { limit },
    })
}

/// A Go duration (`300ms`, `1.5s`, `1m30s`, `2h`, `10us`, `10µs`, `5ns`) in nanoseconds.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration such as 100ms or 1.5s");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * nanos_per_unit;
        rest = &rest[unit_len..];
    }
    Ok(total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_go_duration("1.2s"), Ok(1_200_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("10µs"), Ok(10_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        for bad in ["", "ms", "10", "10 parsecs", "1.2.3s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }

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
        assert_eq!(q.service, "svc");
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
