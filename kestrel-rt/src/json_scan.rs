//! Skipping a JSON object or array 64 bytes at a time, for the projection parser
//! (`ndjson`): most of an event is in values no rule reads, and skipping them is most of
//! the parsing time.
//!
//! Each block of 64 bytes becomes four bit masks (quotes, backslashes, opening and
//! closing brackets, bit *i* for byte *i*): with AVX-512 (AVX512BW) or AVX2, and POPCNT
//! and PCLMULQDQ, on x86-64 processors that have them (checked at run time), SSE2 on the
//! others, byte by byte elsewhere. Escaped characters are removed, a prefix XOR of the
//! quotes marks the bytes inside strings, and a block whose closing brackets outside
//! strings could end the value has them walked one by one (a few per block).
//!
//! A skipped value is checked for terminated strings and balanced brackets (a `{`
//! closed by `]` is not noticed); the values the projection decodes are checked fully.
//!
//! The end of a string or key (its first `"` or `\\`) is found sixteen bytes at a time
//! the same way ([`find_quote_or_backslash`]), and so is the test of the bundle's
//! prefilter ([`plain_without`]: bytes that are not ASCII or are a backslash, and
//! literals, ASCII case-insensitively).

/// Bit masks of one 64-byte block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Masks {
    quotes: u64,
    backslashes: u64,
    opens: u64,
    closes: u64,
}

/// The masks, byte by byte: the reference for the vector version, and the version
/// other architectures use.
#[cfg_attr(target_arch = "x86_64", cfg(test))]
fn masks_scalar(block: &[u8; 64]) -> Masks {
    let mut masks = Masks { quotes: 0, backslashes: 0, opens: 0, closes: 0 };
    for (idx, byte) in block.iter().enumerate() {
        let bit = 1u64 << idx;
        match byte {
            b'"' => masks.quotes |= bit,
            b'\\' => masks.backslashes |= bit,
            b'{' | b'[' => masks.opens |= bit,
            b'}' | b']' => masks.closes |= bit,
            _ => {}
        }
    }
    masks
}

/// Which vector instructions skip: AVX-512 or AVX2, with POPCNT and PCLMULQDQ, where the
/// processor has them, SSE2 (in every x86-64 processor) otherwise.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Vector {
    Sse2,
    Avx2,
    /// AVX-512 with its byte comparisons (AVX512BW): a block's masks come from one
    /// 64-byte register, compared straight into mask registers.
    Avx512,
}

#[cfg(target_arch = "x86_64")]
impl Vector {
    /// The best this processor has (detected once).
    fn best() -> Vector {
        static BEST: std::sync::OnceLock<Vector> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let bits = std::arch::is_x86_feature_detected!("popcnt") && std::arch::is_x86_feature_detected!("pclmulqdq");
            if bits && std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
                Vector::Avx512
            } else if bits && std::arch::is_x86_feature_detected!("avx2") {
                Vector::Avx2
            } else {
                Vector::Sse2
            }
        })
    }

    /// `self`, if this processor has it; otherwise the best it has.
    fn available(self) -> Vector {
        self.min(Vector::best())
    }
}

/// Skips with `vector` instructions (or SSE2 when the processor lacks them). This and
/// [`masks_with`] are the runtime's `unsafe` blocks in this file (ARCHITECTURE.md):
/// calls of `#[target_feature]` functions, sound because the features are in the
/// x86-64 baseline (SSE2) or were detected at run time (AVX2, POPCNT, PCLMULQDQ). The functions
/// themselves only use value-based intrinsics (no pointers); the tests check both
/// against [`masks_scalar`] and a byte-by-byte skipper.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn skip_with(vector: Vector, bytes: &[u8], start: usize, depth: u64) -> Result<usize, SkipError> {
    // SAFETY: `available` returns AVX2 (AVX-512) only when the processor has AVX2
    // (AVX512F and AVX512BW), POPCNT and PCLMULQDQ; SSE2 is in the x86-64 baseline.
    unsafe {
        match vector.available() {
            Vector::Avx512 => skip_avx512(bytes, start, depth),
            Vector::Avx2 => skip_avx2(bytes, start, depth),
            Vector::Sse2 => skip_sse2(bytes, start, depth),
        }
    }
}

