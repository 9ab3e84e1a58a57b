//! Probe records → ECS events in the Elastic Defend vocabulary, one JSON document each.
//!
//! The [`Converter`] keeps the process table current (fork, exec, exit and credential
//! records update it) and fills every event's `process.*` and `process.parent.*` from
//! it, so events about a process carry its image and arguments whatever syscall they
//! come from. The fields each event kind fills are listed in [`crate::fields`], which
//! generates docs/sensor-fields.md and the `sensor` schema.

use crate::exec_hook::ExecAttempt;
use crate::json::JsonWriter;
use crate::process_table::{ExecInfo, Process, ProcessTable, entity_id, start_ticks_from_boottime_ns};
use crate::records::{
    CredBody, DnsBody, ExecBody, ExitBody, FileBody, ForkBody, Header, Kind, MemfdBody, ModuleBody, NetBody, PtraceBody, Record, RecordError, c_string,
    components_to_path, cred_op, file_op, flags, net_op, resolve,
};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host the sensor runs on: `host.*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// /etc/machine-id.
    pub id: String,
    /// /proc/sys/kernel/random/boot_id: names processes uniquely across boots.
    pub boot_id: String,
    pub kernel: String,
    pub architecture: String,
}

impl Host {
    /// Reads this host's identity from /proc and /etc (missing files give empty fields).
    pub fn read() -> Host {
        let read = |path: &str| std::fs::read_to_string(path).map(|text| text.trim().to_string()).unwrap_or_default();
        Host {
            name: read("/proc/sys/kernel/hostname"),
            id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            kernel: read("/proc/sys/kernel/osrelease"),
            architecture: std::env::consts::ARCH.to_string(),
        }
    }
}

/// Turns the probes' CLOCK_BOOTTIME stamps into wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Realtime minus boottime, in nanoseconds, measured once at start (a later clock
    /// step does not reorder events).
    pub offset_ns: i64,
}

impl Clock {
    pub fn now() -> Clock {
        let realtime = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).map(nanos).unwrap_or(0);
        let boottime = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map(nanos).unwrap_or(0);
        Clock { offset_ns: realtime - boottime }
    }

    /// Now, on this clock (ns since the epoch).
    pub fn wall_now(&self) -> i64 {
        let boottime = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map(nanos).unwrap_or(0);
        self.wall(boottime as u64)
    }

    pub fn wall(&self, boot_ns: u64) -> i64 {
        self.offset_ns.saturating_add(boot_ns as i64)
    }
}

fn nanos(spec: nix::sys::time::TimeSpec) -> i64 {
    spec.tv_sec() * 1_000_000_000 + spec.tv_nsec()
}

/// User and group names by id (/etc/passwd, /etc/group), for `user.name` and `group.name`.
#[derive(Clone, Debug, Default)]
pub struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    pub fn read() -> Names {
        let table = |path: &str| {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| {
                    let mut parts = line.split(':');
                    let name = parts.next()?;
                    let id = parts.nth(1)?.parse().ok()?;
                    Some((id, name.to_string()))
                })
                .collect()
        };
        Names { users: table("/etc/passwd"), groups: table("/etc/group") }
    }
}

/// What the converter did, for the run's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvertStats {
    pub records: u64,
    pub bad_records: u64,
    pub truncated: u64,
}

/// Probe records in, ECS JSON documents out.
pub struct Converter {
    pub host: Host,
    pub clock: Clock,
    pub table: ProcessTable,
    names: Names,
    pub stats: ConvertStats,
    /// Events converted so far (`event.sequence`).
    sequence: u64,
}

/// The ECS version the events follow (the schema is generated from it).
pub const ECS_VERSION: &str = "9.4.0";

/// Ancestors listed in `process.Ext.ancestry`, nearest first.
pub const ANCESTRY_DEPTH: usize = 20;

/// One converted event: its wall-clock time and its JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    pub timestamp: i64,
    pub json: String,
}

impl Converter {
    pub fn new(host: Host, clock: Clock, table: ProcessTable, names: Names) -> Converter {
        Converter { host, clock, table, names, stats: ConvertStats::default(), sequence: 0 }
    }

    /// Converts one ring-buffer record. Bad records are counted and returned as errors.
    pub fn convert(&mut self, bytes: &[u8]) -> Result<Converted, RecordError> {
        self.stats.records += 1;
        let converted = self.convert_record(bytes);
        if converted.is_err() {
            self.stats.bad_records += 1;
        }
        converted
    }

    fn convert_record(&mut self, bytes: &[u8]) -> Result<Converted, RecordError> {
        let record = Record::parse(bytes)?;
        let header = record.header;
        if header.flags & flags::TRUNCATED != 0 {
            self.stats.truncated += 1;
        }
        let timestamp = self.clock.wall(header.ktime);
        let mut json = JsonWriter::new();
        json.time("@timestamp", timestamp);
        let start_ticks = start_ticks_from_boottime_ns(header.start_ns);
        match record.kind {
            Kind::Exec => {
                let body = ExecBody::read(record.body)?;
                let [exe, args, cwd, env] = record.strings([body.exe_len, body.args_len, body.cwd_len, body.env_len])?;
                let args: Vec<String> =
                    args.split(|byte| *byte == 0).filter(|arg| !arg.is_empty()).map(|arg| String::from_utf8_lossy(arg).into_owned()).collect();
                let info = ExecInfo {
                    executable: components_to_path(exe),
                    args,
                    working_directory: components_to_path(cwd),
                    uid: header.uid,
                    euid: header.euid,
                    gid: header.gid,
                    egid: header.egid,
                    tty: tty(&header),
                    ppid: Some(header.ppid),
                    start_ticks: Some(start_ticks),
                    sid: Some(header.sid),
                };
                self.table.exec(header.pid, info);
                self.event(&mut json, "process", "start", "exec");
                let env_vars = env_vars(env);
                self.process(&mut json, &header, |json| {
                    if !env_vars.is_empty() {
                        json.strs("env_vars", env_vars.iter().map(String::as_str));
                    }
                });
            }
            Kind::Fork => {
                let body = ForkBody::read(record.body)?;
                self.table.fork(header.ppid, body.child_pid, start_ticks_from_boottime_ns(body.child_start_ns));
                self.event(&mut json, "process", "start", "fork");
                self.process(&mut json, &header, |_| {});
            }
            Kind::Exit => {
                let body = ExitBody::read(record.body)?;
                self.event(&mut json, "process", "end", "end");
                let status = body.exit_code;
                // A wait status: the exit code, or 128 + the signal that ended it, as shells report.
                let code = if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) };
                self.process(&mut json, &header, |json| {
                    json.num("exit_code", code);
                });
                self.table.exit(header.pid);
            }
            Kind::File => {
                let body = FileBody::read(record.body)?;
                let [name, dir, orig_name, orig_dir] = record.strings([body.name_len, body.dir_len, body.orig_name_len, body.orig_dir_len])?;
                let path = resolve(&components_to_path(dir), &c_string(name));
                let (kind, action) = match body.op {
                    file_op::CREATE => ("creation", "creation"),
                    file_op::DELETE => ("deletion", "deletion"),
                    file_op::RENAME => ("change", "rename"),
                    _ => ("change", "modification"),
                };
                self.event(&mut json, "file", kind, action);
                self.touch(&header);
                self.process(&mut json, &header, |_| {});
                json.open("file");
                file_fields(&mut json, &path);
                if body.op == file_op::RENAME {
                    let original = resolve(&components_to_path(orig_dir), &c_string(orig_name));
                    json.open("Ext").open("original");
                    file_fields(&mut json, &original);
                    json.close().close();
                }
                json.close();
            }
            Kind::Net => {
                let body = NetBody::read(record.body)?;
                // A disconnect does not know who opened the connection: local is the source.
                let (kind, action, direction) = match body.op {
                    net_op::CONNECT => ("start", "connection_attempted", Some("egress")),
                    net_op::ACCEPT => ("start", "connection_accepted", Some("ingress")),
                    _ => ("end", "disconnect_received", None),
                };
                self.event(&mut json, "network", kind, action);
                self.touch(&header);
                self.process(&mut json, &header, |_| {});
                let local = address(body.family, &body.saddr);
                let remote = address(body.family, &body.daddr);
                let (source, destination) =
                    if direction == Some("ingress") { ((remote, body.dport), (local, body.sport)) } else { ((local, body.sport), (remote, body.dport)) };
                for (key, (ip, port)) in [("source", source), ("destination", destination)] {
                    json.open(key);
                    if let Some(ip) = ip {
                        json.str("ip", &ip.to_string()).str("address", &ip.to_string());
                    }
                    json.num("port", port).close();
                }
                json.open("network");
                if let Some(direction) = direction {
                    json.str("direction", direction);
                }
                json.str(
                    "transport",
                    match body.protocol {
                        6 => "tcp",
                        17 => "udp",
                        _ => "unknown",
                    },
                )
                .str("type", if body.family == 10 { "ipv6" } else { "ipv4" })
                .close();
            }
            Kind::Cred => {
                let body = CredBody::read(record.body)?;
                let action = if body.op == cred_op::UID {
                    self.table.set_user(header.pid, header.uid, header.euid);
                    "uid_change"
                } else {
                    self.table.set_group(header.pid, header.gid, header.egid);
                    "gid_change"
                };
                self.event(&mut json, "process", "change", action);
                self.process(&mut json, &header, |_| {});
            }
            Kind::Memfd => {
                let body = MemfdBody::read(record.body)?;
                let [name] = record.strings([body.name_len])?;
                self.event(&mut json, "process", "change", "memfd_create");
                self.touch(&header);
                let name = c_string(name);
                self.process(&mut json, &header, |json| {
                    json.open("Ext")
                        .open("memfd")
                        .str("name", &name)
                        .num("flags", body.flags)
                        .bool("flag_cloexec", body.flags & 1 != 0)
                        .bool("flag_allow_seal", body.flags & 2 != 0)
                        .bool("flag_hugetlb", body.flags & 4 != 0)
                        .close()
                        .close();
                });
            }
            Kind::Ptrace => {
                let body = PtraceBody::read(record.body)?;
                self.event(&mut json, "process", "change", "ptrace");
                self.touch(&header);
                self.process(&mut json, &header, |json| {
                    json.open("Ext").open("ptrace").num("child_pid", body.target_pid).num("request", body.request).close().close();
                });
            }
            Kind::Dns => {
                let body = DnsBody::read(record.body)?;
                let [message] = record.strings([body.data_len])?;
                let Some(response) = crate::dns::parse(message) else {
                    return Err(RecordError::NotDns);
                };
                self.event(&mut json, "dns", "protocol", "lookup_result");
                self.touch(&header);
                self.process(&mut json, &header, |_| {});
                json.open("dns")
                    .str("response_code", response_code(response.response_code))
                    .open("question")
                    .str("name", &response.name)
                    .str("type", &response.kind)
                    .close();
                let resolved: Vec<String> = response.resolved.iter().map(ToString::to_string).collect();
                json.strs("resolved_ip", resolved.iter().map(String::as_str)).close();
                let server = address(body.family, &body.daddr);
                json.open("destination");
                if let Some(ip) = server {
                    json.str("ip", &ip.to_string()).str("address", &ip.to_string());
                }
                json.num("port", body.dport).close();
                json.open("network").str("transport", "udp").str("protocol", "dns").close();
            }
            Kind::Module => {
                let body = ModuleBody::read(record.body)?;
                let [path] = record.strings([body.path_len])?;
                let path = components_to_path(path);
                let name = path.rsplit('/').next().unwrap_or_default().split('.').next().unwrap_or_default().to_string();
                self.event(&mut json, "process", "change", "load_module");
                self.touch(&header);
                self.process(&mut json, &header, |json| {
                    json.open("Ext").open("load_module").str("name", &name).str("path", &path).close().close();
                });
            }
        }
        self.host_fields(&mut json);
        Ok(Converted { timestamp, json: json.finish() })
    }

    fn host_fields(&self, json: &mut JsonWriter) {
        json.open("host").str("name", &self.host.name).str("hostname", &self.host.name).str("id", &self.host.id).str("architecture", &self.host.architecture);
        json.open("os").str("type", "linux").str("kernel", &self.host.kernel).close().close();
    }

    /// The exec event of an exec the kernel has paused (the exec hook): the process as
    /// the table would describe it after the exec, the table left unchanged.
    pub fn exec_attempt(&mut self, attempt: &ExecAttempt) -> Converted {
        let header = attempt.header();
        let timestamp = self.clock.wall(header.ktime);
        let mut json = JsonWriter::new();
        json.time("@timestamp", timestamp);
        let process = self.table.preview_exec(header.pid, attempt.info.clone());
        self.event(&mut json, "process", "start", "exec");
        self.process_as(&mut json, &header, Some(&process), |_| {});
        self.host_fields(&mut json);
        Converted { timestamp, json: json.finish() }
    }

    fn touch(&mut self, header: &Header) {
        self.table.touch(header.pid);
    }

    fn event(&mut self, json: &mut JsonWriter, category: &str, kind: &str, action: &str) {
        self.sequence += 1;
        let dataset = format!("endpoint.events.{category}");
        json.open("event")
            .str("kind", "event")
            .strs("category", [category])
            .strs("type", [kind])
            .str("action", action)
            .str("module", "endpoint")
            .str("dataset", &dataset)
            .num("sequence", self.sequence as i64)
            .close();
        json.open("data_stream").str("type", "logs").str("dataset", &dataset).str("namespace", "default").close();
        json.open("ecs").str("version", ECS_VERSION).close();
        json.open("agent").str("type", "kestrel").str("version", env!("CARGO_PKG_VERSION")).close();
    }

    /// `process.*` (with `extra` inside it), `user.*` and `group.*` for the acting process.
    fn process(&self, json: &mut JsonWriter, header: &Header, extra: impl FnOnce(&mut JsonWriter)) {
        let start_ticks = start_ticks_from_boottime_ns(header.start_ns);
        let known = self.table.get(header.pid).filter(|process| process.start_ticks == start_ticks || process.start_ticks == 0);
        self.process_as(json, header, known, extra);
    }

    /// [`Converter::process`] with the acting process's description given (`known`).
    fn process_as(&self, json: &mut JsonWriter, header: &Header, known: Option<&Process>, extra: impl FnOnce(&mut JsonWriter)) {
        let boot = &self.host.boot_id;
        let start_ticks = start_ticks_from_boottime_ns(header.start_ns);
        json.open("process");
        json.num("pid", header.pid);
        match known.filter(|process| process.start_ticks == start_ticks) {
            Some(process) => json.str("entity_id", &process.entity_id),
            None => json.str("entity_id", &entity_id(boot, header.pid, start_ticks)),
        };
        json.time("start", self.clock.wall(header.start_ns));
        let comm = crate::records::comm(header);
        image(json, known, &comm);
        json.bool("interactive", header.tty_major != 0);
        if header.tty_major != 0 {
            json.open("tty").open("char_device").num("major", header.tty_major).num("minor", header.tty_minor).close().close();
        }
        json.open("user").num_str("id", header.euid).close();
        json.open("group").num_str("id", header.egid).close();
        json.open("real_user").num_str("id", header.uid).close();
        json.open("real_group").num_str("id", header.gid).close();
        if let Some(previous) = known.and_then(|process| process.previous_executable.as_deref()) {
            json.open("previous").str("executable", previous).close();
        }
        json.open("session_leader").num("pid", header.sid);
        if let Some(leader) = self.table.session_leader(header.pid) {
            json.str("entity_id", &leader.entity_id).str("name", &leader.name).str("executable", &leader.executable);
        }
        json.close();
        if let Some(group) = known.and_then(|process| self.table.get(process.pgid)).filter(|leader| leader.pid != 0) {
            json.open("group_leader")
                .num("pid", group.pid)
                .str("entity_id", &group.entity_id)
                .str("name", &group.name)
                .str("executable", &group.executable)
                .close();
        }
        if let Some(entry) = self.table.entry_leader(header.pid) {
            json.open("entry_leader")
                .num("pid", entry.pid)
                .str("entity_id", &entry.entity_id)
                .str("name", &entry.name)
                .str("executable", &entry.executable)
                .close();
        }
        let mut ancestry = self.table.ancestors(header.pid, ANCESTRY_DEPTH).map(|process| &*process.entity_id).peekable();
        if ancestry.peek().is_some() {
            json.open("Ext").strs("ancestry", ancestry).close();
        }
        extra(json);
        // The parent: named by the header (always right), described by the table.
        let parent_ticks = start_ticks_from_boottime_ns(header.parent_start_ns);
        let parent = self.table.get(header.ppid).filter(|process| process.start_ticks == parent_ticks || process.start_ticks == 0);
        json.open("parent");
        json.num("pid", header.ppid);
        match parent.filter(|process| process.start_ticks == parent_ticks) {
            Some(process) => json.str("entity_id", &process.entity_id),
            None => json.str("entity_id", &entity_id(boot, header.ppid, parent_ticks)),
        };
        json.time("start", self.clock.wall(header.parent_start_ns));
        image(json, parent, "");
        if let Some(parent) = parent {
            json.bool("interactive", parent.interactive());
            json.open("user").num_str("id", parent.euid);
            if let Some(name) = self.names.users.get(&parent.euid) {
                json.str("name", name);
            }
            json.close().open("group").num_str("id", parent.egid);
            if let Some(name) = self.names.groups.get(&parent.egid) {
                json.str("name", name);
            }
            json.close();
        }
        json.close();
        json.close();
        json.open("user").num_str("id", header.euid);
        if let Some(name) = self.names.users.get(&header.euid) {
            json.str("name", name);
        }
        json.open("Ext").open("real").num_str("id", header.uid);
        if let Some(name) = self.names.users.get(&header.uid) {
            json.str("name", name);
        }
        json.close().close().close();
        json.open("group").num_str("id", header.egid);
        if let Some(name) = self.names.groups.get(&header.egid) {
            json.str("name", name);
        }
        json.open("Ext").open("real").num_str("id", header.gid).close().close().close();
    }
}

/// A process's image: name, executable, args, command line, working directory.
/// Without the table's knowledge only the kernel's `comm` is known (as the name).
fn image(json: &mut JsonWriter, process: Option<&Process>, comm: &str) {
    match process {
        Some(process) if !process.placeholder || !process.executable.is_empty() => {
            json.str("name", &process.name).str("executable", &process.executable);
            json.strs("args", process.args.iter().map(String::as_str));
            json.num("args_count", process.args.len() as i64);
            json.joined("command_line", process.args.iter().map(String::as_str), " ");
            if !process.working_directory.is_empty() {
                json.str("working_directory", &process.working_directory);
            }
        }
        _ if !comm.is_empty() => {
            json.str("name", comm);
        }
        _ => {}
    }
}

/// Environment variables an exec event reports (`process.env_vars`), as Elastic Defend
/// reports a configured few: those that change how programs load, log or connect.
/// Others (tokens, keys) are never reported.
pub const ENV_VARS: &[&str] = &[
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "LD_BIND_NOW",
    "LD_DEBUG",
    "DYLD_INSERT_LIBRARIES",
    "HISTFILE",
    "HISTFILESIZE",
    "HISTSIZE",
    "HISTCONTROL",
    "PROMPT_COMMAND",
    "BASH_ENV",
    "ENV",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSH_CLIENT",
    "SSH_CONNECTION",
    "SUDO_USER",
    "SUDO_UID",
    "SUDO_COMMAND",
    "RUNNER_TRACKING_ID",
    "PATH",
    "SHELL",
    "TERM",
    "container",
];

/// The reported environment variables of an exec's environment block.
fn env_vars(block: &[u8]) -> Vec<String> {
    block
        .split(|byte| *byte == 0)
        .filter(|entry| entry.iter().position(|byte| *byte == b'=').is_some_and(|at| ENV_VARS.iter().any(|name| name.as_bytes() == &entry[..at])))
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect()
}

fn response_code(code: u8) -> &'static str {
    match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "OTHER",
    }
}

fn tty(header: &Header) -> Option<(u32, u32)> {
    (header.tty_major != 0).then_some((header.tty_major, header.tty_minor))
}

/// `path`, `name`, `extension`, `directory` of a file path.
fn file_fields(json: &mut JsonWriter, path: &str) {
    let (directory, name) = match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(at) => (&path[..at], &path[at + 1..]),
        None => ("", path),
    };
    json.str("path", path).str("name", name).str("directory", directory);
    if let Some((stem, extension)) = name.rsplit_once('.')
        && !stem.is_empty()
    {
        json.str("extension", extension);
    }
}

fn address(family: u16, bytes: &[u8; 16]) -> Option<IpAddr> {
    match family {
        2 => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
        10 => {
            let v6 = Ipv6Addr::from(*bytes);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}
