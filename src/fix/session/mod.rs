//! The FIX 4.4 session layer as a pure state machine: bytes and events in, frames and actions
//! out.
//!
//! Owns the session rules of one FIX session (one SenderCompID/TargetCompID pair), acceptor or
//! initiator: Logon (HeartBtInt, ResetSeqNumFlag, CompIDs, SendingTime accuracy, BeginString),
//! Heartbeat and TestRequest, sequence checks (too high: ResendRequest and a bounded queue; too
//! low: Logout, or ignore a PossDup), ResendRequest served from the `MessageStore` with
//! SequenceReset-GapFill over session-level messages, SequenceReset-Reset and -GapFill, Reject
//! (35=3) from the validator's `Violation`, the Logout handshake, timeouts, and the
//! header of every message it writes (8, 9, 35, then the header in ascending tag order).
//! It must not touch a socket, a thread or the clock: `now` is a parameter, frames go to an
//! `Outbox`, and the host acts on `SessionEvent`s (write, close). Which connection belongs to
//! which session, and refusing a second connection for a session that is already logged on,
//! is the host's business (`logon_comp_ids` helps it decide before a byte reaches a session).
//! Every queue and batch is bounded and every limit hit is counted in `SessionCounters`.

use std::sync::Arc;

use super::encode::{write_u64, EncodeError, Encoder};
use super::frame::{FrameStatus, Framer};
use super::message::{Decoder, Message};
use super::store::{MessageStore, StoreError};
use super::tags;
use super::validate::{SessionRejectReason, Validator, Violation};
use crate::time::{parse_utc_timestamp, Nanos};

#[cfg(test)]
mod tests;

/// The only BeginString this layer speaks.
pub const BEGIN_STRING: &[u8] = b"FIX.4.4";

/// Which side opens the FIX session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Waits for the peer's Logon and answers it.
    Acceptor,
    /// Sends the Logon as soon as the connection is up.
    Initiator,
}

/// Where QuickFIX/C++ and QuickFIX/J answer the same input differently and both answers are
/// defensible FIX, which one this session gives. Nothing else depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compat {
    /// RefTagID (371) also on the Rejects the session raises itself for SendingTime (52/122),
    /// MsgType (35) and NewSeqNo (36). QuickFIX/J: yes; QuickFIX/C++: no.
    pub ref_tag_on_session_rejects: bool,
    /// The Logout that follows a fatal Reject (CompID, SendingTime) carries the Reject's text,
    /// and a Logon refused for its SendingTime is answered with an explaining Logout before the
    /// disconnect (QuickFIX/C++ just disconnects).
    pub explain_logouts: bool,
}

impl Compat {
    /// Behaves like QuickFIX/C++ 1.15+.
    pub const QUICKFIX: Compat = Compat {
        ref_tag_on_session_rejects: false,
        explain_logouts: false,
    };
    /// Behaves like QuickFIX/J 2.x.
    pub const QUICKFIXJ: Compat = Compat {
        ref_tag_on_session_rejects: true,
        explain_logouts: true,
    };
}

impl Default for Compat {
    fn default() -> Self {
        Compat::QUICKFIX
    }
}

/// Everything a session needs to know before its first byte. Limits are per session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub role: Role,
    /// Our CompID: SenderCompID (49) of what we send, TargetCompID (56) of what we accept.
    pub sender_comp_id: String,
    /// The peer's CompID.
    pub target_comp_id: String,
    /// HeartBtInt (108) an initiator proposes. An acceptor uses the peer's value.
    pub heart_bt_int_s: u32,
    /// Start a new FIX session (both sequence numbers back to 1) at every Logon. An initiator
    /// then sends ResetSeqNumFlag=Y.
    pub reset_on_logon: bool,
    /// Largest allowed distance between SendingTime (52) and `now`.
    pub max_sending_time_skew_ms: u64,
    /// How long to wait for the Logon (acceptor) or its answer (initiator).
    pub logon_timeout_ms: u64,
    /// How long to wait for the answer to our Logout before disconnecting.
    pub logout_timeout_ms: u64,
    /// Silence (nothing received) after which a TestRequest is sent, in % of HeartBtInt.
    pub test_request_after_pct: u32,
    /// Silence after which the peer is declared dead, in % of HeartBtInt.
    pub disconnect_after_pct: u32,
    /// Largest frame accepted or written.
    pub max_message_bytes: usize,
    /// Most fields in one message.
    pub max_fields: usize,
    /// Messages received ahead of a gap, kept until the gap is filled.
    pub max_queued_messages: usize,
    /// Bytes of those messages.
    pub max_queued_bytes: usize,
    /// Frames written per step while serving a ResendRequest; the rest follows on the next
    /// `on_timer` (`next_deadline` says "now" while a resend is unfinished).
    pub resend_batch_max: usize,
    pub compat: Compat,
}

impl SessionConfig {
    /// An acceptor with the usual QuickFIX defaults.
    pub fn acceptor(sender_comp_id: &str, target_comp_id: &str) -> SessionConfig {
        SessionConfig {
            role: Role::Acceptor,
            sender_comp_id: sender_comp_id.to_owned(),
            target_comp_id: target_comp_id.to_owned(),
            heart_bt_int_s: 30,
            reset_on_logon: true,
            max_sending_time_skew_ms: 120_000,
            logon_timeout_ms: 10_000,
            logout_timeout_ms: 2_000,
            test_request_after_pct: 120,
            disconnect_after_pct: 240,
            max_message_bytes: 16 * 1024,
            max_fields: 1024,
            max_queued_messages: 1024,
            max_queued_bytes: 4 * 1024 * 1024,
            resend_batch_max: 1024,
            compat: Compat::QUICKFIX,
        }
    }

    /// An initiator with the usual QuickFIX defaults.
    pub fn initiator(
        sender_comp_id: &str,
        target_comp_id: &str,
        heart_bt_int_s: u32,
    ) -> SessionConfig {
        SessionConfig {
            role: Role::Initiator,
            heart_bt_int_s,
            ..SessionConfig::acceptor(sender_comp_id, target_comp_id)
        }
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No connection (or the session asked for it to be closed).
    Disconnected,
    /// Acceptor: connected, waiting for the peer's Logon.
    AwaitingLogon,
    /// Initiator: our Logon is out, waiting for the answer.
    LogonSent,
    /// Logged on: application messages flow.
    Active,
    /// Our Logout is out, waiting for the peer's.
    LogoutSent,
}

/// Why the session asks the host to close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The Logout handshake completed (either side started it).
    LogoutComplete,
    /// Our Logout was not answered in time.
    LogoutTimeout,
    /// No Logon (or no answer to ours) in time.
    LogonTimeout,
    /// The first message was not a Logon.
    FirstMessageNotLogon,
    /// The Logon was unreadable or broke a rule (CompIDs, SendingTime, HeartBtInt, BeginString,
    /// dictionary).
    LogonRefused,
    /// A second Logon on a logged-on session without ResetSeqNumFlag.
    UnexpectedLogon,
    /// A message without MsgSeqNum (34).
    MissingMsgSeqNum,
    /// MsgSeqNum lower than expected without PossDupFlag.
    MsgSeqNumTooLow,
    /// Nothing received for the configured silence, TestRequest included.
    HeartbeatTimeout,
    /// A frame declared longer than the maximum message size.
    MessageTooLarge,
    /// The message store failed.
    StoreFailure,
}

/// What the session reports besides frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The session is logged on; `reset` says a new FIX session (sequence 1) began.
    LoggedOn { heart_bt_int_s: u32, reset: bool },
    /// Close the connection after writing every frame already given, then call
    /// `on_disconnected`. The session ignores input until `on_connected`.
    Disconnect { reason: DisconnectReason },
}

