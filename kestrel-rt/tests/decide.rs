//! The exec hook's question against what then happens: before each event of a random
//! stream, `Replay::decide` says which acting rules the event would match; then the
//! event is pushed, and the rules whose alerts end at it must be exactly those. Event
//! queries and sequences (by key, maxspan, three steps, a missing step between two, a
//! leading missing step),
//! random names, keys and time gaps around the maxspan. No root needed: this is the
//! decision logic the live hook uses, over the same engine.

use kestrel_rt::replay::{Options, Order, Replay};
use proptest::prelude::*;
use std::sync::Arc;

/// Acting rules, each decidable at the exec hook (process steps reading hook fields).
const RULES: &str = r#"
[rule]
name = "event"
rule_id = "event"
action = "block"
query = 'process where event.action == "exec" and process.name == "evil"'
"#;

const SEQUENCES: [&str; 4] = [
    r#"
[rule]
name = "two"
rule_id = "two"
action = "block"
query = '''
sequence by process.parent.pid with maxspan=10s
  [process where event.action == "exec" and process.name == "curl"]
  [process where event.action == "exec" and process.name in ("sh", "evil")]
'''
"#,
    r#"
[rule]
name = "three"
rule_id = "three"
action = "kill"
query = '''
sequence by process.parent.pid with maxspan=5s
  [process where event.action == "exec" and process.name == "curl"]
  [process where event.action == "exec" and process.name == "chmod"]
  [process where event.action == "exec" and process.name == "sh"]
'''
"#,
    r#"
[rule]
name = "gap"
rule_id = "gap"
action = "block"
query = '''
sequence by process.parent.pid with maxspan=10s
  [process where event.action == "exec" and process.name == "chmod"]
  ![process where event.action == "exec" and process.name == "true"]
  [process where event.action == "exec" and process.name == "evil"]
'''
"#,
    r#"
[rule]
name = "lead"
rule_id = "lead"
action = "block"
query = '''
sequence by process.parent.pid with maxspan=5s
  ![process where event.action == "exec" and process.name == "ls"]
  [process where event.action == "exec" and process.name == "curl"]
  [process where event.action == "exec" and process.name == "true"]
'''
"#,
];

/// Built once: the tests of this file run in parallel threads of one process, and each
/// build writes its rule files to a scratch directory it removes afterwards.
fn program() -> Arc<kestrel_rt::program::Program> {
    static PROGRAM: std::sync::OnceLock<Arc<kestrel_rt::program::Program>> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(build).clone()
}

