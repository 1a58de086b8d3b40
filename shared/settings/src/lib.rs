//! # autobot-settings
//!
//! AutoBot's settings come from the environment, with a `.env` file
//! honoured. Every binary reads them here, and so does autobot-tracing, one
//! variable at a time through a lookup function (the process environment in
//! production, a map in tests).
//!
//! A value is trimmed and an empty one counts as unset. A value that does not
//! parse is a [`SettingError`], worded the same for every variable of every
//! binary: `VAR="value" is not valid: reason`. Where the value may hold a
//! secret, the error shows what the caller's redaction leaves of it
//! ([`Env::parse_secret_or`]) or no value at all ([`SettingError::withheld`]):
//! `VAR is not valid: reason`. The binaries stop with exit status 2 on one
//! (`autobot_lifecycle::Service`).

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// The variable every service listens on.
pub const BIND_VAR: &str = "AUTOBOT_BIND";

/// A variable that is set (or defaulted) to something unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingError {
    pub variable: &'static str,
    /// The value as read (trimmed), its redacted form for a secret, or
    /// `None` when even a redacted form could give a secret away.
    pub value: Option<String>,
    /// Why the value cannot be used, for the operator who set it.
    pub reason: String,
}

impl Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(
                f,
                "{}={value:?} is not valid: {}",
                self.variable, self.reason
            ),
            None => write!(f, "{} is not valid: {}", self.variable, self.reason),
        }
    }
}

impl SettingError {
    pub fn new(variable: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            value: Some(value.to_owned()),
            reason: reason.into(),
        }
    }

    /// An error that does not repeat the value (it may hold a credential);
    /// the reason must not either.
    pub fn withheld(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            value: None,
            reason: reason.into(),
        }
    }
}

/// The `.env` file exists but could not be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the .env file could not be read: {0}")]
pub struct DotEnvError(String);

/// Loads `.env` from the working directory (or a parent) into the process
/// environment; variables already set win. Call it before threads exist
/// (it sets variables), as `autobot_lifecycle::Service` does.
pub fn load_dotenv() -> Result<(), DotEnvError> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => Err(DotEnvError(e.to_string())),
    }
}

