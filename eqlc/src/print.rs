//! Printing the AST: [`eql`] writes equivalent EQL source (the round-trip property
//! test parses it back), and [`dump`] writes an indented tree with spans, which the
//! AST snapshot tests use.

use crate::ast::*;
use crate::lex::{self, StrKind};
use std::fmt::Write;

/// Prints a file as EQL. Parsing the result gives the same tree, up to spans and
/// parentheses (the printer adds parentheses where precedence needs them).
pub fn eql(file: &File) -> String {
    let mut out = String::new();
    for definition in &file.definitions {
        match definition {
            Definition::Macro { name, params, body, .. } => {
                let params: Vec<&str> = params.iter().map(|param| param.text.as_str()).collect();
                let _ = writeln!(out, "macro {}({}) {}", name.text, params.join(", "), expr(body));
            }
            Definition::Const { name, value, .. } => {
                let _ = writeln!(out, "const {} = {}", name.text, expr(value));
            }
        }
    }
    if let Some(piped) = &file.query {
        out.push_str(&query(&piped.query));
        for pipe in &piped.pipes {
            let args: Vec<String> = pipe.args.iter().map(expr).collect();
            out.push_str("\n| ");
            out.push_str(&pipe.name.text);
            if !args.is_empty() {
                out.push(' ');
                out.push_str(&args.join(", "));
            }
        }
    }
    out
}

pub fn query(query: &Query) -> String {
    match query {
        Query::Event(event) => event_query(event),
        Query::Multi(multi) => {
            let mut out = multi.kind.keyword().to_string();
            for clause in &multi.header {
                out.push(' ');
                out.push_str(&clause_text(clause));
            }
            for step in &multi.steps {
                out.push_str("\n  ");
                out.push_str(&step_text(step));
            }
            if let Some(until) = &multi.until {
                out.push_str("\nuntil\n  ");
                out.push_str(&step_text(until));
            }
            out
        }
        Query::Error(_) => "<error>".to_string(),
    }
}

fn event_query(query: &EventQuery) -> String {
    match &query.category {
        Some(category) if category.quoted => format!("{} where {}", string_literal(&category.name, StrKind::Double), expr(&query.condition)),
        Some(category) => format!("{} where {}", name_text(&category.name), expr(&query.condition)),
        None => expr(&query.condition),
    }
}

fn step_text(step: &Step) -> String {
    let mut out = format!("{}{}]", if step.missing { "![" } else { "[" }, event_query(&step.query));
    for clause in &step.clauses {
        out.push(' ');
        out.push_str(&clause_text(clause));
    }
    out
}

fn clause_text(clause: &Clause) -> String {
    match clause {
        Clause::By { keys, .. } => format!("by {}", keys.iter().map(expr).collect::<Vec<_>>().join(", ")),
        Clause::With { params, .. } => {
            let params: Vec<String> = params.iter().map(|param| format!("{}={}", param.name.text, param_value(&param.value))).collect();
            format!("with {}", params.join(", "))
        }
        Clause::As { alias, .. } => format!("as {}", alias.text),
        Clause::Fork { name, value, .. } => match value {
            Some(value) => format!("{}={value}", name.text),
            None => name.text.clone(),
        },
    }
}

fn param_value(value: &ParamValue) -> String {
    match value {
        ParamValue::Duration { value, unit } => format!("{value}{unit}"),
        ParamValue::Int(value) => value.to_string(),
        ParamValue::Float(value) => format!("{value:?}"),
        ParamValue::Bool(value) => value.to_string(),
        ParamValue::Name(name) => name.clone(),
    }
}

/// Binding strength, loosest first; a child printed where a tighter level is
/// required gets parentheses.
fn level(kind: &ExprKind) -> u8 {
    match kind {
        ExprKind::Or(_) => 1,
        ExprKind::And(_) => 2,
        ExprKind::Not(_) => 3,
        ExprKind::Compare { .. } | ExprKind::In { .. } | ExprKind::Match { .. } | ExprKind::Lineage { .. } => 4,
        ExprKind::Arith { op: ArithOp::Add | ArithOp::Sub, .. } => 5,
        ExprKind::Arith { .. } => 6,
        ExprKind::Neg(_) => 7,
        _ => 8,
    }
}

