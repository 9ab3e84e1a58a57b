//! `cargo xtask gen-schema`: builds the built-in `linux` schema.
//!
//! Inputs:
//!
//! - `../shared/schema/ecs_fields.csv` (relative to the repository root): the ECS field
//!   list, columns `ECS_Version,Indexed,Field_Set,Field,Type,Level,Normalization,Example,Description`.
//! - `kestrel-bundle/schemas/linux.in.toml`: which ECS fields to take, which of them the
//!   sensor produces, and the extension fields and overrides (see that file).
//!
//! Output: `kestrel-bundle/schemas/linux.toml`, a canonical schema file (see
//! `docs/schema.md`), embedded by `kestrel_bundle::schema::Schema::builtin("linux")`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kestrel_bundle::schema::{FieldDef, FieldType, Schema, TimestampUnit};
use serde::Deserialize;

const ECS_CSV: &str = "../shared/schema/ecs_fields.csv";
const INPUT: &str = "kestrel-bundle/schemas/linux.in.toml";
const OUTPUT: &str = "kestrel-bundle/schemas/linux.toml";

/// `linux.in.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    schema: Settings,
    ecs: EcsSelection,
    produced: Produced,
    /// Extension fields and overrides, in schema-file syntax.
    #[serde(default)]
    fields: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    name: String,
    category_field: String,
    timestamp_field: String,
    timestamp_unit: String,
    dynamic: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EcsSelection {
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Produced {
    fields: Vec<String>,
}

/// One usable row of the ECS CSV.
struct EcsField {
    name: String,
    ty: FieldType,
    array: bool,
}

/// Runs the task; returns the process exit code.
pub fn run(root: &Path, check: bool) -> Result<ExitCode> {
    let csv_path = root.join(ECS_CSV);
    if !csv_path.exists() {
        let message = format!("{} not found (is ../shared missing?)", csv_path.display());
        if check {
            println!("gen-schema --check: SKIPPED: {message}; linux.toml was NOT verified");
            return Ok(ExitCode::SUCCESS);
        }
        bail!("{message}; cannot generate {OUTPUT}");
    }
    let input_text = std::fs::read_to_string(root.join(INPUT)).with_context(|| format!("reading {INPUT}"))?;
    let (ecs_version, ecs_fields) = read_ecs(&csv_path)?;
    let generated = generate(&input_text, &ecs_version, &ecs_fields)?;

    let output_path = root.join(OUTPUT);
    if check {
        let committed = std::fs::read_to_string(&output_path).unwrap_or_default();
        if committed == generated {
            println!("gen-schema --check: {OUTPUT} is up to date");
            return Ok(ExitCode::SUCCESS);
        }
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(old, new)| old != new)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        eprintln!(
            "gen-schema --check: {OUTPUT} is out of date (first difference at line {}); \
             run `cargo xtask gen-schema` and commit the result",
            first_difference + 1
        );
        return Ok(ExitCode::FAILURE);
    }
    std::fs::write(&output_path, &generated).with_context(|| format!("writing {OUTPUT}"))?;
    println!("gen-schema: wrote {OUTPUT}");
    Ok(ExitCode::SUCCESS)
}

/// Reads the ECS CSV: the ECS version and the fields that have a Kestrel type, without
/// multi-fields (`process.name.text` next to `process.name`).
fn read_ecs(path: &Path) -> Result<(String, Vec<EcsField>)> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|header| header == name).with_context(|| format!("no `{name}` column in {}", path.display()));
    let (version_col, field_col, type_col, normalization_col) = (column("ECS_Version")?, column("Field")?, column("Type")?, column("Normalization")?);

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let get = |index: usize| record.get(index).unwrap_or("").to_string();
        rows.push((get(version_col), get(field_col), get(type_col), get(normalization_col)));
    }
    let versions: HashSet<&str> = rows.iter().map(|row| row.0.as_str()).collect();
    if versions.len() != 1 {
        bail!("expected one ECS version in {}, found {versions:?}", path.display());
    }
    let version = rows.first().map(|row| row.0.clone()).unwrap_or_default();
    // A multi-field is a row whose parent is itself a value field (not an object).
    let value_fields: HashSet<&str> =
        rows.iter().filter(|row| !matches!(row.2.as_str(), "object" | "nested" | "flattened")).map(|row| row.1.as_str()).collect();
    let mut fields = Vec::new();
    for (_, name, ecs_type, normalization) in &rows {
        let is_multi_field = name.rsplit_once('.').is_some_and(|(parent, _)| value_fields.contains(parent));
        let Some(ty) = FieldType::from_ecs(ecs_type) else {
            continue;
        };
        if is_multi_field {
            continue;
        }
        let array = normalization.split(',').any(|item| item.trim() == "array");
        fields.push(EcsField { name: name.clone(), ty, array });
    }
    Ok((version, fields))
}

