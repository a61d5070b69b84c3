//! The router's crash test: the real `rfq-router` binary, a desk and two dealers as FIX peers
//! over loopback, SIGKILL in the middle of a load of RFQs, a restart on the same journal.
//!
//! It shows that every message the peers received from the killed router (acknowledgements
//! included) is in the journal; that the restarted router resumes each session's sequence
//! numbers (no reset: its Logon carries the next MsgSeqNum the peer expects); that the desk's
//! ResendRequest after the restart is answered with the original application messages
//! (PossDupFlag 43=Y, OrigSendingTime = the first SendingTime, same body) and gap fills over
//! session-level ones; that RFQs acknowledged but never ended are expired to the desk at its
//! logon (QuoteStatusReport 297=7); and that new RFQs get numbers the first run never used.
//! Every wait is on a message or an exit, with a generous timeout; nothing sleeps.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rfq_router::fix::{Encoder, FrameStatus, Framer};
use rfq_router::journal::{JournalReader, RecordKind};
use rfq_router::time::Nanos;

const WAIT: Duration = Duration::from_secs(90);
/// The router is killed once the desk has this many acknowledgements.
const KILL_AFTER_ACKS: usize = 150;
/// The desk stops sending here at the latest (the kill normally stops it long before).
const MAX_RFQS: usize = 1_000_000;
const BOND: &str = "55=[N/A]|48=US99A1NW1035|22=4";

const DEALERS_TOML: &str = r#"
[[dealer]]
name = "Dealer A"
party_id = "DLRA"
session = "dealer-a"
tier = 1
asset_classes = ["ig_corp", "hy_corp"]

[[dealer]]
name = "Dealer C"
party_id = "DLRC"
session = "dealer-c"
tier = 1
asset_classes = ["ig_corp", "hy_corp"]
"#;

fn router_toml(port: u16, journal: &Path) -> String {
    let mut s = format!(
        r#"
[rfq]
desk_sessions = ["desk"]
max_open_rfqs = 4096
[rfq.protocol]
kind = "broadcast"
max_dealers = 2
response_timeout_ms = 600000
rfq_expiry_ms = 600000

[journal]
dir = "{}"
segment_size_mb = 1
"#,
        journal.display()
    );
    for (name, comp) in [
        ("desk", "DESK"),
        ("dealer-a", "DEALERA"),
        ("dealer-c", "DEALERC"),
    ] {
        s.push_str(&format!(
            "\n[[session]]\nname = \"{name}\"\nrole = \"acceptor\"\nlisten = \"127.0.0.1:{port}\"\n\
             sender_comp_id = \"ROUTER\"\ntarget_comp_id = \"{comp}\"\nmax_latency_s = 600\n"
        ));
    }
    s
}

fn now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64,
    )
}

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("router-crash-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    dir
}

/// A message as `tag=value|...`.
fn get(m: &str, tag: u32) -> Option<&str> {
    let key = format!("{tag}=");
    m.split('|').find_map(|f| f.strip_prefix(key.as_str()))
}

fn seq_of(m: &str) -> u64 {
    get(m, 34).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn is_admin(msg_type: &str) -> bool {
    matches!(msg_type, "0" | "1" | "2" | "3" | "4" | "5" | "A")
}

/// The fields that say what a message is, without the ones a resend may change.
fn body(m: &str) -> Vec<&str> {
    m.split('|')
        .filter(|f| !f.is_empty())
        .filter(|f| {
            let tag = f.split('=').next().unwrap_or("");
            !matches!(tag, "8" | "9" | "10" | "34" | "43" | "52" | "122")
        })
        .collect()
}

/// The RFQ number in a router identifier `R<n>-<slot>`.
fn rfq_number(id: &str) -> u64 {
    id.strip_prefix('R')
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a router RFQ id: {id}"))
}

// ----- the router process -------------------------------------------------------------------

struct Router {
    child: Child,
    /// What it printed before "router running".
    startup: Vec<String>,
}

fn start_router(dir: &Path, extra: &[&str]) -> Router {
    let mut child = Command::new(router_bin())
        .arg("run")
        .arg("--config")
        .arg(dir.join("router.toml"))
        .arg("--dealers")
        .arg(dir.join("dealers.toml"))
        .args(["--status-every-s", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rfq-router");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining so the router never blocks.
                continue;
            }
        }
    });
    let mut startup = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("router running") => break,
            Ok(line) => startup.push(line),
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                panic!("router did not start ({status:?}); it printed: {startup:#?}");
            }
        }
    }
    Router { child, startup }
}

