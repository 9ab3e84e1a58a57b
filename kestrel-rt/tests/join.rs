//! The join executor against a naive matcher: a flat list of keys with their slots,
//! searched linearly, with python eql's rules written out plainly (until first, then the
//! hits in step order; first wins per slot; emit in step order and delete when full;
//! oldest key evicted at the cap). Random joins, random streams. Then the reference
//! engine's own examples (../shared/guide/eql-semantics.md §4.6).

use kestrel_bundle::semantics::Value;
use kestrel_rt::join::{Config, Counters, Input, Machine};
use kestrel_rt::join_key::{self, KeyRules};
use kestrel_rt::sequence::{Flavor, Key};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Event {
    hits: Vec<(usize, Key)>,
    until: Vec<Key>,
}

#[derive(Clone, Debug)]
struct Open {
    key: Key,
    slots: Vec<Option<u64>>,
}

/// The plain version: `open` is in creation order, so the oldest is at the front.
fn naive(config: &Config, events: &[Event]) -> (Vec<Vec<u64>>, Counters, usize) {
    let mut open: Vec<Open> = Vec::new();
    let mut done = Vec::new();
    let mut counters = Counters::default();
    for (id, event) in events.iter().enumerate() {
        let id = id as u64;
        let before = open.len();
        open.retain(|entry| !event.until.contains(&entry.key));
        counters.ended += (before - open.len()) as u64;
        for step in 0..config.steps {
            for (_, key) in event.hits.iter().filter(|(hit, _)| *hit == step) {
                if config.steps == 1 {
                    counters.started += 1;
                    counters.completed += 1;
                    done.push(vec![id]);
                    continue;
                }
                let idx = match open.iter().position(|entry| entry.key == *key) {
                    Some(idx) => idx,
                    None => {
                        if open.len() >= config.max_keys {
                            open.remove(0);
                            counters.evicted += 1;
                        }
                        counters.started += 1;
                        open.push(Open { key: key.clone(), slots: vec![None; config.steps] });
                        open.len() - 1
                    }
                };
                if open[idx].slots[step].is_some() {
                    counters.ignored += 1;
                    continue;
                }
                open[idx].slots[step] = Some(id);
                if open[idx].slots.iter().all(Option::is_some) {
                    let entry = open.remove(idx);
                    counters.completed += 1;
                    done.push(entry.slots.into_iter().map(Option::unwrap).collect());
                }
            }
        }
    }
    (done, counters, open.len())
}

fn key(n: u8) -> Key {
    vec![n].into()
}

fn config() -> impl Strategy<Value = Config> {
    (1usize..5, prop_oneof![Just(1_000usize), 1usize..5]).prop_map(|(steps, max_keys)| Config { steps, max_keys })
}