/// The masks of one block with `vector` instructions (or SSE2), for the tests.
#[cfg(all(test, target_arch = "x86_64"))]
#[allow(unsafe_code)]
fn masks_with(vector: Vector, block: &[u8; 64]) -> Masks {
    // SAFETY: as in `skip_with`.
    unsafe {
        match vector.available() {
            Vector::Avx512 => avx512_masks(block),
            Vector::Avx2 => avx2_masks(block),
            Vector::Sse2 => sse2_masks(block),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn skip_sse2(bytes: &[u8], start: usize, depth: u64) -> Result<usize, SkipError> {
    skip_blocks(bytes, start, depth, |block| sse2_masks(block), prefix_xor, false)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt,pclmulqdq")]
fn skip_avx2(bytes: &[u8], start: usize, depth: u64) -> Result<usize, SkipError> {
    skip_blocks(bytes, start, depth, |block| avx2_masks(block), |bits| clmul_prefix_xor(bits), true)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,popcnt,pclmulqdq")]
fn skip_avx512(bytes: &[u8], start: usize, depth: u64) -> Result<usize, SkipError> {
    skip_blocks(bytes, start, depth, |block| avx512_masks(block), |bits| clmul_prefix_xor(bits), true)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn avx512_masks(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{_mm512_cmpeq_epi8_mask, _mm512_or_si512, _mm512_set1_epi8};
    let bytes = load512(block);
    // `[` and `]` differ from `{` and `}` only in bit 5.
    let folded = _mm512_or_si512(bytes, _mm512_set1_epi8(0x20));
    Masks {
        quotes: _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b'"' as i8)),
        backslashes: _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b'\\' as i8)),
        opens: _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8(b'{' as i8)),
        closes: _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8(b'}' as i8)),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn sse2_masks(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    // `[` and `]` differ from `{` and `}` only in bit 5.
    let case = _mm_set1_epi8(0x20);
    let open = _mm_set1_epi8(b'{' as i8);
    let close = _mm_set1_epi8(b'}' as i8);
    let mut masks = Masks { quotes: 0, backslashes: 0, opens: 0, closes: 0 };
    for (idx, lane) in block.chunks_exact(16).enumerate() {
        let bytes = load128(lane);
        let folded = _mm_or_si128(bytes, case);
        let shift = idx * 16;
        let bits = |vector| u64::from(_mm_movemask_epi8(vector) as u16) << shift;
        masks.quotes |= bits(_mm_cmpeq_epi8(bytes, quote));
        masks.backslashes |= bits(_mm_cmpeq_epi8(bytes, backslash));
        masks.opens |= bits(_mm_cmpeq_epi8(folded, open));
        masks.closes |= bits(_mm_cmpeq_epi8(folded, close));
    }
    masks
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2_masks(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{_mm256_cmpeq_epi8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8};
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let case = _mm256_set1_epi8(0x20);
    let open = _mm256_set1_epi8(b'{' as i8);
    let close = _mm256_set1_epi8(b'}' as i8);
    let mut masks = Masks { quotes: 0, backslashes: 0, opens: 0, closes: 0 };
    for (idx, lane) in block.chunks_exact(32).enumerate() {
        let bytes = load256(lane);
        let folded = _mm256_or_si256(bytes, case);
        let shift = idx * 32;
        let bits = |vector| u64::from(_mm256_movemask_epi8(vector) as u32) << shift;
        masks.quotes |= bits(_mm256_cmpeq_epi8(bytes, quote));
        masks.backslashes |= bits(_mm256_cmpeq_epi8(bytes, backslash));
        masks.opens |= bits(_mm256_cmpeq_epi8(folded, open));
        masks.closes |= bits(_mm256_cmpeq_epi8(folded, close));
    }
    masks
}

#[cfg(not(target_arch = "x86_64"))]
fn skip_with(_: (), bytes: &[u8], start: usize, depth: u64) -> Result<usize, SkipError> {
    skip_blocks(bytes, start, depth, masks_scalar, prefix_xor, false)
}

/// A text [`plain_without`] looks for, ASCII case-insensitively.
#[derive(Clone, Debug)]
pub struct Needle {
    /// Lower-case ASCII, not empty.
    text: Box<[u8]>,
}

impl Needle {
    /// `None` unless `text` is ASCII and not empty.
    pub fn new(text: &str) -> Option<Needle> {
        (!text.is_empty() && text.is_ascii()).then(|| Needle { text: text.to_ascii_lowercase().into_bytes().into_boxed_slice() })
    }

    /// The first and last bytes with bit 5 set, as the levels' `starts` masks compare
    /// them: a letter's two cases meet (and a few other pairs, which the full
    /// comparison turns away).
    fn ends(&self) -> (u8, u8) {
        (self.text[0] | 0x20, self.text[self.text.len() - 1] | 0x20)
    }

    /// Whether the text is at `at` of `bytes`.
    fn is_at(&self, bytes: &[u8], at: usize) -> bool {
        bytes.get(at..at + self.text.len()).is_some_and(|window| window.eq_ignore_ascii_case(&self.text))
    }
}

/// Whether every byte of `bytes` is ASCII, none is a backslash, and none of `needles`
/// is in it (ASCII case-insensitively): the test of the bundle's prefilter. Sixty-four
/// bytes at a time, as [`skip_container`] goes: a block's odd bytes and, per needle,
/// where its first byte and (64 bytes from a shifted start) its last byte are, as bit
/// masks; the few places with both are compared in full.
pub fn plain_without(bytes: &[u8], needles: &[Needle]) -> bool {
    #[cfg(target_arch = "x86_64")]
    let plain = plain_without_with(Vector::best(), bytes, needles);
    #[cfg(not(target_arch = "x86_64"))]
    let plain = plain_without_blocks(bytes, needles, odd_scalar, starts_scalar);
    plain
}

/// [`plain_without`] with `vector` instructions (or SSE2 when the processor lacks them).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn plain_without_with(vector: Vector, bytes: &[u8], needles: &[Needle]) -> bool {
    // SAFETY: as in `skip_with`: each level only where the processor has its features.
    unsafe {
        match vector.available() {
            Vector::Avx512 => plain_avx512(bytes, needles),
            Vector::Avx2 => plain_avx2(bytes, needles),
            Vector::Sse2 => plain_sse2(bytes, needles),
        }
    }
}

// Each level gives the loop two masks of a block: its odd bytes, and the places where
// a needle may start (its first byte there, with bit 5 set, and its last byte `len - 1`
// later, when the text reaches that far). Both are combined as vectors and turned into
// one mask at the end: combined as masks, LLVM turned AVX2's into bit-by-bit code.

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn plain_avx512(bytes: &[u8], needles: &[Needle]) -> bool {
    use std::arch::x86_64::{_mm512_cmpeq_epi8_mask, _mm512_movepi8_mask, _mm512_or_si512, _mm512_set1_epi8};
    let odd = |block: &[u8; 64]| {
        let bytes = load512(block);
        _mm512_movepi8_mask(bytes) | _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(b'\\' as i8))
    };
    let folded = |block: &[u8; 64], byte: u8| _mm512_cmpeq_epi8_mask(_mm512_or_si512(load512(block), _mm512_set1_epi8(0x20)), _mm512_set1_epi8(byte as i8));
    let starts = |block: &[u8; 64], ends: Option<&[u8; 64]>, first: u8, last: u8| match ends {
        Some(ends) => folded(block, first) & folded(ends, last),
        None => folded(block, first),
    };
    plain_without_blocks(bytes, needles, odd, starts)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn plain_avx2(bytes: &[u8], needles: &[Needle]) -> bool {
    use std::arch::x86_64::{__m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8};
    let half_mask = |vector: __m256i| u64::from(_mm256_movemask_epi8(vector) as u32);
    let odd = |block: &[u8; 64]| {
        let half = |at: usize| {
            let bytes = load256(&block[at..at + 32]);
            half_mask(_mm256_or_si256(bytes, _mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(b'\\' as i8))))
        };
        half(0) | half(32) << 32
    };
    let folded = |bytes: &[u8], byte: u8| _mm256_cmpeq_epi8(_mm256_or_si256(load256(bytes), _mm256_set1_epi8(0x20)), _mm256_set1_epi8(byte as i8));
    let starts = |block: &[u8; 64], ends: Option<&[u8; 64]>, first: u8, last: u8| {
        let half = |at: usize| {
            let firsts = folded(&block[at..at + 32], first);
            half_mask(match ends {
                Some(ends) => _mm256_and_si256(firsts, folded(&ends[at..at + 32], last)),
                None => firsts,
            })
        };
        half(0) | half(32) << 32
    };
    plain_without_blocks(bytes, needles, odd, starts)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn plain_sse2(bytes: &[u8], needles: &[Needle]) -> bool {
    use std::arch::x86_64::{__m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let quarter_mask = |vector: __m128i| u64::from(_mm_movemask_epi8(vector) as u16);
    let odd = |block: &[u8; 64]| {
        (0..4).fold(0u64, |mask, quarter| {
            let bytes = load128(&block[16 * quarter..16 * quarter + 16]);
            mask | quarter_mask(_mm_or_si128(bytes, _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8)))) << (16 * quarter)
        })
    };
    let folded = |bytes: &[u8], byte: u8| _mm_cmpeq_epi8(_mm_or_si128(load128(bytes), _mm_set1_epi8(0x20)), _mm_set1_epi8(byte as i8));
    let starts = |block: &[u8; 64], ends: Option<&[u8; 64]>, first: u8, last: u8| {
        (0..4).fold(0u64, |mask, quarter| {
            let range = 16 * quarter..16 * quarter + 16;
            let firsts = folded(&block[range.clone()], first);
            let places = match ends {
                Some(ends) => _mm_and_si128(firsts, folded(&ends[range], last)),
                None => firsts,
            };
            mask | quarter_mask(places) << (16 * quarter)
        })
    };
    plain_without_blocks(bytes, needles, odd, starts)
}

/// Sixteen bytes as a vector: built from two words, which compiles to one load (no
/// `unsafe` pointer load). Every level loads its vectors through these three.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn load128(bytes: &[u8]) -> std::arch::x86_64::__m128i {
    let low = i64::from_le_bytes(bytes[..8].try_into().expect("eight bytes"));
    let high = i64::from_le_bytes(bytes[8..16].try_into().expect("eight bytes"));
    std::arch::x86_64::_mm_set_epi64x(high, low)
}

