//! Checking expressions: operators, comparisons, string matching, calls.

use super::literal::{self, RegexProblem};
use super::{Binding, Checker, compatible};
use crate::ast::{self, CompareOp as AstCompare, ExprKind as Ast, MatchOp};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::dialect::Dialect;
use crate::functions::{self, ArgKind, Func, Returns, Signature};
use crate::lex::StrKind;
use crate::source::Span;
use crate::tir::{Anchor, ArithOp, Case, CompareOp, ExprId, ExprKind, FunctionSemantics, Pattern, Relation, Scalar, Ty, Value};

impl<'a> Checker<'a> {
    /// Checks an expression used as a condition: it must be a boolean, or (endgame, or
    /// of unknown type) a value tested for truthiness.
    pub(super) fn condition(&mut self, expr: &ast::Expr) -> ExprId {
        let id = self.expr(expr);
        self.as_condition(id)
    }

    pub(super) fn as_condition(&mut self, id: ExprId) -> ExprId {
        let node = self.node(id);
        let (ty, span) = (node.ty, node.span);
        match ty.scalar {
            Scalar::Bool if !ty.array => id,
            Scalar::Bool | Scalar::Null | Scalar::Error => id,
            Scalar::Any => self.push(ExprKind::Truthy(id), Ty::of(Scalar::Bool), span),
            _ if self.options.dialect == Dialect::Endgame => self.push(ExprKind::Truthy(id), Ty::of(Scalar::Bool), span),
            _ => {
                self.report(
                    Diagnostic::new(Code::E0204, format!("expected a boolean condition, found {}", ty.name()))
                        .primary(span, format!("this is a {}", ty.name()))
                        .help("compare it with a value, e.g. `x == ...` or `x != null`"),
                );
                self.error_expr(span)
            }
        }
    }

    pub(super) fn expr(&mut self, expr: &ast::Expr) -> ExprId {
        let span = expr.span;
        match &expr.kind {
            Ast::Null => self.push(ExprKind::Literal(Value::Null), Ty::of(Scalar::Null), span),
            Ast::Bool(value) => self.push(ExprKind::Literal(Value::Bool(*value)), Ty::of(Scalar::Bool), span),
            Ast::Int(value) => self.push(ExprKind::Literal(Value::Long(*value)), Ty::of(Scalar::Long), span),
            Ast::Float(value) => self.push(ExprKind::Literal(Value::Double(*value)), Ty::of(Scalar::Double), span),
            Ast::Str(value, kind) => {
                if self.options.dialect == Dialect::Endgame && *kind == StrKind::Triple {
                    // python accepts """raw""" only with Elasticsearch syntax; we accept it in both.
                }
                self.push(ExprKind::Literal(Value::Str(value.clone())), Ty::of(Scalar::Str), span)
            }
            Ast::Path(path) => self.path(path, span),
            Ast::Paren(inner) => self.expr(inner),
            Ast::Error => self.error_expr(span),
            Ast::Not(inner) => {
                let inner = self.condition(inner);
                self.push(ExprKind::Not(inner), Ty::of(Scalar::Bool), span)
            }
            Ast::And(items) | Ast::Or(items) => {
                if matches!(expr.kind, Ast::Or(_))
                    && let Some(mixed) = items.iter().find(|item| matches!(item.kind, Ast::And(_)))
                {
                    self.report(
                        Diagnostic::new(Code::W0016, "`and` inside `or` without parentheses")
                            .primary(mixed.span, "this `and` is grouped first, then `or`ed with the rest")
                            .note("`and` binds tighter than `or`: `a and b or c` means `(a and b) or c`")
                            .help("add parentheses to say which grouping you mean"),
                    );
                }
                let ids: Vec<ExprId> = items.iter().map(|item| self.condition(item)).collect();
                self.duplicate_operands(&ids, matches!(expr.kind, Ast::And(_)));
                let kind = if matches!(expr.kind, Ast::And(_)) { ExprKind::And(ids) } else { ExprKind::Or(ids) };
                self.push(kind, Ty::of(Scalar::Bool), span)
            }
            Ast::Neg(inner) => self.negate(inner, span),
            Ast::Arith { op, lhs, rhs } => self.arith(*op, lhs, rhs, span),
            Ast::Compare { op, lhs, rhs } => self.compare(*op, lhs, rhs, span),
            Ast::In { expr: subject, items, negated, case_insensitive } => self.in_list(subject, items, *negated, *case_insensitive, span),
            Ast::Match { expr: subject, op, patterns, .. } => self.string_match(subject, *op, patterns, span),
            Ast::Call { name, case_insensitive, args, method } => self.call(name, *case_insensitive, args, *method, span),
            Ast::Lineage { relation, query } => self.lineage(relation, query, span),
        }
    }

    fn negate(&mut self, inner: &ast::Expr, span: Span) -> ExprId {
        let id = self.expr(inner);
        match self.literal_value(id) {
            Some(Value::Long(value)) => {
                let value = value.wrapping_neg();
                return self.push(ExprKind::Literal(Value::Long(value)), Ty::of(Scalar::Long), span);
            }
            Some(Value::Double(value)) => {
                let value = -value;
                return self.push(ExprKind::Literal(Value::Double(value)), Ty::of(Scalar::Double), span);
            }
            _ => {}
        }
        let ty = self.ty(id);
        if !ty.scalar.is_numeric() && !ty.scalar.is_open() && ty.scalar != Scalar::Null {
            self.report(Diagnostic::new(Code::E0201, format!("cannot negate a {}", ty.name())).primary(span, "`-` needs a number"));
            return self.error_expr(span);
        }
        self.push(ExprKind::Neg(id), Ty::of(ty.scalar), span)
    }

