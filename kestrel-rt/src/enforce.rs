//! Enforcement in `kestrel run` (docs/enforcement.md): the exec hook's threads, and the
//! actions taken on alerts.
//!
//! ```text
//! kernel ─FAN_OPEN_EXEC_PERM→ reader thread ─job→ worker thread ─Request→ detection loop
//!   ▲        (watchdog: allow at the deadline)     (reads /proc)     (drains the probes,
//!   └──────────────── answer: allow | deny ◀──── Verdict ◀────────── decides on its state)
//! ```
//!
//! Every paused exec is answered exactly once, by whoever takes it out of the pending
//! table first: the worker with the detection loop's verdict, or the reader thread's
//! watchdog with `allow` when the deadline passes (counted). When Kestrel stops, what
//! is pending is allowed; when it dies, the kernel allows it (the group's file closes).

use crate::replay::Acted;
use kestrel_bundle::Bundle;
use kestrel_bundle::bundle::Query;
use kestrel_bundle::enforce::{Action, Whom};
use kestrel_sensor::exec_hook::{ExecAttempt, ExecHook, ExecTracker, Opened, OpenedFile, PermEvent, boot_now};
use kestrel_sensor::kill::{Killed, descendants, kill_verified};
use kestrel_sensor::probes::ExecMaps;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings of enforcement.
#[derive(Clone, Debug)]
pub struct EnforceOptions {
    /// Act (`--enforce`); otherwise shadow mode: report what would have been done.
    pub enforce: bool,
    /// The file systems (by a mount point of each) whose execs are paused; `None`: every
    /// file system that can hold executables.
    pub mounts: Option<Vec<PathBuf>>,
    /// How long a paused exec waits for a decision before it is allowed.
    pub decision_timeout: Duration,
    /// How long a `kill` decided at the exec hook stays armed for that exec.
    pub kill_window: Duration,
}

impl Default for EnforceOptions {
    fn default() -> EnforceOptions {
        EnforceOptions { enforce: false, mounts: None, decision_timeout: Duration::from_millis(200), kill_window: Duration::from_secs(1) }
    }
}

/// The detection loop's answer for a paused exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Deny the exec (EPERM).
    Deny,
    /// Let the exec go on and kill the process before its first instruction.
    Kill,
}

/// A paused exec the detection loop must decide.
pub struct Request {
    pub attempt: ExecAttempt,
    id: u64,
    shared: Arc<Shared>,
}

impl Request {
    /// Answers the paused exec with `verdict` (acted on only with `--enforce`); not
    /// `answered` when the watchdog has already allowed it (too late: counted).
    pub fn answer(self, verdict: Verdict) -> Answered {
        let answered = answer(&self.shared, self.id, verdict, Some(&self.attempt));
        if let Ok(mut stats) = self.shared.stats.lock() {
            if answered.answered {
                stats.decided += 1;
            } else {
                stats.late += 1;
            }
        }
        answered
    }
}

/// Latencies on a log scale: bucket `i` holds values `v` with `⌊16·log2(v)⌋ = i`, so
/// each bucket is 2^(1/16) ≈ 4.4% wide; fixed size whatever the number of execs.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { counts: vec![0; Histogram::BUCKETS], total: 0 }
    }
}

impl Histogram {
    /// 16 buckets per doubling up to 2^40 ns (about 18 minutes).
    const BUCKETS: usize = 16 * 40;

    fn bucket(value: u64) -> usize {
        ((value.max(1) as f64).log2() * 16.0).floor().clamp(0.0, (Self::BUCKETS - 1) as f64) as usize
    }

    pub fn record(&mut self, value: u64) {
        self.counts[Self::bucket(value)] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1): the geometric middle of the bucket that holds it (within
    /// 2.2% of every value in the bucket).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total - 1) as f64 * q.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen > rank {
                return Some(2f64.powf((bucket as f64 + 0.5) / 16.0).round() as u64);
            }
        }
        None
    }
}

/// Counters of the exec hook.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HookStats {
    /// Permission events read.
    pub events: u64,
    /// Of them, interpreters of an exec already decided (allowed at once).
    pub interpreters: u64,
    /// Execs answered with the detection loop's verdict.
    pub decided: u64,
    pub denied: u64,
    pub kills_armed: u64,
    /// Armed kills whose exec never came (cleared after their window).
    pub kills_expired: u64,
    /// Execs allowed by the watchdog because no verdict came in time.
    pub timeouts: u64,
    /// Verdicts that came after the watchdog had answered.
    pub late: u64,
    /// Execs allowed because /proc could not be read for them.
    pub read_errors: u64,
    /// Events the kernel lost (queue overflow; those execs were allowed).
    pub overflows: u64,
    /// Answers the kernel refused.
    pub answer_errors: u64,
    /// Nanoseconds from the `execve` entry (the probes' stamp; else from the event's
    /// arrival) to the answer, for each exec decided or timed out.
    pub latency: Histogram,
}

