//! The payloads of the engine's own records: what the engine was given (`input`), what it
//! decided (`decision`), which configuration it ran with (`reload`, sub-kind "run start") and
//! which of its messages never reached the wire (`unsent`). Byte layouts are in `FORMAT.md`.
//!
//! Owns encoding into a caller-provided buffer and decoding from a record's payload, both
//! without allocating and without panicking on any input. It does no I/O and knows nothing of
//! threads or files: the engine thread's `tap` appends what this encodes, `replay` and the
//! `rfq-journal` tool read what this decodes. Other modules that add `rfq::outbox::Record`
//! variants (TCA, score updates, reloads) add their arm to [`encode_engine_record`] and encode
//! in their own module; the first payload byte of kinds 3, 5, 6, 7 and 8 is a sub-kind
//! ([`SubKind`]) so they never collide.

use std::mem::{offset_of, size_of};

use super::format::RecordKind;
use crate::rfq::outbox::{Record, MAX_PANEL};
use crate::rfq::types::DealerId;
use crate::select::rows::{ScoreRow, ROW_BYTES};
use smallvec::SmallVec;

/// Bytes in an `input` record's fixed part.
pub const INPUT_HEADER_LEN: usize = 16;
/// Bytes in a `decision` payload's fixed part (the dealer lists and scores follow).
pub const DECISION_HEADER_LEN: usize = 40;
/// Bytes in an `unsent` payload's fixed part (the MsgType follows).
pub const UNSENT_HEADER_LEN: usize = 8;
/// Bytes in a run-start payload's fixed part (one [`RunFile`] entry per file follows).
pub const RUN_START_HEADER_LEN: usize = 16;
/// Bytes in one run-start file entry's fixed part (the path follows).
pub const RUN_FILE_HEADER_LEN: usize = 16;
/// Largest payload any record of this module needs besides inlined FIX frames and paths.
pub const MAX_DECISION_PAYLOAD: usize =
    DECISION_HEADER_LEN + 2 * MAX_PANEL * size_of::<u16>() + MAX_PANEL * size_of::<f32>();
/// `decision`: the rule index when the selector has no rules (static tiers).
pub const RULE_NONE: u16 = u16::MAX;
/// `input` ScoreRows: flags bit 2, more rows of the same event follow in the next record.
pub const INPUT_FLAG_MORE: u8 = 4;
/// `input` RulesText: flags bit 1, the reload was refused (the text is the reason).
pub const INPUT_FLAG_REFUSED: u8 = 2;
/// Bytes of a RulesText part's fixed part after the input header (hash, total, offset).
pub const RULES_PART_HEADER_LEN: usize = 16;
/// Most bytes of rules text in one `input` record (a longer text takes several).
pub const MAX_RULES_PART_BYTES: usize = 32 << 10;
/// Most score rows in one `input` record.
pub const MAX_ROWS_PER_INPUT: usize = crate::select::rows::MAX_ROWS_PER_UPDATE;
/// The largest `input` payload other than an inlined FIX message.
pub const MAX_FEEDBACK_INPUT_PAYLOAD: usize = INPUT_HEADER_LEN
    + if MAX_ROWS_PER_INPUT * ROW_BYTES > RULES_PART_HEADER_LEN + MAX_RULES_PART_BYTES {
        MAX_ROWS_PER_INPUT * ROW_BYTES
    } else {
        RULES_PART_HEADER_LEN + MAX_RULES_PART_BYTES
    };

const _: () = assert!(MAX_FEEDBACK_INPUT_PAYLOAD == 16 + 32 * 1024 + 16);
const _: () = assert!(MAX_ROWS_PER_INPUT * ROW_BYTES <= MAX_FEEDBACK_INPUT_PAYLOAD - 16);
const _: () = assert!(crate::select::rules::MAX_RULES_FILE_BYTES <= u32::MAX as u64);

/// The fixed part of an `input` payload (little-endian; a layout check, not a cast target).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputHeader {
    /// [`InputEvent`] code.
    pub event: u8,
    /// Bit 0: the FIX message follows inline (it is not the session's last `fix-in`).
    pub flags: u8,
    /// The session of a Fix/SessionUp/SessionDown event (0 otherwise).
    pub session: u16,
    /// Bytes inlined after the header (0 unless bit 0 of `flags`).
    pub inline_len: u32,
    /// Fix: the `fix-in` record holding the message (0 when inlined). Other events that
    /// carry data (reloads, score updates, operator actions) name the record holding it.
    pub ref_seq: u64,
}

const _: () = assert!(size_of::<InputHeader>() == INPUT_HEADER_LEN);
const _: () = assert!(offset_of!(InputHeader, flags) == 1);
const _: () = assert!(offset_of!(InputHeader, session) == 2);
const _: () = assert!(offset_of!(InputHeader, inline_len) == 4);
const _: () = assert!(offset_of!(InputHeader, ref_seq) == 8);

/// The fixed part of a `decision` payload.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionHeader {
    /// [`SubKind::Decision`].
    pub sub_kind: u8,
    /// `select::ProtocolKind::code`.
    pub protocol: u8,
    /// Bit 0: a trader override named the panel. Bit 1: scores follow.
    pub flags: u8,
    pub panel_len: u8,
    pub recommended_len: u8,
    pub reserved: u8,
    /// Index of the rule that decided in its file (the default rule: the number of rules);
    /// [`RULE_NONE`] without rules.
    pub rule: u16,
    /// The engine's RFQ sequence number.
    pub rfq: u64,
    /// The rules' version: load sequence (1 first, +1 per reload) and FNV-1a 64 of the file.
    pub rules_seq: u64,
    pub rules_hash: u64,
    /// Number of recommended dealers with a score (`recommended_len` or 0).
    pub scores_len: u8,
    pub reserved2: [u8; 7],
}

const _: () = assert!(size_of::<DecisionHeader>() == DECISION_HEADER_LEN);
const _: () = assert!(offset_of!(DecisionHeader, rule) == 6);
const _: () = assert!(offset_of!(DecisionHeader, rfq) == 8);
const _: () = assert!(offset_of!(DecisionHeader, rules_seq) == 16);
const _: () = assert!(offset_of!(DecisionHeader, rules_hash) == 24);
const _: () = assert!(offset_of!(DecisionHeader, scores_len) == 32);

