//! The bundle's prefilter (docs/bundle-format.md, `PREFILTER`): literals one of which
//! the JSON text of every event some rule can match holds, read off the typed IR.
//!
//! A condition *needs* a set of texts when it can only be true on an event whose text
//! holds one of them: `process.name == "bash"` needs `bash`; `a and b` needs what
//! either needs (the better of the two); `a or b` needs what both need (their union);
//! anything else (`not`, numbers, regexes, fields of other steps) needs nothing known.
//! A bundle has a prefilter when every event condition needs a set; its literals are
//! the union. Only string fields count (a keyword's value in the line is the text the
//! rule compares, when the line has no escapes), and only ASCII literals (a Unicode
//! lower-case comparison of an ASCII line is an ASCII one); the runtime reads in full
//! every line that is not ASCII or holds a backslash.

use crate::functions::Func;
use crate::tir::{self, CompareOp, ExprId, ExprKind, Pattern, Scalar, WildPiece};
use kestrel_bundle::bundle::{MAX_PREFILTER_LITERAL_LEN, MAX_PREFILTER_LITERALS, Predicate, PredicateRole, Prefilter};
use kestrel_bundle::schema::Schema;
use std::collections::BTreeSet;

/// Shortest literal worth a prefilter: shorter ones are in most lines, and looking for
/// them would cost more than it saves.
pub const MIN_LITERAL_LEN: usize = 3;

/// What a condition being true requires of an event's text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Needs {
    /// Nothing known.
    Nothing,
    /// One of these texts (ASCII, lower-case), case-insensitively.
    OneOf(BTreeSet<String>),
}

/// The prefilter of a bundle whose predicates are `predicates` (rule index, predicate,
/// conjuncts), or `None` when some event condition needs nothing known. A bundle with
/// lineage tests (the tracker reads every process event) or hand-written predicates
/// (code eqlc cannot see into) has none.
pub fn prefilter(rules: &[&tir::Rule], predicates: &[(usize, Predicate, Vec<ExprId>)], schema: &Schema, lineage: bool, custom: bool) -> Option<Prefilter> {
    if lineage || custom {
        return None;
    }
    let finder = Finder { segments: schema.field_names().flat_map(|name| name.split('.')).map(str::to_ascii_lowercase).collect() };
    let mut literals = BTreeSet::new();
    // Pipe filters and cross-step checks run only on events an event condition matched.
    for (rule, _, conjuncts) in predicates.iter().filter(|(_, predicate, _)| predicate.role == PredicateRole::EventCondition) {
        match finder.all_of(conjuncts.iter().map(|id| finder.needs(rules[*rule], *id))) {
            Needs::Nothing => return None,
            Needs::OneOf(set) => literals.extend(set),
        }
    }
    // A literal in most lines (short, or in a key) would make the prefilter cost more
    // than it saves.
    let usable = !literals.is_empty()
        && literals.len() <= MAX_PREFILTER_LITERALS
        && literals.iter().all(|literal| (MIN_LITERAL_LEN..=MAX_PREFILTER_LITERAL_LEN).contains(&literal.len()) && !finder.in_a_key(literal));
    usable.then(|| Prefilter { literals: literals.into_iter().collect() })
}

/// Looks for what conditions need, against the segments of the schema's field names.
struct Finder {
    /// Lower-cased segments of the schema's field names: a literal inside one is in the
    /// keys of most events (`exec` in `executable`), so it is a poor one to look for.
    segments: BTreeSet<String>,
}

impl Finder {
    /// How useful a set is to look for: none of its literals in a key, then its shortest
    /// literal's length, then the fewer literals the better.
    fn strength(&self, needs: &Needs) -> Option<(bool, usize, std::cmp::Reverse<usize>)> {
        match needs {
            Needs::Nothing => None,
            Needs::OneOf(set) => {
                Some((!set.iter().any(|literal| self.in_a_key(literal)), set.iter().map(String::len).min().unwrap_or(0), std::cmp::Reverse(set.len())))
            }
        }
    }

