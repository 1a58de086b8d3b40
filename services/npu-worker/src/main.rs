//! autobot-npu-worker: see the library for what it does.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = autobot_tracing::config::load_dotenv() {
        eprintln!("autobot-npu-worker: {e}");
        return ExitCode::from(2);
    }
    let config = match autobot_npu_worker::Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("autobot-npu-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match autobot_tracing::init("autobot-npu-worker", env!("CARGO_PKG_VERSION")) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("autobot-npu-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let result = autobot_npu_worker::run(config, autobot_npu_worker::shutdown_signal()).await;
    if let Err(e) = &result {
        tracing::error!(error = %e, "autobot-npu-worker stopped");
    }
    // Flushes every finished span, the last job's included.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobot-npu-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
