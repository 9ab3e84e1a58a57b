//! Offline replay: NDJSON events in, alerts out, through the same [`Engine`] the live
//! modes use.
//!
//! Each line is one event. Only the fields the bundle reads (plus its timestamp and
//! category fields) are decoded ([`Projection`]). A line that is not a JSON object is
//! reported with its source and line number, counted, and skipped; nothing else is
//! lost. Events run in timestamp order (stable: equal timestamps keep input order)
//! through a reorder window of bounded size: an event older than one already run is
//! run anyway, late, and counted. `Order::Input` runs events as they come.
//!
//! Lines come in two ways that share everything after parsing: [`Replay::read_all`]
//! reads a whole input (parsed on worker threads), and [`Replay::push_line`] takes one
//! line at a time from a live producer, with [`Replay::flush`] to evaluate what it
//! pushed and write the alerts now (`crate::feed` records both in a capture).

use crate::alert;
use crate::engine::{Alert, Candidates, Categories, DEFAULT_MAX_BUFFERED, Engine, EngineError, Event, Line, Match};
use crate::losses::Losses;
use crate::ndjson::{JsonError, Projection, RawValue, raw_strings, raw_value, settle, settle_one};
use crate::parallel::{Blocks, Parsed, ParsedBlock, read_blocks};
use crate::prefilter::{LineFilter, PassedTimestamp, TimestampOnly};
use crate::program::Program;
use crate::reorder::{Held, Pending, Window};
pub use crate::summary::{RuleSummary, Summary};
use crate::time::{MinuteCache, to_nanos};
use kestrel_bundle::bundle::FieldKind;
use kestrel_bundle::schema::{FieldType, TimestampUnit};
use kestrel_bundle::semantics::Value;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events held back by default to restore timestamp order: each as its timestamp and
/// its matches (16 bytes for an event that matched nothing), or, when the bundle uses
/// lineage or sequences and events must be evaluated in order, whole (with their lines
/// and fields: about 270 MB for the bench's 1 KB events read by the Linux rule set, 4.2
/// KB each; [`DEFAULT_REORDER_BYTES`] bounds it).
pub const DEFAULT_REORDER_WINDOW: usize = 1 << 16;
/// The memory the reorder window's events may hold by default (their lines, fields and
/// matches, estimated: `reorder::Held::bytes`): 512 MiB, room for the default window of
/// whole events when events are about 1 KB with 85 fields read (about 4 KB each held,
/// as a bundle with sequences holds them; the Linux rule set of ../shared/corpus).
pub const DEFAULT_REORDER_BYTES: usize = 512 << 20;

/// Rendered alerts are written out whenever they reach this many bytes.
const RENDERED_BYTES: usize = 4 << 20;

/// Events handed to the engine at once; pushed events wait for at most this many.
pub const CHUNK: usize = 1024;
/// And at most this many bytes of them (their lines; and their field slots when they wait
/// whole), whatever their count: 1,024 lines of 16 MiB would be 16 GiB.
pub const CHUNK_BYTES: usize = 32 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// By the schema's timestamp field, ties in input order.
    Timestamp,
    /// As read.
    Input,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub order: Order,
    /// Events held back to restore timestamp order.
    pub reorder_window: usize,
    /// The memory those events may hold; past it, the earliest leave the window early.
    pub reorder_bytes: usize,
    /// Results a buffering pipe keeps per rule.
    pub max_buffered: usize,
    /// Partial matches a sequence rule keeps (keys of a join or a sample rule).
    pub max_partials: usize,
    /// Longer lines are bad lines.
    pub max_line_bytes: usize,
    /// Estimate each rule's share of evaluation time by timing one batch in `PROFILE_EVERY`.
    pub profile: bool,
    /// Write a progress line to stderr (for terminals).
    pub progress: bool,
    /// Threads parsing lines (the engine runs on the caller's); 1 parses on the caller's.
    pub threads: usize,
    /// Input is cut into blocks of about this many bytes (whole lines) for parsing.
    pub block_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            order: Order::Timestamp,
            reorder_window: DEFAULT_REORDER_WINDOW,
            reorder_bytes: DEFAULT_REORDER_BYTES,
            max_buffered: DEFAULT_MAX_BUFFERED,
            max_partials: crate::sequence::DEFAULT_MAX_PARTIALS,
            max_line_bytes: 16 << 20,
            profile: false,
            progress: false,
            threads: 1,
            block_bytes: crate::parallel::BLOCK_BYTES,
        }
    }
}

