//! Tests of the schema format, the built-in schemas and the fingerprint.

use kestrel_bundle::schema::{FieldDef, FieldId, FieldType, Schema, SchemaError, TimestampUnit};
use proptest::prelude::*;

/// A small schema using every feature of the format.
const SMALL: &str = r#"
name = "small"
category_field = "event.category"
timestamp_field = "@timestamp"
timestamp_unit = "ns"
dynamic = false

[fields]
"@timestamp" = "long"
"event.category" = { type = "keyword", array = true, values = ["process", "file"] }
"process.name" = "keyword"
"process.args" = "keyword[]"
"process.pid" = { type = "long" }
"source.ip" = "ip"
"process.interactive" = "boolean"
"file.Ext.entropy" = "double"
"host.os.version" = "version"
"process.start" = "date"
"dll.name" = { type = "keyword", produced = false, doc = "never on Linux" }
"#;

fn small() -> Schema {
    Schema::from_toml("ignored", SMALL).expect("SMALL parses")
}

fn error_of(text: &str) -> SchemaError {
    match Schema::from_toml("test", text) {
        Ok(schema) => panic!("expected an error, got {schema:?}"),
        Err(error) => error,
    }
}

/// Asserts the error is at `line`:`column` and its message contains `needle`.
fn assert_error(text: &str, line: usize, column: usize, needle: &str) {
    let error = error_of(text);
    assert_eq!((error.line, error.column), (Some(line), Some(column)), "{error}");
    assert!(error.message.contains(needle), "message {:?} lacks {needle:?}", error.message);
    let span = error.span.clone().expect("located errors carry a span");
    assert!(span.start <= text.len(), "span {span:?} outside the text");
}

const HEADER: &str = "[fields]\n\"@timestamp\" = \"date\"\n\"event.category\" = \"keyword\"\n";

#[test]
fn small_schema_parses() {
    let schema = small();
    assert_eq!(schema.name, "small");
    assert_eq!(schema.timestamp_unit, TimestampUnit::Ns);
    assert!(!schema.dynamic);
    assert_eq!(schema.field_count(), 11);
    let names: Vec<&str> = schema.field_names().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "fields are sorted by name");

    let (id, args) = schema.field("process.args").expect("process.args");
    assert!(args.array && args.produced && args.ty == FieldType::Keyword);
    assert_eq!(schema.field_by_id(id), Some(args));
    assert_eq!(id.index(), names.iter().position(|name| *name == "process.args").unwrap());

    let (_, dll) = schema.field("dll.name").expect("dll.name");
    assert!(!dll.produced);
    assert_eq!(dll.doc.as_deref(), Some("never on Linux"));
    assert_eq!(schema.categories(), Some(&["file".to_string(), "process".to_string()][..]));
    assert!(schema.field("process").is_none());
    assert!(schema.field_by_id(FieldId::from_raw(11)).is_none());
    for (id, def) in schema.fields() {
        assert_eq!(schema.field(&def.name).map(|(found, _)| found), Some(id));
    }
}

#[test]
fn name_defaults_to_the_given_name() {
    let schema = Schema::from_toml("my-sensor", HEADER).unwrap();
    assert_eq!(schema.name, "my-sensor");
    assert_eq!(schema.category_field, "event.category");
    assert_eq!(schema.timestamp_field, "@timestamp");
    assert_eq!(schema.timestamp_unit, TimestampUnit::Rfc3339);
    assert_eq!(schema.categories(), None);
}

#[test]
fn to_toml_round_trips() {
    for schema in [small(), Schema::builtin("linux").unwrap(), Schema::builtin("dynamic").unwrap()] {
        let text = schema.to_toml();
        let back = Schema::from_toml("other", &text).unwrap_or_else(|error| panic!("{error}\n{text}"));
        assert_eq!(back, schema);
        assert_eq!(back.to_toml(), text, "canonical output is a fixed point");
        assert_eq!(back.fingerprint(), schema.fingerprint());
    }
}

