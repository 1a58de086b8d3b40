//! autobot-backend: AutoBot's public API. `POST /api/chat` (→ ai-stack),
//! `POST /api/browse` (→ browser), `POST /api/pki/distribute`
//! (→ pki-distributor), `POST /api/embeddings` (→ npu-worker over a Redis
//! Streams job), `POST /api/research` (browser, npu-worker and ai-stack in
//! one workflow), `GET /api/health`, `GET /api/health/cluster`. Every
//! request is one trace that continues the caller's (W3C or B3) and crosses
//! each service it reaches.

pub mod config;
mod error;
mod routes;
pub mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use reqwest_middleware::ClientWithMiddleware;

use autobot_lifecycle::{Failure, Started};
use autobot_settings::SettingError;

pub use config::Config;
pub use error::AppError;
use upstream::Peer;

/// service.name, and the prefix of the process's lines on stderr.
pub const SERVICE_NAME: &str = "autobot-backend";

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The services the backend calls.
#[derive(Clone, Debug)]
pub struct Peers {
    pub ai_stack: Peer,
    pub browser: Peer,
    pub pki: Peer,
    pub npu: Option<Peer>,
}

#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub http: ClientWithMiddleware,
    pub peers: Arc<Peers>,
    pub redis: redis::Client,
    pub redis_target: autobot_tracing::redis::RedisTarget,
    /// Puts NPU jobs on the Redis Stream and waits for their results.
    pub jobs: autobot_jobs::JobProducer,
}

impl AppState {
    pub fn new(cfg: Config) -> Result<Self, Failure> {
        let redis_error = |reason: String| {
            SettingError::new(
                "AUTOBOT_REDIS_URL",
                &autobot_tracing::redact::redact_url_str(&cfg.redis_url),
                reason,
            )
        };
        let redis =
            redis::Client::open(cfg.redis_url.as_str()).map_err(|e| redis_error(e.to_string()))?;
        let redis_target = autobot_tracing::redis::RedisTarget::from_url(&cfg.redis_url)
            .ok_or_else(|| redis_error("expected redis://host[:port][/db]".into()))?;
        let peers = Peers {
            ai_stack: Peer::new("ai-stack", &cfg.ai_stack_url),
            browser: Peer::new("browser", &cfg.browser_url),
            pki: Peer::new("pki-distributor", &cfg.pki_url),
            npu: cfg.npu_url.as_ref().map(|u| Peer::new("npu-worker", u)),
        };
        let jobs = autobot_jobs::JobProducer::new(autobot_jobs::ProducerConfig::npu(
            cfg.redis_url.as_str(),
        ))
        .map_err(|e| redis_error(e.to_string()))?;
        Ok(Self {
            jobs,
            http: autobot_tracing::http::client()?,
            peers: Arc::new(peers),
            redis,
            redis_target,
            cfg: Arc::new(cfg),
        })
    }
}

/// The HTTP API, with the layers every service has
/// (`autobot_lifecycle::http::service_router`). `GET /api/health` starts no
/// trace; `GET /api/health/cluster` does: it calls every peer, and its trace
/// shows each check.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .merge(routes::chat::routes())
        .merge(routes::health::routes())
        .merge(routes::browse::routes())
        .merge(routes::pki::routes())
        .merge(routes::embeddings::routes())
        .merge(routes::research::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    autobot_lifecycle::http::service_router(routes, "/api/health")
}

/// What `main` runs: the API over the peers and the job queue the settings name.
pub async fn start(config: Config) -> Result<Started, Failure> {
    Ok(Started::http(app(AppState::new(config)?)))
}
