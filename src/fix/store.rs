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

/// Where a kept frame is: its MsgSeqNum (0 = empty) and its bytes in the ring.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    seq: u64,
    /// Position of its first byte in the stream of everything written since the ring was
    /// (re)built, skipped tails included: a frame is intact while the stream has not moved
    /// one ring length past it.
    at: u64,
    /// Where its bytes are in the ring (a frame never straddles the ring's end).
    offset: usize,
    len: usize,
}

/// Smallest ring allocated once the first frame is kept.
const MIN_RING_BYTES: usize = 4096;

/// A bounded in-memory `MessageStore`: the last `max_messages` MsgSeqNums, by `seq %
/// max_messages`, and their frames packed back to back in one byte ring.
///
/// Packing keeps consecutive frames on consecutive cache lines (a frame touches
/// `len / 64 + 1` lines, not a separately allocated slot of at least 512 bytes plus its
/// header), the ring is written strictly ahead (which hardware prefetchers follow), and it is
/// only as large as the frames it must keep plus a quarter, so a line is written again after
/// the fewest other writes. The ring grows (by at least a quarter, re-packing what is kept)
/// only when writing a frame would overwrite one still kept, so it allocates until it holds
/// `max_messages` frames of the sizes seen, then never; it never exceeds
/// `(max_messages + 1) * max_message_bytes`. Whether a write is safe is checked against a
/// bound (`safe_until`) recomputed from the index only when a write reaches it, not on every
/// frame.
#[derive(Debug)]
pub struct MemoryStore {
    next_sender: u64,
    next_target: u64,
    created: Nanos,
    limits: MemoryStoreLimits,
    index: Vec<Entry>,
    ring: Vec<u8>,
    /// Stream position of the next byte written, and where it goes in the ring.
    head: u64,
    head_offset: usize,
    /// Writes ending at or before this stream position overwrite no kept frame (0: unknown).
    safe_until: u64,
    /// Highest MsgSeqNum kept since the last reset (0: none).
    newest: u64,
    /// No kept MsgSeqNum is below this (a cursor that only moves up, for finding the oldest
    /// kept frame in O(1) amortised).
    oldest: u64,
    /// Frames refused because they were too long.
    pub refused_too_large: u64,
    /// Times the ring was (re)allocated.
    pub ring_growths: u64,
}

impl MemoryStore {
    pub fn new(limits: MemoryStoreLimits, now: Nanos) -> MemoryStore {
        assert!(
            limits.max_messages > 0,
            "a store must keep at least one message"
        );
        MemoryStore {
            next_sender: 1,
            next_target: 1,
            created: now,
            limits,
            index: vec![Entry::default(); limits.max_messages],
            ring: Vec::new(),
            head: 0,
            head_offset: 0,
            safe_until: 0,
            newest: 0,
            oldest: 0,
            refused_too_large: 0,
            ring_growths: 0,
        }
    }

    pub fn limits(&self) -> MemoryStoreLimits {
        self.limits
    }

    /// Bytes of the ring (what the kept frames occupy at most, skipped tails included).
    pub fn ring_bytes(&self) -> usize {
        self.ring.len()
    }

    fn slot_index(&self, seq: u64) -> usize {
        (seq % self.index.len() as u64) as usize
    }

    /// The entry of `seq` if it is kept and its bytes are intact.
    fn kept(&self, seq: u64) -> Option<Entry> {
        let e = self.index[self.slot_index(seq)];
        let intact = self.head <= e.at.saturating_add(self.ring.len() as u64);
        (seq != 0 && e.seq == seq && intact).then_some(e)
    }

    fn bytes_of(&self, e: Entry) -> &[u8] {
        &self.ring[e.offset..e.offset + e.len]
    }