pub fn expr(expr: &Expr) -> String {
    expr_at(expr, 0)
}

fn expr_at(node: &Expr, min_level: u8) -> String {
    let text = match &node.kind {
        ExprKind::Null => "null".to_string(),
        ExprKind::Bool(value) => value.to_string(),
        ExprKind::Int(value) => value.to_string(),
        ExprKind::Float(value) => format!("{value:?}"),
        ExprKind::Str(value, kind) => string_literal(value, *kind),
        ExprKind::Path(path) => path_text(path),
        ExprKind::Call { name, case_insensitive, args, method } => {
            if *method && !args.is_empty() {
                let rest: Vec<String> = args[1..].iter().map(expr).collect();
                format!("{}:{}({})", expr_at(&args[0], 8), name.text, rest.join(", "))
            } else {
                let args: Vec<String> = args.iter().map(expr).collect();
                format!("{}{}({})", name.text, if *case_insensitive { "~" } else { "" }, args.join(", "))
            }
        }
        ExprKind::Not(inner) => format!("not {}", expr_at(inner, 3)),
        ExprKind::And(items) => items.iter().map(|item| expr_at(item, 3)).collect::<Vec<_>>().join(" and "),
        ExprKind::Or(items) => items.iter().map(|item| expr_at(item, 2)).collect::<Vec<_>>().join(" or "),
        ExprKind::Compare { op, lhs, rhs } => format!("{} {} {}", expr_at(lhs, 5), op.text(), expr_at(rhs, 5)),
        ExprKind::Arith { op, lhs, rhs } => {
            let (lhs_level, rhs_level) = if matches!(op, ArithOp::Add | ArithOp::Sub) { (5, 6) } else { (6, 7) };
            format!("{} {} {}", expr_at(lhs, lhs_level), op.text(), expr_at(rhs, rhs_level))
        }
        ExprKind::Neg(inner) => format!("-{}", expr_at(inner, 7)),
        ExprKind::In { expr: subject, items, negated, case_insensitive } => {
            let items: Vec<String> = items.iter().map(expr).collect();
            format!("{} {}in{} ({})", expr_at(subject, 5), if *negated { "not " } else { "" }, if *case_insensitive { "~" } else { "" }, items.join(", "))
        }
        ExprKind::Match { expr: subject, op, patterns, list } => {
            let single_atom = patterns.len() == 1 && is_match_atom(&patterns[0]);
            if !*list && single_atom {
                format!("{} {} {}", expr_at(subject, 5), op.text(), expr(&patterns[0]))
            } else {
                let patterns: Vec<String> = patterns.iter().map(expr).collect();
                format!("{} {} ({})", expr_at(subject, 5), op.text(), patterns.join(", "))
            }
        }
        ExprKind::Lineage { relation, query } => format!("{} of [{}]", relation.text, event_query(query)),
        ExprKind::Paren(inner) => format!("({})", expr(inner)),
        ExprKind::Error => "<error>".to_string(),
    };
    if level(&node.kind) < min_level { format!("({text})") } else { text }
}

fn is_match_atom(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Null | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(..) | ExprKind::Path(_) => true,
        ExprKind::Call { method, .. } => !method,
        ExprKind::Neg(inner) => matches!(inner.kind, ExprKind::Int(_) | ExprKind::Float(_)),
        _ => false,
    }
}

