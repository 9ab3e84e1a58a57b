//! `kestrel run`: live detection. Kernel events from the sensor become ECS lines that
//! go through the same [`Feed`] as a replay (and, with `--record`, into a capture whose
//! replay gives the same alerts). Drops are counted on both sides and reported on a
//! periodic stats line, in the summary, and in a Prometheus text-format metrics file.

use crate::capture::{Header, Settings};
use crate::custom::CustomStats;
use crate::enforce::{ActionStats, Actor, EnforceOptions, Hook, HookStats, Verdict};
use crate::feed::{Feed, FeedError};
use crate::replay::{BadLine, Options, Order, Summary};
use kestrel_sensor::probes::ProbeError;
use kestrel_sensor::sensor::{Sensor, SensorOptions, SensorStats};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How far behind the clock a tick is (see [`Feed::tick`]): well past the time an
/// event takes from the probe to the engine.
pub const TICK_LAG: Duration = Duration::from_secs(2);

/// Settings of a live run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The bundle to run (the built-in rules by default).
    pub bundle: Vec<u8>,
    /// Where a capture of the run is written.
    pub record: Option<PathBuf>,
    /// Where the Prometheus text-format metrics are (re)written at each stats interval.
    pub metrics: Option<PathBuf>,
    /// How often the stats line and the metrics are written.
    pub stats_every: Duration,
    /// Write the stats line to stderr.
    pub stats_line: bool,
    /// Stop after this long (otherwise at SIGINT or SIGTERM).
    pub duration: Option<Duration>,
    pub sensor: SensorOptions,
    /// Engine settings (the order is always input order: the sensor orders events).
    pub options: Options,
    /// Rule actions: enforce or shadow mode, the exec hook's settings.
    pub enforcement: EnforceOptions,
    /// Where the exec hook's decisions are logged (NDJSON: verdict, rules, the event).
    pub decisions: Option<PathBuf>,
}

/// Why a live run could not start or stopped early.
#[derive(Debug)]
pub enum RunError {
    Sensor(ProbeError),
    Feed(FeedError),
    Io(String),
    /// The exec hook could not start (`--enforce`).
    Enforce(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Sensor(error) => write!(f, "{error}"),
            RunError::Feed(error) => write!(f, "{error}"),
            RunError::Io(error) => write!(f, "{error}"),
            RunError::Enforce(error) => write!(f, "cannot enforce: {error}"),
        }
    }
}

impl std::error::Error for RunError {}

/// What a live run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub replay: Summary,
    pub sensor: SensorStats,
    /// Events handed to the engine.
    pub events: u64,
    pub alerts: u64,
    pub bad_lines: u64,
    pub elapsed: Duration,
    /// CPU time of the whole process (user + system).
    pub cpu: Duration,
    /// Whether recording stopped on a write error.
    pub recording_failed: bool,
    /// Programs that did not attach (hooks this kernel lacks).
    pub skipped_probes: Vec<String>,
    /// Whether rule actions were taken (`--enforce`) or only reported (shadow mode).
    pub enforce: bool,
    /// The exec hook's counters, when it ran.
    pub hook: Option<HookStats>,
    /// What was done (or would have been) on the alerts of rules with an action.
    pub actions: ActionStats,
}

impl RunSummary {
    pub fn render(&self) -> String {
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        let mut text = format!(
            "ran {:.1} s: {} events ({:.0}/s), {} alerts; CPU {:.2} s ({:.1}% of one core)\n",
            self.elapsed.as_secs_f64(),
            self.events,
            self.events as f64 / seconds,
            self.alerts,
            self.cpu.as_secs_f64(),
            100.0 * self.cpu.as_secs_f64() / seconds
        );
        text.push_str(&format!("drops: {}\n", drops_line(&self.sensor, self.bad_lines)));
        if let Some(hook) = &self.hook {
            text.push_str(&format!("{}\n", hook_line(hook)));
        }
        if self.actions.alerts > 0 {
            text.push_str(&format!("{}\n", actions_line(&self.actions, self.enforce, self.sensor.killed_at_exec)));
        }
        if self.recording_failed {
            text.push_str("the capture stopped on a write error: it ends early (replayable up to there)\n");
        }
        text.push_str(&self.replay.render());
        text
    }
}

