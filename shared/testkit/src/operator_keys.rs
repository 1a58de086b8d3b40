//! Operator keys for tests of the backend's public API, made by the real
//! `autobot-backend keygen NAME ROLE` and written to a keys file, as an
//! operator does (docs/security.md).

use std::path::{Path, PathBuf};

use crate::process::Launch;

/// One key made by `keygen`: the secret a caller sends, and its name.
#[derive(Clone)]
pub struct OperatorKey {
    pub name: String,
    pub role: String,
    pub key: String,
}

// The key is a secret: never printed by a failing test.
impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorKey")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl OperatorKey {
    /// The `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.key)
    }
}

/// A keys file (`AUTOBOT_API_KEYS_FILE`) holding one line per key.
#[derive(Debug)]
pub struct OperatorKeys {
    pub file: PathBuf,
    pub keys: Vec<OperatorKey>,
}

impl OperatorKeys {
    /// Makes a key per `(name, role)` with the workspace's `autobot-backend
    /// keygen` and writes their lines to `dir/api-keys`.
    pub fn generate(dir: &Path, keys: &[(&str, &str)]) -> Self {
        let mut lines = String::from("# made by autobot-backend keygen for a test\n");
        let mut made = Vec::new();
        for (name, role) in keys {
            let out = Launch::workspace_bin("autobot-backend")
                .args(["keygen", name, role])
                .run();
            assert_eq!(out.code(), Some(0), "keygen {name} {role}: {}", out.stderr);
            // keygen prints: a comment, the key, a comment, the file's line.
            let printed: Vec<&str> = out
                .stdout
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .collect();
            let [key, line] = printed[..] else {
                panic!("keygen printed {} lines besides comments", printed.len());
            };
            lines.push_str(line);
            lines.push('\n');
            made.push(OperatorKey {
                name: (*name).to_owned(),
                role: (*role).to_owned(),
                key: key.to_owned(),
            });
        }
        let file = dir.join("api-keys");
        std::fs::write(&file, lines).expect("writing the keys file");
        Self { file, keys: made }
    }

    /// The key named `name`.
    pub fn key(&self, name: &str) -> &OperatorKey {
        self.keys
            .iter()
            .find(|k| k.name == name)
            .unwrap_or_else(|| panic!("no key named {name}"))
    }
}
