//! A client of Jaeger's query API: the same calls work against a real
//! Jaeger v2 (16686) and against `autobot-trace serve`.

use std::time::Duration;

use crate::model::{Envelope, Trace};
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

#[derive(Clone, Debug)]
pub struct JaegerClient {
    base: String,
    http: reqwest::Client,
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
        Ok(Self { base, http })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn get_json(&self, path: &str) -> Result<(u16, serde_json::Value), ClientError> {
        let url = format!("{}{}", self.base, path);
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
        let json = serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
            url: url.clone(),
            detail: format!(
                "HTTP {status}, not JSON ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        })?;
        Ok((status, json))
    }

    /// The trace as raw Jaeger JSON (the element of `data`), or None on 404.
    pub async fn trace_json(&self, id: TraceId) -> Result<Option<serde_json::Value>, ClientError> {
        // Jaeger's own form of the id: it accepts both, this one everywhere.
        let path = format!("/api/traces/{}", id.jaeger());
        let (status, json) = self.get_json(&path).await?;
        match status {
            200 => {
                let first = json
                    .get("data")
                    .and_then(|d| d.as_array())
                    .and_then(|traces| traces.first())
                    .cloned();
                Ok(first)
            }
            404 => Ok(None),
            other => Err(ClientError::Protocol {
                url: format!("{}{path}", self.base),
                detail: format!("HTTP {other}: {}", envelope_errors(&json)),
            }),
        }
    }

    /// The trace, parsed, or None when Jaeger does not have it (404).
    pub async fn trace(&self, id: TraceId) -> Result<Option<Trace>, ClientError> {
        match self.trace_json(id).await? {
            None => Ok(None),
            Some(json) => {
                serde_json::from_value(json)
                    .map(Some)
                    .map_err(|e| ClientError::Protocol {
                        url: format!("{}/api/traces/{}", self.base, id.jaeger()),
                        detail: format!("not a Jaeger trace: {e}"),
                    })
            }
        }
    }

    /// `GET /api/services` (Jaeger up to v2.20; later ones only have /api/v3/services).
    pub async fn services(&self) -> Result<Vec<String>, ClientError> {
        let (status, json) = self.get_json("/api/services").await?;
        if status == 404 {
            let (_, v3) = self.get_json("/api/v3/services").await?;
            return Ok(serde_json::from_value(v3["services"].clone()).unwrap_or_default());
        }
        let envelope: Envelope<Vec<String>> =
            serde_json::from_value(json).map_err(|e| ClientError::Protocol {
                url: format!("{}/api/services", self.base),
                detail: e.to_string(),
            })?;
        Ok(envelope.data.unwrap_or_default())
    }

    /// `GET /api/traces?service=…&limit=…` (search, newest first in `serve`).
    pub async fn find_traces(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<Trace>, ClientError> {
        let path = format!("/api/traces?service={}&limit={limit}", encode(service));
        let (status, json) = self.get_json(&path).await?;
        if status != 200 {
            return Err(ClientError::Protocol {
                url: format!("{}{path}", self.base),
                detail: format!("HTTP {status}: {}", envelope_errors(&json)),
            });
        }
        let envelope: Envelope<Vec<Trace>> =
            serde_json::from_value(json).map_err(|e| ClientError::Protocol {
                url: format!("{}{path}", self.base),
                detail: e.to_string(),
            })?;
        Ok(envelope.data.unwrap_or_default())
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
        .unwrap_or_else(|| json.to_string())
}

/// Percent-encodes a query value (service names are plain, but be safe).
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
