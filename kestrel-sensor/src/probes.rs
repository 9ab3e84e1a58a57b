//! Loading and attaching the probes (aya), and reading their ring buffer.

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};
use std::os::fd::AsFd;
use std::time::Duration;

/// The compiled probes (empty when the build had no clang: see build.rs).
pub const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kestrel.bpf.o"));

/// Where the embedded probes come from: `clang` (built with this crate), `prebuilt`
/// (the committed bpf/prebuilt/kestrel.bpf.o, when clang was missing), or `none`.
pub const ORIGIN: &str = env!("KESTREL_PROBES_ORIGIN");

/// Hash of the probe sources this crate was built with (see build.rs).
pub const SOURCES_HASH: &str = env!("KESTREL_PROBES_SOURCES");

/// Whether this binary carries the probes.
pub fn built() -> bool {
    !OBJECT.is_empty()
}

/// How a program attaches.
#[derive(Clone, Copy, Debug)]
enum Hook {
    /// A classic tracepoint: category and name (tracefs).
    TracePoint(&'static str, &'static str),
    /// A BTF tracepoint, by name.
    Btf(&'static str),
}

/// Every program, and whether the sensor can run without it.
const PROGRAMS: &[(&str, Hook, bool)] = &[
    ("kestrel_exec", Hook::TracePoint("sched", "sched_process_exec"), true),
    ("kestrel_fork", Hook::Btf("sched_process_fork"), true),
    ("kestrel_exit", Hook::TracePoint("sched", "sched_process_exit"), true),
    ("kestrel_enter_execve", Hook::TracePoint("syscalls", "sys_enter_execve"), false),
    ("kestrel_enter_execveat", Hook::TracePoint("syscalls", "sys_enter_execveat"), false),
    ("kestrel_exit_openat", Hook::TracePoint("syscalls", "sys_exit_openat"), false),
    ("kestrel_exit_openat2", Hook::TracePoint("syscalls", "sys_exit_openat2"), false),
    ("kestrel_exit_creat", Hook::TracePoint("syscalls", "sys_exit_creat"), false),
    ("kestrel_exit_open", Hook::TracePoint("syscalls", "sys_exit_open"), false),
    ("kestrel_enter_unlinkat", Hook::TracePoint("syscalls", "sys_enter_unlinkat"), false),
    ("kestrel_exit_unlinkat", Hook::TracePoint("syscalls", "sys_exit_unlinkat"), false),
    ("kestrel_enter_unlink", Hook::TracePoint("syscalls", "sys_enter_unlink"), false),
    ("kestrel_exit_unlink", Hook::TracePoint("syscalls", "sys_exit_unlink"), false),
    ("kestrel_enter_renameat2", Hook::TracePoint("syscalls", "sys_enter_renameat2"), false),
    ("kestrel_exit_renameat2", Hook::TracePoint("syscalls", "sys_exit_renameat2"), false),
    ("kestrel_enter_renameat", Hook::TracePoint("syscalls", "sys_enter_renameat"), false),
    ("kestrel_exit_renameat", Hook::TracePoint("syscalls", "sys_exit_renameat"), false),
    ("kestrel_enter_rename", Hook::TracePoint("syscalls", "sys_enter_rename"), false),
    ("kestrel_exit_rename", Hook::TracePoint("syscalls", "sys_exit_rename"), false),
    ("kestrel_enter_connect", Hook::TracePoint("syscalls", "sys_enter_connect"), false),
    ("kestrel_exit_connect", Hook::TracePoint("syscalls", "sys_exit_connect"), false),
    ("kestrel_exit_accept4", Hook::TracePoint("syscalls", "sys_exit_accept4"), false),
    ("kestrel_exit_accept", Hook::TracePoint("syscalls", "sys_exit_accept"), false),
    ("kestrel_sock_state", Hook::TracePoint("sock", "inet_sock_set_state"), false),
    ("kestrel_enter_setuid", Hook::TracePoint("syscalls", "sys_enter_setuid"), false),
    ("kestrel_exit_setuid", Hook::TracePoint("syscalls", "sys_exit_setuid"), false),
    ("kestrel_enter_setreuid", Hook::TracePoint("syscalls", "sys_enter_setreuid"), false),
    ("kestrel_exit_setreuid", Hook::TracePoint("syscalls", "sys_exit_setreuid"), false),
    ("kestrel_enter_setresuid", Hook::TracePoint("syscalls", "sys_enter_setresuid"), false),
    ("kestrel_exit_setresuid", Hook::TracePoint("syscalls", "sys_exit_setresuid"), false),
    ("kestrel_enter_setgid", Hook::TracePoint("syscalls", "sys_enter_setgid"), false),
    ("kestrel_exit_setgid", Hook::TracePoint("syscalls", "sys_exit_setgid"), false),
    ("kestrel_enter_setregid", Hook::TracePoint("syscalls", "sys_enter_setregid"), false),
    ("kestrel_exit_setregid", Hook::TracePoint("syscalls", "sys_exit_setregid"), false),
    ("kestrel_enter_setresgid", Hook::TracePoint("syscalls", "sys_enter_setresgid"), false),
    ("kestrel_exit_setresgid", Hook::TracePoint("syscalls", "sys_exit_setresgid"), false),
    ("kestrel_enter_memfd_create", Hook::TracePoint("syscalls", "sys_enter_memfd_create"), false),
    ("kestrel_exit_memfd_create", Hook::TracePoint("syscalls", "sys_exit_memfd_create"), false),
    ("kestrel_enter_ptrace", Hook::TracePoint("syscalls", "sys_enter_ptrace"), false),
    ("kestrel_exit_ptrace", Hook::TracePoint("syscalls", "sys_exit_ptrace"), false),
    ("kestrel_enter_recvfrom", Hook::TracePoint("syscalls", "sys_enter_recvfrom"), false),
    ("kestrel_exit_recvfrom", Hook::TracePoint("syscalls", "sys_exit_recvfrom"), false),
    ("kestrel_enter_recvmsg", Hook::TracePoint("syscalls", "sys_enter_recvmsg"), false),
    ("kestrel_exit_recvmsg", Hook::TracePoint("syscalls", "sys_exit_recvmsg"), false),
    ("kestrel_enter_finit_module", Hook::TracePoint("syscalls", "sys_enter_finit_module"), false),
    ("kestrel_exit_finit_module", Hook::TracePoint("syscalls", "sys_exit_finit_module"), false),
    ("kestrel_enter_init_module", Hook::TracePoint("syscalls", "sys_enter_init_module"), false),
    ("kestrel_exit_init_module", Hook::TracePoint("syscalls", "sys_exit_init_module"), false),
];

/// Why the probes could not start.
#[derive(Debug)]
pub enum ProbeError {
    /// This binary was built without clang: no probes inside.
    NotBuilt,
    /// Not root, and without CAP_BPF and CAP_PERFMON.
    Privileges(String),
    /// The kernel refused the object or a required program.
    Load(String),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::NotBuilt => write!(
                f,
                "this kestrel was built without its eBPF probes (clang was not found at build time); install clang and libbpf-dev (apt-get install clang llvm libbpf-dev) and rebuild"
            ),
            ProbeError::Privileges(why) => write!(f, "live mode needs root, or CAP_BPF and CAP_PERFMON: {why}"),
            ProbeError::Load(why) => write!(f, "the kernel refused Kestrel's probes: {why}"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// A program that did not attach, and why (optional hooks a kernel lacks, such as module loading on a kernel without modules).
#[derive(Clone, Debug)]
pub struct Skipped {
    pub program: &'static str,
    pub reason: String,
}

/// The loaded, attached probes and their ring buffer.
pub struct Probes {
    /// Keeps programs and links alive; dropping it detaches everything.
    _ebpf: Ebpf,
    ring: RingBuf<MapData>,
    drops: PerCpuArray<MapData, u64>,
    pub attached: usize,
    pub skipped: Vec<Skipped>,
    /// The maps enforcement uses, until [`Probes::take_exec_maps`] hands them over.
    exec_maps: Option<ExecMaps>,
}

/// The probes' maps the exec hook uses (see bpf/kestrel.bpf.c): when each thread last
/// entered execve, and the processes to kill at their next exec.
pub struct ExecMaps {
    entries: HashMap<MapData, u32, [u8; crate::records::Header::SIZE]>,
    kills: HashMap<MapData, u32, u64>,
}

impl ExecMaps {
    /// The header of the thread's latest execve/execveat entry, if the probe saw one:
    /// its `ktime` is when the thread entered it (CLOCK_BOOTTIME, ns).
    pub fn entry(&self, tid: u32) -> Option<crate::records::Header> {
        self.entries.get(&tid, 0).ok().and_then(|bytes| crate::records::Header::read(&bytes).ok())
    }

    /// Kills process `tgid` at its next exec, if that comes before `deadline` (CLOCK_BOOTTIME ns).
    pub fn arm_kill(&mut self, tgid: u32, deadline: u64) -> Result<(), String> {
        self.kills.insert(tgid, deadline, 0).map_err(|error| format!("cannot arm the kill of {tgid}: {error}"))
    }

    /// Takes back an armed kill (the exec it was for did not happen).
    pub fn disarm(&mut self, tgid: u32) {
        let _ = self.kills.remove(&tgid);
    }

    /// Removes the armed kills whose deadline is before `now` (their exec never came):
    /// the map stays free for new ones. Returns how many were removed.
    pub fn expire_kills(&mut self, now: u64) -> usize {
        let stale: Vec<u32> = self.kills.iter().filter_map(Result::ok).filter(|(_, deadline)| *deadline < now).map(|(tgid, _)| tgid).collect();
        stale.iter().filter(|tgid| self.kills.remove(tgid).is_ok()).count()
    }
}

/// Checks the privileges live mode needs (root, or CAP_BPF + CAP_PERFMON in the effective set).
pub fn check_privileges() -> Result<(), ProbeError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|error| ProbeError::Privileges(format!("cannot read /proc/self/status: {error}")))?;
    let effective = status.lines().find_map(|line| line.strip_prefix("CapEff:")).and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok()).unwrap_or(0);
    const CAP_SYS_ADMIN: u64 = 21;
    const CAP_PERFMON: u64 = 38;
    const CAP_BPF: u64 = 39;
    let has = |cap: u64| effective & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        Ok(())
    } else {
        Err(ProbeError::Privileges(format!("effective capabilities are {effective:#x}; run as root or grant cap_bpf,cap_perfmon")))
    }
}

