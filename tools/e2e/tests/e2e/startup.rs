//! Every service binary refuses a bad setting the same way: exit status 2
//! and ONE line on stderr naming the variable and the value, the telemetry
//! settings included, before it listens or logs anything else.

use std::process::{Command, Output};

use autobot_testkit::bins::workspace_bin;

const SERVICES: [&str; 5] = [
    "autobot-backend",
    "autobot-ai-stack",
    "autobot-npu-worker",
    "autobot-browser",
    "autobot-pki-distributor",
];

/// Runs `binary` with nothing inherited but PATH (no AUTOBOT_*/OTEL_*, no
/// RUST_LOG) and `variable=value`, in an empty directory (so no `.env`).
fn run_with(binary: &str, variable: &str, value: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(workspace_bin(binary).unwrap())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(variable, value)
        .current_dir(dir.path())
        .output()
        .unwrap()
}

#[test]
fn a_bad_setting_is_exit_status_2_and_one_line_naming_it() {
    for (variable, value) in [
        ("AUTOBOT_TRACE_SAMPLE_RATE", "1.5"),
        ("AUTOBOT_BIND", "nonsense"),
    ] {
        for binary in SERVICES {
            let out = run_with(binary, variable, value);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let what = format!("{binary} with {variable}={value}:\n{stderr}");
            assert_eq!(out.status.code(), Some(2), "{what}");
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{what}");
            let named = format!("{variable}={value:?} is not valid: ");
            assert!(
                lines[0].starts_with(&format!("{binary}: ")) && lines[0].contains(&named),
                "{what}"
            );
            assert!(out.stdout.is_empty(), "{what}: it printed {:?}", out.stdout);
        }
    }
}
