//! Kestrel's integration suites, one binary. Each module is one suite; the data it
//! reads lives in `tests/data/<suite>/` and its snapshots in `snapshots/<suite>/`.

mod architecture;
mod conformance;
mod corpus;
mod custom;
mod equivalence;
mod functions;
mod fuzz;
mod golden;
mod needs;
mod prefilter;
mod reference_suites;
mod replay;
mod roundtrip;
mod rules;
mod snapshots;
