//! The join executor: python eql's `join by k [a] [b] ... until [c]` (endgame dialect;
//! Elasticsearch has no `join`), advanced by events in order, in constant time per
//! event and step hit.
//!
//! Like the sequence executor (`sequence::Machine`) it knows nothing of fields or
//! predicates: for each event the caller says which steps the event matches and under
//! which join keys (one key per hit; a step with several keys is several hits), and
//! under which keys it is an `until` event. The keys are `sequence::Key`s, formed by
//! `join_key` under the endgame rules, where null is an ordinary value: null keys join
//! other null keys, as python's dict keys (../shared/guide/eql-semantics.md §4.2).
//!
//! Each semantic choice, and where it comes from (python eql's `_convert_join`, §4.6 of
//! the semantics guide):
//!
//! - **State**: per key, one slot per step (python's `defaultdict(lambda: [None] * size)`).
//!   A key is created by its first step hit.
//! - **First wins**: a hit fills its step's slot only if the slot is empty; a later hit
//!   of a filled slot is ignored (counted as `ignored`). So over `a1 a2 b3`,
//!   `join [a] [b]` gives `[a1, b3]`.
//! - **Completion**: when every slot of a key is filled, the slots are emitted in query
//!   (step) order, not time order (over `b1 a2`, `[a2, b1]`), and the key is deleted.
//! - **One event, several steps**: the hits are taken in step order (python registers
//!   the step callbacks forwards), each on its own slot, so one event may fill several
//!   slots of one key (`join [any] [any]` over `e1` gives `[e1, e1]`); and an event that
//!   completes a key at step *p* and also hits a later step starts a new entry for that
//!   key there (python's `defaultdict` recreates the popped key). Several hits of one
//!   step (several keys) are taken in the order the caller gives them.
//! - **until**: an until event deletes its keys' entries (counted as `ended`) *before*
//!   its step hits, as python registers `close_join_callback` before the steps; an event
//!   that is both an until and a step therefore starts a fresh entry. Completed joins
//!   are not affected.
//! - **No time**: python's `join` has no maxspan and does not look at timestamps; results
//!   come out at completion, in the order of their completing events.
//! - **One-step join**: a hit completes at once and is emitted; no entry is stored (so it
//!   evicts nothing).
//! - **Bounded state** (python has no bound): at most `max_keys` open keys; a new key
//!   beyond the cap evicts the oldest open key (creation order), counted as `evicted`.
//!   Eviction takes keys from the front of a queue kept in creation order; entries of
//!   keys that have since completed or ended are skipped there, and the queue is
//!   compacted when stale entries outnumber live ones, so it stays O(open keys).
//!
//! Cost per event: one hash lookup per step hit and per until key; amortised O(1)
//! besides (eviction and compaction pop each queue entry at most once).

use crate::sequence::Key;
use std::collections::{HashMap, VecDeque};

/// Open keys a join rule keeps by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

#[derive(Clone, Debug)]
pub struct Config {
    /// Steps of the join (at least 1).
    pub steps: usize,
    /// Open keys kept at most (at least 1).
    pub max_keys: usize,
}

/// One event, as the machine sees it.
#[derive(Debug)]
pub struct Input<'a, T> {
    /// The caller's handle of the event (cloned into each slot it fills), returned in
    /// completed joins.
    pub id: &'a T,
    /// (step, key) for every step the event matches, one per key. Steps out of range
    /// are ignored.
    pub hits: &'a [(usize, Key)],
    /// The keys under which the event is an `until` event.
    pub until: &'a [Key],
}

// Only references: copyable whatever `T` is.
impl<T> Clone for Input<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Input<'_, T> {}

/// What happened to join keys so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Keys created (first hit of a key with no open entry; one-step joins included).
    pub started: u64,
    pub completed: u64,
    /// Hits of a slot already filled (first wins).
    pub ignored: u64,
    /// Open keys deleted by an until event.
    pub ended: u64,
    /// Open keys dropped to stay under the cap.
    pub evicted: u64,
}

