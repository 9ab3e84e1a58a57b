//! Kestrel's Linux sensor.
pub mod ecs;
pub mod fields;
pub mod json;
pub mod probes;
pub mod proc_fs;
pub mod process_table;
pub mod records;
pub mod sensor;
