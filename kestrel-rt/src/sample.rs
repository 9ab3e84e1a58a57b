//! The sample executor: Elasticsearch's `sample by k1, k2 [q1] [q2] ...`, run as a stream
//! (events in any order), with bounded state.
//!
//! Like the sequence executor (`sequence::Machine`) it knows nothing of fields or
//! predicates: for each event the caller says which filters the event matches and under
//! which join keys, already formed (`join_key`, Elasticsearch rules). So keys that come
//! from differently named fields per filter (`[a] by os [b] by op_sys`) are the caller's
//! business: equal values give equal keys whatever field they come from.
//!
//! Each semantic choice, and where it comes from (Elasticsearch's `SampleIterator` and
//! `SampleQueryRequest`, x-pack/plugin/eql; its QA suites `test_sample.toml` and
//! `test_sample_multi.toml`; ../shared/guide/eql-semantics.md §4.6):
//!
//! - **A sample** of a key is one event per filter, in filter order, all distinct (one
//!   event matching two filters cannot fill both: ES `matchSamples` skips a hit already
//!   in the partial sample). Samples of one key may share events (QA
//!   `twoSamplesPerKeyOutOfThree`: `[1, 3]` and `[2, 3]`).
//! - **Null keys**, as ES: a null (missing) value of a plain `by` field takes the event
//!   out of that filter (no composite bucket; QA `nullValueAsJoinKey` has no sample),
//!   while for a `?optional` field null is a key value like any other (ES's
//!   `missingBucket` and `must_not exists`; QA `optionalFieldAsKeyAndFirstFilter` and
//!   `oneSamplePerKey_optional` return samples whose join key is null). Both are the key
//!   encoder's rules (`join_key::keys`, Elasticsearch flavour); here a key is bytes.
//! - **Candidates**: per key and filter, ES fetches `filters + max_samples_per_key - 1`
//!   matching events (`SampleQueryRequest`, enough for that many samples). Here they are
//!   the *earliest* such events (the first to arrive); later ones are dropped (counted
//!   as `full`).
//! - **Which samples**: ES enumerates candidate tuples by backtracking, filter by
//!   filter, each filter's candidates in order, and keeps the first
//!   `max_samples_per_key` (default 1). ES's candidate order is the index's, so its pick
//!   is not deterministic (the QA lists alternatives). Here a key's samples are emitted
//!   as soon as they exist: after each event, the key's tuples not yet emitted, in that
//!   backtracking order over the candidates in arrival order, until the key has
//!   `max_samples_per_key` samples. (The tuples new at an event are those that contain
//!   it.) With the QA data fed in file order and the samples put in ES's order (below),
//!   this gives the first listed alternative in each of the 34 QA cases
//!   (tests/sample.rs). A key that has its samples is done: its later hits are ignored
//!   (counted as `done`) and its buffers are freed.
//! - **When**: a sample is emitted at the event that completes it; ES, a batch search,
//!   returns them all at the end. Nothing is pending at the end of the input.
//! - **Order and `size`**: ES returns samples ordered by join key (the composite
//!   aggregation's order: each key value ascending, null first, strings by bytes,
//!   numbers and dates by value), and `size` keeps the first `size` of them in that
//!   order. The machine emits in completion order and does not apply `size`: the keys
//!   are opaque bytes here, and the first `size` samples in key order are only known at
//!   the end of the input. A batch caller sorts the emitted samples by the typed key
//!   values (stably, which keeps each key's samples in emission order) and truncates
//!   to `size`; a streaming caller treats `size` as a `head`.
//! - **No time**: sample has no maxspan and ignores timestamps.
//! - **Bounded state** (ES bounds it with its circuit breaker): at most `max_keys` keys
//!   (open or done: a done key is remembered so it does not sample again), and at most
//!   `max_events` buffered event handles in all. A new key beyond `max_keys` evicts the
//!   oldest key (creation order); after an event, while more than `max_events` handles
//!   are buffered, the oldest keys are evicted; both counted as `evicted`. An evicted
//!   done key may sample again.
//!
//! Cost per event: its hits grouped by key (quadratic in the hits of one event, which
//! `join_key` bounds), a few hash lookups per distinct key; then, per key, a
//! backtracking search pruned by a bipartite-matching test (so it never explores a dead
//! branch), bounded by the query (filters, candidates, `max_samples_per_key`) and not
//! by the stream; eviction pops keys from the front of a creation-order queue.

