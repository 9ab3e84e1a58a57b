//! Field schemas: which fields an event may carry, their types, and what the target
//! sensor actually produces.
//!
//! A schema is written in TOML (see `docs/schema.md` for the full format):
//!
//! ```toml
//! name = "example"
//! category_field = "event.category"
//! timestamp_field = "@timestamp"
//! timestamp_unit = "rfc3339"
//!
//! [fields]
//! "@timestamp" = "date"
//! "event.category" = { type = "keyword", array = true, values = ["process", "file"] }
//! "process.name" = "keyword"
//! "process.args" = "keyword[]"
//! "dll.name" = { type = "keyword", produced = false }
//! ```
//!
//! Fields are kept sorted by name; a field's [`FieldId`] is its position in that order,
//! so two parties holding schemas with the same [`Schema::fingerprint`] agree on every id.
//!
//! Nothing in this module panics on bad input: every problem is a [`SchemaError`].

mod parse;

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// The embedded, generated `linux` schema (see `cargo xtask gen-schema`).
const LINUX_SCHEMA_TEXT: &str = include_str!("../schemas/linux.toml");

/// Names accepted by [`Schema::builtin`].
const BUILTIN_NAMES: &[&str] = &["dynamic", "linux"];

/// The value type of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldType {
    /// A string compared as a whole (ECS `keyword`, `wildcard`, `text`, ...).
    Keyword,
    /// A signed 64-bit integer (ECS `long`, `integer`, `short`, `byte`, `unsigned_long`).
    Long,
    /// A 64-bit float (ECS `double`, `float`, `half_float`, `scaled_float`).
    Double,
    /// An IPv4 or IPv6 address.
    Ip,
    /// `true` or `false`.
    Boolean,
    /// A point in time.
    Date,
    /// A version string compared by semantic-version order.
    Version,
}

impl FieldType {
    /// Every type, in declaration order.
    pub const ALL: [FieldType; 7] =
        [FieldType::Keyword, FieldType::Long, FieldType::Double, FieldType::Ip, FieldType::Boolean, FieldType::Date, FieldType::Version];

    /// The name used in schema files: `keyword`, `long`, `double`, `ip`, `boolean`,
    /// `date` or `version`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Keyword => "keyword",
            FieldType::Long => "long",
            FieldType::Double => "double",
            FieldType::Ip => "ip",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Version => "version",
        }
    }

    /// Maps an Elastic Common Schema (Elasticsearch mapping) type to a Kestrel type.
    ///
    /// Returns `None` for types that hold no single comparable value (`object`,
    /// `nested`, `flattened`, `geo_point`, ...); such fields are left out of schemas.
    /// Schema files themselves accept only the Kestrel names (see [`FromStr`]).
    pub fn from_ecs(ecs_type: &str) -> Option<FieldType> {
        match ecs_type {
            "keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text" => Some(FieldType::Keyword),
            "long" | "integer" | "short" | "byte" | "unsigned_long" => Some(FieldType::Long),
            "float" | "double" | "scaled_float" | "half_float" => Some(FieldType::Double),
            "ip" => Some(FieldType::Ip),
            "boolean" => Some(FieldType::Boolean),
            "date" => Some(FieldType::Date),
            "version" => Some(FieldType::Version),
            _ => None,
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FieldType {
    type Err = UnknownNameError;

    /// Parses one of the names returned by [`FieldType::as_str`]; nothing else.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        FieldType::ALL.into_iter().find(|ty| ty.as_str() == text).ok_or_else(|| UnknownNameError::new("field type", text, type_hint(text)))
    }
}

/// A hint for a type name that is an ECS type rather than a Kestrel one.
fn type_hint(text: &str) -> Option<String> {
    FieldType::from_ecs(text).map(|ty| format!("the ECS type `{text}` is written `{ty}` here"))
}

/// How the timestamp field's values are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimestampUnit {
    /// Integer nanoseconds since the Unix epoch.
    Ns,
    /// Integer microseconds since the Unix epoch.
    Us,
    /// Integer milliseconds since the Unix epoch.
    Ms,
    /// Seconds since the Unix epoch (integer or fractional).
    S,
    /// Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC.
    Filetime,
    /// An RFC 3339 date-time string, such as `2024-05-01T12:00:00.123Z`.
    Rfc3339,
}