impl Router {
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    }
}

impl Drop for Router {
    /// A failing test must not leave a router running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The router binary: the one cargo built for this test, or the copy in `RFQ_TEST_BIN_DIR`
/// (when several worktrees share one target directory).
fn router_bin() -> PathBuf {
    std::env::var_os("RFQ_TEST_BIN_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_rfq-router")),
        |d| Path::new(&d).join("rfq-router"),
    )
}

// ----- FIX peers ------------------------------------------------------------------------------

struct Writer {
    stream: TcpStream,
    next_seq: u64,
    sender: String,
}

impl Writer {
    fn encode(&self, seq: u64, msg_type: &str, fields: &str) -> Vec<u8> {
        let mut e = Encoder::new(1 << 16);
        e.start(msg_type.as_bytes())
            .uint(34, seq)
            .str(49, self.sender.as_bytes())
            .timestamp(52, now())
            .str(56, b"ROUTER");
        for f in fields.split('|').filter(|f| !f.is_empty()) {
            let (t, v) = f.split_once('=').expect("tag=value");
            e.str(t.parse().expect("numeric tag"), v.as_bytes());
        }
        e.finish().expect("encodes").to_vec()
    }

    fn send(&mut self, msg_type: &str, fields: &str) -> std::io::Result<()> {
        let frame = self.encode(self.next_seq, msg_type, fields);
        self.next_seq += 1;
        self.stream.write_all(&frame)
    }

    /// Answers the router's ResendRequest with one gap fill up to our next number.
    fn gap_fill_from(&mut self, begin: u64) -> std::io::Result<()> {
        let mut ts = [0u8; 21];
        rfq_router::time::format_utc_timestamp_ms(now(), &mut ts);
        let fields = format!(
            "43=Y|122={}|123=Y|36={}|",
            String::from_utf8_lossy(&ts),
            self.next_seq
        );
        let frame = self.encode(begin, "4", &fields);
        self.stream.write_all(&frame)
    }
}

