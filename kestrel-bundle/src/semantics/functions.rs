//! The built-in functions, each with the edge cases of the reference engine named by
//! the call's [`FunctionSemantics`]: python `eql` 1.0.1 (`Python`) or Elasticsearch EQL
//! (`Elasticsearch`). docs/semantics.md lists every difference.
//!
//! Where an engine raises an error at run time, the call is null here. Strings are
//! indexed by Unicode scalar values, as python does (Java counts UTF-16 units; the two
//! differ only beyond the Basic Multilingual Plane).

use super::compare::{self, Tri, any_element, fold, text_of, tri_value};
use super::value::{java_double, python_float};
use super::{Case, CompareOp, Function, FunctionSemantics, Value};
use std::net::IpAddr;

use FunctionSemantics::{Elasticsearch as Es, Python as Py};

/// Calls a built-in on evaluated arguments. Functions whose signature says
/// `any_element` apply the any-element rule to their first argument.
pub fn call(func: Function, args: &[Value], case: Case, semantics: FunctionSemantics) -> Value {
    let Some((first, rest)) = args.split_first() else { return Value::Null };
    let any = func.any_element();
    if any {
        return tri_value(any_element(first, &mut |item| to_tri(&scalar_call(func, item, rest, case, semantics))));
    }
    scalar_call(func, first, rest, case, semantics)
}

fn to_tri(value: &Value) -> Tri {
    match value {
        Value::Bool(value) => Some(*value),
        _ => None,
    }
}

/// The optional argument at `idx` of `rest`; null when omitted.
fn opt(rest: &[Value], idx: usize) -> &Value {
    rest.get(idx).unwrap_or(&Value::Null)
}

fn scalar_call(func: Function, first: &Value, rest: &[Value], case: Case, semantics: FunctionSemantics) -> Value {
    match func {
        Function::Between => between(first, opt(rest, 0), opt(rest, 1), rest.get(2), case, semantics),
        Function::CidrMatch => cidr_match(first, rest, semantics),
        Function::Concat => concat(first, rest, semantics),
        Function::EndsWith => match (text_of(first), text_of(opt(rest, 0))) {
            (Some(source), Some(suffix)) => Value::Bool(fold(&source, case).ends_with(fold(&suffix, case).as_ref())),
            _ => Value::Null,
        },
        Function::StartsWith => match (text_of(first), text_of(opt(rest, 0))) {
            (Some(source), Some(prefix)) => Value::Bool(fold(&source, case).starts_with(fold(&prefix, case).as_ref())),
            _ => Value::Null,
        },
        Function::StringContains => string_contains(first, opt(rest, 0), case, semantics),
        Function::IndexOf => index_of(first, opt(rest, 0), rest.get(1), case, semantics),
        Function::Length => match first {
            Value::Str(text) => Value::Long(text.chars().count() as i64),
            Value::Array(items) => Value::Long(items.len() as i64),
            Value::Object(fields) => Value::Long(fields.len() as i64),
            _ => Value::Null,
        },
        Function::Number => match semantics {
            Py => python_number(first, opt(rest, 0)),
            Es => es_number(first, opt(rest, 0)),
        },
        Function::String => to_text(first, semantics).map_or(Value::Null, Value::Str),
        Function::Substring => substring(first, opt(rest, 0), opt(rest, 1), semantics),
        Function::ArrayContains => array_contains(first, rest, case),
        Function::Safe => first.clone(),
    }
}

