//! Captures: a versioned binary log of exactly the lines a feed gave the engine, in
//! engine order, with its flush points, so that replaying it gives the same alerts
//! (docs/capture-format.md).
//!
//! A capture starts with the magic [`MAGIC`], the format version and a header (the
//! bundle, the replay settings that change results, host, start time, producer), then
//! holds records: a tag, a length, the payload and a CRC32 of the three. The last
//! record, the trailer, holds the counts. A capture cut short (a crash) keeps its
//! records up to the cut: [`CaptureReader`] yields them, then a
//! [`CaptureError::Truncated`] naming the record and byte where it stops. Any other
//! damage is a [`CaptureError::Corrupt`] with the same location, and reading stops
//! there. No bytes make the reader panic or allocate more than the limits.

use crate::replay::{Options, Order};
use std::io::{BufReader, BufWriter, Read, Write};

/// The first 8 bytes of every capture.
pub const MAGIC: [u8; 8] = *b"KESTRELC";

/// The format version this code writes.
pub const FORMAT_VERSION: u16 = 2;

/// The oldest version it reads: version 1 has no reorder bytes, and replays without
/// that bound, as its run had none.
pub const OLDEST_VERSION: u16 = 1;

/// The longest record payload: a longer line is recorded by its length only.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// The longest header block (it holds the bundle).
pub const MAX_HEADER_BYTES: usize = 256 << 20;

/// Record tags: ASCII letters, readable in a hex dump.
const TAG_LINE: u8 = b'L';
const TAG_LONG_LINE: u8 = b'O';
const TAG_FLUSH: u8 = b'F';
const TAG_TICK: u8 = b'T';
const TAG_END: u8 = b'E';

/// Tag, length and CRC around each payload.
const RECORD_OVERHEAD: usize = 1 + 4 + 4;

/// The payload length of the trailer: lines, flushes, end time.
const TRAILER_BYTES: usize = 24;

/// CRC-32 (IEEE 802.3, reflected, as zlib and PNG compute it), fed in pieces
/// (crc32fast: carry-less multiplication where the CPU has it, ~10× a table).
#[derive(Clone, Debug, Default)]
pub struct Crc32(crc32fast::Hasher);

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(crc32fast::Hasher::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> u32 {
        self.0.finalize()
    }
}

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(bytes);
    crc.finish()
}

/// The replay options that change results, as a capture keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub order: Order,
    pub reorder_window: usize,
    pub reorder_bytes: usize,
    pub max_buffered: usize,
    pub max_partials: usize,
    pub max_line_bytes: usize,
}

impl Settings {
    /// The settings of `options`.
    pub fn of(options: &Options) -> Settings {
        Settings {
            order: options.order,
            reorder_window: options.reorder_window,
            reorder_bytes: options.reorder_bytes,
            max_buffered: options.max_buffered,
            max_partials: options.max_partials,
            max_line_bytes: options.max_line_bytes,
        }
    }

    /// `options` with these settings (the others, such as threads, as they are).
    pub fn apply(&self, options: Options) -> Options {
        Options {
            order: self.order,
            reorder_window: self.reorder_window,
            reorder_bytes: self.reorder_bytes,
            max_buffered: self.max_buffered,
            max_partials: self.max_partials,
            max_line_bytes: self.max_line_bytes,
            ..options
        }
    }

    /// As `kestrel export --header` shows them.
    pub fn describe(&self) -> String {
        let order = match self.order {
            Order::Timestamp => "timestamp",
            Order::Input => "input",
        };
        format!(
            "order {order}, reorder window {}, reorder bytes {}, max buffered {}, max partials {}, max line bytes {}",
            self.reorder_window,
            if self.reorder_bytes == usize::MAX { "unbounded".to_string() } else { self.reorder_bytes.to_string() },
            self.max_buffered,
            self.max_partials,
            self.max_line_bytes
        )
    }
}

/// What a capture says about itself, before its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The bundle the run used, as its file holds it.
    pub bundle: Vec<u8>,
    pub settings: Settings,
    /// The host the events came from.
    pub host: String,
    /// When the run started: nanoseconds since the Unix epoch (wall clock).
    pub start: i64,
    /// Who wrote the capture, free-form, such as `"kestrel 0.0.0 run"`.
    pub producer: String,
}