use crate::sequence::Key;
use std::collections::{HashMap, VecDeque};

/// Keys (open or done) a sample rule keeps by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Buffered events a sample rule keeps by default, all keys together.
pub const DEFAULT_MAX_EVENTS: usize = 1_000_000;

#[derive(Clone, Debug)]
pub struct Config {
    /// Filters of the sample (at least 1).
    pub filters: usize,
    /// Samples per key (ES `max_samples_per_key`, default 1; at least 1).
    pub max_samples_per_key: usize,
    /// Keys kept at most, open or done (at least 1).
    pub max_keys: usize,
    /// Event handles buffered at most, all keys together.
    pub max_events: usize,
}

impl Config {
    /// Candidates kept per key and filter: as many as ES fetches.
    pub fn candidates(&self) -> usize {
        self.filters.max(1) + self.max_samples_per_key.max(1) - 1
    }
}

/// One event, as the machine sees it.
#[derive(Debug)]
pub struct Input<'a, T> {
    /// The caller's handle of the event (cloned into each key it joins), returned in
    /// samples.
    pub id: &'a T,
    /// (filter, key) for every filter the event matches, one per key. Filters out of
    /// range are ignored.
    pub hits: &'a [(usize, Key)],
}

// Only references: copyable whatever `T` is.
impl<T> Clone for Input<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Input<'_, T> {}

/// One sample: its key and one event per filter, in filter order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample<T> {
    pub key: Key,
    pub events: Vec<T>,
}

/// What happened so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Keys created.
    pub keys: u64,
    /// Samples emitted.
    pub samples: u64,
    /// Hits dropped because the filter already holds its candidates for the key.
    pub full: u64,
    /// Hits of keys that already have `max_samples_per_key` samples.
    pub done: u64,
    /// Keys dropped (oldest first) to stay under `max_keys` or `max_events`.
    pub evicted: u64,
}

#[derive(Clone, Debug)]
struct Entry<T> {
    /// The key's buffered events, each once (an event hitting several filters is one).
    events: Vec<T>,
    /// Per filter, indices into `events`, in arrival order.
    lists: Vec<Vec<usize>>,
    /// The serial of the event last added to `events`.
    last: Option<u64>,
    samples: usize,
}

/// The keys of one sample rule.
#[derive(Clone, Debug)]
pub struct Machine<T> {
    config: Config,
    keys: HashMap<Key, Entry<T>>,
    /// Keys in creation order: the eviction order (keys only leave by eviction).
    order: VecDeque<Key>,
    buffered: usize,
    next_serial: u64,
    pub counters: Counters,
}

impl<T: Clone> Machine<T> {
    pub fn new(config: Config) -> Machine<T> {
        let config =
            Config { filters: config.filters.max(1), max_samples_per_key: config.max_samples_per_key.max(1), max_keys: config.max_keys.max(1), ..config };
        Machine { config, keys: HashMap::new(), order: VecDeque::new(), buffered: 0, next_serial: 0, counters: Counters::default() }
    }

