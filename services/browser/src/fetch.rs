//! Fetching a page within limits: http/https only, redirects followed here
//! (each hop re-checked against the address policy and traced as its own
//! CLIENT span), the body streamed and cut at the byte limit, never read whole.
//!
//! The time limit is applied by the caller around [`Fetcher::fetch`], so it
//! bounds the whole fetch: every hop, DNS, connects and the body.
//!
//! The site gets the trace context (traceparent, tracestate, b3) unless
//! AUTOBOT_BROWSER_PROPAGATE is false, but never the baggage: baggage is
//! AutoBot's own (and its callers') key-value data, not a third party's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest_middleware::ClientWithMiddleware;
use tracing::Span;
use url::Url;

use crate::config::MAX_REDIRECTS;
use crate::deny::{AddressPolicy, CheckedResolver, DeniedAddress};
use crate::error::AppError;

/// Media types read as HTML.
const HTML_TYPES: &[&str] = &["text/html", "application/xhtml+xml"];

/// What the site answered, within the limits.
#[derive(Debug)]
pub struct FetchedPage {
    /// The final URL, after redirects.
    pub url: Url,
    pub status: u16,
    /// `charset` parameter of the content type, if any.
    pub charset: Option<String>,
    /// At most the byte limit.
    pub body: Vec<u8>,
    /// The body was longer than the limit and was cut there.
    pub truncated: bool,
}

/// The traced HTTP client, configured so that nothing bypasses the address policy.
#[derive(Clone)]
pub struct Fetcher {
    client: ClientWithMiddleware,
    policy: Arc<AddressPolicy>,
}

impl Fetcher {
    /// `propagate`: whether the site receives the trace context headers.
    pub fn new(
        policy: AddressPolicy,
        propagate: bool,
    ) -> Result<Self, autobot_tracing::http::ClientBuildError> {
        let policy = Arc::new(policy);
        let builder = reqwest::Client::builder()
            // Followed by `fetch`, so every hop is checked, counted and traced.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve and connect on its own, past the deny list.
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver::new(policy.clone())))
            .user_agent(concat!("autobot-browser/", env!("CARGO_PKG_VERSION")));
        let client = autobot_tracing::http::client_builder(builder)
            .propagate(propagate)
            .baggage(false)
            .build()?;
        Ok(Self { client, policy })
    }

    /// Where this fetcher connects.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Fetches `url`, following at most [`MAX_REDIRECTS`] redirects and
    /// reading at most `max_bytes` of the body. `redirects` counts the hops
    /// followed (kept by the caller, so a fetch cut by the time limit still
    /// tells how far it got); `span` (browser.navigate) gets the status code.
    pub async fn fetch(
        &self,
        url: Url,
        max_bytes: u64,
        redirects: &AtomicU32,
        span: &Span,
    ) -> Result<FetchedPage, AppError> {
        let mut url = url;
        let mut response = loop {
            self.check_target(&url)?;
            let response = self
                .client
                .get(url.clone())
                .header(ACCEPT, "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
                .send()
                .await
                .map_err(send_error)?;
            let status = response.status();
            let location = response.headers().get(LOCATION);
            match (status.is_redirection(), location) {
                (true, Some(location)) => {
                    if redirects.load(Ordering::Relaxed) == MAX_REDIRECTS {
                        return Err(AppError::TooManyRedirects {
                            last: autobot_tracing::redact::redact_url(&url),
                        });
                    }
                    let location = location
                        .to_str()
                        .map_err(|_| AppError::BadRedirect("a Location that is not text".into()))?;
                    url = url.join(location).map_err(|e| {
                        AppError::BadRedirect(format!("a Location that is not a URL ({e})"))
                    })?;
                    if !matches!(url.scheme(), "http" | "https") {
                        return Err(AppError::BadRedirect(format!(
                            "a {} URL (only http and https are fetched)",
                            url.scheme()
                        )));
                    }
                    redirects.fetch_add(1, Ordering::Relaxed);
                }
                _ => break response,
            }
        };

        let status = response.status();
        // The final response's status, once (the hops' are on their CLIENT spans).
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if !status.is_success() {
            return Err(AppError::SiteStatus(status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !HTML_TYPES.contains(&media_type.as_str()) {
            let shown = if content_type.is_empty() {
                "none".to_owned()
            } else {
                content_type.chars().take(100).collect()
            };
            return Err(AppError::NotHtml(shown));
        }
        let charset = content_type.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
        });

        // Never more than the limit in memory: capacity and reads are both bounded by it.
        let limit = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let expected = response
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(64 * 1024);
        let mut body = Vec::with_capacity(expected.min(limit));
        let mut truncated = false;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| AppError::Body(clean_reqwest_message(e)))?
        {
            let room = limit - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        // Dropping the response closes the connection: the rest is never read.
        drop(response);
        Ok(FetchedPage {
            url,
            status: status.as_u16(),
            charset,
            body,
            truncated,
        })
    }

    /// Scheme and IP-literal checks, before every hop.
    fn check_target(&self, url: &Url) -> Result<(), AppError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AppError::UnsupportedScheme(url.scheme().to_owned()));
        }
        let host = url.host().ok_or_else(|| AppError::InvalidUrl {
            url: autobot_tracing::redact::redact_url(url),
            reason: "no host".into(),
        })?;
        self.policy.check_host(&host)?;
        Ok(())
    }
}

/// A failed send: a refusal by the resolver, else the site is unreachable.
fn send_error(error: reqwest_middleware::Error) -> AppError {
    if let reqwest_middleware::Error::Reqwest(e) = &error {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(denied) = s.downcast_ref::<DeniedAddress>() {
                return AppError::Denied(denied.clone());
            }
            source = s.source();
        }
    }
    let (_, message) = autobot_tracing::http::classify(&error);
    AppError::Unreachable(message)
}

/// A reqwest error's chain without the URL (which may carry secrets).
fn clean_reqwest_message(error: reqwest::Error) -> String {
    autobot_tracing::http::classify(&reqwest_middleware::Error::Reqwest(error)).1
}
