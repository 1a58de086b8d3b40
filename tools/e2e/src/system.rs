//! The whole system on loopback: every service a real process exporting to
//! the trace tool (another process), real redis-server, a real sshd "VM"
//! running the PKI agent, the demo web site, and the stand-in LLM server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autobot_standins::llm::{Mode, StandIn};
use autobot_testkit::bins::workspace_bin;
use autobot_testkit::operator_keys::{OperatorKey, OperatorKeys};
use autobot_testkit::pki::{TestCa, TestIdentity};
use autobot_testkit::process::{Launch, Process};
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

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Polls `GET {path}` until the service answers a success: listening is
/// not enough (the npu-worker answers 503 until its model is loaded).
async fn wait_healthy(client: &reqwest::Client, service: &mut Process, path: &str) {
    let url = service.url(path);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !service.is_running() {
            panic!(
                "{} exited before it was healthy:\n{}",
                service.name(),
                service.output()
            );
        }
        let last = match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => format!("answered {}", r.status()),
            Err(e) => error_chain(&e),
        };
        assert!(
            Instant::now() < deadline,
            "{} not healthy at {url} within 60 s (last: {last}):\n{}",
            service.name(),
            service.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An error and its sources, one after the other.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The origins whose pages may send browser spans to the trace tool: the
/// backend's, on whatever port it binds.
pub const PAGE_ORIGINS: &str = "http://127.0.0.1:*";

pub struct Options {
    pub sample_rate: f64,
    /// As deployed with certificates (docs/security.md): every service
    /// serves TLS with a certificate of its own from one CA (SAN
    /// 127.0.0.1) and takes only clients from that CA (the backend also
    /// callers without one); the backend calls its peers over https.
    pub mutual_tls: bool,
    /// With [`Options::mutual_tls`]: Redis serves TLS too and takes only
    /// clients with a certificate of the CA; the services use `rediss://`
    /// with their own certificate (docs/security.md, "Redis").
    pub redis_tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sample_rate: 1.0,
            mutual_tls: false,
            redis_tls: false,
        }
    }
}

/// The CA of a system started with [`Options::mutual_tls`], and the
/// certificate the tests call with.
pub struct SystemPki {
    pub ca: TestCa,
    /// A certificate of the CA for the test itself (a caller like the backend).
    pub client: TestIdentity,
}

