//! Bounds every service's HTTP listener has, whatever its callers do:
//!
//! - a header-read timeout (`AUTOBOT_HEADER_READ_TIMEOUT_MS`): a connection
//!   that has not sent a whole request head in time is closed (slowloris);
//! - a cap on open connections (`AUTOBOT_MAX_CONNECTIONS`): beyond it new
//!   connections wait in the kernel's backlog instead of using up the
//!   process's file descriptors;
//! - a concurrency limit (`AUTOBOT_MAX_CONCURRENT_REQUESTS`): a request
//!   beyond it is answered at once with 503 and `Retry-After`, not queued;
//! - a body-read timeout (`AUTOBOT_BODY_READ_TIMEOUT_MS`): a request whose
//!   body has not fully arrived by then is answered 408;
//! - a request timeout (`AUTOBOT_REQUEST_TIMEOUT_MS`): a request not
//!   answered by then is answered 504 (408 if its body is still arriving),
//!   and its handler is dropped.
//!
//! The answers are the one error shape (`{"error", "trace_id"}`), inside the
//! tracing layer ([`crate::http::service_router`]), so each carries
//! `traceresponse` and shows in the request's span. The runner reads the
//! settings once at start ([`read_from_env`]) and serves with [`serve`], which
//! also gives handlers the caller's address (`axum::extract::ConnectInfo<SocketAddr>`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use autobot_settings::{Env, SettingError, whole_number_in};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};

pub const HEADER_READ_TIMEOUT_VAR: &str = "AUTOBOT_HEADER_READ_TIMEOUT_MS";
pub const BODY_READ_TIMEOUT_VAR: &str = "AUTOBOT_BODY_READ_TIMEOUT_MS";
pub const REQUEST_TIMEOUT_VAR: &str = "AUTOBOT_REQUEST_TIMEOUT_MS";
pub const MAX_CONCURRENT_REQUESTS_VAR: &str = "AUTOBOT_MAX_CONCURRENT_REQUESTS";
pub const MAX_CONNECTIONS_VAR: &str = "AUTOBOT_MAX_CONNECTIONS";

/// The listener's bounds; [`Limits::default`] is what an unset variable means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Whole request head (request line and headers) within this.
    pub header_read_timeout: Duration,
    /// Whole request body within this, counted from the head.
    pub body_read_timeout: Duration,
    /// Answer within this, counted from the head.
    pub request_timeout: Duration,
    /// Requests handled at once; more are answered 503.
    pub max_concurrent_requests: usize,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            // Longer than the longest legitimate request: the backend's
            // research workflow (browse, embed, then the LLM's 120 s).
            request_timeout: Duration::from_secs(300),
            max_concurrent_requests: 256,
            max_connections: 1024,
        }
    }
}

impl Limits {
    /// Reads the five variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        let d = Self::default();
        let ms = |name: &'static str, default: Duration| -> Result<Duration, SettingError> {
            Ok(Duration::from_millis(
                env.parse_with(name, |v| whole_number_in(v, 1u64, 3_600_000))?
                    .unwrap_or(default.as_millis() as u64),
            ))
        };
        let count = |name: &'static str, default: usize| -> Result<usize, SettingError> {
            Ok(env
                .parse_with(name, |v| whole_number_in(v, 1usize, 1_000_000))?
                .unwrap_or(default))
        };
        Ok(Self {
            header_read_timeout: ms(HEADER_READ_TIMEOUT_VAR, d.header_read_timeout)?,
            body_read_timeout: ms(BODY_READ_TIMEOUT_VAR, d.body_read_timeout)?,
            request_timeout: ms(REQUEST_TIMEOUT_VAR, d.request_timeout)?,
            max_concurrent_requests: count(MAX_CONCURRENT_REQUESTS_VAR, d.max_concurrent_requests)?,
            max_connections: count(MAX_CONNECTIONS_VAR, d.max_connections)?,
        })
    }
}

static CONFIGURED: OnceLock<Limits> = OnceLock::new();

