//! The bundle's prefilter on NDJSON lines (docs/bundle-format.md, `PREFILTER`): a line
//! that is ASCII, holds no backslash and holds none of the bundle's literals (ASCII
//! case-insensitively) can match no rule, so replay reads only its timestamp.
//!
//! Looking for a few literals in a line costs a small part of reading its projected
//! fields: on a one-rule bundle most lines are passed over this way.

use crate::json_scan::{Needle, plain_without};
use crate::ndjson::{JsonError, Projection};
use aho_corasick::{AhoCorasick, MatchKind};
use kestrel_bundle::bundle::Bundle;
use std::ops::Range;

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

/// Where a passed-over line's timestamp is ([`TimestampOnly::read`]).
pub enum PassedTimestamp<'l> {
    /// A string's text.
    Text(&'l str),
    /// Another value's place in the line, or none.
    Raw(Option<Range<usize>>),
}

/// How a line the prefilter passes over has its timestamp read: the projection of the
/// timestamp alone (raw), and the usual case without it.
#[derive(Clone)]
pub struct TimestampOnly {
    projection: Projection,
    /// `{"@timestamp":"` (the bundle's timestamp field): a plain line that starts so,
    /// as Elastic's and Kestrel's own events do, has the timestamp's text up to the next
    /// quote and the rest of the object after a `,`.
    start: Option<String>,
}

impl TimestampOnly {
    pub fn new(field: &str) -> TimestampOnly {
        let plain = field.bytes().all(|byte| byte.is_ascii_graphic() && !matches!(byte, b'"' | b'\\' | b'.'));
        TimestampOnly { projection: Projection::with_raw([], [field]), start: plain.then(|| format!("{{\"{field}\":\"")) }
    }

    /// Where the timestamp of `line`, a line the prefilter passes over (plain: ASCII, no
    /// backslash), is: its text when it is a string, else its raw place (if any). A line
    /// whose structure is wrong is an error, located as the projection locates it.
    pub fn read<'l>(&self, line: &'l str, raw: &mut Vec<Option<Range<usize>>>) -> Result<PassedTimestamp<'l>, JsonError> {
        if let Some(text) = self.leading(line) {
            return Ok(PassedTimestamp::Text(text));
        }
        self.projection.read_with_raw(line, &mut Vec::new(), raw)?;
        Ok(match raw[0].clone() {
            // A plain line has no escapes: a string is its text between the quotes.
            Some(range) if line.as_bytes()[range.start] == b'"' => PassedTimestamp::Text(&line[range.start + 1..range.end - 1]),
            other => PassedTimestamp::Raw(other),
        })
    }

    /// The timestamp's text, when `line` starts with the field's string, that string
    /// holds no backslash, and the rest of the object skips as the projection would skip
    /// it, to the line's end: then the projection reads the same text with no error.
    /// Otherwise `None`, and the projection reads the line (and reports what is wrong).
    fn leading<'l>(&self, line: &'l str) -> Option<&'l str> {
        let start = self.start.as_deref()?;
        let rest = line.strip_prefix(start)?.as_bytes();
        let end = memchr::memchr2(b'"', b'\\', rest).filter(|at| rest[*at] == b'"')? + start.len();
        let bytes = line.as_bytes();
        (bytes.get(end + 1) == Some(&b',') && crate::json_scan::skip_rest(bytes, end + 1) == Ok(line.len())).then(|| &line[start.len()..end])
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

    /// The usual start of a line gives the timestamp's text only where the projection
    /// reads the same text without an error; every other line is left to it.
    #[test]
    fn a_leading_timestamp_is_read_only_where_the_projection_reads_it_alike() {
        let timestamp = TimestampOnly::new("@timestamp");
        let lines = [
            (r#"{"@timestamp":"2024-05-04T12:00:01Z","process":{"name":"zsh","args":["a","[b"]}}"#, true),
            (r#"{"@timestamp":"2024-05-04T12:00:02Z","@timestamp":"2024-05-04T12:00:03Z","x":1}"#, true),
            (r#"{"@timestamp":"","x":{}}"#, true),
            (r#"{"@timestamp":"2024-05-04T12:00:04Z"}"#, false),
            (r#"{"@timestamp":"2024-05-04T12:00:05Z" ,"x":1}"#, false),
            (r#"{"@timestamp":"2024-05-04T12:00:06Z","x":[1,2}"#, false),
            (r#"{"@timestamp":"2024-05-04T12:00:07Z","x":"open}"#, false),
            (r#"{"@timestamp":"2024-05-04T12:00:08Z","x":1}}"#, false),
            (r#"{"@timestamp":"2024-05-04T12:00:09Z","x":1} x"#, false),
            (r#"{"@timestamp":"2024-05-04T12:00:10Z","x":1"#, false),
            (r#"{"@timestamp":"2024-05-04T12:00:11Z"#, false),
            (r#"{"@timestamp":1714824000,"x":1}"#, false),
            (r#"{ "@timestamp":"2024-05-04T12:00:12Z","x":1}"#, false),
            (r#"{"x":1,"@timestamp":"2024-05-04T12:00:13Z"}"#, false),
            // An escape in the timestamp: its first quote is not its end.
            (r#"{"@timestamp":"x\","y":"z"}"#, false),
            (r#"{"@timestamp":"x\u0041","y":"z"}"#, false),
        ];
        for (line, leading) in lines {
            let text = timestamp.leading(line);
            assert_eq!(text.is_some(), leading, "{line}");
            let mut raw = Vec::new();
            let read = timestamp.projection.read_with_raw(line, &mut Vec::new(), &mut raw);
            if let Some(text) = text {
                assert_eq!(read, Ok(()), "{line}");
                let range = raw[0].clone().expect("a timestamp");
                assert_eq!(&line[range.start + 1..range.end - 1], text, "{line}");
            }
        }
        // A field name JSON would spell with an escape, or a dotted one, is always left
        // to the projection.
        assert!(TimestampOnly::new("a\"b").leading(r#"{"a\"b":"1","x":1}"#).is_none());
        assert!(TimestampOnly::new("event.created").leading(r#"{"event.created":"1","x":1}"#).is_none());
        assert_eq!(TimestampOnly::new("ts").leading(r#"{"ts":"1","x":1}"#), Some("1"));
    }

    #[test]
    fn a_bundle_without_a_prefilter_has_no_filter() {
        let mut bundle = Bundle::from_bytes(crate::builtin::BUILTIN_BUNDLE).expect("the built-in bundle");
        bundle.prefilter = None;
        assert!(LineFilter::of(&bundle).is_none());
    }
}