impl TimestampUnit {
    /// Every unit, in declaration order.
    pub const ALL: [TimestampUnit; 6] =
        [TimestampUnit::Ns, TimestampUnit::Us, TimestampUnit::Ms, TimestampUnit::S, TimestampUnit::Filetime, TimestampUnit::Rfc3339];

    /// The name used in schema files: `ns`, `us`, `ms`, `s`, `filetime` or `rfc3339`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimestampUnit::Ns => "ns",
            TimestampUnit::Us => "us",
            TimestampUnit::Ms => "ms",
            TimestampUnit::S => "s",
            TimestampUnit::Filetime => "filetime",
            TimestampUnit::Rfc3339 => "rfc3339",
        }
    }
}

impl fmt::Display for TimestampUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimestampUnit {
    type Err = UnknownNameError;

    /// Parses one of the names returned by [`TimestampUnit::as_str`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TimestampUnit::ALL.into_iter().find(|unit| unit.as_str() == text).ok_or_else(|| UnknownNameError::new("timestamp unit", text, None))
    }
}

/// The error of [`FieldType::from_str`] and [`TimestampUnit::from_str`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownNameError {
    /// What was being parsed ("field type" or "timestamp unit").
    pub what: &'static str,
    /// The rejected text.
    pub found: String,
    /// The accepted names.
    pub expected: Vec<&'static str>,
    /// An extra hint, if one applies.
    pub hint: Option<String>,
}

impl UnknownNameError {
    fn new(what: &'static str, found: &str, hint: Option<String>) -> Self {
        let expected = if what == "field type" {
            FieldType::ALL.iter().map(|ty| ty.as_str()).collect()
        } else {
            TimestampUnit::ALL.iter().map(|unit| unit.as_str()).collect()
        };
        UnknownNameError { what, found: found.to_string(), expected, hint }
    }
}

impl fmt::Display for UnknownNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} `{}`; expected one of {}", self.what, self.found, self.expected.join(", "))?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownNameError {}

/// One field of a schema.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldDef {
    /// The dotted field name, such as `process.parent.name`.
    pub name: String,
    /// The type of each value.
    pub ty: FieldType,
    /// Whether the field may hold a list of values (ECS `normalize: array`).
    pub array: bool,
    /// Whether the target sensor ever fills this field. `false` means the type is known
    /// (so rules using the field compile) but no event will carry it (eqlc lint W0007).
    pub produced: bool,
    /// The closed set of values the sensor emits for this field (keyword fields only),
    /// sorted and without duplicates. `None` means any value may occur.
    pub values: Option<Vec<String>>,
    /// Free-form documentation. It is not part of the fingerprint.
    pub doc: Option<String>,
}

impl FieldDef {
    /// A produced, non-array field with no closed values and no doc.
    pub fn new(name: impl Into<String>, ty: FieldType) -> FieldDef {
        FieldDef { name: name.into(), ty, array: false, produced: true, values: None, doc: None }
    }

    /// Whether `value` may occur in this field according to its closed `values`
    /// (always `true` when the field has none).
    pub fn may_have_value(&self, value: &str) -> bool {
        match &self.values {
            Some(values) => values.binary_search_by(|probe| probe.as_str().cmp(value)).is_ok(),
            None => true,
        }
    }
}

/// The number of a field in a schema: its index in the schema's name-sorted field list.
///
/// Ids are only meaningful together with the schema (or its fingerprint) they came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(u32);

impl FieldId {
    /// The id with the given raw number (for example one read back from a bundle).
    /// Check it with [`Schema::field_by_id`] before use.
    pub const fn from_raw(raw: u32) -> FieldId {
        FieldId(raw)
    }

    /// The raw number, as stored in a bundle.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The index into the schema's sorted field list.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for FieldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A problem with a schema, with its location in the schema text when known.
///
/// `line` and `column` are 1-based; the column counts Unicode scalar values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    /// What is wrong.
    pub message: String,
    /// 1-based line of the offending text, if the error came from a file.
    pub line: Option<usize>,
    /// 1-based column of the offending text, if the error came from a file.
    pub column: Option<usize>,
    /// Byte range of the offending text, for diagnostics that underline it.
    pub span: Option<std::ops::Range<usize>>,
}