    fn arith(&mut self, op: ast::ArithOp, lhs: &ast::Expr, rhs: &ast::Expr, span: Span) -> ExprId {
        let (lhs_id, rhs_id) = (self.expr(lhs), self.expr(rhs));
        let (lhs_ty, rhs_ty) = (self.ty(lhs_id), self.ty(rhs_id));
        if lhs_ty.scalar == Scalar::Error || rhs_ty.scalar == Scalar::Error {
            return self.error_expr(span);
        }
        for (ty, side) in [(lhs_ty, lhs), (rhs_ty, rhs)] {
            if !(ty.scalar.is_numeric() || ty.scalar.is_open() || ty.scalar == Scalar::Null) || ty.array {
                self.report(
                    Diagnostic::new(Code::E0201, format!("`{}` needs numbers, found {}", op.text(), ty.name()))
                        .primary(side.span, format!("this is a {}", ty.name()))
                        .help("arithmetic works on long and double values; `number(x)` converts a string"),
                );
                return self.error_expr(span);
            }
        }
        let floor = self.options.dialect == Dialect::Endgame;
        let op = match op {
            ast::ArithOp::Add => ArithOp::Add,
            ast::ArithOp::Sub => ArithOp::Sub,
            ast::ArithOp::Mul => ArithOp::Mul,
            ast::ArithOp::Div if floor => ArithOp::DivFloor,
            ast::ArithOp::Div => ArithOp::DivTrunc,
            ast::ArithOp::Mod if floor => ArithOp::ModFloor,
            ast::ArithOp::Mod => ArithOp::ModTrunc,
        };
        let scalar = numeric_result(lhs_ty.scalar, rhs_ty.scalar);
        self.push(ExprKind::Arith { op, lhs: lhs_id, rhs: rhs_id }, Ty::of(scalar), span)
    }

    fn compare(&mut self, op: AstCompare, lhs: &ast::Expr, rhs: &ast::Expr, span: Span) -> ExprId {
        if op == AstCompare::Eq && self.is_es() {
            self.report(
                Diagnostic::new(Code::E0009, "`=` is not a comparison operator in Elasticsearch EQL")
                    .primary(operator_span(lhs, rhs), "use `==`")
                    .help("write `==`, or check with `--dialect endgame` where `=` means `==`"),
            );
        }
        let op = match op {
            AstCompare::EqEq | AstCompare::Eq => CompareOp::Eq,
            AstCompare::NotEq => CompareOp::NotEq,
            AstCompare::Lt => CompareOp::Lt,
            AstCompare::Le => CompareOp::Le,
            AstCompare::Gt => CompareOp::Gt,
            AstCompare::Ge => CompareOp::Ge,
        };
        // `x == null` and `x != null` test presence.
        let lhs_null = matches!(lhs.unparen().kind, Ast::Null);
        let rhs_null = matches!(rhs.unparen().kind, Ast::Null);
        if lhs_null || rhs_null {
            let other = if rhs_null { lhs } else { rhs };
            let id = self.expr(other);
            if matches!(op, CompareOp::Eq | CompareOp::NotEq) {
                return self.push(ExprKind::IsNull { expr: id, negated: op == CompareOp::NotEq }, Ty::of(Scalar::Bool), span);
            }
            self.report(
                Diagnostic::new(Code::W0005, format!("`{}` with `null` is never true", op.text()))
                    .primary(span, "always null")
                    .note("comparisons with null give null, which never matches"),
            );
            return self.push(ExprKind::Literal(Value::Null), Ty::of(Scalar::Null), span);
        }
        let mut lhs_id = self.expr(lhs);
        let mut rhs_id = self.expr(rhs);
        // Elasticsearch: an `?optional` field the schema does not have is the null
        // literal, so `==` and `!=` with it test presence too (`?x == ?y` on two such
        // fields is true, as ES QA `sequenceOptionalFieldAsQueryKeysOnly` shows).
        if self.is_es() && !self.options.schema.dynamic && matches!(op, CompareOp::Eq | CompareOp::NotEq) {
            let unmapped = |id: ExprId| matches!(&self.node(id).kind, ExprKind::Field(path) if path.optional && !path.known);
            let other = match (unmapped(lhs_id), unmapped(rhs_id)) {
                (_, true) => Some(lhs_id),
                (true, false) => Some(rhs_id),
                (false, false) => None,
            };
            if let Some(other) = other {
                return self.push(ExprKind::IsNull { expr: other, negated: op == CompareOp::NotEq }, Ty::of(Scalar::Bool), span);
            }
        }
        // Endgame `==` with a `*` in a string literal is a wildcard match, whichever side
        // the literal is on (the right one, when both are patterns).
        if self.options.dialect == Dialect::Endgame && matches!(op, CompareOp::Eq | CompareOp::NotEq) {
            let (subject, pattern) = match (self.literal_value(lhs_id), self.literal_value(rhs_id)) {
                (_, Some(Value::Str(text))) if text.contains('*') => (lhs_id, text.clone()),
                (Some(Value::Str(text)), _) if text.contains('*') => (rhs_id, text.clone()),
                _ => (lhs_id, String::new()),
            };
            if !pattern.is_empty() && self.ty(subject).scalar != Scalar::Error {
                let case = self.endgame_case();
                let patterns = vec![literal::classify_wildcard(&pattern, false)];
                let id = self.push(ExprKind::Wildcard { expr: subject, patterns, case }, Ty::of(Scalar::Bool), span);
                return if op == CompareOp::NotEq { self.push(ExprKind::Not(id), Ty::of(Scalar::Bool), span) } else { id };
            }
        }
        if self.is_es() && matches!(op, CompareOp::Eq | CompareOp::NotEq) {
            for id in [lhs_id, rhs_id] {
                if let Some(Value::Str(text)) = self.literal_value(id)
                    && text.contains('*')
                {
                    let literal_span = self.node(id).span;
                    self.report(
                        Diagnostic::new(Code::W0001, format!("`{}` compares a literal `*`; it is not a wildcard here", op.text()))
                            .primary(literal_span, "this `*` must appear in the value as is")
                            .help("use `:` or `like` to match with wildcards, or `like~` to also ignore case"),
                    );
                }
            }
        }
        let (lhs_ty, rhs_ty) = (self.ty(lhs_id), self.ty(rhs_id));
        if lhs_ty.scalar == Scalar::Error || rhs_ty.scalar == Scalar::Error {
            return self.error_expr(span);
        }
        // Coercions between a typed field and a literal of another type.
        lhs_id = self.coerce_for_compare(lhs_id, rhs_id, op);
        rhs_id = self.coerce_for_compare(rhs_id, lhs_id, op);
        let (lhs_ty, rhs_ty) = (self.ty(lhs_id), self.ty(rhs_id));
        if lhs_ty.scalar == Scalar::Error || rhs_ty.scalar == Scalar::Error {
            return self.error_expr(span);
        }
        let ordering = !matches!(op, CompareOp::Eq | CompareOp::NotEq);
        if ordering && (lhs_ty.scalar == Scalar::Bool || rhs_ty.scalar == Scalar::Bool) {
            let side = if lhs_ty.scalar == Scalar::Bool { lhs } else { rhs };
            self.report(
                Diagnostic::new(Code::E0201, format!("booleans have no order; `{}` cannot compare them", op.text()))
                    .primary(side.span, "this is a boolean")
                    .help("compare booleans with `==` or `!=`"),
            );
            return self.error_expr(span);
        }
        if !compatible(lhs_ty.scalar, rhs_ty.scalar) {
            self.report(
                Diagnostic::new(Code::E0201, format!("`{}` cannot compare a {} with a {}", op.text(), lhs_ty.name(), rhs_ty.name()))
                    .primary(rhs.span, format!("this is a {}", rhs_ty.name()))
                    .secondary(lhs.span, format!("this is a {}", lhs_ty.name()))
                    .help("compare values of the same type; `string(x)` and `number(x)` convert"),
            );
            return self.error_expr(span);
        }
        let case = self.case_for(false);
        self.name_lint_compare(lhs_id, rhs_id);
        self.push(ExprKind::Compare { op, lhs: lhs_id, rhs: rhs_id, case }, Ty::of(Scalar::Bool), span)
    }

