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
//! - **Expiry** walks a queue of partials in creation order from the front, so it is
//!   amortised O(1) per event; never a scan over the open partials. Stale queue entries
//!   (partials that advanced to completion or were replaced) are skipped lazily.
//! - **Bounded state**: at most `max_partials` open partials; a new one beyond the cap
//!   evicts the oldest (deterministically, creation order), counted.

use std::collections::{HashMap, VecDeque};

/// Open partial matches a sequence rule keeps by default.
pub const DEFAULT_MAX_PARTIALS: usize = 100_000;

/// A join key, canonically encoded: equal keys have equal bytes.
pub type Key = Box<[u8]>;

/// Where the two reference engines differ, for the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Elasticsearch,
    Endgame,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Steps after `runs=N` unrolling (at least 1).
    pub steps: usize,
    /// Inclusive, in timestamp units (nanoseconds); `None`: no limit.
    pub maxspan: Option<u64>,
    pub flavor: Flavor,
    /// Open partial matches kept at most (at least 1).
    pub max_partials: usize,
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
    /// Dropped to stay under the cap.
    pub evicted: u64,
}

#[derive(Clone, Debug)]
struct Partial<T> {
    /// The events so far, in step order.
    events: Vec<T>,
    first: i64,
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
    /// (slot, serial) in creation order: the expiry and eviction order.
    order: VecDeque<(usize, u64)>,
    live: usize,
    next_serial: u64,
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
            live: 0,
            next_serial: 0,
            counters: Counters::default(),
        }
    }

    /// Open partial matches.
    pub fn open(&self) -> usize {
        self.live
    }

    /// Advances the machine by one event (events come in timestamp order); pushes the
    /// completed matches (event ids in step order) onto `done`.
    pub fn push(&mut self, event: Input<T>, done: &mut Vec<Vec<T>>) {
        self.expire(event.timestamp);
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

    fn hit(&mut self, step: usize, key: &Key, event: Input<T>, done: &mut Vec<Vec<T>>) {
        let last = self.config.steps - 1;
        if step == 0 {
            if last == 0 {
                self.counters.started += 1;
                self.counters.completed += 1;
                done.push(vec![event.id.clone()]);
            } else {
                self.start(key, event);
            }
            return;
        }
        let Some(&slot) = self.waiting[step].get(key) else { return };
        let partial = self.slots[slot].as_ref().expect("a waiting slot holds a partial");
        if self.past_maxspan(partial.first, event.timestamp) {
            self.counters.expired += 1;
            self.remove(slot);
            return;
        }
        self.waiting[step].remove(key);
        if step == last {
            let mut partial = self.slots[slot].take().expect("checked above");
            self.free.push(slot);
            self.live -= 1;
            partial.events.push(event.id.clone());
            self.counters.completed += 1;
            done.push(partial.events);
        } else {
            let partial = self.slots[slot].as_mut().expect("checked above");
            partial.events.push(event.id.clone());
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
        let partial = Partial { events: vec![event.id.clone()], first: event.timestamp, stage: 1, key: key.clone(), serial };
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
        self.counters.started += 1;
        self.order.push_back((slot, serial));
        self.wait(1, key.clone(), slot);
    }

    /// Puts the partial in `slot` in wait for `stage`, replacing any other there.
    fn wait(&mut self, stage: usize, key: Key, slot: usize) {
        if let Some(previous) = self.waiting[stage].insert(key, slot) {
            self.counters.replaced += 1;
            self.drop_slot(previous);
        }
    }

    fn past_maxspan(&self, first: i64, now: i64) -> bool {
        self.config.maxspan.is_some_and(|maxspan| now.saturating_sub(first) > 0 && now.saturating_sub(first) as u64 > maxspan)
    }

    /// Drops the partials whose first event is past the maxspan at `now`, oldest first.
    fn expire(&mut self, now: i64) {
        if self.config.maxspan.is_none() {
            return;
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
