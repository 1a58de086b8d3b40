//! Certificate distribution is one trace: backend → pki-distributor → over
//! SSH → the agent's `pki.install` on the VM.

use std::time::Duration;

use serde_json::json;

use autobot_e2e::system::{Options, System};
use autobot_testkit::traces::{problems, spans};

const SERVICES: [&str; 3] = [
    "autobot-backend",
    "autobot-pki-distributor",
    "autobot-pki-agent",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_is_one_trace_down_to_the_agent_on_the_vm() {
    let system = System::start(Options::default()).await;
    distribution_is_one_whole_trace(&system).await;
}

/// The distribution's answer, what the agent installed, and its trace,
/// checked; also run with mutual TLS between the services
/// (tests/e2e/mutual_tls.rs).
pub(crate) async fn distribution_is_one_whole_trace(system: &System) {
    let answer = system.post("/api/pki/distribute", json!({}), &[]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, system.logs());
    let results = answer.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ok"], true, "{}", answer.body);
    assert!(
        system.vm_certs.join("server-key.pem").is_file(),
        "the agent installed the key"
    );

    let trace = system
        .tool
        .wait_for_trace(
            &answer.trace_id,
            |t| {
                problems(t, &SERVICES, None).is_empty()
                    && t.spans.iter().any(|s| s.operation_name == "pki.install")
            },
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", system.logs()));
    let all = spans(&trace);
    let by_id = |id: &str| all.iter().find(|s| s.span_id == id).unwrap();
    let install = all.iter().find(|s| s.name == "pki.install").unwrap();
    assert_eq!(install.service, "autobot-pki-agent");
    // The agent's span descends from that VM's ssh.distribute_certificates span.
    let mut ancestor = install.parent.clone();
    let mut found = None;
    while let Some(id) = ancestor {
        let span = by_id(&id);
        if span.name == "ssh.distribute_certificates" {
            found = Some(span.clone());
            break;
        }
        ancestor = span.parent.clone();
    }
    let ssh = found.expect("pki.install descends from ssh.distribute_certificates");
    assert_eq!(ssh.service, "autobot-pki-distributor");
    assert_eq!(ssh.attr_text("ssh.target_vm").as_deref(), Some("vm-a"));
    let root = all.iter().find(|s| s.parent.is_none()).unwrap();
    assert_eq!(
        (root.name.as_str(), root.service.as_str()),
        ("POST /api/pki/distribute", "autobot-backend")
    );
    for s in &all {
        assert!(
            !s.text().contains("PRIVATE KEY"),
            "no key text in span {}",
            s.name
        );
    }
}