    /// Adapts `id` to be compared with `other`:
    /// - a numeric literal against a keyword becomes its decimal string for `==`/`!=`,
    ///   and the keyword is read as a number for ordering (`user.id >= 1000`);
    /// - a string literal against a number field is parsed as a number;
    /// - a string literal against an ip field is parsed as an address.
    fn coerce_for_compare(&mut self, id: ExprId, other: ExprId, op: CompareOp) -> ExprId {
        let other_ty = self.ty(other);
        let node = self.node(id).clone();
        let ordering = !matches!(op, CompareOp::Eq | CompareOp::NotEq);
        match (&node.kind, other_ty.scalar) {
            (ExprKind::Literal(Value::Long(value)), Scalar::Str) if !ordering => {
                self.push(ExprKind::Literal(Value::Str(value.to_string())), Ty::of(Scalar::Str), node.span)
            }
            (ExprKind::Literal(Value::Double(value)), Scalar::Str) if !ordering => {
                self.push(ExprKind::Literal(Value::Str(format_double(*value))), Ty::of(Scalar::Str), node.span)
            }
            (ExprKind::Literal(Value::Str(text)), Scalar::Long | Scalar::Double) => match parse_number(text) {
                Some(value) => {
                    let scalar = value.scalar();
                    self.push(ExprKind::Literal(value), Ty::of(scalar), node.span)
                }
                None => {
                    self.report(
                        Diagnostic::new(Code::E0210, format!("`{text}` is not a number"))
                            .primary(node.span, format!("compared with a {} field", other_ty.scalar.name()))
                            .help("compare numbers with numbers"),
                    );
                    self.error_expr(node.span)
                }
            },
            (ExprKind::Literal(Value::Str(text)), Scalar::Ip) => match literal::parse_ip(text) {
                Some(address) => self.push(ExprKind::Literal(Value::Ip(address)), Ty::of(Scalar::Ip), node.span),
                None => {
                    self.report(
                        Diagnostic::new(Code::E0206, format!("`{text}` is not an IP address"))
                            .primary(node.span, "compared with an ip field")
                            .help("write an IPv4 or IPv6 address, or use `cidrMatch(field, \"10.0.0.0/8\")` for a range"),
                    );
                    self.error_expr(node.span)
                }
            },
            // A date literal becomes its instant, in nanoseconds since the epoch, as the
            // runtime holds date fields (docs/semantics.md, "Dates").
            // A number is epoch milliseconds, as in Elasticsearch.
            (ExprKind::Literal(Value::Long(millis)), Scalar::Date) => match millis.checked_mul(1_000_000) {
                Some(nanos) => self.push(ExprKind::Literal(Value::Long(nanos)), Ty::of(Scalar::Date), node.span),
                None => {
                    self.report(
                        Diagnostic::new(Code::E0210, format!("`{millis}` milliseconds is out of the range of dates"))
                            .primary(node.span, "compared with a date field")
                            .help("dates run from 1677 to 2262 (nanoseconds since 1970 in 64 bits)"),
                    );
                    self.error_expr(node.span)
                }
            },
            (ExprKind::Literal(Value::Str(text)), Scalar::Date) => match kestrel_bundle::time::parse_date(text) {
                Some(nanos) => self.push(ExprKind::Literal(Value::Long(nanos)), Ty::of(Scalar::Date), node.span),
                None => {
                    self.report(
                        Diagnostic::new(Code::E0210, format!("`{text}` is not a date"))
                            .primary(node.span, "compared with a date field")
                            .help("write an RFC 3339 date such as \"2024-05-04T12:00:00.001Z\" (or \"2024-05-04\"), or epoch milliseconds"),
                    );
                    self.error_expr(node.span)
                }
            },
            (_, Scalar::Long | Scalar::Double) if ordering && node.ty.scalar == Scalar::Str && !node.ty.array && self.literal_value(id).is_none() => {
                self.push(ExprKind::ToNumber(id), Ty::of(Scalar::Any), node.span)
            }
            (_, Scalar::Long | Scalar::Double) if ordering && node.ty.scalar == Scalar::Str && node.ty.array => {
                self.push(ExprKind::ToNumber(id), Ty::array_of(Scalar::Any), node.span)
            }
            _ => id,
        }
    }

