//! Tests of the bundle format (docs/bundle-format.md): round trips, the golden files,
//! mutations of the golden bytes, properties of arbitrary bundles, and one failing
//! example per semantic check, the rule actions section and the prefilter section.

mod actions;
mod golden;
mod handmade;
mod mutation;
mod needs;
mod prefilter;
mod props;
mod validation;
