//! The reorder window of a replay: events in (timestamp, arrival) order, up to a
//! bound in events and one in bytes, so that input a little out of order runs in
//! timestamp order.

use crate::engine::{Event, EventRef, Match};
use kestrel_bundle::semantics::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// An event waiting in the reorder window, ordered by (timestamp, arrival).
pub(crate) struct Pending {
    pub timestamp: i64,
    pub arrival: u64,
    pub held: Held,
}

impl Pending {
    pub fn new(timestamp: i64, arrival: u64, held: Held) -> Pending {
        Pending { timestamp, arrival, held }
    }
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
/// was 40 bytes an event, whose fresh pages cost a tenth of a replay's time. It counts
/// what its events hold ([`Held::bytes`]) and 16 bytes per event, for the replay's
/// bound on them: an estimate of what input controls, not the exact footprint (an
/// event out of order takes about 40 bytes in the heap, counted as 16).
#[derive(Default)]
pub(crate) struct Window {
    ordered: VecDeque<Key>,
    /// What the keys of `ordered` that hold something hold, in their order, and its bytes.
    held: VecDeque<(Held, usize)>,
    /// Events out of order, with their bytes (measured once, when they come in).
    stragglers: BinaryHeap<Reverse<(Pending, usize)>>,
    bytes: usize,
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

    /// The memory what is held takes, estimated from its contents alone (lengths, not
    /// capacities: a live run and the replay of its capture, which build their events
    /// along different paths, count the same bytes, and so release the same events
    /// early). An event's line is counted once, however many matches share it.
    pub fn bytes(&self) -> usize {
        match self {
            Held::Event(event) => std::mem::size_of::<Event>() + event.raw.len() + event.fields.iter().map(|field| field_bytes(field.as_ref())).sum::<usize>(),
            Held::Matches(matches) => {
                let line = matches.first().and_then(|found| found.row.item.events.first()).map_or(0, |event| event.raw.len());
                line + matches.iter().map(match_bytes).sum::<usize>()
            }
        }
    }
}

/// A match without its events' lines: its own size, its join key and pipe keys, and
/// its events' kept fields and captures.
fn match_bytes(found: &Match) -> usize {
    let row = &found.row;
    let keys = |values: &[Value]| values.iter().map(value_bytes).sum::<usize>();
    std::mem::size_of::<Match>()
        + row.filters.len()
        + row.keys.iter().map(|key| keys(key)).sum::<usize>()
        + row.item.join_key.as_deref().map_or(0, keys)
        + row.item.events.iter().map(event_ref_bytes).sum::<usize>()
}

fn event_ref_bytes(event: &EventRef) -> usize {
    let fields = event.fields.as_deref().map_or(0, |fields| fields.iter().map(|field| field_bytes(field.as_ref())).sum());
    let captures = event
        .captures
        .as_deref()
        .map_or(0, |captures| captures.iter().map(|captured| captured.values.iter().map(|(name, value)| name.len() + value_bytes(value)).sum::<usize>()).sum());
    std::mem::size_of::<EventRef>() + fields + captures
}

fn field_bytes(field: Option<&Value>) -> usize {
    field.map_or(std::mem::size_of::<Option<Value>>(), value_bytes)
}

/// A value's size and what it owns.
fn value_bytes(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::Str(text) => text.len(),
            Value::Array(values) => values.iter().map(value_bytes).sum(),
            Value::Object(fields) => fields.iter().map(|(name, value)| name.len() + value_bytes(value)).sum(),
            Value::Null | Value::Bool(_) | Value::Long(_) | Value::Double(_) | Value::Ip(_) => 0,
        }
}

impl Window {
    pub fn len(&self) -> usize {
        self.ordered.len() + self.stragglers.len()
    }

