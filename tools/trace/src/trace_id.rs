//! Trace ids as the tool and Jaeger print them.
//!
//! Jaeger prints a trace id with 16 hex digits when its high 64 bits are
//! zero, 32 otherwise; OpenTelemetry always prints 32. Both name the same
//! trace, so ids are compared in their normalised 32-digit form.

use std::fmt;

/// A 128-bit trace id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub u128);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "trace id {0:?} is not 1 to 32 hex digits (16 or 32 as printed by Jaeger or OpenTelemetry)"
)]
pub struct BadTraceId(pub String);

impl TraceId {
    /// Accepts 1 to 32 hex digits (Jaeger accepts shorter ids and left-pads them).
    pub fn parse(text: &str) -> Result<Self, BadTraceId> {
        let t = text.trim();
        if t.is_empty() || t.len() > 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadTraceId(text.to_owned()));
        }
        u128::from_str_radix(t, 16)
            .map(TraceId)
            .map_err(|_| BadTraceId(text.to_owned()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let array: [u8; 16] = bytes.try_into().ok()?;
        Some(TraceId(u128::from_be_bytes(array)))
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// 32 lower-case hex digits (OpenTelemetry's form).
    pub fn full(self) -> String {
        format!("{:032x}", self.0)
    }

    /// Jaeger's form: 16 digits when the high half is zero.
    pub fn jaeger(self) -> String {
        if self.0 >> 64 == 0 {
            format!("{:016x}", self.0)
        } else {
            self.full()
        }
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

/// Two trace id strings name the same trace (16 vs 32 digits, case).
pub fn same_trace(a: &str, b: &str) -> bool {
    matches!((TraceId::parse(a), TraceId::parse(b)), (Ok(x), Ok(y)) if x == y)
}

/// A span id as 16 lower-case hex digits.
pub fn span_id_hex(bytes: &[u8]) -> String {
    autobot_otlp_receiver::hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_forms_name_the_same_trace() {
        let short = TraceId::parse("0000000000000001").unwrap();
        let long = TraceId::parse("00000000000000000000000000000001").unwrap();
        assert_eq!(short, long);
        assert_eq!(short.jaeger(), "0000000000000001");
        assert_eq!(short.full(), "00000000000000000000000000000001");
        let wide = TraceId::parse("83A9EFD15C1C98A977E0711CC93EE28B").unwrap();
        assert_eq!(wide.jaeger(), "83a9efd15c1c98a977e0711cc93ee28b");
        assert!(same_trace("1", "00000000000000000000000000000001"));
        assert!(!same_trace("2", "00000000000000000000000000000001"));
    }

    #[test]
    fn refuses_what_is_not_an_id() {
        for bad in ["", "xyz", "0123456789abcdef0123456789abcdef0", "12 34"] {
            assert!(TraceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bytes_round_trip() {
        let id = TraceId::parse("5b8efff798038103d269b633813fc60c").unwrap();
        assert_eq!(TraceId::from_bytes(&id.to_bytes()), Some(id));
        assert_eq!(TraceId::from_bytes(&[1, 2]), None);
    }
}