/// Receives what a session produces, in order.
pub trait Outbox {
    /// A complete frame (`8=` to the checksum's SOH) to write to the peer.
    fn send_frame(&mut self, frame: &[u8]);
    /// Something the host must act on (`Disconnect`) or may record.
    fn event(&mut self, event: SessionEvent);
    /// A complete frame as received, before the session acts on it (the journal's hook).
    fn received_frame(&mut self, _frame: &[u8]) {}
}

/// An `Outbox` that keeps copies of everything (tests, tools; it allocates per frame).
#[derive(Debug, Default)]
pub struct CollectOutbox {
    pub frames: Vec<Vec<u8>>,
    pub events: Vec<SessionEvent>,
}

impl Outbox for CollectOutbox {
    fn send_frame(&mut self, frame: &[u8]) {
        self.frames.push(frame.to_vec());
    }
    fn event(&mut self, event: SessionEvent) {
        self.events.push(event);
    }
}

impl CollectOutbox {
    /// Whether a `Disconnect` was asked for.
    pub fn disconnected(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, SessionEvent::Disconnect { .. }))
    }
}

/// Why an application message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The session is not logged on (or is logging out).
    NotLoggedOn,
    /// The message does not fit the maximum message size; no sequence number was used.
    TooLarge { limit: usize },
    /// The store refused to keep the message; nothing was sent.
    Store(StoreError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotLoggedOn => f.write_str("session is not logged on"),
            SendError::TooLarge { limit } => write!(f, "message exceeds {limit} bytes"),
            SendError::Store(e) => write!(f, "message store: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// How the application took a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppOutcome {
    Accepted,
    /// A valid message of a type this application does not handle: BusinessMessageReject
    /// (35=j) with BusinessRejectReason 3.
    UnsupportedMsgType,
    /// BusinessMessageReject with the given BusinessRejectReason (380) and Text.
    BusinessReject {
        reason: u32,
        text: &'static str,
        ref_tag: Option<u32>,
    },
}

/// Sends application messages on the session that delivered the message being handled.
pub struct Reply<'a> {
    tx: &'a mut dyn AppSender,
}

impl Reply<'_> {
    /// Like `Session::send_app`: the session writes 8, 9, 35, 34, 49, 52, 56; `fill` writes any
    /// further header fields (ascending) and then the body. Returns the MsgSeqNum used.
    pub fn send(
        &mut self,
        msg_type: &[u8],
        fill: &mut dyn FnMut(&mut Encoder),
    ) -> Result<u64, SendError> {
        self.tx.send_app_dyn(msg_type, fill)
    }
}

trait AppSender {
    fn send_app_dyn(
        &mut self,
        msg_type: &[u8],
        fill: &mut dyn FnMut(&mut Encoder),
    ) -> Result<u64, SendError>;
}

/// The application behind a session: it receives each application message once, in
/// sequence, after the session and the dictionary accepted it.
pub trait Application {
    fn on_message(&mut self, msg: &Message<'_>, reply: &mut Reply<'_>) -> AppOutcome;
}

/// An application that accepts everything and answers nothing.
#[derive(Debug, Default)]
pub struct NullApp;

impl Application for NullApp {
    fn on_message(&mut self, _msg: &Message<'_>, _reply: &mut Reply<'_>) -> AppOutcome {
        AppOutcome::Accepted
    }
}

/// What happened, counted. Never reset by the session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounters {
    pub frames_in: u64,
    pub garbled_in: u64,
    pub too_large_in: u64,
    pub frames_out: u64,
    pub rejects_sent: u64,
    pub business_rejects_sent: u64,
    pub resend_requests_sent: u64,
    pub resend_requests_served: u64,
    pub messages_resent: u64,
    pub gap_fills_sent: u64,
    pub resend_too_large: u64,
    /// Session-level replies not sent because the peer's values made them too large.
    pub admin_too_large: u64,
    pub queued_in: u64,
    pub queue_overflows: u64,
    pub duplicates_ignored: u64,
    pub heartbeat_timeouts: u64,
    pub store_errors: u64,
}

/// Header tags of FIX 4.4 (StandardHeader), for splitting a stored frame on resend.
fn is_header_tag(tag: u32) -> bool {
    matches!(
        tag,
        8 | 9
            | 35
            | 49
            | 56
            | 115
            | 128
            | 90
            | 91
            | 34
            | 50
            | 142
            | 57
            | 143
            | 116
            | 144
            | 129
            | 145
            | 43
            | 97
            | 52
            | 122
            | 212
            | 213
            | 347
            | 369
            | 627
            | 628
            | 629
            | 630
    )
}

/// Session-level (admin) message types: gap-filled on resend, never given to the application.
pub fn is_admin_msg_type(msg_type: &[u8]) -> bool {
    matches!(msg_type, b"0" | b"1" | b"2" | b"3" | b"4" | b"5" | b"A")
}

/// SenderCompID (49) and TargetCompID (56) of the Logon at the front of `buf`, if `buf` starts
/// with a whole, well-formed Logon frame. Lets a host route a new connection to its session,
/// or refuse it when that session is already logged on, before any session sees a byte.
pub fn logon_comp_ids<'a>(framer: &Framer, buf: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
    let FrameStatus::Frame { len } = framer.next_frame(buf) else {
        return None;
    };
    let frame = &buf[..len];
    let mut sender = None;
    let mut target = None;
    let mut is_logon = false;
    for field in frame.split(|&b| b == super::frame::SOH) {
        if let Some(v) = field.strip_prefix(b"35=") {
            is_logon = v == b"A";
        } else if let Some(v) = field.strip_prefix(b"49=") {
            sender.get_or_insert(v);
        } else if let Some(v) = field.strip_prefix(b"56=") {
            target.get_or_insert(v);
        }
    }
    if is_logon {
        Some((sender?, target?))
    } else {
        None
    }
}

