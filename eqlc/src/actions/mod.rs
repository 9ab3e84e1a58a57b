//! Rule actions: what a rule does when it matches, besides alerting (docs/enforcement.md).
//!
//! A rule file states the action in one of two forms, in `[rule]` (TOML) or on a JSON
//! line: Kestrel's `action = "alert" | "kill" | "block"` with `kill`, `kill_step` and
//! `kill_tree`, or Elastic's `actions` list of `kill_process` entries. [`parse`] reads
//! either into an [`ActionSpec`] (E0507 for a malformed one); once the query is checked,
//! [`check`] resolves it into the bundle's [`Action`]: the default kill step, kill steps
//! in range (E0507), and `block` only on a step the exec hook can decide (E0506).

use crate::ast;
use crate::check::Options;
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::functions::Func;
use crate::source::{FileId, Span};
use crate::tir::{self, ExprId, ExprKind};
use kestrel_bundle::enforce::{Action, KillTarget, MAX_KILL_TARGETS, Whom, exec_hook_fills};

/// A rule's action as its file states it, before the query is known.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionSpec {
    /// The rule file stating it.
    pub file: FileId,
    /// Where: the `action` value, or the `actions` list.
    pub span: Span,
    pub kind: SpecKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SpecKind {
    Block,
    Kill(Vec<TargetSpec>),
}

/// A process to kill, as stated.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSpec {
    pub whom: Whom,
    /// The step as written (`kill_step`, Elastic's `state`) and where; `None`: the
    /// default, 0 for an event query and the last positive step of a sequence.
    pub step: Option<(u32, Span)>,
    pub tree: bool,
}

/// A value of a rule file, with where it is (for TOML, exactly; for a JSON line, where
/// its text was found in the line).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i128),
    Bool(bool),
    List(Vec<Node>),
    /// Keys with their spans, and values.
    Table(Vec<(String, Span, Node)>),
    Null,
    /// Another type, by name (`float`, `datetime`, or a value nested too deep).
    Other(&'static str),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "integer",
            Value::Bool(_) => "boolean",
            Value::List(_) => "list",
            Value::Table(_) => "table",
            Value::Null => "null",
            Value::Other(name) => name,
        }
    }
}

/// A key of the rule's table: its name, where the name is, and its value.
pub type Key = (String, Span, Node);

/// The keys of a rule that state its action (`optional_actions`, Elastic's actions a
/// rule may skip, is not one: eqlc ignores it).
pub const KEYS: [&str; 5] = ["action", "kill", "kill_step", "kill_tree", "actions"];

/// Values nested deeper than this are not read (none of the keys nests more than 3).
const MAX_DEPTH: usize = 8;

/// Fields of Elastic Defend on Windows and macOS that name other processes
/// (`Effective_process.entity_id`, `Target.process.entity_id`): an Elastic action on
/// them is left out with a warning (W0017), not refused.
const OTHER_PLATFORM_PREFIXES: [&str; 2] = ["Effective_process.", "Target.process."];

/// The action keys of the `[rule]` table of a TOML rule file's text.
pub fn toml_keys(text: &str) -> Vec<Key> {
    let Ok(document) = toml::de::DeTable::parse(text) else { return Vec::new() };
    let Some((_, rule)) = document.get_ref().iter().find(|(key, _)| key.get_ref() == "rule") else { return Vec::new() };
    let Some(table) = rule.get_ref().as_table() else { return Vec::new() };
    table
        .iter()
        .filter(|(key, _)| KEYS.contains(&key.get_ref().as_ref()))
        .map(|(key, value)| (key.get_ref().to_string(), span_of(key.span()), from_toml(value, 0)))
        .collect()
}

fn span_of(range: std::ops::Range<usize>) -> Span {
    Span::new(range.start, range.end)
}

