//! Hand-written predicates in LuaJIT, sandboxed (docs/abi.md, "Hand-written predicates").
//!
//! The state has the `string`, `table`, `math` and `bit` libraries and the safe parts
//! of the base library; no `io`, `os`, `package`/`require`, `debug`, `ffi` or `jit`,
//! no way to load code (`load`, `loadstring`, `dofile`, `loadfile`, `string.dump`),
//! and no `pcall`/`xpcall` (an error ends the call, so a budget overrun cannot be
//! caught and retried). Sources load as text only. A count hook charges every 1,000
//! VM instructions against the call's budget, and the allocator refuses memory over
//! the predicate's limit. The JIT compiler is never started, so the hook sees every
//! instruction.

use super::{CallError, ViewSpec};
use crate::guest;
use kestrel_bundle::abi::{SLOT_SIZE, tag};
use kestrel_bundle::bundle::{CaptureDecl, CustomLimits, FieldKind};
use kestrel_bundle::schema::FieldType;
use kestrel_bundle::semantics::Value;
use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, VmState};
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

/// Instructions between two checks of the budget.
const HOOK_EVERY: u32 = 1_000;
/// Strings kept as Lua strings between calls (values repeat: names, actions, paths).
const INTERNED: usize = 4_096;
/// Globals of the base library a predicate does not get.
const REMOVED: [&str; 14] =
    ["load", "loadstring", "loadfile", "dofile", "require", "module", "collectgarbage", "getfenv", "setfenv", "newproxy", "print", "gcinfo", "pcall", "xpcall"];

/// The trusted part: keeps one event table per predicate and fills it from the
/// call's arguments, so a call allocates nothing but new strings.
fn prelude(fields: usize, params: usize) -> String {
    let names: Vec<String> = (0..fields).map(|id| format!("f{id}")).chain((1..=params).map(|id| format!("a{id}"))).collect();
    let mut body = String::new();
    for id in 0..fields {
        body.push_str(&format!("event[{id}] = f{id}; "));
    }
    for id in 1..=params {
        body.push_str(&format!("args[{id}] = a{id}; "));
    }
    format!(
        "local eval, capture, ctx = ...\n\
         local args = {{}}\n\
         local event = {{ args = args }}\n\
         return function({params}) {body}return eval(event, ctx) end,\n\
         function() return capture(event, ctx) end",
        params = names.join(", ")
    )
}

pub struct LuaPredicate {
    lua: Lua,
    eval: Function,
    capture: Option<Function>,
    captures: Vec<CaptureDecl>,
    /// Hook ticks left in the current call.
    budget: Rc<Cell<u64>>,
    ticks_per_call: u64,
    strings: HashMap<Box<[u8]>, mlua::LuaString>,
}

impl LuaPredicate {
    /// Builds the sandbox, runs the source and `pred_init(ctx)`.
    pub fn new(name: &str, source: &str, view: &ViewSpec, captures: &[CaptureDecl], limits: CustomLimits) -> Result<LuaPredicate, String> {
        let lua = Lua::new_with(StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::BIT, LuaOptions::new()).map_err(|error| error.to_string())?;
        let budget = Rc::new(Cell::new(0u64));
        let ticks_per_call = limits.instructions.div_ceil(u64::from(HOOK_EVERY)).max(1);
        let hook_budget = budget.clone();
        lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, _| {
            let left = hook_budget.get();
            if left == 0 {
                return Err(mlua::Error::runtime("the instruction budget is spent"));
            }
            hook_budget.set(left - 1);
            Ok(VmState::Continue)
        })
        .map_err(|error| error.to_string())?;
        let globals = lua.globals();
        for name in REMOVED {
            globals.raw_set(name, mlua::Value::Nil).map_err(|error| error.to_string())?;
        }
        let string: Table = globals.get("string").map_err(|error| error.to_string())?;
        string.raw_set("dump", mlua::Value::Nil).map_err(|error| error.to_string())?;
        lua.set_memory_limit(limits.memory_bytes as usize).map_err(|error| format!("cannot limit the Lua heap: {error}"))?;

