fn main() {
    eprintln!("kestrel: the runtime arrives with the bundle format; see README.md");
    std::process::exit(2);
}
