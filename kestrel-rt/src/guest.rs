//! Values in guest memory: writing a value into a slot and its payload area, and
//! reading a slot back (docs/abi.md, "Slots"). Every access is bounds-checked: a bad
//! address reads as null and a full area is an error, never a panic.

use kestrel_bundle::abi::{SLOT_SIZE, tag};
use kestrel_bundle::semantics::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The deepest value written or read (arrays in arrays...).
pub const MAX_DEPTH: usize = 32;

/// The most a value read back may hold: slots (every array item, object entry and the
/// value itself) and string and key bytes; twice what the data region (1 MiB, 65,536
/// slots) can hold, so a value the host wrote always reads back. Slots may point anywhere, the same bytes
/// again included (an array of two slots that are the array itself is 2³² values at
/// depth 32), so what a read copies out is bounded, not only how deep it goes.
pub const MAX_READ_SLOTS: usize = 1 << 17;
pub const MAX_READ_BYTES: usize = 16 << 20;

/// What reading a value back may still take ([`MAX_READ_SLOTS`], [`MAX_READ_BYTES`]);
/// a hand-written Lua predicate's captures are converted under the same budget.
pub(crate) struct Budget {
    slots: usize,
    bytes: usize,
    /// A take went over: the value is larger than the bounds.
    pub over: bool,
}

impl Budget {
    pub fn new() -> Budget {
        Budget { slots: MAX_READ_SLOTS, bytes: MAX_READ_BYTES, over: false }
    }

    /// Takes one slot and `bytes`; `None` (and `over`) when the value would go over.
    pub fn take(&mut self, bytes: usize) -> Option<()> {
        match (self.slots.checked_sub(1), self.bytes.checked_sub(bytes)) {
            (Some(slots), Some(bytes)) => {
                (self.slots, self.bytes) = (slots, bytes);
                Some(())
            }
            _ => {
                self.over = true;
                None
            }
        }
    }

    /// Takes `bytes` without a slot (an object's key).
    fn take_bytes(&mut self, bytes: usize) -> Option<()> {
        self.bytes = self.bytes.checked_sub(bytes)?;
        Some(())
    }
}

/// A bump allocator over a byte range of guest memory.
pub struct Area {
    pub next: usize,
    pub end: usize,
}

/// The area ran out of room.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl Area {
    pub fn new(start: usize, end: usize) -> Area {
        Area { next: start, end }
    }

    fn take(&mut self, len: usize) -> Result<usize, Full> {
        let at = self.next;
        let end = at.checked_add(len).ok_or(Full)?;
        if end > self.end {
            return Err(Full);
        }
        self.next = end.next_multiple_of(8).min(self.end.max(end));
        Ok(at)
    }
}

fn put_slot(memory: &mut [u8], at: usize, tag: u8, len: u32, payload: u64) -> Result<(), Full> {
    let slot = memory.get_mut(at..at + SLOT_SIZE as usize).ok_or(Full)?;
    slot[0..4].copy_from_slice(&u32::from(tag).to_le_bytes());
    slot[4..8].copy_from_slice(&len.to_le_bytes());
    slot[8..16].copy_from_slice(&payload.to_le_bytes());
    Ok(())
}

/// The address bytes as the ABI stores them: IPv4 (and IPv4-mapped IPv6) as 4 bytes.
pub fn ip_bytes(address: &IpAddr) -> ([u8; 16], usize) {
    let mut bytes = [0u8; 16];
    match address {
        IpAddr::V4(v4) => {
            bytes[..4].copy_from_slice(&v4.octets());
            (bytes, 4)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => {
                bytes[..4].copy_from_slice(&v4.octets());
                (bytes, 4)
            }
            None => {
                bytes.copy_from_slice(&v6.octets());
                (bytes, 16)
            }
        },
    }
}

