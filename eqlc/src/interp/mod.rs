//! The reference interpreter of the typed IR: the executable definition of what every
//! [`tir`] expression means. Back ends must agree with it; docs/semantics.md explains
//! each decision and which reference engine it follows.
//!
//! The interpreter does not know the dialect: every choice is on the IR nodes (case,
//! division, anchoring, wildcard pieces, function semantics).
//!
//! Evaluation never fails: where a reference engine raises an error at run time, the
//! value is null.

#[cfg(test)]
mod tests;

pub use kestrel_bundle::semantics::compare::{Tri, any_element, logic};
pub use kestrel_bundle::semantics::functions::{in_block, to_text};
pub use kestrel_bundle::semantics::value::{Value, java_double, python_float};

use crate::functions::Func;
use crate::tir::{self, Anchor, Case, ExprId, ExprKind, PathStep, Pattern};
use kestrel_bundle::semantics::{Function, compare, functions};
use std::collections::HashMap;

/// An event as the interpreter sees it: fields by their dotted name (as
/// [`tir::FieldPath::name`]), null when absent.
pub trait Event {
    fn get(&self, name: &str) -> Value;
}

/// A declared function: called with its evaluated arguments.
pub type DeclaredFn<'a> = &'a dyn Fn(&[Value]) -> Value;

/// The lineage oracle: whether the current event's process has the relation to a
/// process whose event satisfies the predicate.
pub type LineageFn<'a> = &'a dyn Fn(tir::Relation, &dyn Fn(&dyn Event) -> bool) -> bool;

/// Everything an expression can refer to besides literals.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// The current event.
    pub event: &'a dyn Event,
    /// Events of earlier sequence steps (`StepField.step` indexes this).
    pub steps: &'a [&'a dyn Event],
    /// Declared functions, indexed like `Func::Declared`.
    pub functions: &'a [DeclaredFn<'a>],
    /// `None`: lineage evaluates to null.
    pub lineage: Option<LineageFn<'a>>,
}

/// An event without fields.
pub struct NoEvent;

impl Event for NoEvent {
    fn get(&self, _: &str) -> Value {
        Value::Null
    }
}

/// Elements bound by enclosing array functions, innermost first.
struct Scope<'s> {
    binding: u32,
    value: &'s Value,
    parent: Option<&'s Scope<'s>>,
}

impl Scope<'_> {
    fn lookup(scope: Option<&Scope<'_>>, binding: u32) -> Option<Value> {
        let mut current = scope;
        while let Some(frame) = current {
            if frame.binding == binding {
                return Some(frame.value.clone());
            }
            current = frame.parent;
        }
        None
    }
}

/// Evaluates the expressions of one rule. Regexes and case-folded wildcard patterns
/// are prepared once, when the interpreter is made.
pub struct Interpreter<'r> {
    rule: &'r tir::Rule,
    /// Compiled patterns of each `Regex` node; `None` for a pattern that does not compile.
    regexes: HashMap<ExprId, Vec<Option<regex::Regex>>>,
    /// Folded patterns of each case-insensitive `Wildcard` node.
    folded: HashMap<ExprId, Vec<Pattern>>,
    /// The values of each `InSet` node.
    sets: HashMap<ExprId, Vec<Value>>,
}

