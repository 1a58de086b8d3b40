//! A distribution run: every selected target in parallel (bounded), each in
//! its own `ssh.distribute_certificates` CLIENT span under `pki.distribute`.
//! One failing target never stops the others; each result says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use autobot_settings::SettingError;
use autobot_wire::pki::{
    CertificateInfo, DistributeResponse, LastDistribution, StatusResponse, TargetResult,
    TargetStatus,
};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::ca::CertificateAuthority;
use crate::config::Config;
use crate::fsio;
use crate::ssh::{self, SshError, SshSettings};
use crate::targets::{Target, load_targets};

/// Why a run was refused before it started.
#[derive(Debug, thiserror::Error)]
pub enum DistributeError {
    #[error("unknown target(s): {}", .0.join(", "))]
    UnknownTargets(Vec<String>),
    #[error("no targets selected")]
    NoTargets,
}

/// The service's state: configuration, targets, CA, SSH identity.
pub struct Distributor {
    config: Config,
    targets: Vec<Target>,
    ca: CertificateAuthority,
    ssh: SshSettings,
}

impl Distributor {
    /// Loads the targets, the CA (created on first use), the SSH key, and
    /// checks that known_hosts is readable. Each failure is the fault of the
    /// setting that names the file, and says so.
    pub fn new(config: Config) -> Result<Self, SettingError> {
        let file_error = |variable: &'static str, path: &Path, reason: String| {
            SettingError::new(variable, &path.display().to_string(), reason)
        };
        let targets = load_targets(&config.targets_file)?;
        let permitted = config
            .ca_permitted
            .clone()
            .unwrap_or_else(|| crate::constraints::Permitted::from_targets(&targets));
        let ca = CertificateAuthority::load_or_create(&config.pki_dir, &permitted)
            .map_err(|e| file_error("AUTOBOT_PKI_DIR", &config.pki_dir, e.to_string()))?;
        if ca.permitted().is_none() {
            tracing::warn!(
                "the CA has no name constraints (it predates them): rotate it to limit what its key can sign (docs/security.md)"
            );
        }
        let key = russh::keys::load_secret_key(&config.ssh_key, None).map_err(|e| {
            file_error(
                "AUTOBOT_SSH_KEY",
                &config.ssh_key,
                format!("cannot load the private key: {e}"),
            )
        })?;
        std::fs::File::open(&config.known_hosts).map_err(|e| {
            file_error(
                "AUTOBOT_SSH_KNOWN_HOSTS",
                &config.known_hosts,
                format!("cannot read it: {e}"),
            )
        })?;
        let ssh = SshSettings {
            key: Arc::new(key),
            known_hosts: config.known_hosts.clone(),
            step_timeout: config.ssh_timeout,
        };
        Ok(Self {
            config,
            targets,
            ca,
            ssh,
        })
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The targets named in `selection` (all when `None`), in file order.
    pub fn select(&self, selection: Option<&[String]>) -> Result<Vec<Target>, DistributeError> {
        let Some(names) = selection else {
            return Ok(self.targets.clone());
        };
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| !self.targets.iter().any(|t| &t.name == *n))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(DistributeError::UnknownTargets(unknown));
        }
        let chosen: Vec<Target> = self
            .targets
            .iter()
            .filter(|t| names.contains(&t.name))
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Err(DistributeError::NoTargets);
        }
        Ok(chosen)
    }

    /// Issues and installs certificates on the selected targets.
    pub async fn distribute(
        self: &Arc<Self>,
        selection: Option<&[String]>,
    ) -> Result<DistributeResponse, DistributeError> {
        let targets = self.select(selection)?;
        let run = tracing::info_span!(
            "pki.distribute",
            pki.operation = "distribute",
            pki.targets = targets.len(),
            pki.failed = tracing::field::Empty,
        );
        let trace_id = autobot_tracing::trace_id_of(&run);
        let this = self.clone();
        let results = async move {
            let limit = Arc::new(Semaphore::new(this.config.parallelism));
            let mut tasks = tokio::task::JoinSet::new();
            for (index, target) in targets.into_iter().enumerate() {
                let this = this.clone();
                let limit = limit.clone();
                let span = target_span(&target);
                tasks.spawn(
                    async move {
                        let _permit = limit.acquire_owned().await.expect("semaphore never closed");
                        (index, this.serve_target(&target).await)
                    }
                    .instrument(span),
                );
            }
            let mut results = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(r) => results.push(r),
                    Err(e) => tracing::error!(error = %e, "a target task panicked"),
                }
            }
            results.sort_by_key(|(i, _)| *i);
            let results: Vec<TargetResult> = results.into_iter().map(|(_, r)| r).collect();
            let failed = results.iter().filter(|r| !r.ok).count();
            tracing::Span::current().record("pki.failed", failed);
            results
        }
        .instrument(run)
        .await;
        Ok(DistributeResponse { results, trace_id })
    }

    /// One target, inside its `ssh.distribute_certificates` span.
    async fn serve_target(&self, target: &Target) -> TargetResult {
        let started = std::time::Instant::now();
        let span = tracing::Span::current();
        let mut files_copied = 0u32;
        let outcome = self.install_on(target, &span, &mut files_copied).await;
        span.record("ssh.files_copied", files_copied);
        let result = match outcome {
            Ok(certificate) => {
                tracing::info!(target_vm = %target.name, fingerprint = %certificate.fingerprint_sha256, "certificates installed");
                TargetResult {
                    target: target.name.clone(),
                    ok: true,
                    files_copied,
                    error: None,
                    error_type: None,
                    certificate: Some(certificate),
                }
            }
            Err(e) => {
                let error_type = e.error_type();
                span.record("ssh.error_type", error_type);
                autobot_tracing::record_error(&span, error_type, &e);
                tracing::warn!(target_vm = %target.name, error_type, error = %e, "distribution failed");
                TargetResult {
                    target: target.name.clone(),
                    ok: false,
                    files_copied,
                    error: Some(e.to_string()),
                    error_type: Some(error_type.to_owned()),
                    certificate: None,
                }
            }
        };
        self.remember(target, &result, autobot_tracing::trace_id_of(&span));
        crate::metrics::distributed(
            &target.name,
            result.error_type.as_deref().unwrap_or("ok"),
            started.elapsed(),
            &span,
        );
        result
    }

    async fn install_on(
        &self,
        target: &Target,
        span: &tracing::Span,
        files_copied: &mut u32,
    ) -> Result<CertificateInfo, SshError> {
        let issued = self
            .ca
            .issue(target, self.config.validity_days)
            .map_err(|e| SshError::Issue(e.to_string()))?;
        let connection = Arc::new(ssh::connect(target, &self.ssh).await?);
        span.record("ssh.target_ip", connection.peer.ip().to_string());
        let staging = ssh::new_staging_path(&target.staging_dir);
        // From here on the VM may hold a private key in `staging`: if this
        // run is cancelled (the caller went away, the process is stopping),
        // the guard removes it over the same connection.
        let mut guard =
            StagingCleanup::new(connection.clone(), staging.clone(), self.ssh.step_timeout);
        // The agent's pki.install becomes a child of THIS span. Only the
        // traceparent written from this span's context may reach the command
        // line; TRACESTATE and BAGGAGE (what callers sent) go as env requests
        // and in the context file.
        let (vars, traceparent) = span.in_scope(|| {
            (
                autobot_tracing::env_carrier::inject_current(),
                autobot_tracing::env_carrier::command_line_traceparent_current(),
            )
        });
        let context = autobot_tracing::env_carrier::context_file_bytes(&vars);
        let uploaded = connection
            .upload(
                &staging,
                &issued,
                &context,
                self.ssh.step_timeout,
                stale_staging_after(self.ssh.step_timeout),
                files_copied,
            )
            .await;
        if let Err(e) = uploaded {
            guard.clean_now().await;
            connection.close().await;
            return Err(e);
        }
        let executed = connection
            .exec_agent(
                target,
                &staging,
                &vars,
                traceparent.as_deref(),
                self.ssh.step_timeout,
            )
            .await;
        if executed.is_err() {
            // The agent removes its staging directory whenever it runs; when
            // it did not run or did not finish, the key must not stay behind.
            guard.clean_now().await;
        } else {
            guard.disarm();
        }
        connection.close().await;
        let installed = executed?.certificate;
        match installed {
            Some(c) if c.fingerprint_sha256 == issued.summary.fingerprint_sha256 => Ok(c),
            other => Err(SshError::Exec(format!(
                "the agent reported certificate {:?}, not the one issued ({})",
                other.map(|c| c.fingerprint_sha256),
                issued.summary.fingerprint_sha256
            ))),
        }
    }

    fn target_dir(&self, target: &Target) -> PathBuf {
        self.config.pki_dir.join("issued").join(&target.name)
    }

    /// Keeps the outcome for `GET /status` (on disk: it survives restarts
    /// and the CLI's runs show in the server's status).
    fn remember(&self, target: &Target, result: &TargetResult, trace_id: Option<String>) {
        let dir = self.target_dir(target);
        let record = StoredStatus {
            last: LastDistribution {
                at: now_rfc3339(),
                ok: result.ok,
                error: result.error.clone(),
                trace_id,
            },
            certificate: result
                .certificate
                .clone()
                .or_else(|| read_stored(&dir).and_then(|s| s.certificate)),
        };
        let written = fsio::create_private_dir(&dir, 0o700).and_then(|()| {
            let json = serde_json::to_vec_pretty(&record).expect("status serializes");
            fsio::replace_file(&dir.join(STATUS_FILE), &json, 0o644)
        });
        if let Err(e) = written {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot record the distribution status");
        }
    }

    /// Every configured target with its last distribution.
    pub fn status(&self) -> StatusResponse {
        let ca = self.ca.summary();
        StatusResponse {
            ca: CertificateInfo {
                fingerprint_sha256: ca.fingerprint_sha256.clone(),
                not_after: ca.not_after.clone(),
            },
            targets: self
                .targets
                .iter()
                .map(|t| {
                    let stored = read_stored(&self.target_dir(t));
                    TargetStatus {
                        target: t.name.clone(),
                        host: t.host.clone(),
                        port: t.port,
                        last_distribution: stored.as_ref().map(|s| s.last.clone()),
                        certificate: stored.and_then(|s| s.certificate),
                    }
                })
                .collect(),
        }
    }
}

