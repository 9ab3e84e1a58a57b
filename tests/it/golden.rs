//! Golden bundles built by eqlc from real rules (tests/data/golden/README.md): the build
//! is deterministic (in-process twice, the `eqlc` binary twice, and the committed file),
//! every golden loads in the runtime, and mutated goldens (byte flips, truncations,
//! huge lengths) are rejected with an error or load, and never panic.
//!
//! `KESTREL_WRITE_GOLDEN=1 cargo test -p tests golden` rewrites the committed bundles.
//! Run with `--nocapture` to see the mutation counts.

use kestrel_bundle::Bundle;
use kestrel_bundle::bundle::fnv1a64;
use kestrel_rt::program::Program;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use tests::{FileOptions, build_bundle, repo_root, rule_files};

const REGENERATE: &str = "KESTREL_WRITE_GOLDEN=1 cargo test -p tests golden";

/// One committed bundle and what it is built from.
struct Golden {
    file: &'static str,
    schema: &'static str,
    dialect: &'static str,
    sources: Vec<PathBuf>,
}

impl Golden {
    fn options(&self) -> FileOptions {
        FileOptions::parse(&format!("// eqlc: schema={} dialect={}", self.schema, self.dialect))
    }

    fn path(&self) -> PathBuf {
        golden_dir().join(self.file)
    }

    fn build(&self) -> Vec<u8> {
        build_bundle(&self.sources, &self.options()).unwrap_or_else(|diags| panic!("{}: the rules do not build:\n{diags}", self.file))
    }

    fn committed(&self) -> Vec<u8> {
        std::fs::read(self.path()).unwrap_or_else(|error| panic!("cannot read {}: {error}; `{REGENERATE}` writes it", self.path().display()))
    }

    /// The `eqlc build` arguments that make this bundle.
    fn eqlc_args(&self, output: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec!["build".into(), "--schema".into(), self.schema.into(), "--dialect".into(), self.dialect.into(), "--quiet".into()];
        args.push("--output".into());
        args.push(output.display().to_string());
        args.extend(self.sources.iter().map(|path| path.display().to_string()));
        args
    }
}

fn golden_dir() -> PathBuf {
    repo_root().join("tests/data/golden")
}

/// The golden bundles: Kestrel's own rules (`rules/`) and the representative rules of
/// `tests/data/golden/`, against the `linux` and the `dynamic` schema, and the endgame
/// dialect.
fn goldens() -> Vec<Golden> {
    let builtin = rule_files(&repo_root().join("rules"));
    assert!(!builtin.is_empty(), "no rules in rules/");
    let events = vec![golden_dir().join("events")];
    let endgame = vec![golden_dir().join("endgame")];
    let sequences = vec![golden_dir().join("sequences")];
    vec![
        Golden { file: "kestrel-rules-linux.kbundle", schema: "linux", dialect: "elasticsearch", sources: builtin.clone() },
        Golden { file: "kestrel-rules-dynamic.kbundle", schema: "dynamic", dialect: "elasticsearch", sources: builtin },
        Golden { file: "events-linux.kbundle", schema: "linux", dialect: "elasticsearch", sources: events.clone() },
        Golden { file: "events-dynamic.kbundle", schema: "dynamic", dialect: "elasticsearch", sources: events },
        Golden { file: "endgame-linux.kbundle", schema: "linux", dialect: "endgame", sources: endgame },
        Golden { file: "sequences-linux.kbundle", schema: "linux", dialect: "elasticsearch", sources: sequences },
    ]
}

fn golden(file: &str) -> Golden {
    goldens().into_iter().find(|golden| golden.file == file).unwrap_or_else(|| panic!("no golden bundle {file}"))
}

/// Writes through a temporary file and a rename, so a concurrent reader never sees half
/// a bundle.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("kbundle.tmp");
    std::fs::write(&temporary, bytes).unwrap_or_else(|error| panic!("cannot write {}: {error}", temporary.display()));
    std::fs::rename(&temporary, path).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
}