/// Copies the slot at `from_at` of memory `from` to `to_at` of memory `to` (another
/// module's), its payload into `area`: scalars as they are, strings and addresses by
/// their bytes, arrays and objects through [`read`] and [`write`]. A slot that does not
/// read (a bad address, an unknown tag) is copied as null.
pub fn copy_slot(from: &[u8], from_at: usize, to: &mut [u8], to_at: usize, area: &mut Area) -> Result<(), Full> {
    let Some(slot) = from.get(from_at..from_at + SLOT_SIZE as usize) else { return put_slot(to, to_at, tag::NULL, 0, 0) };
    let word = |range: std::ops::Range<usize>| u32::from_le_bytes(slot[range].try_into().unwrap_or([0; 4])) as usize;
    match slot[0] {
        tag::NULL | tag::BOOL | tag::LONG | tag::DOUBLE => {
            let target = to.get_mut(to_at..to_at + SLOT_SIZE as usize).ok_or(Full)?;
            target.copy_from_slice(slot);
            Ok(())
        }
        tag::STRING | tag::IP => {
            let (len, ptr) = (word(4..8), word(8..12));
            let Some(bytes) = from.get(ptr..ptr.saturating_add(len)) else { return put_slot(to, to_at, tag::NULL, 0, 0) };
            let at = area.take(len)?;
            to.get_mut(at..at + len).ok_or(Full)?.copy_from_slice(bytes);
            put_slot(to, to_at, slot[0], len as u32, at as u64)
        }
        _ => write(to, to_at, &read(from, from_at), area),
    }
}

/// Writes `value` into the slot at `at`, putting its payload in `area`.
#[inline]
pub fn write(memory: &mut [u8], at: usize, value: &Value, area: &mut Area) -> Result<(), Full> {
    match value {
        // Most written values are strings: no call, no `memcpy` call for a short one.
        Value::Str(text) => write_str(memory, at, text, area, false),
        _ => write_at_depth(memory, at, value, area, 0, false),
    }
}

/// Writes `value` with its strings lower-cased (`str::to_lowercase`, as eqlc folds
/// literals): the folded slot of a field (docs/abi.md). ASCII text, the usual case, is
/// lower-cased in guest memory without allocating.
#[inline]
pub fn write_folded(memory: &mut [u8], at: usize, value: &Value, area: &mut Area) -> Result<(), Full> {
    match value {
        Value::Str(text) => write_str(memory, at, text, area, true),
        _ => write_at_depth(memory, at, value, area, 0, true),
    }
}

/// A string slot and its bytes, lower-cased when `fold`: ASCII text in place, eight
/// bytes at a time; other text by `str::to_lowercase` (which may change its length).
#[inline(always)]
fn write_str(memory: &mut [u8], at: usize, text: &str, area: &mut Area, fold: bool) -> Result<(), Full> {
    let bytes = text.as_bytes();
    let offset = area.take(bytes.len())?;
    let target = memory.get_mut(offset..offset + bytes.len()).ok_or(Full)?;
    if !fold {
        copy_bytes(target, bytes);
    } else if !fold_ascii(target, bytes) {
        // Not ASCII: the room taken is given back, and the lower-cased text written.
        area.next = offset;
        return write_lowered(memory, at, text, area);
    }
    put_slot(memory, at, tag::STRING, bytes.len() as u32, offset as u64)
}

/// [`write_str`] of text that is not ASCII, lower-cased by `str::to_lowercase`.
#[cold]
#[inline(never)]
fn write_lowered(memory: &mut [u8], at: usize, text: &str, area: &mut Area) -> Result<(), Full> {
    write_str(memory, at, &text.to_lowercase(), area, false)
}

/// Copies `source` lower-cased into `target` (of the same length) when it is all ASCII,
/// eight bytes at a time; returns false (`target` half written) at a byte that is not.
#[inline]
fn fold_ascii(target: &mut [u8], source: &[u8]) -> bool {
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let len = source.len();
    if len != target.len() {
        return false;
    }
    // Words of eight (the last one overlapping the one before: folding twice is
    // folding once), two overlapping halves of four, or single bytes.
    let mut fold_word = |at: usize, width: usize| {
        let mut word = [0u8; 8];
        word[..width].copy_from_slice(&source[at..at + width]);
        let word = u64::from_le_bytes(word);
        target[at..at + width].copy_from_slice(&lower_ascii_word(word).to_le_bytes()[..width]);
        word & HIGHS == 0
    };
    match len {
        0 => true,
        1..4 => (0..len).all(|at| fold_word(at, 1)),
        4..8 => fold_word(0, 4) && fold_word(len - 4, 4),
        _ => {
            let mut at = 0;
            loop {
                let start = at.min(len - 8);
                if !fold_word(start, 8) {
                    return false;
                }
                if start == len - 8 {
                    return true;
                }
                at += 8;
            }
        }
    }
}

