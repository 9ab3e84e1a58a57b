//! One failing example per semantic check, with its message; and the byte offsets the
//! reader reports for semantic errors found in a file.

use crate::handmade::{fix_checksum, golden_bytes, handmade, section_offset, sections};
use kestrel_bundle::bundle::NO_INDEX;
use kestrel_bundle::{Bundle, CidrBlock, Field, FieldKind, Layout, Pipe, PredicateRole, Query};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

type Edit = fn(&mut Bundle);

/// Each edit breaks one rule of the format; `validate` and `to_bytes` both report it.
#[test]
fn every_semantic_check_has_a_failing_example() {
    let cases: Vec<(Edit, &str)> = vec![
        // Manifest.
        (|b| b.manifest.category_field.clear(), "manifest: the category field is invalid: field names must not be empty"),
        (|b| b.manifest.timestamp_field = "a..b".into(), "manifest: the timestamp field is invalid: field name \"a..b\" has an empty segment (`..`)"),
        // Layout.
        (|b| b.manifest.layout.memory_pages = 0, "layout: memory_pages is 0; guest memory needs at least one page"),
        (|b| b.manifest.layout.memory_pages = 65_537, "layout: memory_pages is 65537, more than the 65536 pages (4 GiB) of a 32-bit memory"),
        (|b| b.manifest.layout.out_offset += 4, "layout: the out region starts at byte 340, which is not 8-aligned"),
        (|b| b.manifest.layout.memory_pages = 1, "layout: the heap region (bytes 60608..76992) does not fit in guest memory of 1 pages (65536 bytes)"),
        (
            |b| b.manifest.layout.data_offset = 0,
            "layout: the data region starts at byte 0, inside the first 64 bytes, which stay zero (address 0 is a null slot)",
        ),
        (|b| b.manifest.layout.data_offset = 64, "layout: the data region (bytes 64..60064) overlaps the slots region (bytes 64..288)"),
        (|b| b.manifest.layout.args_offset -= 8, "layout: the args region (bytes 344..600) overlaps the out region (bytes 336..352)"),
        (
            |b| b.manifest.layout = Layout::plan(1 << 20, 4, 4, u32::MAX, 0),
            "layout: memory_pages is 65793, more than the 65536 pages (4 GiB) of a 32-bit memory",
        ),
        (|b| b.manifest.layout.result_count = 3, "layout: result_count is 3, but there are 8 predicates"),
        (|b| b.manifest.layout.result_count = 16, "layout: the out region (bytes 336..352) overlaps the results region (bytes 312..346)"),
        (|b| b.functions.predicates.truncate(3), "layout: result_count is 8, but there are 3 predicates"),
        // Fields.
        (|b| b.fields[0].name.clear(), "field 0 (\"\"): the name is empty"),
        (|b| b.fields[1].name = "@timestamp".into(), "field 1 (\"@timestamp\"): the name is listed twice; field names are unique"),
        (|b| b.fields.swap(3, 4), "field 4 (\"file.Ext.entropy\"): comes after \"host.os.version\"; fields are sorted by name"),
        (|b| b.fields[0].name = "zzz".into(), "field 1 (\"destination.ip\"): comes after \"zzz\"; fields are sorted by name"),
        (|b| b.fields[8].slot = 14, "field 8 (\"process.pid\"): slot 14 is out of range (the layout has 14 slots)"),
        (|b| b.fields[5].folded_slot = Some(NO_INDEX), "field 5 (\"process.args\"): folded slot 4294967295 is out of range (the layout has 14 slots)"),
        (|b| b.fields[8].slot = 9, "field 8 (\"process.pid\"): slot 9 is already used by field \"process.name\"; slots are unique"),
        (|b| b.fields[8].slot = 6, "field 8 (\"process.pid\"): slot 6 is already used by field \"process.args\"; slots are unique"),
        (|b| b.fields[5].folded_slot = Some(5), "field 5 (\"process.args\"): folded slot 5 is already used by field \"process.args\"; slots are unique"),
        (|b| b.fields[8].plain_unread = true, "field 8 (\"process.pid\"): the plain slot is marked unread, but there is no folded slot to read instead"),
        // Categories.
        (|b| b.functions.categories[0].clear(), "category 0 (\"\"): the name is empty"),
        (|b| b.functions.categories[1] = "file".into(), "category 1 (\"file\"): the name is listed twice; category names are unique"),
        (|b| b.functions.categories.swap(0, 2), "category 1 (\"network\"): comes after \"process\"; categories are sorted by name"),
        // Predicates and value functions.
        (|b| b.functions.predicates[3].rule = 3, "predicate 3: rule 3 is out of range (there are 3 rules)"),
        (|b| b.functions.predicates[0].category = Some(3), "predicate 0: category 3 is out of range (there are 3 categories)"),
        (|b| b.functions.predicates[0].category = Some(NO_INDEX), "predicate 0: category 4294967295 is out of range (there are 3 categories)"),
        (|b| b.functions.values[3].rule = 7, "value function 3: rule 7 is out of range (there are 3 rules)"),
        // Rules.
        (|b| b.rules[1].id.clear(), "rule 1 (\"\"): the id is empty"),
        (|b| b.rules[0].risk_score = Some(f64::NAN), "rule 0 (\"kestrel-linux-0001\"): the risk score is NaN; it must be a finite number"),
        (|b| b.rules[0].risk_score = Some(f64::NEG_INFINITY), "rule 0 (\"kestrel-linux-0001\"): the risk score is -inf; it must be a finite number"),
        (|b| b.rules[0].query = Query::Event { predicate: 8 }, "rule 0 (\"kestrel-linux-0001\"): query predicate 8 is out of range (there are 8 predicates)"),
        (|b| b.rules[0].query = Query::Event { predicate: 1 }, "rule 0 (\"kestrel-linux-0001\"): query predicate 1 is a pipe filter (role 1)"),
        (|b| b.rules[0].query = Query::Event { predicate: 2 }, "rule 0 (\"kestrel-linux-0001\"): query predicate 2 belongs to rule 1, not to this one"),
        (
            |b| b.functions.predicates[1].role = PredicateRole::EventCondition,
            "rule 0 (\"kestrel-linux-0001\"): pipe 0 (filter): filter predicate 1 is an event condition (role 0)",
        ),
        (|b| b.rules[0].pipes[0] = Pipe::Filter(3), "rule 0 (\"kestrel-linux-0001\"): pipe 0 (filter): filter predicate 3 belongs to rule 1, not to this one"),
        (
            |b| b.rules[1].pipes[1] = Pipe::Filter(9),
            "rule 1 (\"kestrel-linux-0002\"): pipe 1 (filter): filter predicate 9 is out of range (there are 8 predicates)",
        ),
        (|b| b.rules[0].pipes[1] = Pipe::Unique(vec![]), "rule 0 (\"kestrel-linux-0001\"): pipe 1 (unique): needs at least one value function"),
        (|b| b.rules[1].pipes[2] = Pipe::UniqueCount(vec![]), "rule 1 (\"kestrel-linux-0002\"): pipe 2 (unique_count): needs at least one value function"),
        (|b| b.rules[1].pipes[5] = Pipe::Sort(vec![]), "rule 1 (\"kestrel-linux-0002\"): pipe 5 (sort): needs at least one value function"),
        (|b| b.rules[1].pipes[4] = Pipe::Count(vec![2, 6]), "rule 1 (\"kestrel-linux-0002\"): pipe 4 (count): value function 6 is out of range (there are 6)"),
        (|b| b.rules[1].pipes[5] = Pipe::Sort(vec![0]), "rule 1 (\"kestrel-linux-0002\"): pipe 5 (sort): value function 0 belongs to rule 0, not to this one"),
        // Sequences.
        (|b| b.sequences = None, "rule 2 (\"kestrel-linux-0003\"): sequence table 0 is out of range (there are 0)"),
        (
            |b| {
                b.rules[2].query = Query::Event { predicate: 4 };
                b.sequences = Some(Vec::new());
            },
            "the SEQUENCES section has no table; a bundle without sequences has no SEQUENCES section",
        ),
        (|b| b.rules[2].query = Query::Sequence { table: 1 }, "rule 2 (\"kestrel-linux-0003\"): sequence table 1 is out of range (there are 1)"),
        (|b| b.rules[1].query = Query::Sequence { table: 0 }, "rule 1 (\"kestrel-linux-0002\"): sequence table 0 belongs to rule 2, not to this one"),
        (|b| b.sequences.as_mut().unwrap()[0].rule = 5, "rule 2 (\"kestrel-linux-0003\"): sequence table 0 belongs to rule 5, not to this one"),
        (
            |b| {
                let mut extra = b.sequences.as_ref().unwrap()[0].clone();
                extra.rule = 5;
                b.sequences.as_mut().unwrap().push(extra);
            },
            "SEQUENCES: table 1: rule 5 is out of range (there are 3 rules)",
        ),
        (|b| b.rules[2].query = Query::Event { predicate: 4 }, "SEQUENCES: table 0: rule 2 does not name this table as its query"),
        (|b| b.sequences.as_mut().unwrap()[0].steps.clear(), "SEQUENCES: table 0: a sequence has at least one step"),
        (|b| b.sequences.as_mut().unwrap()[0].steps[1].predicate = 1, "SEQUENCES: table 0: step 1: query predicate 1 is a pipe filter (role 1)"),
        (|b| b.sequences.as_mut().unwrap()[0].steps[1].predicate = 2, "SEQUENCES: table 0: step 1: query predicate 2 belongs to rule 1, not to this one"),
        (
            |b| b.sequences.as_mut().unwrap()[0].until.as_mut().unwrap().predicate = 8,
            "SEQUENCES: table 0: the until step: query predicate 8 is out of range (there are 8 predicates)",
        ),
        (|b| b.sequences.as_mut().unwrap()[0].steps[0].keys[0].value = 6, "SEQUENCES: table 0: step 0: value function 6 is out of range (there are 6)"),
        (|b| b.sequences.as_mut().unwrap()[0].steps[2].keys[1].value = 0, "SEQUENCES: table 0: step 2: value function 0 belongs to rule 0, not to rule 2"),
        (
            |b| {
                b.sequences.as_mut().unwrap()[0].steps[3].keys.pop();
            },
            "SEQUENCES: table 0: step 3 has 1 keys and step 0 has 2; every step joins on as many",
        ),
        (
            |b| {
                b.fields[7].plain_unread = true;
                b.sequences.as_mut().unwrap()[0].steps[0].keys[0].slot = Some(9);
            },
            "SEQUENCES: table 0: step 0: key slot 9 is a plain slot marked unread",
        ),
        (
            |b| {
                use kestrel_bundle::bundle::{CustomLimits, CustomPredicate, CustomRuntime};
                b.fields[7].plain_unread = true;
                let limits = CustomLimits { instructions: 1, memory_bytes: 1, time_ms: 1 };
                let code = b"\0asm\x01\0\0\0".to_vec();
                b.custom = Some(vec![CustomPredicate {
                    name: "p".into(),
                    runtime: CustomRuntime::Wasm,
                    code,
                    fields: vec![7],
                    params: vec![],
                    captures: vec![],
                    limits,
                    rules: vec![],
                }]);
            },
            "CUSTOM: predicate 0: field 7 is in its view, but its plain slot is marked unread",
        ),
        // Patterns.
        (
            |b| b.patterns.cidr_sets[0][0] = CidrBlock { address: IpAddr::V4(Ipv4Addr::UNSPECIFIED), prefix: 33 },
            "CIDR set 0 block 0 (0.0.0.0/33): the prefix is longer than the 32 bits of an IPv4 address",
        ),
        (
            |b| b.patterns.cidr_sets[1].push(CidrBlock { address: IpAddr::V6(Ipv6Addr::LOCALHOST), prefix: 129 }),
            "CIDR set 1 block 3 (::1/129): the prefix is longer than the 128 bits of an IPv6 address",
        ),
        // Wasm.
        (|b| b.wasm.truncate(7), "the Wasm module is 7 bytes long, shorter than the 8-byte Wasm header"),
        (|b| b.wasm[0] = b'X', "the Wasm module does not start with the Wasm magic `\\0asm`"),
        (|b| b.wasm[4] = 2, "the Wasm module has binary version 2; only version 1 is supported"),
    ];
    let mut wrong = Vec::new();
    for (edit, expected) in cases {
        let mut bundle = handmade();
        edit(&mut bundle);
        let Err(error) = bundle.validate() else {
            wrong.push(format!("accepted, expected: {expected}"));
            continue;
        };
        assert_eq!(error.offset, None);
        if error.to_string() != expected {
            wrong.push(format!("expected: {expected}\n   found: {error}"));
        }
        assert_eq!(bundle.to_bytes().expect_err(expected), error, "to_bytes runs the same checks");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What the format allows and a stricter reading might not: no categories, no rules,
/// `count` without keys, a sequence without keys or maxspan, unused slots, empty regions.
#[test]
fn edge_cases_that_are_valid() {
    let mut bundle = handmade();
    bundle.rules[0].pipes.push(Pipe::Count(vec![]));
    bundle.rules[0].risk_score = Some(-0.0);
    let table = &mut bundle.sequences.as_mut().unwrap()[0];
    table.maxspan_ns = None;
    table.until = None;
    table.steps.truncate(1);
    table.steps[0].keys.clear();
    bundle.manifest.layout = Layout::plan(100, 0, 8, 0, 0);
    bundle.fields.push(Field { name: "zz".into(), kind: FieldKind::Dynamic, array: true, slot: 99, folded_slot: Some(98), plain_unread: false });
    let bytes = bundle.to_bytes().unwrap();
    let read = Bundle::from_bytes(&bytes).unwrap();
    assert_eq!(read, bundle);
    assert!(read.rules[0].risk_score.unwrap().is_sign_negative());

    let mut empty = handmade();
    empty.rules.clear();
    empty.functions = Default::default();
    empty.fields.clear();
    empty.patterns = Default::default();
    empty.sequences = None;
    empty.manifest.layout = Layout::plan(0, 0, 0, 0, 0);
    let bytes = empty.to_bytes().unwrap();
    assert_eq!(sections(&bytes).len(), 6, "no SEQUENCES section when there is no body");
    assert_eq!(Bundle::from_bytes(&bytes).unwrap(), empty);
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|window| window == needle).expect("needle in the golden bytes")
}

/// Patches `bytes` at `at`, fixes the checksum, and returns the reader's error.
fn read_patched(at: usize, patch: &[u8]) -> kestrel_bundle::BundleError {
    let mut bytes = golden_bytes();
    bytes[at..at + patch.len()].copy_from_slice(patch);
    fix_checksum(&mut bytes);
    Bundle::from_bytes(&bytes).expect_err("the patched bundle is invalid")
}

/// Semantic errors found by the reader name the byte of the offending item.
#[test]
fn semantic_errors_in_files_name_the_byte() {
    let golden = golden_bytes();

    // Rule 0's query (right after its last tag) names the pipe-filter predicate 1.
    let query = find(&golden, b"Tactic: Execution") + "Tactic: Execution".len();
    let error = read_patched(query + 1, &1u32.to_le_bytes());
    assert_eq!(error.to_string(), format!("at byte {query}: rule 0 (\"kestrel-linux-0001\"): query predicate 1 is a pipe filter (role 1)"));

    // `process.pid` takes the slot of `process.name`: reported at the field's start.
    let field = find(&golden, b"\x0b\x00\x00\x00process.pid");
    let error = read_patched(field + 4 + 11 + 2, &9u32.to_le_bytes());
    assert_eq!(error.to_string(), format!("at byte {field}: field 8 (\"process.pid\"): slot 9 is already used by field \"process.name\"; slots are unique"));

    // The layout's result_count (its seventh u32) no longer matches the predicates.
    let layout = section_offset(&golden, 1) + find(&golden[section_offset(&golden, 1)..], b"@timestamp") + "@timestamp".len() + 1;
    let error = read_patched(layout + 6 * 4, &16u32.to_le_bytes());
    assert_eq!(error.offset, Some(layout as u64 + 7 * 4), "the overlap is reported at out_offset: {error}");
    let error = read_patched(layout + 11 * 4, &128u32.to_le_bytes());
    assert_eq!(error.to_string(), format!("at byte {}: layout: the heap region (bytes 128..16512) overlaps the slots region (bytes 64..288)", layout + 11 * 4));

    // The first CIDR block's prefix (after family and 16 address bytes).
    let patterns = section_offset(&golden, 5);
    let block = find(&golden[patterns..], &[4, 10, 0, 0, 0]) + patterns;
    let error = read_patched(block + 17, &[33]);
    assert_eq!(
        error.to_string(),
        format!("at byte {}: CIDR set 0 block 0 (10.0.0.0/33): the prefix is longer than the 32 bits of an IPv4 address", block + 17)
    );

    // The Wasm header.
    let wasm = section_offset(&golden, 6);
    let error = read_patched(wasm + 4, &[2]);
    assert_eq!(error.to_string(), format!("at byte {}: the Wasm module has binary version 2; only version 1 is supported", wasm + 4));
}

/// Decoding errors name the section, the item and the byte.
#[test]
fn decoding_errors_name_section_item_and_byte() {
    let golden = golden_bytes();
    let field = find(&golden, b"\x0b\x00\x00\x00process.pid");
    let cases: Vec<(usize, Vec<u8>, String)> = vec![
        (field + 15, vec![7], format!("at byte {}: FIELDS: field 8: type is 7, expected 0 to 6 or 255 (dynamic)", field + 15)),
        (field + 16, vec![8], format!("at byte {}: FIELDS: field 8: flags 0x08 set unknown bits 0x08", field + 16)),
        (field + 16, vec![4], format!("at byte {}: FIELDS: field 8: the plain-unread flag (bit 2) is set without the folded flag (bit 1)", field + 16)),
        (field + 16, vec![2], format!("at byte {}: FIELDS: field 8: the folded flag is set, but folded_slot is 0xFFFFFFFF (none)", field + 21)),
        (
            field + 21,
            vec![0],
            format!("at byte {}: FIELDS: field 8: the folded flag is not set, so folded_slot must be 0xFFFFFFFF, not 4294967040", field + 21),
        ),
        (field + 4, vec![0xff], format!("at byte {}: FIELDS: field 8: name is not valid UTF-8", field + 4)),
        (field, vec![0xff, 0xff], format!("at byte {field}: FIELDS: field 8: name is 65535 bytes long, but the section has only 82 left")),
    ];
    for (at, patch, expected) in cases {
        assert_eq!(read_patched(at, &patch).to_string(), expected);
    }
    let fields = section_offset(&golden, 2);
    let error = read_patched(fields, &[0xff, 0xff, 0, 0]);
    assert_eq!(
        error.to_string(),
        format!("at byte {fields}: FIELDS: the field list has a count of 65535, but the 310 bytes left in the section hold at most 22")
    );
    let error = read_patched(fields, &[10, 0, 0, 0]);
    assert!(error.to_string().ends_with("FIELDS: 30 trailing bytes after the last value of the section"), "{error}");
}
