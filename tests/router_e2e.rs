//! The router end to end over loopback TCP: a desk and dealers as FIX peers, the real network
//! loop, FIX sessions, host and RFQ engine, for each protocol.

mod support;

use rfq_router::config::{Config, Role};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn, RunningHost};
use rfq_router::net::NetSettings;
use rfq_router::router::RouterApp;
use rfq_router::select::StaticTiers;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use support::{now, Peer};

const ROUTER_TOML: &str = r#"
[rfq]
desk_sessions = ["desk"]
[rfq.protocol]
kind = "PROTOCOL"
max_dealers = 3
response_timeout_ms = 5000
stagger_gap_ms = 150
rfq_expiry_ms = 60000

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

[[session]]
name = "dealer-b"
role = "initiator"
connect = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERB"
reconnect_interval_ms = 50
reconnect_max_ms = 200

[[session]]
name = "dealer-c"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERC"
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
hit_with = "new_order_single"
[[dealer]]
name = "Dealer C"
party_id = "DLRC"
session = "dealer-c"
tier = 2
"#;

struct World {
    _router: RunningHost,
    desk: Peer,
    a: Peer,
    b: Peer,
    c: Peer,
}

fn start(protocol: &str) -> World {
    let text = ROUTER_TOML.replace("PROTOCOL", protocol);
    let mut config = Config::parse(&text, "test router.toml").unwrap_or_else(|e| panic!("{e}"));
    let dealers = Dealers::parse(DEALERS_TOML, "test dealers.toml", &config)
        .unwrap_or_else(|e| panic!("{e}"));
    // Dealer B listens; the router dials it.
    let b_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    for s in &mut config.sessions {
        s.addr = match s.role {
            Role::Acceptor => "127.0.0.1:0".parse().unwrap(),
            Role::Initiator => b_listener.local_addr().unwrap(),
        };
    }
    let app = RouterApp::from_config(
        &config,
        &dealers,
        StaticTiers {
            protocol: config.rfq.protocol,
        },
        now(),
    );
    let router = spawn(
        "router-e2e",
        NetSettings::from_config(&config),
        sessions_from_config(&config),
        16,
        Arc::new(Validator::fix44()),
        app,
    )
    .unwrap();
    let addr: SocketAddr = router.listen_addrs[0].unwrap();
    let mut b = Peer::accept(&b_listener, "DEALERB", "ROUTER");
    let logon = b.recv_type("A");
    assert_eq!(logon.get(49), Some("ROUTER"));
    b.answer_logon_with_reset(30);
    let mut desk = Peer::connect(addr, "DESK", "ROUTER");
    desk.logon(30);
    let mut a = Peer::connect(addr, "DEALERA", "ROUTER");
    a.logon(30);
    let mut c = Peer::connect(addr, "DEALERC", "ROUTER");
    c.logon(30);
    // A Heartbeat round trip on each session proves its logon was processed router-side.
    for p in [&mut desk, &mut a, &mut b, &mut c] {
        p.send("1", "112=ready|");
        let hb = p.try_recv().expect("heartbeat");
        assert_eq!(hb.get(112), Some("ready"), "{}", hb.0);
    }
    World {
        _router: router,
        desk,
        a,
        b,
        c,
    }
}

const RFQ: &str = "131=DESK-1|146=1|55=ACME 5 2031|48=US0000000001|22=4|54=1|38=2000000|";

fn quote(dealer: &mut Peer, req: &str, id: &str, px: &str) {
    dealer.send(
        "S",
        &format!("131={req}|117={id}|55=ACME 5 2031|48=US0000000001|22=4|133={px}|135=2000000|"),
    );
}