impl HookStats {
    /// The `q` quantile (0..=1) of the latencies, in nanoseconds.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        self.latency.quantile(q)
    }
}

/// A paused exec for the worker: its id, what was opened, and the probes' header of the
/// thread's `execve` entry.
type Job = (u64, OpenedFile, Option<kestrel_sensor::records::Header>);

/// A paused exec in the pending table.
struct Pending {
    event: PermEvent,
    deadline: Instant,
    /// CLOCK_BOOTTIME of the `execve` entry, or `None` (then `arrived` is used).
    entered: Option<u64>,
    arrived: Instant,
}

struct Shared {
    hook: ExecHook,
    pending: Mutex<HashMap<u64, Pending>>,
    maps: Mutex<Option<ExecMaps>>,
    tracker: Mutex<ExecTracker>,
    stats: Mutex<HookStats>,
    stop: AtomicBool,
    enforce: bool,
    kill_window: Duration,
}

/// The running exec hook.
pub struct Hook {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Execs to decide, for the detection loop.
    pub requests: Receiver<Request>,
    /// The mount points marked, and those that could not be.
    pub marked: Vec<PathBuf>,
    pub unmarked: Vec<(PathBuf, String)>,
}

impl Hook {
    /// Marks the file systems and starts the threads. `wake` is written to when a
    /// request is sent, so the detection loop stops waiting for the probes.
    pub fn start(options: &EnforceOptions, maps: Option<ExecMaps>, wake: std::io::PipeWriter) -> Result<Hook, String> {
        let mounts = match &options.mounts {
            Some(mounts) => mounts.clone(),
            None => ExecHook::default_mounts(&std::fs::read_to_string("/proc/self/mountinfo").map_err(|error| format!("/proc/self/mountinfo: {error}"))?),
        };
        let hook = ExecHook::start(&mounts)?;
        let (marked, unmarked) = (hook.marked.clone(), hook.unmarked.clone());
        let shared = Arc::new(Shared {
            hook,
            pending: Mutex::new(HashMap::new()),
            maps: Mutex::new(maps),
            tracker: Mutex::new(ExecTracker::default()),
            stats: Mutex::new(HookStats::default()),
            stop: AtomicBool::new(false),
            enforce: options.enforce,
            kill_window: options.kill_window,
        });
        let (jobs_in, jobs) = sync_channel::<Job>(4096);
        let (requests_in, requests) = sync_channel::<Request>(1024);
        let timeout = options.decision_timeout;
        let reader = {
            let shared = shared.clone();
            std::thread::Builder::new().name("kestrel-hook".into()).spawn(move || read_events(&shared, timeout, &jobs_in)).map_err(|error| error.to_string())?
        };
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("kestrel-hook-worker".into())
                .spawn(move || decide_jobs(&shared, &jobs, &requests_in, wake))
                .map_err(|error| error.to_string())?
        };
        Ok(Hook { shared, threads: vec![reader, worker], requests, marked, unmarked })
    }

    pub fn stats(&self) -> HookStats {
        self.shared.stats.lock().map(|stats| stats.clone()).unwrap_or_default()
    }

    /// Stops the threads; what is pending is allowed.
    pub fn stop(mut self) -> HookStats {
        self.shared.stop.store(true, Ordering::Relaxed);
        // The worker may wait for the detection loop: it gives up when the requests'
        // receiver goes, or at its deadline.
        let Hook { requests, threads, .. } = &mut self;
        drop(std::mem::replace(requests, sync_channel(1).1));
        for thread in threads.drain(..) {
            let _ = thread.join();
        }
        allow_all(&self.shared);
        self.stats()
    }
}

/// How a paused exec was answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    /// By this answer (false: the watchdog had allowed it already).
    pub answered: bool,
    /// The probes will kill the process at this exec.
    pub kill_armed: bool,
}

