//! Replay throughput, release build: `cargo bench -p kestrel-rt --bench replay [-- OPTIONS]`.
//!
//! In one run, on the same events (synthetic Elastic Defend–like NDJSON, `events.rs`, or
//! `--events FILE`), for one query and for every Linux rule of ../shared/corpus that
//! builds:
//!
//! - **end to end**: NDJSON bytes → `Replay` (projection parser, timestamp order, engine,
//!   alerts rendered into a `Vec`), as `kestrel replay` runs; when the bundle has a
//!   prefilter, also without it (every line's fields read);
//! - **engine only**: the events are parsed into `Event`s first (not timed), then
//!   `Engine::run` (a chunk of events at a time, its alerts counted and dropped, as
//!   `kestrel replay` runs it) + `finish` are timed;
//! - a breakdown of the end-to-end time: line splitting, the projection parser alone,
//!   `EventReader::read` (projection + `Event`), replay in input order (no reorder window).
//!
//! Each figure is the median of `--reps` runs after one warm-up run. The runtime is
//! single-threaded, so events/s is also events/s per core. Options: `--events FILE`,
//! `--count N`, `--seed S`, `--reps R`, `--query Q`, `--dialect endgame|elasticsearch`,
//! `--no-corpus`, `--json-out FILE` (the figures as JSON, for bench/compare-python.sh).
//! Without `--bench` (which `cargo bench` passes), e.g. under `cargo test --benches`, it
//! runs a small smoke test instead.

mod events;
mod rules;

use eqlc::dialect::Dialect;
use kestrel_rt::engine::{DEFAULT_MAX_BUFFERED, Engine, Event};
use kestrel_rt::ndjson::Projection;
use kestrel_rt::program::Program;
use kestrel_rt::replay::{CHUNK, EventReader, Options, Order, Replay};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Replay allocates a few small values per event (decoded strings, field vectors);
/// mimalloc serves them faster than the system allocator. The bench measures with the
/// allocator the `kestrel` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The default query: a simple filter that python `eql` reads the same way.
const QUERY: &str = r#"process where process.name == "bash""#;

