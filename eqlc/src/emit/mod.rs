//! The back end: checked rules → a [`Bundle`] holding one Wasm predicate module.
//!
//! `plan` decides the fields, slots and functions; `expr` generates code for
//! expressions; `wasm` assembles the module around the in-guest library (`library.wat`).
//! The result follows docs/bundle-format.md and docs/abi.md.

mod consts;
mod expr;
pub mod library;
pub mod needs;
mod plan;
pub mod prefilter;
mod wasm;

use crate::codes::Code;
use crate::custom::CustomDef;
use crate::diag::Diagnostic;
use crate::functions::Func;
use crate::rules::RuleMeta;
use crate::source::{FileId, Span};
use crate::tir::{self, Case, ExprKind};
use expr::{ExprGen, FnBuilder};
use kestrel_bundle::bundle::{self as format, Bundle, Functions, Layout, Manifest, Predicate, PredicateRole, ValueFn};
use kestrel_bundle::schema::Schema;
use library::Library;
use plan::{FieldSlots, Patterns};
use wasm_encoder::{BlockType, Instruction, MemArg, ValType};

/// Category ids an event may carry at once (docs/abi.md, categories region).
pub const CATEGORY_CAPACITY: u32 = 16;
/// Bytes of field payloads one event may carry in guest memory.
pub const DATA_CAPACITY: u32 = 1 << 20;
/// Bytes of scratch memory for computed values during one call.
pub const HEAP_CAPACITY: u32 = 256 << 10;
/// Events one `eval` call takes at most: the call's cost (and that of the guest's
/// memory and code, cold again after the host wrote the batch) is shared by the batch.
pub const BATCH_CAPACITY: u32 = 256;
/// Events one `eval` call takes at least.
pub const MIN_BATCH_CAPACITY: u32 = 64;
/// Bytes of slots a batch takes at most, above [`MIN_BATCH_CAPACITY`] events: the host
/// writes them and the guest reads them, while they are in the processor's cache.
pub const BATCH_SLOT_BYTES: u32 = 64 << 10;

/// Events per `eval` call for events of `slot_count` slots: as many as
/// [`BATCH_SLOT_BYTES`] hold, from [`MIN_BATCH_CAPACITY`] to [`BATCH_CAPACITY`]. A
/// bundle of a few rules (few slots) gets the largest batches: on the one-rule replay
/// bench 256 against 64 took 8 – 10% off the engine's time (fewer calls; in
/// instructions only 1%); a large rule set keeps batches of 64.
pub fn batch_capacity(slot_count: u32) -> u32 {
    (BATCH_SLOT_BYTES / slot_count.max(1).saturating_mul(kestrel_bundle::abi::SLOT_SIZE)).clamp(MIN_BATCH_CAPACITY, BATCH_CAPACITY)
}

/// A checked rule to compile.
pub struct Input<'a> {
    pub meta: &'a RuleMeta,
    pub rule: &'a tir::Rule,
    /// What the rule does when it matches besides alerting (`None`: it only alerts).
    pub action: Option<&'a kestrel_bundle::enforce::Action>,
    /// The action's deciding step can be decided at the exec hook.
    pub at_exec: bool,
    /// Where the rule's query is, for diagnostics.
    pub file: FileId,
    pub span: Span,
}

