//! A certificate install killed (SIGKILL) at each of its steps, one whose
//! key rename fails and one whose rollback fails, over real SSH: afterwards
//! the certificate directory always shows ONE set (the certificate chains
//! to the CA, the key is the certificate's), and no staging directory (with
//! its private key) is left on the VM.
//!
//! The agent stops where `AUTOBOT_PKI_AGENT_TEST_HOOK` in the target user's
//! `~/.env` says (docs/pki.md); the distributor never sends it.

use std::path::Path;

use serde_json::Value;

use crate::vms::{Fleet, FleetOptions, chmod, chown, install_agent, staging_left, whole_set};

/// Steps of every install, in order (the swap happens at `swap`).
const INSTALL_STEPS: [&str; 8] = [
    "lock",
    "write:ca-cert.pem",
    "write:server-cert.pem",
    "write:server-key.pem",
    "release",
    "swap",
    "sync",
    "prune",
];
/// Steps of the first install over a directory of plain files.
const MIGRATION_STEPS: [&str; 4] = [
    "snapshot",
    "link:ca-cert.pem",
    "link:server-cert.pem",
    "link:server-key.pem",
];

struct Run {
    ok: bool,
    error: String,
    error_type: String,
    logs: String,
}

fn distribute(fleet: &Fleet) -> Run {
    let finished = fleet
        .distributor()
        .env("OTEL_SDK_DISABLED", "true")
        .arg("distribute")
        .run();
    let logs = format!("stdout: {}\nstderr: {}", finished.stdout, finished.stderr);
    let response: Value = serde_json::from_str(finished.stdout.trim())
        .unwrap_or_else(|e| panic!("the distributor printed no JSON ({e}): {logs}"));
    let result = &response["results"][0];
    Run {
        ok: result["ok"] == true,
        error: result["error"].as_str().unwrap_or_default().to_owned(),
        error_type: result["error_type"].as_str().unwrap_or_default().to_owned(),
        logs,
    }
}

/// Writes the hook into the target user's `~/.env` (empty: none).
fn set_hook(home: &Path, hook: &str) {
    let line = if hook.is_empty() {
        String::new()
    } else {
        format!("AUTOBOT_PKI_AGENT_TEST_HOOK={hook}\n")
    };
    std::fs::write(home.join(".env"), line).unwrap();
}

/// Turns the directory back into what an older agent left: the set it
/// shows now, as three plain files.
fn make_plain(dir: &Path, user: &str) {
    let names = ["ca-cert.pem", "server-cert.pem", "server-key.pem"];
    let texts: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(n)).unwrap())
        .collect();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    for (name, text) in names.iter().zip(&texts) {
        std::fs::write(dir.join(name), text).unwrap();
        chmod(
            &dir.join(name),
            if *name == "server-key.pem" {
                0o600
            } else {
                0o644
            },
        );
    }
    chown(dir, user);
}

fn shown(dir: &Path, context: &str) -> String {
    whole_set(dir)
        .unwrap_or_else(|e| panic!("{context}: {e}"))
        .unwrap_or_else(|| panic!("{context}: no certificate set at all"))
}

