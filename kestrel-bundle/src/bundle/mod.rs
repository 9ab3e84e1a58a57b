//! The bundle format, version 1: the one file `eqlc build` writes and `kestrel` loads.
//!
//! The format is specified in `docs/bundle-format.md` (and the guest memory layout it
//! records in `docs/abi.md`). This module holds the in-memory form ([`Bundle`] and its
//! parts), the writer ([`Bundle::to_bytes`]), the validating reader
//! ([`Bundle::from_bytes`]), the semantic checks both share ([`Bundle::validate`]) and a
//! human-readable dump ([`Bundle::inspect`]).
//!
//! Every file has exactly one encoding: the writer is deterministic, and the reader
//! accepts only what the writer would produce for the value it returns (sections packed
//! in kind order, zero padding, canonical sentinels and flags).

mod inspect;
mod read;
mod validate;
mod write;

use crate::abi::{MAX_CALL_ARGS, RESERVED_BYTES, SLOT_SIZE};
pub use crate::enforce::{Action, KillTarget, RuleAction, Whom};
pub use crate::schema::LineageValue;
use crate::schema::{FieldType, TimestampUnit};
use std::fmt;
use std::net::IpAddr;

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"KSTRLBND";
/// The bundle format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 2;
/// The predicate ABI version (docs/abi.md) this crate reads and writes.
pub const ABI_VERSION: u32 = 1;
/// The byte-order mark at offset 16, written little-endian as `0D 0C 0B 0A`.
pub const BYTE_ORDER_MARK: u32 = 0x0A0B_0C0D;
/// The size of a Wasm page, in bytes.
pub const PAGE_SIZE: u64 = 65_536;
/// The most pages a 32-bit Wasm memory can have (4 GiB).
pub const MAX_MEMORY_PAGES: u32 = 65_536;
/// The encoded "none" of an optional index (`folded_slot`, a predicate's category).
pub const NO_INDEX: u32 = u32::MAX;
/// The Wasm binary header a module must start with: `\0asm`, version 1.
pub const WASM_HEADER: [u8; 8] = *b"\0asm\x01\x00\x00\x00";

/// Size of the fixed header, in bytes.
pub(crate) const HEADER_LEN: usize = 32;
/// Size of one section table entry, in bytes.
pub(crate) const TABLE_ENTRY_LEN: usize = 24;
/// Size of the trailing checksum, in bytes.
pub(crate) const CHECKSUM_LEN: usize = 8;

/// A compiled rule set: everything the runtime needs to run the rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// Compiler, schema, special fields and guest memory layout.
    pub manifest: Manifest,
    /// The fields the rules read, sorted by name, with their slots.
    pub fields: Vec<Field>,
    /// The rules, in bundle order (a rule's id is its index here).
    pub rules: Vec<Rule>,
    /// What the Wasm module exports and what each export is for.
    pub functions: Functions,
    /// The regex and CIDR tables the host functions look up.
    pub patterns: Patterns,
    /// The predicate module (docs/abi.md).
    pub wasm: Vec<u8>,
    /// The `SEQUENCES` section: present exactly when a rule is a sequence; table *i* is
    /// the one `Query::Sequence { table: i }` names.
    pub sequences: Option<Vec<SequenceTable>>,
    /// The `LINEAGE` section, when a rule uses `descendant of`, `child of` or `event of`.
    pub lineage: Option<LineageTable>,
    /// The `CUSTOM` section, when a rule calls a hand-written predicate: predicate *i*
    /// is the one `kestrel.predicate(i, ...)` runs (docs/abi.md, "Hand-written predicates").
    pub custom: Option<Vec<CustomPredicate>>,
    /// The `ACTIONS` section (written only when not empty): what a rule does when it
    /// matches besides alerting, sorted by rule, at most one per rule; rules without an
    /// entry only alert (docs/enforcement.md).
    pub actions: Vec<RuleAction>,
    /// The `PREFILTER` section, when eqlc proved that no rule can match an event whose
    /// text holds none of some literals (docs/bundle-format.md).
    pub prefilter: Option<Prefilter>,
    /// The `NEEDS` section, when eqlc found, for some event conditions, literals their
    /// event's string fields must hold (docs/bundle-format.md).
    pub needs: Option<Needs>,
}

/// Most atoms a [`Needs`] holds.
pub const MAX_NEED_ATOMS: usize = 65_536;
/// Longest literal of a [`NeedAtom`], in bytes.
pub const MAX_NEED_LITERAL_LEN: usize = 256;
/// Most clauses of one predicate's needs.
pub const MAX_NEED_CLAUSES: usize = 16;
/// Most atoms of one clause.
pub const MAX_CLAUSE_ATOMS: usize = 256;

