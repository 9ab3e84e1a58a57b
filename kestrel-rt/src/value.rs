//! Run-time values of event fields.

use std::net::IpAddr;

/// A field value as the runtime holds it. Strings stay UTF-8; objects keep key order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(Box<str>),
    Ip(IpAddr),
    Array(Vec<Value>),
    Object(Vec<(Box<str>, Value)>),
}

impl Value {
    /// The value with every string lower-cased (`str::to_lowercase`, as eqlc folds literals).
    pub fn folded(&self) -> Value {
        match self {
            Value::Str(text) => Value::Str(text.to_lowercase().into_boxed_str()),
            Value::Array(items) => Value::Array(items.iter().map(Value::folded).collect()),
            Value::Object(entries) => Value::Object(entries.iter().map(|(key, value)| (key.clone(), value.folded())).collect()),
            other => other.clone(),
        }
    }

    /// Bytes this value needs in guest memory beyond its slot (docs/abi.md).
    pub fn payload_len(&self) -> usize {
        match self {
            Value::Str(text) => text.len(),
            Value::Ip(IpAddr::V4(_)) => 4,
            Value::Ip(IpAddr::V6(_)) => 16,
            Value::Array(items) => items.len() * 16 + items.iter().map(Value::payload_len).map(|len| len.next_multiple_of(8)).sum::<usize>(),
            Value::Object(entries) => entries.iter().map(|(key, value)| 24 + key.len().next_multiple_of(8) + value.payload_len().next_multiple_of(8)).sum(),
            _ => 0,
        }
    }
}
