//! Compiles the probes (bpf/kestrel.bpf.c) with clang for the BPF target and embeds the
//! object. Without clang or the libbpf headers the crate still builds: the embedded
//! object is empty and live mode says how to enable it (`kestrel_sensor::probes`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let bpf = manifest.join("../bpf");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("kestrel.bpf.o");
    for file in ["kestrel.bpf.c", "kestrel_kernel.h", "kestrel_records.h"] {
        println!("cargo:rerun-if-changed={}", bpf.join(file).display());
    }
    println!("cargo:rerun-if-env-changed=KESTREL_CLANG");
    println!("cargo:rustc-check-cfg=cfg(kestrel_probes)");
    let clang = std::env::var("KESTREL_CLANG").unwrap_or_else(|_| "clang".to_string());
    if !std::path::Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        println!("cargo:warning=probes not built (no /usr/include/bpf/bpf_helpers.h); `kestrel run` will be unavailable. Install clang and libbpf-dev.");
        std::fs::write(&out, b"").unwrap();
        return;
    }
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-D__TARGET_ARCH_x86", "-c"])
        .arg("-I")
        .arg(&bpf)
        .arg(bpf.join("kestrel.bpf.c"))
        .arg("-o")
        .arg(&out)
        .status();
    match status {
        Ok(status) if status.success() => {
            // Drop the DWARF (most of the object); BTF and CO-RE records stay.
            let _ = Command::new("llvm-strip").arg("-g").arg(&out).status();
            println!("cargo:rustc-cfg=kestrel_probes");
        }
        Ok(status) => {
            // The probes exist but do not compile: that is a bug, not a missing tool.
            panic!("clang failed to compile bpf/kestrel.bpf.c ({status})");
        }
        Err(error) => {
            println!("cargo:warning=probes not built ({clang}: {error}); `kestrel run` will be unavailable. Install clang and libbpf-dev.");
            std::fs::write(&out, b"").unwrap();
        }
    }
}
