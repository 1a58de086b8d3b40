//! autobot-pki-agent: runs on each VM, started over SSH by the distributor.
//! `install --staging DIR --dest CERT_DIR` verifies and installs the staged
//! certificates and prints one JSON line, whatever happens. It continues the
//! distributor's trace from TRACEPARENT/TRACESTATE/BAGGAGE. A CLI, not a
//! service, with the exit statuses of every AutoBot binary: 1 when the
//! install failed, 2 for a bad setting or command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use autobot_lifecycle::{EXIT_BAD_SETTING, EXIT_RUNTIME_FAILURE};
use autobot_pki_distributor::agent::{key_access_from_env, refusal, run_install};
use autobot_pki_distributor::hooks::Hooks;
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
            let error = e.render().to_string().trim().to_owned();
            return report(&refusal(Path::new(""), error, "usage"), EXIT_BAD_SETTING);
        }
    };
    let Command::Install { staging, dest } = cli.command;
    // The VM's exporter settings may sit in `~/.env` (sshd runs us in $HOME);
    // read it before any thread exists.
    if let Err(e) = autobot_settings::load_dotenv() {
        return report(
            &refusal(&dest, e.to_string(), "telemetry_config"),
            EXIT_BAD_SETTING,
        );
    }
    let key_access = match key_access_from_env() {
        Ok(access) => access,
        Err(e) => return report(&refusal(&dest, e, "key_group"), EXIT_BAD_SETTING),
    };
    let hooks = match Hooks::from_env() {
        Ok(hooks) => hooks,
        Err(e) => return report(&refusal(&dest, e, "test_hook"), EXIT_BAD_SETTING),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let error = format!("cannot start the async runtime: {e}");
            return report(&refusal(&dest, error, "runtime"), EXIT_RUNTIME_FAILURE);
        }
    };
    let (install_report, exit) = runtime.block_on(run_install(&staging, &dest, key_access, &hooks));
    report(&install_report, exit.exit_status())
}

/// Prints the one JSON line the distributor reads, and ends with `status`.
fn report(report: &AgentInstallReport, status: u8) -> ExitCode {
    println!(
        "{}",
        serde_json::to_string(report).expect("the report serializes")
    );
    ExitCode::from(status)
}
