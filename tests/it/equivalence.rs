//! Compiled Wasm predicates agree with the reference interpreter (docs/semantics.md).
//!
//! A property test generates random conditions over a fixed set of fields of every
//! type (and untyped dynamic fields, so run-time type mismatches happen), in both
//! dialects and both endgame case modes, and random events. Each condition is checked
//! by the real checker (texts it rejects are counted and skipped), compiled into one
//! bundle with one rule per condition, and run by `kestrel-rt`'s engine over the
//! events. Every condition is compiled twice, as itself and negated, so the engine's
//! alerts give its three-valued answer: true (the rule alerts), false (its negation
//! does), or null (neither). That answer must equal the interpreter's.
//!
//! `PROPTEST_CASES` raises the number of cases (bundles); the default keeps the suite
//! fast in debug builds. Deterministic regressions live in
//! `tests/data/equivalence/cases.toml` and run through both engines too.

use eqlc::check::{self, Options};
use eqlc::dialect::{Dialect, EndgameCase};
use eqlc::emit::{self, Input};
use eqlc::interp::{Env, Interpreter, Value, logic};
use eqlc::rules::RuleMeta;
use eqlc::source::{SourceMap, Span};
use eqlc::tir;
use kestrel_bundle::schema::Schema;
use kestrel_rt::engine::{Alert, Engine, Event};
use kestrel_rt::program::Program;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const SCHEMA: &str = r#"
name = "equivalence"
category_field = "event.category"
timestamp_field = "@timestamp"
timestamp_unit = "ns"
dynamic = true

[fields]
"event.category" = "keyword"
"@timestamp" = "date"
"kw" = "keyword"
"kw2" = "keyword"
"num" = "long"
"num2" = "long"
"dbl" = "double"
"addr" = "ip"
"addr2" = "ip"
"flag" = "boolean"
"kws" = "keyword[]"
"nums" = "long[]"
"flags" = "boolean[]"
"addrs" = "ip[]"
"when" = "date"
"when2" = "date"
"ver" = "version"
"ver2" = "version"
"vers" = "version[]"
"#;

fn schema() -> Schema {
    Schema::from_toml("equivalence", SCHEMA).expect("the test schema is valid")
}

/// A dialect and, for endgame, its case mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Es,
    Endgame,
    EndgameSensitive,
}

impl Mode {
    fn dialect(self) -> Dialect {
        match self {
            Mode::Es => Dialect::Elasticsearch,
            Mode::Endgame | Mode::EndgameSensitive => Dialect::Endgame,
        }
    }

    fn case(self) -> EndgameCase {
        match self {
            Mode::EndgameSensitive => EndgameCase::Sensitive,
            _ => EndgameCase::Insensitive,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Es => "elasticsearch",
            Mode::Endgame => "endgame",
            Mode::EndgameSensitive => "endgame-sensitive",
        }
    }

    fn parse(text: &str) -> Mode {
        match text {
            "elasticsearch" => Mode::Es,
            "endgame" => Mode::Endgame,
            "endgame-sensitive" => Mode::EndgameSensitive,
            other => panic!("unknown dialect `{other}` (elasticsearch, endgame, endgame-sensitive)"),
        }
    }

    fn es(self) -> bool {
        self == Mode::Es
    }
}

// ---------------------------------------------------------------------------------
// Conditions

/// Writes a string literal.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            _ => out.push(ch),
        }
    }
    out.push('"');
    out
}

const STRINGS: &[&str] = &[
    "",
    "a",
    "abc",
    "ABC",
    "Abc",
    "b",
    "a*",
    "*c",
    "a?c",
    "İ",
    "i̇",
    "i",
    "I",
    "ß",
    "SS",
    "ss",
    "K",
    "\u{212A}",
    "\u{1E9E}",
    "k",
    "1",
    "12",
    "-1",
    "1.5",
    " 12 ",
    "0x1f",
    "1e3",
    "1.2.3.4",
    "::1",
    "::ffff:1.2.3.4",
    "10.0.0.1",
    "foo bar",
    "é",
    "É",
    "a\nb",
    "true",
    "x.y",
];
const PATTERNS: &[&str] = &[
    "*",
    "a*",
    "*c",
    "*b*",
    "a?c",
    "?",
    "*İ*",
    "ß*",
    "*k",
    "\u{212A}*",
    "*\u{1E9E}",
    "1*",
    "a*c",
    "*.*.*.*",
    "10.*",
    "",
    "A*B*C",
    "*::*",
    "i̇*",
    "?b?",
    "*\n*",
    "abc",
];
const REGEXES: &[&str] = &["a.*", ".*b.*", "[0-9]+", "abc", "İ", "1\\.2.*", ".", "ß|ss", "[a-z]*", "a", ".*:.*", "(?s).+"];
const ADDRESSES: &[&str] = &["1.2.3.4", "10.0.0.1", "::1", "::ffff:1.2.3.4", "fe80::1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "1.2.0.0"];
const BLOCKS: &[&str] = &["10.0.0.0/8", "1.2.3.0/24", "::/0", "0.0.0.0/0", "::ffff:0:0/96", "fe80::/10", "2001:db8::/32", "1.2.3.4", "::1"];
/// Date literals: RFC 3339 strings, and numbers (epoch milliseconds).
const DATES: &[&str] = &["\"2024-05-04T12:00:00.001Z\"", "\"2024-05-04\"", "\"2024-05-04T12:00:00Z\"", "1714824000001", "0", "\"1970-01-01T00:00:00Z\""];
/// Versions, valid and not, as literals and as values of version fields.
const VERSIONS: &[&str] = &[
    "1.5.0",
    "1.11.3",
    "1.2.4",
    "1.2.4-SNAPSHOT",
    "1.2.4-snapshot",
    "bad",
    "1.2",
    "1.2.0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-a-b",
    "1.0.0-a.b",
    "1.0.0-RC1",
    "1.0.0+b",
    "1.0.0",
    "10.0.0",
    "1.02",
    "",
];
const NUMBERS: &[&str] =
    &["0", "1", "-1", "2", "3", "12", "1000", "9223372036854775807", "-9223372036854775807", "1.5", "-2.5", "0.0", "100000000000000000000.0", "0.1", "3.0"];

fn pick(items: &'static [&'static str]) -> BoxedStrategy<&'static str> {
    proptest::sample::select(items).boxed()
}