/// The fixed part of an `unsent` payload.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsentHeader {
    pub session: u16,
    /// Why: 1 not logged on, 2 refused by the session (too large, store), 3 not a session.
    pub reason: u8,
    pub msg_type_len: u8,
    pub reserved: u32,
}

const _: () = assert!(size_of::<UnsentHeader>() == UNSENT_HEADER_LEN);

/// The fixed part of a run-start payload.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunStartHeader {
    /// [`SubKind::RunStart`].
    pub sub_kind: u8,
    pub reserved: [u8; 3],
    pub file_count: u32,
    /// FNV-1a 64 over every file entry (role, hash, length): one number naming the set.
    pub config_hash: u64,
}

const _: () = assert!(size_of::<RunStartHeader>() == RUN_START_HEADER_LEN);
const _: () = assert!(offset_of!(RunStartHeader, file_count) == 4);
const _: () = assert!(offset_of!(RunStartHeader, config_hash) == 8);

/// The fixed part of one file entry of a run-start payload.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFileHeader {
    /// [`FileRole`] code.
    pub role: u8,
    /// 1: the copy compiled into the binary (the path is then its description).
    pub embedded: u8,
    pub path_len: u16,
    /// Bytes in the file.
    pub len: u32,
    /// FNV-1a 64 of the file's bytes.
    pub hash: u64,
}

const _: () = assert!(size_of::<RunFileHeader>() == RUN_FILE_HEADER_LEN);
const _: () = assert!(offset_of!(RunFileHeader, len) == 4);
const _: () = assert!(offset_of!(RunFileHeader, hash) == 8);

/// The first byte of the payload of kinds 3 (`decision`), 5 (`reload`), 6 (`tca`),
/// 7 (`score`) and 8 (`admin`). Stable codes; never reused. Add new ones here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SubKind {
    /// Kind 3: the panel chosen for an RFQ leg, with the recommendation's rationale.
    Decision = 1,
    /// Kind 5: the configuration a run started with (the first record of every run).
    RunStart = 2,
}

/// What happened to the engine, as recorded. Stable codes; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InputEvent {
    Fix = 1,
    SessionUp = 2,
    SessionDown = 3,
    Tick = 4,
    /// Not an `Event`: `Engine::resume_numbering_after(ref_seq)`, called once after a restart
    /// before the first event (the highest RFQ number of earlier runs).
    ResumeNumbering = 5,
    /// `Event::ScoreUpdate`: the score rows the scoring thread wrote, inline (since version 3).
    ScoreUpdate = 6,
    /// The score rows the run started from (an `Event::ScoreUpdate` with rows only, given
    /// before any other event; since version 3).
    ScoreSnapshot = 7,
    /// `Event::RulesReload`: the rules text (or the refusal's reason), inline, in parts
    /// (since version 3).
    RulesReload = 8,
    /// `Event::MarketMid`: a mid from a market-data file replay (`mid_replay`). Inline, 8 to
    /// 48 bytes: the mid (f64, little-endian), then the instrument id (1 to 40 bytes, ISIN or
    /// CUSIP). Code 12 keeps clear of the codes the reload and score inputs take (6-11).
    MarketMid = 12,
    // Reserved for the events other issues add to `rfq::engine::Event`: give each a code
    // here, name the record carrying its data in `ref_seq`, and teach `replay` to rebuild it.
}

impl InputEvent {
    pub fn from_code(code: u8) -> Option<InputEvent> {
        match code {
            1 => Some(InputEvent::Fix),
            2 => Some(InputEvent::SessionUp),
            3 => Some(InputEvent::SessionDown),
            4 => Some(InputEvent::Tick),
            5 => Some(InputEvent::ResumeNumbering),
            6 => Some(InputEvent::ScoreUpdate),
            7 => Some(InputEvent::ScoreSnapshot),
            8 => Some(InputEvent::RulesReload),
            12 => Some(InputEvent::MarketMid),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            InputEvent::Fix => "fix",
            InputEvent::SessionUp => "session-up",
            InputEvent::SessionDown => "session-down",
            InputEvent::Tick => "tick",
            InputEvent::ResumeNumbering => "resume-numbering",
            InputEvent::ScoreUpdate => "score-update",
            InputEvent::ScoreSnapshot => "score-snapshot",
            InputEvent::RulesReload => "rules-reload",
            InputEvent::MarketMid => "market-mid",
        }
    }
}

/// Where a Fix input's message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixSource<'a> {
    /// In the `fix-in` record with this sequence number (the session's latest).
    Record(u64),
    /// Inlined: a message the session had queued (received out of order, delivered later).
    Inline(&'a [u8]),
}

/// One recorded engine input (its `now` is the record's timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineInput<'a> {
    Fix {
        session: u16,
        message: FixSource<'a>,
    },
    SessionUp {
        session: u16,
    },
    SessionDown {
        session: u16,
    },
    Tick,
    /// RFQs are numbered after `last_rfq_seq` (a restart).
    ResumeNumbering {
        last_rfq_seq: u64,
    },
    /// Score rows for the engine (`ROW_BYTES` each, `ScoreRow::decode`): an update from the
    /// scoring thread, or (`snapshot`) the rows the run started from. `more`: the same event
    /// goes on in the next input record.
    ScoreRows {
        snapshot: bool,
        more: bool,
        rows: &'a [u8],
    },
    /// A part of a rules reload: bytes `offset..offset + part.len()` of the rules text
    /// (installed: `seq` and `hash` name the version) or of the refusal's reason
    /// (`refused`); the event is complete when the part reaches `total_len`.
    RulesText {
        refused: bool,
        seq: u64,
        hash: u64,
        total_len: u32,
        offset: u32,
        part: &'a [u8],
    },
    /// A market mid for `instrument` (ISIN or CUSIP), from a market-data file replay.
    MarketMid {
        instrument: &'a [u8],
        mid: PriceBits,
    },
}

/// The rows of a `ScoreRows` input.
pub fn score_rows(rows: &[u8]) -> impl Iterator<Item = ScoreRow> + '_ {
    rows.chunks_exact(ROW_BYTES).map(|c| {
        let mut b = [0u8; ROW_BYTES];
        b.copy_from_slice(c);
        ScoreRow::decode(&b)
    })
}

