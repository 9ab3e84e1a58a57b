//! Rule actions: both forms parsed, their defaults, and the checks against the query.

use super::*;
use crate::check::Options;
use crate::dialect::{Dialect, EndgameCase};
use crate::driver::{self, Checked};
use crate::rules::{FileKind, split};
use crate::source::SourceMap;
use kestrel_bundle::schema::Schema;

fn target(whom: Whom, step: u32, tree: bool) -> KillTarget {
    KillTarget { whom, step, tree }
}

/// Loads and checks one rule file's text against the linux schema: the load
/// diagnostics, and each rule checked.
fn check_file(name: &str, text: &str, dialect: Dialect) -> (Vec<Diagnostic>, Vec<Checked>) {
    let kind = FileKind::of(std::path::Path::new(name)).expect("a rule file name");
    let schema = Schema::builtin("linux").expect("the linux schema");
    let options = Options { schema: &schema, dialect, endgame_case: EndgameCase::Insensitive, declarations: &[] };
    let mut sources = SourceMap::new();
    let (rules, load_diags) = split(name, text.to_string(), kind, &mut sources);
    (load_diags, driver::check_all(&rules, &sources, &options))
}

/// The action of the only rule of a TOML file with `keys` in `[rule]`, and every
/// diagnostic code met.
fn toml_action(keys: &str, query: &str) -> (Option<Action>, Vec<Code>) {
    let text = format!("[rule]\nname = \"r\"\n{keys}\nquery = '''\n{query}\n'''\n");
    let (load_diags, checked) = check_file("r.toml", &text, Dialect::Elasticsearch);
    let codes = load_diags.iter().chain(checked.iter().flat_map(|rule| &rule.diags)).map(|diag| diag.code).collect();
    (checked.into_iter().next().and_then(|rule| rule.action), codes)
}

const EXEC: &str = "process where event.action == \"exec\" and process.name == \"bash\"";
const SEQUENCE: &str = "sequence by process.entity_id with maxspan=5s\n  [network where true]\n  [process where event.action == \"exec\"] with runs=2\n  ![process where event.action == \"end\"]";

#[test]
fn kestrel_form_defaults() {
    assert_eq!(toml_action("", EXEC), (None, vec![]));
    assert_eq!(toml_action("action = \"alert\"", EXEC), (None, vec![]));
    assert_eq!(toml_action("action = \"kill\"", EXEC), (Some(Action::Kill(vec![target(Whom::Process, 0, false)])), vec![]));
    assert_eq!(toml_action("action = \"kill\"\nkill = \"parent\"", EXEC), (Some(Action::Kill(vec![target(Whom::Parent, 0, false)])), vec![]));
    assert_eq!(
        toml_action("action = \"kill\"\nkill = [\"process\", \"parent\"]\nkill_tree = true", EXEC),
        (Some(Action::Kill(vec![target(Whom::Process, 0, true), target(Whom::Parent, 0, true)])), vec![])
    );
    assert_eq!(toml_action("action = \"block\"", EXEC), (Some(Action::Block), vec![]));
}

/// The default kill step of a sequence is its last positive step: `runs=2` makes
/// steps 1 and 2 of the second step as written, and the missing step does not count.
#[test]
fn the_default_kill_step_of_a_sequence_is_its_last_positive_step() {
    let (action, codes) = toml_action("action = \"kill\"", SEQUENCE);
    assert_eq!(action, Some(Action::Kill(vec![target(Whom::Process, 2, false)])));
    assert!(!codes.iter().any(|code| code.severity() == crate::diag::Severity::Error), "{codes:?}");
    let (action, _) = toml_action("action = \"kill\"\nkill_step = 0", SEQUENCE);
    assert_eq!(action, Some(Action::Kill(vec![target(Whom::Process, 0, false)])));
    let (action, codes) = toml_action("action = \"kill\"\nkill_step = 3", SEQUENCE);
    assert_eq!(action, None);
    assert!(codes.contains(&Code::E0507));
}

