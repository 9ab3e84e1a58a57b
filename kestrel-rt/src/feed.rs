//! One path for lines fed one at a time: a live run, and the replay of its capture.
//!
//! A [`Feed`] is a [`Replay`] and, when recording, a [`CaptureWriter`]: each line is
//! recorded as it is given to the engine, and each flush point as the engine is
//! flushed, so the capture holds exactly what the engine saw, in its order.
//! [`replay_capture`] feeds a capture's records back through a `Feed` (the same calls,
//! the same flush points, the recorded settings), which writes the same alerts.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use kestrel_rt::capture::{Header, Settings};
//! use kestrel_rt::feed::Feed;
//! use kestrel_rt::replay::{Options, Order};
//!
//! let bundle = std::fs::read("rules.kbundle")?;
//! let options = Options { order: Order::Input, ..Options::default() };
//! let header = Header::now(bundle, Settings::of(&options), "kestrel 0.0.0 run");
//! let mut alerts = std::io::stdout();
//! let capture = Box::new(std::fs::File::create("run.kcap")?);
//! let mut feed = Feed::recording(header, options, &mut alerts, capture)?;
//! let mut report = |bad: &kestrel_rt::replay::BadLine| eprintln!("bad line: {bad}");
//! for line in ["{\"@timestamp\":\"2024-05-04T12:00:00Z\",\"event\":{\"category\":\"process\"}}"] {
//!     feed.push_line("ebpf", line, &mut report)?;
//! }
//! feed.flush()?; // after each batch: alerts now
//! let summary = feed.finish()?;
//! # let _ = summary;
//! # Ok(())
//! # }
//! ```

use crate::capture::{CaptureError, CaptureReader, CaptureWriter, Header, Record};
use crate::engine::EngineError;
use crate::program::{LoadError, Program};
use crate::replay::{BadLine, Options, Replay, Summary};
use std::io::{Read, Write};
use std::sync::Arc;

/// Why a feed cannot start or go on.
#[derive(Debug)]
pub enum FeedError {
    /// The bundle cannot be loaded.
    Load(LoadError),
    /// The engine cannot start.
    Engine(EngineError),
    /// The capture cannot be written: recording stopped, the feed goes on.
    Capture(std::io::Error),
    /// Alerts cannot be written.
    Alerts(std::io::Error),
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedError::Load(error) => write!(f, "cannot load the bundle: {error}"),
            FeedError::Engine(error) => write!(f, "cannot start the engine: {error}"),
            FeedError::Capture(error) => write!(f, "cannot write the capture: {error}"),
            FeedError::Alerts(error) => write!(f, "cannot write alerts: {error}"),
        }
    }
}

impl std::error::Error for FeedError {}

/// Lines fed one at a time to the engine, optionally recorded in a capture.
///
/// - [`Feed::push_line`] records the line (when recording) and gives it to the engine
///   ([`Replay::push_line`]: same reader, same bad-line reports and counts as
///   `kestrel replay`).
/// - [`Feed::flush`] records a flush point, pushes the capture out to its writer, then
///   evaluates what waits and writes the alerts ([`Replay::flush`]). Call it after each
///   batch of lines, so alerts are not held back. Where flushes fall decides where the
///   engine's batches start, which matters only when guest memory runs short within a
///   batch; the capture keeps them, so its replay matches in that case too.
/// - [`Feed::finish`] writes the capture's trailer, then ends the replay (buffered pipe
///   results, waiting sequences) and returns its summary.
///
/// When the capture cannot be written, the call returns [`FeedError::Capture`] once and
/// recording stops there: the capture then ends like one whose run crashed (a truncated
/// tail, replayed up to it), and the feed goes on without it. [`FeedError::Alerts`] is
/// returned while alerts cannot be written.
pub struct Feed<'w> {
    replay: Replay<'w>,
    capture: Option<CaptureWriter<Box<dyn Write + 'w>>>,
    /// Recording stopped on an error.
    capture_failed: bool,
}

