//! A binary under test as a real process: started in a clean environment,
//! on a port of its own choosing, waited for until it says it listens, its
//! output kept line by line and shown when the test fails, and stopped with
//! SIGTERM (so it flushes its spans) before it is killed.
//!
//! ```no_run
//! use autobot_testkit::process::Launch;
//! let mut ai = Launch::workspace_bin("autobot-ai-stack")
//!     .env("AUTOBOT_JAEGER_ENDPOINT", "http://127.0.0.1:4317")
//!     .start();
//! let health = ai.url("/health");
//! ai.stop(); // SIGTERM, and the exit status must be success
//! ```
//!
//! The clean environment: nothing the test process inherited that a service
//! reads (`AUTOBOT_*`, `OTEL_*`, `RUST_LOG`, `OPENAI_API_KEY`, `TRACEPARENT`
//! and its fellows) reaches it,
//! and it starts in an empty temporary directory, so no `.env` is read.
//! Then `AUTOBOT_BIND=127.0.0.1:0`, `OTEL_BSP_SCHEDULE_DELAY=100` (spans
//! arrive quickly) and `RUST_LOG=info`, and the test's own settings on top.
//!
//! Ready means: the process printed the line every service prints once it
//! listens, `{service.name} listening on http://{addr}` (or `https://`),
//! with the bound address; [`listening_addr`] reads it from stdout or
//! stderr.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long [`Launch::start`] waits for the readiness line by default (the
/// npu-worker loads its model first; a debug build on a shared box is slow).
pub const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long [`Process::terminate`] waits for the exit after SIGTERM.
pub const STOP_WITHIN: Duration = Duration::from_secs(20);
/// How long a dropped process has between SIGTERM and SIGKILL.
pub const GRACE_ON_DROP: Duration = Duration::from_secs(5);
/// How many of the last output lines a failing test shows per process.
const SHOWN_ON_FAILURE: usize = 400;

/// Whether the test process's variable `key` must not reach a process under
/// test: every setting a service reads, the LLM key, and a trace context
/// (the environment carrier's variables, which the PKI agent continues).
pub fn is_inherited_setting(key: &OsStr) -> bool {
    let key = key.to_string_lossy();
    key.starts_with("AUTOBOT_")
        || key.starts_with("OTEL_")
        || matches!(
            key.as_ref(),
            "RUST_LOG" | "OPENAI_API_KEY" | "TRACEPARENT" | "TRACESTATE" | "BAGGAGE"
        )
}