/// A peer: a writer shared with its reader thread, which logs every frame received, sends
/// it as an event, answers ResendRequests with a gap fill and, for a dealer, quotes every
/// QuoteRequest.
struct Peer {
    writer: Arc<Mutex<Writer>>,
    log: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

type Event = (&'static str, String);

fn connect(
    addr: SocketAddr,
    name: &'static str,
    sender: &str,
    next_seq: u64,
    events: Sender<Event>,
) -> Peer {
    let stream = TcpStream::connect(addr).expect("connect to router");
    stream.set_nodelay(true).expect("nodelay");
    let mut read = stream.try_clone().expect("clone");
    let writer = Arc::new(Mutex::new(Writer {
        stream,
        next_seq,
        sender: sender.to_string(),
    }));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (w, l) = (Arc::clone(&writer), Arc::clone(&log));
    let dealer = name != "desk";
    let reader = thread::spawn(move || {
        let framer = Framer::new(1 << 20);
        let mut buf = Vec::new();
        let mut quotes = 0u64;
        loop {
            while let FrameStatus::Frame { len } = framer.next_frame(&buf) {
                let frame: Vec<u8> = buf.drain(..len).collect();
                let m = String::from_utf8_lossy(&frame).replace('\x01', "|");
                l.lock().expect("log").push(m.clone());
                let msg_type = get(&m, 35).unwrap_or("").to_string();
                if msg_type == "2" {
                    let begin = get(&m, 7).and_then(|v| v.parse().ok()).unwrap_or(1);
                    let _ = w.lock().expect("writer").gap_fill_from(begin);
                } else if dealer && msg_type == "R" && get(&m, 43) != Some("Y") {
                    quotes += 1;
                    let req = get(&m, 131).unwrap_or("").to_string();
                    let _ = w.lock().expect("writer").send(
                        "S",
                        &format!("131={req}|117={name}-{quotes}|{BOND}|133=101.5|135=1000000|"),
                    );
                }
                let _ = events.send((name, m));
            }
            let mut chunk = [0u8; 65536];
            match read.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    Peer {
        writer,
        log,
        reader,
    }
}

impl Peer {
    fn send(&self, msg_type: &str, fields: &str) {
        self.writer
            .lock()
            .expect("writer")
            .send(msg_type, fields)
            .expect("send to router");
    }

    /// Waits for the reader to see the connection close, and returns everything received.
    fn finish(self) -> (Vec<String>, u64) {
        let Peer {
            writer,
            log,
            reader,
        } = self;
        reader.join().expect("reader thread");
        let next = writer.lock().expect("writer").next_seq;
        let got = log.lock().expect("log").clone();
        (got, next)
    }
}

/// The peers' messages as they arrive, with a backlog: waiting for one peer's message keeps
/// the others' for later waits.
struct Inbox {
    rx: Receiver<Event>,
    backlog: Vec<Event>,
}

impl Inbox {
    fn new(rx: Receiver<Event>) -> Inbox {
        Inbox {
            rx,
            backlog: Vec::new(),
        }
    }

    /// The next message from `who` that satisfies `want` (earlier non-matching ones of `who`
    /// are dropped; other peers' are kept).
    fn wait_for(&mut self, who: &str, want: impl Fn(&str) -> bool) -> String {
        if let Some(i) = self.backlog.iter().position(|(n, m)| *n == who && want(m)) {
            let (_, m) = self.backlog.remove(i);
            // `who`'s messages before it are passed over; later ones stay.
            let mut k = 0;
            self.backlog.retain(|(n, _)| {
                k += 1;
                k > i || *n != who
            });
            return m;
        }
        self.backlog.retain(|(n, _)| *n != who);
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((name, m)) if name == who && want(&m) => return m,
                Ok((name, _)) if name == who => {}
                Ok(other) => self.backlog.push(other),
                Err(_) => panic!("{who}: timed out waiting for a message"),
            }
        }
    }
}

const PEERS: [(&str, &str, u16); 3] = [
    ("desk", "DESK", 0),
    ("dealer-a", "DEALERA", 1),
    ("dealer-c", "DEALERC", 2),
];

fn logon_all(addr: SocketAddr, seqs: &[u64; 3], events: &Sender<Event>) -> Vec<Peer> {
    PEERS
        .iter()
        .zip(seqs)
        .map(|(&(name, comp, _), &seq)| connect(addr, name, comp, seq, events.clone()))
        .collect()
}

/// Outbound frames in the journal, by router session, as `|`-separated text.
fn journaled_out(dir: &Path) -> HashMap<u16, HashSet<String>> {
    let reader = JournalReader::open(dir).expect("open the journal");
    let mut out: HashMap<u16, HashSet<String>> = HashMap::new();
    for item in reader.records() {
        let Ok(item) = item else { continue };
        if item.record.kind() != Some(RecordKind::FixOutbound) {
            continue;
        }
        let Some(Ok(fix)) = item.record.fix() else {
            continue;
        };
        out.entry(fix.session_id)
            .or_default()
            .insert(String::from_utf8_lossy(fix.raw).replace('\x01', "|"));
    }
    out
}

#[test]
fn sigkill_mid_load_then_restart_resumes_sessions_resends_and_expires_open_rfqs() {
    let dir = work_dir();
    let journal = dir.join("journal");
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    std::fs::write(dir.join("router.toml"), router_toml(port, &journal)).expect("config");
    std::fs::write(dir.join("dealers.toml"), DEALERS_TOML).expect("dealers");

    // ----- run 1: load, then SIGKILL ---------------------------------------------------------
    let router = start_router(&dir, &[]);
    let (tx, rx) = channel::<Event>();
    let mut events = Inbox::new(rx);
    let peers = logon_all(addr, &[1, 1, 1], &tx);
    for (p, &(name, _, _)) in peers.iter().zip(&PEERS) {
        p.send("A", "98=0|108=30|");
        events.wait_for(name, |m| get(m, 35) == Some("A"));
    }
    // The desk sends RFQs until the router is gone (its writes fail) or the kill is done.
    let desk_writer = Arc::clone(&peers[0].writer);
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::clone(&killed);
    let loader = thread::spawn(move || {
        let mut sent = 0;
        for i in 0..MAX_RFQS {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let r = desk_writer
                .lock()
                .expect("writer")
                .send("R", &format!("131=RFQ-{i}|146=1|{BOND}|54=1|38=1000000|"));
            if r.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let mut acks = 0;
    while acks < KILL_AFTER_ACKS {
        events.wait_for("desk", |m| {
            get(m, 35) == Some("AI") && get(m, 297) == Some("0")
        });
        acks += 1;
    }
    router.kill();
    killed.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent_rfqs = loader.join().expect("loader");
    let mut logs = Vec::new();
    let mut seqs = [0u64; 3];
    for (i, p) in peers.into_iter().enumerate() {
        let (log, next) = p.finish();
        logs.push(log);
        seqs[i] = next;
    }
    // Killed mid-load: RFQs the desk sent were still unanswered.
    let answered = logs[0]
        .iter()
        .filter(|m| matches!(get(m, 35), Some("AG")) || get(m, 297) == Some("0"))
        .count();
    assert!(
        answered < sent_rfqs,
        "the router was killed with RFQs in flight ({answered} answered of {sent_rfqs})"
    );

    // Everything the peers received is in the journal.
    let journaled = journaled_out(&journal);
    for (log, &(name, _, session)) in logs.iter().zip(&PEERS) {
        let theirs = journaled.get(&session).cloned().unwrap_or_default();
        for m in log {
            assert!(
                theirs.contains(m),
                "{name} received a message the journal does not have: {m}"
            );
        }
        assert!(!log.is_empty(), "{name} received nothing");
    }
    let desk_log = &logs[0];
    let acked: Vec<String> = desk_log
        .iter()
        .filter(|m| get(m, 35) == Some("AI") && get(m, 297) == Some("0"))
        .map(|m| get(m, 117).expect("QuoteID").to_string())
        .collect();
    let ended: HashSet<String> = desk_log
        .iter()
        .filter(|m| get(m, 35) == Some("AI") && matches!(get(m, 297), Some("4" | "5" | "7")))
        .map(|m| get(m, 117).unwrap_or("").to_string())
        .collect();
    let open: HashSet<String> = acked
        .iter()
        .filter(|q| !ended.contains(*q))
        .cloned()
        .collect();
    assert!(open.len() >= KILL_AFTER_ACKS / 2, "RFQs open at the kill");
    let last_rfq = acked.iter().map(|q| rfq_number(q)).max().expect("acks");
    let last_out: Vec<u64> = logs
        .iter()
        .map(|l| l.iter().map(|m| seq_of(m)).max().unwrap_or(0))
        .collect();
    // What the router journaled may go further than what reached the peers (frames still in
    // its user-space write queues die with it): the journal's last MsgSeqNum per session is
    // where the restart must continue, and the peers get the rest by ResendRequest.
    let journal_last: Vec<u64> = PEERS
        .iter()
        .map(|&(_, _, session)| {
            journaled.get(&session).map_or(0, |f| {
                f.iter()
                    .filter(|m| get(m, 43) != Some("Y"))
                    .map(|m| seq_of(m))
                    .max()
                    .unwrap_or(0)
            })
        })
        .collect();
    let desk_journal: HashMap<u64, String> = journaled
        .get(&0)
        .map(|f| {
            f.iter()
                .filter(|m| get(m, 43) != Some("Y"))
                .map(|m| (seq_of(m), m.clone()))
                .collect()
        })
        .unwrap_or_default();

    // ----- run 2: restart on the same journal -------------------------------------------------
    let router = start_router(&dir, &[]);
    assert!(
        router
            .startup
            .iter()
            .any(|l| l.contains("resumes at MsgSeqNum")),
        "the restart reports resumed sessions: {:#?}",
        router.startup
    );
    let (tx, rx) = channel::<Event>();
    let mut events = Inbox::new(rx);
    let peers = logon_all(addr, &seqs, &tx);
    for (i, (p, &(name, _, _))) in peers.iter().zip(&PEERS).enumerate() {
        p.send("A", "98=0|108=30|");
        let logon = events.wait_for(name, |m| get(m, 35) == Some("A"));
        assert_eq!(
            seq_of(&logon),
            journal_last[i] + 1,
            "{name}: the router's Logon continues the journal's sequence: {logon}"
        );
        assert!(
            seq_of(&logon) > last_out[i],
            "{name}: never below what the peer saw ({}): {logon}",
            last_out[i]
        );
        assert_ne!(get(&logon, 141), Some("Y"), "{name}: no reset: {logon}");
    }
    let desk = &peers[0];
    // The desk is told about every RFQ it had acknowledged and never saw end.
    let mut expired = HashSet::new();
    while !open.is_subset(&expired) {
        let m = events.wait_for("desk", |m| {
            get(m, 35) == Some("AI") && get(m, 297) == Some("7")
        });
        assert!(
            get(&m, 58).is_some_and(|t| t.contains("router restarted")),
            "{m}"
        );
        assert!(get(&m, 131).is_some_and(|r| r.starts_with("RFQ-")), "{m}");
        expired.insert(get(&m, 117).expect("QuoteID").to_string());
    }

    // The desk asks again for its last 40 messages of run 1 and for everything run 1 sent
    // that it never received.
    let end = journal_last[0];
    let begin = last_out[0].saturating_sub(40).max(1);
    desk.send("2", &format!("7={begin}|16={end}|"));
    let originals = &desk_journal;
    let mut covered = begin;
    let mut resent = 0;
    while covered <= end {
        let m = events.wait_for("desk", |m| get(m, 43) == Some("Y"));
        let seq = seq_of(&m);
        assert_eq!(seq, covered, "resends arrive in order: {m}");
        if get(&m, 35) == Some("4") {
            assert_eq!(get(&m, 123), Some("Y"), "a gap fill: {m}");
            let new_seq: u64 = get(&m, 36).and_then(|v| v.parse().ok()).expect("NewSeqNo");
            for s in seq..new_seq.min(end + 1) {
                let o = originals.get(&s).expect("the original is journaled");
                assert!(
                    is_admin(get(o, 35).unwrap_or("")),
                    "application message {s} gap-filled instead of resent: {o}"
                );
            }
            covered = new_seq;
        } else {
            let o = originals.get(&seq).expect("the original is journaled");
            assert_eq!(get(&m, 122), get(o, 52), "OrigSendingTime: {m}");
            assert_eq!(body(&m), body(o), "resent as sent: {m} vs {o}");
            resent += 1;
            covered = seq + 1;
        }
    }
    assert!(resent > 0, "some application messages were resent");

    // New RFQs are numbered after every one of run 1.
    desk.send(
        "R",
        &format!("131=AFTER-RESTART|146=1|{BOND}|54=1|38=1000000|"),
    );
    let ack = events.wait_for("desk", |m| {
        get(m, 35) == Some("AI") && get(m, 131) == Some("AFTER-RESTART")
    });
    assert_eq!(get(&ack, 297), Some("0"), "{ack}");
    let n = rfq_number(get(&ack, 117).expect("QuoteID"));
    assert!(
        n > last_rfq,
        "RFQ {n} after restart reuses a number (last {last_rfq})"
    );

    router.kill();
    for p in peers {
        p.finish();
    }

    // Both runs replay: the engine, resumed as the restart resumed it, produces exactly what
    // the journal recorded, expiry notices included.
    let journal_bin = std::env::var_os("RFQ_TEST_BIN_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_rfq-journal")),
        |d| Path::new(&d).join("rfq-journal"),
    );
    let out = Command::new(journal_bin)
        .arg("replay")
        .arg(&journal)
        .output()
        .expect("run rfq-journal replay");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "replay of the two runs failed: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