/// Compiles checked rules into a bundle. Rules the back end cannot run yet get a
/// diagnostic (E0701), and then no bundle is made.
///
/// `custom` holds the hand-written predicates the rules may call; the bundle records
/// those that some rule calls.
pub fn bundle(inputs: &[Input], schema: &Schema, custom: &[CustomDef]) -> (Option<Bundle>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    for input in inputs {
        if let Some(diag) = unsupported(input) {
            diags.push(diag.in_file(input.file));
        }
    }
    if !diags.is_empty() {
        return (None, diags);
    }
    let library = Library::builtin();
    let rules: Vec<&tir::Rule> = inputs.iter().map(|input| input.rule).collect();
    let event_queries: Vec<&tir::EventQuery> = rules
        .iter()
        .flat_map(|rule| match &rule.query {
            tir::Query::Event(query) => vec![query],
            tir::Query::Sequence(sequence) => sequence.steps.iter().chain(&sequence.until).map(|step| &step.query).collect(),
            tir::Query::Join(join) => join.steps.iter().chain(&join.until).map(|step| &step.query).collect(),
            tir::Query::Sample(sample) => sample.steps.iter().map(|step| &step.query).collect(),
        })
        .collect();
    // Lineage tests, inner ones before the tests whose subquery uses them.
    let lineage_tests: Vec<(usize, tir::ExprId)> =
        rules.iter().enumerate().flat_map(|(rule_idx, rule)| lineage_postorder(rule).into_iter().map(move |id| (rule_idx, id))).collect();
    let lineage_queries: Vec<&tir::EventQuery> = lineage_tests
        .iter()
        .filter_map(|(rule_idx, id)| match &rules[*rule_idx].expr(*id).kind {
            ExprKind::Lineage { query, .. } => Some(query.as_ref()),
            _ => None,
        })
        .collect();
    let mut categories = plan::categories(event_queries.iter().copied().chain(lineage_queries.iter().copied()));
    if !lineage_tests.is_empty() && !categories.contains(&schema.lineage.process_category) {
        categories.push(schema.lineage.process_category.clone());
        categories.sort();
    }

    // Predicates (each a conjunction of conditions) and value functions (with the case
    // their values keep), in rule order.
    let mut predicates: Vec<(usize, Predicate, Vec<tir::ExprId>)> = Vec::new();
    let mut values: Vec<(usize, ValueSource, Case)> = Vec::new();
    // Values captured at sequence steps for other steps and pipes: (rule, step, field),
    // numbered; their slots come after the fields' and the lineage tests'.
    let mut captures: Vec<(usize, usize, String)> = Vec::new();
    let mut bundle_rules = Vec::new();
    let mut tables = Vec::new();
    let category_id = |category: &tir::Category| match category {
        tir::Category::Named(name) => categories.iter().position(|known| known == name).map(|idx| idx as u32),
        tir::Category::Any => None,
    };
    for (rule_idx, input) in inputs.iter().enumerate() {
        let rule = input.rule;
        let condition = |category: Option<u32>, conjuncts: Vec<tir::ExprId>, predicates: &mut Vec<(usize, Predicate, Vec<tir::ExprId>)>| {
            predicates.push((rule_idx, Predicate { rule: rule_idx as u32, role: PredicateRole::EventCondition, category }, conjuncts));
            predicates.len() as u32 - 1
        };
        let rule_captures = captured_fields(rule);
        let first_capture = captures.len();
        captures.extend(rule_captures.iter().map(|(step, name)| (rule_idx, *step, name.clone())));
        // Join keys fold case in the runtime (docs/sequences.md), so the value
        // functions give them as they are.
        let mut step = |index: usize, step: &tir::Step, predicates: &mut Vec<(usize, Predicate, Vec<tir::ExprId>)>| {
            let keys = step
                .keys
                .iter()
                .map(|id| {
                    values.push((rule_idx, ValueSource::Expr(*id), Case::Sensitive));
                    let optional = matches!(&rule.expr(*id).kind, ExprKind::Field(path) if path.optional);
                    format::SequenceKey { value: values.len() as u32 - 1, optional, slot: None }
                })
                .collect();
            // The conditions reading other steps' events run apart, once the partial
            // they read is known (role 3); the rest is the step's predicate.
            let (reading, plain): (Vec<tir::ExprId>, Vec<tir::ExprId>) =
                conjuncts(rule, step.query.condition).into_iter().partition(|id| reads_other_steps(rule, *id));
            let category = category_id(&step.query.category);
            let predicate = condition(category, plain, predicates);
            let check = (!reading.is_empty()).then(|| {
                predicates.push((rule_idx, Predicate { rule: rule_idx as u32, role: PredicateRole::StepCheck, category: None }, reading));
                predicates.len() as u32 - 1
            });
            let captures = rule_captures
                .iter()
                .enumerate()
                .filter(|(_, (at, _))| *at == index)
                .map(|(number, (_, name))| {
                    values.push((rule_idx, ValueSource::Field(name.clone()), Case::Sensitive));
                    format::Capture { value: values.len() as u32 - 1, slot: (first_capture + number) as u32 }
                })
                .collect();
            format::SequenceStep { predicate, keys, missing: step.missing, fork: step.fork, source_step: step.source_step as u32, check, captures }
        };
        let (kind, steps, until, flavor, key_case, maxspan_ns) = match &rule.query {
            tir::Query::Event(_) => (None, &[][..], None, format::SequenceFlavor::Elasticsearch, Case::Sensitive, None),
            tir::Query::Sequence(sequence) => {
                let flavor = match sequence.semantics {
                    tir::SequenceSemantics::Elasticsearch => format::SequenceFlavor::Elasticsearch,
                    tir::SequenceSemantics::Endgame => format::SequenceFlavor::Endgame,
                };
                (Some(format::TableKind::Sequence), &sequence.steps[..], sequence.until.as_ref(), flavor, sequence.key_case, sequence.maxspan_ns)
            }
            // `join` is python eql's: its keys follow endgame rules (null joins null).
            tir::Query::Join(join) => {
                (Some(format::TableKind::Join), &join.steps[..], join.until.as_ref(), format::SequenceFlavor::Endgame, join.key_case, None)
            }
            // `sample` is Elasticsearch's: null keys only for `?optional` fields.
            tir::Query::Sample(sample) => {
                let per_key = input.meta.max_samples_per_key.unwrap_or(1).max(1);
                (
                    Some(format::TableKind::Sample { max_samples_per_key: per_key }),
                    &sample.steps[..],
                    None,
                    format::SequenceFlavor::Elasticsearch,
                    sample.key_case,
                    None,
                )
            }
        };
        let query = match (&rule.query, kind) {
            (tir::Query::Event(query), _) => {
                format::Query::Event { predicate: condition(category_id(&query.category), vec![query.condition], &mut predicates) }
            }
            (_, kind) => {
                let steps = steps.iter().enumerate().map(|(index, each)| step(index, each, &mut predicates)).collect();
                let until = until.map(|each| step(usize::MAX, each, &mut predicates));
                let kind = kind.expect("a multi-event query has a table kind");
                tables.push(format::SequenceTable { rule: rule_idx as u32, kind, flavor, fold_case: key_case == Case::Insensitive, maxspan_ns, steps, until });
                format::Query::Sequence { table: tables.len() as u32 - 1 }
            }
        };
        let mut pipes = Vec::new();
        for pipe in &input.rule.pipes {
            let mut keys = |ids: &[tir::ExprId]| -> Vec<u32> {
                ids.iter()
                    .map(|id| {
                        values.push((rule_idx, ValueSource::Expr(*id), rule.pipe_key_case));
                        values.len() as u32 - 1
                    })
                    .collect()
            };
            pipes.push(match pipe {
                tir::Pipe::Head(count) => format::Pipe::Head(*count),
                tir::Pipe::Tail(count) => format::Pipe::Tail(*count),
                tir::Pipe::Filter(condition) => {
                    predicates.push((rule_idx, Predicate { rule: rule_idx as u32, role: PredicateRole::PipeFilter, category: None }, vec![*condition]));
                    format::Pipe::Filter(predicates.len() as u32 - 1)
                }
                tir::Pipe::Unique(ids) => format::Pipe::Unique(keys(ids)),
                tir::Pipe::UniqueCount(ids) => format::Pipe::UniqueCount(keys(ids)),
                tir::Pipe::Count(ids) => format::Pipe::Count(keys(ids)),
                tir::Pipe::Sort(ids) => format::Pipe::Sort(keys(ids)),
            });
        }
        let meta = input.meta;
        bundle_rules.push(format::Rule {
            id: meta.rule_id.clone().unwrap_or_else(|| meta.name.clone()),
            name: meta.name.clone(),
            severity: meta.severity.clone().unwrap_or_default(),
            risk_score: meta.risk_score.filter(|score| score.is_finite()),
            description: meta.description.clone(),
            tags: meta.tags.clone(),
            query,
            pipes,
        });
    }

    // Each lineage test gets a source predicate (role 2).
    let mut lineage_nodes = Vec::new();
    for (rule_idx, id) in &lineage_tests {
        let ExprKind::Lineage { relation, query } = &rules[*rule_idx].expr(*id).kind else { continue };
        let category = match &query.category {
            tir::Category::Named(name) => categories.iter().position(|known| known == name).map(|idx| idx as u32),
            tir::Category::Any => None,
        };
        predicates.push((*rule_idx, Predicate { rule: *rule_idx as u32, role: PredicateRole::LineageSource, category }, vec![query.condition]));
        let relation = match relation {
            tir::Relation::Descendant => format::Relation::Descendant,
            tir::Relation::Child => format::Relation::Child,
            tir::Relation::Event => format::Relation::Event,
        };
        lineage_nodes.push(format::LineageNode { relation, source: predicates.len() as u32 - 1, slot: 0 });
    }

    // Slot addresses are offsets within an event's slots; code adds the event's base.
    // The lineage tests' slots come after the fields'.
    let lineage = &schema.lineage;
    let mut host_fields: Vec<String> =
        if lineage_nodes.is_empty() { Vec::new() } else { vec![lineage.pid_field.clone(), lineage.ppid_field.clone(), lineage.subtype_field.clone()] };
    // The hand-written predicates some rule calls, numbered in declaration order; their
    // views' fields are written like the rules'.
    let called = called_predicates(&rules, custom);
    host_fields.extend(called.iter().flat_map(|(def, _)| custom[*def].fields.iter().cloned()));
    let fields = FieldSlots::plan(rules.iter().copied(), &host_fields, schema, 0);
    for (idx, node) in lineage_nodes.iter_mut().enumerate() {
        node.slot = fields.slot_count() + idx as u32;
    }
    // Then the captures' slots. A `by` key that is a field, whole, names its slot.
    let capture_base = fields.slot_count() + lineage_nodes.len() as u32;
    for table in &mut tables {
        let rule = rules[table.rule as usize];
        for step in table.steps.iter_mut().chain(table.until.as_mut()) {
            for capture in &mut step.captures {
                capture.slot += capture_base;
            }
            for key in &mut step.keys {
                if let (_, ValueSource::Expr(expr), Case::Sensitive) = &values[key.value as usize]
                    && let ExprKind::Field(path) = &rule.expr(*expr).kind
                    && path.rest.is_empty()
                {
                    key.slot = Some(fields.slot(&path.name) / kestrel_bundle::abi::SLOT_SIZE);
                }
            }
        }
    }
    let slot_count = capture_base + captures.len() as u32;
    let layout = Layout::plan_batched(batch_capacity(slot_count), slot_count, CATEGORY_CAPACITY, predicates.len() as u32, DATA_CAPACITY, HEAP_CAPACITY);
    let slot_stride = slot_count * kestrel_bundle::abi::SLOT_SIZE;
    let lineage_slots = |rule_idx: usize| -> std::collections::HashMap<tir::ExprId, u32> {
        lineage_tests
            .iter()
            .zip(&lineage_nodes)
            .filter(|((rule, _), _)| *rule == rule_idx)
            .map(|((_, id), node)| (*id, node.slot * kestrel_bundle::abi::SLOT_SIZE))
            .collect()
    };
    let capture_slots = |rule_idx: usize| -> std::collections::HashMap<(usize, String), u32> {
        captures
            .iter()
            .enumerate()
            .filter(|(_, (rule, _, _))| *rule == rule_idx)
            .map(|(number, (_, step, name))| ((*step, name.clone()), (capture_base + number as u32) * kestrel_bundle::abi::SLOT_SIZE))
            .collect()
    };
    // Constants go after the last region, up to the end of memory.
    let mut consts = consts::Consts::new(layout.heap_offset + layout.heap_capacity);
    let mut patterns = Patterns::default();

    // Per rule: its declared functions that are hand-written predicates.
    let calls_by_rule: Vec<std::collections::HashMap<u32, u32>> = rules.iter().map(|rule| custom_calls(rule, custom, &called)).collect();
    let mut predicate_fns = Vec::new();
    for (rule_idx, _, condition) in &predicates {
        let mut generator = ExprGen::new(rules[*rule_idx], &library, &mut consts, &fields, &mut patterns, 1);
        generator.lineage_slots = lineage_slots(*rule_idx);
        generator.capture_slots = capture_slots(*rule_idx);
        generator.custom = calls_by_rule[*rule_idx].clone();
        generator.select_event(layout.slots_offset, slot_stride);
        generator.reset_heap();
        generator.cond_all(condition);
        predicate_fns.push(generator.f.finish());
    }
    let mut value_fns = Vec::new();
    for (rule_idx, source, case) in &values {
        let mut generator = ExprGen::new(rules[*rule_idx], &library, &mut consts, &fields, &mut patterns, 1);
        generator.lineage_slots = lineage_slots(*rule_idx);
        generator.capture_slots = capture_slots(*rule_idx);
        generator.custom = calls_by_rule[*rule_idx].clone();
        generator.select_event(layout.slots_offset, slot_stride);
        generator.reset_heap();
        match source {
            ValueSource::Expr(expr) => generator.key_value(*expr, *case),
            ValueSource::Field(name) => generator.field_value(name),
        }
        let mut builder = generator.f;
        wasm::copy_to_out(&mut builder, layout.out_offset);
        value_fns.push(builder.finish());
    }
    let needs = needs::needs(&rules, &predicates, needs::MIN_PREDICATES).and_then(|needs| needs::section(&needs, fields.fields()));
    let skippable: std::collections::BTreeSet<u32> = needs.iter().flat_map(|needs| &needs.predicates).map(|entry| entry.predicate).collect();
    let eval = eval_function(&library, &layout, &categories, &predicates.iter().map(|(_, predicate, _)| predicate.clone()).collect::<Vec<_>>(), &skippable);

    let memory_end = u64::from(consts.base()) + u64::from(consts.len());
    let memory_pages = memory_end.div_ceil(format::PAGE_SIZE).max(u64::from(layout.memory_pages)) as u32;
    let wasm = wasm::module(&library, &layout, memory_pages, consts, wasm::Generated { predicates: predicate_fns, values: value_fns, eval });
    let layout = Layout { memory_pages, ..layout };

    let prefilter = prefilter::prefilter(&rules, &predicates, schema, !lineage_nodes.is_empty(), !called.is_empty());
    let bundle = Bundle {
        manifest: Manifest {
            compiler: format!("eqlc {}", env!("CARGO_PKG_VERSION")),
            schema_name: schema.name.clone(),
            schema_fingerprint: schema.fingerprint(),
            category_field: schema.category_field.clone(),
            timestamp_field: schema.timestamp_field.clone(),
            timestamp_unit: schema.timestamp_unit,
            layout,
        },
        fields: fields.into_fields(),
        rules: bundle_rules,
        functions: Functions {
            categories,
            predicates: predicates.into_iter().map(|(_, predicate, _)| predicate).collect(),
            values: values.iter().map(|(rule_idx, ..)| ValueFn { rule: *rule_idx as u32 }).collect(),
        },
        patterns: format::Patterns { regexes: patterns.regexes, cidr_sets: patterns.cidr_sets },
        wasm,
        sequences: (!tables.is_empty()).then_some(tables),
        lineage: None,
        custom: None,
        prefilter,
        needs: None,
        actions: inputs
            .iter()
            .enumerate()
            .filter_map(|(rule, input)| {
                input.action.map(|action| kestrel_bundle::enforce::RuleAction { rule: rule as u32, action: action.clone(), at_exec: input.at_exec })
            })
            .collect(),
    };
    let index_of = |name: &str| bundle.fields.iter().position(|field| field.name == name).unwrap_or_default() as u32;
    let lineage_table = (!lineage_nodes.is_empty()).then(|| format::LineageTable {
        pid_field: index_of(&lineage.pid_field),
        ppid_field: index_of(&lineage.ppid_field),
        subtype_field: index_of(&lineage.subtype_field),
        process_category: bundle.functions.categories.iter().position(|name| *name == lineage.process_category).unwrap_or_default() as u32,
        create_values: lineage.create_values.clone(),
        terminate_values: lineage.terminate_values.clone(),
        nodes: lineage_nodes,
    });
    let custom_section = (!called.is_empty()).then(|| {
        called
            .iter()
            .map(|(def, rules)| {
                let def = &custom[*def];
                format::CustomPredicate {
                    name: def.name.clone(),
                    runtime: def.runtime,
                    code: def.code.clone(),
                    fields: def.fields.iter().map(|name| index_of(name)).collect(),
                    params: def.param_kinds(),
                    captures: def.captures.clone(),
                    limits: def.limits,
                    rules: rules.clone(),
                }
            })
            .collect()
    });
    let bundle = Bundle { lineage: lineage_table, custom: custom_section, needs, ..bundle };
    (Some(bundle), Vec::new())
}

