//! What missing-event steps (`![...]`) need beyond the partial matches themselves: the
//! latest events of the leading missing steps per key, and the completed sequences
//! that wait for their trailing window to close (docs/sequences.md, "Missing events").

use super::Key;
use std::collections::{HashMap, VecDeque};

/// Per key, the latest timestamps at which an event hit a leading missing step: the
/// latest and the one before it (so that "the latest strictly before *t*" is known
/// even when the latest is *t* itself). Keys whose latest hit is older than the window
/// are dropped from the front of a queue in hit order.
#[derive(Clone, Debug, Default)]
pub(super) struct Leading {
    latest: HashMap<Key, (i64, Option<i64>)>,
    /// (key, timestamp) of each newest hit, in hit order; an entry whose key has had a
    /// newer hit since is stale and skipped.
    order: VecDeque<(Key, i64)>,
}

impl Leading {
    pub(super) fn len(&self) -> usize {
        self.latest.len()
    }

    /// Records a leading-step hit at `timestamp`.
    pub(super) fn record(&mut self, key: &Key, timestamp: i64) {
        match self.latest.get_mut(key) {
            Some((latest, before)) if timestamp > *latest => {
                *before = Some(*latest);
                *latest = timestamp;
            }
            Some((latest, before)) => {
                if timestamp < *latest && before.is_none_or(|before| timestamp > before) {
                    *before = Some(timestamp);
                }
                return;
            }
            None => {
                self.latest.insert(key.clone(), (timestamp, None));
            }
        }
        self.order.push_back((key.clone(), timestamp));
        // Without a window nothing goes stale by time: drop stale entries in bulk so
        // the queue stays within twice the keys (amortised constant per hit).
        if self.order.len() > 2 * self.latest.len() + 16 {
            let latest = &self.latest;
            self.order.retain(|(key, timestamp)| latest.get(key).is_some_and(|(newest, _)| newest == timestamp));
        }
    }

    /// The latest hit strictly before `timestamp`.
    pub(super) fn before(&self, key: &Key, timestamp: i64) -> Option<i64> {
        let (latest, before) = self.latest.get(key)?;
        if *latest < timestamp { Some(*latest) } else { before.filter(|before| *before < timestamp) }
    }

    /// Drops, oldest first, the keys whose latest hit is `stale`.
    pub(super) fn expire(&mut self, stale: impl Fn(i64) -> bool) {
        while let Some((key, timestamp)) = self.order.front() {
            let current = self.latest.get(key).is_some_and(|(latest, _)| latest == timestamp);
            if current {
                if !stale(*timestamp) {
                    break;
                }
                self.latest.remove(key);
            }
            self.order.pop_front();
        }
    }

    /// Drops the key whose latest hit is the oldest; returns whether there was one.
    pub(super) fn evict_oldest(&mut self) -> bool {
        while let Some((key, timestamp)) = self.order.pop_front() {
            if self.latest.get(&key).is_some_and(|(latest, _)| *latest == timestamp) {
                self.latest.remove(&key);
                return true;
            }
        }
        false
    }
}

/// A completed sequence that waits until no trailing missing event can rule it out.
#[derive(Clone, Debug)]
struct Waiting<T> {
    events: Vec<T>,
    key: Key,
    /// Its last event's timestamp: only later events can rule it out.
    last: i64,
    /// The window's start: a trailing hit rules it out while it is at most maxspan
    /// after this; `None`: nothing can (it is accepted, and waits only for its turn).
    reference: Option<i64>,
    ruled_out: bool,
}

/// Completed sequences in completion order, released from the front once their
/// trailing window has closed, so that results keep the order of their last events.
#[derive(Clone, Debug)]
pub(super) struct Trailing<T> {
    queue: VecDeque<Waiting<T>>,
    /// Serial number of `queue[0]`.
    base: u64,
    /// Per key, the serials of its waiting sequences, oldest first.
    by_key: HashMap<Key, VecDeque<u64>>,
}

impl<T> Default for Trailing<T> {
    fn default() -> Self {
        Trailing { queue: VecDeque::new(), base: 0, by_key: HashMap::new() }
    }
}

impl<T> Trailing<T> {
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn push(&mut self, events: Vec<T>, key: Key, last: i64, reference: Option<i64>) {
        let serial = self.base + self.queue.len() as u64;
        self.by_key.entry(key.clone()).or_default().push_back(serial);
        self.queue.push_back(Waiting { events, key, last, reference, ruled_out: false });
    }

    /// A trailing-step hit under `key` at `timestamp`: rules out the key's sequences
    /// it falls in the window of (`in_window(reference, timestamp)`); returns how many.
    pub(super) fn hit(&mut self, key: &Key, timestamp: i64, in_window: impl Fn(i64, i64) -> bool) -> u64 {
        let Some(serials) = self.by_key.get_mut(key) else { return 0 };
        let (queue, base) = (&mut self.queue, self.base);
        let mut ruled_out = 0;
        serials.retain(|serial| {
            let waiting = &mut queue[(serial - base) as usize];
            let out = timestamp > waiting.last && waiting.reference.is_some_and(|reference| in_window(reference, timestamp));
            if out {
                waiting.ruled_out = true;
                waiting.events = Vec::new();
                ruled_out += 1;
            }
            !out
        });
        if serials.is_empty() {
            self.by_key.remove(key);
        }
        ruled_out
    }

    /// Releases, from the front, the sequences whose window is `closed` (all when
    /// `closed` is always true); ruled-out ones are dropped on the way.
    pub(super) fn release(&mut self, closed: impl Fn(i64) -> bool, done: &mut Vec<super::Completed<T>>) -> u64 {
        let mut released = 0;
        while let Some(front) = self.queue.front() {
            if !front.ruled_out && !front.reference.is_none_or(&closed) {
                break;
            }
            let front = self.pop_front().expect("front exists");
            if !front.ruled_out {
                done.push(super::Completed { key: front.key, events: front.events });
                released += 1;
            }
        }
        released
    }

    /// Drops the oldest waiting sequence (to stay under a cap); returns whether it was
    /// still a candidate (not already ruled out).
    pub(super) fn evict_oldest(&mut self) -> bool {
        self.pop_front().is_some_and(|front| !front.ruled_out)
    }

    fn pop_front(&mut self) -> Option<Waiting<T>> {
        let front = self.queue.pop_front()?;
        let serial = self.base;
        self.base += 1;
        if !front.ruled_out
            && let Some(serials) = self.by_key.get_mut(&front.key)
        {
            if serials.front() == Some(&serial) {
                serials.pop_front();
            }
            if serials.is_empty() {
                self.by_key.remove(&front.key);
            }
        }
        Some(front)
    }
}
