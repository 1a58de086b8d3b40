//! The internal certificate authority (rcgen) and the server certificates it
//! issues, one per target.
//!
//! Layout of AUTOBOT_PKI_DIR:
//! - `ca/ca-cert.pem`, `ca/ca-key.pem` (0600, directory 0700): created once,
//!   atomically (a temp directory renamed into place, so two processes
//!   starting together end up with one CA);
//! - `issued/<target>/server-cert.pem` and `last-distribution.json`: what
//!   the last distribution installed. Server keys are never stored here:
//!   they exist in memory until they are uploaded.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::constraints::Permitted;
use crate::fsio;
use crate::targets::Target;

/// File names, the same on the distributor and on every VM.
pub const CA_CERT_FILE: &str = "ca-cert.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const SERVER_CERT_FILE: &str = "server-cert.pem";
pub const SERVER_KEY_FILE: &str = "server-key.pem";

/// CA lifetime: long, since rotating it means redistributing every VM.
const CA_VALIDITY_DAYS: i64 = 3650;

/// PEM text of a private key. Never printed: `Debug` and `Display` hide it.
#[derive(Clone)]
pub struct SecretPem(String);

impl SecretPem {
    pub fn new(pem: String) -> Self {
        Self(pem)
    }

    /// The PEM text, to write to a 0600 file or an SFTP upload only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPem(<redacted>)")
    }
}

/// Why the CA or a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA key {path:?} has mode {mode:o}: it must be readable by its owner only (chmod 600)")]
    KeyTooOpen { path: PathBuf, mode: u32 },
    #[error("{what}: {source}")]
    Rcgen {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("certificate: {0}")]
    Parse(String),
    #[error(
        "{name} is outside the CA's name constraints ({permitted}): a certificate for it would be refused; list it in AUTOBOT_PKI_CA_PERMITTED before the CA is made, or rotate the CA (docs/security.md)"
    )]
    OutsideConstraints { name: String, permitted: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_owned(),
        source,
    }
}

fn rcgen_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> CaError {
    move |source| CaError::Rcgen { what, source }
}

/// Fingerprint and expiry of a certificate, as operators compare them
/// (`openssl x509 -noout -fingerprint -sha256 -enddate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSummary {
    /// SHA-256 of the DER, upper-case hex pairs joined by ':'.
    pub fingerprint_sha256: String,
    /// RFC 3339.
    pub not_after: String,
    pub not_before: String,
}

/// What one target receives.
#[derive(Debug)]
pub struct IssuedCertificate {
    pub ca_cert_pem: String,
    pub cert_pem: String,
    pub key_pem: SecretPem,
    pub summary: CertificateSummary,
}

