//! The reference engines' suites (../shared/conformance, test input only), run through
//! the real chain: check → `driver::build` (bundle bytes, as `eqlc build` writes them)
//! → `Program::load` → `Replay` (as `kestrel replay` runs it) → alert NDJSON, whose
//! events' ids are compared, in order, with the suite's expectations.
//!
//! All the queries of one suite and case mode go into one bundle, one rule each, as a
//! user's rule set would. Queries `eqlc build` refuses with E0701 (not supported yet)
//! are counted apart; any other query that is not run is
//! listed, with its reason, in tests/data/reference/skips.toml, and a known gap (a
//! query Kestrel answers wrongly today) in its `[gap]` table, which must fail: one that
//! passes has to leave the list.

use eqlc::check::Options;
use eqlc::dialect::{Dialect, EndgameCase};
use eqlc::driver::{self, Checked};
use eqlc::functions::Declaration;
use eqlc::rules::{self, FileKind};
use eqlc::source::SourceMap;
use kestrel_bundle::schema::Schema;
use kestrel_bundle::semantics::Value;
use kestrel_rt::functions::DeclaredFn;
use kestrel_rt::program::Program;
use kestrel_rt::replay::{Options as ReplayOptions, Order, Replay};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tests::{es_toml_nulls, repo_root, shared_dir};

/// One query of a suite, ready to run.
struct Case {
    /// `python:<index>` or `es:<name>`.
    key: String,
    query: String,
    /// Acceptable answers (usually one): event ids in output order.
    expected: Vec<Vec<i64>>,
    /// The suite's result limit (`size`), if any.
    size: Option<usize>,
    /// A sample's `max_samples_per_key`, if the suite sets it.
    max_samples_per_key: Option<u32>,
    /// A `sample`: Elasticsearch returns samples ordered by key, Kestrel streams them
    /// as they complete; the harness orders them by key before comparing.
    sample: bool,
    /// The suite's `join_keys`, flattened: checked against the join keys the alerts
    /// of sequences and samples carry.
    join_keys: Option<Vec<String>>,
}

/// How one group of cases runs.
struct Run<'a> {
    schema: &'a Schema,
    dialect: Dialect,
    case: EndgameCase,
    declarations: &'a [Declaration],
    declared: Vec<DeclaredFn>,
    order: Order,
    /// The field naming an event in `expected`.
    id_field: &'a str,
    /// The schema's file, for the command-line cross-check.
    schema_file: std::path::PathBuf,
}

/// What one group produced: per case key, the ids it returned, or why it could not run.
type Outcomes = HashMap<String, Result<Vec<i64>, String>>;

fn load_schema(name: &str) -> Schema {
    let path = repo_root().join("tests/data/reference").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    Schema::from_toml(name.trim_end_matches(".toml"), &text).unwrap_or_else(|error| panic!("{}: {error:?}", path.display()))
}

fn skips() -> HashMap<String, String> {
    listed("skip")
}

fn gaps() -> HashMap<String, String> {
    listed("gap")
}

/// A table of tests/data/reference/skips.toml: query key → reason.
fn listed(table: &str) -> HashMap<String, String> {
    let path = repo_root().join("tests/data/reference/skips.toml");
    let document: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let table = document.get(table).and_then(toml::Value::as_table).cloned().unwrap_or_default();
    table.into_iter().map(|(key, reason)| (key, reason.as_str().expect("a skip reason is a string").to_string())).collect()
}

/// Whether the query is a `sample`.
fn is_sample(query: &str) -> bool {
    query.trim_start().split(|ch: char| !ch.is_ascii_alphabetic()).next() == Some("sample")
}

