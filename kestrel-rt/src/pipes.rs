//! Pipes over a rule's result stream: `head`, `tail`, `filter`, `unique`,
//! `unique_count`, `count`, `sort`, with python eql's semantics (docs/semantics.md).
//!
//! Every value a pipe needs (filter truth, key values) is computed when the result is
//! produced, while its events are still in guest memory, and travels with the result;
//! the pipes themselves only move results. Buffering pipes are bounded: past
//! `max_buffered` results they drop, and count, what they cannot keep.

use kestrel_bundle::semantics::Value;
use std::collections::{HashMap, HashSet, VecDeque};

/// One stage, as the bundle describes it, with the index of its precomputed inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    Head(u64),
    Tail(u64),
    /// The result's `filters[i]`.
    Filter(usize),
    /// A filter after `unique_count`, which reads the count: computed when the result
    /// gets there (at the end), by the evaluator given to [`Pipeline::finish_with`],
    /// with the filter's index.
    LateFilter(usize),
    /// The result's `keys[i]`.
    Unique(usize),
    UniqueCount(usize),
    Count(usize),
    Sort(usize),
}

/// A result on its way through the pipes.
#[derive(Clone, Debug, PartialEq)]
pub struct Row<T> {
    /// The rule's own output (events, timestamps): pipes never look inside.
    pub item: T,
    pub filters: Vec<bool>,
    pub keys: Vec<Vec<Value>>,
    /// Set by `unique_count`: how many results shared this one's key, and their share.
    pub count: Option<(u64, f64)>,
}

/// What comes out: a result, or (from `count`) a key with its count.
#[derive(Clone, Debug, PartialEq)]
pub enum Output<T> {
    Row(Row<T>),
    Count { key: Vec<Value>, count: u64, percent: f64 },
}

/// A hashable, case-exact identity of key values. Integral doubles equal longs, as
/// python dictionary keys do (`1 == 1.0`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyPart {
    Null,
    Bool(bool),
    Long(i64),
    Double(u64),
    Str(String),
    Ip(std::net::IpAddr),
    List(Vec<KeyPart>),
}

fn key_part(value: &Value) -> KeyPart {
    match value {
        Value::Null => KeyPart::Null,
        Value::Bool(value) => KeyPart::Bool(*value),
        Value::Long(value) => KeyPart::Long(*value),
        Value::Double(value) if value.fract() == 0.0 && value.abs() < 9.0e18 => KeyPart::Long(*value as i64),
        Value::Double(value) => KeyPart::Double(if value.is_nan() { f64::NAN.to_bits() } else { (value + 0.0).to_bits() }),
        Value::Str(text) => KeyPart::Str(text.clone()),
        Value::Ip(address) => KeyPart::Ip(*address),
        Value::Array(items) => KeyPart::List(items.iter().map(key_part).collect()),
        Value::Object(entries) => KeyPart::List(entries.iter().flat_map(|(key, value)| [KeyPart::Str(key.clone()), key_part(value)]).collect()),
    }
}

fn key_of(values: &[Value]) -> Vec<KeyPart> {
    values.iter().map(key_part).collect()
}

enum State<T> {
    Head {
        left: u64,
    },
    /// `seen`: results that reached it, so that what the bound lost is known at the end.
    Tail {
        keep: u64,
        rows: VecDeque<Output<T>>,
        seen: u64,
    },
    Filter,
    Unique {
        seen: HashSet<Vec<KeyPart>>,
    },
    UniqueCount {
        order: Vec<Vec<KeyPart>>,
        groups: HashMap<Vec<KeyPart>, (Row<T>, u64)>,
        total: u64,
    },
    Count {
        order: Vec<Vec<KeyPart>>,
        groups: HashMap<Vec<KeyPart>, (Vec<Value>, u64)>,
        total: u64,
    },
    Sort {
        rows: Vec<Output<T>>,
    },
}

/// The pipes of one rule.
pub struct Pipeline<T> {
    stages: Vec<Stage>,
    states: Vec<State<T>>,
    max_buffered: usize,
    /// Results dropped because a buffering pipe was full.
    pub dropped: u64,
    /// Once `head` has passed its count, nothing more can come out.
    closed: bool,
}

impl<T: Clone> Pipeline<T> {
    pub fn new(stages: Vec<Stage>, max_buffered: usize) -> Pipeline<T> {
        let states = stages
            .iter()
            .map(|stage| match stage {
                Stage::Head(count) => State::Head { left: *count },
                Stage::Tail(count) => State::Tail { keep: *count, rows: VecDeque::new(), seen: 0 },
                Stage::Filter(_) | Stage::LateFilter(_) => State::Filter,
                Stage::Unique(_) => State::Unique { seen: HashSet::new() },
                Stage::UniqueCount(_) => State::UniqueCount { order: Vec::new(), groups: HashMap::new(), total: 0 },
                Stage::Count(_) => State::Count { order: Vec::new(), groups: HashMap::new(), total: 0 },
                Stage::Sort(_) => State::Sort { rows: Vec::new() },
            })
            .collect();
        Pipeline { stages, states, max_buffered, dropped: 0, closed: false }
    }

