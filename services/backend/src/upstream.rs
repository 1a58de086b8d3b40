//! Calls to the peer services through AutoBot's traced client: the CLIENT
//! span injects the context from inside itself, so each peer's SERVER span
//! is its child. A peer's error is passed on with its status and message.

use std::time::Duration;

use autobot_wire::error::ErrorBody;
use axum::http::StatusCode;
use reqwest_middleware::ClientWithMiddleware;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::AppError;

/// A peer service the backend calls.
#[derive(Clone, Debug)]
pub struct Peer {
    pub name: &'static str,
    pub base: Url,
}

impl Peer {
    pub fn new(name: &'static str, base: &Url) -> Self {
        Self {
            name,
            base: base.clone(),
        }
    }

    /// `base` + `path`, keeping a path prefix the base may have.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!(
            "{}/{}",
            url.path().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        url.set_path(&joined);
        url
    }

    fn display_base(&self) -> String {
        autobot_tracing::redact::redact_url(&self.base)
    }
}

/// POSTs `body` as JSON to `peer`'s `path` and reads a JSON answer.
pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
    http: &ClientWithMiddleware,
    peer: &Peer,
    path: &str,
    body: &B,
    timeout: Duration,
) -> Result<T, AppError> {
    let request = http.post(peer.url(path)).json(body).timeout(timeout);
    let response = request
        .send()
        .await
        .map_err(|e| send_error(peer, &e, timeout))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| send_error(peer, &reqwest_middleware::Error::Reqwest(e), timeout))?;
    if !status.is_success() {
        return Err(AppError::Upstream {
            peer: peer.name,
            status: StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            message: error_message(status.as_u16(), &bytes),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| AppError::UpstreamInvalid {
        peer: peer.name,
        detail: e.to_string(),
    })
}

/// Classifies a failed call: timeout → 504, anything else → 502.
pub fn send_error(peer: &Peer, error: &reqwest_middleware::Error, timeout: Duration) -> AppError {
    let (kind, detail) = autobot_tracing::http::classify(error);
    if kind == "timeout" {
        AppError::UpstreamTimeout {
            peer: peer.name,
            timeout_ms: timeout.as_millis() as u64,
        }
    } else {
        AppError::UpstreamUnreachable {
            peer: peer.name,
            url: peer.display_base(),
            detail,
        }
    }
}

/// A peer's error message: its `{"error": ...}` when it sent one, else its text (bounded).
fn error_message(status: u16, body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(body) {
        return e.error;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text.chars().take(500).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_base_path() {
        let p = Peer::new("x", &Url::parse("http://h:1/prefix/").unwrap());
        assert_eq!(p.url("/v1/chat").as_str(), "http://h:1/prefix/v1/chat");
        let p = Peer::new("x", &Url::parse("http://h:1").unwrap());
        assert_eq!(p.url("/navigate").as_str(), "http://h:1/navigate");
    }

    #[test]
    fn peer_messages() {
        assert_eq!(
            error_message(400, br#"{"error":"bad url","trace_id":"ab"}"#),
            "bad url"
        );
        assert_eq!(error_message(500, b"  "), "HTTP 500");
        assert_eq!(error_message(502, b"oops"), "oops");
    }
}
