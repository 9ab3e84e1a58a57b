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
        JsonWriter { out: String::from("{"), has_member: vec![false] }
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
        self.out.push_str(&value.into().to_string());
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

    /// The finished object (closes whatever is still open).
    pub fn finish(mut self) -> String {
        while !self.has_member.is_empty() {
            self.close();
        }
        self.out
    }
}

/// Appends `value` as a JSON string.
fn push_string(out: &mut String, value: &str) {
    out.push('"');
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch if (ch as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", ch as u32)),
            ch => out.push(ch),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_objects_that_parse_back() {
        let mut json = JsonWriter::new();
        json.str("@timestamp", "t").open("process").num("pid", 7).strs("args", ["a\"b", "c\\d\n\u{1}"]).open("parent").bool("interactive", true);
        let text = json.finish();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["process"]["args"][0], "a\"b");
        assert_eq!(value["process"]["args"][1], "c\\d\n\u{1}");
        assert_eq!(value["process"]["parent"]["interactive"], true);
        assert_eq!(value["@timestamp"], "t");
    }
}
