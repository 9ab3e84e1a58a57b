//! The sample executor against a naive matcher: a flat list of keys, each with its
//! candidate lists and the samples it gave, where every event enumerates all candidate
//! tuples of its keys (a plain cartesian product in Elasticsearch's backtracking order)
//! and takes those not given yet; caps applied by removing the front of the list.
//! Random samples, random streams. Then Elasticsearch's own examples, and its QA suites
//! (`test_sample.toml`, `test_sample_multi.toml` from ../shared) with a small evaluator
//! for the filters of those queries.

use kestrel_bundle::semantics::Value;
use kestrel_rt::join_key::{self, KeyRules};
use kestrel_rt::sample::{Config, Counters, Input, Machine, Sample};
use kestrel_rt::sequence::{Flavor, Key};
use proptest::prelude::*;
use std::collections::HashMap;

type Hits = Vec<(usize, Key)>;

struct Naive {
    key: Key,
    lists: Vec<Vec<u64>>,
    events: Vec<u64>,
    given: Vec<Vec<u64>>,
}

/// Every tuple of distinct events, one from each list, in lexicographic order of
/// positions (the order Elasticsearch's backtracking visits them).
fn tuples(lists: &[Vec<u64>], prefix: &mut Vec<u64>, out: &mut Vec<Vec<u64>>) {
    let Some((first, rest)) = lists.split_first() else {
        out.push(prefix.clone());
        return;
    };
    for event in first {
        if !prefix.contains(event) {
            prefix.push(*event);
            tuples(rest, prefix, out);
            prefix.pop();
        }
    }
}

/// The plain version. Returns the samples, the counters, the keys held and the events buffered.
fn naive(config: &Config, events: &[Hits]) -> (Vec<Sample<u64>>, Counters, usize, usize) {
    let (filters, wanted, candidates) = (config.filters, config.max_samples_per_key, config.candidates());
    let mut keys: Vec<Naive> = Vec::new();
    let mut done = Vec::new();
    let mut counters = Counters::default();
    for (id, hits) in events.iter().enumerate() {
        let id = id as u64;
        let valid: Vec<&(usize, Key)> = hits.iter().filter(|(filter, _)| *filter < filters).collect();
        let mut order: Vec<&Key> = Vec::new();
        for (_, key) in &valid {
            if !order.contains(&key) {
                order.push(key);
            }
        }
        for key in order {
            let idx = match keys.iter().position(|entry| entry.key == *key) {
                Some(idx) => idx,
                None => {
                    if keys.len() >= config.max_keys {
                        keys.remove(0);
                        counters.evicted += 1;
                    }
                    counters.keys += 1;
                    keys.push(Naive { key: key.clone(), lists: vec![Vec::new(); filters], events: Vec::new(), given: Vec::new() });
                    keys.len() - 1
                }
            };
            let entry = &mut keys[idx];
            for (filter, _) in valid.iter().filter(|(_, other)| other == key) {
                if entry.given.len() >= wanted {
                    counters.done += 1;
                } else if entry.lists[*filter].contains(&id) {
                    // The same hit twice.
                } else if entry.lists[*filter].len() >= candidates {
                    counters.full += 1;
                } else {
                    entry.lists[*filter].push(id);
                    if !entry.events.contains(&id) {
                        entry.events.push(id);
                    }
                }
            }
            let mut all = Vec::new();
            tuples(&entry.lists, &mut Vec::new(), &mut all);
            for tuple in all {
                if entry.given.len() < wanted && !entry.given.contains(&tuple) {
                    entry.given.push(tuple.clone());
                    counters.samples += 1;
                    done.push(Sample { key: key.clone(), events: tuple });
                }
            }
            if entry.given.len() >= wanted {
                entry.events.clear();
                entry.lists.iter_mut().for_each(Vec::clear);
            }
        }
        while keys.iter().map(|entry| entry.events.len()).sum::<usize>() > config.max_events && !keys.is_empty() {
            keys.remove(0);
            counters.evicted += 1;
        }
    }
    let buffered = keys.iter().map(|entry| entry.events.len()).sum();
    (done, counters, keys.len(), buffered)
}

