//! Software versions in the order of Elasticsearch's `version` field type
//! (docs/semantics.md, "Versions").
//!
//! Elasticsearch indexes a version as bytes whose order is the version order
//! (`VersionEncoder` of its `mapper-version` plugin); a range query on a `version`
//! field compares those bytes. [`compare_versions`] builds the same kind of key and
//! compares it, so it orders exactly as Elasticsearch does, quirks included.

use std::cmp::Ordering;

/// Starts a number in a key; then its digit count (`u32`, big-endian) and its digits,
/// so numbers without leading zeros order numerically. It sorts below every character
/// a version may hold, so a numeric pre-release identifier sorts below an
/// alphanumeric one.
const NUMBER: u8 = 0x01;
/// After the main part of a version with a pre-release part ...
const PRERELEASE: u8 = 0x02;
/// ... which sorts before the same main part without one (`1.2.4-SNAPSHOT < 1.2.4`).
const RELEASE: u8 = 0x03;

/// Orders two version strings as Elasticsearch's `version` field does.
///
/// A valid version is `main[-prerelease][+build]`:
/// - `main`: one or more dot-separated numbers without leading zeros (`1`, `1.2`,
///   `1.2.3.4`), compared part by part, numerically; when one is a prefix of the
///   other, the shorter sorts first (`1.2 < 1.2.0 < 1.2.0.0`);
/// - `prerelease`: dot-separated identifiers of ASCII letters, digits and `-`; numeric
///   identifiers (no leading zeros) compare numerically, others by their bytes, and a
///   numeric identifier sorts before an alphanumeric one; fewer identifiers sort first
///   when the others are equal (`1.0.0-alpha < 1.0.0-alpha.1`); a version with a
///   pre-release part sorts before the same version without one;
/// - `build`: dot-separated identifiers of ASCII letters, digits and `-`; it only
///   breaks ties, by its bytes (`1.2.4 < 1.2.4+a < 1.2.4+b < 1.2.5-rc`), so two
///   versions are equal only when they are the same string.
///
/// Anything else (`bad`, `1.02`, `v1.2`, the empty string) is invalid: invalid versions
/// sort after every valid one, and among themselves by their bytes.
///
/// One quirk of Elasticsearch's byte keys is kept: within a pre-release identifier, a
/// `-` sorts before the `.` that starts the next identifier (`1.0.0-a-b < 1.0.0-a.b`,
/// where semver would put `a` before `a-b`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (sort_key(a), sort_key(b)) {
        (Some(left), Some(right)) => left.cmp(&right),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.as_bytes().cmp(b.as_bytes()),
    }
}

/// Whether Elasticsearch reads the text as a valid version (see [`compare_versions`]).
pub fn is_valid_version(text: &str) -> bool {
    sort_key(text).is_some()
}

/// The bytes a valid version sorts by; `None` for an invalid one.
///
/// Elasticsearch's layout: the main part's numbers with `.` between them, then
/// [`PRERELEASE`], `-` and the pre-release identifiers with `.` between them (numbers
/// as numbers, others as their bytes), or [`RELEASE`]; then `+` and the build part.
/// (Elasticsearch writes a digit count as one byte and refuses 128 digits or more;
/// four bytes here give such numbers their numeric place instead.)
fn sort_key(text: &str) -> Option<Vec<u8>> {
    // As Elasticsearch splits: the build part from the first `+`, then the pre-release
    // part from the first `-` of the rest; a separator at the start splits nothing.
    let (rest, build) = split_at_first(text, '+');
    let (main, prerelease) = split_at_first(rest, '-');
    let mut key = Vec::with_capacity(text.len() + 16);
    for (idx, part) in main.split('.').enumerate() {
        if !is_number(part) {
            return None;
        }
        if idx > 0 {
            key.push(b'.');
        }
        push_number(&mut key, part);
    }
    match prerelease {
        Some(prerelease) => {
            key.push(PRERELEASE);
            key.push(b'-');
            for (idx, identifier) in prerelease.split('.').enumerate() {
                if idx > 0 {
                    key.push(b'.');
                }
                if is_number(identifier) {
                    push_number(&mut key, identifier);
                } else if is_identifier(identifier) && !identifier.bytes().all(|byte| byte.is_ascii_digit()) {
                    key.extend_from_slice(identifier.as_bytes());
                } else {
                    // Empty, a number with a leading zero, or another character.
                    return None;
                }
            }
        }
        None => key.push(RELEASE),
    }
    if let Some(build) = build {
        if !build.split('.').all(is_identifier) {
            return None;
        }
        key.push(b'+');
        key.extend_from_slice(build.as_bytes());
    }
    Some(key)
}

/// `(before, Some(after))` around the first `separator` when it is not the first
/// character; `(text, None)` otherwise.
fn split_at_first(text: &str, separator: char) -> (&str, Option<&str>) {
    match text.find(separator) {
        Some(idx) if idx > 0 => (&text[..idx], Some(&text[idx + 1..])),
        _ => (text, None),
    }
}

/// ASCII digits without a leading zero (`0` itself is a number).
fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) && (text == "0" || !text.starts_with('0'))
}

/// ASCII letters, digits and `-`, at least one.
fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

