//! A readable dump of the typed IR, for snapshots and `eqlc dump --ir`.

use crate::functions;
use crate::tir::*;
use std::fmt::Write;

pub fn rule(rule: &Rule) -> String {
    let mut printer = Printer { rule, out: String::new(), indent: 0 };
    printer.query(&rule.query);
    for pipe in &rule.pipes {
        printer.pipe(pipe);
    }
    printer.out
}

struct Printer<'r> {
    rule: &'r Rule,
    out: String,
    indent: usize,
}

impl Printer<'_> {
    fn line(&mut self, text: impl AsRef<str>) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }

    fn nested(&mut self, body: impl FnOnce(&mut Self)) {
        self.indent += 1;
        body(self);
        self.indent -= 1;
    }

    fn query(&mut self, query: &Query) {
        match query {
            Query::Event(event) => self.event_query("event", event),
            Query::Sequence(sequence) => {
                let maxspan = match sequence.maxspan_ns {
                    Some(ns) => format!("maxspan={ns}ns"),
                    None => "no maxspan".to_string(),
                };
                self.line(format!("sequence {maxspan} semantics={:?} key_case={:?}", sequence.semantics, sequence.key_case));
                self.nested(|printer| {
                    for (idx, step) in sequence.steps.iter().enumerate() {
                        printer.step(&format!("step {idx}"), step);
                    }
                    if let Some(until) = &sequence.until {
                        printer.step("until", until);
                    }
                });
            }
            Query::Join(join) => {
                self.line(format!("join key_case={:?}", join.key_case));
                self.nested(|printer| {
                    for (idx, step) in join.steps.iter().enumerate() {
                        printer.step(&format!("step {idx}"), step);
                    }
                    if let Some(until) = &join.until {
                        printer.step("until", until);
                    }
                });
            }
            Query::Sample(sample) => {
                self.line(format!("sample key_case={:?}", sample.key_case));
                self.nested(|printer| {
                    for (idx, step) in sample.steps.iter().enumerate() {
                        printer.step(&format!("step {idx}"), step);
                    }
                });
            }
        }
    }

    fn step(&mut self, label: &str, step: &Step) {
        let mut flags = String::new();
        if step.missing {
            flags.push_str(" missing");
        }
        if step.fork {
            flags.push_str(" fork");
        }
        if let Some(alias) = &step.alias {
            let _ = write!(flags, " as {alias}");
        }
        self.line(format!("{label}{flags}"));
        self.nested(|printer| {
            printer.event_query("where", &step.query);
            if !step.keys.is_empty() {
                printer.line("by");
                printer.nested(|printer| step.keys.iter().for_each(|key| printer.expr(*key)));
            }
        });
    }

    fn event_query(&mut self, label: &str, query: &EventQuery) {
        let category = match &query.category {
            Category::Any => "any".to_string(),
            Category::Named(name) => name.clone(),
        };
        self.line(format!("{label} {category}"));
        self.nested(|printer| printer.expr(query.condition));
    }

    fn pipe(&mut self, pipe: &Pipe) {
        let (name, keys): (String, &[ExprId]) = match pipe {
            Pipe::Head(count) => (format!("| head {count}"), &[]),
            Pipe::Tail(count) => (format!("| tail {count}"), &[]),
            Pipe::Filter(condition) => ("| filter".to_string(), std::slice::from_ref(condition)),
            Pipe::Unique(keys) => ("| unique".to_string(), keys),
            Pipe::UniqueCount(keys) => ("| unique_count".to_string(), keys),
            Pipe::Count(keys) => ("| count".to_string(), keys),
            Pipe::Sort(keys) => ("| sort".to_string(), keys),
        };
        self.line(name);
        self.nested(|printer| keys.iter().for_each(|key| printer.expr(*key)));
    }

    fn expr(&mut self, id: ExprId) {
        let node = self.rule.expr(id);
        let ty = node.ty.name();
        let head = match &node.kind {
            ExprKind::Literal(value) => format!("{} : {ty}", value_text(value)),
            ExprKind::Field(path) => format!("field {} : {ty}", path_text(path)),
            ExprKind::StepField { step, path } => format!("step {step} field {} : {ty}", path_text(path)),
            ExprKind::Var { binding, path } => format!("var #{binding}{} : {ty}", steps_text(path)),
            ExprKind::Not(_) => "not".to_string(),
            ExprKind::And(_) => "and".to_string(),
            ExprKind::Or(_) => "or".to_string(),
            ExprKind::Truthy(_) => "truthy".to_string(),
            ExprKind::IsNull { negated, .. } => if *negated { "is not null" } else { "is null" }.to_string(),
            ExprKind::Compare { op, case, .. } => format!("{} {}", op.text(), case_text(*case)),
            ExprKind::Arith { op, .. } => format!("{op:?} : {ty}"),
            ExprKind::Neg(_) => format!("neg : {ty}"),
            ExprKind::ToNumber(_) => "to_number".to_string(),
            ExprKind::InSet { values, case, negated, .. } => {
                let values: Vec<String> = values.iter().map(value_text).collect();
                format!("{}in {} [{}]", if *negated { "not " } else { "" }, case_text(*case), values.join(", "))
            }
            ExprKind::Wildcard { patterns, case, .. } => {
                let patterns: Vec<String> = patterns.iter().map(pattern_text).collect();
                format!("wildcard {} [{}]", case_text(*case), patterns.join(", "))
            }
            ExprKind::Regex { patterns, case, anchor, .. } => format!("regex {} {anchor:?} {patterns:?}", case_text(*case)),
            ExprKind::Call { func: functions::Func::Declared(index), case, .. } => {
                let name = self.rule.declared.get(*index as usize).map_or("?", String::as_str);
                format!("call {name} (declared) {} : {ty}", case_text(*case))
            }
            ExprKind::Call { func, case, semantics, .. } => format!("call {} {} {semantics:?} : {ty}", func_name(*func), case_text(*case)),
            ExprKind::ArrayFn { func, binding, .. } => format!("{} #{binding} : {ty}", func_name(*func)),
            ExprKind::Lineage { relation, .. } => format!("{relation:?} of"),
            ExprKind::Error => "<error>".to_string(),
        };
        self.line(head);
        match &node.kind {
            ExprKind::Lineage { query, .. } => self.nested(|printer| printer.event_query("where", query)),
            kind => {
                let children = kind.children();
                self.nested(|printer| children.into_iter().for_each(|child| printer.expr(child)));
            }
        }
    }
}

