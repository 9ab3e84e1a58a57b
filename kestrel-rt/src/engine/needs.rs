//! The bundle's needs (docs/bundle-format.md, `NEEDS`) tested on each candidate event:
//! one search per field of the field's values for every literal the bundle's predicates
//! need there, then a skip bit (docs/abi.md, skip region) for each listed predicate one
//! of whose clauses found none of its atoms. Such a predicate cannot be true on the
//! event, so `eval` does not run it: the results are the same as without the bits.

use super::Event;
use aho_corasick::AhoCorasick;
use kestrel_bundle::bundle::Bundle;
use kestrel_bundle::semantics::Value;

/// The needs of a bundle, ready to test events against.
pub(super) struct NeedsTest {
    fields: Vec<FieldSearch>,
    /// The clauses each atom satisfies (global clause numbers).
    atom_clauses: Vec<Vec<u32>>,
    /// Each listed predicate and its clause numbers (consecutive).
    predicates: Vec<(u32, std::ops::Range<u32>)>,
    /// Indices into `predicates` of those for any category, then by category id: an
    /// event's skip bits are read only for the predicates of its categories.
    for_any: Vec<usize>,
    by_category: Vec<Vec<usize>>,
    /// The clauses satisfied on the event being tested, a bit each.
    satisfied: Vec<u64>,
    /// Bytes of skip bits per event.
    stride: usize,
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
}

impl NeedsTest {
    /// `None` when the bundle has no needs, or an automaton cannot be built (a few
    /// thousand short literals at most, by the bundle's limits: then every predicate
    /// simply runs).
    pub(super) fn new(bundle: &Bundle) -> Option<NeedsTest> {
        let needs = bundle.needs.as_ref()?;
        let mut atom_clauses = vec![Vec::new(); needs.atoms.len()];
        let mut predicates = Vec::with_capacity(needs.predicates.len());
        let mut clause = 0u32;
        for entry in &needs.predicates {
            let first = clause;
            for atoms in &entry.clauses {
                for atom in atoms {
                    atom_clauses[*atom as usize].push(clause);
                }
                clause += 1;
            }
            predicates.push((entry.predicate, first..clause));
        }
        let mut for_any = Vec::new();
        let mut by_category = vec![Vec::new(); bundle.functions.categories.len()];
        for (index, (predicate, _)) in predicates.iter().enumerate() {
            match bundle.functions.predicates[*predicate as usize].category {
                None => for_any.push(index),
                Some(category) => by_category[category as usize].push(index),
            }
        }
        let mut fields = Vec::new();
        for field in needs.atoms.iter().map(|atom| atom.field).collect::<std::collections::BTreeSet<u32>>() {
            let (atoms, literals): (Vec<u32>, Vec<&str>) =
                needs.atoms.iter().enumerate().filter(|(_, atom)| atom.field == field).map(|(number, atom)| (number as u32, atom.literal.as_str())).unzip();
            let automaton = AhoCorasick::builder().ascii_case_insensitive(true).build(&literals).ok()?;
            let mut all_clauses: Vec<u32> = atoms.iter().flat_map(|atom| atom_clauses[*atom as usize].iter().copied()).collect();
            all_clauses.sort_unstable();
            all_clauses.dedup();
            fields.push(FieldSearch { field: field as usize, automaton, atoms, all_clauses });
        }
        let satisfied = vec![0; (clause as usize).div_ceil(64)];
        let stride = bundle.manifest.layout.skip_stride() as usize;
        Some(NeedsTest { fields, atom_clauses, predicates, for_any, by_category, satisfied, stride })
    }

    /// Writes the skip bits of `event` into `skips` (at least the stride long): a bit set
    /// for each listed predicate of the event's categories (or of any category) one of
    /// whose clauses has no atom that holds; `eval` reads no other. Returns how many
    /// are set.
    pub(super) fn write(&mut self, event: &Event, skips: &mut [u8]) -> u64 {
        self.satisfied.fill(0);
        for search in &self.fields {
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
        let skips = &mut skips[..self.stride];
        skips.fill(0);
        let mut set = 0;
        let lists = std::iter::once(&self.for_any).chain(event.categories.iter().filter_map(|category| self.by_category.get(category as usize)));
        for index in lists.flatten() {
            let (predicate, clauses) = &self.predicates[*index];
            if clauses.clone().any(|clause| self.satisfied[clause as usize / 64] & (1 << (clause % 64)) == 0) {
                skips[*predicate as usize / 8] |= 1 << (predicate % 8);
                set += 1;
            }
        }
        set
    }
}

impl FieldSearch {
    /// Marks the clauses of the literals in `text`, or every clause of the field when
    /// `text` is not ASCII (its Unicode lower-case form may hold a literal the ASCII
    /// search cannot see: the Kelvin sign is a `k`).
    fn find(&self, text: &str, atom_clauses: &[Vec<u32>], satisfied: &mut [u64]) {
        if !text.is_ascii() {
            mark(&self.all_clauses, satisfied);
            return;
        }
        for found in self.automaton.find_overlapping_iter(text) {
            mark(&atom_clauses[self.atoms[found.pattern().as_usize()] as usize], satisfied);
        }
    }
}

fn mark(clauses: &[u32], satisfied: &mut [u64]) {
    for clause in clauses {
        satisfied[*clause as usize / 64] |= 1 << (clause % 64);
    }
}