/// Reads the limits from the process environment once, at start (the
/// runner calls it with the other settings); a bad value names its variable.
pub fn read_from_env() -> Result<(), SettingError> {
    let limits = Limits::from_lookup(autobot_settings::process_lookup)?;
    let _ = CONFIGURED.set(limits);
    Ok(())
}

/// The process's limits: as read at start, else the defaults (a router
/// built in a test).
pub fn configured() -> Limits {
    CONFIGURED.get().cloned().unwrap_or_default()
}

/// The per-request bounds as a router layer: concurrency, body-read and
/// request timeouts. [`crate::http::service_router`] puts it inside the
/// tracing layer.
pub fn request_limits_layer(router: Router) -> Router {
    request_limits_layer_with(router, configured())
}

/// [`request_limits_layer`] with explicit limits.
pub fn request_limits_layer_with(router: Router, limits: Limits) -> Router {
    let state = Arc::new(RequestLimits {
        permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
        limits,
    });
    router.layer(axum::middleware::from_fn(move |req: Request, next| {
        let state = state.clone();
        async move { state.handle(req, next).await }
    }))
}

struct RequestLimits {
    limits: Limits,
    permits: Arc<Semaphore>,
}

impl RequestLimits {
    async fn handle(&self, req: Request, next: axum::middleware::Next) -> Response {
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            let mut res = crate::http::error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "busy: {} requests in flight ({MAX_CONCURRENT_REQUESTS_VAR}); retry shortly",
                    self.limits.max_concurrent_requests
                ),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return res;
        };
        let (parts, body) = req.into_parts();
        let done = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(&body)));
        let body = Body::new(WatchedBody {
            inner: body,
            done: done.clone(),
        });
        let work = next.run(Request::from_parts(parts, body));
        tokio::pin!(work);
        let body_deadline = tokio::time::sleep(self.limits.body_read_timeout);
        tokio::pin!(body_deadline);
        let request_deadline = tokio::time::sleep(self.limits.request_timeout);
        tokio::pin!(request_deadline);
        let mut body_checked = false;
        loop {
            tokio::select! {
                res = &mut work => return res,
                () = &mut body_deadline, if !body_checked => {
                    body_checked = true;
                    if !done.load(Ordering::Acquire) {
                        return self.body_too_slow();
                    }
                }
                () = &mut request_deadline => {
                    if !done.load(Ordering::Acquire) {
                        return self.body_too_slow();
                    }
                    return crate::http::error_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "no answer within {} ms ({REQUEST_TIMEOUT_VAR})",
                            self.limits.request_timeout.as_millis()
                        ),
                    );
                }
            }
        }
    }

    fn body_too_slow(&self) -> Response {
        let mut res = crate::http::error_response(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} ms ({BODY_READ_TIMEOUT_VAR})",
                self.limits.body_read_timeout.as_millis()
            ),
        );
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    }
}

