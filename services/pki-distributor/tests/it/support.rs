//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use autobot_pki_distributor::ca::{CertificateAuthority, IssuedCertificate};
use autobot_pki_distributor::install::{StagedFiles, install_plan};
use autobot_pki_distributor::targets::{Target, parse_targets};

/// The agent binary from the target dir (or AUTOBOT_BIN_DIR), via testkit::bins.
pub fn agent_bin() -> PathBuf {
    autobot_testkit::bins::workspace_bin("autobot-pki-agent").unwrap()
}

/// The distributor binary, found the same way.
pub fn distributor_bin() -> PathBuf {
    autobot_testkit::bins::workspace_bin("autobot-pki-distributor").unwrap()
}

pub fn target(name: &str, host: &str) -> Target {
    parse_targets(
        Path::new("test.toml"),
        &format!("[[targets]]\nname = \"{name}\"\nhost = \"{host}\"\n"),
    )
    .unwrap()
    .remove(0)
}

pub fn new_ca(dir: &Path) -> CertificateAuthority {
    CertificateAuthority::load_or_create(dir, &Default::default()).unwrap()
}

/// Writes an issued set into `staging` the way the distributor uploads it.
pub fn stage(issued: &IssuedCertificate, staging: &Path) {
    std::fs::create_dir_all(staging).unwrap();
    let files = StagedFiles {
        ca_cert_pem: issued.ca_cert_pem.clone(),
        cert_pem: issued.cert_pem.clone(),
        key_pem: issued.key_pem.clone(),
    };
    for (name, bytes, mode) in install_plan(&files) {
        autobot_pki_distributor::fsio::write_new_synced(&staging.join(name), bytes, mode).unwrap();
    }
}

/// `openssl verify -CAfile ca-cert.pem server-cert.pem` in `dir`.
pub fn openssl_verify(dir: &Path) -> Result<(), String> {
    let out = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("ca-cert.pem"))
        .arg(dir.join("server-cert.pem"))
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The base64 lines of a PEM body: what would show if key text leaked.
pub fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}
