//! The functions the host computes for `kestrel.call` (docs/abi.md). The built-ins
//! are `kestrel_bundle::semantics`, the code eqlc's reference interpreter runs too, so
//! compiled rules and the interpreter cannot disagree on a function.

use kestrel_bundle::abi::{call, flag};
use kestrel_bundle::semantics::compare::{compare_as_versions, fold, to_number};
use kestrel_bundle::semantics::{self, Case, CompareOp, Function, FunctionSemantics, Value};
use std::sync::Arc;

/// A function the embedder declares (eqlc `--declare`), called with evaluated
/// arguments. It must not panic; a panic is caught and the call is null.
pub type DeclaredFn = Arc<dyn Fn(&[Value]) -> Value + Send + Sync>;

/// Computes `kestrel.call(function, args, flags)`. Unknown ids are null.
pub fn call(function: i32, args: &[Value], flags: i32, declared: &[DeclaredFn]) -> Value {
    let case = if flags & flag::CASE_INSENSITIVE != 0 { Case::Insensitive } else { Case::Sensitive };
    let family = if flags & flag::PYTHON != 0 { FunctionSemantics::Python } else { FunctionSemantics::Elasticsearch };
    match (function, args) {
        (call::FOLD, [value]) => folded(value),
        (call::TO_NUMBER, [value]) => to_number(value),
        (call::COMPARE_VERSIONS, [lhs, rhs, Value::Long(op)]) => match CompareOp::from_abi_code(*op) {
            Some(op) => compare_as_versions(op, lhs, rhs, case),
            None => Value::Null,
        },
        (id, _) if id >= call::DECLARED => match declared.get((id - call::DECLARED) as usize) {
            Some(function) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| function(args))).unwrap_or(Value::Null),
            None => Value::Null,
        },
        (id, _) => match Function::from_abi_id(id) {
            Some(function) => semantics::functions::call(function, args, case, family),
            None => Value::Null,
        },
    }
}

/// The value with its strings lower-cased (as eqlc folds literals).
pub fn folded(value: &Value) -> Value {
    match value {
        Value::Str(text) => Value::Str(fold(text, Case::Insensitive).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(folded).collect()),
        Value::Object(entries) => Value::Object(entries.iter().map(|(key, value)| (key.clone(), folded(value))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_call(lhs: &str, op: i64, rhs: &str, flags: i32) -> Value {
        call(call::COMPARE_VERSIONS, &[Value::Str(lhs.into()), Value::Str(rhs.into()), Value::Long(op)], flags, &[])
    }

    #[test]
    fn versions_compare_in_version_order() {
        let gt = i64::from(CompareOp::Gt.abi_code());
        let lt = i64::from(CompareOp::Lt.abi_code());
        assert_eq!(version_call("1.11.3", gt, "1.5.0", 0), Value::Bool(true));
        assert_eq!(version_call("bad", lt, "1.5.0", 0), Value::Bool(false));
        assert_eq!(version_call("1.2.4-SNAPSHOT", lt, "1.2.4", 0), Value::Bool(true));
        assert_eq!(version_call("1.0.0-RC1", lt, "1.0.0-rc1", 0), Value::Bool(true));
        assert_eq!(version_call("1.0.0-RC1", lt, "1.0.0-rc1", flag::CASE_INSENSITIVE), Value::Bool(false));
        // Null operands, unknown operators and missing arguments are null.
        assert_eq!(call(call::COMPARE_VERSIONS, &[Value::Null, Value::Str("1.0".into()), Value::Long(gt)], 0, &[]), Value::Null);
        assert_eq!(version_call("1", 6, "2", 0), Value::Null);
        assert_eq!(call(call::COMPARE_VERSIONS, &[Value::Str("1".into()), Value::Str("2".into())], 0, &[]), Value::Null);
    }
}
