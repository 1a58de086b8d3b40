//! A service under test as a real process: its own environment (nothing
//! inherited from AUTOBOT_*/OTEL_*, no `.env` picked up), its stderr kept
//! line by line, stopped with SIGTERM so it flushes its spans.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Service {
    name: String,
    child: Option<Child>,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

#[allow(dead_code)] // the backend's tests use it
/// A binary of this workspace (autobot-testkit finds it next to the test
/// executable, or says how to build it).
pub fn workspace_bin(name: &str) -> PathBuf {
    autobot_testkit::bins::workspace_bin(name).unwrap_or_else(|e| panic!("{e:#}"))
}

impl Service {
    /// Starts `bin` with `env` on a free port and waits for its "listening on" line.
    pub fn start(bin: &Path, env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("AUTOBOT_")
                || key.starts_with("OTEL_")
                || key == "RUST_LOG"
                || key == "OPENAI_API_KEY"
            {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(dir.path())
            .env("AUTOBOT_BIND", "127.0.0.1:0")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let lines = lines.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(i) = line.find("listening on http://") {
                        let rest = &line[i + "listening on http://".len()..];
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        if let Ok(addr) = addr.parse::<SocketAddr>() {
                            let _ = tx.send(addr);
                        }
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "{name} did not start listening within 30 s; its output:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
        };
        Self {
            name,
            child: Some(child),
            addr,
            lines,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// SIGTERM, then wait (bounded) for the exit: the process flushes its spans first.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "{} exited with {status}", self.name);
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{} did not exit within 15 s of SIGTERM", self.name);
                }
            }
        }
        // Let the reader threads take the last lines.
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback port nobody listens on.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
