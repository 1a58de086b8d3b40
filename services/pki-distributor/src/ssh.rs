//! One target over SSH (russh + russh-sftp): connect with the host key
//! checked against known_hosts, log in with the key, upload the three files
//! to a fresh staging directory, run the agent with the trace context.
//!
//! Nothing a caller sent reaches the command line: it is a fixed sequence of
//! words from the targets file (checked to be shell-inert), the staging
//! directory we named, and a TRACEPARENT we wrote from the span context.
//! TRACESTATE and BAGGAGE travel as SSH env requests and in a 0600 file in
//! the staging directory (`trace-context.json`), never through a shell.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autobot_tracing::env_carrier::{CONTEXT_FILE, is_command_line_safe};
use autobot_wire::pki::AgentInstallReport;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, client};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::ca::{CA_CERT_FILE, IssuedCertificate, SERVER_CERT_FILE, SERVER_KEY_FILE};
use crate::known_hosts::{self, HostKeyVerdict};
use crate::targets::{Target, is_shell_inert_path};

/// Output kept from the agent (its JSON line is short; logs are cut).
const MAX_OUTPUT: usize = 64 * 1024;

/// Every per-run staging directory is `STAGING_DIR/autobot-pki-<32 hex>`.
pub const STAGING_PREFIX: &str = "autobot-pki-";

/// A fresh staging directory path under `parent` (a shell-inert path).
pub fn new_staging_path(parent: &str) -> String {
    format!(
        "{}/{STAGING_PREFIX}{}",
        parent.trim_end_matches('/'),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `name` is a staging directory's name (ours, any run).
pub fn is_staging_name(name: &str) -> bool {
    name.strip_prefix(STAGING_PREFIX).is_some_and(|id| {
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The files a staging directory may hold: the three we upload, the trace
/// context file. Nothing else is ever removed from one.
const STAGED_NAMES: [&str; 4] = [
    SERVER_KEY_FILE,
    SERVER_CERT_FILE,
    CA_CERT_FILE,
    CONTEXT_FILE,
];

/// Why a target was not served. Messages carry no key material.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("host key of {name} is not in known_hosts ({fingerprint}): refused")]
    HostKeyUnknown { name: String, fingerprint: String },
    #[error(
        "host key of {name} does not match known_hosts (lines {lines:?}; presented {fingerprint}): refused"
    )]
    HostKeyMismatch {
        name: String,
        lines: Vec<usize>,
        fingerprint: String,
    },
    #[error("host key of {name} is revoked in known_hosts line {line}: refused")]
    HostKeyRevoked { name: String, line: usize },
    #[error("host key of {name} is a certificate; only plain host keys are accepted")]
    HostCertificate { name: String },
    #[error("known_hosts unreadable (AUTOBOT_SSH_KNOWN_HOSTS): {0}")]
    KnownHosts(String),
    #[error("login as {user} with the AUTOBOT_SSH_KEY key was refused")]
    Auth { user: String },
    #[error("upload to {path}: {reason}")]
    Upload { path: String, reason: String },
    #[error("running the agent: {0}")]
    Exec(String),
    #[error("agent exited with status {status}: {message}")]
    Agent {
        status: u32,
        message: String,
        agent_error_type: Option<String>,
    },
    #[error("{step} timed out after {after:?}")]
    Timeout { step: &'static str, after: Duration },
    #[error("issuing the certificate: {0}")]
    Issue(String),
}

impl SshError {
    /// `error.type` / `ssh.error_type`: a small fixed set.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Resolve { .. } => "dns_error",
            Self::Connect { .. } => "connect_error",
            Self::HostKeyUnknown { .. } => "host_key_unknown",
            Self::HostKeyMismatch { .. } => "host_key_mismatch",
            Self::HostKeyRevoked { .. } => "host_key_revoked",
            Self::HostCertificate { .. } => "host_key_certificate",
            Self::KnownHosts(_) => "known_hosts_unreadable",
            Self::Auth { .. } => "auth_failed",
            Self::Upload { .. } => "upload_failed",
            Self::Exec(_) => "exec_failed",
            Self::Agent { status: 127, .. } => "agent_not_found",
            Self::Agent { .. } => "agent_failed",
            Self::Timeout { .. } => "timeout",
            Self::Issue(_) => "issue_failed",
        }
    }
}

/// What every target shares: how to log in and what to trust.
#[derive(Clone)]
pub struct SshSettings {
    pub key: Arc<PrivateKey>,
    pub known_hosts: PathBuf,
    pub step_timeout: Duration,
}

/// Bounds `fut` by the step timeout.
async fn bounded<T>(
    step: &'static str,
    after: Duration,
    fut: impl Future<Output = Result<T, SshError>>,
) -> Result<T, SshError> {
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| SshError::Timeout { step, after })?
}

