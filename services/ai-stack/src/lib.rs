//! autobot-ai-stack: AutoBot's LLM gateway. `POST /v1/chat` answers through
//! Ollama (ollama-rs) or any OpenAI-compatible server (async-openai), each
//! call in one `llm.inference` CLIENT span; `GET /v1/models` lists a
//! provider's models; `GET /health`.

pub mod config;
mod error;
pub mod llm;
mod routes;

use std::sync::Arc;

use autobot_lifecycle::{Failure, Started};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use config::Config;
pub use error::AppError;
pub use llm::Gateway;

/// service.name, and the prefix of the process's lines on stderr.
pub const SERVICE_NAME: &str = "autobot-ai-stack";

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
}

impl AppState {
    pub fn new(cfg: Config) -> Result<Self, autobot_tracing::http::ClientBuildError> {
        Ok(Self {
            gateway: Arc::new(Gateway::new(Arc::new(cfg))?),
        })
    }
}

/// The HTTP API, with the layers every service has
/// (`autobot_lifecycle::http::service_router`).
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/v1/chat", post(routes::chat))
        .route("/v1/models", get(routes::models))
        .route("/health", get(routes::health))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    autobot_lifecycle::http::service_router(routes, "/health")
}

/// What `main` runs: the gateway to the providers the settings name.
pub async fn start(config: Config) -> Result<Started, Failure> {
    tracing::info!(provider = %config.default_provider, "default LLM provider");
    Ok(Started::http(app(AppState::new(config)?)))
}
