//! The engine thread's end of the journal: every FIX frame in and out, every engine input and
//! record, appended through the one `Journal` producer the engine thread owns. Inputs include
//! what the scoring thread and the rules watcher hand the engine (`input_feedback`: score
//! rows and rules text, inline, in bounded parts), so a replay needs nothing but the journal.
//!
//! Owns the encoding scratch buffer, the per-session "latest inbound frame" that lets an
//! engine input name its `fix-in` record instead of copying the message, and, in `fsync`
//! durability, the per-session hold that keeps an ExecutionReport (and whatever follows it on
//! that session) off the wire until its record is durable (the journal thread wakes the loop
//! through `Journal::set_durable_waker` once it is). The host and the router call it
//! on the engine thread; it never blocks except on a full journal queue (back-pressure,
//! counted by the journal), never reads the clock (`now` is the loop's) and does not allocate
//! in steady state (the hold buffers keep their capacity). A failed append is counted and its
//! first error kept; it is never silently ignored and never panics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::format::{
    fix_tag_value, FixDirection, RecordKind, FIX_FLAG_NOT_ENGINE, FIX_PAYLOAD_PREFIX_LEN,
};
use super::records::{
    encode_engine_record, encode_input, encode_run_start, encode_unsent, EngineInput, FixSource,
    RunFile, Unsent, INPUT_HEADER_LEN, MAX_DECISION_PAYLOAD,
};
use super::records::{
    encode_score_rows, MAX_FEEDBACK_INPUT_PAYLOAD, MAX_ROWS_PER_INPUT, MAX_RULES_PART_BYTES,
};
use super::writer::{AppendError, Journal, JournalConfig};
use super::{CorruptionPolicy, Durability};
use crate::config::{JournalDurability, JournalSettings};
use crate::rfq::outbox::Record;
use crate::select::feedback::{RulesReload, ToEngine};
use crate::select::rows::ScoreRow;
use crate::time::Nanos;

/// How long the loop waits before it looks again at held frames (they are released as soon
/// as their record is durable; the journal syncs at once when a hold starts).
pub const HOLD_CHECK_INTERVAL_NS: u64 = 100_000;
/// Most bytes held for one session while its ExecutionReport becomes durable; past it the
/// connection is dropped (the messages stay in the session's store for a resend).
pub const MAX_HELD_BYTES: usize = 4 << 20;

/// `unsent` reasons.
pub const UNSENT_NOT_LOGGED_ON: u8 = 1;
pub const UNSENT_REFUSED: u8 = 2;
pub const UNSENT_NOT_A_SESSION: u8 = 3;

/// The `JournalConfig` for the router's `[journal]` settings (`dir` overridden by `--journal`),
/// with FIX payloads up to `max_message_bytes` and the journal thread on `writer_cpu`.
pub fn journal_config(
    settings: &JournalSettings,
    dir: Option<PathBuf>,
    max_message_bytes: usize,
    writer_cpu: Option<usize>,
) -> JournalConfig {
    let mut c = JournalConfig::new(dir.unwrap_or_else(|| settings.dir.clone()));
    c.segment_size_bytes = settings.segment_size_mb << 20;
    c.queue_capacity = settings.queue_capacity;
    // A whole frame plus its prefix, or an inlined one plus the input header; decisions and
    // run starts are smaller.
    c.max_payload_bytes = (max_message_bytes + FIX_PAYLOAD_PREFIX_LEN + INPUT_HEADER_LEN)
        .max(MAX_DECISION_PAYLOAD)
        .max(64 << 10);
    c.durability = match settings.durability {
        JournalDurability::Os => Durability::Os,
        JournalDurability::Fsync => Durability::Fsync {
            group_commit_interval_us: settings.group_commit_us,
            group_commit_records: settings.group_commit_records,
        },
    };
    c.on_corruption = CorruptionPolicy::Refuse;
    c.writer_cpu = writer_cpu;
    c
}

