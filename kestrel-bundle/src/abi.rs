//! Numbers of the predicate ABI (docs/abi.md) that both the compiler and the runtime use:
//! slot tags, three-valued truth, host function ids and flags.

/// Size of a value slot in guest memory.
pub const SLOT_SIZE: u32 = 16;
/// Arguments a `kestrel.call` can take.
pub const MAX_CALL_ARGS: u32 = 16;
/// Bytes at the start of memory that stay zero: address 0 is a null slot.
pub const RESERVED_BYTES: u32 = 64;

/// Slot tags (docs/abi.md, "Slots").
#[allow(missing_docs)]
pub mod tag {
    pub const NULL: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const LONG: u8 = 2;
    pub const DOUBLE: u8 = 3;
    pub const STRING: u8 = 4;
    pub const IP: u8 = 5;
    pub const ARRAY: u8 = 6;
    pub const OBJECT: u8 = 7;
}

/// Three-valued truth as predicates return it.
#[allow(missing_docs)]
pub mod truth {
    pub const FALSE: i32 = 0;
    pub const TRUE: i32 = 1;
    pub const NULL: i32 = 2;
}

/// Function ids of `kestrel.call` (docs/abi.md, "Imports").
#[allow(missing_docs)]
pub mod call {
    pub const BETWEEN: i32 = 1;
    pub const CONCAT: i32 = 2;
    pub const INDEX_OF: i32 = 3;
    pub const LENGTH: i32 = 4;
    pub const NUMBER: i32 = 5;
    pub const STRING: i32 = 6;
    pub const SUBSTRING: i32 = 7;
    /// Keyword to number (`user.id >= 1000`).
    pub const TO_NUMBER: i32 = 8;
    /// Lower-case a computed string (or the strings of an array).
    pub const FOLD: i32 = 9;
    pub const ARRAY_CONTAINS: i32 = 10;
    pub const STARTS_WITH: i32 = 11;
    pub const ENDS_WITH: i32 = 12;
    pub const STRING_CONTAINS: i32 = 13;
    /// `lhs op rhs` in version order (an operand typed `version`): arguments `lhs`,
    /// `rhs` and the operator as a long (`CompareOp::abi_code`); a boolean or null.
    pub const COMPARE_VERSIONS: i32 = 14;
    /// Declared function *i* (custom predicates) is `DECLARED + i`.
    pub const DECLARED: i32 = 1000;
}

/// Flags of `kestrel.call`.
pub mod flag {
    /// Case-insensitive behaviour.
    pub const CASE_INSENSITIVE: i32 = 1;
    /// python eql's edge cases rather than Elasticsearch's (docs/semantics.md).
    pub const PYTHON: i32 = 2;
}
