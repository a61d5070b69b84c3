//! What other threads tell the engine about selection, and how it is journaled.
//!
//! Owns the payloads of `rfq::engine::Event::RulesReload` (rules reloaded by the watcher, or
//! refused with `file:line:column: reason`) and `Event::ScoreUpdate` (what the scoring thread
//! wrote to the score tables), the message that carries either through `inbox` to the engine
//! thread ([`ToEngine`]), and the byte layout of the journal records they become
//! (`rfq::outbox::Record::{RulesReload, TcaExecution, ScoreUpdate}`): [`encode_record`] and
//! [`decode_record`], into and from a caller's buffer, without allocating on encode and
//! without panicking on any input. It does no I/O and knows nothing of threads.
//!
//! # Payload layouts (little-endian; the journal's record kinds 5, 6, 7)
//!
//! Byte 0 of each payload is a sub-kind (the journal's shared first byte of kinds 3, 5-8):
//! 16 rules reload, 17 TCA execution, 18 score update. Stable codes; never reused.
//!
//! Rules reload (kind 5 `reload`, sub-kind 16), 24 bytes then the reason:
//!
//! | off | size | field |
//! | ---: | ---: | --- |
//! | 0 | 1 | sub-kind 16 |
//! | 1 | 1 | outcome: 1 installed, 2 refused (the rules in force stay) |
//! | 2 | 2 | `reason_len` (u16, at most [`MAX_REASON_BYTES`]) |
//! | 4 | 4 | reserved, 0 |
//! | 8 | 8 | `seq`: load sequence of the installed rules (0 when refused) |
//! | 16 | 8 | `hash`: FNV-1a 64 of the installed file (0 when refused) |
//! | 24 | n | reason, UTF-8 (`file:line:column: reason`; empty when installed) |
//!
//! TCA execution (kind 6 `tca`, sub-kind 17), 80 bytes; prices and bps are IEEE-754 f64
//! (NaN: unknown):
//!
//! | off | size | field |
//! | ---: | ---: | --- |
//! | 0 | 1 | sub-kind 17 |
//! | 1 | 1 | side: 1 buy, 2 sell |
//! | 2 | 2 | dealer (u16, index in `config/dealers.toml`) |
//! | 4 | 4 | reserved, 0 |
//! | 8 | 8 | rfq (the engine's RFQ sequence number) |
//! | 16 | 8 | at (ns since the Unix epoch: the execution) |
//! | 24 | 8 | qty |
//! | 32 | 8 | arrival mid |
//! | 40 | 8 | execution price |
//! | 48 | 8 | implementation shortfall, bps |
//! | 56 | 8 | price improvement vs arrival, bps |
//! | 64 | 8 | cover price |
//! | 72 | 8 | vs cover, bps |
//!
//! Score update (kind 7 `score`, sub-kind 18), 88 bytes: one observation added to a dealer's
//! rows (and the pooled rows) in every segment of the order:
//!
//! | off | size | field |
//! | ---: | ---: | --- |
//! | 0 | 1 | sub-kind 18 |
//! | 1 | 1 | observation: 1 rfq sent, 2 declined, 3 quoted, 4 late or invalid, 5 won, 6 markout, 7 drift, 8 competitiveness (quote vs its peers; since the yardstick's attribution, same layout), 9 net markout (the winner's markout at the leakage horizon net of the desk's own impact; same layout) |
//! | 2 | 2 | dealer (u16) |
//! | 4 | 1 | flags: bit 0 segment keys present, bit 1 vs-cover present (won) |
//! | 5 | 1 | markout horizon index (markout; else 0) |
//! | 6 | 2 | reserved, 0 |
//! | 8 | 8 | rfq |
//! | 16 | 8 | at (ns) |
//! | 24 | 8 | value (f64): response seconds (declined, quoted), price improvement bps vs arrival (won), markout bps, drift bps (attributed), competitiveness bps, net markout bps; else 0 |
//! | 32 | 8 | vs cover bps (f64; won with bit 1; else 0) |
//! | 40 | 48 | segment keys (6 x u64): all, asset class, sector x rating, issuer, maturity, size (0 without bit 0) |

