//! The detection engine: writes batches of events into guest memory, calls `eval` once
//! per batch, turns true predicates into rule matches, and runs each rule's pipes.
//!
//! A trap in the guest never stops the engine: it finds the predicates that trap, one by
//! one, disables them (the disabled region), counts them against their rule, and runs
//! the batch again.

use crate::guest::{self, Area};
use crate::host::HostState;
use crate::pipes::{Output, Pipeline, Row, Stage};
use crate::program::Program;
mod categories;
mod decide;
mod needs;
mod results;
mod sequences;

pub use categories::Categories;
use kestrel_bundle::abi::SLOT_SIZE;
use kestrel_bundle::bundle::{Bundle, Layout, Pipe, PredicateRole, Query};
use kestrel_bundle::semantics::Value;
use results::collect_hits;
use sequences::{Scratch, SequenceRun};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Memory, Store, StoreLimitsBuilder, TypedFunc};

/// Results a buffering pipe (`tail`, `sort`, `unique`, counts) keeps per rule.
pub const DEFAULT_MAX_BUFFERED: usize = 1_000_000;
/// Epoch ticks (each `TICK`) one guest call may run before it is interrupted.
pub const DEADLINE_TICKS: u64 = 100;
pub const TICK: Duration = Duration::from_millis(10);
/// When profiling, one batch in this many is timed rule by rule.
pub const PROFILE_EVERY: u64 = 64;

/// An event ready for the engine: its fields in the bundle's field order. Exactly one
/// cache line (64 bytes, aligned): the engine reads events one after another, and the
/// memory they take is most of what it waits on (a test holds the size).
#[derive(Clone, Debug, PartialEq)]
#[repr(align(64))]
pub struct Event {
    /// Nanoseconds since the Unix epoch.
    pub timestamp: i64,
    /// Category ids of the bundle (`Functions::categories`) the event belongs to.
    pub categories: Categories,
    /// One entry per bundle field, `None` when the event lacks it; none at all for an
    /// event no predicate runs on (`Candidates`), as the replay reader reads it.
    pub fields: Vec<Option<Value>>,
    /// The event as it was read (one JSON document), carried into alerts verbatim.
    pub raw: Line,
}

/// An event's line as it was read (one JSON document), shared by the alerts that carry
/// it; empty for an event read without its line. An empty line is no allocation and no
/// shared reference count: parsing threads make most events without their line, and
/// one count touched by every event of every thread is a cache line they fight over.
/// One pointer (to the shared text's box), not two words: an [`Event`] fits in a cache
/// line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line(Option<Arc<Box<str>>>);

impl Line {
    pub fn new(text: &str) -> Line {
        Line((!text.is_empty()).then(|| Arc::new(Box::from(text))))
    }
}

impl std::ops::Deref for Line {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_deref().map_or("", |text| text)
    }
}

/// A matched event, as an alert carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRef {
    /// The caller's index of the event (`first_index` + its position in the batch).
    pub index: usize,
    pub timestamp: i64,
    pub raw: Line,
    /// The event's fields, kept only for rules whose filters run late.
    pub fields: Option<Arc<Vec<Option<Value>>>>,
    /// What hand-written predicates captured on the event (docs/abi.md).
    pub captures: Option<Arc<Vec<crate::custom::Captured>>>,
}

/// One output of a rule: a match that passed its pipes, or a count.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub rule: usize,
    /// The matched events, in order.
    pub events: Vec<EventRef>,
    /// A sequence (with `by`) or a sample: the values of its join key.
    pub join_key: Option<Vec<Value>>,
    /// `unique_count`: the count and share of results with this one's key.
    pub count: Option<(u64, f64)>,
    /// `count`: the key and its count and share, instead of events.
    pub key_count: Option<(Vec<Value>, u64, f64)>,
}

/// A rule's condition matched an event: what its pipes need, not yet through them.
#[derive(Clone, Debug)]
pub struct Match {
    pub rule: usize,
    pub row: Row<Found>,
}

/// What a rule found, as it goes through the rule's pipes.
#[derive(Clone, Debug)]
pub struct Found {
    /// The matched events (one for an event query, one per positive step for a
    /// sequence, one per step for a join or a sample).
    pub events: Vec<EventRef>,
    /// A sequence (with `by`) or a sample: the values of its join key.
    pub join_key: Option<Vec<Value>>,
}

/// Counters of one rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleStats {
    /// Events whose condition matched.
    pub matches: u64,
    /// Outputs after the pipes.
    pub alerts: u64,
    /// Predicates of the rule disabled after a trap.
    pub traps: u64,
    /// Results dropped by a full pipe buffer.
    pub dropped: u64,
    /// A sequence rule: what happened to its partial matches (expired, evicted, ...).
    pub sequence: crate::sequence::Counters,
    /// A join rule: what happened to its keys.
    pub join: crate::join::Counters,
    /// A sample rule: what happened to its keys.
    pub sample: crate::sample::Counters,
    /// Join keys over the per-hit limit of a multi-value key, dropped.
    pub keys_dropped: u64,
    /// Estimated time evaluating the rule's condition, when profiling (sampled: one
    /// batch in [`PROFILE_EVERY`] is timed rule by rule, and scaled up).
    pub time: Duration,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub events: u64,
    pub batches: u64,
    /// Events whose fields did not fit the guest's data region; not evaluated.
    pub oversized: u64,
    /// Processes the lineage tracker could not track (its sets were full).
    pub lineage_dropped: u64,
    /// Values captured at sequence steps that found no room in guest memory when
    /// written back for a check or a pipe (they read as null).
    pub captures_dropped: u64,
    /// Skip bits set by the bundle's needs: (event, candidate predicate) pairs not run
    /// because the event could not satisfy the predicate.
    pub needs_skipped: u64,
    pub rules: Vec<RuleStats>,
}

