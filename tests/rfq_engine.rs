//! Deterministic tests of the RFQ engine: every protocol, transition and bad case, driven
//! with simulated time and real FIX messages (decoded and validated as the session layer
//! would), and every message the engine emits checked against the FIX 4.4 dictionary.

use rfq_router::fix::frame::checksum;
use rfq_router::fix::validate::Validator;
use rfq_router::fix::Decoder;
use rfq_router::rfq::engine::{
    AdminQuery, Counters, DealerConfig, Engine, EngineConfig, EngineLimits, EngineStatus, Event,
    HitWith, Outcome,
};
use rfq_router::rfq::outbox::{Command, Outbox, Record};
use rfq_router::rfq::types::{FixId, SessionId};
use rfq_router::select::tca::TcaFact;
use rfq_router::select::{
    Candidate, Panel, Protocol, ProtocolKind, Refusal, RfqSpec, Selection, StaticTiers,
};
use rfq_router::time::Nanos;

const DESK: SessionId = SessionId(0);
const T0: u64 = 1_700_000_000_000; // ms

/// A selector with a fixed fair value on top of static tiers, whose security master knows
/// every instrument but `UNKNOWN_ISIN` (by ISIN) and `UNKNOWN_SYMBOL` (by Symbol).
struct WithFairValue {
    inner: StaticTiers,
    fair: Option<f64>,
}

const UNKNOWN_ISIN: &str = "XS0000000404";
const UNKNOWN_SYMBOL: &str = "NOSUCHBOND";

impl Panel for WithFairValue {
    fn select(&mut self, spec: &RfqSpec<'_>, c: &[Candidate], out: &mut Selection) {
        self.inner.select(spec, c, out);
        out.fair_value = self.fair;
        let by_isin = spec.id_source.as_bytes() == b"4";
        let id = spec.instrument.as_bytes();
        if (by_isin && id == UNKNOWN_ISIN.as_bytes())
            || (spec.id_source.is_empty() && id == UNKNOWN_SYMBOL.as_bytes())
        {
            out.refusal = Some(Refusal::UNKNOWN_INSTRUMENT);
        }
    }
}

struct Harness {
    engine: Engine<WithFairValue>,
    out: Outbox,
    decoder: Decoder,
    validator: Validator,
    now_ms: u64,
    /// Everything sent, as (session, "35=..|fields|").
    sent: Vec<(u16, String)>,
    journal: Vec<Record>,
    tca: Vec<TcaFact>,
}

fn frame(body: &str) -> Vec<u8> {
    let body = body.replace('|', "\x01");
    let mut out = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
    let sum = checksum(&out);
    out.extend_from_slice(format!("10={:03}\x01", sum).as_bytes());
    out
}

fn dealer(name: &str, session: u16, tier: u8) -> DealerConfig {
    DealerConfig::new(
        name.to_string(),
        FixId::new(name.as_bytes()).unwrap(),
        SessionId(session),
        tier,
    )
}

impl Harness {
    fn new(protocol: Protocol, fair: Option<f64>) -> Harness {
        Harness::with(protocol, fair, EngineLimits::default(), |_| {})
    }

    fn with(
        protocol: Protocol,
        fair: Option<f64>,
        limits: EngineLimits,
        tweak: impl FnOnce(&mut EngineConfig),
    ) -> Harness {
        let mut cfg = EngineConfig {
            dealers: vec![
                dealer("DLRA", 1, 1),
                dealer("DLRB", 2, 1),
                dealer("DLRC", 3, 2),
                dealer("DLRD", 4, 2),
            ],
            desks: vec![DESK],
            limits,
            timer_tick_ms: 1,
        };
        tweak(&mut cfg);
        let n = cfg.dealers.len() as u16;
        let engine = Engine::new(
            cfg,
            WithFairValue {
                inner: StaticTiers { protocol },
                fair,
            },
            Nanos::from_millis(T0),
        );
        let out = engine.outbox();
        let mut h = Harness {
            engine,
            out,
            decoder: Decoder::new(512),
            validator: Validator::fix44(),
            now_ms: T0,
            sent: Vec::new(),
            journal: Vec::new(),
            tca: Vec::new(),
        };
        for s in 1..=n {
            h.event(Event::SessionUp(SessionId(s)));
        }
        h.event(Event::SessionUp(DESK));
        h
    }

    fn now(&self) -> Nanos {
        Nanos::from_millis(self.now_ms)
    }

    fn collect(&mut self) {
        for c in self.out.commands() {
            match c {
                Command::Send {
                    session,
                    msg_type,
                    body,
                } => {
                    let body = String::from_utf8(self.out.body(body).to_vec())
                        .unwrap()
                        .replace('\x01', "|");
                    let text = format!("35={}|{}", String::from_utf8_lossy(msg_type), body);
                    check_valid_fix(&self.validator, &text);
                    self.sent.push((session.0, text));
                }
                Command::Journal(r) => self.journal.push(r.clone()),
                Command::Tca(f) => self.tca.push(f.clone()),
            }
        }
    }

    fn event(&mut self, ev: Event<'_, '_>) -> Outcome {
        let now = self.now();
        let o = self.engine.on(now, ev, &mut self.out);
        self.collect();
        o
    }

    /// Delivers an application message (fields after the header) from `session`.
    fn fix(&mut self, session: u16, msg_type: &str, fields: &str) -> Outcome {
        let f = frame(&format!(
            "35={msg_type}|34=2|49=X|52=20231114-22:13:20.000|56=R|{fields}"
        ));
        let now = self.now();
        let mut msg = self.decoder.decode(&f).expect("test message tokenises");
        self.validator
            .validate(&mut msg)
            .unwrap_or_else(|v| panic!("test message invalid: {v:?}: {fields}"));
        let o = self.engine.on(
            now,
            Event::Fix {
                session: SessionId(session),
                msg: &msg,
            },
            &mut self.out,
        );
        self.collect();
        o
    }

