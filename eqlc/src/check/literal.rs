//! Literal-level checks and analyses: durations, wildcard patterns, regular
//! expressions, IP addresses and CIDR blocks.

pub use kestrel_bundle::semantics::patterns::{classify_wildcard, matches_everything, parse_cidr, parse_ip, wildcard_matches};

/// Time units `maxspan` accepts, and their length in nanoseconds.
pub const DURATION_UNITS: &[(&str, u64)] =
    &[("nanos", 1), ("micros", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000), ("d", 86_400_000_000_000)];

/// Parses `maxspan` as written (`30`, `s`) into nanoseconds.
pub fn duration_ns(value: &str, unit: &str) -> Result<u64, DurationError> {
    let Some(&(_, unit_ns)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(DurationError::UnknownUnit);
    };
    if value.contains(['.', 'e', 'E']) {
        let approx: f64 = value.parse().unwrap_or(0.0);
        // Suggest the same span in the largest unit that makes it whole.
        let total_ns = approx * unit_ns as f64;
        let suggestion = DURATION_UNITS
            .iter()
            .rev()
            .find(|(_, ns)| total_ns >= *ns as f64 && (total_ns / *ns as f64).fract() == 0.0)
            .map(|(name, ns)| format!("{}{}", (total_ns / *ns as f64) as u64, name));
        return Err(DurationError::NotInteger { suggestion });
    }
    let amount: u64 = value.parse().map_err(|_| DurationError::OutOfRange)?;
    amount.checked_mul(unit_ns).ok_or(DurationError::OutOfRange)
}

#[derive(Debug, PartialEq)]
pub enum DurationError {
    UnknownUnit,
    NotInteger { suggestion: Option<String> },
    OutOfRange,
}

/// What is wrong with a regular expression, if anything.
#[derive(Debug, PartialEq)]
pub enum RegexProblem {
    /// It does not compile; the message says why.
    Invalid(String),
    /// It compiles, but no value can match it (whole-value anchoring).
    NeverMatches(String),
}

/// Validates a regex as eqlc will run it. With `whole_value`, the pattern must match
/// the whole value (Lucene semantics), so inner `^`/`$` anchors make it unsatisfiable.
pub fn check_regex(pattern: &str, case_insensitive: bool, whole_value: bool) -> Result<(), RegexProblem> {
    let mut parser = regex_syntax::ParserBuilder::new().case_insensitive(case_insensitive).build();
    let hir = parser.parse(pattern).map_err(|error| RegexProblem::Invalid(regex_error_text(&error)))?;
    if hir.properties().minimum_len().is_none() {
        return Err(RegexProblem::NeverMatches("it contains an empty character class".to_string()));
    }
    if whole_value && let Some(reason) = misplaced_anchor(&hir) {
        return Err(RegexProblem::NeverMatches(reason));
    }
    Ok(())
}

fn regex_error_text(error: &regex_syntax::Error) -> String {
    match error {
        regex_syntax::Error::Parse(error) => error.kind().to_string(),
        regex_syntax::Error::Translate(error) => error.kind().to_string(),
        other => other.to_string(),
    }
}

/// Finds `x^` or `$x` where `x` must match at least one character.
fn misplaced_anchor(hir: &regex_syntax::hir::Hir) -> Option<String> {
    use regex_syntax::hir::{HirKind, Look};
    match hir.kind() {
        HirKind::Concat(items) => {
            for (idx, item) in items.iter().enumerate() {
                if let HirKind::Look(look) = item.kind() {
                    let before_min: usize = items[..idx].iter().map(|item| item.properties().minimum_len().unwrap_or(0)).sum();
                    let after_min: usize = items[idx + 1..].iter().map(|item| item.properties().minimum_len().unwrap_or(0)).sum();
                    if matches!(look, Look::Start | Look::StartLF | Look::StartCRLF) && before_min > 0 {
                        return Some("`^` comes after text that must match, but patterns match from the start of the value".to_string());
                    }
                    if matches!(look, Look::End | Look::EndLF | Look::EndCRLF) && after_min > 0 {
                        return Some("`$` comes before text that must match, but patterns match to the end of the value".to_string());
                    }
                }
                if let Some(reason) = misplaced_anchor(item) {
                    return Some(reason);
                }
            }
            None
        }
        HirKind::Alternation(items) => {
            // Unsatisfiable only if every branch is.
            let reasons: Vec<String> = items.iter().filter_map(misplaced_anchor).collect();
            if reasons.len() == items.len() { reasons.into_iter().next() } else { None }
        }
        HirKind::Capture(capture) => misplaced_anchor(&capture.sub),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::Pattern;

    #[test]
    fn durations() {
        assert_eq!(duration_ns("30", "s"), Ok(30_000_000_000));
        assert_eq!(duration_ns("1", "d"), Ok(86_400_000_000_000));
        assert_eq!(duration_ns("2.5", "m"), Err(DurationError::NotInteger { suggestion: Some("150s".into()) }));
        assert_eq!(duration_ns("5", "y"), Err(DurationError::UnknownUnit));
        assert_eq!(duration_ns("99999999999999999999", "s"), Err(DurationError::OutOfRange));
    }

    #[test]
    fn wildcard_shapes() {
        assert_eq!(classify_wildcard("/tmp/*", true), Pattern::Prefix("/tmp/".into()));
        assert_eq!(classify_wildcard("*.so", true), Pattern::Suffix(".so".into()));
        assert_eq!(classify_wildcard("*curl*", true), Pattern::Contains("curl".into()));
        assert_eq!(classify_wildcard("bash", true), Pattern::Exact("bash".into()));
        assert_eq!(classify_wildcard("a?b", false), Pattern::Exact("a?b".into()));
        assert!(matches!(classify_wildcard("?memfd:*", true), Pattern::General(_)));
        assert!(matches_everything(&classify_wildcard("**", true)));
    }

    #[test]
    fn regexes() {
        assert_eq!(check_regex(".*[0-9]{1,3}", false, true), Ok(()));
        assert!(matches!(check_regex("a(", false, true), Err(RegexProblem::Invalid(_))));
        assert!(matches!(check_regex("[^\\s\\S]", false, true), Err(RegexProblem::NeverMatches(_))));
        assert!(matches!(check_regex("a^b", false, true), Err(RegexProblem::NeverMatches(_))));
        assert_eq!(check_regex("^ab$", false, true), Ok(()));
        assert_eq!(check_regex("a|^b", false, true), Ok(()));
    }

    #[test]
    fn cidrs() {
        assert!(parse_cidr("10.0.0.0/8").is_ok());
        assert!(parse_cidr("::1").is_ok());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("300.0.0.0/8").is_err());
    }
}
