//! The process table: what userspace knows about each process, so that every kernel
//! event can carry Elastic Defend's process fields (`process.entity_id`,
//! `process.parent.*`, ancestry, the session and entry leaders).
//!
//! It is seeded from `/proc` at start ([`ProcessTable::seed_from_proc`]) and then kept
//! by the sensor's events: [`fork`](ProcessTable::fork), [`exec`](ProcessTable::exec),
//! [`exit`](ProcessTable::exit), and the id and session changes. It does no IO but the
//! seeding, and nothing in it panics on any input.
//!
//! - **Instances.** A process instance is its pid and its start time in clock ticks
//!   since boot (`USER_HZ`, field 22 of `/proc/<pid>/stat`; the probes' nanoseconds
//!   convert with [`start_ticks_from_boottime_ns`]), named by [`entity_id`]. A fork or
//!   exec that names a known pid with another start time is pid reuse: the new instance
//!   replaces the old one for lookups by pid, and the old one is retired as exited (its
//!   children still reach it as their parent until it is reaped).
//! - **Parents** are links to instances, not pids, so a reused pid is never taken for a
//!   parent. A process keeps the parent that forked it (reparenting to init or a
//!   subreaper is not followed). A link is refused (and counted) unless the parent
//!   started no later than the child and linking makes no cycle, so every ancestry
//!   chain ends.
//! - **Unknown processes.** A fork from an unknown parent creates a *placeholder*
//!   parent, and an event about an unknown pid creates a placeholder for it (counted):
//!   start time 0 unless the event gives it, empty image, ids and session 0, and
//!   [`Process::placeholder`] set until an exec gives it an image. A start time of 0
//!   means unknown and never counts as pid reuse.
//! - **Exit and reaping.** An exited process stays resolvable (by pid until the pid is
//!   reused, and as a parent) for [`DEFAULT_EXIT_GRACE`] more events (see
//!   [`ProcessTable::with_exit_grace`]), and after that for as long as a process it
//!   forked is in the table, so lineage survives double forks; then it is reaped.
//! - **Bounds.** At most `max_processes` instances: inserting into a full table evicts
//!   the exited process that exited first, or else the live process seen least
//!   recently (a process is seen when an event names it), counted in [`TableStats`].
//!
//! Cloning a [`Process`] into an event is cheap: its strings are shared (`Arc`).

use crate::proc_fs;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// Clock ticks per second of `/proc/<pid>/stat` (the kernel's `USER_HZ`, 100 on every
/// architecture Linux supports today).
pub const USER_HZ: u64 = 100;

/// Events an exited process stays resolvable for (when it has no children in the table).
pub const DEFAULT_EXIT_GRACE: u64 = 4096;

/// Steps [`ProcessTable::session_leader`] and [`ProcessTable::entry_leader`] walk up.
pub const MAX_LINEAGE_DEPTH: usize = 64;

/// Names (executable basenames) of the programs that start sessions for a user: a
/// session leader forked by one of them (or by init) is an entry leader. Names starting
/// `containerd-shim` also count.
pub const ENTRY_POINTS: &[&str] =
    &["sshd", "sshd-session", "login", "in.telnetd", "telnetd", "gdm-session-worker", "lightdm", "sddm-helper", "conmon", "ssm-session-worker"];

/// The start time of `/proc/<pid>/stat` from a task's `start_boottime` in nanoseconds,
/// as the kernel converts it (`nsec_to_clock_t`).
pub fn start_ticks_from_boottime_ns(nanoseconds: u64) -> u64 {
    nanoseconds / (1_000_000_000 / USER_HZ)
}