fn case_text(case: Case) -> &'static str {
    match case {
        Case::Sensitive => "cs",
        Case::Insensitive => "ci",
    }
}

fn func_name(func: functions::Func) -> String {
    match functions::builtin_by_func(func) {
        Some(signature) => signature.name.to_string(),
        None => format!("{func:?}"),
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(value) => value.to_string(),
        Value::Long(value) => value.to_string(),
        Value::Double(value) => format!("{value:?}"),
        Value::Str(text) => format!("{text:?}"),
        Value::Ip(address) => format!("ip {address}"),
    }
}

fn pattern_text(pattern: &Pattern) -> String {
    match pattern {
        Pattern::Exact(text) => format!("exact {text:?}"),
        Pattern::Prefix(text) => format!("prefix {text:?}"),
        Pattern::Suffix(text) => format!("suffix {text:?}"),
        Pattern::Contains(text) => format!("contains {text:?}"),
        Pattern::General(pieces) => {
            let text: String = pieces
                .iter()
                .map(|piece| match piece {
                    WildPiece::Literal(text) => text.clone(),
                    WildPiece::Any => "*".to_string(),
                    WildPiece::One => "?".to_string(),
                })
                .collect();
            format!("general {text:?}")
        }
    }
}

fn path_text(path: &FieldPath) -> String {
    let mut out = String::new();
    if path.optional {
        out.push('?');
    }
    out.push_str(&path.name);
    out.push_str(&steps_text(&path.rest));
    if !path.known {
        out.push_str(" (dynamic)");
    }
    out
}

fn steps_text(steps: &[PathStep]) -> String {
    steps
        .iter()
        .map(|step| match step {
            PathStep::Field(name) => format!(".{name}"),
            PathStep::Index(index) => format!("[{index}]"),
        })
        .collect()
}
