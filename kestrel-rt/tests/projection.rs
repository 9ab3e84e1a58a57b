//! The projection parser against a reference: random JSON documents are generated as
//! trees, written as text (nested objects sometimes spelled as dotted keys, random
//! whitespace, escapes), and every projected field must come out as the tree says. Then
//! the texts are mangled, and the parser must never panic.

use kestrel_bundle::semantics::Value;
use kestrel_rt::ndjson::Projection;

/// A generated JSON value.
#[derive(Clone, Debug)]
enum Tree {
    Scalar(Value, String),
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

struct Random(u64);

impl Random {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound.max(1) as u64) as usize
    }
}

const KEYS: &[&str] = &["a", "b", "c", "d", "@t", "é"];
/// Strings as JSON text and as decoded.
const STRINGS: &[(&str, &str)] = &[
    (r#""x""#, "x"),
    (r#""""#, ""),
    (r#""q\"uote""#, "q\"uote"),
    (r#""back\\slash\\""#, "back\\slash\\"),
    (r#""\u00e9t\u00E9""#, "été"),
    (r#""{[not]}, \"brackets\":""#, "{[not]}, \"brackets\":"),
    (
        r#""a longer string that crosses a sixty-four byte block boundary, with \/ and \t""#,
        "a longer string that crosses a sixty-four byte block boundary, with / and \t",
    ),
    (r#""\ud83d\ude00""#, "😀"),
];

fn scalar(random: &mut Random) -> Tree {
    match random.next(6) {
        0 => {
            let (text, value) = STRINGS[random.next(STRINGS.len())];
            Tree::Scalar(Value::Str(value.to_string()), text.to_string())
        }
        1 => {
            let number = random.next(2_000_000) as i64 - 1_000_000;
            Tree::Scalar(Value::Long(number), number.to_string())
        }
        2 => Tree::Scalar(Value::Double(-2.5e-3), "-2.5e-3".to_string()),
        3 => Tree::Scalar(Value::Bool(true), "true".to_string()),
        4 => Tree::Scalar(Value::Bool(false), "false".to_string()),
        _ => Tree::Scalar(Value::Null, "null".to_string()),
    }
}

fn object(random: &mut Random, depth: usize) -> Tree {
    let mut keys: Vec<&str> = KEYS.to_vec();
    let mut members = Vec::new();
    for _ in 0..random.next(5) {
        let key = keys.remove(random.next(keys.len()));
        members.push((key.to_string(), value(random, depth + 1)));
    }
    Tree::Object(members)
}

fn value(random: &mut Random, depth: usize) -> Tree {
    match random.next(if depth < 4 { 8 } else { 3 }) {
        0 => Tree::Array((0..random.next(3)).map(|_| scalar(random)).collect()),
        1..=2 => scalar(random),
        3..=5 => object(random, depth),
        _ => Tree::Array((0..1 + random.next(3)).map(|_| object(random, depth + 1)).collect()),
    }
}

fn space(random: &mut Random, text: &mut String) {
    text.push_str([" ", "", "", "\t", "  "][random.next(5)]);
}

/// Writes `tree`; the members of an object member are sometimes written as dotted keys
/// of the object around it (`{"a": {"b": 1}}` as `{"a.b": 1}`).
fn write(tree: &Tree, random: &mut Random, text: &mut String) {
    match tree {
        Tree::Scalar(_, written) => text.push_str(written),
        Tree::Array(items) => {
            text.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    text.push(',');
                }
                space(random, text);
                write(item, random, text);
                space(random, text);
            }
            text.push(']');
        }
        Tree::Object(members) => {
            text.push('{');
            let mut first = true;
            write_members(members, "", random, text, &mut first);
            text.push('}');
        }
    }
}

fn write_members(members: &[(String, Tree)], prefix: &str, random: &mut Random, text: &mut String, first: &mut bool) {
    for (key, tree) in members {
        let name = format!("{prefix}{key}");
        if let Tree::Object(inner) = tree
            && !inner.is_empty()
            && random.next(3) == 0
        {
            write_members(inner, &format!("{name}."), random, text, first);
            continue;
        }
        if !*first {
            text.push(',');
        }
        *first = false;
        space(random, text);
        text.push_str(&serde_json::to_string(&name).unwrap());
        space(random, text);
        text.push(':');
        space(random, text);
        write(tree, random, text);
        space(random, text);
    }
}

/// Every path (through arrays), and whether its value there holds no object.
fn leaf_paths(tree: &Tree, prefix: &str, out: &mut Vec<(String, bool)>) {
    match tree {
        Tree::Object(members) => {
            for (key, inner) in members {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                out.push((path.clone(), !holds_object(inner)));
                leaf_paths(inner, &path, out);
            }
        }
        Tree::Array(items) => items.iter().for_each(|item| leaf_paths(item, prefix, out)),
        Tree::Scalar(..) => {}
    }
}

fn holds_object(tree: &Tree) -> bool {
    match tree {
        Tree::Object(_) => true,
        Tree::Array(items) => items.iter().any(holds_object),
        Tree::Scalar(..) => false,
    }
}

fn to_value(tree: &Tree) -> Value {
    match tree {
        Tree::Scalar(value, _) => value.clone(),
        Tree::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Tree::Object(members) => Value::Object(members.iter().map(|(key, inner)| (key.clone(), to_value(inner))).collect()),
    }
}

/// The values at `path`, in document order (arrays contribute each element's).
fn find(tree: &Tree, path: &[&str], out: &mut Vec<Value>) {
    match tree {
        Tree::Object(members) => {
            for (key, inner) in members {
                if key == path[0] {
                    if path.len() == 1 {
                        out.push(to_value(inner));
                    } else {
                        find(inner, &path[1..], out);
                    }
                }
            }
        }
        Tree::Array(items) => items.iter().for_each(|item| find(item, path, out)),
        Tree::Scalar(..) => {}
    }
}

/// A field seen several times collects its values into one array (arrays flattened).
fn merge(values: Vec<Value>) -> Option<Value> {
    let mut values = values.into_iter();
    let mut merged = values.next()?;
    for value in values {
        let mut items = match merged {
            Value::Array(items) => items,
            other => vec![other],
        };
        match value {
            Value::Array(more) => items.extend(more),
            other => items.push(other),
        }
        merged = Value::Array(items);
    }
    Some(merged)
}

#[test]
fn projected_fields_equal_the_documents_values() {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut checked = 0;
    for _ in 0..20_000 {
        let tree = object(&mut random, 0);
        let mut text = String::new();
        space(&mut random, &mut text);
        write(&tree, &mut random, &mut text);
        space(&mut random, &mut text);
        let mut paths = Vec::new();
        leaf_paths(&tree, "", &mut paths);
        // A path whose value holds an object anywhere is left out: an object spelled
        // with dotted keys decodes as written, not as the tree.
        let mut names: Vec<String> =
            paths.iter().filter(|(path, _)| paths.iter().filter(|(other, _)| other == path).all(|(_, leaf)| *leaf)).map(|(path, _)| path.clone()).collect();
        names.sort();
        names.dedup();
        names.retain(|_| random.next(3) != 0);
        names.push("absent.field".to_string());
        let projection = Projection::new(names.iter().map(String::as_str));
        let mut out = Vec::new();
        projection.read(&text, &mut out).unwrap_or_else(|error| panic!("{error} in {text}"));
        for (idx, name) in names.iter().enumerate() {
            let mut found = Vec::new();
            find(&tree, &name.split('.').collect::<Vec<_>>(), &mut found);
            assert_eq!(out[idx], merge(found), "{name} in {text}");
            checked += 1;
        }
    }
    assert!(checked > 20_000, "only {checked} fields checked");
}

#[test]
fn mangled_documents_never_panic() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let projection = Projection::new(["a", "a.b", "b.c.d", "c", "@t"]);
    let mut out = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..20_000 {
        let mut text = String::new();
        write(&object(&mut random, 0), &mut random, &mut text);
        let mut bytes = text.into_bytes();
        for _ in 0..1 + random.next(3) {
            let at = random.next(bytes.len() + 1);
            match random.next(3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, b"{}[]\",:\\x1 "[random.next(11)]),
                _ => bytes.truncate(at),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        match projection.read(&text, &mut out) {
            Ok(()) => accepted += 1,
            Err(error) => {
                assert!(error.column >= 1 && error.column <= text.len() + 1, "column {} of {} bytes", error.column, text.len());
                rejected += 1;
            }
        }
    }
    assert!(accepted > 0 && rejected > 0, "accepted {accepted}, rejected {rejected}");
}
