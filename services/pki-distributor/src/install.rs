//! What `autobot-pki-agent install` does on a VM: verify the staged files
//! (the certificate chains to the staged CA, the key belongs to the
//! certificate), then install them as ONE set: the new CA, certificate and
//! key appear together or not at all, whenever the process dies.
//!
//! The certificate directory (`CERT_DIR`, default `/etc/autobot/certs`):
//!
//! ```text
//! .install.lock                       flock: one installer at a time
//! releases/20250101T120000.123Z-1a2b3c4d/ one directory per install
//! current -> releases/20250101T120000.123Z-1a2b3c4d
//! ca-cert.pem     -> current/ca-cert.pem       the stable names services read
//! server-cert.pem -> current/server-cert.pem
//! server-key.pem  -> current/server-key.pem
//! ```
//!
//! An install writes and fsyncs a new release directory, then swaps
//! `current` with one rename(2) of a symlink: every stable name changes at
//! that instant, together. A directory from an older agent (the three names
//! as plain files) is first snapshotted into a release and each name turned
//! into its symlink, without any name changing content.

use std::fs::File;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use crate::ca::{
    CA_CERT_FILE, CertificateSummary, SERVER_CERT_FILE, SERVER_KEY_FILE, SecretPem,
    first_certificate_der, summarize_der,
};
use crate::fsio;
use crate::hooks::Hooks;

/// The release directories, inside the certificate directory.
pub const RELEASES_DIR: &str = "releases";
/// The symlink to the release in use.
pub const CURRENT_LINK: &str = "current";
/// The lock file every installer on the machine takes (flock, exclusive).
pub const LOCK_FILE: &str = ".install.lock";
/// Releases kept after a successful install: the current one and the two
/// before it (a service that read the previous set keeps its files).
pub const KEEP_RELEASES: usize = 3;
/// How long an install waits for another to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(20);
/// The three files of a set, in the order they are written.
pub const SET_FILES: [&str; 3] = [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE];

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
    #[error("another install into {dest:?} held the lock for {waited:?}; nothing changed")]
    Locked { dest: PathBuf, waited: Duration },
    #[error(
        "installing into {dest:?} failed ({source}) and putting the previous set back failed too ({rollback}); \
         {CURRENT_LINK} may point at the new release, both releases are kept: {kept:?}"
    )]
    RollbackFailed {
        dest: PathBuf,
        source: std::io::Error,
        rollback: std::io::Error,
        kept: Vec<PathBuf>,
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
            Self::Locked { .. } => "locked",
            Self::RollbackFailed { .. } => "rollback_failed",
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

/// Who may read the installed private key besides the agent's user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyAccess {
    /// The group the key is given to (mode 0640): the group the VM's
    /// services share (`AUTOBOT_PKI_KEY_GROUP`). None: 0600, the agent's only.
    pub group: Option<u32>,
}

/// Mode of each installed file: certificates world-readable, the key not.
pub fn install_plan(staged: &StagedFiles) -> [(&'static str, &[u8], u32); 3] {
    [
        (CA_CERT_FILE, staged.ca_cert_pem.as_bytes(), 0o644),
        (SERVER_CERT_FILE, staged.cert_pem.as_bytes(), 0o644),
        (SERVER_KEY_FILE, staged.key_pem.expose().as_bytes(), 0o600),
    ]
}

/// What an install put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The file names of the set.
    pub files: Vec<String>,
    /// The release directory's name (under `releases/`).
    pub release: String,
}

/// The exclusive flock on `dest/.install.lock`, held until dropped.
pub struct InstallLock {
    _file: File,
}

/// Takes the install lock of `dest`, waiting up to `wait` for another
/// installer to finish.
pub fn lock(dest: &Path, wait: Duration) -> Result<InstallLock, InstallError> {
    let path = dest.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| InstallError::Install {
            dest: dest.to_owned(),
            source,
        })?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(InstallLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(InstallError::Locked {
                    dest: dest.to_owned(),
                    waited: start.elapsed(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(InstallError::Install {
                    dest: dest.to_owned(),
                    source,
                });
            }
        }
    }
}

