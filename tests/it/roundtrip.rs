//! Print → parse round trips: printing a tree as EQL and parsing the text gives the
//! same tree (spans, parentheses and string quoting aside). Checked on random trees
//! and on every rule of the corpus.

use eqlc::ast::*;
use eqlc::dialect::Dialect;
use eqlc::lex::{self, StrKind};
use eqlc::print;
use eqlc::source::Span;
use proptest::prelude::*;
use tests::{read_jsonl, shared_dir};

/// Removes what printing does not preserve: spans, depths, parentheses, quote styles.
fn normalize_file(file: &mut File) {
    file.span = Span::default();
    for definition in &mut file.definitions {
        match definition {
            Definition::Macro { name, params, body, span } => {
                *span = Span::default();
                name.span = Span::default();
                params.iter_mut().for_each(|param| param.span = Span::default());
                normalize_expr(body);
            }
            Definition::Const { name, value, span } => {
                *span = Span::default();
                name.span = Span::default();
                normalize_expr(value);
            }
        }
    }
    if let Some(piped) = &mut file.query {
        piped.span = Span::default();
        normalize_query(&mut piped.query);
        for pipe in &mut piped.pipes {
            pipe.span = Span::default();
            pipe.name.span = Span::default();
            pipe.args.iter_mut().for_each(normalize_expr);
        }
    }
}

fn normalize_query(query: &mut Query) {
    match query {
        Query::Event(event) => normalize_event(event),
        Query::Multi(multi) => {
            multi.span = Span::default();
            multi.keyword_span = Span::default();
            multi.header.iter_mut().for_each(normalize_clause);
            multi.steps.iter_mut().for_each(normalize_step);
            if let Some(until) = &mut multi.until {
                normalize_step(until);
            }
        }
        Query::Error(span) => *span = Span::default(),
    }
}

fn normalize_event(event: &mut EventQuery) {
    event.span = Span::default();
    if let Some(category) = &mut event.category {
        category.span = Span::default();
    }
    normalize_expr(&mut event.condition);
}

fn normalize_step(step: &mut Step) {
    step.span = Span::default();
    normalize_event(&mut step.query);
    step.clauses.iter_mut().for_each(normalize_clause);
}

fn normalize_clause(clause: &mut Clause) {
    match clause {
        Clause::By { keys, span } => {
            *span = Span::default();
            keys.iter_mut().for_each(normalize_expr);
        }
        Clause::With { params, span } => {
            *span = Span::default();
            for param in params {
                param.span = Span::default();
                param.name.span = Span::default();
            }
        }
        Clause::As { alias, span } => {
            *span = Span::default();
            alias.span = Span::default();
        }
        Clause::Fork { name, span, .. } => {
            *span = Span::default();
            name.span = Span::default();
        }
    }
}

fn normalize_expr(expr: &mut Expr) {
    while let ExprKind::Paren(inner) = &mut expr.kind {
        let inner = std::mem::replace(&mut **inner, Expr::error(Span::default()));
        *expr = inner;
    }
    expr.span = Span::default();
    expr.depth = 0;
    match &mut expr.kind {
        ExprKind::Str(_, kind) => *kind = StrKind::Double,
        ExprKind::Path(path) => {
            path.root_span = Span::default();
            if let PathRoot::Escaped(name) = &path.root {
                path.root = PathRoot::Name(name.clone());
            }
            for segment in &mut path.segments {
                match segment {
                    PathSegment::Field { span, escaped, .. } => {
                        *span = Span::default();
                        *escaped = false;
                    }
                    PathSegment::Index { span, .. } => *span = Span::default(),
                }
            }
        }
        ExprKind::Call { name, args, .. } => {
            name.span = Span::default();
            args.iter_mut().for_each(normalize_expr);
        }
        ExprKind::Not(inner) | ExprKind::Neg(inner) => normalize_expr(inner),
        ExprKind::And(items) | ExprKind::Or(items) => items.iter_mut().for_each(normalize_expr),
        ExprKind::Compare { lhs, rhs, .. } | ExprKind::Arith { lhs, rhs, .. } => {
            normalize_expr(lhs);
            normalize_expr(rhs);
        }
        ExprKind::In { expr, items, .. } => {
            normalize_expr(expr);
            items.iter_mut().for_each(normalize_expr);
        }
        ExprKind::Match { expr, patterns, .. } => {
            normalize_expr(expr);
            patterns.iter_mut().for_each(normalize_expr);
        }
        ExprKind::Lineage { relation, query } => {
            relation.span = Span::default();
            normalize_event(query);
        }
        _ => {}
    }
}

