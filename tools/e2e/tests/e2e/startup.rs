//! Every service binary refuses a bad setting the same way: exit status 2
//! and ONE line on stderr naming the variable and the value, the telemetry
//! settings included, before it listens or logs anything else.

use autobot_testkit::process::{Finished, Launch};

const SERVICES: [&str; 5] = [
    "autobot-backend",
    "autobot-ai-stack",
    "autobot-npu-worker",
    "autobot-browser",
    "autobot-pki-distributor",
];

/// Runs `binary` to its end with `variable=value`, through testkit's
/// launcher: no AUTOBOT_*/OTEL_*/RUST_LOG of the test's own, an empty
/// directory (so no `.env`). The backend needs operator keys or
/// `AUTOBOT_AUTH=off` to start: off, so that `variable` is its one bad setting.
fn run_with(binary: &str, variable: &str, value: &str) -> Finished {
    let mut launch = Launch::workspace_bin(binary);
    if binary == "autobot-backend" {
        launch = launch.env("AUTOBOT_AUTH", "off");
    }
    launch.env(variable, value).run()
}

#[test]
fn a_bad_setting_is_exit_status_2_and_one_line_naming_it() {
    for (variable, value) in [
        ("AUTOBOT_TRACE_SAMPLE_RATE", "1.5"),
        ("AUTOBOT_BIND", "nonsense"),
        ("AUTOBOT_METRICS_BIND", "nonsense"),
        // The request limits every service's runner reads (shared/lifecycle/src/limits.rs).
        ("AUTOBOT_HEADER_READ_TIMEOUT_MS", "0"),
        ("AUTOBOT_MAX_CONCURRENT_REQUESTS", "many"),
    ] {
        for binary in SERVICES {
            let out = run_with(binary, variable, value);
            let stderr = &out.stderr;
            let what = format!("{binary} with {variable}={value}:\n{stderr}");
            assert_eq!(out.code(), Some(2), "{what}");
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