/// For some event conditions (predicate role 0), what their event's string fields must
/// hold for them to be true, so that the host can tell the guest to skip them.
///
/// Precisely: an atom *holds* on an event when the event's value of the atom's field
/// is a string, or an array with a string element, whose ASCII lower-case form contains
/// the atom's literal, or when that value is anything else but null or missing (a
/// number, an object, a string or element that is not ASCII, which a Unicode
/// lower-casing may bring to ASCII). When predicate *p* is listed, then on every event
/// where *p* is true each of its clauses has an atom that holds. The host may set *p*'s
/// skip bit for an event where some clause has none (docs/abi.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needs {
    /// Strictly ascending by (field, literal); at most [`MAX_NEED_ATOMS`].
    pub atoms: Vec<NeedAtom>,
    /// Strictly ascending by predicate, each a role-0 predicate; not empty.
    pub predicates: Vec<PredicateNeeds>,
}

/// A literal one of a string field's values must hold.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NeedAtom {
    /// Index into the bundle's fields.
    pub field: u32,
    /// Non-empty ASCII without upper-case letters, at most [`MAX_NEED_LITERAL_LEN`] bytes.
    pub literal: String,
}

/// The clauses of one predicate: every one must have an atom that holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PredicateNeeds {
    /// The predicate's id (role 0).
    pub predicate: u32,
    /// One to [`MAX_NEED_CLAUSES`] clauses, each one to [`MAX_CLAUSE_ATOMS`] atom
    /// indices, strictly ascending.
    pub clauses: Vec<Vec<u32>>,
}

/// Most literals a [`Prefilter`] holds.
pub const MAX_PREFILTER_LITERALS: usize = 256;
/// Longest literal of a [`Prefilter`], in bytes.
pub const MAX_PREFILTER_LITERAL_LEN: usize = 256;

/// Texts one of which every event some predicate matches has in its JSON text.
///
/// Precisely: when a line of NDJSON input is ASCII, holds no backslash, and holds none
/// of `literals` (ASCII case-insensitively), no event condition of the bundle is true
/// on its event, and the lineage tracker and hand-written predicates (whose bundles
/// have no prefilter) do not look at it either. The runtime may then read only the
/// line's timestamp. (In such a line a string value is its bytes between the quotes,
/// and a Unicode lower-case comparison is an ASCII one.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefilter {
    /// Non-empty ASCII texts without upper-case letters, strictly ascending; at most
    /// [`MAX_PREFILTER_LITERALS`], each at most [`MAX_PREFILTER_LITERAL_LEN`] bytes.
    pub literals: Vec<String>,
}

/// Most captures one hand-written predicate may declare.
pub const MAX_CAPTURES: usize = 16;

/// A hand-written predicate the rules call by name: its code, the event fields it
/// reads, its arguments and captures, and the limits it runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomPredicate {
    /// The name rules call it by.
    pub name: String,
    /// The runtime that runs `code`.
    pub runtime: CustomRuntime,
    /// Lua source text (UTF-8), or a Wasm binary module.
    pub code: Vec<u8>,
    /// Its event view: indexes into [`Bundle::fields`]; field id *i* of the view is
    /// `fields[i]`.
    pub fields: Vec<u32>,
    /// The types of the call's arguments (`Dynamic`: any value).
    pub params: Vec<FieldKind>,
    /// The values `pred_capture` may return, by name, with their types.
    pub captures: Vec<CaptureDecl>,
    /// What one call may use.
    pub limits: CustomLimits,
    /// The rules that call it (indexes into [`Bundle::rules`], ascending): their alerts
    /// carry its captures.
    pub rules: Vec<u32>,
}

/// The runtime of a hand-written predicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CustomRuntime {
    /// Code 0: LuaJIT, sandboxed.
    Lua,
    /// Code 1: a Wasm module (written in WAT, compiled by eqlc).
    Wasm,
}

impl CustomRuntime {
    /// `lua` or `wasm`.
    pub fn name(self) -> &'static str {
        match self {
            CustomRuntime::Lua => "lua",
            CustomRuntime::Wasm => "wasm",
        }
    }
}

/// A value a hand-written predicate captures for alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureDecl {
    /// Its key in the alert.
    pub name: String,
    /// Its type (`Dynamic`: any value).
    pub kind: FieldKind,
}