/// Which pipe inputs a rule needs computed for each match, and where they go.
struct RulePlan {
    filters: Vec<usize>,
    /// For each filter: whether it runs late (after `unique_count`, on the count).
    late: Vec<bool>,
    keys: Vec<Vec<usize>>,
    pipeline: Pipeline<Found>,
}

pub struct Engine {
    program: Arc<Program>,
    store: Store<HostState>,
    memory: Memory,
    eval: TypedFunc<i32, i32>,
    predicates: Vec<TypedFunc<i32, i32>>,
    values: Vec<TypedFunc<i32, ()>>,
    layout: Layout,
    /// For each bundle field: (slot, folded slot); no plain slot when the bundle marks it
    /// unread (validated: no key slot or hand-written predicate's view reads it).
    slots: Vec<(Option<u32>, Option<u32>)>,
    rules: Vec<RulePlan>,
    /// Role-0 predicate ids by category (last entry: "any").
    candidates: HashMap<Option<u32>, Vec<u32>>,
    /// The events some predicate may run on.
    runs_on: Candidates,
    /// The bundle's needs: which predicates each event lets `eval` skip.
    needs: Option<needs::NeedsTest>,
    pub stats: Stats,
    /// The process tracker, when a rule uses lineage.
    lineage: Option<crate::lineage::Tracker>,
    /// The sequence rules' executors.
    sequences: Vec<SequenceRun>,
    /// By predicate id: the sequence steps it decides (run, step; `None` for `until`).
    steps_of: Vec<Vec<(usize, Option<usize>)>>,
    /// The sequence runs with a trailing missing step: their results wait for time to
    /// pass, so every event evaluated moves their clock.
    clocked: Vec<usize>,
    /// Start of the data region's free part after the batch's events (for captures).
    spare_data: usize,
    sequence_scratch: Scratch,
    /// Reused buffers: the positions of a batch's written events, and [`Engine::run`]'s
    /// matches of one batch.
    written: Vec<usize>,
    /// The candidates' offsets in a stretch of events (`write_batch`), kept for its room.
    picks: Vec<usize>,
    batch_matches: Vec<Match>,
    /// A rule's pipe outputs for one match, emptied into alerts (kept: one allocation
    /// per match less).
    outputs: Vec<Output<Found>>,
    /// A batch's true results: (position in the batch, predicate id).
    hits: Vec<(usize, usize)>,
    profiling: bool,
    _ticker: Ticker,
}

