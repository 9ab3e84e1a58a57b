//! Replay suite driven by data files: each `tests/data/replay/NAME.eql` (options in its
//! `// eqlc:` header) is built into a bundle and replayed over `NAME.ndjson`; the
//! snapshot holds the rule, the alerts as written, the bad lines and the summary.
//!
//! Each case also checks two promises of `kestrel replay`: two replays of the same
//! input write the same bytes, and (when every event has its own timestamp) the order
//! of the input lines does not change the alerts.

use eqlc::rules::FileKind;
use kestrel_rt::program::Program;
use kestrel_rt::replay::{Options, Replay, Summary};
use std::path::Path;
use std::sync::Arc;
use tests::{FileOptions, check_text, repo_root};

struct Outcome {
    alerts: Vec<u8>,
    bad: Vec<String>,
    summary: Summary,
}

fn replay(bundle: &[u8], events: &str) -> Outcome {
    replay_with(bundle, events, Options::default())
}

fn replay_with(bundle: &[u8], events: &str, options: Options) -> Outcome {
    let program = Program::load(bundle).expect("the bundle loads");
    let mut alerts = Vec::new();
    let mut bad = Vec::new();
    let mut replay = Replay::new(Arc::new(program), options, &mut alerts).expect("the engine starts");
    replay.read_all("events.ndjson", events.as_bytes(), &mut |line| bad.push(line.to_string())).unwrap();
    let summary = replay.finish().unwrap();
    Outcome { alerts, bad, summary }
}

fn build(path: &Path, text: &str) -> Vec<u8> {
    let options = FileOptions::parse(text);
    let (_, checked, _) = check_text(&path.file_name().unwrap().to_string_lossy(), text, FileKind::Eql, &options);
    let errors: Vec<_> = checked.iter().flat_map(|rule| &rule.diags).filter(|diag| diag.is_error()).map(|diag| diag.message.clone()).collect();
    assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    let (bytes, diags) = eqlc::driver::build(&checked, &options.schema(), &[]);
    bytes.unwrap_or_else(|| panic!("{}: does not build: {:?}", path.display(), diags.iter().map(|diag| &diag.message).collect::<Vec<_>>()))
}