impl Header {
    /// A header for a run starting now on this host.
    pub fn now(bundle: Vec<u8>, settings: Settings, producer: &str) -> Header {
        Header { bundle, settings, host: host_name(), start: wall_clock(), producer: producer.to_string() }
    }

    /// The header block (without magic, version, length and CRC).
    fn encode(&self) -> Vec<u8> {
        let mut block = Vec::with_capacity(64 + self.host.len() + self.producer.len() + self.bundle.len());
        block.push(match self.settings.order {
            Order::Timestamp => 0,
            Order::Input => 1,
        });
        let settings = &self.settings;
        for value in [settings.reorder_window, settings.reorder_bytes, settings.max_buffered, settings.max_partials, settings.max_line_bytes] {
            block.extend_from_slice(&(value as u64).to_le_bytes());
        }
        block.extend_from_slice(&self.start.to_le_bytes());
        for bytes in [self.host.as_bytes(), self.producer.as_bytes(), &self.bundle] {
            block.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            block.extend_from_slice(bytes);
        }
        block
    }

    /// Reads a header block of format `version` that starts at byte `base` of the capture.
    fn decode(block: &[u8], base: u64, version: u16) -> Result<Header, CaptureError> {
        let mut cursor = Fields { bytes: block, at: 0, base };
        let order = match cursor.take(1, "the order")?[0] {
            0 => Order::Timestamp,
            1 => Order::Input,
            other => return Err(cursor.error(cursor.at - 1, format!("unknown order {other}"))),
        };
        let reorder_window = cursor.size("the reorder window")?;
        // Version 1 has none: its run had no such bound, and its replay none either (live
        // runs, in input order, hold nothing in the window). A bound past this machine's
        // address space is no bound.
        let reorder_bytes = if version >= 2 { usize::try_from(cursor.u64("the reorder bytes")?).unwrap_or(usize::MAX) } else { usize::MAX };
        let max_buffered = cursor.size("max buffered")?;
        let max_partials = cursor.size("max partials")?;
        let max_line_bytes = cursor.size("max line bytes")?;
        if max_partials == 0 {
            return Err(cursor.error(cursor.at - 16, "max partials is 0".to_string()));
        }
        if max_line_bytes > MAX_RECORD_BYTES {
            return Err(cursor.error(cursor.at - 8, format!("max line bytes {max_line_bytes} is over the record limit of {MAX_RECORD_BYTES}")));
        }
        let start = cursor.u64("the start time")? as i64;
        let host = cursor.text("the host name")?;
        let producer = cursor.text("the producer")?;
        let bundle = cursor.sized("the bundle")?.to_vec();
        if cursor.at != block.len() {
            return Err(cursor.error(cursor.at, format!("{} bytes after the header's last field", block.len() - cursor.at)));
        }
        let settings = Settings { order, reorder_window, reorder_bytes, max_buffered, max_partials, max_line_bytes };
        Ok(Header { bundle, settings, host, start, producer })
    }
}

/// This machine's host name, or `"unknown"`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Nanoseconds since the Unix epoch, now.
fn wall_clock() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
}

/// Reads the fields of a header block, locating errors in the capture.
struct Fields<'b> {
    bytes: &'b [u8],
    at: usize,
    base: u64,
}

impl<'b> Fields<'b> {
    fn error(&self, at: usize, message: String) -> CaptureError {
        CaptureError::Header { offset: self.base + at as u64, message }
    }

    fn take(&mut self, len: usize, name: &str) -> Result<&'b [u8], CaptureError> {
        let end = self.at.checked_add(len).filter(|end| *end <= self.bytes.len());
        match end {
            Some(end) => {
                let bytes = &self.bytes[self.at..end];
                self.at = end;
                Ok(bytes)
            }
            None => Err(self.error(self.at, format!("the header ends inside {name}"))),
        }
    }

    fn u64(&mut self, name: &str) -> Result<u64, CaptureError> {
        let bytes = self.take(8, name)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    /// A u64 that is a size on this machine.
    fn size(&mut self, name: &str) -> Result<usize, CaptureError> {
        let at = self.at;
        let value = self.u64(name)?;
        usize::try_from(value).map_err(|_| self.error(at, format!("{name} {value} is too large")))
    }

    /// A u32 length, then that many bytes.
    fn sized(&mut self, name: &str) -> Result<&'b [u8], CaptureError> {
        let len = u32::from_le_bytes(self.take(4, name)?.try_into().expect("4 bytes"));
        self.take(len as usize, name)
    }

    fn text(&mut self, name: &str) -> Result<String, CaptureError> {
        let at = self.at;
        let bytes = self.sized(name)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.error(at, format!("{name} is not UTF-8")))
    }
}