impl<'r> Interpreter<'r> {
    /// Prepares every expression the rule's query and pipes reach. (Others, if asked
    /// for, are prepared when evaluated.)
    pub fn new(rule: &'r tir::Rule) -> Interpreter<'r> {
        Interpreter::prepare(rule, reachable(rule, roots(rule)).into_iter())
    }

    /// An interpreter that prepares only the expressions under `root`.
    fn for_subtree(rule: &'r tir::Rule, root: ExprId) -> Interpreter<'r> {
        Interpreter::prepare(rule, reachable(rule, vec![root]).into_iter())
    }

    fn prepare(rule: &'r tir::Rule, ids: impl Iterator<Item = ExprId>) -> Interpreter<'r> {
        let mut regexes = HashMap::new();
        let mut folded = HashMap::new();
        let mut sets = HashMap::new();
        for id in ids {
            match &rule.expr(id).kind {
                ExprKind::Regex { patterns, case, anchor, .. } => {
                    regexes.insert(id, patterns.iter().map(|pattern| compile_regex(pattern, *case, *anchor)).collect());
                }
                ExprKind::Wildcard { patterns, case: Case::Insensitive, .. } => {
                    folded.insert(id, patterns.iter().map(compare::fold_pattern).collect());
                }
                ExprKind::InSet { values, .. } => {
                    sets.insert(id, values.iter().map(literal).collect());
                }
                _ => {}
            }
        }
        Interpreter { rule, regexes, folded, sets }
    }

    pub fn rule(&self) -> &'r tir::Rule {
        self.rule
    }

    pub fn eval(&self, expr: ExprId, env: &Env) -> Value {
        self.eval_in(expr, env, None)
    }

    /// A condition matches only when it evaluates to true (a value that is not a
    /// boolean is read as `and`/`or` read their operands: see [`logic`]).
    pub fn matches(&self, condition: ExprId, env: &Env) -> bool {
        logic(&self.eval(condition, env)) == Some(true)
    }

    fn matches_in(&self, condition: ExprId, env: &Env, scope: Option<&Scope<'_>>) -> bool {
        logic(&self.eval_in(condition, env, scope)) == Some(true)
    }

    fn eval_in(&self, id: ExprId, env: &Env, scope: Option<&Scope<'_>>) -> Value {
        let eval = |child: ExprId| self.eval_in(child, env, scope);
        match &self.rule.expr(id).kind {
            ExprKind::Literal(value) => literal(value),
            ExprKind::Field(path) => walk(env.event.get(&path.name), &path.rest),
            ExprKind::StepField { step, path } => match env.steps.get(*step) {
                Some(event) => walk(event.get(&path.name), &path.rest),
                None => Value::Null,
            },
            ExprKind::Var { binding, path } => match Scope::lookup(scope, *binding) {
                Some(value) => walk(value, path),
                None => Value::Null,
            },
            ExprKind::Not(inner) => compare::tri_value(logic(&eval(*inner)).map(|value| !value)),
            ExprKind::And(items) => {
                let mut answer = Some(true);
                for item in items {
                    match logic(&eval(*item)) {
                        Some(false) => return Value::Bool(false),
                        None => answer = None,
                        Some(true) => {}
                    }
                }
                compare::tri_value(answer)
            }
            ExprKind::Or(items) => {
                let mut answer = Some(false);
                for item in items {
                    match logic(&eval(*item)) {
                        Some(true) => return Value::Bool(true),
                        None => answer = None,
                        Some(false) => {}
                    }
                }
                compare::tri_value(answer)
            }
            ExprKind::Truthy(inner) => compare::tri_value(eval(*inner).truthiness()),
            ExprKind::IsNull { expr, negated } => Value::Bool(eval(*expr).is_null() != *negated),
            ExprKind::Compare { op, lhs, rhs, case } if versioned(self.rule, *lhs, *rhs) => compare::compare_as_versions(*op, &eval(*lhs), &eval(*rhs), *case),
            ExprKind::Compare { op, lhs, rhs, case } => compare::compare(*op, &eval(*lhs), &eval(*rhs), *case),
            ExprKind::Arith { op, lhs, rhs } => compare::arith(*op, &eval(*lhs), &eval(*rhs)),
            ExprKind::Neg(inner) => compare::negate(&eval(*inner)),
            ExprKind::ToNumber(inner) => compare::to_number(&eval(*inner)),
            ExprKind::InSet { expr, values, case, negated } => match self.sets.get(&id) {
                Some(prepared) => compare::in_set(&eval(*expr), prepared, *case, *negated),
                None => compare::in_set(&eval(*expr), &values.iter().map(literal).collect::<Vec<_>>(), *case, *negated),
            },
            ExprKind::Wildcard { expr, patterns, case } => match (self.folded.get(&id), case) {
                (Some(folded), _) => compare::wildcard(&eval(*expr), folded, *case),
                (None, Case::Insensitive) => compare::wildcard(&eval(*expr), &patterns.iter().map(compare::fold_pattern).collect::<Vec<_>>(), *case),
                (None, Case::Sensitive) => compare::wildcard(&eval(*expr), patterns, *case),
            },
            ExprKind::Regex { expr, patterns, case, anchor } => match self.regexes.get(&id) {
                Some(compiled) => compare::regex(&eval(*expr), compiled),
                None => {
                    let compiled: Vec<_> = patterns.iter().map(|pattern| compile_regex(pattern, *case, *anchor)).collect();
                    compare::regex(&eval(*expr), &compiled)
                }
            },
            ExprKind::Call { func: Func::Declared(index), args, .. } => match env.functions.get(*index as usize) {
                Some(function) => {
                    let args: Vec<Value> = args.iter().map(|arg| eval(*arg)).collect();
                    function(&args)
                }
                None => Value::Null,
            },
            ExprKind::Call { func, args, case, semantics } => {
                let args: Vec<Value> = args.iter().map(|arg| eval(*arg)).collect();
                match shared_function(*func) {
                    Some(function) => functions::call(function, &args, *case, *semantics),
                    None => Value::Null,
                }
            }
            ExprKind::ArrayFn { func, array, binding, body } => {
                let array = eval(*array);
                let items: &[Value] = match &array {
                    Value::Array(items) => items,
                    _ => &[],
                };
                let hit = |item: &Value| self.matches_in(*body, env, Some(&Scope { binding: *binding, value: item, parent: scope }));
                match func {
                    Func::ArrayCount => Value::Long(items.iter().filter(|item| hit(item)).count() as i64),
                    _ => Value::Bool(items.iter().any(hit)),
                }
            }
            ExprKind::Lineage { relation, query } => match env.lineage {
                Some(lineage) => {
                    let predicate = |event: &dyn Event| {
                        let inner = Env { event, steps: env.steps, functions: env.functions, lineage: env.lineage };
                        self.matches_in(query.condition, &inner, scope)
                    };
                    Value::Bool(lineage(*relation, &predicate))
                }
                None => Value::Null,
            },
            ExprKind::Error => Value::Null,
        }
    }
}

/// Whether a comparison of `lhs` and `rhs` is in version order: either is typed
/// `version` (docs/semantics.md, "Versions"). The Wasm back end asks the same.
pub fn versioned(rule: &tir::Rule, lhs: ExprId, rhs: ExprId) -> bool {
    [lhs, rhs].iter().any(|id| rule.expr(*id).ty.scalar == tir::Scalar::Version)
}

/// The expressions a rule's query and pipes start from.
fn roots(rule: &tir::Rule) -> Vec<ExprId> {
    fn step_roots(steps: &[tir::Step], until: Option<&tir::Step>, out: &mut Vec<ExprId>) {
        for step in steps.iter().chain(until) {
            out.push(step.query.condition);
            out.extend(&step.keys);
        }
    }
    let mut out = Vec::new();
    match &rule.query {
        tir::Query::Event(query) => out.push(query.condition),
        tir::Query::Sequence(sequence) => step_roots(&sequence.steps, sequence.until.as_ref(), &mut out),
        tir::Query::Join(join) => step_roots(&join.steps, join.until.as_ref(), &mut out),
        tir::Query::Sample(sample) => step_roots(&sample.steps, None, &mut out),
    }
    for pipe in &rule.pipes {
        match pipe {
            tir::Pipe::Head(_) | tir::Pipe::Tail(_) => {}
            tir::Pipe::Filter(id) => out.push(*id),
            tir::Pipe::Unique(ids) | tir::Pipe::UniqueCount(ids) | tir::Pipe::Count(ids) | tir::Pipe::Sort(ids) => out.extend(ids),
        }
    }
    out
}

/// Every expression under the roots, each once.
fn reachable(rule: &tir::Rule, roots: Vec<ExprId>) -> Vec<ExprId> {
    let mut seen = std::collections::HashSet::new();
    let mut stack = roots;
    let mut out = Vec::new();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            out.push(id);
            stack.extend(rule.expr(id).kind.children());
        }
    }
    out
}