/// Builds the text of `linux.toml`.
fn generate(input_text: &str, ecs_version: &str, ecs_fields: &[EcsField]) -> Result<String> {
    let input: Input = toml::from_str(input_text).with_context(|| format!("parsing {INPUT}"))?;
    let unit: TimestampUnit = input.schema.timestamp_unit.parse().with_context(|| format!("{INPUT}: [schema]"))?;

    let mut used_include = HashSet::new();
    let mut used_exclude = HashSet::new();
    let mut used_produced = HashSet::new();

    let mut fields: BTreeMap<String, FieldDef> = BTreeMap::new();
    for ecs in ecs_fields {
        if !any_match(&input.ecs.include, &ecs.name, &mut used_include) {
            continue;
        }
        if any_match(&input.ecs.exclude, &ecs.name, &mut used_exclude) {
            continue;
        }
        let produced = any_match(&input.produced.fields, &ecs.name, &mut used_produced);
        let def = FieldDef { array: ecs.array, produced, ..FieldDef::new(ecs.name.clone(), ecs.ty) };
        fields.insert(ecs.name.clone(), def);
    }
    for (section, list, used) in [
        ("[ecs] include", &input.ecs.include, &used_include),
        ("[ecs] exclude", &input.ecs.exclude, &used_exclude),
        ("[produced] fields", &input.produced.fields, &used_produced),
    ] {
        let unused: Vec<&String> = list.iter().filter(|pattern| !used.contains(*pattern)).collect();
        if !unused.is_empty() {
            bail!("{INPUT}: {section} patterns that match no selected ECS field: {unused:?}");
        }
    }

    // Extension fields and overrides use the schema-file syntax; parse them with the
    // real parser by wrapping them in a dynamic schema.
    let mut wrapper = toml::Table::new();
    wrapper.insert("dynamic".to_string(), toml::Value::Boolean(true));
    wrapper.insert("fields".to_string(), toml::Value::Table(input.fields.clone()));
    let wrapper_text = toml::to_string(&wrapper).context("re-serialising [fields]")?;
    let overrides = Schema::from_toml("overrides", &wrapper_text).map_err(|error| anyhow::anyhow!("{INPUT}: [fields]: {}", error.message))?;
    // An override may add values, a doc or change `produced`, but not retype an ECS
    // field: rules are written against the ECS types.
    let ecs_types: BTreeMap<&str, (FieldType, bool)> = ecs_fields.iter().map(|ecs| (ecs.name.as_str(), (ecs.ty, ecs.array))).collect();
    for (_, def) in overrides.fields() {
        if let Some(&(ty, array)) = ecs_types.get(def.name.as_str())
            && (ty, array) != (def.ty, def.array)
        {
            bail!(
                "{INPUT}: [fields] \"{}\" is {}{} in ECS but {}{} here; restate the ECS type",
                def.name,
                ty,
                if array { "[]" } else { "" },
                def.ty,
                if def.array { "[]" } else { "" },
            );
        }
        fields.insert(def.name.clone(), def.clone());
    }

    let settings = &input.schema;
    let schema = Schema::new(
        settings.name.clone(),
        settings.category_field.clone(),
        settings.timestamp_field.clone(),
        unit,
        settings.dynamic,
        fields.into_values().collect(),
    )
    .map_err(|error| anyhow::anyhow!("the generated schema is invalid: {error}"))?;

    let produced = schema.fields().filter(|(_, def)| def.produced).count();
    let mut out = String::new();
    out.push_str("# GENERATED FILE, DO NOT EDIT. Regenerate with `cargo xtask gen-schema`.\n");
    out.push_str(&format!("# Inputs: ECS {ecs_version} (shared/schema/ecs_fields.csv) and {INPUT}.\n"));
    out.push_str(&format!("# {} fields, {produced} produced by the sensor. Format: docs/schema.md.\n\n", schema.field_count()));
    out.push_str(&schema.to_toml());
    Ok(out)
}

/// Whether any pattern of `list` matches `name`; records every pattern that does.
fn any_match(list: &[String], name: &str, used: &mut HashSet<String>) -> bool {
    let mut hit = false;
    for pattern in list {
        if glob_match(pattern, name) {
            used.insert(pattern.clone());
            hit = true;
        }
    }
    hit
}