/// The hand-written predicates the rules call, in declaration order: (index into
/// `custom`, the rules calling it, ascending).
fn called_predicates(rules: &[&tir::Rule], custom: &[CustomDef]) -> Vec<(usize, Vec<u32>)> {
    let mut called: Vec<(usize, Vec<u32>)> = Vec::new();
    for (def_idx, def) in custom.iter().enumerate() {
        let callers: Vec<u32> = rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| {
                rule.exprs.iter().any(|node| {
                    matches!(&node.kind, ExprKind::Call { func: Func::Declared(index), .. }
                        if rule.declared.get(*index as usize).is_some_and(|name| name.eq_ignore_ascii_case(&def.name)))
                })
            })
            .map(|(rule_idx, _)| rule_idx as u32)
            .collect();
        if !callers.is_empty() {
            called.push((def_idx, callers));
        }
    }
    called
}

/// For one rule: its declared functions that are hand-written predicates, by
/// `Func::Declared` index, with their index in the `CUSTOM` section.
fn custom_calls(rule: &tir::Rule, custom: &[CustomDef], called: &[(usize, Vec<u32>)]) -> std::collections::HashMap<u32, u32> {
    rule.declared
        .iter()
        .enumerate()
        .filter_map(|(index, name)| {
            let position = called.iter().position(|(def, _)| custom[*def].name.eq_ignore_ascii_case(name))?;
            Some((index as u32, position as u32))
        })
        .collect()
}

