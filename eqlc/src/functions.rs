//! The function table: every built-in EQL function, its signature, and which forms it
//! accepts. The checker and the back ends read this one table.
//!
//! Names resolve case-insensitively (`cidrmatch` = `cidrMatch`), as Elastic's rules
//! are written with any casing.

use crate::tir::Scalar;

/// A built-in function, or a function declared by the user (custom predicates, test suites).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    Add,
    ArrayContains,
    ArrayCount,
    ArraySearch,
    /// `_arraysearch(array, $var, condition)`, the Elastic endpoint form.
    EndpointArraySearch,
    Between,
    CidrMatch,
    Concat,
    Divide,
    EndsWith,
    IndexOf,
    Length,
    Match,
    MatchLite,
    Modulo,
    Multiply,
    Number,
    Safe,
    StartsWith,
    String,
    StringContains,
    Substring,
    Subtract,
    Wildcard,
    /// A declared function, by index into the checker's declarations.
    Declared(u32),
}

/// What an argument position accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// Anything.
    Any,
    /// A string (keyword), or a value that is one at run time.
    Str,
    /// A number.
    Num,
    /// An integer.
    Int,
    /// A boolean.
    Bool,
    /// A string or an array.
    StrOrArray,
    /// An array.
    Array,
    /// An IP address, or a string holding one.
    Ip,
    /// A loop variable name bound over the array argument.
    Var,
    /// A condition over the loop variable.
    Condition,
}

/// How the result type is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returns {
    Fixed(Scalar),
    /// Long if every numeric argument is a long, double otherwise.
    Numeric,
    /// The type of the first argument.
    FirstArg,
}

#[derive(Clone, Copy, Debug)]
pub struct Signature {
    pub func: Func,
    /// The canonical spelling, as documented.
    pub name: &'static str,
    pub params: &'static [ArgKind],
    /// How many of `params` may be omitted from the end.
    pub optional: usize,
    /// Extra arguments of this kind may follow.
    pub rest: Option<ArgKind>,
    /// Argument positions from which every argument must be a literal.
    pub literal_from: Option<usize>,
    pub returns: Returns,
    /// The Elasticsearch `name~(...)` form exists.
    pub case_insensitive_form: bool,
    /// An array in the first argument means "any element" (predicate functions).
    pub any_element: bool,
    /// Only in the endgame dialect (python `eql`).
    pub endgame_only: bool,
}

const fn sig(func: Func, name: &'static str, params: &'static [ArgKind], returns: Returns) -> Signature {
    Signature {
        func,
        name,
        params,
        optional: 0,
        rest: None,
        literal_from: None,
        returns,
        case_insensitive_form: false,
        any_element: false,
        endgame_only: false,
    }
}

use ArgKind as A;

/// Every built-in function.
pub const BUILTINS: &[Signature] = &[
    sig(Func::Add, "add", &[A::Num, A::Num], Returns::Numeric),
    Signature { endgame_only: true, ..sig(Func::ArrayContains, "arrayContains", &[A::Array, A::Any], Returns::Fixed(Scalar::Bool)) }.with_rest(A::Any),
    Signature { endgame_only: true, ..sig(Func::ArrayCount, "arrayCount", &[A::Array, A::Var, A::Condition], Returns::Fixed(Scalar::Long)) },
    Signature { endgame_only: true, ..sig(Func::ArraySearch, "arraySearch", &[A::Array, A::Var, A::Condition], Returns::Fixed(Scalar::Bool)) },
    sig(Func::EndpointArraySearch, "_arraysearch", &[A::Array, A::Var, A::Condition], Returns::Fixed(Scalar::Bool)),
    Signature {
        optional: 1,
        literal_from: Some(3),
        case_insensitive_form: true,
        ..sig(Func::Between, "between", &[A::Str, A::Str, A::Str, A::Bool], Returns::Fixed(Scalar::Str))
    },
    Signature { literal_from: Some(1), any_element: true, ..sig(Func::CidrMatch, "cidrMatch", &[A::Ip, A::Str], Returns::Fixed(Scalar::Bool)) }
        .with_rest(A::Str),
    sig(Func::Concat, "concat", &[A::Any], Returns::Fixed(Scalar::Str)).with_rest(A::Any),
    sig(Func::Divide, "divide", &[A::Num, A::Num], Returns::Numeric),
    Signature { case_insensitive_form: true, any_element: true, ..sig(Func::EndsWith, "endsWith", &[A::Str, A::Str], Returns::Fixed(Scalar::Bool)) },
    Signature { optional: 1, case_insensitive_form: true, ..sig(Func::IndexOf, "indexOf", &[A::Str, A::Str, A::Int], Returns::Fixed(Scalar::Long)) },
    sig(Func::Length, "length", &[A::StrOrArray], Returns::Fixed(Scalar::Long)),
    Signature { literal_from: Some(1), any_element: true, endgame_only: true, ..sig(Func::Match, "match", &[A::Str, A::Str], Returns::Fixed(Scalar::Bool)) }
        .with_rest(A::Str),
    Signature {
        literal_from: Some(1),
        any_element: true,
        endgame_only: true,
        ..sig(Func::MatchLite, "matchLite", &[A::Str, A::Str], Returns::Fixed(Scalar::Bool))
    }
    .with_rest(A::Str),
    sig(Func::Modulo, "modulo", &[A::Num, A::Num], Returns::Numeric),
    sig(Func::Multiply, "multiply", &[A::Num, A::Num], Returns::Numeric),
    Signature { optional: 1, literal_from: Some(1), ..sig(Func::Number, "number", &[A::Str, A::Int], Returns::Fixed(Scalar::Any)) },
    Signature { endgame_only: true, ..sig(Func::Safe, "safe", &[A::Any], Returns::FirstArg) },
    Signature { case_insensitive_form: true, any_element: true, ..sig(Func::StartsWith, "startsWith", &[A::Str, A::Str], Returns::Fixed(Scalar::Bool)) },
    sig(Func::String, "string", &[A::Any], Returns::Fixed(Scalar::Str)),
    Signature {
        case_insensitive_form: true,
        any_element: true,
        ..sig(Func::StringContains, "stringContains", &[A::Str, A::Str], Returns::Fixed(Scalar::Bool))
    },
    Signature { optional: 1, ..sig(Func::Substring, "substring", &[A::Str, A::Int, A::Int], Returns::Fixed(Scalar::Str)) },
    sig(Func::Subtract, "subtract", &[A::Num, A::Num], Returns::Numeric),
    Signature {
        literal_from: Some(1),
        any_element: true,
        endgame_only: true,
        ..sig(Func::Wildcard, "wildcard", &[A::Str, A::Str], Returns::Fixed(Scalar::Bool))
    }
    .with_rest(A::Str),
];

