//! The FIX host over real loopback TCP: Logon routing by CompIDs, refusal of a duplicate or
//! unknown identity, and application messages reaching the application.

use rfq_router::config::{self, ConnectionLimits, Role};
use rfq_router::fix::echo::EchoApp;
use rfq_router::fix::validate::Validator;
use rfq_router::fix::{Encoder, FrameStatus, Framer};
use rfq_router::host::{spawn, HostSessionConfig, PerSession, RunningHost};
use rfq_router::net::NetSettings;
use rfq_router::time::Nanos;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    )
}

fn session(name: &str, ours: &str, theirs: &str) -> HostSessionConfig {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut net = config::SessionConfig::new(name, Role::Acceptor, addr, ours, theirs);
    net.limits = ConnectionLimits {
        max_message_bytes: 8192,
        read_buffer_bytes: 16384,
        write_queue_bytes: 65536,
    };
    HostSessionConfig::from_config(&net)
}

fn start() -> RunningHost {
    let sessions = vec![session("a", "ISLD", "TW44"), session("b", "ISLD", "TW45")];
    let apps = PerSession(vec![EchoApp::acceptance(), EchoApp::acceptance()]);
    spawn(
        "host-test",
        NetSettings::default(),
        sessions,
        4,
        Arc::new(Validator::fix44()),
        apps,
    )
    .unwrap()
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn send(s: &mut TcpStream, msg_type: &[u8], seq: u64, sender: &str, body: &[(u32, &str)]) {
    let mut e = Encoder::new(4096);
    e.start(msg_type)
        .uint(34, seq)
        .str(49, sender.as_bytes())
        .timestamp(52, now())
        .str(56, b"ISLD");
    for (t, v) in body {
        e.str(*t, v.as_bytes());
    }
    s.write_all(e.finish().unwrap()).unwrap();
}

/// Reads one frame, or `None` when the peer closed the connection.
fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let framer = Framer::new(65536);
    loop {
        if let FrameStatus::Frame { len } = framer.next_frame(buf) {
            let f: Vec<u8> = buf.drain(..len).collect();
            return Some(String::from_utf8_lossy(&f).replace('\x01', "|"));
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn logon_is_routed_by_comp_ids_and_application_messages_are_echoed() {
    let host = start();
    let addr = host.listen_addrs[0].unwrap();
    assert_eq!(
        host.listen_addrs[1],
        Some(addr),
        "both acceptors share one listener"
    );
    let mut a = client(addr);
    let mut buf = Vec::new();
    send(&mut a, b"A", 1, "TW45", &[(98, "0"), (108, "30")]);
    let logon = read_frame(&mut a, &mut buf).expect("logon answer");
    assert!(
        logon.contains("|35=A|") && logon.contains("|56=TW45|"),
        "{logon}"
    );
    send(
        &mut a,
        b"D",
        2,
        "TW45",
        &[
            (11, "ID"),
            (21, "1"),
            (38, "100"),
            (40, "1"),
            (54, "1"),
            (55, "INTC"),
            (60, "20231114-22:13:20"),
        ],
    );
    let echo = read_frame(&mut a, &mut buf).expect("echo");
    assert!(
        echo.contains("|35=D|") && echo.contains("|11=ID|"),
        "{echo}"
    );
    host.stop().unwrap();
}

#[test]
fn duplicate_and_unknown_identities_are_disconnected_without_disturbing_the_first() {
    let host = start();
    let addr = host.listen_addrs[0].unwrap();
    let mut first = client(addr);
    let mut buf = Vec::new();
    send(&mut first, b"A", 1, "TW44", &[(98, "0"), (108, "30")]);
    assert!(read_frame(&mut first, &mut buf).unwrap().contains("|35=A|"));

    let mut dup = client(addr);
    send(&mut dup, b"A", 1, "TW44", &[(98, "0"), (108, "30")]);
    assert_eq!(
        read_frame(&mut dup, &mut Vec::new()),
        None,
        "second logon of TW44 must be dropped"
    );

    let mut unknown = client(addr);
    send(&mut unknown, b"A", 1, "NOBODY", &[(98, "0"), (108, "30")]);
    assert_eq!(
        read_frame(&mut unknown, &mut Vec::new()),
        None,
        "unknown identity must be dropped"
    );

    let mut garbage = client(addr);
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n8=FIX.4.4\x019=5\x0135=0\x0110=000\x01")
        .unwrap();
    assert_eq!(
        read_frame(&mut garbage, &mut Vec::new()),
        None,
        "non-logon first message must be dropped"
    );

    send(&mut first, b"1", 2, "TW44", &[(112, "STILL-THERE")]);
    let hb = read_frame(&mut first, &mut buf).expect("first session still served");
    assert!(
        hb.contains("|35=0|") && hb.contains("|112=STILL-THERE|"),
        "{hb}"
    );
    host.stop().unwrap();
}
