//! Certificates for tests of TLS: a CA of the test's own (rcgen, as the
//! pki-distributor's CA is made) and certificates it issues, written as PEM
//! files in a temporary directory, as the agent installs them on a VM.
//!
//! A test that needs "a certificate from another CA" makes a second
//! [`TestCa`]. Tests of the project's own CA (name constraints, the
//! distribution) use the pki-distributor itself.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A CA and the directory its files go to.
pub struct TestCa {
    dir: tempfile::TempDir,
    name: String,
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("name", &self.name)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// The files of one issued certificate: certificate, key, and the CA that issued it.
#[derive(Clone, Debug)]
pub struct TestIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TestIdentity {
    /// `AUTOBOT_TLS_CERT`, `AUTOBOT_TLS_KEY`, `AUTOBOT_TLS_CA` for a service.
    pub fn service_env(&self) -> [(&'static str, String); 3] {
        [
            ("AUTOBOT_TLS_CERT", self.cert.display().to_string()),
            ("AUTOBOT_TLS_KEY", self.key.display().to_string()),
            ("AUTOBOT_TLS_CA", self.ca.display().to_string()),
        ]
    }

    /// A reqwest client that presents this certificate and trusts only its CA.
    pub fn client(&self) -> reqwest::Client {
        let mut pem = std::fs::read(&self.cert).expect("the test certificate");
        pem.extend(std::fs::read(&self.key).expect("the test key"));
        let identity = reqwest::Identity::from_pem(&pem).expect("a PEM identity");
        client_trusting(&self.ca)
            .identity(identity)
            .build()
            .expect("a TLS client")
    }
}

/// A reqwest client that trusts only the CA in `ca_pem_file` and presents no certificate.
pub fn client_without_certificate(ca_pem_file: &Path) -> reqwest::Client {
    client_trusting(ca_pem_file).build().expect("a TLS client")
}

fn client_trusting(ca_pem_file: &Path) -> reqwest::ClientBuilder {
    let ca = std::fs::read(ca_pem_file).expect("the CA file");
    let ca = reqwest::Certificate::from_pem(&ca).expect("a PEM CA");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(std::time::Duration::from_secs(10))
}

impl TestCa {
    /// A new CA named `name` (its common name and the prefix of its files).
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("a CA certificate");
        let dir = tempfile::Builder::new()
            .prefix("autobot-test-pki-")
            .tempdir()
            .expect("a directory for the test PKI");
        let cert_pem = cert.pem();
        std::fs::write(dir.path().join(format!("{name}-ca.pem")), &cert_pem).expect("CA file");
        Self {
            dir,
            name: name.to_owned(),
            issuer: Issuer::new(params, key),
            cert_pem,
        }
    }

    /// The CA certificate's file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join(format!("{}-ca.pem", self.name))
    }

    pub fn ca_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for `name` with `sans` (IP addresses or DNS names),
    /// usable as server and client (as every AutoBot certificate is),
    /// written to `{name}-cert.pem` and `{name}-key.pem` (0600).
    pub fn issue(&self, name: &str, sans: &[&str]) -> TestIdentity {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*s).to_owned().try_into().expect("a DNS name")),
            })
            .collect();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("a certificate");
        let identity = TestIdentity {
            cert: self.dir.path().join(format!("{name}-cert.pem")),
            key: self.dir.path().join(format!("{name}-key.pem")),
            ca: self.ca_file(),
        };
        write_atomically(&identity.cert, cert.pem().as_bytes(), 0o644);
        write_atomically(&identity.key, key.serialize_pem().as_bytes(), 0o600);
        identity
    }

    /// A certificate for 127.0.0.1 and `localhost`, named `name`.
    pub fn issue_local(&self, name: &str) -> TestIdentity {
        self.issue(name, &["127.0.0.1", "localhost"])
    }
}

/// Written under a temp name and renamed, as the agent installs: a process
/// re-reading the file never sees half of it.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("a test PKI file");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).expect("its mode");
    std::fs::rename(&tmp, path).expect("renamed into place");
}
