//! Host key checks against an OpenSSH known_hosts file (AUTOBOT_SSH_KNOWN_HOSTS).
//!
//! Understood: plain, comma-separated, wildcard (`*`, `?`) and negated
//! (`!pattern`) host patterns, `[host]:port` for ports other than 22, hashed
//! entries (`|1|salt|hash`, HMAC-SHA1 as `ssh-keygen -H` writes them), and
//! `@revoked` lines. `@cert-authority` lines are ignored: host certificates
//! are not accepted. A host listed with other keys only is a MISMATCH, as
//! OpenSSH's StrictHostKeyChecking treats it; a host not listed is UNKNOWN.

use std::path::Path;

use russh::keys::PublicKey;
use russh::keys::ssh_encoding::base64::{Base64, Encoding};

/// What the file says about the key a server presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyVerdict {
    /// Listed for this host: connect.
    Trusted,
    /// The host is not in the file.
    Unknown,
    /// The host is listed, with other keys (`lines`: where, 1-based).
    Mismatch { lines: Vec<usize> },
    /// The key is marked `@revoked`.
    Revoked { line: usize },
    /// The file cannot be read.
    Unreadable(String),
}

impl HostKeyVerdict {
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Trusted)
    }
}

/// The name known_hosts uses for `host:port`.
pub fn host_pattern_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Checks `key` presented by `host:port` against the file at `path`.
pub fn check(path: &Path, host: &str, port: u16, key: &PublicKey) -> HostKeyVerdict {
    match std::fs::read_to_string(path) {
        Ok(text) => check_text(&text, host, port, key),
        Err(e) => HostKeyVerdict::Unreadable(format!("{}: {e}", path.display())),
    }
}

/// Checks against known_hosts content.
pub fn check_text(text: &str, host: &str, port: u16, key: &PublicKey) -> HostKeyVerdict {
    let name = host_pattern_name(host, port);
    let mut other_keys = Vec::new();
    let mut trusted = false;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = if first.starts_with('@') {
            let m = first;
            first = fields.next().unwrap_or_default();
            Some(m)
        } else {
            None
        };
        let (Some(key_type), Some(key_b64)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !hosts_match(first, &name) {
            continue;
        }
        let Ok(listed) = PublicKey::from_openssh(&format!("{key_type} {key_b64}")) else {
            continue; // a line we cannot parse vouches for nothing
        };
        let same = listed.key_data() == key.key_data();
        match marker {
            Some("@revoked") if same => return HostKeyVerdict::Revoked { line: line_no },
            Some(_) => {}
            None if same => trusted = true,
            None => other_keys.push(line_no),
        }
    }
    if trusted {
        HostKeyVerdict::Trusted
    } else if other_keys.is_empty() {
        HostKeyVerdict::Unknown
    } else {
        HostKeyVerdict::Mismatch { lines: other_keys }
    }
}

/// A comma-separated pattern list matches when some pattern matches and no
/// negated one does.
fn hosts_match(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated, name) {
                return false;
            }
        } else if pattern.starts_with("|1|") {
            matched |= hashed_match(pattern, name);
        } else if glob(pattern, name) {
            matched = true;
        }
    }
    matched
}

fn hashed_match(entry: &str, name: &str) -> bool {
    let mut parts = entry.split('|').skip(2);
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (Base64::decode_vec(salt), Base64::decode_vec(hash)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

/// OpenSSH's `match_pattern`: `*` any run, `?` one character; case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => rec(&p[1..], n) || (!n.is_empty() && rec(p, &n[1..])),
            (Some(b'?'), Some(_)) => rec(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => rec(&p[1..], &n[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6g/yn9bEQ06Zv8p1bqQ0nbtLBBdGn4LVYaQ6hBnzxn";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    #[test]
    fn a_listed_key_on_a_non_default_port_is_trusted() {
        let text = format!("# comment\n\n[127.0.0.1]:2222 {KEY_A}\n");
        assert_eq!(
            check_text(&text, "127.0.0.1", 2222, &key(KEY_A)),
            HostKeyVerdict::Trusted
        );
        // Port 22 is written without brackets; another port is another host.
        assert_eq!(
            check_text(&text, "127.0.0.1", 22, &key(KEY_A)),
            HostKeyVerdict::Unknown
        );
        let text = format!("vm2,172.16.168.22\t{KEY_A} root@vm2\n");
        assert_eq!(
            check_text(&text, "172.16.168.22", 22, &key(KEY_A)),
            HostKeyVerdict::Trusted
        );
    }

    #[test]
    fn another_key_for_the_host_is_a_mismatch_and_an_unlisted_host_unknown() {
        let text = format!("[127.0.0.1]:2222 {KEY_B}\nother {KEY_A}\n");
        assert_eq!(
            check_text(&text, "127.0.0.1", 2222, &key(KEY_A)),
            HostKeyVerdict::Mismatch { lines: vec![1] }
        );
        assert_eq!(
            check_text(&text, "10.0.0.1", 22, &key(KEY_A)),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn wildcards_negation_and_revocation() {
        let text = format!("172.16.168.*,!172.16.168.99 {KEY_A}\n@revoked * {KEY_B}\n");
        assert_eq!(
            check_text(&text, "172.16.168.22", 22, &key(KEY_A)),
            HostKeyVerdict::Trusted
        );
        assert_eq!(
            check_text(&text, "172.16.168.99", 22, &key(KEY_A)),
            HostKeyVerdict::Unknown
        );
        assert_eq!(
            check_text(&text, "172.16.168.22", 22, &key(KEY_B)),
            HostKeyVerdict::Revoked { line: 2 }
        );
    }

    #[test]
    fn hashed_entries_written_by_ssh_keygen_match() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, format!("[127.0.0.1]:2222 {KEY_A}\n")).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let hashed = std::fs::read_to_string(&file).unwrap();
        assert!(hashed.starts_with("|1|"), "{hashed}");
        assert_eq!(
            check(&file, "127.0.0.1", 2222, &key(KEY_A)),
            HostKeyVerdict::Trusted
        );
        assert_eq!(
            check(&file, "127.0.0.2", 2222, &key(KEY_A)),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn a_missing_file_is_unreadable() {
        assert!(matches!(
            check(Path::new("/nonexistent/known_hosts"), "h", 22, &key(KEY_A)),
            HostKeyVerdict::Unreadable(_)
        ));
    }
}