/// Decides on the server's host key; remembers why it said no, and why the
/// server closed the connection.
struct HostKeyCheck {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    refusal: Arc<Mutex<Option<SshError>>>,
    closed: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let name = known_hosts::host_pattern_name(&self.host, self.port);
        let refusal = match presented {
            PublicKeyOrCertificate::Certificate(_) => SshError::HostCertificate { name },
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                let fingerprint = key.fingerprint(Default::default()).to_string();
                match known_hosts::check(&self.known_hosts, &self.host, self.port, key) {
                    HostKeyVerdict::Trusted => return Ok(true),
                    HostKeyVerdict::Unknown => SshError::HostKeyUnknown { name, fingerprint },
                    HostKeyVerdict::Mismatch { lines } => SshError::HostKeyMismatch {
                        name,
                        lines,
                        fingerprint,
                    },
                    HostKeyVerdict::Revoked { line } => SshError::HostKeyRevoked { name, line },
                    HostKeyVerdict::Unreadable(e) => SshError::KnownHosts(e),
                }
            }
        };
        *self.refusal.lock().expect("refusal lock") = Some(refusal);
        Ok(false)
    }

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let why = match &reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                format!("the server disconnected ({:?})", info.reason_code)
            }
            client::DisconnectReason::Error(e) => format!("the connection failed: {e}"),
        };
        *self.closed.lock().expect("closed lock") = Some(why);
        match reason {
            client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            client::DisconnectReason::Error(e) => Err(e),
        }
    }
}

/// A logged-in SSH connection to one target.
pub struct Connection {
    handle: client::Handle<HostKeyCheck>,
    pub peer: SocketAddr,
}

/// Resolves, connects, checks the host key, logs in. Runs in `ssh.connect`.
pub async fn connect(target: &Target, settings: &SshSettings) -> Result<Connection, SshError> {
    let span = tracing::info_span!(
        "ssh.connect",
        server.address = %target.host,
        server.port = target.port,
        network.peer.address = tracing::field::Empty,
    );
    let work = async {
        let peer = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| SshError::Resolve {
                host: target.host.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| SshError::Resolve {
                host: target.host.clone(),
                reason: "no address".to_owned(),
            })?;
        tracing::Span::current().record("network.peer.address", peer.ip().to_string());
        let refusal = Arc::new(Mutex::new(None));
        let closed = Arc::new(Mutex::new(None));
        let handler = HostKeyCheck {
            host: target.host.clone(),
            port: target.port,
            known_hosts: settings.known_hosts.clone(),
            refusal: refusal.clone(),
            closed: closed.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(settings.step_timeout * 4),
            ..Default::default()
        });
        let mut handle = match client::connect(config, peer, handler).await {
            Ok(h) => h,
            Err(e) => {
                return Err(refusal.lock().expect("refusal lock").take().unwrap_or(
                    SshError::Connect {
                        addr: peer,
                        reason: e.to_string(),
                    },
                ));
            }
        };
        let hash = if settings.key.algorithm().is_rsa() {
            handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten()
        } else {
            None
        };
        let auth = handle
            .authenticate_publickey(
                target.user.clone(),
                PrivateKeyWithHashAlg::new(settings.key.clone(), hash),
            )
            .await
            .map_err(|e| SshError::Connect {
                addr: peer,
                reason: format!("authentication: {e}"),
            })?;
        if !auth.success() {
            // russh answers a connection that closed mid-login as a failed
            // login: that is a connection problem, not a refused key.
            if handle.is_closed() {
                let why = closed.lock().expect("closed lock").take();
                return Err(SshError::Connect {
                    addr: peer,
                    reason: format!(
                        "closed during authentication: {}",
                        why.unwrap_or_else(|| "no reason given".to_owned())
                    ),
                });
            }
            return Err(SshError::Auth {
                user: target.user.clone(),
            });
        }
        Ok(Connection { handle, peer })
    };
    bounded("connect", settings.step_timeout, work)
        .instrument(span)
        .await
}