/// Mounts tracefs at /sys/kernel/tracing when nothing is there (classic tracepoints need it).
fn ensure_tracefs() -> Result<(), String> {
    let tracing = std::path::Path::new("/sys/kernel/tracing");
    if tracing.join("events").exists() || std::path::Path::new("/sys/kernel/debug/tracing/events").exists() {
        return Ok(());
    }
    nix::mount::mount(Some("tracefs"), tracing, Some("tracefs"), nix::mount::MsFlags::empty(), None::<&str>)
        .map_err(|error| format!("tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {error}"))
}

impl Probes {
    /// Loads the probes, tells them the sensor's own pid (its events are not reported),
    /// and attaches every program the kernel offers. `ring_bytes` is the ring buffer's
    /// size (a power of two, in bytes).
    pub fn start(ring_bytes: u32) -> Result<Probes, ProbeError> {
        if !built() {
            return Err(ProbeError::NotBuilt);
        }
        check_privileges()?;
        ensure_tracefs().map_err(ProbeError::Load)?;
        let btf = Btf::from_sys_fs().map_err(|error| ProbeError::Load(format!("no kernel BTF at /sys/kernel/btf/vmlinux: {error}")))?;
        let mut ebpf =
            EbpfLoader::new().btf(Some(&btf)).map_max_entries("EVENTS", ring_bytes).load(OBJECT).map_err(|error| ProbeError::Load(format!("{error:?}")))?;
        {
            let mut config: Array<_, u32> = Array::try_from(ebpf.map_mut("CONFIG").ok_or_else(|| ProbeError::Load("no CONFIG map".into()))?)
                .map_err(|error| ProbeError::Load(error.to_string()))?;
            config.set(0, std::process::id(), 0).map_err(|error| ProbeError::Load(error.to_string()))?;
        }
        let mut attached = 0;
        let mut skipped = Vec::new();
        for (name, hook, required) in PROGRAMS {
            match attach(&mut ebpf, name, *hook, &btf) {
                Ok(()) => attached += 1,
                Err(reason) if *required => return Err(ProbeError::Load(format!("{name}: {reason}"))),
                Err(reason) => skipped.push(Skipped { program: name, reason }),
            }
        }
        let ring = RingBuf::try_from(ebpf.take_map("EVENTS").ok_or_else(|| ProbeError::Load("no EVENTS map".into()))?)
            .map_err(|error| ProbeError::Load(error.to_string()))?;
        let drops = PerCpuArray::try_from(ebpf.take_map("DROPS").ok_or_else(|| ProbeError::Load("no DROPS map".into()))?)
            .map_err(|error| ProbeError::Load(error.to_string()))?;
        let take = |ebpf: &mut Ebpf, name: &str| ebpf.take_map(name).ok_or_else(|| ProbeError::Load(format!("no {name} map")));
        let entries = HashMap::try_from(take(&mut ebpf, "EXEC_ENTRY")?).map_err(|error| ProbeError::Load(error.to_string()))?;
        let kills = HashMap::try_from(take(&mut ebpf, "KILL_ON_EXEC")?).map_err(|error| ProbeError::Load(error.to_string()))?;
        let exec_maps = Some(ExecMaps { entries, kills });
        Ok(Probes { _ebpf: ebpf, ring, drops, attached, skipped, exec_maps })
    }

