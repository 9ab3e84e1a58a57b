//! Join keys: the values of a step's `by` expressions, encoded as the bytes the
//! sequence executor compares (`sequence::Key`), under each dialect's rules
//! (docs/sequences.md, "Keys").
//!
//! - Elasticsearch: a null (or missing, or empty-array) value drops the event from the
//!   step unless its `by` field is `?optional`, where null is a value; an array gives
//!   one key per element, and several arrays their cartesian product.
//! - endgame (python eql): null is an ordinary value that joins other nulls; an array
//!   is one value (a tuple of its elements); strings fold case unless the rule is
//!   case-sensitive.
//!
//! In both, numbers compare by value (`1` and `1.0` are one key, as python's dict keys
//! and Elasticsearch's typed fields; in endgame `true` is also `1`, as in python), and
//! no two different values encode alike: every value is tagged and strings carry their
//! length.

use crate::sequence::{Flavor, Key};
use kestrel_bundle::semantics::Value;

/// More keys than this from one event (a cartesian product of long arrays) are
/// dropped, and counted by the caller.
pub const MAX_KEYS_PER_HIT: usize = 64;

/// How a rule's join keys are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRules {
    pub flavor: Flavor,
    /// Fold the case of strings (endgame, case-insensitive rules).
    pub fold_case: bool,
}

/// The keys of one step hit from the values of its `by` expressions (`optional[i]`:
/// expression *i* is a `?optional` field). Returns how many keys were dropped over
/// [`MAX_KEYS_PER_HIT`]. No key at all: the event is not a hit of the step.
pub fn keys(values: &[Value], optional: &[bool], rules: KeyRules, out: &mut Vec<Key>) -> usize {
    out.clear();
    match rules.flavor {
        Flavor::Endgame => {
            with_scratch(|bytes| {
                for value in values {
                    encode(value, rules, bytes);
                }
                out.push(Key::from(&bytes[..]));
            });
            0
        }
        Flavor::Elasticsearch => {
            // The choices for each expression: its elements, or null where allowed.
            let mut choices: Vec<Vec<&Value>> = Vec::with_capacity(values.len());
            for (idx, value) in values.iter().enumerate() {
                let mut elements: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().filter(|item| !item.is_null()).collect(),
                    Value::Null => Vec::new(),
                    other => vec![other],
                };
                if elements.is_empty() {
                    if !optional.get(idx).copied().unwrap_or(false) {
                        return 0;
                    }
                    elements.push(&Value::Null);
                }
                choices.push(elements);
            }
            let total = choices.iter().try_fold(1usize, |total, elements| total.checked_mul(elements.len())).unwrap_or(usize::MAX);
            let kept = total.min(MAX_KEYS_PER_HIT);
            // In nested-loop order, the last expression's values varying fastest, as
            // Elasticsearch lists the keys of a multi-value event.
            let mut picks = vec![0; choices.len()];
            for combination in 0..kept {
                let mut rest = combination;
                for (pick, elements) in picks.iter_mut().zip(&choices).rev() {
                    *pick = rest % elements.len();
                    rest /= elements.len();
                }
                with_scratch(|bytes| {
                    for (pick, elements) in picks.iter().zip(&choices) {
                        encode(elements[*pick], rules, bytes);
                    }
                    out.push(Key::from(&bytes[..]));
                });
            }
            total - kept
        }
    }
}

/// The key of one hit read straight from the event's slots in guest memory (at
/// `addresses`, one per `by` expression), without a value function call or a decoded
/// value: the bytes [`keys`] would give. Only for non-null scalars, and strings the
/// rules do not fold; otherwise returns false, pushes nothing, and the caller takes the
/// general path.
pub fn key_from_slots(memory: &[u8], addresses: impl Iterator<Item = usize>, rules: KeyRules, out: &mut Vec<Key>) -> bool {
    out.clear();
    let mut handled = true;
    with_scratch(|bytes| {
        for at in addresses {
            if !encode_slot(memory, at, rules, bytes) {
                handled = false;
                return;
            }
        }
        out.push(Key::from(&bytes[..]));
    });
    handled
}

/// Appends the encoding of the scalar in the slot at `at`, as [`encode`] would of its
/// value; false for anything else.
fn encode_slot(memory: &[u8], at: usize, rules: KeyRules, out: &mut Vec<u8>) -> bool {
    use kestrel_bundle::abi::tag;
    let (Some(&kind), Some(len), Some(payload)) = (memory.get(at), memory.get(at + 4..at + 8), memory.get(at + 8..at + 16)) else { return false };
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let payload = u64::from_le_bytes(payload.try_into().expect("8 bytes"));
    let bytes = |offset: u64| memory.get(offset as usize & 0xFFFF_FFFF..(offset as usize & 0xFFFF_FFFF) + len);
    match kind {
        tag::BOOL => encode(&Value::Bool(payload != 0), rules, out),
        tag::LONG => encode(&Value::Long(payload as i64), rules, out),
        tag::DOUBLE => encode(&Value::Double(f64::from_bits(payload)), rules, out),
        tag::STRING if !rules.fold_case => match bytes(payload) {
            Some(text) => put_text(4, text, out),
            None => return false,
        },
        tag::IP => match bytes(payload) {
            Some(address) if len == 4 || len == 16 => put_text(5, address, out),
            _ => return false,
        },
        _ => return false,
    }
    true
}

