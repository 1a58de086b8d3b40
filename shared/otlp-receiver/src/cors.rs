//! CORS for the OTLP/HTTP receiver: which web pages may send spans from a
//! browser (the OpenTelemetry JS web SDK's exporter posts `application/json`
//! or protobuf, so the browser asks first with a preflight `OPTIONS`).
//!
//! The same setting as the Collector's and Jaeger's OTLP receiver
//! (`receivers.otlp.protocols.http.cors.allowed_origins`): an origin is
//! `scheme://host[:port]`, `*` is any origin, and one `*` inside a pattern
//! stands for any run of characters (`https://*.example.com`,
//! `http://127.0.0.1:*`). A request whose `Origin` is not allowed is
//! refused with 403 and stores nothing; a request without `Origin` (every
//! exporter that is not a browser) is not concerned.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The request headers a browser may send with its spans.
pub const ALLOWED_HEADERS: &str = "content-type, content-encoding, accept, x-requested-with";
/// How long a browser may keep a preflight's answer (the Collector's default is none; Chromium caps at 2 h).
pub const MAX_AGE_SECONDS: u32 = 7200;

/// Which origins may send spans from a browser; none by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an origin pattern: expected *, or scheme://host[:port] (http or https, no path) with at most one *"
)]
pub struct BadOrigin(pub String);

impl CorsPolicy {
    /// Allows these origin patterns (see the module docs).
    pub fn new<S: AsRef<str>>(origins: impl IntoIterator<Item = S>) -> Result<Self, BadOrigin> {
        let origins = origins
            .into_iter()
            .map(|o| parse_pattern(o.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { origins })
    }

    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|p| pattern_matches(p, &origin))
    }
}

fn parse_pattern(text: &str) -> Result<String, BadOrigin> {
    let pattern = text.trim().to_ascii_lowercase();
    if pattern == "*" {
        return Ok(pattern);
    }
    let bad = || BadOrigin(text.to_owned());
    let rest = pattern
        .strip_prefix("http://")
        .or_else(|| pattern.strip_prefix("https://"))
        .ok_or_else(bad)?;
    if rest.is_empty()
        || rest.contains('/')
        || rest.matches('*').count() > 1
        || pattern.matches('*').count() > 1
        || rest
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        return Err(bad());
    }
    Ok(pattern)
}

fn pattern_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.split_once('*') {
        Some((prefix, suffix)) => {
            origin.len() >= prefix.len() + suffix.len()
                && origin.starts_with(prefix)
                && origin.ends_with(suffix)
        }
        None => pattern == origin,
    }
}

fn vary_origin(headers: &mut HeaderMap) {
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

/// The middleware: answers preflights, marks allowed answers, refuses
/// other origins.
pub(crate) async fn layer(
    State(policy): State<Arc<CorsPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let text = origin.to_str().unwrap_or_default();
    if !policy.allows(text) {
        let mut refused = (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "origin {:?} may not send spans here (not in the receiver's CORS allowed origins)",
                text.chars().take(200).collect::<String>()
            ),
        )
            .into_response();
        vary_origin(refused.headers_mut());
        return refused;
    }
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut answer = StatusCode::NO_CONTENT.into_response();
        let headers = answer.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(MAX_AGE_SECONDS),
        );
        answer
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    vary_origin(headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_exact_any_and_one_wildcard() {
        let policy = CorsPolicy::new([
            "http://172.16.168.20:8001",
            "https://*.example.com",
            "http://127.0.0.1:*",
        ])
        .unwrap();
        for (origin, allowed) in [
            ("http://172.16.168.20:8001", true),
            ("HTTP://172.16.168.20:8001", true),
            ("http://172.16.168.20:8002", false),
            ("https://172.16.168.20:8001", false),
            ("https://ui.example.com", true),
            ("https://example.com", false),
            ("http://127.0.0.1:5173", true),
            ("http://127.0.0.10", false),
            ("null", false),
            ("", false),
        ] {
            assert_eq!(policy.allows(origin), allowed, "{origin}");
        }
        assert!(CorsPolicy::new(["*"]).unwrap().allows("null"));
        assert!(!CorsPolicy::default().allows("http://127.0.0.1:8001"));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for bad in [
            "127.0.0.1:8001",
            "http://",
            "http://h/path",
            "ftp://h",
            "http://*.*.com",
            "https://a b",
        ] {
            let e = CorsPolicy::new([bad]).unwrap_err();
            assert_eq!(e.0, bad);
            assert!(e.to_string().contains("not an origin pattern"), "{e}");
        }
    }
}
