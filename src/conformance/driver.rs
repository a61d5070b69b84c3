//! Running one parsed script against a FIX acceptor over TCP.
//!
//! Owns the client side of an acceptance run: opening and closing the script's connections,
//! sending rendered `I` lines, reading whole frames for `E` lines with a deadline, and
//! waiting for the peer to close on `eDISCONNECT`. It is test tooling at the edge, so unlike
//! the FIX core it reads the clock (UTC for `<TIME>`, a monotonic clock for deadlines) and
//! does blocking socket I/O; it never sleeps: every wait is a read with a deadline. Buffers
//! are bounded by the framer's maximum message size; the engine under test cannot make the
//! driver grow or hang past its deadlines.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::compare::{compare, MatchRules};
use super::render::find_field;
use super::script::{Action, ConnId, Script, Step, MAX_CONNECTIONS};
use crate::fix::{FrameStatus, Framer, SOH};
use crate::time::Nanos;

/// Timeouts and limits for one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long an `E` line or `eDISCONNECT` waits for the peer, in general.
    pub expect_timeout_ms: u64,
    /// Expectations of messages the peer sends on its heartbeat timer (a Heartbeat that
    /// answers no TestRequest, a TestRequest, and a disconnect right after an expected
    /// TestRequest) wait `heart_bt_int_s` (from the last Logon we sent on that connection)
    /// times this factor, in addition to `expect_timeout_ms`. QuickFIX sends a TestRequest
    /// after 1.2 intervals of silence and disconnects after 2.4.
    pub heartbeat_wait_factor_milli: u64,
    pub connect_timeout_ms: u64,
    /// After we close our side (`iDISCONNECT`, or the end of a script), how long we wait for
    /// the peer to close its side, so that the next script finds the session gone.
    pub close_timeout_ms: u64,
    /// Largest frame accepted from the peer.
    pub max_message_bytes: usize,
    /// How received messages are matched (see `compare`).
    pub rules: MatchRules,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            expect_timeout_ms: 5_000,
            heartbeat_wait_factor_milli: 2_500,
            connect_timeout_ms: 5_000,
            close_timeout_ms: 2_000,
            max_message_bytes: 64 * 1024,
            rules: MatchRules::RECONCILED,
        }
    }
}

