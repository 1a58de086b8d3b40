//! `autobot-trace serve`: OTLP in (gRPC and HTTP), Jaeger's query API and
//! the web UI (`crate::ui`) out.

use std::net::SocketAddr;
use std::sync::Arc;

use autobot_lifecycle::shutdown_signal;
use tokio::net::TcpListener;

use crate::store::Store;

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub query: SocketAddr,
    pub max_spans: usize,
    /// Web pages that may send spans from a browser to the OTLP/HTTP receiver.
    pub cors: autobot_otlp_receiver::CorsPolicy,
    /// Bytes of spans (as received) and index kept at most.
    pub max_bytes: usize,
    /// `--tls-cert`, `--tls-key`, `--tls-client-ca`: both OTLP listeners
    /// serve only TLS and require a client certificate chaining to the CA.
    pub otlp_tls: Option<autobot_tls::TlsFiles>,
    /// With `otlp_tls`: whether OTLP/HTTP also requires a client
    /// certificate (`--otlp-http-client-cert`); gRPC always does.
    pub otlp_http_client_certs: autobot_tls::server::ClientCertificates,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            otlp_grpc: ([127, 0, 0, 1], 4317).into(),
            otlp_http: ([127, 0, 0, 1], 4318).into(),
            query: ([127, 0, 0, 1], 16686).into(),
            max_spans: 200_000,
            cors: autobot_otlp_receiver::CorsPolicy::default(),
            max_bytes: crate::store::DEFAULT_MAX_BYTES,
            otlp_tls: None,
            otlp_http_client_certs: autobot_tls::server::ClientCertificates::Required,
        }
    }
}

/// The first line `serve` prints on stdout once every listener is bound;
/// tools that start it on port 0 read the real addresses from it.
pub const READY_PREFIX: &str = "autobot-trace ready";

/// A running `serve`: listeners bound, stops when dropped.
pub struct Server {
    pub store: Arc<Store>,
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub query: SocketAddr,
    receiver: autobot_otlp_receiver::RunningReceiver,
    query_task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds all three listeners (port 0 picks a free one) and starts serving.
    pub async fn start(config: &ServeConfig) -> std::io::Result<Self> {
        let store = Arc::new(Store::new(config.max_spans).with_max_bytes(config.max_bytes));
        let http_options = autobot_otlp_receiver::HttpOptions {
            cors: config.cors.clone(),
        };
        let tls = match &config.otlp_tls {
            Some(files) => Some(
                otlp_tls(files, config.otlp_http_client_certs).map_err(std::io::Error::other)?,
            ),
            None => None,
        };
        let receiver = autobot_otlp_receiver::start_with(
            store.clone(),
            config.otlp_grpc,
            config.otlp_http,
            http_options,
            tls,
        )
        .await?;
        let listener = TcpListener::bind(config.query).await?;
        let query = listener.local_addr()?;
        let app = crate::query::app(store.clone());
        let query_task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "query API stopped");
            }
        });
        Ok(Self {
            store,
            otlp_grpc: receiver.grpc_addr,
            otlp_http: receiver.http_addr,
            query,
            receiver,
            query_task,
        })
    }

    pub fn ready_line(&self) -> String {
        format!(
            "{READY_PREFIX} otlp-grpc={} otlp-http={} query={}",
            self.otlp_grpc, self.otlp_http, self.query
        )
    }

    pub async fn shutdown(self) {
        self.query_task.abort();
        self.receiver.shutdown().await;
    }
}

/// The OTLP listeners' TLS: the files read and checked (a bad one is named
/// with its flag), client certificates required on gRPC and, as `http_clients`
/// says, on HTTP.
fn otlp_tls(
    files: &autobot_tls::TlsFiles,
    http_clients: autobot_tls::server::ClientCertificates,
) -> Result<autobot_otlp_receiver::ReceiverTls, String> {
    use autobot_tls::server::{ClientCertificates, ServerTls};
    let source = autobot_tls::TlsSource::load(files.clone(), false).map_err(|e| e.to_string())?;
    Ok(autobot_otlp_receiver::ReceiverTls {
        grpc: Arc::new(ServerTls::new(
            source.clone(),
            ClientCertificates::Required,
        )?),
        http: Arc::new(ServerTls::new(source, http_clients)?),
    })
}

/// Runs until ctrl-c or SIGTERM.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let server = Server::start(&config).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot bind the listeners (otlp-grpc {}, otlp-http {}, query {}): {e}",
            config.otlp_grpc,
            config.otlp_http,
            config.query
        )
    })?;
    println!("{}", server.ready_line());
    tracing::info!(
        otlp_grpc = %server.otlp_grpc,
        otlp_http = %server.otlp_http,
        query = %server.query,
        max_spans = config.max_spans,
        cors_origins = ?config.cors.origins(),
        "serving: OTLP in, Jaeger query API and the web UI out"
    );
    shutdown_signal().await;
    let stats = server.store.stats();
    tracing::info!(
        traces = stats.traces,
        spans = stats.spans,
        evicted_traces = stats.evicted_traces,
        "stopping"
    );
    server.shutdown().await;
    Ok(())
}