use crate::rfq::outbox::Record;
use crate::rfq::types::{DealerId, Side};
use crate::select::model::{Observation, MARKOUT_HORIZONS};
use crate::select::rows::{ScoreRow, MAX_ROWS_PER_UPDATE, ROWS_PER_UPDATE};
use crate::select::rules::RuleSet;
use crate::select::segment::{SegmentKey, SegmentKeys};
use crate::select::tca::{ExecutionTca, TcaUpdate};
use crate::time::Nanos;

/// What the rules watcher found.
#[derive(Debug)]
pub enum RulesReload {
    /// A valid new rule set: install it.
    Installed(Box<RuleSet>),
    /// The file changed (or SIGHUP came) but is unusable: `file:line:column: reason`.
    Refused { error: Box<str> },
}

/// Most updates (plus executions) in one `ScoreUpdate`: the engine journals each, within
/// its outbox's bound.
pub const MAX_SCORE_BATCH: usize = 256;

/// What the scoring thread wrote to the score tables since its last report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreUpdate {
    /// Observations applied, in order (at most `MAX_SCORE_BATCH`).
    pub updates: Vec<TcaUpdate>,
    /// Executions analysed (at most `MAX_SCORE_BATCH`).
    pub executions: Vec<ExecutionTca>,
    /// The rows `updates` changed, as the scoring thread wrote them (copied out of the
    /// tables on its side; at most `rows::MAX_ROWS_PER_UPDATE`): what the engine's selector
    /// installs, journaled as the engine input (`journal::records::EngineInput::ScoreRows`).
    pub rows: Vec<ScoreRow>,
}

impl ScoreUpdate {
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.executions.is_empty() && self.rows.is_empty()
    }
    /// Room for another update (with its rows) and another execution.
    pub fn is_full(&self) -> bool {
        self.updates.len() >= MAX_SCORE_BATCH
            || self.executions.len() >= MAX_SCORE_BATCH
            || self.rows.len() + ROWS_PER_UPDATE > MAX_ROWS_PER_UPDATE
    }
}

/// A message for the engine thread from the scoring thread or the rules watcher.
#[derive(Debug)]
pub enum ToEngine {
    Rules(RulesReload),
    Scores(ScoreUpdate),
    /// A market mid from a market-data file replay (`mid_replay`): `Event::MarketMid`.
    Mid(MarketMid),
}

/// One instrument's mid, held inline (no allocation on its way to the engine).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketMid {
    /// ISIN or CUSIP, as the security master knows it.
    pub instrument: crate::rfq::types::FixId,
    pub mid: f64,
}

// ---------------------------------------------------------------------------------------------
// Journal payloads

pub const SUB_KIND_RULES_RELOAD: u8 = 16;
pub const SUB_KIND_TCA_EXECUTION: u8 = 17;
pub const SUB_KIND_SCORE_UPDATE: u8 = 18;
/// The journal record kinds these payloads go in (`journal::format::RecordKind` codes).
pub const KIND_RELOAD: u16 = 5;
pub const KIND_TCA: u16 = 6;
pub const KIND_SCORE: u16 = 7;

pub const RELOAD_HEADER_LEN: usize = 24;
pub const TCA_EXECUTION_LEN: usize = 80;
pub const SCORE_UPDATE_LEN: usize = 88;
/// Longest reason kept in a reload record (longer ones are cut at a character boundary).
pub const MAX_REASON_BYTES: usize = 1024;
/// A buffer this large holds any payload of this module.
pub const MAX_PAYLOAD_LEN: usize = RELOAD_HEADER_LEN + MAX_REASON_BYTES;

const _: () = assert!(TCA_EXECUTION_LEN == 24 + 7 * 8);
const _: () = assert!(SCORE_UPDATE_LEN == 40 + 6 * 8);
const _: () = assert!(MAX_REASON_BYTES <= u16::MAX as usize);

