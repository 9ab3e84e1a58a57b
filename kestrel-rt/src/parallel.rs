//! Reading event lines in blocks and parsing them on worker threads, for replay.
//!
//! Parsing (line splitting, UTF-8 check, projection, event building) is most of a
//! replay's work and each line parses alone. The input is cut into blocks of whole
//! lines (a quarter of a megabyte each, read straight into the block's buffer: the only
//! copy is the kernel's) and `threads` threads, each with its own [`EventReader`], take
//! turns to read the next block and then split and parse it; the parsed blocks come back
//! to the caller in input order. The caller is one of the threads: it hands the next
//! block over (the engine runs there) when it is parsed, and parses one itself when it
//! is not. So `threads` threads keep `threads` cores busy and sleep only when starved:
//! with a thread for the engine besides, two parsers and the engine on two cores woke
//! each other for every block and spent a third more CPU time per event. What the engine
//! computes does not depend on how many threads parsed (tests/it/replay.rs replays with
//! one and with several).
//!
//! Memory stays bounded: at most `2 × threads + 2` blocks are read and not yet handed
//! over, and a line over the length limit is skipped as it is read, never held.

use crate::engine::Event;
use crate::replay::EventReader;
use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Condvar, Mutex};

/// By default, a block is cut at the first line end after this many bytes. A quarter of
/// a common per-core L2 cache: a block the kernel has just copied in is still cached
/// when it is parsed (1 MiB blocks ran 6 – 12% slower end to end on this machine's
/// 1 MiB L2, alternating runs; docs/benchmarks.md).
pub const BLOCK_BYTES: usize = 256 << 10;

/// How input is cut and parsed.
#[derive(Clone, Copy, Debug)]
pub struct Blocks {
    /// Longer lines are bad lines.
    pub line_limit: usize,
    /// A block ends at the first line end after this many bytes.
    pub block_bytes: usize,
    /// Parsing threads; 1 parses on the caller's.
    pub threads: usize,
}

/// Whole lines as read, or one line over the length limit.
struct Block {
    seq: u64,
    /// The lines are `text[..len]`; the bytes after them are left over from an earlier
    /// block (a recycled buffer stays as large as it grew, so reads go straight into it).
    text: Vec<u8>,
    len: usize,
    /// Empty, for the parsed lines (a recycled buffer).
    lines: Vec<Parsed>,
    /// The block is one line of this many bytes or more, over the limit: skipped, not
    /// stored (`len` is 0).
    too_long: Option<usize>,
}

/// One line, parsed.
pub enum Parsed {
    /// Only whitespace: not an event, not counted.
    Blank,
    Bad {
        column: Option<usize>,
        message: String,
    },
    /// An event (without its line: `raw` is empty) and where its line is in `text`.
    Event {
        event: Event,
        timestamp: Option<i64>,
        line: Range<usize>,
    },
}

/// A block of lines, parsed, in input order.
pub struct ParsedBlock {
    seq: u64,
    /// The input line number of the first line (from 1).
    pub first_line: u64,
    /// The lines' bytes (and, after them, bytes of no line); each `Parsed::Event` line
    /// is valid UTF-8.
    pub text: Vec<u8>,
    pub lines: Vec<Parsed>,
}

/// Cuts input into blocks of whole lines. Reads go straight into the block's buffer,
/// so each byte is copied once (by the kernel, from a file); only the start of a line
/// cut by a block's end is copied again, to the next block. A line longer than `limit`
/// is skipped to its end, never held.
struct BlockReader<R> {
    input: R,
    limit: usize,
    block_bytes: usize,
    /// The start of a line the last block's end cut: the next block's first bytes.
    carry: Vec<u8>,
    /// The input has ended.
    ended: bool,
    /// Bytes of an over-long line skipped so far.
    skipping: Option<usize>,
    /// Text and line buffers of blocks already taken, for the next blocks: a fresh
    /// megabyte per block would be fresh pages from the kernel, zeroed, every time, and
    /// a line vector grown from empty is copied ten times.
    spare: Vec<(Vec<u8>, Vec<Parsed>)>,
    /// How many buffers `spare` keeps: as many as can be in flight at once.
    keep: usize,
}