/// Compiles the cases into one bundle and replays `events` (NDJSON) through it.
fn run_group(cases: &[&Case], events: &str, run: &Run) -> Outcomes {
    let mut outcomes = Outcomes::new();
    let options = Options { schema: run.schema, dialect: run.dialect, endgame_case: run.case, declarations: run.declarations };
    let mut sources = SourceMap::new();
    let mut checked: Vec<(usize, Checked)> = Vec::new();
    for (idx, case) in cases.iter().enumerate() {
        let (rule_sources, _) = rules::split(&format!("{}.eql", case.key), case.query.clone(), FileKind::Eql, &mut sources);
        let mut rule = driver::check_rule(&rule_sources[0], &sources, &options);
        let errors: Vec<String> = rule.diags.iter().filter(|diag| diag.is_error()).map(|diag| format!("{}: {}", diag.code, diag.message)).collect();
        if !errors.is_empty() {
            outcomes.insert(case.key.clone(), Err(format!("does not check: {errors:?}")));
            continue;
        }
        rule.meta.rule_id = Some(idx.to_string());
        rule.meta.max_samples_per_key = case.max_samples_per_key;
        // Alone first, so that a query the back end refuses does not take the others down.
        let (bytes, diags) = driver::build(std::slice::from_ref(&rule), run.schema, &[]);
        if bytes.is_none() {
            let diags: Vec<String> = diags.iter().map(|diag| format!("{}: {}", diag.code, diag.message)).collect();
            outcomes.insert(case.key.clone(), Err(format!("does not build: {diags:?}")));
            continue;
        }
        checked.push((idx, rule));
    }
    if checked.is_empty() {
        return outcomes;
    }
    let rules: Vec<Checked> = checked.into_iter().map(|(_, rule)| rule).collect();
    let (bytes, diags) = driver::build(&rules, run.schema, &[]);
    let bytes = bytes.unwrap_or_else(|| panic!("the group does not build: {diags:?}"));
    let program = Program::load(&bytes).unwrap_or_else(|error| panic!("eqlc wrote a bundle the runtime refuses: {error}")).with_declared(run.declared.clone());
    let mut alerts = Vec::new();
    let options = ReplayOptions { order: run.order, ..ReplayOptions::default() };
    let mut replay = Replay::new(Arc::new(program), options, &mut alerts).expect("the engine starts");
    let mut bad = Vec::new();
    replay.read_all("events", events.as_bytes(), &mut |line| bad.push(line.to_string())).unwrap();
    let summary = replay.finish().unwrap();
    assert!(bad.is_empty(), "the suite's events are all valid: {bad:?}");
    for rule in &summary.rules {
        assert_eq!(rule.stats.traps, 0, "rule {} trapped", rule.id);
    }
    let mut returned = returned_ids(&String::from_utf8(alerts).unwrap(), run.id_field);
    // The same through the real command lines, for the queries that do not call a
    // function the test declares host-side (the `kestrel` binary has none of those).
    let calls_declared = |query: &str| {
        let query = query.to_lowercase();
        run.declarations.iter().any(|declaration| query.contains(&format!("{}(", declaration.name.to_lowercase())))
    };
    let queries: Vec<(usize, &Case)> = rules
        .iter()
        .map(|rule| rule.meta.rule_id.as_ref().unwrap().parse::<usize>().unwrap())
        .map(|idx| (idx, cases[idx]))
        .filter(|(_, case)| !calls_declared(&case.query))
        .collect();
    if !queries.is_empty()
        && let Some(mut by_cli) = through_the_command_line(&queries, events, run)
    {
        let mut expected: Returned = queries.iter().filter_map(|(idx, _)| returned.get(idx).map(|found| (*idx, found.clone()))).collect();
        by_cli.retain(|_, found| !found.is_empty());
        expected.retain(|_, found| !found.is_empty());
        assert_eq!(by_cli, expected, "`eqlc build` + `kestrel replay` answer differently from the library chain");
    }
    for rule in &rules {
        let idx: usize = rule.meta.rule_id.as_ref().unwrap().parse().unwrap();
        let mut results = returned.remove(&idx).unwrap_or_default();
        if cases[idx].sample {
            results.sort_by(|(left, _), (right, _)| key_order(left, right));
        }
        if let Some(size) = cases[idx].size {
            results.truncate(size);
        }
        let keys: Vec<String> = results.iter().flat_map(|(key, _)| key.as_array().cloned().unwrap_or_default()).map(|value| key_text(&value)).collect();
        let ids = results.into_iter().flat_map(|(_, ids)| ids).collect();
        let outcome = match &cases[idx].join_keys {
            Some(expected) if *expected != keys => Err(format!("join keys {keys:?}, expected {expected:?}")),
            _ => Ok(ids),
        };
        outcomes.insert(cases[idx].key.clone(), outcome);
    }
    outcomes
}

