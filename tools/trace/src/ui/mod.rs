//! The web UI `serve` answers on its query port, next to the query API:
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `/search` | search: service, operation, tags, durations, time range; the result list |
//! | `GET /trace/{trace_id}` | one trace: waterfall, critical path, span details, related spans |
//! | `GET /graph` | the service graph: who calls whom, calls and errors per edge |
//! | `GET /ui/app.js`, `/ui/style.css` | the page's script and style |
//! | `GET /api/autobot/search?…` | the result list as JSON ([`search`]) |
//! | `GET /api/autobot/traces/{trace_id}[?expect=a,b]` | one trace as the page shows it ([`view`]) |
//! | `GET /api/autobot/service-graph?…` | the service graph as JSON ([`graph`]) |
//!
//! The pages are one HTML shell and one script, plain JavaScript without a
//! build step, compiled into the binary (`include_str!`): the UI works with
//! no network beyond the query port, and what is served is what is in the
//! repository (docs/trace-tool.md, "Web UI", says why). The script fills the
//! page from the JSON routes, writing span data only as text (a span's
//! name or attribute is never parsed as HTML), under a Content-Security-Policy
//! that allows nothing but this origin.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::search::{SpanQuery, summarize};
use crate::store::Store;
use crate::time_text::parse_go_duration;
use crate::trace_id::TraceId;

pub mod completeness;
pub mod critical_path;
pub mod graph;
pub mod view;

#[cfg(test)]
mod test_spans;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// What the pages may load and connect to: this origin only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Search results unless `limit` says otherwise (Jaeger UI's default).
pub const DEFAULT_LIMIT: usize = 20;
/// The most search results one answer holds (Jaeger UI's largest limit).
pub const MAX_LIMIT: usize = 1500;
/// The time range of a search or a graph unless told otherwise.
pub const DEFAULT_LOOKBACK: &str = "1h";
/// The service graph reads at most this many of the newest traces.
pub const GRAPH_MAX_TRACES: usize = 10_000;

pub fn routes() -> axum::Router<Arc<Store>> {
    axum::Router::new()
        .route("/", get(page))
        .route("/search", get(page))
        .route("/trace/{trace_id}", get(page))
        .route("/graph", get(page))
        .route("/ui/app.js", get(app_js))
        .route("/ui/style.css", get(style_css))
        .route("/api/autobot/search", get(search))
        .route("/api/autobot/traces/{trace_id}", get(trace))
        .route("/api/autobot/service-graph", get(service_graph))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Every page is the same shell; the script reads the path.
async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// A bad parameter: 400 `{"error": "…"}` naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UiError {
    #[error("{0}")]
    BadParameter(String),
    #[error("trace {0} not found")]
    TraceNotFound(String),
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::BadParameter(_) => StatusCode::BAD_REQUEST,
            Self::TraceNotFound(_) => StatusCode::NOT_FOUND,
        };
        (status, axum::Json(json!({"error": self.to_string()}))).into_response()
    }
}