/// Limits of one call of a hand-written predicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CustomLimits {
    /// Lua: VM instructions one call may run (checked every 1,000).
    pub instructions: u64,
    /// Memory the predicate's state may hold, in bytes (Lua heap; Wasm linear memory).
    pub memory_bytes: u64,
    /// Wasm: wall time one call may run, in milliseconds (an epoch deadline).
    pub time_ms: u64,
}

impl Default for CustomLimits {
    fn default() -> CustomLimits {
        CustomLimits { instructions: 1_000_000, memory_bytes: 16 << 20, time_ms: 100 }
    }
}

/// One multi-event rule's steps (`sequence`, `join` or `sample`), as the runtime's
/// executors run them (docs/sequences.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceTable {
    /// The rule (index into [`Bundle::rules`]); its query names this table.
    pub rule: u32,
    /// Which executor runs it.
    pub kind: TableKind,
    /// Where the reference engines differ.
    pub flavor: SequenceFlavor,
    /// String keys fold case.
    pub fold_case: bool,
    /// Inclusive window from the first to the last event, in nanoseconds.
    pub maxspan_ns: Option<u64>,
    /// The steps after `runs=N` unrolling: at least one.
    pub steps: Vec<SequenceStep>,
    /// The `until` step.
    pub until: Option<SequenceStep>,
}

/// One step of a sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceStep {
    /// The role-0 predicate of the rule whose truth is a hit of the step.
    pub predicate: u32,
    /// The join key: one value function of the rule per `by` expression.
    pub keys: Vec<SequenceKey>,
    /// `![...]`: the sequence matches only if no such event occurs here.
    pub missing: bool,
    /// `fork` (endgame): the partial is copied forward, not consumed.
    pub fork: bool,
    /// The step as written (before unrolling), for messages and alerts.
    pub source_step: u32,
    /// The role-3 predicate that must also be true for a hit, with the captured
    /// values of the partial waiting for this step in their slots; `None`: the step
    /// reads no other step.
    pub check: Option<u32>,
    /// Values captured from the event of this step, for later steps' checks and the
    /// rule's pipes.
    pub captures: Vec<Capture>,
}

/// A value captured from a step's event (a field another step or a pipe reads as
/// `event0.x` or `events[1].x`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture {
    /// The value function computing it on the step's event.
    pub value: u32,
    /// The slot (index among an event's slots) the host writes it to before running
    /// a check or a pipe of the rule.
    pub slot: u32,
}

/// One `by` expression of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceKey {
    /// The value function computing it.
    pub value: u32,
    /// A `?optional` field: null is a key value (Elasticsearch).
    pub optional: bool,
    /// When the `by` expression is a field, whole: its slot (index among an event's
    /// slots), which the host may read instead of calling the value function.
    pub slot: Option<u32>,
}

/// The kind of a multi-event rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// Code 0: `sequence`.
    Sequence,
    /// Code 1: `join` (python eql): no maxspan, no missing steps.
    Join,
    /// Code 2: `sample` (Elasticsearch): no maxspan, no until, no missing steps.
    Sample {
        /// Samples per key (Elasticsearch's request parameter): at least 1.
        max_samples_per_key: u32,
    },
}

/// The semantics a sequence follows where the reference engines differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SequenceFlavor {
    /// Code 0.
    Elasticsearch,
    /// Code 1: python eql.
    Endgame,
}

/// The `LINEAGE` section: what the runtime's process tracker reads, and the lineage
/// tests it answers (docs/bundle-format.md, docs/semantics.md "Lineage").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineageTable {
    /// Index into [`Bundle::fields`] of the process id field.
    pub pid_field: u32,
    /// Index into [`Bundle::fields`] of the parent process id field.
    pub ppid_field: u32,
    /// Index into [`Bundle::fields`] of the field telling creation from termination.
    pub subtype_field: u32,
    /// The category id (into [`Functions::categories`]) of process events.
    pub process_category: u32,
    /// Subtype values that create a process.
    pub create_values: Vec<LineageValue>,
    /// Subtype values that end one.
    pub terminate_values: Vec<LineageValue>,
    /// The lineage tests, inner ones before the ones whose subquery uses them.
    pub nodes: Vec<LineageNode>,
}

/// One lineage test: its answer for each event goes to `slot` (a boolean), before the
/// event's predicates run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineageNode {
    /// Which relation the event's process must have.
    pub relation: Relation,
    /// The role-2 predicate (the subquery) that marks processes as sources.
    pub source: u32,
    /// The slot the host writes the answer to; no field uses it.
    pub slot: u32,
}