fn string_literal() -> BoxedStrategy<String> {
    pick(STRINGS).prop_map(quote).boxed()
}

/// Strategies for expressions of each kind, at one depth, with or without a loop
/// variable in scope.
#[derive(Clone)]
struct Kinds {
    boolean: BoxedStrategy<String>,
    string: BoxedStrategy<String>,
    number: BoxedStrategy<String>,
    address: BoxedStrategy<String>,
    /// Version fields and literals (comparisons with them are in version order).
    version: BoxedStrategy<String>,
}

struct Grammar {
    mode: Mode,
    /// The loop variable as written (`$x`, or `x` in endgame `arraySearch`).
    var: Option<&'static str>,
}

impl Grammar {
    fn leaves(&self) -> Kinds {
        // The loop variable, when in scope, is read often: itself, and a field below it
        // (elements of `objs` are objects).
        let var = self.var;
        let fields = |names: &[&str], below: &str| -> BoxedStrategy<String> {
            let mut all: Vec<String> = names.iter().map(|name| name.to_string()).collect();
            if let Some(var) = var {
                all.extend([var.to_string(), var.to_string(), var.to_string(), format!("{var}.{below}")]);
            }
            proptest::sample::select(all).boxed()
        };
        let string_fields = fields(&["kw", "kw2", "dyn1", "dyn2", "kws", "kws[0]", "obj.a", "dyn1[0]"], "a");
        let number_fields = fields(&["num", "num2", "dbl", "nums", "nums[1]", "dyn1", "dyn2", "obj.n"], "n");
        let address_fields = fields(&["addr", "addr2", "addrs", "dyn1"], "a");
        let bool_fields = fields(&["flag", "flags", "dyn1", "dyn2", "flags[0]"], "n");
        Kinds {
            boolean: prop_oneof![3 => bool_fields, 1 => Just("true".to_string()), 1 => Just("false".to_string())].boxed(),
            string: prop_oneof![3 => string_fields, 2 => string_literal()].boxed(),
            number: prop_oneof![3 => number_fields, 2 => pick(NUMBERS).prop_map(str::to_string)].boxed(),
            address: prop_oneof![3 => address_fields, 1 => pick(ADDRESSES).prop_map(quote)].boxed(),
            version: prop_oneof![3 => pick(&["ver", "ver2", "vers", "vers[0]"]).prop_map(str::to_string), 2 => pick(VERSIONS).prop_map(quote)].boxed(),
        }
    }

