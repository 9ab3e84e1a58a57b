//! Decisions at a hook: would this event, if it happened now, be a match of a rule that
//! acts (`block`, `kill`)? The exec hook asks while the kernel holds an exec; the answer
//! reads the engine's state (open partial matches) and changes none of it.
//!
//! An event query decides on its own condition. A sequence decides at its last positive
//! step: the step's condition holds, and for one of the event's join keys a partial match
//! waits for that step, within its maxspan (`sequence::Machine::would_complete`).

use super::sequences::{Executor, StepRole};
use super::{DEADLINE_TICKS, Engine, Event};
use crate::guest::Area;
use kestrel_bundle::bundle::Query;

impl Engine {
    /// The rules among `acting` (rule indexes) that `event` would match now.
    pub fn decide(&mut self, event: &Event, acting: &[usize]) -> Vec<usize> {
        let mut decided = Vec::new();
        if acting.is_empty() || !self.is_candidate(event) {
            return decided;
        }
        let layout = self.layout;
        let data_start = layout.data_offset as usize;
        let mut area = Area::new(data_start, data_start + layout.data_capacity as usize);
        if !self.write_event(event, 0, &mut area) {
            self.stats.oversized += 1;
            return decided;
        }
        self.spare_data = area.next;
        if self.lineage.is_some() {
            // The tracker learns from what it answers about: answer on a copy, so an
            // exec that may never happen leaves no trace (a replay never sees it).
            let saved = self.lineage.clone();
            self.answer_lineage(std::slice::from_ref(event), &[0]);
            self.lineage = saved;
        }
        if let Some(custom) = self.store.data_mut().custom.as_mut() {
            custom.stash.clear();
        }
        self.store.set_epoch_deadline(DEADLINE_TICKS);
        if self.eval.call(&mut self.store, 1).is_err() {
            // A trap here disables nothing: the batch path will meet it and count it.
            return decided;
        }
        let results = layout.results_offset as usize;
        let result_count = layout.result_count as usize;
        let hits: Vec<usize> =
            self.memory.data(&self.store)[results..results + result_count].iter().enumerate().filter(|(_, result)| **result == 1).map(|(id, _)| id).collect();
        let program = self.program.clone();
        for &rule in acting {
            let matched = match program.bundle.rules.get(rule).map(|rule| &rule.query) {
                Some(Query::Event { predicate }) => hits.contains(&(*predicate as usize)),
                Some(Query::Sequence { .. }) => self.completes_sequence(rule, &hits, event.timestamp),
                _ => false,
            };
            if matched {
                decided.push(rule);
            }
        }
        if let Some(custom) = self.store.data_mut().custom.as_mut() {
            custom.stash.clear();
        }
        decided
    }

    /// Whether the event (position 0 of the batch, predicates run: `hits`) is a hit of
    /// the rule's last positive step that completes a waiting partial match.
    fn completes_sequence(&mut self, rule: usize, hits: &[usize], now: i64) -> bool {
        let Some(run) = self.sequences.iter().position(|sequence| sequence.rule == rule) else { return false };
        let Some(last) = self.sequences[run].roles.iter().rposition(|role| matches!(role, StepRole::Positive(_))) else { return false };
        let StepRole::Positive(position) = self.sequences[run].roles[last] else { return false };
        let step_hit = hits.iter().any(|id| self.steps_of[*id].contains(&(run, Some(last))));
        if !step_hit {
            return false;
        }
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        self.step_keys(run, last, 0, &mut keys, &mut values);
        if let Some(check) = self.sequences[run].check_of(last) {
            keys.retain(|key| self.check_step(run, position, check, key, 0));
        }
        let Executor::Sequence(machine) = &self.sequences[run].machine else { return false };
        keys.iter().any(|key| machine.would_complete(key, now))
    }
}
