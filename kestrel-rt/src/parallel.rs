//! Reading event lines in blocks and parsing them on worker threads, for replay.
//!
//! Parsing (line splitting, UTF-8 check, projection, event building) is most of a
//! replay's work and each line parses alone, so the reading thread only cuts the input
//! into blocks of whole lines (about a megabyte each: one copy, and one search for a
//! newline per block) and `threads` workers, each with its own [`EventReader`], split
//! and parse them; the parsed blocks come back to the caller in input order. The
//! engine stays on the caller's thread: what it computes does not depend on how many
//! workers parsed (tests/it/replay.rs replays with one and with several).
//!
//! Memory stays bounded: at most `2 × threads` blocks wait for a worker, the caller
//! takes finished blocks as soon as they are next in order, and a line over the length
//! limit is skipped as it is read, never held.

use crate::engine::Event;
use crate::replay::EventReader;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

/// By default, a block is cut at the first line end after this many bytes.
pub const BLOCK_BYTES: usize = 1 << 20;

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
    text: Vec<u8>,
    /// Empty, for the parsed lines (a recycled buffer).
    lines: Vec<Parsed>,
    /// The block is one line of this many bytes or more, over the limit: skipped, not
    /// stored (`text` is empty).
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
    /// The lines' bytes; each `Parsed::Event` line is valid UTF-8.
    pub text: Vec<u8>,
    pub lines: Vec<Parsed>,
}

/// Cuts input into blocks of whole lines, copying each byte once (from the input's
/// buffer into the block). A line longer than `limit` is skipped to its end.
struct BlockReader<R> {
    input: R,
    limit: usize,
    block_bytes: usize,
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
        BlockReader { input, limit, block_bytes, skipping: None, spare: Vec::new(), keep }
    }

    /// Keeps a taken block's buffers for a later block (unless they grew large).
    fn recycle(&mut self, mut text: Vec<u8>, mut lines: Vec<Parsed>) {
        if text.capacity() <= 4 * self.block_bytes && self.spare.len() < self.keep {
            text.clear();
            lines.clear();
            self.spare.push((text, lines));
        }
    }
}

impl<R: BufRead> BlockReader<R> {
    fn next_block(&mut self, seq: u64) -> std::io::Result<Option<Block>> {
        if let Some(skipped) = self.skipping {
            return self.skip_line(seq, skipped).map(Some);
        }
        let (mut text, lines) = self.spare.pop().unwrap_or_else(|| (Vec::with_capacity(self.block_bytes + self.block_bytes / 4), Vec::new()));
        // Where the last line of `text` starts.
        let mut line_start = 0;
        loop {
            let buffer = fill(&mut self.input)?;
            if buffer.is_empty() {
                if text.is_empty() {
                    self.recycle(text, lines);
                    return Ok(None);
                }
                return Ok(Some(Block { seq, text, lines, too_long: None }));
            }
            // The block ends at the first newline once it is large enough.
            let want = self.block_bytes.saturating_sub(text.len()).min(buffer.len());
            let (take, complete) = match memchr::memchr(b'\n', &buffer[want..]) {
                Some(at) => (want + at + 1, true),
                None => (buffer.len(), false),
            };
            let piece = &buffer[..take];
            if let Some(last) = memchr::memrchr(b'\n', piece) {
                line_start = text.len() + last + 1;
            }
            text.extend_from_slice(piece);
            self.input.consume(take);
            if complete {
                return Ok(Some(Block { seq, text, lines, too_long: None }));
            }
            if text.len() - line_start > self.limit {
                // The last line is over the limit: the lines before it go first, then the
                // line is skipped to its end.
                let skipped = text.len() - line_start;
                text.truncate(line_start);
                if text.is_empty() {
                    self.recycle(text, lines);
                    return self.skip_line(seq, skipped).map(Some);
                }
                self.skipping = Some(skipped);
                return Ok(Some(Block { seq, text, lines, too_long: None }));
            }
        }
    }

    /// Skips the rest of an over-long line, `skipped` bytes of which are gone already.
    fn skip_line(&mut self, seq: u64, mut skipped: usize) -> std::io::Result<Block> {
        self.skipping = None;
        loop {
            let buffer = fill(&mut self.input)?;
            if buffer.is_empty() {
                break;
            }
            match memchr::memchr(b'\n', buffer) {
                Some(at) => {
                    skipped += at;
                    self.input.consume(at + 1);
                    break;
                }
                None => {
                    skipped += buffer.len();
                    let len = buffer.len();
                    self.input.consume(len);
                }
            }
        }
        Ok(Block { seq, text: Vec::new(), lines: Vec::new(), too_long: Some(skipped) })
    }
}

