//! The whole system on loopback: every service a real process exporting to
//! the trace tool (another process), real redis-server, a real sshd "VM"
//! running the PKI agent, the demo web site, and the stand-in LLM server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use autobot_standins::llm::{Mode, StandIn};
use autobot_testkit::bins::workspace_bin;
use autobot_testkit::redis::RedisServer;
use autobot_testkit::sshd::{KeyFiles, Sshd, SshdOptions};
use autobot_testkit::trace_tool::TraceTool;
use serde_json::Value;

pub const RESEARCH_SERVICES: [&str; 4] = [
    "autobot-backend",
    "autobot-browser",
    "autobot-npu-worker",
    "autobot-ai-stack",
];

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A service running as its own process.
pub struct Service {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Service {
    fn spawn(name: &'static str, dir: &Path, env: &[(String, String)]) -> Self {
        let addr = free_addr();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(workspace_bin(name).unwrap())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .envs(env.iter().cloned())
            .env("AUTOBOT_BIND", addr.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Self {
            name,
            addr,
            child,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_healthy(&mut self, path: &str) {
        let url = format!("{}{path}", self.url());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before it was healthy:\n{}",
                    self.name,
                    self.log()
                );
            }
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not healthy at {url} within 60 s:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then waits for the process to finish (it flushes its spans).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop within 20 s of SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Options {
    pub sample_rate: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { sample_rate: 1.0 }
    }
}

/// Everything running; dropped in reverse order.
pub struct System {
    pub backend: Service,
    pub pki: Service,
    pub browser: Service,
    pub ai_stack: Service,
    pub npu: Service,
    pub site: Service,
    pub llm: StandIn,
    _sshd: Sshd,
    _redis: RedisServer,
    pub tool: TraceTool,
    pub vm_certs: PathBuf,
    _dir: tempfile::TempDir,
}

impl System {
    pub async fn start(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tool =
            TraceTool::try_start().expect("the trace tool starts (cargo build --workspace --bins)");
        let redis =
            RedisServer::start().expect("redis-server starts (scripts/setup.sh installs it)");
        let common: Vec<(String, String)> = [
            ("AUTOBOT_JAEGER_ENDPOINT", tool.otlp_grpc_endpoint()),
            ("AUTOBOT_TRACE_SAMPLE_RATE", options.sample_rate.to_string()),
            ("AUTOBOT_ENV", "e2e".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let with = |extra: &[(&str, String)]| {
            let mut env = common.clone();
            env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            env
        };

        // The outside world: the LLM (a stand-in, in this process) and a web site.
        let llm = StandIn::start(Mode::Normal).await;
        let mut site = Service::spawn("autobot-demo-site", dir.path(), &with(&[]));

        // One sshd "VM" that accepts the trace variables and gives the agent its exporter settings.
        let keys = KeyFiles::generate(dir.path(), "client_key").unwrap();
        let sshd = Sshd::start(SshdOptions {
            authorized_keys: vec![keys.public_line.clone()],
            accept_env: vec!["TRACEPARENT".into(), "TRACESTATE".into(), "BAGGAGE".into()],
            set_env: vec![
                ("AUTOBOT_JAEGER_ENDPOINT".into(), tool.otlp_grpc_endpoint()),
                ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
                ("AUTOBOT_ENV".into(), "e2e".into()),
            ],
            ..SshdOptions::default()
        })
        .expect("sshd starts (scripts/setup.sh installs openssh-server)");
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, sshd.known_hosts_line()).unwrap();
        let vm_certs = dir.path().join("vm-a/certs");
        let targets = dir.path().join("targets.toml");
        std::fs::write(
            &targets,
            format!(
                "[[targets]]\nname = \"vm-a\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\ncert_dir = \"{}\"\nagent = \"{}\"\n",
                sshd.port(),
                sshd.user(),
                vm_certs.display(),
                workspace_bin("autobot-pki-agent").unwrap().display()
            ),
        )
        .unwrap();

        let model_dir = repo_root().join(".run/models/all-MiniLM-L6-v2");
        assert!(
            model_dir.join("model.safetensors").is_file(),
            "no model at {}: run scripts/setup.sh",
            model_dir.display()
        );
        let mut npu = Service::spawn(
            "autobot-npu-worker",
            dir.path(),
            &with(&[
                ("AUTOBOT_REDIS_URL", redis.url()),
                ("AUTOBOT_NPU_MODEL_DIR", model_dir.display().to_string()),
            ]),
        );
        let mut ai_stack = Service::spawn(
            "autobot-ai-stack",
            dir.path(),
            &with(&[
                ("AUTOBOT_OLLAMA_URL", llm.ollama_url()),
                ("AUTOBOT_LLM_PROVIDER", "ollama".into()),
                ("AUTOBOT_LLM_MODEL", "standin".into()),
            ]),
        );
        let mut browser = Service::spawn("autobot-browser", dir.path(), &with(&[]));
        let mut pki = Service::spawn(
            "autobot-pki-distributor",
            dir.path(),
            &with(&[
                (
                    "AUTOBOT_PKI_DIR",
                    dir.path().join("ca").display().to_string(),
                ),
                ("AUTOBOT_PKI_TARGETS", targets.display().to_string()),
                ("AUTOBOT_SSH_KEY", keys.private.display().to_string()),
                ("AUTOBOT_SSH_KNOWN_HOSTS", known_hosts.display().to_string()),
            ]),
        );
        let mut backend = Service::spawn(
            "autobot-backend",
            dir.path(),
            &with(&[
                ("AUTOBOT_REDIS_URL", redis.url()),
                ("AUTOBOT_AI_STACK_URL", ai_stack.url()),
                ("AUTOBOT_BROWSER_URL", browser.url()),
                ("AUTOBOT_PKI_URL", pki.url()),
                ("AUTOBOT_NPU_URL", npu.url()),
            ]),
        );
        site.wait_healthy("/health").await;
        npu.wait_healthy("/health").await;
        ai_stack.wait_healthy("/health").await;
        browser.wait_healthy("/health").await;
        pki.wait_healthy("/health").await;
        backend.wait_healthy("/api/health").await;
        Self {
            backend,
            pki,
            browser,
            ai_stack,
            npu,
            site,
            llm,
            _sshd: sshd,
            _redis: redis,
            tool,
            vm_certs,
            _dir: dir,
        }
    }

    pub fn article_url(&self) -> String {
        format!("{}/articles/tracing", self.site.url())
    }

    /// POSTs JSON to the backend; returns status, the trace id from
    /// `traceresponse`, whether it was sampled, and the body.
    pub async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.backend.url()))
            .json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let traceresponse = response
            .headers()
            .get("traceresponse")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let parts: Vec<&str> = traceresponse.split('-').collect();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            trace_id: parts.get(1).copied().unwrap_or_default().to_owned(),
            sampled: parts.get(3) == Some(&"01"),
            body,
        }
    }

    /// Every service's log, for failure messages.
    pub fn logs(&self) -> String {
        [
            &self.backend,
            &self.pki,
            &self.browser,
            &self.ai_stack,
            &self.npu,
            &self.site,
        ]
        .iter()
        .map(|s| format!("----- {} -----\n{}", s.name, s.log()))
        .collect()
    }
}

pub struct Answer {
    pub status: u16,
    pub trace_id: String,
    pub sampled: bool,
    pub body: Value,
}
