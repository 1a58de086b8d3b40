//! `scripts/lab.sh check`: the deployed lab does what the issue asks of it.
//! Every unit active as an unprivileged user, each unit's exposure score,
//! no route off the bridge, one whole research trace across four machines
//! (each span carrying its machine's host.name), and a certificate
//! distribution that reaches `pki.install` on every machine.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::lab::{Lab, SERVICE_MACHINES, UNITS};
use crate::traces::{host_problems, is_error, render, spans_named, wait_whole};

/// The services a research request crosses.
pub const RESEARCH_SERVICES: [&str; 4] = [
    "autobot-backend",
    "autobot-browser",
    "autobot-npu-worker",
    "autobot-ai-stack",
];

/// The services a certificate distribution crosses.
pub const DISTRIBUTION_SERVICES: [&str; 3] = [
    "autobot-backend",
    "autobot-pki-distributor",
    "autobot-pki-agent",
];

/// Collects what failed, so that one failed check does not hide the others.
#[derive(Default)]
pub struct Verdict {
    failures: Vec<String>,
}

impl Verdict {
    pub fn pass(&mut self, what: impl std::fmt::Display) {
        println!("    OK   {what}");
    }
    pub fn fail(&mut self, what: impl std::fmt::Display) {
        println!("    FAIL {what}");
        self.failures.push(what.to_string());
    }
    pub fn expect(&mut self, ok: bool, what: impl std::fmt::Display) {
        if ok { self.pass(what) } else { self.fail(what) }
    }
    pub fn finish(self, name: &str) -> anyhow::Result<()> {
        if self.failures.is_empty() {
            return Ok(());
        }
        bail!(
            "{name}: {} check(s) failed:\n  - {}",
            self.failures.len(),
            self.failures.join("\n  - ")
        )
    }
}

pub async fn run(lab: &Lab) -> anyhow::Result<()> {
    let mut v = Verdict::default();
    let started = Instant::now();
    println!("==> every unit active, as an unprivileged user");
    units(lab, &mut v).await?;
    println!("==> systemd-analyze security: each unit's exposure (0 best, 10 worst)");
    exposure(lab).await?;
    println!("==> no machine has a route off the lab's bridge");
    isolation(lab, &mut v).await?;
    println!(
        "==> least privilege: root's binaries, env files per service, VM-address listeners, the firewall"
    );
    privilege(lab, &mut v).await?;
    if lab.tls {
        println!(
            "==> mutual TLS: the VM's certificate, its key for the services' group, clients of the CA only"
        );
        mutual_tls(lab, &mut v).await?;
    }
    let prometheus = crate::metrics::Prometheus::new(lab)?;
    let before = prometheus.work_counts().await?;
    println!("==> a research request: one whole trace across four machines");
    research(lab, &mut v).await?;
    println!("==> a certificate distribution reaches pki.install on every machine");
    distribution(lab, &mut v).await?;
    println!("==> Prometheus and Alertmanager on the redis machine");
    crate::metrics::check(lab, &prometheus, &before, &mut v).await?;
    println!("    checks took {:.1} s", started.elapsed().as_secs_f64());
    v.finish("check")
}

async fn units(lab: &Lab, v: &mut Verdict) -> anyhow::Result<()> {
    for (machine, units) in UNITS {
        for unit in *units {
            let u = lab
                .unit(
                    machine,
                    unit,
                    &["ActiveState", "SubState", "MainPID", "NRestarts"],
                )
                .await?;
            let pid = u.get("MainPID");
            let user = lab
                .run(machine, &format!("ps -o user= -p {pid}"))
                .await?
                .stdout
                .trim()
                .to_owned();
            let active = u.get("ActiveState") == "active";
            let unprivileged = !user.is_empty() && user != "root";
            v.expect(
                active && unprivileged,
                format!(
                    "{machine:<10} {unit:<24} {}/{} as {} (pid {pid}, {} restarts)",
                    u.get("ActiveState"),
                    u.get("SubState"),
                    if user.is_empty() { "?" } else { &user },
                    u.get("NRestarts"),
                ),
            );
        }
    }
    Ok(())
}