/// Answers a pending exec, if it still is.
fn answer(shared: &Shared, id: u64, verdict: Verdict, attempt: Option<&ExecAttempt>) -> Answered {
    let Some(pending) = shared.pending.lock().ok().and_then(|mut pending| pending.remove(&id)) else { return Answered::default() };
    let act = shared.enforce;
    let allow = !(act && verdict == Verdict::Deny);
    let mut kill_armed = false;
    if act
        && verdict == Verdict::Kill
        && let Some(attempt) = attempt
        && let Ok(mut maps) = shared.maps.lock()
        && let Some(maps) = maps.as_mut()
        && maps.arm_kill(attempt.pid, boot_now() + shared.kill_window.as_nanos() as u64).is_ok()
    {
        kill_armed = true;
        if let Ok(mut stats) = shared.stats.lock() {
            stats.kills_armed += 1;
        }
    }
    let result = shared.hook.answer(&pending.event, allow);
    let latency = match pending.entered {
        Some(entered) => boot_now().saturating_sub(entered),
        None => pending.arrived.elapsed().as_nanos() as u64,
    };
    if !allow && let Ok(mut tracker) = shared.tracker.lock() {
        tracker.denied(pending.event.file.tid);
    }
    if let Ok(mut stats) = shared.stats.lock() {
        if result.is_err() {
            stats.answer_errors += 1;
        }
        if !allow {
            stats.denied += 1;
        }
        stats.latency.record(latency);
    }
    Answered { answered: true, kill_armed }
}

/// Allows everything pending (at stop).
fn allow_all(shared: &Shared) {
    let drained: Vec<Pending> = shared.pending.lock().map(|mut pending| pending.drain().map(|(_, each)| each).collect()).unwrap_or_default();
    for pending in drained {
        let _ = shared.hook.answer(&pending.event, true);
    }
}

/// The reader thread: reads permission events, answers interpreters at once, queues
/// attempts for the worker, and is the watchdog (allow at the deadline).
fn read_events(shared: &Shared, timeout: Duration, jobs: &SyncSender<Job>) {
    let mut next_id = 0u64;
    let mut overflow = 0u64;
    let mut swept = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        // Kills armed for execs that never came are cleared once their window is over.
        if swept.elapsed() >= Duration::from_secs(1) {
            swept = Instant::now();
            if let Ok(mut maps) = shared.maps.lock()
                && let Some(maps) = maps.as_mut()
            {
                let expired = maps.expire_kills(boot_now());
                if let Ok(mut stats) = shared.stats.lock() {
                    stats.kills_expired += expired as u64;
                }
            }
        }
        let nearest = shared.pending.lock().ok().and_then(|pending| pending.values().map(|each| each.deadline).min());
        let wait = nearest.map_or(Duration::from_millis(100), |deadline| deadline.saturating_duration_since(Instant::now())).min(Duration::from_millis(100));
        if shared.hook.wait(wait) {
            let events = shared.hook.read(&mut overflow);
            for event in events {
                let arrived = Instant::now();
                let entry = shared.maps.lock().ok().and_then(|maps| maps.as_ref().and_then(|maps| maps.entry(event.file.tid)));
                let opened = shared.tracker.lock().map(|mut tracker| tracker.classify(event.file.tid, entry.as_ref())).unwrap_or(Opened::Attempt);
                let entered = entry.map(|header| header.ktime);
                if let Ok(mut stats) = shared.stats.lock() {
                    stats.events += 1;
                    stats.overflows = overflow;
                    if opened == Opened::Interpreter {
                        stats.interpreters += 1;
                    }
                }
                if opened == Opened::Interpreter {
                    let _ = shared.hook.answer(&event, true);
                    continue;
                }
                next_id += 1;
                let file = event.file.clone();
                let pending = Pending { event, deadline: arrived + timeout, entered, arrived };
                if let Ok(mut table) = shared.pending.lock() {
                    table.insert(next_id, pending);
                }
                // A full queue: the watchdog allows it at its deadline.
                let _ = jobs.try_send((next_id, file, entry));
            }
        }
        // The watchdog.
        let now = Instant::now();
        let expired: Vec<u64> =
            shared.pending.lock().map(|pending| pending.iter().filter(|(_, each)| each.deadline <= now).map(|(id, _)| *id).collect()).unwrap_or_default();
        for id in expired {
            if answer(shared, id, Verdict::Allow, None).answered
                && let Ok(mut stats) = shared.stats.lock()
            {
                stats.timeouts += 1;
            }
        }
    }
}

