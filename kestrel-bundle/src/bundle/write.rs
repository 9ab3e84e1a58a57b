//! The bundle writer: one deterministic encoding of a validated [`Bundle`].

use super::{
    ABI_VERSION, Action, BYTE_ORDER_MARK, Bundle, BundleError, CHECKSUM_LEN, CustomPredicate, FORMAT_VERSION, Field, Functions, HEADER_LEN, Layout,
    LineageTable, LineageValue, MAGIC, Manifest, NO_INDEX, Needs, Patterns, Pipe, Query, Rule, RuleAction, SectionKind, SequenceStep, SequenceTable,
    TABLE_ENTRY_LEN, TableKind, align8, codes, fnv1a64, validate,
};
use std::net::IpAddr;

/// Encodes `bundle` after checking it with [`validate::check`].
pub(crate) fn write(bundle: &Bundle) -> Result<Vec<u8>, BundleError> {
    validate::check(bundle, None)?;
    let mut sections = vec![
        (SectionKind::Manifest, section(|out| manifest(out, &bundle.manifest))?),
        (SectionKind::Fields, section(|out| out.vec(&bundle.fields, field))?),
        (SectionKind::Rules, section(|out| out.vec(&bundle.rules, rule))?),
        (SectionKind::Functions, section(|out| functions(out, &bundle.functions))?),
        (SectionKind::Patterns, section(|out| patterns(out, &bundle.patterns))?),
        (SectionKind::Wasm, bundle.wasm.clone()),
    ];
    if let Some(tables) = &bundle.sequences {
        sections.push((SectionKind::Sequences, section(|out| out.vec(tables, sequence))?));
    }
    if let Some(table) = &bundle.lineage {
        sections.push((SectionKind::Lineage, section(|out| lineage(out, table))?));
    }
    if let Some(predicates) = &bundle.custom {
        sections.push((SectionKind::Custom, section(|out| out.vec(predicates, custom))?));
    }
    if !bundle.actions.is_empty() {
        sections.push((SectionKind::Actions, section(|out| out.vec(&bundle.actions, action))?));
    }
    if let Some(prefilter) = &bundle.prefilter {
        sections.push((SectionKind::Prefilter, section(|out| out.vec(&prefilter.literals, |out, literal| out.str(literal)))?));
    }
    if let Some(needs) = &bundle.needs {
        sections.push((SectionKind::Needs, section(|out| self::needs(out, needs))?));
    }

    let table_end = HEADER_LEN + TABLE_ENTRY_LEN * sections.len();
    let mut offsets = Vec::with_capacity(sections.len());
    let mut at = table_end as u64;
    for (_, body) in &sections {
        at = align8(at);
        offsets.push(at);
        at += body.len() as u64;
    }
    let checksum_at = align8(at);

    let mut out = Writer::default();
    out.bytes(&MAGIC);
    out.u32(FORMAT_VERSION);
    out.u32(ABI_VERSION);
    out.u32(BYTE_ORDER_MARK);
    out.u32(sections.len() as u32);
    out.u64(0);
    for ((kind, body), offset) in sections.iter().zip(&offsets) {
        out.u32(*kind as u32);
        out.u32(0);
        out.u64(*offset);
        out.u64(body.len() as u64);
    }
    for ((_, body), offset) in sections.iter().zip(&offsets) {
        out.pad_to(*offset);
        out.bytes(body);
    }
    out.pad_to(checksum_at);
    let checksum = fnv1a64(&out.buf);
    out.u64(checksum);
    debug_assert_eq!(out.buf.len() as u64, checksum_at + CHECKSUM_LEN as u64);
    Ok(out.buf)
}

fn section(encode: impl FnOnce(&mut Writer) -> Result<(), BundleError>) -> Result<Vec<u8>, BundleError> {
    let mut out = Writer::default();
    encode(&mut out)?;
    Ok(out.buf)
}

/// Little-endian encoding of the values of docs/bundle-format.md.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    fn u32(&mut self, value: u32) {
        self.bytes(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    fn f64(&mut self, value: f64) {
        self.u64(value.to_bits());
    }

    fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    fn len(&mut self, len: usize, what: &str) -> Result<(), BundleError> {
        let len = u32::try_from(len).map_err(|_| BundleError::new(format!("{what} has {len} items or bytes; the format allows at most {}", u32::MAX)))?;
        self.u32(len);
        Ok(())
    }

    fn str(&mut self, text: &str) -> Result<(), BundleError> {
        self.len(text.len(), "a string")?;
        self.bytes(text.as_bytes());
        Ok(())
    }

    fn vec<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Writer, &T) -> Result<(), BundleError>) -> Result<(), BundleError> {
        self.len(items.len(), "a list")?;
        items.iter().try_for_each(|value| item(self, value))
    }

    fn option<T>(&mut self, value: Option<&T>, item: impl FnOnce(&mut Writer, &T) -> Result<(), BundleError>) -> Result<(), BundleError> {
        match value {
            None => {
                self.u8(0);
                Ok(())
            }
            Some(value) => {
                self.u8(1);
                item(self, value)
            }
        }
    }

    fn pad_to(&mut self, offset: u64) {
        while (self.buf.len() as u64) < offset {
            self.buf.push(0);
        }
    }
}

