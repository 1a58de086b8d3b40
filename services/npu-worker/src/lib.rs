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
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::watch;

pub use config::Config;
pub use inference::Npu;
pub use redis_probe::RedisProbe;

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

/// The HTTP API, traced except for `/health`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(routes::health))
        .route("/models", get(routes::models))
        .route("/inference", post(routes::inference))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .layer(autobot_tracing::http::server_layer().untraced_paths(["/health"]))
}

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("AUTOBOT_BIND: cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("AUTOBOT_REDIS_URL: {0}")]
    Redis(String),
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

/// Loads the model, consumes jobs and serves HTTP until `shutdown`
/// completes; then finishes the job in hand and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let model_dir = config.model_dir.clone();
    let npu = tokio::task::spawn_blocking(move || Npu::load(model_dir.as_deref()))
        .await
        .map_err(|e| StartError::Redis(format!("loading the model panicked: {e}")))?;

    let mut consumer_cfg = ConsumerConfig::npu(&config.redis_url, &config.consumer_name);
    consumer_cfg.claim_idle = config.claim_idle;
    consumer_cfg.max_deliveries = config.max_deliveries;
    let consumer = Consumer::new(consumer_cfg, jobs::NpuJobs { npu: npu.clone() })
        .map_err(|e| StartError::Redis(e.to_string()))?;
    let state = AppState {
        npu,
        redis: Arc::new(
            RedisProbe::new(&config.redis_url).map_err(|e| StartError::Redis(e.to_string()))?,
        ),
        stats: consumer.stats(),
        consumer_name: config.consumer_name.clone(),
    };

    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let local = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(addr = %local, consumer = %config.consumer_name, "autobot-npu-worker listening");

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing the job in hand");
        let _ = stop.send(true);
    });
    let jobs = tokio::spawn({
        let stopped = stopped.clone();
        async move { consumer.run(stopped).await }
    });
    let mut http_stopped = stopped;
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            let _ = http_stopped.wait_for(|s| *s).await;
        })
        .await;
    // The consumer returns once its job in hand is answered and acknowledged.
    let _ = jobs.await;
    served.map_err(StartError::Serve)
}

pub use autobot_lifecycle::shutdown_signal;
