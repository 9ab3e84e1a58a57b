//! The tricky cases of the interpreter, each next to the decision it pins down
//! (docs/semantics.md).

use super::*;
use crate::check::{self, Options};
use crate::dialect::{Dialect, EndgameCase};
use crate::functions::Declaration;
use crate::tir::{FunctionSemantics, Query, Relation};
use kestrel_bundle::schema::Schema;
use kestrel_bundle::semantics::Function;
use kestrel_bundle::semantics::functions::call;
use serde_json::json;
use std::net::IpAddr;

const ES: Dialect = Dialect::Elasticsearch;
const EG: Dialect = Dialect::Endgame;

/// Checks `text` (which must have no errors) against a built-in schema.
fn compile_with(text: &str, dialect: Dialect, case: EndgameCase, schema: &str, declarations: &[Declaration]) -> tir::Rule {
    let schema = Schema::builtin(schema).expect("built-in schema");
    let (ast, mut diags) = crate::parse::file(text, 0, dialect);
    let options = Options { schema: &schema, dialect, endgame_case: case, declarations };
    let (rule, check_diags) = check::rule(&ast, &options);
    diags.extend(check_diags);
    let errors: Vec<_> = diags.iter().filter(|diag| diag.is_error()).map(|diag| format!("{}: {}", diag.code, diag.message)).collect();
    assert!(errors.is_empty(), "`{text}`: {errors:?}");
    rule.expect("a rule")
}

fn compile(text: &str, dialect: Dialect) -> tir::Rule {
    compile_with(text, dialect, EndgameCase::Insensitive, "dynamic", &[])
}

/// The event query's condition, without the truthiness test of a bare value.
fn condition(rule: &tir::Rule) -> ExprId {
    let Query::Event(query) = &rule.query else { panic!("not an event query") };
    match &rule.expr(query.condition).kind {
        ExprKind::Truthy(inner) => *inner,
        _ => query.condition,
    }
}

fn env(event: &dyn Event) -> Env<'_> {
    Env { event, steps: &[], functions: &[], lineage: None }
}

/// Evaluates a condition (`any where ...` in Elasticsearch, bare in endgame) on a JSON event.
fn eval_on(text: &str, dialect: Dialect, event: serde_json::Value) -> Value {
    let rule = compile(text, dialect);
    let event = Value::from_json(&event);
    Interpreter::new(&rule).eval(condition(&rule), &env(&event))
}

fn es(condition: &str, event: serde_json::Value) -> Value {
    eval_on(&format!("any where {condition}"), ES, event)
}

fn eg(condition: &str, event: serde_json::Value) -> Value {
    eval_on(condition, EG, event)
}

fn eg_value(expression: &str) -> Value {
    let rule = compile(expression, EG);
    fold(&rule, condition(&rule)).expect("foldable")
}

const T: Value = Value::Bool(true);
const F: Value = Value::Bool(false);
const N: Value = Value::Null;

fn s(text: &str) -> Value {
    Value::Str(text.to_string())
}

fn ip(text: &str) -> Value {
    Value::Ip(text.parse().unwrap())
}

#[test]
fn three_valued_logic() {
    for (text, expected) in [
        ("x and true", N),
        ("x and false", F),
        ("x or true", T),
        ("x or false", N),
        ("not x", N),
        ("x == 1 or y == 1", T),
        ("(x == 1 and y == 1) or not (y == 1)", N),
    ] {
        assert_eq!(es(text, json!({"y": 1})), expected, "{text}");
    }
}

#[test]
fn truthiness_of_bare_values() {
    for (value, expected) in [
        (json!(null), N),
        (json!(""), F),
        (json!("a"), T),
        (json!(0), F),
        (json!(0.0), F),
        (json!(-1), T),
        (json!([]), F),
        (json!([false]), T),
        (json!({}), F),
        (json!({"a": 1}), T),
        (json!(false), F),
    ] {
        let rule = compile("x", EG);
        let Query::Event(query) = &rule.query else { unreachable!() };
        let event = Value::from_json(&json!({ "x": value }));
        assert_eq!(Interpreter::new(&rule).eval(query.condition, &env(&event)), expected, "{value}");
        assert_eq!(Interpreter::new(&rule).matches(query.condition, &env(&event)), expected == T);
    }
}

#[test]
fn missing_fields_and_paths() {
    let event = json!({"a": [{"b": 1}, {"b": 2}], "c": {"d": "x"}, "e.f": 3});
    assert_eq!(eg("a[1].b", event.clone()), Value::Long(2));
    assert_eq!(eg("a[5].b", event.clone()), N);
    assert_eq!(eg("c.d", event.clone()), s("x"));
    assert_eq!(eg("e.f", event.clone()), Value::Long(3));
    assert_eq!(eg("c[0]", event.clone()), N);
    assert_eq!(eg("nope", event), N);
}

