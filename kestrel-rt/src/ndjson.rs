//! Reading events from NDJSON with a projection: only the fields the bundle reads are
//! decoded; everything else is skipped at scanning speed, without building a DOM.
//!
//! Fields may be written as nested objects (`{"process": {"name": "x"}}`), as dotted keys
//! (`{"process.name": "x"}`), or mixed; an array of objects contributes the values of
//! its elements (`{"a": [{"b": 1}, {"b": 2}]}` gives `a.b` = `[1, 2]`), as Elasticsearch
//! reads documents.

use kestrel_bundle::semantics::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Deepest nesting of a decoded value; deeper input is a malformed line.
pub const MAX_DEPTH: usize = 64;

/// Which dotted field names to decode, as a tree of name segments.
#[derive(Default, Debug)]
pub struct Projection {
    root: Node,
    fields: usize,
}

#[derive(Default, Debug)]
struct Node {
    field: Option<usize>,
    children: HashMap<Box<[u8]>, Node>,
}

impl Projection {
    /// Field *i* of the result is `names[i]`.
    pub fn new<'n>(names: impl IntoIterator<Item = &'n str>) -> Projection {
        let mut projection = Projection::default();
        for (idx, name) in names.into_iter().enumerate() {
            let mut node = &mut projection.root;
            for segment in name.split('.') {
                node = node.children.entry(segment.as_bytes().into()).or_default();
            }
            node.field = Some(idx);
            projection.fields = idx + 1;
        }
        projection
    }

    pub fn len(&self) -> usize {
        self.fields
    }

    pub fn is_empty(&self) -> bool {
        self.fields == 0
    }

    /// Decodes the projected fields of one JSON object line into `out` (index → value;
    /// absent fields stay `None`). `out` is resized to `len()`.
    pub fn read(&self, line: &[u8], out: &mut Vec<Option<Value>>) -> Result<(), JsonError> {
        out.clear();
        out.resize(self.fields, None);
        let mut cursor = Cursor { bytes: line, pos: 0 };
        cursor.ws();
        if cursor.peek() != Some(b'{') {
            return Err(cursor.error("expected a JSON object"));
        }
        cursor.object(&self.root, out, 0)?;
        cursor.ws();
        if cursor.pos < line.len() {
            return Err(cursor.error("unexpected text after the JSON object"));
        }
        Ok(())
    }
}

/// Why a line is not a JSON object, and where (byte column, from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Puts `value` in slot `idx`; a field seen again (a second object element, or both a
/// dotted and a nested spelling) collects its values into an array.
fn assign(out: &mut [Option<Value>], idx: usize, value: Value) {
    match &mut out[idx] {
        slot @ None => *slot = Some(value),
        Some(Value::Array(items)) => match value {
            Value::Array(more) => items.extend(more),
            other => items.push(other),
        },
        Some(existing) => {
            let first = std::mem::replace(existing, Value::Null);
            *existing = match value {
                Value::Array(mut more) => {
                    more.insert(0, first);
                    Value::Array(more)
                }
                other => Value::Array(vec![first, other]),
            };
        }
    }
}

