//! Kestrel's Linux sensor.
pub mod records;
pub mod probes;
pub mod proc_fs;
pub mod process_table;
pub mod ecs;
pub mod json;
pub mod sensor;
pub mod fields;