/// The relation of a lineage test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relation {
    /// `descendant of [q]` (code 0).
    Descendant,
    /// `child of [q]` (code 1).
    Child,
    /// `event of [q]`: the same process (code 2).
    Event,
}

/// The `MANIFEST` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The compiler that wrote the bundle, such as `"eqlc 0.0.0"`.
    pub compiler: String,
    /// The name of the schema the rules were checked against.
    pub schema_name: String,
    /// `Schema::fingerprint()` of that schema.
    pub schema_fingerprint: u64,
    /// The field holding an event's categories, such as `"event.category"`.
    pub category_field: String,
    /// The field holding an event's time, such as `"@timestamp"`.
    pub timestamp_field: String,
    /// How the timestamp field's values are read.
    pub timestamp_unit: TimestampUnit,
    /// Where the ABI regions sit in guest memory.
    pub layout: Layout,
}

/// Where the ABI regions sit in guest memory (docs/abi.md). All offsets are in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Initial and maximum size of guest memory, in 64 KiB pages.
    pub memory_pages: u32,
    /// Start of the slots region (`batch_capacity` × `slot_count` × 16 bytes: the slots
    /// of event *i* of a batch start at `slots_offset + i × slot_count × 16`).
    pub slots_offset: u32,
    /// Number of value slots.
    pub slot_count: u32,
    /// Start of the categories region: per event of a batch, a `u32` count then
    /// `category_capacity` ids (`4 + 4 × category_capacity` bytes each).
    pub categories_offset: u32,
    /// How many category ids the categories region holds.
    pub category_capacity: u32,
    /// Start of the results region (`result_count` bytes per event of a batch),
    /// immediately followed by the disabled region (`result_count` bytes, shared) and
    /// the skip region ([`Layout::skip_stride`] bytes per event of a batch).
    pub results_offset: u32,
    /// Number of predicates (one result byte and one disabled byte each).
    pub result_count: u32,
    /// Start of the out slot (16 bytes).
    pub out_offset: u32,
    /// Start of the argument slots (`MAX_CALL_ARGS` = 16 slots, 256 bytes).
    pub args_offset: u32,
    /// Start of the data region (`data_capacity` bytes).
    pub data_offset: u32,
    /// Size of the data region.
    pub data_capacity: u32,
    /// Start of the heap (`heap_capacity` bytes).
    pub heap_offset: u32,
    /// Size of the heap.
    pub heap_capacity: u32,
    /// Events one `eval` call can take (at least 1).
    pub batch_capacity: u32,
}

/// Bytes of skip bits per event for `result_count` predicates: one bit each.
fn skip_stride(result_count: u32) -> u32 {
    result_count.div_ceil(8)
}

/// The names of the regions of [`Layout::regions`], in order.
pub const REGION_NAMES: [&str; 7] = ["slots", "categories", "results", "out", "args", "data", "heap"];

impl Layout {
    /// Bytes of skip bits per event: one bit per predicate (docs/abi.md).
    pub fn skip_stride(&self) -> u32 {
        skip_stride(self.result_count)
    }

    /// Where the skip bits of event `position` of a batch start.
    pub fn skip_bits_of(&self, position: usize) -> usize {
        self.skip_offset() as usize + position * self.skip_stride() as usize
    }

    /// Start of the disabled bytes: right after the results of a full batch.
    pub fn disabled_offset(&self) -> u32 {
        self.results_offset.saturating_add(self.batch_capacity.saturating_mul(self.result_count))
    }

    /// Start of the skip bits: right after the disabled bytes.
    pub fn skip_offset(&self) -> u32 {
        self.disabled_offset().saturating_add(self.result_count)
    }

