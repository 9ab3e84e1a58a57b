//! Assembling the predicate module: the library first (same types, imports and
//! function indices as library.wat), then the generated predicates, value functions and
//! `eval`, the memory, the globals the library expects, and the constants.

use super::consts::Consts;
use super::expr::FnBuilder;
use super::library::Library;
use kestrel_bundle::bundle::Layout;
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, GlobalSection, GlobalType, ImportSection,
    MemorySection, MemoryType, Module, TypeSection, ValType,
};

/// The generated functions of a module, in index order after the library.
pub struct Generated {
    pub predicates: Vec<Function>,
    pub values: Vec<Function>,
    pub eval: Function,
}

/// Index of the first generated function.
pub fn first_generated(library: &Library) -> u32 {
    library.function_count()
}

/// The module's bytes.
pub fn module(library: &Library, layout: &Layout, memory_pages: u32, consts: Consts, generated: Generated) -> Vec<u8> {
    let mut types = TypeSection::new();
    for signature in &library.types {
        types.ty().function(signature.params.iter().copied(), signature.results.iter().copied());
    }
    // Every export takes the event index (or, for `eval`, the event count) of the batch.
    let returns_i32 = library.types.len() as u32;
    types.ty().function([ValType::I32], [ValType::I32]);
    let returns_nothing = returns_i32 + 1;
    types.ty().function([ValType::I32], []);

    let mut imports = ImportSection::new();
    for (module, name, ty) in &library.imports {
        imports.import(module, name, EntityType::Function(*ty));
    }

    let mut functions = FunctionSection::new();
    for (ty, _) in &library.functions {
        functions.function(*ty);
    }
    for _ in &generated.predicates {
        functions.function(returns_i32);
    }
    for _ in &generated.values {
        functions.function(returns_nothing);
    }
    functions.function(returns_i32);

    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: u64::from(memory_pages),
        maximum: Some(u64::from(memory_pages)),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });

    // The globals library.wat declares, in its order: heap_top, heap_start, heap_end, args,
    // out, event_base.
    let mut globals = GlobalSection::new();
    let heap_end = layout.heap_offset + layout.heap_capacity;
    for (mutable, value) in [
        (true, layout.heap_offset),
        (false, layout.heap_offset),
        (false, heap_end),
        (false, layout.args_offset),
        (false, layout.out_offset),
        (true, layout.slots_offset),
    ] {
        globals.global(GlobalType { val_type: ValType::I32, mutable, shared: false }, &ConstExpr::i32_const(value as i32));
    }

    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("heap_top", ExportKind::Global, 0);
    let first = first_generated(library);
    for idx in 0..generated.predicates.len() as u32 {
        exports.export(&format!("pred_{idx}"), ExportKind::Func, first + idx);
    }
    let first_value = first + generated.predicates.len() as u32;
    for idx in 0..generated.values.len() as u32 {
        exports.export(&format!("value_{idx}"), ExportKind::Func, first_value + idx);
    }
    exports.export("eval", ExportKind::Func, first_value + generated.values.len() as u32);

    let mut code = CodeSection::new();
    for (_, body) in &library.functions {
        code.raw(body);
    }
    for function in generated.predicates.iter().chain(&generated.values).chain(std::iter::once(&generated.eval)) {
        code.function(function);
    }

    let mut data = DataSection::new();
    let base = consts.base();
    let bytes = consts.into_bytes();
    if !bytes.is_empty() {
        data.active(0, &ConstExpr::i32_const(base as i32), bytes);
    }

    let mut module = Module::new();
    module.section(&types).section(&imports).section(&functions).section(&memories).section(&globals).section(&exports).section(&code).section(&data);
    module.finish()
}

/// The body of a value function: compute, then copy the slot into the out region.
pub fn copy_to_out(builder: &mut FnBuilder, out_offset: u32) {
    use wasm_encoder::{Instruction, MemArg};
    let slot = builder.local(ValType::I32);
    builder.emit(Instruction::LocalSet(slot));
    for offset in [0u64, 8] {
        builder.emit(Instruction::I32Const(out_offset as i32));
        builder.emit(Instruction::LocalGet(slot));
        builder.emit(Instruction::I64Load(MemArg { offset, align: 3, memory_index: 0 }));
        builder.emit(Instruction::I64Store(MemArg { offset, align: 3, memory_index: 0 }));
    }
}