#[test]
fn replay_cases() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("snapshots").join("replay"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::glob!("../data/replay", "*.eql", |path| {
            let text = std::fs::read_to_string(path).unwrap();
            let events = std::fs::read_to_string(path.with_extension("ndjson")).expect("each case has its events beside it");
            let bundle = build(path, &text);
            let first = replay(&bundle, &events);
            let second = replay(&bundle, &events);
            assert_eq!(first.alerts, second.alerts, "{}: two replays of the same input differ", path.display());
            // Parsing on worker threads changes nothing: over many small blocks of lines,
            // with bad lines between them, the alerts, bad lines and counts are the same.
            let mut long = String::new();
            while long.len() < 64 * 1024 {
                long.push_str(&events);
                long.push_str("not json\n\n");
            }
            let alone = replay_with(&bundle, &long, Options { threads: 1, ..Options::default() });
            let parallel = replay_with(&bundle, &long, Options { threads: 3, block_bytes: 1024, ..Options::default() });
            assert_eq!(String::from_utf8_lossy(&alone.alerts), String::from_utf8_lossy(&parallel.alerts), "{}: threads change the alerts", path.display());
            assert_eq!(alone.bad, parallel.bad, "{}: threads change the bad lines", path.display());
            assert_eq!(
                (alone.summary.events, alone.summary.alerts, alone.summary.lines, alone.summary.late),
                (parallel.summary.events, parallel.summary.alerts, parallel.summary.lines, parallel.summary.late),
                "{}: threads change the counts",
                path.display()
            );
            if first.summary.untimed == 0 {
                let reversed: String = events.lines().rev().map(|line| format!("{line}\n")).collect();
                let backwards = replay(&bundle, &reversed);
                assert_eq!(
                    String::from_utf8_lossy(&first.alerts),
                    String::from_utf8_lossy(&backwards.alerts),
                    "{}: the input order changed the alerts",
                    path.display()
                );
            }
            // The bundle's prefilter changes nothing: without it, every line's fields
            // are read, and the alerts, counts and bad lines are the same. (A line passed
            // over is checked as a skipped value is, for balanced brackets and ended
            // strings, the faults of these cases' bad lines, but the message may be less
            // precise: "unterminated object or array" for a missing bracket that reading
            // the fields reports as "expected `,` or `}`".)
            if let Some(unfiltered) = without_prefilter(&bundle) {
                let all_read = replay(&unfiltered, &long);
                let filtered = replay(&bundle, &long);
                assert_eq!(
                    String::from_utf8_lossy(&filtered.alerts),
                    String::from_utf8_lossy(&all_read.alerts),
                    "{}: the prefilter changes the alerts",
                    path.display()
                );
                let numbers = |bad: &[String]| bad.iter().map(|line| line.split(':').nth(1).unwrap_or_default().to_string()).collect::<Vec<_>>();
                assert_eq!(numbers(&filtered.bad), numbers(&all_read.bad), "{}: the prefilter changes which lines are bad", path.display());
                assert_eq!(counts(&filtered.summary), counts(&all_read.summary), "{}: the prefilter changes the counts", path.display());
            }
            let summary = &first.summary;
            let rules: Vec<String> = summary
                .rules
                .iter()
                .map(|rule| {
                    format!(
                        "{}: {} matches, {} alerts, {} traps, {} dropped",
                        rule.id, rule.stats.matches, rule.stats.alerts, rule.stats.traps, rule.stats.dropped
                    )
                })
                .collect();
            let snapshot = format!(
                "----- RULE\n{}\n----- ALERTS\n{}----- BAD LINES\n{}\n----- SUMMARY\n{}\n{}\n",
                text.trim_end(),
                String::from_utf8(first.alerts).unwrap(),
                first.bad.join("\n"),
                totals(summary),
                rules.join("\n")
            );
            insta::assert_snapshot!("replay", snapshot);
        });
    });
}

/// The bundle without its prefilter, if it has one.
fn without_prefilter(bundle: &[u8]) -> Option<Vec<u8>> {
    let mut bundle = kestrel_bundle::Bundle::from_bytes(bundle).expect("the bundle reads");
    bundle.prefilter.take()?;
    Some(bundle.to_bytes().expect("the bundle writes"))
}

/// The summary's totals.
fn totals(summary: &Summary) -> String {
    format!(
        "lines {}, events {}, alerts {}, bad lines {}, late {}, untimed {}, oversized {}",
        summary.lines, summary.events, summary.alerts, summary.bad_lines, summary.late, summary.untimed, summary.oversized
    )
}

/// The summary's totals, and each rule's counts.
fn counts(summary: &Summary) -> String {
    let rules: Vec<String> = summary.rules.iter().map(|rule| format!("{}: {} matches, {} alerts", rule.id, rule.stats.matches, rule.stats.alerts)).collect();
    format!("{}; {}", totals(summary), rules.join("; "))
}

/// `--max-partials` (`Options::max_partials`) bounds what a sequence rule keeps: with a
/// cap of 1, the sequence case's partials for different hosts evict each other, and
/// the summary counts and reports it.
#[test]
fn the_cap_on_partial_matches_applies_and_is_counted() {
    let path = repo_root().join("tests/data/replay/sequence.eql");
    let text = std::fs::read_to_string(&path).unwrap();
    let events = std::fs::read_to_string(path.with_extension("ndjson")).unwrap();
    let bundle = build(&path, &text);
    let free = replay(&bundle, &events);
    let capped = replay_with(&bundle, &events, Options { max_partials: 1, ..Options::default() });
    assert_eq!(free.summary.rules[0].stats.sequence.evicted, 0);
    assert!(capped.summary.rules[0].stats.sequence.evicted > 0, "{:?}", capped.summary.rules[0].stats.sequence);
    assert!(capped.summary.alerts <= free.summary.alerts);
    assert!(capped.summary.render().contains("evicted at the cap"), "the summary says so:\n{}", capped.summary.render());
    // Its totals line too, whatever the rule's place in the table.
    let evicted = capped.summary.rules[0].stats.sequence.evicted;
    assert_eq!(capped.summary.losses().evicted, evicted);
    assert!(capped.summary.render().contains(&format!("dropped at their bounds: {evicted} partial matches")), "{}", capped.summary.render());
    assert_eq!(free.summary.losses(), Default::default());
}

