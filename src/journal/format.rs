//! The journal's bytes on disk: segment headers, record headers, record kinds, the FIX payload
//! encoding and the CRC32C rules (specified byte by byte in `FORMAT.md` beside this file).
//!
//! This module owns the layout and nothing else. It is a set of pure functions over byte
//! slices: it does no I/O, never reads the clock, never allocates and never panics on any
//! input (every length read from disk is checked before it is used). The writer, the reader,
//! recovery and the `rfq-journal` tool all go through it, so there is one definition of what a
//! valid record is.

use std::mem::{offset_of, size_of};
use std::sync::atomic::{compiler_fence, Ordering};

use crate::time::Nanos;

/// First eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RFQJRNL\0";
/// The format this code writes. Bumped on any incompatible change (version 2 added the
/// `input` and `unsent` record kinds; version 3 the `input` events score-update,
/// score-snapshot and rules-reload, which carry their data inline).
pub const FORMAT_VERSION: u16 = 3;
/// The oldest format this code reads (a version-1 segment holds a subset of version 2's
/// record kinds).
pub const MIN_READ_FORMAT_VERSION: u16 = 1;
/// Bytes in a segment header; the first record starts here.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Bytes in a record header; the payload starts here, relative to the record.
pub const RECORD_HEADER_LEN: usize = 32;
/// Every record starts at a multiple of this, relative to the start of the file.
pub const RECORD_ALIGN: usize = 8;
/// Segment sizes are a multiple of this (the page size on the platforms we run on).
pub const SEGMENT_SIZE_GRANULE: u64 = 4096;
/// Smallest segment we accept.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4 * SEGMENT_SIZE_GRANULE;
/// Largest segment we accept (record offsets and lengths stay well inside `u32`).
pub const MAX_SEGMENT_SIZE_BYTES: u64 = 1 << 31;
/// Segment files are named `seg-<number, 12 digits>.rfqj`.
pub const SEGMENT_FILE_PREFIX: &str = "seg-";
pub const SEGMENT_FILE_EXTENSION: &str = "rfqj";
/// Bytes in the prefix of a FIX record's payload (session id, direction, reserved).
pub const FIX_PAYLOAD_PREFIX_LEN: usize = 4;

/// The fixed part of a segment file, as laid out on disk (little-endian).
///
/// This struct is never read from or written to disk by transmuting: it exists so the
/// compiler checks that the documented offsets and total size add up. Encoding and decoding
/// go field by field through `to_le_bytes`/`from_le_bytes` at these offsets.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub magic: [u8; 8],
    pub format_version: u16,
    /// Always `SEGMENT_HEADER_LEN`; lets a reader skip a longer header of a later version.
    pub header_len: u16,
    /// Zero in version 1.
    pub flags: u32,
    pub segment_number: u64,
    /// Sequence number of the first record in this segment (the next one to be written when
    /// the segment is empty).
    pub first_seq: u64,
    /// When the writer created the segment, ns since the Unix epoch (informational).
    pub created_ns: u64,
    /// The pre-allocated size of the file.
    pub segment_size_bytes: u64,
    pub reserved: [u8; 12],
    /// CRC32C of bytes 0..60.
    pub header_crc: u32,
}

const _: () = assert!(size_of::<SegmentHeader>() == SEGMENT_HEADER_LEN);
const _: () = assert!(offset_of!(SegmentHeader, format_version) == 8);
const _: () = assert!(offset_of!(SegmentHeader, header_len) == 10);
const _: () = assert!(offset_of!(SegmentHeader, flags) == 12);
const _: () = assert!(offset_of!(SegmentHeader, segment_number) == 16);
const _: () = assert!(offset_of!(SegmentHeader, first_seq) == 24);
const _: () = assert!(offset_of!(SegmentHeader, created_ns) == 32);
const _: () = assert!(offset_of!(SegmentHeader, segment_size_bytes) == 40);
const _: () = assert!(offset_of!(SegmentHeader, reserved) == 48);
const _: () = assert!(offset_of!(SegmentHeader, header_crc) == 60);

