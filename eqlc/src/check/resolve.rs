//! Name resolution: what a path such as `process.name`, `event0.file.path`,
//! `$entry.name`, `events[1].pid` or a constant refers to.

use super::Checker;
use crate::ast::{self, PathRoot, PathSegment};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::dialect::Dialect;
use crate::source::Span;
use crate::tir::{Case, CompareOp, ExprId, ExprKind, FieldPath, PathStep, Scalar, Ty, Value};
use kestrel_bundle::schema::FieldType;

/// The eqlc type of a schema field type.
pub(super) fn scalar_of(ty: FieldType) -> Scalar {
    match ty {
        FieldType::Keyword => Scalar::Str,
        FieldType::Long => Scalar::Long,
        FieldType::Double => Scalar::Double,
        FieldType::Ip => Scalar::Ip,
        FieldType::Boolean => Scalar::Bool,
        FieldType::Date => Scalar::Date,
        FieldType::Version => Scalar::Version,
    }
}

impl<'a> Checker<'a> {
    pub(super) fn path(&mut self, path: &ast::Path, span: Span) -> ExprId {
        let root = path.root.text().to_string();
        let plain_root = matches!(path.root, PathRoot::Name(_));
        if let PathRoot::Var(name) = &path.root {
            return match self.bindings.iter().rev().find(|binding| binding.dollar && &binding.name == name) {
                Some(binding) => {
                    let (id, element) = (binding.id, binding.element);
                    self.var(id, element, &path.segments, span)
                }
                None => {
                    self.report(
                        Diagnostic::new(Code::E0104, format!("unknown variable `${name}`"))
                            .primary(path.root_span, "not bound here")
                            .help("`$` variables are bound by `_arraysearch(array, $name, condition)`"),
                    );
                    self.error_expr(span)
                }
            };
        }
        if plain_root && !path.optional {
            if let Some(binding) = self.bindings.iter().rev().find(|binding| !binding.dollar && binding.name == root) {
                let (id, element) = (binding.id, binding.element);
                return self.var(id, element, &path.segments, span);
            }
            if path.segments.is_empty() {
                if let Some(id) = self.macro_args.last().and_then(|args| args.get(&root)).copied() {
                    return id;
                }
                if let Some(value) = self.constants.get(&root).cloned() {
                    let scalar = value.scalar();
                    return self.push(ExprKind::Literal(value), Ty::of(scalar), span);
                }
            }
            if !path.segments.is_empty() {
                if let Some(&(_, step, _)) = self.scope.aliases.iter().find(|(alias, _, _)| *alias == root) {
                    return self.step_field(step, path, &path.segments, span);
                }
                if let Some((_, alias_span)) = self.scope.later_aliases.iter().find(|(alias, _)| *alias == root).cloned() {
                    self.report(
                        Diagnostic::new(Code::E0103, format!("`{root}` names this step or a later one"))
                            .primary(path.root_span, "alias used before its step has matched")
                            .secondary(alias_span, "the alias is defined here")
                            .help("a step can only read fields of earlier steps"),
                    );
                    return self.error_expr(span);
                }
            }
            if let Some((_, alias_span)) = self.scope.hidden_aliases.iter().find(|(alias, _)| *alias == root).cloned() {
                self.report(
                    Diagnostic::new(Code::E0310, format!("alias `{root}` cannot be used here"))
                        .primary(path.root_span, "not available here")
                        .secondary(alias_span, "the alias is defined here")
                        .note("aliases name the events of earlier steps; `until` and the shared `by` keys see no earlier step")
                        .help("move the condition into a later step of the sequence"),
                );
                return self.error_expr(span);
            }
            if let Some(n_events) = self.scope.pipe_events
                && root == "events"
                && let Some(PathSegment::Index { index, span: index_span }) = path.segments.first()
            {
                if *index as usize >= n_events {
                    self.report(
                        Diagnostic::new(Code::E0209, format!("`events[{index}]` is out of range"))
                            .primary(*index_span, format!("the query has {n_events} events, numbered from 0")),
                    );
                    return self.error_expr(span);
                }
                return self.step_field(*index as usize, path, &path.segments[1..], span);
            }
        }
        if plain_root
            && !path.segments.is_empty()
            && !path.optional
            && let Some(suggestion) = self.misspelt_alias(&root)
        {
            self.report(
                Diagnostic::new(Code::E0103, format!("no step is named `{root}`"))
                    .primary(path.root_span, "unknown alias")
                    .help(format!("did you mean `{suggestion}`?")),
            );
            return self.error_expr(span);
        }
        let field = self.field(path, &root, &path.segments, span);
        // In a pipe after a sequence, plain fields read the first event.
        if self.scope.pipe_events.is_some()
            && let ExprKind::Field(field_path) = &self.node(field).kind
        {
            let (field_path, ty) = (field_path.clone(), self.ty(field));
            return self.push(ExprKind::StepField { step: 0, path: field_path }, ty, span);
        }
        field
    }

