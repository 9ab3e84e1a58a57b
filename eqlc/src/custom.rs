//! Hand-written predicates: the `[[predicate]]` tables of TOML rule files
//! (docs/custom-predicates.md). A rule calls one by name like a function; eqlc checks
//! the call against the declared signature, compiles a WAT source to Wasm, checks the
//! module against the predicate ABI (docs/abi.md, "Hand-written predicates") and
//! records the predicate in the bundle's `CUSTOM` section.
//!
//! [`parse`] is pure: the caller passes a function that reads a source file by path.
//! [`check`] checks the declarations against the schema.

use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::functions::{Declaration, parse_scalar};
use crate::source::{FileId, Span};
use crate::tir::Scalar;
use kestrel_bundle::bundle::{CaptureDecl, CustomLimits, CustomRuntime, FieldKind};
use kestrel_bundle::schema::{FieldType, Schema};
use serde::Deserialize;
use toml::Spanned;

/// A hand-written predicate, declared in a rule file.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomDef {
    pub name: String,
    pub runtime: CustomRuntime,
    /// Lua source text, or the Wasm binary assembled from the WAT source.
    pub code: Vec<u8>,
    /// The types of the call's arguments.
    pub params: Vec<Scalar>,
    /// The event view: the fields the predicate reads by id (id *i* is `fields[i]`).
    pub fields: Vec<String>,
    pub captures: Vec<CaptureDecl>,
    pub limits: CustomLimits,
    /// The declaring file, and where the declaration's name and fields are in it.
    pub file: FileId,
    pub span: Span,
    pub field_spans: Vec<Span>,
}

impl CustomDef {
    /// The signature rules are checked against: `name(params...) -> boolean`, with the
    /// predicate's view.
    pub fn declaration(&self) -> Declaration {
        Declaration { name: self.name.clone(), params: self.params.clone(), returns: Scalar::Bool, view: self.fields.clone() }
    }

    /// The parameter types as the bundle records them.
    pub fn param_kinds(&self) -> Vec<FieldKind> {
        self.params.iter().map(|scalar| scalar_kind(*scalar)).collect()
    }
}

