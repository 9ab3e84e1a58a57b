//! The `eqlc` command line. Exit codes: 0 clean (warnings allowed), 1 errors in rules,
//! 2 usage or IO problems.

use clap::{Parser, Subcommand, ValueEnum};
use eqlc::check::Options;
use eqlc::codes::Code;
use eqlc::diag::{Diagnostic, Severity};
use eqlc::dialect::{Dialect, EndgameCase};
use eqlc::driver::{self, Checked};
use eqlc::functions::Declaration;
use eqlc::source::SourceMap;
use eqlc::{print, render, rules};
use kestrel_bundle::schema::Schema;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// `print!` that ends the process quietly (exit code 0) when the reader of standard
/// output has gone away (`| head`), where `print!` would panic.
macro_rules! out {
    ($($arg:tt)*) => { write_out(format_args!($($arg)*)) };
}

/// `println!`, ending quietly as [`out!`] does.
macro_rules! outln {
    ($($arg:tt)*) => { write_out(format_args!("{}\n", format_args!($($arg)*))) };
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

#[derive(Parser)]
#[command(name = "eqlc", version, about = "The Kestrel EQL compiler: check, lint and build EQL rules")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, type-check and lint rules; report every problem found.
    Check {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        report: Report,
        /// Rule files (.eql, .toml, .jsonl) or directories of them; `-` reads one query from stdin.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Check rules and compile them into one bundle for the Kestrel runtime.
    Build {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        report: Report,
        /// Where to write the bundle.
        #[arg(short, long, value_name = "BUNDLE")]
        output: PathBuf,
        /// Rule files (.eql, .toml, .jsonl) or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the explanation of a diagnostic code, or list every code.
    Explain {
        /// A code such as E0101 or W0002.
        code: Option<String>,
        /// List every code with its title.
        #[arg(long)]
        list: bool,
    },
    /// Print what the compiler makes of each rule: the syntax tree, the rule printed
    /// back as EQL, or the typed IR.
    Dump {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value = "ast")]
        what: Dump,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print a schema as TOML: a built-in one by name, or a file after validation.
    Schema {
        #[arg(default_value = "linux")]
        schema: String,
    },
}

#[derive(clap::Args)]
struct Target {
    /// The field schema: `linux` (built in, the default), `dynamic` (any field), or a TOML file.
    #[arg(long, default_value = "linux")]
    schema: String,
    /// The EQL dialect, where the two differ.
    #[arg(long, default_value = "elasticsearch")]
    dialect: Dialect,
    /// In the endgame dialect, compare strings case-sensitively (python eql folds case by default).
    #[arg(long)]
    case_sensitive: bool,
    /// Declare a function the rules may call, as `name(type, ...) -> type`.
    #[arg(long = "declare", value_name = "SIGNATURE")]
    declarations: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dump {
    /// The syntax tree, with byte spans.
    Ast,
    /// The rule printed back as EQL.
    Eql,
    /// The typed intermediate representation.
    Ir,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
}

#[derive(clap::Args)]
struct Report {
    /// How to print diagnostics: for people (stderr), or as JSON / SARIF 2.1.0 (stdout).
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Do not report these codes (repeatable), e.g. `--allow W0002`.
    #[arg(long = "allow", value_name = "CODE")]
    allow: Vec<String>,
    /// Report these warning codes as errors (repeatable).
    #[arg(long = "deny", value_name = "CODE")]
    deny: Vec<String>,
    /// Report every warning as an error.
    #[arg(long)]
    deny_warnings: bool,
    /// Print only the summary line for clean rules (human format).
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { target, report, paths } => check(&target, &report, &paths, None),
        Command::Build { target, report, output, paths } => check(&target, &report, &paths, Some(&output)),
        Command::Explain { code, list } => explain(code.as_deref(), list),
        Command::Dump { target, what, paths } => dump(&target, what, &paths),
        Command::Schema { schema } => {
            let mut sources = SourceMap::new();
            match load_schema(&schema, &mut sources) {
                Ok(schema) => {
                    out!("{}", schema.to_toml());
                    ExitCode::SUCCESS
                }
                Err(diag) => report_and_exit(&[*diag], &sources, Format::Human),
            }
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// A built-in schema by name, or a schema file. Problems are diagnostics: E0501 when the
/// file cannot be read, E0601 (pointing into the file) when it is not a valid schema.
fn load_schema(name: &str, sources: &mut SourceMap) -> Result<Schema, Box<Diagnostic>> {
    if let Some(schema) = Schema::builtin(name) {
        return Ok(schema);
    }
    let text = match std::fs::read_to_string(name) {
        Ok(text) => text,
        Err(error) => {
            return Err(Box::new(
                Diagnostic::new(Code::E0501, format!("cannot read schema `{name}`: {error}"))
                    .note(format!("`--schema` takes a built-in schema ({}) or a schema file", Schema::builtin_names().join(", "))),
            ));
        }
    };
    let stem = PathBuf::from(name).file_stem().and_then(|stem| stem.to_str()).unwrap_or(name).to_string();
    match Schema::from_toml(&stem, &text) {
        Ok(schema) => Ok(schema),
        Err(error) => {
            let file = sources.add(name, text);
            let span = error.span.clone().map(|range| eqlc::source::Span::new(range.start, range.end)).unwrap_or_default();
            Err(Box::new(
                Diagnostic::new(Code::E0601, format!("`{name}` is not a valid schema"))
                    .primary(span, error.message.clone())
                    .help("docs/schema.md describes the schema format")
                    .in_file(file),
            ))
        }
    }
}

/// Prints diagnostics that stop the run (a bad schema) and exits with 2.
fn report_and_exit(diags: &[Diagnostic], sources: &SourceMap, format: Format) -> ExitCode {
    match format {
        Format::Human => eprint!("{}", render::human(diags, sources, std::io::stderr().is_terminal())),
        Format::Json => outln!("{}", serde_json::json!({ "rules": 0, "errors": diags.len(), "diagnostics": render::json(diags, sources) })),
        Format::Sarif => outln!("{}", render::sarif(diags, sources)),
    }
    ExitCode::from(2)
}

/// `eqlc check`, and `eqlc build` when `output` is given: a bundle is written only when
/// every rule checks without errors.
fn check(target: &Target, report: &Report, paths: &[PathBuf], output: Option<&PathBuf>) -> ExitCode {
    let mut sources = SourceMap::new();
    let schema = match load_schema(&target.schema, &mut sources) {
        Ok(schema) => schema,
        Err(diag) => return report_and_exit(&[*diag], &sources, report.format),
    };
    let mut declarations = Vec::new();
    for text in &target.declarations {
        match Declaration::parse(text) {
            Ok(declaration) => declarations.push(declaration),
            Err(message) => return usage_error(&format!("invalid --declare `{text}`: {message}")),
        }
    }
    let mut filters = Vec::new();
    for text in report.allow.iter().chain(&report.deny) {
        match Code::parse(text) {
            Some(code) if code.severity() == Severity::Warning => filters.push(code),
            Some(code) => return usage_error(&format!("`{code}` is an error, not a warning; only warnings can be allowed or denied")),
            None => return usage_error(&format!("unknown diagnostic code `{text}`; `eqlc explain --list` lists them")),
        }
    }
    let (allowed, denied) = filters.split_at(report.allow.len());
    let endgame_case = if target.case_sensitive { EndgameCase::Sensitive } else { EndgameCase::Insensitive };
    let loaded = rules::load(paths, &mut sources);
    let (rule_sources, mut load_diags, predicates) = (loaded.rules, loaded.diags, loaded.predicates);
    let (declarations, declaration_diags) = eqlc::custom::declare(&predicates, &schema, &declarations);
    load_diags.extend(declaration_diags);
    let options = Options { schema: &schema, dialect: target.dialect, endgame_case, declarations: &declarations };
    let io_failed = load_diags.iter().any(|diag| diag.code == Code::E0501);
    // A bug in eqlc while checking one rule is reported (B0001) and the others go on.
    let mut checked: Vec<Checked> = rule_sources
        .iter()
        .map(|source| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| driver::check_rule(source, &sources, &options)))
                .unwrap_or_else(|_| driver::internal_error(source))
        })
        .collect();
    driver::check_rule_set(&mut checked, &sources);

    let mut diags: Vec<Diagnostic> = load_diags;
    for rule in &checked {
        diags.extend(rule.diags.iter().cloned());
    }
    let mut built: Option<(usize, Vec<u8>)> = None;
    if let Some(output) = output
        && !io_failed
        && !diags.iter().any(Diagnostic::is_error)
    {
        let (bytes, mut emit_diags) = driver::build(&checked, &schema, &predicates);
        diags.append(&mut emit_diags);
        built = bytes.map(|bytes| (checked.len(), bytes));
        if let Some((_, bytes)) = &built
            && let Err(error) = write_atomically(output, bytes)
        {
            diags.push(Diagnostic::new(Code::E0501, format!("cannot write `{}`: {error}", output.display())));
            built = None;
        }
    }
    diags.retain(|diag| !allowed.contains(&diag.code));
    for diag in &mut diags {
        if diag.severity == Severity::Warning && (report.deny_warnings || denied.contains(&diag.code)) {
            diag.severity = Severity::Error;
        }
    }
    let errors = diags.iter().filter(|diag| diag.is_error()).count();
    let warnings = diags.len() - errors;
    // A rule failed if an error (or a denied warning) points into its file.
    let failed_files: std::collections::HashSet<_> = diags.iter().filter(|diag| diag.is_error()).filter_map(|diag| diag.file).collect();
    let failed_rules = checked.iter().filter(|rule| failed_files.contains(&rule.source.file)).count();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match report.format {
        Format::Human => {
            let color = std::io::stderr().is_terminal();
            eprint!("{}", render::human(&diags, &sources, color));
            if !report.quiet || errors > 0 {
                eprintln!(
                    "checked {} rule{}: {} with errors, {errors} error{}, {warnings} warning{}",
                    checked.len(),
                    plural(checked.len()),
                    failed_rules,
                    plural(errors),
                    plural(warnings)
                );
            }
            if let (Some(output), Some((rules, bytes))) = (output, &built) {
                eprintln!("built {}: {rules} rule{}, {} bytes", output.display(), plural(*rules), bytes.len());
            }
            Ok(())
        }
        Format::Json => {
            let document = serde_json::json!({
                "rules": checked.len(),
                "rules_with_errors": failed_rules,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": render::json(&diags, &sources),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&document).unwrap_or_default())
        }
        Format::Sarif => writeln!(out, "{}", serde_json::to_string_pretty(&render::sarif(&diags, &sources)).unwrap_or_default()),
    };
    if written.is_err() {
        return ExitCode::from(2);
    }
    if io_failed || diags.iter().any(|diag| diag.code == Code::E0501) {
        ExitCode::from(2)
    } else if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn explain(code: Option<&str>, list: bool) -> ExitCode {
    if list || code.is_none() {
        for code in Code::ALL {
            outln!("{}  {:<8} {:<26} {}", code.as_str(), code.severity().as_str(), code.slug(), code.title());
        }
        return ExitCode::SUCCESS;
    }
    let text = code.unwrap_or_default();
    match Code::parse(text) {
        Some(code) => {
            out!("{}", code.explanation());
            ExitCode::SUCCESS
        }
        None => usage_error(&format!("unknown code `{text}`; `eqlc explain --list` lists every code")),
    }
}

fn dump(target: &Target, what: Dump, paths: &[PathBuf]) -> ExitCode {
    let mut sources = SourceMap::new();
    let schema = match load_schema(&target.schema, &mut sources) {
        Ok(schema) => schema,
        Err(diag) => return report_and_exit(&[*diag], &sources, Format::Human),
    };
    let host: Vec<Declaration> = target.declarations.iter().filter_map(|text| Declaration::parse(text).ok()).collect();
    let endgame_case = if target.case_sensitive { EndgameCase::Sensitive } else { EndgameCase::Insensitive };
    let loaded = rules::load(paths, &mut sources);
    let (rule_sources, mut diags) = (loaded.rules, loaded.diags);
    let (declarations, declaration_diags) = eqlc::custom::declare(&loaded.predicates, &schema, &host);
    diags.extend(declaration_diags);
    let options = Options { schema: &schema, dialect: target.dialect, endgame_case, declarations: &declarations };
    for source in &rule_sources {
        let checked = driver::check_rule(source, &sources, &options);
        outln!("# {}", source.meta.name);
        match what {
            Dump::Ast => out!("{}", print::dump(&checked.ast)),
            Dump::Eql => outln!("{}", print::eql(&checked.ast)),
            Dump::Ir => match &checked.rule {
                Some(rule) if !checked.has_errors() => out!("{}", eqlc::print_ir::rule(rule)),
                _ => outln!("(no IR: the rule has errors)"),
            },
        }
        diags.extend(checked.diags);
    }
    eprint!("{}", render::human(&diags, &sources, std::io::stderr().is_terminal()));
    if diags.iter().any(Diagnostic::is_error) { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Writes through a temporary file and a rename, so a reader never sees half a bundle.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().and_then(|name| name.to_str()).unwrap_or("bundle");
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}