/// A line that could not be read as an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// The input's name (`-` for stdin).
    pub source: String,
    /// From 1.
    pub line: u64,
    /// Byte column from 1, when known.
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.column {
            Some(column) => write!(f, "{}:{}:{}: {}", self.source, self.line, column, self.message),
            None => write!(f, "{}:{}: {}", self.source, self.line, self.message),
        }
    }
}

/// A line of a parsed block (checked as UTF-8 by the parser).
fn text_of(text: &[u8], line: std::ops::Range<usize>) -> &str {
    std::str::from_utf8(&text[line]).unwrap_or_default()
}

/// Lines pushed one at a time ([`Replay::push_line`]) whose events wait to be
/// evaluated together: the events (without their lines), and their lines one after
/// another in `text`.
#[derive(Default)]
struct Pushed {
    events: Vec<Event>,
    text: String,
    lines: Vec<Range<usize>>,
    /// Lines pushed so far, blank and bad ones included (the last one's number).
    count: u64,
}

/// The message of a line over the length limit (as `parallel` words it).
fn too_long(len: usize, limit: usize) -> String {
    format!("line of {len} bytes or more, over the limit of {limit} bytes")
}

/// Turns lines into engine events: the projection and the special fields.
#[derive(Clone)]
pub struct EventReader {
    projection: Projection,
    timestamp: Special,
    unit: TimestampUnit,
    category: Special,
    /// The bundle's categories, by id: few, so a scan beats hashing each event's.
    categories: Vec<String>,
    /// Date fields (index, unit): held as nanoseconds since the epoch.
    dates: Vec<(usize, TimestampUnit)>,
    /// Address fields: strings spelling an address are held as addresses.
    addresses: Vec<usize>,
    scratch: Vec<Option<Value>>,
    raw: Vec<Option<Range<usize>>>,
    /// Where the projected strings of the line are, not decoded yet.
    deferred: Vec<Option<Range<usize>>>,
    /// The events some predicate may run on: the others' fields are not decoded.
    candidates: Candidates,
    /// The minute of the last timestamp read: the next one in the same minute is read
    /// from its seconds on.
    minute: MinuteCache,
    /// The bundle's prefilter, and how the lines it passes over have their timestamp read.
    prefilter: Option<(LineFilter, TimestampOnly)>,
}

/// What [`EventReader`] makes of a line: its event and its own timestamp (the event's
/// is 0 without one), or why it is a bad line (the byte column, when known, and a
/// message).
pub type LineRead = Result<(Event, Option<i64>), (Option<usize>, String)>;

/// Where the reader finds a special field (the timestamp, the category).
#[derive(Clone, Copy, Debug)]
enum Special {
    /// A bundle field: decoded with the others, at this index.
    Field(usize),
    /// Read by the reader only: its text in the line, at this raw index (no allocation).
    Raw(usize),
}

impl Special {
    fn new<'n>(name: &'n str, fields: &[&str], raw: &mut Vec<&'n str>) -> Special {
        match fields.iter().position(|field| *field == name) {
            Some(idx) => Special::Field(idx),
            None => {
                raw.push(name);
                Special::Raw(raw.len() - 1)
            }
        }
    }
}

impl EventReader {
    pub fn new(program: &Program) -> EventReader {
        let bundle = &program.bundle;
        let names: Vec<&str> = bundle.fields.iter().map(|field| field.name.as_str()).collect();
        let mut raw = Vec::new();
        let timestamp = Special::new(&bundle.manifest.timestamp_field, &names, &mut raw);
        let category = Special::new(&bundle.manifest.category_field, &names, &mut raw);
        let projection = Projection::with_raw(names, raw);
        let categories = bundle.functions.categories.clone();
        let dates = bundle
            .fields
            .iter()
            .enumerate()
            .filter(|(_, field)| field.kind == FieldKind::Typed(FieldType::Date))
            .map(|(idx, field)| (idx, if field.name == bundle.manifest.timestamp_field { bundle.manifest.timestamp_unit } else { TimestampUnit::Rfc3339 }))
            .collect();
        let addresses = bundle.fields.iter().enumerate().filter(|(_, field)| field.kind == FieldKind::Typed(FieldType::Ip)).map(|(idx, _)| idx).collect();
        EventReader {
            projection,
            timestamp,
            unit: bundle.manifest.timestamp_unit,
            category,
            categories,
            dates,
            addresses,
            scratch: Vec::new(),
            raw: Vec::new(),
            deferred: Vec::new(),
            candidates: Candidates::of(bundle),
            minute: MinuteCache::default(),
            prefilter: LineFilter::of(bundle).map(|filter| (filter, TimestampOnly::new(&bundle.manifest.timestamp_field))),
        }
    }