fn scalar_kind(scalar: Scalar) -> FieldKind {
    match scalar {
        Scalar::Str => FieldKind::Typed(FieldType::Keyword),
        Scalar::Long => FieldKind::Typed(FieldType::Long),
        Scalar::Double => FieldKind::Typed(FieldType::Double),
        Scalar::Bool => FieldKind::Typed(FieldType::Boolean),
        Scalar::Ip => FieldKind::Typed(FieldType::Ip),
        _ => FieldKind::Dynamic,
    }
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    predicate: Vec<PredicateToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredicateToml {
    name: Spanned<String>,
    runtime: Spanned<String>,
    source: Spanned<String>,
    #[serde(default)]
    params: Vec<Spanned<String>>,
    #[serde(default)]
    fields: Vec<Spanned<String>>,
    #[serde(default)]
    captures: Vec<CaptureToml>,
    instructions: Option<Spanned<u64>>,
    memory_kib: Option<Spanned<u64>>,
    time_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureToml {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
}

/// The most fields one predicate's event view may hold.
pub const MAX_VIEW_FIELDS: usize = 64;

fn span<T>(spanned: &Spanned<T>) -> Span {
    Span::new(spanned.span().start, spanned.span().end)
}

/// Reads the `[[predicate]]` tables of a TOML rule file (already known to be valid
/// TOML). `read` loads a source path as written in the file (relative to it).
pub fn parse(text: &str, file: FileId, read: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>) -> (Vec<CustomDef>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let parsed: File = match toml::from_str(text) {
        Ok(parsed) => parsed,
        Err(error) => {
            let at = error.span().map(|range| Span::new(range.start, range.end)).unwrap_or_default();
            diags.push(
                Diagnostic::new(Code::E0504, "a `[[predicate]]` table is malformed")
                    .primary(at, error.message().to_string())
                    .help("a predicate needs `name`, `runtime` (\"lua\" or \"wasm\") and `source`; see docs/custom-predicates.md")
                    .in_file(file),
            );
            return (Vec::new(), diags);
        }
    };
    let mut defs = Vec::new();
    for table in parsed.predicate {
        let name_span = span(&table.name);
        let error = |at: Span, message: String, label: &str| Diagnostic::new(Code::E0504, message).primary(at, label.to_string()).in_file(file);
        let name = table.name.get_ref().clone();
        if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') || name.starts_with(|ch: char| ch.is_ascii_digit()) {
            diags.push(error(name_span, format!("`{name}` is not a function name"), "letters, digits and `_`, not starting with a digit"));
        }
        let runtime = match table.runtime.get_ref().as_str() {
            "lua" => Some(CustomRuntime::Lua),
            "wasm" => Some(CustomRuntime::Wasm),
            other => {
                diags.push(error(span(&table.runtime), format!("unknown runtime `{other}`"), "expected \"lua\" or \"wasm\""));
                None
            }
        };
        let mut params = Vec::new();
        for param in &table.params {
            match parse_scalar(param.get_ref()) {
                Ok(scalar) => params.push(scalar),
                Err(message) => {
                    diags.push(error(span(param), message, "not a parameter type"));
                    params.push(Scalar::Any);
                }
            }
        }
        if params.len() > kestrel_bundle::abi::MAX_CALL_ARGS as usize {
            diags.push(error(name_span, format!("{} parameters; a call takes at most {}", params.len(), kestrel_bundle::abi::MAX_CALL_ARGS), "too many"));
        }
        if table.fields.len() > MAX_VIEW_FIELDS {
            diags.push(error(name_span, format!("{} fields; a predicate's view holds at most {MAX_VIEW_FIELDS}", table.fields.len()), "too many"));
        }
        let mut captures = Vec::new();
        for capture in &table.captures {
            let kind = match parse_scalar(capture.kind.get_ref()) {
                Ok(scalar) => scalar_kind(scalar),
                Err(message) => {
                    diags.push(error(span(&capture.kind), message, "not a capture type"));
                    continue;
                }
            };
            if capture.name.get_ref().is_empty() || captures.iter().any(|seen: &CaptureDecl| seen.name == *capture.name.get_ref()) {
                diags.push(error(span(&capture.name), format!("capture name {:?} is empty or used twice", capture.name.get_ref()), "here"));
                continue;
            }
            captures.push(CaptureDecl { name: capture.name.get_ref().clone(), kind });
        }
        if captures.len() > kestrel_bundle::bundle::MAX_CAPTURES {
            diags.push(error(name_span, format!("{} captures; at most {}", captures.len(), kestrel_bundle::bundle::MAX_CAPTURES), "too many"));
        }
        let defaults = CustomLimits::default();
        let limit = |value: &Option<Spanned<u64>>, scale: u64, max: u64, default: u64, what: &str, diags: &mut Vec<Diagnostic>| match value {
            None => default,
            Some(value) if *value.get_ref() == 0 || *value.get_ref() > max => {
                diags.push(error(span(value), format!("`{what}` must be between 1 and {max}"), "out of range"));
                default
            }
            Some(value) => value.get_ref() * scale,
        };
        let limits = CustomLimits {
            instructions: limit(&table.instructions, 1, 1 << 40, defaults.instructions, "instructions", &mut diags),
            memory_bytes: limit(&table.memory_kib, 1024, 4 << 20, defaults.memory_bytes, "memory_kib", &mut diags),
            time_ms: limit(&table.time_ms, 1, 60_000, defaults.time_ms, "time_ms", &mut diags),
        };
        let source_span = span(&table.source);
        let code = match read(table.source.get_ref()) {
            Ok(bytes) => bytes,
            Err(message) => {
                diags.push(
                    Diagnostic::new(Code::E0501, format!("cannot read the source of predicate `{name}`: {message}"))
                        .primary(source_span, "this file")
                        .help("`source` is a path relative to the rule file")
                        .in_file(file),
                );
                Vec::new()
            }
        };
        let code = match runtime {
            Some(CustomRuntime::Wasm) if !code.is_empty() => match assemble(&code) {
                Ok(wasm) => match check_module(&wasm, captures.len()) {
                    Ok(()) => wasm,
                    Err(message) => {
                        diags.push(code_error(&name, source_span, file, message));
                        Vec::new()
                    }
                },
                Err(message) => {
                    diags.push(code_error(&name, source_span, file, message));
                    Vec::new()
                }
            },
            Some(CustomRuntime::Lua) if !code.is_empty() => match check_lua(&name, &code) {
                Ok(()) => code,
                Err(message) => {
                    diags.push(code_error(&name, source_span, file, message));
                    Vec::new()
                }
            },
            _ => code,
        };
        // A declaration with errors is kept, so that calls are still checked against it;
        // the errors stop the build.
        let runtime = runtime.unwrap_or(CustomRuntime::Lua);
        defs.push(CustomDef {
            name,
            runtime,
            code,
            params,
            fields: table.fields.iter().map(|field| field.get_ref().clone()).collect(),
            captures,
            limits,
            file,
            span: name_span,
            field_spans: table.fields.iter().map(span).collect(),
        });
    }
    (defs, diags)
}

fn code_error(name: &str, at: Span, file: FileId, message: String) -> Diagnostic {
    let help = if message.contains("Lua") {
        "fix the source; docs/abi.md, \"In Lua\", lists the functions a predicate defines and what the sandbox offers"
    } else {
        "docs/abi.md, \"In Wasm\", lists what a module must export and may import"
    };
    Diagnostic::new(Code::E0505, format!("the code of predicate `{name}` is not a valid predicate")).primary(at, message).help(help).in_file(file)
}

/// A Lua source must be UTF-8 text that LuaJIT compiles (it is compiled, not run).
fn check_lua(name: &str, code: &[u8]) -> Result<(), String> {
    let source = std::str::from_utf8(code).map_err(|_| "the Lua source is not UTF-8".to_string())?;
    let lua = mlua::Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::new()).map_err(|error| error.to_string())?;
    match lua.load(source).set_name(format!("={name}")).set_mode(mlua::chunk::ChunkMode::Text).into_function() {
        Ok(_) => Ok(()),
        Err(error) => Err(format!("the Lua source does not compile: {}", error.to_string().lines().next().unwrap_or_default())),
    }
}

