//! autobot-bench-two-hop: `a`, `b` or `black-hole`, configured from the environment.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cfg = match autobot_bench_two_hop::Config::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("autobot-bench-two-hop: {e}");
            return ExitCode::FAILURE;
        }
    };
    match autobot_bench_two_hop::run(cfg).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobot-bench-two-hop: {e}");
            ExitCode::FAILURE
        }
    }
}