fn from_toml(value: &toml::Spanned<toml::de::DeValue>, depth: usize) -> Node {
    use toml::de::DeValue;
    let span = span_of(value.span());
    let value = match value.get_ref() {
        _ if depth > MAX_DEPTH => Value::Other("value nested too deep"),
        DeValue::String(text) => Value::Str(text.to_string()),
        DeValue::Integer(integer) => i128::from_str_radix(integer.as_str(), integer.radix()).map_or(Value::Other("integer"), Value::Int),
        DeValue::Float(_) => Value::Other("float"),
        DeValue::Boolean(value) => Value::Bool(*value),
        DeValue::Datetime(_) => Value::Other("datetime"),
        DeValue::Array(items) => Value::List(items.iter().map(|item| from_toml(item, depth + 1)).collect()),
        DeValue::Table(table) => {
            Value::Table(table.iter().map(|(key, value)| (key.get_ref().to_string(), span_of(key.span()), from_toml(value, depth + 1))).collect())
        }
    };
    Node { value, span }
}

/// The action keys of one JSON rule line (`object`), located in the line's text, which
/// starts at `line_start` of its file. serde_json keeps no positions, so a value's span
/// is where its compact text is found in the line, or its key's when it is not.
pub fn json_keys(object: &serde_json::Map<String, serde_json::Value>, line: &str, line_start: usize) -> Vec<Key> {
    let mut keys = Vec::new();
    for (key, value) in object.iter().filter(|(key, _)| KEYS.contains(&key.as_str())) {
        let quoted = serde_json::Value::String(key.clone()).to_string();
        let key_at = line.find(&quoted).unwrap_or(0);
        let key_span = Span::new(line_start + key_at, line_start + key_at + quoted.len());
        let mut cursor = key_at + quoted.len();
        keys.push((key.clone(), key_span, from_json(value, line, line_start, &mut cursor, key_span, 0)));
    }
    keys
}

fn from_json(value: &serde_json::Value, line: &str, line_start: usize, cursor: &mut usize, fallback: Span, depth: usize) -> Node {
    let text = value.to_string();
    let found = line.get(*cursor..).and_then(|rest| rest.find(&text)).map(|at| *cursor + at);
    let span = found.map_or(fallback, |at| Span::new(line_start + at, line_start + at + text.len()));
    let mut inner = found.unwrap_or(*cursor);
    let value = match value {
        _ if depth > MAX_DEPTH => Value::Other("value nested too deep"),
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(value) => Value::Bool(*value),
        serde_json::Value::Number(number) => number.as_i64().map_or(Value::Other("number"), |value| Value::Int(i128::from(value))),
        serde_json::Value::String(text) => Value::Str(text.clone()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(|item| from_json(item, line, line_start, &mut inner, span, depth + 1)).collect()),
        serde_json::Value::Object(members) => Value::Table(
            members
                .iter()
                .map(|(key, member)| {
                    let quoted = serde_json::Value::String(key.clone()).to_string();
                    let key_span = line
                        .get(inner..)
                        .and_then(|rest| rest.find(&quoted))
                        .map_or(span, |at| Span::new(line_start + inner + at, line_start + inner + at + quoted.len()));
                    let mut member_cursor = (key_span.end as usize).saturating_sub(line_start).max(inner);
                    (key.clone(), key_span, from_json(member, line, line_start, &mut member_cursor, key_span, depth + 1))
                })
                .collect(),
        ),
    };
    if let Some(at) = found {
        *cursor = at + text.len();
    }
    Node { value, span }
}

/// Reads a rule's action keys. `None` with no diagnostic: the rule only alerts.
pub fn parse(keys: &[Key], file: FileId) -> (Option<ActionSpec>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let get = |name: &str| keys.iter().find(|(key, _, node)| key == name && node.value != Value::Null);
    let kestrel: Vec<&Key> = ["action", "kill", "kill_step", "kill_tree"].into_iter().filter_map(get).collect();
    let spec = match (get("actions"), kestrel.first()) {
        (Some(elastic), Some(first)) => {
            diags.push(
                Diagnostic::new(Code::E0507, format!("the rule states its action twice: with `{}` (Kestrel's form) and with `actions` (Elastic's)", first.0))
                    .primary(elastic.2.span, "Elastic's form")
                    .secondary(first.2.span, "Kestrel's form")
                    .help("keep one form: `action = \"kill\"` (with `kill`, `kill_step`, `kill_tree`), or an Elastic `actions` list")
                    .in_file(file),
            );
            None
        }
        (Some(elastic), None) => elastic_form(&elastic.2, file, &mut diags),
        (None, _) => kestrel_form(&get, file, &mut diags),
    };
    if diags.iter().any(Diagnostic::is_error) { (None, diags) } else { (spec, diags) }
}

