//! Finds the workspace's binaries next to the running test executable:
//! a test runs as `target/<profile>/deps/<test>-<hash>`, and `cargo build
//! --workspace --bins` puts binaries in `target/<profile>/`.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The path of the workspace binary `name` (e.g. `autobot-trace`), built in
/// the same target directory and profile as the running test.
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let mut searched = Vec::new();
    for dir in candidate_dirs(&exe) {
        let path = dir.join(&file);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path);
    }
    bail!(
        "binary {name} is not built (looked at {}); run `cargo build --workspace --bins` first",
        searched
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// AUTOBOT_BIN_DIR if set (a benchmark built in release running debug
/// services, say), then `target/debug/deps/x` → `target/debug`, then the
/// executable's own folder.
fn candidate_dirs(exe: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("AUTOBOT_BIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(own) = exe.parent() {
        if own.file_name().is_some_and(|n| n == "deps")
            && let Some(profile) = own.parent()
        {
            dirs.push(profile.to_path_buf());
        }
        dirs.push(own.to_path_buf());
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_in_the_profile_dir_above_deps() {
        let dirs = candidate_dirs(Path::new("/w/target/debug/deps/it-abc"));
        assert_eq!(
            dirs,
            [
                PathBuf::from("/w/target/debug"),
                PathBuf::from("/w/target/debug/deps")
            ]
        );
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let err = workspace_bin("no-such-autobot-binary")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo build --workspace --bins"), "{err}");
    }
}