/// A `.wat` text or a binary module, as Wasm bytes. An error says where in the source.
fn assemble(code: &[u8]) -> Result<Vec<u8>, String> {
    wat::parse_bytes(code).map(|wasm| wasm.into_owned()).map_err(|error| {
        let text = error.to_string();
        let mut lines = text.lines();
        let message = lines.next().unwrap_or_default().to_string();
        match lines.find_map(|line| line.trim().strip_prefix("--> <anon>:")) {
            Some(at) => format!("{message} (at line:column {at} of the WAT source)"),
            None => message,
        }
    })
}

/// What a hand-written module must look like (docs/abi.md): valid; imports nothing
/// (the `kestrel` functions for hand-written modules are reserved for later ABI
/// versions); exports `memory`, the globals `view` and `view_len`, `pred_eval`, and
/// `pred_init` and `pred_capture` with their ABI types (`pred_capture` exactly when it
/// declares captures).
pub fn check_module(wasm: &[u8], captures: usize) -> Result<(), String> {
    use wasmparser::{CompositeInnerType, ExternalKind, Parser, Payload, ValType};
    let mut validator = wasmparser::Validator::new();
    validator.validate_all(wasm).map_err(|error| format!("the module is not valid Wasm: {error}"))?;
    let mut types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut function_types: Vec<u32> = Vec::new();
    let mut globals: Vec<(ValType, bool)> = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|error| error.to_string())? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for ty in group.map_err(|error| error.to_string())?.into_types() {
                        match &ty.composite_type.inner {
                            CompositeInnerType::Func(func) => types.push((func.params().to_vec(), func.results().to_vec())),
                            _ => types.push((Vec::new(), Vec::new())),
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                if let Some(import) = reader.into_imports().next() {
                    let import = import.map_err(|error| error.to_string())?;
                    return Err(if import.module == "kestrel" {
                        format!("it imports `kestrel.{}`, which ABI v1 does not offer hand-written predicates", import.name)
                    } else {
                        format!("it imports `{}.{}`; a hand-written predicate may import only from the `kestrel` module", import.module, import.name)
                    });
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    function_types.push(ty.map_err(|error| error.to_string())?);
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let global = global.map_err(|error| error.to_string())?;
                    globals.push((global.ty.content_type, global.ty.mutable));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|error| error.to_string())?;
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            _ => {}
        }
    }
    let export = |name: &str| exports.iter().find(|(export, ..)| export == name).map(|(_, kind, index)| (*kind, *index));
    if !matches!(export("memory"), Some((ExternalKind::Memory, _))) {
        return Err("it does not export its memory as `memory`".into());
    }
    for name in ["view", "view_len"] {
        match export(name) {
            Some((ExternalKind::Global, index)) if globals.get(index as usize) == Some(&(ValType::I32, false)) => {}
            _ => return Err(format!("it does not export `{name}` as an immutable i32 global (the host's region of its memory)")),
        }
    }
    let signature = |name: &str| match export(name) {
        Some((ExternalKind::Func, index)) => function_types.get(index as usize).and_then(|ty| types.get(*ty as usize)).cloned(),
        _ => None,
    };
    let expect = |name: &str, params: &[ValType]| -> Result<bool, String> {
        match signature(name) {
            None => Ok(false),
            Some((found_params, results)) if found_params == params && results == [ValType::I32] => Ok(true),
            Some(_) => Err(format!("`{name}` must take {} i32 and return an i32", params.len())),
        }
    };
    if !expect("pred_eval", &[ValType::I32, ValType::I32])? {
        return Err("it does not export `pred_eval(event: i32, ctx: i32) -> i32`".into());
    }
    expect("pred_init", &[ValType::I32])?;
    let has_capture = expect("pred_capture", &[ValType::I32, ValType::I32])?;
    match (captures > 0, has_capture) {
        (true, false) => Err(format!("the predicate declares {captures} captures but the module does not export `pred_capture(event, ctx) -> i32`")),
        (false, true) => Err("the module exports `pred_capture` but the predicate declares no `captures`".into()),
        _ => Ok(()),
    }
}