    fn in_list(&mut self, subject: &ast::Expr, items: &[ast::Expr], negated: bool, insensitive: bool, span: Span) -> ExprId {
        let subject_id = self.expr(subject);
        if items.is_empty() {
            self.report(Diagnostic::new(Code::E0011, "`in` needs at least one value").primary(span, "empty list").help("a list is written `(\"a\", \"b\")`"));
            return self.error_expr(span);
        }
        let case = self.case_for(insensitive);
        let subject_ty = self.ty(subject_id);
        let mut values: Vec<Value> = Vec::new();
        let mut value_spans: Vec<Span> = Vec::new();
        let mut others: Vec<ExprId> = Vec::new();
        for item in items {
            let item_id = self.expr(item);
            let item_id = self.coerce_for_compare(item_id, subject_id, CompareOp::Eq);
            let item_ty = self.ty(item_id);
            if item_ty.scalar == Scalar::Error {
                continue;
            }
            if !compatible(subject_ty.scalar, item_ty.scalar) {
                self.report(
                    Diagnostic::new(Code::E0201, format!("cannot look for a {} in a list of {}", subject_ty.name(), item_ty.name()))
                        .primary(item.span, format!("this is a {}", item_ty.name()))
                        .secondary(subject.span, format!("this is a {}", subject_ty.name())),
                );
                continue;
            }
            match self.literal_value(item_id).cloned() {
                Some(value) => {
                    if let Value::Str(text) = &value
                        && text.contains('*')
                    {
                        self.report(
                            Diagnostic::new(Code::W0008, "`in` compares values as they are; this `*` is not a wildcard")
                                .primary(item.span, "contains `*`")
                                .help("use `like (...)` or `: (...)` to match patterns"),
                        );
                    }
                    values.push(value);
                    value_spans.push(item.span);
                }
                None => others.push(item_id),
            }
        }
        if subject_ty.scalar == Scalar::Error {
            return self.error_expr(span);
        }
        self.duplicate_values(&values, &value_spans, case);
        self.name_lint_values(subject_id, &values, &value_spans);
        let bool_ty = Ty::of(Scalar::Bool);
        let set = (!values.is_empty()).then(|| self.push(ExprKind::InSet { expr: subject_id, values, case, negated: false }, bool_ty, span));
        let mut alternatives: Vec<ExprId> = set.into_iter().collect();
        for other in others {
            let compare = self.push(ExprKind::Compare { op: CompareOp::Eq, lhs: subject_id, rhs: other, case }, bool_ty, span);
            alternatives.push(compare);
        }
        let any = match alternatives.len() {
            0 => return self.error_expr(span),
            1 => alternatives[0],
            _ => self.push(ExprKind::Or(alternatives), bool_ty, span),
        };
        if !negated {
            return any;
        }
        if let ExprKind::InSet { expr, values, case, .. } = self.node(any).kind.clone() {
            return self.push(ExprKind::InSet { expr, values, case, negated: true }, bool_ty, span);
        }
        self.push(ExprKind::Not(any), bool_ty, span)
    }