/// Per rule: each alert's join key (null but for samples) and event ids.
type Returned = HashMap<usize, Vec<(serde_json::Value, Vec<i64>)>>;

/// Per rule (the rule id is the case's index) of alert NDJSON: each alert's join key
/// (samples) and event ids.
fn returned_ids(alerts: &str, id_field: &str) -> Returned {
    let mut returned = Returned::new();
    for line in alerts.lines() {
        let alert: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("alert `{line}` is not JSON: {error}"));
        let rule: usize = alert["rule"]["id"].as_str().unwrap().parse().unwrap();
        let ids = alert["events"].as_array().unwrap().iter().map(|event| event_id(event, id_field)).collect();
        returned.entry(rule).or_default().push((alert["kestrel"]["join_key"].clone(), ids));
    }
    returned
}

/// A join-key value as the suites write it.
fn key_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Elasticsearch's order of sample keys (a composite aggregation): value by value,
/// null first, then booleans, numbers, strings.
fn key_order(left: &serde_json::Value, right: &serde_json::Value) -> std::cmp::Ordering {
    use serde_json::Value as J;
    let rank = |value: &J| match value {
        J::Null => 0,
        J::Bool(_) => 1,
        J::Number(_) => 2,
        _ => 3,
    };
    let empty = Vec::new();
    let (left, right) = (left.as_array().unwrap_or(&empty), right.as_array().unwrap_or(&empty));
    for (a, b) in left.iter().zip(right) {
        let order = rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
            (J::Bool(a), J::Bool(b)) => a.cmp(b),
            (J::Number(a), J::Number(b)) => a.as_f64().unwrap_or(0.0).total_cmp(&b.as_f64().unwrap_or(0.0)),
            (J::String(a), J::String(b)) => a.cmp(b),
            _ => std::cmp::Ordering::Equal,
        });
        if order.is_ne() {
            return order;
        }
    }
    left.len().cmp(&right.len())
}

