//! Score rows as engine inputs: the engine's own copy of the score tables, filled only from
//! what it is given, so that `rfq-journal replay` rebuilds the same scores from the journal.
//!
//! Owns `ScoreRow` (one (dealer, segment) row of the score tables, as the scoring thread
//! wrote it) with its 128-byte journal layout, the copy-out on the writing side (the rows an
//! update touched, `copy_updated_rows`; every occupied row at start-up, `snapshot`), and
//! `RowScores`, the `ScoreSource` the engine's selector reads: a bounded open-addressing map
//! (dealer, key) -> row statistics, sized at construction, installed from
//! `Event::ScoreUpdate`'s rows and never from the live memory-mapped table. A full map
//! refuses further rows and counts them (the same in a run and its replay). No clock, no
//! I/O; `RowScores` does not allocate after construction.

use crate::rfq::types::DealerId;
use crate::select::model::{back_off, metrics, normalise, ModelConfig, RowStats};
use crate::select::rules::ComponentScores;
use crate::select::scored::{prior_scores, DealerScores, ScoreSource};
use crate::select::segment::{SegmentKey, SegmentKeys};
use crate::select::table::{RowPayload, RowRecord, ScoreReader, ROW_SIZE, ROW_WORDS};
use crate::select::tca::{update_keys, TcaUpdate};
use crate::time::Nanos;

/// The dealer number of the pooled (all dealers) rows, whatever block the table keeps them in.
pub const POOLED: u32 = u32::MAX;
/// Bytes of one row in the journal: dealer (u32), the score-table format version of what
/// follows (u32; 0 in rows written before it was recorded: version 1), then the table row's
/// bytes 8..128 (`select/TABLE_FORMAT.md`: key, last update, statistics).
pub const ROW_BYTES: usize = 8 + (ROW_WORDS - 1) * 8;
/// Rows one update adds to (its dealer and the pooled rows, in at most six segments).
pub const ROWS_PER_UPDATE: usize = 12;
/// Most rows in one `ScoreUpdate` (and one journal input record).
pub const MAX_ROWS_PER_UPDATE: usize = 256;

const _: () = assert!(ROW_BYTES == ROW_SIZE);
const _: () = assert!(MAX_ROWS_PER_UPDATE >= ROWS_PER_UPDATE);

/// One score-table row: whose, which segment, and its statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRow {
    /// The dealer (`DealerId` as u32), or [`POOLED`].
    pub dealer: u32,
    pub key: SegmentKey,
    pub stats: RowStats,
}

impl ScoreRow {
    /// The dealer this row belongs to, `None` for the pooled rows.
    pub fn dealer_id(&self) -> Option<DealerId> {
        u16::try_from(self.dealer).ok().map(DealerId)
    }

    /// Writes the row's [`ROW_BYTES`] bytes.
    pub fn encode(&self, out: &mut [u8; ROW_BYTES]) {
        out[0..4].copy_from_slice(&self.dealer.to_le_bytes());
        out[4..8].copy_from_slice(&crate::select::table::VERSION.to_le_bytes());
        let w = RowRecord {
            key: self.key,
            stats: self.stats,
        }
        .encode();
        for (i, word) in w.iter().enumerate() {
            out[8 + 8 * i..16 + 8 * i].copy_from_slice(&word.to_le_bytes());
        }
    }

    /// Reads a row written by [`ScoreRow::encode`] (any bytes decode: floats are bits).
    pub fn decode(b: &[u8; ROW_BYTES]) -> ScoreRow {
        let mut w: RowPayload = [0; ROW_WORDS - 1];
        for (i, word) in w.iter_mut().enumerate() {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[8 + 8 * i..16 + 8 * i]);
            *word = u64::from_le_bytes(x);
        }
        let r = RowRecord::decode(&w);
        ScoreRow {
            dealer: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            key: r.key,
            stats: r.stats,
        }
    }
}

/// The score-table format version of a journaled row's statistics (bytes 4..8; 0, written
/// by a build that did not record it, is version 1). `ScoreRow::decode` reads the bytes with
/// this build's layout whatever it says: check it before trusting the statistics.
pub fn journal_row_format(b: &[u8; ROW_BYTES]) -> u32 {
    match u32::from_le_bytes([b[4], b[5], b[6], b[7]]) {
        0 => 1,
        v => v,
    }
}

/// Puts `row` into `rows`, replacing an earlier copy of the same (dealer, key).
pub fn push_row(rows: &mut Vec<ScoreRow>, row: ScoreRow) {
    match rows
        .iter_mut()
        .find(|r| r.dealer == row.dealer && r.key == row.key)
    {
        Some(r) => *r = row,
        None => rows.push(row),
    }
}

