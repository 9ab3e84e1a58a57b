//! `cargo xtask gen-events [--count N] [--seed S]`: writes synthetic Linux endpoint
//! events (NDJSON, Elastic Defend's shape) to stdout, for the replay benchmarks
//! (docs/benchmarks.md). The generator is shared with the `replay` bench of kestrel-rt.

#[path = "../../kestrel-rt/benches/replay/events.rs"]
mod events;

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::process::ExitCode;

pub const USAGE: &str = "cargo xtask gen-events [--count N] [--seed S] > events.ndjson";

pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut count = 100_000usize;
    let mut seed = 1u64;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--count" => count = value("--count")?.parse().context("--count takes a number")?,
            "--seed" => seed = value("--seed")?.parse().context("--seed takes a number")?,
            other => bail!("unknown argument `{other}`; usage: {USAGE}"),
        }
    }
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout);
    events::write_events(&mut out, count, seed)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
