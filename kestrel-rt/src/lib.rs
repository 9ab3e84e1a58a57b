//! kestrel-rt: the Kestrel runtime. It loads bundles built by eqlc and never links eqlc.
//!
//! `program` loads and links a bundle; `engine` runs batches of events through it and
//! the rules' `pipes`; `ndjson` and `time` read events; `guest` and `host` are the two
//! sides of the predicate ABI (docs/abi.md).
// Audited exceptions: `json_scan::skip_with` (and `masks_with`, tests), `json_scan::find_quote_or_backslash` and `cpu::prefetch` (ARCHITECTURE.md, "No `unsafe`").
#![deny(unsafe_code)]

pub mod alert;
pub mod builtin;
pub mod capture;
pub mod cpu;
pub mod custom;
pub mod enforce;
pub mod engine;
pub mod feed;
pub mod functions;
pub mod guest;
pub mod host;
pub mod join;
pub mod join_key;
pub mod json_scan;
pub mod lineage;
pub mod live;
pub mod losses;
pub mod ndjson;
pub mod parallel;
pub mod pipes;
pub mod prefilter;
pub mod program;
mod reorder;
pub mod replay;
pub mod sample;
pub mod sequence;
pub mod summary;
pub use kestrel_bundle::time;