/// The same queries through the real command lines: a JSON-lines rule file, `eqlc
/// build`, an NDJSON event file, `kestrel replay`. None (reported) without the binaries.
fn through_the_command_line(queries: &[(usize, &Case)], events: &str, run: &Run) -> Option<Returned> {
    let (Some(eqlc), Some(kestrel)) = (tests::workspace_binary("eqlc"), tests::workspace_binary("kestrel")) else {
        eprintln!(
            "SKIPPED: the command-line cross-check of the reference suites: no eqlc/kestrel binaries beside the test binary (`cargo test --workspace` builds them)"
        );
        return None;
    };
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("kestrel-reference-{}-{}", std::process::id(), RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    let rules: String = queries
        .iter()
        .map(|(idx, case)| {
            let mut rule = serde_json::json!({ "name": format!("case {idx}"), "rule_id": idx.to_string(), "query": case.query });
            if let Some(per_key) = case.max_samples_per_key {
                rule["max_samples_per_key"] = per_key.into();
            }
            format!("{rule}\n")
        })
        .collect();
    std::fs::write(dir.join("rules.jsonl"), rules).unwrap();
    std::fs::write(dir.join("events.ndjson"), events).unwrap();
    let schema = &run.schema_file;
    let dialect = match run.dialect {
        Dialect::Elasticsearch => "elasticsearch",
        Dialect::Endgame => "endgame",
    };
    let mut build = std::process::Command::new(eqlc);
    build.arg("build").arg("-q").arg("--schema").arg(schema).args(["--dialect", dialect]).arg("-o").arg(dir.join("rules.kbundle")).arg(dir.join("rules.jsonl"));
    if run.dialect == Dialect::Endgame && run.case == EndgameCase::Sensitive {
        build.arg("--case-sensitive");
    }
    let built = build.output().expect("eqlc runs");
    assert!(built.status.success(), "eqlc build fails: {}", String::from_utf8_lossy(&built.stderr));
    let order = if run.order == Order::Input { "input" } else { "timestamp" };
    let replayed = std::process::Command::new(kestrel)
        .args(["replay", "-q", "--order", order, "--bundle"])
        .arg(dir.join("rules.kbundle"))
        .arg("--alerts")
        .arg(dir.join("alerts.ndjson"))
        .arg(dir.join("events.ndjson"))
        .output()
        .expect("kestrel runs");
    assert!(replayed.status.success(), "kestrel replay fails: {}", String::from_utf8_lossy(&replayed.stderr));
    let alerts = std::fs::read_to_string(dir.join("alerts.ndjson")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("command-line cross-check: {} rules, {} alerts from `eqlc build` + `kestrel replay`", queries.len(), alerts.lines().count());
    Some(returned_ids(&alerts, run.id_field))
}

fn event_id(event: &serde_json::Value, field: &str) -> i64 {
    // A missing-event step's place: the suites' `-1`.
    if event.is_null() {
        return -1;
    }
    let value = event.get(field).or_else(|| field.split('.').try_fold(event, |value, key| value.get(key)));
    value.and_then(serde_json::Value::as_i64).unwrap_or_else(|| panic!("alert event without `{field}`: {event}"))
}

/// Checks every case against its outcome; returns the report lines of failures.
/// How a group's answers compare with the suite's.
#[derive(Default)]
struct Tally {
    failures: Vec<String>,
    /// Refused by `eqlc build` with E0701: not supported yet.
    unsupported: usize,
    /// Wrong as the `[gap]` table says.
    gaps: usize,
}

fn compare(cases: &[&Case], outcomes: &Outcomes, mode: &str, gaps: &HashMap<String, String>, tally: &mut Tally) {
    for case in cases {
        let failure = match outcomes.get(&case.key) {
            Some(Ok(ids)) if case.expected.iter().any(|expected| expected == ids) => {
                if gaps.contains_key(&case.key) {
                    tally.failures.push(format!("{} [{mode}] passes: take it out of the [gap] table of tests/data/reference/skips.toml", case.key));
                }
                continue;
            }
            Some(Err(message)) if message.starts_with("does not build") && message.contains("E0701") => {
                tally.unsupported += 1;
                continue;
            }
            Some(Ok(ids)) => format!("{} [{mode}] `{}`: expected {:?}, got {ids:?}", case.key, case.query.trim(), case.expected[0]),
            Some(Err(message)) => format!("{} [{mode}] `{}`: {message}", case.key, case.query.trim()),
            None => format!("{} [{mode}]: no outcome", case.key),
        };
        if gaps.contains_key(&case.key) {
            tally.gaps += 1;
        } else {
            tally.failures.push(failure);
        }
    }
}

fn python_functions() -> (Vec<Declaration>, Vec<DeclaredFn>) {
    let declarations = vec![Declaration::parse("echo(any)->any").unwrap(), Declaration::parse("reverse(keyword)->keyword").unwrap()];
    let echo: DeclaredFn = Arc::new(|args: &[Value]| args.first().cloned().unwrap_or(Value::Null));
    let reverse: DeclaredFn = Arc::new(|args: &[Value]| match args.first() {
        Some(Value::Str(text)) => Value::Str(text.chars().rev().collect()),
        _ => Value::Null,
    });
    (declarations, vec![echo, reverse])
}

fn json_array_to_ndjson(events: &[serde_json::Value]) -> String {
    events.iter().map(|event| format!("{event}\n")).collect()
}

#[test]
fn python_suite_event_queries_replay_with_the_reference_answers() {
    let Some(shared) = shared_dir("python eql suite through the replay chain") else { return };
    let dir = shared.join("conformance/eql-python");
    let events: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("test_data.json")).unwrap()).unwrap();
    let ndjson = json_array_to_ndjson(&events);
    let document: toml::Table = toml::from_str(&std::fs::read_to_string(dir.join("test_queries.toml")).unwrap()).unwrap();
    let skips = skips();
    let mut cases = Vec::new();
    let mut flags = HashMap::new();
    let mut skipped = 0;
    for (idx, table) in document["queries"].as_array().unwrap().iter().enumerate() {
        let query = table["query"].as_str().unwrap().to_string();
        let key = format!("python:{}", idx + 1);
        if skips.contains_key(&key) {
            skipped += 1;
            continue;
        }
        let expected = table["expected_event_ids"].as_array().unwrap().iter().map(|id| id.as_integer().unwrap()).collect();
        let flag = |name: &str| table.get(name).and_then(toml::Value::as_bool).unwrap_or(false);
        flags.insert(key.clone(), (flag("case_sensitive"), flag("case_insensitive")));
        cases.push(Case { key, query, expected: vec![expected], size: None, max_samples_per_key: None, sample: false, join_keys: None });
    }
    let schema = load_schema("python-eql.toml");
    let (declarations, declared) = python_functions();
    let gaps = gaps();
    let mut tally = Tally::default();
    let mut runs = 0;
    for (case, mode, wanted) in [(EndgameCase::Sensitive, "case-sensitive", 0), (EndgameCase::Insensitive, "case-insensitive", 1)] {
        let group: Vec<&Case> = cases
            .iter()
            .filter(|case| {
                let (sensitive, insensitive) = flags[&case.key];
                !(sensitive || insensitive) || (wanted == 0 && sensitive) || (wanted == 1 && insensitive)
            })
            .collect();
        let run = Run {
            schema: &schema,
            dialect: Dialect::Endgame,
            case,
            declarations: &declarations,
            declared: declared.clone(),
            order: Order::Input,
            id_field: "serial_event_id",
            schema_file: repo_root().join("tests/data/reference/python-eql.toml"),
        };
        let outcomes = run_group(&group, &ndjson, &run);
        runs += group.len();
        compare(&group, &outcomes, mode, &gaps, &mut tally);
    }
    let Tally { failures, unsupported, gaps } = tally;
    eprintln!(
        "python eql suite: {} queries ({runs} runs over both case modes): {} runs as python eql, {unsupported} not supported yet (E0701), {gaps} known gaps; {skipped} skipped (tests/data/reference/skips.toml); {} failures",
        cases.len(),
        runs - unsupported - gaps - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} of {runs} runs differ from python eql:\n{}", failures.len(), failures.join("\n"));
}