/// Messages that arrived ahead of a gap, by MsgSeqNum. Bounded in count and bytes; buffers are
/// reused.
#[derive(Debug)]
struct InQueue {
    entries: Vec<(u64, Vec<u8>)>,
    spare: Vec<Vec<u8>>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl InQueue {
    fn new(max_entries: usize, max_bytes: usize) -> InQueue {
        InQueue {
            entries: Vec::with_capacity(max_entries.min(4096)),
            spare: Vec::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// Keeps `frame` under `seq`; false when a limit refused it.
    fn insert(&mut self, seq: u64, frame: &[u8]) -> bool {
        if let Some(i) = self.entries.iter().position(|e| e.0 == seq) {
            let (_, buf) = self.entries.swap_remove(i);
            self.bytes -= buf.len();
            self.spare.push(buf);
        }
        if self.entries.len() >= self.max_entries || self.bytes + frame.len() > self.max_bytes {
            return false;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.bytes += buf.len();
        self.entries.push((seq, buf));
        true
    }

    /// Moves the frame kept under `seq` into `into` (whose old buffer is kept for reuse).
    fn take(&mut self, seq: u64, into: &mut Vec<u8>) -> bool {
        let Some(i) = self.entries.iter().position(|e| e.0 == seq) else {
            return false;
        };
        let (_, mut buf) = self.entries.swap_remove(i);
        self.bytes -= buf.len();
        std::mem::swap(&mut buf, into);
        buf.clear();
        self.spare.push(buf);
        true
    }

    /// Drops everything below `seq`.
    fn prune_below(&mut self, seq: u64) {
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].0 < seq {
                let (_, buf) = self.entries.swap_remove(i);
                self.bytes -= buf.len();
                self.spare.push(buf);
            } else {
                i += 1;
            }
        }
    }

    fn clear(&mut self) {
        self.prune_below(u64::MAX);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Longest Text (58) the session composes itself.
const TEXT_CAP: usize = 192;

/// A small stack string for Text values built from parts.
struct TextBuf {
    buf: [u8; TEXT_CAP],
    len: usize,
}

impl TextBuf {
    fn new() -> TextBuf {
        TextBuf {
            buf: [0; TEXT_CAP],
            len: 0,
        }
    }
    fn push(&mut self, s: &[u8]) -> &mut Self {
        let n = s.len().min(TEXT_CAP - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
        self
    }
    fn push_u64(&mut self, v: u64) -> &mut Self {
        let mut d = [0u8; 20];
        let s = write_u64(v, &mut d);
        let mut tmp = [0u8; 20];
        tmp[..s.len()].copy_from_slice(s);
        self.push(&tmp[..s.len()])
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// RefTagID (371) of a Reject: a tag number, or an invalid tag's text as received.
#[derive(Clone, Copy)]
enum RefTag<'a> {
    None,
    Num(u32),
    Text(&'a [u8]),
}

/// What the session needs from an incoming message to answer it, copied out so that the reply
/// can be written while nothing else is borrowed.
struct Incoming<'a> {
    msg_type: &'a [u8],
    seq: u64,
    poss_dup: bool,
    /// Routing fields to reverse in replies: (tag to write, value), ascending by tag.
    routes: [(u32, &'a [u8]); 6],
    route_count: usize,
}

impl<'a> Incoming<'a> {
    fn of(msg: &Message<'a>, seq: u64) -> Incoming<'a> {
        const SWAP: [(u32, u32); 6] = [
            (115, 128),
            (116, 129),
            (144, 145),
            (128, 115),
            (129, 116),
            (145, 144),
        ];
        // One pass over the top-level fields for the six routing tags and PossDupFlag (the
        // first occurrence of each counts, as `Message::get` would find it), instead of seven
        // scans.
        let mut found: [Option<&[u8]>; 6] = [None; 6];
        let mut poss_dup: Option<&[u8]> = None;
        for r in msg.field_refs() {
            if r.depth != 0 {
                continue;
            }
            let k = match r.tag {
                115 => 0,
                116 => 1,
                144 => 2,
                128 => 3,
                129 => 4,
                145 => 5,
                tags::POSS_DUP_FLAG => {
                    poss_dup = poss_dup.or(Some(msg.value_of(r)));
                    continue;
                }
                _ => continue,
            };
            found[k] = found[k].or(Some(msg.value_of(r)));
        }
        let mut routes: [(u32, &[u8]); 6] = [(0, &[]); 6];
        let mut n = 0;
        for ((_, to), v) in SWAP.iter().zip(found) {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                routes[n] = (*to, v);
                n += 1;
            }
        }
        routes[..n].sort_by_key(|r| r.0);
        Incoming {
            msg_type: msg.msg_type(),
            seq,
            poss_dup: poss_dup == Some(b"Y"),
            routes,
            route_count: n,
        }
    }
}

/// Resend work in progress: the next MsgSeqNum to resend or gap-fill, and the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResendJob {
    next: u64,
    end: u64,
}

/// The standard header after MsgType as last written (`34=<seq>|49=..|52=..|56=..|`): the
/// next message in the same millisecond differs from it only in MsgSeqNum, one more,
/// incremented in place instead of the header being formatted again.
struct HeaderCache {
    bytes: [u8; HEADER_CACHE_BYTES],
    /// Bytes in use; 0: nothing cached.
    len: usize,
    seq: u64,
    /// Digits of `seq`, at `bytes[3..3 + seq_len]` (after `34=`).
    seq_len: usize,
    ms: u64,
}

/// Longest header kept (longer CompIDs are simply formatted every time).
const HEADER_CACHE_BYTES: usize = 128;

impl HeaderCache {
    const EMPTY: HeaderCache = HeaderCache {
        bytes: [0; HEADER_CACHE_BYTES],
        len: 0,
        seq: 0,
        seq_len: 0,
        ms: 0,
    };

    /// Keeps `header` (as `Encoder::session_header` wrote it) for MsgSeqNum `seq` at `ms`.
    fn keep(&mut self, header: &[u8], seq: u64, ms: u64) {
        let mut digits = [0u8; 20];
        let seq_len = write_u64(seq, &mut digits).len();
        let fits = header.len() <= HEADER_CACHE_BYTES
            && header.len() > 3 + seq_len
            && header.starts_with(b"34=");
        if !fits {
            self.len = 0;
            return;
        }
        self.bytes[..header.len()].copy_from_slice(header);
        self.len = header.len();
        self.seq = seq;
        self.seq_len = seq_len;
        self.ms = ms;
    }

    /// The header for MsgSeqNum `seq` at `ms`, if it is the kept one's successor in the same
    /// millisecond and has as many digits.
    fn next(&mut self, seq: u64, ms: u64) -> Option<&[u8]> {
        if self.len == 0 || ms != self.ms || self.seq.checked_add(1) != Some(seq) {
            return None;
        }
        for d in self.bytes[3..3 + self.seq_len].iter_mut().rev() {
            if *d == b'9' {
                *d = b'0';
            } else {
                *d += 1;
                self.seq = seq;
                return Some(&self.bytes[..self.len]);
            }
        }
        // All nines: the number grows a digit; format it again.
        self.len = 0;
        None
    }
}

/// Everything but the input tokeniser, so replies can be written while a message is borrowed.
struct Core<S: MessageStore> {
    cfg: SessionConfig,
    /// `49=<SenderCompID>|` and `56=<TargetCompID>|`, encoded once for every header.
    sender_comp_id_field: Vec<u8>,
    target_comp_id_field: Vec<u8>,
    validator: Arc<Validator>,
    store: S,
    enc: Encoder,
    header: HeaderCache,
    /// Tokenises stored frames on resend.
    resend_decoder: Decoder,
    state: SessionState,
    heart_bt_int_s: u32,
    last_sent: Nanos,
    last_received: Nanos,
    /// When the current logon/logout wait began.
    state_since: Nanos,
    last_now: Nanos,
    test_requests_out: u32,
    /// Our outstanding ResendRequest: (BeginSeqNo, last MsgSeqNum it must cover).
    resend_requested: Option<(u64, u64)>,
    resend_job: Option<ResendJob>,
    queue: InQueue,
    counters: SessionCounters,
}

/// One FIX session: feed it bytes and time, write what it gives to the `Outbox`.
pub struct Session<S: MessageStore> {
    framer: Framer,
    decoder: Decoder,
    core: Core<S>,
    scratch: Vec<u8>,
}

impl<S: MessageStore> Session<S> {
    pub fn new(cfg: SessionConfig, store: S, validator: Arc<Validator>) -> Session<S> {
        assert!(
            cfg.resend_batch_max > 0,
            "resend_batch_max must be at least 1"
        );
        Session {
            framer: Framer::new(cfg.max_message_bytes),
            decoder: Decoder::new(cfg.max_fields),
            scratch: Vec::with_capacity(cfg.max_message_bytes),
            core: Core {
                sender_comp_id_field: header_field(tags::SENDER_COMP_ID, &cfg.sender_comp_id),
                target_comp_id_field: header_field(tags::TARGET_COMP_ID, &cfg.target_comp_id),
                enc: Encoder::new(cfg.max_message_bytes),
                header: HeaderCache::EMPTY,
                resend_decoder: Decoder::new(cfg.max_fields),
                queue: InQueue::new(cfg.max_queued_messages, cfg.max_queued_bytes),
                heart_bt_int_s: cfg.heart_bt_int_s,
                cfg,
                validator,
                store,
                state: SessionState::Disconnected,
                last_sent: Nanos(0),
                last_received: Nanos(0),
                state_since: Nanos(0),
                last_now: Nanos(0),
                test_requests_out: 0,
                resend_requested: None,
                resend_job: None,
                counters: SessionCounters::default(),
            },
        }
    }

    pub fn state(&self) -> SessionState {
        self.core.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.core.cfg
    }

    pub fn counters(&self) -> &SessionCounters {
        &self.core.counters
    }

    pub fn store(&self) -> &S {
        &self.core.store
    }

    /// The store, to replace it before the session first connects (a restart resumes the
    /// sequence numbers kept in the journal).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.core.store
    }

    /// Gives the store back (to reuse it in a new `Session` after a restart).
    pub fn into_store(self) -> S {
        self.core.store
    }

    /// HeartBtInt in force (the peer's, for an acceptor once logged on).
    pub fn heart_bt_int_s(&self) -> u32 {
        self.core.heart_bt_int_s
    }

    /// Messages waiting for a gap to be filled.
    pub fn queued_messages(&self) -> usize {
        self.core.queue.len()
    }

    /// A connection is up. An initiator sends its Logon now.
    pub fn on_connected(&mut self, now: Nanos, out: &mut impl Outbox) {
        let c = &mut self.core;
        c.last_now = now;
        c.reset_connection_state();
        c.last_received = now;
        c.last_sent = now;
        c.state_since = now;
        match c.cfg.role {
            Role::Acceptor => c.state = SessionState::AwaitingLogon,
            Role::Initiator => {
                if c.cfg.reset_on_logon && !c.reset_store(now, out) {
                    return;
                }
                c.heart_bt_int_s = c.cfg.heart_bt_int_s;
                c.state = SessionState::LogonSent;
                let reset = c.cfg.reset_on_logon;
                let hbi = c.heart_bt_int_s;
                c.send_admin(now, out, b"A", None, &mut |e| {
                    e.uint(tags::ENCRYPT_METHOD, 0)
                        .uint(tags::HEART_BT_INT, u64::from(hbi));
                    if reset {
                        e.bool(tags::RESET_SEQ_NUM_FLAG, true);
                    }
                });
            }
        }
    }

    /// The connection is gone (whoever closed it). Unfinished gaps and resends are dropped;
    /// sequence numbers stay in the store.
    pub fn on_disconnected(&mut self, now: Nanos) {
        self.core.last_now = now;
        self.core.state = SessionState::Disconnected;
        self.core.reset_connection_state();
    }

    /// Feeds received bytes. Returns how many were consumed; keep the rest (an incomplete
    /// frame) and pass it again with more bytes. Stops early once the session asked for a
    /// disconnect.
    pub fn on_input(
        &mut self,
        now: Nanos,
        bytes: &[u8],
        app: &mut impl Application,
        out: &mut impl Outbox,
    ) -> usize {
        self.core.last_now = now;
        let mut pos = 0;
        while pos < bytes.len() && self.core.state != SessionState::Disconnected {
            match self.framer.next_frame(&bytes[pos..]) {
                FrameStatus::Incomplete => break,
                FrameStatus::Garbled { skip } => {
                    self.core.counters.garbled_in += 1;
                    pos += skip;
                    if self.core.awaiting_logon() {
                        self.core.disconnect(out, DisconnectReason::LogonRefused);
                    }
                }
                FrameStatus::TooLarge { .. } => {
                    self.core.counters.too_large_in += 1;
                    pos = bytes.len();
                    self.core.disconnect(out, DisconnectReason::MessageTooLarge);
                }
                FrameStatus::Frame { len } => {
                    let frame = &bytes[pos..pos + len];
                    pos += len;
                    self.core.counters.frames_in += 1;
                    out.received_frame(frame);
                    Self::handle_frame(
                        &mut self.decoder,
                        &mut self.core,
                        now,
                        frame,
                        false,
                        app,
                        out,
                    );
                    self.process_queue(now, app, out);
                }
            }
        }
        pos
    }

    /// Time has passed: heartbeats, TestRequest, timeouts, unfinished resends.
    pub fn on_timer(&mut self, now: Nanos, out: &mut impl Outbox) {
        self.core.last_now = now;
        self.core.on_timer(now, out);
    }

    /// When `on_timer` next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.core.next_deadline()
    }

    /// Sends an application message. The session writes 8, 9, 35, 34, 49, 52, 56; `fill`
    /// writes any further header fields (in ascending tag order, e.g. 97, 115, 128) and then
    /// the body. The frame is kept in the store for resend. Returns the MsgSeqNum used.
    pub fn send_app(
        &mut self,
        now: Nanos,
        msg_type: &[u8],
        fill: impl FnOnce(&mut Encoder),
        out: &mut impl Outbox,
    ) -> Result<u64, SendError> {
        self.core.last_now = now;
        let mut fill = Some(fill);
        self.core.send_app(now, out, msg_type, &mut |e| {
            if let Some(f) = fill.take() {
                f(e)
            }
        })
    }

    /// Starts the Logout handshake (with an optional Text). No-op unless logged on.
    pub fn logout(&mut self, now: Nanos, text: Option<&[u8]>, out: &mut impl Outbox) {
        self.core.last_now = now;
        if self.core.state == SessionState::Active {
            self.core.send_logout(now, out, text.unwrap_or(b""));
        }
    }

    fn process_queue(&mut self, now: Nanos, app: &mut impl Application, out: &mut impl Outbox) {
        loop {
            let c = &mut self.core;
            if !matches!(c.state, SessionState::Active | SessionState::LogoutSent) {
                return;
            }
            let expected = c.store.next_target_seq();
            if let Some((_, end)) = c.resend_requested {
                if expected > end {
                    c.resend_requested = None;
                }
            }
            c.queue.prune_below(expected);
            if !c.queue.take(expected, &mut self.scratch) {
                return;
            }
            let frame = std::mem::take(&mut self.scratch);
            Self::handle_frame(
                &mut self.decoder,
                &mut self.core,
                now,
                &frame,
                true,
                app,
                out,
            );
            self.scratch = frame;
            if self.core.store.next_target_seq() == expected {
                // Not consumed (it was refused or re-queued): do not spin on it.
                return;
            }
        }
    }

    fn handle_frame(
        decoder: &mut Decoder,
        core: &mut Core<S>,
        now: Nanos,
        frame: &[u8],
        from_queue: bool,
        app: &mut impl Application,
        out: &mut impl Outbox,
    ) {
        match decoder.decode(frame) {
            Ok(mut msg) => core.on_message(now, &mut msg, from_queue, app, out),
            Err(_) => {
                core.counters.garbled_in += 1;
                if core.awaiting_logon() {
                    core.disconnect(out, DisconnectReason::LogonRefused);
                }
            }
        }
    }
}

/// `tag=value|` as bytes (built once per session).
fn header_field(tag: u32, value: &str) -> Vec<u8> {
    let mut tag_text = [0u8; 11];
    let mut f = crate::fix::encode::write_tag_eq(tag, &mut tag_text).to_vec();
    f.extend_from_slice(value.as_bytes());
    f.push(crate::fix::SOH);
    f
}

fn reject_text(reason: SessionRejectReason) -> &'static str {
    use SessionRejectReason as R;
    match reason {
        R::InvalidTagNumber => "Invalid tag number",
        R::RequiredTagMissing => "Required tag missing",
        R::TagNotDefinedForMsgType => "Tag not defined for this message type",
        R::UndefinedTag => "Undefined Tag",
        R::TagSpecifiedWithoutValue => "Tag specified without a value",
        R::ValueIncorrect => "Value is incorrect (out of range) for this tag",
        R::IncorrectDataFormat => "Incorrect data format for value",
        R::DecryptionProblem => "Decryption problem",
        R::SignatureProblem => "Signature problem",
        R::CompIdProblem => "CompID problem",
        R::SendingTimeAccuracyProblem => "SendingTime accuracy problem",
        R::InvalidMsgType => "Invalid MsgType",
        R::XmlValidationError => "XML Validation error",
        R::TagAppearsMoreThanOnce => "Tag appears more than once",
        R::TagSpecifiedOutOfRequiredOrder => "Tag specified out of required order",
        R::RepeatingGroupFieldsOutOfOrder => "Repeating group fields out of order",
        R::IncorrectNumInGroupCount => "Incorrect NumInGroup count for repeating group",
        R::NonDataValueIncludesFieldDelimiter => "Non Data value includes field delimiter",
        R::Other => "Other",
    }
}

/// Outcome of the checks every message passes before its type's rules run.
enum Verdict {
    Proceed,
    Stop,
}

impl<S: MessageStore> Core<S> {
    fn reset_connection_state(&mut self) {
        self.test_requests_out = 0;
        self.resend_requested = None;
        self.resend_job = None;
        self.queue.clear();
    }

    fn awaiting_logon(&self) -> bool {
        matches!(
            self.state,
            SessionState::AwaitingLogon | SessionState::LogonSent
        )
    }

    fn logged_on(&self) -> bool {
        matches!(self.state, SessionState::Active | SessionState::LogoutSent)
    }

    fn disconnect(&mut self, out: &mut impl Outbox, reason: DisconnectReason) {
        if self.state == SessionState::Disconnected {
            return;
        }
        self.state = SessionState::Disconnected;
        self.reset_connection_state();
        out.event(SessionEvent::Disconnect { reason });
    }

    fn store_failed(&mut self, out: &mut impl Outbox) {
        self.counters.store_errors += 1;
        self.disconnect(out, DisconnectReason::StoreFailure);
    }

    fn reset_store(&mut self, now: Nanos, out: &mut impl Outbox) -> bool {
        if self.store.reset(now).is_err() {
            self.store_failed(out);
            return false;
        }
        true
    }

    fn set_expected(&mut self, seq: u64, out: &mut impl Outbox) {
        if self.store.set_next_target_seq(seq).is_err() {
            self.store_failed(out);
        }
    }

    fn incr_expected(&mut self, out: &mut impl Outbox) {
        let next = self.store.next_target_seq().saturating_add(1);
        self.set_expected(next, out);
    }

    /// Writes the standard header of a message with MsgSeqNum `seq`.
    fn start(&mut self, now: Nanos, msg_type: &[u8], seq: u64) {
        self.enc.start(msg_type);
        let ms = now.as_millis();
        if let Some(header) = self.header.next(seq, ms) {
            self.enc.raw(header);
            return;
        }
        let from = self.enc.body().len();
        self.enc.session_header(
            seq,
            &self.sender_comp_id_field,
            now,
            &self.target_comp_id_field,
        );
        self.header.keep(&self.enc.body()[from..], seq, ms);
    }

    /// Finishes the message in the encoder and hands it out with the next MsgSeqNum;
    /// `keep` stores it for resend.
    fn finish_and_send(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        seq: u64,
        keep: bool,
    ) -> Result<u64, SendError> {
        let frame = match self.enc.finish() {
            Ok(f) => f,
            Err(EncodeError::TooLarge { limit }) => return Err(SendError::TooLarge { limit }),
            Err(EncodeError::NotStarted) => unreachable!("finish after start"),
        };
        if keep {
            self.store
                .store_sent(seq, frame)
                .map_err(SendError::Store)?;
        }
        out.send_frame(frame);
        self.counters.frames_out += 1;
        self.last_sent = now;
        if let Err(e) = self.store.set_next_sender_seq(seq.saturating_add(1)) {
            self.store_failed(out);
            return Err(SendError::Store(e));
        }
        Ok(seq)
    }

    /// Sends a session-level message; `routes` are reversed routing fields for replies.
    fn send_admin(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg_type: &[u8],
        routes: Option<&Incoming<'_>>,
        body: &mut dyn FnMut(&mut Encoder),
    ) {
        let seq = self.store.next_sender_seq();
        self.start(now, msg_type, seq);
        if let Some(inc) = routes {
            for (tag, v) in &inc.routes[..inc.route_count] {
                self.enc.str(*tag, v);
            }
        }
        body(&mut self.enc);
        // A reply can carry the peer's values (TestReqID, RefMsgType, routing): one that no
        // longer fits is not sent, uses no sequence number, and is counted. Store failures are
        // handled inside.
        if let Err(SendError::TooLarge { .. }) = self.finish_and_send(now, out, seq, false) {
            self.counters.admin_too_large += 1;
        }
    }

    fn send_app(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg_type: &[u8],
        fill: &mut dyn FnMut(&mut Encoder),
    ) -> Result<u64, SendError> {
        if self.state != SessionState::Active {
            return Err(SendError::NotLoggedOn);
        }
        let seq = self.store.next_sender_seq();
        self.start(now, msg_type, seq);
        fill(&mut self.enc);
        self.finish_and_send(now, out, seq, true)
    }

    fn send_logout(&mut self, now: Nanos, out: &mut impl Outbox, text: &[u8]) {
        self.send_admin(now, out, b"5", None, &mut |e| {
            if !text.is_empty() {
                e.str(tags::TEXT, text);
            }
        });
        if self.state != SessionState::Disconnected {
            self.state = SessionState::LogoutSent;
            self.state_since = now;
        }
    }

    fn send_reject(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        inc: &Incoming<'_>,
        reason: SessionRejectReason,
        ref_tag: RefTag<'_>,
        text: &[u8],
    ) {
        // QuickFIX/C++ names no field when the session itself finds a SendingTime or
        // MsgType problem, or a NewSeqNo going backwards.
        let session_found = matches!(
            reason,
            SessionRejectReason::SendingTimeAccuracyProblem | SessionRejectReason::InvalidMsgType
        ) || matches!(ref_tag, RefTag::Num(tags::NEW_SEQ_NO));
        let ref_tag = if session_found && !self.cfg.compat.ref_tag_on_session_rejects {
            RefTag::None
        } else {
            ref_tag
        };
        let msg_type = inc.msg_type;
        let seq = inc.seq;
        self.send_admin(now, out, b"3", Some(inc), &mut |e| {
            e.uint(tags::REF_SEQ_NUM, seq).str(tags::TEXT, text);
            match ref_tag {
                RefTag::Num(t) => {
                    e.uint(tags::REF_TAG_ID, u64::from(t));
                }
                RefTag::Text(t) => {
                    e.str(tags::REF_TAG_ID, t);
                }
                RefTag::None => {}
            }
            e.str(tags::REF_MSG_TYPE, msg_type)
                .uint(tags::SESSION_REJECT_REASON, reason as u64);
        });
        self.counters.rejects_sent += 1;
        if inc.msg_type != b"A" && inc.msg_type != b"4" && inc.seq == self.store.next_target_seq() {
            self.incr_expected(out);
        }
    }

    /// A Reject that ends the session (CompID, SendingTime): Reject, then Logout.
    fn reject_and_logout(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        inc: &Incoming<'_>,
        reason: SessionRejectReason,
        ref_tag: Option<u32>,
    ) {
        let text = reject_text(reason);
        self.send_reject(
            now,
            out,
            inc,
            reason,
            ref_tag.map_or(RefTag::None, RefTag::Num),
            text.as_bytes(),
        );
        let mut logout_text = TextBuf::new();
        if self.cfg.compat.explain_logouts {
            logout_text.push(text.as_bytes());
            if let Some(t) = ref_tag {
                logout_text.push(b", field=").push_u64(u64::from(t));
            }
        }
        if self.state != SessionState::Disconnected {
            self.send_logout(now, out, logout_text.as_bytes());
        }
    }

    fn sending_time_ok(&self, now: Nanos, msg: &Message<'_>) -> bool {
        match msg.get(tags::SENDING_TIME).and_then(parse_utc_timestamp) {
            Some(t) => t.abs_diff(now).as_millis() <= self.cfg.max_sending_time_skew_ms,
            None => false,
        }
    }

    fn comp_ids_ok(&self, msg: &Message<'_>) -> bool {
        msg.get(tags::SENDER_COMP_ID) == Some(self.cfg.target_comp_id.as_bytes())
            && msg.get(tags::TARGET_COMP_ID) == Some(self.cfg.sender_comp_id.as_bytes())
    }

    /// The checks every message of a logged-on session passes: SendingTime, CompIDs, then
    /// sequence (too high / too low, when asked).
    fn verify(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg: &Message<'_>,
        inc: &Incoming<'_>,
        check_too_high: bool,
        check_too_low: bool,
    ) -> Verdict {
        if !self.sending_time_ok(now, msg) {
            self.reject_and_logout(
                now,
                out,
                inc,
                SessionRejectReason::SendingTimeAccuracyProblem,
                Some(tags::SENDING_TIME),
            );
            return Verdict::Stop;
        }
        if !self.comp_ids_ok(msg) {
            self.reject_and_logout(now, out, inc, SessionRejectReason::CompIdProblem, None);
            return Verdict::Stop;
        }
        let expected = self.store.next_target_seq();
        if check_too_high && inc.seq > expected {
            self.target_too_high(now, out, msg, inc.seq);
            return Verdict::Stop;
        }
        if check_too_low && inc.seq < expected {
            self.target_too_low(now, out, msg, inc);
            return Verdict::Stop;
        }
        Verdict::Proceed
    }

    fn target_too_high(&mut self, now: Nanos, out: &mut impl Outbox, msg: &Message<'_>, seq: u64) {
        if self.queue.insert(seq, msg.frame()) {
            self.counters.queued_in += 1;
        } else {
            self.counters.queue_overflows += 1;
        }
        if let Some((begin, _)) = self.resend_requested {
            if seq >= begin {
                return; // already asked for this gap
            }
        }
        let begin = self.store.next_target_seq();
        self.send_admin(now, out, b"2", None, &mut |e| {
            e.uint(tags::BEGIN_SEQ_NO, begin).uint(tags::END_SEQ_NO, 0);
        });
        self.counters.resend_requests_sent += 1;
        self.resend_requested = Some((begin, seq - 1));
    }

    fn target_too_low(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg: &Message<'_>,
        inc: &Incoming<'_>,
    ) {
        let expected = self.store.next_target_seq();
        if !inc.poss_dup {
            let mut text = TextBuf::new();
            text.push(b"MsgSeqNum too low, expecting ")
                .push_u64(expected)
                .push(b" but received ")
                .push_u64(inc.seq);
            self.send_logout(now, out, text.as_bytes());
            self.disconnect(out, DisconnectReason::MsgSeqNumTooLow);
            return;
        }
        if inc.msg_type != b"4" {
            let orig = match msg.get(tags::ORIG_SENDING_TIME) {
                None => {
                    self.send_reject(
                        now,
                        out,
                        inc,
                        SessionRejectReason::RequiredTagMissing,
                        RefTag::Num(tags::ORIG_SENDING_TIME),
                        reject_text(SessionRejectReason::RequiredTagMissing).as_bytes(),
                    );
                    return;
                }
                Some(v) => parse_utc_timestamp(v),
            };
            let sending = msg.get(tags::SENDING_TIME).and_then(parse_utc_timestamp);
            match (orig, sending) {
                (Some(o), Some(s)) if o <= s => {}
                _ => {
                    self.reject_and_logout(
                        now,
                        out,
                        inc,
                        SessionRejectReason::SendingTimeAccuracyProblem,
                        Some(tags::ORIG_SENDING_TIME),
                    );
                    return;
                }
            }
        }
        self.counters.duplicates_ignored += 1;
    }

    fn on_message(
        &mut self,
        now: Nanos,
        msg: &mut Message<'_>,
        from_queue: bool,
        app: &mut impl Application,
        out: &mut impl Outbox,
    ) {
        if self.state == SessionState::Disconnected {
            return;
        }
        self.last_received = now;
        self.test_requests_out = 0;
        if msg.begin_string() != BEGIN_STRING {
            if self.logged_on() {
                if self.state == SessionState::Active {
                    self.send_logout(now, out, b"Incorrect BeginString");
                }
            } else {
                self.disconnect(out, DisconnectReason::LogonRefused);
            }
            return;
        }
        let Some(seq) = msg.seq_num() else {
            if self.logged_on() {
                self.send_logout(now, out, b"Received message without MsgSeqNum");
            }
            self.disconnect(out, DisconnectReason::MissingMsgSeqNum);
            return;
        };
        let msg_type = msg.msg_type();
        if self.awaiting_logon() && msg_type != b"A" {
            let reason = if self.state == SessionState::LogonSent && msg_type == b"5" {
                DisconnectReason::LogonRefused
            } else {
                DisconnectReason::FirstMessageNotLogon
            };
            self.disconnect(out, reason);
            return;
        }
        if let Err(v) = self.validator.validate(msg) {
            self.on_violation(now, out, msg, seq, v);
            return;
        }
        let msg: &Message<'_> = msg;
        let inc = Incoming::of(msg, seq);
        match msg_type {
            b"A" => self.on_logon(now, out, msg, &inc, from_queue),
            b"5" => self.on_logout(now, out, msg, &inc),
            b"2" => self.on_resend_request(now, out, msg, &inc),
            b"4" => self.on_sequence_reset(now, out, msg, &inc),
            b"0" | b"3" => {
                if let Verdict::Proceed = self.verify(now, out, msg, &inc, true, true) {
                    self.incr_expected(out);
                }
            }
            b"1" => {
                if let Verdict::Proceed = self.verify(now, out, msg, &inc, true, true) {
                    let id = msg.get(tags::TEST_REQ_ID);
                    self.send_admin(now, out, b"0", None, &mut |e| {
                        if let Some(id) = id {
                            e.str(tags::TEST_REQ_ID, id);
                        }
                    });
                    self.incr_expected(out);
                }
            }
            _ => {
                if let Verdict::Proceed = self.verify(now, out, msg, &inc, true, true) {
                    self.incr_expected(out);
                    self.deliver(now, out, msg, &inc, app);
                }
            }
        }
    }

    fn deliver(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg: &Message<'_>,
        inc: &Incoming<'_>,
        app: &mut impl Application,
    ) {
        let outcome = {
            let mut tx = Tx {
                core: self,
                now,
                out,
            };
            let mut reply = Reply { tx: &mut tx };
            app.on_message(msg, &mut reply)
        };
        let (reason, text, ref_tag) = match outcome {
            AppOutcome::Accepted => return,
            AppOutcome::UnsupportedMsgType => (3u32, "Unsupported Message Type", None),
            AppOutcome::BusinessReject {
                reason,
                text,
                ref_tag,
            } => (reason, text, ref_tag),
        };
        let msg_type = inc.msg_type;
        let seq = inc.seq;
        self.send_admin(now, out, b"j", Some(inc), &mut |e| {
            e.uint(tags::REF_SEQ_NUM, seq)
                .str(tags::TEXT, text.as_bytes());
            if let Some(t) = ref_tag {
                e.uint(tags::REF_TAG_ID, u64::from(t));
            }
            e.str(tags::REF_MSG_TYPE, msg_type)
                .uint(380, u64::from(reason));
        });
        self.counters.business_rejects_sent += 1;
    }

    fn on_violation(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg: &Message<'_>,
        seq: u64,
        v: Violation,
    ) {
        if !self.logged_on() {
            // A Logon that breaks the dictionary's rules is not answered.
            if self.cfg.compat.explain_logouts {
                let mut text = TextBuf::new();
                text.push(b"Invalid Logon message: ")
                    .push(v.text.as_bytes());
                self.send_logout(now, out, text.as_bytes());
            }
            self.disconnect(out, DisconnectReason::LogonRefused);
            return;
        }
        let ref_tag = match (v.ref_tag, v.ref_field) {
            (Some(t), _) => RefTag::Num(t),
            (None, Some(i)) => match msg.field_refs().get(i) {
                Some(r) => RefTag::Text(msg.tag_text_of(r)),
                None => RefTag::None,
            },
            (None, None) => RefTag::None,
        };
        let text = if v.text.is_empty() {
            reject_text(v.reason)
        } else {
            v.text
        };
        let inc = Incoming::of(msg, seq);
        self.send_reject(now, out, &inc, v.reason, ref_tag, text.as_bytes());
    }

    fn on_logon(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg: &Message<'_>,
        inc: &Incoming<'_>,
        from_queue: bool,
    ) {
        if from_queue {
            // A Logon that arrived ahead of a gap: its number is now reached.
            self.incr_expected(out);
            return;
        }
        let reset_asked = msg.flag(tags::RESET_SEQ_NUM_FLAG);
        match self.state {
            SessionState::AwaitingLogon | SessionState::LogonSent => {}
            SessionState::Active if reset_asked => {}
            _ => {
                self.disconnect(out, DisconnectReason::UnexpectedLogon);
                return;
            }
        }
        if !self.comp_ids_ok(msg) {
            self.disconnect(out, DisconnectReason::LogonRefused);
            return;
        }
        if !self.sending_time_ok(now, msg) {
            if self.cfg.compat.explain_logouts {
                self.send_logout(
                    now,
                    out,
                    b"Invalid Logon message: SendingTime accuracy problem, field=52",
                );
            }
            self.disconnect(out, DisconnectReason::LogonRefused);
            return;
        }
        let hbi = match msg.get(tags::HEART_BT_INT) {
            Some(v) if v.first() == Some(&b'-') => {
                self.send_logout(now, out, b"HeartBtInt must not be negative");
                self.disconnect(out, DisconnectReason::LogonRefused);
                return;
            }
            Some(v) => super::message::parse_u64(v),
            None => None,
        };
        let Some(hbi) = hbi.and_then(|h| u32::try_from(h).ok()) else {
            self.disconnect(out, DisconnectReason::LogonRefused);
            return;
        };
        let was_initiator_wait = self.state == SessionState::LogonSent;
        // A new FIX session: on our configuration (acceptor) or on the peer's request, unless
        // we asked for it ourselves in our Logon (initiator).
        let reset =
            reset_asked || (self.cfg.reset_on_logon && self.state == SessionState::AwaitingLogon);
        if reset && !(was_initiator_wait && self.cfg.reset_on_logon) && !self.reset_store(now, out)
        {
            return;
        }
        let expected = self.store.next_target_seq();
        if inc.seq < expected {
            let mut text = TextBuf::new();
            text.push(b"MsgSeqNum too low, expecting ")
                .push_u64(expected)
                .push(b" but received ")
                .push_u64(inc.seq);
            self.send_logout(now, out, text.as_bytes());
            self.disconnect(out, DisconnectReason::MsgSeqNumTooLow);
            return;
        }
        // We answer a Logon as acceptor, and as initiator when the peer's answer asks for a
        // reset we did not ask for: its sequences restarted at 1, ours too (above), and our
        // Logon numbered 1 says so (QuickFIX's initiator answers such a Logon the same way).
        let unrequested_reset = was_initiator_wait && reset_asked && !self.cfg.reset_on_logon;
        if !was_initiator_wait || unrequested_reset {
            self.heart_bt_int_s = hbi;
            self.send_admin(now, out, b"A", None, &mut |e| {
                e.uint(tags::ENCRYPT_METHOD, 0)
                    .uint(tags::HEART_BT_INT, u64::from(hbi));
                if reset_asked {
                    e.bool(tags::RESET_SEQ_NUM_FLAG, true);
                }
            });
        }
        if self.state == SessionState::Disconnected {
            return;
        }
        self.state = SessionState::Active;
        self.state_since = now;
        self.test_requests_out = 0;
        out.event(SessionEvent::LoggedOn {
            heart_bt_int_s: self.heart_bt_int_s,
            reset,
        });
        if inc.seq > expected {
            self.target_too_high(now, out, msg, inc.seq);
        } else {
            self.incr_expected(out);
        }
    }

    fn on_logout(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg: &Message<'_>,
        inc: &Incoming<'_>,
    ) {
        if let Verdict::Stop = self.verify(now, out, msg, inc, false, false) {
            return;
        }
        if self.state == SessionState::Active {
            self.send_logout(now, out, b"");
        }
        if inc.seq == self.store.next_target_seq() {
            self.incr_expected(out);
        }
        self.disconnect(out, DisconnectReason::LogoutComplete);
    }

    fn on_sequence_reset(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg: &Message<'_>,
        inc: &Incoming<'_>,
    ) {
        let gap_fill = msg.flag(tags::GAP_FILL_FLAG);
        if let Verdict::Stop = self.verify(now, out, msg, inc, gap_fill, gap_fill) {
            return;
        }
        let Some(new_seq) = msg.get_u64(tags::NEW_SEQ_NO) else {
            self.send_reject(
                now,
                out,
                inc,
                SessionRejectReason::RequiredTagMissing,
                RefTag::Num(tags::NEW_SEQ_NO),
                reject_text(SessionRejectReason::RequiredTagMissing).as_bytes(),
            );
            return;
        };
        let expected = self.store.next_target_seq();
        if new_seq > expected {
            self.set_expected(new_seq, out);
        } else if new_seq < expected {
            self.send_reject(
                now,
                out,
                inc,
                SessionRejectReason::ValueIncorrect,
                RefTag::Num(tags::NEW_SEQ_NO),
                reject_text(SessionRejectReason::ValueIncorrect).as_bytes(),
            );
        }
    }

    fn on_resend_request(
        &mut self,
        now: Nanos,
        out: &mut impl Outbox,
        msg: &Message<'_>,
        inc: &Incoming<'_>,
    ) {
        if let Verdict::Stop = self.verify(now, out, msg, inc, false, false) {
            return;
        }
        let begin = msg.get_u64(tags::BEGIN_SEQ_NO).unwrap_or(1).max(1);
        let last_sent = self.store.next_sender_seq().saturating_sub(1);
        let end = match msg.get_u64(tags::END_SEQ_NO) {
            Some(0) | None => last_sent,
            Some(e) => e.min(last_sent),
        };
        self.counters.resend_requests_served += 1;
        if begin <= end {
            // A new request replaces an unfinished one.
            self.resend_job = Some(ResendJob { next: begin, end });
            self.serve_resend(now, out);
        }
        if inc.seq == self.store.next_target_seq() {
            self.incr_expected(out);
        }
    }

    /// Writes one batch of the resend in progress: stored application messages again (43=Y,
    /// 122 = their first SendingTime), and SequenceReset-GapFill over everything else.
    fn serve_resend(&mut self, now: Nanos, out: &mut impl Outbox) {
        let Some(job) = self.resend_job else {
            return;
        };
        if !self.logged_on() {
            self.resend_job = None;
            return;
        }
        let batch = self.cfg.resend_batch_max;
        let mut cursor = job.next;
        let mut written = 0usize;
        let mut last_visited = None;
        let mut failed = false;
        {
            let Core {
                store,
                enc,
                resend_decoder,
                cfg,
                counters,
                ..
            } = self;
            let sender = cfg.sender_comp_id.as_bytes();
            let target = cfg.target_comp_id.as_bytes();
            let res = store.fetch_sent(job.next, job.end, batch, &mut |seq, frame| {
                last_visited = Some(seq);
                if cursor < seq {
                    gap_fill(enc, now, sender, target, cursor, seq);
                    if let Ok(f) = enc.finish() {
                        out.send_frame(f);
                        counters.frames_out += 1;
                        counters.gap_fills_sent += 1;
                    }
                }
                if resend_frame(resend_decoder, enc, now, frame).is_ok() {
                    if let Ok(f) = enc.finish() {
                        out.send_frame(f);
                        counters.frames_out += 1;
                        counters.messages_resent += 1;
                        written += 1;
                        cursor = seq + 1;
                        return;
                    }
                }
                // Cannot be resent (grew past the size limit): the next gap fill covers it.
                counters.resend_too_large += 1;
                cursor = seq;
                written += 1;
            });
            if res.is_err() {
                failed = true;
            }
        }
        if failed {
            self.resend_job = None;
            self.store_failed(out);
            return;
        }
        // Whether the store may hold more in the range than this batch took.
        let more = written >= batch && last_visited.is_some_and(|s| s < job.end);
        if more {
            self.resend_job = Some(ResendJob {
                next: cursor,
                end: job.end,
            });
        } else {
            self.resend_job = None;
            if cursor <= job.end {
                let (sender, target) = (
                    self.cfg.sender_comp_id.as_bytes(),
                    self.cfg.target_comp_id.as_bytes(),
                );
                gap_fill(&mut self.enc, now, sender, target, cursor, job.end + 1);
                if let Ok(f) = self.enc.finish() {
                    out.send_frame(f);
                    self.counters.frames_out += 1;
                    self.counters.gap_fills_sent += 1;
                }
            }
        }
        self.last_sent = now;
    }

    fn on_timer(&mut self, now: Nanos, out: &mut impl Outbox) {
        match self.state {
            SessionState::Disconnected => return,
            SessionState::AwaitingLogon | SessionState::LogonSent => {
                if now >= self.state_since.add_millis(self.cfg.logon_timeout_ms) {
                    self.disconnect(out, DisconnectReason::LogonTimeout);
                }
                return;
            }
            SessionState::LogoutSent => {
                if now >= self.state_since.add_millis(self.cfg.logout_timeout_ms) {
                    self.disconnect(out, DisconnectReason::LogoutTimeout);
                    return;
                }
            }
            SessionState::Active => {}
        }
        self.serve_resend(now, out);
        if self.state != SessionState::Active || self.heart_bt_int_s == 0 {
            return;
        }
        let hb_ms = u64::from(self.heart_bt_int_s) * 1000;
        let silent_ms = now.saturating_sub(self.last_received).as_millis();
        if silent_ms >= hb_ms * u64::from(self.cfg.disconnect_after_pct) / 100 {
            self.counters.heartbeat_timeouts += 1;
            self.disconnect(out, DisconnectReason::HeartbeatTimeout);
        } else if self.test_requests_out == 0
            && silent_ms >= hb_ms * u64::from(self.cfg.test_request_after_pct) / 100
        {
            self.send_admin(now, out, b"1", None, &mut |e| {
                e.str(tags::TEST_REQ_ID, b"TEST");
            });
            self.test_requests_out = 1;
        } else if self.test_requests_out == 0
            && now.saturating_sub(self.last_sent).as_millis() >= hb_ms
        {
            self.send_admin(now, out, b"0", None, &mut |_| {});
        }
    }

    fn next_deadline(&self) -> Option<Nanos> {
        match self.state {
            SessionState::Disconnected => None,
            SessionState::AwaitingLogon | SessionState::LogonSent => {
                Some(self.state_since.add_millis(self.cfg.logon_timeout_ms))
            }
            SessionState::Active | SessionState::LogoutSent => {
                if self.resend_job.is_some() {
                    return Some(self.last_now);
                }
                let mut at = None::<Nanos>;
                let mut consider = |t: Nanos| {
                    at = Some(at.map_or(t, |a| a.min(t)));
                };
                if self.state == SessionState::LogoutSent {
                    consider(self.state_since.add_millis(self.cfg.logout_timeout_ms));
                }
                if self.state == SessionState::Active && self.heart_bt_int_s > 0 {
                    let hb_ms = u64::from(self.heart_bt_int_s) * 1000;
                    consider(
                        self.last_received
                            .add_millis(hb_ms * u64::from(self.cfg.disconnect_after_pct) / 100),
                    );
                    if self.test_requests_out == 0 {
                        consider(
                            self.last_received.add_millis(
                                hb_ms * u64::from(self.cfg.test_request_after_pct) / 100,
                            ),
                        );
                        consider(self.last_sent.add_millis(hb_ms));
                    }
                }
                at
            }
        }
    }
}

/// Writes a SequenceReset-GapFill with MsgSeqNum `seq` and NewSeqNo `new_seq`.
fn gap_fill(enc: &mut Encoder, now: Nanos, sender: &[u8], target: &[u8], seq: u64, new_seq: u64) {
    enc.start(b"4")
        .uint(tags::MSG_SEQ_NUM, seq)
        .bool(tags::POSS_DUP_FLAG, true)
        .str(tags::SENDER_COMP_ID, sender)
        .timestamp(tags::SENDING_TIME, now)
        .str(tags::TARGET_COMP_ID, target)
        .timestamp(tags::ORIG_SENDING_TIME, now)
        .uint(tags::NEW_SEQ_NO, new_seq)
        .bool(tags::GAP_FILL_FLAG, true);
}

/// Rewrites a stored frame for resend: the header in ascending tag order with PossDupFlag=Y,
/// SendingTime=now and OrigSendingTime = the first SendingTime, then the body as it was.
fn resend_frame(dec: &mut Decoder, enc: &mut Encoder, now: Nanos, frame: &[u8]) -> Result<(), ()> {
    const MAX_HEADER: usize = 32;
    let msg = dec.decode(frame).map_err(|_| ())?;
    let mut header: [(u32, &[u8]); MAX_HEADER] = [(0, &[]); MAX_HEADER];
    let mut n = 0;
    let mut orig: &[u8] = b"";
    let refs = msg.field_refs();
    let mut body_from = refs.len();
    for (i, r) in refs.iter().enumerate() {
        if !is_header_tag(r.tag) {
            body_from = i;
            break;
        }
        match r.tag {
            tags::BEGIN_STRING
            | tags::BODY_LENGTH
            | tags::MSG_TYPE
            | tags::POSS_DUP_FLAG
            | tags::ORIG_SENDING_TIME => {}
            tags::SENDING_TIME => orig = msg.value_of(r),
            tag => {
                if n + 3 >= MAX_HEADER {
                    return Err(());
                }
                header[n] = (tag, msg.value_of(r));
                n += 1;
            }
        }
    }
    let mut ts = [0u8; crate::time::UTC_TIMESTAMP_MS_LEN];
    let now_text = crate::time::format_utc_timestamp_ms(now, &mut ts);
    header[n] = (tags::POSS_DUP_FLAG, b"Y");
    header[n + 1] = (tags::SENDING_TIME, now_text);
    header[n + 2] = (tags::ORIG_SENDING_TIME, orig);
    n += 3;
    header[..n].sort_by_key(|f| f.0);
    enc.start(msg.msg_type());
    for (tag, value) in &header[..n] {
        enc.str(*tag, value);
    }
    for r in &refs[body_from..] {
        if r.tag != tags::CHECK_SUM {
            enc.str(r.tag, msg.value_of(r));
        }
    }
    Ok(())
}

/// The application's way back into the session while it handles a message.
struct Tx<'a, S: MessageStore, O: Outbox> {
    core: &'a mut Core<S>,
    now: Nanos,
    out: &'a mut O,
}

impl<S: MessageStore, O: Outbox> AppSender for Tx<'_, S, O> {
    fn send_app_dyn(
        &mut self,
        msg_type: &[u8],
        fill: &mut dyn FnMut(&mut Encoder),
    ) -> Result<u64, SendError> {
        self.core.send_app(self.now, self.out, msg_type, fill)
    }
}
