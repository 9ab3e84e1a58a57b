//! Checking queries: event queries, `sequence`, `join`, `sample`, and pipes.

use super::literal::{self, DurationError};
use super::{Checker, compatible};
use crate::ast::{self, Clause, MultiKind, ParamValue};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::dialect::Dialect;
use crate::source::Span;
use crate::tir::{self, Case, Category, ExprId, ExprKind, Scalar, SequenceSemantics, Value};

/// `runs=N` accepts 1 to this many repetitions (as Elasticsearch does).
pub const MAX_RUNS: i64 = 100;
/// A sequence, join or sample may have at most this many steps after unrolling.
pub const MAX_STEPS: usize = 256;

/// The clauses of one header or step, sorted out.
#[derive(Default)]
struct Clauses<'c> {
    by: Option<(&'c [ast::Expr], Span)>,
    params: Vec<&'c ast::Param>,
    alias: Option<&'c ast::Name>,
    fork: Option<(bool, Span)>,
}

impl<'a> Checker<'a> {
    pub(super) fn query(&mut self, query: &'a ast::Query) -> Option<tir::Query> {
        match query {
            ast::Query::Event(event) => Some(tir::Query::Event(self.event_query(event))),
            ast::Query::Multi(multi) => self.multi(multi),
            ast::Query::Error(_) => None,
        }
    }

    pub(super) fn event_query(&mut self, query: &ast::EventQuery) -> tir::EventQuery {
        let category = match &query.category {
            None => {
                if self.is_es() {
                    self.report(
                        Diagnostic::new(Code::E0311, "an event query needs a category")
                            .primary(Span { start: query.span.start, end: query.span.start }, "expected `<category> where` here")
                            .help("write `any where ...` to match events of every category"),
                    );
                }
                Category::Any
            }
            Some(category) if category.is_any() => Category::Any,
            Some(category) => {
                self.category_lint(category);
                Category::Named(category.name.clone())
            }
        };
        let condition = self.condition(&query.condition);
        self.condition_lints(condition);
        tir::EventQuery { category, condition, span: query.span }
    }

    fn category_lint(&mut self, category: &ast::Category) {
        let schema = self.options.schema;
        let Some(known) = schema.categories() else { return };
        let found = known.iter().any(|name| if self.is_es() { *name == category.name } else { name.eq_ignore_ascii_case(&category.name) });
        if !found {
            let mut diag = Diagnostic::new(Code::W0009, format!("the `{}` sensor never produces `{}` events", schema.name, category.name))
                .primary(category.span, "no event has this category")
                .note(format!("its categories are: {}", known.join(", ")));
            if let Some(suggestion) = did_you_mean(&category.name, known.iter().map(String::as_str)) {
                diag = diag.help(format!("did you mean `{suggestion}`?"));
            }
            self.report(diag);
        }
    }