/// The Elasticsearch QA specs, each with the index it runs against (see
/// ../shared/conformance/elasticsearch/README.md).
#[test]
fn elasticsearch_suite_event_queries_replay_with_the_reference_answers() {
    let Some(shared) = shared_dir("Elasticsearch QA suites through the replay chain") else { return };
    let dir = shared.join("conformance/elasticsearch");
    let endgame: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(shared.join("conformance/eql-python/test_data.json")).unwrap()).unwrap();
    let skips = skips();
    let gaps = gaps();
    let millis = load_schema("es-millis.toml");
    let nanos = load_schema("es-nanos.toml");
    let mut tally = Tally::default();
    let (mut total, mut skipped) = (0, 0);
    for (spec, data, id_field) in [
        ("test_queries.toml", "endgame", "serial_event_id"),
        ("additional_test_queries.toml", "endgame", "serial_event_id"),
        ("test_queries_date.toml", "endgame", "serial_event_id"),
        ("test_queries_date_nanos.toml", "endgame-nanos", "serial_event_id"),
        ("test_extra.toml", "extra.data", "sequence"),
        ("test_missing_events.toml", "missing-events.data", "sequence"),
        ("test_sample.toml", "sample", "id"),
        ("test_sample_multi.toml", "sample-multi.data", "id"),
    ] {
        let cases: Vec<Case> = es_cases(&dir.join(spec));
        let runnable: Vec<&Case> = cases
            .iter()
            .filter(|case| {
                if skips.contains_key(&case.key) {
                    skipped += 1;
                    false
                } else {
                    true
                }
            })
            .collect();
        if runnable.is_empty() {
            continue;
        }
        total += runnable.len();
        let reference = repo_root().join("tests/data/reference");
        let (events, schema, schema_file) = match data {
            "endgame" => (es_endgame_events(&endgame, false), millis.clone(), reference.join("es-millis.toml")),
            "endgame-nanos" => (es_endgame_events(&endgame, true), nanos.clone(), reference.join("es-nanos.toml")),
            // `sample1,sample2,sample3`: three indices searched together.
            "sample" => {
                let files: Vec<PathBuf> = ["sample1", "sample2", "sample3"].iter().map(|file| dir.join(format!("data/{file}.data"))).collect();
                let events: String = files.iter().map(|file| es_data_events(file, id_field)).collect();
                let (schema, file) = es_index_schema("sample", &files, &events);
                (events, schema, file)
            }
            file => {
                let path = dir.join("data").join(file);
                let events = es_data_events(&path, id_field);
                let (schema, file) = es_index_schema(file.trim_end_matches(".data"), &[path], &events);
                (events, schema, file)
            }
        };
        let run = Run {
            schema: &schema,
            dialect: Dialect::Elasticsearch,
            case: EndgameCase::Insensitive,
            declarations: &[],
            declared: Vec::new(),
            order: Order::Timestamp,
            id_field,
            schema_file,
        };
        let outcomes = run_group(&runnable, &events, &run);
        compare(&runnable, &outcomes, spec, &gaps, &mut tally);
    }
    let Tally { failures, unsupported, gaps } = tally;
    eprintln!(
        "Elasticsearch QA suites: {total} queries: {} as Elasticsearch, {unsupported} not supported yet (E0701), {gaps} known gaps; {skipped} skipped (tests/data/reference/skips.toml); {} failures",
        total - unsupported - gaps - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} of {total} queries differ from Elasticsearch:\n{}", failures.len(), failures.join("\n"));
}