fn drops_line(stats: &SensorStats, bad_lines: u64) -> String {
    format!(
        "{} in the kernel (ring buffer full), {} syscall entries forgotten (map full), {} bad records, {} bad lines, {} processes evicted from the table",
        stats.kernel_drops, stats.kernel_pending_drops, stats.convert.bad_records, bad_lines, stats.table.evicted
    )
}

fn hook_line(hook: &HookStats) -> String {
    let micros = |q: f64| hook.quantile(q).map_or_else(|| "-".to_string(), |ns| format!("{:.0}", ns as f64 / 1000.0));
    format!(
        "exec hook: {} execs paused ({} interpreters), {} decided, {} denied, {} kills armed ({} expired unused), {} allowed at the deadline, {} late, {} unreadable, {} lost; decision latency p50 {} µs, p99 {} µs, p99.9 {} µs",
        hook.events,
        hook.interpreters,
        hook.decided,
        hook.denied,
        hook.kills_armed,
        hook.kills_expired,
        hook.timeouts,
        hook.late,
        hook.read_errors,
        hook.overflows,
        micros(0.5),
        micros(0.99),
        micros(0.999)
    )
}

fn actions_line(actions: &ActionStats, enforce: bool, killed_at_exec: u64) -> String {
    if enforce {
        format!(
            "actions: {} alerts of acting rules; {} execs blocked, {} blocks missed; {} processes killed at exec, {} killed by pidfd, {} already gone, {} pids reused (left alone), {} kills failed",
            actions.alerts, actions.blocked, actions.block_missed, killed_at_exec, actions.killed, actions.kill_gone, actions.kill_reused, actions.kill_failed
        )
    } else {
        format!(
            "shadow mode (no --enforce): {} alerts of acting rules; would have blocked {}, would have killed {}",
            actions.alerts, actions.would_block, actions.would_kill
        )
    }
}

