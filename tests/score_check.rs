//! Restart checks the score tables against the journal (`journal::score_check`): a table that
//! matches the journal's score rows is verified; one changed behind the journal's back shows
//! the differing (dealer, segment) rows, and a rebuild writes the journal's rows back so it
//! matches again. Rows the journal never saw are counted and left alone.

use rfq_router::journal::score_check::{describe_diff, journal_rows, rebuild, verify};
use rfq_router::journal::tap::JournalTap;
use rfq_router::journal::{Journal, JournalConfig};
use rfq_router::rfq::types::DealerId;
use rfq_router::select::model::{ModelConfig, Observation};
use rfq_router::select::rows::{copy_updated_rows, snapshot, POOLED};
use rfq_router::select::segment::SegmentKey;
use rfq_router::select::table::{ScoreWriter, TableParams};
use rfq_router::select::tca::{apply, TcaOutput, TcaUpdate};
use rfq_router::time::Nanos;
use std::path::{Path, PathBuf};

const T0: Nanos = Nanos(1_700_000_000 * Nanos::PER_SEC);

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("score-check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn observe(w: &mut ScoreWriter, dealer: u16, obs: Observation, at: Nanos) -> TcaUpdate {
    let u = TcaUpdate {
        rfq: 1,
        dealer: DealerId(dealer),
        keys: None,
        obs,
        at,
    };
    apply(w, &ModelConfig::default(), &TcaOutput::Update(u)).unwrap();
    u
}