impl<'w> Feed<'w> {
    /// A feed that records nothing.
    pub fn new(program: Arc<Program>, options: Options, alerts_out: &'w mut dyn Write) -> Result<Feed<'w>, FeedError> {
        let replay = Replay::new(program, options, alerts_out).map_err(FeedError::Engine)?;
        Ok(Feed { replay, capture: None, capture_failed: false })
    }

    /// A feed over `header.bundle` that records to `capture_out`, starting with
    /// `header`. The header's settings are the run's: they replace those of `options`
    /// (which give the rest, such as profiling). See [`Header::now`].
    pub fn recording(header: Header, options: Options, alerts_out: &'w mut dyn Write, capture_out: Box<dyn Write + 'w>) -> Result<Feed<'w>, FeedError> {
        let program = Program::load(&header.bundle).map_err(FeedError::Load)?;
        let options = header.settings.apply(options);
        let replay = Replay::new(Arc::new(program), options, alerts_out).map_err(FeedError::Engine)?;
        let capture = CaptureWriter::new(capture_out, &header).map_err(FeedError::Capture)?;
        Ok(Feed { replay, capture: Some(capture), capture_failed: false })
    }

    /// Whether lines are being recorded (recording stops on a capture error).
    pub fn is_recording(&self) -> bool {
        self.capture.is_some()
    }

    /// Whether recording stopped on an error.
    pub fn recording_failed(&self) -> bool {
        self.capture_failed
    }

    /// Records `write`'s record; on an error, stops recording.
    fn record(&mut self, write: impl FnOnce(&mut CaptureWriter<Box<dyn Write + 'w>>) -> std::io::Result<()>) -> Result<(), FeedError> {
        let Some(capture) = &mut self.capture else { return Ok(()) };
        write(capture).map_err(|error| {
            self.capture = None;
            self.capture_failed = true;
            FeedError::Capture(error)
        })
    }

    /// Records `line`, then feeds it to the engine (see [`Replay::push_line`]; `source`
    /// names it in bad-line reports, and lines are numbered in push order from 1).
    pub fn push_line(&mut self, source: &str, line: &str, bad: &mut dyn FnMut(&BadLine)) -> Result<(), FeedError> {
        let recorded = self.record(|capture| capture.write_event(line));
        self.replay.push_line(source, line, bad).map_err(FeedError::Alerts)?;
        recorded
    }

    /// [`Feed::push_line`] for a line as bytes (one that is not UTF-8 is a bad line).
    pub fn push_bytes(&mut self, source: &str, line: &[u8], bad: &mut dyn FnMut(&BadLine)) -> Result<(), FeedError> {
        let recorded = self.record(|capture| capture.write_line(line));
        self.replay.push_bytes(source, line, bad).map_err(FeedError::Alerts)?;
        recorded
    }

    /// Records a flush point and pushes the capture out, then evaluates what waits and
    /// writes (and flushes) the alerts: see [`Replay::flush`].
    pub fn flush(&mut self) -> Result<(), FeedError> {
        let recorded = self.record(|capture| capture.write_flush());
        self.replay.flush().map_err(FeedError::Alerts)?;
        recorded
    }

    /// Records a clock tick, then releases the sequences whose missing-event window
    /// closed before `now` (see [`Replay::tick`]): a live producer calls it when no
    /// event came for a while, so such alerts do not wait for the next event.
    pub fn tick(&mut self, now: i64) -> Result<(), FeedError> {
        let recorded = self.record(|capture| capture.write_tick(now));
        self.replay.tick(now).map_err(FeedError::Alerts)?;
        recorded
    }

    /// The hand-written predicates' counters so far.
    pub fn custom_stats(&self) -> Vec<crate::custom::CustomStats> {
        self.replay.custom_stats()
    }

    /// Event conditions the bundle's needs skipped so far.
    pub fn needs_skipped(&self) -> u64 {
        self.replay.needs_skipped()
    }

    /// What the engine has dropped at its bounds so far.
    pub fn losses(&self) -> crate::losses::Losses {
        self.replay.losses()
    }

    /// The bundle the feed runs.
    pub fn bundle(&self) -> &kestrel_bundle::Bundle {
        self.replay.bundle()
    }

    /// Keeps the alerts of rules with an action for [`Feed::take_acted`].
    pub fn keep_acted(&mut self) {
        self.replay.keep_acted();
    }

    /// The alerts of rules with an action since the last call.
    pub fn take_acted(&mut self) -> Vec<crate::replay::Acted> {
        self.replay.take_acted()
    }

    /// The rules with an action that an event which has not happened yet would match
    /// (see [`Replay::decide`]). Nothing is recorded: the state does not change.
    pub fn decide(&mut self, line: &str) -> Result<Vec<usize>, String> {
        self.replay.decide(line)
    }

    /// Whether the bundle has sequences that wait for time to pass (a trailing missing
    /// step): only then do ticks change anything.
    pub fn needs_ticks(&self) -> bool {
        self.replay.needs_ticks()
    }

    /// Writes the capture's trailer, ends the replay and returns its summary.
    pub fn finish(mut self) -> Result<Summary, FeedError> {
        let recorded = match self.capture.take() {
            Some(capture) => capture.finish().map(drop).map_err(FeedError::Capture),
            None => Ok(()),
        };
        let summary = self.replay.finish().map_err(FeedError::Alerts)?;
        recorded.map(|()| summary)
    }
}

/// What replaying a capture did.
#[derive(Debug)]
pub struct Replayed {
    pub summary: Summary,
    /// Line records replayed (events, bad and blank lines).
    pub lines: u64,
    /// Flush points replayed.
    pub flushes: u64,
    /// Whether the capture ended with its trailer (and its counts agreed).
    pub complete: bool,
    /// Why reading stopped before the trailer: a truncated tail (every record before it
    /// was replayed), a corrupt record (likewise), or a read error.
    pub stopped: Option<CaptureError>,
}

impl Replayed {
    /// Truncated tails met: 0 or 1.
    pub fn truncated(&self) -> u64 {
        u64::from(self.stopped.as_ref().is_some_and(CaptureError::is_truncation))
    }

