//! The two-hop benchmark pair: service A (`GET /hop`) calls service B
//! (`GET /leaf`) with the traced client and returns B's body. Both are built
//! exactly as AutoBot's services are (`autobot_tracing::init`,
//! `http::server_layer()`, `http::client()`), so `bench/run.sh` measures the
//! layer and client the services use. A third role, `black-hole`, accepts
//! TCP connections and never answers: the exporter's worst case.
//!
//! The security modes use the services' own code too: with `AUTOBOT_TLS_*`
//! set, B serves mutual TLS (autobot-tls's listener) and A calls it over
//! https presenting its certificate (`http::mutual_tls_client`); with
//! `AUTOBOT_API_KEYS_FILE` set, A checks an operator key on `/hop` with the
//! backend's middleware. Each process prints the TCP connections it
//! accepted when it stops: with the client's pool, a handful for a run of
//! hundreds of thousands of requests (one TLS handshake each).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use autobot_wire::error::ErrorBody;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest_middleware::ClientWithMiddleware;

/// Which process this is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Service A: `GET /hop` calls B's `/leaf`.
    A { leaf_url: String },
    /// Service B: `GET /leaf` answers a small JSON.
    B,
    /// Accepts connections, reads and discards, never answers.
    BlackHole,
}

/// Configuration, parsed once: the role is the first argument, the rest
/// comes from the environment (`TWO_HOP_LISTEN`, `TWO_HOP_LEAF_URL`).
#[derive(Clone, Debug)]
pub struct Config {
    pub role: Role,
    pub listen: SocketAddr,
    /// AUTOBOT_TLS_*: B serves mutual TLS, A calls it with this certificate.
    pub tls: Option<Arc<autobot_tls::TlsSource>>,
    /// AUTOBOT_API_KEYS_FILE: A checks an operator key on `/hop`.
    pub auth: Option<autobot_backend::auth::ApiAuth>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "usage: autobot-bench-two-hop a|b|black-hole (TWO_HOP_LISTEN=addr:port, TWO_HOP_LEAF_URL=http://… for a)"
    )]
    Usage,
    #[error("unknown role {0:?}: expected a, b or black-hole")]
    Role(String),
    #[error("{name} is not set")]
    Missing { name: &'static str },
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Setting(#[from] autobot_settings::SettingError),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let role = std::env::args().nth(1).ok_or(ConfigError::Usage)?;
        let mut cfg = Self::parse(
            &role,
            std::env::var("TWO_HOP_LISTEN").ok(),
            std::env::var("TWO_HOP_LEAF_URL").ok(),
        )?;
        let env = autobot_settings::Env::process();
        if let Some(files) = autobot_tls::service_tls_files(&env)? {
            cfg.tls = Some(autobot_tls::TlsSource::load(files, true)?);
        }
        if let Some(path) = env.get("AUTOBOT_API_KEYS_FILE") {
            let auth = autobot_backend::auth::read_keys_file(std::path::Path::new(&path)).map_err(
                |e| ConfigError::Invalid {
                    name: "AUTOBOT_API_KEYS_FILE",
                    value: path.clone(),
                    reason: e.to_string(),
                },
            )?;
            cfg.auth = Some(auth);
        }
        Ok(cfg)
    }

    pub fn parse(
        role: &str,
        listen: Option<String>,
        leaf_url: Option<String>,
    ) -> Result<Self, ConfigError> {
        let listen = listen.ok_or(ConfigError::Missing {
            name: "TWO_HOP_LISTEN",
        })?;
        let listen =
            listen
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                    name: "TWO_HOP_LISTEN",
                    value: listen.clone(),
                    reason: e.to_string(),
                })?;
        let role = match role {
            "a" => {
                let url = leaf_url.ok_or(ConfigError::Missing {
                    name: "TWO_HOP_LEAF_URL",
                })?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        name: "TWO_HOP_LEAF_URL",
                        value: url,
                        reason: "expected an http:// or https:// URL".into(),
                    });
                }
                Role::A { leaf_url: url }
            }
            "b" => Role::B,
            "black-hole" => Role::BlackHole,
            other => return Err(ConfigError::Role(other.to_owned())),
        };
        Ok(Self {
            role,
            listen,
            tls: None,
            auth: None,
        })
    }
}

