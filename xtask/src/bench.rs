//! `cargo xtask bench-check`: times `eqlc check` over every rule of ../shared/corpus
//! (release build) against the python `eql` 1.0.1 reference parser on the same rules,
//! in the same run, and prints both and their ratio.
//!
//! The reference runs in a virtualenv under `target/bench-venv` (created on first use
//! with `pip install eql==1.0.1`). If it cannot be installed, the eqlc figure is still
//! printed and the ratio is reported as unavailable.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Parses every corpus query with python `eql`, in the dialect each corpus is written
/// in (the settings Elastic's own tooling uses), and prints the seconds taken.
const PYTHON_REFERENCE: &str = r#"
import json, sys, time
import eql
from eql.parser import ParserConfig, elasticsearch_syntax, elastic_endpoint_syntax, ignore_missing_functions, skip_optimizations
queries = []
for path, syntax in ((sys.argv[1], elasticsearch_syntax), (sys.argv[2], elastic_endpoint_syntax)):
    with open(path) as handle:
        queries += [(json.loads(line)["query"], syntax) for line in handle if line.strip()]
start = time.perf_counter()
failed = 0
for query, syntax in queries:
    with syntax, ignore_missing_functions, skip_optimizations, ParserConfig(allow_sample=True, allow_runs=True, allow_negation=True):
        try:
            eql.parse_query(query)
        except Exception:
            failed += 1
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "queries": len(queries), "failed": failed}))
"#;

pub fn run(root: &Path, runs: usize) -> Result<ExitCode> {
    let corpus = root.join("../shared/corpus");
    let detection = corpus.join("elastic-detection-rules.eql.jsonl");
    let endpoint = corpus.join("elastic-protections-artifacts.eql.jsonl");
    if !detection.exists() || !endpoint.exists() {
        eprintln!("SKIPPED: bench-check needs ../shared/corpus beside the repository");
        return Ok(ExitCode::SUCCESS);
    }
    let status = Command::new(env!("CARGO")).args(["build", "--release", "--locked", "-p", "eqlc"]).current_dir(root).status()?;
    if !status.success() {
        bail!("release build of eqlc failed");
    }
    let eqlc = root.join("target/release/eqlc");

    let mut times = Vec::new();
    let mut rules = 0;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let output = Command::new(&eqlc).args(["check", "--schema", "dynamic", "--format", "json"]).arg(&detection).arg(&endpoint).output()?;
        times.push(start.elapsed());
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).context("eqlc printed no JSON report")?;
        rules = report["rules"].as_u64().unwrap_or(0);
        if report["errors"].as_u64() != Some(0) {
            bail!("eqlc reported errors on the corpus: {}", report["errors"]);
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "eqlc check, {rules} rules, schema dynamic, {} runs: median {:.3} s, best {:.3} s, {:.0} rules/s",
        times.len(),
        secs(median),
        secs(times[0]),
        rules as f64 / secs(median)
    );

    match python_reference(root, &detection, &endpoint) {
        Ok((seconds, queries, failed)) => {
            println!("python eql 1.0.1 parse_query, {queries} rules ({failed} rejected): {seconds:.3} s, {:.0} rules/s", queries as f64 / seconds);
            println!("ratio: eqlc check (parse + type check + lints) is {:.1}x the reference parser alone", seconds / secs(median));
        }
        Err(error) => println!("python reference unavailable ({error:#}); no ratio"),
    }
    Ok(ExitCode::SUCCESS)
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn python_reference(root: &Path, detection: &Path, endpoint: &Path) -> Result<(f64, u64, u64)> {
    let venv = root.join("target/bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().context("python3 is not installed")?;
        if !status.success() {
            bail!("cannot create a virtualenv");
        }
    }
    let has_eql = Command::new(&python).args(["-c", "import eql"]).output().map(|out| out.status.success()).unwrap_or(false);
    if !has_eql {
        let status = Command::new(&python).args(["-m", "pip", "install", "--quiet", "eql==1.0.1"]).status()?;
        if !status.success() {
            bail!("pip install eql==1.0.1 failed");
        }
    }
    let output = Command::new(&python).args(["-c", PYTHON_REFERENCE]).arg(detection).arg(endpoint).output()?;
    if !output.status.success() {
        bail!("reference script failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    Ok((report["seconds"].as_f64().unwrap_or(f64::NAN), report["queries"].as_u64().unwrap_or(0), report["failed"].as_u64().unwrap_or(0)))
}
