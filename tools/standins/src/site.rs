//! A demo web site: a few articles the research workflow can read. It is
//! traced like a web app of ours would be (the server layer continues the
//! browser's trace), so the research trace shows the context reaching it.

use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The article the local run asks about; each paragraph is about one thing.
pub const TRACING_ARTICLE: &str = r#"<!doctype html>
<html lang="en"><head>
<title>Tracing a request across AutoBot</title>
<meta name="description" content="How one request becomes one trace across HTTP, Redis and SSH.">
<script>window.analytics = "this script text is not part of the page";</script>
<style>p { margin: 1em; }</style>
</head><body>
<nav><a href="/">Home</a> <a href="/articles/cooking">Cooking</a> <a href="https://opentelemetry.io/docs/">OpenTelemetry docs</a></nav>
<article>
<h1>Tracing a request across AutoBot</h1>
<p>AutoBot is an automation platform spread over six virtual machines: a backend, an NPU worker, an AI stack, a browser service and a certificate distributor, with Redis and Jaeger on a machine of their own.</p>
<p>Between services that speak HTTP, the trace context travels in the traceparent header defined by the W3C Trace Context specification. The header carries the trace id, the id of the calling span and the sampling flag, and the receiving service makes its own span a child of that calling span.</p>
<p>Work that goes through Redis Streams carries the same context inside the job envelope: the producer writes its span context into a trace map, and the worker that consumes the job continues the trace from it, even when the job is delivered a second time.</p>
<p>Commands started over SSH receive the context as the environment variables TRACEPARENT and TRACESTATE, which OpenSSH passes on only when its AcceptEnv setting names them.</p>
<p>Sampling is decided once, at the root of the trace, and every service respects the decision of its caller, so a trace is either kept whole or dropped whole.</p>
<p>Jaeger groups spans by host to correct clock skew, so every service reports its host name, and the virtual machines keep their clocks in sync with NTP.</p>
<div hidden>This hidden paragraph must never be read.</div>
</article>
<footer><a href="/articles/tracing#top">Back to top</a></footer>
</body></html>"#;

const COOKING_ARTICLE: &str = r#"<!doctype html>
<html lang="en"><head><title>Bread at home</title></head><body>
<h1>Bread at home</h1>
<p>Flour, water, salt and yeast are all a simple loaf needs; time does the rest.</p>
<p>A hot oven and a tray of water give the crust its shine.</p>
<a href="/articles/tracing">Tracing</a>
</body></html>"#;

const INDEX: &str = r#"<!doctype html><html><head><title>Demo site</title></head><body>
<h1>Demo site</h1><ul><li><a href="/articles/tracing">Tracing</a></li><li><a href="/articles/cooking">Cooking</a></li></ul>
</body></html>"#;

/// The site's routes; `/health` is left untraced.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/articles/tracing", get(|| async { Html(TRACING_ARTICLE) }))
        .route("/articles/cooking", get(|| async { Html(COOKING_ARTICLE) }))
        .route("/health", get(|| async { "ok" }))
        .layer(autobot_tracing::http::server_layer().untraced_paths(["/health"]))
}