        budget.set(ticks_per_call);
        lua.load(source).set_name(format!("={name}")).set_mode(ChunkMode::Text).exec().map_err(|error| describe(&error))?;
        let globals = lua.globals();
        let eval: Function = match globals.get("pred_eval") {
            Ok(mlua::Value::Function(function)) => function,
            _ => return Err("the source defines no function `pred_eval(event, ctx)`".into()),
        };
        let capture = match globals.get("pred_capture") {
            Ok(mlua::Value::Function(function)) => Some(function),
            _ => None,
        };
        if !captures.is_empty() && capture.is_none() {
            return Err(format!("the predicate declares {} captures but the source defines no function `pred_capture(event, ctx)`", captures.len()));
        }
        let ctx = context(&lua, name, view, captures).map_err(|error| describe(&error))?;
        if let Ok(mlua::Value::Function(init)) = globals.get("pred_init") {
            budget.set(ticks_per_call);
            match init.call::<mlua::Value>(&ctx).map_err(|error| describe(&error))? {
                mlua::Value::Nil | mlua::Value::Boolean(true) => {}
                other => return Err(format!("pred_init returned a {}; it returns nothing or true when it is ready", other.type_name())),
            }
        }
        let no_capture = capture.clone().unwrap_or_else(|| eval.clone());
        budget.set(ticks_per_call);
        let (wrapper, capture_wrapper): (Function, Function) = lua
            .load(prelude(view.fields.len(), view.params))
            .set_name("=kestrel")
            .set_mode(ChunkMode::Text)
            .call((eval, no_capture, ctx))
            .map_err(|error| describe(&error))?;
        Ok(LuaPredicate {
            lua,
            eval: wrapper,
            capture: capture.map(|_| capture_wrapper),
            captures: captures.to_vec(),
            budget,
            ticks_per_call,
            strings: HashMap::new(),
        })
    }

    /// `pred_eval` on one event view, read from the bundle's memory: `view` holds the
    /// addresses of the slots of the view's fields, then of the call's arguments.
    /// `Some(bool)`, or `None` for nil (null).
    pub fn eval(&mut self, memory: &[u8], view: &[usize]) -> Result<Option<bool>, CallError> {
        let mut values = mlua::MultiValue::with_capacity(view.len());
        for at in view {
            let converted = self.slot_to_lua(memory, *at).map_err(|error| CallError::Failed(describe(&error)))?;
            values.push_back(converted);
        }
        self.budget.set(self.ticks_per_call);
        match self.eval.call::<mlua::Value>(values) {
            Ok(mlua::Value::Boolean(truth)) => Ok(Some(truth)),
            Ok(mlua::Value::Nil) => Ok(None),
            Ok(other) => Err(CallError::Failed(format!("pred_eval returned a {}, not a boolean or nil", other.type_name()))),
            Err(error) => Err(self.failure(&error)),
        }
    }

    /// The slot at `at` as a Lua value: scalars and strings straight from memory (strings
    /// seen before from the cache), other values through `guest::read`.
    fn slot_to_lua(&mut self, memory: &[u8], at: usize) -> mlua::Result<mlua::Value> {
        let Some(slot) = memory.get(at..at + SLOT_SIZE as usize) else { return Ok(mlua::Value::Nil) };
        let payload = u64::from_le_bytes(slot[8..16].try_into().unwrap_or([0; 8]));
        Ok(match slot[0] {
            tag::NULL => mlua::Value::Nil,
            tag::BOOL => mlua::Value::Boolean(payload != 0),
            // LuaJIT numbers are doubles.
            tag::LONG => mlua::Value::Number(payload as i64 as f64),
            tag::DOUBLE => mlua::Value::Number(f64::from_bits(payload)),
            tag::STRING => {
                let len = u32::from_le_bytes(slot[4..8].try_into().unwrap_or([0; 4])) as usize;
                let start = payload as u32 as usize;
                match memory.get(start..start.saturating_add(len)) {
                    Some(bytes) => mlua::Value::String(self.string(bytes)?),
                    None => mlua::Value::Nil,
                }
            }
            _ => self.lua_value(&guest::read(memory, at))?,
        })
    }

    /// `pred_capture` on the event view of the last `eval`: the declared captures it
    /// returned (by name, in a table), converted to their types; others are dropped
    /// and counted in the second value.
    pub fn capture(&mut self) -> Result<(Vec<(String, Value)>, u64), CallError> {
        let Some(capture) = &self.capture else { return Ok((Vec::new(), 0)) };
        self.budget.set(self.ticks_per_call);
        let table = match capture.call::<mlua::Value>(()) {
            Ok(mlua::Value::Table(table)) => table,
            Ok(mlua::Value::Nil) => return Ok((Vec::new(), 0)),
            Ok(other) => return Err(CallError::Failed(format!("pred_capture returned a {}, not a table", other.type_name()))),
            Err(error) => return Err(self.failure(&error)),
        };
        let mut values = Vec::new();
        let mut dropped = 0;
        for decl in &self.captures {
            let value: mlua::Value = table.raw_get(decl.name.as_str()).unwrap_or(mlua::Value::Nil);
            let mut budget = guest::Budget::new();
            match from_lua(&value, decl.kind, 0, &mut budget) {
                Some(Value::Null) => {}
                Some(converted) => values.push((decl.name.clone(), converted)),
                None => dropped += 1,
            }
        }
        Ok((values, dropped))
    }

    fn failure(&self, error: &mlua::Error) -> CallError {
        if self.budget.get() == 0 {
            CallError::Budget(format!("more than {} instructions in one call", self.ticks_per_call * u64::from(HOOK_EVERY)))
        } else if matches!(root(error), mlua::Error::MemoryError(_)) {
            CallError::Memory(format!("over its memory limit ({} bytes in use)", self.lua.used_memory()))
        } else {
            CallError::Failed(describe(error))
        }
    }

    fn lua_value(&mut self, value: &Value) -> mlua::Result<mlua::Value> {
        Ok(match value {
            Value::Null => mlua::Value::Nil,
            Value::Bool(truth) => mlua::Value::Boolean(*truth),
            // LuaJIT numbers are doubles.
            Value::Long(number) => mlua::Value::Number(*number as f64),
            Value::Double(number) => mlua::Value::Number(*number),
            Value::Str(text) => mlua::Value::String(self.string(text.as_bytes())?),
            Value::Ip(address) => mlua::Value::String(self.string(address.to_string().as_bytes())?),
            Value::Array(items) => {
                let table = self.lua.create_table_with_capacity(items.len(), 0)?;
                for (idx, item) in items.iter().enumerate() {
                    table.raw_set(idx + 1, self.lua_value(item)?)?;
                }
                mlua::Value::Table(table)
            }
            Value::Object(entries) => {
                let table = self.lua.create_table_with_capacity(0, entries.len())?;
                for (key, item) in entries {
                    if table.raw_get::<mlua::Value>(key.as_str())?.is_nil() {
                        table.raw_set(key.as_str(), self.lua_value(item)?)?;
                    }
                }
                mlua::Value::Table(table)
            }
        })
    }

    /// A Lua string for `bytes`, from the cache when it was seen before.
    fn string(&mut self, bytes: &[u8]) -> mlua::Result<mlua::LuaString> {
        if let Some(string) = self.strings.get(bytes) {
            return Ok(string.clone());
        }
        let string = self.lua.create_string(bytes)?;
        if bytes.len() <= 256 {
            if self.strings.len() >= INTERNED {
                self.strings.clear();
            }
            self.strings.insert(bytes.into(), string.clone());
        }
        Ok(string)
    }
}