/// The writing side, right after `tca::apply(u)`: the rows `u` added to (its dealer's and the
/// pooled ones), as they are now, appended to `out` (an earlier copy of a row is replaced).
/// A row the table refused (full) is not there and is not copied.
pub fn copy_updated_rows(reader: &ScoreReader, u: &TcaUpdate, out: &mut Vec<ScoreRow>) {
    let agg = reader.header().aggregate_dealer();
    for key in update_keys(u.keys.as_ref()) {
        for (dealer, as_dealer) in [
            (u32::from(u.dealer.0), u32::from(u.dealer.0)),
            (agg, POOLED),
        ] {
            if let Ok(Some(stats)) = reader.find(dealer, key) {
                push_row(
                    out,
                    ScoreRow {
                        dealer: as_dealer,
                        key,
                        stats,
                    },
                );
            }
        }
    }
}

/// Every occupied row of a table (start-up: what the engine starts from). Rows being
/// rewritten at that moment are skipped (the router's scoring thread has not started yet).
pub fn snapshot(reader: &ScoreReader) -> Vec<ScoreRow> {
    let h = reader.header();
    let segs = u64::from(h.params.segments_per_dealer.max(1));
    let agg = h.aggregate_dealer();
    let mut rows = Vec::new();
    for row in 0..h.rows() {
        let Ok(r) = reader.read_row(row) else {
            continue;
        };
        if r.key.is_empty() {
            continue;
        }
        let dealer = (row / segs) as u32;
        rows.push(ScoreRow {
            dealer: if dealer == agg { POOLED } else { dealer },
            key: r.key,
            stats: r.stats,
        });
    }
    rows
}

/// Rows the engine keeps for a table of `dealers` dealer blocks (plus the pooled block) of
/// `segments_per_dealer` rows each (`[scoring]`): the router and its replay size the same.
pub fn capacity_for(dealers: u32, segments_per_dealer: u32) -> usize {
    (dealers as usize + 1) * segments_per_dealer as usize
}

const EMPTY_SLOT: u32 = u32::MAX;

/// The engine's copy of the score rows it was given, and the scores computed from it
/// exactly as `TableScores` computes them from the table.
#[derive(Debug, Clone)]
pub struct RowScores {
    model: ModelConfig,
    /// Open addressing over `index`: the position in `rows`, or `EMPTY_SLOT`.
    index: Box<[u32]>,
    rows: Vec<ScoreRow>,
    max_rows: usize,
    /// Rows refused because `max_rows` were held.
    refused: u64,
}

fn slot_hash(dealer: u32, key: SegmentKey) -> usize {
    let h = (key.0 ^ u64::from(dealer).wrapping_mul(0xA24B_AED4_963E_E407))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 24) as usize
}