    /// The stream position of the oldest frame that storing `seq` must not overwrite: the
    /// first kept MsgSeqNum of the window `seq - max_messages + 1 ..= seq - 1` (the one of
    /// `seq - max_messages` is replaced by `seq` itself).
    fn oldest_kept_at(&mut self, seq: u64) -> Option<u64> {
        let window_start = seq.saturating_sub(self.index.len() as u64 - 1).max(1);
        self.oldest = self.oldest.max(window_start);
        while self.oldest < seq {
            if let Some(e) = self.kept(self.oldest) {
                return Some(e.at);
            }
            self.oldest += 1;
        }
        None
    }

    /// Where a frame of `len` bytes goes (stream position, ring offset): the head, or the
    /// ring's start when it would straddle the end. `None` when the ring is too small for it
    /// (an empty frame always has a place, even in an empty ring).
    fn place(&self, len: usize) -> Option<(u64, usize)> {
        let cap = self.ring.len();
        if len > cap {
            return None;
        }
        Some(if self.head_offset + len > cap {
            (self.head + (cap - self.head_offset) as u64, 0)
        } else {
            (self.head, self.head_offset)
        })
    }

    /// How far writes may go without overwriting a kept frame of the window of `seq`: one
    /// ring length past the oldest kept frame, or past the head when none is kept (every
    /// frame kept later starts at or after it). Later windows only move forward, so the bound
    /// stays valid until a write reaches it.
    #[cold]
    #[inline(never)]
    fn safe_bound(&mut self, seq: u64) -> u64 {
        let from = self.oldest_kept_at(seq).unwrap_or(self.head);
        from + self.ring.len() as u64
    }

    /// Numbering went back without a reset (the session never does this): frames kept under
    /// `seq` and above belong to the abandoned numbering; forget them, so a resend gap-fills
    /// them instead of replaying them.
    #[cold]
    #[inline(never)]
    fn forget_from(&mut self, seq: u64) {
        for e in &mut self.index {
            if e.seq >= seq {
                *e = Entry::default();
            }
        }
        self.oldest = 0;
        self.safe_until = 0;
    }