#[test]
fn an_install_killed_or_failing_at_any_step_leaves_one_whole_set_and_no_staged_key() {
    let root = tempfile::tempdir().unwrap();
    chmod(root.path(), 0o755);
    let agent = install_agent(root.path());
    let fleet = Fleet::start(
        root.path(),
        FleetOptions {
            shells: &["bash"],
            agent: &agent,
            set_env: vec![("OTEL_SDK_DISABLED".into(), "true".into())],
            accept_env: vec![],
        },
    );
    let vm = fleet.vm("bash");
    let home = &vm.user.home;

    set_hook(home, "");
    let first = distribute(&fleet);
    assert!(first.ok, "{}", first.logs);
    let mut before = shown(&vm.cert_dir, "after the first install");

    for step in INSTALL_STEPS {
        set_hook(home, &format!("kill:{step}"));
        let run = distribute(&fleet);
        assert!(!run.ok, "kill:{step}: the agent was killed: {}", run.logs);
        assert!(
            run.error.contains("signal"),
            "kill:{step}: {} ({})",
            run.error,
            run.logs
        );
        let after = shown(&vm.cert_dir, &format!("killed at {step}"));
        // Up to the swap nothing a reader sees changes; from the swap on, the new set shows.
        let swapped = matches!(step, "sync" | "prune");
        assert_eq!(after != before, swapped, "killed at {step}");
        assert_eq!(
            staging_left(&vm.staging),
            Vec::<String>::new(),
            "killed at {step}: the staged key stays on the VM"
        );
        before = after;
    }

    for step in MIGRATION_STEPS {
        make_plain(&vm.cert_dir, &vm.user.name);
        set_hook(home, &format!("kill:{step}"));
        let run = distribute(&fleet);
        assert!(!run.ok, "kill:{step}: {}", run.logs);
        let after = shown(
            &vm.cert_dir,
            &format!("killed at {step} (plain files before)"),
        );
        assert_eq!(after, before, "killed at {step}: the older set still shows");
        assert!(staging_left(&vm.staging).is_empty(), "killed at {step}");
    }

    // The key's rename (plain file → its symlink) fails: reported, nothing changes.
    make_plain(&vm.cert_dir, &vm.user.name);
    set_hook(home, "fail:link:server-key.pem");
    let run = distribute(&fleet);
    assert!(!run.ok, "{}", run.logs);
    assert_eq!(run.error_type, "agent_failed", "{}", run.logs);
    assert!(
        run.error.contains("failing at link:server-key.pem"),
        "{}",
        run.error
    );
    assert_eq!(shown(&vm.cert_dir, "the key rename failed"), before);
    assert!(staging_left(&vm.staging).is_empty());

    // The swap cannot be made durable and putting it back fails too: both said, both sets kept.
    set_hook(home, "fail:sync,fail:rollback");
    let run = distribute(&fleet);
    assert!(!run.ok, "{}", run.logs);
    assert!(
        run.error.contains("failing at sync") && run.error.contains("failing at rollback"),
        "{}",
        run.error
    );
    shown(&vm.cert_dir, "the rollback failed");
    assert!(staging_left(&vm.staging).is_empty());

    // And the next install is whole and complete.
    set_hook(home, "");
    let last = distribute(&fleet);
    assert!(last.ok, "{}", last.logs);
    let now = shown(&vm.cert_dir, "the last install");
    assert_ne!(now, before);
    let mut entries: Vec<String> = std::fs::read_dir(&vm.cert_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            ".install.lock",
            "ca-cert.pem",
            "current",
            "releases",
            "server-cert.pem",
            "server-key.pem"
        ]
    );
    let releases = std::fs::read_dir(vm.cert_dir.join("releases"))
        .unwrap()
        .count();
    assert!(releases <= 3, "old releases are pruned: {releases}");
}

/// A run cancelled mid-way (here by the distributor's request timeout,
/// while the agent has not started yet) removes its staging directory over
/// SSH; a staging directory left by a run that died is removed by the next
/// connection once it is stale, and a fresh one (another run's) is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_and_a_dead_run_leave_no_staged_key() {
    let root = tempfile::tempdir().unwrap();
    chmod(root.path(), 0o755);
    let agent = install_agent(root.path());
    // Holds the agent back while the flag file exists.
    let hold = root.path().join("hold");
    let wrapper = root.path().join("bin/held-agent");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nwhile [ -e {hold} ]; do sleep 0.1; done\nexec {agent} \"$@\"\n",
            hold = hold.display(),
            agent = agent.display()
        ),
    )
    .unwrap();
    chmod(&wrapper, 0o755);
    let fleet = Fleet::start(
        root.path(),
        FleetOptions {
            shells: &["bash"],
            agent: &wrapper,
            set_env: vec![("OTEL_SDK_DISABLED".into(), "true".into())],
            accept_env: vec![],
        },
    );
    let vm = fleet.vm("bash");
    let pki = fleet
        .distributor()
        .env("OTEL_SDK_DISABLED", "true")
        .env("AUTOBOT_REQUEST_TIMEOUT_MS", "3000")
        .start();

    std::fs::write(&hold, "").unwrap();
    let answer = reqwest::Client::new()
        .post(pki.url("/distribute"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        504,
        "the run is cut by the request timeout"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !staging_left(&vm.staging).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cancelled run's staging directory (with its key) stays: {:?}\n{}",
            staging_left(&vm.staging),
            pki.output()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    std::fs::remove_file(&hold).unwrap();
    // The held agent runs late, finds nothing staged, installs nothing.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(whole_set(&vm.cert_dir).unwrap(), None);

    // Two staging directories from runs that died: one an hour old, one fresh.
    let plant = |name: &str, age: &str| {
        let dir = vm.staging.join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("server-key.pem"), "not a real key").unwrap();
        chown(&dir, &vm.user.name);
        let touched = std::process::Command::new("touch")
            .args(["-d", age])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(touched.success());
    };
    let stale = "autobot-pki-0123456789abcdef0123456789abcdef";
    let fresh = "autobot-pki-fedcba9876543210fedcba9876543210";
    plant(stale, "1 hour ago");
    plant(fresh, "now");
    let answer = reqwest::Client::new()
        .post(pki.url("/distribute"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["results"][0]["ok"], true, "{body}\n{}", pki.output());
    assert_eq!(
        staging_left(&vm.staging),
        [fresh],
        "the stale one is swept at this connection, the fresh one kept"
    );
    whole_set(&vm.cert_dir).unwrap().expect("installed");
}
