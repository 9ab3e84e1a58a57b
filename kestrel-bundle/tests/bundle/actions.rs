//! The `ACTIONS` section: rule actions round-trip, show in `inspect`, and every check
//! of the section has a failing example, with the byte it names when read from a file.

use crate::handmade::{
    Edit, assert_each_edit_is_refused, fix_checksum, handmade, mutate_every_byte_of_section, round_trip_with_last_section, section_offset, sections,
};
use kestrel_bundle::enforce::{Action, KillTarget, RuleAction, Whom};
use kestrel_bundle::{Bundle, TableKind};

const ACTIONS: u32 = 10;

fn kill(targets: &[(Whom, u32, bool)]) -> Action {
    Action::Kill(targets.iter().map(|(whom, step, tree)| KillTarget { whom: *whom, step: *step, tree: *tree }).collect())
}

/// The hand-built bundle with a block on rule 0 and a kill on the sequence (rule 2,
/// three positive steps and a trailing missing one).
fn with_actions() -> Bundle {
    let mut bundle = handmade();
    bundle.actions = vec![
        RuleAction { rule: 0, action: Action::Block, at_exec: true },
        RuleAction { rule: 2, action: kill(&[(Whom::Process, 0, false), (Whom::Parent, 2, true)]), at_exec: false },
    ];
    bundle
}

#[test]
fn actions_round_trip_and_show_in_inspect() {
    let bundle = with_actions();
    let text = round_trip_with_last_section(&bundle, ACTIONS);
    assert!(text.contains("    action       block (decided at the exec hook)\n"), "{text}");
    assert!(text.contains("    action       kill process of step 0, parent of step 2 (tree)\n"), "{text}");
    // No actions: no section, and the bytes of a bundle without actions are unchanged.
    let plain = handmade().to_bytes().expect("writes");
    assert!(sections(&plain).iter().all(|(kind, ..)| *kind != ACTIONS));
}

#[test]
fn every_action_check_has_a_failing_example() {
    let cases: Vec<(Edit, &str)> = vec![
        (|b| b.actions[1].rule = 3, "ACTIONS: entry 1 (rule 3): the rule is out of range (there are 3 rules)"),
        (|b| b.actions[1].rule = 0, "ACTIONS: entry 1 (rule 0): comes after the entry of rule 0; entries are sorted by rule, at most one per rule"),
        (|b| b.actions.swap(0, 1), "ACTIONS: entry 1 (rule 0): comes after the entry of rule 2; entries are sorted by rule, at most one per rule"),
        (|b| b.actions[1].action = Action::Kill(Vec::new()), "ACTIONS: entry 1 (rule 2): kill names no process"),
        (|b| b.actions[1].action = kill(&[(Whom::Process, 0, false); 17]), "ACTIONS: entry 1 (rule 2): kill names 17 processes; at most 16"),
        (
            |b| b.actions[1].action = kill(&[(Whom::Process, 0, false), (Whom::Parent, 3, false)]),
            "ACTIONS: entry 1 (rule 2): kill target 1: step 3 is out of range (the rule has 3 positive steps)",
        ),
        (
            |b| b.actions[0].action = kill(&[(Whom::Process, 1, false)]),
            "ACTIONS: entry 0 (rule 0): kill target 0: step 1 is out of range (the rule has 1 positive steps)",
        ),
        (
            |b| {
                b.sequences.as_mut().unwrap()[0].kind = TableKind::Join;
                let table = &mut b.sequences.as_mut().unwrap()[0];
                table.maxspan_ns = None;
                table.steps.truncate(3);
                b.actions[1].action = Action::Block;
            },
            "ACTIONS: entry 1 (rule 2): block needs one event to decide, so it is for an event query or a sequence, not a join",
        ),
    ];
    assert_each_edit_is_refused(with_actions, cases);
}

/// The bytes of `with_actions()` with `patch` written at `at` (checksum fixed), read.
fn read_patched(at: usize, patch: &[u8]) -> String {
    let mut bytes = with_actions().to_bytes().unwrap();
    bytes[at..at + patch.len()].copy_from_slice(patch);
    fix_checksum(&mut bytes);
    Bundle::from_bytes(&bytes).expect_err("the patched bundle is invalid").to_string()
}

#[test]
fn errors_in_the_section_name_the_byte() {
    let bytes = with_actions().to_bytes().unwrap();
    let body = section_offset(&bytes, ACTIONS);
    // count, then entry 0 (rule u32, at_exec u8, kind u8), then entry 1: rule, at_exec,
    // kind, count, targets.
    let entry1 = body + 4 + 6;
    let target1 = entry1 + 4 + 1 + 1 + 4 + 6;
    let cases: Vec<(usize, Vec<u8>, String)> = vec![
        (body, vec![0], format!("at byte {body}: ACTIONS: the section lists no actions (a bundle whose rules only alert has no ACTIONS section)")),
        (body + 8, vec![2], format!("at byte {}: ACTIONS: entry 0: at_exec is 2, expected 0 (false) or 1 (true)", body + 8)),
        (body + 8, vec![0], format!("at byte {}: ACTIONS: entry 0: a `block` action is always decided at the exec hook (at_exec must be 1)", body + 8)),
        (body + 9, vec![2], format!("at byte {}: ACTIONS: entry 0: action kind is 2, expected 0 (block) or 1 (kill)", body + 9)),
        (target1, vec![2], format!("at byte {target1}: ACTIONS: entry 1: target 1: whom is 2, expected 0 (process) or 1 (parent)")),
        (target1 + 5, vec![2], format!("at byte {}: ACTIONS: entry 1: target 1: tree is 2, expected 0 (false) or 1 (true)", target1 + 5)),
        (
            entry1,
            vec![0],
            format!("at byte {entry1}: ACTIONS: entry 1 (rule 0): comes after the entry of rule 0; entries are sorted by rule, at most one per rule"),
        ),
        (
            target1 + 1,
            vec![7],
            format!("at byte {}: ACTIONS: entry 1 (rule 2): kill target 1: step 7 is out of range (the rule has 3 positive steps)", target1 + 1),
        ),
    ];
    for (at, patch, expected) in cases {
        assert_eq!(read_patched(at, &patch), expected);
    }
}

/// Every value of every byte of the section (checksum fixed): the reader never panics,
/// and what it accepts is the canonical encoding of what it returns.
#[test]
fn every_byte_of_the_section_mutated() {
    mutate_every_byte_of_section(&with_actions(), ACTIONS);
}
