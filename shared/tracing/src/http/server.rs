//! The server side of HTTP tracing: a tower layer for axum that continues the
//! caller's trace and answers with `traceresponse`.
//!
//! The caller's context is extracted BEFORE the SERVER span is created, so the
//! span is the child of the caller's CLIENT span. The span is created with
//! the OpenTelemetry API directly (not through `tracing`): it is the hottest
//! span of every service, and `tracing` spans created by handlers still nest
//! under it because the layer makes its context current while the handler runs.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::extract::MatchedPath;
use http::{HeaderName, HeaderValue, Request, Response};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, Value};
use pin_project_lite::pin_project;

use super::client::known_method;
use super::red::ServerRequest;
use super::route_names::{RouteNames, route_names};
use crate::propagation::{extract_headers, traceresponse_bytes};
use crate::redact::redact_query;

/// The W3C Trace Context Level 2 response header.
pub const TRACERESPONSE: &str = "traceresponse";
/// The same name made at compile time: inserting the `&str` parsed it on
/// every response.
const TRACERESPONSE_HEADER: HeaderName = HeaderName::from_static(TRACERESPONSE);

/// Layer that traces every request except the paths it is told to leave alone.
#[derive(Clone, Debug, Default)]
pub struct ServerTraceLayer {
    untraced: Arc<[String]>,
}

/// The AutoBot server layer; add it with `Router::layer` (after the routes)
/// so that the matched route is known.
pub fn server_layer() -> ServerTraceLayer {
    ServerTraceLayer::default()
}

impl ServerTraceLayer {
    /// Paths (exact) that start no trace, such as `/health` polled by a load
    /// balancer: a request to one gets no span of its own. A caller that
    /// brings its trace (the backend's cluster health check) still finds the
    /// request in it, as on any other path, so that trace stays whole.
    pub fn untraced_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.untraced = paths.into_iter().map(Into::into).collect();
        self
    }
}

impl<S> tower::Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ServerTrace {
            inner,
            untraced: self.untraced.clone(),
        }
    }
}

/// The service [`ServerTraceLayer`] wraps around a router.
#[derive(Clone, Debug)]
pub struct ServerTrace<S> {
    inner: S,
    untraced: Arc<[String]>,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for ServerTrace<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: std::fmt::Display,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let parent = extract_headers(req.headers());
        let path = req.uri().path();
        if self.untraced.iter().any(|p| p == path) && !parent.span().span_context().is_valid() {
            let red = ServerRequest::start(&req, false);
            return ResponseFuture::Untraced {
                inner: self.inner.call(req),
                red,
            };
        }
        let red = ServerRequest::start(&req, true);
        let cx = match crate::init::tracer() {
            Some(tracer) => {
                // The sampler reads neither the name nor the attributes
                // (sampler.rs): a span starts with its method as name (a
                // static string), and only a kept one gets `{METHOD} {route}`
                // and its attributes. A `format!` per request, sampled or
                // not, cost ~1 000 instructions (docs/performance.md).
                let method = known_method(req.method());
                crate::span::start_in_context(
                    tracer,
                    tracer
                        .span_builder(method.unwrap_or("HTTP"))
                        .with_kind(SpanKind::Server),
                    &parent,
                    SERVER_SPAN_ATTRIBUTES,
                    |span| {
                        let route = Route::of(&req);
                        if route.is_some() {
                            span.update_name(server_span_name(method, route.as_ref()));
                        }
                        server_span_attributes(&req, method, route.as_ref(), |kv| {
                            span.set_attribute(kv)
                        });
                    },
                )
            }
            // Tracing is off: still hand the caller's context on to our own calls.
            None => parent,
        };
        let inner = {
            let _attached = cx.clone().attach();
            self.inner.call(req)
        };
        ResponseFuture::Traced {
            inner: inner.with_context(cx.clone()),
            cx,
            red,
        }
    }
}

