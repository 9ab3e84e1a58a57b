//! Killing a process named by an event, never another one that reused its pid.
//!
//! A pidfd is opened on the pid first, then the process's start time is read and the
//! entity id it gives is compared with the event's: a pidfd keeps naming the process it
//! was opened on, so when the ids agree the signal goes to the event's process, and when
//! they differ (the pid was reused) nothing is sent.

use crate::proc_fs::parse_stat;
use crate::process_table::entity_id;
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use std::path::Path;

/// What became of a kill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Killed {
    /// SIGKILL sent to the event's process.
    Sent,
    /// The process had already exited.
    Gone,
    /// The pid now names another process (its entity id differs): nothing sent.
    Reused,
    /// The kernel refused (the error).
    Failed(String),
}

/// Sends SIGKILL to process `pid` if it is still the process `expected_entity` names
/// (see [`entity_id`]), using `boot_id` and `proc_root` (normally /proc).
pub fn kill_verified(proc_root: &Path, boot_id: &str, pid: u32, expected_entity: &str) -> Killed {
    let Some(raw) = Pid::from_raw(pid as i32) else { return Killed::Gone };
    let pidfd = match pidfd_open(raw, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Killed::Gone,
        Err(error) => return Killed::Failed(format!("pidfd_open({pid}): {error}")),
    };
    let Some(stat) = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok().and_then(|text| parse_stat(&text)) else {
        return Killed::Gone;
    };
    if entity_id(boot_id, pid, stat.start_ticks) != expected_entity {
        return Killed::Reused;
    }
    match pidfd_send_signal(&pidfd, Signal::KILL) {
        Ok(()) => Killed::Sent,
        Err(rustix::io::Errno::SRCH) => Killed::Gone,
        Err(error) => Killed::Failed(format!("pidfd_send_signal({pid}): {error}")),
    }
}

/// The live descendants of `pid` (children first), with their entity ids, from /proc.
pub fn descendants(proc_root: &Path, boot_id: &str, pid: u32) -> Vec<(u32, String)> {
    let mut children: std::collections::HashMap<u32, Vec<(u32, u64)>> = std::collections::HashMap::new();
    for each in crate::proc_fs::pids(proc_root).unwrap_or_default() {
        if let Some(stat) = std::fs::read_to_string(proc_root.join(each.to_string()).join("stat")).ok().and_then(|text| parse_stat(&text)) {
            children.entry(stat.ppid).or_default().push((each, stat.start_ticks));
        }
    }
    let mut found = Vec::new();
    let mut queue = std::collections::VecDeque::from([pid]);
    while let Some(next) = queue.pop_front() {
        for (child, ticks) in children.get(&next).map(Vec::as_slice).unwrap_or_default() {
            if found.len() < 65_536 && *child != pid {
                found.push((*child, entity_id(boot_id, *child, *ticks)));
                queue.push_back(*child);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot_id() -> String {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_string()
    }

    fn start_ticks(pid: u32) -> u64 {
        parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap()).unwrap().start_ticks
    }

    #[test]
    fn a_process_whose_entity_id_differs_is_never_signalled() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let boot = boot_id();
        // The same pid, another start time: what a reused pid looks like.
        let other = entity_id(&boot, pid, start_ticks(pid) + 1);
        assert_eq!(kill_verified(Path::new("/proc"), &boot, pid, &other), Killed::Reused);
        assert!(child.try_wait().unwrap().is_none(), "the process must still run");
        let right = entity_id(&boot, pid, start_ticks(pid));
        assert_eq!(kill_verified(Path::new("/proc"), &boot, pid, &right), Killed::Sent);
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    }

    #[test]
    fn an_exited_process_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(kill_verified(Path::new("/proc"), &boot_id(), pid, "whatever"), Killed::Gone);
    }

    #[test]
    fn descendants_are_found_children_first() {
        let mut shell = std::process::Command::new("sh").args(["-c", "sleep 30 & sleep 30 & wait"]).spawn().unwrap();
        let pid = shell.id();
        let mut found = Vec::new();
        for _ in 0..100 {
            found = descendants(Path::new("/proc"), &boot_id(), pid);
            if found.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(found.len(), 2, "{found:?}");
        for (child, entity) in &found {
            assert_eq!(kill_verified(Path::new("/proc"), &boot_id(), *child, entity), Killed::Sent);
        }
        shell.kill().unwrap();
        shell.wait().unwrap();
    }
}
