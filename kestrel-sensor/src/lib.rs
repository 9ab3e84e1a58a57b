//! Kestrel's Linux sensor: eBPF probes (bpf/, built by build.rs with clang) load with
//! aya and write [`records`] into a ring buffer; [`ecs`] turns them into ECS events in
//! Elastic Defend's vocabulary, with the [`process_table`] (seeded from /proc by
//! [`proc_fs`]) supplying process, parent and leader fields; [`sensor`] runs it all;
//! [`fields`] lists what it fills (docs/sensor-fields.md).
#![forbid(unsafe_code)]

pub mod dns;
pub mod ecs;
pub mod fields;
pub mod json;
pub mod probes;
pub mod proc_fs;
pub mod process_table;
pub mod records;
pub mod sensor;