    fn advance_ms(&mut self, ms: u64) {
        self.now_ms += ms;
        self.event(Event::Tick);
    }

    fn take(&mut self) -> Vec<(u16, String)> {
        std::mem::take(&mut self.sent)
    }

    fn counters(&self) -> Counters {
        *self.engine.counters()
    }

    fn rfq(&mut self, req_id: &str, side: &str, extra: &str) {
        self.fix(
            0,
            "R",
            &format!(
                "131={req_id}|146=1|55=XS123|48=XS0000000001|22=4|54={side}|38=1000000{extra}|"
            ),
        );
    }
}

/// Wraps an engine body in a header and validates it: the engine must only emit valid FIX.
fn check_valid_fix(v: &Validator, text: &str) {
    let (mt, body) = text.split_once('|').unwrap();
    let f = frame(&format!(
        "{mt}|34=9|49=ROUTER|52=20231114-22:13:20.000|56=PEER|{body}"
    ));
    let mut d = Decoder::new(512);
    let mut m = d
        .decode(&f)
        .unwrap_or_else(|e| panic!("engine emitted untokenisable {text}: {e}"));
    if let Err(e) = v.validate(&mut m) {
        panic!("engine emitted invalid FIX {text}: {e:?}");
    }
}

fn field<'a>(msg: &'a str, tag: &str) -> Option<&'a str> {
    let key = format!("{tag}=");
    msg.split('|').find_map(|f| f.strip_prefix(key.as_str()))
}

fn types(sent: &[(u16, String)]) -> Vec<(u16, String)> {
    sent.iter()
        .map(|(s, m)| (*s, field(m, "35").unwrap().to_string()))
        .collect()
}

fn p(kind: ProtocolKind) -> Protocol {
    Protocol {
        kind,
        max_dealers: 3,
        response_timeout_ms: 20_000,
        stagger_gap_ms: 5_000,
        rfq_expiry_ms: 120_000,
        ..Protocol::default()
    }
}

fn ty(s: u16, t: &str) -> (u16, String) {
    (s, t.to_string())
}

#[test]
fn broadcast_asks_the_whole_panel_at_once_and_never_leaks_the_desk() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("DESKREQ1", "1", "");
    let sent = h.take();
    assert_eq!(
        types(&sent),
        vec![ty(1, "R"), ty(2, "R"), ty(3, "R"), ty(0, "AI")],
        "dealers are asked before the desk is told (the ack is off the critical path)"
    );
    assert_eq!(field(&sent[3].1, "297"), Some("0"), "desk told: accepted");
    for (_, m) in &sent[..3] {
        assert!(
            !m.contains("DESKREQ1"),
            "desk QuoteReqID leaked to a dealer: {m}"
        );
        assert!(field(m, "131").unwrap().starts_with('R'));
        assert_eq!(field(m, "48"), Some("XS0000000001"));
        assert_eq!(field(m, "54"), Some("1"));
        assert_eq!(field(m, "38"), Some("1000000"));
    }
    assert!(
        matches!(&h.journal[0], Record::Decision { panel, overridden: false, .. } if panel.len() == 3)
    );
}

#[test]
fn two_sided_dealers_are_not_told_side_or_size() {
    let mut h = Harness::with(
        p(ProtocolKind::Broadcast),
        None,
        EngineLimits::default(),
        |c| {
            c.dealers[0].disclose_side_and_size = false;
        },
    );
    h.rfq("Q1", "2", "");
    let sent = h.take();
    let to_a = &sent.iter().find(|(s, _)| *s == 1).unwrap().1;
    assert_eq!(field(to_a, "54"), None);
    assert_eq!(field(to_a, "38"), None);
    let to_b = &sent.iter().find(|(s, _)| *s == 2).unwrap().1;
    assert_eq!(field(to_b, "54"), Some("2"));
}

/// Quote from `dealer` for the request it was sent.
fn quote(h: &mut Harness, dealer: u16, req: &str, quote_id: &str, px: &str) {
    h.fix(dealer, "S", &format!("131={req}|117={quote_id}|55=XS123|48=XS0000000001|22=4|132={px}|133={px}|134=1000000|135=1000000|"));
}

fn req_to(sent: &[(u16, String)], dealer: u16) -> String {
    let m = &sent
        .iter()
        .find(|(s, m)| *s == dealer && field(m, "35") == Some("R"))
        .expect("request to dealer")
        .1;
    field(m, "131").unwrap().to_string()
}

#[test]
fn quotes_are_relayed_under_router_ids_and_a_hit_executes_with_the_winner() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "");
    let sent = h.take();
    let (ra, rb) = (req_to(&sent, 1), req_to(&sent, 2));
    quote(&mut h, 1, &ra, "A-1", "99.5");
    quote(&mut h, 2, &rb, "B-1", "99.25");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "S"), ty(0, "S")]);
    let qa = &sent[0].1;
    assert_eq!(field(qa, "131"), Some("D1"));
    assert_eq!(field(qa, "448"), Some("DLRA"));
    assert_eq!(field(qa, "133"), Some("99.5"));
    assert_ne!(
        field(qa, "117"),
        Some("A-1"),
        "dealer's QuoteID must not be shown"
    );
    let router_qb = field(&sent[1].1, "117").unwrap().to_string();
    // The desk lifts B's offer.
    h.fix(
        0,
        "AJ",
        &format!("693=HIT1|694=1|117={router_qb}|55=XS123|54=1|"),
    );
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(2, "AJ")]);
    let hit = &sent[0].1;
    assert_eq!(field(hit, "117"), Some("B-1"));
    assert_eq!(field(hit, "694"), Some("1"));
    assert_eq!(field(hit, "44"), Some("99.25"));
    let exec_ref = field(hit, "693").unwrap().to_string();
    // B fills: the desk gets the report, A is told the trade was done away.
    h.fix(2, "8", &format!("37=B-ORD|17=B-EX1|150=F|39=2|55=XS123|54=1|31=99.25|32=1000000|151=0|14=1000000|6=99.25|693={exec_ref}|"));
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "8"), ty(1, "AJ")]);
    assert_eq!(field(&sent[0].1, "39"), Some("2"));
    assert_eq!(field(&sent[0].1, "693"), Some("HIT1"));
    assert_eq!(field(&sent[0].1, "31"), Some("99.25"));
    assert_eq!(field(&sent[1].1, "694"), Some("5"));
    assert_eq!(h.engine.open_rfqs(), 0);
    assert_eq!(h.counters().fills, 1);
}