    fn string_match(&mut self, subject: &ast::Expr, op: MatchOp, patterns: &[ast::Expr], span: Span) -> ExprId {
        let subject_id = self.expr(subject);
        let subject_ty = self.ty(subject_id);
        if !matches!(subject_ty.scalar, Scalar::Str | Scalar::Ip | Scalar::Any | Scalar::Error | Scalar::Null) {
            self.report(
                Diagnostic::new(Code::E0201, format!("`{}` matches strings, not {}", op.text(), subject_ty.name()))
                    .primary(subject.span, format!("this is a {}", subject_ty.name()))
                    .help("compare numbers and booleans with `==`"),
            );
            return self.error_expr(span);
        }
        if patterns.is_empty() {
            self.report(
                Diagnostic::new(Code::E0011, format!("`{}` needs at least one pattern", op.text()))
                    .primary(span, "empty list")
                    .help("a list is written `(\"a*\", \"b\")`"),
            );
            return self.error_expr(span);
        }
        let insensitive = matches!(op, MatchOp::Colon | MatchOp::LikeCi | MatchOp::RegexCi);
        let case = self.case_for(insensitive);
        let mut texts: Vec<(String, Span)> = Vec::new();
        for pattern in patterns {
            match &pattern.unparen().kind {
                Ast::Str(text, _) => texts.push((text.clone(), pattern.span)),
                Ast::Int(_) | Ast::Float(_) | Ast::Bool(_) | Ast::Null => {
                    self.report(
                        Diagnostic::new(Code::E0208, format!("`{}` needs string patterns", op.text()))
                            .primary(pattern.span, "not a string")
                            .help("write the pattern in double quotes"),
                    );
                }
                _ => {
                    self.report(
                        Diagnostic::new(Code::E0207, format!("`{}` patterns must be string literals", op.text()))
                            .primary(pattern.span, "not a literal")
                            .help("to compare two fields, use `==` or a function such as `startsWith~(a, b)`"),
                    );
                }
            }
        }
        if texts.len() != patterns.len() || subject_ty.scalar == Scalar::Error {
            return self.error_expr(span);
        }
        let values: Vec<Value> = texts.iter().map(|(text, _)| Value::Str(text.clone())).collect();
        let spans: Vec<Span> = texts.iter().map(|(_, span)| *span).collect();
        self.duplicate_values(&values, &spans, case);
        if matches!(op, MatchOp::Regex | MatchOp::RegexCi) {
            let anchor = if self.is_es() { Anchor::Whole } else { Anchor::Start };
            let mut ok = true;
            for (text, pattern_span) in &texts {
                ok &= self.check_regex_literal(text, *pattern_span, case, anchor);
            }
            if !ok {
                return self.error_expr(span);
            }
            let patterns = texts.into_iter().map(|(text, _)| text).collect();
            return self.push(ExprKind::Regex { expr: subject_id, patterns, case, anchor }, Ty::of(Scalar::Bool), span);
        }
        let question_is_wild = self.is_es();
        let mut classified: Vec<Pattern> = Vec::new();
        for (text, pattern_span) in &texts {
            let pattern = literal::classify_wildcard(text, question_is_wild);
            if literal::matches_everything(&pattern) {
                self.report(
                    Diagnostic::new(Code::W0012, format!("`{}` matches every value", text))
                        .primary(*pattern_span, "matches anything that is not null")
                        .help("write `field != null` to test that the field is present"),
                );
            }
            classified.push(pattern);
        }
        self.name_lint_values(subject_id, &values, &spans);
        self.push(ExprKind::Wildcard { expr: subject_id, patterns: classified, case }, Ty::of(Scalar::Bool), span)
    }

    /// Reports an invalid or unsatisfiable regex literal; true when it is usable.
    fn check_regex_literal(&mut self, text: &str, span: Span, case: Case, anchor: Anchor) -> bool {
        match literal::check_regex(text, case == Case::Insensitive, anchor == Anchor::Whole) {
            Ok(()) => true,
            Err(RegexProblem::Invalid(reason)) => {
                self.report(
                    Diagnostic::new(Code::E0205, "invalid regular expression")
                        .primary(span, reason)
                        .help("regular expressions use the syntax of Rust's `regex` crate, close to Lucene's; escape special characters with `\\`"),
                );
                false
            }
            Err(RegexProblem::NeverMatches(reason)) => {
                self.report(Diagnostic::new(Code::W0004, "this regular expression can never match").primary(span, "never matches").note(reason));
                true
            }
        }
    }

    fn lineage(&mut self, relation: &ast::Name, query: &ast::EventQuery, span: Span) -> ExprId {
        let relation_kind = match relation.text.as_str() {
            "descendant" => Some(Relation::Descendant),
            "child" => Some(Relation::Child),
            "event" => Some(Relation::Event),
            _ => None,
        };
        let Some(relation_kind) = relation_kind else {
            let mut diag = Diagnostic::new(Code::E0109, format!("unknown relation `{}`", relation.text)).primary(relation.span, "not a lineage relation");
            diag = match did_you_mean(&relation.text, ["descendant", "child", "event"]) {
                Some(suggestion) => diag.help(format!("did you mean `{suggestion}`?")),
                None => diag.help("lineage relations are `descendant of [...]`, `child of [...]` and `event of [...]`"),
            };
            self.report(diag);
            return self.error_expr(span);
        };
        let query = self.event_query(query);
        self.push(ExprKind::Lineage { relation: relation_kind, query: Box::new(query) }, Ty::of(Scalar::Bool), span)
    }