/// Why a capture cannot be read (further).
#[derive(Debug)]
pub enum CaptureError {
    /// Reading failed.
    Io(std::io::Error),
    /// The input does not start with [`MAGIC`].
    NotACapture,
    /// A format version this code does not read.
    Version { found: u16, supported: u16 },
    /// The header is damaged: nothing in the capture can be trusted.
    Header { offset: u64, message: String },
    /// The capture stops before its trailer: inside record `record` (which starts at
    /// byte `offset`), or (no byte of it) just before. The records before are whole.
    Truncated { record: u64, offset: u64, message: String },
    /// Record `record`, at byte `offset`, is damaged (CRC, tag, length, trailer counts,
    /// bytes after the trailer): reading stops there.
    Corrupt { record: u64, offset: u64, message: String },
}

impl CaptureError {
    /// Whether the capture was only cut short (its records before are whole).
    pub fn is_truncation(&self) -> bool {
        matches!(self, CaptureError::Truncated { .. })
    }
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Io(error) => write!(f, "cannot read the capture: {error}"),
            CaptureError::NotACapture => f.write_str("not a Kestrel capture (it does not start with `KESTRELC`)"),
            CaptureError::Version { found, supported } => {
                write!(f, "capture format version {found}; this kestrel reads versions {OLDEST_VERSION} to {supported}")
            }
            CaptureError::Header { offset, message } => write!(f, "bad capture header at byte {offset}: {message}"),
            CaptureError::Truncated { record, offset, message } => write!(f, "truncated at record {record} (byte {offset}): {message}"),
            CaptureError::Corrupt { record, offset, message } => write!(f, "corrupt record {record} at byte {offset}: {message}"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// What a record holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A line as it was fed to the engine (an event, or a bad or blank line).
    Line(Vec<u8>),
    /// A line over [`MAX_RECORD_BYTES`], fed as a bad line, kept by its length only.
    LongLine(u64),
    /// The feed was flushed here: pending events were evaluated and alerts written.
    Flush,
    /// The live clock reached this time (ns since the epoch) with no event: sequences
    /// waiting for a missing event whose window closed before it were released.
    Tick(i64),
    /// The trailer: the capture is complete.
    End(Trailer),
}

/// The counts a complete capture ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// `Line` and `LongLine` records.
    pub lines: u64,
    /// `Flush` records.
    pub flushes: u64,
    /// When the capture was finished: nanoseconds since the Unix epoch.
    pub end: i64,
}

/// A record, with its number (from 1, the first after the header) and the byte of the
/// capture where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub number: u64,
    pub offset: u64,
    pub record: Record,
}

