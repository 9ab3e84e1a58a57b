//! The sequence executor: the per-key partial matches of one `sequence` rule, advanced
//! by events in timestamp order, in constant time per event and step hit.
//!
//! The machine knows nothing of fields or predicates: for each event the caller says
//! which steps the event matches and under which join keys (one key per hit; a
//! multi-value key is several hits of the same step), and under which keys it is an
//! `until` event. What it keeps, for each step *s* > 0 and key, is at most one partial
//! match waiting for step *s*: the latest one (a newer partial for the same step and key
//! replaces it, as in both reference engines).
//!
//! - **maxspan** is inclusive and measured from a partial's first event: a partial
//!   whose first event is more than `maxspan` before the hit does not advance, and is
//!   dropped (counted as expired).
//! - **until**: in the Elasticsearch flavour an until event ends the partials of its
//!   key after the event's own step hits (an event that is both the last step and the
//!   until completes); in the endgame flavour (python eql) before them.
//! - **fork** (endgame): a hit of a `fork` step advances a copy of the partial waiting
//!   for it; the original stays and may be advanced again (python eql copies the list
//!   instead of popping it). Copies expire by their first event through a heap of
//!   their own, since they are created later than their first event.
//! - **Expiry** walks a queue of partials in creation order from the front, so it is
//!   amortised O(1) per event; never a scan over the open partials. Stale queue entries
//!   (partials that advanced to completion or were replaced) are skipped lazily.
//! - **Bounded state**: at most `max_partials` open partials; a new one beyond the cap
//!   evicts the oldest (deterministically, creation order), counted. The same cap
//!   bounds the keys of leading missing steps and the sequences waiting for their
//!   trailing window.
//! - **Missing events** (`![...]`), as Elasticsearch: the machine matches the positive
//!   steps as if the missing ones were not there, and rules a completed sequence out
//!   when an event of a missing step, under the sequence's key, falls in the step's
//!   gap: strictly between the events of the positive steps around it; for leading and
//!   trailing missing steps, within a maxspan-wide window (docs/sequences.md). A
//!   partial whose gap was hit keeps advancing (it still takes its place under "latest
//!   wins"), and is dropped when it completes. A sequence with a trailing missing step
//!   is released only when its window has closed (an event past it, or the end of the
//!   input: [`Machine::finish`]), never early.

mod missing;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// Open partial matches a sequence rule keeps by default.
pub const DEFAULT_MAX_PARTIALS: usize = 100_000;

/// A join key, canonically encoded: equal keys have equal bytes.
pub type Key = std::sync::Arc<[u8]>;

/// Where the two reference engines differ, for the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Elasticsearch,
    Endgame,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Positive (not missing) steps after `runs=N` unrolling (at least 1).
    pub steps: usize,
    /// Whether missing steps come before the first positive step.
    pub leading: bool,
    /// Whether missing steps come after the last positive step.
    pub trailing: bool,
    /// Inclusive, in timestamp units (nanoseconds); `None`: no limit.
    pub maxspan: Option<u64>,
    pub flavor: Flavor,
    /// Open partial matches kept at most (at least 1).
    pub max_partials: usize,
    /// Per positive step: `fork` (endgame): a hit of the step advances a copy of the
    /// partial waiting for it, which stays. Empty: no step forks.
    pub forks: Vec<bool>,
}

/// One event, as the machine sees it.
#[derive(Debug)]
pub struct Input<'a, T> {
    /// The caller's handle of the event (cloned into each partial it joins), returned in
    /// completed matches.
    pub id: &'a T,
    pub timestamp: i64,
    /// (step, key) for every step the event matches, one per key.
    pub hits: &'a [(usize, Key)],
    /// The keys under which the event is an `until` event.
    pub until: &'a [Key],
    /// (gap, key) for every missing step the event matches, one per key.
    pub missing: &'a [(Gap, Key)],
}

/// A completed sequence: its join key and the events of its positive steps, in step
/// order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed<T> {
    pub key: Key,
    pub events: Vec<T>,
}