    /// True once no further result can be emitted (a `head` is exhausted), so the
    /// caller may stop evaluating the rule.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds one result; whatever passes every streaming stage is appended to `out`.
    pub fn push(&mut self, row: Row<T>, out: &mut Vec<Output<T>>) {
        if self.closed {
            return;
        }
        self.run(0, Output::Row(row), out, &mut |_, _| false);
    }

    /// End of input: buffering stages release what they hold, in order.
    pub fn finish(&mut self, out: &mut Vec<Output<T>>) {
        self.finish_with(out, &mut |_, _| false);
    }

    /// [`Pipeline::finish`], with the evaluator of late filters.
    pub fn finish_with(&mut self, out: &mut Vec<Output<T>>, late: &mut dyn FnMut(usize, &Row<T>) -> bool) {
        for stage in 0..self.stages.len() {
            let released: Vec<Output<T>> = match &mut self.states[stage] {
                State::Tail { keep, rows, seen } => {
                    // `tail N` would have given the last min(seen, N); the bound kept fewer.
                    self.dropped += (*seen).min(*keep) - rows.len() as u64;
                    rows.drain(..).collect()
                }
                State::Sort { rows } => {
                    let position = match self.stages[stage] {
                        Stage::Sort(position) => position,
                        _ => 0,
                    };
                    let mut rows = std::mem::take(rows);
                    sort_rows(&mut rows, position);
                    rows
                }
                State::UniqueCount { order, groups, total } => {
                    let total = *total;
                    order
                        .drain(..)
                        .filter_map(|key| groups.remove(&key))
                        .map(|(mut row, count)| {
                            row.count = Some((count, count as f64 / total.max(1) as f64));
                            Output::Row(row)
                        })
                        .collect()
                }
                State::Count { order, groups, total } => {
                    let total = *total;
                    let mut counts: Vec<(Vec<Value>, Vec<KeyPart>, u64)> =
                        order.drain(..).filter_map(|key| groups.remove(&key).map(|(values, count)| (values, key, count))).collect();
                    counts.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.1.cmp(&b.1)));
                    counts.into_iter().map(|(key, _, count)| Output::Count { key, count, percent: count as f64 / total.max(1) as f64 }).collect()
                }
                _ => continue,
            };
            for output in released {
                self.run(stage + 1, output, out, late);
            }
        }
    }

    fn run(&mut self, stage: usize, output: Output<T>, out: &mut Vec<Output<T>>, late: &mut dyn FnMut(usize, &Row<T>) -> bool) {
        if stage == self.stages.len() {
            out.push(output);
            return;
        }
        let position = match self.stages[stage] {
            Stage::Head(_) | Stage::Tail(_) => 0,
            Stage::Filter(position)
            | Stage::LateFilter(position)
            | Stage::Unique(position)
            | Stage::UniqueCount(position)
            | Stage::Count(position)
            | Stage::Sort(position) => position,
        };
        let keys = |output: &Output<T>| -> Vec<Value> {
            match output {
                Output::Row(row) => row.keys.get(position).cloned().unwrap_or_default(),
                Output::Count { key, .. } => key.clone(),
            }
        };
        let max_buffered = self.max_buffered;
        match &mut self.states[stage] {
            State::Head { left } => {
                if *left == 0 {
                    return;
                }
                *left -= 1;
                let exhausted = *left == 0;
                self.run(stage + 1, output, out, late);
                if exhausted
                    && self.stages[..stage].iter().all(|earlier| matches!(earlier, Stage::Head(_) | Stage::Filter(_) | Stage::LateFilter(_) | Stage::Unique(_)))
                {
                    self.closed = true;
                }
            }
            State::Tail { keep, rows, seen } => {
                // The last `keep` results, or the last `max_buffered` when that is fewer
                // (the results lost to the bound are counted at the end).
                *seen += 1;
                let room = (*keep).min(max_buffered as u64);
                if room == 0 {
                    return;
                }
                if rows.len() as u64 == room {
                    rows.pop_front();
                }
                rows.push_back(output);
            }
            State::Filter => {
                let passes = match &output {
                    Output::Row(row) if matches!(self.stages[stage], Stage::LateFilter(_)) => late(position, row),
                    Output::Row(row) => row.filters.get(position).copied().unwrap_or(false),
                    Output::Count { .. } => false,
                };
                if passes {
                    self.run(stage + 1, output, out, late);
                }
            }
            State::Unique { seen } => {
                let key = key_of(&keys(&output));
                if seen.contains(&key) {
                    return;
                }
                if seen.len() >= max_buffered {
                    self.dropped += 1;
                    return;
                }
                seen.insert(key);
                self.run(stage + 1, output, out, late);
            }
            State::UniqueCount { order, groups, total } => {
                *total += 1;
                let key = key_of(&keys(&output));
                if let Some((_, count)) = groups.get_mut(&key) {
                    *count += 1;
                    return;
                }
                if groups.len() >= max_buffered {
                    self.dropped += 1;
                    return;
                }
                if let Output::Row(row) = output {
                    order.push(key.clone());
                    groups.insert(key, (row, 1));
                }
            }
            State::Count { order, groups, total } => {
                *total += 1;
                let values = keys(&output);
                let key = key_of(&values);
                if let Some((_, count)) = groups.get_mut(&key) {
                    *count += 1;
                    return;
                }
                if groups.len() >= max_buffered {
                    self.dropped += 1;
                    return;
                }
                order.push(key.clone());
                groups.insert(key, (values, 1));
            }
            State::Sort { rows } => {
                if rows.len() >= max_buffered {
                    self.dropped += 1;
                    return;
                }
                rows.push(output);
            }
        }
    }
}

