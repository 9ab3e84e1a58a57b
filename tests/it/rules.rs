//! Kestrel's built-in rules (`rules/`), tested as data.
//!
//! Each rule file `rules/<tactic>/<stem>.toml` has two fixtures in `tests/data/rules/<stem>/`,
//! and each rule package `rules/<stem>/manifest.toml` (a rule with hand-written predicates)
//! has them in `rules/<stem>/fixtures/`; events in the Linux sensor's vocabulary (docs/rules.md):
//!
//! - `positive.ndjson` must raise at least one alert of that rule, and no alert of any other
//!   rule except those listed, one id a line, in an optional `also.txt` beside it;
//! - `negative.ndjson` holds near misses (wrong parent, too late for `maxspan`, a loopback
//!   destination, an excluded tool, ...) and must raise no alert at all.
//!
//! All the rules are built into one bundle, as `kestrel run` runs them, and each fixture is
//! replayed through the runtime library; the positive alerts are snapshotted in
//! `snapshots/rules/` (accept new ones with `INSTA_UPDATE=always cargo test -p tests --test it
//! rules`, then review them). The committed bundle `kestrel-rt/builtin/rules.kbundle`
//! (`kestrel_rt::builtin::BUILTIN_BUNDLE`) must be what `rules/` builds to now.

use kestrel_rt::builtin::BUILTIN_BUNDLE;
use kestrel_rt::program::Program;
use kestrel_rt::replay::{Options, Replay};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tests::{FileOptions, build_bundle, repo_root, rule_files};

const REGENERATE: &str = "cargo xtask build-rules";

/// One built-in rule file and the metadata the tests read from it.
struct BuiltinRule {
    path: PathBuf,
    stem: String,
    /// A rule package (`manifest.toml`): its fixtures are its own.
    package: bool,
    id: String,
    severity: String,
    risk_score: f64,
    description: String,
    tags: Vec<String>,
    text: String,
}

impl BuiltinRule {
    fn relative_path(&self) -> String {
        self.path.strip_prefix(repo_root()).unwrap_or(&self.path).display().to_string()
    }

    fn fixture_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) if self.package => dir.join("fixtures"),
            _ => fixtures_dir().join(&self.stem),
        }
    }

    /// The other rules the positive fixture may raise (`also.txt`).
    fn also(&self) -> BTreeSet<String> {
        let path = self.fixture_dir().join("also.txt");
        let Ok(text) = std::fs::read_to_string(&path) else { return BTreeSet::new() };
        text.lines().map(|line| line.split('#').next().unwrap_or("").trim()).filter(|line| !line.is_empty()).map(str::to_string).collect()
    }
}

fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/data/rules")
}

fn builtin_rules() -> &'static [BuiltinRule] {
    static RULES: OnceLock<Vec<BuiltinRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let paths = rule_files(&repo_root().join("rules"));
        assert!(!paths.is_empty(), "no rules in rules/");
        paths
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
                assert!(path.extension().is_some_and(|ext| ext == "toml"), "{}: built-in rules are TOML files", path.display());
                let document: toml::Table = toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                let rule = document.get("rule").and_then(toml::Value::as_table).unwrap_or_else(|| panic!("{}: no [rule] table", path.display()));
                let string = |key: &str| rule.get(key).and_then(toml::Value::as_str).unwrap_or_else(|| panic!("{}: no `{key}`", path.display())).to_string();
                let risk_score = rule.get("risk_score").and_then(|value| value.as_integer().map(|n| n as f64).or(value.as_float()));
                let tags =
                    rule.get("tags").and_then(toml::Value::as_array).map(|tags| tags.iter().filter_map(|tag| tag.as_str().map(str::to_string)).collect());
                let package = path.file_name().is_some_and(|name| name == eqlc::rules::PACKAGE_MANIFEST);
                let named = if package { path.parent().unwrap() } else { path.as_path() };
                BuiltinRule {
                    stem: named.file_stem().unwrap().to_string_lossy().to_string(),
                    package,
                    id: string("rule_id"),
                    severity: string("severity"),
                    risk_score: risk_score.unwrap_or_else(|| panic!("{}: no `risk_score`", path.display())),
                    description: string("description"),
                    tags: tags.unwrap_or_else(|| panic!("{}: no `tags`", path.display())),
                    path,
                    text,
                }
            })
            .collect()
    })
}

