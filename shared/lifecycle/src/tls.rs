//! TLS on a service's listener: with `AUTOBOT_TLS_CERT`, `AUTOBOT_TLS_KEY`
//! and `AUTOBOT_TLS_CA` set, the service serves only TLS, presents that
//! certificate, and takes only clients whose certificate chains to that CA
//! (the backend, whose public API operators call with keys, takes clients
//! without a certificate too: [`Service::client_certificates`]). Without
//! them it serves plain HTTP. A renewed certificate is used from the next
//! connection on (autobot-tls re-reads the files when they change).
//!
//! [`Service::client_certificates`]: crate::Service::client_certificates

use std::sync::Arc;

use autobot_settings::{Env, SettingError};
use autobot_tls::TlsSource;
pub use autobot_tls::server::ClientCertificates;
use autobot_tls::server::{ServerTls, TlsListener};

use crate::Failure;

/// The service's TLS files, read and checked with the other settings; a
/// file that cannot be used stops the process naming its variable.
pub(crate) fn read_settings() -> Result<Option<Arc<TlsSource>>, SettingError> {
    match autobot_tls::service_tls_files(&Env::process())? {
        Some(files) => TlsSource::load(files, true).map(Some),
        None => Ok(None),
    }
}

/// The server side over the files.
pub(crate) fn server(
    source: Option<Arc<TlsSource>>,
    clients: ClientCertificates,
) -> Result<Option<Arc<ServerTls>>, Failure> {
    source
        .map(|source| {
            // The runner serves HTTP/1 only (hyper's http1, limits.rs): a
            // client offered h2 in ALPN would take it and then fail.
            ServerTls::with_alpn(source, clients, &[b"http/1.1"])
                .map(Arc::new)
                .map_err(|e| Failure::runtime(format_args!("TLS: {e}")))
        })
        .transpose()
}

/// Hands `listener`'s connections over once their TLS handshake succeeded.
pub(crate) fn listener(
    listener: tokio::net::TcpListener,
    tls: Arc<ServerTls>,
) -> Result<TlsListener, Failure> {
    TlsListener::new(listener, tls)
        .map_err(|e| Failure::runtime(format_args!("cannot read the address listened on: {e}")))
}
