//! The distributor binary: refuses to start on bad settings (naming the
//! variable), serves on AUTOBOT_BIND, stops cleanly on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, Vm};

fn distributor() -> Command {
    Command::new(crate::support::distributor_bin())
}

#[test]
fn bad_settings_stop_the_process_with_the_variable_named() {
    let cluster = Cluster::start(&[Vm::Down], "http://127.0.0.1:9/v1/traces");
    for (variable, value) in [
        ("AUTOBOT_PKI_VALIDITY_DAYS", "a year".to_owned()),
        (
            "AUTOBOT_SSH_KEY",
            cluster.path().join("no-such-key").display().to_string(),
        ),
        (
            "AUTOBOT_SSH_KNOWN_HOSTS",
            cluster.path().join("no-such-file").display().to_string(),
        ),
        (
            "AUTOBOT_PKI_TARGETS",
            cluster.path().join("missing.toml").display().to_string(),
        ),
    ] {
        let out = distributor()
            .env_clear()
            .envs(cluster.distributor_env())
            .env(variable, &value)
            .current_dir(cluster.path())
            .args(["distribute"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(out.stdout.is_empty(), "no result printed: {variable}");
    }
    // Unknown target names are refused before anything is issued.
    let out = distributor()
        .env_clear()
        .envs(cluster.distributor_env())
        .current_dir(cluster.path())
        .args(["distribute", "--targets", "vm-0-down,nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown target(s): nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_on_autobot_bind_and_stops_on_sigterm() {
    let cluster = Cluster::start(&[Vm::Down], "http://127.0.0.1:9/v1/traces");
    let port = autobot_testkit::ports::free_port();
    let mut child = distributor()
        .env_clear()
        .envs(cluster.distributor_env())
        .env("AUTOBOT_BIND", format!("127.0.0.1:{port}"))
        .current_dir(cluster.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        match client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("no answer on AUTOBOT_BIND: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(health.status().is_success());
    let status = client
        .get(format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
        .unwrap();
    assert!(
        status.headers().contains_key("traceresponse"),
        "traced route"
    );
    let body: autobot_wire::pki::StatusResponse = status.json().await.unwrap();
    assert_eq!(body.targets.len(), 1);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}
