//! Real OTLP export from a process of its own (`autobot-otlp-probe`): to a
//! receiver, to a port nobody listens on, and to one that accepts and never
//! answers. The exporting process's own figures tell what happened.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PROBE: &str = env!("CARGO_BIN_EXE_autobot-otlp-probe");

/// Runs the probe; fails the test if it does not finish (it must never hang).
pub fn probe(endpoint: &str, spans: u64, extra_env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut cmd = Command::new(PROBE);
    cmd.args(["--spans", &spans.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUTOBOT_JAEGER_ENDPOINT", endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the probe starts");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the probe hung for 60 s exporting to {endpoint}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    (
        out.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Accepts connections and never answers: the worst receiver there is.
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

const SPANS: u64 = 50_000;
/// Far above what a bounded queue of 2048 spans needs, far below 50 000 unbounded spans.
const MAX_PEAK_RSS_KIB: u64 = 48 * 1024;

fn assert_nothing_held_up(report: &Value, stderr: &str) {
    assert_eq!(report["ended"], SPANS);
    assert_eq!(report["exported"], 0);
    assert_eq!(
        report["not_exported"], SPANS,
        "every span is counted as not exported"
    );
    assert!(
        report["peak_rss_kib"].as_u64().unwrap() < MAX_PEAK_RSS_KIB,
        "memory stays bounded: {report}"
    );
    assert!(
        stderr.contains("span export failed") || stderr.contains("not exported"),
        "the loss is logged: {stderr}"
    );
}

#[test]
fn with_no_receiver_listening_spans_are_dropped_counted_and_bounded() {
    for endpoint in [
        format!("http://127.0.0.1:{}", closed_port()),
        format!("http://127.0.0.1:{}/v1/traces", closed_port()),
    ] {
        let (code, report, stderr) = probe(
            &endpoint,
            SPANS,
            &[("AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS", "2000")],
        );
        assert_eq!(code, 1, "the probe says not everything arrived");
        assert_nothing_held_up(&report, &stderr);
    }
}

#[test]
fn a_receiver_that_never_answers_does_not_hold_up_the_loop() {
    for path in ["", "/v1/traces"] {
        let endpoint = format!("http://127.0.0.1:{}{path}", black_hole());
        let (code, report, stderr) = probe(
            &endpoint,
            SPANS,
            &[
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
                ("AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS", "1500"),
            ],
        );
        assert_eq!(code, 1);
        // The first export waits 3 s for an answer; had the loop waited for
        // it, that export would have ended (failed) before the loop did.
        assert_eq!(
            report["failed_at_loop_end"], 0,
            "the loop never waited for the exporter: {report}"
        );
        assert_eq!(report["exported_at_loop_end"], 0);
        assert_nothing_held_up(&report, &stderr);
    }
}

#[test]
fn a_bad_setting_stops_the_probe_naming_the_variable() {
    let (code, _, stderr) = {
        let out = Command::new(PROBE)
            .env("AUTOBOT_TRACE_SAMPLE_RATE", "1.5")
            .output()
            .expect("runs");
        (
            out.status.code(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("AUTOBOT_TRACE_SAMPLE_RATE") && stderr.contains("1.5"),
        "{stderr}"
    );
}