/// Each ASCII byte of `word` lower-cased (bytes of 0x80 and above: unspecified).
#[inline]
fn lower_ascii_word(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // For a byte below 0x80 neither sum carries out of it: the high bit of the first is
    // set from `A` up, of the second from `[` up.
    let from_a = word.wrapping_add(ONES * u64::from(0x80 - b'A'));
    let past_z = word.wrapping_add(ONES * u64::from(0x80 - b'Z' - 1));
    let upper = from_a & !past_z & HIGHS & !word;
    word | (upper >> 2)
}

/// `target.copy_from_slice(source)` (same lengths); up to 16 bytes as overlapping
/// copies instead of a call.
#[inline]
fn copy_bytes(target: &mut [u8], source: &[u8]) {
    let len = source.len();
    if len != target.len() {
        return;
    }
    fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
        let mut word = [0; N];
        word.copy_from_slice(&bytes[at..at + N]);
        word
    }
    match len {
        0 => {}
        // First, middle and last byte (not a loop, which the compiler makes a call).
        1..4 => {
            target[0] = source[0];
            target[len / 2] = source[len / 2];
            target[len - 1] = source[len - 1];
        }
        4..8 => {
            let (head, tail) = (word::<4>(source, 0), word::<4>(source, len - 4));
            target[..4].copy_from_slice(&head);
            target[len - 4..].copy_from_slice(&tail);
        }
        8..=16 => {
            let (head, tail) = (word::<8>(source, 0), word::<8>(source, len - 8));
            target[..8].copy_from_slice(&head);
            target[len - 8..].copy_from_slice(&tail);
        }
        _ => target.copy_from_slice(source),
    }
}

fn write_at_depth(memory: &mut [u8], at: usize, value: &Value, area: &mut Area, depth: usize, fold: bool) -> Result<(), Full> {
    match value {
        Value::Null => put_slot(memory, at, tag::NULL, 0, 0),
        Value::Bool(value) => put_slot(memory, at, tag::BOOL, 0, u64::from(*value)),
        Value::Long(value) => put_slot(memory, at, tag::LONG, 0, *value as u64),
        Value::Double(value) => put_slot(memory, at, tag::DOUBLE, 0, value.to_bits()),
        Value::Str(text) => write_str(memory, at, text, area, fold),
        Value::Ip(address) => {
            let (bytes, len) = ip_bytes(address);
            let offset = area.take(len)?;
            memory.get_mut(offset..offset + len).ok_or(Full)?.copy_from_slice(&bytes[..len]);
            put_slot(memory, at, tag::IP, len as u32, offset as u64)
        }
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return put_slot(memory, at, tag::NULL, 0, 0);
            }
            let elements = area.take(items.len() * SLOT_SIZE as usize)?;
            for (idx, item) in items.iter().enumerate() {
                write_at_depth(memory, elements + idx * SLOT_SIZE as usize, item, area, depth + 1, fold)?;
            }
            put_slot(memory, at, tag::ARRAY, items.len() as u32, elements as u64)
        }
        Value::Object(entries) => {
            if depth >= MAX_DEPTH {
                return put_slot(memory, at, tag::NULL, 0, 0);
            }
            let table = area.take(entries.len() * 24)?;
            for (idx, (key, inner)) in entries.iter().enumerate() {
                let entry = table + idx * 24;
                let key_at = area.take(key.len())?;
                memory.get_mut(key_at..key_at + key.len()).ok_or(Full)?.copy_from_slice(key.as_bytes());
                memory.get_mut(entry..entry + 8).ok_or(Full)?.copy_from_slice(&[(key_at as u32).to_le_bytes(), (key.len() as u32).to_le_bytes()].concat());
                write_at_depth(memory, entry + 8, inner, area, depth + 1, fold)?;
            }
            put_slot(memory, at, tag::OBJECT, entries.len() as u32, table as u64)
        }
    }
}