/// A price carried bit for bit, so that inputs compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceBits(pub u64);

impl PriceBits {
    pub fn new(price: f64) -> PriceBits {
        PriceBits(price.to_bits())
    }

    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// Longest instrument id in a `MarketMid` input.
pub const MARKET_MID_MAX_ID: usize = 40;

/// Which file a run-start entry describes. Stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FileRole {
    RouterConfig = 1,
    Dealers = 2,
    Rules = 3,
    Instruments = 4,
    Scores = 5,
}

impl FileRole {
    pub const ALL: [FileRole; 5] = [
        FileRole::RouterConfig,
        FileRole::Dealers,
        FileRole::Rules,
        FileRole::Instruments,
        FileRole::Scores,
    ];

    pub fn from_code(code: u8) -> Option<FileRole> {
        FileRole::ALL.into_iter().find(|r| *r as u8 == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            FileRole::RouterConfig => "config",
            FileRole::Dealers => "dealers",
            FileRole::Rules => "rules",
            FileRole::Instruments => "instruments",
            FileRole::Scores => "scores",
        }
    }
}

/// One file a run started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFile<'a> {
    pub role: FileRole,
    pub embedded: bool,
    /// The path as given (or the description of the embedded copy).
    pub path: &'a str,
    pub len: u32,
    pub hash: u64,
}

impl<'a> RunFile<'a> {
    /// Describes `bytes`, loaded from `path`.
    pub fn of(role: FileRole, embedded: bool, path: &'a str, bytes: &[u8]) -> RunFile<'a> {
        RunFile {
            role,
            embedded,
            path,
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            hash: fnv1a64(bytes),
        }
    }
}

/// A decoded `decision` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub rfq: u64,
    pub protocol: u8,
    pub overridden: bool,
    pub rule: u16,
    pub rules_seq: u64,
    pub rules_hash: u64,
    pub panel: SmallVec<[DealerId; MAX_PANEL]>,
    pub recommended: SmallVec<[DealerId; MAX_PANEL]>,
    /// Composite score of each recommended dealer, in order (empty: the selector has none).
    pub scores: SmallVec<[f32; MAX_PANEL]>,
}

/// A decoded `unsent` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsent<'a> {
    pub session: u16,
    pub reason: u8,
    pub msg_type: &'a [u8],
}

