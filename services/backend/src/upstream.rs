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
    /// Its answers are read up to this many bytes (AUTOBOT_MAX_PEER_RESPONSE_BYTES).
    pub max_response_bytes: usize,
}

impl Peer {
    pub fn new(name: &'static str, base: &Url) -> Self {
        Self {
            name,
            base: base.clone(),
            max_response_bytes: crate::config::DEFAULT_MAX_PEER_RESPONSE_BYTES,
        }
    }

    /// The same peer with another cap on its answers.
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
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
    let bytes = read_capped(peer, response, timeout).await?;
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

/// Reads a peer's answer, refusing one over `peer.max_response_bytes`
/// (502) before holding more than that in memory.
async fn read_capped(
    peer: &Peer,
    mut response: reqwest::Response,
    timeout: Duration,
) -> Result<Vec<u8>, AppError> {
    let cap = peer.max_response_bytes;
    let too_large = || AppError::UpstreamInvalid {
        peer: peer.name,
        detail: format!("the answer is over {cap} bytes (AUTOBOT_MAX_PEER_RESPONSE_BYTES)"),
    };
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| send_error(peer, &reqwest_middleware::Error::Reqwest(e), timeout))?
    {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

    /// Answers every connection with `head` then `body_len` bytes of `a`.
    async fn peer_answering(head: &'static str, body_len: usize) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(head.as_bytes()).await;
                    let chunk = vec![b'a'; 64 * 1024];
                    let mut left = body_len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                });
            }
        });
        Url::parse(&format!("http://{addr}/")).unwrap()
    }

    #[tokio::test]
    async fn a_peer_answer_over_the_cap_is_refused_without_reading_it_all() {
        let http = autobot_tracing::http::client().unwrap();
        let timeout = Duration::from_secs(10);
        // Announced too large: refused on its Content-Length.
        let base = peer_answering("HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\nContent-Type: application/json\r\n\r\n", 0).await;
        let peer = Peer::new("ai-stack", &base).with_max_response_bytes(1024 * 1024);
        let err = post_json::<_, serde_json::Value>(&http, &peer, "/v1/chat", &(), timeout)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        assert!(
            err.to_string()
                .contains("over 1048576 bytes (AUTOBOT_MAX_PEER_RESPONSE_BYTES)"),
            "{err}"
        );
        // Not announced (read to the end of the connection): cut at the cap.
        let base = peer_answering(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n",
            8 * 1024 * 1024,
        )
        .await;
        let peer = Peer::new("ai-stack", &base).with_max_response_bytes(1024 * 1024);
        let err = post_json::<_, serde_json::Value>(&http, &peer, "/v1/chat", &(), timeout)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("AUTOBOT_MAX_PEER_RESPONSE_BYTES"),
            "{err}"
        );
        // Under the cap: read as before.
        let base = peer_answering(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}",
            0,
        )
        .await;
        let peer = Peer::new("ai-stack", &base);
        let ok: serde_json::Value = post_json(&http, &peer, "/v1/chat", &(), timeout)
            .await
            .unwrap();
        assert_eq!(ok, serde_json::json!({}));
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