/// The bundle of every rule in `rules/`, built in-process as `eqlc build --schema linux rules/` does.
fn fresh_bundle() -> &'static [u8] {
    static BUNDLE: OnceLock<Vec<u8>> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let paths: Vec<PathBuf> = builtin_rules().iter().map(|rule| rule.path.clone()).collect();
        build_bundle(&paths, &FileOptions::parse("// eqlc: schema=linux")).unwrap_or_else(|diags| panic!("the built-in rules do not build:\n{diags}"))
    })
}

fn program() -> Arc<Program> {
    static PROGRAM: OnceLock<Arc<Program>> = OnceLock::new();
    PROGRAM.get_or_init(|| Arc::new(Program::load(fresh_bundle()).expect("the built-in rules' bundle loads"))).clone()
}

/// The alerts (as written, one a line) and the bad lines of one replay.
fn replay(events: &str) -> (String, Vec<String>) {
    let mut alerts = Vec::new();
    let mut bad = Vec::new();
    let mut replay = Replay::new(program(), Options::default(), &mut alerts).expect("the engine starts");
    replay.read_all("events.ndjson", events.as_bytes(), &mut |line| bad.push(line.to_string())).unwrap();
    replay.finish().unwrap();
    (String::from_utf8(alerts).expect("alerts are UTF-8"), bad)
}

fn read_fixture(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    assert!(!text.trim().is_empty(), "{} is empty", path.display());
    text
}

fn alert_documents(alerts: &str) -> Vec<Value> {
    alerts.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("alert is not JSON ({error}): {line}"))).collect()
}

fn rule_id(alert: &Value) -> &str {
    alert["rule"]["id"].as_str().expect("an alert names its rule")
}

/// One line per event of an alert, for people reviewing the snapshot.
fn describe(event: &Value) -> String {
    let text = |value: &Value| value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
    let process = &event["process"];
    let what = match event["event"]["category"][0].as_str() {
        Some("network") => format!("{}:{}", text(&event["destination"]["ip"]), text(&event["destination"]["port"])),
        Some("file") => match event["file"]["Ext"]["original"]["path"].as_str() {
            Some(original) => format!("{original} -> {}", text(&event["file"]["path"])),
            None => text(&event["file"]["path"]),
        },
        _ => match event["event"]["action"].as_str() {
            Some("exec") => process["command_line"].as_str().unwrap_or("").to_string(),
            Some("uid_change") => format!("user.id {}", text(&event["user"]["id"])),
            Some("ptrace") => format!("request {} on pid {}", process["Ext"]["ptrace"]["request"], process["Ext"]["ptrace"]["child_pid"]),
            Some("load_module") => text(&process["Ext"]["load_module"]["name"]),
            Some("memfd_create") => format!("name {:?}", text(&process["Ext"]["memfd"]["name"])),
            _ => String::new(),
        },
    };
    format!(
        "  {} {} {} pid {} (parent {} pid {}) {what}",
        text(&event["@timestamp"]),
        text(&event["event"]["action"]),
        text(&process["name"]),
        process["pid"],
        text(&process["parent"]["name"]),
        process["parent"]["pid"]
    )
    .trim_end()
    .to_string()
}

