//! The fields the sensor fills, by event: the one list docs/sensor-fields.md is
//! generated from, and which the `linux` schema's `produced` marks must equal (tests
//! below), so `eqlc check` warns (W0007) exactly on fields Kestrel never fills.

/// Where a field's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Read by a probe in the kernel.
    Kernel,
    /// From the process table (filled at exec, fork, and the /proc seed).
    Table,
    /// Derived by the sensor from the kind of record.
    Sensor,
    /// Constant for the host, read at start.
    Host,
    /// Looked up in /etc/passwd or /etc/group.
    Lookup,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Kernel => "kernel (probe)",
            Source::Table => "process table",
            Source::Sensor => "sensor",
            Source::Host => "host, at start",
            Source::Lookup => "/etc/passwd, /etc/group",
        }
    }
}

/// Event groups, for the table's "events" column.
const ALL: &str = "all";
const PROCESS: &str = "all (the acting process)";
const EXEC_FORK: &str = "all (from exec or fork of the process)";
const FILE: &str = "file: creation, deletion, rename, modification";
const NETWORK: &str = "network: connection_attempted, connection_accepted, disconnect_received (destination: also lookup_result)";

/// A field the sensor fills.
#[derive(Clone, Copy, Debug)]
pub struct Filled {
    pub field: &'static str,
    pub events: &'static str,
    pub source: Source,
    pub note: &'static str,
}

const fn f(field: &'static str, events: &'static str, source: Source, note: &'static str) -> Filled {
    Filled { field, events, source, note }
}

