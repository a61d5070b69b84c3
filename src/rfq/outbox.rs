//! What the engine asks the outside world to do, for one `Engine::on` call.
//!
//! Owns the engine's output: a bounded list of commands (send this application message on
//! that session; journal this decision) and one bounded byte arena holding the messages'
//! bodies, already encoded as FIX fields. The host drains it after each call and hands each
//! body to the session layer, which writes the header, sequence number and trailer. Both are
//! sized at construction and reused, so producing output never allocates; running out of
//! room is a broken invariant (the engine's limits bound its output), reported by `assert!`.

use crate::fix::encode::write_u64;
use crate::fix::SOH;
use crate::rfq::types::{DealerId, FixId, SessionId};
use crate::select::tca::TcaFact;
use crate::time::{format_utc_timestamp_ms, Nanos, UTC_TIMESTAMP_MS_LEN};
use std::ops::Range;

/// Most dealers one decision can name (the engine's panel limit is at most this).
pub const MAX_PANEL: usize = 32;

/// A journal record the engine produces (issue 5 gives these their on-disk form).
// Records live inline in the outbox's command vector, sized at construction: boxing the
// large decision would allocate per RFQ.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The panel chosen for an RFQ leg, and the one the router recommended when a trader
    /// override named the panel.
    Decision {
        rfq: u64,
        protocol: u8,
        panel: smallvec::SmallVec<[DealerId; MAX_PANEL]>,
        recommended: smallvec::SmallVec<[DealerId; MAX_PANEL]>,
        overridden: bool,
        /// The recommendation's rationale, as far as the selector gives it: the rule that
        /// decided (`select::Selection::rule`), the rules' version (load sequence, hash) and
        /// each recommended dealer's composite score.
        rule: Option<u16>,
        rules_version: Option<(u64, u64)>,
        scores: smallvec::SmallVec<[f32; MAX_PANEL]>,
    },
    /// Rules reloaded (`refused: None`; `seq`/`hash` name the new rules) or a reload refused
    /// (`file:line:column: reason`; the rules in force stay). Payload layout and codec:
    /// `select::feedback::{encode_record, decode_record}` (journal kind 5, sub-kind 16).
    RulesReload {
        seq: u64,
        hash: u64,
        refused: Option<Box<str>>,
    },
    /// One executed RFQ's cost analysis, from the scoring thread (kind 6, sub-kind 17).
    TcaExecution(crate::select::tca::ExecutionTca),
    /// One observation the scoring thread added to the score tables (kind 7, sub-kind 18).
    ScoreUpdate(crate::select::tca::TcaUpdate),
}

/// One thing for the host to do.
// Commands live in a vector sized at construction; boxing the record would allocate per RFQ.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Send an application message: `msg_type`, and the body fields at `body` in the arena.
    Send {
        session: SessionId,
        msg_type: &'static [u8],
        body: Range<usize>,
    },
    Journal(Record),
    /// A fact for transaction-cost analysis (`select::tca`): the host forwards it to the
    /// scoring thread (bounded; dropped and counted when full).
    Tca(TcaFact),
}

/// The engine's output buffer.
#[derive(Debug)]
pub struct Outbox {
    commands: Vec<Command>,
    bytes: Vec<u8>,
    open: Option<(SessionId, &'static [u8], usize)>,
}

impl Outbox {
    pub fn new(max_commands: usize, max_bytes: usize) -> Outbox {
        Outbox {
            commands: Vec::with_capacity(max_commands),
            bytes: Vec::with_capacity(max_bytes),
            open: None,
        }
    }

    pub fn clear(&mut self) {
        assert!(
            self.open.is_none(),
            "outbox cleared with a message still open"
        );
        self.commands.clear();
        self.bytes.clear();
    }

    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// The encoded body fields of a `Send`.
    pub fn body(&self, range: &Range<usize>) -> &[u8] {
        &self.bytes[range.clone()]
    }

    fn push(&mut self, c: Command) {
        assert!(
            self.commands.len() < self.commands.capacity(),
            "engine outbox command limit reached"
        );
        self.commands.push(c);
    }

    pub fn journal(&mut self, r: Record) {
        self.push(Command::Journal(r));
    }

    pub fn tca(&mut self, f: TcaFact) {
        self.push(Command::Tca(f));
    }

    /// Starts a message; write its fields with the returned writer, then `end`.
    pub fn begin(&mut self, session: SessionId, msg_type: &'static [u8]) -> &mut Self {
        assert!(self.open.is_none(), "outbox message begun inside another");
        self.open = Some((session, msg_type, self.bytes.len()));
        self
    }

    pub fn end(&mut self) {
        let (session, msg_type, start) = self.open.take().expect("outbox end without begin");
        let end = self.bytes.len();
        self.push(Command::Send {
            session,
            msg_type,
            body: start..end,
        });
    }

    fn put(&mut self, tag: u32, value: &[u8]) {
        assert!(
            self.bytes.len() + value.len() + 12 <= self.bytes.capacity(),
            "engine outbox byte limit reached"
        );
        let mut digits = [0u8; 20];
        self.bytes
            .extend_from_slice(write_u64(u64::from(tag), &mut digits));
        self.bytes.push(b'=');
        self.bytes.extend_from_slice(value);
        self.bytes.push(SOH);
    }

    pub fn str(&mut self, tag: u32, value: &[u8]) -> &mut Self {
        self.put(tag, value);
        self
    }

    pub fn id(&mut self, tag: u32, value: &FixId) -> &mut Self {
        self.put(tag, value.as_bytes());
        self
    }

    pub fn uint(&mut self, tag: u32, value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        self.put(tag, write_u64(value, &mut digits));
        self
    }

    pub fn char(&mut self, tag: u32, value: u8) -> &mut Self {
        self.put(tag, &[value]);
        self
    }

    pub fn time(&mut self, tag: u32, t: Nanos) -> &mut Self {
        let mut buf = [0u8; UTC_TIMESTAMP_MS_LEN];
        format_utc_timestamp_ms(t, &mut buf);
        self.put(tag, &buf);
        self
    }
}
