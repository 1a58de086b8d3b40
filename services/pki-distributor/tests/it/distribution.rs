//! The operator's story: `autobot-pki-distributor distribute` against four
//! VMs (real OpenSSH sshd): two install, one is refused for its host key,
//! one is down; one trace holds it all, each VM's `pki.install` under that
//! VM's `ssh.distribute_certificates`.

use std::path::Path;
use std::time::Duration;

use autobot_testkit::process::Launch;
use autobot_testkit::trace_tool::TraceTool;
use autobot_testkit::traces::{Kind, Span};
use autobot_wire::pki::DistributeResponse;

use crate::cluster::{Cluster, Vm};
use crate::support::{file_mode, openssl_verify, pem_body_lines};

struct Run {
    code: Option<i32>,
    response: DistributeResponse,
    logs: String,
}

async fn run_cli(cluster: &Cluster, env: &[(&str, String)], args: &[&str]) -> Run {
    let launch = Launch::program(crate::support::distributor_bin())
        .envs(cluster.distributor_env())
        .envs(env.iter().cloned())
        .current_dir(cluster.path())
        .arg("distribute")
        .args(args)
        .within(Duration::from_secs(300));
    let out = tokio::task::spawn_blocking(move || launch.run())
        .await
        .unwrap();
    let (stdout, stderr) = (out.stdout, out.stderr);
    let response = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("stdout is the JSON response ({e}): {stdout}\nstderr: {stderr}")
    });
    Run {
        code: out.status.code(),
        response,
        logs: format!("{stdout}\n{stderr}"),
    }
}

/// A certificate directory after an install (docs/pki.md): the stable
/// names are symlinks into `current`, a release directory per install.
const INSTALLED_LAYOUT: [&str; 6] = [
    ".install.lock",
    "ca-cert.pem",
    "current",
    "releases",
    "server-cert.pem",
    "server-key.pem",
];

fn entries(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn one<'a>(spans: &'a [Span], name: &str, vm: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == name && s.attr_text("ssh.target_vm").is_none_or(|v| v == vm))
        .filter(|s| s.name != "pki.install" || s.host == vm)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name} for {vm}: {:#?}",
        spans.iter().filter(|s| s.name == name).collect::<Vec<_>>()
    );
    found[0]
}