fn put_text(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Runs `build` on this thread's key buffer, emptied: a key costs one allocation, its own.
fn with_scratch(build: impl FnOnce(&mut Vec<u8>)) {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        let mut bytes = scratch.borrow_mut();
        bytes.clear();
        build(&mut bytes);
    });
}

/// Appends the tagged encoding of `value`.
fn encode(value: &Value, rules: KeyRules, out: &mut Vec<u8>) {
    let text = put_text;
    match value {
        Value::Null => out.push(0),
        Value::Bool(value) if rules.flavor == Flavor::Endgame => encode(&Value::Long(i64::from(*value)), rules, out),
        Value::Bool(value) => out.extend_from_slice(&[1, u8::from(*value)]),
        Value::Long(number) => {
            out.push(2);
            out.extend_from_slice(&number.to_le_bytes());
        }
        Value::Double(number) if number.fract() == 0.0 && number.abs() < 9.0e18 => encode(&Value::Long(*number as i64), rules, out),
        Value::Double(number) => {
            out.push(3);
            // One NaN, and -0.0 as 0.0 (which took the branch above).
            let bits = if number.is_nan() { f64::NAN.to_bits() } else { number.to_bits() };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        Value::Str(string) if rules.fold_case => text(4, string.to_lowercase().as_bytes(), out),
        Value::Str(string) => text(4, string.as_bytes(), out),
        Value::Ip(address) => {
            let (bytes, len) = crate::guest::ip_bytes(address);
            text(5, &bytes[..len], out);
        }
        Value::Array(items) => {
            out.push(6);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            items.iter().for_each(|item| encode(item, rules, out));
        }
        Value::Object(entries) => {
            out.push(7);
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for (key, inner) in entries {
                text(4, key.as_bytes(), out);
                encode(inner, rules, out);
            }
        }
    }
}

/// The values a key was made of, for alerts (folded strings stay folded; numbers
/// that are whole come back as integers). Bytes that are not a key give what could be
/// read up to them.
pub fn decode(mut key: &[u8]) -> Vec<Value> {
    let mut values = Vec::new();
    while !key.is_empty() {
        match decode_one(key) {
            Some((value, rest)) => {
                values.push(value);
                key = rest;
            }
            None => break,
        }
    }
    values
}

fn take(bytes: &[u8], len: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= len).then(|| bytes.split_at(len))
}

fn length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    take(bytes, 4).map(|(len, rest)| (u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize, rest))
}

