//! The semantic checks of a bundle, shared by the writer (before writing) and the reader
//! (after decoding, with the byte offset of each item so that errors name a byte).

use super::read::{LAYOUT_NAMES, RuleSites, Sites};
use super::{
    Action, Bundle, BundleError, CidrBlock, CustomRuntime, FieldKind, MAX_CAPTURES, MAX_CLAUSE_ATOMS, MAX_MEMORY_PAGES, MAX_NEED_ATOMS, MAX_NEED_CLAUSES,
    MAX_NEED_LITERAL_LEN, MAX_PREFILTER_LITERAL_LEN, MAX_PREFILTER_LITERALS, NO_INDEX, Pipe, PredicateRole, Query, Rule, TableKind, WASM_HEADER,
};
use crate::abi::{MAX_CALL_ARGS, RESERVED_BYTES};
use crate::enforce::MAX_KILL_TARGETS;
use crate::schema::{FieldType, check_field_name};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Checks `bundle`; `sites`, when given, locates the items in the file.
pub(crate) fn check(bundle: &Bundle, sites: Option<&Sites>) -> Result<(), BundleError> {
    let at = At(sites);
    manifest(bundle, at)?;
    layout(bundle, at)?;
    fields(bundle, at)?;
    functions(bundle, at)?;
    for (index, rule) in bundle.rules.iter().enumerate() {
        self::rule(bundle, index, rule, at).map_err(|e| e.context(format_args!("rule {index} ({:?})", rule.id)))?;
    }
    patterns(bundle, at)?;
    sequences(bundle, at)?;
    lineage(bundle, at)?;
    custom(bundle, at)?;
    actions(bundle, at)?;
    prefilter(bundle, at)?;
    needs(bundle, at)?;
    wasm(bundle, at)
}