/// `ctx`: the predicate's name, its view's field ids by name, its parameter count
/// and capture names.
fn context(lua: &Lua, name: &str, view: &ViewSpec, captures: &[CaptureDecl]) -> mlua::Result<Table> {
    let ctx = lua.create_table()?;
    ctx.raw_set("name", name)?;
    ctx.raw_set("abi", 1)?;
    let fields = lua.create_table()?;
    for (id, field) in view.fields.iter().enumerate() {
        fields.raw_set(field.as_str(), id)?;
    }
    ctx.raw_set("fields", fields)?;
    ctx.raw_set("params", view.params)?;
    let names = lua.create_table()?;
    for (idx, capture) in captures.iter().enumerate() {
        names.raw_set(idx + 1, capture.name.as_str())?;
    }
    ctx.raw_set("captures", names)?;
    Ok(ctx)
}

/// A Lua value as a capture of type `kind`: `None` when it has another type, or when
/// it is larger than what the host reads back of a Wasm predicate's (the budget is then
/// `over`: a table may hold itself, 1,024 times at each of four levels).
fn from_lua(value: &mlua::Value, kind: FieldKind, depth: usize, budget: &mut guest::Budget) -> Option<Value> {
    let number = |value: f64| if value.fract() == 0.0 && value.abs() < 9.0e15 { Value::Long(value as i64) } else { Value::Double(value) };
    let bytes = match value {
        mlua::Value::String(text) => text.as_bytes().len(),
        _ => 0,
    };
    budget.take(bytes)?;
    Some(match (kind, value) {
        (_, mlua::Value::Nil) => Value::Null,
        (FieldKind::Typed(FieldType::Keyword), mlua::Value::String(text)) => Value::Str(text.to_str().ok()?.to_string()),
        (FieldKind::Typed(FieldType::Long), mlua::Value::Number(value)) if value.fract() == 0.0 => Value::Long(*value as i64),
        (FieldKind::Typed(FieldType::Long), mlua::Value::Integer(value)) => Value::Long(*value),
        (FieldKind::Typed(FieldType::Double), mlua::Value::Number(value)) => Value::Double(*value),
        (FieldKind::Typed(FieldType::Double), mlua::Value::Integer(value)) => Value::Double(*value as f64),
        (FieldKind::Typed(FieldType::Boolean), mlua::Value::Boolean(truth)) => Value::Bool(*truth),
        (FieldKind::Typed(FieldType::Ip), mlua::Value::String(text)) => Value::Ip(text.to_str().ok()?.parse().ok()?),
        (FieldKind::Dynamic, mlua::Value::Boolean(truth)) => Value::Bool(*truth),
        (FieldKind::Dynamic, mlua::Value::Number(value)) => number(*value),
        (FieldKind::Dynamic, mlua::Value::Integer(value)) => Value::Long(*value),
        (FieldKind::Dynamic, mlua::Value::String(text)) => Value::Str(text.to_str().ok()?.to_string()),
        (FieldKind::Dynamic, mlua::Value::Table(table)) if depth < 4 => {
            let mut items = Vec::new();
            for item in table.clone().sequence_values::<mlua::Value>().take(1_024).filter_map(Result::ok) {
                items.extend(from_lua(&item, kind, depth + 1, budget));
                if budget.over {
                    return None;
                }
            }
            Value::Array(items)
        }
        _ => return None,
    })
}

/// The innermost error of a callback chain.
fn root(error: &mlua::Error) -> &mlua::Error {
    match error {
        mlua::Error::CallbackError { cause, .. } => root(cause),
        mlua::Error::WithContext { cause, .. } => root(cause),
        other => other,
    }
}

/// One line: the error without its traceback.
fn describe(error: &mlua::Error) -> String {
    let text = root(error).to_string();
    text.lines().next().unwrap_or_default().to_string()
}
