//! The TLS files read, checked, and read again when they change.
//!
//! A renewed certificate is picked up without a restart: the files are
//! checked (one `stat` each) at most every `check_every`, when a handshake
//! asks for them, and read again when one changed. A set that does not load
//! (a key that is not the certificate's, a file half written) leaves the
//! previous one in use; it is tried again at the next check and logged once.
//! Connections already open keep the certificate they were made with.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use autobot_settings::SettingError;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::UnixTime;

use crate::files::{FileStamp, PemFile, TlsFiles};

/// One loaded version of the files.
pub struct Material {
    identity: Option<Arc<CertifiedKey>>,
    server_verifier: Arc<WebPkiServerVerifier>,
    /// Checks clients (required, optional); only with a CA file.
    client_verifiers: Option<[Arc<dyn ClientCertVerifier>; 2]>,
}

impl std::fmt::Debug for Material {
    // The key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("identity", &self.identity.is_some())
            .field("checks_clients", &self.client_verifiers.is_some())
            .finish_non_exhaustive()
    }
}

impl Material {
    /// The certificate and key this process presents.
    pub fn identity(&self) -> Option<&Arc<CertifiedKey>> {
        self.identity.as_ref()
    }

    /// Checks a server's certificate against the CA (or the system's roots).
    pub fn server_verifier(&self) -> Arc<dyn ServerCertVerifier> {
        self.server_verifier.clone()
    }

    /// Checks a client's certificate against the CA; `required: false`
    /// lets a client without one through (and still checks one it sends).
    /// `None` without a CA file.
    pub fn client_verifier(&self, required: bool) -> Option<Arc<dyn ClientCertVerifier>> {
        self.client_verifiers
            .as_ref()
            .map(|[req, opt]| if required { req.clone() } else { opt.clone() })
    }

    fn load(files: &TlsFiles, check_identity: bool) -> Result<Self, SettingError> {
        let provider = crate::provider();
        let roots = match &files.ca {
            Some(ca) => Arc::new(ca_roots(ca)?),
            None => system_roots().map_err(|reason| match &files.identity {
                Some((cert, _)) => cert.error(reason),
                None => SettingError::withheld("SSL_CERT_FILE", reason),
            })?,
        };
        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| ca_error(files, format!("not usable to check servers: {e}")))?;
        let client_verifiers = match &files.ca {
            Some(ca) => {
                let builder =
                    || WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
                let required = builder()
                    .build()
                    .map_err(|e| ca.error(format!("not usable to check clients: {e}")))?;
                let optional = builder()
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| ca.error(format!("not usable to check clients: {e}")))?;
                Some([required, optional])
            }
            None => None,
        };
        let identity = match &files.identity {
            Some((cert, key)) => Some(Arc::new(certified_key(cert, key)?)),
            None => None,
        };
        let material = Self {
            identity,
            server_verifier,
            client_verifiers,
        };
        if check_identity {
            material.check_identity_chains(files)?;
        }
        Ok(material)
    }

    /// The certificate chains to the CA, is valid now and may be used by a
    /// client (every AutoBot certificate is both server and client): a
    /// service whose own certificate its peers would refuse stops at start.
    fn check_identity_chains(&self, files: &TlsFiles) -> Result<(), SettingError> {
        let (Some(identity), Some((cert_file, _)), Some([required, _])) =
            (&self.identity, &files.identity, &self.client_verifiers)
        else {
            return Ok(());
        };
        let Some((end_entity, intermediates)) = identity.cert.split_first() else {
            return Err(cert_file.error("no certificate in the file"));
        };
        let ca_var = files.ca.as_ref().map_or("the CA", |ca| ca.var);
        required
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| cert_file.error(format!("not accepted by {ca_var}: {e}")))
    }
}

fn ca_error(files: &TlsFiles, reason: String) -> SettingError {
    match &files.ca {
        Some(ca) => ca.error(reason),
        None => SettingError::withheld("SSL_CERT_FILE", reason),
    }
}

fn ca_roots(ca: &PemFile) -> Result<RootCertStore, SettingError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in ca.certificates()?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| ca.error(format!("certificate {} is not a usable CA: {e}", i + 1)))?;
    }
    Ok(roots)
}

/// The system's trust store, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "no CA file is named and the system trust store has no certificate (install ca-certificates, or name the CA file)"
                        .to_owned(),
                );
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

fn certified_key(cert: &PemFile, key: &PemFile) -> Result<CertifiedKey, SettingError> {
    let chain = cert.certificates()?;
    let key_der = key.private_key()?;
    CertifiedKey::from_der(chain, key_der, &crate::provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => key.error(format!(
            "the key does not belong to the certificate in {}",
            cert.var
        )),
        _ => key.error("not a private key TLS can use (ECDSA P-256/P-384, Ed25519 or RSA)"),
    })
}

/// The files and the version of them in use, re-read when they change.
pub struct TlsSource {
    files: TlsFiles,
    check_identity: bool,
    state: Mutex<State>,
}

struct State {
    material: Arc<Material>,
    stamps: Vec<Option<FileStamp>>,
    checked: Instant,
    /// The stamps of a changed set that did not load: logged once.
    refused: Option<Vec<Option<FileStamp>>>,
}

impl std::fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSource")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsSource {
    /// Reads and checks the files once; an error names the variable and the
    /// file. `check_identity`: the certificate must chain to the CA (a
    /// service's own files; an OTLP client certificate may come from
    /// another CA than the receiver's).
    pub fn load(files: TlsFiles, check_identity: bool) -> Result<Arc<Self>, SettingError> {
        let stamps = stamps(&files);
        let material = Arc::new(Material::load(&files, check_identity)?);
        Ok(Arc::new(Self {
            files,
            check_identity,
            state: Mutex::new(State {
                material,
                stamps,
                checked: Instant::now(),
                refused: None,
            }),
        }))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The version in use; the files are checked first when the last
    /// check is older than `check_every`.
    pub fn current(&self) -> Arc<Material> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= self.files.check_every {
            state.checked = Instant::now();
            self.reload_if_changed(&mut state);
        }
        state.material.clone()
    }

    fn reload_if_changed(&self, state: &mut State) {
        let now = stamps(&self.files);
        if now == state.stamps {
            return;
        }
        match Material::load(&self.files, self.check_identity) {
            Ok(material) => {
                state.material = Arc::new(material);
                state.stamps = now;
                state.refused = None;
                tracing::info!(
                    target: "autobot_tls",
                    files = %self.describe(),
                    "TLS files changed: the new certificate is used from the next connection"
                );
            }
            Err(e) => {
                if state.refused.as_ref() != Some(&now) {
                    tracing::warn!(
                        target: "autobot_tls",
                        error = %e,
                        "TLS files changed but cannot be used: the previous certificate stays in use (checked again every {:?})",
                        self.files.check_every
                    );
                    state.refused = Some(now);
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.files
            .all()
            .map(|f| format!("{}={}", f.var, f.path.display()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn stamps(files: &TlsFiles) -> Vec<Option<FileStamp>> {
    files.all().map(PemFile::stamp).collect()
}
