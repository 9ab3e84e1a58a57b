//! Properties: arbitrary valid bundles (with hand-written predicates and rule actions)
//! round-trip byte-for-byte, and `Layout::plan` gives valid layouts.

use kestrel_bundle::bundle::{CaptureDecl, CustomLimits, CustomPredicate, CustomRuntime, NeedAtom, Needs, PredicateNeeds, Prefilter, WASM_HEADER};
use kestrel_bundle::enforce::{Action, KillTarget, RuleAction, Whom};
use kestrel_bundle::schema::{FieldType, TimestampUnit};
use kestrel_bundle::{
    Bundle, CidrBlock, Field, FieldKind, Functions, Layout, Manifest, Patterns, Pipe, Predicate, PredicateRole, Query, RegexAnchor, RegexPattern, Rule,
    SequenceFlavor, SequenceKey, SequenceStep, SequenceTable, TableKind, ValueFn,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A pipe before its predicate and value-function ids are assigned.
#[derive(Clone, Debug)]
enum PipePlan {
    Head(u64),
    Tail(u64),
    Filter(Option<usize>),
    Keys(u8, Vec<usize>),
}

/// A rule before ids are assigned.
#[derive(Clone, Debug)]
struct RulePlan {
    id: String,
    name: String,
    severity: String,
    risk_score: Option<f64>,
    description: Option<String>,
    tags: Vec<String>,
    category: Option<usize>,
    values: usize,
    pipes: Vec<PipePlan>,
    sequence: Option<SequencePlan>,
}

/// A sequence query: per step (category pick, missing, fork), the key width and which
/// keys are optional, and the until step's category pick.
#[derive(Clone, Debug)]
struct SequencePlan {
    steps: Vec<(Option<usize>, bool, bool)>,
    width: usize,
    optional: Vec<bool>,
    maxspan_ns: Option<u64>,
    endgame: bool,
    fold_case: bool,
    until: Option<Option<usize>>,
}

fn sequence_plan() -> impl Strategy<Value = SequencePlan> {
    (
        prop::collection::vec((prop::option::of(any::<usize>()), any::<bool>(), any::<bool>()), 1..5),
        0usize..4,
        prop::collection::vec(any::<bool>(), 4),
        (prop::option::of(any::<u64>()), any::<bool>(), any::<bool>()),
        prop::option::of(prop::option::of(any::<usize>())),
    )
        .prop_map(|(steps, width, optional, (maxspan_ns, endgame, fold_case), until)| SequencePlan {
            steps,
            width,
            optional,
            maxspan_ns,
            endgame,
            fold_case,
            until,
        })
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("\\PC{{0,{max}}}")).unwrap()
}

fn non_empty_text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("\\PC{{1,{max}}}")).unwrap()
}

fn field_kind() -> impl Strategy<Value = FieldKind> {
    prop_oneof![prop::sample::select(FieldType::ALL.to_vec()).prop_map(FieldKind::Typed), Just(FieldKind::Dynamic)]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use prop::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

fn pipe_plan() -> impl Strategy<Value = PipePlan> {
    prop_oneof![
        any::<u64>().prop_map(PipePlan::Head),
        any::<u64>().prop_map(PipePlan::Tail),
        prop::option::of(any::<usize>()).prop_map(PipePlan::Filter),
        (3u8..=6, prop::collection::vec(any::<usize>(), 0..4)).prop_map(|(kind, keys)| PipePlan::Keys(kind, keys)),
    ]
}

fn rule_plan() -> impl Strategy<Value = RulePlan> {
    (
        (non_empty_text(12), text(16), prop::sample::select(vec!["", "low", "medium", "high", "critical"])),
        (prop::option::of(finite_f64()), prop::option::of(text(24)), prop::collection::vec(text(8), 0..3)),
        (prop::option::of(any::<usize>()), 0usize..4, prop::collection::vec(pipe_plan(), 0..5), prop::option::of(sequence_plan())),
    )
        .prop_map(|((id, name, severity), (risk_score, description, tags), (category, values, pipes, sequence))| RulePlan {
            id,
            name,
            severity: severity.to_string(),
            risk_score,
            description,
            tags,
            category,
            values,
            pipes,
            sequence,
        })
}

fn cidr_block() -> impl Strategy<Value = CidrBlock> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(octets, prefix)| CidrBlock { address: IpAddr::V4(Ipv4Addr::from(octets)), prefix }),
        (any::<[u8; 16]>(), 0u8..=128).prop_map(|(octets, prefix)| CidrBlock { address: IpAddr::V6(Ipv6Addr::from(octets)), prefix }),
    ]
}

