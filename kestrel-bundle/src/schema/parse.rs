//! Reading schema files: TOML to [`Schema`], with every error located in the text.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::{Culprit, FieldDef, FieldType, Schema, SchemaError, TimestampUnit, check_field_name};

type Key<'i> = Spanned<DeString<'i>>;
type Value<'i> = Spanned<DeValue<'i>>;

const TOP_LEVEL_KEYS: &str = "name, category_field, timestamp_field, timestamp_unit, dynamic, lineage, fields";
const LINEAGE_KEYS: &str = "pid_field, ppid_field, subtype_field, process_category, create_values, terminate_values";
const FIELD_KEYS: &str = "type, array, produced, values, doc";

/// Parses a whole schema file; `default_name` is used when the file has no `name`.
pub(super) fn parse_schema(default_name: &str, text: &str) -> Result<Schema, SchemaError> {
    let root = DeTable::parse(text).map_err(|error| toml_error(text, &error))?;
    let reader = Reader { text };

    let mut name = default_name.to_string();
    let mut category_field = ("event.category".to_string(), None);
    let mut timestamp_field = ("@timestamp".to_string(), None);
    let mut timestamp_unit = TimestampUnit::Rfc3339;
    let mut dynamic = false;
    let mut fields = Vec::new();
    let mut lineage = None;
    let mut field_spans: HashMap<String, Range<usize>> = HashMap::new();

    for (key, value) in in_source_order(root.get_ref()) {
        match key.get_ref().as_ref() {
            "name" => name = reader.string(key, value)?.to_string(),
            "category_field" => {
                category_field = (reader.string(key, value)?.to_string(), Some(value.span()));
            }
            "timestamp_field" => {
                timestamp_field = (reader.string(key, value)?.to_string(), Some(value.span()));
            }
            "timestamp_unit" => {
                let unit = reader.string(key, value)?;
                timestamp_unit = unit.parse().map_err(|error: super::UnknownNameError| reader.error(error.to_string(), value.span()))?;
            }
            "dynamic" => dynamic = reader.boolean(key, value)?,
            "lineage" => lineage = Some(reader.lineage(value)?),
            "fields" => {
                let DeValue::Table(table) = value.get_ref() else {
                    let msg = format!("`fields` must be a table, found {}", value.get_ref().type_str());
                    return Err(reader.error(msg, value.span()));
                };
                for (field_key, field_value) in in_source_order(table) {
                    let field = reader.field(field_key, field_value)?;
                    field_spans.insert(field.name.clone(), field_key.span());
                    fields.push(field);
                }
            }
            other => {
                let msg = format!("unknown key `{other}`; expected one of {TOP_LEVEL_KEYS}");
                return Err(reader.error(msg, key.span()));
            }
        }
    }

    let schema = Schema::build(name, category_field.0, timestamp_field.0, timestamp_unit, dynamic, fields).map_err(|(culprit, error)| {
        let span = match culprit {
            Culprit::Field(field) => field_spans.get(&field).cloned(),
            Culprit::CategoryField => category_field.1.clone(),
            Culprit::TimestampField => timestamp_field.1.clone(),
        };
        match span {
            Some(span) => reader.error(error.message, span),
            None => error,
        }
    })?;
    Ok(Schema { lineage: lineage.unwrap_or_default(), ..schema })
}

/// A TOML syntax error, located.
fn toml_error(text: &str, error: &toml::de::Error) -> SchemaError {
    let message = format!("invalid TOML: {}", error.message().trim_end());
    match error.span() {
        Some(span) => SchemaError::at(message, text, span),
        None => SchemaError::new(message),
    }
}

/// The entries of a table in the order they appear in the text, so that the first
/// error reported is the first one in the file.
fn in_source_order<'a, 'i>(table: &'a DeTable<'i>) -> Vec<(&'a Key<'i>, &'a Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

struct Reader<'t> {
    text: &'t str,
}