/// Where a missing step stands among the positive steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// Before the first positive step.
    Leading,
    /// Between positive steps `s - 1` and `s`.
    Before(usize),
    /// After the last positive step.
    Trailing,
}

// Only references and numbers: copyable whatever `T` is.
impl<T> Clone for Input<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Input<'_, T> {}

/// What happened to partial matches so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub started: u64,
    pub completed: u64,
    /// Replaced by a newer partial waiting for the same step under the same key.
    pub replaced: u64,
    /// Past the maxspan.
    pub expired: u64,
    /// Ended by an until event.
    pub ended: u64,
    /// Dropped to stay under the cap (partials, leading-step keys, sequences waiting
    /// for their trailing window).
    pub evicted: u64,
    /// Completed, then ruled out by an event of a missing step.
    pub ruled_out: u64,
    /// Copies made by `fork` steps (each a new open partial).
    pub forked: u64,
}

#[derive(Clone, Debug)]
struct Partial<T> {
    /// The events so far, in step order.
    events: Vec<T>,
    first: i64,
    /// Timestamp of its latest event.
    last: i64,
    /// The latest leading missing hit before its first event.
    lead: Option<i64>,
    /// The earliest hit of a missing step in the gap it waits in.
    gap_hit: Option<i64>,
    /// A missing step's gap was hit: it advances, but will not be a result.
    ruled_out: bool,
    /// The step it waits for (its place in `waiting`).
    stage: usize,
    key: Key,
    /// Creation number: tells a live queue entry from a stale one.
    serial: u64,
}

/// The open partial matches of one sequence rule.
#[derive(Clone, Debug)]
pub struct Machine<T> {
    config: Config,
    /// `waiting[s]`: key → slot of the partial waiting for step `s` (`waiting[0]` unused).
    waiting: Vec<HashMap<Key, usize>>,
    slots: Vec<Option<Partial<T>>>,
    free: Vec<usize>,
    /// (slot, serial) in creation order: the eviction order, and the expiry order of
    /// partials started by a step-0 hit (created in first-event order).
    order: VecDeque<(usize, u64)>,
    /// (first event, serial, slot) of the copies made by `fork`, whose first event is
    /// older than their creation: their expiry order.
    forked: BinaryHeap<Reverse<(i64, u64, usize)>>,
    live: usize,
    next_serial: u64,
    leading: missing::Leading,
    trailing: missing::Trailing<T>,
    pub counters: Counters,
}

impl<T: Clone> Machine<T> {
    pub fn new(config: Config) -> Machine<T> {
        let config = Config { steps: config.steps.max(1), max_partials: config.max_partials.max(1), ..config };
        Machine {
            waiting: vec![HashMap::new(); config.steps],
            config,
            slots: Vec::new(),
            free: Vec::new(),
            order: VecDeque::new(),
            forked: BinaryHeap::new(),
            live: 0,
            next_serial: 0,
            leading: missing::Leading::default(),
            trailing: missing::Trailing::default(),
            counters: Counters::default(),
        }
    }

    /// Open partial matches.
    pub fn open(&self) -> usize {
        self.live
    }

    /// The events so far of the partial waiting for `step` under `key`, if one is
    /// (what a later step's condition reads, through the captures they carry).
    pub fn peek(&self, step: usize, key: &Key) -> Option<&[T]> {
        let slot = *self.waiting.get(step)?.get(key)?;
        self.slots[slot].as_ref().map(|partial| partial.events.as_slice())
    }

