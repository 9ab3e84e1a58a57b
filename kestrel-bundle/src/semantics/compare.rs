//! Comparisons, set membership, pattern matching, arithmetic and number conversion,
//! and the "any element" rule that lifts each of them over arrays.

pub use super::version::compare_versions;
use super::{ArithOp, Case, CompareOp, Pattern, Value, WildPiece};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::IpAddr;

/// A three-valued truth: `None` is null.
pub type Tri = Option<bool>;

pub fn tri_value(tri: Tri) -> Value {
    tri.map_or(Value::Null, Value::Bool)
}

/// The truth of a value used where a boolean is expected (`and`, `or`, `not`, a
/// condition): booleans are themselves, null is null, an array is true if any element
/// is (the any-element rule), and anything else has its python truthiness.
pub fn logic(value: &Value) -> Tri {
    match value {
        Value::Bool(value) => Some(*value),
        Value::Array(_) => any_element(value, &mut logic),
        other => other.truthiness(),
    }
}

/// The any-element rule: applies `test` to each element of an array (nested arrays
/// are flattened) and combines the answers as `or` does: true if any element gives
/// true, else null if any gives null, else false. Null elements are skipped, and an
/// array with no other element is tested as null itself, as if the field were
/// missing. A value that is not an array is tested as it is.
pub fn any_element(value: &Value, test: &mut dyn FnMut(&Value) -> Tri) -> Tri {
    let Value::Array(_) = value else { return test(value) };
    let mut seen = false;
    match any_present(value, test, &mut seen) {
        Some(true) => Some(true),
        _ if !seen => test(&Value::Null),
        other => other,
    }
}

fn any_present(value: &Value, test: &mut dyn FnMut(&Value) -> Tri, seen: &mut bool) -> Tri {
    let Value::Array(items) = value else {
        *seen = true;
        return test(value);
    };
    let mut answer = Some(false);
    for item in items.iter().filter(|item| !item.is_null()) {
        match any_present(item, test, seen) {
            Some(true) => return Some(true),
            None => answer = None,
            Some(false) => {}
        }
    }
    answer
}

/// Folds case when asked to: Unicode lowercase.
pub fn fold(text: &str, case: Case) -> Cow<'_, str> {
    match case {
        Case::Sensitive => Cow::Borrowed(text),
        Case::Insensitive => Cow::Owned(text.to_lowercase()),
    }
}

/// An address as 16 bytes: IPv4 addresses are mapped into IPv6 (`::ffff:a.b.c.d`), so
/// `1.2.3.4` and `::ffff:1.2.3.4` are one address, and addresses order by these bytes.
pub fn ip_bytes(address: &IpAddr) -> [u8; 16] {
    match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The text of a string or an address (its canonical form, [`canonical_ip`]); `None`
/// for other values.
pub fn text_of(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Str(text) => Some(Cow::Borrowed(text)),
        Value::Ip(address) => Some(Cow::Owned(canonical_ip(address).to_string())),
        _ => None,
    }
}

/// An address value as Kestrel holds it: an IPv4-mapped IPv6 address is the IPv4
/// address (`::ffff:1.2.3.4` is `1.2.3.4`, written so), as Elasticsearch stores `ip`
/// fields and as the predicate ABI carries them. (A string is not an address value:
/// python's `cidrMatch` still reads the string `"::ffff:1.2.3.4"` as IPv6.)
pub fn canonical_ip(address: &IpAddr) -> IpAddr {
    address.to_canonical()
}

/// `lhs op rhs`. Null on either side gives null. Arrays follow the any-element rule;
/// `!=` is the negation of `==` (so an array differs from a value when no element
/// equals it).
pub fn compare(op: CompareOp, lhs: &Value, rhs: &Value, case: Case) -> Value {
    compare_with(op, lhs, rhs, &|op, left, right| compare_scalars(op, left, right, case))
}

/// `lhs op rhs` where either operand is typed `version`: two strings compare in
/// version order ([`compare_versions`]; with `Case::Insensitive`, after both are
/// lower-cased), anything else as [`compare`] compares it; null and arrays as there.
/// A version equals only the same string, so `==` and `!=` give what [`compare`] gives.
pub fn compare_as_versions(op: CompareOp, lhs: &Value, rhs: &Value, case: Case) -> Value {
    compare_with(op, lhs, rhs, &|op, left, right| match (left, right) {
        (Value::Str(left), Value::Str(right)) => Some(holds(op, compare_versions(&fold(left, case), &fold(right, case)))),
        _ => compare_scalars(op, left, right, case),
    })
}