fn bad(param: &str, reason: impl std::fmt::Display) -> UiError {
    UiError::BadParameter(format!("{param}: {reason}"))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// `key=value` pairs separated by spaces, as Jaeger UI's tags field takes
/// them (logfmt): a value with spaces in double quotes, `\"` and `\\`
/// inside them.
pub fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!("expected key=value, got {key:?}"));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("{key}: unterminated quoted value")),
                    },
                    Some(c) => value.push(c),
                    None => return Err(format!("{key}: unterminated quoted value")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// A lookback: a Go duration (`15m`, `1h30m`) or whole days (`2d`).
fn parse_lookback(text: &str) -> Result<u64, String> {
    if let Some(days) = text.strip_suffix('d')
        && let Ok(days) = days.parse::<u64>()
    {
        return days
            .checked_mul(86_400_000_000_000)
            .ok_or_else(|| format!("{text:?} is too long"));
    }
    parse_go_duration(text)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `start`/`end` in microseconds since the epoch (Jaeger UI's URLs), else
/// `lookback` before now: (start, end) in nanoseconds.
fn time_range(params: &[(String, String)], now: u64) -> Result<(u64, u64), UiError> {
    let micros = |name: &str| -> Result<Option<u64>, UiError> {
        param(params, name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(name, format!("{v:?} is not microseconds since the epoch")))
                    .and_then(|us| {
                        us.checked_mul(1_000)
                            .ok_or_else(|| bad(name, format!("{v:?} is too large")))
                    })
            })
            .transpose()
    };
    let lookback = param(params, "lookback").unwrap_or(DEFAULT_LOOKBACK);
    let (start, end) = (micros("start")?, micros("end")?);
    let end = end.unwrap_or(now);
    let start = match start {
        Some(start) => start,
        None => {
            let span = parse_lookback(lookback).map_err(|e| bad("lookback", e))?;
            end.saturating_sub(span)
        }
    };
    if start >= end {
        return Err(bad("start", "must be before end"));
    }
    Ok((start, end))
}

/// The services a trace must hold to be whole (`expect=a,b`, as `check --services`).
fn expected_services(params: &[(String, String)]) -> Vec<String> {
    param(params, "expect")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn limit(params: &[(String, String)], default: usize, max: usize) -> Result<usize, UiError> {
    match param(params, "limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad("limit", format!("{v:?} is not between 1 and {max}"))),
        },
    }
}

/// The UI's search parameters as a [`SpanQuery`]: `service`, `operation`,
/// `tags` (logfmt), `minDuration`, `maxDuration` (Go durations), `start`,
/// `end` (µs) or `lookback`, `limit`.
pub fn parse_search(params: &[(String, String)], now: u64) -> Result<SpanQuery, UiError> {
    let mut query = SpanQuery {
        service: param(params, "service").map(str::to_owned),
        operation: param(params, "operation").map(str::to_owned),
        limit: limit(params, DEFAULT_LIMIT, MAX_LIMIT)?,
        ..Default::default()
    };
    if let Some(tags) = param(params, "tags") {
        query.tags = parse_tags(tags)
            .map_err(|e| bad("tags", e))?
            .into_iter()
            .collect();
    }
    for (name, slot) in [
        ("minDuration", &mut query.duration_min),
        ("maxDuration", &mut query.duration_max),
    ] {
        if let Some(v) = param(params, name) {
            *slot = Some(parse_go_duration(v).map_err(|e| bad(name, e))?);
        }
    }
    if let (Some(min), Some(max)) = (query.duration_min, query.duration_max)
        && min > max
    {
        return Err(bad("minDuration", "is more than maxDuration"));
    }
    let (start, end) = time_range(params, now)?;
    query.start_min = Some(start);
    query.start_max = Some(end);
    Ok(query)
}

/// One search result as the list shows it.
pub fn result_json(id: TraceId, spans: &[crate::stored::StoredSpan], expected: &[String]) -> Value {
    let s = summarize(id, spans);
    json!({
        "traceId": id.full(),
        "rootService": s.root_service,
        "rootOperation": s.root_operation,
        "startMicros": s.min_start_unix_nano / 1_000,
        "durationNanos": s.max_end_unix_nano.saturating_sub(s.min_start_unix_nano),
        "spanCount": s.span_count,
        "errorSpanCount": s.error_span_count,
        "orphanSpanCount": s.orphan_span_count,
        "services": s.services.iter().map(|svc| json!({
            "name": svc.name,
            "spanCount": svc.span_count,
            "errorSpanCount": svc.error_span_count,
        })).collect::<Vec<_>>(),
        "completeness": completeness::Completeness::of(spans, expected).to_json(),
    })
}

/// What `GET /api/autobot/search` answers: the found traces, newest first.
pub fn search_answer(
    store: &Store,
    params: &[(String, String)],
    now: u64,
) -> Result<Value, UiError> {
    let query = parse_search(params, now)?;
    let expected = expected_services(params);
    let found = crate::query::search(store, &query, false);
    Ok(json!({
        "traces": found
            .iter()
            .map(|(id, spans)| result_json(*id, spans, &expected))
            .collect::<Vec<_>>(),
        "limit": query.limit,
        "startMicros": query.start_min.unwrap_or(0) / 1_000,
        "endMicros": query.start_max.unwrap_or(0) / 1_000,
    }))
}

async fn search(
    State(store): State<Arc<Store>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Value>, UiError> {
    search_answer(&store, &params, now_nanos()).map(axum::Json)
}

async fn trace(
    State(store): State<Arc<Store>>,
    Path(trace_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Value>, UiError> {
    let id = TraceId::parse(&trace_id).map_err(|e| bad("trace_id", e))?;
    let spans = crate::query::trace_spans(&store, id, false)
        .ok_or_else(|| UiError::TraceNotFound(id.full()))?;
    let others = view::related_traces(&store, id, &spans);
    Ok(axum::Json(view::trace_view(
        id,
        &spans,
        &others,
        &expected_services(&params),
    )))
}

/// What `GET /api/autobot/service-graph` answers: the graph of the newest
/// traces (at most `limit`, default [`GRAPH_MAX_TRACES`]) with a span in the
/// time range.
pub fn graph_answer(
    store: &Store,
    params: &[(String, String)],
    now: u64,
) -> Result<Value, UiError> {
    let (start, end) = time_range(params, now)?;
    let query = SpanQuery {
        start_min: Some(start),
        start_max: Some(end),
        limit: limit(params, GRAPH_MAX_TRACES, GRAPH_MAX_TRACES)?,
        ..Default::default()
    };
    let traces = store.search(&query);
    let mut answer = serde_json::to_value(graph::service_graph(&traces))
        .map_err(|e| UiError::BadParameter(e.to_string()))?;
    answer["startMicros"] = json!(start / 1_000);
    answer["endMicros"] = json!(end / 1_000);
    answer["limit"] = json!(query.limit);
    Ok(answer)
}

async fn service_graph(
    State(store): State<Arc<Store>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Value>, UiError> {
    graph_answer(&store, &params, now_nanos()).map(axum::Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::params;

    #[test]
    fn tags_are_logfmt() {
        assert_eq!(
            parse_tags(r#" error=true  http.route=/api/x msg="a b \"c\"" empty= "#).unwrap(),
            [
                ("error".into(), "true".into()),
                ("http.route".into(), "/api/x".into()),
                ("msg".into(), r#"a b "c""#.into()),
                ("empty".into(), String::new()),
            ]
        );
        assert!(parse_tags("").unwrap().is_empty());
        for bad in ["foo", "=x", "a=\"open", "a=b c"] {
            assert!(parse_tags(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_parameters_and_their_errors() {
        let now: u64 = 1_000_000 * 1_000_000_000;
        let q = parse_search(
            &params(&[
                ("service", "autobot-backend"),
                ("operation", "POST /api/research"),
                ("tags", "http.response.status_code=200"),
                ("minDuration", "1ms"),
                ("maxDuration", "2s"),
                ("lookback", "15m"),
                ("limit", "5"),
                ("expect", "a,b"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("autobot-backend"));
        assert_eq!(q.operation.as_deref(), Some("POST /api/research"));
        assert_eq!(q.tags["http.response.status_code"], "200");
        assert_eq!(
            (q.duration_min, q.duration_max),
            (Some(1_000_000), Some(2_000_000_000))
        );
        assert_eq!(q.start_max, Some(now));
        assert_eq!(q.start_min, Some(now - 15 * 60 * 1_000_000_000));
        assert_eq!(q.limit, 5);

        let q = parse_search(
            &params(&[("start", "1000"), ("end", "2000"), ("service", " ")]),
            now,
        )
        .unwrap();
        assert_eq!(
            (q.start_min, q.start_max),
            (Some(1_000_000), Some(2_000_000))
        );
        assert_eq!(q.service, None, "blank is any");
        assert_eq!(q.limit, DEFAULT_LIMIT);
        let q = parse_search(&params(&[("lookback", "2d")]), now).unwrap();
        assert_eq!(q.start_min, Some(now - 2 * 86_400_000_000_000));

        for (pairs, names) in [
            (&[("tags", "nope")][..], "tags"),
            (&[("minDuration", "fast")], "minDuration"),
            (
                &[("minDuration", "2s"), ("maxDuration", "1s")],
                "minDuration",
            ),
            (&[("lookback", "soon")], "lookback"),
            (&[("start", "-1")], "start"),
            (&[("start", "5000"), ("end", "4000")], "start"),
            (&[("limit", "0")], "limit"),
            (&[("limit", "1501")], "limit"),
        ] {
            let e = parse_search(&params(pairs), now).unwrap_err();
            assert!(e.to_string().starts_with(names), "{pairs:?}: {e}");
        }
    }
}
