//! Operator keys on the public API.
//!
//! Every `/api/*` route except `/api/health` needs `Authorization: Bearer
//! <key>`; `POST /api/pki/distribute` needs a key with the `admin` role,
//! the rest `user` (or `admin`). The keys are in the file named by
//! `AUTOBOT_API_KEYS_FILE`, one per line, `<name> <role> <sha256 of the
//! key, lowercase hex>`: the backend holds hashes only. A request without a
//! valid key is a 401, one whose key may not call the route a 403, both
//! answered before the handler runs (nothing changes). The key's name is
//! the server span's `enduser.id`; the key, its hash and the Authorization
//! header are never recorded (the tracing layer records no header but Host
//! and User-Agent).
//!
//! `AUTOBOT_AUTH=off` turns this off, for local experiments only; the
//! backend logs a warning at start.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use autobot_lifecycle::http::error_response;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// The routes a key is not needed for.
const OPEN_ROUTES: [&str; 1] = ["/api/health"];
/// The routes only an `admin` key may call; every other route needs `user`.
const ADMIN_ROUTES: [&str; 1] = ["/api/pki/distribute"];

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Every route but the distribution of certificates.
    User,
    /// Every route.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    fn parse(v: &str) -> Option<Self> {
        match v {
            "user" => Some(Self::User),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the keys file.
#[derive(Clone, PartialEq, Eq)]
struct ApiKey {
    name: String,
    role: Role,
    sha256: [u8; 32],
}

/// The operator keys, or none required.
#[derive(Clone, PartialEq, Eq)]
pub enum ApiAuth {
    /// AUTOBOT_AUTH=off: every caller is let through.
    Off,
    /// The keys of AUTOBOT_API_KEYS_FILE.
    Keys(Arc<[ApiKeyEntry]>),
}

/// A key's name and role, and the hash it is known by.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyEntry(ApiKey);

impl ApiKeyEntry {
    pub fn name(&self) -> &str {
        &self.0.name
    }
    pub fn role(&self) -> Role {
        self.0.role
    }
}

// The hashes are never printed: they identify the keys.
impl fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("ApiAuth::Off"),
            Self::Keys(keys) => f
                .debug_list()
                .entries(keys.iter().map(|k| format!("{} ({})", k.0.name, k.0.role)))
                .finish(),
        }
    }
}

impl ApiAuth {
    /// The key whose hash is the hash of `presented`, if any. Every stored
    /// hash is compared, each in constant time, whatever matched before.
    pub fn find(&self, presented: &str) -> Option<&ApiKeyEntry> {
        let Self::Keys(keys) = self else {
            return None;
        };
        let digest = sha256(presented.as_bytes());
        let mut found = None;
        for key in keys.iter() {
            if constant_time_eq(&key.0.sha256, &digest) {
                found = Some(key);
            }
        }
        found
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// No early exit: the time does not depend on where the bytes differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

/// Why the keys file cannot be used: the line and what is wrong with it.
/// Never quotes a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysFileError(pub String);

impl fmt::Display for KeysFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads the keys file: `<name> <role> <sha256 hex>` per line, `#`
/// starting a comment, blank lines skipped. At least one key.
pub fn read_keys_file(path: &Path) -> Result<ApiAuth, KeysFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeysFileError(format!("cannot read the file: {e}")))?;
    parse_keys(&text)
}

/// Parses the text of a keys file.
pub fn parse_keys(text: &str) -> Result<ApiAuth, KeysFileError> {
    let mut keys: Vec<ApiKeyEntry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let err = |reason: String| KeysFileError(format!("line {n}: {reason}"));
        if fields.len() != 3 {
            return Err(err(format!(
                "expected `<name> <role> <sha256 of the key>`, found {} field{}",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" }
            )));
        }
        let name = check_name(fields[0]).map_err(&err)?;
        let role = Role::parse(fields[1])
            .ok_or_else(|| err(format!("role {:?} is neither user nor admin", fields[1])))?;
        let sha256 = parse_sha256_hex(fields[2]).map_err(&err)?;
        if let Some(other) = keys.iter().find(|k| k.0.name == name) {
            return Err(err(format!(
                "the name {:?} is already on an earlier line (role {})",
                name, other.0.role
            )));
        }
        if let Some(other) = keys.iter().find(|k| k.0.sha256 == sha256) {
            return Err(err(format!(
                "the same key as {:?} on an earlier line: each operator gets a key of their own",
                other.0.name
            )));
        }
        keys.push(ApiKeyEntry(ApiKey { name, role, sha256 }));
    }
    if keys.is_empty() {
        return Err(KeysFileError(
            "no key in the file: add one made by `autobot-backend keygen NAME ROLE` (or set AUTOBOT_AUTH=off for a local experiment)".to_owned(),
        ));
    }
    Ok(ApiAuth::Keys(keys.into()))
}

/// Letters, digits and `._@-`, 1 to 64 of them: it goes into spans as `enduser.id`.
fn check_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "the name {:?} must be 1 to 64 letters, digits or . _ @ -",
            name.chars().take(80).collect::<String>()
        ))
    }
}

fn parse_sha256_hex(v: &str) -> Result<[u8; 32], String> {
    let reason = "the third field must be the key's SHA-256 as 64 lowercase hex digits (autobot-backend keygen prints it)";
    if v.len() != 64 || !v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(reason.to_owned());
    }
    let mut out = [0u8; 32];
    for (i, chunk) in v.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(chunk).map_err(|_| reason.to_owned())?;
        out[i] = u8::from_str_radix(hex, 16).map_err(|_| reason.to_owned())?;
    }
    Ok(out)
}

