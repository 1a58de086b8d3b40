//! The client side of HTTP tracing: a reqwest-middleware client whose CLIENT
//! span injects the context from INSIDE itself, so the server's span becomes
//! the child of this span (the Python original injected before starting its
//! span, which made every downstream span a sibling).

use std::time::Duration;

use http::Extensions;
use opentelemetry::Context;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware};
use tracing::Span;
use tracing::field::Empty;

use crate::errors::record_error_message;
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
}

/// A traced client with AutoBot's defaults (connect timeout 5 s).
pub fn client() -> ClientWithMiddleware {
    client_builder(reqwest::Client::builder().connect_timeout(Duration::from_secs(5)))
        .build()
        .expect("the HTTP client's TLS backend initialises")
}

/// A traced client from your own `reqwest::ClientBuilder` (timeouts, redirects, limits).
pub fn client_builder(builder: reqwest::ClientBuilder) -> HttpClientBuilder {
    HttpClientBuilder {
        builder,
        propagate: true,
    }
}

impl HttpClientBuilder {
    /// `false` for third-party hosts that must not learn our trace ids:
    /// the CLIENT span is still recorded, no header is sent.
    pub fn propagate(mut self, propagate: bool) -> Self {
        self.propagate = propagate;
        self
    }

    pub fn build(self) -> Result<ClientWithMiddleware, reqwest::Error> {
        Ok(ClientBuilder::new(self.builder.build()?)
            .with(TracingMiddleware::<ClientSpan>::new())
            .with(InjectContext {
                propagate: self.propagate,
            })
            .build())
    }
}

/// Injects the current context: runs after `TracingMiddleware`, inside its span.
struct InjectContext {
    propagate: bool,
}

#[async_trait::async_trait]
impl Middleware for InjectContext {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if self.propagate && extensions.get::<NoPropagation>().is_none() {
            // The CLIENT span is entered here, so it is the current context;
            // with tracing off it is the caller's context, passed on unchanged.
            inject_headers(&Context::current(), req.headers_mut());
        }
        next.run(req, extensions).await
    }
}

/// CLIENT span `{METHOD}` with the semantic-convention attributes.
pub struct ClientSpan;

impl ReqwestOtelSpanBackend for ClientSpan {
    fn on_request_start(req: &Request, _extensions: &mut Extensions) -> Span {
        let url = req.url();
        let method = req.method().as_str();
        let (name, method_attr) = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE"
            | "PATCH" => (method, method),
            _ => ("HTTP", "_OTHER"),
        };
        tracing::info_span!(
            target: "autobot_tracing::http_client",
            "HTTP",
            otel.name = name,
            otel.kind = "client",
            http.request.method = method_attr,
            url.full = %redact_url(url),
            server.address = url.host_str().unwrap_or_default(),
            server.port = i64::from(url.port_or_known_default().unwrap_or_default()),
            http.response.status_code = Empty,
            error.type = Empty,
        )
    }

    fn on_request_end(
        span: &Span,
        outcome: &reqwest_middleware::Result<Response>,
        _extensions: &mut Extensions,
    ) {
        match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                span.record("http.response.status_code", i64::from(status));
                // Semantic conventions: on a CLIENT span any 4xx/5xx is an error.
                if status >= 400 {
                    record_error_message(span, &status.to_string(), &format!("HTTP {status}"));
                }
            }
            Err(e) => {
                let (error_type, message) = classify(e);
                record_error_message(span, error_type, &message);
            }
        }
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
