//! Hand-written predicates in Wasm (docs/abi.md, "Hand-written predicates"): one
//! store per predicate, so its memory limit and epoch deadline are its own, and a trap
//! in it never reaches the bundle's module.

use super::{CallError, ViewSpec};
use crate::guest::{self, Area};
use kestrel_bundle::abi::SLOT_SIZE;
use kestrel_bundle::bundle::{CaptureDecl, CustomLimits, FieldKind};
use kestrel_bundle::schema::FieldType;
use kestrel_bundle::semantics::Value;
use wasmtime::{Engine, Instance, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, TypedFunc};

/// Size of the context block at the start of the view region (docs/abi.md).
pub const CONTEXT_SIZE: usize = 32;
/// Length of one epoch tick of the runtime's ticker, in milliseconds.
const TICK_MS: u64 = crate::engine::TICK.as_millis() as u64;

pub struct WasmPredicate {
    store: Store<StoreLimits>,
    memory: Memory,
    eval: TypedFunc<(i32, i32), i32>,
    capture: Option<TypedFunc<(i32, i32), i32>>,
    captures: Vec<CaptureDecl>,
    /// The host's region of the module's memory: context, slots, captures, payloads.
    view: usize,
    view_end: usize,
    fields: usize,
    params: usize,
    ticks: u64,
}