    /// The event of a line, and its timestamp if it has one (the event's own
    /// `timestamp` is 0 without one). Errors carry the byte column, when known.
    pub fn read(&mut self, line: &str) -> LineRead {
        let (mut event, timestamp) = self.read_fields(line)?;
        event.raw = Line::new(line);
        Ok((event, timestamp))
    }

    /// [`EventReader::read`] without copying the line into the event (its `raw` is
    /// empty): for callers that keep the line and copy it only if the event matches.
    pub fn read_fields(&mut self, line: &str) -> LineRead {
        if let Some(read) = self.read_passed_over(line) {
            return read;
        }
        self.projection.read_deferred(line, &mut self.scratch, &mut self.raw, &mut self.deferred).map_err(|error| (Some(error.column), error.message))?;
        for special in [self.timestamp, self.category] {
            if let Special::Field(idx) = special {
                settle_one(line, &mut self.scratch, &mut self.deferred, idx);
            }
        }
        let unit = self.unit;
        let timestamp = match self.timestamp {
            Special::Field(idx) => self.scratch[idx].as_ref().and_then(|value| to_nanos(value, unit)),
            Special::Raw(idx) => self.raw_timestamp(line, self.raw[idx].clone())?,
        };
        let mut categories = Categories::default();
        let known = &self.categories;
        let mut add = |name: &str| {
            if let Some(idx) = known.iter().position(|known| known == name) {
                categories.insert(idx as u32);
            }
        };
        match self.category {
            Special::Field(idx) => match &self.scratch[idx] {
                Some(Value::Str(name)) => add(name),
                Some(Value::Array(items)) => {
                    items.iter().filter_map(|item| if let Value::Str(name) = item { Some(name) } else { None }).for_each(|name| add(name))
                }
                _ => {}
            },
            Special::Raw(idx) => {
                if let Some(range) = self.raw[idx].clone() {
                    raw_strings(&line[range.clone()], add).map_err(|error| in_raw(&range, error))?;
                }
            }
        }
        if !self.candidates.has(&categories) {
            // No predicate runs on it: its fields are never read (the scratch vector
            // stays for the next line).
            return Ok((Event { timestamp: timestamp.unwrap_or(0), categories, fields: Vec::new(), raw: Line::default() }, timestamp));
        }
        settle(line, &mut self.scratch, &mut self.deferred);
        // The scratch vector becomes the event's (the projection sizes it afresh).
        let mut fields = std::mem::take(&mut self.scratch);
        for (idx, unit) in &self.dates {
            if let Some(value) = &mut fields[*idx] {
                *value = as_date(value, *unit);
            }
        }
        for idx in &self.addresses {
            if let Some(value) = &mut fields[*idx] {
                *value = as_address(value);
            }
        }
        Ok((Event { timestamp: timestamp.unwrap_or(0), categories, fields, raw: Line::default() }, timestamp))
    }

    /// The event of a line the bundle's prefilter passes over, if it does: no rule can
    /// match it, so its time is all the replay needs (the rest of the line is checked as
    /// a skipped value is).
    fn read_passed_over(&mut self, line: &str) -> Option<LineRead> {
        let (filter, timestamp_only) = self.prefilter.as_ref()?;
        if !filter.passes_over(line) {
            return None;
        }
        let timestamp = match timestamp_only.read(line, &mut self.raw) {
            Err(error) => return Some(Err((Some(error.column), error.message))),
            Ok(PassedTimestamp::Text(text)) => self.minute.text_to_nanos(text, self.unit),
            Ok(PassedTimestamp::Raw(range)) => match self.raw_timestamp(line, range) {
                Ok(timestamp) => timestamp,
                Err(error) => return Some(Err(error)),
            },
        };
        Some(Ok((Event { timestamp: timestamp.unwrap_or(0), categories: Categories::default(), fields: Vec::new(), raw: Line::default() }, timestamp)))
    }

    /// The time of a timestamp read raw, at `range` of `line` (if the line has one).
    fn raw_timestamp(&mut self, line: &str, range: Option<Range<usize>>) -> Result<Option<i64>, (Option<usize>, String)> {
        let Some(range) = range else { return Ok(None) };
        Ok(match raw_value(&line[range.clone()]).map_err(|error| in_raw(&range, error))? {
            RawValue::Text(text) => self.minute.text_to_nanos(&text, self.unit),
            RawValue::Other(value) => to_nanos(&value, self.unit),
        })
    }
}

