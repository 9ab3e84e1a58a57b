//! Code generation for typed-IR expressions: a condition compiles to code leaving a
//! three-valued truth (0 false, 1 true, 2 null) on the stack, a value to code leaving the
//! address of a slot (docs/abi.md). The library functions do the work on slots; this
//! module decides which ones to call and wires `and`/`or` with short circuits.

use super::consts::Consts;
use super::library::Library;
use super::plan::{FieldSlots, Patterns};
use crate::functions::Func;
use crate::tir::{self, Anchor, ArithOp, Case, CompareOp, ExprId, ExprKind, FunctionSemantics, PathStep, Pattern, Value};
use kestrel_bundle::abi::{call, flag};
use std::collections::HashMap;
use wasm_encoder::{BlockType, Function, Instruction, MemArg, ValType};

/// The globals every module defines, in this order (library.wat declares the same).
pub const GLOBAL_HEAP_TOP: u32 = 0;
pub const GLOBAL_HEAP_START: u32 = 1;
pub const GLOBAL_EVENT_BASE: u32 = 5;
/// The longest literal whose string tests are compiled inline (`ExprGen::slot_str_op`).
pub const INLINE_STRING_BYTES: usize = 32;

fn mem(offset: u64, align: u32) -> MemArg {
    MemArg { offset, align, memory_index: 0 }
}

/// Builds one function body.
pub struct FnBuilder {
    params: u32,
    locals: Vec<ValType>,
    code: Vec<Instruction<'static>>,
}

impl FnBuilder {
    pub fn new(params: u32) -> FnBuilder {
        FnBuilder { params, locals: Vec::new(), code: Vec::new() }
    }

    pub fn local(&mut self, ty: ValType) -> u32 {
        self.locals.push(ty);
        self.params + self.locals.len() as u32 - 1
    }

    pub fn emit(&mut self, instruction: Instruction<'static>) {
        self.code.push(instruction);
    }

    pub fn finish(mut self) -> Function {
        self.code.push(Instruction::End);
        let mut function = Function::new(self.locals.iter().map(|ty| (1, *ty)));
        for instruction in &self.code {
            function.instruction(instruction);
        }
        function
    }
}

/// Generates code for the expressions of one rule.
pub struct ExprGen<'a> {
    pub rule: &'a tir::Rule,
    pub lib: &'a Library,
    pub consts: &'a mut Consts,
    pub fields: &'a FieldSlots,
    pub patterns: &'a mut Patterns,
    pub f: FnBuilder,
    bindings: HashMap<u32, u32>,
    /// The slot address (within an event's slots) of each lineage test of the rule.
    pub lineage_slots: HashMap<ExprId, u32>,
    /// The slot address (within an event's slots) where the host writes the value of
    /// `field` captured at sequence step `step`, read by `StepField` expressions.
    pub capture_slots: HashMap<(usize, String), u32>,
    /// The rule's calls of hand-written predicates: `Func::Declared` index → index in
    /// the bundle's `CUSTOM` section.
    pub custom: HashMap<u32, u32>,
}

