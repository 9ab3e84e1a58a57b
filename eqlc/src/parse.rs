//! Parsing: tokens → [`ast::File`], with error recovery.
//!
//! The grammar (`grammar/eql.lalrpop`) recovers inside brackets, parentheses, after
//! `where` and at each pipe, so one file reports every syntax error it can find.
//! Parsing never fails: the tree holds `Error` nodes where the source made no sense.

use crate::ast::{self, Expr, ExprKind, Name};
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::dialect::Dialect;
use crate::lex::{self, Tok};
use crate::source::Span;
use lalrpop_util::{ErrorRecovery, ParseError};

#[allow(clippy::all, unused_parens, unused_imports, dead_code, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/eql.rs"));
}

/// Queries longer than this many bytes are rejected (E0902).
pub const MAX_QUERY_BYTES: usize = 1 << 20;
/// Lists (`in`, pattern lists, `by` keys, arguments) longer than this are rejected (E0902).
pub const MAX_LIST_ITEMS: usize = 1 << 14;

type Recovery = ErrorRecovery<usize, Tok, std::convert::Infallible>;

/// Parser state threaded through the grammar's actions.
pub struct State {
    diags: Vec<Diagnostic>,
    recovered: Vec<Recovery>,
    depth_reported: bool,
    list_reported: bool,
}

impl State {
    fn new() -> State {
        State { diags: Vec::new(), recovered: Vec::new(), depth_reported: false, list_reported: false }
    }

    pub(crate) fn recovered(&mut self, error: Recovery) {
        self.recovered.push(error);
    }

    /// Builds an expression, enforcing the depth and list-size limits.
    pub(crate) fn expr(&mut self, kind: ExprKind, span: Span) -> Expr {
        let too_long = match &kind {
            ExprKind::Call { args: items, .. }
            | ExprKind::In { items, .. }
            | ExprKind::Match { patterns: items, .. }
            | ExprKind::And(items)
            | ExprKind::Or(items) => items.len() > MAX_LIST_ITEMS,
            _ => false,
        };
        if too_long {
            if !self.list_reported {
                self.list_reported = true;
                let what = if matches!(kind, ExprKind::And(_) | ExprKind::Or(_)) { "operands in one `and`/`or` chain" } else { "items in one list" };
                self.diags.push(
                    Diagnostic::new(Code::E0902, format!("more than {MAX_LIST_ITEMS} {what}"))
                        .primary(Span::new(span.start as usize, span.start as usize), "this is too long")
                        .help("split the rule, or match the values with a pattern"),
                );
            }
            return Expr { kind: ExprKind::Error, span, depth: ast::MAX_EXPR_DEPTH };
        }
        let expr = Expr::new(kind, span);
        if expr.depth > ast::MAX_EXPR_DEPTH {
            // The children are at most MAX_EXPR_DEPTH deep, so dropping them is safe.
            if !self.depth_reported {
                self.depth_reported = true;
                self.diags.push(
                    Diagnostic::new(Code::E0901, format!("expression nests more than {} levels deep", ast::MAX_EXPR_DEPTH))
                        .primary(span, "nesting limit reached here")
                        .help("split the condition into simpler parts"),
                );
            }
            return Expr { kind: ExprKind::Error, span, depth: ast::MAX_EXPR_DEPTH };
        }
        expr
    }

    /// `a and b and c` becomes one `And` with three operands (likewise `or`), so long
    /// chains stay shallow. Parenthesised operands are not merged.
    pub(crate) fn nary(&mut self, is_and: bool, lhs: Expr, rhs: Expr, span: Span) -> Expr {
        let mut items = match lhs.kind {
            ExprKind::And(items) if is_and => items,
            ExprKind::Or(items) if !is_and => items,
            kind => vec![Expr { kind, span: lhs.span, depth: lhs.depth }],
        };
        items.push(rhs);
        let kind = if is_and { ExprKind::And(items) } else { ExprKind::Or(items) };
        self.expr(kind, span)
    }

    pub(crate) fn method(&mut self, name: Name, args: Vec<Expr>, span: Span) -> Expr {
        self.expr(ExprKind::Call { name, case_insensitive: false, args, method: true }, span)
    }
}

