//! The journal as the FIX message store: sequence numbers and sent frames for ResendRequest,
//! found again in the journal after a restart.
//!
//! Owns two things. [`JournalIndex`] follows the journal's records in order (from the first
//! segment at start-up, then incrementally as the journal thread writes more) and keeps, per
//! router session, where each outbound application frame lies (`MsgSeqNum -> segment, offset`)
//! and the sequence numbers the FIX stream implies (next to send, next expected). It is shared
//! by the sessions' stores on the engine thread. [`JournalStore`] is one session's
//! `fix::store::MessageStore`: a bounded ring of recent frames in memory, and, for older ones,
//! the index: resends are read from the mapped segments, CRC-checked, in the batches the
//! session asks for. It never writes the journal (the host journals every frame it sends and
//! receives), never parses more of a frame than the header fields it needs, never reads the
//! clock, and has a limit on everything it keeps: past `max_indexed_messages` per session the
//! oldest entries are dropped and counted, and a resend of them becomes a gap fill.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::format::{decode_record, segment_file_name, Decoded, RecordKind, SEGMENT_HEADER_LEN};
use super::reader::{list_dir, map_segment, MappedSegment};
use super::writer::MetricsHandle;
use super::JournalError;
use crate::fix::session::is_admin_msg_type;
use crate::fix::store::{MemoryStore, MemoryStoreLimits, MessageStore, StoreError};
use crate::fix::{FrameStatus, Framer};
use crate::time::Nanos;

/// Limits of the journal-backed store and its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStoreLimits {
    /// Sent frames each session keeps in memory (served without touching the journal).
    pub recent_frames: usize,
    /// Outbound MsgSeqNums indexed per session; older ones are dropped (counted) and their
    /// resend becomes a gap fill.
    pub max_indexed_messages: usize,
    /// Longest frame stored or read back.
    pub max_message_bytes: usize,
    /// Inbound messages ahead of a gap remembered per session while rebuilding the expected
    /// sequence number (the session's own queue limit is the natural value).
    pub max_ahead: usize,
    /// Segment maps kept open for reading resends.
    pub max_open_segments: usize,
}

impl Default for JournalStoreLimits {
    fn default() -> Self {
        JournalStoreLimits {
            recent_frames: 1024,
            max_indexed_messages: 1 << 20,
            max_message_bytes: 16 * 1024,
            max_ahead: 4096,
            max_open_segments: 8,
        }
    }
}

/// Where a record lies: segment number and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    segment: u64,
    offset: u32,
}

impl Loc {
    /// A sequence number that is not an application message (gap-filled on resend).
    const NONE: Loc = Loc {
        segment: u64::MAX,
        offset: 0,
    };
}

/// What one session's FIX stream in the journal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionResume {
    /// MsgSeqNum of the next message the router sends.
    pub next_sender_seq: u64,
    /// MsgSeqNum the router expects next from the peer.
    pub next_target_seq: u64,
    /// When the current FIX session began (the record time of its first Logon, or of the
    /// session's first record).
    pub created: Nanos,
    /// FIX session starts seen (outbound Logons with MsgSeqNum 1).
    pub session_starts: u64,
}

#[derive(Debug)]
struct SessionIndex {
    /// MsgSeqNum of `locs[0]`.
    base: u64,
    locs: VecDeque<Loc>,
    next_sender: u64,
    expected: u64,
    ahead: BTreeSet<u64>,
    /// MsgSeqNum of an inbound Logon seen since the last outbound frame (an acceptor's reset
    /// on its own configuration happens between the two).
    inbound_logon_since_out: Option<u64>,
    created: Nanos,
    starts: u64,
}

impl SessionIndex {
    fn new(created: Nanos) -> SessionIndex {
        SessionIndex {
            base: 1,
            locs: VecDeque::new(),
            next_sender: 1,
            expected: 1,
            ahead: BTreeSet::new(),
            inbound_logon_since_out: None,
            created,
            starts: 0,
        }
    }

    fn resume(&self) -> SessionResume {
        SessionResume {
            next_sender_seq: self.next_sender,
            next_target_seq: self.expected,
            created: self.created,
            session_starts: self.starts,
        }
    }

