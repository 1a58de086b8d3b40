//! The client side of HTTP tracing: a reqwest-middleware client whose CLIENT
//! span injects the context from INSIDE itself, so the server's span becomes
//! the child of this span (the Python original injected before starting its
//! span, which made every downstream span a sibling).
//!
//! The span is made with the OpenTelemetry API, like the server layer's: a
//! `tracing` span through the bridge cost 11 700 instructions per request,
//! most of it re-attaching its context on every poll (docs/performance.md).
//! Its parent is `Context::current()`: the innermost entered `tracing` span
//! (tracing-opentelemetry activates its context on enter) or the context the
//! server layer attached to the request.

use std::sync::Arc;
use std::time::Duration;

use http::Extensions;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

use super::red::ClientRequest;
use crate::errors::record_error_on_span;
use crate::propagation::inject_headers;
use crate::redact::redact_url;

/// Put this in a request's extensions to send it without trace headers
/// (`client.get(url).with_extension(NoPropagation)`).
#[derive(Clone, Copy, Debug)]
pub struct NoPropagation;

/// Builds a traced client from a configured `reqwest::ClientBuilder`.
pub struct HttpClientBuilder {
    builder: reqwest::ClientBuilder,
    propagate: bool,
    baggage: bool,
    mutual_tls: Option<Arc<autobot_tls::TlsSource>>,
}

/// The HTTP client could not be built. In practice: its TLS backend found no
/// CA certificate on the system (a minimal Debian without `ca-certificates`,
/// or `SSL_CERT_FILE`/`SSL_CERT_DIR` naming none). A service stops at start
/// with this message instead of panicking.
#[derive(Debug, thiserror::Error)]
#[error(
    "the HTTP client cannot start: {reason} (it needs the system's CA certificates: on Debian, apt-get install ca-certificates)"
)]
pub struct ClientBuildError {
    reason: String,
}

impl From<reqwest::Error> for ClientBuildError {
    fn from(e: reqwest::Error) -> Self {
        Self {
            reason: crate::error_chain(&e),
        }
    }
}

/// A traced client with AutoBot's defaults (connect timeout 5 s).
pub fn client() -> Result<ClientWithMiddleware, ClientBuildError> {
    client_builder(reqwest::Client::builder().connect_timeout(Duration::from_secs(5))).build()
}

/// A traced client from your own `reqwest::ClientBuilder` (timeouts, redirects, limits).
pub fn client_builder(builder: reqwest::ClientBuilder) -> HttpClientBuilder {
    HttpClientBuilder {
        builder,
        propagate: true,
        baggage: true,
        mutual_tls: None,
    }
}

/// A traced client with AutoBot's defaults that calls AutoBot's services
/// over mutual TLS: it presents the certificate of `tls` and trusts only
/// its CA (the files re-read when they change).
pub fn mutual_tls_client(
    tls: Arc<autobot_tls::TlsSource>,
) -> Result<ClientWithMiddleware, ClientBuildError> {
    client_builder(reqwest::Client::builder().connect_timeout(Duration::from_secs(5)))
        .mutual_tls(tls)
        .build()
}

impl HttpClientBuilder {
    /// `false` for third-party hosts that must not learn our trace ids:
    /// the CLIENT span is still recorded, no header is sent.
    pub fn propagate(mut self, propagate: bool) -> Self {
        self.propagate = propagate;
        self
    }

    /// `false` for third-party hosts: the trace context is sent (when
    /// propagating), the baggage (our callers' key-value data) never.
    pub fn baggage(mut self, baggage: bool) -> Self {
        self.baggage = baggage;
        self
    }

    /// https:// calls present the certificate of `tls` and trust only its
    /// CA (AutoBot's mutual TLS between services). HTTP/1.1 is offered, as
    /// over plain HTTP: the connection pool keeps each connection, and its
    /// handshake, for the next calls.
    pub fn mutual_tls(mut self, tls: Arc<autobot_tls::TlsSource>) -> Self {
        self.mutual_tls = Some(tls);
        self
    }

    pub fn build(mut self) -> Result<ClientWithMiddleware, ClientBuildError> {
        if let Some(tls) = self.mutual_tls.take() {
            let config = autobot_tls::client::client_config(tls, &[b"http/1.1"]);
            self.builder = self.builder.tls_backend_preconfigured(config);
        }
        Ok(ClientBuilder::new(self.builder.build()?)
            .with(
                ClientTrace::new()
                    .propagate(self.propagate)
                    .baggage(self.baggage),
            )
            .build())
    }
}

/// The middleware [`client`] uses, for a client with more middleware: CLIENT
/// span, inject from inside it, run the request with its context attached,
/// end it on the outcome. Put it after a retry middleware, so that each
/// attempt is a span of its own (as the semantic conventions ask).
#[derive(Clone, Copy, Debug)]
pub struct ClientTrace {
    propagate: bool,
    baggage: bool,
}

impl Default for ClientTrace {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientTrace {
    pub fn new() -> Self {
        Self {
            propagate: true,
            baggage: true,
        }
    }