impl SchemaError {
    /// An error that has no location (for example from [`Schema::new`]).
    pub fn new(message: impl Into<String>) -> SchemaError {
        SchemaError { message: message.into(), line: None, column: None, span: None }
    }

    /// An error located at byte range `span` of `text`.
    pub fn at(message: impl Into<String>, text: &str, span: std::ops::Range<usize>) -> SchemaError {
        let (line, column) = line_column(text, span.start);
        SchemaError { message: message.into(), line: Some(line), column: Some(column), span: Some(span) }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: {}", self.message),
            (Some(line), None) => write!(f, "{line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SchemaError {}

/// 1-based line and column (in chars) of byte `offset` in `text`; an offset past the
/// end or inside a character is clamped to a character boundary before it.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |pos| pos + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

/// A field schema.
///
/// The settings are public; the field list is private so that it stays sorted and
/// valid. Build one with [`Schema::from_toml`], [`Schema::builtin`] or [`Schema::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// The schema's name (`linux`, `dynamic`, or a file's stem).
    pub name: String,
    /// The field an event's category is read from; `process where ...` tests it.
    pub category_field: String,
    /// The field holding the event time.
    pub timestamp_field: String,
    /// How the timestamp field is encoded.
    pub timestamp_unit: TimestampUnit,
    /// When `true`, fields that are not listed are allowed and typed at run time.
    pub dynamic: bool,
    /// How process lineage (`descendant of`, `child of`, `event of`) is tracked.
    pub lineage: Lineage,
    fields: Vec<FieldDef>,
}

/// The fields and values the runtime's process tracker reads for lineage
/// (docs/semantics.md, "Lineage"): a process event whose `subtype_field` is one of
/// `create_values` creates `pid_field` as a child of `ppid_field`; one of
/// `terminate_values` ends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// The process id of the event's process.
    pub pid_field: String,
    /// The process id of its parent.
    pub ppid_field: String,
    /// What happened to the process (created, terminated, ...).
    pub subtype_field: String,
    /// The category of process events.
    pub process_category: String,
    /// Subtypes that create a process.
    pub create_values: Vec<LineageValue>,
    /// Subtypes that end one.
    pub terminate_values: Vec<LineageValue>,
}

/// A value of a lineage subtype field: a string or an integer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LineageValue {
    /// An integer (endgame opcodes).
    Long(i64),
    /// A string (ECS `event.type`).
    Str(String),
}

impl std::fmt::Display for LineageValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineageValue::Long(value) => write!(f, "{value}"),
            LineageValue::Str(text) => write!(f, "{}", quote(text)),
        }
    }
}

impl Default for Lineage {
    /// ECS: `process.pid`, `process.parent.pid`, and `event.type` `start` / `end`.
    fn default() -> Lineage {
        Lineage {
            pid_field: "process.pid".to_string(),
            ppid_field: "process.parent.pid".to_string(),
            subtype_field: "event.type".to_string(),
            process_category: "process".to_string(),
            create_values: vec![LineageValue::Str("start".to_string())],
            terminate_values: vec![LineageValue::Str("end".to_string())],
        }
    }
}

/// Which part of a schema a validation problem is about (used to locate it in a file).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Culprit {
    Field(String),
    CategoryField,
    TimestampField,
}

impl Schema {
    /// Builds and validates a schema from its parts. Fields may come in any order; each
    /// field's `values` are sorted. Errors carry no location.
    pub fn new(
        name: impl Into<String>,
        category_field: impl Into<String>,
        timestamp_field: impl Into<String>,
        timestamp_unit: TimestampUnit,
        dynamic: bool,
        fields: Vec<FieldDef>,
    ) -> Result<Schema, SchemaError> {
        Schema::build(name.into(), category_field.into(), timestamp_field.into(), timestamp_unit, dynamic, fields).map_err(|(_, error)| error)
    }