impl<R> BlockReader<R> {
    fn new(input: R, limit: usize, block_bytes: usize, keep: usize) -> BlockReader<R> {
        BlockReader { input, limit, block_bytes, carry: Vec::new(), ended: false, skipping: None, spare: Vec::new(), keep }
    }

    /// Keeps a taken block's buffers for a later block (unless they grew large).
    fn recycle(&mut self, text: Vec<u8>, lines: Vec<Parsed>) {
        if self.spare.len() < self.keep {
            self.spare.extend(reusable(text, lines, self.block_bytes));
        }
    }
}

/// A taken block's buffers, emptied for another block, unless a long line grew them
/// well past the block size.
fn reusable(text: Vec<u8>, mut lines: Vec<Parsed>, block_bytes: usize) -> Option<(Vec<u8>, Vec<Parsed>)> {
    (text.len() <= 4 * block_bytes + (1 << 16)).then(|| {
        lines.clear();
        (text, lines)
    })
}

/// Reads into `buffer`, retrying a read a signal interrupted; 0 at the end.
fn read_some(input: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match input.read(buffer) {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl<R: Read> BlockReader<R> {
    fn next_block(&mut self, seq: u64) -> std::io::Result<Option<Block>> {
        if let Some(skipped) = self.skipping {
            return self.skip_line(seq, skipped).map(Some);
        }
        if self.ended && self.carry.is_empty() {
            return Ok(None);
        }
        let (mut text, lines) = self.spare.pop().unwrap_or_default();
        let size = (self.block_bytes + self.block_bytes / 4).max(self.carry.len() + (1 << 12));
        if text.len() < size {
            text.resize(size, 0);
        }
        let mut len = self.carry.len();
        text[..len].copy_from_slice(&self.carry);
        self.carry.clear();
        // Just past the last line end in `text[..len]` (the carried bytes hold none).
        let mut lines_end = 0;
        while !self.ended && (len < self.block_bytes || lines_end == 0) {
            if len == text.len() {
                // One line fills the buffer (it is under the limit): room for more of it.
                let grown = text.len() * 2;
                text.resize(grown, 0);
            }
            let read = read_some(&mut self.input, &mut text[len..])?;
            if read == 0 {
                self.ended = true;
                break;
            }
            if let Some(at) = memchr::memrchr(b'\n', &text[len..len + read]) {
                lines_end = len + at + 1;
            }
            len += read;
            if len - lines_end > self.limit {
                // The last line is over the limit: the lines before it go first, then the
                // line is skipped to its end.
                let skipped = len - lines_end;
                if lines_end == 0 {
                    self.recycle(text, lines);
                    return self.skip_line(seq, skipped).map(Some);
                }
                self.skipping = Some(skipped);
                return Ok(Some(Block { seq, text, len: lines_end, lines, too_long: None }));
            }
        }
        if !self.ended {
            self.carry.extend_from_slice(&text[lines_end..len]);
            len = lines_end;
        }
        if len == 0 {
            self.recycle(text, lines);
            return Ok(None);
        }
        Ok(Some(Block { seq, text, len, lines, too_long: None }))
    }

    /// Skips the rest of an over-long line, `skipped` bytes of which are gone already;
    /// what follows its end is carried to the next block.
    fn skip_line(&mut self, seq: u64, mut skipped: usize) -> std::io::Result<Block> {
        self.skipping = None;
        let mut scratch = std::mem::take(&mut self.carry);
        scratch.resize(1 << 16, 0);
        loop {
            let read = read_some(&mut self.input, &mut scratch)?;
            if read == 0 {
                self.ended = true;
                scratch.clear();
                break;
            }
            match memchr::memchr(b'\n', &scratch[..read]) {
                Some(at) => {
                    skipped += at;
                    scratch.copy_within(at + 1..read, 0);
                    scratch.truncate(read - at - 1);
                    break;
                }
                None => skipped += read,
            }
        }
        self.carry = scratch;
        Ok(Block { seq, text: Vec::new(), len: 0, lines: Vec::new(), too_long: Some(skipped) })
    }
}

/// A line as text: checked with SIMD (`simdutf8`), and again by `std` for the position
/// of the first bad byte when it is not UTF-8.
fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes),
    }
}

