//! Rule files: plain `.eql`, TOML in Elastic's shape, and JSON-lines collections.
//!
//! [`load`] does the IO (walking directories, reading files); [`split`] is the pure
//! part that turns one file's text into rule sources. A file that cannot be read or
//! parsed yields a diagnostic and never hides the rules of other files.

use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::source::{FileId, SourceMap, Span};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Descriptive fields of a rule. Unknown keys in rule files are ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleMeta {
    pub name: String,
    pub rule_id: Option<String>,
    pub severity: Option<String>,
    pub risk_score: Option<f64>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Operating systems the rule is written for, when the file says (`os`, `os_list`).
    pub os: Vec<String>,
    /// A `sample` rule: samples per key (Elasticsearch's request parameter of that
    /// name; 1 when the file does not say).
    pub max_samples_per_key: Option<u32>,
    /// What the rule does when it matches besides alerting, as the file states it
    /// (`None`: it only alerts); `driver::check_rule` resolves it against the query.
    pub action: Option<crate::actions::ActionSpec>,
}

/// One rule's query, located in a source file.
#[derive(Clone, Debug)]
pub struct RuleSource {
    pub meta: RuleMeta,
    /// The file holding the query text (the rule file itself, or a file made for a
    /// query that could not be located in it byte for byte).
    pub file: FileId,
    /// Where the query sits in that file.
    pub span: Span,
}

/// The kinds of rule file, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Eql,
    Toml,
    JsonLines,
}

impl FileKind {
    pub fn of(path: &Path) -> Option<FileKind> {
        match path.extension()?.to_str()? {
            "eql" => Some(FileKind::Eql),
            "toml" => Some(FileKind::Toml),
            "jsonl" | "ndjson" => Some(FileKind::JsonLines),
            _ => None,
        }
    }
}

/// What [`load`] read: the rules, the hand-written predicates declared next to them,
/// and the problems met.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<RuleSource>,
    pub predicates: Vec<crate::custom::CustomDef>,
    pub diags: Vec<Diagnostic>,
}

/// The file that makes a directory a rule package (a rule with its hand-written
/// predicates, their sources and fixtures): of such a directory, eqlc reads only it.
pub const PACKAGE_MANIFEST: &str = "manifest.toml";

/// Reads every rule under `paths`. Directories are walked recursively in name order
/// and only `.eql`, `.toml`, `.jsonl` and `.ndjson` files in them are read, except that
/// of a directory holding a [`PACKAGE_MANIFEST`] only the manifest is read; a file
/// named explicitly is read whatever its extension (`.eql` is assumed). TOML files
/// may also declare hand-written predicates (`[[predicate]]`, whose sources are read
/// relative to the file).
pub fn load(paths: &[PathBuf], sources: &mut SourceMap) -> Loaded {
    let mut files: Vec<(PathBuf, FileKind)> = Vec::new();
    let mut diags = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files, &mut diags);
        } else {
            files.push((path.clone(), FileKind::of(path).unwrap_or(FileKind::Eql)));
        }
    }
    let mut rules = Vec::new();
    let mut predicates = Vec::new();
    for (path, kind) in files {
        let display = path.display().to_string();
        let text = if display == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
        } else {
            std::fs::read(&path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        };
        match text {
            Ok(text) => {
                let declares = kind == FileKind::Toml && declares_predicates(&text);
                let (mut found, mut problems) = split(&display, text, kind, sources);
                rules.append(&mut found);
                diags.append(&mut problems);
                if declares && let Some((file, _)) = sources.files().filter(|(_, source)| source.name == display).last() {
                    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                    let mut read = |relative: &str| std::fs::read(dir.join(relative)).map_err(|error| format!("`{}`: {error}", dir.join(relative).display()));
                    let text = sources.get(file).text.clone();
                    let (mut found, mut problems) = crate::custom::parse(&text, file, &mut read);
                    predicates.append(&mut found);
                    diags.append(&mut problems);
                }
            }
            Err(error) => diags.push(Diagnostic::new(Code::E0501, format!("cannot read `{display}`: {error}"))),
        }
    }
    Loaded { rules, predicates, diags }
}

/// Whether a TOML text has `[[predicate]]` tables (checked before parsing it).
pub fn declares_predicates(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|table| table.contains_key("predicate"))
}

