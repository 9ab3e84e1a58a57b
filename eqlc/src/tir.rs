//! The typed IR: what a rule means, with every dialect decision already made.
//!
//! **Invariant:** nothing after the checker asks which dialect a rule was written in.
//! Case sensitivity is on each comparison, division says whether it floors or
//! truncates, regexes say how they are anchored, wildcard patterns say whether `?` is
//! a wildcard, and sequences carry their semantics. Macros and constants are expanded,
//! `runs=N` is unrolled, and `sequence by` keys are prepended to every step's keys.
//!
//! Expressions live in an arena ([`Rule::exprs`]) addressed by [`ExprId`].

use crate::functions::Func;
use crate::source::Span;
pub use kestrel_bundle::semantics::{ArithOp, Case, CompareOp, FunctionSemantics, Pattern, WildPiece};
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(u32);

impl ExprId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The scalar type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// The `null` literal.
    Null,
    Bool,
    Long,
    Double,
    /// A string (ECS `keyword`).
    Str,
    Ip,
    Date,
    Version,
    /// Known only at run time (dynamic schemas, unlisted fields, `number()`).
    Any,
    /// After a reported error; never reported again.
    Error,
}

impl Scalar {
    pub fn name(self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool => "boolean",
            Scalar::Long => "long",
            Scalar::Double => "double",
            Scalar::Str => "keyword",
            Scalar::Ip => "ip",
            Scalar::Date => "date",
            Scalar::Version => "version",
            Scalar::Any => "any",
            Scalar::Error => "error",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, Scalar::Long | Scalar::Double)
    }

    /// True for types that say nothing yet: any, error.
    pub fn is_open(self) -> bool {
        matches!(self, Scalar::Any | Scalar::Error)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ty {
    pub scalar: Scalar,
    /// An array of `scalar` (ECS `normalize: array`). Operators match any element.
    pub array: bool,
}

impl Ty {
    pub const fn of(scalar: Scalar) -> Ty {
        Ty { scalar, array: false }
    }

    pub const fn array_of(scalar: Scalar) -> Ty {
        Ty { scalar, array: true }
    }

    pub fn name(self) -> String {
        if self.array { format!("{}[]", self.scalar.name()) } else { self.scalar.name().to_string() }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(String),
    Ip(IpAddr),
}

impl Value {
    pub fn scalar(&self) -> Scalar {
        match self {
            Value::Null => Scalar::Null,
            Value::Bool(_) => Scalar::Bool,
            Value::Long(_) => Scalar::Long,
            Value::Double(_) => Scalar::Double,
            Value::Str(_) => Scalar::Str,
            Value::Ip(_) => Scalar::Ip,
        }
    }
}

/// A typed rule, ready for the back ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub query: Query,
    pub pipes: Vec<Pipe>,
    pub exprs: Vec<Expr>,
    /// Names of the declared functions, indexed by `Func::Declared`.
    pub declared: Vec<String>,
    /// Case folding of the keys of `unique`, `unique_count`, `count` and `sort`
    /// (python eql folds them; Elasticsearch has no such pipes, and Kestrel keeps case).
    pub pipe_key_case: Case,
}

impl Rule {
    pub fn expr(&self, id: ExprId) -> &Expr {
        &self.exprs[id.index()]
    }

    /// The text of expression `id`, if it is a string literal.
    pub fn str_literal(&self, id: ExprId) -> Option<&str> {
        match &self.expr(id).kind {
            ExprKind::Literal(Value::Str(text)) => Some(text),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    Event(EventQuery),
    Sequence(Sequence),
    Join(Join),
    Sample(Sample),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Category {
    Any,
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventQuery {
    pub category: Category,
    /// A boolean expression; [`Rule::expr`] resolves it.
    pub condition: ExprId,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub query: EventQuery,
    /// Join keys: the shared `by` keys first, then the step's own.
    pub keys: Vec<ExprId>,
    /// `![...]`: the sequence matches only if no such event occurs here.
    pub missing: bool,
    pub alias: Option<String>,
    /// `fork` (endgame): the partial match is copied forward, not consumed.
    pub fork: bool,
    /// The step as written, before `runs=N` unrolling (steps unrolled from one share it).
    pub source_step: usize,
    pub span: Span,
}

/// How a sequence treats the edge cases the two reference engines disagree on.
/// docs/semantics.md describes each choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceSemantics {
    /// Elasticsearch: events without a key value are dropped unless the key is
    /// `?optional`; multi-value keys form their cartesian product; an until event
    /// kills a partial if `last <= until < hit`; results in last-event order.
    Elasticsearch,
    /// python `eql`: null keys join each other; keys fold case; `until` runs before the
    /// steps on the same event; results in completion order.
    Endgame,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    pub steps: Vec<Step>,
    pub until: Option<Step>,
    /// Inclusive window from the first to the last event, in nanoseconds. `None`: no limit.
    pub maxspan_ns: Option<u64>,
    pub semantics: SequenceSemantics,
    /// Case folding of string join keys.
    pub key_case: Case,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Join {
    pub steps: Vec<Step>,
    pub until: Option<Step>,
    pub key_case: Case,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub steps: Vec<Step>,
    pub key_case: Case,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Pipe {
    Head(u64),
    Tail(u64),
    Filter(ExprId),
    Unique(Vec<ExprId>),
    UniqueCount(Vec<ExprId>),
    Count(Vec<ExprId>),
    Sort(Vec<ExprId>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

/// Where a regular expression must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// The whole value (Elasticsearch, Lucene).
    Whole,
    /// A prefix of the value (python `re.match`).
    Start,
}

/// A field path below the event (or below an earlier step's event, or a loop variable).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath {
    /// The dotted name, e.g. `process.args`, as the schema knows it.
    pub name: String,
    /// Indexes and sub-fields after the schema field, e.g. `[0]`, `.b` in `a[0].b`.
    pub rest: Vec<PathStep>,
    /// Written `?field` (Elasticsearch): may be missing without an error.
    pub optional: bool,
    /// Listed in the schema (as opposed to dynamic).
    pub known: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathStep {
    Field(String),
    Index(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Literal(Value),
    /// A field of the current event.
    Field(FieldPath),
    /// A field of the event matched at an earlier sequence step (`event0.x`, `events[1].x`).
    StepField {
        step: usize,
        path: FieldPath,
    },
    /// The element bound by an enclosing array function, and a path below it.
    Var {
        binding: u32,
        path: Vec<PathStep>,
    },
    Not(ExprId),
    And(Vec<ExprId>),
    Or(Vec<ExprId>),
    /// Truthiness of a value that is not a boolean (endgame and dynamic fields).
    Truthy(ExprId),
    IsNull {
        expr: ExprId,
        negated: bool,
    },
    Compare {
        op: CompareOp,
        lhs: ExprId,
        rhs: ExprId,
        case: Case,
    },
    Arith {
        op: ArithOp,
        lhs: ExprId,
        rhs: ExprId,
    },
    Neg(ExprId),
    /// Converts a keyword to a number at run time (null if it does not parse):
    /// `user.id >= 1000` on a keyword field.
    ToNumber(ExprId),
    /// Membership in a set of literals.
    InSet {
        expr: ExprId,
        values: Vec<Value>,
        case: Case,
        negated: bool,
    },
    Wildcard {
        expr: ExprId,
        patterns: Vec<Pattern>,
        case: Case,
    },
    Regex {
        expr: ExprId,
        patterns: Vec<String>,
        case: Case,
        anchor: Anchor,
    },
    /// A function call. `add`, `subtract`, `multiply`, `divide` and `modulo` never appear
    /// here: the checker lowers them to [`ExprKind::Arith`].
    Call {
        func: Func,
        args: Vec<ExprId>,
        case: Case,
        semantics: FunctionSemantics,
    },
    /// `arraySearch`, `arrayCount`, `_arraysearch`: `body` sees the element as `binding`.
    ArrayFn {
        func: Func,
        array: ExprId,
        binding: u32,
        body: ExprId,
    },
    Lineage {
        relation: Relation,
        query: Box<EventQuery>,
    },
    /// Stands in for an expression that failed to check.
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relation {
    Descendant,
    Child,
    /// The same process.
    Event,
}

impl ExprKind {
    /// Direct sub-expressions.
    pub fn children(&self) -> Vec<ExprId> {
        match self {
            ExprKind::Literal(_) | ExprKind::Field(_) | ExprKind::StepField { .. } | ExprKind::Var { .. } | ExprKind::Error => Vec::new(),
            ExprKind::Not(id) | ExprKind::Truthy(id) | ExprKind::Neg(id) | ExprKind::ToNumber(id) => vec![*id],
            ExprKind::IsNull { expr, .. } | ExprKind::InSet { expr, .. } | ExprKind::Wildcard { expr, .. } | ExprKind::Regex { expr, .. } => vec![*expr],
            ExprKind::And(items) | ExprKind::Or(items) => items.clone(),
            ExprKind::Compare { lhs, rhs, .. } | ExprKind::Arith { lhs, rhs, .. } => vec![*lhs, *rhs],
            ExprKind::Call { args, .. } => args.clone(),
            ExprKind::ArrayFn { array, body, .. } => vec![*array, *body],
            ExprKind::Lineage { query, .. } => vec![query.condition],
        }
    }
}

/// Builds the arena of a [`Rule`].
#[derive(Default)]
pub struct Arena {
    exprs: Vec<Expr>,
}

impl Arena {
    pub fn push(&mut self, kind: ExprKind, ty: Ty, span: Span) -> ExprId {
        let id = ExprId(u32::try_from(self.exprs.len()).expect("fewer than 2^32 expressions"));
        self.exprs.push(Expr { kind, ty, span });
        id
    }

    pub fn get(&self, id: ExprId) -> &Expr {
        &self.exprs[id.index()]
    }

    pub fn into_exprs(self) -> Vec<Expr> {
        self.exprs
    }
}