    fn in_a_key(&self, literal: &str) -> bool {
        self.segments.iter().any(|segment| segment.contains(literal))
    }

    /// What `id` being true needs.
    fn needs(&self, rule: &tir::Rule, id: ExprId) -> Needs {
        match &rule.expr(id).kind {
            ExprKind::And(items) => self.all_of(items.iter().map(|item| self.needs(rule, *item))),
            ExprKind::Or(items) => any_of(items.iter().map(|item| self.needs(rule, *item))),
            _ => leaf(rule, id).map_or(Needs::Nothing, |(_, texts)| one_of(texts)),
        }
    }

    /// A conjunction needs what its most useful part needs.
    fn all_of(&self, parts: impl Iterator<Item = Needs>) -> Needs {
        parts.max_by_key(|part| self.strength(part)).filter(|best| *best != Needs::Nothing).unwrap_or(Needs::Nothing)
    }
}

/// A condition on one string field of the event being matched that can only be true
/// when the field's value holds one of some texts: the field's name and the texts (a
/// `None` among them for a value that is not a string literal), or `None` when `id` is
/// not such a condition: `==`, `in`, `:`/`like` (a pattern's longest piece),
/// `startsWith`, `endsWith` and `stringContains` against string literals.
pub(super) fn leaf(rule: &tir::Rule, id: ExprId) -> Option<(&str, Vec<Option<&str>>)> {
    match &rule.expr(id).kind {
        ExprKind::Compare { op: CompareOp::Eq, lhs, rhs, .. } => match (string_field(rule, *lhs), string_field(rule, *rhs)) {
            (Some(field), _) => Some((field, vec![rule.str_literal(*rhs)])),
            (_, Some(field)) => Some((field, vec![rule.str_literal(*lhs)])),
            _ => None,
        },
        ExprKind::InSet { expr, values, negated: false, .. } => string_field(rule, *expr).map(|field| {
            let texts = values
                .iter()
                .map(|value| match value {
                    tir::Value::Str(text) => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            (field, texts)
        }),
        ExprKind::Wildcard { expr, patterns, .. } => string_field(rule, *expr).map(|field| (field, patterns.iter().map(longest_piece).collect())),
        ExprKind::Call { func: Func::StartsWith | Func::EndsWith | Func::StringContains, args, .. } if args.len() == 2 => {
            string_field(rule, args[0]).map(|field| (field, vec![rule.str_literal(args[1])]))
        }
        _ => None,
    }
}

/// A disjunction needs what each part needs.
fn any_of(parts: impl Iterator<Item = Needs>) -> Needs {
    let mut union = BTreeSet::new();
    for part in parts {
        match part {
            Needs::Nothing => return Needs::Nothing,
            Needs::OneOf(set) => union.extend(set),
        }
    }
    // An empty disjunction is never true; needing nothing known is the safe answer.
    if union.is_empty() { Needs::Nothing } else { Needs::OneOf(union) }
}

/// One of the texts, folded; nothing known when one is missing, empty or not ASCII.
fn one_of<'t>(texts: impl IntoIterator<Item = Option<&'t str>>) -> Needs {
    let mut set = BTreeSet::new();
    for text in texts {
        match text {
            Some(text) if !text.is_empty() && text.is_ascii() => set.insert(text.to_ascii_lowercase()),
            _ => return Needs::Nothing,
        };
    }
    if set.is_empty() { Needs::Nothing } else { Needs::OneOf(set) }
}

/// The name of a field of the event being matched whose values are strings (not one of
/// an earlier step's events, nor an array function's element).
fn string_field(rule: &tir::Rule, id: ExprId) -> Option<&str> {
    let expr = rule.expr(id);
    match &expr.kind {
        ExprKind::Field(path) if expr.ty.scalar == Scalar::Str => Some(&path.name),
        _ => None,
    }
}

/// The longest literal piece a matching text must hold.
fn longest_piece(pattern: &Pattern) -> Option<&str> {
    match pattern {
        Pattern::Exact(text) | Pattern::Prefix(text) | Pattern::Suffix(text) | Pattern::Contains(text) => Some(text),
        Pattern::General(pieces) => pieces
            .iter()
            .filter_map(|piece| match piece {
                WildPiece::Literal(text) => Some(text.as_str()),
                WildPiece::Any | WildPiece::One => None,
            })
            .max_by_key(|text| text.len()),
    }
}

#[cfg(test)]
mod tests {
    use crate::dialect::Dialect;
    use crate::emit::tests::build;
    use kestrel_bundle::schema::Schema;

    /// Rule sets (one query a line) and the prefilter each gets: its literals, or none.
    const CASES: &[(&[&str], Option<&[&str]>)] = &[
        (&[r#"process where process.name == "Bash""#], Some(&["bash"])),
        (&[r#"process where process.name in ("bash", "dash", "zsh") and process.pid > 1"#], Some(&["bash", "dash", "zsh"])),
        // The better conjunct: none in a key beats longer ones in keys (`exec` is in
        // `executable`), then the longest shortest literal.
        (&[r#"process where process.name == "exec" and process.args == "curl""#], Some(&["curl"])),
        (&[r#"process where process.name == "curl" and process.executable : "/usr/bin/*""#], Some(&["/usr/bin/"])),
        (&[r#"process where process.name == "curl" or process.executable : ("*/wget", "*netcat*")"#], Some(&["/wget", "curl", "netcat"])),
        (&[r#"process where startsWith(process.command_line, "python") or stringContains(process.name, "perl")"#], Some(&["perl", "python"])),
        (&[r#"file where file.path like~ "/etc/*shadow""#], Some(&["shadow"])),
        // Every rule needs a literal, or there is no prefilter.
        (&[r#"process where process.name == "curl""#, r#"file where file.name == "passwd""#], Some(&["curl", "passwd"])),
        (&[r#"process where process.name == "curl""#, r#"process where process.pid == 1"#], None),
        // Negations, other fields and other operators need nothing known.
        (&[r#"process where process.name != "bash""#], None),
        (&[r#"process where not process.name == "bash""#], None),
        (&[r#"process where process.name == "bash" or process.pid == 1"#], None),
        (&[r#"process where process.name == process.parent.name"#], None),
        (&[r#"process where process.name regex "ba.h""#], None),
        (&[r#"process where process.name : "*""#], None),
        // Too short, in a key, or not ASCII: not worth (or not safe) to look for.
        (&[r#"process where process.name == "sh""#], None),
        (&[r#"process where process.name == "name""#], None),
        (&[r#"process where process.name == "bäsh""#], None),
        // The lineage tracker reads every process event.
        (&[r#"process where process.name == "bash" and descendant of [process where process.name == "sshd"]"#], None),
        // A sequence's steps and its until each need one; pipe filters run on matches.
        (
            &[
                r#"sequence by process.entity_id [process where process.name == "curl"] [file where file.name == "passwd"] until [process where process.name == "sshd"] | filter process.pid > 1"#,
            ],
            Some(&["curl", "passwd", "sshd"]),
        ),
    ];

    #[test]
    fn rule_sets_get_the_literals_they_need() {
        let schema = Schema::builtin("linux").unwrap();
        let mut wrong = Vec::new();
        for (rules, expected) in CASES {
            let bundle = build(rules, &schema, Dialect::Endgame);
            let found = bundle.prefilter.map(|prefilter| prefilter.literals);
            let expected = expected.map(|literals| literals.iter().map(|literal| literal.to_string()).collect::<Vec<_>>());
            if found != expected {
                wrong.push(format!("{rules:?}: expected {expected:?}, found {found:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