    fn get(&self, seq: u64) -> Option<Loc> {
        let i = seq.checked_sub(self.base)?;
        self.locs
            .get(usize::try_from(i).ok()?)
            .copied()
            .filter(|l| *l != Loc::NONE)
    }

    /// Advances `expected` over messages that had arrived ahead of it.
    fn absorb_ahead(&mut self) {
        while self.ahead.remove(&self.expected) {
            self.expected += 1;
        }
        while self
            .ahead
            .first()
            .is_some_and(|&first| first < self.expected)
        {
            self.ahead.pop_first();
        }
    }
}

/// The header fields of a frame the index needs, found in one pass.
#[derive(Debug, Default, Clone, Copy)]
struct FrameFacts<'a> {
    msg_type: &'a [u8],
    seq: Option<u64>,
    poss_dup: bool,
    reset: bool,
    gap_fill: bool,
    new_seq_no: Option<u64>,
}

fn parse_digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn frame_facts(raw: &[u8]) -> FrameFacts<'_> {
    let mut f = FrameFacts::default();
    for field in raw.split(|&b| b == 0x01) {
        let Some(eq) = field.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (tag, value) = (&field[..eq], &field[eq + 1..]);
        match tag {
            b"35" => f.msg_type = value,
            b"34" => f.seq = parse_digits(value),
            b"43" => f.poss_dup = value == b"Y",
            b"141" => f.reset = value == b"Y",
            b"123" => f.gap_fill = value == b"Y",
            b"36" => f.new_seq_no = parse_digits(value),
            _ => {}
        }
    }
    f
}

/// Counters of the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexCounters {
    /// Journal records read by the follower.
    pub records_followed: u64,
    /// Outbound application frames indexed.
    pub frames_indexed: u64,
    /// Indexed application frames dropped because a session passed `max_indexed_messages`.
    pub dropped_past_limit: u64,
    /// Inbound frames whose BodyLength or CheckSum is wrong (ignored, as the session did).
    pub garbled_inbound: u64,
    /// FIX records whose payload did not decode.
    pub bad_fix_payloads: u64,
    /// Inbound frames ahead of a gap not remembered because `max_ahead` was reached.
    pub ahead_dropped: u64,
}

/// The follower of the journal and the per-session index. See the module doc.
#[derive(Debug)]
pub struct JournalIndex {
    dir: PathBuf,
    limits: JournalStoreLimits,
    /// The live journal's counters: records past `written_seq` are not read. `None` for a
    /// journal no process is writing.
    written: Option<MetricsHandle>,
    /// Where the follower is: segment number, offset of the next record, its sequence number.
    at: Option<(u64, usize, u64)>,
    maps: Maps,
    state: IndexState,
}

/// The segment maps the index reads through (a few, most recently opened kept).
#[derive(Debug)]
struct Maps {
    dir: PathBuf,
    max: usize,
    open: VecDeque<MappedSegment>,
}

