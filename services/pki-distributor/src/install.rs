//! What `autobot-pki-agent install` does on a VM: verify the staged files
//! (the certificate chains to the staged CA, the key belongs to the
//! certificate), then swap them into the certificate directory so that a
//! failure at any point leaves the previous certificates in place.

use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use crate::ca::{
    CA_CERT_FILE, CertificateSummary, SERVER_CERT_FILE, SERVER_KEY_FILE, SecretPem,
    first_certificate_der, summarize_der,
};
use crate::fsio;

/// The three files, as staged by the distributor.
#[derive(Debug)]
pub struct StagedFiles {
    pub ca_cert_pem: String,
    pub cert_pem: String,
    pub key_pem: SecretPem,
}

/// Why an install did not happen. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot read staged file {path:?}: {source}")]
    Staging {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {reason}")]
    BadFile { file: &'static str, reason: String },
    #[error("the server certificate does not chain to the staged CA: {0}")]
    Chain(String),
    #[error("the private key does not belong to the server certificate")]
    KeyMismatch,
    #[error("the staging directory and the destination are the same ({0:?})")]
    SameDirectory(PathBuf),
    #[error("installing into {dest:?} failed, previous certificates kept: {source}")]
    Install {
        dest: PathBuf,
        source: std::io::Error,
    },
}

impl InstallError {
    /// The `error.type` of the `pki.install` span.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Staging { .. } => "staging_unreadable",
            Self::SameDirectory(_) => "bad_arguments",
            Self::BadFile { .. } => "invalid_file",
            Self::Chain(_) => "chain_invalid",
            Self::KeyMismatch => "key_mismatch",
            Self::Install { .. } => "install_failed",
        }
    }
}

/// Reads `ca-cert.pem`, `server-cert.pem` and `server-key.pem` from `staging`.
pub fn read_staging(staging: &Path) -> Result<StagedFiles, InstallError> {
    let read = |name: &str| {
        let path = staging.join(name);
        std::fs::read_to_string(&path).map_err(|source| InstallError::Staging { path, source })
    };
    Ok(StagedFiles {
        ca_cert_pem: read(CA_CERT_FILE)?,
        cert_pem: read(SERVER_CERT_FILE)?,
        key_pem: SecretPem::new(read(SERVER_KEY_FILE)?),
    })
}

/// Checks the chain (signature, validity now, serverAuth usage) with
/// rustls-webpki, and that the key's public half is the certificate's.
pub fn verify(staged: &StagedFiles) -> Result<CertificateSummary, InstallError> {
    let bad = |file: &'static str| {
        move |e: crate::ca::CaError| InstallError::BadFile {
            file,
            reason: e.to_string(),
        }
    };
    let ca_der = first_certificate_der(&staged.ca_cert_pem).map_err(bad(CA_CERT_FILE))?;
    let cert_der = first_certificate_der(&staged.cert_pem).map_err(bad(SERVER_CERT_FILE))?;
    let ca_der = CertificateDer::from(ca_der);
    let cert_der = CertificateDer::from(cert_der);

    let anchor = webpki::anchor_from_trusted_cert(&ca_der).map_err(|e| InstallError::BadFile {
        file: CA_CERT_FILE,
        reason: format!("not a usable CA certificate: {e}"),
    })?;
    let end_entity = EndEntityCert::try_from(&cert_der).map_err(|e| InstallError::BadFile {
        file: SERVER_CERT_FILE,
        reason: format!("not a usable certificate: {e}"),
    })?;
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            UnixTime::now(),
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| InstallError::Chain(format!("{e:?}")))?;

    // The key file is parsed but never echoed: a parse error says only that.
    let key =
        rcgen::KeyPair::from_pem(staged.key_pem.expose()).map_err(|_| InstallError::BadFile {
            file: SERVER_KEY_FILE,
            reason: "not a PEM private key rcgen can read (PKCS#8 ECDSA/Ed25519/RSA)".to_owned(),
        })?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&cert_der).map_err(|e| InstallError::BadFile {
            file: SERVER_CERT_FILE,
            reason: e.to_string(),
        })?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(InstallError::KeyMismatch);
    }
    summarize_der(&cert_der).map_err(bad(SERVER_CERT_FILE))
}

