//! The one runner: what every AutoBot binary does from `main` to its exit
//! status, so that each behaves the same way at start, at stop and on
//! failure.
//!
//! Exit status: 0 after a clean stop; [`EXIT_BAD_SETTING`] (2) when a
//! setting (or a command line) cannot be used; [`EXIT_RUNTIME_FAILURE`] (1)
//! when something fails at run time (cannot listen, the server fails). Every
//! failure is ONE line on stderr, `{service}: {what}`; a bad setting is
//! found before telemetry starts logging, so that line is all there is.

use std::fmt::Display;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use autobot_settings::{BIND_VAR, DotEnvError, SettingError};
use autobot_tracing::{InitError, TracingConfig};
use axum::Router;
use tokio::sync::watch;

use crate::metrics::MetricsConfig;
use crate::shutdown_signal;
use crate::tls::{self, ClientCertificates};

/// Exit status of a process stopped by a failure at run time.
pub const EXIT_RUNTIME_FAILURE: u8 = 1;
/// Exit status of a process stopped by a setting or a command line it cannot use.
pub const EXIT_BAD_SETTING: u8 = 2;

/// A service's typed settings, read once at start.
pub trait ServiceConfig: Sized {
    /// Reads every setting through `lookup` (a map in tests), with
    /// `autobot_settings::Env`. A value that does not parse is an error
    /// naming the variable and the value.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError>;

    /// Where the HTTP API listens (AUTOBOT_BIND).
    fn bind(&self) -> SocketAddr;

    /// Reads every setting from the process environment (the runner loads
    /// `.env` first).
    fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(autobot_settings::process_lookup)
    }
}

/// Why a process stops before its work is done; its exit status follows.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A setting that cannot be used (exit status 2).
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The `.env` file cannot be read (exit status 2).
    #[error(transparent)]
    DotEnv(#[from] DotEnvError),
    /// A command line that cannot be acted on (exit status 2, as clap's).
    #[error("{0}")]
    Usage(String),
    /// A failure at run time: cannot listen, the server failed (exit status 1).
    #[error("{0}")]
    Runtime(String),
}

impl Failure {
    /// A failure at run time, described by `what`.
    pub fn runtime(what: impl Display) -> Self {
        Self::Runtime(what.to_string())
    }

    /// The exit status this failure ends the process with.
    pub fn exit_status(&self) -> u8 {
        match self {
            Self::Setting(_) | Self::DotEnv(_) | Self::Usage(_) => EXIT_BAD_SETTING,
            Self::Runtime(_) => EXIT_RUNTIME_FAILURE,
        }
    }
}

/// An HTTP client without a CA trust store: the process stops at start saying so.
impl From<autobot_tracing::http::ClientBuildError> for Failure {
    fn from(e: autobot_tracing::http::ClientBuildError) -> Self {
        Self::runtime(e)
    }
}

impl From<InitError> for Failure {
    fn from(e: InitError) -> Self {
        match e {
            InitError::Config(e) => Self::Setting(e),
            InitError::DotEnv(e) => Self::DotEnv(e),
            other => Self::runtime(format_args!("telemetry: {other}")),
        }
    }
}

/// A background worker: runs beside the HTTP server until the receiver it
/// is given turns `true`, then finishes the work in hand and returns.
type Worker = Box<dyn FnOnce(watch::Receiver<bool>) -> Pin<Box<dyn Future<Output = ()> + Send>>>;

/// What a service runs once started: its HTTP API and, where it has one, a
/// background worker (the npu-worker's job consumer).
pub struct Started {
    router: Router,
    worker: Option<Worker>,
}

impl Started {
    /// An HTTP API and nothing else.
    pub fn http(router: Router) -> Self {
        Self {
            router,
            worker: None,
        }
    }

    /// Adds the background worker. It gets a receiver that turns `true` on
    /// SIGTERM or Ctrl-C (or when the server fails); the process exits
    /// after it returns, so it finishes the work in hand first.
    pub fn with_worker<W, F>(mut self, worker: W) -> Self
    where
        W: FnOnce(watch::Receiver<bool>) -> F + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        self.worker = Some(Box::new(move |stop| Box::pin(worker(stop))));
        self
    }
}

/// A binary's name and version: service.name and service.version of its
/// spans, and the prefix of its lines on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    pub version: &'static str,
    /// With TLS on (AUTOBOT_TLS_*): whether a client must present a
    /// certificate chaining to the CA (every internal service) or may come
    /// without one (the backend's public API).
    pub client_certificates: ClientCertificates,
}

impl Service {
    pub const fn new(name: &'static str, version: &'static str) -> Self {
        Self {
            name,
            version,
            client_certificates: ClientCertificates::Required,
        }
    }

    /// See [`Service::client_certificates`](#structfield.client_certificates).
    pub const fn client_certificates(mut self, clients: ClientCertificates) -> Self {
        self.client_certificates = clients;
        self
    }

    /// Runs an HTTP service: settings, telemetry, `start(config)`, listen on
    /// the configured address, print `{name} listening on http://{addr}`
    /// (`https://` with TLS; the address really bound) as the one line on
    /// stdout that says it is ready, serve until SIGTERM or Ctrl-C, wait
    /// for the worker, flush.
    pub fn run<C, S, F>(self, start: S) -> ExitCode
    where
        C: ServiceConfig,
        S: FnOnce(C) -> F,
        F: Future<Output = Result<Started, Failure>>,
    {
        self.main(true, |config: C, runner: RunnerSettings| async move {
            let bind = config.bind();
            let tls = tls::server(runner.tls, self.client_certificates)?;
            let started = start(config).await?;
            serve(self.name, bind, started, runner.metrics, tls).await
        })
    }