/// The overall exposure line of `systemd-analyze security UNIT`, e.g.
/// `→ Overall exposure level for x.service: 2.1 OK :-)` → ("2.1", "OK").
pub fn exposure_of(output: &str) -> Option<(String, String)> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains("Overall exposure level"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    let mut words = rest.split_whitespace();
    Some((words.next()?.to_owned(), words.next()?.to_owned()))
}

async fn exposure(lab: &Lab) -> anyhow::Result<()> {
    for (machine, units) in UNITS {
        for unit in *units {
            let out = lab
                .run(
                    machine,
                    &format!("systemd-analyze security --no-pager {unit}.service"),
                )
                .await?;
            match exposure_of(&out.stdout) {
                Some((score, word)) => {
                    println!("    {machine:<10} {unit:<24} {score:>4} {word}")
                }
                None => println!(
                    "    {machine:<10} {unit:<24} (no score: {})",
                    out.stderr.trim()
                ),
            }
        }
    }
    Ok(())
}

/// The ports of AutoBot's services and of what the roles run beside them.
const SERVICE_PORTS: [u16; 12] = [
    8001, 8002, 8080, 8081, 3000, 6379, 4317, 4318, 16686, 9090, 9093, 9121,
];

/// Problems in `stat -c '%U:%G %a %n'` lines: what is in /usr/local/bin must
/// be root:root 0755 (nothing a service user could replace), the env file
/// `/etc/autobot/NAME.env` of each of `services` root:NAME 0640 (its
/// service reads it, nobody else).
pub fn file_problems(stat: &str, services: &[&str]) -> Vec<String> {
    stat.lines()
        .filter_map(|line| {
            let mut words = line.splitn(3, ' ');
            let (owner, mode, path) = (words.next()?, words.next()?, words.next()?);
            let want = if path == "/usr/local/bin" || path.starts_with("/usr/local/bin/") {
                "root:root 755".to_owned()
            } else if let Some(name) = path
                .strip_prefix("/etc/autobot/")
                .and_then(|f| f.strip_suffix(".env"))
                .filter(|name| services.contains(name))
            {
                format!("root:{name} 640")
            } else {
                return None;
            };
            let got = format!("{owner} {mode}");
            (got != want).then(|| format!("{path} is {got}, not {want}"))
        })
        .collect()
}

/// Listeners (`ss -Htln` lines) on every address for one of `ports`.
pub fn wildcard_listeners(ss: &str, ports: &[u16]) -> Vec<String> {
    ss.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter(|local| {
            let (addr, port) = local.rsplit_once(':').unwrap_or((local, ""));
            matches!(addr, "0.0.0.0" | "*" | "[::]")
                && port.parse().is_ok_and(|p: u16| ports.contains(&p))
        })
        .map(str::to_owned)
        .collect()
}

/// An HTTPS GET from the main machine, trusting only the deployment's CA,
/// with or without main's certificate: the status, or `refused <why>`.
const TLS_PROBE: &str = r#"
import http.client, ssl, sys
host, port, path, with_cert = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "cert"
ctx = ssl.create_default_context(cafile="/etc/autobot/certs/ca-cert.pem")
if with_cert:
    ctx.load_cert_chain("/etc/autobot/certs/server-cert.pem", "/etc/autobot/certs/server-key.pem")
try:
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=5)
    c.request("GET", path)
    print(c.getresponse().status)
except Exception as e:
    print("refused", type(e).__name__)
"#;

async fn tls_probe(lab: &Lab, addr: &str, path: &str, with_cert: bool) -> anyhow::Result<String> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "443"));
    let out = lab
        .sh(
            "main",
            &format!(
                "python3 -c '{TLS_PROBE}' {host} {port} {path} {}",
                if with_cert { "cert" } else { "none" }
            ),
        )
        .await?;
    Ok(out.trim().to_owned())
}