/// Matches a dotted field name against a pattern where `*` stands for any run of
/// characters other than `.` and `**` for any run of characters, dots included.
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(pattern: &[u8], name: &[u8]) -> bool {
        match pattern {
            [] => name.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=name.len()).any(|skip| go(rest, &name[skip..])),
            [b'*', rest @ ..] => {
                for skip in 0..=name.len() {
                    if go(rest, &name[skip..]) {
                        return true;
                    }
                    if name.get(skip) == Some(&b'.') {
                        break;
                    }
                }
                false
            }
            [first, rest @ ..] => name.first() == Some(first) && go(rest, &name[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "ECS_Version,Indexed,Field_Set,Field,Type,Level,Normalization,Example,Description
9.4.0,true,base,@timestamp,date,core,,x,Time.
9.4.0,true,base,labels,object,core,,x,Labels.
9.4.0,true,event,event.category,keyword,core,array,x,Category.
9.4.0,true,process,process.name,keyword,core,,x,Name.
9.4.0,true,process,process.name.text,match_only_text,core,,x,Multi-field.
9.4.0,true,process,process.pid,long,core,,x,Pid.
9.4.0,true,process,process.pe.imphash,keyword,core,,x,PE.
9.4.0,true,process,process.elf.sections,nested,core,array,x,Nested.
9.4.0,true,dll,dll.name,keyword,core,,x,DLL.
";

    const INPUT_TEXT: &str = r#"
[schema]
name = "tiny"
category_field = "event.category"
timestamp_field = "@timestamp"
timestamp_unit = "rfc3339"
dynamic = false

[ecs]
include = ["@timestamp", "event.**", "process.**"]
exclude = ["**.pe.**"]

[produced]
fields = ["@timestamp", "event.*", "process.name"]

[fields]
"event.category" = { type = "keyword", array = true, values = ["process"] }
"process.Ext.x" = { type = "boolean", produced = false, doc = "An extension." }
"#;

    fn tiny_ecs() -> (String, Vec<EcsField>) {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xtask-gen-schema-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ecs_fields.csv");
        std::fs::write(&path, CSV).unwrap();
        let result = read_ecs(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn reads_ecs_without_multi_fields_and_objects() {
        let (version, fields) = tiny_ecs();
        assert_eq!(version, "9.4.0");
        let names: Vec<&str> = fields.iter().map(|field| field.name.as_str()).collect();
        assert_eq!(names, ["@timestamp", "event.category", "process.name", "process.pid", "process.pe.imphash", "dll.name"]);
        assert!(fields[1].array && !fields[2].array);
    }

    #[test]
    fn generates_a_schema() {
        let (version, fields) = tiny_ecs();
        let text = generate(INPUT_TEXT, &version, &fields).unwrap();
        let body: String = text.lines().filter(|line| !line.starts_with('#')).collect::<Vec<_>>().join("\n");
        let expected = r#"
name = "tiny"
category_field = "event.category"
timestamp_field = "@timestamp"
timestamp_unit = "rfc3339"
dynamic = false

[fields]
"@timestamp" = "date"
"event.category" = { type = "keyword", array = true, values = ["process"] }
"process.Ext.x" = { type = "boolean", produced = false, doc = "An extension." }
"process.name" = "keyword"
"process.pid" = { type = "long", produced = false }"#;
        assert_eq!(body, expected);
        assert!(text.starts_with("# GENERATED FILE"));
        Schema::from_toml("tiny", &text).unwrap();
    }

    #[test]
    fn unused_patterns_are_errors() {
        let (version, fields) = tiny_ecs();
        let typo = INPUT_TEXT.replace("\"process.name\"]", "\"process.nmae\"]");
        let error = generate(&typo, &version, &fields).unwrap_err().to_string();
        assert!(error.contains("process.nmae"), "{error}");
    }

    #[test]
    fn overrides_keep_ecs_types() {
        let (version, fields) = tiny_ecs();
        let retyped = INPUT_TEXT.replace("array = true, values", "values");
        let error = generate(&retyped, &version, &fields).unwrap_err().to_string();
        assert!(error.contains("keyword[] in ECS but keyword here"), "{error}");
    }

    #[test]
    fn check_is_skipped_without_shared() {
        let root = std::env::temp_dir().join(format!("xtask-no-shared-{}", std::process::id())).join("repo");
        std::fs::create_dir_all(&root).unwrap();
        assert_eq!(run(&root, true).unwrap(), ExitCode::SUCCESS);
        assert!(run(&root, false).is_err());
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }

    #[test]
    fn globs() {
        assert!(glob_match("process.name", "process.name"));
        assert!(!glob_match("process.name", "process.names"));
        assert!(glob_match("process.**", "process.parent.name"));
        assert!(!glob_match("process.**", "process"));
        assert!(glob_match("process.*_leader.pid", "process.entry_leader.pid"));
        assert!(!glob_match("process.*.pid", "process.a.b.pid"));
        assert!(glob_match("**.pe.**", "process.parent.pe.imphash"));
        assert!(glob_match("**.pe.**", "file.pe.company"));
        assert!(!glob_match("**.pe.**", "process.pid"));
        assert!(glob_match("process.user.*", "process.user.id"));
    }
}

#[cfg(test)]
mod committed {
    /// The committed `linux.toml` is what the generator makes from its inputs today.
    #[test]
    fn committed_linux_schema_is_up_to_date() {
        let root = crate::repo_root();
        let code = super::run(&root, true).expect("the generator runs");
        assert_eq!(code, std::process::ExitCode::SUCCESS, "kestrel-bundle/schemas/linux.toml is stale: run `cargo xtask gen-schema`");
    }
}