#[test]
fn to_toml_escapes_strings() {
    let mut field = FieldDef::new("odd.name/with\"quote", FieldType::Keyword);
    field.doc = Some("line one\nline \\ two\t\u{7f}".to_string());
    field.values = Some(vec!["b\"".to_string(), "a".to_string()]);
    let schema = Schema::new("odd", "event.category", "@timestamp", TimestampUnit::Rfc3339, true, vec![field]).unwrap();
    let back = Schema::from_toml("x", &schema.to_toml()).unwrap();
    assert_eq!(back, schema);
    let (_, field) = back.field("odd.name/with\"quote").unwrap();
    assert_eq!(field.values.as_deref(), Some(&["a".to_string(), "b\"".to_string()][..]));
}

#[test]
fn canonical_form_of_small() {
    let expected = r#"name = "small"
category_field = "event.category"
timestamp_field = "@timestamp"
timestamp_unit = "ns"
dynamic = false

[fields]
"@timestamp" = "long"
"dll.name" = { type = "keyword", produced = false, doc = "never on Linux" }
"event.category" = { type = "keyword", array = true, values = ["file", "process"] }
"file.Ext.entropy" = "double"
"host.os.version" = "version"
"process.args" = "keyword[]"
"process.interactive" = "boolean"
"process.name" = "keyword"
"process.pid" = "long"
"process.start" = "date"
"source.ip" = "ip"
"#;
    assert_eq!(small().to_toml(), expected);
}

/// The fingerprint is part of the bundle format: if this value changes, compiled
/// bundles stop loading. Change it only together with a format version bump.
#[test]
fn fingerprint_is_stable() {
    assert_eq!(small().fingerprint(), 0x8004_f365_f882_4db0, "got {:#018x}", small().fingerprint());
    let dynamic = Schema::builtin("dynamic").unwrap();
    assert_eq!(dynamic.fingerprint(), 0x4c8f_98d8_9705_3dc2, "got {:#018x}", dynamic.fingerprint());
}

#[test]
fn fingerprint_ignores_docs_and_order_but_not_content() {
    let base = small().fingerprint();
    let reordered: String = {
        let mut lines: Vec<&str> = SMALL.lines().collect();
        let start = lines.iter().position(|line| *line == "[fields]").unwrap() + 1;
        lines[start..].reverse();
        lines.join("\n")
    };
    assert_eq!(Schema::from_toml("x", &reordered).unwrap().fingerprint(), base);
    let no_doc = SMALL.replace(", doc = \"never on Linux\"", "");
    assert_eq!(Schema::from_toml("x", &no_doc).unwrap().fingerprint(), base);
    for changed in [
        SMALL.replace("\"ns\"", "\"us\""),
        SMALL.replace("\"small\"", "\"big\""),
        SMALL.replace("produced = false", "produced = true"),
        SMALL.replace("\"file\"]", "\"file\", \"network\"]"),
        SMALL.replace("\"process.pid\" = { type = \"long\" }", "\"process.pid\" = \"long[]\""),
        SMALL.replace("\"source.ip\" = \"ip\"", "\"source.ip\" = \"keyword\""),
        SMALL.replace("dynamic = false", "dynamic = true"),
    ] {
        assert_ne!(Schema::from_toml("x", &changed).unwrap().fingerprint(), base, "{changed}");
    }
}

#[test]
fn builtins() {
    assert_eq!(Schema::builtin_names(), &["dynamic", "linux"]);
    for name in Schema::builtin_names() {
        assert_eq!(Schema::builtin(name).expect(name).name, *name);
    }
    assert!(Schema::builtin("windows").is_none());

    let dynamic = Schema::builtin("dynamic").unwrap();
    assert!(dynamic.dynamic);
    assert_eq!(dynamic.field_count(), 0);
    assert_eq!(dynamic.category_field, "event.category");
    assert_eq!(dynamic.timestamp_field, "@timestamp");
    assert_eq!(dynamic.timestamp_unit, TimestampUnit::Rfc3339);
}