impl WasmPredicate {
    /// Instantiates the module (compiled once per program) under its limits, writes the
    /// context block and runs `pred_init(ctx)`.
    pub fn new(engine: &Engine, module: &Module, view: &ViewSpec, captures: &[CaptureDecl], limits: CustomLimits) -> Result<WasmPredicate, String> {
        let memory_bytes = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
        let mut store = Store::new(engine, StoreLimitsBuilder::new().memory_size(memory_bytes).instances(1).tables(4).build());
        store.limiter(|limits| limits);
        let ticks = limits.time_ms.div_ceil(TICK_MS).max(1) + 1;
        store.set_epoch_deadline(ticks);
        let instance = Instance::new(&mut store, module, &[]).map_err(|error| format!("cannot instantiate the module: {error}"))?;
        let memory = instance.get_memory(&mut store, "memory").ok_or("the module exports no memory")?;
        let global = |store: &mut Store<StoreLimits>, name: &str| -> Result<usize, String> {
            instance
                .get_global(&mut *store, name)
                .and_then(|global| global.get(&mut *store).i32())
                .map(|value| value as u32 as usize)
                .ok_or(format!("the module exports no i32 global `{name}`"))
        };
        let start = global(&mut store, "view")?;
        let len = global(&mut store, "view_len")?;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= memory.data_size(&store))
            .ok_or(format!("its view region ({start}, {len} bytes) is outside its memory"))?;
        let needed = CONTEXT_SIZE + (view.fields.len() + view.params + captures.len()) * SLOT_SIZE as usize;
        if len < needed || start % 8 != 0 {
            return Err(format!("its view region is {len} bytes at {start}; the predicate needs at least {needed}, 8-aligned"));
        }
        let eval = instance.get_typed_func::<(i32, i32), i32>(&mut store, "pred_eval").map_err(|error| format!("`pred_eval`: {error}"))?;
        let capture = match instance.get_typed_func::<(i32, i32), i32>(&mut store, "pred_capture") {
            Ok(function) => Some(function),
            Err(_) if captures.is_empty() => None,
            Err(error) => return Err(format!("`pred_capture`: {error}")),
        };
        let mut predicate = WasmPredicate {
            store,
            memory,
            eval,
            capture,
            captures: captures.to_vec(),
            view: start,
            view_end: end,
            fields: view.fields.len(),
            params: view.params,
            ticks,
        };
        predicate.write_context();
        if let Ok(init) = instance.get_typed_func::<i32, i32>(&mut predicate.store, "pred_init") {
            predicate.store.set_epoch_deadline(ticks);
            match init.call(&mut predicate.store, predicate.view as i32) {
                Ok(0) => {}
                Ok(code) => return Err(format!("pred_init returned {code}; 0 means ready")),
                Err(error) => return Err(format!("pred_init trapped: {}", trap_text(&error))),
            }
            // The context block is the host's: written again in case init wrote over it.
            predicate.write_context();
        }
        Ok(predicate)
    }

    fn event_at(&self) -> usize {
        self.view + CONTEXT_SIZE
    }

    fn captures_at(&self) -> usize {
        self.event_at() + (self.fields + self.params) * SLOT_SIZE as usize
    }

    fn data_at(&self) -> usize {
        self.captures_at() + self.captures.len() * SLOT_SIZE as usize
    }

    fn write_context(&mut self) {
        let words = [
            1,
            self.fields as u32,
            self.params as u32,
            self.captures.len() as u32,
            self.event_at() as u32,
            self.captures_at() as u32,
            self.data_at() as u32,
            self.view_end as u32,
        ];
        let data = self.memory.data_mut(&mut self.store);
        for (idx, word) in words.iter().enumerate() {
            let at = self.view + idx * 4;
            data[at..at + 4].copy_from_slice(&word.to_le_bytes());
        }
    }

    /// `pred_eval` on one event view, its slots copied from the bundle's memory
    /// (`slots`: the addresses of the view's fields, then of the arguments):
    /// `Some(bool)`, or `None` for null. A view larger than the region is
    /// `CallError::Oversized` (counted, the predicate stays on).
    pub fn eval(&mut self, from: &[u8], slots: &[usize]) -> Result<Option<bool>, CallError> {
        let (event, data, end, captures) = (self.event_at(), self.data_at(), self.view_end, self.captures_at());
        let memory = self.memory.data_mut(&mut self.store);
        let mut area = Area::new(data, end);
        for (idx, at) in slots.iter().enumerate() {
            if guest::copy_slot(from, *at, memory, event + idx * SLOT_SIZE as usize, &mut area).is_err() {
                return Err(CallError::Oversized);
            }
        }
        // Capture slots start null, so a module that writes none captures nothing.
        memory[captures..captures + self.captures.len() * SLOT_SIZE as usize].fill(0);
        self.store.set_epoch_deadline(self.ticks);
        match self.eval.call(&mut self.store, (event as i32, self.view as i32)) {
            Ok(0) => Ok(Some(false)),
            Ok(1) => Ok(Some(true)),
            Ok(2) => Ok(None),
            Ok(other) => Err(CallError::Failed(format!("pred_eval returned {other}; it returns 0, 1 or 2"))),
            Err(error) => Err(self.failure(&error)),
        }
    }

    /// `pred_capture` on the view of the last `eval`: the capture slots it wrote, read
    /// back; values of another type than declared, or over `guest::read`'s bounds, are
    /// dropped and counted.
    pub fn capture(&mut self) -> Result<(Vec<(String, Value)>, u64), CallError> {
        let Some(capture) = &self.capture else { return Ok((Vec::new(), 0)) };
        self.store.set_epoch_deadline(self.ticks);
        let (event, ctx) = (self.event_at() as i32, self.view as i32);
        match capture.call(&mut self.store, (event, ctx)) {
            Ok(_) => {}
            Err(error) => return Err(self.failure(&error)),
        }
        let memory = self.memory.data(&self.store);
        let mut values = Vec::new();
        let mut dropped = 0;
        for (idx, decl) in self.captures.iter().enumerate() {
            // A value too large to read back (or malformed) is dropped, counted.
            let Some(value) = guest::read_bounded(memory, self.captures_at() + idx * SLOT_SIZE as usize) else {
                dropped += 1;
                continue;
            };
            match (decl.kind, &value) {
                (_, Value::Null) => {}
                (FieldKind::Dynamic, _)
                | (FieldKind::Typed(FieldType::Keyword), Value::Str(_))
                | (FieldKind::Typed(FieldType::Long), Value::Long(_))
                | (FieldKind::Typed(FieldType::Double), Value::Double(_))
                | (FieldKind::Typed(FieldType::Boolean), Value::Bool(_))
                | (FieldKind::Typed(FieldType::Ip), Value::Ip(_)) => values.push((decl.name.clone(), value)),
                (FieldKind::Typed(FieldType::Double), Value::Long(number)) => values.push((decl.name.clone(), Value::Double(*number as f64))),
                _ => dropped += 1,
            }
        }
        Ok((values, dropped))
    }

    fn failure(&self, error: &wasmtime::Error) -> CallError {
        let text = trap_text(error);
        if matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
            CallError::Budget(format!("ran past its time limit ({} ms): {text}", (self.ticks - 1) * TICK_MS))
        } else {
            CallError::Failed(text)
        }
    }
}

fn trap_text(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => format!("trap: {trap}"),
        None => error.to_string().lines().next().unwrap_or_default().to_string(),
    }
}