/// The section (by the section table of `bytes`) that holds byte `at`, for messages.
fn section_at(bytes: &[u8], at: usize) -> String {
    const NAMES: [&str; 8] = ["?", "MANIFEST", "FIELDS", "RULES", "FUNCTIONS", "PATTERNS", "WASM", "SEQUENCES"];
    let u32_at = |at: usize| bytes.get(at..at + 4).map_or(0, |word| u32::from_le_bytes(word.try_into().unwrap_or_default()));
    let u64_at = |at: usize| bytes.get(at..at + 8).map_or(0, |word| u64::from_le_bytes(word.try_into().unwrap_or_default()));
    if at < 32 {
        return "the header".into();
    }
    if at + 8 >= bytes.len() {
        return "the checksum".into();
    }
    let count = u32_at(20).min(7) as usize;
    for entry in 0..count {
        let base = 32 + 24 * entry;
        let (kind, offset, length) = (u32_at(base) as usize, u64_at(base + 8), u64_at(base + 16));
        if (at as u64) < base as u64 + 24 {
            return format!("section table entry {entry}");
        }
        if (offset..offset.saturating_add(length)).contains(&(at as u64)) {
            return format!("section {}", NAMES.get(kind).unwrap_or(&"?"));
        }
    }
    "padding".into()
}

/// Each golden bundle is what eqlc builds from its rules now, byte for byte, and
/// building twice gives the same bytes.
#[test]
fn golden_bundles_are_reproducible() {
    let write = std::env::var_os("KESTREL_WRITE_GOLDEN").is_some();
    for golden in goldens() {
        let built = golden.build();
        assert!(golden.build() == built, "{}: two in-process builds of the same rules differ", golden.file);
        if write {
            write_atomically(&golden.path(), &built);
            eprintln!("wrote {} ({} bytes)", golden.path().display(), built.len());
            continue;
        }
        let committed = golden.committed();
        if committed != built {
            let at = committed.iter().zip(&built).position(|(old, new)| old != new).unwrap_or(committed.len().min(built.len()));
            panic!(
                "{file} is not what eqlc builds from its rules any more: {old} bytes committed, {new} built, first difference at byte {at} (in {section} of the built bundle).\n\
                 The bundle format or eqlc's code generation changed (or the golden rules did).\n\
                 If that is intended: regenerate with `{REGENERATE}`, review the change with `git diff --stat tests/data/golden`, \
                 and say in docs/bundle-format.md why the bytes changed (a change to the layout also bumps the format version).",
                file = golden.file,
                old = committed.len(),
                new = built.len(),
                section = section_at(&built, at),
            );
        }
    }
}

/// Every golden bundle reads back, is the canonical encoding of what it holds, and
/// loads in the runtime (validation, Wasm compilation and the interface check).
#[test]
fn golden_bundles_load_in_the_runtime() {
    for golden in goldens() {
        let bytes = golden.committed();
        let bundle = Bundle::from_bytes(&bytes).unwrap_or_else(|error| panic!("{}: {error}", golden.file));
        assert!(bundle.to_bytes().expect("writes") == bytes, "{}: not the canonical encoding", golden.file);
        assert!(bundle.manifest.compiler.starts_with("eqlc "), "{}: compiler `{}`", golden.file, bundle.manifest.compiler);
        assert_eq!(bundle.manifest.schema_name, golden.schema, "{}", golden.file);
        assert_eq!(bundle.manifest.schema_fingerprint, golden.options().schema().fingerprint(), "{}", golden.file);
        assert!(!bundle.rules.is_empty(), "{}: no rules", golden.file);
        let program = Program::load(&bytes).unwrap_or_else(|error| panic!("{}: the runtime refuses it: {error}", golden.file));
        assert_eq!(*program.bundle, bundle);
    }
}