/// The buffer is too small for the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    pub needed: usize,
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Truncated { len: usize, needed: usize },
    UnknownSubKind(u8),
    BadField(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated { len, needed } => {
                write!(f, "payload of {len} bytes, {needed} needed")
            }
            DecodeError::UnknownSubKind(k) => write!(f, "unknown sub-kind {k}"),
            DecodeError::BadField(w) => write!(f, "bad {w}"),
        }
    }
}

impl std::error::Error for DecodeError {}

struct Writer<'b> {
    buf: &'b mut [u8],
}

impl Writer<'_> {
    fn put(&mut self, off: usize, b: &[u8]) {
        self.buf[off..off + b.len()].copy_from_slice(b);
    }
    fn u64(&mut self, off: usize, v: u64) {
        self.put(off, &v.to_le_bytes());
    }
    fn f64(&mut self, off: usize, v: f64) {
        self.put(off, &v.to_le_bytes());
    }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

fn f64_at(b: &[u8], off: usize) -> f64 {
    f64::from_bits(u64_at(b, off))
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// The journal record kind of one of this module's records; `None` for other records.
pub fn record_kind(r: &Record) -> Option<u16> {
    match r {
        Record::RulesReload { .. } => Some(KIND_RELOAD),
        Record::TcaExecution(_) => Some(KIND_TCA),
        Record::ScoreUpdate(_) => Some(KIND_SCORE),
        _ => None,
    }
}

/// Encodes one of this module's records into `buf`; returns the payload's length, `Ok(0)`
/// for a record this module does not own.
pub fn encode_record(r: &Record, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
    match r {
        Record::RulesReload { seq, hash, refused } => {
            let reason = refused.as_deref().map_or("", |s| cut(s, MAX_REASON_BYTES));
            let len = RELOAD_HEADER_LEN + reason.len();
            if buf.len() < len {
                return Err(BufferTooSmall { needed: len });
            }
            let mut w = Writer { buf };
            w.put(
                0,
                &[SUB_KIND_RULES_RELOAD, if refused.is_some() { 2 } else { 1 }],
            );
            w.put(2, &(reason.len() as u16).to_le_bytes());
            w.put(4, &[0; 4]);
            w.u64(8, *seq);
            w.u64(16, *hash);
            w.put(RELOAD_HEADER_LEN, reason.as_bytes());
            Ok(len)
        }
        Record::TcaExecution(e) => {
            if buf.len() < TCA_EXECUTION_LEN {
                return Err(BufferTooSmall {
                    needed: TCA_EXECUTION_LEN,
                });
            }
            let mut w = Writer { buf };
            w.put(0, &[SUB_KIND_TCA_EXECUTION, e.side.fix() - b'0']);
            w.put(2, &e.dealer.0.to_le_bytes());
            w.put(4, &[0; 4]);
            w.u64(8, e.rfq);
            w.u64(16, e.at.0);
            for (i, v) in [
                e.qty,
                e.arrival_mid,
                e.exec_px,
                e.shortfall_bps,
                e.price_improvement_bps,
                e.cover_px,
                e.vs_cover_bps,
            ]
            .into_iter()
            .enumerate()
            {
                w.f64(24 + 8 * i, v);
            }
            Ok(TCA_EXECUTION_LEN)
        }
        Record::ScoreUpdate(u) => {
            if buf.len() < SCORE_UPDATE_LEN {
                return Err(BufferTooSmall {
                    needed: SCORE_UPDATE_LEN,
                });
            }
            let (code, horizon, value, cover) = match u.obs {
                Observation::RfqSent => (1, 0, 0.0, None),
                Observation::Declined { response_s } => (2, 0, response_s, None),
                Observation::Quoted { response_s } => (3, 0, response_s, None),
                Observation::LateOrInvalid => (4, 0, 0.0, None),
                Observation::Won {
                    price_improvement_bps,
                    vs_cover_bps,
                } => (5, 0, price_improvement_bps, vs_cover_bps),
                Observation::Markout { horizon, bps } => (6, horizon as u8, bps, None),
                Observation::Drift { bps } => (7, 0, bps, None),
                Observation::Competitiveness { bps } => (8, 0, bps, None),
                Observation::NetMarkout { bps } => (9, 0, bps, None),
            };
            let flags = u8::from(u.keys.is_some()) | (u8::from(cover.is_some()) << 1);
            let mut w = Writer { buf };
            w.put(0, &[SUB_KIND_SCORE_UPDATE, code]);
            w.put(2, &u.dealer.0.to_le_bytes());
            w.put(4, &[flags, horizon, 0, 0]);
            w.u64(8, u.rfq);
            w.u64(16, u.at.0);
            w.f64(24, value);
            w.f64(32, cover.unwrap_or(0.0));
            let keys = u.keys.map_or([SegmentKey::EMPTY; 6], |k| k.update_order());
            for (i, k) in keys.iter().enumerate() {
                w.u64(40 + 8 * i, k.0);
            }
            Ok(SCORE_UPDATE_LEN)
        }
        _ => Ok(0),
    }
}

/// The longest prefix of `s` of at most `max` bytes ending on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn need(b: &[u8], needed: usize) -> Result<(), DecodeError> {
    if b.len() < needed {
        Err(DecodeError::Truncated {
            len: b.len(),
            needed,
        })
    } else {
        Ok(())
    }
}