/// What the tap did, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapCounters {
    pub fix_in: u64,
    pub fix_out: u64,
    pub inputs: u64,
    /// Fix inputs whose message was inlined (it was not the session's latest `fix-in`).
    pub inputs_inlined: u64,
    pub engine_records: u64,
    pub unsent: u64,
    /// Appends that failed (payload too large, journal thread failed). Never silent: the
    /// first error is kept in [`JournalTap::first_failure`].
    pub append_failures: u64,
    /// ExecutionReports held until durable (`fsync`), and frames held behind them.
    pub executions_held: u64,
    pub frames_held: u64,
    /// Holds released (their record became durable).
    pub holds_released: u64,
    /// Holds dropped: the session went down, or the hold grew past `MAX_HELD_BYTES`.
    pub holds_dropped: u64,
    /// Write-ahead: outbound frames that waited for their record to be written, and how long
    /// they waited in total.
    pub write_ahead_waits: u64,
    pub write_ahead_wait_ns: u64,
}

/// The tap's counters as other threads read them (the status line, metrics). Only the engine
/// thread writes them.
#[derive(Debug, Default)]
struct SharedCounters {
    fix_in: AtomicU64,
    fix_out: AtomicU64,
    inputs: AtomicU64,
    inputs_inlined: AtomicU64,
    engine_records: AtomicU64,
    unsent: AtomicU64,
    append_failures: AtomicU64,
    executions_held: AtomicU64,
    frames_held: AtomicU64,
    holds_released: AtomicU64,
    holds_dropped: AtomicU64,
    write_ahead_waits: AtomicU64,
    write_ahead_wait_ns: AtomicU64,
}

impl SharedCounters {
    fn snapshot(&self) -> TapCounters {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TapCounters {
            fix_in: r(&self.fix_in),
            fix_out: r(&self.fix_out),
            inputs: r(&self.inputs),
            inputs_inlined: r(&self.inputs_inlined),
            engine_records: r(&self.engine_records),
            unsent: r(&self.unsent),
            append_failures: r(&self.append_failures),
            executions_held: r(&self.executions_held),
            frames_held: r(&self.frames_held),
            holds_released: r(&self.holds_released),
            holds_dropped: r(&self.holds_dropped),
            write_ahead_waits: r(&self.write_ahead_waits),
            write_ahead_wait_ns: r(&self.write_ahead_wait_ns),
        }
    }
}

/// One writer per counter: a load and a store, no read-modify-write.
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// Reads the tap's counters from any thread.
#[derive(Debug, Clone)]
pub struct TapCountersHandle(Arc<SharedCounters>);

impl TapCountersHandle {
    pub fn snapshot(&self) -> TapCounters {
        self.0.snapshot()
    }
}

/// What to do with an outbound frame in `fsync` durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldDecision {
    /// Write it now.
    Pass,
    /// Kept by the tap; it is written by [`JournalTap::release`].
    Held,
    /// The hold is too large: drop the connection (the frames are in the session's store).
    Overflow,
}

#[derive(Debug, Clone, Copy, Default)]
struct LastIn {
    seq: u64,
    addr: usize,
    len: usize,
}

#[derive(Debug, Default)]
struct Hold {
    /// Released once `durable_seq >= until_seq`.
    until_seq: u64,
    bytes: Vec<u8>,
}

/// The engine thread's journal producer and what it needs per session.
pub struct JournalTap {
    journal: Journal,
    hold_executions: bool,
    scratch: Vec<u8>,
    last_in: Vec<LastIn>,
    holds: Vec<Hold>,
    holding: usize,
    next_hold_check: Option<Nanos>,
    counters: Arc<SharedCounters>,
    first_failure: Option<AppendError>,
    /// Outbound frames are the router's own messages, not engine outputs (flagged).
    router_origin: bool,
    /// `durable_seq` when holds were last looked at.
    durable_checked: u64,
    write_ahead: bool,
}

