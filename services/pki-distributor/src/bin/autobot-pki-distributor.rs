//! autobot-pki-distributor: `serve` (default) runs the HTTP API on
//! AUTOBOT_BIND; `distribute [--targets a,b]` runs one distribution and
//! prints the results as JSON (exit 1 when a target failed).

use std::process::ExitCode;

use autobot_pki_distributor::config::Config;
use autobot_pki_distributor::distribute::Distributor;
use autobot_pki_distributor::{AppState, app};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "autobot-pki-distributor",
    version,
    about = "AutoBot's internal CA and certificate distribution over SSH"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Issue and install certificates now, then exit.
    Distribute {
        /// Comma-separated target names (default: every target).
        #[arg(long, value_delimiter = ',')]
        targets: Option<Vec<String>>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `.env` is read into the environment before any thread exists.
    if let Err(e) = autobot_tracing::config::load_dotenv() {
        eprintln!("autobot-pki-distributor: {e}");
        return ExitCode::from(2);
    }
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("autobot-pki-distributor: cannot start the runtime: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let guard = match autobot_tracing::init("autobot-pki-distributor", env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("autobot-pki-distributor: {e}");
            return ExitCode::from(2);
        }
    };
    let setup = Config::from_env()
        .map_err(|e| e.to_string())
        .and_then(|cfg| Distributor::new(cfg).map_err(|e| e.to_string()));
    let distributor = match setup {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            guard.shutdown().await;
            return ExitCode::from(2);
        }
    };
    let code = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(distributor).await,
        Command::Distribute { targets } => distribute_once(distributor, targets).await,
    };
    guard.shutdown().await;
    code
}

async fn serve(distributor: Distributor) -> ExitCode {
    let bind = distributor.config().bind;
    let listener = match tokio::net::TcpListener::bind(bind).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%bind, error = %e, "cannot listen (AUTOBOT_BIND)");
            return ExitCode::from(2);
        }
    };
    tracing::info!(%bind, targets = distributor.targets().len(), "autobot-pki-distributor listening");
    let served = axum::serve(listener, app(AppState::new(distributor)))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn distribute_once(distributor: Distributor, targets: Option<Vec<String>>) -> ExitCode {
    let distributor = std::sync::Arc::new(distributor);
    match distributor.distribute(targets.as_deref()).await {
        Ok(response) => {
            println!(
                "{}",
                serde_json::to_string(&response).expect("response serializes")
            );
            if response.results.iter().all(|r| r.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("autobot-pki-distributor: {e}");
            ExitCode::from(2)
        }
    }
}

use autobot_lifecycle::shutdown_signal;
