//! The engine's multi-event rules (`sequence`, `join`, `sample`): each table of the
//! bundle's `SEQUENCES` section becomes a run holding its executor, fed with the step
//! hits and join keys of each event while the event is still in guest memory.
//!
//! Cross-step references (`event0.x`, `events[1].x`): the value functions of a step's
//! captures run when an event hits the step, and the values travel with the event in
//! the partial match. A step whose condition reads an earlier step has its reading
//! part compiled apart (a role-3 check): for each join key of a hit, the engine looks
//! up the partial waiting for the step, writes its captured values into their slots of
//! the event, and runs the check; a hit whose check is false is no hit for that key.
//! Pipes after a sequence read the captures the same way, when the sequence completes.

use super::{DEADLINE_TICKS, Engine, EventRef, Found, Match};
use crate::guest::{self, Area};
use crate::join_key::KeyRules;
use crate::pipes::Row;
use crate::sequence::{Completed, Config, Flavor, Gap, Key, Machine};
use kestrel_bundle::abi::SLOT_SIZE;
use kestrel_bundle::bundle::{SequenceFlavor, SequenceTable, TableKind};
use kestrel_bundle::semantics::Value;
use std::sync::Arc;

/// An event in a partial match: the event, and the values captured from it (slot,
/// value) for the steps it matched, when the rule captures any.
#[derive(Clone, Debug)]
pub(super) struct StepEvent {
    event: EventRef,
    captured: Option<Arc<[(u32, Value)]>>,
}

/// Buffers [`Engine::advance_sequences`] reuses from event to event.
#[derive(Default)]
pub(super) struct Scratch {
    runs: Vec<usize>,
    hits: Vec<(usize, Key)>,
    until: Vec<Key>,
    missing: Vec<(Gap, Key)>,
    captured: Vec<(u32, Value)>,
    keys: Vec<Key>,
    values: Vec<Value>,
    done: Vec<Completed<StepEvent>>,
}

/// A multi-event rule's executor, and how its join keys are formed.
pub(super) struct SequenceRun {
    pub(super) rule: usize,
    /// Per step, then the until step last: its key value functions and which are
    /// `?optional` (read from the table once, not per hit).
    keys: Vec<(Vec<usize>, Vec<bool>)>,
    /// Per step, then the until step: the slots of its key fields, when every `by`
    /// expression is a field, whole (the key is then read from guest memory directly).
    key_slots: Vec<Option<Vec<u32>>>,
    /// Per step: what the machine calls it (positive steps are numbered apart).
    pub(super) roles: Vec<StepRole>,
    /// Per step: its check predicate (it reads earlier steps), if any.
    checks: Vec<Option<usize>>,
    /// Per step: its captures (value function, slot).
    captures: Vec<Vec<(usize, u32)>>,
    /// The step of each positive step.
    positives: Vec<usize>,
    rules: KeyRules,
    pub(super) machine: Executor,
}

/// The executor of a table, by its kind.
pub(super) enum Executor {
    Sequence(Box<Machine<StepEvent>>),
    Join(crate::join::Machine<EventRef>),
    Sample(crate::sample::Machine<EventRef>),
}

/// A bundle step, for the machine.
#[derive(Clone, Copy, Debug)]
pub(super) enum StepRole {
    /// The n-th positive step.
    Positive(usize),
    Missing(Gap),
}

