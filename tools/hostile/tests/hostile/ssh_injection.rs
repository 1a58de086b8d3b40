//! A caller's `tracestate` and `baggage` full of shell syntax (the fish
//! injection of issue 17, quotes, backslashes, `$()`, backticks, newlines,
//! values of 8 KiB), sent to the backend and straight to the
//! pki-distributor, with the target users' login shells set to sh, bash,
//! zsh, fish and tcsh on a real sshd that refuses env requests (the
//! context then travels in the staging directory's file): no command runs,
//! every distribution succeeds, and the trace reaches each `pki.install`.

use std::path::{Path, PathBuf};

use autobot_testkit::process::{Launch, Process};
use autobot_testkit::trace_tool::TraceTool;
use autobot_testkit::traces::Span;
use serde_json::Value;

use crate::vms::{Fleet, FleetOptions, SHELLS, chmod, install_agent};

/// One hostile request: its tracestate and baggage headers.
struct Attack {
    name: &'static str,
    tracestate: String,
    baggage: String,
    /// What must reach the VM, as data, in TRACESTATE.
    marker: String,
}

/// Every byte percent-encoded but letters and digits (W3C baggage values).
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn attacks(canary: &Path) -> Vec<Attack> {
    let c = canary.display();
    let fish = format!(r"\';touch {c}/fish;#");
    let tracestate = [
        format!("fish={fish}"),
        format!("sq=';touch {c}/sq;'"),
        format!("dq=\";touch {c}/dq;\""),
        format!("dollar=$(touch {c}/dollar)"),
        format!("tick=`touch {c}/tick`"),
        format!(r"bs=\\\';touch {c}/bs;#"),
        format!("csh=x;touch {c}/csh;echo"),
    ]
    .join(",");
    let baggage = [
        ("nl", format!("\ntouch {c}/nl\n")),
        ("sq", format!("';touch {c}/bsq;'")),
        ("tick", format!("`touch {c}/btick`")),
        ("dollar", format!("$(touch {c}/bdollar)")),
        ("bs", format!("\\';touch {c}/bbs;#")),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", encode(v)))
    .collect::<Vec<_>>()
    .join(",");
    // 8 KiB: the largest baggage W3C allows, and a 256-byte tracestate value.
    let unit = format!("';touch {c}/big;#\n`touch {c}/big`$(touch {c}/big)");
    let mut big = String::new();
    while encode(&(big.clone() + &unit)).len() + 4 <= 8000 {
        big.push_str(&unit);
    }
    let mut long_value = String::new();
    while long_value.len() + 20 < 250 {
        long_value.push_str(&format!(";touch {c}/long;"));
    }
    let long_value: String = long_value.chars().take(250).collect();
    let long_value = long_value.trim_end().replace([',', '='], ";");
    vec![
        Attack {
            name: "quotes, backslashes, $(), backticks, newlines",
            tracestate,
            baggage,
            marker: fish,
        },
        Attack {
            name: "8 KiB of baggage, a 250-byte tracestate value",
            tracestate: format!("long={long_value}"),
            baggage: format!("big={}", encode(&big)),
            marker: long_value,
        },
    ]
}

/// The program the command line runs: records the context file the agent
/// gets (as data: `cat`, never evaluated), then runs the agent.
fn recording_agent(root: &Path, agent: &Path, record: &Path) -> PathBuf {
    let wrapper = root.join("bin/recording-agent");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# $3 is the staging directory: install --staging DIR --dest CERT_DIR\n\
             cat \"$3/trace-context.json\" > \"{record}/$(id -un).ctx\" 2>/dev/null\n\
             exec {agent} \"$@\"\n",
            record = record.display(),
            agent = agent.display(),
        ),
    )
    .unwrap();
    chmod(&wrapper, 0o755);
    wrapper
}

fn trace_id_of(response: &reqwest::Response) -> String {
    autobot_testkit::traces::traceresponse_trace_id(response)
}

/// A sampled caller's traceparent with a trace id of its own.
fn new_traceparent() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!(
        "00-{:016x}{:016x}-{:016x}-01",
        random(),
        random(),
        random() | 1
    )
}

fn pki_installs(spans: &[Span]) -> Vec<&Span> {
    spans.iter().filter(|s| s.name == "pki.install").collect()
}

