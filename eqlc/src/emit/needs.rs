//! The bundle's needs (docs/bundle-format.md, `NEEDS`): for each event condition, the
//! literals its event's string fields must hold for it to be true, read off the typed IR,
//! so that the runtime can skip the conditions an event cannot satisfy.
//!
//! Where the prefilter asks one question of a whole line for the whole bundle, needs
//! are per predicate and per field, in conjunctive form: a predicate needs every one of
//! its clauses, and a clause one of its atoms (a literal in a field). `a and b` needs
//! the clauses of both; `a or b` one clause, the union of the best clause of each; a
//! leaf (`==`, `in`, `:`, `like`, `startsWith`, `endsWith`, `stringContains` of a
//! string field against string literals) one clause of its literals in its field;
//! anything else nothing. A large rule set shares the work this way: one search of
//! each field's value for every literal of every rule, instead of each rule's own
//! comparisons (`process.name in (...)` in hundreds of rules).

use super::prefilter::leaf;
use crate::functions::Func;
use crate::tir::{self, ExprId, ExprKind};
use kestrel_bundle::bundle::{self as format, MAX_CLAUSE_ATOMS, MAX_NEED_ATOMS, MAX_NEED_CLAUSES, MAX_NEED_LITERAL_LEN, Predicate, PredicateRole};
use std::collections::{BTreeMap, BTreeSet};

/// Fewest predicates with needs for a bundle to have them: below this, the one search
/// per field costs about what the few skipped predicates would.
pub const MIN_PREDICATES: usize = 8;

/// One of these (field, literal) pairs must hold; literals are ASCII lower-case.
type Clause = BTreeSet<(String, String)>;

/// An atom of the section: (index into the bundle's fields, literal).
type Atom<'l> = (u32, &'l str);

/// The clauses of each event condition (by predicate id) that has some, when at least
/// `min_predicates` do; `None` otherwise.
///
/// A condition that calls a declared function has none: a hand-written predicate's
/// captures on an event go into the alerts of every rule the event matches, so a call
/// skipped in one rule could change another's alert. (A lineage test needs nothing
/// known, but the rest of its condition may: the tracker's answers are written before
/// `eval`, whichever predicates run.)
pub fn needs(rules: &[&tir::Rule], predicates: &[(usize, Predicate, Vec<ExprId>)], min_predicates: usize) -> Option<Vec<(u32, Vec<Clause>)>> {
    let found: Vec<(u32, Vec<Clause>)> = predicates
        .iter()
        .enumerate()
        .filter(|(_, (_, predicate, _))| predicate.role == PredicateRole::EventCondition)
        .filter(|(_, (rule, _, conjuncts))| !conjuncts.iter().any(|conjunct| calls_declared(rules[*rule], *conjunct)))
        .filter_map(|(id, (rule, _, conjuncts))| {
            let distinct: BTreeSet<Clause> = conjuncts.iter().flat_map(|conjunct| clauses(rules[*rule], *conjunct)).collect();
            // The strongest first (the longest shortest literal, then the fewest atoms);
            // each alone is a true need, so the rest may be dropped.
            let mut clauses: Vec<Clause> = distinct.into_iter().collect();
            clauses.sort_by_key(|clause| (std::cmp::Reverse(shortest(clause)), clause.len()));
            clauses.truncate(MAX_NEED_CLAUSES);
            (!clauses.is_empty()).then_some((id as u32, clauses))
        })
        .collect();
    (found.len() >= min_predicates.max(1)).then_some(found)
}

/// The `NEEDS` section of `needs`, with the bundle's `fields` (sorted by name). A clause
/// naming a field the bundle does not read (none does: a predicate's fields are read)
/// is left out, and so is a predicate left without clauses: fewer clauses only skip less.
/// A rule set of more than [`MAX_NEED_ATOMS`] distinct literals (the Linux corpus set
/// has 4,735) gets no section.
pub fn section(needs: &[(u32, Vec<Clause>)], fields: &[format::Field]) -> Option<format::Needs> {
    let index = |name: &str| fields.iter().position(|field| field.name == name).map(|index| index as u32);
    let indexed: Vec<(u32, Vec<Vec<Atom>>)> = needs
        .iter()
        .map(|(predicate, clauses)| {
            let clauses: Vec<Vec<Atom>> = clauses
                .iter()
                .filter_map(|clause| clause.iter().map(|(field, literal)| Some((index(field)?, literal.as_str()))).collect::<Option<Vec<_>>>())
                .collect();
            (*predicate, clauses)
        })
        .filter(|(_, clauses)| !clauses.is_empty())
        .collect();
    let atoms: BTreeMap<(u32, &str), u32> = indexed
        .iter()
        .flat_map(|(_, clauses)| clauses.iter().flatten().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(number, atom)| (atom, number as u32))
        .collect();
    let predicates: Vec<format::PredicateNeeds> = indexed
        .iter()
        .map(|(predicate, clauses)| format::PredicateNeeds {
            predicate: *predicate,
            clauses: clauses.iter().map(|clause| clause.iter().map(|atom| atoms[atom]).collect::<BTreeSet<u32>>().into_iter().collect()).collect(),
        })
        .collect();
    (!predicates.is_empty() && atoms.len() <= MAX_NEED_ATOMS).then(|| format::Needs {
        atoms: atoms.into_keys().map(|(field, literal)| format::NeedAtom { field, literal: literal.to_string() }).collect(),
        predicates,
    })
}