    /// Whether a hit of the last step under `key` at `now` would complete a match now,
    /// as [`Machine::push`] then [`Machine::complete`] would decide it: a partial waits
    /// for the step within its maxspan, no missing step's hit rules it out (in a gap it
    /// passed or the one it waits in, or a leading hit within maxspan), and no trailing
    /// window makes the result wait. (The exec hook asks before the event exists;
    /// nothing changes.)
    pub fn would_complete(&self, key: &Key, now: i64) -> bool {
        let Config { steps, leading, trailing, .. } = self.config;
        if trailing {
            return false;
        }
        let last = steps - 1;
        if last == 0 {
            let lead = if leading { self.leading.before(key, now) } else { None };
            return lead.is_none_or(|lead| self.past_maxspan(lead, now));
        }
        let Some(slot) = self.waiting[last].get(key) else { return false };
        self.slots[*slot].as_ref().is_some_and(|partial| {
            let ruled_out = partial.ruled_out
                || partial.gap_hit.is_some_and(|hit| hit < now)
                || (leading && partial.lead.is_some_and(|lead| !self.past_maxspan(lead, now)));
            !ruled_out && !self.past_maxspan(partial.first, now)
        })
    }

    /// Entries of the expiry queue, stale ones included (bounded by twice the open
    /// partials, plus a constant).
    pub fn queued(&self) -> usize {
        self.order.len()
    }

    /// Completed sequences waiting for their trailing window to close.
    pub fn waiting(&self) -> usize {
        self.trailing.len()
    }

    /// Advances the machine by one event (events come in timestamp order); pushes the
    /// completed matches (event ids of the positive steps, in step order) onto `done`.
    pub fn push(&mut self, event: Input<T>, done: &mut Vec<Completed<T>>) {
        self.expire(event.timestamp);
        self.release(event.timestamp, done);
        for (gap, key) in event.missing {
            self.missing_hit(*gap, key, event.timestamp);
        }
        if self.config.flavor == Flavor::Endgame {
            self.end(event.until);
        }
        for step in (0..self.config.steps).rev() {
            for (_, key) in event.hits.iter().filter(|(hit, _)| *hit == step) {
                self.hit(step, key, event, done);
            }
        }
        if self.config.flavor == Flavor::Elasticsearch {
            self.end(event.until);
        }
    }

    fn hit(&mut self, step: usize, key: &Key, event: Input<T>, done: &mut Vec<Completed<T>>) {
        let last = self.config.steps - 1;
        if step == 0 {
            if last == 0 {
                self.counters.started += 1;
                let lead = if self.config.leading { self.leading.before(key, event.timestamp) } else { None };
                let only = Partial {
                    events: vec![event.id.clone()],
                    first: event.timestamp,
                    last: event.timestamp,
                    lead,
                    gap_hit: None,
                    ruled_out: false,
                    stage: 0,
                    key: key.clone(),
                    serial: 0,
                };
                self.complete(only, done);
            } else {
                self.start(key, event);
            }
            return;
        }
        // Taken out of its wait at once (one hash lookup): it advances or expires; a
        // fork step puts it back.
        let Some(slot) = self.waiting[step].remove(key) else { return };
        let partial = self.slots[slot].as_ref().expect("a waiting slot holds a partial");
        if self.past_maxspan(partial.first, event.timestamp) {
            self.counters.expired += 1;
            self.drop_slot(slot);
            return;
        }
        let advance = |partial: &mut Partial<T>| {
            partial.events.push(event.id.clone());
            partial.last = event.timestamp;
            if partial.gap_hit.take().is_some_and(|hit| hit < event.timestamp) {
                partial.ruled_out = true;
            }
        };
        let fork = self.config.forks.get(step).copied().unwrap_or(false);
        if fork {
            self.waiting[step].insert(key.clone(), slot);
        }
        if fork && step == last {
            // The copy completes at once: it needs no slot.
            self.counters.forked += 1;
            let mut copy = self.slots[slot].clone().expect("checked above");
            advance(&mut copy);
            self.complete(copy, done);
            return;
        }
        let slot = if fork { self.fork(slot) } else { slot };
        let partial = self.slots[slot].as_mut().expect("checked above");
        advance(partial);
        if step == last {
            let partial = self.slots[slot].take().expect("checked above");
            self.free.push(slot);
            self.live -= 1;
            self.complete(partial, done);
        } else {
            partial.stage = step + 1;
            self.wait(step + 1, key.clone(), slot);
        }
    }