/// The golden rules cover what the brief of the golden bundles asks for: every pipe,
/// regexes, CIDR sets, case-insensitive forms, both schemas and the endgame dialect.
#[test]
fn golden_bundles_cover_the_format() {
    use kestrel_bundle::Pipe;
    let mut pipes = [false; 7];
    let (mut regexes, mut cidr_sets, mut folded, mut folded_only, mut folded_and_plain) = (0, 0, 0, 0, 0);
    let (mut value_fns, mut filters, mut any_category) = (0, 0, 0);
    for golden in goldens() {
        let bundle = Bundle::from_bytes(&golden.committed()).unwrap_or_else(|error| panic!("{}: {error}", golden.file));
        for pipe in bundle.rules.iter().flat_map(|rule| &rule.pipes) {
            pipes[match pipe {
                Pipe::Head(_) => 0,
                Pipe::Tail(_) => 1,
                Pipe::Filter(_) => 2,
                Pipe::Unique(_) => 3,
                Pipe::UniqueCount(_) => 4,
                Pipe::Count(_) => 5,
                Pipe::Sort(_) => 6,
            }] = true;
        }
        regexes += bundle.patterns.regexes.len();
        cidr_sets += bundle.patterns.cidr_sets.len();
        folded += bundle.fields.iter().filter(|field| field.folded_slot.is_some()).count();
        folded_only += bundle.fields.iter().filter(|field| field.plain_unread).count();
        folded_and_plain += bundle.fields.iter().filter(|field| field.folded_slot.is_some() && !field.plain_unread).count();
        value_fns += bundle.functions.values.len();
        filters += bundle.functions.predicates.iter().filter(|predicate| predicate.role == kestrel_bundle::PredicateRole::PipeFilter).count();
        any_category += bundle.functions.predicates.iter().filter(|predicate| predicate.category.is_none()).count();
    }
    assert_eq!(pipes, [true; 7], "head, tail, filter, unique, unique_count, count, sort");
    let checks = [
        ("regexes", regexes),
        ("CIDR sets", cidr_sets),
        ("folded fields", folded),
        ("folded fields whose plain slot is not read", folded_only),
        ("folded fields whose plain slot is read too", folded_and_plain),
        ("value functions", value_fns),
        ("filters", filters),
    ];
    for (what, count) in checks {
        assert!(count > 0, "no {what} in the golden bundles");
    }
    assert!(any_category > 0, "no `any where` rule in the golden bundles");
    // The multi-event shapes: every table kind, missing steps, checks and captures,
    // a lineage test inside a step.
    let sequences = Bundle::from_bytes(&golden("sequences-linux.kbundle").committed()).expect("reads");
    let tables = sequences.sequences.as_deref().unwrap_or_default();
    let steps = || tables.iter().flat_map(|table| &table.steps);
    assert!(tables.iter().any(|table| table.kind == kestrel_bundle::TableKind::Sequence && table.until.is_some()), "a sequence with until");
    assert!(tables.iter().any(|table| matches!(table.kind, kestrel_bundle::TableKind::Sample { .. })), "a sample");
    assert!(steps().any(|step| step.missing) && steps().any(|step| step.check.is_some()) && steps().any(|step| !step.captures.is_empty()));
    assert!(sequences.lineage.is_some(), "a lineage test inside a sequence step");
}

/// The `eqlc` binary of this build, beside the test binary.
fn eqlc_binary() -> Option<PathBuf> {
    tests::workspace_binary("eqlc")
}

/// The newest modification time of the files the `eqlc` binary is built from.
fn newest_source(paths: &[PathBuf]) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut stack = paths.to_vec();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).into_iter().flatten().flatten().map(|entry| entry.path()));
        } else if let Ok(modified) = std::fs::metadata(&path).and_then(|meta| meta.modified()) {
            newest = newest.max(modified);
        }
    }
    newest
}

/// `eqlc build`, run as a process twice, writes the same bytes each time, and (when the
/// binary is not older than the compiler's sources) the committed golden bytes.
#[test]
fn eqlc_binary_builds_the_golden_bytes() {
    let Some(binary) = eqlc_binary() else {
        eprintln!("SKIPPED: eqlc_binary_builds_the_golden_bytes: no eqlc binary beside the test binary; `cargo test --workspace` builds it");
        return;
    };
    let root = repo_root();
    let inputs =
        ["eqlc/src", "eqlc/build.rs", "eqlc/Cargo.toml", "grammar", "kestrel-bundle/src", "kestrel-bundle/schemas", "Cargo.lock"].map(|path| root.join(path));
    let built_at = std::fs::metadata(&binary).and_then(|meta| meta.modified()).expect("binary has a modification time");
    let fresh = built_at >= newest_source(&inputs);
    if !fresh {
        eprintln!(
            "SKIPPED (in part): {} is older than eqlc's sources; comparing its runs with each other only. `cargo build -p eqlc` refreshes it",
            binary.display()
        );
    }
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden");
    std::fs::create_dir_all(&out_dir).expect("temporary directory");
    for golden in goldens() {
        let runs: Vec<Vec<u8>> = (0..2)
            .map(|run| {
                let output = out_dir.join(format!("{}.{run}", golden.file));
                let _ = std::fs::remove_file(&output);
                let result = std::process::Command::new(&binary).args(golden.eqlc_args(&output)).output().expect("eqlc runs");
                assert!(result.status.success(), "eqlc {:?} failed:\n{}", golden.eqlc_args(&output), String::from_utf8_lossy(&result.stderr));
                std::fs::read(&output).expect("eqlc wrote the bundle")
            })
            .collect();
        assert!(runs[0] == runs[1], "{}: two runs of `eqlc build` wrote different bytes", golden.file);
        if fresh {
            assert!(runs[0] == golden.committed(), "{}: `eqlc build` does not write the committed bytes; see golden_bundles_are_reproducible", golden.file);
        }
    }
}

