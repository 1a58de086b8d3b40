//! autobot-backend: AutoBot's public API. `POST /api/chat` (→ ai-stack),
//! `POST /api/browse` (→ browser), `POST /api/pki/distribute`
//! (→ pki-distributor), `POST /api/embeddings` (→ npu-worker over a Redis
//! Streams job), `POST /api/research` (browser, npu-worker and ai-stack in
//! one workflow), `GET /api/health`, `GET /api/health/cluster`, and
//! AutoBot's research page at `GET /`, traced from the browser. Every
//! request is one trace that continues the caller's (W3C or B3) and crosses
//! each service it reaches.

pub mod auth;
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

/// What the handlers share. axum's `State` extractor clones it for every
/// request: one `Arc`, not the clients inside it (cloning those, with
/// their own `Arc`s, `String`s and middleware list, cost ~28 000
/// instructions per request, docs/performance.md "Product path").
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl std::ops::Deref for AppState {
    type Target = AppShared;
    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// The clients and settings behind [`AppState`].
pub struct AppShared {
    pub cfg: Arc<Config>,
    pub http: ClientWithMiddleware,
    pub peers: Arc<Peers>,
    pub redis: autobot_jobs::RedisClient,
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
        // rediss:// uses the service's TLS files (AUTOBOT_TLS_*).
        let redis_tls = cfg.tls.as_ref().map(|tls| tls.files().clone());
        let redis = autobot_jobs::RedisClient::new(&cfg.redis_url, redis_tls.as_ref())
            .map_err(|e| redis_error(e.to_string()))?;
        let redis_target = autobot_tracing::redis::RedisTarget::from_url(&cfg.redis_url)
            .ok_or_else(|| redis_error("expected redis://host[:port][/db]".into()))?;
        let peer =
            |name, url| Peer::new(name, url).with_max_response_bytes(cfg.max_peer_response_bytes);
        let peers = Peers {
            ai_stack: peer("ai-stack", &cfg.ai_stack_url),
            browser: peer("browser", &cfg.browser_url),
            pki: peer("pki-distributor", &cfg.pki_url),
            npu: cfg.npu_url.as_ref().map(|u| peer("npu-worker", u)),
        };
        let mut jobs_cfg = autobot_jobs::ProducerConfig::npu(cfg.redis_url.as_str());
        jobs_cfg.max_payload_bytes = cfg.jobs_max_payload_bytes;
        jobs_cfg.reply_connections = cfg.jobs_reply_connections;
        jobs_cfg.max_len = cfg.jobs_max_queued;
        jobs_cfg.redis_tls = redis_tls;
        let jobs =
            autobot_jobs::JobProducer::new(jobs_cfg).map_err(|e| redis_error(e.to_string()))?;
        let http = match &cfg.tls {
            Some(tls) => autobot_tracing::http::mutual_tls_client(tls.clone()).map_err(|e| {
                SettingError::withheld(autobot_tls::TLS_CERT_VAR, format!("the HTTP client: {e}"))
            })?,
            None => autobot_tracing::http::client()?,
        };
        Ok(Self(Arc::new(AppShared {
            jobs,
            http,
            peers: Arc::new(peers),
            redis,
            redis_target,
            cfg: Arc::new(cfg),
        })))
    }
}

/// The HTTP API, with the layers every service has
/// (`autobot_lifecycle::http::service_router`). `GET /api/health` starts no
/// trace; `GET /api/health/cluster` does: it calls every peer, and its trace
/// shows each check. Every route but `/api/health` needs an operator key
/// ([`auth`]), checked inside the tracing layer so that a refused request
/// is in its trace, and on the routes only: a path without a route is a 404.
pub fn app(state: AppState) -> Router {
    let auth = axum::middleware::from_fn_with_state(state.cfg.auth.clone(), auth::require_key);
    let routes = Router::new()
        .merge(routes::chat::routes())
        .merge(routes::health::routes())
        .merge(routes::browse::routes())
        .merge(routes::pki::routes())
        .merge(routes::embeddings::routes())
        .merge(routes::research::routes())
        .route_layer(auth)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // AutoBot's page and its assets, after the API's own layers: public
        // (a browser's navigation carries no operator key; the page sends
        // the key with its API requests).
        .merge(routes::page::routes());
    let trusted = state.cfg.trusted_context_from.clone();
    // Outside the tracing layer: a stranger's tracestate and baggage are
    // gone before its context is read (autobot_tracing::http::caller_context_layer).
    autobot_lifecycle::http::service_router(routes.with_state(state), "/api/health")
        .layer(autobot_tracing::http::caller_context_layer(trusted))
}

/// What `main` runs: the API over the peers and the job queue the settings name.
pub async fn start(config: Config) -> Result<Started, Failure> {
    if config.auth == auth::ApiAuth::Off {
        tracing::warn!(
            "AUTOBOT_AUTH=off: every /api/* route answers callers without an operator key (for local experiments only)"
        );
    }
    let state = AppState::new(config)?;
    // Credentials Redis refuses stop the start (exit 2); a Redis not up yet does not.
    state.redis.check_credentials().await.map_err(|reason| {
        SettingError::new(
            "AUTOBOT_REDIS_URL",
            &autobot_tracing::redact::redact_url_str(&state.cfg.redis_url),
            reason,
        )
    })?;
    Ok(Started::http(app(state)))
}
