//! The sequence executor alone (`kestrel_rt::sequence::Machine`), release build
//! (docs/benchmarks.md): throughput with many open partial matches, memory per open
//! partial, and state under the cap with a million distinct keys.
//!
//! `cargo bench -p kestrel-rt --bench sequence`. Under `cargo test --benches` it runs
//! small sizes once, as a smoke test.

use kestrel_rt::sequence::{Config, DEFAULT_MAX_PARTIALS, Flavor, Input, Key, Machine};
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Random(u64);

impl Random {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn key(n: u64) -> Key {
    // As the key encoder writes a string key: a tag, then the bytes.
    format!("s/host-{n:08}/user-{}", n % 97).into_bytes().into_boxed_slice()
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// A 3-step sequence by key with a one-hour maxspan; `open` keys hold a partial each;
/// then `events` events hit random steps of random open keys, a microsecond apart.
fn open_partials(open: u64, events: u64) -> f64 {
    let hour = 3_600_000_000_000;
    let mut machine: Machine<u64> = Machine::new(Config {
        steps: 3,
        leading: false,
        trailing: false,
        maxspan: Some(hour),
        flavor: Flavor::Elasticsearch,
        max_partials: DEFAULT_MAX_PARTIALS,
        forks: Vec::new(),
    });
    let keys: Vec<Key> = (0..open).map(key).collect();
    let mut done = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        machine.push(Input { id: &(n as u64), timestamp: n as i64, hits: &[(0, key.clone())], until: &[], missing: &[] }, &mut done);
    }
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let stream: Vec<[(usize, Key); 1]> = (0..events).map(|_| [(random.next(3) as usize, keys[random.next(open) as usize].clone())]).collect();
    let started = Instant::now();
    for (n, hits) in stream.iter().enumerate() {
        machine.push(Input { id: &(n as u64), timestamp: open as i64 + n as i64 * 1_000, hits, until: &[], missing: &[] }, &mut done);
        if done.len() > 4096 {
            done.clear();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    assert!(machine.open() as u64 >= open / 2, "partials stay open: {}", machine.open());
    events as f64 / seconds
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = !args.iter().any(|arg| arg == "--bench");
    let (open, events, keys) = if smoke { (200, 2_000, 20_000) } else { (20_000, 2_000_000, 1_000_000) };
    // Memory is measured in a fresh process each (RSS never shrinks: a measure after
    // another would reuse its freed memory).
    if let Some(at) = args.iter().position(|arg| arg == "--measure") {
        match args.get(at + 1).map(String::as_str) {
            Some("cap") => under_the_cap(keys),
            Some("per-partial") => per_partial(keys),
            other => panic!("unknown measure {other:?}"),
        }
        return;
    }
    let rate = (0..if smoke { 1 } else { 5 }).map(|_| open_partials(open, events)).fold(f64::NAN, f64::max);
    println!("3-step sequence by key, maxspan 1h, {open} open partials: {:.2} M events/s (best of 5; the machine alone)", rate / 1e6);
    for measure in ["per-partial", "cap"] {
        let mut command = std::process::Command::new(std::env::current_exe().expect("this bench"));
        command.args(["--measure", measure]);
        if !smoke {
            command.arg("--bench");
        }
        let status = command.status().expect("run this bench again");
        assert!(status.success(), "{measure} failed");
    }
}

/// A million distinct keys under the default cap: never more open, the rest evicted.
fn under_the_cap(keys: u64) {
    let before = rss();
    let mut done = Vec::new();
    let mut machine: Machine<u64> = Machine::new(Config {
        steps: 3,
        leading: false,
        trailing: false,
        maxspan: None,
        flavor: Flavor::Elasticsearch,
        max_partials: DEFAULT_MAX_PARTIALS,
        forks: Vec::new(),
    });
    let mut peak = 0;
    for n in 0..keys {
        machine.push(Input { id: &n, timestamp: n as i64, hits: &[(0, key(n))], until: &[], missing: &[] }, &mut done);
        peak = peak.max(machine.open());
    }
    assert!(peak <= DEFAULT_MAX_PARTIALS);
    let growth = match (before, rss()) {
        (Some(before), Some(after)) => format!("RSS grew {:.1} MB", after.saturating_sub(before) as f64 / 1e6),
        _ => "RSS unknown".to_string(),
    };
    println!("{keys} distinct keys, default cap {DEFAULT_MAX_PARTIALS}: at most {peak} open, {} evicted; {growth}", machine.counters.evicted);
}

/// Memory per open partial: a million of them, the cap high enough to keep them all.
fn per_partial(keys: u64) {
    let before = rss();
    let mut done = Vec::new();
    let mut machine: Machine<u64> = Machine::new(Config {
        steps: 3,
        leading: false,
        trailing: false,
        maxspan: None,
        flavor: Flavor::Elasticsearch,
        max_partials: keys as usize,
        forks: Vec::new(),
    });
    for n in 0..keys {
        machine.push(Input { id: &n, timestamp: n as i64, hits: &[(0, key(n))], until: &[], missing: &[] }, &mut done);
    }
    if let (Some(before), Some(after)) = (before, rss()) {
        let each = after.saturating_sub(before) as f64 / machine.open() as f64;
        println!("{} open partials: {each:.0} bytes each (RSS growth / partials; keys of {} bytes)", machine.open(), key(0).len());
    }
}
