//! Where a FIX session keeps what must outlive one connection: the next sequence numbers in
//! both directions and the application messages it sent, for ResendRequest.
//!
//! Owns the `MessageStore` trait and `MemoryStore`, a bounded in-memory implementation (the
//! journal backs the same trait later, which is how sequence numbers survive a restart). A
//! store only keeps bytes and numbers: it must not decide what a gap fill is, parse messages or
//! read the clock (`now` is passed to `reset`). `MemoryStore` never grows past its configured
//! bounds: the oldest kept message is overwritten, and a resend of what is no longer kept is
//! gap-filled by the session.

use crate::time::Nanos;

/// Why a store refused an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The frame is longer than the store keeps.
    TooLarge { len: usize, limit: usize },
    /// The backing medium failed (journal-backed stores).
    Io,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::TooLarge { len, limit } => {
                write!(f, "frame of {len} bytes exceeds the store limit of {limit}")
            }
            StoreError::Io => f.write_str("message store I/O failure"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The persistent state of one FIX session (one SenderCompID/TargetCompID pair).
///
/// Sequence numbers start at 1. The session calls `set_next_*` after every message it sends or
/// accepts, and `store_sent` for every application message it sends (session-level messages are
/// never resent, only gap-filled, so they need not be kept).
pub trait MessageStore {
    /// MsgSeqNum of the next message we send.
    fn next_sender_seq(&self) -> u64;
    /// MsgSeqNum we expect on the next message from the peer.
    fn next_target_seq(&self) -> u64;
    fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError>;
    fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError>;
    /// Keeps a sent frame (complete, `8=` to checksum) under its MsgSeqNum.
    fn store_sent(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError>;
    /// Calls `visit` for each kept frame whose MsgSeqNum is in `begin..=end`, in ascending
    /// order, stopping after `max` frames. Returns how many frames were visited.
    fn fetch_sent(
        &self,
        begin: u64,
        end: u64,
        max: usize,
        visit: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<usize, StoreError>;
    /// Forgets every kept frame and sets both sequence numbers back to 1 (a new FIX session).
    fn reset(&mut self, now: Nanos) -> Result<(), StoreError>;
    /// When the current FIX session (sequence 1) began.
    fn creation_time(&self) -> Nanos;
}

/// Limits of a `MemoryStore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreLimits {
    /// Sent messages kept for resend; older ones are overwritten (and gap-filled on resend).
    pub max_messages: usize,
    /// Longest frame kept; longer ones are refused.
    pub max_message_bytes: usize,
}

impl Default for MemoryStoreLimits {
    fn default() -> Self {
        MemoryStoreLimits {
            max_messages: 4096,
            max_message_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// 0 = empty.
    seq: u64,
    bytes: Vec<u8>,
}

/// A bounded in-memory `MessageStore`: a ring of `max_messages` slots indexed by MsgSeqNum.
/// Slot buffers are reused, so storing allocates only until each slot has grown once.
#[derive(Debug)]
pub struct MemoryStore {
    next_sender: u64,
    next_target: u64,
    created: Nanos,
    limits: MemoryStoreLimits,
    slots: Vec<Slot>,
    /// Frames refused because they were too long.
    pub refused_too_large: u64,
}

impl MemoryStore {
    pub fn new(limits: MemoryStoreLimits, now: Nanos) -> MemoryStore {
        assert!(
            limits.max_messages > 0,
            "a store must keep at least one message"
        );
        let mut slots = Vec::with_capacity(limits.max_messages);
        slots.resize_with(limits.max_messages, Slot::default);
        MemoryStore {
            next_sender: 1,
            next_target: 1,
            created: now,
            limits,
            slots,
            refused_too_large: 0,
        }
    }

    pub fn limits(&self) -> MemoryStoreLimits {
        self.limits
    }

    fn slot_index(&self, seq: u64) -> usize {
        (seq % self.slots.len() as u64) as usize
    }
}

impl MessageStore for MemoryStore {
    fn next_sender_seq(&self) -> u64 {
        self.next_sender
    }
    fn next_target_seq(&self) -> u64 {
        self.next_target
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.next_sender = seq;
        Ok(())
    }
    fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.next_target = seq;
        Ok(())
    }

    fn store_sent(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError> {
        if frame.len() > self.limits.max_message_bytes {
            self.refused_too_large += 1;
            return Err(StoreError::TooLarge {
                len: frame.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        let i = self.slot_index(seq);
        let slot = &mut self.slots[i];
        slot.seq = seq;
        slot.bytes.clear();
        if slot.bytes.capacity() < frame.len() {
            // Grow in power-of-two steps from 512 bytes (capped at the largest frame kept), so
            // a reused slot stops reallocating once it has held a typical message: the store
            // allocates nothing in steady state.
            let want = frame
                .len()
                .max(512)
                .next_power_of_two()
                .min(self.limits.max_message_bytes.max(frame.len()));
            slot.bytes.reserve_exact(want);
        }
        slot.bytes.extend_from_slice(frame);
        Ok(())
    }

    fn fetch_sent(
        &self,
        begin: u64,
        end: u64,
        max: usize,
        visit: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<usize, StoreError> {
        // Only the last `max_messages` sequence numbers can still be kept: never walk further.
        let last_sent = self.next_sender.saturating_sub(1);
        let end = end.min(last_sent);
        let oldest_kept = last_sent
            .saturating_sub(self.slots.len() as u64)
            .saturating_add(1);
        let mut seq = begin.max(oldest_kept).max(1);
        let mut visited = 0;
        while seq <= end && visited < max {
            let slot = &self.slots[self.slot_index(seq)];
            if slot.seq == seq {
                visit(seq, &slot.bytes);
                visited += 1;
            }
            seq += 1;
        }
        Ok(visited)
    }

    fn reset(&mut self, now: Nanos) -> Result<(), StoreError> {
        self.next_sender = 1;
        self.next_target = 1;
        self.created = now;
        for slot in &mut self.slots {
            slot.seq = 0;
            slot.bytes.clear();
        }
        Ok(())
    }

    fn creation_time(&self) -> Nanos {
        self.created
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_messages: usize) -> MemoryStore {
        MemoryStore::new(
            MemoryStoreLimits {
                max_messages,
                max_message_bytes: 64,
            },
            Nanos(5),
        )
    }

    fn collect(s: &MemoryStore, begin: u64, end: u64, max: usize) -> Vec<(u64, Vec<u8>)> {
        let mut got = Vec::new();
        let n = s
            .fetch_sent(begin, end, max, &mut |seq, b| got.push((seq, b.to_vec())))
            .unwrap();
        assert_eq!(n, got.len());
        got
    }

    #[test]
    fn keeps_sequence_numbers_and_frames() {
        let mut s = store(8);
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (1, 1));
        for seq in 1..=5u64 {
            if seq % 2 == 0 {
                s.store_sent(seq, format!("m{seq}").as_bytes()).unwrap();
            }
            s.set_next_sender_seq(seq + 1).unwrap();
        }
        s.set_next_target_seq(9).unwrap();
        assert_eq!(s.next_target_seq(), 9);
        let got = collect(&s, 1, 0, 100);
        assert!(got.is_empty(), "end 0 is below begin: {got:?}");
        let got = collect(&s, 1, 100, 100);
        assert_eq!(got, vec![(2, b"m2".to_vec()), (4, b"m4".to_vec())]);
        let got = collect(&s, 1, 100, 1);
        assert_eq!(got, vec![(2, b"m2".to_vec())]);
    }

    #[test]
    fn overwrites_the_oldest_and_never_returns_a_stale_slot() {
        let mut s = store(4);
        for seq in 1..=10u64 {
            s.store_sent(seq, &[seq as u8]).unwrap();
            s.set_next_sender_seq(seq + 1).unwrap();
        }
        let seqs: Vec<u64> = collect(&s, 1, 10, 100).iter().map(|x| x.0).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
    }

    #[test]
    fn refuses_frames_over_the_limit_and_counts_them() {
        let mut s = store(4);
        assert_eq!(
            s.store_sent(1, &[0u8; 65]),
            Err(StoreError::TooLarge { len: 65, limit: 64 })
        );
        assert_eq!(s.refused_too_large, 1);
    }

    #[test]
    fn reset_starts_a_new_session() {
        let mut s = store(4);
        s.store_sent(1, b"x").unwrap();
        s.set_next_sender_seq(2).unwrap();
        s.set_next_target_seq(7).unwrap();
        s.reset(Nanos(99)).unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (1, 1));
        assert_eq!(s.creation_time(), Nanos(99));
        s.set_next_sender_seq(2).unwrap();
        assert!(collect(&s, 1, 1, 10).is_empty());
    }
}
