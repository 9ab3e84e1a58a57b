//! The lexer, parser, checker, printers and renderer never panic, whatever the input:
//! arbitrary text, soups of EQL tokens, and mangled real rules.

use eqlc::dialect::Dialect;
use eqlc::rules::FileKind;
use proptest::prelude::*;
use tests::{FileOptions, check_text, read_jsonl, shared_dir};

/// Runs every pass on `text`, under both dialects and both built-in schemas.
fn run_everything(text: &str) {
    for header in ["// eqlc: schema=linux", "// eqlc: schema=dynamic dialect=endgame", "// eqlc: schema=dynamic dialect=endgame case=sensitive"] {
        let options = FileOptions::parse(header);
        let (sources, checked, _) = check_text("fuzz.eql", text, FileKind::Eql, &options);
        for rule in &checked {
            let _ = eqlc::print::dump(&rule.ast);
            let _ = eqlc::print::eql(&rule.ast);
            if let Some(typed) = &rule.rule {
                let _ = eqlc::print_ir::rule(typed);
            }
            let _ = eqlc::render::human(&rule.diags, &sources, false);
            let _ = eqlc::render::json(&rule.diags, &sources);
            let _ = eqlc::render::sarif(&rule.diags, &sources);
        }
    }
    for dialect in [Dialect::Elasticsearch, Dialect::Endgame] {
        let _ = eqlc::lex::tokenize(text, 0, dialect);
    }
}

const FRAGMENTS: &[&str] = &[
    "sequence",
    "sample",
    "join",
    "by",
    "with",
    "maxspan",
    "=",
    "5m",
    "runs",
    "until",
    "fork",
    "as",
    "where",
    "any",
    "process",
    "[",
    "]",
    "![",
    "(",
    ")",
    "and",
    "or",
    "not",
    "in",
    "in~",
    "like",
    "like~",
    "regex",
    "regex~",
    ":",
    "==",
    "!=",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    ",",
    ".",
    "|",
    "head",
    "tail",
    "filter",
    "unique",
    "count",
    "sort",
    "\"x*\"",
    "'y'",
    "?\"raw\"",
    "\"\"\"tri\"\"\"",
    "1",
    "2.5",
    "1e3",
    "null",
    "true",
    "process.name",
    "?opt",
    "`esc aped`",
    "$v",
    "a[0]",
    "descendant",
    "of",
    "child",
    "event",
    "cidrmatch",
    "startswith~",
    "_arraysearch",
    "arraySearch",
    "length",
    "macro",
    "const",
    "M",
    "//c\n",
    "/*c*/",
    "\"",
    "`",
    "~",
    "?",
    "!",
    "@timestamp",
    "\n",
    "0",
    "99999999999999999999",
    ":length(",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(FRAGMENTS), prop::bool::ANY), 0..40).prop_map(|pieces| {
        let mut text = String::new();
        for (fragment, spaced) in pieces {
            text.push_str(fragment);
            if spaced {
                text.push(' ');
            }
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,120}") {
        run_everything(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        run_everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        run_everything(&text);
    }
}

/// Mangles real rules: deletes, duplicates and truncates ranges, at random but
/// reproducible places (a fixed-seed generator), and checks the result.
#[test]
fn mangled_corpus_rules_never_panic() {
    let Some(shared) = shared_dir("mangled corpus rules") else { return };
    let rules = read_jsonl(&shared.join("corpus/elastic-protections-artifacts.eql.jsonl"));
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound.max(1) as u64) as usize
    };
    for (_, rule) in rules.iter().step_by(3) {
        let query = rule["query"].as_str().unwrap();
        let chars: Vec<char> = query.chars().collect();
        for _ in 0..4 {
            let (a, b) = (next(chars.len() + 1), next(chars.len() + 1));
            let (start, end) = (a.min(b), a.max(b));
            let mangled: String = match next(4) {
                0 => chars[..start].iter().chain(&chars[end..]).collect(),
                1 => chars[..end].iter().chain(&chars[start..]).collect(),
                2 => chars[..start].iter().collect(),
                _ => chars[..start].iter().chain(FRAGMENTS[next(FRAGMENTS.len())].chars().collect::<Vec<_>>().iter()).chain(&chars[start..]).collect(),
            };
            run_everything(&mangled);
        }
    }
}