/// Thirty-two bytes as a vector (one load).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn load256(bytes: &[u8]) -> std::arch::x86_64::__m256i {
    std::arch::x86_64::_mm256_set_m128i(load128(&bytes[16..32]), load128(&bytes[..16]))
}

/// Sixty-four bytes as a vector (one load).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn load512(block: &[u8; 64]) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::{_mm512_castsi256_si512, _mm512_inserti64x4};
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(load256(&block[..32])), load256(&block[32..]))
}

/// Bytes that are not ASCII or are a backslash, byte by byte: the reference, and what
/// other architectures use.
#[cfg_attr(target_arch = "x86_64", cfg(test))]
fn odd_scalar(block: &[u8; 64]) -> u64 {
    block.iter().enumerate().fold(0, |mask, (idx, byte)| mask | u64::from(!byte.is_ascii() || *byte == b'\\') << idx)
}

/// Where a needle may start, byte by byte (see the levels' `starts`).
#[cfg_attr(target_arch = "x86_64", cfg(test))]
fn starts_scalar(block: &[u8; 64], ends: Option<&[u8; 64]>, first: u8, last: u8) -> u64 {
    let folded = |block: &[u8; 64], byte: u8| block.iter().enumerate().fold(0, |mask, (idx, each)| mask | u64::from(*each | 0x20 == byte) << idx);
    folded(block, first) & ends.map_or(u64::MAX, |ends| folded(ends, last))
}