impl Maps {
    /// Segment `number`, mapped; `None` if there is no such file (yet).
    fn get(&mut self, number: u64) -> Result<Option<&MappedSegment>, JournalError> {
        if let Some(i) = self
            .open
            .iter()
            .position(|m| m.header.segment_number == number)
        {
            return Ok(self.open.get(i));
        }
        let path = self.dir.join(segment_file_name(number));
        let seg = match map_segment(&path, Some(number)) {
            Ok(s) => s,
            Err(JournalError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if self.open.len() >= self.max {
            self.open.pop_front();
        }
        self.open.push_back(seg);
        Ok(self.open.back())
    }
}

/// What the follower has learnt, per session.
#[derive(Debug)]
struct IndexState {
    limits: JournalStoreLimits,
    sessions: Vec<Option<SessionIndex>>,
    framer: Framer,
    counters: IndexCounters,
}

/// The index shared by the stores of every session on the engine thread.
pub type SharedIndex = Arc<Mutex<JournalIndex>>;

impl JournalIndex {
    /// Opens the index on the journal in `dir` and follows it to its end (everything written
    /// so far). `written` is the live journal's counters when a process is appending.
    pub fn open(
        dir: &Path,
        limits: JournalStoreLimits,
        written: Option<MetricsHandle>,
    ) -> Result<JournalIndex, JournalError> {
        assert!(
            limits.recent_frames > 0 && limits.max_open_segments > 0,
            "the store keeps at least one frame and one segment map"
        );
        let mut index = JournalIndex {
            dir: dir.to_path_buf(),
            limits,
            written,
            at: None,
            maps: Maps {
                dir: dir.to_path_buf(),
                max: limits.max_open_segments,
                open: VecDeque::with_capacity(limits.max_open_segments),
            },
            state: IndexState {
                limits,
                sessions: Vec::new(),
                framer: Framer::new(limits.max_message_bytes),
                counters: IndexCounters::default(),
            },
        };
        index.catch_up()?;
        Ok(index)
    }

    /// Wraps the index for sharing between sessions.
    pub fn shared(self) -> SharedIndex {
        Arc::new(Mutex::new(self))
    }

    pub fn counters(&self) -> IndexCounters {
        self.state.counters
    }

    pub fn limits(&self) -> JournalStoreLimits {
        self.limits
    }

    /// What the journal says about `session_id` so far (`None`: nothing of it was journaled).
    pub fn resume(&self, session_id: u16) -> Option<SessionResume> {
        self.state
            .sessions
            .get(usize::from(session_id))
            .and_then(Option::as_ref)
            .map(SessionIndex::resume)
    }

    /// Sequence number of the next record the follower will read.
    pub fn followed_to(&self) -> u64 {
        self.at.map_or(1, |(_, _, seq)| seq)
    }

    /// Reads every record written since the last call and indexes it.
    pub fn catch_up(&mut self) -> Result<(), JournalError> {
        let limit = self
            .written
            .as_ref()
            .map_or(u64::MAX, |w| w.snapshot().written_seq);
        if self.at.is_none() {
            let listing = list_dir(&self.dir)?;
            let Some(first) = listing.segments.first() else {
                return Ok(());
            };
            let number = first.number;
            let Some(seg) = self.maps.get(number)? else {
                return Ok(());
            };
            self.at = Some((number, SEGMENT_HEADER_LEN, seg.header.first_seq));
        }
        while let Some((number, offset, next_seq)) = self.at {
            if next_seq > limit {
                break;
            }
            let Some(seg) = self.maps.get(number)? else {
                break;
            };
            match decode_record(seg.bytes(), offset) {
                Decoded::Record {
                    record,
                    next_offset,
                } if record.seq == next_seq => {
                    if let Some(fix) = record.fix() {
                        match fix {
                            Ok(p) => {
                                let loc = Loc {
                                    segment: number,
                                    offset: offset as u32,
                                };
                                let outbound = record.kind() == Some(RecordKind::FixOutbound);
                                self.state.apply(
                                    loc,
                                    record.timestamp,
                                    p.session_id,
                                    outbound,
                                    p.raw,
                                );
                            }
                            Err(_) => self.state.counters.bad_fix_payloads += 1,
                        }
                    }
                    self.state.counters.records_followed += 1;
                    self.at = Some((number, next_offset, next_seq + 1));
                }
                _ => {
                    // The end of this segment's data: go on if the next segment starts where
                    // this one stopped (the writer has rolled), else stop here for now.
                    let next = number + 1;
                    let Some(nseg) = self.maps.get(next)? else {
                        break;
                    };
                    if nseg.header.first_seq != next_seq {
                        break;
                    }
                    self.at = Some((next, SEGMENT_HEADER_LEN, next_seq));
                }
            }
        }
        Ok(())
    }
}

impl IndexState {
    fn apply(&mut self, loc: Loc, ts: Nanos, session: u16, outbound: bool, raw: &[u8]) {
        let i = usize::from(session);
        if self.sessions.len() <= i {
            self.sessions.resize_with(i + 1, || None);
        }
        if !outbound {
            match self.framer.next_frame(raw) {
                FrameStatus::Frame { len } if len == raw.len() => {}
                _ => {
                    self.counters.garbled_inbound += 1;
                    return;
                }
            }
        }
        let facts = frame_facts(raw);
        let Some(seq) = facts.seq else { return };
        let limits = self.limits;
        let counters = &mut self.counters;
        let s = self.sessions[i].get_or_insert_with(|| SessionIndex::new(ts));
        if outbound {
            if facts.poss_dup {
                return; // a resend or a gap fill: the original is indexed already
            }
            if facts.msg_type == b"A" && seq == 1 {
                // A new FIX session: earlier MsgSeqNums belong to the previous one.
                let replay_logon = s.inbound_logon_since_out;
                s.base = 1;
                s.locs.clear();
                s.expected = 1;
                s.ahead.clear();
                s.created = ts;
                s.starts += 1;
                if replay_logon == Some(1) {
                    s.expected = 2;
                }
            }
            s.inbound_logon_since_out = None;
            s.next_sender = seq + 1;
            let entry = if is_admin_msg_type(facts.msg_type) {
                Loc::NONE
            } else {
                counters.frames_indexed += 1;
                loc
            };
            let end = s.base + s.locs.len() as u64;
            if seq < s.base {
                return;
            }
            if seq < end {
                if let Ok(k) = usize::try_from(seq - s.base) {
                    s.locs[k] = entry;
                }
                return;
            }
            if seq - end > limits.max_indexed_messages as u64 {
                counters.dropped_past_limit +=
                    s.locs.iter().filter(|l| **l != Loc::NONE).count() as u64;
                s.locs.clear();
                s.base = seq;
            }
            while s.base + (s.locs.len() as u64) < seq {
                s.locs.push_back(Loc::NONE);
            }
            s.locs.push_back(entry);
            while s.locs.len() > limits.max_indexed_messages {
                if s.locs.pop_front().is_some_and(|l| l != Loc::NONE) {
                    counters.dropped_past_limit += 1;
                }
                s.base += 1;
            }
            return;
        }
        // Inbound: follow the session's expected sequence number.
        if facts.msg_type == b"A" {
            s.inbound_logon_since_out = Some(seq);
            if facts.reset {
                s.expected = 1;
                s.ahead.clear();
            }
        }
        if facts.msg_type == b"4" && !facts.gap_fill {
            // SequenceReset-Reset: whatever its own number, the next expected is NewSeqNo.
            if let Some(n) = facts.new_seq_no {
                if n > s.expected {
                    s.expected = n;
                }
            }
            s.absorb_ahead();
            return;
        }
        if seq == s.expected {
            s.expected += 1;
            if facts.msg_type == b"4" {
                if let Some(n) = facts.new_seq_no {
                    s.expected = s.expected.max(n);
                }
            }
            s.absorb_ahead();
        } else if seq > s.expected {
            if s.ahead.len() < limits.max_ahead {
                s.ahead.insert(seq);
            } else {
                counters.ahead_dropped += 1;
            }
        }
    }

    fn session(&self, session_id: u16) -> Option<&SessionIndex> {
        self.sessions
            .get(usize::from(session_id))
            .and_then(Option::as_ref)
    }
}

impl JournalIndex {
    /// Calls `visit` with the frame of outbound MsgSeqNum `seq` of `session_id` if it is
    /// indexed and reads back intact. Returns whether it did.
    fn read_sent(
        &mut self,
        session_id: u16,
        seq: u64,
        visit: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<bool, JournalError> {
        let Some(loc) = self.state.session(session_id).and_then(|s| s.get(seq)) else {
            return Ok(false);
        };
        let max = self.limits.max_message_bytes;
        let Some(seg) = self.maps.get(loc.segment)? else {
            return Ok(false);
        };
        let Decoded::Record { record, .. } = decode_record(seg.bytes(), loc.offset as usize) else {
            return Ok(false);
        };
        let Some(Ok(fix)) = record.fix() else {
            return Ok(false);
        };
        if fix.session_id != session_id
            || fix.raw.len() > max
            || frame_facts(fix.raw).seq != Some(seq)
        {
            return Ok(false);
        }
        visit(seq, fix.raw);
        Ok(true)
    }

    fn session_starts(&self, session_id: u16) -> u64 {
        self.state.session(session_id).map_or(0, |s| s.starts)
    }

    /// Whether MsgSeqNum `seq` of `session_id` lies beyond what the index has seen.
    fn beyond(&self, session_id: u16, seq: u64) -> bool {
        self.state
            .session(session_id)
            .is_none_or(|s| seq >= s.base + s.locs.len() as u64)
    }
}

/// Counters of one session's store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStoreCounters {
    pub resent_from_memory: u64,
    pub resent_from_journal: u64,
    /// Application MsgSeqNums asked for that were neither in memory nor in the index (past
    /// the index limit, or not yet written by the journal thread): the session gap-fills them.
    pub unavailable: u64,
    /// Reading the journal failed (the session treats it as a store failure).
    pub read_errors: u64,
}

/// One session's `MessageStore` backed by the journal. See the module doc.
#[derive(Debug)]
pub struct JournalStore {
    session_id: u16,
    index: SharedIndex,
    recent: MemoryStore,
    /// The first MsgSeqNum this store instance kept in memory (frames before it were sent
    /// before a restart and live only in the journal).
    memory_from: u64,
    next_target: u64,
    created: Nanos,
    /// Session starts the index must have seen before its entries are this FIX session's.
    starts_expected: u64,
    counters: JournalStoreCounters,
}

impl JournalStore {
    /// The store of router session `session_id`, starting where the journal left it (or at
    /// 1/1 for a session the journal has never seen).
    pub fn resume(session_id: u16, index: &SharedIndex, now: Nanos) -> JournalStore {
        let (resume, limits) = {
            let g = lock(index);
            (g.resume(session_id), g.limits)
        };
        let resume = resume.unwrap_or(SessionResume {
            next_sender_seq: 1,
            next_target_seq: 1,
            created: now,
            session_starts: 0,
        });
        let mut recent = MemoryStore::new(
            MemoryStoreLimits {
                max_messages: limits.recent_frames,
                max_message_bytes: limits.max_message_bytes,
            },
            resume.created,
        );
        // Infallible for a memory store.
        let _ = recent.set_next_sender_seq(resume.next_sender_seq);
        JournalStore {
            session_id,
            index: Arc::clone(index),
            recent,
            memory_from: resume.next_sender_seq,
            next_target: resume.next_target_seq,
            created: resume.created,
            starts_expected: resume.session_starts,
            counters: JournalStoreCounters::default(),
        }
    }

    pub fn session_id(&self) -> u16 {
        self.session_id
    }

    pub fn counters(&self) -> JournalStoreCounters {
        self.counters
    }

    /// MsgSeqNums below this are no longer in memory.
    fn oldest_in_memory(&self) -> u64 {
        let last = self.recent.next_sender_seq().saturating_sub(1);
        last.saturating_sub(self.recent.limits().max_messages as u64)
            .saturating_add(1)
            .max(self.memory_from)
            .max(1)
    }
}

fn lock(index: &SharedIndex) -> MutexGuard<'_, JournalIndex> {
    // The index holds no invariant a panicking holder could break half-way that matters
    // more than serving resends: take it back.
    index.lock().unwrap_or_else(|p| p.into_inner())
}

impl MessageStore for JournalStore {
    fn next_sender_seq(&self) -> u64 {
        self.recent.next_sender_seq()
    }
    fn next_target_seq(&self) -> u64 {
        self.next_target
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.recent.set_next_sender_seq(seq)
    }
    fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.next_target = seq;
        Ok(())
    }
    fn store_sent(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError> {
        self.recent.store_sent(seq, frame)
    }

    fn fetch_sent(
        &self,
        begin: u64,
        end: u64,
        max: usize,
        visit: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<usize, StoreError> {
        let last_sent = self.recent.next_sender_seq().saturating_sub(1);
        let end = end.min(last_sent);
        let begin = begin.max(1);
        if begin > end || max == 0 {
            return Ok(0);
        }
        let oldest_in_memory = self.oldest_in_memory();
        let mut visited = 0usize;
        let mut seq = begin;
        // Older than memory: from the journal.
        if seq < oldest_in_memory {
            let mut g = lock(&self.index);
            let journal_end = end.min(oldest_in_memory - 1);
            if g.beyond(self.session_id, journal_end) {
                g.catch_up().map_err(|_| StoreError::Io)?;
            }
            // Entries are this FIX session's only once the index has seen its start.
            let usable = g.session_starts(self.session_id) >= self.starts_expected;
            while usable && seq <= journal_end && visited < max {
                if g.read_sent(self.session_id, seq, visit)
                    .map_err(|_| StoreError::Io)?
                {
                    visited += 1;
                }
                seq += 1;
            }
            if visited >= max {
                return Ok(visited);
            }
            seq = seq.max(oldest_in_memory);
        }
        if seq <= end {
            visited += self.recent.fetch_sent(seq, end, max - visited, visit)?;
        }
        Ok(visited)
    }

    fn reset(&mut self, now: Nanos) -> Result<(), StoreError> {
        self.recent.reset(now)?;
        self.memory_from = 1;
        self.next_target = 1;
        self.created = now;
        self.starts_expected += 1;
        Ok(())
    }

    fn creation_time(&self) -> Nanos {
        self.created
    }
}

/// A session's store as the host runs it: in memory only, or backed by the journal.
#[derive(Debug)]
pub enum SessionStore {
    Memory(MemoryStore),
    Journal(JournalStore),
}

impl MessageStore for SessionStore {
    fn next_sender_seq(&self) -> u64 {
        match self {
            SessionStore::Memory(s) => s.next_sender_seq(),
            SessionStore::Journal(s) => s.next_sender_seq(),
        }
    }
    fn next_target_seq(&self) -> u64 {
        match self {
            SessionStore::Memory(s) => s.next_target_seq(),
            SessionStore::Journal(s) => s.next_target_seq(),
        }
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        match self {
            SessionStore::Memory(s) => s.set_next_sender_seq(seq),
            SessionStore::Journal(s) => s.set_next_sender_seq(seq),
        }
    }
    fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        match self {
            SessionStore::Memory(s) => s.set_next_target_seq(seq),
            SessionStore::Journal(s) => s.set_next_target_seq(seq),
        }
    }
    fn store_sent(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError> {
        match self {
            SessionStore::Memory(s) => s.store_sent(seq, frame),
            SessionStore::Journal(s) => s.store_sent(seq, frame),
        }
    }
    fn fetch_sent(
        &self,
        begin: u64,
        end: u64,
        max: usize,
        visit: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<usize, StoreError> {
        match self {
            SessionStore::Memory(s) => s.fetch_sent(begin, end, max, visit),
            SessionStore::Journal(s) => s.fetch_sent(begin, end, max, visit),
        }
    }
    fn reset(&mut self, now: Nanos) -> Result<(), StoreError> {
        match self {
            SessionStore::Memory(s) => s.reset(now),
            SessionStore::Journal(s) => s.reset(now),
        }
    }
    fn creation_time(&self) -> Nanos {
        match self {
            SessionStore::Memory(s) => s.creation_time(),
            SessionStore::Journal(s) => s.creation_time(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::Encoder;
    use crate::journal::{FixDirection, Journal, JournalConfig};
    use std::time::Duration;

    fn fresh_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rfq-journal-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn config(dir: &Path) -> JournalConfig {
        JournalConfig {
            segment_size_bytes: 16 * 1024,
            queue_capacity: 64,
            max_payload_bytes: 4096,
            ..JournalConfig::new(dir)
        }
    }

    /// A frame from ROUTER (outbound) or to it (inbound), with `extra` body fields.
    fn frame(msg_type: &str, seq: u64, outbound: bool, extra: &str) -> Vec<u8> {
        let mut e = Encoder::new(4096);
        let (s, t) = if outbound {
            (&b"ROUTER"[..], &b"DESK"[..])
        } else {
            (&b"DESK"[..], &b"ROUTER"[..])
        };
        e.start(msg_type.as_bytes())
            .uint(34, seq)
            .str(49, s)
            .str(52, b"20261121-21:00:00.000")
            .str(56, t);
        e.raw(extra.replace('|', "\u{1}").as_bytes());
        e.finish().expect("fits").to_vec()
    }

    fn out(j: &mut Journal, session: u16, f: &[u8]) {
        j.append_fix(FixDirection::Outbound, session, Nanos(1), f)
            .expect("append");
    }

    fn inb(j: &mut Journal, session: u16, f: &[u8]) {
        j.append_fix(FixDirection::Inbound, session, Nanos(1), f)
            .expect("append");
    }

    fn collect(s: &JournalStore, begin: u64, end: u64, max: usize) -> Vec<(u64, Vec<u8>)> {
        let mut got = Vec::new();
        let n = s
            .fetch_sent(begin, end, max, &mut |seq, b| got.push((seq, b.to_vec())))
            .expect("fetch");
        assert_eq!(n, got.len());
        got
    }

    /// Session 3 logs on, exchanges application messages and heartbeats; returns the
    /// application frames it sent, by MsgSeqNum.
    fn write_session(j: &mut Journal, session: u16, app_count: u64) -> Vec<(u64, Vec<u8>)> {
        inb(j, session, &frame("A", 1, false, "98=0|108=30|"));
        out(j, session, &frame("A", 1, true, "98=0|108=30|"));
        let mut sent = Vec::new();
        let mut seq = 2;
        for k in 0..app_count {
            if k % 4 == 3 {
                out(j, session, &frame("0", seq, true, ""));
                seq += 1;
            }
            let f = frame("AI", seq, true, &format!("117=R{k}-0|131=REQ{k}|297=0|"));
            out(j, session, &f);
            sent.push((seq, f));
            seq += 1;
            inb(j, session, &frame("0", 2 + k, false, ""));
        }
        sent
    }

    #[test]
    fn resends_across_a_restart_from_the_journal_in_batches() {
        let dir = fresh_dir("restart");
        let (mut j, _) = Journal::open(config(&dir)).expect("open");
        // Other sessions' traffic interleaved; segments roll several times.
        let sent = write_session(&mut j, 3, 60);
        write_session(&mut j, 1, 10);
        j.close().expect("close");

        let limits = JournalStoreLimits {
            recent_frames: 4,
            ..JournalStoreLimits::default()
        };
        let index = JournalIndex::open(&dir, limits, None)
            .expect("index")
            .shared();
        let store = JournalStore::resume(3, &index, Nanos(99));
        let last = sent.last().expect("sent").0;
        assert_eq!(store.next_sender_seq(), last + 1);
        // Logon 1 plus 60 heartbeats 2..=61 in order.
        assert_eq!(store.next_target_seq(), 62);
        let all = collect(&store, 1, 0, 1000);
        assert!(all.is_empty(), "EndSeqNo 0 is not expanded by the store");
        let all = collect(&store, 1, last, 1000);
        assert_eq!(
            all, sent,
            "every application frame, as sent, none of the admin ones"
        );
        // Bounded batches: the session continues after the last one it was given.
        let first = collect(&store, 1, last, 7);
        assert_eq!(first, sent[..7].to_vec());
        let next = collect(&store, first[6].0 + 1, last, 7);
        assert_eq!(next, sent[7..14].to_vec());
        // A session the journal never saw starts at 1.
        let fresh = JournalStore::resume(9, &index, Nanos(5));
        assert_eq!((fresh.next_sender_seq(), fresh.next_target_seq()), (1, 1));
        assert_eq!(fresh.creation_time(), Nanos(5));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn past_the_index_limit_the_oldest_are_dropped_and_counted() {
        let dir = fresh_dir("limit");
        let (mut j, _) = Journal::open(config(&dir)).expect("open");
        let sent = write_session(&mut j, 0, 20);
        j.close().expect("close");
        let limits = JournalStoreLimits {
            recent_frames: 2,
            max_indexed_messages: 8,
            ..JournalStoreLimits::default()
        };
        let index = JournalIndex::open(&dir, limits, None)
            .expect("index")
            .shared();
        let store = JournalStore::resume(0, &index, Nanos(1));
        let last = sent.last().expect("sent").0;
        let got = collect(&store, 1, last, 1000);
        let kept: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert!(
            kept.iter().all(|&s| s > last - 8),
            "only the last 8: {kept:?}"
        );
        assert!(!kept.is_empty());
        let c = lock(&index).counters();
        assert!(c.dropped_past_limit > 0, "{c:?}");
        assert_eq!(
            c.dropped_past_limit as usize + kept.len(),
            sent.len(),
            "every application frame is kept or counted as dropped"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_sequence_reset_starts_a_new_index() {
        let dir = fresh_dir("reset");
        let (mut j, _) = Journal::open(config(&dir)).expect("open");
        write_session(&mut j, 2, 10);
        // Next session day: the peer asks for a reset.
        inb(&mut j, 2, &frame("A", 1, false, "98=0|108=30|141=Y|"));
        out(&mut j, 2, &frame("A", 1, true, "98=0|108=30|141=Y|"));
        let f2 = frame("AI", 2, true, "117=NEW|297=0|");
        out(&mut j, 2, &f2);
        inb(&mut j, 2, &frame("0", 2, false, ""));
        j.close().expect("close");
        let index = JournalIndex::open(&dir, JournalStoreLimits::default(), None)
            .expect("index")
            .shared();
        let store = JournalStore::resume(2, &index, Nanos(1));
        assert_eq!((store.next_sender_seq(), store.next_target_seq()), (3, 3));
        assert_eq!(collect(&store, 1, 100, 100), vec![(2, f2)]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn expected_sequence_follows_gaps_gap_fills_and_garbled_frames() {
        let dir = fresh_dir("inbound");
        let (mut j, _) = Journal::open(config(&dir)).expect("open");
        inb(&mut j, 4, &frame("A", 1, false, "98=0|108=30|"));
        out(&mut j, 4, &frame("A", 1, true, "98=0|108=30|"));
        inb(&mut j, 4, &frame("0", 2, false, ""));
        // 3 is lost; 4 and 5 arrive ahead of the gap.
        inb(&mut j, 4, &frame("0", 4, false, ""));
        inb(&mut j, 4, &frame("0", 5, false, ""));
        // A garbled frame with the missing number does not count.
        let mut bad = frame("0", 3, false, "");
        let n = bad.len();
        bad[n - 2] = if bad[n - 2] == b'0' { b'1' } else { b'0' };
        inb(&mut j, 4, &bad);
        // The journal is open for writing: read what is written so far.
        assert!(j
            .wait_durable(j.next_seq() - 1, Duration::from_secs(30))
            .expect("ok"));
        let index = JournalIndex::open(&dir, JournalStoreLimits::default(), None).expect("index");
        assert_eq!(index.resume(4).map(|r| r.next_target_seq), Some(3));
        assert_eq!(index.counters().garbled_inbound, 1);
        // The peer's gap fill for 3 makes 4 and 5 count: next expected 6.
        inb(
            &mut j,
            4,
            &frame("4", 3, false, "43=Y|122=20261121-21:00:00.000|36=4|123=Y|"),
        );
        j.close().expect("close");
        let index = JournalIndex::open(&dir, JournalStoreLimits::default(), None).expect("index");
        assert_eq!(index.resume(4).map(|r| r.next_target_seq), Some(6));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_live_journal_serves_frames_evicted_from_memory() {
        let dir = fresh_dir("live");
        let (mut j, _) = Journal::open(config(&dir)).expect("open");
        let limits = JournalStoreLimits {
            recent_frames: 3,
            ..JournalStoreLimits::default()
        };
        let index = JournalIndex::open(&dir, limits, Some(j.metrics_handle()))
            .expect("index")
            .shared();
        let mut store = JournalStore::resume(7, &index, Nanos(1));
        // As the session and the host do: keep the frame, send it, journal it.
        let mut sent = Vec::new();
        for seq in 1..=30u64 {
            let f = if seq == 1 {
                frame("A", 1, true, "98=0|108=30|")
            } else {
                frame("S", seq, true, &format!("117=Q{seq}|"))
            };
            if seq > 1 {
                store.store_sent(seq, &f).expect("store");
                sent.push((seq, f.clone()));
            }
            store.set_next_sender_seq(seq + 1).expect("seq");
            out(&mut j, 7, &f);
        }
        // The write-ahead wait: once it returns, the record is readable through the index.
        j.wait_written(j.next_seq() - 1).expect("written");
        assert!(j.written_seq() >= j.next_seq() - 1);
        assert_eq!(collect(&store, 1, 30, 100), sent);
        assert!(lock(&index).counters().frames_indexed >= 26);
        // After a reset, the old FIX session's frames are never served.
        store.reset(Nanos(2)).expect("reset");
        let f = frame("A", 1, true, "98=0|108=30|141=Y|");
        out(&mut j, 7, &f);
        store.set_next_sender_seq(2).expect("seq");
        let f2 = frame("S", 2, true, "117=AFTER|");
        store.store_sent(2, &f2).expect("store");
        store.set_next_sender_seq(3).expect("seq");
        out(&mut j, 7, &f2);
        assert_eq!(collect(&store, 1, 2, 100), vec![(2, f2)]);
        j.close().expect("close");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
