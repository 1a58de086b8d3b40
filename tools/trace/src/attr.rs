//! Attribute values as Jaeger shows and compares them: as text (pcommon's
//! `AsString`: numbers in decimal, bytes in base64, arrays and maps as
//! JSON) and as JSON.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use serde_json::{Value, json};

/// An attribute value as text (empty when it has no value).
pub fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => base64(b),
        Some(other) => any_json(other).to_string(),
        None => String::new(),
    }
}

pub fn any_json(value: &any_value::Value) -> Value {
    let inner = |v: &AnyValue| v.value.as_ref().map(any_json).unwrap_or(Value::Null);
    match value {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => json!(i),
        any_value::Value::DoubleValue(d) => json!(d),
        any_value::Value::BytesValue(b) => Value::String(base64(b)),
        // An index into a profiles string table: meaningless without it.
        any_value::Value::StringValueStrindex(i) => json!(i),
        any_value::Value::ArrayValue(a) => Value::Array(a.values.iter().map(inner).collect()),
        any_value::Value::KvlistValue(kvs) => Value::Object(
            kvs.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map(inner).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        ),
    }
}

pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not (Jaeger accepts a
/// trace id in any of them).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be padding zeros, and a lone 6 bits is no byte.
    (bits < 6 && acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_both_ways() {
        for (bytes, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(bytes), text);
            assert_eq!(base64_decode(text).as_deref(), Some(bytes));
            assert_eq!(
                base64_decode(text.trim_end_matches('=')).as_deref(),
                Some(bytes)
            );
        }
        // Jaeger's own test ids (apiv3 http_gateway_test.go).
        let mut id = [0u8; 16];
        id[15] = 1;
        assert_eq!(base64_decode("AAAAAAAAAAAAAAAAAAAAAQ==").unwrap(), id);
        assert_eq!(
            base64_decode("EjRWeJq83vD+3LqYdlQyEA==").unwrap(),
            [
                0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54,
                0x32, 0x10
            ]
        );
        assert_eq!(
            base64_decode("AAAAAAAAAP___________w").unwrap(),
            [
                0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
            ]
        );
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("**").is_none());
    }

    #[test]
    fn values_as_text() {
        let v = |value| AnyValue { value: Some(value) };
        assert_eq!(value_text(Some(&v(any_value::Value::IntValue(-3)))), "-3");
        assert_eq!(
            value_text(Some(&v(any_value::Value::DoubleValue(72.5)))),
            "72.5"
        );
        assert_eq!(
            value_text(Some(&v(any_value::Value::BoolValue(true)))),
            "true"
        );
        assert_eq!(value_text(None), "");
    }
}