fn invalid(file: FileId, span: Span, message: impl Into<String>, label: impl Into<String>) -> Diagnostic {
    Diagnostic::new(Code::E0507, message).primary(span, label).in_file(file)
}

fn wrong_type(file: FileId, key: &str, node: &Node, expected: &str) -> Diagnostic {
    invalid(file, node.span, format!("`{key}` must be {expected}, not a {}", node.value.type_name()), format!("expected {expected}"))
}

/// A step number (`kill_step`, `state`): 0 or more, within `u32`.
fn step_number(key: &str, node: &Node, file: FileId, diags: &mut Vec<Diagnostic>) -> Option<(u32, Span)> {
    match node.value {
        Value::Int(number) => match u32::try_from(number) {
            Ok(step) => Some((step, node.span)),
            Err(_) => {
                diags.push(
                    invalid(file, node.span, format!("`{key}` is {number}, which is not a step"), "expected a step number, 0 or more")
                        .help("steps are counted from 0: the first positive step of a sequence is 0"),
                );
                None
            }
        },
        _ => {
            diags.push(wrong_type(file, key, node, "a step number"));
            None
        }
    }
}

fn boolean(key: &str, node: &Node, file: FileId, diags: &mut Vec<Diagnostic>) -> bool {
    match node.value {
        Value::Bool(value) => value,
        _ => {
            diags.push(wrong_type(file, key, node, "`true` or `false`"));
            false
        }
    }
}

fn kestrel_form<'k>(get: &dyn Fn(&str) -> Option<&'k Key>, file: FileId, diags: &mut Vec<Diagnostic>) -> Option<ActionSpec> {
    let stated = get("action");
    let kind = match stated.map(|(_, _, node)| node) {
        None => "alert",
        Some(Node { value: Value::Str(text), .. }) if ["alert", "kill", "block"].contains(&text.as_str()) => text.as_str(),
        Some(node @ Node { value: Value::Str(text), .. }) => {
            diags.push(
                invalid(file, node.span, format!("unknown action `{text}`"), "expected \"alert\", \"kill\" or \"block\"")
                    .help("`action` is \"alert\" (the default: alert only), \"kill\" or \"block\"; docs/enforcement.md"),
            );
            return None;
        }
        Some(node) => {
            diags.push(wrong_type(file, "action", node, "\"alert\", \"kill\" or \"block\""));
            return None;
        }
    };
    if kind != "kill" {
        for key in ["kill", "kill_step", "kill_tree"] {
            let Some((_, _, node)) = get(key) else { continue };
            let message = match stated {
                None => format!("`{key}` without `action = \"kill\"`"),
                Some(_) => format!("`{key}` with `action = \"{kind}\"`"),
            };
            let help = if kind == "block" {
                format!("`block` denies the exec and kills nothing: remove `{key}`, or write `action = \"kill\"`")
            } else {
                format!("add `action = \"kill\"` to the rule, or remove `{key}`")
            };
            diags.push(invalid(file, node.span, message, "only for `action = \"kill\"`").help(help));
        }
        if diags.iter().any(Diagnostic::is_error) {
            return None;
        }
    }
    let span = stated.map_or_else(Span::default, |(_, _, node)| node.span);
    match kind {
        "block" => Some(ActionSpec { file, span, kind: SpecKind::Block }),
        "kill" => {
            let whoms: Vec<Whom> = match get("kill").map(|(_, _, node)| node) {
                None => vec![Whom::Process],
                Some(node @ Node { value: Value::Str(_), .. }) => whom(node, file, diags).into_iter().collect(),
                Some(Node { value: Value::List(items), span }) => {
                    if items.is_empty() {
                        diags.push(
                            invalid(file, *span, "`kill` names no process", "an empty list")
                                .help("write `kill = [\"process\"]` (the default), `[\"parent\"]` or `[\"process\", \"parent\"]`"),
                        );
                    }
                    items.iter().filter_map(|item| whom(item, file, diags)).collect()
                }
                Some(node) => {
                    diags.push(wrong_type(file, "kill", node, "\"process\", \"parent\" or a list of them"));
                    Vec::new()
                }
            };
            let step = get("kill_step").and_then(|(_, _, node)| step_number("kill_step", node, file, diags));
            let tree = get("kill_tree").is_some_and(|(_, _, node)| boolean("kill_tree", node, file, diags));
            let targets = whoms.into_iter().map(|whom| TargetSpec { whom, step, tree }).collect();
            Some(ActionSpec { file, span, kind: SpecKind::Kill(targets) })
        }
        _ => None,
    }
}

