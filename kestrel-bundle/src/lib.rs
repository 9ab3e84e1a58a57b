//! The contract between the Kestrel compiler (`eqlc`) and the runtime (`kestrel-rt`).
//!
//! Both sides must agree on which fields an event can carry, their types, and how a
//! field is numbered. That agreement lives here:
//!
//! - [`schema`]: the field schema (the TOML format described in `docs/schema.md`), the
//!   built-in schemas (`linux`, `dynamic`), field ids and the schema fingerprint that a
//!   compiled bundle records so the runtime can refuse a bundle built for another schema.
//! - [`bundle`]: the bundle format (`docs/bundle-format.md`): the compiled rules, their
//!   metadata, the field slots, the guest memory layout, the pattern tables and the Wasm
//!   module, with a deterministic writer, a validating reader and an inspector.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod bundle;
pub mod enforce;
pub mod schema;
pub mod semantics;
pub mod time;

pub use bundle::{
    ABI_VERSION, Bundle, BundleError, Capture, CidrBlock, FORMAT_VERSION, Field, FieldKind, Functions, Layout, MAGIC, Manifest, Patterns, Pipe, Predicate,
    PredicateRole, Query, RegexAnchor, RegexPattern, Rule, SequenceFlavor, SequenceKey, SequenceStep, SequenceTable, TableKind, ValueFn,
};
pub use schema::{FieldDef, FieldId, FieldType, Schema, SchemaError, TimestampUnit};