/// Counts the alert lines written through it.
struct Counted<W: Write> {
    inner: W,
    lines: Arc<AtomicU64>,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.lines.fetch_add(bytes[..written].iter().filter(|byte| **byte == b'\n').count() as u64, Ordering::Relaxed);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// CPU time this process has used, from /proc/self/stat (utime + stime).
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted after the name (which ends field 2).
    let ticks: u64 = [11, 12].iter().filter_map(|index| fields.get(*index)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Runs live detection until `stop` is set (or the duration passes), writing alerts to
/// `alerts_out`. `stop` is set by the caller's signal handlers.
pub fn run(options: RunOptions, alerts_out: &mut dyn Write, stop: Arc<AtomicBool>) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let cpu_before = process_cpu();
    let mut sensor = Sensor::start(options.sensor.clone()).map_err(RunError::Sensor)?;
    let skipped_probes: Vec<String> = sensor.skipped().iter().map(|skipped| format!("{}: {}", skipped.program, skipped.reason)).collect();
    for skipped in &skipped_probes {
        eprintln!("kestrel: probe not attached: {skipped}");
    }
    let mut engine_options = options.options.clone();
    engine_options.order = Order::Input;
    engine_options.progress = false;
    let alerts = Arc::new(AtomicU64::new(0));
    let mut counted = Counted { inner: alerts_out, lines: alerts.clone() };
    let producer = format!("kestrel {} run", env!("CARGO_PKG_VERSION"));
    let mut feed = match &options.record {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|error| RunError::Io(format!("cannot create the capture {}: {error}", path.display())))?;
            let header = Header::now(options.bundle.clone(), Settings::of(&engine_options), &producer);
            Feed::recording(header, engine_options, &mut counted, Box::new(std::io::BufWriter::new(file))).map_err(RunError::Feed)?
        }
        None => {
            let program = crate::program::Program::load(&options.bundle).map_err(|error| RunError::Feed(FeedError::Load(error)))?;
            Feed::new(Arc::new(program), engine_options, &mut counted).map_err(RunError::Feed)?
        }
    };
    let acting = !feed.bundle().actions.is_empty();
    let decides_at_exec = feed.bundle().actions.iter().any(|action| action.at_exec);
    if acting {
        feed.keep_acted();
    }
    let mut actor = Actor::new(options.enforcement.enforce, &sensor.host().boot_id);
    let hook = match (options.enforcement.enforce, acting) {
        (true, true) if decides_at_exec => {
            let (reader, writer) = std::io::pipe().map_err(|error| RunError::Io(format!("cannot make the exec hook's pipe: {error}")))?;
            sensor.wake_on(reader);
            let hook = Hook::start(&options.enforcement, sensor.take_exec_maps(), writer).map_err(RunError::Enforce)?;
            for (mount, why) in &hook.unmarked {
                eprintln!("kestrel: exec hook: {} not marked: {why}", mount.display());
            }
            let marked: Vec<String> = hook.marked.iter().map(|mount| mount.display().to_string()).collect();
            eprintln!("kestrel: enforcing; execs paused for a decision on the file systems of {}", marked.join(", "));
            Some(hook)
        }
        (true, true) => {
            eprintln!("kestrel: enforcing; no rule decides at an exec, so no exec is paused (kills happen on alerts)");
            None
        }
        (true, false) => {
            eprintln!("kestrel: --enforce: no rule of the bundle has an action (block or kill); nothing to enforce");
            None
        }
        (false, true) => {
            eprintln!("kestrel: shadow mode: rules with actions alert, nothing is blocked or killed (--enforce acts)");
            None
        }
        (false, false) => None,
    };
    let mut decisions = match (&options.decisions, &hook) {
        (Some(path), Some(_)) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|error| RunError::Io(format!("cannot create the decision log {}: {error}", path.display())))?,
        )),
        _ => None,
    };
    eprintln!(
        "kestrel: watching {} ({} probes attached, {} processes already running){}",
        sensor.host().name,
        sensor.attached(),
        sensor.seed.read,
        options.record.as_ref().map(|path| format!("; recording to {}", path.display())).unwrap_or_default()
    );
    let mut events = 0u64;
    let mut bad_lines = 0u64;
    let mut feed_error: Option<FeedError> = None;
    let mut last_stats = Instant::now();
    let mut events_at_last = 0u64;
    while !stop.load(Ordering::Relaxed) && options.duration.is_none_or(|duration| started.elapsed() < duration) {
        let pushed = pump(&mut sensor, &mut feed, Duration::from_millis(100), &mut bad_lines, &mut feed_error);
        events += pushed;
        if pushed > 0
            && let Err(error) = feed.flush()
        {
            keep_first(&mut feed_error, error);
        }
        // A quiet host: let sequences waiting for a missing event see time pass. The tick
        // lags the clock so an event still in flight cannot be overtaken by it.
        if pushed == 0
            && feed.needs_ticks()
            && let Err(error) = feed.tick(sensor.now() - TICK_LAG.as_nanos() as i64)
        {
            keep_first(&mut feed_error, error);
        }
        if let Some(hook) = &hook {
            events +=
                answer_requests(hook, &mut sensor, &mut feed, &mut actor, decisions.as_mut().map(|log| log as &mut dyn Write), &mut bad_lines, &mut feed_error);
        }
        act_on_alerts(&mut feed, &mut actor);
        if let Some(FeedError::Alerts(_)) = &feed_error {
            break;
        }
        if last_stats.elapsed() >= options.stats_every {
            let seconds = last_stats.elapsed().as_secs_f64();
            let stats = sensor.stats();
            if options.stats_line {
                let engine = feed.losses().render().map_or_else(String::new, |losses| format!("; the engine dropped at its bounds: {losses}"));
                eprintln!(
                    "kestrel: {events} events ({:.0}/s), {} alerts; drops: {}{engine}",
                    (events - events_at_last) as f64 / seconds,
                    alerts.load(Ordering::Relaxed),
                    drops_line(&stats, bad_lines)
                );
            }
            if let Some(path) = &options.metrics {
                let hook_stats = hook.as_ref().map(Hook::stats);
                let counts =
                    EngineCounts { events, alerts: alerts.load(Ordering::Relaxed), bad_lines, needs_skipped: feed.needs_skipped(), losses: feed.losses() };
                write_metrics(path, &stats, counts, &feed.custom_stats(), (hook_stats.as_ref(), &actor.stats))?;
            }
            last_stats = Instant::now();
            events_at_last = events;
        }
    }
    // Nothing stays paused: what waits is allowed.
    let hook = hook.map(Hook::stop);
    if let Some(mut log) = decisions.take()
        && let Err(error) = log.flush()
    {
        eprintln!("kestrel: the decision log could not be written: {error}");
    }
    // Drain what the probes already wrote.
    loop {
        let pushed = pump(&mut sensor, &mut feed, Duration::ZERO, &mut bad_lines, &mut feed_error);
        events += pushed;
        if pushed == 0 {
            break;
        }
        if let Err(error) = feed.flush() {
            keep_first(&mut feed_error, error);
        }
    }
    act_on_alerts(&mut feed, &mut actor);
    let stats = sensor.stats();
    drop(sensor);
    let custom = feed.custom_stats();
    let recording_failed = feed.recording_failed();
    let replay = feed.finish().map_err(RunError::Feed)?;
    if let Some(FeedError::Alerts(error)) = feed_error {
        return Err(RunError::Feed(FeedError::Alerts(error)));
    }
    if let Some(path) = &options.metrics {
        let counts = EngineCounts { events, alerts: alerts.load(Ordering::Relaxed), bad_lines, needs_skipped: replay.needs_skipped, losses: replay.losses() };
        write_metrics(path, &stats, counts, &custom, (hook.as_ref(), &actor.stats))?;
    }
    Ok(RunSummary {
        replay,
        sensor: stats,
        events,
        alerts: alerts.load(Ordering::Relaxed),
        bad_lines,
        elapsed: started.elapsed(),
        cpu: process_cpu().saturating_sub(cpu_before),
        recording_failed,
        skipped_probes,
        enforce: options.enforcement.enforce,
        hook,
        actions: actor.stats,
    })
}

