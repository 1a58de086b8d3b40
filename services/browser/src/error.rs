//! Every way a request fails (navigations, bad bodies), and the ONE place
//! they become HTTP answers: `{"error": "...", "trace_id": "..."}`.
//!
//! Status codes (docs/browser.md explains them to operators):
//! - 400: the request itself is wrong (JSON, URL, scheme, a zero limit);
//! - 403: the URL is well-formed but points at a denied address: a policy
//!   refusal, not a malformed request, and not the site's fault;
//! - 502: the site is unreachable, failing (4xx/5xx), redirects too often or
//!   elsewhere than http/https, or answers with something that is not HTML
//!   (a usable request whose upstream answer we cannot use: a gateway error,
//!   not 415, which is about the request's own body);
//! - 503: AUTOBOT_BROWSER_MAX_NAVIGATIONS navigations are running already
//!   (with `Retry-After`: the caller may try again shortly);
//! - 504: the navigation (fetch and extraction) did not end within its time limit.

use autobot_lifecycle::http::error_response;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::MAX_REDIRECTS;
use crate::deny::DeniedAddress;

/// Why a request failed. Messages carry redacted URLs only.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body could not be read as a navigation request (400, or 413 over the limit).
    #[error(r#"the body must be JSON {{"url", "timeout_ms"?, "max_bytes"?}}: {message}"#)]
    RequestBody { status: StatusCode, message: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not a URL ({reason}): {url}")]
    InvalidUrl { url: String, reason: String },
    #[error("only http and https URLs are fetched, not {0}")]
    UnsupportedScheme(String),
    #[error("refused before connecting: {0}")]
    Denied(#[from] DeniedAddress),
    #[error("too many redirects: the limit is {MAX_REDIRECTS}, last at {last}")]
    TooManyRedirects { last: String },
    #[error("the site redirected to an unusable location: {0}")]
    BadRedirect(String),
    #[error("the site is unreachable: {0}")]
    Unreachable(String),
    #[error("the site answered HTTP {0}")]
    SiteStatus(u16),
    #[error("not an HTML page: the site sent content type {0:?}")]
    NotHtml(String),
    #[error("reading the page failed: {0}")]
    Body(String),
    #[error(
        "the navigation timed out after {0} ms (the time limit of fetch and extraction: timeout_ms or AUTOBOT_BROWSER_TIMEOUT_MS)"
    )]
    Timeout(u64),
    #[error(
        "busy: {0} navigations are running already (AUTOBOT_BROWSER_MAX_NAVIGATIONS); retry shortly"
    )]
    Busy(usize),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// Low-cardinality class, for `error.type` and `GET /status`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::RequestBody { .. } | Self::BadRequest(_) => "bad_request",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::UnsupportedScheme(_) => "unsupported_scheme",
            Self::Denied(_) => "denied_address",
            Self::TooManyRedirects { .. } => "too_many_redirects",
            Self::BadRedirect(_) => "bad_redirect",
            Self::Unreachable(_) => "unreachable",
            Self::SiteStatus(_) => "site_status",
            Self::NotHtml(_) => "not_html",
            Self::Body(_) => "body_error",
            Self::Timeout(_) => "timeout",
            Self::Busy(_) => "busy",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::RequestBody { status, .. } => *status,
            Self::BadRequest(_) | Self::InvalidUrl { .. } | Self::UnsupportedScheme(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Denied(_) => StatusCode::FORBIDDEN,
            Self::TooManyRedirects { .. }
            | Self::BadRedirect(_)
            | Self::Unreachable(_)
            | Self::SiteStatus(_)
            | Self::NotHtml(_)
            | Self::Body(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let busy = matches!(self, Self::Busy(_));
        let mut response = error_response(self.status(), self.to_string());
        if busy {
            // A navigation takes seconds at most; a second is a fair wait.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