fn key(n: u8) -> Key {
    vec![n].into()
}

fn config() -> impl Strategy<Value = Config> {
    let caps = (prop_oneof![Just(1_000usize), 1usize..5], prop_oneof![Just(1_000_000usize), 0usize..10]);
    (1usize..5, 1usize..4, caps).prop_map(|(filters, max_samples_per_key, (max_keys, max_events))| Config {
        filters,
        max_samples_per_key,
        max_keys,
        max_events,
    })
}

fn stream(filters: usize) -> impl Strategy<Value = Vec<Hits>> {
    let hits = prop::collection::vec((0..filters, 0u8..3), 0..5);
    prop::collection::vec(hits, 0..60)
        .prop_map(|events| events.into_iter().map(|hits| hits.into_iter().map(|(filter, n)| (filter, key(n))).collect()).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_machine_equals_the_naive_matcher((config, events) in config().prop_flat_map(|config| {
        let filters = config.filters;
        (Just(config), stream(filters))
    })) {
        let mut machine: Machine<u64> = Machine::new(config.clone());
        let mut done = Vec::new();
        for (id, hits) in events.iter().enumerate() {
            machine.push(Input { id: &(id as u64), hits }, &mut done);
            prop_assert!(machine.keys() <= config.max_keys);
            prop_assert!(machine.buffered() <= config.max_events);
        }
        let (expected, counters, keys, buffered) = naive(&config, &events);
        prop_assert_eq!(&done, &expected);
        prop_assert_eq!(machine.counters, counters);
        prop_assert_eq!((machine.keys(), machine.buffered()), (keys, buffered));
    }
}

/// Runs a sample over events given as the filters they hit, all under one key; ids from 1.
fn run(filters: usize, max_samples_per_key: usize, events: &[&[usize]]) -> Vec<Vec<u64>> {
    let config = Config { filters, max_samples_per_key, max_keys: 100, max_events: 1_000 };
    let mut machine: Machine<u64> = Machine::new(config);
    let mut done = Vec::new();
    for (id, hit) in events.iter().enumerate() {
        let hits: Hits = hit.iter().map(|filter| (*filter, key(0))).collect();
        machine.push(Input { id: &(id as u64 + 1), hits: &hits }, &mut done);
    }
    done.into_iter().map(|sample| sample.events).collect()
}

/// Elasticsearch's examples (`SampleIterator.matchSamples`, the QA suites, §4.6).
#[test]
fn one_distinct_event_per_filter_in_filter_order() {
    // Candidates [d1, d2, d3], [d4, d5], [d4, d5, d3] give [d1, d4, d5].
    assert_eq!(run(3, 1, &[&[0], &[0], &[1, 2], &[1, 2], &[0, 2]]), vec![vec![1, 3, 4]]);
    // One event in every list and another in the last: no three distinct events.
    assert_eq!(run(3, 1, &[&[0, 1, 2], &[2], &[2]]), Vec::<Vec<u64>>::new());
    // sample [any] [any] over one event: nothing (python eql gives [e, e]); over two,
    // one sample, in filter order.
    assert_eq!(run(2, 1, &[&[0, 1]]), Vec::<Vec<u64>>::new());
    assert_eq!(run(2, 1, &[&[0, 1], &[0, 1]]), vec![vec![1, 2]]);
    assert_eq!(run(2, 1, &[&[1], &[0]]), vec![vec![2, 1]]);
}

#[test]
fn samples_of_one_key_may_share_events_up_to_max_samples_per_key() {
    // QA twoSamplesPerKeyOutOfThree: alert_1 events 1, 2, 4 and alert_2 event 3.
    let events: &[&[usize]] = &[&[0], &[0], &[1], &[0]];
    assert_eq!(run(2, 1, events), vec![vec![1, 3]]);
    assert_eq!(run(2, 2, events), vec![vec![1, 3], vec![2, 3]]);
    assert_eq!(run(2, 10, events), vec![vec![1, 3], vec![2, 3], vec![4, 3]]);
}

#[test]
fn state_stays_under_the_caps() {
    let config = Config { filters: 2, max_samples_per_key: 1, max_keys: 1_000, max_events: 1_500 };
    let mut machine: Machine<u64> = Machine::new(config.clone());
    let mut done = Vec::new();
    for n in 0..100_000u64 {
        let key: Key = n.to_le_bytes().to_vec().into();
        machine.push(Input { id: &n, hits: &[(0, key.clone()), (0, key)] }, &mut done);
        assert!(machine.keys() <= 1_000 && machine.buffered() <= 1_500);
    }
    assert_eq!((machine.counters.evicted, machine.buffered()), (99_000, 1_000));
    // One key: 2 candidates per filter, the rest counted; after its sample, done.
    let mut machine: Machine<u64> = Machine::new(config);
    for n in 0..10u64 {
        machine.push(Input { id: &n, hits: &[(0, key(0))] }, &mut done);
    }
    machine.push(Input { id: &10, hits: &[(1, key(0))] }, &mut done);
    machine.push(Input { id: &11, hits: &[(1, key(0))] }, &mut done);
    assert_eq!(done.last(), Some(&Sample { key: key(0), events: vec![0, 10] }));
    assert_eq!((machine.counters.full, machine.counters.done, machine.buffered()), (8, 1, 0));
}

// ---- Elasticsearch's QA suites, with a small evaluator for their filters. ----

#[derive(Default)]
struct Case {
    name: String,
    query: String,
    expected: Vec<Vec<i64>>,
    join_keys: Vec<String>,
    size: Option<usize>,
    max_samples_per_key: Option<usize>,
}

/// Just the TOML these two files use: `[[queries]]`, strings, `'''` blocks, numbers and
/// arrays (read as JSON), comment lines.
fn read_cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line == "[[queries]]" {
            cases.push(Case::default());
        }
        let Some((name, value)) = line.split_once('=').filter(|_| !line.starts_with('#')) else { continue };
        let (name, mut value) = (name.trim(), value.trim().to_string());
        if let Some(start) = value.strip_prefix("'''") {
            let mut body = start.to_string();
            while !body.contains("'''") {
                body = body + "\n" + lines.next().expect("a closed ''' string");
            }
            value = body[..body.find("'''").unwrap()].to_string();
        } else if value.starts_with('[') {
            let depth = |text: &str| text.matches('[').count() as i64 - text.matches(']').count() as i64;
            while depth(&value) > 0 {
                let next = lines.next().expect("a closed array").trim();
                if !next.starts_with('#') {
                    value = value + " " + next;
                }
            }
        }
        let case = cases.last_mut().expect("a key inside [[queries]]");
        let json = || serde_json::from_str::<serde_json::Value>(&value).expect("a JSON-shaped value");
        match name {
            "name" => case.name = value.trim_matches('"').to_string(),
            "query" => case.query = value.clone(),
            "size" => case.size = value.parse().ok(),
            "max_samples_per_key" => case.max_samples_per_key = value.parse().ok(),
            "join_keys" => case.join_keys = serde_json::from_value(json()).expect("strings"),
            "expected_event_ids" => {
                let ids = json();
                case.expected = if ids.get(0).is_some_and(|first| first.is_array()) {
                    serde_json::from_value(ids).expect("lists of ids")
                } else {
                    vec![serde_json::from_value(ids).expect("ids")]
                };
            }
            _ => {}
        }
    }
    cases
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(f64),
    Sym(String),
}

fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let run = |at: usize, ok: &dyn Fn(char) -> bool| (at..chars.len()).find(|i| !ok(chars[*i])).unwrap_or(chars.len());
        if c.is_whitespace() {
            at += 1;
        } else if c.is_alphabetic() || "_@?".contains(c) {
            let end = run(at, &|c| c.is_alphanumeric() || "_@?~.".contains(c));
            tokens.push(Token::Word(chars[at..end].iter().collect()));
            at = end;
        } else if c.is_ascii_digit() {
            let end = run(at, &|c| c.is_ascii_digit());
            tokens.push(Token::Num(chars[at..end].iter().collect::<String>().parse().unwrap()));
            at = end;
        } else if c == '"' {
            let end = run(at + 1, &|c| c != '"');
            tokens.push(Token::Str(chars[at + 1..end].iter().collect()));
            at = end + 1;
        } else {
            let two: String = chars[at..(at + 2).min(chars.len())].iter().collect();
            let sym = if ["==", "!=", ">=", "<="].contains(&two.as_str()) { two } else { c.to_string() };
            at += sym.len();
            tokens.push(Token::Sym(sym));
        }
    }
    tokens
}

#[derive(Debug)]
enum Expr {
    Lit(Value),
    Field(String),
    Binary(String, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

struct Filter {
    category: String,
    condition: Expr,
    by: Vec<String>,
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn next(&mut self) -> Token {
        self.at += 1;
        self.tokens[self.at - 1].clone()
    }
    fn eat(&mut self, token: Token) -> bool {
        let found = self.peek() == Some(&token);
        self.at += usize::from(found);
        found
    }
    fn word(&mut self) -> String {
        match self.next() {
            Token::Word(word) => word,
            other => panic!("a name, not {other:?}"),
        }
    }
    fn keys(&mut self) -> Vec<String> {
        let mut keys = Vec::new();
        if self.eat(Token::Word("by".into())) {
            keys.push(self.word());
            while self.eat(Token::Sym(",".into())) {
                keys.push(self.word());
            }
        }
        keys
    }
    fn binary(&mut self, level: usize) -> Expr {
        const LEVELS: [&[&str]; 3] = [&["or"], &["and"], &["==", "!=", ">", "<", ">=", "<=", ":"]];
        if level == LEVELS.len() {
            return self.primary();
        }
        let mut left = self.binary(level + 1);
        while let Some(Token::Word(op) | Token::Sym(op)) = self.peek().cloned() {
            if !LEVELS[level].contains(&op.as_str()) {
                break;
            }
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.binary(level + 1)));
        }
        left
    }
    fn primary(&mut self) -> Expr {
        match self.next() {
            Token::Sym(open) if open == "(" => {
                let inner = self.binary(0);
                assert!(self.eat(Token::Sym(")".into())));
                inner
            }
            Token::Num(number) => Expr::Lit(Value::Long(number as i64)),
            Token::Str(text) => Expr::Lit(Value::Str(text)),
            Token::Word(word) if word == "true" || word == "false" => Expr::Lit(Value::Bool(word == "true")),
            Token::Word(word) if word == "null" => Expr::Lit(Value::Null),
            Token::Word(word) if self.eat(Token::Sym("(".into())) => {
                let mut args = vec![self.binary(0)];
                while self.eat(Token::Sym(",".into())) {
                    args.push(self.binary(0));
                }
                assert!(self.eat(Token::Sym(")".into())));
                Expr::Call(word, args)
            }
            Token::Word(word) => Expr::Field(word.trim_start_matches('?').to_string()),
            other => panic!("an operand, not {other:?}"),
        }
    }
}

