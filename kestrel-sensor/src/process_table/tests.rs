//! Tests of the process table.

use super::*;
use proptest::prelude::*;
use std::collections::HashSet;

const BOOT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn exec_info(executable: &str, args: &[&str], uid: u32) -> ExecInfo {
    ExecInfo {
        executable: executable.to_owned(),
        args: args.iter().map(|arg| arg.to_string()).collect(),
        working_directory: "/home/alice".to_owned(),
        uid,
        euid: uid,
        gid: uid,
        egid: uid,
        ..ExecInfo::default()
    }
}

fn pids<'a>(processes: impl Iterator<Item = &'a Process>) -> Vec<u32> {
    processes.map(|process| process.pid).collect()
}

/// init(1) → sshd(500) → bash(600, a session leader on pts/3) → python3(700).
fn login_table() -> ProcessTable {
    let mut table = ProcessTable::new(BOOT, 100);
    table.exec(1, ExecInfo { start_ticks: Some(1), sid: Some(1), ..exec_info("/sbin/init", &["/sbin/init"], 0) });
    table.fork(1, 500, 10);
    table.set_session(500, 500);
    table.exec(500, exec_info("/usr/sbin/sshd", &["sshd", "-D"], 0));
    table.fork(500, 600, 20);
    table.set_session(600, 600);
    table.exec(600, ExecInfo { tty: Some((136, 3)), ..exec_info("/usr/bin/bash", &["-bash"], 1000) });
    table.fork(600, 700, 30);
    table.exec(700, ExecInfo { tty: Some((136, 3)), ..exec_info("/usr/bin/python3", &["python3", "-c", "print(1)"], 1000) });
    table
}

impl ProcessTable {
    /// The table's own invariants: bounded, consistent indexes, acyclic ancestry.
    pub(crate) fn check_invariants(&self) {
        let table = self;
        assert!(table.len() <= table.max_processes(), "{} > {}", table.len(), table.max_processes());
        assert_eq!(table.eviction.len(), table.entries.len());
        for (order, key) in &table.eviction {
            assert_eq!(table.entries[key].order, *order);
        }
        for (pid, start) in &table.current {
            assert!(table.entries.contains_key(&(*pid, *start)), "current {pid} has no entry");
        }
        for (key, entry) in &table.entries {
            assert_eq!(entry.process.exited, entry.exited_at.is_some());
            assert_eq!(entry.order.live, !entry.process.exited);
            assert_eq!(*key, (entry.process.pid, entry.process.start_ticks));
            let mut seen = HashSet::from([*key]);
            let mut at = entry.parent;
            while let Some(parent) = at.filter(|parent| table.entries.contains_key(parent)) {
                assert!(seen.insert(parent), "the ancestry of {key:?} loops at {parent:?}");
                assert!(parent.1 <= key.1 || parent.1 <= entry.process.start_ticks);
                at = table.entries[&parent].parent;
            }
        }
        for pid in table.current.keys() {
            let ids: Vec<_> = table.ancestors(*pid, usize::MAX).map(|process| process.entity_id.clone()).collect();
            assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "ancestors of {pid} repeat");
        }
        assert!(table.exits.len() <= 2 * table.max_processes() + 64);
    }
}

#[test]
fn entity_ids_are_deterministic_and_name_every_input() {
    let id = entity_id(BOOT, 4250, 90010);
    assert_eq!(id, entity_id(&format!(" {BOOT}\n"), 4250, 90010));
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)));
    // Pinned: the scheme is part of the output format.
    assert_eq!(id, "e02a52c2d5f8164c2e3d638de5ca4275");
    let others = [entity_id("another-boot", 4250, 90010), entity_id(BOOT, 4251, 90010), entity_id(BOOT, 4250, 90011), entity_id(BOOT, 90010, 4250)];
    assert!(others.iter().all(|other| *other != id));
}

#[test]
fn start_ticks_convert_like_the_kernel() {
    assert_eq!(start_ticks_from_boottime_ns(0), 0);
    assert_eq!(start_ticks_from_boottime_ns(9_999_999), 0);
    assert_eq!(start_ticks_from_boottime_ns(900_100_000_000), 90010);
}

