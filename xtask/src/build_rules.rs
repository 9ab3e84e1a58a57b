//! `cargo xtask build-rules [--check]`: compiles Kestrel's built-in rules (`rules/`) into
//! the bundle the runtime embeds, `kestrel-rt/builtin/rules.kbundle`
//! (`kestrel_rt::builtin::BUILTIN_BUNDLE`), and writes the table of docs/rules.md.
//!
//! The runtime never links the compiler, so the bundle is built here, by the `eqlc`
//! binary (`eqlc build --schema linux --deny-warnings`), and committed. Builds are
//! deterministic: the same rules and compiler give the same bytes, and the test
//! `rules::committed_builtin_bundle_is_up_to_date` checks the committed file. With
//! `--check`, nothing is written and the task fails if either file is stale.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::{Command, ExitCode};

/// The committed bundle, from the repository root.
const BUNDLE: &str = "kestrel-rt/builtin/rules.kbundle";
/// The page whose table lists the rules.
const DOCS: &str = "docs/rules.md";
const TABLE_BEGIN: &str = "<!-- BEGIN rules table: written by `cargo xtask build-rules`, do not edit by hand -->";
const TABLE_END: &str = "<!-- END rules table -->";

pub fn run(root: &Path, check: bool) -> anyhow::Result<ExitCode> {
    let scratch_dir = root.join("target/xtask");
    std::fs::create_dir_all(&scratch_dir).with_context(|| format!("cannot create {}", scratch_dir.display()))?;
    let scratch = scratch_dir.join("rules.kbundle");
    let status = Command::new(env!("CARGO"))
        .args(["run", "--locked", "--quiet", "-p", "eqlc", "--bin", "eqlc", "--"])
        .args(["build", "--schema", "linux", "--deny-warnings", "--quiet", "--output"])
        .arg(&scratch)
        .arg("rules")
        .current_dir(root)
        .status()
        .context("cannot run `cargo run -p eqlc`")?;
    if !status.success() {
        bail!("`eqlc build` refused rules/ (its diagnostics are above)");
    }
    let built = std::fs::read(&scratch).with_context(|| format!("cannot read {}", scratch.display()))?;
    let docs_path = root.join(DOCS);
    let docs = std::fs::read_to_string(&docs_path).with_context(|| format!("cannot read {DOCS}"))?;
    let new_docs = splice(&docs, &table(&rules(root)?)).with_context(|| format!("in {DOCS}"))?;
    let bundle_path = root.join(BUNDLE);
    let committed = std::fs::read(&bundle_path).ok();
    let mut stale = Vec::new();
    if committed.as_deref() != Some(&built[..]) {
        stale.push(BUNDLE);
        if !check {
            write_atomically(&bundle_path, &built)?;
        }
    }
    if new_docs != docs {
        stale.push(DOCS);
        if !check {
            write_atomically(&docs_path, new_docs.as_bytes())?;
        }
    }
    if check {
        if stale.is_empty() {
            println!("{BUNDLE} and {DOCS} are up to date");
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("not what rules/ gives now: {}; run `cargo xtask build-rules` and commit the result", stale.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    if stale.is_empty() {
        println!("{BUNDLE} and {DOCS} were already up to date ({} bytes)", built.len());
    } else {
        println!("wrote {} ({} bytes of bundle); review with `git diff --stat {BUNDLE} {DOCS}`", stale.join(" and "), built.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// What the table says about one rule file.
struct RuleRow {
    path: String,
    name: String,
    id: String,
    severity: String,
    risk_score: String,
    tactics: Vec<String>,
    techniques: Vec<String>,
    sequence: bool,
    summary: String,
}

/// The TOML rule files under `rules/`, ordered by rule id.
fn rules(root: &Path) -> anyhow::Result<Vec<RuleRow>> {
    let mut files = Vec::new();
    let mut dirs = vec![root.join("rules")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "toml") {
                files.push(path);
            }
        }
    }
    let mut rows = Vec::new();
    for path in files {
        rows.push(row(root, &path).with_context(|| format!("in {}", path.display()))?);
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}

fn row(root: &Path, path: &Path) -> anyhow::Result<RuleRow> {
    let document: toml::Table = toml::from_str(&std::fs::read_to_string(path)?)?;
    let rule = document.get("rule").and_then(toml::Value::as_table).context("no [rule] table")?;
    let string = |key: &str| rule.get(key).and_then(toml::Value::as_str).map(str::to_string).with_context(|| format!("no `{key}`"));
    let tags: Vec<String> = rule.get("tags").and_then(toml::Value::as_array).into_iter().flatten().filter_map(|tag| tag.as_str().map(str::to_string)).collect();
    let risk_score = rule.get("risk_score").map(|score| score.to_string()).unwrap_or_default();
    let description = string("description")?;
    // The first sentence of the description, on one line.
    let flat = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let summary = match flat.find(". ") {
        Some(end) => flat[..=end].to_string(),
        None => flat,
    };
    Ok(RuleRow {
        path: path.strip_prefix(root).unwrap_or(path).display().to_string(),
        name: string("name")?,
        id: string("rule_id")?,
        severity: string("severity")?,
        risk_score,
        tactics: tags.iter().filter_map(|tag| tag.strip_prefix("Tactic: ")).map(str::to_string).collect(),
        techniques: tags.iter().filter_map(|tag| tag.strip_prefix("Technique: ")).map(str::to_string).collect(),
        sequence: string("query")?.trim_start().starts_with("sequence"),
        summary,
    })
}

/// A link to a technique's ATT&CK page: `T1059.004` is `techniques/T1059/004/`.
fn technique_link(technique: &str) -> String {
    format!("[{technique}](https://attack.mitre.org/techniques/{}/)", technique.replace('.', "/"))
}

fn table(rows: &[RuleRow]) -> String {
    let cell = |text: &str| text.replace('|', "\\|");
    let mut out = String::from("| Rule | Id | Severity (risk) | Kind | ATT&CK | What it catches |\n|---|---|---|---|---|---|\n");
    for row in rows {
        let attack = row.tactics.iter().cloned().chain(row.techniques.iter().map(|technique| technique_link(technique))).collect::<Vec<_>>().join(", ");
        out.push_str(&format!(
            "| [{}](../{}) | `{}` | {} ({}) | {} | {} | {} |\n",
            cell(&row.name),
            row.path,
            row.id,
            row.severity,
            row.risk_score,
            if row.sequence { "sequence" } else { "event" },
            attack,
            cell(&row.summary)
        ));
    }
    out
}

/// `docs` with the text between the table markers replaced by `table`.
fn splice(docs: &str, table: &str) -> anyhow::Result<String> {
    let begin = docs.find(TABLE_BEGIN).with_context(|| format!("no `{TABLE_BEGIN}` line"))?;
    let end = docs.find(TABLE_END).with_context(|| format!("no `{TABLE_END}` line"))?;
    if end < begin {
        bail!("the table's end marker comes before its beginning");
    }
    Ok(format!("{}{TABLE_BEGIN}\n{table}{}", &docs[..begin], &docs[end..]))
}

/// Writes through a temporary file and a rename, so a concurrent reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn techniques_link_to_their_attack_pages() {
        assert_eq!(technique_link("T1059.004"), "[T1059.004](https://attack.mitre.org/techniques/T1059/004/)");
        assert_eq!(technique_link("T1105"), "[T1105](https://attack.mitre.org/techniques/T1105/)");
    }

    #[test]
    fn the_table_replaces_only_what_is_between_the_markers() {
        let docs = format!("intro\n{TABLE_BEGIN}\nold\n{TABLE_END}\nafter\n");
        assert_eq!(splice(&docs, "new\n").unwrap(), format!("intro\n{TABLE_BEGIN}\nnew\n{TABLE_END}\nafter\n"));
        assert!(splice("no markers", "new\n").is_err());
    }
}
