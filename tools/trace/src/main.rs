//! `autobot-trace`: see the crate docs and docs/trace-tool.md.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    // Plain logs to stderr; never OpenTelemetry here: serve would trace itself.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = autobot_trace::cli::Cli::parse();
    let code = autobot_trace::cli::run(cli).await;
    std::process::exit(code);
}