fn u32_at(memory: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(memory.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(memory: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(memory.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the slot at `at` back into a value; anything malformed, or larger than
/// [`MAX_READ_SLOTS`] slots or [`MAX_READ_BYTES`] bytes, reads as null.
pub fn read(memory: &[u8], at: usize) -> Value {
    read_bounded(memory, at).unwrap_or(Value::Null)
}

/// [`read`], telling a malformed or too large value (`None`) from a null.
pub fn read_bounded(memory: &[u8], at: usize) -> Option<Value> {
    read_at_depth(memory, at, 0, &mut Budget::new())
}

fn read_at_depth(memory: &[u8], at: usize, depth: usize, budget: &mut Budget) -> Option<Value> {
    let tag_value = *memory.get(at)?;
    let len = u32_at(memory, at + 4)? as usize;
    let payload = u64_at(memory, at + 8)?;
    let offset = (payload & 0xFFFF_FFFF) as usize;
    budget.take(if matches!(tag_value, tag::STRING) { len } else { 0 })?;
    Some(match tag_value {
        tag::NULL => Value::Null,
        tag::BOOL => Value::Bool(payload != 0),
        tag::LONG => Value::Long(payload as i64),
        tag::DOUBLE => Value::Double(f64::from_bits(payload)),
        tag::STRING => Value::Str(String::from_utf8_lossy(memory.get(offset..offset.checked_add(len)?)?).into()),
        tag::IP => {
            let bytes = memory.get(offset..offset.checked_add(len)?)?;
            match len {
                4 => Value::Ip(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
                16 => Value::Ip(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))),
                _ => return None,
            }
        }
        tag::ARRAY if depth < MAX_DEPTH => {
            let mut items = Vec::with_capacity(len.min(1 << 16));
            for idx in 0..len {
                items.push(read_at_depth(memory, offset.checked_add(idx * SLOT_SIZE as usize)?, depth + 1, budget)?);
            }
            Value::Array(items)
        }
        tag::OBJECT if depth < MAX_DEPTH => {
            let mut entries = Vec::with_capacity(len.min(1 << 16));
            for idx in 0..len {
                let entry = offset.checked_add(idx * 24)?;
                let key_at = u32_at(memory, entry)? as usize;
                let key_len = u32_at(memory, entry + 4)? as usize;
                budget.take_bytes(key_len)?;
                let key = String::from_utf8_lossy(memory.get(key_at..key_at.checked_add(key_len)?)?).into();
                entries.push((key, read_at_depth(memory, entry + 8, depth + 1, budget)?));
            }
            Value::Object(entries)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_memory() {
        let mut memory = vec![0u8; 4096];
        let value = Value::Array(vec![
            Value::Str("héllo".into()),
            Value::Long(-3),
            Value::Double(2.5),
            Value::Ip("10.1.2.3".parse().unwrap()),
            Value::Ip("fe80::1".parse().unwrap()),
            Value::Object(vec![("k".into(), Value::Bool(true))]),
            Value::Null,
        ]);
        let mut area = Area::new(1024, 4096);
        write(&mut memory, 64, &value, &mut area).unwrap();
        assert_eq!(read(&memory, 64), value);
    }

    #[test]
    fn folded_writes_equal_the_folded_value() {
        let value = Value::Array(vec![
            Value::Str("BaSh".into()),
            Value::Str("ÉCOLE İstanbul".into()),
            Value::Object(vec![("Key".into(), Value::Str("MiXeD".into()))]),
            Value::Long(3),
        ]);
        let mut memory = vec![0u8; 4096];
        let mut area = Area::new(1024, 4096);
        write_folded(&mut memory, 64, &value, &mut area).unwrap();
        assert_eq!(read(&memory, 64), crate::functions::folded(&value));
    }

    #[test]
    fn ascii_folding_folds_as_the_standard_library_does() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..40 {
            for _ in 0..300 {
                let source: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Every ASCII byte, and now and then one that is not.
                        if state.is_multiple_of(97) { 0xC3 } else { (state >> 11) as u8 & 0x7F }
                    })
                    .collect();
                let mut target = vec![0u8; len];
                let folded = fold_ascii(&mut target, &source);
                assert_eq!(folded, source.is_ascii(), "{source:?}");
                if folded {
                    assert_eq!(target, source.to_ascii_lowercase(), "{source:?}");
                }
            }
        }
    }

    #[test]
    fn a_folded_string_that_is_not_ascii_is_lower_cased_by_the_standard_library() {
        for text in ["ÉCOLE", "İstanbul", "ẞ", "BASH\u{0}É", "Kestrel-ÅÄÖ-long-enough-for-words"] {
            let mut memory = vec![0u8; 4096];
            let mut area = Area::new(1024, 4096);
            write_folded(&mut memory, 64, &Value::Str(text.into()), &mut area).unwrap();
            assert_eq!(read(&memory, 64), Value::Str(text.to_lowercase()), "{text}");
        }
    }

    #[test]
    fn short_copies_copy_every_length() {
        let source: Vec<u8> = (1..=40).collect();
        for len in 0..=source.len() {
            let mut target = vec![0u8; len];
            copy_bytes(&mut target, &source[..len]);
            assert_eq!(target, source[..len], "{len} bytes");
        }
    }

    #[test]
    fn a_full_area_is_an_error_and_garbage_reads_as_null() {
        let mut memory = vec![0u8; 256];
        let mut area = Area::new(128, 136);
        assert_eq!(write(&mut memory, 64, &Value::Str("too long for the area".into()), &mut area), Err(Full));
        memory[64] = 4;
        memory[68..72].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(read(&memory, 64), Value::Null);
        assert_eq!(read(&memory, 10_000), Value::Null);
    }

    /// Thirty arrays, each of two items that are the next one, are 2³⁰ values: the read
    /// stops at its budget and the value reads as null, at once; so does a long string
    /// read many times over. A value within the budget reads whole.
    #[test]
    fn a_value_whose_slots_share_their_items_reads_as_null() {
        let mut memory = vec![0u8; 1 << 17];
        let slot = |memory: &mut Vec<u8>, at: usize, tag_value: u8, len: u32, offset: u64| {
            memory[at] = tag_value;
            memory[at + 4..at + 8].copy_from_slice(&len.to_le_bytes());
            memory[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
        };
        // The array at 64 has its two items at 128; the two at 128 + 32 × k have theirs
        // at 128 + 32 × (k + 1); the last level's are strings.
        slot(&mut memory, 64, tag::ARRAY, 2, 128);
        for level in 0..30 {
            let at = 128 + 32 * level;
            for item in [at, at + 16] {
                match level {
                    29 => slot(&mut memory, item, tag::STRING, 1, 0),
                    _ => slot(&mut memory, item, tag::ARRAY, 2, (at + 32) as u64),
                }
            }
        }
        let started = std::time::Instant::now();
        assert_eq!(read_bounded(&memory, 64), None);
        assert_eq!(read(&memory, 64), Value::Null);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "bounded work");
        // 4,096 items, each the same 60,000-byte string: 245 MB copied out unbounded.
        slot(&mut memory, 64, tag::ARRAY, 4096, 256);
        for item in 0..4096 {
            slot(&mut memory, 256 + 16 * item, tag::STRING, 60_000, 0);
        }
        assert_eq!(read_bounded(&memory, 64), None);
        // 200 of them fit (12 MB).
        slot(&mut memory, 64, tag::ARRAY, 200, 256);
        assert!(matches!(read_bounded(&memory, 64), Some(Value::Array(items)) if items.len() == 200));
    }
}