/// The functions rules may call: the host's declarations, then the predicates'; with
/// the diagnostics of [`check`].
pub fn declare(defs: &[CustomDef], schema: &Schema, host: &[Declaration]) -> (Vec<Declaration>, Vec<Diagnostic>) {
    let declarations = host.iter().cloned().chain(defs.iter().map(CustomDef::declaration)).collect();
    (declarations, check(defs, schema, host))
}

/// Checks declarations against the schema and each other: every field of a view exists
/// (unless the schema is dynamic), and names are unique and not built-in functions.
pub fn check(defs: &[CustomDef], schema: &Schema, host_declared: &[Declaration]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (index, def) in defs.iter().enumerate() {
        let taken = crate::functions::builtin(&def.name).is_some()
            || host_declared.iter().any(|declaration| declaration.name.eq_ignore_ascii_case(&def.name))
            || defs[..index].iter().any(|other| other.name.eq_ignore_ascii_case(&def.name));
        if taken {
            diags.push(
                Diagnostic::new(Code::E0504, format!("the predicate name `{}` is already taken", def.name))
                    .primary(def.span, "a built-in function or another predicate has this name")
                    .help("rename the predicate")
                    .in_file(def.file),
            );
        }
        for (field, at) in def.fields.iter().zip(&def.field_spans) {
            if schema.field(field).is_none() && !schema.dynamic {
                let mut diag = Diagnostic::new(Code::E0101, format!("unknown field `{field}` in the view of predicate `{}`", def.name))
                    .primary(*at, format!("not a field of the `{}` schema", schema.name))
                    .in_file(def.file);
                if let Some(suggestion) = did_you_mean(field, schema.field_names()) {
                    diag = diag.help(format!("did you mean `{suggestion}`?"));
                }
                diags.push(diag);
            }
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"(module
        (memory (export "memory") 1)
        (global (export "view") i32 (i32.const 1024))
        (global (export "view_len") i32 (i32.const 4096))
        (func (export "pred_eval") (param i32 i32) (result i32) (i32.const 1)))"#;

    fn module(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    #[test]
    fn modules_are_checked_against_the_abi() {
        assert_eq!(check_module(&module(GOOD), 0), Ok(()));
        let cases = [
            (GOOD.replace(r#"(export "view") "#, ""), 0, "`view`"),
            (GOOD.replace("(global (export \"view_len\") i32", "(global (export \"view_len\") (mut i32)"), 0, "`view_len`"),
            (GOOD.replace("(param i32 i32)", "(param i32)"), 0, "`pred_eval` must take 2 i32"),
            (GOOD.replace(r#"(export "pred_eval")"#, ""), 0, "does not export `pred_eval"),
            (GOOD.replace("(module", r#"(module (import "env" "abort" (func))"#), 0, "only from the `kestrel` module"),
            (GOOD.replace("(module", r#"(module (import "kestrel" "regex" (func))"#), 0, "ABI v1 does not offer"),
            (GOOD.to_string(), 2, "does not export `pred_capture"),
            (
                GOOD.replace(
                    "(func (export \"pred_eval\")",
                    "(func (export \"pred_capture\") (param i32 i32) (result i32) (i32.const 0))\n(func (export \"pred_eval\")",
                ),
                0,
                "declares no `captures`",
            ),
        ];
        for (text, captures, expected) in cases {
            let error = check_module(&module(&text), captures).expect_err(&text);
            assert!(error.contains(expected), "{error:?} should say {expected:?}");
        }
    }

    #[test]
    fn declarations_keep_their_arity_when_a_type_is_wrong() {
        let text = "[[predicate]]\nname = \"p\"\nruntime = \"lua\"\nsource = \"p.lua\"\nparams = [\"long\", \"nope\"]\n";
        let mut sources = crate::source::SourceMap::new();
        let file = sources.add("p.toml", text);
        let (defs, diags) = parse(text, file, &mut |_| Ok(b"function pred_eval() return true end".to_vec()));
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code, Code::E0504);
        assert_eq!(defs[0].params, vec![Scalar::Long, Scalar::Any], "calls are still checked for their count");
    }
}