    /// Expressions one level above `below`. `bodies` gives the conditions of loop
    /// bodies (with the loop variable in scope), when loops are allowed here.
    fn level(&self, below: &Kinds, bodies: Option<&Bodies>) -> Kinds {
        let es = self.mode.es();
        let Kinds { boolean: b, string: s, number: n, address: a, version: v } = below.clone();
        let tilde = if es { prop_oneof![Just(""), Just("~")].boxed() } else { Just("").boxed() };
        // Any value: for deliberate mismatches.
        let any = prop_oneof![3 => s.clone(), 3 => n.clone(), 3 => a.clone(), 3 => b.clone(), 1 => v.clone()].boxed();

        let compare_op = pick(&["==", "!=", "<", "<=", ">", ">="]);
        let eq_op = pick(if es { &["==", "!="] } else { &["==", "!=", "="] });
        let date = prop_oneof![2 => pick(&["when", "when2"]).prop_map(str::to_string), 1 => pick(DATES).prop_map(str::to_string)];
        let compare = prop_oneof![
            1 => (pick(&["when", "when2"]), compare_op.clone(), date).prop_map(|(l, op, r)| format!("{l} {op} ({r})")),
            3 => (s.clone(), compare_op.clone(), s.clone()).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            3 => (n.clone(), compare_op.clone(), n.clone()).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            2 => (a.clone(), compare_op.clone(), a.clone()).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            2 => (v.clone(), compare_op.clone(), prop_oneof![3 => v.clone(), 1 => s.clone()]).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            1 => (s.clone(), compare_op.clone(), v.clone()).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            1 => (b.clone(), eq_op.clone(), b.clone()).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            2 => (any.clone(), compare_op.clone(), any.clone()).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            1 => (any.clone(), eq_op.clone()).prop_map(|(l, op)| format!("({l}) {op} null")),
        ];

        let patterns = proptest::collection::vec(pick(PATTERNS).prop_map(quote), 1..3).prop_map(|items| match items.as_slice() {
            [one] => one.clone(),
            _ => format!("({})", items.join(", ")),
        });
        let regexes = proptest::collection::vec(pick(REGEXES).prop_map(|text| format!("\"\"\"{text}\"\"\"")), 1..3).prop_map(|items| match items.as_slice() {
            [one] => one.clone(),
            _ => format!("({})", items.join(", ")),
        });
        let subject = prop_oneof![3 => s.clone(), 1 => a.clone(), 1 => any.clone()].boxed();
        let matching = if es {
            prop_oneof![
                (subject.clone(), pick(&[":", "like", "like~"]), patterns.clone()).prop_map(|(x, op, p)| format!("({x}) {op} {p}")),
                (subject.clone(), pick(&["regex", "regex~"]), regexes.clone()).prop_map(|(x, op, p)| format!("({x}) {op} {p}")),
            ]
            .boxed()
        } else {
            prop_oneof![
                (subject.clone(), pick(&[":", "like"]), patterns.clone()).prop_map(|(x, op, p)| format!("({x}) {op} {p}")),
                (subject.clone(), eq_op.clone(), pick(PATTERNS)).prop_map(|(x, op, p)| format!("({x}) {op} {}", quote(p))),
                (pick(PATTERNS), eq_op.clone(), subject.clone()).prop_map(|(p, op, x)| format!("{} {op} ({x})", quote(p))),
                (subject.clone(), proptest::collection::vec(pick(PATTERNS).prop_map(quote), 1..3))
                    .prop_map(|(x, p)| format!("wildcard({x}, {})", p.join(", "))),
                (subject.clone(), pick(&["match", "matchLite"]), proptest::collection::vec(pick(REGEXES).prop_map(quote), 1..3))
                    .prop_map(|(x, f, p)| format!("{f}({x}, {})", p.join(", "))),
            ]
            .boxed()
        };

        let set_item = prop_oneof![3 => string_literal(), 2 => pick(NUMBERS).prop_map(str::to_string), 1 => pick(ADDRESSES).prop_map(quote), 1 => pick(&["true", "false"]).prop_map(str::to_string)];
        let set_op = pick(if es { &["in", "not in", "in~", "not in~"] } else { &["in", "not in"] });
        let membership =
            (any.clone(), set_op, proptest::collection::vec(set_item, 1..4)).prop_map(|(x, op, items)| format!("({x}) {op} ({})", items.join(", ")));

        let string_pred = (
            pick(&["startsWith", "endsWith", "stringContains"]),
            tilde.clone(),
            subject.clone(),
            prop_oneof![3 => string_literal(), 1 => s.clone(), 1 => any.clone()],
        )
            .prop_map(|(f, t, x, y)| format!("{f}{t}({x}, {y})"));
        let cidr = (prop_oneof![2 => a.clone(), 1 => s.clone(), 1 => any.clone()], proptest::collection::vec(pick(BLOCKS).prop_map(quote), 1..3))
            .prop_map(|(x, blocks)| format!("cidrMatch({x}, {})", blocks.join(", ")));
        let arrays = pick(&["kws", "nums", "flags", "addrs", "dyn1", "dyn2", "objs", "kw"]);
        let array_contains = (arrays.clone(), proptest::collection::vec(any.clone(), 1..3)).prop_map(|(x, v)| format!("arrayContains({x}, {})", v.join(", ")));

        let logic = prop_oneof![
            (b.clone(), b.clone()).prop_map(|(l, r)| format!("({l}) and ({r})")),
            (b.clone(), b.clone()).prop_map(|(l, r)| format!("({l}) or ({r})")),
            b.clone().prop_map(|x| format!("not ({x})")),
            (b.clone(), b.clone(), b.clone()).prop_map(|(x, y, z)| format!("({x}) and ({y}) or not ({z})")),
        ];

        let mut boolean = vec![
            (4, compare.boxed()),
            (3, matching),
            (2, membership.boxed()),
            (2, string_pred.boxed()),
            (1, cidr.boxed()),
            (3, logic.boxed()),
            (1, b.clone()),
            (1, any.clone()),
        ];
        if !es {
            boolean.push((1, array_contains.boxed()));
        }
        if let Some(bodies) = bodies {
            // `_arraysearch` binds `$x`; endgame's `arraySearch` binds a bare name.
            let dollar = (arrays.clone(), bodies.dollar.boolean.clone()).prop_map(|(arr, cond)| format!("_arraysearch({arr}, $x, {cond})"));
            boolean.push((2, dollar.boxed()));
            if let Some(bare) = &bodies.bare {
                let search = (arrays.clone(), bare.boolean.clone()).prop_map(|(arr, cond)| format!("arraySearch({arr}, x, {cond})"));
                boolean.push((1, search.boxed()));
            }
        }
        let boolean = proptest::strategy::Union::new_weighted(boolean).boxed();

        let substring = (s.clone(), n.clone(), proptest::option::of(n.clone())).prop_map(|(x, i, j)| match j {
            Some(j) => format!("substring({x}, {i}, {j})"),
            None => format!("substring({x}, {i})"),
        });
        let between = (tilde.clone(), s.clone(), string_literal(), string_literal(), proptest::option::of(pick(&["true", "false"]))).prop_map(
            |(t, x, l, r, g)| match g {
                Some(g) => format!("between{t}({x}, {l}, {r}, {g})"),
                None => format!("between{t}({x}, {l}, {r})"),
            },
        );
        let concat = proptest::collection::vec(any.clone(), 1..4).prop_map(|items| format!("concat({})", items.join(", ")));
        let string = prop_oneof![
            2 => s.clone(),
            1 => substring,
            1 => between,
            1 => concat,
            1 => any.clone().prop_map(|x| format!("string({x})")),
        ]
        .boxed();

        let arith_op = pick(&["+", "-", "*", "/", "%"]);
        let mut number = vec![
            (3, n.clone()),
            (3, (n.clone(), arith_op, n.clone()).prop_map(|(l, op, r)| format!("({l}) {op} ({r})")).boxed()),
            (1, n.clone().prop_map(|x| format!("-({x})")).boxed()),
            (1, prop_oneof![s.clone(), any.clone()].prop_map(|x| format!("length({x})")).boxed()),
            (
                1,
                (tilde, s.clone(), s.clone(), proptest::option::of(n.clone()))
                    .prop_map(|(t, x, y, i)| match i {
                        Some(i) => format!("indexOf{t}({x}, {y}, {i})"),
                        None => format!("indexOf{t}({x}, {y})"),
                    })
                    .boxed(),
            ),
            (
                1,
                (s.clone(), proptest::option::of(pick(&["10", "16", "2", "0"])))
                    .prop_map(|(x, base)| match base {
                        Some(base) => format!("number({x}, {base})"),
                        None => format!("number({x})"),
                    })
                    .boxed(),
            ),
            (1, (pick(&["add", "subtract", "multiply", "divide", "modulo"]), n.clone(), n.clone()).prop_map(|(f, l, r)| format!("{f}({l}, {r})")).boxed()),
        ];
        if let Some(bare) = bodies.and_then(|bodies| bodies.bare.as_ref()) {
            number.push((1, (arrays, bare.boolean.clone()).prop_map(|(arr, cond)| format!("arrayCount({arr}, x, {cond})")).boxed()));
        }
        let number = proptest::strategy::Union::new_weighted(number).boxed();

        Kinds { boolean, string, number, address: a, version: v }
    }

