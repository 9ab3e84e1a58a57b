//! What values and operations mean at run time, in one place for both sides of the
//! contract: eqlc's reference interpreter evaluates the typed IR with it, and the
//! runtime's host functions (`kestrel.call`, docs/abi.md) compute with it, so a function
//! such as `between` has exactly one implementation. docs/semantics.md explains each
//! decision.
#![allow(missing_docs)]

pub mod compare;
pub mod functions;
pub mod patterns;
pub mod value;
pub mod version;

pub use value::Value;

/// Whether a string operation folds case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Case {
    Sensitive,
    Insensitive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The operator's number in the predicate ABI (docs/abi.md): the guest library's
    /// `cmp` and the `kestrel.call` that compares versions take it.
    pub fn abi_code(self) -> i32 {
        match self {
            CompareOp::Eq => 0,
            CompareOp::NotEq => 1,
            CompareOp::Lt => 2,
            CompareOp::Le => 3,
            CompareOp::Gt => 4,
            CompareOp::Ge => 5,
        }
    }

    /// The operator with an ABI number.
    pub fn from_abi_code(code: i64) -> Option<CompareOp> {
        [CompareOp::Eq, CompareOp::NotEq, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge].into_iter().find(|op| i64::from(op.abi_code()) == code)
    }

    pub fn text(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
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
    /// Integer division rounding toward zero (Elasticsearch, Java).
    DivTrunc,
    /// Integer division rounding down (python).
    DivFloor,
    /// Remainder with the dividend's sign (Elasticsearch, Java).
    ModTrunc,
    /// Remainder with the divisor's sign (python).
    ModFloor,
}

/// A wildcard pattern, pre-classified so back ends can take a fast path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Literal pieces separated by wildcards.
    General(Vec<WildPiece>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WildPiece {
    Literal(String),
    /// `*`
    Any,
    /// `?` (Elasticsearch only; python treats `?` literally)
    One,
}

/// Whose edge cases a function follows, where the reference engines disagree
/// (`between` not finding its bounds, `stringContains` on a non-string, `indexOf` with a
/// negative start, `number` with spaces, `cidrMatch` on a non-address).
/// docs/semantics.md lists each difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionSemantics {
    Elasticsearch,
    Python,
}

/// The built-in functions the host computes (every function that is not lowered to an
/// operator, a pattern or a loop by the compiler).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    Between,
    CidrMatch,
    Concat,
    EndsWith,
    IndexOf,
    Length,
    Number,
    StartsWith,
    String,
    StringContains,
    Substring,
    ArrayContains,
    Safe,
}

impl Function {
    /// Whether an array in the first argument means "any element" (the predicate
    /// functions).
    pub fn any_element(self) -> bool {
        matches!(self, Function::StartsWith | Function::EndsWith | Function::StringContains | Function::CidrMatch)
    }

    /// The function's id in `kestrel.call` (`crate::abi::call`), if the host computes it.
    pub fn abi_id(self) -> Option<i32> {
        use crate::abi::call;
        Some(match self {
            Function::Between => call::BETWEEN,
            Function::Concat => call::CONCAT,
            Function::IndexOf => call::INDEX_OF,
            Function::Length => call::LENGTH,
            Function::Number => call::NUMBER,
            Function::String => call::STRING,
            Function::Substring => call::SUBSTRING,
            Function::ArrayContains => call::ARRAY_CONTAINS,
            Function::StartsWith => call::STARTS_WITH,
            Function::EndsWith => call::ENDS_WITH,
            Function::StringContains => call::STRING_CONTAINS,
            Function::CidrMatch | Function::Safe => return None,
        })
    }

    /// The function with a `kestrel.call` id.
    pub fn from_abi_id(id: i32) -> Option<Function> {
        [
            Function::Between,
            Function::Concat,
            Function::IndexOf,
            Function::Length,
            Function::Number,
            Function::String,
            Function::Substring,
            Function::ArrayContains,
            Function::StartsWith,
            Function::EndsWith,
            Function::StringContains,
        ]
        .into_iter()
        .find(|function| function.abi_id() == Some(id))
    }
}
