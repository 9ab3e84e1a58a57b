//! A hand-built, realistic bundle (the one committed as `v2-handmade.kbundle`) and
//! helpers to find things in bundle bytes.

use kestrel_bundle::bundle::WASM_HEADER;
use kestrel_bundle::schema::{FieldType, TimestampUnit};
use kestrel_bundle::{
    Bundle, CidrBlock, Field, FieldKind, Functions, Layout, Manifest, Patterns, Pipe, Predicate, PredicateRole, Query, RegexAnchor, RegexPattern, Rule,
    SequenceFlavor, SequenceKey, SequenceStep, SequenceTable, TableKind, ValueFn,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}

/// The golden file of [`handmade`].
pub fn golden_path() -> PathBuf {
    repo_root().join("tests/data/bundle/v2-handmade.kbundle")
}

/// The bytes of the golden file.
pub fn golden_bytes() -> Vec<u8> {
    std::fs::read(golden_path()).expect("tests/data/bundle/v2-handmade.kbundle is committed")
}

/// The golden file of format 1, which this reader refuses.
pub fn v1_golden_path() -> PathBuf {
    repo_root().join("tests/data/bundle/v1-handmade.kbundle")
}

fn field(name: &str, kind: FieldKind, array: bool, slot: u32, folded_slot: Option<u32>) -> Field {
    Field { name: name.to_string(), kind, array, slot, folded_slot, plain_unread: false }
}

fn block(address: IpAddr, prefix: u8) -> CidrBlock {
    CidrBlock { address, prefix }
}

/// Three rules (two event queries, every pipe kind, and a sequence with per-step keys,
/// maxspan, a missing step and an until), typed and dynamic fields with folded slots,
/// categories, regexes, IPv4 and IPv6 CIDR blocks and the smallest valid Wasm module.
pub fn handmade() -> Bundle {
    use FieldKind::{Dynamic, Typed};
    let fields = vec![
        field("@timestamp", Typed(FieldType::Date), false, 0, None),
        field("destination.ip", Typed(FieldType::Ip), false, 1, None),
        field("event.category", Typed(FieldType::Keyword), true, 2, None),
        field("file.Ext.entropy", Typed(FieldType::Double), false, 3, None),
        field("host.os.version", Typed(FieldType::Version), false, 4, None),
        field("process.args", Typed(FieldType::Keyword), true, 5, Some(6)),
        field("process.interactive", Typed(FieldType::Boolean), false, 7, None),
        field("process.name", Typed(FieldType::Keyword), false, 9, Some(8)),
        field("process.pid", Typed(FieldType::Long), false, 10, None),
        field("user.custom.label", Dynamic, false, 11, Some(12)),
        field("user.custom.tags", Dynamic, true, 13, None),
    ];
    let rules = vec![
        Rule {
            id: "kestrel-linux-0001".to_string(),
            name: "Shell spawned by a web server".to_string(),
            severity: "high".to_string(),
            risk_score: Some(73.0),
            description: Some("A web server process started an interactive shell.\nOften a web shell.".to_string()),
            tags: vec!["Domain: Endpoint".to_string(), "OS: Linux".to_string(), "Tactic: Execution".to_string()],
            query: Query::Event { predicate: 0 },
            pipes: vec![Pipe::Filter(1), Pipe::Unique(vec![0, 1]), Pipe::Head(10)],
        },
        Rule {
            id: "kestrel-linux-0002".to_string(),
            name: "Outbound connection to a private range — «ünïcödé»".to_string(),
            severity: String::new(),
            risk_score: None,
            description: None,
            tags: Vec::new(),
            query: Query::Event { predicate: 2 },
            pipes: vec![
                Pipe::Tail(5),
                Pipe::Filter(3),
                Pipe::UniqueCount(vec![2]),
                Pipe::Count(Vec::new()),
                Pipe::Count(vec![2, 3]),
                Pipe::Sort(vec![3, 2]),
                Pipe::Head(u64::MAX),
            ],
        },
        Rule {
            id: "kestrel-linux-0003".to_string(),
            name: "Download, make executable, run".to_string(),
            severity: "medium".to_string(),
            risk_score: Some(47.0),
            description: None,
            tags: vec!["Tactic: Execution".to_string()],
            query: Query::Sequence { table: 0 },
            pipes: vec![Pipe::Head(3)],
        },
    ];
    let step = |predicate: u32, keys: Vec<SequenceKey>, missing: bool, source_step: u32| SequenceStep {
        predicate,
        keys,
        missing,
        fork: false,
        source_step,
        check: None,
        captures: Vec::new(),
    };
    let by = |optional: bool| vec![SequenceKey { value: 4, optional: false, slot: None }, SequenceKey { value: 5, optional, slot: None }];
    let sequences = vec![SequenceTable {
        rule: 2,
        kind: TableKind::Sequence,
        flavor: SequenceFlavor::Elasticsearch,
        fold_case: false,
        maxspan_ns: Some(300_000_000_000),
        steps: vec![step(4, by(false), false, 0), step(5, by(true), false, 1), step(5, by(true), false, 1), step(6, by(false), true, 2)],
        until: Some(step(7, by(false), false, 0)),
    }];
    let functions = Functions {
        categories: vec!["file".to_string(), "network".to_string(), "process".to_string()],
        predicates: vec![
            Predicate { rule: 0, role: PredicateRole::EventCondition, category: Some(2) },
            Predicate { rule: 0, role: PredicateRole::PipeFilter, category: None },
            Predicate { rule: 1, role: PredicateRole::EventCondition, category: Some(1) },
            Predicate { rule: 1, role: PredicateRole::PipeFilter, category: None },
            Predicate { rule: 2, role: PredicateRole::EventCondition, category: Some(1) },
            Predicate { rule: 2, role: PredicateRole::EventCondition, category: Some(0) },
            Predicate { rule: 2, role: PredicateRole::EventCondition, category: Some(2) },
            Predicate { rule: 2, role: PredicateRole::EventCondition, category: Some(2) },
        ],
        values: vec![ValueFn { rule: 0 }, ValueFn { rule: 0 }, ValueFn { rule: 1 }, ValueFn { rule: 1 }, ValueFn { rule: 2 }, ValueFn { rule: 2 }],
    };
    let patterns = Patterns {
        regexes: vec![
            RegexPattern { pattern: "(ba|da|z)?sh".to_string(), case_insensitive: false, anchor: RegexAnchor::Whole },
            RegexPattern { pattern: "curl|wget".to_string(), case_insensitive: true, anchor: RegexAnchor::Start },
        ],
        cidr_sets: vec![
            vec![
                block(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
                block(IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)), 12),
                block(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 16),
                block(IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7),
            ],
            vec![block(IpAddr::V4(Ipv4Addr::LOCALHOST), 32), block(IpAddr::V6(Ipv6Addr::LOCALHOST), 128), block(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)],
        ],
    };
    Bundle {
        manifest: Manifest {
            compiler: "eqlc 0.0.0".to_string(),
            schema_name: "linux".to_string(),
            schema_fingerprint: 0x0123_4567_89ab_cdef,
            category_field: "event.category".to_string(),
            timestamp_field: "@timestamp".to_string(),
            timestamp_unit: TimestampUnit::Ns,
            layout: Layout::plan(14, 4, 8, 60_000, 16_384),
        },
        fields,
        rules,
        functions,
        patterns,
        wasm: WASM_HEADER.to_vec(),
        sequences: Some(sequences),
        lineage: None,
        custom: None,
        actions: Vec::new(),
        prefilter: None,
        needs: None,
    }
}

