//! Alerts as NDJSON: one ECS-style document per rule output (README, "Alerts").
//!
//! ```json
//! {"@timestamp":"2024-05-04T12:00:00.001Z","event":{"kind":"alert"},
//!  "rule":{"id":"…","name":"…","severity":"high","risk_score":73.0},
//!  "events":[{…the matched event, verbatim…}]}
//! ```
//!
//! `@timestamp` is the time of the latest matched event (for a `count` output, of the
//! last event read), never the wall clock: two replays of the same input write the
//! same bytes. `unique_count` adds `"kestrel":{"count":N,"percent":P}`; `count` writes
//! `"kestrel":{"key":[…],"count":N,"percent":P}` and no events. A sequence lists one
//! event per step, `null` for a missing-event step (`![...]`). A sequence with `by` and
//! a sample add `"join_key":[…]` to the `kestrel` object: the values of its key. A
//! rule calling hand-written predicates adds what they captured on its events:
//! `"captures":{"<predicate>":{"<name>":value,…},…}` (a later event's values win). A rule
//! with an action (docs/enforcement.md) adds `"action":"block"` or `"action":"kill"`.

use crate::engine::Alert;
use crate::time::format_rfc3339;
use kestrel_bundle::bundle::{Bundle, Query};
use kestrel_bundle::semantics::Value;

/// Appends one alert document and its newline to `out`. `now` is the timestamp of the
/// last event read, used when the alert carries no event.
pub fn render(alert: &Alert, bundle: &Bundle, now: i64, out: &mut Vec<u8>) {
    let rule = &bundle.rules[alert.rule];
    let timestamp = alert.events.iter().map(|event| event.timestamp).max().unwrap_or(now);
    out.extend_from_slice(b"{\"@timestamp\":");
    string(&format_rfc3339(timestamp), out);
    out.extend_from_slice(b",\"event\":{\"kind\":\"alert\"},\"rule\":{\"id\":");
    string(&rule.id, out);
    out.extend_from_slice(b",\"name\":");
    string(&rule.name, out);
    if !rule.severity.is_empty() {
        out.extend_from_slice(b",\"severity\":");
        string(&rule.severity, out);
    }
    if let Some(score) = rule.risk_score {
        out.extend_from_slice(b",\"risk_score\":");
        number(score, out);
    }
    out.push(b'}');
    // One `kestrel` object with whichever members the alert has.
    let mut members: Vec<Vec<u8>> = Vec::new();
    let list = |values: &[Value]| serde_json::Value::Array(values.iter().map(Value::to_json).collect()).to_string();
    if let Some(key) = &alert.join_key {
        members.push(format!("\"join_key\":{}", list(key)).into_bytes());
    }
    if let Some((count, percent)) = alert.count {
        let mut member = format!("\"count\":{count},\"percent\":").into_bytes();
        number(percent, &mut member);
        members.push(member);
    }
    if let Some((key, count, percent)) = &alert.key_count {
        let mut member = format!("\"key\":{},\"count\":{count},\"percent\":", list(key)).into_bytes();
        number(*percent, &mut member);
        members.push(member);
    }
    if let Some(action) = bundle.action_of(alert.rule) {
        let name = match action.action {
            kestrel_bundle::enforce::Action::Block => "block",
            kestrel_bundle::enforce::Action::Kill(_) => "kill",
        };
        members.push(format!("\"action\":\"{name}\"").into_bytes());
    }
    if let Some(captures) = captures(alert, bundle) {
        members.push(format!("\"captures\":{captures}").into_bytes());
    }
    if !members.is_empty() {
        out.extend_from_slice(b",\"kestrel\":{");
        out.extend_from_slice(&members.join(&b',')[..]);
        out.push(b'}');
    }
    out.extend_from_slice(b",\"events\":[");
    // A sequence's missing steps (`![...]`) are `null`, so events keep their step's place.
    let steps = match rule.query {
        Query::Sequence { table } => bundle.sequences.as_deref().and_then(|tables| tables.get(table as usize)).map(|table| table.steps.as_slice()),
        _ => None,
    };
    let missing = steps.filter(|steps| steps.iter().filter(|step| !step.missing).count() == alert.events.len() && steps.iter().any(|step| step.missing));
    let mut events = alert.events.iter();
    let places = missing.map_or(alert.events.len(), <[_]>::len);
    for idx in 0..places {
        if idx > 0 {
            out.push(b',');
        }
        let event = if missing.is_some_and(|steps| steps[idx].missing) { None } else { events.next() };
        match event {
            Some(event) => out.extend_from_slice(event.raw.trim().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b"]}\n");
}

fn string(text: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn number(value: f64, out: &mut Vec<u8>) {
    match serde_json::Number::from_f64(value) {
        Some(number) => out.extend_from_slice(number.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// What the hand-written predicates the rule calls captured on its events, as a JSON
/// object by predicate name; `None` when they captured nothing.
fn captures(alert: &Alert, bundle: &Bundle) -> Option<String> {
    let predicates = bundle.custom.as_deref()?;
    let mut by_predicate: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for event in &alert.events {
        for captured in event.captures.iter().flat_map(|captures| captures.iter()) {
            let Some(predicate) = predicates.get(captured.predicate as usize) else { continue };
            if !predicate.rules.contains(&(alert.rule as u32)) {
                continue;
            }
            let entry = by_predicate.entry(predicate.name.clone()).or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(values) = entry {
                for (name, value) in captured.values.iter() {
                    values.insert(name.clone(), value.to_json());
                }
            }
        }
    }
    (!by_predicate.is_empty()).then(|| serde_json::Value::Object(by_predicate).to_string())
}
