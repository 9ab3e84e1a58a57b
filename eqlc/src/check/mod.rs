//! Checking: [`ast::File`] → [`tir::Rule`]: name resolution against the schema, type
//! checking, dialect rules, and the lints that need types.
//!
//! The checker never stops at the first problem. An expression that fails to check
//! becomes `ExprKind::Error` with type `Scalar::Error`, and nothing that depends on it
//! is reported again, so every diagnostic has its own cause.

mod expr;
mod lint;
mod literal;
mod query;
mod resolve;

pub use literal::{DURATION_UNITS, DurationError, RegexProblem, check_regex, classify_wildcard, duration_ns, parse_cidr, wildcard_matches};

use crate::ast;
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::dialect::{Dialect, EndgameCase};
use crate::functions::Declaration;
use crate::source::Span;
use crate::tir::{self, Arena, Case, ExprId, ExprKind, Scalar, Ty};
use kestrel_bundle::schema::Schema;
use std::collections::{HashMap, HashSet};

/// What a rule is checked against.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    pub schema: &'a Schema,
    pub dialect: Dialect,
    /// Case folding of the endgame dialect (ignored for Elasticsearch).
    pub endgame_case: EndgameCase,
    /// Functions declared outside the built-in table.
    pub declarations: &'a [Declaration],
}

impl<'a> Options<'a> {
    /// The Elasticsearch dialect against `schema`, with only the built-in functions:
    /// what `eqlc check` and `eqlc build` do without flags but `--schema`.
    pub fn elasticsearch(schema: &'a Schema) -> Options<'a> {
        Options { schema, dialect: Dialect::Elasticsearch, endgame_case: EndgameCase::Insensitive, declarations: &[] }
    }
}

/// Checks one parsed file. Returns no rule when the file holds no query.
pub fn rule(file: &ast::File, options: &Options) -> (Option<tir::Rule>, Vec<Diagnostic>) {
    let mut checker = Checker::new(options);
    checker.definitions(&file.definitions);
    let Some(piped) = &file.query else {
        return (None, checker.diags);
    };
    let Some(query) = checker.query(&piped.query) else {
        return (None, checker.diags);
    };
    let pipes = checker.pipes(&piped.pipes, &query);
    let declared = options.declarations.iter().map(|declaration| declaration.name.clone()).collect();
    let pipe_key_case = match options.dialect {
        Dialect::Elasticsearch => tir::Case::Sensitive,
        Dialect::Endgame => checker.endgame_case(),
    };
    let rule = tir::Rule { query, pipes, exprs: checker.arena.into_exprs(), declared, pipe_key_case };
    (Some(rule), checker.diags)
}

/// A name an array function binds to each element (`x` in `arraySearch(a, x, ...)`).
struct Binding {
    name: String,
    /// Written `$name` (endpoint form).
    dollar: bool,
    id: u32,
    element: Ty,
}

/// What names mean at the current point of the rule.
#[derive(Default)]
struct Scope {
    /// Aliases of sequence steps before the current one: name → (step index, span).
    aliases: Vec<(String, usize, Span)>,
    /// Aliases of the current and later steps, to explain a forward reference.
    later_aliases: Vec<(String, Span)>,
    /// Aliases of the query that cannot be used here (`until`, shared `by` keys).
    hidden_aliases: Vec<(String, Span)>,
    /// In a pipe after a sequence of this many events: `events[i].x` and plain fields
    /// (meaning the first event) are allowed.
    pipe_events: Option<usize>,
}

struct Checker<'a> {
    options: &'a Options<'a>,
    diags: Vec<Diagnostic>,
    arena: Arena,
    macros: HashMap<String, &'a ast::Definition>,
    constants: HashMap<String, tir::Value>,
    /// Macro arguments while a macro body is checked: parameter → checked argument.
    macro_args: Vec<HashMap<String, ExprId>>,
    /// Macros being expanded, to stop recursion.
    expanding: Vec<String>,
    bindings: Vec<Binding>,
    next_binding: u32,
    scope: Scope,
    /// Fields already warned about (W0007), so each is reported once.
    warned_fields: HashSet<String>,
    /// The schema's fingerprint, computed when first needed.
    schema_fingerprint: Option<u64>,
    /// The sequence being checked wrote `maxspan=0` (no limit, in Elasticsearch).
    maxspan_was_zero: bool,
}

