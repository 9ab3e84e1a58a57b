//! The reorder window of a replay: events in (timestamp, arrival) order, up to a
//! bound, so that input a little out of order runs in timestamp order.

use crate::engine::{Event, Match};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// An event waiting in the reorder window, ordered by (timestamp, arrival).
pub(crate) struct Pending {
    pub timestamp: i64,
    pub arrival: u64,
    pub held: Held,
}

/// What the window holds for an event.
pub(crate) enum Held {
    /// The event, when it must be evaluated in timestamp order (lineage tests or
    /// sequences). Boxed: an entry's size is the larger variant's.
    Event(Box<Event>),
    /// The event's matches, evaluated as it was read: its rules' pipes need order, its
    /// conditions do not. Most events have none, and leave nothing else behind.
    Matches(Vec<Match>),
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.timestamp, self.arrival) == (other.timestamp, other.arrival)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.timestamp, self.arrival).cmp(&(other.timestamp, other.arrival))
    }
}

/// The reorder window: events in (timestamp, arrival) order. Events that arrive in
/// order (the usual case) queue in `ordered` at O(1); the others wait in a heap.
///
/// The window holds up to `reorder_window` events (65,536 by default) and most of them
/// hold nothing (no match): an event in order takes 16 bytes ([`Key`]), and what it
/// holds, if anything, waits in `held`, in the same order. A window of full entries
/// was 40 bytes an event, whose fresh pages cost a tenth of a replay's time.
#[derive(Default)]
pub(crate) struct Window {
    ordered: VecDeque<Key>,
    /// What the keys of `ordered` that hold something hold, in their order.
    held: VecDeque<Held>,
    stragglers: BinaryHeap<Reverse<Pending>>,
}

/// An event of [`Window::ordered`]: its timestamp, its arrival, and whether it holds
/// something (the arrival's top bit: arrivals count events, far below 2⁶³).
#[derive(Clone, Copy)]
struct Key {
    timestamp: i64,
    arrival_and_holds: u64,
}

impl Key {
    const HOLDS: u64 = 1 << 63;

    fn arrival(self) -> u64 {
        self.arrival_and_holds & !Key::HOLDS
    }

    fn holds(self) -> bool {
        self.arrival_and_holds & Key::HOLDS != 0
    }
}

impl Held {
    /// Whether nothing is held (an event without matches).
    fn is_nothing(&self) -> bool {
        matches!(self, Held::Matches(matches) if matches.is_empty())
    }
}

impl Window {
    pub fn len(&self) -> usize {
        self.ordered.len() + self.stragglers.len()
    }

    pub fn push(&mut self, pending: Pending) {
        // Arrivals only grow, so the back is the largest key when its timestamp is.
        if self.ordered.back().is_none_or(|last| last.timestamp <= pending.timestamp) {
            debug_assert!(pending.arrival < Key::HOLDS, "arrivals count events");
            let holds = !pending.held.is_nothing();
            self.ordered.push_back(Key { timestamp: pending.timestamp, arrival_and_holds: pending.arrival | if holds { Key::HOLDS } else { 0 } });
            if holds {
                self.held.push_back(pending.held);
            }
        } else {
            self.stragglers.push(Reverse(pending));
        }
    }

    /// The earliest held event's timestamp.
    pub fn earliest(&self) -> Option<i64> {
        match (self.ordered.front(), self.stragglers.peek()) {
            (Some(first), Some(Reverse(straggler))) => Some(first.timestamp.min(straggler.timestamp)),
            (Some(first), None) => Some(first.timestamp),
            (None, Some(Reverse(straggler))) => Some(straggler.timestamp),
            (None, None) => None,
        }
    }

    /// The earliest event.
    pub fn pop(&mut self) -> Option<Pending> {
        match (self.ordered.front(), self.stragglers.peek()) {
            (Some(first), Some(Reverse(straggler))) if (straggler.timestamp, straggler.arrival) < (first.timestamp, first.arrival()) => {
                self.stragglers.pop().map(|Reverse(pending)| pending)
            }
            (Some(_), _) => self.pop_ordered(),
            (None, _) => self.stragglers.pop().map(|Reverse(pending)| pending),
        }
    }

    fn pop_ordered(&mut self) -> Option<Pending> {
        let key = self.ordered.pop_front()?;
        let held = if key.holds() { self.held.pop_front().expect("a key that holds has its entry") } else { Held::Matches(Vec::new()) };
        Some(Pending { timestamp: key.timestamp, arrival: key.arrival(), held })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Categories, Line};

    #[test]
    fn the_window_pops_in_timestamp_then_arrival_order() {
        let event = |timestamp| Event { timestamp, categories: Categories::default(), fields: Vec::new(), raw: Line::default() };
        let check = |pending: Pending| {
            match &pending.held {
                Held::Event(event) => assert_eq!(event.timestamp as u64, pending.arrival, "an entry comes out with what it held"),
                Held::Matches(matches) => assert!(matches.is_empty() && pending.arrival % 3 == 1, "only entries that held nothing come out with nothing"),
            }
            (pending.timestamp, pending.arrival)
        };
        let mut state: u64 = 7;
        for round in 0..50 {
            let mut window = Window::default();
            let mut keys = Vec::new();
            let mut popped = Vec::new();
            for arrival in 0..200u64 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Mostly increasing, with stragglers and ties, more of them as rounds go.
                let timestamp = arrival as i64 / 3 - ((state >> 33) % (round + 1)) as i64;
                keys.push((timestamp, arrival));
                // A third hold nothing (no match); the others an event stamped with
                // their arrival, which must come out with them.
                let held = if arrival % 3 == 1 { Held::Matches(Vec::new()) } else { Held::Event(Box::new(event(arrival as i64))) };
                window.push(Pending { timestamp, arrival, held });
                if window.len() > 20 {
                    popped.push(check(window.pop().unwrap()));
                }
            }
            while let Some(pending) = window.pop() {
                popped.push(check(pending));
            }
            // Against a plain heap: the same window size gives the same order.
            let mut heap = BinaryHeap::new();
            let mut expected = Vec::new();
            for key in keys {
                heap.push(Reverse(key));
                if heap.len() > 20 {
                    expected.push(heap.pop().unwrap().0);
                }
            }
            expected.extend(std::iter::from_fn(|| heap.pop().map(|Reverse(key)| key)));
            assert_eq!(popped, expected, "round {round}");
        }
    }
}