/// Everything running; dropped in reverse order.
pub struct System {
    pub backend: Process,
    pub pki: Process,
    pub browser: Process,
    pub ai_stack: Process,
    pub npu: Process,
    pub site: Process,
    pub llm: StandIn,
    _sshd: Sshd,
    pub redis: RedisServer,
    pub tool: TraceTool,
    pub vm_certs: PathBuf,
    /// The operator's admin key: [`System::post`] sends it (as deployed,
    /// the backend's API takes only callers with a key).
    pub operator: OperatorKey,
    /// With [`Options::mutual_tls`]: the CA and the test's certificate.
    pub pki_files: Option<SystemPki>,
    /// What the test calls the services with: with mutual TLS, trusting
    /// the CA and presenting [`SystemPki::client`].
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl System {
    pub async fn start(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // As deployed: the OTLP/HTTP receiver allows the browser spans of
        // AutoBot's page (the backend's origin; its port is chosen later).
        let tool = TraceTool::start_with_args(&["--cors-origin", PAGE_ORIGINS])
            .expect("the trace tool starts (cargo build --workspace --bins)");
        let pki_files = options.mutual_tls.then(|| {
            let ca = TestCa::new("autobot-e2e");
            let client = ca.issue("e2e-test-client", &["127.0.0.1"]);
            SystemPki { ca, client }
        });
        let redis = match (&pki_files, options.redis_tls) {
            (Some(pki), true) => {
                RedisServer::start_with_tls(&pki.ca.issue("redis", &["127.0.0.1"]))
            }
            (None, true) => panic!("Options::redis_tls needs Options::mutual_tls (the CA)"),
            (_, false) => RedisServer::start(),
        }
        .expect("redis-server starts (scripts/setup.sh installs it)");
        let redis_url = redis.tls_url().unwrap_or_else(|| redis.url());
        let http = match &pki_files {
            Some(pki) => pki.client.client(),
            None => reqwest::Client::new(),
        };
        // Each service: testkit's launcher (clean environment, port 0, the
        // readiness line) with what every service of the system shares.
        let plain = |name: &str| {
            Launch::workspace_bin(name)
                .env("AUTOBOT_JAEGER_ENDPOINT", tool.otlp_grpc_endpoint())
                .env("AUTOBOT_TRACE_SAMPLE_RATE", options.sample_rate.to_string())
                .env("AUTOBOT_ENV", "e2e")
        };
        // ... and, with mutual TLS, its own certificate.
        let service = |name: &str| match &pki_files {
            Some(pki) => plain(name).envs(pki.ca.issue(name, &["127.0.0.1"]).service_env()),
            None => plain(name),
        };

        // The outside world: the LLM (a stand-in, in this process) and a web site.
        let llm = StandIn::start(Mode::Normal).await;
        // The web site is the outside world: plain HTTP, no certificate.
        let mut site = plain("autobot-demo-site").start();

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
        let mut npu = service("autobot-npu-worker")
            .env("AUTOBOT_REDIS_URL", &redis_url)
            .env("AUTOBOT_NPU_MODEL_DIR", &model_dir)
            .start();
        let mut ai_stack = service("autobot-ai-stack")
            .env("AUTOBOT_OLLAMA_URL", llm.ollama_url())
            .env("AUTOBOT_LLM_PROVIDER", "ollama")
            .env("AUTOBOT_LLM_MODEL", "standin")
            .start();
        // The demo site is on loopback, which the browser refuses unless told.
        let mut browser = service("autobot-browser")
            .env("AUTOBOT_BROWSER_ALLOW", site.addr().ip().to_string())
            .start();
        let mut pki = service("autobot-pki-distributor")
            .env("AUTOBOT_PKI_DIR", dir.path().join("ca"))
            .env("AUTOBOT_PKI_TARGETS", &targets)
            .env("AUTOBOT_SSH_KEY", &keys.private)
            .env("AUTOBOT_SSH_KNOWN_HOSTS", &known_hosts)
            .start();
        let keys = OperatorKeys::generate(dir.path(), &[("e2e-operator", "admin")]);
        let operator = keys.key("e2e-operator").clone();
        let mut backend = service("autobot-backend")
            .env("AUTOBOT_API_KEYS_FILE", &keys.file)
            .env("AUTOBOT_REDIS_URL", &redis_url)
            .env("AUTOBOT_AI_STACK_URL", ai_stack.url(""))
            .env("AUTOBOT_BROWSER_URL", browser.url(""))
            .env("AUTOBOT_PKI_URL", pki.url(""))
            .env("AUTOBOT_NPU_URL", npu.url(""))
            .env("AUTOBOT_WEB_OTLP_URL", tool.otlp_http_endpoint())
            .start();
        wait_healthy(&http, &mut site, "/health").await;
        wait_healthy(&http, &mut npu, "/health").await;
        wait_healthy(&http, &mut ai_stack, "/health").await;
        wait_healthy(&http, &mut browser, "/health").await;
        wait_healthy(&http, &mut pki, "/health").await;
        wait_healthy(&http, &mut backend, "/api/health").await;
        Self {
            backend,
            pki,
            browser,
            ai_stack,
            npu,
            site,
            llm,
            _sshd: sshd,
            redis,
            tool,
            vm_certs,
            operator,
            pki_files,
            http,
            _dir: dir,
        }
    }

    pub fn article_url(&self) -> String {
        self.site.url("/articles/tracing")
    }

    /// POSTs JSON to the backend; returns status, the trace id from
    /// `traceresponse`, whether it was sampled, and the body.
    pub async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.http.post(self.backend.url(path)).json(&body);
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            request = request.header("authorization", self.operator.bearer());
        }
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
        .map(|s| format!("----- {} -----\n{}", s.name(), s.output()))
        .collect()
    }
}

pub struct Answer {
    pub status: u16,
    pub trace_id: String,
    pub sampled: bool,
    pub body: Value,
}