    /// An alias of this query that `root` looks like a misspelling of, when no field of
    /// the schema or of ECS starts with `root.` (so `event5.x` next to `event0` is
    /// caught, and `event.action` is not).
    fn misspelt_alias(&self, root: &str) -> Option<String> {
        let scope = &self.scope;
        let names: Vec<&str> = scope
            .aliases
            .iter()
            .map(|(name, _, _)| name.as_str())
            .chain(scope.later_aliases.iter().map(|(name, _)| name.as_str()))
            .chain(scope.hidden_aliases.iter().map(|(name, _)| name.as_str()))
            .collect();
        if names.is_empty() || names.contains(&root) {
            return None;
        }
        // A root that starts real fields (`event` in `event.action`, next to an alias
        // `event0`) is a field, in this schema or in ECS.
        let prefix = format!("{root}.");
        if self.options.schema.field_names().any(|name| name.starts_with(&prefix)) || ecs_roots().contains(root) {
            return None;
        }
        did_you_mean(root, names).map(str::to_string)
    }

    fn var(&mut self, binding: u32, element: Ty, segments: &[PathSegment], span: Span) -> ExprId {
        let path = steps_of(segments);
        let ty = if path.is_empty() { element } else { Ty::of(Scalar::Any) };
        self.push(ExprKind::Var { binding, path }, ty, span)
    }

    /// A field of an earlier step: `event0.process.name` or `events[1].pid`.
    fn step_field(&mut self, step: usize, path: &ast::Path, segments: &[PathSegment], span: Span) -> ExprId {
        let Some(PathSegment::Field { name: first, .. }) = segments.first() else {
            self.report(Diagnostic::new(Code::E0209, "expected a field name after the step").primary(span, "index on a whole event"));
            return self.error_expr(span);
        };
        let synthetic = ast::Path { optional: path.optional, root: PathRoot::Name(first.clone()), root_span: path.root_span, segments: segments[1..].to_vec() };
        let field = self.field(&synthetic, first, &segments[1..], span);
        match self.node(field).kind.clone() {
            ExprKind::Field(field_path) => {
                let ty = self.ty(field);
                self.push(ExprKind::StepField { step, path: field_path }, ty, span)
            }
            _ => field,
        }
    }

