//! Runs lalrpop on the one EQL grammar, `grammar/eql.lalrpop`, at the workspace root.

fn main() {
    let grammar_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../grammar");
    println!("cargo:rerun-if-changed={}", grammar_dir.join("eql.lalrpop").display());
    lalrpop::Configuration::new()
        .set_in_dir(&grammar_dir)
        .set_out_dir(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .emit_rerun_directives(true)
        .process()
        .expect("lalrpop failed to generate the EQL parser");
}
