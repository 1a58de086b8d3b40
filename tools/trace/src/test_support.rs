//! What the unit tests of this crate build their inputs from.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

/// An OTLP attribute.
pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// An OTLP string attribute.
pub fn string(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

/// Query parameters as axum's `Query<Vec<(String, String)>>` hands them over.
pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
