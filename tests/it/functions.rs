//! Function and constant-folding conformance with python `eql` 1.0.1's own tables,
//! `test_folding.toml` and `test_string_functions.toml` (AGPL test input, read from
//! `../shared/conformance/eql-python/` at test time and never copied here).
//!
//! Each expression is checked as a bare endgame condition against the dynamic schema,
//! then evaluated by [`eqlc::interp::fold`] and by the [`Interpreter`] on an empty
//! event; both must give the expected value (a commented-out `# expected` means null).
//! `verifier.failures` must be rejected by the checker. A table marked
//! `case_sensitive` runs with `case=sensitive`, one marked `case_insensitive` in the
//! default (folding) mode, and an unmarked one in both.
//!
//! Loop templates substitute `$name` with values of each listed type; python draws
//! random ones, these are fixed.

use eqlc::diag::Diagnostic;
use eqlc::interp::{self, Env, Interpreter, NoEvent, Value};
use eqlc::rules::FileKind;
use eqlc::tir::{ExprKind, Query};
use std::collections::HashMap;
use tests::{FileOptions, check_text, shared_dir};

/// Cases whose expectation python eql itself does not meet, with the reason. Each was
/// verified by running python eql 1.0.1. (None so far.)
const SKIPS: &[(&str, &str)] = &[];

/// Values substituted for each loop parameter type.
fn loop_values(ty: &str) -> &'static [&'static str] {
    match ty {
        "null" => &["null"],
        "bool" => &["true", "false"],
        "int" => &["0", "42", "-7"],
        "string" => &["\"\"", "\"abc\"", "\"Foo Bar\""],
        "float" => &["0.0", "3.14", "-2.5"],
        other => panic!("unknown loop parameter type `{other}`"),
    }
}

#[derive(Debug)]
enum Expect {
    Value(Option<toml::Value>),
    Rejected,
}

#[derive(Debug)]
struct Case {
    table: String,
    expression: String,
    expect: Expect,
    /// The case modes to run in: `true` is case-sensitive.
    sensitive: Vec<bool>,
}

fn substitute(text: &str, params: &HashMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in params {
        out = out.replace(&format!("${name}"), value);
    }
    out
}

fn tables(value: Option<&toml::Value>) -> Vec<&toml::Table> {
    match value {
        Some(toml::Value::Array(items)) => items.iter().filter_map(toml::Value::as_table).collect(),
        Some(toml::Value::Table(table)) => vec![table],
        _ => Vec::new(),
    }
}

/// Collects the cases of one table, as upstream's `extract_tests` does; the loops'
/// parameters are substituted into the tests of the loop body.
fn extract(table: &str, contents: &toml::Table, sensitive: &[bool], params: &HashMap<String, String>, out: &mut Vec<Case>) {
    // `fold.tests`; also a bare `tests` array (`startswith_case_sensitive`), which
    // upstream's harness does not read but which python eql passes as well.
    let fold_tests = contents.get("fold").and_then(toml::Value::as_table).and_then(|fold| fold.get("tests"));
    for test in tables(fold_tests).into_iter().chain(tables(contents.get("tests"))) {
        let expression = test.get("expression").and_then(toml::Value::as_str).expect("a test has an expression");
        out.push(Case {
            table: table.to_string(),
            expression: substitute(expression, params),
            expect: Expect::Value(test.get("expected").cloned()),
            sensitive: sensitive.to_vec(),
        });
    }
    let failures = contents.get("verifier").and_then(toml::Value::as_table).and_then(|verifier| verifier.get("failures"));
    for failure in tables(failures) {
        let expression = failure.get("expression").and_then(toml::Value::as_str).expect("a failure has an expression");
        out.push(Case { table: table.to_string(), expression: substitute(expression, params), expect: Expect::Rejected, sensitive: sensitive.to_vec() });
    }
    for body in tables(contents.get("loop")) {
        let param = body.get("param").and_then(toml::Value::as_table).expect("a loop has a param");
        let name = param.get("name").and_then(toml::Value::as_str).expect("a loop param has a name");
        let types = param.get("type").and_then(toml::Value::as_array).expect("a loop param has types");
        for ty in types.iter().filter_map(toml::Value::as_str) {
            for value in loop_values(ty) {
                let mut params = params.clone();
                params.insert(name.to_string(), value.to_string());
                extract(table, body, sensitive, &params, out);
            }
        }
    }
}

fn load(file: &str) -> Option<Vec<Case>> {
    let shared = shared_dir(&format!("python eql function conformance ({file})"))?;
    let path = shared.join("conformance/eql-python").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let document: toml::Table = toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut cases = Vec::new();
    for (table, contents) in &document {
        let Some(contents) = contents.as_table() else { continue };
        let flag = |key: &str| contents.get(key).and_then(toml::Value::as_bool) == Some(true);
        let sensitive = if flag("case_sensitive") {
            vec![true]
        } else if flag("case_insensitive") {
            vec![false]
        } else {
            vec![false, true]
        };
        extract(table, contents, &sensitive, &HashMap::new(), &mut cases);
    }
    Some(cases)
}

