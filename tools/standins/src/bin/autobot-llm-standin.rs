//! autobot-llm-standin: a STAND-IN LLM server (Ollama and OpenAI wire
//! formats) for the local run when no real Ollama/OpenAI is configured. It
//! runs no model; its answers are computed from the prompt.
//! Usage: autobot-llm-standin [--bind ADDR] [--quiet]
//!   --bind: or AUTOBOT_BIND; default 127.0.0.1:11434
//!   --quiet: neither keep nor log the requests (benchmarks, bench/product.sh)

#[tokio::main]
async fn main() {
    let addr = autobot_standins::bind_address("127.0.0.1:11434");
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autobot-llm-standin: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "stand-in LLM server (NOT a model: answers are computed from the prompt) listening on {addr}"
    );
    let mut shared = autobot_standins::llm::Shared::new(autobot_standins::llm::Mode::Normal);
    if std::env::args().any(|a| a == "--quiet") {
        shared = shared.quiet();
    }
    let app = shared.router();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(autobot_standins::shutdown_signal())
        .await
    {
        eprintln!("autobot-llm-standin: {e}");
        std::process::exit(1);
    }
}
