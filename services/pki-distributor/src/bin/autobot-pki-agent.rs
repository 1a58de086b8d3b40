//! autobot-pki-agent: runs on each VM, started over SSH by the distributor.
//! `install --staging DIR --dest CERT_DIR` verifies and installs the staged
//! certificates, prints one JSON line and exits non-zero on failure. It
//! continues the distributor's trace from TRACEPARENT/TRACESTATE/BAGGAGE.

use std::path::PathBuf;
use std::process::ExitCode;

use autobot_pki_distributor::agent::{AgentExit, run_install};
use autobot_wire::pki::AgentInstallReport;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "autobot-pki-agent",
    version,
    about = "Installs AutoBot certificates on this VM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify the staged CA cert, server cert and key, then install them into DEST.
    Install {
        /// Directory holding ca-cert.pem, server-cert.pem and server-key.pem (removed afterwards).
        #[arg(long)]
        staging: PathBuf,
        /// Certificate directory to install into.
        #[arg(long)]
        dest: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are not failures; print them as clap does.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // The distributor reads one JSON line whatever went wrong.
            let report = AgentInstallReport {
                ok: false,
                dest: String::new(),
                installed: Vec::new(),
                certificate: None,
                error: Some(e.render().to_string().trim().to_owned()),
                error_type: Some("usage".to_owned()),
                trace_id: None,
            };
            println!(
                "{}",
                serde_json::to_string(&report).expect("the report serializes")
            );
            return ExitCode::from(2);
        }
    };
    let Command::Install { staging, dest } = cli.command;
    // The VM's exporter settings may sit in `~/.env` (sshd runs us in $HOME);
    // read it before any thread exists.
    if let Err(e) = autobot_tracing::config::load_dotenv() {
        eprintln!("autobot-pki-agent: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("autobot-pki-agent: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let (report, exit) = runtime.block_on(run_install(&staging, &dest));
    println!(
        "{}",
        serde_json::to_string(&report).expect("the report serializes")
    );
    match exit {
        AgentExit::Installed => ExitCode::SUCCESS,
        AgentExit::Failed => ExitCode::from(1),
        AgentExit::BadSetup => ExitCode::from(2),
    }
}
