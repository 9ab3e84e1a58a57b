//! Reading a `/proc` tree: the few files the process table is seeded from.
//!
//! `<root>/<pid>/stat`, `status` and `cmdline` are parsed by pure functions
//! ([`parse_stat`], [`parse_status`], [`parse_cmdline`]) so tests can feed them text,
//! and [`read_process`] reads them (and the `exe` and `cwd` links) under any root, so
//! tests can use a fake tree (`tests/data/proc/`). Only thread-group leaders are read:
//! listing `/proc` shows no other threads, and `/proc/<pid>/task` is never opened.
//! A process may vanish between the listing and the reads; that is an error for that
//! pid only.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// `PF_KTHREAD` in the `flags` field of `/proc/<pid>/stat`: the task is a kernel thread.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// At most this many bytes of `/proc/<pid>/cmdline` are read (the rest is dropped).
pub const MAX_CMDLINE_BYTES: u64 = 64 * 1024;

/// The suffix the kernel appends to the target of an `exe` or `cwd` link whose file
/// was deleted (or replaced, as by a package upgrade).
const DELETED_SUFFIX: &str = " (deleted)";

/// The fields of `/proc/<pid>/stat` the process table uses (proc(5) numbers them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Field 1.
    pub pid: u32,
    /// Field 2, without its parentheses: the kernel's 15-byte name of the thread, which
    /// may contain spaces and parentheses.
    pub comm: String,
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Field 4.
    pub ppid: u32,
    /// Field 5: the process group.
    pub pgrp: u32,
    /// Field 6: the session.
    pub session: u32,
    /// Field 7: the controlling terminal, encoded (see [`decode_tty`]); 0 for none.
    pub tty_nr: u32,
    /// Field 9: `PF_*` bits.
    pub flags: u32,
    /// Field 22: when the process started, in clock ticks (`USER_HZ`) since boot.
    pub start_ticks: u64,
}

impl Stat {
    /// A kernel thread (no executable, empty command line).
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// A zombie or dead process: it has exited and waits for its parent.
    pub fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `/proc/<pid>/stat`. The name is everything between the first `(` and the
/// last `)`, so names holding spaces or parentheses parse; `None` if a field is
/// missing or malformed.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_owned();
    // Fields 3 and on.
    let mut fields = text[close + 1..].split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    // Printed as a signed int; the bits are what matter.
    let tty_nr = fields.next()?.parse::<i64>().ok()? as u32;
    let _tpgid = fields.next()?;
    let flags = fields.next()?.parse().ok()?;
    // Fields 10 to 21 come before the start time.
    let start_ticks = fields.nth(12)?.parse().ok()?;
    Some(Stat { pid, comm, state, ppid, pgrp, session, tty_nr, flags, start_ticks })
}

/// The terminal device of an encoded `tty_nr` as `(major, minor)`; `None` for 0 (no
/// controlling terminal). The kernel encodes minor bits 0-7 in bits 0-7, the major in
/// bits 8-19 and minor bits 8-19 in bits 20-31.
pub fn decode_tty(tty_nr: u32) -> Option<(u32, u32)> {
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some((major, minor))
}

/// One `Uid:` or `Gid:` line of `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    pub filesystem: u32,
}

/// The lines of `/proc/<pid>/status` the process table uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The thread group: differs from the pid for a thread that is not the leader.
    pub tgid: Option<u32>,
    pub uid: Ids,
    pub gid: Ids,
}

/// Parses `/proc/<pid>/status`; `None` unless both its `Uid:` and `Gid:` lines parse.
pub fn parse_status(text: &str) -> Option<Status> {
    let mut tgid = None;
    let mut uid = None;
    let mut gid = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key {
            "Tgid" => tgid = value.trim().parse().ok(),
            "Uid" => uid = parse_ids(value),
            "Gid" => gid = parse_ids(value),
            _ => {}
        }
    }
    Some(Status { tgid, uid: uid?, gid: gid? })
}

fn parse_ids(value: &str) -> Option<Ids> {
    let mut ids = value.split_ascii_whitespace().map(|id| id.parse::<u32>());
    let mut next = || ids.next()?.ok();
    Some(Ids { real: next()?, effective: next()?, saved: next()?, filesystem: next()? })
}