/// The null and any-element rules of [`compare`] around a comparison of two values
/// that are not arrays.
fn compare_with(op: CompareOp, lhs: &Value, rhs: &Value, scalars: &dyn Fn(CompareOp, &Value, &Value) -> Tri) -> Value {
    if lhs.is_null() || rhs.is_null() {
        return Value::Null;
    }
    let (op, negate) = match op {
        CompareOp::NotEq => (CompareOp::Eq, true),
        other => (other, false),
    };
    let tri = any_element(lhs, &mut |left| any_element(rhs, &mut |right| scalars(op, left, right)));
    tri_value(if negate { tri.map(|value| !value) } else { tri })
}

/// Whether `op` holds between two values ordered `ordering`.
pub fn holds(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::NotEq => ordering != Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
    }
}

/// Compares two values that are not arrays. Null when either is null or their types
/// do not meet (a string and a number, a boolean and anything else, objects).
pub fn compare_scalars(op: CompareOp, lhs: &Value, rhs: &Value, case: Case) -> Tri {
    let ordering = match (lhs, rhs) {
        (Value::Long(left), Value::Long(right)) => left.cmp(right),
        (Value::Long(_) | Value::Double(_), Value::Long(_) | Value::Double(_)) => {
            let (left, right) = (as_f64(lhs)?, as_f64(rhs)?);
            match left.partial_cmp(&right) {
                Some(ordering) => ordering,
                // NaN equals nothing and has no order.
                None => return Some(op == CompareOp::NotEq),
            }
        }
        (Value::Str(left), Value::Str(right)) => fold(left, case).as_ref().cmp(fold(right, case).as_ref()),
        (Value::Ip(left), Value::Ip(right)) => ip_bytes(left).cmp(&ip_bytes(right)),
        (Value::Ip(left), Value::Str(right)) => ip_bytes(left).cmp(&ip_bytes(&right.parse::<IpAddr>().ok()?)),
        (Value::Str(left), Value::Ip(right)) => ip_bytes(&left.parse::<IpAddr>().ok()?).cmp(&ip_bytes(right)),
        (Value::Bool(left), Value::Bool(right)) => left.cmp(right),
        _ => return None,
    };
    Some(holds(op, ordering))
}

fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Long(value) => Some(*value as f64),
        Value::Double(value) => Some(*value),
        _ => None,
    }
}

/// `subject in (values)`: null for a null subject; otherwise true when some value
/// equals the subject as `==` would, and false when none does (values of another type
/// are simply not equal, as in python's set membership). Arrays: any element. `not in`
/// is the negation.
pub fn in_set(subject: &Value, values: &[Value], case: Case, negated: bool) -> Value {
    let tri = any_element(subject, &mut |item| {
        if item.is_null() {
            return None;
        }
        Some(values.iter().any(|value| compare_scalars(CompareOp::Eq, item, value, case) == Some(true)))
    });
    tri_value(if negated { tri.map(|value| !value) } else { tri })
}

/// Wildcard matching of a string (or an address, by its text) against any of the
/// patterns. Insensitive patterns must already be folded. Other types give null.
pub fn wildcard(subject: &Value, patterns: &[Pattern], case: Case) -> Value {
    tri_value(any_element(subject, &mut |item| {
        let text = text_of(item)?;
        let text = fold(&text, case);
        Some(patterns.iter().any(|pattern| super::patterns::wildcard_matches(pattern, &text)))
    }))
}

/// Folds the literal pieces of a pattern, for case-insensitive matching.
pub fn fold_pattern(pattern: &Pattern) -> Pattern {
    let lower = |text: &String| text.to_lowercase();
    match pattern {
        Pattern::Exact(text) => Pattern::Exact(lower(text)),
        Pattern::Prefix(text) => Pattern::Prefix(lower(text)),
        Pattern::Suffix(text) => Pattern::Suffix(lower(text)),
        Pattern::Contains(text) => Pattern::Contains(lower(text)),
        Pattern::General(pieces) => Pattern::General(
            pieces
                .iter()
                .map(|piece| match piece {
                    WildPiece::Literal(text) => WildPiece::Literal(lower(text)),
                    other => other.clone(),
                })
                .collect(),
        ),
    }
}

