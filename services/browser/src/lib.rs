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

use axum::Router;

pub use config::{Config, ConfigError};
pub use error::NavigateError;

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
    pub fn new(config: Config) -> Result<Self, reqwest::Error> {
        let fetcher = fetch::Fetcher::new(config.deny.clone(), config.propagate)?;
        Ok(Self {
            config: Arc::new(config),
            fetcher,
            stats: Arc::new(stats::Stats::default()),
        })
    }
}

/// The service's router, traced (tests drive it too).
pub fn app(state: AppState) -> Router {
    routes::router(state).layer(autobot_tracing::http::server_layer().untraced_paths(["/health"]))
}