    /// Expressions up to `depth` levels deep.
    fn build(&self, depth: u32, bodies: Option<&[Bodies]>) -> Vec<Kinds> {
        let mut levels = vec![self.leaves()];
        for level in 0..depth as usize {
            let next = self.level(&levels[level], bodies.map(|bodies| &bodies[level]));
            levels.push(next);
        }
        levels
    }
}

/// Loop bodies: with `$x` in scope, and (endgame) with `x`.
struct Bodies {
    dollar: Kinds,
    bare: Option<Kinds>,
}

/// Conditions of a mode: up to three levels of operators, with array loops whose
/// bodies have their variable in scope.
fn conditions(mode: Mode) -> BoxedStrategy<String> {
    const DEPTH: u32 = 3;
    let dollar = Grammar { mode, var: Some("$x") }.build(DEPTH, None);
    let bare = (!mode.es()).then(|| Grammar { mode, var: Some("x") }.build(DEPTH, None));
    let bodies: Vec<Bodies> =
        (0..DEPTH as usize).map(|level| Bodies { dollar: dollar[level].clone(), bare: bare.as_ref().map(|bare| bare[level].clone()) }).collect();
    let levels = Grammar { mode, var: None }.build(DEPTH, Some(&bodies));
    let top = &levels[DEPTH as usize];
    prop_oneof![1 => levels[1].boolean.clone(), 2 => levels[2].boolean.clone(), 2 => top.boolean.clone()].boxed()
}

/// One rule to generate: its mode, category and condition.
#[derive(Clone, Debug)]
struct RuleCase {
    mode: Mode,
    category: &'static str,
    condition: String,
}