/// Parses, prints, parses again, and compares the two trees.
fn assert_round_trip(text: &str, dialect: Dialect) -> Result<(), String> {
    let (mut first, diags) = eqlc::parse::file(text, 0, dialect);
    if !diags.is_empty() {
        return Ok(()); // Only well-formed input has a tree worth printing.
    }
    let printed = print::eql(&first);
    let (mut second, diags) = eqlc::parse::file(&printed, 0, dialect);
    if !diags.is_empty() {
        return Err(format!("printed text does not parse: {:?}\n--- printed\n{printed}", diags.iter().map(|diag| &diag.message).collect::<Vec<_>>()));
    }
    normalize_file(&mut first);
    normalize_file(&mut second);
    if first != second {
        return Err(format!("tree changed after printing\n--- printed\n{printed}"));
    }
    Ok(())
}

#[test]
fn every_corpus_rule_round_trips() {
    let Some(shared) = shared_dir("corpus round trip") else { return };
    let mut failures = Vec::new();
    for file in ["elastic-detection-rules.eql.jsonl", "elastic-protections-artifacts.eql.jsonl"] {
        for (line, rule) in read_jsonl(&shared.join("corpus").join(file)) {
            if let Err(problem) = assert_round_trip(rule["query"].as_str().unwrap(), Dialect::Elasticsearch) {
                failures.push(format!("{file}:{line}: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// Random trees

fn name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,6}".prop_filter("not a keyword", |name| lex::keyword(name).is_none())
}

fn spanned(kind: ExprKind) -> Expr {
    Expr::new(kind, Span::default())
}

fn literal() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(ExprKind::Null),
        any::<bool>().prop_map(ExprKind::Bool),
        (0..i64::MAX).prop_map(ExprKind::Int),
        (0.0..1e12f64).prop_map(ExprKind::Float),
        "\\PC{0,12}".prop_map(|text| ExprKind::Str(text, StrKind::Double)),
    ]
    .prop_map(spanned)
}

fn path() -> impl Strategy<Value = Expr> {
    let segment = prop_oneof![
        "[a-z_][a-z0-9_]{0,6}".prop_map(|name| PathSegment::Field { name, escaped: false, span: Span::default() }),
        "[a-z -]{1,6}".prop_map(|name| PathSegment::Field { name, escaped: true, span: Span::default() }),
        (0..100u64).prop_map(|index| PathSegment::Index { index, span: Span::default() }),
    ];
    let root = prop_oneof![name().prop_map(PathRoot::Name), name().prop_map(PathRoot::Var), "[a-z .-]{1,6}".prop_map(PathRoot::Escaped)];
    (any::<bool>(), root, prop::collection::vec(segment, 0..3))
        .prop_map(|(optional, root, segments)| spanned(ExprKind::Path(Path { optional, root, root_span: Span::default(), segments })))
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![literal(), path()];
    leaf.prop_recursive(5, 48, 4, |inner| {
        let list = prop::collection::vec(inner.clone(), 1..4);
        let strings = prop::collection::vec("\\PC{0,6}".prop_map(|text| spanned(ExprKind::Str(text, StrKind::Double))), 1..3);
        prop_oneof![
            inner.clone().prop_map(|e| ExprKind::Not(Box::new(e))),
            inner.clone().prop_map(|e| ExprKind::Neg(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(ExprKind::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(ExprKind::Or),
            (inner.clone(), inner.clone(), 0..7usize).prop_map(|(lhs, rhs, op)| {
                let op = [CompareOp::EqEq, CompareOp::Eq, CompareOp::NotEq, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge][op];
                ExprKind::Compare { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
            }),
            (inner.clone(), inner.clone(), 0..5usize).prop_map(|(lhs, rhs, op)| {
                let op = [ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div, ArithOp::Mod][op];
                ExprKind::Arith { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
            }),
            (inner.clone(), list.clone(), any::<bool>(), any::<bool>()).prop_map(|(e, items, negated, case_insensitive)| ExprKind::In {
                expr: Box::new(e),
                items,
                negated,
                case_insensitive
            }),
            (inner.clone(), strings, 0..5usize, any::<bool>()).prop_map(|(e, patterns, op, list)| {
                let op = [MatchOp::Colon, MatchOp::Like, MatchOp::LikeCi, MatchOp::Regex, MatchOp::RegexCi][op];
                let list = list || patterns.len() > 1;
                ExprKind::Match { expr: Box::new(e), op, patterns, list }
            }),
            (name(), any::<bool>(), prop::collection::vec(inner.clone(), 0..3)).prop_map(|(name, case_insensitive, args)| ExprKind::Call {
                name: Name { text: name, span: Span::default() },
                case_insensitive,
                args,
                method: false
            }),
            (prop_oneof![Just("descendant"), Just("child"), Just("event")], name(), inner.clone()).prop_map(|(relation, category, condition)| {
                ExprKind::Lineage {
                    relation: Name { text: relation.to_string(), span: Span::default() },
                    query: Box::new(EventQuery {
                        category: Some(Category { name: category, quoted: false, span: Span::default() }),
                        condition,
                        span: Span::default(),
                    }),
                }
            }),
        ]
        .prop_map(spanned)
    })
}

fn event_query(bare: bool) -> impl Strategy<Value = EventQuery> {
    let category = prop_oneof![
        name().prop_map(|name| Some(Category { name, quoted: false, span: Span::default() })),
        "[a-z -]{1,8}".prop_map(|name| Some(Category { name, quoted: true, span: Span::default() })),
    ];
    let category = if bare { prop_oneof![Just(None), category].boxed() } else { category.boxed() };
    (category, expr()).prop_map(|(category, condition)| EventQuery { category, condition, span: Span::default() })
}

fn clause() -> impl Strategy<Value = Clause> {
    let param_value = prop_oneof![
        (1..1000u32, prop_oneof![Just("s"), Just("m"), Just("ms"), Just("h")])
            .prop_map(|(value, unit)| ParamValue::Duration { value: value.to_string(), unit: unit.to_string() }),
        (0..1000i64).prop_map(ParamValue::Int),
        any::<bool>().prop_map(ParamValue::Bool),
        name().prop_map(ParamValue::Name),
    ];
    let param = (name(), param_value).prop_map(|(name, value)| Param { name: Name { text: name, span: Span::default() }, value, span: Span::default() });
    prop_oneof![
        prop::collection::vec(expr(), 1..3).prop_map(|keys| Clause::By { keys, span: Span::default() }),
        prop::collection::vec(param, 1..3).prop_map(|params| Clause::With { params, span: Span::default() }),
        name().prop_map(|alias| Clause::As { alias: Name { text: alias, span: Span::default() }, span: Span::default() }),
        prop::option::of(any::<bool>()).prop_map(|value| Clause::Fork {
            name: Name { text: "fork".into(), span: Span::default() },
            value,
            span: Span::default()
        }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (any::<bool>(), event_query(true), prop::collection::vec(clause(), 0..3)).prop_map(|(missing, query, clauses)| Step {
        missing,
        query,
        clauses,
        span: Span::default(),
    })
}

fn query(bare: bool) -> impl Strategy<Value = Query> {
    let multi = (0..3usize, prop::collection::vec(clause(), 0..2), prop::collection::vec(step(), 1..4), prop::option::of(step())).prop_map(
        |(kind, header, steps, until)| {
            Query::Multi(MultiQuery {
                kind: [MultiKind::Sequence, MultiKind::Join, MultiKind::Sample][kind],
                keyword_span: Span::default(),
                header,
                steps,
                until: until.map(Box::new),
                span: Span::default(),
            })
        },
    );
    prop_oneof![event_query(bare).prop_map(Query::Event), multi]
}

fn pipe() -> impl Strategy<Value = Pipe> {
    (name(), prop::collection::vec(expr(), 0..3)).prop_map(|(name, args)| Pipe {
        name: Name { text: name, span: Span::default() },
        args,
        span: Span::default(),
    })
}

fn file() -> impl Strategy<Value = File> {
    let definition = prop_oneof![
        (name(), prop::collection::vec(name(), 0..3), expr()).prop_map(|(name, params, body)| Definition::Macro {
            name: Name { text: name, span: Span::default() },
            params: params.into_iter().map(|text| Name { text, span: Span::default() }).collect(),
            body,
            span: Span::default(),
        }),
        (name(), literal()).prop_map(|(name, value)| Definition::Const { name: Name { text: name, span: Span::default() }, value, span: Span::default() }),
    ];
    prop::collection::vec(definition, 0..3)
        .prop_flat_map(move |definitions| {
            let bare = definitions.is_empty();
            (Just(definitions), query(bare), prop::collection::vec(pipe(), 0..3))
        })
        .prop_map(|(definitions, query, pipes)| File { definitions, query: Some(PipedQuery { query, pipes, span: Span::default() }), span: Span::default() })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_round_trip(mut tree in file()) {
        let printed = print::eql(&tree);
        let (mut parsed, diags) = eqlc::parse::file(&printed, 0, Dialect::Elasticsearch);
        prop_assert!(diags.is_empty(), "printed text does not parse: {:?}\n{printed}", diags.iter().map(|d| &d.message).collect::<Vec<_>>());
        normalize_file(&mut tree);
        normalize_file(&mut parsed);
        prop_assert_eq!(tree, parsed, "printed:\n{}", printed);
    }
}
