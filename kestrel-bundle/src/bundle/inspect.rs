//! A readable, deterministic dump of a bundle, for `kestrel inspect BUNDLE`.
//!
//! Strings are shown quoted (Rust debug syntax) so that empty strings, spaces and
//! control characters are visible. Nothing here assumes the bundle is valid.

use super::{ABI_VERSION, Bundle, FORMAT_VERSION, PAGE_SIZE, Pipe, PredicateRole, Query, RegexAnchor, Rule, fnv1a64};
use std::fmt::Write;

pub(crate) fn inspect(bundle: &Bundle) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_all(&mut out, bundle);
    out
}

fn write_all(out: &mut String, bundle: &Bundle) -> std::fmt::Result {
    let manifest = &bundle.manifest;
    let layout = &manifest.layout;
    writeln!(out, "Kestrel bundle, format {FORMAT_VERSION}, predicate ABI {ABI_VERSION}")?;
    writeln!(out, "compiler         {:?}", manifest.compiler)?;
    writeln!(out, "schema           {:?} (fingerprint {:#018x})", manifest.schema_name, manifest.schema_fingerprint)?;
    writeln!(out, "category field   {:?}", manifest.category_field)?;
    writeln!(out, "timestamp field  {:?} ({})", manifest.timestamp_field, manifest.timestamp_unit)?;

    writeln!(out)?;
    let pages = layout.memory_pages;
    writeln!(out, "layout: {pages} page{} ({} bytes)", plural(pages as usize), u64::from(pages) * PAGE_SIZE)?;
    writeln!(out, "  {:<10}  {:>10}  {:>10}  {:>10}  size", "region", "start", "end", "length")?;
    writeln!(out, "  batches of up to {} event{}", layout.batch_capacity, plural(layout.batch_capacity as usize))?;
    let sizes = [
        format!("{} slots per event", layout.slot_count),
        format!("count + {} ids per event", layout.category_capacity),
        format!("{} results per event + {} disabled + {} bytes of skip bits per event", layout.result_count, layout.result_count, layout.skip_stride()),
        "1 slot".to_string(),
        "16 slots".to_string(),
        format!("{} bytes", layout.data_capacity),
        format!("{} bytes", layout.heap_capacity),
    ];
    for ((name, start, len), size) in layout.region_spans().into_iter().zip(sizes) {
        writeln!(out, "  {name:<10}  {start:>10}  {:>10}  {len:>10}  {size}", u64::from(start) + len)?;
    }

    writeln!(out)?;
    writeln!(out, "fields ({}):", bundle.fields.len())?;
    if !bundle.fields.is_empty() {
        writeln!(out, "  {:>6}  {:>6}  {:<10}  name", "slot", "folded", "type")?;
    }
    for field in &bundle.fields {
        let folded = field.folded_slot.map_or_else(|| "-".to_string(), |slot| slot.to_string());
        let ty = format!("{}{}", field.kind, if field.array { "[]" } else { "" });
        let unread = if field.plain_unread { "  (plain slot not read)" } else { "" };
        writeln!(out, "  {:>6}  {folded:>6}  {ty:<10}  {:?}{unread}", field.slot, field.name)?;
    }

    writeln!(out)?;
    writeln!(out, "categories ({}):", bundle.functions.categories.len())?;
    for (id, name) in bundle.functions.categories.iter().enumerate() {
        writeln!(out, "  {id:>3}  {name:?}")?;
    }

    writeln!(out)?;
    match &bundle.prefilter {
        None => writeln!(out, "prefilter: none (every line's fields are read)")?,
        Some(prefilter) => {
            let literals: Vec<String> = prefilter.literals.iter().map(|literal| format!("{literal:?}")).collect();
            writeln!(out, "prefilter ({}): a line without any of [{}] matches no rule", literals.len(), literals.join(", "))?;
        }
    }
    match &bundle.needs {
        None => writeln!(out, "needs: none (every candidate predicate runs)")?,
        Some(needs) => {
            writeln!(
                out,
                "needs ({} predicates, {} atoms): each clause must have an atom in its field, or the predicate is skipped",
                needs.predicates.len(),
                needs.atoms.len()
            )?;
            for entry in &needs.predicates {
                let clauses: Vec<String> = entry
                    .clauses
                    .iter()
                    .map(|clause| {
                        let atoms: Vec<String> = clause
                            .iter()
                            .filter_map(|atom| needs.atoms.get(*atom as usize))
                            .map(|atom| {
                                let field = bundle.fields.get(atom.field as usize).map_or("?", |field| field.name.as_str());
                                format!("{field} has {:?}", atom.literal)
                            })
                            .collect();
                        format!("({})", atoms.join(" or "))
                    })
                    .collect();
                writeln!(out, "  pred {:>3}: {}", entry.predicate, clauses.join(" and "))?;
            }
        }
    }

    writeln!(out)?;
    let functions = &bundle.functions;
    writeln!(out, "rules ({}), predicates ({}), value functions ({}):", bundle.rules.len(), functions.predicates.len(), functions.values.len())?;
    for (index, rule) in bundle.rules.iter().enumerate() {
        write_rule(out, bundle, index, rule)?;
    }
    let orphans: Vec<usize> =
        functions.predicates.iter().enumerate().filter(|(_, predicate)| predicate.rule as usize >= bundle.rules.len()).map(|(id, _)| id).collect();
    if !orphans.is_empty() {
        writeln!(out, "  predicates of no rule: {orphans:?}")?;
    }
    let orphans: Vec<usize> = functions.values.iter().enumerate().filter(|(_, value)| value.rule as usize >= bundle.rules.len()).map(|(id, _)| id).collect();
    if !orphans.is_empty() {
        writeln!(out, "  value functions of no rule: {orphans:?}")?;
    }
    let orphans: Vec<String> =
        bundle.actions.iter().filter(|entry| entry.rule as usize >= bundle.rules.len()).map(|entry| format!("rule {}: {}", entry.rule, entry.action)).collect();
    if !orphans.is_empty() {
        writeln!(out, "  actions of no rule: [{}]", orphans.join("; "))?;
    }

    writeln!(out)?;
    let patterns = &bundle.patterns;
    writeln!(out, "regexes ({}):", patterns.regexes.len())?;
    for (id, regex) in patterns.regexes.iter().enumerate() {
        let anchor = match regex.anchor {
            RegexAnchor::Whole => "whole",
            RegexAnchor::Start => "start",
        };
        let case = if regex.case_insensitive { "insensitive" } else { "sensitive" };
        writeln!(out, "  {id:>3}  {anchor}, case-{case}  {:?}", regex.pattern)?;
    }
    writeln!(out, "CIDR sets ({}):", patterns.cidr_sets.len())?;
    for (id, set) in patterns.cidr_sets.iter().enumerate() {
        let blocks: Vec<String> = set.iter().map(ToString::to_string).collect();
        writeln!(out, "  {id:>3}  [{}]", blocks.join(", "))?;
    }
    if let Some(table) = &bundle.lineage {
        let field = |index: u32| bundle.fields.get(index as usize).map_or("(out of range)", |field| field.name.as_str());
        let values = |values: &[super::LineageValue]| values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        writeln!(out)?;
        writeln!(out, "lineage: pid {:?}, ppid {:?}, subtype {:?}", field(table.pid_field), field(table.ppid_field), field(table.subtype_field))?;
        let category = bundle.functions.categories.get(table.process_category as usize).map_or("(out of range)", String::as_str);
        writeln!(out, "  process events: category {category:?}; create [{}], terminate [{}]", values(&table.create_values), values(&table.terminate_values))?;
        for (index, node) in table.nodes.iter().enumerate() {
            let relation = match node.relation {
                super::Relation::Descendant => "descendant of",
                super::Relation::Child => "child of",
                super::Relation::Event => "event of",
            };
            writeln!(out, "  test {index}: {relation:<13} source predicate {}, slot {}", node.source, node.slot)?;
        }
    }
    if let Some(predicates) = &bundle.custom {
        let field = |index: &u32| bundle.fields.get(*index as usize).map_or("(out of range)", |field| field.name.as_str());
        writeln!(out)?;
        writeln!(out, "hand-written predicates ({}):", predicates.len())?;
        for (id, predicate) in predicates.iter().enumerate() {
            let params: Vec<String> =
                predicate.params.iter().map(|kind| if *kind == super::FieldKind::Dynamic { "any".to_string() } else { kind.to_string() }).collect();
            writeln!(
                out,
                "  {id:>3}  {}({}) -> boolean, {}, {} bytes, fnv1a64 {:#018x}",
                predicate.name,
                params.join(", "),
                predicate.runtime.name(),
                predicate.code.len(),
                fnv1a64(&predicate.code)
            )?;
            let fields: Vec<&str> = predicate.fields.iter().map(field).collect();
            writeln!(out, "       reads [{}]", fields.join(", "))?;
            if !predicate.captures.is_empty() {
                let captures: Vec<String> = predicate.captures.iter().map(|capture| format!("{}: {}", capture.name, capture.kind)).collect();
                writeln!(out, "       captures [{}]", captures.join(", "))?;
            }
            let limits = predicate.limits;
            writeln!(
                out,
                "       limits: {} instructions, {} bytes, {} ms; called by rules {:?}",
                limits.instructions, limits.memory_bytes, limits.time_ms, predicate.rules
            )?;
        }
    }

    writeln!(out)?;
    writeln!(out, "wasm       {} bytes, fnv1a64 {:#018x}", bundle.wasm.len(), fnv1a64(&bundle.wasm))?;
    match &bundle.sequences {
        Some(tables) => {
            writeln!(out, "sequences  {}", tables.len())?;
            for (index, table) in tables.iter().enumerate() {
                write_sequence(out, bundle, index, table)?;
            }
        }
        None => writeln!(out, "sequences  none")?,
    }
    Ok(())
}