fn patterns() -> impl Strategy<Value = Patterns> {
    let regex = (text(20), any::<bool>(), prop::sample::select(vec![RegexAnchor::Whole, RegexAnchor::Start]))
        .prop_map(|(pattern, case_insensitive, anchor)| RegexPattern { pattern, case_insensitive, anchor });
    (prop::collection::vec(regex, 0..4), prop::collection::vec(prop::collection::vec(cidr_block(), 0..4), 0..3))
        .prop_map(|(regexes, cidr_sets)| Patterns { regexes, cidr_sets })
}

/// A permutation of `0..len` drawn from `seed`.
fn permutation(len: usize, mut seed: u64) -> Vec<usize> {
    let mut items: Vec<usize> = (0..len).collect();
    for index in (1..len).rev() {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        items.swap(index, (seed >> 33) as usize % (index + 1));
    }
    items
}

/// Assigns ids: each rule gets its value functions and predicates, then predicates,
/// value functions and slots are shuffled so that nothing relies on their order.
#[allow(clippy::too_many_arguments)]
fn build(
    fields: BTreeMap<String, (FieldKind, bool, bool)>,
    categories: BTreeSet<String>,
    plans: Vec<RulePlan>,
    patterns: Patterns,
    (extra_slots, category_capacity, data_capacity, heap_capacity): (u32, u32, u32, u32),
    (compiler, schema_name, schema_fingerprint, unit): (String, String, u64, TimestampUnit),
    wasm_tail: Vec<u8>,
    seed: u64,
) -> Bundle {
    let categories: Vec<String> = categories.into_iter().collect();
    let mut predicates = Vec::new();
    let mut values = Vec::new();
    let mut rules = Vec::new();
    let mut tables = Vec::new();
    for (index, plan) in plans.into_iter().enumerate() {
        let rule = index as u32;
        let needs_keys = plan.pipes.iter().any(|pipe| matches!(pipe, PipePlan::Keys(..)));
        let width = plan.sequence.as_ref().map_or(0, |sequence| sequence.width);
        let own_values: Vec<u32> = (0..plan.values.max(usize::from(needs_keys)).max(width))
            .map(|_| {
                values.push(ValueFn { rule });
                values.len() as u32 - 1
            })
            .collect();
        let category_of = |pick: Option<usize>| pick.filter(|_| !categories.is_empty()).map(|pick| (pick % categories.len()) as u32);
        let query = match &plan.sequence {
            None => {
                predicates.push(Predicate { rule, role: PredicateRole::EventCondition, category: category_of(plan.category) });
                Query::Event { predicate: predicates.len() as u32 - 1 }
            }
            Some(sequence) => {
                let mut step = |category: Option<usize>, missing: bool, fork: bool, source_step: u32| {
                    predicates.push(Predicate { rule, role: PredicateRole::EventCondition, category: category_of(category) });
                    let keys = (0..sequence.width).map(|key| SequenceKey { value: own_values[key], optional: sequence.optional[key], slot: None }).collect();
                    SequenceStep { predicate: predicates.len() as u32 - 1, keys, missing, fork, source_step, check: None, captures: Vec::new() }
                };
                let steps = sequence.steps.iter().enumerate().map(|(idx, (category, missing, fork))| step(*category, *missing, *fork, idx as u32)).collect();
                let until = sequence.until.map(|category| step(category, false, false, 0));
                tables.push(SequenceTable {
                    rule,
                    kind: TableKind::Sequence,
                    flavor: if sequence.endgame { SequenceFlavor::Endgame } else { SequenceFlavor::Elasticsearch },
                    fold_case: sequence.fold_case,
                    maxspan_ns: sequence.maxspan_ns,
                    steps,
                    until,
                });
                Query::Sequence { table: tables.len() as u32 - 1 }
            }
        };
        let pipes = plan
            .pipes
            .into_iter()
            .map(|pipe| match pipe {
                PipePlan::Head(count) => Pipe::Head(count),
                PipePlan::Tail(count) => Pipe::Tail(count),
                PipePlan::Filter(category) => {
                    predicates.push(Predicate { rule, role: PredicateRole::PipeFilter, category: category_of(category) });
                    Pipe::Filter(predicates.len() as u32 - 1)
                }
                PipePlan::Keys(kind, mut picks) => {
                    if picks.is_empty() && kind != 5 {
                        picks.push(0);
                    }
                    let keys = picks.into_iter().map(|pick| own_values[pick % own_values.len()]).collect();
                    match kind {
                        3 => Pipe::Unique(keys),
                        4 => Pipe::UniqueCount(keys),
                        5 => Pipe::Count(keys),
                        _ => Pipe::Sort(keys),
                    }
                }
            })
            .collect();
        let RulePlan { id, name, severity, risk_score, description, tags, .. } = plan;
        rules.push(Rule { id, name, severity, risk_score, description, tags, query, pipes });
    }

    // Shuffle predicates and value functions, renumbering every reference.
    let predicate_order = permutation(predicates.len(), seed);
    let value_order = permutation(values.len(), seed.rotate_left(17));
    let mut predicate_id = vec![0u32; predicates.len()];
    for (new, old) in predicate_order.iter().enumerate() {
        predicate_id[*old] = new as u32;
    }
    let mut value_id = vec![0u32; values.len()];
    for (new, old) in value_order.iter().enumerate() {
        value_id[*old] = new as u32;
    }
    let predicates: Vec<Predicate> = predicate_order.iter().map(|old| predicates[*old].clone()).collect();
    let values: Vec<ValueFn> = value_order.iter().map(|old| values[*old].clone()).collect();
    for table in &mut tables {
        for step in table.steps.iter_mut().chain(table.until.as_mut()) {
            step.predicate = predicate_id[step.predicate as usize];
            step.keys.iter_mut().for_each(|key| key.value = value_id[key.value as usize]);
        }
    }
    for rule in &mut rules {
        if let Query::Event { predicate } = &mut rule.query {
            *predicate = predicate_id[*predicate as usize];
        }
        for pipe in &mut rule.pipes {
            match pipe {
                Pipe::Head(_) | Pipe::Tail(_) => {}
                Pipe::Filter(predicate) => *predicate = predicate_id[*predicate as usize],
                Pipe::Unique(keys) | Pipe::UniqueCount(keys) | Pipe::Count(keys) | Pipe::Sort(keys) => {
                    keys.iter_mut().for_each(|key| *key = value_id[*key as usize]);
                }
            }
        }
    }

    // Slots: one per field plus one per folded copy, plus some unused, in shuffled order.
    let used: u32 = fields.values().map(|(_, _, folded)| 1 + u32::from(*folded)).sum();
    let slot_count = used + extra_slots;
    let mut slots = permutation(slot_count as usize, seed.rotate_left(41)).into_iter().map(|slot| slot as u32);
    let fields: Vec<Field> = fields
        .into_iter()
        .map(|(name, (kind, array, folded))| {
            let slot = slots.next().unwrap();
            let folded_slot = folded.then(|| slots.next().unwrap());
            // Some folded fields have their plain slot unread (from the seed).
            let plain_unread = folded_slot.is_some() && (seed >> (slot % 64)) & 1 == 1;
            Field { name, kind, array, slot, folded_slot, plain_unread }
        })
        .collect();

    let layout = Layout::plan(slot_count, category_capacity, predicates.len() as u32, data_capacity, heap_capacity);
    let needs = needs_of(&fields, &predicates, seed);
    let mut wasm = WASM_HEADER.to_vec();
    wasm.extend(wasm_tail);
    Bundle {
        manifest: Manifest {
            compiler,
            schema_name,
            schema_fingerprint,
            category_field: "event.category".to_string(),
            timestamp_field: "@timestamp".to_string(),
            timestamp_unit: unit,
            layout,
        },
        fields,
        rules,
        functions: Functions { categories, predicates, values },
        patterns,
        wasm,
        sequences: (!tables.is_empty()).then_some(tables),
        lineage: None,
        custom: None,
        actions: Vec::new(),
        // Some bundles have a prefilter of one to three literals (from the seed).
        prefilter: (seed & 2 == 2).then(|| Prefilter {
            literals: (0..1 + seed % 3).map(|index| format!("k{:x}", seed.rotate_left(7 * index as u32) % 4096)).collect::<BTreeSet<_>>().into_iter().collect(),
        }),
        needs,
    }
}

