//! autobot-demo-site: a small traced web site for the local run and tests.
//! Usage: autobot-demo-site [--bind ADDR]   (or AUTOBOT_BIND; default 127.0.0.1:8090)

#[tokio::main]
async fn main() {
    let guard = match autobot_tracing::init("autobot-demo-site", env!("CARGO_PKG_VERSION")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("autobot-demo-site: {e}");
            std::process::exit(2);
        }
    };
    let addr = autobot_standins::bind_address("127.0.0.1:8090");
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autobot-demo-site: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);
    // The readiness line every service prints (shared/lifecycle/src/service.rs):
    // whoever started the site learns the bound port from it.
    println!("autobot-demo-site listening on http://{addr}");
    tracing::info!(%addr, "demo web site listening");
    let served = axum::serve(listener, autobot_standins::site::router())
        .with_graceful_shutdown(autobot_standins::shutdown_signal())
        .await;
    guard.shutdown().await;
    if let Err(e) = served {
        eprintln!("autobot-demo-site: {e}");
        std::process::exit(1);
    }
}