use std::os::unix::fs::OpenOptionsExt as _;

/// Installs the set into `dest` (see the module documentation), under the
/// install lock. Before the swap of `current` nothing a reader sees has
/// changed; the swap is one rename; if making it durable fails, `current`
/// is put back, and if THAT fails the error says so and every release is
/// kept. Old releases are pruned only after a complete success.
pub fn install(staged: &StagedFiles, dest: &Path) -> Result<Installed, InstallError> {
    install_with(staged, dest, KeyAccess::default(), &Hooks::none())
}

/// [`install`], stopping or failing where `hooks` says (the crash tests).
pub fn install_with(
    staged: &StagedFiles,
    dest: &Path,
    key_access: KeyAccess,
    hooks: &Hooks,
) -> Result<Installed, InstallError> {
    let fail = |source| InstallError::Install {
        dest: dest.to_owned(),
        source,
    };
    if !dest.is_dir() {
        std::fs::create_dir_all(dest).map_err(fail)?;
    }
    let _lock = lock(dest, LOCK_WAIT)?;
    hooks.at("lock").map_err(fail)?;
    let releases = dest.join(RELEASES_DIR);
    if !releases.is_dir() {
        std::fs::create_dir(&releases).map_err(fail)?;
        std::fs::set_permissions(&releases, std::fs::Permissions::from_mode(0o755))
            .map_err(fail)?;
    }
    migrate_plain_files(dest, hooks).map_err(fail)?;

    let release = release_name();
    let ready = write_release(staged, &releases, &release, key_access, hooks).map_err(fail)?;
    // Stable names that do not exist yet (a first install): symlinks into
    // `current`, dangling until the swap, which is "no set yet".
    for name in SET_FILES {
        ensure_stable_link(dest, name, hooks).map_err(|e| {
            remove_release(&ready);
            fail(e)
        })?;
    }
    let previous = current_release(dest);
    if let Err(e) = hooks
        .at("swap")
        .and_then(|()| point_current(dest, &release))
    {
        remove_release(&ready);
        return Err(fail(e));
    }
    if let Err(e) = hooks.at("sync").and_then(|()| fsio::sync_dir(dest)) {
        return Err(roll_back(dest, previous.as_deref(), &ready, e, hooks));
    }
    if let Err(e) = hooks.at("prune") {
        tracing::warn!(error = %e, "old releases not pruned");
    } else {
        prune(dest, &release);
    }
    Ok(Installed {
        files: SET_FILES.iter().map(|n| (*n).to_owned()).collect(),
        release,
    })
}

use std::os::unix::fs::PermissionsExt as _;

/// Puts `current` back at `previous` after `error`; the error to report.
fn roll_back(
    dest: &Path,
    previous: Option<&str>,
    new_release: &Path,
    error: io::Error,
    hooks: &Hooks,
) -> InstallError {
    let rolled_back = hooks.at("rollback").and_then(|()| match previous {
        Some(previous) => point_current(dest, previous).and_then(|()| fsio::sync_dir(dest)),
        None => std::fs::remove_file(dest.join(CURRENT_LINK)).and_then(|()| fsio::sync_dir(dest)),
    });
    match rolled_back {
        Ok(()) => {
            remove_release(new_release);
            InstallError::Install {
                dest: dest.to_owned(),
                source: error,
            }
        }
        Err(rollback) => {
            let mut kept = vec![new_release.to_owned()];
            if let Some(previous) = previous {
                kept.push(dest.join(RELEASES_DIR).join(previous));
            }
            tracing::error!(dest = %dest.display(), error = %error, rollback_error = %rollback, "rollback failed: every release is kept");
            InstallError::RollbackFailed {
                dest: dest.to_owned(),
                source: error,
                rollback,
                kept,
            }
        }
    }
}