#[test]
fn tables_are_verified_against_the_journal_and_rebuilt_from_it() {
    let dir = fresh_dir("rebuild");
    let mut table = ScoreWriter::create(
        &dir.join("t.scores"),
        TableParams::new(4, 8, &ModelConfig::default()),
        T0,
    )
    .unwrap();
    observe(&mut table, 0, Observation::RfqSent, T0);
    let (journal, _) = Journal::open(JournalConfig::new(dir.join("journal"))).unwrap();
    let mut tap = JournalTap::new(journal, 2);
    tap.run_start(T0, &[]).unwrap();
    // The run starts from the table (snapshot), then the scoring thread reports an update.
    tap.input_score_rows(T0, true, &snapshot(&table.reader()));
    let u = observe(
        &mut table,
        1,
        Observation::Quoted { response_s: 2.0 },
        Nanos(T0.0 + 5),
    );
    let mut rows = Vec::new();
    copy_updated_rows(&table.reader(), &u, &mut rows);
    tap.input_score_rows(Nanos(T0.0 + 5), false, &rows);
    tap.into_journal().close().unwrap();

    let journaled = journal_rows(&dir.join("journal")).unwrap();
    assert_eq!(journaled.inputs, 2);
    // Dealer 0, dealer 1 and the pooled row, each in the `all` segment.
    assert_eq!(journaled.rows.len(), 3, "{journaled:?}");
    let check = verify(&journaled, &table.reader());
    assert!(check.is_match(), "{check:?}");
    assert_eq!((check.checked, check.matching, check.table_only), (3, 3, 0));

    // The table moves on without the journal (a report that never reached the engine), and
    // a dealer the journal never saw appears.
    observe(&mut table, 1, Observation::LateOrInvalid, Nanos(T0.0 + 9));
    let check = verify(&journaled, &table.reader());
    assert!(!check.is_match());
    assert_eq!(check.differing_total, 2, "{check:?}");
    let mut named: Vec<(u32, SegmentKey)> =
        check.differing.iter().map(|d| (d.dealer, d.key)).collect();
    named.sort();
    assert_eq!(named, [(1, SegmentKey::all()), (POOLED, SegmentKey::all())]);
    let line = describe_diff(&check.differing[0]);
    assert!(
        line.contains("segment") && line.contains("journal sent="),
        "{line}"
    );
    assert_eq!(check.matching, 1);

    // Rebuild: the journal's rows go back into the table, which then matches.
    assert_eq!(rebuild(&journaled, &mut table).unwrap(), 2);
    let check = verify(&journaled, &table.reader());
    assert!(check.is_match(), "{check:?}");
    assert_eq!(check.matching, 3);
    // A row only the table has is counted and kept (the pooled row moved with it).
    observe(&mut table, 2, Observation::RfqSent, Nanos(T0.0 + 11));
    let check = verify(&journaled, &table.reader());
    assert_eq!(
        (check.table_only, check.differing_total),
        (1, 1),
        "{check:?}"
    );
    assert_eq!(check.differing[0].dealer, POOLED);
    assert_eq!(rebuild(&journaled, &mut table).unwrap(), 1);
    assert!(verify(&journaled, &table.reader()).is_match());
    assert!(table.reader().find(2, SegmentKey::all()).unwrap().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Score rows an older build journaled (score-table format version 1: the row-format field
/// was 0) mean something else in this build's layout: the restart check counts them and
/// never compares or restores them; this build's rows in the same journal still are.
#[test]
fn score_rows_journaled_in_an_older_table_format_are_never_restored() {
    use rfq_router::journal::format::RecordKind;
    use rfq_router::journal::records::encode_score_rows;
    use rfq_router::select::rows::{journal_row_format, ROW_BYTES};
    let dir = fresh_dir("older-format");
    let mut old = ScoreWriter::create(
        &dir.join("old.scores"),
        TableParams::new(4, 8, &ModelConfig::default()),
        T0,
    )
    .unwrap();
    observe(&mut old, 0, Observation::RfqSent, T0);
    let (journal, _) = Journal::open(JournalConfig::new(dir.join("journal"))).unwrap();
    let mut tap = JournalTap::new(journal, 2);
    tap.run_start(T0, &[]).unwrap();
    let mut journal = tap.into_journal();
    // The older build's snapshot: dealer 0 and the pooled row, row-format field 0.
    let rows = snapshot(&old.reader());
    assert_eq!(rows.len(), 2);
    let mut buf = vec![0u8; 16 + rows.len() * ROW_BYTES];
    let n = encode_score_rows(true, false, &rows, &mut buf).unwrap();
    for i in 0..rows.len() {
        let at = 16 + i * ROW_BYTES;
        let mut b = [0u8; ROW_BYTES];
        b.copy_from_slice(&buf[at..at + ROW_BYTES]);
        assert_eq!(journal_row_format(&b), 2, "this build writes version 2");
        buf[at + 4..at + 8].fill(0);
        b[4..8].fill(0);
        assert_eq!(journal_row_format(&b), 1, "0: written before the field");
    }
    journal
        .append(RecordKind::EngineInput, T0, &buf[..n])
        .unwrap();
    // This build's update, for dealer 1.
    let mut table = ScoreWriter::create(
        &dir.join("t.scores"),
        TableParams::new(4, 8, &ModelConfig::default()),
        T0,
    )
    .unwrap();
    let u = observe(&mut table, 1, Observation::RfqSent, Nanos(T0.0 + 5));
    let mut fresh = Vec::new();
    copy_updated_rows(&table.reader(), &u, &mut fresh);
    let n = encode_score_rows(false, false, &fresh, &mut buf).unwrap();
    journal
        .append(RecordKind::EngineInput, Nanos(T0.0 + 5), &buf[..n])
        .unwrap();
    journal.close().unwrap();

    let journaled = journal_rows(&dir.join("journal")).unwrap();
    assert_eq!(journaled.inputs, 2);
    assert_eq!(journaled.other_format_rows, 2, "{journaled:?}");
    // Only this build's rows: dealer 1 and the pooled row, both from the update.
    let mut keys: Vec<u32> = journaled.rows.keys().map(|k| k.0).collect();
    keys.sort();
    assert_eq!(keys, [1, POOLED]);
    assert!(verify(&journaled, &table.reader()).is_match());
    // A rebuild into an empty table never writes the older build's dealer-0 row.
    let mut empty = ScoreWriter::create(
        &dir.join("empty.scores"),
        TableParams::new(4, 8, &ModelConfig::default()),
        T0,
    )
    .unwrap();
    assert_eq!(rebuild(&journaled, &mut empty).unwrap(), 2);
    assert_eq!(empty.reader().find(0, SegmentKey::all()).unwrap(), None);
    let _ = std::fs::remove_dir_all(&dir);
}
