//! The bundle's needs never change what a replay finds (docs/bundle-format.md, `NEEDS`).
//!
//! A property test generates rule sets of 12 to 23 rules (enough for eqlc to write
//! needs) over the prefilter suite's conditions and lines (string fields against
//! literals in every operator, `!=`, `not`, `or` and numbers, which need nothing known;
//! values that hit the literals plainly, through escapes, next to their bit-5
//! neighbours, behind a Kelvin sign, in arrays, or not at all), in both dialects and
//! for `any`, `process` and `file` events. Each rule set is replayed with its bundle
//! as eqlc built it and without its needs: the alerts, which lines are bad, and the
//! counts must be the same. The run must also have cases where the needs skipped
//! conditions and rules matched, so that it does not pass for want of either.
//!
//! The cases come from a fixed seed; `PROPTEST_CASES` raises their number.

use crate::prefilter::{build, condition, line, replay};
use kestrel_bundle::Bundle;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

#[test]
fn needs_never_change_what_a_replay_finds() {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|value| value.parse().ok()).unwrap_or(32);
    let mut runner =
        TestRunner::new_with_rng(Config { cases, failure_persistence: None, ..Config::default() }, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let category = proptest::sample::select(&["any", "process", "file"][..]);
    let case = (proptest::collection::vec((category, condition()), 12..24), proptest::bool::ANY, proptest::collection::vec(line(), 30..60));
    // Cases where the needs skipped conditions and some rule matched.
    let telling = std::cell::Cell::new(0);
    let result = runner.run(&case, |(rules, endgame, lines)| {
        let queries: Vec<String> = rules.iter().map(|(category, condition)| format!("{category} where {condition}")).collect();
        let bundle = build(&queries, endgame);
        let Some(needs) = &bundle.needs else { return Ok(()) };
        let events: String = lines.iter().map(|line| format!("{line}\n")).collect();
        let skipping = replay(&bundle, &events);
        let running = replay(&Bundle { needs: None, ..bundle.clone() }, &events);
        // The first alert that differs, not two pages of them.
        let (skipped, ran) = (String::from_utf8_lossy(&skipping.alerts), String::from_utf8_lossy(&running.alerts));
        let differ = skipped.lines().zip(ran.lines()).position(|(a, b)| a != b).or((skipped.lines().count() != ran.lines().count()).then_some(usize::MAX));
        prop_assert!(differ.is_none(), "alert {differ:?} differs ({} against {} alerts); needs {needs:?}", skipped.lines().count(), ran.lines().count());
        prop_assert_eq!(&skipping.bad_lines, &running.bad_lines);
        prop_assert_eq!(skipping.counts, running.counts);
        prop_assert_eq!(running.needs_skipped, 0);
        if skipping.needs_skipped > 0 && !skipping.alerts.is_empty() {
            telling.set(telling.get() + 1);
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    // Most cases tell (a rule set with fewer than 8 conditions that need something has
    // no needs): at least one in four must.
    assert!(telling.get() * 4 >= cases, "only {} of {cases} cases had conditions skipped and alerts", telling.get());
}
