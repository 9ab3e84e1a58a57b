//! What a run dropped at its bounds, in one place: the replay's summary, `kestrel run`'s
//! stats line and its metrics all show every counter here (ARCHITECTURE.md: no drop is
//! silent), while the run goes and at its end.

use crate::engine::RuleStats;

/// Everything the engine and the replay dropped, evicted or could not do because a
/// bound was reached. Counters only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Losses {
    /// Partial matches of sequences, open join keys and sample keys evicted at their
    /// cap (`--max-partials`), over all rules.
    pub evicted: u64,
    /// Join-key values over the per-hit limit of a multi-value key.
    pub keys_dropped: u64,
    /// Results a full pipe buffer dropped (`--max-buffered`).
    pub pipe_dropped: u64,
    /// Processes the lineage tracker could not track (its sets were full).
    pub lineage_dropped: u64,
    /// Events whose fields did not fit the guest's data region (not evaluated).
    pub oversized: u64,
    /// Captured values with no room in guest memory when written back (read as null).
    pub captures_dropped: u64,
    /// Host calls that failed (the guest heap was full).
    pub host_failures: u64,
    /// Alerts of rules with an action that were not acted on (the queue was full).
    pub acted_dropped: u64,
    /// Events that left the reorder window early, for its memory bound (`--reorder-bytes`).
    pub reorder_early: u64,
}

impl Losses {
    /// The rules' share: evictions, dropped join keys and pipe drops, summed.
    pub fn add_rules<'r>(&mut self, rules: impl IntoIterator<Item = &'r RuleStats>) {
        for rule in rules {
            self.evicted += rule.sequence.evicted + rule.join.evicted + rule.sample.evicted;
            self.keys_dropped += rule.keys_dropped;
            self.pipe_dropped += rule.dropped;
        }
    }

    /// Each counter: its metric name, its help text and its value.
    pub fn metrics(&self) -> [(&'static str, &'static str, u64); 9] {
        [
            ("kestrel_partials_evicted_total", "Sequence partial matches, join keys and sample keys evicted at their cap.", self.evicted),
            ("kestrel_join_keys_dropped_total", "Join-key values over the per-hit limit of a multi-value key.", self.keys_dropped),
            ("kestrel_pipe_dropped_total", "Results dropped by a full pipe buffer.", self.pipe_dropped),
            ("kestrel_lineage_dropped_total", "Processes the lineage tracker could not track (its sets were full).", self.lineage_dropped),
            ("kestrel_oversized_total", "Events too large for the guest's data region, not evaluated.", self.oversized),
            ("kestrel_captures_dropped_total", "Captured values with no room in guest memory (read as null).", self.captures_dropped),
            ("kestrel_host_failures_total", "Host calls that failed (guest heap full).", self.host_failures),
            ("kestrel_actions_dropped_total", "Alerts of rules with an action not acted on (queue full).", self.acted_dropped),
            ("kestrel_reorder_early_total", "Events that left the reorder window early, for its memory bound.", self.reorder_early),
        ]
    }

    /// The counters that are not zero, in words, or `None` when nothing was lost.
    pub fn render(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.evicted, "partial matches or keys evicted at the cap (--max-partials)"),
            (self.keys_dropped, "join-key values over the per-hit limit"),
            (self.pipe_dropped, "results dropped by a full pipe (--max-buffered)"),
            (self.lineage_dropped, "processes the lineage tracker could not track"),
            (self.oversized, "events too large for guest memory (not evaluated)"),
            (self.captures_dropped, "captured values with no room in guest memory (read as null)"),
            (self.host_failures, "host calls failed (guest heap full)"),
            (self.acted_dropped, "alerts with an action not acted on (queue full)"),
            (self.reorder_early, "events left the reorder window early (--reorder-bytes)"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every counter reaches the words and the metrics, under a name of its own.
    #[test]
    fn every_counter_is_rendered_and_has_a_metric() {
        assert_eq!(Losses::default().render(), None);
        let fields = 9;
        for which in 0..fields {
            let mut values = [0u64; 9];
            values[which] = 7 + which as u64;
            let [evicted, keys_dropped, pipe_dropped, lineage_dropped, oversized, captures_dropped, host_failures, acted_dropped, reorder_early] = values;
            let losses =
                Losses { evicted, keys_dropped, pipe_dropped, lineage_dropped, oversized, captures_dropped, host_failures, acted_dropped, reorder_early };
            let text = losses.render().expect("something was lost");
            assert!(text.starts_with(&format!("{} ", 7 + which)) && !text.contains(", "), "{text}");
            let metrics = losses.metrics();
            assert_eq!(metrics.iter().filter(|(_, _, value)| *value > 0).count(), 1);
            assert_eq!(metrics[which].2, 7 + which as u64, "metric {which} is counter {which}");
        }
        let names: std::collections::BTreeSet<&str> = Losses::default().metrics().iter().map(|(name, _, _)| *name).collect();
        assert_eq!(names.len(), fields);
    }
}
