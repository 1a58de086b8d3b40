//! Typed configuration, parsed once from the environment. A value that does
//! not parse is an error naming the variable and the value.

use std::net::SocketAddr;
use std::time::Duration;

use crate::deny::DenyList;

/// Default listen address (DESIGN.md, the VM table).
pub const DEFAULT_BIND: &str = "0.0.0.0:3000";
/// Default bound of one whole fetch (all redirects and the body).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Default cut of a page body: 5 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// Redirects followed at most; the next one is an error.
pub const MAX_REDIRECTS: u32 = 5;

const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;
const MAX_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// A variable that is set but unusable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

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

impl Config {
    /// Reads the process environment (call after `autobot_tracing::init`, which loads `.env`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let bind = match get("AUTOBOT_BIND") {
            Some(v) => v.trim().parse().map_err(|e| {
                ConfigError::new("AUTOBOT_BIND", &v, format!("not HOST:PORT ({e})"))
            })?,
            None => DEFAULT_BIND.parse().expect("the default bind parses"),
        };
        let timeout_ms = match get("AUTOBOT_BROWSER_TIMEOUT_MS") {
            Some(v) => parse_in_range("AUTOBOT_BROWSER_TIMEOUT_MS", &v, 1, MAX_TIMEOUT_MS)?,
            None => DEFAULT_TIMEOUT_MS,
        };
        let max_bytes = match get("AUTOBOT_BROWSER_MAX_BYTES") {
            Some(v) => parse_in_range("AUTOBOT_BROWSER_MAX_BYTES", &v, 1, MAX_MAX_BYTES)?,
            None => DEFAULT_MAX_BYTES,
        };
        let deny = match get("AUTOBOT_BROWSER_DENY") {
            Some(v) => DenyList::parse(&v)
                .map_err(|reason| ConfigError::new("AUTOBOT_BROWSER_DENY", &v, reason))?,
            None => DenyList::default_metadata(),
        };
        let propagate = match get("AUTOBOT_BROWSER_PROPAGATE") {
            Some(v) => parse_bool("AUTOBOT_BROWSER_PROPAGATE", &v)?,
            None => true,
        };
        Ok(Self {
            bind,
            timeout: Duration::from_millis(timeout_ms),
            max_bytes,
            deny,
            propagate,
        })
    }
}

fn parse_in_range(
    variable: &'static str,
    value: &str,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let n: u64 = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(variable, value, "not a whole number"))?;
    if !(min..=max).contains(&n) {
        return Err(ConfigError::new(
            variable,
            value,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(n)
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(variable, value, "not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_design() {
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
        for (var, value) in [
            ("AUTOBOT_BIND", "localhost"),
            ("AUTOBOT_BROWSER_TIMEOUT_MS", "0"),
            ("AUTOBOT_BROWSER_TIMEOUT_MS", "ten seconds"),
            ("AUTOBOT_BROWSER_MAX_BYTES", "-1"),
            ("AUTOBOT_BROWSER_MAX_BYTES", "5MiB"),
            ("AUTOBOT_BROWSER_DENY", "169.254.0.0/33"),
            ("AUTOBOT_BROWSER_DENY", "metadata.internal"),
            ("AUTOBOT_BROWSER_PROPAGATE", "maybe"),
        ] {
            let err = cfg(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable, var);
            let text = err.to_string();
            assert!(text.contains(var) && text.contains(value), "{text}");
        }
    }
}