/// `(kind, offset, length)` of each section of well-formed bundle bytes.
pub fn sections(bytes: &[u8]) -> Vec<(u32, usize, usize)> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    (0..u32_at(20) as usize).map(|index| 32 + 24 * index).map(|entry| (u32_at(entry), u64_at(entry + 8) as usize, u64_at(entry + 16) as usize)).collect()
}

/// The offset of section `kind` in well-formed bundle bytes.
pub fn section_offset(bytes: &[u8], kind: u32) -> usize {
    sections(bytes).into_iter().find(|(found, ..)| *found == kind).map(|(_, offset, _)| offset).expect("section present")
}

/// Writes `bundle`, checks that section `kind` comes last and that the bytes read back
/// to the same bundle, and returns what `kestrel inspect` prints of it.
pub fn round_trip_with_last_section(bundle: &Bundle, kind: u32) -> String {
    let bytes = bundle.to_bytes().expect("writes");
    assert_eq!(sections(&bytes).last().map(|(found, ..)| *found), Some(kind));
    assert_eq!(&Bundle::from_bytes(&bytes).expect("reads back"), bundle);
    bundle.inspect()
}

/// An edit of a bundle that some check of `validate` refuses.
pub type Edit = fn(&mut Bundle);

/// Asserts that each edit of `base()` is refused by `validate` and by `to_bytes`, with
/// a message that starts with the expected one and names no byte (there is no file).
pub fn assert_each_edit_is_refused(base: fn() -> Bundle, cases: Vec<(Edit, &str)>) {
    let mut wrong = Vec::new();
    for (index, (edit, expected)) in cases.into_iter().enumerate() {
        let mut bundle = base();
        edit(&mut bundle);
        for (how, result) in [("validate", bundle.validate()), ("to_bytes", bundle.to_bytes().map(|_| ()))] {
            match result {
                Err(error) if error.message.starts_with(expected) && error.offset.is_none() => {}
                other => wrong.push(format!("case {index} ({how}): expected {expected:?}, got {other:?}")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The reader's error on `bytes` with `patch` written at `at` (checksum fixed).
pub fn patched_error(bytes: &[u8], at: usize, patch: &[u8]) -> String {
    let mut bytes = bytes.to_vec();
    bytes[at..at + patch.len()].copy_from_slice(patch);
    fix_checksum(&mut bytes);
    Bundle::from_bytes(&bytes).expect_err("the patched bundle is invalid").to_string()
}

/// Rewrites the checksum of `bytes` to match the rest (so the reader looks deeper).
pub fn fix_checksum(bytes: &mut [u8]) {
    if bytes.len() < 8 {
        return;
    }
    let end = bytes.len() - 8;
    let checksum = kestrel_bundle::bundle::fnv1a64(&bytes[..end]);
    bytes[end..].copy_from_slice(&checksum.to_le_bytes());
}

/// Every value of every byte of section `kind` of `bundle`'s bytes (checksum fixed): the
/// reader never panics, and what it accepts is the canonical encoding of what it returns.
pub fn mutate_every_byte_of_section(bundle: &Bundle, kind: u32) {
    let bytes = bundle.to_bytes().unwrap();
    let (_, start, len) = sections(&bytes).into_iter().find(|(found, ..)| *found == kind).expect("section present");
    for at in start..start + len {
        for value in 0..=255u8 {
            let mut mutated = bytes.clone();
            mutated[at] = value;
            fix_checksum(&mut mutated);
            let result = std::panic::catch_unwind(|| Bundle::from_bytes(&mutated)).unwrap_or_else(|_| panic!("panicked with byte {at} = {value}"));
            if let Ok(bundle) = result {
                assert!(bundle.to_bytes().unwrap() == mutated, "byte {at} = {value}: accepted a non-canonical encoding");
            }
        }
    }
}
