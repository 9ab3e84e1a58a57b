//! Live sensor benchmark (root only): how many kernel events per second `kestrel run`
//! sustains with the built-in rules, whether any are dropped, what CPU it uses, and
//! what it costs the workload, on this machine.
//!
//! `cargo bench -p kestrel-rt --bench live [-- --seconds 10 --workers 2 --files-only]`
//!
//! The workload is `workers` threads, each looping over: spawn `/bin/true` (fork, exec,
//! end), create + write + rename + delete a file in a temporary directory (creation,
//! rename, deletion), and a TCP connect to a local listener that accepts
//! (connection_attempted, connection_accepted). It runs for a fixed number of rounds
//! twice: alone (the baseline), then under `kestrel run` (the same release binary the
//! user runs). Figures: events the engine received per second of the loaded phase,
//! kernel and user drops (from the metrics file), kestrel's CPU time as a share of one
//! core, and the workload's slowdown as a ratio to its own baseline in the same run.

#[path = "../tests/live/support.rs"]
mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    seconds: f64,
    workers: usize,
    /// Only file operations (creation, rename, deletion): the highest event rate the
    /// workload can offer, to find where kestrel starts to drop.
    files_only: bool,
}

fn args() -> Args {
    let mut args = Args { seconds: 10.0, workers: 2, files_only: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => args.seconds = it.next().and_then(|value| value.parse().ok()).unwrap_or(args.seconds),
            "--workers" => args.workers = it.next().and_then(|value| value.parse().ok()).unwrap_or(args.workers),
            "--files-only" => args.files_only = true,
            _ => {}
        }
    }
    args
}

/// One round of the workload; returns the events it should cause. `files_only` rounds
/// skip the spawn and the connection.
fn round(dir: &std::path::Path, worker: usize, index: u64, port: u16, files_only: bool) -> u64 {
    if !files_only {
        let _ = Command::new("/bin/true").status();
    }
    let path = dir.join(format!("w{worker}-{index}"));
    let renamed = dir.join(format!("w{worker}-{index}.moved"));
    if let Ok(mut file) = std::fs::File::create(&path) {
        let _ = file.write_all(b"kestrel");
    }
    let _ = std::fs::rename(&path, &renamed);
    let _ = std::fs::remove_file(&renamed);
    if files_only {
        return 3;
    }
    let _ = TcpStream::connect(("127.0.0.1", port));
    3 + 3 + 2
}

/// Runs `rounds` rounds on `workers` threads; returns the wall time.
fn workload(workers: usize, rounds: u64, port: u16, files_only: bool) -> Duration {
    let dir = std::env::temp_dir().join(format!("kestrel-bench-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let next = next.clone();
            let dir = dir.clone();
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= rounds {
                        break;
                    }
                    round(&dir, worker, index, port, files_only);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    elapsed
}

fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|index| fields.get(*index)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines().find_map(|line| line.strip_prefix(&format!("{name} "))).and_then(|value| value.parse().ok()).unwrap_or(0)
}

fn main() {
    if let Some(why) = support::cannot_run() {
        eprintln!("SKIPPED: the live benchmark: {why}");
        return;
    }
    let args = args();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        })
    };
    // Calibrate: rounds that take about `seconds` alone.
    let probe_rounds = 200;
    let probe = workload(args.workers, probe_rounds, port, args.files_only);
    let rounds = ((args.seconds / probe.as_secs_f64()) * probe_rounds as f64).max(probe_rounds as f64) as u64;
    let baseline = workload(args.workers, rounds, port, args.files_only);

    let dir = std::env::temp_dir().join(format!("kestrel-bench-live-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let metrics = dir.join("metrics.prom");
    let running = support::start(
        env!("CARGO_BIN_EXE_kestrel"),
        ["--stats-interval".as_ref(), "1".as_ref(), "--alerts".as_ref(), "/dev/null".as_ref(), "--metrics".as_ref(), metrics.as_os_str()],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let events_before = metric(&std::fs::read_to_string(&metrics).unwrap_or_default(), "kestrel_events_total");
    let cpu_before = cpu_of(running.child.id());
    let loaded = workload(args.workers, rounds, port, args.files_only);
    // Let kestrel drain what is in flight, then read its counters.
    std::thread::sleep(Duration::from_millis(2500));
    let cpu = cpu_of(running.child.id()) - cpu_before;
    let (_, log) = running.stop();
    let text = std::fs::read_to_string(&metrics).unwrap_or_default();
    stop.store(true, Ordering::Relaxed);
    let _ = acceptor.join();
    let _ = std::fs::remove_dir_all(&dir);

    let events = metric(&text, "kestrel_events_total") - events_before;
    let kernel_drops = metric(&text, "kestrel_kernel_drops_total");
    let pending_drops = metric(&text, "kestrel_kernel_pending_drops_total");
    let bad = metric(&text, "kestrel_bad_records_total") + metric(&text, "kestrel_bad_lines_total");
    let busy = loaded.as_secs_f64() + 2.5;
    let per_round = if args.files_only { "3 events each: files only" } else { "8 events each expected" };
    println!("live sensor benchmark: {} workers, {rounds} rounds ({per_round}), 2 cores", args.workers);
    println!("  workload alone       {:>8.3} s", baseline.as_secs_f64());
    println!(
        "  workload under run   {:>8.3} s  (slowdown ×{:.3} against its baseline in this run)",
        loaded.as_secs_f64(),
        loaded.as_secs_f64() / baseline.as_secs_f64()
    );
    println!("  events to the engine {:>8}    ({:.0} events/s over the loaded phase)", events, events as f64 / loaded.as_secs_f64());
    println!("  drops                kernel {kernel_drops}, syscall entries {pending_drops}, bad records/lines {bad}");
    println!(
        "  kestrel CPU          {:>8.3} s  ({:.1}% of one core over the phase and its drain; {:.2} µs per event)",
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / busy,
        cpu.as_secs_f64() * 1e6 / events.max(1) as f64
    );
    if kernel_drops + pending_drops + bad > 0 {
        println!("  NOTE: events were dropped; kestrel's log:\n{log}");
    }
}
