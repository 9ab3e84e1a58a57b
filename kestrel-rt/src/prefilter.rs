//! The bundle's prefilter on NDJSON lines (docs/bundle-format.md, `PREFILTER`): a line
//! that is ASCII, holds no backslash and holds none of the bundle's literals (ASCII
//! case-insensitively) can match no rule, so replay reads only its timestamp.
//!
//! Looking for a few literals in a line costs a small part of reading its projected
//! fields: on a one-rule bundle most lines are passed over this way.

use crate::json_scan::{Needle, plain_without};
use aho_corasick::{AhoCorasick, MatchKind};
use kestrel_bundle::bundle::Bundle;

/// Most literals looked for block by block with the odd bytes ([`plain_without`]: a
/// few instructions per literal and block); more go to an Aho-Corasick automaton.
const MAX_NEEDLES: usize = 8;

/// The literals of a bundle's prefilter, ready to look for.
#[derive(Clone, Debug)]
pub enum LineFilter {
    /// Few literals: looked for in the same pass as the odd bytes.
    Needles(Vec<Needle>),
    /// Many: a pass for the odd bytes, then the automaton's.
    Automaton(AhoCorasick),
}

impl LineFilter {
    /// The filter of `bundle`, if it has a prefilter.
    pub fn of(bundle: &Bundle) -> Option<LineFilter> {
        let literals = &bundle.prefilter.as_ref()?.literals;
        if literals.len() <= MAX_NEEDLES {
            // The bundle's literals are ASCII and not empty (validated on load).
            return literals.iter().map(|literal| Needle::new(literal)).collect::<Option<Vec<Needle>>>().map(LineFilter::Needles);
        }
        // A few hundred short literals at most (the bundle's limits): building cannot
        // fail on them, but if it did, every line would simply be read.
        AhoCorasick::builder().ascii_case_insensitive(true).match_kind(MatchKind::LeftmostFirst).build(literals).ok().map(LineFilter::Automaton)
    }

    /// Whether no rule can match the event of `line`: it is plain (ASCII, no escapes)
    /// and holds none of the literals.
    pub fn passes_over(&self, line: &str) -> bool {
        match self {
            LineFilter::Needles(needles) => plain_without(line.as_bytes(), needles),
            LineFilter::Automaton(literals) => plain_without(line.as_bytes(), &[]) && !literals.is_match(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_bundle::bundle::Prefilter;

    /// The built-in bundle with a prefilter of `literals`, and its filter.
    fn filter(literals: &[&str]) -> LineFilter {
        let mut bundle = Bundle::from_bytes(crate::builtin::BUILTIN_BUNDLE).expect("the built-in bundle");
        bundle.prefilter = Some(Prefilter { literals: literals.iter().map(|literal| literal.to_string()).collect() });
        LineFilter::of(&bundle).expect("a filter")
    }

    #[test]
    fn lines_with_a_literal_or_an_escape_or_other_text_are_read() {
        let many: Vec<String> = (0..20).map(|n| format!("zz{n:02}")).chain(["bash".to_string()]).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        for filter in [filter(&["bash"]), filter(&many)] {
            assert!(filter.passes_over(r#"{"process":{"name":"zsh"}}"#));
            assert!(!filter.passes_over(r#"{"process":{"name":"BaSh"}}"#));
            assert!(!filter.passes_over(r#"{"process":{"name":"\u0062ash"}}"#));
            // The Kelvin sign folds to `k`: a line that is not ASCII is always read.
            assert!(!filter.passes_over(r#"{"process":{"name":"zsh"},"x":"é"}"#));
        }
        assert!(matches!(filter(&many), LineFilter::Automaton(_)));
    }

    #[test]
    fn a_bundle_without_a_prefilter_has_no_filter() {
        let mut bundle = Bundle::from_bytes(crate::builtin::BUILTIN_BUNDLE).expect("the built-in bundle");
        bundle.prefilter = None;
        assert!(LineFilter::of(&bundle).is_none());
    }
}
