//! Architecture invariants, written as absences (see ARCHITECTURE.md) and checked here.

use eqlc::codes::Code;
use std::path::Path;
use tests::repo_root;

/// The runtime never links the compiler or its front-end machinery.
#[test]
fn runtime_does_not_depend_on_the_compiler() {
    let tree = |extra: &[&str]| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let output = std::process::Command::new(cargo)
            .args(["tree", "-p", "kestrel-rt", "--edges", "normal,build", "--prefix", "none", "--format", "{p}"])
            .args(extra)
            .current_dir(repo_root())
            .output()
            .expect("cargo tree runs");
        assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let names = |tree: &str| tree.lines().filter_map(|line| line.split_whitespace().next().map(str::to_owned)).collect::<Vec<_>>();
    let all = tree(&[]);
    for forbidden in ["eqlc", "lalrpop", "lalrpop-util", "codespan-reporting"] {
        assert!(!names(&all).iter().any(|name| name == forbidden), "kestrel-rt depends on {forbidden}:\n{all}");
    }
    // wasmtime-environ uses wasm-encoder internally; the runtime itself never does.
    let direct = tree(&["--depth", "1"]);
    assert!(!names(&direct).iter().any(|name| name == "wasm-encoder"), "kestrel-rt depends on wasm-encoder directly:\n{direct}");
    assert!(names(&direct).iter().any(|name| name == "kestrel-bundle"), "kestrel-rt should depend on the contract crate");
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Files stay small enough to read in one sitting.
#[test]
fn source_files_stay_under_a_thousand_lines() {
    let mut files = Vec::new();
    for krate in ["eqlc", "kestrel-bundle", "kestrel-rt", "kestrel-sensor", "tests", "xtask"] {
        rust_files(&repo_root().join(krate), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines > 1000).then(|| format!("{} has {lines} lines", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

/// Library crates that parse untrusted input contain no `unsafe`, with audited
/// exceptions: the dispatch to the runtime's SIMD JSON skippers (`json_scan::skip_with`,
/// and `masks_with` for its tests), to its SIMD prefilter test
/// (`json_scan::plain_without_with`), its SIMD string-end search
/// (`json_scan::find_quote_or_backslash`) and its cache hint (`cpu::prefetch`), one call each.
#[test]
fn libraries_forbid_unsafe_code() {
    for lib in ["eqlc/src/lib.rs", "kestrel-bundle/src/lib.rs", "kestrel-sensor/src/lib.rs"] {
        let text = std::fs::read_to_string(repo_root().join(lib)).unwrap();
        assert!(text.contains("#![forbid(unsafe_code)]"), "{lib} must forbid unsafe code");
    }
    let runtime = std::fs::read_to_string(repo_root().join("kestrel-rt/src/lib.rs")).unwrap();
    assert!(runtime.contains("#![deny(unsafe_code)]"), "kestrel-rt must deny unsafe code");
    let mut allowed = Vec::new();
    let mut stack = vec![repo_root().join("kestrel-rt/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (number, line) in text.lines().enumerate() {
                    if line.contains("allow(unsafe_code)") || line.trim_start().starts_with("unsafe") || line.contains(" unsafe {") {
                        allowed.push(format!("{}:{}", path.file_name().unwrap().to_string_lossy(), number + 1));
                    }
                }
            }
        }
    }
    let in_file = |file: &str| allowed.iter().filter(|place| place.starts_with(&format!("{file}:"))).count();
    assert!(
        in_file("json_scan.rs") == 8 && in_file("cpu.rs") == 2 && allowed.len() == 10,
        "the only `unsafe` in kestrel-rt is json_scan::skip_with, json_scan::masks_with (tests), json_scan::plain_without_with, json_scan::find_quote_or_backslash and cpu::prefetch (an allow and one block each), found {allowed:?}"
    );
}

/// No pending snapshots are committed, and no snapshot is orphaned by a deleted case.
#[test]
fn snapshots_are_reviewed_and_have_cases() {
    for suite in ["parse", "check"] {
        let dir = repo_root().join("snapshots").join(suite);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            assert!(!name.ends_with(".snap.new"), "unreviewed snapshot {suite}/{name}: run `cargo xtask bless` and review it");
            let case = name.trim_start_matches(&format!("{suite}@")).trim_end_matches(".snap");
            assert!(repo_root().join("tests/data").join(suite).join(case).exists(), "snapshot {suite}/{name} has no case in tests/data/{suite}/");
        }
    }
}

/// Every code has its page in docs/errors, and every page belongs to a code.
#[test]
fn every_code_has_an_explanation_page() {
    for code in Code::ALL {
        let page = code.explanation();
        assert!(page.starts_with(&format!("# {}: {}", code.as_str(), code.slug())), "docs/errors/{}.md must start with `# {}: {}`", code, code, code.slug());
        assert!(page.lines().count() > 5, "docs/errors/{code}.md is too short to explain anything");
    }
    for entry in std::fs::read_dir(repo_root().join("docs/errors")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let code = name.trim_end_matches(".md");
        assert!(Code::parse(code).is_some(), "docs/errors/{name} documents no code");
    }
}

/// The typed IR never refers to the dialect: the checker decides every dialect question.
#[test]
fn typed_ir_does_not_know_the_dialect() {
    for file in ["eqlc/src/tir.rs", "eqlc/src/print_ir.rs"] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        let code: String = text.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        assert!(!code.contains("dialect") && !code.contains("Dialect"), "{file} must not depend on the dialect");
    }
}

/// docs/language.md documents every built-in function.
#[test]
fn language_reference_lists_every_function() {
    let text = std::fs::read_to_string(repo_root().join("docs/language.md")).unwrap();
    for signature in eqlc::functions::BUILTINS {
        assert!(text.contains(&format!("`{}`", signature.name)), "docs/language.md does not document `{}`", signature.name);
    }
}
