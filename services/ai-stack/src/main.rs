//! autobot-ai-stack: telemetry, configuration, serve until SIGTERM, flush.

use std::process::ExitCode;

use autobot_ai_stack::{AppState, Config, app};
use autobot_lifecycle::http::HttpService;

#[tokio::main]
async fn main() -> ExitCode {
    HttpService {
        name: "autobot-ai-stack",
        version: env!("CARGO_PKG_VERSION"),
        config: Config::from_env,
        bind: |cfg| cfg.bind,
        listening: |cfg, addr| {
            tracing::info!(
                provider = %cfg.default_provider,
                "autobot-ai-stack listening on http://{addr}"
            )
        },
        app: |cfg| Ok(app(AppState::new(cfg))),
    }
    .run()
    .await
}