#[test]
fn hit_by_new_order_single_goes_to_a_dealer_that_wants_orders() {
    let mut h = Harness::with(
        p(ProtocolKind::Broadcast),
        None,
        EngineLimits::default(),
        |c| {
            c.dealers[0].hit_with = HitWith::NewOrderSingle;
        },
    );
    h.rfq("D1", "2", "");
    let ra = req_to(&h.take(), 1);
    quote(&mut h, 1, &ra, "A-1", "99.5");
    let q = field(&h.take()[0].1, "117").unwrap().to_string();
    h.fix(
        0,
        "D",
        &format!("11=CL1|117={q}|55=XS123|54=2|60=20231114-22:13:20|38=1000000|40=D|44=99.5|"),
    );
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(1, "D")]);
    assert_eq!(field(&sent[0].1, "40"), Some("D"));
    assert_eq!(
        field(&sent[0].1, "44"),
        Some("99.5"),
        "a sell trades on the bid"
    );
    let cl = field(&sent[0].1, "11").unwrap().to_string();
    h.fix(
        1,
        "8",
        &format!("37=O|17=E|150=F|39=2|55=XS123|54=2|151=0|14=1000000|6=99.5|11={cl}|"),
    );
    let sent = h.take();
    assert_eq!(
        field(&sent[0].1, "11"),
        Some("CL1"),
        "desk sees its own ClOrdID"
    );
}

/// An admin status query reads the engine's state and changes nothing: a timer already due
/// stays unfired until the next real event, so a replay (which never sees admin queries)
/// rebuilds the same state.
#[test]
fn admin_status_query_answers_from_the_engine_and_fires_no_timer() {
    let mut h = Harness::new(p(ProtocolKind::Staggered), None);
    h.rfq("D1", "1", "");
    assert_eq!(types(&h.take()), vec![ty(1, "R"), ty(0, "AI")]);
    h.now_ms += 5_001; // the second dealer's gap is due, but no Tick yet
    let mut status = EngineStatus::default();
    let o = h.event(Event::Admin(AdminQuery::Status(&mut status)));
    assert_eq!(o, Outcome::Handled);
    assert_eq!(status.open_rfqs, 1);
    assert_eq!(status.counters, h.counters());
    assert_eq!(status.counters.rfqs_received, 1);
    assert!(
        h.take().is_empty(),
        "an admin query sends nothing and fires no timer"
    );
    h.advance_ms(0);
    assert_eq!(
        types(&h.take()),
        vec![ty(2, "R")],
        "the due gap fires on the next tick"
    );
}

#[test]
fn staggered_asks_one_dealer_per_gap() {
    let mut h = Harness::new(p(ProtocolKind::Staggered), None);
    h.rfq("D1", "1", "");
    assert_eq!(types(&h.take()), vec![ty(1, "R"), ty(0, "AI")]);
    h.advance_ms(4_999);
    assert!(h.take().is_empty(), "not before the gap");
    h.advance_ms(2);
    assert_eq!(types(&h.take()), vec![ty(2, "R")]);
    h.advance_ms(5_001);
    assert_eq!(types(&h.take()), vec![ty(3, "R")]);
    h.advance_ms(5_001);
    assert!(h.take().is_empty(), "panel exhausted");
}

#[test]
fn whisper_moves_on_after_timeout_decline_and_uncompetitive_quote() {
    let mut proto = p(ProtocolKind::Whisper);
    proto.max_dealers = 4;
    proto.whisper_tolerance_bps = 10.0;
    let mut h = Harness::new(proto, Some(100.0));
    h.rfq("D1", "1", "");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(1, "R"), ty(0, "AI")]);
    // A is silent for 20 s: B is asked.
    h.advance_ms(19_999);
    assert!(h.take().is_empty());
    h.advance_ms(2);
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(2, "R")]);
    let rb = req_to(&sent, 2);
    // B declines: C is asked.
    h.fix(2, "AG", &format!("131={rb}|658=10|146=1|55=XS123|"));
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(3, "R")]);
    let rc = req_to(&sent, 3);
    // C quotes 100.5 on a buy: 50 bps from fair value, outside 10 bps: relayed, and D asked.
    quote(&mut h, 3, &rc, "C-1", "100.5");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "S"), ty(4, "R")]);
    let rd = req_to(&sent, 4);
    // D quotes 100.05: inside tolerance, nobody else is asked.
    quote(&mut h, 4, &rd, "D-1", "100.05");
    assert_eq!(types(&h.take()), vec![ty(0, "S")]);
    let c = h.counters();
    assert_eq!((c.timeouts, c.declines, c.quotes_accepted), (1, 1, 2));
}

#[test]
fn whisper_escalates_to_the_rest_after_k_dealers() {
    let mut proto = p(ProtocolKind::Whisper);
    proto.max_dealers = 4;
    proto.escalate_after = 2;
    let mut h = Harness::new(proto, None);
    h.rfq("D1", "1", "");
    h.take();
    h.advance_ms(20_001);
    assert_eq!(types(&h.take()), vec![ty(2, "R")]);
    h.advance_ms(20_001);
    assert_eq!(
        types(&h.take()),
        vec![ty(3, "R"), ty(4, "R")],
        "after 2 one by one, the rest at once"
    );
}