/// Writes a capture to any `Write`, through a buffer. A crash loses at most what was
/// written since the last [`CaptureWriter::write_flush`], which pushes the buffer out.
pub struct CaptureWriter<W: Write> {
    out: BufWriter<W>,
    lines: u64,
    flushes: u64,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture: writes the magic, the version and `header`.
    pub fn new(out: W, header: &Header) -> std::io::Result<CaptureWriter<W>> {
        let block = header.encode();
        if block.len() > MAX_HEADER_BYTES || header.settings.max_line_bytes > MAX_RECORD_BYTES {
            let message = format!("the header ({} bytes) or max line bytes ({}) is over its limit", block.len(), header.settings.max_line_bytes);
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, message));
        }
        let mut out = BufWriter::with_capacity(1 << 16, out);
        let mut sized = Vec::with_capacity(6);
        sized.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        sized.extend_from_slice(&(block.len() as u32).to_le_bytes());
        let mut crc = Crc32::new();
        crc.update(&sized);
        crc.update(&block);
        out.write_all(&MAGIC)?;
        out.write_all(&sized)?;
        out.write_all(&block)?;
        out.write_all(&crc.finish().to_le_bytes())?;
        Ok(CaptureWriter { out, lines: 0, flushes: 0 })
    }

    fn record(&mut self, tag: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut head = [0u8; 5];
        head[0] = tag;
        head[1..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut crc = Crc32::new();
        crc.update(&head);
        crc.update(payload);
        self.out.write_all(&head)?;
        self.out.write_all(payload)?;
        self.out.write_all(&crc.finish().to_le_bytes())
    }

    /// Records a line as it is fed to the engine. A line over [`MAX_RECORD_BYTES`]
    /// (a bad line whatever the settings) is recorded by its length.
    pub fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.lines += 1;
        if line.len() > MAX_RECORD_BYTES {
            return self.record(TAG_LONG_LINE, &(line.len() as u64).to_le_bytes());
        }
        self.record(TAG_LINE, line)
    }

    /// [`CaptureWriter::write_line`] of an event line.
    pub fn write_event(&mut self, line: &str) -> std::io::Result<()> {
        self.write_line(line.as_bytes())
    }

    /// Records a flush point, and pushes what is buffered to the underlying writer.
    /// Records a clock tick (see [`Record::Tick`]); ticks are not counted in the trailer.
    pub fn write_tick(&mut self, now: i64) -> std::io::Result<()> {
        self.record(TAG_TICK, &now.to_le_bytes())
    }

    pub fn write_flush(&mut self) -> std::io::Result<()> {
        self.flushes += 1;
        self.record(TAG_FLUSH, &[])?;
        self.out.flush()
    }

    /// Lines and flush points recorded so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.lines, self.flushes)
    }

    /// Writes the trailer, flushes, and returns the underlying writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        let mut payload = [0u8; TRAILER_BYTES];
        payload[..8].copy_from_slice(&self.lines.to_le_bytes());
        payload[8..16].copy_from_slice(&self.flushes.to_le_bytes());
        payload[16..].copy_from_slice(&wall_clock().to_le_bytes());
        self.record(TAG_END, &payload)?;
        self.out.into_inner().map_err(|error| error.into_error())
    }
}

/// Reads a capture from any `Read` (through a buffer): the header at once, then the
/// records as an iterator. After an error, or after the trailer and the check that
/// nothing follows it, the iterator ends.
pub struct CaptureReader<R: Read> {
    input: BufReader<R>,
    header: Header,
    version: u16,
    /// The byte of the capture the next read starts at.
    offset: u64,
    /// The number of the last record read.
    number: u64,
    lines: u64,
    flushes: u64,
    /// Whether the trailer was read.
    ended: bool,
    done: bool,
}

impl<R: Read> CaptureReader<R> {
    /// Reads and checks the magic, the version and the header.
    pub fn new(input: R) -> Result<CaptureReader<R>, CaptureError> {
        let mut input = BufReader::with_capacity(1 << 16, input);
        let mut start = [0u8; 14];
        let got = read_full(&mut input, &mut start).map_err(CaptureError::Io)?;
        if got < MAGIC.len() || start[..8] != MAGIC {
            return Err(CaptureError::NotACapture);
        }
        if got < 10 {
            return Err(CaptureError::Header { offset: got as u64, message: "the capture ends inside its version".to_string() });
        }
        let version = u16::from_le_bytes([start[8], start[9]]);
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(CaptureError::Version { found: version, supported: FORMAT_VERSION });
        }
        if got < start.len() {
            return Err(CaptureError::Header { offset: got as u64, message: "the capture ends inside its header length".to_string() });
        }
        let len = u32::from_le_bytes([start[10], start[11], start[12], start[13]]) as usize;
        if len > MAX_HEADER_BYTES {
            return Err(CaptureError::Header { offset: 10, message: format!("a header of {len} bytes, over the limit of {MAX_HEADER_BYTES}") });
        }
        let mut block = Vec::new();
        (&mut input).take(len as u64 + 4).read_to_end(&mut block).map_err(CaptureError::Io)?;
        if block.len() < len + 4 {
            let message = format!("the capture ends inside its header ({} of {} bytes)", block.len(), len + 4);
            return Err(CaptureError::Header { offset: 14 + block.len() as u64, message });
        }
        let stored = u32::from_le_bytes(block[len..].try_into().expect("4 bytes"));
        block.truncate(len);
        let mut crc = Crc32::new();
        crc.update(&start[8..]);
        crc.update(&block);
        if crc.finish() != stored {
            return Err(CaptureError::Header { offset: 14 + len as u64, message: "the header's CRC does not match".to_string() });
        }
        let header = Header::decode(&block, 14, version)?;
        let offset = 14 + len as u64 + 4;
        Ok(CaptureReader { input, header, version, offset, number: 0, lines: 0, flushes: 0, ended: false, done: false })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn version(&self) -> u16 {
        self.version
    }