/// Decodes a payload written by [`encode_record`] (allocates the reason of a reload).
pub fn decode_record(b: &[u8]) -> Result<Record, DecodeError> {
    need(b, 1)?;
    match b[0] {
        SUB_KIND_RULES_RELOAD => {
            need(b, RELOAD_HEADER_LEN)?;
            let n = usize::from(u16_at(b, 2));
            need(b, RELOAD_HEADER_LEN + n)?;
            let reason = std::str::from_utf8(&b[RELOAD_HEADER_LEN..RELOAD_HEADER_LEN + n])
                .map_err(|_| DecodeError::BadField("reason (not UTF-8)"))?;
            let refused = match b[1] {
                1 => None,
                2 => Some(reason.into()),
                _ => return Err(DecodeError::BadField("reload outcome")),
            };
            Ok(Record::RulesReload {
                seq: u64_at(b, 8),
                hash: u64_at(b, 16),
                refused,
            })
        }
        SUB_KIND_TCA_EXECUTION => {
            need(b, TCA_EXECUTION_LEN)?;
            let side = match b[1] {
                1 => Side::Buy,
                2 => Side::Sell,
                _ => return Err(DecodeError::BadField("side")),
            };
            let f = |i: usize| f64_at(b, 24 + 8 * i);
            Ok(Record::TcaExecution(ExecutionTca {
                rfq: u64_at(b, 8),
                dealer: DealerId(u16_at(b, 2)),
                side,
                qty: f(0),
                arrival_mid: f(1),
                exec_px: f(2),
                shortfall_bps: f(3),
                price_improvement_bps: f(4),
                cover_px: f(5),
                vs_cover_bps: f(6),
                at: Nanos(u64_at(b, 16)),
            }))
        }
        SUB_KIND_SCORE_UPDATE => {
            need(b, SCORE_UPDATE_LEN)?;
            let flags = b[4];
            let horizon = usize::from(b[5]);
            let value = f64_at(b, 24);
            let cover = (flags & 2 != 0).then(|| f64_at(b, 32));
            let obs = match b[1] {
                1 => Observation::RfqSent,
                2 => Observation::Declined { response_s: value },
                3 => Observation::Quoted { response_s: value },
                4 => Observation::LateOrInvalid,
                5 => Observation::Won {
                    price_improvement_bps: value,
                    vs_cover_bps: cover,
                },
                6 if horizon < MARKOUT_HORIZONS => Observation::Markout {
                    horizon,
                    bps: value,
                },
                6 => return Err(DecodeError::BadField("markout horizon")),
                7 => Observation::Drift { bps: value },
                8 => Observation::Competitiveness { bps: value },
                9 => Observation::NetMarkout { bps: value },
                _ => return Err(DecodeError::BadField("observation")),
            };
            let k = |i: usize| SegmentKey(u64_at(b, 40 + 8 * i));
            let keys = (flags & 1 != 0).then(|| SegmentKeys {
                all: k(0),
                asset_class: k(1),
                sector_rating: k(2),
                issuer: k(3),
                maturity: k(4),
                size: k(5),
            });
            Ok(Record::ScoreUpdate(TcaUpdate {
                rfq: u64_at(b, 8),
                dealer: DealerId(u16_at(b, 2)),
                keys,
                obs,
                at: Nanos(u64_at(b, 16)),
            }))
        }
        other => Err(DecodeError::UnknownSubKind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::segment::{Buckets, RatingBucket, SegmentInput};

    fn keys() -> SegmentKeys {
        SegmentKeys::of(
            &SegmentInput {
                asset_class: b"ig_corp",
                issuer: b"ACME",
                sector: b"Industrials",
                rating: RatingBucket::A,
                years_to_maturity: 3.0,
                notional: 5e6,
            },
            &Buckets::default_maturity_years(),
            &Buckets::default_size_notional(),
        )
    }

    #[test]
    fn records_round_trip() {
        let mut buf = [0u8; MAX_PAYLOAD_LEN];
        let records = [
            Record::RulesReload {
                seq: 3,
                hash: 0xdead_beef,
                refused: None,
            },
            Record::RulesReload {
                seq: 0,
                hash: 0,
                refused: Some("rules.toml:4:9: unknown field".into()),
            },
            Record::TcaExecution(ExecutionTca {
                rfq: 9,
                dealer: DealerId(4),
                side: Side::Sell,
                qty: 1e6,
                arrival_mid: 100.0,
                exec_px: 100.1,
                shortfall_bps: -10.0,
                price_improvement_bps: 10.0,
                cover_px: f64::NAN,
                vs_cover_bps: f64::NAN,
                at: Nanos(77),
            }),
            Record::ScoreUpdate(TcaUpdate {
                rfq: 9,
                dealer: DealerId(4),
                keys: Some(keys()),
                obs: Observation::Won {
                    price_improvement_bps: 10.0,
                    vs_cover_bps: Some(2.5),
                },
                at: Nanos(78),
            }),
            Record::ScoreUpdate(TcaUpdate {
                rfq: 10,
                dealer: DealerId(1),
                keys: None,
                obs: Observation::Markout {
                    horizon: 2,
                    bps: -3.0,
                },
                at: Nanos(79),
            }),
        ];
        for r in &records {
            let n = encode_record(r, &mut buf).unwrap();
            assert!(n > 0);
            let back = decode_record(&buf[..n]).unwrap();
            match (r, &back) {
                (Record::TcaExecution(a), Record::TcaExecution(b)) => {
                    assert_eq!(a.rfq, b.rfq);
                    assert_eq!(a.exec_px, b.exec_px);
                    assert!(b.cover_px.is_nan());
                }
                _ => assert_eq!(&back, r),
            }
            // Every truncation is refused, never a panic.
            for cut in 0..n {
                assert!(decode_record(&buf[..cut]).is_err(), "{r:?} cut at {cut}");
            }
        }
        assert_eq!(
            encode_record(&records[2], &mut [0u8; 10]),
            Err(BufferTooSmall {
                needed: TCA_EXECUTION_LEN
            })
        );
        assert_eq!(
            decode_record(&[99, 0, 0]),
            Err(DecodeError::UnknownSubKind(99))
        );
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let r = Record::RulesReload {
            seq: 0,
            hash: 0,
            refused: Some(long.into()),
        };
        let mut buf = [0u8; MAX_PAYLOAD_LEN];
        let n = encode_record(&r, &mut buf).unwrap();
        assert_eq!(n, RELOAD_HEADER_LEN + MAX_REASON_BYTES);
        assert!(decode_record(&buf[..n]).is_ok());
    }
}
