//! autobot-pki-distributor: AutoBot's internal CA. It issues a server
//! certificate per VM and installs it over SSH, where `autobot-pki-agent`
//! verifies the chain and swaps the files in atomically. The trace follows:
//! `pki.distribute` → `ssh.distribute_certificates` (one per VM) → the
//! agent's `pki.install`, carried as TRACEPARENT/TRACESTATE/BAGGAGE.

pub mod agent;
pub mod ca;
pub mod config;
pub mod constraints;
pub mod distribute;
pub mod error;
pub mod fsio;
pub mod hooks;
pub mod install;
pub mod known_hosts;
pub mod metrics;
pub mod routes;
pub mod ssh;
pub mod targets;

use std::sync::Arc;

use autobot_lifecycle::{Failure, Started};
use axum::Router;

pub use config::Config;
use distribute::Distributor;
pub use error::AppError;

/// service.name of the distributor, and the prefix of its lines on stderr.
pub const SERVICE_NAME: &str = "autobot-pki-distributor";
/// service.name of the agent the distributor runs on each VM.
pub const AGENT_NAME: &str = "autobot-pki-agent";

/// Shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    pub distributor: Arc<Distributor>,
    /// One run at a time: two runs must not race on the same VM's files.
    pub run_lock: Arc<tokio::sync::Mutex<()>>,
}

impl AppState {
    pub fn new(distributor: Distributor) -> Self {
        Self {
            distributor: Arc::new(distributor),
            run_lock: Arc::default(),
        }
    }
}

/// The HTTP API, with the layers every service has
/// (`autobot_lifecycle::http::service_router`).
pub fn app(state: AppState) -> Router {
    autobot_lifecycle::http::service_router(routes::routes(state), "/health")
}

/// What `serve` runs: the API over the targets, the CA and the SSH identity
/// the settings name (a file they name that cannot be used is a bad setting).
pub async fn start(config: Config) -> Result<Started, Failure> {
    let distributor = Distributor::new(config)?;
    tracing::info!(targets = distributor.targets().len(), "targets loaded");
    let state = AppState::new(distributor);
    metrics::register(state.distributor.clone());
    Ok(Started::http(app(state)))
}

/// `distribute [--targets a,b]`: one run; the results as JSON on stdout.
/// Unknown target names are a usage error (exit status 2, nothing issued);
/// a target that failed makes the run a failure (exit status 1).
pub async fn distribute_command(
    config: Config,
    targets: Option<Vec<String>>,
) -> Result<(), Failure> {
    let distributor = Arc::new(Distributor::new(config)?);
    let response = distributor
        .distribute(targets.as_deref())
        .await
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let json = serde_json::to_string(&response)
        .map_err(|e| Failure::runtime(format_args!("encoding the results: {e}")))?;
    println!("{json}");
    let failed: Vec<&str> = response
        .results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.target.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(Failure::runtime(format_args!(
        "{} of {} targets failed: {}",
        failed.len(),
        response.results.len(),
        failed.join(", ")
    )))
}