/// The arguments in `/proc/<pid>/cmdline`: NUL-separated, with a final NUL; empty for
/// a kernel thread or a zombie. Invalid UTF-8 is replaced. A program that rewrote its
/// arguments (setproctitle) may show one argument holding spaces.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|byte| *byte == 0).map(|arg| String::from_utf8_lossy(arg).into_owned()).collect()
}

/// Everything read about one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcEntry {
    pub stat: Stat,
    pub status: Status,
    pub args: Vec<String>,
    /// The `exe` link's target without the kernel's ` (deleted)` suffix; `None` when it
    /// could not be read (kernel threads, zombies, other users' processes without
    /// privileges, a fake tree without the link).
    pub exe: Option<String>,
    /// The `cwd` link's target, as `exe`.
    pub cwd: Option<String>,
}

/// The pids under `proc_root`: its directories named by a number, in increasing order.
pub fn pids(proc_root: &Path) -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// Reads `<proc_root>/<pid>/`. `stat` and `status` must be readable and parse (an
/// error otherwise: the process vanished, or the tree is not a `/proc`); a missing
/// `cmdline` reads as no arguments, and unreadable links as `None`. `Ok(None)`: the pid
/// is a thread that is not its group's leader.
pub fn read_process(proc_root: &Path, pid: u32) -> io::Result<Option<ProcEntry>> {
    let dir = proc_root.join(pid.to_string());
    let malformed = |file: &str| io::Error::new(io::ErrorKind::InvalidData, format!("malformed {}", dir.join(file).display()));
    let stat = parse_stat(&fs::read_to_string(dir.join("stat"))?).ok_or_else(|| malformed("stat"))?;
    let status = parse_status(&fs::read_to_string(dir.join("status"))?).ok_or_else(|| malformed("status"))?;
    if status.tgid.is_some_and(|tgid| tgid != pid) {
        return Ok(None);
    }
    let mut cmdline = Vec::new();
    if let Ok(file) = fs::File::open(dir.join("cmdline")) {
        // A read error midway keeps what was read.
        let _ = file.take(MAX_CMDLINE_BYTES).read_to_end(&mut cmdline);
    }
    Ok(Some(ProcEntry { stat, status, args: parse_cmdline(&cmdline), exe: read_link(&dir.join("exe")), cwd: read_link(&dir.join("cwd")) }))
}

fn read_link(path: &Path) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    let target = target.to_string_lossy();
    Some(target.strip_suffix(DELETED_SUFFIX).unwrap_or(&target).to_owned())
}