    fn call(&mut self, name: &ast::Name, tilde: bool, args: &[ast::Expr], method: bool, span: Span) -> ExprId {
        if method && self.is_es() {
            self.report(
                Diagnostic::new(Code::E0009, "method calls `x:f()` are not Elasticsearch EQL")
                    .primary(name.span, "endgame-dialect method call")
                    .help(format!("write `{}(...)` with the receiver as first argument", name.text)),
            );
        }
        if let Some(definition) = self.macros.get(&name.text).copied() {
            return self.expand_macro(definition, name, args, span);
        }
        if let Some(signature) = functions::builtin(&name.text) {
            return self.builtin_call(signature, name, tilde, args, span);
        }
        if let Some(index) = self.options.declarations.iter().position(|decl| decl.name.eq_ignore_ascii_case(&name.text)) {
            return self.declared_call(index, name, args, span);
        }
        let arg_ids: Vec<ExprId> = args.iter().map(|arg| self.expr(arg)).collect();
        let _ = arg_ids;
        let candidates: Vec<String> = functions::BUILTINS
            .iter()
            .map(|signature| signature.name.to_string())
            .chain(self.options.declarations.iter().map(|decl| decl.name.clone()))
            .chain(self.macros.keys().cloned())
            .collect();
        let mut diag = Diagnostic::new(Code::E0102, format!("unknown function `{}`", name.text)).primary(name.span, "no such function");
        if let Some(suggestion) = did_you_mean(&name.text, candidates.iter().map(String::as_str)) {
            diag = diag.help(format!("did you mean `{suggestion}`?"));
        } else {
            diag = diag.note("`eqlc explain E0102` lists the functions eqlc knows");
        }
        self.report(diag);
        self.error_expr(span)
    }

    fn expand_macro(&mut self, definition: &'a ast::Definition, name: &ast::Name, args: &[ast::Expr], span: Span) -> ExprId {
        let ast::Definition::Macro { params, body, .. } = definition else {
            return self.error_expr(span);
        };
        if self.expanding.iter().any(|active| active == &name.text) || self.expanding.len() > 32 {
            self.report(
                Diagnostic::new(Code::E0110, format!("macro `{}` expands into itself", name.text))
                    .primary(name.span, "recursive expansion")
                    .note("macros are expanded where they are called, so a macro cannot call itself, directly or through another"),
            );
            return self.error_expr(span);
        }
        if params.len() != args.len() {
            self.report(
                Diagnostic::new(Code::E0203, format!("macro `{}` takes {} arguments, given {}", name.text, params.len(), args.len()))
                    .primary(span, "wrong number of arguments")
                    .secondary(definition.name().span, "defined here"),
            );
            return self.error_expr(span);
        }
        let bound = params.iter().zip(args).map(|(param, arg)| (param.text.clone(), self.expr(arg))).collect();
        self.macro_args.push(bound);
        self.expanding.push(name.text.clone());
        let id = self.expr(body);
        self.expanding.pop();
        self.macro_args.pop();
        id
    }

    fn declared_call(&mut self, index: usize, name: &ast::Name, args: &[ast::Expr], span: Span) -> ExprId {
        let declaration = &self.options.declarations[index];
        let (params, returns) = (declaration.params.clone(), declaration.returns);
        let arg_ids: Vec<ExprId> = args.iter().map(|arg| self.expr(arg)).collect();
        if params.len() != args.len() {
            self.report(
                Diagnostic::new(Code::E0203, format!("`{}` takes {} arguments, given {}", name.text, params.len(), args.len()))
                    .primary(span, "wrong number of arguments"),
            );
            return self.error_expr(span);
        }
        for ((arg_id, arg), param) in arg_ids.iter().zip(args).zip(&params) {
            let ty = self.ty(*arg_id);
            if !compatible(ty.scalar, *param) {
                self.report(
                    Diagnostic::new(Code::E0202, format!("`{}` expects a {} here, found {}", name.text, param.name(), ty.name()))
                        .primary(arg.span, format!("this is a {}", ty.name())),
                );
                return self.error_expr(span);
            }
        }
        let case = self.case_for(false);
        let semantics = self.function_semantics();
        self.push(ExprKind::Call { func: Func::Declared(index as u32), args: arg_ids, case, semantics }, Ty::of(returns), span)
    }

