//! autobot-otlp-probe: sends one small trace with this host's telemetry
//! settings (AUTOBOT_JAEGER_ENDPOINT, OTEL_*) and says whether the receiver
//! took every span. Operators run it on a VM to check the path to Jaeger;
//! the tests run it to export from a process of its own.
//!
//! Usage: autobot-otlp-probe [--spans N] [--runtime multi|current]
//! Prints `{"trace_id":…,"ended":…,"exported":…,"not_exported":…}`; exits 0
//! when every span was exported, 1 when some were not, 2 on bad settings.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut spans: u64 = 3;
    let mut current_thread = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--spans", Some(n)) => match n.parse::<u64>() {
                Ok(n) if n > 0 => spans = n,
                _ => return usage(&format!("--spans {n}: expected a whole number above 0")),
            },
            ("--runtime", Some(r)) if r == "current" || r == "multi" => {
                current_thread = r == "current"
            }
            (other, _) => return usage(&format!("unknown argument {other}")),
        }
    }
    let runtime = if current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match runtime {
        Ok(rt) => rt.block_on(run(spans)),
        Err(e) => usage(&format!("no runtime: {e}")),
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "autobot-otlp-probe: {problem}\nusage: autobot-otlp-probe [--spans N] [--runtime multi|current]"
    );
    ExitCode::from(2)
}

async fn run(spans: u64) -> ExitCode {
    let guard = match autobot_tracing::init("autobot-otlp-probe", env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("autobot-otlp-probe: {e}");
            return ExitCode::from(2);
        }
    };
    let trace_id = {
        // Spans are emitted as fast as the loop can go; the exporter runs on
        // its own thread, so a slow or absent receiver must not hold this up.
        let root = tracing::info_span!(
            "probe.run",
            otel.kind = "internal",
            probe.spans = spans as i64
        );
        let _in = root.enter();
        for i in 1..spans {
            let child = tracing::info_span!("probe.step", probe.step = i as i64);
            let _step = child.enter();
            // Yield so a current-thread runtime really interleaves work and export.
            tokio::task::yield_now().await;
        }
        tracing::info!(spans, "probe trace sent");
        autobot_tracing::trace_id_of(&root).unwrap_or_default()
    };
    let at_loop_end = guard.stats();
    let stats = guard.shutdown().await;
    println!(
        "{{\"trace_id\":\"{trace_id}\",\"ended\":{},\"exported\":{},\"not_exported\":{},\"exported_at_loop_end\":{},\"failed_at_loop_end\":{},\"peak_rss_kib\":{}}}",
        stats.ended,
        stats.exported,
        stats.not_exported(),
        at_loop_end.exported,
        at_loop_end.export_failed,
        peak_rss_kib()
    );
    if stats.not_exported() == 0 && stats.exported == spans {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// VmHWM from /proc: the most memory this process ever held.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