/// The worker thread: reads each paused exec from /proc and hands it to the detection
/// loop, which answers it (or the watchdog does, at the deadline).
fn decide_jobs(shared: &Arc<Shared>, jobs: &Receiver<Job>, requests: &SyncSender<Request>, mut wake: std::io::PipeWriter) {
    while let Ok((id, file, entry)) = jobs.recv() {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let attempt = match ExecAttempt::read(Path::new("/proc"), &file, entry.as_ref()) {
            Ok(attempt) => attempt,
            Err(_) => {
                if answer(shared, id, Verdict::Allow, None).answered
                    && let Ok(mut stats) = shared.stats.lock()
                {
                    stats.read_errors += 1;
                }
                continue;
            }
        };
        match requests.try_send(Request { attempt, id, shared: shared.clone() }) {
            Ok(()) => {
                let _ = wake.write(&[1]);
            }
            // Full: the watchdog allows it at its deadline (counted there).
            Err(std::sync::mpsc::TrySendError::Full(_)) => {}
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => break,
        }
    }
}

/// The verdict for the rules an exec would match (`rules`: indexes with an action).
/// `block` wins over `kill`; a kill whose targets include the exec's own process at the
/// deciding step kills at the exec.
pub fn verdict(bundle: &Bundle, rules: &[usize]) -> Verdict {
    let mut verdict = Verdict::Allow;
    for &rule in rules {
        match bundle.action_of(rule).map(|action| &action.action) {
            Some(Action::Block) => return Verdict::Deny,
            Some(Action::Kill(targets)) => {
                let deciding = deciding_step(bundle, rule);
                if targets.iter().any(|target| target.whom == Whom::Process && target.step == deciding) {
                    verdict = Verdict::Kill;
                }
            }
            None => {}
        }
    }
    verdict
}

/// The step an action decides at: 0 for an event query, the last positive step of a sequence.
pub fn deciding_step(bundle: &Bundle, rule: usize) -> u32 {
    match bundle.rules.get(rule).map(|rule| &rule.query) {
        Some(Query::Sequence { table }) => bundle
            .sequences
            .as_deref()
            .and_then(|tables| tables.get(*table as usize))
            .map_or(0, |table| table.steps.iter().filter(|step| !step.missing).count().saturating_sub(1) as u32),
        _ => 0,
    }
}

/// The exec event of a denied exec, as it goes to the engine (and the capture): the
/// hook's event, with `event.outcome: failure` and `kestrel.blocked: true`.
pub fn blocked_event(json: &str) -> String {
    let mut line = json.replacen("\"event\":{", "\"event\":{\"outcome\":\"failure\",", 1);
    if line.ends_with('}') {
        line.pop();
        line.push_str(",\"kestrel\":{\"blocked\":true}}");
    }
    line
}

/// One line of the decision log: the verdict, the rules (ids) that decided it and the
/// exec event they were decided on.
pub fn decision_line(bundle: &Bundle, verdict: Verdict, rules: &[usize], event: &str) -> String {
    let verdict = match verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
        Verdict::Kill => "kill",
    };
    let ids: Vec<serde_json::Value> = rules.iter().filter_map(|rule| bundle.rules.get(*rule)).map(|rule| serde_json::Value::from(rule.id.as_str())).collect();
    format!("{{\"verdict\":\"{verdict}\",\"rules\":{},\"event\":{event}}}", serde_json::Value::Array(ids))
}

/// Counters of the actions taken on alerts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionStats {
    /// Alerts of rules with an action.
    pub alerts: u64,
    /// Execs denied at the hook (their alerts).
    pub blocked: u64,
    /// Alerts of `block` rules on an event that was not denied at the hook (its file
    /// system not marked, a timeout, or not an exec): nothing was blocked.
    pub block_missed: u64,
    /// Processes killed through a verified pidfd.
    pub killed: u64,
    /// Kill targets already gone, or killed at their exec.
    pub kill_gone: u64,
    /// Kill targets whose pid named another process by then: left alone.
    pub kill_reused: u64,
    /// Kill targets not found in the event, or kills the kernel refused.
    pub kill_failed: u64,
    /// Shadow mode: blocks and kills that would have been done.
    pub would_block: u64,
    pub would_kill: u64,
}

/// Acts on the alerts of rules with an action: kills through verified pidfds, counts
/// blocks (done at the hook) and, in shadow mode, what would have been done.
pub struct Actor {
    pub enforce: bool,
    boot_id: String,
    pub stats: ActionStats,
    /// Entity ids of processes killed at their exec (the probes did it: not again).
    killed_at_exec: std::collections::HashSet<String>,
}

impl Actor {
    /// Most entity ids remembered as killed at exec (then the memory starts over).
    const MAX_REMEMBERED: usize = 4096;

