//! One target over SSH (russh + russh-sftp): connect with the host key
//! checked against known_hosts, log in with the key, upload the three files
//! to a fresh staging directory, run the agent with the trace context.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autobot_tracing::env_carrier::{shell_prefix, shell_quote};
use autobot_wire::pki::AgentInstallReport;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, client};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::ca::{CA_CERT_FILE, IssuedCertificate, SERVER_CERT_FILE, SERVER_KEY_FILE};
use crate::known_hosts::{self, HostKeyVerdict};
use crate::targets::Target;

/// Output kept from the agent (its JSON line is short; logs are cut).
const MAX_OUTPUT: usize = 64 * 1024;

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

/// Decides on the server's host key; remembers why it said no.
struct HostKeyCheck {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    refusal: Arc<Mutex<Option<SshError>>>,
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
        let handler = HostKeyCheck {
            host: target.host.clone(),
            port: target.port,
            known_hosts: settings.known_hosts.clone(),
            refusal: refusal.clone(),
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
    pub async fn upload(
        &self,
        staging: &str,
        issued: &IssuedCertificate,
        step_timeout: Duration,
        files_copied: &mut u32,
    ) -> Result<(), SshError> {
        let span = tracing::info_span!(
            "ssh.upload",
            ssh.staging_dir = staging,
            ssh.files_copied = tracing::field::Empty,
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
                let attrs = FileAttributes {
                    permissions: Some(mode),
                    ..FileAttributes::empty()
                };
                let mut file = sftp
                    .open_with_flags_and_attributes(
                        &path,
                        OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
                        attrs,
                    )
                    .await
                    .map_err(|e| upload_err(&path)(e.to_string()))?;
                file.write_all(bytes)
                    .await
                    .map_err(|e| upload_err(&path)(e.to_string()))?;
                file.shutdown()
                    .await
                    .map_err(|e| upload_err(&path)(e.to_string()))?;
                *files_copied += 1;
                tracing::Span::current().record("ssh.files_copied", *files_copied);
            }
            let _ = sftp.close().await;
            Ok(())
        };
        in_step_span(span, bounded("upload", step_timeout, work)).await
    }

    /// Best effort: removes what `upload` left when the agent did not run.
    pub async fn remove_staging(&self, staging: &str) {
        if let Ok(sftp) = self.sftp().await {
            for name in [SERVER_KEY_FILE, SERVER_CERT_FILE, CA_CERT_FILE] {
                let _ = sftp.remove_file(format!("{staging}/{name}")).await;
            }
            let _ = sftp.remove_dir(staging).await;
            let _ = sftp.close().await;
        }
    }

    /// Runs `command` with `vars` as SSH env requests (answers counted) and
    /// as an `env NAME='…'` prefix, because OpenSSH drops env requests its
    /// AcceptEnv does not name.
    pub async fn exec_agent(
        &self,
        target: &Target,
        staging: &str,
        vars: &BTreeMap<String, String>,
        step_timeout: Duration,
    ) -> Result<AgentInstallReport, SshError> {
        let command = agent_command(target, staging, vars);
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

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "done", "en")
            .await;
    }
}

/// `env TRACEPARENT='…' … 'AGENT' install --staging 'DIR' --dest 'CERT_DIR'`:
/// every part quoted for a POSIX shell; `env` so that non-POSIX login
/// shells (csh, fish) set the variables too.
pub fn agent_command(target: &Target, staging: &str, vars: &BTreeMap<String, String>) -> String {
    format!(
        "env {}{} install --staging {} --dest {}",
        shell_prefix(vars),
        shell_quote(&target.agent),
        shell_quote(staging),
        shell_quote(&target.cert_dir),
    )
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

    #[test]
    fn the_agent_command_survives_a_shell_with_awkward_paths_and_values() {
        let dir = tempfile::tempdir().unwrap();
        // A stand-in agent that prints what it got.
        let agent = dir.path().join("my agent's bin");
        std::fs::write(
            &agent,
            "#!/bin/sh\nprintf '%s\\n' \"TP=$TRACEPARENT\" \"TS=$TRACESTATE\" \"$@\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let target = crate::targets::parse_targets(
            std::path::Path::new("t.toml"),
            &format!(
                "[[targets]]\nname = \"vm\"\nhost = \"10.0.0.1\"\nagent = \"{}\"\ncert_dir = \"/etc/my certs/$HOME\"\n",
                agent.display()
            ),
        )
        .unwrap()
        .remove(0);
        let vars = BTreeMap::from([
            (
                "TRACEPARENT".to_owned(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            ),
            ("TRACESTATE".to_owned(), "k=it's; rm -rf /".to_owned()),
        ]);
        let command = agent_command(&target, "/tmp/stage `x`", &vars);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            lines,
            [
                "TP=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "TS=k=it's; rm -rf /",
                "install",
                "--staging",
                "/tmp/stage `x`",
                "--dest",
                "/etc/my certs/$HOME",
            ]
        );
    }
}