/// Regex matching of a string (or an address, by its text) against compiled patterns.
/// A pattern that failed to compile (`None`) matches nothing; if none compiled, the
/// answer is null. Other types give null.
pub fn regex(subject: &Value, compiled: &[Option<regex::Regex>]) -> Value {
    if !compiled.iter().any(Option::is_some) {
        return Value::Null;
    }
    tri_value(any_element(subject, &mut |item| {
        let text = text_of(item)?;
        Some(compiled.iter().flatten().any(|regex| regex.is_match(&text)))
    }))
}

/// Arithmetic. Null if either side is null or not a number (booleans are not
/// numbers). Two longs give a long, null on overflow or division by zero; with a
/// double, both sides are doubles and `/` is true division, `%` keeps the sign rule
/// of the operator (truncated: the dividend's sign; floored: the divisor's).
pub fn arith(op: ArithOp, lhs: &Value, rhs: &Value) -> Value {
    match (lhs, rhs) {
        (Value::Long(left), Value::Long(right)) => long_arith(op, *left, *right).map_or(Value::Null, Value::Long),
        (Value::Long(_) | Value::Double(_), Value::Long(_) | Value::Double(_)) => match (as_f64(lhs), as_f64(rhs)) {
            (Some(left), Some(right)) => double_arith(op, left, right).map_or(Value::Null, Value::Double),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

fn long_arith(op: ArithOp, left: i64, right: i64) -> Option<i64> {
    match op {
        ArithOp::Add => left.checked_add(right),
        ArithOp::Sub => left.checked_sub(right),
        ArithOp::Mul => left.checked_mul(right),
        ArithOp::DivTrunc => left.checked_div(right),
        ArithOp::DivFloor => {
            let quotient = left.checked_div(right)?;
            let inexact = left.wrapping_rem(right) != 0;
            Some(if inexact && ((left < 0) != (right < 0)) { quotient - 1 } else { quotient })
        }
        // `i64::MIN % -1` is 0 (only the quotient overflows).
        ArithOp::ModTrunc => (right != 0).then(|| left.wrapping_rem(right)),
        ArithOp::ModFloor => {
            let remainder = (right != 0).then(|| left.wrapping_rem(right))?;
            Some(if remainder != 0 && ((remainder < 0) != (right < 0)) { remainder + right } else { remainder })
        }
    }
}

fn double_arith(op: ArithOp, left: f64, right: f64) -> Option<f64> {
    let division = matches!(op, ArithOp::DivTrunc | ArithOp::DivFloor | ArithOp::ModTrunc | ArithOp::ModFloor);
    if division && right == 0.0 {
        return None;
    }
    Some(match op {
        ArithOp::Add => left + right,
        ArithOp::Sub => left - right,
        ArithOp::Mul => left * right,
        ArithOp::DivTrunc | ArithOp::DivFloor => left / right,
        ArithOp::ModTrunc => left % right,
        // python's float `%`: the divisor's sign, a zero remainder included.
        ArithOp::ModFloor => {
            let remainder = left % right;
            if remainder == 0.0 {
                0.0f64.copysign(right)
            } else if (remainder < 0.0) != (right < 0.0) {
                remainder + right
            } else {
                remainder
            }
        }
    })
}

/// Unary minus: null for null and non-numbers, and for the negation of `i64::MIN`.
pub fn negate(value: &Value) -> Value {
    match value {
        Value::Long(value) => value.checked_neg().map_or(Value::Null, Value::Long),
        Value::Double(value) => Value::Double(-value),
        _ => Value::Null,
    }
}

/// A keyword read as a number (`user.id >= 1000`): surrounding whitespace is trimmed;
/// a long if the text is an integer that fits, else a finite double, else null.
/// Numbers pass through; arrays are converted element by element; other values are
/// null.
pub fn to_number(value: &Value) -> Value {
    match value {
        Value::Long(_) | Value::Double(_) => value.clone(),
        Value::Str(text) => parse_number(text).unwrap_or(Value::Null),
        Value::Array(items) => Value::Array(items.iter().map(to_number).collect()),
        _ => Value::Null,
    }
}

fn parse_number(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(value) = text.parse::<i64>() {
        return Some(Value::Long(value));
    }
    // Rust also reads `inf` and `NaN`; those are not numbers a keyword holds.
    text.parse::<f64>().ok().filter(|value| value.is_finite()).map(Value::Double)
}