/// A sequence table as the steps of its automaton: state *s* waits for step *s*.
fn write_sequence(out: &mut String, bundle: &Bundle, index: usize, table: &super::SequenceTable) -> std::fmt::Result {
    // A slot by the field that has it (capture slots have none).
    let slot_name =
        |slot: u32| bundle.fields.iter().find(|field| field.slot == slot).map_or(format!("slot {slot}"), |field| format!("slot {slot} ({})", field.name));
    let flavor = match table.flavor {
        super::SequenceFlavor::Elasticsearch => "elasticsearch",
        super::SequenceFlavor::Endgame => "endgame",
    };
    let maxspan = table.maxspan_ns.map_or("none".to_string(), |ns| format!("{ns} ns"));
    let case = if table.fold_case { "folded" } else { "as is" };
    let kind = match table.kind {
        super::TableKind::Sequence => "sequence".to_string(),
        super::TableKind::Join => "join".to_string(),
        super::TableKind::Sample { max_samples_per_key } => format!("sample ({max_samples_per_key} per key)"),
    };
    writeln!(out, "  table {index}: rule {}, {kind}, {flavor}, maxspan {maxspan}, string keys {case}", table.rule)?;
    let step = |out: &mut String, name: String, step: &super::SequenceStep| {
        let keys: Vec<String> = step
            .keys
            .iter()
            .map(|key| {
                let slot = key.slot.map_or(String::new(), |slot| format!(" = {}", slot_name(slot)));
                format!("value {}{slot}{}", key.value, if key.optional { " (optional)" } else { "" })
            })
            .collect();
        let mut flags = Vec::new();
        if step.missing {
            flags.push("missing");
        }
        if step.fork {
            flags.push("fork");
        }
        let flags = if flags.is_empty() { String::new() } else { format!(", {}", flags.join(", ")) };
        let written = if name == "until" { String::new() } else { format!(", as written: step {}", step.source_step) };
        let check = step.check.map_or(String::new(), |check| format!(", check predicate {check}"));
        let captures: Vec<String> = step.captures.iter().map(|capture| format!("value {} to slot {}", capture.value, capture.slot)).collect();
        let captures = if captures.is_empty() { String::new() } else { format!(", captures [{}]", captures.join(", ")) };
        writeln!(out, "    {name:<8} predicate {}, by [{}]{written}{flags}{check}{captures}", step.predicate, keys.join(", "))
    };
    for (idx, each) in table.steps.iter().enumerate() {
        step(out, format!("step {idx}"), each)?;
    }
    if let Some(until) = &table.until {
        step(out, "until".to_string(), until)?;
    }
    Ok(())
}

