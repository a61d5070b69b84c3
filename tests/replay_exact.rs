//! Replay is exact across live score updates and rules reloads: the router's message path in
//! process (`pipeline::Pipeline`, journaled as the host journals), selection by rules and
//! scores from the engine's own copy of the score rows (`select::rows::RowScores`, as
//! `rfq-router run` builds it). The run starts from a table snapshot, takes score updates
//! that change the panel (rows copied out of a real score table after `tca::apply`, as the
//! scoring thread does) and a rules reload that changes it again; the journal alone then
//! replays byte for byte, and a journal with one score row altered diverges at the first
//! decision that row changes.

use rfq_router::config::Config;
use rfq_router::dealers::Dealers;
use rfq_router::journal::format::{record_crc, segment_file_name};
use rfq_router::journal::records::{decode_decision, decode_input, EngineInput, InputEvent};
use rfq_router::journal::replay::{replay, ReplayError, ReplaySummary};
use rfq_router::journal::tap::JournalTap;
use rfq_router::journal::{Journal, JournalConfig, JournalReader, RecordKind};
use rfq_router::pipeline::{engine_config, Pipeline, DESK};
use rfq_router::rfq::engine::{Engine, EngineLimits};
use rfq_router::rfq::types::DealerId;
use rfq_router::select::feedback::{RulesReload, ScoreUpdate, ToEngine};
use rfq_router::select::instruments::Date;
use rfq_router::select::model::{ModelConfig, Observation};
use rfq_router::select::rows::{copy_updated_rows, snapshot, RowScores, ROW_BYTES};
use rfq_router::select::rules::RuleSet;
use rfq_router::select::scored::{load_instruments, AnyScores, ScoredPanel};
use rfq_router::select::segment::{Buckets, RatingBucket, SegmentInput, SegmentKeys};
use rfq_router::select::table::{ScoreWriter, TableParams, OFF_KEY, OFF_QUOTE_VS_PEERS_BPS_SUM};
use rfq_router::select::tca::{apply, TcaOutput, TcaUpdate};
use rfq_router::time::Nanos;
use std::fs;
use std::path::{Path, PathBuf};

const RULES: &str = r#"
[default.panel]
weights = { fill_rate = 0.30, price_improvement = 0.40, leakage = 0.20, speed = 0.10 }
window_days = 90
top = 2
[default.protocol]
kind = "broadcast"
max_dealers = 2
response_timeout_ms = 400
rfq_expiry_ms = 600
"#;

/// The reload: three dealers per RFQ.
const RULES_RELOADED: &str = r#"
[default.panel]
weights = { fill_rate = 0.30, price_improvement = 0.40, leakage = 0.20, speed = 0.10 }
window_days = 90
top = 3
[default.protocol]
kind = "broadcast"
max_dealers = 3
response_timeout_ms = 400
rfq_expiry_ms = 600
"#;

const ISIN: &str = "US99A1NW1035";
const SEC: u64 = Nanos::PER_SEC;
/// The dealer the score updates promote (embedded dealers.toml has four).
const RISING: u16 = 3;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("replay-exact-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_time() -> Nanos {
    Nanos(Date::parse("2026-11-21").unwrap().0 as u64 * 86_400 * SEC + 12 * 3_600 * SEC)
}

/// The selector as the router builds it: rules, embedded security master, the engine's own
/// rows (empty: filled from inputs), a score cache refreshed in full every 3 s.
fn panel(dealers: &Dealers) -> ScoredPanel<AnyScores> {
    let rules = RuleSet::parse(RULES, Path::new("rules.toml")).unwrap();
    let mut p = ScoredPanel::new(
        rules,
        load_instruments(None).unwrap(),
        dealers,
        AnyScores::Rows(RowScores::new(ModelConfig::default(), 4_096)),
    );
    p.configure(64, Nanos(3 * SEC), Nanos(3_600 * SEC));
    p
}