/// The loop of [`plain_without`], inlined into each instruction set's function: for one
/// needle (the usual prefilter) with the needle fixed, so that its bytes are broadcast
/// once, not per block.
#[inline(always)]
fn plain_without_blocks(
    bytes: &[u8],
    needles: &[Needle],
    odd: impl Fn(&[u8; 64]) -> u64,
    starts: impl Fn(&[u8; 64], Option<&[u8; 64]>, u8, u8) -> u64,
) -> bool {
    match <&[Needle; 1]>::try_from(needles) {
        Ok(one) => plain_without_each(bytes, one, odd, starts),
        Err(_) => plain_without_each(bytes, needles, odd, starts),
    }
}

/// [`plain_without_blocks`] over `needles`, a slice or an array. The last block is
/// padded with zero bytes (neither odd nor, with bit 5 set, a letter).
#[inline(always)]
fn plain_without_each<'n>(
    bytes: &[u8],
    needles: impl IntoIterator<Item = &'n Needle> + Copy,
    odd: impl Fn(&[u8; 64]) -> u64,
    starts: impl Fn(&[u8; 64], Option<&[u8; 64]>, u8, u8) -> u64,
) -> bool {
    let mut at = 0;
    let mut padded = [0u8; 64];
    while at < bytes.len() {
        let block: &[u8; 64] = match bytes.get(at..at + 64) {
            Some(full) => full.try_into().expect("64 bytes"),
            None => {
                padded[..bytes.len() - at].copy_from_slice(&bytes[at..]);
                &padded
            }
        };
        if odd(block) != 0 {
            return false;
        }
        for needle in needles {
            let (first, last) = needle.ends();
            // Where the needle's last byte is, when the text reaches that far (near the
            // end, the first byte alone picks the places to compare). Both are tested
            // before the one branch: a first byte alone is common, and which blocks
            // have one is not predictable.
            let ends = bytes.get(at + needle.text.len() - 1..at + needle.text.len() + 63).map(|ends| ends.try_into().expect("64 bytes"));
            let mut candidates = starts(block, ends, first, last);
            while candidates != 0 {
                if needle.is_at(bytes, at + candidates.trailing_zeros() as usize) {
                    return false;
                }
                candidates &= candidates - 1;
            }
        }
        at += 64;
    }
    true
}