/// The process environment as a lookup function.
pub fn process_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads variables through a lookup function.
pub struct Env<F> {
    lookup: F,
}

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Self::new(process_lookup)
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

    /// The first of `names` that is set, with its trimmed value: for a
    /// setting with a specific and a general variable
    /// (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, then `OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub fn first(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names.iter().find_map(|n| self.get(n).map(|v| (*n, v)))
    }

    /// The value parsed by `parse`, whose error text becomes the reason.
    pub fn parse_with<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SettingError> {
        self.get(name)
            .map(|v| parse(&v).map_err(|reason| SettingError::new(name, &v, reason)))
            .transpose()
    }

    /// [`Env::parse_with`] on the first of `names` that is set.
    pub fn parse_first_with<T>(
        &self,
        names: &[&'static str],
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SettingError> {
        self.first(names)
            .map(|(name, v)| parse(&v).map_err(|reason| SettingError::new(name, &v, reason)))
            .transpose()
    }

    /// Like [`Env::parse_with`], with `default` (text) parsed the same way when unset.
    pub fn parse_or_with<T>(
        &self,
        name: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, SettingError> {
        let v = self.get_or(name, default);
        parse(&v).map_err(|reason| SettingError::new(name, &v, reason))
    }

    /// The value through `FromStr`; the parse error's text is the reason.
    pub fn parse<T>(&self, name: &'static str) -> Result<Option<T>, SettingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.parse_with(name, |v| v.parse().map_err(|e: T::Err| e.to_string()))
    }

    /// [`Env::parse`], or `default` when unset.
    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, SettingError>
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
    ) -> Result<T, SettingError> {
        let v = self.get_or(name, default);
        parse(&v).map_err(|reason| SettingError::new(name, &redact(&v), reason))
    }

    /// AUTOBOT_BIND as `ip:port`, `default` when unset.
    pub fn bind(&self, default: &str) -> Result<SocketAddr, SettingError> {
        self.parse_or_with(BIND_VAR, default, |v| {
            v.parse().map_err(|e: std::net::AddrParseError| {
                format!("{e} (expected an IP address and a port, such as {default})")
            })
        })
    }

    /// A whole number of milliseconds, at least 1; `default_ms` when unset.
    pub fn millis(&self, name: &'static str, default_ms: u64) -> Result<Duration, SettingError> {
        let ms = self.parse_with(name, |v| match v.parse::<u64>() {
            Ok(0) => Err("must be at least 1".to_owned()),
            Ok(ms) => Ok(ms),
            Err(e) => Err(e.to_string()),
        })?;
        Ok(Duration::from_millis(ms.unwrap_or(default_ms)))
    }

    /// true/1/yes/on or false/0/no/off (any case); `default` when unset.
    pub fn bool(&self, name: &'static str, default: bool) -> Result<bool, SettingError> {
        Ok(self
            .parse_with(name, parse_bool_setting)?
            .unwrap_or(default))
    }

    /// An http:// or https:// URL with a host; `None` when unset.
    pub fn http_url(&self, name: &'static str) -> Result<Option<Url>, SettingError> {
        self.parse_with(name, parse_http_url)
    }

    /// [`Env::http_url`], with `default` parsed the same way when unset.
    pub fn http_url_or(&self, name: &'static str, default: &str) -> Result<Url, SettingError> {
        self.parse_or_with(name, default, parse_http_url)
    }
}

/// What every binary's settings tests check, written once: a bad value is
/// refused naming its variable, with the exact text an operator reads.
pub mod checks {
    use std::fmt::Debug;

    use super::SettingError;

    /// Sets each `(variable, value)` alone and asserts that `read` refuses
    /// it with an error that names both (a secret's redaction is checked by
    /// a test of its own).
    pub fn assert_refused<T: Debug>(
        read: impl Fn(&[(&str, &str)]) -> Result<T, SettingError>,
        cases: &[(&str, &str)],
    ) {
        for (variable, value) in cases {
            let e = read(&[(variable, value)]).expect_err(variable);
            assert_eq!(e.variable, *variable, "{e}");
            assert_eq!(e.value.as_deref(), Some(value.trim()), "{e}");
            let named = format!("{variable}={:?} is not valid: ", value.trim());
            assert!(e.to_string().starts_with(&named), "{e}");
        }
    }

    /// Each text is a pinned error, `VAR="value" is not valid: reason`:
    /// sets VAR to the value alone and asserts that `read` fails with
    /// exactly that text.
    pub fn assert_error_texts<T: Debug>(
        read: impl Fn(&[(&str, &str)]) -> Result<T, SettingError>,
        texts: &[&str],
    ) {
        for text in texts {
            let (variable, rest) = text.split_once("=\"").expect("VAR=\"value\"");
            let end = rest
                .find("\" is not valid: ")
                .expect("is not valid: reason");
            let value = &rest[..end];
            assert!(!value.contains('\\'), "pin a value without escapes: {text}");
            let e = read(&[(variable, value)]).expect_err(variable);
            assert_eq!(e.to_string(), *text);
        }
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

/// [`parse_bool`] with the reason every boolean setting gives.
pub fn parse_bool_setting(v: &str) -> Result<bool, String> {
    parse_bool(v).ok_or_else(|| "expected true or false".to_owned())
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
    fn names(e: SettingError, variable: &str, value: &str) {
        assert_eq!(
            (e.variable, e.value.as_deref()),
            (variable, Some(value)),
            "{e}"
        );
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
    fn the_first_variable_set_is_the_one_read_and_named() {
        let e = env(&[("GENERAL", "5"), ("SPECIFIC", " "), ("BAD", "x")]);
        assert_eq!(
            e.first(&["SPECIFIC", "GENERAL"]),
            Some(("GENERAL", "5".to_owned()))
        );
        assert_eq!(
            e.parse_first_with(&["SPECIFIC", "GENERAL"], |v| whole_number_in(v, 1, 9)),
            Ok(Some(5))
        );
        assert_eq!(e.parse_first_with(&["NONE"], |_| Ok(1)), Ok(None));
        let err = e
            .parse_first_with(&["BAD", "GENERAL"], |v| whole_number_in(v, 1, 9))
            .unwrap_err();
        names(err, "BAD", "x");
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

    /// The exact texts an operator sees, pinned.
    #[test]
    fn error_texts_keep_their_wording() {
        let e = env(&[("AUTOBOT_BIND", "nonsense"), ("FLAG", "maybe")]);
        assert_eq!(
            e.bind("0.0.0.0:8001").unwrap_err().to_string(),
            "AUTOBOT_BIND=\"nonsense\" is not valid: invalid socket address syntax \
             (expected an IP address and a port, such as 0.0.0.0:8001)"
        );
        assert_eq!(
            e.bool("FLAG", true).unwrap_err().to_string(),
            "FLAG=\"maybe\" is not valid: expected true or false"
        );
        assert_eq!(
            SettingError::withheld("OTEL_EXPORTER_OTLP_HEADERS", "entry 2 of 2 has no '='")
                .to_string(),
            "OTEL_EXPORTER_OTLP_HEADERS is not valid: entry 2 of 2 has no '='"
        );
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
        assert_eq!(err.value.as_deref(), Some("mongodb://u:***@h/0"));
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