/// The fixed part of a record, as laid out on disk (little-endian). Same remark as for
/// [`SegmentHeader`]: a layout check, not a cast target.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header plus payload, unpadded; never zero for a record, so a zero word marks the end.
    pub len: u32,
    /// CRC32C of bytes 0..4 (`len`) followed by bytes 8..len (everything but this field).
    pub crc: u32,
    pub seq: u64,
    pub timestamp_ns: u64,
    pub kind: u16,
    /// Zero in version 1; readers ignore it.
    pub flags: u16,
    pub reserved: u32,
}

const _: () = assert!(size_of::<RecordHeader>() == RECORD_HEADER_LEN);
const _: () = assert!(offset_of!(RecordHeader, crc) == 4);
const _: () = assert!(offset_of!(RecordHeader, seq) == 8);
const _: () = assert!(offset_of!(RecordHeader, timestamp_ns) == 16);
const _: () = assert!(offset_of!(RecordHeader, kind) == 24);
const _: () = assert!(offset_of!(RecordHeader, flags) == 26);
const _: () = assert!(offset_of!(RecordHeader, reserved) == 28);
const _: () = assert!(RECORD_HEADER_LEN.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(SEGMENT_HEADER_LEN.is_multiple_of(RECORD_ALIGN));

/// The prefix of a FIX record's payload; the raw frame follows it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixPayloadPrefix {
    pub session_id: u16,
    /// 1 inbound, 2 outbound; must agree with the record kind.
    pub direction: u8,
    /// Bit 0 ([`FIX_FLAG_NOT_ENGINE`]): an application message the router sent on its own,
    /// not an engine output (replay skips it). Other bits 0. Version 1 wrote 0 here.
    pub flags: u8,
}

const _: () = assert!(size_of::<FixPayloadPrefix>() == FIX_PAYLOAD_PREFIX_LEN);
const _: () = assert!(offset_of!(FixPayloadPrefix, direction) == 2);
const _: () = assert!(offset_of!(FixPayloadPrefix, flags) == 3);

/// FIX payload flag: the router sent this application message itself (a restart notice,
/// say), so it is not one of the engine's outputs.
pub const FIX_FLAG_NOT_ENGINE: u8 = 1;

/// What a record is. The numeric codes are part of the format and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum RecordKind {
    /// A FIX message as received (payload: [`FixPayloadPrefix`] + raw frame).
    FixInbound = 1,
    /// A FIX message as sent (payload: [`FixPayloadPrefix`] + raw frame).
    FixOutbound = 2,
    /// An engine decision (opaque bytes for now).
    EngineDecision = 3,
    /// A timer that fired (opaque bytes for now).
    TimerFired = 4,
    /// A configuration or rules reload (opaque bytes for now).
    ConfigReload = 5,
    /// A TCA result (opaque bytes for now).
    TcaResult = 6,
    /// A dealer score update (opaque bytes for now).
    ScoreUpdate = 7,
    /// An operator action (opaque bytes for now).
    Admin = 8,
    /// An input the engine was given (`Engine::on` with its `now`): what `rfq-journal
    /// replay` feeds a fresh engine (payload: `records::InputHeader`, then kind-specific
    /// bytes; see `FORMAT.md`). Since version 2.
    EngineInput = 9,
    /// An application message the engine asked for that its session refused to send (not on
    /// the wire, so replay does not expect it there). Since version 2.
    Unsent = 10,
}

