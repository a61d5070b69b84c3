//! A fixed-capacity slab with generation-checked handles.
//!
//! Owns storage for the engine's bounded collections (open RFQs, quotes, timers): every slot
//! is allocated up front, so inserting and removing never allocate, and a full slab says so
//! (`None`) instead of growing. A handle carries the slot's generation, so a stale handle to a
//! reused slot is refused rather than aliasing someone else's entry. It must not know what it
//! stores.

/// A handle to a slab entry: slot index and the generation it was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle {
    pub index: u32,
    pub generation: u32,
}

#[derive(Debug)]
enum Slot<T> {
    Free { next_free: u32 },
    Used(T),
}

/// Fixed-capacity storage. `NONE` marks the end of the free list.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    generations: Vec<u32>,
    free_head: u32,
    len: usize,
}

const NONE: u32 = u32::MAX;

impl<T> Slab<T> {
    /// A slab of exactly `capacity` entries, all allocated now.
    pub fn with_capacity(capacity: usize) -> Slab<T> {
        assert!(
            capacity < NONE as usize,
            "slab capacity {capacity} too large"
        );
        let mut slots = Vec::with_capacity(capacity);
        for i in 0..capacity {
            let next = if i + 1 < capacity {
                (i + 1) as u32
            } else {
                NONE
            };
            slots.push(Slot::Free { next_free: next });
        }
        Slab {
            slots,
            generations: vec![0; capacity],
            free_head: if capacity == 0 { NONE } else { 0 },
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.free_head == NONE
    }

    /// Stores `value`; `Err(value)` when full.
    pub fn insert(&mut self, value: T) -> Result<Handle, T> {
        if self.free_head == NONE {
            return Err(value);
        }
        let index = self.free_head;
        let slot = &mut self.slots[index as usize];
        let Slot::Free { next_free } = *slot else {
            panic!("slab free list points at a used slot {index}");
        };
        self.free_head = next_free;
        *slot = Slot::Used(value);
        self.len += 1;
        Ok(Handle {
            index,
            generation: self.generations[index as usize],
        })
    }

    fn live(&self, h: Handle) -> bool {
        (h.index as usize) < self.slots.len()
            && self.generations[h.index as usize] == h.generation
            && matches!(self.slots[h.index as usize], Slot::Used(_))
    }

    /// The live handle of slot `index`, if that slot is in use.
    pub fn handle_at(&self, index: u32) -> Option<Handle> {
        match self.slots.get(index as usize) {
            Some(Slot::Used(_)) => Some(Handle {
                index,
                generation: self.generations[index as usize],
            }),
            _ => None,
        }
    }

    pub fn get(&self, h: Handle) -> Option<&T> {
        if !self.live(h) {
            return None;
        }
        match &self.slots[h.index as usize] {
            Slot::Used(v) => Some(v),
            Slot::Free { .. } => None,
        }
    }

    pub fn get_mut(&mut self, h: Handle) -> Option<&mut T> {
        if !self.live(h) {
            return None;
        }
        match &mut self.slots[h.index as usize] {
            Slot::Used(v) => Some(v),
            Slot::Free { .. } => None,
        }
    }

    /// Removes and returns the entry; the handle (and every copy of it) goes stale.
    pub fn remove(&mut self, h: Handle) -> Option<T> {
        if !self.live(h) {
            return None;
        }
        let i = h.index as usize;
        let old = std::mem::replace(
            &mut self.slots[i],
            Slot::Free {
                next_free: self.free_head,
            },
        );
        self.free_head = h.index;
        self.generations[i] = self.generations[i].wrapping_add(1);
        self.len -= 1;
        match old {
            Slot::Used(v) => Some(v),
            Slot::Free { .. } => panic!("slab slot {i} was live but free"),
        }
    }

    /// Live entries with their handles, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| match s {
                Slot::Used(v) => Some((
                    Handle {
                        index: i as u32,
                        generation: self.generations[i],
                    },
                    v,
                )),
                Slot::Free { .. } => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_to_capacity_then_refuses() {
        let mut s = Slab::with_capacity(3);
        let a = s.insert('a').unwrap();
        let _b = s.insert('b').unwrap();
        let _c = s.insert('c').unwrap();
        assert!(s.is_full());
        assert_eq!(s.insert('d'), Err('d'));
        assert_eq!(s.remove(a), Some('a'));
        assert!(s.insert('e').is_ok());
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn stale_handles_are_refused_after_reuse() {
        let mut s = Slab::with_capacity(1);
        let a = s.insert(1).unwrap();
        assert_eq!(s.remove(a), Some(1));
        let b = s.insert(2).unwrap();
        assert_eq!(a.index, b.index);
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&2));
    }

    #[test]
    fn zero_capacity_is_always_full() {
        let mut s: Slab<u8> = Slab::with_capacity(0);
        assert_eq!(s.insert(1), Err(1));
        assert_eq!(
            s.get(Handle {
                index: 0,
                generation: 0
            }),
            None
        );
    }
}
