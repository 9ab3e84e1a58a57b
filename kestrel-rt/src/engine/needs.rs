//! The bundle's needs (docs/bundle-format.md, `NEEDS`) tested on each candidate event:
//! one search per field of the field's values for every literal the bundle's predicates
//! need there, then a skip bit (docs/abi.md, skip region) for each listed predicate one
//! of whose clauses found none of its atoms. Such a predicate cannot be true on the
//! event, so `eval` does not run it: the results are the same as without the bits.
//!
//! The work per event follows what the event satisfies, not the size of the rule set:
//! identical clauses of different predicates are one (`host.os.type has "linux"` is in
//! hundreds of Linux rules), each predicate is keyed by its clause that the fewest
//! predicates share, and an event's skip bits start as every listed predicate of its
//! categories; only the predicates whose key clause the event satisfied are looked at,
//! and those whose every clause it satisfied are cleared. A field's short values repeat
//! (`event.type`, `host.os.type`, `process.name`), so what each satisfied is kept in a
//! bounded memo instead of searched again (turned off for a field whose values do not).

use super::Event;
use aho_corasick::{AhoCorasick, AhoCorasickKind};
use kestrel_bundle::bundle::Bundle;
use kestrel_bundle::semantics::Value;
use std::collections::HashMap;

/// Most bytes of literals, over all fields, searched with DFAs; the other fields' are
/// left to the builder's choice (an NFA for many literals). A DFA's size grows with its
/// literals' bytes times the alphabet: the Linux corpus rule set's 51 KB of literals
/// take 16 MB of DFAs.
const MAX_DFA_BYTES: usize = 64 << 10;

/// The needs of a bundle, ready to test events against.
pub(super) struct NeedsTest {
    fields: Vec<FieldSearch>,
    /// The (distinct) clauses each atom satisfies.
    atom_clauses: Vec<Vec<u32>>,
    predicates: Vec<Keyed>,
    /// The clauses of the predicates other than their key, back to back.
    others: Vec<u32>,
    /// By clause: the predicates (indices into `predicates`) it is the key of.
    keyed_by: Vec<Vec<u32>>,
    /// The skip bits of every listed predicate for any category, and by category id,
    /// with how many bits each sets.
    for_any: (Vec<u8>, u64),
    by_category: Vec<(Vec<u8>, u64)>,
    /// The clauses satisfied on the event being tested, a bit each.
    satisfied: Vec<u64>,
    /// Bytes of skip bits per event.
    stride: usize,
}

/// A listed predicate, by its key clause.
struct Keyed {
    /// Its skip bit: byte and mask.
    byte: usize,
    mask: u8,
    category: Option<u32>,
    /// Its other clauses, in `others`.
    others: std::ops::Range<usize>,
}

/// One field's literals.
struct FieldSearch {
    field: usize,
    automaton: AhoCorasick,
    /// The atom of each of the automaton's patterns.
    atoms: Vec<u32>,
    /// Every clause some atom of the field satisfies: what a value the search cannot
    /// speak for (not ASCII, not a string) satisfies.
    all_clauses: Vec<u32>,
    /// The clauses short values satisfy, as found.
    memo: Memo,
}

/// Longest value the memo keeps.
const MEMO_MAX_LEN: usize = 64;
/// Most values the memo of one field keeps.
const MEMO_CAPACITY: usize = 1024;

/// What a field's short values satisfied: most fields' values repeat (`event.type`,
/// `process.name`), and a lookup costs less than a search. Emptied when it holds
/// [`MEMO_CAPACITY`] values; a field whose values were found again fewer times than
/// half of that by then (ids, names that do not repeat) has its memo turned off, so
/// that it does not allocate a kept copy per value.
#[derive(Default)]
struct Memo {
    values: HashMap<Box<str>, Box<[u32]>>,
    /// Lookups that found their value, since the memo was last emptied.
    hits: usize,
    off: bool,
}

impl Memo {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.values.len()
    }

    fn get(&mut self, text: &str) -> Option<&[u32]> {
        let found = self.values.get(text)?;
        self.hits += 1;
        Some(found)
    }

    fn keep(&mut self, text: &str, clauses: Vec<u32>) {
        if self.values.len() >= MEMO_CAPACITY {
            self.off = self.hits < MEMO_CAPACITY / 2;
            self.values.clear();
            self.hits = 0;
        }
        if !self.off {
            self.values.insert(text.into(), clauses.into_boxed_slice());
        }
    }
}