#[test]
fn broadcast_rfq_quotes_hit_and_fill_cross_the_wire() {
    let mut w = start("broadcast");
    w.desk.send("R", RFQ);
    let accepted = w.desk.recv_type("AI");
    assert_eq!(accepted.get(297), Some("0"));
    let ra = w.a.recv_type("R");
    let rb = w.b.recv_type("R");
    let rc = w.c.recv_type("R");
    for r in [&ra, &rb, &rc] {
        assert!(!r.0.contains("DESK"), "desk identity leaked: {}", r.0);
        assert_eq!(r.get(48), Some("US0000000001"));
    }
    quote(&mut w.a, ra.get(131).unwrap(), "A1", "101.25");
    quote(&mut w.b, rb.get(131).unwrap(), "B1", "101.10");
    w.c.send(
        "AG",
        &format!("131={}|658=10|146=1|55=ACME 5 2031|", rc.get(131).unwrap()),
    );
    let q1 = w.desk.recv_type("S");
    let q2 = w.desk.recv_type("S");
    let best = [&q1, &q2]
        .into_iter()
        .find(|q| q.get(448) == Some("DLRB"))
        .expect("B's quote")
        .clone();
    assert_eq!(best.get(133), Some("101.10"));
    assert_eq!(best.get(131), Some("DESK-1"));
    // The desk lifts B's offer with a NewOrderSingle; B wants orders.
    let qid = best.get(117).unwrap().to_string();
    w.desk.send("D", &format!("11=ORD-1|117={qid}|55=ACME 5 2031|54=1|60=20250101-00:00:00|38=2000000|40=D|44=101.10|"));
    let order = w.b.recv_type("D");
    assert_eq!(order.get(117), Some("B1"));
    assert_eq!(order.get(44), Some("101.10"));
    let cl = order.get(11).unwrap().to_string();
    w.b.send("8", &format!("37=B-O1|17=B-E1|150=F|39=2|11={cl}|55=ACME 5 2031|54=1|31=101.10|32=2000000|151=0|14=2000000|6=101.10|"));
    let fill = w.desk.recv_type("8");
    assert_eq!(fill.get(11), Some("ORD-1"));
    assert_eq!(fill.get(39), Some("2"));
    assert_eq!(fill.get(31), Some("101.10"));
    let done_away = w.a.recv_type("AJ");
    assert_eq!(done_away.get(694), Some("5"));
    assert_eq!(done_away.get(117), Some("A1"));
}

#[test]
fn whisper_asks_the_next_dealer_only_after_a_decline() {
    let mut w = start("whisper");
    w.desk.send("R", RFQ);
    w.desk.recv_type("AI");
    let ra = w.a.recv_type("R");
    w.a.send(
        "AG",
        &format!("131={}|658=10|146=1|55=ACME 5 2031|", ra.get(131).unwrap()),
    );
    let rb = w.b.recv_type("R");
    quote(&mut w.b, rb.get(131).unwrap(), "B1", "100.5");
    let q = w.desk.recv_type("S");
    assert_eq!(q.get(448), Some("DLRB"));
    // C is never asked: a Heartbeat round trip shows nothing else was queued for it.
    w.c.send("1", "112=probe|");
    let next = w.c.try_recv().expect("heartbeat");
    assert_eq!(
        next.msg_type(),
        "0",
        "C got something other than the probe's answer: {}",
        next.0
    );
    assert_eq!(next.get(112), Some("probe"));
}

#[test]
fn staggered_asks_one_dealer_per_gap() {
    let mut w = start("staggered");
    let t0 = std::time::Instant::now();
    w.desk.send("R", RFQ);
    w.desk.recv_type("AI");
    w.a.recv_type("R");
    w.b.recv_type("R");
    let gap = t0.elapsed();
    assert!(
        gap >= std::time::Duration::from_millis(150),
        "second dealer asked after {gap:?}, before the 150 ms gap"
    );
    w.c.recv_type("R");
}

#[test]
fn a_dealer_disconnect_mid_rfq_counts_as_a_decline() {
    let mut w = start("whisper");
    w.desk.send("R", RFQ);
    w.desk.recv_type("AI");
    w.a.recv_type("R");
    drop(w.a);
    let rb = w.b.recv_type("R");
    assert!(rb.get(131).is_some());
}
