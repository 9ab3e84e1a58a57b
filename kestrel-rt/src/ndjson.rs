//! Reading events from NDJSON with a projection: only the fields the bundle reads are
//! decoded; everything else is skipped at scanning speed, without building a DOM.
//!
//! Fields may be written as nested objects (`{"process": {"name": "x"}}`), as dotted keys
//! (`{"process.name": "x"}`), or mixed; an array of objects contributes the values of
//! its elements (`{"a": [{"b": 1}, {"b": 2}]}` gives `a.b` = `[1, 2]`), as Elasticsearch
//! reads documents.

use crate::json_scan::find_quote_or_backslash;
use kestrel_bundle::semantics::Value;
use std::borrow::Cow;
use std::ops::Range;

/// Deepest nesting of a decoded value; deeper input is a malformed line.
pub const MAX_DEPTH: usize = 64;

/// The most values a line's read fields may decode to: twice the slots guest memory's
/// data region holds (1 MiB of 16-byte slots), so an event over it could never be
/// evaluated anyway. A line of `[0,0,…]` decodes to 16 times its size in values; this
/// keeps a 16 MiB line's from taking 256 MB.
pub const MAX_VALUES: usize = 1 << 17;

/// Which dotted field names to decode, as a tree of name segments.
#[derive(Clone, Default, Debug)]
pub struct Projection {
    root: Node,
    fields: usize,
    raws: usize,
}

#[derive(Clone, Default, Debug)]
struct Node {
    field: Option<usize>,
    /// A field whose value is not decoded: where its text is goes to the raw outputs
    /// (the first spelling's, when there are several; never from inside an array).
    raw: Option<usize>,
    /// Projected fields strictly below this node: once an object has given them all,
    /// the rest of it is skipped.
    below: usize,
    /// Few per node (an event's top-level objects, an object's projected keys): a
    /// linear scan beats hashing every key of every line.
    children: Vec<(Box<[u8]>, Node)>,
    /// Bit *n* is set when a child's name is *n* bytes long (names of 64 bytes or more
    /// set bit 63 and are always compared): most keys of an event are not projected,
    /// and are turned away on their length alone.
    lengths: u64,
}

/// The bit of [`Node::lengths`] for a name of `len` bytes.
#[inline]
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl Node {
    #[inline]
    fn child(&self, segment: &[u8]) -> Option<&Node> {
        if self.lengths & length_bit(segment.len()) == 0 {
            return None;
        }
        self.children.iter().find(|(name, _)| name.len() == segment.len() && name.iter().zip(segment).all(|(a, b)| a == b)).map(|(_, node)| node)
    }

    fn child_mut(&mut self, segment: &[u8]) -> &mut Node {
        match self.children.iter().position(|(name, _)| **name == *segment) {
            Some(idx) => &mut self.children[idx].1,
            None => {
                self.lengths |= length_bit(segment.len());
                self.children.push((segment.into(), Node::default()));
                &mut self.children.last_mut().expect("just pushed").1
            }
        }
    }
}

fn count_below(node: &mut Node) -> usize {
    node.below = node.children.iter_mut().map(|(_, child)| count_below(child)).sum();
    node.below + usize::from(node.field.is_some()) + usize::from(node.raw.is_some())
}