fn manifest(out: &mut Writer, manifest: &Manifest) -> Result<(), BundleError> {
    out.str(&manifest.compiler)?;
    out.str(&manifest.schema_name)?;
    out.u64(manifest.schema_fingerprint);
    out.str(&manifest.category_field)?;
    out.str(&manifest.timestamp_field)?;
    out.u8(codes::timestamp_unit(manifest.timestamp_unit));
    layout(out, &manifest.layout);
    Ok(())
}

fn layout(out: &mut Writer, layout: &Layout) {
    let Layout {
        memory_pages,
        slots_offset,
        slot_count,
        categories_offset,
        category_capacity,
        results_offset,
        result_count,
        out_offset,
        args_offset,
        data_offset,
        data_capacity,
        heap_offset,
        heap_capacity,
        batch_capacity,
    } = *layout;
    for value in [
        memory_pages,
        slots_offset,
        slot_count,
        categories_offset,
        category_capacity,
        results_offset,
        result_count,
        out_offset,
        args_offset,
        data_offset,
        data_capacity,
        heap_offset,
        heap_capacity,
        batch_capacity,
    ] {
        out.u32(value);
    }
}

fn needs(out: &mut Writer, needs: &Needs) -> Result<(), BundleError> {
    out.vec(&needs.atoms, |out, atom| {
        out.u32(atom.field);
        out.str(&atom.literal)
    })?;
    out.vec(&needs.predicates, |out, entry| {
        out.u32(entry.predicate);
        out.vec(&entry.clauses, |out, clause| {
            out.vec(clause, |out, atom| {
                out.u32(*atom);
                Ok(())
            })
        })
    })
}

fn field(out: &mut Writer, field: &Field) -> Result<(), BundleError> {
    out.str(&field.name)?;
    out.u8(codes::field_kind(field.kind));
    let mut flags = 0;
    if field.array {
        flags |= codes::FLAG_ARRAY;
    }
    if field.folded_slot.is_some() {
        flags |= codes::FLAG_FOLDED;
    }
    if field.plain_unread {
        flags |= codes::FLAG_PLAIN_UNREAD;
    }
    out.u8(flags);
    out.u32(field.slot);
    out.u32(field.folded_slot.unwrap_or(NO_INDEX));
    Ok(())
}

fn rule(out: &mut Writer, rule: &Rule) -> Result<(), BundleError> {
    out.str(&rule.id)?;
    out.str(&rule.name)?;
    out.str(&rule.severity)?;
    out.option(rule.risk_score.as_ref(), |out, score| {
        out.f64(*score);
        Ok(())
    })?;
    out.option(rule.description.as_ref(), |out, text| out.str(text))?;
    out.vec(&rule.tags, |out, tag| out.str(tag))?;
    match rule.query {
        Query::Event { predicate } => {
            out.u8(codes::QUERY_EVENT);
            out.u32(predicate);
        }
        Query::Sequence { table } => {
            out.u8(codes::QUERY_SEQUENCE);
            out.u32(table);
        }
    }
    out.vec(&rule.pipes, pipe)
}

fn pipe(out: &mut Writer, pipe: &Pipe) -> Result<(), BundleError> {
    let ids = |out: &mut Writer, kind: u8, ids: &[u32]| {
        out.u8(kind);
        out.vec(ids, |out, id| {
            out.u32(*id);
            Ok(())
        })
    };
    match pipe {
        Pipe::Head(count) => {
            out.u8(0);
            out.u64(*count);
            Ok(())
        }
        Pipe::Tail(count) => {
            out.u8(1);
            out.u64(*count);
            Ok(())
        }
        Pipe::Filter(predicate) => {
            out.u8(2);
            out.u32(*predicate);
            Ok(())
        }
        Pipe::Unique(values) => ids(out, 3, values),
        Pipe::UniqueCount(values) => ids(out, 4, values),
        Pipe::Count(values) => ids(out, 5, values),
        Pipe::Sort(values) => ids(out, 6, values),
    }
}

fn functions(out: &mut Writer, functions: &Functions) -> Result<(), BundleError> {
    out.vec(&functions.categories, |out, name| out.str(name))?;
    out.vec(&functions.predicates, |out, predicate| {
        out.u32(predicate.rule);
        out.u8(codes::role(predicate.role));
        out.u32(predicate.category.unwrap_or(NO_INDEX));
        Ok(())
    })?;
    out.vec(&functions.values, |out, value| {
        out.u32(value.rule);
        Ok(())
    })
}