/// Parses one query source. `base` is the offset of `text` in its file.
pub fn file(text: &str, base: usize, dialect: Dialect) -> (ast::File, Vec<Diagnostic>) {
    let whole = Span::new(base, base + text.len());
    if text.len() > MAX_QUERY_BYTES {
        // No label: showing the source line would print the whole query.
        let diag = Diagnostic::new(Code::E0902, format!("query is {} bytes, more than the {MAX_QUERY_BYTES} eqlc accepts", text.len()))
            .help("split the rule into smaller rules");
        let file = ast::File {
            definitions: Vec::new(),
            query: Some(ast::PipedQuery { query: ast::Query::Error(whole), pipes: Vec::new(), span: whole }),
            span: whole,
        };
        return (file, vec![diag]);
    }
    let (tokens, mut diags) = lex::tokenize(text, base, dialect);
    if diags.iter().any(|diag| diag.code == Code::E0901) {
        // Too deeply nested to parse safely; the lexer already said so.
        let file = ast::File {
            definitions: Vec::new(),
            query: Some(ast::PipedQuery { query: ast::Query::Error(whole), pipes: Vec::new(), span: whole }),
            span: whole,
        };
        return (file, diags);
    }
    let end = base + text.len();
    let mut state = State::new();
    let parser = generated::FileParser::new();
    let token_stream = tokens.iter().map(|token| Ok::<_, std::convert::Infallible>((token.span.start as usize, token.tok.clone(), token.span.end as usize)));
    let result = parser.parse(&mut state, token_stream);
    for recovery in std::mem::take(&mut state.recovered) {
        diags.push(syntax_error(recovery.error, end, &tokens));
    }
    diags.append(&mut state.diags);
    let file = match result {
        Ok(file) => file,
        Err(error) => {
            diags.push(syntax_error(error, end, &tokens));
            ast::File { definitions: Vec::new(), query: Some(ast::PipedQuery { query: ast::Query::Error(whole), pipes: Vec::new(), span: whole }), span: whole }
        }
    };
    diags.sort_by_key(|diag| diag.primary_span().map(|span| span.start));
    (file, diags)
}

/// Parses a standalone expression (used by tests and constant folding).
pub fn expression(text: &str, dialect: Dialect) -> (Option<Expr>, Vec<Diagnostic>) {
    let (file, diags) = file(text, 0, dialect);
    let expr = file.query.and_then(|piped| match piped.query {
        ast::Query::Event(ast::EventQuery { category: None, condition, .. }) if piped.pipes.is_empty() => Some(condition),
        _ => None,
    });
    (expr, diags)
}

fn syntax_error(error: ParseError<usize, Tok, std::convert::Infallible>, end: usize, tokens: &[lex::Token]) -> Diagnostic {
    match error {
        ParseError::UnrecognizedToken { token: (start, tok, stop), expected } => unexpected(&tok, Span::new(start, stop), &expected, tokens),
        ParseError::ExtraToken { token: (start, tok, stop) } => unexpected(&tok, Span::new(start, stop), &[], tokens),
        ParseError::UnrecognizedEof { location, expected } => {
            let span = Span::new(location, location.max(end));
            let mut diag =
                Diagnostic::new(Code::E0002, "unexpected end of query").primary(Span::new(span.start as usize, span.start as usize), "the query ends here");
            if let Some(list) = expected_list(&expected) {
                diag = diag.note(format!("expected {list}"));
            }
            if expected.iter().any(|name| name == "\"]\"") {
                diag = diag.help("close the step with `]`");
            } else if expected.iter().any(|name| name == "\")\"") {
                diag = diag.help("close the parenthesis with `)`");
            }
            diag
        }
        ParseError::InvalidToken { location } => Diagnostic::new(Code::E0003, "invalid token").primary(Span::new(location, location + 1), "not part of EQL"),
        ParseError::User { error } => match error {},
    }
}

/// The tokens just before and after the one at `span`.
fn neighbours(tokens: &[lex::Token], span: Span) -> (Option<&Tok>, Option<&Tok>) {
    match tokens.iter().position(|token| token.span == span) {
        Some(idx) => (idx.checked_sub(1).map(|before| &tokens[before].tok), tokens.get(idx + 1).map(|token| &token.tok)),
        None => (None, None),
    }
}

