//! The in-guest library (`library.wat`, assembled by the build script), taken apart so
//! `emit::wasm` can place it at the front of every generated module.

use std::collections::HashMap;
use wasm_encoder::ValType;

const LIBRARY_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/library.wasm"));

/// A function signature of the library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub params: Vec<ValType>,
    pub results: Vec<ValType>,
}

/// The library's pieces, in the order the generated module must repeat them.
pub struct Library {
    /// The type section, in order.
    pub types: Vec<Signature>,
    /// Imports: (module, name, type index).
    pub imports: Vec<(String, String, u32)>,
    /// For each defined function: its type index and its body bytes.
    pub functions: Vec<(u32, Vec<u8>)>,
    /// Function name → function index (imports count first).
    names: HashMap<String, u32>,
}

impl Library {
    /// The library built into this eqlc.
    pub fn builtin() -> Library {
        Library::parse(LIBRARY_WASM).expect("the library assembled by build.rs parses")
    }

    fn parse(bytes: &[u8]) -> Result<Library, String> {
        use wasmparser::{KnownCustom, Name, Parser, Payload, TypeRef};
        let mut library = Library { types: Vec::new(), imports: Vec::new(), functions: Vec::new(), names: HashMap::new() };
        let mut function_types = Vec::new();
        let mut bodies = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.map_err(|error| error.to_string())? {
                Payload::TypeSection(reader) => {
                    for ty in reader.into_iter_err_on_gc_types() {
                        let ty = ty.map_err(|error| error.to_string())?;
                        let convert = |types: &[wasmparser::ValType]| types.iter().map(|ty| val_type(*ty)).collect::<Result<Vec<_>, _>>();
                        library.types.push(Signature { params: convert(ty.params())?, results: convert(ty.results())? });
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(|error| error.to_string())?;
                        let TypeRef::Func(index) = import.ty else {
                            return Err(format!("the library imports a non-function `{}`", import.name));
                        };
                        library.imports.push((import.module.to_string(), import.name.to_string(), index));
                    }
                }
                Payload::FunctionSection(reader) => {
                    for index in reader {
                        function_types.push(index.map_err(|error| error.to_string())?);
                    }
                }
                Payload::CodeSectionEntry(body) => bodies.push(bytes[body.range()].to_vec()),
                Payload::CustomSection(section) => {
                    if let KnownCustom::Name(reader) = section.as_known() {
                        for name in reader {
                            if let Name::Function(map) = name.map_err(|error| error.to_string())? {
                                for naming in map {
                                    let naming = naming.map_err(|error| error.to_string())?;
                                    library.names.insert(naming.name.to_string(), naming.index);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if function_types.len() != bodies.len() {
            return Err("function and code sections disagree".to_string());
        }
        library.functions = function_types.into_iter().zip(bodies).collect();
        Ok(library)
    }

    /// The function index of a library function, by its `$name` in library.wat.
    pub fn func(&self, name: &str) -> u32 {
        *self.names.get(name).unwrap_or_else(|| panic!("library.wat has no function `${name}`"))
    }

    /// Functions (imports and library) that precede generated functions.
    pub fn function_count(&self) -> u32 {
        (self.imports.len() + self.functions.len()) as u32
    }
}

fn val_type(ty: wasmparser::ValType) -> Result<ValType, String> {
    Ok(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        other => return Err(format!("the library uses an unsupported type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_parses_with_its_names() {
        let library = Library::builtin();
        assert_eq!(library.imports.len(), 4);
        assert_eq!(library.imports[0].1, "regex");
        assert!(library.func("cmp") >= 3);
        assert!(library.func("wild") < library.function_count());
    }
}
