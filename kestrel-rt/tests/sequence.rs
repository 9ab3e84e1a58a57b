//! The sequence executor against a naive matcher: a list of partial matches searched
//! linearly, with the same rules written out plainly (latest partial wins per step and
//! key, inclusive maxspan from the first event, until after or before the steps by
//! flavour, oldest partial evicted at the cap, `fork` steps advancing a copy), and
//! missing-event steps checked as
//! Elasticsearch does, after the fact, by searching the whole stream around each
//! candidate. Random sequences, random streams.

use kestrel_rt::sequence::{Completed, Config, Counters, Flavor, Gap, Input, Key, Machine};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Event {
    timestamp: i64,
    hits: Vec<(usize, Key)>,
    until: Vec<Key>,
    missing: Vec<(Gap, Key)>,
}

#[derive(Clone, Debug)]
struct Partial {
    stage: usize,
    key: Key,
    events: Vec<u64>,
    first: i64,
    serial: u64,
}

/// Elasticsearch's check of a candidate against its missing steps (`TumblingWindow`):
/// a hit in a gap between two positive events rules it out; the latest leading hit
/// before the first event and the earliest trailing hit after the last rule it out
/// when they are within maxspan of the sequence (or of each other, with both).
fn survives(config: &Config, events: &[Event], candidate: &[u64], key: &Key) -> bool {
    let at = |id: u64| events[id as usize].timestamp;
    let hits = |gap: Gap| events.iter().filter(move |event| event.missing.iter().any(|(each, hit)| *each == gap && hit == key)).map(|event| event.timestamp);
    for step in 1..candidate.len() {
        if hits(Gap::Before(step)).any(|timestamp| at(candidate[step - 1]) < timestamp && timestamp < at(candidate[step])) {
            return false;
        }
    }
    let (first, last) = (at(candidate[0]), at(*candidate.last().unwrap()));
    let lead = hits(Gap::Leading).filter(|timestamp| *timestamp < first).max();
    let trail = hits(Gap::Trailing).filter(|timestamp| *timestamp > last).min();
    let bigger = |from: Option<i64>, to: Option<i64>| match (from, to) {
        (Some(from), Some(to)) => config.maxspan.is_some_and(|maxspan| to - from > maxspan as i64),
        _ => true,
    };
    (lead.is_none() && trail.is_none())
        || (lead.is_none() && config.leading)
        || (trail.is_none() && config.trailing)
        || (config.leading && config.trailing && bigger(lead, trail))
        || (config.leading && !config.trailing && bigger(lead, Some(last)))
        || (!config.leading && config.trailing && bigger(Some(first), trail))
}

/// The plain version: every rule applied to a flat list.
fn naive(config: &Config, events: &[Event]) -> (Vec<Completed<u64>>, Counters, usize) {
    let (candidates, mut counters, open) = naive_positive(config, events);
    let mut done = Vec::new();
    for (candidate, key) in candidates {
        if survives(config, events, &candidate, &key) {
            done.push(Completed { key, events: candidate });
        } else {
            counters.completed -= 1;
            counters.ruled_out += 1;
        }
    }
    (done, counters, open)
}