/// A value as `string()` and `concat()` write it: `true`/`false`, integers in
/// decimal, doubles as python's `str` or Java's `Double.toString`, addresses in their
/// canonical form. Null, arrays and objects have no text.
pub fn to_text(value: &Value, semantics: FunctionSemantics) -> Option<String> {
    match value {
        Value::Bool(value) => Some(value.to_string()),
        Value::Long(value) => Some(value.to_string()),
        Value::Double(value) => Some(match semantics {
            Py => python_float(*value),
            Es => java_double(*value),
        }),
        Value::Str(text) => Some(text.clone()),
        Value::Ip(address) => Some(compare::canonical_ip(address).to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn concat(first: &Value, rest: &[Value], semantics: FunctionSemantics) -> Value {
    let mut out = String::new();
    for value in std::iter::once(first).chain(rest) {
        match to_text(value, semantics) {
            Some(text) => out.push_str(&text),
            None => return Value::Null,
        }
    }
    Value::Str(out)
}

fn chars_of(text: &str, case: Case) -> Vec<char> {
    fold(text, case).chars().collect()
}

/// The first occurrence of `needle` in `hay` at or after `from`.
fn find_chars(hay: &[char], needle: &[char], from: usize) -> Option<usize> {
    if from > hay.len() || needle.len() > hay.len() - from {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&idx| hay[idx..idx + needle.len()] == *needle)
}

/// The last occurrence of `needle` in `hay` that starts at or after `from`.
fn rfind_chars(hay: &[char], needle: &[char], from: usize) -> Option<usize> {
    if from > hay.len() || needle.len() > hay.len() - from {
        return None;
    }
    (from..=hay.len() - needle.len()).rev().find(|&idx| hay[idx..idx + needle.len()] == *needle)
}

/// `source[start..end]` in characters of the original string, clamped (case folding
/// can change a string's length).
fn slice(source: &str, start: usize, end: usize) -> Value {
    Value::Str(source.chars().skip(start).take(end.saturating_sub(start)).collect())
}

fn between(source: &Value, left: &Value, right: &Value, greedy: Option<&Value>, case: Case, semantics: FunctionSemantics) -> Value {
    let (Some(text), Some(left), Some(right)) = (text_of(source), text_of(left), text_of(right)) else { return Value::Null };
    let greedy = match (greedy, semantics) {
        (None, _) => false,
        (Some(Value::Bool(value)), _) => *value,
        (Some(other), Py) => other.truthiness().unwrap_or(false),
        // Elasticsearch requires a boolean (`Check.isBoolean`).
        (Some(_), Es) => return Value::Null,
    };
    if semantics == Es && (text.is_empty() || left.is_empty() || right.is_empty()) {
        return Value::Str(text.into_owned());
    }
    let (hay, left, right) = (chars_of(&text, case), chars_of(&left, case), chars_of(&right, case));
    let Some(found) = find_chars(&hay, &left, 0) else {
        return if semantics == Es { Value::Str(String::new()) } else { Value::Null };
    };
    let start = found + left.len();
    let end = match (semantics, greedy) {
        (Py, true) => rfind_chars(&hay, &right, start),
        (Py, false) | (Es, false) => find_chars(&hay, &right, start),
        // Java `lastIndexOf` over the whole string; before `start`, `substring` throws.
        (Es, true) => match rfind_chars(&hay, &right, 0) {
            Some(end) if end < start => return Value::Null,
            other => other,
        },
    };
    match end {
        Some(end) => slice(&text, start, end),
        None if semantics == Es => Value::Str(String::new()),
        None => Value::Null,
    }
}

fn string_contains(source: &Value, needle: &Value, case: Case, semantics: FunctionSemantics) -> Value {
    match (text_of(source), text_of(needle), semantics) {
        (Some(source), Some(needle), Py) => Value::Bool(fold(&source, case).contains(fold(&needle, case).as_ref())),
        // python: anything that is not two strings is false.
        (_, _, Py) => Value::Bool(false),
        (Some(source), Some(needle), Es) => Value::Bool(!source.is_empty() && !needle.is_empty() && fold(&source, case).contains(fold(&needle, case).as_ref())),
        (_, _, Es) => Value::Null,
    }
}

fn index_of(source: &Value, needle: &Value, start: Option<&Value>, case: Case, semantics: FunctionSemantics) -> Value {
    let start = match start {
        None | Some(Value::Null) if semantics == Py => 0,
        None => 0,
        Some(Value::Long(start)) => *start,
        // Elasticsearch documents an explicit null start as null; other types are errors.
        Some(_) => return Value::Null,
    };
    let (Some(source), Some(needle)) = (text_of(source), text_of(needle)) else { return Value::Null };
    let (hay, needle) = (chars_of(&source, case), chars_of(&needle, case));
    let len = hay.len() as i64;
    let from = match semantics {
        // python slices: a negative start counts from the end.
        Py if start < 0 => (start + len).max(0),
        Py if start > len => return Value::Null,
        Py => start,
        // Java: a negative start is 0; past the end only the empty string is found (at
        // the end).
        Es if start >= len => return if needle.is_empty() { Value::Long(len) } else { Value::Null },
        Es => start.max(0),
    };
    find_chars(&hay, &needle, from as usize).map_or(Value::Null, |idx| Value::Long(idx as i64))
}

/// Python slice bounds: negative counts from the end; clamped to `0..=len`.
fn slice_bound(bound: i64, len: i64) -> i64 {
    if bound < 0 { (bound + len).max(0) } else { bound.min(len) }
}

fn substring(source: &Value, start: &Value, end: &Value, semantics: FunctionSemantics) -> Value {
    let Some(text) = text_of(source) else { return Value::Null };
    let bound = |value: &Value| match value {
        Value::Null => Ok(None),
        Value::Long(value) => Ok(Some(*value)),
        _ => Err(()),
    };
    let (Ok(start), Ok(end)) = (bound(start), bound(end)) else { return Value::Null };
    if semantics == Es && start.is_none() {
        // Elasticsearch returns the source unchanged when the start is null.
        return Value::Str(text.into_owned());
    }
    let len = text.chars().count() as i64;
    let start = slice_bound(start.unwrap_or(0), len);
    let end = slice_bound(end.unwrap_or(len), len);
    if start >= end {
        return Value::Str(String::new());
    }
    slice(&text, start as usize, end as usize)
}

fn cidr_match(address: &Value, blocks: &[Value], semantics: FunctionSemantics) -> Value {
    let mut parsed = Vec::with_capacity(blocks.len());
    for block in blocks {
        match block {
            Value::Str(text) => match super::patterns::parse_cidr(text.trim()) {
                Ok(block) => parsed.push(block),
                // python skips blocks that are not blocks; Elasticsearch fails.
                Err(_) if semantics == Es => return Value::Null,
                Err(_) => {}
            },
            _ if semantics == Es => return Value::Null,
            _ => {}
        }
    }
    address_in_blocks(address, &parsed, semantics)
}

/// `cidrMatch` of one value (not an array) against blocks already parsed, as the
/// runtime holds them: true or false for an address, or a string holding one; for
/// anything else false (python) or null (Elasticsearch, where the query fails).
pub fn address_in_blocks(address: &Value, blocks: &[(IpAddr, u8)], semantics: FunctionSemantics) -> Value {
    let fail = if semantics == Py { Value::Bool(false) } else { Value::Null };
    let address = match address {
        Value::Ip(address) => compare::canonical_ip(address),
        Value::Str(text) => match text.parse::<IpAddr>() {
            Ok(address) => address,
            Err(_) => return fail,
        },
        _ => return fail,
    };
    Value::Bool(blocks.iter().any(|(network, prefix)| {
        // python's `ipaddress` never puts an address in a block of the other family.
        !(semantics == Py && network.is_ipv4() != address.is_ipv4()) && in_block(&address, network, *prefix)
    }))
}

/// `cidrMatch` with the any-element rule over parsed blocks (the runtime's entry).
pub fn cidr_match_parsed(value: &Value, blocks: &[(IpAddr, u8)], semantics: FunctionSemantics) -> Value {
    tri_value(any_element(value, &mut |item| to_tri(&address_in_blocks(item, blocks, semantics))))
}

/// Whether `address` lies in `network/prefix`, comparing both as 16-byte addresses
/// (an IPv4 block of prefix `p` is the IPv6 block `::ffff:a.b.c.d/(96+p)`).
pub fn in_block(address: &IpAddr, network: &IpAddr, prefix: u8) -> bool {
    let prefix = if network.is_ipv4() { 96 + u32::from(prefix.min(32)) } else { u32::from(prefix.min(128)) };
    let (address, network) = (u128::from_be_bytes(compare::ip_bytes(address)), u128::from_be_bytes(compare::ip_bytes(network)));
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    address & mask == network & mask
}

fn array_contains(array: &Value, values: &[Value], case: Case) -> Value {
    let Value::Array(items) = array else { return Value::Null };
    let equal = |item: &Value, value: &Value| (item.is_null() && value.is_null()) || compare::compare_scalars(CompareOp::Eq, item, value, case) == Some(true);
    Value::Bool(items.iter().any(|item| values.iter().any(|value| equal(item, value))))
}

/// python `number(source, base)`: a string with exactly one `.` (and base 10 or none)
/// is read by `float()`; one starting `0x` (and base 16 or none) as hexadecimal; one
/// of ASCII digits after signs by `int(source, base)`; anything else is null.
fn python_number(source: &Value, base: &Value) -> Value {
    let Value::Str(text) = source else { return Value::Null };
    let base = match base {
        Value::Null => None,
        Value::Long(base) => Some(*base),
        _ => return Value::Null,
    };
    let parsed = if text.matches('.').count() == 1 && matches!(base, None | Some(10)) {
        python_float_parse(text).map(Value::Double)
    } else if let Some(hex) = text.strip_prefix("0x").filter(|_| matches!(base, None | Some(16))) {
        python_int_parse(hex, 16).map(Value::Long)
    } else if !text.trim_start_matches(['-', '+']).is_empty() && text.trim_start_matches(['-', '+']).bytes().all(|byte| byte.is_ascii_digit()) {
        match base {
            None | Some(0) => python_int_parse(text, 10),
            Some(base) => python_int_parse(text, base),
        }
        .map(Value::Long)
    } else {
        return Value::Null;
    };
    parsed.unwrap_or(Value::Null)
}

/// python `float(text)` for text with one `.`: surrounding whitespace, a sign, digits
/// with single underscores between them, an optional exponent.
fn python_float_parse(text: &str) -> Option<f64> {
    let text = text.trim();
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(idx) => (&body[..idx], Some(&body[idx + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.')?;
    let digits_ok = |part: &str, allow_empty: bool| (allow_empty && part.is_empty()) || python_digit_part(part);
    if !(digits_ok(int_part, true) && digits_ok(frac_part, true)) || (int_part.is_empty() && frac_part.is_empty()) {
        return None;
    }
    if let Some(exponent) = exponent {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if !python_digit_part(exponent) {
            return None;
        }
    }
    text.replace('_', "").parse::<f64>().ok()
}

/// Digits, with single underscores only between two digits.
fn python_digit_part(part: &str) -> bool {
    !part.is_empty() && !part.starts_with('_') && !part.ends_with('_') && !part.contains("__") && part.bytes().all(|byte| byte.is_ascii_digit() || byte == b'_')
}

/// python `int(text, base)`: surrounding whitespace, one sign, digits of the base with
/// single underscores between them, and for bases 2, 8 and 16 an optional matching
/// prefix. Null when the value does not fit a long.
fn python_int_parse(text: &str, base: i64) -> Option<i64> {
    if !(2..=36).contains(&base) {
        return None;
    }
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let prefix = match base {
        2 => Some(["0b", "0B"]),
        8 => Some(["0o", "0O"]),
        16 => Some(["0x", "0X"]),
        _ => None,
    };
    let body =
        prefix.and_then(|prefixes| prefixes.iter().find_map(|prefix| body.strip_prefix(prefix))).map_or(body, |rest| rest.strip_prefix('_').unwrap_or(rest));
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let digits: String = body.chars().filter(|ch| *ch != '_').collect();
    if !digits.chars().all(|ch| ch.is_digit(base as u32)) {
        return None;
    }
    let magnitude = i128::from_str_radix(&digits, base as u32).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Elasticsearch `number(source, base)`: a `0x` prefix means base 16 when no base is
/// given; base 10 reads a Java long, else a Java double (whitespace trimmed); other
/// bases read a Java long in that base. Failures, and non-finite doubles, are null.
fn es_number(source: &Value, base: &Value) -> Value {
    let Value::Str(text) = source else { return Value::Null };
    let hex = text.starts_with("0x");
    let radix = match base {
        Value::Null => {
            if hex {
                16
            } else {
                10
            }
        }
        Value::Long(base) => *base,
        _ => return Value::Null,
    };
    let digits = if hex && radix == 16 { &text[2..] } else { text.as_str() };
    if radix == 10 {
        if let Some(value) = java_long(digits, 10) {
            return Value::Long(value);
        }
        return java_double_parse(digits).filter(|value| value.is_finite()).map_or(Value::Null, Value::Double);
    }
    java_long(digits, radix).map_or(Value::Null, Value::Long)
}

/// Java `Long.parseLong(text, radix)`: one optional sign, then ASCII digits of the
/// radix; no whitespace.
fn java_long(text: &str, radix: i64) -> Option<i64> {
    if !(2..=36).contains(&radix) {
        return None;
    }
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body.is_empty() || !body.chars().all(|ch| ch.is_digit(radix as u32)) {
        return None;
    }
    i64::from_str_radix(text, radix as u32).ok()
}

/// Java `Double.parseDouble` for decimal text: whitespace (characters up to U+0020)
/// trimmed, an optional sign, digits with an optional `.`, an optional exponent, an
/// optional `f`/`F`/`d`/`D` suffix. Hexadecimal floating literals are not read.
fn java_double_parse(text: &str) -> Option<f64> {
    let text = text.trim_matches(|ch: char| ch <= ' ');
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(idx) => (&body[..idx], Some(&body[idx + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    if let Some(exponent) = exponent {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if exponent.is_empty() || !all_digits(exponent) {
            return None;
        }
    }
    let sign = if text.starts_with('-') { "-" } else { "" };
    let exponent = exponent.map(|exponent| format!("e{exponent}")).unwrap_or_default();
    format!("{sign}{int_part}.{frac_part}0{exponent}").parse::<f64>().ok()
}
