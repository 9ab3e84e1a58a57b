//! Hand-written predicates (docs/abi.md, "Hand-written predicates"), through the real
//! chain: rule packages in `tests/data/custom/` → eqlc (WAT assembled, ABI checked) →
//! bundle bytes → runtime.
//!
//! - `equivalence/`: one detection in EQL, in Lua and in Wasm gives the same verdicts on
//!   random events (property test).
//! - `hostile/*/`: a predicate that loops, allocates without end, reaches for `os` or
//!   reads out of bounds is stopped on its first call, disabled, counted and reported
//!   with the reason in its `expect.txt`, and a plain rule beside it keeps alerting.

use kestrel_rt::program::Program;
use kestrel_rt::replay::{Options, Replay, Summary};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tests::{FileOptions, build_bundle, repo_root};

fn data() -> PathBuf {
    repo_root().join("tests/data/custom")
}

fn program(paths: &[PathBuf]) -> Arc<Program> {
    let bytes = build_bundle(paths, &FileOptions::parse("// eqlc: schema=linux")).unwrap_or_else(|diags| panic!("the rules do not build:\n{diags}"));
    Arc::new(Program::load(&bytes).unwrap_or_else(|error| panic!("the runtime refuses the bundle: {error}")))
}

/// Replays `events` (NDJSON); returns the alerts (as JSON values) and the summary.
fn replay(program: &Arc<Program>, events: &str) -> (Vec<serde_json::Value>, Summary) {
    let mut alerts = Vec::new();
    let mut replay = Replay::new(program.clone(), Options::default(), &mut alerts).expect("the engine starts");
    replay.read_all("events.ndjson", events.as_bytes(), &mut |bad| panic!("bad line: {bad}")).unwrap();
    let summary = replay.finish().unwrap();
    let alerts = String::from_utf8(alerts).unwrap().lines().map(|line| serde_json::from_str(line).expect("alerts are JSON")).collect();
    (alerts, summary)
}

/// The `process.pid` of each alerted event, per rule id.
fn verdicts(alerts: &[serde_json::Value], rule: &str) -> BTreeSet<i64> {
    alerts
        .iter()
        .filter(|alert| alert["rule"]["id"] == rule)
        .map(|alert| alert["events"][0]["process"]["pid"].as_i64().expect("the event has its pid"))
        .collect()
}

fn equivalence_programs() -> &'static [(String, Arc<Program>); 3] {
    static PROGRAMS: OnceLock<[(String, Arc<Program>); 3]> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let dir = data().join("equivalence");
        [("equivalence-eql", dir.join("eql.toml")), ("equivalence-lua", dir.join("lua")), ("equivalence-wasm", dir.join("wasm"))]
            .map(|(id, path)| (id.to_string(), program(&[path])))
    })
}

