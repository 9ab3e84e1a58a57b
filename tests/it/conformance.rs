//! The reference suites' queries (../shared/conformance, test input only) are all
//! accepted by the checker in their dialect. Running them against events arrives with
//! the runtime.

use eqlc::diag::Diagnostic;
use eqlc::rules::FileKind;
use std::path::Path;
use tests::{FileOptions, check_text, es_toml_nulls, shared_dir};

fn errors_of(name: &str, query: &str, header: &str) -> Vec<String> {
    let options = FileOptions::parse(header);
    let (_, checked, _) = check_text(name, query, FileKind::Eql, &options);
    checked.iter().flat_map(|rule| rule.diags.iter()).filter(|diag| Diagnostic::is_error(diag)).map(|diag| format!("{}: {}", diag.code, diag.message)).collect()
}

fn queries_of(path: &Path, es_nulls: bool) -> Vec<String> {
    let mut text = std::fs::read_to_string(path).unwrap();
    if es_nulls {
        text = es_toml_nulls(&text);
    }
    let document: toml::Table = toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut queries = Vec::new();
    for value in document.values() {
        let tables: Vec<&toml::Table> = match value {
            toml::Value::Array(items) => items.iter().filter_map(toml::Value::as_table).collect(),
            toml::Value::Table(table) => vec![table],
            _ => Vec::new(),
        };
        queries.extend(tables.iter().filter_map(|table| table.get("query")?.as_str().map(str::to_string)));
    }
    queries
}

#[test]
fn python_suite_queries_check_in_the_endgame_dialect() {
    let Some(shared) = shared_dir("python eql conformance queries") else { return };
    let queries = queries_of(&shared.join("conformance/eql-python/test_queries.toml"), false);
    assert_eq!(queries.len(), 241);
    let header = "// eqlc: schema=dynamic dialect=endgame declare=echo(any)->any declare=reverse(keyword)->keyword";
    let failures: Vec<String> = queries
        .iter()
        .enumerate()
        .filter_map(|(idx, query)| {
            let errors = errors_of(&format!("query {}", idx + 1), query, header);
            (!errors.is_empty()).then(|| format!("query {} `{}`: {errors:?}", idx + 1, query.trim()))
        })
        .collect();
    assert!(failures.is_empty(), "{} queries rejected:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn elasticsearch_suite_queries_check_in_the_elasticsearch_dialect() {
    let Some(shared) = shared_dir("Elasticsearch EQL conformance queries") else { return };
    let dir = shared.join("conformance/elasticsearch");
    let mut total = 0;
    let mut failures = Vec::new();
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).filter(|path| path.extension().is_some_and(|ext| ext == "toml")).collect();
    files.sort();
    for file in files {
        for (idx, query) in queries_of(&file, true).iter().enumerate() {
            total += 1;
            let errors = errors_of(&format!("{} #{}", file.display(), idx + 1), query, "// eqlc: schema=dynamic");
            if !errors.is_empty() {
                failures.push(format!("{} #{} `{}`: {errors:?}", file.file_name().unwrap().to_string_lossy(), idx + 1, query.trim()));
            }
        }
    }
    assert_eq!(total, 301, "the Elasticsearch QA suites hold 301 active queries");
    assert!(failures.is_empty(), "{} queries rejected:\n{}", failures.len(), failures.join("\n"));
}