#[test]
fn builtin_linux_schema() {
    let linux = Schema::builtin("linux").expect("the embedded linux.toml parses");
    assert!(!linux.dynamic);
    assert!(linux.field_count() > 500, "{}", linux.field_count());
    let categories = linux.categories().expect("linux closes event.category");
    for category in ["process", "file", "network", "dns"] {
        assert!(categories.iter().any(|c| c == category), "{category}");
    }
    let (_, action) = linux.field("event.action").unwrap();
    for value in ["exec", "fork", "end", "uid_change", "memfd_create", "rename", "lookup_result"] {
        assert!(action.may_have_value(value), "{value}");
    }
    assert!(!action.may_have_value("exec_event"));
    let expect = |name: &str, ty: FieldType, array: bool, produced: bool| {
        let (_, def) = linux.field(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!((def.ty, def.array, def.produced), (ty, array, produced), "{name}");
    };
    expect("@timestamp", FieldType::Date, false, true);
    expect("process.args", FieldType::Keyword, true, true);
    expect("process.command_line", FieldType::Keyword, false, true);
    expect("process.pid", FieldType::Long, false, true);
    expect("process.interactive", FieldType::Boolean, false, true);
    expect("destination.ip", FieldType::Ip, false, true);
    expect("user.id", FieldType::Keyword, false, true);
    expect("user.Ext.real.id", FieldType::Keyword, false, true);
    expect("process.Ext.ptrace.child_pid", FieldType::Long, false, true);
    expect("file.Ext.original.path", FieldType::Keyword, false, true);
    expect("process.env_vars", FieldType::Keyword, true, true);
    expect("event.type", FieldType::Keyword, true, true);
    expect("dns.question.name", FieldType::Keyword, false, true);
    expect("file.Ext.entropy", FieldType::Double, false, false);
    expect("process.parent.code_signature.trusted", FieldType::Boolean, false, false);
    assert_eq!(linux.field("host.os.type").unwrap().1.values.as_deref(), Some(&["linux".to_string()][..]));
    for absent in ["process.pe.imphash", "process.parent.hash.sha256", "dll.name", "auditd.data.syscall"] {
        assert!(linux.field(absent).is_none(), "{absent} should not be in the linux schema");
    }
    for multi_field in ["process.command_line.text", "process.name.text"] {
        assert!(linux.field(multi_field).is_none(), "{multi_field} is an ECS multi-field");
    }
}

#[test]
fn error_bad_type() {
    let text = format!("{HEADER}\"process.pid\" = \"integer\"\n");
    assert_error(&text, 4, 17, "unknown field type `integer`");
    assert!(error_of(&text).message.contains("written `long`"), "hint for ECS names");
    let long = format!("{HEADER}\"process.pid\" = {{ type = \"int\" }}\n");
    assert_error(&long, 4, 26, "unknown field type `int`");
    let wrong = format!("{HEADER}\"process.pid\" = 3\n");
    assert_error(&wrong, 4, 17, "must be a type");
}

#[test]
fn error_unknown_key() {
    let text = format!("{HEADER}\"process.pid\" = {{ type = \"long\", arr = true }}\n");
    assert_error(&text, 4, 34, "unknown key `arr`");
    assert_error("name = \"x\"\ncategory = \"event.category\"\n", 2, 1, "unknown key `category`");
    let unquoted = format!("{HEADER}process.name = \"keyword\"\n");
    let error = error_of(&unquoted);
    assert!(error.message.contains("must be quoted"), "{error}");
    assert_eq!(error.line, Some(4));
}

#[test]
fn error_toml_syntax() {
    assert_error("name = \"x\"\ntimestamp_unit = \n", 2, 18, "invalid TOML");
    assert_error("[fields]\n\"a\" = \"keyword\"\n\"a\" = \"long\"\n", 3, 1, "invalid TOML");
    assert_error("name = \"unterminated\n", 1, 21, "invalid TOML");
}

#[test]
fn error_bad_unit() {
    let text = format!("timestamp_unit = \"seconds\"\n{HEADER}");
    assert_error(&text, 1, 18, "unknown timestamp unit `seconds`");
    assert_error("timestamp_unit = 1\n", 1, 18, "must be a string");
}

#[test]
fn error_semantic_checks_are_located() {
    let values_on_long = format!("{HEADER}\"process.pid\" = {{ type = \"long\", values = [\"1\"] }}\n");
    assert_error(&values_on_long, 4, 34, "only allowed on keyword fields");
    let duplicate_value = format!("{HEADER}\"event.action\" = {{ type = \"keyword\", values = [\"a\", \"a\"] }}\n");
    assert_error(&duplicate_value, 4, 53, "twice");
    let empty_values = format!("{HEADER}\"event.action\" = {{ type = \"keyword\", values = [] }}\n");
    assert_error(&empty_values, 4, 47, "empty");
    let no_type = format!("{HEADER}\"process.pid\" = {{ array = true }}\n");
    assert_error(&no_type, 4, 17, "has no `type`");
    let bad_name = format!("{HEADER}\"process..pid\" = \"long\"\n");
    assert_error(&bad_name, 4, 1, "empty segment");
    let parent = format!("{HEADER}\"process.parent\" = \"keyword\"\n\"process.parent.pid\" = \"long\"\n");
    assert_error(&parent, 5, 1, "both a value and the parent");
    let category_type = "category_field = \"cat\"\n[fields]\n\"@timestamp\" = \"date\"\n\"cat\" = \"long\"\n";
    assert_error(category_type, 1, 18, "must have type keyword");
    let missing_timestamp = "timestamp_field = \"ts\"\n[fields]\n\"event.category\" = \"keyword\"\n";
    assert_error(missing_timestamp, 1, 19, "not a listed field");
    let array_conflict = format!("{HEADER}\"a\" = {{ type = \"keyword[]\", array = false }}\n");
    assert_error(&array_conflict, 4, 29, "array = false");
    assert_error("dynamic = \"yes\"\n", 1, 11, "true or false");
    assert_error("fields = 1\n", 1, 10, "must be a table");
}

#[test]
fn schema_new_validates() {
    let ts = FieldDef::new("@timestamp", FieldType::Date);
    let category = FieldDef::new("event.category", FieldType::Keyword);
    let ok = Schema::new("x", "event.category", "@timestamp", TimestampUnit::Ms, false, vec![category.clone(), ts.clone()]);
    assert!(ok.is_ok());
    let duplicate = Schema::new("x", "event.category", "@timestamp", TimestampUnit::Ms, false, vec![category.clone(), ts.clone(), ts.clone()]);
    let error = duplicate.unwrap_err();
    assert!(error.message.contains("defined twice"), "{error}");
    assert_eq!(error.line, None);
    let missing = Schema::new("x", "event.category", "@timestamp", TimestampUnit::Ms, false, vec![ts]);
    assert!(missing.unwrap_err().message.contains("category_field"));
}

#[test]
fn parse_names() {
    for ty in FieldType::ALL {
        assert_eq!(ty.as_str().parse::<FieldType>(), Ok(ty));
    }
    for unit in TimestampUnit::ALL {
        assert_eq!(unit.as_str().parse::<TimestampUnit>(), Ok(unit));
    }
    assert!("integer".parse::<FieldType>().is_err());
    assert!("Keyword".parse::<FieldType>().is_err());
    assert_eq!(FieldType::from_ecs("match_only_text"), Some(FieldType::Keyword));
    assert_eq!(FieldType::from_ecs("unsigned_long"), Some(FieldType::Long));
    assert_eq!(FieldType::from_ecs("scaled_float"), Some(FieldType::Double));
    assert_eq!(FieldType::from_ecs("nested"), None);
    assert_eq!(FieldType::from_ecs("geo_point"), None);
}

/// Parsing never panics, and located errors stay inside the text.
fn check_no_panic(text: &str) {
    if let Err(error) = Schema::from_toml("fuzz", text) {
        if let Some(span) = &error.span {
            assert!(span.start <= text.len());
            let line = error.line.unwrap();
            assert!(line >= 1 && line <= text.split('\n').count());
            assert!(error.column.unwrap() >= 1);
        }
        let _ = error.to_string();
    }
}

#[test]
fn mutations_of_a_valid_file_do_not_panic() {
    let bytes = SMALL.as_bytes();
    let inserts = ["\"", "[", "]", "{", "}", "=", ",", "\n", ".", "#", "'", "\\", "é", "[]", "\u{0}"];
    for index in 0..=bytes.len() {
        if !SMALL.is_char_boundary(index) {
            continue;
        }
        // Deleting one character.
        let mut deleted = SMALL[..index].to_string();
        deleted.push_str(SMALL[index..].get(1..).unwrap_or(""));
        check_no_panic(&deleted);
        // Truncating.
        check_no_panic(&SMALL[..index]);
        // Inserting punctuation.
        for insert in inserts {
            check_no_panic(&format!("{}{insert}{}", &SMALL[..index], &SMALL[index..]));
        }
    }
}

#[test]
fn pathological_inputs_do_not_panic() {
    check_no_panic(&format!("a = {}", "[".repeat(100_000)));
    check_no_panic(&format!("[fields]\n\"a\" = {}", "{ b = ".repeat(50_000)));
    check_no_panic(&"[fields]\n".repeat(1000));
    check_no_panic("\u{feff}[fields]\n\"é\" = \"keyword\"\n\"\u{0}\" = \"long\"\n");
    check_no_panic("[fields]\n\"a\" = { type = \"keyword\", values = [1, \"x\"] }\n");
    check_no_panic("[[fields]]\n");
    let many_values: Vec<String> = (0..100_000).map(|n| format!("\"v{n}\"")).collect();
    let text = format!("{HEADER}\"big\" = {{ type = \"keyword\", values = [{}] }}\n", many_values.join(","));
    assert_eq!(Schema::from_toml("x", &text).unwrap().field("big").unwrap().1.values.as_ref().unwrap().len(), 100_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_does_not_panic(text in "\\PC*") {
        check_no_panic(&text);
    }

    #[test]
    fn arbitrary_toml_like_text_does_not_panic(
        text in "[\\[\\]{}=,\"'.a-z0-9 \\n#@]{0,200}"
    ) {
        check_no_panic(&text);
    }

    #[test]
    fn splicing_into_a_valid_file_does_not_panic(position in 0usize..400, insert in "\\PC{0,12}") {
        let mut position = position.min(SMALL.len());
        while !SMALL.is_char_boundary(position) {
            position -= 1;
        }
        check_no_panic(&format!("{}{insert}{}", &SMALL[..position], &SMALL[position..]));
    }

    #[test]
    fn round_trip_of_generated_schemas(
        names in proptest::collection::btree_set("[a-z@_]{1,6}(\\.[a-zA-Z0-9_/-]{1,6}){0,3}", 0..12),
        flags in proptest::collection::vec((0usize..7, any::<bool>(), any::<bool>(), any::<bool>()), 12),
        doc in proptest::option::of("\\PC{0,20}"),
    ) {
        let mut fields = Vec::new();
        for (name, (type_index, array, produced, with_values)) in names.iter().zip(flags) {
            let mut def = FieldDef::new(name.clone(), FieldType::ALL[type_index]);
            def.array = array;
            def.produced = produced;
            if with_values && def.ty == FieldType::Keyword {
                def.values = Some(vec![format!("{name}-v"), "x\"y".to_string()]);
            }
            def.doc = doc.clone();
            fields.push(def);
        }
        // Parent/child names are rejected by design; skip those inputs.
        if let Ok(schema) = Schema::new("gen", "event.category", "@timestamp", TimestampUnit::S, true, fields) {
            let back = Schema::from_toml("other", &schema.to_toml()).unwrap();
            prop_assert_eq!(back.fingerprint(), schema.fingerprint());
            prop_assert_eq!(back, schema);
        }
    }
}