/// `sample [by k, ...] ([category where condition] [by k, ...])+`: the keys of the
/// sample and the filters.
fn parse_sample(query: &str) -> (Vec<String>, Vec<Filter>) {
    let mut parser = Parser { tokens: tokenize(query), at: 0 };
    assert_eq!(parser.word(), "sample");
    let keys = parser.keys();
    let mut filters = Vec::new();
    while parser.eat(Token::Sym("[".into())) {
        let category = parser.word();
        assert_eq!(parser.word(), "where");
        let condition = parser.binary(0);
        assert!(parser.eat(Token::Sym("]".into())));
        filters.push(Filter { category, condition, by: parser.keys() });
    }
    assert!(parser.peek().is_none(), "the whole query is read");
    (keys, filters)
}

fn field(event: &serde_json::Value, name: &str) -> Value {
    match event.get(name) {
        Some(serde_json::Value::Bool(value)) => Value::Bool(*value),
        Some(serde_json::Value::Number(number)) => Value::Long(number.as_i64().expect("whole numbers")),
        Some(serde_json::Value::String(text)) => Value::Str(text.clone()),
        _ => Value::Null,
    }
}

/// ES's three-valued logic as far as these queries need it: null compares to nothing
/// but `== null`; `:` and the `~` functions ignore case.
fn eval(expr: &Expr, event: &serde_json::Value) -> Value {
    let lower = |value: Value| if let Value::Str(text) = value { Some(text.to_lowercase()) } else { None };
    match expr {
        Expr::Lit(value) => value.clone(),
        Expr::Field(name) => field(event, name),
        Expr::Binary(op, left, right) if op == "and" || op == "or" => {
            let (left, right) = (eval(left, event), eval(right, event));
            let decisive = Value::Bool(op == "or");
            if left == decisive || right == decisive {
                decisive
            } else if left.is_null() || right.is_null() {
                Value::Null
            } else {
                Value::Bool(op == "and")
            }
        }
        Expr::Binary(op, left, right) => match (op.as_str(), eval(left, event), eval(right, event)) {
            ("==", left, right) => Value::Bool(left == right),
            (_, Value::Null, _) | (_, _, Value::Null) => Value::Null,
            ("!=", left, right) => Value::Bool(left != right),
            (":", left, right) => Value::Bool(lower(left) == lower(right)),
            (op, Value::Long(left), Value::Long(right)) => Value::Bool(match op {
                ">" => left > right,
                "<" => left < right,
                ">=" => left >= right,
                _ => left <= right,
            }),
            other => panic!("no comparison {other:?}"),
        },
        Expr::Call(name, args) => {
            let args: Vec<Option<String>> = args.iter().map(|arg| lower(eval(arg, event))).collect();
            let (Some(Some(text)), Some(Some(part))) = (args.first(), args.get(1)) else { return Value::Null };
            match name.as_str() {
                "startsWith~" => Value::Bool(text.starts_with(part.as_str())),
                "stringContains~" => Value::Bool(text.contains(part.as_str())),
                other => panic!("no function {other}"),
            }
        }
    }
}

