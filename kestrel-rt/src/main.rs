//! `kestrel`: runs bundles built by eqlc. The command line is a contract (README.md).

use clap::{Parser, Subcommand, ValueEnum};
use kestrel_rt::program::Program;
use kestrel_rt::replay::{BadLine, Options, Order, Replay};
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Replay allocates a few small values per event (decoded strings, field vectors);
/// mimalloc serves them faster than the system allocator. The bench measures with the
/// allocator the `kestrel` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bad lines reported one by one; the rest are counted in the summary.
const BAD_LINES_SHOWN: u64 = 20;

#[derive(Parser)]
#[command(name = "kestrel", version, about = "The Kestrel runtime: runs eqlc bundles over events.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a bundle over NDJSON event logs and writes alerts as NDJSON.
    Replay {
        /// The bundle (`eqlc build -o BUNDLE`).
        #[arg(long)]
        bundle: PathBuf,
        /// Where alerts go: a file, or `-` for stdout (the default).
        #[arg(long, default_value = "-")]
        alerts: String,
        /// Event order: by the schema's timestamp field (ties in input order), or as read.
        #[arg(long, value_enum, default_value = "timestamp")]
        order: OrderArg,
        /// Events held back to restore timestamp order; older events are run late, counted.
        #[arg(long, default_value_t = kestrel_rt::replay::DEFAULT_REORDER_WINDOW)]
        reorder_window: usize,
        /// Results a buffering pipe (tail, sort, unique_count, count) keeps per rule.
        #[arg(long, default_value_t = kestrel_rt::engine::DEFAULT_MAX_BUFFERED)]
        max_buffered: usize,
        /// Partial matches a sequence rule keeps (open keys of a join or sample rule);
        /// beyond it the oldest are evicted, counted in the summary.
        #[arg(long, default_value_t = kestrel_rt::sequence::DEFAULT_MAX_PARTIALS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        max_partials: usize,
        /// Exit with status 1 when a line is not a valid event (it is always reported).
        #[arg(long)]
        strict: bool,
        /// No progress line and no summary.
        #[arg(long, short)]
        quiet: bool,
        /// Threads parsing events (the engine itself runs on one); default: one per core.
        #[arg(long)]
        threads: Option<usize>,
        /// NDJSON event files; `-` reads stdin.
        #[arg(required = true)]
        events: Vec<String>,
    },
    /// Validates a bundle and prints what it holds.
    Inspect { bundle: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    Timestamp,
    Input,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect { bundle } => inspect(&bundle),
        Command::Replay { bundle, alerts, order, reorder_window, max_buffered, max_partials, strict, quiet, threads, events } => {
            let order = match order {
                OrderArg::Timestamp => Order::Timestamp,
                OrderArg::Input => Order::Input,
            };
            let progress = !quiet && std::io::stderr().is_terminal();
            let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
            let options = Options { order, reorder_window, max_buffered, max_partials, profile: !quiet, progress, threads, ..Options::default() };
            replay(&bundle, &alerts, &events, options, strict, quiet)
        }
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("kestrel: {message}");
    ExitCode::FAILURE
}

fn load(path: &PathBuf) -> Result<Program, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    Program::load(&bytes).map_err(|error| format!("cannot load `{}`: {error}", path.display()))
}

fn inspect(path: &PathBuf) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => return fail(format!("cannot read `{}`: {error}", path.display())),
    };
    match kestrel_bundle::Bundle::from_bytes(&bytes) {
        Ok(bundle) => {
            print!("{}", bundle.inspect());
            ExitCode::SUCCESS
        }
        Err(error) => fail(format!("`{}` is not a valid bundle: {error}", path.display())),
    }
}

fn replay(bundle: &PathBuf, alerts: &str, events: &[String], options: Options, strict: bool, quiet: bool) -> ExitCode {
    let program = match load(bundle) {
        Ok(program) => Arc::new(program),
        Err(message) => return fail(message),
    };
    let mut out: Box<dyn Write> = if alerts == "-" {
        Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()))
    } else {
        match std::fs::File::create(alerts) {
            Ok(file) => Box::new(std::io::BufWriter::with_capacity(1 << 16, file)),
            Err(error) => return fail(format!("cannot write alerts to `{alerts}`: {error}")),
        }
    };
    let mut replay = match Replay::new(program, options, &mut out) {
        Ok(replay) => replay,
        Err(error) => return fail(format!("cannot start the engine: {error}")),
    };
    let mut bad_lines = 0u64;
    let mut report = |bad: &BadLine| {
        bad_lines += 1;
        if bad_lines <= BAD_LINES_SHOWN {
            eprintln!("kestrel: bad line: {bad}");
        }
    };
    for source in events {
        let result = if source == "-" {
            replay.read_all("-", std::io::stdin().lock(), &mut report)
        } else {
            match std::fs::File::open(source) {
                Ok(file) => replay.read_all(source, BufReader::with_capacity(1 << 20, file), &mut report),
                Err(error) => return fail(format!("cannot read `{source}`: {error}")),
            }
        };
        if let Err(error) = result {
            return fail(format!("while replaying `{source}`: {error}"));
        }
    }
    let summary = match replay.finish() {
        Ok(summary) => summary,
        Err(error) => return fail(format!("cannot write alerts: {error}")),
    };
    drop(out);
    if bad_lines > BAD_LINES_SHOWN {
        eprintln!("kestrel: … {} more bad lines", bad_lines - BAD_LINES_SHOWN);
    }
    if !quiet {
        eprint!("{}", summary.render());
    }
    if strict && summary.bad_lines > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
