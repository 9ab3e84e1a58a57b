//! The exec hook: fanotify `FAN_OPEN_EXEC_PERM` on the marked filesystems. The kernel
//! pauses every `execve` of a file on them until the hook answers; answering `deny` makes
//! the `execve` fail with EPERM.
//!
//! This module is the kernel side only: the group, its marks, its events, and what a
//! paused exec is ([`ExecAttempt`], read from /proc while the caller waits). Deciding,
//! timeouts and the watchdog are the runtime's (`kestrel_rt::enforce`).
//!
//! One `execve` can raise several events: the file it names, then the interpreters the
//! kernel opens for it (a script's `#!` interpreter, the ELF interpreter `ld.so`). The
//! probes note when each thread entered `execve` (the `EXEC_ENTRY` map); events of one
//! thread with the same entry time are one exec, and only its first is an attempt.

use crate::proc_fs::{decode_tty, parse_stat, parse_status};
use crate::process_table::ExecInfo;
use crate::records::{Header, STRING_MAX};
use nix::sys::fanotify::{EventFFlags, Fanotify, FanotifyEvent, FanotifyResponse, InitFlags, MarkFlags, MaskFlags, Response};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File systems that hold no executables worth pausing for (or cannot be marked).
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "bpf",
    "pstore",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "nsfs",
    "efivarfs",
    "rpc_pipefs",
    "selinuxfs",
];

/// Most arguments read from a paused exec (then the exec event's limit applies too).
const MAX_ARGS: usize = 1024;

/// The fanotify group and its marks.
pub struct ExecHook {
    group: Fanotify,
    /// The mount points whose file systems are marked.
    pub marked: Vec<PathBuf>,
    /// Mount points that could not be marked, and why.
    pub unmarked: Vec<(PathBuf, String)>,
}

/// One permission event: what was opened, and the event itself (its file descriptor is
/// closed when it is dropped, after the answer).
pub struct PermEvent {
    pub event: FanotifyEvent,
    pub file: OpenedFile,
}

/// Which thread opens which file for an exec: the file's path, owner and mode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenedFile {
    pub tid: u32,
    pub path: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl ExecHook {
    /// A group marking the file systems of `mounts` for `FAN_OPEN_EXEC_PERM`. Fails when
    /// the kernel refuses the group (no `CONFIG_FANOTIFY_ACCESS_PERMISSIONS`, no
    /// CAP_SYS_ADMIN) or no mount could be marked.
    pub fn start(mounts: &[PathBuf]) -> Result<ExecHook, String> {
        let group = Fanotify::init(
            InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK | InitFlags::FAN_REPORT_TID,
            EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
        )
        .map_err(|error| format!("fanotify_init: {error} (needs CAP_SYS_ADMIN and a kernel with fanotify permission events)"))?;
        let (mut marked, mut unmarked) = (Vec::new(), Vec::new());
        for mount in mounts {
            let result = std::fs::File::open(mount).map_err(|error| error.to_string()).and_then(|dir| {
                group
                    .mark(MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_FILESYSTEM, MaskFlags::FAN_OPEN_EXEC_PERM, dir.as_fd(), None::<&Path>)
                    .map_err(|error| error.to_string())
            });
            match result {
                Ok(()) => marked.push(mount.clone()),
                Err(error) => unmarked.push((mount.clone(), error)),
            }
        }
        if marked.is_empty() {
            let why: Vec<String> = unmarked.iter().map(|(path, error)| format!("{}: {error}", path.display())).collect();
            return Err(format!("no file system could be marked ({})", why.join("; ")));
        }
        Ok(ExecHook { group, marked, unmarked })
    }

    /// One mount point per file system of `mountinfo` (/proc/self/mountinfo text) that
    /// can hold executables: pseudo file systems are left out.
    pub fn default_mounts(mountinfo: &str) -> Vec<PathBuf> {
        let mut seen = std::collections::HashSet::new();
        let mut mounts = Vec::new();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let fields: Vec<&str> = left.split(' ').collect();
            let (Some(device), Some(point)) = (fields.get(2), fields.get(4)) else { continue };
            let fstype = right.split(' ').next().unwrap_or("");
            if PSEUDO.contains(&fstype) || !seen.insert(device.to_string()) {
                continue;
            }
            mounts.push(PathBuf::from(unescape(point)));
        }
        mounts
    }

    /// Waits up to `timeout` for events.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut fds = [nix::poll::PollFd::new(self.group.as_fd(), nix::poll::PollFlags::POLLIN)];
        let millis = timeout.as_millis().min(u16::MAX as u128) as u16;
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis)).is_ok_and(|ready| ready > 0)
    }

    /// The waiting events (none when there are none). `overflow` counts the queue
    /// overflows the kernel reported (events it lost: their execs were allowed).
    pub fn read(&self, overflow: &mut u64) -> Vec<PermEvent> {
        let events = match self.group.read_events() {
            Ok(events) => events,
            Err(_) => return Vec::new(),
        };
        let mut perm = Vec::with_capacity(events.len());
        for event in events {
            let Some(fd) = event.fd() else {
                *overflow += 1;
                continue;
            };
            let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let path = std::fs::read_link(&link).map(|path| path.to_string_lossy().into_owned()).unwrap_or_default();
            let (uid, gid, mode) = std::fs::metadata(&link).map(|meta| (meta.uid(), meta.gid(), meta.mode())).unwrap_or_default();
            let tid = event.pid().max(0) as u32;
            perm.push(PermEvent { event, file: OpenedFile { tid, path, uid, gid, mode } });
        }
        perm
    }

    /// Answers a permission event; the paused exec goes on (`allow`) or fails with EPERM.
    pub fn answer(&self, event: &PermEvent, allow: bool) -> Result<(), String> {
        let Some(fd) = event.event.fd() else { return Ok(()) };
        let response = if allow { Response::FAN_ALLOW } else { Response::FAN_DENY };
        self.group.write_response(FanotifyResponse::new(fd, response)).map_err(|error| format!("fanotify answer: {error}"))
    }
}

