//! A fixed-capacity memory of the most recent entries, oldest overwritten first.
//!
//! Owns the engine's short memory of things that are over but may still be answered: hits
//! whose execution timed out, so that a dealer's late ExecutionReport is recognised (and a
//! late fill reaches the desk) instead of being refused as unknown. All storage is allocated
//! at construction; pushing into a full memory forgets the oldest entry (and says so), never
//! grows. It must not know what it stores, read the clock or allocate after construction.

/// The last `capacity` entries pushed.
#[derive(Debug)]
pub struct Recent<T> {
    entries: Vec<Option<T>>,
    next: usize,
}

impl<T> Recent<T> {
    /// Room for `capacity` entries, allocated now. A capacity of 0 remembers nothing.
    pub fn with_capacity(capacity: usize) -> Recent<T> {
        Recent {
            entries: (0..capacity).map(|_| None).collect(),
            next: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Remembers `value`. Returns true when the oldest entry was forgotten to make room.
    pub fn push(&mut self, value: T) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        let slot = &mut self.entries[self.next];
        let forgot = slot.is_some();
        *slot = Some(value);
        self.next = (self.next + 1) % self.entries.len();
        forgot
    }

    /// The first remembered entry `pred` accepts (O(capacity): the memory is small and only
    /// consulted off the request path).
    pub fn find_mut(&mut self, mut pred: impl FnMut(&T) -> bool) -> Option<&mut T> {
        self.entries.iter_mut().flatten().find(|e| pred(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_entries_and_forgets_the_oldest() {
        let mut r = Recent::with_capacity(2);
        assert!(!r.push(1));
        assert!(!r.push(2));
        assert!(r.push(3)); // 1 forgotten
        assert!(r.find_mut(|&v| v == 1).is_none());
        assert_eq!(r.find_mut(|&v| v == 2).copied(), Some(2));
        *r.find_mut(|&v| v == 3).expect("kept") = 30;
        assert!(r.find_mut(|&v| v == 30).is_some());
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let mut r = Recent::with_capacity(0);
        assert!(r.push(1));
        assert!(r.find_mut(|_| true).is_none());
        assert_eq!(r.capacity(), 0);
    }
}