    /// A field of the current event, looked up in the schema.
    fn field(&mut self, path: &ast::Path, root: &str, segments: &[PathSegment], span: Span) -> ExprId {
        let mut name = root.to_string();
        let mut rest_at = segments.len();
        for (idx, segment) in segments.iter().enumerate() {
            match segment {
                PathSegment::Field { name: part, .. } => {
                    name.push('.');
                    name.push_str(part);
                }
                PathSegment::Index { .. } => {
                    rest_at = idx;
                    break;
                }
            }
        }
        let rest = steps_of(&segments[rest_at..]);
        let schema = self.options.schema;
        if let Some((_, def)) = schema.field(&name) {
            let (scalar, array, produced) = (scalar_of(def.ty), def.array, def.produced);
            if !produced && !path.optional && self.warned_fields.insert(name.clone()) {
                self.report(
                    Diagnostic::new(Code::W0007, format!("the `{}` sensor never produces `{name}`", schema.name))
                        .primary(span, "always missing on this sensor")
                        .note("conditions on it are never true, and sequences keyed on it never match")
                        .help(format!("write `?{name}` if the rule should also run where the field is missing")),
                );
            }
            let ty = match rest.first() {
                None => Ty { scalar, array },
                Some(PathStep::Index(_)) if array && rest.len() == 1 => Ty::of(scalar),
                Some(PathStep::Index(_)) if !array => {
                    self.report(
                        Diagnostic::new(Code::E0209, format!("`{name}` is a {}, not an array", scalar.name()))
                            .primary(span, "indexing a single value")
                            .help("remove the index"),
                    );
                    return self.error_expr(span);
                }
                _ => Ty::of(Scalar::Any),
            };
            let field_path = FieldPath { name, rest, optional: path.optional, known: true };
            return self.push(ExprKind::Field(field_path), ty, span);
        }
        // Endgame enum shorthand: `subtype.create` means `subtype == "create"`.
        if self.options.dialect == Dialect::Endgame
            && rest.is_empty()
            && let Some((prefix, value)) = name.rsplit_once('.')
            && let Some((_, def)) = schema.field(prefix)
            && scalar_of(def.ty) == Scalar::Str
        {
            let array = def.array;
            let field_path = FieldPath { name: prefix.to_string(), rest: Vec::new(), optional: false, known: true };
            let field = self.push(ExprKind::Field(field_path), Ty { scalar: Scalar::Str, array }, span);
            let literal = self.push(ExprKind::Literal(Value::Str(value.to_string())), Ty::of(Scalar::Str), span);
            return self.push(ExprKind::Compare { op: CompareOp::Eq, lhs: field, rhs: literal, case: Case::Insensitive }, Ty::of(Scalar::Bool), span);
        }
        if !(schema.dynamic || path.optional) {
            let mut diag = Diagnostic::new(Code::E0101, format!("unknown field `{name}`")).primary(span, format!("not in the `{}` schema", schema.name));
            let fingerprint = *self.schema_fingerprint.get_or_insert_with(|| schema.fingerprint());
            if let Some(suggestion) = suggest_field(&name, schema, fingerprint) {
                diag = diag.help(format!("did you mean `{suggestion}`?"));
            }
            diag = diag.note(format!("check against `--schema dynamic` to allow any field, or write `?{name}` to allow this one to be missing"));
            self.report(diag);
            return self.error_expr(span);
        }
        let field_path = FieldPath { name, rest, optional: path.optional, known: false };
        self.push(ExprKind::Field(field_path), Ty::of(Scalar::Any), span)
    }
}

fn steps_of(segments: &[PathSegment]) -> Vec<PathStep> {
    segments
        .iter()
        .map(|segment| match segment {
            PathSegment::Field { name, .. } => PathStep::Field(name.clone()),
            PathSegment::Index { index, .. } => PathStep::Index(*index),
        })
        .collect()
}

/// A schema field close to `name`. Typos sit in one segment, so only fields that share
/// the first segment or the last one are compared. Rule sets repeat the same unknown
/// fields many times (4,648 unknown references, 277 distinct names, in Elastic's
/// corpus against `linux`), so answers are remembered per schema, in a bounded table.
fn suggest_field(name: &str, schema: &kestrel_bundle::schema::Schema, fingerprint: u64) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    const MAX_REMEMBERED: usize = 1 << 16;
    /// (schema fingerprint, unknown name) → suggestion.
    type Remembered = HashMap<(u64, String), Option<String>>;
    static REMEMBERED: OnceLock<Mutex<Remembered>> = OnceLock::new();
    let key = (fingerprint, name.to_string());
    let table = REMEMBERED.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(answer) = table.lock().ok().and_then(|table| table.get(&key).cloned()) {
        return answer;
    }
    let first = name.split('.').next().unwrap_or(name);
    let last = name.rsplit('.').next().unwrap_or(name);
    let candidates = schema.field_names().filter(|candidate| candidate.split('.').next() == Some(first) || candidate.rsplit('.').next() == Some(last));
    let answer = did_you_mean(name, candidates).map(str::to_string);
    if let Ok(mut table) = table.lock() {
        if table.len() >= MAX_REMEMBERED {
            table.clear();
        }
        table.insert(key, answer.clone());
    }
    answer
}

/// The first segments of the built-in `linux` schema's fields (ECS field sets and the
/// Elastic Defend extensions), computed once.
fn ecs_roots() -> &'static std::collections::HashSet<String> {
    static ROOTS: std::sync::OnceLock<std::collections::HashSet<String>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        kestrel_bundle::schema::Schema::builtin("linux")
            .map(|schema| schema.field_names().filter_map(|name| name.split('.').next()).map(str::to_string).collect())
            .unwrap_or_default()
    })
}
