//! The sequence executor (`kestrel_rt::sequence::Machine`), release build
//! (docs/benchmarks.md): throughput with many open partial matches, alone and through
//! the whole engine, memory per open partial, and state under the cap with a million
//! distinct keys.
//!
//! `cargo bench -p kestrel-rt --bench sequence`. Under `cargo test --benches` it runs
//! small sizes once, as a smoke test.

use kestrel_rt::sequence::{Config, DEFAULT_MAX_PARTIALS, Flavor, Input, Key, Machine};
use std::sync::Arc;
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
    format!("s/host-{n:08}/user-{}", n % 97).into_bytes().into()
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
    let mut machine: Machine<u64> = three_steps(Some(hour), DEFAULT_MAX_PARTIALS);
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
    // For profiling the engine part alone: `--engine-only`.
    if args.iter().any(|arg| arg == "--engine-only") {
        let (rate, alerts, _) = through_the_engine(open, if smoke { 2_000 } else { 1_000_000 });
        println!("through the whole engine: {:.2} M events/s, {alerts} sequences", rate / 1e6);
        return;
    }
    let rate = (0..if smoke { 1 } else { 5 }).map(|_| open_partials(open, events)).fold(f64::NAN, f64::max);
    println!("3-step sequence by key, maxspan 1h, {open} open partials: {:.2} M events/s (best of 5; the machine alone)", rate / 1e6);
    let engine_events = if smoke { 2_000 } else { 1_000_000 };
    let (rate, alerts, still_open) = (0..if smoke { 1 } else { 5 })
        .map(|_| through_the_engine(open, engine_events))
        .fold((f64::NAN, 0, 0), |best, run| if run.0 > best.0 || best.0.is_nan() { run } else { best });
    println!(
        "the same through the whole engine (Engine::run on parsed events: Wasm step predicates, keys read from the guest, the machine): {:.2} M events/s (best of 5), {alerts} sequences, {still_open} partials open at the end",
        rate / 1e6
    );
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

/// The rule and events of [`open_partials`], through the whole engine: a bundle built
/// by eqlc, events parsed first (not timed), then `Engine::run` + `finish` timed.
/// Returns events/s, sequences completed, and partials still open at the end.
fn through_the_engine(open: u64, events: u64) -> (f64, usize, u64) {
    use kestrel_rt::engine::{DEFAULT_MAX_BUFFERED, Engine, Event};
    use kestrel_rt::program::Program;
    use kestrel_rt::replay::EventReader;
    let query = r#"sequence by host.id with maxspan=1h
  [process where event.type == "start" and process.name == "curl"]
  [file where event.type == "creation" and file.extension == "sh"]
  [network where event.action == "connection_attempted"]"#;
    let schema = kestrel_bundle::schema::Schema::builtin("linux").expect("built in");
    let options = eqlc::check::Options::elasticsearch(&schema);
    let mut sources = eqlc::source::SourceMap::new();
    let (rule_sources, _) = eqlc::rules::split("bench.eql", query.to_string(), eqlc::rules::FileKind::Eql, &mut sources);
    let rule = eqlc::driver::check_rule(&rule_sources[0], &sources, &options);
    assert!(!rule.has_errors(), "the bench rule checks");
    let (bytes, diags) = eqlc::driver::build(std::slice::from_ref(&rule), &schema, &[]);
    let program = Arc::new(Program::load(&bytes.unwrap_or_else(|| panic!("the bench rule builds: {diags:?}"))).expect("loads"));
    let second = 1_000_000_000i64;
    let line = |step: u64, host: u64, at: i64| {
        let time = kestrel_rt::time::format_rfc3339(1_700_000_000 * second + at);
        let host = format!("host-{host:08}");
        match step {
            0 => format!(
                r#"{{"@timestamp":"{time}","event":{{"category":["process"],"type":["start"]}},"host":{{"id":"{host}"}},"process":{{"name":"curl","pid":1}}}}"#
            ),
            1 => format!(
                r#"{{"@timestamp":"{time}","event":{{"category":["file"],"type":["creation"]}},"host":{{"id":"{host}"}},"file":{{"extension":"sh","path":"/tmp/x.sh"}}}}"#
            ),
            _ => format!(
                r#"{{"@timestamp":"{time}","event":{{"category":["network"],"action":"connection_attempted"}},"host":{{"id":"{host}"}},"destination":{{"port":443}}}}"#
            ),
        }
    };
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut lines: Vec<String> = (0..open).map(|host| line(0, host, host as i64 * 1_000)).collect();
    lines.extend((0..events).map(|n| line(random.next(3), random.next(open), (open + n) as i64 * 1_000)));
    let mut reader = EventReader::new(&program);
    let parsed: Vec<Event> = lines
        .iter()
        .map(|line| {
            let (mut event, timestamp) = reader.read_fields(line).expect("valid events");
            event.timestamp = timestamp.expect("timed");
            event
        })
        .collect();
    // Profiling (`--engine-only` under perf) repeats the timed part, so that it dominates.
    let repeats = if std::env::args().any(|arg| arg == "--engine-only") { 10 } else { 1 };
    let (mut engine, mut found, mut seconds) = (None, 0, 0.0);
    for _ in 0..repeats {
        let mut fresh = Engine::new(program.clone(), DEFAULT_MAX_BUFFERED).expect("the engine starts");
        let mut alerts = Vec::new();
        fresh.run(&parsed[..open as usize], 0, &mut alerts);
        found = 0;
        let started = Instant::now();
        // In chunks, as `kestrel replay` runs it (alerts written and dropped as it goes).
        for (idx, chunk) in parsed[open as usize..].chunks(4096).enumerate() {
            fresh.run(chunk, open as usize + idx * 4096, &mut alerts);
            found += alerts.len();
            alerts.clear();
        }
        fresh.finish(&mut alerts);
        found += alerts.len();
        seconds = started.elapsed().as_secs_f64();
        engine = Some(fresh);
    }
    let engine = engine.expect("ran once");
    let counters = engine.stats.rules[0].sequence;
    let still_open = counters.started - counters.completed - counters.replaced - counters.expired - counters.evicted;
    assert!(still_open >= open / 2, "partials stay open: {still_open}");
    (events as f64 / seconds, found, still_open)
}

/// The benches' rule: a 3-step sequence by key.
fn three_steps(maxspan: Option<u64>, max_partials: usize) -> Machine<u64> {
    Machine::new(Config { steps: 3, leading: false, trailing: false, maxspan, flavor: Flavor::Elasticsearch, max_partials, forks: Vec::new() })
}

/// A million distinct keys under the default cap: never more open, the rest evicted.
fn under_the_cap(keys: u64) {
    let before = rss();
    let mut done = Vec::new();
    let mut machine: Machine<u64> = three_steps(None, DEFAULT_MAX_PARTIALS);
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
    let mut machine: Machine<u64> = three_steps(None, keys as usize);
    for n in 0..keys {
        machine.push(Input { id: &n, timestamp: n as i64, hits: &[(0, key(n))], until: &[], missing: &[] }, &mut done);
    }
    if let (Some(before), Some(after)) = (before, rss()) {
        let each = after.saturating_sub(before) as f64 / machine.open() as f64;
        println!("{} open partials: {each:.0} bytes each (RSS growth / partials; keys of {} bytes)", machine.open(), key(0).len());
    }
}