/// One process event; every field may be missing, names and command lines are drawn
/// from near misses (case, prefixes one character off, other shells).
fn event() -> impl Strategy<Value = serde_json::Value> {
    let name = prop::option::of(prop::sample::select(vec!["bash", "Bash", "BASH", "bash ", "sh", "dash", "", "bäsh"]));
    let count = prop::option::of(-1i64..6);
    let line = prop::option::of(prop::sample::select(vec![
        "bash -c 'id'",
        "bash -c",
        "bash -",
        "bash -cx 'id'",
        "Bash -c 'id'",
        " bash -c 'id'",
        "bash",
        "",
        "bash -c é",
        "sh -c 'id'",
    ]));
    (name, count, line).prop_map(|(name, count, line)| {
        let mut process = serde_json::Map::new();
        if let Some(name) = name {
            process.insert("name".into(), name.into());
        }
        if let Some(count) = count {
            process.insert("args_count".into(), count.into());
        }
        if let Some(line) = line {
            process.insert("command_line".into(), line.into());
        }
        serde_json::json!({"event": {"category": ["process"], "type": ["start"]}, "process": process})
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The EQL rule, the Lua predicate and the Wasm predicate alert on the same events.
    #[test]
    fn eql_lua_and_wasm_agree(events in prop::collection::vec(event(), 1..40)) {
        let lines: String = events
            .iter()
            .enumerate()
            .map(|(idx, event)| {
                let mut event = event.clone();
                event["@timestamp"] = format!("2026-11-29T09:00:{:02}.{:03}Z", idx / 1000, idx % 1000).into();
                event["process"]["pid"] = (idx as i64).into();
                format!("{event}\n")
            })
            .collect();
        let mut answers = Vec::new();
        for (id, program) in equivalence_programs() {
            let (alerts, summary) = replay(program, &lines);
            prop_assert!(summary.custom.iter().all(|predicate| predicate.disabled.is_none()), "{id}: {:?}", summary.custom);
            answers.push((id.clone(), verdicts(&alerts, id)));
        }
        prop_assert_eq!(&answers[0].1, &answers[1].1, "EQL and Lua differ on\n{}", lines);
        prop_assert_eq!(&answers[0].1, &answers[2].1, "EQL and Wasm differ on\n{}", lines);
    }
}

/// The detection matches at all: the property above is not about empty sets.
#[test]
fn the_equivalence_detection_matches_its_positive_case() {
    let line = r#"{"@timestamp":"2026-11-29T09:00:00Z","event":{"category":["process"]},"process":{"pid":7,"name":"bash","args_count":3,"command_line":"bash -c 'id'"}}"#;
    for (id, program) in equivalence_programs() {
        let (alerts, _) = replay(program, &format!("{line}\n"));
        assert_eq!(verdicts(&alerts, id), BTreeSet::from([7]), "{id}");
    }
}

#[test]
fn hostile_predicates_are_stopped_counted_and_reported() {
    let dir = data().join("hostile");
    let events = std::fs::read_to_string(dir.join("events.ndjson")).unwrap();
    let bash_events: BTreeSet<i64> = events
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["process"]["name"] == "bash")
        .map(|event| event["process"]["pid"].as_i64().unwrap())
        .collect();
    let marker = Path::new("/tmp/kestrel-hostile-marker");
    let _ = std::fs::remove_file(marker);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).filter(|path| path.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 6, "the hostile cases are in {}", dir.display());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expected = std::fs::read_to_string(case.join("expect.txt")).unwrap().trim().to_string();
        let program = program(&[dir.join("benign.toml"), case.clone()]);
        let (alerts, summary) = replay(&program, &events);
        assert_eq!(verdicts(&alerts, "hostile-benign"), bash_events, "{name}: the plain rule alerts on every bash event");
        assert!(verdicts(&alerts, &format!("hostile-{name}")).is_empty(), "{name}: a stopped predicate matches nothing");
        let [predicate] = summary.custom.as_slice() else { panic!("{name}: one predicate, got {:?}", summary.custom) };
        let reason = predicate.disabled.as_deref().unwrap_or_else(|| panic!("{name}: not disabled: {predicate:?}"));
        assert!(reason.contains(&expected), "{name}: the reason {reason:?} does not say {expected:?}");
        assert_eq!(predicate.calls, 1, "{name}: stopped on its first call");
        assert_eq!(predicate.calls + predicate.skipped, events.lines().count() as u64, "{name}: every later call is skipped (null), counted");
        assert!(summary.render().contains("DISABLED"), "{name}: the summary reports it:\n{}", summary.render());
    }
    assert!(!marker.exists(), "a sandboxed predicate ran a command");
}

/// A hand-written predicate in a sequence step: the sequence alerts, and its alert
/// carries the captures of the step's event.
#[test]
fn predicates_work_in_sequence_steps() {
    let package = repo_root().join("rules/lua_example_rule");
    let program = program(&[data().join("sequence.toml"), package.clone()]);
    let positive = std::fs::read_to_string(package.join("fixtures/positive.ndjson")).unwrap();
    let payload = positive.lines().next().unwrap();
    let event: serde_json::Value = serde_json::from_str(payload).unwrap();
    let parent = event["process"]["parent"]["entity_id"].clone();
    let curl = serde_json::json!({
        "@timestamp": "2026-11-29T05:59:59Z",
        "event": {"category": ["process"], "type": ["start"], "action": "exec"},
        "process": {"pid": 4999, "name": "curl", "args": ["curl", "-sO", "http://example.com/x"], "parent": {"entity_id": parent}}
    });
    let (alerts, _) = replay(&program, &format!("{curl}\n{payload}\n"));
    let sequence: Vec<&serde_json::Value> = alerts.iter().filter(|alert| alert["rule"]["id"] == "custom-sequence").collect();
    assert_eq!(sequence.len(), 1, "{alerts:#?}");
    assert_eq!(sequence[0]["events"].as_array().map(Vec::len), Some(2));
    let captured = &sequence[0]["kestrel"]["captures"]["high_entropy_argument"];
    assert_eq!(captured["length"], 128, "{captured}");
    assert!(captured["entropy"].as_f64().is_some_and(|entropy| entropy > 4.8), "{captured}");
}