fn child_of<'a>(spans: &'a [Span], parent: &Span, name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name && s.parent.as_deref() == Some(parent.span_id.as_str()))
        .unwrap_or_else(|| panic!("no {name} under {} {}", parent.name, parent.span_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribute_to_four_vms_installs_where_it_may_and_traces_it_all() {
    let tool = TraceTool::start();
    // The agents export over OTLP/HTTP, the distributor over OTLP/gRPC.
    let cluster = Cluster::start(
        &[Vm::AcceptEnv, Vm::NoAcceptEnv, Vm::WrongHostKey, Vm::Down],
        &tool.otlp_http_endpoint(),
    );

    let first = run_cli(
        &cluster,
        &[("AUTOBOT_JAEGER_ENDPOINT", tool.otlp_grpc_endpoint())],
        &[],
    )
    .await;
    assert_eq!(
        first.code,
        Some(1),
        "exit 1: some targets failed\n{}",
        first.logs
    );
    let results = &first.response.results;
    assert_eq!(results.len(), 4, "{results:#?}");
    let by = |kind: Vm| {
        let name = &cluster.vm(kind).name;
        results.iter().find(|r| &r.target == name).unwrap()
    };
    for kind in [Vm::AcceptEnv, Vm::NoAcceptEnv] {
        let r = by(kind);
        assert!(r.ok, "{r:#?}\n{}", first.logs);
        assert_eq!(r.files_copied, 3);
    }
    let refused = by(Vm::WrongHostKey);
    assert!(!refused.ok);
    assert_eq!(
        refused.error_type.as_deref(),
        Some("host_key_mismatch"),
        "{refused:#?}"
    );
    assert!(
        refused
            .error
            .as_deref()
            .unwrap()
            .contains("does not match known_hosts")
    );
    assert_eq!(refused.files_copied, 0);
    let down = by(Vm::Down);
    assert!(!down.ok);
    assert_eq!(
        down.error_type.as_deref(),
        Some("connect_error"),
        "{down:#?}"
    );

    // The files on the VMs that installed.
    for kind in [Vm::AcceptEnv, Vm::NoAcceptEnv] {
        let vm = cluster.vm(kind);
        let certs = vm.cert_dir();
        assert_eq!(entries(&certs), INSTALLED_LAYOUT);
        openssl_verify(&certs).unwrap_or_else(|e| panic!("{}: {e}", vm.name));
        assert_eq!(file_mode(&certs.join("server-key.pem")), 0o600);
        assert_eq!(file_mode(&certs.join("server-cert.pem")), 0o644);
        assert_eq!(file_mode(&certs.join("ca-cert.pem")), 0o644);
        assert!(
            entries(&vm.staging_parent()).is_empty(),
            "staging removed after install"
        );
    }
    // Nothing reached the VM whose host key did not match.
    let refused_vm = cluster.vm(Vm::WrongHostKey);
    assert!(!refused_vm.cert_dir().exists());
    assert!(entries(&refused_vm.staging_parent()).is_empty());

    // One trace: the run, four targets, two installs on the right parents.
    let trace_id = first.response.trace_id.clone().expect("the run's trace id");
    let spans = tool
        .wait_for_spans(&trace_id, |s| {
            s.iter().filter(|s| s.name == "pki.install").count() >= 2
                && s.iter()
                    .filter(|s| s.name == "ssh.distribute_certificates")
                    .count()
                    >= 4
                && s.iter().any(|s| s.name == "pki.distribute")
        })
        .await;
    let trace_json = tool
        .trace_json(&trace_id)
        .await
        .expect("the trace")
        .to_string();
    let run = spans
        .iter()
        .find(|s| s.name == "pki.distribute")
        .expect("pki.distribute");
    assert_eq!(run.service, "autobot-pki-distributor");
    assert_eq!(run.parent, None, "the CLI run is the root");
    for vm in &cluster.vms {
        let target = one(&spans, "ssh.distribute_certificates", &vm.name);
        assert_eq!(target.parent.as_deref(), Some(run.span_id.as_str()));
        assert_eq!(target.kind, Kind::Client);
        assert_eq!(
            target.attr_text("pki.operation").as_deref(),
            Some("distribute")
        );
        assert_eq!(
            target.attr_text("ssh.target_ip").as_deref(),
            Some("127.0.0.1")
        );
        assert!(!target.attr_text("ssh.user").unwrap().is_empty());
        match vm.kind {
            Vm::AcceptEnv | Vm::NoAcceptEnv => {
                assert_eq!(target.attr_text("ssh.files_copied").as_deref(), Some("3"));
                assert!(!target.is_error());
                child_of(&spans, target, "ssh.connect");
                child_of(&spans, target, "ssh.upload");
                let exec = child_of(&spans, target, "ssh.exec");
                let sent: usize = exec.attr_text("ssh.env_sent").unwrap().parse().unwrap();
                let accepted: usize = exec.attr_text("ssh.env_accepted").unwrap().parse().unwrap();
                assert!(sent >= 1);
                if vm.kind == Vm::AcceptEnv {
                    assert_eq!(accepted, sent, "AcceptEnv names every variable");
                } else {
                    assert_eq!(
                        accepted, 0,
                        "without AcceptEnv only the prefix carried the context"
                    );
                }
                let install = one(&spans, "pki.install", &vm.name);
                assert_eq!(install.service, "autobot-pki-agent");
                assert_eq!(install.host, vm.name, "host.name of the VM");
                assert_eq!(
                    install.parent.as_deref(),
                    Some(target.span_id.as_str()),
                    "{}: pki.install is a child of ssh.distribute_certificates",
                    vm.name
                );
            }
            Vm::NoAgent | Vm::UnknownHostKey => panic!("not part of this cluster"),
            Vm::WrongHostKey | Vm::Down => {
                assert!(target.is_error(), "ERROR");
                let expected = if vm.kind == Vm::Down {
                    "connect_error"
                } else {
                    "host_key_mismatch"
                };
                assert_eq!(target.attr_text("error.type").as_deref(), Some(expected));
                assert_eq!(
                    target.attr_text("ssh.error_type").as_deref(),
                    Some(expected)
                );
                assert_eq!(target.attr_text("ssh.files_copied").as_deref(), Some("0"));
            }
        }
    }

    // No private key text anywhere: spans, the distributor's output, sshd logs.
    let mut secrets = pem_body_lines(
        &std::fs::read_to_string(cluster.pki_dir().join("ca").join("ca-key.pem")).unwrap(),
    );
    for kind in [Vm::AcceptEnv, Vm::NoAcceptEnv] {
        secrets.extend(pem_body_lines(
            &std::fs::read_to_string(cluster.vm(kind).cert_dir().join("server-key.pem")).unwrap(),
        ));
    }
    assert!(!secrets.is_empty());
    let dump = &trace_json;
    let sshd_logs = cluster.sshd_logs();
    for line in &secrets {
        assert!(!dump.contains(line.as_str()), "private key text in a span");
        assert!(
            !first.logs.contains(line.as_str()),
            "private key text in the distributor's output"
        );
        assert!(
            !sshd_logs.contains(line.as_str()),
            "private key text in an sshd log"
        );
    }
    assert!(!dump.contains("PRIVATE KEY") && !first.logs.contains("PRIVATE KEY"));

    // A second run replaces the certificates: new ones, complete, no leftovers.
    let before: Vec<String> = [Vm::AcceptEnv, Vm::NoAcceptEnv]
        .iter()
        .map(|k| {
            std::fs::read_to_string(cluster.vm(*k).cert_dir().join("server-cert.pem")).unwrap()
        })
        .collect();
    let names = format!(
        "{},{}",
        cluster.vm(Vm::AcceptEnv).name,
        cluster.vm(Vm::NoAcceptEnv).name
    );
    let second = run_cli(
        &cluster,
        &[("AUTOBOT_JAEGER_ENDPOINT", tool.otlp_grpc_endpoint())],
        &["--targets", &names],
    )
    .await;
    assert_eq!(second.code, Some(0), "{}", second.logs);
    assert_eq!(second.response.results.len(), 2);
    assert_ne!(
        second.response.trace_id, first.response.trace_id,
        "a new run, a new trace"
    );
    for (i, kind) in [Vm::AcceptEnv, Vm::NoAcceptEnv].iter().enumerate() {
        let certs = cluster.vm(*kind).cert_dir();
        let now = std::fs::read_to_string(certs.join("server-cert.pem")).unwrap();
        assert_ne!(now, before[i], "the certificate was replaced");
        let fingerprint = &second.response.results[i]
            .certificate
            .as_ref()
            .unwrap()
            .fingerprint_sha256;
        let summary = autobot_pki_distributor::ca::summarize_pem(&now).unwrap();
        assert_eq!(&summary.fingerprint_sha256, fingerprint);
        assert_eq!(entries(&certs), INSTALLED_LAYOUT);
        openssl_verify(&certs).unwrap();
        assert_eq!(file_mode(&certs.join("server-key.pem")), 0o600);
    }
}

/// The key was uploaded but the agent is missing: the target fails with
/// the reason, and the staged key does not stay behind on the VM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_agent_is_reported_and_the_staged_key_removed() {
    let cluster = Cluster::start(&[Vm::NoAgent], "http://127.0.0.1:9/v1/traces");
    let distributor = std::sync::Arc::new(
        autobot_pki_distributor::distribute::Distributor::new(cluster.config()).unwrap(),
    );
    let response = distributor.distribute(None).await.unwrap();
    let result = &response.results[0];
    assert!(!result.ok);
    assert_eq!(result.files_copied, 3, "the upload itself worked");
    assert_eq!(
        result.error_type.as_deref(),
        Some("agent_not_found"),
        "{result:?}"
    );
    assert!(
        result.error.as_deref().unwrap().contains("127"),
        "{result:?}"
    );
    let vm = cluster.vm(Vm::NoAgent);
    assert!(
        entries(&vm.staging_parent()).is_empty(),
        "staging removed by the distributor"
    );
    assert!(!vm.cert_dir().exists());
}
