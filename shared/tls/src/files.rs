//! Which files make a process's TLS, read from the settings, and how each is
//! parsed. An error names the variable that set the file and the file's
//! path; it never quotes a key file's content.

use std::path::{Path, PathBuf};
use std::time::Duration;

use autobot_settings::{Env, SettingError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{DEFAULT_RELOAD_MS, TLS_CA_VAR, TLS_CERT_VAR, TLS_KEY_VAR, TLS_RELOAD_VAR};

/// A PEM file and the variable that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemFile {
    pub var: &'static str,
    pub path: PathBuf,
}

impl PemFile {
    pub fn new(var: &'static str, path: impl Into<PathBuf>) -> Self {
        Self {
            var,
            path: path.into(),
        }
    }

    /// The error for this file: `VAR="path" is not valid: reason`.
    pub(crate) fn error(&self, reason: impl Into<String>) -> SettingError {
        SettingError::new(self.var, &self.path.display().to_string(), reason)
    }

    fn read(&self) -> Result<Vec<u8>, SettingError> {
        std::fs::read(&self.path).map_err(|e| self.error(format!("cannot read the file: {e}")))
    }

    /// Every `CERTIFICATE` block, in order; at least one.
    pub(crate) fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, SettingError> {
        let bytes = self.read()?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(format!("not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(self.error("no CERTIFICATE block in the file"));
        }
        Ok(certs)
    }

    /// The first private key block. A parse error says only that: the
    /// parser's message can quote a line of the key.
    pub(crate) fn private_key(&self) -> Result<PrivateKeyDer<'static>, SettingError> {
        let bytes = self.read()?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
            self.error("no PEM private key in the file (PKCS#8, PKCS#1 or SEC1 expected)")
        })
    }

    /// What identifies the file's current version on disk (following
    /// symlinks: an install that swaps a link changes it too).
    pub(crate) fn stamp(&self) -> Option<FileStamp> {
        stamp(&self.path)
    }
}

/// Size, modification time and inode of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
    device: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: meta.ino(),
        device: meta.dev(),
    })
}

/// The files of one TLS configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA peers must chain to; `None`: the system's roots (a client of
    /// a public server only; a server needs a CA file to check clients).
    pub ca: Option<PemFile>,
    /// The certificate chain this process presents and its key; `None` for
    /// a client without a certificate.
    pub identity: Option<(PemFile, PemFile)>,
    /// How often the files are checked for a change.
    pub check_every: Duration,
}

impl TlsFiles {
    /// Every file, CA first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &PemFile> {
        self.ca
            .iter()
            .chain(self.identity.iter().flat_map(|(c, k)| [c, k]))
    }

    /// The variables that named the files, CA first.
    pub fn all_vars(&self) -> Vec<&'static str> {
        self.all().map(|f| f.var).collect()
    }
}

/// AUTOBOT_TLS_CERT, AUTOBOT_TLS_KEY and AUTOBOT_TLS_CA (and
/// AUTOBOT_TLS_RELOAD_MS): `None` when none of the three is set, an error
/// naming the one missing when only some are.
pub fn service_tls_files<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<TlsFiles>, SettingError> {
    let names = [TLS_CERT_VAR, TLS_KEY_VAR, TLS_CA_VAR];
    let values: Vec<Option<String>> = names.iter().map(|n| env.get(n)).collect();
    let check_every = env.millis(TLS_RELOAD_VAR, DEFAULT_RELOAD_MS)?;
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    if let Some(i) = values.iter().position(Option::is_none) {
        let set = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(" and ");
        return Err(SettingError::withheld(
            names[i],
            format!(
                "unset while {set} {} set: TLS needs the certificate, its key and the CA",
                if set.contains(" and ") { "are" } else { "is" }
            ),
        ));
    }
    let file = |i: usize| PemFile::new(names[i], values[i].clone().unwrap_or_default());
    Ok(Some(TlsFiles {
        ca: Some(file(2)),
        identity: Some((file(0), file(1))),
        check_every,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use autobot_settings::pairs;

    fn read(vars: &[(&str, &str)]) -> Result<Option<TlsFiles>, SettingError> {
        service_tls_files(&Env::new(pairs(vars)))
    }

    #[test]
    fn none_set_is_plain_http_and_all_three_is_tls() {
        assert_eq!(read(&[]).unwrap(), None);
        let files = read(&[
            ("AUTOBOT_TLS_CERT", "/c.pem"),
            ("AUTOBOT_TLS_KEY", "/k.pem"),
            ("AUTOBOT_TLS_CA", "/ca.pem"),
            ("AUTOBOT_TLS_RELOAD_MS", "250"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(files.ca, Some(PemFile::new("AUTOBOT_TLS_CA", "/ca.pem")));
        assert_eq!(
            files.identity,
            Some((
                PemFile::new("AUTOBOT_TLS_CERT", "/c.pem"),
                PemFile::new("AUTOBOT_TLS_KEY", "/k.pem")
            ))
        );
        assert_eq!(files.check_every, Duration::from_millis(250));
    }

    #[test]
    fn some_but_not_all_names_the_missing_one() {
        let e = read(&[
            ("AUTOBOT_TLS_CERT", "/c.pem"),
            ("AUTOBOT_TLS_CA", "/ca.pem"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "AUTOBOT_TLS_KEY is not valid: unset while AUTOBOT_TLS_CERT and AUTOBOT_TLS_CA are set: TLS needs the certificate, its key and the CA"
        );
        let e = read(&[("AUTOBOT_TLS_KEY", "/k.pem")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "AUTOBOT_TLS_CERT is not valid: unset while AUTOBOT_TLS_KEY is set: TLS needs the certificate, its key and the CA"
        );
        let e = read(&[("AUTOBOT_TLS_RELOAD_MS", "0")]).unwrap_err();
        assert_eq!(e.variable, "AUTOBOT_TLS_RELOAD_MS");
    }
}
