//! The closed loop in virtual time, in one thread: the real engine and `ScoredPanel` (score
//! tables, rules, security master), a market-data feed, dealers that quote, a desk that lifts
//! the best offer, and `Tca` writing what it measured back into the tables (as the scoring
//! thread does). A dealer that trades at poor prices which then revert loses its place on
//! the panel to dealers it had never been compared with.

use rfq_router::config::Config;
use rfq_router::dealers::Dealers;
use rfq_router::fix::frame::checksum;
use rfq_router::fix::validate::Validator;
use rfq_router::fix::Decoder;
use rfq_router::rfq::engine::{Engine, EngineConfig, Event};
use rfq_router::rfq::outbox::{Command, Outbox};
use rfq_router::rfq::types::{DealerId, SessionId};
use rfq_router::select::feedback::ScoreUpdate;
use rfq_router::select::instruments::Date;
use rfq_router::select::model::ModelConfig;
use rfq_router::select::rules::RuleSet;
use rfq_router::select::scored::{load_instruments, ScoredPanel, TableScores};
use rfq_router::select::segment::SegmentKey;
use rfq_router::select::table::{ScoreWriter, TableParams};
use rfq_router::select::tca::{apply, Tca, TcaConfig, TcaOutput};
use rfq_router::time::Nanos;
use std::path::Path;

/// Two dealers per RFQ, ranked by the seed's composite.
const RULES: &str = r#"
[default.panel]
weights = { fill_rate = 0.30, price_improvement = 0.40, leakage = 0.20, speed = 0.10 }
window_days = 90
top = 2
[default.protocol]
kind = "broadcast"
max_dealers = 2
response_timeout_ms = 20_000
rfq_expiry_ms = 120_000
"#;

const ISIN: &str = "US99A1NW1035";
const MINUTE: u64 = 60 * Nanos::PER_SEC;

struct Loop {
    engine: Engine<ScoredPanel<TableScores>>,
    out: Outbox,
    tca: Tca,
    writer: ScoreWriter,
    model: ModelConfig,
    decoder: Decoder,
    validator: Validator,
    now: Nanos,
    /// Messages the engine sent since the last `take`: (session, "35=..|...").
    sent: Vec<(u16, String)>,
    /// Executions TCA reported.
    executions: Vec<rfq_router::select::tca::ExecutionTca>,
    session: Box<dyn Fn(&str) -> u16>,
    path: std::path::PathBuf,
}

fn field<'a>(msg: &'a str, tag: &str) -> Option<&'a str> {
    let key = format!("|{tag}=");
    let at = msg.find(&key)? + key.len();
    msg[at..].split('|').next()
}

