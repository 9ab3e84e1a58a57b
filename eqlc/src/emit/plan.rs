//! Planning a bundle: which fields the rules read (and which need a lower-cased copy),
//! their slots, the categories, predicates and value functions, and the pattern tables.

use crate::tir::{self, Anchor, Case, ExprKind};
use kestrel_bundle::bundle::{CidrBlock, Field, FieldKind, RegexAnchor, RegexPattern};
use kestrel_bundle::schema::Schema;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Slots of the fields the bundle reads.
pub struct FieldSlots {
    slots_offset: u32,
    by_name: HashMap<String, (u32, Option<u32>)>,
    fields: Vec<Field>,
    /// Fields whose plain slot is read: the host's from the start, the others as code
    /// asking for the slot is emitted ([`FieldSlots::slot`]).
    plain_read: RefCell<HashSet<String>>,
}

impl FieldSlots {
    /// Collects every field the rules read and numbers their slots: fields in name
    /// order, then the folded copies.
    /// `extra` names fields the host reads besides those of the rules (the lineage
    /// tracker's).
    pub fn plan<'r>(rules: impl IntoIterator<Item = &'r tir::Rule>, extra: &[String], schema: &Schema, slots_offset: u32) -> FieldSlots {
        let mut used: BTreeMap<String, bool> = extra.iter().map(|name| (name.clone(), false)).collect();
        for rule in rules {
            if rule.pipe_key_case == Case::Insensitive {
                for pipe in &rule.pipes {
                    let keys = match pipe {
                        tir::Pipe::Unique(keys) | tir::Pipe::UniqueCount(keys) | tir::Pipe::Count(keys) | tir::Pipe::Sort(keys) => keys.as_slice(),
                        _ => &[],
                    };
                    for key in keys {
                        if let ExprKind::Field(path) = &rule.expr(*key).kind
                            && path.rest.is_empty()
                        {
                            used.insert(path.name.clone(), true);
                        }
                    }
                }
            }
            for node in &rule.exprs {
                // A field of another step's event is read (and captured) from that event.
                if let ExprKind::Field(path) | ExprKind::StepField { path, .. } = &node.kind {
                    used.entry(path.name.clone()).or_insert(false);
                }
                let case = match &node.kind {
                    ExprKind::Compare { case, .. } | ExprKind::InSet { case, .. } | ExprKind::Wildcard { case, .. } | ExprKind::Call { case, .. } => *case,
                    _ => continue,
                };
                if case == Case::Insensitive {
                    for child in node.kind.children() {
                        if let ExprKind::Field(path) = &rule.expr(child).kind
                            && path.rest.is_empty()
                        {
                            used.insert(path.name.clone(), true);
                        }
                    }
                }
            }
        }
        let mut fields = Vec::new();
        let mut by_name = HashMap::new();
        let plain = used.len() as u32;
        let mut next_folded = plain;
        for (idx, (name, folded)) in used.into_iter().enumerate() {
            let slot = idx as u32;
            let folded_slot = folded.then(|| {
                next_folded += 1;
                next_folded - 1
            });
            let (kind, array) = match schema.field(&name) {
                Some((_, def)) => (FieldKind::Typed(def.ty), def.array),
                None => (FieldKind::Dynamic, false),
            };
            by_name.insert(name.clone(), (slot, folded_slot));
            fields.push(Field { name, kind, array, slot, folded_slot, plain_unread: false });
        }
        FieldSlots { slots_offset, by_name, fields, plain_read: RefCell::new(extra.iter().cloned().collect()) }
    }

    /// The bundle's fields, once all code is emitted: a field with a folded slot whose
    /// plain slot nothing asked for is marked so (the host need not write it).
    pub fn into_fields(self) -> Vec<Field> {
        let read = self.plain_read.into_inner();
        self.fields.into_iter().map(|field| Field { plain_unread: field.folded_slot.is_some() && !read.contains(&field.name), ..field }).collect()
    }

    /// The bundle's fields, in their final order (which plain slots are read is known
    /// only once all code is emitted: [`FieldSlots::into_fields`]).
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn slot_count(&self) -> u32 {
        self.fields.len() as u32 + self.fields.iter().filter(|field| field.folded_slot.is_some()).count() as u32
    }

    fn address(&self, slot: u32) -> u32 {
        self.slots_offset + slot * kestrel_bundle::abi::SLOT_SIZE
    }

    /// Address of a field's slot (from now on the plain slot counts as read).
    pub fn slot(&self, name: &str) -> u32 {
        if !self.plain_read.borrow().contains(name) {
            self.plain_read.borrow_mut().insert(name.to_string());
        }
        let (slot, _) = self.by_name[name];
        self.address(slot)
    }

    /// Address of a field's lower-cased slot, if it has one.
    pub fn folded_slot(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).and_then(|(_, folded)| folded.map(|slot| self.address(slot)))
    }
}

/// The regex and CIDR tables the host functions use.
#[derive(Default)]
pub struct Patterns {
    pub regexes: Vec<RegexPattern>,
    pub cidr_sets: Vec<Vec<CidrBlock>>,
}

impl Patterns {
    pub fn regex(&mut self, pattern: &str, case: Case, anchor: Anchor) -> u32 {
        let wanted = RegexPattern {
            pattern: pattern.to_string(),
            case_insensitive: case == Case::Insensitive,
            anchor: match anchor {
                Anchor::Whole => RegexAnchor::Whole,
                Anchor::Start => RegexAnchor::Start,
            },
        };
        if let Some(idx) = self.regexes.iter().position(|existing| *existing == wanted) {
            return idx as u32;
        }
        self.regexes.push(wanted);
        self.regexes.len() as u32 - 1
    }

    /// A CIDR set from literals the checker has validated.
    pub fn cidr_set(&mut self, blocks: &[String]) -> u32 {
        let set: Vec<CidrBlock> =
            blocks.iter().filter_map(|text| crate::check::parse_cidr(text).ok()).map(|(address, prefix)| CidrBlock { address, prefix }).collect();
        if let Some(idx) = self.cidr_sets.iter().position(|existing| *existing == set) {
            return idx as u32;
        }
        self.cidr_sets.push(set);
        self.cidr_sets.len() as u32 - 1
    }
}

/// Category names of the event queries, sorted; a category id is an index.
pub fn categories<'r>(queries: impl IntoIterator<Item = &'r tir::EventQuery>) -> Vec<String> {
    let names: BTreeSet<String> = queries
        .into_iter()
        .filter_map(|query| match &query.category {
            tir::Category::Named(name) => Some(name.clone()),
            tir::Category::Any => None,
        })
        .collect();
    names.into_iter().collect()
}