    /// Corrupt records met (reading stops at the first): 0 or 1.
    pub fn corrupt(&self) -> u64 {
        u64::from(matches!(self.stopped, Some(CaptureError::Corrupt { .. })))
    }
}

/// Replays a capture through a [`Feed`] as its run fed the engine: each line pushed,
/// each flush point flushed, with the capture's settings (they replace those of
/// `options`, which give the rest, such as profiling). `program` replaces the
/// capture's own bundle when given. `source` names the capture in bad-line reports;
/// lines are numbered by their order in the capture, from 1.
///
/// A capture that stops early (truncated or corrupt) is replayed up to the damage, then
/// finished; [`Replayed::stopped`] says where and why.
pub fn replay_capture<R: Read>(
    capture: CaptureReader<R>,
    source: &str,
    program: Option<Arc<Program>>,
    options: Options,
    alerts_out: &mut dyn Write,
    bad: &mut dyn FnMut(&BadLine),
) -> Result<Replayed, FeedError> {
    let program = match program {
        Some(program) => program,
        None => Arc::new(Program::load(&capture.header().bundle).map_err(FeedError::Load)?),
    };
    let options = capture.header().settings.apply(options);
    let mut feed = Feed::new(program, options, alerts_out)?;
    let mut capture = capture;
    let mut stopped = None;
    for entry in &mut capture {
        match entry {
            Ok(entry) => match entry.record {
                Record::Line(line) => feed.push_bytes(source, &line, bad)?,
                Record::LongLine(len) => {
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    feed.replay.push_line_of(source, len, bad).map_err(FeedError::Alerts)?;
                }
                Record::Flush => feed.flush()?,
                Record::Tick(now) => feed.tick(now)?,
                Record::End(_) => {}
            },
            Err(error) => stopped = Some(error),
        }
    }
    let (lines, flushes, complete) = (capture.lines(), capture.flushes(), capture.is_complete() && stopped.is_none());
    let summary = feed.finish()?;
    Ok(Replayed { summary, lines, flushes, complete, stopped })
}