/// An error in a raw value at `range` of the line, located in the line.
fn in_raw(range: &Range<usize>, error: JsonError) -> (Option<usize>, String) {
    (Some(range.start + error.column), error.message)
}

/// A date field's value as the engine holds it: nanoseconds since the epoch (elements
/// of an array each); a value that is not a date in `unit` stays as it is.
fn as_date(value: &Value, unit: TimestampUnit) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|item| as_date(item, unit)).collect()),
        other => to_nanos(other, unit).map_or_else(|| other.clone(), Value::Long),
    }
}

/// An ip field's value as the engine holds it: a string spelling an address becomes
/// the (canonical) address, elements of an array each; anything else stays as it is.
fn as_address(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(as_address).collect()),
        Value::Str(text) => kestrel_bundle::semantics::patterns::parse_ip(text).map_or_else(|| value.clone(), |address| Value::Ip(address.to_canonical())),
        other => other.clone(),
    }
}

/// Alerts of rules with an action a live run has not taken yet, at most.
pub const MAX_ACTED: usize = 65_536;

/// An alert of a rule with an action: the rule and its events' lines, in step order.
#[derive(Clone, Debug, PartialEq)]
pub struct Acted {
    pub rule: usize,
    pub events: Vec<Line>,
}

/// A replay in progress: feed it lines, then finish it.
pub struct Replay<'w> {
    engine: Engine,
    reader: EventReader,
    options: Options,
    alerts_out: &'w mut dyn Write,
    window: Window,
    /// Scratch for the matches of a block.
    matches: Vec<Match>,
    /// Scratch for the events of a block evaluated as read, and their lines.
    read: (Vec<Event>, Vec<Range<usize>>),
    /// Events released from the window, for ordered evaluation.
    chunk: Vec<Event>,
    /// What they take: their lines and field slots (`release`).
    chunk_bytes: usize,
    /// Lines pushed one at a time, not evaluated yet.
    pushed: Pushed,
    /// Events handed to the engine so far (the next chunk's first index).
    run: usize,
    arrivals: u64,
    /// Timestamp of the last event read, for untimed events.
    last_read: i64,
    /// Timestamp of the last event run, to spot late events.
    last_run: Option<i64>,
    alerts: Vec<Alert>,
    /// The rules with an action decided at the exec hook (`RuleAction::at_exec`).
    at_exec: Vec<usize>,
    /// Alerts of rules with an action, until the caller takes them (bounded), when kept.
    acted: Vec<Acted>,
    keep_acted: bool,
    rendered: Vec<u8>,
    /// The first error writing alerts; reading stops at it.
    write_error: Option<std::io::Error>,
    summary: Summary,
    started: Instant,
    last_progress: Instant,
}

impl<'w> Replay<'w> {
    /// The hand-written predicates' counters so far.
    pub fn custom_stats(&self) -> Vec<crate::custom::CustomStats> {
        self.engine.custom_stats()
    }

    /// What the run has dropped at its bounds so far.
    pub fn losses(&self) -> Losses {
        Losses { acted_dropped: self.summary.acted_dropped, reorder_early: self.summary.reorder_early, ..self.engine.losses() }
    }

    /// Event conditions the bundle's needs skipped so far.
    pub fn needs_skipped(&self) -> u64 {
        self.engine.stats.needs_skipped
    }

