//! Hand-written predicates: the bundle's `CUSTOM` section, run when a compiled
//! predicate calls `kestrel.predicate` (docs/abi.md, "Hand-written predicates").
//!
//! Each predicate reads a typed view of the event: the fields it declared, copied from
//! the slots the bundle's module already has for the event (no JSON), and the call's
//! arguments. Lua predicates run in a sandboxed LuaJIT state ([`lua`]), Wasm ones in
//! a store of their own ([`wasm`]); both sit behind [`Custom::eval`]. A predicate that
//! fails (an error, a trap, its instruction, time or memory limit) is disabled and
//! counted, its calls are null from then on, and every other rule keeps running.

pub mod lua;
#[cfg(test)]
mod tests;
pub mod wasm;

use kestrel_bundle::abi::{SLOT_SIZE, truth};
use kestrel_bundle::bundle::{Bundle, CustomPredicate, CustomRuntime};
use kestrel_bundle::semantics::Value;
use std::sync::Arc;
use wasmtime::{Engine, Module};

/// What a predicate's code sees besides the call's arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewSpec {
    /// Field names by view id.
    pub fields: Vec<String>,
    /// How many arguments a call passes.
    pub params: usize,
}

/// Why one call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    /// The instruction budget (Lua) or the time limit (Wasm) ran out.
    Budget(String),
    /// The memory limit was reached.
    Memory(String),
    /// An error or a trap.
    Failed(String),
    /// The event's view did not fit the module's view region: the call is null,
    /// counted, and the predicate stays on.
    Oversized,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Budget(text) => write!(f, "stopped: {text}"),
            CallError::Memory(text) => write!(f, "stopped: {text}"),
            CallError::Failed(text) => write!(f, "failed: {text}"),
            CallError::Oversized => f.write_str("the event's view does not fit the view region"),
        }
    }
}

/// A bundle's hand-written predicates, prepared once per program: Wasm modules
/// compiled, views resolved to slots.
pub struct Compiled {
    predicates: Vec<Prepared>,
}

struct Prepared {
    def: CustomPredicate,
    view: ViewSpec,
    /// The slot (index among an event's slots) of each view field.
    slots: Vec<u32>,
    module: Option<Result<Module, String>>,
}

impl Compiled {
    pub fn new(bundle: &Bundle, engine: &Engine) -> Compiled {
        let predicates = bundle
            .custom
            .iter()
            .flatten()
            .map(|def| {
                let view = ViewSpec { fields: def.fields.iter().map(|field| bundle.fields[*field as usize].name.clone()).collect(), params: def.params.len() };
                let slots = def.fields.iter().map(|field| bundle.fields[*field as usize].slot).collect();
                let module = (def.runtime == CustomRuntime::Wasm)
                    .then(|| Module::new(engine, &def.code).map_err(|error| format!("the module does not compile: {}", first_line(&error.to_string()))));
                Prepared { def: def.clone(), view, slots, module }
            })
            .collect();
        Compiled { predicates }
    }

