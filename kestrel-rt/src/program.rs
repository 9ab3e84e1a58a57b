//! Loading a bundle: validate it, compile its Wasm module once, check the module's
//! imports and exports against the ABI, compile its regexes, and link the host
//! functions. The result, a [`Program`], makes instances cheaply.

use crate::functions::DeclaredFn;
use crate::host::{self, HostState};
use kestrel_bundle::bundle::{Bundle, RegexAnchor};
use std::sync::Arc;
use wasmtime::{Config, Engine, ExternType, InstancePre, Linker, Module, OptLevel};

/// Why a bundle cannot be run.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// A loaded bundle, ready to instantiate.
pub struct Program {
    pub bundle: Arc<Bundle>,
    pub engine: Engine,
    pub pre: InstancePre<HostState>,
    pub regexes: Arc<Vec<regex::Regex>>,
    /// The bundle's CIDR sets as (network, prefix) blocks.
    pub cidr_sets: Arc<Vec<Vec<(std::net::IpAddr, u8)>>>,
    /// Functions the embedder declares for rules that call them (eqlc `--declare`),
    /// in declaration order. Calls to one that is missing are null.
    pub declared: Arc<Vec<DeclaredFn>>,
    /// The bundle's hand-written predicates, prepared (docs/abi.md).
    pub custom: Arc<crate::custom::Compiled>,
}

/// The Wasm features a predicate module may use; everything else is off.
fn config() -> Config {
    let mut config = Config::new();
    config.cranelift_opt_level(OptLevel::Speed);
    config.epoch_interruption(true);
    config.wasm_simd(false);
    config.wasm_relaxed_simd(false);
    config.wasm_multi_memory(false);
    config.wasm_memory64(false);
    config.wasm_gc(false);
    config.wasm_tail_call(false);
    config.wasm_bulk_memory(true);
    config.wasm_multi_value(true);
    config.cranelift_nan_canonicalization(true);
    config
}

impl Program {
    /// Validates and compiles a bundle.
    pub fn load(bytes: &[u8]) -> Result<Program, LoadError> {
        let bundle = Bundle::from_bytes(bytes).map_err(|error| LoadError(format!("invalid bundle: {error}")))?;
        Program::from_bundle(bundle)
    }

    pub fn from_bundle(bundle: Bundle) -> Result<Program, LoadError> {
        let engine = Engine::new(&config()).map_err(|error| LoadError(format!("cannot start the Wasm engine: {error}")))?;
        let module = Module::new(&engine, &bundle.wasm).map_err(|error| LoadError(format!("the bundle's Wasm module does not compile: {error}")))?;
        check_interface(&module, &bundle)?;
        let regexes = bundle
            .patterns
            .regexes
            .iter()
            .enumerate()
            .map(|(idx, pattern)| {
                let anchored = match pattern.anchor {
                    RegexAnchor::Whole => format!("^(?:{})$", pattern.pattern),
                    RegexAnchor::Start => format!("^(?:{})", pattern.pattern),
                };
                regex::RegexBuilder::new(&anchored)
                    .case_insensitive(pattern.case_insensitive)
                    .dot_matches_new_line(true)
                    .build()
                    .map_err(|error| LoadError(format!("regex {idx} of the bundle does not compile: {error}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        host::link(&mut linker).map_err(|error| LoadError(format!("cannot link the host functions: {error}")))?;
        let pre = linker.instantiate_pre(&module).map_err(|error| LoadError(format!("the Wasm module does not link: {error}")))?;
        let cidr_sets = bundle.patterns.cidr_sets.iter().map(|set| set.iter().map(|block| (block.address, block.prefix)).collect()).collect();
        let custom = Arc::new(crate::custom::Compiled::new(&bundle, &engine));
        Ok(Program {
            bundle: Arc::new(bundle),
            engine,
            pre,
            regexes: Arc::new(regexes),
            cidr_sets: Arc::new(cidr_sets),
            declared: Arc::new(Vec::new()),
            custom,
        })
    }

    /// Supplies the functions the bundle's rules declare, in declaration order.
    pub fn with_declared(mut self, functions: Vec<DeclaredFn>) -> Program {
        self.declared = Arc::new(functions);
        self
    }
}

/// The module imports only `kestrel.regex`, `kestrel.cidr`, `kestrel.call` and
/// `kestrel.predicate`, and exports
/// exactly the memory, `heap_top`, `eval` and one `pred_<id>` / `value_<id>` per entry of
/// the bundle's FUNCTIONS section (docs/abi.md).
fn check_interface(module: &Module, bundle: &Bundle) -> Result<(), LoadError> {
    for import in module.imports() {
        if import.module() != "kestrel" || !matches!(import.name(), "regex" | "cidr" | "call" | "predicate") {
            return Err(LoadError(format!("the Wasm module imports `{}.{}`, which the ABI does not provide", import.module(), import.name())));
        }
    }
    let mut expected: Vec<String> = vec!["memory".into(), "heap_top".into(), "eval".into()];
    expected.extend((0..bundle.functions.predicates.len()).map(|id| format!("pred_{id}")));
    expected.extend((0..bundle.functions.values.len()).map(|id| format!("value_{id}")));
    let mut found: Vec<String> = module.exports().map(|export| export.name().to_string()).collect();
    expected.sort();
    found.sort();
    if expected != found {
        let missing: Vec<&String> = expected.iter().filter(|name| !found.contains(name)).collect();
        let extra: Vec<&String> = found.iter().filter(|name| !expected.contains(name)).collect();
        return Err(LoadError(format!("the Wasm module's exports do not match the bundle (missing {missing:?}, unexpected {extra:?})")));
    }
    for export in module.exports() {
        let ok = match (export.name(), export.ty()) {
            ("memory", ExternType::Memory(memory)) => {
                let pages = u64::from(bundle.manifest.layout.memory_pages);
                memory.minimum() == pages && memory.maximum() == Some(pages) && !memory.is_64() && !memory.is_shared()
            }
            ("heap_top", ExternType::Global(_)) => true,
            (_, ExternType::Func(_)) => true,
            _ => false,
        };
        if !ok {
            return Err(LoadError(format!("the Wasm export `{}` does not have the type the ABI gives it", export.name())));
        }
    }
    Ok(())
}