/// A staging directory nobody touched for this long belongs to a run that
/// died: the next connection to that VM removes it. Longer than any live
/// run's upload and exec (each bounded by the step timeout).
pub fn stale_staging_after(step_timeout: std::time::Duration) -> std::time::Duration {
    (step_timeout * 4).max(std::time::Duration::from_secs(600))
}

/// Removes a staging directory over SSH unless disarmed: now
/// ([`StagingCleanup::clean_now`]), or when dropped armed, which happens
/// when the run's future is dropped mid-way (a cancelled request, a stop).
struct StagingCleanup {
    connection: Option<Arc<ssh::Connection>>,
    staging: String,
    step_timeout: std::time::Duration,
}

impl StagingCleanup {
    fn new(
        connection: Arc<ssh::Connection>,
        staging: String,
        step_timeout: std::time::Duration,
    ) -> Self {
        Self {
            connection: Some(connection),
            staging,
            step_timeout,
        }
    }

    /// The agent ran and removed the directory itself.
    fn disarm(&mut self) {
        self.connection = None;
    }

    async fn clean_now(&mut self) {
        if let Some(connection) = self.connection.take() {
            remove_remote_staging(&connection, &self.staging, self.step_timeout).await;
        }
    }
}

impl Drop for StagingCleanup {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(staging = %self.staging, "run cancelled outside the runtime: the staging directory is left for the next connection to sweep");
            return;
        };
        let staging = std::mem::take(&mut self.staging);
        let step_timeout = self.step_timeout;
        tracing::warn!(staging = %staging, "distribution cancelled: removing the staging directory on the VM");
        runtime.spawn(async move {
            remove_remote_staging(&connection, &staging, step_timeout).await;
            connection.close().await;
        });
    }
}

