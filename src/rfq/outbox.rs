//! What the engine asks the outside world to do, for one `Engine::on` call.
//!
//! Owns the engine's output: a bounded list of commands (send this application message on
//! that session; journal this decision) and one bounded byte arena holding the messages'
//! bodies, already encoded as FIX fields. The host drains it after each call and hands each
//! body to the session layer, which writes the header, sequence number and trailer. Both are
//! sized at construction and reused, so producing output never allocates; running out of
//! room is a broken invariant (the engine's limits bound its output), reported by `assert!`.

use crate::fix::encode::{copy_small, put_tag_eq, write_u64};
use crate::fix::SOH;
use crate::rfq::types::{DealerId, FixId, SessionId};
use crate::select::tca::TcaFact;
use crate::time::{Nanos, UtcTimestampCache};
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
    /// Every slot holds a command (placeholders past `count`), so a new command is written
    /// over the one in its slot, field by field when the variant is the same (an engine step
    /// repeats the same sequence of commands): building a `Command` and moving it in copied
    /// its whole size (hundreds of bytes, set by the journal's decision record) per command.
    commands: Vec<Command>,
    /// Commands of the current step: `commands[..count]`.
    count: usize,
    /// The byte arena, its whole size allocated at construction; `len` bytes are in use.
    bytes: Box<[u8]>,
    len: usize,
    /// Counts `clear`s: a body range is only valid in the epoch that wrote it.
    epoch: u64,
    open: Option<(SessionId, &'static [u8], usize)>,
    /// ExpireTime, TransactTime: the date part formatted once per second.
    stamps: UtcTimestampCache,
}

impl Outbox {
    pub fn new(max_commands: usize, max_bytes: usize) -> Outbox {
        Outbox {
            commands: (0..max_commands)
                .map(|_| Command::Send {
                    session: SessionId(0),
                    msg_type: b"",
                    body: 0..0,
                })
                .collect(),
            count: 0,
            bytes: vec![0; max_bytes].into_boxed_slice(),
            len: 0,
            epoch: 0,
            open: None,
            stamps: UtcTimestampCache::default(),
        }
    }

    pub fn clear(&mut self) {
        assert!(
            self.open.is_none(),
            "outbox cleared with a message still open"
        );
        self.count = 0;
        self.len = 0;
        self.epoch += 1;
    }

    /// Which `clear` this outbox is at: body ranges from `last_body` are valid while the
    /// epoch they were taken in lasts.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The body range of the last message ended (empty before any).
    pub fn last_body(&self) -> Range<usize> {
        match self.commands().iter().rev().find_map(|c| match c {
            Command::Send { body, .. } => Some(body.clone()),
            Command::Journal(_) | Command::Tca(_) => None,
        }) {
            Some(b) => b,
            None => 0..0,
        }
    }

    /// Sends the same body again, to another session: one encoding for identical messages
    /// (a broadcast's requests). `body` must come from `last_body` in the current epoch.
    #[inline(always)]
    pub fn send_again(&mut self, session: SessionId, msg_type: &'static [u8], body: Range<usize>) {
        assert!(self.open.is_none(), "outbox send_again inside a message");
        assert!(body.end <= self.len, "outbox body range from another epoch");
        self.push_send(session, msg_type, body);
    }

    pub fn commands(&self) -> &[Command] {
        &self.commands[..self.count]
    }

    /// The encoded body fields of a `Send`.
    pub fn body(&self, range: &Range<usize>) -> &[u8] {
        &self.bytes[..self.len][range.clone()]
    }

    /// The next command's slot.
    #[inline(always)]
    fn next_slot(&mut self) -> &mut Command {
        assert!(
            self.count < self.commands.len(),
            "engine outbox command limit reached"
        );
        self.count += 1;
        &mut self.commands[self.count - 1]
    }

    #[inline(always)]
    fn push(&mut self, c: Command) {
        *self.next_slot() = c;
    }

    #[inline(always)]
    fn push_send(&mut self, session: SessionId, msg_type: &'static [u8], body: Range<usize>) {
        match self.next_slot() {
            Command::Send {
                session: s,
                msg_type: m,
                body: b,
            } => {
                *s = session;
                *m = msg_type;
                *b = body;
            }
            other => {
                *other = Command::Send {
                    session,
                    msg_type,
                    body,
                }
            }
        }
    }

    #[inline(always)]
    pub fn journal(&mut self, r: Record) {
        self.push(Command::Journal(r));
    }

    #[inline(always)]
    pub fn tca(&mut self, f: TcaFact) {
        match self.next_slot() {
            Command::Tca(old) => *old = f,
            other => *other = Command::Tca(f),
        }
    }

    /// Starts a message; write its fields with the returned writer, then `end`.
    pub fn begin(&mut self, session: SessionId, msg_type: &'static [u8]) -> &mut Self {
        assert!(self.open.is_none(), "outbox message begun inside another");
        self.open = Some((session, msg_type, self.len));
        self
    }

    #[inline(always)]
    pub fn end(&mut self) {
        let (session, msg_type, start) = self.open.take().expect("outbox end without begin");
        let end = self.len;
        self.push_send(session, msg_type, start..end);
    }

    fn put(&mut self, tag: u32, value: &[u8]) {
        // Tag digits, `=`, value and SOH written straight into the arena: one bounds check
        // for the whole field, one copy for the value.
        let need = 11 + value.len() + 1;
        assert!(
            self.len + need <= self.bytes.len(),
            "engine outbox byte limit reached"
        );
        let field = &mut self.bytes[self.len..self.len + need];
        let t = put_tag_eq(field, tag);
        copy_small(&mut field[t..t + value.len()], value);
        field[t + value.len()] = SOH;
        self.len += t + value.len() + 1;
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
        let text = *self.stamps.format(t);
        self.put(tag, &text);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_tag_equals_value_soh_and_a_body_can_be_sent_again() {
        let mut out = Outbox::new(8, 256);
        out.begin(SessionId(1), b"R")
            .str(131, b"R1-0")
            .uint(146, 1)
            .char(54, b'2')
            .uint(5, 0)
            .str(10_000, b"x");
        out.end();
        let body = out.last_body();
        assert_eq!(
            out.body(&body),
            b"131=R1-0\x01146=1\x0154=2\x015=0\x0110000=x\x01"
        );
        out.send_again(SessionId(2), b"R", body.clone());
        let sends: Vec<_> = out
            .commands()
            .iter()
            .map(|c| match c {
                Command::Send { session, body, .. } => (session.0, body.clone()),
                Command::Journal(_) | Command::Tca(_) => unreachable!(),
            })
            .collect();
        assert_eq!(sends, vec![(1, body.clone()), (2, body)]);
        let epoch = out.epoch();
        out.clear();
        assert_ne!(out.epoch(), epoch, "ranges of the last epoch are dead");
        assert_eq!(out.last_body(), 0..0);
    }

    #[test]
    #[should_panic(expected = "byte limit")]
    fn running_out_of_bytes_is_a_broken_invariant() {
        let mut out = Outbox::new(8, 16);
        out.begin(SessionId(1), b"R")
            .str(58, b"longer than sixteen bytes");
    }
}