fn build() -> Arc<kestrel_rt::program::Program> {
    let dir = std::env::temp_dir().join(format!("kestrel-decide-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for (index, text) in std::iter::once(RULES).chain(SEQUENCES).enumerate() {
        let path = dir.join(format!("rule{index}.toml"));
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let schema = kestrel_bundle::schema::Schema::builtin("linux").unwrap();
    let options = eqlc::check::Options::elasticsearch(&schema);
    let mut sources = eqlc::source::SourceMap::new();
    let bytes = eqlc::driver::build_paths(&paths, &options, &mut sources).unwrap_or_else(|diags| panic!("the rules do not build: {diags:?}"));
    let _ = std::fs::remove_dir_all(&dir);
    let program = kestrel_rt::program::Program::load(&bytes).unwrap();
    assert!(program.bundle.actions.iter().all(|action| action.at_exec), "every test rule is decided at the exec hook");
    Arc::new(program)
}

const NAMES: [&str; 6] = ["curl", "chmod", "sh", "evil", "true", "ls"];

/// An exec event: name, parent pid (the join key), and time in ms.
fn line(name: &str, parent: u32, millis: i64, sequence: usize) -> String {
    let seconds = millis / 1000;
    let (minutes, seconds) = (seconds / 60, seconds % 60);
    format!(
        r#"{{"@timestamp":"2026-11-29T10:{minutes:02}:{seconds:02}.{:03}Z","event":{{"kind":"event","category":["process"],"type":["start"],"action":"exec","sequence":{sequence}}},"process":{{"pid":{},"name":"{name}","parent":{{"pid":{parent}}}}}}}"#,
        millis % 1000,
        1000 + sequence
    )
}

fn stream() -> impl Strategy<Value = Vec<(usize, u32, i64)>> {
    // Gaps of 0 to 7 s: around both maxspans (5 s, 10 s).
    prop::collection::vec((0..NAMES.len(), 1u32..4, 0i64..7000), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_decision_names_exactly_the_rules_the_event_then_completes(events in stream()) {
        let program = program();
        let mut out: Vec<u8> = Vec::new();
        let options = Options { order: Order::Input, ..Options::default() };
        let mut replay = Replay::new(program.clone(), options, &mut out).unwrap();
        replay.keep_acted();
        let mut millis = 0;
        for (index, (name, parent, gap)) in events.iter().enumerate() {
            millis += gap;
            let text = line(NAMES[*name], *parent, millis, index);
            let mut decided = replay.decide(&text).unwrap();
            decided.sort_unstable();
            replay.push_line("stream", &text, &mut |bad| panic!("bad line: {bad}")).unwrap();
            replay.flush().unwrap();
            let mut completed: Vec<usize> = replay
                .take_acted()
                .into_iter()
                .filter(|acted| acted.events.last().is_some_and(|last| **last == *text))
                .map(|acted| acted.rule)
                .collect();
            completed.sort_unstable();
            completed.dedup();
            let ids = |rules: &[usize]| rules.iter().map(|rule| program.bundle.rules[*rule].id.clone()).collect::<Vec<_>>();
            prop_assert_eq!(ids(&decided), ids(&completed), "event {}: {}", index, text);
        }
    }
}

/// The stream that shows each rule deciding, so the property above cannot pass on
/// rules that never fire.
#[test]
fn each_rule_decides_on_its_own_stream() {
    let program = program();
    let mut out: Vec<u8> = Vec::new();
    let mut replay = Replay::new(program.clone(), Options { order: Order::Input, ..Options::default() }, &mut out).unwrap();
    let steps =
        [("evil", 9, 0), ("curl", 1, 1000), ("chmod", 1, 2000), ("sh", 1, 3000), ("chmod", 2, 4000), ("true", 2, 4500), ("evil", 2, 5000), ("chmod", 3, 6000)];
    let mut decided_ids = Vec::new();
    for (index, (name, parent, millis)) in steps.iter().enumerate() {
        let text = line(name, *parent, *millis, index);
        let decided = replay.decide(&text).unwrap();
        decided_ids.push(decided.iter().map(|rule| program.bundle.rules[*rule].id.clone()).collect::<Vec<_>>());
        replay.push_line("stream", &text, &mut |bad| panic!("bad line: {bad}")).unwrap();
        replay.flush().unwrap();
    }
    let expected: [&[&str]; 8] = [&["event"], &[], &[], &["two", "three"], &[], &[], &["event"], &[]];
    for (index, expected) in expected.iter().enumerate() {
        assert_eq!(decided_ids[index], *expected, "step {index}");
    }
    // `evil` at 5 s under parent 2: `gap` does not decide (a `true` came between), and
    // without it, it would: the same stream without the `true`.
    let mut out: Vec<u8> = Vec::new();
    let mut replay = Replay::new(program.clone(), Options { order: Order::Input, ..Options::default() }, &mut out).unwrap();
    for (index, (name, parent, millis)) in [("chmod", 2, 4000), ("evil", 2, 5000)].iter().enumerate() {
        let text = line(name, *parent, *millis, index);
        let decided: Vec<String> = replay.decide(&text).unwrap().iter().map(|rule| program.bundle.rules[*rule].id.clone()).collect();
        if index == 1 {
            assert_eq!(decided, ["event", "gap"]);
        }
        replay.push_line("stream", &text, &mut |bad| panic!("bad line: {bad}")).unwrap();
        replay.flush().unwrap();
    }
    // `lead`: a `true` after a `curl` decides it, unless an `ls` came within the maxspan before the `curl`.
    let mut out: Vec<u8> = Vec::new();
    let mut replay = Replay::new(program.clone(), Options { order: Order::Input, ..Options::default() }, &mut out).unwrap();
    let steps = [("ls", 5, 0), ("curl", 5, 1000), ("true", 5, 2000), ("curl", 6, 3000), ("true", 6, 4000)];
    let mut decided_ids = Vec::new();
    for (index, (name, parent, millis)) in steps.iter().enumerate() {
        let text = line(name, *parent, *millis, index);
        decided_ids.push(replay.decide(&text).unwrap().iter().map(|rule| program.bundle.rules[*rule].id.clone()).collect::<Vec<_>>());
        replay.push_line("stream", &text, &mut |bad| panic!("bad line: {bad}")).unwrap();
        replay.flush().unwrap();
    }
    assert_eq!(decided_ids[2], Vec::<String>::new(), "an `ls` 1 s before the `curl` rules it out");
    assert_eq!(decided_ids[4], ["lead"]);
}
