//! Score tables: the memory-mapped, fixed-layout file of per (dealer, segment) statistics.
//!
//! Owns the file format (specified byte by byte in `TABLE_FORMAT.md` beside this file, and
//! checked against the code at compile time), creating and validating the file, mapping a
//! (dealer, segment key) to a row, and the seqlock through which one writer (`ScoreWriter`,
//! the scoring thread) publishes rows and any number of lock-free readers (`ScoreReader`: the
//! engine, the admin thread, external tools mapping the file read-only) take consistent
//! snapshots. It does not compute statistics (`model` does) and does no I/O after opening
//! (the map is shared memory; `flush` is the one exception, and belongs off the hot path).
//!
//! This is the only module of `select` allowed `unsafe`: turning the mapping's raw pointer
//! into `&[AtomicU64]` rows. Every access to mapped memory is an 8-byte atomic load or store,
//! so concurrent access from threads and processes is never a data race, and a torn read is
//! detected by the seqlock (and discarded) rather than being undefined behaviour.

use crate::select::model::{ModelConfig, RowStats, MARKOUT_HORIZONS};
use crate::select::segment::SegmentKey;
use crate::time::Nanos;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

#[cfg(target_endian = "big")]
compile_error!("score tables are little-endian files; big-endian hosts are not supported");

// ---------------------------------------------------------------------------------------------
// The format (see TABLE_FORMAT.md).

pub const MAGIC: [u8; 8] = *b"RFQSCORE";
/// Version 2: row offset 52 is `quote_vs_peers_bps_sum` (version 1: price improvement vs
/// arrival over wins), offsets 104..112 the net markout; a version-1 file is refused
/// (`ErrorKind::UnsupportedVersion`), never reused.
pub const VERSION: u32 = 2;
pub const HEADER_LEN: usize = 4096;
pub const ROW_SIZE: usize = 128;
/// 8-byte words per row; word 0 is the sequence.
pub const ROW_WORDS: usize = ROW_SIZE / 8;
/// Most dealers a table holds (the engine's `DealerId` is a u16).
pub const MAX_DEALERS: u32 = 65_535;
/// Most segment slots per dealer.
pub const MAX_SEGMENTS_PER_DEALER: u32 = 4_096;
/// Most rows in one table (16 Mi rows = 2 GiB).
pub const MAX_ROWS: u64 = 1 << 24;
/// Attempts a reader makes at a row being rewritten before it reports the row busy.
pub const MAX_READ_ATTEMPTS: u32 = 1_024;

// Header offsets.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
const H_HEADER_LEN: usize = 12;
const H_ROW_SIZE: usize = 16;
const H_DEALERS: usize = 20;
const H_SEGMENTS: usize = 24;
const H_FLAGS: usize = 28;
const H_ROWS: usize = 32;
const H_CREATED_NS: usize = 40;
const H_HALF_LIFE_S: usize = 48;
const H_WINDOW_S: usize = 56;
const H_HORIZONS_S: usize = 64;
const H_LEAKAGE_HORIZON_S: usize = 88;
const H_CRC: usize = 124;
/// Bytes of the header the writer sets and the CRC covers (0..124) plus the CRC itself.
const H_USED: usize = 128;

// Row offsets.
pub const OFF_SEQ: usize = 0;
pub const OFF_KEY: usize = 8;
pub const OFF_LAST_UPDATE_NS: usize = 16;
pub const OFF_RFQS_SENT: usize = 24;
pub const OFF_RESPONSES: usize = 28;
pub const OFF_DECLINES: usize = 32;
pub const OFF_QUOTES: usize = 36;
pub const OFF_WINS: usize = 40;
pub const OFF_LATE_OR_INVALID: usize = 44;
pub const OFF_RESPONSE_S_SUM: usize = 48;
pub const OFF_QUOTE_VS_PEERS_BPS_SUM: usize = 52;
pub const OFF_VS_COVER_BPS_SUM: usize = 56;
pub const OFF_COVER_N: usize = 60;
pub const OFF_MARKOUT_BPS_SUM: usize = 64;
pub const OFF_MARKOUT_N: usize = 76;
pub const OFF_DRIFT_BPS_SUM: usize = 88;
pub const OFF_DRIFT_N: usize = 92;
pub const OFF_RFQS_TOTAL: usize = 96;
pub const OFF_WINS_TOTAL: usize = 100;
pub const OFF_NET_MARKOUT_BPS_SUM: usize = 104;
pub const OFF_NET_MARKOUT_N: usize = 108;
pub const OFF_RESERVED: usize = 112;