/// Why a script failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Line of the step that failed (0: after the last step).
    pub line_no: u32,
    pub reason: String,
    /// The expected line, SOH shown as `|`, when the step was an expectation.
    pub expected: Option<String>,
    /// What was received instead, SOH shown as `|`, if anything.
    pub received: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line_no, self.reason)?;
        if let Some(e) = &self.expected {
            write!(f, "; expected: {e}")?;
        }
        if let Some(r) = &self.received {
            write!(f, "; received: {r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// SOH shown as `|`.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(char::from(SOH), "|")
}

/// What reading the next frame gave.
enum Recv {
    Frame(Vec<u8>),
    Closed,
    TimedOut,
    /// The peer sent bytes that are not a valid frame (wrong BodyLength or CheckSum,
    /// garbage, or over the size limit).
    Garbled(Vec<u8>),
    Failed(std::io::Error),
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// HeartBtInt of the last Logon we sent on this connection, in seconds.
    heart_bt_int_s: u64,
    /// The last expectation on this connection was a TestRequest.
    last_expected_test_request: bool,
}

impl Conn {
    fn read_frame(&mut self, framer: &Framer, deadline: Instant) -> Recv {
        let mut chunk = [0u8; 8192];
        loop {
            match framer.next_frame(&self.buf) {
                FrameStatus::Frame { len } => {
                    let frame = self.buf[..len].to_vec();
                    self.buf.drain(..len);
                    return Recv::Frame(frame);
                }
                FrameStatus::Garbled { skip } => {
                    let bad = self.buf[..skip].to_vec();
                    self.buf.drain(..skip);
                    return Recv::Garbled(bad);
                }
                FrameStatus::TooLarge { .. } => {
                    return Recv::Garbled(std::mem::take(&mut self.buf));
                }
                FrameStatus::Incomplete => {}
            }
            assert!(
                self.buf.len() <= framer.max_message_bytes() + chunk.len(),
                "framer let the receive buffer grow past its limit"
            );
            let now = Instant::now();
            if now >= deadline {
                return Recv::TimedOut;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            if let Err(e) = self.stream.set_read_timeout(Some(wait)) {
                return Recv::Failed(e);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Recv::Closed
                }
                Err(e) => return Recv::Failed(e),
            }
        }
    }

    /// Closes our side and waits (bounded) for the peer to close its side.
    fn close(mut self, timeout: Duration) {
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 8192];
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if self.stream.set_read_timeout(Some(deadline - now)).is_err() {
                break;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

/// The current time as `Nanos` since the epoch (UTC).
pub fn utc_now() -> Nanos {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// HeartBtInt (108) of a Logon (35=A) we are sending, if it is one.
fn logon_heart_bt_int_s(msg: &[u8]) -> Option<u64> {
    let value_of = |tag: &[u8]| {
        let at = find_field(msg, tag)? + tag.len() + 1;
        let len = msg[at..].iter().position(|&b| b == SOH)?;
        Some(&msg[at..at + len])
    };
    if value_of(b"35")? != b"A" {
        return None;
    }
    let v = value_of(b"108")?;
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |a, &b| a * 10 + u64::from(b - b'0')))
}

fn fail(step: &Step, reason: impl Into<String>) -> Failure {
    Failure {
        line_no: step.line_no,
        reason: reason.into(),
        expected: None,
        received: None,
    }
}

/// Whether a whole frame is a Logout (35=5).
fn is_logout(frame: &[u8]) -> bool {
    find_field(frame, b"35").is_some_and(|at| frame[at..].starts_with(b"35=5\x01"))
}

/// One script run in progress.
struct Run<'a> {
    addr: SocketAddr,
    opts: &'a RunOptions,
    framer: Framer,
    conns: Vec<Option<Conn>>,
    out: Vec<u8>,
}

/// Runs `script` against the acceptor at `addr`. Every connection the script leaves open is
/// closed before returning, pass or fail.
pub fn run_script(script: &Script, addr: SocketAddr, opts: &RunOptions) -> Result<(), Failure> {
    let mut run = Run {
        addr,
        opts,
        framer: Framer::new(opts.max_message_bytes),
        conns: (0..=MAX_CONNECTIONS).map(|_| None).collect(),
        out: Vec::with_capacity(1024),
    };
    let result = script.steps.iter().try_for_each(|step| run.step(step));
    let close = Duration::from_millis(opts.close_timeout_ms);
    for conn in run.conns.iter_mut().filter_map(Option::take) {
        conn.close(close);
    }
    result
}

impl Run<'_> {
    fn conn_mut(&mut self, step: &Step, conn: ConnId) -> Result<&mut Conn, Failure> {
        self.conns[usize::from(conn)].as_mut().ok_or_else(|| {
            fail(
                step,
                format!("connection {conn} is not open (never connected, or already closed)"),
            )
        })
    }

    fn send(&mut self, step: &Step, conn: ConnId, bytes: &[u8]) -> Result<(), Failure> {
        let heart_bt_int_s = logon_heart_bt_int_s(bytes);
        let c = self.conn_mut(step, conn)?;
        if let Some(hb) = heart_bt_int_s {
            c.heart_bt_int_s = hb;
        }
        c.stream.write_all(bytes).map_err(|e| {
            fail(
                step,
                format!("sending {} on connection {conn} failed: {e}", show(bytes)),
            )
        })
    }

    fn step(&mut self, step: &Step) -> Result<(), Failure> {
        let opts = self.opts;
        match &step.action {
            Action::Comment(_) => Ok(()),
            Action::Connect { conn } => {
                if let Some(old) = self.conns[usize::from(*conn)].take() {
                    old.close(Duration::from_millis(opts.close_timeout_ms));
                }
                let stream = TcpStream::connect_timeout(
                    &self.addr,
                    Duration::from_millis(opts.connect_timeout_ms),
                )
                .map_err(|e| fail(step, format!("connect to {}: {e}", self.addr)))?;
                let _ = stream.set_nodelay(true);
                self.conns[usize::from(*conn)] = Some(Conn {
                    stream,
                    buf: Vec::with_capacity(opts.max_message_bytes),
                    heart_bt_int_s: 0,
                    last_expected_test_request: false,
                });
                Ok(())
            }
            Action::Disconnect { conn } => {
                let c = self.conns[usize::from(*conn)].take();
                match c {
                    Some(c) => {
                        c.close(Duration::from_millis(opts.close_timeout_ms));
                        Ok(())
                    }
                    None => Err(fail(step, format!("connection {conn} is not open"))),
                }
            }
            Action::Send { conn, template } => {
                let mut out = std::mem::take(&mut self.out);
                template.render(utc_now(), &mut out);
                let result = self.send(step, *conn, &out);
                self.out = out;
                result
            }
            Action::Expect { conn, expected } => {
                let framer = self.framer.clone();
                let c = self.conn_mut(step, *conn)?;
                let mut wait_ms = opts.expect_timeout_ms;
                if expected.is_timer_driven() {
                    wait_ms += c.heart_bt_int_s * opts.heartbeat_wait_factor_milli;
                }
                c.last_expected_test_request = expected.get(35) == Some(b"1");
                let deadline = Instant::now() + Duration::from_millis(wait_ms);
                let want = expected.display();
                let failure = |reason: String, received: Option<String>| Failure {
                    line_no: step.line_no,
                    reason,
                    expected: Some(want.clone()),
                    received,
                };
                match c.read_frame(&framer, deadline) {
                    Recv::Frame(frame) => compare(expected, &frame, opts.rules)
                        .map_err(|why| failure(why, Some(show(&frame)))),
                    Recv::Closed => Err(failure(
                        format!("connection {conn} closed by the peer"),
                        None,
                    )),
                    Recv::TimedOut => Err(failure(
                        format!("nothing received on connection {conn} within {wait_ms} ms"),
                        None,
                    )),
                    Recv::Garbled(bytes) => Err(failure(
                        "received bytes that are not a valid frame (BodyLength, CheckSum or size)"
                            .to_string(),
                        Some(show(&bytes)),
                    )),
                    Recv::Failed(e) => Err(failure(format!("read failed: {e}"), None)),
                }
            }
            Action::ExpectDisconnect { conn } => {
                let framer = self.framer.clone();
                let c = self.conn_mut(step, *conn)?;
                let mut wait_ms = opts.expect_timeout_ms;
                if c.last_expected_test_request {
                    wait_ms += c.heart_bt_int_s * opts.heartbeat_wait_factor_milli;
                }
                let deadline = Instant::now() + Duration::from_millis(wait_ms);
                let mut outcome = c.read_frame(&framer, deadline);
                // Reconciling the suites: a Logout before the close is accepted.
                while opts.rules.reconcile_suites
                    && matches!(&outcome, Recv::Frame(f) if is_logout(f))
                {
                    outcome = c.read_frame(&framer, deadline);
                }
                // Whatever happened, this connection is finished for the script.
                self.conns[usize::from(*conn)] = None;
                let failure = |reason: String, received: Option<String>| Failure {
                    line_no: step.line_no,
                    reason,
                    expected: Some("disconnect".to_string()),
                    received,
                };
                match outcome {
                    Recv::Closed => Ok(()),
                    Recv::Frame(frame) => Err(failure(
                        format!("expected connection {conn} to be closed, received a message"),
                        Some(show(&frame)),
                    )),
                    Recv::TimedOut => Err(failure(
                        format!("connection {conn} still open after {wait_ms} ms"),
                        None,
                    )),
                    Recv::Garbled(bytes) => Err(failure(
                        "received bytes that are not a valid frame".to_string(),
                        Some(show(&bytes)),
                    )),
                    Recv::Failed(e) => Err(failure(format!("read failed: {e}"), None)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::frame::checksum;
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;

    fn frame(body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut out = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
        let sum = checksum(&out);
        out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        out
    }

    /// What the fake acceptor does after reading each whole frame from the client.
    enum Reply {
        Send(Vec<u8>),
        SendAndClose(Vec<u8>),
        Close,
        Nothing,
    }

    /// A one-connection acceptor that answers the n-th frame it reads with `replies[n]`,
    /// and reports every frame it read on the returned channel.
    fn fake_acceptor(replies: Vec<Reply>) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let framer = Framer::new(4096);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            for reply in replies {
                let len = loop {
                    if let FrameStatus::Frame { len } = framer.next_frame(&buf) {
                        break len;
                    }
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let _ = tx.send(buf.drain(..len).collect());
                match reply {
                    Reply::Send(b) => stream.write_all(&b).expect("write"),
                    Reply::SendAndClose(b) => {
                        stream.write_all(&b).expect("write");
                        return;
                    }
                    Reply::Close => return,
                    Reply::Nothing => {}
                }
            }
            // Hold the connection until the client closes it.
            while matches!(stream.read(&mut chunk), Ok(n) if n > 0) {}
        });
        (addr, rx)
    }

    fn script(text: &str) -> Script {
        Script::parse(text.replace('|', "\x01").as_bytes()).expect("script parses")
    }

    fn quick() -> RunOptions {
        RunOptions {
            expect_timeout_ms: 2_000,
            close_timeout_ms: 2_000,
            ..RunOptions::default()
        }
    }

    const LOGON_IN: &str = "I8=FIX.4.4|35=A|34=1|49=TW44|52=<TIME>|56=ISLD|98=0|108=30|";
    const LOGON_OUT: &str =
        "E8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|10=0|";
    fn logon_reply() -> Vec<u8> {
        frame("35=A|34=1|49=ISLD|52=20240101-12:00:00.000|56=TW44|98=0|108=30|")
    }

    #[test]
    fn a_matching_exchange_passes_and_sends_what_the_script_says() {
        let (addr, sent) = fake_acceptor(vec![
            Reply::Send(logon_reply()),
            Reply::SendAndClose(frame("35=5|34=2|49=ISLD|52=20240101-12:00:00.000|56=TW44|")),
        ]);
        let s = script(&format!(
            "iCONNECT\n{LOGON_IN}\n{LOGON_OUT}\nI8=FIX.4.4|35=5|34=2|49=TW44|52=<TIME>|56=ISLD|\n\
             E8=FIX.4.4|35=5|34=2|49=ISLD|52=00000000-00:00:00.000|56=TW44|\neDISCONNECT\n"
        ));
        assert_eq!(run_script(&s, addr, &quick()), Ok(()));
        let first = show(&sent.recv().expect("logon sent"));
        assert!(first.starts_with("8=FIX.4.4|9="), "{first}");
        assert!(first.contains("|35=A|34=1|49=TW44|52=2"), "{first}");
        let logout = show(&sent.recv().expect("logout sent"));
        assert!(logout.contains("|35=5|34=2|"), "{logout}");
    }

    #[test]
    fn a_wrong_field_fails_with_expected_and_received() {
        let (addr, _sent) = fake_acceptor(vec![Reply::Send(frame(
            "35=A|34=7|49=ISLD|52=20240101-12:00:00.000|56=TW44|98=0|108=30|",
        ))]);
        let s = script(&format!("iCONNECT\n{LOGON_IN}\n{LOGON_OUT}\n"));
        let f = run_script(&s, addr, &quick()).unwrap_err();
        assert_eq!(f.line_no, 3);
        assert_eq!(f.reason, "field 4: expected 34=1, received 34=7");
        assert!(f.expected.as_deref().is_some_and(|e| e.contains("|34=1|")));
        assert!(f.received.as_deref().is_some_and(|r| r.contains("|34=7|")));
    }

    #[test]
    fn silence_fails_on_the_deadline() {
        let (addr, _sent) = fake_acceptor(vec![Reply::Nothing]);
        let s = script(&format!("iCONNECT\n{LOGON_IN}\n{LOGON_OUT}\n"));
        let opts = RunOptions {
            expect_timeout_ms: 200,
            ..quick()
        };
        let started = Instant::now();
        let f = run_script(&s, addr, &opts).unwrap_err();
        assert!(f.reason.contains("within 200 ms"), "{f}");
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn a_close_where_a_message_is_expected_fails() {
        let (addr, _sent) = fake_acceptor(vec![Reply::Close]);
        let s = script(&format!("iCONNECT\n{LOGON_IN}\n{LOGON_OUT}\n"));
        let f = run_script(&s, addr, &quick()).unwrap_err();
        assert!(f.reason.contains("closed by the peer"), "{f}");
    }

    #[test]
    fn expected_disconnect_accepts_a_logout_first_only_when_reconciling() {
        let logout = frame("35=5|34=1|49=ISLD|52=20240101-12:00:00.000|56=TW44|58=bye|");
        let s = script(&format!("iCONNECT\n{LOGON_IN}\neDISCONNECT\n"));
        let (addr, _sent) = fake_acceptor(vec![Reply::SendAndClose(logout.clone())]);
        assert_eq!(run_script(&s, addr, &quick()), Ok(()));

        let (addr, _sent) = fake_acceptor(vec![Reply::SendAndClose(logout)]);
        let strict = RunOptions {
            rules: MatchRules::STRICT,
            ..quick()
        };
        let f = run_script(&s, addr, &strict).unwrap_err();
        assert!(f.reason.contains("received a message"), "{f}");

        // Any other message is never accepted in place of the close.
        let (addr, _sent) = fake_acceptor(vec![Reply::SendAndClose(logon_reply())]);
        let f = run_script(&s, addr, &quick()).unwrap_err();
        assert!(f.reason.contains("received a message"), "{f}");
    }

    #[test]
    fn a_garbled_frame_from_the_peer_fails() {
        let mut bad = logon_reply();
        let n = bad.len();
        bad[n - 2] = if bad[n - 2] == b'9' {
            b'0'
        } else {
            bad[n - 2] + 1
        };
        let (addr, _sent) = fake_acceptor(vec![Reply::Send(bad)]);
        let s = script(&format!("iCONNECT\n{LOGON_IN}\n{LOGON_OUT}\n"));
        let f = run_script(&s, addr, &quick()).unwrap_err();
        assert!(f.reason.contains("not a valid frame"), "{f}");
    }

    #[test]
    fn sending_on_a_connection_never_opened_fails() {
        let (addr, _sent) = fake_acceptor(vec![]);
        let s = script(&format!("iCONNECT\nI2,{}\n", &LOGON_IN[1..]));
        let f = run_script(&s, addr, &quick()).unwrap_err();
        assert_eq!(f.line_no, 2);
        assert!(f.reason.contains("connection 2 is not open"), "{f}");
    }

    #[test]
    fn logon_heart_bt_int_is_read_from_what_we_send() {
        let logon = frame("35=A|34=1|49=TW44|56=ISLD|98=0|108=6|");
        assert_eq!(logon_heart_bt_int_s(&logon), Some(6));
        assert_eq!(logon_heart_bt_int_s(&frame("35=0|108=6|")), None);
        assert_eq!(logon_heart_bt_int_s(&frame("35=A|108=-10|")), None);
        assert!(is_logout(&frame("35=5|34=2|")));
        assert!(!is_logout(&frame("35=50|34=2|")));
    }
}