    pub fn new(enforce: bool, boot_id: &str) -> Actor {
        Actor { enforce, boot_id: boot_id.to_string(), stats: ActionStats::default(), killed_at_exec: Default::default() }
    }

    /// The exec hook armed the kill of the process of this exec event.
    pub fn killed_at_exec(&mut self, exec_event: &str) {
        if let Some((_, entity)) = process_of(exec_event, Whom::Process) {
            if self.killed_at_exec.len() >= Self::MAX_REMEMBERED {
                self.killed_at_exec.clear();
            }
            self.killed_at_exec.insert(entity);
        }
    }

    pub fn act(&mut self, bundle: &Bundle, acted: &Acted) {
        let Some(action) = bundle.action_of(acted.rule) else { return };
        self.stats.alerts += 1;
        match &action.action {
            Action::Block if !self.enforce => self.stats.would_block += 1,
            Action::Block => {
                let blocked = acted.events.last().is_some_and(|line| line.contains("\"kestrel\":{\"blocked\":true}"));
                if blocked {
                    self.stats.blocked += 1;
                } else {
                    self.stats.block_missed += 1;
                }
            }
            Action::Kill(targets) if !self.enforce => self.stats.would_kill += targets.len() as u64,
            Action::Kill(targets) => {
                for target in targets {
                    let Some(line) = acted.events.get(target.step as usize) else {
                        self.stats.kill_failed += 1;
                        continue;
                    };
                    let Some((pid, entity)) = process_of(line, target.whom) else {
                        self.stats.kill_failed += 1;
                        continue;
                    };
                    let mut victims = vec![(pid, entity)];
                    if target.tree {
                        victims.extend(descendants(Path::new("/proc"), &self.boot_id, pid));
                    }
                    for (pid, entity) in victims {
                        if self.killed_at_exec.contains(&entity) {
                            self.stats.kill_gone += 1;
                            continue;
                        }
                        match kill_verified(Path::new("/proc"), &self.boot_id, pid, &entity) {
                            Killed::Sent => self.stats.killed += 1,
                            Killed::Gone => self.stats.kill_gone += 1,
                            Killed::Reused => self.stats.kill_reused += 1,
                            Killed::Failed(_) => self.stats.kill_failed += 1,
                        }
                    }
                }
            }
        }
    }
}

/// The pid and entity id of an event's process (or parent).
fn process_of(line: &str, whom: Whom) -> Option<(u32, String)> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let lookup = |path: &str| path.split('.').try_fold(&event, |value, key| value.get(key)).or_else(|| event.get(path));
    let pid = lookup(whom.pid_field())?.as_u64()? as u32;
    let entity = lookup(whom.entity_field())?.as_str()?.to_string();
    Some((pid, entity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_histogram_is_within_its_bucket_width() {
        let mut histogram = Histogram::default();
        assert_eq!(histogram.quantile(0.5), None);
        for value in 1..=10_000u64 {
            histogram.record(value * 1000);
        }
        for (q, exact) in [(0.5, 5_000_000.0), (0.99, 9_900_000.0), (0.999, 9_990_000.0)] {
            let got = histogram.quantile(q).unwrap() as f64;
            assert!((got - exact).abs() / exact < 0.05, "q{q}: {got} against {exact}");
        }
        histogram.record(0);
        histogram.record(u64::MAX);
        assert_eq!(histogram.count(), 10_002);
    }

    #[test]
    fn a_blocked_event_says_so_and_fails() {
        let line = blocked_event(r#"{"@timestamp":"x","event":{"kind":"event","action":"exec"},"process":{"pid":1}}"#);
        assert_eq!(line, r#"{"@timestamp":"x","event":{"outcome":"failure","kind":"event","action":"exec"},"process":{"pid":1},"kestrel":{"blocked":true}}"#);
        serde_json::from_str::<serde_json::Value>(&line).unwrap();
    }

    #[test]
    fn the_process_of_an_event_is_read_nested_or_dotted() {
        let nested = r#"{"process":{"pid":12,"entity_id":"abc","parent":{"pid":1,"entity_id":"p"}}}"#;
        assert_eq!(process_of(nested, Whom::Process), Some((12, "abc".into())));
        assert_eq!(process_of(nested, Whom::Parent), Some((1, "p".into())));
        let dotted = r#"{"process.pid":12,"process.entity_id":"abc"}"#;
        assert_eq!(process_of(dotted, Whom::Process), Some((12, "abc".into())));
        assert_eq!(process_of(dotted, Whom::Parent), None);
    }
}