/// The row as a C struct: never instantiated, it exists so the compiler checks that the
/// offsets above describe a gap-free 128-byte layout.
#[repr(C)]
#[allow(dead_code)]
struct RowLayout {
    seq: u64,
    segment_key: u64,
    last_update_ns: u64,
    rfqs_sent: f32,
    responses: f32,
    declines: f32,
    quotes: f32,
    wins: f32,
    late_or_invalid: f32,
    response_s_sum: f32,
    quote_vs_peers_bps_sum: f32,
    vs_cover_bps_sum: f32,
    cover_n: f32,
    markout_bps_sum: [f32; MARKOUT_HORIZONS],
    markout_n: [f32; MARKOUT_HORIZONS],
    drift_bps_sum: f32,
    drift_n: f32,
    rfqs_total: u32,
    wins_total: u32,
    net_markout_bps_sum: f32,
    net_markout_n: f32,
    reserved: [u8; ROW_SIZE - OFF_RESERVED],
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<RowLayout>() == ROW_SIZE);
    assert!(align_of::<RowLayout>() == 8);
    assert!(ROW_SIZE.is_multiple_of(64), "rows are whole cache lines");
    assert!(HEADER_LEN.is_multiple_of(64) && HEADER_LEN >= H_USED);
    assert!(offset_of!(RowLayout, seq) == OFF_SEQ);
    assert!(offset_of!(RowLayout, segment_key) == OFF_KEY);
    assert!(offset_of!(RowLayout, last_update_ns) == OFF_LAST_UPDATE_NS);
    assert!(offset_of!(RowLayout, rfqs_sent) == OFF_RFQS_SENT);
    assert!(offset_of!(RowLayout, responses) == OFF_RESPONSES);
    assert!(offset_of!(RowLayout, declines) == OFF_DECLINES);
    assert!(offset_of!(RowLayout, quotes) == OFF_QUOTES);
    assert!(offset_of!(RowLayout, wins) == OFF_WINS);
    assert!(offset_of!(RowLayout, late_or_invalid) == OFF_LATE_OR_INVALID);
    assert!(offset_of!(RowLayout, response_s_sum) == OFF_RESPONSE_S_SUM);
    assert!(offset_of!(RowLayout, quote_vs_peers_bps_sum) == OFF_QUOTE_VS_PEERS_BPS_SUM);
    assert!(offset_of!(RowLayout, vs_cover_bps_sum) == OFF_VS_COVER_BPS_SUM);
    assert!(offset_of!(RowLayout, cover_n) == OFF_COVER_N);
    assert!(offset_of!(RowLayout, markout_bps_sum) == OFF_MARKOUT_BPS_SUM);
    assert!(offset_of!(RowLayout, markout_n) == OFF_MARKOUT_N);
    assert!(offset_of!(RowLayout, drift_bps_sum) == OFF_DRIFT_BPS_SUM);
    assert!(offset_of!(RowLayout, drift_n) == OFF_DRIFT_N);
    assert!(offset_of!(RowLayout, rfqs_total) == OFF_RFQS_TOTAL);
    assert!(offset_of!(RowLayout, wins_total) == OFF_WINS_TOTAL);
    assert!(offset_of!(RowLayout, net_markout_bps_sum) == OFF_NET_MARKOUT_BPS_SUM);
    assert!(offset_of!(RowLayout, net_markout_n) == OFF_NET_MARKOUT_N);
    assert!(offset_of!(RowLayout, reserved) == OFF_RESERVED);
    // The largest table the issue asks for fits: 10,000 dealers x 100 segments (+ aggregate).
    assert!((10_001u64 * 100) <= MAX_ROWS);
    assert!((MAX_ROWS as usize).checked_mul(ROW_SIZE).is_some());
};

// ---------------------------------------------------------------------------------------------
// The seqlock protocol, generic over the atomic word so the loom model test runs this very
// code with loom's atomics (tests/loom_seqlock.rs).

/// An 8-byte atomic cell the seqlock works on.
pub trait SeqWord {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
    /// A memory fence of the same memory model as the cell.
    fn fence(order: Ordering);
}

impl SeqWord for AtomicU64 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline(always)]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
    #[inline(always)]
    fn fence(order: Ordering) {
        fence(order)
    }
}

/// Publishes `src` as the row's payload (`row[1..]`). Only the one writer may call this.
///
/// Why these orderings (Boehm, "Can seqlocks get along with programming language memory
/// models?", 2012): the release fence after the odd store orders it before every payload
/// store. If a reader's relaxed payload load sees any of those stores, the reader's acquire
/// fence (placed after its payload loads) synchronises with this release fence, so the odd
/// store happens-before the reader's second sequence load, which therefore cannot return
/// the even value the reader started from: the reader retries. The final release store
/// makes the payload visible to a reader whose acquire-fenced first load sees `s + 2`.
#[inline]
pub fn seqlock_write<W: SeqWord>(row: &[W], src: &[u64]) {
    assert!(
        row.len() == src.len() + 1,
        "seqlock_write: payload of {} words for a row of {}",
        src.len(),
        row.len()
    );
    let seq = &row[0];
    // Only the writer stores the sequence, so a relaxed load sees its own last store.
    let s = seq.load(Ordering::Relaxed);
    assert!(
        s.is_multiple_of(2),
        "seqlock_write: row left odd ({s}): a second writer?"
    );
    seq.store(s.wrapping_add(1), Ordering::Relaxed);
    W::fence(Ordering::Release);
    for (w, &v) in row[1..].iter().zip(src) {
        w.store(v, Ordering::Relaxed);
    }
    seq.store(s.wrapping_add(2), Ordering::Release);
}

