//! Mutations of the golden bytes: the reader never panics, rejects every truncation,
//! insertion, deletion and every flip the checksum sees, and accepts a flip whose
//! checksum was recomputed only when the result is the canonical encoding of a valid
//! bundle (so nothing non-canonical, such as dirty padding, is ever accepted).
//!
//! Run with `--nocapture` to see which check rejected how many mutations of each kind.

use crate::handmade::{fix_checksum, golden_bytes, handmade};
use kestrel_bundle::{Bundle, BundleError};
use std::collections::BTreeMap;

/// SplitMix64: a small, fixed-seed generator so every run tries the same mutations.
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

/// Which check rejected a mutation, from the error message.
fn check_of(error: &BundleError) -> &'static str {
    let message = error.message.as_str();
    let sections = ["MANIFEST: ", "FIELDS: ", "RULES: ", "FUNCTIONS: ", "PATTERNS: ", "WASM: ", "SEQUENCES: "];
    if sections.iter().any(|section| message.starts_with(section)) {
        return if message.contains("needs") && message.contains("bytes, but the section has only") || message.contains("bytes long, but the section") {
            "decode: value runs past the section"
        } else if message.contains("has a count of") {
            "decode: vec count too large"
        } else if message.contains("not valid UTF-8") {
            "decode: invalid UTF-8"
        } else if message.contains("trailing bytes") {
            "decode: trailing bytes"
        } else if message.contains("option tag") {
            "decode: option tag"
        } else if message.contains("flags") || message.contains("folded flag") {
            "decode: field flags / folded sentinel"
        } else if message.contains("IPv4 address has non-zero") {
            "decode: IPv4 padding"
        } else if message.contains(", expected ") {
            "decode: enum tag"
        } else {
            "decode: other"
        };
    }
    let prefixes: [(&str, &str); 22] = [
        ("not a Kestrel bundle", "header: magic"),
        ("format version", "header: format version"),
        ("predicate ABI version", "header: ABI version"),
        ("the file ends after", "header: file too short"),
        ("byte-order mark", "header: byte-order mark"),
        ("the reserved header bytes", "header: reserved"),
        ("section count", "table: section count"),
        ("section table entry", "table: entry (kind, order, reserved)"),
        ("the required section", "table: required section missing"),
        ("section ", "table: section placement"),
        ("the checksum must start", "table: file length / checksum placement"),
        ("padding byte", "padding not zero"),
        ("checksum mismatch", "checksum"),
        ("manifest:", "semantic: manifest field names"),
        ("layout:", "semantic: layout"),
        ("field ", "semantic: fields (order, slots)"),
        ("category ", "semantic: categories"),
        ("predicate ", "semantic: predicate rule/category"),
        ("value function ", "semantic: value-function rule"),
        ("rule ", "semantic: rule (ids, roles, owners, pipes)"),
        ("CIDR set", "semantic: CIDR prefix"),
        ("the Wasm module", "semantic: Wasm header"),
    ];
    prefixes.iter().find(|(prefix, _)| message.starts_with(prefix)).map_or("other", |(_, check)| check)
}

/// Counts, per mutation kind, how many were tried, accepted, and rejected by each check.
#[derive(Default)]
struct Stats {
    kinds: BTreeMap<&'static str, (usize, usize, BTreeMap<&'static str, usize>)>,
}

impl Stats {
    /// Reads `bytes` (which must not panic), records the outcome, and returns it.
    fn run(&mut self, kind: &'static str, bytes: &[u8]) -> Result<Bundle, BundleError> {
        let result = std::panic::catch_unwind(|| Bundle::from_bytes(bytes));
        let result = result.unwrap_or_else(|_| panic!("from_bytes panicked on a {kind} mutation: {bytes:02x?}"));
        let entry = self.kinds.entry(kind).or_default();
        entry.0 += 1;
        match &result {
            Ok(_) => entry.1 += 1,
            Err(error) => *entry.2.entry(check_of(error)).or_default() += 1,
        }
        result
    }

    fn print(&self) {
        for (kind, (tried, accepted, checks)) in &self.kinds {
            eprintln!("{kind}: {tried} tried, {accepted} accepted, {} rejected", tried - accepted);
            for (check, count) in checks {
                eprintln!("    {count:>6}  {check}");
            }
        }
    }

    fn rejected_by(&self, kind: &str, check: &str) -> usize {
        self.kinds.get(kind).and_then(|(_, _, checks)| checks.get(check)).copied().unwrap_or_default()
    }
}

/// A mutation whose checksum was recomputed: if accepted, it must be a canonical
/// encoding, i.e. exactly what the writer produces for the decoded bundle.
fn assert_canonical_if_accepted(result: Result<Bundle, BundleError>, bytes: &[u8], what: &str) {
    if let Ok(bundle) = result {
        let rewritten = bundle.to_bytes().unwrap_or_else(|error| panic!("{what}: accepted but not writable: {error}"));
        assert!(rewritten == bytes, "{what}: accepted a non-canonical encoding");
    }
}