impl RecordKind {
    pub const ALL: [RecordKind; 10] = [
        RecordKind::FixInbound,
        RecordKind::FixOutbound,
        RecordKind::EngineDecision,
        RecordKind::TimerFired,
        RecordKind::ConfigReload,
        RecordKind::TcaResult,
        RecordKind::ScoreUpdate,
        RecordKind::Admin,
        RecordKind::EngineInput,
        RecordKind::Unsent,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The short name used by `rfq-journal` (`--kind`, output).
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::FixInbound => "fix-in",
            RecordKind::FixOutbound => "fix-out",
            RecordKind::EngineDecision => "decision",
            RecordKind::TimerFired => "timer",
            RecordKind::ConfigReload => "reload",
            RecordKind::TcaResult => "tca",
            RecordKind::ScoreUpdate => "score",
            RecordKind::Admin => "admin",
            RecordKind::EngineInput => "input",
            RecordKind::Unsent => "unsent",
        }
    }

    pub fn from_name(name: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The FIX direction this kind carries, if it is a FIX kind.
    pub fn fix_direction(self) -> Option<FixDirection> {
        match self {
            RecordKind::FixInbound => Some(FixDirection::Inbound),
            RecordKind::FixOutbound => Some(FixDirection::Outbound),
            _ => None,
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way a FIX message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixDirection {
    Inbound,
    Outbound,
}

impl FixDirection {
    pub fn code(self) -> u8 {
        match self {
            FixDirection::Inbound => 1,
            FixDirection::Outbound => 2,
        }
    }

    pub fn record_kind(self) -> RecordKind {
        match self {
            FixDirection::Inbound => RecordKind::FixInbound,
            FixDirection::Outbound => RecordKind::FixOutbound,
        }
    }
}

/// Why a segment header was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The file is shorter than a header.
    TooShort {
        len: usize,
    },
    /// Not a journal segment at all.
    BadMagic,
    UnsupportedVersion {
        version: u16,
    },
    BadHeaderLength {
        header_len: u16,
    },
    ChecksumMismatch {
        stored: u32,
        computed: u32,
    },
    /// The declared size is not a valid segment size.
    BadSegmentSize {
        segment_size_bytes: u64,
    },
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderProblem::TooShort { len } => {
                write!(f, "file of {len} bytes is shorter than a segment header")
            }
            HeaderProblem::BadMagic => f.write_str("bad magic: not an rfq-router journal segment"),
            HeaderProblem::UnsupportedVersion { version } => {
                write!(
                    f,
                    "format version {version} is not supported (this build reads \
                     {MIN_READ_FORMAT_VERSION} to {FORMAT_VERSION})"
                )
            }
            HeaderProblem::BadHeaderLength { header_len } => {
                write!(
                    f,
                    "header length {header_len} (expected {SEGMENT_HEADER_LEN})"
                )
            }
            HeaderProblem::ChecksumMismatch { stored, computed } => write!(
                f,
                "header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            HeaderProblem::BadSegmentSize { segment_size_bytes } => {
                write!(f, "declared segment size {segment_size_bytes} is invalid")
            }
        }
    }
}

