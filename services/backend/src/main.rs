//! autobot-backend: telemetry, configuration, serve until SIGTERM, flush.

use std::process::ExitCode;

use autobot_backend::{AppState, Config, app};
use autobot_lifecycle::http::HttpService;

#[tokio::main]
async fn main() -> ExitCode {
    HttpService {
        name: "autobot-backend",
        version: env!("CARGO_PKG_VERSION"),
        config: Config::from_env,
        bind: |cfg| cfg.bind,
        listening: |_, addr| tracing::info!("autobot-backend listening on http://{addr}"),
        app: |cfg| AppState::new(cfg).map(app),
    }
    .run()
    .await
}