/// The CA: its certificate and the key that signs.
pub struct CertificateAuthority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    summary: CertificateSummary,
    /// Its name constraints; `None` for a CA made before they were written.
    permitted: Option<Permitted>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads the CA from `pki_dir/ca`, creating it on first use with name
    /// constraints permitting `permitted` (none when it is empty).
    pub fn load_or_create(pki_dir: &Path, permitted: &Permitted) -> Result<Self, CaError> {
        let ca_dir = pki_dir.join("ca");
        if !ca_dir.join(CA_KEY_FILE).exists() {
            create_ca(pki_dir, &ca_dir, permitted)?;
        }
        Self::load(&ca_dir)
    }

    fn load(ca_dir: &Path) -> Result<Self, CaError> {
        let key_path = ca_dir.join(CA_KEY_FILE);
        let cert_path = ca_dir.join(CA_CERT_FILE);
        let mode = std::fs::metadata(&key_path)
            .map_err(io_err(&key_path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(CaError::KeyTooOpen {
                path: key_path,
                mode,
            });
        }
        let key_pem = std::fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
        let key = KeyPair::from_pem(&key_pem).map_err(rcgen_err("CA key"))?;
        let summary = summarize_pem(&cert_pem)?;
        let permitted = Permitted::from_certificate(&first_certificate_der(&cert_pem)?)
            .map_err(|e| CaError::Parse(format!("the CA's name constraints: {e}")))?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(rcgen_err("CA certificate"))?;
        Ok(Self {
            cert_pem,
            issuer,
            summary,
            permitted,
        })
    }

    /// The names and subnets the CA may issue for; `None`: any (a CA made
    /// before name constraints were written: rotate it, docs/security.md).
    pub fn permitted(&self) -> Option<&Permitted> {
        self.permitted.as_ref()
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn summary(&self) -> &CertificateSummary {
        &self.summary
    }

    /// A fresh key and server certificate for `target`: SAN = its host (IP
    /// or DNS name) and its name; valid for `validity_days` from now.
    pub fn issue(&self, target: &Target, validity_days: u32) -> Result<IssuedCertificate, CaError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, target.name.as_str());
        dn.push(DnType::OrganizationName, "AutoBot");
        params.distinguished_name = dn;
        let mut sans = vec![match target.ip() {
            Some(ip) => SanType::IpAddress(ip),
            None => SanType::DnsName(
                target
                    .host
                    .clone()
                    .try_into()
                    .map_err(rcgen_err("host name"))?,
            ),
        }];
        if target.name != target.host {
            sans.push(SanType::DnsName(
                target
                    .name
                    .clone()
                    .try_into()
                    .map_err(rcgen_err("target name"))?,
            ));
        }
        self.check_constraints(&sans)?;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        // A few minutes back: VMs whose clocks lag still accept it at once.
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(validity_days.into());
        params.serial_number = Some(random_serial());

        let key = KeyPair::generate().map_err(rcgen_err("server key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_err("server certificate"))?;
        let cert_pem = cert.pem();
        Ok(IssuedCertificate {
            ca_cert_pem: self.cert_pem.clone(),
            summary: summarize_der(cert.der())?,
            cert_pem,
            key_pem: SecretPem(key.serialize_pem()),
        })
    }
}

impl CertificateAuthority {
    /// Every name must be within the CA's constraints: a certificate with
    /// one outside would be refused by every peer, so none is issued.
    fn check_constraints(&self, sans: &[SanType]) -> Result<(), CaError> {
        let Some(permitted) = &self.permitted else {
            return Ok(());
        };
        for san in sans {
            let (allowed, name) = match san {
                SanType::IpAddress(ip) => (permitted.allows_ip(*ip), ip.to_string()),
                SanType::DnsName(name) => (permitted.allows_dns(name.as_str()), name.to_string()),
                _ => continue,
            };
            if !allowed {
                return Err(CaError::OutsideConstraints {
                    name,
                    permitted: permitted.to_string(),
                });
            }
        }
        Ok(())
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f; // positive INTEGER
    bytes[0] |= 0x01; // and exactly 16 bytes long
    SerialNumber::from_slice(&bytes)
}

fn create_ca(pki_dir: &Path, ca_dir: &Path, permitted: &Permitted) -> Result<(), CaError> {
    fsio::create_private_dir(pki_dir, 0o700).map_err(io_err(pki_dir))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "AutoBot Internal CA");
    dn.push(DnType::OrganizationName, "AutoBot");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    if !permitted.is_empty() {
        params.name_constraints = Some(permitted.name_constraints());
    }
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    let key = KeyPair::generate().map_err(rcgen_err("CA key"))?;
    let cert = params
        .self_signed(&key)
        .map_err(rcgen_err("CA certificate"))?;

    let tmp = pki_dir.join(format!(".ca-tmp-{}", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
        fsio::write_new_synced(
            &tmp.join(CA_KEY_FILE),
            key.serialize_pem().as_bytes(),
            0o600,
        )?;
        fsio::write_new_synced(&tmp.join(CA_CERT_FILE), cert.pem().as_bytes(), 0o644)?;
        fsio::sync_dir(&tmp)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(io_err(&tmp)(e));
    }
    // rename(2) of a directory fails when the target exists and is not
    // empty: then another process made the CA first and we use theirs.
    match std::fs::rename(&tmp, ca_dir) {
        Ok(()) => {
            fsio::sync_dir(pki_dir).map_err(io_err(pki_dir))?;
            tracing::info!(ca_dir = %ca_dir.display(), permitted = %permitted, "created the AutoBot CA");
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            if !ca_dir.join(CA_KEY_FILE).exists() {
                return Err(io_err(ca_dir)(e));
            }
        }
    }
    Ok(())
}

/// Fingerprint and validity of the first certificate in `pem`.
pub fn summarize_pem(pem: &str) -> Result<CertificateSummary, CaError> {
    let der = first_certificate_der(pem)?;
    summarize_der(&der)
}

/// The DER of the first `CERTIFICATE` block in `pem`.
pub fn first_certificate_der(pem: &str) -> Result<Vec<u8>, CaError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| CaError::Parse(format!("not PEM: {e}")))?;
    if block.label != "CERTIFICATE" {
        return Err(CaError::Parse(format!(
            "PEM block is {:?}, not CERTIFICATE",
            block.label
        )));
    }
    Ok(block.contents)
}