/// This boot's id (`<proc_root>/sys/kernel/random/boot_id`, without its newline).
pub fn read_boot_id(proc_root: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(proc_root.join("sys/kernel/random/boot_id"))?.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process_table::{Process, ProcessTable, SeedStats, entity_id};
    use std::path::PathBuf;

    #[test]
    fn stat_names_may_hold_spaces_and_parentheses() {
        let text = "4300 (my (weird) prog) R 4250 4300 4250 34816 4300 4194304 0 0 0 0 5 1 0 0 20 0 1 0 123456 0 0\n";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.pid, 4300);
        assert_eq!(stat.comm, "my (weird) prog");
        assert_eq!((stat.state, stat.ppid, stat.pgrp, stat.session), ('R', 4250, 4300, 4250));
        assert_eq!(stat.start_ticks, 123456);
        assert_eq!(decode_tty(stat.tty_nr), Some((136, 0)));
        assert!(!stat.is_kernel_thread());
    }

    #[test]
    fn malformed_stat_is_none_not_a_panic() {
        for text in ["", "1", "1 (a", "1 )a( S 0", "x (a) S 0 1 1 0 -1 0", "1 (a) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0", ")(", "1 (a) S -3 1 1 0"] {
            assert_eq!(parse_stat(text), None, "{text:?}");
        }
    }

    #[test]
    fn tty_numbers_decode_high_minor_bits() {
        assert_eq!(decode_tty(0), None);
        assert_eq!(decode_tty(0x0401), Some((4, 1)));
        // pts 300: major 136, minor 0x12c.
        assert_eq!(decode_tty((0x2c) | (136 << 8) | (0x100 << 12)), Some((136, 300)));
        assert_eq!(decode_tty(-1i32 as u32), Some((0xfff, 0xfffff)));
    }

    #[test]
    fn status_ids_and_thread_group() {
        let text = "Name:\tbash\nTgid:\t4250\nPid:\t4251\nUid:\t1000\t0\t1000\t0\nGid:\t1000\t1000\t1000\t1000\n";
        let status = parse_status(text).unwrap();
        assert_eq!(status.tgid, Some(4250));
        assert_eq!(status.uid, Ids { real: 1000, effective: 0, saved: 1000, filesystem: 0 });
        assert_eq!(status.gid.effective, 1000);
        assert_eq!(parse_status("Name:\tx\nUid:\t1\t2\t3\n"), None);
    }

    #[test]
    fn cmdline_is_nul_separated_and_keeps_empty_arguments() {
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(parse_cmdline(b"bash\0-i\0"), ["bash", "-i"]);
        assert_eq!(parse_cmdline(b"a\0\0b\0\0"), ["a", "", "b", ""]);
        assert_eq!(parse_cmdline(b"sshd: alice [priv]"), ["sshd: alice [priv]"]);
        assert_eq!(parse_cmdline(b"\xff\0"), ["\u{fffd}"]);
    }

    const BOOT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    fn fake_proc() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/proc")
    }

    fn pids_of<'a>(processes: impl Iterator<Item = &'a Process>) -> Vec<u32> {
        processes.map(|process| process.pid).collect()
    }

    /// The fake tree copied to a temporary directory, with the `exe` and `cwd` links of
    /// 1, 812 and 4250 and `self` (links to real directories stay out of the crate, whose
    /// files cargo walks).
    struct LinkedCopy(PathBuf);

    impl LinkedCopy {
        fn new(name: &str) -> LinkedCopy {
            let root = std::env::temp_dir().join(format!("kestrel-fake-proc-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            copy_tree(&fake_proc(), &root).unwrap();
            let links = [
                ("1/exe", "/usr/lib/systemd/systemd"),
                ("1/cwd", "/"),
                ("812/exe", "/usr/sbin/sshd (deleted)"),
                ("4250/exe", "/usr/bin/bash"),
                ("4250/cwd", "/home/alice"),
                ("self", "4250"),
            ];
            for (link, target) in links {
                std::os::unix::fs::symlink(target, root.join(link)).unwrap();
            }
            LinkedCopy(root)
        }
    }

    impl Drop for LinkedCopy {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy_tree(&entry.path(), &target)?;
            } else {
                fs::copy(entry.path(), &target)?;
            }
        }
        Ok(())
    }

    #[test]
    fn a_fake_proc_lists_pids_and_reads_links_threads_and_gaps() {
        let copy = LinkedCopy::new("read");
        assert_eq!(pids(&copy.0).unwrap(), [1, 2, 812, 4241, 4250, 4251, 4300, 4301, 4302, 4400]);
        let sshd = read_process(&copy.0, 812).unwrap().unwrap();
        assert_eq!((sshd.exe.as_deref(), sshd.cwd.as_deref()), (Some("/usr/sbin/sshd"), None));
        assert_eq!(read_process(&copy.0, 1).unwrap().unwrap().cwd.as_deref(), Some("/"));
        assert_eq!(read_process(&copy.0, 4251).unwrap(), None, "a thread, not its group's leader");
        assert_eq!(read_process(&copy.0, 4301).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(read_process(&copy.0, 4302).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(read_boot_id(&copy.0).unwrap(), BOOT);
        assert!(pids(&copy.0.join("missing")).is_err());
    }

    #[test]
    fn seeding_tolerates_a_tree_without_links() {
        let mut table = ProcessTable::new(BOOT, 100);
        let stats = table.seed_from_proc(&fake_proc());
        assert_eq!(stats, SeedStats { read: 7, failed: 2, kernel_threads: 1, exe_unreadable: 6, cwd_unreadable: 6, already_known: 0 });
        assert_eq!(&*table.get(4250).unwrap().name, "bash", "the comm stands in for the name");
        table.check_invariants();
    }

    #[test]
    fn seeding_a_fake_proc_reads_every_process_and_tolerates_gaps() {
        let copy = LinkedCopy::new("seed");
        let mut table = ProcessTable::new(&read_boot_id(&copy.0).unwrap(), 100);
        assert_eq!(table.boot_id(), BOOT);
        let stats = table.seed_from_proc(&copy.0);
        assert_eq!(stats, SeedStats { read: 7, failed: 2, kernel_threads: 1, exe_unreadable: 3, cwd_unreadable: 4, already_known: 0 });
        assert_eq!(table.len(), 7);
        let bash = table.get(4250).unwrap();
        assert_eq!((&*bash.executable, &*bash.name, &*bash.working_directory), ("/usr/bin/bash", "bash", "/home/alice"));
        assert_eq!((bash.ppid, bash.sid, bash.pgid, bash.uid, bash.start_ticks), (4241, 4250, 4250, 1000, 90010));
        assert_eq!(*bash.args, ["-bash"]);
        assert_eq!(bash.tty, Some((136, 0)));
        assert!(bash.interactive() && !bash.placeholder);
        assert_eq!(&*bash.entity_id, entity_id(BOOT, 4250, 90010));
        assert_eq!(bash.parent_entity_id.as_deref(), Some(&*entity_id(BOOT, 4241, 90000)));
        let weird = table.get(4300).unwrap();
        assert_eq!((&*weird.name, &*weird.executable, &*weird.working_directory), ("my (weird) prog", "", ""));
        assert_eq!(weird.command_line(), "./my (weird) prog --flag");
        assert_eq!((weird.uid, weird.euid), (1000, 0));
        let sshd = table.get(812).unwrap();
        assert_eq!((&*sshd.executable, &*sshd.name), ("/usr/sbin/sshd", "sshd"));
        assert_eq!(*sshd.args, ["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"]);
        let kthreadd = table.get(2).unwrap();
        assert_eq!((&*kthreadd.name, &*kthreadd.executable, kthreadd.args.len()), ("kthreadd", "", 0));
        assert!(table.get(4400).unwrap().exited);
        assert!(table.get(4251).is_none() && table.get(4301).is_none() && table.get(4302).is_none());
        assert_eq!(pids_of(table.ancestors(4300, 10)), [4250, 4241, 812, 1]);
        assert_eq!(pids_of(table.ancestors(4300, 2)), [4250, 4241]);
        assert_eq!(table.session_leader(4300).map(|process| process.pid), Some(4250));
        assert_eq!(table.entry_leader(4300).map(|process| process.pid), Some(4250));
        assert_eq!(table.entry_leader(812).map(|process| process.pid), Some(812));
        assert_eq!(table.entry_leader(1).map(|process| process.pid), Some(1));
        assert_eq!(table.entry_leader(2), None);
        // A second seeding changes nothing.
        assert_eq!(table.seed_from_proc(&copy.0).already_known, 7);
        assert_eq!(table.len(), 7);
        assert_eq!(table.seed_from_proc(&fake_proc().join("missing")).failed, 1);
        table.check_invariants();
    }

    #[test]
    fn seeding_the_real_proc_finds_this_process() {
        let proc_root = Path::new("/proc");
        let boot_id = read_boot_id(proc_root).unwrap();
        let mut table = ProcessTable::new(&boot_id, 1_000_000);
        let stats = table.seed_from_proc(proc_root);
        assert!(stats.read >= 2, "{stats:?}");
        let me = table.get(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(!me.executable.is_empty());
        let current_exe = std::env::current_exe().unwrap();
        assert_eq!(&*me.name, current_exe.file_name().unwrap().to_str().unwrap());
        assert!(me.start_ticks > 0 && !me.exited);
        assert_eq!(&*me.entity_id, entity_id(&boot_id, me.pid, me.start_ticks));
        assert_eq!(table.parent(me.pid).map(|parent| parent.pid), Some(me.ppid));
        table.check_invariants();
    }
}