    pub fn new(program: Arc<Program>, options: Options, alerts_out: &'w mut dyn Write) -> Result<Replay<'w>, EngineError> {
        let reader = EventReader::new(&program);
        let at_exec = program.bundle.actions.iter().filter(|action| action.at_exec).map(|action| action.rule as usize).collect();
        let mut engine = Engine::new(program, options.max_buffered)?;
        engine.set_max_state(options.max_partials);
        engine.set_profiling(options.profile);
        let started = Instant::now();
        Ok(Replay {
            engine,
            reader,
            options,
            alerts_out,
            window: Window::default(),
            matches: Vec::new(),
            read: (Vec::new(), Vec::new()),
            chunk: Vec::with_capacity(CHUNK),
            chunk_bytes: 0,
            pushed: Pushed::default(),
            run: 0,
            arrivals: 0,
            last_read: 0,
            last_run: None,
            alerts: Vec::new(),
            at_exec,
            acted: Vec::new(),
            keep_acted: false,
            rendered: Vec::new(),
            write_error: None,
            summary: Summary::default(),
            started,
            last_progress: started,
        })
    }

    /// Reads every line of `input`, named `source` in messages.
    pub fn read_all(&mut self, source: &str, input: impl std::io::Read + Send, bad: &mut dyn FnMut(&BadLine)) -> std::io::Result<()> {
        // Lines pushed before come first.
        self.evaluate_pushed();
        let reader = self.reader.clone();
        let threads = self.options.threads.max(1);
        let blocks = Blocks { line_limit: self.options.max_line_bytes, block_bytes: self.options.block_bytes.max(1), threads };
        read_blocks(input, blocks, &reader, &mut |block| self.take_block(source, block, bad))?;
        match self.write_error.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// One parsed block of lines, in input order. Returns false to stop reading (the
    /// alerts cannot be written).
    fn take_block(&mut self, source: &str, block: &mut ParsedBlock, bad: &mut dyn FnMut(&BadLine)) -> bool {
        let ordered = self.engine.needs_ordered_evaluation();
        let (mut events, mut lines) = std::mem::take(&mut self.read);
        for (offset, parsed) in block.lines.drain(..).enumerate() {
            let (mut event, timestamp, line) = match parsed {
                Parsed::Blank => continue,
                Parsed::Bad { column, message } => {
                    self.summary.lines += 1;
                    self.summary.bad_lines += 1;
                    bad(&BadLine { source: source.to_string(), line: block.first_line + offset as u64, column, message });
                    continue;
                }
                Parsed::Event { event, timestamp, line } => (event, timestamp, line),
            };
            self.summary.lines += 1;
            self.stamp(&mut event, timestamp);
            self.arrivals += 1;
            if ordered {
                event.raw = Line::new(text_of(&block.text, line));
                self.admit(Pending::new(event.timestamp, self.arrivals, Held::Event(Box::new(event))));
            } else {
                events.push(event);
                lines.push(line);
            }
        }
        if !events.is_empty() {
            self.evaluate_events(&events, &|offset| text_of(&block.text, lines[offset].clone()));
        }
        events.clear();
        lines.clear();
        self.read = (events, lines);
        self.flush_chunk();
        self.show_progress();
        self.write_error.is_none()
    }

    /// An event's time: its own, or the last event's when it has none (counted).
    fn stamp(&mut self, event: &mut Event, timestamp: Option<i64>) {
        match timestamp {
            Some(timestamp) => self.last_read = timestamp,
            None => {
                self.summary.untimed += 1;
                event.timestamp = self.last_read;
            }
        }
    }

    /// Rewrites the progress line, at most four times a second, when asked to.
    fn show_progress(&mut self) {
        if self.options.progress && self.last_progress.elapsed() >= Duration::from_millis(250) {
            self.last_progress = Instant::now();
            let seconds = self.started.elapsed().as_secs_f64();
            eprint!(
                "\r{} events, {} alerts, {} bad lines, {:.0} events/s   ",
                self.arrivals,
                self.summary.alerts,
                self.summary.bad_lines,
                self.arrivals as f64 / seconds
            );
        }
    }

    /// Feeds one line, one event, as a live producer hands it over: `source` names it in
    /// messages, and pushed lines are numbered from 1 in push order whatever their
    /// source (so a bad line's number is its line in `kestrel export`'s output).
    ///
    /// The line (with or without its `\n`) is read exactly as a line of
    /// [`Replay::read_all`] is: the same reader and limits, bad lines reported to `bad`
    /// and counted (a line over [`Options::max_line_bytes`], or one that holds a line
    /// break inside, is a bad line), blank lines skipped (their number is used). Events
    /// are evaluated in batches, at the latest when [`CHUNK`] of them (or [`CHUNK_BYTES`]
    /// of their lines) wait or at the next [`Replay::flush`]. With [`Order::Input`] the alerts are those `read_all`
    /// gives for the same lines in the same order; where a flush falls only moves where
    /// the engine's batches start, which changes an outcome only when guest memory runs
    /// short within a batch (`host_failures`, `captures_dropped`): a capture records
    /// its flush points so its replay cuts the same batches.
    ///
    /// Returns an error when alerts cannot be written (then and at each call after).
    pub fn push_line(&mut self, source: &str, line: &str, bad: &mut dyn FnMut(&BadLine)) -> std::io::Result<()> {
        self.pushed.count += 1;
        let number = self.pushed.count;
        // The line's own end, if it came with one, as `read_all` cuts lines.
        let line = line.strip_suffix('\n').map_or(line, |line| line.strip_suffix('\r').unwrap_or(line));
        if line.len() > self.options.max_line_bytes {
            self.push_bad(source, number, None, too_long(line.len(), self.options.max_line_bytes), bad);
        } else if !line.trim().is_empty() {
            let text = line.trim_end();
            if let Some(at) = memchr::memchr(b'\n', text.as_bytes()) {
                self.push_bad(source, number, Some(at + 1), "the line holds a line break".to_string(), bad);
            } else {
                match self.reader.read_fields(text) {
                    Ok((event, timestamp)) => self.take_pushed(event, timestamp, text),
                    Err((column, message)) => self.push_bad(source, number, column, message, bad),
                }
            }
        }
        self.write_status()
    }

    /// [`Replay::push_line`] for a line as bytes (a capture's): a line that is not
    /// UTF-8 is a bad line, as in [`Replay::read_all`].
    pub fn push_bytes(&mut self, source: &str, line: &[u8], bad: &mut dyn FnMut(&BadLine)) -> std::io::Result<()> {
        match std::str::from_utf8(line) {
            Ok(text) => self.push_line(source, text, bad),
            Err(_) if line.len() > self.options.max_line_bytes => self.push_line_of(source, line.len(), bad),
            Err(error) => {
                self.pushed.count += 1;
                self.push_bad(source, self.pushed.count, Some(error.valid_up_to() + 1), "the line is not UTF-8".to_string(), bad);
                self.write_status()
            }
        }
    }

    /// Pushes a line known only by its length `len` (a capture keeps no line over its
    /// record limit): a bad line, as one of that length over the limit.
    pub fn push_line_of(&mut self, source: &str, len: usize, bad: &mut dyn FnMut(&BadLine)) -> std::io::Result<()> {
        self.pushed.count += 1;
        let limit = self.options.max_line_bytes;
        let message = if len > limit { too_long(len, limit) } else { format!("line of {len} bytes, not kept") };
        self.push_bad(source, self.pushed.count, None, message, bad);
        self.write_status()
    }

    fn push_bad(&mut self, source: &str, line: u64, column: Option<usize>, message: String, bad: &mut dyn FnMut(&BadLine)) {
        self.summary.lines += 1;
        self.summary.bad_lines += 1;
        bad(&BadLine { source: source.to_string(), line, column, message });
    }

    /// A pushed line's event: into the reorder window, or (when conditions do not need
    /// order) held with the events waiting to be evaluated together.
    fn take_pushed(&mut self, mut event: Event, timestamp: Option<i64>, text: &str) {
        self.summary.lines += 1;
        self.stamp(&mut event, timestamp);
        self.arrivals += 1;
        if self.engine.needs_ordered_evaluation() {
            event.raw = Line::new(text);
            self.admit(Pending::new(event.timestamp, self.arrivals, Held::Event(Box::new(event))));
            return;
        }
        let start = self.pushed.text.len();
        self.pushed.text.push_str(text);
        self.pushed.lines.push(start..self.pushed.text.len());
        self.pushed.events.push(event);
        if self.pushed.events.len() >= CHUNK || self.pushed.text.len() >= CHUNK_BYTES {
            self.evaluate_pushed();
            self.write_alerts();
        }
    }

    /// Evaluates the pushed events waiting (the latest arrivals).
    fn evaluate_pushed(&mut self) {
        if self.pushed.events.is_empty() {
            return;
        }
        let mut events = std::mem::take(&mut self.pushed.events);
        let mut text = std::mem::take(&mut self.pushed.text);
        let mut lines = std::mem::take(&mut self.pushed.lines);
        self.evaluate_events(&events, &|offset| &text[lines[offset].clone()]);
        events.clear();
        text.clear();
        lines.clear();
        (self.pushed.events, self.pushed.text, self.pushed.lines) = (events, text, lines);
    }

    /// Evaluates what was pushed and what the window released, and writes the alerts
    /// to the output, flushing it: a live producer calls it after each batch of lines,
    /// so alerts are not held back. Events the reorder window holds (with
    /// [`Order::Timestamp`]) stay there: releasing them early would change the order.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.evaluate_pushed();
        self.flush_chunk();
        self.show_progress();
        if self.write_error.is_none()
            && let Err(error) = self.alerts_out.flush()
        {
            self.write_error = Some(error);
        }
        self.write_status()
    }

    /// The clock reached `now` (ns since the epoch) with no event: after what was pushed
    /// is evaluated, the sequences waiting for a missing event whose window closed before
    /// `now` are released, and their alerts written. Time never goes back: `now` is
    /// taken no later than the earliest event the reorder window still holds.
    pub fn tick(&mut self, now: i64) -> std::io::Result<()> {
        self.evaluate_pushed();
        self.flush_chunk();
        let held = self.window.earliest().unwrap_or(i64::MAX);
        let now = now.min(held);
        let mut matches = std::mem::take(&mut self.matches);
        self.engine.tick(now, &mut matches);
        for found in matches.drain(..) {
            self.engine.dispatch(found, &mut self.alerts);
        }
        self.matches = matches;
        self.flush()
    }

    /// Whether ticks can release anything (sequences with a trailing missing step).
    pub fn needs_ticks(&self) -> bool {
        self.engine.has_clocked_sequences()
    }

    /// The first error writing alerts, if any (kept for [`Replay::finish`]).
    fn write_status(&self) -> std::io::Result<()> {
        match &self.write_error {
            Some(error) => Err(std::io::Error::new(error.kind(), error.to_string())),
            None => Ok(()),
        }
    }

    /// Evaluates events just read (the last `events.len()` arrivals; in input order:
    /// their conditions do not depend on order), copies the lines of matched events into
    /// their matches, and admits each event's matches to the window.
    fn evaluate_events<'t>(&mut self, events: &[Event], line: &dyn Fn(usize) -> &'t str) {
        let first_arrival = self.arrivals - events.len() as u64;
        let mut matches = std::mem::take(&mut self.matches);
        self.engine.evaluate(events, first_arrival as usize, &mut matches);
        let mut found = matches.drain(..).peekable();
        let mut raw: Option<(usize, Line)> = None;
        for (offset, event) in events.iter().enumerate() {
            let index = first_arrival as usize + offset;
            let mut own = Vec::new();
            while let Some(mut next) = found.next_if(|next| next.row.item.events.first().is_some_and(|item| item.index == index)) {
                let text = match &raw {
                    Some((at, text)) if *at == offset => text.clone(),
                    _ => {
                        let text = Line::new(line(offset));
                        raw = Some((offset, text.clone()));
                        text
                    }
                };
                next.row.item.events.iter_mut().for_each(|item| item.raw = text.clone());
                own.push(next);
            }
            self.admit_pending(Pending::new(event.timestamp, index as u64 + 1, Held::Matches(own)));
        }
        drop(found);
        self.matches = matches;
    }