/// One name of `kill`: `process` or `parent`.
fn whom(node: &Node, file: FileId, diags: &mut Vec<Diagnostic>) -> Option<Whom> {
    match &node.value {
        Value::Str(text) if text == "process" => Some(Whom::Process),
        Value::Str(text) if text == "parent" => Some(Whom::Parent),
        Value::Str(text) => {
            diags.push(
                invalid(file, node.span, format!("unknown kill target `{text}`"), "expected \"process\" or \"parent\"")
                    .help("`kill` names the process of the step's event (\"process\"), its parent (\"parent\"), or both"),
            );
            None
        }
        _ => {
            diags.push(wrong_type(file, "kill", node, "\"process\" or \"parent\""));
            None
        }
    }
}

/// Elastic's form: `actions = [{ action = "kill_process", field = "process.entity_id",
/// state = 0, tree = true }, ...]`.
fn elastic_form(list: &Node, file: FileId, diags: &mut Vec<Diagnostic>) -> Option<ActionSpec> {
    let Value::List(entries) = &list.value else {
        diags.push(wrong_type(file, "actions", list, "a list of tables such as `{ action = \"kill_process\", field = \"process.entity_id\", state = 0 }`"));
        return None;
    };
    let mut targets = Vec::new();
    for entry in entries {
        let Value::Table(members) = &entry.value else {
            diags.push(wrong_type(file, "an `actions` entry", entry, "a table with `action`, `field`, `state` and `tree`"));
            continue;
        };
        let member = |name: &str| members.iter().find(|(key, ..)| key == name).map(|(_, _, node)| node);
        for (key, key_span, _) in members {
            if !["action", "field", "state", "tree"].contains(&key.as_str()) {
                diags.push(
                    invalid(file, *key_span, format!("unknown key `{key}` in an `actions` entry"), "not a key of an Elastic action")
                        .help("an entry has `action` (\"kill_process\"), `field`, `state` and `tree`"),
                );
            }
        }
        match member("action") {
            None => {
                diags.push(invalid(file, entry.span, "an `actions` entry without `action`", "no `action`").help("write `action = \"kill_process\"`"));
                continue;
            }
            Some(Node { value: Value::Str(text), .. }) if text == "kill_process" => {}
            Some(node @ Node { value: Value::Str(text), .. }) => {
                diags.push(
                    invalid(file, node.span, format!("Kestrel does not carry out the Elastic action `{text}`"), "only `kill_process` is carried out")
                        .help("remove the entry: the actions a rule may skip belong in `optional_actions`, which eqlc ignores"),
                );
                continue;
            }
            Some(node) => {
                diags.push(wrong_type(file, "action", node, "\"kill_process\""));
                continue;
            }
        }
        let whom = match member("field") {
            None => {
                diags.push(
                    invalid(file, entry.span, "a `kill_process` entry without `field`", "no `field`")
                        .help("write `field = \"process.entity_id\"` (the event's process) or `field = \"process.parent.entity_id\"` (its parent)"),
                );
                continue;
            }
            Some(Node { value: Value::Str(field), .. }) if field == Whom::Process.entity_field() => Whom::Process,
            Some(Node { value: Value::Str(field), .. }) if field == Whom::Parent.entity_field() => Whom::Parent,
            Some(node @ Node { value: Value::Str(field), .. }) if OTHER_PLATFORM_PREFIXES.iter().any(|prefix| field.starts_with(prefix)) => {
                diags.push(
                    Diagnostic::new(Code::W0017, format!("Kestrel cannot kill the process `{field}` names"))
                        .primary(node.span, "a process of Elastic Defend on Windows or macOS")
                        .note("eqlc leaves this action out; the rule's other actions stay, and it alerts as before")
                        .help("remove the entry if the rule runs only on Kestrel")
                        .in_file(file),
                );
                continue;
            }
            Some(node @ Node { value: Value::Str(field), .. }) => {
                diags.push(
                    invalid(file, node.span, format!("`{field}` names no process Kestrel can kill"), "expected \"process.entity_id\" or \"process.parent.entity_id\"")
                        .help("`field` is the entity id of the process to kill: \"process.entity_id\" (the event's process) or \"process.parent.entity_id\" (its parent)"),
                );
                continue;
            }
            Some(node) => {
                diags.push(wrong_type(file, "field", node, "\"process.entity_id\" or \"process.parent.entity_id\""));
                continue;
            }
        };
        let step = member("state").and_then(|node| step_number("state", node, file, diags));
        let tree = member("tree").is_some_and(|node| boolean("tree", node, file, diags));
        targets.push(TargetSpec { whom, step, tree });
    }
    if targets.len() > MAX_KILL_TARGETS {
        diags.push(invalid(file, list.span, format!("`actions` kills {} processes; a rule kills at most {MAX_KILL_TARGETS}", targets.len()), "too many"));
    }
    (!targets.is_empty()).then_some(ActionSpec { file, span: list.span, kind: SpecKind::Kill(targets) })
}