    /// What the window's events take, estimated ([`Held::bytes`], and 16 per event).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push(&mut self, pending: Pending) {
        let bytes = pending.held.bytes();
        self.bytes += std::mem::size_of::<Key>() + bytes;
        // Arrivals only grow, so the back is the largest key when its timestamp is.
        if self.ordered.back().is_none_or(|last| last.timestamp <= pending.timestamp) {
            debug_assert!(pending.arrival < Key::HOLDS, "arrivals count events");
            let holds = !pending.held.is_nothing();
            self.ordered.push_back(Key { timestamp: pending.timestamp, arrival_and_holds: pending.arrival | if holds { Key::HOLDS } else { 0 } });
            if holds {
                self.held.push_back((pending.held, bytes));
            }
        } else {
            self.stragglers.push(Reverse((pending, bytes)));
        }
    }

    /// The earliest held event's timestamp.
    pub fn earliest(&self) -> Option<i64> {
        match (self.ordered.front(), self.stragglers.peek()) {
            (Some(first), Some(Reverse((straggler, _)))) => Some(first.timestamp.min(straggler.timestamp)),
            (Some(first), None) => Some(first.timestamp),
            (None, Some(Reverse((straggler, _)))) => Some(straggler.timestamp),
            (None, None) => None,
        }
    }

    /// The earliest event.
    pub fn pop(&mut self) -> Option<Pending> {
        let (pending, bytes) = self.pop_earliest()?;
        self.bytes -= std::mem::size_of::<Key>() + bytes;
        Some(pending)
    }

    fn pop_earliest(&mut self) -> Option<(Pending, usize)> {
        match (self.ordered.front(), self.stragglers.peek()) {
            (Some(first), Some(Reverse((straggler, _)))) if (straggler.timestamp, straggler.arrival) < (first.timestamp, first.arrival()) => {
                self.stragglers.pop().map(|Reverse(entry)| entry)
            }
            (Some(_), _) => self.pop_ordered(),
            (None, _) => self.stragglers.pop().map(|Reverse(entry)| entry),
        }
    }

    fn pop_ordered(&mut self) -> Option<(Pending, usize)> {
        let key = self.ordered.pop_front()?;
        let (held, bytes) = if key.holds() { self.held.pop_front().expect("a key that holds has its entry") } else { (Held::Matches(Vec::new()), 0) };
        Some((Pending { timestamp: key.timestamp, arrival: key.arrival(), held }, bytes))
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
                let before = window.bytes();
                let bytes = held.bytes();
                window.push(Pending::new(timestamp, arrival, held));
                assert_eq!(window.bytes(), before + 16 + bytes);
                if window.len() > 20 {
                    popped.push(check(window.pop().unwrap()));
                }
            }
            while let Some(pending) = window.pop() {
                popped.push(check(pending));
            }
            assert_eq!(window.bytes(), 0, "an empty window holds no bytes");
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

    /// What an entry holds is counted from its contents: an event's line and fields, and
    /// a line its matches share once.
    #[test]
    fn held_bytes_count_lines_once_and_values_by_their_length() {
        let line = Line::new(&"x".repeat(1000));
        let event = Event { timestamp: 1, categories: Categories::default(), fields: vec![None, Some(Value::Str("y".repeat(300)))], raw: line.clone() };
        let held = Held::Event(Box::new(event.clone()));
        assert!((1300..1500).contains(&held.bytes()), "{}", held.bytes());
        let found = |raw: &Line| Match {
            rule: 0,
            row: crate::pipes::Row {
                item: crate::engine::Found {
                    events: vec![EventRef { index: 0, timestamp: 1, raw: raw.clone(), fields: None, captures: None }],
                    join_key: None,
                },
                filters: Vec::new(),
                keys: vec![vec![Value::Str("k".repeat(50))]],
                count: None,
            },
        };
        let one = Held::Matches(vec![found(&line)]).bytes();
        let two = Held::Matches(vec![found(&line), found(&line)]).bytes();
        assert!(one > 1050 && two - one < 1000, "{one} {two}: the shared line once");
        assert_eq!(Held::Matches(Vec::new()).bytes(), 0);
    }
}
