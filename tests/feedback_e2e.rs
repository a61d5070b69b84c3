//! The running router's feedback paths over loopback TCP: a market-data feed session, a
//! fill whose TCA the scoring thread writes into the score tables, and rules reloaded from a
//! changed file (a bad file refused, the rules in force kept) without a restart, followed by
//! the admin thread's `/api/recommend` once the engine has installed them.

mod support;

use rfq_router::admin::{self, AdminContext, PanelRecommender};
use rfq_router::config::{AdminSettings, Config, Role};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn};
use rfq_router::inbox::inbox;
use rfq_router::metrics::snapshot_channel;
use rfq_router::net::NetSettings;
use rfq_router::router::RouterApp;
use rfq_router::scoring::{fact_queue, spawn_scoring, ScoringCounters, ScoringThread};
use rfq_router::select::follow::follow_rules;
use rfq_router::select::model::ModelConfig;
use rfq_router::select::rules::{RuleSet, RulesWatcher};
use rfq_router::select::scored::{load_instruments, NeutralScores, ScoredPanel, TableScores};
use rfq_router::select::segment::SegmentKey;
use rfq_router::select::table::{ScoreReader, ScoreWriter, TableParams};
use rfq_router::select::tca::{Tca, TcaConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{now, Peer};

const ROUTER_TOML: &str = r#"
[rfq]
desk_sessions = ["desk"]
feed_sessions = ["feed"]

[[session]]
name = "desk"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DESK"

[[session]]
name = "feed"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "FEED"

[[session]]
name = "dealer-a"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERA"

[[session]]
name = "dealer-b"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERB"
"#;

const DEALERS_TOML: &str = r#"
[[dealer]]
name = "Dealer A"
party_id = "DLRA"
session = "dealer-a"
tier = 1
[[dealer]]
name = "Dealer B"
party_id = "DLRB"
session = "dealer-b"
tier = 1
"#;

/// One dealer per RFQ: the one on the `always` list.
fn rules(always: &str) -> String {
    format!(
        r#"
[default.panel]
window_days = 90
always = ["{always}"]
top = 1
[default.protocol]
kind = "broadcast"
max_dealers = 1
"#
    )
}

const ISIN: &str = "US99A1NW1035";

/// Quotes every request and fills every hit, until the router closes the connection.
fn respond(mut dealer: Peer, offer: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while let Some(m) = dealer.try_recv() {
            match m.msg_type() {
                "R" => {
                    let req = m.get(131).unwrap_or("").to_string();
                    dealer.send(
                        "S",
                        &format!(
                            "131={req}|117=Q-{req}|55=NW|48={ISIN}|22=4|133={offer}|135=1000000|"
                        ),
                    );
                }
                "AJ" if m.get(694) == Some("1") => {
                    let r = m.get(693).unwrap_or("").to_string();
                    dealer.send(
                        "8",
                        &format!("37=O-{r}|17=E-{r}|150=F|39=2|55=NW|54=1|31={offer}|32=1000000|151=0|14=1000000|6={offer}|693={r}|"),
                    );
                }
                _ => {}
            }
        }
    })
}

/// Replaces the rules file as an operator should: the new text under another name, renamed
/// over the old one, so the watcher never sees it half-written.
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits (polling, generous deadline) until `counter` reaches `want`.
fn wait_for(counter: &AtomicU64, want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter.load(Ordering::Acquire) < want {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(2));
    }
}

/// Sends RFQ `n` and returns the PartyID of the dealer whose quote comes back.
fn rfq(desk: &mut Peer, n: u32) -> (String, String) {
    desk.send(
        "R",
        &format!("131=RFQ{n}|146=1|55=NW|48={ISIN}|22=4|54=1|38=1000000|"),
    );
    // Earlier RFQs (never hit) may expire meanwhile: their status reports are skipped.
    let this = format!("RFQ{n}");
    let mut m = desk.recv();
    while m.msg_type() == "AI" && m.get(131) != Some(this.as_str()) {
        m = desk.recv();
    }
    assert_eq!((m.msg_type(), m.get(297)), ("AI", Some("0")), "{}", m.0);
    let mut q = desk.recv();
    while q.msg_type() == "AI" && q.get(131) != Some(this.as_str()) {
        q = desk.recv();
    }
    assert_eq!(q.msg_type(), "S", "{}", q.0);
    (
        q.get(448).unwrap().to_string(),
        q.get(117).unwrap().to_string(),
    )
}

