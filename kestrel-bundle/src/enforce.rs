//! Rule actions and what the enforcement hooks can see (docs/enforcement.md).
//!
//! A rule alerts by default. `kill` and `block` are carried by the bundle's optional
//! `ACTIONS` section; eqlc accepts `block` only on a step the exec hook can decide, that
//! is a step whose condition reads nothing but [`EXEC_HOOK_FIELDS`]; the runtime's hook
//! event fills exactly those fields (a test compares it with the probe's exec event).

use std::fmt;

/// The most processes one `kill` action may name.
pub const MAX_KILL_TARGETS: usize = 16;

/// What a rule does when it matches, besides alerting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deny the operation of the deciding step inline (an exec fails with EPERM).
    Block,
    /// Kill processes of the match: one target per entry, in order.
    Kill(Vec<KillTarget>),
}

impl fmt::Display for Action {
    /// `block`, or `kill process of step 0, parent of step 1 (tree)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Block => f.write_str("block"),
            Action::Kill(targets) => {
                f.write_str("kill")?;
                for (index, target) in targets.iter().enumerate() {
                    let separator = if index == 0 { " " } else { ", " };
                    write!(f, "{separator}{} of step {}{}", target.whom.name(), target.step, if target.tree { " (tree)" } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

/// A process a `kill` action kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KillTarget {
    /// The process of the step's event, or its parent.
    pub whom: Whom,
    /// The step whose event names the process (0 for an event query; the positive
    /// steps of a sequence, counted from 0, as Elastic's `state`).
    pub step: u32,
    /// Also kill the process's descendants.
    pub tree: bool,
}

/// Which process of an event a kill target names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whom {
    /// `process.entity_id`.
    Process,
    /// `process.parent.entity_id`.
    Parent,
}

impl Whom {
    /// `process` or `parent`, as rule files write it (`kill = ["process", "parent"]`).
    pub fn name(self) -> &'static str {
        match self {
            Whom::Process => "process",
            Whom::Parent => "parent",
        }
    }

    /// The entity id field naming the process.
    pub fn entity_field(self) -> &'static str {
        match self {
            Whom::Process => "process.entity_id",
            Whom::Parent => "process.parent.entity_id",
        }
    }

    /// The pid field naming the process.
    pub fn pid_field(self) -> &'static str {
        match self {
            Whom::Process => "process.pid",
            Whom::Parent => "process.parent.pid",
        }
    }
}

/// The action of one rule (rules without one only alert).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleAction {
    /// The rule's index in the bundle.
    pub rule: u32,
    /// What it does.
    pub action: Action,
    /// Its deciding step can be decided at the exec hook (the conditions `block`
    /// needs: one exec decides it, and it reads only [`EXEC_HOOK_FIELDS`]). Always true
    /// for `block`; for `kill`, the runtime asks the hook's question only when it is.
    pub at_exec: bool,
}

/// The fields of the event the exec hook builds while an `execve` is paused (before the
/// kernel has loaded the new image): everything known about the calling process, its
/// parent and the file it executes. A `block` step may read only these. The ids,
/// credentials and start times come from the probes' header of the `execve` entry, as
/// the exec event's come from the header of the exec.
pub const EXEC_HOOK_FIELDS: &[&str] = &[
    "@timestamp",
    "event.kind",
    "event.category",
    "event.type",
    "event.action",
    "event.module",
    "event.dataset",
    "data_stream.type",
    "data_stream.dataset",
    "data_stream.namespace",
    "ecs.version",
    "agent.type",
    "agent.version",
    "host.name",
    "host.hostname",
    "host.id",
    "host.architecture",
    "host.os.type",
    "host.os.kernel",
    "process.pid",
    "process.entity_id",
    "process.start",
    "process.name",
    "process.executable",
    "process.args",
    "process.args_count",
    "process.command_line",
    "process.working_directory",
    "process.interactive",
    "process.user.id",
    "process.group.id",
    "process.real_user.id",
    "process.real_group.id",
    "process.previous.executable",
    "process.parent.pid",
    "process.parent.entity_id",
    "process.parent.start",
    "process.parent.name",
    "process.parent.executable",
    "process.parent.args",
    "process.parent.args_count",
    "process.parent.command_line",
    "process.parent.working_directory",
    "process.parent.user.id",
    "process.parent.group.id",
    "user.id",
    "user.name",
    "user.Ext.real.id",
    "user.Ext.real.name",
    "group.id",
    "group.name",
    "group.Ext.real.id",
];

/// Whether the exec hook fills `field`.
pub fn exec_hook_fills(field: &str) -> bool {
    EXEC_HOOK_FIELDS.contains(&field)
}
