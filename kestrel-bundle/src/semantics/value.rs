//! Run-time values: conversions from literals and JSON, truthiness, and the number
//! formats of the two reference engines (python `repr`, Java `Double.toString`).

use std::net::IpAddr;

/// A run-time value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(String),
    Ip(IpAddr),
    Array(Vec<Value>),
    /// An object, its fields in order. Lookups take the first field of a name.
    Object(Vec<(String, Value)>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The name of the value's type, for messages and tests.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Long(_) => "long",
            Value::Double(_) => "double",
            Value::Str(_) => "keyword",
            Value::Ip(_) => "ip",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Python truthiness: `None` for null; false for `false`, `0`, `0.0`, `""`, `[]`
    /// and `{}`; true otherwise (an address is always true; so is NaN).
    pub fn truthiness(&self) -> Option<bool> {
        match self {
            Value::Null => None,
            Value::Bool(value) => Some(*value),
            Value::Long(value) => Some(*value != 0),
            Value::Double(value) => Some(*value != 0.0),
            Value::Str(text) => Some(!text.is_empty()),
            Value::Ip(_) => Some(true),
            Value::Array(items) => Some(!items.is_empty()),
            Value::Object(fields) => Some(!fields.is_empty()),
        }
    }

    /// The first field called `name` of an object; null for anything else.
    pub fn field(&self, name: &str) -> Value {
        match self {
            Value::Object(fields) => fields.iter().find(|(key, _)| key == name).map_or(Value::Null, |(_, value)| value.clone()),
            _ => Value::Null,
        }
    }

    /// Converts to JSON. Addresses become strings; non-finite doubles become `null`
    /// (JSON has no NaN or infinity).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Value::Null => Json::Null,
            Value::Bool(value) => Json::Bool(*value),
            Value::Long(value) => Json::from(*value),
            Value::Double(value) => serde_json::Number::from_f64(*value).map_or(Json::Null, Json::Number),
            Value::Str(text) => Json::String(text.clone()),
            Value::Ip(address) => Json::String(address.to_string()),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(fields) => Json::Object(fields.iter().map(|(key, value)| (key.clone(), value.to_json())).collect()),
        }
    }

    /// Converts from JSON. Integers that fit an `i64` are longs, other numbers doubles;
    /// strings stay strings (an address in a string is compared as one where it meets an
    /// address).
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as Json;
        match json {
            Json::Null => Value::Null,
            Json::Bool(value) => Value::Bool(*value),
            Json::Number(number) => match number.as_i64() {
                Some(value) => Value::Long(value),
                None => number.as_f64().map_or(Value::Null, Value::Double),
            },
            Json::String(text) => Value::Str(text.clone()),
            Json::Array(items) => Value::Array(items.iter().map(Value::from_json).collect()),
            Json::Object(fields) => Value::Object(fields.iter().map(|(key, value)| (key.clone(), Value::from_json(value))).collect()),
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(json: &serde_json::Value) -> Value {
        Value::from_json(json)
    }
}

impl From<&Value> for serde_json::Value {
    fn from(value: &Value) -> serde_json::Value {
        value.to_json()
    }
}

impl Value {
    /// A field of an event held as an object: `path("process.name")` finds the field
    /// `process.name`, or the field `name` of the object `process`, or any mix of dotted
    /// keys and nesting. Anything else has no fields.
    pub fn path(&self, name: &str) -> Value {
        lookup(self, name).cloned().unwrap_or(Value::Null)
    }
}

fn lookup<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    let Value::Object(fields) = value else { return None };
    if let Some((_, found)) = fields.iter().find(|(key, _)| key == name) {
        return Some(found);
    }
    fields.iter().find_map(|(key, inner)| {
        let rest = name.strip_prefix(key.as_str())?.strip_prefix('.')?;
        lookup(inner, rest)
    })
}

/// The shortest decimal digits that read back as `value` (which must be finite and
/// not negative), and the power of ten of the first digit: `1.5e-7` is `("15", -7)`.
fn shortest_digits(value: f64) -> (String, i32) {
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exponent.parse().unwrap_or(0))
}

/// `digits` × 10^`exponent` (first digit at that power) in positional notation, with at
/// least one digit after the point: `("15", 1)` is `15.0`, `("15", -2)` is `0.015`.
fn positional(digits: &str, exponent: i32) -> String {
    if exponent < 0 {
        let zeros = "0".repeat((-exponent - 1) as usize);
        return format!("0.{zeros}{digits}");
    }
    let int_len = exponent as usize + 1;
    if digits.len() <= int_len { format!("{digits}{}.0", "0".repeat(int_len - digits.len())) } else { format!("{}.{}", &digits[..int_len], &digits[int_len..]) }
}

/// A double as python's `str()`/`repr()` writes it: `2.0`, `0.0001`, `1e-05`, `1e+16`,
/// `1.5e+20`, `inf`, `nan`.
pub fn python_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value.is_infinite() {
        return format!("{sign}inf");
    }
    let (digits, exponent) = shortest_digits(value.abs());
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs());
    }
    format!("{sign}{}", positional(&digits, exponent))
}

/// A double as Java's `Double.toString` writes it (shortest digits, as Java 19 and
/// later): `2.0`, `0.001`, `1.0E-4`, `1.0E7`, `1.5E20`, `Infinity`, `NaN`.
pub fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value.is_infinite() {
        return format!("{sign}Infinity");
    }
    let magnitude = value.abs();
    let (digits, exponent) = shortest_digits(magnitude);
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        return format!("{sign}{}", positional(&digits, exponent));
    }
    let (first, rest) = digits.split_at(1);
    let rest = if rest.is_empty() { "0" } else { rest };
    format!("{sign}{first}.{rest}E{exponent}")
}