    /// Runs one command to its end (a CLI run of a service binary, such as
    /// `autobot-pki-distributor distribute`), with the same settings,
    /// telemetry and exit statuses as [`Service::run`].
    pub fn run_command<C, R, F>(self, command: R) -> ExitCode
    where
        C: ServiceConfig,
        R: FnOnce(C) -> F,
        F: Future<Output = Result<(), Failure>>,
    {
        // A command listens nowhere: the TLS files are not read (the first
        // distribution runs before they exist).
        self.main(false, |config: C, _runner: RunnerSettings| command(config))
    }

    fn main<C, R, F>(self, listens: bool, body: R) -> ExitCode
    where
        C: ServiceConfig,
        R: FnOnce(C, RunnerSettings) -> F,
        F: Future<Output = Result<(), Failure>>,
    {
        // Everything is read before any thread exists (loading `.env` sets
        // variables) and before telemetry logs: a bad setting is one line.
        let settings = read_settings::<C>(listens);
        let (telemetry_config, config, runner) = match settings {
            Ok(settings) => settings,
            Err(e) => return self.fail(&e),
        };
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime,
            Err(e) => {
                return self.fail(&Failure::runtime(format_args!(
                    "cannot start the async runtime: {e}"
                )));
            }
        };
        runtime.block_on(async move {
            let telemetry =
                match autobot_tracing::init_with(self.name, self.version, telemetry_config) {
                    Ok(guard) => guard,
                    Err(e) => return self.fail(&e.into()),
                };
            runner.metrics.apply();
            let outcome = body(config, runner).await;
            // Every finished span is exported before the process ends.
            telemetry.shutdown().await;
            match outcome {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => self.fail(&e),
            }
        })
    }

    fn fail(&self, failure: &Failure) -> ExitCode {
        eprintln!("{}: {failure}", self.name);
        ExitCode::from(failure.exit_status())
    }
}

/// What the runner itself reads besides the service's configuration.
struct RunnerSettings {
    metrics: MetricsConfig,
    /// The TLS files of the listener (only for a service that listens).
    tls: Option<Arc<autobot_tls::TlsSource>>,
}

fn read_settings<C: ServiceConfig>(
    listens: bool,
) -> Result<(TracingConfig, C, RunnerSettings), Failure> {
    autobot_settings::load_dotenv()?;
    crate::limits::read_from_env()?;
    let telemetry = TracingConfig::from_env()?;
    let config = C::from_env()?;
    let metrics = MetricsConfig::from_env()?;
    let tls = if listens { tls::read_settings()? } else { None };
    Ok((telemetry, config, RunnerSettings { metrics, tls }))
}

async fn serve(
    name: &str,
    bind: SocketAddr,
    started: Started,
    metrics: MetricsConfig,
    tls: Option<Arc<autobot_tls::server::ServerTls>>,
) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| Failure::runtime(format_args!("cannot listen on {bind} ({BIND_VAR}): {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::runtime(format_args!("cannot read the address listened on: {e}")))?;
    match tls {
        None => {
            // Small answers go out at once (no Nagle delay).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            serve_on(name, listener, addr, "http", started, metrics).await
        }
        Some(tls) => {
            let listener = tls::listener(listener, tls)?;
            serve_on(name, listener, addr, "https", started, metrics).await
        }
    }
}

async fn serve_on<L>(
    name: &str,
    listener: L,
    addr: SocketAddr,
    scheme: &str,
    mut started: Started,
    metrics: MetricsConfig,
) -> Result<(), Failure>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let (stop, stopping) = watch::channel(false);
    let stop = Arc::new(stop);
    let metrics_server =
        crate::metrics::listen(name, &metrics, &mut started.router, stopping.clone()).await?;
    // Installed before the readiness line, so a SIGTERM sent right after it stops cleanly.
    let signal = shutdown_signal();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            signal.await;
            tracing::info!("stopping: finishing the requests and the work in hand");
            let _ = stop.send(true);
        }
    });
    // The readiness line: whoever started the process (a test, a script)
    // learns the port from it. A closed stdout is no reason to stop.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{name} listening on {scheme}://{addr}");
    let _ = stdout.flush();
    drop(stdout);
    tracing::info!("{name} listening on {scheme}://{addr}");

    let worker = started
        .worker
        .map(|worker| tokio::spawn(worker(stopping.clone())));
    let mut server_stopping = stopping;
    // Bounded: header-read timeout, connection cap (shared/lifecycle/src/limits.rs).
    let served = crate::limits::serve(listener, started.router, async move {
        let _ = server_stopping.wait_for(|stop| *stop).await;
    })
    .await;
    // A failed server stops the worker and the metrics listener too.
    let _ = stop.send(true);
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    let worker_ended = match worker {
        Some(worker) => worker.await,
        None => Ok(()),
    };
    served.map_err(|e| Failure::runtime(format_args!("the server failed: {e}")))?;
    worker_ended.map_err(|e| Failure::runtime(format_args!("the background worker failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_follow_the_kind_of_failure() {
        let setting = Failure::from(SettingError::new("AUTOBOT_BIND", "x", "bad"));
        assert_eq!(setting.exit_status(), 2);
        assert_eq!(Failure::Usage("unknown target".into()).exit_status(), 2);
        assert_eq!(Failure::runtime("cannot listen").exit_status(), 1);
        let telemetry = Failure::from(InitError::Config(SettingError::new(
            "AUTOBOT_TRACE_SAMPLE_RATE",
            "1.5",
            "expected a number from 0.0 to 1.0",
        )));
        assert_eq!(telemetry.exit_status(), 2);
        assert_eq!(
            telemetry.to_string(),
            "AUTOBOT_TRACE_SAMPLE_RATE=\"1.5\" is not valid: expected a number from 0.0 to 1.0"
        );
    }
}
