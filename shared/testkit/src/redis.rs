//! A real `redis-server` on a free loopback port, its data in a temporary
//! directory, killed when the handle is dropped.
//!
//! The append-only file is fsynced on every write, so [`RedisServer::restart`]
//! (and even a SIGKILL through [`RedisServer::kill`]) loses nothing Redis
//! acknowledged: tests can restart Redis under load and count jobs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a starting server may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running (or stopped, between [`kill`](Self::kill) and
/// [`start_again`](Self::start_again)) `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
    /// With [`RedisServer::start_with_acl`]: the ACL file's lines, and
    /// the user and password [`url`](Self::url) and
    /// [`command`](Self::command) use.
    acl: Option<Acl>,
    /// With [`RedisServer::start_with_tls`]: the TLS port and its files.
    tls: Option<RedisTls>,
}

/// TLS as docs/security.md ("Redis") sets it up: the server's certificate
/// and key, clients must show a certificate of the CA (`tls-auth-clients yes`).
#[derive(Clone, Debug)]
struct RedisTls {
    port: u16,
    server: crate::pki::TestIdentity,
}

/// Redis's users, as docs/security.md sets them up: `user default off`
/// and users with passwords (`user NAME on >PASSWORD ...`).
#[derive(Clone)]
pub struct Acl {
    /// The lines of the ACL file (`user ...`), as an operator writes them.
    pub lines: Vec<String>,
    /// The user the test itself talks to Redis as (with every right it needs).
    pub user: String,
    pub password: String,
}