/// The `process.entity_id` of a process instance: 32 lowercase hex digits, the 128-bit
/// FNV-1a hash of `kestrel.entity.v1`, a NUL, the boot id (surrounding whitespace
/// trimmed), a NUL, the pid (4 bytes little-endian) and the start ticks (8 bytes
/// little-endian).
///
/// The boot id (`/proc/sys/kernel/random/boot_id`) tells boots apart, and the pid with
/// its start time tell instances apart within a boot (a pid comes back only after the
/// kernel has cycled through `pid_max` pids, which takes far longer than a tick), so the
/// id is deterministic, stable across exec (which keeps pid and start time), and unique
/// in practice; it is not a MAC and does not resist forgery. Hex survives case folding.
pub fn entity_id(boot_id: &str, pid: u32, start_ticks: u64) -> String {
    const OFFSET_BASIS: u128 = 0x6c62272e_07bb0142_62b82175_6295c58d;
    const PRIME: u128 = 0x00000000_01000000_00000000_0000013b;
    let pieces: [&[u8]; 5] = [b"kestrel.entity.v1\0", boot_id.trim().as_bytes(), b"\0", &pid.to_le_bytes(), &start_ticks.to_le_bytes()];
    let mut hash = OFFSET_BASIS;
    for byte in pieces.into_iter().flatten() {
        hash = (hash ^ u128::from(*byte)).wrapping_mul(PRIME);
    }
    format!("{hash:032x}")
}

/// What the table knows about one process instance. Strings are shared, so a clone
/// costs a few reference counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// The pid of the process that forked it (0 for init, kthreadd, and unknown).
    pub ppid: u32,
    /// See [`entity_id`]: the same for the process's whole life, across execs.
    pub entity_id: Arc<str>,
    /// The parent's [`entity_id`], when the parent instance is known.
    pub parent_entity_id: Option<Arc<str>>,
    /// When it started: clock ticks (`USER_HZ`) since boot; 0 when unknown.
    pub start_ticks: u64,
    /// The running image's path; empty when unknown (kernel threads, unreadable
    /// `exe` links, placeholders).
    pub executable: Arc<str>,
    /// The basename of `executable`; the kernel's `comm` when there is no executable.
    pub name: Arc<str>,
    pub args: Arc<[String]>,
    pub working_directory: Arc<str>,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// The controlling terminal, `(major, minor)`.
    pub tty: Option<(u32, u32)>,
    /// The session (the pid of its leader).
    pub sid: u32,
    /// The process group.
    pub pgid: u32,
    /// Execs seen since the table learnt of it (a fork's child starts at 0).
    pub exec_count: u32,
    /// The executable before the last exec, if that is known.
    pub previous_executable: Option<Arc<str>>,
    pub exited: bool,
    /// Created without knowing its image (an unknown parent, or an event about an
    /// unknown pid): its image, ids and session are empty or 0 until an exec.
    pub placeholder: bool,
}

impl Process {
    /// Has a controlling terminal (`process.interactive`).
    pub fn interactive(&self) -> bool {
        self.tty.is_some()
    }

    /// The arguments joined by spaces (`process.command_line`).
    pub fn command_line(&self) -> String {
        self.args.join(" ")
    }

    /// Leads its session.
    pub fn is_session_leader(&self) -> bool {
        self.sid != 0 && self.sid == self.pid
    }
}

/// An exec as the sensor reports it. The optional fields fill in a process the table
/// does not know yet, and tell pid reuse apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecInfo {
    pub executable: String,
    pub args: Vec<String>,
    pub working_directory: String,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub tty: Option<(u32, u32)>,
    pub ppid: Option<u32>,
    pub start_ticks: Option<u64>,
    pub sid: Option<u32>,
}

/// A process's new image after an exec.
fn apply_exec(process: &mut Process, exec: ExecInfo) {
    let previous = std::mem::replace(&mut process.executable, Arc::from(exec.executable));
    process.previous_executable = (!previous.is_empty()).then_some(previous);
    process.name = if process.executable.is_empty() { Arc::default() } else { Arc::from(basename(&process.executable)) };
    process.args = Arc::from(exec.args);
    process.working_directory = Arc::from(exec.working_directory);
    (process.uid, process.euid, process.gid, process.egid) = (exec.uid, exec.euid, exec.gid, exec.egid);
    process.tty = exec.tty;
    if let Some(sid) = exec.sid {
        process.sid = sid;
    }
    process.exec_count = process.exec_count.saturating_add(1);
    process.placeholder = false;
}