    fn admit(&mut self, pending: Pending) {
        self.admit_pending(pending);
        if self.chunk_is_full() {
            self.flush_chunk();
        }
    }

    /// Whether the events released for ordered evaluation are to be evaluated now.
    fn chunk_is_full(&self) -> bool {
        self.chunk.len() >= CHUNK || self.chunk_bytes >= CHUNK_BYTES
    }

    /// Puts an event through the reorder window (or straight on, in input order).
    fn admit_pending(&mut self, pending: Pending) {
        if self.options.order == Order::Input {
            self.release(pending);
            return;
        }
        if self.last_run.is_some_and(|last| pending.timestamp < last) {
            self.summary.late += 1;
        }
        self.window.push(pending);
        if self.window.len() > self.options.reorder_window.max(1) {
            let pending = self.window.pop().expect("the window is not empty");
            self.release(pending);
        }
        // Within the memory bound too: the earliest leave first, as when the window is
        // full (an event that alone is over the bound leaves at once).
        while self.window.bytes() > self.options.reorder_bytes {
            let Some(pending) = self.window.pop() else { break };
            self.summary.reorder_early += 1;
            self.release(pending);
        }
    }

    /// An event leaves the window: its matches go through their pipes, or the event
    /// joins the chunk to evaluate in order.
    fn release(&mut self, pending: Pending) {
        self.last_run = Some(self.last_run.map_or(pending.timestamp, |last| last.max(pending.timestamp)));
        if let Held::Event(event) = &pending.held {
            // Its line and its field slots: cheap (no walk of its values, which input
            // order would pay per event) and, like the window's estimate, the same
            // whichever way the line came.
            self.chunk_bytes += std::mem::size_of::<Event>() + event.raw.len() + event.fields.len() * std::mem::size_of::<Option<Value>>();
        }
        match pending.held {
            Held::Event(event) => self.chunk.push(*event),
            Held::Matches(matches) => {
                for found in matches {
                    self.engine.dispatch(found, &mut self.alerts);
                }
            }
        }
    }