fn rule_cases(count: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<RuleCase>> {
    let categories = pick(&["any", "any", "process", "file"]);
    let one = |mode: Mode| (categories.clone(), conditions(mode)).prop_map(move |(category, condition)| RuleCase { mode, category, condition });
    let rule = prop_oneof![one(Mode::Es), one(Mode::Endgame), one(Mode::EndgameSensitive)];
    proptest::collection::vec(rule, count).boxed()
}

// ---------------------------------------------------------------------------------
// Events

fn ip(text: &str) -> Value {
    Value::Ip(text.parse::<IpAddr>().expect("a valid address"))
}

const EVENT_STRINGS: &[&str] = &[
    "",
    "a",
    "abc",
    "ABC",
    "Abc",
    "aXc",
    "b",
    "xbx",
    "a*",
    "İ",
    "i̇",
    "i̇x",
    "i",
    "I",
    "ß",
    "SS",
    "ss",
    "Straße",
    "STRASSE",
    "K",
    "\u{212A}",
    "\u{1E9E}",
    "k",
    "1",
    "12",
    "-1",
    "1.5",
    " 12 ",
    "0x1f",
    "1e3",
    "1.2.3.4",
    "::1",
    "::ffff:1.2.3.4",
    "10.0.0.1",
    "not an address",
    "foo bar",
    "é",
    "É",
    "a\nb",
    "\n",
    "true",
    "x.y",
    "1_000",
    "٣",
    "𝔘nicode",
    "a?c",
    "ab",
    "ba",
];

fn string_value() -> BoxedStrategy<Value> {
    pick(EVENT_STRINGS).prop_map(|text| Value::Str(text.to_string())).boxed()
}

fn long_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (-3i64..15).prop_map(Value::Long),
        1 => proptest::sample::select(vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, 1000, -1000, 1 << 53, (1 << 53) + 1]).prop_map(Value::Long),
    ]
    .boxed()
}

fn double_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => proptest::sample::select(vec![0.0, -0.0, 1.5, -2.5, 3.0, 0.1, 1e20, -1e20, 1e-7, 12.0, 9.223372036854776e18, f64::MAX, f64::MIN_POSITIVE]).prop_map(Value::Double),
        1 => (-1e6f64..1e6).prop_map(Value::Double),
    ]
    .boxed()
}

fn address_value() -> BoxedStrategy<Value> {
    let addresses = [
        "1.2.3.4",
        "10.0.0.1",
        "10.1.2.3",
        "::1",
        "::ffff:1.2.3.4",
        "::ffff:10.0.0.1",
        "fe80::1",
        "0.0.0.0",
        "255.255.255.255",
        "2001:db8::1",
        "1.2.0.0",
        "::",
    ];
    prop_oneof![
        3 => proptest::sample::select(addresses.to_vec()).prop_map(ip),
        // Event sources that do not parse addresses hand over strings.
        1 => proptest::sample::select(addresses.to_vec()).prop_map(|text| Value::Str(text.to_string())),
    ]
    .boxed()
}

/// A date as the runtime holds it: nanoseconds since the epoch (or, when the source
/// value is no date, the value as it is).
fn date_value() -> BoxedStrategy<Value> {
    let instants = vec![1_714_824_000_001_000_000i64, 1_714_824_000_000_000_000, 1_714_780_800_000_000_000, 0, -1, 1_714_824_000_001_000_001];
    prop_oneof![4 => proptest::sample::select(instants).prop_map(Value::Long), 1 => string_value()].boxed()
}

/// A version field's value: a version string, valid or not, or another string.
fn version_value() -> BoxedStrategy<Value> {
    prop_oneof![4 => pick(VERSIONS).prop_map(|text| Value::Str(text.to_string())), 1 => string_value()].boxed()
}

fn bool_value() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::Bool).boxed()
}

fn scalar_value() -> BoxedStrategy<Value> {
    prop_oneof![3 => string_value(), 2 => long_value(), 1 => double_value(), 1 => address_value(), 1 => bool_value()].boxed()
}

/// An array of `element`s, with null elements, empty arrays and nesting.
fn array_of(element: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    let item = prop_oneof![6 => element.clone(), 1 => Just(Value::Null)];
    let nested = proptest::collection::vec(item.clone(), 0..3).prop_map(Value::Array);
    proptest::collection::vec(prop_oneof![8 => item, 1 => nested], 0..4).prop_map(Value::Array).boxed()
}

/// Any value at all: what a dynamic field may hold.
fn dynamic_value() -> BoxedStrategy<Value> {
    let object = proptest::collection::vec((pick(&["a", "n"]), scalar_value()), 0..2)
        .prop_map(|fields| Value::Object(fields.into_iter().map(|(key, value)| (key.to_string(), value)).collect()));
    prop_oneof![8 => scalar_value(), 4 => array_of(scalar_value()), 1 => object].boxed()
}

/// A field's value: usually of its type, sometimes missing, null or of another type.
fn field_value(typed: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![8 => typed.prop_map(Some), 1 => Just(None), 1 => Just(Some(Value::Null)), 1 => dynamic_value().prop_map(Some)].boxed()
}

#[derive(Clone, Debug)]
struct TestEvent {
    categories: Vec<&'static str>,
    /// The event as the interpreter reads it.
    object: Value,
}