    fn build(
        name: String,
        category_field: String,
        timestamp_field: String,
        timestamp_unit: TimestampUnit,
        dynamic: bool,
        mut fields: Vec<FieldDef>,
    ) -> Result<Schema, (Culprit, SchemaError)> {
        for field in &mut fields {
            let culprit = || Culprit::Field(field.name.clone());
            check_field_name(&field.name).map_err(|msg| (culprit(), SchemaError::new(msg)))?;
            if let Some(values) = &mut field.values {
                if field.ty != FieldType::Keyword {
                    let msg = format!("field `{}` has type {} but `values` is only allowed on keyword fields", field.name, field.ty);
                    return Err((culprit(), SchemaError::new(msg)));
                }
                if values.is_empty() {
                    let msg = format!("field `{}` has an empty `values` list; omit the key instead", field.name);
                    return Err((culprit(), SchemaError::new(msg)));
                }
                values.sort();
                if let Some(pair) = values.windows(2).find(|pair| pair[0] == pair[1]) {
                    let msg = format!("field `{}` lists the value \"{}\" twice", field.name, pair[0]);
                    return Err((culprit(), SchemaError::new(msg)));
                }
            }
        }
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in fields.windows(2) {
            let (first, second) = (&pair[0], &pair[1]);
            if first.name == second.name {
                let msg = format!("field `{}` is defined twice", first.name);
                return Err((Culprit::Field(second.name.clone()), SchemaError::new(msg)));
            }
        }
        // A name that is also the prefix of another (`a.b` and `a.b.c`) cannot exist in a
        // nested event document. Sorted order puts `a.b` right before its first child
        // only if no sibling like `a.b-x` sorts between them, so look ahead.
        for (index, field) in fields.iter().enumerate() {
            let prefix = format!("{}.", field.name);
            let child = fields
                .get(index + 1..)
                .unwrap_or(&[])
                .iter()
                .take_while(|other| other.name.starts_with(field.name.as_str()))
                .find(|other| other.name.starts_with(&prefix));
            if let Some(child) = child {
                let msg = format!("field `{}` cannot be both a value and the parent of field `{}`", field.name, child.name);
                return Err((Culprit::Field(child.name.clone()), SchemaError::new(msg)));
            }
        }
        let schema = Schema { name, category_field, timestamp_field, timestamp_unit, dynamic, lineage: Lineage::default(), fields };
        schema.check_special_fields()?;
        Ok(schema)
    }

    /// The category and timestamp fields must be usable as such.
    fn check_special_fields(&self) -> Result<(), (Culprit, SchemaError)> {
        let category = self.field(&self.category_field).map(|(_, def)| def);
        match category {
            None if !self.dynamic => {
                let msg = format!("category_field `{}` is not a listed field (list it, or set dynamic = true)", self.category_field);
                return Err((Culprit::CategoryField, SchemaError::new(msg)));
            }
            Some(def) if def.ty != FieldType::Keyword => {
                let msg = format!("category_field `{}` must have type keyword, not {}", def.name, def.ty);
                return Err((Culprit::CategoryField, SchemaError::new(msg)));
            }
            _ => {}
        }
        if check_field_name(&self.category_field).is_err() {
            let msg = format!("category_field `{}` is not a valid field name", self.category_field);
            return Err((Culprit::CategoryField, SchemaError::new(msg)));
        }
        let timestamp = self.field(&self.timestamp_field).map(|(_, def)| def);
        match timestamp {
            None if !self.dynamic => {
                let msg = format!("timestamp_field `{}` is not a listed field (list it, or set dynamic = true)", self.timestamp_field);
                return Err((Culprit::TimestampField, SchemaError::new(msg)));
            }
            Some(def) if !matches!(def.ty, FieldType::Date | FieldType::Long | FieldType::Double) => {
                let msg = format!("timestamp_field `{}` must have type date, long or double, not {}", def.name, def.ty);
                return Err((Culprit::TimestampField, SchemaError::new(msg)));
            }
            Some(def) if def.array => {
                let msg = format!("timestamp_field `{}` must not be an array", def.name);
                return Err((Culprit::TimestampField, SchemaError::new(msg)));
            }
            _ => {}
        }
        if check_field_name(&self.timestamp_field).is_err() {
            let msg = format!("timestamp_field `{}` is not a valid field name", self.timestamp_field);
            return Err((Culprit::TimestampField, SchemaError::new(msg)));
        }
        Ok(())
    }