/// Checks `expression` as a bare endgame condition; the rule, or the checker's errors.
fn compile(expression: &str, sensitive: bool) -> Result<eqlc::tir::Rule, Vec<String>> {
    let header = if sensitive { "// eqlc: schema=dynamic dialect=endgame case=sensitive" } else { "// eqlc: schema=dynamic dialect=endgame" };
    let options = FileOptions::parse(header);
    let (_, checked, load_diags) = check_text("case.eql", expression, FileKind::Eql, &options);
    let errors: Vec<String> = load_diags
        .iter()
        .chain(checked.iter().flat_map(|rule| rule.diags.iter()))
        .filter(|diag| Diagnostic::is_error(diag))
        .map(|diag| format!("{}: {}", diag.code, diag.message))
        .collect();
    let rule = checked.into_iter().next().and_then(|checked| checked.rule);
    match rule {
        Some(rule) if errors.is_empty() => Ok(rule),
        _ => Err(errors),
    }
}

fn matches_expected(actual: &Value, expected: &Option<toml::Value>) -> bool {
    match (expected, actual) {
        (None, Value::Null) => true,
        (Some(toml::Value::Integer(expected)), Value::Long(actual)) => expected == actual,
        (Some(toml::Value::Float(expected)), Value::Double(actual)) => (expected - actual).abs() <= 1e-9 * expected.abs().max(1.0),
        (Some(toml::Value::String(expected)), Value::Str(actual)) => expected == actual,
        (Some(toml::Value::Boolean(expected)), Value::Bool(actual)) => expected == actual,
        _ => false,
    }
}

/// Runs one case in one mode; `Err` says what went wrong.
fn run(case: &Case, sensitive: bool) -> Result<(), String> {
    let compiled = compile(&case.expression, sensitive);
    let expected = match (&case.expect, compiled) {
        (Expect::Rejected, Err(_)) => return Ok(()),
        (Expect::Rejected, Ok(_)) => return Err("accepted, but python rejects it".to_string()),
        (Expect::Value(_), Err(errors)) => return Err(format!("rejected: {errors:?}")),
        (Expect::Value(expected), Ok(rule)) => (expected, rule),
    };
    let (expected, rule) = expected;
    let Query::Event(query) = &rule.query else { return Err("not an event query".to_string()) };
    // A bare value is tested for truthiness as a condition; the value itself is wanted.
    let expr = match &rule.expr(query.condition).kind {
        ExprKind::Truthy(inner) => *inner,
        _ => query.condition,
    };
    let folded = interp::fold(&rule, expr).ok_or("not foldable")?;
    let env = Env { event: &NoEvent, steps: &[], functions: &[], lineage: None };
    let evaluated = Interpreter::new(&rule).eval(expr, &env);
    if folded != evaluated {
        return Err(format!("fold gives {folded:?}, eval gives {evaluated:?}"));
    }
    if !matches_expected(&folded, expected) {
        return Err(format!("gives {folded:?}, expected {expected:?}"));
    }
    Ok(())
}

fn conformance(file: &str, minimum: usize) {
    let Some(cases) = load(file) else { return };
    let (mut passed, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        for &sensitive in &case.sensitive {
            let mode = if sensitive { "case-sensitive" } else { "case-insensitive" };
            let label = format!("[{}] `{}` ({mode})", case.table, case.expression);
            if let Some((_, reason)) = SKIPS.iter().find(|(expression, _)| *expression == case.expression) {
                eprintln!("SKIPPED {label}: {reason}");
                skipped += 1;
                continue;
            }
            match run(case, sensitive) {
                Ok(()) => passed += 1,
                Err(problem) => failures.push(format!("{label}: {problem}")),
            }
        }
    }
    eprintln!("{file}: {passed} passed, {skipped} skipped, {} failed", failures.len());
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), passed + skipped + failures.len(), failures.join("\n"));
    assert!(passed + skipped >= minimum, "{file}: only {} cases found; the table format may have changed", passed + skipped);
}

#[test]
fn python_folding_table() {
    conformance("test_folding.toml", 300);
}

#[test]
fn python_string_function_table() {
    conformance("test_string_functions.toml", 150);
}

#[test]
fn python_folding_table_through_the_bundle() {
    through_the_bundle("test_folding.toml", 300);
}

#[test]
fn python_string_function_table_through_the_bundle() {
    through_the_bundle("test_string_functions.toml", 150);
}

