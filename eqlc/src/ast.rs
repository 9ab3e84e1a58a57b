//! The syntax tree: what the source says, with a [`Span`] on every node and no types.
//!
//! The tree is faithful enough to print back as equivalent EQL (`crate::print`), and it
//! keeps the union of both dialects: dialect rules are applied by the checker, not here.

use crate::lex::StrKind;
use crate::source::Span;

/// A parsed source: macro and constant definitions, then at most one query with pipes.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub definitions: Vec<Definition>,
    pub query: Option<PipedQuery>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Definition {
    /// `macro NAME(a, b) expr`
    Macro { name: Name, params: Vec<Name>, body: Expr, span: Span },
    /// `const NAME = literal`
    Const { name: Name, value: Expr, span: Span },
}

impl Definition {
    pub fn name(&self) -> &Name {
        match self {
            Definition::Macro { name, .. } | Definition::Const { name, .. } => name,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PipedQuery {
    pub query: Query,
    pub pipes: Vec<Pipe>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    Event(EventQuery),
    Multi(MultiQuery),
    /// A query the parser could not make sense of; a diagnostic says why.
    Error(Span),
}

impl Query {
    pub fn span(&self) -> Span {
        match self {
            Query::Event(query) => query.span,
            Query::Multi(query) => query.span,
            Query::Error(span) => *span,
        }
    }
}

/// `process where cond`, `any where cond`, `"my-category" where cond`, or a bare
/// condition (endgame dialect).
#[derive(Clone, Debug, PartialEq)]
pub struct EventQuery {
    pub category: Option<Category>,
    pub condition: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Category {
    pub name: String,
    /// Written as a string, `"my-category" where ...` (Elasticsearch).
    pub quoted: bool,
    pub span: Span,
}

impl Category {
    pub fn is_any(&self) -> bool {
        !self.quoted && self.name == "any"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiKind {
    Sequence,
    Join,
    Sample,
}

impl MultiKind {
    pub fn keyword(self) -> &'static str {
        match self {
            MultiKind::Sequence => "sequence",
            MultiKind::Join => "join",
            MultiKind::Sample => "sample",
        }
    }
}

/// `sequence`, `join` or `sample`: header clauses, steps, and an optional `until`.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiQuery {
    pub kind: MultiKind,
    pub keyword_span: Span,
    pub header: Vec<Clause>,
    pub steps: Vec<Step>,
    pub until: Option<Box<Step>>,
    pub span: Span,
}

/// One bracketed step: `[query]` or `![query]`, and its clauses in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub missing: bool,
    pub query: EventQuery,
    pub clauses: Vec<Clause>,
    pub span: Span,
}

/// A clause after a header keyword or a step, in whatever order the source gives them.
#[derive(Clone, Debug, PartialEq)]
pub enum Clause {
    /// `by a, b`
    By { keys: Vec<Expr>, span: Span },
    /// `with maxspan=5m`, `with runs=3`
    With { params: Vec<Param>, span: Span },
    /// `as event0`
    As { alias: Name, span: Span },
    /// `fork`, `fork=true`; `name` is what was written (the checker insists on `fork`).
    Fork { name: Name, value: Option<bool>, span: Span },
}

impl Clause {
    pub fn span(&self) -> Span {
        match self {
            Clause::By { span, .. } | Clause::With { span, .. } | Clause::As { span, .. } | Clause::Fork { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Name,
    pub value: ParamValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// A number and a unit, as written: `30s`, `5 m`, `2.5m`.
    Duration {
        value: String,
        unit: String,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Name(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipe {
    pub name: Name,
    pub args: Vec<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Height of this subtree; the parser caps it so later passes can recurse safely.
    pub depth: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    EqEq,
    /// `=` (endgame alias of `==`)
    Eq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn text(self) -> &'static str {
        match self {
            CompareOp::EqEq => "==",
            CompareOp::Eq => "=",
            CompareOp::NotEq => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    pub fn text(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

/// The string-matching operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `:` (case-insensitive wildcard equality)
    Colon,
    Like,
    LikeCi,
    Regex,
    RegexCi,
}

impl MatchOp {
    pub fn text(self) -> &'static str {
        match self {
            MatchOp::Colon => ":",
            MatchOp::Like => "like",
            MatchOp::LikeCi => "like~",
            MatchOp::Regex => "regex",
            MatchOp::RegexCi => "regex~",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String, StrKind),
    Path(Path),
    /// `f(args)`, `f~(args)`, or the endgame method form `x:f(args)` (receiver first).
    Call {
        name: Name,
        case_insensitive: bool,
        args: Vec<Expr>,
        method: bool,
    },
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Compare {
        op: CompareOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Arith {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
    /// `x in (a, b)`, `x not in~ (a, b)`
    In {
        expr: Box<Expr>,
        items: Vec<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
    /// `x : "a*"`, `x like~ ("a*", "b")`; `list` records whether parentheses were written.
    Match {
        expr: Box<Expr>,
        op: MatchOp,
        patterns: Vec<Expr>,
        list: bool,
    },
    /// `descendant of [q]`, `child of [q]`, `event of [q]`
    Lineage {
        relation: Name,
        query: Box<EventQuery>,
    },
    /// `(expr)`, kept so that printing and spans follow the source.
    Paren(Box<Expr>),
    /// An expression the parser could not read; a diagnostic says why.
    Error,
}

/// A field reference: `a.b[0].c`, `?a.b`, `` `odd-name`.x ``, `$entry.name`.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub optional: bool,
    pub root: PathRoot,
    pub root_span: Span,
    pub segments: Vec<PathSegment>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PathRoot {
    Name(String),
    Escaped(String),
    Var(String),
}

impl PathRoot {
    pub fn text(&self) -> &str {
        match self {
            PathRoot::Name(text) | PathRoot::Escaped(text) | PathRoot::Var(text) => text,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum PathSegment {
    Field { name: String, escaped: bool, span: Span },
    Index { index: u64, span: Span },
}

impl Path {
    /// The dotted name without indexes if the path has none, e.g. `process.parent.name`.
    pub fn dotted(&self) -> Option<String> {
        let mut out = self.root.text().to_string();
        for segment in &self.segments {
            match segment {
                PathSegment::Field { name, .. } => {
                    out.push('.');
                    out.push_str(name);
                }
                PathSegment::Index { .. } => return None,
            }
        }
        Some(out)
    }

    pub fn has_index(&self) -> bool {
        self.segments.iter().any(|segment| matches!(segment, PathSegment::Index { .. }))
    }
}

/// The deepest expression the parser builds; deeper input is an error (E0901).
pub const MAX_EXPR_DEPTH: u16 = 192;

impl Expr {
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        let depth = 1 + kind.children().map(|child| child.depth).max().unwrap_or(0);
        Expr { kind, span, depth }
    }

    pub fn error(span: Span) -> Expr {
        Expr { kind: ExprKind::Error, span, depth: 1 }
    }

    /// Looks through parentheses.
    pub fn unparen(&self) -> &Expr {
        let mut expr = self;
        while let ExprKind::Paren(inner) = &expr.kind {
            expr = inner;
        }
        expr
    }
}

impl ExprKind {
    /// Direct sub-expressions (not those inside a lineage subquery).
    pub fn children(&self) -> Box<dyn Iterator<Item = &Expr> + '_> {
        match self {
            ExprKind::Null | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(..) | ExprKind::Path(_) | ExprKind::Error => {
                Box::new(std::iter::empty())
            }
            ExprKind::Call { args, .. } => Box::new(args.iter()),
            ExprKind::Not(inner) | ExprKind::Neg(inner) | ExprKind::Paren(inner) => Box::new(std::iter::once(&**inner)),
            ExprKind::And(items) | ExprKind::Or(items) => Box::new(items.iter()),
            ExprKind::Compare { lhs, rhs, .. } | ExprKind::Arith { lhs, rhs, .. } => Box::new([&**lhs, &**rhs].into_iter()),
            ExprKind::In { expr, items, .. } => Box::new(std::iter::once(&**expr).chain(items.iter())),
            ExprKind::Match { expr, patterns, .. } => Box::new(std::iter::once(&**expr).chain(patterns.iter())),
            ExprKind::Lineage { query, .. } => Box::new(std::iter::once(&query.condition)),
        }
    }
}