#[test]
fn elastic_form_in_toml_and_json() {
    let keys = "actions = [\n  { action = \"kill_process\", field = \"process.entity_id\", state = 0 },\n  { action = \"kill_process\", field = \"process.parent.entity_id\", state = 1, tree = true },\n]";
    let expected = Action::Kill(vec![target(Whom::Process, 0, false), target(Whom::Parent, 1, true)]);
    assert_eq!(toml_action(keys, SEQUENCE), (Some(expected.clone()), vec![]));
    let line = r#"{"name": "r", "query": "sequence by process.entity_id with maxspan=5s [network where true] [process where true]", "actions": [{"action": "kill_process", "field": "process.entity_id", "state": 0}, {"action": "kill_process", "field": "process.parent.entity_id", "state": 1, "tree": true}], "optional_actions": [{"action": "rollback", "field": "process.entity_id", "state": 0}]}"#;
    let (load_diags, checked) = check_file("r.jsonl", line, Dialect::Elasticsearch);
    assert!(load_diags.is_empty(), "{load_diags:?}");
    assert_eq!(checked[0].action, Some(expected));
    // No `state`: the default step.
    let keys = "actions = [{ action = \"kill_process\", field = \"process.entity_id\" }]";
    assert_eq!(toml_action(keys, SEQUENCE).0, Some(Action::Kill(vec![target(Whom::Process, 2, false)])));
    // An empty list: alert only.
    assert_eq!(toml_action("actions = []", EXEC), (None, vec![]));
}

#[test]
fn malformed_actions_are_e0507() {
    for keys in [
        "action = \"quarantine\"",
        "action = 1",
        "kill = \"process\"",
        "action = \"block\"\nkill_step = 0",
        "action = \"kill\"\nkill = []",
        "action = \"kill\"\nkill = [\"child\"]",
        "action = \"kill\"\nkill_step = -1",
        "action = \"kill\"\nkill_tree = \"yes\"",
        "action = \"kill\"\nactions = []",
        "actions = \"kill\"",
        "actions = [{ action = \"rollback\", field = \"process.entity_id\" }]",
        "actions = [{ action = \"kill_process\", field = \"process.pid\" }]",
        "actions = [{ action = \"kill_process\" }]",
        "actions = [{ action = \"kill_process\", field = \"process.entity_id\", statee = 0 }]",
        "actions = [\"kill_process\"]",
        "action = \"kill\"\nkill_step = 1",
    ] {
        let (action, codes) = toml_action(keys, EXEC);
        assert_eq!((action, codes), (None, vec![Code::E0507]), "{keys}");
    }
}

#[test]
fn other_platform_processes_are_left_out_with_a_warning() {
    let keys =
        "actions = [{ action = \"kill_process\", field = \"Effective_process.entity_id\" }, { action = \"kill_process\", field = \"process.entity_id\" }]";
    assert_eq!(toml_action(keys, EXEC), (Some(Action::Kill(vec![target(Whom::Process, 0, false)])), vec![Code::W0017]));
    let keys = "actions = [{ action = \"kill_process\", field = \"Target.process.entity_id\", state = 0 }]";
    assert_eq!(toml_action(keys, EXEC), (None, vec![Code::W0017]));
}

#[test]
fn block_is_checked_against_the_deciding_step() {
    let block = "action = \"block\"";
    let clean = [
        EXEC,
        "process where event.action == \"exec\" and descendant of [process where process.name == \"sshd\"]",
        "sequence by process.parent.entity_id with maxspan=5s [file where file.path : \"/tmp/*\"] [process where process.args : \"-c\"]",
    ];
    for query in clean {
        let (action, codes) = toml_action(block, query);
        assert_eq!(action, Some(Action::Block), "{query}: {codes:?}");
    }
    let refused = [
        "network where destination.port == 4444",
        "any where process.name == \"bash\"",
        "process where process.name == \"bash\" and process.env_vars : \"LD_PRELOAD=*\"",
        "process where process.name == \"bash\" | head 1",
        // The fields of a lineage term's subquery count too (conservatively: the
        // runtime may run a source predicate on the hook's event).
        "process where event.action == \"exec\" and descendant of [network where destination.port == 4444]",
        "sequence by process.entity_id with maxspan=5s [process where true] [network where true]",
        "sequence by process.entity_id with maxspan=5s [process where true] ![network where true]",
        "sequence with maxspan=5s [network where true] by source.ip [process where true] by process.env_vars",
        "sample by host.id [process where true] [process where true]",
    ];
    for query in refused {
        let (action, codes) = toml_action(block, query);
        assert_eq!(action, None, "{query}");
        assert!(codes.contains(&Code::E0506), "{query}: {codes:?}");
    }
}

/// Under `--schema dynamic`, fields the schema does not know follow the same rule.
#[test]
fn block_under_the_dynamic_schema() {
    let schema = Schema::builtin("dynamic").expect("the dynamic schema");
    let options = Options { schema: &schema, dialect: Dialect::Elasticsearch, endgame_case: EndgameCase::Insensitive, declarations: &[] };
    for (query, blocks) in [("process where process.name == \"bash\"", true), ("process where process.code_signature.trusted == false", false)] {
        let text = format!("[rule]\nname = \"r\"\naction = \"block\"\nquery = '''\n{query}\n'''\n");
        let mut sources = SourceMap::new();
        let (rules, _) = split("r.toml", text, FileKind::Toml, &mut sources);
        let checked = driver::check_all(&rules, &sources, &options);
        assert_eq!(checked[0].action.is_some(), blocks, "{query}: {:?}", checked[0].diags);
    }
}