/// The same cases through the real chain: each expression becomes the key of a `count`
/// pipe (`any where true | count (EXPR)`), all of one mode in one bundle, replayed over
/// one event; the key in the alert must be the expected value. In the case-insensitive
/// mode `count` keys are compared case-folded (python folds them too), so strings are
/// compared without case there.
fn through_the_bundle(file: &str, minimum: usize) {
    let Some(cases) = load(file) else { return };
    let mut runs = 0;
    let mut failures = Vec::new();
    for sensitive in [false, true] {
        let header = if sensitive { "// eqlc: schema=dynamic dialect=endgame case=sensitive" } else { "// eqlc: schema=dynamic dialect=endgame" };
        let options = FileOptions::parse(header);
        let schema = options.schema();
        let selected: Vec<(&Case, &Option<toml::Value>)> = cases
            .iter()
            .filter(|case| case.sensitive.contains(&sensitive) && !SKIPS.iter().any(|(expression, _)| *expression == case.expression))
            .filter_map(|case| match &case.expect {
                Expect::Value(expected) => Some((case, expected)),
                Expect::Rejected => None,
            })
            .collect();
        let mut rules = Vec::new();
        for (idx, (case, _)) in selected.iter().enumerate() {
            let text = format!("any where true | count ({})", case.expression);
            let (_, mut checked, _) = check_text(&format!("case{idx}.eql"), &text, FileKind::Eql, &options);
            let mut rule = checked.remove(0);
            if rule.has_errors() {
                failures.push(format!("`{text}`: does not check: {:?}", rule.diags.iter().map(|diag| diag.code).collect::<Vec<_>>()));
                continue;
            }
            rule.meta.rule_id = Some(idx.to_string());
            rules.push(rule);
        }
        let (bytes, diags) = eqlc::driver::build(&rules, &schema, &[]);
        let bytes = bytes.unwrap_or_else(|| panic!("{file}: the cases do not build: {:?}", diags.iter().map(|diag| &diag.message).collect::<Vec<_>>()));
        let program = kestrel_rt::program::Program::load(&bytes).expect("the bundle loads");
        let mut alerts = Vec::new();
        let mut replay = kestrel_rt::replay::Replay::new(std::sync::Arc::new(program), kestrel_rt::replay::Options::default(), &mut alerts).unwrap();
        replay.read_all("event", &b"{\"@timestamp\": \"2024-01-01T00:00:00Z\"}\n"[..], &mut |bad| panic!("{bad}")).unwrap();
        replay.finish().unwrap();
        let mut keys: HashMap<usize, serde_json::Value> = HashMap::new();
        for line in String::from_utf8(alerts).unwrap().lines() {
            let alert: serde_json::Value = serde_json::from_str(line).unwrap();
            let idx: usize = alert["rule"]["id"].as_str().unwrap().parse().unwrap();
            keys.insert(idx, alert["kestrel"]["key"][0].clone());
        }
        for (idx, (case, expected)) in selected.iter().enumerate() {
            runs += 1;
            let mode = if sensitive { "case-sensitive" } else { "case-insensitive" };
            match keys.get(&idx) {
                Some(key) if key_matches(key, expected, sensitive) => {}
                Some(key) => failures.push(format!("[{}] `{}` ({mode}): the bundle gives {key}, expected {expected:?}", case.table, case.expression)),
                None if rules.iter().any(|rule| rule.meta.rule_id.as_deref() == Some(&idx.to_string())) => {
                    failures.push(format!("[{}] `{}` ({mode}): no alert", case.table, case.expression))
                }
                None => {}
            }
        }
    }
    eprintln!("{file} through the bundle: {runs} runs, {} failed", failures.len());
    assert!(failures.is_empty(), "{} of {runs} runs failed:\n{}", failures.len(), failures.join("\n"));
    assert!(runs >= minimum, "{file}: only {runs} runs");
}

/// A `count` key (JSON) against the table's expected value.
fn key_matches(key: &serde_json::Value, expected: &Option<toml::Value>, sensitive: bool) -> bool {
    match (expected, key) {
        (None, serde_json::Value::Null) => true,
        (Some(toml::Value::Integer(expected)), key) => key.as_i64() == Some(*expected) && !key.is_f64(),
        (Some(toml::Value::Float(expected)), key) => {
            key.is_f64() && key.as_f64().is_some_and(|actual| (expected - actual).abs() <= 1e-9 * expected.abs().max(1.0))
        }
        (Some(toml::Value::String(expected)), serde_json::Value::String(actual)) => {
            if sensitive {
                expected == actual
            } else {
                expected.to_lowercase() == actual.to_lowercase()
            }
        }
        (Some(toml::Value::Boolean(expected)), serde_json::Value::Bool(actual)) => expected == actual,
        _ => false,
    }
}