/// What a value function computes.
enum ValueSource {
    /// An expression of the rule (a `by` key, a pipe key).
    Expr(tir::ExprId),
    /// A field of the event, whole (a capture).
    Field(String),
}

/// The fields of other steps' events a rule reads (`event0.x`, `events[1].x`), as
/// (step, field), each once, in the order they first appear.
fn captured_fields(rule: &tir::Rule) -> Vec<(usize, String)> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for node in &rule.exprs {
        if let ExprKind::StepField { step, path } = &node.kind
            && !found.iter().any(|(at, name)| at == step && *name == path.name)
        {
            found.push((*step, path.name.clone()));
        }
    }
    found
}

/// The conditions of a conjunction (nested `and`s flattened), or the condition alone.
fn conjuncts(rule: &tir::Rule, id: tir::ExprId) -> Vec<tir::ExprId> {
    match &rule.expr(id).kind {
        ExprKind::And(items) => items.iter().flat_map(|item| conjuncts(rule, *item)).collect(),
        _ => vec![id],
    }
}

/// Whether an expression reads another step's event.
fn reads_other_steps(rule: &tir::Rule, id: tir::ExprId) -> bool {
    matches!(rule.expr(id).kind, ExprKind::StepField { .. }) || rule.expr(id).kind.children().into_iter().any(|child| reads_other_steps(rule, child))
}