fn es_cases(path: &Path) -> Vec<Case> {
    let text = es_toml_nulls(&std::fs::read_to_string(path).unwrap());
    let document: toml::Table = toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut cases = Vec::new();
    for value in document.values() {
        let tables: Vec<&toml::Table> = match value {
            toml::Value::Array(items) => items.iter().filter_map(toml::Value::as_table).collect(),
            toml::Value::Table(table) => vec![table],
            _ => Vec::new(),
        };
        for table in tables {
            let Some(query) = table.get("query").and_then(toml::Value::as_str) else { continue };
            let name = table.get("name").and_then(toml::Value::as_str).unwrap_or("?");
            let ids = table.get("expected_event_ids").and_then(toml::Value::as_array).cloned().unwrap_or_default();
            let flat = |items: &[toml::Value]| items.iter().filter_map(toml::Value::as_integer).collect::<Vec<i64>>();
            let expected = if ids.iter().all(toml::Value::is_array) && !ids.is_empty() {
                ids.iter().map(|alternative| flat(alternative.as_array().unwrap())).collect()
            } else {
                vec![flat(&ids)]
            };
            let size = table.get("size").and_then(toml::Value::as_integer).map(|size| size as usize);
            let max_samples_per_key = table.get("max_samples_per_key").and_then(toml::Value::as_integer).map(|count| count as u32);
            let join_keys = table
                .get("join_keys")
                .and_then(toml::Value::as_array)
                // The null pre-pass writes a bare `null` as "\0null": the key `null`.
                .map(|keys| keys.iter().map(|key| key.as_str().map_or_else(|| key.to_string(), |text| text.trim_start_matches('\0').to_string())).collect());
            cases.push(Case { key: format!("es:{name}"), query: query.to_string(), expected, size, max_samples_per_key, sample: is_sample(query), join_keys });
        }
    }
    cases
}

