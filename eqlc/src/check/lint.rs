//! Lints that need types: contradictions, tautologies, duplicates, values the
//! sensor never produces. Each is a warning with its own code; none changes the IR.

use super::Checker;
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::source::Span;
use crate::tir::{Case, CompareOp, ExprId, ExprKind, FieldPath, Value};
use std::collections::HashMap;

/// What an `and` operand says about a single-valued field.
enum Fact {
    /// The field equals one of these values.
    OneOf(Vec<String>),
    /// The field is null.
    IsNull,
    /// The field is not null.
    NotNull,
    /// The field differs from this value.
    NotEqual(String),
}

impl<'a> Checker<'a> {
    /// Runs the condition-level lints on a checked condition.
    pub(super) fn condition_lints(&mut self, condition: ExprId) {
        let mut stack = vec![condition];
        let mut steps = 0;
        while let Some(id) = stack.pop() {
            steps += 1;
            if steps > 100_000 {
                break;
            }
            let kind = self.node(id).kind.clone();
            match &kind {
                ExprKind::And(items) => {
                    self.absorbing_literal(items, false);
                    self.contradictions(items);
                }
                ExprKind::Or(items) => {
                    self.absorbing_literal(items, true);
                    self.tautologies(items);
                }
                _ => {}
            }
            // Report the smallest constant part: an `and` that is false because one operand
            // is false says so through that operand.
            let partial = matches!(&kind, ExprKind::And(items) | ExprKind::Or(items) if items.iter().any(|item| self.fold(*item, 0).is_none()));
            if !partial
                && let Some(value) = self.fold(id, 0)
                && !matches!(self.node(id).kind, ExprKind::Literal(_))
            {
                let span = self.node(id).span;
                let (code, text) = if value { (Code::W0006, "this condition is always true") } else { (Code::W0005, "this condition is never true") };
                self.report(Diagnostic::new(code, text).primary(span, "constant").help("simplify or remove it"));
                continue;
            }
            stack.extend(kind.children());
        }
    }

    /// `x and false` is never true; `x or true` is always true.
    fn absorbing_literal(&mut self, items: &[ExprId], absorbing: bool) {
        let Some(&literal) = items.iter().find(|item| matches!(self.node(**item).kind, ExprKind::Literal(Value::Bool(value)) if value == absorbing)) else {
            return;
        };
        let span = self.node(literal).span;
        let diag = if absorbing {
            Diagnostic::new(Code::W0006, "`true` makes this `or` always true").primary(span, "always true")
        } else {
            Diagnostic::new(Code::W0005, "`false` makes this `and` never true").primary(span, "never true")
        };
        self.report(diag.help("remove the literal, or the whole condition"));
    }

    /// Folds a condition made of literals to its boolean value.
    fn fold(&self, id: ExprId, depth: usize) -> Option<bool> {
        if depth > 64 {
            return None;
        }
        match &self.node(id).kind {
            ExprKind::Literal(Value::Bool(value)) => Some(*value),
            ExprKind::Not(inner) => self.fold(*inner, depth + 1).map(|value| !value),
            ExprKind::And(items) => {
                let values: Vec<Option<bool>> = items.iter().map(|item| self.fold(*item, depth + 1)).collect();
                if values.contains(&Some(false)) {
                    Some(false)
                } else if values.iter().all(|value| *value == Some(true)) {
                    Some(true)
                } else {
                    None
                }
            }
            ExprKind::Or(items) => {
                let values: Vec<Option<bool>> = items.iter().map(|item| self.fold(*item, depth + 1)).collect();
                if values.contains(&Some(true)) {
                    Some(true)
                } else if values.iter().all(|value| *value == Some(false)) {
                    Some(false)
                } else {
                    None
                }
            }
            ExprKind::Compare { op, lhs, rhs, case } => {
                let (lhs, rhs) = (self.literal_value(*lhs)?, self.literal_value(*rhs)?);
                let ordering = compare_literals(lhs, rhs, *case)?;
                Some(match op {
                    CompareOp::Eq => ordering.is_eq(),
                    CompareOp::NotEq => ordering.is_ne(),
                    CompareOp::Lt => ordering.is_lt(),
                    CompareOp::Le => ordering.is_le(),
                    CompareOp::Gt => ordering.is_gt(),
                    CompareOp::Ge => ordering.is_ge(),
                })
            }
            _ => None,
        }
    }