/// Mode of each installed file: certificates world-readable, the key not.
pub fn install_plan(staged: &StagedFiles) -> [(&'static str, &[u8], u32); 3] {
    [
        (CA_CERT_FILE, staged.ca_cert_pem.as_bytes(), 0o644),
        (SERVER_CERT_FILE, staged.cert_pem.as_bytes(), 0o644),
        (SERVER_KEY_FILE, staged.key_pem.expose().as_bytes(), 0o600),
    ]
}

/// Writes the three files into `dest` atomically as a set, as far as a
/// POSIX file system allows: every new file is written and fsynced under a
/// temp name first (a failure there changes nothing), then each is renamed
/// over its old version; if a rename fails, the ones already renamed are
/// put back from hard-link backups of the previous files.
pub fn install(staged: &StagedFiles, dest: &Path) -> Result<Vec<String>, InstallError> {
    let fail = |source| InstallError::Install {
        dest: dest.to_owned(),
        source,
    };
    if !dest.is_dir() {
        std::fs::create_dir_all(dest).map_err(fail)?;
    }
    let plan = install_plan(staged);

    let mut temps: Vec<PathBuf> = Vec::new();
    let cleanup = |paths: &[PathBuf]| {
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    };
    for (name, bytes, mode) in plan {
        let tmp = fsio::temp_path_for(&dest.join(name));
        if let Err(e) = fsio::write_new_synced(&tmp, bytes, mode) {
            cleanup(&temps);
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e));
        }
        temps.push(tmp);
    }

    // Backups of the current regular files, so a half-done swap can be undone.
    let mut backups: Vec<Option<PathBuf>> = Vec::new();
    for (name, _, _) in plan {
        let current = dest.join(name);
        let is_file = std::fs::symlink_metadata(&current).is_ok_and(|m| m.is_file());
        if is_file {
            let backup = dest.join(format!(".{name}.prev-{}", uuid::Uuid::new_v4().simple()));
            if let Err(e) = std::fs::hard_link(&current, &backup) {
                cleanup(&temps);
                cleanup(&backups.iter().flatten().cloned().collect::<Vec<_>>());
                return Err(fail(e));
            }
            backups.push(Some(backup));
        } else {
            backups.push(None);
        }
    }

    for (i, (name, _, _)) in plan.iter().enumerate() {
        if let Err(e) = std::fs::rename(&temps[i], dest.join(name)) {
            for (j, (done, _, _)) in plan.iter().enumerate().take(i) {
                let target = dest.join(done);
                match &backups[j] {
                    Some(b) => {
                        let _ = std::fs::rename(b, &target);
                    }
                    None => {
                        let _ = std::fs::remove_file(&target);
                    }
                }
            }
            cleanup(&temps[i..]);
            cleanup(&backups.iter().flatten().cloned().collect::<Vec<_>>());
            let _ = fsio::sync_dir(dest);
            return Err(fail(e));
        }
    }
    fsio::sync_dir(dest).map_err(fail)?;
    cleanup(&backups.into_iter().flatten().collect::<Vec<_>>());
    Ok(plan.iter().map(|(n, _, _)| (*n).to_owned()).collect())
}

/// Removes the staged files and their directory (nothing else in it).
pub fn remove_staging(staging: &Path) {
    for name in [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE] {
        let _ = std::fs::remove_file(staging.join(name));
    }
    let _ = std::fs::remove_dir(staging);
}

