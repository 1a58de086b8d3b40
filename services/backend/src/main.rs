//! autobot-backend: telemetry, configuration, serve until SIGTERM, flush.

use std::process::ExitCode;

use autobot_backend::{AppState, Config, app, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = match autobot_tracing::init("autobot-backend", env!("CARGO_PKG_VERSION")) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("autobot-backend: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = run().await;
    telemetry.shutdown().await;
    code
}

async fn run() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!("configuration: {e}");
            eprintln!("autobot-backend: configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(cfg.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autobot-backend: cannot listen on {}: {e}", cfg.bind);
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!("autobot-backend listening on http://{addr}"),
        Err(e) => tracing::warn!("listening, address unknown: {e}"),
    }
    let state = match AppState::new(cfg) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("autobot-backend: configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobot-backend: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
