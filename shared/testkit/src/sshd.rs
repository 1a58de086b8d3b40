//! A real OpenSSH server for tests: `/usr/sbin/sshd -D -e -f <own config>`
//! (Debian package openssh-server, installed by scripts/setup.d/10-apt.sh)
//! on a free loopback port, with its own host key and authorized_keys in a
//! temp dir, logging in the current user (root in CI). Killed on Drop.
//!
//! ```no_run
//! use autobot_testkit::sshd::{KeyFiles, Sshd, SshdOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let client = KeyFiles::generate(dir.path(), "client").unwrap();
//! let sshd = Sshd::start(SshdOptions {
//!     authorized_keys: vec![client.public_line.clone()],
//!     accept_env: vec!["TRACEPARENT".into()],
//!     ..Default::default()
//! })
//! .unwrap();
//! std::fs::write(dir.path().join("known_hosts"), sshd.known_hosts_line()).unwrap();
//! ```

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where Debian installs the daemon.
pub const SSHD: &str = "/usr/sbin/sshd";

/// How long `start` waits for the banner.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// An ed25519 key pair made by `ssh-keygen`.
#[derive(Clone, Debug)]
pub struct KeyFiles {
    /// OpenSSH private key file (0600).
    pub private: PathBuf,
    /// `ssh-ed25519 AAAA… comment`, the .pub file's line.
    pub public_line: String,
}

impl KeyFiles {
    /// `ssh-keygen -t ed25519 -N '' -f DIR/NAME`.
    pub fn generate(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let private = dir.join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private)
            .stdin(Stdio::null())
            .output()
            .context("running ssh-keygen (Debian package openssh-client)")?;
        if !out.status.success() {
            bail!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let public_line = std::fs::read_to_string(private.with_extension("pub"))
            .or_else(|_| std::fs::read_to_string(format!("{}.pub", private.display())))
            .context("reading the .pub file ssh-keygen wrote")?
            .trim()
            .to_owned();
        Ok(Self {
            private,
            public_line,
        })
    }

    /// `ssh-ed25519 AAAA…` without the comment, as known_hosts wants it.
    pub fn key_type_and_base64(&self) -> String {
        self.public_line
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How to configure one sshd.
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    /// Public key lines allowed to log in as the current user.
    pub authorized_keys: Vec<String>,
    /// Variable names for `AcceptEnv`; empty means sshd's default (accept none).
    pub accept_env: Vec<String>,
    /// `SetEnv NAME=VALUE` for every session (what a VM's sshd would give
    /// its commands, such as AUTOBOT_JAEGER_ENDPOINT).
    pub set_env: Vec<(String, String)>,
    /// More sshd_config lines, verbatim.
    pub extra_config: Vec<String>,
}

/// A running sshd. Dropping it kills the daemon.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    host_key: KeyFiles,
    user: String,
}

/// The current user's name, the one sshd lets in.
pub fn current_user() -> anyhow::Result<String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .context("running id -un")?;
    let name = String::from_utf8(out.stdout)?.trim().to_owned();
    if name.is_empty() {
        bail!("id -un printed nothing");
    }
    Ok(name)
}

