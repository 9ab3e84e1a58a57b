use super::lua::LuaPredicate;
use super::{CallError, ViewSpec};
use crate::guest::{self, Area};
use kestrel_bundle::bundle::{CaptureDecl, CustomLimits, FieldKind};
use kestrel_bundle::schema::FieldType;
use kestrel_bundle::semantics::Value;

fn view() -> ViewSpec {
    ViewSpec { fields: vec!["process.name".into(), "process.args".into()], params: 1 }
}

/// A guest memory holding `values` in consecutive slots, and their addresses.
fn slots(values: &[Value]) -> (Vec<u8>, Vec<usize>) {
    let mut memory = vec![0u8; 4096];
    let mut area = Area::new(1024, 4096);
    let addresses: Vec<usize> = (0..values.len()).map(|idx| 64 + idx * 16).collect();
    for (value, at) in values.iter().zip(&addresses) {
        guest::write(&mut memory, *at, value, &mut area).unwrap();
    }
    (memory, addresses)
}

/// `pred_eval` of `predicate` on a view of `values` (fields, then arguments).
fn eval(predicate: &mut LuaPredicate, values: &[Value]) -> Result<Option<bool>, CallError> {
    let (memory, addresses) = slots(values);
    predicate.eval(&memory, &addresses)
}

fn lua(source: &str) -> Result<LuaPredicate, String> {
    LuaPredicate::new("test", source, &view(), &[], CustomLimits::default())
}

#[test]
fn the_lua_sandbox_has_no_way_out() {
    for global in [
        "io",
        "os",
        "require",
        "package",
        "debug",
        "ffi",
        "jit",
        "load",
        "loadstring",
        "loadfile",
        "dofile",
        "module",
        "pcall",
        "xpcall",
        "collectgarbage",
        "getfenv",
        "setfenv",
        "print",
    ] {
        let source = format!("function pred_eval(event, ctx) return {global} == nil end");
        let mut predicate = lua(&source).unwrap();
        assert_eq!(eval(&mut predicate, &[Value::Null, Value::Null, Value::Long(1)]), Ok(Some(true)), "`{global}` is reachable");
    }
    let mut predicate =
        lua("function pred_eval(event, ctx) return string.dump == nil and string.rep ~= nil and math.floor ~= nil and bit.band ~= nil end").unwrap();
    assert_eq!(eval(&mut predicate, &[Value::Null, Value::Null, Value::Long(1)]), Ok(Some(true)));
    // Sources load as text: a bytecode chunk (LuaJIT's `\x1bLJ` header) is refused.
    assert!(lua("\x1bLJ\x02\x00").is_err());
}

#[test]
fn lua_sees_the_view_and_the_arguments() {
    let source = r#"
        local NAME, ARGS
        function pred_init(ctx) NAME = ctx.fields["process.name"]; ARGS = ctx.fields["process.args"]; assert(ctx.params == 1 and ctx.abi == 1) end
        function pred_eval(event, ctx)
          if event[NAME] == nil then return nil end
          return event[NAME] == "bash" and #event[ARGS] == event.args[1] and event[ARGS][2] == "-c"
        end"#;
    let mut predicate = lua(source).unwrap();
    let args = Value::Array(vec![Value::Str("bash".into()), Value::Str("-c".into()), Value::Str("id".into())]);
    assert_eq!(eval(&mut predicate, &[Value::Str("bash".into()), args.clone(), Value::Long(3)]), Ok(Some(true)));
    assert_eq!(eval(&mut predicate, &[Value::Str("sh".into()), args.clone(), Value::Long(3)]), Ok(Some(false)));
    assert_eq!(eval(&mut predicate, &[Value::Null, args, Value::Long(3)]), Ok(None));
}

#[test]
fn lua_captures_keep_their_declared_types() {
    let captures = [
        CaptureDecl { name: "score".into(), kind: FieldKind::Typed(FieldType::Double) },
        CaptureDecl { name: "count".into(), kind: FieldKind::Typed(FieldType::Long) },
        CaptureDecl { name: "label".into(), kind: FieldKind::Typed(FieldType::Keyword) },
    ];
    let source = r#"
        function pred_eval(event, ctx) return true end
        function pred_capture(event, ctx) return { score = 2.5, count = 3, label = 7 } end"#;
    let mut predicate = LuaPredicate::new("test", source, &view(), &captures, CustomLimits::default()).unwrap();
    assert_eq!(eval(&mut predicate, &[Value::Null, Value::Null, Value::Null]), Ok(Some(true)));
    let (values, dropped) = predicate.capture().unwrap();
    assert_eq!(values, vec![("score".to_string(), Value::Double(2.5)), ("count".to_string(), Value::Long(3))]);
    assert_eq!(dropped, 1, "a number where a keyword was declared is dropped, counted");
    assert!(
        LuaPredicate::new("test", "function pred_eval() return true end", &view(), &captures, CustomLimits::default()).is_err(),
        "captures need pred_capture"
    );
}

/// A table that holds itself 1,024 times, four levels down, would be 10¹² values:
/// the capture is dropped whole, counted, at once; a large but bounded one is kept.
#[test]
fn a_lua_capture_larger_than_the_read_bounds_is_dropped() {
    let captures = [CaptureDecl { name: "tree".into(), kind: FieldKind::Dynamic }, CaptureDecl { name: "list".into(), kind: FieldKind::Dynamic }];
    let source = r#"
        function pred_eval(event, ctx) return true end
        function pred_capture(event, ctx)
            local tree = {}
            for i = 1, 1024 do tree[i] = tree end
            local list = {}
            for i = 1, 1000 do list[i] = "item" end
            return { tree = tree, list = list }
        end"#;
    let mut predicate = LuaPredicate::new("test", source, &view(), &captures, CustomLimits::default()).unwrap();
    assert_eq!(eval(&mut predicate, &[Value::Null, Value::Null, Value::Null]), Ok(Some(true)));
    let started = std::time::Instant::now();
    let (values, dropped) = predicate.capture().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "bounded work");
    assert_eq!(dropped, 1, "the self-holding table is dropped, counted");
    assert!(matches!(&values[..], [(name, Value::Array(items))] if name == "list" && items.len() == 1000), "{values:?}");
}

#[test]
fn lua_limits_stop_init_and_calls() {
    let limits = CustomLimits { instructions: 10_000, memory_bytes: 1 << 20, time_ms: 100 };
    let looping = LuaPredicate::new("test", "function pred_init() while true do end end function pred_eval() return true end", &view(), &[], limits);
    assert!(looping.err().is_some_and(|error| error.contains("instruction budget")), "pred_init is under the budget too");
    let mut predicate = LuaPredicate::new(
        "test",
        "function pred_eval(e) local t = {} for i = 1, 1e7 do t[i] = i end return true end",
        &view(),
        &[],
        CustomLimits { instructions: 1 << 40, ..limits },
    )
    .unwrap();
    assert!(matches!(eval(&mut predicate, &[Value::Null, Value::Null, Value::Null]), Err(CallError::Memory(_))));
    let mut predicate = LuaPredicate::new("test", "function pred_eval(e) return 1 end", &view(), &[], limits).unwrap();
    assert!(matches!(eval(&mut predicate, &[Value::Null, Value::Null, Value::Null]), Err(CallError::Failed(_))), "a number is not a truth value");
}