/// Answers the exec hook's requests: brings the engine up to date with the probes (the
/// earlier steps of a sequence must be in its state), asks it, and replies. A denied
/// exec never reaches the probes, so its event goes to the engine from here (and into
/// the capture), marked blocked. Returns the events pushed.
fn answer_requests(
    hook: &Hook,
    sensor: &mut Sensor,
    feed: &mut Feed<'_>,
    actor: &mut Actor,
    mut log: Option<&mut dyn Write>,
    bad_lines: &mut u64,
    feed_error: &mut Option<FeedError>,
) -> u64 {
    let mut pushed = 0;
    while let Ok(request) = hook.requests.try_recv() {
        loop {
            let drained = pump(sensor, feed, Duration::ZERO, bad_lines, feed_error);
            pushed += drained;
            if drained == 0 {
                break;
            }
        }
        if let Err(error) = feed.flush() {
            keep_first(feed_error, error);
        }
        // Under a storm of execs this loop may run long: the alerts' actions (kills)
        // are taken as they come, not after it (their queue is bounded).
        act_on_alerts(feed, actor);
        let event = sensor.exec_event(&request.attempt);
        let rules = feed.decide(&event.json).unwrap_or_else(|error| {
            eprintln!("kestrel: exec hook: the exec event does not read: {error}");
            Vec::new()
        });
        let verdict = crate::enforce::verdict(feed.bundle(), &rules);
        let answered = request.answer(verdict);
        let enforced = answered.answered && actor.enforce;
        if let Some(log) = log.as_mut() {
            let _ = writeln!(log, "{}", crate::enforce::decision_line(feed.bundle(), verdict, &rules, &event.json));
        }
        match verdict {
            // Too late (the watchdog allowed it): the probes will see the exec.
            _ if !enforced => {}
            Verdict::Deny => {
                let mut report_bad = |bad: &BadLine| {
                    *bad_lines += 1;
                    eprintln!("kestrel: bad event: {bad}");
                };
                if let Err(error) = feed.push_line("exec-hook", &crate::enforce::blocked_event(&event.json), &mut report_bad) {
                    keep_first(feed_error, error);
                }
                pushed += 1;
                if let Err(error) = feed.flush() {
                    keep_first(feed_error, error);
                }
            }
            // Without the probes' map the kill waits for the alert (a pidfd kill).
            Verdict::Kill if answered.kill_armed => actor.killed_at_exec(&event.json),
            Verdict::Kill => {}
            Verdict::Allow => {}
        }
    }
    pushed
}

