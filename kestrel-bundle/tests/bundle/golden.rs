//! Round trip of the hand-built bundle, the committed golden file (both directions), its
//! `inspect` snapshot, and the version errors.

use crate::handmade::{fix_checksum, golden_bytes, golden_path, handmade, repo_root, v1_golden_path};
use kestrel_bundle::Bundle;

#[test]
fn handmade_bundle_round_trips_and_is_deterministic() {
    let bundle = handmade();
    bundle.validate().expect("the hand-built bundle is valid");
    let bytes = bundle.to_bytes().expect("writes");
    assert_eq!(bytes.len() % 8, 0, "a bundle is a whole number of 8-byte words");
    assert_eq!(&bytes[..8], b"KSTRLBND");
    assert_eq!(Bundle::from_bytes(&bytes).expect("reads back"), bundle);
    assert_eq!(bundle.to_bytes().expect("writes again"), bytes, "writing is deterministic");
    assert_eq!(bundle.clone().to_bytes().expect("a clone writes"), bytes);
}

/// The golden file is format 2 forever: if this fails, the writer or reader changed the
/// format, which needs a new format version (and a new golden file next to this one).
#[test]
fn golden_v2_handmade_both_directions() {
    let golden = golden_bytes();
    let expected = handmade();
    assert_eq!(Bundle::from_bytes(&golden).expect("the golden file reads"), expected, "from_bytes(golden) == handmade()");
    assert!(expected.to_bytes().expect("writes") == golden, "to_bytes(handmade()) differs from {}", golden_path().display());
}

/// `inspect` of every golden bundle (or the error reading it), one snapshot per file.
#[test]
fn inspect_snapshots() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("snapshots/bundle"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let dir = repo_root().join("tests/data/bundle");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    paths.retain(|path| path.extension().is_some_and(|ext| ext == "kbundle"));
    paths.sort();
    assert!(!paths.is_empty(), "no golden bundles in {}", dir.display());
    for path in paths {
        // One snapshot per file, named like the other suites' (`bundle@<file>.snap`).
        settings.set_snapshot_suffix(path.file_name().unwrap().to_str().unwrap());
        settings.set_input_file(&path);
        let bytes = std::fs::read(&path).unwrap();
        let text = match Bundle::from_bytes(&bytes) {
            Ok(bundle) => bundle.inspect(),
            Err(error) => format!("error: {error}\n"),
        };
        settings.bind(|| insta::assert_snapshot!("bundle", text));
    }
}

fn with_u32(bytes: &[u8], at: usize, value: u32) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    fix_checksum(&mut bytes);
    bytes
}

#[test]
fn other_format_versions_are_refused_clearly() {
    let golden = golden_bytes();
    for version in [0, 1, 3, 0x0100_0000, u32::MAX] {
        let error = Bundle::from_bytes(&with_u32(&golden, 8, version)).unwrap_err();
        assert_eq!(error.to_string(), format!("at byte 8: format version {version} is not supported by this reader (supports 2)"));
    }
    // The version is checked before anything else but the magic, so even a bare
    // header of a later version gets the version error.
    let mut future = golden[..16].to_vec();
    future[8] = 3;
    assert_eq!(Bundle::from_bytes(&future).unwrap_err().message, "format version 3 is not supported by this reader (supports 2)");
}

/// The committed format-1 bundle (its guest memory had no skip bits, and no `NEEDS`
/// section) gets the version error, not a misreading.
#[test]
fn the_format_1_golden_file_is_refused_clearly() {
    let bytes = std::fs::read(v1_golden_path()).expect("tests/data/bundle/v1-handmade.kbundle is committed");
    assert_eq!(Bundle::from_bytes(&bytes).unwrap_err().to_string(), "at byte 8: format version 1 is not supported by this reader (supports 2)");
}

#[test]
fn other_abi_versions_are_refused_clearly() {
    let golden = golden_bytes();
    let error = Bundle::from_bytes(&with_u32(&golden, 12, 2)).unwrap_err();
    assert_eq!(error.to_string(), "at byte 12: predicate ABI version 2 is not supported by this reader (supports 1)");
}

#[test]
fn header_errors() {
    let golden = golden_bytes();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "at byte 0: the file ends after 0 bytes; a bundle has at least a 32-byte header and an 8-byte checksum"),
        (b"KSTR".to_vec(), "at byte 4: the file ends after 4 bytes; a bundle has at least a 32-byte header and an 8-byte checksum"),
        (b"\0asm\x01\0\0\0".to_vec(), "at byte 0: not a Kestrel bundle: the file does not start with the magic `KSTRLBND`"),
        (golden[..39].to_vec(), "at byte 39: the file ends after 39 bytes; a bundle has at least a 32-byte header and an 8-byte checksum"),
        (with_u32(&golden, 16, 0x0D0C_0B0A), "at byte 16: byte-order mark is 0x0d0c0b0a, expected 0x0a0b0c0d (the file was written big-endian)"),
        (with_u32(&golden, 20, 13), "at byte 20: section count 13 is more than the 12 section kinds of format 2"),
        (with_u32(&golden, 20, 5), "at byte 32: the required section WASM is missing from the section table"),
        (with_u32(&golden, 28, 1), "at byte 24: the reserved header bytes 24..32 are not zero"),
        (with_u32(&golden, 32, 13), "at byte 32: section table entry 0: unknown section kind 13 (format 2 knows kinds 1 to 12)"),
        (with_u32(&golden, 36, 1), "at byte 36: section table entry 0 (MANIFEST): the reserved field is not zero"),
        (with_u32(&golden, 56, 1), "at byte 56: section table entry 1: section MANIFEST is listed twice"),
        (with_u32(&golden, 80, 1), "at byte 80: section table entry 2: section MANIFEST comes after FIELDS; sections are listed in increasing kind order"),
    ];
    for (bytes, expected) in cases {
        assert_eq!(Bundle::from_bytes(&bytes).unwrap_err().to_string(), expected);
    }
}

#[test]
fn checksum_is_checked() {
    let mut bytes = golden_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let error = Bundle::from_bytes(&bytes).unwrap_err();
    assert_eq!(error.offset, Some(last as u64 - 7));
    assert!(error.message.starts_with("checksum mismatch"), "{error}");
}

/// `KESTREL_WRITE_GOLDEN=1 cargo test -p kestrel-bundle write_golden` rewrites the golden
/// file from `handmade()`. Only while format 2 is unreleased: afterwards a format change
/// needs a new version and a new golden file beside this one.
#[test]
fn write_golden() {
    if std::env::var_os("KESTREL_WRITE_GOLDEN").is_some() {
        std::fs::write(golden_path(), handmade().to_bytes().expect("writes")).expect("golden file written");
    }
}