    fn builtin_call(&mut self, signature: &'static Signature, name: &ast::Name, tilde: bool, args: &[ast::Expr], span: Span) -> ExprId {
        if signature.endgame_only && self.is_es() {
            let help = match signature.func {
                Func::Wildcard => "use `like` or `:` to match wildcards",
                Func::Match | Func::MatchLite => "use `regex` to match regular expressions",
                Func::ArraySearch => "use `_arraysearch(array, $x, condition)`",
                _ => "check with `--dialect endgame`",
            };
            self.report(
                Diagnostic::new(Code::E0009, format!("`{}` is an endgame-dialect function", signature.name))
                    .primary(name.span, "not in Elasticsearch EQL")
                    .help(help),
            );
        }
        if tilde && self.is_es() && !signature.case_insensitive_form {
            self.report(
                Diagnostic::new(Code::E0211, format!("`{}` has no case-insensitive form", signature.name))
                    .primary(name.span, "`~` is not allowed here")
                    .note("`~` exists for between, endsWith, indexOf, startsWith and stringContains"),
            );
        }
        let count = args.len();
        if count < signature.min_args() || signature.max_args().is_some_and(|max| count > max) {
            self.report(
                Diagnostic::new(Code::E0203, format!("`{}` takes {}, given {count}", signature.name, arity_text(signature)))
                    .primary(span, "wrong number of arguments")
                    .help(format!("usage: {}", signature.usage())),
            );
            for arg in args {
                self.expr(arg);
            }
            return self.error_expr(span);
        }
        if matches!(signature.func, Func::ArraySearch | Func::ArrayCount | Func::EndpointArraySearch) {
            return self.array_function(signature, args, span);
        }
        let arg_ids: Vec<ExprId> = args.iter().map(|arg| self.expr(arg)).collect();
        let mut failed = false;
        for (idx, (arg_id, arg)) in arg_ids.iter().zip(args).enumerate() {
            let kind = signature.kind_at(idx).unwrap_or(ArgKind::Any);
            let ty = self.ty(*arg_id);
            if ty.scalar == Scalar::Error {
                failed = true;
                continue;
            }
            if signature.literal_from.is_some_and(|from| idx >= from) && self.literal_value(*arg_id).is_none() {
                self.report(
                    Diagnostic::new(Code::E0207, format!("argument {} of `{}` must be a literal", idx + 1, signature.name))
                        .primary(arg.span, "not a literal")
                        .help(format!("usage: {}", signature.usage())),
                );
                failed = true;
                continue;
            }
            if !accepts(kind, ty, idx == 0 && signature.any_element) {
                self.report(
                    Diagnostic::new(Code::E0202, format!("`{}` expects {} here, found {}", signature.name, functions::kind_name(kind), ty.name()))
                        .primary(arg.span, format!("this is a {}", ty.name()))
                        .help(format!("usage: {}", signature.usage())),
                );
                failed = true;
            }
        }
        if failed {
            return self.error_expr(span);
        }
        let case = self.case_for(tilde);
        match signature.func {
            Func::CidrMatch => {
                for (arg_id, arg) in arg_ids.iter().zip(args).skip(1) {
                    if let Some(Value::Str(text)) = self.literal_value(*arg_id).cloned()
                        && let Err(reason) = literal::parse_cidr(&text)
                    {
                        self.report(
                            Diagnostic::new(Code::E0206, format!("invalid CIDR block `{text}`"))
                                .primary(arg.span, reason)
                                .help("write a block such as `10.0.0.0/8` or `fe80::/10`"),
                        );
                        failed = true;
                    }
                }
            }
            Func::Wildcard => {
                let patterns = arg_ids[1..].iter().filter_map(|id| match self.literal_value(*id) {
                    Some(Value::Str(text)) => Some(literal::classify_wildcard(text, false)),
                    _ => None,
                });
                let patterns: Vec<Pattern> = patterns.collect();
                let case = self.endgame_case();
                return self.push(ExprKind::Wildcard { expr: arg_ids[0], patterns, case }, Ty::of(Scalar::Bool), span);
            }
            Func::Match | Func::MatchLite => {
                let mut patterns = Vec::new();
                for (arg_id, arg) in arg_ids.iter().zip(args).skip(1) {
                    if let Some(Value::Str(text)) = self.literal_value(*arg_id).cloned() {
                        failed |= !self.check_regex_literal(&text, arg.span, case, Anchor::Start);
                        patterns.push(text);
                    }
                }
                if failed {
                    return self.error_expr(span);
                }
                return self.push(ExprKind::Regex { expr: arg_ids[0], patterns, case, anchor: Anchor::Start }, Ty::of(Scalar::Bool), span);
            }
            _ => {}
        }
        if failed {
            return self.error_expr(span);
        }
        let returns = match signature.returns {
            Returns::Fixed(scalar) => Ty::of(scalar),
            Returns::FirstArg => self.ty(arg_ids[0]),
            Returns::Numeric => Ty::of(arg_ids.iter().fold(Scalar::Long, |acc, id| numeric_result(acc, self.ty(*id).scalar))),
        };
        // The arithmetic functions are the operators under another name.
        let floor = self.options.dialect == Dialect::Endgame;
        let arith = match signature.func {
            Func::Add => Some(ArithOp::Add),
            Func::Subtract => Some(ArithOp::Sub),
            Func::Multiply => Some(ArithOp::Mul),
            Func::Divide => Some(if floor { ArithOp::DivFloor } else { ArithOp::DivTrunc }),
            Func::Modulo => Some(if floor { ArithOp::ModFloor } else { ArithOp::ModTrunc }),
            _ => None,
        };
        if let Some(op) = arith {
            return self.push(ExprKind::Arith { op, lhs: arg_ids[0], rhs: arg_ids[1] }, returns, span);
        }
        let semantics = self.function_semantics();
        self.push(ExprKind::Call { func: signature.func, args: arg_ids, case, semantics }, returns, span)
    }

    fn function_semantics(&self) -> FunctionSemantics {
        match self.options.dialect {
            Dialect::Elasticsearch => FunctionSemantics::Elasticsearch,
            Dialect::Endgame => FunctionSemantics::Python,
        }
    }

