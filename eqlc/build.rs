//! Runs lalrpop on the one EQL grammar, `grammar/eql.lalrpop`, at the workspace root, and
//! assembles the in-guest Wasm library `src/emit/library.wat`.

fn main() {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let library = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/emit/library.wat");
    println!("cargo:rerun-if-changed={}", library.display());
    let wasm = wat::parse_file(&library).unwrap_or_else(|error| panic!("src/emit/library.wat does not assemble: {error}"));
    std::fs::write(out_dir.join("library.wasm"), wasm).expect("write library.wasm");

    let grammar_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../grammar");
    println!("cargo:rerun-if-changed={}", grammar_dir.join("eql.lalrpop").display());
    lalrpop::Configuration::new()
        .set_in_dir(&grammar_dir)
        .set_out_dir(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .emit_rerun_directives(true)
        .process()
        .expect("lalrpop failed to generate the EQL parser");
}