/// The first `"` or `\\` at or after `from`: where a string or key ends, unless an escape
/// comes first. Sixteen bytes at a time with SSE2 (in every x86-64 processor; no call,
/// the comparison inlines), eight at a time (in a word) elsewhere and for the last bytes.
#[inline]
pub fn find_quote_or_backslash(bytes: &[u8], from: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: SSE2 is in the x86-64 baseline; `find_sse2` only uses value-based
    // intrinsics (its loads are safe slice reads).
    let found = unsafe { find_sse2(bytes, from) };
    #[cfg(not(target_arch = "x86_64"))]
    let found = find_in_words(bytes, from);
    found
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn find_sse2(bytes: &[u8], from: usize) -> Option<usize> {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 16) {
        let lane = load128(chunk);
        let hits = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(lane, quote), _mm_cmpeq_epi8(lane, backslash))) as u32;
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize);
        }
        at += 16;
    }
    find_in_words(bytes, at)
}

/// [`find_quote_or_backslash`] eight bytes at a time, in a `u64`.
fn find_in_words(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quotes = word ^ (ONES * u64::from(b'"'));
        let slashes = word ^ (ONES * u64::from(b'\\'));
        // A zero byte of either marks a hit; the lowest flagged byte is always a true one.
        let hits = (quotes.wrapping_sub(ONES) & !quotes | slashes.wrapping_sub(ONES) & !slashes) & HIGHS;
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes.get(at..)?.iter().position(|byte| matches!(byte, b'"' | b'\\')).map(|offset| at + offset)
}

/// [`prefix_xor`] in one instruction: a carry-less multiplication by all ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
fn clmul_prefix_xor(bits: u64) -> u64 {
    use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x, _mm_set1_epi8};
    _mm_cvtsi128_si64(_mm_clmulepi64_si128::<0>(_mm_set_epi64x(0, bits as i64), _mm_set1_epi8(-1))) as u64
}

