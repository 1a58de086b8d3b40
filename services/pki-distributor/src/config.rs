//! Typed configuration, parsed once from the environment. A value that does
//! not parse is an error naming the variable and the value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError, whole_number_in};

/// Default listen address: the distributor's port on the main VM.
pub const DEFAULT_BIND: &str = "0.0.0.0:8002";

/// Everything the distributor reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// AUTOBOT_BIND
    pub bind: SocketAddr,
    /// AUTOBOT_PKI_DIR: the CA (key 0600) and the certificates issued.
    pub pki_dir: PathBuf,
    /// AUTOBOT_PKI_VALIDITY_DAYS: lifetime of each server certificate.
    pub validity_days: u32,
    /// AUTOBOT_PKI_TARGETS: the TOML file listing the VMs.
    pub targets_file: PathBuf,
    /// AUTOBOT_SSH_KEY: private key used to log in to every target.
    pub ssh_key: PathBuf,
    /// AUTOBOT_SSH_KNOWN_HOSTS: OpenSSH known_hosts the host keys must match.
    pub known_hosts: PathBuf,
    /// AUTOBOT_PKI_PARALLELISM: targets served at the same time.
    pub parallelism: usize,
    /// AUTOBOT_SSH_TIMEOUT_SECS: bound of each SSH step (connect, upload, exec).
    pub ssh_timeout: Duration,
    /// AUTOBOT_PKI_CA_PERMITTED: the name constraints of a CA made from now
    /// on; `None`: the targets' subnets and names (crate::constraints).
    pub ca_permitted: Option<crate::constraints::Permitted>,
}

impl ServiceConfig for Config {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        let home = env.raw("HOME").unwrap_or_else(|| "/root".to_owned());
        let path = |name: &'static str, default: &str| {
            env.parse_or_with(name, default, |v| {
                let p = PathBuf::from(v);
                if p.is_relative() {
                    return Err("must be an absolute path".to_owned());
                }
                Ok(p)
            })
        };
        Ok(Self {
            bind: env.bind(DEFAULT_BIND)?,
            validity_days: env
                .parse_with("AUTOBOT_PKI_VALIDITY_DAYS", |v| whole_number_in(v, 1, 3650))?
                .unwrap_or(365),
            parallelism: env
                .parse_with("AUTOBOT_PKI_PARALLELISM", |v| whole_number_in(v, 1, 256))?
                .unwrap_or(8),
            ssh_timeout: Duration::from_secs(
                env.parse_with("AUTOBOT_SSH_TIMEOUT_SECS", |v| whole_number_in(v, 1, 3600))?
                    .unwrap_or(30),
            ),
            pki_dir: path("AUTOBOT_PKI_DIR", "/var/lib/autobot/pki")?,
            targets_file: path("AUTOBOT_PKI_TARGETS", "/etc/autobot/pki-targets.toml")?,
            ssh_key: path("AUTOBOT_SSH_KEY", &format!("{home}/.ssh/id_ed25519"))?,
            known_hosts: path(
                "AUTOBOT_SSH_KNOWN_HOSTS",
                &format!("{home}/.ssh/known_hosts"),
            )?,
            ca_permitted: env.parse_with(
                crate::constraints::PERMITTED_VAR,
                crate::constraints::Permitted::parse,
            )?,
        })
    }

    fn bind(&self) -> SocketAddr {
        self.bind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autobot_settings::checks::{assert_error_texts, assert_refused};
    use autobot_settings::pairs;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, SettingError> {
        Config::from_lookup(pairs(vars))
    }

    #[test]
    fn defaults() {
        let c = cfg(&[("HOME", "/home/autobot")]).unwrap();
        assert_eq!(c.bind.to_string(), "0.0.0.0:8002");
        assert_eq!(c.validity_days, 365);
        assert_eq!(c.ssh_key, PathBuf::from("/home/autobot/.ssh/id_ed25519"));
        assert_eq!(
            c.known_hosts,
            PathBuf::from("/home/autobot/.ssh/known_hosts")
        );
        assert_eq!(c.parallelism, 8);
    }

    #[test]
    fn values_are_read() {
        let c = cfg(&[
            ("AUTOBOT_BIND", "127.0.0.1:9000"),
            ("AUTOBOT_PKI_DIR", "/srv/pki"),
            ("AUTOBOT_PKI_VALIDITY_DAYS", "30"),
            ("AUTOBOT_PKI_TARGETS", "/srv/targets.toml"),
            ("AUTOBOT_SSH_KEY", "/srv/key"),
            ("AUTOBOT_SSH_KNOWN_HOSTS", "/srv/known_hosts"),
            ("AUTOBOT_PKI_PARALLELISM", "2"),
            ("AUTOBOT_SSH_TIMEOUT_SECS", "5"),
        ])
        .unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.pki_dir, PathBuf::from("/srv/pki"));
        assert_eq!(c.validity_days, 30);
        assert_eq!(c.targets_file, PathBuf::from("/srv/targets.toml"));
        assert_eq!(c.parallelism, 2);
        assert_eq!(c.ssh_timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_name_the_variable_and_the_value() {
        assert_refused(
            cfg,
            &[
                ("AUTOBOT_BIND", "localhost"),
                ("AUTOBOT_PKI_VALIDITY_DAYS", "0"),
                ("AUTOBOT_PKI_VALIDITY_DAYS", "a year"),
                ("AUTOBOT_PKI_PARALLELISM", "-1"),
                ("AUTOBOT_SSH_TIMEOUT_SECS", "0"),
                ("AUTOBOT_PKI_DIR", "relative/dir"),
                ("AUTOBOT_SSH_KEY", "id_ed25519"),
                ("AUTOBOT_PKI_CA_PERMITTED", "172.16.168.0/24,not a name"),
            ],
        );
    }

    /// The exact texts an operator sees, pinned.
    #[test]
    fn error_texts_keep_their_wording() {
        assert_error_texts(
            cfg,
            &[
                r#"AUTOBOT_BIND="localhost" is not valid: invalid socket address syntax (expected an IP address and a port, such as 0.0.0.0:8002)"#,
                r#"AUTOBOT_PKI_PARALLELISM="300" is not valid: must be between 1 and 256"#,
                r#"AUTOBOT_SSH_TIMEOUT_SECS="soon" is not valid: not a whole number"#,
                r#"AUTOBOT_PKI_DIR="relative/dir" is not valid: must be an absolute path"#,
            ],
        );
    }
}