    /// See [`HttpClientBuilder::propagate`].
    pub fn propagate(mut self, propagate: bool) -> Self {
        self.propagate = propagate;
        self
    }

    /// See [`HttpClientBuilder::baggage`].
    pub fn baggage(mut self, baggage: bool) -> Self {
        self.baggage = baggage;
        self
    }

    fn inject(&self, cx: &Context, headers: &mut http::HeaderMap) {
        inject_headers(cx, headers);
        if !self.baggage {
            headers.remove("baggage");
        }
    }
}

#[async_trait::async_trait]
impl Middleware for ClientTrace {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let propagate = self.propagate && extensions.get::<NoPropagation>().is_none();
        let parent = Context::current();
        // Semantic conventions: name `{METHOD}`, or `HTTP` with `_OTHER`.
        let (name, method) = match known_method(req.method()) {
            Some(m) => (m, m),
            None => ("HTTP", "_OTHER"),
        };
        let red = ClientRequest::start(method, req.url());
        let Some(tracer) = crate::init::tracer() else {
            // Tracing is off: the caller's context is passed on unchanged.
            if propagate {
                self.inject(&parent, req.headers_mut());
            }
            let outcome = next.run(req, extensions).await;
            if let Some(red) = red {
                red.finish(&outcome, Some(&parent));
            }
            return outcome;
        };
        // The sampler reads no attributes: they are built only for a span that is kept.
        let cx = crate::span::start_in_context(
            tracer,
            tracer.span_builder(name).with_kind(SpanKind::Client),
            &parent,
            CLIENT_SPAN_ATTRIBUTES,
            |span| {
                let url = req.url();
                span.set_attributes([
                    KeyValue::new("http.request.method", method),
                    KeyValue::new("url.full", redact_url(url)),
                    KeyValue::new(
                        "server.address",
                        url.host_str().unwrap_or_default().to_owned(),
                    ),
                    KeyValue::new(
                        "server.port",
                        i64::from(url.port_or_known_default().unwrap_or_default()),
                    ),
                ]);
            },
        );
        let span = EndOnDrop(cx);
        if propagate {
            self.inject(&span.0, req.headers_mut());
        }
        let outcome = next.run(req, extensions).with_context(span.0.clone()).await;
        if let Some(red) = red {
            red.finish(&outcome, Some(&span.0));
        }
        span.finish(&outcome);
        outcome
    }
}

/// The method as the semantic conventions name it: one of the nine methods
/// they know, or `None` (span name `HTTP`, `http.request.method` `_OTHER`).
/// The server layer uses it too.
pub(crate) fn known_method(method: &http::Method) -> Option<&'static str> {
    KNOWN_METHODS
        .iter()
        .copied()
        .find(|m| *m == method.as_str())
}

/// The methods the semantic conventions know.
pub(crate) const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Room for a CLIENT span's attributes: four at the start, the status, an
/// error's type (crate::span::start_in_context).
const CLIENT_SPAN_ATTRIBUTES: usize = 8;

/// Owns the CLIENT span's context and ends the span when dropped, so a
/// request whose future is dropped (a caller's timeout, a cancelled task)
/// still ends its span, with the time it ran and no outcome.
struct EndOnDrop(Context);

impl EndOnDrop {
    fn finish(self, outcome: &reqwest_middleware::Result<Response>) {
        let span = self.0.span();
        if span.is_recording() {
            match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    span.set_attribute(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status),
                    ));
                    // Semantic conventions: on a CLIENT span any 4xx/5xx is an error.
                    if status >= 400 {
                        record_error_on_span(&span, status.to_string(), format!("HTTP {status}"));
                    }
                }
                Err(e) => {
                    let (error_type, message) = classify(e);
                    record_error_on_span(&span, error_type.to_owned(), message);
                }
            }
        }
        // `Drop` ends the span.
    }
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.span().end();
    }
}

/// A low-cardinality error class and a message without the URL (which may carry secrets).
pub fn classify(error: &reqwest_middleware::Error) -> (&'static str, String) {
    match error {
        reqwest_middleware::Error::Reqwest(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect_error"
            } else if e.is_redirect() {
                "redirect_error"
            } else if e.is_body() || e.is_decode() {
                "body_error"
            } else {
                "request_error"
            };
            let mut message = crate::errors::error_chain(&CleanReqwestError(e));
            if message.is_empty() {
                message = kind.to_owned();
            }
            (kind, message)
        }
        reqwest_middleware::Error::Middleware(e) => ("middleware_error", format!("{e:#}")),
    }
}

/// Displays a reqwest error and its sources without the URL.
struct CleanReqwestError<'a>(&'a reqwest::Error);

impl std::fmt::Debug for CleanReqwestError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for CleanReqwestError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_string();
        // reqwest puts the URL in parentheses: "error sending request for url (http://…)".
        match text.find(" for url (") {
            Some(i) => f.write_str(&text[..i]),
            None => f.write_str(&text),
        }
    }
}

impl std::error::Error for CleanReqwestError<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(self.0)
    }
}
