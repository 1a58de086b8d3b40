//! Stand-ins for the outside world of AutoBot, for tests and the local run.
//!
//! - [`llm`]: a STAND-IN LLM server speaking Ollama's and OpenAI's real wire
//!   formats. It runs no model: its answers are computed from the prompt, and
//!   it says so in its answers and its logs.
//! - [`site`]: a small web site with an article, traced like a web app of
//!   ours would be, so a trace shows the context reaching the site.

pub mod llm;
pub mod site;

/// Binds `addr` (from AUTOBOT_BIND or `--bind`) or exits with a message.
pub fn bind_address(default: &str) -> std::net::SocketAddr {
    let mut args = std::env::args().skip(1);
    let mut value = std::env::var("AUTOBOT_BIND").ok();
    while let Some(a) = args.next() {
        if a == "--bind" {
            value = args.next();
        }
    }
    let text = value.unwrap_or_else(|| default.to_owned());
    text.parse().unwrap_or_else(|e| {
        eprintln!("AUTOBOT_BIND/--bind={text:?} is not an address such as 127.0.0.1:8090: {e}");
        std::process::exit(2)
    })
}

pub use autobot_lifecycle::shutdown_signal;
