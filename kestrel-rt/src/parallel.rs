//! Reading event lines in blocks and parsing them on worker threads, for replay.
//!
//! Parsing (UTF-8 check, projection, event building) is most of a replay's work and
//! each line parses alone, so blocks of lines go to `threads` workers, each with its own
//! [`EventReader`]; the parsed blocks come back to the caller in input order. The
//! engine stays on the caller's thread: what it computes does not depend on how many
//! workers parsed (tests/it/replay.rs replays with one and with several).
//!
//! Memory stays bounded: at most `2 × threads` blocks wait for a worker, and the caller
//! takes finished blocks as soon as they are next in order.

use crate::engine::Event;
use crate::replay::EventReader;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

/// Lines per block (and the engine's evaluation chunk).
pub const BLOCK_LINES: usize = 1024;
/// A block is sent once it holds this many bytes, even with fewer lines.
const BLOCK_BYTES: usize = 1 << 20;

/// Lines as read: their bytes concatenated.
struct Block {
    seq: u64,
    /// The input line number of the first line (from 1).
    first_line: u64,
    text: Vec<u8>,
    lines: Vec<Slot>,
}

enum Slot {
    Text(Range<usize>),
    /// A line over the length limit (its length): skipped, not stored.
    TooLong(usize),
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
    pub first_line: u64,
    /// The lines' bytes; each `Parsed::Event` line is valid UTF-8.
    pub text: Vec<u8>,
    pub lines: Vec<Parsed>,
}

/// Splits input into blocks of lines, copying each byte once (from the input's buffer
/// into the block). A line longer than `limit` is skipped to its end and reported.
struct BlockReader<R> {
    input: R,
    limit: usize,
    /// Bytes of an over-long line skipped so far.
    skipping: Option<usize>,
    /// Text buffers of blocks already taken, for the next blocks: a fresh megabyte per
    /// block would be fresh pages from the kernel, zeroed, every time.
    spare: Vec<Vec<u8>>,
}

impl<R> BlockReader<R> {
    /// Keeps a taken block's text buffer for a later block (unless it grew large).
    fn recycle(&mut self, mut text: Vec<u8>) {
        if text.capacity() <= 4 * BLOCK_BYTES && self.spare.len() < 8 {
            text.clear();
            self.spare.push(text);
        }
    }
}

impl<R: BufRead> BlockReader<R> {
    fn next_block(&mut self, seq: u64, first_line: u64) -> std::io::Result<Option<Block>> {
        let text = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(BLOCK_BYTES + BLOCK_BYTES / 4));
        let mut block = Block { seq, first_line, text, lines: Vec::with_capacity(BLOCK_LINES) };
        // Where the line being read starts in `block.text`.
        let mut line_start = 0;
        while block.lines.len() < BLOCK_LINES && (block.text.len() < BLOCK_BYTES || line_start < block.text.len()) {
            let buffer = match self.input.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if buffer.is_empty() {
                if let Some(skipped) = self.skipping.take() {
                    block.lines.push(Slot::TooLong(skipped));
                } else if line_start < block.text.len() {
                    push_line(&mut block, line_start);
                }
                break;
            }
            if let Some(skipped) = self.skipping {
                match memchr::memchr(b'\n', buffer) {
                    Some(at) => {
                        block.lines.push(Slot::TooLong(skipped + at));
                        self.skipping = None;
                        self.input.consume(at + 1);
                    }
                    None => {
                        self.skipping = Some(skipped + buffer.len());
                        let len = buffer.len();
                        self.input.consume(len);
                    }
                }
                continue;
            }
            let mut consumed = 0;
            for newline in memchr::memchr_iter(b'\n', buffer) {
                if block.text.len() - line_start + (newline - consumed) > self.limit {
                    block.lines.push(Slot::TooLong(block.text.len() - line_start + newline - consumed));
                    block.text.truncate(line_start);
                } else {
                    block.text.extend_from_slice(&buffer[consumed..newline]);
                    push_line(&mut block, line_start);
                }
                line_start = block.text.len();
                consumed = newline + 1;
                if block.lines.len() == BLOCK_LINES {
                    break;
                }
            }
            if block.lines.len() < BLOCK_LINES {
                // The start of a line that goes on in the next buffer.
                let rest = &buffer[consumed..];
                if block.text.len() - line_start + rest.len() > self.limit {
                    self.skipping = Some(block.text.len() - line_start + rest.len());
                    block.text.truncate(line_start);
                } else {
                    block.text.extend_from_slice(rest);
                }
                consumed = buffer.len();
            }
            self.input.consume(consumed);
        }
        Ok((!block.lines.is_empty()).then_some(block))
    }
}

/// Ends the line that starts at `start` (at the end of the text), without its `\r`.
fn push_line(block: &mut Block, start: usize) {
    if block.text.last() == Some(&b'\r') && block.text.len() > start {
        block.text.pop();
    }
    block.lines.push(Slot::Text(start..block.text.len()));
}

/// A line as text: checked with SIMD (`simdutf8`), and again by `std` for the position
/// of the first bad byte when it is not UTF-8.
fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes),
    }
}

