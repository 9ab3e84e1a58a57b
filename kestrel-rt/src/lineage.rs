//! The process tracker behind `descendant of`, `child of` and `event of`, with python
//! eql's semantics (docs/semantics.md, "Lineage").
//!
//! Each lineage test keeps two sets of process ids. For every event, in order:
//! 1. a process event first forgets the processes that ended at the previous process
//!    event, then, if it creates a process whose parent is tracked, tracks the child
//!    (for `descendant of`, a parent that is a source or a descendant; for `child of`,
//!    a source); if it ends a process, that process is forgotten at the next one;
//! 2. if the event matches the test's subquery, its process becomes a source (for
//!    `event of`, a member);
//! 3. the test is true for the event when its process is a member.
//!
//! The sets are bounded: past `MAX_TRACKED` processes, new ones are not tracked, and
//! are counted.

use kestrel_bundle::bundle::{LineageTable, LineageValue, Relation};
use kestrel_bundle::semantics::Value;
use std::collections::HashSet;

/// Processes one test tracks in each of its sets.
pub const MAX_TRACKED: usize = 1 << 20;

/// A process id, as the tracker compares them: integers (integral doubles too) or strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Pid {
    Long(i64),
    Str(String),
}

fn pid(value: Option<&Value>) -> Option<Pid> {
    match value? {
        Value::Long(number) => Some(Pid::Long(*number)),
        Value::Double(number) if number.fract() == 0.0 && number.abs() < 9.0e18 => Some(Pid::Long(*number as i64)),
        Value::Str(text) => Some(Pid::Str(text.clone())),
        _ => None,
    }
}

/// A source must have a process id that is not 0 or empty (python eql's test).
fn is_real(pid: &Pid) -> bool {
    match pid {
        Pid::Long(number) => *number != 0,
        Pid::Str(text) => !text.is_empty(),
    }
}

/// Whether the subtype is one of `values`; for an array (ECS `event.type` is one), any
/// element.
fn subtype_is(value: Option<&Value>, values: &[LineageValue]) -> bool {
    let Some(value) = value else { return false };
    if let Value::Array(items) = value {
        return items.iter().any(|item| subtype_is(Some(item), values));
    }
    values.iter().any(|candidate| match (candidate, value) {
        (LineageValue::Long(expected), Value::Long(actual)) => expected == actual,
        (LineageValue::Long(expected), Value::Double(actual)) => *expected as f64 == *actual,
        (LineageValue::Str(expected), Value::Str(actual)) => expected == actual,
        _ => false,
    })
}

#[derive(Clone)]
struct Test {
    relation: Relation,
    /// Sources (`descendant of`, `child of`) or matched processes (`event of`).
    sources: HashSet<Pid>,
    /// Descendants or children.
    members: HashSet<Pid>,
    /// Ended at the last process event; forgotten at the next.
    ended: Vec<Pid>,
}

/// The fields of one event the tracker reads.
pub struct ProcessFields<'a> {
    pub is_process: bool,
    pub pid: Option<&'a Value>,
    pub ppid: Option<&'a Value>,
    pub subtype: Option<&'a Value>,
}

#[derive(Clone)]
pub struct Tracker {
    table: LineageTable,
    tests: Vec<Test>,
    /// Processes not tracked because a set was full.
    pub dropped: u64,
}

impl Tracker {
    pub fn new(table: &LineageTable) -> Tracker {
        let tests =
            table.nodes.iter().map(|node| Test { relation: node.relation, sources: HashSet::new(), members: HashSet::new(), ended: Vec::new() }).collect();
        Tracker { table: table.clone(), tests, dropped: 0 }
    }

    pub fn table(&self) -> &LineageTable {
        &self.table
    }

    /// Steps test `test` over one event (`source`: the event matched the subquery) and
    /// returns the test's answer for it.
    pub fn step(&mut self, test: usize, event: &ProcessFields, source: bool) -> bool {
        let (creates, terminates) = (&self.table.create_values, &self.table.terminate_values);
        let state = &mut self.tests[test];
        let this = pid(event.pid);
        if event.is_process {
            for ended in state.ended.drain(..) {
                state.members.remove(&ended);
                state.sources.remove(&ended);
            }
            if subtype_is(event.subtype, creates) {
                let parent = pid(event.ppid);
                let tracked = parent.as_ref().is_some_and(|parent| match state.relation {
                    Relation::Descendant => state.members.contains(parent) || state.sources.contains(parent),
                    Relation::Child => state.sources.contains(parent),
                    Relation::Event => false,
                });
                if tracked && let Some(child) = &this {
                    if state.members.len() < MAX_TRACKED {
                        state.members.insert(child.clone());
                    } else {
                        self.dropped += 1;
                    }
                }
            } else if subtype_is(event.subtype, terminates)
                && let Some(ended) = &this
            {
                state.ended.push(ended.clone());
            }
        }
        if source && let Some(process) = this.as_ref().filter(|pid| is_real(pid)) {
            let set = if state.relation == Relation::Event { &mut state.members } else { &mut state.sources };
            if set.len() < MAX_TRACKED || set.contains(process) {
                set.insert(process.clone());
            } else {
                self.dropped += 1;
            }
        }
        this.is_some_and(|process| state.members.contains(&process))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_bundle::bundle::LineageNode;

    fn tracker(relation: Relation) -> Tracker {
        Tracker::new(&LineageTable {
            pid_field: 0,
            ppid_field: 1,
            subtype_field: 2,
            process_category: 0,
            create_values: vec![LineageValue::Str("start".into())],
            terminate_values: vec![LineageValue::Str("end".into())],
            nodes: vec![LineageNode { relation, source: 0, slot: 0 }],
        })
    }

    /// (pid, ppid, subtype, matches the subquery) → the test's answer, event by event.
    fn run(relation: Relation, events: &[(i64, i64, &str, bool)]) -> Vec<bool> {
        let mut tracker = tracker(relation);
        events
            .iter()
            .map(|(pid, ppid, subtype, source)| {
                let (pid, ppid, subtype) = (Value::Long(*pid), Value::Long(*ppid), Value::Str(subtype.to_string()));
                let fields = ProcessFields { is_process: true, pid: Some(&pid), ppid: Some(&ppid), subtype: Some(&subtype) };
                tracker.step(0, &fields, *source)
            })
            .collect()
    }

    #[test]
    fn descendants_follow_creations_from_a_source_and_end_one_process_event_late() {
        let events = [(10, 1, "start", true), (11, 10, "start", false), (12, 11, "start", false), (11, 10, "end", false), (13, 11, "start", false)];
        // 12's parent 11 is tracked; 11 ends, and is forgotten only at the next process event,
        // so 13 (child of the forgotten 11) is not a descendant.
        assert_eq!(run(Relation::Descendant, &events), vec![false, true, true, true, false]);
        assert_eq!(run(Relation::Child, &events), vec![false, true, false, true, false]);
        assert_eq!(run(Relation::Event, &events), vec![true, false, false, false, false]);
    }

    #[test]
    fn array_subtypes_match_any_element() {
        let start = Value::Array(vec![Value::Str("info".into()), Value::Str("start".into())]);
        assert!(subtype_is(Some(&start), &[LineageValue::Str("start".into())]));
        assert!(!subtype_is(Some(&start), &[LineageValue::Str("end".into())]));
        assert!(subtype_is(Some(&Value::Double(3.0)), &[LineageValue::Long(3)]));
    }

    #[test]
    fn pid_zero_never_becomes_a_source() {
        assert_eq!(run(Relation::Event, &[(0, 1, "start", true), (0, 1, "start", false)]), vec![false, false]);
    }
}