fn patterns(out: &mut Writer, patterns: &Patterns) -> Result<(), BundleError> {
    out.vec(&patterns.regexes, |out, regex| {
        out.str(&regex.pattern)?;
        out.bool(regex.case_insensitive);
        out.u8(codes::anchor(regex.anchor));
        Ok(())
    })?;
    out.vec(&patterns.cidr_sets, |out, set| {
        out.vec(set, |out, block| {
            let mut address = [0u8; 16];
            match block.address {
                IpAddr::V4(v4) => {
                    out.u8(codes::FAMILY_V4);
                    address[..4].copy_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    out.u8(codes::FAMILY_V6);
                    address = v6.octets();
                }
            }
            out.bytes(&address);
            out.u8(block.prefix);
            Ok(())
        })
    })
}

fn lineage(out: &mut Writer, table: &LineageTable) -> Result<(), BundleError> {
    out.u32(table.pid_field);
    out.u32(table.ppid_field);
    out.u32(table.subtype_field);
    out.u32(table.process_category);
    let value = |out: &mut Writer, value: &LineageValue| match value {
        LineageValue::Long(number) => {
            out.u8(0);
            out.u64(*number as u64);
            Ok(())
        }
        LineageValue::Str(text) => {
            out.u8(1);
            out.str(text)
        }
    };
    out.vec(&table.create_values, value)?;
    out.vec(&table.terminate_values, value)?;
    out.vec(&table.nodes, |out, node| {
        out.u8(codes::relation(node.relation));
        out.u32(node.source);
        out.u32(node.slot);
        Ok(())
    })
}

fn custom(out: &mut Writer, predicate: &CustomPredicate) -> Result<(), BundleError> {
    out.str(&predicate.name)?;
    out.u8(codes::runtime(predicate.runtime));
    out.len(predicate.code.len(), "the predicate's code")?;
    out.bytes(&predicate.code);
    out.vec(&predicate.fields, |out, field| {
        out.u32(*field);
        Ok(())
    })?;
    out.vec(&predicate.params, |out, kind| {
        out.u8(codes::field_kind(*kind));
        Ok(())
    })?;
    out.vec(&predicate.captures, |out, capture| {
        out.str(&capture.name)?;
        out.u8(codes::field_kind(capture.kind));
        Ok(())
    })?;
    out.u64(predicate.limits.instructions);
    out.u64(predicate.limits.memory_bytes);
    out.u64(predicate.limits.time_ms);
    out.vec(&predicate.rules, |out, rule| {
        out.u32(*rule);
        Ok(())
    })
}

fn action(out: &mut Writer, entry: &RuleAction) -> Result<(), BundleError> {
    out.u32(entry.rule);
    out.bool(entry.at_exec);
    match &entry.action {
        Action::Block => {
            out.u8(codes::ACTION_BLOCK);
            Ok(())
        }
        Action::Kill(targets) => {
            out.u8(codes::ACTION_KILL);
            out.vec(targets, |out, target| {
                out.u8(codes::whom(target.whom));
                out.u32(target.step);
                out.bool(target.tree);
                Ok(())
            })
        }
    }
}

fn sequence(out: &mut Writer, table: &SequenceTable) -> Result<(), BundleError> {
    out.u32(table.rule);
    match table.kind {
        TableKind::Sequence => out.u8(codes::TABLE_SEQUENCE),
        TableKind::Join => out.u8(codes::TABLE_JOIN),
        TableKind::Sample { max_samples_per_key } => {
            out.u8(codes::TABLE_SAMPLE);
            out.u32(max_samples_per_key);
        }
    }
    out.u8(codes::flavor(table.flavor));
    out.bool(table.fold_case);
    out.option(table.maxspan_ns.as_ref(), |out, maxspan| {
        out.u64(*maxspan);
        Ok(())
    })?;
    out.vec(&table.steps, step)?;
    out.option(table.until.as_ref(), step)
}

fn step(out: &mut Writer, step: &SequenceStep) -> Result<(), BundleError> {
    out.u32(step.predicate);
    out.vec(&step.keys, |out, key| {
        out.u32(key.value);
        out.bool(key.optional);
        out.option(key.slot.as_ref(), |out, slot| {
            out.u32(*slot);
            Ok(())
        })
    })?;
    out.bool(step.missing);
    out.bool(step.fork);
    out.u32(step.source_step);
    out.option(step.check.as_ref(), |out, check| {
        out.u32(*check);
        Ok(())
    })?;
    out.vec(&step.captures, |out, capture| {
        out.u32(capture.value);
        out.u32(capture.slot);
        Ok(())
    })
}