    /// Hands each waiting record to `each` (at most `max` of them). When none waits, it
    /// first waits up to `timeout` for one, then `linger` more so that the records
    /// arriving together are handed over together (the engine's cost is per batch as
    /// much as per event). Returns how many were handed over.
    ///
    /// A byte on `wake` ends the wait early (and without lingering): the exec hook asks
    /// for a decision.
    pub fn read(&mut self, timeout: Duration, linger: Duration, max: usize, wake: Option<&mut std::io::PipeReader>, mut each: impl FnMut(&[u8])) -> usize {
        let mut count = self.drain(max, &mut each);
        if count == 0 {
            let millis = timeout.as_millis().min(u16::MAX as u128) as u16;
            let (ring_ready, woken) = {
                let mut fds = vec![nix::poll::PollFd::new(self.ring.as_fd(), nix::poll::PollFlags::POLLIN)];
                if let Some(wake) = &wake {
                    fds.push(nix::poll::PollFd::new(wake.as_fd(), nix::poll::PollFlags::POLLIN));
                }
                let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis)).is_ok_and(|ready| ready > 0);
                let is_set = |fd: &nix::poll::PollFd| fd.revents().is_some_and(|events| events.contains(nix::poll::PollFlags::POLLIN));
                (ready && is_set(&fds[0]), ready && fds.get(1).is_some_and(is_set))
            };
            if ring_ready && !woken && !timeout.is_zero() {
                // Linger, unless woken for a decision meanwhile (a paused exec must not
                // wait for the batch to fill).
                match &wake {
                    Some(wake) => {
                        let mut fds = [nix::poll::PollFd::new(wake.as_fd(), nix::poll::PollFlags::POLLIN)];
                        let millis = linger.as_millis().min(u16::MAX as u128) as u16;
                        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis));
                    }
                    None => std::thread::sleep(linger),
                }
            }
            if let Some(wake) = wake {
                let mut fds = [nix::poll::PollFd::new(wake.as_fd(), nix::poll::PollFlags::POLLIN)];
                if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|ready| ready > 0) {
                    // At least one byte waits, so this read does not block.
                    let _ = std::io::Read::read(wake, &mut [0u8; 64]);
                }
            }
            if ring_ready || woken {
                count = self.drain(max, &mut each);
            }
        }
        count
    }

    fn drain(&mut self, max: usize, each: &mut impl FnMut(&[u8])) -> usize {
        let mut count = 0;
        while count < max {
            match self.ring.next() {
                Some(item) => {
                    each(&item);
                    count += 1;
                }
                None => break,
            }
        }
        count
    }

    /// Records the kernel side dropped so far: (ring buffer full, syscall argument map full).
    pub fn kernel_drops(&self) -> (u64, u64) {
        let sum = |index: u32| self.drops.get(&index, 0).map(|values| values.iter().sum()).unwrap_or(0);
        (sum(0), sum(1))
    }

    /// Processes the probes killed at their exec (armed through [`ExecMaps::arm_kill`]).
    pub fn killed_at_exec(&self) -> u64 {
        self.drops.get(&2, 0).map(|values| values.iter().sum()).unwrap_or(0)
    }

    /// Hands the enforcement maps over (once).
    pub fn take_exec_maps(&mut self) -> Option<ExecMaps> {
        self.exec_maps.take()
    }
}

