//! Wire types for the browse flow: the browser service's HTTP API
//! (`POST /navigate`, `GET /health`, `GET /status`), which the backend's
//! `POST /api/browse` and `POST /api/research` reuse.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /navigate` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NavigateRequest {
    /// An absolute http or https URL.
    pub url: String,
    /// Bound of the whole fetch in milliseconds; may lower the service's
    /// limit (AUTOBOT_BROWSER_TIMEOUT_MS), never raise it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Bytes of the body read at most; may lower the service's limit
    /// (AUTOBOT_BROWSER_MAX_BYTES), never raise it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

/// `POST /navigate` answer: the page as a reader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NavigateResponse {
    /// The final URL, after redirects.
    pub url: String,
    /// HTTP status of the final response.
    pub status: u16,
    /// `<title>` (else `og:title`, else the first `<h1>`); `null` when the page has none.
    pub title: Option<String>,
    /// `<meta name="description">` (else `og:description`); `null` when absent.
    pub description: Option<String>,
    /// The visible text, one block (paragraph, list item, heading, cell…) per line.
    pub text: String,
    /// The visible text in paragraph-sized pieces, in page order, for ranking.
    pub passages: Vec<String>,
    /// Absolute http/https links, deduplicated, in page order, without fragments.
    pub links: Vec<String>,
    /// The page was cut short: the body at the byte limit, or the parsed
    /// page at a bound of the browser (nesting depth, nodes, text, links).
    pub truncated: bool,
}

/// `GET /health` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// `ok` whenever the service answers.
    pub status: String,
    pub service: String,
    pub version: String,
}

/// `GET /status` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub service: String,
    pub version: String,
    pub uptime_secs: u64,
    /// Navigations answered with a page.
    pub pages_fetched: u64,
    /// Navigations answered with an error, by kind (`timeout`, `denied_address`, …).
    pub errors: BTreeMap<String, u64>,
    pub limits: Limits,
}

/// The limits in force (from the service's environment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub timeout_ms: u64,
    pub max_bytes: u64,
    pub max_redirects: u32,
    /// Address ranges refused before connecting (CIDR).
    pub deny: Vec<String>,
    /// Whether the page's server receives the trace context.
    pub propagate: bool,
    /// Exceptions to `deny` (AUTOBOT_BROWSER_ALLOW): networks, host names.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Navigations running at once at most (AUTOBOT_BROWSER_MAX_NAVIGATIONS).
    #[serde(default)]
    pub max_navigations: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_limits_may_be_left_out_and_unknown_fields_are_refused() {
        let r: NavigateRequest = serde_json::from_str(r#"{"url":"http://a/"}"#).unwrap();
        assert_eq!(r.timeout_ms, None);
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"url":"http://a/"}"#);
        let e = serde_json::from_str::<NavigateRequest>(r#"{"url":"http://a/","timeout":5}"#)
            .unwrap_err();
        assert!(e.to_string().contains("timeout"), "{e}");
    }
}
