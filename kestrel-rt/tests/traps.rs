//! A rule whose predicate traps, or runs past its time budget, is disabled and counted;
//! the other rules and the process go on. eqlc never writes such code, so the module
//! here is written by hand against the ABI (docs/abi.md).

use kestrel_bundle::bundle::{Bundle, Functions, Layout, Manifest, Patterns, Predicate, PredicateRole, Query, Rule};
use kestrel_bundle::schema::TimestampUnit;
use kestrel_rt::engine::{Engine, Event};
use kestrel_rt::program::Program;
use std::sync::Arc;

/// Rule 0 traps (`unreachable`), rule 1 never returns, rule 2 always matches.
fn bundle() -> Bundle {
    let layout = Layout::plan_batched(8, 1, 4, 3, 4096, 4096);
    let results = layout.results_offset;
    let disabled = results + layout.batch_capacity * layout.result_count;
    let run = |id: u32| {
        format!(
            "(if (i32.eqz (i32.load8_u (i32.const {disabled_at})))
               (then (i32.store8 (i32.add (i32.const {result_at}) (i32.mul (local.get $i) (i32.const 3)))
                        (local.tee $t (i32.eq (call $p{id} (local.get $i)) (i32.const 1))))
                     (local.set $total (i32.add (local.get $total) (local.get $t)))))",
            disabled_at = disabled + id,
            result_at = results + id
        )
    };
    let wat = format!(
        "(module
           (memory (export \"memory\") {pages} {pages})
           (global (export \"heap_top\") (mut i32) (i32.const {heap}))
           (func $p0 (export \"pred_0\") (param i32) (result i32) unreachable)
           (func $p1 (export \"pred_1\") (param i32) (result i32) (loop $forever (br $forever)) (i32.const 0))
           (func $p2 (export \"pred_2\") (param i32) (result i32) (i32.const 1))
           (func (export \"eval\") (param $n i32) (result i32) (local $i i32) (local $t i32) (local $total i32)
             (block $done (loop $next
               (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
               {run0} {run1} {run2}
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br $next)))
             (local.get $total)))",
        pages = layout.memory_pages,
        heap = layout.heap_offset,
        run0 = run(0),
        run1 = run(1),
        run2 = run(2),
    );
    let rule = |id: u32, name: &str| Rule {
        id: name.to_string(),
        name: name.to_string(),
        severity: String::new(),
        risk_score: None,
        description: None,
        tags: Vec::new(),
        query: Query::Event { predicate: id },
        pipes: Vec::new(),
    };
    let predicate = |rule: u32| Predicate { rule, role: PredicateRole::EventCondition, category: None };
    Bundle {
        manifest: Manifest {
            compiler: "hand-written".to_string(),
            schema_name: "dynamic".to_string(),
            schema_fingerprint: 0,
            category_field: "event.category".to_string(),
            timestamp_field: "@timestamp".to_string(),
            timestamp_unit: TimestampUnit::Ns,
            layout,
        },
        fields: Vec::new(),
        rules: vec![rule(0, "traps"), rule(1, "spins"), rule(2, "matches")],
        functions: Functions { categories: Vec::new(), predicates: vec![predicate(0), predicate(1), predicate(2)], values: Vec::new() },
        patterns: Patterns::default(),
        wasm: wat::parse_str(wat).expect("the test module assembles"),
        sequences: None,
        lineage: None,
        custom: None,
        actions: Vec::new(),
        prefilter: None,
        needs: None,
    }
}

#[test]
fn trapping_and_spinning_rules_are_disabled_and_counted() {
    let bytes = bundle().to_bytes().expect("a valid bundle");
    let program = Arc::new(Program::load(&bytes).expect("the bundle loads"));
    let mut engine = Engine::new(program, 100).expect("the engine starts");
    let events: Vec<Event> =
        (0..20).map(|idx| Event { timestamp: idx, categories: Default::default(), fields: Vec::new(), raw: kestrel_rt::engine::Line::new("{}") }).collect();
    let mut alerts = Vec::new();
    engine.run(&events, 0, &mut alerts);
    engine.finish(&mut alerts);
    let stats = &engine.stats;
    assert_eq!(stats.events, 20);
    assert_eq!(stats.rules[0].traps, 1, "the trapping rule is disabled once");
    assert_eq!(stats.rules[1].traps, 1, "the spinning rule hits its deadline and is disabled");
    assert_eq!((stats.rules[0].matches, stats.rules[1].matches), (0, 0));
    assert_eq!(stats.rules[2].matches, 20, "the good rule sees every event");
    assert_eq!(alerts.len(), 20);
    assert!(alerts.iter().all(|alert| alert.rule == 2));
}