    /// A new partial from a step-0 hit, waiting for step 1.
    fn start(&mut self, key: &Key, event: Input<T>) {
        if self.live >= self.config.max_partials {
            self.evict_oldest();
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        let lead = if self.config.leading { self.leading.before(key, event.timestamp) } else { None };
        let mut events = Vec::with_capacity(self.config.steps);
        events.push(event.id.clone());
        let partial =
            Partial { events, first: event.timestamp, last: event.timestamp, lead, gap_hit: None, ruled_out: false, stage: 1, key: key.clone(), serial };
        let slot = self.place(partial);
        self.counters.started += 1;
        self.wait(1, key.clone(), slot);
    }

    /// Puts a new open partial in a free slot and at the back of the creation-order
    /// queue; returns the slot.
    fn place(&mut self, partial: Partial<T>) -> usize {
        let serial = partial.serial;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(partial);
                slot
            }
            None => {
                self.slots.push(Some(partial));
                self.slots.len() - 1
            }
        };
        self.live += 1;
        self.order.push_back((slot, serial));
        // Without a maxspan nothing pops entries of completed partials from the front:
        // drop stale entries in bulk so the queue stays within twice the open partials
        // (amortised constant per partial).
        if self.order.len() > 2 * self.live + 64 {
            let slots = &self.slots;
            self.order.retain(|(slot, serial)| slots[*slot].as_ref().is_some_and(|partial| partial.serial == *serial));
        }
        slot
    }

    /// A copy of the partial in `slot` (which stays where it waits), in a slot of its
    /// own, counted as open; returns that slot.
    fn fork(&mut self, slot: usize) -> usize {
        let original = self.slots[slot].as_ref().expect("a waiting slot holds a partial");
        let serial = self.next_serial;
        self.next_serial += 1;
        let copy = Partial { serial, events: original.events.clone(), key: original.key.clone(), ..*original };
        if self.live >= self.config.max_partials {
            self.evict_oldest();
        }
        let first = copy.first;
        let slot = self.place(copy);
        self.counters.forked += 1;
        self.forked.push(Reverse((first, serial, slot)));
        // Without a maxspan nothing pops the heap: keep it within twice the open partials.
        if self.forked.len() > 2 * self.live + 64 {
            let slots = &self.slots;
            self.forked.retain(|Reverse((_, serial, slot))| slots[*slot].as_ref().is_some_and(|partial| partial.serial == *serial));
        }
        slot
    }

    /// Puts the partial in `slot` in wait for `stage`, replacing any other there.
    fn wait(&mut self, stage: usize, key: Key, slot: usize) {
        if let Some(previous) = self.waiting[stage].insert(key, slot) {
            self.counters.replaced += 1;
            self.drop_slot(previous);
        }
    }

    /// A sequence whose positive steps are all matched: a result now, ruled out, or
    /// left to wait for its trailing window.
    fn complete(&mut self, partial: Partial<T>, done: &mut Vec<Completed<T>>) {
        let Config { leading, trailing, max_partials, .. } = self.config;
        if partial.ruled_out {
            self.counters.ruled_out += 1;
            return;
        }
        if trailing {
            // Ruled out by a trailing hit at most maxspan after the window's start:
            // the latest leading hit when there are leading steps (none: nothing can
            // rule it out), else the first event.
            let reference = if leading { partial.lead } else { Some(partial.first) };
            if self.trailing.len() >= max_partials && self.trailing.evict_oldest() {
                self.counters.evicted += 1;
            }
            self.trailing.push(partial.events, partial.key, partial.last, reference);
            return;
        }
        if leading && partial.lead.is_some_and(|lead| !self.past_maxspan(lead, partial.last)) {
            self.counters.ruled_out += 1;
            return;
        }
        self.counters.completed += 1;
        done.push(Completed { key: partial.key, events: partial.events });
    }

    /// An event of a missing step, under `key`.
    fn missing_hit(&mut self, gap: Gap, key: &Key, now: i64) {
        match gap {
            Gap::Leading => {
                if self.leading.len() >= self.config.max_partials && self.leading.before(key, i64::MAX).is_none() && self.leading.evict_oldest() {
                    self.counters.evicted += 1;
                }
                self.leading.record(key, now);
            }
            Gap::Before(step) => {
                let Some(&slot) = self.waiting.get(step).and_then(|waiting| waiting.get(key)) else { return };
                let partial = self.slots[slot].as_mut().expect("a waiting slot holds a partial");
                if now > partial.last {
                    partial.gap_hit = Some(partial.gap_hit.map_or(now, |hit| hit.min(now)));
                }
            }
            Gap::Trailing => {
                let maxspan = self.config.maxspan;
                let in_window = |reference: i64, now: i64| !past(maxspan, reference, now);
                self.counters.ruled_out += self.trailing.hit(key, now, in_window);
            }
        }
    }

    /// Releases the completed sequences whose trailing window has closed at `now`
    /// (in completion order: one still open holds back those behind it).
    pub fn release(&mut self, now: i64, done: &mut Vec<Completed<T>>) {
        if self.trailing.len() > 0 {
            let maxspan = self.config.maxspan;
            self.counters.completed += self.trailing.release(|reference| past(maxspan, reference, now), done);
        }
    }

    /// The end of the input: every window is closed. Releases the completed sequences
    /// still waiting for theirs.
    pub fn finish(&mut self, done: &mut Vec<Completed<T>>) {
        self.counters.completed += self.trailing.release(|_| true, done);
    }

    fn past_maxspan(&self, first: i64, now: i64) -> bool {
        past(self.config.maxspan, first, now)
    }

    /// Drops the partials whose first event is past the maxspan at `now`, oldest first.
    fn expire(&mut self, now: i64) {
        let Some(maxspan) = self.config.maxspan else { return };
        if self.config.leading {
            self.leading.expire(|hit| past(Some(maxspan), hit, now));
        }
        while let Some(&(slot, serial)) = self.order.front() {
            match &self.slots[slot] {
                Some(partial) if partial.serial == serial => {
                    if !self.past_maxspan(partial.first, now) {
                        break;
                    }
                    self.counters.expired += 1;
                    self.remove(slot);
                }
                _ => {}
            }
            self.order.pop_front();
        }
        while let Some(&Reverse((first, serial, slot))) = self.forked.peek() {
            let live = self.slots[slot].as_ref().is_some_and(|partial| partial.serial == serial);
            if live {
                if !past(Some(maxspan), first, now) {
                    break;
                }
                self.counters.expired += 1;
                self.remove(slot);
            }
            self.forked.pop();
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((slot, serial)) = self.order.pop_front() {
            if self.slots[slot].as_ref().is_some_and(|partial| partial.serial == serial) {
                self.counters.evicted += 1;
                self.remove(slot);
                return;
            }
        }
    }

    /// Ends every partial waiting under one of `keys`.
    fn end(&mut self, keys: &[Key]) {
        for key in keys {
            for stage in 1..self.config.steps {
                if let Some(slot) = self.waiting[stage].remove(key) {
                    self.counters.ended += 1;
                    self.drop_slot(slot);
                }
            }
        }
    }

    /// Removes the partial in `slot` from its wait and frees the slot.
    fn remove(&mut self, slot: usize) {
        if let Some(partial) = &self.slots[slot] {
            let (stage, key) = (partial.stage, partial.key.clone());
            if self.waiting[stage].get(&key) == Some(&slot) {
                self.waiting[stage].remove(&key);
            }
        }
        self.drop_slot(slot);
    }

    /// Frees `slot` (already out of `waiting`).
    fn drop_slot(&mut self, slot: usize) {
        if self.slots[slot].take().is_some() {
            self.free.push(slot);
            self.live -= 1;
        }
    }
}

/// Whether `now` is more than `maxspan` after `first` (never, without a maxspan).
fn past(maxspan: Option<u64>, first: i64, now: i64) -> bool {
    maxspan.is_some_and(|maxspan| now.saturating_sub(first) > 0 && now.saturating_sub(first) as u64 > maxspan)
}
