//! The `eqlc` command-line contract: exit codes, output formats, rule discovery.
//! Scripts and CI jobs drive eqlc through these, so they must not change by accident.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn eqlc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eqlc")).args(args).output().expect("eqlc runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eqlc-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const CLEAN: &str =
    "sequence by process.entity_id with maxspan=5s\n  [process where event.action == \"exec\"]\n  [network where event.action == \"connection_attempted\"]\n";
const BROKEN: &str = "process where procss.name == \"bash\"\n";
const WARNS: &str = "process where process.name in (\"a\", \"a\")\n";

#[test]
fn exit_codes_say_clean_broken_or_unusable() {
    let dir = scratch("exit");
    let clean = write(&dir, "clean.eql", CLEAN);
    let broken = write(&dir, "broken.eql", BROKEN);
    let warns = write(&dir, "warns.eql", WARNS);

    let out = eqlc(&["check", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("checked 1 rule: 0 with errors, 0 errors, 0 warnings"));

    let out = eqlc(&["check", warns.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "warnings alone are a clean run");

    let out = eqlc(&["check", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error[E0101]"));
    assert!(text(&out.stderr).contains("broken.eql:1:15"), "diagnostics carry file:line:column");

    let out = eqlc(&["check", dir.join("absent.eql").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "IO problems are exit 2");
    assert!(text(&out.stderr).contains("cannot read"));

    let out = eqlc(&["check", "--schema", "no-such-schema", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("error[E0501]") && text(&out.stderr).contains("built-in schema (dynamic, linux)"));

    let out = eqlc(&["check", "--dialect", "klingon", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "usage errors are exit 2");
}

#[test]
fn warnings_can_be_allowed_or_denied() {
    let dir = scratch("lints");
    let warns = write(&dir, "warns.eql", WARNS);
    let path = warns.to_str().unwrap();

    let out = eqlc(&["check", "--deny-warnings", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error[W0003]"));

    let out = eqlc(&["check", "--deny", "w0003", path]);
    assert_eq!(out.status.code(), Some(1), "codes are case-insensitive");

    let out = eqlc(&["check", "--allow", "W0003", path]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stderr).contains("W0003"));

    let out = eqlc(&["check", "--allow", "W9999", path]);
    assert_eq!(out.status.code(), Some(2), "unknown codes are a usage error");

    let out = eqlc(&["check", "--allow", "E0101", path]);
    assert_eq!(out.status.code(), Some(2), "errors cannot be allowed");
}

#[test]
fn json_output_locates_every_label() {
    let dir = scratch("json");
    let broken = write(&dir, "broken.eql", BROKEN);
    let out = eqlc(&["check", "--format", "json", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(document["rules"], 1);
    assert_eq!(document["errors"], 1);
    let diag = &document["diagnostics"][0];
    assert_eq!(diag["code"], "E0101");
    assert_eq!(diag["name"], "unknown-field");
    assert_eq!(diag["severity"], "error");
    assert_eq!(diag["line"], 1);
    assert_eq!(diag["column"], 15);
    assert_eq!(diag["labels"][0]["end_column"], 26);
    assert_eq!(diag["help"][0], "did you mean `process.name`?");
}

#[test]
fn sarif_output_is_a_sarif_2_1_0_log() {
    let dir = scratch("sarif");
    let broken = write(&dir, "broken.eql", BROKEN);
    let warns = write(&dir, "warns.eql", WARNS);
    let out = eqlc(&["check", "--format", "sarif", broken.to_str().unwrap(), warns.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "eqlc");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"], "ruleIndex points at the rule");
        let region = &result["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap() >= 1);
        assert!(region["startColumn"].as_u64().unwrap() >= 1);
        assert!(["error", "warning"].contains(&result["level"].as_str().unwrap()));
    }
    assert!(results.iter().any(|result| result["ruleId"] == "E0101" && result["level"] == "error"));
    assert!(results.iter().any(|result| result["ruleId"] == "W0003" && result["level"] == "warning"));
}

#[test]
fn directories_mix_rule_formats_and_one_bad_rule_hides_nothing() {
    let dir = scratch("dir");
    write(&dir, "a/clean.eql", CLEAN);
    write(&dir, "a/broken.eql", BROKEN);
    write(&dir, "b/rule.toml", "[rule]\nname = \"TOML rule\"\nrule_id = \"r1\"\nquery = '''\nprocess where procss.pid == 1\n'''\n");
    write(&dir, "b/not-toml.toml", "[rule\n");
    write(
        &dir,
        "c/rules.jsonl",
        "{\"name\": \"j1\", \"query\": \"process where true\"}\nnot json\n{\"name\": \"j2\", \"query\": \"process where process.pid >\"}\n",
    );
    write(&dir, "c/ignored.txt", "this is not a rule");
    let out = eqlc(&["check", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(document["rules"], 5, "clean, broken, the TOML rule and two JSON rules");
    let codes: Vec<&str> = document["diagnostics"].as_array().unwrap().iter().map(|diag| diag["code"].as_str().unwrap()).collect();
    assert_eq!(codes.iter().filter(|code| **code == "E0101").count(), 2, "{codes:?}");
    assert!(codes.contains(&"E0502"), "bad TOML and bad JSON lines are reported: {codes:?}");
    assert!(codes.contains(&"E0002"), "{codes:?}");
    let toml_diag = document["diagnostics"].as_array().unwrap().iter().find(|diag| diag["file"].as_str().unwrap().ends_with("rule.toml")).unwrap();
    assert_eq!(toml_diag["line"], 5, "a TOML rule's diagnostics point into the TOML file");
}

#[test]
fn a_query_can_come_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eqlc")).args(["check", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(BROKEN.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("-:1:15"));
}

#[test]
fn explain_prints_the_page_of_a_code() {
    let out = eqlc(&["explain", "E0101"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("# E0101: unknown-field"));
    let out = eqlc(&["explain", "--list"]);
    assert!(text(&out.stdout).lines().count() > 50);
    assert!(text(&out.stdout).contains("W0002"));
    let out = eqlc(&["explain", "E9999"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn schemas_print_and_load_from_files() {
    let out = eqlc(&["schema", "linux"]);
    assert_eq!(out.status.code(), Some(0));
    let dir = scratch("schema");
    let printed = write(&dir, "linux-copy.toml", &text(&out.stdout));
    let rule = write(&dir, "rule.eql", CLEAN);
    let out = eqlc(&["check", "--schema", printed.to_str().unwrap(), rule.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "a printed schema loads back: {}", text(&out.stderr));

    let custom = write(
        &dir,
        "custom.toml",
        "category_field = \"kind\"\ntimestamp_field = \"ts\"\ntimestamp_unit = \"ms\"\n\n[fields]\n\"kind\" = \"keyword\"\n\"ts\" = \"long\"\n\"user\" = \"keyword\"\n",
    );
    let user_rule = write(&dir, "user.eql", "login where user == \"root\"\n");
    let out = eqlc(&["check", "--schema", custom.to_str().unwrap(), user_rule.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let bad = write(&dir, "bad.toml", "[fields]\n\"a\" = \"strng\"\n");
    let out = eqlc(&["check", "--schema", bad.to_str().unwrap(), user_rule.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error[E0601]") && stderr.contains("bad.toml:2:"), "schema errors point into the schema file: {stderr}");
    let out = eqlc(&["check", "--format", "json", "--schema", bad.to_str().unwrap(), user_rule.to_str().unwrap()]);
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema errors are reported in the chosen format");
    assert_eq!(document["diagnostics"][0]["code"], "E0601");
    assert_eq!(document["diagnostics"][0]["line"], 2);
}

#[test]
fn dump_shows_the_tree_the_text_and_the_ir() {
    let dir = scratch("dump");
    let rule = write(&dir, "rule.eql", CLEAN);
    let path = rule.to_str().unwrap();
    let ast = text(&eqlc(&["dump", "--what", "ast", path]).stdout);
    assert!(ast.contains("Sequence") && ast.contains("Step"));
    let eql = text(&eqlc(&["dump", "--what", "eql", path]).stdout);
    assert!(eql.contains("sequence by process.entity_id with maxspan=5s"));
    let ir = text(&eqlc(&["dump", "--what", "ir", path]).stdout);
    assert!(ir.contains("maxspan=5000000000ns"));
}

#[test]
fn build_writes_a_bundle_only_for_rules_it_can_compile() {
    let dir = scratch("build");
    let rules = write(&dir, "rules/shell.eql", "process where process.name in (\"bash\", \"sh\") and process.args : \"-c\"\n");
    let bundle = dir.join("out.bundle");
    let out = eqlc(&["build", "-o", bundle.to_str().unwrap(), rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bytes = std::fs::read(&bundle).unwrap();
    assert_eq!(&bytes[..8], b"KSTRLBND");
    let again = dir.join("again.bundle");
    eqlc(&["build", "-o", again.to_str().unwrap(), rules.to_str().unwrap()]);
    assert_eq!(std::fs::read(&again).unwrap(), bytes, "building twice gives the same bytes");

    let sequence = write(&dir, "rules/seq.eql", CLEAN);
    let built = dir.join("sequence.bundle");
    let out = eqlc(&["build", "-o", built.to_str().unwrap(), sequence.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "sequences build: {}", text(&out.stderr));

    let piped = write(&dir, "rules/piped_join.eql", "join by user.name [process where true] [file where true] | unique process.name\n");
    let failed = dir.join("failed.bundle");
    let out = eqlc(&["build", "--dialect", "endgame", "-o", failed.to_str().unwrap(), piped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error[E0701]"));
    assert!(!failed.exists(), "no bundle is written when a rule cannot be compiled");

    let broken = write(&dir, "rules/broken.eql", BROKEN);
    let out = eqlc(&["build", "-o", failed.to_str().unwrap(), broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!failed.exists(), "no bundle is written when a rule has errors");
}
