//! `kestrel`: runs bundles built by eqlc. The command line is a contract (README.md).

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use kestrel_rt::capture::{CaptureReader, Entry, MAGIC, Record, is_capture};
use kestrel_rt::feed::replay_capture;
use kestrel_rt::program::Program;
use kestrel_rt::replay::{BadLine, Options, Order, Replay, Summary};
use kestrel_rt::time::format_rfc3339;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// `print!` that ends the process quietly (exit code 0) when the reader of standard
/// output has gone away (`| head`), where `print!` would panic.
macro_rules! out {
    ($($arg:tt)*) => { write_out(format_args!($($arg)*)) };
}

fn write_out(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("cannot write to standard output: {error}");
            std::process::exit(1);
        }
        std::process::exit(0);
    }
}

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
    /// Runs a bundle over NDJSON event logs or captures and writes alerts as NDJSON.
    Replay(ReplayArgs),
    /// Writes a capture's lines as NDJSON, or (`--header`) describes the capture.
    Export(ExportArgs),
    /// Validates a bundle and prints what it holds.
    Inspect { bundle: PathBuf },
    /// Live detection: runs a bundle (the built-in rules by default) over this host's
    /// kernel events, from eBPF probes. Needs root, or CAP_BPF and CAP_PERFMON.
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The bundle (`eqlc build -o BUNDLE`); default: Kestrel's built-in rules.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Where alerts go: a file, or `-` for stdout (the default).
    #[arg(long, default_value = "-")]
    alerts: String,
    /// Record every event the engine sees into this capture (`kestrel replay CAPTURE`
    /// gives the same alerts; `kestrel export CAPTURE` writes the events as NDJSON).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Rewrite this file with Prometheus text-format metrics at each stats interval.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Seconds between stats lines (stderr) and metrics updates.
    #[arg(long, default_value_t = 10.0)]
    stats_interval: f64,
    /// Stop after this many seconds (default: run until SIGINT or SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// Size of the kernel ring buffer, in MiB (a power of two).
    #[arg(long, default_value_t = 16)]
    ring_mib: u32,
    /// Partial matches a sequence rule keeps; beyond it the oldest are evicted, counted.
    #[arg(long, default_value_t = kestrel_rt::sequence::DEFAULT_MAX_PARTIALS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_partials: usize,
    /// No stats lines and no summary.
    #[arg(long, short)]
    quiet: bool,
    /// Act on rules with `action = "block"` or `"kill"`: deny execs (EPERM), kill
    /// processes. Without it, shadow mode: alerts say what would have been done.
    #[arg(long)]
    enforce: bool,
    /// With --enforce: pause execs on the file system of this mount point (repeat it);
    /// default: every file system that can hold executables.
    #[arg(long = "enforce-mount", value_name = "PATH")]
    enforce_mounts: Vec<PathBuf>,
    /// With --enforce: milliseconds a paused exec waits for a decision; then it is allowed (counted).
    #[arg(long, default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=10_000))]
    decision_timeout_ms: u64,
    /// With --enforce: log every decision of the exec hook here (NDJSON: verdict, rules, event).
    #[arg(long, value_name = "FILE")]
    decisions: Option<PathBuf>,
}

#[derive(Args)]
struct ReplayArgs {
    /// The bundle (`eqlc build -o BUNDLE`); optional when every input is a capture
    /// (a capture carries the bundle it was recorded with).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Where alerts go: a file, or `-` for stdout (the default).
    #[arg(long, default_value = "-")]
    alerts: String,
    /// Event order: by the schema's timestamp field (ties in input order), or as read.
    #[arg(long, value_enum, default_value = "timestamp")]
    order: OrderArg,
    /// Events held back to restore timestamp order; older events are run late, counted.
    #[arg(long, default_value_t = kestrel_rt::replay::DEFAULT_REORDER_WINDOW)]
    reorder_window: usize,
    /// Bytes the held-back events may take (their lines, fields and matches, estimated);
    /// past it the earliest are run early, counted in the summary.
    #[arg(long, default_value_t = kestrel_rt::replay::DEFAULT_REORDER_BYTES)]
    reorder_bytes: usize,
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
    /// Threads parsing events, the engine's among them (it parses when the next block is not ready); default: one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// NDJSON event files and captures (told apart by their first bytes); `-` reads stdin.
    #[arg(required = true)]
    inputs: Vec<String>,
}

/// The replay options a capture records (its own replace them).
const RECORDED_OPTIONS: [&str; 5] = ["order", "reorder_window", "reorder_bytes", "max_buffered", "max_partials"];

