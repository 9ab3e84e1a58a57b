//! Compiles the probes (bpf/kestrel.bpf.c) with clang for the BPF target and embeds the
//! object. Without clang or the libbpf headers, the committed object
//! (bpf/prebuilt/kestrel.bpf.o) is embedded when it was built from the current sources
//! (bpf/prebuilt/SOURCES holds their hash); otherwise the embedded object is empty and
//! `kestrel run` says how to enable it. `KESTREL_PROBES_ORIGIN` tells which happened.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The probe sources, in hashing order.
const SOURCES: [&str; 3] = ["kestrel.bpf.c", "kestrel_kernel.h", "kestrel_records.h"];

/// FNV-1a 64 over each source's name, length and bytes (the same in the sensor's tests).
fn sources_hash(bpf: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for name in SOURCES {
        let bytes = std::fs::read(bpf.join(name)).unwrap_or_default();
        for byte in name.as_bytes().iter().chain(&(bytes.len() as u64).to_le_bytes()).chain(&bytes) {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let bpf = manifest.join("../bpf");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("kestrel.bpf.o");
    for file in SOURCES.iter().chain(&["prebuilt/kestrel.bpf.o", "prebuilt/SOURCES"]) {
        println!("cargo:rerun-if-changed={}", bpf.join(file).display());
    }
    println!("cargo:rerun-if-env-changed=KESTREL_CLANG");
    let hash = sources_hash(&bpf);
    println!("cargo:rustc-env=KESTREL_PROBES_SOURCES={hash}");
    let clang = std::env::var("KESTREL_CLANG").unwrap_or_else(|_| "clang".to_string());
    let have_headers = Path::new("/usr/include/bpf/bpf_helpers.h").exists();
    let have_clang = Command::new(&clang).arg("--version").output().is_ok_and(|output| output.status.success());
    if have_clang && have_headers {
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-D__TARGET_ARCH_x86", "-c"])
            .arg("-I")
            .arg(&bpf)
            .arg(bpf.join("kestrel.bpf.c"))
            .arg("-o")
            .arg(&out)
            .status()
            .expect("clang runs");
        // The probes exist but do not compile: that is a bug, not a missing tool.
        assert!(status.success(), "clang failed to compile bpf/kestrel.bpf.c ({status})");
        // Drop the DWARF (most of the object); BTF and CO-RE records stay.
        let _ = Command::new("llvm-strip").arg("-g").arg(&out).status();
        println!("cargo:rustc-env=KESTREL_PROBES_ORIGIN=clang");
        return;
    }
    let prebuilt = bpf.join("prebuilt/kestrel.bpf.o");
    let recorded = std::fs::read_to_string(bpf.join("prebuilt/SOURCES")).unwrap_or_default();
    if prebuilt.exists() && recorded.trim() == hash {
        std::fs::copy(&prebuilt, &out).unwrap();
        println!("cargo:warning=probes: clang or libbpf-dev missing; embedding the committed bpf/prebuilt/kestrel.bpf.o (built from these sources)");
        println!("cargo:rustc-env=KESTREL_PROBES_ORIGIN=prebuilt");
    } else {
        println!(
            "cargo:warning=probes not built: no clang/libbpf-dev and bpf/prebuilt is stale; `kestrel run` will be unavailable. Install clang, llvm and libbpf-dev."
        );
        std::fs::write(&out, b"").unwrap();
        println!("cargo:rustc-env=KESTREL_PROBES_ORIGIN=none");
    }
}
