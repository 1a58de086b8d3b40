//! Secrets never reach a span or a log line. These helpers decide what is a
//! secret: credentials in URLs, query parameters named like one, and the
//! headers that carry them.

use url::Url;

/// What a redacted value is replaced with (the semantic conventions' choice).
pub const REDACTED: &str = "REDACTED";

/// Query parameter names (lower-case substrings) whose values are secrets.
const SECRET_PARAM_PARTS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "signature",
    "sig",
    "auth",
    "credential",
    "session",
    "code",
];

/// Header names whose values are secrets.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-amz-security-token",
];

/// Whether a query parameter with this name carries a secret.
pub fn is_secret_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_PARAM_PARTS.iter().any(|p| lower.contains(p))
}

/// Whether a header with this name carries a secret.
pub fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&lower.as_str())
        || lower.contains("token")
        || lower.contains("secret")
        || lower.ends_with("-key")
}

/// A URL fit for `url.full`: user and password replaced, secret query values replaced.
pub fn redact_url(url: &Url) -> String {
    let mut out = url.clone();
    if !out.username().is_empty() {
        let _ = out.set_username(REDACTED);
    }
    if out.password().is_some() {
        let _ = out.set_password(Some(REDACTED));
    }
    if let Some(query) = url.query() {
        out.set_query(Some(&redact_query(query)));
    }
    out.to_string()
}

/// A URL string fit for a span; what does not parse as a URL is cut to its scheme and host part.
pub fn redact_url_str(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => redact_url(&u),
        Err(_) => {
            let cut = url.split(['?', '#']).next().unwrap_or_default();
            match cut.split_once('@') {
                Some((_, rest)) => format!("{REDACTED}@{rest}"),
                None => cut.to_owned(),
            }
        }
    }
}

/// A raw query string with secret values replaced; the order and the other values kept.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(&decode_name(name)) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn decode_name(name: &str) -> String {
    url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_else(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_secret_params_are_redacted() {
        let u = Url::parse(
            "https://user:pw@api.example.com/v1/x?q=rust&api_key=abc123&Signature=zz&page=2",
        )
        .unwrap();
        let r = redact_url(&u);
        assert_eq!(
            r,
            "https://REDACTED:REDACTED@api.example.com/v1/x?q=rust&api_key=REDACTED&Signature=REDACTED&page=2"
        );
        for secret in ["user", "pw@", "abc123", "zz"] {
            assert!(!r.contains(secret), "{r}");
        }
    }

    #[test]
    fn encoded_parameter_names_are_recognised() {
        assert_eq!(
            redact_query("access%5Ftoken=t0k&x=1"),
            "access%5Ftoken=REDACTED&x=1"
        );
        assert_eq!(
            redact_query("password"),
            "password",
            "a bare name carries no value"
        );
    }

    #[test]
    fn headers_that_carry_secrets() {
        for h in [
            "Authorization",
            "cookie",
            "X-Api-Key",
            "x-goog-api-key",
            "x-csrf-token",
            "client-secret",
        ] {
            assert!(is_secret_header(h), "{h}");
        }
        for h in ["content-type", "traceparent", "user-agent", "accept"] {
            assert!(!is_secret_header(h), "{h}");
        }
    }

    #[test]
    fn unparsable_urls_lose_query_and_userinfo() {
        assert_eq!(redact_url_str("not a url?token=abc"), "not a url");
        assert_eq!(redact_url_str("//u:p@host/path?k=v"), "REDACTED@host/path");
    }
}