/// Some bundles have needs (from the seed): one or two literals on each of their first
/// two string fields, and one or two clauses for each of their first three event
/// conditions.
fn needs_of(fields: &[Field], predicates: &[Predicate], seed: u64) -> Option<Needs> {
    let strings: Vec<u32> = fields
        .iter()
        .enumerate()
        .filter(|(_, field)| matches!(field.kind, FieldKind::Typed(FieldType::Keyword) | FieldKind::Dynamic))
        .map(|(index, _)| index as u32)
        .take(2)
        .collect();
    let conditions: Vec<u32> =
        predicates.iter().enumerate().filter(|(_, predicate)| predicate.role == PredicateRole::EventCondition).map(|(id, _)| id as u32).take(3).collect();
    if seed & 4 == 0 || strings.is_empty() || conditions.is_empty() {
        return None;
    }
    let atoms: Vec<NeedAtom> = strings
        .iter()
        .flat_map(|field| (0..1 + seed % 2).map(move |index| NeedAtom { field: *field, literal: format!("n{:x}", seed.rotate_left(5 * index as u32) % 256) }))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let count = atoms.len() as u32;
    let predicates = conditions
        .into_iter()
        .enumerate()
        .map(|(number, predicate)| PredicateNeeds {
            predicate,
            clauses: (0..1 + (seed >> number) % 2).map(|clause| vec![(clause as u32 + number as u32) % count]).collect(),
        })
        .collect();
    Some(Needs { atoms, predicates })
}