/// The segments of the scenario's bond, as the scoring thread keys its observations (the
/// scoring back-off path does not depend on the maturity or the size).
fn bond_keys() -> SegmentKeys {
    let master = load_instruments(None).unwrap();
    let i = master.lookup(ISIN.as_bytes()).expect("the scenario's bond");
    SegmentKeys::of(
        &SegmentInput {
            asset_class: i.asset_class.name().as_bytes(),
            issuer: i.issuer.as_bytes(),
            sector: i.sector.as_bytes(),
            rating: RatingBucket::from_agency(i.rating.symbol().as_bytes())
                .unwrap_or(RatingBucket::NotRated),
            years_to_maturity: 5.0,
            notional: 2e6,
        },
        &Buckets::default_maturity_years(),
        &Buckets::default_size_notional(),
    )
}

/// Observations written to the table as the scoring thread writes them, and the rows they
/// changed, copied out.
fn observe(
    writer: &mut ScoreWriter,
    dealer: u16,
    obs: &[Observation],
    at: Nanos,
    update: &mut ScoreUpdate,
) {
    let model = ModelConfig::default();
    let keys = bond_keys();
    for (i, &o) in obs.iter().enumerate() {
        let u = TcaUpdate {
            rfq: 1_000 + i as u64,
            dealer: DealerId(dealer),
            keys: Some(keys),
            obs: o,
            at,
        };
        apply(writer, &model, &TcaOutput::Update(u)).unwrap();
        copy_updated_rows(&writer.reader(), &u, &mut update.rows);
        update.updates.push(u);
    }
}

fn good_dealer(n: usize, pi_bps: f64) -> Vec<Observation> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Observation::RfqSent);
        v.push(Observation::Quoted { response_s: 2.0 });
        // The price score reads the quote's competitiveness against its peers.
        v.push(Observation::Competitiveness { bps: pi_bps });
        v.push(Observation::Won {
            price_improvement_bps: pi_bps,
            vs_cover_bps: None,
        });
    }
    v
}

fn rfq(p: &mut Pipeline<ScoredPanel<AnyScores>>, n: u64) {
    let id = format!("DESK-{n}");
    p.peer_message(DESK, b"R", |e| {
        e.str(131, id.as_bytes())
            .uint(146, 1)
            .str(55, b"NWU 4.25 2031")
            .str(48, ISIN.as_bytes())
            .str(22, b"4")
            .char(54, b'1')
            .uint(38, 2_000_000);
    });
    p.deliver(DESK);
    // Nobody quotes: the RFQ expires (600 ms) before the next one.
    let t = p.now();
    p.advance_to(Nanos(t.0 + 700_000_000));
    p.advance_to(Nanos(t.0 + SEC));
    p.clear_wires();
}

