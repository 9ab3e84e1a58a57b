//! The validating bundle reader.
//!
//! Reading goes outside in: header and versions, the section table and the placement of
//! the sections, the checksum, the encoded values of each section, and last the
//! semantic checks of [`validate::check`] (with the byte offset of each checked item).
//! Nothing here indexes or allocates without checking the bytes are there first.

use super::{
    ABI_VERSION, Action, BYTE_ORDER_MARK, Bundle, BundleError, CHECKSUM_LEN, Capture, CaptureDecl, CidrBlock, CustomLimits, CustomPredicate, FORMAT_VERSION,
    Field, Functions, HEADER_LEN, KillTarget, Layout, LineageNode, LineageTable, LineageValue, MAGIC, Manifest, NO_INDEX, NeedAtom, Needs, Patterns, Pipe,
    Predicate, PredicateNeeds, Prefilter, Query, RegexPattern, Rule, RuleAction, SectionKind, SequenceKey, SequenceStep, SequenceTable, TABLE_ENTRY_LEN,
    TableKind, ValueFn, align8, codes, fnv1a64, validate,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where each decoded item starts in the file, so that semantic errors name a byte.
#[derive(Debug, Default)]
pub(crate) struct Sites {
    pub(crate) manifest: u64,
    pub(crate) category_field: u64,
    pub(crate) timestamp_field: u64,
    pub(crate) layout: u64,
    pub(crate) fields: Vec<u64>,
    pub(crate) rules: Vec<RuleSites>,
    pub(crate) categories: Vec<u64>,
    pub(crate) predicates: Vec<u64>,
    pub(crate) values: Vec<u64>,
    pub(crate) regexes: Vec<u64>,
    pub(crate) cidr_blocks: Vec<Vec<u64>>,
    pub(crate) wasm: u64,
    pub(crate) lineage: u64,
    pub(crate) lineage_nodes: Vec<u64>,
    pub(crate) sequences: Vec<u64>,
    pub(crate) custom: Vec<u64>,
    pub(crate) actions: Vec<ActionSites>,
    pub(crate) prefilter: Vec<u64>,
    pub(crate) need_atoms: Vec<u64>,
    pub(crate) need_predicates: Vec<u64>,
}

/// Where the parts of one entry of the `ACTIONS` section start.
#[derive(Debug, Default)]
pub(crate) struct ActionSites {
    pub(crate) start: u64,
    pub(crate) targets: Vec<u64>,
}

/// Where the parts of one rule start.
#[derive(Debug, Default)]
pub(crate) struct RuleSites {
    pub(crate) start: u64,
    pub(crate) risk_score: u64,
    pub(crate) query: u64,
    pub(crate) pipes: Vec<u64>,
}

/// One entry of the section table, checked for placement.
struct Section {
    kind: SectionKind,
    start: usize,
    end: usize,
}

pub(crate) fn read(bytes: &[u8]) -> Result<Bundle, BundleError> {
    let sections = container(bytes)?;
    let mut sites = Sites::default();
    let mut manifest = None;
    let mut fields = None;
    let mut rules = None;
    let mut functions = None;
    let mut patterns = None;
    let mut wasm = None;
    let mut sequences = None;
    let mut lineage = None;
    let mut custom = None;
    let mut actions = Vec::new();
    let mut prefilter = None;
    let mut needs = None;
    for section in &sections {
        let body = bytes.get(section.start..section.end).ok_or_else(|| BundleError::new("section bounds were not checked (reader bug)"))?;
        let mut r = Reader { bytes: body, pos: 0, base: section.start as u64 };
        let name = section.kind.name();
        match section.kind {
            SectionKind::Manifest => manifest = Some(read_manifest(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Fields => fields = Some(read_fields(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Rules => rules = Some(read_rules(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Functions => functions = Some(read_functions(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Patterns => patterns = Some(read_patterns(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Wasm => {
                sites.wasm = section.start as u64;
                wasm = Some(r.take(body.len(), "the module")?.to_vec());
            }
            SectionKind::Sequences => sequences = Some(read_sequences(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Lineage => lineage = Some(read_lineage(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Custom => custom = Some(read_custom(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Actions => actions = read_actions(&mut r, &mut sites).map_err(|e| e.context(name))?,
            SectionKind::Prefilter => prefilter = Some(read_prefilter(&mut r, &mut sites).map_err(|e| e.context(name))?),
            SectionKind::Needs => needs = Some(read_needs(&mut r, &mut sites).map_err(|e| e.context(name))?),
        }
        r.finish().map_err(|e| e.context(name))?;
    }
    let missing = |kind: SectionKind| BundleError::at(HEADER_LEN as u64, format!("the required section {} is missing (reader bug)", kind.name()));
    let bundle = Bundle {
        manifest: manifest.ok_or_else(|| missing(SectionKind::Manifest))?,
        fields: fields.ok_or_else(|| missing(SectionKind::Fields))?,
        rules: rules.ok_or_else(|| missing(SectionKind::Rules))?,
        functions: functions.ok_or_else(|| missing(SectionKind::Functions))?,
        patterns: patterns.ok_or_else(|| missing(SectionKind::Patterns))?,
        wasm: wasm.ok_or_else(|| missing(SectionKind::Wasm))?,
        sequences,
        lineage,
        custom,
        actions,
        prefilter,
        needs,
    };
    validate::check(&bundle, Some(&sites))?;
    Ok(bundle)
}

/// The `u32` at `offset`, if the file has it.
fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let chunk = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(chunk.try_into().ok()?))
}

/// The `u64` at `offset`, if the file has it.
fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let chunk = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

fn too_short(len: usize) -> BundleError {
    BundleError::at(
        len as u64,
        format!("the file ends after {len} bytes; a bundle has at least a {HEADER_LEN}-byte header and an {CHECKSUM_LEN}-byte checksum"),
    )
}

/// Checks the header, the section table, the placement and padding of the sections,
/// and the checksum; returns the sections in table order.
fn container(bytes: &[u8]) -> Result<Vec<Section>, BundleError> {
    let len = bytes.len();
    let magic_len = len.min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(BundleError::at(0, "not a Kestrel bundle: the file does not start with the magic `KSTRLBND`"));
    }
    let Some(version) = u32_at(bytes, 8) else { return Err(too_short(len)) };
    if version != FORMAT_VERSION {
        return Err(BundleError::at(8, format!("format version {version} is not supported by this reader (supports {FORMAT_VERSION})")));
    }
    let Some(abi) = u32_at(bytes, 12) else { return Err(too_short(len)) };
    if abi != ABI_VERSION {
        return Err(BundleError::at(12, format!("predicate ABI version {abi} is not supported by this reader (supports {ABI_VERSION})")));
    }
    if len < HEADER_LEN + CHECKSUM_LEN {
        return Err(too_short(len));
    }
    let bom = u32_at(bytes, 16).unwrap_or_default();
    if bom != BYTE_ORDER_MARK {
        let hint = if bom == BYTE_ORDER_MARK.swap_bytes() { " (the file was written big-endian)" } else { "" };
        return Err(BundleError::at(16, format!("byte-order mark is {bom:#010x}, expected {BYTE_ORDER_MARK:#010x}{hint}")));
    }
    let count = u32_at(bytes, 20).unwrap_or_default();
    if u64_at(bytes, 24) != Some(0) {
        return Err(BundleError::at(24, "the reserved header bytes 24..32 are not zero"));
    }
    let kinds = SectionKind::ALL.len();
    if count as usize > kinds {
        return Err(BundleError::at(20, format!("section count {count} is more than the {kinds} section kinds of format {FORMAT_VERSION}")));
    }
    let count = count as usize;
    let table_end = HEADER_LEN + TABLE_ENTRY_LEN * count;
    let checksum_at = len - CHECKSUM_LEN;
    if table_end > checksum_at {
        return Err(BundleError::at(
            20,
            format!("section count {count} needs a table ending at byte {table_end}, but the checksum starts at byte {checksum_at}"),
        ));
    }

    // The table: known kinds, ascending, reserved zeros.
    let mut entries: Vec<(SectionKind, usize, u64, u64)> = Vec::with_capacity(count);
    for index in 0..count {
        let entry = HEADER_LEN + TABLE_ENTRY_LEN * index;
        let raw_kind = u32_at(bytes, entry).unwrap_or_default();
        let Some(kind) = SectionKind::from_u32(raw_kind) else {
            return Err(BundleError::at(
                entry as u64,
                format!("section table entry {index}: unknown section kind {raw_kind} (format {FORMAT_VERSION} knows kinds 1 to {kinds})"),
            ));
        };
        if let Some((previous, ..)) = entries.last() {
            if *previous == kind {
                return Err(BundleError::at(entry as u64, format!("section table entry {index}: section {} is listed twice", kind.name())));
            }
            if *previous > kind {
                return Err(BundleError::at(
                    entry as u64,
                    format!(
                        "section table entry {index}: section {} comes after {}; sections are listed in increasing kind order",
                        kind.name(),
                        previous.name()
                    ),
                ));
            }
        }
        if u32_at(bytes, entry + 4) != Some(0) {
            return Err(BundleError::at(entry as u64 + 4, format!("section table entry {index} ({}): the reserved field is not zero", kind.name())));
        }
        let offset = u64_at(bytes, entry + 8).unwrap_or_default();
        let length = u64_at(bytes, entry + 16).unwrap_or_default();
        entries.push((kind, entry, offset, length));
    }
    if let Some(kind) = SectionKind::ALL.into_iter().find(|kind| kind.required() && !entries.iter().any(|(present, ..)| present == kind)) {
        return Err(BundleError::at(HEADER_LEN as u64, format!("the required section {} is missing from the section table", kind.name())));
    }

    // Placement: packed in table order, 8-aligned, between the table and the checksum.
    let mut sections = Vec::with_capacity(count);
    let mut previous_end = table_end as u64;
    let mut previous_name = "the section table".to_string();
    for (kind, entry, offset, length) in entries {
        let name = kind.name();
        let expected = align8(previous_end);
        if offset % 8 != 0 {
            return Err(BundleError::at(entry as u64 + 8, format!("section {name} starts at byte {offset}, which is not 8-aligned")));
        }
        if offset < expected {
            return Err(BundleError::at(
                entry as u64 + 8,
                format!("section {name} starts at byte {offset}, inside {previous_name} (which ends at byte {previous_end})"),
            ));
        }
        if offset > expected {
            return Err(BundleError::at(
                entry as u64 + 8,
                format!(
                    "section {name} starts at byte {offset}, leaving a gap after {previous_name}; sections are packed, so it must start at byte {expected}"
                ),
            ));
        }
        let end = offset.checked_add(length).filter(|end| *end <= checksum_at as u64).ok_or_else(|| {
            BundleError::at(entry as u64 + 16, format!("section {name} (byte {offset}, {length} bytes long) extends past the checksum at byte {checksum_at}"))
        })?;
        // Both fit in `usize`: they are at most `checksum_at`.
        sections.push(Section { kind, start: offset as usize, end: end as usize });
        previous_end = end;
        previous_name = format!("section {name}");
    }
    let expected_checksum_at = align8(previous_end);
    if expected_checksum_at != checksum_at as u64 {
        return Err(BundleError::at(
            previous_end,
            format!(
                "the checksum must start at byte {expected_checksum_at} (the first 8-aligned offset after {previous_name}), so the file must be {} bytes long, but it is {len}",
                expected_checksum_at + CHECKSUM_LEN as u64
            ),
        ));
    }

    // Padding: every byte between the table, the bodies and the checksum is zero.
    let mut gap_start = table_end;
    for (gap_end, next_start) in sections.iter().map(|section| (section.start, section.end)).chain([(checksum_at, checksum_at)]) {
        if let Some(position) = bytes.get(gap_start..gap_end).and_then(|gap| gap.iter().position(|byte| *byte != 0)) {
            let at = gap_start + position;
            return Err(BundleError::at(at as u64, format!("padding byte {at} is {:#04x}, not zero", bytes[at])));
        }
        gap_start = next_start;
    }

    let stored = u64_at(bytes, checksum_at).unwrap_or_default();
    let computed = fnv1a64(&bytes[..checksum_at]);
    if stored != computed {
        return Err(BundleError::at(
            checksum_at as u64,
            format!("checksum mismatch: the file says {stored:#018x} but its bytes hash to {computed:#018x}; the file is corrupt"),
        ));
    }
    Ok(sections)
}

/// A cursor over one section body; `base` is the body's offset in the file.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Reader<'a> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], BundleError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(BundleError::at(self.offset(), format!("{what} needs {n} bytes, but the section has only {remaining} left")));
        }
        let chunk = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(chunk)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], BundleError> {
        let chunk = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(chunk);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, BundleError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, BundleError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, BundleError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn f64(&mut self, what: &str) -> Result<f64, BundleError> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    /// A one-byte code, turned into a value by `decode`; `expected` lists the valid codes.
    fn bool(&mut self, what: &str) -> Result<bool, BundleError> {
        self.code(what, "0 (false) or 1 (true)", |code| (code <= 1).then_some(code == 1))
    }

    fn code<T>(&mut self, what: &str, expected: &str, decode: impl FnOnce(u8) -> Option<T>) -> Result<T, BundleError> {
        let at = self.offset();
        let code = self.u8(what)?;
        decode(code).ok_or_else(|| BundleError::at(at, format!("{what} is {code}, expected {expected}")))
    }

    fn str(&mut self, what: &str) -> Result<String, BundleError> {
        let at = self.offset();
        let len = self.u32(what)? as usize;
        if len > self.remaining() {
            return Err(BundleError::at(at, format!("{what} is {len} bytes long, but the section has only {} left", self.remaining())));
        }
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(error) => Err(BundleError::at(at + 4 + error.valid_up_to() as u64, format!("{what} is not valid UTF-8"))),
        }
    }

    /// A `vec` count, checked against the bytes left: each item takes at least
    /// `min_item` bytes.
    fn count(&mut self, min_item: usize, what: &str) -> Result<usize, BundleError> {
        let at = self.offset();
        let count = self.u32(what)? as usize;
        let remaining = self.remaining();
        if count.saturating_mul(min_item) > remaining {
            return Err(BundleError::at(
                at,
                format!("{what} has a count of {count}, but the {remaining} bytes left in the section hold at most {}", remaining / min_item),
            ));
        }
        Ok(count)
    }

    /// `vec<T>`: the count, then `count` items read by `item` (given their index).
    fn vec<T>(&mut self, min_item: usize, what: &str, mut item: impl FnMut(&mut Reader<'a>, usize) -> Result<T, BundleError>) -> Result<Vec<T>, BundleError> {
        let count = self.count(min_item, what)?;
        let mut items = Vec::with_capacity(count);
        for index in 0..count {
            items.push(item(self, index)?);
        }
        Ok(items)
    }

    fn option<T>(&mut self, what: &str, item: impl FnOnce(&mut Reader<'a>) -> Result<T, BundleError>) -> Result<Option<T>, BundleError> {
        let present = self.code(what, "0 (absent) or 1 (present), an option tag", |code| match code {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        })?;
        if present { item(self).map(Some) } else { Ok(None) }
    }

    fn finish(&self) -> Result<(), BundleError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(BundleError::at(self.offset(), format!("{extra} trailing bytes after the last value of the section"))),
        }
    }
}

/// The smallest encodings of the items of each `vec`, used to bound counts.
mod min_size {
    pub(super) const STR: usize = 4;
    pub(super) const U32: usize = 4;
    pub(super) const FIELD: usize = 4 + 1 + 1 + 4 + 4;
    pub(super) const RULE: usize = 4 + 4 + 4 + 1 + 1 + 4 + 1 + 4 + 4;
    pub(super) const PIPE: usize = 1 + 4;
    pub(super) const PREDICATE: usize = 4 + 1 + 4;
    pub(super) const VALUE_FN: usize = 4;
    pub(super) const REGEX: usize = 4 + 1 + 1;
    pub(super) const CIDR_SET: usize = 4;
    pub(super) const CIDR_BLOCK: usize = 1 + 16 + 1;
    pub(super) const LINEAGE_VALUE: usize = 1 + 4;
    pub(super) const LINEAGE_NODE: usize = 1 + 4 + 4;
    pub(super) const SEQUENCE: usize = 4 + 1 + 1 + 1 + 1 + 4 + 1;
    pub(super) const SEQUENCE_STEP: usize = 4 + 4 + 1 + 1 + 4 + 1 + 4;
    pub(super) const SEQUENCE_KEY: usize = 4 + 1 + 1;
    pub(super) const CUSTOM: usize = 4 + 1 + 4 + 4 + 4 + 4 + 8 + 8 + 8 + 4;
    pub(super) const CAPTURE_DECL: usize = 4 + 1;
    pub(super) const ACTION: usize = 4 + 1 + 1;
    pub(super) const KILL_TARGET: usize = 1 + 4 + 1;
    pub(super) const NEED_ATOM: usize = 4 + 4;
    pub(super) const PREDICATE_NEEDS: usize = 4 + 4;
}

fn read_manifest(r: &mut Reader, sites: &mut Sites) -> Result<Manifest, BundleError> {
    sites.manifest = r.offset();
    let compiler = r.str("compiler")?;
    let schema_name = r.str("schema_name")?;
    let schema_fingerprint = r.u64("schema_fingerprint")?;
    sites.category_field = r.offset();
    let category_field = r.str("category_field")?;
    sites.timestamp_field = r.offset();
    let timestamp_field = r.str("timestamp_field")?;
    let timestamp_unit = r.code("timestamp_unit", "0 to 5 (ns, us, ms, s, filetime, rfc3339)", codes::timestamp_unit_of)?;
    sites.layout = r.offset();
    let mut values = [0u32; 14];
    for (value, name) in values.iter_mut().zip(LAYOUT_NAMES) {
        *value = r.u32(name)?;
    }
    let [
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
    ] = values;
    let layout = Layout {
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
    };
    Ok(Manifest { compiler, schema_name, schema_fingerprint, category_field, timestamp_field, timestamp_unit, layout })
}

/// The fourteen `u32`s of `Layout`, in file order.
pub(crate) const LAYOUT_NAMES: [&str; 14] = [
    "memory_pages",
    "slots_offset",
    "slot_count",
    "categories_offset",
    "category_capacity",
    "results_offset",
    "result_count",
    "out_offset",
    "args_offset",
    "data_offset",
    "data_capacity",
    "heap_offset",
    "heap_capacity",
    "batch_capacity",
];

fn read_fields(r: &mut Reader, sites: &mut Sites) -> Result<Vec<Field>, BundleError> {
    r.vec(min_size::FIELD, "the field list", |r, index| {
        sites.fields.push(r.offset());
        read_field(r).map_err(|e| e.context(format_args!("field {index}")))
    })
}

fn read_field(r: &mut Reader) -> Result<Field, BundleError> {
    let name = r.str("name")?;
    let kind = r.code("type", "0 to 6 or 255 (dynamic)", codes::field_kind_of)?;
    let flags_at = r.offset();
    let flags = r.u8("flags")?;
    let unknown = flags & !(codes::FLAG_ARRAY | codes::FLAG_FOLDED | codes::FLAG_PLAIN_UNREAD);
    if unknown != 0 {
        return Err(BundleError::at(flags_at, format!("flags {flags:#04x} set unknown bits {unknown:#04x}")));
    }
    if flags & codes::FLAG_PLAIN_UNREAD != 0 && flags & codes::FLAG_FOLDED == 0 {
        return Err(BundleError::at(flags_at, "the plain-unread flag (bit 2) is set without the folded flag (bit 1)"));
    }
    let slot = r.u32("slot")?;
    let folded_at = r.offset();
    let folded = r.u32("folded_slot")?;
    let folded_slot = if flags & codes::FLAG_FOLDED != 0 {
        if folded == NO_INDEX {
            return Err(BundleError::at(folded_at, "the folded flag is set, but folded_slot is 0xFFFFFFFF (none)"));
        }
        Some(folded)
    } else {
        if folded != NO_INDEX {
            return Err(BundleError::at(folded_at, format!("the folded flag is not set, so folded_slot must be 0xFFFFFFFF, not {folded}")));
        }
        None
    };
    Ok(Field { name, kind, array: flags & codes::FLAG_ARRAY != 0, slot, folded_slot, plain_unread: flags & codes::FLAG_PLAIN_UNREAD != 0 })
}

fn read_rules(r: &mut Reader, sites: &mut Sites) -> Result<Vec<Rule>, BundleError> {
    r.vec(min_size::RULE, "the rule list", |r, index| {
        let mut rule_sites = RuleSites { start: r.offset(), ..RuleSites::default() };
        let rule = read_rule(r, &mut rule_sites).map_err(|e| e.context(format_args!("rule {index}")))?;
        sites.rules.push(rule_sites);
        Ok(rule)
    })
}

fn read_rule(r: &mut Reader, sites: &mut RuleSites) -> Result<Rule, BundleError> {
    let id = r.str("id")?;
    let name = r.str("name")?;
    let severity = r.str("severity")?;
    sites.risk_score = r.offset();
    let risk_score = r.option("risk_score", |r| r.f64("risk_score"))?;
    let description = r.option("description", |r| r.str("description"))?;
    let tags = r.vec(min_size::STR, "the tag list", |r, index| r.str("tag").map_err(|e| e.context(format_args!("tag {index}"))))?;
    sites.query = r.offset();
    let kind = r.code("query kind", "0 (an event query) or 1 (a sequence)", |code| (code <= codes::QUERY_SEQUENCE).then_some(code))?;
    let query = match kind {
        codes::QUERY_EVENT => Query::Event { predicate: r.u32("query predicate")? },
        _ => Query::Sequence { table: r.u32("sequence table")? },
    };
    let pipes = r.vec(min_size::PIPE, "the pipe list", |r, index| {
        sites.pipes.push(r.offset());
        read_pipe(r).map_err(|e| e.context(format_args!("pipe {index}")))
    })?;
    Ok(Rule { id, name, severity, risk_score, description, tags, query, pipes })
}

fn read_pipe(r: &mut Reader) -> Result<Pipe, BundleError> {
    let kind = r.code("pipe kind", "0 to 6", |code| (code <= 6).then_some(code))?;
    let ids = |r: &mut Reader| r.vec(min_size::U32, "the value-function list", |r, _| r.u32("value function"));
    Ok(match kind {
        0 => Pipe::Head(r.u64("head count")?),
        1 => Pipe::Tail(r.u64("tail count")?),
        2 => Pipe::Filter(r.u32("filter predicate")?),
        3 => Pipe::Unique(ids(r)?),
        4 => Pipe::UniqueCount(ids(r)?),
        5 => Pipe::Count(ids(r)?),
        _ => Pipe::Sort(ids(r)?),
    })
}

fn read_functions(r: &mut Reader, sites: &mut Sites) -> Result<Functions, BundleError> {
    let categories = r.vec(min_size::STR, "the category list", |r, index| {
        sites.categories.push(r.offset());
        r.str("category name").map_err(|e| e.context(format_args!("category {index}")))
    })?;
    let predicates = r.vec(min_size::PREDICATE, "the predicate list", |r, index| {
        sites.predicates.push(r.offset());
        read_predicate(r).map_err(|e| e.context(format_args!("predicate {index}")))
    })?;
    let values = r.vec(min_size::VALUE_FN, "the value-function list", |r, index| {
        sites.values.push(r.offset());
        Ok(ValueFn { rule: r.u32("rule").map_err(|e| e.context(format_args!("value function {index}")))? })
    })?;
    Ok(Functions { categories, predicates, values })
}

fn read_predicate(r: &mut Reader) -> Result<Predicate, BundleError> {
    let rule = r.u32("rule")?;
    let role = r.code("role", "0 (event condition), 1 (pipe filter) or 2 (lineage source)", codes::role_of)?;
    let category = r.u32("category")?;
    Ok(Predicate { rule, role, category: (category != NO_INDEX).then_some(category) })
}

fn read_patterns(r: &mut Reader, sites: &mut Sites) -> Result<Patterns, BundleError> {
    let regexes = r.vec(min_size::REGEX, "the regex list", |r, index| {
        sites.regexes.push(r.offset());
        read_regex(r).map_err(|e| e.context(format_args!("regex {index}")))
    })?;
    let cidr_sets = r.vec(min_size::CIDR_SET, "the CIDR set list", |r, set| {
        let mut block_sites = Vec::new();
        let blocks = r
            .vec(min_size::CIDR_BLOCK, "the block list", |r, block| {
                block_sites.push(r.offset());
                read_block(r).map_err(|e| e.context(format_args!("block {block}")))
            })
            .map_err(|e| e.context(format_args!("CIDR set {set}")))?;
        sites.cidr_blocks.push(block_sites);
        Ok(blocks)
    })?;
    Ok(Patterns { regexes, cidr_sets })
}

fn read_regex(r: &mut Reader) -> Result<RegexPattern, BundleError> {
    let pattern = r.str("pattern")?;
    let case_insensitive = r.code("case", "0 (sensitive) or 1 (insensitive)", |code| match code {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    })?;
    let anchor = r.code("anchor", "0 (whole value) or 1 (start of value)", codes::anchor_of)?;
    Ok(RegexPattern { pattern, case_insensitive, anchor })
}

fn read_block(r: &mut Reader) -> Result<CidrBlock, BundleError> {
    let family = r.code("family", "4 or 6", |code| [codes::FAMILY_V4, codes::FAMILY_V6].contains(&code).then_some(code))?;
    let address_at = r.offset();
    let bytes: [u8; 16] = r.array("address")?;
    let address = if family == codes::FAMILY_V4 {
        if let Some(position) = bytes[4..].iter().position(|byte| *byte != 0) {
            return Err(BundleError::at(address_at + 4 + position as u64, "an IPv4 address has non-zero bytes after its first four"));
        }
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(bytes))
    };
    let prefix = r.u8("prefix")?;
    Ok(CidrBlock { address, prefix })
}

fn read_lineage(r: &mut Reader, sites: &mut Sites) -> Result<LineageTable, BundleError> {
    sites.lineage = r.offset();
    let pid_field = r.u32("pid_field")?;
    let ppid_field = r.u32("ppid_field")?;
    let subtype_field = r.u32("subtype_field")?;
    let process_category = r.u32("process_category")?;
    let value = |r: &mut Reader, index: usize| -> Result<LineageValue, BundleError> {
        let tag =
            r.code("value type", "0 (integer) or 1 (string)", |code| (code <= 1).then_some(code)).map_err(|e| e.context(format_args!("value {index}")))?;
        Ok(match tag {
            0 => LineageValue::Long(r.u64("integer value")? as i64),
            _ => LineageValue::Str(r.str("string value")?),
        })
    };
    let create_values = r.vec(min_size::LINEAGE_VALUE, "the create values", value)?;
    let terminate_values = r.vec(min_size::LINEAGE_VALUE, "the terminate values", value)?;
    let nodes = r.vec(min_size::LINEAGE_NODE, "the lineage tests", |r, index| {
        sites.lineage_nodes.push(r.offset());
        let relation = r
            .code("relation", "0 (descendant of), 1 (child of) or 2 (event of)", codes::relation_of)
            .map_err(|e| e.context(format_args!("lineage test {index}")))?;
        let source = r.u32("source predicate")?;
        let slot = r.u32("slot")?;
        Ok(LineageNode { relation, source, slot })
    })?;
    Ok(LineageTable { pid_field, ppid_field, subtype_field, process_category, create_values, terminate_values, nodes })
}

fn read_custom(r: &mut Reader, sites: &mut Sites) -> Result<Vec<CustomPredicate>, BundleError> {
    r.vec(min_size::CUSTOM, "the hand-written predicates", |r, index| {
        sites.custom.push(r.offset());
        read_custom_predicate(r).map_err(|e| e.context(format_args!("predicate {index}")))
    })
}

fn read_custom_predicate(r: &mut Reader) -> Result<CustomPredicate, BundleError> {
    let name = r.str("name")?;
    let runtime = r.code("runtime", "0 (lua) or 1 (wasm)", codes::runtime_of)?;
    let len = r.count(1, "code")?;
    let code = r.take(len, "the code")?.to_vec();
    let fields = r.vec(min_size::U32, "the fields", |r, _| r.u32("field"))?;
    let kind = |r: &mut Reader| r.code("type", "a field type code", codes::field_kind_of);
    let params = r.vec(1, "the parameters", |r, _| kind(r))?;
    let captures = r.vec(min_size::CAPTURE_DECL, "the captures", |r, _| Ok(CaptureDecl { name: r.str("capture name")?, kind: kind(r)? }))?;
    let limits = CustomLimits { instructions: r.u64("instructions")?, memory_bytes: r.u64("memory_bytes")?, time_ms: r.u64("time_ms")? };
    let rules = r.vec(min_size::U32, "the rules", |r, _| r.u32("rule"))?;
    Ok(CustomPredicate { name, runtime, code, fields, params, captures, limits, rules })
}

/// The `ACTIONS` section: at least one entry (a bundle whose rules only alert has no
/// such section).
fn read_actions(r: &mut Reader, sites: &mut Sites) -> Result<Vec<RuleAction>, BundleError> {
    let at = r.offset();
    let actions = r.vec(min_size::ACTION, "the actions", |r, index| {
        let mut entry = ActionSites { start: r.offset(), targets: Vec::new() };
        let action = read_action(r, &mut entry).map_err(|e| e.context(format_args!("entry {index}")))?;
        sites.actions.push(entry);
        Ok(action)
    })?;
    if actions.is_empty() {
        return Err(BundleError::at(at, "the section lists no actions (a bundle whose rules only alert has no ACTIONS section)"));
    }
    Ok(actions)
}

/// The `PREFILTER` section: its literals (checked by `validate`).
fn read_prefilter(r: &mut Reader, sites: &mut Sites) -> Result<Prefilter, BundleError> {
    let literals = r.vec(min_size::STR, "the literals", |r, _| {
        sites.prefilter.push(r.offset());
        r.str("a literal")
    })?;
    Ok(Prefilter { literals })
}

/// The `NEEDS` section: its atoms and the predicates' clauses (checked by `validate`).
fn read_needs(r: &mut Reader, sites: &mut Sites) -> Result<Needs, BundleError> {
    let atoms = r.vec(min_size::NEED_ATOM, "the atoms", |r, _| {
        sites.need_atoms.push(r.offset());
        Ok(NeedAtom { field: r.u32("field")?, literal: r.str("a literal")? })
    })?;
    let predicates = r.vec(min_size::PREDICATE_NEEDS, "the predicates", |r, _| {
        sites.need_predicates.push(r.offset());
        let predicate = r.u32("predicate")?;
        let clauses = r.vec(min_size::U32, "the clauses", |r, _| r.vec(min_size::U32, "a clause", |r, _| r.u32("an atom")))?;
        Ok(PredicateNeeds { predicate, clauses })
    })?;
    Ok(Needs { atoms, predicates })
}

fn read_action(r: &mut Reader, sites: &mut ActionSites) -> Result<RuleAction, BundleError> {
    let rule = r.u32("rule")?;
    let at = r.offset();
    let at_exec = r.bool("at_exec")?;
    let kind = r.code("action kind", "0 (block) or 1 (kill)", |code| (code <= codes::ACTION_KILL).then_some(code))?;
    let action = match kind {
        codes::ACTION_BLOCK => Action::Block,
        _ => Action::Kill(r.vec(min_size::KILL_TARGET, "the kill targets", |r, index| {
            sites.targets.push(r.offset());
            read_kill_target(r).map_err(|e| e.context(format_args!("target {index}")))
        })?),
    };
    if action == Action::Block && !at_exec {
        return Err(BundleError::at(at, "a `block` action is always decided at the exec hook (at_exec must be 1)"));
    }
    Ok(RuleAction { rule, action, at_exec })
}

fn read_kill_target(r: &mut Reader) -> Result<KillTarget, BundleError> {
    let whom = r.code("whom", "0 (process) or 1 (parent)", codes::whom_of)?;
    Ok(KillTarget { whom, step: r.u32("step")?, tree: r.bool("tree")? })
}

fn read_sequences(r: &mut Reader, sites: &mut Sites) -> Result<Vec<SequenceTable>, BundleError> {
    r.vec(min_size::SEQUENCE, "the sequence tables", |r, index| {
        sites.sequences.push(r.offset());
        read_sequence(r).map_err(|e| e.context(format_args!("sequence table {index}")))
    })
}

fn read_sequence(r: &mut Reader) -> Result<SequenceTable, BundleError> {
    let rule = r.u32("rule")?;
    let kind = match r.code("kind", "0 (sequence), 1 (join) or 2 (sample)", |code| (code <= codes::TABLE_SAMPLE).then_some(code))? {
        codes::TABLE_SEQUENCE => TableKind::Sequence,
        codes::TABLE_JOIN => TableKind::Join,
        _ => TableKind::Sample { max_samples_per_key: r.u32("max_samples_per_key")? },
    };
    let flavor = r.code("flavor", "0 (elasticsearch) or 1 (endgame)", codes::flavor_of)?;
    let fold_case = r.bool("fold_case")?;
    let maxspan_ns = r.option("maxspan_ns", |r| r.u64("maxspan_ns"))?;
    let steps = r.vec(min_size::SEQUENCE_STEP, "the steps", |r, index| read_step(r).map_err(|e| e.context(format_args!("step {index}"))))?;
    let until = r.option("until", |r| read_step(r).map_err(|e| e.context("the until step")))?;
    Ok(SequenceTable { rule, kind, flavor, fold_case, maxspan_ns, steps, until })
}

fn read_step(r: &mut Reader) -> Result<SequenceStep, BundleError> {
    let predicate = r.u32("predicate")?;
    let keys = r.vec(min_size::SEQUENCE_KEY, "the keys", |r, _| {
        Ok(SequenceKey { value: r.u32("key value function")?, optional: r.bool("optional")?, slot: r.option("key slot", |r| r.u32("key slot"))? })
    })?;
    let missing = r.bool("missing")?;
    let fork = r.bool("fork")?;
    let source_step = r.u32("source_step")?;
    let check = r.option("check", |r| r.u32("check predicate"))?;
    let captures = r.vec(8, "the captures", |r, _| Ok(Capture { value: r.u32("capture value function")?, slot: r.u32("capture slot")? }))?;
    Ok(SequenceStep { predicate, keys, missing, fork, source_step, check, captures })
}