impl Projection {
    /// Field *i* of the result is `names[i]`.
    pub fn new<'n>(names: impl IntoIterator<Item = &'n str>) -> Projection {
        Projection::with_raw(names, [])
    }

    /// As [`Projection::new`], and raw output *i* is where the text of the value of
    /// `raw_names[i]` is in the line, undecoded: for fields read once, from the line,
    /// such as an event's timestamp (no allocation). A name in both lists is decoded.
    pub fn with_raw<'n>(names: impl IntoIterator<Item = &'n str>, raw_names: impl IntoIterator<Item = &'n str>) -> Projection {
        let mut projection = Projection::default();
        for (idx, name) in names.into_iter().enumerate() {
            projection.node_mut(name).field = Some(idx);
            projection.fields = idx + 1;
        }
        for (idx, name) in raw_names.into_iter().enumerate() {
            let node = projection.node_mut(name);
            if node.field.is_none() {
                node.raw = Some(idx);
            }
            projection.raws = idx + 1;
        }
        count_below(&mut projection.root);
        projection
    }

    fn node_mut(&mut self, name: &str) -> &mut Node {
        let mut node = &mut self.root;
        for segment in name.split('.') {
            node = node.child_mut(segment.as_bytes());
        }
        node
    }

    pub fn len(&self) -> usize {
        self.fields
    }

    pub fn is_empty(&self) -> bool {
        self.fields == 0
    }

    /// Decodes the projected fields of one JSON object line into `out` (index → value;
    /// absent fields stay `None`). `out` is resized to `len()`.
    pub fn read(&self, line: &str, out: &mut Vec<Option<Value>>) -> Result<(), JsonError> {
        self.read_with_raw(line, out, &mut Vec::new())
    }

    /// [`Projection::read`], and the raw fields' places into `raw` (resized to the
    /// number of raw names; absent ones, and ones decoded instead, stay `None`).
    pub fn read_with_raw(&self, line: &str, out: &mut Vec<Option<Value>>, raw: &mut Vec<Option<Range<usize>>>) -> Result<(), JsonError> {
        self.read_into(line, out, raw, None)
    }

    /// [`Projection::read_with_raw`], leaving the first value of a field that is a
    /// string without escapes undecoded: where its text is goes to `deferred` (index →
    /// the text between the quotes), for [`settle`] to decode, or for the caller to drop
    /// when no rule will read the event. (Spelled again, or next to fields decoded from
    /// a whole array or object, it is decoded at once, so values keep their order.)
    pub fn read_deferred(
        &self,
        line: &str,
        out: &mut Vec<Option<Value>>,
        raw: &mut Vec<Option<Range<usize>>>,
        deferred: &mut Vec<Option<Range<usize>>>,
    ) -> Result<(), JsonError> {
        deferred.clear();
        deferred.resize(self.fields, None);
        self.read_into(line, out, raw, Some(deferred))
    }

    fn read_into(
        &self,
        line: &str,
        out: &mut Vec<Option<Value>>,
        raw: &mut Vec<Option<Range<usize>>>,
        deferred: Option<&mut [Option<Range<usize>>]>,
    ) -> Result<(), JsonError> {
        if out.capacity() == 0 {
            // The usual case: the last line's vector went into its event. One allocation
            // of exactly this size (growing an empty vector takes room for four and
            // costs more).
            *out = (0..self.fields).map(|_| None).collect();
        } else {
            out.clear();
            out.resize(self.fields, None);
        }
        raw.clear();
        raw.resize(self.raws, None);
        let mut cursor = Cursor { text: line, bytes: line.as_bytes(), pos: 0, assigned: 0, values_left: MAX_VALUES };
        cursor.ws();
        if cursor.peek() != Some(b'{') {
            return Err(cursor.error("expected a JSON object"));
        }
        cursor.object(&self.root, &mut Outputs { values: out, raw, deferred }, 0)?;
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

/// Where [`Cursor::object`] puts what it finds.
struct Outputs<'o> {
    values: &'o mut [Option<Value>],
    raw: &'o mut [Option<Range<usize>>],
    /// Where undecoded first values are, when the caller defers them.
    deferred: Option<&'o mut [Option<Range<usize>>]>,
}

impl Outputs<'_> {
    /// Whether field `idx`'s value may be left undecoded: it has none yet.
    fn defers(&self, idx: usize) -> bool {
        self.values[idx].is_none() && self.deferred.as_ref().is_some_and(|deferred| deferred[idx].is_none())
    }

    /// Decodes field `idx`'s deferred value before anything else is assigned to it.
    fn settle_one(&mut self, text: &str, idx: usize) {
        if let Some(deferred) = self.deferred.as_deref_mut() {
            settle_one(text, self.values, deferred, idx);
        }
    }

    /// Decodes every deferred value, before values decoded from a whole array or
    /// object are assigned (to fields that may be any of them).
    fn settle_all(&mut self, text: &str) {
        if let Some(deferred) = self.deferred.as_deref_mut() {
            settle(text, self.values, deferred);
        }
    }
}

