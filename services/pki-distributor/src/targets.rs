//! The VMs certificates go to, from the TOML file AUTOBOT_PKI_TARGETS.
//!
//! ```toml
//! [[targets]]
//! name = "npu-worker"          # ssh.target_vm, a DNS name in the certificate
//! host = "172.16.168.22"       # where SSH connects; IP or DNS name in the certificate
//! port = 22
//! user = "autobot"
//! cert_dir = "/etc/autobot/certs"
//! agent = "/usr/local/bin/autobot-pki-agent"
//! staging_dir = "/tmp"          # optional: where the files wait for the agent
//! ```

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use autobot_settings::SettingError;
use serde::Deserialize;

/// One VM.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default = "default_cert_dir")]
    pub cert_dir: String,
    #[serde(default = "default_agent")]
    pub agent: String,
    /// Parent of the per-run staging directory on the VM.
    #[serde(default = "default_staging_dir")]
    pub staging_dir: String,
}

fn default_port() -> u16 {
    22
}
fn default_user() -> String {
    "autobot".to_owned()
}
fn default_cert_dir() -> String {
    "/etc/autobot/certs".to_owned()
}
fn default_agent() -> String {
    "/usr/local/bin/autobot-pki-agent".to_owned()
}
fn default_staging_dir() -> String {
    "/tmp".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    #[serde(default)]
    targets: Vec<Target>,
}

/// The variable that names the targets file; its errors name it.
pub const TARGETS_VAR: &str = "AUTOBOT_PKI_TARGETS";

impl Target {
    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    fn check(&self) -> Result<(), String> {
        let t = &self.name;
        if !is_dns_name(&self.name) {
            return Err(format!(
                "target name {t:?} must be a DNS label sequence (letters, digits, '-', '.')"
            ));
        }
        if self.ip().is_none() && !is_dns_name(&self.host) {
            return Err(format!(
                "target {t}: host {:?} is neither an IP address nor a DNS name",
                self.host
            ));
        }
        if self.port == 0 {
            return Err(format!("target {t}: port 0"));
        }
        if self.user.is_empty()
            || self
                .user
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "target {t}: user {:?} is not a user name",
                self.user
            ));
        }
        // These three go into the command run by the target user's login
        // shell (sh, bash, zsh, fish, csh…): only bytes no shell treats
        // specially, so the command needs no quoting in any of them.
        for (field, value) in [
            ("cert_dir", &self.cert_dir),
            ("agent", &self.agent),
            ("staging_dir", &self.staging_dir),
        ] {
            if !is_shell_inert_path(value) {
                return Err(format!(
                    "target {t}: {field} {value:?} must be an absolute path of letters, digits and / . _ -"
                ));
            }
        }
        Ok(())
    }
}

/// An absolute path made only of `A-Z a-z 0-9 / . _ -`: a word that sh,
/// bash, zsh, fish and csh all take literally, unquoted.
pub fn is_shell_inert_path(s: &str) -> bool {
    s.starts_with('/')
        && s.len() <= 1024
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
}

pub(crate) fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Parses a targets file's text; `path` only names it in errors.
pub fn parse_targets(path: &Path, text: &str) -> Result<Vec<Target>, SettingError> {
    let invalid =
        |reason: String| SettingError::new(TARGETS_VAR, &path.display().to_string(), reason);
    let file: TargetsFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut seen = BTreeSet::new();
    for t in &file.targets {
        t.check().map_err(invalid)?;
        if !seen.insert(t.name.as_str()) {
            return Err(invalid(format!("target {:?} is listed twice", t.name)));
        }
    }
    Ok(file.targets)
}

/// Reads and checks the targets file.
pub fn load_targets(path: &Path) -> Result<Vec<Target>, SettingError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SettingError::new(
            TARGETS_VAR,
            &path.display().to_string(),
            format!("cannot read it: {e}"),
        )
    })?;
    parse_targets(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Target>, SettingError> {
        parse_targets(Path::new("/etc/t.toml"), text)
    }

    #[test]
    fn the_documented_example_parses() {
        let t = parse(
            r#"
[[targets]]
name = "npu-worker"
host = "172.16.168.22"
port = 22
user = "autobot"
cert_dir = "/etc/autobot/certs"
agent = "/usr/local/bin/autobot-pki-agent"

[[targets]]
name = "browser"
host = "vm5.autobot.internal"
port = 2222
"#,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name, "npu-worker");
        assert_eq!(t[0].ip(), Some("172.16.168.22".parse().unwrap()));
        assert_eq!(t[1].user, "autobot");
        assert_eq!(t[1].port, 2222);
        assert_eq!(t[1].ip(), None);
        assert_eq!(t[1].staging_dir, "/tmp");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, needle) in [
            ("[[targets]]\nname = \"a\"\n", "host"),
            ("[[targets]]\nname = \"a b\"\nhost = \"1.2.3.4\"\n", "a b"),
            (
                "[[targets]]\nname = \"a\"\nhost = \"1.2.3.4\"\nport = 0\n",
                "port 0",
            ),
            (
                "[[targets]]\nname = \"a\"\nhost = \"1.2.3.4\"\ncert_dir = \"certs\"\n",
                "cert_dir",
            ),
            (
                "[[targets]]\nname = \"a\"\nhost = \"1.2.3.4\"\ncolour = \"red\"\n",
                "colour",
            ),
            (
                "[[targets]]\nname = \"a\"\nhost = \"1.2.3.4\"\n[[targets]]\nname = \"a\"\nhost = \"1.2.3.5\"\n",
                "twice",
            ),
            (
                "[[targets]]\nname = \"a\"\nhost = \"bad host!\"\n",
                "bad host!",
            ),
            (
                "[[targets]]\nname = \"a\"\nhost = \"1.2.3.4\"\ncert_dir = \"/etc/my certs\"\n",
                "letters, digits",
            ),
            (
                "[[targets]]\nname = \"a\"\nhost = \"1.2.3.4\"\nagent = \"/bin/agent;id\"\n",
                "agent",
            ),
            (
                "[[targets]]\nname = \"a\"\nhost = \"1.2.3.4\"\nstaging_dir = \"/tmp/$HOME\"\n",
                "staging_dir",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.contains("AUTOBOT_PKI_TARGETS") && err.contains(needle),
                "{err}"
            );
        }
    }

    #[test]
    fn a_missing_file_names_the_variable() {
        let err = load_targets(Path::new("/nonexistent/targets.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AUTOBOT_PKI_TARGETS") && err.contains("/nonexistent/targets.toml"),
            "{err}"
        );
    }
}