/// The endgame events as the ES loader indexes them: `@timestamp` = FILETIME ticks
/// / 10000 − 11644473600000 (epoch milliseconds), or the ticks read as nanoseconds
/// (`nanos`, the date_nanos index), in (`@timestamp`, `serial_event_id`)
/// order (the replay keeps input order among equal timestamps).
fn es_endgame_events(events: &[serde_json::Value], nanos: bool) -> String {
    let mut events: Vec<serde_json::Value> = events.to_vec();
    for event in &mut events {
        let ticks = event["timestamp"].as_i64().unwrap();
        event["@timestamp"] = serde_json::Value::from(if nanos { ticks } else { ticks / 10_000 - 11_644_473_600_000 });
    }
    events.sort_by_key(|event| event["serial_event_id"].as_i64().unwrap());
    json_array_to_ndjson(&events)
}

/// The schema of an Elasticsearch index as the QA loader makes it: the fields of its
/// mapping files with their types, and the fields its documents add (dynamic mapping),
/// typed by their values. Not dynamic: an `?optional` field the index does not have is
/// the null literal, as in Elasticsearch. Written to a file for the command-line
/// cross-check.
fn es_index_schema(name: &str, data: &[PathBuf], events: &str) -> (Schema, PathBuf) {
    use std::collections::BTreeMap;
    let mut types: BTreeMap<String, (String, bool)> = BTreeMap::new();
    // The replay reads the timestamp (untimed events run in input order).
    types.insert("@timestamp".to_string(), ("date".to_string(), false));
    fn walk(prefix: &str, properties: &serde_json::Value, types: &mut BTreeMap<String, (String, bool)>) {
        for (field, definition) in properties.as_object().into_iter().flatten() {
            let name = if prefix.is_empty() { field.clone() } else { format!("{prefix}.{field}") };
            if let Some(inner) = definition.get("properties") {
                walk(&name, inner, types);
                continue;
            }
            let ty = match definition["type"].as_str().unwrap_or("") {
                "long" | "integer" | "short" | "byte" => "long",
                "double" | "float" | "half_float" | "scaled_float" => "double",
                "ip" => "ip",
                "boolean" => "boolean",
                "version" => "version",
                // The harness indexes other dates as epoch milliseconds.
                "date" if name == "@timestamp" => "date",
                "date" => "long",
                // An alias reads its target: typed below from the documents.
                "alias" => continue,
                _ => "keyword",
            };
            types.insert(name, (ty.to_string(), false));
        }
    }
    for path in data {
        let text: String =
            std::fs::read_to_string(path.with_extension("mapping")).unwrap().lines().filter(|line| !line.trim_start().starts_with('#')).collect();
        let mapping: serde_json::Value = serde_json::from_str(&text).unwrap();
        walk("", &mapping["properties"], &mut types);
    }
    // The expectations of test_extra's sequenceWithVersionRangeCheck{,2} order 1.11.3
    // after 1.5.0 and 1.2.4-SNAPSHOT before it: the index they were made on typed
    // `version` as a version (the copied mapping, from another commit, does not).
    if name == "extra" {
        types.insert("version".to_string(), ("version".to_string(), false));
    }
    for line in events.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        for (field, value) in event.as_object().into_iter().flatten() {
            let items: Vec<&serde_json::Value> = match value {
                serde_json::Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            let inferred = items.iter().find_map(|item| match item {
                serde_json::Value::String(_) => Some("keyword"),
                serde_json::Value::Bool(_) => Some("boolean"),
                serde_json::Value::Number(number) if number.is_i64() => Some("long"),
                serde_json::Value::Number(_) => Some("double"),
                _ => None,
            });
            let entry = types.entry(field.clone()).or_insert_with(|| (inferred.unwrap_or("keyword").to_string(), false));
            entry.1 |= value.is_array();
        }
    }
    let mut toml = format!(
        "# The `{name}` index of the Elasticsearch QA suites, as tests/it/reference_suites.rs makes it.\nname = \"es-{name}\"\ncategory_field = \"event_type\"\ntimestamp_field = \"@timestamp\"\ntimestamp_unit = \"rfc3339\"\ndynamic = false\n\n[fields]\n"
    );
    for (field, (ty, array)) in &types {
        toml.push_str(&format!("{} = \"{ty}{}\"\n", serde_json::Value::from(field.as_str()), if *array { "[]" } else { "" }));
    }
    let schema = Schema::from_toml(&format!("es-{name}"), &toml).unwrap_or_else(|error| panic!("the {name} index schema: {error:?}\n{toml}"));
    let file = std::env::temp_dir().join(format!("kestrel-es-{name}-{}.toml", std::process::id()));
    std::fs::write(&file, &toml).unwrap();
    (schema, file)
}