    /// `arraySearch(array, x, cond)`, `arrayCount(...)`, `_arraysearch(array, $x, cond)`.
    fn array_function(&mut self, signature: &'static Signature, args: &[ast::Expr], span: Span) -> ExprId {
        let array_id = self.expr(&args[0]);
        let array_ty = self.ty(array_id);
        let dollar = signature.func == Func::EndpointArraySearch;
        let var_name = match &args[1].kind {
            Ast::Path(path) if path.segments.is_empty() && !path.optional => match &path.root {
                ast::PathRoot::Var(name) if dollar => Some(name.clone()),
                ast::PathRoot::Name(name) if !dollar => Some(name.clone()),
                _ => None,
            },
            _ => None,
        };
        let Some(var_name) = var_name else {
            let expected = if dollar { "a `$variable`" } else { "a variable name" };
            self.report(
                Diagnostic::new(Code::E0202, format!("`{}` expects {expected} as its second argument", signature.name))
                    .primary(args[1].span, "not a variable")
                    .help(format!("usage: {}", signature.usage())),
            );
            return self.error_expr(span);
        };
        if !(array_ty.array || array_ty.scalar.is_open() || array_ty.scalar == Scalar::Null) {
            self.report(
                Diagnostic::new(Code::E0202, format!("`{}` expects an array, found {}", signature.name, array_ty.name()))
                    .primary(args[0].span, format!("this is a {}", array_ty.name())),
            );
            return self.error_expr(span);
        }
        let binding = self.next_binding;
        self.next_binding += 1;
        let element = if array_ty.array { Ty::of(array_ty.scalar) } else { Ty::of(Scalar::Any) };
        self.bindings.push(Binding { name: var_name, dollar, id: binding, element });
        let body = self.condition(&args[2]);
        self.bindings.pop();
        if array_ty.scalar == Scalar::Error || self.ty(body).scalar == Scalar::Error {
            return self.error_expr(span);
        }
        let returns = match signature.returns {
            Returns::Fixed(scalar) => scalar,
            _ => Scalar::Any,
        };
        self.push(ExprKind::ArrayFn { func: signature.func, array: array_id, binding, body }, Ty::of(returns), span)
    }
}

/// Whether an argument of type `ty` fits a parameter of kind `kind`.
fn accepts(kind: ArgKind, ty: Ty, any_element: bool) -> bool {
    let scalar = ty.scalar;
    if scalar.is_open() || scalar == Scalar::Null {
        return true;
    }
    if ty.array && !any_element && !matches!(kind, ArgKind::Any | ArgKind::StrOrArray | ArgKind::Array) {
        return false;
    }
    match kind {
        ArgKind::Any => true,
        ArgKind::Str => matches!(scalar, Scalar::Str | Scalar::Ip | Scalar::Date | Scalar::Version),
        ArgKind::Num => scalar.is_numeric(),
        ArgKind::Int => scalar == Scalar::Long,
        ArgKind::Bool => scalar == Scalar::Bool,
        ArgKind::StrOrArray => ty.array || scalar == Scalar::Str,
        ArgKind::Array => ty.array,
        ArgKind::Ip => matches!(scalar, Scalar::Ip | Scalar::Str),
        ArgKind::Var | ArgKind::Condition => true,
    }
}

fn arity_text(signature: &Signature) -> String {
    let (min, max) = (signature.min_args(), signature.max_args());
    let plural = |count: usize| if count == 1 { "argument" } else { "arguments" };
    match max {
        Some(max) if max == min => format!("{min} {}", plural(min)),
        Some(max) => format!("{min} to {max} arguments"),
        None => format!("at least {min} {}", plural(min)),
    }
}

fn numeric_result(lhs: Scalar, rhs: Scalar) -> Scalar {
    match (lhs, rhs) {
        (Scalar::Long, Scalar::Long) => Scalar::Long,
        (Scalar::Double, Scalar::Long | Scalar::Double) | (Scalar::Long, Scalar::Double) => Scalar::Double,
        _ => Scalar::Any,
    }
}

fn parse_number(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(value) = text.parse::<i64>() {
        return Some(Value::Long(value));
    }
    text.parse::<f64>().ok().filter(|value| value.is_finite()).map(Value::Double)
}

/// Formats a double the way a keyword field would hold it: `1.5`, `2` for whole values.
fn format_double(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

fn operator_span(lhs: &ast::Expr, rhs: &ast::Expr) -> Span {
    Span { start: lhs.span.end, end: rhs.span.start }
}

#[cfg(test)]
mod tests {
    use crate::check::{self, Options};
    use crate::dialect::{Dialect, EndgameCase};
    use crate::tir::{ExprKind, Query, Value};
    use kestrel_bundle::schema::Schema;

    /// The condition of an endgame rule over the dynamic schema.
    fn endgame_condition(text: &str) -> (crate::tir::Rule, crate::tir::ExprId) {
        let schema = Schema::builtin("dynamic").expect("built-in schema");
        let (ast, diags) = crate::parse::file(text, 0, Dialect::Endgame);
        assert!(diags.is_empty(), "{diags:?}");
        let options = Options { schema: &schema, dialect: Dialect::Endgame, endgame_case: EndgameCase::Insensitive, declarations: &[] };
        let (rule, diags) = check::rule(&ast, &options);
        assert!(!diags.iter().any(|diag| diag.is_error()), "{diags:?}");
        let rule = rule.expect("a rule");
        let Query::Event(query) = &rule.query else { panic!("an event query") };
        let condition = query.condition;
        (rule, condition)
    }

    #[test]
    fn endgame_wildcard_literals_match_on_either_side() {
        for text in [r#"any where x == "a*""#, r#"any where "a*" == x"#, r#"any where "*" == "abc""#, r#"any where "abc" == "*""#] {
            let (rule, condition) = endgame_condition(text);
            let ExprKind::Wildcard { expr, .. } = &rule.expr(condition).kind else {
                panic!("`{text}` is not a wildcard match: {:?}", rule.expr(condition).kind)
            };
            if text.contains("abc") {
                assert_eq!(rule.expr(*expr).kind, ExprKind::Literal(Value::Str("abc".into())), "`{text}`: the subject is the literal without `*`");
            }
        }
        let (rule, condition) = endgame_condition(r#"any where "*" != x"#);
        assert!(matches!(&rule.expr(condition).kind, ExprKind::Not(inner) if matches!(rule.expr(*inner).kind, ExprKind::Wildcard { .. })));
    }
}