/// Runs the scenario into a fresh journal in `dir`; returns the journal's directory.
fn record_run(dir: &Path) -> PathBuf {
    let config = Config::embedded().unwrap();
    let dealers = Dealers::embedded(&config).unwrap();
    assert!(dealers.dealers.len() > usize::from(RISING));
    let t0 = start_time();
    // The score table as it stands when the router starts: dealers 0 and 1 are good.
    let mut writer = ScoreWriter::create(
        &dir.join("t.scores"),
        TableParams::new(8, 16, &ModelConfig::default()),
        Nanos(t0.0 - 86_400 * SEC),
    )
    .unwrap();
    let mut ignored = ScoreUpdate::default();
    for d in [0, 1] {
        observe(
            &mut writer,
            d,
            &good_dealer(12, 5.0),
            Nanos(t0.0 - 3_600 * SEC),
            &mut ignored,
        );
    }
    let rows = snapshot(&writer.reader());
    assert!(rows.len() >= 3, "dealer rows and pooled rows: {rows:?}");

    let journal_dir = dir.join("journal");
    let (journal, _) = Journal::open(JournalConfig {
        segment_size_bytes: 16 << 20,
        ..JournalConfig::new(&journal_dir)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut tap = JournalTap::new(journal, dealers.dealers.len() + 1);
    tap.run_start(t0, &[]).unwrap();
    let mut p = Pipeline::new(
        dealers.dealers.len(),
        panel(&dealers),
        EngineLimits::default(),
        t0,
    );
    p.attach_journal(tap);
    p.load_score_snapshot(rows);
    let mut n = 0;
    for _ in 0..4 {
        n += 1;
        rfq(&mut p, n);
    }
    // The scoring thread reports: dealer 3 wins with large price improvement, twice.
    for round in 0..2 {
        let mut update = ScoreUpdate::default();
        observe(
            &mut writer,
            RISING,
            &good_dealer(15, 40.0),
            p.now(),
            &mut update,
        );
        assert!(!update.rows.is_empty());
        p.feedback(ToEngine::Scores(update));
        for _ in 0..3 + round {
            n += 1;
            rfq(&mut p, n);
        }
    }
    // SIGHUP: the rules file changed.
    let reloaded = RuleSet::parse(RULES_RELOADED, Path::new("rules.toml"))
        .unwrap()
        .with_seq(2);
    p.feedback(ToEngine::Rules(RulesReload::Installed(Box::new(reloaded))));
    for _ in 0..3 {
        n += 1;
        rfq(&mut p, n);
    }
    // A bad file is refused (journaled too; nothing changes).
    p.feedback(ToEngine::Rules(RulesReload::Refused {
        error: "rules.toml:3:1: bad".into(),
    }));
    n += 1;
    rfq(&mut p, n);
    let tap = p.take_journal().unwrap();
    assert_eq!(tap.counters().append_failures, 0);
    tap.into_journal().close().unwrap_or_else(|e| panic!("{e}"));
    journal_dir
}

fn replay_dir(dir: &Path) -> Result<ReplaySummary, ReplayError> {
    let config = Config::embedded().unwrap();
    let dealers = Dealers::embedded(&config).unwrap();
    let reader = JournalReader::open(dir).unwrap_or_else(|e| panic!("{e}"));
    replay(
        reader.records(),
        |_, start, _| {
            Ok(Engine::new(
                engine_config(dealers.dealers.len(), EngineLimits::default()),
                panel(&dealers),
                start,
            ))
        },
        |_| {},
    )
}

/// (record seq, rfq, panel, rules seq) of every decision.
fn decisions(dir: &Path) -> Vec<(u64, u64, Vec<u16>, u64)> {
    let reader = JournalReader::open(dir).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().record)
        .filter(|v| v.kind() == Some(RecordKind::EngineDecision))
        .map(|v| {
            let d = decode_decision(v.payload).unwrap();
            (
                v.seq,
                d.rfq,
                d.panel.iter().map(|x| x.0).collect(),
                d.rules_seq,
            )
        })
        .collect()
}

#[test]
fn score_updates_and_a_rules_reload_replay_byte_for_byte() {
    let dir = fresh_dir("ok");
    let journal = record_run(&dir);
    let ds = decisions(&journal);
    assert_eq!(ds.len(), 15, "{ds:?}");
    // The panel moved with the inputs: before the updates dealer 3 is not asked, after them
    // it is; after the reload three dealers are asked under rules version 2.
    for (_, rfq, panel, rules) in &ds[..4] {
        assert_eq!(panel.len(), 2, "rfq {rfq}");
        assert!(!panel.contains(&RISING), "rfq {rfq}: {panel:?}");
        assert_eq!(*rules, 1);
    }
    for (_, rfq, panel, rules) in &ds[4..11] {
        assert!(panel.contains(&RISING), "rfq {rfq}: {panel:?}");
        assert_eq!((panel.len(), *rules), (2, 1), "rfq {rfq}");
    }
    for (_, rfq, panel, rules) in &ds[11..] {
        assert_eq!((panel.len(), *rules), (3, 2), "rfq {rfq}: {panel:?}");
    }
    // What the engine was given is in the journal: the snapshot, two updates, two reloads.
    let reader = JournalReader::open(&journal).unwrap();
    let mut kinds = Vec::new();
    for r in reader.records() {
        let v = r.unwrap().record;
        if v.kind() == Some(RecordKind::EngineInput) {
            match decode_input(v.payload).unwrap() {
                EngineInput::ScoreRows { snapshot, .. } => {
                    kinds.push(if snapshot { "snapshot" } else { "update" })
                }
                EngineInput::RulesText { refused, .. } => {
                    kinds.push(if refused { "refused" } else { "rules" })
                }
                _ => {}
            }
        }
    }
    assert_eq!(kinds, ["snapshot", "update", "update", "rules", "refused"]);

    let s = replay_dir(&journal).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.decisions_checked, 15);
    assert_eq!(s.runs, 1);
    assert_eq!(s.runs_cut_short, 0);
    assert!(s.messages_checked >= 15 * 3, "{s:?}");
    let _ = fs::remove_dir_all(&dir);
}