/// Every field the sensor fills.
pub const FILLED: &[Filled] = &[
    f("@timestamp", ALL, Source::Kernel, "the probe's CLOCK_BOOTTIME stamp, moved to wall-clock time once at start"),
    f("event.kind", ALL, Source::Sensor, "`event`"),
    f("event.category", ALL, Source::Sensor, "`process`, `file`, `network`, `dns`"),
    f("event.type", ALL, Source::Sensor, "`start`, `end`, `change`, `creation`, `deletion`, `protocol`"),
    f("event.action", ALL, Source::Sensor, "Elastic Defend's vocabulary: see the events table"),
    f("event.module", ALL, Source::Sensor, "`endpoint`, as Elastic Defend"),
    f("event.dataset", ALL, Source::Sensor, "`endpoint.events.<category>`"),
    f("event.sequence", ALL, Source::Sensor, "events converted since the sensor started"),
    f("data_stream.type", ALL, Source::Sensor, "`logs`"),
    f("data_stream.dataset", ALL, Source::Sensor, "as event.dataset"),
    f("data_stream.namespace", ALL, Source::Sensor, "`default`"),
    f("ecs.version", ALL, Source::Sensor, "9.4.0"),
    f("agent.type", ALL, Source::Sensor, "`kestrel`"),
    f("agent.version", ALL, Source::Sensor, ""),
    f("host.name", ALL, Source::Host, ""),
    f("host.hostname", ALL, Source::Host, ""),
    f("host.id", ALL, Source::Host, "/etc/machine-id"),
    f("host.architecture", ALL, Source::Host, ""),
    f("host.os.type", ALL, Source::Host, "`linux`"),
    f("host.os.kernel", ALL, Source::Host, ""),
    f("process.pid", PROCESS, Source::Kernel, "the thread group id"),
    f("process.entity_id", PROCESS, Source::Kernel, "hash of boot id, pid and start time: stable across exec, unique per process"),
    f("process.start", PROCESS, Source::Kernel, "the task's start_boottime in wall-clock time"),
    f("process.Ext.ancestry", PROCESS, Source::Table, "entity_ids of the known ancestors, nearest first (at most 20)"),
    f("process.name", EXEC_FORK, Source::Table, "basename of the executable (the 15-byte comm until an exec is seen)"),
    f("process.executable", EXEC_FORK, Source::Table, "the exec'd file's path, from its dentry"),
    f("process.args", EXEC_FORK, Source::Table, "argv at exec, up to 4095 bytes"),
    f("process.args_count", EXEC_FORK, Source::Table, ""),
    f("process.command_line", EXEC_FORK, Source::Table, "args joined by spaces"),
    f("process.working_directory", EXEC_FORK, Source::Table, "cwd at exec"),
    f(
        "process.env_vars",
        "exec",
        Source::Kernel,
        "the variables of `ecs::ENV_VARS` (loader, history, proxy, ssh, sudo) from the first 4095 bytes of the environment; never others",
    ),
    f("process.interactive", PROCESS, Source::Kernel, "has a controlling terminal"),
    f("process.tty.char_device.major", PROCESS, Source::Kernel, "when interactive"),
    f("process.tty.char_device.minor", PROCESS, Source::Kernel, "when interactive"),
    f("process.user.id", PROCESS, Source::Kernel, "effective uid"),
    f("process.group.id", PROCESS, Source::Kernel, "effective gid"),
    f("process.real_user.id", PROCESS, Source::Kernel, ""),
    f("process.real_group.id", PROCESS, Source::Kernel, ""),
    f("process.previous.executable", EXEC_FORK, Source::Table, "the image before the last exec"),
    f("process.exit_code", "end", Source::Kernel, "exit status, or 128 + the signal"),
    f("process.session_leader.pid", PROCESS, Source::Kernel, ""),
    f("process.session_leader.entity_id", PROCESS, Source::Table, "when the leader is known"),
    f("process.session_leader.name", PROCESS, Source::Table, "when the leader is known"),
    f("process.session_leader.executable", PROCESS, Source::Table, "when the leader is known"),
    f("process.group_leader.pid", PROCESS, Source::Table, "when the leader is known"),
    f("process.group_leader.entity_id", PROCESS, Source::Table, "when the leader is known"),
    f("process.group_leader.name", PROCESS, Source::Table, "when the leader is known"),
    f("process.group_leader.executable", PROCESS, Source::Table, "when the leader is known"),
    f("process.entry_leader.pid", PROCESS, Source::Table, "nearest session leader started by init or a login program (sshd, login, containerd-shim, ...)"),
    f("process.entry_leader.entity_id", PROCESS, Source::Table, "as above"),
    f("process.entry_leader.name", PROCESS, Source::Table, "as above"),
    f("process.entry_leader.executable", PROCESS, Source::Table, "as above"),
    f("process.parent.pid", PROCESS, Source::Kernel, "the real parent's thread group id"),
    f("process.parent.entity_id", PROCESS, Source::Kernel, ""),
    f("process.parent.start", PROCESS, Source::Kernel, ""),
    f("process.parent.name", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.executable", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.args", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.args_count", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.command_line", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.working_directory", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.interactive", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.user.id", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.user.name", PROCESS, Source::Lookup, "when the parent is known"),
    f("process.parent.group.id", PROCESS, Source::Table, "when the parent is known"),
    f("process.parent.group.name", PROCESS, Source::Lookup, "when the parent is known"),
    f("process.Ext.memfd.name", "memfd_create", Source::Kernel, ""),
    f("process.Ext.memfd.flags", "memfd_create", Source::Kernel, ""),
    f("process.Ext.memfd.flag_cloexec", "memfd_create", Source::Kernel, ""),
    f("process.Ext.memfd.flag_allow_seal", "memfd_create", Source::Kernel, ""),
    f("process.Ext.memfd.flag_hugetlb", "memfd_create", Source::Kernel, ""),
    f("process.Ext.ptrace.child_pid", "ptrace", Source::Kernel, "attach, seize, poke (text, data, user) and set-registers requests"),
    f("process.Ext.ptrace.request", "ptrace", Source::Kernel, ""),
    f("process.Ext.load_module.name", "load_module", Source::Kernel, "kernels with modules only"),
    f("process.Ext.load_module.path", "load_module", Source::Kernel, "finit_module's file"),
    f("user.id", PROCESS, Source::Kernel, "effective uid"),
    f("user.name", PROCESS, Source::Lookup, ""),
    f("user.Ext.real.id", PROCESS, Source::Kernel, ""),
    f("user.Ext.real.name", PROCESS, Source::Lookup, ""),
    f("group.id", PROCESS, Source::Kernel, "effective gid"),
    f("group.name", PROCESS, Source::Lookup, ""),
    f("group.Ext.real.id", PROCESS, Source::Kernel, ""),
    f("file.path", FILE, Source::Kernel, "absolute: the dentry's path, or the name resolved against the cwd or directory fd"),
    f("file.name", FILE, Source::Sensor, ""),
    f("file.directory", FILE, Source::Sensor, ""),
    f("file.extension", FILE, Source::Sensor, ""),
    f("file.Ext.original.path", "rename", Source::Kernel, ""),
    f("file.Ext.original.name", "rename", Source::Sensor, ""),
    f("file.Ext.original.directory", "rename", Source::Sensor, ""),
    f("file.Ext.original.extension", "rename", Source::Sensor, ""),
    f("source.ip", NETWORK, Source::Kernel, "local for connections made, remote for accepted ones"),
    f("source.address", NETWORK, Source::Kernel, ""),
    f("source.port", NETWORK, Source::Kernel, ""),
    f("destination.ip", NETWORK, Source::Kernel, ""),
    f("destination.address", NETWORK, Source::Kernel, ""),
    f("destination.port", NETWORK, Source::Kernel, ""),
    f("dns.question.name", "lookup_result", Source::Kernel, "from the response a process received on a UDP socket from port 53"),
    f("dns.question.type", "lookup_result", Source::Kernel, "`A`, `AAAA`, ..."),
    f("dns.resolved_ip", "lookup_result", Source::Kernel, "A and AAAA answers"),
    f("dns.response_code", "lookup_result", Source::Kernel, "`NOERROR`, `NXDOMAIN`, ..."),
    f("network.protocol", "lookup_result", Source::Sensor, "`dns`"),
    f("network.direction", "connection_attempted, connection_accepted", Source::Sensor, "`egress`, `ingress`"),
    f("network.transport", NETWORK, Source::Kernel, "`tcp`, `udp` (lookup_result: `udp`)"),
    f("network.type", NETWORK, Source::Kernel, "`ipv4`, `ipv6`"),
];

