//! autobot-browser: telemetry, configuration, serve until ctrl-c or SIGTERM.

use std::process::ExitCode;

use autobot_browser::{AppState, Config, SERVICE_NAME, app};
use autobot_lifecycle::shutdown_signal;

#[tokio::main]
async fn main() -> ExitCode {
    let guard = match autobot_tracing::init(SERVICE_NAME, env!("CARGO_PKG_VERSION")) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{SERVICE_NAME}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{SERVICE_NAME}: {message}");
            ExitCode::FAILURE
        }
    };
    guard.shutdown().await;
    code
}

async fn run() -> Result<(), String> {
    // After init, which loaded `.env`.
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let bind = config.bind;
    let state = AppState::new(config).map_err(|e| format!("HTTP client: {e}"))?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (AUTOBOT_BIND): {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // One line on stdout, so that whoever started us (tests, scripts) learns the port.
    println!("{SERVICE_NAME} listening on http://{local}");
    tracing::info!(%local, "listening");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server: {e}"))
}