#[test]
fn arrays_match_any_element() {
    let args = |items: serde_json::Value| json!({ "args": items });
    for (items, eq, ne, within, not_within) in [
        (json!(["b", "a"]), T, F, T, F),
        (json!(["b"]), F, T, F, T),
        (json!([null, "b"]), F, T, F, T),
        // No element: as if the field were missing.
        (json!([]), N, N, N, N),
        (json!([null]), N, N, N, N),
        (json!([["a"], "c"]), T, F, T, F),
    ] {
        assert_eq!(es(r#"args == "a""#, args(items.clone())), eq, "== {items}");
        assert_eq!(es(r#"args != "a""#, args(items.clone())), ne, "!= {items}");
        assert_eq!(es(r#"args in ("a", "z")"#, args(items.clone())), within, "in {items}");
        assert_eq!(es(r#"args not in ("a", "z")"#, args(items.clone())), not_within, "not in {items}");
    }
    // A mismatched element is null, which a matching one outranks.
    assert_eq!(es(r#"args == "a""#, args(json!([1, "a"]))), T);
    assert_eq!(es(r#"args == "a""#, args(json!([1, "b"]))), N);
    assert_eq!(es("args > 2", args(json!([1, 3]))), T);
    assert_eq!(es(r#"args : "A*""#, args(json!(["xa", "ab"]))), T);
    assert_eq!(es(r#"args regex "a.""#, args(json!(["xa", "ab"]))), T);
    assert_eq!(es(r#"startsWith(args, "x")"#, args(json!(["ya", "xb"]))), T);
    assert_eq!(es(r#"startsWith(args, "x")"#, args(json!([]))), N);
    // python's stringContains is false for a non-string, and so for an empty array.
    assert_eq!(eg(r#"stringContains(args, "x")"#, args(json!([]))), F);
    assert_eq!(eg("args == null", args(json!([]))), F);
    // Array against array: any pair.
    assert_eq!(es("args == other", json!({"args": ["a", "b"], "other": ["c", "b"]})), T);
}

#[test]
fn comparisons_of_mixed_types_are_null() {
    for (x, text) in [(json!("1"), "x == 1"), (json!("3"), "x < 5"), (json!(true), "x == 1"), (json!(1), "x == \"1\""), (json!({"a": 1}), "x == y")] {
        assert_eq!(es(text, json!({"x": x, "y": {"a": 1}})), N, "{text} with {x}");
    }
    assert_eq!(es("x == 1.0", json!({"x": 1})), T);
    assert_eq!(es("x < 1.5", json!({"x": 1})), T);
    assert_eq!(es("x == y", json!({"x": true, "y": true})), T);
    // Membership is two-valued once the subject is present.
    assert_eq!(es("x in (1, 2)", json!({"x": "1"})), F);
    assert_eq!(es("x not in (1, 2)", json!({"x": "1"})), T);
}

#[test]
fn strings_compare_by_folded_bytes() {
    let sensitive = |text: &str| eval_on(text, EG, json!({}));
    assert_eq!(sensitive(r#""Foo" < "foo""#), F, "endgame folds case");
    assert_eq!(es(r#""Foo" < "foo""#, json!({})), T);
    assert_eq!(es(r#""Z" < "a""#, json!({})), T);
    assert_eq!(es(r#""é" > "z""#, json!({})), T);
    assert_eq!(eg(r#""ÉCOLE" == "école""#, json!({})), T);
    assert_eq!(es(r#""ÉCOLE" == "école""#, json!({})), F);
    assert_eq!(es(r#"x in~ ("ÉCOLE")"#, json!({"x": "école"})), T);
}

#[test]
fn addresses_compare_as_addresses() {
    let event = |value: Value| Value::Object(vec![("x".to_string(), value)]);
    let rule = compile(r#"any where x == "10.0.0.1""#, ES);
    let id = condition(&rule);
    let interp = Interpreter::new(&rule);
    assert_eq!(interp.eval(id, &env(&event(ip("10.0.0.1")))), T);
    assert_eq!(interp.eval(id, &env(&event(ip("::ffff:10.0.0.1")))), T, "IPv4-mapped IPv6 is the IPv4 address");
    assert_eq!(interp.eval(id, &env(&event(ip("10.0.0.2")))), F);
    let rule = compile(r#"any where x == "not an address""#, ES);
    assert_eq!(Interpreter::new(&rule).eval(condition(&rule), &env(&event(ip("10.0.0.1")))), N);
    let rule = compile(r#"any where x > "::1" and x < "fe80::""#, ES);
    assert_eq!(Interpreter::new(&rule).eval(condition(&rule), &env(&event(ip("255.255.255.255")))), T, "IPv4 sorts as ::ffff:a.b.c.d");
    // A typed ip field against a literal: the checker parses the literal.
    let rule = compile_with(r#"network where source.ip == "::ffff:192.168.0.1""#, ES, EndgameCase::Insensitive, "linux", &[]);
    let event = Value::from_json(&json!({"source.ip": "192.168.0.1"}));
    assert_eq!(Interpreter::new(&rule).eval(condition(&rule), &env(&event)), T);
    // Wildcards read an address by its text.
    let rule = compile(r#"any where x : "10.*""#, ES);
    assert_eq!(Interpreter::new(&rule).eval(condition(&rule), &env(&event_of(ip("10.1.2.3")))), T);
}

#[test]
fn version_fields_compare_in_version_order() {
    let text = r#"
        name = "versions"
        category_field = "event.category"
        timestamp_field = "@timestamp"
        timestamp_unit = "ns"
        [fields]
        "event.category" = "keyword"
        "@timestamp" = "date"
        "version" = "version"
        "kw" = "keyword"
    "#;
    let schema = Schema::from_toml("versions", text).expect("a valid schema");
    let eval = |text: &str, version: &str| {
        let (ast, _) = crate::parse::file(&format!("any where {text}"), 0, ES);
        let options = Options { schema: &schema, dialect: ES, endgame_case: EndgameCase::Insensitive, declarations: &[] };
        let (rule, diags) = check::rule(&ast, &options);
        assert!(!diags.iter().any(|diag| diag.is_error()), "`{text}`: {diags:?}");
        let rule = rule.expect("a rule");
        let event = Value::from_json(&json!({"version": version, "kw": "2.0.0"}));
        Interpreter::new(&rule).eval(condition(&rule), &env(&event))
    };
    // The Elasticsearch QA suite's values (`sequenceWithVersionRangeCheck`, `...2`).
    for (version, greater, less) in [("1.5.0", F, F), ("1.2.4", F, T), ("1.11.3", T, F), ("bad", T, F), ("1.2.4-SNAPSHOT", F, T)] {
        assert_eq!(eval(r#"version > "1.5.0""#, version), greater, "{version} > 1.5.0");
        assert_eq!(eval(r#"version < "1.5.0""#, version), less, "{version} < 1.5.0");
    }
    assert_eq!(eval(r#"version == "1.2.4""#, "1.2.4"), T);
    assert_eq!(eval(r#"version != "1.2.4""#, "1.2.4+build"), T, "a version equals only the same string");
    assert_eq!(eval("kw < version", "10.0.0"), T, "a keyword against a version field is read as a version");
    assert_eq!(eval(r#"string(version) < "10.0.0""#, "2.0.0"), F, "`string()` gives a keyword, compared as text");
}

fn event_of(x: Value) -> Value {
    Value::Object(vec![("x".to_string(), x)])
}

#[test]
fn arithmetic() {
    let max = json!({"x": i64::MAX, "m": i64::MIN, "z": 0, "zf": 0.0});
    for (text, es_expected, eg_expected) in [
        ("-7 / 2", Value::Long(-3), Value::Long(-4)),
        ("7 / -2", Value::Long(-3), Value::Long(-4)),
        ("-7 % 2", Value::Long(-1), Value::Long(1)),
        ("7 % -2", Value::Long(1), Value::Long(-1)),
        ("-7.5 % 2", Value::Double(-1.5), Value::Double(0.5)),
        ("7.5 % -2", Value::Double(1.5), Value::Double(-0.5)),
        ("-7 / 2.0", Value::Double(-3.5), Value::Double(-3.5)),
        ("6 / 3", Value::Long(2), Value::Long(2)),
        ("x + 1", N, N),
        ("m - 1", N, N),
        ("x * 2", N, N),
        ("m / -1", N, N),
        ("m % -1", Value::Long(0), Value::Long(0)),
        ("-m", N, N),
        ("1 / z", N, N),
        ("1 % z", N, N),
        ("1.5 / zf", N, N),
        ("1.5 % zf", N, N),
        ("x + 0.0", Value::Double(i64::MAX as f64), Value::Double(i64::MAX as f64)),
        ("1 + y", N, N),
    ] {
        let es_rule = compile(&format!("any where {text} == 0"), ES);
        let eg_rule = compile(&format!("{text} == 0"), EG);
        let event = Value::from_json(&max);
        for (rule, expected) in [(es_rule, &es_expected), (eg_rule, &eg_expected)] {
            let ExprKind::Compare { lhs, .. } = rule.expr(condition(&rule)).kind else { panic!("compare") };
            assert_eq!(&Interpreter::new(&rule).eval(lhs, &env(&event)), expected, "{text}");
        }
    }
    assert_eq!(es("x + 1 == 2", json!({"x": "1"})), N, "strings are not numbers");
    assert_eq!(es("x + 1 == 2", json!({"x": true})), N, "booleans are not numbers");
}

#[test]
fn keywords_read_as_numbers() {
    let rule = compile_with("process where user.id >= 1000", ES, EndgameCase::Insensitive, "linux", &[]);
    let id = condition(&rule);
    assert!(matches!(rule.expr(id).kind, ExprKind::Compare { .. }));
    for (user, expected) in
        [(json!("1000"), T), (json!(" 1001 "), T), (json!("999.5"), F), (json!("1e4"), T), (json!("abc"), N), (json!("inf"), N), (json!(null), N)]
    {
        let event = Value::from_json(&json!({ "user.id": user }));
        assert_eq!(Interpreter::new(&rule).eval(id, &env(&event)), expected, "{user}");
    }
}

#[test]
fn regexes_are_anchored_as_the_node_says() {
    let whole = |text: &str, value: &str| es(text, json!({ "x": value }));
    assert_eq!(whole(r#"x regex "ab.""#, "abc"), T);
    assert_eq!(whole(r#"x regex "ab.""#, "abcd"), F, "Elasticsearch matches the whole value");
    assert_eq!(whole(r#"x regex "ab.""#, "xabc"), F);
    assert_eq!(whole(r#"x regex "a.c""#, "a\nc"), T, "`.` matches a newline");
    assert_eq!(whole(r#"x regex "AB.""#, "abc"), F);
    assert_eq!(whole(r#"x regex~ "AB.""#, "abc"), T);
    assert_eq!(whole(r#"x regex ("a|b", "c")"#, "b"), T, "alternations stay inside the anchors");
    assert_eq!(whole(r#"x regex "a|b""#, "ab"), F);
    let start = |text: &str, value: &str| eg(text, json!({ "x": value }));
    assert_eq!(start(r#"x regex "ab""#, "abcd"), T, "python re.match: a prefix");
    assert_eq!(start(r#"x regex "ab""#, "xab"), F);
    assert_eq!(start(r#"match(x, "AB")"#, "abcd"), T, "endgame folds case");
    assert_eq!(start(r#"match(x, "[a-z]{3}", "[0-9]+")"#, "9x"), T);
    assert_eq!(eg(r#"match(x, "a")"#, json!({"x": 1})), N, "not a string");
}

#[test]
fn wildcards() {
    let eg_sensitive = |text: &str, value: &str| {
        let rule = compile_with(text, EG, EndgameCase::Sensitive, "dynamic", &[]);
        let event = event_of(s(value));
        Interpreter::new(&rule).eval(condition(&rule), &env(&event))
    };
    assert_eq!(eg(r#"x == "A*C""#, json!({"x": "abxc"})), T);
    assert_eq!(eg_sensitive(r#"x == "A*C""#, "abxc"), F);
    assert_eq!(eg(r#"x == "a?c""#, json!({"x": "abc"})), F, "`?` is literal in endgame");
    assert_eq!(eg(r#"x == "a?c""#, json!({"x": "a?c"})), T);
    assert_eq!(eg(r#"x != "a*""#, json!({"x": "abc"})), F);
    assert_eq!(es(r#"x : "A?c""#, json!({"x": "abc"})), T, "`?` is one character in Elasticsearch");
    assert_eq!(es(r#"x like "A?c""#, json!({"x": "abc"})), F);
    assert_eq!(es(r#"x like~ "A?C*""#, json!({"x": "abcdef"})), T);
    assert_eq!(es(r#"x : "*""#, json!({"x": 5})), N, "only strings and addresses");
    assert_eq!(eg(r#"wildcard(x, "f*o*o*")"#, json!({"x": "FOO"})), T);
    assert_eq!(eg(r#"x == "É*""#, json!({"x": "école"})), T);
}

#[test]
fn array_functions_bind_elements() {
    let event = json!({"a": [{"user": "root", "props": [{"level": 1}, {"level": 2}]}, {"user": "guest", "props": [{"level": 1}]}]});
    for (text, expected) in [
        (r#"arraySearch(a, item, item.user == "root")"#, T),
        ("arraySearch(a, item, item.props[1].level == 4)", F),
        ("arrayCount(a, item, item.props[0].level == 1)", Value::Long(2)),
        ("arrayCount(a, item, arrayCount(item.props, p, p.level == 2) == 1)", Value::Long(1)),
        ("arraySearch(a, item, arraySearch(item.props, p, p.level == 2))", T),
        ("arraySearch(missing, item, true)", F),
        ("arrayCount(missing, item, true)", Value::Long(0)),
        ("arrayCount(a, item, item.nope == null)", Value::Long(2)),
    ] {
        assert_eq!(eg(text, event.clone()), expected, "{text}");
    }
    assert_eq!(es(r#"_arraysearch(a, $x, $x.user == "guest")"#, event), T);
    assert_eq!(eg(r#"arrayContains(a, "ROOT", 1)"#, json!({"a": ["root"]})), T);
    assert_eq!(eg("arrayContains(a, 2)", json!({"a": [1.0, 2.0]})), T);
    assert_eq!(eg("arrayContains(a, 3)", json!({"a": [1, "3"]})), F);
    assert_eq!(eg("arrayContains(a, 3)", json!({})), N);
}

#[test]
fn lineage_asks_the_environment() {
    let rule = compile(r#"process where descendant of [process where process_name == "sshd"]"#, EG);
    let Query::Event(query) = &rule.query else { unreachable!() };
    let interp = Interpreter::new(&rule);
    let event = Value::from_json(&json!({}));
    assert_eq!(interp.eval(query.condition, &env(&event)), N);
    let ancestor = Value::from_json(&json!({"process_name": "SSHD"}));
    let stranger = Value::from_json(&json!({"process_name": "bash"}));
    let lineage =
        |relation: Relation, predicate: &dyn Fn(&dyn Event) -> bool| relation == Relation::Descendant && predicate(&ancestor) && !predicate(&stranger);
    let env = Env { event: &event, steps: &[], functions: &[], lineage: Some(&lineage) };
    assert_eq!(interp.eval(query.condition, &env), T);
}

#[test]
fn steps_and_declared_functions() {
    let rule = compile("sequence with maxspan=1m [process where true] as e0 [process where process.name == e0.process.name]", ES);
    let Query::Sequence(sequence) = &rule.query else { panic!("sequence") };
    let (first, second) = (Value::from_json(&json!({"process": {"name": "sh"}})), Value::from_json(&json!({"process.name": "sh"})));
    let steps: [&dyn Event; 1] = [&first];
    let interp = Interpreter::new(&rule);
    let cond = sequence.steps[1].query.condition;
    assert!(interp.matches(cond, &Env { event: &second, steps: &steps, functions: &[], lineage: None }));
    assert_eq!(interp.eval(cond, &env(&second)), N, "no earlier step: null");

    let declarations = [Declaration::parse("reverse(keyword) -> keyword").unwrap()];
    let rule = compile_with(r#"reverse(x) == "cba""#, EG, EndgameCase::Insensitive, "dynamic", &declarations);
    let reverse = |args: &[Value]| match args {
        [Value::Str(text)] => Value::Str(text.chars().rev().collect()),
        _ => Value::Null,
    };
    let functions: [DeclaredFn; 1] = [&reverse];
    let event = event_of(s("abc"));
    let interp = Interpreter::new(&rule);
    assert!(interp.matches(condition(&rule), &Env { event: &event, steps: &[], functions: &functions, lineage: None }));
    assert_eq!(interp.eval(condition(&rule), &env(&event)), N, "an undeclared index is null");
    let rule = compile_with(r#"reverse("abc") == "cba""#, EG, EndgameCase::Insensitive, "dynamic", &declarations);
    assert_eq!(fold(&rule, condition(&rule)), None, "declared functions do not fold");
}

#[test]
fn folding_refuses_fields() {
    let rule = compile("x + 1 == 2", EG);
    assert_eq!(fold(&rule, condition(&rule)), None);
    assert_eq!(eg_value("1 + 2 * 3"), Value::Long(7));
    assert_eq!(eg_value(r#"concat("a", 1.5, true)"#), s("a1.5true"));
    assert_eq!(eg_value("null == null"), T);
    assert_eq!(eg_value("null < 1"), N);
}

fn py(func: Function, args: &[Value]) -> Value {
    call(func, args, Case::Insensitive, FunctionSemantics::Python)
}

fn py_cs(func: Function, args: &[Value]) -> Value {
    call(func, args, Case::Sensitive, FunctionSemantics::Python)
}

fn el(func: Function, args: &[Value]) -> Value {
    call(func, args, Case::Sensitive, FunctionSemantics::Elasticsearch)
}

fn el_ci(func: Function, args: &[Value]) -> Value {
    call(func, args, Case::Insensitive, FunctionSemantics::Elasticsearch)
}

fn l(value: i64) -> Value {
    Value::Long(value)
}

#[test]
fn between_differences() {
    let text = s("welcome to the planet");
    // Not found: python null, Elasticsearch "".
    assert_eq!(py(Function::Between, &[text.clone(), s("goodbye"), s("planet")]), N);
    assert_eq!(el(Function::Between, &[text.clone(), s("goodbye"), s("planet")]), s(""));
    assert_eq!(el(Function::Between, &[text.clone(), s("welcome"), s("village")]), s(""));
    // Empty bounds: python searches for them; Elasticsearch returns the source.
    assert_eq!(py(Function::Between, &[text.clone(), s(""), s("planet")]), s("welcome to the "));
    assert_eq!(el(Function::Between, &[text.clone(), s(""), s("planet")]), text);
    assert_eq!(el(Function::Between, &[s(""), s("a"), s("b")]), s(""));
    // Case and greed.
    assert_eq!(py(Function::Between, &[s("C:\\Windows\\System32\\cmd.exe"), s("system32\\"), s(".EXE")]), s("cmd"));
    assert_eq!(el(Function::Between, &[s("C:\\Windows\\System32\\cmd.exe"), s("system32\\"), s(".exe")]), s(""));
    assert_eq!(el_ci(Function::Between, &[s("C:\\Windows\\System32\\cmd.exe"), s("system32\\"), s(".exe")]), s("cmd"));
    assert_eq!(el(Function::Between, &[s("C:\\Windows\\System32\\cmd.exe"), s("\\"), s("\\"), T]), s("Windows\\System32"));
    assert_eq!(py(Function::Between, &[s("abcb"), s("a"), s("b"), T]), s("bc"));
    // Greedy with the right bound only before the left one: python null; Java throws.
    assert_eq!(py(Function::Between, &[s("xbay"), s("a"), s("b"), T]), N);
    assert_eq!(el(Function::Between, &[s("xbay"), s("a"), s("b"), T]), N);
    assert_eq!(py(Function::Between, &[N, s("a"), s("b")]), N);
    assert_eq!(el(Function::Between, &[N, s("a"), s("b")]), N);
    assert_eq!(el(Function::Between, &[s("ab"), N, s("b")]), N);
    // python reads a null greedy as false; Elasticsearch requires a boolean.
    assert_eq!(py(Function::Between, &[s("abcbd"), s("a"), s("b"), N]), s(""));
    assert_eq!(el(Function::Between, &[s("abcbd"), s("a"), s("b"), N]), N);
}

#[test]
fn string_contains_differences() {
    assert_eq!(py(Function::StringContains, &[N, s("a")]), F);
    assert_eq!(py(Function::StringContains, &[l(1), s("a")]), F);
    assert_eq!(el(Function::StringContains, &[N, s("a")]), N);
    assert_eq!(el(Function::StringContains, &[s("a"), N]), N);
    assert_eq!(py(Function::StringContains, &[s(""), s("")]), T);
    assert_eq!(el(Function::StringContains, &[s(""), s("")]), F);
    assert_eq!(el(Function::StringContains, &[s("abc"), s("")]), F);
    assert_eq!(py(Function::StringContains, &[s("ABC"), s("b")]), T);
    assert_eq!(py_cs(Function::StringContains, &[s("ABC"), s("b")]), F);
    assert_eq!(el_ci(Function::StringContains, &[s("ABC"), s("b")]), T);
}

#[test]
fn index_of_differences() {
    let domain = s("subdomain.example.com");
    assert_eq!(el(Function::IndexOf, &[domain.clone(), s(".")]), l(9));
    assert_eq!(el(Function::IndexOf, &[domain.clone(), s("."), l(10)]), l(17));
    // A negative start: Elasticsearch treats it as 0, python counts from the end.
    assert_eq!(el(Function::IndexOf, &[domain.clone(), s("."), l(-6)]), l(9));
    assert_eq!(py(Function::IndexOf, &[domain.clone(), s("."), l(-6)]), l(17));
    assert_eq!(py(Function::IndexOf, &[domain.clone(), s("."), l(-100)]), l(9));
    assert_eq!(el(Function::IndexOf, &[domain.clone(), s(""), l(-6)]), l(0));
    assert_eq!(el(Function::IndexOf, &[domain.clone(), s(""), l(10)]), l(10));
    // Past the end.
    assert_eq!(el(Function::IndexOf, &[domain.clone(), s("."), l(30)]), N);
    assert_eq!(py(Function::IndexOf, &[domain.clone(), s("."), l(30)]), N);
    assert_eq!(py(Function::IndexOf, &[s("abc"), s(""), l(3)]), l(3));
    assert_eq!(py(Function::IndexOf, &[s("abc"), s(""), l(10)]), N);
    assert_eq!(el(Function::IndexOf, &[s("abc"), s(""), l(10)]), l(3));
    // A null start: python 0, Elasticsearch (documented) null.
    assert_eq!(py(Function::IndexOf, &[domain.clone(), s("d"), N]), l(3));
    assert_eq!(el(Function::IndexOf, &[domain.clone(), s("d"), N]), N);
    assert_eq!(el(Function::IndexOf, &[domain.clone(), s("D")]), N);
    assert_eq!(el_ci(Function::IndexOf, &[domain.clone(), s("D")]), l(3));
    assert_eq!(py(Function::IndexOf, &[domain, s("D")]), l(3));
    assert_eq!(py(Function::IndexOf, &[s("ÿéa"), s("a")]), l(2), "positions count characters");
}

#[test]
fn number_differences() {
    let num = |semantics: fn(Function, &[Value]) -> Value, text: &str, base: Option<i64>| {
        let mut args = vec![s(text)];
        args.extend(base.map(l));
        semantics(Function::Number, &args)
    };
    for (text, base, python, elastic) in [
        ("314", None, l(314), l(314)),
        ("3.25", None, Value::Double(3.25), Value::Double(3.25)),
        ("+314", Some(10), l(314), l(314)),
        ("-3.25", Some(10), Value::Double(-3.25), Value::Double(-3.25)),
        ("0x1337", None, l(4919), l(4919)),
        ("0x1337", Some(16), l(4919), l(4919)),
        ("052403", Some(8), l(21763), l(21763)),
        ("52403", Some(7), l(12890), l(12890)),
        ("deadbeef", Some(16), N, l(3735928559)),
        ("12", Some(16), l(18), l(18)),
        // Whitespace: python's int() branch needs digits only; Java's double reads it.
        (" 12 ", None, N, Value::Double(12.0)),
        (" 1.5 ", None, Value::Double(1.5), Value::Double(1.5)),
        ("1e3", None, N, Value::Double(1000.0)),
        ("1.5e3", None, Value::Double(1500.0), Value::Double(1500.0)),
        ("1_0.5", None, Value::Double(10.5), N),
        ("1.5.5", None, N, N),
        ("abc.def", None, N, N),
        ("1.5d", None, N, Value::Double(1.5)),
        ("--5", None, N, N),
        ("0x10", Some(10), N, N),
        ("-0x10", None, N, N),
        ("99999999999999999999", None, N, Value::Double(1e20)),
        ("NaN", None, N, N),
        ("", None, N, N),
        (".5", None, Value::Double(0.5), Value::Double(0.5)),
    ] {
        assert_eq!(num(py, text, base), python, "python number({text:?}, {base:?})");
        assert_eq!(num(el, text, base), elastic, "Elasticsearch number({text:?}, {base:?})");
    }
    assert_eq!(py(Function::Number, &[N]), N);
    assert_eq!(el(Function::Number, &[s("0xdeadbeef"), N]), l(3735928559));
}

#[test]
fn string_and_concat_formats() {
    for (value, python, elastic) in [
        (Value::Double(1.0), "1.0", "1.0"),
        (Value::Double(2.1828), "2.1828", "2.1828"),
        (Value::Double(1e20), "1e+20", "1.0E20"),
        (Value::Double(1.5e-7), "1.5e-07", "1.5E-7"),
        (Value::Double(0.0001), "0.0001", "1.0E-4"),
        (Value::Double(0.001), "0.001", "0.001"),
        (Value::Double(1e7), "10000000.0", "1.0E7"),
        (Value::Double(1e16), "1e+16", "1.0E16"),
        (Value::Double(1234567.5), "1234567.5", "1234567.5"),
        (Value::Double(-0.0), "-0.0", "-0.0"),
        (Value::Double(f64::INFINITY), "inf", "Infinity"),
        (Value::Double(f64::NAN), "nan", "NaN"),
        (l(-42), "-42", "-42"),
        (T, "true", "true"),
        (ip("::1"), "::1", "::1"),
    ] {
        assert_eq!(py(Function::String, std::slice::from_ref(&value)), s(python), "python string({value:?})");
        assert_eq!(el(Function::String, std::slice::from_ref(&value)), s(elastic), "Elasticsearch string({value:?})");
    }
    assert_eq!(py(Function::String, &[N]), N);
    assert_eq!(el(Function::String, &[Value::Array(vec![s("a")])]), N);
    assert_eq!(el(Function::Concat, &[s("a"), Value::Double(42.5), l(1)]), s("a42.51"));
    assert_eq!(el(Function::Concat, &[s("a"), N]), N);
}

#[test]
fn substring_cidr_length_and_affixes() {
    let hello = s("hello world");
    assert_eq!(py(Function::Substring, &[hello.clone(), N, l(5)]), s("hello"));
    assert_eq!(el(Function::Substring, &[hello.clone(), N, l(5)]), hello, "Elasticsearch: a null start returns the source");
    assert_eq!(el(Function::Substring, &[hello.clone(), l(-5), l(-1)]), s("worl"));
    assert_eq!(py(Function::Substring, &[hello.clone(), l(20)]), s(""));
    assert_eq!(py(Function::Substring, &[hello.clone(), l(7), l(3)]), s(""));
    assert_eq!(el(Function::Substring, &[N, l(1)]), N);

    let block = s("10.0.0.0/8");
    assert_eq!(py(Function::CidrMatch, &[N, block.clone()]), F);
    assert_eq!(el(Function::CidrMatch, &[N, block.clone()]), N);
    assert_eq!(py(Function::CidrMatch, &[s("nope"), block.clone()]), F);
    assert_eq!(el(Function::CidrMatch, &[s("nope"), block.clone()]), N);
    assert_eq!(el(Function::CidrMatch, &[s("10.1.2.3"), s("192.168.0.0/16"), block.clone()]), T);
    assert_eq!(el(Function::CidrMatch, &[ip("::ffff:10.1.2.3"), block.clone()]), T, "IPv4-mapped");
    assert_eq!(el(Function::CidrMatch, &[ip("10.1.2.3"), s("::ffff:0:0/96")]), T);
    assert_eq!(el(Function::CidrMatch, &[s("10.1.2.3"), s("::/0")]), T, "Elasticsearch: IPv4 lives in ::ffff:0:0/96");
    assert_eq!(py(Function::CidrMatch, &[s("10.1.2.3"), s("::/0")]), F, "python: families never mix");
    assert_eq!(py(Function::CidrMatch, &[s("::ffff:10.1.2.3"), block.clone()]), F);
    assert_eq!(el(Function::CidrMatch, &[ip("fe80::1"), s("fe80::/10")]), T);
    assert_eq!(el(Function::CidrMatch, &[ip("fe80::1"), block.clone()]), F);
    assert_eq!(el(Function::CidrMatch, &[s("10.1.2.3"), s("10.1.2.3")]), T, "a bare address is a /32");
    assert_eq!(el(Function::CidrMatch, &[s("10.1.2.3"), s("0.0.0.0/0")]), T);
    assert_eq!(el(Function::CidrMatch, &[s("10.1.2.3"), N]), N);
    assert_eq!(py(Function::CidrMatch, &[s("10.1.2.3"), N, block.clone()]), T);
    assert_eq!(el(Function::CidrMatch, &[Value::Array(vec![s("1.1.1.1"), s("10.0.0.1")]), block]), T);

    assert_eq!(el(Function::Length, &[s("héllo")]), l(5));
    assert_eq!(el(Function::Length, &[Value::Array(vec![N, N])]), l(2));
    assert_eq!(py(Function::Length, &[N]), N);
    assert_eq!(py(Function::Length, &[l(3)]), N);

    assert_eq!(el(Function::StartsWith, &[s(""), s("")]), T);
    assert_eq!(el(Function::StartsWith, &[s("regsvr32.exe"), s("Regsvr32")]), F);
    assert_eq!(el_ci(Function::StartsWith, &[s("regsvr32.exe"), s("Regsvr32")]), T);
    assert_eq!(el(Function::EndsWith, &[s("a"), N]), N);
    assert_eq!(py(Function::EndsWith, &[l(1), s("1")]), N);
    assert_eq!(py(Function::EndsWith, &[ip("10.0.0.1"), s(".1")]), T);
    assert_eq!(py(Function::Safe, &[l(1)]), l(1));
}

#[test]
fn json_round_trip_and_events() {
    let json = json!({"a": [1, 2.5, "x", null, true], "b": {"c": {"d": 1}}, "big": 18446744073709551615u64});
    let value = Value::from_json(&json);
    assert_eq!(value.get("b.c.d"), l(1));
    assert_eq!(value.get("b.c"), Value::Object(vec![("d".to_string(), l(1))]));
    assert_eq!(value.get("a"), Value::Array(vec![l(1), Value::Double(2.5), s("x"), N, T]));
    assert_eq!(value.get("big"), Value::Double(18446744073709551615.0));
    assert_eq!(value.get("b.x"), N);
    let back = value.to_json();
    assert_eq!(back["a"], json["a"]);
    assert_eq!(back["b"], json["b"]);
    assert_eq!(ip("::1").to_json(), json!("::1"));
    assert_eq!(Value::Double(f64::NAN).to_json(), json!(null));
    assert_eq!(super::literal(&tir::Value::Ip("1.2.3.4".parse::<IpAddr>().unwrap())), ip("1.2.3.4"));
}

#[test]
fn nan_and_booleans_compare() {
    let event = Value::Object(vec![("x".to_string(), Value::Double(f64::NAN)), ("t".to_string(), T)]);
    for (text, expected) in [("x == x", F), ("x != x", T), ("x < 1", F), ("t == true", T), ("t != false", T)] {
        let rule = compile(&format!("any where {text}"), ES);
        assert_eq!(Interpreter::new(&rule).eval(condition(&rule), &env(&event)), expected, "{text}");
    }
}
