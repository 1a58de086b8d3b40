//! autobot-browser: the library says what it does, autobot-lifecycle's
//! runner how it starts, serves and stops.

fn main() -> std::process::ExitCode {
    autobot_lifecycle::Service::new(autobot_browser::SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .run(autobot_browser::start)
}
