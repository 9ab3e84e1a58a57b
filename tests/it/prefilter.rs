//! The bundle's prefilter never changes what a replay finds (docs/bundle-format.md,
//! `PREFILTER`).
//!
//! A property test generates rule sets whose conditions compare string fields with
//! literals (`==`, `in`, `:`, `like~`, `startsWith`, `stringContains`, `endsWith`, and
//! `!=`, `not`, `or` and numbers, which leave a rule without a prefilter), in both
//! dialects, and NDJSON lines whose values hit the literals in every case, through
//! `\u` escapes, next to their bit-5 neighbours (`@` and `` ` ``), behind a Kelvin sign
//! (which lower-cases to `k`), or not at all, some lines truncated. Each rule set is
//! replayed with its bundle as eqlc built it and without its prefilter: the alerts,
//! which lines are bad, and the counts must be the same. The run must also have
//! cases where the prefilter passed over lines and rules matched, so that it does not
//! pass for want of either.
//!
//! The cases come from a fixed seed; `PROPTEST_CASES` raises their number.

use eqlc::rules::FileKind;
use kestrel_bundle::Bundle;
use kestrel_rt::prefilter::LineFilter;
use kestrel_rt::program::Program;
use kestrel_rt::replay::{Options, Replay};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::sync::Arc;
use tests::{FileOptions, check_text};

/// Literals rules compare with: letters in both cases, a path, a space, `@` (whose
/// bit-5 neighbour is `` ` ``), `k` (the Kelvin sign's lower case), one not ASCII.
const LITERALS: &[&str] = &["bash", "BASH", "curl", "/bin/", "sh -c", "b@sh", "kill", "wget", "bäsh", "python"];

/// Values events hold.
const VALUES: &[&str] = &[
    "bash",
    "Bash",
    "/bin/bash",
    "xbashx",
    "curl",
    "CURL",
    "curly",
    "wget",
    "python3",
    "zsh",
    "sh -c id",
    "b@sh",
    "b`sh",
    "bäsh",
    "\u{212A}ill",
    "kill",
    "dash",
];

const FIELDS: &[&str] = &["process.name", "process.executable", "process.args", "file.path"];

fn leaf() -> BoxedStrategy<String> {
    let field = proptest::sample::select(FIELDS);
    let literal = proptest::sample::select(LITERALS);
    // `!=` and the number need nothing known: one draw in twelve each.
    (field, literal, 0..12u8, proptest::sample::select(LITERALS))
        .prop_map(|(field, literal, op, other)| match op {
            0 => format!("{field} == \"{literal}\""),
            1 => format!("{field} in (\"{literal}\", \"{other}\")"),
            2 => format!("{field} : \"*{literal}*\""),
            3 => format!("{field} like~ \"{literal}*\""),
            4 => format!("startsWith({field}, \"{literal}\")"),
            5 => format!("stringContains({field}, \"{literal}\")"),
            6 => format!("endsWith({field}, \"{literal}\")"),
            7 => format!("{field} != \"{literal}\""),
            8 => "process.pid > 100".to_string(),
            9 => format!("{field} : \"{literal}\""),
            10 => format!("{field} : (\"*{literal}\", \"{other}*\")"),
            _ => format!("{field} == \"{literal}\""),
        })
        .boxed()
}

pub(crate) fn condition() -> BoxedStrategy<String> {
    leaf()
        .prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                3 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
                3 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
                1 => inner.prop_map(|a| format!("not ({a})")),
            ]
        })
        .boxed()
}

/// A value as it is written in a line: plain, or with a letter spelled as an escape.
fn spelled(value: &str, escape: bool) -> String {
    let text = serde_json::to_string(value).unwrap();
    match (escape, value.char_indices().find(|(_, ch)| ch.is_ascii_alphabetic())) {
        (true, Some((at, ch))) => format!("\"{}\\u{:04x}{}", &value[..at], ch as u32, &value[at + 1..]) + "\"",
        _ => text,
    }
}