/// Whether `size` is an acceptable segment size.
pub fn valid_segment_size(size: u64) -> bool {
    (MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES).contains(&size)
        && size.is_multiple_of(SEGMENT_SIZE_GRANULE)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl SegmentHeader {
    /// A version-1 header with its CRC filled in.
    pub fn new(
        segment_number: u64,
        first_seq: u64,
        created: Nanos,
        segment_size_bytes: u64,
    ) -> SegmentHeader {
        let mut h = SegmentHeader {
            magic: SEGMENT_MAGIC,
            format_version: FORMAT_VERSION,
            header_len: SEGMENT_HEADER_LEN as u16,
            flags: 0,
            segment_number,
            first_seq,
            created_ns: created.0,
            segment_size_bytes,
            reserved: [0; 12],
            header_crc: 0,
        };
        let bytes = h.encode();
        h.header_crc = crc32c::crc32c(&bytes[..offset_of!(SegmentHeader, header_crc)]);
        h
    }

    /// The 64 on-disk bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&self.magic);
        b[8..10].copy_from_slice(&self.format_version.to_le_bytes());
        b[10..12].copy_from_slice(&self.header_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.segment_number.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        b[32..40].copy_from_slice(&self.created_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.segment_size_bytes.to_le_bytes());
        b[48..60].copy_from_slice(&self.reserved);
        b[60..64].copy_from_slice(&self.header_crc.to_le_bytes());
        b
    }

    /// Reads and checks the header at the start of `file`.
    pub fn decode(file: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
        if file.len() < SEGMENT_MAGIC.len() || file[..8] != SEGMENT_MAGIC {
            // A short file that is not even a magic prefix is foreign, not a short segment.
            if file.len() < SEGMENT_MAGIC.len() && SEGMENT_MAGIC.starts_with(file) {
                return Err(HeaderProblem::TooShort { len: file.len() });
            }
            return Err(HeaderProblem::BadMagic);
        }
        if file.len() < SEGMENT_HEADER_LEN {
            return Err(HeaderProblem::TooShort { len: file.len() });
        }
        let b = &file[..SEGMENT_HEADER_LEN];
        let format_version = le_u16(b, 8);
        if !(MIN_READ_FORMAT_VERSION..=FORMAT_VERSION).contains(&format_version) {
            return Err(HeaderProblem::UnsupportedVersion {
                version: format_version,
            });
        }
        let stored = le_u32(b, 60);
        let computed = crc32c::crc32c(&b[..60]);
        if stored != computed {
            return Err(HeaderProblem::ChecksumMismatch { stored, computed });
        }
        let header_len = le_u16(b, 10);
        if usize::from(header_len) != SEGMENT_HEADER_LEN {
            return Err(HeaderProblem::BadHeaderLength { header_len });
        }
        let segment_size_bytes = le_u64(b, 40);
        if !valid_segment_size(segment_size_bytes) {
            return Err(HeaderProblem::BadSegmentSize { segment_size_bytes });
        }
        let mut reserved = [0u8; 12];
        reserved.copy_from_slice(&b[48..60]);
        Ok(SegmentHeader {
            magic: SEGMENT_MAGIC,
            format_version,
            header_len,
            flags: le_u32(b, 12),
            segment_number: le_u64(b, 16),
            first_seq: le_u64(b, 24),
            created_ns: le_u64(b, 32),
            segment_size_bytes,
            reserved,
            header_crc: stored,
        })
    }
}

/// Bytes a record with `payload_len` payload bytes occupies, padding included.
pub fn record_footprint(payload_len: usize) -> usize {
    (RECORD_HEADER_LEN + payload_len).next_multiple_of(RECORD_ALIGN)
}

/// The CRC a record must carry: over the length word, then everything after the CRC field.
pub fn record_crc(record: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&record[0..4]);
    crc32c::crc32c_append(crc, &record[8..])
}

/// Writes one whole record (header, payload, zero padding) at the start of `dst` and returns
/// the bytes used. The length word is written last, after a compiler fence, so a process
/// killed part-way leaves a zero length word (the end marker) in front of a partial record,
/// never a length in front of missing bytes; the CRC catches the rest (torn pages after a
/// power loss).
///
/// # Panics
/// If `dst` is shorter than `record_footprint(payload.len())`: callers check the room first.
pub fn write_record(
    dst: &mut [u8],
    seq: u64,
    timestamp: Nanos,
    kind: RecordKind,
    payload: &[u8],
) -> usize {
    let footprint = record_footprint(payload.len());
    assert!(
        dst.len() >= footprint,
        "journal record of {footprint} bytes written into {} bytes",
        dst.len()
    );
    let len = (RECORD_HEADER_LEN + payload.len()) as u32;
    let rec = &mut dst[..footprint];
    rec[8..16].copy_from_slice(&seq.to_le_bytes());
    rec[16..24].copy_from_slice(&timestamp.0.to_le_bytes());
    rec[24..26].copy_from_slice(&kind.code().to_le_bytes());
    rec[26..32].fill(0);
    let end = len as usize;
    rec[RECORD_HEADER_LEN..end].copy_from_slice(payload);
    rec[end..].fill(0);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), &rec[8..end]);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    compiler_fence(Ordering::Release);
    rec[0..4].copy_from_slice(&len.to_le_bytes());
    footprint
}

/// A record as it lies in a segment, borrowed (zero-copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub seq: u64,
    pub timestamp: Nanos,
    /// The raw kind code; see [`RecordView::kind`].
    pub kind_code: u16,
    pub payload: &'a [u8],
}