/// SplitMix64: a fixed-seed generator, so every run tries the same mutants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// A non-zero byte to XOR with.
    fn flip(&mut self) -> u8 {
        (self.below(255) + 1) as u8
    }
}

/// The FNV-1a 64 state after each prefix of a golden bundle, so that a mutant's
/// checksum is recomputed from its first changed byte on (a debug build hashes slowly).
struct Checksums {
    golden: Vec<u8>,
    states: Vec<u64>,
}

impl Checksums {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new(golden: &[u8]) -> Checksums {
        let mut states = Vec::with_capacity(golden.len() + 1);
        let mut state = 0xcbf2_9ce4_8422_2325;
        states.push(state);
        for byte in golden {
            state = (state ^ u64::from(*byte)).wrapping_mul(Self::PRIME);
            states.push(state);
        }
        let end = golden.len() - 8;
        assert_eq!(states[end], fnv1a64(&golden[..end]), "the checksum is FNV-1a 64 of the bytes before it");
        Checksums { golden: golden.to_vec(), states }
    }

    /// Recomputes the checksum of `bytes`, which equal the golden bundle before `from`.
    fn fix(&self, bytes: &mut [u8], from: usize) {
        let Some(end) = bytes.len().checked_sub(8) else { return };
        let from = from.min(end);
        assert!(bytes[..from] == self.golden[..from], "the mutant differs from the golden bundle before byte {from}");
        let mut state = self.states[from];
        for byte in &bytes[from..end] {
            state = (state ^ u64::from(*byte)).wrapping_mul(Self::PRIME);
        }
        bytes[end..].copy_from_slice(&state.to_le_bytes());
    }
}

/// The outcome counts of one mutation kind.
#[derive(Default)]
struct Counts {
    tried: usize,
    /// Accepted by `Bundle::from_bytes`: in all, and those changed inside the Wasm module.
    accepted: usize,
    accepted_in_wasm: usize,
    /// Rejected mutants also given to `Program::load`, which refused each.
    rejected_loads: usize,
    /// Accepted mutants given to `Program::load`, and how many of them loaded.
    accepted_loads: usize,
    loaded: usize,
}

/// How many mutants of one class were seen, and a reservoir sample of them.
type Reservoir = (usize, Vec<Vec<u8>>);