/// The lineage tests of a rule, each after the tests inside its own subquery.
fn lineage_postorder(rule: &tir::Rule) -> Vec<tir::ExprId> {
    fn visit(rule: &tir::Rule, id: tir::ExprId, out: &mut Vec<tir::ExprId>) {
        for child in rule.expr(id).kind.children() {
            visit(rule, child, out);
        }
        if matches!(rule.expr(id).kind, ExprKind::Lineage { .. }) {
            out.push(id);
        }
    }
    let mut out = Vec::new();
    match &rule.query {
        tir::Query::Event(query) => visit(rule, query.condition, &mut out),
        tir::Query::Sequence(sequence) => {
            for step in sequence.steps.iter().chain(&sequence.until) {
                visit(rule, step.query.condition, &mut out);
            }
        }
        tir::Query::Join(_) | tir::Query::Sample(_) => {}
    }
    for pipe in &rule.pipes {
        if let tir::Pipe::Filter(condition) = pipe {
            visit(rule, *condition, &mut out);
        }
    }
    out
}

/// A diagnostic for a rule the back end cannot compile yet.
fn unsupported(input: &Input) -> Option<Diagnostic> {
    let rule = input.rule;
    let lineage = || rule.exprs.iter().any(|node| matches!(node.kind, ExprKind::Lineage { .. }));
    let other_pipes = || rule.pipes.iter().any(|pipe| !matches!(pipe, tir::Pipe::Head(_) | tir::Pipe::Tail(_)));
    // A filter after `unique_count` reads the count off the result's first event, whole.
    let late_filter = || rule.pipes.iter().skip_while(|pipe| !matches!(pipe, tir::Pipe::UniqueCount(_))).any(|pipe| matches!(pipe, tir::Pipe::Filter(_)));
    let reads_steps = |step: &tir::Step| reads_other_steps(rule, step.query.condition);
    let what = match &rule.query {
        tir::Query::Sequence(_) if late_filter() => Some("sequences with a `filter` after `unique_count`"),
        tir::Query::Sequence(sequence)
            if sequence.until.as_ref().is_some_and(reads_steps) || sequence.steps.iter().any(|step| step.missing && reads_steps(step)) =>
        {
            Some("sequences whose `until` or missing steps read other steps")
        }
        tir::Query::Sequence(_) | tir::Query::Event(_) => None,
        tir::Query::Join(_) | tir::Query::Sample(_) if other_pipes() => Some("joins and samples with pipes other than `head` and `tail`"),
        tir::Query::Join(_) | tir::Query::Sample(_) if lineage() => Some("joins and samples with lineage tests"),
        tir::Query::Join(_) | tir::Query::Sample(_) if rule.exprs.iter().any(|node| matches!(node.kind, ExprKind::StepField { .. })) => {
            Some("joins and samples reading other steps")
        }
        tir::Query::Join(_) | tir::Query::Sample(_) => None,
    };
    let at = Span { start: input.span.start, end: input.span.start };
    what.map(|what| {
        Diagnostic::new(Code::E0701, format!("{what} cannot be compiled into a bundle yet"))
            .primary(at, format!("rule `{}`", input.meta.name))
            .note("this eqlc compiles event queries and sequences with their pipes and cross-step references, and joins and samples with `head` and `tail`")
            .help("check the rule with `eqlc check`, and leave it out of `eqlc build` for now")
    })
}