impl Reader<'_> {
    fn error(&self, message: impl Into<String>, span: Range<usize>) -> SchemaError {
        SchemaError::at(message, self.text, span)
    }

    fn string<'v>(&self, key: &Key<'_>, value: &'v Value<'_>) -> Result<&'v str, SchemaError> {
        match value.get_ref() {
            DeValue::String(text) => Ok(text.as_ref()),
            other => {
                let msg = format!("`{}` must be a string, found {}", key.get_ref(), other.type_str());
                Err(self.error(msg, value.span()))
            }
        }
    }

    fn boolean(&self, key: &Key<'_>, value: &Value<'_>) -> Result<bool, SchemaError> {
        match value.get_ref() {
            DeValue::Boolean(flag) => Ok(*flag),
            other => {
                let msg = format!("`{}` must be true or false, found {}", key.get_ref(), other.type_str());
                Err(self.error(msg, value.span()))
            }
        }
    }

    /// The `[lineage]` table; keys left out keep their ECS defaults.
    fn lineage(&self, value: &Value<'_>) -> Result<super::Lineage, SchemaError> {
        let DeValue::Table(table) = value.get_ref() else {
            return Err(self.error(format!("`lineage` must be a table, found {}", value.get_ref().type_str()), value.span()));
        };
        let mut lineage = super::Lineage::default();
        for (key, value) in in_source_order(table) {
            match key.get_ref().as_ref() {
                "pid_field" => lineage.pid_field = self.field_name(key, value)?,
                "ppid_field" => lineage.ppid_field = self.field_name(key, value)?,
                "subtype_field" => lineage.subtype_field = self.field_name(key, value)?,
                "process_category" => lineage.process_category = self.string(key, value)?.to_string(),
                "create_values" => lineage.create_values = self.lineage_values(key, value)?,
                "terminate_values" => lineage.terminate_values = self.lineage_values(key, value)?,
                other => return Err(self.error(format!("unknown key `{other}` in [lineage]; expected one of {LINEAGE_KEYS}"), key.span())),
            }
        }
        Ok(lineage)
    }

    fn field_name(&self, key: &Key<'_>, value: &Value<'_>) -> Result<String, SchemaError> {
        let name = self.string(key, value)?;
        super::check_field_name(name).map_err(|message| self.error(format!("`{}`: {message}", key.get_ref()), value.span()))?;
        Ok(name.to_string())
    }

    fn lineage_values(&self, key: &Key<'_>, value: &Value<'_>) -> Result<Vec<super::LineageValue>, SchemaError> {
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.error(format!("`{}` must be a list of strings or integers", key.get_ref()), value.span()));
        };
        items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(text) => Ok(super::LineageValue::Str(text.to_string())),
                DeValue::Integer(number) => number
                    .to_string()
                    .parse::<i64>()
                    .map(super::LineageValue::Long)
                    .map_err(|_| self.error(format!("`{}`: {number} is not a 64-bit integer", key.get_ref()), item.span())),
                other => Err(self.error(format!("`{}` must hold strings or integers, found {}", key.get_ref(), other.type_str()), item.span())),
            })
            .collect()
    }

    /// A type written as `"keyword"` or `"keyword[]"`.
    fn type_spec(&self, field: &str, value: &Value<'_>) -> Result<(FieldType, bool), SchemaError> {
        let DeValue::String(text) = value.get_ref() else {
            let msg = format!("the type of field `{field}` must be a string, found {}", value.get_ref().type_str());
            return Err(self.error(msg, value.span()));
        };
        let (name, array) = match text.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (text.as_ref(), false),
        };
        let ty = name.parse::<FieldType>().map_err(|error| self.error(format!("field `{field}`: {error}"), value.span()))?;
        Ok((ty, array))
    }

    /// One entry of `[fields]`, in the short or the long form.
    fn field(&self, key: &Key<'_>, value: &Value<'_>) -> Result<FieldDef, SchemaError> {
        let name: &str = key.get_ref();
        check_field_name(name).map_err(|msg| self.error(msg, key.span()))?;
        match value.get_ref() {
            DeValue::String(_) => {
                let (ty, array) = self.type_spec(name, value)?;
                Ok(FieldDef { array, ..FieldDef::new(name, ty) })
            }
            DeValue::Table(table) => self.long_field(name, value.span(), table),
            other => {
                let msg = format!(
                    "field `{name}` must be a type such as \"keyword\" or a table such as \
                     {{ type = \"keyword\" }}, found {}",
                    other.type_str()
                );
                Err(self.error(msg, value.span()))
            }
        }
    }

    fn long_field(&self, name: &str, span: Range<usize>, table: &DeTable<'_>) -> Result<FieldDef, SchemaError> {
        let mut ty = None;
        let mut array = None;
        let mut produced = true;
        let mut values = None;
        let mut doc = None;
        for (key, value) in in_source_order(table) {
            match key.get_ref().as_ref() {
                "type" => ty = Some(self.type_spec(name, value)?),
                "array" => array = Some((self.boolean(key, value)?, key.span())),
                "produced" => produced = self.boolean(key, value)?,
                "values" => values = Some((self.values(name, value)?, key.span())),
                "doc" => doc = Some(self.string(key, value)?.to_string()),
                other => {
                    let mut msg = format!("unknown key `{other}` in field `{name}`; expected one of {FIELD_KEYS}");
                    if !table.contains_key("type") {
                        msg.push_str(
                            " (field names containing dots must be quoted: \"process.name\" = ..., \
                             not process.name = ...)",
                        );
                    }
                    return Err(self.error(msg, key.span()));
                }
            }
        }
        let Some((ty, type_says_array)) = ty else {
            let msg = format!("field `{name}` has no `type`; expected one of {FIELD_KEYS}");
            return Err(self.error(msg, span));
        };
        let array = match array {
            Some((false, array_span)) if type_says_array => {
                let msg = format!("field `{name}` has type \"{ty}[]\" but array = false");
                return Err(self.error(msg, array_span));
            }
            Some((flag, _)) => flag || type_says_array,
            None => type_says_array,
        };
        if let Some((_, values_span)) = &values
            && ty != FieldType::Keyword
        {
            let msg = format!("field `{name}` has type {ty} but `values` is only allowed on keyword fields");
            return Err(self.error(msg, values_span.clone()));
        }
        let values = values.map(|(values, _)| values);
        Ok(FieldDef { name: name.to_string(), ty, array, produced, values, doc })
    }

    /// A `values` list: non-empty, strings only, no duplicates.
    fn values(&self, field: &str, value: &Value<'_>) -> Result<Vec<String>, SchemaError> {
        let DeValue::Array(items) = value.get_ref() else {
            let msg = format!("`values` of field `{field}` must be a list of strings, found {}", value.get_ref().type_str());
            return Err(self.error(msg, value.span()));
        };
        if items.is_empty() {
            let msg = format!("field `{field}` has an empty `values` list; omit the key instead");
            return Err(self.error(msg, value.span()));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        let mut seen: HashSet<&str> = HashSet::with_capacity(items.len());
        for item in items.iter() {
            let DeValue::String(text) = item.get_ref() else {
                let msg = format!("`values` of field `{field}` must be strings, found {}", item.get_ref().type_str());
                return Err(self.error(msg, item.span()));
            };
            if !seen.insert(text.as_ref()) {
                let msg = format!("field `{field}` lists the value \"{text}\" twice");
                return Err(self.error(msg, item.span()));
            }
            out.push(text.to_string());
        }
        Ok(out)
    }
}
