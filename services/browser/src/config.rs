//! Typed configuration, parsed once from the environment. A value that does
//! not parse is an error naming the variable and the value.

use std::net::SocketAddr;
use std::time::Duration;

use autobot_lifecycle::ServiceConfig;
use autobot_settings::{Env, SettingError, whole_number_in};

use crate::deny::{AddressPolicy, AllowList, DEFAULT_DEPLOYMENT_SUBNET, parse_networks};

/// Default listen address: the browser's port on its VM.
pub const DEFAULT_BIND: &str = "0.0.0.0:3000";
/// Default bound of one whole fetch (all redirects and the body).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Default cut of a page body: 5 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// Redirects followed at most; the next one is an error.
pub const MAX_REDIRECTS: u32 = 5;
/// Default bound of navigations running at once: each holds up to
/// `max_bytes` of body and a parsed tree, and extraction takes a core.
pub const DEFAULT_MAX_NAVIGATIONS: usize = 8;

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
    /// Where the browser connects: the built-in denied ranges,
    /// AUTOBOT_DEPLOYMENT_SUBNET and AUTOBOT_BROWSER_DENY, minus
    /// AUTOBOT_BROWSER_ALLOW.
    pub addresses: AddressPolicy,
    /// AUTOBOT_BROWSER_PROPAGATE: send traceparent/tracestate/b3 to the site.
    pub propagate: bool,
    /// AUTOBOT_BROWSER_MAX_NAVIGATIONS: navigations running at once; more are a 503.
    pub max_navigations: usize,
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
            addresses: AddressPolicy::new(
                &env.parse_or_with(
                    "AUTOBOT_DEPLOYMENT_SUBNET",
                    DEFAULT_DEPLOYMENT_SUBNET,
                    parse_networks,
                )?,
                &env.parse_or_with("AUTOBOT_BROWSER_DENY", "", parse_deny)?,
                env.parse_or_with("AUTOBOT_BROWSER_ALLOW", "", AllowList::parse)?,
            ),
            propagate: env.bool("AUTOBOT_BROWSER_PROPAGATE", true)?,
            max_navigations: env
                .parse_with("AUTOBOT_BROWSER_MAX_NAVIGATIONS", |v| {
                    whole_number_in(v, 1, 10_000)
                })?
                .unwrap_or(DEFAULT_MAX_NAVIGATIONS),
        })
    }

    fn bind(&self) -> SocketAddr {
        self.bind
    }
}

/// AUTOBOT_BROWSER_DENY adds ranges to the built-in list; it no longer
/// replaces it, so its old `none` is refused rather than silently ignored.
fn parse_deny(v: &str) -> Result<Vec<ipnet::IpNet>, String> {
    if v.eq_ignore_ascii_case("none") {
        return Err("the built-in list cannot be switched off; \
                    AUTOBOT_BROWSER_ALLOW lifts single networks or hosts"
            .into());
    }
    parse_networks(v)
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
        assert_eq!(c.max_navigations, DEFAULT_MAX_NAVIGATIONS);
        assert!(c.propagate);
        for denied in ["169.254.169.254", "127.0.0.1", "10.0.0.1", "::1"] {
            assert!(
                c.addresses.denies(denied.parse().unwrap()).is_some(),
                "{denied}"
            );
        }
        assert_eq!(
            c.addresses
                .denies("172.16.168.20".parse().unwrap())
                .unwrap()
                .reason,
            "private (RFC 1918)",
            "the default subnet is private too; the first range that refuses is named"
        );
        assert!(c.addresses.allow_entries().is_empty());
    }

    #[test]
    fn values_are_read() {
        let c = cfg(&[
            ("AUTOBOT_BIND", "127.0.0.1:9000"),
            ("AUTOBOT_BROWSER_TIMEOUT_MS", "2500"),
            ("AUTOBOT_BROWSER_MAX_BYTES", "1024"),
            ("AUTOBOT_BROWSER_DENY", "8.8.4.0/24, 9.9.9.9"),
            ("AUTOBOT_DEPLOYMENT_SUBNET", "45.33.0.0/24"),
            ("AUTOBOT_BROWSER_ALLOW", "127.0.0.2 wiki.internal"),
            ("AUTOBOT_BROWSER_PROPAGATE", "false"),
            ("AUTOBOT_BROWSER_MAX_NAVIGATIONS", "3"),
        ])
        .unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.max_bytes, 1024);
        assert_eq!(c.max_navigations, 3);
        assert!(!c.propagate);
        let reason = |ip: &str| c.addresses.denies(ip.parse().unwrap()).map(|d| d.reason);
        assert_eq!(reason("8.8.4.9"), Some("AUTOBOT_BROWSER_DENY"));
        assert_eq!(reason("9.9.9.9"), Some("AUTOBOT_BROWSER_DENY"));
        assert_eq!(
            reason("45.33.0.50"),
            Some("the deployment's subnet (AUTOBOT_DEPLOYMENT_SUBNET)")
        );
        assert_eq!(
            reason("169.254.169.254"),
            Some("link-local (cloud metadata)")
        );
        assert_eq!(reason("127.0.0.2"), None, "allowed");
        assert_eq!(reason("127.0.0.1"), Some("loopback"));
        assert_eq!(
            c.addresses.allow_entries(),
            ["127.0.0.2/32", "wiki.internal"]
        );
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
                ("AUTOBOT_BROWSER_DENY", "none"),
                ("AUTOBOT_DEPLOYMENT_SUBNET", "the lab"),
                ("AUTOBOT_BROWSER_ALLOW", "127.0.0.1:8090"),
                ("AUTOBOT_BROWSER_MAX_NAVIGATIONS", "0"),
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
                r#"AUTOBOT_BROWSER_DENY="none" is not valid: the built-in list cannot be switched off; AUTOBOT_BROWSER_ALLOW lifts single networks or hosts"#,
                r#"AUTOBOT_BROWSER_ALLOW="127.0.0.1:8090" is not valid: "127.0.0.1:8090" is neither a network (10.1.2.0/24), an address (127.0.0.2) nor a host name (wiki.internal); ports and URLs are not taken"#,
            ],
        );
    }
}