/// Feeds mutants to `Bundle::from_bytes` and `Program::load`, catching panics.
struct Harness {
    file: &'static str,
    kinds: BTreeMap<&'static str, Counts>,
    /// Why `Program::load` refused accepted mutants (first words of the error).
    load_errors: BTreeMap<String, usize>,
    /// Accepted mutants kept for `Program::load`, by kind and by whether they changed
    /// the Wasm module: how many were seen, and a reservoir sample of them.
    sample: BTreeMap<(&'static str, bool), Reservoir>,
    panics: Vec<String>,
    rng: Rng,
    /// The WASM section's byte range in the golden, to sample both sides of it.
    wasm: std::ops::Range<usize>,
}

/// How many accepted mutants of each kind are loaded in the runtime (a Wasm compilation
/// each, slow in debug builds): changed outside the Wasm module (the runtime's own checks
/// of the manifest, functions and patterns see them), and inside it (wasmtime's do).
const LOAD_SAMPLE: usize = 8;
const LOAD_SAMPLE_IN_WASM: usize = 4;
/// Every how many rejected mutants one is also given to `Program::load` (which must
/// refuse it too).
const REJECTED_LOAD_STRIDE: usize = 97;

impl Harness {
    fn new(file: &'static str, golden: &[u8]) -> Harness {
        Bundle::from_bytes(golden).expect("the golden bundle reads");
        let mut wasm = 0..0;
        let count = u32::from_le_bytes(golden[20..24].try_into().unwrap_or_default()) as usize;
        for entry in 0..count {
            let base = 32 + 24 * entry;
            let word = |at: usize| u64::from_le_bytes(golden[at..at + 8].try_into().unwrap_or_default()) as usize;
            if golden[base] == 6 {
                wasm = word(base + 8)..word(base + 8) + word(base + 16);
            }
        }
        assert!(!wasm.is_empty(), "{file}: no WASM section");
        Harness {
            file,
            kinds: BTreeMap::new(),
            load_errors: BTreeMap::new(),
            sample: BTreeMap::new(),
            panics: Vec::new(),
            rng: Rng(0x6b65_7374_7265_6c21),
            wasm,
        }
    }

    fn panicked(&mut self, kind: &str, step: &str, bytes: &[u8]) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden-panics");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}-{}.kbundle", self.file, self.panics.len()));
        let _ = std::fs::write(&path, bytes);
        self.panics.push(format!("{step} panicked on a {kind} mutant of {} (saved to {})", self.file, path.display()));
    }

    /// Reads one mutant. `checksum_fixed` says whether its checksum was recomputed: if
    /// not, the checksum must reject it. An accepted mutant must be canonical.
    fn run(&mut self, kind: &'static str, bytes: &[u8], golden: &[u8], checksum_fixed: bool) {
        if bytes == golden {
            return;
        }
        let counts = self.kinds.entry(kind).or_default();
        counts.tried += 1;
        let tried = counts.tried;
        match catch_unwind(|| Bundle::from_bytes(bytes)) {
            Err(_) => self.panicked(kind, "Bundle::from_bytes", bytes),
            Ok(Err(_)) => {
                if tried.is_multiple_of(REJECTED_LOAD_STRIDE) {
                    self.kinds.entry(kind).or_default().rejected_loads += 1;
                    match catch_unwind(|| Program::load(bytes).is_err()) {
                        Err(_) => self.panicked(kind, "Program::load", bytes),
                        Ok(refused) => assert!(refused, "{kind}: Program::load accepted what Bundle::from_bytes refused"),
                    }
                }
            }
            Ok(Ok(bundle)) => {
                counts.accepted += 1;
                assert!(checksum_fixed, "{}: a {kind} mutant with a stale checksum was accepted", self.file);
                let rewritten = bundle.to_bytes().unwrap_or_else(|error| panic!("{}: an accepted {kind} mutant does not write: {error}", self.file));
                assert!(rewritten == bytes, "{}: an accepted {kind} mutant is not the canonical encoding of what it holds", self.file);
                // Reservoir sampling, so the loaded mutants spread over the whole run.
                let in_wasm = bytes.len() == golden.len() && bytes[..self.wasm.start] == golden[..self.wasm.start];
                if in_wasm {
                    self.kinds.entry(kind).or_default().accepted_in_wasm += 1;
                }
                let size = if in_wasm { LOAD_SAMPLE_IN_WASM } else { LOAD_SAMPLE };
                let slot = self.sample.entry((kind, in_wasm)).or_default();
                slot.0 += 1;
                if slot.1.len() < size {
                    slot.1.push(bytes.to_vec());
                } else {
                    let pick = self.rng.below(slot.0);
                    if pick < size {
                        slot.1[pick] = bytes.to_vec();
                    }
                }
            }
        }
    }

    /// Loads the sampled accepted mutants in the runtime.
    fn load_sample(&mut self) {
        let sample = std::mem::take(&mut self.sample);
        for ((kind, _), (_, mutants)) in sample {
            for bytes in mutants {
                self.kinds.entry(kind).or_default().accepted_loads += 1;
                match catch_unwind(AssertUnwindSafe(|| Program::load(&bytes))) {
                    Err(_) => self.panicked(kind, "Program::load", &bytes),
                    Ok(Ok(_)) => self.kinds.entry(kind).or_default().loaded += 1,
                    Ok(Err(error)) => {
                        let reason: String = error.0.split(':').next().unwrap_or_default().chars().take(60).collect();
                        *self.load_errors.entry(reason).or_default() += 1;
                    }
                }
            }
        }
    }

    fn report(&self) {
        let total: usize = self.kinds.values().map(|counts| counts.tried).sum();
        eprintln!("{}: {total} mutants, {} panics", self.file, self.panics.len());
        for (kind, counts) in &self.kinds {
            eprintln!(
                "    {kind:<37} {:>5} tried; Bundle::from_bytes accepted {:>4} ({:>4} changed in the Wasm module); \
                 Program::load refused {:>3} of {:>3} rejected, loaded {:>2} of {:>2} accepted",
                counts.tried, counts.accepted, counts.accepted_in_wasm, counts.rejected_loads, counts.rejected_loads, counts.loaded, counts.accepted_loads
            );
        }
        for (reason, count) in &self.load_errors {
            eprintln!("    Program::load refused {count} accepted mutants: {reason}");
        }
    }
}