/// The positive steps of a query: its steps that are not missing-event steps, after
/// `runs=N` unrolling (one for an event query). Kill steps and Elastic's `state`
/// count these, from 0.
pub fn positive_steps(query: &tir::Query) -> usize {
    match query {
        tir::Query::Event(_) => 1,
        tir::Query::Sequence(sequence) => sequence.steps.iter().filter(|step| !step.missing).count(),
        tir::Query::Join(join) => join.steps.len(),
        tir::Query::Sample(sample) => sample.steps.len(),
    }
}

/// Resolves a rule's action against its checked query (`rule`, parsed as `ast`, in
/// `query_file`): fills in the default kill step and checks kill steps (E0507), and
/// checks that a `block` rule is decided at one exec the exec hook can see (E0506).
pub fn check(spec: &ActionSpec, rule: &tir::Rule, ast: &ast::File, options: &Options, query_file: FileId) -> (Option<Action>, Vec<Diagnostic>) {
    let (action, diags, _) = check_at_exec(spec, rule, ast, options, query_file);
    (action, diags)
}

/// [`check`], and whether the action's deciding step can be decided at the exec hook
/// (the conditions of `block`; `RuleAction::at_exec`).
pub fn check_at_exec(spec: &ActionSpec, rule: &tir::Rule, ast: &ast::File, options: &Options, query_file: FileId) -> (Option<Action>, Vec<Diagnostic>, bool) {
    let at_exec = cannot_block(spec, rule, ast, options, query_file).is_none();
    let (action, diags) = resolve(spec, rule, ast, options, query_file);
    (action, diags, at_exec)
}