/// Advances the engine's epoch while the engine lives, so deadlines can fire.
struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine) -> Ticker {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct EngineError(pub String);

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Engine {
    pub fn new(program: Arc<Program>, max_buffered: usize) -> Result<Engine, EngineError> {
        let bundle = program.bundle.clone();
        let layout = bundle.manifest.layout;
        let memory_bytes = layout.memory_bytes() as usize;
        // Deadlines need the epoch moving before any guest code runs (hand-written
        // predicates' `pred_init` runs below).
        let ticker = Ticker::start(program.engine.clone());
        let state = HostState {
            regexes: program.regexes.clone(),
            cidr_sets: program.cidr_sets.clone(),
            declared: program.declared.clone(),
            out_offset: layout.out_offset as usize,
            heap_end: (layout.heap_offset + layout.heap_capacity) as usize,
            limits: StoreLimitsBuilder::new().memory_size(memory_bytes).instances(1).tables(0).build(),
            host_failures: 0,
            custom: (!program.custom.is_empty()).then(|| Box::new(crate::custom::Custom::new(&program.custom, &program.engine))),
        };
        let mut store = Store::new(&program.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(DEADLINE_TICKS);
        let instance = program.pre.instantiate(&mut store).map_err(|error| EngineError(format!("cannot instantiate the bundle: {error}")))?;
        let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| EngineError("the module exports no memory".into()))?;
        let typed = |store: &mut Store<HostState>, name: &str| {
            instance.get_typed_func::<i32, i32>(&mut *store, name).map_err(|error| EngineError(format!("`{name}`: {error}")))
        };
        let eval = typed(&mut store, "eval")?;
        let predicates = (0..bundle.functions.predicates.len()).map(|id| typed(&mut store, &format!("pred_{id}"))).collect::<Result<Vec<_>, _>>()?;
        let values = (0..bundle.functions.values.len())
            .map(|id| instance.get_typed_func::<i32, ()>(&mut store, &format!("value_{id}")).map_err(|error| EngineError(format!("`value_{id}`: {error}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let slots = bundle.fields.iter().map(|field| ((!field.plain_unread).then_some(field.slot), field.folded_slot)).collect();
        let candidates = event_conditions(&bundle);
        let rules = bundle
            .rules
            .iter()
            .map(|rule| {
                let mut filters = Vec::new();
                let mut late = Vec::new();
                let mut keys = Vec::new();
                let mut counted = false;
                let stages = rule
                    .pipes
                    .iter()
                    .map(|pipe| match pipe {
                        Pipe::Head(count) => Stage::Head(*count),
                        Pipe::Tail(count) => Stage::Tail(*count),
                        Pipe::Filter(predicate) => {
                            filters.push(*predicate as usize);
                            late.push(counted);
                            if counted { Stage::LateFilter(filters.len() - 1) } else { Stage::Filter(filters.len() - 1) }
                        }
                        Pipe::Unique(ids) | Pipe::UniqueCount(ids) | Pipe::Count(ids) | Pipe::Sort(ids) => {
                            keys.push(ids.iter().map(|id| *id as usize).collect());
                            let position = keys.len() - 1;
                            match pipe {
                                Pipe::Unique(_) => Stage::Unique(position),
                                Pipe::UniqueCount(_) => {
                                    counted = true;
                                    Stage::UniqueCount(position)
                                }
                                Pipe::Count(_) => Stage::Count(position),
                                _ => Stage::Sort(position),
                            }
                        }
                    })
                    .collect();
                RulePlan { filters, late, keys, pipeline: Pipeline::new(stages, max_buffered) }
            })
            .collect();
        let runs_on = Candidates::new(bundle.functions.categories.len(), &candidates, bundle.lineage.is_some());
        let stats = Stats { rules: vec![RuleStats::default(); bundle.rules.len()], ..Stats::default() };
        let lineage = bundle.lineage.as_ref().map(crate::lineage::Tracker::new);
        let tables = bundle.sequences.as_deref().unwrap_or_default();
        let sequences: Vec<SequenceRun> = tables.iter().map(|table| SequenceRun::new(table, crate::sequence::DEFAULT_MAX_PARTIALS)).collect();
        let mut steps_of = vec![Vec::new(); bundle.functions.predicates.len()];
        for (run, table) in tables.iter().enumerate() {
            for (step, spec) in table.steps.iter().enumerate() {
                steps_of[spec.predicate as usize].push((run, Some(step)));
            }
            if let Some(until) = &table.until {
                steps_of[until.predicate as usize].push((run, None));
            }
        }
        let clocked = sequences.iter().enumerate().filter(|(_, run)| run.is_clocked()).map(|(run, _)| run).collect();
        Ok(Engine {
            program,
            store,
            memory,
            eval,
            predicates,
            values,
            layout,
            slots,
            rules,
            candidates,
            runs_on,
            needs: needs::NeedsTest::new(&bundle),
            stats,
            lineage,
            sequences,
            steps_of,
            clocked,
            spare_data: layout.data_offset as usize,
            sequence_scratch: Scratch::default(),
            written: Vec::with_capacity(layout.batch_capacity as usize),
            batch_matches: Vec::new(),
            outputs: Vec::new(),
            hits: Vec::new(),
            picks: Vec::new(),
            profiling: false,
            _ticker: ticker,
        })
    }

    /// Sets the partial matches each sequence rule keeps (and the keys of each join
    /// and sample rule, and ten times that many buffered sample events), before any
    /// event: beyond it the oldest are evicted, counted. At least 1.
    pub fn set_max_state(&mut self, max_state: usize) {
        let tables = self.program.bundle.sequences.as_deref().unwrap_or_default();
        self.sequences = tables.iter().map(|table| SequenceRun::new(table, max_state.max(1))).collect();
    }

    /// Estimate per-rule evaluation time ([`RuleStats::time`]).
    pub fn set_profiling(&mut self, on: bool) {
        self.profiling = on;
    }

    pub fn bundle(&self) -> &kestrel_bundle::Bundle {
        &self.program.bundle
    }

    /// Runs every event, in order, and appends the rules' outputs to `alerts`.
    /// `first_index` is the caller's index of `events[0]` (alerts refer to events by it).
    ///
    /// Each batch's matches go through their pipes before the next batch is evaluated,
    /// so what waits between the two halves is one batch's matches, not the call's.
    pub fn run(&mut self, events: &[Event], first_index: usize, alerts: &mut Vec<Alert>) {
        let mut matches = std::mem::take(&mut self.batch_matches);
        self.evaluate_batches(events, first_index, &mut matches, &mut |engine, matches| {
            for found in matches.drain(..) {
                engine.dispatch(found, alerts);
            }
        });
        self.batch_matches = matches;
    }

    /// Whether events must reach [`Engine::evaluate`] in timestamp order: the lineage
    /// tracker's answers depend on the process events before. Otherwise evaluation is
    /// per event, and only [`Engine::dispatch`] needs order.
    pub fn needs_ordered_evaluation(&self) -> bool {
        self.lineage.is_some() || !self.sequences.is_empty()
    }

    /// The order-independent half of [`Engine::run`]: evaluates the events' conditions,
    /// and for each match computes what the rule's pipes need. Matches come out in event
    /// order, then predicate order.
    pub fn evaluate(&mut self, events: &[Event], first_index: usize, matches: &mut Vec<Match>) {
        self.evaluate_batches(events, first_index, matches, &mut |_, _| {});
    }

    /// [`Engine::evaluate`], calling `after` with the matches after each batch.
    fn evaluate_batches(&mut self, events: &[Event], first_index: usize, matches: &mut Vec<Match>, after: &mut dyn FnMut(&mut Engine, &mut Vec<Match>)) {
        let mut start = 0;
        let mut written = std::mem::take(&mut self.written);
        while start < events.len() {
            let consumed = self.write_batch(&events[start..], &mut written);
            if !written.is_empty() {
                self.evaluate_batch(&events[start..], &written, first_index + start, matches);
                after(self, matches);
            }
            start += consumed;
        }
        self.written = written;
    }

    /// The clock reached `now` with no event: the sequences waiting for a missing event
    /// whose window closed before it, as matches (for [`Engine::dispatch`]).
    pub fn tick(&mut self, now: i64, matches: &mut Vec<Match>) {
        if !self.clocked.is_empty() {
            // Between batches the data region is free, as at the end of the input.
            self.spare_data = self.layout.data_offset as usize;
            self.release_sequences(now, matches);
        }
    }

    /// Whether any sequence rule waits for time to pass (a trailing missing step).
    pub fn has_clocked_sequences(&self) -> bool {
        !self.clocked.is_empty()
    }

    /// The ordered half of [`Engine::run`]: feeds a match to its rule's pipes.
    pub fn dispatch(&mut self, found: Match, alerts: &mut Vec<Alert>) {
        self.rules[found.rule].pipeline.push(found.row, &mut self.outputs);
        emit(found.rule, &mut self.outputs, &mut self.stats.rules[found.rule], alerts);
    }

    /// Flushes the buffering pipes: call once, after the last event.
    pub fn finish(&mut self, alerts: &mut Vec<Alert>) {
        let mut matches = Vec::new();
        self.finish_sequences(&mut matches);
        for found in matches {
            self.dispatch(found, alerts);
        }
        for rule_idx in 0..self.rules.len() {
            let mut outputs = Vec::new();
            let mut pipeline = std::mem::replace(&mut self.rules[rule_idx].pipeline, Pipeline::new(Vec::new(), 0));
            let filters = self.rules[rule_idx].filters.clone();
            pipeline.finish_with(&mut outputs, &mut |position, row| self.late_filter(rule_idx, filters[position], row));
            self.stats.rules[rule_idx].dropped = pipeline.dropped;
            self.rules[rule_idx].pipeline = pipeline;
            emit(rule_idx, &mut outputs, &mut self.stats.rules[rule_idx], alerts);
        }
    }

    /// A filter after `unique_count`: the matched event goes back into guest memory,
    /// its fields `count` and `percent` (if the bundle reads them) replaced by the
    /// result's, as python eql sets them on the event; then the filter runs on it.
    fn late_filter(&mut self, rule: usize, predicate: usize, row: &Row<Found>) -> bool {
        let Some(item) = row.item.events.first() else { return false };
        let Some(fields) = &item.fields else { return false };
        let mut fields: Vec<Option<Value>> = fields.as_ref().clone();
        if let Some((count, percent)) = row.count {
            for (idx, field) in self.program.bundle.fields.iter().enumerate() {
                match field.name.as_str() {
                    "count" => fields[idx] = Some(Value::Long(count as i64)),
                    "percent" => fields[idx] = Some(Value::Double(percent)),
                    _ => {}
                }
            }
        }
        let event = Event { timestamp: item.timestamp, categories: Categories::default(), fields, raw: item.raw.clone() };
        let data_start = self.layout.data_offset as usize;
        let mut area = Area::new(data_start, data_start + self.layout.data_capacity as usize);
        // The filter runs alone, not through `eval`: no skip bits to write.
        if !write_fields(self.memory.data_mut(&mut self.store), &self.slots, self.layout, &event, 0, &mut area) {
            return false;
        }
        self.store.set_epoch_deadline(DEADLINE_TICKS);
        match self.predicates[predicate].call(&mut self.store, 0) {
            Ok(truth) => truth == 1,
            Err(_) => {
                self.stats.rules[rule].traps += 1;
                false
            }
        }
    }

    /// Whether some predicate may run on the event: a rule for any category or for one
    /// of its categories, or the lineage tracker (which follows every process event).
    fn is_candidate(&self, event: &Event) -> bool {
        self.runs_on.contains(event)
    }

    /// Writes as many events as fit (batch capacity, data region) into guest memory,
    /// putting their offsets (in `events`) in `written`. Events no predicate can match
    /// are counted and passed over; an event too large for the data region alone is
    /// counted and skipped. Returns how many events of `events` were consumed.
    ///
    /// The candidates of a stretch of events are listed first (no branch on each
    /// event's categories: a mix of candidates and others in no order would be a
    /// mispredicted branch for every other event), then written one by one, prefetching
    /// ahead of them.
    fn write_batch(&mut self, events: &[Event], written: &mut Vec<usize>) -> usize {
        written.clear();
        let layout = self.layout;
        let capacity = layout.batch_capacity as usize;
        let data_start = layout.data_offset as usize;
        let mut area = Area::new(data_start, data_start + layout.data_capacity as usize);
        let mut picks = std::mem::take(&mut self.picks);
        let runs_on = &self.runs_on;
        // The guest memory is looked up once per batch, not per event (a walk through the
        // store each time).
        let memory = self.memory.data_mut(&mut self.store);
        let mut consumed = 0;
        'stretches: while consumed < events.len() && written.len() < capacity {
            // Twice the room left in the batch, and the prefetch distance: when half the
            // events are candidates, the batch fills in one stretch.
            let stretch = &events[consumed..events.len().min(consumed + 2 * (capacity - written.len()) + FIELDS_AHEAD)];
            // Every offset is stored and the count advances by the test's 0 or 1; the
            // list keeps its length (only `..found` is read), so it is not cleared each time.
            if picks.len() < stretch.len() {
                picks.resize(stretch.len(), 0);
            }
            let mut found = 0;
            for (offset, event) in stretch.iter().enumerate() {
                picks[found] = offset;
                found += usize::from(runs_on.contains(event));
            }
            let picks = &picks[..found];
            for (pick, &offset) in picks.iter().enumerate() {
                if let Some(ahead) = picks.get(pick + FIELDS_AHEAD) {
                    crate::cpu::prefetch(stretch[*ahead].fields.as_slice());
                }
                if let Some(ahead) = picks.get(pick + VALUES_AHEAD) {
                    prefetch_values(&stretch[*ahead]);
                }
                let mark = area.next;
                if !write_fields(memory, &self.slots, layout, &stretch[offset], written.len(), &mut area) {
                    area.next = mark;
                    if !written.is_empty() {
                        consumed += offset;
                        break 'stretches;
                    }
                    // Alone in the data region and still too large: skip it, counted.
                    self.stats.oversized += 1;
                    continue;
                }
                if let Some(needs) = self.needs.as_mut() {
                    self.stats.needs_skipped += needs.write(&stretch[offset], &mut memory[layout.skip_bits_of(written.len())..]);
                }
                written.push(consumed + offset);
                if written.len() == capacity {
                    consumed += offset + 1;
                    break 'stretches;
                }
            }
            consumed += stretch.len();
        }
        // Every consumed event not written: the others, and the oversized.
        self.stats.events += (consumed - written.len()) as u64;
        self.picks = picks;
        self.spare_data = area.next;
        consumed
    }

    /// Writes one event's fields, categories and skip bits at `position` of the batch, for
    /// `eval`, payloads in `area`. Returns false when they do not fit.
    fn write_event(&mut self, event: &Event, position: usize, area: &mut Area) -> bool {
        let memory = self.memory.data_mut(&mut self.store);
        if let Some(needs) = self.needs.as_mut() {
            // Not counted: a decision is not an evaluation of the stream.
            needs.write(event, &mut memory[self.layout.skip_bits_of(position)..]);
        }
        write_fields(memory, &self.slots, self.layout, event, position, area)
    }

    /// Runs `eval` over the written batch and collects the matches.
    fn evaluate_batch(&mut self, events: &[Event], written: &[usize], first_index: usize, matches: &mut Vec<Match>) {
        self.stats.batches += 1;
        self.stats.events += written.len() as u64;
        if self.lineage.is_some() {
            self.answer_lineage(events, written);
        }
        let count = written.len() as i32;
        if let Some(custom) = self.store.data_mut().custom.as_mut() {
            custom.stash.clear();
        }
        let total = loop {
            self.store.set_epoch_deadline(DEADLINE_TICKS);
            match self.eval.call(&mut self.store, count) {
                Ok(total) => break total,
                Err(_) => {
                    if !self.disable_trapping(written.len()) {
                        // Nothing left to disable: give up on this batch, counted per rule already.
                        break 0;
                    }
                }
            }
        };
        if self.profiling && self.stats.batches % PROFILE_EVERY == 1 {
            self.profile_batch(events, written);
        }
        if total <= 0 {
            return;
        }
        let layout = self.layout;
        let result_count = layout.result_count as usize;
        let program = self.program.clone();
        let predicates = &program.bundle.functions.predicates;
        // Captures by the event's position in the batch.
        let stride = layout.slot_count * SLOT_SIZE;
        let batch_captures: Vec<(usize, crate::custom::Captured)> = match self.store.data_mut().custom.as_mut() {
            Some(custom) => {
                custom.stash.drain(..).map(|(slots, captured)| ((slots.saturating_sub(layout.slots_offset) / stride.max(1)) as usize, captured)).collect()
            }
            None => Vec::new(),
        };
        // The true results, in event order, then predicate order.
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        let start = layout.results_offset as usize;
        if let Some(results) = self.memory.data(&self.store).get(start..start + written.len() * result_count) {
            collect_hits(results, result_count, total as usize, &mut hits);
        }
        let mut matched = Vec::new();
        let mut steps = Vec::new();
        let mut next = 0;
        for (event, offset) in written.iter().enumerate() {
            let first = next;
            while hits.get(next).is_some_and(|(at, _)| *at == event) {
                next += 1;
            }
            if !self.clocked.is_empty() {
                self.release_sequences(events[*offset].timestamp, matches);
            }
            if first == next {
                continue;
            }
            matched.clear();
            matched.extend(hits[first..next].iter().map(|(_, id)| *id));
            steps.clear();
            if !self.sequences.is_empty() {
                steps.extend(matched.iter().flat_map(|id| self.steps_of[*id].iter().copied()));
            }
            if !steps.is_empty() {
                let source = &events[*offset];
                let captures = captured(&batch_captures, event);
                let item = EventRef { index: first_index + offset, timestamp: source.timestamp, raw: source.raw.clone(), fields: None, captures };
                self.advance_sequences(&steps, event as i32, &item, matches);
            }
            for &id in &matched {
                let rule = predicates[id].rule as usize;
                if !matches!(self.program.bundle.rules[rule].query, Query::Event { .. }) {
                    continue;
                }
                self.stats.rules[rule].matches += 1;
                let source = &events[*offset];
                let fields = self.rules[rule].late.contains(&true).then(|| Arc::new(source.fields.clone()));
                let captures = captured(&batch_captures, event);
                let item = EventRef { index: first_index + offset, timestamp: source.timestamp, raw: source.raw.clone(), fields, captures };
                let row = self.pipe_inputs(rule, event as i32, item);
                matches.push(Match { rule, row });
            }
        }
        self.hits = hits;
    }

    /// Statistics of the bundle's hand-written predicates, in `CUSTOM` order.
    pub fn custom_stats(&self) -> Vec<crate::custom::CustomStats> {
        self.store.data().custom.as_ref().map(|custom| custom.stats()).unwrap_or_default()
    }

    /// Value function `id` on the batch's event `event` (null when it traps, counted).
    fn value_of(&mut self, rule: usize, id: usize, event: i32) -> Value {
        self.store.set_epoch_deadline(DEADLINE_TICKS);
        match self.values[id].call(&mut self.store, event) {
            Ok(()) => guest::read(self.memory.data(&self.store), self.layout.out_offset as usize),
            Err(_) => {
                self.stats.rules[rule].traps += 1;
                Value::Null
            }
        }
    }

    /// Runs the lineage tests over the batch, event by event, in the bundle's order
    /// (inner tests first), and writes each answer to the test's slot of the event.
    fn answer_lineage(&mut self, events: &[Event], written: &[usize]) {
        let Some(mut tracker) = self.lineage.take() else { return };
        let layout = self.layout;
        let stride = (layout.slot_count * SLOT_SIZE) as usize;
        let disabled_base = layout.disabled_offset() as usize;
        let table = tracker.table().clone();
        let program = self.program.clone();
        for (test, node) in table.nodes.iter().enumerate() {
            let source = node.source as usize;
            let predicate = &program.bundle.functions.predicates[source];
            for (slot, offset) in written.iter().enumerate() {
                let event = &events[*offset];
                let runs = predicate.category.is_none_or(|category| event.categories.contains(category));
                let matched = runs && self.memory.data(&self.store)[disabled_base + source] == 0 && {
                    self.store.set_epoch_deadline(DEADLINE_TICKS);
                    match self.predicates[source].call(&mut self.store, slot as i32) {
                        Ok(truth) => truth == 1,
                        Err(_) => {
                            self.memory.data_mut(&mut self.store)[disabled_base + source] = 1;
                            self.stats.rules[predicate.rule as usize].traps += 1;
                            false
                        }
                    }
                };
                let fields = crate::lineage::ProcessFields {
                    is_process: event.categories.contains(table.process_category),
                    pid: event_field(event, table.pid_field),
                    ppid: event_field(event, table.ppid_field),
                    subtype: event_field(event, table.subtype_field),
                };
                let answer = tracker.step(test, &fields, matched);
                let at = layout.slots_offset as usize + slot * stride + node.slot as usize * SLOT_SIZE as usize;
                let mut area = Area::new(0, 0);
                let _ = guest::write(self.memory.data_mut(&mut self.store), at, &Value::Bool(answer), &mut area);
            }
        }
        self.stats.lineage_dropped = tracker.dropped;
        self.lineage = Some(tracker);
    }

    /// Times each enabled event condition alone over the batch's events of its
    /// category, and charges [`PROFILE_EVERY`] times that to its rule.
    fn profile_batch(&mut self, events: &[Event], written: &[usize]) {
        let layout = self.layout;
        let disabled_base = layout.disabled_offset() as usize;
        let program = self.program.clone();
        for (id, predicate) in program.bundle.functions.predicates.iter().enumerate() {
            if predicate.role != PredicateRole::EventCondition || self.memory.data(&self.store)[disabled_base + id] != 0 {
                continue;
            }
            let started = std::time::Instant::now();
            for (slot, offset) in written.iter().enumerate() {
                // As `eval` runs it: on the events of its category that the needs let through.
                let skip = layout.skip_bits_of(slot) + id / 8;
                let skipped = self.needs.is_some() && self.memory.data(&self.store)[skip] & (1 << (id % 8)) != 0;
                if !skipped && predicate.category.is_none_or(|category| events[*offset].categories.contains(category)) {
                    self.store.set_epoch_deadline(DEADLINE_TICKS);
                    let _ = self.predicates[id].call(&mut self.store, slot as i32);
                }
            }
            self.stats.rules[predicate.rule as usize].time += started.elapsed() * PROFILE_EVERY as u32;
        }
    }

    /// Computes the filter truths and key values the rule's pipes need for a match.
    fn pipe_inputs(&mut self, rule: usize, event: i32, item: EventRef) -> Row<Found> {
        self.pipe_row(rule, event, Found { events: vec![item], join_key: None })
    }

    /// The filter truths and key values the rule's pipes need for a result, computed
    /// on the batch's event `event`.
    fn pipe_row(&mut self, rule: usize, event: i32, item: Found) -> Row<Found> {
        let plan = &self.rules[rule];
        if plan.filters.is_empty() && plan.keys.is_empty() {
            return Row { item, filters: Vec::new(), keys: Vec::new(), count: None };
        }
        let filters_ids = plan.filters.clone();
        let late = plan.late.clone();
        let key_ids = plan.keys.clone();
        let mut filters = Vec::with_capacity(filters_ids.len());
        for (id, late) in filters_ids.into_iter().zip(late) {
            if late {
                filters.push(false);
                continue;
            }
            self.store.set_epoch_deadline(DEADLINE_TICKS);
            let truth = self.predicates[id].call(&mut self.store, event).unwrap_or_else(|_| {
                self.stats.rules[rule].traps += 1;
                0
            });
            filters.push(truth == 1);
        }
        let keys = key_ids.into_iter().map(|ids| ids.into_iter().map(|id| self.value_of(rule, id, event)).collect()).collect();
        Row { item, filters, keys, count: None }
    }

    /// After `eval` trapped: runs each enabled candidate predicate alone on each event of
    /// the batch, and disables those that trap. Returns whether any was disabled.
    fn disable_trapping(&mut self, events: usize) -> bool {
        let layout = self.layout;
        let disabled_base = layout.disabled_offset() as usize;
        let mut disabled_any = false;
        let ids: Vec<u32> = self.candidates.values().flatten().copied().collect();
        for id in ids {
            let is_disabled = self.memory.data(&self.store)[disabled_base + id as usize] != 0;
            if is_disabled {
                continue;
            }
            for event in 0..events {
                self.store.set_epoch_deadline(DEADLINE_TICKS);
                if self.predicates[id as usize].call(&mut self.store, event as i32).is_err() {
                    self.memory.data_mut(&mut self.store)[disabled_base + id as usize] = 1;
                    let rule = self.program.bundle.functions.predicates[id as usize].rule as usize;
                    self.stats.rules[rule].traps += 1;
                    disabled_any = true;
                    break;
                }
            }
        }
        disabled_any
    }

    /// Host calls that failed (a full guest heap).
    pub fn host_failures(&self) -> u64 {
        self.store.data().host_failures
    }

    /// What the engine has dropped at its bounds so far (the pipes' drops as they count
    /// them now: the rules' statistics get them at the end).
    pub fn losses(&self) -> crate::losses::Losses {
        let stats = &self.stats;
        let (lineage_dropped, oversized, captures_dropped) = (stats.lineage_dropped, stats.oversized, stats.captures_dropped);
        let mut losses = crate::losses::Losses { lineage_dropped, oversized, captures_dropped, host_failures: self.host_failures(), ..Default::default() };
        losses.add_rules(&stats.rules);
        losses.pipe_dropped = self.rules.iter().map(|rule| rule.pipeline.dropped).sum();
        losses
    }
}

/// A bundle's event conditions (predicate ids) by category (`None`: any category).
fn event_conditions(bundle: &Bundle) -> HashMap<Option<u32>, Vec<u32>> {
    let mut conditions: HashMap<Option<u32>, Vec<u32>> = HashMap::new();
    for (id, predicate) in bundle.functions.predicates.iter().enumerate() {
        if predicate.role == PredicateRole::EventCondition {
            conditions.entry(predicate.category).or_default().push(id as u32);
        }
    }
    conditions
}

/// Which events some predicate may run on: a rule for any category or for one of the
/// event's categories, or the lineage tracker (which follows every process event).
#[derive(Clone, Debug)]
pub struct Candidates {
    /// A rule for any category (`any where`), or the lineage tracker.
    all: bool,
    /// Category ids below 64 some rule runs on.
    mask: u64,
    /// By category id: some rule runs on it.
    by_category: Vec<bool>,
}

impl Candidates {
    /// From the event conditions by category (`None`: any) of a bundle of `categories`.
    fn new(categories: usize, conditions: &HashMap<Option<u32>, Vec<u32>>, lineage: bool) -> Candidates {
        let mut by_category = vec![false; categories];
        for category in conditions.keys().flatten() {
            if let Some(flag) = by_category.get_mut(*category as usize) {
                *flag = true;
            }
        }
        let mask = by_category.iter().take(64).enumerate().filter(|(_, runs)| **runs).fold(0u64, |mask, (id, _)| mask | 1 << id);
        Candidates { all: lineage || conditions.contains_key(&None), mask, by_category }
    }

    /// The events of a bundle some predicate may run on: the replay reader decodes the
    /// projected fields of these only (the engine never reads the others').
    pub fn of(bundle: &Bundle) -> Candidates {
        Candidates::new(bundle.functions.categories.len(), &event_conditions(bundle), bundle.lineage.is_some())
    }

    fn contains(&self, event: &Event) -> bool {
        self.has(&event.categories)
    }

    /// Whether an event of these categories is a candidate.
    #[inline]
    pub fn has(&self, categories: &Categories) -> bool {
        self.all || categories.any(self.mask, |id| self.by_category.get(id as usize).copied().unwrap_or(false))
    }
}

/// Writes one event's fields (`slots`: each bundle field's slot, if it is read, and
/// folded slot) and categories at `position` of the batch, payloads in `area`. Returns
/// false when they do not fit. Inlined into the batch loop: as a call, passing its
/// seven arguments and saving registers cost a third of its instructions
/// (`Engine::run` on the one-rule bench: 22.7 → 20.0 M instructions).
#[inline(always)]
fn write_fields(memory: &mut [u8], slots: &[(Option<u32>, Option<u32>)], layout: Layout, event: &Event, position: usize, area: &mut Area) -> bool {
    let slot_base = layout.slots_offset as usize + position * (layout.slot_count * SLOT_SIZE) as usize;
    for (field, (slot, folded)) in slots.iter().enumerate() {
        let value = event.fields.get(field).and_then(Option::as_ref).unwrap_or(&Value::Null);
        if let Some(slot) = slot
            && guest::write(memory, slot_base + *slot as usize * SLOT_SIZE as usize, value, area).is_err()
        {
            return false;
        }
        if let Some(folded) = folded
            && guest::write_folded(memory, slot_base + *folded as usize * SLOT_SIZE as usize, value, area).is_err()
        {
            return false;
        }
    }
    let categories = layout.categories_offset as usize + position * (4 + 4 * layout.category_capacity) as usize;
    let capacity = layout.category_capacity as usize;
    let Some((count, ids)) = memory.get_mut(categories..categories + 4 + 4 * capacity).and_then(|list| list.split_first_chunk_mut::<4>()) else {
        return false;
    };
    *count = (event.categories.write_ids(ids) as u32).to_le_bytes();
    true
}

/// Events, their fields and their strings are separate allocations: without asking
/// for them ahead, writing a batch waits on memory for each. The field vector of the
/// candidate `FIELDS_AHEAD` places ahead (in `write_batch`'s list) is fetched first,
/// then `VALUES_AHEAD` places ahead (its field vector now cached) the strings and
/// arrays it points to. Only for candidates: the others are never written, and fetching
/// what they point to would cost a load and a cache line each for nothing.
const FIELDS_AHEAD: usize = 16;
const VALUES_AHEAD: usize = 8;

/// Asks for the strings and arrays an event's fields point to.
#[inline]
fn prefetch_values(event: &Event) {
    for value in event.fields.iter().flatten().take(8) {
        match value {
            Value::Str(text) => crate::cpu::prefetch(text.as_bytes()),
            Value::Array(items) => crate::cpu::prefetch(items.as_slice()),
            _ => {}
        }
    }
}

fn event_field(event: &Event, index: u32) -> Option<&Value> {
    event.fields.get(index as usize).and_then(Option::as_ref)
}

/// Turns `outputs` (emptied) into alerts.
fn emit(rule: usize, outputs: &mut Vec<Output<Found>>, stats: &mut RuleStats, alerts: &mut Vec<Alert>) {
    for output in outputs.drain(..) {
        stats.alerts += 1;
        alerts.push(match output {
            Output::Row(row) => Alert { rule, events: row.item.events, join_key: row.item.join_key, count: row.count, key_count: None },
            Output::Count { key, count, percent } => Alert { rule, events: Vec::new(), join_key: None, count: None, key_count: Some((key, count, percent)) },
        });
    }
}

/// The captures of the batch's event at `position`, if any.
fn captured(batch: &[(usize, crate::custom::Captured)], position: usize) -> Option<Arc<Vec<crate::custom::Captured>>> {
    let found: Vec<crate::custom::Captured> = batch.iter().filter(|(at, _)| *at == position).map(|(_, captured)| captured.clone()).collect();
    (!found.is_empty()).then(|| Arc::new(found))
}

#[cfg(test)]
mod tests {
    /// The engine reads events one after another: each is one cache line, no more.
    #[test]
    fn an_event_is_one_cache_line() {
        assert_eq!((std::mem::size_of::<super::Event>(), std::mem::align_of::<super::Event>()), (64, 64));
    }
}