/// The positive steps alone: candidates (with their key) in completion order.
fn naive_positive(config: &Config, events: &[Event]) -> (Vec<(Vec<u64>, Key)>, Counters, usize) {
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
                        done.push((vec![id], key.clone()));
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
                let fork = config.forks.get(step).copied().unwrap_or(false);
                let mut partial = if fork {
                    // A copy advances; the original stays where it waits.
                    counters.forked += 1;
                    let copy = Partial { serial, ..partials[idx].clone() };
                    serial += 1;
                    if step < config.steps - 1 && partials.len() >= config.max_partials {
                        let oldest = (0..partials.len()).min_by_key(|idx| partials[*idx].serial).unwrap();
                        partials.remove(oldest);
                        counters.evicted += 1;
                    }
                    copy
                } else {
                    partials.remove(idx)
                };
                partial.events.push(id);
                if step == config.steps - 1 {
                    counters.completed += 1;
                    done.push((partial.events, key.clone()));
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

/// The events of completed sequences, without their keys.
fn events_of(done: &[Completed<u64>]) -> Vec<Vec<u64>> {
    done.iter().map(|completed| completed.events.clone()).collect()
}

fn key(n: u8) -> Key {
    vec![n].into()
}

/// Random sequences: 1 to 4 positive steps, perhaps missing steps before, between and
/// after them. (The cap on what missing steps keep is tested apart: with missing steps
/// the cap is large.)
fn config() -> impl Strategy<Value = (Config, Vec<Gap>)> {
    let shape = (1usize..5, prop::bool::weighted(0.3), prop::bool::weighted(0.3), prop::collection::vec(0usize..4, 0..3));
    let forks = prop::collection::vec(prop::bool::weighted(0.25), 4);
    (shape, prop::option::of(0u64..12), prop::bool::ANY, prop_oneof![Just(1_000usize), 1usize..6], forks).prop_map(
        |((steps, leading, trailing, between), maxspan, endgame, max_partials, forks)| {
            let mut gaps: Vec<Gap> = between.into_iter().filter(|step| (1..steps).contains(step)).map(Gap::Before).collect();
            if leading {
                gaps.push(Gap::Leading);
            }
            if trailing {
                gaps.push(Gap::Trailing);
            }
            let max_partials = if gaps.is_empty() { max_partials } else { 1_000 };
            let flavor = if endgame { Flavor::Endgame } else { Flavor::Elasticsearch };
            // `fork` (endgame) on steps after the first.
            let forks = forks.into_iter().take(steps).enumerate().map(|(step, fork)| step > 0 && fork).collect();
            (Config { steps, leading, trailing, maxspan, flavor, max_partials, forks }, gaps)
        },
    )
}

fn stream(steps: usize, gaps: Vec<Gap>) -> impl Strategy<Value = Vec<Event>> {
    let gap_count = gaps.len().max(1);
    let event = (
        0i64..3,
        prop::collection::vec((0..steps, 0u8..3), 0..4),
        prop::collection::vec(0u8..3, 0..2),
        0u8..6,
        prop::collection::vec((0..gap_count, 0u8..3), 0..2),
    );
    prop::collection::vec(event, 0..80).prop_map(move |events| {
        let mut timestamp = 0;
        events
            .into_iter()
            .map(|(step, hits, until, until_odds, missing)| {
                timestamp += step;
                Event {
                    timestamp,
                    hits: hits.into_iter().map(|(step, n)| (step, key(n))).collect(),
                    // Until events are rarer than step hits.
                    until: if until_odds == 0 { until.into_iter().map(key).collect() } else { Vec::new() },
                    missing: if gaps.is_empty() { Vec::new() } else { missing.into_iter().map(|(gap, n)| (gaps[gap], key(n))).collect() },
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_machine_equals_the_naive_matcher((config, events) in config().prop_flat_map(|(config, gaps)| {
        let steps = config.steps;
        (Just(config), stream(steps, gaps))
    })) {
        let (expected, counters, open) = naive(&config, &events);
        let mut machine: Machine<u64> = Machine::new(config.clone());
        let mut done = Vec::new();
        for (id, event) in events.iter().enumerate() {
            let input = Input { id: &(id as u64), timestamp: event.timestamp, hits: &event.hits, until: &event.until, missing: &event.missing };
            machine.push(input, &mut done);
            prop_assert!(machine.open() <= config.max_partials);
            // Never early: what is out is the start of the final answer, which nothing
            // later can change.
            prop_assert!(expected.starts_with(&done), "released {:?} early or wrongly", done);
        }
        machine.finish(&mut done);
        prop_assert_eq!(&done, &expected);
        prop_assert_eq!(machine.counters, counters);
        prop_assert_eq!(machine.open(), open);
    }
}

/// The reference engines' own examples (../shared/guide/eql-semantics.md §4.3, §4.7).
#[test]
fn latest_partial_wins_and_one_event_advances_a_partial_once() {
    let run = |steps: usize, flavor: Flavor, events: &[(&[usize], bool)]| {
        let mut machine: Machine<u64> =
            Machine::new(Config { steps, leading: false, trailing: false, maxspan: None, flavor, max_partials: 100, forks: Vec::new() });
        let mut done = Vec::new();
        for (id, (steps, until)) in events.iter().enumerate() {
            let hits: Vec<(usize, Key)> = steps.iter().map(|step| (*step, key(0))).collect();
            let until: Vec<Key> = if *until { vec![key(0)] } else { Vec::new() };
            machine.push(Input { id: &(id as u64 + 1), timestamp: id as i64, hits: &hits, until: &until, missing: &[] }, &mut done);
        }
        events_of(&done)
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
fn a_fork_step_advances_a_copy() {
    // Over a1 b2 b3 c4, `[a][b] fork [c]` gives [a1, b3, c4]; without fork [a1, b2, c4]
    // (eql-semantics.md §4.3).
    let run = |forks: Vec<bool>| {
        let mut machine: Machine<u64> =
            Machine::new(Config { steps: 3, leading: false, trailing: false, maxspan: None, flavor: Flavor::Endgame, max_partials: 100, forks });
        let mut done = Vec::new();
        for (id, step) in [0usize, 1, 1, 2].into_iter().enumerate() {
            machine.push(Input { id: &(id as u64 + 1), timestamp: id as i64, hits: &[(step, key(0))], until: &[], missing: &[] }, &mut done);
        }
        events_of(&done)
    };
    assert_eq!(run(vec![false, true, false]), vec![vec![1, 3, 4]]);
    assert_eq!(run(Vec::new()), vec![vec![1, 2, 4]]);
}

#[test]
fn maxspan_is_inclusive_and_state_stays_under_the_cap() {
    let mut machine: Machine<u64> = Machine::new(Config {
        steps: 2,
        leading: false,
        trailing: false,
        maxspan: Some(10),
        flavor: Flavor::Elasticsearch,
        max_partials: 1_000,
        forks: Vec::new(),
    });
    let mut done = Vec::new();
    let push = |machine: &mut Machine<u64>, done: &mut Vec<Completed<u64>>, id: u64, timestamp: i64, step: usize, n: u8| {
        machine.push(Input { id: &id, timestamp, hits: &[(step, key(n))], until: &[], missing: &[] }, done);
    };
    push(&mut machine, &mut done, 1, 0, 0, 0);
    push(&mut machine, &mut done, 2, 10, 1, 0);
    push(&mut machine, &mut done, 3, 20, 0, 0);
    push(&mut machine, &mut done, 4, 31, 1, 0);
    assert_eq!(events_of(&done), vec![vec![1, 2]], "10 apart completes, 11 apart does not");
    assert_eq!(machine.counters.expired, 1);
    // 100,000 distinct keys under a cap of 1,000: never more open, the rest evicted.
    for n in 0..100_000u64 {
        machine.push(Input { id: &n, timestamp: 40, hits: &[(0, n.to_le_bytes().to_vec().into())], until: &[], missing: &[] }, &mut done);
        assert!(machine.open() <= 1_000);
    }
    assert_eq!(machine.counters.evicted, 99_000);
}

#[test]
fn what_missing_steps_keep_stays_under_the_cap() {
    // `[a] ![m]` (trailing) and `![m] [a]` (leading) over 100,000 distinct keys under a
    // cap of 1,000: at most 1,000 sequences wait for their window, at most 1,000 keys
    // of leading hits are kept; the rest evicted, counted.
    let config =
        Config { steps: 1, leading: false, trailing: true, maxspan: Some(1_000_000), flavor: Flavor::Elasticsearch, max_partials: 1_000, forks: Vec::new() };
    let mut machine: Machine<u64> = Machine::new(config);
    let mut done = Vec::new();
    for n in 0..100_000u64 {
        let key: Key = n.to_le_bytes().to_vec().into();
        machine.push(Input { id: &n, timestamp: n as i64, hits: &[(0, key)], until: &[], missing: &[] }, &mut done);
        assert!(machine.waiting() <= 1_000);
    }
    assert!(done.is_empty(), "no window has closed");
    assert_eq!(machine.counters.evicted, 99_000);
    machine.finish(&mut done);
    assert_eq!(done.len(), 1_000);
    assert_eq!(events_of(&done).first(), Some(&vec![99_000]), "the oldest were evicted");

    let config =
        Config { steps: 1, leading: true, trailing: false, maxspan: Some(1_000_000), flavor: Flavor::Elasticsearch, max_partials: 1_000, forks: Vec::new() };
    let mut machine: Machine<u64> = Machine::new(config);
    for n in 0..100_000u64 {
        let key: Key = n.to_le_bytes().to_vec().into();
        machine.push(Input { id: &n, timestamp: n as i64, hits: &[], until: &[], missing: &[(Gap::Leading, key)] }, &mut done);
    }
    assert_eq!(machine.counters.evicted, 99_000);
    // The newest 1,000 keys are still known: their step-0 events are ruled out; an
    // evicted key's is not.
    let mut done = Vec::new();
    for n in [99_999u64, 99_000, 98_999] {
        let key: Key = n.to_le_bytes().to_vec().into();
        machine.push(Input { id: &n, timestamp: 100_000, hits: &[(0, key)], until: &[], missing: &[] }, &mut done);
    }
    assert_eq!(events_of(&done), vec![vec![98_999]]);
    assert_eq!(machine.counters.ruled_out, 2);
}

#[test]
fn completed_partials_leave_nothing_behind_without_a_maxspan() {
    // A million two-step matches without maxspan, far under the cap: nothing expires,
    // yet the expiry queue stays within twice the open partials (it is compacted).
    let config = Config { steps: 2, leading: false, trailing: false, maxspan: None, flavor: Flavor::Elasticsearch, max_partials: 1_000_000, forks: Vec::new() };
    let mut machine: Machine<u64> = Machine::new(config);
    let mut done = Vec::new();
    for n in 0..1_000_000u64 {
        let key: Key = (n % 7).to_le_bytes().to_vec().into();
        machine.push(Input { id: &n, timestamp: n as i64, hits: &[(0, key.clone())], until: &[], missing: &[] }, &mut done);
        machine.push(Input { id: &n, timestamp: n as i64, hits: &[(1, key)], until: &[], missing: &[] }, &mut done);
        done.clear();
        assert!(machine.queued() <= 2 * machine.open() + 66, "{} queue entries for {} open partials", machine.queued(), machine.open());
    }
}