/// Epoch milliseconds of a day written `dd-MM-yyyy` or `yyyy-MM-dd`, or of epoch
/// milliseconds written as a string.
fn day_millis(text: &str, format: &str) -> Option<i64> {
    if format == "epoch_millis" {
        return text.parse().ok();
    }
    let parts: Vec<i64> = text.split('-').map(|part| part.parse().ok()).collect::<Option<_>>()?;
    let (year, month, day) = match (format, parts.as_slice()) {
        ("dd-MM-yyyy", [day, month, year]) => (*year, *month, *day),
        ("yyyy-MM-dd", [year, month, day]) => (*year, *month, *day),
        _ => return None,
    };
    // Days from 1970-01-01 in the proleptic Gregorian calendar.
    let (year, month) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = year.div_euclid(400);
    let of_era = year - era * 400;
    let days = era * 146_097 + of_era * 365 + of_era / 4 - of_era / 100 + (153 * month + 2) / 5 + day - 1 - 719_468;
    Some(days * 86_400_000)
}

/// A `.data` file (a JSON array, possibly with `//` comment lines), indexed as the ES
/// loader does it: a JSON `null` in a field whose mapping has a `null_value` becomes
/// that value. Ordered by the id field, so that equal timestamps keep the
/// tiebreaker's order.
fn es_data_events(path: &Path, id_field: &str) -> String {
    let without_comments = |path: &Path, comment: &str| -> String {
        std::fs::read_to_string(path).unwrap().lines().filter(|line| !line.trim_start().starts_with(comment)).map(|line| format!("{line}\n")).collect()
    };
    let mut events: Vec<serde_json::Value> = serde_json::from_str(&without_comments(path, "//")).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mapping: serde_json::Value = serde_json::from_str(&without_comments(&path.with_extension("mapping"), "#")).unwrap();
    let null_values: Vec<(String, serde_json::Value)> = mapping["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(field, definition)| Some((field.clone(), definition.get("null_value")?.clone())))
        .collect();
    // Dates are indexed as instants: the same day written two ways in two indices, or
    // as epoch milliseconds in a string, is one key (the sample suite keys on them).
    // Only `@timestamp`, which the replay reads itself, stays as it is.
    let day_formats: Vec<(String, String)> = mapping["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(field, definition)| definition["type"] == "date" && *field != "@timestamp")
        .map(|(field, definition)| (field.clone(), definition.get("format").and_then(serde_json::Value::as_str).unwrap_or("epoch_millis").to_string()))
        .collect();
    for event in &mut events {
        for (field, value) in &null_values {
            if event.get(field).is_some_and(serde_json::Value::is_null) {
                event[field] = value.clone();
            }
        }
        for (field, format) in &day_formats {
            if let Some(millis) = event.get(field).and_then(serde_json::Value::as_str).and_then(|text| day_millis(text, format)) {
                event[field] = millis.into();
            }
        }
    }
    events.sort_by_key(|event| event.get(id_field).and_then(serde_json::Value::as_i64).unwrap_or(i64::MAX));
    json_array_to_ndjson(&events)
}