/// Takes the actions of the alerts of rules with one (kills), if the run acts at all
/// (otherwise the feed keeps none).
fn act_on_alerts(feed: &mut Feed<'_>, actor: &mut Actor) {
    for acted in feed.take_acted() {
        actor.act(feed.bundle(), &acted);
    }
}

/// One poll of the sensor: its events pushed to the feed (bad events reported and
/// counted, the first feed error kept). Returns the events pushed.
fn pump(sensor: &mut Sensor, feed: &mut Feed<'_>, timeout: Duration, bad_lines: &mut u64, feed_error: &mut Option<FeedError>) -> u64 {
    let mut report_bad = |bad: &BadLine| {
        *bad_lines += 1;
        eprintln!("kestrel: bad event: {bad}");
    };
    let mut pushed = 0u64;
    sensor.poll(
        timeout,
        &mut |event| {
            pushed += 1;
            if let Err(error) = feed.push_line("ebpf", &event.json, &mut report_bad) {
                keep_first(feed_error, error);
            }
        },
        &mut |bad| eprintln!("kestrel: bad record: {bad}"),
    );
    pushed
}

fn keep_first(slot: &mut Option<FeedError>, error: FeedError) {
    if slot.is_none() {
        eprintln!("kestrel: {error}");
        *slot = Some(error);
    }
}

/// The engine's side of the metrics.
struct EngineCounts {
    events: u64,
    alerts: u64,
    bad_lines: u64,
    /// Event conditions not run: their event lacked the literals they need.
    needs_skipped: u64,
    /// What the engine dropped at its bounds.
    losses: crate::losses::Losses,
}