    /// A single-valued field and what an operand says about it.
    fn fact(&self, id: ExprId) -> Option<(FieldPath, Fact)> {
        let field_of = |expr: ExprId| -> Option<FieldPath> {
            let node = self.node(expr);
            match &node.kind {
                ExprKind::Field(path) if !node.ty.array && path.rest.is_empty() && path.known => Some(path.clone()),
                _ => None,
            }
        };
        let text_of = |value: &Value, case: Case| -> Option<String> {
            let text = match value {
                Value::Str(text) => text.clone(),
                Value::Long(value) => value.to_string(),
                Value::Bool(value) => value.to_string(),
                Value::Ip(address) => address.to_string(),
                Value::Double(_) | Value::Null => return None,
            };
            Some(if case == Case::Insensitive { text.to_lowercase() } else { text })
        };
        match &self.node(id).kind {
            ExprKind::Compare { op: op @ (CompareOp::Eq | CompareOp::NotEq), lhs, rhs, case } => {
                let field = field_of(*lhs)?;
                let text = text_of(self.literal_value(*rhs)?, *case)?;
                Some((field, if *op == CompareOp::Eq { Fact::OneOf(vec![text]) } else { Fact::NotEqual(text) }))
            }
            ExprKind::InSet { expr, values, case, negated: false } => {
                let field = field_of(*expr)?;
                let texts: Option<Vec<String>> = values.iter().map(|value| text_of(value, *case)).collect();
                Some((field, Fact::OneOf(texts?)))
            }
            ExprKind::IsNull { expr, negated } => Some((field_of(*expr)?, if *negated { Fact::NotNull } else { Fact::IsNull })),
            _ => None,
        }
    }

    /// `a == "x" and a == "y"`, `a == null and a == "x"`, `a == "x" and a != "x"`.
    fn contradictions(&mut self, items: &[ExprId]) {
        let mut known: HashMap<String, Vec<(ExprId, Fact)>> = HashMap::new();
        for &item in items {
            let Some((field, fact)) = self.fact(item) else { continue };
            let earlier = known.entry(field.name.clone()).or_default();
            let conflict = earlier.iter().find(|(_, previous)| conflicts(previous, &fact)).map(|(id, _)| *id);
            earlier.push((item, fact));
            if let Some(previous) = conflict {
                let (span, previous_span) = (self.node(item).span, self.node(previous).span);
                self.report(
                    Diagnostic::new(Code::W0005, format!("`{}` cannot satisfy both conditions", field.name))
                        .primary(span, "contradicts")
                        .secondary(previous_span, "this condition")
                        .note("both are joined by `and`, so this part of the rule never matches")
                        .help("did you mean `or`?"),
                );
                return;
            }
        }
    }

    /// `a == null or a != null`.
    fn tautologies(&mut self, items: &[ExprId]) {
        let mut seen: HashMap<String, (ExprId, bool)> = HashMap::new();
        for &item in items {
            let Some((field, fact)) = self.fact(item) else { continue };
            let is_null = match fact {
                Fact::IsNull => true,
                Fact::NotNull => false,
                _ => continue,
            };
            if let Some(&(previous, previous_null)) = seen.get(&field.name)
                && previous_null != is_null
            {
                let (span, previous_span) = (self.node(item).span, self.node(previous).span);
                self.report(
                    Diagnostic::new(Code::W0006, format!("`{}` is either null or not: this is always true", field.name))
                        .primary(span, "together with")
                        .secondary(previous_span, "this condition")
                        .help("remove both conditions"),
                );
                return;
            }
            seen.insert(field.name.clone(), (item, is_null));
        }
    }

    /// The same operand twice in one `and`/`or`.
    pub(super) fn duplicate_operands(&mut self, items: &[ExprId], is_and: bool) {
        for (idx, &item) in items.iter().enumerate() {
            if let Some(&previous) = items[..idx].iter().find(|&&earlier| self.same_expr(earlier, item, 0)) {
                let (span, previous_span) = (self.node(item).span, self.node(previous).span);
                self.report(
                    Diagnostic::new(Code::W0014, format!("the same condition appears twice in this `{}`", if is_and { "and" } else { "or" }))
                        .primary(span, "repeated")
                        .secondary(previous_span, "first here")
                        .help("remove one of them, or check whether the second was meant to test something else"),
                );
                return;
            }
        }
    }