fn event() -> BoxedStrategy<TestEvent> {
    let object_value = (field_value(string_value()), field_value(long_value())).prop_map(|(a, n)| {
        let mut fields = Vec::new();
        fields.extend(a.map(|value| ("a".to_string(), value)));
        fields.extend(n.map(|value| ("n".to_string(), value)));
        Value::Object(fields)
    });
    let objects = proptest::collection::vec(object_value.clone(), 0..3).prop_map(Value::Array);
    let typed = (
        (field_value(string_value()), field_value(string_value()), field_value(long_value()), field_value(long_value()), field_value(double_value())),
        (field_value(address_value()), field_value(address_value()), field_value(bool_value())),
        (
            field_value(array_of(string_value())),
            field_value(array_of(long_value())),
            field_value(array_of(bool_value())),
            field_value(array_of(address_value())),
        ),
        (field_value(dynamic_value()), field_value(dynamic_value()), field_value(object_value.boxed()), field_value(objects.boxed())),
        (proptest::sample::subsequence(vec!["process", "file", "network"], 0..3), field_value(date_value()), field_value(date_value())),
        (field_value(version_value()), field_value(version_value()), field_value(array_of(version_value()))),
    );
    typed
        .prop_map(
            |(
                (kw, kw2, num, num2, dbl),
                (addr, addr2, flag),
                (kws, nums, flags, addrs),
                (dyn1, dyn2, obj, objs),
                (categories, when, when2),
                (ver, ver2, vers),
            )| {
                let names = [
                    "kw", "kw2", "num", "num2", "dbl", "addr", "addr2", "flag", "kws", "nums", "flags", "addrs", "dyn1", "dyn2", "obj", "objs", "when",
                    "when2", "ver", "ver2", "vers",
                ];
                let values = [kw, kw2, num, num2, dbl, addr, addr2, flag, kws, nums, flags, addrs, dyn1, dyn2, obj, objs, when, when2, ver, ver2, vers];
                let fields = names.iter().zip(values).filter_map(|(name, value)| value.map(|value| (name.to_string(), value))).collect();
                TestEvent { categories, object: Value::Object(fields) }
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------
// Running both engines

/// A checked rule: the text and what the interpreter needs.
struct Compiled {
    text: String,
    mode: Mode,
    category: Option<String>,
    rule: tir::Rule,
    meta: RuleMeta,
}

/// Checks a rule; `None` if the checker reports an error. `EQUIVALENCE_VERBOSE=1`
/// prints each rejected text with its first error, and each accepted one.
fn compile(text: &str, mode: Mode, schema: &Schema) -> Option<Compiled> {
    let verbose = std::env::var_os("EQUIVALENCE_VERBOSE").is_some();
    let (ast, mut diags) = eqlc::parse::file(text, 0, mode.dialect());
    let options = Options { schema, dialect: mode.dialect(), endgame_case: mode.case(), declarations: &[] };
    let (rule, check_diags) = check::rule(&ast, &options);
    diags.extend(check_diags);
    if let Some(error) = diags.iter().find(|diag| diag.is_error()) {
        if verbose {
            eprintln!("rejected ({}) {}: {text}", mode.name(), error.code);
        }
        return None;
    }
    if verbose {
        eprintln!("accepted ({}): {text}", mode.name());
    }
    let rule = rule?;
    let tir::Query::Event(query) = &rule.query else { return None };
    let category = match &query.category {
        tir::Category::Any => None,
        tir::Category::Named(name) => Some(name.clone()),
    };
    let meta = RuleMeta { name: format!("rule{}", text.len()), ..RuleMeta::default() };
    Some(Compiled { text: text.to_string(), mode, category, rule, meta })
}

fn condition_of(rule: &tir::Rule) -> tir::ExprId {
    match &rule.query {
        tir::Query::Event(query) => query.condition,
        _ => unreachable!("only event queries are compiled"),
    }
}

/// The interpreter's three-valued answer for a rule on an event (category included:
/// an event of another category is not a match, which reads here as false).
fn interpret(interpreter: &Interpreter, event: &TestEvent) -> (Option<bool>, Value) {
    let env = Env { event: &event.object, steps: &[], functions: &[], lineage: None };
    let value = interpreter.eval(condition_of(interpreter.rule()), &env);
    (logic(&value), value)
}

fn category_fits(compiled: &Compiled, event: &TestEvent) -> bool {
    compiled.category.as_ref().is_none_or(|name| event.categories.contains(&name.as_str()))
}

/// Runs compiled rules over events through a bundle and the engine; returns the set of
/// (rule, event) pairs that alerted.
fn run_engine(rules: &[&Compiled], events: &[TestEvent], schema: &Schema) -> Result<HashSet<(usize, usize)>, String> {
    let mut sources = SourceMap::new();
    let inputs: Vec<Input> = rules
        .iter()
        .map(|compiled| {
            let file = sources.add(compiled.meta.name.clone(), compiled.text.clone());
            Input { meta: &compiled.meta, rule: &compiled.rule, action: None, at_exec: false, file, span: Span::new(0, compiled.text.len()) }
        })
        .collect();
    let (bundle, diags) = emit::bundle(&inputs, schema, &[]);
    let bundle = bundle.ok_or_else(|| format!("no bundle: {diags:?}"))?;
    let bundle_fields: Vec<String> = bundle.fields.iter().map(|field| field.name.clone()).collect();
    let categories = bundle.functions.categories.clone();
    let program = Program::from_bundle(bundle).map_err(|error| format!("the bundle does not load: {error}"))?;
    let mut engine = Engine::new(Arc::new(program), 1 << 20).map_err(|error| format!("no engine: {error}"))?;
    let engine_events: Vec<Event> = events
        .iter()
        .map(|event| Event {
            timestamp: 0,
            raw: Default::default(),
            categories: event.categories.iter().filter_map(|name| categories.iter().position(|known| known == name)).map(|idx| idx as u32).collect(),
            fields: bundle_fields
                .iter()
                .map(|name| match event.object.path(name) {
                    Value::Null => None,
                    value => Some(value),
                })
                .collect(),
        })
        .collect();
    let mut alerts: Vec<Alert> = Vec::new();
    engine.run(&engine_events, 0, &mut alerts);
    engine.finish(&mut alerts);
    let traps: u64 = engine.stats.rules.iter().map(|rule| rule.traps).sum();
    if traps > 0 || engine.stats.oversized > 0 || engine.host_failures() > 0 {
        let trapped: Vec<&str> = engine.stats.rules.iter().zip(rules).filter(|(stats, _)| stats.traps > 0).map(|(_, rule)| rule.text.as_str()).collect();
        return Err(format!("the engine trapped or dropped events: {:?}; trapping rules: {trapped:#?}", engine.stats));
    }
    Ok(alerts.iter().flat_map(|alert| alert.events.iter().map(move |event| (alert.rule, event.index))).collect())
}

fn show_tri(tri: Option<bool>) -> &'static str {
    match tri {
        Some(true) => "true",
        Some(false) => "false",
        None => "null",
    }
}

/// A condition and its negation, compiled, for a three-valued answer from alerts.
struct Pair {
    plain: Compiled,
    negated: Compiled,
}

/// The engine's three-valued answer: true if the rule alerted, false if its negation
/// did, null if neither. (Both is a bug of its own.)
fn engine_answer(alerts: &HashSet<(usize, usize)>, pair_idx: usize, event_idx: usize) -> Result<Option<bool>, &'static str> {
    match (alerts.contains(&(2 * pair_idx, event_idx)), alerts.contains(&(2 * pair_idx + 1, event_idx))) {
        (true, true) => Err("both the condition and its negation alerted"),
        (true, false) => Ok(Some(true)),
        (false, true) => Ok(Some(false)),
        (false, false) => Ok(None),
    }
}

/// Compares both engines on every pair and event; returns a description of each
/// disagreement.
fn compare(pairs: &[Pair], events: &[TestEvent], schema: &Schema) -> Result<Vec<String>, String> {
    let rules: Vec<&Compiled> = pairs.iter().flat_map(|pair| [&pair.plain, &pair.negated]).collect();
    let alerts = run_engine(&rules, events, schema)?;
    let mut failures = Vec::new();
    for (pair_idx, pair) in pairs.iter().enumerate() {
        let interpreter = Interpreter::new(&pair.plain.rule);
        for (event_idx, event) in events.iter().enumerate() {
            let (expected, value) = interpret(&interpreter, event);
            let expected = if category_fits(&pair.plain, event) { expected } else { None };
            let actual = engine_answer(&alerts, pair_idx, event_idx);
            if actual != Ok(expected) {
                let actual = actual.map_or_else(str::to_string, |tri| show_tri(tri).to_string());
                failures.push(format!(
                    "rule ({}): {}\n  event: categories {:?}, fields {}\n  interpreter: {} (value {value:?})\n  wasm:        {actual}\n  IR:\n{}",
                    pair.plain.mode.name(),
                    pair.plain.text,
                    event.categories,
                    describe(&event.object),
                    show_tri(expected),
                    eqlc::print_ir::rule(&pair.plain.rule),
                ));
            }
        }
    }
    Ok(failures)
}

/// An event for people: JSON, with addresses marked.
fn describe(value: &Value) -> String {
    fn mark(value: &Value) -> serde_json::Value {
        match value {
            Value::Ip(address) => serde_json::Value::String(format!("<ip {address}>")),
            Value::Array(items) => serde_json::Value::Array(items.iter().map(mark).collect()),
            Value::Object(fields) => serde_json::Value::Object(fields.iter().map(|(key, value)| (key.clone(), mark(value))).collect()),
            other => other.to_json(),
        }
    }
    mark(value).to_string()
}

fn pair(condition: &str, category: &str, mode: Mode, schema: &Schema) -> Option<Pair> {
    let plain = compile(&format!("{category} where {condition}"), mode, schema)?;
    let negated = compile(&format!("{category} where not ({condition})"), mode, schema)?;
    Some(Pair { plain, negated })
}

static GENERATED: AtomicUsize = AtomicUsize::new(0);
static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
static COMPARED: AtomicUsize = AtomicUsize::new(0);

#[test]
fn wasm_predicates_agree_with_the_interpreter() {
    // Batches of up to 40 rules (80 with their negations) and 16 events; shrinking
    // drops rules and events until one of each is left.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|text| text.parse().ok()).unwrap_or(96);
    let schema = schema();
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, max_shrink_iters: 256, ..Config::default() });
    let strategy = (rule_cases(1..=40), proptest::collection::vec(event(), 1..=16));
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |(rules, events)| {
        let pairs: Vec<Pair> = rules.iter().filter_map(|rule| pair(&rule.condition, rule.category, rule.mode, &schema)).collect();
        GENERATED.fetch_add(rules.len(), Ordering::Relaxed);
        ACCEPTED.fetch_add(pairs.len(), Ordering::Relaxed);
        COMPARED.fetch_add(pairs.len() * events.len(), Ordering::Relaxed);
        let failures = compare(&pairs, &events, &schema).map_err(TestCaseError::fail)?;
        if let Some(first) = failures.first() {
            return Err(TestCaseError::fail(format!("{} disagreement(s); the first:\n{first}", failures.len())));
        }
        Ok(())
    });
    match result {
        Ok(()) => {}
        // The reason names the rule, the event and both answers; the whole (shrunk)
        // batch would bury it.
        Err(TestError::Fail(reason, _)) => panic!("Wasm and the interpreter disagree (after shrinking the batch): {reason}"),
        Err(error) => panic!("{error}"),
    }
    let (generated, accepted) = (GENERATED.load(Ordering::Relaxed), ACCEPTED.load(Ordering::Relaxed));
    eprintln!(
        "equivalence: {cases} bundles, {accepted} of {generated} generated conditions compiled, {} comparisons, {:.1?}",
        COMPARED.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(accepted * 2 >= generated, "only {accepted} of {generated} generated conditions compiled: the generator has drifted from the checker");
}