#[test]
fn mutations_of_the_golden_bundle() {
    let golden = golden_bytes();
    assert_eq!(Bundle::from_bytes(&golden).unwrap(), handmade());
    let len = golden.len();
    let mut rng = Rng(0x4b53_5452_4c42_4e44);
    let mut stats = Stats::default();

    // Truncations at every length: always rejected.
    for cut in 0..len {
        assert!(stats.run("truncation", &golden[..cut]).is_err(), "truncation to {cut} bytes accepted");
    }

    // Single-byte flips at every position, three times: the checksum catches them all.
    for _ in 0..3 {
        for at in 0..len {
            let mut bytes = golden.clone();
            bytes[at] ^= rng.flip();
            assert!(stats.run("single-byte flip", &bytes).is_err(), "flip at byte {at} accepted");
        }
    }

    // Multi-byte flips (2 to 8 bytes): also caught.
    for _ in 0..3000 {
        let mut bytes = golden.clone();
        for _ in 0..2 + rng.below(7) {
            let at = rng.below(len);
            bytes[at] ^= rng.flip();
        }
        if bytes != golden {
            assert!(stats.run("multi-byte flip", &bytes).is_err(), "multi-byte flip accepted");
        }
    }

    // Insertions and deletions of a byte, with and without a recomputed checksum: the
    // length or the section placement no longer fits, so all are rejected.
    for _ in 0..2000 {
        let mut inserted = golden.clone();
        inserted.insert(rng.below(len + 1), rng.next() as u8);
        assert!(stats.run("insertion", &inserted).is_err(), "insertion accepted");
        fix_checksum(&mut inserted);
        assert!(stats.run("insertion + checksum fix", &inserted).is_err(), "insertion accepted");

        let mut deleted = golden.clone();
        deleted.remove(rng.below(len));
        assert!(stats.run("deletion", &deleted).is_err(), "deletion accepted");
        fix_checksum(&mut deleted);
        assert!(stats.run("deletion + checksum fix", &deleted).is_err(), "deletion accepted");
    }

    // Flips followed by a recomputed checksum, so the deeper checks see them: every
    // position (except the checksum) three times, then multi-byte flips.
    for _ in 0..3 {
        for at in 0..len - 8 {
            let mut bytes = golden.clone();
            bytes[at] ^= rng.flip();
            fix_checksum(&mut bytes);
            let result = stats.run("single-byte flip + checksum fix", &bytes);
            assert_canonical_if_accepted(result, &bytes, &format!("flip at byte {at}"));
        }
    }
    for _ in 0..3000 {
        let mut bytes = golden.clone();
        for _ in 0..2 + rng.below(7) {
            let at = rng.below(len - 8);
            bytes[at] ^= rng.flip();
        }
        fix_checksum(&mut bytes);
        let result = stats.run("multi-byte flip + checksum fix", &bytes);
        assert_canonical_if_accepted(result, &bytes, "multi-byte flip");
    }

    // Aligned little-endian words overwritten with boundary values (0, 1, ±1, all ones,
    // a byte-sized count), checksum fixed: these reach the index and layout checks.
    for _ in 0..4000 {
        let mut bytes = golden.clone();
        let width = if rng.below(2) == 0 { 4 } else { 8 };
        let at = rng.below((len - 8) / width) * width;
        let old = u64::from_le_bytes(golden[at..at + 8].try_into().unwrap_or([0; 8]));
        let value: u64 = match rng.below(6) {
            0 => 0,
            1 => 1,
            2 => old.wrapping_add(1),
            3 => old.wrapping_sub(1),
            4 => u64::MAX,
            _ => rng.below(300) as u64,
        };
        bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        if bytes == golden {
            continue;
        }
        fix_checksum(&mut bytes);
        let result = stats.run("word overwrite + checksum fix", &bytes);
        assert_canonical_if_accepted(result, &bytes, &format!("word at byte {at}"));
    }

    stats.print();
    // The recomputed checksums let mutations through to the decoding and semantic checks.
    let deep = "single-byte flip + checksum fix";
    for check in ["decode: enum tag", "decode: invalid UTF-8", "semantic: fields (order, slots)", "semantic: layout", "padding not zero"] {
        assert!(stats.rejected_by(deep, check) > 0, "no {deep} mutation reached `{check}`");
    }
    let words = "word overwrite + checksum fix";
    for check in ["semantic: rule (ids, roles, owners, pipes)", "semantic: predicate rule/category", "decode: vec count too large"] {
        assert!(stats.rejected_by(words, check) > 0, "no {words} mutation reached `{check}`");
    }
}

/// Arbitrary bytes, and arbitrary bytes behind a valid header, never panic.
#[test]
fn random_bytes_are_rejected_without_panicking() {
    let golden = golden_bytes();
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let len = rng.below(300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(Bundle::from_bytes(&bytes).is_err());
        // Same bytes behind the real header and section table.
        let keep = rng.below(golden.len());
        bytes.splice(0..0, golden[..keep].iter().copied());
        fix_checksum(&mut bytes);
        let _ = Bundle::from_bytes(&bytes);
    }
}
