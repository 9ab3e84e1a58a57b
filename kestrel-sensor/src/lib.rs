//! Kestrel's Linux sensor: eBPF probes (bpf/, built by build.rs with clang) load with
//! aya and write [`records`] into a ring buffer; [`ecs`] turns them into ECS events in
//! Elastic Defend's vocabulary, with the [`process_table`] (seeded from /proc by
//! [`proc_fs`]) supplying process, parent and leader fields; [`sensor`] runs it all;
//! [`fields`] lists what it fills (docs/sensor-fields.md); [`exec_hook`] pauses execs for
//! enforcement (fanotify permission events).
#![forbid(unsafe_code)]

pub mod dns;
pub mod ecs;
pub mod exec_hook;
pub mod fields;
pub mod json;
pub mod kill;
pub mod probes;
pub mod proc_fs;
pub mod process_table;
pub mod records;
pub mod sensor;