/// The roles' mutual TLS (docs/security.md): every VM's key is readable by
/// its services' group only; the internal services and Jaeger's OTLP/gRPC
/// take only clients with a certificate of the CA; the backend's public API
/// also takes callers without one (they bring operator keys).
async fn mutual_tls(lab: &Lab, v: &mut Verdict) -> anyhow::Result<()> {
    for m in &lab.machines {
        let key = lab
            .sh(
                &m.short,
                "stat -L -c '%U:%G %a' /etc/autobot/certs/server-key.pem 2>&1; true",
            )
            .await?;
        v.expect(
            key.trim() == "autobot-pki-agent:autobot-tls 640",
            format!(
                "{:<10} server-key.pem is autobot-pki-agent:autobot-tls 0640: {}",
                m.short,
                key.trim()
            ),
        );
    }
    let ip = |short: &str| lab.machine(short).map(|m| m.ip.clone());
    let internal = [
        (
            "autobot-ai-stack",
            format!("{}:8080", ip("ai-stack")?),
            "/health",
        ),
        (
            "autobot-browser",
            format!("{}:3000", ip("browser")?),
            "/health",
        ),
        (
            "autobot-npu-worker",
            format!("{}:8081", ip("npu-worker")?),
            "/health",
        ),
        (
            "autobot-pki-distributor",
            format!("{}:8002", ip("main")?),
            "/health",
        ),
    ];
    for (service, addr, path) in &internal {
        let with = tls_probe(lab, addr, path, true).await?;
        let without = tls_probe(lab, addr, path, false).await?;
        v.expect(
            with == "200" && without.starts_with("refused"),
            format!("{service:<24} https://{addr}{path}: with main's certificate {with}, without one {without}"),
        );
    }
    let backend = format!("{}:8001", ip("main")?);
    let without = tls_probe(lab, &backend, "/api/health", false).await?;
    v.expect(
        without == "200",
        format!("autobot-backend          https://{backend}/api/health without a client certificate: {without}"),
    );
    let otlp = format!("{}:4317", ip("redis")?);
    let without = tls_probe(lab, &otlp, "/", false).await?;
    v.expect(
        without.starts_with("refused"),
        format!("jaeger OTLP/gRPC         https://{otlp} without a client certificate: {without}"),
    );
    Ok(())
}

async fn privilege(lab: &Lab, v: &mut Verdict) -> anyhow::Result<()> {
    for m in &lab.machines {
        let stat = lab
            .sh(
                &m.short,
                "stat -c '%U:%G %a %n' /usr/local/bin /usr/local/bin/* /etc/autobot/*.env 2>/dev/null; true",
            )
            .await?;
        let services: Vec<&str> = SERVICE_MACHINES.iter().map(|(s, _)| *s).collect();
        let problems = file_problems(&stat, &services);
        v.expect(
            problems.is_empty(),
            format!(
                "{:<10} /usr/local/bin root:root 0755, env files root:<service> 0640 ({} files){}",
                m.short,
                stat.lines().count(),
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(": {}", problems.join("; "))
                }
            ),
        );
        let ss = lab.sh(&m.short, "ss -Htln").await?;
        let wild = wildcard_listeners(&ss, &SERVICE_PORTS);
        v.expect(
            wild.is_empty(),
            format!(
                "{:<10} services listen on the VM's address, none on all addresses{}",
                m.short,
                if wild.is_empty() {
                    String::new()
                } else {
                    format!(": {wild:?}")
                }
            ),
        );
    }
    let mut users = Vec::new();
    for (service, machine) in SERVICE_MACHINES {
        let u = lab.unit(machine, service, &["User"]).await?;
        users.push(u.get("User").to_owned());
    }
    let mut distinct = users.clone();
    distinct.sort();
    distinct.dedup();
    v.expect(
        distinct.len() == users.len(),
        format!("one user per service: {users:?}"),
    );
    let redis = lab.machine("redis")?.ip.clone();
    let probe = |from: &'static str| {
        let redis = redis.clone();
        async move {
            lab.run(from, &format!("timeout 3 bash -c '</dev/tcp/{redis}/6379'"))
                .await
                .map(|o| o.ok())
        }
    };
    let (worker, ai) = (probe("npu-worker").await?, probe("ai-stack").await?);
    v.expect(
        worker && !ai,
        format!(
            "firewall: Redis {redis}:6379 reached from npu-worker ({}), not from ai-stack ({})",
            if worker { "yes" } else { "NO" },
            if ai { "REACHED" } else { "dropped" }
        ),
    );
    let agent = lab
        .run(
            "main",
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -i /etc/autobot/ssh/id_ed25519 autobot-pki-agent@127.0.0.1 id 2>&1",
        )
        .await?;
    v.expect(
        !agent.ok() && !agent.stdout.contains("uid="),
        format!(
            "the distributor's key runs nothing but the agent: `ssh … id` → {:?}, {}",
            agent.code,
            agent.stdout.lines().last().unwrap_or("").trim()
        ),
    );
    Ok(())
}

