//! The `NEEDS` section: the atoms and clauses round-trip, show in `inspect`, and every
//! check of the section has a failing example, with the byte it names when read from a
//! file.

use crate::handmade::{
    Edit, assert_each_edit_is_refused, handmade, mutate_every_byte_of_section, patched_error, round_trip_with_last_section, section_offset, sections,
};
use kestrel_bundle::Bundle;
use kestrel_bundle::bundle::{NeedAtom, Needs, PredicateNeeds};

const NEEDS: u32 = 12;

/// The hand-built bundle with needs: rule 0's condition needs `bash` or `sh` in
/// `process.name` and `-c` in `process.args`; two sequence steps need one literal each.
fn with_needs() -> Bundle {
    let atom = |field: u32, literal: &str| NeedAtom { field, literal: literal.to_string() };
    let mut bundle = handmade();
    bundle.needs = Some(Needs {
        atoms: vec![atom(5, "-c"), atom(7, "bash"), atom(7, "sh"), atom(9, "web")],
        predicates: vec![
            PredicateNeeds { predicate: 0, clauses: vec![vec![1, 2], vec![0]] },
            PredicateNeeds { predicate: 6, clauses: vec![vec![1]] },
            PredicateNeeds { predicate: 7, clauses: vec![vec![3]] },
        ],
    });
    bundle
}

#[test]
fn needs_round_trip_and_show_in_inspect() {
    let text = round_trip_with_last_section(&with_needs(), NEEDS);
    assert!(text.contains("needs (3 predicates, 4 atoms): each clause must have an atom in its field, or the predicate is skipped\n"), "{text}");
    assert!(text.contains("  pred   0: (process.name has \"bash\" or process.name has \"sh\") and (process.args has \"-c\")\n"), "{text}");
    assert!(text.contains("  pred   7: (user.custom.label has \"web\")\n"), "{text}");
    // No needs: no section, and inspect says so.
    let plain = handmade();
    assert!(sections(&plain.to_bytes().expect("writes")).iter().all(|(kind, ..)| *kind != NEEDS));
    assert!(plain.inspect().contains("needs: none (every candidate predicate runs)\n"));
}

fn needs(bundle: &mut Bundle) -> &mut Needs {
    bundle.needs.as_mut().unwrap()
}

#[test]
fn every_needs_check_has_a_failing_example() {
    let cases: Vec<(Edit, &str)> = vec![
        (|b| needs(b).atoms.clear(), "NEEDS: 0 atoms (from 1 to 65536)"),
        (|b| needs(b).atoms[3].field = 11, "NEEDS: atom 3 names field 11, but the bundle has 11 fields"),
        (|b| needs(b).atoms[3].field = 8, "NEEDS: atom 3 names field 8 (\"process.pid\"), which is not a string field"),
        (|b| needs(b).atoms[0].field = 4, "NEEDS: atom 0 names field 4 (\"host.os.version\"), which is not a string field"),
        (|b| needs(b).atoms[3].literal.clear(), "NEEDS: atom 3 has a literal of 0 bytes (from 1 to 256)"),
        (|b| needs(b).atoms[3].literal = "w".repeat(257), "NEEDS: atom 3 has a literal of 257 bytes (from 1 to 256)"),
        (|b| needs(b).atoms[3].literal = "Web".to_string(), "NEEDS: atom 3 has a literal (\"Web\") that is not ASCII without upper-case letters"),
        (|b| needs(b).atoms[3].literal = "wéb".to_string(), "NEEDS: atom 3 has a literal (\"wéb\") that is not ASCII without upper-case letters"),
        (|b| needs(b).atoms.swap(1, 2), "NEEDS: atom 2 does not come after the one before it (atoms are strictly ascending)"),
        (|b| needs(b).atoms[2].literal = "bash".to_string(), "NEEDS: atom 2 does not come after the one before it (atoms are strictly ascending)"),
        (|b| needs(b).atoms[3].field = 5, "NEEDS: atom 3 does not come after the one before it (atoms are strictly ascending)"),
        (|b| needs(b).predicates.clear(), "NEEDS: no predicates (a bundle without needs has no NEEDS section)"),
        (|b| needs(b).predicates[2].predicate = 8, "NEEDS: entry 2 names predicate 8, but the bundle has 8"),
        (|b| needs(b).predicates[1].predicate = 3, "NEEDS: entry 1 names predicate 3, which is not an event condition (role 0)"),
        (|b| needs(b).predicates[2].predicate = 6, "NEEDS: entry 2 names predicate 6, which does not come after the one before it (strictly ascending)"),
        (|b| needs(b).predicates[1].clauses.clear(), "NEEDS: entry 1 has 0 clauses (from 1 to 16)"),
        (|b| needs(b).predicates[1].clauses = vec![vec![1]; 17], "NEEDS: entry 1 has 17 clauses (from 1 to 16)"),
        (|b| needs(b).predicates[0].clauses[1].clear(), "NEEDS: entry 0 has clause 1 of 0 atoms (from 1 to 256)"),
        (|b| needs(b).predicates[0].clauses[1] = (0..257).collect(), "NEEDS: entry 0 has clause 1 of 257 atoms (from 1 to 256)"),
        (|b| needs(b).predicates[0].clauses[1] = vec![4], "NEEDS: entry 0 has clause 1 naming atom 4, but there are 4"),
        (|b| needs(b).predicates[0].clauses[0] = vec![2, 1], "NEEDS: entry 0 has clause 0 whose atoms are not strictly ascending"),
        (|b| needs(b).predicates[0].clauses[0] = vec![1, 1], "NEEDS: entry 0 has clause 0 whose atoms are not strictly ascending"),
    ];
    assert_each_edit_is_refused(with_needs, cases);
}

#[test]
fn errors_in_the_section_name_the_byte() {
    let bytes = with_needs().to_bytes().unwrap();
    let body = section_offset(&bytes, NEEDS);
    // The atom count, then each atom: field u32, literal (length u32, bytes).
    let atom1 = body + 4 + (4 + 4 + 2);
    // After the atoms, the predicate count, then each entry: predicate u32, clauses.
    let entry0 = body + 4 + (4 + 4 + 2) + (4 + 4 + 4) + (4 + 4 + 2) + (4 + 4 + 3) + 4;
    let read_patched = |at: usize, patch: &[u8]| patched_error(&bytes, at, patch);
    let cases: Vec<(usize, &[u8], String)> = vec![
        (atom1 + 8, b"B", format!("at byte {atom1}: NEEDS: atom 1 has a literal (\"Bash\") that is not ASCII without upper-case letters")),
        (atom1, &[8, 0, 0, 0], format!("at byte {atom1}: NEEDS: atom 1 names field 8 (\"process.pid\"), which is not a string field")),
        (atom1 + 8, &[0xff], format!("at byte {}: NEEDS: a literal is not valid UTF-8", atom1 + 8)),
        (entry0, &[1, 0, 0, 0], format!("at byte {entry0}: NEEDS: entry 0 names predicate 1, which is not an event condition (role 0)")),
    ];
    for (at, patch, expected) in cases {
        assert_eq!(read_patched(at, patch), expected);
    }
}

/// Every value of every byte of the section (checksum fixed): the reader never panics,
/// and what it accepts is the canonical encoding of what it returns.
#[test]
fn every_byte_of_the_section_mutated() {
    mutate_every_byte_of_section(&with_needs(), NEEDS);
}