#[test]
fn feed_fill_scores_and_rules_reload_in_a_running_router() {
    let dir = std::env::temp_dir().join(format!("rfq-feedback-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules_path = dir.join("rules.toml");
    let scores_path = dir.join("scores.tbl");
    let _ = std::fs::remove_file(&scores_path);
    std::fs::write(&rules_path, rules("Dealer A")).unwrap();

    let mut config =
        Config::parse(ROUTER_TOML, "test router.toml").unwrap_or_else(|e| panic!("{e}"));
    for s in &mut config.sessions {
        assert_eq!(s.role, Role::Acceptor);
        s.addr = "127.0.0.1:0".parse().unwrap();
    }
    let dealers = Dealers::parse(DEALERS_TOML, "test dealers.toml", &config)
        .unwrap_or_else(|e| panic!("{e}"));
    let model = ModelConfig::default();
    let writer = ScoreWriter::create(&scores_path, TableParams::new(4, 32, &model), now()).unwrap();
    let master = load_instruments(None).unwrap();
    let instruments = master.len();
    let panel = ScoredPanel::new(
        RuleSet::load(&rules_path).unwrap_or_else(|e| panic!("{e}")),
        master,
        &dealers,
        TableScores::new(writer.reader(), model.clone()),
    );
    let mut watcher = RulesWatcher::new(panel.rules());
    // The admin's recommender follows the engine's installs.
    let (stage, installed, follower) = follow_rules(panel.rules().version().seq);
    watcher.stage_for_followers(stage);
    let admin_panel = ScoredPanel::new(
        panel.rules().clone(),
        load_instruments(None).unwrap(),
        &dealers,
        NeutralScores,
    );
    let (facts_tx, facts_rx) = fact_queue(1024);
    let (mut to_engine, from_scoring) = inbox(64, None);
    let (snapshots, snapshot_server) = snapshot_channel(1, None);
    let app = RouterApp::from_config(&config, &dealers, panel, now())
        .with_feedback(Some(facts_tx), Some(from_scoring))
        .with_admin(snapshot_server)
        .with_installed_rules(installed);
    let router = spawn(
        "feedback-e2e",
        NetSettings::from_config(&config),
        sessions_from_config(&config),
        16,
        Arc::new(Validator::fix44()),
        app,
    )
    .unwrap();
    to_engine.set_wake(router.handle.clone());
    let scoring = spawn_scoring(
        ScoringThread {
            tca: Tca::new(TcaConfig {
                max_instruments: instruments,
                ..TcaConfig::default()
            }),
            writer: Some(writer),
            model,
            watcher: Some(watcher),
            to_engine,
            rules_poll: Duration::from_millis(5),
            flush_every: Duration::from_secs(60),
        },
        facts_rx,
        None,
    )
    .unwrap();
    let counters: &ScoringCounters = &scoring.counters;
    let admin = admin::spawn(
        "127.0.0.1:0".parse().unwrap(),
        &AdminSettings::default(),
        None,
        AdminContext {
            snapshots,
            net: None,
            journal: None,
            recommender: Some(Box::new(
                PanelRecommender::new(admin_panel, &dealers).following(follower),
            )),
        },
    )
    .unwrap();
    let recommended = || {
        let (status, body) = admin::get(
            admin.local_addr,
            &format!("/api/recommend?instrument={ISIN}&side=buy&qty=1000000"),
            Duration::from_secs(10),
        )
        .expect("GET /api/recommend");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        (
            v["chosen"][0]["name"].as_str().unwrap_or("").to_string(),
            v["rules_version"].as_str().unwrap_or("").to_string(),
        )
    };
    let (first, first_version) = recommended();
    assert_eq!(first, "Dealer A");
    assert!(first_version.starts_with("1-"), "{first_version}");

    let addr = router.listen_addrs[0].unwrap();
    let mut desk = Peer::connect(addr, "DESK", "ROUTER");
    desk.logon(30);
    let mut feed = Peer::connect(addr, "FEED", "ROUTER");
    feed.logon(30);
    let mut responders = Vec::new();
    for (comp_id, offer) in [("DEALERA", "100.10"), ("DEALERB", "100.05")] {
        let mut d = Peer::connect(addr, comp_id, "ROUTER");
        d.logon(30);
        // A Heartbeat round trip proves the logon was processed router-side.
        d.send("1", "112=ready|");
        assert_eq!(d.try_recv().expect("heartbeat").get(112), Some("ready"));
        responders.push(respond(d, offer));
    }
    for p in [&mut desk, &mut feed] {
        p.send("1", "112=ready|");
        assert_eq!(p.try_recv().expect("heartbeat").get(112), Some("ready"));
    }

    // The feed's mid (bid 99.95, offer 100.05) is the arrival mid; A's quote is lifted.
    feed.send(
        "W",
        &format!("55=NW|48={ISIN}|22=4|268=2|269=0|270=99.95|269=1|270=100.05|"),
    );
    // A Heartbeat round trip on the feed: its snapshot was handled before the RFQ.
    feed.send("1", "112=mid|");
    assert_eq!(feed.try_recv().expect("heartbeat").get(112), Some("mid"));
    let (party, qid) = rfq(&mut desk, 1);
    assert_eq!(party, "DLRA");
    desk.send("AJ", &format!("693=HIT1|694=1|117={qid}|55=NW|54=1|"));
    assert_eq!(desk.recv_type("8").get(39), Some("2"));

    // The scoring thread analysed the execution and wrote A's row: one RFQ, one win, one
    // firm quote, alone in its RFQ: its competitiveness against its peers counts 0 (the 10
    // bps paid over the arrival mid, 100.10 against 100.00, is the execution's TCA record).
    wait_for(&counters.executions, 1, "the execution's TCA");
    let reader = ScoreReader::open_read_only(&scores_path).unwrap();
    let row = reader
        .find(0, SegmentKey::all())
        .unwrap()
        .expect("Dealer A's row in the tables");
    assert_eq!((row.rfqs_total, row.wins_total), (1, 1));
    assert_eq!(row.quotes, 1.0);
    assert_eq!(
        row.quote_vs_peers_bps_sum, 0.0,
        "a lone quote's competitiveness"
    );

    // A bad rules file is refused; the rules in force stay (Dealer A is still asked).
    replace_file(
        &rules_path,
        "[default.panel]\nwindow_days = 90\ntop = \"many\"\n",
    );
    wait_for(&counters.rules_refused, 1, "the bad file's refusal");
    let refusal = counters.last_refusal.lock().unwrap().clone().unwrap();
    assert!(
        refusal.starts_with(&format!("{}:3:", rules_path.display())),
        "the refusal names file:line:column: {refusal}"
    );
    assert_eq!(rfq(&mut desk, 2).0, "DLRA");
    // ... and in the admin's recommendation.
    assert_eq!(recommended(), (first.clone(), first_version.clone()));

    // A good file is installed without a restart: Dealer B is asked from then on.
    replace_file(&rules_path, &rules("Dealer B"));
    wait_for(&counters.rules_reloaded, 1, "the reload");
    let mut n = 3;
    while rfq(&mut desk, n).0 != "DLRB" {
        n += 1;
        assert!(n < 50, "the reloaded rules never took effect");
    }
    assert_eq!(counters.rules_refused.load(Ordering::Acquire), 1);
    // The engine has installed the new rules: /api/recommend answers with them.
    let (now_first, now_version) = recommended();
    assert_eq!(now_first, "Dealer B");
    assert!(now_version.starts_with("2-"), "{now_version}");
    assert_ne!(now_version, first_version);
    admin.stop().unwrap();

    drop(desk);
    drop(feed);
    scoring.stop();
    router.stop().unwrap();
    for r in responders {
        let _ = r.join();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
