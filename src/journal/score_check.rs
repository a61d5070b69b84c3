//! Restart: the dealer statistics in the score tables, verified against (or rebuilt from) the
//! score rows the journal holds.
//!
//! Owns reading the journal's score rows (every `score-snapshot` and `score-update` input:
//! the rows the scoring thread wrote, as the engine was given them; the latest copy of each
//! (dealer, segment) wins), comparing them with a score table bit for bit, and writing the
//! journal's copy into the table for the rows that differ. Rows journaled in another
//! score-table format version (an older build's: their bytes mean something else) are
//! counted and never restored. Rows the table holds and the
//! journal never saw are counted and left alone (a table older than the journal). Start-up
//! work, before the scoring thread writes: it reads the whole journal and allocates. It never
//! prints (the caller logs what it returns) and stops reading at the first damaged record
//! (recovery decides about those).

use std::collections::BTreeMap;
use std::path::Path;

use super::format::RecordKind;
use super::reader::JournalReader;
use super::records::{decode_input, EngineInput};
use crate::select::model::RowStats;
use crate::select::rows::{journal_row_format, ScoreRow, POOLED, ROW_BYTES};
use crate::select::segment::SegmentKey;
use crate::select::table::{
    PlaceError, ReadError, ScoreReader, ScoreWriter, VERSION as TABLE_VERSION,
};

/// Most differing rows a check keeps in detail (the rest are only counted).
pub const MAX_DIFFS_KEPT: usize = 1024;

/// The score rows a journal holds: (dealer or `POOLED`, key) -> the latest copy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalRows {
    pub rows: BTreeMap<(u32, SegmentKey), RowStats>,
    /// Score inputs read (records).
    pub inputs: u64,
    /// Whether reading stopped at a damaged record (what follows it is not counted).
    pub stopped_early: bool,
    /// Journaled rows in another score-table format version than this build's
    /// (`table::VERSION`; an older build's), left out: never compared nor restored.
    pub other_format_rows: u64,
}

/// Reads every score row the journal in `dir` holds.
pub fn journal_rows(dir: &Path) -> Result<JournalRows, String> {
    let reader = JournalReader::open(dir).map_err(|e| e.to_string())?;
    let mut out = JournalRows::default();
    for item in reader.records() {
        let Ok(r) = item else {
            out.stopped_early = true;
            break;
        };
        let v = r.record;
        if v.kind() != Some(RecordKind::EngineInput) {
            continue;
        }
        if let Ok(EngineInput::ScoreRows { rows, .. }) = decode_input(v.payload) {
            out.inputs += 1;
            for bytes in rows.chunks_exact(ROW_BYTES) {
                let mut b = [0u8; ROW_BYTES];
                b.copy_from_slice(bytes);
                if journal_row_format(&b) != TABLE_VERSION {
                    out.other_format_rows += 1;
                    continue;
                }
                let row = ScoreRow::decode(&b);
                out.rows.insert((row.dealer, row.key), row.stats);
            }
        }
    }
    Ok(out)
}

/// One (dealer, segment) row on which the table and the journal disagree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowDiff {
    /// The dealer, or `rows::POOLED`.
    pub dealer: u32,
    pub key: SegmentKey,
    pub journal: RowStats,
    /// `None`: the table has no such row.
    pub table: Option<RowStats>,
}

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreCheck {
    /// Journal rows compared with the table.
    pub checked: usize,
    pub matching: usize,
    /// Rows that differ (or are missing from the table), at most `MAX_DIFFS_KEPT`.
    pub differing: Vec<RowDiff>,
    /// All differing rows, kept or not.
    pub differing_total: usize,
    /// Journal rows for a dealer past the table's capacity (cannot be compared).
    pub out_of_range: usize,
    /// Rows the table holds that the journal never saw (left alone).
    pub table_only: usize,
}

impl ScoreCheck {
    pub fn is_match(&self) -> bool {
        self.differing_total == 0
    }
}

/// The table's dealer block for a journal dealer number.
fn table_dealer(dealer: u32, agg: u32) -> Option<u32> {
    if dealer == POOLED {
        Some(agg)
    } else if dealer < agg {
        Some(dealer)
    } else {
        None
    }
}

/// Compares the journal's rows with `table`, bit for bit.
pub fn verify(journal: &JournalRows, table: &ScoreReader) -> ScoreCheck {
    let h = table.header();
    let agg = h.aggregate_dealer();
    let mut c = ScoreCheck::default();
    for (&(dealer, key), stats) in &journal.rows {
        let Some(d) = table_dealer(dealer, agg) else {
            c.out_of_range += 1;
            continue;
        };
        c.checked += 1;
        let found = table.find(d, key).ok().flatten();
        if found.as_ref() == Some(stats) {
            c.matching += 1;
            continue;
        }
        c.differing_total += 1;
        if c.differing.len() < MAX_DIFFS_KEPT {
            c.differing.push(RowDiff {
                dealer,
                key,
                journal: *stats,
                table: found,
            });
        }
    }
    let segs = u64::from(h.params.segments_per_dealer.max(1));
    for row in 0..h.rows() {
        let Ok(r) = table.read_row(row) else { continue };
        if r.key.is_empty() {
            continue;
        }
        let d = (row / segs) as u32;
        let dealer = if d == agg { POOLED } else { d };
        if !journal.rows.contains_key(&(dealer, r.key)) {
            c.table_only += 1;
        }
    }
    c
}

/// Why a rebuild stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildError {
    Place(PlaceError),
    Store(ReadError),
}

impl std::fmt::Display for RebuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RebuildError::Place(e) => write!(f, "placing a row: {e}"),
            RebuildError::Store(e) => write!(f, "writing a row: {e}"),
        }
    }
}

impl std::error::Error for RebuildError {}

/// Writes the journal's copy of every row that differs into the table (the table's only
/// writer: before the scoring thread starts). Returns the rows written.
pub fn rebuild(journal: &JournalRows, table: &mut ScoreWriter) -> Result<usize, RebuildError> {
    let agg = table.header().aggregate_dealer();
    let reader = table.reader();
    let mut written = 0;
    for (&(dealer, key), stats) in &journal.rows {
        let Some(d) = table_dealer(dealer, agg) else {
            continue;
        };
        if reader.find(d, key).ok().flatten().as_ref() == Some(stats) {
            continue;
        }
        let row = table.place(d, key).map_err(RebuildError::Place)?;
        table.store_row(row, stats).map_err(RebuildError::Store)?;
        written += 1;
    }
    Ok(written)
}

/// One line per differing row, for the log: `dealer 3 segment 00ab..: journal sent=.. ..,
/// table sent=.. ..` (`None` in the table: missing).
pub fn describe_diff(d: &RowDiff) -> String {
    let who = if d.dealer == POOLED {
        "pooled".to_string()
    } else {
        format!("dealer {}", d.dealer)
    };
    let show = |s: &RowStats| {
        format!(
            "sent={} quotes={} wins={} updated={}",
            s.rfqs_sent, s.quotes, s.wins, s.last_update_ns
        )
    };
    format!(
        "{who} segment {:016x}: journal {}, table {}",
        d.key.0,
        show(&d.journal),
        d.table.as_ref().map_or("missing".to_string(), show)
    )
}