#[test]
fn fork_copies_the_parent_and_exec_replaces_the_image() {
    let mut table = login_table();
    let child = table.fork(700, 701, 40).clone();
    let parent = table.get(700).unwrap();
    assert_eq!((child.ppid, child.sid, child.tty, child.uid), (700, 600, Some((136, 3)), 1000));
    assert_eq!((&child.executable, &child.args, &child.working_directory), (&parent.executable, &parent.args, &parent.working_directory));
    assert_eq!(child.parent_entity_id.as_ref(), Some(&parent.entity_id));
    assert_eq!(&*child.entity_id, entity_id(BOOT, 701, 40));
    assert_eq!((child.exec_count, &child.previous_executable), (0, &None));
    let after = table.exec(701, exec_info("/usr/bin/curl", &["curl", "-s", "http://example.com"], 1000)).clone();
    assert_eq!(after.entity_id, child.entity_id);
    assert_eq!((&*after.name, after.exec_count), ("curl", 1));
    assert_eq!(after.previous_executable.as_deref(), Some("/usr/bin/python3"));
    assert_eq!(after.tty, None);
    assert_eq!(after.command_line(), "curl -s http://example.com");
    assert_eq!(pids(table.ancestors(701, 16)), [700, 600, 500, 1]);
    assert_eq!(table.session_leader(701).map(|process| process.pid), Some(600));
    assert_eq!(table.entry_leader(701).map(|process| process.pid), Some(600));
    assert_eq!(table.entry_leader(500).map(|process| process.pid), Some(500));
    assert_eq!(table.set_user(701, 1000, 0).map(|process| (process.uid, process.euid)), Some((1000, 0)));
    assert_eq!(table.set_group(701, 5, 6).map(|process| (process.gid, process.egid)), Some((5, 6)));
    assert!(table.set_user(9999, 0, 0).is_none());
    assert_eq!(table.stats().unknown_processes, 2);
    table.check_invariants();
}

#[test]
fn an_unknown_parent_gets_a_placeholder() {
    let mut table = ProcessTable::new(BOOT, 10);
    let child = table.fork(42, 43, 7).clone();
    assert_eq!(table.stats().unknown_parents, 1);
    let parent = table.get(42).unwrap();
    assert!(parent.placeholder && child.placeholder);
    assert_eq!((parent.start_ticks, &*parent.entity_id), (0, &*entity_id(BOOT, 42, 0)));
    assert_eq!(child.parent_entity_id.as_ref(), Some(&parent.entity_id));
    // An exec with a start time fills the placeholder in, keeping its entity id.
    let filled = table.exec(42, ExecInfo { start_ticks: Some(3), ..exec_info("/bin/sh", &["sh"], 0) }).clone();
    assert!(!filled.placeholder);
    assert_eq!(filled.entity_id, parent_id(&table, 43));
    assert_eq!(table.stats().pid_reused, 0);
    table.check_invariants();
}

fn parent_id(table: &ProcessTable, pid: u32) -> Arc<str> {
    table.parent(pid).unwrap().entity_id.clone()
}

#[test]
fn exited_processes_stay_for_their_grace_and_while_their_children_live() {
    let mut table = ProcessTable::new(BOOT, 100).with_exit_grace(2);
    table.fork(1, 10, 5);
    table.fork(10, 11, 6);
    table.fork(1, 20, 7);
    let exited = table.exit(20).unwrap();
    assert!(exited.exited && table.get(20).unwrap().exited);
    table.exit(10);
    table.touch(1);
    assert!(table.get(20).is_some(), "in its grace");
    table.touch(1);
    assert!(table.get(20).is_none(), "reaped");
    // 10 exited and its grace is over, but its child still lives: it stays its parent.
    table.touch(1);
    assert_eq!(table.parent(11).map(|process| process.pid), Some(10));
    assert_eq!(pids(table.ancestors(11, 8)), [10, 1]);
    table.exit(11);
    for _ in 0..3 {
        table.touch(1);
    }
    assert!(table.get(11).is_none() && table.get(10).is_none());
    assert_eq!(table.stats().reaped, 3);
    assert_eq!(pids(table.processes()), [1]);
    assert_eq!(table.exit(11), None);
    table.check_invariants();
}

