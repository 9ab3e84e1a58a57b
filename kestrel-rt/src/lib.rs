//! kestrel-rt: the Kestrel runtime. It loads bundles built by eqlc and never links eqlc.
#![forbid(unsafe_code)]

pub mod ndjson;
pub mod pipes;
pub mod time;
pub mod value;