/// Stable sort on the key values; a null sorts as the empty value of the type that key
/// position holds elsewhere (0, "", false), as python eql does.
fn sort_rows<T>(rows: &mut [Output<T>], position: usize) {
    let keys_of = |output: &Output<T>| -> Vec<Value> {
        match output {
            Output::Row(row) => row.keys.get(position).cloned().unwrap_or_default(),
            Output::Count { key, .. } => key.clone(),
        }
    };
    let width = rows.iter().map(|row| keys_of(row).len()).max().unwrap_or(0);
    let empties: Vec<Value> = (0..width)
        .map(|column| {
            rows.iter()
                .filter_map(|row| keys_of(row).get(column).cloned())
                .find(|value| *value != Value::Null)
                .map(|value| match value {
                    Value::Long(_) | Value::Double(_) => Value::Long(0),
                    Value::Bool(_) => Value::Bool(false),
                    Value::Str(_) => Value::Str("".into()),
                    other => other,
                })
                .unwrap_or(Value::Null)
        })
        .collect();
    let mut decorated: Vec<(Vec<SortKey>, usize)> = rows
        .iter()
        .enumerate()
        .map(|(idx, row)| {
            let keys = keys_of(row);
            let sort_keys = (0..width).map(|column| SortKey::of(keys.get(column).filter(|value| **value != Value::Null).unwrap_or(&empties[column]))).collect();
            (sort_keys, idx)
        })
        .collect();
    decorated.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let order: Vec<usize> = decorated.into_iter().map(|(_, idx)| idx).collect();
    apply_permutation(rows, &order);
}

/// A total order over key values: numbers by value, then strings, then the rest.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Null,
    Bool(bool),
    Number(OrderedF64),
    Str(String),
    Other(Vec<KeyPart>),
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct OrderedF64(i64, u64);

impl SortKey {
    fn of(value: &Value) -> SortKey {
        match value {
            Value::Null => SortKey::Null,
            Value::Bool(value) => SortKey::Bool(*value),
            Value::Long(value) => SortKey::Number(OrderedF64(*value, 0)),
            Value::Double(value) => {
                let whole = value.floor();
                let clamped = whole.clamp(i64::MIN as f64, i64::MAX as f64) as i64;
                SortKey::Number(OrderedF64(clamped, ((value - whole) * 1e18) as u64))
            }
            Value::Str(text) => SortKey::Str(text.clone()),
            other => SortKey::Other(vec![key_part(other)]),
        }
    }
}

