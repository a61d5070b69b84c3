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

/// Fixed-capacity storage. Every slot always holds a value (a free slot's value is stale
/// and unreachable through handles), so an entry can be written in place (`insert_with`)
/// instead of being built elsewhere and moved in: the engine's RFQs are kilobytes each.
/// Occupancy lives in its own compact array, so walking the live entries does not touch the
/// values of free slots.
#[derive(Debug)]
pub struct Slab<T> {
    values: Vec<T>,
    /// `USED` for a live slot; for a free slot, the next free slot or `NONE`.
    links: Vec<u32>,
    generations: Vec<u32>,
    free_head: u32,
    len: usize,
}

const NONE: u32 = u32::MAX;
const USED: u32 = u32::MAX - 1;

impl<T: Default> Slab<T> {
    /// A slab of exactly `capacity` entries, all allocated now.
    pub fn with_capacity(capacity: usize) -> Slab<T> {
        Slab::with_capacity_filled(capacity, T::default)
    }
}

impl<T> Slab<T> {
    /// A slab of exactly `capacity` entries, all allocated now, each starting as `blank()`.
    pub fn with_capacity_filled(capacity: usize, mut blank: impl FnMut() -> T) -> Slab<T> {
        assert!(
            capacity < USED as usize,
            "slab capacity {capacity} too large"
        );
        let mut values = Vec::with_capacity(capacity);
        let mut links = Vec::with_capacity(capacity);
        for i in 0..capacity {
            values.push(blank());
            links.push(if i + 1 < capacity {
                (i + 1) as u32
            } else {
                NONE
            });
        }
        Slab {
            values,
            links,
            generations: vec![0; capacity],
            free_head: if capacity == 0 { NONE } else { 0 },
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.values.len()
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

    /// Stores `value`; gives it back when the slab is full.
    pub fn insert(&mut self, value: T) -> Result<Handle, T> {
        let mut value = Some(value);
        match self.insert_with(|slot| *slot = value.take().expect("taken once")) {
            Some(h) => Ok(h),
            None => Err(value.take().expect("not taken when full")),
        }
    }

    /// Takes a free slot and lets `init` write the entry in place. `init` sees the slot's
    /// stale value (a blank or a removed entry) and must set every field. `None` when full
    /// (`init` is not called).
    pub fn insert_with(&mut self, init: impl FnOnce(&mut T)) -> Option<Handle> {
        if self.free_head == NONE {
            return None;
        }
        let index = self.free_head;
        let i = index as usize;
        let next_free = self.links[i];
        assert!(
            next_free != USED,
            "slab free list points at a used slot {index}"
        );
        self.free_head = next_free;
        self.links[i] = USED;
        init(&mut self.values[i]);
        self.len += 1;
        Some(Handle {
            index,
            generation: self.generations[i],
        })
    }

    fn live(&self, h: Handle) -> bool {
        let i = h.index as usize;
        i < self.values.len() && self.generations[i] == h.generation && self.links[i] == USED
    }

    /// The handle of the live entry in slot `index`, if any.
    pub fn handle_at(&self, index: u32) -> Option<Handle> {
        match self.links.get(index as usize) {
            Some(&USED) => Some(Handle {
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
        Some(&self.values[h.index as usize])
    }

    pub fn get_mut(&mut self, h: Handle) -> Option<&mut T> {
        if !self.live(h) {
            return None;
        }
        Some(&mut self.values[h.index as usize])
    }

    /// Frees the entry and returns it for a last look (it stays in its slot, unreachable
    /// through handles, until the slot is reused). `None` for a stale handle.
    pub fn remove(&mut self, h: Handle) -> Option<&mut T> {
        if !self.live(h) {
            return None;
        }
        let i = h.index as usize;
        self.links[i] = self.free_head;
        self.free_head = h.index;
        self.generations[i] = self.generations[i].wrapping_add(1);
        self.len -= 1;
        Some(&mut self.values[i])
    }

    /// Live entries in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.links
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == USED)
            .map(move |(i, _)| {
                (
                    Handle {
                        index: i as u32,
                        generation: self.generations[i],
                    },
                    &self.values[i],
                )
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
        assert_eq!(s.remove(a), Some(&mut 'a'));
        assert!(s.insert('e').is_ok());
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn stale_handles_are_refused_after_reuse() {
        let mut s = Slab::with_capacity(1);
        let a = s.insert(1).unwrap();
        assert_eq!(s.remove(a), Some(&mut 1));
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
