//! The lab as the checks and drills see it: the URLs `scripts/lab.sh env`
//! prints, the machines of `$AUTOBOT_LAB_DIR/machines.list`, commands run on
//! a machine over the lab's SSH, and the power switch (`lab.sh stop|start`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use autobot_trace::JaegerClient;
use tokio::process::Command;

/// Which units run on which machine (ansible/site.yml, plus the lab's outside
/// world from infra/lab/outside.yml), by the machine's short name.
pub const UNITS: &[(&str, &[&str])] = &[
    ("main", &["autobot-backend", "autobot-pki-distributor"]),
    ("frontend", &["autobot-demo-site"]),
    ("npu-worker", &["autobot-npu-worker"]),
    (
        "redis",
        &[
            "redis-server",
            "jaeger",
            "prometheus",
            "prometheus-alertmanager",
            "prometheus-redis-exporter",
        ],
    ),
    ("ai-stack", &["autobot-ai-stack", "autobot-llm-standin"]),
    ("browser", &["autobot-browser"]),
];

/// The machine each traced service runs on (its spans carry that `host.name`).
pub const SERVICE_MACHINES: &[(&str, &str)] = &[
    ("autobot-backend", "main"),
    ("autobot-pki-distributor", "main"),
    ("autobot-browser", "browser"),
    ("autobot-npu-worker", "npu-worker"),
    ("autobot-ai-stack", "ai-stack"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The inventory name, also its hostname: `autobot-main`.
    pub name: String,
    /// The name `$LAB_SSH` takes: `main`.
    pub short: String,
    pub ip: String,
}

/// Reads `machines.list`: one `name address` per line.
pub fn parse_machines(text: &str) -> anyhow::Result<Vec<Machine>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(name), Some(ip), None) => Ok(Machine {
                    short: name.strip_prefix("autobot-").unwrap_or(name).to_owned(),
                    name: name.to_owned(),
                    ip: ip.to_owned(),
                }),
                _ => bail!("machines.list: {line:?} is not `name address`"),
            }
        })
        .collect()
}

/// What a command on a machine printed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

pub struct Lab {
    /// AUTOBOT_URL: the backend.
    pub backend: String,
    /// AUTOBOT_QUERY_URL: the query API on the redis+jaeger machine.
    pub query: JaegerClient,
    /// LAB_PAGE_URL: the page research requests read.
    pub page_url: String,
    pub machines: Vec<Machine>,
    pub http: reqwest::Client,
    /// Whether the roles' mutual TLS is on (AUTOBOT_CA_CERT set by lab.sh env).
    pub tls: bool,
    api_key: Option<String>,
    ssh: Vec<String>,
    lab_sh: PathBuf,
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .map_err(|_| anyhow!("{name} is not set: run this through scripts/lab.sh (check, drill)"))
}

/// The client for the backend: with AUTOBOT_CA_CERT (an https backend,
/// the roles' mutual TLS), it trusts that CA only.
fn backend_client() -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(3));
    if let Some(ca) = std::env::var_os("AUTOBOT_CA_CERT").filter(|v| !v.is_empty()) {
        let pem = std::fs::read(&ca)
            .with_context(|| format!("AUTOBOT_CA_CERT={}: cannot read", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("AUTOBOT_CA_CERT={}: not PEM certificates", ca.display()))?;
        builder = builder.tls_certs_only(certs);
    }
    Ok(builder.build()?)
}