fn attach(ebpf: &mut Ebpf, name: &str, hook: Hook, btf: &Btf) -> Result<(), String> {
    let program = ebpf.program_mut(name).ok_or_else(|| "not in the object".to_string())?;
    match hook {
        Hook::TracePoint(category, event) => {
            if !std::path::Path::new("/sys/kernel/tracing/events").join(category).join(event).exists()
                && !std::path::Path::new("/sys/kernel/debug/tracing/events").join(category).join(event).exists()
            {
                return Err(format!("this kernel has no tracepoint {category}/{event}"));
            }
            let program: &mut TracePoint = program.try_into().map_err(|error| format!("{error}"))?;
            program.load().map_err(|error| format!("load: {error:?}"))?;
            program.attach(category, event).map_err(|error| format!("attach: {error:?}"))?;
        }
        Hook::Btf(event) => {
            let program: &mut BtfTracePoint = program.try_into().map_err(|error| format!("{error}"))?;
            program.load(event, btf).map_err(|error| format!("load: {error:?}"))?;
            program.attach().map_err(|error| format!("attach: {error:?}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed object (used where clang is missing) is built from the current
    /// sources. Regenerate with `KESTREL_WRITE_PROBES=1 cargo test -p kestrel-sensor prebuilt`
    /// on a machine with clang.
    #[test]
    fn the_prebuilt_probes_match_the_sources() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bpf/prebuilt");
        if std::env::var_os("KESTREL_WRITE_PROBES").is_some() {
            assert_eq!(ORIGIN, "clang", "the prebuilt object must come from clang");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("kestrel.bpf.o"), OBJECT).unwrap();
            std::fs::write(dir.join("SOURCES"), format!("{SOURCES_HASH}\n")).unwrap();
        }
        let recorded = std::fs::read_to_string(dir.join("SOURCES")).unwrap_or_default();
        assert_eq!(
            recorded.trim(),
            SOURCES_HASH,
            "bpf/prebuilt is stale: run `KESTREL_WRITE_PROBES=1 cargo test -p kestrel-sensor prebuilt` with clang installed"
        );
        assert!(dir.join("kestrel.bpf.o").metadata().is_ok_and(|meta| meta.len() > 1000));
    }
}