impl<'a> RecordView<'a> {
    pub fn kind(&self) -> Option<RecordKind> {
        RecordKind::from_code(self.kind_code)
    }

    /// The FIX view of this record, if it is a FIX record.
    pub fn fix(&self) -> Option<Result<FixPayload<'a>, FixPayloadProblem>> {
        let direction = self.kind()?.fix_direction()?;
        Some(decode_fix_payload(direction, self.payload))
    }
}

/// Why the bytes at an offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordProblem {
    /// The length word is non-zero but smaller than a header.
    LengthTooSmall {
        len: u32,
    },
    /// The length word points past the end of the segment (or of the file, if shorter).
    LengthPastEnd {
        len: u32,
        available: usize,
    },
    ChecksumMismatch {
        stored: u32,
        computed: u32,
    },
    /// The CRC is right but the sequence number is not the next one.
    SequenceMismatch {
        expected: u64,
        found: u64,
    },
    /// The CRC is right but the kind code is unknown to this build.
    UnknownKind {
        code: u16,
    },
    /// Fewer bytes remain than a length word, and they are not zero.
    ShortTail {
        available: usize,
    },
    /// The length word is zero (the end marker) but non-zero bytes follow it.
    DataAfterEnd,
}

impl std::fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordProblem::LengthTooSmall { len } => {
                write!(f, "record length {len} is smaller than a record header")
            }
            RecordProblem::LengthPastEnd { len, available } => write!(
                f,
                "record length {len} runs past the end of the segment ({available} bytes left)"
            ),
            RecordProblem::ChecksumMismatch { stored, computed } => write!(
                f,
                "record CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            RecordProblem::SequenceMismatch { expected, found } => {
                write!(f, "sequence number {found}, expected {expected}")
            }
            RecordProblem::UnknownKind { code } => write!(f, "unknown record kind {code}"),
            RecordProblem::ShortTail { available } => {
                write!(f, "{available} non-zero bytes too short for a record")
            }
            RecordProblem::DataAfterEnd => {
                f.write_str("non-zero bytes after the end marker (a partly written record)")
            }
        }
    }
}

/// What lies at an offset of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A zero length word (or the end of the bytes): no record here.
    End,
    /// A record whose CRC is right, and the offset of the next one.
    Record {
        record: RecordView<'a>,
        next_offset: usize,
    },
    Bad(RecordProblem),
}

/// Decodes the record at `offset` of `segment` (the whole file's bytes, header included),
/// verifying its length and CRC. Sequence and kind are reported, not judged.
pub fn decode_record(segment: &[u8], offset: usize) -> Decoded<'_> {
    let Some(rest) = segment.get(offset..) else {
        return Decoded::End;
    };
    if rest.len() < 4 {
        return if rest.iter().all(|&b| b == 0) {
            Decoded::End
        } else {
            Decoded::Bad(RecordProblem::ShortTail {
                available: rest.len(),
            })
        };
    }
    let len = le_u32(rest, 0);
    if len == 0 {
        return Decoded::End;
    }
    if (len as usize) < RECORD_HEADER_LEN {
        return Decoded::Bad(RecordProblem::LengthTooSmall { len });
    }
    if len as usize > rest.len() {
        return Decoded::Bad(RecordProblem::LengthPastEnd {
            len,
            available: rest.len(),
        });
    }
    let rec = &rest[..len as usize];
    let stored = le_u32(rec, 4);
    let computed = record_crc(rec);
    if stored != computed {
        return Decoded::Bad(RecordProblem::ChecksumMismatch { stored, computed });
    }
    let next_offset = offset.saturating_add((len as usize).next_multiple_of(RECORD_ALIGN));
    Decoded::Record {
        record: RecordView {
            seq: le_u64(rec, 8),
            timestamp: Nanos(le_u64(rec, 16)),
            kind_code: le_u16(rec, 24),
            payload: &rec[RECORD_HEADER_LEN..],
        },
        next_offset,
    }
}