fn resolve(spec: &ActionSpec, rule: &tir::Rule, ast: &ast::File, options: &Options, query_file: FileId) -> (Option<Action>, Vec<Diagnostic>) {
    let positive = positive_steps(&rule.query);
    match &spec.kind {
        SpecKind::Kill(targets) => {
            let default = match rule.query {
                tir::Query::Event(_) => 0,
                _ => positive.saturating_sub(1) as u32,
            };
            let mut diags = Vec::new();
            let mut resolved = Vec::new();
            let mut reported: Vec<Span> = Vec::new();
            for target in targets {
                let step = target.step.map_or(default, |(step, _)| step);
                if step as usize >= positive {
                    // Targets stated together (`kill = ["process", "parent"]`) share a step.
                    let Some((_, span)) = target.step.filter(|(_, span)| !reported.contains(span)) else { continue };
                    reported.push(span);
                    let steps = match (&rule.query, positive) {
                        (tir::Query::Event(_), _) => "an event query has one step, 0".to_string(),
                        (_, 0) => "the rule has no positive step".to_string(),
                        (_, 1) => "the rule has 1 positive step, 0".to_string(),
                        (_, n) => format!("the rule has {n} positive steps, 0 to {}", n - 1),
                    };
                    diags.push(
                        invalid(spec.file, span, format!("kill step {step} is out of range: {steps}"), "no such step")
                            .note("positive steps are the steps of a sequence that are not missing-event steps `![...]`, counted from 0 after `runs=N` unrolling (Elastic's `state`)")
                            .help(if positive > 1 { format!("use a step from 0 to {}", positive - 1) } else { "use step 0".to_string() }),
                    );
                    continue;
                }
                resolved.push(KillTarget { whom: target.whom, step, tree: target.tree });
            }
            if !diags.is_empty() || resolved.is_empty() {
                return (None, diags);
            }
            (Some(Action::Kill(resolved)), diags)
        }
        SpecKind::Block => match cannot_block(spec, rule, ast, options, query_file) {
            Some(diag) => (None, vec![diag]),
            None => (Some(Action::Block), Vec::new()),
        },
    }
}

const USE_KILL: &str = "use `action = \"kill\"`, which kills the process after the fact where it cannot act at the exec";

/// Why no mechanism can block `rule` (E0506), if none can: the deciding step is the
/// event query itself or the last positive step of a sequence, and it must be an exec
/// whose condition reads only what the exec hook fills.
fn cannot_block(spec: &ActionSpec, rule: &tir::Rule, ast: &ast::File, options: &Options, query_file: FileId) -> Option<Diagnostic> {
    let multi = match ast.query.as_ref().map(|piped| &piped.query) {
        Some(ast::Query::Multi(multi)) => Some(multi),
        _ => None,
    };
    let stated_here = |diag: Diagnostic| if spec.file == query_file { diag.secondary(spec.span, "`block` is stated here") } else { diag };
    let one_event =
        "`block` holds the exec of the deciding step while the rule decides, so one event must decide: an event query, or the last step of a sequence";
    let (deciding, keys, step_span): (&tir::EventQuery, &[ExprId], Option<Span>) = match &rule.query {
        tir::Query::Join(_) | tir::Query::Sample(_) => {
            let kind = if matches!(rule.query, tir::Query::Join(_)) { "join" } else { "sample" };
            let span = multi.map_or(spec.span, |multi| multi.keyword_span);
            let file = if multi.is_some() { query_file } else { spec.file };
            let diag = Diagnostic::new(Code::E0506, format!("a `{kind}` cannot block: no single event decides it"))
                .primary(span, format!("a {kind} matches once all its events are in, in any order"))
                .note(one_event)
                .help(USE_KILL)
                .in_file(file);
            return Some(if multi.is_some() { stated_here(diag) } else { diag });
        }
        tir::Query::Event(query) => (query, &[], None),
        tir::Query::Sequence(sequence) => {
            let last = sequence.steps.last()?;
            let ast_step = multi.and_then(|multi| multi.steps.get(last.source_step));
            if last.missing {
                let diag = Diagnostic::new(Code::E0506, "a sequence that ends with a missing-event step cannot block")
                    .primary(ast_step.map_or(last.span, |step| step.span), "the match is decided when this event has not come in time, after the fact")
                    .note(one_event)
                    .help(USE_KILL)
                    .in_file(query_file);
                return Some(stated_here(diag));
            }
            (&last.query, &last.keys[..], ast_step.map(|step| step.query.category.as_ref().map_or(step.query.span, |category| category.span)))
        }
    };
    if let Some(pipe) = ast.query.as_ref().and_then(|piped| piped.pipes.first()) {
        let diag = Diagnostic::new(Code::E0506, format!("a rule with pipes cannot block: `| {}` decides after the fact", pipe.name.text))
            .primary(pipe.span, "pipes run on matches once their events are in")
            .note(one_event)
            .help(format!("remove the pipes, or {USE_KILL}"))
            .in_file(query_file);
        return Some(stated_here(diag));
    }
    let process = &options.schema.lineage.process_category;
    let category = match &deciding.category {
        tir::Category::Named(name) if name == process => None,
        tir::Category::Named(name) => Some(name.as_str()),
        tir::Category::Any => Some("any"),
    };
    if let Some(category) = category {
        let span = step_span.or_else(|| match ast.query.as_ref().map(|piped| &piped.query) {
            Some(ast::Query::Event(query)) => Some(query.category.as_ref().map_or(query.span, |category| category.span)),
            _ => None,
        });
        let diag = Diagnostic::new(Code::E0506, format!("`block` on a `{category}` event: only a `{process}` event (an exec) can be blocked"))
            .primary(span.unwrap_or(deciding.span), format!("the deciding event is a `{category}` event"))
            .note("Kestrel blocks an exec inline, through fanotify (FAN_OPEN_EXEC_PERM), before the new program runs; no other event can be held back")
            .help(format!("block on a `{process}` step, or {USE_KILL}"))
            .in_file(query_file);
        return Some(stated_here(diag));
    }
    let roots: Vec<ExprId> = std::iter::once(deciding.condition).chain(keys.iter().copied()).collect();
    let (span, field, via) = first_late_field(rule, &roots, options)?;
    let label = match &via {
        Some(predicate) => format!("`{predicate}` reads `{field}`, which the exec hook does not fill"),
        None => "not filled by the exec hook".to_string(),
    };
    let diag = Diagnostic::new(Code::E0506, format!("`block` on a step that reads `{field}`, which is known only after the exec completes"))
        .primary(span, label)
        .note("the exec hook decides while the exec is paused, before the new program is loaded; it fills only the fields of `kestrel_bundle::enforce::EXEC_HOOK_FIELDS` (docs/enforcement.md)")
        .help(format!("use `action = \"kill\"`, which acts at the exec tracepoint, or drop the condition on `{field}`"))
        .in_file(query_file);
    Some(stated_here(diag))
}