/// Assigns the projected descendants of `node` found inside an already decoded value.
fn assign_from(node: &Node, value: &Value, out: &mut [Option<Value>]) {
    match value {
        Value::Object(entries) => {
            for (key, inner) in entries {
                if let Some(child) = walk(node, key.as_bytes()) {
                    if let Some(idx) = child.field {
                        assign(out, idx, inner.clone());
                    }
                    if !child.children.is_empty() {
                        assign_from(child, inner, out);
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| assign_from(node, item, out)),
        _ => {}
    }
}

/// Follows a possibly dotted key down the tree.
fn walk<'n>(node: &'n Node, key: &[u8]) -> Option<&'n Node> {
    let mut node = node;
    for segment in key.split(|byte| *byte == b'.') {
        node = node.children.get(segment)?;
    }
    Some(node)
}

impl<'a> Cursor<'a> {
    fn error(&self, message: impl Into<String>) -> JsonError {
        JsonError { column: self.pos + 1, message: message.into() }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        self.ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected `{}`", byte as char)))
        }
    }

    /// An object whose keys are looked up under `node`. The cursor is at `{`.
    fn object(&mut self, node: &Node, out: &mut [Option<Value>], depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("objects nest too deeply"));
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            let key = self.string()?;
            self.expect(b':')?;
            self.ws();
            match walk(node, key.as_bytes()) {
                None => self.skip()?,
                Some(child) => match (child.field, child.children.is_empty()) {
                    (None, true) => self.skip()?,
                    (None, false) => match self.peek() {
                        Some(b'{') => self.object(child, out, depth + 1)?,
                        Some(b'[') => {
                            let value = self.value(depth + 1)?;
                            assign_from(child, &value, out);
                        }
                        _ => self.skip()?,
                    },
                    (Some(idx), leaf) => {
                        let value = self.value(depth + 1)?;
                        if !leaf {
                            assign_from(child, &value, out);
                        }
                        assign(out, idx, value);
                    }
                },
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    /// A string; borrowed when it has no escapes. The cursor is at `"`.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        let start = self.pos + 1;
        let rest = &self.bytes[start..];
        match memchr::memchr2(b'"', b'\\', rest) {
            Some(end) if rest[end] == b'"' => {
                self.pos = start + end + 1;
                std::str::from_utf8(&rest[..end]).map(Cow::Borrowed).map_err(|_| self.error("a string is not valid UTF-8"))
            }
            Some(_) => self.escaped_string(start),
            None => Err(self.error("unterminated string")),
        }
    }

    fn escaped_string(&mut self, start: usize) -> Result<Cow<'a, str>, JsonError> {
        let mut text: Vec<u8> = Vec::new();
        let mut idx = start;
        loop {
            let Some(&byte) = self.bytes.get(idx) else {
                self.pos = idx;
                return Err(self.error("unterminated string"));
            };
            match byte {
                b'"' => break,
                b'\\' => {
                    let Some(&escape) = self.bytes.get(idx + 1) else {
                        self.pos = idx;
                        return Err(self.error("unterminated string"));
                    };
                    idx += 2;
                    match escape {
                        b'"' => text.push(b'"'),
                        b'\\' => text.push(b'\\'),
                        b'/' => text.push(b'/'),
                        b'b' => text.push(8),
                        b'f' => text.push(12),
                        b'n' => text.push(b'\n'),
                        b'r' => text.push(b'\r'),
                        b't' => text.push(b'\t'),
                        b'u' => {
                            let mut code = self.hex4(idx)?;
                            idx += 4;
                            if (0xD800..0xDC00).contains(&code) && self.bytes.get(idx..idx + 2) == Some(b"\\u") {
                                let low = self.hex4(idx + 2)?;
                                if (0xDC00..0xE000).contains(&low) {
                                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                                    idx += 6;
                                }
                            }
                            let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
                            let mut buffer = [0u8; 4];
                            text.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
                        }
                        _ => {
                            self.pos = idx - 2;
                            return Err(self.error("invalid escape in a string"));
                        }
                    }
                }
                byte if byte < 0x20 => {
                    self.pos = idx;
                    return Err(self.error("control character in a string"));
                }
                byte => {
                    text.push(byte);
                    idx += 1;
                }
            }
        }
        self.pos = idx + 1;
        String::from_utf8(text).map(Cow::Owned).map_err(|_| self.error("a string is not valid UTF-8"))
    }

    fn hex4(&self, at: usize) -> Result<u32, JsonError> {
        let digits = self.bytes.get(at..at + 4).and_then(|digits| std::str::from_utf8(digits).ok());
        digits.and_then(|digits| u32::from_str_radix(digits, 16).ok()).ok_or_else(|| JsonError { column: at + 1, message: "invalid \\u escape".to_string() })
    }

    /// Decodes a value. The cursor is at its first byte.
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("values nest too deeply"));
        }
        match self.peek() {
            Some(b'"') => Ok(Value::Str(self.string()?.into_owned())),
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Value::Object(entries));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a key"));
                    }
                    let key = self.string()?.into_owned();
                    self.expect(b':')?;
                    self.ws();
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Value::Object(entries));
                        }
                        _ => return Err(self.error("expected `,` or `}`")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(self.error("expected `,` or `]`")),
                    }
                }
            }
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("expected a value")),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, JsonError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        let mut is_float = false;
        while let Some(byte) = self.peek() {
            match byte {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => is_float = true,
                _ => break,
            }
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or("");
        if !is_float && let Ok(value) = text.parse::<i64>() {
            return Ok(Value::Long(value));
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Value::Double(value)),
            _ => {
                self.pos = start;
                Err(self.error("invalid number"))
            }
        }
    }

    /// Skips a value without decoding it, checking only its structure.
    fn skip(&mut self) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'"') => {
                self.skip_string()?;
                Ok(())
            }
            Some(b'{' | b'[') => self.skip_nested(),
            Some(b't') => self.literal(b"true", Value::Null).map(drop),
            Some(b'f') => self.literal(b"false", Value::Null).map(drop),
            Some(b'n') => self.literal(b"null", Value::Null).map(drop),
            Some(b'-' | b'0'..=b'9') => {
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
                    self.pos += 1;
                }
                Ok(())
            }
            _ => Err(self.error("expected a value")),
        }
    }

    fn skip_string(&mut self) -> Result<(), JsonError> {
        let mut at = self.pos + 1;
        loop {
            match memchr::memchr2(b'"', b'\\', &self.bytes[at..]) {
                Some(offset) if self.bytes[at + offset] == b'"' => {
                    self.pos = at + offset + 1;
                    return Ok(());
                }
                Some(offset) => at += offset + 2,
                None => return Err(self.error("unterminated string")),
            }
            if at > self.bytes.len() {
                return Err(self.error("unterminated string"));
            }
        }
    }

    /// Skips an object or array by counting brackets outside strings.
    fn skip_nested(&mut self) -> Result<(), JsonError> {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => self.skip_string()?,
                Some(open @ (b'{' | b'[')) => {
                    stack.push(if open == b'{' { b'}' } else { b']' });
                    self.pos += 1;
                }
                Some(close @ (b'}' | b']')) => {
                    if stack.pop() != Some(close) {
                        return Err(self.error("mismatched bracket"));
                    }
                    self.pos += 1;
                    if stack.is_empty() {
                        return Ok(());
                    }
                }
                Some(_) => self.pos += 1,
                None => return Err(self.error("unterminated object or array")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(names: &[&str], line: &str) -> Result<Vec<Option<Value>>, JsonError> {
        let projection = Projection::new(names.iter().copied());
        let mut out = Vec::new();
        projection.read(line.as_bytes(), &mut out)?;
        Ok(out)
    }

    fn string(text: &str) -> Option<Value> {
        Some(Value::Str(text.into()))
    }

    #[test]
    fn nested_dotted_and_mixed_spellings() {
        let names = ["process.name", "process.parent.name", "event.action"];
        let nested = read(&names, r#"{"process": {"name": "bash", "parent": {"name": "sshd"}}, "event": {"action": "exec"}}"#).unwrap();
        let dotted = read(&names, r#"{"process.name": "bash", "process.parent.name": "sshd", "event.action": "exec"}"#).unwrap();
        let mixed = read(&names, r#"{"process": {"parent.name": "sshd", "name": "bash"}, "event.action": "exec"}"#).unwrap();
        let expected = vec![string("bash"), string("sshd"), string("exec")];
        assert_eq!(nested, expected);
        assert_eq!(dotted, expected);
        assert_eq!(mixed, expected);
    }

    #[test]
    fn unwanted_parts_are_skipped_but_checked() {
        let line = r#"{"skip": {"a": [1, {"b": "x\"]}"}], "c": null}, "keep": 7, "more": "t\\"}"#;
        assert_eq!(read(&["keep"], line).unwrap(), vec![Some(Value::Long(7))]);
        assert!(read(&["keep"], r#"{"skip": {"a": [1, 2}, "keep": 7}"#).is_err());
        assert!(read(&["keep"], r#"{"keep": 7"#).is_err());
        assert!(read(&["keep"], r#"{"keep": 7} x"#).is_err());
        assert_eq!(read(&["keep"], r#"{"keep": 7,}"#).unwrap_err().column, 12);
    }

    #[test]
    fn values_decode() {
        let line = r#"{"a": "\u00e9\ud83d\ude00\n", "b": [1, 2.5, true, null], "c": {"d": "e"}, "f": -12e-1}"#;
        let out = read(&["a", "b", "c", "f"], line).unwrap();
        assert_eq!(out[0], string("é😀\n"));
        assert_eq!(out[1], Some(Value::Array(vec![Value::Long(1), Value::Double(2.5), Value::Bool(true), Value::Null])));
        assert_eq!(out[2], Some(Value::Object(vec![("d".into(), Value::Str("e".into()))])));
        assert_eq!(out[3], Some(Value::Double(-1.2)));
    }

    #[test]
    fn arrays_of_objects_collect_their_values() {
        let out = read(&["a.b", "a"], r#"{"a": [{"b": 1}, {"b": 2}, {"c": 3}]}"#).unwrap();
        assert_eq!(out[0], Some(Value::Array(vec![Value::Long(1), Value::Long(2)])));
        assert!(matches!(out[1], Some(Value::Array(_))));
    }

    #[test]
    fn deep_input_is_an_error_not_a_crash() {
        let line = format!(r#"{{"a": {}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        assert!(read(&["a"], &line).is_err());
        assert!(read(&["b"], &line).is_ok(), "skipping is iterative and has no depth limit");
    }
}
