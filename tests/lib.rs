//! Shared helpers for Kestrel's data-driven suites in `it/`.
//!
//! Test data lives in `tests/data/<suite>/`; snapshots in `snapshots/<suite>/` at the
//! repository root. Third-party suites are read from `../shared` at test time and are
//! skipped, loudly, where that directory is absent.

use eqlc::check::Options;
use eqlc::diag::Diagnostic;
use eqlc::dialect::{Dialect, EndgameCase};
use eqlc::driver::{self, Checked};
use eqlc::functions::Declaration;
use eqlc::rules::{self, FileKind};
use eqlc::source::SourceMap;
use kestrel_bundle::schema::Schema;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repository").to_path_buf()
}

/// `../shared` beside the repository, or `None` with a message saying what is skipped.
/// A binary of this workspace build (`eqlc`, `kestrel`), beside the test binary
/// (`target/<profile>/`). The tests crate cannot name another package's binary with
/// `CARGO_BIN_EXE_*`; `cargo test --workspace` builds both (their own tests need them).
pub fn workspace_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    binary.is_file().then_some(binary)
}

pub fn shared_dir(what: &str) -> Option<PathBuf> {
    let dir = repo_root().join("../shared");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {what}: ../shared is not present beside the repository ({})", dir.display());
        None
    }
}

/// Options written at the top of a data file, as `// eqlc: key=value ...` lines (`# eqlc:`
/// in TOML files):
/// `schema=linux|dynamic`, `dialect=elasticsearch|endgame`, `case=sensitive`,
/// `declare=name(type)->type` (no spaces).
#[derive(Clone, Debug)]
pub struct FileOptions {
    pub schema: String,
    pub dialect: Dialect,
    pub endgame_case: EndgameCase,
    pub declarations: Vec<Declaration>,
}

impl FileOptions {
    pub fn parse(text: &str) -> FileOptions {
        let mut options =
            FileOptions { schema: "linux".to_string(), dialect: Dialect::Elasticsearch, endgame_case: EndgameCase::Insensitive, declarations: Vec::new() };
        for line in text.lines() {
            let Some(settings) = line.trim().strip_prefix("// eqlc:").or_else(|| line.trim().strip_prefix("# eqlc:")) else { continue };
            for setting in settings.split_whitespace() {
                let (key, value) = setting.split_once('=').unwrap_or((setting, ""));
                match key {
                    "schema" => options.schema = value.to_string(),
                    "dialect" => options.dialect = value.parse().expect("valid dialect in test header"),
                    "case" => options.endgame_case = if value == "sensitive" { EndgameCase::Sensitive } else { EndgameCase::Insensitive },
                    "declare" => options.declarations.push(Declaration::parse(value).expect("valid declaration in test header")),
                    other => panic!("unknown test header setting `{other}`"),
                }
            }
        }
        options
    }

    pub fn schema(&self) -> Schema {
        Schema::builtin(&self.schema).unwrap_or_else(|| panic!("unknown schema `{}` in test header", self.schema))
    }
}

/// Checks every rule of one file's text, as `eqlc check` would.
pub fn check_text(name: &str, text: &str, kind: FileKind, options: &FileOptions) -> (SourceMap, Vec<Checked>, Vec<Diagnostic>) {
    let schema = options.schema();
    let check_options = Options { schema: &schema, dialect: options.dialect, endgame_case: options.endgame_case, declarations: &options.declarations };
    let mut sources = SourceMap::new();
    let (rule_sources, mut load_diags) = rules::split(name, text.to_string(), kind, &mut sources);
    // Hand-written predicates declared in the file, their sources read relative to
    // tests/data/check/.
    let mut declarations = options.declarations.clone();
    if kind == FileKind::Toml
        && rules::declares_predicates(text)
        && let Some((file, _)) = sources.files().find(|(_, source)| source.name == name)
    {
        let dir = repo_root().join("tests/data/check");
        let (predicates, diags) = eqlc::custom::parse(text, file, &mut |path| std::fs::read(dir.join(path)).map_err(|error| error.to_string()));
        load_diags.extend(diags);
        let (all, declaration_diags) = eqlc::custom::declare(&predicates, &schema, &declarations);
        load_diags.extend(declaration_diags);
        declarations = all;
    }
    let check_options = Options { declarations: &declarations, ..check_options };
    let checked = driver::check_all(&rule_sources, &sources, &check_options);
    (sources, checked, load_diags)
}

/// Reads a JSON-lines corpus file into `(line number, rule object)` pairs.
pub fn read_jsonl(path: &Path) -> Vec<(usize, serde_json::Value)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(idx, line)| (idx + 1, serde_json::from_str(line).unwrap_or_else(|error| panic!("{}:{}: {error}", path.display(), idx + 1))))
        .collect()
}

/// The Elasticsearch QA TOML files contain `null` tokens, which TOML does not have.
/// They only appear as list items (`join_keys = [null, "x"]`); this turns them into
/// the string `"\u{0}null"` outside of strings, so the file parses.
pub fn es_toml_nulls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.trim_start().starts_with("join_keys") || line.trim_start().starts_with("expected_event_ids") {
            let mut in_string = false;
            let chars: Vec<char> = line.chars().collect();
            let mut idx = 0;
            while idx < chars.len() {
                let ch = chars[idx];
                if ch == '"' {
                    in_string = !in_string;
                }
                if !in_string && line[line.char_indices().nth(idx).map_or(0, |(pos, _)| pos)..].starts_with("null") {
                    out.push_str("\"\\u0000null\"");
                    idx += 4;
                    continue;
                }
                out.push(ch);
                idx += 1;
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Builds a bundle in-process the way `eqlc build` does (eqlc/src/main.rs): load the rule
/// files, check each rule and then the set, and run the back end (`driver::build`).
/// Returns the bundle's bytes, or the rendered diagnostics when a rule has errors or the
/// back end refuses it.
pub fn build_bundle(paths: &[PathBuf], options: &FileOptions) -> Result<Vec<u8>, String> {
    let schema = options.schema();
    let check_options = Options { schema: &schema, dialect: options.dialect, endgame_case: options.endgame_case, declarations: &options.declarations };
    let mut sources = SourceMap::new();
    driver::build_paths(paths, &check_options, &mut sources).map_err(|diags| eqlc::render::human(&diags, &sources, false))
}

/// The rule files under `dir` (recursively, sorted), as eqlc finds them: of a rule
/// package (a directory with a `manifest.toml`), only the manifest.
pub fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let manifest = dir.join(eqlc::rules::PACKAGE_MANIFEST);
        if manifest.is_file() {
            files.push(manifest);
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if FileKind::of(&path).is_some() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