fn logs(processes: &[&Process]) -> String {
    processes
        .iter()
        .map(|p| format!("----- {} -----\n{}", p.name(), p.output()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_context_never_reaches_a_login_shell() {
    let root = tempfile::tempdir().unwrap();
    chmod(root.path(), 0o755);
    let canary = root.path().join("canary");
    let record = root.path().join("record");
    for dir in [&canary, &record] {
        std::fs::create_dir(dir).unwrap();
        chmod(dir, 0o1777);
    }
    // The issue's own payload names /tmp/pwned: it must not appear either.
    let pwned = Path::new("/tmp/pwned");
    let pwned_before = pwned.exists();

    let tool = TraceTool::start();
    let agent = install_agent(root.path());
    let wrapper = recording_agent(root.path(), &agent, &record);
    let fleet = Fleet::start(
        root.path(),
        FleetOptions {
            shells: &SHELLS,
            agent: &wrapper,
            set_env: vec![
                ("AUTOBOT_JAEGER_ENDPOINT".into(), tool.otlp_grpc_endpoint()),
                ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
            ],
            // Refused env requests: the context goes through the file.
            accept_env: vec![],
        },
    );
    let pki = fleet
        .distributor()
        .env("AUTOBOT_JAEGER_ENDPOINT", tool.otlp_grpc_endpoint())
        .start();
    let backend = Launch::workspace_bin("autobot-backend")
        .env("AUTOBOT_JAEGER_ENDPOINT", tool.otlp_grpc_endpoint())
        .env("AUTOBOT_PKI_URL", pki.url(""))
        // The most hostile case: a caller whose context the backend trusts.
        .env("AUTOBOT_TRUSTED_CONTEXT_FROM", "127.0.0.0/8")
        .env("AUTOBOT_AUTH", "off")
        .start();

    let mut attacks = attacks(&canary);
    attacks.push(Attack {
        name: "the issue's payload",
        tracestate: r"k=\';touch /tmp/pwned;#".to_owned(),
        baggage: String::new(),
        marker: r"\';touch /tmp/pwned;#".to_owned(),
    });
    let client = reqwest::Client::new();
    for attack in &attacks {
        for (entry, url) in [
            ("backend", backend.url("/api/pki/distribute")),
            ("pki-distributor", pki.url("/distribute")),
        ] {
            let what = format!("{} → {entry}", attack.name);
            let _ = std::fs::remove_dir_all(&record).and_then(|()| std::fs::create_dir(&record));
            chmod(&record, 0o1777);
            let mut request = client
                .post(&url)
                .header("traceparent", new_traceparent())
                .header("tracestate", &attack.tracestate)
                .header("content-type", "application/json")
                .body("{}");
            if !attack.baggage.is_empty() {
                request = request.header("baggage", &attack.baggage);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let trace_id = trace_id_of(&response);
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 200, "{what}: {body}\n{}", logs(&[&backend, &pki]));
            let results = body["results"].as_array().expect("results");
            assert_eq!(results.len(), SHELLS.len(), "{what}: {body}");
            for result in results {
                assert_eq!(result["ok"], true, "{what}: {result}\n{}", logs(&[&pki]));
            }
            // Nothing ran: not in the canary directory, not the issue's /tmp/pwned.
            let ran: Vec<String> = std::fs::read_dir(&canary)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert!(ran.is_empty(), "{what}: commands ran: {ran:?}");
            if !pwned_before {
                assert!(!pwned.exists(), "{what}: /tmp/pwned was created");
            }
            // The hostile value did reach every VM, as data.
            for vm in &fleet.vms {
                let path = record.join(format!("{}.ctx", vm.user.name));
                let ctx: Value = serde_json::from_str(
                    &std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display())),
                )
                .unwrap();
                let tracestate = ctx["TRACESTATE"].as_str().unwrap_or_default();
                assert!(
                    tracestate.contains(&attack.marker),
                    "{what}: {} got TRACESTATE {tracestate:?}",
                    vm.name
                );
                let traceparent = ctx["TRACEPARENT"].as_str().unwrap_or_default();
                assert!(traceparent.contains(&trace_id), "{what}: {ctx}");
            }
            // And the trace reaches every agent, under its target's span.
            let whole = |s: &[Span]| {
                let installs = pki_installs(s);
                installs.len() == SHELLS.len()
                    && installs
                        .iter()
                        .all(|i| s.iter().any(|p| Some(&p.span_id) == i.parent.as_ref()))
            };
            let spans = tool.wait_for_spans(&trace_id, whole).await;
            for install in pki_installs(&spans) {
                let parent = spans
                    .iter()
                    .find(|s| Some(&s.span_id) == install.parent.as_ref())
                    .unwrap_or_else(|| panic!("{what}: pki.install without its parent"));
                assert_eq!(parent.name, "ssh.distribute_certificates", "{what}");
                assert_eq!(install.service, "autobot-pki-agent");
            }
        }
    }
}
