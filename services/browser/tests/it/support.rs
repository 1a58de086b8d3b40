//! The local web site and the browser process.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autobot_testkit::process::{Launch, Process};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Size of the page `/huge` would send if read to the end: 256 MiB.
pub const HUGE_PAGE_BYTES: u64 = 256 * 1024 * 1024;

/// One request the site received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub traceparent: Option<String>,
}

/// A web site on 127.0.0.1 that records every request.
#[derive(Clone)]
pub struct Site {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Bytes `/huge` handed to the connection so far.
    pub huge_sent: Arc<AtomicU64>,
}

pub const ARTICLE: &str = r#"<!doctype html>
<html><head>
<title>  The Rust   Tracing Guide </title>
<meta name="description" content="How spans cross services.">
<base href="/docs/">
<style>body { color: black }</style>
<script>var leaked = "script text must not appear";</script>
</head><body>
<nav><a href="/">Home</a> <a href="intro.html#top">Intro</a> <a href="intro.html">Intro again</a></nav>
<h1>Distributed tracing</h1>
<p>A trace is a tree of spans. Each span has a parent, except the root, and every service adds its own spans to the tree it was handed.</p>
<p hidden>hidden paragraph text</p>
<div style="display: none">display none text <a href="/secret">secret link</a></div>
<p>Context propagation carries the trace id across process boundaries: HTTP headers, message envelopes, and environment variables for processes started over SSH.</p>
<ul><li>traceparent</li><li>tracestate</li></ul>
<p><a href="https://example.org/spec">The W3C specification</a> and <a href="mailto:team@example.org">mail us</a> and <a href="ftp://files.example.org/x">files</a>.</p>
<noscript>noscript text</noscript>
</body></html>"#;

impl Site {
    pub async fn start() -> Site {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let huge_sent: Arc<AtomicU64> = Arc::default();
        let record = {
            let seen = seen.clone();
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(Seen {
                        path: req.uri().path().to_owned(),
                        traceparent: header_of(req.headers(), "traceparent"),
                    });
                    next.run(req).await
                }
            }
        };
        let sent = huge_sent.clone();
        let router = Router::new()
            .route("/docs/article.html", get(|| async { html(ARTICLE) }))
            .route("/loop", get(|| async { Redirect::temporary("/loop") }))
            .route("/hop/{n}", get(hop))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    html("<p>too late</p>")
                }),
            )
            .route("/huge", get(move || huge(sent.clone())))
            .route(
                "/binary",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "image/png")],
                        vec![0x89_u8, b'P', b'N', b'G', 0, 1, 2, 3],
                    )
                }),
            )
            .route(
                "/to-metadata",
                get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
            )
            .route("/gone", get(|| async { StatusCode::NOT_FOUND }))
            .layer(axum::middleware::from_fn(record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Site {
            addr,
            seen,
            huge_sent,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn header_of(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// `/hop/N` redirects to `/hop/N-1`; `/hop/0` is the article.
async fn hop(axum::extract::Path(n): axum::extract::Path<u32>) -> Response {
    if n == 0 {
        Redirect::temporary("/docs/article.html").into_response()
    } else {
        Redirect::temporary(&format!("/hop/{}", n - 1)).into_response()
    }
}

/// 256 MiB of HTML, generated as it is sent (never held), counting what left.
async fn huge(sent: Arc<AtomicU64>) -> Response {
    const CHUNK: &[u8] = &[b'x'; 64 * 1024];
    let mut first = true;
    let stream = futures::stream::iter(0..HUGE_PAGE_BYTES / CHUNK.len() as u64).map(move |_| {
        let chunk = if first {
            first = false;
            bytes::Bytes::from_static(b"<html><body><p>")
        } else {
            bytes::Bytes::from_static(CHUNK)
        };
        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk)
    });
    (
        [(header::CONTENT_TYPE, "text/html")],
        Body::from_stream(stream),
    )
        .into_response()
}

use futures::StreamExt as _;

/// Starts `autobot-browser` (testkit's launcher: port 0, readiness line)
/// exporting to `otlp_endpoint`, with `env` on top. The site is on
/// 127.0.0.1, which the browser refuses by default: the tests opt in, as
/// the local run does (`env` may take it back with an empty value).
pub fn start_browser(otlp_endpoint: &str, env: &[(&str, &str)]) -> Process {
    Launch::workspace_bin("autobot-browser")
        .env("AUTOBOT_JAEGER_ENDPOINT", otlp_endpoint)
        .env("RUST_LOG", "warn")
        .env("AUTOBOT_BROWSER_ALLOW", "127.0.0.1")
        .envs(env.iter().copied())
        .start()
}

/// Peak resident memory of the process so far (VmHWM), in bytes.
pub fn peak_rss(process: &Process) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", process.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

/// A client whose every request is bounded: a hang fails the test instead of blocking it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}