fn walk(dir: &Path, files: &mut Vec<(PathBuf, FileKind)>, diags: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            diags.push(Diagnostic::new(Code::E0501, format!("cannot read directory `{}`: {error}", dir.display())));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect();
    paths.sort();
    // A rule package: its manifest names everything else it holds (sources, fixtures).
    if let Some(manifest) = paths.iter().find(|path| path.file_name().is_some_and(|name| name == PACKAGE_MANIFEST)) {
        files.push((manifest.clone(), FileKind::Toml));
        return;
    }
    for path in paths {
        if path.is_dir() {
            walk(&path, files, diags);
        } else if let Some(kind) = FileKind::of(&path) {
            files.push((path, kind));
        }
    }
}

/// Splits one file's text into rule sources, adding the file (and any file made for a
/// relocated query) to `sources`.
pub fn split(name: &str, text: String, kind: FileKind, sources: &mut SourceMap) -> (Vec<RuleSource>, Vec<Diagnostic>) {
    match kind {
        FileKind::Eql => {
            let len = text.len();
            let file = sources.add(name, text);
            let meta = RuleMeta { name: rule_name_from_path(name), ..RuleMeta::default() };
            (vec![RuleSource { meta, file, span: Span::new(0, len) }], Vec::new())
        }
        FileKind::Toml => toml_rule(name, text, sources),
        FileKind::JsonLines => json_lines(name, &text, sources),
    }
}

/// `rules/reverse_shell.eql` → `reverse_shell`.
fn rule_name_from_path(name: &str) -> String {
    Path::new(name).file_stem().and_then(|stem| stem.to_str()).unwrap_or(name).to_string()
}

#[derive(Deserialize)]
struct TomlFile {
    rule: Option<TomlRule>,
    /// Hand-written predicates, read by `custom::parse`.
    predicate: Option<toml::Value>,
}

#[derive(Deserialize)]
struct TomlRule {
    name: Option<String>,
    rule_id: Option<String>,
    id: Option<String>,
    query: Option<toml::Spanned<String>>,
    severity: Option<String>,
    risk_score: Option<f64>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    os_list: Vec<String>,
    max_samples_per_key: Option<u32>,
}

fn toml_rule(name: &str, text: String, sources: &mut SourceMap) -> (Vec<RuleSource>, Vec<Diagnostic>) {
    let parsed: Result<TomlFile, toml::de::Error> = toml::from_str(&text);
    let file = sources.add(name, text);
    let text = &sources.get(file).text;
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let span = error.span().map(|range| Span::new(range.start, range.end)).unwrap_or_default();
            let diag = Diagnostic::new(Code::E0502, format!("`{name}` is not a valid TOML rule file")).primary(span, error.message().to_string()).in_file(file);
            return (Vec::new(), vec![diag]);
        }
    };
    let Some(rule) = parsed.rule else {
        if parsed.predicate.is_some() {
            // A file of predicate declarations only.
            return (Vec::new(), Vec::new());
        }
        let diag = Diagnostic::new(Code::E0503, format!("`{name}` has no `[rule]` table"))
            .primary(Span::new(0, 0), "expected `[rule]` with a `query`")
            .help("a TOML rule file needs `[rule]` with at least `name` and `query`")
            .in_file(file);
        return (Vec::new(), vec![diag]);
    };
    let meta = RuleMeta {
        name: rule.name.unwrap_or_else(|| rule_name_from_path(name)),
        rule_id: rule.rule_id.or(rule.id),
        severity: rule.severity,
        risk_score: rule.risk_score,
        description: rule.description,
        tags: rule.tags,
        os: rule.os_list,
        max_samples_per_key: rule.max_samples_per_key,
        action: None,
    };
    let Some(query) = rule.query else {
        let diag = Diagnostic::new(Code::E0503, format!("rule `{}` has no `query`", meta.name))
            .primary(Span::new(0, 0), "expected `query = '''...'''` under `[rule]`")
            .in_file(file);
        return (Vec::new(), vec![diag]);
    };
    let (action, diags) = crate::actions::parse(&crate::actions::toml_keys(text), file);
    let meta = RuleMeta { action, ..meta };
    let raw = query.span();
    let value = query.into_inner();
    // Locate the query's characters in the file, so that diagnostics point at the real
    // line; quoted forms with escapes fall back to a file of their own.
    let located = locate_string_value(text, raw.start, raw.end, &value);
    let (file, span) = match located {
        Some(start) => (file, Span::new(start, start + value.len())),
        None => {
            let len = value.len();
            (sources.add(format!("{name} (query)"), value), Span::new(0, len))
        }
    };
    (vec![RuleSource { meta, file, span }], diags)
}