/// Follows the indexes and sub-fields after a field: an index into an array (null out
/// of range), a field of an object. Anything else is null.
fn walk(mut value: Value, steps: &[PathStep]) -> Value {
    for step in steps {
        value = match (value, step) {
            (Value::Array(mut items), PathStep::Index(idx)) if (*idx as usize) < items.len() => items.swap_remove(*idx as usize),
            (object @ Value::Object(_), PathStep::Field(name)) => object.field(name),
            _ => return Value::Null,
        };
    }
    value
}

/// Compiles a regex as the node says: anchored at the start, or on the whole value;
/// `.` matches newlines (python `re.DOTALL`, Lucene).
fn compile_regex(pattern: &str, case: Case, anchor: Anchor) -> Option<regex::Regex> {
    let anchored = match anchor {
        Anchor::Whole => format!(r"\A(?:{pattern})\z"),
        Anchor::Start => format!(r"\A(?:{pattern})"),
    };
    regex::RegexBuilder::new(&anchored).case_insensitive(case == Case::Insensitive).dot_matches_new_line(true).build().ok()
}

/// Evaluates an expression that reads no field, step, variable or lineage, and calls
/// no declared function (constant folding); `None` otherwise, and for expressions that
/// failed to check.
pub fn fold(rule: &tir::Rule, expr: ExprId) -> Option<Value> {
    let mut stack = vec![expr];
    while let Some(id) = stack.pop() {
        let kind = &rule.expr(id).kind;
        match kind {
            ExprKind::Field(_) | ExprKind::StepField { .. } | ExprKind::Var { .. } | ExprKind::Lineage { .. } | ExprKind::Error => return None,
            ExprKind::Call { func: Func::Declared(_), .. } => return None,
            _ => stack.extend(kind.children()),
        }
    }
    let env = Env { event: &NoEvent, steps: &[], functions: &[], lineage: None };
    Some(Interpreter::for_subtree(rule, expr).eval(expr, &env))
}