/// What [`ProcessTable::seed_from_proc`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedStats {
    /// Processes read (kernel threads included).
    pub read: u64,
    /// Pids that could not be read (vanished, unreadable, malformed), or 1 when the
    /// root itself could not be listed.
    pub failed: u64,
    pub kernel_threads: u64,
    /// Processes (not kernel threads) whose `exe` or `cwd` link could not be read.
    pub exe_unreadable: u64,
    pub cwd_unreadable: u64,
    /// Processes read that the table knew already (same instance).
    pub already_known: u64,
}

/// Counters of what the table did on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Processes dropped because the table was full.
    pub evicted: u64,
    /// Exited processes dropped after their grace.
    pub reaped: u64,
    /// Forks whose parent was unknown (a placeholder parent was created).
    pub unknown_parents: u64,
    /// Events about a pid the table did not know (exec created it; others ignored).
    pub unknown_processes: u64,
    /// Instances replaced by a new one with the same pid.
    pub pid_reused: u64,
    /// Parent links refused: the parent started after the child, or a cycle.
    pub parent_links_refused: u64,
}

/// A process instance: pid and start ticks.
type Key = (u32, u64);

/// Position in the eviction order: exited processes first, by exit; then live ones, least
/// recently seen first. `stamp` is unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Order {
    live: bool,
    stamp: u64,
}

#[derive(Debug)]
struct Entry {
    process: Process,
    parent: Option<Key>,
    /// Entries whose parent is this one (a hint for retention: a key evicted and seen
    /// again starts at 0).
    children: u32,
    order: Order,
    /// The event clock when it exited.
    exited_at: Option<u64>,
    /// Its grace is over; it stays only for its children.
    grace_over: bool,
}

/// Every known process, bounded; see the module documentation.
#[derive(Debug)]
pub struct ProcessTable {
    boot_id: Arc<str>,
    max_processes: usize,
    exit_grace: u64,
    entries: HashMap<Key, Entry>,
    /// The current instance of each pid.
    current: HashMap<u32, u64>,
    eviction: BTreeMap<Order, Key>,
    /// Exits in order, with their event clock (stale items are skipped).
    exits: VecDeque<(u64, Key)>,
    /// Events seen.
    clock: u64,
    stamp: u64,
    stats: TableStats,
}

impl ProcessTable {
    /// An empty table for this boot (`boot_id` as [`proc_fs::read_boot_id`] returns it)
    /// holding at most `max_processes` processes (at least 1).
    pub fn new(boot_id: &str, max_processes: usize) -> ProcessTable {
        ProcessTable {
            boot_id: Arc::from(boot_id.trim()),
            max_processes: max_processes.max(1),
            exit_grace: DEFAULT_EXIT_GRACE,
            entries: HashMap::new(),
            current: HashMap::new(),
            eviction: BTreeMap::new(),
            exits: VecDeque::new(),
            clock: 0,
            stamp: 0,
            stats: TableStats::default(),
        }
    }

    /// Keeps exited processes resolvable for `events` more events (see the module
    /// documentation).
    pub fn with_exit_grace(mut self, events: u64) -> ProcessTable {
        self.exit_grace = events;
        self
    }

    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    pub fn max_processes(&self) -> usize {
        self.max_processes
    }