fn unexpected(tok: &Tok, span: Span, expected: &[String], tokens: &[lex::Token]) -> Diagnostic {
    let (before, after) = neighbours(tokens, span);
    let wants = |name: &str| expected.iter().any(|item| item.trim_matches('"') == name);
    // `sequence == 1`: a keyword used as a field name.
    let used_as_name = matches!(
        after,
        Some(
            Tok::Dot
                | Tok::EqEq
                | Tok::Eq
                | Tok::NotEq
                | Tok::Lt
                | Tok::Le
                | Tok::Gt
                | Tok::Ge
                | Tok::Colon
                | Tok::In
                | Tok::InCi
                | Tok::Like
                | Tok::LikeCi
                | Tok::Regex
                | Tok::RegexCi
        )
    );
    if tok.is_keyword() && wants("name") && used_as_name {
        let word = tok.text().unwrap_or("keyword");
        return Diagnostic::new(Code::E0008, format!("`{word}` is a keyword and cannot be used as a name"))
            .primary(span, "keyword used as a name")
            .help(format!("escape it with backticks: `` `{word}` ``"));
    }
    let mut diag = Diagnostic::new(Code::E0001, format!("unexpected {}", tok.describe())).primary(span, "unexpected here");
    if let Some(list) = expected_list(expected) {
        diag = diag.note(format!("expected {list}"));
    }
    let starts_value = matches!(tok, Tok::Str(..) | Tok::Int(_) | Tok::Float(_) | Tok::Ident(_) | Tok::EscapedIdent(_) | Tok::Null | Tok::True | Tok::False);
    if let Some(Tok::Str(text, _)) = before
        && matches!(tok, Tok::Ident(_) | Tok::Str(..))
        && (text.contains(" and ") || text.contains(" or ") || text.contains("=="))
    {
        return diag.help("the string before this seems to hold part of the query: is a closing `\"` missing?");
    }
    match tok {
        Tok::Eq if wants("==") => diag.help("write `==` to compare"),
        Tok::Str(..) if wants("where") => diag.help("a category name and `where` come before the condition"),
        Tok::LBracket | Tok::MissingOpen if !expected.is_empty() && !wants("[") => diag.help("steps in brackets belong to `sequence`, `join` or `sample`"),
        _ if starts_value && wants(",") => diag.help("add a `,` between the items of the list"),
        _ if starts_value && wants("and") => diag.help("join conditions with `and` or `or`"),
        _ => diag,
    }
}

/// Renders lalrpop's expected-terminal list for people; `None` when it says nothing useful.
fn expected_list(expected: &[String]) -> Option<String> {
    let plain: Vec<&str> = expected.iter().map(|raw| raw.trim_matches('"')).collect();
    let mut names: Vec<String> = Vec::new();
    // An expression can start with any of these; say "an expression" once instead.
    let expression_starts = ["name", "string", "integer", "decimal", "escaped name", "variable", "null", "true", "false", "(", "-", "+", "?", "not"];
    let is_expression = ["name", "string", "integer"].iter().all(|start| plain.contains(start));
    if is_expression {
        names.push("an expression".to_string());
    }
    for item in &plain {
        if is_expression && expression_starts.contains(item) {
            continue;
        }
        names.push(match *item {
            "name" | "string" | "duration" | "variable" | "method" => format!("a {item}"),
            "escaped name" | "integer" | "index" => format!("an {item}"),
            "decimal" => "a decimal number".to_string(),
            other => format!("`{}`", other.replace("\\\"", "\"")),
        });
    }
    names.sort();
    names.dedup();
    if names.is_empty() {
        return None;
    }
    if names.len() > 10 {
        let shown = names[..8].join(", ");
        return Some(format!("one of {shown}, or {} more", names.len() - 8));
    }
    if names.len() == 1 {
        return Some(names.remove(0));
    }
    let last = names.pop().expect("two or more");
    Some(format!("one of {}, or {last}", names.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_input_is_rejected_not_parsed() {
        let huge = format!("any where x in ({})", vec!["1"; MAX_LIST_ITEMS + 1].join(", "));
        let (_, diags) = file(&huge, 0, Dialect::Elasticsearch);
        assert!(diags.iter().any(|diag| diag.code == Code::E0902), "{diags:?}");
        let giant = "a".repeat(MAX_QUERY_BYTES + 1);
        let (parsed, diags) = file(&giant, 0, Dialect::Elasticsearch);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].code, Code::E0902);
        assert!(diags[0].labels.is_empty(), "no label, so renderers do not print a megabyte");
        assert!(matches!(parsed.query.unwrap().query, ast::Query::Error(_)));
    }

    #[test]
    fn long_and_chains_stay_shallow() {
        let text = format!("any where {}", vec!["a == 1"; 5000].join(" and "));
        let (parsed, diags) = file(&text, 0, Dialect::Elasticsearch);
        assert!(diags.is_empty(), "{diags:?}");
        let ast::Query::Event(event) = parsed.query.unwrap().query else { panic!("event query") };
        assert!(event.condition.depth <= 3);
    }
}