fn apply_permutation<T>(rows: &mut [T], order: &[usize]) {
    // Cycle-following permutation in place.
    let mut placed = vec![false; rows.len()];
    for start in 0..rows.len() {
        if placed[start] {
            continue;
        }
        let mut current = start;
        loop {
            placed[current] = true;
            let next = order[current];
            if next == start {
                break;
            }
            rows.swap(current, next);
            current = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u32, key: &str) -> Row<u32> {
        Row { item: id, filters: vec![id.is_multiple_of(2)], keys: vec![vec![Value::Str(key.into())]], count: None }
    }

    fn ids(outputs: &[Output<u32>]) -> Vec<u32> {
        outputs
            .iter()
            .filter_map(|output| match output {
                Output::Row(row) => Some(row.item),
                Output::Count { .. } => None,
            })
            .collect()
    }

    fn run(stages: Vec<Stage>, rows: Vec<Row<u32>>) -> Vec<Output<u32>> {
        let mut pipeline = Pipeline::new(stages, 1000);
        let mut out = Vec::new();
        for row in rows {
            pipeline.push(row, &mut out);
        }
        pipeline.finish(&mut out);
        out
    }

    #[test]
    fn head_tail_filter_chain() {
        let rows: Vec<_> = (1..=10).map(|id| row(id, "k")).collect();
        assert_eq!(ids(&run(vec![Stage::Head(1000), Stage::Filter(0), Stage::Tail(2)], rows.clone())), vec![8, 10]);
        assert_eq!(ids(&run(vec![Stage::Tail(4), Stage::Head(1)], rows.clone())), vec![7]);
        assert_eq!(ids(&run(vec![Stage::Head(3)], rows.clone())), vec![1, 2, 3]);
        // An exhausted head stops the input, not the buffering stages after it.
        assert_eq!(ids(&run(vec![Stage::Head(3), Stage::Tail(1)], rows)), vec![3]);
    }

    #[test]
    fn unique_keeps_the_first_per_key() {
        let rows = vec![row(1, "a"), row(2, "b"), row(3, "a"), row(4, "c"), row(5, "b")];
        assert_eq!(ids(&run(vec![Stage::Unique(0)], rows.clone())), vec![1, 2, 4]);
        let counted = run(vec![Stage::UniqueCount(0)], rows);
        assert_eq!(ids(&counted), vec![1, 2, 4]);
        let Output::Row(first) = &counted[0] else { panic!() };
        assert_eq!(first.count, Some((2, 0.4)));
    }

    #[test]
    fn late_filters_see_the_unique_count() {
        let rows = vec![row(1, "a"), row(2, "b"), row(3, "a"), row(4, "a")];
        let mut pipeline = Pipeline::new(vec![Stage::UniqueCount(0), Stage::LateFilter(0)], 100);
        let mut out = Vec::new();
        for row in rows {
            pipeline.push(row, &mut out);
        }
        assert!(out.is_empty());
        let mut asked = Vec::new();
        pipeline.finish_with(&mut out, &mut |position, row| {
            asked.push((position, row.item));
            row.count.is_some_and(|(count, _)| count >= 2)
        });
        assert_eq!(ids(&out), vec![1]);
        assert_eq!(asked, vec![(0, 1), (0, 2)]);
    }

    #[test]
    fn sort_is_stable_and_nulls_take_the_empty_value() {
        let mut rows = vec![row(1, "b"), row(2, "a"), row(3, "b")];
        rows.push(Row { item: 4, filters: vec![true], keys: vec![vec![Value::Null]], count: None });
        assert_eq!(ids(&run(vec![Stage::Sort(0)], rows)), vec![4, 2, 1, 3]);
    }

    #[test]
    fn count_orders_by_count_then_key() {
        let rows = vec![row(1, "b"), row(2, "a"), row(3, "b")];
        let out = run(vec![Stage::Count(0)], rows);
        let counts: Vec<(String, u64)> = out
            .iter()
            .map(|output| match output {
                Output::Count { key, count, .. } => (format!("{:?}", key[0]), *count),
                Output::Row(_) => panic!(),
            })
            .collect();
        assert_eq!(counts, vec![("Str(\"a\")".to_string(), 1), ("Str(\"b\")".to_string(), 2)]);
    }

    #[test]
    fn buffers_are_bounded_and_drops_counted() {
        let mut pipeline = Pipeline::new(vec![Stage::Sort(0)], 2);
        let mut out = Vec::new();
        for id in 0..5 {
            pipeline.push(row(id, "x"), &mut out);
        }
        pipeline.finish(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(pipeline.dropped, 3);
        // `tail N` keeps its last N, but never more than the bound: what the bound lost
        // of the last N is counted (not what `tail` itself lets go).
        for (keep, bound, last, dropped) in
            [(1_000_000, 3, vec![7, 8, 9], 7), (5, 3, vec![7, 8, 9], 2), (2, 3, vec![8, 9], 0), (3, 3, vec![7, 8, 9], 0), (4, 0, vec![], 4), (0, 3, vec![], 0)]
        {
            let mut pipeline = Pipeline::new(vec![Stage::Tail(keep)], bound);
            let mut out = Vec::new();
            for id in 0..10 {
                pipeline.push(row(id, "x"), &mut out);
            }
            pipeline.finish(&mut out);
            assert_eq!((ids(&out), pipeline.dropped), (last, dropped), "tail {keep} under a bound of {bound}");
        }
    }
}