/// Writes the metrics file (Prometheus text format) atomically: a temporary file renamed over it.
fn write_metrics(
    path: &PathBuf,
    stats: &SensorStats,
    counts: EngineCounts,
    custom: &[CustomStats],
    enforcement: (Option<&HookStats>, &ActionStats),
) -> Result<(), RunError> {
    let EngineCounts { events, alerts, bad_lines, needs_skipped, losses } = counts;
    let metrics: [(&str, &str, &str, u64); 10] = [
        ("kestrel_events_total", "counter", "Events handed to the detection engine.", events),
        ("kestrel_alerts_total", "counter", "Alerts written.", alerts),
        ("kestrel_needs_skipped_total", "counter", "Event conditions not run: their event lacked the literals they need (the bundle's needs).", needs_skipped),
        ("kestrel_kernel_drops_total", "counter", "Records the probes could not write (ring buffer full).", stats.kernel_drops),
        ("kestrel_kernel_pending_drops_total", "counter", "Syscall entries the probes could not remember until their exit.", stats.kernel_pending_drops),
        ("kestrel_bad_records_total", "counter", "Ring-buffer records that did not decode.", stats.convert.bad_records),
        ("kestrel_bad_lines_total", "counter", "Events the engine could not read.", bad_lines),
        ("kestrel_truncated_records_total", "counter", "Records with a string cut at its limit (argv, deep paths).", stats.convert.truncated),
        ("kestrel_process_table_evicted_total", "counter", "Processes evicted from the full process table.", stats.table.evicted),
        ("kestrel_processes", "gauge", "Processes in the process table.", stats.processes as u64),
    ];
    let mut text = String::new();
    for (name, kind, help, value) in metrics.into_iter().chain(losses.metrics().map(|(name, help, value)| (name, "counter", help, value))) {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
    }
    type Metric = (&'static str, &'static str, &'static str, fn(&CustomStats) -> u64);
    let per_predicate: [Metric; 4] = [
        ("kestrel_predicate_calls_total", "counter", "Calls of a hand-written predicate.", |p| p.calls),
        ("kestrel_predicate_true_total", "counter", "Calls of a hand-written predicate that returned true.", |p| p.matched),
        ("kestrel_predicate_skipped_total", "counter", "Calls of a disabled hand-written predicate (null).", |p| p.skipped),
        ("kestrel_predicate_disabled", "gauge", "1 once a hand-written predicate is disabled (an error, or a limit reached).", |p| {
            u64::from(p.disabled.is_some())
        }),
    ];
    if !custom.is_empty() {
        for (name, kind, help, value) in per_predicate {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for predicate in custom {
                text.push_str(&format!("{name}{{predicate=\"{}\",runtime=\"{}\"}} {}\n", predicate.name, predicate.runtime, value(predicate)));
            }
        }
    }
    let (hook, actions) = enforcement;
    let mut counters: Vec<(&str, &str, u64)> = vec![
        ("kestrel_action_alerts_total", "Alerts of rules with an action (block, kill).", actions.alerts),
        ("kestrel_blocked_total", "Execs denied at the exec hook.", actions.blocked),
        ("kestrel_block_missed_total", "Alerts of block rules on an event that was not denied.", actions.block_missed),
        ("kestrel_killed_total", "Processes killed through a verified pidfd.", actions.killed),
        ("kestrel_killed_at_exec_total", "Processes the probes killed at their exec.", stats.killed_at_exec),
        ("kestrel_kill_reused_total", "Kill targets whose pid named another process: left alone.", actions.kill_reused),
        ("kestrel_would_block_total", "Shadow mode: blocks that would have been done.", actions.would_block),
        ("kestrel_would_kill_total", "Shadow mode: kills that would have been done.", actions.would_kill),
    ];
    if let Some(hook) = hook {
        counters.extend([
            ("kestrel_exec_hook_events_total", "Exec permission events read.", hook.events),
            ("kestrel_exec_hook_decided_total", "Paused execs answered with a decision.", hook.decided),
            ("kestrel_exec_hook_denied_total", "Paused execs denied.", hook.denied),
            ("kestrel_exec_hook_timeouts_total", "Paused execs allowed at the deadline, undecided.", hook.timeouts),
            ("kestrel_exec_hook_lost_total", "Exec permission events the kernel lost (allowed).", hook.overflows),
        ]);
    }
    for (name, help, value) in counters {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"));
    }
    if let Some(hook) = hook {
        text.push_str(
            "# HELP kestrel_exec_hook_latency_seconds Time from an execve's entry to its answer.\n# TYPE kestrel_exec_hook_latency_seconds summary\n",
        );
        for q in [0.5, 0.99, 0.999] {
            if let Some(ns) = hook.quantile(q) {
                text.push_str(&format!("kestrel_exec_hook_latency_seconds{{quantile=\"{q}\"}} {:.9}\n", ns as f64 / 1e9));
            }
        }
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|error| RunError::Io(format!("cannot write the metrics file {}: {error}", path.display())))
}