/// A hand-written predicate's view counts as read by the step that calls it.
#[test]
fn block_reads_the_views_of_called_predicates() {
    let schema = Schema::builtin("linux").expect("the linux schema");
    let declaration = |view: &[&str]| crate::functions::Declaration {
        name: "suspicious".to_string(),
        params: vec![],
        returns: crate::tir::Scalar::Bool,
        view: view.iter().map(ToString::to_string).collect(),
    };
    for (view, blocks) in [(vec!["process.name"], true), (vec!["process.name", "process.env_vars"], false)] {
        let declarations = [declaration(&view)];
        let options = Options { schema: &schema, dialect: Dialect::Elasticsearch, endgame_case: EndgameCase::Insensitive, declarations: &declarations };
        let text = "[rule]\nname = \"r\"\naction = \"block\"\nquery = '''\nprocess where suspicious()\n'''\n";
        let mut sources = SourceMap::new();
        let (rules, _) = split("r.toml", text.to_string(), FileKind::Toml, &mut sources);
        let checked = driver::check_all(&rules, &sources, &options);
        assert_eq!(checked[0].action.is_some(), blocks, "{view:?}: {:?}", checked[0].diags);
    }
}

/// A join needs the endgame dialect; `block` on it is refused.
#[test]
fn block_on_a_join() {
    let text = "[rule]\nname = \"r\"\naction = \"block\"\nquery = '''\njoin by process.entity_id [process where true] [process where true]\n'''\n";
    let (_, checked) = check_file("r.toml", text, Dialect::Endgame);
    assert_eq!(checked[0].action, None);
    assert!(checked[0].diags.iter().any(|diag| diag.code == Code::E0506));
}

/// The actions reach the bundle, by rule index.
#[test]
fn actions_reach_the_bundle() {
    let text = concat!(
        r#"{"name": "a", "query": "process where process.name == \"a\""}"#,
        "\n",
        r#"{"name": "b", "query": "process where process.name == \"b\"", "action": "kill", "kill": ["parent"]}"#,
        "\n",
        r#"{"name": "c", "query": "process where process.name == \"c\"", "action": "block"}"#,
        "\n"
    );
    let (load_diags, checked) = check_file("r.jsonl", text, Dialect::Elasticsearch);
    assert!(load_diags.is_empty());
    let schema = Schema::builtin("linux").expect("the linux schema");
    let (bytes, diags) = driver::build(&checked, &schema, &[]);
    let bytes = bytes.unwrap_or_else(|| panic!("{diags:?}"));
    let bundle = kestrel_bundle::Bundle::from_bytes(&bytes).expect("reads");
    assert_eq!(
        bundle.actions,
        vec![
            kestrel_bundle::enforce::RuleAction { rule: 1, action: Action::Kill(vec![target(Whom::Parent, 0, false)]), at_exec: true },
            kestrel_bundle::enforce::RuleAction { rule: 2, action: Action::Block, at_exec: true },
        ]
    );
}

/// JSON values are located in their line.
#[test]
fn json_spans_point_into_the_line() {
    let line = r#"  {"query": "process where true", "action": "explode"}"#;
    let object = match serde_json::from_str(line.trim()) {
        Ok(serde_json::Value::Object(object)) => object,
        other => panic!("{other:?}"),
    };
    let keys = json_keys(&object, line, 100);
    let (_, _, node) = &keys[0];
    assert_eq!(node.span, Span::new(100 + line.find("\"explode\"").unwrap(), 100 + line.find("\"explode\"").unwrap() + 9));
}

/// A kill is decided at the exec hook only where a block could be: an exec step that
/// reads only the hook's fields.
#[test]
fn kills_know_whether_the_exec_hook_can_decide_them() {
    let text = concat!(
        r#"{"name": "early", "query": "process where process.name == \"a\"", "action": "kill"}"#,
        "\n",
        r#"{"name": "late", "query": "process where process.env_vars : \"LD_PRELOAD=*\"", "action": "kill"}"#,
        "\n",
        r#"{"name": "file", "query": "file where file.name == \"x\"", "action": "kill"}"#,
        "\n"
    );
    let (load_diags, checked) = check_file("r.jsonl", text, Dialect::Elasticsearch);
    assert!(load_diags.is_empty());
    let at_exec: Vec<bool> = checked.iter().map(|rule| rule.at_exec).collect();
    assert_eq!(at_exec, [true, false, false]);
    assert!(checked.iter().all(|rule| rule.action.is_some() && !rule.diags.iter().any(Diagnostic::is_error)));
}