fn path_text(path: &Path) -> String {
    let mut out = String::new();
    if path.optional {
        out.push('?');
    }
    match &path.root {
        PathRoot::Name(name) => out.push_str(&name_text(name)),
        PathRoot::Escaped(name) => out.push_str(&escaped_name(name)),
        PathRoot::Var(name) => {
            out.push('$');
            out.push_str(name);
        }
    }
    for segment in &path.segments {
        match segment {
            PathSegment::Field { name, escaped, .. } => {
                out.push('.');
                if *escaped || !is_plain_name(name) {
                    out.push_str(&escaped_name(name));
                } else {
                    out.push_str(name);
                }
            }
            PathSegment::Index { index, .. } => {
                let _ = write!(out, "[{index}]");
            }
        }
    }
    out
}

fn is_plain_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_' || bytes[0] == b'@')
        && bytes[1..].iter().all(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
}

/// A name as written at the start of a path: plain if possible, else backticked.
fn name_text(name: &str) -> String {
    if is_plain_name(name) && lex::keyword(name).is_none() { name.to_string() } else { escaped_name(name) }
}

fn escaped_name(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Prints a string literal in its original form when that form can hold the value,
/// and as an escaped double-quoted string otherwise.
pub fn string_literal(value: &str, kind: StrKind) -> String {
    let has_line_break = value.contains(['\n', '\r']);
    match kind {
        StrKind::Triple if !has_line_break && !value.contains("\"\"\"") && !value.ends_with('"') => format!("\"\"\"{value}\"\"\""),
        StrKind::RawDouble if !has_line_break && !value.ends_with('\\') && !value.contains("\\\"") => format!("?\"{}\"", value.replace('"', "\\\"")),
        StrKind::RawSingle if !has_line_break && !value.ends_with('\\') && !value.contains("\\'") => format!("?'{}'", value.replace('\'', "\\'")),
        StrKind::Single => format!("'{}'", escape(value, '\'')),
        _ => format!("\"{}\"", escape(value, '"')),
    }
}

fn escape(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch if ch == quote => {
                out.push('\\');
                out.push(ch);
            }
            ch if ch.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", ch as u32);
            }
            ch => out.push(ch),
        }
    }
    out
}

/// An indented tree of the file with byte spans, for snapshots.
pub fn dump(file: &File) -> String {
    let mut dumper = Dumper { out: String::new(), indent: 0 };
    dumper.file(file);
    dumper.out
}

struct Dumper {
    out: String,
    indent: usize,
}