/// Offset of the first non-zero byte at or after `from`, if any.
pub fn first_nonzero(segment: &[u8], from: usize) -> Option<usize> {
    let rest = segment.get(from..)?;
    // Eight bytes at a time over the aligned bulk: zero tails are the common case and long.
    let mut chunks = rest.chunks_exact(8);
    let mut at = from;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if u64::from_ne_bytes(word) != 0 {
            return chunk.iter().position(|&b| b != 0).map(|p| at + p);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b != 0)
        .map(|p| at + p)
}

/// The first aligned offset at or after `from` holding a CRC-valid record whose sequence
/// number is in `min_seq..=max_seq`. Used to tell a torn tail (nothing valid follows the bad
/// bytes) from corruption in the middle (valid records follow).
pub fn find_valid_record(segment: &[u8], from: usize, min_seq: u64, max_seq: u64) -> Option<usize> {
    let mut at = from.next_multiple_of(RECORD_ALIGN);
    while at + RECORD_HEADER_LEN <= segment.len() {
        let len = le_u32(segment, at) as usize;
        let seq = le_u64(segment, at + 8);
        if len >= RECORD_HEADER_LEN
            && len <= segment.len() - at
            && (min_seq..=max_seq).contains(&seq)
        {
            if let Decoded::Record { .. } = decode_record(segment, at) {
                return Some(at);
            }
        }
        at += RECORD_ALIGN;
    }
    None
}

/// A FIX record's payload, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixPayload<'a> {
    pub session_id: u16,
    pub direction: FixDirection,
    /// The frame exactly as it went over the wire.
    pub raw: &'a [u8],
}

impl<'a> FixPayload<'a> {
    /// The MsgType (tag 35) of the raw frame, if it has one.
    pub fn msg_type(&self) -> Option<&'a [u8]> {
        fix_tag_value(self.raw, b"35")
    }

    /// The MsgSeqNum (tag 34) of the raw frame, if it has a numeric one.
    pub fn msg_seq_num(&self) -> Option<u64> {
        let v = fix_tag_value(self.raw, b"34")?;
        if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
    }
}

/// The value of the first `tag=` field of a tag=value frame, found by a plain scan (the
/// journal does not need the full FIX decoder to show a message type).
pub fn fix_tag_value<'a>(raw: &'a [u8], tag: &[u8]) -> Option<&'a [u8]> {
    let mut start = 0;
    while start < raw.len() {
        let end = raw[start..]
            .iter()
            .position(|&b| b == 0x01)
            .map_or(raw.len(), |p| start + p);
        let field = &raw[start..end];
        if field.len() > tag.len() && field.starts_with(tag) && field[tag.len()] == b'=' {
            return Some(&field[tag.len() + 1..]);
        }
        start = end + 1;
    }
    None
}

/// Why a FIX record's payload did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixPayloadProblem {
    TooShort {
        len: usize,
    },
    /// The direction byte is unknown or disagrees with the record kind.
    BadDirection {
        code: u8,
    },
}

impl std::fmt::Display for FixPayloadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixPayloadProblem::TooShort { len } => {
                write!(f, "FIX payload of {len} bytes is shorter than its prefix")
            }
            FixPayloadProblem::BadDirection { code } => {
                write!(
                    f,
                    "FIX direction code {code} does not match the record kind"
                )
            }
        }
    }
}

/// Writes the FIX payload prefix for `session_id` and `direction`.
pub fn encode_fix_prefix(session_id: u16, direction: FixDirection) -> [u8; FIX_PAYLOAD_PREFIX_LEN] {
    encode_fix_prefix_flagged(session_id, direction, 0)
}

/// Writes the FIX payload prefix with `flags` (see [`FixPayloadPrefix::flags`]).
pub fn encode_fix_prefix_flagged(
    session_id: u16,
    direction: FixDirection,
    flags: u8,
) -> [u8; FIX_PAYLOAD_PREFIX_LEN] {
    let s = session_id.to_le_bytes();
    [s[0], s[1], direction.code(), flags]
}