/// A score update journaled by a build with another score-table layout (its rows' format
/// field says 1) is refused by replay with what to do, instead of being fed to the engine
/// with this build's meanings.
#[test]
fn score_rows_of_another_table_format_are_refused_by_replay() {
    let dir = fresh_dir("older-rows");
    let journal = record_run(&dir);
    let reader = JournalReader::open(&journal).unwrap();
    let (seq, segment, offset, len) = reader
        .records()
        .map(|r| r.unwrap())
        .find_map(|r| {
            let v = r.record;
            (v.kind() == Some(RecordKind::EngineInput)
                && v.payload[0] == InputEvent::ScoreUpdate as u8)
                .then(|| {
                    (
                        v.seq,
                        r.segment_number,
                        r.offset as usize,
                        32 + v.payload.len(),
                    )
                })
        })
        .expect("a score update");
    drop(reader);
    let path = journal.join(segment_file_name(segment));
    let mut bytes = fs::read(&path).unwrap();
    let rec = &mut bytes[offset..offset + len];
    // The first row's format field (row bytes 4..8) as an older build left it: 0.
    rec[32 + 16 + 4..32 + 16 + 8].fill(0);
    let crc = record_crc(rec);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    match replay_dir(&journal) {
        Err(ReplayError::BadRecord { seq: at, why }) => {
            assert_eq!(at, seq, "{why}");
            assert!(why.contains("score-table format 1"), "{why}");
            assert!(why.contains("replay it with that build"), "{why}");
        }
        other => panic!("expected the update refused, got {other:?}"),
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn one_altered_score_row_diverges_at_the_first_decision_it_changes() {
    let dir = fresh_dir("tampered");
    let journal = record_run(&dir);
    // The first score update's row of the rising dealer in the bond's issuer (the narrowest
    // segment with enough data, the one selection reads): its price improvement is now awful.
    let issuer = bond_keys().issuer.0.to_le_bytes();
    let reader = JournalReader::open(&journal).unwrap();
    let (seq, segment, offset, len, at) = reader
        .records()
        .map(|r| r.unwrap())
        .find_map(|r| {
            let v = r.record;
            if v.kind() != Some(RecordKind::EngineInput)
                || v.payload[0] != InputEvent::ScoreUpdate as u8
            {
                return None;
            }
            let EngineInput::ScoreRows { rows, .. } = decode_input(v.payload).ok()? else {
                return None;
            };
            let i = rows.chunks_exact(ROW_BYTES).position(|c| {
                c[0..4] == u32::from(RISING).to_le_bytes() && c[OFF_KEY..OFF_KEY + 8] == issuer
            })?;
            // Payload offset of the row, then of the field (same offset as in the table row).
            let at = 32 + 16 + i * ROW_BYTES + OFF_QUOTE_VS_PEERS_BPS_SUM;
            Some((
                v.seq,
                r.segment_number,
                r.offset as usize,
                32 + v.payload.len(),
                at,
            ))
        })
        .expect("a score update with the rising dealer's row");
    drop(reader);
    let path = journal.join(segment_file_name(segment));
    let mut bytes = fs::read(&path).unwrap();
    let rec = &mut bytes[offset..offset + len];
    rec[at..at + 4].copy_from_slice(&(-1.0e6f32).to_le_bytes());
    let crc = record_crc(rec);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &bytes).unwrap();

    let first_after = decisions(&journal)
        .into_iter()
        .find(|d| d.0 > seq)
        .expect("a decision after the update");
    match replay_dir(&journal) {
        Err(ReplayError::Diverged(d)) => {
            assert_eq!(d.what, "decision differs", "{d}");
            assert_eq!(d.seq, first_after.0, "{d}");
            assert!(
                d.expected
                    .starts_with(&format!("decision rfq {} ", first_after.1)),
                "{d}"
            );
            assert!(d.expected.contains(&format!("{RISING}")), "{d}");
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
    let _ = fs::remove_dir_all(&dir);
}
