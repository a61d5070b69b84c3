//! Market mids replayed from a CSV file into a running router over loopback TCP: the mid is
//! in effect as a feed's 35=W would be (it is the arrival mid of the TCA the scoring thread
//! writes into the score tables) and is journaled as an engine input; and a bad CSV stops
//! `rfq-router run` before anything starts, naming file:line and the reason.

mod support;

use rfq_router::config::{Config, Role};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn_journaled, SpawnOptions};
use rfq_router::inbox::inbox;
use rfq_router::journal::records::describe;
use rfq_router::journal::tap::JournalTap;
use rfq_router::journal::{Journal, JournalConfig, JournalReader, RecordKind};
use rfq_router::mid_replay::{spawn_mid_replay, MidReplay, MidsCsv};
use rfq_router::net::NetSettings;
use rfq_router::rfq::outbox::Record;
use rfq_router::router::RouterApp;
use rfq_router::scoring::{fact_queue, spawn_scoring, ScoringThread};
use rfq_router::select::feedback::decode_record;
use rfq_router::select::model::ModelConfig;
use rfq_router::select::rules::RuleSet;
use rfq_router::select::scored::{load_instruments, ScoredPanel, TableScores};
use rfq_router::select::segment::SegmentKey;
use rfq_router::select::table::{ScoreReader, ScoreWriter, TableParams};
use rfq_router::select::tca::{Tca, TcaConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{now, Peer};

const ROUTER_TOML: &str = r#"
[rfq]
desk_sessions = ["desk"]

[[session]]
name = "desk"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DESK"

[[session]]
name = "dealer-a"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERA"
"#;

const DEALERS_TOML: &str = r#"
[[dealer]]
name = "Dealer A"
party_id = "DLRA"
session = "dealer-a"
tier = 1
"#;

const RULES_TOML: &str = r#"
[default.panel]
window_days = 90
always = ["Dealer A"]
top = 1
[default.protocol]
kind = "broadcast"
max_dealers = 1
"#;

const ISIN: &str = "US99A1NW1035";

fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mid-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits (polling, generous deadline) until `counter` reaches `want`.
fn wait_for(counter: &AtomicU64, want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter.load(Ordering::Acquire) < want {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(2));
    }
}