fn write_rule(out: &mut String, bundle: &Bundle, index: usize, rule: &Rule) -> std::fmt::Result {
    let functions = &bundle.functions;
    writeln!(out, "  rule {index}: {:?}", rule.id)?;
    writeln!(out, "    name         {:?}", rule.name)?;
    writeln!(out, "    severity     {:?}", rule.severity)?;
    if let Some(score) = rule.risk_score {
        writeln!(out, "    risk score   {score}")?;
    }
    if let Some(description) = &rule.description {
        writeln!(out, "    description  {description:?}")?;
    }
    if !rule.tags.is_empty() {
        writeln!(out, "    tags         {:?}", rule.tags)?;
    }
    match rule.query {
        Query::Event { predicate } => writeln!(out, "    query        event, predicate {predicate}")?,
        Query::Sequence { table } => writeln!(out, "    query        sequence, table {table}")?,
    }
    for pipe in &rule.pipes {
        let args = match pipe {
            Pipe::Head(count) | Pipe::Tail(count) => format!(" {count}"),
            Pipe::Filter(predicate) => format!(" predicate {predicate}"),
            Pipe::Unique(values) | Pipe::UniqueCount(values) | Pipe::Count(values) | Pipe::Sort(values) => {
                values.iter().map(|id| format!(" value {id}")).collect::<Vec<_>>().join(",")
            }
        };
        writeln!(out, "    | {}{args}", pipe.name())?;
    }
    for entry in bundle.actions.iter().filter(|entry| entry.rule as usize == index) {
        let when = if entry.at_exec { " (decided at the exec hook)" } else { "" };
        writeln!(out, "    action       {}{when}", entry.action)?;
    }
    for (id, predicate) in functions.predicates.iter().enumerate().filter(|(_, predicate)| predicate.rule as usize == index) {
        let role = match predicate.role {
            PredicateRole::EventCondition => "event condition",
            PredicateRole::PipeFilter => "pipe filter",
            PredicateRole::LineageSource => "lineage source",
            PredicateRole::StepCheck => "step check",
        };
        let category = match predicate.category {
            None => "any category".to_string(),
            Some(category) => match functions.categories.get(category as usize) {
                Some(name) => format!("category {category} {name:?}"),
                None => format!("category {category} (out of range)"),
            },
        };
        writeln!(out, "    predicate {id:<3} {role:<15}  {category}")?;
    }
    let values: Vec<String> = functions.values.iter().enumerate().filter(|(_, value)| value.rule as usize == index).map(|(id, _)| id.to_string()).collect();
    if !values.is_empty() {
        writeln!(out, "    value functions {}", values.join(", "))?;
    }
    Ok(())
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