/// `20250101T120000.123Z-1a2b3c4d`: sorts by time (UTC, to the
/// millisecond), unique.
fn release_name() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Writes the set into `releases/.tmp-NAME`, fsyncs it, renames it to
/// `releases/NAME`. A crash leaves at most a `.tmp-` directory nobody reads
/// (the next install prunes it).
fn write_release(
    staged: &StagedFiles,
    releases: &Path,
    name: &str,
    key_access: KeyAccess,
    hooks: &Hooks,
) -> io::Result<PathBuf> {
    let tmp = releases.join(format!(".tmp-{name}"));
    std::fs::create_dir(&tmp)?;
    let written = (|| {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        for (file, bytes, mode) in install_plan(staged) {
            hooks.at(&format!("write:{file}"))?;
            fsio::write_new_synced(&tmp.join(file), bytes, mode)?;
            if let (SERVER_KEY_FILE, Some(gid)) = (file, key_access.group) {
                share_key_with_group(&tmp.join(file), gid)?;
            }
        }
        fsio::sync_dir(&tmp)?;
        hooks.at("release")?;
        let ready = releases.join(name);
        std::fs::rename(&tmp, &ready)?;
        fsio::sync_dir(releases)?;
        Ok(ready)
    })();
    if written.is_err() {
        remove_release(&tmp);
    }
    written
}

/// Gives the key (written 0600) to group `gid`, then opens it to that
/// group (0640): it is never readable by a group it was not meant for.
fn share_key_with_group(key: &Path, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(key, None, Some(gid)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "giving {SERVER_KEY_FILE} to group {gid} (AUTOBOT_PKI_KEY_GROUP; the agent's user must be a member): {e}"
            ),
        )
    })?;
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o640))?;
    File::open(key)?.sync_all()
}

/// The gid of `group`: a number, or a name in `group_file` (/etc/group).
pub fn resolve_group(group: &str, group_file: &Path) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let text = std::fs::read_to_string(group_file)
        .map_err(|e| format!("cannot read {}: {e}", group_file.display()))?;
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse::<u32>().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .ok_or_else(|| format!("no group {group:?} in {}", group_file.display()))
}

/// The release `current` points at, by name.
pub fn current_release(dest: &Path) -> Option<String> {
    let target = std::fs::read_link(dest.join(CURRENT_LINK)).ok()?;
    let name = target.strip_prefix(RELEASES_DIR).ok()?;
    Some(name.to_str()?.to_owned())
}