/// CLOCK_BOOTTIME now, in nanoseconds: the probes' clock.
pub fn boot_now() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map(|spec| spec.tv_sec() as u64 * 1_000_000_000 + spec.tv_nsec() as u64).unwrap_or(0)
}

/// Tells the first event of an exec from the interpreter events of the same `execve`.
#[derive(Default)]
pub struct ExecTracker {
    /// Thread → the execve entry time of the last exec it was asked about.
    last: HashMap<u32, u64>,
}

/// What a permission event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The file an `execve` names: an attempt to decide.
    Attempt,
    /// An interpreter the kernel opens for an exec already decided.
    Interpreter,
}

impl ExecTracker {
    /// Most threads remembered (then the memory starts over: the next event of each is
    /// taken for an attempt, the safe side).
    const MAX: usize = 65_536;

    /// Classifies an event of thread `tid`, given the probes' header of its latest
    /// execve entry (without it every event is an attempt).
    pub fn classify(&mut self, tid: u32, entry: Option<&Header>) -> Opened {
        let Some(entry) = entry.map(|header| header.ktime) else { return Opened::Attempt };
        if self.last.get(&tid) == Some(&entry) {
            return Opened::Interpreter;
        }
        if self.last.len() >= Self::MAX {
            self.last.clear();
        }
        self.last.insert(tid, entry);
        Opened::Attempt
    }

    /// The attempt of `tid` was denied: its next event is a new attempt.
    pub fn denied(&mut self, tid: u32) {
        self.last.remove(&tid);
    }
}

/// A paused exec, as read from /proc while the caller waits for the answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecAttempt {
    pub tid: u32,
    /// The process (thread group).
    pub pid: u32,
    /// CLOCK_BOOTTIME (ns) when it was read.
    pub ktime: u64,
    /// The process's and its parent's start (CLOCK_BOOTTIME, ns).
    pub start_ns: u64,
    pub parent_start_ns: u64,
    pub comm: String,
    /// The new image, with the credentials it will run with.
    pub info: ExecInfo,
    /// Its arguments were cut at the exec event's limit.
    pub truncated: bool,
}

