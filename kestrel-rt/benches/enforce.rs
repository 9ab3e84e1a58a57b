//! Enforcement benchmark (root only): what the exec hook costs every exec, how long a
//! decision takes, and how many decisions per second it sustains, on this machine.
//!
//! `cargo bench -p kestrel-rt --bench enforce [-- --execs 2000 --seconds 5]`
//!
//! The rules are the built-in ones (rules/) plus the enforcement test rules
//! (kestrel-rt/tests/enforce/: `block` and `kill` rules), compiled with eqlc; none of them
//! matches `/bin/true`. Three phases run the same exec loop (`execs` spawns of
//! `/bin/true`, one after another): no Kestrel (the baseline), `kestrel run` in shadow
//! mode (probes and rules, no hook), `kestrel run --enforce` (every exec paused for a
//! decision). The exec cost of each phase is its mean time per spawn; the hook's cost is
//! enforce against shadow, as a ratio and in µs, measured in the same run. Then, still
//! under `--enforce`, two threads spawn as fast as they can for `seconds`: the decisions
//! per second. The decision latency (from the `execve` entry, the probes' stamp, to the
//! answer: p50, p99, p99.9) is Kestrel's own, from its summary.

#[path = "../tests/live/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    execs: usize,
    seconds: f64,
}

fn args() -> Args {
    let mut args = Args { execs: 2000, seconds: 5.0 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--execs" => args.execs = it.next().and_then(|value| value.parse().ok()).unwrap_or(args.execs),
            "--seconds" => args.seconds = it.next().and_then(|value| value.parse().ok()).unwrap_or(args.seconds),
            _ => {}
        }
    }
    args
}

/// The built-in rules and the enforcement test rules, compiled.
fn bundle(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![root.join("../rules")];
    let mut tests: Vec<PathBuf> = std::fs::read_dir(root.join("tests/enforce")).unwrap().map(|entry| entry.unwrap().path()).collect();
    tests.sort();
    paths.extend(tests.into_iter().filter(|path| path.extension().is_some_and(|ext| ext == "toml")));
    let schema = kestrel_bundle::schema::Schema::builtin("linux").unwrap();
    let options = eqlc::check::Options::elasticsearch(&schema);
    let mut sources = eqlc::source::SourceMap::new();
    let bytes = eqlc::driver::build_paths(&paths, &options, &mut sources).unwrap_or_else(|diags| panic!("the rules do not build: {diags:?}"));
    let path = dir.join("enforce-bench.kbundle");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Spawns `/bin/true` `count` times, one after another; the mean time per spawn.
fn exec_loop(count: usize) -> Duration {
    let started = Instant::now();
    for _ in 0..count {
        assert!(Command::new("/bin/true").status().unwrap().success());
    }
    started.elapsed() / count as u32
}

/// Two threads spawning `/bin/true` for `seconds`; the spawns done.
fn exec_storm(seconds: f64) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (stop, done) = (stop.clone(), done.clone());
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = Command::new("/bin/true").status();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed)
}

/// The number before `label` in `text` ("... 12 decided, ...").
fn count_before(text: &str, label: &str) -> Option<u64> {
    text.split(label).next()?.rsplit(' ').next()?.parse().ok()
}

fn main() {
    if let Some(why) = support::cannot_run() {
        eprintln!("SKIPPED: the enforcement benchmark: {why}");
        return;
    }
    let args = args();
    let dir = std::env::temp_dir().join(format!("kestrel-bench-enforce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = bundle(&dir);
    let start = |enforce: bool| {
        let mut run_args: Vec<std::ffi::OsString> =
            vec!["--bundle".into(), bundle.clone().into(), "--alerts".into(), "/dev/null".into(), "--stats-interval".into(), "600".into()];
        if enforce {
            run_args.push("--enforce".into());
        }
        let running = support::start(env!("CARGO_BIN_EXE_kestrel"), run_args);
        std::thread::sleep(Duration::from_millis(1000));
        running
    };
    // Warm the page cache and the loader.
    exec_loop(100);
    let none = exec_loop(args.execs);

    let shadow_run = start(false);
    let shadow = exec_loop(args.execs);
    let (_, _) = shadow_run.stop();

    let enforce_run = start(true);
    let enforce = exec_loop(args.execs);
    let (_, sequential_log) = enforce_run.stop();

    let storm_run = start(true);
    let started = Instant::now();
    let spawned = exec_storm(args.seconds);
    let storm_time = started.elapsed();
    let (_, storm_log) = storm_run.stop();
    let none_again = exec_loop(args.execs);
    let _ = std::fs::remove_dir_all(&dir);

    let hook_line = |log: &str| log.lines().find(|line| line.starts_with("exec hook:")).unwrap_or("exec hook: (no summary)").to_string();
    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    println!("enforcement benchmark: {} sequential execs of /bin/true per phase, 2 cores", args.execs);
    println!("  no kestrel           {:>9.1} µs per exec (again at the end: {:.1})", micros(none), micros(none_again));
    println!("  kestrel, shadow mode {:>9.1} µs per exec  (×{:.3} against no kestrel)", micros(shadow), shadow.as_secs_f64() / none.as_secs_f64());
    println!(
        "  kestrel --enforce    {:>9.1} µs per exec  (×{:.3} against shadow mode: +{:.1} µs per exec for the hook; ×{:.3} against no kestrel)",
        micros(enforce),
        enforce.as_secs_f64() / shadow.as_secs_f64(),
        micros(enforce) - micros(shadow),
        enforce.as_secs_f64() / none.as_secs_f64()
    );
    println!("  sequential phase:    {}", hook_line(&sequential_log));
    let decided = count_before(&hook_line(&storm_log), " decided").unwrap_or(0);
    let timeouts = count_before(&hook_line(&storm_log), " allowed at the deadline").unwrap_or(0);
    println!(
        "  exec storm (2 threads, {:.1} s): {spawned} spawns, {decided} decisions = {:.0} decisions/s, {timeouts} allowed at the deadline",
        storm_time.as_secs_f64(),
        decided as f64 / storm_time.as_secs_f64()
    );
    println!("  storm phase:         {}", hook_line(&storm_log));
}
