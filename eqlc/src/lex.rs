//! The hand-written lexer: `&str` → [`Token`]s, never failing.
//!
//! Problems (an unterminated string, a stray character) become diagnostics and the
//! lexer carries on, so the parser still sees the rest of the query. A few tokens are
//! decided by context, as the reference grammars do:
//! - a word right after `.` is a name even if it is a keyword (`event.sequence`);
//! - `[0]` glued to a name is an index (`args[0]`), while `by pid [q]` is a step;
//! - `:name(` glued together is a method call (`x:length()`, endgame syntax);
//! - digits glued to letters are a duration (`30s`), used by `maxspan`.

use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::dialect::Dialect;
use crate::source::Span;

/// Queries nest brackets at most this deep; deeper input is rejected (E0901).
pub const MAX_NESTING: usize = 96;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrKind {
    /// `"..."` with escapes.
    Double,
    /// `'...'` with escapes (endgame dialect).
    Single,
    /// `?"..."` raw (endgame dialect).
    RawDouble,
    /// `?'...'` raw (endgame dialect).
    RawSingle,
    /// `"""..."""` raw.
    Triple,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    /// `` `name` ``
    EscapedIdent(String),
    /// `$name`
    Var(String),
    Str(String, StrKind),
    Int(i64),
    Float(f64),
    /// Digits glued to a unit, as in `maxspan=30s`. The number is kept as written.
    Duration(String, String),
    /// `[3]` glued to a name.
    Index(u64),
    /// `:name(` in the endgame dialect.
    MethodStart(String),
    // Keywords.
    And,
    Or,
    Not,
    In,
    InCi,
    Like,
    LikeCi,
    Regex,
    RegexCi,
    Where,
    By,
    With,
    Until,
    Sequence,
    Sample,
    Join,
    Of,
    True,
    False,
    Null,
    As,
    Macro,
    Const,
    // Punctuation.
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// `![`, which opens a missing-event step.
    MissingOpen,
    Comma,
    Dot,
    Pipe,
    EqEq,
    Eq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Colon,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Tilde,
    Question,
}

impl Tok {
    /// How the token reads in a "found ..." message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("name `{name}`"),
            Tok::EscapedIdent(name) => format!("name `` `{name}` ``"),
            Tok::Var(name) => format!("variable `${name}`"),
            Tok::Str(text, _) if text.chars().count() > 24 => format!("string \"{}...\"", text.chars().take(20).collect::<String>()),
            Tok::Str(text, _) => format!("string \"{text}\""),
            Tok::Int(value) => format!("number `{value}`"),
            Tok::Float(value) => format!("number `{value}`"),
            Tok::Duration(value, unit) => format!("`{value}{unit}`"),
            Tok::Index(index) => format!("index `[{index}]`"),
            Tok::MethodStart(name) => format!("method call `:{name}(`"),
            other => format!("`{}`", other.text().unwrap_or("?")),
        }
    }

    /// The fixed spelling of keywords and punctuation.
    pub fn text(&self) -> Option<&'static str> {
        Some(match self {
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::In => "in",
            Tok::InCi => "in~",
            Tok::Like => "like",
            Tok::LikeCi => "like~",
            Tok::Regex => "regex",
            Tok::RegexCi => "regex~",
            Tok::Where => "where",
            Tok::By => "by",
            Tok::With => "with",
            Tok::Until => "until",
            Tok::Sequence => "sequence",
            Tok::Sample => "sample",
            Tok::Join => "join",
            Tok::Of => "of",
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::As => "as",
            Tok::Macro => "macro",
            Tok::Const => "const",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::MissingOpen => "![",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Pipe => "|",
            Tok::EqEq => "==",
            Tok::Eq => "=",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Colon => ":",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Tilde => "~",
            Tok::Question => "?",
            _ => return None,
        })
    }

    pub fn is_keyword(&self) -> bool {
        matches!(
            self,
            Tok::And
                | Tok::Or
                | Tok::Not
                | Tok::In
                | Tok::Like
                | Tok::Regex
                | Tok::Where
                | Tok::By
                | Tok::With
                | Tok::Until
                | Tok::Sequence
                | Tok::Sample
                | Tok::Join
                | Tok::Of
                | Tok::True
                | Tok::False
                | Tok::Null
                | Tok::As
                | Tok::Macro
                | Tok::Const
        )
    }
}