impl ExecAttempt {
    /// Reads the paused exec of thread `event.tid` under `proc_root` (normally /proc).
    ///
    /// `entry` is the probes' header of the thread's `execve` entry: the ids, credentials
    /// and start times come from it, as they come from the probe's header for the exec
    /// event; without it they are read from /proc (start times then have the clock-tick
    /// precision of /proc/<pid>/stat).
    pub fn read(proc_root: &Path, event: &OpenedFile, entry: Option<&Header>) -> std::io::Result<ExecAttempt> {
        let task = proc_root.join(event.tid.to_string());
        let caller = match entry {
            Some(header) => Caller::of(header),
            None => Caller::read(proc_root, event.tid)?,
        };
        let working_directory = std::fs::read_link(task.join("cwd")).map(|path| path.to_string_lossy().into_owned()).unwrap_or_default();
        let (args, truncated) = read_args(&task).unwrap_or_default();
        // A set-user-ID or set-group-ID file runs with its owner's ids (the exec event
        // reports the effective ids after the exec).
        let euid = if event.mode & 0o4000 != 0 { event.uid } else { caller.euid };
        let egid = if event.mode & 0o2000 != 0 && event.mode & 0o010 != 0 { event.gid } else { caller.egid };
        let ktime = boot_now();
        let comm: String = event.path.rsplit('/').next().unwrap_or("").chars().take(15).collect();
        let start_ticks = crate::process_table::start_ticks_from_boottime_ns(caller.start_ns);
        let info = ExecInfo {
            executable: event.path.clone(),
            args,
            working_directory,
            uid: caller.uid,
            euid,
            gid: caller.gid,
            egid,
            tty: caller.tty,
            ppid: Some(caller.ppid),
            start_ticks: Some(start_ticks),
            sid: Some(caller.sid),
        };
        Ok(ExecAttempt { tid: event.tid, pid: caller.pid, ktime, start_ns: caller.start_ns, parent_start_ns: caller.parent_start_ns, comm, info, truncated })
    }

    /// The record header the probe would write for this exec.
    pub fn header(&self) -> Header {
        let mut comm = [0u8; 16];
        for (slot, byte) in comm.iter_mut().zip(self.comm.bytes().take(15)) {
            *slot = byte;
        }
        let (tty_major, tty_minor) = self.info.tty.unwrap_or((0, 0));
        Header {
            ktime: self.ktime,
            start_ns: self.start_ns,
            parent_start_ns: self.parent_start_ns,
            kind: crate::records::Kind::Exec as u16,
            pid: self.pid,
            tid: self.tid,
            ppid: self.info.ppid.unwrap_or(0),
            uid: self.info.uid,
            euid: self.info.euid,
            gid: self.info.gid,
            egid: self.info.egid,
            sid: self.info.sid.unwrap_or(0),
            tty_major,
            tty_minor,
            comm,
            ..Header::default()
        }
    }
}

/// Who calls `execve`: ids, credentials, start times.
struct Caller {
    pid: u32,
    ppid: u32,
    start_ns: u64,
    parent_start_ns: u64,
    uid: u32,
    euid: u32,
    gid: u32,
    egid: u32,
    sid: u32,
    tty: Option<(u32, u32)>,
}

impl Caller {
    fn of(header: &Header) -> Caller {
        Caller {
            pid: header.pid,
            ppid: header.ppid,
            start_ns: header.start_ns,
            parent_start_ns: header.parent_start_ns,
            uid: header.uid,
            euid: header.euid,
            gid: header.gid,
            egid: header.egid,
            sid: header.sid,
            tty: (header.tty_major != 0).then_some((header.tty_major, header.tty_minor)),
        }
    }

    /// From /proc, when the probes' header is missing.
    fn read(proc_root: &Path, tid: u32) -> std::io::Result<Caller> {
        let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what} of thread {tid}"));
        let status = parse_status(&std::fs::read_to_string(proc_root.join(tid.to_string()).join("status"))?).ok_or_else(|| invalid("status"))?;
        let pid = status.tgid.unwrap_or(tid);
        let stat = parse_stat(&std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat"))?).ok_or_else(|| invalid("stat"))?;
        let parent_ticks = std::fs::read_to_string(proc_root.join(stat.ppid.to_string()).join("stat"))
            .ok()
            .and_then(|text| parse_stat(&text))
            .map_or(0, |parent| parent.start_ticks);
        let ticks_ns = 1_000_000_000 / crate::process_table::USER_HZ;
        Ok(Caller {
            pid,
            ppid: stat.ppid,
            start_ns: stat.start_ticks * ticks_ns,
            parent_start_ns: parent_ticks * ticks_ns,
            uid: status.uid.real,
            euid: status.uid.effective,
            gid: status.gid.real,
            egid: status.gid.effective,
            sid: stat.session,
            tty: decode_tty(stat.tty_nr),
        })
    }
}

