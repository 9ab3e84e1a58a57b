//! eqlc: the Kestrel EQL compiler.
//!
//! The pipeline is a chain of named types, each produced by a pure pass that returns
//! its output together with its diagnostics:
//!
//! ```text
//! source text ─lex::tokenize→ [Token] ─parse::file→ ast::File ─check::rule→ tir::Rule → (back ends)
//! ```
//!
//! IO happens only at the edges: `rules` reads rule files, `render` and the binary write.

#![forbid(unsafe_code)]

pub mod actions;
pub mod ast;
pub mod check;
pub mod codes;
pub mod custom;
pub mod diag;
pub mod dialect;
pub mod driver;
pub mod emit;
pub mod functions;
pub mod interp;
pub mod lex;
pub mod parse;
pub mod print;
pub mod print_ir;
pub mod render;
pub mod rules;
pub mod source;
pub mod tir;