/// Why a payload could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The buffer is smaller than the payload (`needed` bytes).
    BufferTooSmall { needed: usize },
    /// A list longer than the format allows.
    TooLong { what: &'static str, len: usize },
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "payload needs {needed} bytes, the buffer is smaller")
            }
            EncodeError::TooLong { what, len } => write!(f, "{what} of {len} is too long"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Why a payload did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    TooShort {
        len: usize,
        needed: usize,
    },
    UnknownSubKind {
        code: u8,
    },
    UnknownEvent {
        code: u8,
    },
    UnknownFileRole {
        code: u8,
    },
    /// A count or length inconsistent with the payload's size.
    BadLength {
        what: &'static str,
    },
    NotUtf8,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooShort { len, needed } => {
                write!(f, "payload of {len} bytes, needs at least {needed}")
            }
            DecodeError::UnknownSubKind { code } => write!(f, "unknown sub-kind {code}"),
            DecodeError::UnknownEvent { code } => write!(f, "unknown input event {code}"),
            DecodeError::UnknownFileRole { code } => write!(f, "unknown file role {code}"),
            DecodeError::BadLength { what } => write!(f, "{what} disagrees with the payload"),
            DecodeError::NotUtf8 => f.write_str("a path is not UTF-8"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// FNV-1a 64 (identity of configuration files; not a security hash). The same function as
/// the rules' version hash.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn need(buf: &[u8], needed: usize) -> Result<(), EncodeError> {
    if buf.len() < needed {
        Err(EncodeError::BufferTooSmall { needed })
    } else {
        Ok(())
    }
}

fn have(payload: &[u8], needed: usize) -> Result<(), DecodeError> {
    if payload.len() < needed {
        Err(DecodeError::TooShort {
            len: payload.len(),
            needed,
        })
    } else {
        Ok(())
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Encodes an `input` payload into `buf`; returns its length.
pub fn encode_input(input: &EngineInput<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let (event, session, flags, ref_seq, inline): (InputEvent, u16, u8, u64, &[u8]) = match *input {
        EngineInput::Fix {
            session,
            message: FixSource::Record(seq),
        } => (InputEvent::Fix, session, 0, seq, &[]),
        EngineInput::Fix {
            session,
            message: FixSource::Inline(frame),
        } => (InputEvent::Fix, session, 1, 0, frame),
        EngineInput::SessionUp { session } => (InputEvent::SessionUp, session, 0, 0, &[]),
        EngineInput::SessionDown { session } => (InputEvent::SessionDown, session, 0, 0, &[]),
        EngineInput::Tick => (InputEvent::Tick, 0, 0, 0, &[]),
        EngineInput::ResumeNumbering { last_rfq_seq } => {
            (InputEvent::ResumeNumbering, 0, 0, last_rfq_seq, &[])
        }
        EngineInput::ScoreRows {
            snapshot,
            more,
            rows,
        } => {
            if !rows.len().is_multiple_of(ROW_BYTES) || rows.len() > MAX_ROWS_PER_INPUT * ROW_BYTES
            {
                return Err(EncodeError::TooLong {
                    what: "score rows",
                    len: rows.len(),
                });
            }
            let event = if snapshot {
                InputEvent::ScoreSnapshot
            } else {
                InputEvent::ScoreUpdate
            };
            let flags = if more { INPUT_FLAG_MORE } else { 0 };
            (event, 0, flags, (rows.len() / ROW_BYTES) as u64, rows)
        }
        EngineInput::RulesText {
            refused,
            seq,
            hash,
            total_len,
            offset,
            part,
        } => {
            if part.len() > MAX_RULES_PART_BYTES
                || u64::from(offset) + part.len() as u64 > u64::from(total_len)
            {
                return Err(EncodeError::TooLong {
                    what: "rules part",
                    len: part.len(),
                });
            }
            let len = INPUT_HEADER_LEN + RULES_PART_HEADER_LEN + part.len();
            need(buf, len)?;
            buf[0] = InputEvent::RulesReload as u8;
            buf[1] = if refused { INPUT_FLAG_REFUSED } else { 0 };
            buf[2..4].fill(0);
            buf[4..8].copy_from_slice(&((RULES_PART_HEADER_LEN + part.len()) as u32).to_le_bytes());
            buf[8..16].copy_from_slice(&seq.to_le_bytes());
            buf[16..24].copy_from_slice(&hash.to_le_bytes());
            buf[24..28].copy_from_slice(&total_len.to_le_bytes());
            buf[28..32].copy_from_slice(&offset.to_le_bytes());
            buf[32..len].copy_from_slice(part);
            return Ok(len);
        }
        EngineInput::MarketMid { instrument, mid } => {
            if instrument.is_empty() || instrument.len() > MARKET_MID_MAX_ID {
                return Err(EncodeError::TooLong {
                    what: "market mid instrument id",
                    len: instrument.len(),
                });
            }
            let len = INPUT_HEADER_LEN + 8 + instrument.len();
            need(buf, len)?;
            buf[0] = InputEvent::MarketMid as u8;
            buf[1] = 1;
            buf[2..4].copy_from_slice(&0u16.to_le_bytes());
            buf[4..8].copy_from_slice(&((8 + instrument.len()) as u32).to_le_bytes());
            buf[8..16].copy_from_slice(&0u64.to_le_bytes());
            buf[16..24].copy_from_slice(&mid.0.to_le_bytes());
            buf[24..len].copy_from_slice(instrument);
            return Ok(len);
        }
    };
    let inline_len = u32::try_from(inline.len()).map_err(|_| EncodeError::TooLong {
        what: "inlined message",
        len: inline.len(),
    })?;
    let len = INPUT_HEADER_LEN + inline.len();
    need(buf, len)?;
    buf[0] = event as u8;
    buf[1] = flags;
    buf[2..4].copy_from_slice(&session.to_le_bytes());
    buf[4..8].copy_from_slice(&inline_len.to_le_bytes());
    buf[8..16].copy_from_slice(&ref_seq.to_le_bytes());
    buf[INPUT_HEADER_LEN..len].copy_from_slice(inline);
    Ok(len)
}

/// Decodes an `input` payload.
pub fn decode_input(payload: &[u8]) -> Result<EngineInput<'_>, DecodeError> {
    have(payload, INPUT_HEADER_LEN)?;
    let event =
        InputEvent::from_code(payload[0]).ok_or(DecodeError::UnknownEvent { code: payload[0] })?;
    let flags = payload[1];
    let session = u16_at(payload, 2);
    let inline_len = u32_at(payload, 4) as usize;
    let ref_seq = u64_at(payload, 8);
    if payload.len() - INPUT_HEADER_LEN != inline_len {
        return Err(DecodeError::BadLength {
            what: "inline length",
        });
    }
    Ok(match event {
        InputEvent::Fix if flags & 1 == 1 => EngineInput::Fix {
            session,
            message: FixSource::Inline(&payload[INPUT_HEADER_LEN..]),
        },
        InputEvent::Fix => EngineInput::Fix {
            session,
            message: FixSource::Record(ref_seq),
        },
        InputEvent::SessionUp => EngineInput::SessionUp { session },
        InputEvent::SessionDown => EngineInput::SessionDown { session },
        InputEvent::Tick => EngineInput::Tick,
        InputEvent::ResumeNumbering => EngineInput::ResumeNumbering {
            last_rfq_seq: ref_seq,
        },
        InputEvent::ScoreUpdate | InputEvent::ScoreSnapshot => {
            let rows = &payload[INPUT_HEADER_LEN..];
            if !rows.len().is_multiple_of(ROW_BYTES)
                || rows.len() > MAX_ROWS_PER_INPUT * ROW_BYTES
                || (rows.len() / ROW_BYTES) as u64 != ref_seq
            {
                return Err(DecodeError::BadLength { what: "score rows" });
            }
            EngineInput::ScoreRows {
                snapshot: event == InputEvent::ScoreSnapshot,
                more: flags & INPUT_FLAG_MORE != 0,
                rows,
            }
        }
        InputEvent::RulesReload => {
            have(payload, INPUT_HEADER_LEN + RULES_PART_HEADER_LEN)?;
            let total_len = u32_at(payload, 24);
            let offset = u32_at(payload, 28);
            let part = &payload[INPUT_HEADER_LEN + RULES_PART_HEADER_LEN..];
            if part.len() > MAX_RULES_PART_BYTES
                || u64::from(offset) + part.len() as u64 > u64::from(total_len)
                || u64::from(total_len) > crate::select::rules::MAX_RULES_FILE_BYTES
            {
                return Err(DecodeError::BadLength { what: "rules part" });
            }
            EngineInput::RulesText {
                refused: flags & INPUT_FLAG_REFUSED != 0,
                seq: ref_seq,
                hash: u64_at(payload, 16),
                total_len,
                offset,
                part,
            }
        }
        InputEvent::MarketMid => {
            let data = &payload[INPUT_HEADER_LEN..];
            if flags & 1 == 0 || data.len() <= 8 || data.len() > 8 + MARKET_MID_MAX_ID {
                return Err(DecodeError::BadLength { what: "market mid" });
            }
            EngineInput::MarketMid {
                instrument: &data[8..],
                mid: PriceBits(u64_at(data, 0)),
            }
        }
    })
}

/// Encodes a `ScoreRows` input from rows (at most [`MAX_ROWS_PER_INPUT`]) into `buf`.
pub fn encode_score_rows(
    snapshot: bool,
    more: bool,
    rows: &[ScoreRow],
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    if rows.len() > MAX_ROWS_PER_INPUT {
        return Err(EncodeError::TooLong {
            what: "score rows",
            len: rows.len(),
        });
    }
    let len = INPUT_HEADER_LEN + rows.len() * ROW_BYTES;
    need(buf, len)?;
    buf[0] = if snapshot {
        InputEvent::ScoreSnapshot
    } else {
        InputEvent::ScoreUpdate
    } as u8;
    buf[1] = if more { INPUT_FLAG_MORE } else { 0 };
    buf[2..4].fill(0);
    buf[4..8].copy_from_slice(&((rows.len() * ROW_BYTES) as u32).to_le_bytes());
    buf[8..16].copy_from_slice(&(rows.len() as u64).to_le_bytes());
    let mut row = [0u8; ROW_BYTES];
    for (i, r) in rows.iter().enumerate() {
        r.encode(&mut row);
        let at = INPUT_HEADER_LEN + i * ROW_BYTES;
        buf[at..at + ROW_BYTES].copy_from_slice(&row);
    }
    Ok(len)
}

/// Encodes one engine record into `buf`: its record kind and payload length. This is the
/// one match over `rfq::outbox::Record`: a module adding a variant adds its arm here, calling
/// its own encoder (with its own [`SubKind`]).
pub fn encode_engine_record(
    record: &Record,
    buf: &mut [u8],
) -> Result<(RecordKind, usize), EncodeError> {
    match record {
        Record::Decision { .. } => Ok((RecordKind::EngineDecision, encode_decision(record, buf)?)),
        // Issue 4's records: payloads and codec in `select::feedback` (sub-kinds 16-18).
        Record::RulesReload { .. } | Record::TcaExecution(_) | Record::ScoreUpdate(_) => {
            let kind = match record {
                Record::RulesReload { .. } => RecordKind::ConfigReload,
                Record::TcaExecution(_) => RecordKind::TcaResult,
                _ => RecordKind::ScoreUpdate,
            };
            let n = crate::select::feedback::encode_record(record, buf)
                .map_err(|e| EncodeError::BufferTooSmall { needed: e.needed })?;
            Ok((kind, n))
        }
    }
}

/// Encodes a `Record::Decision` (other variants: `BufferTooSmall { needed: 0 }` never
/// happens; they are routed by [`encode_engine_record`]).
fn encode_decision(record: &Record, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let Record::Decision {
        rfq,
        protocol,
        panel,
        recommended,
        overridden,
        rule,
        rules_version,
        scores,
    } = record
    else {
        return Err(EncodeError::BufferTooSmall { needed: 0 });
    };
    for (what, len) in [
        ("panel", panel.len()),
        ("recommended panel", recommended.len()),
        ("scores", scores.len()),
    ] {
        if len > MAX_PANEL {
            return Err(EncodeError::TooLong { what, len });
        }
    }
    let scores_len = if scores.len() == recommended.len() {
        scores.len()
    } else {
        0
    };
    let len = DECISION_HEADER_LEN + 2 * (panel.len() + recommended.len()) + 4 * scores_len;
    need(buf, len)?;
    let (rules_seq, rules_hash) = rules_version.unwrap_or((0, 0));
    buf[0] = SubKind::Decision as u8;
    buf[1] = *protocol;
    buf[2] = u8::from(*overridden) | if scores_len > 0 { 2 } else { 0 };
    buf[3] = panel.len() as u8;
    buf[4] = recommended.len() as u8;
    buf[5] = 0;
    buf[6..8].copy_from_slice(&rule.unwrap_or(RULE_NONE).to_le_bytes());
    buf[8..16].copy_from_slice(&rfq.to_le_bytes());
    buf[16..24].copy_from_slice(&rules_seq.to_le_bytes());
    buf[24..32].copy_from_slice(&rules_hash.to_le_bytes());
    buf[32] = scores_len as u8;
    buf[33..40].fill(0);
    let mut at = DECISION_HEADER_LEN;
    for d in panel.iter().chain(recommended.iter()) {
        buf[at..at + 2].copy_from_slice(&d.0.to_le_bytes());
        at += 2;
    }
    for s in scores.iter().take(scores_len) {
        buf[at..at + 4].copy_from_slice(&s.to_le_bytes());
        at += 4;
    }
    debug_assert_eq!(at, len);
    Ok(len)
}

/// Decodes a `decision` payload.
pub fn decode_decision(payload: &[u8]) -> Result<Decision, DecodeError> {
    have(payload, DECISION_HEADER_LEN)?;
    if payload[0] != SubKind::Decision as u8 {
        return Err(DecodeError::UnknownSubKind { code: payload[0] });
    }
    let panel_len = usize::from(payload[3]);
    let recommended_len = usize::from(payload[4]);
    let scores_len = usize::from(payload[32]);
    if panel_len > MAX_PANEL
        || recommended_len > MAX_PANEL
        || (scores_len != 0 && scores_len != recommended_len)
        || payload.len() != DECISION_HEADER_LEN + 2 * (panel_len + recommended_len) + 4 * scores_len
    {
        return Err(DecodeError::BadLength {
            what: "decision list lengths",
        });
    }
    let mut at = DECISION_HEADER_LEN;
    let mut ids = |n: usize| {
        let mut v = SmallVec::new();
        for _ in 0..n {
            v.push(DealerId(u16_at(payload, at)));
            at += 2;
        }
        v
    };
    let panel = ids(panel_len);
    let recommended = ids(recommended_len);
    let mut scores = SmallVec::new();
    for _ in 0..scores_len {
        scores.push(f32::from_le_bytes([
            payload[at],
            payload[at + 1],
            payload[at + 2],
            payload[at + 3],
        ]));
        at += 4;
    }
    Ok(Decision {
        rfq: u64_at(payload, 8),
        protocol: payload[1],
        overridden: payload[2] & 1 == 1,
        rule: u16_at(payload, 6),
        rules_seq: u64_at(payload, 16),
        rules_hash: u64_at(payload, 24),
        panel,
        recommended,
        scores,
    })
}

/// Encodes an `unsent` payload.
pub fn encode_unsent(unsent: &Unsent<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let n = unsent.msg_type.len();
    if n > usize::from(u8::MAX) {
        return Err(EncodeError::TooLong {
            what: "MsgType",
            len: n,
        });
    }
    let len = UNSENT_HEADER_LEN + n;
    need(buf, len)?;
    buf[0..2].copy_from_slice(&unsent.session.to_le_bytes());
    buf[2] = unsent.reason;
    buf[3] = n as u8;
    buf[4..8].fill(0);
    buf[UNSENT_HEADER_LEN..len].copy_from_slice(unsent.msg_type);
    Ok(len)
}

/// Decodes an `unsent` payload.
pub fn decode_unsent(payload: &[u8]) -> Result<Unsent<'_>, DecodeError> {
    have(payload, UNSENT_HEADER_LEN)?;
    let n = usize::from(payload[3]);
    if payload.len() != UNSENT_HEADER_LEN + n {
        return Err(DecodeError::BadLength {
            what: "MsgType length",
        });
    }
    Ok(Unsent {
        session: u16_at(payload, 0),
        reason: payload[2],
        msg_type: &payload[UNSENT_HEADER_LEN..],
    })
}

/// FNV-1a 64 over the entries' roles, hashes and lengths: the configuration's one number.
pub fn config_hash(files: &[RunFile<'_>]) -> u64 {
    let mut bytes = [0u8; 13];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        bytes[0] = f.role as u8;
        bytes[1..9].copy_from_slice(&f.hash.to_le_bytes());
        bytes[9..13].copy_from_slice(&f.len.to_le_bytes());
        for &b in &bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Encodes a run-start payload (start-up only: it may be long, but still goes into `buf`).
pub fn encode_run_start(files: &[RunFile<'_>], buf: &mut [u8]) -> Result<usize, EncodeError> {
    let count = u32::try_from(files.len()).map_err(|_| EncodeError::TooLong {
        what: "file list",
        len: files.len(),
    })?;
    let mut len = RUN_START_HEADER_LEN;
    for f in files {
        if f.path.len() > usize::from(u16::MAX) {
            return Err(EncodeError::TooLong {
                what: "path",
                len: f.path.len(),
            });
        }
        len += RUN_FILE_HEADER_LEN + f.path.len();
    }
    need(buf, len)?;
    buf[0] = SubKind::RunStart as u8;
    buf[1..4].fill(0);
    buf[4..8].copy_from_slice(&count.to_le_bytes());
    buf[8..16].copy_from_slice(&config_hash(files).to_le_bytes());
    let mut at = RUN_START_HEADER_LEN;
    for f in files {
        buf[at] = f.role as u8;
        buf[at + 1] = u8::from(f.embedded);
        buf[at + 2..at + 4].copy_from_slice(&(f.path.len() as u16).to_le_bytes());
        buf[at + 4..at + 8].copy_from_slice(&f.len.to_le_bytes());
        buf[at + 8..at + 16].copy_from_slice(&f.hash.to_le_bytes());
        at += RUN_FILE_HEADER_LEN;
        buf[at..at + f.path.len()].copy_from_slice(f.path.as_bytes());
        at += f.path.len();
    }
    Ok(len)
}

/// A decoded run-start payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart<'a> {
    pub config_hash: u64,
    pub files: Vec<RunFile<'a>>,
}

/// Decodes a run-start payload (tools only: it allocates the file list).
pub fn decode_run_start(payload: &[u8]) -> Result<RunStart<'_>, DecodeError> {
    have(payload, RUN_START_HEADER_LEN)?;
    if payload[0] != SubKind::RunStart as u8 {
        return Err(DecodeError::UnknownSubKind { code: payload[0] });
    }
    let count = u32_at(payload, 4) as usize;
    let config_hash = u64_at(payload, 8);
    // Each entry takes at least its header: a count past that is a lie, not an allocation.
    if count > (payload.len() - RUN_START_HEADER_LEN) / RUN_FILE_HEADER_LEN {
        return Err(DecodeError::BadLength { what: "file count" });
    }
    let mut files = Vec::with_capacity(count);
    let mut at = RUN_START_HEADER_LEN;
    for _ in 0..count {
        have(payload, at + RUN_FILE_HEADER_LEN)?;
        let role = FileRole::from_code(payload[at])
            .ok_or(DecodeError::UnknownFileRole { code: payload[at] })?;
        let path_len = usize::from(u16_at(payload, at + 2));
        let len = u32_at(payload, at + 4);
        let hash = u64_at(payload, at + 8);
        let embedded = payload[at + 1] == 1;
        at += RUN_FILE_HEADER_LEN;
        have(payload, at + path_len)?;
        let path =
            std::str::from_utf8(&payload[at..at + path_len]).map_err(|_| DecodeError::NotUtf8)?;
        at += path_len;
        files.push(RunFile {
            role,
            embedded,
            path,
            len,
            hash,
        });
    }
    if at != payload.len() {
        return Err(DecodeError::BadLength {
            what: "run-start entries",
        });
    }
    Ok(RunStart { config_hash, files })
}

/// One line describing a record of this module (`rfq-journal cat`), or `None` for kinds and
/// sub-kinds it does not own. Tools only: it allocates.
pub fn describe(kind: RecordKind, payload: &[u8]) -> Option<String> {
    let text = match kind {
        RecordKind::EngineInput => match decode_input(payload) {
            Ok(EngineInput::Fix {
                session,
                message: FixSource::Record(seq),
            }) => format!("fix session={session} message=#{seq}"),
            Ok(EngineInput::Fix {
                session,
                message: FixSource::Inline(f),
            }) => format!(
                "fix session={session} message={}",
                String::from_utf8_lossy(f).replace('\x01', "|")
            ),
            Ok(EngineInput::SessionUp { session }) => format!("session-up session={session}"),
            Ok(EngineInput::SessionDown { session }) => {
                format!("session-down session={session}")
            }
            Ok(EngineInput::Tick) => "tick".to_string(),
            Ok(EngineInput::ResumeNumbering { last_rfq_seq }) => {
                format!("resume-numbering after={last_rfq_seq}")
            }
            Ok(EngineInput::ScoreRows {
                snapshot,
                more,
                rows,
            }) => {
                let list: Vec<String> = score_rows(rows)
                    .map(|r| {
                        let who = r
                            .dealer_id()
                            .map_or("pooled".to_string(), |d| d.0.to_string());
                        format!(
                            "{who}@{:016x}:sent={} quotes={} wins={} at={}",
                            r.key.0,
                            r.stats.rfqs_sent,
                            r.stats.quotes,
                            r.stats.wins,
                            r.stats.last_update_ns
                        )
                    })
                    .collect();
                format!(
                    "{} rows={}{} [{}]",
                    if snapshot {
                        "score-snapshot"
                    } else {
                        "score-update"
                    },
                    rows.len() / ROW_BYTES,
                    if more { " more=yes" } else { "" },
                    list.join(" ")
                )
            }
            Ok(EngineInput::RulesText {
                refused,
                seq,
                hash,
                total_len,
                offset,
                part,
            }) => {
                let end = u64::from(offset) + part.len() as u64;
                if refused {
                    format!(
                        "rules-reload refused reason={}",
                        String::from_utf8_lossy(part)
                    )
                } else {
                    format!(
                        "rules-reload installed rules={seq}-{hash:016x} text bytes {offset}..{end} \
                         of {total_len}"
                    )
                }
            }
            Ok(EngineInput::MarketMid { instrument, mid }) => format!(
                "market-mid instrument={} mid={}",
                String::from_utf8_lossy(instrument),
                mid.get()
            ),
            Err(e) => format!("bad input payload: {e}"),
        },
        RecordKind::EngineDecision if sub_kind(payload) == Some(SubKind::Decision as u8) => {
            match decode_decision(payload) {
                Ok(d) => {
                    let ids = |v: &[DealerId]| {
                        v.iter()
                            .map(|d| d.0.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let rule = if d.rule == RULE_NONE {
                        "none".to_string()
                    } else {
                        d.rule.to_string()
                    };
                    let scores: Vec<String> = d.scores.iter().map(|s| format!("{s:.3}")).collect();
                    format!(
                        "rfq={} protocol={} panel=[{}] recommended=[{}] overridden={} rule={rule} \
                         rules={}-{:016x} scores=[{}]",
                        d.rfq,
                        d.protocol,
                        ids(&d.panel),
                        ids(&d.recommended),
                        d.overridden,
                        d.rules_seq,
                        d.rules_hash,
                        scores.join(",")
                    )
                }
                Err(e) => format!("bad decision payload: {e}"),
            }
        }
        RecordKind::Unsent => match decode_unsent(payload) {
            Ok(u) => format!(
                "session={} 35={} reason={}",
                u.session,
                String::from_utf8_lossy(u.msg_type),
                u.reason
            ),
            Err(e) => format!("bad unsent payload: {e}"),
        },
        RecordKind::ConfigReload if sub_kind(payload) == Some(SubKind::RunStart as u8) => {
            match decode_run_start(payload) {
                Ok(r) => {
                    let files: Vec<String> = r
                        .files
                        .iter()
                        .map(|f| {
                            format!(
                                "{}={} ({} bytes, {:016x})",
                                f.role.name(),
                                f.path,
                                f.len,
                                f.hash
                            )
                        })
                        .collect();
                    format!(
                        "run start config={:016x} {}",
                        r.config_hash,
                        files.join(" ")
                    )
                }
                Err(e) => format!("bad run-start payload: {e}"),
            }
        }
        _ => return None,
    };
    Some(text)
}

/// The sub-kind of an engine record's payload (kinds 3, 5, 6, 7, 8), if it has a byte.
pub fn sub_kind(payload: &[u8]) -> Option<u8> {
    payload.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u16]) -> SmallVec<[DealerId; MAX_PANEL]> {
        v.iter().map(|&d| DealerId(d)).collect()
    }

    #[test]
    fn inputs_round_trip() {
        let mut buf = [0u8; 64];
        let cases = [
            EngineInput::Fix {
                session: 3,
                message: FixSource::Record(77),
            },
            EngineInput::Fix {
                session: 9,
                message: FixSource::Inline(b"8=FIX.4.4\x01"),
            },
            EngineInput::SessionUp { session: 2 },
            EngineInput::SessionDown { session: 65535 },
            EngineInput::Tick,
            EngineInput::ResumeNumbering { last_rfq_seq: 41 },
            EngineInput::MarketMid {
                instrument: b"US99A1NW1035",
                mid: PriceBits::new(100.125),
            },
        ];
        for c in cases {
            let n = encode_input(&c, &mut buf).unwrap();
            assert_eq!(decode_input(&buf[..n]), Ok(c));
            assert!(decode_input(&buf[..n - 1]).is_err());
        }
        assert_eq!(
            encode_input(&EngineInput::Tick, &mut buf[..15]),
            Err(EncodeError::BufferTooSmall { needed: 16 })
        );
        let n = encode_input(&EngineInput::Tick, &mut buf).unwrap();
        buf[0] = 99;
        assert_eq!(
            decode_input(&buf[..n]),
            Err(DecodeError::UnknownEvent { code: 99 })
        );
    }

    #[test]
    fn score_rows_and_rules_text_round_trip() {
        use crate::select::model::RowStats;
        use crate::select::rows::POOLED;
        use crate::select::segment::SegmentKey;
        let rows = [
            ScoreRow {
                dealer: 2,
                key: SegmentKey(0x1234),
                stats: RowStats {
                    rfqs_sent: 3.0,
                    last_update_ns: 9,
                    ..RowStats::default()
                },
            },
            ScoreRow {
                dealer: POOLED,
                key: SegmentKey(0x1234),
                stats: RowStats::default(),
            },
        ];
        let mut buf = vec![0u8; MAX_FEEDBACK_INPUT_PAYLOAD];
        let n = encode_score_rows(false, true, &rows, &mut buf).unwrap();
        assert_eq!(n, INPUT_HEADER_LEN + 2 * ROW_BYTES);
        let EngineInput::ScoreRows {
            snapshot,
            more,
            rows: bytes,
        } = decode_input(&buf[..n]).unwrap()
        else {
            panic!("not score rows");
        };
        assert!(!snapshot && more);
        assert_eq!(score_rows(bytes).collect::<Vec<_>>(), rows);
        // Re-encoding the decoded form gives the same bytes.
        let again = decode_input(&buf[..n]).unwrap();
        let mut buf2 = vec![0u8; MAX_FEEDBACK_INPUT_PAYLOAD];
        let m = encode_input(&again, &mut buf2).unwrap();
        assert_eq!(buf[..n], buf2[..m]);
        for cut in 0..n {
            assert!(decode_input(&buf[..cut]).is_err(), "cut at {cut}");
        }
        let text = describe(RecordKind::EngineInput, &buf[..n]).unwrap();
        assert!(
            text.starts_with("score-update rows=2 more=yes [2@0000000000001234:sent=3"),
            "{text}"
        );
        assert!(text.contains("pooled@"), "{text}");
        let too_many = vec![rows[0]; MAX_ROWS_PER_INPUT + 1];
        assert!(encode_score_rows(true, false, &too_many, &mut buf).is_err());

        let part = EngineInput::RulesText {
            refused: false,
            seq: 2,
            hash: 0xabc,
            total_len: 10,
            offset: 4,
            part: b"abcdef",
        };
        let n = encode_input(&part, &mut buf).unwrap();
        assert_eq!(n, INPUT_HEADER_LEN + RULES_PART_HEADER_LEN + 6);
        assert_eq!(decode_input(&buf[..n]), Ok(part));
        for cut in 0..n {
            assert!(decode_input(&buf[..cut]).is_err(), "cut at {cut}");
        }
        // A part past the end of its text is refused both ways.
        let past = EngineInput::RulesText {
            refused: false,
            seq: 2,
            hash: 0xabc,
            total_len: 9,
            offset: 4,
            part: b"abcdef",
        };
        assert!(encode_input(&past, &mut buf).is_err());
        buf[24..28].copy_from_slice(&9u32.to_le_bytes());
        assert!(decode_input(&buf[..n]).is_err());
    }

    #[test]
    fn market_mid_inputs_are_bounded_and_described() {
        let mut buf = [0u8; 128];
        let long = [b'X'; MARKET_MID_MAX_ID + 1];
        for bad in [&long[..], b""] {
            let input = EngineInput::MarketMid {
                instrument: bad,
                mid: PriceBits::new(1.0),
            };
            assert!(matches!(
                encode_input(&input, &mut buf),
                Err(EncodeError::TooLong { .. })
            ));
        }
        let input = EngineInput::MarketMid {
            instrument: &long[..MARKET_MID_MAX_ID],
            mid: PriceBits::new(99.5),
        };
        let n = encode_input(&input, &mut buf).unwrap();
        assert_eq!(n, INPUT_HEADER_LEN + 8 + MARKET_MID_MAX_ID);
        assert_eq!(decode_input(&buf[..n]), Ok(input));
        let text = describe(RecordKind::EngineInput, &buf[..n]).unwrap();
        assert!(text.starts_with("market-mid instrument=XXXX"), "{text}");
        assert!(text.ends_with("mid=99.5"), "{text}");
        // Without the inline flag the payload is refused, never misread.
        buf[1] = 0;
        assert!(decode_input(&buf[..n]).is_err());
    }

    #[test]
    fn decisions_round_trip_with_rationale() {
        let rec = Record::Decision {
            rfq: 42,
            protocol: 2,
            panel: ids(&[5, 1]),
            recommended: ids(&[1, 2, 3]),
            overridden: true,
            rule: Some(4),
            rules_version: Some((2, 0xfeed)),
            scores: [0.75f32, 0.5, 0.25].into_iter().collect(),
        };
        let mut buf = [0u8; MAX_DECISION_PAYLOAD];
        let (kind, n) = encode_engine_record(&rec, &mut buf).unwrap();
        assert_eq!(kind, RecordKind::EngineDecision);
        assert_eq!(n, DECISION_HEADER_LEN + 2 * 5 + 4 * 3);
        let d = decode_decision(&buf[..n]).unwrap();
        assert_eq!(d.rfq, 42);
        assert_eq!(d.protocol, 2);
        assert!(d.overridden);
        assert_eq!(d.rule, 4);
        assert_eq!((d.rules_seq, d.rules_hash), (2, 0xfeed));
        assert_eq!(d.panel, ids(&[5, 1]));
        assert_eq!(d.recommended, ids(&[1, 2, 3]));
        assert_eq!(d.scores.as_slice(), &[0.75, 0.5, 0.25]);
        for cut in 0..n {
            assert!(decode_decision(&buf[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            encode_engine_record(&rec, &mut buf[..n - 1]),
            Err(EncodeError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn decision_without_rules_says_so() {
        let rec = Record::Decision {
            rfq: 1,
            protocol: 0,
            panel: ids(&[0]),
            recommended: ids(&[0]),
            overridden: false,
            rule: None,
            rules_version: None,
            scores: SmallVec::new(),
        };
        let mut buf = [0u8; MAX_DECISION_PAYLOAD];
        let (_, n) = encode_engine_record(&rec, &mut buf).unwrap();
        let d = decode_decision(&buf[..n]).unwrap();
        assert_eq!(d.rule, RULE_NONE);
        assert!(d.scores.is_empty());
        assert!(!d.overridden);
    }

    #[test]
    fn unsent_and_run_start_round_trip() {
        let mut buf = [0u8; 256];
        let u = Unsent {
            session: 4,
            reason: 1,
            msg_type: b"AJ",
        };
        let n = encode_unsent(&u, &mut buf).unwrap();
        assert_eq!(decode_unsent(&buf[..n]), Ok(u));

        let files = [
            RunFile::of(FileRole::RouterConfig, false, "config/router.toml", b"abc"),
            RunFile::of(FileRole::Rules, true, "<embedded>", b""),
        ];
        let n = encode_run_start(&files, &mut buf).unwrap();
        let r = decode_run_start(&buf[..n]).unwrap();
        assert_eq!(r.files, files);
        assert_eq!(r.config_hash, config_hash(&files));
        for cut in 0..n {
            assert!(decode_run_start(&buf[..cut]).is_err(), "cut at {cut}");
        }
        // A lying count is refused without a huge allocation.
        buf[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_run_start(&buf[..n]),
            Err(DecodeError::BadLength { what: "file count" })
        );
    }

    #[test]
    fn records_describe_themselves_for_cat() {
        let mut buf = [0u8; 256];
        let n = encode_input(
            &EngineInput::Fix {
                session: 2,
                message: FixSource::Record(9),
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            describe(RecordKind::EngineInput, &buf[..n]).as_deref(),
            Some("fix session=2 message=#9")
        );
        let rec = Record::Decision {
            rfq: 7,
            protocol: 0,
            panel: ids(&[1, 2]),
            recommended: ids(&[1, 2]),
            overridden: false,
            rule: Some(3),
            rules_version: Some((1, 0xab)),
            scores: [0.5f32, 0.25].into_iter().collect(),
        };
        let (kind, n) = encode_engine_record(&rec, &mut buf).unwrap();
        let text = describe(kind, &buf[..n]).unwrap();
        assert!(
            text.starts_with("rfq=7 protocol=0 panel=[1,2]") && text.contains("rule=3"),
            "{text}"
        );
        assert_eq!(describe(RecordKind::Admin, b"x"), None);
        assert!(describe(RecordKind::Unsent, b"x")
            .unwrap()
            .starts_with("bad unsent payload"));
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