/// One attempt at a consistent snapshot of the row's payload into `dst`. Returns the even
/// sequence the snapshot belongs to, or None when a write was in progress or happened during
/// the copy (retry).
///
/// Every load is relaxed and the ordering comes from fences: a relaxed load followed by an
/// acquire fence is as strong as an acquire load, and relaxed 8-byte loads are what the
/// standard library documents as valid on read-only memory, which an external tool's
/// read-only map is.
#[inline]
pub fn seqlock_try_read<W: SeqWord>(row: &[W], dst: &mut [u64]) -> Option<u64> {
    assert!(
        row.len() == dst.len() + 1,
        "seqlock_try_read: buffer of {} words for a row of {}",
        dst.len(),
        row.len()
    );
    let seq = &row[0];
    let s1 = seq.load(Ordering::Relaxed);
    W::fence(Ordering::Acquire);
    if s1 % 2 == 1 {
        return None;
    }
    for (d, w) in dst.iter_mut().zip(&row[1..]) {
        *d = w.load(Ordering::Relaxed);
    }
    W::fence(Ordering::Acquire);
    let s2 = seq.load(Ordering::Relaxed);
    (s1 == s2).then_some(s1)
}

/// `seqlock_try_read` retried up to `attempts` times; None if the row stayed busy.
#[inline]
pub fn seqlock_read<W: SeqWord>(row: &[W], dst: &mut [u64], attempts: u32) -> Option<u64> {
    for _ in 0..attempts {
        if let Some(s) = seqlock_try_read(row, dst) {
            return Some(s);
        }
        std::hint::spin_loop();
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Rows <-> words.

/// One row's content.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowRecord {
    pub key: SegmentKey,
    pub stats: RowStats,
}

/// The row's payload (bytes 8..128) as the 15 words the seqlock copies.
pub type RowPayload = [u64; ROW_WORDS - 1];

// Fields are read and written straight in the payload words: on a little-endian host
// (the only kind this module builds for) the 4 bytes at row offset `off` are bits
// `8 * (off % 8)..` of payload word `off / 8 - 1`, and an 8-byte field is a whole word.

const fn payload_word(off: usize) -> usize {
    off / 8 - 1
}
const fn payload_shift(off: usize) -> u32 {
    ((off % 8) * 8) as u32
}
#[inline(always)]
fn get32(w: &RowPayload, off: usize) -> u32 {
    (w[payload_word(off)] >> payload_shift(off)) as u32
}
#[inline(always)]
fn getf(w: &RowPayload, off: usize) -> f32 {
    f32::from_bits(get32(w, off))
}
/// Into a zeroed payload.
#[inline(always)]
fn put32(w: &mut RowPayload, off: usize, v: u32) {
    w[payload_word(off)] |= u64::from(v) << payload_shift(off);
}
#[inline(always)]
fn putf(w: &mut RowPayload, off: usize, v: f32) {
    put32(w, off, v.to_bits());
}

impl RowRecord {
    /// The record in the file's byte layout, as payload words.
    #[inline]
    pub fn encode(&self) -> RowPayload {
        let s = &self.stats;
        let mut w = [0u64; ROW_WORDS - 1];
        w[payload_word(OFF_KEY)] = self.key.0;
        w[payload_word(OFF_LAST_UPDATE_NS)] = s.last_update_ns;
        putf(&mut w, OFF_RFQS_SENT, s.rfqs_sent);
        putf(&mut w, OFF_RESPONSES, s.responses);
        putf(&mut w, OFF_DECLINES, s.declines);
        putf(&mut w, OFF_QUOTES, s.quotes);
        putf(&mut w, OFF_WINS, s.wins);
        putf(&mut w, OFF_LATE_OR_INVALID, s.late_or_invalid);
        putf(&mut w, OFF_RESPONSE_S_SUM, s.response_s_sum);
        putf(&mut w, OFF_QUOTE_VS_PEERS_BPS_SUM, s.quote_vs_peers_bps_sum);
        putf(&mut w, OFF_VS_COVER_BPS_SUM, s.vs_cover_bps_sum);
        putf(&mut w, OFF_COVER_N, s.cover_n);
        for i in 0..MARKOUT_HORIZONS {
            putf(&mut w, OFF_MARKOUT_BPS_SUM + 4 * i, s.markout_bps_sum[i]);
            putf(&mut w, OFF_MARKOUT_N + 4 * i, s.markout_n[i]);
        }
        putf(&mut w, OFF_DRIFT_BPS_SUM, s.drift_bps_sum);
        putf(&mut w, OFF_DRIFT_N, s.drift_n);
        put32(&mut w, OFF_RFQS_TOTAL, s.rfqs_total);
        put32(&mut w, OFF_WINS_TOTAL, s.wins_total);
        putf(&mut w, OFF_NET_MARKOUT_BPS_SUM, s.net_markout_bps_sum);
        putf(&mut w, OFF_NET_MARKOUT_N, s.net_markout_n);
        w
    }

    #[inline]
    pub fn decode(w: &RowPayload) -> RowRecord {
        let mut s = RowStats {
            last_update_ns: w[payload_word(OFF_LAST_UPDATE_NS)],
            rfqs_sent: getf(w, OFF_RFQS_SENT),
            responses: getf(w, OFF_RESPONSES),
            declines: getf(w, OFF_DECLINES),
            quotes: getf(w, OFF_QUOTES),
            wins: getf(w, OFF_WINS),
            late_or_invalid: getf(w, OFF_LATE_OR_INVALID),
            response_s_sum: getf(w, OFF_RESPONSE_S_SUM),
            quote_vs_peers_bps_sum: getf(w, OFF_QUOTE_VS_PEERS_BPS_SUM),
            vs_cover_bps_sum: getf(w, OFF_VS_COVER_BPS_SUM),
            cover_n: getf(w, OFF_COVER_N),
            drift_bps_sum: getf(w, OFF_DRIFT_BPS_SUM),
            drift_n: getf(w, OFF_DRIFT_N),
            rfqs_total: get32(w, OFF_RFQS_TOTAL),
            wins_total: get32(w, OFF_WINS_TOTAL),
            net_markout_bps_sum: getf(w, OFF_NET_MARKOUT_BPS_SUM),
            net_markout_n: getf(w, OFF_NET_MARKOUT_N),
            ..RowStats::default()
        };
        for i in 0..MARKOUT_HORIZONS {
            s.markout_bps_sum[i] = getf(w, OFF_MARKOUT_BPS_SUM + 4 * i);
            s.markout_n[i] = getf(w, OFF_MARKOUT_N + 4 * i);
        }
        RowRecord {
            key: SegmentKey(w[payload_word(OFF_KEY)]),
            stats: s,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Header.

/// What a table is sized for and which model parameters its rows were written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableParams {
    /// Dealer blocks (the aggregate block comes on top).
    pub dealers: u32,
    pub segments_per_dealer: u32,
    pub half_life_s: u64,
    pub window_s: u64,
    pub markout_horizons_s: [u64; MARKOUT_HORIZONS],
    pub leakage_horizon_s: u64,
}

impl TableParams {
    pub fn new(dealers: u32, segments_per_dealer: u32, model: &ModelConfig) -> TableParams {
        TableParams {
            dealers,
            segments_per_dealer,
            half_life_s: model.half_life_s,
            window_s: model.window_s,
            markout_horizons_s: model.markout_horizons_s,
            leakage_horizon_s: model.leakage_horizon_s,
        }
    }

    /// Rows including the aggregate block.
    pub fn rows(&self) -> u64 {
        (u64::from(self.dealers) + 1) * u64::from(self.segments_per_dealer)
    }

    /// The file's length in bytes.
    pub fn file_len(&self) -> u64 {
        HEADER_LEN as u64 + self.rows() * ROW_SIZE as u64
    }

    fn check(&self) -> Result<(), ErrorKind> {
        let bad = |what| {
            Err(ErrorKind::Capacity {
                what,
                dealers: self.dealers,
                segments_per_dealer: self.segments_per_dealer,
            })
        };
        if self.dealers == 0 || self.dealers > MAX_DEALERS {
            return bad("dealers must be 1..=65535");
        }
        if self.segments_per_dealer == 0 || self.segments_per_dealer > MAX_SEGMENTS_PER_DEALER {
            return bad("segments_per_dealer must be 1..=4096");
        }
        if self.rows() > MAX_ROWS {
            return bad("(dealers + 1) * segments_per_dealer exceeds 16 Mi rows");
        }
        Ok(())
    }
}

/// A validated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub params: TableParams,
    pub created: Nanos,
}

impl Header {
    pub fn rows(&self) -> u64 {
        self.params.rows()
    }

    /// The block holding the pooled statistics of all dealers.
    pub fn aggregate_dealer(&self) -> u32 {
        self.params.dealers
    }

    fn encode(&self) -> [u8; H_USED] {
        let p = &self.params;
        let mut b = [0u8; H_USED];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(H_MAGIC, &MAGIC);
        put(H_VERSION, &self.version.to_le_bytes());
        put(H_HEADER_LEN, &(HEADER_LEN as u32).to_le_bytes());
        put(H_ROW_SIZE, &(ROW_SIZE as u32).to_le_bytes());
        put(H_DEALERS, &p.dealers.to_le_bytes());
        put(H_SEGMENTS, &p.segments_per_dealer.to_le_bytes());
        put(H_FLAGS, &0u32.to_le_bytes());
        put(H_ROWS, &p.rows().to_le_bytes());
        put(H_CREATED_NS, &self.created.0.to_le_bytes());
        put(H_HALF_LIFE_S, &p.half_life_s.to_le_bytes());
        put(H_WINDOW_S, &p.window_s.to_le_bytes());
        for (i, h) in p.markout_horizons_s.iter().enumerate() {
            put(H_HORIZONS_S + 8 * i, &h.to_le_bytes());
        }
        put(H_LEAKAGE_HORIZON_S, &p.leakage_horizon_s.to_le_bytes());
        let crc = crc32c::crc32c(&b[..H_CRC]);
        b[H_CRC..H_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Validates the first `H_USED` bytes of a file of `file_len` bytes.
    fn decode(b: &[u8; H_USED], file_len: u64) -> Result<Header, ErrorKind> {
        let u32_at = |off: usize| u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
        let u64_at = |off: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[off..off + 8]);
            u64::from_le_bytes(v)
        };
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[H_MAGIC..H_MAGIC + 8]);
        if magic != MAGIC {
            return Err(ErrorKind::BadMagic { found: magic });
        }
        let version = u32_at(H_VERSION);
        if version != VERSION {
            return Err(ErrorKind::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let stored = u32_at(H_CRC);
        let computed = crc32c::crc32c(&b[..H_CRC]);
        if stored != computed {
            return Err(ErrorKind::HeaderCrc { stored, computed });
        }
        let header_len = u32_at(H_HEADER_LEN);
        let row_size = u32_at(H_ROW_SIZE);
        if header_len as usize != HEADER_LEN || row_size as usize != ROW_SIZE {
            return Err(ErrorKind::Layout {
                header_len,
                row_size,
            });
        }
        let mut horizons = [0u64; MARKOUT_HORIZONS];
        for (i, h) in horizons.iter_mut().enumerate() {
            *h = u64_at(H_HORIZONS_S + 8 * i);
        }
        let params = TableParams {
            dealers: u32_at(H_DEALERS),
            segments_per_dealer: u32_at(H_SEGMENTS),
            half_life_s: u64_at(H_HALF_LIFE_S),
            window_s: u64_at(H_WINDOW_S),
            markout_horizons_s: horizons,
            leakage_horizon_s: u64_at(H_LEAKAGE_HORIZON_S),
        };
        params.check()?;
        let rows = u64_at(H_ROWS);
        if rows != params.rows() || file_len != params.file_len() {
            return Err(ErrorKind::Geometry {
                rows,
                expected_len: params.file_len(),
                file_len,
            });
        }
        Ok(Header {
            version,
            params,
            created: Nanos(u64_at(H_CREATED_NS)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// Why a table could not be created or opened.
#[derive(Debug)]
pub struct TableError {
    pub path: PathBuf,
    /// Boxed: the error stays small on the success path's stack.
    pub kind: Box<ErrorKind>,
}

#[derive(Debug)]
pub enum ErrorKind {
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    /// The file already exists (create refuses to overwrite).
    Exists,
    /// Shorter than a header.
    Truncated {
        file_len: u64,
    },
    BadMagic {
        found: [u8; 8],
    },
    UnsupportedVersion {
        found: u32,
        supported: u32,
    },
    HeaderCrc {
        stored: u32,
        computed: u32,
    },
    Layout {
        header_len: u32,
        row_size: u32,
    },
    Geometry {
        rows: u64,
        expected_len: u64,
        file_len: u64,
    },
    Capacity {
        what: &'static str,
        dealers: u32,
        segments_per_dealer: u32,
    },
    /// The writer's configuration differs from the file's header.
    ParamsMismatch {
        file: TableParams,
        config: TableParams,
    },
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "score table {}: ", self.path.display())?;
        match &*self.kind {
            ErrorKind::Io { op, source } => write!(f, "{op}: {source}"),
            ErrorKind::Exists => f.write_str("already exists"),
            ErrorKind::Truncated { file_len } => {
                write!(
                    f,
                    "{file_len} bytes, shorter than the {HEADER_LEN}-byte header"
                )
            }
            ErrorKind::BadMagic { found } => write!(
                f,
                "not a score table: magic {:?}, expected {:?}",
                String::from_utf8_lossy(found),
                String::from_utf8_lossy(&MAGIC)
            ),
            ErrorKind::UnsupportedVersion { found, supported } if found < supported => write!(
                f,
                "format version {found}, written by an older build; this build reads version \
                 {supported} only and never reuses an older table (version 2: row offset 52 is \
                 quote competitiveness over quotes, no longer price improvement over wins; \
                 the net markout is new). Move the file aside and start the router: it \
                 creates an empty version-{supported} table here, scores from the priors and \
                 refills it from the flow (score rows the older build journaled are not \
                 restored; `rfq-journal scores` rebuilds the statistics from the journal's \
                 FIX and TCA records)"
            ),
            ErrorKind::UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found}, written by a newer build; this build reads version \
                 {supported}: run the build that wrote it, or move the file aside"
            ),
            ErrorKind::HeaderCrc { stored, computed } => write!(
                f,
                "header CRC32C mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 the header is corrupt"
            ),
            ErrorKind::Layout {
                header_len,
                row_size,
            } => write!(
                f,
                "header length {header_len} / row size {row_size}, expected {HEADER_LEN} / \
                 {ROW_SIZE}"
            ),
            ErrorKind::Geometry {
                rows,
                expected_len,
                file_len,
            } => write!(
                f,
                "header says {rows} rows ({expected_len} bytes) but the file has {file_len} bytes"
            ),
            ErrorKind::Capacity {
                what,
                dealers,
                segments_per_dealer,
            } => write!(
                f,
                "capacity {dealers} dealers x {segments_per_dealer} segments refused: {what}"
            ),
            ErrorKind::ParamsMismatch { file, config } => write!(
                f,
                "written for {file:?}, configured for {config:?}; move it aside and rebuild it \
                 from the journal"
            ),
        }
    }
}

impl std::error::Error for TableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a row could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The row was being rewritten for every one of the reader's attempts.
    Busy { row: u64 },
    /// No such row or dealer.
    OutOfRange { index: u64, limit: u64 },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Busy { row } => write!(f, "score row {row} stayed busy"),
            ReadError::OutOfRange { index, limit } => {
                write!(f, "index {index} out of range (limit {limit})")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// Why the writer could not place a (dealer, segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceError {
    /// Every slot of the dealer's block holds another segment.
    SegmentsFull { dealer: u32 },
    /// No such dealer block.
    NoSuchDealer { dealer: u32, dealers: u32 },
    /// `SegmentKey::EMPTY` names no segment.
    EmptyKey,
}

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceError::SegmentsFull { dealer } => {
                write!(f, "dealer {dealer}: all segment slots are taken")
            }
            PlaceError::NoSuchDealer { dealer, dealers } => {
                write!(
                    f,
                    "dealer {dealer}: the table has dealers 0..{dealers} and the aggregate"
                )
            }
            PlaceError::EmptyKey => f.write_str("the empty segment key names no segment"),
        }
    }
}

impl std::error::Error for PlaceError {}

// ---------------------------------------------------------------------------------------------
// The mapping.

struct Mapping {
    raw: MmapRaw,
    header: Header,
}

impl Mapping {
    /// Row `row`'s words. `row` must be below `header.rows()` (asserted: a broken invariant
    /// of this module, every caller checks first).
    #[inline(always)]
    fn row(&self, row: u64) -> &[AtomicU64] {
        assert!(row < self.header.rows(), "row {row} out of range");
        let offset = HEADER_LEN + row as usize * ROW_SIZE;
        // Why this is sound:
        // - In bounds: the map is exactly `file_len` = HEADER_LEN + rows * ROW_SIZE bytes
        //   (checked by `Header::decode` against the file before mapping, and the map length
        //   taken from the same file), and `row < rows`, so the 128 bytes at `offset` lie
        //   inside it. (Another process truncating the file would make access raise SIGBUS,
        //   which is a crash, not memory unsafety.)
        // - Aligned: mmap returns a page-aligned address (asserted at open), and HEADER_LEN
        //   and ROW_SIZE are multiples of 8 = align_of::<AtomicU64>().
        // - Valid type: AtomicU64 has the size and bit validity of u64; every bit pattern is
        //   a valid u64.
        // - Lifetime: the slice borrows `self`, and the map lives as long as `self`.
        // - Aliasing: no `&`/`&mut` to plain bytes of the rows is ever created; all access,
        //   in this process and (by the format's contract) in others, is through these
        //   atomics, so concurrent access is not a data race. On a read-only map only
        //   relaxed loads are ever performed (`ScoreReader` has no store path), which the
        //   standard library documents as permitted on read-only memory for atomics no wider
        //   than a pointer.
        // SAFETY: in bounds, aligned, valid for u64, borrowed from `self`, atomics only (above).
        unsafe {
            let ptr = self.raw.as_ptr().add(offset).cast::<AtomicU64>();
            std::slice::from_raw_parts(ptr, ROW_WORDS)
        }
    }

    fn row_index(&self, dealer: u32, slot: u32) -> u64 {
        u64::from(dealer) * u64::from(self.header.params.segments_per_dealer) + u64::from(slot)
    }

    /// The first probe slot of `key` in a block.
    fn home_slot(&self, key: SegmentKey) -> u32 {
        let h = key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        (h % u64::from(self.header.params.segments_per_dealer)) as u32
    }
}

fn io_err(path: &Path, op: &'static str, source: std::io::Error) -> TableError {
    TableError {
        path: path.to_path_buf(),
        kind: Box::new(ErrorKind::Io { op, source }),
    }
}

fn err(path: &Path, kind: ErrorKind) -> TableError {
    TableError {
        path: path.to_path_buf(),
        kind: Box::new(kind),
    }
}

/// Reads and validates the header of an open file.
fn read_header(path: &Path, file: &mut File) -> Result<Header, TableError> {
    let file_len = file.metadata().map_err(|e| io_err(path, "stat", e))?.len();
    if file_len < HEADER_LEN as u64 {
        return Err(err(path, ErrorKind::Truncated { file_len }));
    }
    let mut b = [0u8; H_USED];
    file.read_exact(&mut b)
        .map_err(|e| io_err(path, "read header", e))?;
    Header::decode(&b, file_len).map_err(|k| err(path, k))
}

fn map(
    path: &Path,
    file: &File,
    header: Header,
    writable: bool,
) -> Result<Arc<Mapping>, TableError> {
    let mut opts = MmapOptions::new();
    opts.len(header.params.file_len() as usize);
    let raw = if writable {
        opts.map_raw(file)
    } else {
        opts.map_raw_read_only(file)
    }
    .map_err(|e| io_err(path, "mmap", e))?;
    assert!(
        (raw.as_ptr() as usize).is_multiple_of(std::mem::align_of::<AtomicU64>()),
        "mmap returned an unaligned address"
    );
    Ok(Arc::new(Mapping { raw, header }))
}

// ---------------------------------------------------------------------------------------------
// Reader.

/// A lock-free view of a table. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct ScoreReader {
    map: Arc<Mapping>,
}