/// Bit *i* set when an odd number of bits at or below *i* are set.
fn prefix_xor(mut bits: u64) -> u64 {
    bits ^= bits << 1;
    bits ^= bits << 2;
    bits ^= bits << 4;
    bits ^= bits << 8;
    bits ^= bits << 16;
    bits ^= bits << 32;
    bits
}

/// Why a skipped value is malformed, and where (byte offset in the line).
#[derive(Debug, PartialEq, Eq)]
pub enum SkipError {
    /// The line ends inside the value.
    Unterminated,
    /// A closing bracket with nothing open, at this offset.
    Unbalanced(usize),
}

/// Skips the object or array whose opening bracket is at `start`; returns the offset
/// just past its closing bracket.
pub fn skip_container(bytes: &[u8], start: usize) -> Result<usize, SkipError> {
    skip_from(bytes, start, 0)
}

/// Skips the rest of an object or array from `start`, a position inside it (outside
/// any string); returns the offset just past its closing bracket.
pub fn skip_rest(bytes: &[u8], start: usize) -> Result<usize, SkipError> {
    skip_from(bytes, start, 1)
}

#[cfg(target_arch = "x86_64")]
fn skip_from(bytes: &[u8], start: usize, depth: u64) -> Result<usize, SkipError> {
    skip_with(Vector::best(), bytes, start, depth)
}

#[cfg(not(target_arch = "x86_64"))]
fn skip_from(bytes: &[u8], start: usize, depth: u64) -> Result<usize, SkipError> {
    skip_with((), bytes, start, depth)
}

