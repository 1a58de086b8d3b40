//! A client of Jaeger's query API: the same calls work against a real
//! Jaeger v2 (16686) and against `autobot-trace serve`.
//!
//! It speaks API v3 (`/api/v3/…`, OTLP-JSON: the only search Jaeger keeps
//! after v2.20) and falls back to the v1 JSON API (`/api/traces/…`) only for
//! a Jaeger without v3. Which one a server has is asked once, on the first
//! call (`GET /api/v3/services`), and remembered. Search parameters go in
//! their snake_case names (`query.service_name`, `query.start_time_min`,
//! `query.num_traces`), which every Jaeger 2.x release accepts; camelCase
//! came only with v2.19.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;

use crate::model::{Envelope, Trace};
use crate::stored::StoredSpan;
use crate::time_text::format_rfc3339;
use crate::trace_id::TraceId;

/// Where the query API is when nothing else is said.
pub const DEFAULT_QUERY_URL: &str = "http://127.0.0.1:16686";
/// The variable that overrides [`DEFAULT_QUERY_URL`].
pub const QUERY_URL_VAR: &str = "AUTOBOT_JAEGER_QUERY_URL";

/// `--jaeger` when not given: `AUTOBOT_JAEGER_QUERY_URL`, else the default.
pub fn default_query_url() -> String {
    std::env::var(QUERY_URL_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_QUERY_URL.to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered (connection refused, timeout, DNS).
    #[error("cannot reach the Jaeger query API at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Something answered, but not with what Jaeger answers.
    #[error("unexpected answer from {url}: {detail}")]
    Protocol { url: String, detail: String },
    #[error("invalid query URL {0:?}: expected http://host:port (Jaeger's port 16686)")]
    BadUrl(String),
}

impl ClientError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// Which of Jaeger's query APIs a server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryApi {
    /// `/api/v3/…` (Jaeger v2, `autobot-trace serve`).
    V3,
    /// Only the v1 JSON API (a Jaeger without API v3).
    V1,
}

/// A trace search: the traces with a span of `service` (and `operation`,
/// and every attribute of `tags`) that started in the last `lookback`.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSearch {
    pub service: String,
    pub operation: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub lookback: Duration,
    pub limit: usize,
}

impl TraceSearch {
    /// The last 48 hours (Jaeger's v1 default), at most 20 traces.
    pub fn service(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            operation: None,
            tags: BTreeMap::new(),
            lookback: Duration::from_secs(48 * 3600),
            limit: 20,
        }
    }
}

/// How far past now a search window reaches: spans from a host whose clock
/// runs a little ahead are still found.
const CLOCK_SLACK: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct JaegerClient {
    base: String,
    http: reqwest::Client,
    api: Arc<OnceCell<QueryApi>>,
}

