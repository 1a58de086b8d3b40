//! autobot-npu-worker: the library says what it does, autobot-lifecycle's
//! runner how it starts, serves and stops.

fn main() -> std::process::ExitCode {
    autobot_lifecycle::Service::new(autobot_npu_worker::SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .run(autobot_npu_worker::start)
}
