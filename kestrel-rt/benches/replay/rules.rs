//! The bundles the replay bench runs, built with eqlc's library as `eqlc build` does:
//! one query, or every Linux rule of ../shared/corpus that builds.

use eqlc::check::Options;
use eqlc::codes::Code;
use eqlc::dialect::{Dialect, EndgameCase};
use eqlc::driver::{self, Checked};
use eqlc::rules::{self, FileKind};
use eqlc::source::SourceMap;
use kestrel_bundle::schema::Schema;
use std::path::Path;

fn linux_schema() -> Schema {
    Schema::builtin("linux").expect("the linux schema is built in")
}

fn check(name: &str, query: &str, dialect: Dialect, schema: &Schema, sources: &mut SourceMap) -> Checked {
    let options = Options { schema, dialect, endgame_case: EndgameCase::Insensitive, declarations: &[] };
    let (rule_sources, _) = rules::split(&format!("{name}.eql"), query.to_string(), FileKind::Eql, sources);
    driver::check_rule(&rule_sources[0], sources, &options)
}

fn messages(diags: &[eqlc::diag::Diagnostic]) -> String {
    diags.iter().filter(|diag| diag.is_error()).map(|diag| format!("{}: {}", diag.code, diag.message)).collect::<Vec<_>>().join("; ")
}

/// The bundle of one query against the linux schema.
pub fn single(query: &str, dialect: Dialect) -> Result<Vec<u8>, String> {
    let schema = linux_schema();
    let mut sources = SourceMap::new();
    let mut rule = check("bench", query, dialect, &schema, &mut sources);
    if rule.has_errors() {
        return Err(format!("`{query}` does not check: {}", messages(&rule.diags)));
    }
    rule.meta.rule_id = Some("bench".into());
    let (bytes, diags) = driver::build(std::slice::from_ref(&rule), &schema, &[]);
    bytes.ok_or_else(|| format!("`{query}` does not build: {}", messages(&diags)))
}

/// Every Linux rule of the corpus that `eqlc build --schema linux` compiles, in one bundle.
pub struct Corpus {
    pub bundle: Vec<u8>,
    /// Rules whose `os` lists linux.
    pub linux: usize,
    /// Of those, rules with check errors (mostly fields of non-sensor data sources).
    pub check_errors: usize,
    /// Rules the back end refuses with E0701 (joins, samples, sequences with missing
    /// steps, `fork` or pipes other than head and tail, for now).
    pub unsupported: usize,
    /// Rules the back end refuses for another reason.
    pub build_errors: usize,
    /// Rules in the bundle.
    pub rules: usize,
}

/// `None` when the corpus is absent.
pub fn corpus(shared: &Path) -> Option<Result<Corpus, String>> {
    let dir = shared.join("corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir).ok()?.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect();
    files.retain(|path| path.to_string_lossy().ends_with(".jsonl"));
    files.sort();
    if files.is_empty() {
        return None;
    }
    let schema = linux_schema();
    let mut sources = SourceMap::new();
    let mut built: Vec<Checked> = Vec::new();
    let mut stats = Corpus { bundle: Vec::new(), linux: 0, check_errors: 0, unsupported: 0, build_errors: 0, rules: 0 };
    for path in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => return Some(Err(format!("cannot read {}: {error}", path.display()))),
        };
        for (number, line) in text.lines().enumerate() {
            let Ok(rule) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            // As tests/it/corpus.rs selects them: `os` lists linux.
            if !rule["os"].as_array().is_some_and(|list| list.iter().any(|os| os == "linux")) {
                continue;
            }
            let Some(query) = rule["query"].as_str() else { continue };
            stats.linux += 1;
            let name = format!("{}:{}", path.file_name().unwrap_or_default().to_string_lossy(), number + 1);
            let mut checked = check(&name, query, Dialect::Elasticsearch, &schema, &mut sources);
            if checked.has_errors() {
                stats.check_errors += 1;
                continue;
            }
            checked.meta.rule_id = Some(format!("corpus-{}", built.len()));
            checked.meta.name = format!("{} ({name})", rule["name"].as_str().unwrap_or("?"));
            // Alone first, so that one rule the back end refuses does not take the others down.
            let (bytes, diags) = driver::build(std::slice::from_ref(&checked), &schema, &[]);
            if bytes.is_some() {
                built.push(checked);
            } else if diags.iter().any(|diag| diag.code == Code::E0701) {
                stats.unsupported += 1;
            } else {
                stats.build_errors += 1;
            }
        }
    }
    stats.rules = built.len();
    let (bytes, diags) = driver::build(&built, &schema, &[]);
    Some(match bytes {
        Some(bytes) => {
            stats.bundle = bytes;
            Ok(stats)
        }
        None => Err(format!("the {} corpus rules do not build together: {}", built.len(), messages(&diags))),
    })
}