    /// Keys held, open or done.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Event handles buffered, all keys together.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Takes one event (in any order); pushes the samples it completes onto `done`,
    /// keys in the order of their first hit in `event.hits`.
    pub fn push(&mut self, event: Input<T>, done: &mut Vec<Sample<T>>) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let filters = self.config.filters;
        let hits = event.hits;
        for (idx, (filter, key)) in hits.iter().enumerate() {
            let seen = |(earlier, other): &(usize, Key)| *earlier < filters && other == key;
            if *filter >= filters || hits[..idx].iter().any(seen) {
                continue;
            }
            let mine = hits[idx..].iter().filter(|hit| seen(hit)).map(|(filter, _)| *filter);
            self.key_hits(key, mine, serial, event.id, done);
        }
        while self.buffered > self.config.max_events && !self.order.is_empty() {
            self.evict_oldest();
        }
    }

    /// The hits of one key (`filters`, in the caller's order) by the event `serial`.
    fn key_hits(&mut self, key: &Key, filters: impl Iterator<Item = usize>, serial: u64, id: &T, done: &mut Vec<Sample<T>>) {
        if !self.keys.contains_key(key) {
            if self.keys.len() >= self.config.max_keys {
                self.evict_oldest();
            }
            let lists = vec![Vec::new(); self.config.filters];
            self.keys.insert(key.clone(), Entry { events: Vec::new(), lists, last: None, samples: 0 });
            self.order.push_back(key.clone());
            self.counters.keys += 1;
        }
        let candidates = self.config.candidates();
        let wanted = self.config.max_samples_per_key;
        let entry = self.keys.get_mut(key).expect("inserted above");
        let mut added = None;
        for filter in filters {
            if entry.samples >= wanted {
                self.counters.done += 1;
                continue;
            }
            let here = entry.events.len().checked_sub(1).filter(|_| entry.last == Some(serial));
            if here.is_some() && entry.lists[filter].last() == here.as_ref() {
                continue; // the same (filter, key) twice in one event
            }
            if entry.lists[filter].len() >= candidates {
                self.counters.full += 1;
                continue;
            }
            let index = here.unwrap_or_else(|| {
                entry.events.push(id.clone());
                entry.last = Some(serial);
                self.buffered += 1;
                entry.events.len() - 1
            });
            entry.lists[filter].push(index);
            added = Some(index);
        }
        let Some(event) = added else { return };
        for tuple in new_tuples(&entry.lists, entry.events.len(), event, wanted - entry.samples) {
            entry.samples += 1;
            self.counters.samples += 1;
            done.push(Sample { key: key.clone(), events: tuple.into_iter().map(|index| entry.events[index].clone()).collect() });
        }
        if entry.samples >= wanted {
            self.buffered -= entry.events.len();
            entry.events = Vec::new();
            entry.lists = Vec::new();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(key) = self.order.pop_front() {
            let entry = self.keys.remove(&key).expect("the queue holds exactly the live keys");
            self.buffered -= entry.events.len();
            self.counters.evicted += 1;
        }
    }
}

/// Up to `wanted` tuples (one index per filter, all distinct) that contain `event`, in
/// ES's backtracking order: lexicographic by position in each filter's list, filter by
/// filter. `event` is the newest index: where it is a candidate, it is the last one.
fn new_tuples(lists: &[Vec<usize>], events: usize, event: usize, wanted: usize) -> Vec<Vec<usize>> {
    let mut search = Search { lists, event, used: vec![false; events], tuple: Vec::with_capacity(lists.len()), found: Vec::new(), wanted };
    if wanted > 0 && search.completable(0) {
        search.descend(0);
    }
    search.found
}

struct Search<'a> {
    lists: &'a [Vec<usize>],
    event: usize,
    used: Vec<bool>,
    tuple: Vec<usize>,
    found: Vec<Vec<usize>>,
    wanted: usize,
}

impl Search<'_> {
    /// Extends `tuple` (filters before `filter` chosen, and completable) in order.
    fn descend(&mut self, filter: usize) {
        if filter == self.lists.len() {
            self.found.push(self.tuple.clone());
            return;
        }
        for position in 0..self.lists[filter].len() {
            if self.found.len() >= self.wanted {
                return;
            }
            let candidate = self.lists[filter][position];
            if self.used[candidate] {
                continue;
            }
            self.used[candidate] = true;
            self.tuple.push(candidate);
            if self.completable(filter + 1) {
                self.descend(filter + 1);
            }
            self.tuple.pop();
            self.used[candidate] = false;
        }
    }

    /// Whether the filters from `from` on can take distinct unused events, including
    /// `event` if it is not used yet.
    fn completable(&mut self, from: usize) -> bool {
        if self.used[self.event] {
            return self.matchable(from, None);
        }
        for filter in from..self.lists.len() {
            if self.lists[filter].last() == Some(&self.event) {
                self.used[self.event] = true;
                let ok = self.matchable(from, Some(filter));
                self.used[self.event] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }

    /// Whether the filters from `from` on, but `skip`, have a matching into the unused
    /// events (augmenting paths).
    fn matchable(&self, from: usize, skip: Option<usize>) -> bool {
        let mut owner: Vec<Option<usize>> = vec![None; self.used.len()];
        for filter in (from..self.lists.len()).filter(|filter| Some(*filter) != skip) {
            let mut seen = vec![false; self.used.len()];
            if !self.augment(filter, &mut owner, &mut seen) {
                return false;
            }
        }
        true
    }

    fn augment(&self, filter: usize, owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
        for &candidate in &self.lists[filter] {
            if self.used[candidate] || seen[candidate] {
                continue;
            }
            seen[candidate] = true;
            if owner[candidate].is_none_or(|other| self.augment(other, owner, seen)) {
                owner[candidate] = Some(filter);
                return true;
            }
        }
        false
    }
}
