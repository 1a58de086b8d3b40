//! # autobot-browser
//!
//! `POST /navigate`: fetch a page within limits (http/https only, 5
//! redirects, one time limit for fetch and extraction, a byte limit, bounded
//! parsing, every address but the public internet refused before connecting
//! unless allowed), with the trace carried to the site, and answer what a
//! reader sees: title, description, text, passages, links.
//! `GET /health` and `GET /status` for operators and the backend.

pub mod budget;
pub mod config;
pub mod deny;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod metrics;
pub mod parse;
pub mod passages;
pub mod routes;
pub mod stats;

use std::sync::Arc;

use autobot_lifecycle::{Failure, Started};
use axum::Router;

pub use config::Config;
pub use error::AppError;

/// The service name in traces and answers.
pub const SERVICE_NAME: &str = "autobot-browser";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub fetcher: fetch::Fetcher,
    pub stats: Arc<stats::Stats>,
    /// One permit per navigation running (AUTOBOT_BROWSER_MAX_NAVIGATIONS).
    pub navigations: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// Builds the HTTP client from the configuration.
    pub fn new(config: Config) -> Result<Self, autobot_tracing::http::ClientBuildError> {
        // A service on this host bound to 0.0.0.0 answers on each of its addresses.
        let policy = config
            .addresses
            .clone()
            .with_host_addresses(&deny::host_addresses());
        let fetcher = fetch::Fetcher::new(policy, config.propagate)?;
        Ok(Self {
            navigations: Arc::new(tokio::sync::Semaphore::new(config.max_navigations)),
            config: Arc::new(config),
            fetcher,
            stats: Arc::new(stats::Stats::default()),
        })
    }
}

/// The HTTP API, with the layers every service has
/// (`autobot_lifecycle::http::service_router`).
pub fn app(state: AppState) -> Router {
    autobot_lifecycle::http::service_router(routes::routes(state), "/health")
}

/// What `main` runs: the API over a fetcher with the configured limits.
pub async fn start(config: Config) -> Result<Started, Failure> {
    let state = AppState::new(config)?;
    metrics::register();
    Ok(Started::http(app(state)))
}