impl Connection {
    async fn sftp(&self) -> Result<SftpSession, String> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| e.to_string())?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| e.to_string())?;
        SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| e.to_string())
    }

    /// Creates `staging` (0700) and writes the three files into it (key
    /// 0600 from its creation). `files_copied` counts the files written, also on failure.
    ///
    /// `context` (the trace context file) is written 0600 beside them. Then
    /// staging directories of earlier runs, untouched for `stale_after` by
    /// the VM's clock, are removed: a run that died (the distributor killed,
    /// the VM rebooted mid-run) leaves no private key behind for long.
    pub async fn upload(
        &self,
        staging: &str,
        issued: &IssuedCertificate,
        context: &[u8],
        step_timeout: Duration,
        stale_after: Duration,
        files_copied: &mut u32,
    ) -> Result<(), SshError> {
        let span = tracing::info_span!(
            "ssh.upload",
            ssh.staging_dir = staging,
            ssh.files_copied = tracing::field::Empty,
            ssh.staging_swept = tracing::field::Empty,
        );
        let upload_err = |path: &str| {
            let path = path.to_owned();
            move |reason: String| SshError::Upload {
                path: path.clone(),
                reason,
            }
        };
        let work = async {
            let sftp = self.sftp().await.map_err(upload_err(staging))?;
            sftp.create_dir(staging)
                .await
                .map_err(|e| upload_err(staging)(e.to_string()))?;
            let private_dir = FileAttributes {
                permissions: Some(0o700),
                ..FileAttributes::empty()
            };
            sftp.set_metadata(staging, private_dir)
                .await
                .map_err(|e| upload_err(staging)(e.to_string()))?;
            for (name, bytes, mode) in [
                (CA_CERT_FILE, issued.ca_cert_pem.as_bytes(), 0o644),
                (SERVER_CERT_FILE, issued.cert_pem.as_bytes(), 0o644),
                (SERVER_KEY_FILE, issued.key_pem.expose().as_bytes(), 0o600),
            ] {
                let path = format!("{staging}/{name}");
                write_new_file(&sftp, &path, bytes, mode)
                    .await
                    .map_err(upload_err(&path))?;
                *files_copied += 1;
                tracing::Span::current().record("ssh.files_copied", *files_copied);
            }
            let path = format!("{staging}/{CONTEXT_FILE}");
            write_new_file(&sftp, &path, context, 0o600)
                .await
                .map_err(upload_err(&path))?;
            let swept = sweep_stale(&sftp, staging, stale_after).await;
            tracing::Span::current().record("ssh.staging_swept", swept);
            let _ = sftp.close().await;
            Ok(())
        };
        in_step_span(span, bounded("upload", step_timeout, work)).await
    }

    /// Removes what `upload` left when the agent did not run or did not
    /// finish. `Ok(false)`: the directory was already gone (the agent
    /// removed it).
    pub async fn remove_staging(&self, staging: &str) -> Result<bool, String> {
        let sftp = self.sftp().await?;
        let removed = remove_staging_dir(&sftp, staging).await;
        let _ = sftp.close().await;
        removed
    }

    /// Runs the agent: the context `vars` as SSH env requests (answers
    /// counted), and the fixed command of [`agent_command`], which carries
    /// `traceparent` only (for an sshd whose AcceptEnv refuses the requests;
    /// the rest is in the staging directory's context file).
    pub async fn exec_agent(
        &self,
        target: &Target,
        staging: &str,
        vars: &BTreeMap<String, String>,
        traceparent: Option<&str>,
        step_timeout: Duration,
    ) -> Result<AgentInstallReport, SshError> {
        let command = agent_command(target, staging, traceparent)?;
        let span = tracing::info_span!(
            "ssh.exec",
            process.executable.path = %target.agent,
            ssh.env_sent = vars.len(),
            ssh.env_accepted = tracing::field::Empty,
            process.exit.code = tracing::field::Empty,
        );
        let work = async {
            let exec_err = |e: russh::Error| SshError::Exec(e.to_string());
            let mut channel = self.handle.channel_open_session().await.map_err(exec_err)?;
            for (name, value) in vars {
                channel
                    .set_env(true, name.clone(), value.clone())
                    .await
                    .map_err(exec_err)?;
            }
            channel.exec(true, command).await.map_err(exec_err)?;

            // Replies come in request order: one per env request, then exec's.
            let mut replies = 0usize;
            let mut env_accepted = 0usize;
            let mut exec_refused = false;
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let mut status = None;
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Success | ChannelMsg::Failure => {
                        let ok = matches!(msg, ChannelMsg::Success);
                        if replies < vars.len() {
                            env_accepted += usize::from(ok);
                        } else if replies == vars.len() && !ok {
                            exec_refused = true;
                        }
                        replies += 1;
                    }
                    ChannelMsg::Data { data } => push_capped(&mut stdout, &data),
                    ChannelMsg::ExtendedData { data, .. } => push_capped(&mut stderr, &data),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        return Err(SshError::Exec(format!(
                            "agent killed by signal {signal_name:?}"
                        )));
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            let current = tracing::Span::current();
            current.record("ssh.env_accepted", env_accepted);
            if exec_refused {
                return Err(SshError::Exec(
                    "the server refused the exec request".to_owned(),
                ));
            }
            let status =
                status.ok_or_else(|| SshError::Exec("no exit status from the agent".to_owned()))?;
            current.record("process.exit.code", status);
            let stdout = String::from_utf8_lossy(&stdout);
            let report = stdout
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| serde_json::from_str::<AgentInstallReport>(l).ok());
            match report {
                Some(r) if status == 0 && r.ok => Ok(r),
                Some(r) => Err(SshError::Agent {
                    status,
                    message: r
                        .error
                        .unwrap_or_else(|| "failed without a reason".to_owned()),
                    agent_error_type: r.error_type,
                }),
                None => Err(SshError::Agent {
                    status,
                    message: tail(&String::from_utf8_lossy(&stderr), 400),
                    agent_error_type: None,
                }),
            }
        };
        in_step_span(span, bounded("exec", step_timeout, work)).await
    }

    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "done", "en")
            .await;
    }
}

