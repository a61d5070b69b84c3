//! The admin thread over loopback: `/metrics` after real RFQs through a real router (the
//! counters and histogram counts match the traffic, and the text parses as Prometheus
//! exposition), `rfq-router stats` against it, `/api/recommend` against
//! `rfq-router recommend --json`, and hostile requests (oversized, slow, malformed, bad path,
//! bad method, bad query, one connection too many), each answered and counted, never a panic.

mod support;

use rfq_router::admin::{self, AdminContext, PanelRecommender};
use rfq_router::config::{AdminSettings, Config};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn, RunningHost};
use rfq_router::metrics::exposition::{find, parse, Sample};
use rfq_router::metrics::snapshot_channel;
use rfq_router::net::NetSettings;
use rfq_router::router::RouterApp;
use rfq_router::select::scored::{load_instruments, load_rules, NeutralScores, ScoredPanel};
use rfq_router::select::StaticTiers;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use support::{now, Peer};

const ROUTER_TOML: &str = r#"
[rfq]
desk_sessions = ["desk"]
[rfq.protocol]
kind = "broadcast"
max_dealers = 2
response_timeout_ms = 60000
rfq_expiry_ms = 120000

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

const TIMEOUT: Duration = Duration::from_secs(20);

/// A router with its admin thread on an ephemeral loopback port.
struct Rig {
    admin: admin::RunningAdmin,
    _router: RunningHost,
    fix_addr: SocketAddr,
}

fn start(settings: AdminSettings) -> Rig {
    let mut config =
        Config::parse(ROUTER_TOML, "test router.toml").unwrap_or_else(|e| panic!("{e}"));
    for s in &mut config.sessions {
        s.addr = "127.0.0.1:0".parse().unwrap();
    }
    let dealers = Dealers::parse(DEALERS_TOML, "test dealers.toml", &config)
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut snapshots, server) = snapshot_channel(4, None);
    let app = RouterApp::from_config(
        &config,
        &dealers,
        StaticTiers {
            protocol: config.rfq.protocol,
        },
        now(),
    )
    .with_admin(server);
    let router = spawn(
        "admin-test-engine",
        NetSettings::from_config(&config),
        sessions_from_config(&config),
        16,
        Arc::new(Validator::fix44()),
        app,
    )
    .unwrap();
    snapshots.set_wake(router.handle.clone());
    let admin = admin::spawn(
        "127.0.0.1:0".parse().unwrap(),
        &settings,
        None,
        AdminContext {
            snapshots,
            net: Some(router.handle.clone()),
            journal: None,
            recommender: None,
        },
    )
    .unwrap();
    Rig {
        admin,
        fix_addr: router.listen_addrs[0].unwrap(),
        _router: router,
    }
}

fn metrics(addr: SocketAddr) -> Vec<Sample> {
    let (status, body) = admin::get(addr, "/metrics", TIMEOUT).expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
}

const RFQS: usize = 25;