/// Fingerprint and validity of a DER certificate.
pub fn summarize_der(der: &[u8]) -> Result<CertificateSummary, CaError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CaError::Parse(format!("not an X.509 certificate: {e}")))?;
    let rfc3339 = |t: x509_parser::time::ASN1Time| {
        t.to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| CaError::Parse(e.to_string()))
    };
    Ok(CertificateSummary {
        fingerprint_sha256: fingerprint_sha256(der),
        not_after: rfc3339(cert.validity().not_after)?,
        not_before: rfc3339(cert.validity().not_before)?,
    })
}

/// `AB:CD:…`, the way `openssl x509 -fingerprint -sha256` prints it.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, host: &str) -> Target {
        crate::targets::parse_targets(
            Path::new("t.toml"),
            &format!("[[targets]]\nname = \"{name}\"\nhost = \"{host}\"\n"),
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn the_ca_is_created_once_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let first = CertificateAuthority::load_or_create(&pki, &Permitted::default()).unwrap();
        let key = pki.join("ca").join(CA_KEY_FILE);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(pki.join("ca"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let second = CertificateAuthority::load_or_create(&pki, &Permitted::default()).unwrap();
        assert_eq!(
            first.cert_pem(),
            second.cert_pem(),
            "the CA is reused, not remade"
        );
        assert!(!format!("{first:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_ca_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path(), &Permitted::default()).unwrap();
        let key = dir.path().join("ca").join(CA_KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path(), &Permitted::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("644") && err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_server_certificate_names_the_host_and_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path(), &Permitted::default()).unwrap();
        let issued = ca
            .issue(&target("npu-worker", "172.16.168.22"), 30)
            .unwrap();
        let der = first_certificate_der(&issued.cert_pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        use x509_parser::extensions::GeneralName;
        let names = &san.general_names;
        assert!(
            names.contains(&GeneralName::IPAddress(&[172, 16, 168, 22])),
            "{names:?}"
        );
        assert!(
            names.contains(&GeneralName::DNSName("npu-worker")),
            "{names:?}"
        );
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
            / 86400;
        assert_eq!(
            days, 30,
            "validity from AUTOBOT_PKI_VALIDITY_DAYS (+5 min back-dating)"
        );
        assert_eq!(issued.summary.fingerprint_sha256.len(), 32 * 3 - 1);
        assert!(issued.key_pem.expose().contains("PRIVATE KEY"));
        assert!(
            !format!("{issued:?}").contains("PRIVATE KEY"),
            "Debug hides the key"
        );
    }

    #[test]
    fn openssl_verifies_the_issued_chain() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path(), &Permitted::default()).unwrap();
        let issued = ca
            .issue(&target("browser", "vm5.autobot.internal"), 365)
            .unwrap();
        let ca_path = dir.path().join("ca.pem");
        let cert_path = dir.path().join("cert.pem");
        std::fs::write(&ca_path, &issued.ca_cert_pem).unwrap();
        std::fs::write(&cert_path, &issued.cert_pem).unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "verify",
                "-purpose",
                "sslserver",
                "-verify_hostname",
                "vm5.autobot.internal",
                "-CAfile",
            ])
            .arg(&ca_path)
            .arg(&cert_path)
            .output()
            .expect("openssl is installed by scripts/setup.d/10-apt.sh");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
