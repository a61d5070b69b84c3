//! Hostile input against a live router listener: garbage, a truncated frame, a huge declared
//! BodyLength (`9=99999999999`), a 1 MB line, a byte-at-a-time sender and a connection flood.
//! After each, the router is still up and a well-behaved session on the same listener is
//! served as before. Synchronisation is by blocking reads with timeouts; no sleeps.

mod support;

use rfq_router::config::{self, ConnectionLimits, Role};
use rfq_router::fix::echo::EchoApp;
use rfq_router::fix::validate::Validator;
use rfq_router::fix::Encoder;
use rfq_router::host::{spawn, HostSessionConfig, PerSession, RunningHost};
use rfq_router::net::NetSettings;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{now, Peer};

const MAX_PENDING_LOGON: usize = 8;
const MAX_CONNECTIONS: u32 = 32;
const LOGON_TIMEOUT_MS: u64 = 500;

fn session(ours: &str, theirs: &str) -> HostSessionConfig {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut net = config::SessionConfig::new(theirs, Role::Acceptor, addr, ours, theirs);
    net.limits = ConnectionLimits {
        max_message_bytes: 8192,
        read_buffer_bytes: 16384,
        write_queue_bytes: 1 << 20,
    };
    let mut s = HostSessionConfig::from_config(&net);
    s.fix.logon_timeout_ms = LOGON_TIMEOUT_MS;
    s
}

fn start() -> RunningHost {
    let sessions = vec![
        session("ISLD", "GOOD"),
        session("ISLD", "SLOW"),
        session("ISLD", "BAD"),
    ];
    let apps = PerSession(vec![
        EchoApp::acceptance(),
        EchoApp::acceptance(),
        EchoApp::acceptance(),
    ]);
    let settings = NetSettings {
        max_connections: MAX_CONNECTIONS,
        ..NetSettings::default()
    };
    spawn(
        "robustness",
        settings,
        sessions,
        MAX_PENDING_LOGON,
        Arc::new(Validator::fix44()),
        apps,
    )
    .unwrap()
}

/// The well-behaved session answers a TestRequest.
fn still_served(good: &mut Peer, id: &str) {
    good.send("1", &format!("112={id}|"));
    let hb = good.try_recv().expect("good session still connected");
    assert_eq!(hb.msg_type(), "0", "{}", hb.0);
    assert_eq!(hb.get(112), Some(id), "{}", hb.0);
}

/// Reads until the router closes the connection; panics if it does not within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        assert!(
            start.elapsed() < limit,
            "the router did not close the connection within {limit:?}"
        );
    }
}

fn logon_bytes(sender: &str) -> Vec<u8> {
    let mut e = Encoder::new(4096);
    e.start(b"A")
        .uint(34, 1)
        .str(49, sender.as_bytes())
        .timestamp(52, now())
        .str(56, b"ISLD");
    e.uint(98, 0).uint(108, 30);
    e.finish().unwrap().to_vec()
}

#[test]
fn hostile_input_never_takes_the_router_or_a_good_session_down() {
    let host = start();
    let addr = host.listen_addrs[0].unwrap();
    let mut good = Peer::connect(addr, "GOOD", "ISLD");
    good.logon(30);
    still_served(&mut good, "start");

    // Garbage instead of a Logon: dropped.
    let mut g = TcpStream::connect(addr).unwrap();
    let junk: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = g.write_all(&junk);
    closed_within(&mut g, Duration::from_secs(10));
    still_served(&mut good, "after-garbage");

    // A truncated Logon that never completes: dropped at the logon timeout.
    let mut t = TcpStream::connect(addr).unwrap();
    let logon = logon_bytes("BAD");
    t.write_all(&logon[..logon.len() / 2]).unwrap();
    let started = Instant::now();
    closed_within(&mut t, Duration::from_secs(10));
    assert!(
        started.elapsed() >= Duration::from_millis(LOGON_TIMEOUT_MS / 2),
        "closed before the logon timeout"
    );
    still_served(&mut good, "after-truncated");

    // A declared BodyLength of 99,999,999,999 bytes: refused at once, nothing waited for.
    let mut h = TcpStream::connect(addr).unwrap();
    h.write_all(b"8=FIX.4.4\x019=99999999999\x0135=A\x0134=1\x0149=BAD\x01")
        .unwrap();
    closed_within(&mut h, Duration::from_secs(5));
    // ... and on a logged-on session too: the session ends, the others do not.
    let mut bad = Peer::connect(addr, "BAD", "ISLD");
    bad.logon(30);
    bad.send_raw(b"8=FIX.4.4\x019=99999999999\x0135=0\x01");
    assert!(
        bad.try_recv_until_closed(),
        "the session with the huge frame is closed"
    );
    still_served(&mut good, "after-huge-length");

    // A 1 MB line without a single SOH, on a logged-on session: skipped as garbage in
    // bounded memory; the session and its neighbours carry on.
    let mut big = Peer::connect(addr, "BAD", "ISLD");
    // The BAD session's sequence numbers survived its disconnect: start a new FIX session.
    big.send("A", "98=0|108=30|141=Y|");
    big.recv_type("A");
    big.send_raw(&vec![b'x'; 1 << 20]);
    big.send("1", "112=after-1mb|");
    let hb = big
        .try_recv()
        .expect("still connected after 1 MB of garbage");
    assert_eq!(hb.get(112), Some("after-1mb"), "{}", hb.0);
    still_served(&mut good, "after-1mb-line");
    drop(big); // frees the BAD identity for the last step

    // A Logon sent one byte per write: framed and answered like any other.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_nodelay(true).unwrap();
    for b in logon_bytes("SLOW") {
        slow.write_all(&[b]).unwrap();
    }
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = slow.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).contains("\x0135=A\x01"),
        "slow logon answered"
    );
    still_served(&mut good, "after-slow");

    // A flood of connections that never log on: past the pending-logon limit and the
    // connection limit they are closed at once, the rest at the logon timeout.
    let before = host.handle.counters();
    let mut flood: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    still_served(&mut good, "during-flood");
    for c in &mut flood {
        closed_within(c, Duration::from_secs(10));
    }
    let after = host.handle.counters();
    assert!(
        after.accepted > before.accepted,
        "the flood reached the router"
    );
    still_served(&mut good, "after-flood");
    // Once the flood's sockets are gone, the slots are free again: a new session logs on.
    // (The router's side of a closed connection lingers until the peer's FIN, so the first
    // attempts may still find the connection limit reached; retry within a deadline.)
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut late = Peer::connect(addr, "BAD", "ISLD");
        late.send("A", "98=0|108=30|141=Y|");
        match late.try_recv() {
            Some(m) if m.msg_type() == "A" => break,
            other => assert!(
                Instant::now() < deadline,
                "no logon after the flood: {other:?}"
            ),
        }
    }
    host.stop().unwrap();
}