impl SequenceRun {
    /// The run of a table; `max_state`: the partial matches (join and sample keys) it
    /// keeps at most, and ten times that many buffered sample events.
    pub(super) fn new(table: &SequenceTable, max_state: usize) -> SequenceRun {
        let flavor = match table.flavor {
            SequenceFlavor::Elasticsearch => Flavor::Elasticsearch,
            SequenceFlavor::Endgame => Flavor::Endgame,
        };
        let positives: Vec<usize> = table.steps.iter().enumerate().filter(|(_, step)| !step.missing).map(|(idx, _)| idx).collect();
        let mut seen = 0;
        let roles: Vec<StepRole> = table
            .steps
            .iter()
            .map(|step| match step.missing {
                false => {
                    seen += 1;
                    StepRole::Positive(seen - 1)
                }
                true if seen == 0 => StepRole::Missing(Gap::Leading),
                true if seen == positives.len() => StepRole::Missing(Gap::Trailing),
                true => StepRole::Missing(Gap::Before(seen)),
            })
            .collect();
        let has = |gap: Gap| roles.iter().any(|role| matches!(role, StepRole::Missing(each) if *each == gap));
        let config = Config {
            steps: positives.len(),
            leading: has(Gap::Leading),
            trailing: has(Gap::Trailing),
            maxspan: table.maxspan_ns,
            flavor,
            max_partials: max_state,
            forks: table.steps.iter().filter(|step| !step.missing).map(|step| step.fork).collect(),
        };
        let keys = table.steps.iter().chain(&table.until).map(|step| step.keys.iter().map(|key| (key.value as usize, key.optional)).unzip()).collect();
        let machine = match table.kind {
            TableKind::Sequence => Executor::Sequence(Box::new(Machine::new(config))),
            TableKind::Join => Executor::Join(crate::join::Machine::new(crate::join::Config { steps: positives.len(), max_keys: max_state })),
            TableKind::Sample { max_samples_per_key } => Executor::Sample(crate::sample::Machine::new(crate::sample::Config {
                filters: positives.len(),
                max_samples_per_key: max_samples_per_key as usize,
                max_keys: max_state,
                max_events: max_state.saturating_mul(10),
            })),
        };
        let key_slots = table.steps.iter().chain(&table.until).map(|step| step.keys.iter().map(|key| key.slot).collect::<Option<Vec<u32>>>()).collect();
        SequenceRun {
            rule: table.rule as usize,
            keys,
            key_slots,
            roles,
            checks: table.steps.iter().map(|step| step.check.map(|check| check as usize)).collect(),
            captures: table.steps.iter().map(|step| step.captures.iter().map(|capture| (capture.value as usize, capture.slot)).collect()).collect(),
            positives,
            rules: KeyRules { flavor, fold_case: table.fold_case },
            machine,
        }
    }

    /// The check predicate of a step (it reads earlier steps), if any.
    pub(super) fn check_of(&self, step: usize) -> Option<usize> {
        self.checks.get(step).copied().flatten()
    }

    /// Whether a trailing missing step makes results wait for time to pass.
    pub(super) fn is_clocked(&self) -> bool {
        self.roles.iter().any(|role| matches!(role, StepRole::Missing(Gap::Trailing)))
    }
}