/// The events the sensor emits: (event.category, event.type, event.action, hook).
pub const EVENTS: &[(&str, &str, &str, &str)] = &[
    ("process", "start", "exec", "tracepoint sched/sched_process_exec"),
    ("process", "start", "fork", "tp_btf sched_process_fork (new processes, not threads)"),
    ("process", "end", "end", "tracepoint sched/sched_process_exit (last thread)"),
    ("process", "change", "uid_change", "syscalls set*uid, when the uid or euid changed"),
    ("process", "change", "gid_change", "syscalls set*gid, when the gid or egid changed"),
    ("process", "change", "memfd_create", "syscalls memfd_create"),
    ("process", "change", "ptrace", "syscalls ptrace (attach, seize, poketext, pokedata, pokeuser, setregs, setfpregs, setregset)"),
    ("process", "change", "load_module", "syscalls init_module, finit_module (kernels with modules)"),
    ("file", "creation", "creation", "syscalls open, openat, openat2, creat (the file was created)"),
    ("file", "change", "modification", "the same, an existing regular file opened for writing"),
    ("file", "deletion", "deletion", "syscalls unlink, unlinkat"),
    ("file", "change", "rename", "syscalls rename, renameat, renameat2"),
    ("network", "start", "connection_attempted", "syscalls connect (IPv4/IPv6; succeeded or in progress)"),
    ("network", "start", "connection_accepted", "syscalls accept, accept4"),
    ("network", "end", "disconnect_received", "tracepoint sock/inet_sock_set_state (peer closed a tracked TCP connection)"),
    ("dns", "protocol", "lookup_result", "syscalls recvfrom, recvmsg: a DNS response on a UDP socket from port 53 (first 512 bytes)"),
];

/// docs/sensor-fields.md.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("# What the Linux sensor fills\n\n");
    out.push_str("Generated from `kestrel-sensor/src/fields.rs` (test `fields::tests::the_docs_table_is_current`; regenerate with `KESTREL_WRITE_DOCS=1 cargo test -p kestrel-sensor fields`).\n");
    out.push_str(
        "The `linux` schema marks exactly these fields as produced, so `eqlc check` warns (W0007) when a rule needs a field the sensor never fills.\n\n",
    );
    out.push_str("## Events\n\n| event.category | event.type | event.action | hook |\n|---|---|---|---|\n");
    for (category, kind, action, hook) in EVENTS {
        out.push_str(&format!("| {category} | {kind} | `{action}` | {hook} |\n"));
    }
    out.push_str(&format!("\n## Fields ({})\n\n| field | events | from | note |\n|---|---|---|---|\n", FILLED.len()));
    for filled in FILLED {
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", filled.field, filled.events, filled.source.describe(), filled.note));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_docs_table_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sensor-fields.md");
        if std::env::var_os("KESTREL_WRITE_DOCS").is_some() {
            std::fs::write(&path, markdown()).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == markdown(), "docs/sensor-fields.md is stale: run `KESTREL_WRITE_DOCS=1 cargo test -p kestrel-sensor fields`");
    }

    /// The `linux` schema says a field is produced exactly when the sensor fills it.
    #[test]
    fn the_linux_schema_marks_what_the_sensor_fills() {
        let schema = kestrel_bundle::schema::Schema::builtin("linux").unwrap();
        let produced: BTreeSet<&str> = schema.fields().filter(|(_, field)| field.produced).map(|(_, field)| field.name.as_str()).collect();
        let filled: BTreeSet<&str> = FILLED.iter().map(|filled| filled.field).collect();
        assert_eq!(filled.len(), FILLED.len(), "a field is listed twice");
        let missing: Vec<_> = filled.difference(&produced).collect();
        let extra: Vec<_> = produced.difference(&filled).collect();
        assert!(missing.is_empty() && extra.is_empty(), "filled but not marked produced: {missing:?}\nmarked produced but never filled: {extra:?}");
    }
}