#[test]
fn desk_cancel_in_the_middle_of_a_whisper_stops_it() {
    let mut h = Harness::new(p(ProtocolKind::Whisper), None);
    h.rfq("D1", "1", "");
    let ra = req_to(&h.take(), 1);
    quote(&mut h, 1, &ra, "A-1", "99");
    h.take();
    h.fix(0, "Z", "131=D1|117=*|298=1|");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(1, "AJ"), ty(0, "AI")]);
    assert_eq!(
        field(&sent[0].1, "694"),
        Some("6"),
        "quoting dealer told: pass"
    );
    assert_eq!(field(&sent[1].1, "297"), Some("4"));
    h.advance_ms(60_000);
    assert!(h.take().is_empty(), "no further dealer asked after cancel");
    assert_eq!(h.engine.open_rfqs(), 0);
}

#[test]
fn all_dealers_decline_ends_the_rfq_with_a_status_to_the_desk() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "");
    let sent = h.take();
    for d in 1..=3 {
        let r = req_to(&sent, d);
        h.fix(d, "AG", &format!("131={r}|658=10|146=1|55=XS123|"));
    }
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "AI")]);
    assert_eq!(field(&sent[0].1, "297"), Some("5"));
    assert_eq!(h.engine.open_rfqs(), 0);
    assert_eq!(h.counters().no_quote_ends, 1);
}

#[test]
fn every_dealer_silent_times_out_then_ends() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "");
    h.take();
    h.advance_ms(20_001);
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "AI")]);
    assert_eq!(field(&sent[0].1, "297"), Some("5"));
    assert_eq!(h.counters().timeouts, 3);
}

#[test]
fn rfq_expiry_tells_the_desk_and_later_quotes_are_late() {
    let mut proto = p(ProtocolKind::Broadcast);
    proto.rfq_expiry_ms = 10_000;
    let mut h = Harness::new(proto, None);
    h.rfq("D1", "1", "");
    let ra = req_to(&h.take(), 1);
    h.advance_ms(10_001);
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "AI")]);
    assert_eq!(field(&sent[0].1, "297"), Some("7"));
    quote(&mut h, 1, &ra, "A-1", "99");
    let sent = h.take();
    assert_eq!(
        types(&sent),
        vec![ty(1, "AI")],
        "the finished RFQ's quote is refused to the dealer"
    );
    assert_eq!(field(&sent[0].1, "297"), Some("9"));
    assert_eq!(h.counters().quotes_rejected_unknown, 1);
}

#[test]
fn desk_valid_until_time_shortens_the_expiry() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    // T0 = 2023-11-14T22:13:20Z; ValidUntil 5 s later.
    h.rfq("D1", "1", "|62=20231114-22:13:25");
    h.take();
    h.advance_ms(5_001);
    assert_eq!(field(&h.take()[0].1, "297"), Some("7"));
}

#[test]
fn late_quote_after_the_dealers_timeout_is_refused() {
    let mut proto = p(ProtocolKind::Broadcast);
    proto.response_timeout_ms = 1_000;
    let mut h = Harness::new(proto, None);
    h.rfq("D1", "1", "");
    let sent = h.take();
    let ra = req_to(&sent, 1);
    quote(&mut h, 2, &req_to(&sent, 2), "B-1", "99"); // keeps the RFQ alive
    h.take();
    h.advance_ms(1_001);
    h.take();
    quote(&mut h, 1, &ra, "A-1", "99");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(1, "AI")]);
    assert_eq!(field(&sent[0].1, "297"), Some("7"));
    assert_eq!(h.counters().quotes_rejected_late, 1);
}

#[test]
fn unknown_duplicate_and_mismatched_quotes_are_refused_and_counted() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "");
    let ra = req_to(&h.take(), 1);
    quote(&mut h, 1, "R999-0", "X-1", "99");
    quote(&mut h, 1, "garbage", "X-2", "99");
    quote(&mut h, 4, &ra, "D-1", "99"); // D was never asked (not in the panel)
    quote(&mut h, 1, &ra, "A-1", "99");
    quote(&mut h, 1, &ra, "A-1", "98.9");
    h.fix(
        1,
        "S",
        &format!("131={ra}|117=A-2|55=OTHER|48=XS0000000009|22=4|133=99|"),
    );
    h.fix(
        1,
        "S",
        &format!("131={ra}|117=A-3|55=XS123|48=XS0000000001|22=4|132=99|"),
    ); // buy needs an offer
    h.fix(
        1,
        "S",
        &format!("131={ra}|117=A-4|55=XS123|48=XS0000000001|22=4|133=-5|"),
    );
    h.fix(
        1,
        "S",
        &format!("131={ra}|117=A-5|55=XS123|48=XS0000000001|22=4|132=100|133=99|"),
    );
    let c = h.counters();
    assert_eq!(c.quotes_rejected_unknown, 3);
    assert_eq!(c.quotes_rejected_duplicate, 1);
    assert_eq!(c.quotes_rejected_mismatch, 4);
    assert_eq!(c.quotes_accepted, 1);
    let to_dealers = h.take().into_iter().filter(|(s, _)| *s != 0).count();
    assert_eq!(to_dealers, 8, "each refused quote gets a QuoteStatusReport");
}

