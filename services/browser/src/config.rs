//! Typed configuration, parsed once from the environment. A value that does
//! not parse is an error naming the variable and the value.

use std::net::SocketAddr;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError, whole_number_in};

use crate::deny::DenyList;

/// Default listen address: the browser's port on its VM.
pub const DEFAULT_BIND: &str = "0.0.0.0:3000";
/// Default bound of one whole fetch (all redirects and the body).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Default cut of a page body: 5 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// Redirects followed at most; the next one is an error.
pub const MAX_REDIRECTS: u32 = 5;

const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;
const MAX_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// Everything the browser reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// AUTOBOT_BIND
    pub bind: SocketAddr,
    /// AUTOBOT_BROWSER_TIMEOUT_MS: bound of a whole fetch, redirects and body included.
    pub timeout: Duration,
    /// AUTOBOT_BROWSER_MAX_BYTES: bytes of a body read at most.
    pub max_bytes: u64,
    /// AUTOBOT_BROWSER_DENY: address ranges never connected to.
    pub deny: DenyList,
    /// AUTOBOT_BROWSER_PROPAGATE: send traceparent/tracestate/baggage/b3 to the site.
    pub propagate: bool,
}

impl ServiceConfig for Config {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let env = Env::new(lookup);
        Ok(Self {
            bind: env.bind(DEFAULT_BIND)?,
            timeout: Duration::from_millis(
                env.parse_with("AUTOBOT_BROWSER_TIMEOUT_MS", |v| {
                    whole_number_in(v, 1, MAX_TIMEOUT_MS)
                })?
                .unwrap_or(DEFAULT_TIMEOUT_MS),
            ),
            max_bytes: env
                .parse_with("AUTOBOT_BROWSER_MAX_BYTES", |v| {
                    whole_number_in(v, 1, MAX_MAX_BYTES)
                })?
                .unwrap_or(DEFAULT_MAX_BYTES),
            deny: env
                .parse_with("AUTOBOT_BROWSER_DENY", DenyList::parse)?
                .unwrap_or_else(DenyList::default_metadata),
            propagate: env.bool("AUTOBOT_BROWSER_PROPAGATE", true)?,
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
        let c = cfg(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "0.0.0.0:3000");
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.max_bytes, 5 * 1024 * 1024);
        assert!(c.propagate);
        assert!(c.deny.denies("169.254.169.254".parse().unwrap()).is_some());
        assert!(
            c.deny.denies("127.0.0.1".parse().unwrap()).is_none(),
            "loopback is allowed by default"
        );
    }

    #[test]
    fn values_are_read() {
        let c = cfg(&[
            ("AUTOBOT_BIND", "127.0.0.1:9000"),
            ("AUTOBOT_BROWSER_TIMEOUT_MS", "2500"),
            ("AUTOBOT_BROWSER_MAX_BYTES", "1024"),
            ("AUTOBOT_BROWSER_DENY", "10.0.0.0/8, 192.168.1.1"),
            ("AUTOBOT_BROWSER_PROPAGATE", "false"),
        ])
        .unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.max_bytes, 1024);
        assert!(!c.propagate);
        assert!(c.deny.denies("10.1.2.3".parse().unwrap()).is_some());
        assert!(c.deny.denies("192.168.1.1".parse().unwrap()).is_some());
        assert!(
            c.deny.denies("169.254.169.254".parse().unwrap()).is_none(),
            "a list replaces the default"
        );
        let none = cfg(&[("AUTOBOT_BROWSER_DENY", "none")]).unwrap();
        assert!(none.deny.is_empty());
    }

    #[test]
    fn bad_values_name_the_variable_and_the_value() {
        assert_refused(
            cfg,
            &[
                ("AUTOBOT_BIND", "localhost"),
                ("AUTOBOT_BROWSER_TIMEOUT_MS", "0"),
                ("AUTOBOT_BROWSER_TIMEOUT_MS", "ten seconds"),
                ("AUTOBOT_BROWSER_MAX_BYTES", "-1"),
                ("AUTOBOT_BROWSER_MAX_BYTES", "5MiB"),
                ("AUTOBOT_BROWSER_DENY", "169.254.0.0/33"),
                ("AUTOBOT_BROWSER_DENY", "metadata.internal"),
                ("AUTOBOT_BROWSER_PROPAGATE", "maybe"),
            ],
        );
    }

    /// The exact texts an operator sees, pinned.
    #[test]
    fn error_texts_keep_their_wording() {
        assert_error_texts(
            cfg,
            &[
                r#"AUTOBOT_BIND="localhost" is not valid: invalid socket address syntax (expected an IP address and a port, such as 0.0.0.0:3000)"#,
                r#"AUTOBOT_BROWSER_TIMEOUT_MS="0" is not valid: must be between 1 and 600000"#,
                r#"AUTOBOT_BROWSER_MAX_BYTES="5MiB" is not valid: not a whole number"#,
                r#"AUTOBOT_BROWSER_PROPAGATE="maybe" is not valid: expected true or false"#,
            ],
        );
    }
}