    fn same_expr(&self, lhs: ExprId, rhs: ExprId, depth: usize) -> bool {
        if depth > 32 {
            return false;
        }
        let (lhs, rhs) = (self.node(lhs), self.node(rhs));
        let same_children = |a: &[ExprId], b: &[ExprId]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| self.same_expr(*x, *y, depth + 1));
        match (&lhs.kind, &rhs.kind) {
            (ExprKind::Literal(a), ExprKind::Literal(b)) => a == b,
            (ExprKind::Field(a), ExprKind::Field(b)) => a == b,
            (ExprKind::StepField { step: sa, path: a }, ExprKind::StepField { step: sb, path: b }) => sa == sb && a == b,
            (ExprKind::Compare { op: oa, case: ca, .. }, ExprKind::Compare { op: ob, case: cb, .. }) => {
                oa == ob && ca == cb && same_children(&lhs.kind.children(), &rhs.kind.children())
            }
            (ExprKind::InSet { values: va, case: ca, negated: na, .. }, ExprKind::InSet { values: vb, case: cb, negated: nb, .. }) => {
                va == vb && ca == cb && na == nb && same_children(&lhs.kind.children(), &rhs.kind.children())
            }
            (ExprKind::Wildcard { patterns: pa, case: ca, .. }, ExprKind::Wildcard { patterns: pb, case: cb, .. }) => {
                pa == pb && ca == cb && same_children(&lhs.kind.children(), &rhs.kind.children())
            }
            (ExprKind::IsNull { negated: na, .. }, ExprKind::IsNull { negated: nb, .. }) => {
                na == nb && same_children(&lhs.kind.children(), &rhs.kind.children())
            }
            (ExprKind::Not(_), ExprKind::Not(_)) | (ExprKind::And(_), ExprKind::And(_)) | (ExprKind::Or(_), ExprKind::Or(_)) => {
                same_children(&lhs.kind.children(), &rhs.kind.children())
            }
            _ => false,
        }
    }

    /// The same value twice in one list.
    pub(super) fn duplicate_values(&mut self, values: &[Value], spans: &[Span], case: Case) {
        let mut seen: HashMap<String, Span> = HashMap::new();
        for (value, span) in values.iter().zip(spans) {
            let key = match value {
                Value::Str(text) if case == Case::Insensitive => format!("s:{}", text.to_lowercase()),
                other => format!("{other:?}"),
            };
            if let Some(first) = seen.get(&key) {
                self.report(
                    Diagnostic::new(Code::W0003, "this value is already in the list")
                        .primary(*span, "duplicate")
                        .secondary(*first, "first here")
                        .help("remove the duplicate"),
                );
            } else {
                seen.insert(key, *span);
            }
        }
    }

    /// Lints on a comparison of a field with a literal.
    pub(super) fn name_lint_compare(&mut self, lhs: ExprId, rhs: ExprId) {
        if let Some(value) = self.literal_value(rhs).cloned() {
            let span = self.node(rhs).span;
            self.name_lint_values(lhs, &[value], &[span]);
        }
    }

    /// `process.name` never holds a `/`, and closed vocabularies (`event.action`) never
    /// hold values outside them.
    pub(super) fn name_lint_values(&mut self, subject: ExprId, values: &[Value], spans: &[Span]) {
        let (field, array) = match &self.node(subject).kind {
            ExprKind::Field(path) | ExprKind::StepField { path, .. } if path.rest.is_empty() => (path.name.clone(), self.node(subject).ty.array),
            _ => return,
        };
        let _ = array;
        let is_basename = (field.starts_with("process.") || field.starts_with("file."))
            && field.ends_with(".name")
            && !field.contains(".Ext.")
            && !field.contains("user.")
            && !field.contains("group.");
        if is_basename {
            for (value, span) in values.iter().zip(spans) {
                if let Value::Str(text) = value
                    && text.contains('/')
                {
                    self.report(Diagnostic::new(Code::W0011, format!("`{field}` is a file name and never contains `/`")).primary(*span, "contains `/`").help(
                        format!(
                            "match the path with `{}` instead",
                            field.trim_end_matches(".name").to_string() + if field.starts_with("file.") { ".path" } else { ".executable" }
                        ),
                    ));
                    return;
                }
            }
        }
        let schema = self.options.schema;
        let Some((_, def)) = schema.field(&field) else { return };
        let Some(vocabulary) = &def.values else { return };
        let all_unknown = values.iter().all(|value| match value {
            Value::Str(text) => {
                let pattern = super::literal::classify_wildcard(text, true);
                !vocabulary.iter().any(|known| crate::check::wildcard_matches(&pattern, known))
            }
            _ => false,
        });
        if all_unknown && !values.is_empty() {
            let span = spans.iter().copied().reduce(Span::to).unwrap_or_default();
            let shown: Vec<&str> = vocabulary.iter().take(24).map(String::as_str).collect();
            self.report(
                Diagnostic::new(
                    Code::W0010,
                    format!("the `{}` sensor never sets `{field}` to {}", schema.name, if values.len() == 1 { "this value" } else { "any of these values" }),
                )
                .primary(span, "never produced")
                .note(format!("`{field}` takes the values: {}{}", shown.join(", "), if vocabulary.len() > 24 { ", ..." } else { "" })),
            );
        }
    }
}

fn conflicts(previous: &Fact, next: &Fact) -> bool {
    match (previous, next) {
        (Fact::OneOf(a), Fact::OneOf(b)) => !a.iter().any(|value| b.contains(value)),
        (Fact::IsNull, Fact::OneOf(_) | Fact::NotNull) | (Fact::OneOf(_) | Fact::NotNull, Fact::IsNull) => true,
        (Fact::OneOf(a), Fact::NotEqual(b)) | (Fact::NotEqual(b), Fact::OneOf(a)) => a.len() == 1 && a[0] == *b,
        _ => false,
    }
}

fn compare_literals(lhs: &Value, rhs: &Value, case: Case) -> Option<std::cmp::Ordering> {
    match (lhs, rhs) {
        (Value::Long(a), Value::Long(b)) => Some(a.cmp(b)),
        (Value::Long(a), Value::Double(b)) => (*a as f64).partial_cmp(b),
        (Value::Double(a), Value::Long(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Double(a), Value::Double(b)) => a.partial_cmp(b),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Str(a), Value::Str(b)) if case == Case::Insensitive => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        _ => None,
    }
}
