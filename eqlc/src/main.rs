fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let text = std::fs::read_to_string(&path).unwrap();
    let (mut ok, mut bad) = (0, 0);
    for (idx, line) in text.lines().enumerate() {
        let query = line.split("\"query\": ").nth(1).unwrap();
        let query: String = serde_json::Deserializer::from_str(query).into_iter::<String>().next().unwrap().unwrap();
        let (_file, diags) = eqlc::parse::file(&query, 0, std::env::args().nth(2).map(|d| d.parse().unwrap()).unwrap_or_default());
        if diags.is_empty() { ok += 1 } else {
            bad += 1;
            if bad < 15 { println!("line {}: {:?}", idx + 1, diags.iter().map(|d| (d.message.clone(), d.notes.clone(), &query[d.primary_span().unwrap().range()])).collect::<Vec<_>>()); }
        }
    }
    println!("ok {ok} bad {bad}");
}