/// Why a process stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Telemetry(#[from] autobot_tracing::InitError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Runs the configured role until SIGTERM or ctrl-c, then flushes telemetry.
pub async fn run(cfg: Config) -> Result<(), RunError> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let (service, app) = match cfg.role {
        Role::BlackHole => return black_hole(listener).await,
        Role::A { leaf_url } => ("bench-a", Some(leaf_url)),
        Role::B => ("bench-b", None),
    };
    let telemetry = autobot_tracing::init(service, env!("CARGO_PKG_VERSION"))?;
    // AUTOBOT_METRICS_ENABLED=false: the "metrics off" side of bench/run.sh's
    // comparison (the services read it in shared/lifecycle/src/metrics.rs).
    autobot_metrics::set_enabled(metrics_enabled());
    // Built after init: the layer takes the tracer init installed.
    let router = match app {
        Some(leaf_url) => app_a(leaf_url, cfg.tls.clone(), cfg.auth.clone()),
        None => app_b(),
    };
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = || {
        let accepted = accepted.clone();
        move || {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
    };
    use axum::serve::ListenerExt as _;
    // B serves mutual TLS when it has the files; A's own listener stays
    // plain HTTP (wrk calls it).
    let served = match (&cfg.tls, service) {
        (Some(tls), "bench-b") => {
            let tls = autobot_tls::server::ServerTls::new(
                tls.clone(),
                autobot_tls::server::ClientCertificates::Required,
            )
            .map_err(|e| RunError::Serve(std::io::Error::other(e)))?;
            let listener = autobot_tls::server::TlsListener::new(listener, Arc::new(tls))
                .map_err(RunError::Serve)?
                .tap_io({
                    let count = counter();
                    move |_| count()
                });
            println!("{service} listening on https://{}", cfg.listen);
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
        _ => {
            println!("{service} listening on http://{}", cfg.listen);
            let count = counter();
            axum::serve(listener.tap_io(move |_| count()), router)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
    };
    let stats = telemetry.shutdown().await;
    println!(
        "{service} telemetry: ended={} exported={} export_failed={}",
        stats.ended, stats.exported, stats.export_failed
    );
    println!(
        "{service} connections accepted: {}",
        accepted.load(Ordering::Relaxed)
    );
    served.map_err(RunError::Serve)
}

/// AUTOBOT_METRICS_ENABLED as the services read it: off only for false/0/no/off.
fn metrics_enabled() -> bool {
    std::env::var("AUTOBOT_METRICS_ENABLED").map_or(true, |v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "false" | "0" | "no" | "off"
        )
    })
}

struct HopState {
    client: ClientWithMiddleware,
    leaf_url: String,
}

/// Service A: calls B over mutual TLS with `tls`, checks an operator key
/// with `auth`.
pub fn app_a(
    leaf_url: String,
    tls: Option<Arc<autobot_tls::TlsSource>>,
    auth: Option<autobot_backend::auth::ApiAuth>,
) -> Router {
    let client = match tls {
        Some(tls) => autobot_tracing::http::mutual_tls_client(tls)
            .expect("a TLS client from files already checked"),
        None => autobot_tracing::http::client().expect("the system's CA certificates"),
    };
    let state = Arc::new(HopState { client, leaf_url });
    let mut routes = Router::new().route("/hop", get(hop)).with_state(state);
    if let Some(auth) = auth {
        routes = routes.route_layer(axum::middleware::from_fn_with_state(
            auth,
            autobot_backend::auth::require_key,
        ));
    }
    routes.layer(autobot_tracing::http::server_layer())
}

/// Service B.
pub fn app_b() -> Router {
    Router::new()
        .route("/leaf", get(leaf))
        .layer(autobot_tracing::http::server_layer())
}

const LEAF_BODY: &str = r#"{"leaf":"b","ok":true}"#;

async fn leaf() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], LEAF_BODY)
}

async fn hop(State(state): State<Arc<HopState>>) -> Result<Response, HopError> {
    let response = state.client.get(&state.leaf_url).send().await?;
    let status = response.status();
    if !status.is_success() {
        return Err(HopError::LeafStatus(status.as_u16()));
    }
    let body = response
        .bytes()
        .await
        .map_err(reqwest_middleware::Error::Reqwest)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Errors of `/hop`, mapped to responses in one place.
#[derive(Debug, thiserror::Error)]
enum HopError {
    #[error("calling B failed: {}", autobot_tracing::http::classify(.0).1)]
    Leaf(#[from] reqwest_middleware::Error),
    #[error("B answered {0}")]
    LeafStatus(u16),
}

impl IntoResponse for HopError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
            trace_id: autobot_tracing::current_trace_id(),
        };
        (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
    }
}

/// Accepts every connection and reads it to the end without ever writing:
/// an OTLP receiver that takes the bytes and never answers.
async fn black_hole(listener: tokio::net::TcpListener) -> Result<(), RunError> {
    use tokio::io::AsyncReadExt;
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    println!("black-hole listening on {addr}");
    let accept = async {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    };
    tokio::select! {
        () = accept => Ok(()),
        () = shutdown_signal() => Ok(()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_a_needs_a_leaf_url() {
        let err = Config::parse("a", Some("127.0.0.1:1".into()), None).unwrap_err();
        assert!(err.to_string().contains("TWO_HOP_LEAF_URL"), "{err}");
    }

    #[test]
    fn a_bad_listen_address_names_variable_and_value() {
        let err = Config::parse("b", Some("nowhere".into()), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("TWO_HOP_LISTEN") && text.contains("nowhere"),
            "{text}"
        );
    }

    #[test]
    fn unknown_role_is_refused() {
        let err = Config::parse("c", Some("127.0.0.1:1".into()), None).unwrap_err();
        assert!(matches!(err, ConfigError::Role(r) if r == "c"));
    }

    #[test]
    fn role_a_parses() {
        let cfg = Config::parse(
            "a",
            Some("127.0.0.1:8080".into()),
            Some("http://127.0.0.1:8081/leaf".into()),
        )
        .unwrap();
        assert_eq!(
            cfg.role,
            Role::A {
                leaf_url: "http://127.0.0.1:8081/leaf".into()
            }
        );
        assert_eq!(cfg.listen.port(), 8080);
    }
}
