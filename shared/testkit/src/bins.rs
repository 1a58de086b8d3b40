//! Finds the workspace's binaries next to the running test executable:
//! `target/debug/deps/<test>` → `target/debug/<bin>`. Tests start services
//! as real processes; `scripts/test.sh` builds every binary first.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// The path of a workspace binary, or an error saying how to build it.
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("AUTOBOT_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        if path.is_file() {
            return Ok(path);
        }
        bail!("{name} is not in AUTOBOT_BIN_DIR ({})", path.display());
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test executable is not inside a cargo target dir")?;
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{name} is not built ({} is missing): run `cargo build --workspace --bins` first (scripts/test.sh does)",
            path.display()
        )
    }
}