pin_project_lite::pin_project! {
    /// The request body, telling whether it has been read to its end.
    struct WatchedBody {
        #[pin]
        inner: Body,
        done: Arc<AtomicBool>,
    }
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` over HTTP/1.1 until `shutdown` resolves,
/// then lets the requests in flight finish (each bounded by the request
/// timeout) and returns. Connections are capped and each must send its
/// request head within the header-read timeout (else it is closed).
/// `listener` is a plain TCP listener (with `TCP_NODELAY` set by the caller)
/// or the TLS listener of shared/lifecycle/src/tls.rs, whose clients are
/// offered HTTP/1.1 only (shared/tracing/src/http/client.rs).
pub async fn serve<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    serve_with(listener, router, configured(), shutdown).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    // Every connection task holds a receiver: when all are dropped, every
    // connection has ended.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        // axum's listeners wait out failed accepts themselves (out of file
        // descriptors and the like) instead of spinning.
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let stop = stop_rx.clone();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            serve_connection(stream, peer, router, header_read_timeout, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    stop_tx.closed().await;
    Ok(())
}

async fn serve_connection<Io>(
    stream: Io,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = tower::ServiceExt::map_request(router, move |mut req: Request<_>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let service = TowerToHyperService::new(service);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use autobot_settings::checks::{assert_error_texts, assert_refused};
    use autobot_settings::pairs;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use tokio::net::TcpListener;

    use super::*;

    fn small() -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(300),
            body_read_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(600),
            max_concurrent_requests: 1,
            max_connections: 8,
        }
    }

    /// Serves `routes` (as a service would, with the limits inside) on a
    /// free port; returns its address and the sender that stops it.
    async fn start(
        routes: Router,
        limits: Limits,
    ) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = request_limits_layer_with(routes, limits.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Sends `request` raw and reads until the server closes or answers.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n")
                        && String::from_utf8_lossy(&buf).contains("}")
                    {
                        break;
                    }
                }
                Err(_) => panic!(
                    "no answer and no close within 10 s: {:?}",
                    String::from_utf8_lossy(&buf)
                ),
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn routes() -> Router {
        Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .route("/echo", post(|body: Bytes| async move { body }))
    }

    #[tokio::test]
    async fn a_connection_that_does_not_finish_its_head_is_closed() {
        let (addr, _stop) = start(routes(), small()).await;
        let started = Instant::now();
        let answer = exchange(addr, b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        assert!(!answer.contains("200 OK"), "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "closed by the header-read timeout"
        );
        // A whole request still answers.
        let answer = exchange(
            addr,
            b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_request_beyond_the_concurrency_limit_is_a_json_503_with_retry_after() {
        let (addr, _stop) = start(
            routes(),
            Limits {
                request_timeout: Duration::from_secs(20),
                ..small()
            },
        )
        .await;
        let mut busy = TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = exchange(
            addr,
            b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("retry-after: 1"),
            "{answer}"
        );
        assert!(
            answer.contains(
                r#""error":"busy: 1 requests in flight (AUTOBOT_MAX_CONCURRENT_REQUESTS)"#
            ),
            "{answer}"
        );
        drop(busy);
    }

    #[tokio::test]
    async fn a_slow_handler_is_a_json_504_and_a_slow_body_a_408() {
        let (addr, _stop) = start(
            routes(),
            Limits {
                max_concurrent_requests: 8,
                ..small()
            },
        )
        .await;
        let answer = exchange(
            addr,
            b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
        assert!(answer.contains("AUTOBOT_REQUEST_TIMEOUT_MS"), "{answer}");
        let answer = exchange(
            addr,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nab",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("AUTOBOT_BODY_READ_TIMEOUT_MS"), "{answer}");
        let answer = exchange(
            addr,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab",
        )
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ab"),
            "{answer}"
        );
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(Limits::from_lookup(pairs(&[])).unwrap(), Limits::default());
        let l = Limits::from_lookup(pairs(&[
            (HEADER_READ_TIMEOUT_VAR, "500"),
            (BODY_READ_TIMEOUT_VAR, "600"),
            (REQUEST_TIMEOUT_VAR, "700"),
            (MAX_CONCURRENT_REQUESTS_VAR, "3"),
            (MAX_CONNECTIONS_VAR, "4"),
        ]))
        .unwrap();
        assert_eq!(l.header_read_timeout, Duration::from_millis(500));
        assert_eq!(l.body_read_timeout, Duration::from_millis(600));
        assert_eq!(l.request_timeout, Duration::from_millis(700));
        assert_eq!((l.max_concurrent_requests, l.max_connections), (3, 4));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let read = |vars: &[(&str, &str)]| Limits::from_lookup(pairs(vars));
        assert_refused(
            read,
            &[
                (HEADER_READ_TIMEOUT_VAR, "0"),
                (BODY_READ_TIMEOUT_VAR, "soon"),
                (REQUEST_TIMEOUT_VAR, "-5"),
                (MAX_CONCURRENT_REQUESTS_VAR, "0"),
                (MAX_CONNECTIONS_VAR, "many"),
            ],
        );
        assert_error_texts(
            read,
            &[
                r#"AUTOBOT_HEADER_READ_TIMEOUT_MS="0" is not valid: must be between 1 and 3600000"#,
                r#"AUTOBOT_MAX_CONCURRENT_REQUESTS="0" is not valid: must be between 1 and 1000000"#,
            ],
        );
    }
}