impl Lab {
    pub fn from_env() -> anyhow::Result<Self> {
        let dir = PathBuf::from(var("AUTOBOT_LAB_DIR")?);
        let list = dir.join("machines.list");
        let machines = parse_machines(
            &std::fs::read_to_string(&list)
                .with_context(|| format!("{}: the lab is down?", list.display()))?,
        )?;
        let ssh: Vec<String> = var("LAB_SSH")?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if ssh.is_empty() {
            bail!("LAB_SSH is empty");
        }
        Ok(Self {
            backend: var("AUTOBOT_URL")?.trim_end_matches('/').to_owned(),
            query: JaegerClient::new(&var("AUTOBOT_QUERY_URL")?)?,
            page_url: var("LAB_PAGE_URL")?,
            machines,
            http: backend_client()?,
            tls: std::env::var_os("AUTOBOT_CA_CERT").is_some_and(|v| !v.is_empty()),
            api_key: std::env::var("AUTOBOT_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            ssh,
            lab_sh: PathBuf::from(var("LAB_SH")?),
        })
    }

    /// The repository the lab runs from (scripts/lab.sh's parent).
    pub fn repo(&self) -> PathBuf {
        self.lab_sh
            .parent()
            .and_then(|scripts| scripts.parent())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    pub fn machine(&self, short: &str) -> anyhow::Result<&Machine> {
        self.machines
            .iter()
            .find(|m| m.short == short || m.name == short)
            .ok_or_else(|| anyhow!("no machine {short} in machines.list"))
    }

    /// A request to the backend, with the operator key when the lab has one.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}{path}", self.backend));
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Runs `command` (a shell line) on a machine as root.
    pub async fn run(&self, machine: &str, command: &str) -> anyhow::Result<Output> {
        let out = Command::new(&self.ssh[0])
            .args(&self.ssh[1..])
            .arg("-n")
            .arg(machine)
            .arg(command)
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("{}: cannot run", self.ssh[0]))?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs `command` on a machine; its stdout, or an error with what it said.
    pub async fn sh(&self, machine: &str, command: &str) -> anyhow::Result<String> {
        let out = self.run(machine, command).await?;
        if !out.ok() {
            bail!(
                "{machine}: `{command}` exited with {:?}: {}{}",
                out.code,
                out.stderr.trim(),
                out.stdout.trim()
            );
        }
        Ok(out.stdout)
    }

    /// `systemctl show` properties of a unit.
    pub async fn unit(&self, machine: &str, unit: &str, props: &[&str]) -> anyhow::Result<Unit> {
        let text = self
            .sh(
                machine,
                &format!("systemctl show {unit} -p {}", props.join(",")),
            )
            .await?;
        Ok(Unit::parse(&text))
    }

    /// Resident memory of a unit's main process, in KiB.
    pub async fn rss_kib(&self, machine: &str, unit: &str) -> anyhow::Result<u64> {
        let text = self
            .sh(
                machine,
                &format!("ps -o rss= -p \"$(systemctl show -p MainPID --value {unit})\""),
            )
            .await?;
        text.trim()
            .parse()
            .with_context(|| format!("{machine} {unit}: rss {text:?}"))
    }

    /// `scripts/lab.sh VERB ARGS…` (stop, start): the machines' power switch.
    pub async fn lab_sh(&self, args: &[&str]) -> anyhow::Result<()> {
        let status = Command::new("bash")
            .arg(&self.lab_sh)
            .args(args)
            .status()
            .await?;
        if !status.success() {
            bail!("lab.sh {} failed: {status}", args.join(" "));
        }
        Ok(())
    }

    /// Waits until `unit` is active on `machine`.
    pub async fn wait_active(
        &self,
        machine: &str,
        unit: &str,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(out) = self
                .run(machine, &format!("systemctl is-active {unit}"))
                .await
                && out.stdout.trim() == "active"
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{machine}: {unit} not active within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// `Key=Value` lines of `systemctl show`.
#[derive(Debug, Default)]
pub struct Unit(Vec<(String, String)>);

impl Unit {
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_list_is_read_with_short_names() {
        let m = parse_machines("autobot-main 172.16.168.20\nautobot-ai-stack 172.16.168.24\n\n")
            .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].short, "ai-stack");
        assert_eq!(m[1].name, "autobot-ai-stack");
        assert_eq!(m[1].ip, "172.16.168.24");
        assert!(parse_machines("autobot-main").is_err());
        assert!(parse_machines("a b c").is_err());
    }

    #[test]
    fn systemctl_show_is_read() {
        let u = Unit::parse("ActiveState=active\nUser=autobot\nMainPID=42\n");
        assert_eq!(u.get("User"), "autobot");
        assert_eq!(u.get("MainPID"), "42");
        assert_eq!(u.get("Missing"), "");
    }

    #[test]
    fn every_service_machine_has_units() {
        for (_, machine) in SERVICE_MACHINES {
            assert!(UNITS.iter().any(|(m, _)| m == machine), "{machine}");
        }
    }
}