    /// `Line` and `LongLine` records read so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// `Flush` records read so far.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// Whether the trailer was read (and its counts agreed).
    pub fn is_complete(&self) -> bool {
        self.ended
    }

    fn next_entry(&mut self) -> Result<Option<Entry>, CaptureError> {
        let number = self.number + 1;
        let offset = self.offset;
        let corrupt = |message: String| CaptureError::Corrupt { record: number, offset, message };
        let truncated = |message: String| CaptureError::Truncated { record: number, offset, message };
        let mut head = [0u8; 5];
        let got = read_full(&mut self.input, &mut head).map_err(CaptureError::Io)?;
        if self.ended {
            return match got {
                0 => Ok(None),
                _ => Err(corrupt("bytes after the end-of-capture record".to_string())),
            };
        }
        if got == 0 {
            return Err(truncated(format!("the capture ends without its end-of-capture record, after {} records", number - 1)));
        }
        let tag = head[0];
        let expected = match tag {
            TAG_LINE => None,
            TAG_LONG_LINE => Some(8),
            TAG_FLUSH => Some(0),
            TAG_TICK => Some(8),
            TAG_END => Some(TRAILER_BYTES),
            other => return Err(corrupt(format!("unknown record tag 0x{other:02x}"))),
        };
        if got < head.len() {
            return Err(truncated(format!("the record is cut short ({got} of at least {RECORD_OVERHEAD} bytes)")));
        }
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        match expected {
            Some(expected) if len != expected => return Err(corrupt(format!("a `{}` record of {len} bytes (it has {expected})", tag as char))),
            None if len > MAX_RECORD_BYTES => return Err(corrupt(format!("a record of {len} bytes, over the limit of {MAX_RECORD_BYTES}"))),
            _ => {}
        }
        let mut payload = Vec::new();
        (&mut self.input).take(len as u64 + 4).read_to_end(&mut payload).map_err(CaptureError::Io)?;
        if payload.len() < len + 4 {
            let whole = len + RECORD_OVERHEAD;
            return Err(truncated(format!("the record is cut short ({} of {whole} bytes)", head.len() + payload.len())));
        }
        let stored = u32::from_le_bytes(payload[len..].try_into().expect("4 bytes"));
        payload.truncate(len);
        let mut crc = Crc32::new();
        crc.update(&head);
        crc.update(&payload);
        if crc.finish() != stored {
            return Err(corrupt("the record's CRC does not match".to_string()));
        }
        let u64_at = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
        let record = match tag {
            TAG_LINE => Record::Line(payload),
            TAG_LONG_LINE => {
                let len = u64_at(0);
                if len <= MAX_RECORD_BYTES as u64 {
                    return Err(corrupt(format!("a long line of {len} bytes, within the record limit")));
                }
                Record::LongLine(len)
            }
            TAG_FLUSH => Record::Flush,
            TAG_TICK => Record::Tick(u64_at(0) as i64),
            _ => {
                let trailer = Trailer { lines: u64_at(0), flushes: u64_at(8), end: u64_at(16) as i64 };
                if (trailer.lines, trailer.flushes) != (self.lines, self.flushes) {
                    return Err(corrupt(format!(
                        "the trailer counts {} lines and {} flush points, the capture holds {} and {}",
                        trailer.lines, trailer.flushes, self.lines, self.flushes
                    )));
                }
                self.ended = true;
                Record::End(trailer)
            }
        };
        match record {
            Record::Line(_) | Record::LongLine(_) => self.lines += 1,
            Record::Flush => self.flushes += 1,
            Record::Tick(_) | Record::End(_) => {}
        }
        self.number = number;
        self.offset += (len + RECORD_OVERHEAD) as u64;
        Ok(Some(Entry { number, offset, record }))
    }
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<Entry, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buffer.len() {
        match input.read(&mut buffer[got..]) {
            Ok(0) => break,
            Ok(read) => got += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(got)
}

/// Whether `prefix` (a file's first bytes) starts a capture.
pub fn is_capture(prefix: &[u8]) -> bool {
    prefix.starts_with(&MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> Header {
        let settings = Settings { order: Order::Input, reorder_window: 7, reorder_bytes: 1 << 30, max_buffered: 9, max_partials: 11, max_line_bytes: 1 << 20 };
        Header {
            bundle: b"not really a bundle".to_vec(),
            settings,
            host: "web-1".to_string(),
            start: 1_714_824_000_000_000_000,
            producer: "kestrel test".to_string(),
        }
    }

    /// A capture of a few lines and flush points, and the records it should read back.
    fn sample() -> (Vec<u8>, Vec<Record>) {
        let mut writer = CaptureWriter::new(Vec::new(), &header()).unwrap();
        let mut records = Vec::new();
        for step in 0..12 {
            if step % 5 == 4 {
                writer.write_flush().unwrap();
                records.push(Record::Flush);
            } else {
                let line = format!("{{\"n\":{step}}}");
                writer.write_event(&line).unwrap();
                records.push(Record::Line(line.into_bytes()));
            }
        }
        writer.write_line(b"").unwrap();
        records.push(Record::Line(Vec::new()));
        (writer.finish().unwrap(), records)
    }

    /// Reads every entry, and the error that stopped the reading, if any.
    fn read(bytes: &[u8]) -> Result<(Vec<Entry>, Option<CaptureError>), CaptureError> {
        let reader = CaptureReader::new(bytes)?;
        let mut entries = Vec::new();
        for entry in reader {
            match entry {
                Ok(entry) => entries.push(entry),
                Err(error) => return Ok((entries, Some(error))),
            }
        }
        Ok((entries, None))
    }

    /// The byte offset of each record of a capture.
    fn offsets(bytes: &[u8]) -> Vec<u64> {
        read(bytes).unwrap().0.iter().map(|entry| entry.offset).collect()
    }

    #[test]
    fn crc32_is_the_standard_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let mut pieces = Crc32::new();
        pieces.update(b"1234");
        pieces.update(b"56789");
        assert_eq!(pieces.finish(), 0xCBF4_3926);
    }

    #[test]
    fn a_capture_reads_back_as_written() {
        let (bytes, records) = sample();
        assert!(is_capture(&bytes));
        let reader = CaptureReader::new(bytes.as_slice()).unwrap();
        assert_eq!(reader.header(), &header());
        assert_eq!(reader.version(), FORMAT_VERSION);
        let (entries, error) = read(&bytes).unwrap();
        assert!(error.is_none(), "{error:?}");
        let (last, body) = entries.split_last().unwrap();
        assert_eq!(body.iter().map(|entry| entry.record.clone()).collect::<Vec<_>>(), records);
        assert_eq!(entries.iter().map(|entry| entry.number).collect::<Vec<_>>(), (1..=entries.len() as u64).collect::<Vec<_>>());
        let Record::End(trailer) = last.record else { panic!("the last record is the trailer: {last:?}") };
        assert_eq!((trailer.lines, trailer.flushes), (11, 2));
        assert_eq!(last.offset + (RECORD_OVERHEAD + TRAILER_BYTES) as u64, bytes.len() as u64);
    }

    #[test]
    fn a_long_line_is_recorded_by_its_length() {
        let mut writer = CaptureWriter::new(Vec::new(), &header()).unwrap();
        writer.write_line(&vec![b'x'; MAX_RECORD_BYTES + 1]).unwrap();
        let bytes = writer.finish().unwrap();
        assert!(bytes.len() < 1024);
        let (entries, error) = read(&bytes).unwrap();
        assert!(error.is_none());
        assert_eq!(entries[0].record, Record::LongLine(MAX_RECORD_BYTES as u64 + 1));
    }

    #[test]
    fn a_truncated_capture_keeps_its_whole_records_and_says_where_it_stops() {
        let (bytes, _) = sample();
        let starts = offsets(&bytes);
        let header_end = starts[0] as usize;
        for cut in header_end..bytes.len() {
            let (entries, error) = read(&bytes[..cut]).unwrap();
            // The records that end at or before the cut are read; the next one is cut.
            let ends: Vec<usize> = starts.iter().skip(1).map(|start| *start as usize).chain([bytes.len()]).collect();
            let whole = ends.iter().filter(|end| **end <= cut).count();
            assert_eq!(entries.len(), whole, "cut at {cut}");
            match error {
                Some(CaptureError::Truncated { record, offset, .. }) => {
                    assert_eq!(record, whole as u64 + 1, "cut at {cut}");
                    assert_eq!(offset, starts[whole], "cut at {cut}");
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let (entries, error) = read(&bytes[..header_end]).unwrap();
        assert!(entries.is_empty());
        assert!(error.unwrap().to_string().contains("truncated at record 1"));
    }

    #[test]
    fn a_bad_crc_names_the_record_and_its_byte() {
        let (mut bytes, _) = sample();
        let starts = offsets(&bytes);
        // A byte in the payload of record 3.
        bytes[starts[2] as usize + 6] ^= 0x20;
        let (entries, error) = read(&bytes).unwrap();
        assert_eq!(entries.len(), 2);
        let error = error.unwrap();
        assert!(matches!(error, CaptureError::Corrupt { record: 3, offset, .. } if offset == starts[2]), "{error:?}");
        assert_eq!(error.to_string(), format!("corrupt record 3 at byte {}: the record's CRC does not match", starts[2]));
    }

    #[test]
    fn an_unknown_tag_or_a_bad_length_is_corrupt() {
        let (bytes, _) = sample();
        let starts = offsets(&bytes);
        let mut tagged = bytes.clone();
        tagged[starts[1] as usize] = b'Z';
        let (_, error) = read(&tagged).unwrap();
        assert!(matches!(&error, Some(CaptureError::Corrupt { record: 2, message, .. }) if message.contains("unknown record tag 0x5a")), "{error:?}");
        // Record 5 is a flush point: it has no payload.
        let mut flush = bytes.clone();
        assert_eq!(flush[starts[4] as usize], TAG_FLUSH);
        flush[starts[4] as usize + 1] = 3;
        let (entries, error) = read(&flush).unwrap();
        assert_eq!(entries.len(), 4);
        assert!(matches!(&error, Some(CaptureError::Corrupt { record: 5, message, .. }) if message.contains("`F` record of 3 bytes")), "{error:?}");
        let mut huge = bytes;
        huge[starts[0] as usize + 4] = 0x7f;
        let (_, error) = read(&huge).unwrap();
        assert!(matches!(&error, Some(CaptureError::Corrupt { record: 1, message, .. }) if message.contains("over the limit")), "{error:?}");
    }

    #[test]
    fn bytes_after_the_trailer_or_wrong_counts_are_corrupt() {
        let (mut bytes, _) = sample();
        let records = offsets(&bytes).len() as u64;
        let mut extra = bytes.clone();
        extra.push(0);
        let (entries, error) = read(&extra).unwrap();
        assert_eq!(entries.len() as u64, records);
        assert!(matches!(&error, Some(CaptureError::Corrupt { record, .. }) if *record == records + 1), "{error:?}");
        // The trailer counts one line more, with its CRC fixed up.
        let trailer = bytes.len() - TRAILER_BYTES - 4;
        bytes[trailer] += 1;
        let crc = crc32(&bytes[trailer - 5..trailer + TRAILER_BYTES]);
        let end = bytes.len();
        bytes[end - 4..].copy_from_slice(&crc.to_le_bytes());
        let (_, error) = read(&bytes).unwrap();
        assert!(matches!(&error, Some(CaptureError::Corrupt { message, .. }) if message.contains("trailer counts 12 lines")), "{error:?}");
    }

    #[test]
    fn another_version_is_refused_naming_both() {
        for version in [0u16, 3] {
            let (mut bytes, _) = sample();
            bytes[8..10].copy_from_slice(&version.to_le_bytes());
            let error = CaptureReader::new(bytes.as_slice()).err().unwrap();
            assert!(matches!(error, CaptureError::Version { found, supported: 2 } if found == version));
            assert_eq!(error.to_string(), format!("capture format version {version}; this kestrel reads versions 1 to 2"));
        }
    }

    /// A version 1 capture (its header without the reorder bytes) reads as it was
    /// written: the same records, and no bound on the reorder window's bytes, as its
    /// run had none.
    #[test]
    fn a_version_1_capture_reads_without_a_reorder_bytes_bound() {
        let (bytes, records) = sample();
        let len = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
        // The header block: the order (1 byte), the reorder window (8), then the
        // reorder bytes (8), which version 1 does not have.
        let mut old = bytes[..14].to_vec();
        old[8..10].copy_from_slice(&1u16.to_le_bytes());
        old[10..14].copy_from_slice(&((len - 8) as u32).to_le_bytes());
        old.extend_from_slice(&bytes[14..14 + 9]);
        old.extend_from_slice(&bytes[14 + 17..14 + len]);
        let crc = crc32(&old[8..]);
        old.extend_from_slice(&crc.to_le_bytes());
        old.extend_from_slice(&bytes[14 + len + 4..]);
        let reader = CaptureReader::new(old.as_slice()).unwrap();
        assert_eq!(reader.version(), 1);
        let settings = Settings { reorder_bytes: usize::MAX, ..header().settings };
        assert_eq!(reader.header(), &Header { settings, ..header() });
        assert!(reader.header().settings.describe().contains("reorder bytes unbounded"));
        let (entries, error) = read(&old).unwrap();
        assert!(error.is_none(), "{error:?}");
        let read: Vec<Record> = entries.iter().map(|entry| entry.record.clone()).collect();
        assert_eq!(read[..records.len()], records[..]);
    }

    #[test]
    fn a_damaged_header_is_refused() {
        let (bytes, _) = sample();
        assert!(matches!(CaptureReader::new(&b"{\"not\":\"a capture\"}"[..]), Err(CaptureError::NotACapture)));
        assert!(matches!(CaptureReader::new(&bytes[..5]), Err(CaptureError::NotACapture)));
        for cut in 8..offsets(&bytes)[0] as usize {
            assert!(matches!(CaptureReader::new(&bytes[..cut]), Err(CaptureError::Header { .. })), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        let error = CaptureReader::new(flipped.as_slice()).err().unwrap();
        assert!(error.to_string().contains("header's CRC"), "{error}");
    }

    #[test]
    fn settings_round_trip_through_options() {
        let settings = header().settings;
        let options = settings.apply(Options { threads: 3, ..Options::default() });
        assert_eq!(Settings::of(&options), settings);
        assert_eq!(options.threads, 3);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), prefix in 0..3u8) {
            // Nothing, the magic and version, or a whole valid header, then random bytes.
            let mut input = match prefix {
                0 => Vec::new(),
                1 => [&MAGIC[..], &FORMAT_VERSION.to_le_bytes()].concat(),
                _ => {
                    let (sample, _) = sample();
                    sample[..offsets(&sample)[0] as usize].to_vec()
                }
            };
            input.extend_from_slice(&bytes);
            if let Ok(reader) = CaptureReader::new(input.as_slice()) {
                for entry in reader {
                    let _ = entry.map(|entry| entry.record);
                }
            }
        }

        #[test]
        fn mutated_captures_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..8)) {
            let (mut bytes, _) = sample();
            for (at, value, kind) in edits {
                let at = at.index(bytes.len().max(1));
                match kind {
                    0 => bytes[at] = value,
                    1 => bytes.truncate(at),
                    2 => bytes.insert(at, value),
                    _ => { bytes.remove(at.min(bytes.len().saturating_sub(1))); }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            if let Ok(reader) = CaptureReader::new(bytes.as_slice()) {
                let mut errors = 0;
                for entry in reader {
                    errors += usize::from(entry.is_err());
                }
                prop_assert!(errors <= 1, "reading stops at the first error");
            }
        }
    }
}