    /// Parses a schema file. `name` is used when the file has no `name` key (pass the
    /// file stem). Errors point at the offending text (line, column and byte span).
    pub fn from_toml(name: &str, text: &str) -> Result<Schema, SchemaError> {
        parse::parse_schema(name, text)
    }

    /// A built-in schema by name: `linux` (Kestrel's Linux eBPF sensor, generated from
    /// ECS by `cargo xtask gen-schema`) or `dynamic` (no fixed fields). `None` for any
    /// other name.
    pub fn builtin(name: &str) -> Option<Schema> {
        match name {
            "linux" => {
                static LINUX: OnceLock<Option<Schema>> = OnceLock::new();
                LINUX.get_or_init(|| Schema::from_toml("linux", LINUX_SCHEMA_TEXT).ok()).clone()
            }
            "dynamic" => Some(Schema {
                name: "dynamic".to_string(),
                category_field: "event.category".to_string(),
                timestamp_field: "@timestamp".to_string(),
                timestamp_unit: TimestampUnit::Rfc3339,
                dynamic: true,
                lineage: Lineage::default(),
                fields: Vec::new(),
            }),
            _ => None,
        }
    }

    /// The names accepted by [`Schema::builtin`].
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// Looks a field up by its exact name.
    pub fn field(&self, name: &str) -> Option<(FieldId, &FieldDef)> {
        let index = self.fields.binary_search_by(|def| def.name.as_str().cmp(name)).ok()?;
        let id = u32::try_from(index).ok()?;
        self.fields.get(index).map(|def| (FieldId(id), def))
    }

    /// The field with the given id, or `None` if the id is out of range.
    pub fn field_by_id(&self, id: FieldId) -> Option<&FieldDef> {
        self.fields.get(id.index())
    }

    /// All listed fields with their ids, sorted by name.
    pub fn fields(&self) -> impl Iterator<Item = (FieldId, &FieldDef)> {
        self.fields.iter().enumerate().map(|(index, def)| (FieldId(index as u32), def))
    }

    /// All listed field names, sorted.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|def| def.name.as_str())
    }

    /// The number of listed fields.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The event categories the sensor produces: the `values` of the category field, if
    /// the schema closes them. `None` means any category may occur.
    pub fn categories(&self) -> Option<&[String]> {
        self.field(&self.category_field).and_then(|(_, def)| def.values.as_deref())
    }

    /// A 64-bit fingerprint of everything that affects compiled rules: FNV-1a 64 over
    /// the canonical byte serialisation described in `docs/schema.md` (name, settings,
    /// and each field's name, type, array, produced and values, in name order; docs are
    /// left out). It is the same on every platform and run.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = Fnv1a64::new();
        hasher.write_str("kestrel-schema/1");
        hasher.write_str(&self.name);
        hasher.write_str(&self.category_field);
        hasher.write_str(&self.timestamp_field);
        hasher.write_str(self.timestamp_unit.as_str());
        hasher.write_bool(self.dynamic);
        hasher.write_u64(self.fields.len() as u64);
        for field in &self.fields {
            hasher.write_str(&field.name);
            hasher.write_str(field.ty.as_str());
            hasher.write_bool(field.array);
            hasher.write_bool(field.produced);
            match &field.values {
                None => hasher.write_bool(false),
                Some(values) => {
                    hasher.write_bool(true);
                    hasher.write_u64(values.len() as u64);
                    for value in values {
                        hasher.write_str(value);
                    }
                }
            }
        }
        hasher.finish()
    }

    /// The schema as a canonical TOML file: fixed key order, fields sorted by name, the
    /// short form (`"keyword"`, `"keyword[]"`) whenever only type and array are set.
    /// The output parses back with [`Schema::from_toml`] to an equal schema.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("name = {}\n", quote(&self.name)));
        out.push_str(&format!("category_field = {}\n", quote(&self.category_field)));
        out.push_str(&format!("timestamp_field = {}\n", quote(&self.timestamp_field)));
        out.push_str(&format!("timestamp_unit = {}\n", quote(self.timestamp_unit.as_str())));
        out.push_str(&format!("dynamic = {}\n", self.dynamic));
        if self.lineage != Lineage::default() {
            let lineage = &self.lineage;
            let list = |values: &[LineageValue]| values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            out.push_str("\n[lineage]\n");
            out.push_str(&format!("pid_field = {}\n", quote(&lineage.pid_field)));
            out.push_str(&format!("ppid_field = {}\n", quote(&lineage.ppid_field)));
            out.push_str(&format!("subtype_field = {}\n", quote(&lineage.subtype_field)));
            out.push_str(&format!("process_category = {}\n", quote(&lineage.process_category)));
            out.push_str(&format!("create_values = [{}]\n", list(&lineage.create_values)));
            out.push_str(&format!("terminate_values = [{}]\n", list(&lineage.terminate_values)));
        }
        out.push_str("\n[fields]\n");
        for field in &self.fields {
            out.push_str(&quote(&field.name));
            out.push_str(" = ");
            if field.produced && field.values.is_none() && field.doc.is_none() {
                let suffix = if field.array { "[]" } else { "" };
                out.push_str(&quote(&format!("{}{suffix}", field.ty)));
            } else {
                out.push_str("{ type = ");
                out.push_str(&quote(field.ty.as_str()));
                if field.array {
                    out.push_str(", array = true");
                }
                if !field.produced {
                    out.push_str(", produced = false");
                }
                if let Some(values) = &field.values {
                    let quoted: Vec<String> = values.iter().map(|value| quote(value)).collect();
                    out.push_str(&format!(", values = [{}]", quoted.join(", ")));
                }
                if let Some(doc) = &field.doc {
                    out.push_str(&format!(", doc = {}", quote(doc)));
                }
                out.push_str(" }");
            }
            out.push('\n');
        }
        out
    }
}