#[derive(Args)]
struct ExportArgs {
    /// Describe the capture (version, host, start, producer, bundle, counts) instead.
    #[arg(long)]
    header: bool,
    /// Where the lines go: a file, or `-` for stdout (the default).
    #[arg(short, long, default_value = "-")]
    output: String,
    /// The capture; `-` reads stdin.
    capture: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    Timestamp,
    Input,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command {
        Command::Inspect { bundle } => inspect(&bundle),
        Command::Export(args) => export(&args),
        Command::Run(args) => run(&args),
        Command::Replay(args) => {
            let order = match args.order {
                OrderArg::Timestamp => Order::Timestamp,
                OrderArg::Input => Order::Input,
            };
            let progress = !args.quiet && std::io::stderr().is_terminal();
            let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
            let options = Options {
                order,
                reorder_window: args.reorder_window,
                reorder_bytes: args.reorder_bytes,
                max_buffered: args.max_buffered,
                max_partials: args.max_partials,
                profile: !args.quiet,
                progress,
                threads,
                ..Options::default()
            };
            let given = matches
                .subcommand_matches("replay")
                .map_or_else(Vec::new, |replay| RECORDED_OPTIONS.into_iter().filter(|id| replay.value_source(id) == Some(ValueSource::CommandLine)).collect());
            replay(&args, options, &given)
        }
    }
}

fn run(args: &RunArgs) -> ExitCode {
    let bundle = match &args.bundle {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => return fail(format!("cannot read `{}`: {error}", path.display())),
        },
        None => kestrel_rt::builtin::BUILTIN_BUNDLE.to_vec(),
    };
    if !args.ring_mib.is_power_of_two() {
        return fail(format!("--ring-mib must be a power of two, not {}", args.ring_mib));
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(error) = signal_hook::flag::register(signal, stop.clone()) {
            return fail(format!("cannot handle signal {signal}: {error}"));
        }
    }
    let options = kestrel_rt::live::RunOptions {
        bundle,
        record: args.record.clone(),
        metrics: args.metrics.clone(),
        stats_every: std::time::Duration::from_secs_f64(args.stats_interval.max(0.1)),
        stats_line: !args.quiet,
        duration: args.duration.map(|seconds| std::time::Duration::from_secs_f64(seconds.max(0.0))),
        sensor: kestrel_sensor::sensor::SensorOptions { ring_bytes: args.ring_mib << 20, ..Default::default() },
        options: Options { max_partials: args.max_partials, profile: !args.quiet, ..Options::default() },
        enforcement: kestrel_rt::enforce::EnforceOptions {
            enforce: args.enforce,
            mounts: (!args.enforce_mounts.is_empty()).then(|| args.enforce_mounts.clone()),
            decision_timeout: std::time::Duration::from_millis(args.decision_timeout_ms),
            ..Default::default()
        },
        decisions: args.decisions.clone(),
    };
    let mut out = match output(&args.alerts, "alerts") {
        Ok(out) => out,
        Err(message) => return fail(message),
    };
    match kestrel_rt::live::run(options, &mut out, stop) {
        Ok(summary) => {
            if !args.quiet {
                eprint!("{}", summary.render());
            }
            ExitCode::SUCCESS
        }
        Err(error @ kestrel_rt::live::RunError::Sensor(_)) => {
            eprintln!("kestrel: {error}");
            ExitCode::from(2)
        }
        Err(error) => fail(error),
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
            out!("{}", bundle.inspect());
            ExitCode::SUCCESS
        }
        Err(error) => fail(format!("`{}` is not a valid bundle: {error}", path.display())),
    }
}

/// Where alerts or exported lines go: a file, or `-` for stdout.
fn output(path: &str, what: &str) -> Result<Box<dyn Write>, String> {
    if path == "-" {
        return Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())));
    }
    match std::fs::File::create(path) {
        Ok(file) => Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, file))),
        Err(error) => Err(format!("cannot write {what} to `{path}`: {error}")),
    }
}

/// Standard input's first bytes, read once to tell a capture from NDJSON, and put back
/// in front of the rest when it is read.
#[derive(Default)]
struct Stdin {
    prefix: Option<Vec<u8>>,
}

impl Stdin {
    fn prefix(&mut self) -> Result<&[u8], String> {
        if self.prefix.is_none() {
            let mut prefix = Vec::with_capacity(MAGIC.len());
            std::io::stdin().lock().take(MAGIC.len() as u64).read_to_end(&mut prefix).map_err(|error| format!("cannot read standard input: {error}"))?;
            self.prefix = Some(prefix);
        }
        Ok(self.prefix.get_or_insert_default())
    }
}

/// Whether input `name` (`-`: stdin) is a capture, by its first bytes.
fn is_capture_input(name: &str, stdin: &mut Stdin) -> Result<bool, String> {
    if name == "-" {
        return Ok(is_capture(stdin.prefix()?));
    }
    let mut prefix = Vec::with_capacity(MAGIC.len());
    let file = std::fs::File::open(name).map_err(|error| format!("cannot read `{name}`: {error}"))?;
    file.take(MAGIC.len() as u64).read_to_end(&mut prefix).map_err(|error| format!("cannot read `{name}`: {error}"))?;
    Ok(is_capture(&prefix))
}