/// The prefilter's literals: one to [`MAX_PREFILTER_LITERALS`] of them, each non-empty,
/// at most [`MAX_PREFILTER_LITERAL_LEN`] bytes, ASCII without upper-case letters, in
/// strictly ascending order.
fn prefilter(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let Some(prefilter) = &bundle.prefilter else { return Ok(()) };
    let literals = &prefilter.literals;
    if literals.is_empty() || literals.len() > MAX_PREFILTER_LITERALS {
        return Err(BundleError::maybe_at(
            at.get(|s| s.prefilter.first().copied()),
            format!("PREFILTER: {} literals (from 1 to {MAX_PREFILTER_LITERALS})", literals.len()),
        ));
    }
    for (index, literal) in literals.iter().enumerate() {
        let problem = if literal.is_empty() || literal.len() > MAX_PREFILTER_LITERAL_LEN {
            Some(format!("is {} bytes long (from 1 to {MAX_PREFILTER_LITERAL_LEN})", literal.len()))
        } else if !literal.bytes().all(|byte| byte.is_ascii() && !byte.is_ascii_uppercase()) {
            Some("is not ASCII without upper-case letters".to_string())
        } else if index > 0 && literals[index - 1] >= *literal {
            Some("does not come after the one before it (literals are strictly ascending)".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(BundleError::maybe_at(at.get(|s| s.prefilter.get(index).copied()), format!("PREFILTER: literal {index} ({literal:?}) {problem}")));
        }
    }
    Ok(())
}

/// The needs: atoms strictly ascending, each on a string field with a literal like the
/// prefilter's; predicates strictly ascending, each of role 0 with one to
/// [`MAX_NEED_CLAUSES`] clauses of one to [`MAX_CLAUSE_ATOMS`] atoms, strictly ascending.
fn needs(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let Some(needs) = &bundle.needs else { return Ok(()) };
    let atom_at = |index: usize| at.get(|s| s.need_atoms.get(index).copied());
    if needs.atoms.is_empty() || needs.atoms.len() > MAX_NEED_ATOMS {
        return Err(BundleError::maybe_at(atom_at(0), format!("NEEDS: {} atoms (from 1 to {MAX_NEED_ATOMS})", needs.atoms.len())));
    }
    for (index, atom) in needs.atoms.iter().enumerate() {
        let literal = &atom.literal;
        let problem = match bundle.fields.get(atom.field as usize) {
            None => Some(format!("names field {}, but the bundle has {} fields", atom.field, bundle.fields.len())),
            Some(field) if !matches!(field.kind, FieldKind::Typed(FieldType::Keyword) | FieldKind::Dynamic) => {
                Some(format!("names field {} ({:?}), which is not a string field", atom.field, field.name))
            }
            _ if literal.is_empty() || literal.len() > MAX_NEED_LITERAL_LEN => {
                Some(format!("has a literal of {} bytes (from 1 to {MAX_NEED_LITERAL_LEN})", literal.len()))
            }
            _ if !literal.bytes().all(|byte| byte.is_ascii() && !byte.is_ascii_uppercase()) => {
                Some(format!("has a literal ({literal:?}) that is not ASCII without upper-case letters"))
            }
            _ if index > 0 && needs.atoms[index - 1] >= *atom => Some("does not come after the one before it (atoms are strictly ascending)".to_string()),
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(BundleError::maybe_at(atom_at(index), format!("NEEDS: atom {index} {problem}")));
        }
    }
    let predicate_at = |index: usize| at.get(|s| s.need_predicates.get(index).copied());
    if needs.predicates.is_empty() {
        return Err(BundleError::maybe_at(predicate_at(0), "NEEDS: no predicates (a bundle without needs has no NEEDS section)".to_string()));
    }
    for (index, entry) in needs.predicates.iter().enumerate() {
        let id = entry.predicate;
        let problem = match bundle.functions.predicates.get(id as usize) {
            None => Some(format!("names predicate {id}, but the bundle has {}", bundle.functions.predicates.len())),
            Some(predicate) if predicate.role != PredicateRole::EventCondition => {
                Some(format!("names predicate {id}, which is not an event condition (role 0)"))
            }
            _ if index > 0 && needs.predicates[index - 1].predicate >= id => {
                Some(format!("names predicate {id}, which does not come after the one before it (strictly ascending)"))
            }
            _ if entry.clauses.is_empty() || entry.clauses.len() > MAX_NEED_CLAUSES => {
                Some(format!("has {} clauses (from 1 to {MAX_NEED_CLAUSES})", entry.clauses.len()))
            }
            _ => entry.clauses.iter().enumerate().find_map(|(number, clause)| {
                if clause.is_empty() || clause.len() > MAX_CLAUSE_ATOMS {
                    Some(format!("has clause {number} of {} atoms (from 1 to {MAX_CLAUSE_ATOMS})", clause.len()))
                } else if let Some(atom) = clause.iter().find(|atom| **atom as usize >= needs.atoms.len()) {
                    Some(format!("has clause {number} naming atom {atom}, but there are {}", needs.atoms.len()))
                } else if clause.windows(2).any(|pair| pair[0] >= pair[1]) {
                    Some(format!("has clause {number} whose atoms are not strictly ascending"))
                } else {
                    None
                }
            }),
        };
        if let Some(problem) = problem {
            return Err(BundleError::maybe_at(predicate_at(index), format!("NEEDS: entry {index} {problem}")));
        }
    }
    Ok(())
}

/// Rule actions: sorted by rule, one per rule at most, kill targets on steps the rule
/// has, `block` only where one event decides (an event query or a sequence).
fn actions(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let mut previous: Option<u32> = None;
    for (index, entry) in bundle.actions.iter().enumerate() {
        let start = at.get(|s| s.actions.get(index).map(|sites| sites.start));
        let rule = entry.rule;
        let error = |offset: Option<u64>, message: String| BundleError::maybe_at(offset, format!("ACTIONS: entry {index} (rule {rule}): {message}"));
        let Some(found) = bundle.rules.get(rule as usize) else {
            return Err(error(start, format!("the rule is out of range (there are {} rules)", bundle.rules.len())));
        };
        if let Some(previous) = previous
            && previous >= rule
        {
            return Err(error(start, format!("comes after the entry of rule {previous}; entries are sorted by rule, at most one per rule")));
        }
        previous = Some(rule);
        let table = match found.query {
            Query::Event { .. } => None,
            // The rule's own checks found its table.
            Query::Sequence { table } => bundle.sequences.as_ref().and_then(|tables| tables.get(table as usize)),
        };
        match &entry.action {
            Action::Block => {
                if let Some(table) = table
                    && table.kind != TableKind::Sequence
                {
                    let kind = if table.kind == TableKind::Join { "join" } else { "sample" };
                    return Err(error(start, format!("block needs one event to decide, so it is for an event query or a sequence, not a {kind}")));
                }
            }
            Action::Kill(targets) => {
                if targets.is_empty() {
                    return Err(error(start, "kill names no process".to_string()));
                }
                if targets.len() > MAX_KILL_TARGETS {
                    return Err(error(start, format!("kill names {} processes; at most {MAX_KILL_TARGETS}", targets.len())));
                }
                let positive = table.map_or(1, |table| table.steps.iter().filter(|step| !step.missing).count());
                for (target_index, target) in targets.iter().enumerate() {
                    if target.step as usize >= positive {
                        let offset = at.get(|s| s.actions.get(index).and_then(|sites| sites.targets.get(target_index)).map(|start| start + 1));
                        return Err(error(
                            offset,
                            format!("kill target {target_index}: step {} is out of range (the rule has {positive} positive steps)", target.step),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Hand-written predicates: unique names, code of their runtime's kind, fields and
/// rules in range, sane limits. An empty section is written as no section.
fn custom(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let Some(predicates) = &bundle.custom else { return Ok(()) };
    if predicates.is_empty() {
        return Err(BundleError::new("CUSTOM: the section lists no predicates (a bundle without hand-written predicates has no CUSTOM section)"));
    }
    let mut names = std::collections::BTreeSet::new();
    for (index, predicate) in predicates.iter().enumerate() {
        let error = |message: String| BundleError::maybe_at(at.get(|s| s.custom.get(index).copied()), format!("CUSTOM: predicate {index}: {message}"));
        if predicate.name.is_empty() || !predicate.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            return Err(error(format!("the name {:?} is not a function name (letters, digits and `_`)", predicate.name)));
        }
        if !names.insert(predicate.name.to_ascii_lowercase()) {
            return Err(error(format!("the name `{}` is used twice", predicate.name)));
        }
        match predicate.runtime {
            CustomRuntime::Lua if std::str::from_utf8(&predicate.code).is_err() => return Err(error("its Lua source is not UTF-8".into())),
            CustomRuntime::Wasm if !predicate.code.starts_with(&WASM_HEADER) => {
                return Err(error("its code does not start with the Wasm header (`\\0asm`, version 1)".into()));
            }
            _ => {}
        }
        if predicate.code.is_empty() {
            return Err(error("it has no code".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for field in &predicate.fields {
            if *field as usize >= bundle.fields.len() {
                return Err(error(format!("field {field} is out of range (the bundle has {} fields)", bundle.fields.len())));
            }
            if !seen.insert(*field) {
                return Err(error(format!("field {field} is listed twice")));
            }
            if bundle.fields[*field as usize].plain_unread {
                return Err(error(format!("field {field} is in its view, but its plain slot is marked unread")));
            }
        }
        if predicate.params.len() > MAX_CALL_ARGS as usize {
            return Err(error(format!("{} parameters; a call takes at most {MAX_CALL_ARGS}", predicate.params.len())));
        }
        if predicate.captures.len() > MAX_CAPTURES {
            return Err(error(format!("{} captures; at most {MAX_CAPTURES}", predicate.captures.len())));
        }
        let mut capture_names = std::collections::BTreeSet::new();
        for capture in &predicate.captures {
            if capture.name.is_empty() || !capture_names.insert(capture.name.as_str()) {
                return Err(error(format!("the capture name {:?} is empty or used twice", capture.name)));
            }
        }
        let limits = predicate.limits;
        if limits.instructions == 0 || limits.memory_bytes == 0 || limits.memory_bytes > 1 << 32 || limits.time_ms == 0 || limits.time_ms > 60_000 {
            return Err(error(format!(
                "its limits are out of range ({} instructions, {} bytes, {} ms; each must be positive, memory at most 4 GiB, time at most 60 s)",
                limits.instructions, limits.memory_bytes, limits.time_ms
            )));
        }
        if !predicate.rules.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(error("its rules are not ascending and unique".into()));
        }
        if let Some(rule) = predicate.rules.iter().find(|rule| **rule as usize >= bundle.rules.len()) {
            return Err(error(format!("rule {rule} is out of range (the bundle has {} rules)", bundle.rules.len())));
        }
    }
    Ok(())
}

/// Looks up where an item starts in the file, when the bundle was read from one.
#[derive(Clone, Copy)]
struct At<'a>(Option<&'a Sites>);

impl<'a> At<'a> {
    fn get(self, pick: impl FnOnce(&'a Sites) -> Option<u64>) -> Option<u64> {
        self.0.and_then(pick)
    }

    fn rule(self, index: usize) -> Option<&'a RuleSites> {
        self.0.and_then(|sites| sites.rules.get(index))
    }
}

fn manifest(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let manifest = &bundle.manifest;
    if let Err(reason) = check_field_name(&manifest.category_field) {
        return Err(BundleError::maybe_at(at.get(|s| Some(s.category_field)), format!("manifest: the category field is invalid: {reason}")));
    }
    if let Err(reason) = check_field_name(&manifest.timestamp_field) {
        return Err(BundleError::maybe_at(at.get(|s| Some(s.timestamp_field)), format!("manifest: the timestamp field is invalid: {reason}")));
    }
    Ok(())
}

fn layout(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let layout = &bundle.manifest.layout;
    // The offset of the `index`th u32 of the layout.
    let value_at = |name: &str| {
        let index = LAYOUT_NAMES.iter().position(|known| *known == name).unwrap_or_default() as u64;
        at.get(|s| Some(s.layout + 4 * index))
    };
    let error = |name: &str, message: String| BundleError::maybe_at(value_at(name), format!("layout: {message}"));
    if layout.batch_capacity == 0 {
        return Err(error("batch_capacity", "batch_capacity is 0; an eval call takes at least one event".to_string()));
    }
    if layout.memory_pages == 0 {
        return Err(error("memory_pages", "memory_pages is 0; guest memory needs at least one page".to_string()));
    }
    if layout.memory_pages > MAX_MEMORY_PAGES {
        return Err(error(
            "memory_pages",
            format!("memory_pages is {}, more than the {MAX_MEMORY_PAGES} pages (4 GiB) of a 32-bit memory", layout.memory_pages),
        ));
    }
    let memory = layout.memory_bytes();
    let regions = layout.region_spans();
    for (name, start, len) in regions {
        let offset_name = format!("{name}_offset");
        if start % 8 != 0 {
            return Err(error(&offset_name, format!("the {name} region starts at byte {start}, which is not 8-aligned")));
        }
        if start < RESERVED_BYTES {
            return Err(error(
                &offset_name,
                format!("the {name} region starts at byte {start}, inside the first {RESERVED_BYTES} bytes, which stay zero (address 0 is a null slot)"),
            ));
        }
        let end = u64::from(start) + len;
        if end > memory {
            return Err(error(
                &offset_name,
                format!("the {name} region (bytes {start}..{end}) does not fit in guest memory of {} pages ({memory} bytes)", layout.memory_pages),
            ));
        }
    }
    for (index, (name, start, len)) in regions.iter().enumerate() {
        let (start, end) = (u64::from(*start), u64::from(*start) + len);
        for (other, other_start, other_len) in &regions[index + 1..] {
            let (other_start, other_end) = (u64::from(*other_start), u64::from(*other_start) + other_len);
            if start < other_end && other_start < end {
                return Err(error(
                    &format!("{other}_offset"),
                    format!("the {other} region (bytes {other_start}..{other_end}) overlaps the {name} region (bytes {start}..{end})"),
                ));
            }
        }
    }
    let predicates = bundle.functions.predicates.len();
    if layout.result_count as usize != predicates {
        return Err(error("result_count", format!("result_count is {}, but there are {predicates} predicates", layout.result_count)));
    }
    Ok(())
}

fn fields(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let slot_count = bundle.manifest.layout.slot_count;
    let mut owners: BTreeMap<u32, &str> = BTreeMap::new();
    for (index, field) in bundle.fields.iter().enumerate() {
        let error = |message: String| BundleError::maybe_at(at.get(|s| s.fields.get(index).copied()), format!("field {index} ({:?}): {message}", field.name));
        if field.name.is_empty() {
            return Err(error("the name is empty".to_string()));
        }
        if let Some(previous) = index.checked_sub(1).and_then(|previous| bundle.fields.get(previous)) {
            if previous.name == field.name {
                return Err(error("the name is listed twice; field names are unique".to_string()));
            }
            if previous.name > field.name {
                return Err(error(format!("comes after {:?}; fields are sorted by name", previous.name)));
            }
        }
        if field.plain_unread && field.folded_slot.is_none() {
            return Err(error("the plain slot is marked unread, but there is no folded slot to read instead".to_string()));
        }
        for (what, slot) in [("slot", Some(field.slot)), ("folded slot", field.folded_slot)] {
            let Some(slot) = slot else { continue };
            if slot >= slot_count {
                return Err(error(format!("{what} {slot} is out of range (the layout has {slot_count} slots)")));
            }
            if let Some(owner) = owners.insert(slot, &field.name) {
                return Err(error(format!("{what} {slot} is already used by field {owner:?}; slots are unique")));
            }
        }
    }
    Ok(())
}

fn functions(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let functions = &bundle.functions;
    for (index, name) in functions.categories.iter().enumerate() {
        let error = |message: String| BundleError::maybe_at(at.get(|s| s.categories.get(index).copied()), format!("category {index} ({name:?}): {message}"));
        if name.is_empty() {
            return Err(error("the name is empty".to_string()));
        }
        if let Some(previous) = index.checked_sub(1).and_then(|previous| functions.categories.get(previous)) {
            if previous == name {
                return Err(error("the name is listed twice; category names are unique".to_string()));
            }
            if previous > name {
                return Err(error(format!("comes after {previous:?}; categories are sorted by name")));
            }
        }
    }
    let rules = bundle.rules.len();
    for (index, predicate) in functions.predicates.iter().enumerate() {
        let error = |message: String| BundleError::maybe_at(at.get(|s| s.predicates.get(index).copied()), format!("predicate {index}: {message}"));
        if predicate.rule as usize >= rules {
            return Err(error(format!("rule {} is out of range (there are {rules} rules)", predicate.rule)));
        }
        if let Some(category) = predicate.category
            && (category == NO_INDEX || category as usize >= functions.categories.len())
        {
            return Err(error(format!("category {category} is out of range (there are {} categories)", functions.categories.len())));
        }
    }
    for (index, value) in functions.values.iter().enumerate() {
        if value.rule as usize >= rules {
            return Err(BundleError::maybe_at(
                at.get(|s| s.values.get(index).copied()),
                format!("value function {index}: rule {} is out of range (there are {rules} rules)", value.rule),
            ));
        }
    }
    Ok(())
}

fn rule(bundle: &Bundle, index: usize, rule: &Rule, at: At) -> Result<(), BundleError> {
    let sites = at.rule(index);
    let start = sites.map(|s| s.start);
    if rule.id.is_empty() {
        return Err(BundleError::maybe_at(start, "the id is empty"));
    }
    if let Some(score) = rule.risk_score
        && !score.is_finite()
    {
        return Err(BundleError::maybe_at(sites.map(|s| s.risk_score), format!("the risk score is {score}; it must be a finite number")));
    }
    match rule.query {
        Query::Event { predicate } => check_predicate(bundle, index, predicate, PredicateRole::EventCondition)
            .map_err(|message| BundleError::maybe_at(sites.map(|s| s.query), message))?,
        Query::Sequence { table } => {
            let tables = bundle.sequences.as_ref().map_or(0, Vec::len);
            match bundle.sequences.as_ref().and_then(|sequences| sequences.get(table as usize)) {
                None => return Err(BundleError::maybe_at(sites.map(|s| s.query), format!("sequence table {table} is out of range (there are {tables})"))),
                Some(found) if found.rule as usize != index => {
                    return Err(BundleError::maybe_at(
                        sites.map(|s| s.query),
                        format!("sequence table {table} belongs to rule {}, not to this one", found.rule),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    for (pipe_index, pipe) in rule.pipes.iter().enumerate() {
        let error = |message: String| {
            BundleError::maybe_at(sites.and_then(|s| s.pipes.get(pipe_index).copied()), format!("pipe {pipe_index} ({}): {message}", pipe.name()))
        };
        let values = match pipe {
            Pipe::Head(_) | Pipe::Tail(_) => continue,
            Pipe::Filter(predicate) => {
                check_predicate(bundle, index, *predicate, PredicateRole::PipeFilter).map_err(error)?;
                continue;
            }
            Pipe::Unique(values) | Pipe::UniqueCount(values) | Pipe::Sort(values) if values.is_empty() => {
                return Err(error("needs at least one value function".to_string()));
            }
            Pipe::Unique(values) | Pipe::UniqueCount(values) | Pipe::Count(values) | Pipe::Sort(values) => values,
        };
        for value in values {
            match bundle.functions.values.get(*value as usize) {
                None => return Err(error(format!("value function {value} is out of range (there are {})", bundle.functions.values.len()))),
                Some(function) if function.rule as usize != index => {
                    return Err(error(format!("value function {value} belongs to rule {}, not to this one", function.rule)));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Checks that predicate `id` exists, has `role` and belongs to rule `rule`.
fn check_predicate(bundle: &Bundle, rule: usize, id: u32, role: PredicateRole) -> Result<(), String> {
    let what = match role {
        PredicateRole::EventCondition => "query predicate",
        PredicateRole::PipeFilter => "filter predicate",
        PredicateRole::LineageSource => "lineage source predicate",
        PredicateRole::StepCheck => "step check predicate",
    };
    let predicates = &bundle.functions.predicates;
    let Some(predicate) = predicates.get(id as usize) else {
        return Err(format!("{what} {id} is out of range (there are {} predicates)", predicates.len()));
    };
    if predicate.role != role {
        let has = match predicate.role {
            PredicateRole::EventCondition => "an event condition (role 0)",
            PredicateRole::PipeFilter => "a pipe filter (role 1)",
            PredicateRole::LineageSource => "a lineage source (role 2)",
            PredicateRole::StepCheck => "a step check (role 3)",
        };
        return Err(format!("{what} {id} is {has}"));
    }
    if predicate.rule as usize != rule {
        return Err(format!("{what} {id} belongs to rule {}, not to this one", predicate.rule));
    }
    Ok(())
}

/// The `SEQUENCES` section is there exactly when a rule is a sequence, each table is
/// the table of its rule (one table per sequence rule), and its steps name predicates
/// (role 0) and value functions of that rule.
fn sequences(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    // A sequence rule without its table was refused with the rule.
    let Some(tables) = &bundle.sequences else { return Ok(()) };
    if tables.is_empty() {
        return Err(BundleError::new("the SEQUENCES section has no table; a bundle without sequences has no SEQUENCES section"));
    }
    for (index, table) in tables.iter().enumerate() {
        let error = |message: String| BundleError::maybe_at(at.get(|s| s.sequences.get(index).copied()), format!("SEQUENCES: table {index}: {message}"));
        let rule = table.rule as usize;
        match bundle.rules.get(rule).map(|rule| &rule.query) {
            None => return Err(error(format!("rule {rule} is out of range (there are {} rules)", bundle.rules.len()))),
            Some(Query::Sequence { table }) if *table as usize == index => {}
            Some(_) => return Err(error(format!("rule {rule} does not name this table as its query"))),
        }
        if table.steps.is_empty() {
            return Err(error("a sequence has at least one step".to_string()));
        }
        let kind = match table.kind {
            TableKind::Sequence => None,
            TableKind::Join => Some("a join"),
            TableKind::Sample { max_samples_per_key: 0 } => return Err(error("a sample takes at least 1 sample per key".to_string())),
            TableKind::Sample { .. } => Some("a sample"),
        };
        if let Some(kind) = kind {
            if table.maxspan_ns.is_some() {
                return Err(error(format!("{kind} has no maxspan")));
            }
            if let Some(idx) = table.steps.iter().position(|step| step.missing || step.fork) {
                return Err(error(format!("step {idx}: {kind} has no missing or fork steps")));
            }
            if matches!(table.kind, TableKind::Sample { .. }) && table.until.is_some() {
                return Err(error("a sample has no until step".to_string()));
            }
        }
        let steps = table.steps.iter().enumerate().map(|(idx, step)| (format!("step {idx}"), step));
        for (name, step) in steps.chain(table.until.iter().map(|step| ("the until step".to_string(), step))) {
            check_predicate(bundle, rule, step.predicate, PredicateRole::EventCondition).map_err(|message| error(format!("{name}: {message}")))?;
            if let Some(check) = step.check {
                check_predicate(bundle, rule, check, PredicateRole::StepCheck).map_err(|message| error(format!("{name}: {message}")))?;
            }
            let slot_count = bundle.manifest.layout.slot_count;
            if let Some(capture) = step.captures.iter().find(|capture| capture.slot >= slot_count) {
                return Err(error(format!("{name}: capture slot {} is out of range (an event has {slot_count})", capture.slot)));
            }
            if let Some(slot) = step.keys.iter().filter_map(|key| key.slot).find(|slot| *slot >= slot_count) {
                return Err(error(format!("{name}: key slot {slot} is out of range (an event has {slot_count})")));
            }
            if let Some(slot) =
                step.keys.iter().filter_map(|key| key.slot).find(|slot| bundle.fields.iter().any(|field| field.plain_unread && field.slot == *slot))
            {
                return Err(error(format!("{name}: key slot {slot} is a plain slot marked unread")));
            }
            let values = step.keys.iter().map(|key| key.value).chain(step.captures.iter().map(|capture| capture.value));
            for value in values {
                match bundle.functions.values.get(value as usize) {
                    None => return Err(error(format!("{name}: value function {value} is out of range (there are {})", bundle.functions.values.len()))),
                    Some(function) if function.rule != table.rule => {
                        return Err(error(format!("{name}: value function {value} belongs to rule {}, not to rule {rule}", function.rule)));
                    }
                    Some(_) => {}
                }
            }
        }
        let width = table.steps[0].keys.len();
        if let Some((idx, _)) = table.steps.iter().enumerate().find(|(_, step)| step.keys.len() != width) {
            return Err(error(format!("step {idx} has {} keys and step 0 has {width}; every step joins on as many", table.steps[idx].keys.len())));
        }
    }
    Ok(())
}

fn patterns(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    for (set, blocks) in bundle.patterns.cidr_sets.iter().enumerate() {
        for (index, CidrBlock { address, prefix }) in blocks.iter().enumerate() {
            let (family, max) = match address {
                IpAddr::V4(_) => ("IPv4", 32),
                IpAddr::V6(_) => ("IPv6", 128),
            };
            if *prefix > max {
                return Err(BundleError::maybe_at(
                    at.get(|s| s.cidr_blocks.get(set).and_then(|blocks| blocks.get(index)).map(|start| start + 17)),
                    format!("CIDR set {set} block {index} ({address}/{prefix}): the prefix is longer than the {max} bits of an {family} address"),
                ));
            }
        }
    }
    Ok(())
}

/// The lineage table's indexes are in range, its slots are free and unique, and every
/// lineage source predicate is the source of exactly one test.
fn lineage(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let sources = bundle.functions.predicates.iter().filter(|predicate| predicate.role == PredicateRole::LineageSource).count();
    let Some(table) = &bundle.lineage else {
        if sources > 0 {
            return Err(BundleError::new(format!("{sources} predicates are lineage sources (role 2), but the bundle has no LINEAGE section")));
        }
        return Ok(());
    };
    let start = at.get(|s| Some(s.lineage));
    let error = |message: String| BundleError::maybe_at(start, format!("LINEAGE: {message}"));
    for (what, index) in [("pid_field", table.pid_field), ("ppid_field", table.ppid_field), ("subtype_field", table.subtype_field)] {
        if index as usize >= bundle.fields.len() {
            return Err(error(format!("{what} {index} is out of range (there are {} fields)", bundle.fields.len())));
        }
    }
    if table.process_category as usize >= bundle.functions.categories.len() {
        return Err(error(format!("process_category {} is out of range (there are {} categories)", table.process_category, bundle.functions.categories.len())));
    }
    let field_slots: Vec<u32> = bundle.fields.iter().flat_map(|field| [Some(field.slot), field.folded_slot]).flatten().collect();
    let mut slots = Vec::new();
    let mut used_sources = Vec::new();
    for (index, node) in table.nodes.iter().enumerate() {
        let error = |message: String| BundleError::maybe_at(at.get(|s| s.lineage_nodes.get(index).copied()), format!("LINEAGE: test {index}: {message}"));
        match bundle.functions.predicates.get(node.source as usize) {
            None => return Err(error(format!("source predicate {} is out of range", node.source))),
            Some(predicate) if predicate.role != PredicateRole::LineageSource => {
                return Err(error(format!("source predicate {} is not a lineage source (role 2)", node.source)));
            }
            Some(_) if used_sources.contains(&node.source) => return Err(error(format!("source predicate {} is the source of two tests", node.source))),
            Some(_) => used_sources.push(node.source),
        }
        if node.slot >= bundle.manifest.layout.slot_count {
            return Err(error(format!("slot {} is out of range (the layout has {} slots)", node.slot, bundle.manifest.layout.slot_count)));
        }
        if field_slots.contains(&node.slot) || slots.contains(&node.slot) {
            return Err(error(format!("slot {} is already in use", node.slot)));
        }
        slots.push(node.slot);
    }
    if used_sources.len() != sources {
        return Err(error(format!("{} lineage source predicates are not the source of any test", sources - used_sources.len())));
    }
    Ok(())
}

fn wasm(bundle: &Bundle, at: At) -> Result<(), BundleError> {
    let wasm = &bundle.wasm;
    let start = at.get(|s| Some(s.wasm));
    if wasm.len() < WASM_HEADER.len() {
        return Err(BundleError::maybe_at(start, format!("the Wasm module is {} bytes long, shorter than the 8-byte Wasm header", wasm.len())));
    }
    if wasm[..4] != WASM_HEADER[..4] {
        return Err(BundleError::maybe_at(start, "the Wasm module does not start with the Wasm magic `\\0asm`"));
    }
    if wasm[4..8] != WASM_HEADER[4..8] {
        let version = u32::from_le_bytes([wasm[4], wasm[5], wasm[6], wasm[7]]);
        return Err(BundleError::maybe_at(start.map(|start| start + 4), format!("the Wasm module has binary version {version}; only version 1 is supported")));
    }
    Ok(())
}
