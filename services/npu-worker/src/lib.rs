//! # autobot-npu-worker
//!
//! AutoBot's NPU worker: sentence embeddings with all-MiniLM-L6-v2 (candle,
//! CPU), served from the Redis Stream `autobot:jobs:npu` (consumer group
//! `npu-workers`, at least once, see `autobot-jobs`) and over HTTP
//! (`GET /health`, `GET /models`, `POST /inference`).

pub mod config;
pub mod embedding;
pub mod error;
pub mod inference;
pub mod jobs;
mod redis_probe;
pub mod routes;

use std::sync::Arc;

use autobot_jobs::{Consumer, ConsumerConfig};
use autobot_lifecycle::{Failure, Started};
use autobot_settings::SettingError;
use autobot_tracing::redact::redact_url_str;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use config::Config;
pub use inference::Npu;
pub use redis_probe::RedisProbe;

/// service.name, and the prefix of the process's lines on stderr.
pub const SERVICE_NAME: &str = "autobot-npu-worker";

/// 256 texts of 8192 characters, up to 4 bytes each, plus JSON.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    pub npu: Npu,
    pub redis: Arc<RedisProbe>,
    pub stats: Arc<autobot_jobs::ConsumerStats>,
    pub consumer_name: String,
}

/// The HTTP API, with the layers every service has
/// (`autobot_lifecycle::http::service_router`).
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/health", get(routes::health))
        .route("/models", get(routes::models))
        .route("/inference", post(routes::inference))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    autobot_lifecycle::http::service_router(routes, "/health")
}

/// What `main` runs: the model loaded (or the reason it is not, which every
/// call then answers with), the HTTP API, and the job consumer as the
/// background worker; on SIGTERM the consumer finishes the job in hand.
pub async fn start(config: Config) -> Result<Started, Failure> {
    let model_dir = config.model_dir.clone();
    let npu = tokio::task::spawn_blocking(move || Npu::load(model_dir.as_deref()))
        .await
        .map_err(|e| Failure::runtime(format_args!("loading the model failed: {e}")))?;

    // The URL parsed when the settings were read; what is left to refuse it
    // here is still the setting's fault.
    let redis_error = |reason: String| {
        SettingError::new(
            "AUTOBOT_REDIS_URL",
            &redact_url_str(&config.redis_url),
            reason,
        )
    };
    let redis = autobot_jobs::RedisClient::new(&config.redis_url, config.redis_tls.as_ref())
        .map_err(|e| redis_error(e.to_string()))?;
    // Credentials Redis refuses stop the start (exit 2); a Redis not up yet does not.
    redis.check_credentials().await.map_err(redis_error)?;
    let mut consumer_cfg = ConsumerConfig::npu(&config.redis_url, &config.consumer_name);
    consumer_cfg.claim_idle = config.claim_idle;
    consumer_cfg.max_deliveries = config.max_deliveries;
    consumer_cfg.max_payload_bytes = config.max_payload_bytes;
    consumer_cfg.redis_tls = config.redis_tls.clone();
    let consumer = Consumer::new(consumer_cfg, jobs::NpuJobs { npu: npu.clone() })
        .map_err(|e| redis_error(e.to_string()))?;
    let redis = RedisProbe::from_client(redis);
    // The NPU's series exist (at 0) before the first job.
    let _ = (
        inference::metrics::inference(),
        inference::metrics::embeddings(),
    );
    tracing::info!(consumer = %config.consumer_name, "consuming NPU jobs as this consumer");
    let state = AppState {
        npu,
        redis: Arc::new(redis),
        stats: consumer.stats(),
        consumer_name: config.consumer_name,
    };
    // The consumer returns once its job in hand is answered and acknowledged.
    Ok(Started::http(app(state)).with_worker(move |stop| async move { consumer.run(stop).await }))
}