fn bundle() -> impl Strategy<Value = Bundle> {
    (
        prop::collection::btree_map(non_empty_text(16), (field_kind(), any::<bool>(), any::<bool>()), 0..8),
        prop::collection::btree_set(non_empty_text(10), 0..5),
        prop::collection::vec(rule_plan(), 0..4),
        patterns(),
        (0u32..5, 0u32..64, 0u32..200_000, 0u32..100_000),
        (text(12), text(8), any::<u64>(), prop::sample::select(TimestampUnit::ALL.to_vec())),
        prop::collection::vec(any::<u8>(), 0..24),
        any::<u64>(),
    )
        .prop_map(|(fields, categories, plans, patterns, sizes, manifest, bodies, seed)| {
            build(fields, categories, plans, patterns, sizes, manifest, bodies, seed)
        })
}

/// A `CUSTOM` section (or none) valid for a bundle of `fields` fields and `rules` rules.
fn custom_section(fields: usize, rules: usize) -> impl Strategy<Value = Option<Vec<CustomPredicate>>> {
    let index_set = |bound: usize| {
        prop::collection::btree_set(0..bound.max(1) as u32, 0..4)
            .prop_map(move |set| if bound == 0 { Vec::new() } else { set.into_iter().collect::<Vec<u32>>() })
    };
    let predicate = (
        non_empty_text(8),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..16),
        index_set(fields),
        prop::collection::vec(field_kind(), 0..3),
        prop::collection::btree_map(non_empty_text(6), field_kind(), 0..3),
        index_set(rules),
        (1u64..1 << 40, 1u64..=1 << 32, 1u64..=60_000),
    );
    prop::option::of(prop::collection::vec(predicate, 1..3)).prop_map(|predicates| {
        predicates.map(|predicates| {
            predicates
                .into_iter()
                .enumerate()
                .map(|(idx, (name, lua, code, fields, params, captures, rules, (instructions, memory_bytes, time_ms)))| {
                    let name = format!("p{idx}_{}", name.chars().filter(char::is_ascii_alphanumeric).collect::<String>());
                    let code = if lua { format!("-- {}", String::from_utf8_lossy(&code)).into_bytes() } else { [WASM_HEADER.to_vec(), code].concat() };
                    let runtime = if lua { CustomRuntime::Lua } else { CustomRuntime::Wasm };
                    let captures = captures.into_iter().map(|(name, kind)| CaptureDecl { name, kind }).collect();
                    let limits = CustomLimits { instructions, memory_bytes, time_ms };
                    CustomPredicate { name, runtime, code, fields, params, captures, limits, rules }
                })
                .collect()
        })
    })
}