fn parse(reader: &mut EventReader, block: Block, limit: usize) -> ParsedBlock {
    let lines = block
        .lines
        .iter()
        .map(|slot| match slot {
            Slot::TooLong(len) => Parsed::Bad { column: None, message: format!("line of {len} bytes or more, over the limit of {limit} bytes") },
            Slot::Text(range) => match utf8(&block.text[range.clone()]) {
                Err(error) => Parsed::Bad { column: Some(error.valid_up_to() + 1), message: "the line is not UTF-8".to_string() },
                Ok(text) if text.trim().is_empty() => Parsed::Blank,
                Ok(text) => {
                    let text = text.trim_end();
                    match reader.read_fields(text) {
                        Ok((event, timestamp)) => Parsed::Event { event, timestamp, line: range.start..range.start + text.len() },
                        Err((column, message)) => Parsed::Bad { column, message },
                    }
                }
            },
        })
        .collect();
    ParsedBlock { seq: block.seq, first_line: block.first_line, text: block.text, lines }
}

/// Reads `input` line by line (lines over `limit` bytes are bad lines), parses the lines
/// on `threads` workers (on this thread when `threads` is 1), and hands the parsed
/// blocks to `take` in input order. Stops reading when `take` returns false.
pub fn read_blocks(
    input: impl BufRead,
    limit: usize,
    reader: &EventReader,
    threads: usize,
    take: &mut dyn FnMut(&mut ParsedBlock) -> bool,
) -> std::io::Result<()> {
    let mut lines = BlockReader { input, limit, skipping: None, spare: Vec::new() };
    if threads <= 1 {
        let mut reader = reader.clone();
        let (mut seq, mut first_line) = (0, 1);
        while let Some(block) = lines.next_block(seq, first_line)? {
            seq += 1;
            first_line += block.lines.len() as u64;
            let mut parsed = parse(&mut reader, block, limit);
            let going = take(&mut parsed);
            lines.recycle(parsed.text);
            if !going {
                break;
            }
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let (work, queue): (SyncSender<Block>, Receiver<Block>) = sync_channel(2 * threads);
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
        // Hands over every finished block that is next in order; returns their buffers.
        let mut deliver = |waiting: &mut BTreeMap<u64, ParsedBlock>, going: &mut bool, lines: &mut BlockReader<_>| {
            while *going && let Some(mut block) = waiting.remove(&next_out) {
                next_out += 1;
                *going = take(&mut block);
                lines.recycle(block.text);
            }
        };
        let (mut seq, mut first_line) = (0, 1);
        let mut outcome = Ok(());
        while going {
            let block = match lines.next_block(seq, first_line) {
                Ok(Some(block)) => block,
                Ok(None) => break,
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            };
            seq += 1;
            first_line += block.lines.len() as u64;
            if work.send(block).is_err() {
                break;
            }
            while let Ok(parsed) = results.try_recv() {
                waiting.insert(parsed.seq, parsed);
            }
            deliver(&mut waiting, &mut going, &mut lines);
        }
        drop(work);
        for parsed in results.iter() {
            waiting.insert(parsed.seq, parsed);
            deliver(&mut waiting, &mut going, &mut lines);
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], limit: usize) -> Vec<Result<String, usize>> {
        let mut reader = BlockReader { input: std::io::BufReader::with_capacity(4, text), limit, skipping: None, spare: Vec::new() };
        let mut out = Vec::new();
        let mut seq = 0;
        while let Some(block) = reader.next_block(seq, 1).unwrap() {
            seq += 1;
            for slot in block.lines {
                out.push(match slot {
                    Slot::Text(range) => Ok(String::from_utf8(block.text[range].to_vec()).unwrap()),
                    Slot::TooLong(len) => Err(len),
                });
            }
        }
        out
    }

    #[test]
    fn lines_split_on_newlines_and_long_lines_are_skipped_whole() {
        assert_eq!(lines(b"ab\r\ncd\n\nlast", 10), vec![Ok("ab".into()), Ok("cd".into()), Ok("".into()), Ok("last".into())]);
        assert_eq!(lines(b"short\nthis line is too long\nok\n", 8), vec![Ok("short".into()), Err(21), Ok("ok".into())]);
        assert_eq!(lines(b"short\nthis line is too long", 8), vec![Ok("short".into()), Err(21)]);
        assert_eq!(lines(b"", 8), Vec::<Result<String, usize>>::new());
    }

    #[test]
    fn blocks_hold_at_most_their_line_count_and_lose_nothing() {
        let text: String = (0..2 * BLOCK_LINES + 5).map(|idx| format!("line {idx}\n")).collect();
        let mut reader = BlockReader { input: std::io::BufReader::with_capacity(100, text.as_bytes()), limit: 100, skipping: None, spare: Vec::new() };
        let mut all = Vec::new();
        let mut seq = 0;
        while let Some(block) = reader.next_block(seq, 1).unwrap() {
            seq += 1;
            assert!(block.lines.len() <= BLOCK_LINES);
            for slot in block.lines {
                let Slot::Text(range) = slot else { panic!("no line is too long") };
                all.push(String::from_utf8(block.text[range].to_vec()).unwrap());
            }
        }
        assert_eq!(seq, 3);
        assert_eq!(all, (0..2 * BLOCK_LINES + 5).map(|idx| format!("line {idx}")).collect::<Vec<_>>());
    }
}
