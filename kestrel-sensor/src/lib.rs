//! Kestrel's Linux sensor.
pub mod proc_fs;
pub mod process_table;
