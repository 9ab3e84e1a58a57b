//! Reading a batch's results back from guest memory.

/// The true results (bytes equal to 1) of a batch's result rows (`per_event` bytes each),
/// as (row, predicate id), in order; stops after `total` of them (what `eval` counted).
/// Rows are passed over eight zero bytes at a time: most results are false.
pub(super) fn collect_hits(results: &[u8], per_event: usize, total: usize, hits: &mut Vec<(usize, usize)>) {
    let mut at = 0;
    while at < results.len() && hits.len() < total {
        if let Some(word) = results.get(at..at + 8)
            && u64::from_le_bytes(word.try_into().expect("eight bytes")) == 0
        {
            at += 8;
            continue;
        }
        if results[at] == 1 {
            hits.push((at / per_event.max(1), at % per_event.max(1)));
        }
        at += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::collect_hits;

    /// The true results, byte by byte.
    fn naive(results: &[u8], per_event: usize) -> Vec<(usize, usize)> {
        results.iter().enumerate().filter(|(_, result)| **result == 1).map(|(at, _)| (at / per_event, at % per_event)).collect()
    }

    #[test]
    fn hits_are_the_true_results_in_order() {
        for per_event in [1, 3, 8, 13, 64] {
            for events in [1, 7, 64] {
                // Every pattern of a few true results, and a disabled-looking 2 (not true).
                for seed in 0..200u64 {
                    let mut results = vec![0u8; per_event * events];
                    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    for _ in 0..(seed % 6) {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let at = (state % results.len() as u64) as usize;
                        results[at] = if state % 5 == 0 { 2 } else { 1 };
                    }
                    let expected = naive(&results, per_event);
                    let mut hits = Vec::new();
                    collect_hits(&results, per_event, expected.len(), &mut hits);
                    assert_eq!(hits, expected, "{per_event} per event, {events} events, seed {seed}");
                }
            }
        }
    }
}