fn push_number(key: &mut Vec<u8>, digits: &str) {
    key.push(NUMBER);
    key.extend_from_slice(&u32::try_from(digits.len()).unwrap_or(u32::MAX).to_be_bytes());
    key.extend_from_slice(digits.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn pairs_order_as_elasticsearch_orders_them() {
        let cases: &[(&str, &str, Ordering)] = &[
            // The Elasticsearch QA suite (`sequenceWithVersionRangeCheck`, `...2`).
            ("1.11.3", "1.5.0", Greater),
            ("1.5.0", "1.5.0", Equal),
            ("1.2.4", "1.5.0", Less),
            ("1.2.4-SNAPSHOT", "1.5.0", Less),
            ("bad", "1.5.0", Greater),
            ("1.2.4-SNAPSHOT", "1.2.4", Less),
            // Numbers compare numerically, part by part.
            ("1.10.0", "1.9.0", Greater),
            ("2.0.0", "10.0.0", Less),
            ("0.0.1", "0.0.0", Greater),
            ("1.2.3", "1.2.3", Equal),
            ("123456789012345678901234567890.0", "99999999999999999999999999999.0", Greater),
            // Different part counts: a prefix sorts first.
            ("1.2", "1.2.0", Less),
            ("1.2.0", "1.2.0.0", Less),
            ("1", "1.0", Less),
            ("1.2", "1.1.9", Greater),
            ("1.2.3.4", "1.2.4", Less),
            // Pre-releases (semver's example chain) and the released version.
            ("1.0.0-alpha", "1.0.0-alpha.1", Less),
            ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
            ("1.0.0-alpha.beta", "1.0.0-beta", Less),
            ("1.0.0-beta", "1.0.0-beta.2", Less),
            ("1.0.0-beta.2", "1.0.0-beta.11", Less),
            ("1.0.0-beta.11", "1.0.0-rc.1", Less),
            ("1.0.0-rc.1", "1.0.0", Less),
            ("1.0.0-rc.1", "0.9.9", Greater),
            ("1.0.0-0", "1.0.0-a", Less),
            ("1.0.0-1.a", "1.0.0-1a", Less),
            ("1.0.0-rc11", "1.0.0-rc2", Less),
            ("1.0.0-RC1", "1.0.0-rc1", Less),
            ("1.0.0-x-y", "1.0.0-x", Greater),
            // Elasticsearch's quirk: `-` inside an identifier before `.` between two.
            ("1.0.0-a-b", "1.0.0-a.b", Less),
            // The build part only breaks ties.
            ("1.2.4+build.1", "1.2.4", Greater),
            ("1.2.4+a", "1.2.4+b", Less),
            ("1.2.4+zzz", "1.2.5", Less),
            ("1.2.4+zzz", "1.2.4.1", Less),
            ("1.2.4-rc+zzz", "1.2.4-rc.1", Less),
            ("1.2.4-rc+zzz", "1.2.4", Less),
            ("1.2.4-rc.1+a", "1.2.4-rc.1+a", Equal),
            // Invalid versions: after every valid one, then by their bytes.
            ("bad", "999.0.0", Greater),
            ("1.02", "1.3", Greater),
            ("", "0", Greater),
            ("bad", "bad", Equal),
            ("bad", "good", Less),
            ("1.02", "bad", Less),
            ("v1.2", "1.2", Greater),
        ];
        for (left, right, expected) in cases {
            assert_eq!(compare_versions(left, right), *expected, "{left:?} vs {right:?}");
            assert_eq!(compare_versions(right, left), expected.reverse(), "{right:?} vs {left:?}");
        }
    }

    #[test]
    fn validity_follows_elasticsearch() {
        let valid = [
            "0",
            "1",
            "1.2",
            "1.2.3",
            "1.2.3.4.5",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-0",
            "1.0.0-alpha-1",
            "1.0.0-a.1.b",
            "1.0.0-0a",
            "1.0.0+b",
            "1.0.0-rc.1+build.5-x",
            "1.0+001",
        ];
        let invalid = [
            "",
            "bad",
            "v1.0.0",
            "1.",
            ".1",
            "1..2",
            "01.2",
            "1.02",
            "1.2a",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0-a..b",
            "1.0.0-a_b",
            "1.0.0+",
            "1.0.0+a..b",
            "1.0.0+a+b",
            "-1.0",
            "+1.0",
            "1.0.0 ",
            " 1.0.0",
            "1.0.0-é",
            "١.٢",
        ];
        for text in valid {
            assert!(is_valid_version(text), "{text:?} is a version");
        }
        for text in invalid {
            assert!(!is_valid_version(text), "{text:?} is not a version");
        }
    }

    #[test]
    fn the_order_is_total_and_equal_only_for_equal_strings() {
        let versions = [
            "1.5.0",
            "1.11.3",
            "bad",
            "1.2.4-SNAPSHOT",
            "1.2.4",
            "1.2",
            "1.2.0",
            "1.2.0.0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-a-b",
            "1.0.0-a.b",
            "1.0.0+b",
            "1.0.0",
            "",
            "1.02",
            "0",
            "1.0.0-rc.1+x",
        ];
        for a in versions {
            for b in versions {
                let ab = compare_versions(a, b);
                assert_eq!(ab == Equal, a == b, "{a:?} vs {b:?}");
                for c in versions {
                    if ab != Greater && compare_versions(b, c) != Greater {
                        assert_ne!(compare_versions(a, c), Greater, "{a:?} <= {b:?} <= {c:?}");
                    }
                }
            }
        }
    }
}