/// Opens input `name` (`-`: stdin, with the bytes already read put back).
fn open(name: &str, stdin: &mut Stdin) -> Result<Box<dyn Read + Send>, String> {
    if name == "-" {
        let prefix = stdin.prefix.take().unwrap_or_default();
        return Ok(Box::new(std::io::Cursor::new(prefix).chain(std::io::stdin())));
    }
    match std::fs::File::open(name) {
        Ok(file) => Ok(Box::new(file)),
        Err(error) => Err(format!("cannot read `{name}`: {error}")),
    }
}

/// What `kestrel replay` runs: consecutive NDJSON inputs make one stream, and each
/// capture is a run of its own (its engine, its settings), in argument order.
enum Run {
    Events(Vec<String>),
    Capture(String),
}

/// How a run ended, when it did not stop the command.
struct RunEnd {
    summary: Summary,
    /// A capture was damaged (not only truncated): the command fails at the end.
    damaged: bool,
}

fn replay(args: &ReplayArgs, options: Options, given: &[&str]) -> ExitCode {
    let mut stdin = Stdin::default();
    let mut runs: Vec<Run> = Vec::new();
    for name in &args.inputs {
        match is_capture_input(name, &mut stdin) {
            Err(message) => return fail(message),
            Ok(true) => runs.push(Run::Capture(name.clone())),
            Ok(false) => match runs.last_mut() {
                Some(Run::Events(names)) => names.push(name.clone()),
                _ => runs.push(Run::Events(vec![name.clone()])),
            },
        }
    }
    let program = match &args.bundle {
        Some(path) => match load(path) {
            Ok(program) => Some(Arc::new(program)),
            Err(message) => return fail(message),
        },
        None => match runs.iter().find_map(|run| if let Run::Events(names) = run { names.first() } else { None }) {
            Some(name) => return fail(format!("`{name}` is not a capture: replaying NDJSON events needs `--bundle` (only a capture carries its bundle)")),
            None => None,
        },
    };
    let mut out = match output(&args.alerts, "alerts") {
        Ok(out) => out,
        Err(message) => return fail(message),
    };
    let mut bad_lines = 0u64;
    let mut report = |bad: &BadLine| {
        bad_lines += 1;
        if bad_lines <= BAD_LINES_SHOWN {
            eprintln!("kestrel: bad line: {bad}");
        }
    };
    let (mut bad_total, mut damaged) = (0, false);
    for run in &runs {
        let end = match (run, &program) {
            (Run::Events(names), Some(program)) => replay_events(program.clone(), names, options.clone(), &mut out, &mut report, &mut stdin),
            (Run::Events(_), None) => Err("replaying NDJSON events needs `--bundle`".to_string()),
            (Run::Capture(name), _) => replay_capture_input(name, program.clone(), options.clone(), given, &mut out, &mut report, &mut stdin, args.quiet),
        };
        let end = match end {
            Ok(end) => end,
            Err(message) => return fail(message),
        };
        bad_total += end.summary.bad_lines;
        damaged |= end.damaged;
        if !args.quiet {
            eprint!("{}", end.summary.render());
        }
    }
    drop(out);
    if bad_lines > BAD_LINES_SHOWN {
        eprintln!("kestrel: … {} more bad lines", bad_lines - BAD_LINES_SHOWN);
    }
    if damaged || (args.strict && bad_total > 0) { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Replays NDJSON inputs as one stream.
fn replay_events(
    program: Arc<Program>,
    names: &[String],
    options: Options,
    out: &mut dyn Write,
    report: &mut dyn FnMut(&BadLine),
    stdin: &mut Stdin,
) -> Result<RunEnd, String> {
    let mut replay = Replay::new(program, options, out).map_err(|error| format!("cannot start the engine: {error}"))?;
    for name in names {
        // Unbuffered: the replay reads into its own blocks, a megabyte at a time.
        let input = open(name, stdin)?;
        replay.read_all(name, input, report).map_err(|error| format!("while replaying `{name}`: {error}"))?;
    }
    let summary = replay.finish().map_err(|error| format!("cannot write alerts: {error}"))?;
    Ok(RunEnd { summary, damaged: false })
}

/// Replays one capture with its recorded settings (and its bundle, unless `program`).
#[allow(clippy::too_many_arguments)]
fn replay_capture_input(
    name: &str,
    program: Option<Arc<Program>>,
    options: Options,
    given: &[&str],
    out: &mut dyn Write,
    report: &mut dyn FnMut(&BadLine),
    stdin: &mut Stdin,
    quiet: bool,
) -> Result<RunEnd, String> {
    let reader = CaptureReader::new(open(name, stdin)?).map_err(|error| format!("`{name}`: {error}"))?;
    let header = reader.header();
    if !given.is_empty() {
        let flags: Vec<String> = given.iter().map(|id| format!("--{}", id.replace('_', "-"))).collect();
        eprintln!(
            "kestrel: `{name}` replays with the options it was recorded with ({}); {} apply to NDJSON inputs only",
            header.settings.describe(),
            flags.join(", ")
        );
    }
    if !quiet {
        eprintln!("kestrel: `{name}`: capture of {:?} started {} by {:?}", header.host, format_rfc3339(header.start), header.producer);
    }
    let replayed = replay_capture(reader, name, program, options, out, report).map_err(|error| format!("`{name}`: {error}"))?;
    let damaged = match &replayed.stopped {
        None => false,
        Some(error) if error.is_truncation() => {
            eprintln!("kestrel: `{name}`: {error}; its {} lines and {} flush points before were replayed", replayed.lines, replayed.flushes);
            false
        }
        Some(error) => {
            eprintln!("kestrel: `{name}`: {error}; its {} lines and {} flush points before were replayed", replayed.lines, replayed.flushes);
            true
        }
    };
    Ok(RunEnd { summary: replayed.summary, damaged })
}

fn export(args: &ExportArgs) -> ExitCode {
    let name = args.capture.as_str();
    let input = match open(name, &mut Stdin::default()) {
        Ok(input) => input,
        Err(message) => return fail(message),
    };
    let reader = match CaptureReader::new(input) {
        Ok(reader) => reader,
        Err(error) => return fail(format!("`{name}`: {error}")),
    };
    if args.header {
        return describe(reader);
    }
    let mut out = match output(&args.output, "lines") {
        Ok(out) => out,
        Err(message) => return fail(message),
    };
    let mut damaged = false;
    for entry in reader {
        let written = match entry {
            Ok(Entry { record: Record::Line(mut line), number, .. }) => {
                // A line pushed with its own end keeps it; the others get one.
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                if line[..line.len() - 1].contains(&b'\n') {
                    eprintln!("kestrel: `{name}`: record {number} holds a line break: written as is, it makes more than one line");
                }
                out.write_all(&line)
            }
            Ok(Entry { record: Record::LongLine(len), number, .. }) => {
                eprintln!("kestrel: `{name}`: record {number} is a line of {len} bytes kept by its length only: written as an empty line");
                out.write_all(b"\n")
            }
            Ok(_) => Ok(()),
            Err(error) => {
                eprintln!("kestrel: `{name}`: {error}; the lines before it were written");
                damaged |= !error.is_truncation();
                Ok(())
            }
        };
        if let Err(error) = written {
            return fail(format!("cannot write lines: {error}"));
        }
    }
    if let Err(error) = out.flush() {
        return fail(format!("cannot write lines: {error}"));
    }
    if damaged { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// `kestrel export --header`: what the capture says about itself, and its counts.
fn describe(mut reader: CaptureReader<Box<dyn Read + Send>>) -> ExitCode {
    let header = reader.header().clone();
    let mut text = format!("Kestrel capture, format {}\n", reader.version());
    text.push_str(&format!("producer  {:?}\nhost      {:?}\nstart     {}\n", header.producer, header.host, format_rfc3339(header.start)));
    text.push_str(&format!("options   {}\n", header.settings.describe()));
    let bundle = &header.bundle;
    let fingerprint = kestrel_bundle::bundle::fnv1a64(bundle);
    text.push_str(&match kestrel_bundle::Bundle::from_bytes(bundle) {
        Ok(loaded) => format!(
            "bundle    {} bytes (fnv1a64 {fingerprint:#018x}), {} rules, schema {:?} (fingerprint {:#018x}), compiler {:?}\n",
            bundle.len(),
            loaded.rules.len(),
            loaded.manifest.schema_name,
            loaded.manifest.schema_fingerprint,
            loaded.manifest.compiler
        ),
        Err(error) => format!("bundle    {} bytes (fnv1a64 {fingerprint:#018x}), not a valid bundle: {error}\n", bundle.len()),
    });
    let mut end = "no end-of-capture record".to_string();
    let mut damaged = false;
    for entry in &mut reader {
        match entry {
            Ok(Entry { record: Record::End(trailer), .. }) => end = format!("complete, finished {}", format_rfc3339(trailer.end)),
            Ok(_) => {}
            Err(error) => {
                damaged = !error.is_truncation();
                end = error.to_string();
            }
        }
    }
    text.push_str(&format!("lines     {}\nflushes   {}\nend       {end}\n", reader.lines(), reader.flushes()));
    out!("{text}");
    if damaged { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
