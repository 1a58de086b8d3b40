//! Settings read from the environment, one variable at a time, through a
//! lookup function (the process environment in production, a map in tests).
//!
//! A value is trimmed and an empty one counts as unset. A value that does not
//! parse is an [`EnvError`] naming the variable and the value, except where
//! the value may hold a secret ([`Env::parse_secret_or`]): then the error
//! shows only what the caller's redaction leaves of it.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// The variable every service listens on.
pub const BIND_VAR: &str = "AUTOBOT_BIND";

/// A variable that is set (or defaulted) to something unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {reason}")]
pub struct EnvError {
    pub variable: &'static str,
    /// The value as read (trimmed), or its redacted form for a secret.
    pub value: String,
    pub reason: String,
}

impl EnvError {
    pub fn new(variable: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// An [`EnvError`] worded `VAR="value": reason`, as the browser and the
/// pki-distributor have always reported a bad setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {reason}")]
pub struct TerseEnvError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

impl From<EnvError> for TerseEnvError {
    fn from(e: EnvError) -> Self {
        let EnvError {
            variable,
            value,
            reason,
        } = e;
        Self {
            variable,
            value,
            reason,
        }
    }
}

/// Reads variables through a lookup function.
pub struct Env<F> {
    lookup: F,
}

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Self::new(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The value exactly as set, untrimmed; an empty value is returned as such.
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The trimmed value; `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The trimmed value, or `default` when unset or blank.
    pub fn get_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// The value parsed by `parse`, whose error text becomes the reason.
    pub fn parse_with<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, EnvError> {
        self.get(name)
            .map(|v| parse(&v).map_err(|reason| EnvError::new(name, &v, reason)))
            .transpose()
    }

    /// Like [`Env::parse_with`], with `default` (text) parsed the same way when unset.
    pub fn parse_or_with<T>(
        &self,
        name: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, EnvError> {
        let v = self.get_or(name, default);
        parse(&v).map_err(|reason| EnvError::new(name, &v, reason))
    }

    /// The value through `FromStr`; the parse error's text is the reason.
    pub fn parse<T>(&self, name: &'static str) -> Result<Option<T>, EnvError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.parse_with(name, |v| v.parse().map_err(|e: T::Err| e.to_string()))
    }

    /// [`Env::parse`], or `default` when unset.
    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, EnvError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse(name)?.unwrap_or(default))
    }

    /// A value that may hold a secret (a password in a URL, a token). When
    /// `parse` fails, the error shows `redact(value)`, never the value.
    pub fn parse_secret_or<T>(
        &self,
        name: &'static str,
        default: &str,
        redact: impl FnOnce(&str) -> String,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, EnvError> {
        let v = self.get_or(name, default);
        parse(&v).map_err(|reason| EnvError {
            variable: name,
            value: redact(&v),
            reason,
        })
    }

    /// AUTOBOT_BIND as `host:port`, `default` when unset.
    pub fn bind(&self, default: &str) -> Result<SocketAddr, EnvError> {
        self.parse_or_with(BIND_VAR, default, |v| {
            v.parse()
                .map_err(|e: std::net::AddrParseError| e.to_string())
        })
    }

    /// A whole number of milliseconds, at least 1; `default_ms` when unset.
    pub fn millis(&self, name: &'static str, default_ms: u64) -> Result<Duration, EnvError> {
        let ms = self.parse_with(name, |v| match v.parse::<u64>() {
            Ok(0) => Err("must be at least 1".to_owned()),
            Ok(ms) => Ok(ms),
            Err(e) => Err(e.to_string()),
        })?;
        Ok(Duration::from_millis(ms.unwrap_or(default_ms)))
    }

    /// true/1/yes/on or false/0/no/off (any case); `default` when unset.
    pub fn bool(&self, name: &'static str, default: bool) -> Result<bool, EnvError> {
        let b = self.parse_with(name, |v| {
            parse_bool(v).ok_or_else(|| "expected true or false".to_owned())
        })?;
        Ok(b.unwrap_or(default))
    }

    /// An http:// or https:// URL with a host; `None` when unset.
    pub fn http_url(&self, name: &'static str) -> Result<Option<Url>, EnvError> {
        self.parse_with(name, parse_http_url)
    }

    /// [`Env::http_url`], with `default` parsed the same way when unset.
    pub fn http_url_or(&self, name: &'static str, default: &str) -> Result<Url, EnvError> {
        self.parse_or_with(name, default, parse_http_url)
    }
}

/// A lookup over fixed pairs, as tests drive a config:
/// `Config::from_lookup(pairs(&[("AUTOBOT_BIND", "127.0.0.1:0")]))`.
pub fn pairs(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// true/1/yes/on or false/0/no/off, in any case, around blanks.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// An http:// or https:// URL with a host.
pub fn parse_http_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http:// or https:// URL with a host".to_owned());
    }
    Ok(url)
}

/// A whole number within `min..=max`.
pub fn whole_number_in<T>(v: &str, min: T, max: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display,
{
    let n: T = v
        .trim()
        .parse()
        .map_err(|_| "not a whole number".to_owned())?;
    if n < min || n > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(pairs(vars))
    }

    /// Asserts the error names `variable` and shows `value`, in its text too.
    fn names(e: EnvError, variable: &str, value: &str) {
        assert_eq!((e.variable, e.value.as_str()), (variable, value), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{variable}={value:?} is not valid: ")),
            "{text}"
        );
    }

    #[test]
    fn values_are_trimmed_and_blank_is_unset() {
        let e = env(&[("A", "  x "), ("B", "   "), ("C", "")]);
        assert_eq!(e.get("A").as_deref(), Some("x"));
        assert_eq!(e.get("B"), None);
        assert_eq!(e.get("C"), None);
        assert_eq!(e.get("D"), None);
        assert_eq!(e.get_or("B", "dflt"), "dflt");
        assert_eq!(e.raw("A").as_deref(), Some("  x "));
        assert_eq!(e.raw("C").as_deref(), Some(""));
    }

    #[test]
    fn unset_values_take_their_defaults() {
        let e = env(&[("T", " ")]);
        assert_eq!(e.bind("0.0.0.0:8001").unwrap().to_string(), "0.0.0.0:8001");
        assert_eq!(e.millis("T", 250).unwrap(), Duration::from_millis(250));
        assert!(e.bool("T", true).unwrap());
        assert!(!e.bool("T", false).unwrap());
        assert_eq!(e.parse_or("T", 7u32).unwrap(), 7);
        assert!(e.http_url("T").unwrap().is_none());
        assert_eq!(
            e.http_url_or("T", "http://h:1").unwrap().as_str(),
            "http://h:1/"
        );
    }

    #[test]
    fn values_are_read() {
        let e = env(&[
            ("AUTOBOT_BIND", " 127.0.0.1:9000 "),
            ("MS", "1500"),
            ("FLAG", "On"),
            ("N", "42"),
            ("URL", "https://x.example/v1"),
        ]);
        assert_eq!(e.bind("0.0.0.0:1").unwrap().port(), 9000);
        assert_eq!(e.millis("MS", 1).unwrap(), Duration::from_millis(1500));
        assert!(e.bool("FLAG", false).unwrap());
        assert_eq!(e.parse::<u8>("N").unwrap(), Some(42));
        assert_eq!(
            e.http_url("URL").unwrap().unwrap().as_str(),
            "https://x.example/v1"
        );
        assert_eq!(
            e.parse_with("N", |v| whole_number_in(v, 1u32, 50)),
            Ok(Some(42))
        );
    }

    #[test]
    fn every_error_names_its_variable_and_value() {
        let e = env(&[
            ("AUTOBOT_BIND", "8001"),
            ("MS_TEXT", "soon"),
            ("MS_ZERO", "0"),
            ("FLAG", "maybe"),
            ("N", "-3"),
            ("URL_SCHEME", "ftp://h/"),
            ("URL_TEXT", "not a url"),
            ("RANGE", "99"),
            ("WORDS", "ten"),
        ]);
        names(e.bind("0.0.0.0:1").unwrap_err(), "AUTOBOT_BIND", "8001");
        names(e.millis("MS_TEXT", 1).unwrap_err(), "MS_TEXT", "soon");
        let zero = e.millis("MS_ZERO", 1).unwrap_err();
        assert_eq!(zero.reason, "must be at least 1");
        names(zero, "MS_ZERO", "0");
        let flag = e.bool("FLAG", false).unwrap_err();
        assert_eq!(flag.reason, "expected true or false");
        names(flag, "FLAG", "maybe");
        names(e.parse::<u64>("N").unwrap_err(), "N", "-3");
        let scheme = e.http_url("URL_SCHEME").unwrap_err();
        assert_eq!(
            scheme.reason,
            "expected an http:// or https:// URL with a host"
        );
        names(scheme, "URL_SCHEME", "ftp://h/");
        names(
            e.http_url_or("URL_TEXT", "http://h").unwrap_err(),
            "URL_TEXT",
            "not a url",
        );
        let range = e
            .parse_with("RANGE", |v| whole_number_in(v, 1u32, 50))
            .unwrap_err();
        assert_eq!(range.reason, "must be between 1 and 50");
        names(range, "RANGE", "99");
        let words = e
            .parse_with("WORDS", |v| whole_number_in(v, 1u64, 5))
            .unwrap_err();
        assert_eq!(words.reason, "not a whole number");
        names(words, "WORDS", "ten");
    }

    #[test]
    fn a_bad_default_is_an_error_naming_the_variable() {
        let e = env(&[]);
        names(e.bind("nowhere").unwrap_err(), "AUTOBOT_BIND", "nowhere");
        names(e.http_url_or("U", "ftp://h").unwrap_err(), "U", "ftp://h");
    }

    #[test]
    fn a_secret_is_not_echoed() {
        let e = env(&[("SECRET_URL", "mongodb://u:hunter2@h/0")]);
        let err = e
            .parse_secret_or(
                "SECRET_URL",
                "redis://127.0.0.1/0",
                |v| v.replace("hunter2", "***"),
                |v| {
                    if v.starts_with("redis://") {
                        Ok(v.to_owned())
                    } else {
                        Err("not a redis URL".to_owned())
                    }
                },
            )
            .unwrap_err();
        assert_eq!(err.variable, "SECRET_URL");
        assert_eq!(err.value, "mongodb://u:***@h/0");
        let text = err.to_string();
        assert!(
            text.contains("SECRET_URL") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(!format!("{err:?}").contains("hunter2"));
        // Unset: the default is used (and checked the same way).
        let default = env(&[])
            .parse_secret_or(
                "SECRET_URL",
                "redis://d/0",
                |_| String::new(),
                |v| Ok::<_, String>(v.to_owned()),
            )
            .unwrap();
        assert_eq!(default, "redis://d/0");
    }

    #[test]
    fn bools_accept_the_usual_words() {
        for (v, want) in [
            ("true", true),
            ("YES", true),
            ("1", true),
            ("on", true),
            ("false", false),
            ("No", false),
            ("0", false),
            ("OFF", false),
        ] {
            assert_eq!(parse_bool(v), Some(want), "{v}");
        }
        assert_eq!(parse_bool("y"), None);
    }
}