#[test]
fn pid_reuse_replaces_the_instance_and_children_keep_their_parent() {
    let mut table = login_table();
    let old = table.get(700).unwrap().entity_id.clone();
    table.fork(700, 710, 50);
    // 700 dies unseen and its pid comes back under another start time.
    let new = table.fork(1, 700, 60).clone();
    assert_ne!(new.entity_id, old);
    assert_eq!((new.ppid, new.exec_count, &*new.name), (1, 0, "init"));
    assert_eq!(table.stats().pid_reused, 1);
    assert_eq!(parent_id(&table, 710), old);
    assert!(table.parent(710).unwrap().exited);
    // The same for an exec naming its start time.
    table.exec(710, ExecInfo { start_ticks: Some(70), ppid: Some(700), ..exec_info("/bin/true", &["true"], 0) });
    assert_eq!(table.stats().pid_reused, 2);
    assert_eq!(&*table.get(710).unwrap().entity_id, entity_id(BOOT, 710, 70));
    assert_eq!(parent_id(&table, 710), new.entity_id);
    // A fork naming an instance already known changes nothing.
    assert_eq!(table.fork(1, 700, 60).entity_id, new.entity_id);
    table.check_invariants();
}

#[test]
fn a_full_table_evicts_exited_processes_first_then_the_least_recently_seen() {
    let mut table = ProcessTable::new(BOOT, 4);
    table.fork(1, 2, 1);
    table.fork(1, 3, 2);
    table.fork(1, 4, 3);
    table.exit(3);
    table.exit(2);
    table.fork(1, 5, 4);
    assert_eq!(table.get(3), None, "the first exited goes first");
    table.fork(1, 6, 5);
    assert_eq!(table.get(2), None);
    table.touch(4);
    table.fork(1, 7, 6);
    assert_eq!(table.get(5), None, "then the live one seen least recently");
    assert_eq!(table.len(), 4);
    assert_eq!(table.stats().evicted, 3);
    let mut tiny = ProcessTable::new(BOOT, 0);
    tiny.fork(1, 2, 1);
    assert_eq!(pids(tiny.processes()), [2]);
    table.check_invariants();
    tiny.check_invariants();
}

#[test]
fn parent_links_never_close_a_cycle() {
    let mut table = ProcessTable::new(BOOT, 3);
    table.fork(1, 2, 5);
    table.fork(2, 3, 5);
    table.touch(1);
    table.touch(3);
    // Evicts 2, leaving 3's link to it dangling; then 2 comes back as 3's child.
    table.exec(4, ExecInfo { start_ticks: Some(5), ..ExecInfo::default() });
    assert!(table.get(2).is_none());
    table.fork(3, 2, 5);
    assert_eq!(table.stats().parent_links_refused, 1);
    assert_eq!(table.parent(2), None);
    table.check_invariants();
    // A parent that started after its child is not linked either.
    table.fork(3, 8, 4);
    assert_eq!(table.stats().parent_links_refused, 2);
    table.check_invariants();
}

#[derive(Clone, Debug)]
enum Op {
    Fork(u32, u32, u64),
    Exec(u32, Option<u64>, Option<u32>),
    Exit(u32),
    Session(u32, u32),
    Touch(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let pid = || 0u32..12;
    prop_oneof![
        4 => (pid(), pid(), 0u64..5).prop_map(|(parent, child, start)| Op::Fork(parent, child, start)),
        2 => (pid(), proptest::option::of(0u64..5), proptest::option::of(pid())).prop_map(|(pid, start, ppid)| Op::Exec(pid, start, ppid)),
        2 => pid().prop_map(Op::Exit),
        1 => (pid(), pid()).prop_map(|(pid, sid)| Op::Session(pid, sid)),
        1 => pid().prop_map(Op::Touch),
    ]
}

proptest! {
    #[test]
    fn random_event_sequences_keep_the_table_bounded_and_acyclic(cap in 1usize..10, grace in 0u64..6, ops in proptest::collection::vec(op(), 0..200)) {
        let mut table = ProcessTable::new(BOOT, cap).with_exit_grace(grace);
        for op in ops {
            match op {
                Op::Fork(parent, child, start) => { table.fork(parent, child, start); }
                Op::Exec(pid, start_ticks, ppid) => { table.exec(pid, ExecInfo { start_ticks, ppid, ..exec_info("/bin/x", &["x"], 0) }); }
                Op::Exit(pid) => { table.exit(pid); }
                Op::Session(pid, sid) => { table.set_session(pid, sid); }
                Op::Touch(pid) => { table.touch(pid); }
            }
            table.check_invariants();
            for pid in 0..12 {
                let _ = (table.session_leader(pid), table.entry_leader(pid), table.parent(pid));
            }
        }
    }
}