/// The input's next bytes, retrying a read a signal interrupted. (The buffer is asked
/// for again once it is known to be there: a borrow returned from inside the loop
/// would outlive the iteration.)
fn fill<R: BufRead>(input: &mut R) -> std::io::Result<&[u8]> {
    loop {
        match input.fill_buf() {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
            Ok(_) => return input.fill_buf(),
        }
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
    let Block { seq, text, mut lines, too_long: over } = block;
    if let Some(len) = over {
        lines.push(too_long(len));
        return ParsedBlock { seq, first_line: 0, text, lines };
    }
    lines.extend(line_ranges(&text).map(|range| {
        if range.len() > limit {
            return too_long(range.len());
        }
        match utf8(&text[range.clone()]) {
            Err(error) => Parsed::Bad { column: Some(error.valid_up_to() + 1), message: "the line is not UTF-8".to_string() },
            Ok(text) if text.trim().is_empty() => Parsed::Blank,
            Ok(text) => {
                let text = text.trim_end();
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
/// on `threads` workers (on this thread when `threads` is 1), and hands the parsed
/// blocks to `take` in input order. Stops reading when `take` returns false.
pub fn read_blocks(input: impl BufRead, options: Blocks, reader: &EventReader, take: &mut dyn FnMut(&mut ParsedBlock) -> bool) -> std::io::Result<()> {
    let Blocks { line_limit: limit, block_bytes, threads } = options;
    let queued = 2 * threads;
    let mut blocks = BlockReader::new(input, limit, block_bytes, queued + threads + 2);
    let mut next_line = 1;
    // Numbers the block's lines, hands it over, and keeps its buffer.
    let mut hand_over = |mut parsed: ParsedBlock, blocks: &mut BlockReader<_>| {
        parsed.first_line = next_line;
        next_line += parsed.lines.len() as u64;
        let going = take(&mut parsed);
        blocks.recycle(parsed.text, std::mem::take(&mut parsed.lines));
        going
    };
    if threads <= 1 {
        let mut reader = reader.clone();
        let mut seq = 0;
        while let Some(block) = blocks.next_block(seq)? {
            seq += 1;
            if !hand_over(parse(&mut reader, block, limit), &mut blocks) {
                break;
            }
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let (work, queue): (SyncSender<Block>, Receiver<Block>) = sync_channel(queued);
        let queue = Arc::new(Mutex::new(queue));
        let (done, results): (Sender<ParsedBlock>, Receiver<ParsedBlock>) = channel();
        for _ in 0..threads {
            let queue = queue.clone();
            let done = done.clone();
            let mut reader = reader.clone();
            scope.spawn(move || {
                loop {
                    // The lock is held only to take a block, not to parse it.
                    let block = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => break,
                    };
                    let Ok(block) = block else { break };
                    if done.send(parse(&mut reader, block, limit)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        let mut waiting: BTreeMap<u64, ParsedBlock> = BTreeMap::new();
        let mut next_out = 0u64;
        let mut going = true;
        // Hands over every finished block that is next in order.
        let mut deliver = |waiting: &mut BTreeMap<u64, ParsedBlock>, going: &mut bool, blocks: &mut BlockReader<_>| {
            while *going && let Some(block) = waiting.remove(&next_out) {
                next_out += 1;
                *going = hand_over(block, blocks);
            }
        };
        let mut seq = 0;
        let mut outcome = Ok(());
        while going {
            let block = match blocks.next_block(seq) {
                Ok(Some(block)) => block,
                Ok(None) => break,
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            };
            seq += 1;
            if work.send(block).is_err() {
                break;
            }
            while let Ok(parsed) = results.try_recv() {
                waiting.insert(parsed.seq, parsed);
            }
            deliver(&mut waiting, &mut going, &mut blocks);
        }
        drop(work);
        for parsed in results.iter() {
            waiting.insert(parsed.seq, parsed);
            deliver(&mut waiting, &mut going, &mut blocks);
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `text` as blocks cut it: its text, or the length of a line over
    /// the limit.
    fn lines(text: &[u8], limit: usize, buffer: usize) -> Vec<Result<String, usize>> {
        let mut reader = BlockReader::new(std::io::BufReader::with_capacity(buffer, text), limit, BLOCK_BYTES, 4);
        let mut out = Vec::new();
        let mut seq = 0;
        while let Some(block) = reader.next_block(seq).unwrap() {
            seq += 1;
            match block.too_long {
                Some(len) => out.push(Err(len)),
                None => out.extend(line_ranges(&block.text).map(|range| match range.len() > limit {
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
            let mut reader = BlockReader::new(std::io::BufReader::with_capacity(buffer, text.as_bytes()), 100, BLOCK_BYTES, 4);
            let mut blocks = 0;
            while let Some(block) = reader.next_block(blocks).unwrap() {
                blocks += 1;
                assert!(block.text.ends_with(b"\n"), "a block ends with its last line");
                assert!(block.text.len() < BLOCK_BYTES + buffer.min(BLOCK_BYTES) + 100);
            }
            assert!(blocks >= 2, "{blocks} blocks");
            assert_eq!(lines(text.as_bytes(), 100, buffer), expected);
        }
    }
}