// ---------------------------------------------------------------------------------
// Regression cases

/// One deterministic case of `tests/data/equivalence/cases.toml`: `name` (what it
/// pins down), `dialect` (`elasticsearch`, `endgame` or `endgame-sensitive`),
/// `condition` (written after `any where`), `event` (JSON), optionally `ip_fields`
/// (top-level fields whose strings the event source hands over as addresses), and
/// `expected`, the condition's three-valued answer: `true`, `false` or `null`.
struct Case {
    name: String,
    dialect: String,
    condition: String,
    event: String,
    ip_fields: Vec<String>,
    expected: String,
}

fn read_cases(text: &str) -> Result<Vec<Case>, String> {
    let document: toml::Table = toml::from_str(text).map_err(|error| error.to_string())?;
    let cases = document.get("case").and_then(toml::Value::as_array).ok_or("no [[case]] tables")?;
    cases
        .iter()
        .map(|case| {
            let text = |key: &str| case.get(key).and_then(toml::Value::as_str).map(str::to_string).ok_or(format!("a case without `{key}`: {case}"));
            let ip_fields = match case.get("ip_fields").and_then(toml::Value::as_array) {
                Some(items) => items.iter().filter_map(toml::Value::as_str).map(str::to_string).collect(),
                None => Vec::new(),
            };
            Ok(Case {
                name: text("name")?,
                dialect: text("dialect")?,
                condition: text("condition")?,
                event: text("event")?,
                ip_fields,
                expected: text("expected")?,
            })
        })
        .collect()
}