/// `[env TRACEPARENT=00-…-01] AGENT install --staging DIR --dest CERT_DIR`.
///
/// Every word is shell-inert: the paths are checked to be made of
/// `A-Z a-z 0-9 / . _ -` (the targets file is refused otherwise, and they
/// are checked again here), the staging directory is ours, and the
/// traceparent must be exactly `00-<32 hex>-<16 hex>-<2 hex>`; an unsafe one
/// is left out (the agent then reads the context file). No quoting is
/// needed, so sh, bash, zsh, fish and csh all run the same command. `env`
/// sets the variable in every one of them.
pub fn agent_command(
    target: &Target,
    staging: &str,
    traceparent: Option<&str>,
) -> Result<String, SshError> {
    for (what, path) in [
        ("agent", target.agent.as_str()),
        ("staging directory", staging),
        ("cert_dir", target.cert_dir.as_str()),
    ] {
        if !is_shell_inert_path(path) {
            return Err(SshError::Exec(format!(
                "refusing to run a command with the {what} path {path:?}"
            )));
        }
    }
    let prefix = match traceparent.filter(|tp| is_command_line_safe(tp)) {
        Some(tp) => format!("env TRACEPARENT={tp} "),
        None => String::new(),
    };
    Ok(format!(
        "{prefix}{} install --staging {staging} --dest {}",
        target.agent, target.cert_dir
    ))
}

