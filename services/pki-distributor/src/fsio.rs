//! File writes that survive a crash: write a temp file in the same
//! directory, fsync it, rename it over the target, fsync the directory.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A temp name beside `target` that no other writer picks.
pub fn temp_path_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()))
}

/// Creates `path` (must not exist) with `mode` from the first byte on,
/// writes `bytes` and fsyncs. The mode is set explicitly so the umask does
/// not change it.
pub fn write_new_synced(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `target` with `bytes` (mode `mode`) atomically: a reader sees the
/// old content or the new, never a mix; a failure leaves the old content.
pub fn replace_file(target: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = temp_path_for(target);
    let result = write_new_synced(&tmp, bytes, mode).and_then(|()| std::fs::rename(&tmp, target));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(target.parent().unwrap_or(Path::new(".")))
}

/// Creates `dir` (and parents) and makes it `mode`.
pub fn create_private_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(mode))
}
