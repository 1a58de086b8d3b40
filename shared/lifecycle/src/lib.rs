//! # autobot-lifecycle
//!
//! How every AutoBot service runs, from start to exit, the same way:
//! [`Service::run`] reads the settings (`.env` honoured), sets telemetry up,
//! has the service build its router (and, where it has one, its background
//! worker), listens, serves until SIGTERM or Ctrl-C, lets the worker finish
//! the work in hand, and flushes every span. [`http`] gives every service the
//! same outer layers (a JSON 404, `/health` starting no trace, the tracing
//! layer outermost) and the one shape of its error answers.
//!
//! A service's `main.rs` is a few lines:
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::process::ExitCode;
//!
//! use autobot_lifecycle::{Failure, Service, ServiceConfig, Started, http};
//! use autobot_settings::{Env, SettingError};
//! use axum::Router;
//! use axum::routing::get;
//!
//! /// The service's settings (its `config.rs`).
//! struct Config {
//!     bind: SocketAddr,
//! }
//!
//! impl ServiceConfig for Config {
//!     fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
//!         let env = Env::new(lookup);
//!         Ok(Self {
//!             bind: env.bind("0.0.0.0:8099")?,
//!         })
//!     }
//!     fn bind(&self) -> SocketAddr {
//!         self.bind
//!     }
//! }
//!
//! /// The router tests drive too (its `lib.rs`).
//! fn app() -> Router {
//!     let routes = Router::new().route("/health", get(|| async { "ok" }));
//!     http::service_router(routes, "/health")
//! }
//!
//! /// Builds what runs from the settings; called once telemetry is up.
//! async fn start(_config: Config) -> Result<Started, Failure> {
//!     Ok(Started::http(app()))
//! }
//!
//! fn main() -> ExitCode {
//!     Service::new("autobot-example", env!("CARGO_PKG_VERSION")).run(start)
//! }
//! ```

pub mod http;
pub mod limits;
pub mod metrics;
mod service;
pub mod tls;

pub use service::{
    EXIT_BAD_SETTING, EXIT_RUNTIME_FAILURE, Failure, Service, ServiceConfig, Started,
};

/// Resolves on SIGTERM or Ctrl-C, whichever comes first. The handlers are
/// installed when this is called, not when the future is first polled: a
/// signal that arrives in between (a launcher that sends SIGTERM as soon
/// as the process says it listens) still stops the process cleanly.
/// Call it inside the tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                // Without a SIGTERM handler, Ctrl-C still stops the process.
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