#[test]
fn csv_mids_are_the_arrival_mid_and_are_journaled() {
    let dir = fresh_dir("e2e");
    let mids_path = dir.join("mids.csv");
    // The second row is the one in force when the RFQ comes: bid 99.75, ask 100.25.
    std::fs::write(
        &mids_path,
        format!(
            "time,instrument,bid,ask\n0,{ISIN},98.00,98.50\n0.001,{ISIN},99.75,100.25\n0.001,99B2BT100,97.75,98.25\n"
        ),
    )
    .unwrap();
    let mut config =
        Config::parse(ROUTER_TOML, "test router.toml").unwrap_or_else(|e| panic!("{e}"));
    for s in &mut config.sessions {
        assert_eq!(s.role, Role::Acceptor);
        s.addr = "127.0.0.1:0".parse().unwrap();
    }
    let dealers = Dealers::parse(DEALERS_TOML, "test dealers.toml", &config)
        .unwrap_or_else(|e| panic!("{e}"));
    let model = ModelConfig::default();
    let scores_path = dir.join("scores.tbl");
    let writer = ScoreWriter::create(&scores_path, TableParams::new(4, 32, &model), now()).unwrap();
    let master = load_instruments(None).unwrap();
    let mids = MidsCsv::load(&mids_path, &master, 100).unwrap_or_else(|e| panic!("{e}"));
    let instruments = master.len();
    let rules = RuleSet::parse(RULES_TOML, &dir.join("rules.toml")).unwrap();
    let panel = ScoredPanel::new(
        rules,
        master,
        &dealers,
        TableScores::new(writer.reader(), model.clone()),
    );

    let journal_dir = dir.join("journal");
    let (journal, _) =
        Journal::open(JournalConfig::new(&journal_dir)).unwrap_or_else(|e| panic!("{e}"));
    let mut tap = JournalTap::new(journal, config.sessions.len());
    let t0 = now();
    tap.run_start(t0, &[]).unwrap();
    let (facts_tx, facts_rx) = fact_queue(1024);
    let (mut to_engine, from_scoring) = inbox(64, None);
    let app = RouterApp::from_config(&config, &dealers, panel, t0)
        .with_feedback(Some(facts_tx), Some(from_scoring));
    let router = spawn_journaled(
        SpawnOptions::named("mid-replay-e2e"),
        NetSettings::from_config(&config),
        sessions_from_config(&config),
        16,
        Arc::new(Validator::fix44()),
        app,
        Some(tap),
    )
    .unwrap();
    to_engine.set_wake(router.handle.clone());
    let replay = spawn_mid_replay(
        MidReplay {
            rows: mids.into_rows(),
            speed: 1.0,
            start_offset_s: 0.0,
            to_engine: to_engine.clone(),
            inbox_reserve: 16,
        },
        None,
    )
    .unwrap();
    let scoring = spawn_scoring(
        ScoringThread {
            tca: Tca::new(TcaConfig {
                max_instruments: instruments,
                ..TcaConfig::default()
            }),
            writer: Some(writer),
            model,
            watcher: None,
            to_engine,
            rules_poll: Duration::from_millis(50),
            flush_every: Duration::from_secs(60),
        },
        facts_rx,
        None,
    )
    .unwrap();
    let counters = &scoring.counters;

    // Each mid the engine takes becomes a TCA fact for the scoring thread: once three have
    // come, the engine has applied every row.
    wait_for(&replay.counters.rows_sent, 3, "the replay's rows");
    wait_for(&counters.facts, 3, "the engine to take the three mids");

    let addr = router.listen_addrs[0].unwrap();
    let mut desk = Peer::connect(addr, "DESK", "ROUTER");
    desk.logon(30);
    let mut dealer = Peer::connect(addr, "DEALERA", "ROUTER");
    dealer.logon(30);
    for p in [&mut desk, &mut dealer] {
        p.send("1", "112=ready|");
        assert_eq!(p.try_recv().expect("heartbeat").get(112), Some("ready"));
    }
    desk.send(
        "R",
        &format!("131=RFQ1|146=1|55=NW|48={ISIN}|22=4|54=1|38=1000000|"),
    );
    let req = dealer.recv_type("R");
    let rid = req.get(131).unwrap().to_string();
    dealer.send(
        "S",
        &format!("131={rid}|117=Q1|55=NW|48={ISIN}|22=4|133=100.10|135=1000000|"),
    );
    assert_eq!(desk.recv_type("AI").get(297), Some("0"));
    let qid = desk.recv_type("S").get(117).unwrap().to_string();
    desk.send("AJ", &format!("693=HIT1|694=1|117={qid}|55=NW|54=1|"));
    let hit = dealer.recv_type("AJ");
    let r = hit.get(693).unwrap().to_string();
    dealer.send(
        "8",
        &format!("37=O1|17=E1|150=F|39=2|55=NW|54=1|31=100.10|32=1000000|151=0|14=1000000|6=100.10|693={r}|"),
    );
    assert_eq!(desk.recv_type("8").get(39), Some("2"));

    wait_for(&counters.executions, 1, "the execution's TCA");
    let reader = ScoreReader::open_read_only(&scores_path).unwrap();
    let row = reader
        .find(0, SegmentKey::all())
        .unwrap()
        .expect("Dealer A's row in the tables");
    assert_eq!(row.wins_total, 1);

    drop(desk);
    drop(dealer);
    replay.stop();
    scoring.stop();
    router.stop().unwrap();

    // Each mid is an engine input in the journal, before the RFQ's decision.
    let reader = JournalReader::open(&journal_dir).unwrap_or_else(|e| panic!("{e}"));
    let mut mids_seen = Vec::new();
    let mut decision_after = None;
    let mut executions = Vec::new();
    for r in reader.records() {
        let r = r.unwrap_or_else(|e| panic!("{e}")).record;
        match r.kind() {
            Some(RecordKind::EngineInput) => {
                let text = describe(RecordKind::EngineInput, r.payload).unwrap();
                if text.starts_with("market-mid") {
                    mids_seen.push(text);
                }
            }
            Some(RecordKind::EngineDecision) if decision_after.is_none() => {
                decision_after = Some(mids_seen.len());
            }
            // The execution's TCA (journaled by the engine with the scores it was sent).
            Some(RecordKind::TcaResult) => {
                if let Ok(Record::TcaExecution(e)) = decode_record(r.payload) {
                    executions.push(e);
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        mids_seen,
        [
            format!("market-mid instrument={ISIN} mid=98.25"),
            format!("market-mid instrument={ISIN} mid=100"),
            "market-mid instrument=99B2BT100 mid=98".to_string(),
        ]
    );
    assert_eq!(
        decision_after,
        Some(3),
        "the mids precede the RFQ's decision"
    );
    // The arrival mid was the CSV's latest (100.00), not its first row (98.25): paying 100.10
    // is 10 bps worse than arrival.
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert!(
        (executions[0].arrival_mid - 100.0).abs() < 1e-9,
        "{executions:?}"
    );
    let pi = executions[0].price_improvement_bps;
    assert!((pi + 10.0).abs() < 1e-3, "price improvement {pi} bps");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_csv_stops_the_router_before_it_starts() {
    let dir = fresh_dir("bad");
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "time,instrument,mid\n0,US99A1NW1035,100\n1,US0000000000,100\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rfq-router"))
        .current_dir(&dir)
        .args(["run", "--status-every-s", "0", "--mids"])
        .arg(&bad)
        .output()
        .expect("run rfq-router");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3: unknown instrument \"US0000000000\"",
            bad.display()
        )),
        "{stderr}"
    );
    // Nothing started: no journal was opened.
    assert!(!dir.join("journal").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_feeds_a_journaled_mid_to_the_engine() {
    use rfq_router::journal::records::{EngineInput, PriceBits};
    use rfq_router::journal::replay::replay;
    use rfq_router::pipeline::engine_config;
    use rfq_router::rfq::engine::{Engine, EngineLimits};
    use rfq_router::select::{Protocol, StaticTiers};
    use rfq_router::time::Nanos;

    let dir = fresh_dir("replay");
    let (journal, _) = Journal::open(JournalConfig::new(&dir)).unwrap_or_else(|e| panic!("{e}"));
    let mut tap = JournalTap::new(journal, 2);
    let t0 = Nanos(1_700_000_000_000_000_000);
    tap.run_start(t0, &[]).unwrap();
    tap.input(
        t0,
        &EngineInput::MarketMid {
            instrument: ISIN.as_bytes(),
            mid: PriceBits::new(100.25),
        },
    );
    tap.into_journal().close().unwrap();
    let reader = JournalReader::open(&dir).unwrap_or_else(|e| panic!("{e}"));
    let summary = replay(
        reader.records(),
        |_, start, _| {
            Ok(Engine::new(
                engine_config(1, EngineLimits::default()),
                StaticTiers {
                    protocol: Protocol::default(),
                },
                start,
            ))
        },
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.inputs, 1);
    let _ = std::fs::remove_dir_all(&dir);
}