/// Every rule has both fixtures, every fixture directory belongs to a rule, stems are
/// unique, and the rules' snapshots have no unreviewed `.snap.new` and no orphans.
#[test]
fn every_rule_has_fixtures() {
    let mut stems = BTreeMap::new();
    for rule in builtin_rules() {
        if let Some(other) = stems.insert(rule.stem.clone(), rule.relative_path()) {
            panic!("{} and {other} share the file name `{}`, and so their fixtures directory", rule.relative_path(), rule.stem);
        }
        for kind in ["positive", "negative"] {
            let path = rule.fixture_dir().join(format!("{kind}.ndjson"));
            assert!(
                path.is_file(),
                "{} ({}) has no {kind} fixture: write {} (events in the sensor's vocabulary, see docs/rules.md)",
                rule.relative_path(),
                rule.id,
                path.display()
            );
        }
    }
    for entry in std::fs::read_dir(fixtures_dir()).expect("tests/data/rules exists") {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.path().is_dir() {
            assert!(stems.contains_key(&name), "tests/data/rules/{name}/ belongs to no rule in rules/");
        }
    }
    let snapshots = repo_root().join("snapshots/rules");
    if let Ok(entries) = std::fs::read_dir(&snapshots) {
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            assert!(!name.ends_with(".snap.new"), "unreviewed snapshot snapshots/rules/{name}: review it, then accept it with INSTA_UPDATE=always");
            let stem = name.trim_start_matches("rules@").trim_end_matches(".snap");
            assert!(stems.contains_key(stem), "snapshot snapshots/rules/{name} belongs to no rule in rules/");
        }
    }
}