/// The flags byte of a FIX record's payload (0 if it is too short to have one).
pub fn fix_payload_flags(payload: &[u8]) -> u8 {
    payload.get(3).copied().unwrap_or(0)
}

/// Decodes a FIX record's payload; `expected` is the direction its record kind implies.
pub fn decode_fix_payload(
    expected: FixDirection,
    payload: &[u8],
) -> Result<FixPayload<'_>, FixPayloadProblem> {
    if payload.len() < FIX_PAYLOAD_PREFIX_LEN {
        return Err(FixPayloadProblem::TooShort { len: payload.len() });
    }
    let code = payload[2];
    if code != expected.code() {
        return Err(FixPayloadProblem::BadDirection { code });
    }
    Ok(FixPayload {
        session_id: le_u16(payload, 0),
        direction: expected,
        raw: &payload[FIX_PAYLOAD_PREFIX_LEN..],
    })
}

/// The file name of segment `number`.
pub fn segment_file_name(number: u64) -> String {
    format!("{SEGMENT_FILE_PREFIX}{number:012}.{SEGMENT_FILE_EXTENSION}")
}

/// The segment number in a segment file name, if `name` is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_FILE_PREFIX)?
        .strip_suffix(SEGMENT_FILE_EXTENSION)?
        .strip_suffix('.')?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment_with(records: &[(u64, RecordKind, &[u8])]) -> Vec<u8> {
        let mut seg = vec![0u8; 4096];
        let h = SegmentHeader::new(1, 1, Nanos(5), 4096 * 4);
        seg[..SEGMENT_HEADER_LEN].copy_from_slice(&h.encode());
        let mut at = SEGMENT_HEADER_LEN;
        for &(seq, kind, payload) in records {
            at += write_record(&mut seg[at..], seq, Nanos(seq * 10), kind, payload);
        }
        seg
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = SegmentHeader::new(7, 42, Nanos(123), 1 << 20);
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        let mut bad = bytes;
        bad[20] ^= 1;
        assert!(matches!(
            SegmentHeader::decode(&bad),
            Err(HeaderProblem::ChecksumMismatch { .. })
        ));
        let mut foreign = bytes;
        foreign[0] = b'X';
        assert_eq!(
            SegmentHeader::decode(&foreign),
            Err(HeaderProblem::BadMagic)
        );
        assert_eq!(
            SegmentHeader::decode(b"hello"),
            Err(HeaderProblem::BadMagic)
        );
        assert_eq!(
            SegmentHeader::decode(&bytes[..30]),
            Err(HeaderProblem::TooShort { len: 30 })
        );
        let mut next = bytes;
        next[8] = (FORMAT_VERSION + 1) as u8;
        assert_eq!(
            SegmentHeader::decode(&next),
            Err(HeaderProblem::UnsupportedVersion {
                version: FORMAT_VERSION + 1
            })
        );
    }

    #[test]
    fn records_round_trip_with_alignment_and_end_marker() {
        let seg = segment_with(&[
            (1, RecordKind::Admin, b""),
            (2, RecordKind::EngineDecision, b"abc"),
            (3, RecordKind::TimerFired, &[9u8; 8]),
        ]);
        let mut at = SEGMENT_HEADER_LEN;
        let mut seen = Vec::new();
        loop {
            match decode_record(&seg, at) {
                Decoded::Record {
                    record,
                    next_offset,
                } => {
                    assert_eq!(next_offset % RECORD_ALIGN, 0);
                    seen.push((record.seq, record.kind(), record.payload.to_vec()));
                    at = next_offset;
                }
                Decoded::End => break,
                Decoded::Bad(p) => panic!("unexpected {p}"),
            }
        }
        assert_eq!(
            seen,
            vec![
                (1, Some(RecordKind::Admin), vec![]),
                (2, Some(RecordKind::EngineDecision), b"abc".to_vec()),
                (3, Some(RecordKind::TimerFired), vec![9u8; 8]),
            ]
        );
        assert_eq!(at, SEGMENT_HEADER_LEN + 32 + 40 + 40);
        assert_eq!(first_nonzero(&seg, at), None);
    }

    #[test]
    fn any_flipped_bit_in_a_record_is_caught() {
        let seg = segment_with(&[(1, RecordKind::Admin, b"payload bytes")]);
        let len = RECORD_HEADER_LEN + 13;
        for byte in 0..len {
            for bit in 0..8 {
                let mut s = seg.clone();
                s[SEGMENT_HEADER_LEN + byte] ^= 1 << bit;
                match decode_record(&s, SEGMENT_HEADER_LEN) {
                    Decoded::Record { record, .. } => {
                        panic!("flip at byte {byte} bit {bit} accepted as {record:?}")
                    }
                    Decoded::End | Decoded::Bad(_) => {}
                }
            }
        }
    }

    #[test]
    fn bad_lengths_never_panic() {
        let mut seg = segment_with(&[]);
        seg[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + 4].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            decode_record(&seg, SEGMENT_HEADER_LEN),
            Decoded::Bad(RecordProblem::LengthTooSmall { len: 5 })
        );
        seg[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_record(&seg, SEGMENT_HEADER_LEN),
            Decoded::Bad(RecordProblem::LengthPastEnd { .. })
        ));
        assert_eq!(decode_record(&seg, seg.len() + 10), Decoded::End);
        assert_eq!(
            decode_record(&[0, 0, 7], 0),
            Decoded::Bad(RecordProblem::ShortTail { available: 3 })
        );
    }

    #[test]
    fn valid_record_search_skips_garbage() {
        let mut seg = segment_with(&[
            (1, RecordKind::Admin, b"one"),
            (2, RecordKind::Admin, b"two"),
        ]);
        let second = SEGMENT_HEADER_LEN + record_footprint(3);
        seg[SEGMENT_HEADER_LEN + 33] ^= 0xff; // damage record 1's payload
        assert_eq!(
            find_valid_record(&seg, SEGMENT_HEADER_LEN + 8, 2, 10),
            Some(second)
        );
        assert_eq!(find_valid_record(&seg, SEGMENT_HEADER_LEN + 8, 3, 10), None);
    }

    #[test]
    fn fix_payload_and_tag_lookup() {
        let raw = b"8=FIX.4.4\x019=5\x0135=R\x0134=17\x0110=000\x01";
        let mut payload = encode_fix_prefix(513, FixDirection::Outbound).to_vec();
        payload.extend_from_slice(raw);
        let fix = decode_fix_payload(FixDirection::Outbound, &payload).unwrap();
        assert_eq!(fix.session_id, 513);
        assert_eq!(fix.raw, raw);
        assert_eq!(fix.msg_type(), Some(&b"R"[..]));
        assert_eq!(fix.msg_seq_num(), Some(17));
        assert_eq!(
            decode_fix_payload(FixDirection::Inbound, &payload),
            Err(FixPayloadProblem::BadDirection { code: 2 })
        );
        assert_eq!(
            decode_fix_payload(FixDirection::Inbound, &[1]),
            Err(FixPayloadProblem::TooShort { len: 1 })
        );
        assert_eq!(fix_tag_value(b"135=X\x0135=Y", b"35"), Some(&b"Y"[..]));
        assert_eq!(fix_tag_value(b"35", b"35"), None);
    }

    #[test]
    fn names_and_codes_are_stable() {
        for (i, k) in RecordKind::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(k.code()), i + 1);
            assert_eq!(RecordKind::from_code(k.code()), Some(k));
            assert_eq!(RecordKind::from_name(k.name()), Some(k));
        }
        assert_eq!(RecordKind::from_code(0), None);
        assert_eq!(segment_file_name(3), "seg-000000000003.rfqj");
        assert_eq!(parse_segment_file_name("seg-000000000003.rfqj"), Some(3));
        assert_eq!(parse_segment_file_name("seg-3.rfqj.tmp"), None);
        assert_eq!(parse_segment_file_name("seg-.rfqj"), None);
        assert!(valid_segment_size(1 << 20));
        assert!(!valid_segment_size((1 << 20) + 8));
    }
}