impl std::fmt::Debug for ScoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoreReader")
            .field("header", &self.map.header)
            .finish()
    }
}

impl ScoreReader {
    /// Maps an existing table read-only (external tools; the router's own threads use
    /// `ScoreWriter::reader`). The writer may be running.
    pub fn open_read_only(path: &Path) -> Result<ScoreReader, TableError> {
        let mut file = File::open(path).map_err(|e| io_err(path, "open", e))?;
        let header = read_header(path, &mut file)?;
        Ok(ScoreReader {
            map: map(path, &file, header, false)?,
        })
    }

    pub fn header(&self) -> &Header {
        &self.map.header
    }

    /// A consistent snapshot of row `row`.
    #[inline]
    pub fn read_row(&self, row: u64) -> Result<RowRecord, ReadError> {
        let limit = self.map.header.rows();
        if row >= limit {
            return Err(ReadError::OutOfRange { index: row, limit });
        }
        let mut w = [0u64; ROW_WORDS - 1];
        seqlock_read(self.map.row(row), &mut w, MAX_READ_ATTEMPTS)
            .ok_or(ReadError::Busy { row })?;
        Ok(RowRecord::decode(&w))
    }

    /// The row of (`dealer`, `key`), if the writer has created it. `dealer` may be the
    /// aggregate block (`header().aggregate_dealer()`).
    pub fn find(&self, dealer: u32, key: SegmentKey) -> Result<Option<RowStats>, ReadError> {
        Ok(self.locate(dealer, key)?.map(|(_, r)| r.stats))
    }