    /// The regions as `(name, start, length)`, in the order of [`REGION_NAMES`]. The
    /// `results` region includes the disabled bytes and the skip bits that follow the
    /// results. Lengths that do not fit a `u32` saturate (such a layout
    /// fails validation).
    pub fn regions(&self) -> [(&'static str, u32, u32); 7] {
        self.region_spans().map(|(name, start, len)| (name, start, u32::try_from(len).unwrap_or(u32::MAX)))
    }

    /// [`Layout::regions`] with exact (64-bit) lengths.
    pub(crate) fn region_spans(&self) -> [(&'static str, u32, u64); 7] {
        let lens =
            Self::region_lengths(self.batch_capacity, self.slot_count, self.category_capacity, self.result_count, self.data_capacity, self.heap_capacity);
        let starts = [self.slots_offset, self.categories_offset, self.results_offset, self.out_offset, self.args_offset, self.data_offset, self.heap_offset];
        std::array::from_fn(|i| (REGION_NAMES[i], starts[i], lens[i]))
    }

    fn region_lengths(batch_capacity: u32, slot_count: u32, category_capacity: u32, result_count: u32, data_capacity: u32, heap_capacity: u32) -> [u64; 7] {
        let batch = u64::from(batch_capacity);
        [
            batch * u64::from(slot_count) * u64::from(SLOT_SIZE),
            batch * (4 + 4 * u64::from(category_capacity)),
            (batch + 1) * u64::from(result_count) + batch * u64::from(skip_stride(result_count)),
            u64::from(SLOT_SIZE),
            u64::from(MAX_CALL_ARGS) * u64::from(SLOT_SIZE),
            u64::from(data_capacity),
            u64::from(heap_capacity),
        ]
    }

    /// The size of guest memory, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        u64::from(self.memory_pages) * PAGE_SIZE
    }

    /// A layout that packs the regions in the order of [`REGION_NAMES`] from byte
    /// [`RESERVED_BYTES`] (64; the bytes below stay zero, so address 0 is a null slot),
    /// each at an 8-aligned offset, with `memory_pages` the smallest
    /// page count (at least one) that holds them all.
    ///
    /// Sizes whose regions do not fit in 4 GiB give a layout that fails validation.
    pub fn plan(slot_count: u32, category_capacity: u32, result_count: u32, data_capacity: u32, heap_capacity: u32) -> Layout {
        Self::plan_batched(1, slot_count, category_capacity, result_count, data_capacity, heap_capacity)
    }

    /// [`Layout::plan`] for batches of `batch_capacity` events per `eval` call.
    pub fn plan_batched(batch_capacity: u32, slot_count: u32, category_capacity: u32, result_count: u32, data_capacity: u32, heap_capacity: u32) -> Layout {
        let lens = Self::region_lengths(batch_capacity, slot_count, category_capacity, result_count, data_capacity, heap_capacity);
        let mut starts = [0u64; 7];
        let mut at = u64::from(RESERVED_BYTES);
        let mut end = at;
        for (start, len) in starts.iter_mut().zip(lens) {
            *start = at;
            end = at + len;
            at = align8(end);
        }
        let pages = end.div_ceil(PAGE_SIZE).max(1);
        let clamp = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
        Layout {
            memory_pages: clamp(pages),
            slots_offset: clamp(starts[0]),
            slot_count,
            categories_offset: clamp(starts[1]),
            category_capacity,
            results_offset: clamp(starts[2]),
            result_count,
            out_offset: clamp(starts[3]),
            args_offset: clamp(starts[4]),
            data_offset: clamp(starts[5]),
            data_capacity,
            heap_offset: clamp(starts[6]),
            heap_capacity,
            batch_capacity,
        }
    }
}

/// One field the rules read, and the slot(s) the host writes it to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The dotted field name, such as `"process.args"`.
    pub name: String,
    /// Its type in the schema, or dynamic (any JSON value).
    pub kind: FieldKind,
    /// Whether the field may hold a list of values.
    pub array: bool,
    /// The slot the host writes the value to.
    pub slot: u32,
    /// The slot of the lower-cased copy, when a case-insensitive operator reads the field.
    pub folded_slot: Option<u32>,
    /// Only the folded copy is read (no predicate, key or custom predicate reads the
    /// plain slot): the host may leave the plain slot unwritten. Only with a folded slot.
    pub plain_unread: bool,
}

/// The type of a bundle field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A field of the schema, with its declared type.
    Typed(FieldType),
    /// A field of a dynamic schema: whatever JSON value the event carries.
    Dynamic,
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldKind::Typed(ty) => f.write_str(ty.as_str()),
            FieldKind::Dynamic => f.write_str("dynamic"),
        }
    }
}

/// One compiled rule and its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The rule id (`rule_id`, or the name when the rule file has none).
    pub id: String,
    /// The rule name.
    pub name: String,
    /// The severity, `""` when unset.
    pub severity: String,
    /// The risk score, if set; always finite.
    pub risk_score: Option<f64>,
    /// The description, if set.
    pub description: Option<String>,
    /// The tags.
    pub tags: Vec<String>,
    /// What makes an event (or events) a match.
    pub query: Query,
    /// The pipes applied to the matches, in order.
    pub pipes: Vec<Pipe>,
}