struct Args {
    events: Option<PathBuf>,
    count: usize,
    seed: u64,
    reps: usize,
    query: String,
    dialect: Dialect,
    corpus: bool,
    json_out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !raw.iter().any(|arg| arg == "--bench");
    let mut args = Args {
        events: None,
        count: if smoke { 2_000 } else { 200_000 },
        seed: 1,
        reps: if smoke { 1 } else { 7 },
        query: QUERY.to_string(),
        dialect: Dialect::Endgame,
        corpus: true,
        json_out: None,
    };
    let mut iter = raw.into_iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("`{arg}` needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--events" => args.events = Some(PathBuf::from(value()?)),
            "--count" => args.count = value()?.parse().map_err(|_| "--count takes a number")?,
            "--seed" => args.seed = value()?.parse().map_err(|_| "--seed takes a number")?,
            "--reps" => args.reps = value()?.parse::<usize>().map_err(|_| "--reps takes a number")?.max(1),
            "--query" => args.query = value()?,
            "--dialect" => {
                args.dialect = match value()?.as_str() {
                    "endgame" => Dialect::Endgame,
                    "elasticsearch" => Dialect::Elasticsearch,
                    other => return Err(format!("unknown dialect `{other}`")),
                }
            }
            "--no-corpus" => args.corpus = false,
            "--json-out" => args.json_out = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("replay bench: {message}");
            std::process::exit(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("WARNING: a debug build; figures are meaningless. Use `cargo bench`.");
    }
    let input = Input::load(&args);
    println!(
        "events: {} lines, {:.1} MB ({:.0} bytes/line){}; {} runs after a warm-up, median; single-threaded: events/s = events/s/core",
        input.lines,
        input.bytes.len() as f64 / 1e6,
        input.bytes.len() as f64 / input.lines.max(1) as f64,
        input.origin,
        args.reps
    );
    let mut report = serde_json::json!({ "events": input.lines, "bytes": input.bytes.len(), "reps": args.reps });

    let dialect = match args.dialect {
        Dialect::Endgame => "endgame",
        Dialect::Elasticsearch => "elasticsearch",
    };
    let bundle = rules::single(&args.query, args.dialect).unwrap_or_else(|message| panic!("{message}"));
    println!("\n== one rule ({dialect} dialect): {}", args.query);
    report["single"] = bench_bundle(&bundle, &input, args.reps);
    report["single"]["query"] = args.query.clone().into();
    report["single"]["dialect"] = dialect.into();

    if args.corpus {
        let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
        match rules::corpus(&shared) {
            None => println!("\nSKIPPED: the corpus rule set: ../shared/corpus is not present beside the repository ({})", shared.display()),
            Some(Err(message)) => panic!("{message}"),
            Some(Ok(corpus)) => {
                println!(
                    "\n== every Linux rule of ../shared/corpus that builds: {} of {} (check errors {}, E0701 unsupported {}, other build errors {})",
                    corpus.rules, corpus.linux, corpus.check_errors, corpus.unsupported, corpus.build_errors
                );
                let mut figures = bench_bundle(&corpus.bundle, &input, args.reps);
                figures["linux_rules"] = corpus.linux.into();
                figures["rules"] = corpus.rules.into();
                figures["check_errors"] = corpus.check_errors.into();
                figures["unsupported"] = corpus.unsupported.into();
                figures["build_errors"] = corpus.build_errors.into();
                report["corpus"] = figures;
            }
        }
    }
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{report}\n")).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    }
}

/// The NDJSON input, in memory, and its lines.
struct Input {
    bytes: Vec<u8>,
    lines: usize,
    origin: String,
    /// The file the events came from: the end-to-end rows read it as `kestrel replay`
    /// does (from the page cache, after the first read), not the copy in `bytes`.
    path: Option<std::path::PathBuf>,
}

impl Input {
    fn load(args: &Args) -> Input {
        let (bytes, origin) = match &args.events {
            Some(path) => (std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display())), format!(" from {}", path.display())),
            None => {
                let mut bytes = Vec::new();
                events::write_events(&mut bytes, args.count, args.seed).expect("writing to memory");
                (bytes, format!(", generated (seed {})", args.seed))
            }
        };
        let mut input = Input { bytes, lines: 0, origin, path: args.events.clone() };
        input.lines = input.lines().count();
        input
    }

    /// The non-blank lines, split with memchr and checked as UTF-8 as `Replay` does.
    fn lines(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', &self.bytes).chain(std::iter::once(self.bytes.len()));
        ends.filter_map(move |end| {
            let line = self.bytes.get(start..end)?;
            start = end + 1;
            std::str::from_utf8(line).ok().filter(|line| !line.trim().is_empty())
        })
    }
}

/// Runs `run` once to warm up, then `reps` times; returns the median time and the last result.
fn measure<T>(reps: usize, mut run: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    let _ = run();
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let (time, value) = run();
        times.push(time);
        last = Some(value);
    }
    times.sort();
    (times[times.len() / 2], last.expect("at least one run"))
}

fn timed<T>(run: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let value = run();
    (start.elapsed(), value)
}

/// One line of figures; returns them as JSON.
fn row(label: &str, time: Duration, input: &Input, matches: Option<u64>) -> serde_json::Value {
    let seconds = time.as_secs_f64();
    let rate = input.lines as f64 / seconds;
    let matches_text = matches.map(|count| format!(", {count} matches")).unwrap_or_default();
    println!(
        "  {label:<44} {:>9.1} ms  {:>7.3} M events/s  {:>6.0} MB/s  {:>6.0} ns/event{matches_text}",
        seconds * 1e3,
        rate / 1e6,
        input.bytes.len() as f64 / seconds / 1e6,
        seconds * 1e9 / input.lines as f64
    );
    serde_json::json!({ "seconds": seconds, "events_per_s": rate, "mb_per_s": input.bytes.len() as f64 / seconds / 1e6, "matches": matches })
}

fn replay(program: &Arc<Program>, input: &Input, order: Order) -> (Duration, u64) {
    replay_threads(program, input, order, 1)
}

/// Where a timed replay writes its alerts: counted and dropped, as `kestrel replay`
/// writes them to `/dev/null` (a vector growing to megabytes would time its
/// reallocations and fresh pages, which no replay to a file or a pipe has).
#[derive(Default)]
struct Discard {
    bytes: usize,
}

