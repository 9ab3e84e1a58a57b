//! An event's categories, as the engine holds them and writes them for the guest.

/// A set of category ids, held inline for ids below 64 (every ECS category): deciding
/// whether any rule runs on an event must not chase a pointer per event. The rare ids
/// from 64 on are in a boxed slice (16 bytes where a vector takes 24: an event is eight
/// bytes smaller, and the engine reads events one after another).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Categories {
    low: u64,
    high: Box<[u32]>,
}

impl Categories {
    pub fn insert(&mut self, id: u32) {
        if id < 64 {
            self.low |= 1 << id;
        } else if !self.high.contains(&id) {
            let mut high = std::mem::take(&mut self.high).into_vec();
            high.push(id);
            self.high = high.into_boxed_slice();
        }
    }

    pub fn contains(&self, id: u32) -> bool {
        if id < 64 { self.low & (1 << id) != 0 } else { self.high.contains(&id) }
    }

    /// Whether any id is in `low_mask` (ids below 64) or satisfies `high` (the others).
    pub(super) fn any(&self, low_mask: u64, high: impl Fn(u32) -> bool) -> bool {
        self.low & low_mask != 0 || self.high.iter().any(|id| high(*id))
    }

    /// The ids, ascending below 64, then in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let mut low = self.low;
        std::iter::from_fn(move || {
            (low != 0).then(|| {
                let id = low.trailing_zeros();
                low &= low - 1;
                id
            })
        })
        .chain(self.high.iter().copied())
    }

    pub fn len(&self) -> usize {
        self.low.count_ones() as usize + self.high.len()
    }

    /// Writes the ids, in [`Categories::iter`]'s order, as little-endian `u32`s into
    /// `out` while they fit; returns how many. (The usual event has one or two ids, all
    /// below 64: a loop over their bits, without the iterator's chain.)
    #[inline]
    pub fn write_ids(&self, out: &mut [u8]) -> usize {
        let mut slots = out.chunks_exact_mut(4);
        let mut count = 0;
        let mut low = self.low;
        while low != 0 {
            let Some(slot) = slots.next() else { return count };
            slot.copy_from_slice(&low.trailing_zeros().to_le_bytes());
            low &= low - 1;
            count += 1;
        }
        for (slot, id) in slots.zip(&self.high) {
            slot.copy_from_slice(&id.to_le_bytes());
            count += 1;
        }
        count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Extend<u32> for Categories {
    fn extend<I: IntoIterator<Item = u32>>(&mut self, ids: I) {
        ids.into_iter().for_each(|id| self.insert(id));
    }
}

impl FromIterator<u32> for Categories {
    fn from_iter<I: IntoIterator<Item = u32>>(ids: I) -> Categories {
        let mut set = Categories::default();
        ids.into_iter().for_each(|id| set.insert(id));
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_ids_are_the_iterated_ids_while_they_fit() {
        let sets: [&[u32]; 6] = [&[], &[0], &[3, 63], &[64], &[1, 70, 5, 200], &[0, 1, 2, 3, 4, 65, 66]];
        for ids in sets {
            let categories: Categories = ids.iter().copied().collect();
            let expected: Vec<u32> = categories.iter().collect();
            for room in 0..=8 {
                let mut out = vec![0xAAu8; 4 * room];
                let count = categories.write_ids(&mut out);
                let written: Vec<u32> = out.chunks_exact(4).take(count).map(|word| u32::from_le_bytes(word.try_into().unwrap())).collect();
                assert_eq!(written, expected[..expected.len().min(room)], "{ids:?} in room for {room}");
            }
        }
    }
}