/// The shared implementation of a built-in. The checker lowers the others (arithmetic
/// functions, `match`, `wildcard`, the array loops) to other nodes; declared functions
/// go through [`Env::functions`].
fn shared_function(func: Func) -> Option<Function> {
    Some(match func {
        Func::Between => Function::Between,
        Func::CidrMatch => Function::CidrMatch,
        Func::Concat => Function::Concat,
        Func::EndsWith => Function::EndsWith,
        Func::IndexOf => Function::IndexOf,
        Func::Length => Function::Length,
        Func::Number => Function::Number,
        Func::StartsWith => Function::StartsWith,
        Func::String => Function::String,
        Func::StringContains => Function::StringContains,
        Func::Substring => Function::Substring,
        Func::ArrayContains => Function::ArrayContains,
        Func::Safe => Function::Safe,
        _ => return None,
    })
}

/// An object is an event: its fields by dotted name, or nested, or a mix.
impl Event for Value {
    fn get(&self, name: &str) -> Value {
        self.path(name)
    }
}

/// A literal of the IR as a run-time value.
pub fn literal(value: &tir::Value) -> Value {
    match value {
        tir::Value::Null => Value::Null,
        tir::Value::Bool(value) => Value::Bool(*value),
        tir::Value::Long(value) => Value::Long(*value),
        tir::Value::Double(value) => Value::Double(*value),
        tir::Value::Str(text) => Value::Str(text.clone()),
        tir::Value::Ip(address) => Value::Ip(*address),
    }
}