#[test]
fn a_requote_replaces_the_quote_and_the_old_router_id_is_dead() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "");
    let ra = req_to(&h.take(), 1);
    quote(&mut h, 1, &ra, "A-1", "99.5");
    let old = field(&h.take()[0].1, "117").unwrap().to_string();
    quote(&mut h, 1, &ra, "A-2", "99.4");
    let new = field(&h.take()[0].1, "117").unwrap().to_string();
    assert_ne!(old, new);
    h.fix(0, "AJ", &format!("693=H|694=1|117={old}|55=XS123|54=1|"));
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "8")]);
    assert_eq!(field(&sent[0].1, "150"), Some("8"));
    h.fix(0, "AJ", &format!("693=H2|694=1|117={new}|55=XS123|54=1|"));
    assert_eq!(field(&h.take()[0].1, "44"), Some("99.4"));
}

#[test]
fn hit_on_expired_or_withdrawn_quote_is_rejected() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "");
    let sent = h.take();
    let (ra, rb) = (req_to(&sent, 1), req_to(&sent, 2));
    quote(&mut h, 1, &ra, "A-1", "99.5");
    let qa = field(&h.take()[0].1, "117").unwrap().to_string();
    // B quotes valid for 1 second only.
    h.fix(
        2,
        "S",
        &format!("131={rb}|117=B-1|55=XS123|48=XS0000000001|22=4|133=99|62=20231114-22:13:21|"),
    );
    let qb = field(&h.take()[0].1, "117").unwrap().to_string();
    // A withdraws: the desk is told.
    h.fix(1, "Z", "117=A-1|298=1|");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "Z")]);
    assert_eq!(field(&sent[0].1, "117"), Some(qa.as_str()));
    h.fix(0, "AJ", &format!("693=H1|694=1|117={qa}|55=XS123|54=1|"));
    let sent = h.take();
    assert_eq!(field(&sent[0].1, "150"), Some("8"));
    assert_eq!(field(&sent[0].1, "58"), Some("quote withdrawn"));
    h.advance_ms(2_000);
    h.fix(0, "AJ", &format!("693=H2|694=1|117={qb}|55=XS123|54=1|"));
    let sent = h.take();
    assert_eq!(field(&sent[0].1, "58"), Some("quote expired"));
    assert_eq!(h.counters().hits_rejected, 2);
}

#[test]
fn dealer_disconnect_counts_as_a_decline_and_the_rfq_goes_on() {
    let mut h = Harness::new(p(ProtocolKind::Whisper), None);
    h.rfq("D1", "1", "");
    assert_eq!(types(&h.take()), vec![ty(1, "R"), ty(0, "AI")]);
    h.event(Event::SessionDown(SessionId(1)));
    assert_eq!(types(&h.take()), vec![ty(2, "R")]);
    assert_eq!(h.counters().dealer_disconnects, 1);
    // A new RFQ does not pick the offline dealer.
    h.rfq("D2", "1", "");
    let sent = h.take();
    assert!(sent.iter().all(|(s, _)| *s != 1));
}

#[test]
fn dealer_disconnect_withdraws_its_live_quote_from_the_desk() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "");
    let ra = req_to(&h.take(), 1);
    quote(&mut h, 1, &ra, "A-1", "99");
    h.take();
    h.event(Event::SessionDown(SessionId(1)));
    assert_eq!(types(&h.take()), vec![ty(0, "Z")]);
}

#[test]
fn trader_override_uses_the_named_panel_and_journals_the_recommendation() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "|453=1|448=DLRD|447=D|452=1");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(4, "R"), ty(0, "AI")]);
    match &h.journal[0] {
        Record::Decision {
            panel,
            recommended,
            overridden,
            ..
        } => {
            assert!(*overridden);
            assert_eq!(panel.len(), 1);
            assert_eq!(recommended.len(), 3);
        }
        other => panic!("expected a decision, got {other:?}"),
    }
    assert_eq!(h.counters().overrides, 1);
    // PartyRole 35 (liquidity provider) names a dealer too; an unknown dealer is refused.
    h.rfq("D2", "1", "|453=1|448=DLRC|447=D|452=35");
    assert_eq!(types(&h.take()), vec![ty(3, "R"), ty(0, "AI")]);
    h.rfq("D3", "1", "|453=1|448=NOBODY|447=D|452=1");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "AG")]);
    assert_eq!(field(&sent[0].1, "658"), Some("99"));
}

#[test]
fn auto_execution_hits_a_full_size_quote_within_tolerance() {
    let mut proto = p(ProtocolKind::Broadcast);
    proto.auto_execute_bps = Some(5.0);
    let mut h = Harness::new(proto, Some(100.0));
    h.rfq("D1", "1", "");
    let sent = h.take();
    quote(&mut h, 1, &req_to(&sent, 1), "A-1", "100.10"); // 10 bps: no
    assert_eq!(types(&h.take()), vec![ty(0, "S")]);
    quote(&mut h, 2, &req_to(&sent, 2), "B-1", "100.03"); // 3 bps, full size: yes
    assert_eq!(types(&h.take()), vec![ty(0, "S"), ty(2, "AJ")]);
    assert_eq!(h.counters().auto_executions, 1);
}

#[test]
fn limits_reached_reject_the_request_and_move_a_counter() {
    let limits = EngineLimits {
        max_open_rfqs: 2,
        ..EngineLimits::default()
    };
    let mut h = Harness::with(p(ProtocolKind::Broadcast), None, limits, |_| {});
    h.rfq("D1", "1", "");
    h.rfq("D2", "1", "");
    h.take();
    h.rfq("D3", "1", "");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "AG")]);
    assert_eq!(field(&sent[0].1, "658"), Some("3"));
    assert_eq!(h.counters().rfqs_rejected_limit, 1);
    // Too many legs in one request.
    let limits = EngineLimits {
        max_legs: 2,
        ..EngineLimits::default()
    };
    let mut h = Harness::with(p(ProtocolKind::Broadcast), None, limits, |_| {});
    h.fix(0, "R", "131=M|146=3|55=A|38=1|55=B|38=1|55=C|38=1|");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "AG")]);
    assert_eq!(field(&sent[0].1, "658"), Some("3"));
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.fix(0, "R", "131=A|146=1|55=X|");
    h.fix(0, "R", "131=B|146=1|55=X|38=0|");
    h.fix(0, "R", "131=C|146=1|55=[N/A]|38=5|");
    h.fix(0, "R", "131=D|146=1|55=X|48=ABC|22=8|38=5|");
    h.fix(0, "R", "131=E|146=1|55=X|54=7|38=5|");
    let sent = h.take();
    assert_eq!(sent.len(), 5);
    assert!(sent
        .iter()
        .all(|(s, m)| *s == 0 && field(m, "35") == Some("AG")));
    assert_eq!(h.counters().rfqs_rejected_invalid, 5);
}