/// Points `current` at `releases/NAME`: a new symlink renamed over the old
/// one (rename(2) replaces it atomically).
fn point_current(dest: &Path, name: &str) -> io::Result<()> {
    let tmp = fsio::temp_path_for(&dest.join(CURRENT_LINK));
    symlink(Path::new(RELEASES_DIR).join(name), &tmp)?;
    std::fs::rename(&tmp, dest.join(CURRENT_LINK)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// What the stable name `name` should be: `current/NAME`.
fn stable_target(name: &str) -> PathBuf {
    Path::new(CURRENT_LINK).join(name)
}

fn is_stable_link(dest: &Path, name: &str) -> bool {
    std::fs::read_link(dest.join(name)).is_ok_and(|t| t == stable_target(name))
}

/// Makes `dest/NAME` the symlink `current/NAME` if nothing is there yet.
fn ensure_stable_link(dest: &Path, name: &str, hooks: &Hooks) -> io::Result<()> {
    if std::fs::symlink_metadata(dest.join(name)).is_ok() {
        return Ok(());
    }
    replace_with_stable_link(dest, name, hooks)
}

/// Renames a fresh `current/NAME` symlink over `dest/NAME` (atomic: a
/// reader sees the old file or the link, never nothing).
fn replace_with_stable_link(dest: &Path, name: &str, hooks: &Hooks) -> io::Result<()> {
    hooks.at(&format!("link:{name}"))?;
    let target = dest.join(name);
    let tmp = fsio::temp_path_for(&target);
    symlink(stable_target(name), &tmp)?;
    std::fs::rename(&tmp, &target).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    fsio::sync_dir(dest)
}

/// A directory installed by an older agent holds the stable names as plain
/// files (or an operator pointed them elsewhere). Snapshot what each name
/// shows now into a release, point `current` at it, then turn each name
/// into its `current/NAME` symlink. No name changes content at any step, so
/// a crash anywhere leaves the same consistent set.
fn migrate_plain_files(dest: &Path, hooks: &Hooks) -> io::Result<()> {
    let plain: Vec<&str> = SET_FILES
        .into_iter()
        .filter(|name| {
            !is_stable_link(dest, name) && std::fs::symlink_metadata(dest.join(name)).is_ok()
        })
        .collect();
    if plain.is_empty() {
        return Ok(());
    }
    let releases = dest.join(RELEASES_DIR);
    let name = format!("{}-snapshot", release_name());
    let tmp = releases.join(format!(".tmp-{name}"));
    std::fs::create_dir(&tmp)?;
    let snapshot = (|| {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        for file in SET_FILES {
            let shown = dest.join(file);
            // What a reader of the stable name sees now.
            if std::fs::metadata(&shown).is_err() {
                continue;
            }
            let is_plain_file = std::fs::symlink_metadata(&shown).is_ok_and(|m| m.is_file());
            if is_plain_file {
                std::fs::hard_link(&shown, tmp.join(file))?;
            } else {
                let bytes = std::fs::read(&shown)?;
                let mode = if file == SERVER_KEY_FILE {
                    0o600
                } else {
                    0o644
                };
                fsio::write_new_synced(&tmp.join(file), &bytes, mode)?;
            }
        }
        fsio::sync_dir(&tmp)?;
        hooks.at("snapshot")?;
        std::fs::rename(&tmp, releases.join(&name))?;
        fsio::sync_dir(&releases)
    })();
    if let Err(e) = snapshot {
        remove_release(&tmp);
        return Err(e);
    }
    point_current(dest, &name)?;
    fsio::sync_dir(dest)?;
    for file in plain {
        replace_with_stable_link(dest, file, hooks)?;
    }
    Ok(())
}

/// Removes a release directory: the set's files, then the directory.
/// Anything else in it keeps it (and is logged).
fn remove_release(dir: &Path) {
    for name in SET_FILES {
        let _ = std::fs::remove_file(dir.join(name));
    }
    if let Err(e) = std::fs::remove_dir(dir)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(release = %dir.display(), error = %e, "cannot remove an old release");
    }
}

/// Keeps `current`'s release and the newest others up to
/// [`KEEP_RELEASES`]; removes the rest and what crashed installs left
/// (`.tmp-` releases, temp symlinks). Runs under the lock, after success.
fn prune(dest: &Path, current: &str) {
    let releases = dest.join(RELEASES_DIR);
    let Ok(entries) = std::fs::read_dir(&releases) else {
        return;
    };
    let mut finished: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            remove_release(&entry.path());
        } else if name != current && entry.file_type().is_ok_and(|t| t.is_dir()) {
            finished.push(name);
        }
    }
    finished.sort();
    let keep_others = KEEP_RELEASES.saturating_sub(1);
    let excess = finished.len().saturating_sub(keep_others);
    for name in &finished[..excess] {
        remove_release(&releases.join(name));
    }
    // Temp symlinks of a crashed swap (`.current.tmp-…`, `.server-key.pem.tmp-…`).
    if let Ok(entries) = std::fs::read_dir(dest) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = [
                CURRENT_LINK,
                CA_CERT_FILE,
                SERVER_CERT_FILE,
                SERVER_KEY_FILE,
            ]
            .iter()
            .any(|n| name.starts_with(&format!(".{n}.tmp-")));
            if ours && entry.file_type().is_ok_and(|t| t.is_symlink()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Removes the staged files and their directory (nothing else in it).
pub fn remove_staging(staging: &Path) {
    for name in [
        CA_CERT_FILE,
        SERVER_CERT_FILE,
        SERVER_KEY_FILE,
        autobot_tracing::env_carrier::CONTEXT_FILE,
    ] {
        let _ = std::fs::remove_file(staging.join(name));
    }
    let _ = std::fs::remove_dir(staging);
}

/// Read, verify, install; the staging directory is removed either way (it
/// holds a private key and is single-use).
pub fn install_from_staging(
    staging: &Path,
    dest: &Path,
    key_access: KeyAccess,
    hooks: &Hooks,
) -> Result<(CertificateSummary, Installed), InstallError> {
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
        let installed = install_with(&staged, dest, key_access, hooks)?;
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

    /// What the stable names show: the certificate's fingerprint, after
    /// checking that the three make one set (chain and key pair).
    fn shown_set(dest: &Path) -> String {
        let files = read_staging(dest).expect("the three stable names are readable");
        verify(&files)
            .expect("certificate, key and CA belong together")
            .fingerprint_sha256
    }

    fn releases(dest: &Path) -> Vec<String> {
        dir_entries(&dest.join(RELEASES_DIR))
    }

    const LAYOUT: [&str; 6] = [
        LOCK_FILE,
        CA_CERT_FILE,
        CURRENT_LINK,
        RELEASES_DIR,
        SERVER_CERT_FILE,
        SERVER_KEY_FILE,
    ];

    fn layout() -> Vec<String> {
        let mut v: Vec<String> = LAYOUT.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    /// The layout of an older agent: the three names as plain files.
    fn install_plain_files(issued: &IssuedCertificate, dest: &Path) {
        std::fs::create_dir_all(dest).unwrap();
        for (name, bytes, mode) in install_plan(&staged(issued)) {
            fsio::write_new_synced(&dest.join(name), bytes, mode).unwrap();
        }
    }

    #[test]
    fn a_good_chain_is_installed_as_a_release_behind_stable_names() {
        let (_ca_dir, ca) = new_ca();
        let issued = ca.issue(&target(), 365).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let summary = verify(&staged(&issued)).unwrap();
        assert_eq!(summary, issued.summary);
        let installed = install(&staged(&issued), dest.path()).unwrap();
        assert_eq!(installed.files, SET_FILES);
        assert_eq!(dir_entries(dest.path()), layout());
        assert_eq!(releases(dest.path()), vec![installed.release.clone()]);
        assert_eq!(
            current_release(dest.path()),
            Some(installed.release.clone())
        );
        for name in SET_FILES {
            assert_eq!(
                std::fs::read_link(dest.path().join(name)).unwrap(),
                Path::new("current").join(name)
            );
        }
        assert_eq!(mode(&dest.path().join(CA_CERT_FILE)), 0o644);
        assert_eq!(mode(&dest.path().join(SERVER_CERT_FILE)), 0o644);
        assert_eq!(mode(&dest.path().join(SERVER_KEY_FILE)), 0o600);
        assert_eq!(mode(&dest.path().join(LOCK_FILE)), 0o600);
        let out = openssl_verify(dest.path());
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(dest.path().join(SERVER_KEY_FILE)).unwrap(),
            issued.key_pem.expose()
        );
        assert_eq!(shown_set(dest.path()), issued.summary.fingerprint_sha256);
    }

    #[test]
    fn the_key_goes_to_the_key_group_0640_and_an_unknown_group_is_named() {
        use std::os::unix::fs::MetadataExt;
        let (_ca_dir, ca) = new_ca();
        let dest = tempfile::tempdir().unwrap();
        // A group this process is in (its own), as the agent is in autobot-tls.
        let gid = std::fs::metadata(dest.path()).unwrap().gid();
        let access = KeyAccess { group: Some(gid) };
        let issued = ca.issue(&target(), 365).unwrap();
        install_with(&staged(&issued), dest.path(), access, &Hooks::none()).unwrap();
        let key = std::fs::metadata(dest.path().join(SERVER_KEY_FILE)).unwrap();
        assert_eq!(key.mode() & 0o777, 0o640);
        assert_eq!(key.gid(), gid);
        assert_eq!(mode(&dest.path().join(SERVER_CERT_FILE)), 0o644);

        let groups = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            groups.path(),
            "root:x:0:\nautobot-tls:x:997:autobot-pki-agent,autobot-backend\n",
        )
        .unwrap();
        assert_eq!(resolve_group("autobot-tls", groups.path()), Ok(997));
        assert_eq!(resolve_group("42", groups.path()), Ok(42));
        let err = resolve_group("autobot-tl", groups.path()).unwrap_err();
        assert!(err.contains("no group \"autobot-tl\""), "{err}");
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

    /// Every step an install can fail at, migration steps included.
    const STEPS: [&str; 12] = [
        "lock",
        "snapshot",
        "link:ca-cert.pem",
        "link:server-cert.pem",
        "link:server-key.pem",
        "write:ca-cert.pem",
        "write:server-cert.pem",
        "write:server-key.pem",
        "release",
        "swap",
        "sync",
        "prune",
    ];

    #[test]
    fn a_failure_at_any_step_leaves_one_whole_set_and_the_next_install_completes() {
        let (_d, ca) = new_ca();
        for step in STEPS {
            for plain_before in [false, true] {
                let dest = tempfile::tempdir().unwrap();
                let old = ca.issue(&target(), 365).unwrap();
                if plain_before {
                    install_plain_files(&old, dest.path());
                } else {
                    install(&staged(&old), dest.path()).unwrap();
                }
                let new = ca.issue(&target(), 365).unwrap();
                let hooks = Hooks::parse(&format!("fail:{step}")).unwrap();
                let outcome =
                    install_with(&staged(&new), dest.path(), KeyAccess::default(), &hooks);
                let shown = shown_set(dest.path());
                // Migration steps only happen over plain files; a failed
                // prune is no failed install.
                let migration = step == "snapshot" || step.starts_with("link:");
                let fails = step != "prune" && (plain_before || !migration);
                match &outcome {
                    Ok(_) => {
                        assert!(!fails, "{step} did not fail");
                        assert_eq!(shown, new.summary.fingerprint_sha256, "{step}");
                    }
                    Err(e) => {
                        assert!(fails, "{step}: {e}");
                        assert_eq!(e.error_type(), "install_failed", "{step}: {e}");
                        assert_eq!(
                            shown, old.summary.fingerprint_sha256,
                            "{step} (plain files before: {plain_before}): the previous set stays"
                        );
                    }
                }
                install(&staged(&new), dest.path()).unwrap();
                assert_eq!(
                    shown_set(dest.path()),
                    new.summary.fingerprint_sha256,
                    "{step}"
                );
                assert_eq!(dir_entries(dest.path()), layout(), "{step}");
                assert!(
                    !releases(dest.path()).iter().any(|r| r.starts_with(".tmp-")),
                    "{step}: unfinished releases are pruned: {:?}",
                    releases(dest.path())
                );
            }
        }
    }

    #[test]
    fn a_failed_swap_is_rolled_back_and_a_failed_rollback_is_reported_keeping_every_release() {
        let (_d, ca) = new_ca();
        let dest = tempfile::tempdir().unwrap();
        let old = ca.issue(&target(), 365).unwrap();
        let first = install(&staged(&old), dest.path()).unwrap();

        let new = ca.issue(&target(), 365).unwrap();
        let err = install_with(
            &staged(&new),
            dest.path(),
            KeyAccess::default(),
            &Hooks::parse("fail:sync").unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.error_type(), "install_failed", "{err}");
        assert_eq!(current_release(dest.path()), Some(first.release.clone()));
        assert_eq!(releases(dest.path()), vec![first.release.clone()]);
        assert_eq!(shown_set(dest.path()), old.summary.fingerprint_sha256);

        let err = install_with(
            &staged(&new),
            dest.path(),
            KeyAccess::default(),
            &Hooks::parse("fail:sync,fail:rollback").unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.error_type(), "rollback_failed", "{err}");
        let text = err.to_string();
        assert!(text.contains("test hook: failing at sync"), "{text}");
        assert!(text.contains("test hook: failing at rollback"), "{text}");
        // Both sets are kept, whole; what `current` shows is one of them.
        let kept = releases(dest.path());
        assert_eq!(kept.len(), 2, "{kept:?}");
        for release in &kept {
            shown_set(&dest.path().join(RELEASES_DIR).join(release));
        }
        shown_set(dest.path());
    }

    #[test]
    fn plain_files_of_an_older_agent_become_a_release_without_changing_content() {
        let (_d, ca) = new_ca();
        let dest = tempfile::tempdir().unwrap();
        let old = ca.issue(&target(), 365).unwrap();
        install_plain_files(&old, dest.path());
        // The key rename of the migration fails: the names still show the old set.
        let new = ca.issue(&target(), 365).unwrap();
        let err = install_with(
            &staged(&new),
            dest.path(),
            KeyAccess::default(),
            &Hooks::parse("fail:link:server-key.pem").unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.error_type(), "install_failed");
        assert!(
            std::fs::symlink_metadata(dest.path().join(SERVER_KEY_FILE))
                .unwrap()
                .is_file()
        );
        assert!(
            std::fs::symlink_metadata(dest.path().join(SERVER_CERT_FILE))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(shown_set(dest.path()), old.summary.fingerprint_sha256);

        install(&staged(&new), dest.path()).unwrap();
        assert_eq!(shown_set(dest.path()), new.summary.fingerprint_sha256);
        assert_eq!(dir_entries(dest.path()), layout());
        let kept = releases(dest.path());
        assert!(kept.iter().any(|r| r.ends_with("-snapshot")), "{kept:?}");
        let snapshot = kept.iter().find(|r| r.ends_with("-snapshot")).unwrap();
        assert_eq!(
            shown_set(&dest.path().join(RELEASES_DIR).join(snapshot)),
            old.summary.fingerprint_sha256,
            "the older agent's set is kept as a release"
        );
    }

    #[test]
    fn old_releases_are_pruned_to_the_last_three() {
        let (_d, ca) = new_ca();
        let dest = tempfile::tempdir().unwrap();
        let mut names = Vec::new();
        for _ in 0..5 {
            let issued = ca.issue(&target(), 365).unwrap();
            names.push(install(&staged(&issued), dest.path()).unwrap().release);
            // Release names sort by the millisecond they were made in.
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(releases(dest.path()), names[2..].to_vec());
        assert_eq!(
            current_release(dest.path()).as_deref(),
            Some(names[4].as_str())
        );
        assert!(openssl_verify(dest.path()).status.success());
    }

    #[test]
    fn an_install_waits_for_the_lock_and_gives_up_naming_it() {
        let dest = tempfile::tempdir().unwrap();
        let held = lock(dest.path(), Duration::ZERO).unwrap();
        let err = lock(dest.path(), Duration::from_millis(200)).err().unwrap();
        assert_eq!(err.error_type(), "locked", "{err}");
        drop(held);
        lock(dest.path(), Duration::ZERO).unwrap();
    }

    #[test]
    fn install_from_staging_removes_the_staging_directory_either_way() {
        let (_d, ca) = new_ca();
        let issued = ca.issue(&target(), 365).unwrap();
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join("staging");
        let dest = root.path().join("certs");
        std::fs::create_dir_all(&staging).unwrap();
        for (name, bytes, mode) in install_plan(&staged(&issued)) {
            fsio::write_new_synced(&staging.join(name), bytes, mode).unwrap();
        }
        std::fs::write(
            staging.join(autobot_tracing::env_carrier::CONTEXT_FILE),
            "{}",
        )
        .unwrap();
        install_from_staging(&staging, &dest, KeyAccess::default(), &Hooks::none()).unwrap();
        assert!(!staging.exists());
        assert!(openssl_verify(&dest).status.success());

        let err = install_from_staging(&staging, &dest, KeyAccess::default(), &Hooks::none())
            .unwrap_err();
        assert_eq!(err.error_type(), "staging_unreadable");
    }

    #[test]
    fn staging_and_destination_must_differ() {
        let (_d, ca) = new_ca();
        let dir = tempfile::tempdir().unwrap();
        install_plain_files(&ca.issue(&target(), 365).unwrap(), dir.path());
        let err = install_from_staging(
            dir.path(),
            &dir.path().join("."),
            KeyAccess::default(),
            &Hooks::none(),
        )
        .unwrap_err();
        assert_eq!(err.error_type(), "bad_arguments");
        assert_eq!(
            dir_entries(dir.path()),
            [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE]
        );
    }
}