fn decode_one(key: &[u8]) -> Option<(Value, &[u8])> {
    let (&tag, rest) = key.split_first()?;
    Some(match tag {
        0 => (Value::Null, rest),
        1 => {
            let (byte, rest) = take(rest, 1)?;
            (Value::Bool(byte[0] != 0), rest)
        }
        2 => {
            let (bytes, rest) = take(rest, 8)?;
            (Value::Long(i64::from_le_bytes(bytes.try_into().expect("8 bytes"))), rest)
        }
        3 => {
            let (bytes, rest) = take(rest, 8)?;
            (Value::Double(f64::from_bits(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))), rest)
        }
        4 | 5 => {
            let (len, rest) = length(rest)?;
            let (bytes, rest) = take(rest, len)?;
            let value = match (tag, len) {
                (4, _) => Value::Str(String::from_utf8_lossy(bytes).into_owned()),
                (_, 4) => Value::Ip(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
                (_, 16) => Value::Ip(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
                _ => return None,
            };
            (value, rest)
        }
        6 => {
            let (count, mut rest) = length(rest)?;
            let mut items = Vec::new();
            for _ in 0..count {
                let (item, after) = decode_one(rest)?;
                items.push(item);
                rest = after;
            }
            (Value::Array(items), rest)
        }
        7 => {
            let (count, mut rest) = length(rest)?;
            let mut entries = Vec::new();
            for _ in 0..count {
                let (Value::Str(name), after) = decode_one(rest)? else { return None };
                let (inner, after) = decode_one(after)?;
                entries.push((name.to_string(), inner));
                rest = after;
            }
            (Value::Object(entries), rest)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ES: KeyRules = KeyRules { flavor: Flavor::Elasticsearch, fold_case: false };
    const ENDGAME: KeyRules = KeyRules { flavor: Flavor::Endgame, fold_case: true };

    fn keys_of(values: &[Value], optional: &[bool], rules: KeyRules) -> (Vec<Key>, usize) {
        let mut out = Vec::new();
        let dropped = keys(values, optional, rules, &mut out);
        (out, dropped)
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn null_keys_drop_the_event_in_elasticsearch_unless_optional_and_join_in_endgame() {
        assert!(keys_of(&[s("a"), Value::Null], &[false, false], ES).0.is_empty());
        assert!(keys_of(&[Value::Array(vec![])], &[false], ES).0.is_empty(), "an empty array is missing");
        assert_eq!(keys_of(&[s("a"), Value::Null], &[false, true], ES).0.len(), 1);
        assert_eq!(keys_of(&[Value::Null], &[false], ENDGAME).0, keys_of(&[Value::Null], &[false], ENDGAME).0);
        assert_eq!(keys_of(&[Value::Null], &[false], ENDGAME).0.len(), 1);
    }

    #[test]
    fn arrays_are_a_cartesian_product_in_elasticsearch_and_one_value_in_endgame() {
        let values = [Value::Array(vec![s("a"), s("b")]), Value::Array(vec![Value::Long(1), Value::Long(2), Value::Long(3)])];
        let (es, dropped) = keys_of(&values, &[false, false], ES);
        assert_eq!((es.len(), dropped), (6, 0));
        let single = keys_of(&[s("b"), Value::Long(3)], &[false, false], ES).0;
        assert!(es.contains(&single[0]));
        assert_eq!(keys_of(&values, &[false, false], ENDGAME).0.len(), 1);
        let wide: Vec<Value> = (0..3).map(|_| Value::Array((0..10).map(Value::Long).collect())).collect();
        assert_eq!(keys_of(&wide, &[false; 3], ES), (keys_of(&wide, &[false; 3], ES).0, 1000 - MAX_KEYS_PER_HIT));
        assert_eq!(keys_of(&wide, &[false; 3], ES).0.len(), MAX_KEYS_PER_HIT);
    }

    #[test]
    fn keys_read_from_slots_are_the_keys_of_the_values() {
        use crate::guest::{self, Area};
        let values = [
            s("host-1"),
            s(""),
            s("ünïcode"),
            Value::Long(-7),
            Value::Double(2.0),
            Value::Double(2.5),
            Value::Double(f64::NAN),
            Value::Bool(true),
            Value::Ip("10.1.2.3".parse().unwrap()),
            Value::Ip("::ffff:10.1.2.3".parse().unwrap()),
            Value::Ip("2001:db8::1".parse().unwrap()),
        ];
        for rules in [ES, KeyRules { flavor: Flavor::Endgame, fold_case: false }] {
            for first in &values {
                for second in &values {
                    let mut memory = vec![0u8; 4096];
                    let mut area = Area::new(64, 4096);
                    guest::write(&mut memory, 0, first, &mut area).unwrap();
                    guest::write(&mut memory, 16, second, &mut area).unwrap();
                    let mut direct = Vec::new();
                    assert!(key_from_slots(&memory, [0, 16].into_iter(), rules, &mut direct), "{first:?} {second:?}");
                    let (general, _) = keys_of(&[first.clone(), second.clone()], &[false, false], rules);
                    assert_eq!(direct, general, "{first:?} {second:?} under {rules:?}");
                }
            }
        }
        // Null, arrays and folded strings take the general path.
        let mut memory = vec![0u8; 4096];
        let mut area = Area::new(64, 4096);
        for (value, rules) in [(Value::Null, ES), (Value::Array(vec![s("a")]), ES), (s("A"), ENDGAME)] {
            guest::write(&mut memory, 0, &value, &mut area).unwrap();
            assert!(!key_from_slots(&memory, [0].into_iter(), rules, &mut Vec::new()), "{value:?}");
        }
    }

    #[test]
    fn keys_decode_to_their_values() {
        let values = vec![s("host"), Value::Null, Value::Bool(true), Value::Long(-3), Value::Double(2.5), Value::Ip("10.0.0.1".parse().unwrap())];
        let (keys, _) = keys_of(&values, &[false, true, false, false, false, false], ES);
        assert_eq!(decode(&keys[0]), values);
        let nested = vec![Value::Array(vec![s("a"), Value::Long(1)])];
        assert_eq!(decode(&keys_of(&nested, &[false], ENDGAME).0[0]), nested);
        assert_eq!(decode(&[4, 9, 0]), Vec::<Value>::new(), "truncated bytes decode to what precedes them");
    }

    #[test]
    fn equal_values_encode_alike_and_different_ones_do_not() {
        let one = |value: Value, rules| keys_of(&[value], &[false], rules).0;
        assert_eq!(one(Value::Long(1), ES), one(Value::Double(1.0), ES));
        assert_ne!(one(Value::Long(1), ES), one(s("1"), ES));
        assert_ne!(one(Value::Bool(true), ES), one(Value::Long(1), ES));
        assert_eq!(one(Value::Bool(true), ENDGAME), one(Value::Long(1), ENDGAME), "python: True == 1");
        assert_eq!(one(s("BaSh"), ENDGAME), one(s("bash"), ENDGAME));
        assert_ne!(one(s("BaSh"), ES), one(s("bash"), ES));
        // Lengths keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(keys_of(&[s("ab"), s("c")], &[false, false], ES).0, keys_of(&[s("a"), s("bc")], &[false, false], ES).0);
    }
}