async fn remove_remote_staging(
    connection: &ssh::Connection,
    staging: &str,
    step_timeout: std::time::Duration,
) {
    match tokio::time::timeout(step_timeout, connection.remove_staging(staging)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(staging, error = %e, "cannot remove the staging directory; the next connection sweeps it")
        }
        Err(_) => tracing::warn!(
            staging,
            "removing the staging directory timed out; the next connection sweeps it"
        ),
    }
}

const STATUS_FILE: &str = "last-distribution.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredStatus {
    last: LastDistribution,
    certificate: Option<CertificateInfo>,
}

fn read_stored(dir: &Path) -> Option<StoredStatus> {
    let bytes = std::fs::read(dir.join(STATUS_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn target_span(target: &Target) -> tracing::Span {
    let span = tracing::info_span!(
        "ssh.distribute_certificates",
        otel.kind = "client",
        pki.operation = "distribute",
        ssh.target_vm = %target.name,
        ssh.target_ip = tracing::field::Empty,
        ssh.user = %target.user,
        ssh.files_copied = 0u32,
        ssh.error_type = tracing::field::Empty,
        server.address = %target.host,
        server.port = target.port,
    );
    if let Some(ip) = target.ip() {
        span.record("ssh.target_ip", ip.to_string());
    }
    span
}
