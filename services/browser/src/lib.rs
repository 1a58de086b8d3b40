//! # autobot-browser
//!
//! `POST /navigate`: fetch a page within limits (http/https only, 5
//! redirects, a time limit for the whole fetch, a byte limit, denied address
//! ranges refused before connecting), with the trace carried to the site, and
//! answer what a reader sees: title, description, text, passages, links.
//! `GET /health` and `GET /status` for operators and the backend.

pub mod config;
pub mod deny;
pub mod error;
pub mod extract;
pub mod fetch;
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
}

impl AppState {
    /// Builds the HTTP client from the configuration.
    pub fn new(config: Config) -> Result<Self, autobot_tracing::http::ClientBuildError> {
        let fetcher = fetch::Fetcher::new(config.deny.clone(), config.propagate)?;
        Ok(Self {
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
    Ok(Started::http(app(AppState::new(config)?)))
}
