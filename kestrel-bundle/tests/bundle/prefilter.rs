//! The `PREFILTER` section: the literals round-trip, show in `inspect`, and every check
//! of the section has a failing example, with the byte it names when read from a file.

use crate::handmade::{
    Edit, assert_each_edit_is_refused, handmade, mutate_every_byte_of_section, patched_error, round_trip_with_last_section, section_offset, sections,
};
use kestrel_bundle::Bundle;
use kestrel_bundle::bundle::Prefilter;

const PREFILTER: u32 = 11;

/// The hand-built bundle with a prefilter of two literals.
fn with_prefilter() -> Bundle {
    let mut bundle = handmade();
    bundle.prefilter = Some(Prefilter { literals: vec!["bash".to_string(), "curl".to_string()] });
    bundle
}

#[test]
fn literals_round_trip_and_show_in_inspect() {
    let bundle = with_prefilter();
    let text = round_trip_with_last_section(&bundle, PREFILTER);
    assert!(text.contains("prefilter (2): a line without any of [\"bash\", \"curl\"] matches no rule\n"), "{text}");
    // No prefilter: no section, and inspect says so.
    let plain = handmade();
    assert!(sections(&plain.to_bytes().expect("writes")).iter().all(|(kind, ..)| *kind != PREFILTER));
    assert!(plain.inspect().contains("prefilter: none (every line's fields are read)\n"));
}

fn literals(bundle: &mut Bundle) -> &mut Vec<String> {
    &mut bundle.prefilter.as_mut().unwrap().literals
}

#[test]
fn every_prefilter_check_has_a_failing_example() {
    let cases: Vec<(Edit, &str)> = vec![
        (|b| literals(b).clear(), "PREFILTER: 0 literals (from 1 to 256)"),
        (|b| *literals(b) = (0..257).map(|n| format!("k{n:03}")).collect(), "PREFILTER: 257 literals (from 1 to 256)"),
        (|b| literals(b)[1] = String::new(), "PREFILTER: literal 1 (\"\") is 0 bytes long (from 1 to 256)"),
        (|b| literals(b)[1] = "c".repeat(257), "PREFILTER: literal 1 (\"ccc"),
        (|b| literals(b)[1] = "cUrl".to_string(), "PREFILTER: literal 1 (\"cUrl\") is not ASCII without upper-case letters"),
        (|b| literals(b)[1] = "curlé".to_string(), "PREFILTER: literal 1 (\"curlé\") is not ASCII without upper-case letters"),
        (|b| literals(b).swap(0, 1), "PREFILTER: literal 1 (\"bash\") does not come after the one before it (literals are strictly ascending)"),
        (|b| literals(b)[1] = "bash".to_string(), "PREFILTER: literal 1 (\"bash\") does not come after the one before it (literals are strictly ascending)"),
    ];
    assert_each_edit_is_refused(with_prefilter, cases);
}

#[test]
fn errors_in_the_section_name_the_byte() {
    let bytes = with_prefilter().to_bytes().unwrap();
    let body = section_offset(&bytes, PREFILTER);
    // count, then each literal: length u32, bytes.
    let literal1 = body + 4 + 4 + 4;
    let read_patched = |at: usize, patch: &[u8]| patched_error(&bytes, at, patch);
    let cases: Vec<(usize, &[u8], String)> = vec![
        (literal1 + 4, b"C", format!("at byte {literal1}: PREFILTER: literal 1 (\"Curl\") is not ASCII without upper-case letters")),
        (
            literal1 + 4,
            b"a",
            format!("at byte {literal1}: PREFILTER: literal 1 (\"aurl\") does not come after the one before it (literals are strictly ascending)"),
        ),
        (literal1 + 4, &[0xff], format!("at byte {}: PREFILTER: a literal is not valid UTF-8", literal1 + 4)),
    ];
    for (at, patch, expected) in cases {
        assert_eq!(read_patched(at, patch), expected);
    }
}

/// Every value of every byte of the section (checksum fixed): the reader never panics,
/// and what it accepts is the canonical encoding of what it returns.
#[test]
fn every_byte_of_the_section_mutated() {
    mutate_every_byte_of_section(&with_prefilter(), PREFILTER);
}
