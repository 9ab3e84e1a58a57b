//! Kestrel's built-in detection rules, compiled: the bundle `kestrel run` uses when it
//! is given no other.
//!
//! The rules are the files under `rules/` (one Elastic-shaped TOML file per rule, by
//! tactic; docs/rules.md lists them). The runtime never links the compiler, so they are
//! compiled ahead of time into `kestrel-rt/builtin/rules.kbundle`, which is committed
//! and included here byte for byte. After changing `rules/` (or eqlc's code
//! generation), regenerate it from the repository root with
//!
//! ```sh
//! cargo xtask build-rules
//! ```
//!
//! which runs `eqlc build --schema linux -o kestrel-rt/builtin/rules.kbundle rules/`
//! and rewrites the table of docs/rules.md. Builds are deterministic, and the test
//! `rules::committed_builtin_bundle_is_up_to_date` fails while the committed bundle is
//! not what `rules/` builds to.

/// The built-in rules as a bundle (docs/bundle-format.md), for
/// [`Program::load`](crate::program::Program::load).
pub const BUILTIN_BUNDLE: &[u8] = include_bytes!("../builtin/rules.kbundle");