impl JaegerClient {
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::BadUrl(base_url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| ClientError::Protocol {
                url: base.clone(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            base,
            http,
            api: Arc::new(OnceCell::new()),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GETs `path`: the status and the body parsed as JSON (None when it is
    /// not JSON: a UI page, Go's plain `404 page not found`).
    async fn get(
        &self,
        path: &str,
    ) -> Result<(u16, Option<serde_json::Value>, String), ClientError> {
        let url = self.url(path);
        let response = self.http.get(&url).send().await.map_err(|source| {
            if source.is_connect() || source.is_timeout() || source.is_request() {
                ClientError::Unreachable {
                    url: url.clone(),
                    source,
                }
            } else {
                ClientError::Protocol {
                    url: url.clone(),
                    detail: source.to_string(),
                }
            }
        })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| ClientError::Protocol {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let json = serde_json::from_slice(&body).ok();
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Ok((status, json, text))
    }

    async fn get_json(&self, path: &str) -> Result<(u16, serde_json::Value), ClientError> {
        match self.get(path).await? {
            (status, Some(json), _) => Ok((status, json)),
            (status, None, text) => Err(ClientError::Protocol {
                url: self.url(path),
                detail: format!("HTTP {status}, not JSON: {text}"),
            }),
        }
    }

    /// Which API the server answers: asked once (`GET /api/v3/services`).
    /// A JSON object (the services, or a v3 error) means v3; a 404 or a
    /// page that is not JSON means a Jaeger without it.
    pub async fn api(&self) -> Result<QueryApi, ClientError> {
        self.api
            .get_or_try_init(|| async {
                let path = "/api/v3/services";
                match self.get(path).await? {
                    (_, Some(json), _) if json.is_object() => Ok(QueryApi::V3),
                    (404 | 405 | 501, _, _) | (200, None, _) => Ok(QueryApi::V1),
                    (status, _, text) => Err(ClientError::Protocol {
                        url: self.url(path),
                        detail: format!("HTTP {status}: {text}"),
                    }),
                }
            })
            .await
            .copied()
    }

    /// The trace, or None when the server does not have it.
    pub async fn trace(&self, id: TraceId) -> Result<Option<Trace>, ClientError> {
        match self.api().await? {
            QueryApi::V3 => Ok(self
                .trace_v3(id)
                .await?
                .map(|spans| crate::jaeger::trace(id, &spans))),
            QueryApi::V1 => self.trace_v1(id).await,
        }
    }

    /// `GET /api/v3/traces/{id}`: the trace's spans as Jaeger returned them.
    pub async fn trace_v3(&self, id: TraceId) -> Result<Option<Vec<StoredSpan>>, ClientError> {
        let path = format!("/api/v3/traces/{}", id.full());
        let (status, json) = self.get_json(&path).await?;
        match status {
            200 => {
                let mut spans = self.result_spans(&path, &json)?;
                // Only this trace (a store may return more for an id prefix).
                spans.retain(|s| TraceId::from_bytes(&s.span.trace_id) == Some(id));
                Ok((!spans.is_empty()).then_some(spans))
            }
            404 => Ok(None),
            other => Err(self.v3_error(&path, other, &json)),
        }
    }

    fn result_spans(
        &self,
        path: &str,
        json: &serde_json::Value,
    ) -> Result<Vec<StoredSpan>, ClientError> {
        let result = json.get("result").ok_or_else(|| ClientError::Protocol {
            url: self.url(path),
            detail: format!("no \"result\" in {}", truncated(json)),
        })?;
        crate::otlp_json::read_traces_data(result).map_err(|detail| ClientError::Protocol {
            url: self.url(path),
            detail,
        })
    }

    fn v3_error(&self, path: &str, status: u16, json: &serde_json::Value) -> ClientError {
        let message = json["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| truncated(json));
        ClientError::Protocol {
            url: self.url(path),
            detail: format!("HTTP {status}: {message}"),
        }
    }

    /// `GET /api/traces/{id}` (v1 JSON, in every Jaeger release).
    pub async fn trace_v1(&self, id: TraceId) -> Result<Option<Trace>, ClientError> {
        // Jaeger's own form of the id: every release accepts it.
        let path = format!("/api/traces/{}", id.jaeger());
        let (status, json) = self.get_json(&path).await?;
        match status {
            200 => match json
                .get("data")
                .and_then(|d| d.as_array())
                .and_then(|traces| traces.first())
            {
                None => Ok(None),
                Some(first) => serde_json::from_value(first.clone())
                    .map(Some)
                    .map_err(|e| ClientError::Protocol {
                        url: self.url(&path),
                        detail: format!("not a Jaeger trace: {e}"),
                    }),
            },
            404 => Ok(None),
            other => Err(ClientError::Protocol {
                url: self.url(&path),
                detail: format!("HTTP {other}: {}", envelope_errors(&json)),
            }),
        }
    }

    /// The services that reported spans.
    pub async fn services(&self) -> Result<Vec<String>, ClientError> {
        let (path, key) = match self.api().await? {
            QueryApi::V3 => ("/api/v3/services", "services"),
            QueryApi::V1 => ("/api/services", "data"),
        };
        let (status, json) = self.get_json(path).await?;
        if status != 200 {
            return Err(ClientError::Protocol {
                url: self.url(path),
                detail: format!("HTTP {status}: {}", truncated(&json)),
            });
        }
        // Jaeger leaves an empty list out (`{}`); v1 may send null.
        match json.get(key) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(list) => serde_json::from_value(list.clone()).map_err(|e| ClientError::Protocol {
                url: self.url(path),
                detail: e.to_string(),
            }),
        }
    }

    /// Traces matching a search, as Jaeger orders them (newest first in `serve`).
    pub async fn find_traces(&self, search: &TraceSearch) -> Result<Vec<Trace>, ClientError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (min, max) = (now.saturating_sub(search.lookback), now + CLOCK_SLACK);
        match self.api().await? {
            QueryApi::V3 => {
                let mut query = vec![
                    ("query.service_name", search.service.clone()),
                    (
                        "query.start_time_min",
                        format_rfc3339(min.as_nanos() as u64),
                    ),
                    (
                        "query.start_time_max",
                        format_rfc3339(max.as_nanos() as u64),
                    ),
                    ("query.num_traces", search.limit.to_string()),
                ];
                if let Some(op) = &search.operation {
                    query.push(("query.operation_name", op.clone()));
                }
                if !search.tags.is_empty() {
                    // Read by Jaeger from v2.19 on (older releases ignore it).
                    query.push((
                        "query.attributes",
                        serde_json::to_string(&search.tags).unwrap_or_default(),
                    ));
                }
                let path = format!("/api/v3/traces?{}", encode_query(&query));
                let (status, json) = self.get_json(&path).await?;
                match status {
                    200 => Ok(group_by_trace(self.result_spans(&path, &json)?)),
                    // "No traces found" is a 404 in API v3.
                    404 => Ok(Vec::new()),
                    other => Err(self.v3_error(&path, other, &json)),
                }
            }
            QueryApi::V1 => {
                let mut query = vec![
                    ("service", search.service.clone()),
                    ("start", min.as_micros().to_string()),
                    ("end", max.as_micros().to_string()),
                    ("limit", search.limit.to_string()),
                ];
                if let Some(op) = &search.operation {
                    query.push(("operation", op.clone()));
                }
                if !search.tags.is_empty() {
                    query.push((
                        "tags",
                        serde_json::to_string(&search.tags).unwrap_or_default(),
                    ));
                }
                let path = format!("/api/traces?{}", encode_query(&query));
                let (status, json) = self.get_json(&path).await?;
                if status != 200 {
                    return Err(ClientError::Protocol {
                        url: self.url(&path),
                        detail: format!("HTTP {status}: {}", envelope_errors(&json)),
                    });
                }
                let envelope: Envelope<Vec<Trace>> =
                    serde_json::from_value(json).map_err(|e| ClientError::Protocol {
                        url: self.url(&path),
                        detail: e.to_string(),
                    })?;
                Ok(envelope.data.unwrap_or_default())
            }
        }
    }
}

/// Spans of several traces (an API v3 search result) as one trace each, in
/// the order their first span came.
fn group_by_trace(spans: Vec<StoredSpan>) -> Vec<Trace> {
    let mut order: Vec<TraceId> = Vec::new();
    let mut by_trace: BTreeMap<TraceId, Vec<StoredSpan>> = BTreeMap::new();
    for s in spans {
        let Some(id) = TraceId::from_bytes(&s.span.trace_id) else {
            continue;
        };
        if !by_trace.contains_key(&id) {
            order.push(id);
        }
        by_trace.entry(id).or_default().push(s);
    }
    order
        .into_iter()
        .map(|id| crate::jaeger::trace(id, &by_trace[&id]))
        .collect()
}

fn truncated(json: &serde_json::Value) -> String {
    let text = json.to_string();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

fn envelope_errors(json: &serde_json::Value) -> String {
    json.get("errors")
        .and_then(|e| e.as_array())
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.get("msg").and_then(|m| m.as_str()))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| truncated(json))
}

fn encode_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