#[test]
fn metrics_count_real_rfqs_and_stats_prints_them() {
    let rig = start(AdminSettings::default());
    let mut desk = Peer::connect(rig.fix_addr, "DESK", "ROUTER");
    desk.logon(30);
    let mut a = Peer::connect(rig.fix_addr, "DEALERA", "ROUTER");
    a.logon(30);
    let mut b = Peer::connect(rig.fix_addr, "DEALERB", "ROUTER");
    b.logon(30);
    // A Heartbeat round trip on each session proves its logon was processed router-side.
    for p in [&mut desk, &mut a, &mut b] {
        p.send("1", "112=ready|");
        let hb = p.try_recv().expect("heartbeat");
        assert_eq!(hb.get(112), Some("ready"), "{}", hb.0);
    }
    for n in 0..RFQS {
        desk.send(
            "R",
            &format!("131=DESK-{n}|146=1|55=ACME 5 2031|48=US0000000001|22=4|54=1|38=1000000|"),
        );
        desk.recv_type("AI");
        let ra = a.recv_type("R");
        b.recv_type("R");
        a.send(
            "S",
            &format!(
                "131={}|117=A{n}|55=ACME 5 2031|48=US0000000001|22=4|133=101.25|135=1000000|",
                ra.get(131).unwrap()
            ),
        );
        let q = desk.recv_type("S");
        assert_eq!(q.get(131), Some(format!("DESK-{n}").as_str()));
    }
    let s = metrics(rig.admin.local_addr);
    let n = RFQS as f64;
    assert_eq!(value(&s, "rfq_router_engine_rfqs_received_total", &[]), n);
    assert_eq!(
        value(&s, "rfq_router_engine_dealer_requests_sent_total", &[]),
        2.0 * n
    );
    assert_eq!(value(&s, "rfq_router_engine_quotes_accepted_total", &[]), n);
    assert_eq!(value(&s, "rfq_router_open_rfqs", &[]), n);
    let count = |stage: &str| value(&s, "rfq_router_stage_seconds_count", &[("stage", stage)]);
    assert_eq!(count("select"), n, "one per desk QuoteRequest");
    assert_eq!(count("wire_to_wire"), n, "one per desk QuoteRequest");
    assert_eq!(count("quote_turnaround"), n, "one per relayed quote");
    assert_eq!(count("engine"), n, "the quotes");
    assert_eq!(count("decode"), 2.0 * n, "requests and quotes");
    assert_eq!(count("encode"), 2.0 * n, "requests and quotes");
    assert_eq!(count("journal_lag"), 0.0, "nothing records it yet");
    for stage in [
        "select",
        "wire_to_wire",
        "quote_turnaround",
        "decode",
        "encode",
    ] {
        let p50 = value(
            &s,
            "rfq_router_stage_seconds",
            &[("stage", stage), ("quantile", "0.5")],
        );
        let max = value(&s, "rfq_router_stage_max_seconds", &[("stage", stage)]);
        assert!(p50 > 0.0 && p50 <= max, "{stage}: p50 {p50}, max {max}");
    }
    // Wire-to-wire spans decode, select and encode of the same message.
    let sum = |stage: &str| value(&s, "rfq_router_stage_seconds_sum", &[("stage", stage)]);
    assert!(sum("wire_to_wire") >= sum("select"));
    // Writes to dealers and desk are sampled (3 per RFQ: two requests, one quote).
    assert_eq!(
        value(
            &s,
            "rfq_router_queue_depth_count",
            &[("queue", "net_write_bytes")]
        ),
        3.0 * n
    );
    assert!(value(&s, "rfq_router_net_bytes_in_total", &[]) > 0.0);
    assert_eq!(value(&s, "rfq_router_net_accepted_total", &[]), 3.0);
    assert_eq!(value(&s, "rfq_router_admin_requests_total", &[]), 1.0);

    // `rfq-router stats` prints the same numbers as a table.
    let out = Command::new(env!("CARGO_BIN_EXE_rfq-router"))
        .args(["stats", "--admin", &rig.admin.local_addr.to_string()])
        .output()
        .expect("run rfq-router stats");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    // Shown with --nocapture: what an SRE sees.
    println!("{table}");
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{table}"))
            .split_whitespace()
            .nth(1)
            .map(str::to_string)
    };
    assert_eq!(row("wire_to_wire"), Some(RFQS.to_string()), "{table}");
    assert_eq!(row("quote_turnaround"), Some(RFQS.to_string()), "{table}");
    let received = table
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("rfq_router_engine_rfqs_received_total")
        })
        .unwrap_or_else(|| panic!("no rfqs_received line:\n{table}"));
    assert!(
        received.trim_end().ends_with(&RFQS.to_string()),
        "{received}"
    );
}

/// Writes `request` (as far as the server takes it) and reads the whole answer until the
/// server closes; returns the status code (0: closed without an answer).
fn exchange(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    // The server may answer (and stop reading) before all of an oversized request is in.
    let _ = stream.write_all(request);
    read_status(&mut stream)
}