/// The lines of a block: ranges of `text` without their `\n` (or `\r\n`); a last line
/// without a newline counts, an empty rest after the last newline does not.
fn line_ranges(text: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    memchr::memchr_iter(b'\n', text).map(Some).chain(std::iter::once(None)).filter_map(move |newline| {
        let end = match newline {
            Some(at) => at,
            None if start < text.len() => text.len(),
            None => return None,
        };
        let line = start..if end > start && text[end - 1] == b'\r' { end - 1 } else { end };
        start = end + 1;
        Some(line)
    })
}

fn parse(reader: &mut EventReader, block: Block, limit: usize) -> ParsedBlock {
    let too_long = |len| Parsed::Bad { column: None, message: format!("line of {len} bytes or more, over the limit of {limit} bytes") };
    let Block { seq, text, len, mut lines, too_long: over } = block;
    if let Some(len) = over {
        lines.push(too_long(len));
        return ParsedBlock { seq, first_line: 0, text, lines };
    }
    // The block is checked as UTF-8 in one go; only a block that is not is checked again
    // line by line, for the bad lines and their columns.
    let checked = simdutf8::basic::from_utf8(&text[..len]).ok();
    lines.extend(line_ranges(&text[..len]).map(|range| {
        if range.len() > limit {
            return too_long(range.len());
        }
        let line = match checked.and_then(|checked| checked.get(range.clone())) {
            Some(line) => Ok(line),
            None => utf8(&text[range.clone()]),
        };
        match line {
            Err(error) => Parsed::Bad { column: Some(error.valid_up_to() + 1), message: "the line is not UTF-8".to_string() },
            // An event's line starts with `{` and ends with `}`: no trimming to do.
            Ok(text) if !text.starts_with('{') && text.trim().is_empty() => Parsed::Blank,
            Ok(text) => {
                let text = if text.ends_with('}') { text } else { text.trim_end() };
                match reader.read_fields(text) {
                    Ok((event, timestamp)) => Parsed::Event { event, timestamp, line: range.start..range.start + text.len() },
                    Err((column, message)) => Parsed::Bad { column, message },
                }
            }
        }
    }));
    ParsedBlock { seq, first_line: 0, text, lines }
}