/// Byte flips, truncations, insertions, deletions and huge length and count fields, with
/// and without a recomputed checksum, of one golden bundle.
fn mutate(file: &'static str) {
    let golden = golden(file).committed();
    let len = golden.len();
    let mut harness = Harness::new(file, &golden);
    let mut rng = Rng(fnv1a64(file.as_bytes()));
    let checksums = Checksums::new(&golden);
    let fix_checksum = |bytes: &mut Vec<u8>, from: usize| checksums.fix(bytes, from);

    // Truncations at every length (and at every word, checksum recomputed).
    for cut in 0..len {
        harness.run("truncation", &golden[..cut], &golden, false);
    }
    for cut in (0..len).step_by(8) {
        let mut bytes = golden[..cut].to_vec();
        fix_checksum(&mut bytes, cut);
        harness.run("truncation + checksum fix", &bytes, &golden, true);
    }

    // Single-byte flips; the checksum catches them all (FNV-1a sees every one-byte change).
    for _ in 0..500 {
        let mut bytes = golden.clone();
        bytes[rng.below(len)] ^= rng.flip();
        harness.run("single-byte flip", &bytes, &golden, false);
    }
    for _ in 0..500 {
        let mut bytes = golden.clone();
        for _ in 0..2 + rng.below(7) {
            let at = rng.below(len);
            bytes[at] ^= rng.flip();
        }
        harness.run("multi-byte flip", &bytes, &golden, false);
    }

    // The same with the checksum recomputed, so the structural checks see them: every
    // byte outside the Wasm module, and every 10th byte of the module (whose body only
    // the runtime reads), at a varying phase.
    let wasm = harness.wasm.clone();
    for at in 0..len - 8 {
        if wasm.contains(&at) && at >= wasm.start + 8 && (at - wasm.start) % 10 != rng.below(10) {
            continue;
        }
        let mut bytes = golden.clone();
        bytes[at] ^= rng.flip();
        fix_checksum(&mut bytes, at);
        harness.run("single-byte flip + checksum fix", &bytes, &golden, true);
    }
    for _ in 0..1000 {
        let mut bytes = golden.clone();
        let mut first = len;
        for _ in 0..2 + rng.below(7) {
            let at = rng.below(len - 8);
            bytes[at] ^= rng.flip();
            first = first.min(at);
        }
        fix_checksum(&mut bytes, first);
        harness.run("multi-byte flip + checksum fix", &bytes, &golden, true);
    }

    // Insertions and deletions of a byte, checksum recomputed.
    for _ in 0..300 {
        let mut inserted = golden.clone();
        let at = rng.below(len + 1);
        inserted.insert(at, rng.next() as u8);
        fix_checksum(&mut inserted, at);
        harness.run("insertion + checksum fix", &inserted, &golden, true);
        let mut deleted = golden.clone();
        let at = rng.below(len);
        deleted.remove(at);
        fix_checksum(&mut deleted, at);
        harness.run("deletion + checksum fix", &deleted, &golden, true);
    }

    // The section table's offsets and lengths set to huge and off-by-some values.
    let sections = u32::from_le_bytes(golden[20..24].try_into().unwrap_or_default()) as usize;
    for entry in 0..sections {
        for field in [8, 16] {
            let at = 32 + 24 * entry + field;
            let old = u64::from_le_bytes(golden[at..at + 8].try_into().unwrap_or_default());
            let values = [
                u64::MAX,
                u64::MAX - 7,
                i64::MAX as u64,
                1 << 63,
                1 << 32,
                u64::from(u32::MAX),
                len as u64,
                len as u64 + 8,
                0,
                old.wrapping_add(8),
                old.wrapping_sub(8),
                old.wrapping_add(1),
                old.wrapping_add(1 << 32),
            ];
            for value in values {
                let mut bytes = golden.clone();
                bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
                harness.run("section offset/length", &bytes, &golden, false);
                fix_checksum(&mut bytes, at);
                harness.run("section offset/length + checksum fix", &bytes, &golden, true);
            }
        }
    }
    // The section count, too.
    for value in [0, 1, 6, 7, 8, u32::MAX, 1 << 31] {
        let mut bytes = golden.clone();
        bytes[20..24].copy_from_slice(&value.to_le_bytes());
        fix_checksum(&mut bytes, 20);
        harness.run("section offset/length + checksum fix", &bytes, &golden, true);
    }

    // 32-bit words anywhere (vec counts, string lengths, indices, layout fields) set to
    // huge or boundary values, checksum recomputed.
    let end = len - 8;
    for _ in 0..1500 {
        // Three in four outside the Wasm module, where the reader decodes every byte.
        let at = loop {
            let at = 32 + rng.below(end - 32 - 4);
            if !wasm.contains(&at) || rng.below(4) == 0 {
                break at;
            }
        };
        let old = u32::from_le_bytes(golden[at..at + 4].try_into().unwrap_or_default());
        let value = match rng.below(8) {
            0 => u32::MAX,
            1 => u32::MAX - 1,
            2 => 1 << 31,
            3 => 1 << 24,
            4 => len as u32,
            5 => old.wrapping_add(1),
            6 => old.wrapping_sub(1),
            _ => 0,
        };
        let mut bytes = golden.clone();
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        fix_checksum(&mut bytes, at);
        harness.run("u32 overwrite + checksum fix", &bytes, &golden, true);
    }

    harness.load_sample();
    harness.report();
    assert!(harness.panics.is_empty(), "{} panics:\n{}", harness.panics.len(), harness.panics.join("\n"));
    let deep = harness.kinds.get("single-byte flip + checksum fix").map_or(0, |counts| counts.accepted);
    assert!(deep > 0, "{file}: no flip with a fixed checksum was accepted; the structural checks were not reached");
}

