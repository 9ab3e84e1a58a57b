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
        Command::Check { target, report, paths } => check(&target, &report, &paths),
        Command::Explain { code, list } => explain(code.as_deref(), list),
        Command::Dump { target, what, paths } => dump(&target, what, &paths),
        Command::Schema { schema } => match load_schema(&schema) {
            Ok(schema) => {
                print!("{}", schema.to_toml());
                ExitCode::SUCCESS
            }
            Err(message) => usage_error(&message),
        },
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn load_schema(name: &str) -> Result<Schema, String> {
    if let Some(schema) = Schema::builtin(name) {
        return Ok(schema);
    }
    let path = PathBuf::from(name);
    if !path.exists() {
        return Err(format!("no built-in schema `{name}` and no such file; built-in schemas: {}", Schema::builtin_names().join(", ")));
    }
    let text = std::fs::read_to_string(&path).map_err(|error| format!("cannot read schema `{name}`: {error}"))?;
    let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or(name);
    Schema::from_toml(stem, &text).map_err(|error| format!("[{}] invalid schema {name}: {error}", Code::E0601))
}

fn check(target: &Target, report: &Report, paths: &[PathBuf]) -> ExitCode {
    let schema = match load_schema(&target.schema) {
        Ok(schema) => schema,
        Err(message) => return usage_error(&message),
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
            Some(code) => filters.push(code),
            None => return usage_error(&format!("unknown diagnostic code `{text}`; `eqlc explain --list` lists them")),
        }
    }
    let (allowed, denied) = filters.split_at(report.allow.len());
    let endgame_case = if target.case_sensitive { EndgameCase::Sensitive } else { EndgameCase::Insensitive };
    let options = Options { schema: &schema, dialect: target.dialect, endgame_case, declarations: &declarations };

    let mut sources = SourceMap::new();
    let (rule_sources, load_diags) = rules::load(paths, &mut sources);
    let io_failed = load_diags.iter().any(|diag| diag.code == Code::E0501);
    let checked = std::panic::catch_unwind(|| driver::check_all(&rule_sources, &sources, &options));
    let checked: Vec<Checked> = match checked {
        Ok(checked) => checked,
        Err(_) => {
            let bug = Diagnostic::new(Code::B0001, "eqlc panicked while checking these rules")
                .note("this is a bug in eqlc; please report it with the rules that caused it");
            eprint!("{}", render::human(&[bug], &sources, false));
            return ExitCode::from(2);
        }
    };

    let mut diags: Vec<Diagnostic> = load_diags;
    for rule in &checked {
        diags.extend(rule.diags.iter().cloned());
    }
    diags.retain(|diag| !allowed.contains(&diag.code));
    for diag in &mut diags {
        if diag.severity == Severity::Warning && (report.deny_warnings || denied.contains(&diag.code)) {
            diag.severity = Severity::Error;
        }
    }
    let errors = diags.iter().filter(|diag| diag.is_error()).count();
    let warnings = diags.len() - errors;
    let failed_rules = checked
        .iter()
        .filter(|rule| rule.diags.iter().any(|diag| diag.is_error() || (diag.severity == Severity::Warning && denied.contains(&diag.code))))
        .count();

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
    if io_failed {
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
            println!("{}  {:<8} {:<26} {}", code.as_str(), code.severity().as_str(), code.slug(), code.title());
        }
        return ExitCode::SUCCESS;
    }
    let text = code.unwrap_or_default();
    match Code::parse(text) {
        Some(code) => {
            print!("{}", code.explanation());
            ExitCode::SUCCESS
        }
        None => usage_error(&format!("unknown code `{text}`; `eqlc explain --list` lists every code")),
    }
}

fn dump(target: &Target, what: Dump, paths: &[PathBuf]) -> ExitCode {
    let schema = match load_schema(&target.schema) {
        Ok(schema) => schema,
        Err(message) => return usage_error(&message),
    };
    let declarations: Vec<Declaration> = target.declarations.iter().filter_map(|text| Declaration::parse(text).ok()).collect();
    let endgame_case = if target.case_sensitive { EndgameCase::Sensitive } else { EndgameCase::Insensitive };
    let options = Options { schema: &schema, dialect: target.dialect, endgame_case, declarations: &declarations };
    let mut sources = SourceMap::new();
    let (rule_sources, mut diags) = rules::load(paths, &mut sources);
    for source in &rule_sources {
        let checked = driver::check_rule(source, &sources, &options);
        println!("# {}", source.meta.name);
        match what {
            Dump::Ast => print!("{}", print::dump(&checked.ast)),
            Dump::Eql => println!("{}", print::eql(&checked.ast)),
            Dump::Ir => match &checked.rule {
                Some(rule) if !checked.has_errors() => print!("{}", eqlc::print_ir::rule(rule)),
                _ => println!("(no IR: the rule has errors)"),
            },
        }
        diags.extend(checked.diags);
    }
    eprint!("{}", render::human(&diags, &sources, std::io::stderr().is_terminal()));
    if diags.iter().any(Diagnostic::is_error) { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