impl NeedsTest {
    /// `None` when the bundle has no needs, or an automaton cannot be built (a few
    /// thousand short literals at most, by the bundle's limits: then every predicate
    /// simply runs).
    pub(super) fn new(bundle: &Bundle) -> Option<NeedsTest> {
        let needs = bundle.needs.as_ref()?;
        let stride = bundle.manifest.layout.skip_stride() as usize;
        // The distinct clauses, numbered, and how many predicates share each.
        let mut numbers: HashMap<&[u32], u32> = HashMap::new();
        let mut sharers: Vec<u32> = Vec::new();
        let clauses: Vec<Vec<u32>> = needs
            .predicates
            .iter()
            .map(|entry| {
                entry
                    .clauses
                    .iter()
                    .map(|clause| {
                        let next = numbers.len() as u32;
                        let number = *numbers.entry(clause.as_slice()).or_insert(next);
                        if number == next {
                            sharers.push(0);
                        }
                        sharers[number as usize] += 1;
                        number
                    })
                    .collect()
            })
            .collect();
        let mut atom_clauses = vec![Vec::new(); needs.atoms.len()];
        for (clause, number) in &numbers {
            for atom in clause.iter() {
                atom_clauses[*atom as usize].push(*number);
            }
        }
        let mut predicates = Vec::with_capacity(needs.predicates.len());
        let mut others = Vec::new();
        let mut keyed_by = vec![Vec::new(); numbers.len()];
        let mut for_any = (vec![0u8; stride], 0);
        let mut by_category = vec![(vec![0u8; stride], 0); bundle.functions.categories.len()];
        for (entry, numbers) in needs.predicates.iter().zip(&clauses) {
            // The key: the clause fewest predicates share (the first of them in eqlc's
            // order, strongest first).
            // (A listed predicate has a clause, by validation; one without would just run.)
            let Some(key) = numbers.iter().copied().min_by_key(|number| sharers[*number as usize]) else { continue };
            let start = others.len();
            others.extend(numbers.iter().copied().filter(|number| *number != key));
            keyed_by[key as usize].push(predicates.len() as u32);
            let (byte, mask) = (entry.predicate as usize / 8, 1u8 << (entry.predicate % 8));
            let category = bundle.functions.predicates[entry.predicate as usize].category;
            let template = match category {
                None => &mut for_any,
                Some(category) => &mut by_category[category as usize],
            };
            template.0[byte] |= mask;
            template.1 += 1;
            predicates.push(Keyed { byte, mask, category, others: start..others.len() });
        }
        let mut fields = Vec::new();
        let mut dfa_bytes = MAX_DFA_BYTES;
        for field in needs.atoms.iter().map(|atom| atom.field).collect::<std::collections::BTreeSet<u32>>() {
            let (atoms, literals): (Vec<u32>, Vec<&str>) =
                needs.atoms.iter().enumerate().filter(|(_, atom)| atom.field == field).map(|(number, atom)| (number as u32, atom.literal.as_str())).unzip();
            // A DFA is the fastest search (on the corpus rule set 12% fewer instructions
            // than the contiguous NFA), within the budget.
            let bytes: usize = literals.iter().map(|literal| literal.len()).sum();
            let kind = (bytes <= dfa_bytes).then(|| {
                dfa_bytes -= bytes;
                AhoCorasickKind::DFA
            });
            let automaton = AhoCorasick::builder().ascii_case_insensitive(true).kind(kind).build(&literals).ok()?;
            let mut all_clauses: Vec<u32> = atoms.iter().flat_map(|atom| atom_clauses[*atom as usize].iter().copied()).collect();
            all_clauses.sort_unstable();
            all_clauses.dedup();
            fields.push(FieldSearch { field: field as usize, automaton, atoms, all_clauses, memo: Memo::default() });
        }
        let satisfied = vec![0; numbers.len().div_ceil(64)];
        Some(NeedsTest { fields, atom_clauses, predicates, others, keyed_by, for_any, by_category, satisfied, stride })
    }

    /// Writes the skip bits of `event` into `skips` (at least the stride long): a bit set
    /// for each listed predicate of the event's categories (or of any category) one of
    /// whose clauses has no atom that holds; `eval` reads no other. Returns how many
    /// are set.
    pub(super) fn write(&mut self, event: &Event, skips: &mut [u8]) -> u64 {
        self.satisfied.fill(0);
        for search in &mut self.fields {
            let Some(value) = event.fields.get(search.field).and_then(Option::as_ref) else { continue };
            match value {
                Value::Null => {}
                Value::Str(text) => search.find(text, &self.atom_clauses, &mut self.satisfied),
                Value::Array(items) => {
                    for item in items {
                        match item {
                            Value::Null => {}
                            Value::Str(text) => search.find(text, &self.atom_clauses, &mut self.satisfied),
                            _ => mark(&search.all_clauses, &mut self.satisfied),
                        }
                    }
                }
                _ => mark(&search.all_clauses, &mut self.satisfied),
            }
        }
        // Every listed predicate of the event's categories...
        let skips = &mut skips[..self.stride];
        skips.copy_from_slice(&self.for_any.0);
        let mut set = self.for_any.1;
        for category in event.categories.iter() {
            if let Some((template, count)) = self.by_category.get(category as usize) {
                skips.iter_mut().zip(template).for_each(|(byte, bits)| *byte |= bits);
                set += count;
            }
        }
        // ...but those whose every clause the event satisfied, found by their key.
        for (word_index, word) in self.satisfied.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let clause = word_index * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                for index in &self.keyed_by[clause] {
                    let predicate = &self.predicates[*index as usize];
                    let candidate = predicate.category.is_none_or(|category| event.categories.contains(category));
                    if candidate && self.others[predicate.others.clone()].iter().all(|other| is_set(&self.satisfied, *other)) {
                        skips[predicate.byte] &= !predicate.mask;
                        set -= 1;
                    }
                }
            }
        }
        set
    }
}

