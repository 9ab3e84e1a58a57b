//! The sequence executor against a naive matcher: a list of partial matches searched
//! linearly, with the same rules written out plainly (latest partial wins per step and
//! key, inclusive maxspan from the first event, until after or before the steps by
//! flavour, oldest partial evicted at the cap). Random sequences, random streams.

use kestrel_rt::sequence::{Config, Counters, Flavor, Input, Key, Machine};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Event {
    timestamp: i64,
    hits: Vec<(usize, Key)>,
    until: Vec<Key>,
}

#[derive(Clone, Debug)]
struct Partial {
    stage: usize,
    key: Key,
    events: Vec<u64>,
    first: i64,
    serial: u64,
}

/// The plain version: every rule applied to a flat list.
fn naive(config: &Config, events: &[Event]) -> (Vec<Vec<u64>>, Counters, usize) {
    let mut partials: Vec<Partial> = Vec::new();
    let mut done = Vec::new();
    let mut counters = Counters::default();
    let mut serial = 0;
    let past = |first: i64, now: i64| config.maxspan.is_some_and(|maxspan| now - first > 0 && (now - first) as u64 > maxspan);
    for (id, event) in events.iter().enumerate() {
        let id = id as u64;
        let before = partials.len();
        partials.retain(|partial| !past(partial.first, event.timestamp));
        counters.expired += (before - partials.len()) as u64;
        let end = |partials: &mut Vec<Partial>, counters: &mut Counters| {
            let before = partials.len();
            partials.retain(|partial| !event.until.contains(&partial.key));
            counters.ended += (before - partials.len()) as u64;
        };
        if config.flavor == Flavor::Endgame {
            end(&mut partials, &mut counters);
        }
        for step in (0..config.steps).rev() {
            for (_, key) in event.hits.iter().filter(|(hit, _)| *hit == step) {
                if step == 0 {
                    counters.started += 1;
                    if config.steps == 1 {
                        counters.completed += 1;
                        done.push(vec![id]);
                        continue;
                    }
                    if partials.len() >= config.max_partials {
                        let oldest = (0..partials.len()).min_by_key(|idx| partials[*idx].serial).unwrap();
                        partials.remove(oldest);
                        counters.evicted += 1;
                    }
                    if let Some(idx) = partials.iter().position(|partial| partial.stage == 1 && partial.key == *key) {
                        partials.remove(idx);
                        counters.replaced += 1;
                    }
                    partials.push(Partial { stage: 1, key: key.clone(), events: vec![id], first: event.timestamp, serial });
                    serial += 1;
                    continue;
                }
                let Some(idx) = partials.iter().position(|partial| partial.stage == step && partial.key == *key) else { continue };
                if past(partials[idx].first, event.timestamp) {
                    partials.remove(idx);
                    counters.expired += 1;
                    continue;
                }
                let mut partial = partials.remove(idx);
                partial.events.push(id);
                if step == config.steps - 1 {
                    counters.completed += 1;
                    done.push(partial.events);
                } else {
                    partial.stage += 1;
                    if let Some(other) = partials.iter().position(|other| other.stage == partial.stage && other.key == *key) {
                        partials.remove(other);
                        counters.replaced += 1;
                    }
                    partials.push(partial);
                }
            }
        }
        if config.flavor == Flavor::Elasticsearch {
            end(&mut partials, &mut counters);
        }
    }
    (done, counters, partials.len())
}

fn key(n: u8) -> Key {
    vec![n].into_boxed_slice()
}

fn config() -> impl Strategy<Value = Config> {
    (1usize..5, prop::option::of(0u64..12), prop::bool::ANY, prop_oneof![Just(1_000usize), 1usize..6]).prop_map(|(steps, maxspan, endgame, max_partials)| {
        Config { steps, maxspan, flavor: if endgame { Flavor::Endgame } else { Flavor::Elasticsearch }, max_partials }
    })
}

