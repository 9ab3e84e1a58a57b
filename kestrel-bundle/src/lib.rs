//! The contract between the Kestrel compiler (`eqlc`) and the runtime (`kestrel-rt`).
//!
//! Both sides must agree on which fields an event can carry, their types, and how a
//! field is numbered. That agreement lives here:
//!
//! - [`schema`]: the field schema (the TOML format described in `docs/schema.md`), the
//!   built-in schemas (`linux`, `dynamic`), field ids and the schema fingerprint that a
//!   compiled bundle records so the runtime can refuse a bundle built for another schema.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod schema;

pub use schema::{FieldDef, FieldId, FieldType, Schema, SchemaError, TimestampUnit};
