//! What a replay did: its counters, each rule's, and the summary written to stderr at
//! the end of `kestrel replay` (and, with the sensor's counters, of `kestrel run`).

use crate::losses::Losses;
use std::time::Duration;

/// Per-rule figures of a replay: the rule and the engine's counters for it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSummary {
    pub id: String,
    pub name: String,
    pub stats: crate::engine::RuleStats,
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Lines read (blank lines excluded).
    pub lines: u64,
    /// Events run through the engine.
    pub events: u64,
    pub bad_lines: u64,
    /// Events without a readable timestamp (run at the previous event's time).
    pub untimed: u64,
    /// Events older than one already run (outside the reorder window).
    pub late: u64,
    /// Processes the lineage tracker could not track (its sets were full).
    pub lineage_dropped: u64,
    /// Events that left the reorder window before it held `reorder_window` events,
    /// because what it held was over `reorder_bytes`.
    pub reorder_early: u64,
    /// Events too large for the guest's data region: not evaluated.
    pub oversized: u64,
    /// Host calls that failed (a full guest heap).
    pub host_failures: u64,
    /// Values captured at sequence steps that found no room in guest memory when
    /// written back for a check or a pipe (they read as null).
    pub captures_dropped: u64,
    /// Event conditions the bundle's needs skipped: (event, predicate) pairs where the
    /// event could not satisfy the predicate (docs/bundle-format.md, `NEEDS`).
    pub needs_skipped: u64,
    pub alerts: u64,
    /// Alerts of rules with an action that a live run could not act on (its queue was full).
    pub acted_dropped: u64,
    pub elapsed: Duration,
    pub rules: Vec<RuleSummary>,
    /// The bundle's hand-written predicates (docs/abi.md), in `CUSTOM` order.
    pub custom: Vec<crate::custom::CustomStats>,
}

impl Summary {
    /// What the replay dropped at its bounds, over all rules.
    pub fn losses(&self) -> Losses {
        let mut losses = Losses {
            lineage_dropped: self.lineage_dropped,
            oversized: self.oversized,
            captures_dropped: self.captures_dropped,
            host_failures: self.host_failures,
            acted_dropped: self.acted_dropped,
            reorder_early: self.reorder_early,
            ..Losses::default()
        };
        losses.add_rules(self.rules.iter().map(|rule| &rule.stats));
        losses
    }

    /// The human summary written to stderr at the end of a replay.
    pub fn render(&self) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 { self.events as f64 / seconds } else { 0.0 };
        let mut text = format!(
            "replayed {} events in {:.3} s ({:.0} events/s): {} alerts, {} bad lines, {} late, {} without timestamp, {} oversized\n",
            self.events, seconds, rate, self.alerts, self.bad_lines, self.late, self.untimed, self.oversized
        );
        // Oversized events are on the first line already.
        if let Some(losses) = (Losses { oversized: 0, ..self.losses() }).render() {
            text.push_str(&format!("dropped at their bounds: {losses}\n"));
        }
        if self.needs_skipped > 0 {
            text.push_str(&format!("{} event conditions not run: their event lacked the literals they need (the bundle's needs)\n", self.needs_skipped));
        }
        let mut rules: Vec<&RuleSummary> =
            self.rules.iter().filter(|rule| rule.stats.matches > 0 || rule.stats.traps > 0 || rule.stats.time > Duration::ZERO).collect();
        rules.sort_by(|a, b| b.stats.time.cmp(&a.stats.time).then(b.stats.matches.cmp(&a.stats.matches)));
        if !rules.is_empty() {
            text.push_str(&format!("{:>9} {:>9} {:>10}  rule\n", "matches", "alerts", "time (ms)"));
        }
        for rule in rules.iter().take(20) {
            let stats = &rule.stats;
            let traps = if stats.traps > 0 { format!(" ({} traps: disabled)", stats.traps) } else { String::new() };
            let dropped = if stats.dropped > 0 { format!(" ({} dropped by a full pipe)", stats.dropped) } else { String::new() };
            let evicted = stats.sequence.evicted + stats.join.evicted + stats.sample.evicted;
            let lost = stats.sequence.expired + evicted + stats.keys_dropped;
            let sequence = if lost > 0 {
                format!(" (partial matches: {} expired, {evicted} evicted at the cap; {} keys dropped)", stats.sequence.expired, stats.keys_dropped)
            } else {
                String::new()
            };
            text.push_str(&format!(
                "{:>9} {:>9} {:>10.1}  {}{traps}{dropped}{sequence}\n",
                stats.matches,
                stats.alerts,
                stats.time.as_secs_f64() * 1e3,
                rule.name
            ));
        }
        if rules.len() > 20 {
            text.push_str(&format!("… and {} more rules with matches\n", rules.len() - 20));
        }
        if !self.custom.is_empty() {
            text.push_str(&format!("{:>9} {:>9}  hand-written predicate\n", "calls", "true"));
        }
        for predicate in &self.custom {
            let mut notes = Vec::new();
            if predicate.oversized > 0 {
                notes.push(format!("{} views too large (null)", predicate.oversized));
            }
            if predicate.captures_dropped > 0 {
                notes.push(format!("{} captures dropped (another type than declared, or too large)", predicate.captures_dropped));
            }
            if let Some(reason) = &predicate.disabled {
                notes.push(format!("DISABLED, {reason}; {} calls since were null", predicate.skipped));
            }
            let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
            text.push_str(&format!("{:>9} {:>9}  {} ({}){notes}\n", predicate.calls, predicate.matched, predicate.name, predicate.runtime));
        }
        text
    }
}
