//! When an AutoBot process stops: on SIGTERM (systemd, the local run, the
//! tests) or Ctrl-C. Every binary stops serving then, finishes the work in
//! hand, and shuts telemetry down so every span is flushed.
//!
//! [`env`] reads the settings every service takes from its environment;
//! [`http`] runs an HTTP service from start to flush and shapes its error
//! answers.

pub mod env;
pub mod http;

/// Resolves on SIGTERM or Ctrl-C, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, Ctrl-C still stops the process.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