/// The query of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// An event query (kind 0): an event matches when `predicate` is true.
    Event {
        /// The role-0 predicate of this rule whose truth is a match.
        predicate: u32,
    },
    /// A sequence (kind 1): its steps are a table of the `SEQUENCES` section.
    Sequence {
        /// Index into [`Bundle::sequences`].
        table: u32,
    },
}

/// A pipe of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pipe {
    /// `head N` (kind 0).
    Head(u64),
    /// `tail N` (kind 1).
    Tail(u64),
    /// `filter` (kind 2): the role-1 predicate of this rule to run.
    Filter(u32),
    /// `unique` (kind 3) by these value functions (at least one).
    Unique(Vec<u32>),
    /// `unique_count` (kind 4) by these value functions (at least one).
    UniqueCount(Vec<u32>),
    /// `count` (kind 5) by these value functions (possibly none).
    Count(Vec<u32>),
    /// `sort` (kind 6) by these value functions (at least one).
    Sort(Vec<u32>),
}

impl Pipe {
    /// The pipe's EQL name: `head`, `tail`, `filter`, `unique`, `unique_count`,
    /// `count` or `sort`.
    pub fn name(&self) -> &'static str {
        match self {
            Pipe::Head(_) => "head",
            Pipe::Tail(_) => "tail",
            Pipe::Filter(_) => "filter",
            Pipe::Unique(_) => "unique",
            Pipe::UniqueCount(_) => "unique_count",
            Pipe::Count(_) => "count",
            Pipe::Sort(_) => "sort",
        }
    }
}

/// The `FUNCTIONS` section: what the Wasm module exports.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Functions {
    /// Category names, sorted and unique; a category id is an index into this list.
    pub categories: Vec<String>,
    /// Predicates; predicate id = index; `results[id]` in guest memory.
    pub predicates: Vec<Predicate>,
    /// Value functions; value-function id = index; exported as `value_<id>`.
    pub values: Vec<ValueFn>,
}

/// One compiled predicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Predicate {
    /// The rule it belongs to (index into [`Bundle::rules`]).
    pub rule: u32,
    /// What runs it.
    pub role: PredicateRole,
    /// The category an event must have for `eval` to run it, or `None` for any.
    pub category: Option<u32>,
}

/// What a predicate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PredicateRole {
    /// Role 0: an event-query condition, run by `eval`.
    EventCondition,
    /// Role 1: a `filter` pipe's condition, run by the host through `pred_<id>`.
    PipeFilter,
    /// Role 2: the subquery of a lineage test, run by the host through `pred_<id>`
    /// on events of its category, before `eval`.
    LineageSource,
    /// Role 3: the part of a sequence step's condition that reads earlier steps'
    /// events (`event0.x`), run by the host through `pred_<id>` once it has written the
    /// waiting partial's captured values into their slots.
    StepCheck,
}

/// One value function (a key of `unique`, `count`, `sort`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueFn {
    /// The rule it belongs to (index into [`Bundle::rules`]).
    pub rule: u32,
}

/// The `PATTERNS` section: tables the host functions look up by index.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Patterns {
    /// Regexes, for the `kestrel.regex` import.
    pub regexes: Vec<RegexPattern>,
    /// CIDR sets, for the `kestrel.cidr` import.
    pub cidr_sets: Vec<Vec<CidrBlock>>,
}

/// A regex of the patterns table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexPattern {
    /// The pattern, in the syntax of the Rust `regex` crate.
    pub pattern: String,
    /// Whether it matches case-insensitively.
    pub case_insensitive: bool,
    /// How it is anchored.
    pub anchor: RegexAnchor,
}

/// How a regex is anchored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegexAnchor {
    /// It must match the whole value (anchor 0).
    Whole,
    /// It must match at the start of the value (anchor 1).
    Start,
}

/// One block of a CIDR set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CidrBlock {
    /// The network address (its family is the block's family).
    pub address: IpAddr,
    /// The prefix length: at most 32 for IPv4, 128 for IPv6.
    pub prefix: u8,
}

impl fmt::Display for CidrBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Why a bundle could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleError {
    /// The byte offset of the problem in the file, where there is one.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl BundleError {
    /// An error about no particular byte.
    pub fn new(message: impl Into<String>) -> BundleError {
        BundleError { offset: None, message: message.into() }
    }

    /// An error at byte `offset` of the file.
    pub fn at(offset: u64, message: impl Into<String>) -> BundleError {
        BundleError { offset: Some(offset), message: message.into() }
    }