/// Finds where the characters of a TOML string value start, given the span of the
/// whole string token, if they appear there unchanged.
fn locate_string_value(text: &str, start: usize, end: usize, value: &str) -> Option<usize> {
    let token = text.get(start..end)?;
    let delimiter = ["'''", "\"\"\"", "'", "\""].into_iter().find(|delimiter| token.starts_with(delimiter))?;
    let mut content_start = start + delimiter.len();
    if delimiter.len() == 3 {
        // A newline right after the opening delimiter is not part of the value.
        if text[content_start..].starts_with("\r\n") {
            content_start += 2;
        } else if text[content_start..].starts_with('\n') {
            content_start += 1;
        }
    }
    (text.get(content_start..content_start + value.len()) == Some(value)).then_some(content_start)
}

#[derive(Deserialize)]
struct JsonRule {
    query: Option<String>,
    name: Option<String>,
    rule_id: Option<String>,
    severity: Option<String>,
    risk_score: Option<f64>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    os: Vec<String>,
    max_samples_per_key: Option<u32>,
}

/// One rule per line; blank lines are skipped. A bad line is reported with its line
/// number and the other lines still load.
fn json_lines(name: &str, text: &str, sources: &mut SourceMap) -> (Vec<RuleSource>, Vec<Diagnostic>) {
    let collection = sources.add(name, text.to_string());
    let mut rules = Vec::new();
    let mut diags = Vec::new();
    let mut offset = 0;
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let line_span = Span::new(line_start, line_start + line.trim_end().len());
        let rule: JsonRule = match serde_json::from_str(trimmed) {
            Ok(rule) => rule,
            Err(error) => {
                let indent = line.len() - line.trim_start().len();
                let at = line_start + indent + error.column().saturating_sub(1);
                let reason = error.to_string();
                let reason = reason.split(" at line ").next().unwrap_or(&reason).to_string();
                diags.push(
                    Diagnostic::new(Code::E0502, format!("line {} of `{name}` is not a JSON rule", idx + 1))
                        .primary(Span::new(at, (at + 1).min(line_span.end as usize)), reason)
                        .in_file(collection),
                );
                continue;
            }
        };
        let Some(query) = rule.query else {
            diags.push(Diagnostic::new(Code::E0503, format!("line {} of `{name}` has no `query`", idx + 1)).primary(line_span, "no query").in_file(collection));
            continue;
        };
        let meta = RuleMeta {
            name: rule.name.unwrap_or_else(|| format!("{}:{}", rule_name_from_path(name), idx + 1)),
            rule_id: rule.rule_id,
            severity: rule.severity,
            risk_score: rule.risk_score,
            description: rule.description,
            tags: rule.tags,
            os: rule.os,
            max_samples_per_key: rule.max_samples_per_key,
            action: None,
        };
        // The action keys, located in the line (read again, as a whole object, only
        // when the line may have them).
        let object = if line.contains("\"action") || line.contains("\"kill") { serde_json::from_str(trimmed).ok() } else { None };
        let meta = match object {
            Some(serde_json::Value::Object(object)) => {
                let (action, mut problems) = crate::actions::parse(&crate::actions::json_keys(&object, line, line_start), collection);
                diags.append(&mut problems);
                RuleMeta { action, ..meta }
            }
            _ => meta,
        };
        let len = query.len();
        let file = sources.add(format!("{name} (line {})", idx + 1), query);
        rules.push(RuleSource { meta, file, span: Span::new(0, len) });
    }
    (rules, diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_queries_point_into_the_file() {
        let text = "[rule]\nname = \"x\"\nquery = '''\nprocess where true\n'''\n".to_string();
        let mut sources = SourceMap::new();
        let (rules, diags) = split("r.toml", text, FileKind::Toml, &mut sources);
        assert!(diags.is_empty());
        let file = sources.get(rules[0].file);
        assert_eq!(file.name, "r.toml");
        assert_eq!(file.slice(rules[0].span), "process where true\n");
        assert_eq!(file.line_col(rules[0].span.start as usize), (4, 1));
    }

    #[test]
    fn escaped_queries_get_their_own_file() {
        let text = "[rule]\nname = \"x\"\nquery = \"process where a == \\\"b\\\"\"\n".to_string();
        let mut sources = SourceMap::new();
        let (rules, _) = split("r.toml", text, FileKind::Toml, &mut sources);
        let file = sources.get(rules[0].file);
        assert_eq!(file.name, "r.toml (query)");
        assert_eq!(file.slice(rules[0].span), "process where a == \"b\"");
    }

    #[test]
    fn bad_json_lines_are_reported_and_skipped() {
        let text = "{\"query\": \"any where true\"}\n{oops\n{\"query\": \"any where false\"}\n";
        let mut sources = SourceMap::new();
        let (rules, diags) = split("c.jsonl", text.to_string(), FileKind::JsonLines, &mut sources);
        assert_eq!(rules.len(), 2);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("line 2"));
    }
}
