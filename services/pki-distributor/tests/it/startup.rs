//! The distributor binary: refuses to start on bad settings (naming the
//! variable), serves on AUTOBOT_BIND, stops cleanly on SIGTERM.

use autobot_testkit::process::Launch;

use crate::cluster::{Cluster, Vm};

/// The distributor in the cluster's directory with the cluster's settings.
fn distributor(cluster: &Cluster) -> Launch {
    Launch::program(crate::support::distributor_bin())
        .envs(cluster.distributor_env())
        .current_dir(cluster.path())
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
        let out = distributor(&cluster)
            .env(variable, &value)
            .arg("distribute")
            .run();
        assert_eq!(out.code(), Some(2), "{variable}");
        let stderr = &out.stderr;
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(out.stdout.is_empty(), "no result printed: {variable}");
    }
    // Unknown target names are refused before anything is issued.
    let out = distributor(&cluster)
        .args(["distribute", "--targets", "vm-0-down,nope"])
        .run();
    assert_eq!(out.code(), Some(2));
    assert!(out.stderr.contains("unknown target(s): nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_on_autobot_bind_and_stops_on_sigterm() {
    let cluster = Cluster::start(&[Vm::Down], "http://127.0.0.1:9/v1/traces");
    let mut server = distributor(&cluster).start();
    let client = reqwest::Client::new();
    let health = client.get(server.url("/health")).send().await.unwrap();
    assert!(health.status().is_success());
    let status = client.get(server.url("/status")).send().await.unwrap();
    assert!(
        status.headers().contains_key("traceresponse"),
        "traced route"
    );
    let body: autobot_wire::pki::StatusResponse = status.json().await.unwrap();
    assert_eq!(body.targets.len(), 1);

    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
}
