//! Repository maintenance tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! Tasks:
//!
//! - `gen-schema [--check]`: regenerate `kestrel-bundle/schemas/linux.toml` from ECS and
//!   `kestrel-bundle/schemas/linux.in.toml`; with `--check`, fail if the committed file
//!   is not what would be generated.

mod gen_schema;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask gen-schema [--check]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gen-schema") => {
            let mut check = false;
            for arg in &args[1..] {
                match arg.as_str() {
                    "--check" => check = true,
                    "-h" | "--help" => {
                        println!("{USAGE}");
                        return ExitCode::SUCCESS;
                    }
                    other => {
                        eprintln!("unknown argument `{other}`\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            gen_schema::run(&repo_root(), check)
        }
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

/// The workspace root: the parent of this crate's directory.
fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
