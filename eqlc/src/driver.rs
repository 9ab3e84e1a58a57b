//! The passes for a whole rule, chained: locate → parse → check. Pure: the caller
//! supplies the sources and gets back the typed rules with their diagnostics.

use crate::ast;
use crate::check::{self, Options};
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::parse;
use crate::rules::{RuleMeta, RuleSource};
use crate::source::{SourceMap, Span};
use crate::tir;
use kestrel_bundle::enforce::Action;
use std::collections::HashMap;

/// One rule after checking.
#[derive(Debug)]
pub struct Checked {
    pub meta: RuleMeta,
    pub source: RuleSource,
    pub ast: ast::File,
    /// The typed rule, when the query could be checked at all (it may still have errors).
    pub rule: Option<tir::Rule>,
    /// What the rule does when it matches besides alerting, resolved against the query
    /// (`None`: it only alerts, or its action has errors).
    pub action: Option<Action>,
    /// The action's deciding step can be decided at the exec hook (`RuleAction::at_exec`).
    pub at_exec: bool,
    pub diags: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
}

/// Parses and checks one rule.
pub fn check_rule(source: &RuleSource, sources: &SourceMap, options: &Options) -> Checked {
    let file = sources.get(source.file);
    let text = file.slice(source.span);
    let (ast, mut diags) = parse::file(text, source.span.start as usize, options.dialect);
    let parse_failed = diags.iter().any(Diagnostic::is_error);
    let (rule, mut check_diags) = check::rule(&ast, options);
    if parse_failed {
        // Names and types in a tree with syntax errors would only echo them.
        check_diags.retain(|diag| !diag.is_error() || diag.code.as_str().starts_with("E00"));
    }
    diags.append(&mut check_diags);
    if ast.query.is_none() && !parse_failed {
        diags.push(
            Diagnostic::new(Code::E0503, format!("rule `{}` has no query", source.meta.name))
                .primary(Span::new(source.span.start as usize, source.span.start as usize), "expected a query here")
                .help("write an event query such as `process where ...`, or a `sequence`"),
        );
    }
    for diag in &mut diags {
        diag.file = Some(source.file);
    }
    diags.sort_by_key(|diag| diag.primary_span().map_or(0, |span| span.start));
    // The action, once the query is known (its diagnostics say which file they are in).
    let (mut action, mut at_exec) = (None, false);
    if let (Some(spec), Some(typed), false) = (&source.meta.action, &rule, parse_failed) {
        let (resolved, mut action_diags, decidable) = crate::actions::check_at_exec(spec, typed, &ast, options, source.file);
        (action, at_exec) = (resolved, decidable);
        diags.append(&mut action_diags);
    }
    Checked { meta: source.meta.clone(), source: source.clone(), ast, rule, action, at_exec, diags }
}

/// Checks every rule, then the rule set as a whole (duplicate rule ids).
pub fn check_all(rule_sources: &[RuleSource], sources: &SourceMap, options: &Options) -> Vec<Checked> {
    let mut checked: Vec<Checked> = rule_sources.iter().map(|source| check_rule(source, sources, options)).collect();
    check_rule_set(&mut checked, sources);
    checked
}

/// A rule that could not be checked because eqlc failed (B0001).
pub fn internal_error(source: &RuleSource) -> Checked {
    let at = Span::new(source.span.start as usize, source.span.start as usize);
    let diag = Diagnostic::new(Code::B0001, format!("eqlc failed while checking rule `{}`", source.meta.name))
        .primary(at, "in this rule")
        .note("this is a bug in eqlc, not in the rule; please report it with the rule text")
        .in_file(source.file);
    Checked {
        meta: source.meta.clone(),
        source: source.clone(),
        ast: ast::File { definitions: Vec::new(), query: None, span: at },
        rule: None,
        action: None,
        at_exec: false,
        diags: vec![diag],
    }
}

/// The checks that look at all rules together: duplicate rule ids (W0015).
pub fn check_rule_set(checked: &mut [Checked], sources: &SourceMap) {
    let mut first_by_id: HashMap<String, usize> = HashMap::new();
    for idx in 0..checked.len() {
        let Some(id) = checked[idx].meta.rule_id.clone() else { continue };
        match first_by_id.get(&id) {
            None => {
                first_by_id.insert(id, idx);
            }
            Some(&first) => {
                let first_name = sources.get(checked[first].source.file).name.clone();
                let rule = &mut checked[idx];
                let span = Span::new(rule.source.span.start as usize, rule.source.span.start as usize);
                rule.diags.push(
                    Diagnostic::new(Code::W0015, format!("rule id `{id}` is also used by `{}`", checked_name(&first_name)))
                        .primary(span, "duplicate rule id")
                        .note("alerts and suppressions are keyed by rule id, so the two rules cannot be told apart")
                        .in_file(rule.source.file),
                );
            }
        }
    }
}

fn checked_name(name: &str) -> &str {
    name
}

/// The back end over checked rules: the bundle's bytes, or the diagnostics that stop
/// it (E0701 for what the back end cannot run yet; B0001 if eqlc wrote a bundle its
/// own validator rejects). Rules that failed to check are left out: call this only
/// when no rule has errors, as `eqlc build` does.
///
/// `custom` holds the hand-written predicates the rules were checked with (their
/// declarations follow the host-declared functions in `Options::declarations`).
pub fn build(checked: &[Checked], schema: &kestrel_bundle::schema::Schema, custom: &[crate::custom::CustomDef]) -> (Option<Vec<u8>>, Vec<Diagnostic>) {
    let inputs: Vec<crate::emit::Input> = checked
        .iter()
        .filter_map(|rule| {
            rule.rule.as_ref().map(|typed| crate::emit::Input {
                meta: &rule.meta,
                rule: typed,
                action: rule.action.as_ref(),
                at_exec: rule.at_exec,
                file: rule.source.file,
                span: rule.source.span,
            })
        })
        .collect();
    let (bundle, mut diags) = crate::emit::bundle(&inputs, schema, custom);
    let bytes = match bundle.map(|bundle| bundle.to_bytes()) {
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(error)) => {
            diags.push(Diagnostic::new(Code::B0001, format!("eqlc produced an invalid bundle: {error}")).note("this is a bug in eqlc; please report it"));
            None
        }
        None => None,
    };
    (bytes, diags)
}

/// `eqlc build` as a library call: loads the rules and hand-written predicates under
/// `paths`, checks every rule against `options` plus the predicates' declarations, and
/// builds the bundle. Returns its bytes, or every diagnostic that stopped it (rendered
/// against `sources`).
pub fn build_paths(paths: &[std::path::PathBuf], options: &Options, sources: &mut SourceMap) -> Result<Vec<u8>, Vec<Diagnostic>> {
    let loaded = crate::rules::load(paths, sources);
    let mut diags = loaded.diags;
    let (declarations, declaration_diags) = crate::custom::declare(&loaded.predicates, options.schema, options.declarations);
    diags.extend(declaration_diags);
    let options = Options { declarations: &declarations, ..*options };
    let checked = check_all(&loaded.rules, sources, &options);
    diags.extend(checked.iter().flat_map(|rule| rule.diags.iter().cloned()));
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    let (bytes, build_diags) = build(&checked, options.schema, &loaded.predicates);
    bytes.ok_or(build_diags)
}