impl RowScores {
    /// Room for `max_rows` rows (at least 1), scored with `model`.
    pub fn new(model: ModelConfig, max_rows: usize) -> RowScores {
        let max_rows = max_rows.clamp(1, (u32::MAX / 2) as usize);
        let slots = (max_rows * 2).next_power_of_two();
        RowScores {
            model,
            index: vec![EMPTY_SLOT; slots].into_boxed_slice(),
            rows: Vec::with_capacity(max_rows),
            max_rows,
            refused: 0,
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows refused because the copy was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    fn position(&self, dealer: u32, key: SegmentKey) -> Result<usize, usize> {
        let mask = self.index.len() - 1;
        let mut s = slot_hash(dealer, key) & mask;
        loop {
            match self.index[s] {
                EMPTY_SLOT => return Err(s),
                i => {
                    let r = &self.rows[i as usize];
                    if r.dealer == dealer && r.key == key {
                        return Ok(i as usize);
                    }
                }
            }
            s = (s + 1) & mask;
        }
    }

    /// The row of (`dealer`, `key`), if given.
    pub fn get(&self, dealer: u32, key: SegmentKey) -> Option<&RowStats> {
        self.position(dealer, key).ok().map(|i| &self.rows[i].stats)
    }

    /// Installs `rows` (a later copy of a row replaces the earlier one).
    pub fn install(&mut self, rows: &[ScoreRow]) {
        for r in rows {
            if r.key.is_empty() {
                continue;
            }
            match self.position(r.dealer, r.key) {
                Ok(i) => self.rows[i] = *r,
                Err(slot) if self.rows.len() < self.max_rows => {
                    self.index[slot] = self.rows.len() as u32;
                    self.rows.push(*r);
                }
                Err(_) => self.refused += 1,
            }
        }
    }
}

impl ScoreSource for RowScores {
    fn components(&self, dealer: DealerId, keys: &SegmentKeys, now: Nanos) -> Option<DealerScores> {
        let d = u32::from(dealer.0);
        let path = keys.primary_path();
        let found = back_off(&path, now, &self.model, |k| self.get(d, k).copied())?;
        let pooled = self.get(POOLED, found.key).copied().unwrap_or_default();
        let m = metrics(&found.own, &pooled, now, &self.model);
        let s = normalise(&m, self.model.speed_scale_s);
        Some(DealerScores {
            scores: ComponentScores {
                fill_rate: s.fill,
                price_improvement: s.price_improvement,
                leakage: s.leakage,
                speed: s.speed,
                loser_leakage: s.loser_leakage,
            },
            observations: m.observations,
            segment: found.key.level(),
        })
    }

    fn prior(&self) -> ComponentScores {
        prior_scores(&self.model)
    }

    fn install_rows(&mut self, rows: &[ScoreRow]) -> bool {
        self.install(rows);
        true
    }

    fn follows_rows(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(dealer: u32, key: u64, sent: f32) -> ScoreRow {
        ScoreRow {
            dealer,
            key: SegmentKey(key),
            stats: RowStats {
                last_update_ns: 42,
                rfqs_sent: sent,
                markout_n: [1.0, 2.0, 3.0],
                wins_total: 7,
                ..RowStats::default()
            },
        }
    }

    #[test]
    fn rows_round_trip_through_their_bytes() {
        let r = row(POOLED, 0xdead_beef_0000_0001, 3.5);
        let mut b = [0u8; ROW_BYTES];
        r.encode(&mut b);
        assert_eq!(ScoreRow::decode(&b), r);
        assert_eq!(r.dealer_id(), None);
        assert_eq!(row(4, 1, 1.0).dealer_id(), Some(DealerId(4)));
    }

    #[test]
    fn install_replaces_finds_and_refuses_past_the_bound() {
        let mut s = RowScores::new(ModelConfig::default(), 3);
        s.install(&[row(0, 1, 1.0), row(1, 1, 2.0), row(0, 1, 5.0)]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(0, SegmentKey(1)).map(|r| r.rfqs_sent), Some(5.0));
        assert_eq!(s.get(1, SegmentKey(1)).map(|r| r.rfqs_sent), Some(2.0));
        assert_eq!(s.get(2, SegmentKey(1)), None);
        s.install(&[row(2, 9, 1.0), row(3, 9, 1.0), row(4, 0, 1.0)]);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.refused(),
            1,
            "the fourth row does not fit; an empty key is ignored"
        );
    }

    /// A dealer's record in other asset classes never stands for it in the order's: thin in
    /// the order's asset class (under `min_observations`), it scores the prior and is tried,
    /// however much (and however bad) data its `all` row holds; with enough there, its own.
    #[test]
    fn a_dealer_thin_in_the_orders_asset_class_scores_the_prior_whatever_it_did_elsewhere() {
        use crate::select::segment::SegmentLevel;
        let model = ModelConfig::default();
        let now = Nanos(1_700_000_000_000_000_000);
        let keys = SegmentKeys::example();
        let stats = |sent: f32| RowStats {
            last_update_ns: now.0,
            rfqs_sent: sent,
            responses: sent,
            quotes: sent,
            response_s_sum: 2.0 * sent,
            // Its winners' prices reverted 80 bps: far worse than the prior's 0.
            net_markout_bps_sum: -80.0 * sent,
            net_markout_n: sent,
            ..RowStats::default()
        };
        let at = |dealer: u32, key: SegmentKey, sent: f32| ScoreRow {
            dealer,
            key,
            stats: stats(sent),
        };
        let mut s = RowScores::new(model.clone(), 16);
        // Dealer 0: 400 RFQs elsewhere, 4 in high yield. Dealer 1: 5 in high yield.
        s.install(&[
            at(0, keys.all, 400.0),
            at(0, keys.asset_class, 4.0),
            at(0, keys.issuer, 4.0),
            at(1, keys.all, 5.0),
            at(1, keys.asset_class, 5.0),
            at(POOLED, keys.all, 405.0),
            at(POOLED, keys.asset_class, 9.0),
        ]);
        assert!(s.components(DealerId(0), &keys, now).is_none());
        let one = s
            .components(DealerId(1), &keys, now)
            .expect("enough data in the asset class");
        assert_eq!(one.segment, Some(SegmentLevel::AssetClass));
        assert!(one.scores.leakage < s.prior().leakage - 1.0, "{one:?}");
        // One more RFQ in high yield and dealer 0 is judged on it too.
        s.install(&[at(0, keys.asset_class, 5.0)]);
        let zero = s.components(DealerId(0), &keys, now).expect("now enough");
        assert_eq!(zero.segment, Some(SegmentLevel::AssetClass));
    }

    #[test]
    fn push_row_keeps_the_latest_copy() {
        let mut v = Vec::new();
        push_row(&mut v, row(1, 2, 1.0));
        push_row(&mut v, row(POOLED, 2, 1.0));
        push_row(&mut v, row(1, 2, 9.0));
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].stats.rfqs_sent, 9.0);
    }
}