impl std::fmt::Debug for JournalTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalTap")
            .field("journal", &self.journal)
            .field("counters", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl JournalTap {
    /// A tap for `sessions` sessions (indices `0..sessions`; frames of others are journaled,
    /// but their inputs are inlined and they are never held).
    pub fn new(journal: Journal, sessions: usize) -> JournalTap {
        let hold_executions = matches!(journal.durability(), Durability::Fsync { .. });
        JournalTap {
            journal,
            hold_executions,
            scratch: vec![
                0;
                MAX_DECISION_PAYLOAD
                    .max(256)
                    .max(crate::select::feedback::MAX_PAYLOAD_LEN)
                    .max(MAX_FEEDBACK_INPUT_PAYLOAD)
            ],
            last_in: vec![LastIn::default(); sessions],
            holds: (0..sessions).map(|_| Hold::default()).collect(),
            holding: 0,
            next_hold_check: None,
            counters: Arc::new(SharedCounters::default()),
            first_failure: None,
            router_origin: false,
            durable_checked: 0,
            write_ahead: false,
        }
    }

    /// Write-ahead (`[journal] write_ahead`): `fix_out` returns only once the frame's record
    /// is written into the segment (the page cache), so a frame handed to the kernel after it
    /// survives a crash of the process in the journal too.
    pub fn set_write_ahead(&mut self, on: bool) {
        self.write_ahead = on;
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn counters(&self) -> TapCounters {
        self.counters.snapshot()
    }

    /// The counters, for other threads.
    pub fn counters_handle(&self) -> TapCountersHandle {
        TapCountersHandle(Arc::clone(&self.counters))
    }

    /// The first append that failed, if any.
    pub fn first_failure(&self) -> Option<AppendError> {
        self.first_failure
    }

    /// Gives the journal back (to close it and read its final counters).
    pub fn into_journal(self) -> Journal {
        self.journal
    }

    fn failed(&mut self, e: AppendError) {
        bump(&self.counters.append_failures);
        self.first_failure.get_or_insert(e);
    }

    /// A frame as received from `session`, before anything acts on it.
    pub fn fix_in(&mut self, now: Nanos, session: usize, frame: &[u8]) {
        match self
            .journal
            .append_fix(FixDirection::Inbound, session as u16, now, frame)
        {
            Ok(seq) => {
                bump(&self.counters.fix_in);
                if let Some(l) = self.last_in.get_mut(session) {
                    *l = LastIn {
                        seq,
                        addr: frame.as_ptr() as usize,
                        len: frame.len(),
                    };
                }
            }
            Err(e) => self.failed(e),
        }
    }

    /// While `on`, application messages written are the router's own (a restart's notices
    /// to a desk, say), not the engine's outputs: their `fix-out` records carry
    /// `FIX_FLAG_NOT_ENGINE` and replay does not expect the engine to produce them. Set it
    /// around such sends and clear it after.
    pub fn set_router_origin(&mut self, on: bool) {
        self.router_origin = on;
    }

    /// A frame as written to `session` (or as handed to the hold). Returns its record's
    /// sequence number.
    pub fn fix_out(&mut self, now: Nanos, session: usize, frame: &[u8]) -> Option<u64> {
        let flags = if self.router_origin {
            FIX_FLAG_NOT_ENGINE
        } else {
            0
        };
        match self.journal.append_fix_flagged(
            FixDirection::Outbound,
            session as u16,
            flags,
            now,
            frame,
        ) {
            Ok(seq) => {
                bump(&self.counters.fix_out);
                if self.write_ahead {
                    match self.journal.wait_written(seq) {
                        Ok(0) => {}
                        Ok(ns) => {
                            bump(&self.counters.write_ahead_waits);
                            let t = &self.counters.write_ahead_wait_ns;
                            t.store(
                                t.load(Ordering::Relaxed).wrapping_add(ns),
                                Ordering::Relaxed,
                            );
                        }
                        Err(e) => self.failed(e),
                    }
                }
                Some(seq)
            }
            Err(e) => {
                self.failed(e);
                None
            }
        }
    }

    /// The engine is about to be given the application message `frame` from `session`.
    /// When it is the frame the session just received (the usual case: the same bytes, at
    /// the same address) the input names that `fix-in` record; otherwise (a message the
    /// session had queued) the bytes are inlined.
    pub fn input_fix(&mut self, now: Nanos, session: usize, frame: &[u8]) {
        let message = match self.last_in.get(session) {
            Some(l) if l.seq != 0 && l.addr == frame.as_ptr() as usize && l.len == frame.len() => {
                FixSource::Record(l.seq)
            }
            _ => {
                bump(&self.counters.inputs_inlined);
                FixSource::Inline(frame)
            }
        };
        self.input(
            now,
            &EngineInput::Fix {
                session: session as u16,
                message,
            },
        );
    }

    /// Any engine input (`now` is the one given to `Engine::on`).
    pub fn input(&mut self, now: Nanos, input: &EngineInput<'_>) {
        let inline_len = match input {
            EngineInput::Fix {
                message: FixSource::Inline(f),
                ..
            } => f.len(),
            _ => 0,
        };
        if self.scratch.len() < INPUT_HEADER_LEN + inline_len {
            // Only a queued message larger than any before: grows once.
            self.scratch.resize(INPUT_HEADER_LEN + inline_len, 0);
        }
        match encode_input(input, &mut self.scratch) {
            Ok(n) => self.append_scratch(RecordKind::EngineInput, now, n, |c| &c.inputs),
            Err(_) => self.failed(AppendError::PayloadTooLarge {
                len: INPUT_HEADER_LEN + inline_len,
                max: self.scratch.len(),
            }),
        }
    }

    /// Score rows the engine is about to be given (`Event::ScoreUpdate`'s rows; `snapshot`:
    /// the rows the run starts from): one `input` record per [`MAX_ROWS_PER_INPUT`] rows (at
    /// least one, so that replay gives the engine the event at the same point), all but the
    /// last flagged "more".
    pub fn input_score_rows(&mut self, now: Nanos, snapshot: bool, rows: &[ScoreRow]) {
        let parts = rows.len().div_ceil(MAX_ROWS_PER_INPUT).max(1);
        for p in 0..parts {
            let part = &rows[(p * MAX_ROWS_PER_INPUT).min(rows.len())
                ..((p + 1) * MAX_ROWS_PER_INPUT).min(rows.len())];
            match encode_score_rows(snapshot, p + 1 < parts, part, &mut self.scratch) {
                Ok(n) => self.append_scratch(RecordKind::EngineInput, now, n, |c| &c.inputs),
                Err(_) => self.failed(AppendError::PayloadTooLarge {
                    len: INPUT_HEADER_LEN + part.len() * crate::select::rows::ROW_BYTES,
                    max: self.scratch.len(),
                }),
            }
        }
    }

    /// A rules reload the engine is about to be given: the rules text (or the refusal's
    /// reason) in parts of at most [`MAX_RULES_PART_BYTES`], with the version it installs.
    pub fn input_rules(&mut self, now: Nanos, reload: &RulesReload) {
        let (refused, seq, hash, text) = match reload {
            RulesReload::Installed(r) => {
                let v = r.version();
                (false, v.seq, v.hash, r.text().as_bytes())
            }
            RulesReload::Refused { error } => (true, 0, 0, error.as_bytes()),
        };
        let Ok(total_len) = u32::try_from(text.len()) else {
            self.failed(AppendError::PayloadTooLarge {
                len: text.len(),
                max: u32::MAX as usize,
            });
            return;
        };
        let parts = text.len().div_ceil(MAX_RULES_PART_BYTES).max(1);
        for p in 0..parts {
            let from = (p * MAX_RULES_PART_BYTES).min(text.len());
            let to = ((p + 1) * MAX_RULES_PART_BYTES).min(text.len());
            let input = EngineInput::RulesText {
                refused,
                seq,
                hash,
                total_len,
                offset: from as u32,
                part: &text[from..to],
            };
            match encode_input(&input, &mut self.scratch) {
                Ok(n) => self.append_scratch(RecordKind::EngineInput, now, n, |c| &c.inputs),
                Err(_) => self.failed(AppendError::PayloadTooLarge {
                    len: to - from,
                    max: self.scratch.len(),
                }),
            }
        }
    }

    /// What the scoring thread or the rules watcher hands the engine, as its input (score
    /// rows, rules text; other `ToEngine` messages are journaled by whoever adds them).
    pub fn input_feedback(&mut self, now: Nanos, msg: &ToEngine) {
        match msg {
            ToEngine::Scores(u) => self.input_score_rows(now, false, &u.rows),
            ToEngine::Rules(r) => self.input_rules(now, r),
            // Messages other modules add journal their own input.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// A record the engine produced (`Command::Journal`).
    pub fn engine_record(&mut self, now: Nanos, record: &Record) {
        match encode_engine_record(record, &mut self.scratch) {
            Ok((kind, n)) => self.append_scratch(kind, now, n, |c| &c.engine_records),
            Err(_) => self.failed(AppendError::PayloadTooLarge {
                len: MAX_DECISION_PAYLOAD,
                max: self.scratch.len(),
            }),
        }
    }

    /// An application message the engine asked for that `session` did not send.
    pub fn unsent(&mut self, now: Nanos, session: usize, reason: u8, msg_type: &[u8]) {
        let u = Unsent {
            session: session as u16,
            reason,
            msg_type,
        };
        match encode_unsent(&u, &mut self.scratch) {
            Ok(n) => self.append_scratch(RecordKind::Unsent, now, n, |c| &c.unsent),
            Err(_) => self.failed(AppendError::PayloadTooLarge {
                len: msg_type.len(),
                max: self.scratch.len(),
            }),
        }
    }

    /// The first record of a run: the files the engine was built from. `now` must be the
    /// `now` the engine was constructed with (its timer wheel starts there).
    pub fn run_start(&mut self, now: Nanos, files: &[RunFile<'_>]) -> Result<u64, AppendError> {
        let needed: usize = files.iter().map(|f| 16 + f.path.len()).sum::<usize>() + 16;
        let mut buf = vec![0u8; needed];
        let n = encode_run_start(files, &mut buf).map_err(|_| AppendError::PayloadTooLarge {
            len: needed,
            max: needed,
        })?;
        self.journal
            .append(RecordKind::ConfigReload, now, &buf[..n])
    }

    fn append_scratch(
        &mut self,
        kind: RecordKind,
        now: Nanos,
        len: usize,
        counter: impl FnOnce(&SharedCounters) -> &AtomicU64,
    ) {
        match self.journal.append(kind, now, &self.scratch[..len]) {
            Ok(_) => bump(counter(&self.counters)),
            Err(e) => self.failed(e),
        }
    }

    /// Whether frames to `session` are being held (`fsync` durability only).
    pub fn is_holding(&self, session: usize) -> bool {
        self.holds.get(session).is_some_and(|h| !h.bytes.is_empty())
    }

    /// Decides, for a frame just journaled as record `seq`, whether it may be written now.
    /// In `fsync` durability an ExecutionReport (35=8) whose record is not yet durable is
    /// held, and so is everything after it on that session until the hold is released.
    pub fn hold_outbound(
        &mut self,
        now: Nanos,
        session: usize,
        seq: Option<u64>,
        frame: &[u8],
    ) -> HoldDecision {
        if !self.hold_executions || session >= self.holds.len() {
            return HoldDecision::Pass;
        }
        let holding = self.is_holding(session);
        let is_execution = fix_tag_value(frame, b"35") == Some(b"8");
        let must_wait = is_execution && seq.is_some_and(|s| s > self.journal.durable_seq());
        if !holding && !must_wait {
            return HoldDecision::Pass;
        }
        let h = &mut self.holds[session];
        if h.bytes.len() + frame.len() > MAX_HELD_BYTES {
            h.bytes.clear();
            self.holding -= usize::from(holding);
            bump(&self.counters.holds_dropped);
            return HoldDecision::Overflow;
        }
        if must_wait {
            h.until_seq = h.until_seq.max(seq.unwrap_or(0));
            bump(&self.counters.executions_held);
            self.journal.wake_when_durable();
            self.journal.request_sync();
        }
        h.bytes.extend_from_slice(frame);
        bump(&self.counters.frames_held);
        if !holding {
            self.holding += 1;
            let at = Nanos(now.0.saturating_add(HOLD_CHECK_INTERVAL_NS));
            self.next_hold_check = Some(self.next_hold_check.map_or(at, |t| t.min(at)));
        }
        HoldDecision::Held
    }

    /// Hands every hold whose records are durable to `write(session, bytes)`, in order.
    /// Cheap when nothing changed (one atomic load): call it every loop cycle.
    pub fn release(&mut self, now: Nanos, mut write: impl FnMut(usize, &[u8])) {
        if self.holding == 0 {
            return;
        }
        let durable = self.journal.durable_seq();
        if durable == self.durable_checked && self.next_hold_check.is_some_and(|t| t > now) {
            return;
        }
        self.durable_checked = durable;
        for (i, h) in self.holds.iter_mut().enumerate() {
            if !h.bytes.is_empty() && h.until_seq <= durable {
                write(i, &h.bytes);
                h.bytes.clear();
                self.holding -= 1;
                bump(&self.counters.holds_released);
            }
        }
        self.next_hold_check = if self.holding == 0 {
            None
        } else {
            self.journal.request_sync();
            Some(Nanos(now.0.saturating_add(HOLD_CHECK_INTERVAL_NS)))
        };
    }

    /// `session` lost its connection: what it held is not written (it is in the store).
    pub fn drop_hold(&mut self, session: usize) {
        if let Some(h) = self.holds.get_mut(session) {
            if !h.bytes.is_empty() {
                h.bytes.clear();
                self.holding -= 1;
                bump(&self.counters.holds_dropped);
            }
        }
    }

    /// When the loop must come back to release holds, if anything is held.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.next_hold_check.filter(|_| self.holding > 0)
    }
}