impl std::io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `threads` parse (the engine runs on the caller's thread).
fn replay_threads(program: &Arc<Program>, input: &Input, order: Order, threads: usize) -> (Duration, u64) {
    let mut sink = Discard::default();
    timed(|| {
        let options = Options { order, threads, ..Options::default() };
        let mut replay = Replay::new(program.clone(), options, &mut sink).expect("the engine starts");
        let mut bad = 0u64;
        match &input.path {
            Some(path) => replay.read_all("bench", std::fs::File::open(path).expect("the events file"), &mut |_| bad += 1).expect("reading the events"),
            None => replay.read_all("bench", input.bytes.as_slice(), &mut |_| bad += 1).expect("reading from memory"),
        }
        let summary = replay.finish().expect("writing to memory");
        assert_eq!(bad, 0, "the events are all valid");
        assert_eq!(summary.events as usize, input.lines, "every event runs");
        assert_eq!(summary.alerts > 0, sink.bytes > 0, "the alerts are written");
        summary.alerts
    })
}

fn bench_bundle(bytes: &[u8], input: &Input, reps: usize) -> serde_json::Value {
    let (load, program) = timed(|| Program::load(bytes).unwrap_or_else(|error| panic!("the runtime refuses the bundle: {error}")));
    let program = Arc::new(program);
    let fields = program.bundle.fields.len();
    println!(
        "  bundle: {} KB, {} rules, {} fields read, {} predicates; Program::load {:.1} ms (not timed below)",
        bytes.len() / 1024,
        program.bundle.rules.len(),
        fields,
        program.bundle.functions.predicates.len(),
        load.as_secs_f64() * 1e3
    );
    let mut report = serde_json::json!({ "bundle_bytes": bytes.len(), "fields": fields, "load_seconds": load.as_secs_f64() });

    // For profiling one phase: KESTREL_BENCH_ONLY=engine, =end-to-end or =parallel.
    let only = std::env::var("KESTREL_BENCH_ONLY").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if only == "parallel" {
        let (time, alerts) = measure(reps, || replay_threads(&program, input, Order::Timestamp, cores));
        report["end_to_end_parallel"] = row(&format!("end to end, {cores} parsing threads (kestrel replay's default)"), time, input, Some(alerts));
        return report;
    }
    if only == "end-to-end" {
        let (time, alerts) = measure(reps, || replay(&program, input, Order::Timestamp));
        report["end_to_end"] = row("end to end: kestrel replay (timestamp order)", time, input, Some(alerts));
        return report;
    }
    let (time, alerts) = if only == "engine" { (Duration::ZERO, 0) } else { measure(reps, || replay(&program, input, Order::Timestamp)) };
    report["end_to_end"] = row("end to end: kestrel replay (timestamp order)", time, input, Some(alerts));
    // The same bundle without its prefilter: every line's fields read.
    let unfiltered = match &program.bundle.prefilter {
        None => program.clone(),
        Some(_) => {
            let bytes = kestrel_bundle::Bundle { prefilter: None, ..(*program.bundle).clone() }.to_bytes().expect("the bundle writes");
            Arc::new(Program::load(&bytes).expect("the bundle loads"))
        }
    };
    if only.is_empty()
        && let Some(prefilter) = &program.bundle.prefilter
    {
        let (time, alerts) = measure(reps, || replay(&unfiltered, input, Order::Timestamp));
        let label = format!("  the same, every line's fields read (no prefilter; it passes over lines without {:?})", prefilter.literals);
        report["end_to_end_all_read"] = row(&label, time, input, Some(alerts));
    }

    if only.is_empty() && cores > 1 {
        let (time, alerts) = measure(reps, || replay_threads(&program, input, Order::Timestamp, cores));
        report["end_to_end_parallel"] = row(&format!("end to end, {cores} parsing threads (kestrel replay's default)"), time, input, Some(alerts));
        report["end_to_end_parallel"]["threads"] = cores.into();
    }
    // The events as the engine takes them, parsed once, every line's fields read (the
    // engine's own work, not the prefilter's). Without their lines: the engine never
    // reads them (replay attaches a line to a match only).
    let mut reader = EventReader::new(&unfiltered);
    let events: Vec<Event> = input
        .lines()
        .map(|line| {
            let (mut event, timestamp) = reader.read_fields(line).expect("valid events");
            event.timestamp = timestamp.unwrap_or(0);
            event
        })
        .collect();
    let engine_only = |program: &Arc<Program>| {
        measure(reps, || {
            let mut engine = Engine::new(program.clone(), DEFAULT_MAX_BUFFERED).expect("the engine starts");
            let mut alerts = Vec::new();
            timed(|| {
                // As `kestrel replay` runs the engine (and as python's side counts results
                // in its output hook): chunk by chunk, each chunk's alerts taken away.
                let mut count = 0;
                for (chunk, part) in events.chunks(CHUNK).enumerate() {
                    engine.run(part, chunk * CHUNK, &mut alerts);
                    count += alerts.len() as u64;
                    alerts.clear();
                }
                engine.finish(&mut alerts);
                count + alerts.len() as u64
            })
        })
    };
    let (time, alerts) = engine_only(&program);
    report["engine_only"] = row("engine only: Engine::run + finish on Events", time, input, Some(alerts));
    // The same bundle without its needs: every candidate predicate runs on every event.
    if let Some(needs) = &program.bundle.needs {
        let bytes = kestrel_bundle::Bundle { needs: None, ..(*program.bundle).clone() }.to_bytes().expect("the bundle writes");
        let (time, alerts) = engine_only(&Arc::new(Program::load(&bytes).expect("the bundle loads")));
        let label = format!("  the same, every candidate predicate run (no needs; {} of its predicates have some)", needs.predicates.len());
        report["engine_only_no_needs"] = row(&label, time, input, Some(alerts));
    }
    drop(events);
    if only == "engine" {
        return report;
    }

    println!("  where the end-to-end time goes:");
    let (time, count) = measure(reps, || timed(|| input.lines().count()));
    assert_eq!(count, input.lines);
    report["split_lines"] = row("  split lines + UTF-8 check", time, input, None);
    let (time, ends) =
        measure(reps, || timed(|| input.lines().map(|line| kestrel_rt::json_scan::skip_container(line.as_bytes(), 0).unwrap_or(0)).sum::<usize>()));
    assert!(ends > 0);
    report["skip_whole"] = row("  + skipping each line whole (json_scan: the floor)", time, input, None);
    let mut names: Vec<&str> = program.bundle.fields.iter().map(|field| field.name.as_str()).collect();
    for special in [&program.bundle.manifest.timestamp_field, &program.bundle.manifest.category_field] {
        if !names.contains(&special.as_str()) {
            names.push(special);
        }
    }
    let projection = Projection::new(names.iter().copied());
    let (time, ()) = measure(reps, || {
        let mut scratch = Vec::new();
        timed(|| {
            for line in input.lines() {
                projection.read(line, &mut scratch).expect("valid events");
            }
        })
    });
    report["projection"] = row("  + projection parser (Projection::read)", time, input, None);
    let (time, ()) = measure(reps, || {
        let mut reader = EventReader::new(&program);
        timed(|| {
            for line in input.lines() {
                std::hint::black_box(reader.read(line).expect("valid events"));
            }
        })
    });
    report["reader"] = row("  + Event building (EventReader::read)", time, input, None);
    let (time, alerts) = measure(reps, || replay(&program, input, Order::Input));
    report["end_to_end_input_order"] = row("  end to end in input order (no reorder window)", time, input, Some(alerts));
    if program.bundle.rules.len() > 1 {
        top_rules(&program, input);
    }
    report
}

/// The rules that take the most evaluation time, as `kestrel replay`'s profile estimates it.
fn top_rules(program: &Arc<Program>, input: &Input) {
    let mut sink: Vec<u8> = Vec::new();
    let options = Options { profile: true, ..Options::default() };
    let mut replay = Replay::new(program.clone(), options, &mut sink).expect("the engine starts");
    replay.read_all("bench", input.bytes.as_slice(), &mut |_| {}).expect("reading from memory");
    let mut rules = replay.finish().expect("writing to memory").rules;
    let total: Duration = rules.iter().map(|rule| rule.stats.time).sum();
    rules.sort_by_key(|rule| std::cmp::Reverse(rule.stats.time));
    let top: Duration = rules.iter().take(10).map(|rule| rule.stats.time).sum();
    println!(
        "  evaluation time by rule (sampled): the 10 slowest of {} rules take {:.0}% of it",
        rules.len(),
        100.0 * top.as_secs_f64() / total.as_secs_f64().max(f64::MIN_POSITIVE)
    );
    for rule in rules.iter().take(10) {
        println!("    {:>5.1}%  {}", 100.0 * rule.stats.time.as_secs_f64() / total.as_secs_f64().max(f64::MIN_POSITIVE), rule.name);
    }
}