impl Dumper {
    fn line(&mut self, text: impl AsRef<str>) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }

    fn nested(&mut self, body: impl FnOnce(&mut Dumper)) {
        self.indent += 1;
        body(self);
        self.indent -= 1;
    }

    fn file(&mut self, file: &File) {
        self.line(format!("File {}", file.span));
        self.nested(|dumper| {
            for definition in &file.definitions {
                match definition {
                    Definition::Macro { name, params, body, span } => {
                        let params: Vec<&str> = params.iter().map(|param| param.text.as_str()).collect();
                        dumper.line(format!("Macro {}({}) {span}", name.text, params.join(", ")));
                        dumper.nested(|dumper| dumper.expr(body));
                    }
                    Definition::Const { name, value, span } => {
                        dumper.line(format!("Const {} {span}", name.text));
                        dumper.nested(|dumper| dumper.expr(value));
                    }
                }
            }
            if let Some(piped) = &file.query {
                dumper.query(&piped.query);
                for pipe in &piped.pipes {
                    dumper.line(format!("Pipe {} {}", pipe.name.text, pipe.span));
                    dumper.nested(|dumper| pipe.args.iter().for_each(|arg| dumper.expr(arg)));
                }
            }
        });
    }

    fn query(&mut self, query: &Query) {
        match query {
            Query::Event(event) => self.event_query(event),
            Query::Multi(multi) => {
                let kind = match multi.kind {
                    MultiKind::Sequence => "Sequence",
                    MultiKind::Join => "Join",
                    MultiKind::Sample => "Sample",
                };
                self.line(format!("{kind} {}", multi.span));
                self.nested(|dumper| {
                    multi.header.iter().for_each(|clause| dumper.clause(clause));
                    multi.steps.iter().for_each(|step| dumper.step("Step", step));
                    if let Some(until) = &multi.until {
                        dumper.step("Until", until);
                    }
                });
            }
            Query::Error(span) => self.line(format!("ErrorQuery {span}")),
        }
    }

    fn event_query(&mut self, query: &EventQuery) {
        let category = match &query.category {
            Some(category) if category.quoted => format!("{:?}", category.name),
            Some(category) => category.name.clone(),
            None => "(none)".to_string(),
        };
        self.line(format!("EventQuery {category} {}", query.span));
        self.nested(|dumper| dumper.expr(&query.condition));
    }

    fn step(&mut self, label: &str, step: &Step) {
        self.line(format!("{label}{} {}", if step.missing { " missing" } else { "" }, step.span));
        self.nested(|dumper| {
            dumper.event_query(&step.query);
            step.clauses.iter().for_each(|clause| dumper.clause(clause));
        });
    }

    fn clause(&mut self, clause: &Clause) {
        match clause {
            Clause::By { keys, span } => {
                self.line(format!("By {span}"));
                self.nested(|dumper| keys.iter().for_each(|key| dumper.expr(key)));
            }
            Clause::With { .. } | Clause::As { .. } | Clause::Fork { .. } => self.line(format!("{} {}", clause_text(clause), clause.span())),
        }
    }

    fn expr(&mut self, node: &Expr) {
        let span = node.span;
        match &node.kind {
            ExprKind::Null | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) => self.line(format!("Literal {} {span}", expr(node))),
            ExprKind::Str(value, kind) => self.line(format!("Str {kind:?} {value:?} {span}")),
            ExprKind::Path(path) => self.line(format!("Path {} {span}", path_text(path))),
            ExprKind::Call { name, case_insensitive, args, method } => {
                let flags = match (case_insensitive, method) {
                    (true, _) => " ~",
                    (_, true) => " method",
                    _ => "",
                };
                self.line(format!("Call {}{flags} {span}", name.text));
                self.nested(|dumper| args.iter().for_each(|arg| dumper.expr(arg)));
            }
            ExprKind::Not(inner) => self.node(format!("Not {span}"), [&**inner]),
            ExprKind::Neg(inner) => self.node(format!("Neg {span}"), [&**inner]),
            ExprKind::Paren(inner) => self.node(format!("Paren {span}"), [&**inner]),
            ExprKind::And(items) => self.node(format!("And {span}"), items.iter()),
            ExprKind::Or(items) => self.node(format!("Or {span}"), items.iter()),
            ExprKind::Compare { op, lhs, rhs } => self.node(format!("Compare {} {span}", op.text()), [&**lhs, &**rhs]),
            ExprKind::Arith { op, lhs, rhs } => self.node(format!("Arith {} {span}", op.text()), [&**lhs, &**rhs]),
            ExprKind::In { expr: subject, items, negated, case_insensitive } => {
                let op = format!("{}in{}", if *negated { "not " } else { "" }, if *case_insensitive { "~" } else { "" });
                self.node(format!("In {op} {span}"), std::iter::once(&**subject).chain(items.iter()));
            }
            ExprKind::Match { expr: subject, op, patterns, list } => {
                let shape = if *list { " list" } else { "" };
                self.node(format!("Match {}{shape} {span}", op.text()), std::iter::once(&**subject).chain(patterns.iter()));
            }
            ExprKind::Lineage { relation, query } => {
                self.line(format!("Lineage {} {span}", relation.text));
                self.nested(|dumper| dumper.event_query(query));
            }
            ExprKind::Error => self.line(format!("Error {span}")),
        }
    }

    fn node<'e>(&mut self, head: String, children: impl IntoIterator<Item = &'e Expr>) {
        self.line(head);
        self.nested(|dumper| children.into_iter().for_each(|child| dumper.expr(child)));
    }
}