/// The arguments of the `execve` thread `task` is paused in, from the call's own
/// argument vector (/proc/<tid>/syscall names it, /proc/<tid>/mem holds it), cut as the
/// exec event cuts them: the first `STRING_MAX - 1` bytes of the NUL-separated list,
/// empty arguments dropped. Also whether they were cut.
fn read_args(task: &Path) -> std::io::Result<(Vec<String>, bool)> {
    let syscall = std::fs::read_to_string(task.join("syscall"))?;
    let mut words = syscall.split_whitespace();
    let number: i64 = words.next().and_then(|word| word.parse().ok()).unwrap_or(-1);
    let args: Vec<u64> = words.take(6).filter_map(|word| u64::from_str_radix(word.trim_start_matches("0x"), 16).ok()).collect();
    let argv = match number {
        n if n == EXECVE => args.get(1),
        n if n == EXECVEAT => args.get(2),
        _ => None,
    };
    let Some(&argv) = argv else { return Ok((Vec::new(), false)) };
    let memory = std::fs::File::open(task.join("mem"))?;
    let limit = STRING_MAX - 1;
    let mut blob: Vec<u8> = Vec::new();
    let mut truncated = false;
    'args: for index in 0..MAX_ARGS {
        let mut pointer = [0u8; 8];
        if argv == 0 || memory.read_exact_at(&mut pointer, argv + 8 * index as u64).is_err() {
            break;
        }
        let mut at = u64::from_le_bytes(pointer);
        if at == 0 {
            break;
        }
        loop {
            if blob.len() >= limit {
                truncated = true;
                break 'args;
            }
            // Up to the end of the page, so a string at the end of a mapping reads.
            let chunk = (4096 - (at % 4096)).min((limit - blob.len()) as u64) as usize;
            let mut bytes = vec![0u8; chunk];
            let read = memory.read_at(&mut bytes, at).unwrap_or(0);
            if read == 0 {
                break 'args;
            }
            match bytes[..read].iter().position(|byte| *byte == 0) {
                Some(end) => {
                    blob.extend_from_slice(&bytes[..=end]);
                    break;
                }
                None => {
                    blob.extend_from_slice(&bytes[..read]);
                    at += read as u64;
                }
            }
        }
    }
    blob.truncate(limit);
    let args = blob.split(|byte| *byte == 0).filter(|arg| !arg.is_empty()).map(|arg| String::from_utf8_lossy(arg).into_owned()).collect();
    Ok((args, truncated))
}

#[cfg(target_arch = "x86_64")]
const EXECVE: i64 = 59;
#[cfg(target_arch = "x86_64")]
const EXECVEAT: i64 = 322;
#[cfg(target_arch = "aarch64")]
const EXECVE: i64 = 221;
#[cfg(target_arch = "aarch64")]
const EXECVEAT: i64 = 281;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const EXECVE: i64 = -2;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const EXECVEAT: i64 = -2;

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\'
            && index + 3 < bytes.len()
            && let Ok(value) = u8::from_str_radix(&text[index + 1..index + 4], 8)
        {
            out.push(value);
            index += 4;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mounts_skip_pseudo_file_systems_and_repeated_devices() {
        let mountinfo = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw - proc proc rw
24 22 0:5 / /dev rw - devtmpfs udev rw
25 24 0:22 / /dev/shm rw - tmpfs tmpfs rw
26 22 254:0 /srv /mnt/bind rw - ext4 /dev/vda rw
27 22 0:30 / /mnt/with\\040space rw - tmpfs tmpfs rw
28 22 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let mounts = ExecHook::default_mounts(mountinfo);
        let names: Vec<&str> = mounts.iter().map(|path| path.to_str().unwrap()).collect();
        assert_eq!(names, ["/", "/dev", "/dev/shm", "/mnt/with space"]);
    }

    #[test]
    fn without_the_probes_every_event_is_an_attempt() {
        let mut tracker = ExecTracker::default();
        assert_eq!(tracker.classify(7, None), Opened::Attempt);
        assert_eq!(tracker.classify(7, None), Opened::Attempt);
    }
}