/// Reads `input` line by line (lines over `limit` bytes are bad lines), parses the lines
/// on `threads` threads (this one and `threads - 1` workers), and hands the parsed
/// blocks to `take` in input order. Stops reading when `take` returns false.
///
/// Every thread reads, one at a time, each the next block for itself. This one hands
/// the next block in order to `take` as soon as it is parsed, and otherwise parses a
/// block itself (or, when there is none to read, waits for the workers). At most
/// `2 × threads + 2` blocks are read and not yet handed over; a worker waits for a
/// block's buffers to come back before reading another, this thread never does.
pub fn read_blocks(input: impl Read + Send, options: Blocks, reader: &EventReader, take: &mut dyn FnMut(&mut ParsedBlock) -> bool) -> std::io::Result<()> {
    let Blocks { line_limit: limit, block_bytes, threads } = options;
    let in_flight = 2 * threads + 2;
    let mut next_line = 1;
    // Numbers the block's lines and hands it over.
    let mut hand_over = |parsed: &mut ParsedBlock| {
        parsed.first_line = next_line;
        next_line += parsed.lines.len() as u64;
        take(parsed)
    };
    if threads <= 1 {
        let mut blocks = BlockReader::new(input, limit, block_bytes, 2);
        let mut reader = reader.clone();
        let mut seq = 0;
        while let Some(block) = blocks.next_block(seq)? {
            seq += 1;
            let mut parsed = parse(&mut reader, block, limit);
            let going = hand_over(&mut parsed);
            blocks.recycle(parsed.text, parsed.lines);
            if !going {
                break;
            }
        }
        return Ok(());
    }
    let reading = Mutex::new(Reading { blocks: BlockReader::new(input, limit, block_bytes, in_flight), seq: 0, error: None });
    let pool = Mutex::new(Pool { spare: Vec::new(), in_flight: 0, stop: false });
    let returned = Condvar::new();
    std::thread::scope(|scope| {
        let (done, results): (Sender<ParsedBlock>, Receiver<ParsedBlock>) = channel();
        // The caller is one of the `threads`: the others are spawned.
        for _ in 1..threads {
            let done = done.clone();
            let mut reader = reader.clone();
            let (reading, pool, returned) = (&reading, &pool, &returned);
            scope.spawn(move || {
                let _stop = StopOnPanic { pool, returned };
                while let Next::Block(block) = next_shared(reading, pool, returned, in_flight, true) {
                    if done.send(parse(&mut reader, block, limit)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        // A panic here (the input's `read`, the caller's `take`) must not leave the
        // workers waiting for room the caller would have made.
        let _stop = StopOnPanic { pool: &pool, returned: &returned };
        let mut own_reader = reader.clone();
        let mut waiting: BTreeMap<u64, ParsedBlock> = BTreeMap::new();
        let mut next_out = 0u64;
        // Whether the caller may still find a block to parse itself.
        let mut reads = true;
        'blocks: loop {
            while let Ok(parsed) = results.try_recv() {
                waiting.insert(parsed.seq, parsed);
            }
            if let Some(mut block) = waiting.remove(&next_out) {
                next_out += 1;
                let going = hand_over(&mut block);
                let mut pool = lock(&pool);
                pool.in_flight -= 1;
                if pool.spare.len() < in_flight {
                    pool.spare.extend(reusable(block.text, block.lines, block_bytes));
                }
                pool.stop |= !going;
                returned.notify_all();
                if !going {
                    break 'blocks;
                }
                continue;
            }
            // The next block is not parsed yet: parse one (never waiting for room:
            // the caller is who makes it), or wait for the workers.
            if reads {
                match next_shared(&reading, &pool, &returned, in_flight, false) {
                    Next::Block(block) => {
                        let parsed = parse(&mut own_reader, block, limit);
                        waiting.insert(parsed.seq, parsed);
                        continue;
                    }
                    Next::Full => {}
                    Next::Ended => reads = false,
                }
            }
            match results.recv() {
                Ok(parsed) => {
                    waiting.insert(parsed.seq, parsed);
                }
                // Every worker has ended: what is left was parsed here.
                Err(_) if waiting.contains_key(&next_out) => {}
                Err(_) if reads => {}
                Err(_) => break 'blocks,
            }
        }
        // Workers still reading see `stop`, or find no one to send to.
        lock(&pool).stop = true;
        returned.notify_all();
    });
    match lock(&reading).error.take() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The reading side, shared by the workers: one reads at a time. After an error no one
/// reads again (the end of the input is the block reader's to know).
struct Reading<R> {
    blocks: BlockReader<R>,
    seq: u64,
    error: Option<std::io::Error>,
}

/// What [`next_shared`] found.
enum Next {
    Block(Block),
    /// As many blocks as may be are in flight (only when not waiting for room).
    Full,
    /// The input ended or failed, or the caller stopped.
    Ended,
}

/// Buffers of blocks handed over, for the next blocks, and how many blocks are read
/// and not handed over yet.
struct Pool {
    spare: Vec<(Vec<u8>, Vec<Parsed>)>,
    in_flight: usize,
    stop: bool,
}

/// Stops the other workers when a worker panics: otherwise they would wait for the
/// buffers of a block that never comes, and the caller for them (the scope then passes
/// the panic on).
struct StopOnPanic<'p> {
    pool: &'p Mutex<Pool>,
    returned: &'p Condvar,
}

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(self.pool).stop = true;
            self.returned.notify_all();
        }
    }
}

/// A lock, whether or not a thread panicked while holding it (a panicking worker ends
/// the scope, which propagates the panic).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The next block to parse: once fewer than `most` are in flight, the next one read
/// (numbered in input order); [`Next::Ended`] at the end of the input, after an error
/// (kept for the caller) or when the caller stopped. A worker `wait`s for room; the
/// caller, who makes room, is told [`Next::Full`] instead.
fn next_shared<R: Read>(reading: &Mutex<Reading<R>>, pool: &Mutex<Pool>, returned: &Condvar, most: usize, wait: bool) -> Next {
    let buffers = {
        let mut pool = lock(pool);
        while wait && !pool.stop && pool.in_flight >= most {
            pool = returned.wait(pool).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if pool.stop {
            return Next::Ended;
        }
        if pool.in_flight >= most {
            return Next::Full;
        }
        pool.in_flight += 1;
        pool.spare.pop()
    };
    let mut reading = lock(reading);
    let next = if reading.error.is_some() {
        Ok(None)
    } else {
        if let Some((text, lines)) = buffers {
            reading.blocks.recycle(text, lines);
        }
        let seq = reading.seq;
        reading.blocks.next_block(seq)
    };
    match next {
        Ok(Some(block)) => {
            reading.seq += 1;
            Next::Block(block)
        }
        Ok(None) | Err(_) => {
            if let Err(error) = next {
                reading.error = Some(error);
            }
            drop(reading);
            lock(pool).in_flight -= 1;
            returned.notify_all();
            Next::Ended
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing out at most `most` bytes per read.
    struct Trickle<'t> {
        text: &'t [u8],
        most: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let count = buffer.len().min(self.most).min(self.text.len());
            buffer[..count].copy_from_slice(&self.text[..count]);
            self.text = &self.text[count..];
            Ok(count)
        }
    }

    /// Every line of `text` as blocks cut it: its text, or the length of a line over
    /// the limit.
    fn lines(text: &[u8], limit: usize, most: usize) -> Vec<Result<String, usize>> {
        lines_in_blocks(text, limit, most, BLOCK_BYTES)
    }

    fn lines_in_blocks(text: &[u8], limit: usize, most: usize, block_bytes: usize) -> Vec<Result<String, usize>> {
        let mut reader = BlockReader::new(Trickle { text, most }, limit, block_bytes, 4);
        let mut out = Vec::new();
        let mut seq = 0;
        while let Some(block) = reader.next_block(seq).unwrap() {
            seq += 1;
            match block.too_long {
                Some(len) => out.push(Err(len)),
                None => out.extend(line_ranges(&block.text[..block.len]).map(|range| match range.len() > limit {
                    true => Err(range.len()),
                    false => Ok(String::from_utf8(block.text[range].to_vec()).unwrap()),
                })),
            }
            reader.recycle(block.text, block.lines);
        }
        out
    }

    #[test]
    fn lines_split_on_newlines_and_long_lines_are_skipped_whole() {
        for buffer in [1, 4, 64] {
            assert_eq!(lines(b"ab\r\ncd\n\nlast", 10, buffer), vec![Ok("ab".into()), Ok("cd".into()), Ok("".into()), Ok("last".into())]);
            assert_eq!(lines(b"short\nthis line is too long\nok\n", 8, buffer), vec![Ok("short".into()), Err(21), Ok("ok".into())]);
            assert_eq!(lines(b"short\nthis line is too long", 8, buffer), vec![Ok("short".into()), Err(21)]);
            assert_eq!(lines(b"", 8, buffer), Vec::<Result<String, usize>>::new());
            assert_eq!(lines(b"\n", 8, buffer), vec![Ok("".into())]);
        }
    }

    #[test]
    fn blocks_end_on_line_ends_and_lose_nothing() {
        let text: String = (0..3 * BLOCK_BYTES / 10).map(|idx| format!("line {idx}\n")).collect();
        let expected: Vec<Result<String, usize>> = (0..3 * BLOCK_BYTES / 10).map(|idx| Ok(format!("line {idx}"))).collect();
        for buffer in [100, 8192, 1 << 22] {
            let mut reader = BlockReader::new(Trickle { text: text.as_bytes(), most: buffer }, 100, BLOCK_BYTES, 4);
            let mut blocks = 0;
            while let Some(block) = reader.next_block(blocks).unwrap() {
                blocks += 1;
                assert!(block.text[..block.len].ends_with(b"\n"), "a block ends with its last line");
                assert!(block.len < BLOCK_BYTES + buffer.min(BLOCK_BYTES / 4) + 100, "{} bytes", block.len);
                reader.recycle(block.text, block.lines);
            }
            assert!(blocks >= 2, "{blocks} blocks");
            assert_eq!(lines(text.as_bytes(), 100, buffer), expected);
        }
    }

    #[test]
    fn a_line_longer_than_a_block_is_read_whole() {
        let long = "x".repeat(5000);
        let text = format!("a\n{long}\nb\nlast");
        for most in [7, 100, 1 << 20] {
            let expected = vec![Ok("a".to_string()), Ok(long.clone()), Ok("b".to_string()), Ok("last".to_string())];
            assert_eq!(lines_in_blocks(text.as_bytes(), 10_000, most, 64), expected, "reads of {most} bytes");
            // Over the limit, the same line is skipped, and the lines after it survive.
            let skipped = vec![Ok("a".to_string()), Err(5000), Ok("b".to_string()), Ok("last".to_string())];
            assert_eq!(lines_in_blocks(text.as_bytes(), 4000, most, 64), skipped, "reads of {most} bytes");
        }
    }

    /// Numbered event lines, in blocks of about `block_bytes`.
    fn events(count: usize) -> String {
        (0..count).map(|idx| format!("{{\"@timestamp\": {idx}, \"event\": {{\"category\": \"process\"}}}}\n")).collect()
    }

    fn reader() -> EventReader {
        EventReader::new(&crate::program::Program::load(crate::builtin::BUILTIN_BUNDLE).unwrap())
    }

    #[test]
    fn a_block_that_is_not_utf8_is_checked_line_by_line() {
        let good = "{\"@timestamp\": 1, \"event\": {\"category\": \"process\"}}";
        let mut text = Vec::new();
        for line in [good.as_bytes(), b"{\"a\": \"\xff\"}", b"  \xe3\x80\x80 ", good.as_bytes(), b"{\"b\": \"\xc3\xa9\"} \t"] {
            text.extend_from_slice(line);
            text.push(b'\n');
        }
        let kinds = |text: &[u8]| {
            let mut block = Block { seq: 0, text: text.to_vec(), len: text.len(), lines: Vec::new(), too_long: None };
            // A block's buffer has room past its text (`len`): none of it is read.
            block.text.extend_from_slice(&[0; 8]);
            let parsed = parse(&mut reader(), block, 1000);
            parsed
                .lines
                .iter()
                .map(|line| match line {
                    Parsed::Event { line, .. } => format!("event {}", line.len()),
                    Parsed::Blank => "blank".to_string(),
                    Parsed::Bad { column, message } => format!("{column:?} {message}"),
                })
                .collect::<Vec<_>>()
        };
        let expected =
            [format!("event {}", good.len()), "Some(8) the line is not UTF-8".into(), "blank".into(), format!("event {}", good.len()), "event 11".into()];
        assert_eq!(kinds(&text), expected);
        // Without the bad line the block is checked whole: the same lines, the same way.
        let without: Vec<u8> =
            text.split(|byte| *byte == b'\n').filter(|line| !line.contains(&0xff)).flat_map(|line| line.iter().copied().chain([b'\n'])).collect();
        let mut expected = expected.to_vec();
        expected.remove(1);
        assert_eq!(kinds(&without[..without.len() - 1]), expected);
    }

    #[test]
    fn workers_hand_blocks_over_in_order_and_stop_when_told() {
        let text = events(5_000);
        let options = Blocks { line_limit: 1000, block_bytes: 4096, threads: 3 };
        let mut numbers = Vec::new();
        read_blocks(Trickle { text: text.as_bytes(), most: 1000 }, options, &reader(), &mut |block| {
            numbers.push((block.first_line, block.lines.len() as u64));
            true
        })
        .unwrap();
        let mut next = 1;
        for (first, count) in &numbers {
            assert_eq!(*first, next, "blocks come in input order");
            next += count;
        }
        assert_eq!(next, 5_001, "every line, once");
        let mut taken = 0;
        read_blocks(text.as_bytes(), options, &reader(), &mut |_| {
            taken += 1;
            taken < 3
        })
        .unwrap();
        assert_eq!(taken, 3, "nothing is handed over after `take` says stop");
    }

    /// Fails after `good` bytes.
    struct Failing<'t> {
        text: &'t [u8],
        good: usize,
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            if self.good == 0 {
                return Err(std::io::Error::other("the disk is gone"));
            }
            let count = buffer.len().min(self.good).min(self.text.len()).min(512);
            buffer[..count].copy_from_slice(&self.text[..count]);
            self.text = &self.text[count..];
            self.good -= count;
            Ok(count)
        }
    }

    #[test]
    fn a_read_error_ends_reading_with_that_error() {
        let text = events(2_000);
        for threads in [1, 2] {
            let options = Blocks { line_limit: 1000, block_bytes: 4096, threads };
            let mut lines = 0;
            let result = read_blocks(Failing { text: text.as_bytes(), good: 20_000 }, options, &reader(), &mut |block| {
                lines += block.lines.len();
                true
            });
            assert_eq!(result.map_err(|error| error.to_string()), Err("the disk is gone".to_string()), "{threads} threads");
            assert!(lines > 0 && lines < 2_000, "{threads} threads: the lines before the error are handed over ({lines})");
        }
    }

    /// Panics after `good` bytes.
    struct Panicking {
        good: usize,
    }

    impl Read for Panicking {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            assert!(self.good > 0, "a reader that panics");
            let line = b"{\"@timestamp\": 1}\n";
            let count = buffer.len().min(line.len()).min(self.good);
            buffer[..count].copy_from_slice(&line[..count]);
            self.good -= count;
            Ok(count)
        }
    }

    #[test]
    fn a_panic_while_reading_reaches_the_caller() {
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let reader = reader();
            let options = Blocks { line_limit: 1000, block_bytes: 256, threads: 2 };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_blocks(Panicking { good: 100_000 }, options, &reader, &mut |_| true)));
            let _ = done.send(result.is_err());
        });
        let panicked = outcome.recv_timeout(std::time::Duration::from_secs(60)).expect("read_blocks returned (no deadlock)");
        assert!(panicked, "the worker's panic reaches the caller");
    }

    #[test]
    fn the_caller_is_told_when_blocks_in_flight_are_at_the_most() {
        let pool = Mutex::new(Pool { spare: Vec::new(), in_flight: 2, stop: false });
        let returned = Condvar::new();
        let reading = Mutex::new(Reading { blocks: BlockReader::new(&b"{}\n"[..], 100, 64, 2), seq: 0, error: None });
        assert!(matches!(next_shared(&reading, &pool, &returned, 2, false), Next::Full), "the caller does not wait for room");
        assert!(matches!(next_shared(&reading, &pool, &returned, 3, false), Next::Block(_)), "below the most, a block");
        assert_eq!(lock(&pool).in_flight, 3);
        assert!(matches!(next_shared(&reading, &pool, &returned, 4, false), Next::Ended), "the input has ended");
        assert_eq!(lock(&pool).in_flight, 3, "an ended read is not in flight");
    }

    #[test]
    fn a_panicking_worker_stops_the_others() {
        let pool = Mutex::new(Pool { spare: Vec::new(), in_flight: 0, stop: false });
        let returned = Condvar::new();
        let reading = Mutex::new(Reading { blocks: BlockReader::new(&b"{}\n"[..], 100, 64, 2), seq: 0, error: None });
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let _stop = StopOnPanic { pool: &pool, returned: &returned };
                panic!("a worker's parse panics");
            });
            assert!(worker.join().is_err());
        });
        assert!(lock(&pool).stop, "the panic stopped reading");
        assert!(matches!(next_shared(&reading, &pool, &returned, 4, true), Next::Ended), "no worker takes another block");
        // A worker that ends normally leaves reading alone.
        lock(&pool).stop = false;
        drop(StopOnPanic { pool: &pool, returned: &returned });
        assert!(!lock(&pool).stop);
    }
}
