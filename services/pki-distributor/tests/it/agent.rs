//! autobot-pki-agent as a process: exit code, the JSON line, the files.

use autobot_testkit::process::Launch;
use autobot_wire::pki::AgentInstallReport;

use crate::support::{agent_bin, file_mode, new_ca, openssl_verify, stage, target};

fn run_agent(
    staging: &std::path::Path,
    dest: &std::path::Path,
) -> (i32, AgentInstallReport, String) {
    let out = Launch::program(agent_bin())
        .env("OTEL_SDK_DISABLED", "true")
        .args(["install", "--staging"])
        .arg(staging)
        .arg("--dest")
        .arg(dest)
        .run();
    let stdout = out.stdout;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one JSON line on stdout: {stdout:?}"
    );
    let report: AgentInstallReport = serde_json::from_str(lines[0]).unwrap();
    (out.status.code().unwrap_or(-1), report, out.stderr)
}

#[test]
fn the_agent_installs_a_verified_chain_and_says_so_in_one_json_line() {
    let root = tempfile::tempdir().unwrap();
    let ca = new_ca(&root.path().join("pki"));
    let issued = ca.issue(&target("vm2", "127.0.0.1"), 365).unwrap();
    let staging = root.path().join("staging");
    let dest = root.path().join("certs");
    stage(&issued, &staging);

    let (code, report, stderr) = run_agent(&staging, &dest);
    assert_eq!(code, 0, "{report:?} {stderr}");
    assert!(report.ok);
    assert_eq!(
        report.installed,
        ["ca-cert.pem", "server-cert.pem", "server-key.pem"]
    );
    assert_eq!(
        report.certificate.unwrap().fingerprint_sha256,
        issued.summary.fingerprint_sha256
    );
    openssl_verify(&dest).unwrap();
    assert_eq!(file_mode(&dest.join("server-key.pem")), 0o600);
    assert_eq!(file_mode(&dest.join("ca-cert.pem")), 0o644);
    assert!(!staging.exists(), "the staging directory is single-use");
    for line in crate::support::pem_body_lines(issued.key_pem.expose()) {
        assert!(!stderr.contains(&line), "key text in the agent's log");
    }
}

#[test]
fn the_agent_refuses_a_foreign_certificate_exits_1_and_keeps_the_old_files() {
    let root = tempfile::tempdir().unwrap();
    let ca = new_ca(&root.path().join("pki"));
    let other = new_ca(&root.path().join("other"));
    let dest = root.path().join("certs");
    let staging = root.path().join("staging");
    stage(
        &ca.issue(&target("vm2", "127.0.0.1"), 365).unwrap(),
        &staging,
    );
    assert_eq!(run_agent(&staging, &dest).0, 0);
    let before = std::fs::read_to_string(dest.join("server-cert.pem")).unwrap();

    let mut foreign = other.issue(&target("vm2", "127.0.0.1"), 365).unwrap();
    foreign.ca_cert_pem = ca.cert_pem().to_owned();
    stage(&foreign, &staging);
    let (code, report, _) = run_agent(&staging, &dest);
    assert_eq!(code, 1);
    assert!(!report.ok);
    assert_eq!(report.error_type.as_deref(), Some("chain_invalid"));
    assert!(report.error.unwrap().contains("does not chain"));
    assert_eq!(
        std::fs::read_to_string(dest.join("server-cert.pem")).unwrap(),
        before
    );
    openssl_verify(&dest).unwrap();
}

#[test]
fn a_missing_staging_directory_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (code, report, _) = run_agent(&root.path().join("nope"), &root.path().join("certs"));
    assert_eq!(code, 1);
    assert_eq!(report.error_type.as_deref(), Some("staging_unreadable"));
    assert!(!root.path().join("certs").exists());
}

#[test]
fn a_bad_telemetry_setting_stops_the_agent_with_exit_2() {
    let root = tempfile::tempdir().unwrap();
    let out = Launch::program(agent_bin())
        .env("AUTOBOT_TRACE_SAMPLE_RATE", "lots")
        .args(["install", "--staging", "/nonexistent", "--dest"])
        .arg(root.path().join("certs"))
        .run();
    assert_eq!(out.code(), Some(2));
    let report: AgentInstallReport = serde_json::from_str(&out.stdout).unwrap();
    assert!(report.error.unwrap().contains("AUTOBOT_TRACE_SAMPLE_RATE"));
}

#[test]
fn bad_arguments_still_give_one_json_line_and_exit_2() {
    let out = Launch::program(agent_bin())
        .args(["install", "--staging", "/tmp/x"])
        .run();
    assert_eq!(out.code(), Some(2));
    let report: AgentInstallReport = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report.error_type.as_deref(), Some("usage"));
    assert!(report.error.unwrap().contains("--dest"));
}

/// The first distribution installs the files OTLP's TLS names: the agent
/// installs them (untraced, with a warning) instead of refusing.
#[test]
fn otlp_tls_files_not_there_yet_do_not_stop_the_first_install() {
    let root = tempfile::tempdir().unwrap();
    let ca = new_ca(&root.path().join("pki"));
    let staging = root.path().join("staging");
    let dest = root.path().join("certs");
    stage(
        &ca.issue(&target("vm2", "127.0.0.1"), 365).unwrap(),
        &staging,
    );
    // Launch passes on no AUTOBOT_*/OTEL_* variable of the test's own.
    let out = Launch::program(agent_bin())
        .env("AUTOBOT_JAEGER_ENDPOINT", "https://127.0.0.1:9/v1/traces")
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", dest.join("ca-cert.pem"))
        .env(
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            dest.join("server-cert.pem"),
        )
        .env("OTEL_EXPORTER_OTLP_CLIENT_KEY", dest.join("server-key.pem"))
        .args(["install", "--staging"])
        .arg(&staging)
        .arg("--dest")
        .arg(&dest)
        .run();
    let stderr = &out.stderr;
    assert_eq!(out.code(), Some(0), "{stderr}");
    let report: AgentInstallReport = serde_json::from_str(&out.stdout).unwrap();
    assert!(report.ok, "{report:?}");
    assert!(
        stderr.contains("spans are not exported by this run"),
        "{stderr}"
    );
    openssl_verify(&dest).unwrap();
}