impl FieldSearch {
    /// Marks the clauses of the literals in `text`, or every clause of the field when
    /// `text` is not ASCII (its Unicode lower-case form may hold a literal the ASCII
    /// search cannot see: the Kelvin sign is a `k`).
    fn find(&mut self, text: &str, atom_clauses: &[Vec<u32>], satisfied: &mut [u64]) {
        if !text.is_ascii() {
            mark(&self.all_clauses, satisfied);
            return;
        }
        if text.len() > MEMO_MAX_LEN || self.memo.off {
            for found in self.automaton.find_overlapping_iter(text) {
                mark(&atom_clauses[self.atoms[found.pattern().as_usize()] as usize], satisfied);
            }
            return;
        }
        if let Some(clauses) = self.memo.get(text) {
            mark(clauses, satisfied);
            return;
        }
        let mut clauses: Vec<u32> = self
            .automaton
            .find_overlapping_iter(text)
            .flat_map(|found| atom_clauses[self.atoms[found.pattern().as_usize()] as usize].iter().copied())
            .collect();
        clauses.sort_unstable();
        clauses.dedup();
        mark(&clauses, satisfied);
        self.memo.keep(text, clauses);
    }
}

fn mark(clauses: &[u32], satisfied: &mut [u64]) {
    for clause in clauses {
        satisfied[*clause as usize / 64] |= 1 << (clause % 64);
    }
}

fn is_set(satisfied: &[u64], clause: u32) -> bool {
    satisfied[clause as usize / 64] & (1 << (clause % 64)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field with the literals `bash` (clause 0) and `sh` (clauses 1 and 2).
    fn search() -> (FieldSearch, Vec<Vec<u32>>) {
        let automaton = AhoCorasick::builder().ascii_case_insensitive(true).build(["bash", "sh"]).unwrap();
        let search = FieldSearch { field: 0, automaton, atoms: vec![0, 1], all_clauses: vec![0, 1, 2], memo: Memo::default() };
        (search, vec![vec![0], vec![1, 2]])
    }

    fn found(search: &mut FieldSearch, atom_clauses: &[Vec<u32>], text: &str) -> u64 {
        let mut satisfied = [0u64];
        search.find(text, atom_clauses, &mut satisfied);
        satisfied[0]
    }

    /// The memo gives what the search gives, for values seen once and again, in any case,
    /// long or not ASCII (neither kept), and it stays within its capacity.
    #[test]
    fn the_memo_gives_what_the_search_gives_and_stays_bounded() {
        let (mut search, atom_clauses) = search();
        let long = format!("{}bash", "x".repeat(MEMO_MAX_LEN));
        for _ in 0..2 {
            assert_eq!(found(&mut search, &atom_clauses, "BaSh"), 0b111);
            assert_eq!(found(&mut search, &atom_clauses, "zsh"), 0b110);
            assert_eq!(found(&mut search, &atom_clauses, "curl"), 0);
            assert_eq!(found(&mut search, &atom_clauses, &long), 0b111);
            assert_eq!(found(&mut search, &atom_clauses, "\u{212A}ill"), 0b111);
        }
        assert_eq!(search.memo.len(), 3, "long and non-ASCII values are not kept");
        for number in 0..3 * MEMO_CAPACITY {
            let value = format!("v{number}sh");
            assert_eq!(found(&mut search, &atom_clauses, &value), 0b110);
            assert!(search.memo.len() <= MEMO_CAPACITY);
        }
        assert_eq!(found(&mut search, &atom_clauses, "bash"), 0b111);
    }

    /// A field whose values repeat keeps its memo when it fills; one whose values do
    /// not has it turned off, and still finds what the search finds.
    #[test]
    fn the_memo_is_turned_off_for_values_that_do_not_repeat() {
        let (mut repeating, atom_clauses) = search();
        for number in 0..2 * MEMO_CAPACITY {
            found(&mut repeating, &atom_clauses, &format!("v{}sh", number % MEMO_CAPACITY));
        }
        assert_eq!(repeating.memo.len(), MEMO_CAPACITY);
        // Full: the next new value empties it, and it stays on.
        assert_eq!(found(&mut repeating, &atom_clauses, "zsh"), 0b110);
        assert!(!repeating.memo.off);
        assert_eq!(repeating.memo.len(), 1);
        let (mut unique, atom_clauses) = search();
        for number in 0..MEMO_CAPACITY + 1 {
            found(&mut unique, &atom_clauses, &format!("u{number}"));
        }
        assert!(unique.memo.off);
        assert_eq!(unique.memo.len(), 0);
        assert_eq!(found(&mut unique, &atom_clauses, "bash"), 0b111);
    }
}