/// The address in a readiness line, `… listening on http://ADDR …` or
/// `https://`, with its scheme. The line may come through a log formatter
/// (a timestamp before, colour codes around).
pub fn listening_addr(line: &str) -> Option<(&'static str, SocketAddr)> {
    for scheme in ["http", "https"] {
        let marker = format!("listening on {scheme}://");
        if let Some(at) = line.find(&marker) {
            let rest = &line[at + marker.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')))
                .unwrap_or(rest.len());
            if let Ok(addr) = rest[..end].parse() {
                return Some((scheme, addr));
            }
        }
    }
    None
}

/// How to start one process. Build it, then [`start`](Self::start) it (a
/// server), or [`run`](Self::run) it to the end (a command).
#[derive(Clone, Debug)]
pub struct Launch {
    program: PathBuf,
    name: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    within: Duration,
}

impl Launch {
    /// The workspace binary `name`, found by [`crate::bins::workspace_bin`]
    /// (panics saying how to build it when it is not there).
    pub fn workspace_bin(name: &str) -> Self {
        Self::program(crate::bins::workspace_bin(name).unwrap_or_else(|e| panic!("{e:#}")))
    }

    /// Any program, e.g. `env!("CARGO_BIN_EXE_autobot-backend")`.
    pub fn program(path: impl Into<PathBuf>) -> Self {
        let program = path.into();
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.display().to_string());
        Self {
            program,
            name,
            args: Vec::new(),
            env: [
                ("AUTOBOT_BIND", "127.0.0.1:0"),
                ("OTEL_BSP_SCHEDULE_DELAY", "100"),
                ("RUST_LOG", "info"),
            ]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
            current_dir: None,
            within: READY_WITHIN,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets a variable; a later value of the same variable wins.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Starts in `dir` instead of a fresh empty directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// How long [`start`](Self::start) waits for readiness, or
    /// [`run`](Self::run) for the exit ([`READY_WITHIN`] by default).
    pub fn within(mut self, limit: Duration) -> Self {
        self.within = limit;
        self
    }

    fn command(&self) -> anyhow::Result<(Command, Option<tempfile::TempDir>)> {
        let mut cmd = Command::new(&self.program);
        for (key, _) in std::env::vars_os() {
            if is_inherited_setting(&key) {
                cmd.env_remove(key);
            }
        }
        let dir = match &self.current_dir {
            Some(dir) => {
                cmd.current_dir(dir);
                None
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("autobot-process-")
                    .tempdir()
                    .context("creating the process's working directory")?;
                cmd.current_dir(dir.path());
                Some(dir)
            }
        };
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Ok((cmd, dir))
    }

    /// Starts the process and waits until it prints where it listens;
    /// panics with what it printed when it does not.
    pub fn start(self) -> Process {
        self.try_start().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// [`start`](Self::start), with the failure as an error.
    pub fn try_start(self) -> anyhow::Result<Process> {
        let (mut process, (scheme, addr)) = self.start_when(listening_addr)?;
        process.scheme = scheme;
        process.addr = Some(addr);
        Ok(process)
    }

    /// Starts the process and waits until `ready` finds what it needs in an
    /// output line (for a program with a readiness line of its own, such as
    /// `autobot-trace serve`).
    pub fn start_when<T: Send + 'static>(
        self,
        ready: impl Fn(&str) -> Option<T> + Send + Sync + 'static,
    ) -> anyhow::Result<(Process, T)> {
        let (mut cmd, dir) = self.command()?;
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        let output = Output::default();
        let ready = Arc::new(ready);
        let (tx, rx) = mpsc::channel();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().context("stdout")?),
            Box::new(child.stderr.take().context("stderr")?),
        ];
        let readers = streams
            .into_iter()
            .map(|stream| {
                let (output, ready, tx) = (output.clone(), ready.clone(), tx.clone());
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        if let Some(found) = ready(&line) {
                            let _ = tx.send(found);
                        }
                        output.push(line);
                    }
                })
            })
            .collect();
        drop(tx);
        let mut process = Process {
            name: self.name,
            child,
            addr: None,
            scheme: "http",
            output,
            readers,
            _dir: dir,
        };
        let deadline = Instant::now() + self.within;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(found) => return Ok((process, found)),
                Err(RecvTimeoutError::Timeout) => {}
                // Both streams closed: the process is gone or going.
                Err(RecvTimeoutError::Disconnected) => {
                    let status = process.wait_exit_quietly(Duration::from_secs(5));
                    bail!(
                        "{} stopped before it was ready ({}); its output:\n{}",
                        process.name,
                        describe(status),
                        process.output()
                    );
                }
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                process.drain_output();
                bail!(
                    "{} exited before it was ready ({status}); its output:\n{}",
                    process.name,
                    process.output()
                );
            }
            if Instant::now() > deadline {
                process.kill();
                bail!(
                    "{} was not ready within {:?}; its output:\n{}",
                    process.name,
                    self.within,
                    process.output()
                );
            }
        }
    }

    /// Runs the program to its end (bounded by [`within`](Self::within))
    /// and returns its exit status and output.
    pub fn run(self) -> Finished {
        let (mut cmd, _dir) = self.command().unwrap_or_else(|e| panic!("{e:#}"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        let read_all = |mut stream: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = stream.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = read_all(Box::new(child.stdout.take().expect("stdout")));
        let stderr = read_all(Box::new(child.stderr.take().expect("stderr")));
        let deadline = Instant::now() + self.within;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for the process") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not finish within {:?}; stdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.within,
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Finished {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }
}

/// A program run to its end by [`Launch::run`].
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The exit code (None when a signal ended it).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Every line a process printed, both streams in the order they were read.
#[derive(Clone, Debug, Default)]
struct Output(Arc<Mutex<Vec<String>>>);

impl Output {
    fn push(&self, line: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A running (or exited) process started by [`Launch`]. Dropping it stops
/// it: SIGTERM, then SIGKILL after [`GRACE_ON_DROP`]; when the test is
/// failing, its output is printed too.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    addr: Option<SocketAddr>,
    scheme: &'static str,
    output: Output,
    readers: Vec<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Process {
    /// The program's file name (e.g. `autobot-backend`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it listens, as its readiness line said.
    pub fn addr(&self) -> SocketAddr {
        self.addr.unwrap_or_else(|| {
            panic!(
                "{} was started with a readiness line of its own: no listening address",
                self.name
            )
        })
    }

    /// `http://ADDR{path}` (`https` when the process said so).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far, one line after another.
    pub fn output(&self) -> String {
        self.output.lines().join("\n")
    }

    /// [`output`](Self::output), line by line.
    pub fn output_lines(&self) -> Vec<String> {
        self.output.lines()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM (what systemd sends): the process should finish what
    /// it has in hand, flush its spans and exit.
    pub fn send_sigterm(&mut self) {
        if !self.is_running() {
            return;
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        assert!(
            sent.as_ref().is_ok_and(|s| s.success()),
            "kill -TERM {} ({}) failed: {sent:?}",
            self.pid(),
            self.name
        );
    }

    /// Waits until the process exits; panics, with its output, when it
    /// does not within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match self.wait_exit_quietly(limit) {
            Some(status) => status,
            None => panic!(
                "{} did not exit within {limit:?}; its output:\n{}",
                self.name,
                self.output()
            ),
        }
    }

    /// SIGTERM, then waits for the exit ([`STOP_WITHIN`]); returns the status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.send_sigterm();
        self.wait_exit(STOP_WITHIN)
    }

    /// [`terminate`](Self::terminate), and the exit must be a success.
    pub fn stop(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "{} exited with {status}; its output:\n{}",
            self.name,
            self.output()
        );
    }

    /// SIGKILL: the process dies with whatever it had in hand.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain_output();
    }

    fn wait_exit_quietly(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain_output();
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the exit: lets the readers take the last lines (bounded, in
    /// case a grandchild still holds the pipes).
    fn drain_output(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines, framed, for a failing test's report.
    fn report(&self) -> String {
        let lines = self.output.lines();
        let skipped = lines.len().saturating_sub(SHOWN_ON_FAILURE);
        let mut text = format!("----- output of {} (pid {}) -----\n", self.name, self.pid());
        if skipped > 0 {
            text.push_str(&format!("[{skipped} earlier lines left out]\n"));
        }
        for line in &lines[skipped..] {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("----- end of {} -----", self.name));
        text
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            if self.wait_exit_quietly(GRACE_ON_DROP).is_none() {
                self.kill();
            }
        }
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(status) => status.to_string(),
        None => "still running".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_readiness_line_is_found_plain_or_through_a_log_formatter() {
        let addr: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        assert_eq!(
            listening_addr("autobot-browser listening on http://127.0.0.1:40123"),
            Some(("http", addr))
        );
        assert_eq!(
            listening_addr(
                "\u{1b}[2m2026-01-01T00:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m autobot_lifecycle: autobot-backend listening on http://127.0.0.1:40123\u{1b}[0m"
            ),
            Some(("http", addr))
        );
        assert_eq!(
            listening_addr("x listening on https://[::1]:8443 (TLS)"),
            Some(("https", "[::1]:8443".parse().unwrap()))
        );
        assert_eq!(listening_addr("listening on http://nonsense"), None);
        assert_eq!(listening_addr("stand-in listening on 127.0.0.1:1"), None);
    }

    #[test]
    fn the_services_settings_of_the_test_process_are_not_inherited() {
        for key in [
            "AUTOBOT_BIND",
            "OTEL_SDK_DISABLED",
            "RUST_LOG",
            "OPENAI_API_KEY",
            "TRACEPARENT",
            "BAGGAGE",
        ] {
            assert!(is_inherited_setting(OsStr::new(key)), "{key}");
        }
        for key in ["PATH", "HOME", "CARGO_MANIFEST_DIR"] {
            assert!(!is_inherited_setting(OsStr::new(key)), "{key}");
        }
    }

    fn sh(script: &str) -> Launch {
        Launch::program("/bin/sh").arg("-c").arg(script)
    }

    #[test]
    fn a_process_is_ready_when_it_says_where_it_listens_and_stops_on_sigterm() {
        // The readiness line on stderr, as a service logging through tracing prints it.
        let mut p = sh(
            "trap 'echo flushed; exit 0' TERM; echo starting; echo \"x listening on http://127.0.0.1:1\" >&2; while true; do sleep 0.05; done",
        )
        .start();
        assert_eq!(p.url("/health"), "http://127.0.0.1:1/health");
        p.stop();
        // Both streams, read to their end once it exited.
        let lines = p.output_lines();
        for line in ["starting", "x listening on http://127.0.0.1:1", "flushed"] {
            assert!(lines.iter().any(|l| l == line), "{line}: {lines:?}");
        }
    }

    #[test]
    fn the_environment_is_clean_and_the_directory_empty() {
        let out = sh("env; echo cwd=$(pwd); ls -A | wc -l")
            .env("AUTOBOT_EXTRA", "mine")
            .run();
        assert!(out.status.success());
        assert!(out.stdout.contains("AUTOBOT_BIND=127.0.0.1:0"));
        assert!(out.stdout.contains("AUTOBOT_EXTRA=mine"));
        assert!(out.stdout.contains("OTEL_BSP_SCHEDULE_DELAY=100"));
        assert!(
            out.stdout.trim_end().ends_with('0'),
            "empty directory: {}",
            out.stdout
        );
        let cwd = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("cwd="))
            .unwrap();
        assert!(!Path::new(cwd).exists(), "the directory went with the run");
    }

    #[test]
    fn a_process_that_exits_before_it_is_ready_is_reported_with_its_output() {
        let err = sh("echo 'AUTOBOT_BIND=\"x\": not an address' >&2; exit 2")
            .try_start()
            .unwrap_err()
            .to_string();
        assert!(err.contains("before it was ready"), "{err}");
        assert!(err.contains("exit status: 2"), "{err}");
        assert!(err.contains("not an address"), "{err}");
    }

    #[test]
    fn a_process_that_never_says_it_is_ready_is_killed_after_the_limit() {
        let started = Instant::now();
        let err = sh("echo waiting; sleep 30")
            .within(Duration::from_millis(300))
            .try_start()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not ready within 300ms"), "{err}");
        assert!(err.contains("waiting"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_dropped_process_gets_sigterm_then_sigkill() {
        let p = sh("trap '' TERM; echo \"listening on http://127.0.0.1:1\"; while true; do sleep 0.05; done").start();
        let pid = p.pid();
        let started = Instant::now();
        drop(p);
        let waited = started.elapsed();
        assert!(
            waited >= GRACE_ON_DROP && waited < GRACE_ON_DROP + Duration::from_secs(5),
            "{waited:?}"
        );
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} is gone"
        );
    }

    #[test]
    fn run_reports_status_and_both_streams() {
        let out = sh("echo out; echo err >&2; exit 3").run();
        assert_eq!(out.code(), Some(3));
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("out\n", "err\n")
        );
    }
}
