//! A small writer of nested JSON objects, for events: no intermediate tree, one
//! buffer, keys written in the order the caller gives them.

/// Builds one JSON object into a `String`.
pub struct JsonWriter {
    out: String,
    /// Per open object: whether it has a member yet.
    has_member: Vec<bool>,
}

impl Default for JsonWriter {
    fn default() -> JsonWriter {
        JsonWriter::new()
    }
}

impl JsonWriter {
    pub fn new() -> JsonWriter {
        let mut out = String::with_capacity(4096);
        out.push('{');
        let mut has_member = Vec::with_capacity(8);
        has_member.push(false);
        JsonWriter { out, has_member }
    }

    fn key(&mut self, key: &str) {
        let has = self.has_member.last_mut().expect("an object is open");
        if *has {
            self.out.push(',');
        }
        *has = true;
        push_string(&mut self.out, key);
        self.out.push(':');
    }

    /// Opens a nested object under `key`.
    pub fn open(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.push('{');
        self.has_member.push(false);
        self
    }

    /// Closes the innermost nested object.
    pub fn close(&mut self) -> &mut Self {
        self.out.push('}');
        self.has_member.pop();
        self
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_string(&mut self.out, value);
        self
    }

    pub fn num(&mut self, key: &str, value: impl Into<i64>) -> &mut Self {
        self.key(key);
        push_int(&mut self.out, value.into());
        self
    }

    /// A number written as a JSON string (ECS keeps ids as keywords), without allocating.
    pub fn num_str(&mut self, key: &str, value: impl Into<i64>) -> &mut Self {
        self.key(key);
        self.out.push('"');
        push_int(&mut self.out, value.into());
        self.out.push('"');
        self
    }

    /// Nanoseconds since the epoch as an RFC 3339 string in UTC with nanoseconds
    /// (`2026-11-29T05:00:00.123456789Z`), written in place.
    pub fn time(&mut self, key: &str, nanos: i64) -> &mut Self {
        self.key(key);
        self.out.push('"');
        kestrel_bundle::time::push_rfc3339(&mut self.out, nanos);
        self.out.push('"');
        self
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    pub fn strs<'a>(&mut self, key: &str, values: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            push_string(&mut self.out, value);
        }
        self.out.push(']');
        self
    }

    /// `values` joined by `separator`, as one JSON string, without building it first.
    pub fn joined<'a>(&mut self, key: &str, values: impl IntoIterator<Item = &'a str>, separator: &str) -> &mut Self {
        self.key(key);
        self.out.push('"');
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                push_raw(&mut self.out, separator);
            }
            push_raw(&mut self.out, value);
        }
        self.out.push('"');
        self
    }

    /// The finished object (closes whatever is still open).
    pub fn finish(mut self) -> String {
        while !self.has_member.is_empty() {
            self.close();
        }
        self.out
    }
}

/// Appends `value` as a JSON string: runs of bytes that need no escape are copied whole.
fn push_string(out: &mut String, value: &str) {
    out.push('"');
    push_raw(out, value);
    out.push('"');
}

/// Appends `value` escaped for inside a JSON string.
fn push_raw(out: &mut String, value: &str) {
    // Most values need no escape: one branch-free pass (which vectorizes) says so.
    let clean = !value.bytes().fold(false, |dirty, byte| dirty | (byte < 0x20) | (byte == b'"') | (byte == b'\\'));
    if clean {
        out.push_str(value);
        return;
    }
    let bytes = value.as_bytes();
    let mut start = 0;
    for (at, byte) in bytes.iter().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        // Every byte that stops the run is ASCII, so both cuts are char boundaries.
        out.push_str(&value[start..at]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{:04x}", byte));
        } else {
            out.push_str(escape);
        }
        start = at + 1;
    }
    out.push_str(&value[start..]);
}

/// Appends the decimal digits of `value`.
fn push_int(out: &mut String, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_reference_formatting() {
        for value in [0, 7, -7, 1234567890, i64::MIN, i64::MAX] {
            let mut out = String::new();
            push_int(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn writes_nested_objects_that_parse_back() {
        let mut json = JsonWriter::new();
        json.str("@timestamp", "t")
            .open("process")
            .num("pid", 7)
            .strs("args", ["a\"b", "c\\d\n\u{1}"])
            .joined("command_line", ["a\"b", "c"], " ")
            .open("parent")
            .bool("interactive", true);
        let text = json.finish();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["process"]["args"][0], "a\"b");
        assert_eq!(value["process"]["args"][1], "c\\d\n\u{1}");
        assert_eq!(value["process"]["parent"]["interactive"], true);
        assert_eq!(value["process"]["command_line"], "a\"b c");
        assert_eq!(value["@timestamp"], "t");
    }
}