/// Checks a field name: non-empty, no whitespace or control characters, and no empty
/// dot-separated segment (so no leading, trailing or doubled `.`).
pub fn check_field_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("field names must not be empty".to_string());
    }
    if let Some(bad) = name.chars().find(|ch| ch.is_whitespace() || ch.is_control()) {
        return Err(format!("field name {} contains the character {:?}", quote(name), bad));
    }
    if name.starts_with('.') || name.ends_with('.') {
        return Err(format!("field name {} must not start or end with `.`", quote(name)));
    }
    if name.contains("..") {
        return Err(format!("field name {} has an empty segment (`..`)", quote(name)));
    }
    Ok(())
}

/// `text` as a TOML basic string, escaping `"`, `\` and control characters.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ch if ch.is_control() => out.push_str(&format!("\\u{:04X}", ch as u32)),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub(crate) struct Fnv1a64(u64);

impl Fnv1a64 {
    pub(crate) fn new() -> Fnv1a64 {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    fn write_bool(&mut self, value: bool) {
        self.write(&[u8::from(value)]);
    }

    /// Length (u64, little-endian) then the UTF-8 bytes, so concatenations are unambiguous.
    fn write_str(&mut self, text: &str) {
        self.write_u64(text.len() as u64);
        self.write(text.as_bytes());
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        let mut empty = Fnv1a64::new();
        empty.write(b"");
        assert_eq!(empty.finish(), 0xcbf2_9ce4_8422_2325);
        let mut a = Fnv1a64::new();
        a.write(b"a");
        assert_eq!(a.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut foobar = Fnv1a64::new();
        foobar.write(b"foobar");
        assert_eq!(foobar.finish(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn line_column_counts_chars_and_clamps() {
        let text = "ab\ncdé\nx";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4)); // after the two-byte é
        assert_eq!(line_column(text, 6), (2, 3)); // inside é: clamped to its start
        assert_eq!(line_column(text, 100), (3, 2));
    }

    #[test]
    fn quote_escapes() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn field_names() {
        assert!(check_field_name("process.parent.name").is_ok());
        assert!(check_field_name("@timestamp").is_ok());
        assert!(check_field_name("kubernetes.audit.user.extra.authentication.kubernetes.io/pod-name").is_ok());
        for bad in ["", ".a", "a.", "a..b", "a b", "a\tb"] {
            assert!(check_field_name(bad).is_err(), "{bad:?}");
        }
    }
}
