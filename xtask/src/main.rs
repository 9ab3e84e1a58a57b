//! Repository maintenance tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! Tasks:
//!
//! - `gen-schema [--check]`: regenerate `kestrel-bundle/schemas/linux.toml` from ECS and
//!   `kestrel-bundle/schemas/linux.in.toml`; with `--check`, fail if the committed file
//!   is not what would be generated.
//! - `bless`: run the snapshot suites, accepting every changed snapshot, then list them
//!   for review (`git diff snapshots/`).
//! - `build-rules [--check]`: compile `rules/` into the runtime's built-in bundle
//!   `kestrel-rt/builtin/rules.kbundle` and write the table of docs/rules.md; with
//!   `--check`, fail if either is not what would be written.
//! - `bench-check [RUNS]`: time `eqlc check` over the corpus against python `eql`.
//! - `gen-events [--count N] [--seed S]`: synthetic Linux endpoint events (NDJSON) on
//!   stdout, for the replay benchmarks (docs/benchmarks.md).

mod bench;
mod build_rules;
mod gen_events;
mod gen_schema;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask gen-schema [--check] | bless | build-rules [--check] | bench-check [RUNS] | gen-events [--count N] [--seed S]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gen-schema") => match check_flag(&args[1..]) {
            Ok(check) => gen_schema::run(&repo_root(), check),
            Err(code) => return code,
        },
        Some("bless") => bless(&repo_root()),
        Some("build-rules") => match check_flag(&args[1..]) {
            Ok(check) => build_rules::run(&repo_root(), check),
            Err(code) => return code,
        },
        Some("bench-check") => {
            let runs = args.get(1).and_then(|runs| runs.parse().ok()).unwrap_or(5);
            bench::run(&repo_root(), runs)
        }
        Some("gen-events") => gen_events::run(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The arguments of a task whose only option is `--check`: whether it was given, or the
/// exit code for `--help` (after printing the usage) and for an unknown argument.
fn check_flag(args: &[String]) -> Result<bool, ExitCode> {
    let mut check = false;
    for arg in args {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            other => {
                eprintln!("unknown argument `{other}`\n{USAGE}");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(check)
}

/// The workspace root: the parent of this crate's directory.
fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}

/// Runs the suites that hold snapshots with `INSTA_UPDATE=always`, then shows what changed.
fn bless(root: &std::path::Path) -> anyhow::Result<ExitCode> {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["test", "--locked", "-p", "tests", "--test", "it", "snapshots"])
        .env("INSTA_UPDATE", "always")
        .env_remove("CI")
        .current_dir(root)
        .status()?;
    // A second run confirms the accepted snapshots now pass.
    let status = if status.success() {
        status
    } else {
        std::process::Command::new(env!("CARGO")).args(["test", "--locked", "-p", "tests", "--test", "it", "snapshots"]).current_dir(root).status()?
    };
    std::process::Command::new("git").args(["status", "--short", "snapshots"]).current_dir(root).status()?;
    println!("review the changes with `git diff snapshots/` before committing");
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