impl Engine {
    /// Feeds one event (the batch's event `event`) to the multi-event rules whose steps
    /// it hits (`steps`: run, step or `None` for until), with the join keys its value
    /// functions give; completed sequences become matches.
    pub(super) fn advance_sequences(&mut self, steps: &[(usize, Option<usize>)], event: i32, item: &EventRef, matches: &mut Vec<Match>) {
        // Buffers kept from event to event: no allocation per event but the keys'.
        let mut scratch = std::mem::take(&mut self.sequence_scratch);
        let Scratch { runs, hits, until, missing, captured, keys, values, done } = &mut scratch;
        runs.clear();
        runs.extend(steps.iter().map(|(run, _)| *run));
        runs.sort_unstable();
        runs.dedup();
        for &run in runs.iter() {
            hits.clear();
            until.clear();
            missing.clear();
            captured.clear();
            for (_, step) in steps.iter().filter(|(each, _)| *each == run) {
                let spec = step.unwrap_or(self.sequences[run].keys.len() - 1);
                let rule = self.sequences[run].rule;
                self.step_keys(run, spec, event, keys, values);
                match step.map(|step| (step, self.sequences[run].roles[step])) {
                    Some((step, StepRole::Positive(position))) => {
                        if let Some(check) = self.sequences[run].checks[step] {
                            keys.retain(|key| self.check_step(run, position, check, key, event));
                        }
                        if !keys.is_empty() {
                            for idx in 0..self.sequences[run].captures[step].len() {
                                let (function, slot) = self.sequences[run].captures[step][idx];
                                captured.push((slot, self.value_of(rule, function, event)));
                            }
                        }
                        hits.extend(keys.drain(..).map(|key| (position, key)));
                    }
                    Some((_, StepRole::Missing(gap))) => missing.extend(keys.drain(..).map(|key| (gap, key))),
                    None => until.append(keys),
                }
            }
            match &mut self.sequences[run].machine {
                Executor::Sequence(machine) => {
                    let id = StepEvent { event: item.clone(), captured: (!captured.is_empty()).then(|| Arc::from(&captured[..])) };
                    let input = crate::sequence::Input { id: &id, timestamp: item.timestamp, hits, until, missing };
                    machine.push(input, done);
                    if !done.is_empty() {
                        let completed = std::mem::take(done);
                        self.sequence_results(run, completed, event, matches);
                    }
                }
                Executor::Join(machine) => {
                    let mut joined = Vec::new();
                    machine.push(crate::join::Input { id: item, hits, until }, &mut joined);
                    let results = joined.into_iter().map(|events| Found { events, join_key: None }).collect();
                    self.found(run, results, matches);
                }
                Executor::Sample(machine) => {
                    let mut samples = Vec::new();
                    machine.push(crate::sample::Input { id: item, hits }, &mut samples);
                    let results =
                        samples.into_iter().map(|sample| Found { events: sample.events, join_key: Some(crate::join_key::decode(&sample.key)) }).collect();
                    self.found(run, results, matches);
                }
            }
            self.count(run);
        }
        self.sequence_scratch = scratch;
    }

    /// The join keys of the batch's event `event` at step `spec` of run `run` (the until
    /// step: `spec` = the number of steps), in `keys`.
    pub(super) fn step_keys(&mut self, run: usize, spec: usize, event: i32, keys: &mut Vec<Key>, values: &mut Vec<Value>) {
        let sequence = &self.sequences[run];
        let (rule, rules) = (sequence.rule, sequence.rules);
        // Fields, whole, read straight from the event's slots; otherwise (and for
        // nulls, arrays, folded strings) through the value functions.
        let direct = sequence.key_slots[spec].as_ref().is_some_and(|slots| {
            let layout = self.layout;
            let base = layout.slots_offset as usize + event as usize * (layout.slot_count * SLOT_SIZE) as usize;
            let addresses = slots.iter().map(|slot| base + *slot as usize * SLOT_SIZE as usize);
            crate::join_key::key_from_slots(self.memory.data(&self.store), addresses, rules, keys)
        });
        if !direct {
            values.clear();
            for idx in 0..self.sequences[run].keys[spec].0.len() {
                let id = self.sequences[run].keys[spec].0[idx];
                let value = self.value_of(rule, id, event);
                values.push(value);
            }
            let dropped = crate::join_key::keys(values, &self.sequences[run].keys[spec].1, rules, keys);
            self.stats.rules[rule].keys_dropped += dropped as u64;
        }
    }

    /// The check of a step that reads earlier steps, for the partial waiting for it
    /// under `key`: false when there is none.
    pub(super) fn check_step(&mut self, run: usize, position: usize, check: usize, key: &Key, event: i32) -> bool {
        let Executor::Sequence(machine) = &self.sequences[run].machine else { return false };
        let Some(partial) = machine.peek(position, key) else { return false };
        let partial: Vec<StepEvent> = partial.to_vec();
        self.write_captures(run, &partial, event);
        self.store.set_epoch_deadline(DEADLINE_TICKS);
        match self.predicates[check].call(&mut self.store, event) {
            Ok(truth) => truth == 1,
            Err(_) => {
                let rule = self.sequences[run].rule;
                self.stats.rules[rule].traps += 1;
                false
            }
        }
    }