/// A join-key value as its field's mapping types it: dates (`@timestamp_pretty` in
/// `dd-MM-yyyy` or `yyyy-MM-dd`, `date` in epoch millis) are epoch millis.
fn key_value(event: &serde_json::Value, name: &str) -> Value {
    let value = field(event, name);
    let Value::Str(text) = &value else { return value };
    let days = |year: i64, month: i64, day: i64| {
        // Days from 1970-01-01 in the proleptic Gregorian calendar.
        let (year, month) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
        let era = year.div_euclid(400);
        let of_era = year - era * 400;
        era * 146_097 + of_era * 365 + of_era / 4 - of_era / 100 + (153 * month + 2) / 5 + day - 1 - 719_468
    };
    let parts: Vec<i64> = text.split('-').filter_map(|part| part.parse().ok()).collect();
    match (name, parts.as_slice()) {
        ("@timestamp_pretty", [day, month, year]) if text.len() == 10 && text.as_bytes()[2] == b'-' => Value::Long(days(*year, *month, *day) * 86_400_000),
        ("@timestamp_pretty", [year, month, day]) => Value::Long(days(*year, *month, *day) * 86_400_000),
        ("date", _) => Value::Long(text.parse().expect("epoch millis")),
        _ => value,
    }
}

/// The composite aggregation's order: null first, then by value (strings by bytes).
fn order(values: &[Value]) -> Vec<(u8, i64, String)> {
    let rank = |value: &Value| match value {
        Value::Null => (0, 0, String::new()),
        Value::Bool(value) => (1, i64::from(*value), String::new()),
        Value::Long(number) => (2, *number, String::new()),
        other => (3, 0, shown(other)),
    };
    values.iter().map(rank).collect()
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(value) => value.to_string(),
        Value::Long(number) => number.to_string(),
        Value::Str(text) => text.clone(),
        other => panic!("no such key value {other:?}"),
    }
}