pub(crate) fn line() -> BoxedStrategy<String> {
    let value = || (proptest::sample::select(VALUES), proptest::bool::weighted(0.15));
    (value(), value(), value(), value(), proptest::bool::ANY, proptest::bool::weighted(0.05), 0..1000u32)
        .prop_map(|(name, executable, arg, path, file, truncated, pid)| {
            let (category, rest) = if file {
                ("file", format!("\"file\":{{\"path\":{}}}", spelled(path.0, path.1)))
            } else {
                (
                    "process",
                    format!(
                        "\"process\":{{\"name\":{},\"executable\":{},\"args\":[{},\"-x\"],\"pid\":{pid}}}",
                        spelled(name.0, name.1),
                        spelled(executable.0, executable.1),
                        spelled(arg.0, arg.1)
                    ),
                )
            };
            let text = format!("{{\"@timestamp\":\"2024-05-04T12:00:00Z\",\"event\":{{\"category\":[\"{category}\"]}},{rest}}}");
            if truncated { text[..text.len() - 2].to_string() } else { text }
        })
        .boxed()
}

/// The bundle of `queries` (the `linux` schema; the endgame dialect or Elasticsearch's),
/// built as `eqlc build` builds it. The queries must check without errors.
pub(crate) fn build(queries: &[String], endgame: bool) -> Bundle {
    let header = if endgame { "// eqlc: schema=linux dialect=endgame\n" } else { "// eqlc: schema=linux\n" };
    let text: String = queries.iter().map(|query| serde_json::json!({ "query": query }).to_string() + "\n").collect();
    let options = FileOptions::parse(header);
    let (_, checked, _) = check_text("rules.jsonl", &text, FileKind::JsonLines, &options);
    let errors: Vec<_> = checked.iter().flat_map(|rule| &rule.diags).filter(|diag| diag.is_error()).map(|diag| diag.message.clone()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let (bytes, diags) = eqlc::driver::build(&checked, &options.schema(), &[]);
    Bundle::from_bytes(&bytes.unwrap_or_else(|| panic!("does not build: {diags:?}"))).unwrap()
}

pub(crate) struct Outcome {
    pub(crate) alerts: Vec<u8>,
    pub(crate) bad_lines: Vec<u64>,
    pub(crate) counts: (u64, u64, u64, u64, u64),
    pub(crate) needs_skipped: u64,
}

pub(crate) fn replay(bundle: &Bundle, events: &str) -> Outcome {
    let program = Program::load(&bundle.to_bytes().unwrap()).expect("the bundle loads");
    let mut alerts = Vec::new();
    let mut bad_lines = Vec::new();
    let mut replay = Replay::new(Arc::new(program), Options::default(), &mut alerts).expect("the engine starts");
    replay.read_all("events.ndjson", events.as_bytes(), &mut |bad| bad_lines.push(bad.line)).unwrap();
    let summary = replay.finish().unwrap();
    Outcome {
        alerts,
        bad_lines,
        counts: (summary.lines, summary.events, summary.alerts, summary.bad_lines, summary.untimed),
        needs_skipped: summary.needs_skipped,
    }
}

#[test]
fn the_prefilter_never_changes_what_a_replay_finds() {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|value| value.parse().ok()).unwrap_or(48);
    // A fixed seed: the same cases every run (more with `PROPTEST_CASES`), so that the
    // count of telling cases below cannot vary.
    let mut runner =
        TestRunner::new_with_rng(Config { cases, failure_persistence: None, ..Config::default() }, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let case = (proptest::collection::vec(condition(), 1..3), proptest::bool::ANY, proptest::collection::vec(line(), 30..60));
    // Cases where the prefilter passed over lines and some rule matched.
    let telling = std::cell::Cell::new(0);
    let result = runner.run(&case, |(conditions, endgame, lines)| {
        let queries: Vec<String> = conditions.iter().map(|condition| format!("any where {condition}")).collect();
        let bundle = build(&queries, endgame);
        let Some(filter) = LineFilter::of(&bundle) else { return Ok(()) };
        let events: String = lines.iter().map(|line| format!("{line}\n")).collect();
        let filtered = replay(&bundle, &events);
        let all_read = replay(&Bundle { prefilter: None, ..bundle.clone() }, &events);
        prop_assert_eq!(String::from_utf8_lossy(&filtered.alerts), String::from_utf8_lossy(&all_read.alerts), "{:?}", bundle.prefilter);
        prop_assert_eq!(&filtered.bad_lines, &all_read.bad_lines);
        prop_assert_eq!(filtered.counts, all_read.counts);
        if lines.iter().any(|line| filter.passes_over(line)) && !filtered.alerts.is_empty() {
            telling.set(telling.get() + 1);
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    // About a quarter of the cases tell (a rule set without a prefilter does not): at
    // least one in twelve must.
    assert!(telling.get() * 12 >= cases, "only {} of {cases} cases had lines passed over and alerts", telling.get());
}