impl Loop {
    fn new() -> Loop {
        let config = Config::embedded().unwrap();
        let dealers = Dealers::embedded(&config).unwrap();
        // One RFQ is data enough here: the loop shows a single poor fill moving a dealer off
        // the panel (by default a dealer has `min_observations` = 5 RFQs in the order's asset
        // class before its own record counts, and scores the prior until then). The counts
        // decay, so one RFQ an hour later weighs a little under 1: the bar is 0.5.
        let model = ModelConfig {
            min_observations: 0.5,
            ..ModelConfig::default()
        };
        let path =
            std::env::temp_dir().join(format!("rfq-closed-loop-{}.scores", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let now = Nanos(Date::parse("2026-11-21").unwrap().0 as u64 * 86_400 * Nanos::PER_SEC);
        let writer = ScoreWriter::create(&path, TableParams::new(16, 64, &model), now).unwrap();
        let master = load_instruments(None).unwrap();
        let instruments = master.len();
        let mut panel = ScoredPanel::new(
            RuleSet::parse(RULES, Path::new("test rules.toml")).unwrap(),
            master,
            &dealers,
            TableScores::new(writer.reader(), model.clone()),
        );
        // Precomputed scores are never refreshed by age here: only the score updates the
        // engine receives (Event::ScoreUpdate) make the selector recompute a dealer.
        panel.configure(
            64,
            Nanos(86_400 * Nanos::PER_SEC),
            Nanos(3_600 * Nanos::PER_SEC),
        );
        let sessions = config.sessions.clone();
        let session =
            move |name: &str| sessions.iter().position(|s| s.name == name).unwrap() as u16;
        let mut engine = Engine::new(
            EngineConfig {
                dealers: dealers.engine_dealers(),
                desks: vec![SessionId(session("desk"))],
                limits: config.rfq.limits,
                timer_tick_ms: 1,
            },
            panel,
            now,
        );
        engine.set_feed_sessions(&[SessionId(session("feed"))]);
        let out = engine.outbox();
        let mut l = Loop {
            engine,
            out,
            tca: Tca::new(TcaConfig {
                max_instruments: instruments,
                ..TcaConfig::default()
            }),
            writer,
            model,
            decoder: Decoder::new(256),
            validator: Validator::fix44(),
            now,
            sent: Vec::new(),
            executions: Vec::new(),
            session: Box::new(session),
            path,
        };
        for s in 0..config.sessions.len() as u16 {
            l.event(Event::SessionUp(SessionId(s)));
        }
        l
    }

    /// Runs the engine's output: messages are kept, TCA facts go to `Tca`, whose results are
    /// written to the tables and reported back to the engine, as the scoring thread does.
    fn collect(&mut self) {
        let mut results = Vec::new();
        for c in self.out.commands() {
            match c {
                Command::Send {
                    session,
                    msg_type,
                    body,
                } => {
                    let body = String::from_utf8_lossy(self.out.body(body)).replace('\x01', "|");
                    let text = format!("35={}|{body}", String::from_utf8_lossy(msg_type));
                    self.sent.push((session.0, text));
                }
                Command::Tca(f) => self.tca.on_fact(f, &mut results),
                Command::Journal(_) => {}
            }
        }
        self.tca.advance(self.now, &mut results);
        if results.is_empty() {
            return;
        }
        let mut update = ScoreUpdate::default();
        for r in &results {
            apply(&mut self.writer, &self.model, r).unwrap();
            match r {
                TcaOutput::Update(u) => update.updates.push(*u),
                TcaOutput::Execution(e) => {
                    self.executions.push(*e);
                    update.executions.push(*e)
                }
            }
        }
        self.engine
            .on(self.now, Event::ScoreUpdate(&update), &mut self.out);
    }

    fn event(&mut self, ev: Event<'_, '_>) {
        self.engine.on(self.now, ev, &mut self.out);
        self.collect();
    }

    fn fix(&mut self, session: &str, msg_type: &str, fields: &str) {
        let session = (self.session)(session);
        let body = format!("35={msg_type}|34=2|49=X|52=20261121-12:00:00.000|56=R|{fields}")
            .replace('|', "\x01");
        let mut frame = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
        let sum = checksum(&frame);
        frame.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        let mut msg = self.decoder.decode(&frame).expect("tokenises");
        self.validator
            .validate(&mut msg)
            .unwrap_or_else(|v| panic!("invalid {msg_type}: {v:?}: {fields}"));
        self.engine.on(
            self.now,
            Event::Fix {
                session: SessionId(session),
                msg: &msg,
            },
            &mut self.out,
        );
        self.collect();
    }

    fn advance(&mut self, by: u64) {
        self.now = Nanos(self.now.0 + by);
        self.event(Event::Tick);
    }

    fn mid(&mut self, mid: f64) {
        self.fix(
            "feed",
            "W",
            &format!(
                "55=NW|48={ISIN}|22=4|268=2|269=0|270={:.2}|269=1|270={:.2}|",
                mid - 0.05,
                mid + 0.05
            ),
        );
    }

    fn take(&mut self) -> Vec<(u16, String)> {
        std::mem::take(&mut self.sent)
    }

    /// One RFQ: the asked dealers quote (`offer_of`), the desk lifts the best offer, the
    /// winner fills. Returns the dealers asked (by session name) and the winner.
    fn round(&mut self, n: u32, offer_of: impl Fn(&str) -> Option<f64>) -> (Vec<String>, String) {
        self.fix(
            "desk",
            "R",
            &format!("131=RFQ{n}|146=1|55=NW|48={ISIN}|22=4|54=1|38=1000000|"),
        );
        let names = ["dealer-a", "dealer-b", "dealer-c", "dealer-d"];
        let asked: Vec<(String, String)> = self
            .take()
            .into_iter()
            .filter(|(_, m)| m.starts_with("35=R|"))
            .map(|(s, m)| {
                let name = names
                    .iter()
                    .find(|n| (self.session)(n) == s)
                    .expect("a dealer session")
                    .to_string();
                (name, field(&m, "131").unwrap().to_string())
            })
            .collect();
        for (name, req) in &asked {
            match offer_of(name) {
                Some(px) => self.fix(
                    name,
                    "S",
                    &format!(
                        "131={req}|117={name}-{n}|55=NW|48={ISIN}|22=4|132={:.2}|133={px:.2}|134=1000000|135=1000000|",
                        px - 0.10
                    ),
                ),
                None => self.fix(name, "AG", &format!("131={req}|658=10|146=1|55=NW|")),
            }
        }
        // The desk lifts the lowest offer.
        let quotes: Vec<String> = self
            .take()
            .into_iter()
            .filter(|(_, m)| m.starts_with("35=S|"))
            .map(|(_, m)| m)
            .collect();
        let best = quotes
            .iter()
            .min_by(|a, b| {
                let px = |m: &String| field(m, "133").unwrap().parse::<f64>().unwrap();
                px(a).total_cmp(&px(b))
            })
            .expect("a quote");
        let (qid, px) = (
            field(best, "117").unwrap().to_string(),
            field(best, "133").unwrap().to_string(),
        );
        self.fix(
            "desk",
            "AJ",
            &format!("693=HIT{n}|694=1|117={qid}|55=NW|54=1|"),
        );
        let (session, hit) = self
            .take()
            .into_iter()
            .find(|(_, m)| m.starts_with("35=AJ|") || m.starts_with("35=D|"))
            .expect("the hit goes to the winner");
        let winner = names
            .iter()
            .find(|n| (self.session)(n) == session)
            .unwrap()
            .to_string();
        let reference = if hit.starts_with("35=D|") {
            format!("11={}", field(&hit, "11").unwrap())
        } else {
            format!("693={}", field(&hit, "693").unwrap())
        };
        self.fix(
            &winner,
            "8",
            &format!("37=O{n}|17=E{n}|150=F|39=2|55=NW|54=1|31={px}|32=1000000|151=0|14=1000000|6={px}|{reference}|"),
        );
        self.take();
        (asked.into_iter().map(|(n, _)| n).collect(), winner)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn poor_fills_that_revert_move_a_dealer_off_the_panel() {
    let mut l = Loop::new();
    // Dealer A sells 20 bps above the mid; B declines; C and D would sell 2-3 bps below it.
    let offers = |name: &str| match name {
        "dealer-a" => Some(100.20),
        "dealer-b" => None,
        "dealer-c" => Some(99.98),
        _ => Some(99.97),
    };
    let dealer_a = DealerId(0);
    let mut panels = Vec::new();
    for n in 0..4 {
        l.mid(100.0);
        let (asked, winner) = l.round(n, offers);
        // After A's trades the price reverts: the mid falls to 99.80 for the next half hour
        // (A charged a temporary premium). After the others' it stays at 100.
        l.advance(MINUTE / 2);
        l.mid(if winner == "dealer-a" { 99.8 } else { 100.0 });
        panels.push((asked, winner));
        for _ in 0..40 {
            l.advance(MINUTE);
        }
    }
    // With no data every dealer scores the same prior and the first two in the database are
    // asked; A wins at a poor price.
    let mut first: Vec<&str> = panels[0].0.iter().map(String::as_str).collect();
    first.sort();
    assert_eq!(first, ["dealer-a", "dealer-b"], "{panels:?}");
    assert_eq!(panels[0].1, "dealer-a");
    // A's record in the tables: one win, -20 bps vs arrival, markouts of -40 bps (buy at
    // 100.20, mid 99.80) at 1, 5 and 30 minutes.
    let row = l
        .writer
        .reader()
        .find(u32::from(dealer_a.0), SegmentKey::all())
        .unwrap()
        .expect("A has a row");
    assert_eq!(row.rfqs_total, 1, "{panels:?}");
    assert_eq!(row.wins_total, 1);
    // The price score reads each quote against its RFQ's other quotes: A's was alone (B
    // declined), so it counts 0; its -20 bps vs arrival is the execution's TCA (below).
    let pi = f64::from(row.quote_vs_peers_bps_sum) / f64::from(row.quotes);
    assert!(pi.abs() < 1e-6, "quote competitiveness {pi}");
    for h in 0..3 {
        let m = f64::from(row.markout_bps_sum[h]) / f64::from(row.markout_n[h]);
        assert!(
            (m - (99.8 - 100.2) / 100.2 * 1e4).abs() < 1e-2,
            "markout {h}: {m}"
        );
    }
    let e = &l.executions[0];
    assert!((e.price_improvement_bps + 20.0).abs() < 1e-9);
    assert!((e.arrival_mid - 100.0).abs() < 1e-12);
    // After the feedback, A scores below dealers without data and is no longer asked; the
    // panel changes to C and D, and the best offer (D's) wins.
    let mut second: Vec<&str> = panels[1].0.iter().map(String::as_str).collect();
    second.sort();
    assert_eq!(second, ["dealer-c", "dealer-d"], "{panels:?}");
    for (asked, winner) in &panels[1..] {
        assert!(!asked.iter().any(|a| a == "dealer-a"), "{panels:?}");
        assert_eq!(winner, "dealer-d", "{panels:?}");
    }
    let d = l
        .writer
        .reader()
        .find(3, SegmentKey::all())
        .unwrap()
        .expect("D has a row");
    assert_eq!(d.wins_total, 3);
    assert!(d.quote_vs_peers_bps_sum > 0.0);
}