/// Runs one QA case; on success, which of its alternatives it gave.
fn run_case(case: &Case, events: &[serde_json::Value]) -> Result<usize, String> {
    let (keys, filters) = parse_sample(&case.query);
    let rules = KeyRules { flavor: Flavor::Elasticsearch, fold_case: false };
    let config = Config { filters: filters.len(), max_samples_per_key: case.max_samples_per_key.unwrap_or(1), max_keys: 100, max_events: 1_000 };
    let mut machine: Machine<usize> = Machine::new(config);
    let mut values_of: HashMap<Key, Vec<Value>> = HashMap::new();
    let mut done = Vec::new();
    for (idx, event) in events.iter().enumerate() {
        let mut hits = Vec::new();
        for (number, filter) in filters.iter().enumerate() {
            let category = filter.category == "any" || field(event, "event_type") == Value::Str(filter.category.clone());
            if !category || eval(&filter.condition, event) != Value::Bool(true) {
                continue;
            }
            let names: Vec<&String> = keys.iter().chain(&filter.by).collect();
            let values: Vec<Value> = names.iter().map(|name| key_value(event, name.trim_start_matches('?'))).collect();
            let optional: Vec<bool> = names.iter().map(|name| name.starts_with('?')).collect();
            let mut formed = Vec::new();
            join_key::keys(&values, &optional, rules, &mut formed);
            for key in formed {
                values_of.insert(key.clone(), values.clone());
                hits.push((number, key));
            }
        }
        machine.push(Input { id: &idx, hits: &hits }, &mut done);
    }
    // ES's order (by key, stably), then its size.
    done.sort_by_cached_key(|sample| order(&values_of[&sample.key]));
    done.truncate(case.size.unwrap_or(usize::MAX));
    let ids: Vec<i64> = done.iter().flat_map(|sample| &sample.events).map(|idx| events[*idx]["id"].as_i64().unwrap()).collect();
    let join_keys: Vec<String> = done.iter().flat_map(|sample| values_of[&sample.key].iter().map(shown)).collect();
    let Some(alternative) = case.expected.iter().position(|expected| *expected == ids) else {
        return Err(format!("{}: gave {ids:?}, expected one of {:?}", case.name, case.expected));
    };
    if join_keys != case.join_keys {
        return Err(format!("{}: join keys {join_keys:?}, expected {:?}", case.name, case.join_keys));
    }
    Ok(alternative)
}

#[test]
fn elasticsearch_sample_qa_suites() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/elasticsearch");
    if !root.is_dir() {
        eprintln!("SKIPPED elasticsearch_sample_qa_suites: {} is absent (the QA suites live outside the repository)", root.display());
        return;
    }
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_else(|error| panic!("{name}: {error}"));
    let data = |names: &[&str]| -> Vec<serde_json::Value> {
        names.iter().flat_map(|name| serde_json::from_str::<Vec<serde_json::Value>>(&read(&format!("data/{name}.data"))).unwrap()).collect()
    };
    let suites = [("test_sample.toml", data(&["sample1", "sample2", "sample3"])), ("test_sample_multi.toml", data(&["sample-multi"]))];
    let (mut passed, mut failures) = (0, Vec::new());
    for (file, events) in &suites {
        for case in read_cases(&read(file)) {
            match run_case(&case, events) {
                Ok(alternative) => {
                    passed += 1;
                    eprintln!("{file} {}: alternative {} of {}", case.name, alternative + 1, case.expected.len());
                }
                Err(failure) => failures.push(failure),
            }
        }
    }
    assert!(failures.is_empty(), "{} passed, {} failed:\n{}", passed, failures.len(), failures.join("\n"));
    assert_eq!(passed, 34, "every case of both suites ran");
}