#[test]
fn no_dealer_online_refuses_the_request() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    for s in 1..=4 {
        h.event(Event::SessionDown(SessionId(s)));
    }
    h.rfq("D1", "1", "");
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "AG")]);
    assert_eq!(field(&sent[0].1, "658"), Some("8"));
}

#[test]
fn multi_leg_requests_become_one_rfq_per_leg() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.fix(
        0,
        "R",
        "131=M|146=2|55=A|48=XS0000000001|22=4|54=1|38=5|55=B|48=XS0000000002|22=4|54=2|38=7|",
    );
    let sent = h.take();
    assert_eq!(
        sent.iter()
            .filter(|(_, m)| field(m, "35") == Some("AI"))
            .count(),
        2
    );
    assert_eq!(
        sent.iter()
            .filter(|(_, m)| field(m, "35") == Some("R"))
            .count(),
        6
    );
    assert_eq!(h.engine.open_rfqs(), 2);
}

#[test]
fn last_look_rejection_reopens_the_rfq_for_another_quote() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.rfq("D1", "1", "");
    let sent = h.take();
    quote(&mut h, 1, &req_to(&sent, 1), "A-1", "99.5");
    quote(&mut h, 2, &req_to(&sent, 2), "B-1", "99.6");
    let s = h.take();
    let (qa, qb) = (
        field(&s[0].1, "117").unwrap().to_string(),
        field(&s[1].1, "117").unwrap().to_string(),
    );
    h.fix(0, "AJ", &format!("693=H1|694=1|117={qa}|55=XS123|54=1|"));
    let exec_ref = field(&h.take()[0].1, "693").unwrap().to_string();
    h.fix(
        1,
        "8",
        &format!("37=O|17=E|150=8|39=8|55=XS123|54=1|151=0|14=0|6=0|693={exec_ref}|58=last look|"),
    );
    assert_eq!(types(&h.take()), vec![ty(0, "8")]);
    h.fix(0, "AJ", &format!("693=H2|694=1|117={qb}|55=XS123|54=1|"));
    assert_eq!(types(&h.take()), vec![ty(2, "AJ")]);
}

#[test]
fn unsupported_messages_are_reported_not_swallowed() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    assert_eq!(
        h.fix(0, "6", "23=IOI1|28=N|55=X|54=1|27=M|"),
        Outcome::Unsupported
    );
    assert_eq!(
        h.fix(9, "R", "131=A|146=1|55=X|38=1|"),
        Outcome::Unsupported,
        "unknown session"
    );
}

#[test]
fn unknown_instrument_is_refused_with_658_1_naming_it() {
    let mut h = Harness::new(p(ProtocolKind::Broadcast), None);
    h.fix(
        0,
        "R",
        &format!("131=U1|146=1|55=ZZZ|48={UNKNOWN_ISIN}|22=4|54=1|38=1000000|"),
    );
    h.fix(
        0,
        "R",
        &format!("131=U2|146=1|55={UNKNOWN_SYMBOL}|54=2|38=1000000|"),
    );
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "AG"), ty(0, "AG")]);
    for ((_, m), (req, named)) in sent
        .iter()
        .zip([("U1", UNKNOWN_ISIN), ("U2", UNKNOWN_SYMBOL)])
    {
        assert_eq!(field(m, "131"), Some(req));
        assert_eq!(field(m, "658"), Some("1"));
        let text = field(m, "58").unwrap();
        assert!(text.contains(named), "Text {text:?} must name {named}");
        assert!(text.starts_with("unknown instrument"), "{text}");
    }
    assert_eq!(field(&sent[0].1, "48"), Some(UNKNOWN_ISIN));
    assert_eq!(h.engine.open_rfqs(), 0);
    assert_eq!(h.counters().rfqs_rejected_invalid, 2);
    assert_eq!(h.counters().dealer_requests_sent, 0);
    // A known instrument still opens an RFQ.
    h.rfq("K1", "1", "");
    assert!(types(&h.take()).contains(&ty(1, "R")));
}