    /// Like `find`, also returning the row index.
    pub fn locate(
        &self,
        dealer: u32,
        key: SegmentKey,
    ) -> Result<Option<(u64, RowRecord)>, ReadError> {
        let m = &*self.map;
        let dealers = m.header.params.dealers;
        if dealer > dealers {
            return Err(ReadError::OutOfRange {
                index: u64::from(dealer),
                limit: u64::from(dealers) + 1,
            });
        }
        if key.is_empty() {
            return Ok(None);
        }
        let segs = m.header.params.segments_per_dealer;
        let home = m.home_slot(key);
        for i in 0..segs {
            let slot = (home + i) % segs;
            let row = m.row_index(dealer, slot);
            // A slot's key changes once, from 0 to its key, and never again: one relaxed
            // load of that word (atomic, so never torn) is enough to steer the probe; the
            // full read below is seqlock-validated.
            let k = m.row(row)[OFF_KEY / 8].load(Ordering::Relaxed);
            if k == 0 {
                return Ok(None);
            }
            if k == key.0 {
                let rec = self.read_row(row)?;
                return Ok(Some((row, rec)));
            }
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// Writer.

/// The one writer of a table (the scoring thread). Not `Clone`: a second writer would break
/// the seqlock. Opening the same file from two processes as writers is not detected; the
/// router opens its table once.
pub struct ScoreWriter {
    map: Arc<Mapping>,
    /// Observations refused because a dealer's segment slots were all taken.
    pub segments_full: u64,
}

impl std::fmt::Debug for ScoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoreWriter")
            .field("header", &self.map.header)
            .field("segments_full", &self.segments_full)
            .finish()
    }
}

impl ScoreWriter {
    /// Creates a new, empty (sparse) table. Refuses to overwrite an existing file.
    pub fn create(
        path: &Path,
        params: TableParams,
        created: Nanos,
    ) -> Result<ScoreWriter, TableError> {
        params.check().map_err(|k| err(path, k))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    err(path, ErrorKind::Exists)
                } else {
                    io_err(path, "create", e)
                }
            })?;
        let header = Header {
            version: VERSION,
            params,
            created,
        };
        // set_len on a fresh file leaves a hole: the rows take no disk until written.
        file.set_len(params.file_len())
            .map_err(|e| io_err(path, "set length", e))?;
        file.write_all(&header.encode())
            .map_err(|e| io_err(path, "write header", e))?;
        file.sync_all().map_err(|e| io_err(path, "sync", e))?;
        Ok(ScoreWriter {
            map: map(path, &file, header, true)?,
            segments_full: 0,
        })
    }

    /// Opens an existing table for writing; its header must match `params`. Rows a crashed
    /// writer left half-written (odd sequence) get their statistics zeroed (their key kept)
    /// so readers see them again; the journal rebuild restores them.
    pub fn open(path: &Path, params: TableParams) -> Result<ScoreWriter, TableError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, "open", e))?;
        let header = read_header(path, &mut file)?;
        if header.params != params {
            return Err(err(
                path,
                ErrorKind::ParamsMismatch {
                    file: header.params,
                    config: params,
                },
            ));
        }
        let w = ScoreWriter {
            map: map(path, &file, header, true)?,
            segments_full: 0,
        };
        for row in 0..header.rows() {
            let words = w.map.row(row);
            let s = words[0].load(Ordering::Relaxed);
            if s % 2 == 1 {
                let key = words[OFF_KEY / 8].load(Ordering::Relaxed);
                // Forward to even (never back: a reader still holding the old even value
                // must see a change), then rewrite the row through the seqlock.
                words[0].store(s.wrapping_add(1), Ordering::Relaxed);
                let rec = RowRecord {
                    key: SegmentKey(key),
                    stats: RowStats::default(),
                };
                seqlock_write(words, &rec.encode());
            }
        }
        Ok(w)
    }

    /// `open` if the file exists, else `create`.
    pub fn open_or_create(
        path: &Path,
        params: TableParams,
        now: Nanos,
    ) -> Result<ScoreWriter, TableError> {
        if path.exists() {
            ScoreWriter::open(path, params)
        } else {
            ScoreWriter::create(path, params, now)
        }
    }

    /// A lock-free reader sharing this writer's map.
    pub fn reader(&self) -> ScoreReader {
        ScoreReader {
            map: Arc::clone(&self.map),
        }
    }

    pub fn header(&self) -> &Header {
        &self.map.header
    }

    /// The writer's own view of a row: no seqlock needed, nobody else writes it.
    fn load(&self, row: u64) -> RowRecord {
        let words = self.map.row(row);
        let mut w = [0u64; ROW_WORDS - 1];
        for (d, s) in w.iter_mut().zip(&words[1..]) {
            *d = s.load(Ordering::Relaxed);
        }
        RowRecord::decode(&w)
    }

    /// The row index of (`dealer`, `key`), claiming a free slot for a new segment.
    pub fn place(&mut self, dealer: u32, key: SegmentKey) -> Result<u64, PlaceError> {
        let m = &*self.map;
        let dealers = m.header.params.dealers;
        if dealer > dealers {
            return Err(PlaceError::NoSuchDealer { dealer, dealers });
        }
        if key.is_empty() {
            return Err(PlaceError::EmptyKey);
        }
        let segs = m.header.params.segments_per_dealer;
        let home = m.home_slot(key);
        for i in 0..segs {
            let row = m.row_index(dealer, (home + i) % segs);
            let k = m.row(row)[OFF_KEY / 8].load(Ordering::Relaxed);
            if k == key.0 {
                return Ok(row);
            }
            if k == 0 {
                let rec = RowRecord {
                    key,
                    stats: RowStats::default(),
                };
                seqlock_write(m.row(row), &rec.encode());
                return Ok(row);
            }
        }
        self.segments_full += 1;
        Err(PlaceError::SegmentsFull { dealer })
    }

    /// Applies `f` to the statistics of (`dealer`, `key`) and publishes the result atomically
    /// to readers. O(1) plus the probe.
    pub fn update<R>(
        &mut self,
        dealer: u32,
        key: SegmentKey,
        f: impl FnOnce(&mut RowStats) -> R,
    ) -> Result<R, PlaceError> {
        let row = self.place(dealer, key)?;
        let mut rec = self.load(row);
        let r = f(&mut rec.stats);
        seqlock_write(self.map.row(row), &rec.encode());
        Ok(r)
    }

    /// Replaces row `row`'s statistics (used by rebuilds and tests). The key is kept.
    pub fn store_row(&mut self, row: u64, stats: &RowStats) -> Result<(), ReadError> {
        let limit = self.map.header.rows();
        if row >= limit {
            return Err(ReadError::OutOfRange { index: row, limit });
        }
        let rec = RowRecord {
            key: self.load(row).key,
            stats: *stats,
        };
        seqlock_write(self.map.row(row), &rec.encode());
        Ok(())
    }

    /// Asks the OS to write dirty pages back (asynchronously). Not needed for readers, which
    /// share the pages; only for durability, which the journal provides anyway.
    pub fn flush(&self) -> std::io::Result<()> {
        self.map.raw.flush_async()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_encoding_round_trips_and_puts_fields_at_their_offsets() {
        let mut s = RowStats {
            last_update_ns: 0x0102_0304_0506_0708,
            rfqs_sent: 1.5,
            responses: 2.5,
            declines: 3.5,
            quotes: 4.5,
            wins: 5.5,
            late_or_invalid: 6.5,
            response_s_sum: 7.5,
            quote_vs_peers_bps_sum: -8.5,
            vs_cover_bps_sum: 9.5,
            cover_n: 10.5,
            drift_bps_sum: -11.5,
            drift_n: 12.5,
            rfqs_total: 13,
            wins_total: 14,
            ..RowStats::default()
        };
        s.markout_bps_sum = [-1.25, 2.25, -3.25];
        s.markout_n = [4.0, 5.0, 6.0];
        let rec = RowRecord {
            key: SegmentKey(0xAABB_CCDD_EEFF_0011),
            stats: s,
        };
        let w = rec.encode();
        assert_eq!(RowRecord::decode(&w), rec);
        // The bytes as they land in the file (payload starts at row byte 8).
        let mut bytes = [0u8; ROW_SIZE];
        for (i, word) in w.iter().enumerate() {
            bytes[8 * (i + 1)..8 * (i + 2)].copy_from_slice(&word.to_ne_bytes());
        }
        assert_eq!(
            &bytes[OFF_KEY..OFF_KEY + 8],
            &0xAABB_CCDD_EEFF_0011u64.to_le_bytes()
        );
        assert_eq!(&bytes[OFF_WINS..OFF_WINS + 4], &5.5f32.to_le_bytes());
        assert_eq!(
            &bytes[OFF_MARKOUT_N + 8..OFF_MARKOUT_N + 12],
            &6.0f32.to_le_bytes()
        );
        assert_eq!(
            &bytes[OFF_WINS_TOTAL..OFF_WINS_TOTAL + 4],
            &14u32.to_le_bytes()
        );
        assert!(bytes[OFF_RESERVED..].iter().all(|&b| b == 0));
    }

    #[test]
    fn header_round_trips_and_checks_its_crc() {
        let h = Header {
            version: VERSION,
            params: TableParams::new(3, 5, &ModelConfig::default()),
            created: Nanos(42),
        };
        let mut b = h.encode();
        let len = h.params.file_len();
        assert_eq!(Header::decode(&b, len).unwrap(), h);
        assert!(matches!(
            Header::decode(&b, len + 1),
            Err(ErrorKind::Geometry { .. })
        ));
        b[H_DEALERS] ^= 1;
        assert!(matches!(
            Header::decode(&b, len),
            Err(ErrorKind::HeaderCrc { .. })
        ));
    }

    #[test]
    fn seqlock_refuses_an_odd_row_and_reads_a_stable_one() {
        let row: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
        let mut out = [0u64; 3];
        seqlock_write(&row, &[1, 2, 3]);
        assert_eq!(seqlock_try_read(&row, &mut out), Some(2));
        assert_eq!(out, [1, 2, 3]);
        row[0].store(3, Ordering::Relaxed);
        assert_eq!(seqlock_read(&row, &mut out, 5), None);
    }
}