impl<'a> ExprGen<'a> {
    pub fn new(rule: &'a tir::Rule, lib: &'a Library, consts: &'a mut Consts, fields: &'a FieldSlots, patterns: &'a mut Patterns, params: u32) -> ExprGen<'a> {
        ExprGen {
            rule,
            lib,
            consts,
            fields,
            patterns,
            f: FnBuilder::new(params),
            bindings: HashMap::new(),
            lineage_slots: HashMap::new(),
            capture_slots: HashMap::new(),
            custom: HashMap::new(),
        }
    }

    fn emit(&mut self, instruction: Instruction<'static>) {
        self.f.emit(instruction);
    }

    fn call(&mut self, name: &str) {
        let index = self.lib.func(name);
        self.emit(Instruction::Call(index));
    }

    fn i32(&mut self, value: i32) {
        self.emit(Instruction::I32Const(value));
    }

    fn addr(&mut self, value: u32) {
        self.emit(Instruction::I32Const(value as i32));
    }

    /// The address of a slot of the current event: its offset within the event's slots
    /// plus the event's base in the batch.
    fn event_slot(&mut self, offset: u32) {
        self.emit(Instruction::GlobalGet(GLOBAL_EVENT_BASE));
        if offset != 0 {
            self.addr(offset);
            self.emit(Instruction::I32Add);
        }
    }

    /// Selects event `param` (the export's first parameter) of the batch.
    pub fn select_event(&mut self, slots_offset: u32, slot_stride: u32) {
        self.addr(slots_offset);
        self.emit(Instruction::LocalGet(0));
        self.addr(slot_stride);
        self.emit(Instruction::I32Mul);
        self.emit(Instruction::I32Add);
        self.emit(Instruction::GlobalSet(GLOBAL_EVENT_BASE));
    }

    /// Empties the heap: every export starts with this.
    pub fn reset_heap(&mut self) {
        self.emit(Instruction::GlobalGet(GLOBAL_HEAP_START));
        self.emit(Instruction::GlobalSet(GLOBAL_HEAP_TOP));
    }

    /// Combines `count` three-valued results with `or` (`absorbing` = 1) or `and`
    /// (`absorbing` = 0), stopping at the first absorbing one. `item` emits item *i*.
    fn combine(&mut self, count: usize, absorbing: i32, mut item: impl FnMut(&mut Self, usize)) {
        let result = self.f.local(ValType::I32);
        let each = self.f.local(ValType::I32);
        self.i32(1 - absorbing);
        self.emit(Instruction::LocalSet(result));
        self.emit(Instruction::Block(BlockType::Result(ValType::I32)));
        for idx in 0..count {
            item(self, idx);
            self.emit(Instruction::LocalTee(each));
            self.i32(absorbing);
            self.emit(Instruction::I32Eq);
            self.emit(Instruction::If(BlockType::Empty));
            self.i32(absorbing);
            self.emit(Instruction::Br(1));
            self.emit(Instruction::End);
            self.emit(Instruction::LocalGet(each));
            self.i32(2);
            self.emit(Instruction::I32Eq);
            self.emit(Instruction::If(BlockType::Empty));
            self.i32(2);
            self.emit(Instruction::LocalSet(result));
            self.emit(Instruction::End);
        }
        self.emit(Instruction::LocalGet(result));
        self.emit(Instruction::End);
    }

    /// Code leaving the three-valued truth of a condition.
    /// The conjunction of conditions (true when there is none).
    pub fn cond_all(&mut self, ids: &[ExprId]) {
        match ids {
            [] => self.i32(1),
            [id] => self.cond(*id),
            _ => self.combine(ids.len(), 0, |generator, idx| generator.cond(ids[idx])),
        }
    }

    /// Code leaving the address of field `name`'s slot of the current event.
    pub fn field_value(&mut self, name: &str) {
        let slot = self.fields.slot(name);
        self.event_slot(slot);
    }

    pub fn cond(&mut self, id: ExprId) {
        let node = self.rule.expr(id);
        match node.kind.clone() {
            ExprKind::Literal(Value::Bool(value)) => self.i32(i32::from(value)),
            ExprKind::Literal(_) => self.i32(2),
            ExprKind::Not(inner) => {
                self.cond(inner);
                self.call("not3");
            }
            ExprKind::And(items) => self.combine(items.len(), 0, |generator, idx| generator.cond(items[idx])),
            ExprKind::Or(items) => self.combine(items.len(), 1, |generator, idx| generator.cond(items[idx])),
            ExprKind::Truthy(inner) => {
                self.value(inner);
                self.call("truthy");
            }
            ExprKind::IsNull { expr, negated } => {
                self.value(expr);
                self.call("is_null");
                if negated {
                    self.emit(Instruction::I32Eqz);
                }
            }
            ExprKind::Compare { op, lhs, rhs, case } => self.compare(op, lhs, rhs, case),
            ExprKind::InSet { expr, values, case, negated } => {
                self.in_set(expr, &values, case);
                if negated {
                    self.call("not3");
                }
            }
            ExprKind::Wildcard { expr, patterns, case } => self.wildcard(expr, &patterns, case),
            ExprKind::Regex { expr, patterns, case, anchor } => self.regex(expr, &patterns, case, anchor),
            ExprKind::Call { func, args, case, semantics } => self.call_cond(id, func, &args, case, semantics),
            ExprKind::ArrayFn { func, array, binding, body } => self.array_fn(func, array, binding, body),
            // Everything else is a value, read as `and` and `or` read their operands.
            _ => {
                self.value(id);
                self.call("logic");
            }
        }
    }

    /// Code leaving the address of a slot holding the expression's value.
    pub fn value(&mut self, id: ExprId) {
        let node = self.rule.expr(id);
        match node.kind.clone() {
            ExprKind::Literal(value) => {
                let address = self.literal(&value);
                self.addr(address);
            }
            ExprKind::Field(path) => {
                let slot = self.fields.slot(&path.name);
                self.event_slot(slot);
                self.path_steps(&path.rest);
            }
            ExprKind::Var { binding, path } => {
                let local = *self.bindings.get(&binding).expect("variables are bound by their array function");
                self.emit(Instruction::LocalGet(local));
                self.path_steps(&path);
            }
            ExprKind::Arith { op, lhs, rhs } => {
                self.value(lhs);
                self.value(rhs);
                self.i32(arith_code(op));
                self.call("arith");
            }
            ExprKind::Neg(inner) => {
                self.value(inner);
                self.call("neg");
            }
            ExprKind::ToNumber(inner) => self.host_call(call::TO_NUMBER, &[inner], 0),
            ExprKind::Call { func: Func::Length, args, .. } => {
                self.value(args[0]);
                self.call("length");
            }
            ExprKind::Call { func: Func::Safe, args, .. } => self.value(args[0]),
            ExprKind::Call { func: Func::Declared(index), args, .. } if self.custom.contains_key(&index) => {
                self.predicate_call(self.custom[&index], &args);
                self.call("bool_slot");
            }
            ExprKind::Call { func, args, case, semantics } if host_function(func).is_some() => {
                let flags = call_flags(case, semantics);
                self.host_call(host_function(func).unwrap_or(0), &args, flags);
            }
            ExprKind::ArrayFn { func: Func::ArrayCount, array, binding, body } => self.array_count(array, binding, body),
            // The host writes the test's answer (a boolean) to its slot before `eval`.
            ExprKind::Lineage { .. } if self.lineage_slots.contains_key(&id) => {
                let address = self.lineage_slots[&id];
                self.event_slot(address);
            }
            // The host writes the value captured at the earlier step to its slot.
            ExprKind::StepField { step, path } if self.capture_slots.contains_key(&(step, path.name.clone())) => {
                let address = self.capture_slots[&(step, path.name.clone())];
                self.event_slot(address);
                self.path_steps(&path.rest);
            }
            ExprKind::StepField { .. } | ExprKind::Lineage { .. } | ExprKind::Error => {
                // The planner rejects these before code generation.
                self.emit(Instruction::Unreachable);
            }
            // Conditions used as values.
            _ => {
                self.cond(id);
                self.call("bool_slot");
            }
        }
    }

    /// The value with every string lower-cased, for case-insensitive comparisons:
    /// folded slots of fields, folded literals, or a host call for computed values.
    fn folded_value(&mut self, id: ExprId) {
        let node = self.rule.expr(id);
        match &node.kind {
            ExprKind::Field(path) if path.rest.is_empty() => {
                let slot = self.fields.folded_slot(&path.name).expect("the planner gives case-insensitive fields a folded slot");
                self.event_slot(slot);
            }
            ExprKind::Literal(Value::Str(text)) => {
                let address = self.consts.str_slot(&text.to_lowercase());
                self.addr(address);
            }
            ExprKind::Literal(_) => self.value(id),
            _ => self.host_call(call::FOLD, &[id], 0),
        }
    }

    /// A pipe key: its value, lower-cased when keys fold case.
    pub fn key_value(&mut self, id: ExprId, case: Case) {
        self.value_for(id, case);
    }

    fn value_for(&mut self, id: ExprId, case: Case) {
        match case {
            Case::Sensitive => self.value(id),
            Case::Insensitive => self.folded_value(id),
        }
    }

    fn literal(&mut self, value: &Value) -> u32 {
        match value {
            Value::Null => 0,
            Value::Bool(value) => self.consts.bool_slot(*value),
            Value::Long(value) => self.consts.long_slot(*value),
            Value::Double(value) => self.consts.double_slot(*value),
            Value::Str(text) => self.consts.str_slot(text),
            Value::Ip(address) => self.consts.ip_slot(*address),
        }
    }

    fn path_steps(&mut self, steps: &[PathStep]) {
        for step in steps {
            match step {
                PathStep::Index(index) => {
                    self.i32(i32::try_from(*index).unwrap_or(i32::MAX));
                    self.call("index");
                }
                PathStep::Field(name) => {
                    let (address, len) = self.consts.string(name);
                    self.addr(address);
                    self.addr(len);
                    self.call("field");
                }
            }
        }
    }

    /// Arguments evaluated first (so nested host calls cannot clobber them), then copied.
    fn host_call(&mut self, function: i32, args: &[ExprId], flags: i32) {
        self.host_call_with(function, args, &[], flags);
    }

    /// A host call whose arguments are `args`, then the constant slots at `constants`.
    fn host_call_with(&mut self, function: i32, args: &[ExprId], constants: &[u32], flags: i32) {
        self.set_args(args);
        for (idx, address) in constants.iter().enumerate() {
            self.i32((args.len() + idx) as i32);
            self.addr(*address);
            self.call("set_arg");
        }
        self.i32(function);
        self.i32((args.len() + constants.len()) as i32);
        self.i32(flags);
        self.call("call_host");
    }

    /// Hand-written predicate `predicate` on the event with `args`: a truth value
    /// (`kestrel.predicate`, docs/abi.md).
    fn predicate_call(&mut self, predicate: u32, args: &[ExprId]) {
        self.set_args(args);
        self.i32(predicate as i32);
        self.i32(args.len() as i32);
        self.call("call_predicate");
    }

    /// Evaluates `args`, all of them first (so nested host calls cannot clobber the
    /// argument slots), then copies them into the argument slots 0, 1, ...
    fn set_args(&mut self, args: &[ExprId]) {
        let locals: Vec<u32> = args
            .iter()
            .map(|arg| {
                self.value(*arg);
                let local = self.f.local(ValType::I32);
                self.emit(Instruction::LocalSet(local));
                local
            })
            .collect();
        for (idx, local) in locals.iter().enumerate() {
            self.i32(idx as i32);
            self.emit(Instruction::LocalGet(*local));
            self.call("set_arg");
        }
    }

    fn compare(&mut self, op: CompareOp, lhs: ExprId, rhs: ExprId, case: Case) {
        // An operand typed `version`: the order is the host's (docs/semantics.md,
        // "Versions"). A version equals only the same string, so `==` and `!=` stay on
        // the string paths below.
        if !matches!(op, CompareOp::Eq | CompareOp::NotEq) && crate::interp::versioned(self.rule, lhs, rhs) {
            let op_slot = self.consts.long_slot(i64::from(op.abi_code()));
            self.host_call_with(call::COMPARE_VERSIONS, &[lhs, rhs], &[op_slot], call_flags(case, FunctionSemantics::Elasticsearch));
            self.call("logic");
            return;
        }
        // A string literal on one side of `==` / `!=`: the fast string path.
        let literal_side = |id: ExprId| self.rule.str_literal(id).map(str::to_string);
        if matches!(op, CompareOp::Eq | CompareOp::NotEq) {
            let (subject, text) = match (literal_side(lhs), literal_side(rhs)) {
                (_, Some(text)) => (Some(lhs), text),
                (Some(text), None) => (Some(rhs), text),
                (None, None) => (None, String::new()),
            };
            if let Some(subject) = subject {
                let text = if case == Case::Insensitive { text.to_lowercase() } else { text };
                self.value_for(subject, case);
                self.slot_str_op(&text, 0);
                if op == CompareOp::NotEq {
                    self.call("not3");
                }
                return;
            }
        }
        self.value_for(lhs, case);
        self.value_for(rhs, case);
        self.i32(op.abi_code());
        self.call("cmp");
    }

    /// `$slot_str_op` of the slot whose address is on the stack with the literal `text`
    /// and operation `op` (docs/abi.md). Equality (0, 4), prefix (1) and suffix (2) with a
    /// literal of at most [`INLINE_STRING_BYTES`] bytes are compiled inline for a string
    /// slot, the usual case (a length test, then the literal's bytes compared eight at a
    /// time as constants, no call); any other value goes to the library function, which
    /// gives the same answer for a string. (Lists of patterns call it for each pattern:
    /// see `wildcard`.)
    fn slot_str_op(&mut self, text: &str, op: i32) {
        if !matches!(op, 0 | 1 | 2 | 4) || text.len() > INLINE_STRING_BYTES {
            self.slot_str_op_call(text, op);
            return;
        }
        let (_, len) = self.consts.string(text);
        let slot = self.f.local(ValType::I32);
        let start = self.f.local(ValType::I32);
        self.emit(Instruction::LocalSet(slot));
        self.emit(Instruction::Block(BlockType::Result(ValType::I32)));
        self.emit(Instruction::LocalGet(slot));
        self.emit(Instruction::I32Load8U(mem(0, 0)));
        self.i32(4);
        self.emit(Instruction::I32Eq);
        self.emit(Instruction::If(BlockType::Empty));
        // A string: false unless its length allows the literal...
        self.i32(0);
        self.emit(Instruction::LocalGet(slot));
        self.emit(Instruction::I32Load(mem(4, 2)));
        self.addr(len);
        self.emit(if op == 1 || op == 2 { Instruction::I32LtU } else { Instruction::I32Ne });
        self.emit(Instruction::BrIf(1));
        self.emit(Instruction::Drop);
        // ...then its bytes where the literal would be (a suffix: at its end).
        self.emit(Instruction::LocalGet(slot));
        self.emit(Instruction::I32Load(mem(8, 2)));
        if op == 2 {
            self.emit(Instruction::LocalGet(slot));
            self.emit(Instruction::I32Load(mem(4, 2)));
            self.addr(len);
            self.emit(Instruction::I32Sub);
            self.emit(Instruction::I32Add);
        }
        self.emit(Instruction::LocalSet(start));
        self.bytes_equal(start, text.as_bytes());
        self.emit(Instruction::Br(1));
        self.emit(Instruction::End);
        self.emit(Instruction::LocalGet(slot));
        self.slot_str_op_call(text, op);
        self.emit(Instruction::End);
    }

    /// `$slot_str_op` of the slot whose address is on the stack, as a library call.
    fn slot_str_op_call(&mut self, text: &str, op: i32) {
        let (address, len) = self.consts.string(text);
        self.addr(address);
        self.addr(len);
        self.i32(op);
        self.call("slot_str_op");
    }

    /// Leaves 1 when the bytes at the address in local `start` are `bytes`, else 0:
    /// little-endian loads of 8, 4, 2 and 1 bytes compared with constants.
    fn bytes_equal(&mut self, start: u32, bytes: &[u8]) {
        self.i32(1);
        let mut at = 0;
        while at < bytes.len() {
            let width = [8, 4, 2, 1].into_iter().find(|width| bytes.len() - at >= *width).expect("one byte is left");
            let mut word = [0u8; 8];
            word[..width].copy_from_slice(&bytes[at..at + width]);
            self.emit(Instruction::LocalGet(start));
            let offset = at as u64;
            match width {
                8 => {
                    self.emit(Instruction::I64Load(mem(offset, 0)));
                    self.emit(Instruction::I64Const(i64::from_le_bytes(word)));
                    self.emit(Instruction::I64Eq);
                }
                _ => {
                    self.emit(match width {
                        4 => Instruction::I32Load(mem(offset, 0)),
                        2 => Instruction::I32Load16U(mem(offset, 0)),
                        _ => Instruction::I32Load8U(mem(offset, 0)),
                    });
                    self.i32(u32::from_le_bytes(word[..4].try_into().expect("four bytes")) as i32);
                    self.emit(Instruction::I32Eq);
                }
            }
            self.emit(Instruction::I32And);
            at += width;
        }
    }

    fn in_set(&mut self, expr: ExprId, values: &[Value], case: Case) {
        let strings: Option<Vec<String>> = values
            .iter()
            .map(|value| match value {
                Value::Str(text) if case == Case::Insensitive => Some(text.to_lowercase()),
                Value::Str(text) => Some(text.clone()),
                _ => None,
            })
            .collect();
        match strings {
            Some(strings) => {
                let (table, count) = self.consts.string_table(&strings);
                self.value_for(expr, case);
                self.addr(table);
                self.addr(count);
                self.call("slot_in_table");
            }
            None => {
                let slots: Vec<u32> = values
                    .iter()
                    .map(|value| match value {
                        Value::Str(text) if case == Case::Insensitive => self.consts.str_slot(&text.to_lowercase()),
                        other => self.literal(other),
                    })
                    .collect();
                let (table, count) = self.consts.slot_table(&slots);
                self.value_for(expr, case);
                self.addr(table);
                self.addr(count);
                self.call("slot_in_slots");
            }
        }
    }

    fn wildcard(&mut self, expr: ExprId, patterns: &[Pattern], case: Case) {
        let subject = self.f.local(ValType::I32);
        self.value_for(expr, case);
        self.emit(Instruction::LocalSet(subject));
        let fold = |text: &str| if case == Case::Insensitive { text.to_lowercase() } else { text.to_string() };
        self.combine(patterns.len(), 1, |generator, idx| {
            generator.emit(Instruction::LocalGet(subject));
            let (op, text) = match &patterns[idx] {
                // Text equality: an address matches by its text here, not as `==`.
                Pattern::Exact(text) => (4, text),
                Pattern::Prefix(text) => (1, text),
                Pattern::Suffix(text) => (2, text),
                Pattern::Contains(text) => (3, text),
                Pattern::General(pieces) => {
                    let pieces: Vec<tir::WildPiece> = pieces
                        .iter()
                        .map(|piece| match piece {
                            tir::WildPiece::Literal(text) => tir::WildPiece::Literal(fold(text)),
                            other => other.clone(),
                        })
                        .collect();
                    let (address, count) = generator.consts.pieces(&pieces);
                    generator.addr(address);
                    generator.addr(count);
                    generator.call("slot_wild");
                    return;
                }
            };
            // One pattern is compiled inline; a list keeps one call per pattern, or the
            // code would grow by a copy of the test per pattern (every Linux corpus rule:
            // 1.64 MB of bundle inline nowhere, 1.97 MB this way, 2.66 MB inline
            // everywhere, and its compilation at load time grows with it).
            if patterns.len() == 1 {
                generator.slot_str_op(&fold(text), op);
            } else {
                generator.slot_str_op_call(&fold(text), op);
            }
        });
    }

    fn regex(&mut self, expr: ExprId, patterns: &[String], case: Case, anchor: Anchor) {
        let subject = self.f.local(ValType::I32);
        self.value(expr);
        self.emit(Instruction::LocalSet(subject));
        let ids: Vec<u32> = patterns.iter().map(|pattern| self.patterns.regex(pattern, case, anchor)).collect();
        self.combine(ids.len(), 1, |generator, idx| {
            generator.emit(Instruction::LocalGet(subject));
            generator.addr(ids[idx]);
            generator.call("slot_regex");
        });
    }

    fn call_cond(&mut self, id: ExprId, func: Func, args: &[ExprId], case: Case, semantics: FunctionSemantics) {
        if let Func::Declared(index) = func
            && let Some(predicate) = self.custom.get(&index).copied()
        {
            self.predicate_call(predicate, args);
            return;
        }
        let op = match func {
            Func::StartsWith => Some(1),
            Func::EndsWith => Some(2),
            // Elasticsearch: an empty string contains nothing and is in nothing.
            Func::StringContains if semantics == FunctionSemantics::Elasticsearch => Some(5),
            Func::StringContains => Some(3),
            _ => None,
        };
        if let Some(op) = op {
            let literal = self.rule.str_literal(args[1]).map(|text| if case == Case::Insensitive { text.to_lowercase() } else { text.to_string() });
            self.value_for(args[0], case);
            match literal {
                Some(text) => self.slot_str_op(&text, op),
                None => {
                    self.value_for(args[1], case);
                    self.i32(op);
                    self.call("slot_str_op2");
                }
            }
            if func == Func::StringContains && semantics == FunctionSemantics::Python {
                // python eql: a non-string operand gives false, not null.
                let result = self.f.local(ValType::I32);
                self.emit(Instruction::LocalTee(result));
                self.i32(2);
                self.emit(Instruction::I32Eq);
                self.emit(Instruction::If(BlockType::Result(ValType::I32)));
                self.i32(0);
                self.emit(Instruction::Else);
                self.emit(Instruction::LocalGet(result));
                self.emit(Instruction::End);
            }
            return;
        }
        if func == Func::CidrMatch {
            let blocks = self.cidr_blocks(&args[1..]);
            if blocks.len() + 1 < args.len() && semantics == FunctionSemantics::Elasticsearch {
                // Elasticsearch fails on a block that is not a string (a `null`): null.
                self.i32(2);
                return;
            }
            let set = self.patterns.cidr_set(&blocks);
            self.value(args[0]);
            self.addr(set);
            self.i32(i32::from(semantics == FunctionSemantics::Python));
            self.call("slot_cidr");
            return;
        }
        // Any other call (`arrayContains`, `safe`, a declared function, ...) is a value,
        // read as `and` and `or` read their operands.
        if host_function(func).is_some() || matches!(func, Func::Length | Func::Safe) {
            self.value(id);
            self.call("logic");
        } else {
            // The checker lowers every other function to another node.
            self.emit(Instruction::Unreachable);
            self.i32(2);
        }
    }

    fn cidr_blocks(&self, args: &[ExprId]) -> Vec<String> {
        args.iter().filter_map(|arg| self.rule.str_literal(*arg).map(str::to_string)).collect()
    }

    /// `arraySearch` / `_arraysearch`: true if the body is true for an element, false
    /// otherwise (also for an empty array, and for a value that is not an array).
    fn array_fn(&mut self, func: Func, array: ExprId, binding: u32, body: ExprId) {
        if func == Func::ArrayCount {
            self.array_count(array, binding, body);
            self.call("truthy");
            return;
        }
        let (_, remaining, element) = self.array_loop_start(array, binding);
        let result = self.f.local(ValType::I32);
        self.emit(Instruction::If(BlockType::Result(ValType::I32)));
        self.i32(0);
        self.emit(Instruction::Else);
        self.i32(0);
        self.emit(Instruction::LocalSet(result));
        self.emit(Instruction::Block(BlockType::Result(ValType::I32)));
        self.emit(Instruction::Loop(BlockType::Empty));
        self.exit_when_done(remaining, result);
        self.emit(Instruction::LocalGet(element));
        self.emit(Instruction::LocalSet(self.bindings[&binding]));
        self.cond(body);
        self.i32(1);
        self.emit(Instruction::I32Eq);
        self.emit(Instruction::If(BlockType::Empty));
        self.i32(1);
        self.emit(Instruction::Br(2));
        self.emit(Instruction::End);
        self.array_loop_next(remaining, element);
        self.emit(Instruction::End); // loop
        self.emit(Instruction::Unreachable);
        self.emit(Instruction::End); // block
        self.emit(Instruction::End); // if
    }

    /// `arrayCount`: the number of elements for which the body is true, as a long slot
    /// (0 for a value that is not an array).
    fn array_count(&mut self, array: ExprId, binding: u32, body: ExprId) {
        let (_, remaining, element) = self.array_loop_start(array, binding);
        let count = self.f.local(ValType::I32);
        self.emit(Instruction::If(BlockType::Result(ValType::I32)));
        // Not an array: no element matches.
        self.emit(Instruction::I64Const(0));
        self.call("long_slot");
        self.emit(Instruction::Else);
        self.i32(0);
        self.emit(Instruction::LocalSet(count));
        self.emit(Instruction::Block(BlockType::Result(ValType::I32)));
        self.emit(Instruction::Loop(BlockType::Empty));
        // Done: the count as a long slot.
        self.emit(Instruction::LocalGet(remaining));
        self.emit(Instruction::I32Eqz);
        self.emit(Instruction::If(BlockType::Empty));
        self.emit(Instruction::LocalGet(count));
        self.emit(Instruction::I64ExtendI32U);
        self.call("long_slot");
        self.emit(Instruction::Br(2));
        self.emit(Instruction::End);
        self.emit(Instruction::LocalGet(element));
        self.emit(Instruction::LocalSet(self.bindings[&binding]));
        self.cond(body);
        self.i32(1);
        self.emit(Instruction::I32Eq);
        self.emit(Instruction::LocalGet(count));
        self.emit(Instruction::I32Add);
        self.emit(Instruction::LocalSet(count));
        self.array_loop_next(remaining, element);
        self.emit(Instruction::End); // loop
        self.emit(Instruction::Unreachable);
        self.emit(Instruction::End); // block
        self.emit(Instruction::End); // if
    }

    /// Evaluates the array, binds the loop variable's local, and leaves "is not an
    /// array" on the stack for the caller's `if`. Returns (array, remaining, element) locals.
    fn array_loop_start(&mut self, array: ExprId, binding: u32) -> (u32, u32, u32) {
        let list = self.f.local(ValType::I32);
        let remaining = self.f.local(ValType::I32);
        let element = self.f.local(ValType::I32);
        let variable = self.f.local(ValType::I32);
        self.bindings.insert(binding, variable);
        self.value(array);
        self.emit(Instruction::LocalTee(list));
        self.emit(Instruction::I32Load(mem(4, 2)));
        self.emit(Instruction::LocalSet(remaining));
        self.emit(Instruction::LocalGet(list));
        self.emit(Instruction::I32Load(mem(8, 2)));
        self.emit(Instruction::LocalSet(element));
        self.emit(Instruction::LocalGet(list));
        self.emit(Instruction::I32Load8U(mem(0, 0)));
        self.i32(i32::from(kestrel_bundle::abi::tag::ARRAY));
        self.emit(Instruction::I32Ne);
        (list, remaining, element)
    }

    /// Inside the loop: leave `result` to the enclosing block when no element is left.
    fn exit_when_done(&mut self, remaining: u32, result: u32) {
        self.emit(Instruction::LocalGet(remaining));
        self.emit(Instruction::I32Eqz);
        self.emit(Instruction::If(BlockType::Empty));
        self.emit(Instruction::LocalGet(result));
        self.emit(Instruction::Br(2));
        self.emit(Instruction::End);
    }

    fn array_loop_next(&mut self, remaining: u32, element: u32) {
        self.emit(Instruction::LocalGet(element));
        self.i32(16);
        self.emit(Instruction::I32Add);
        self.emit(Instruction::LocalSet(element));
        self.emit(Instruction::LocalGet(remaining));
        self.i32(1);
        self.emit(Instruction::I32Sub);
        self.emit(Instruction::LocalSet(remaining));
        self.emit(Instruction::Br(0));
    }
}

fn arith_code(op: ArithOp) -> i32 {
    match op {
        ArithOp::Add => 0,
        ArithOp::Sub => 1,
        ArithOp::Mul => 2,
        ArithOp::DivTrunc => 3,
        ArithOp::DivFloor => 4,
        ArithOp::ModTrunc => 5,
        ArithOp::ModFloor => 6,
    }
}

/// The `kestrel.call` function that computes `func`, when the host computes it.
fn host_function(func: Func) -> Option<i32> {
    Some(match func {
        Func::Between => call::BETWEEN,
        Func::Concat => call::CONCAT,
        Func::IndexOf => call::INDEX_OF,
        Func::Number => call::NUMBER,
        Func::String => call::STRING,
        Func::Substring => call::SUBSTRING,
        Func::ArrayContains => call::ARRAY_CONTAINS,
        Func::Declared(index) => call::DECLARED + index as i32,
        _ => return None,
    })
}

fn call_flags(case: Case, semantics: FunctionSemantics) -> i32 {
    let mut flags = 0;
    if case == Case::Insensitive {
        flags |= flag::CASE_INSENSITIVE;
    }
    if semantics == FunctionSemantics::Python {
        flags |= flag::PYTHON;
    }
    flags
}