    /// A new ring for `len` more bytes after the kept frames of the window of MsgSeqNum `to`
    /// (the oldest kept, `from`, to `to - 1`), which it holds packed from its start in
    /// ascending MsgSeqNum order (the order they were written). Its size: what they need plus
    /// a quarter, at least a quarter more than the old ring, rounded to 64 bytes, within the
    /// store's bound.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, len: usize, to: u64) {
        self.oldest_kept_at(to);
        let from = self.oldest;
        let kept_bytes: usize = (from..to).filter_map(|s| self.kept(s)).map(|e| e.len).sum();
        let want = kept_bytes + len;
        let bound = (self.index.len() + 1).saturating_mul(self.limits.max_message_bytes);
        let cap = (want + want / 4)
            .max(self.ring.len() + self.ring.len() / 4)
            .max(MIN_RING_BYTES)
            .next_multiple_of(64)
            .min(bound.max(want));
        let mut ring = vec![0u8; cap];
        let mut head = 0usize;
        for seq in from..to {
            let i = self.slot_index(seq);
            if let Some(e) = self.kept(seq) {
                let n = e.len;
                ring[head..head + n].copy_from_slice(self.bytes_of(e));
                self.index[i].at = head as u64;
                self.index[i].offset = head;
                head += n;
            } else if self.index[i].seq == seq {
                // Listed but overwritten: not kept.
                self.index[i] = Entry::default();
            }
        }
        // Frames outside `from..to` are not in the new ring: forget them.
        for e in &mut self.index {
            if e.seq < from || e.seq >= to {
                *e = Entry::default();
            }
        }
        self.ring = ring;
        self.head = head as u64;
        self.head_offset = head;
        // Recomputed by the next frame (this one is written right after the kept ones).
        self.safe_until = 0;
        self.ring_growths += 1;
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
        if seq == 0 {
            // MsgSeqNum 0 is "empty" in the index and never a valid FIX sequence number.
            return Ok(());
        }
        if seq <= self.newest {
            self.forget_from(seq);
        }
        self.newest = seq;
        let len = frame.len();
        let mut place = self.place(len);
        if let Some((at, _)) = place {
            if at + len as u64 > self.safe_until {
                self.safe_until = self.safe_bound(seq);
                if at + len as u64 > self.safe_until {
                    place = None;
                }
            }
        }
        let (at, offset) = match place {
            // Fits without touching a kept frame's bytes.
            Some(p) => p,
            None => {
                // Re-pack what is kept into a larger ring, then write at its head.
                self.grow(len, seq);
                self.place(len).expect("a grown ring fits the frame")
            }
        };
        self.ring[offset..offset + len].copy_from_slice(frame);
        self.head = at + len as u64;
        self.head_offset = offset + len;
        let i = self.slot_index(seq);
        self.index[i] = Entry {
            seq,
            at,
            offset,
            len,
        };
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
            .saturating_sub(self.index.len() as u64)
            .saturating_add(1);
        let mut seq = begin.max(oldest_kept).max(1);
        let mut visited = 0;
        while seq <= end && visited < max {
            if let Some(e) = self.kept(seq) {
                visit(seq, self.bytes_of(e));
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
        for e in &mut self.index {
            *e = Entry::default();
        }
        self.head = 0;
        self.head_offset = 0;
        self.safe_until = 0;
        self.newest = 0;
        self.oldest = 0;
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

    /// The store as it was before the byte ring (one buffer per slot), as the reference the
    /// ring must agree with.
    struct SlotStore {
        next_sender: u64,
        slots: Vec<(u64, Vec<u8>)>,
        max_message_bytes: usize,
    }

    impl SlotStore {
        fn new(max_messages: usize, max_message_bytes: usize) -> SlotStore {
            SlotStore {
                next_sender: 1,
                slots: vec![(0, Vec::new()); max_messages],
                max_message_bytes,
            }
        }
        fn store_sent(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError> {
            if frame.len() > self.max_message_bytes {
                return Err(StoreError::TooLarge {
                    len: frame.len(),
                    limit: self.max_message_bytes,
                });
            }
            let n = self.slots.len() as u64;
            self.slots[(seq % n) as usize] = (seq, frame.to_vec());
            Ok(())
        }
        fn fetch(&self, begin: u64, end: u64, max: usize) -> Vec<(u64, Vec<u8>)> {
            let last_sent = self.next_sender.saturating_sub(1);
            let end = end.min(last_sent);
            let n = self.slots.len() as u64;
            let oldest = last_sent.saturating_sub(n).saturating_add(1);
            (begin.max(oldest).max(1)..=end)
                .filter_map(|seq| {
                    let slot = &self.slots[(seq % n) as usize];
                    (slot.0 == seq).then(|| (seq, slot.1.clone()))
                })
                .take(max)
                .collect()
        }
        fn reset(&mut self) {
            self.next_sender = 1;
            for slot in &mut self.slots {
                *slot = (0, Vec::new());
            }
        }
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    #[test]
    fn the_ring_keeps_and_serves_exactly_what_the_slot_store_did() {
        // As the session drives a store: MsgSeqNums ascending, some not kept (session-level
        // messages), sizes from empty to the limit, a few over it, resets, and resends of any
        // range at any point. Several ring sizes: few slots (wrapping every few frames) and
        // many (the ring grows and re-packs).
        for (max_messages, max_bytes, seed) in [
            (1, 64, 1u64),
            (3, 64, 2),
            (8, 200, 3),
            (64, 300, 4),
            (257, 128, 5),
        ] {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
            let mut ring = MemoryStore::new(
                MemoryStoreLimits {
                    max_messages,
                    max_message_bytes: max_bytes,
                },
                Nanos(1),
            );
            let mut slots = SlotStore::new(max_messages, max_bytes);
            for step in 0..20_000u64 {
                match rng.below(100) {
                    0 => {
                        ring.reset(Nanos(step)).unwrap();
                        slots.reset();
                    }
                    1..=9 => {
                        let last = ring.next_sender_seq() + 2;
                        let begin = rng.below(last + 1);
                        let end = if rng.below(4) == 0 {
                            0
                        } else {
                            begin + rng.below(2 * max_messages as u64 + 2)
                        };
                        let end = if end == 0 { u64::MAX } else { end };
                        let max = 1 + rng.below(2 * max_messages as u64 + 1) as usize;
                        assert_eq!(
                            collect(&ring, begin, end, max),
                            slots.fetch(begin, end, max),
                            "step {step}: fetch {begin}..={end} max {max} ({max_messages} x {max_bytes})"
                        );
                    }
                    _ => {
                        let seq = ring.next_sender_seq();
                        if rng.below(5) != 0 {
                            // An application message: kept (or refused when too long).
                            let len = rng.below(max_bytes as u64 + 3) as usize;
                            let frame: Vec<u8> =
                                (0..len).map(|i| (seq as usize * 31 + i) as u8).collect();
                            assert_eq!(ring.store_sent(seq, &frame), slots.store_sent(seq, &frame));
                        }
                        ring.set_next_sender_seq(seq + 1).unwrap();
                        slots.next_sender = seq + 1;
                    }
                }
                assert!(
                    ring.ring_bytes() <= (max_messages + 1) * max_bytes,
                    "ring of {} bytes past its bound",
                    ring.ring_bytes()
                );
            }
            let all = slots.fetch(1, u64::MAX, usize::MAX);
            assert_eq!(collect(&ring, 1, u64::MAX, usize::MAX), all);
        }
    }

    #[test]
    fn the_ring_stops_growing_once_it_holds_the_window() {
        let mut s = MemoryStore::new(
            MemoryStoreLimits {
                max_messages: 4096,
                max_message_bytes: 8192,
            },
            Nanos(1),
        );
        let mut seq = 1;
        let mut send = |s: &mut MemoryStore, len: usize| {
            s.store_sent(seq, &vec![b'x'; len]).unwrap();
            seq += 1;
            s.set_next_sender_seq(seq).unwrap();
        };
        // Warm-up: two windows of frames of mixed sizes.
        for i in 0..8192 {
            send(&mut s, 150 + (i % 7) * 20);
        }
        let (growths, bytes) = (s.ring_growths, s.ring_bytes());
        assert!(
            bytes < 4096 * 512,
            "packed: {bytes} bytes, less than 512 per frame"
        );
        for i in 0..100_000 {
            send(&mut s, 150 + (i % 7) * 20);
        }
        assert_eq!(
            (s.ring_growths, s.ring_bytes()),
            (growths, bytes),
            "no growth in steady state"
        );
        // Every frame of the window is still served.
        assert_eq!(collect(&s, 1, u64::MAX, usize::MAX).len(), 4096);
    }

    #[test]
    fn a_store_that_keeps_no_bytes_keeps_empty_frames_and_refuses_the_rest() {
        let mut s = MemoryStore::new(
            MemoryStoreLimits {
                max_messages: 2,
                max_message_bytes: 0,
            },
            Nanos(1),
        );
        for seq in 1..=5u64 {
            s.store_sent(seq, b"").unwrap();
            assert_eq!(
                s.store_sent(seq, b"x"),
                Err(StoreError::TooLarge { len: 1, limit: 0 })
            );
            s.set_next_sender_seq(seq + 1).unwrap();
        }
        assert_eq!(s.ring_bytes(), 0);
        assert_eq!(collect(&s, 1, 5, 10), vec![(4, vec![]), (5, vec![])]);
    }

    #[test]
    fn numbering_going_back_without_a_reset_forgets_the_abandoned_frames() {
        let mut s = store(8);
        for seq in 1..=5u64 {
            s.store_sent(seq, &[seq as u8]).unwrap();
            s.set_next_sender_seq(seq + 1).unwrap();
        }
        s.set_next_sender_seq(3).unwrap();
        s.store_sent(3, b"new3").unwrap();
        s.set_next_sender_seq(4).unwrap();
        s.set_next_sender_seq(6).unwrap();
        // 4 and 5 were of the abandoned numbering: gap-filled, never replayed.
        assert_eq!(
            collect(&s, 1, 10, 100),
            vec![(1, vec![1]), (2, vec![2]), (3, b"new3".to_vec())]
        );
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