/// A new key (`abk_` and 64 hex digits: 256 random bits) and its line for
/// the keys file.
pub fn keygen(name: &str, role: &str) -> Result<(String, String), String> {
    let name = check_name(name)?;
    let role =
        Role::parse(role).ok_or_else(|| format!("role {role:?} is neither user nor admin"))?;
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| "the system's random number generator failed".to_owned())?;
    let key = format!("abk_{}", hex(&secret));
    let line = format!("{name} {role} {}", hex(&sha256(key.as_bytes())));
    Ok((key, line))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The middleware on every route of the API: lets `/api/health` through,
/// checks the key and its role on the others, and names the caller on the
/// server span.
pub async fn require_key(State(auth): State<ApiAuth>, request: Request, next: Next) -> Response {
    if matches!(auth, ApiAuth::Off) {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if OPEN_ROUTES.contains(&route.as_str()) {
        return next.run(request).await;
    }
    let needed = if ADMIN_ROUTES.contains(&route.as_str()) {
        Role::Admin
    } else {
        Role::User
    };
    let Some(presented) = bearer(&request) else {
        return unauthorized("an operator key is needed: send `Authorization: Bearer <key>`");
    };
    let Some(key) = auth.find(presented) else {
        return unauthorized("the operator key is not valid");
    };
    autobot_tracing::http::record_enduser_id(key.name());
    if key.role() < needed {
        return error_response(
            StatusCode::FORBIDDEN,
            format!(
                "the key {:?} has the role {}; {} {route} needs {needed}",
                key.name(),
                key.role(),
                request.method()
            ),
        );
    }
    next.run(request).await
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(message: &str) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, message.to_owned());
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_hex(key: &str) -> String {
        hex(&sha256(key.as_bytes()))
    }

    #[test]
    fn a_key_is_found_by_its_hash_and_nothing_else() {
        let text = format!(
            "# operators\n\nalice admin {}  # the lead\nbob user {}\n",
            hash_hex("k-alice"),
            hash_hex("k-bob")
        );
        let auth = parse_keys(&text).unwrap();
        assert_eq!(auth.find("k-alice").map(|k| k.name()), Some("alice"));
        assert_eq!(auth.find("k-bob").map(|k| k.role()), Some(Role::User));
        assert!(auth.find("k-carol").is_none());
        assert!(
            auth.find(&hash_hex("k-alice")).is_none(),
            "the hash is not a key"
        );
        assert!(
            !format!("{auth:?}").contains(&hash_hex("k-alice")),
            "{auth:?}"
        );
    }

    #[test]
    fn each_error_names_its_line_and_never_quotes_a_hash() {
        let good = hash_hex("k");
        let cases = [
            (
                "alice admin\n".to_owned(),
                "line 1: expected `<name> <role> <sha256 of the key>`, found 2 fields",
            ),
            (
                format!("# c\nalice root {good}\n"),
                "line 2: role \"root\" is neither user nor admin",
            ),
            (
                format!("\n\nalice admin {}\n", good.to_uppercase()),
                "line 3: the third field must be the key's SHA-256 as 64 lowercase hex digits (autobot-backend keygen prints it)",
            ),
            (
                format!("alice admin {}\n", &good[..60]),
                "line 1: the third field must be the key's SHA-256 as 64 lowercase hex digits (autobot-backend keygen prints it)",
            ),
            (
                format!("al!ce user {good}\n"),
                "line 1: the name \"al!ce\" must be 1 to 64 letters, digits or . _ @ -",
            ),
            (
                format!("a user {good}\na admin {}\n", hash_hex("j")),
                "line 2: the name \"a\" is already on an earlier line (role user)",
            ),
            (
                format!("a user {good}\nb admin {good}\n"),
                "line 2: the same key as \"a\" on an earlier line: each operator gets a key of their own",
            ),
            (
                "# nobody\n\n".to_owned(),
                "no key in the file: add one made by `autobot-backend keygen NAME ROLE` (or set AUTOBOT_AUTH=off for a local experiment)",
            ),
        ];
        for (text, expected) in cases {
            let e = parse_keys(&text).unwrap_err().to_string();
            assert_eq!(e, expected);
            assert!(!e.contains(&good) && !e.contains(&good.to_uppercase()));
        }
    }

    #[test]
    fn keygen_makes_a_line_the_file_reads_back() {
        let (key, line) = keygen("ops-1", "admin").unwrap();
        assert!(key.starts_with("abk_") && key.len() == 68, "{key}");
        let auth = parse_keys(&line).unwrap();
        assert_eq!(auth.find(&key).map(|k| k.name()), Some("ops-1"));
        let (other, _) = keygen("ops-1", "admin").unwrap();
        assert_ne!(key, other);
        assert!(keygen("ops 1", "admin").is_err());
        assert!(keygen("ops", "root").is_err());
    }

    #[test]
    fn the_bearer_token_is_read_whatever_the_schemes_case() {
        let req = |v: &str| {
            Request::builder()
                .header(header::AUTHORIZATION, v)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(bearer(&req("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&req("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&req("Basic abc")), None);
        assert_eq!(bearer(&req("Bearer ")), None);
    }
}