    /// An error at `offset`, if known.
    pub(crate) fn maybe_at(offset: Option<u64>, message: impl Into<String>) -> BundleError {
        BundleError { offset, message: message.into() }
    }

    /// The same error with `context: ` in front of the message.
    pub(crate) fn context(mut self, context: impl fmt::Display) -> BundleError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "at byte {offset}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for BundleError {}

impl Bundle {
    /// The action of rule `rule`, if it has one (`actions` is sorted by rule).
    pub fn action_of(&self, rule: usize) -> Option<&RuleAction> {
        self.actions.binary_search_by_key(&rule, |action| action.rule as usize).ok().map(|index| &self.actions[index])
    }

    /// The bundle as bytes (docs/bundle-format.md), after [`Bundle::validate`].
    /// The same bundle always gives the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        write::write(self)
    }

    /// Reads and fully validates a bundle: header, versions, section table, checksum,
    /// every encoded value, then the semantic checks of [`Bundle::validate`]. Errors
    /// carry the byte offset of the problem where there is one. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        read::read(bytes)
    }

    /// The semantic checks: every index in range, predicate roles and owners, the
    /// memory layout, names sorted and unique, slots unique and in range, finite risk
    /// scores, CIDR prefixes, the Wasm header.
    pub fn validate(&self) -> Result<(), BundleError> {
        validate::check(self, None)
    }

    /// A readable, deterministic dump of the bundle (for `kestrel inspect`).
    pub fn inspect(&self) -> String {
        inspect::inspect(self)
    }
}

/// `value` rounded up to a multiple of 8.
pub(crate) fn align8(value: u64) -> u64 {
    value.div_ceil(8).saturating_mul(8)
}

/// FNV-1a 64 of `bytes`: the bundle checksum, and the Wasm fingerprint `inspect` shows.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hasher = crate::schema::Fnv1a64::new();
    hasher.write(bytes);
    hasher.finish()
}

/// The section kinds, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SectionKind {
    Manifest = 1,
    Fields = 2,
    Rules = 3,
    Functions = 4,
    Patterns = 5,
    Wasm = 6,
    Sequences = 7,
    Lineage = 8,
    Custom = 9,
    Actions = 10,
    Prefilter = 11,
    Needs = 12,
}

impl SectionKind {
    pub(crate) const ALL: [SectionKind; 12] = [
        SectionKind::Manifest,
        SectionKind::Fields,
        SectionKind::Rules,
        SectionKind::Functions,
        SectionKind::Patterns,
        SectionKind::Wasm,
        SectionKind::Sequences,
        SectionKind::Lineage,
        SectionKind::Custom,
        SectionKind::Actions,
        SectionKind::Prefilter,
        SectionKind::Needs,
    ];

    pub(crate) fn from_u32(kind: u32) -> Option<SectionKind> {
        SectionKind::ALL.into_iter().find(|known| *known as u32 == kind)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SectionKind::Manifest => "MANIFEST",
            SectionKind::Fields => "FIELDS",
            SectionKind::Rules => "RULES",
            SectionKind::Functions => "FUNCTIONS",
            SectionKind::Patterns => "PATTERNS",
            SectionKind::Wasm => "WASM",
            SectionKind::Sequences => "SEQUENCES",
            SectionKind::Lineage => "LINEAGE",
            SectionKind::Custom => "CUSTOM",
            SectionKind::Actions => "ACTIONS",
            SectionKind::Prefilter => "PREFILTER",
            SectionKind::Needs => "NEEDS",
        }
    }

    pub(crate) fn required(self) -> bool {
        !matches!(
            self,
            SectionKind::Sequences | SectionKind::Lineage | SectionKind::Custom | SectionKind::Actions | SectionKind::Prefilter | SectionKind::Needs
        )
    }
}

/// Encodings of the enumerations, shared by the reader and the writer.
pub(crate) mod codes {
    use super::{FieldKind, PredicateRole, RegexAnchor, Relation, SequenceFlavor};
    use crate::schema::{FieldType, TimestampUnit};

    pub(crate) const DYNAMIC: u8 = 255;
    pub(crate) const FLAG_ARRAY: u8 = 1;
    pub(crate) const FLAG_FOLDED: u8 = 2;
    pub(crate) const FLAG_PLAIN_UNREAD: u8 = 4;
    pub(crate) const QUERY_EVENT: u8 = 0;
    pub(crate) const QUERY_SEQUENCE: u8 = 1;
    pub(crate) const FAMILY_V4: u8 = 4;
    pub(crate) const FAMILY_V6: u8 = 6;
    pub(crate) const ACTION_BLOCK: u8 = 0;
    pub(crate) const ACTION_KILL: u8 = 1;

