//! autobot-pki-distributor: `serve` (default) runs the HTTP API on
//! AUTOBOT_BIND; `distribute [--targets a,b]` runs one distribution and
//! prints the results as JSON. Both through autobot-lifecycle's runner: the
//! same settings, telemetry and exit statuses as every service.

use std::process::ExitCode;

use autobot_lifecycle::Service;
use autobot_pki_distributor::{SERVICE_NAME, distribute_command, start};
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
    /// Issue and install certificates now, then exit (1 when a target failed).
    Distribute {
        /// Comma-separated target names (default: every target).
        #[arg(long, value_delimiter = ',')]
        targets: Option<Vec<String>>,
    },
}

fn main() -> ExitCode {
    let service = Service::new(SERVICE_NAME, env!("CARGO_PKG_VERSION"));
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => service.run(start),
        Command::Distribute { targets } => {
            service.run_command(|config| distribute_command(config, targets))
        }
    }
}