/// An `ACTIONS` section valid for `bundle`: some rules block, some kill processes of
/// their positive steps, the others only alert.
fn actions_section(bundle: &Bundle) -> impl Strategy<Value = Vec<RuleAction>> + use<> {
    let positive: Vec<usize> = bundle
        .rules
        .iter()
        .map(|rule| match rule.query {
            Query::Event { .. } => 1,
            Query::Sequence { table } => bundle.sequences.as_ref().map_or(0, |tables| tables[table as usize].steps.iter().filter(|step| !step.missing).count()),
        })
        .collect();
    let target = (any::<bool>(), any::<usize>(), any::<bool>());
    let plan = prop::option::of((any::<bool>(), prop::collection::vec(target, 1..4)));
    prop::collection::vec(plan, positive.len()).prop_map(move |plans| {
        plans
            .into_iter()
            .enumerate()
            .filter_map(|(rule, plan)| {
                let (block, targets) = plan?;
                let action = if block {
                    Action::Block
                } else {
                    let steps = positive[rule];
                    if steps == 0 {
                        return None;
                    }
                    let targets = targets
                        .into_iter()
                        .map(|(parent, pick, tree)| KillTarget { whom: if parent { Whom::Parent } else { Whom::Process }, step: (pick % steps) as u32, tree })
                        .collect();
                    Action::Kill(targets)
                };
                let at_exec = block || tree_at_exec(rule);
                Some(RuleAction { rule: rule as u32, action, at_exec })
            })
            .collect()
    })
}

/// Whether a generated kill action says it is decided at the exec hook (either is valid).
fn tree_at_exec(rule: usize) -> bool {
    rule.is_multiple_of(2)
}

fn bundle_with_custom() -> impl Strategy<Value = Bundle> {
    bundle().prop_flat_map(|bundle| {
        let (fields, rules) = (bundle.fields.len(), bundle.rules.len());
        let actions = actions_section(&bundle);
        (Just(bundle), custom_section(fields, rules), actions).prop_map(|(mut bundle, custom, actions)| {
            // A hand-written predicate reads its fields' plain slots.
            for field in custom.iter().flatten().flat_map(|predicate| &predicate.fields) {
                bundle.fields[*field as usize].plain_unread = false;
            }
            Bundle { custom, actions, ..bundle }
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_valid_bundles_round_trip(bundle in bundle_with_custom()) {
        prop_assert_eq!(bundle.validate(), Ok(()));
        let bytes = bundle.to_bytes().expect("a valid bundle writes");
        let read = Bundle::from_bytes(&bytes).expect("what was written reads back");
        prop_assert_eq!(&read, &bundle);
        prop_assert!(read.to_bytes().expect("writes again") == bytes, "not deterministic");
        prop_assert!(!bundle.inspect().is_empty());
    }

    #[test]
    fn planned_layouts_are_valid(
        slots in 0u32..1 << 20, categories in 0u32..1 << 16, results in 0u32..1 << 20, data in any::<u32>(), heap in 0u32..1 << 30,
    ) {
        let layout = Layout::plan(slots, categories, results, data, heap);
        let total = 64 + u64::from(slots) * 16 + 8 + 4 * u64::from(categories) + 8 + 2 * u64::from(results) + 8 + 16 + 256 + u64::from(data) + 8 + u64::from(heap);
        if total > 1 << 32 {
            // Too big for a 32-bit memory (possibly, with the alignment padding).
            prop_assume!(layout.memory_pages <= 65_536);
        }
        prop_assert!(layout.memory_pages <= 65_536);
        let regions = layout.regions();
        prop_assert_eq!(regions[0].1, 64);
        let mut end = 64u64;
        for (name, start, len) in regions {
            prop_assert_eq!(start % 8, 0, "{} is not aligned", name);
            prop_assert!(u64::from(start) >= end && u64::from(start) < end + 8, "{} is not packed", name);
            end = u64::from(start) + u64::from(len);
        }
        prop_assert!(end <= layout.memory_bytes());
        prop_assert!(layout.memory_pages == 1 || end > layout.memory_bytes() - 65_536, "memory_pages is not the smallest");
    }
}