/// `[127.0.0.1]:PORT KEYTYPE BASE64`: a known_hosts line for a loopback port.
pub fn known_hosts_line(port: u16, key_type_and_base64: &str) -> String {
    format!("[127.0.0.1]:{port} {key_type_and_base64}\n")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// OpenSSH (major, minor) from `sshd -V`, which prints e.g. `OpenSSH_9.2p1 …`.
fn sshd_version() -> Option<(u32, u32)> {
    let out = Command::new(SSHD).arg("-V").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let rest = text.split("OpenSSH_").nth(1)?;
    let mut nums = rest.split(|c: char| !c.is_ascii_digit());
    Some((nums.next()?.parse().ok()?, nums.next()?.parse().ok()?))
}

impl Sshd {
    /// Starts sshd and waits (bounded) until it answers with its SSH banner.
    pub fn start(options: SshdOptions) -> anyhow::Result<Self> {
        if !Path::new(SSHD).exists() {
            bail!("{SSHD} is missing: run scripts/setup.sh (Debian package openssh-server)");
        }
        // A port can be taken between our probe and sshd's bind: retry a few times.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::start_once(&options) {
                Ok(sshd) => return Ok(sshd),
                Err(e) if format!("{e:#}").contains("Address already in use") => {
                    last_error = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("three attempts failed"))
    }

    fn start_once(options: &SshdOptions) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("autobot-sshd-").tempdir()?;
        let host_key = KeyFiles::generate(dir.path(), "ssh_host_ed25519_key")?;
        let user = current_user()?;
        let authorized = dir.path().join("authorized_keys");
        let mut keys = options.authorized_keys.join("\n");
        keys.push('\n');
        std::fs::write(&authorized, keys)?;
        if is_root() {
            // sshd's privilege-separation directory; the Debian service unit
            // normally creates it, a test machine may not have it yet.
            std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        }

        let port = crate::ports::free_port();
        let mut config = vec![
            format!("Port {port}"),
            "ListenAddress 127.0.0.1".to_owned(),
            format!("HostKey {}", host_key.private.display()),
            format!("AuthorizedKeysFile {}", authorized.display()),
            // The temp dir lives under world-writable /tmp, which StrictModes refuses.
            "StrictModes no".to_owned(),
            "PidFile none".to_owned(),
            "UsePAM no".to_owned(),
            "UseDNS no".to_owned(),
            "PubkeyAuthentication yes".to_owned(),
            "PasswordAuthentication no".to_owned(),
            "KbdInteractiveAuthentication no".to_owned(),
            "PermitRootLogin prohibit-password".to_owned(),
            format!("AllowUsers {user}"),
            "Subsystem sftp internal-sftp".to_owned(),
            "PrintMotd no".to_owned(),
            "LogLevel VERBOSE".to_owned(),
        ];
        if sshd_version().is_some_and(|v| v >= (9, 8)) {
            // Many test connections from 127.0.0.1 must not get it penalised.
            config.push("PerSourcePenalties no".to_owned());
        }
        if !options.accept_env.is_empty() {
            config.push(format!("AcceptEnv {}", options.accept_env.join(" ")));
        }
        if !options.set_env.is_empty() {
            // One line: sshd keeps only the first SetEnv it reads.
            let pairs: Vec<String> = options
                .set_env
                .iter()
                .map(|(name, value)| format!("{name}=\"{value}\""))
                .collect();
            config.push(format!("SetEnv {}", pairs.join(" ")));
        }
        config.extend(options.extra_config.iter().cloned());
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config.join("\n") + "\n")?;

        let log_path = dir.path().join("sshd.log");
        let log = File::create(&log_path)?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {SSHD}"))?;
        let mut sshd = Self {
            child,
            dir,
            port,
            host_key,
            user,
        };
        sshd.wait_ready()?;
        Ok(sshd)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "sshd exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if let Ok(mut stream) =
                TcpStream::connect_timeout(&self.addr(), Duration::from_millis(500))
            {
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut banner = [0u8; 8];
                if stream.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-2.0") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "sshd did not answer within {READY_WITHIN:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The user that may log in (the current user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The daemon's host key.
    pub fn host_key(&self) -> &KeyFiles {
        &self.host_key
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA…\n` for this daemon's real host key.
    pub fn known_hosts_line(&self) -> String {
        known_hosts_line(self.port, &self.host_key.key_type_and_base64())
    }

    /// The daemon's own temp dir (config, keys, log); removed on Drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What sshd printed so far (`-e`: its log on stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Kills the daemon now (sessions already open finish on their own).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_starts_answers_and_stops_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let client = KeyFiles::generate(dir.path(), "client").unwrap();
        let sshd = Sshd::start(SshdOptions {
            authorized_keys: vec![client.public_line.clone()],
            accept_env: vec!["TRACEPARENT".into()],
            ..Default::default()
        })
        .unwrap();
        let addr = sshd.addr();
        assert!(
            sshd.known_hosts_line()
                .starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", sshd.port()))
        );
        let config = std::fs::read_to_string(sshd.dir().join("sshd_config")).unwrap();
        assert!(config.contains("AcceptEnv TRACEPARENT"));

        // The real ssh client logs in with the key and the host key is the one we know.
        let known = dir.path().join("known_hosts");
        std::fs::write(&known, sshd.known_hosts_line()).unwrap();
        let out = Command::new("ssh")
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
            ])
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .arg("-i")
            .arg(&client.private)
            .args(["-p", &sshd.port().to_string()])
            .arg(format!("{}@127.0.0.1", sshd.user()))
            .arg("echo hello-from-sshd")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "hello-from-sshd",
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );

        drop(sshd);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    }
}