#[derive(Clone, Debug)]
struct Entry<T> {
    /// One per step, in step order.
    slots: Vec<Option<T>>,
    filled: usize,
    /// Creation number: tells a live queue entry from a stale one.
    serial: u64,
}

/// The open keys of one join rule.
#[derive(Clone, Debug)]
pub struct Machine<T> {
    config: Config,
    keys: HashMap<Key, Entry<T>>,
    /// (key, serial) in creation order: the eviction order.
    order: VecDeque<(Key, u64)>,
    next_serial: u64,
    pub counters: Counters,
}

impl<T: Clone> Machine<T> {
    pub fn new(config: Config) -> Machine<T> {
        let config = Config { steps: config.steps.max(1), max_keys: config.max_keys.max(1) };
        Machine { config, keys: HashMap::new(), order: VecDeque::new(), next_serial: 0, counters: Counters::default() }
    }

    /// Open keys (at least one slot filled, not complete).
    pub fn open(&self) -> usize {
        self.keys.len()
    }

    /// Advances the machine by one event; pushes the completed joins (event handles in
    /// step order) onto `done`.
    pub fn push(&mut self, event: Input<T>, done: &mut Vec<Vec<T>>) {
        for key in event.until {
            if self.keys.remove(key).is_some() {
                self.counters.ended += 1;
            }
        }
        if event.hits.is_sorted_by_key(|(step, _)| *step) {
            for (step, key) in event.hits {
                self.hit(*step, key, event.id, done);
            }
        } else {
            // Step order; hits of one step in the caller's order (a stable sort).
            let mut hits: Vec<&(usize, Key)> = event.hits.iter().collect();
            hits.sort_by_key(|(step, _)| *step);
            for (step, key) in hits {
                self.hit(*step, key, event.id, done);
            }
        }
        self.compact();
    }

    fn hit(&mut self, step: usize, key: &Key, id: &T, done: &mut Vec<Vec<T>>) {
        let steps = self.config.steps;
        if step >= steps {
            return;
        }
        if steps == 1 {
            self.counters.started += 1;
            self.counters.completed += 1;
            done.push(vec![id.clone()]);
            return;
        }
        if !self.keys.contains_key(key) {
            if self.keys.len() >= self.config.max_keys {
                self.evict_oldest();
            }
            let serial = self.next_serial;
            self.next_serial += 1;
            self.keys.insert(key.clone(), Entry { slots: vec![None; steps], filled: 0, serial });
            self.order.push_back((key.clone(), serial));
            self.counters.started += 1;
        }
        let entry = self.keys.get_mut(key).expect("inserted above");
        let slot = &mut entry.slots[step];
        if slot.is_some() {
            self.counters.ignored += 1;
            return;
        }
        *slot = Some(id.clone());
        entry.filled += 1;
        if entry.filled == steps {
            let entry = self.keys.remove(key).expect("looked up above");
            self.counters.completed += 1;
            done.push(entry.slots.into_iter().map(|slot| slot.expect("every slot is filled")).collect());
        }
    }

    fn is_live(&self, key: &Key, serial: u64) -> bool {
        self.keys.get(key).is_some_and(|entry| entry.serial == serial)
    }

    fn evict_oldest(&mut self) {
        while let Some((key, serial)) = self.order.pop_front() {
            if self.is_live(&key, serial) {
                self.keys.remove(&key);
                self.counters.evicted += 1;
                return;
            }
        }
    }

    /// Drops the queue entries of keys that completed or ended once they outnumber the
    /// live ones: each entry is dropped at most once, so this is amortised O(1).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.keys.len() + 16 {
            let order = std::mem::take(&mut self.order);
            self.order = order.into_iter().filter(|(key, serial)| self.is_live(key, *serial)).collect();
        }
    }
}