/// The keyword spelled `word`, if any.
pub fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "in" => Tok::In,
        "like" => Tok::Like,
        "regex" => Tok::Regex,
        "where" => Tok::Where,
        "by" => Tok::By,
        "with" => Tok::With,
        "until" => Tok::Until,
        "sequence" => Tok::Sequence,
        "sample" => Tok::Sample,
        "join" => Tok::Join,
        "of" => Tok::Of,
        "true" => Tok::True,
        "false" => Tok::False,
        "null" => Tok::Null,
        "as" => Tok::As,
        "macro" => Tok::Macro,
        "const" => Tok::Const,
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Splits `text` into tokens. `base` is the offset of `text` within its file, so that
/// token spans point into the file. Never fails: problems come back as diagnostics.
pub fn tokenize(text: &str, base: usize, dialect: Dialect) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut lexer = Lexer { text, bytes: text.as_bytes(), pos: 0, base, dialect, tokens: Vec::new(), diags: Vec::new(), depth: 0, too_deep: false };
    lexer.run();
    (lexer.tokens, lexer.diags)
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    base: usize,
    dialect: Dialect,
    tokens: Vec<Token>,
    diags: Vec<Diagnostic>,
    depth: usize,
    too_deep: bool,
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte == b'@'
}

fn is_ident_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