    pub(crate) fn whom(whom: super::Whom) -> u8 {
        match whom {
            super::Whom::Process => 0,
            super::Whom::Parent => 1,
        }
    }

    pub(crate) fn whom_of(code: u8) -> Option<super::Whom> {
        [super::Whom::Process, super::Whom::Parent].into_iter().find(|whom| self::whom(*whom) == code)
    }

    pub(crate) fn field_kind(kind: FieldKind) -> u8 {
        match kind {
            FieldKind::Typed(FieldType::Keyword) => 0,
            FieldKind::Typed(FieldType::Long) => 1,
            FieldKind::Typed(FieldType::Double) => 2,
            FieldKind::Typed(FieldType::Ip) => 3,
            FieldKind::Typed(FieldType::Boolean) => 4,
            FieldKind::Typed(FieldType::Date) => 5,
            FieldKind::Typed(FieldType::Version) => 6,
            FieldKind::Dynamic => DYNAMIC,
        }
    }

    pub(crate) fn field_kind_of(code: u8) -> Option<FieldKind> {
        let all = FieldType::ALL.map(FieldKind::Typed);
        all.into_iter().chain([FieldKind::Dynamic]).find(|kind| field_kind(*kind) == code)
    }

    pub(crate) fn timestamp_unit(unit: TimestampUnit) -> u8 {
        match unit {
            TimestampUnit::Ns => 0,
            TimestampUnit::Us => 1,
            TimestampUnit::Ms => 2,
            TimestampUnit::S => 3,
            TimestampUnit::Filetime => 4,
            TimestampUnit::Rfc3339 => 5,
        }
    }

    pub(crate) fn timestamp_unit_of(code: u8) -> Option<TimestampUnit> {
        TimestampUnit::ALL.into_iter().find(|unit| timestamp_unit(*unit) == code)
    }

    pub(crate) fn role(role: PredicateRole) -> u8 {
        match role {
            PredicateRole::EventCondition => 0,
            PredicateRole::PipeFilter => 1,
            PredicateRole::LineageSource => 2,
            PredicateRole::StepCheck => 3,
        }
    }

    pub(crate) fn role_of(code: u8) -> Option<PredicateRole> {
        [PredicateRole::EventCondition, PredicateRole::PipeFilter, PredicateRole::LineageSource, PredicateRole::StepCheck]
            .into_iter()
            .find(|role| self::role(*role) == code)
    }

    pub(crate) fn relation(relation: Relation) -> u8 {
        match relation {
            Relation::Descendant => 0,
            Relation::Child => 1,
            Relation::Event => 2,
        }
    }

    pub(crate) fn relation_of(code: u8) -> Option<Relation> {
        [Relation::Descendant, Relation::Child, Relation::Event].into_iter().find(|relation| self::relation(*relation) == code)
    }

    pub(crate) fn flavor(flavor: SequenceFlavor) -> u8 {
        match flavor {
            SequenceFlavor::Elasticsearch => 0,
            SequenceFlavor::Endgame => 1,
        }
    }

    pub(crate) const TABLE_SEQUENCE: u8 = 0;
    pub(crate) const TABLE_JOIN: u8 = 1;
    pub(crate) const TABLE_SAMPLE: u8 = 2;

    pub(crate) fn flavor_of(code: u8) -> Option<SequenceFlavor> {
        [SequenceFlavor::Elasticsearch, SequenceFlavor::Endgame].into_iter().find(|flavor| self::flavor(*flavor) == code)
    }

    pub(crate) fn anchor(anchor: RegexAnchor) -> u8 {
        match anchor {
            RegexAnchor::Whole => 0,
            RegexAnchor::Start => 1,
        }
    }

    pub(crate) fn runtime(runtime: super::CustomRuntime) -> u8 {
        match runtime {
            super::CustomRuntime::Lua => 0,
            super::CustomRuntime::Wasm => 1,
        }
    }

    pub(crate) fn runtime_of(code: u8) -> Option<super::CustomRuntime> {
        [super::CustomRuntime::Lua, super::CustomRuntime::Wasm].into_iter().find(|runtime| self::runtime(*runtime) == code)
    }

    pub(crate) fn anchor_of(code: u8) -> Option<RegexAnchor> {
        [RegexAnchor::Whole, RegexAnchor::Start].into_iter().find(|anchor| self::anchor(*anchor) == code)
    }
}
