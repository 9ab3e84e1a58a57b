//! The host functions of the `kestrel` import module (docs/abi.md, "Imports").

use crate::functions::DeclaredFn;
use crate::guest::{self, Area};
use kestrel_bundle::abi::{SLOT_SIZE, truth};
use kestrel_bundle::semantics::functions::cidr_match_parsed;
use kestrel_bundle::semantics::{FunctionSemantics, Value};
use std::net::IpAddr;
use std::sync::Arc;
use wasmtime::{Caller, Extern, Linker, StoreLimits};

/// What host functions need, one per store.
pub struct HostState {
    pub regexes: Arc<Vec<regex::Regex>>,
    /// The bundle's CIDR sets as (network, prefix) blocks.
    pub cidr_sets: Arc<Vec<Vec<(IpAddr, u8)>>>,
    /// The embedder's functions, indexed as `abi::call::DECLARED + i`.
    pub declared: Arc<Vec<DeclaredFn>>,
    pub out_offset: usize,
    pub heap_end: usize,
    pub limits: StoreLimits,
    /// Host calls that could not complete (a full heap), counted.
    pub host_failures: u64,
    /// The bundle's hand-written predicates, when it has some.
    pub custom: Option<Box<crate::custom::Custom>>,
}

fn memory(caller: &mut Caller<'_, HostState>) -> Option<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    }
}

pub fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("kestrel", "regex", |mut caller: Caller<'_, HostState>, regex: i32, ptr: i32, len: i32| -> i32 {
        let Some(memory) = memory(&mut caller) else { return truth::NULL };
        let (data, state) = memory.data_and_store_mut(&mut caller);
        let (start, len) = (ptr as u32 as usize, len as u32 as usize);
        let Some(bytes) = data.get(start..start.saturating_add(len)) else { return truth::NULL };
        let Ok(text) = std::str::from_utf8(bytes) else { return truth::NULL };
        match state.regexes.get(regex as u32 as usize) {
            Some(regex) => i32::from(regex.is_match(text)),
            None => truth::NULL,
        }
    })?;
    linker.func_wrap("kestrel", "cidr", |mut caller: Caller<'_, HostState>, set: i32, slot: i32, python: i32| -> i32 {
        let Some(memory) = memory(&mut caller) else { return truth::NULL };
        let (data, state) = memory.data_and_store_mut(&mut caller);
        let value = guest::read(data, slot as u32 as usize);
        let Some(blocks) = state.cidr_sets.get(set as u32 as usize) else { return truth::NULL };
        cidr_match(&value, blocks, python != 0)
    })?;
    linker.func_wrap("kestrel", "call", |mut caller: Caller<'_, HostState>, function: i32, args: i32, argc: i32, flags: i32| -> wasmtime::Result<()> {
        let memory = memory(&mut caller).ok_or_else(|| wasmtime::format_err!("the module has no memory"))?;
        let heap_top = match caller.get_export("heap_top") {
            Some(Extern::Global(global)) => global,
            _ => wasmtime::bail!("the module has no heap_top"),
        };
        let top = heap_top.get(&mut caller).i32().unwrap_or(0) as u32 as usize;
        let (data, state) = memory.data_and_store_mut(&mut caller);
        let argc = (argc as u32).min(kestrel_bundle::abi::MAX_CALL_ARGS) as usize;
        let arguments: Vec<Value> = (0..argc).map(|idx| guest::read(data, args as u32 as usize + idx * SLOT_SIZE as usize)).collect();
        let result = crate::functions::call(function, &arguments, flags, &state.declared);
        let mut area = Area::new(top, state.heap_end);
        let out = state.out_offset;
        if guest::write(data, out, &result, &mut area).is_err() {
            state.host_failures += 1;
            wasmtime::bail!("the guest heap is full");
        }
        heap_top.set(&mut caller, wasmtime::Val::I32(area.next as i32))?;
        Ok(())
    })?;
    linker.func_wrap("kestrel", "predicate", |mut caller: Caller<'_, HostState>, predicate: i32, slots: i32, args: i32, argc: i32| -> i32 {
        let Some(memory) = memory(&mut caller) else { return truth::NULL };
        let (data, state) = memory.data_and_store_mut(&mut caller);
        let argc = (argc as u32).min(kestrel_bundle::abi::MAX_CALL_ARGS) as usize;
        match state.custom.as_mut() {
            Some(custom) => custom.eval(predicate as u32 as usize, data, slots as u32 as usize, args as u32 as usize, argc),
            None => truth::NULL,
        }
    })?;
    Ok(())
}

/// `cidrMatch` as the guest sees it: the shared semantics, as a truth value.
pub fn cidr_match(value: &Value, blocks: &[(IpAddr, u8)], python: bool) -> i32 {
    let family = if python { FunctionSemantics::Python } else { FunctionSemantics::Elasticsearch };
    match cidr_match_parsed(value, blocks, family) {
        Value::Bool(true) => truth::TRUE,
        Value::Bool(false) => truth::FALSE,
        _ => truth::NULL,
    }
}