impl<'a> Checker<'a> {
    fn new(options: &'a Options<'a>) -> Checker<'a> {
        Checker {
            options,
            diags: Vec::new(),
            arena: Arena::default(),
            macros: HashMap::new(),
            constants: HashMap::new(),
            macro_args: Vec::new(),
            expanding: Vec::new(),
            bindings: Vec::new(),
            next_binding: 0,
            scope: Scope::default(),
            warned_fields: HashSet::new(),
            schema_fingerprint: None,
            maxspan_was_zero: false,
        }
    }

    fn report(&mut self, diag: Diagnostic) {
        self.diags.push(diag);
    }

    fn is_es(&self) -> bool {
        self.options.dialect == Dialect::Elasticsearch
    }

    /// Case folding of the endgame dialect's operators.
    fn endgame_case(&self) -> Case {
        match self.options.endgame_case {
            EndgameCase::Insensitive => Case::Insensitive,
            EndgameCase::Sensitive => Case::Sensitive,
        }
    }

    /// The case of an operator: `insensitive_form` says whether the Elasticsearch
    /// spelling used is the folding one (`:`, `like~`, `in~`, `fn~`).
    fn case_for(&self, insensitive_form: bool) -> Case {
        match self.options.dialect {
            Dialect::Elasticsearch if insensitive_form => Case::Insensitive,
            Dialect::Elasticsearch => Case::Sensitive,
            Dialect::Endgame => self.endgame_case(),
        }
    }

    fn push(&mut self, kind: ExprKind, ty: Ty, span: Span) -> ExprId {
        self.arena.push(kind, ty, span)
    }

    fn error_expr(&mut self, span: Span) -> ExprId {
        self.push(ExprKind::Error, Ty::of(Scalar::Error), span)
    }

    fn ty(&self, id: ExprId) -> Ty {
        self.arena.get(id).ty
    }

    fn node(&self, id: ExprId) -> &tir::Expr {
        self.arena.get(id)
    }

    fn literal_value(&self, id: ExprId) -> Option<&tir::Value> {
        match &self.node(id).kind {
            ExprKind::Literal(value) => Some(value),
            _ => None,
        }
    }

    fn definitions(&mut self, definitions: &'a [ast::Definition]) {
        let mut first_spans: HashMap<String, Span> = HashMap::new();
        for definition in definitions {
            let name = definition.name();
            if let Some(&first) = first_spans.get(&name.text) {
                let first = Some(first);
                let mut diag = Diagnostic::new(Code::E0108, format!("`{}` is defined more than once", name.text)).primary(name.span, "defined again here");
                if let Some(first) = first {
                    diag = diag.secondary(first, "first defined here");
                }
                self.report(diag.help("rename one of the definitions"));
                continue;
            }
            first_spans.insert(name.text.clone(), name.span);
            if self.is_es() {
                let keyword = if matches!(definition, ast::Definition::Macro { .. }) { "macro" } else { "const" };
                self.report(
                    Diagnostic::new(Code::E0009, format!("`{keyword}` definitions are not Elasticsearch EQL"))
                        .primary(name.span, "endgame-dialect definition")
                        .help("check with `--dialect endgame`, or inline the definition"),
                );
            }
            match definition {
                ast::Definition::Macro { .. } => {
                    self.macros.insert(name.text.clone(), definition);
                }
                ast::Definition::Const { value, .. } => {
                    let id = self.expr(value);
                    match self.literal_value(id).cloned() {
                        Some(value) => {
                            self.constants.insert(name.text.clone(), value);
                        }
                        None => {
                            let span = self.node(id).span;
                            self.report(Diagnostic::new(Code::E0207, "a constant must be a literal").primary(span, "not a literal"));
                        }
                    }
                }
            }
        }
    }
}

/// Whether two scalar types can meet in a comparison or a join key.
fn compatible(lhs: Scalar, rhs: Scalar) -> bool {
    lhs == rhs
        || lhs.is_open()
        || rhs.is_open()
        || lhs == Scalar::Null
        || rhs == Scalar::Null
        || (lhs.is_numeric() && rhs.is_numeric())
        || matches!((lhs, rhs), (Scalar::Str, Scalar::Ip | Scalar::Date | Scalar::Version) | (Scalar::Ip | Scalar::Date | Scalar::Version, Scalar::Str))
}
