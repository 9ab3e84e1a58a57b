//! Snapshot suites driven by data files: add a file under `tests/data/parse/` or
//! `tests/data/check/`, run `cargo xtask bless`, and review the new snapshot.
//!
//! Each snapshot holds the source and what eqlc says about it, so a reviewer sees
//! both together.

use eqlc::codes::Code;
use eqlc::rules::FileKind;
use eqlc::{print, print_ir, render};
use std::path::Path;
use tests::{FileOptions, check_text, repo_root};

fn settings(suite: &str) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("snapshots").join(suite));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

fn header(options: &FileOptions) -> String {
    format!("schema={} dialect={} case={:?}", options.schema, options.dialect, options.endgame_case)
}

/// The syntax tree and syntax diagnostics of each `.eql` file in `tests/data/parse/`.
#[test]
fn parse() {
    settings("parse").bind(|| {
        insta::glob!("../data/parse", "*.eql", |path| {
            let text = std::fs::read_to_string(path).unwrap();
            let options = FileOptions::parse(&text);
            let name = file_name(path);
            let mut sources = eqlc::source::SourceMap::new();
            let file = sources.add(name.clone(), text.clone());
            let (ast, mut diags) = eqlc::parse::file(&text, 0, options.dialect);
            for diag in &mut diags {
                diag.file = Some(file);
            }
            let snapshot = format!(
                "----- SOURCE ({})\n{}\n----- AST\n{}----- DIAGNOSTICS\n{}",
                header(&options),
                text.trim_end(),
                print::dump(&ast),
                render::human(&diags, &sources, false)
            );
            insta::assert_snapshot!("parse", snapshot);
        });
    });
}

/// The diagnostics, and the typed IR (and the rule's action) when there are no errors,
/// of each rule file in `tests/data/check/`.
#[test]
fn check() {
    settings("check").bind(|| {
        insta::glob!("../data/check", "*.*", |path| {
            let text = std::fs::read_to_string(path).unwrap();
            let options = FileOptions::parse(&text);
            let kind = FileKind::of(path).expect("check data files are .eql, .toml or .jsonl");
            let name = file_name(path);
            let (sources, checked, mut diags) = check_text(&name, &text, kind, &options);
            let mut ir = String::new();
            for rule in &checked {
                diags.extend(rule.diags.iter().cloned());
                if let Some(typed) = &rule.rule
                    && !rule.has_errors()
                {
                    ir.push_str(&format!("# {}\n{}", rule.meta.name, print_ir::rule(typed)));
                    if let Some(action) = &rule.action {
                        ir.push_str(&format!("action: {action}\n"));
                    }
                }
            }
            let snapshot = format!(
                "----- SOURCE ({})\n{}\n----- DIAGNOSTICS\n{}----- IR\n{}",
                header(&options),
                text.trim_end(),
                render::human(&diags, &sources, false),
                ir
            );
            insta::assert_snapshot!("check", snapshot);
        });
    });
}

/// Every diagnostic code is shown by at least one snapshot (except those that need IO
/// failures or eqlc bugs to appear), so each has a worked example.
#[test]
fn every_code_has_a_snapshot() {
    let mut all = String::new();
    for suite in ["parse", "check"] {
        let dir = repo_root().join("snapshots").join(suite);
        for entry in std::fs::read_dir(&dir).unwrap() {
            all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
    }
    // IO failures, schema files and eqlc bugs cannot appear in a rule snapshot; size limits
    // need inputs too large to keep as data (a unit test in eqlc::parse covers them).
    // E0701 comes from `eqlc build`, not `check`; the CLI tests cover it.
    let untestable = [Code::E0501, Code::E0601, Code::E0701, Code::E0902, Code::B0001];
    let missing: Vec<&str> =
        Code::ALL.iter().filter(|code| !untestable.contains(code) && !all.contains(&format!("[{}]", code.as_str()))).map(|code| code.as_str()).collect();
    assert!(missing.is_empty(), "codes without a snapshot example: {missing:?}; add a file under tests/data/check/");
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}