/// A full pipe's drops are counted as they happen, not only at the end: `kestrel run`'s
/// stats line and metrics read them from `Replay::losses` while the run goes.
#[test]
fn pipe_drops_are_counted_while_the_run_goes() {
    let path = repo_root().join("tests/data/replay/pipes.eql");
    let text = std::fs::read_to_string(&path).unwrap();
    let events = std::fs::read_to_string(path.with_extension("ndjson")).unwrap();
    let program = Arc::new(Program::load(&build(&path, &text)).expect("the bundle loads"));
    let mut alerts = Vec::new();
    // In input order matches reach the pipes as they are read, not at the end of the window.
    let options = Options { max_buffered: 1, order: kestrel_rt::replay::Order::Input, ..Options::default() };
    let mut replay = Replay::new(program, options, &mut alerts).expect("the engine starts");
    replay.read_all("events.ndjson", events.as_bytes(), &mut |_| {}).unwrap();
    replay.flush().unwrap();
    let running = replay.losses().pipe_dropped;
    assert!(running > 0, "the sort, one result at most, dropped some before the end");
    let summary = replay.finish().unwrap();
    assert!(summary.losses().pipe_dropped >= running, "{:?}", summary.losses());
}

/// The engine writes events into guest memory a batch at a time, candidates only: a
/// batch ends when it is full or when the next event's strings do not fit in the data
/// region, and an event too large for the region alone is counted and passed over.
/// Over candidates and others in no order, strings of every size among them, every
/// event is run exactly once and every match found.
#[test]
fn full_batches_and_data_regions_lose_no_event() {
    use kestrel_rt::engine::{Engine, Event};
    let bundle = build(&repo_root().join("batches.eql"), "// eqlc: schema=linux\nprocess where process.name : \"x*\"\n");
    let program = Arc::new(Program::load(&bundle).expect("the bundle loads"));
    let categories = &program.bundle.functions.categories;
    let process = categories.iter().position(|name| name == "process").expect("a process rule") as u32;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut events = Vec::new();
    let (mut expected, mut oversized) = (0, 0);
    for idx in 0..6_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let candidate = !state.is_multiple_of(3);
        // Mostly short names; now and then 300 KB (three fill the 1 MiB data region)
        // and once 3 MB, too large alone.
        let len = match idx {
            1_234 => 3 << 20,
            _ if state % 150 == 1 => 300 << 10,
            _ => (state >> 8) as usize % 12,
        };
        let first = if state >> 20 & 1 == 1 { 'x' } else { 'y' };
        match (candidate && first == 'x', len >= 3 << 20) {
            (true, true) => oversized += 1,
            (true, false) => expected += 1,
            _ => {}
        }
        events.push(Event {
            timestamp: idx,
            categories: candidate.then_some(process).into_iter().collect(),
            fields: vec![Some(kestrel_bundle::semantics::Value::Str(format!("{first}{}", "a".repeat(len))))],
            raw: Default::default(),
        });
    }
    assert!(oversized == 1 && expected > 500, "the events are as meant: {oversized} oversized, {expected} matching");
    let mut engine = Engine::new(program.clone(), 1 << 20).expect("the engine starts");
    let mut alerts = Vec::new();
    engine.run(&events, 0, &mut alerts);
    engine.finish(&mut alerts);
    assert_eq!(engine.stats.events, events.len() as u64);
    assert_eq!(engine.stats.oversized, oversized);
    assert_eq!(alerts.len(), expected);
}