    fn sort_clauses<'c>(&mut self, clauses: &'c [Clause], context: &str, allow_alias_fork: bool) -> Clauses<'c> {
        let mut sorted = Clauses::default();
        let mut seen_with: Option<Span> = None;
        let mut seen_alias: Option<Span> = None;
        for clause in clauses {
            let previous = match clause {
                Clause::By { keys, span } => {
                    let previous = sorted.by.map(|(_, span)| span);
                    if previous.is_none() {
                        sorted.by = Some((keys.as_slice(), *span));
                    }
                    previous
                }
                Clause::With { params, span } => {
                    let previous = seen_with.replace(*span);
                    if previous.is_none() {
                        sorted.params.extend(params.iter());
                    }
                    previous
                }
                Clause::As { alias, span } => {
                    if !allow_alias_fork {
                        self.invalid_clause(*span, "`as`", context);
                        continue;
                    }
                    let previous = seen_alias.replace(*span);
                    if previous.is_none() {
                        sorted.alias = Some(alias);
                    }
                    previous
                }
                Clause::Fork { name, value, span } => {
                    if name.text != "fork" {
                        let mut diag =
                            Diagnostic::new(Code::E0001, format!("unexpected name `{}` after a step", name.text)).primary(name.span, "unexpected here");
                        diag = if did_you_mean(&name.text, ["fork"]).is_some() {
                            diag.help("did you mean `fork`?")
                        } else {
                            diag.note("a step may be followed by `by ...`, `with runs=N`, `as alias` or (endgame) `fork`")
                        };
                        self.report(diag);
                        continue;
                    }
                    if !allow_alias_fork {
                        self.invalid_clause(*span, "`fork`", context);
                        continue;
                    }
                    let previous = sorted.fork.map(|(_, span)| span);
                    if previous.is_none() {
                        sorted.fork = Some((value.unwrap_or(true), *span));
                    }
                    previous
                }
            };
            if let Some(previous) = previous {
                self.report(
                    Diagnostic::new(Code::E0308, format!("this clause is given twice on one {context}"))
                        .primary(clause.span(), "given again here")
                        .secondary(previous, "first given here")
                        .help("merge the two clauses"),
                );
            }
        }
        sorted
    }

    fn invalid_clause(&mut self, span: Span, clause: &str, context: &str) {
        self.report(Diagnostic::new(Code::E0309, format!("{clause} cannot be used on a {context}")).primary(span, "not allowed here"));
    }

    fn multi(&mut self, multi: &'a ast::MultiQuery) -> Option<tir::Query> {
        let kind = multi.kind;
        if kind == MultiKind::Join && self.is_es() {
            self.report(
                Diagnostic::new(Code::E0009, "`join` is not Elasticsearch EQL")
                    .primary(multi.keyword_span, "endgame-dialect query")
                    .help("use `sequence`, or check with `--dialect endgame`"),
            );
        }
        let header = self.sort_clauses(&multi.header, &format!("{} header", kind.keyword()), false);
        self.maxspan_was_zero = false;
        // `maxspan_ns` is the window; `has_maxspan` says one was written (even if invalid,
        // so that a bad maxspan is reported once, not again as a missing window).
        let mut maxspan_ns: Option<u64> = None;
        let mut has_maxspan = false;
        for param in &header.params {
            if param.name.text == "maxspan" && kind == MultiKind::Sequence {
                has_maxspan = true;
                maxspan_ns = self.maxspan(param);
            } else {
                self.unknown_param(param, if kind == MultiKind::Sequence { &["maxspan"] } else { &[] }, kind.keyword());
            }
        }
        // Aliases are visible from the step after their own.
        let aliases: Vec<(String, Span)> = multi
            .steps
            .iter()
            .flat_map(|step| step.clauses.iter())
            .filter_map(|clause| match clause {
                Clause::As { alias, .. } => Some((alias.text.clone(), alias.span)),
                _ => None,
            })
            .collect();
        self.scope.hidden_aliases = aliases.clone();
        let shared_keys: Vec<ExprId> = header.by.map(|(keys, _)| keys.iter().map(|key| self.expr(key)).collect()).unwrap_or_default();
        self.scope.hidden_aliases.clear();
        self.scope.aliases.clear();
        self.scope.later_aliases = aliases.clone();

        let mut steps: Vec<tir::Step> = Vec::new();
        let mut step_limit_reported = false;
        let mut key_sources: Vec<(Span, usize)> = Vec::new();
        for (source_step, step) in multi.steps.iter().enumerate() {
            let step_context = format!("{} step", kind.keyword());
            let clauses = self.sort_clauses(&step.clauses, &step_context, kind == MultiKind::Sequence);
            let mut runs: i64 = 1;
            for param in &clauses.params {
                if param.name.text == "runs" && kind == MultiKind::Sequence {
                    runs = self.runs(param);
                } else if param.name.text == "runs" {
                    self.invalid_clause(param.span, "`runs`", &step_context);
                } else {
                    self.unknown_param(param, if kind == MultiKind::Sequence { &["runs"] } else { &[] }, &step_context);
                }
            }
            if step.missing {
                self.missing_step_rules(kind, has_maxspan && !self.maxspan_was_zero, step);
            }
            let fork = self.fork_rules(clauses.fork, source_step);
            let query = self.event_query(&step.query);
            let mut keys = shared_keys.clone();
            keys.extend(clauses.by.map(|(keys, _)| keys.iter().map(|key| self.expr(key)).collect::<Vec<_>>()).unwrap_or_default());
            key_sources.push((clauses.by.map(|(_, span)| span).unwrap_or(step.span), keys.len()));
            let alias = clauses.alias.map(|alias| alias.text.clone());
            for _ in 0..runs.max(1) {
                if steps.len() >= MAX_STEPS {
                    if step_limit_reported {
                        break;
                    }
                    step_limit_reported = true;
                    self.report(
                        Diagnostic::new(Code::E0902, format!("a {} may have at most {MAX_STEPS} steps after `runs` is unrolled", kind.keyword()))
                            .primary(step.span, "the limit is reached at this step")
                            .help("split the rule, or lower `runs`"),
                    );
                    break;
                }
                steps.push(tir::Step {
                    query: query.clone(),
                    keys: keys.clone(),
                    missing: step.missing,
                    alias: alias.clone(),
                    fork,
                    source_step,
                    span: step.span,
                });
            }
            if let Some(alias) = clauses.alias {
                let duplicate = self.scope.aliases.iter().find(|(name, _, _)| *name == alias.text).map(|(_, _, span)| *span);
                if let Some(first) = duplicate {
                    self.report(
                        Diagnostic::new(Code::E0105, format!("alias `{}` is used by two steps", alias.text))
                            .primary(alias.span, "used again here")
                            .secondary(first, "first used here")
                            .help("give each step its own alias"),
                    );
                }
                self.scope.aliases.push((alias.text.clone(), steps.len() - 1, alias.span));
                if let Some(idx) = self.scope.later_aliases.iter().position(|(name, _)| *name == alias.text) {
                    self.scope.later_aliases.remove(idx);
                }
            }
        }
        let visible = std::mem::take(&mut self.scope.aliases);
        self.scope.later_aliases.clear();
        self.scope.hidden_aliases = aliases;
        let until = multi.until.as_ref().map(|until| self.until_step(kind, until, &shared_keys, &mut key_sources));
        self.scope.hidden_aliases.clear();
        // Pipes after the query may read any step through its alias.
        self.scope.aliases = visible;

        self.key_rules(&steps, until.as_ref(), &key_sources);
        let positives = steps.iter().filter(|step| !step.missing).count();
        if steps.len() < 2 {
            let what = if multi.steps.len() == 1 && steps.len() == 1 { " (a single step needs `with runs=N`, N ≥ 2)" } else { "" };
            self.report(
                Diagnostic::new(Code::E0304, format!("a {} needs at least two steps{what}", kind.keyword()))
                    .primary(multi.keyword_span, format!("this {} has {}", kind.keyword(), steps.len()))
                    .help("add a step, or use an event query for a single condition"),
            );
        } else if positives == 0 {
            self.report(
                Diagnostic::new(Code::E0306, "a sequence needs at least one step that is not missing").primary(multi.keyword_span, "every step is `![...]`"),
            );
        }
        let zero_or_absent = !has_maxspan || self.maxspan_was_zero;
        if kind == MultiKind::Sequence && maxspan_ns.is_none() && zero_or_absent {
            self.report(
                Diagnostic::new(Code::W0002, "sequence without `maxspan` keeps partial matches forever")
                    .primary(multi.keyword_span, "no time limit")
                    .note("open partial matches are bounded only by the runtime's caps, which evict the oldest")
                    .help("add a window to the header, e.g. `sequence by process.entity_id with maxspan=1m`"),
            );
        }
        let key_case = match self.options.dialect {
            Dialect::Elasticsearch => Case::Sensitive,
            Dialect::Endgame => self.endgame_case(),
        };
        Some(match kind {
            MultiKind::Sequence => {
                let semantics = if self.is_es() { SequenceSemantics::Elasticsearch } else { SequenceSemantics::Endgame };
                tir::Query::Sequence(tir::Sequence { steps, until, maxspan_ns, semantics, key_case })
            }
            MultiKind::Join => tir::Query::Join(tir::Join { steps, until, key_case }),
            MultiKind::Sample => tir::Query::Sample(tir::Sample { steps, key_case }),
        })
    }

    fn until_step(&mut self, kind: MultiKind, until: &ast::Step, shared_keys: &[ExprId], key_sources: &mut Vec<(Span, usize)>) -> tir::Step {
        if kind == MultiKind::Sample {
            self.invalid_clause(until.span, "`until`", "sample");
        }
        if until.missing {
            self.report(Diagnostic::new(Code::E0306, "`until` cannot be a missing-event step").primary(until.span, "remove the `!`"));
        }
        let clauses = self.sort_clauses(&until.clauses, "`until` step", false);
        for param in &clauses.params {
            if param.name.text == "runs" {
                self.report(Diagnostic::new(Code::E0305, "`runs` cannot be used on `until`").primary(param.span, "not allowed here"));
            } else {
                self.unknown_param(param, &[], "`until` step");
            }
        }
        // The until step sees no aliases: it may arrive before any step has matched.
        let query = self.event_query(&until.query);
        let mut keys = shared_keys.to_vec();
        keys.extend(clauses.by.map(|(keys, _)| keys.iter().map(|key| self.expr(key)).collect::<Vec<_>>()).unwrap_or_default());
        key_sources.push((clauses.by.map(|(_, span)| span).unwrap_or(until.span), keys.len()));
        tir::Step { query, keys, missing: false, alias: None, fork: false, source_step: usize::MAX, span: until.span }
    }

    /// Every step (and `until`) joins on the same number of keys, of compatible types.
    fn key_rules(&mut self, steps: &[tir::Step], until: Option<&tir::Step>, key_sources: &[(Span, usize)]) {
        let Some(&(first_span, first_count)) = key_sources.first() else { return };
        let mut count_ok = true;
        for &(span, count) in &key_sources[1..] {
            if count != first_count {
                count_ok = false;
                self.report(
                    Diagnostic::new(Code::E0301, format!("this step joins on {count} key{}, the first on {first_count}", plural(count)))
                        .primary(span, format!("{count} key{}", plural(count)))
                        .secondary(first_span, format!("{first_count} key{}", plural(first_count)))
                        .help("every step and `until` needs the same number of `by` keys (shared keys count for each step)"),
                );
            }
        }
        if !count_ok {
            return;
        }
        let all: Vec<&tir::Step> = steps.iter().chain(until).collect();
        for position in 0..first_count {
            let mut first: Option<(Scalar, Span)> = None;
            for step in &all {
                let Some(&key) = step.keys.get(position) else { continue };
                let node = self.node(key);
                let (scalar, span) = (node.ty.scalar, node.span);
                if scalar.is_open() || scalar == Scalar::Null {
                    continue;
                }
                match first {
                    None => first = Some((scalar, span)),
                    Some((first_scalar, first_span)) if !compatible(first_scalar, scalar) => {
                        self.report(
                            Diagnostic::new(
                                Code::E0302,
                                format!("join key {} is a {} here but a {} in an earlier step", position + 1, scalar.name(), first_scalar.name()),
                            )
                            .primary(span, format!("this is a {}", scalar.name()))
                            .secondary(first_span, format!("this is a {}", first_scalar.name()))
                            .help("join keys at the same position must hold comparable values"),
                        );
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
    }

    fn maxspan(&mut self, param: &ast::Param) -> Option<u64> {
        let units = literal::DURATION_UNITS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
        let (value, unit) = match &param.value {
            ParamValue::Duration { value, unit } => (value.clone(), unit.clone()),
            ParamValue::Int(value) => {
                self.report(
                    Diagnostic::new(Code::E0303, "`maxspan` needs a time unit")
                        .primary(param.span, "no unit")
                        .help(format!("write e.g. `maxspan={value}s`; units: {units}")),
                );
                return None;
            }
            _ => {
                self.report(Diagnostic::new(Code::E0303, "`maxspan` needs a duration").primary(param.span, "not a duration").help("write e.g. `maxspan=30s`"));
                return None;
            }
        };
        match literal::duration_ns(&value, &unit) {
            // Elasticsearch reads `maxspan=0` as "no limit".
            Ok(ns) if self.is_es() => {
                self.maxspan_was_zero = ns == 0;
                (ns > 0).then_some(ns)
            }
            // python truncates to whole seconds: 1500ms is 1s, 500ms is 0 (a zero-length window).
            Ok(ns) => Some(ns / 1_000_000_000 * 1_000_000_000),
            Err(DurationError::UnknownUnit) => {
                let mut diag = Diagnostic::new(Code::E0303, format!("unknown time unit `{unit}`")).primary(param.span, "not a time unit");
                diag = match did_you_mean(&unit, literal::DURATION_UNITS.iter().map(|(name, _)| *name)) {
                    Some(suggestion) => diag.help(format!("did you mean `{suggestion}`? units: {units}")),
                    None => diag.help(format!("units: {units}")),
                };
                self.report(diag);
                None
            }
            Err(DurationError::NotInteger { suggestion }) => {
                let mut diag = Diagnostic::new(Code::E0303, "`maxspan` must be a whole number of its unit").primary(param.span, "not a whole number");
                if let Some(suggestion) = suggestion {
                    diag = diag.help(format!("write `maxspan={suggestion}`"));
                }
                self.report(diag);
                None
            }
            Err(DurationError::OutOfRange) => {
                self.report(Diagnostic::new(Code::E0303, "`maxspan` is too long").primary(param.span, "more than 584 years").help("use a shorter window"));
                None
            }
        }
    }

    fn runs(&mut self, param: &ast::Param) -> i64 {
        match param.value {
            ParamValue::Int(runs) if (1..=MAX_RUNS).contains(&runs) => {
                if runs == 1 {
                    self.report(
                        Diagnostic::new(Code::W0013, "`runs=1` does nothing").primary(param.span, "repeats the step once").help("remove `with runs=1`"),
                    );
                }
                runs
            }
            _ => {
                self.report(
                    Diagnostic::new(Code::E0305, format!("`runs` must be a whole number from 1 to {MAX_RUNS}"))
                        .primary(param.span, "invalid value")
                        .help("write e.g. `with runs=3` to repeat a step three times"),
                );
                1
            }
        }
    }

    fn unknown_param(&mut self, param: &ast::Param, known: &[&str], context: &str) {
        let mut diag =
            Diagnostic::new(Code::E0107, format!("unknown parameter `{}` on a {context}", param.name.text)).primary(param.name.span, "unknown parameter");
        diag = match (did_you_mean(&param.name.text, known.iter().copied()), known) {
            (Some(suggestion), _) => diag.help(format!("did you mean `{suggestion}`?")),
            (None, []) => diag.note(format!("a {context} takes no `with` parameters")),
            (None, known) => diag.note(format!("parameters here: {}", known.join(", "))),
        };
        self.report(diag);
    }

    fn missing_step_rules(&mut self, kind: MultiKind, has_maxspan: bool, step: &ast::Step) {
        if kind != MultiKind::Sequence {
            self.report(
                Diagnostic::new(Code::E0306, format!("missing-event steps `![...]` cannot be used in a {}", kind.keyword()))
                    .primary(step.span, "not allowed here"),
            );
        } else if !has_maxspan {
            self.report(
                Diagnostic::new(Code::E0306, "a sequence with a missing-event step needs `maxspan`")
                    .primary(step.span, "missing event without a window")
                    .help("add `with maxspan=...`: the window says how long the event must stay absent"),
            );
        }
    }

    fn fork_rules(&mut self, fork: Option<(bool, Span)>, source_step: usize) -> bool {
        let Some((fork, span)) = fork else { return false };
        if self.is_es() {
            self.report(
                Diagnostic::new(Code::E0009, "`fork` is not Elasticsearch EQL").primary(span, "endgame-dialect clause").help("check with `--dialect endgame`"),
            );
        }
        if source_step == 0 {
            self.report(Diagnostic::new(Code::E0307, "`fork` cannot be used on the first step").primary(span, "nothing to fork yet"));
            return false;
        }
        fork
    }

    pub(super) fn pipes(&mut self, pipes: &[ast::Pipe], query: &tir::Query) -> Vec<tir::Pipe> {
        let n_events = match query {
            tir::Query::Event(_) => None,
            tir::Query::Sequence(tir::Sequence { steps, .. }) | tir::Query::Join(tir::Join { steps, .. }) | tir::Query::Sample(tir::Sample { steps, .. }) => {
                Some(steps.len())
            }
        };
        self.scope.pipe_events = n_events;
        let mut out = Vec::new();
        for pipe in pipes {
            if pipe.name.text.is_empty() {
                continue; // A syntax error, already reported.
            }
            if let Some(checked) = self.pipe(pipe) {
                out.push(checked);
            }
        }
        self.scope.pipe_events = None;
        self.scope.aliases.clear();
        out
    }

    fn pipe(&mut self, pipe: &ast::Pipe) -> Option<tir::Pipe> {
        const PIPES: &[&str] = &["head", "tail", "filter", "unique", "unique_count", "count", "sort"];
        let name = pipe.name.text.as_str();
        match name {
            "head" | "tail" => {
                let count = match pipe.args.as_slice() {
                    [] => 50,
                    [arg] => match arg.unparen().kind {
                        ast::ExprKind::Int(count) if count >= 0 => count as u64,
                        _ => {
                            self.report(
                                Diagnostic::new(Code::E0401, format!("`{name}` takes a whole number of results")).primary(arg.span, "expected a number ≥ 0"),
                            );
                            return None;
                        }
                    },
                    [_, extra, ..] => {
                        self.report(Diagnostic::new(Code::E0401, format!("`{name}` takes one argument")).primary(extra.span, "extra argument"));
                        return None;
                    }
                };
                Some(if name == "head" { tir::Pipe::Head(count) } else { tir::Pipe::Tail(count) })
            }
            "filter" => match pipe.args.as_slice() {
                [condition] => Some(tir::Pipe::Filter(self.condition(condition))),
                _ => {
                    self.report(Diagnostic::new(Code::E0401, "`filter` takes one condition").primary(pipe.span, format!("given {}", pipe.args.len())));
                    None
                }
            },
            "unique" | "unique_count" | "sort" | "count" => {
                if pipe.args.is_empty() && name != "count" {
                    self.report(Diagnostic::new(Code::E0401, format!("`{name}` needs at least one field")).primary(pipe.span, "no fields given"));
                    return None;
                }
                let keys: Vec<ExprId> = pipe.args.iter().map(|arg| self.expr(arg)).collect();
                Some(match name {
                    "unique" => tir::Pipe::Unique(keys),
                    "unique_count" => tir::Pipe::UniqueCount(keys),
                    "sort" => tir::Pipe::Sort(keys),
                    _ => tir::Pipe::Count(keys),
                })
            }
            _ => {
                let mut diag = Diagnostic::new(Code::E0106, format!("unknown pipe `{name}`")).primary(pipe.name.span, "no such pipe");
                diag = match did_you_mean(name, PIPES.iter().copied()) {
                    Some(suggestion) => diag.help(format!("did you mean `{suggestion}`?")),
                    None => diag.note(format!("pipes: {}", PIPES.join(", "))),
                };
                self.report(diag);
                None
            }
        }
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Whether an expression is the literal `true`.
#[allow(dead_code)]
pub(super) fn is_true(kind: &ExprKind) -> bool {
    matches!(kind, ExprKind::Literal(Value::Bool(true)))
}
