//! Fuzz target `session`: arbitrary bytes and timer steps into `fix::session::Session`.
//!
//! Owns nothing but the harness. The input is read as a script of operations: raw bytes
//! from the peer (garbage, partial and mangled frames), well-formed peer messages with a
//! fuzzed type, sequence number, flags, SendingTime skew and extra fields (so that the
//! fuzzer reaches Logon, gaps, resends, resets and Logout without guessing checksums), time
//! passing, our own application sends and Logouts, and reconnects. Checked on every step:
//! nothing panics, every frame the session writes is a whole, valid frame, `on_input` never
//! claims more bytes than it was given, and the gap queue stays within its bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rfq_router::fix::echo::EchoApp;
use rfq_router::fix::session::{Outbox, Session, SessionConfig, SessionEvent, SessionState};
use rfq_router::fix::store::{MemoryStore, MemoryStoreLimits};
use rfq_router::fix::validate::Validator;
use rfq_router::fix::{Encoder, FrameStatus, Framer};
use rfq_router::time::Nanos;
use std::sync::{Arc, OnceLock};

const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_QUEUED: usize = 16;
/// 2024-03-12 09:30:00 UTC.
const START: Nanos = Nanos(1_710_235_800_000_000_000);

fn validator() -> Arc<Validator> {
    static VALIDATOR: OnceLock<Arc<Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| Arc::new(Validator::fix44()))
        .clone()
}

/// Checks every frame the session writes, and remembers whether it asked to disconnect.
struct CheckingOutbox {
    framer: Framer,
    frames: u64,
    disconnect_asked: bool,
}

impl Outbox for CheckingOutbox {
    fn send_frame(&mut self, frame: &[u8]) {
        assert_eq!(
            self.framer.next_frame(frame),
            FrameStatus::Frame { len: frame.len() },
            "the session wrote an invalid frame: {:?}",
            frame.escape_ascii().to_string()
        );
        self.frames += 1;
    }

    fn event(&mut self, event: SessionEvent) {
        if matches!(event, SessionEvent::Disconnect { .. }) {
            self.disconnect_asked = true;
        }
    }
}

/// Reads the fuzz input as a sequence of small numbers and byte strings.
struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some((u16::from(self.u8()?) << 8) | u16::from(self.u8()?))
    }

    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.u8().unwrap_or(0))
            .min(max)
            .min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

const MSG_TYPES: [&[u8]; 12] = [
    b"A", b"0", b"1", b"2", b"3", b"4", b"5", b"D", b"R", b"S", b"AJ", b"8",
];

/// Everything the peer side needs to write plausible messages.
struct Peer {
    encoder: Encoder,
    next_seq: u64,
    frame: Vec<u8>,
}

impl Peer {
    /// A well-formed message from the peer, shaped by the script.
    fn message(&mut self, s: &mut Script<'_>, now: Nanos) -> &[u8] {
        let kind = s.u8().unwrap_or(0);
        let msg_type = MSG_TYPES[usize::from(kind) % MSG_TYPES.len()];
        let seq_shift = s.u8().unwrap_or(0);
        // Mostly in sequence; sometimes a gap ahead, a repeat or a step back.
        let seq = match seq_shift % 8 {
            0..=4 => self.next_seq,
            5 => self.next_seq + u64::from(seq_shift / 8),
            6 => self.next_seq.saturating_sub(u64::from(seq_shift / 8)),
            _ => u64::from(seq_shift / 8),
        };
        self.next_seq = seq + 1;
        let flags = s.u8().unwrap_or(0);
        let skew_s = u64::from(s.u8().unwrap_or(0));
        let sending_time = if flags & 0x80 != 0 {
            Nanos(now.0.saturating_sub(skew_s * 1_000_000_000))
        } else {
            now
        };
        let e = &mut self.encoder;
        e.start(msg_type);
        e.uint(34, seq);
        if flags & 0x01 != 0 {
            e.bool(43, true);
        }
        e.str(49, if flags & 0x02 != 0 { b"XX" } else { b"TW" });
        e.timestamp(52, sending_time);
        e.str(56, b"ISLD");
        if flags & 0x01 != 0 && flags & 0x04 != 0 {
            e.timestamp(122, sending_time);
        }
        let a = u64::from(s.u8().unwrap_or(1));
        let b = u64::from(s.u8().unwrap_or(0));
        match msg_type {
            b"A" => {
                e.uint(98, 0).uint(108, a % 40);
                if flags & 0x08 != 0 {
                    e.bool(141, true);
                    if flags & 0x10 != 0 {
                        self.next_seq = 2;
                    }
                }
            }
            b"1" => {
                e.str(112, b"TEST");
            }
            b"2" => {
                e.uint(7, a).uint(16, b);
            }
            b"3" => {
                e.uint(45, a).uint(373, b % 20);
            }
            b"4" => {
                if flags & 0x20 != 0 {
                    e.bool(123, true);
                }
                e.uint(36, seq + b);
            }
            b"D" => {
                e.str(11, b"ORD-1")
                    .char(21, b'1')
                    .str(55, b"[N/A]")
                    .char(54, b'1')
                    .timestamp(60, now)
                    .uint(38, a * 1000)
                    .char(40, b'1');
            }
            b"R" => {
                e.str(131, b"RFQ-1")
                    .uint(146, 1)
                    .str(55, b"[N/A]")
                    .str(48, b"XS0000000001")
                    .str(22, b"4");
            }
            _ => {}
        }
        // Extra fuzzed fields, possibly breaking the dictionary's rules.
        for _ in 0..(flags >> 6) {
            let tag = u32::from(s.u16().unwrap_or(58)).max(1);
            let value = s.bytes(32);
            let value: Vec<u8> = value.iter().copied().filter(|&c| c != 0x01).collect();
            e.str(tag, &value);
        }
        self.frame.clear();
        if let Ok(f) = e.finish() {
            self.frame.extend_from_slice(f);
        }
        &self.frame
    }
}

