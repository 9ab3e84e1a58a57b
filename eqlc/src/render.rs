//! Rendering diagnostics for people (codespan-reporting), and for machines (JSON and
//! SARIF 2.1.0). This is the only module that knows codespan-reporting exists.

use crate::codes::Code;
use crate::diag::{Diagnostic, Severity};
use crate::source::{FileId, SourceMap};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term::{self, termcolor};
use serde_json::{Value, json};
use std::ops::Range;

impl<'a> Files<'a> for SourceMap {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(&self.get(id).name)
    }

    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(&self.get(id).text)
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        let starts = self.get(id).line_starts();
        Ok(match starts.binary_search(&byte_index) {
            Ok(line) => line,
            Err(next) => next - 1,
        })
    }

    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, FilesError> {
        let file = self.get(id);
        let starts = file.line_starts();
        let start = *starts.get(line_index).ok_or(FilesError::LineTooLarge { given: line_index, max: starts.len() - 1 })?;
        let end = starts.get(line_index + 1).copied().unwrap_or(file.text.len());
        Ok(start..end)
    }
}

fn to_codespan(diag: &Diagnostic, sources: &SourceMap) -> cs::Diagnostic<FileId> {
    let severity = match diag.severity {
        Severity::Bug => cs::Severity::Bug,
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let mut out = cs::Diagnostic::new(severity).with_code(diag.code.as_str()).with_message(&diag.message);
    if let Some(file) = diag.file {
        let len = sources.get(file).text.len();
        out = out.with_labels_iter(diag.labels.iter().map(|label| {
            let range = (label.span.start as usize).min(len)..(label.span.end as usize).min(len);
            let base = if label.primary { cs::Label::primary(file, range) } else { cs::Label::secondary(file, range) };
            base.with_message(&label.message)
        }));
    }
    let mut notes: Vec<String> = diag.notes.iter().map(|note| format!("note: {note}")).collect();
    notes.extend(diag.help.iter().map(|help| format!("help: {help}")));
    out.with_notes(notes)
}

/// Renders diagnostics as text. Without colour the output is stable (trailing spaces
/// trimmed), which is what snapshot tests store.
pub fn human(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    let config = term::Config::default();
    let mut out = String::new();
    for diag in diags {
        let diagnostic = to_codespan(diag, sources);
        if color {
            let mut buffer = termcolor::Buffer::ansi();
            if term::emit_to_write_style(&mut buffer, &config, sources, &diagnostic).is_ok() {
                out.push_str(&String::from_utf8_lossy(buffer.as_slice()));
            }
        } else if let Ok(text) = term::emit_into_string(&config, sources, &diagnostic) {
            for line in text.lines() {
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
    }
    out
}

/// Where a diagnostic points, one-based.
fn location(diag: &Diagnostic, sources: &SourceMap) -> Option<(String, usize, usize, usize, usize)> {
    let file = sources.get(diag.file?);
    let span = diag.primary_span()?;
    let (line, column) = file.line_col(span.start as usize);
    let (end_line, end_column) = file.line_col(span.end as usize);
    Some((file.name.clone(), line, column, end_line, end_column))
}

/// One JSON object per diagnostic: code, severity, message, file, one-based line and
/// column ranges of every label, notes and help.
pub fn json(diags: &[Diagnostic], sources: &SourceMap) -> Value {
    let items: Vec<Value> = diags
        .iter()
        .map(|diag| {
            let file = diag.file.map(|file| sources.get(file));
            let labels: Vec<Value> = diag
                .labels
                .iter()
                .map(|label| {
                    let (line, column, end_line, end_column) = match file {
                        Some(file) => {
                            let (line, column) = file.line_col(label.span.start as usize);
                            let (end_line, end_column) = file.line_col(label.span.end as usize);
                            (line, column, end_line, end_column)
                        }
                        None => (0, 0, 0, 0),
                    };
                    json!({
                        "primary": label.primary,
                        "message": label.message,
                        "line": line, "column": column, "end_line": end_line, "end_column": end_column,
                        "byte_start": label.span.start, "byte_end": label.span.end,
                    })
                })
                .collect();
            let mut object = json!({
                "code": diag.code.as_str(),
                "name": diag.code.slug(),
                "severity": diag.severity.as_str(),
                "message": diag.message,
                "file": file.map(|file| file.name.as_str()),
                "labels": labels,
                "notes": diag.notes,
                "help": diag.help,
            });
            if let Some((_, line, column, _, _)) = location(diag, sources) {
                object["line"] = json!(line);
                object["column"] = json!(column);
            }
            object
        })
        .collect();
    Value::Array(items)
}

/// A SARIF 2.1.0 log of one run, for code-scanning tools.
pub fn sarif(diags: &[Diagnostic], sources: &SourceMap) -> Value {
    let mut used: Vec<Code> = diags.iter().map(|diag| diag.code).collect();
    used.sort();
    used.dedup();
    let rules: Vec<Value> = used
        .iter()
        .map(|code| {
            json!({
                "id": code.as_str(),
                "name": code.slug(),
                "shortDescription": { "text": code.title() },
                "fullDescription": { "text": code.explanation() },
                "defaultConfiguration": { "level": sarif_level(code.severity()) },
                "help": { "text": format!("Run `eqlc explain {code}` for details.") },
            })
        })
        .collect();
    let results: Vec<Value> = diags
        .iter()
        .map(|diag| {
            let mut message = diag.message.clone();
            for help in &diag.help {
                message.push_str(&format!("\nhelp: {help}"));
            }
            let mut result = json!({
                "ruleId": diag.code.as_str(),
                "ruleIndex": used.iter().position(|code| *code == diag.code),
                "level": sarif_level(diag.severity),
                "message": { "text": message },
            });
            if let Some((name, line, column, end_line, end_column)) = location(diag, sources) {
                let mut related = Vec::new();
                if let Some(file) = diag.file.map(|file| sources.get(file)) {
                    for (idx, label) in diag.labels.iter().filter(|label| !label.primary).enumerate() {
                        let (start_line, start_column) = file.line_col(label.span.start as usize);
                        let (stop_line, stop_column) = file.line_col(label.span.end as usize);
                        related.push(json!({
                            "id": idx,
                            "message": { "text": label.message },
                            "physicalLocation": {
                                "artifactLocation": { "uri": uri(&name) },
                                "region": { "startLine": start_line, "startColumn": start_column, "endLine": stop_line, "endColumn": stop_column },
                            },
                        }));
                    }
                }
                result["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&name) },
                        "region": { "startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column },
                    },
                }]);
                if !related.is_empty() {
                    result["relatedLocations"] = Value::Array(related);
                }
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "eqlc",
                "informationUri": "https://github.com/kestrel-edr/kestrel",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Bug | Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A file name as a relative URI (SARIF artifact locations are URIs).
fn uri(name: &str) -> String {
    let path = name.split(" (").next().unwrap_or(name);
    let path = path.strip_prefix("./").unwrap_or(path);
    path.chars()
        .map(|ch| match ch {
            ' ' => "%20".to_string(),
            '#' => "%23".to_string(),
            '%' => "%25".to_string(),
            '?' => "%3F".to_string(),
            ch => ch.to_string(),
        })
        .collect()
}