    /// Evaluates the events released for ordered evaluation, and writes the alerts.
    fn flush_chunk(&mut self) {
        if !self.chunk.is_empty() {
            self.engine.run(&self.chunk, self.run, &mut self.alerts);
            self.run += self.chunk.len();
            self.chunk.clear();
            self.chunk_bytes = 0;
        }
        self.write_alerts();
    }

    /// Renders and writes the alerts the engine produced. A write error is kept for the
    /// caller; alerts after it are counted but not written.
    fn write_alerts(&mut self) {
        if self.alerts.is_empty() {
            return;
        }
        let now = self.last_run.unwrap_or(0);
        self.rendered.clear();
        let last = self.alerts.len() - 1;
        for (idx, alert) in self.alerts.drain(..).enumerate() {
            alert::render(&alert, self.engine.bundle(), now, &mut self.rendered);
            self.summary.alerts += 1;
            if self.keep_acted && self.engine.bundle().action_of(alert.rule).is_some() {
                if self.acted.len() < MAX_ACTED {
                    self.acted.push(Acted { rule: alert.rule, events: alert.events.iter().map(|event| event.raw.clone()).collect() });
                } else {
                    self.summary.acted_dropped += 1;
                }
            }
            // Written a few MiB at a time: the end of a run may bring every pipe's and
            // sequence's results at once, each alert a copy of its events' lines.
            if idx == last || self.rendered.len() >= RENDERED_BYTES {
                if self.write_error.is_none()
                    && let Err(error) = self.alerts_out.write_all(&self.rendered)
                {
                    self.write_error = Some(error);
                }
                self.rendered.clear();
            }
        }
    }