fuzz_target!(|data: &[u8]| {
    let mut s = Script { data };
    let role = s.u8().unwrap_or(0);
    let mut cfg = if role & 1 == 0 {
        SessionConfig::acceptor("ISLD", "TW")
    } else {
        SessionConfig::initiator("ISLD", "TW", 30)
    };
    cfg.reset_on_logon = role & 2 != 0;
    cfg.max_message_bytes = MAX_MESSAGE_BYTES;
    cfg.max_queued_messages = MAX_QUEUED;
    cfg.max_queued_bytes = 16 * 1024;
    cfg.resend_batch_max = 8;
    let store = MemoryStore::new(
        MemoryStoreLimits {
            max_messages: 32,
            max_message_bytes: MAX_MESSAGE_BYTES,
        },
        START,
    );
    let mut session = Session::new(cfg, store, validator());
    let mut app = EchoApp::new(&[b"D", b"R"]);
    let mut out = CheckingOutbox {
        framer: Framer::new(MAX_MESSAGE_BYTES),
        frames: 0,
        disconnect_asked: false,
    };
    let mut peer = Peer {
        encoder: Encoder::new(MAX_MESSAGE_BYTES),
        next_seq: 1,
        frame: Vec::with_capacity(MAX_MESSAGE_BYTES),
    };
    let mut now = START;
    let mut inbox: Vec<u8> = Vec::with_capacity(2 * MAX_MESSAGE_BYTES);
    session.on_connected(now, &mut out);

    let mut steps = 0;
    while let Some(op) = s.u8() {
        steps += 1;
        if steps > 512 {
            break;
        }
        match op % 8 {
            // Time passes (up to ~65 s) and timers run.
            0 | 1 => {
                now = Nanos(now.0 + u64::from(s.u16().unwrap_or(0)) * 1_000_000);
                session.on_timer(now, &mut out);
            }
            // Raw bytes from the peer.
            2 => {
                let raw = s.bytes(255);
                inbox.extend_from_slice(raw);
            }
            // A well-formed peer message, maybe cut short or with a byte flipped.
            3 | 4 => {
                let cut = s.u8().unwrap_or(0);
                let msg = peer.message(&mut s, now);
                if cut < 240 {
                    inbox.extend_from_slice(msg);
                } else if !msg.is_empty() {
                    let at = usize::from(cut) % msg.len();
                    inbox.extend_from_slice(&msg[..at]);
                    if cut & 1 == 0 {
                        inbox.push(msg[at] ^ 0x20);
                    }
                }
            }
            // Our side sends an application message or starts a Logout.
            5 => {
                let which = s.u8().unwrap_or(0);
                if which & 1 == 0 {
                    let _ = session.send_app(
                        now,
                        b"S",
                        |e| {
                            e.str(117, b"Q-1").str(55, b"[N/A]");
                        },
                        &mut out,
                    );
                } else {
                    session.logout(now, Some(b"bye"), &mut out);
                }
            }
            // The connection drops and comes back.
            6 => {
                session.on_disconnected(now);
                inbox.clear();
                out.disconnect_asked = false;
                now = Nanos(now.0 + 1_000_000_000);
                session.on_connected(now, &mut out);
            }
            // Bytes from the peer are delivered.
            _ => {}
        }
        if !inbox.is_empty() && session.state() != SessionState::Disconnected {
            let used = session.on_input(now, &inbox, &mut app, &mut out);
            assert!(
                used <= inbox.len(),
                "on_input consumed more than it was given"
            );
            inbox.drain(..used);
            // A host drops a peer whose unframed bytes outgrow its read buffer.
            if inbox.len() > 2 * MAX_MESSAGE_BYTES {
                inbox.clear();
            }
        }
        assert!(
            session.queued_messages() <= MAX_QUEUED,
            "the gap queue exceeded its bound"
        );
        if out.disconnect_asked {
            assert_eq!(
                session.state(),
                SessionState::Disconnected,
                "a session that asked for a disconnect takes no more input"
            );
        }
        let _ = session.next_deadline();
    }
});