impl Signature {
    const fn with_rest(mut self, rest: ArgKind) -> Signature {
        self.rest = Some(rest);
        self
    }

    pub fn min_args(&self) -> usize {
        self.params.len() - self.optional
    }

    pub fn max_args(&self) -> Option<usize> {
        if self.rest.is_some() { None } else { Some(self.params.len()) }
    }

    /// The kind expected at argument position `idx`, if the function takes that many.
    pub fn kind_at(&self, idx: usize) -> Option<ArgKind> {
        self.params.get(idx).copied().or(self.rest)
    }

    /// How the arguments read in help text, e.g. `cidrMatch(ip, cidr, ...)`.
    pub fn usage(&self) -> String {
        let mut parts: Vec<String> = self
            .params
            .iter()
            .enumerate()
            .map(|(idx, kind)| {
                let text = kind_name(*kind).to_string();
                if idx >= self.min_args() { format!("[{text}]") } else { text }
            })
            .collect();
        if let Some(rest) = self.rest {
            parts.push(format!("{}...", kind_name(rest)));
        }
        format!("{}({})", self.name, parts.join(", "))
    }
}

pub fn kind_name(kind: ArgKind) -> &'static str {
    match kind {
        ArgKind::Any => "value",
        ArgKind::Str => "string",
        ArgKind::Num => "number",
        ArgKind::Int => "integer",
        ArgKind::Bool => "boolean",
        ArgKind::StrOrArray => "string or array",
        ArgKind::Array => "array",
        ArgKind::Ip => "ip",
        ArgKind::Var => "variable",
        ArgKind::Condition => "condition",
    }
}

/// Finds a built-in by name, ignoring case.
pub fn builtin(name: &str) -> Option<&'static Signature> {
    BUILTINS.iter().find(|signature| signature.name.eq_ignore_ascii_case(name))
}

pub fn builtin_by_func(func: Func) -> Option<&'static Signature> {
    BUILTINS.iter().find(|signature| signature.func == func)
}

/// A function declared outside the built-in table: a custom predicate, or a test
/// suite's helper. Written as `name(type, ...) -> type`, e.g. `reverse(keyword) -> keyword`.
#[derive(Clone, Debug, PartialEq)]
pub struct Declaration {
    pub name: String,
    pub params: Vec<Scalar>,
    pub returns: Scalar,
    /// The event fields a hand-written predicate reads (its view); empty for other
    /// declared functions. `block` checks them (docs/enforcement.md).
    pub view: Vec<String>,
}

impl Declaration {
    /// Parses `name(type, ...) -> type`. Types: any, keyword (or string), long, double, boolean, ip.
    pub fn parse(text: &str) -> Result<Declaration, String> {
        let text = text.trim();
        let (head, returns) = match text.split_once("->") {
            Some((head, returns)) => (head.trim(), parse_scalar(returns.trim())?),
            None => (text, Scalar::Any),
        };
        let open = head.find('(').ok_or_else(|| format!("expected `name(type, ...) -> type`, found `{text}`"))?;
        if !head.ends_with(')') {
            return Err(format!("expected `)` at the end of `{head}`"));
        }
        let name = head[..open].trim();
        if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            return Err(format!("`{name}` is not a valid function name"));
        }
        let inner = head[open + 1..head.len() - 1].trim();
        let params = if inner.is_empty() { Vec::new() } else { inner.split(',').map(|param| parse_scalar(param.trim())).collect::<Result<_, _>>()? };
        Ok(Declaration { name: name.to_string(), params, returns, view: Vec::new() })
    }
}

pub fn parse_scalar(text: &str) -> Result<Scalar, String> {
    Ok(match text {
        "any" => Scalar::Any,
        "keyword" | "string" => Scalar::Str,
        "long" | "integer" => Scalar::Long,
        "double" | "number" => Scalar::Double,
        "boolean" | "bool" => Scalar::Bool,
        "ip" => Scalar::Ip,
        other => return Err(format!("unknown type `{other}`; expected any, keyword, long, double, boolean or ip")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_ignoring_case() {
        assert_eq!(builtin("cidrmatch").map(|s| s.func), Some(Func::CidrMatch));
        assert_eq!(builtin("STARTSWITH").map(|s| s.func), Some(Func::StartsWith));
        assert!(builtin("nope").is_none());
    }

    #[test]
    fn declarations_parse() {
        let decl = Declaration::parse("reverse(keyword) -> keyword").unwrap();
        assert_eq!(decl, Declaration { name: "reverse".into(), params: vec![Scalar::Str], returns: Scalar::Str, view: Vec::new() });
        assert!(Declaration::parse("bad name(x)").is_err());
    }
}