    /// Writes the values captured from a partial's events into their slots of the
    /// batch's event `event`, strings into the data region after the batch's own.
    fn write_captures(&mut self, run: usize, partial: &[StepEvent], event: i32) {
        let layout = self.layout;
        let base = layout.slots_offset as usize + event as usize * (layout.slot_count * SLOT_SIZE) as usize;
        let mut area = Area::new(self.spare_data, layout.data_offset as usize + layout.data_capacity as usize);
        let sequence = &self.sequences[run];
        let memory = self.memory.data_mut(&mut self.store);
        for (position, step_event) in partial.iter().enumerate() {
            let Some(captured) = &step_event.captured else { continue };
            let Some(own) = sequence.positives.get(position).map(|step| &sequence.captures[*step]) else { continue };
            for (slot, value) in captured.iter() {
                if !own.iter().any(|(_, each)| each == slot) {
                    continue;
                }
                let at = base + *slot as usize * SLOT_SIZE as usize;
                if guest::write(memory, at, value, &mut area).is_err() {
                    // No room left in the data region: the value reads as null.
                    let _ = guest::write(memory, at, &Value::Null, &mut area);
                    self.stats.captures_dropped += 1;
                }
            }
        }
    }

    /// Releases the results of the sequence rules with a trailing missing step whose
    /// window has closed at `now`.
    pub(super) fn release_sequences(&mut self, now: i64, matches: &mut Vec<Match>) {
        for idx in 0..self.clocked.len() {
            let run = self.clocked[idx];
            let mut done = Vec::new();
            if let Executor::Sequence(machine) = &mut self.sequences[run].machine {
                machine.release(now, &mut done);
            }
            self.sequence_results(run, done, 0, matches);
        }
    }

    /// The end of the input: the sequences still waiting for their window.
    pub(super) fn finish_sequences(&mut self, matches: &mut Vec<Match>) {
        self.spare_data = self.layout.data_offset as usize;
        for run in 0..self.sequences.len() {
            let mut done = Vec::new();
            if let Executor::Sequence(machine) = &mut self.sequences[run].machine {
                machine.finish(&mut done);
            }
            self.sequence_results(run, done, 0, matches);
        }
    }

    /// Completed sequences of a run, as matches of its rule, with what its pipes need
    /// (computed on the batch's event `event`, with the sequence's captures written).
    fn sequence_results(&mut self, run: usize, done: Vec<Completed<StepEvent>>, event: i32, matches: &mut Vec<Match>) {
        if done.is_empty() {
            self.count(run);
            return;
        }
        let rule = self.sequences[run].rule;
        let piped = !self.rules[rule].filters.is_empty() || !self.rules[rule].keys.is_empty();
        self.count(run);
        for Completed { key, events } in done {
            self.stats.rules[rule].matches += 1;
            if piped {
                self.write_captures(run, &events, event);
            }
            // A sequence without `by` has an empty key: no join key in its alert.
            let join_key = (!key.is_empty()).then(|| crate::join_key::decode(&key));
            let item = Found { events: events.into_iter().map(|step| step.event).collect(), join_key };
            let row = if piped { self.pipe_row(rule, event, item) } else { Row { item, filters: Vec::new(), keys: Vec::new(), count: None } };
            matches.push(Match { rule, row });
        }
    }

    /// Results of a run, as matches of its rule.
    fn found(&mut self, run: usize, results: Vec<Found>, matches: &mut Vec<Match>) {
        let rule = self.sequences[run].rule;
        self.count(run);
        for item in results {
            self.stats.rules[rule].matches += 1;
            matches.push(Match { rule, row: Row { item, filters: Vec::new(), keys: Vec::new(), count: None } });
        }
    }

    /// Copies a run's executor counters to its rule's statistics.
    fn count(&mut self, run: usize) {
        let stats = &mut self.stats.rules[self.sequences[run].rule];
        match &self.sequences[run].machine {
            Executor::Sequence(machine) => stats.sequence = machine.counters,
            Executor::Join(machine) => stats.join = machine.counters,
            Executor::Sample(machine) => stats.sample = machine.counters,
        }
    }
}