/// Decodes the values [`Projection::read_deferred`] left in `deferred` (of `line`) into
/// `out`.
pub fn settle(line: &str, out: &mut [Option<Value>], deferred: &mut [Option<Range<usize>>]) {
    for idx in 0..deferred.len() {
        settle_one(line, out, deferred, idx);
    }
}

/// [`settle`] of field `idx` only.
pub fn settle_one(text: &str, out: &mut [Option<Value>], deferred: &mut [Option<Range<usize>>], idx: usize) {
    if let Some(range) = deferred[idx].take() {
        // The first value; anything already there came after it.
        if let Some(later) = out[idx].replace(Value::Str(text[range].to_owned())) {
            assign(out, idx, later);
        }
    }
}

struct Cursor<'a> {
    /// The line, as text: strings between ASCII quotes are slices of it, with no
    /// second UTF-8 check.
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Fields given their first value so far.
    assigned: usize,
    /// Values it may still decode ([`MAX_VALUES`]).
    values_left: usize,
}

/// Puts `value` in slot `idx`; a field seen again (a second object element, or both a
/// dotted and a nested spelling) collects its values into an array.
fn assign(out: &mut [Option<Value>], idx: usize, value: Value) -> bool {
    match &mut out[idx] {
        slot @ None => {
            *slot = Some(value);
            return true;
        }
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
    false
}

/// Assigns the projected descendants of `node` found inside an already decoded value.
/// Returns how many fields got their first value.
fn assign_from(node: &Node, value: &Value, out: &mut [Option<Value>]) -> usize {
    let mut assigned = 0;
    match value {
        Value::Object(entries) => {
            for (key, inner) in entries {
                if let Some(child) = walk(node, key.as_bytes()) {
                    if let Some(idx) = child.field {
                        assigned += usize::from(assign(out, idx, inner.clone()));
                    }
                    if !child.children.is_empty() {
                        assigned += assign_from(child, inner, out);
                    }
                }
            }
        }
        Value::Array(items) => assigned += items.iter().map(|item| assign_from(node, item, out)).sum::<usize>(),
        _ => {}
    }
    assigned
}

/// Follows a possibly dotted key down the tree.
#[inline(always)]
fn walk<'n>(node: &'n Node, key: &[u8]) -> Option<&'n Node> {
    let mut node = node;
    let mut rest = key;
    loop {
        if let Some(child) = node.child(rest) {
            return Some(child);
        }
        (node, rest) = dotted_child(node, rest)?;
    }
}

/// The child named by the first segment of a dotted key, and the key's rest. Children's
/// names hold no dot, so the segment ends where a child's name would: only those places
/// (the few lengths of [`Node::lengths`]) are looked at, never every byte of the key.
#[inline(always)]
fn dotted_child<'n, 'k>(node: &'n Node, key: &'k [u8]) -> Option<(&'n Node, &'k [u8])> {
    let mut lengths = node.lengths & (length_bit(key.len()) - 1) & !length_bit(63);
    while lengths != 0 {
        let len = lengths.trailing_zeros() as usize;
        lengths &= lengths - 1;
        if key.get(len) == Some(&b'.')
            && let Some(child) = node.child(&key[..len])
        {
            return Some((child, &key[len + 1..]));
        }
    }
    if node.lengths & length_bit(63) == 0 {
        return None;
    }
    long_dotted_child(node, key)
}

/// [`dotted_child`] among children named by 63 bytes or more (rare: out of line).
#[inline(never)]
fn long_dotted_child<'n, 'k>(node: &'n Node, key: &'k [u8]) -> Option<(&'n Node, &'k [u8])> {
    node.children
        .iter()
        .find(|(name, _)| name.len() >= 63 && key.get(name.len()) == Some(&b'.') && key.starts_with(name))
        .map(|(name, child)| (child, &key[name.len() + 1..]))
}