async fn isolation(lab: &Lab, v: &mut Verdict) -> anyhow::Result<()> {
    for m in &lab.machines {
        let routes = lab
            .sh(&m.short, "ip -4 route show; ip -6 route show")
            .await?;
        let off_bridge: Vec<&str> = routes
            .lines()
            .filter(|l| {
                l.starts_with("default")
                    || !(l.starts_with("172.16.168.0/24") || l.starts_with("fe80::/64"))
            })
            .filter(|l| !l.trim().is_empty() && !l.starts_with("multicast"))
            .collect();
        v.expect(
            off_bridge.is_empty(),
            format!(
                "{:<10} routes only 172.16.168.0/24 on host0{}",
                m.short,
                if off_bridge.is_empty() {
                    String::new()
                } else {
                    format!(": also {off_bridge:?}")
                }
            ),
        );
    }
    Ok(())
}

/// `traceresponse` → trace id.
pub fn trace_id_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('-').nth(1))
        .map(str::to_owned)
}

async fn research(lab: &Lab, v: &mut Verdict) -> anyhow::Result<()> {
    let started = Instant::now();
    let response = lab
        .post("/api/research")
        .timeout(Duration::from_secs(180))
        .json(&json!({
            "url": lab.page_url,
            "question": "Which HTTP header carries the trace context?",
            "top_k": 3,
        }))
        .send()
        .await?;
    let status = response.status().as_u16();
    let trace_id = trace_id_of(&response);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let answered = started.elapsed();
    v.expect(
        status == 200,
        format!(
            "POST /api/research {} → {status} in {} ms: {}",
            lab.page_url,
            answered.as_millis(),
            body["answer"].as_str().unwrap_or(&body.to_string())
        ),
    );
    let Some(id) = trace_id else {
        v.fail("the research answer has no traceresponse");
        return Ok(());
    };
    let hosts: Vec<(String, String)> = SERVICE_MACHINES
        .iter()
        .filter(|(s, _)| RESEARCH_SERVICES.contains(s))
        .map(|(s, m)| Ok(((*s).to_owned(), lab.machine(m)?.name.clone())))
        .collect::<anyhow::Result<_>>()?;
    match wait_whole(
        &lab.query,
        &id,
        None,
        &RESEARCH_SERVICES,
        Duration::from_secs(30),
        |trace| {
            hosts
                .iter()
                .flat_map(|(service, host)| host_problems(trace, service, host))
                .collect()
        },
    )
    .await
    {
        Ok(trace) => {
            print!("{}", indent(&render(&trace)));
            v.pass(format!(
                "trace {id} is whole: {} spans from {}, each service's spans carry its machine's host.name ({})",
                trace.spans.len(),
                RESEARCH_SERVICES.join(", "),
                hosts
                    .iter()
                    .map(|(s, h)| format!("{s}@{h}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Err(problems) => v.fail(format!(
            "research trace {id} is not whole: {}",
            problems.join("; ")
        )),
    }
    Ok(())
}

/// Runs a distribution to every target; its answer and trace id.
pub async fn distribute(lab: &Lab, traceparent: Option<&str>) -> anyhow::Result<(u16, Value)> {
    let mut request = lab
        .post("/api/pki/distribute")
        .timeout(Duration::from_secs(180))
        .json(&json!({}));
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// One line per target of a distribution's answer.
pub fn results_of(answer: &Value) -> Vec<(String, bool, String)> {
    answer["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["target"].as_str().unwrap_or_default().to_owned(),
                r["ok"].as_bool().unwrap_or(false),
                r["error_type"]
                    .as_str()
                    .or(r["certificate"]["fingerprint_sha256"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

async fn distribution(lab: &Lab, v: &mut Verdict) -> anyhow::Result<()> {
    let started = Instant::now();
    let (status, answer) = distribute(lab, None).await?;
    let results = results_of(&answer);
    let all_ok =
        status == 200 && results.len() == lab.machines.len() && results.iter().all(|r| r.1);
    v.expect(
        all_ok,
        format!(
            "POST /api/pki/distribute → {status} in {} ms, {} of {} targets ok",
            started.elapsed().as_millis(),
            results.iter().filter(|r| r.1).count(),
            lab.machines.len()
        ),
    );
    for (target, ok, detail) in &results {
        println!(
            "         {target:<20} {} {detail}",
            if *ok { "ok" } else { "FAILED" }
        );
    }
    let Some(id) = answer["trace_id"].as_str() else {
        v.fail(format!("the distribution answer has no trace_id: {answer}"));
        return Ok(());
    };
    let hosts: Vec<String> = lab.machines.iter().map(|m| m.name.clone()).collect();
    match wait_whole(
        &lab.query,
        id,
        None,
        &DISTRIBUTION_SERVICES,
        Duration::from_secs(30),
        |trace| installs_missing(trace, &hosts),
    )
    .await
    {
        Ok(trace) => v.pass(format!(
            "trace {id} is whole: {} spans, a successful pki.install on each of {}",
            trace.spans.len(),
            hosts.join(", ")
        )),
        Err(problems) => v.fail(format!("distribution trace {id}: {}", problems.join("; "))),
    }
    Ok(())
}

/// The hosts without a successful `pki.install` span in the trace.
pub fn installs_missing(trace: &autobot_trace::Trace, hosts: &[String]) -> Vec<String> {
    let installs = spans_named(trace, "pki.install");
    hosts
        .iter()
        .filter(|h| {
            !installs
                .iter()
                .any(|s| crate::traces::host_of(trace, s) == Some(h.as_str()) && !is_error(s))
        })
        .map(|h| format!("no successful pki.install with host.name {h}"))
        .collect()
}

pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("         {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposure_line_is_read() {
        let out = "  NAME  DESCRIPTION  EXPOSURE\n✗ PrivateNetwork= ...\n\n→ Overall exposure level for autobot-backend.service: 2.1 OK :-)\n";
        assert_eq!(exposure_of(out), Some(("2.1".to_owned(), "OK".to_owned())));
        assert_eq!(
            exposure_of("→ Overall exposure level for ssh.service: 9.6 UNSAFE :-{"),
            Some(("9.6".to_owned(), "UNSAFE".to_owned()))
        );
        assert_eq!(exposure_of("Unit x.service not found."), None);
    }

    #[test]
    fn file_modes_are_judged() {
        let stat = "root:root 755 /usr/local/bin\nautobot:autobot 755 /usr/local/bin/x\nroot:autobot-backend 640 /etc/autobot/autobot-backend.env\nroot:autobot 640 /etc/autobot/autobot-browser.env\nroot:root 644 /etc/autobot/lab-site.env\nroot:root 644 /etc/other\n";
        assert_eq!(
            file_problems(stat, &["autobot-backend", "autobot-browser"]),
            vec![
                "/usr/local/bin/x is autobot:autobot 755, not root:root 755".to_owned(),
                "/etc/autobot/autobot-browser.env is root:autobot 640, not root:autobot-browser 640"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn wildcard_listeners_are_found() {
        let ss = "LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\nLISTEN 0 128 172.16.168.20:8001 0.0.0.0:*\nLISTEN 0 128 0.0.0.0:8002 0.0.0.0:*\nLISTEN 0 128 [::]:6379 [::]:*\n";
        assert_eq!(
            wildcard_listeners(ss, &SERVICE_PORTS),
            vec!["0.0.0.0:8002".to_owned(), "[::]:6379".to_owned()]
        );
    }

    #[test]
    fn distribution_results_are_read() {
        let answer = json!({"results": [
            {"target": "autobot-main", "ok": true, "files_copied": 3,
             "certificate": {"fingerprint_sha256": "AB:CD", "not_after": "x"}},
            {"target": "autobot-browser", "ok": false, "files_copied": 0,
             "error": "timed out", "error_type": "timeout"}
        ], "trace_id": "t"});
        assert_eq!(
            results_of(&answer),
            vec![
                ("autobot-main".to_owned(), true, "AB:CD".to_owned()),
                ("autobot-browser".to_owned(), false, "timeout".to_owned())
            ]
        );
        assert!(results_of(&json!({})).is_empty());
    }
}
