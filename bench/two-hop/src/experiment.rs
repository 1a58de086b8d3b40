//! Experiment for issue 10's profile, not product code: a CLIENT span built
//! with the OpenTelemetry API (as `autobot_tracing`'s server layer builds
//! its SERVER span) instead of reqwest-tracing through the `tracing` bridge.
//! `TWO_HOP_CLIENT=otel-api` makes service A use it, so `bench/profile.sh`
//! can measure what the proposal would save. Same span name, kind,
//! attributes and inject-from-inside-the-span as `autobot_tracing::http::client`.

use http::Extensions;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

/// A client whose CLIENT span is made with the OpenTelemetry API.
pub fn otel_api_client() -> ClientWithMiddleware {
    let inner = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("the HTTP client's TLS backend initialises");
    ClientBuilder::new(inner)
        .with(OtelApiClientSpan {
            tracer: global::tracer(autobot_tracing::SCOPE_NAME),
        })
        .build()
}

struct OtelApiClientSpan {
    tracer: global::BoxedTracer,
}

#[async_trait::async_trait]
impl Middleware for OtelApiClientSpan {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let parent = Context::current();
        let url = req.url();
        let method = req.method().as_str().to_owned();
        let attributes = vec![
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("url.full", autobot_tracing::redact::redact_url(url)),
            KeyValue::new(
                "server.address",
                url.host_str().unwrap_or_default().to_owned(),
            ),
            KeyValue::new(
                "server.port",
                i64::from(url.port_or_known_default().unwrap_or_default()),
            ),
        ];
        let span = self
            .tracer
            .span_builder(method)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        let cx = parent.with_span(span);
        autobot_tracing::inject_headers(&cx, req.headers_mut());
        let result = next.run(req, extensions).with_context(cx.clone()).await;
        let span = cx.span();
        match &result {
            Ok(response) => {
                let status = response.status().as_u16();
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                if status >= 400 {
                    span.set_attribute(KeyValue::new("error.type", status.to_string()));
                    span.set_status(Status::error(format!("HTTP {status}")));
                }
            }
            Err(e) => {
                let (kind, message) = autobot_tracing::http::classify(e);
                span.set_attribute(KeyValue::new("error.type", kind));
                span.set_status(Status::error(message));
            }
        }
        span.end();
        result
    }
}