    pub fn is_empty(&self) -> bool {
        self.predicates.is_empty()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Counters of one hand-written predicate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomStats {
    pub name: String,
    pub runtime: &'static str,
    /// Calls made (a disabled predicate's calls are not made).
    pub calls: u64,
    /// Calls that returned true.
    pub matched: u64,
    /// Calls skipped because the predicate is disabled.
    pub skipped: u64,
    /// Calls whose event view did not fit (null).
    pub oversized: u64,
    /// Captured values of another type than declared, or larger than `guest::read`
    /// reads back, dropped.
    pub captures_dropped: u64,
    /// Why the predicate was disabled, if it was.
    pub disabled: Option<String>,
}

enum Runtime {
    Lua(Box<lua::LuaPredicate>),
    Wasm(Box<wasm::WasmPredicate>),
}

struct Running {
    runtime: Option<Runtime>,
    slots: Vec<u32>,
    has_captures: bool,
    stats: CustomStats,
}

/// Values a predicate captured on an event (its `pred_capture` after a true call).
#[derive(Clone, Debug, PartialEq)]
pub struct Captured {
    /// The predicate (index into the bundle's `CUSTOM` section).
    pub predicate: u32,
    pub values: Arc<Vec<(String, Value)>>,
}

/// The hand-written predicates of one engine, instantiated.
pub struct Custom {
    predicates: Vec<Running>,
    /// Captures of the batch being evaluated: (the event's slots address, captured).
    pub stash: Vec<(u32, Captured)>,
    /// Scratch: the slot addresses of the current call's view.
    view: Vec<usize>,
}

impl Custom {
    /// Instantiates every predicate; one that cannot start is disabled (and says why).
    pub fn new(compiled: &Compiled, engine: &Engine) -> Custom {
        let predicates = compiled
            .predicates
            .iter()
            .map(|prepared| {
                let def = &prepared.def;
                let started = match (&def.runtime, &prepared.module) {
                    (CustomRuntime::Lua, _) => match std::str::from_utf8(&def.code) {
                        Ok(source) => {
                            lua::LuaPredicate::new(&def.name, source, &prepared.view, &def.captures, def.limits).map(|lua| Runtime::Lua(Box::new(lua)))
                        }
                        Err(_) => Err("the Lua source is not UTF-8".to_string()),
                    },
                    (CustomRuntime::Wasm, Some(Ok(module))) => {
                        wasm::WasmPredicate::new(engine, module, &prepared.view, &def.captures, def.limits).map(|wasm| Runtime::Wasm(Box::new(wasm)))
                    }
                    (CustomRuntime::Wasm, Some(Err(error))) => Err(error.clone()),
                    (CustomRuntime::Wasm, None) => Err("the module was not compiled".to_string()),
                };
                let mut stats = CustomStats { name: def.name.clone(), runtime: def.runtime.name(), ..CustomStats::default() };
                let runtime = match started {
                    Ok(runtime) => Some(runtime),
                    Err(error) => {
                        stats.disabled = Some(format!("did not start: {error}"));
                        None
                    }
                };
                Running { runtime, slots: prepared.slots.clone(), has_captures: !def.captures.is_empty(), stats }
            })
            .collect();
        Custom { predicates, stash: Vec::new(), view: Vec::new() }
    }

    /// Runs predicate `predicate` on the event whose slots start at `slots` in the
    /// bundle's memory, with `argc` argument slots at `args`: a truth value.
    pub fn eval(&mut self, predicate: usize, memory: &[u8], slots: usize, args: usize, argc: usize) -> i32 {
        let Some(running) = self.predicates.get_mut(predicate) else { return truth::NULL };
        let Some(runtime) = running.runtime.as_mut() else {
            running.stats.skipped += 1;
            return truth::NULL;
        };
        // The view: the addresses of its fields' slots in this event, then the arguments'.
        self.view.clear();
        self.view.extend(running.slots.iter().map(|slot| slots + *slot as usize * SLOT_SIZE as usize));
        self.view.extend((0..argc).map(|idx| args + idx * SLOT_SIZE as usize));
        running.stats.calls += 1;
        let result = match runtime {
            Runtime::Lua(lua) => lua.eval(memory, &self.view),
            Runtime::Wasm(wasm) => wasm.eval(memory, &self.view),
        };
        let result = match result {
            Ok(Some(true)) if running.has_captures => {
                let captured = match runtime {
                    Runtime::Lua(lua) => lua.capture(),
                    Runtime::Wasm(wasm) => wasm.capture(),
                };
                captured.map(|(values, dropped)| {
                    running.stats.captures_dropped += dropped;
                    if !values.is_empty() {
                        self.stash.push((slots as u32, Captured { predicate: predicate as u32, values: Arc::new(values) }));
                    }
                    Some(true)
                })
            }
            other => other,
        };
        match result {
            Ok(Some(true)) => {
                running.stats.matched += 1;
                truth::TRUE
            }
            Ok(Some(false)) => truth::FALSE,
            Ok(None) => truth::NULL,
            Err(CallError::Oversized) => {
                running.stats.oversized += 1;
                truth::NULL
            }
            Err(error) => {
                running.stats.disabled = Some(error.to_string());
                running.runtime = None;
                truth::NULL
            }
        }
    }

    pub fn stats(&self) -> Vec<CustomStats> {
        self.predicates.iter().map(|running| running.stats.clone()).collect()
    }
}