// The passwords are secrets: a failing test does not print them.
impl std::fmt::Debug for Acl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acl")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits until it answers PING.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_inner(None, None)
    }

    /// Starts `redis-server` with a TLS port too ([`RedisServer::tls_url`]):
    /// `server`'s certificate and key, and only clients with a certificate
    /// of `server.ca`. The plain port stays on 127.0.0.1 for the test's own
    /// [`command`](Self::command)s.
    pub fn start_with_tls(server: &crate::pki::TestIdentity) -> anyhow::Result<Self> {
        Self::start_inner(None, Some(server.clone()))
    }

    /// Starts `redis-server` with the users of `acl` only (its lines go to
    /// an ACL file, `--aclfile`; write `user default off` among them to
    /// turn off the password-less user), and waits until it answers PING
    /// as `acl.user`.
    pub fn start_with_acl(acl: Acl) -> anyhow::Result<Self> {
        Self::start_inner(Some(acl), None)
    }

    fn start_inner(
        acl: Option<Acl>,
        tls: Option<crate::pki::TestIdentity>,
    ) -> anyhow::Result<Self> {
        let binary = find_redis_server()?;
        let mut last_error = None;
        // The free port can be taken between our probe and Redis's bind: try a few.
        for _ in 0..5 {
            let port = crate::ports::free_port();
            let mut server = Self {
                child: None,
                port,
                dir: tempfile::Builder::new()
                    .prefix("autobot-redis-")
                    .tempdir()
                    .context("creating the Redis data directory")?,
                binary: binary.clone(),
                acl: acl.clone(),
                tls: tls.clone().map(|server| RedisTls {
                    port: crate::ports::free_port(),
                    server,
                }),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    /// `redis://127.0.0.1:{port}/0`; with an ACL,
    /// `redis://{user}:{password}@127.0.0.1:{port}/0` for its `user`.
    pub fn url(&self) -> String {
        match &self.acl {
            Some(acl) => self.url_as(&acl.user, &acl.password),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// `redis://{user}:{password}@127.0.0.1:{port}/0` (both percent-encoded).
    pub fn url_as(&self, user: &str, password: &str) -> String {
        let encode = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        format!(
            "redis://{}:{}@127.0.0.1:{}/0",
            encode(user),
            encode(password),
            self.port
        )
    }

    /// `rediss://127.0.0.1:{tls port}/0` (with [`RedisServer::start_with_tls`]).
    pub fn tls_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|tls| format!("rediss://127.0.0.1:{}/0", tls.port))
    }

    /// The TLS port (with [`RedisServer::start_with_tls`]).
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|tls| tls.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Where Redis keeps its data and its log (`redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the server (SIGKILL) and waits for it to go; data stays on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("redis-server on port {} is already running", self.port);
        }
        self.spawn()
    }

    /// [`kill`](Self::kill) then [`start_again`](Self::start_again).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Sends one command in Redis's inline protocol and returns the raw
    /// reply (after `AUTH` as the ACL's user, when there is one).
    pub fn command(&self, line: &str) -> anyhow::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))
            .with_context(|| format!("connecting to redis-server on port {}", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        if let Some(acl) = &self.acl {
            // RESP, so that a password with spaces or quotes is sent as it is.
            let mut auth = String::from("*3\r\n$4\r\nAUTH\r\n");
            for arg in [&acl.user, &acl.password] {
                auth.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
            }
            stream.write_all(auth.as_bytes())?;
            let mut reply = [0u8; 5];
            stream.read_exact(&mut reply)?;
            if &reply != b"+OK\r\n" {
                bail!(
                    "redis-server on port {} refused AUTH as {}",
                    self.port,
                    acl.user
                );
            }
        }
        stream.write_all(format!("{line}\r\n").as_bytes())?;
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = self.dir.path().join("redis.log");
        let mut command = Command::new(&self.binary);
        if let Some(acl) = &self.acl {
            let file = self.dir.path().join("users.acl");
            std::fs::write(&file, acl.lines.join("\n") + "\n").context("writing the ACL file")?;
            command.arg("--aclfile").arg(&file);
        }
        if let Some(tls) = &self.tls {
            command
                .args(["--tls-port", &tls.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.server.cert)
                .arg("--tls-key-file")
                .arg(&tls.server.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.server.ca)
                .args(["--tls-auth-clients", "yes"]);
        }
        let child = command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running() {
                self.child = None;
                bail!(
                    "redis-server exited at start on port {}; its log:\n{}",
                    self.port,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if matches!(self.command("PING"), Ok(reply) if reply.starts_with("+PONG")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                bail!(
                    "redis-server on port {} did not answer PING within {:?}; its log:\n{}",
                    self.port,
                    READY_TIMEOUT,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_redis_server() -> anyhow::Result<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("redis-server"));
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "redis-server is not installed: run scripts/setup.sh (it installs the Debian package redis-server)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_keeps_data_across_a_restart_and_stops() {
        let mut redis = RedisServer::start().expect("redis-server starts");
        assert!(redis.command("SET k v").unwrap().starts_with("+OK"));
        let port = redis.port();
        redis.restart().expect("restarts");
        assert_eq!(redis.port(), port);
        assert!(redis.command("GET k").unwrap().contains("v"));
        redis.kill();
        assert!(
            redis.command("PING").is_err(),
            "killed server still answers"
        );
        redis.start_again().expect("starts again");
        assert!(redis.command("PING").unwrap().starts_with("+PONG"));
        let addr = redis.addr();
        drop(redis);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    }

    #[test]
    fn with_an_acl_only_its_users_get_in() {
        let redis = RedisServer::start_with_acl(Acl {
            lines: vec![
                "user default off".into(),
                "user tester on >s3cret ~* &* +@all".into(),
            ],
            user: "tester".into(),
            password: "s3cret".into(),
        })
        .expect("redis-server starts with an ACL");
        assert!(redis.command("SET k v").unwrap().starts_with("+OK"));
        assert_eq!(
            redis.url(),
            format!("redis://tester:s3cret@127.0.0.1:{}/0", redis.port())
        );
        assert_eq!(
            redis.url_as("a b", "p@ss:/"),
            format!("redis://a%20b:p%40ss%3A%2F@127.0.0.1:{}/0", redis.port())
        );
        // Without AUTH, the default user is off.
        let mut stream = TcpStream::connect(redis.addr()).unwrap();
        stream.write_all(b"GET k\r\n").unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).unwrap();
        let reply = String::from_utf8_lossy(&buf[..n]);
        assert!(reply.starts_with("-NOAUTH"), "{reply}");
    }
}