/// What `id` being true needs, as clauses (none: nothing known).
fn clauses(rule: &tir::Rule, id: ExprId) -> Vec<Clause> {
    match &rule.expr(id).kind {
        ExprKind::And(items) => items.iter().flat_map(|item| clauses(rule, *item)).collect(),
        ExprKind::Or(items) => {
            let mut union = Clause::new();
            for item in items {
                let Some(best) = clauses(rule, *item).into_iter().max_by_key(|clause| (shortest(clause), std::cmp::Reverse(clause.len()))) else {
                    return Vec::new();
                };
                union.extend(best);
            }
            if union.is_empty() || union.len() > MAX_CLAUSE_ATOMS { Vec::new() } else { vec![union] }
        }
        _ => leaf(rule, id).and_then(|(field, texts)| clause(field, texts)).into_iter().collect(),
    }
}

/// A leaf's clause: every text a usable literal (not empty, ASCII, short enough), and
/// not too many of them.
fn clause(field: &str, texts: Vec<Option<&str>>) -> Option<Clause> {
    let usable = |text: &str| !text.is_empty() && text.len() <= MAX_NEED_LITERAL_LEN && text.is_ascii();
    let clause: Clause =
        texts.into_iter().map(|text| text.filter(|text| usable(text)).map(|text| (field.to_string(), text.to_ascii_lowercase()))).collect::<Option<_>>()?;
    (!clause.is_empty() && clause.len() <= MAX_CLAUSE_ATOMS).then_some(clause)
}

/// Whether `id` calls a declared function (a hand-written predicate among them).
fn calls_declared(rule: &tir::Rule, id: ExprId) -> bool {
    let kind = &rule.expr(id).kind;
    matches!(kind, ExprKind::Call { func: Func::Declared(_), .. }) || kind.children().into_iter().any(|child| calls_declared(rule, child))
}

/// The length of a clause's shortest literal.
fn shortest(clause: &Clause) -> usize {
    clause.iter().map(|(_, literal)| literal.len()).min().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use crate::dialect::Dialect;
    use crate::emit::tests::build;
    use kestrel_bundle::schema::Schema;

    /// Queries and the needs the first rule's predicate gets (as `kestrel inspect` prints
    /// them), or none. `MIN_PREDICATES` rules that need a literal each follow every
    /// query, so that the bundle has needs whatever the query's.
    const CASES: &[(&str, Option<&str>)] = &[
        (r#"process where process.name == "Bash""#, Some(r#"(process.name has "bash")"#)),
        // Every conjunct is a clause, the strongest first (longest shortest literal).
        (
            r#"process where event.type == "start" and process.name in ("curl", "wget") and process.args : "*--insecure*""#,
            Some(r#"(process.args has "--insecure") and (event.type has "start") and (process.name has "curl" or process.name has "wget")"#),
        ),
        // A disjunction is one clause: the best clause of each side, across fields.
        (
            r#"process where process.name == "nc" or (process.executable : "/tmp/*" and process.args == "-e")"#,
            Some(r#"(process.executable has "/tmp/" or process.name has "nc")"#),
        ),
        (r#"file where file.path like~ "/etc/*shadow" and startsWith(file.name, "sh")"#, Some(r#"(file.path has "shadow") and (file.name has "sh")"#)),
        // Short literals and literals in keys are fine here: a field's value is searched,
        // not the line.
        (r#"process where process.name == "sh""#, Some(r#"(process.name has "sh")"#)),
        (r#"process where process.name == "name""#, Some(r#"(process.name has "name")"#)),
        // A part that needs nothing known drops out of a conjunction, and empties a
        // disjunction.
        (r#"process where process.name == "curl" and process.pid > 1"#, Some(r#"(process.name has "curl")"#)),
        (r#"process where process.name == "curl" or process.pid == 1"#, None),
        (r#"process where process.name != "bash""#, None),
        (r#"process where not process.name == "bash""#, None),
        (r#"process where process.name regex "ba.h""#, None),
        (r#"process where process.name : "*""#, None),
        (r#"process where process.name == "bäsh""#, None),
        (r#"process where process.name == process.parent.name"#, None),
        // A lineage test needs nothing known; the rest of the condition still counts.
        (r#"process where process.name == "bash" and descendant of [process where process.name == "sshd"]"#, Some(r#"(process.name has "bash")"#)),
    ];

    #[test]
    fn conditions_get_the_needs_they_have() {
        let schema = Schema::builtin("linux").unwrap();
        let fillers: Vec<String> = (0..super::MIN_PREDICATES).map(|n| format!("process where process.name == \"filler{n}\"")).collect();
        let mut wrong = Vec::new();
        for (query, expected) in CASES {
            let rules: Vec<&str> = std::iter::once(*query).chain(fillers.iter().map(String::as_str)).collect();
            let bundle = build(&rules, &schema, Dialect::Endgame);
            let text = bundle.inspect();
            assert!(bundle.needs.is_some(), "{query}: the bundle has needs\n{text}");
            let found = text.lines().find_map(|line| line.strip_prefix("  pred   0: "));
            if found != *expected {
                wrong.push(format!("{query}: expected {expected:?}, found {found:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn fewer_than_min_predicates_with_needs_get_none() {
        let schema = Schema::builtin("linux").unwrap();
        let rules: Vec<String> = (0..super::MIN_PREDICATES).map(|n| format!("process where process.name == \"p{n}\"")).collect();
        let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
        assert!(build(&rules, &schema, Dialect::Endgame).needs.is_some());
        let fewer = &rules[..super::MIN_PREDICATES - 1];
        assert!(build(fewer, &schema, Dialect::Endgame).needs.is_none());
    }
}