/// Removes the staging directory `dir`: the files a run puts there, then the
/// directory itself. `Ok(false)` when it does not exist.
/// Creates `path` (it must not exist yet) with `mode` from the start, so
/// a key is never readable by others even for a moment, and writes `bytes`.
async fn write_new_file(
    sftp: &SftpSession,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<(), String> {
    let attrs = FileAttributes {
        permissions: Some(mode),
        ..FileAttributes::empty()
    };
    let mut file = sftp
        .open_with_flags_and_attributes(
            path,
            OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
            attrs,
        )
        .await
        .map_err(|e| e.to_string())?;
    file.write_all(bytes).await.map_err(|e| e.to_string())?;
    file.shutdown().await.map_err(|e| e.to_string())
}

async fn remove_staging_dir(sftp: &SftpSession, dir: &str) -> Result<bool, String> {
    if sftp.symlink_metadata(dir).await.is_err() {
        return Ok(false);
    }
    for name in STAGED_NAMES {
        let _ = sftp.remove_file(format!("{dir}/{name}")).await;
    }
    sftp.remove_dir(dir)
        .await
        .map(|()| true)
        .map_err(|e| format!("removing {dir}: {e}"))
}

/// Removes the staging directories beside `ours` (the one just made, whose
/// mtime is the VM's "now") that nobody touched for `stale_after`. Returns
/// how many were removed; failures are logged, never fatal.
async fn sweep_stale(sftp: &SftpSession, ours: &str, stale_after: Duration) -> u32 {
    let Some((parent, _)) = ours.rsplit_once('/') else {
        return 0;
    };
    let parent = if parent.is_empty() { "/" } else { parent };
    let Some(now) = sftp.metadata(ours).await.ok().and_then(|m| m.mtime) else {
        return 0;
    };
    let Ok(entries) = sftp.read_dir(parent).await else {
        return 0;
    };
    let cutoff = u64::from(now).saturating_sub(stale_after.as_secs());
    let mut removed = 0;
    for entry in entries {
        let name = entry.file_name();
        let path = format!("{}/{name}", parent.trim_end_matches('/'));
        let meta = entry.metadata();
        let stale = meta.mtime.is_some_and(|m| u64::from(m) < cutoff);
        if path == ours || !is_staging_name(&name) || !entry.file_type().is_dir() || !stale {
            continue;
        }
        match remove_staging_dir(sftp, &path).await {
            Ok(true) => {
                removed += 1;
                tracing::info!(staging = %path, "removed the staging directory of an earlier run");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(staging = %path, error = %e, "cannot remove a stale staging directory")
            }
        }
    }
    removed
}

/// Runs `fut` in `span` and marks the span failed if it fails.
async fn in_step_span<T>(
    span: tracing::Span,
    fut: impl Future<Output = Result<T, SshError>>,
) -> Result<T, SshError> {
    let result = fut.instrument(span.clone()).await;
    if let Err(e) = &result {
        autobot_tracing::record_error(&span, e.error_type(), e);
    }
    result
}

fn push_capped(buf: &mut Vec<u8>, data: &[u8]) {
    let room = MAX_OUTPUT.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

fn tail(text: &str, max_chars: usize) -> String {
    let trimmed = text.trim();
    let count = trimmed.chars().count();
    if count <= max_chars {
        trimmed.to_owned()
    } else {
        trimmed.chars().skip(count - max_chars).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(agent: &str, cert_dir: &str) -> Target {
        crate::targets::parse_targets(
            std::path::Path::new("t.toml"),
            &format!(
                "[[targets]]\nname = \"vm\"\nhost = \"10.0.0.1\"\nagent = \"{agent}\"\ncert_dir = \"{cert_dir}\"\n"
            ),
        )
        .unwrap()
        .remove(0)
    }

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn the_agent_command_is_fixed_words_and_the_traceparent() {
        let t = target("/usr/local/bin/autobot-pki-agent", "/etc/autobot/certs");
        let staging = new_staging_path("/tmp/");
        assert!(is_staging_name(staging.strip_prefix("/tmp/").unwrap()));
        assert_eq!(
            agent_command(&t, &staging, Some(TP)).unwrap(),
            format!(
                "env TRACEPARENT={TP} /usr/local/bin/autobot-pki-agent install --staging {staging} --dest /etc/autobot/certs"
            )
        );
        // A traceparent of any other shape is left out, never quoted in.
        for bad in [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01;id",
            "k=\\';touch /tmp/pwned;#",
            "$(id)",
        ] {
            assert_eq!(
                agent_command(&t, &staging, Some(bad)).unwrap(),
                format!(
                    "/usr/local/bin/autobot-pki-agent install --staging {staging} --dest /etc/autobot/certs"
                )
            );
        }
        // A path with shell syntax cannot get into a command at all.
        let mut evil = t.clone();
        evil.cert_dir = "/etc/certs;touch /tmp/pwned".to_owned();
        assert!(agent_command(&evil, &staging, Some(TP)).is_err());
        assert!(agent_command(&t, "/tmp/x `id`", Some(TP)).is_err());
    }

    #[test]
    fn staging_names_are_recognised_exactly() {
        assert!(is_staging_name(
            "autobot-pki-0123456789abcdef0123456789abcdef"
        ));
        for other in [
            "autobot-pki-",
            "autobot-pki-0123456789abcdef0123456789abcde",
            "autobot-pki-0123456789ABCDEF0123456789abcdef",
            "autobot-pki-0123456789abcdef0123456789abcdef0",
            "systemd-private-x",
        ] {
            assert!(!is_staging_name(other), "{other}");
        }
    }

    /// The command, run by each login shell there is on this machine, gives
    /// the agent exactly its words and the traceparent.
    #[test]
    fn every_login_shell_runs_the_same_command() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let agent = bin.join("fake-agent");
        std::fs::write(
            &agent,
            "#!/bin/sh\nprintf '%s\\n' \"TP=$TRACEPARENT\" \"$@\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = target(agent.to_str().unwrap(), "/etc/autobot/certs");
        let staging = new_staging_path("/tmp");
        let command = agent_command(&t, &staging, Some(TP)).unwrap();
        let mut ran = 0;
        for shell in ["sh", "bash", "dash", "zsh", "fish", "tcsh", "csh"] {
            let Ok(out) = std::process::Command::new(shell)
                .arg("-c")
                .arg(&command)
                .output()
            else {
                continue; // not installed here
            };
            ran += 1;
            assert!(out.status.success(), "{shell}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("TP={TP}\ninstall\n--staging\n{staging}\n--dest\n/etc/autobot/certs\n"),
                "{shell}"
            );
        }
        assert!(ran >= 2, "sh and bash at least");
    }
}