pin_project! {
    /// Future of [`ServerTrace`].
    #[project = ResponseFutureProj]
    pub enum ResponseFuture<F> {
        Traced { #[pin] inner: opentelemetry::context::WithContext<F>, cx: Context, red: Option<ServerRequest> },
        Untraced { #[pin] inner: F, red: Option<ServerRequest> },
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProj::Untraced { inner, red } => {
                let result = std::task::ready!(inner.poll(task));
                if let Some(red) = red.take() {
                    red.finish(result.as_ref().ok().map(|r| r.status().as_u16()), None);
                }
                Poll::Ready(result)
            }
            ResponseFutureProj::Traced { inner, cx, red } => {
                let result = std::task::ready!(inner.poll(task));
                if let Some(red) = red.take() {
                    red.finish(result.as_ref().ok().map(|r| r.status().as_u16()), Some(cx));
                }
                let span = cx.span();
                match result {
                    Ok(mut response) => {
                        let status = response.status().as_u16();
                        span.set_attribute(KeyValue::new(
                            "http.response.status_code",
                            i64::from(status),
                        ));
                        // Semantic conventions: 5xx is a server error; 4xx is the caller's.
                        if status >= 500 {
                            span.set_attribute(KeyValue::new("error.type", status.to_string()));
                            span.set_status(Status::error(""));
                        }
                        if let Some(value) =
                            traceresponse_bytes(cx).and_then(|v| HeaderValue::from_bytes(&v).ok())
                        {
                            response.headers_mut().insert(TRACERESPONSE_HEADER, value);
                        }
                        span.end();
                        Poll::Ready(Ok(response))
                    }
                    Err(e) => {
                        span.set_attribute(KeyValue::new("error.type", "_OTHER"));
                        span.set_status(Status::error(e.to_string()));
                        span.end();
                        Poll::Ready(Err(e))
                    }
                }
            }
        }
    }
}

/// Names the authenticated caller on the current request's SERVER span:
/// `enduser.id` (semantic conventions). A name only, never a credential.
/// Call it from a layer or handler the server layer runs.
pub fn record_enduser_id(id: &str) {
    Context::current()
        .span()
        .set_attribute(KeyValue::new("enduser.id", id.to_owned()));
}

/// Room for a SERVER span's attributes: up to ten at the start, the
/// status, `enduser.id`, an error's type (crate::span::start_in_context).
const SERVER_SPAN_ATTRIBUTES: usize = 16;

/// Span name `{METHOD} {route}` (`HTTP` for a method semconv does not know).
fn server_span_name(method: Option<&'static str>, route: Option<&Route<'_>>) -> Cow<'static, str> {
    match route {
        Some(Route {
            names: Some(names), ..
        }) => Cow::Borrowed(names.name(method)),
        Some(Route { template, .. }) => {
            Cow::Owned(format!("{} {template}", method.unwrap_or("HTTP")))
        }
        None => Cow::Borrowed(method.unwrap_or("HTTP")),
    }
}

/// The route axum matched: its template, and its static names when the
/// set of route_names.rs keeps them (looked up once per kept request).
struct Route<'a> {
    template: &'a str,
    names: Option<&'static RouteNames>,
}

impl<'a> Route<'a> {
    fn of<B>(req: &'a Request<B>) -> Option<Self> {
        let template = req.extensions().get::<MatchedPath>()?.as_str();
        Some(Self {
            template,
            names: route_names(template),
        })
    }

    /// `http.route`.
    fn attribute(&self) -> KeyValue {
        match self.names {
            Some(names) => KeyValue::new("http.route", names.route()),
            None => KeyValue::new("http.route", self.template.to_owned()),
        }
    }
}

/// The attributes known when the request arrives, handed to `push` one by
/// one (straight into the span's room, no `Vec` of their own).
fn server_span_attributes<B>(
    req: &Request<B>,
    method: Option<&'static str>,
    route: Option<&Route<'_>>,
    mut push: impl FnMut(KeyValue),
) {
    match method {
        Some(method) => push(KeyValue::new("http.request.method", method)),
        None => {
            push(KeyValue::new("http.request.method", "_OTHER"));
            push(KeyValue::new(
                "http.request.method_original",
                req.method().as_str().to_owned(),
            ));
        }
    }
    push(KeyValue::new("url.path", req.uri().path().to_owned()));
    push(KeyValue::new(
        "url.scheme",
        match req.uri().scheme_str() {
            None | Some("http") => Value::from("http"),
            Some("https") => Value::from("https"),
            Some(other) => Value::from(other.to_owned()),
        },
    ));
    if let Some(route) = route {
        push(route.attribute());
    }
    if let Some(query) = req.uri().query() {
        push(KeyValue::new("url.query", redact_query(query)));
    }
    if let Some(host) = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        let (address, port) = match host.rsplit_once(':') {
            Some((a, p)) if p.parse::<u16>().is_ok() => (a, p.parse::<i64>().ok()),
            _ => (host, None),
        };
        push(KeyValue::new("server.address", address.to_owned()));
        if let Some(port) = port {
            push(KeyValue::new("server.port", port));
        }
    }
    push(KeyValue::new(
        "network.protocol.version",
        protocol_version(req.version()),
    ));
    if let Some(ua) = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
    {
        push(KeyValue::new(
            "user_agent.original",
            ua.chars().take(256).collect::<String>(),
        ));
    }
}

fn protocol_version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    #[test]
    fn a_known_method_names_the_span_and_the_attribute() {
        let req = Request::builder()
            .method("PATCH")
            .uri("/x")
            .body(())
            .unwrap();
        let method = known_method(req.method());
        let route = Route::of(&req);
        assert_eq!(server_span_name(method, route.as_ref()), "PATCH");
        let mut attributes = Vec::new();
        server_span_attributes(&req, method, route.as_ref(), |kv| attributes.push(kv));
        assert_eq!(
            attribute(&attributes, "http.request.method").as_deref(),
            Some("PATCH")
        );
        assert_eq!(attribute(&attributes, "http.request.method_original"), None);
    }

    #[test]
    fn an_unknown_method_is_http_and_other_with_the_original_kept() {
        let req = Request::builder()
            .method("PURGE")
            .uri("/x")
            .body(())
            .unwrap();
        let method = known_method(req.method());
        let route = Route::of(&req);
        assert_eq!(server_span_name(method, route.as_ref()), "HTTP");
        let mut attributes = Vec::new();
        server_span_attributes(&req, method, route.as_ref(), |kv| attributes.push(kv));
        assert_eq!(
            attribute(&attributes, "http.request.method").as_deref(),
            Some("_OTHER")
        );
        assert_eq!(
            attribute(&attributes, "http.request.method_original").as_deref(),
            Some("PURGE")
        );
    }
}