/// Calls `each` with every string of a raw value (the value, or its elements when it is
/// an array; other elements are passed over): borrowed from the line unless escaped.
pub fn raw_strings(text: &str, mut each: impl FnMut(&str)) -> Result<(), JsonError> {
    let mut cursor = Cursor { text, bytes: text.as_bytes(), pos: 0, assigned: 0, values_left: MAX_VALUES };
    match cursor.peek() {
        Some(b'"') => each(&cursor.string()?),
        Some(b'[') => {
            cursor.pos += 1;
            cursor.ws();
            if cursor.peek() == Some(b']') {
                return Ok(());
            }
            loop {
                cursor.ws();
                match cursor.peek() {
                    Some(b'"') => each(&cursor.string()?),
                    _ => cursor.skip()?,
                }
                cursor.ws();
                match cursor.peek() {
                    Some(b',') => cursor.pos += 1,
                    Some(b']') => break,
                    _ => return Err(cursor.error("expected `,` or `]`")),
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A raw value, decoded.
pub enum RawValue<'a> {
    /// A string, borrowed from the line unless escaped.
    Text(Cow<'a, str>),
    Other(Value),
}

/// Decodes a raw value (its column in errors counts from the value's first byte).
pub fn raw_value(text: &str) -> Result<RawValue<'_>, JsonError> {
    let mut cursor = Cursor { text, bytes: text.as_bytes(), pos: 0, assigned: 0, values_left: MAX_VALUES };
    match cursor.peek() {
        Some(b'"') => cursor.string().map(RawValue::Text),
        _ => cursor.value(0).map(RawValue::Other),
    }
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
    ///
    /// Once the object has given every projected field below `node` a first value, the
    /// rest of it is skipped (checked for balanced brackets and terminated strings only):
    /// most of an event's bytes come after the few fields a bundle reads. So a field
    /// spelled twice in one object (nested and dotted) keeps the first spelling's value
    /// when it had one; otherwise all of them are collected into an array.
    fn object(&mut self, node: &Node, out: &mut Outputs, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("objects nest too deeply"));
        }
        let before = self.assigned;
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
            let key = self.key()?;
            self.expect(b':')?;
            self.ws();
            match walk(node, &key) {
                None => self.skip()?,
                Some(child) => match (child.field, child.raw, child.children.is_empty()) {
                    (None, Some(slot), true) => {
                        let start = self.pos;
                        self.skip()?;
                        if out.raw[slot].is_none() {
                            out.raw[slot] = Some(start..self.pos);
                            self.assigned += 1;
                        }
                    }
                    (None, _, true) => self.skip()?,
                    (None, _, false) => match self.peek() {
                        Some(b'{') => self.object(child, out, depth + 1)?,
                        Some(b'[') => {
                            let value = self.value(depth + 1)?;
                            out.settle_all(self.text);
                            self.assigned += assign_from(child, &value, out.values);
                        }
                        _ => self.skip()?,
                    },
                    (Some(idx), _, true) if self.defer(idx, out) => {}
                    (Some(idx), _, leaf) => {
                        let value = self.value(depth + 1)?;
                        if leaf {
                            out.settle_one(self.text, idx);
                        } else {
                            out.settle_all(self.text);
                            self.assigned += assign_from(child, &value, out.values);
                        }
                        self.assigned += usize::from(assign(out.values, idx, value));
                    }
                },
            }
            self.ws();
            match self.peek() {
                Some(b',') if self.assigned - before >= node.below => return self.skip_rest(),
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    /// Skips the rest of an object (the cursor is inside it, at a `,`).
    fn skip_rest(&mut self) -> Result<(), JsonError> {
        let skipped = crate::json_scan::skip_rest(self.bytes, self.pos);
        self.skipped(skipped)
    }

    /// Leaves the value of field `idx` at the cursor undecoded, if it may (the caller
    /// defers, the field has no value yet, and the value is a string without escapes):
    /// its place goes to the deferred outputs.
    #[inline(always)]
    fn defer(&mut self, idx: usize, out: &mut Outputs) -> bool {
        if !out.defers(idx) || self.peek() != Some(b'"') {
            return false;
        }
        let start = self.pos + 1;
        match (find_quote_or_backslash(self.bytes, start), out.deferred.as_deref_mut()) {
            (Some(end), Some(deferred)) if self.bytes[end] == b'"' => {
                deferred[idx] = Some(start..end);
                self.pos = end + 1;
                self.assigned += 1;
                true
            }
            _ => false,
        }
    }

    /// A string; borrowed when it has no escapes. The cursor is at `"`.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        let start = self.pos + 1;
        match find_quote_or_backslash(self.bytes, start) {
            Some(end) if self.bytes[end] == b'"' => {
                self.pos = end + 1;
                self.text.get(start..end).map(Cow::Borrowed).ok_or_else(|| self.error("a string is not valid UTF-8"))
            }
            Some(_) => self.escaped_string(start),
            None => Err(self.error("unterminated string")),
        }
    }

    /// An object key, as bytes: keys are only compared with the projection's names, so
    /// they need no UTF-8 check (a skipped member's key is never decoded).
    fn key(&mut self) -> Result<Cow<'a, [u8]>, JsonError> {
        let start = self.pos + 1;
        match find_quote_or_backslash(self.bytes, start) {
            Some(end) if self.bytes[end] == b'"' => {
                self.pos = end + 1;
                Ok(Cow::Borrowed(&self.bytes[start..end]))
            }
            Some(_) => Ok(Cow::Owned(self.escaped_string(start)?.into_owned().into_bytes())),
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
        self.values_left = self
            .values_left
            .checked_sub(1)
            .ok_or_else(|| self.error(format!("the fields the bundle reads hold more than {MAX_VALUES} values (too many for the engine's guest memory)")))?;
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
        let text = self.text.get(start..self.pos).unwrap_or("");
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

    /// Skips a value without decoding it, checking only its structure. Strings and
    /// numbers, most skipped values, are passed inline; the rest out of line.
    #[inline(always)]
    fn skip(&mut self) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'-' | b'0'..=b'9') => {
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
                    self.pos += 1;
                }
                Ok(())
            }
            _ => self.skip_other(),
        }
    }

    /// [`Cursor::skip`] of anything but a string or a number.
    #[inline(never)]
    fn skip_other(&mut self) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'{' | b'[') => self.skip_nested(),
            Some(b't') => self.literal(b"true", Value::Null).map(drop),
            Some(b'f') => self.literal(b"false", Value::Null).map(drop),
            Some(b'n') => self.literal(b"null", Value::Null).map(drop),
            _ => Err(self.error("expected a value")),
        }
    }

    #[inline(always)]
    fn skip_string(&mut self) -> Result<(), JsonError> {
        let mut at = self.pos + 1;
        loop {
            match find_quote_or_backslash(self.bytes, at) {
                Some(end) if self.bytes[end] == b'"' => {
                    self.pos = end + 1;
                    return Ok(());
                }
                Some(end) => at = end + 2,
                None => return Err(self.error("unterminated string")),
            }
            if at > self.bytes.len() {
                return Err(self.error("unterminated string"));
            }
        }
    }

    /// Skips an object or array (`json_scan`, 64 bytes at a time).
    fn skip_nested(&mut self) -> Result<(), JsonError> {
        let skipped = crate::json_scan::skip_container(self.bytes, self.pos);
        self.skipped(skipped)
    }

    /// Moves past a skipped value, or reports why it could not be skipped.
    fn skipped(&mut self, result: Result<usize, crate::json_scan::SkipError>) -> Result<(), JsonError> {
        match result {
            Ok(end) => {
                self.pos = end;
                Ok(())
            }
            Err(crate::json_scan::SkipError::Unbalanced(at)) => {
                self.pos = at;
                Err(self.error("mismatched bracket"))
            }
            Err(crate::json_scan::SkipError::Unterminated) => Err(self.error("unterminated object or array")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(names: &[&str], line: &str) -> Result<Vec<Option<Value>>, JsonError> {
        let projection = Projection::new(names.iter().copied());
        let mut out = Vec::new();
        projection.read(line, &mut out)?;
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
        assert!(read(&["keep"], r#"{"skip": {"a": [1, 2}, "keep": 7"#).is_err());
        assert!(read(&["keep"], r#"{"skip": {"a": [1, 2]}}}, "keep": 7}"#).is_err());
        assert!(read(&["keep"], r#"{"keep": 7"#).is_err());
        assert!(read(&["keep"], r#"{"keep": 7} x"#).is_err());
        assert_eq!(read(&["keep", "other"], r#"{"keep": 7,}"#).unwrap_err().column, 12);
        // Once every projected field has a value, the rest is only checked for balance.
        assert_eq!(read(&["keep"], r#"{"keep": 7,}"#).unwrap(), vec![Some(Value::Long(7))]);
        assert!(read(&["keep"], r#"{"keep": 7, "x": [}"#).is_err());
        assert!(read(&["keep"], r#"{"keep": 7, "x": "}"#).is_err());
    }

    #[test]
    fn a_field_given_twice_keeps_the_first_value_once_all_are_found() {
        let twice = r#"{"process": {"name": "a"}, "process.name": "b"}"#;
        assert_eq!(read(&["process.name"], twice).unwrap(), vec![string("a")]);
        // While other projected fields are missing, repeated ones are collected.
        let out = read(&["process.name", "event.action"], twice).unwrap();
        assert_eq!(out[0], Some(Value::Array(vec![Value::Str("a".into()), Value::Str("b".into())])));
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

    /// A read field's values are bounded: an array of `MAX_VALUES - 1` items (with the
    /// array itself, `MAX_VALUES` values) reads; one more item is an error at that item.
    #[test]
    fn a_line_decodes_at_most_max_values() {
        let line = |items: usize| format!("{{\"a\":[{}],\"b\":1}}", vec!["0"; items].join(","));
        let out = read(&["a"], &line(MAX_VALUES - 1)).unwrap();
        assert!(matches!(&out[0], Some(Value::Array(items)) if items.len() == MAX_VALUES - 1));
        // Every read field's values count: `b` is one more.
        assert!(read(&["a", "b"], &line(MAX_VALUES - 1)).is_err());
        let error = read(&["a"], &line(MAX_VALUES)).unwrap_err();
        assert_eq!(error.column, 7 + 2 * (MAX_VALUES - 1), "{error:?}");
        assert!(error.message.contains("more than 131072 values"), "{error:?}");
        // Unread fields are skipped, not decoded: any size.
        assert!(read(&["b"], &line(2 * MAX_VALUES)).is_ok());
    }

    #[test]
    fn arrays_of_objects_collect_their_values() {
        let out = read(&["a.b", "a"], r#"{"a": [{"b": 1}, {"b": 2}, {"c": 3}]}"#).unwrap();
        assert_eq!(out[0], Some(Value::Array(vec![Value::Long(1), Value::Long(2)])));
        assert!(matches!(out[1], Some(Value::Array(_))));
    }

    #[test]
    fn raw_fields_give_their_text_undecoded() {
        let projection = Projection::with_raw(["a", "both"], ["t", "c.d", "both", "absent"]);
        let line = r#"{"t": "2024-01-01T00:00:00Z", "a": 1, "c": {"d": ["x", "y\u0041"]}, "c.d": "second", "both": 2}"#;
        let (mut out, mut raw) = (Vec::new(), Vec::new());
        projection.read_with_raw(line, &mut out, &mut raw).unwrap();
        assert_eq!(out, vec![Some(Value::Long(1)), Some(Value::Long(2))]);
        let texts: Vec<Option<&str>> = raw.iter().map(|range| range.clone().map(|range| &line[range])).collect();
        assert_eq!(texts, vec![Some(r#""2024-01-01T00:00:00Z""#), Some(r#"["x", "y\u0041"]"#), None, None], "the first spelling; a decoded name is not raw");
        let mut strings = Vec::new();
        raw_strings(texts[1].unwrap(), |text| strings.push(text.to_string())).unwrap();
        assert_eq!(strings, ["x", "yA"]);
        assert!(matches!(raw_value(texts[0].unwrap()), Ok(RawValue::Text(Cow::Borrowed("2024-01-01T00:00:00Z")))));
        assert!(matches!(raw_value("12"), Ok(RawValue::Other(Value::Long(12)))));
        // Skipped raw values are checked for structure only; decoding them reports the rest.
        assert_eq!(raw_value(r#""\q""#).err().map(|error| error.column), Some(2));
        assert!(raw_strings(r#"["a" "b"]"#, |_| {}).is_err());
    }

    #[test]
    fn dotted_keys_reach_names_of_every_length() {
        let long = "l".repeat(70);
        let names = ["a.b", "abc.d", &format!("{long}.x"), &format!("{}.y", "m".repeat(63))];
        let line = format!(r#"{{"a.b": 1, "abc": {{"d": 2}}, "{long}.x": 3, "{}": {{"y": 4}}, "a.bc": 5, "ab.c": 6}}"#, "m".repeat(63));
        assert_eq!(read(&names, &line).unwrap(), vec![Some(Value::Long(1)), Some(Value::Long(2)), Some(Value::Long(3)), Some(Value::Long(4))]);
        assert_eq!(read(&["a.bc"], r#"{"a": {"b": 1}, "a.b": 2}"#).unwrap(), vec![None]);
    }

    #[test]
    fn deferred_strings_settle_to_what_is_decoded_at_once() {
        let cases: [(&[&str], &str); 7] = [
            (&["process.name", "event.action"], r#"{"process": {"name": "bash"}, "event": {"action": "exec"}}"#),
            (&["process.name", "event.action"], r#"{"process": {"name": "a"}, "process.name": "b", "process": {"name": ["c"]}}"#),
            (&["a.b", "a"], r#"{"a": {"b": "x"}, "a": [{"b": "y"}, {"b": 2}], "a.b": "z"}"#),
            (&["a.b", "c"], r#"{"a.b": "x", "a": [{"b": "y"}], "c": "\u0041"}"#),
            (&["a", "b"], r#"{"a": "\n", "b": "plain", "a": "second"}"#),
            (&["a", "b"], r#"{"a": 1, "b": null, "a": "two"}"#),
            (&["k"], r#"{"k": "v", "k": "w", "k": "x"}"#),
        ];
        for (names, line) in cases {
            let projection = Projection::new(names.iter().copied());
            let (mut eager, mut raw) = (Vec::new(), Vec::new());
            projection.read_with_raw(line, &mut eager, &mut raw).unwrap();
            let (mut late, mut deferred) = (Vec::new(), Vec::new());
            projection.read_deferred(line, &mut late, &mut raw, &mut deferred).unwrap();
            settle(line, &mut late, &mut deferred);
            assert_eq!(late, eager, "{line}");
            assert!(deferred.iter().all(Option::is_none));
        }
        // A deferred string is the text between its quotes, undecoded.
        let projection = Projection::new(["p"]);
        let (mut out, mut raw, mut deferred) = (Vec::new(), Vec::new(), Vec::new());
        projection.read_deferred(r#"{"p": "bash"}"#, &mut out, &mut raw, &mut deferred).unwrap();
        assert_eq!((out, deferred), (vec![None], vec![Some(7..11)]));
    }

    #[test]
    fn deep_input_is_an_error_not_a_crash() {
        let line = format!(r#"{{"a": {}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        assert!(read(&["a"], &line).is_err());
        assert!(read(&["b"], &line).is_ok(), "skipping is iterative and has no depth limit");
    }
}