/// Read, verify, install; the staging directory is removed either way (it
/// holds a private key and is single-use).
pub fn install_from_staging(
    staging: &Path,
    dest: &Path,
) -> Result<(CertificateSummary, Vec<String>), InstallError> {
    // Removing the staging files afterwards would delete what was just installed.
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(staging, dest) {
        return Err(InstallError::SameDirectory(dest.to_owned()));
    }
    let outcome = read_staging(staging).and_then(|staged| {
        let summary = verify(&staged)?;
        let installed = install(&staged, dest)?;
        Ok((summary, installed))
    });
    remove_staging(staging);
    outcome
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::ca::{CertificateAuthority, IssuedCertificate};
    use crate::targets::{Target, parse_targets};

    fn target() -> Target {
        parse_targets(
            Path::new("t.toml"),
            "[[targets]]\nname = \"npu-worker\"\nhost = \"127.0.0.1\"\n",
        )
        .unwrap()
        .remove(0)
    }

    fn staged(issued: &IssuedCertificate) -> StagedFiles {
        StagedFiles {
            ca_cert_pem: issued.ca_cert_pem.clone(),
            cert_pem: issued.cert_pem.clone(),
            key_pem: issued.key_pem.clone(),
        }
    }

    fn new_ca() -> (tempfile::TempDir, CertificateAuthority) {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path(), &Default::default()).unwrap();
        (dir, ca)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub(crate) fn openssl_verify(dir: &Path) -> std::process::Output {
        std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(dir.join(CA_CERT_FILE))
            .arg(dir.join(SERVER_CERT_FILE))
            .output()
            .expect("openssl is installed by scripts/setup.d/10-apt.sh")
    }

    #[test]
    fn a_good_chain_is_installed_with_modes_openssl_accepts() {
        let (_ca_dir, ca) = new_ca();
        let issued = ca.issue(&target(), 365).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let summary = verify(&staged(&issued)).unwrap();
        assert_eq!(summary, issued.summary);
        let installed = install(&staged(&issued), dest.path()).unwrap();
        assert_eq!(installed, [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE]);
        assert_eq!(
            dir_entries(dest.path()),
            [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE]
        );
        assert_eq!(mode(&dest.path().join(CA_CERT_FILE)), 0o644);
        assert_eq!(mode(&dest.path().join(SERVER_CERT_FILE)), 0o644);
        assert_eq!(mode(&dest.path().join(SERVER_KEY_FILE)), 0o600);
        let out = openssl_verify(dest.path());
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(dest.path().join(SERVER_KEY_FILE)).unwrap(),
            issued.key_pem.expose()
        );
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused_and_nothing_changes() {
        let (_d1, ca) = new_ca();
        let (_d2, other) = new_ca();
        let dest = tempfile::tempdir().unwrap();
        install(&staged(&ca.issue(&target(), 365).unwrap()), dest.path()).unwrap();
        let before = std::fs::read(dest.path().join(SERVER_CERT_FILE)).unwrap();

        let foreign = other.issue(&target(), 365).unwrap();
        let mut files = staged(&foreign);
        files.ca_cert_pem = ca.cert_pem().to_owned();
        let err = verify(&files).unwrap_err();
        assert_eq!(err.error_type(), "chain_invalid", "{err}");
        assert_eq!(
            std::fs::read(dest.path().join(SERVER_CERT_FILE)).unwrap(),
            before
        );
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let (_d, ca) = new_ca();
        let first = ca.issue(&target(), 365).unwrap();
        let second = ca.issue(&target(), 365).unwrap();
        let mut files = staged(&first);
        files.key_pem = second.key_pem.clone();
        let err = verify(&files).unwrap_err();
        assert_eq!(err.error_type(), "key_mismatch");
        assert!(!err.to_string().contains("PRIVATE"), "{err}");
    }

    #[test]
    fn files_that_are_not_pem_are_refused_by_name() {
        let (_d, ca) = new_ca();
        let issued = ca.issue(&target(), 365).unwrap();
        let mut files = staged(&issued);
        files.cert_pem = "hello".to_owned();
        let err = verify(&files).unwrap_err();
        assert_eq!(err.error_type(), "invalid_file");
        assert!(err.to_string().contains(SERVER_CERT_FILE), "{err}");

        let mut files = staged(&issued);
        files.key_pem =
            SecretPem::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into());
        let err = verify(&files).unwrap_err();
        assert!(err.to_string().contains(SERVER_KEY_FILE), "{err}");
        assert!(
            !err.to_string().contains("AAAA"),
            "the key text is never echoed: {err}"
        );
    }

    #[test]
    fn a_failed_swap_puts_the_previous_certificates_back() {
        let (_d, ca) = new_ca();
        let dest = tempfile::tempdir().unwrap();
        let old = ca.issue(&target(), 365).unwrap();
        install(&staged(&old), dest.path()).unwrap();
        // The last rename (server-key.pem) cannot replace a directory.
        std::fs::remove_file(dest.path().join(SERVER_KEY_FILE)).unwrap();
        std::fs::create_dir(dest.path().join(SERVER_KEY_FILE)).unwrap();
        std::fs::write(dest.path().join(SERVER_KEY_FILE).join("x"), "x").unwrap();

        let new = ca.issue(&target(), 365).unwrap();
        let err = install(&staged(&new), dest.path()).unwrap_err();
        assert_eq!(err.error_type(), "install_failed");
        assert_eq!(
            std::fs::read_to_string(dest.path().join(SERVER_CERT_FILE)).unwrap(),
            old.cert_pem,
            "the certificate renamed before the failure was rolled back"
        );
        assert_eq!(
            dir_entries(dest.path()),
            [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE],
            "no temp or backup file is left behind"
        );
    }

    #[test]
    fn a_second_install_replaces_the_first_and_leaves_no_temp_files() {
        let (_d, ca) = new_ca();
        let dest = tempfile::tempdir().unwrap();
        let first = ca.issue(&target(), 365).unwrap();
        let second = ca.issue(&target(), 365).unwrap();
        install(&staged(&first), dest.path()).unwrap();
        install(&staged(&second), dest.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.path().join(SERVER_CERT_FILE)).unwrap(),
            second.cert_pem
        );
        assert_eq!(
            dir_entries(dest.path()),
            [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE]
        );
        assert!(openssl_verify(dest.path()).status.success());
    }

    #[test]
    fn install_from_staging_removes_the_staging_directory_either_way() {
        let (_d, ca) = new_ca();
        let issued = ca.issue(&target(), 365).unwrap();
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join("staging");
        let dest = root.path().join("certs");
        for (name, bytes, mode) in install_plan(&staged(&issued)) {
            std::fs::create_dir_all(&staging).unwrap();
            fsio::write_new_synced(&staging.join(name), bytes, mode).unwrap();
        }
        install_from_staging(&staging, &dest).unwrap();
        assert!(!staging.exists());
        assert!(openssl_verify(&dest).status.success());

        let err = install_from_staging(&staging, &dest).unwrap_err();
        assert_eq!(err.error_type(), "staging_unreadable");
    }

    #[test]
    fn staging_and_destination_must_differ() {
        let (_d, ca) = new_ca();
        let dir = tempfile::tempdir().unwrap();
        install(&staged(&ca.issue(&target(), 365).unwrap()), dir.path()).unwrap();
        let err = install_from_staging(dir.path(), &dir.path().join(".")).unwrap_err();
        assert_eq!(err.error_type(), "bad_arguments");
        assert_eq!(
            dir_entries(dir.path()),
            [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE]
        );
    }
}