/// Strings of `value` as addresses, element by element.
fn addresses(value: Value) -> Value {
    match value {
        Value::Str(text) => ip(&text),
        Value::Array(items) => Value::Array(items.into_iter().map(addresses).collect()),
        other => other,
    }
}

#[test]
fn regression_cases_agree_with_their_expectations() {
    let path = tests::repo_root().join("tests/data/equivalence/cases.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let cases = read_cases(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let schema = schema();
    let mut pairs = Vec::new();
    let mut events = Vec::new();
    for case in &cases {
        let mode = Mode::parse(&case.dialect);
        let pair = pair(&case.condition, "any", mode, &schema).unwrap_or_else(|| panic!("case `{}`: `{}` does not compile", case.name, case.condition));
        let json: serde_json::Value = serde_json::from_str(&case.event).unwrap_or_else(|error| panic!("case `{}`: bad event JSON: {error}", case.name));
        let Value::Object(fields) = Value::from_json(&json) else { panic!("case `{}`: the event is not an object", case.name) };
        let fields = fields.into_iter().map(|(key, value)| if case.ip_fields.contains(&key) { (key, addresses(value)) } else { (key, value) }).collect();
        pairs.push(pair);
        events.push(TestEvent { categories: Vec::new(), object: Value::Object(fields) });
    }
    let rules: Vec<&Compiled> = pairs.iter().flat_map(|pair| [&pair.plain, &pair.negated]).collect();
    let alerts = run_engine(&rules, &events, &schema).unwrap_or_else(|error| panic!("{error}"));
    let mut failures = Vec::new();
    for (idx, (case, pair)) in cases.iter().zip(&pairs).enumerate() {
        let (interpreted, value) = interpret(&Interpreter::new(&pair.plain.rule), &events[idx]);
        let wasm = engine_answer(&alerts, idx, idx).map_or_else(str::to_string, |tri| show_tri(tri).to_string());
        if show_tri(interpreted) != case.expected || wasm != case.expected {
            failures.push(format!(
                "case `{}` ({}): {}\n  event: {}\n  expected {}, interpreter {} (value {value:?}), wasm {wasm}",
                case.name,
                case.dialect,
                case.condition,
                case.event,
                case.expected,
                show_tri(interpreted)
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