    /// Process instances held, exited ones in their grace included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// Every instance held, in no particular order.
    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.entries.values().map(|entry| &entry.process)
    }

    /// Adds the processes under `proc_root` (normally `/proc`). Processes the table knows
    /// already are kept as they are; a pid the table knows under another start time is
    /// pid reuse. Parents are linked by their current instance, so a parent that
    /// vanished during the read is left unlinked.
    pub fn seed_from_proc(&mut self, proc_root: &Path) -> SeedStats {
        let mut stats = SeedStats::default();
        let Ok(pids) = proc_fs::pids(proc_root) else {
            stats.failed = 1;
            return stats;
        };
        let mut read = Vec::new();
        for pid in pids {
            match proc_fs::read_process(proc_root, pid) {
                Ok(Some(entry)) => read.push(entry),
                Ok(None) => {}
                Err(_) => stats.failed += 1,
            }
        }
        // Parents started first: inserted first, so their children can link to them.
        read.sort_by_key(|entry| (entry.stat.start_ticks, entry.stat.pid));
        for entry in read {
            stats.read += 1;
            let kernel_thread = entry.stat.is_kernel_thread();
            if kernel_thread {
                stats.kernel_threads += 1;
            } else {
                stats.exe_unreadable += u64::from(entry.exe.is_none());
                stats.cwd_unreadable += u64::from(entry.cwd.is_none());
            }
            let key = (entry.stat.pid, entry.stat.start_ticks);
            if self.entries.contains_key(&key) {
                stats.already_known += 1;
                continue;
            }
            let executable: Arc<str> = entry.exe.map_or_else(Arc::default, Arc::from);
            let name = if executable.is_empty() { Arc::from(entry.stat.comm.as_str()) } else { Arc::from(basename(&executable)) };
            let process = Process {
                ppid: entry.stat.ppid,
                executable,
                name,
                args: Arc::from(entry.args),
                working_directory: entry.cwd.map_or_else(Arc::default, Arc::from),
                uid: entry.status.uid.real,
                euid: entry.status.uid.effective,
                gid: entry.status.gid.real,
                egid: entry.status.gid.effective,
                tty: proc_fs::decode_tty(entry.stat.tty_nr),
                sid: entry.stat.session,
                pgid: entry.stat.pgrp,
                placeholder: false,
                ..self.placeholder(key.0, key.1)
            };
            let parent = self.parent_candidate(entry.stat.ppid, key.0);
            let key = self.insert(process, parent);
            // Parents count as seen after their children: a full table evicts leaves first.
            if let Some(parent) = parent {
                self.touch_key(parent);
            }
            if entry.stat.has_exited() {
                self.mark_exited(key);
            }
        }
        stats
    }

    /// A fork: `child_pid`, started at `child_start_ticks`, is a copy of `parent_pid`
    /// (image, ids, working directory, terminal, session and group). An unknown parent
    /// gets a placeholder; a child instance already known is left as it is.
    pub fn fork(&mut self, parent_pid: u32, child_pid: u32, child_start_ticks: u64) -> &Process {
        self.begin_event();
        let parent_key = match self.current_key(parent_pid) {
            Some(key) => key,
            None => {
                self.stats.unknown_parents += 1;
                let placeholder = self.placeholder(parent_pid, 0);
                self.insert(placeholder, None)
            }
        };
        self.touch_key(parent_key);
        let child_key = (child_pid, child_start_ticks);
        self.retire_current(child_pid, child_start_ticks);
        if !self.entries.contains_key(&child_key) {
            let parent = self.entries.get(&parent_key).map_or_else(|| self.placeholder(parent_pid, 0), |entry| entry.process.clone());
            let child = Process {
                pid: child_pid,
                ppid: parent_pid,
                entity_id: Arc::from(entity_id(&self.boot_id, child_pid, child_start_ticks)),
                parent_entity_id: None,
                start_ticks: child_start_ticks,
                exec_count: 0,
                previous_executable: None,
                exited: false,
                ..parent
            };
            self.insert(child, Some(parent_key));
        }
        self.current.insert(child_pid, child_start_ticks);
        self.touch_key(child_key);
        &self.entries[&child_key].process
    }

    /// An exec: `pid` runs a new image. It keeps its entity id; its previous executable
    /// is recorded. An unknown pid (or a known pid with another start time in `exec`) is
    /// created from `exec`'s optional fields.
    pub fn exec(&mut self, pid: u32, exec: ExecInfo) -> &Process {
        self.begin_event();
        let key = match self.current_key(pid) {
            Some(key) if !is_reuse(key, exec.start_ticks) => key,
            known => {
                let start_ticks = exec.start_ticks.unwrap_or(0);
                if known.is_none() {
                    self.stats.unknown_processes += 1;
                }
                self.retire_current(pid, start_ticks);
                let mut process = self.placeholder(pid, start_ticks);
                process.ppid = exec.ppid.unwrap_or(0);
                let parent = self.parent_candidate(process.ppid, pid);
                self.insert(process, parent)
            }
        };
        self.touch_key(key);
        let Some(entry) = self.entries.get_mut(&key) else { unreachable_entry() };
        apply_exec(&mut entry.process, exec);
        &entry.process
    }

    /// What [`ProcessTable::exec`] would make of `pid`, without changing the table: the
    /// exec hook describes an exec the kernel has paused, which may never happen.
    pub fn preview_exec(&self, pid: u32, exec: ExecInfo) -> Process {
        let known = self.current_key(pid).filter(|key| !is_reuse(*key, exec.start_ticks)).and_then(|key| self.entries.get(&key));
        let mut process = match known {
            Some(entry) => entry.process.clone(),
            None => {
                let mut process = self.placeholder(pid, exec.start_ticks.unwrap_or(0));
                process.ppid = exec.ppid.unwrap_or(0);
                process
            }
        };
        apply_exec(&mut process, exec);
        process
    }

    /// An exit: the process is marked exited and returned; it stays resolvable for a
    /// while (see the module documentation). `None` for an unknown pid.
    pub fn exit(&mut self, pid: u32) -> Option<Process> {
        self.begin_event();
        let key = self.known_key(pid)?;
        self.mark_exited(key);
        self.entries.get(&key).map(|entry| entry.process.clone())
    }

    /// A change of real and effective user id.
    pub fn set_user(&mut self, pid: u32, uid: u32, euid: u32) -> Option<&Process> {
        self.update(pid, |process| (process.uid, process.euid) = (uid, euid))
    }

    /// A change of real and effective group id.
    pub fn set_group(&mut self, pid: u32, gid: u32, egid: u32) -> Option<&Process> {
        self.update(pid, |process| (process.gid, process.egid) = (gid, egid))
    }

    /// A `setsid`: the process leads a new session and process group, without a terminal.
    pub fn set_session(&mut self, pid: u32, sid: u32) -> Option<&Process> {
        self.update(pid, |process| {
            (process.sid, process.pgid) = (sid, sid);
            process.tty = None;
        })
    }

    /// A `setpgid`.
    pub fn set_process_group(&mut self, pid: u32, pgid: u32) -> Option<&Process> {
        self.update(pid, |process| process.pgid = pgid)
    }

    /// Any other event about `pid`: counts as an event and marks the process seen.
    pub fn touch(&mut self, pid: u32) -> Option<&Process> {
        self.update(pid, |_| {})
    }

    /// The current instance of `pid` (exited ones in their grace included).
    pub fn get(&self, pid: u32) -> Option<&Process> {
        self.entry(pid).map(|entry| &entry.process)
    }

    /// The instance that forked the current instance of `pid`, if it is in the table.
    pub fn parent(&self, pid: u32) -> Option<&Process> {
        self.entries.get(&self.entry(pid)?.parent?).map(|entry| &entry.process)
    }

    /// The parent, its parent, and so on: at most `max`, nearest first.
    pub fn ancestors(&self, pid: u32, max: usize) -> impl Iterator<Item = &Process> {
        let start = self.entry(pid).and_then(|entry| entry.parent);
        self.chain(start, max).map(|entry| &entry.process)
    }

    /// The leader of the session of `pid` (the process whose pid is its sid): the
    /// nearest such ancestor (or itself), or else the current instance of that pid if it
    /// leads its session.
    pub fn session_leader(&self, pid: u32) -> Option<&Process> {
        let entry = self.entry(pid)?;
        let sid = entry.process.sid;
        if sid == 0 {
            return None;
        }
        let lineage = self.chain(self.current_key(pid), MAX_LINEAGE_DEPTH);
        if let Some(leader) = lineage.map(|entry| &entry.process).find(|process| process.pid == sid) {
            return Some(leader);
        }
        self.get(sid).filter(|leader| leader.is_session_leader())
    }

    /// The process through which the session of `pid` was entered: itself or its nearest
    /// ancestor that leads its session and is init (pid 1) or was forked by init (ppid 1)
    /// or by an [`ENTRY_POINTS`] program (sshd, login, a container shim...).
    /// A shell in an ssh login, a service started by systemd and a container's first
    /// process are their own entry leaders; processes under them have those. Terminal
    /// emulators and `su`/`sudo` do not start an entry; an unknown link ends the search.
    pub fn entry_leader(&self, pid: u32) -> Option<&Process> {
        self.chain(self.current_key(pid), MAX_LINEAGE_DEPTH)
            .find(|entry| {
                let process = &entry.process;
                let by_entry_point = || {
                    let parent = entry.parent.and_then(|key| self.entries.get(&key));
                    parent.is_some_and(|parent| is_entry_point(&parent.process.name))
                };
                process.is_session_leader() && (process.pid == 1 || process.ppid == 1 || by_entry_point())
            })
            .map(|entry| &entry.process)
    }

    fn entry(&self, pid: u32) -> Option<&Entry> {
        self.entries.get(&self.current_key(pid)?)
    }

    fn current_key(&self, pid: u32) -> Option<Key> {
        self.current.get(&pid).map(|start| (pid, *start))
    }

    /// The current key of `pid`, counting an unknown pid.
    fn known_key(&mut self, pid: u32) -> Option<Key> {
        let key = self.current_key(pid);
        if key.is_none() {
            self.stats.unknown_processes += 1;
        }
        key
    }

    /// `first` and its ancestors, at most `max`, following links that exist.
    fn chain(&self, first: Option<Key>, max: usize) -> impl Iterator<Item = &Entry> {
        // Links never form a cycle (`link`), so the length bound only guards against bugs.
        let mut next = first;
        std::iter::from_fn(move || {
            let entry = self.entries.get(&next?)?;
            next = entry.parent;
            Some(entry)
        })
        .take(max.min(self.entries.len()))
    }

    fn update(&mut self, pid: u32, change: impl FnOnce(&mut Process)) -> Option<&Process> {
        self.begin_event();
        let key = self.known_key(pid)?;
        self.touch_key(key);
        let entry = self.entries.get_mut(&key)?;
        change(&mut entry.process);
        Some(&entry.process)
    }

    fn placeholder(&self, pid: u32, start_ticks: u64) -> Process {
        let entity_id = Arc::from(entity_id(&self.boot_id, pid, start_ticks));
        Process { pid, entity_id, start_ticks, placeholder: true, ..Process::default() }
    }

    /// The current instance of `ppid` as the parent of a new instance of `pid`.
    fn parent_candidate(&self, ppid: u32, pid: u32) -> Option<Key> {
        if ppid == 0 || ppid == pid {
            return None;
        }
        self.current_key(ppid)
    }

    /// One more event: advance the clock and reap what is due.
    fn begin_event(&mut self) {
        self.clock += 1;
        while let Some(&(exited_at, key)) = self.exits.front() {
            if exited_at.saturating_add(self.exit_grace) >= self.clock {
                break;
            }
            self.exits.pop_front();
            let Some(entry) = self.entries.get_mut(&key) else { continue };
            if entry.exited_at != Some(exited_at) {
                continue;
            }
            if entry.children == 0 {
                self.remove(key, true);
            } else {
                entry.grace_over = true;
            }
        }
    }

    /// Inserts a new instance (or returns the existing one of that key) as the current
    /// instance of its pid, evicting first if the table is full, then links its parent.
    fn insert(&mut self, process: Process, parent: Option<Key>) -> Key {
        let key = (process.pid, process.start_ticks);
        if self.entries.contains_key(&key) {
            self.current.insert(key.0, key.1);
            return key;
        }
        while self.entries.len() >= self.max_processes {
            let Some((_, victim)) = self.eviction.pop_first() else { break };
            self.stats.evicted += 1;
            self.remove(victim, false);
        }
        self.stamp += 1;
        let order = Order { live: !process.exited, stamp: self.stamp };
        self.eviction.insert(order, key);
        self.current.insert(key.0, key.1);
        self.entries.insert(key, Entry { process, parent: None, children: 0, order, exited_at: None, grace_over: false });
        if let Some(parent) = parent {
            self.link(key, parent);
        }
        key
    }

    /// Links `child` to `parent` unless the parent started after the child or the link
    /// closes a cycle. Every link has `parent.start <= child.start`, so a cycle through
    /// the new link could only pass through instances that started in the same tick.
    fn link(&mut self, child: Key, parent: Key) {
        let Some(parent_entry) = self.entries.get(&parent) else { return };
        let mut refused = parent.1 > child.1 || parent == child;
        if !refused && parent.1 == child.1 {
            let mut steps = 0;
            let mut at = Some(parent);
            while let Some(key) = at.filter(|key| key.1 == child.1) {
                steps += 1;
                if key == child || steps > self.entries.len() {
                    refused = true;
                    break;
                }
                at = self.entries.get(&key).and_then(|entry| entry.parent);
            }
        }
        if refused {
            self.stats.parent_links_refused += 1;
            return;
        }
        let parent_entity_id = parent_entry.process.entity_id.clone();
        if let Some(parent_entry) = self.entries.get_mut(&parent) {
            parent_entry.children = parent_entry.children.saturating_add(1);
        }
        if let Some(entry) = self.entries.get_mut(&child) {
            entry.parent = Some(parent);
            entry.process.parent_entity_id = Some(parent_entity_id);
        }
    }

    /// Retires the current instance of `pid` if it is another start time than
    /// `start_ticks` (pid reuse): it is marked exited and no longer found by pid.
    fn retire_current(&mut self, pid: u32, start_ticks: u64) {
        let Some(old) = self.current_key(pid) else { return };
        if old.1 == start_ticks {
            return;
        }
        self.stats.pid_reused += 1;
        self.mark_exited(old);
        self.current.remove(&pid);
    }

    fn mark_exited(&mut self, key: Key) {
        let Some(entry) = self.entries.get_mut(&key) else { return };
        if entry.exited_at.is_some() {
            return;
        }
        entry.process.exited = true;
        entry.exited_at = Some(self.clock);
        self.eviction.remove(&entry.order);
        self.stamp += 1;
        entry.order = Order { live: false, stamp: self.stamp };
        self.eviction.insert(entry.order, key);
        self.exits.push_back((self.clock, key));
        if self.exits.len() > 2 * self.max_processes + 64 {
            let entries = &self.entries;
            self.exits.retain(|(at, key)| entries.get(key).is_some_and(|entry| entry.exited_at == Some(*at)));
        }
    }

    /// Marks a live process seen (exited ones keep their place in the exit order).
    fn touch_key(&mut self, key: Key) {
        let Some(entry) = self.entries.get_mut(&key) else { return };
        if !entry.order.live {
            return;
        }
        self.eviction.remove(&entry.order);
        self.stamp += 1;
        entry.order.stamp = self.stamp;
        self.eviction.insert(entry.order, key);
    }

    /// Removes an instance (`reaped` counts it as reaped), then reaps the ancestors that
    /// only stayed for it.
    fn remove(&mut self, key: Key, reaped: bool) {
        let mut next = Some((key, reaped));
        while let Some((key, reaped)) = next.take() {
            let Some(entry) = self.entries.remove(&key) else { return };
            self.stats.reaped += u64::from(reaped);
            self.eviction.remove(&entry.order);
            if self.current.get(&key.0) == Some(&key.1) {
                self.current.remove(&key.0);
            }
            let Some(parent_key) = entry.parent else { return };
            let Some(parent) = self.entries.get_mut(&parent_key) else { return };
            parent.children = parent.children.saturating_sub(1);
            if parent.grace_over && parent.children == 0 {
                next = Some((parent_key, true));
            }
        }
    }
}

fn is_reuse(known: Key, start_ticks: Option<u64>) -> bool {
    start_ticks.is_some_and(|start| start != known.1 && start != 0 && known.1 != 0)
}

fn is_entry_point(name: &str) -> bool {
    ENTRY_POINTS.contains(&name) || name.starts_with("containerd-shim")
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cold]
fn unreachable_entry() -> ! {
    unreachable!("an entry inserted or found above is in the table")
}

#[cfg(test)]
mod tests;
