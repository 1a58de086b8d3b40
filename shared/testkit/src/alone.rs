//! A process of its own for a test that installs process-wide state: the
//! global tracer provider, the `tracing` dispatcher and the propagator that
//! `autobot_tracing::init*` set can be set once per process.
//!
//! cargo-nextest runs every test in a process of its own; plain `cargo
//! test` runs a binary's tests as threads of one process. Such a test
//! starts with
//!
//! ```no_run
//! # fn a_test_that_installs_telemetry() {
//! if autobot_testkit::alone::rerun_in_own_process() {
//!     return;
//! }
//! // … autobot_tracing::init_with(…) and the test itself
//! # }
//! ```
//!
//! Under nextest, or in the child, the call returns false and the test goes
//! on. Otherwise it runs the same test binary again for this one test
//! (`NAME --exact`), shows the child's output as this test's, fails when the
//! child's test fails or did not run, and returns true: the test has run,
//! its body is skipped here.

use std::process::{Command, Stdio};

/// Set in the child to the name of the test it runs alone.
pub const MARKER: &str = "AUTOBOT_TESTKIT_ALONE";

/// See the module documentation.
pub fn rerun_in_own_process() -> bool {
    let name = current_test_name();
    if already_alone(&name) {
        return false;
    }
    run_alone(&name);
    true
}

/// Runs test `name` of this test binary in a child of its own; panics when
/// it fails or did not run.
fn run_alone(name: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(&exe)
        .args([name, "--exact", "--nocapture", "--include-ignored"])
        .args(["--test-threads", "1"])
        .env(MARKER, name)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {} {name} alone: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Printed through the test harness, so it is shown when this test fails.
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "{name} failed in its own process ({})",
        out.status
    );
    assert!(
        ran_one_test(&stdout),
        "{name} did not run in its own process (filtered out?)"
    );
}

/// Panics unless this test has a process of its own: for helpers that
/// install global telemetry, so a test that forgot
/// [`rerun_in_own_process`] fails the same way under every runner.
pub fn assert_alone() {
    let name = current_test_name();
    assert!(
        already_alone(&name),
        "{name} installs global telemetry: it must start with `if autobot_testkit::alone::rerun_in_own_process() {{ return; }}`"
    );
}

fn already_alone(name: &str) -> bool {
    std::env::var_os("NEXTEST_EXECUTION_MODE").is_some_and(|m| m == "process-per-test")
        || std::env::var_os(MARKER).is_some_and(|m| m == name)
}

/// libtest names the thread of each test after the test's path.
fn current_test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        other => panic!(
            "rerun_in_own_process must be called on the test's own thread (its name is the test's); this thread is {other:?}"
        ),
    }
}

fn ran_one_test(harness_stdout: &str) -> bool {
    harness_stdout
        .lines()
        .any(|l| l.starts_with("test result: ok. 1 passed;"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the child really runs the body: under plain `cargo test` the
    /// child leaves a file named after its parent, which the parent finds.
    #[test]
    fn a_test_runs_once_in_a_child_of_its_own() {
        let witness = |pid: u32| std::env::temp_dir().join(format!("autobot-testkit-alone-{pid}"));
        if rerun_in_own_process() {
            let child = std::fs::read_to_string(witness(std::process::id()))
                .expect("the child ran the body");
            let _ = std::fs::remove_file(witness(std::process::id()));
            assert_ne!(child, std::process::id().to_string(), "in another process");
            return;
        }
        if std::env::var_os(MARKER).is_some() {
            std::fs::write(witness(parent_pid()), std::process::id().to_string()).unwrap();
        }
    }

    fn parent_pid() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    #[test]
    #[ignore = "run by a_failure_in_the_child_fails_the_test, in a child of its own"]
    fn fails_in_a_child() {
        assert!(
            std::env::var_os(MARKER).is_none(),
            "the failure a_failure_in_the_child_fails_the_test expects"
        );
    }

    #[test]
    fn a_failure_in_the_child_fails_the_test() {
        let failure = std::panic::catch_unwind(|| run_alone("alone::tests::fails_in_a_child"))
            .expect_err("the child's failure is the test's");
        let message = failure
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            message.contains("fails_in_a_child failed in its own process"),
            "{message}"
        );
        let not_run = std::panic::catch_unwind(|| run_alone("alone::tests::no_such_test"))
            .expect_err("a test that did not run is a failure");
        let message = not_run
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("did not run"), "{message}");
    }

    #[test]
    fn the_harness_summary_says_whether_the_test_ran() {
        assert!(ran_one_test(
            "running 1 test\ntest a::b ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 9 filtered out; finished in 0.00s\n"
        ));
        assert!(!ran_one_test(
            "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 10 filtered out; finished in 0.00s\n"
        ));
    }

    #[test]
    fn nextest_or_the_marker_means_alone_already() {
        // Whatever runs this test, the marker for another name does not count.
        assert_eq!(
            already_alone("some::other_test"),
            std::env::var_os("NEXTEST_EXECUTION_MODE").is_some_and(|m| m == "process-per-test")
        );
    }
}