/// `eval(count)`: for each of the first `count` events of the batch, runs every enabled
/// role-0 predicate for "any category" and for each category the host listed, unless
/// it is `skippable` and the host set its skip bit for the event, and records which are
/// true; returns how many are, over the whole batch.
fn eval_function(
    library: &Library,
    layout: &Layout,
    categories: &[String],
    predicates: &[Predicate],
    skippable: &std::collections::BTreeSet<u32>,
) -> wasm_encoder::Function {
    let first_predicate = wasm::first_generated(library);
    let mut f = FnBuilder::new(1);
    let total = f.local(ValType::I32);
    let events = f.local(ValType::I32);
    let event = f.local(ValType::I32);
    let results = f.local(ValType::I32);
    let listed = f.local(ValType::I32);
    let idx = f.local(ValType::I32);
    let category = f.local(ValType::I32);
    let category_list = f.local(ValType::I32);
    // The address of the event's skip bits, when some predicate has them.
    let skips = (!skippable.is_empty()).then(|| f.local(ValType::I32));
    let byte = |offset: u64| MemArg { offset, align: 0, memory_index: 0 };
    let word = |offset: u64| MemArg { offset, align: 2, memory_index: 0 };
    let category_stride = 4 + 4 * layout.category_capacity;
    let disabled = layout.disabled_offset();

    // events = min(count, batch capacity), as unsigned.
    f.emit(Instruction::LocalGet(0));
    f.emit(Instruction::I32Const(layout.batch_capacity as i32));
    f.emit(Instruction::LocalGet(0));
    f.emit(Instruction::I32Const(layout.batch_capacity as i32));
    f.emit(Instruction::I32LtU);
    f.emit(Instruction::Select);
    f.emit(Instruction::LocalSet(events));
    // Clear the results of those events.
    f.emit(Instruction::I32Const(layout.results_offset as i32));
    f.emit(Instruction::I32Const(0));
    f.emit(Instruction::LocalGet(events));
    f.emit(Instruction::I32Const(layout.result_count as i32));
    f.emit(Instruction::I32Mul);
    f.emit(Instruction::MemoryFill(0));

    let run = |f: &mut FnBuilder, id: u32| {
        f.emit(Instruction::I32Const((disabled + id) as i32));
        f.emit(Instruction::I32Load8U(byte(0)));
        if let Some(skips) = skips.filter(|_| skippable.contains(&id)) {
            // disabled | (skip byte & the predicate's bit)
            f.emit(Instruction::LocalGet(skips));
            f.emit(Instruction::I32Load8U(byte(u64::from(id / 8))));
            f.emit(Instruction::I32Const(1 << (id % 8)));
            f.emit(Instruction::I32And);
            f.emit(Instruction::I32Or);
        }
        f.emit(Instruction::I32Eqz);
        f.emit(Instruction::If(BlockType::Empty));
        f.emit(Instruction::LocalGet(event));
        f.emit(Instruction::Call(first_predicate + id));
        f.emit(Instruction::I32Const(1));
        f.emit(Instruction::I32Eq);
        f.emit(Instruction::If(BlockType::Empty));
        f.emit(Instruction::LocalGet(results));
        f.emit(Instruction::I32Const(1));
        f.emit(Instruction::I32Store8(byte(u64::from(id))));
        f.emit(Instruction::LocalGet(total));
        f.emit(Instruction::I32Const(1));
        f.emit(Instruction::I32Add);
        f.emit(Instruction::LocalSet(total));
        f.emit(Instruction::End);
        f.emit(Instruction::End);
    };
    let role0 = |predicate: &Predicate| predicate.role == PredicateRole::EventCondition;

    f.emit(Instruction::Block(BlockType::Empty));
    f.emit(Instruction::Loop(BlockType::Empty));
    f.emit(Instruction::LocalGet(event));
    f.emit(Instruction::LocalGet(events));
    f.emit(Instruction::I32GeU);
    f.emit(Instruction::BrIf(1));
    // This event's results and category list.
    f.emit(Instruction::I32Const(layout.results_offset as i32));
    f.emit(Instruction::LocalGet(event));
    f.emit(Instruction::I32Const(layout.result_count as i32));
    f.emit(Instruction::I32Mul);
    f.emit(Instruction::I32Add);
    f.emit(Instruction::LocalSet(results));
    f.emit(Instruction::I32Const(layout.categories_offset as i32));
    f.emit(Instruction::LocalGet(event));
    f.emit(Instruction::I32Const(category_stride as i32));
    f.emit(Instruction::I32Mul);
    f.emit(Instruction::I32Add);
    f.emit(Instruction::LocalSet(category_list));
    if let Some(skips) = skips {
        f.emit(Instruction::I32Const(layout.skip_offset() as i32));
        f.emit(Instruction::LocalGet(event));
        f.emit(Instruction::I32Const(layout.skip_stride() as i32));
        f.emit(Instruction::I32Mul);
        f.emit(Instruction::I32Add);
        f.emit(Instruction::LocalSet(skips));
    }
    for (id, predicate) in predicates.iter().enumerate() {
        if role0(predicate) && predicate.category.is_none() {
            run(&mut f, id as u32);
        }
    }
    if !categories.is_empty() {
        // listed = min(count, capacity); for idx in 0..listed: dispatch on the id.
        f.emit(Instruction::LocalGet(category_list));
        f.emit(Instruction::I32Load(word(0)));
        f.emit(Instruction::LocalTee(listed));
        f.emit(Instruction::I32Const(layout.category_capacity as i32));
        f.emit(Instruction::I32GtU);
        f.emit(Instruction::If(BlockType::Empty));
        f.emit(Instruction::I32Const(layout.category_capacity as i32));
        f.emit(Instruction::LocalSet(listed));
        f.emit(Instruction::End);
        f.emit(Instruction::I32Const(0));
        f.emit(Instruction::LocalSet(idx));
        f.emit(Instruction::Block(BlockType::Empty));
        f.emit(Instruction::Loop(BlockType::Empty));
        f.emit(Instruction::LocalGet(idx));
        f.emit(Instruction::LocalGet(listed));
        f.emit(Instruction::I32GeU);
        f.emit(Instruction::BrIf(1));
        f.emit(Instruction::LocalGet(category_list));
        f.emit(Instruction::LocalGet(idx));
        f.emit(Instruction::I32Const(2));
        f.emit(Instruction::I32Shl);
        f.emit(Instruction::I32Add);
        f.emit(Instruction::I32Load(word(4)));
        f.emit(Instruction::LocalSet(category));
        // A block per category, entered through a br_table.
        let arms = categories.len();
        f.emit(Instruction::Block(BlockType::Empty));
        for _ in 0..arms {
            f.emit(Instruction::Block(BlockType::Empty));
        }
        f.emit(Instruction::LocalGet(category));
        f.emit(Instruction::BrTable((0..arms as u32).collect::<Vec<_>>().into(), arms as u32));
        for arm in 0..arms {
            f.emit(Instruction::End);
            for (id, predicate) in predicates.iter().enumerate() {
                if role0(predicate) && predicate.category == Some(arm as u32) {
                    run(&mut f, id as u32);
                }
            }
            f.emit(Instruction::Br((arms - arm - 1) as u32));
        }
        f.emit(Instruction::End);
        f.emit(Instruction::LocalGet(idx));
        f.emit(Instruction::I32Const(1));
        f.emit(Instruction::I32Add);
        f.emit(Instruction::LocalSet(idx));
        f.emit(Instruction::Br(0));
        f.emit(Instruction::End);
        f.emit(Instruction::End);
    }
    f.emit(Instruction::LocalGet(event));
    f.emit(Instruction::I32Const(1));
    f.emit(Instruction::I32Add);
    f.emit(Instruction::LocalSet(event));
    f.emit(Instruction::Br(0));
    f.emit(Instruction::End);
    f.emit(Instruction::End);
    f.emit(Instruction::LocalGet(total));
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Options;
    use crate::dialect::{Dialect, EndgameCase};
    use crate::driver;
    use crate::rules::{self, FileKind};
    use crate::source::SourceMap;

    /// Compiles rules (one per line) and returns the bundle.
    pub(crate) fn build(lines: &[&str], schema: &Schema, dialect: Dialect) -> Bundle {
        let text: String = lines.iter().map(|query| serde_json::json!({ "query": query }).to_string() + "\n").collect();
        let mut sources = SourceMap::new();
        let (rule_sources, load_diags) = rules::split("test.jsonl", text, FileKind::JsonLines, &mut sources);
        assert!(load_diags.is_empty());
        let options = Options { schema, dialect, endgame_case: EndgameCase::Insensitive, declarations: &[] };
        let checked = driver::check_all(&rule_sources, &sources, &options);
        for rule in &checked {
            assert!(!rule.has_errors(), "{:?}", rule.diags);
        }
        let inputs: Vec<Input> = checked
            .iter()
            .map(|rule| Input {
                meta: &rule.meta,
                rule: rule.rule.as_ref().unwrap(),
                action: rule.action.as_ref(),
                at_exec: rule.at_exec,
                file: rule.source.file,
                span: rule.source.span,
            })
            .collect();
        let (bundle, diags) = bundle(&inputs, schema, &[]);
        assert!(diags.is_empty(), "{diags:?}");
        bundle.unwrap()
    }

    #[test]
    fn generated_modules_validate() {
        let schema = Schema::builtin("linux").unwrap();
        let bundle = build(
            &[
                r#"process where process.name in ("bash", "sh") and process.args : ("-c", "*curl*") and user.id == 0"#,
                r#"network where cidrmatch(destination.ip, "10.0.0.0/8") and destination.port > 1024"#,
                r#"any where process.executable regex~ """/tmp/.*""" or length(process.args) > 3"#,
                r#"file where file.path like "?memfd:*" | unique file.path | head 3"#,
                r#"process where _arraysearch(process.args, $a, $a : "-e*") and startswith~(process.command_line, process.name)"#,
            ],
            &schema,
            Dialect::Elasticsearch,
        );
        wasmparser::Validator::new().validate_all(&bundle.wasm).expect("the module validates");
        let bytes = bundle.to_bytes().unwrap();
        assert_eq!(kestrel_bundle::bundle::Bundle::from_bytes(&bytes).unwrap(), bundle);
    }

    #[test]
    fn batches_shrink_as_events_take_more_slots() {
        assert_eq!(batch_capacity(0), BATCH_CAPACITY);
        assert_eq!(batch_capacity(1), BATCH_CAPACITY);
        // 16 slots of 16 bytes: 256 events fill the budget exactly.
        assert_eq!(batch_capacity(16), 256);
        assert_eq!(batch_capacity(17), 240);
        assert_eq!(batch_capacity(64), MIN_BATCH_CAPACITY);
        assert_eq!(batch_capacity(400), MIN_BATCH_CAPACITY);
        assert_eq!(batch_capacity(u32::MAX), MIN_BATCH_CAPACITY);
        let schema = Schema::builtin("linux").unwrap();
        let bundle = build(&[r#"process where process.name == "bash""#], &schema, Dialect::Elasticsearch);
        assert_eq!(bundle.manifest.layout.batch_capacity, BATCH_CAPACITY, "a one-field rule takes the largest batches");
    }
}