fn stream(steps: usize) -> impl Strategy<Value = Vec<Event>> {
    let event = (prop::collection::vec((0..steps, 0u8..4), 0..4), prop::collection::vec(0u8..4, 0..2), 0u8..6);
    prop::collection::vec(event, 0..80).prop_map(|events| {
        events
            .into_iter()
            .map(|(hits, until, until_odds)| Event {
                hits: hits.into_iter().map(|(step, n)| (step, key(n))).collect(),
                // Until events are rarer than step hits.
                until: if until_odds == 0 { until.into_iter().map(key).collect() } else { Vec::new() },
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_machine_equals_the_naive_matcher((config, events) in config().prop_flat_map(|config| {
        let steps = config.steps;
        (Just(config), stream(steps))
    })) {
        let mut machine: Machine<u64> = Machine::new(config.clone());
        let mut done = Vec::new();
        for (id, event) in events.iter().enumerate() {
            machine.push(Input { id: &(id as u64), hits: &event.hits, until: &event.until }, &mut done);
            prop_assert!(machine.open() <= config.max_keys);
        }
        let (expected, counters, open) = naive(&config, &events);
        prop_assert_eq!(&done, &expected);
        prop_assert_eq!(machine.counters, counters);
        prop_assert_eq!(machine.open(), open);
    }
}

/// Runs a join over events given as (steps hit, until), all under one key; ids from 1.
fn run(steps: usize, events: &[(&[usize], bool)]) -> Vec<Vec<u64>> {
    let mut machine: Machine<u64> = Machine::new(Config { steps, max_keys: 100 });
    let mut done = Vec::new();
    for (id, (hit, until)) in events.iter().enumerate() {
        let hits: Vec<(usize, Key)> = hit.iter().map(|step| (*step, key(0))).collect();
        let until: Vec<Key> = if *until { vec![key(0)] } else { Vec::new() };
        machine.push(Input { id: &(id as u64 + 1), hits: &hits, until: &until }, &mut done);
    }
    done
}

/// python eql's own examples (§4.6), and the consequences of its callback order.
#[test]
fn first_event_wins_and_results_come_in_query_order() {
    // join [a] [b]: b1 a2 gives [a2, b1]; a1 a2 b3 gives [a1, b3].
    assert_eq!(run(2, &[(&[1], false), (&[0], false)]), vec![vec![2, 1]]);
    assert_eq!(run(2, &[(&[0], false), (&[0], false), (&[1], false)]), vec![vec![1, 3]]);
    // The key is deleted when complete: a1 b2 a3 b4 gives two joins.
    assert_eq!(run(2, &[(&[0], false), (&[1], false), (&[0], false), (&[1], false)]), vec![vec![1, 2], vec![3, 4]]);
    // One event fills every slot it matches: join [any] [any] over e1 gives [e1, e1].
    assert_eq!(run(2, &[(&[0, 1], false)]), vec![vec![1, 1]]);
    // An event completing the key at step 1 and matching step 2 starts a new entry there.
    let done = run(3, &[(&[0], false), (&[2], false), (&[1, 2], false), (&[0], false), (&[1], false)]);
    assert_eq!(done, vec![vec![1, 3, 2], vec![4, 5, 3]]);
}

#[test]
fn until_deletes_the_key_before_the_event_s_own_steps() {
    // join [a] [b] until [c]: a1 c2 b3 gives nothing; a1 (b+c)2 gives nothing, and
    // leaves the b slot of a fresh entry, which a3 completes.
    assert_eq!(run(2, &[(&[0], false), (&[], true), (&[1], false)]), Vec::<Vec<u64>>::new());
    assert_eq!(run(2, &[(&[0], false), (&[1], true)]), Vec::<Vec<u64>>::new());
    assert_eq!(run(2, &[(&[0], false), (&[1], true), (&[0], false)]), vec![vec![3, 2]]);
    // Completed joins are not affected by a later until.
    assert_eq!(run(2, &[(&[0], false), (&[1], false), (&[], true)]), vec![vec![1, 2]]);
}

#[test]
fn null_keys_join_each_other_as_in_endgame() {
    let rules = KeyRules { flavor: Flavor::Endgame, fold_case: true };
    let key_of = |value: Value| {
        let mut out = Vec::new();
        join_key::keys(&[value], &[false], rules, &mut out);
        out.pop().expect("endgame keys always form")
    };
    let mut machine: Machine<&str> = Machine::new(Config { steps: 2, max_keys: 100 });
    let mut done = Vec::new();
    let events = [("a1", 0, Value::Null), ("a2", 0, Value::Str("X".into())), ("b3", 1, Value::Null), ("b4", 1, Value::Str("x".into()))];
    for (id, step, value) in events {
        machine.push(Input { id: &id, hits: &[(step, key_of(value))], until: &[] }, &mut done);
    }
    assert_eq!(done, vec![vec!["a1", "b3"], vec!["a2", "b4"]]);
}

#[test]
fn state_stays_under_the_cap() {
    let mut machine: Machine<u64> = Machine::new(Config { steps: 2, max_keys: 1_000 });
    let mut done = Vec::new();
    for n in 0..100_000u64 {
        let key: Key = n.to_le_bytes().to_vec().into();
        machine.push(Input { id: &n, hits: &[(0, key)], until: &[] }, &mut done);
        assert!(machine.open() <= 1_000);
    }
    assert_eq!(machine.counters.evicted, 99_000);
    // A million keys that complete: none open, none evicted.
    let mut machine: Machine<u64> = Machine::new(Config { steps: 2, max_keys: 10 });
    for n in 0..1_000_000u64 {
        let key: Key = n.to_le_bytes().to_vec().into();
        machine.push(Input { id: &n, hits: &[(0, key.clone()), (1, key)], until: &[] }, &mut done);
    }
    assert_eq!((machine.open(), machine.counters.evicted, machine.counters.completed), (0, 0, 1_000_000));
}