/// The engine reports every step of an RFQ to TCA, and `Tca` turns the facts into the
/// winner's improvement vs arrival and vs cover (DealerId = index in the harness's dealers).
#[test]
fn tca_facts_follow_the_rfq_and_feed_tca() {
    use rfq_router::rfq::types::DealerId;
    use rfq_router::select::model::Observation;
    use rfq_router::select::tca::{Tca, TcaConfig, TcaOutput};
    let mut h = Harness::new(p(ProtocolKind::Broadcast), Some(99.5));
    h.rfq("D1", "1", "");
    let sent = h.take();
    quote(&mut h, 1, &req_to(&sent, 1), "A-1", "99.5");
    quote(&mut h, 2, &req_to(&sent, 2), "B-1", "99.25");
    h.advance_ms(1_000);
    h.fix(
        3,
        "AG",
        &format!("131={}|658=10|146=1|55=XS123|", req_to(&sent, 3)),
    );
    let s = h.take();
    let qb = field(&s[1].1, "117").unwrap().to_string();
    h.fix(0, "AJ", &format!("693=H1|694=1|117={qb}|55=XS123|54=1|"));
    let exec_ref = field(&h.take()[0].1, "693").unwrap().to_string();
    h.advance_ms(500);
    h.fix(2, "8", &format!("37=B-ORD|17=B-EX1|150=F|39=2|55=XS123|54=1|31=99.25|32=1000000|151=0|14=1000000|6=99.25|693={exec_ref}|"));
    let (a, b, c) = (DealerId(0), DealerId(1), DealerId(2));
    let t0 = Nanos::from_millis(T0);
    let kinds: Vec<String> = h
        .tca
        .iter()
        .map(|f| {
            format!("{f:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Opened", "Asked", "Asked", "Asked", "Quoted", "Quoted", "Declined", "Executed",
            "Finished"
        ]
    );
    assert!(
        matches!(h.tca[0], TcaFact::Opened { arrival_mid, now, .. } if arrival_mid == 99.5 && now == t0)
    );
    assert!(matches!(h.tca[5], TcaFact::Quoted { dealer, px, .. } if dealer == b && px == 99.25));
    assert!(
        matches!(h.tca[6], TcaFact::Declined { dealer, now, .. } if dealer == c && now == Nanos::from_millis(T0 + 1_000))
    );
    assert!(
        matches!(h.tca[7], TcaFact::Executed { dealer, px, qty, .. } if dealer == b && px == 99.25 && qty == 1e6)
    );
    match &h.tca[8] {
        TcaFact::Finished {
            asked,
            winner,
            cover_px,
            ..
        } => {
            assert_eq!(asked.as_slice(), &[a, b, c]);
            assert_eq!(*winner, Some(b));
            assert_eq!(*cover_px, 99.5, "cover: the best losing offer");
        }
        f => panic!("expected Finished, got {f:?}"),
    }
    let mut tca = Tca::new(TcaConfig::default());
    let mut out = Vec::new();
    for f in &h.tca {
        tca.on_fact(f, &mut out);
    }
    let won = out
        .iter()
        .find_map(|o| match o {
            TcaOutput::Update(u) if u.dealer == b => match u.obs {
                Observation::Won {
                    price_improvement_bps,
                    vs_cover_bps,
                } => Some((price_improvement_bps, vs_cover_bps)),
                _ => None,
            },
            _ => None,
        })
        .expect("B won");
    assert!(
        (won.0 - (99.5 - 99.25) / 99.5 * 1e4).abs() < 1e-9,
        "{won:?}"
    );
    assert!((won.1.unwrap() - (99.5 - 99.25) / 99.5 * 1e4).abs() < 1e-9);
    assert_eq!(tca.open_rfqs(), 0);
}

/// A broadcast RFQ with quotes from A and B; the desk hits B (by `hit_type`: "AJ" or "D").
/// Returns the harness and the router's reference the hit carries to B.
fn hit_b(hit_with_b: HitWith, hit_type: &str, timeout_ms: u64) -> (Harness, String) {
    let limits = EngineLimits {
        execution_timeout_ms: timeout_ms,
        max_timed_out_executions: 4,
        ..EngineLimits::default()
    };
    let mut h = Harness::with(p(ProtocolKind::Broadcast), None, limits, |c| {
        c.dealers[1].hit_with = hit_with_b;
    });
    h.rfq("D1", "1", "");
    let sent = h.take();
    let (ra, rb) = (req_to(&sent, 1), req_to(&sent, 2));
    quote(&mut h, 1, &ra, "A-1", "99.5");
    quote(&mut h, 2, &rb, "B-1", "99.25");
    let router_qb = field(&h.take()[1].1, "117").unwrap().to_string();
    if hit_type == "AJ" {
        h.fix(
            0,
            "AJ",
            &format!("693=HIT1|694=1|117={router_qb}|55=XS123|54=1|"),
        );
    } else {
        h.fix(
            0,
            "D",
            &format!("11=CL1|117={router_qb}|55=XS123|54=1|60=20231114-22:13:20|38=1000000|40=D|44=99.25|"),
        );
    }
    let sent = h.take();
    assert_eq!(
        types(&sent),
        vec![ty(2, if hit_type == "AJ" { "AJ" } else { "D" })]
    );
    let tag = if hit_with_b == HitWith::QuoteResponse {
        "693"
    } else {
        "11"
    };
    let exec_ref = field(&sent[0].1, tag).unwrap().to_string();
    (h, exec_ref)
}

#[test]
fn execution_timeout_rejects_the_hit_to_the_desk_withdraws_it_from_the_dealer_and_ends_the_rfq() {
    let (mut h, exec_ref) = hit_b(HitWith::QuoteResponse, "AJ", 30_000);
    h.advance_ms(29_999);
    assert!(h.take().is_empty(), "not before the timeout");
    assert_eq!(h.engine.open_rfqs(), 1);
    h.advance_ms(2);
    let sent = h.take();
    assert_eq!(
        types(&sent),
        vec![ty(0, "8"), ty(2, "AJ"), ty(1, "AJ"), ty(0, "AI")],
        "desk: rejected report; B: hit expired; A: pass; desk: RFQ over"
    );
    let er = &sent[0].1;
    assert_eq!(field(er, "150"), Some("8"));
    assert_eq!(field(er, "39"), Some("8"));
    assert_eq!(field(er, "693"), Some("HIT1"), "the desk's QuoteRespID");
    assert_eq!(field(er, "14"), Some("0"));
    assert!(field(er, "58").unwrap().contains("30000 ms"));
    assert_eq!(field(&sent[1].1, "694"), Some("3"), "B: the hit expired");
    assert_eq!(field(&sent[1].1, "117"), Some("B-1"));
    assert_ne!(field(&sent[1].1, "693"), Some(exec_ref.as_str()));
    assert_eq!(field(&sent[2].1, "694"), Some("6"), "A: pass");
    assert_eq!(field(&sent[3].1, "297"), Some("4"));
    assert_eq!(h.engine.open_rfqs(), 0);
    assert_eq!(h.counters().execution_timeouts, 1);
    assert_eq!(h.engine.next_wakeup(), None, "no timer left behind");
}

#[test]
fn execution_timeout_on_an_order_sends_the_dealer_an_order_cancel_request() {
    let (mut h, exec_ref) = hit_b(HitWith::NewOrderSingle, "D", 5_000);
    h.advance_ms(5_001);
    let sent = h.take();
    assert_eq!(types(&sent)[..2], [ty(0, "8"), ty(2, "F")]);
    assert_eq!(field(&sent[0].1, "11"), Some("CL1"), "the desk's ClOrdID");
    let cancel = &sent[1].1;
    assert_eq!(field(cancel, "41"), Some(exec_ref.as_str()));
    assert_ne!(field(cancel, "11"), Some(exec_ref.as_str()));
    assert_eq!(field(cancel, "54"), Some("1"));
    assert_eq!(field(cancel, "38"), Some("1000000"));
    // The dealer refuses the cancel: counted, not refused as unsupported.
    let o = h.fix(
        2,
        "9",
        &format!("37=O|11=C|41={exec_ref}|39=8|434=1|102=0|"),
    );
    assert_eq!(o, Outcome::Handled);
    assert_eq!(h.counters().execution_cancel_rejects, 1);
}

#[test]
fn a_report_in_time_stops_the_execution_timeout() {
    let (mut h, exec_ref) = hit_b(HitWith::QuoteResponse, "AJ", 30_000);
    // B acknowledges (ExecType 0 New) within the timeout, then fills long after it.
    h.advance_ms(10_000);
    h.fix(
        2,
        "8",
        &format!("37=B|17=B0|150=0|39=0|55=XS123|54=1|151=1000000|14=0|6=0|693={exec_ref}|"),
    );
    assert_eq!(types(&h.take()), vec![ty(0, "8")]);
    h.advance_ms(60_000);
    assert!(h.take().is_empty(), "the timeout was stopped by the report");
    assert_eq!(h.counters().execution_timeouts, 0);
    h.fix(2, "8", &format!("37=B|17=B1|150=F|39=2|55=XS123|54=1|31=99.25|32=1000000|151=0|14=1000000|6=99.25|693={exec_ref}|"));
    assert_eq!(types(&h.take()), vec![ty(0, "8"), ty(1, "AJ")]);
    assert_eq!(h.counters().fills, 1);
}

#[test]
fn a_late_fill_after_the_execution_timeout_reaches_the_desk_marked_late() {
    let (mut h, exec_ref) = hit_b(HitWith::QuoteResponse, "AJ", 30_000);
    h.advance_ms(30_001);
    let timeout_er = h.take()[0].1.clone();
    // A late "rejected" agrees with what the desk was told: counted, not relayed.
    h.fix(
        2,
        "8",
        &format!("37=B|17=B0|150=8|39=8|55=XS123|54=1|151=0|14=0|6=0|693={exec_ref}|"),
    );
    assert!(h.take().is_empty());
    assert_eq!(h.counters().late_execution_reports, 1);
    // A late fill is a trade the desk must know about.
    h.fix(2, "8", &format!("37=B|17=B1|150=F|39=2|55=XS123|54=1|31=99.25|32=1000000|151=0|14=1000000|6=99.25|693={exec_ref}|"));
    let sent = h.take();
    assert_eq!(types(&sent), vec![ty(0, "8")]);
    let late = &sent[0].1;
    assert_eq!(field(late, "39"), Some("2"));
    assert_eq!(field(late, "150"), Some("F"));
    assert_eq!(field(late, "693"), Some("HIT1"));
    assert_eq!(
        field(late, "37"),
        field(&timeout_er, "37"),
        "same OrderID as the reject"
    );
    assert_ne!(field(late, "17"), field(&timeout_er, "17"), "a new ExecID");
    assert_eq!(field(late, "31"), Some("99.25"));
    assert!(field(late, "58").unwrap().starts_with("LATE FILL"));
    assert_eq!(h.counters().late_execution_reports, 2);
    assert_eq!(h.counters().late_fills_relayed, 1);
    assert_eq!(h.counters().quotes_rejected_unknown, 0);
    // Another dealer cannot report on B's hit.
    h.fix(
        1,
        "8",
        &format!("37=A|17=A1|150=F|39=2|55=XS123|54=1|151=0|14=1|6=1|693={exec_ref}|"),
    );
    assert!(h.take().is_empty());
    assert_eq!(h.counters().late_execution_reports, 2);
    assert_eq!(h.counters().quotes_rejected_unknown, 1);
}

#[test]
fn timed_out_executions_are_remembered_up_to_their_limit() {
    let (mut h, first_ref) = hit_b(HitWith::QuoteResponse, "AJ", 1_000);
    h.advance_ms(1_001);
    h.take();
    // Four more timed-out hits push the first out of a memory of four.
    for n in 0..4 {
        h.rfq(&format!("N{n}"), "1", "");
        let rb = req_to(&h.take(), 2);
        quote(&mut h, 2, &rb, &format!("B-{n}"), "99.25");
        let q = field(&h.take()[0].1, "117").unwrap().to_string();
        h.fix(0, "AJ", &format!("693=H{n}|694=1|117={q}|55=XS123|54=1|"));
        h.take();
        h.advance_ms(1_001);
        h.take();
    }
    assert_eq!(h.counters().execution_timeouts, 5);
    h.fix(
        2,
        "8",
        &format!("37=B|17=B1|150=F|39=2|55=XS123|54=1|151=0|14=1000000|6=99.25|693={first_ref}|"),
    );
    assert!(h.take().is_empty(), "forgotten: refused as unknown");
    assert_eq!(h.counters().late_execution_reports, 0);
    assert_eq!(h.counters().quotes_rejected_unknown, 1);
}