fn read_status(stream: &mut TcpStream) -> u16 {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn hostile_requests_get_4xx_and_are_counted() {
    let settings = AdminSettings {
        listen: None,
        max_connections: 2,
        max_request_bytes: 1024,
        request_timeout_ms: 60_000,
    };
    let rig = start(settings);
    let addr = rig.admin.local_addr;
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "x".repeat(4000)
    );
    assert_eq!(exchange(addr, huge.as_bytes()), 431);
    assert_eq!(exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n"), 404);
    assert_eq!(exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n"), 405);
    assert_eq!(exchange(addr, b"GARBAGE\r\n\r\n"), 400);
    assert_eq!(exchange(addr, b"GET /metrics SPDY/9\r\n\r\n"), 400);
    assert_eq!(exchange(addr, b"\xff\xfe\r\n\r\n"), 400);
    assert_eq!(
        exchange(addr, b"GET /api/recommend?side=up HTTP/1.1\r\n\r\n"),
        400
    );
    // No recommender in this rig: 503, not a panic.
    assert_eq!(
        exchange(
            addr,
            b"GET /api/recommend?instrument=X&side=buy&qty=1 HTTP/1.1\r\n\r\n"
        ),
        503
    );
    assert_eq!(exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n"), 200);

    // Two idle connections hold both slots; a third is answered 503 and closed.
    let mut idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // A byte on each, answered by nothing yet, proves the server accepted both.
    for s in &mut idle {
        s.write_all(b"G").unwrap();
    }
    let mut rejected = 0;
    // The server may still be registering the idle ones: keep knocking until one is turned
    // away (bounded).
    for _ in 0..100 {
        let status = exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n");
        if status == 503 {
            rejected += 1;
            break;
        }
        assert_eq!(status, 200, "only 200 or 503 while slots are taken");
    }
    assert_eq!(rejected, 1, "a third connection was turned away");
    // Freed slots serve again: finish the idle requests.
    for s in &mut idle {
        s.write_all(b"ET /healthz HTTP/1.1\r\n\r\n").unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(read_status(s), 200);
    }
    drop(idle);
    let mut s = None;
    for _ in 0..100 {
        let (status, body) = admin::get(addr, "/metrics", TIMEOUT).expect("GET /metrics");
        if status == 200 {
            s = Some(parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}")));
            break;
        }
        assert_eq!(status, 503, "{body}");
        rejected += 1;
    }
    let s = s.expect("/metrics answered once the slots were free");
    let admin = |name: &str| value(&s, &format!("rfq_router_admin_{name}_total"), &[]);
    assert_eq!(admin("too_large"), 1.0);
    assert_eq!(admin("not_found"), 1.0);
    assert_eq!(admin("method_not_allowed"), 1.0);
    assert_eq!(admin("bad_requests"), 4.0);
    assert_eq!(admin("connections_rejected"), f64::from(rejected));
    assert_eq!(admin("timed_out"), 0.0);
}

#[test]
fn a_slow_request_times_out_with_408() {
    let settings = AdminSettings {
        listen: None,
        max_connections: 2,
        max_request_bytes: 1024,
        request_timeout_ms: 50,
    };
    let rig = start(settings);
    let addr = rig.admin.local_addr;
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    slow.write_all(b"GET /met").unwrap();
    assert_eq!(read_status(&mut slow), 408);
    let (status, body) = admin::get(addr, "/metrics", TIMEOUT).expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    let s = parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert_eq!(value(&s, "rfq_router_admin_timed_out_total", &[]), 1.0);
}

fn cli_recommend(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rfq-router"))
        .arg("recommend")
        .args(["--as-of", "2026-11-21", "--json"])
        .args(args)
        .output()
        .expect("run rfq-router recommend")
}

#[test]
fn api_recommend_matches_recommend_json() {
    let config = Config::embedded().unwrap_or_else(|e| panic!("{e}"));
    let dealers = Dealers::embedded(&config).unwrap_or_else(|e| panic!("{e}"));
    let panel = ScoredPanel::new(
        load_rules(None).unwrap_or_else(|e| panic!("{e}")),
        load_instruments(None).unwrap_or_else(|e| panic!("{e}")),
        &dealers,
        NeutralScores,
    );
    // No engine behind this one: only /api/recommend is asked.
    let (snapshots, _server) = snapshot_channel(1, None);
    let running = admin::spawn(
        "127.0.0.1:0".parse().unwrap(),
        &AdminSettings::default(),
        None,
        AdminContext {
            snapshots,
            net: None,
            journal: None,
            recommender: Some(Box::new(PanelRecommender::new(panel, &dealers))),
        },
    )
    .unwrap();
    let addr = running.local_addr;
    for (query, args) in [
        (
            "instrument=US99L2QH1094&side=buy&qty=6000000",
            &[
                "--instrument",
                "US99L2QH1094",
                "--side",
                "buy",
                "--qty",
                "6000000",
            ][..],
        ),
        (
            "instrument=99Z6PH106&id_source=cusip&side=sell&qty=3000000",
            &[
                "--instrument",
                "99Z6PH106",
                "--id-source",
                "cusip",
                "--side",
                "sell",
                "--qty",
                "3000000",
            ][..],
        ),
        (
            "instrument=US99A1NW2025&id_source=isin&side=buy&qty=2e6",
            &[
                "--instrument",
                "US99A1NW2025",
                "--id-source",
                "isin",
                "--side",
                "buy",
                "--qty",
                "2000000",
            ][..],
        ),
    ] {
        let (status, body) = admin::get(
            addr,
            &format!("/api/recommend?{query}&as_of=2026-11-21"),
            TIMEOUT,
        )
        .expect("GET /api/recommend");
        assert_eq!(status, 200, "{query}: {body}");
        let api: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let out = cli_recommend(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cli: serde_json::Value = serde_json::from_slice(&out.stdout).expect("CLI JSON");
        assert_eq!(api, cli, "{query}");
        assert!(api["chosen"].as_array().is_some_and(|c| !c.is_empty()));
    }
    // Unknown instrument: 404 with the same words the CLI uses.
    let (status, body) = admin::get(
        addr,
        "/api/recommend?instrument=US0000000000&side=buy&qty=1",
        TIMEOUT,
    )
    .expect("GET");
    assert_eq!(status, 404, "{body}");
    let err: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(err["error"], "unknown instrument: US0000000000");
    let out = cli_recommend(&[
        "--instrument",
        "US0000000000",
        "--side",
        "buy",
        "--qty",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown instrument: US0000000000"));
    // Without an engine, /metrics answers 503 after its wait instead of hanging.
    let (status, _) = admin::get(addr, "/metrics", TIMEOUT).expect("GET /metrics");
    assert_eq!(status, 503);
}

#[test]
fn random_bytes_never_stop_the_admin_thread() {
    let settings = AdminSettings {
        listen: None,
        max_connections: 4,
        max_request_bytes: 1024,
        request_timeout_ms: 60_000,
    };
    let rig = start(settings);
    let addr = rig.admin.local_addr;
    // xorshift64*, fixed seed: the same inputs every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let pieces: [&[u8]; 8] = [
        b"GET ",
        b"/metrics",
        b"/api/recommend?",
        b"instrument=%",
        b" HTTP/1.1",
        b"\r\n",
        b"\r\n\r\n",
        b"\x00\xff%&=?",
    ];
    let mut answered = 0;
    for _ in 0..200 {
        let mut request = Vec::new();
        for _ in 0..(next() % 12) {
            if next() % 3 == 0 {
                let n = (next() % 600) as usize;
                request.extend((0..n).map(|_| next() as u8));
            } else {
                request.extend_from_slice(pieces[(next() % 8) as usize]);
            }
        }
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        let _ = stream.write_all(&request);
        // End the request so an incomplete one is closed rather than left to time out.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let status = read_status(&mut stream);
        assert!(
            matches!(status, 0 | 200 | 400 | 404 | 405 | 431 | 503),
            "status {status} for {:?}",
            String::from_utf8_lossy(&request)
        );
        if status != 0 {
            answered += 1;
        }
    }
    assert!(answered > 0, "some random requests reach a response");
    let (status, body) = admin::get(addr, "/healthz", TIMEOUT).expect("GET /healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let s = metrics(addr);
    assert!(value(&s, "rfq_router_admin_connections_accepted_total", &[]) >= 201.0);
}