/// Each positive fixture raises its rule (and only the rules its `also.txt` lists); the
/// alerts are the snapshot. The input order does not change them (the runtime restores
/// timestamp order), and no line of a fixture is bad.
#[test]
fn positive_fixtures_raise_their_rule() {
    let ids: BTreeSet<&str> = builtin_rules().iter().map(|rule| rule.id.as_str()).collect();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("snapshots").join("rules"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for rule in builtin_rules() {
        let path = rule.fixture_dir().join("positive.ndjson");
        let events = read_fixture(&path);
        let (alerts, bad) = replay(&events);
        assert!(bad.is_empty(), "{}: bad lines: {bad:?}", path.display());
        let documents = alert_documents(&alerts);
        assert!(
            documents.iter().any(|alert| rule_id(alert) == rule.id),
            "{}: no alert of {} ({}); alerts: {:?}",
            path.display(),
            rule.id,
            rule.relative_path(),
            documents.iter().map(rule_id).collect::<Vec<_>>()
        );
        let also = rule.also();
        for other in &also {
            assert!(ids.contains(other.as_str()), "{}/also.txt names `{other}`, which is no built-in rule", rule.fixture_dir().display());
        }
        for alert in &documents {
            let id = rule_id(alert);
            assert!(id == rule.id || also.contains(id), "{}: unexpected alert of {id} (list it in also.txt if it is meant):\n{alert}", path.display());
        }
        let reversed: String = events.lines().rev().map(|line| format!("{line}\n")).collect();
        assert_eq!(replay(&reversed).0, alerts, "{}: the input order changed the alerts", path.display());
        let summary: Vec<String> = documents
            .iter()
            .map(|alert| {
                let key = alert["kestrel"]["join_key"].as_array().map(|key| format!(" by {}", Value::Array(key.clone()))).unwrap_or_default();
                let events: Vec<String> = alert["events"].as_array().into_iter().flatten().map(describe).collect();
                format!("{} {}{key}\n{}", alert["@timestamp"].as_str().unwrap_or(""), rule_id(alert), events.join("\n"))
            })
            .collect();
        let snapshot = format!(
            "----- RULE ({})\n{}\n----- ALERTS ({})\n{}\n----- AS WRITTEN\n{}",
            rule.relative_path(),
            rule.id,
            documents.len(),
            summary.join("\n"),
            alerts
        );
        let mut settings = settings.clone();
        settings.set_input_file(&path);
        settings.bind(|| insta::assert_snapshot!(format!("rules@{}", rule.stem), snapshot));
    }
}

/// No negative fixture raises any alert.
#[test]
fn negative_fixtures_raise_nothing() {
    for rule in builtin_rules() {
        let path = rule.fixture_dir().join("negative.ndjson");
        let (alerts, bad) = replay(&read_fixture(&path));
        assert!(bad.is_empty(), "{}: bad lines: {bad:?}", path.display());
        assert!(alerts.is_empty(), "{} ({}): near misses raised alerts:\n{alerts}", path.display(), rule.id);
    }
}

/// The rule files say what a reader and an alert consumer need, the same way.
#[test]
fn rules_are_well_formed() {
    let mut numbers = BTreeMap::new();
    for rule in builtin_rules() {
        let at = rule.relative_path();
        assert!(rule.text.starts_with("# Kestrel built-in rule. Written for this project.\n"), "{at}: starts with the built-in rule header comment");
        let mut parts = rule.id.splitn(3, '-');
        let (prefix, number, slug) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        assert!(
            prefix == "kestrel"
                && number.len() == 4
                && number.bytes().all(|byte| byte.is_ascii_digit())
                && !slug.is_empty()
                && slug.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'),
            "{at}: rule_id `{}` is not `kestrel-NNNN-slug`",
            rule.id
        );
        if let Some(other) = numbers.insert(number.to_string(), at.clone()) {
            panic!("{at} and {other} share the rule number {number}");
        }
        let range = match rule.severity.as_str() {
            "low" => 0.0..=21.0,
            "medium" => 22.0..=47.0,
            "high" => 48.0..=73.0,
            "critical" => 74.0..=100.0,
            other => panic!("{at}: severity `{other}` is not low, medium, high or critical"),
        };
        assert!(range.contains(&rule.risk_score), "{at}: risk_score {} does not fit severity {}", rule.risk_score, rule.severity);
        assert!(rule.description.contains("False positives:"), "{at}: the description says what the false positives are (`False positives: ...`)");
        for prefix in ["Tactic: ", "Technique: T", "OS: Linux"] {
            assert!(rule.tags.iter().any(|tag| tag.starts_with(prefix)), "{at}: no `{prefix}...` tag");
        }
        if rule.package {
            // A package's directory is named for the rule, not for a tactic.
            continue;
        }
        let tactic_dir = rule.path.parent().and_then(Path::file_name).map(|dir| dir.to_string_lossy().replace('_', " ")).unwrap_or_default();
        assert!(
            rule.tags.iter().any(|tag| tag.strip_prefix("Tactic: ").is_some_and(|tactic| tactic.eq_ignore_ascii_case(&tactic_dir))),
            "{at}: the rule's directory names a tactic its tags do not"
        );
    }
}

/// The committed built-in bundle is what `rules/` builds to now, byte for byte.
#[test]
fn committed_builtin_bundle_is_up_to_date() {
    let built = fresh_bundle();
    assert!(
        BUILTIN_BUNDLE == built,
        "kestrel-rt/builtin/rules.kbundle ({} bytes) is not what rules/ builds to now ({} bytes): the rules or eqlc's code generation changed.\n\
         Regenerate it with `{REGENERATE}`, and commit it with the rules.",
        BUILTIN_BUNDLE.len(),
        built.len()
    );
}

/// The runtime loads the built-in bundle, and it holds exactly the rules of `rules/`.
#[test]
fn the_runtime_loads_the_builtin_bundle() {
    let program =
        Program::load(BUILTIN_BUNDLE).unwrap_or_else(|error| panic!("the runtime refuses the built-in bundle: {error}; regenerate it with `{REGENERATE}`"));
    let loaded: BTreeSet<&str> = program.bundle.rules.iter().map(|rule| rule.id.as_str()).collect();
    let files: BTreeSet<&str> = builtin_rules().iter().map(|rule| rule.id.as_str()).collect();
    assert_eq!(loaded, files, "the built-in bundle's rules are not the rules of rules/; regenerate it with `{REGENERATE}`");
    assert_eq!(program.bundle.manifest.schema_name, "linux");
}

/// docs/rules.md lists every rule (its table is written by `cargo xtask build-rules`).
#[test]
fn docs_list_every_rule() {
    let docs = std::fs::read_to_string(repo_root().join("docs/rules.md")).expect("docs/rules.md exists");
    for rule in builtin_rules() {
        assert!(docs.contains(&format!("`{}`", rule.id)), "docs/rules.md does not list {}; regenerate its table with `{REGENERATE}`", rule.id);
    }
}