    /// The bundle the replay runs.
    pub fn bundle(&self) -> &kestrel_bundle::Bundle {
        self.engine.bundle()
    }

    /// Keeps the alerts of rules with an action for [`Replay::take_acted`].
    pub fn keep_acted(&mut self) {
        self.keep_acted = true;
    }

    /// The alerts of rules with an action since the last call (a live run acts on them).
    pub fn take_acted(&mut self) -> Vec<Acted> {
        std::mem::take(&mut self.acted)
    }

    /// The rules with an action decided at the exec hook (`RuleAction::at_exec`) that
    /// `line` (an event that has not happened yet: the exec hook's) would match now,
    /// given everything evaluated so far. Changes nothing.
    pub fn decide(&mut self, line: &str) -> Result<Vec<usize>, String> {
        if self.at_exec.is_empty() {
            return Ok(Vec::new());
        }
        let (event, _) = self.reader.read(line).map_err(|(column, message)| match column {
            Some(column) => format!("column {column}: {message}"),
            None => message,
        })?;
        Ok(self.engine.decide(&event, &self.at_exec))
    }

    /// Runs what the reorder window still holds, flushes the pipes and returns the summary.
    pub fn finish(mut self) -> std::io::Result<Summary> {
        self.evaluate_pushed();
        while let Some(pending) = self.window.pop() {
            self.release(pending);
            // Alerts are written as they come, as while reading: the window's last
            // events may hold many, and one buffer for all of them is memory for nothing.
            if self.chunk_is_full() || self.alerts.len() >= CHUNK {
                self.flush_chunk();
            }
        }
        self.flush_chunk();
        self.engine.finish(&mut self.alerts);
        self.write_alerts();
        if let Some(error) = self.write_error.take() {
            return Err(error);
        }
        self.alerts_out.flush()?;
        if self.options.progress {
            eprint!("\r\x1b[K");
        }
        let stats = &self.engine.stats;
        let bundle = self.engine.bundle();
        self.summary.events = stats.events;
        self.summary.oversized = stats.oversized;
        self.summary.lineage_dropped = stats.lineage_dropped;
        self.summary.host_failures = self.engine.host_failures();
        self.summary.captures_dropped = stats.captures_dropped;
        self.summary.needs_skipped = stats.needs_skipped;
        self.summary.rules = bundle
            .rules
            .iter()
            .zip(&stats.rules)
            .map(|(rule, stats)| RuleSummary { id: rule.id.clone(), name: rule.name.clone(), stats: stats.clone() })
            .collect();
        self.summary.custom = self.engine.custom_stats();
        self.summary.elapsed = self.started.elapsed();
        Ok(self.summary)
    }
}
