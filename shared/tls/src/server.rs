//! The server side: a rustls configuration made from a [`TlsSource`] (made
//! again when its files change) and an axum listener that completes the
//! TLS handshake before a connection reaches the HTTP server.
//!
//! A client whose certificate does not chain to the CA, or that sends none
//! where one is required, fails at the handshake: no byte of HTTP is read
//! from it. Handshakes run in tasks of their own, bounded in number and in
//! time, so a slow or silent client holds up no one else.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use rustls::sign::SingleCertAndKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::source::{Material, TlsSource};

/// Whether a client must present a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientCertificates {
    /// Every internal service: no certificate chaining to the CA, no connection.
    #[default]
    Required,
    /// The backend's public API: callers authenticate with their operator
    /// key; a certificate, when sent, must still chain to the CA.
    Optional,
}

/// Time a client has to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the TCP backlog.
pub const MAX_HANDSHAKES: usize = 256;

/// A server's TLS: the configuration of the files' current version.
pub struct ServerTls {
    source: Arc<TlsSource>,
    clients: ClientCertificates,
    /// The application protocols offered in ALPN: only those the server
    /// behind the listener speaks, or a client choosing another fails
    /// after the handshake.
    alpn: Vec<Vec<u8>>,
    built: Mutex<Option<(Arc<Material>, Arc<ServerConfig>)>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("source", &self.source)
            .field("clients", &self.clients)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Checks that a configuration can be made from the source now (it has
    /// a certificate and a CA file), so that a service fails at start.
    /// It offers h2 and http/1.1 (axum::serve speaks both; gRPC clients,
    /// such as the trace tool's receiver's, ask for h2).
    pub fn new(source: Arc<TlsSource>, clients: ClientCertificates) -> Result<Self, String> {
        Self::with_alpn(source, clients, &[b"h2", b"http/1.1"])
    }

    /// [`ServerTls::new`], offering only `alpn` (e.g. `[b"http/1.1"]` for
    /// a server that speaks HTTP/1 only).
    pub fn with_alpn(
        source: Arc<TlsSource>,
        clients: ClientCertificates,
        alpn: &[&[u8]],
    ) -> Result<Self, String> {
        let tls = Self {
            source,
            clients,
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
            built: Mutex::new(None),
        };
        tls.try_config()?;
        Ok(tls)
    }

    /// The configuration for the next handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        match self.try_config() {
            Ok(config) => config,
            // `new` built one from an earlier version: a version that
            // loads but cannot make a server was refused there too.
            Err(_) => self
                .built
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|(_, c)| c.clone())
                .expect("ServerTls::new built a configuration"),
        }
    }

    fn try_config(&self) -> Result<Arc<ServerConfig>, String> {
        let material = self.source.current();
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((m, config)) = built.as_ref()
            && Arc::ptr_eq(m, &material)
        {
            return Ok(config.clone());
        }
        let config = Arc::new(server_config(&material, self.clients, &self.alpn)?);
        *built = Some((material, config.clone()));
        Ok(config)
    }
}

fn server_config(
    material: &Material,
    clients: ClientCertificates,
    alpn: &[Vec<u8>],
) -> Result<ServerConfig, String> {
    let identity = material
        .identity()
        .ok_or("a TLS server needs a certificate and its key")?
        .clone();
    let verifier = material
        .client_verifier(clients == ClientCertificates::Required)
        .ok_or("a TLS server needs a CA file to check its clients")?;
    let mut config = ServerConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(identity)));
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

/// A listener for `axum::serve` that hands over connections whose TLS
/// handshake succeeded.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener` (in a task of its own, stopped when
    /// the listener is dropped).
    pub fn new(listener: TcpListener, tls: Arc<ServerTls>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (ready_tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(listener, tls, ready_tx));
        Ok(Self {
            local_addr,
            ready,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ends only when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let refusals = Arc::new(RefusalLog::default());
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, as axum does.
                tracing::warn!(target: "autobot_tls", error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A TLS record often goes out in two writes: no Nagle delay between them.
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.config());
        let ready = ready.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(permit);
            match outcome {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => refusals.note(peer, &e.to_string()),
                Err(_) => refusals.note(peer, "no handshake within 10 s"),
            }
        });
    }
}

/// Refused handshakes are logged, but at most one line per 10 s with the
/// count since the last: a scan of the port must not flood the log.
#[derive(Default)]
struct RefusalLog {
    since_last: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl RefusalLog {
    fn note(&self, peer: SocketAddr, reason: &str) {
        let count = self.since_last.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            return;
        }
        *last = Some(Instant::now());
        self.since_last.store(0, Ordering::Relaxed);
        tracing::warn!(
            target: "autobot_tls",
            %peer,
            reason,
            refused = count,
            "TLS handshake refused (logged at most every 10 s; `refused` counts since the last line)"
        );
    }
}