/// The skipping loop, inlined into each instruction set's function (so that the bit
/// arithmetic is compiled for it too). `popcount`: the processor counts bits in one
/// instruction, so a block whose closing brackets cannot bring the depth to zero is
/// passed whole instead of closing bracket by closing bracket (without it, the bit
/// counts of the walk below are emulated: the SSE2 fallback is the slower level).
#[inline(always)]
fn skip_blocks(
    bytes: &[u8],
    start: usize,
    mut depth: u64,
    masks: impl Fn(&[u8; 64]) -> Masks,
    prefix_xor: impl Fn(u64) -> u64,
    popcount: bool,
) -> Result<usize, SkipError> {
    let mut in_string = false;
    // The first byte of the next block is escaped (a backslash ended this one).
    let mut escape_carry = false;
    let mut at = start;
    let mut block;
    while at < bytes.len() {
        let Masks { mut quotes, backslashes, mut opens, mut closes } = match bytes.get(at..at + 64) {
            Some(full) => masks(full.try_into().expect("64 bytes")),
            // The last bytes: the masks of the text's last 64 bytes, moved down so that
            // bit 0 is `at` (the bits past the end are zero, as for spaces); a text
            // shorter than 64 bytes is padded with spaces instead.
            None if bytes.len() >= 64 => {
                let window = bytes.len() - 64;
                let masks = masks(bytes[window..].try_into().expect("64 bytes"));
                let shift = at - window;
                Masks { quotes: masks.quotes >> shift, backslashes: masks.backslashes >> shift, opens: masks.opens >> shift, closes: masks.closes >> shift }
            }
            None => {
                block = [b' '; 64];
                block[..bytes.len() - at].copy_from_slice(&bytes[at..]);
                masks(&block)
            }
        };
        let mut escaped: u64 = u64::from(escape_carry);
        escape_carry = false;
        if backslashes != 0 {
            // Rare: walk the backslashes; each unescaped one escapes the next byte.
            let mut pending = backslashes & !escaped;
            while pending != 0 {
                let idx = pending.trailing_zeros();
                if idx == 63 {
                    escape_carry = true;
                } else {
                    escaped |= 1 << (idx + 1);
                }
                pending &= !(1 << idx);
                pending &= !escaped;
            }
        }
        quotes &= !escaped;
        let mut inside = prefix_xor(quotes);
        if in_string {
            inside = !inside;
        }
        in_string = inside >> 63 == 1;
        // Brackets outside strings (a closing quote's own bit is outside; brackets never
        // share a byte with quotes, so the quote bits themselves do not matter).
        opens &= !inside & !escaped;
        closes &= !inside & !escaped;
        if popcount && depth > u64::from(closes.count_ones()) {
            depth = depth + u64::from(opens.count_ones()) - u64::from(closes.count_ones());
            at += 64;
            continue;
        }
        // Otherwise walk the closing brackets (a few per block), the depth before each
        // counted from the opening brackets before it: no branch on which bracket comes
        // next, whose pattern a processor cannot predict, only on where the value ends.
        let mut pending = closes;
        let mut closed = 0;
        while pending != 0 {
            let idx = pending.trailing_zeros();
            let before = depth + u64::from((opens & ((1u64 << idx) - 1)).count_ones()) - closed;
            if before <= 1 {
                return if before == 1 { Ok(at + idx as usize + 1) } else { Err(SkipError::Unbalanced(at + idx as usize)) };
            }
            closed += 1;
            pending &= pending - 1;
        }
        depth = depth + u64::from(opens.count_ones()) - closed;
        at += 64;
    }
    Err(SkipError::Unterminated)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain byte-by-byte skipper: the reference.
    fn skip_reference(bytes: &[u8], start: usize) -> Result<usize, SkipError> {
        let mut depth = 0u64;
        let mut idx = start;
        let mut in_string = false;
        while idx < bytes.len() {
            match (in_string, bytes[idx]) {
                // Outside strings a backslash is invalid JSON; both skippers let it
                // escape the next byte, as inside.
                (_, b'\\') => idx += 1,
                (true, b'"') => in_string = false,
                (false, b'"') => in_string = true,
                (false, b'{' | b'[') => depth += 1,
                (false, b'}' | b']') => {
                    if depth == 0 {
                        return Err(SkipError::Unbalanced(idx));
                    }
                    depth -= 1;
                    if depth == 0 {
                        return Ok(idx + 1);
                    }
                }
                _ => {}
            }
            idx += 1;
        }
        Err(SkipError::Unterminated)
    }

    /// Every instruction set there is to test here (AVX2 and AVX-512 only where the
    /// processor has them; a missing one is reported as skipped).
    #[cfg(target_arch = "x86_64")]
    fn vectors() -> Vec<Vector> {
        let all = [Vector::Sse2, Vector::Avx2, Vector::Avx512];
        for missing in all.iter().filter(|vector| **vector > Vector::best()) {
            eprintln!("SKIPPED: this processor lacks {missing:?} (with POPCNT/PCLMULQDQ); that skipper is not tested");
        }
        all.into_iter().filter(|vector| *vector <= Vector::best()).collect()
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn vectors() -> Vec<()> {
        vec![()]
    }

    #[test]
    fn quotes_and_backslashes_are_found_where_a_byte_by_byte_search_finds_them() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..80 {
            for _ in 0..20 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly letters, sometimes a quote, a backslash or a high byte.
                        match state % 40 {
                            0 => b'"',
                            1 => b'\\',
                            2 => 0xC3,
                            n => b'a' + (n % 26) as u8,
                        }
                    })
                    .collect();
                for from in 0..=len + 1 {
                    let expected = text.get(from..).and_then(|rest| rest.iter().position(|byte| matches!(byte, b'"' | b'\\'))).map(|at| from + at);
                    assert_eq!(find_quote_or_backslash(&text, from), expected, "{text:?} from {from}");
                    assert_eq!(find_in_words(&text, from), expected, "{text:?} from {from}");
                }
            }
        }
    }

    /// The prefilter test, byte by byte.
    fn plain_without_reference(bytes: &[u8], needles: &[&str]) -> bool {
        bytes.iter().all(|byte| byte.is_ascii() && *byte != b'\\')
            && !needles.iter().any(|needle| bytes.windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle.as_bytes())))
    }

    #[test]
    fn plain_lines_without_needles_are_found_as_byte_by_byte() {
        // Letters of the needles in both cases, their neighbours under bit 5 (`@`, `` ` ``),
        // an escape and a high byte, at every place of texts of every length near blocks.
        let alphabet = b"bBaAsShH@`\\x \"\xc3";
        let needle_sets: [&[&str]; 4] = [&[], &["bash"], &["sh", "bash", "b@"], &["a"]];
        let mut state: u64 = 5;
        for round in 0..6_000 {
            let len = round % 200;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    // Mostly plain letters: odd bytes rarely, so that needles decide.
                    let pick = (state >> 40) as usize % (alphabet.len() * 8);
                    if pick < alphabet.len() { alphabet[pick] } else { b'a' + (pick % 26) as u8 }
                })
                .collect();
            for needles in needle_sets {
                let expected = plain_without_reference(&text, needles);
                let built: Vec<Needle> = needles.iter().map(|text| Needle::new(text).unwrap()).collect();
                assert_eq!(plain_without_blocks(&text, &built, odd_scalar, starts_scalar), expected, "scalar {needles:?} {:?}", String::from_utf8_lossy(&text));
                #[cfg(target_arch = "x86_64")]
                for vector in vectors() {
                    assert_eq!(plain_without_with(vector, &text, &built), expected, "{vector:?} {needles:?} {:?}", String::from_utf8_lossy(&text));
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_masks_equal_scalar_masks() {
        let mut state: u64 = 1;
        for vector in vectors() {
            for _ in 0..2_000 {
                let mut block = [0u8; 64];
                for byte in block.iter_mut() {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    *byte = (state >> 56) as u8;
                }
                assert_eq!(masks_with(vector, &block), masks_scalar(&block), "{vector:?} {block:?}");
            }
        }
    }

    #[test]
    fn skips_like_the_reference_on_random_json_like_text() {
        let alphabet = b"{}[]\"\\ab:,   \xc3\xa9";
        let mut state: u64 = 99;
        for round in 0..20_000 {
            let len = 1 + round % 300;
            let mut text = vec![b'{'];
            for _ in 0..len {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push(alphabet[(state >> 40) as usize % alphabet.len()]);
            }
            skips_as_the_reference_does(&text, round);
        }
    }

    /// Every skipper skips `text` as the reference does from its start, and from a
    /// bracket inside (chosen by `round`, so that the last block starts anywhere).
    fn skips_as_the_reference_does(text: &[u8], round: usize) {
        let inside = text.iter().skip(1 + round % 7).position(|byte| matches!(byte, b'{' | b'[')).map(|at| at + 1 + round % 7);
        for vector in vectors() {
            for start in std::iter::once(0).chain(inside) {
                assert_eq!(skip_with(vector, text, start, 0), skip_reference(text, start), "{vector:?} from {start} {:?}", String::from_utf8_lossy(text));
            }
        }
    }

    #[test]
    fn deep_values_skip_like_the_reference() {
        // Deep enough that whole blocks pass on their bracket counts.
        let alphabet = b"{}[]\"\\ab:,  ";
        let mut state: u64 = 7;
        for round in 0..3_000 {
            let depth = 1 + round % 90;
            let mut text = vec![b'['; depth];
            for _ in 0..(round * 7) % 700 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push(alphabet[(state >> 40) as usize % alphabet.len()]);
            }
            text.extend(std::iter::repeat_n(b']', depth + round % 5));
            skips_as_the_reference_does(&text, round);
        }
    }

    #[test]
    fn skips_real_values_across_blocks() {
        let value = r#"{"a": [1, {"b": "x\"]}\\"}], "c": "}}}}", "long": "0123456789012345678901234567890123456789012345678901234567890123456789\\\""}"#;
        let line = format!(r#"{{"skip": {value}, "keep": 7}}"#);
        let start = line.find(value).unwrap();
        assert_eq!(skip_container(line.as_bytes(), start), Ok(start + value.len()));
        assert_eq!(skip_container(b"[1, 2", 0), Err(SkipError::Unterminated));
        assert_eq!(skip_container(b"[\"]\"", 0), Err(SkipError::Unterminated));
    }
}
