//! autobot-lab: the six-VM lab's checks and fault drills. Run through
//! `scripts/lab.sh check|drill`, which sets the lab's variables
//! (`scripts/lab.sh env`) and AUTOBOT_LAB_DIR and LAB_SH. See docs/lab.md.

mod check;
mod drills;
mod lab;
mod metrics;
mod traces;
mod traffic;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "autobot-lab",
    about = "Checks and fault drills for the six-VM lab (scripts/lab.sh)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Units active as unprivileged users, exposure scores, isolation, a whole
    /// research trace across four machines, a distribution to every machine.
    Check,
    /// The fault drills: jaeger, redis, npu, pki (all when none is named).
    Drill { names: Vec<String> },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = async {
        let lab = lab::Lab::from_env()?;
        match cli.command {
            Command::Check => check::run(&lab).await,
            Command::Drill { names } => drills::run(&lab, &names).await,
        }
    }
    .await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobot-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
