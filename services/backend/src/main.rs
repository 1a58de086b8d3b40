//! autobot-backend: the library says what it does, autobot-lifecycle's
//! runner how it starts, serves and stops. `autobot-backend keygen NAME
//! ROLE` makes an operator key instead.

use std::process::ExitCode;

use autobot_lifecycle::tls::ClientCertificates;

const USAGE: &str = "usage: autobot-backend              serve the API (settings from the environment)
       autobot-backend keygen NAME ROLE   print a new operator key and its line for AUTOBOT_API_KEYS_FILE (ROLE: user or admin)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => autobot_lifecycle::Service::new(
            autobot_backend::SERVICE_NAME,
            env!("CARGO_PKG_VERSION"),
        )
        // Operators and the frontend call the public API with keys, not certificates.
        .client_certificates(ClientCertificates::Optional)
        .run(autobot_backend::start),
        ["keygen", name, role] => match autobot_backend::auth::keygen(name, role) {
            Ok((key, line)) => {
                println!("# the key: give it to the operator; it is not stored anywhere");
                println!("{key}");
                println!("# its line for AUTOBOT_API_KEYS_FILE (then restart the backend)");
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(reason) => usage_error(&reason),
        },
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage_error("unknown arguments"),
    }
}

fn usage_error(reason: &str) -> ExitCode {
    eprintln!("autobot-backend: {reason}\n{USAGE}");
    ExitCode::from(autobot_lifecycle::EXIT_BAD_SETTING)
}