#[test]
fn mutations_of_kestrel_rules_linux() {
    mutate("kestrel-rules-linux.kbundle");
}

#[test]
fn mutations_of_kestrel_rules_dynamic() {
    mutate("kestrel-rules-dynamic.kbundle");
}

#[test]
fn mutations_of_events_linux() {
    mutate("events-linux.kbundle");
}

#[test]
fn mutations_of_events_dynamic() {
    mutate("events-dynamic.kbundle");
}

#[test]
fn mutations_of_endgame_linux() {
    mutate("endgame-linux.kbundle");
}

#[test]
fn mutations_of_sequences_linux() {
    mutate("sequences-linux.kbundle");
}

/// The sequence tables of the multi-event golden bundle, as `kestrel inspect` prints
/// them (the automaton of each rule: steps, keys and their slots, missing steps,
/// checks and captures): what a reviewer reads when the lowering changes.
#[test]
fn sequence_tables_dump() {
    let bundle = Bundle::from_bytes(&golden("sequences-linux.kbundle").committed()).expect("reads");
    let text = bundle.inspect();
    let tables: String = text
        .lines()
        .skip_while(|line| !line.starts_with("sequences"))
        .take_while(|line| line.starts_with("sequences") || line.starts_with("  table") || line.starts_with("    "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(tables.lines().count() > 4, "no sequence tables in:\n{text}");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("snapshots/bundle"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("sequence_tables", tables));
}