/// The first field (in source order) that `roots` read and the exec hook does not
/// fill: its span, its name, and the hand-written predicate whose view reads it.
/// Lineage tests read the schema's process id fields; their subqueries are walked too
/// (conservatively: the runtime may run a source predicate on the hook's event).
fn first_late_field(rule: &tir::Rule, roots: &[ExprId], options: &Options) -> Option<(Span, String, Option<String>)> {
    let mut found: Vec<(Span, String, Option<String>)> = Vec::new();
    let mut seen = vec![false; rule.exprs.len()];
    let mut stack = roots.to_vec();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut seen[id.index()], true) {
            continue;
        }
        let expr = rule.expr(id);
        match &expr.kind {
            ExprKind::Field(path) if !exec_hook_fills(&path.name) => found.push((expr.span, path.name.clone(), None)),
            ExprKind::Call { func: Func::Declared(index), .. } => {
                let name = rule.declared.get(*index as usize);
                let declaration = name.and_then(|name| options.declarations.iter().find(|declaration| declaration.name.eq_ignore_ascii_case(name)));
                if let (Some(name), Some(field)) = (name, declaration.and_then(|declaration| declaration.view.iter().find(|field| !exec_hook_fills(field)))) {
                    found.push((expr.span, field.clone(), Some(name.clone())));
                }
            }
            ExprKind::Lineage { .. } => {
                let lineage = &options.schema.lineage;
                if let Some(field) = [&lineage.pid_field, &lineage.ppid_field].into_iter().find(|field| !exec_hook_fills(field)) {
                    found.push((expr.span, field.clone(), None));
                }
            }
            _ => {}
        }
        stack.extend(expr.kind.children());
    }
    found.into_iter().min_by_key(|(span, ..)| (span.start, span.end))
}

#[cfg(test)]
mod tests;