fn stream(steps: usize) -> impl Strategy<Value = Vec<Event>> {
    let event = (0i64..3, prop::collection::vec((0..steps, 0u8..3), 0..4), prop::collection::vec(0u8..3, 0..2), 0u8..6);
    prop::collection::vec(event, 0..80).prop_map(|events| {
        let mut timestamp = 0;
        events
            .into_iter()
            .map(|(step, hits, until, until_odds)| {
                timestamp += step;
                Event {
                    timestamp,
                    hits: hits.into_iter().map(|(step, n)| (step, key(n))).collect(),
                    // Until events are rarer than step hits.
                    until: if until_odds == 0 { until.into_iter().map(key).collect() } else { Vec::new() },
                }
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
            machine.push(Input { id: &(id as u64), timestamp: event.timestamp, hits: &event.hits, until: &event.until }, &mut done);
            prop_assert!(machine.open() <= config.max_partials);
        }
        let (expected, counters, open) = naive(&config, &events);
        prop_assert_eq!(&done, &expected);
        prop_assert_eq!(machine.counters, counters);
        prop_assert_eq!(machine.open(), open);
    }
}

/// The reference engines' own examples (../shared/guide/eql-semantics.md §4.3, §4.7).
#[test]
fn latest_partial_wins_and_one_event_advances_a_partial_once() {
    let run = |steps: usize, flavor: Flavor, events: &[(&[usize], bool)]| {
        let mut machine: Machine<u64> = Machine::new(Config { steps, maxspan: None, flavor, max_partials: 100 });
        let mut done = Vec::new();
        for (id, (steps, until)) in events.iter().enumerate() {
            let hits: Vec<(usize, Key)> = steps.iter().map(|step| (*step, key(0))).collect();
            let until: Vec<Key> = if *until { vec![key(0)] } else { Vec::new() };
            machine.push(Input { id: &(id as u64 + 1), timestamp: id as i64, hits: &hits, until: &until }, &mut done);
        }
        done
    };
    let es = Flavor::Elasticsearch;
    // [a][b] over a1 a2 b3: [a2, b3]; over a1 b2 b3: [a1, b2].
    assert_eq!(run(2, es, &[(&[0], false), (&[0], false), (&[1], false)]), vec![vec![2, 3]]);
    assert_eq!(run(2, es, &[(&[0], false), (&[1], false), (&[1], false)]), vec![vec![1, 2]]);
    // [any][any] over x1 x2 x3: [x1, x2], [x2, x3].
    assert_eq!(run(2, es, &[(&[0, 1], false), (&[0, 1], false), (&[0, 1], false)]), vec![vec![1, 2], vec![2, 3]]);
    // An event that is both the last step and the until: completes in Elasticsearch,
    // ends the partial first in python eql.
    assert_eq!(run(2, es, &[(&[0], false), (&[1], true)]), vec![vec![1, 2]]);
    assert_eq!(run(2, Flavor::Endgame, &[(&[0], false), (&[1], true)]), Vec::<Vec<u64>>::new());
}

#[test]
fn maxspan_is_inclusive_and_state_stays_under_the_cap() {
    let mut machine: Machine<u64> = Machine::new(Config { steps: 2, maxspan: Some(10), flavor: Flavor::Elasticsearch, max_partials: 1_000 });
    let mut done = Vec::new();
    let push = |machine: &mut Machine<u64>, done: &mut Vec<Vec<u64>>, id: u64, timestamp: i64, step: usize, n: u8| {
        machine.push(Input { id: &id, timestamp, hits: &[(step, key(n))], until: &[] }, done);
    };
    push(&mut machine, &mut done, 1, 0, 0, 0);
    push(&mut machine, &mut done, 2, 10, 1, 0);
    push(&mut machine, &mut done, 3, 20, 0, 0);
    push(&mut machine, &mut done, 4, 31, 1, 0);
    assert_eq!(done, vec![vec![1, 2]], "10 apart completes, 11 apart does not");
    assert_eq!(machine.counters.expired, 1);
    // 100,000 distinct keys under a cap of 1,000: never more open, the rest evicted.
    for n in 0..100_000u64 {
        machine.push(Input { id: &n, timestamp: 40, hits: &[(0, n.to_le_bytes().to_vec().into_boxed_slice())], until: &[] }, &mut done);
        assert!(machine.open() <= 1_000);
    }
    assert_eq!(machine.counters.evicted, 99_000);
}
