//! The agent's run: telemetry from its own environment, the trace continued
//! from the one the distributor passed, `pki.install` around the work, and
//! every span flushed before the process exits.

use std::path::Path;

use autobot_lifecycle::{EXIT_BAD_SETTING, EXIT_RUNTIME_FAILURE};
use autobot_wire::pki::{AgentInstallReport, CertificateInfo};

use crate::hooks::Hooks;
use crate::install::{KeyAccess, install_from_staging, resolve_group};

/// How the agent process ends; its exit status follows the rules of every
/// AutoBot binary (autobot-lifecycle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentExit {
    Installed,
    /// Verification or installation failed (exit status 1).
    Failed,
    /// A setting or the command line cannot be used (exit status 2).
    BadSetup,
}

impl AgentExit {
    pub fn exit_status(self) -> u8 {
        match self {
            Self::Installed => 0,
            Self::Failed => EXIT_RUNTIME_FAILURE,
            Self::BadSetup => EXIT_BAD_SETTING,
        }
    }
}

/// The report of a run that stopped before installing anything.
pub fn refusal(dest: &Path, error: String, error_type: &str) -> AgentInstallReport {
    AgentInstallReport {
        ok: false,
        dest: dest.display().to_string(),
        installed: Vec::new(),
        certificate: None,
        error: Some(error),
        error_type: Some(error_type.to_owned()),
        trace_id: None,
        release: None,
    }
}

/// `AUTOBOT_PKI_KEY_GROUP` (a group name in /etc/group, or a gid): the
/// group the VM's services share, given the installed key 0640. Unset or
/// empty: the key stays 0600, the agent's only.
pub fn key_access_from_env() -> Result<KeyAccess, String> {
    match std::env::var("AUTOBOT_PKI_KEY_GROUP") {
        Ok(group) if !group.trim().is_empty() => {
            resolve_group(group.trim(), Path::new("/etc/group"))
                .map(|gid| KeyAccess { group: Some(gid) })
                .map_err(|e| format!("AUTOBOT_PKI_KEY_GROUP={group:?} is not valid: {e}"))
        }
        _ => Ok(KeyAccess::default()),
    }
}

/// The variables of OTLP's TLS files (autobot-tracing's configuration).
const OTLP_TLS_VARS: [&str; 6] = [
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
];

/// Telemetry from the environment with OTLP export off (logs still go to stderr).
fn init_without_export() -> Result<autobot_tracing::TelemetryGuard, autobot_tracing::InitError> {
    let config = autobot_tracing::TracingConfig::from_lookup(|name| match name {
        "OTEL_TRACES_EXPORTER" => Some("none".to_owned()),
        name if OTLP_TLS_VARS.contains(&name) => None,
        name => std::env::var(name).ok(),
    })?;
    autobot_tracing::init_with(crate::AGENT_NAME, env!("CARGO_PKG_VERSION"), config)
}

/// Installs from `staging` into `dest` inside a `pki.install` span, which
/// continues the trace from TRACEPARENT/TRACESTATE/BAGGAGE in the
/// environment, and from the staging directory's context file for what the
/// environment lacks (an sshd whose AcceptEnv refused the env requests).
pub async fn run_install(
    staging: &Path,
    dest: &Path,
    key_access: KeyAccess,
    hooks: &Hooks,
) -> (AgentInstallReport, AgentExit) {
    let mut report = AgentInstallReport {
        ok: false,
        dest: dest.display().to_string(),
        installed: Vec::new(),
        certificate: None,
        error: None,
        error_type: None,
        trace_id: None,
        release: None,
    };
    let guard = match autobot_tracing::init(crate::AGENT_NAME, env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        // The files OTLP's TLS names are the ones about to be installed (the
        // first distribution): install without exporting rather than not at all.
        Err(autobot_tracing::InitError::Config(e)) if OTLP_TLS_VARS.contains(&e.variable) => {
            match init_without_export() {
                Ok(g) => {
                    tracing::warn!(error = %e, "spans are not exported by this run: the OTLP TLS files are not usable yet");
                    g
                }
                Err(e) => {
                    return (
                        refusal(dest, e.to_string(), "telemetry_config"),
                        AgentExit::BadSetup,
                    );
                }
            }
        }
        Err(e) => {
            return (
                refusal(dest, e.to_string(), "telemetry_config"),
                AgentExit::BadSetup,
            );
        }
    };
    let span = tracing::info_span!(
        "pki.install",
        otel.kind = "internal",
        pki.operation = "install",
        pki.cert_dir = %dest.display(),
        pki.files_installed = tracing::field::Empty,
        pki.cert_fingerprint = tracing::field::Empty,
        pki.release = tracing::field::Empty,
    );
    autobot_tracing::env_carrier::continue_from_env_and_file(
        &span,
        &staging.join(autobot_tracing::env_carrier::CONTEXT_FILE),
    );
    report.trace_id = autobot_tracing::trace_id_of(&span);

    let exit = span.in_scope(|| match install_from_staging(staging, dest, key_access, hooks) {
        Ok((summary, installed)) => {
            span.record("pki.files_installed", installed.files.len() as i64);
            span.record("pki.release", installed.release.as_str());
            span.record("pki.cert_fingerprint", summary.fingerprint_sha256.as_str());
            tracing::info!(dest = %dest.display(), fingerprint = %summary.fingerprint_sha256, not_after = %summary.not_after, "certificates installed");
            report.ok = true;
            report.installed = installed.files;
            report.release = Some(installed.release);
            report.certificate = Some(CertificateInfo {
                fingerprint_sha256: summary.fingerprint_sha256,
                not_after: summary.not_after,
            });
            AgentExit::Installed
        }
        Err(e) => {
            autobot_tracing::record_error(&span, e.error_type(), &e);
            tracing::error!(error = %e, "install refused");
            report.error = Some(e.to_string());
            report.error_type = Some(e.error_type().to_owned());
            AgentExit::Failed
        }
    });
    drop(span);
    guard.shutdown().await;
    (report, exit)
}
