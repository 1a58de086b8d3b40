//! # autobot-tls
//!
//! TLS for AutoBot's services, with the certificates the pki-distributor
//! issues and its agent installs on every VM (docs/security.md):
//!
//! - [`TlsFiles`]: which PEM files make a process's TLS identity (its
//!   certificate and key) and its trust (the CA), each named by the variable
//!   that set it, so that an error names the variable;
//! - [`TlsSource`]: those files read and checked (the key belongs to the
//!   certificate, the CA parses), and read again when they change on disk:
//!   a renewed certificate is used for the next handshake, without a restart;
//! - [`server::ServerTls`] and [`server::TlsListener`]: a rustls server that
//!   requires (or, for the public backend, accepts) a client certificate
//!   chaining to the CA, and an axum listener over it;
//! - [`client::client_config`]: a rustls client that presents the
//!   certificate and trusts only the CA (or the system's roots when no CA
//!   file is named).
//!
//! One crypto provider for all of it: aws-lc-rs, the one reqwest already
//! uses ([`provider`]).

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

pub mod client;
mod files;
pub mod server;
mod source;

pub use files::{PemFile, TlsFiles, service_tls_files};
pub use source::{Material, TlsSource};

/// The certificate (chain) this process presents, PEM.
pub const TLS_CERT_VAR: &str = "AUTOBOT_TLS_CERT";
/// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
pub const TLS_KEY_VAR: &str = "AUTOBOT_TLS_KEY";
/// The CA certificate(s) peers must chain to, PEM.
pub const TLS_CA_VAR: &str = "AUTOBOT_TLS_CA";
/// How often the files are checked for a change, in milliseconds.
pub const TLS_RELOAD_VAR: &str = "AUTOBOT_TLS_RELOAD_MS";
/// The default of [`TLS_RELOAD_VAR`].
pub const DEFAULT_RELOAD_MS: u64 = 10_000;

/// The crypto provider of every TLS configuration made here (aws-lc-rs).
/// The first call also installs it as the process default, for libraries
/// that build their own configuration with `ClientConfig::builder()` (the
/// redis crate's `rediss://`): with both of rustls's providers compiled in
/// (the tree has ring and aws-lc-rs), rustls cannot pick one by itself.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let provider = rustls::crypto::aws_lc_rs::default_provider();
            // Another part of the process may have installed one first: keep it.
            let _ = provider.clone().install_default();
            Arc::new(provider)
        })
        .clone()
}