impl<'a> Lexer<'a> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.base + start, self.base + end)
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn push(&mut self, tok: Tok, start: usize) {
        let span = self.span(start, self.pos);
        self.tokens.push(Token { tok, span });
    }

    fn error(&mut self, code: Code, start: usize, end: usize, message: impl Into<String>, label: impl Into<String>) -> &mut Diagnostic {
        let span = self.span(start, end);
        self.diags.push(Diagnostic::new(code, message).primary(span, label));
        self.diags.last_mut().expect("just pushed")
    }

    /// True when the previous token ends exactly at `self.pos` (no whitespace between).
    fn glued_to_previous(&self) -> bool {
        self.tokens.last().is_some_and(|token| token.span.end as usize == self.base + self.pos)
    }

    fn run(&mut self) {
        while self.pos < self.bytes.len() {
            let start = self.pos;
            let byte = self.bytes[self.pos];
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'/' if self.peek(1) == Some(b'/') => {
                    while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b'"' if self.text[self.pos..].starts_with("\"\"\"") => self.triple_string(),
                b'"' | b'\'' => self.string(byte, false),
                b'?' if matches!(self.peek(1), Some(b'"') | Some(b'\'')) => {
                    self.pos += 1;
                    let quote = self.bytes[self.pos];
                    self.string(quote, true);
                    if let Some(token) = self.tokens.last_mut() {
                        token.span.start = (self.base + start) as u32;
                    }
                }
                b'`' => self.escaped_name(),
                b'$' if self.peek(1).is_some_and(is_ident_start) => {
                    self.pos += 1;
                    let name = self.word();
                    self.push(Tok::Var(name.to_string()), start);
                }
                b'0'..=b'9' => self.number(),
                b'.' if self.peek(1).is_some_and(|next| next.is_ascii_digit()) && !self.glued_to_previous() => self.number(),
                byte if is_ident_start(byte) => self.identifier(),
                b'[' => self.open_bracket(),
                _ => self.punctuation(),
            }
            let _ = start;
        }
    }

    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self.pos < self.bytes.len() && is_ident_continue(self.bytes[self.pos]) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn identifier(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let word = self.word();
        let word = &self.text[start..start + 1 + word.len()];
        let after_dot = self.tokens.last().is_some_and(|token| token.tok == Tok::Dot && token.span.end as usize == self.base + start);
        if !after_dot && let Some(keyword) = keyword(word) {
            // `in~`, `like~`, `regex~` are single operators.
            let tok = if self.peek(0) == Some(b'~') {
                match keyword {
                    Tok::In => Some(Tok::InCi),
                    Tok::Like => Some(Tok::LikeCi),
                    Tok::Regex => Some(Tok::RegexCi),
                    _ => None,
                }
            } else {
                None
            };
            match tok {
                Some(tok) => {
                    self.pos += 1;
                    self.push(tok, start);
                }
                None => self.push(keyword, start),
            }
            return;
        }
        self.push(Tok::Ident(word.to_string()), start);
    }

    fn number(&mut self) {
        let start = self.pos;
        while self.peek(0).is_some_and(|byte| byte.is_ascii_digit()) {
            self.pos += 1;
        }
        let mut is_float = false;
        if self.peek(0) == Some(b'.') && self.peek(1).is_some_and(|byte| byte.is_ascii_digit()) {
            is_float = true;
            self.pos += 1;
            while self.peek(0).is_some_and(|byte| byte.is_ascii_digit()) {
                self.pos += 1;
            }
        } else if self.peek(0) == Some(b'.') && !self.peek(1).is_some_and(is_ident_start) {
            // `1.` is a decimal in both reference grammars.
            is_float = true;
            self.pos += 1;
        }
        if matches!(self.peek(0), Some(b'e') | Some(b'E')) {
            let digits_at = if matches!(self.peek(1), Some(b'+') | Some(b'-')) { 2 } else { 1 };
            if self.peek(digits_at).is_some_and(|byte| byte.is_ascii_digit()) {
                is_float = true;
                self.pos += digits_at;
                while self.peek(0).is_some_and(|byte| byte.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
        }
        let number_text = &self.text[start..self.pos];
        if self.peek(0).is_some_and(|byte| byte.is_ascii_alphabetic()) {
            let unit_start = self.pos;
            while self.peek(0).is_some_and(|byte| byte.is_ascii_alphanumeric() || byte == b'_') {
                self.pos += 1;
            }
            let unit = &self.text[unit_start..self.pos];
            self.push(Tok::Duration(number_text.to_string(), unit.to_string()), start);
            return;
        }
        if is_float {
            match number_text.parse::<f64>() {
                Ok(value) if value.is_finite() => self.push(Tok::Float(value), start),
                _ => {
                    let end = self.pos;
                    self.error(Code::E0007, start, end, format!("number `{number_text}` is out of range"), "too large for a 64-bit float");
                    self.push(Tok::Float(0.0), start);
                }
            }
        } else {
            match number_text.parse::<i64>() {
                Ok(value) => self.push(Tok::Int(value), start),
                Err(_) => {
                    let end = self.pos;
                    self.error(Code::E0007, start, end, format!("integer `{number_text}` is out of range"), "larger than 9223372036854775807").help =
                        vec!["write it as a decimal (`1.0e19`) if an approximate value will do".to_string()];
                    self.push(Tok::Int(0), start);
                }
            }
        }
    }

    fn block_comment(&mut self) {
        let start = self.pos;
        self.pos += 2;
        let nested = self.dialect == Dialect::Elasticsearch;
        let mut depth = 1;
        while self.pos < self.bytes.len() {
            if self.bytes[self.pos..].starts_with(b"*/") {
                self.pos += 2;
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else if nested && self.bytes[self.pos..].starts_with(b"/*") {
                self.pos += 2;
                depth += 1;
            } else {
                self.pos += 1;
            }
        }
        self.error(Code::E0006, start, start + 2, "unterminated block comment", "this comment is never closed").help.push("close it with `*/`".to_string());
    }

    /// `"..."`, `'...'`, and the raw `?"..."`, `?'...'` forms. Strings end at a line break.
    fn string(&mut self, quote: u8, raw: bool) {
        let start = if raw { self.pos - 1 } else { self.pos };
        self.pos += 1;
        let mut value = String::new();
        let mut closed = false;
        while self.pos < self.bytes.len() {
            let byte = self.bytes[self.pos];
            if byte == quote {
                self.pos += 1;
                closed = true;
                break;
            }
            if byte == b'\n' || byte == b'\r' {
                break;
            }
            if byte == b'\\' {
                if raw {
                    // Raw strings only unescape their own quote.
                    if self.peek(1) == Some(quote) {
                        value.push(quote as char);
                        self.pos += 2;
                    } else {
                        value.push('\\');
                        self.pos += 1;
                    }
                    continue;
                }
                self.escape(&mut value);
                continue;
            }
            let ch = self.text[self.pos..].chars().next().expect("in bounds");
            value.push(ch);
            self.pos += ch.len_utf8();
        }
        let kind = match (quote, raw) {
            (b'"', false) => StrKind::Double,
            (b'"', true) => StrKind::RawDouble,
            (_, false) => StrKind::Single,
            (_, true) => StrKind::RawSingle,
        };
        if !closed {
            let end = self.pos;
            self.error(Code::E0004, start, end, "unterminated string", "this string is not closed before the end of the line")
                .help
                .push(format!("close it with `{}`; strings cannot span lines", quote as char));
        }
        if self.dialect == Dialect::Elasticsearch && kind != StrKind::Double {
            let end = self.pos;
            let form = if raw { "raw `?\"...\"` strings" } else { "single-quoted strings" };
            self.error(Code::E0009, start, end, format!("{form} are not Elasticsearch EQL"), "endgame-dialect string")
                .help
                .push("use double quotes, or `\"\"\"...\"\"\"` for a raw string; or check with `--dialect endgame`".to_string());
        }
        self.push(Tok::Str(value, kind), start);
    }

    fn escape(&mut self, value: &mut String) {
        let escape_start = self.pos;
        let Some(next) = self.peek(1) else {
            self.pos += 1;
            return;
        };
        let simple = match next {
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'\\' => Some('\\'),
            b'"' => Some('"'),
            b'\'' => Some('\''),
            _ => None,
        };
        if let Some(ch) = simple {
            value.push(ch);
            self.pos += 2;
            return;
        }
        if next == b'u' && self.peek(2) == Some(b'{') {
            let digits_start = self.pos + 3;
            let mut end = digits_start;
            while end < self.bytes.len() && self.bytes[end].is_ascii_hexdigit() {
                end += 1;
            }
            let digits = &self.text[digits_start..end];
            if end < self.bytes.len() && self.bytes[end] == b'}' && (1..=8).contains(&digits.len()) {
                let ch = u32::from_str_radix(digits, 16).ok().and_then(char::from_u32);
                self.pos = end + 1;
                match ch {
                    Some(ch) => value.push(ch),
                    None => {
                        let pos = self.pos;
                        self.error(Code::E0005, escape_start, pos, format!("`\\u{{{digits}}}` is not a Unicode scalar value"), "invalid code point");
                    }
                }
                return;
            }
        }
        let ch = self.text[self.pos + 1..].chars().next().expect("in bounds");
        let end = self.pos + 1 + ch.len_utf8();
        self.error(Code::E0005, escape_start, end, format!("invalid escape sequence `\\{ch}`"), "not a valid escape").help.extend([
            "valid escapes are `\\n \\r \\t \\b \\f \\\\ \\\" \\'` and `\\u{...}`".to_string(),
            format!("for a literal backslash write `\\\\{ch}`, or use a raw string `\"\"\"...\"\"\"`"),
        ]);
        value.push('\\');
        value.push(ch);
        self.pos = end;
    }

    /// `"""..."""`: raw, single line; up to two extra quotes before the closing ones
    /// belong to the content (`"""a""""` is `a"`).
    fn triple_string(&mut self) {
        let start = self.pos;
        let content_start = self.pos + 3;
        let rest = &self.text[content_start..];
        let line_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        match rest[..line_end].find("\"\"\"") {
            Some(close) => {
                let mut close_end = close + 3;
                let mut extra = 0;
                while extra < 2 && rest[close_end..].starts_with('"') {
                    close_end += 1;
                    extra += 1;
                }
                let value = rest[..close + extra].to_string();
                self.pos = content_start + close_end;
                self.push(Tok::Str(value, StrKind::Triple), start);
            }
            None => {
                self.pos = content_start + line_end;
                let end = self.pos;
                self.error(Code::E0004, start, end, "unterminated raw string", "this `\"\"\"` string is not closed on its line")
                    .help
                    .push("close it with `\"\"\"`; raw strings cannot span lines".to_string());
                let value = rest[..line_end].to_string();
                self.push(Tok::Str(value, StrKind::Triple), start);
            }
        }
    }

    /// `` `name` ``; a doubled backtick inside stands for one backtick.
    fn escaped_name(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let mut name = String::new();
        loop {
            match self.peek(0) {
                Some(b'`') if self.peek(1) == Some(b'`') => {
                    name.push('`');
                    self.pos += 2;
                }
                Some(b'`') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\n') | Some(b'\r') | None => {
                    let end = self.pos;
                    self.error(Code::E0010, start, end, "unterminated escaped name", "this name is not closed")
                        .help
                        .push("close it with a backtick `` ` ``".to_string());
                    break;
                }
                Some(_) => {
                    let ch = self.text[self.pos..].chars().next().expect("in bounds");
                    name.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
        self.push(Tok::EscapedIdent(name), start);
    }

    fn open_bracket(&mut self) {
        let start = self.pos;
        let can_index = self.glued_to_previous()
            && self
                .tokens
                .last()
                .is_some_and(|token| matches!(token.tok, Tok::Ident(_) | Tok::EscapedIdent(_) | Tok::Var(_) | Tok::RBracket | Tok::Index(_) | Tok::RParen));
        if can_index {
            let rest = &self.bytes[self.pos + 1..];
            let mut idx = 0;
            while idx < rest.len() && rest[idx] == b' ' {
                idx += 1;
            }
            let digits_start = idx;
            while idx < rest.len() && rest[idx].is_ascii_digit() {
                idx += 1;
            }
            let digits_end = idx;
            while idx < rest.len() && rest[idx] == b' ' {
                idx += 1;
            }
            if digits_end > digits_start && idx < rest.len() && rest[idx] == b']' {
                let digits = &self.text[self.pos + 1 + digits_start..self.pos + 1 + digits_end];
                self.pos += idx + 2;
                match digits.parse::<u64>() {
                    Ok(index) => self.push(Tok::Index(index), start),
                    Err(_) => {
                        let end = self.pos;
                        self.error(Code::E0007, start, end, "array index out of range", "index too large");
                        self.push(Tok::Index(u64::MAX), start);
                    }
                }
                return;
            }
        }
        self.pos += 1;
        self.open(Tok::LBracket, start);
    }

    fn open(&mut self, tok: Tok, start: usize) {
        self.depth += 1;
        if self.depth > MAX_NESTING && !self.too_deep {
            self.too_deep = true;
            let end = self.pos;
            self.error(Code::E0901, start, end, format!("query nests brackets more than {MAX_NESTING} deep"), "nesting limit reached here")
                .help
                .push("split the condition into simpler parts".to_string());
        }
        self.push(tok, start);
    }

    fn close(&mut self, tok: Tok, start: usize) {
        self.depth = self.depth.saturating_sub(1);
        self.push(tok, start);
    }

    fn punctuation(&mut self) {
        let start = self.pos;
        let two = self.text.get(self.pos..self.pos + 2).unwrap_or("");
        let (tok, len) = match two {
            "==" => (Tok::EqEq, 2),
            "!=" => (Tok::NotEq, 2),
            "<=" => (Tok::Le, 2),
            ">=" => (Tok::Ge, 2),
            "![" => {
                self.pos += 2;
                self.open(Tok::MissingOpen, start);
                return;
            }
            _ => {
                let tok = match self.bytes[self.pos] {
                    b'(' => {
                        self.pos += 1;
                        self.open(Tok::LParen, start);
                        return;
                    }
                    b')' => {
                        self.pos += 1;
                        self.close(Tok::RParen, start);
                        return;
                    }
                    b']' => {
                        self.pos += 1;
                        self.close(Tok::RBracket, start);
                        return;
                    }
                    b',' => Tok::Comma,
                    b'.' => Tok::Dot,
                    b'|' => Tok::Pipe,
                    b'=' => Tok::Eq,
                    b'<' => Tok::Lt,
                    b'>' => Tok::Gt,
                    b':' => {
                        if self.method_start() {
                            return;
                        }
                        Tok::Colon
                    }
                    b'+' => Tok::Plus,
                    b'-' => Tok::Minus,
                    b'*' => Tok::Star,
                    b'/' => Tok::Slash,
                    b'%' => Tok::Percent,
                    b'~' => Tok::Tilde,
                    b'?' => Tok::Question,
                    b'&' => {
                        // `&&` or `&`: report it, then read it as `and` so parsing goes on.
                        self.pos += if self.peek(1) == Some(b'&') { 2 } else { 1 };
                        let end = self.pos;
                        let text = self.text[start..end].to_string();
                        self.error(Code::E0003, start, end, format!("unexpected `{text}`"), "not an EQL operator")
                            .help
                            .push("write `and` for a conjunction".to_string());
                        self.push(Tok::And, start);
                        return;
                    }
                    b'!' => {
                        self.pos += 1;
                        let end = self.pos;
                        self.error(Code::E0003, start, end, "unexpected `!`", "not an EQL operator")
                            .help
                            .push("write `not` to negate, or `!=` for inequality".to_string());
                        self.push(Tok::Not, start);
                        return;
                    }
                    _ => {
                        let ch = self.text[self.pos..].chars().next().expect("in bounds");
                        self.pos += ch.len_utf8();
                        let end = self.pos;
                        let diag = self.error(Code::E0003, start, end, format!("unexpected character `{}`", ch.escape_debug()), "not part of EQL");
                        if matches!(ch, '\u{201c}' | '\u{201d}' | '\u{2018}' | '\u{2019}') {
                            diag.help.push("use a plain ASCII quote `\"`".to_string());
                        }
                        return;
                    }
                };
                (tok, 1)
            }
        };
        if tok == Tok::Pipe && self.peek(1) == Some(b'|') {
            // Report `||`, then read it as `or` so parsing goes on.
            self.pos += 2;
            let end = self.pos;
            self.error(Code::E0003, start, end, "unexpected `||`", "not an EQL operator").help.push("write `or` for a disjunction".to_string());
            self.push(Tok::Or, start);
            return;
        }
        self.pos += len;
        self.push(tok, start);
    }

    /// `:name(` glued together: a method call (endgame syntax; the checker reports it in the
    /// Elasticsearch dialect, where `x : f()` could never be valid anyway).
    fn method_start(&mut self) -> bool {
        let start = self.pos;
        let rest = &self.bytes[self.pos + 1..];
        if !rest.first().is_some_and(|&byte| byte.is_ascii_alphabetic() || byte == b'_') {
            return false;
        }
        let mut len = 0;
        while len < rest.len() && is_ident_continue(rest[len]) {
            len += 1;
        }
        if rest.get(len) != Some(&b'(') {
            return false;
        }
        let name = self.text[self.pos + 1..self.pos + 1 + len].to_string();
        self.pos += len + 2;
        self.depth += 1;
        self.push(Tok::MethodStart(name), start);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str, dialect: Dialect) -> Vec<Tok> {
        let (tokens, diags) = tokenize(text, 0, dialect);
        assert!(diags.is_empty(), "{diags:?}");
        tokens.into_iter().map(|token| token.tok).collect()
    }

    #[test]
    fn contextual_tokens() {
        use Tok::*;
        assert_eq!(toks("event.sequence", Dialect::Elasticsearch), vec![Ident("event".into()), Dot, Ident("sequence".into())]);
        assert_eq!(toks("a[0].b", Dialect::Elasticsearch), vec![Ident("a".into()), Index(0), Dot, Ident("b".into())]);
        assert_eq!(toks("by a [b]", Dialect::Elasticsearch), vec![By, Ident("a".into()), LBracket, Ident("b".into()), RBracket]);
        assert_eq!(toks("maxspan=30s", Dialect::Elasticsearch), vec![Ident("maxspan".into()), Eq, Duration("30".into(), "s".into())]);
        assert_eq!(toks("x like~ \"a\"", Dialect::Elasticsearch), vec![Ident("x".into()), LikeCi, Str("a".into(), StrKind::Double)]);
        assert_eq!(toks("x:length()", Dialect::Endgame), vec![Ident("x".into()), MethodStart("length".into()), RParen]);
        assert_eq!(toks("x : length()", Dialect::Elasticsearch), vec![Ident("x".into()), Colon, Ident("length".into()), LParen, RParen]);
        assert_eq!(toks("1e3 2.5 .5", Dialect::Elasticsearch), vec![Float(1000.0), Float(2.5), Float(0.5)]);
        assert_eq!(toks(r#""""a\b"""""#, Dialect::Elasticsearch), vec![Str("a\\b\"".into(), StrKind::Triple)]);
        assert_eq!(toks(r#"?'a\'b\n'"#, Dialect::Endgame), vec![Str("a'b\\n".into(), StrKind::RawSingle)]);
    }
}
