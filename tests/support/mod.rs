//! Test support: a minimal FIX peer over loopback TCP, written with the router's own codec,
//! for end-to-end tests. It reads with timeouts (never sleeps) and answers nothing on its own.

#![allow(dead_code)]

use rfq_router::fix::{Encoder, FrameStatus, Framer};
use rfq_router::time::Nanos;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64,
    )
}

/// A received message, `|`-separated.
#[derive(Debug, Clone)]
pub struct Msg(pub String);

impl Msg {
    pub fn get(&self, tag: u32) -> Option<&str> {
        let key = format!("{tag}=");
        self.0.split('|').find_map(|f| f.strip_prefix(key.as_str()))
    }
    pub fn msg_type(&self) -> &str {
        self.get(35).unwrap_or("")
    }
}

pub struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    next_seq: u64,
    sender: String,
    target: String,
    framer: Framer,
}

impl Peer {
    pub fn connect(addr: SocketAddr, sender: &str, target: &str) -> Peer {
        let stream = TcpStream::connect(addr).expect("connect to router");
        Peer::wrap(stream, sender, target)
    }

    /// Accepts one connection from the router (for initiator sessions).
    pub fn accept(listener: &TcpListener, sender: &str, target: &str) -> Peer {
        let (stream, _) = listener.accept().expect("router connects");
        Peer::wrap(stream, sender, target)
    }

    fn wrap(stream: TcpStream, sender: &str, target: &str) -> Peer {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Peer {
            stream,
            buf: Vec::new(),
            next_seq: 1,
            sender: sender.to_string(),
            target: target.to_string(),
            framer: Framer::new(1 << 20),
        }
    }

    /// With `RFQ_TRANSCRIPT=1`, prints every message this peer sends (`->`) or receives
    /// (`<-`), SOH shown as `|`.
    fn log(&self, dir: &str, frame: &[u8]) {
        if std::env::var_os("RFQ_TRANSCRIPT").is_some() {
            let text = String::from_utf8_lossy(frame).replace('\x01', "|");
            println!("{:<8} {dir} {text}", self.sender);
        }
    }

    /// Sends a message with a correct header; `fields` is `tag=value|...` (body only).
    pub fn send(&mut self, msg_type: &str, fields: &str) {
        let mut e = Encoder::new(1 << 16);
        e.start(msg_type.as_bytes())
            .uint(34, self.next_seq)
            .str(49, self.sender.as_bytes())
            .timestamp(52, now())
            .str(56, self.target.as_bytes());
        for f in fields.split('|').filter(|f| !f.is_empty()) {
            let (t, v) = f.split_once('=').expect("tag=value");
            e.str(t.parse().expect("numeric tag"), v.as_bytes());
        }
        self.next_seq += 1;
        let frame = e.finish().expect("encodes");
        self.log("->", frame);
        self.stream.write_all(frame).expect("write");
    }

    /// Writes bytes as they are (hostile input).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads until the router closes the connection: true if it did within the read timeout.
    pub fn try_recv_until_closed(&mut self) -> bool {
        loop {
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    pub fn logon(&mut self, heart_bt_int_s: u32) -> Msg {
        self.send("A", &format!("98=0|108={heart_bt_int_s}|"));
        self.recv_type("A")
    }

    /// As the acceptor of the router's Logon (already received), answers it asking for a
    /// reset (141=Y) the router did not ask for: the router restarts its sequences and
    /// answers with its own Logon, numbered 1 again, with 141=Y.
    pub fn answer_logon_with_reset(&mut self, heart_bt_int_s: u32) {
        self.send("A", &format!("98=0|108={heart_bt_int_s}|141=Y|"));
        let again = self.recv_type("A");
        assert_eq!(
            (again.get(34), again.get(141)),
            (Some("1"), Some("Y")),
            "{}",
            again.0
        );
    }

    /// The next message, or `None` if the router closed the connection.
    pub fn try_recv(&mut self) -> Option<Msg> {
        loop {
            if let FrameStatus::Frame { len } = self.framer.next_frame(&self.buf) {
                let f: Vec<u8> = self.buf.drain(..len).collect();
                self.log("<-", &f);
                return Some(Msg(String::from_utf8_lossy(&f).replace('\x01', "|")));
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("{}: read failed: {e}", self.sender),
            }
        }
    }

    /// Switches the socket between blocking (with the read timeout) and non-blocking.
    pub fn set_nonblocking(&mut self, on: bool) {
        self.stream.set_nonblocking(on).expect("set_nonblocking");
    }

    /// A message already received, without waiting (use with `set_nonblocking(true)`).
    pub fn try_recv_nonblocking(&mut self) -> Option<Msg> {
        loop {
            if let FrameStatus::Frame { len } = self.framer.next_frame(&self.buf) {
                let f: Vec<u8> = self.buf.drain(..len).collect();
                self.log("<-", &f);
                return Some(Msg(String::from_utf8_lossy(&f).replace('\x01', "|")));
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) => panic!("{}: read failed: {e}", self.sender),
            }
        }
    }

    /// The next application or session message, skipping Heartbeats.
    pub fn recv(&mut self) -> Msg {
        loop {
            let m = self
                .try_recv()
                .unwrap_or_else(|| panic!("{}: connection closed", self.sender));
            if m.msg_type() != "0" {
                return m;
            }
        }
    }

    /// The next message, which must be of `msg_type`.
    pub fn recv_type(&mut self, msg_type: &str) -> Msg {
        let m = self.recv();
        assert_eq!(
            m.msg_type(),
            msg_type,
            "{}: expected 35={msg_type}, got {}",
            self.sender,
            m.0
        );
        m
    }
}
