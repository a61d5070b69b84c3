//! The network loop over real loopback TCP: echo with many clients, the write-queue and
//! read-buffer bounds, the connection limit, reconnect with back-off, the waker, timers,
//! graceful close and stale connection ids.
//!
//! Each test runs one `EventLoop` in its own thread with a test handler that reports what the
//! loop told it over a channel and takes commands (send, close) through the waker. Tests
//! synchronise only by blocking on sockets and channels with generous timeouts; no sleeps.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rfq_router::net::{
    CloseReason, ConnId, ConnectionLimits, DialerId, EventLoop, Handler, IdleStrategy, LoopHandle,
    Net, NetSettings, Reconnect, SendError,
};
use rfq_router::time::Nanos;

const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Accepted(ConnId, u64),
    Connected(ConnId, u64),
    ConnectFailed(u64, io::ErrorKind, bool),
    Closed(ConnId, CloseReason),
    SendResult(ConnId, Result<(), SendError>),
    Wake,
    DeadlineReached,
}

enum Cmd {
    Send(ConnId, Vec<u8>),
    Close(ConnId),
    SetDeadlineInMs(u64),
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Echo every byte at once.
    Echo,
    /// Consume and echo only whole lines (up to the last '\n'); keep the rest.
    Lines,
}

struct TestHandler {
    mode: Mode,
    events: Sender<Ev>,
    commands: Receiver<Cmd>,
    deadline: Option<Nanos>,
}

impl TestHandler {
    fn report(&self, ev: Ev) {
        // The test may have finished listening; that is fine.
        let _ = self.events.send(ev);
    }
}

impl Handler for TestHandler {
    fn on_accepted(&mut self, _net: &mut Net, conn: ConnId, tag: u64, _peer: SocketAddr) {
        self.report(Ev::Accepted(conn, tag));
    }

    fn on_connected(&mut self, _net: &mut Net, conn: ConnId, _dialer: DialerId, tag: u64) {
        self.report(Ev::Connected(conn, tag));
    }

    fn on_connect_failed(
        &mut self,
        _net: &mut Net,
        _dialer: DialerId,
        tag: u64,
        error: io::ErrorKind,
        retry_at: Option<Nanos>,
    ) {
        self.report(Ev::ConnectFailed(tag, error, retry_at.is_some()));
    }

    fn on_data(&mut self, net: &mut Net, conn: ConnId, data: &[u8]) -> usize {
        let take = match self.mode {
            Mode::Echo => data.len(),
            Mode::Lines => data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1),
        };
        if take > 0 {
            if let Err(e) = net.send(conn, &data[..take]) {
                self.report(Ev::SendResult(conn, Err(e)));
            }
        }
        take
    }

    fn on_closed(&mut self, _net: &mut Net, conn: ConnId, reason: CloseReason) {
        self.report(Ev::Closed(conn, reason));
    }

    fn on_tick(&mut self, _net: &mut Net, now: Nanos) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.report(Ev::DeadlineReached);
        }
    }

    fn next_deadline(&self) -> Option<Nanos> {
        self.deadline
    }

    fn on_wake(&mut self, net: &mut Net) {
        self.report(Ev::Wake);
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Cmd::Send(conn, bytes) => {
                    let result = net.send(conn, &bytes);
                    self.report(Ev::SendResult(conn, result));
                }
                Cmd::Close(conn) => net.close(conn),
                Cmd::SetDeadlineInMs(ms) => self.deadline = Some(net.now().add_millis(ms)),
            }
        }
    }
}

struct Harness {
    handle: LoopHandle,
    events: Receiver<Ev>,
    commands: Sender<Cmd>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Harness {
    /// Starts a loop; `setup` registers listeners / dialers before it runs.
    fn start<T>(
        settings: NetSettings,
        mode: Mode,
        setup: impl FnOnce(&mut Net) -> T,
    ) -> (Harness, T) {
        let mut event_loop = EventLoop::new(settings).expect("create loop");
        let out = setup(event_loop.net());
        let handle = event_loop.handle();
        let (ev_tx, ev_rx) = mpsc::channel();
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let mut handler = TestHandler {
            mode,
            events: ev_tx,
            commands: cmd_rx,
            deadline: None,
        };
        let thread = std::thread::spawn(move || event_loop.run(&mut handler));
        (
            Harness {
                handle,
                events: ev_rx,
                commands: cmd_tx,
                thread: Some(thread),
            },
            out,
        )
    }

    /// Waits for the first event matching `pred`, skipping others.
    fn expect(&self, what: &str, pred: impl Fn(&Ev) -> bool) -> Ev {
        let give_up = Instant::now() + WAIT;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) => {}
                Err(e) => panic!("waiting for {what}: {e}"),
            }
        }
    }

    fn command(&self, cmd: Cmd) {
        self.commands.send(cmd).expect("loop alive");
        self.handle.wake().expect("wake");
    }

    fn stop(mut self) {
        self.handle.stop();
        let thread = self.thread.take().expect("running");
        thread
            .join()
            .expect("loop thread panicked")
            .expect("loop failed");
    }
}

fn listen_settings(max_connections: u32) -> NetSettings {
    NetSettings {
        max_connections,
        ..NetSettings::default()
    }
}

fn limits(read_buffer_bytes: u32, write_queue_bytes: u32) -> ConnectionLimits {
    ConnectionLimits {
        max_message_bytes: read_buffer_bytes,
        read_buffer_bytes,
        write_queue_bytes,
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("literal address")
}

fn client(addr: SocketAddr) -> StdStream {
    let s = StdStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

fn roundtrip(s: &mut StdStream, msg: &[u8]) {
    s.write_all(msg).expect("write");
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).expect("echo back");
    assert_eq!(back, msg);
}

/// Reads until end of stream or a reset; panics on a timeout.
fn read_until_closed(s: &mut StdStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("expected the server to close: {e}"),
        }
    }
}

#[test]
fn echo_serves_many_clients() {
    let (h, addr) = Harness::start(listen_settings(64), Mode::Echo, |net| {
        net.listen(any_port(), 5, limits(4096, 65536))
            .expect("listen")
            .1
    });
    let mut clients: Vec<StdStream> = (0..32).map(|_| client(addr)).collect();
    for round in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            roundtrip(c, format!("client {i} round {round}\n").as_bytes());
        }
    }
    assert_eq!(h.handle.counters().accepted, 32);
    drop(clients);
    for _ in 0..32 {
        h.expect("peer close", |e| {
            matches!(e, Ev::Closed(_, CloseReason::PeerClosed))
        });
    }
    let counters = h.handle.counters();
    assert_eq!(counters.closed_by_peer, 32);
    assert!(counters.bytes_in > 0);
    assert_eq!(
        counters.bytes_in, counters.bytes_out,
        "everything was echoed"
    );
    h.stop();
}

#[test]
fn peer_that_never_reads_is_closed_at_the_write_queue_bound() {
    let queue_bytes = 64 * 1024;
    let (h, addr) = Harness::start(listen_settings(16), Mode::Echo, |net| {
        net.listen(any_port(), 1, limits(16 * 1024, queue_bytes))
            .expect("listen")
            .1
    });
    let mut good = client(addr);
    roundtrip(&mut good, b"before\n");

    // The stuck client writes and never reads: the echo backs up through both kernels'
    // buffers into the router's write queue, which must stop at its bound.
    let stuck = client(addr);
    let writer = std::thread::spawn(move || {
        let mut stuck = stuck;
        let chunk = vec![b'x'; 64 * 1024];
        let mut total = 0u64;
        // Far more than any kernel buffering; the router closes the connection long before.
        while total < 1 << 30 {
            match stuck.write(&chunk) {
                Ok(n) => total += n as u64,
                Err(_) => return (total, true),
            }
        }
        (total, false)
    });
    // The refused send is reported from inside on_data, before on_closed.
    let full = h.expect("send refused", |e| matches!(e, Ev::SendResult(..)));
    let Ev::SendResult(stuck_conn, Err(SendError::QueueFull { limit_bytes, .. })) = full else {
        panic!("expected QueueFull, got {full:?}")
    };
    assert_eq!(limit_bytes, queue_bytes as usize);
    assert_eq!(
        h.expect("slow consumer close", |e| matches!(e, Ev::Closed(..))),
        Ev::Closed(stuck_conn, CloseReason::SlowConsumer)
    );
    let (written, write_failed) = writer.join().expect("writer thread");
    assert!(
        write_failed,
        "the stuck client was never disconnected ({written} bytes)"
    );
    let counters = h.handle.counters();
    assert_eq!(counters.closed_slow_consumer, 1);
    // The well-behaved client is unaffected.
    roundtrip(&mut good, b"after\n");
    h.stop();
}

#[test]
fn read_buffer_bound_closes_a_connection_that_never_completes_a_message() {
    let (h, addr) = Harness::start(listen_settings(16), Mode::Lines, |net| {
        net.listen(any_port(), 1, limits(1024, 65536))
            .expect("listen")
            .1
    });
    let mut good = client(addr);
    let Ev::Accepted(good_conn, _) = h.expect("accepted", |e| matches!(e, Ev::Accepted(..))) else {
        unreachable!()
    };
    // A line that exactly fills the buffer is still served.
    let mut line = vec![b'a'; 1023];
    line.push(b'\n');
    roundtrip(&mut good, &line);

    let mut flooder = client(addr);
    flooder.write_all(&[b'z'; 1500]).expect("write");
    h.expect("read overflow close", |e| {
        matches!(e, Ev::Closed(_, CloseReason::ReadOverflow))
    });
    read_until_closed(&mut flooder);
    assert_eq!(h.handle.counters().read_overflow, 1);
    // A partial line is kept until the rest arrives, then served whole.
    good.write_all(b"par").expect("write");
    good.flush().expect("flush");
    h.command(Cmd::Send(good_conn, b"<".to_vec()));
    h.expect("marker sent", |e| matches!(e, Ev::SendResult(_, Ok(()))));
    good.write_all(b"tial\n").expect("write");
    let mut back = [0u8; 9];
    good.read_exact(&mut back).expect("marker then the line");
    assert_eq!(&back, b"<partial\n");
    h.stop();
}

#[test]
fn connections_past_the_limit_are_accepted_and_closed() {
    let (h, addr) = Harness::start(listen_settings(2), Mode::Echo, |net| {
        net.listen(any_port(), 1, limits(4096, 65536))
            .expect("listen")
            .1
    });
    let mut c1 = client(addr);
    let mut c2 = client(addr);
    roundtrip(&mut c1, b"one\n");
    roundtrip(&mut c2, b"two\n");
    let mut c3 = client(addr);
    read_until_closed(&mut c3);
    assert_eq!(h.handle.counters().rejected_over_limit, 1);
    assert_eq!(h.handle.counters().accepted, 2);
    // Room again once one leaves.
    drop(c1);
    h.expect("c1 closed", |e| matches!(e, Ev::Closed(..)));
    let mut c4 = client(addr);
    roundtrip(&mut c4, b"four\n");
    roundtrip(&mut c2, b"still two\n");
    h.stop();
}

/// Accepts one connection on a helper thread so the test can wait with a timeout.
fn accept_with_timeout(listener: &StdListener) -> StdStream {
    let listener = listener.try_clone().expect("clone listener");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|(s, _)| s));
    });
    let s = rx
        .recv_timeout(WAIT)
        .expect("no connection arrived")
        .expect("accept");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

#[test]
fn initiator_reconnects_after_the_server_closes() {
    let server = StdListener::bind(any_port()).expect("bind");
    let server_addr = server.local_addr().expect("addr");
    let (h, _) = Harness::start(listen_settings(4), Mode::Echo, |net| {
        net.connect(
            server_addr,
            7,
            limits(4096, 65536),
            Reconnect::Backoff {
                initial_ms: 10,
                max_ms: 40,
            },
        )
        .expect("dial")
    });
    let first = accept_with_timeout(&server);
    let Ev::Connected(conn1, 7) = h.expect("connected", |e| matches!(e, Ev::Connected(..))) else {
        unreachable!()
    };
    drop(first);
    h.expect("closed by peer", |e| {
        *e == Ev::Closed(conn1, CloseReason::PeerClosed)
    });
    let mut second = accept_with_timeout(&server);
    let Ev::Connected(conn2, 7) = h.expect("reconnected", |e| matches!(e, Ev::Connected(..)))
    else {
        unreachable!()
    };
    assert_ne!(conn1, conn2);
    assert_eq!(conn1.index(), conn2.index(), "the slot is reused");
    roundtrip(&mut second, b"ping\n");

    // The stale id never reaches the new connection.
    h.command(Cmd::Send(conn1, b"stale\n".to_vec()));
    assert_eq!(
        h.expect("stale send", |e| matches!(e, Ev::SendResult(..))),
        Ev::SendResult(conn1, Err(SendError::UnknownConnection))
    );
    h.command(Cmd::Send(conn2, b"fresh\n".to_vec()));
    assert_eq!(
        h.expect("fresh send", |e| matches!(e, Ev::SendResult(..))),
        Ev::SendResult(conn2, Ok(()))
    );
    let mut back = [0u8; 6];
    second.read_exact(&mut back).expect("fresh bytes");
    assert_eq!(&back, b"fresh\n");
    let counters = h.handle.counters();
    assert_eq!(counters.connected, 2);
    h.stop();
    // Shutdown closes the open connection.
    read_until_closed(&mut second);
}

#[test]
fn initiator_retries_a_refused_connect() {
    // Find a free port, then make sure nothing listens on it.
    let addr = StdListener::bind(any_port())
        .and_then(|l| l.local_addr())
        .expect("free port");
    let (h, _) = Harness::start(listen_settings(4), Mode::Echo, |net| {
        net.connect(
            addr,
            9,
            limits(4096, 65536),
            Reconnect::Backoff {
                initial_ms: 5,
                max_ms: 20,
            },
        )
        .expect("dial")
    });
    assert_eq!(
        h.expect("refused", |e| matches!(e, Ev::ConnectFailed(..))),
        Ev::ConnectFailed(9, io::ErrorKind::ConnectionRefused, true)
    );
    let server = StdListener::bind(addr).expect("rebind the port");
    let mut s = accept_with_timeout(&server);
    h.expect("connected", |e| matches!(e, Ev::Connected(_, 9)));
    roundtrip(&mut s, b"hello\n");
    assert!(h.handle.counters().connect_failed >= 1);
    h.stop();
}

#[test]
fn waker_wakes_a_blocked_loop_from_another_thread() {
    let settings = NetSettings {
        idle: IdleStrategy::Block,
        ..NetSettings::default()
    };
    // No sockets, no deadlines: only the waker can end the poll.
    let (h, ()) = Harness::start(settings, Mode::Echo, |_| ());
    let handle = h.handle.clone();
    std::thread::spawn(move || handle.wake().expect("wake"))
        .join()
        .expect("waking thread");
    h.expect("wake", |e| *e == Ev::Wake);
    assert!(h.handle.counters().wakeups >= 1);
    h.stop();
}

#[test]
fn handler_deadline_ends_a_blocking_poll() {
    let (h, ()) = Harness::start(NetSettings::default(), Mode::Echo, |_| ());
    h.command(Cmd::SetDeadlineInMs(30));
    h.expect("deadline", |e| *e == Ev::DeadlineReached);
    h.stop();
}

#[test]
fn close_flushes_queued_bytes_then_ends_the_stream() {
    let (h, addr) = Harness::start(listen_settings(4), Mode::Echo, |net| {
        net.listen(any_port(), 3, limits(4096, 1 << 20))
            .expect("listen")
            .1
    });
    let mut c = client(addr);
    let Ev::Accepted(conn, 3) = h.expect("accepted", |e| matches!(e, Ev::Accepted(..))) else {
        unreachable!()
    };
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    h.command(Cmd::Send(conn, payload.clone()));
    h.command(Cmd::Close(conn));
    assert_eq!(
        h.expect("send", |e| matches!(e, Ev::SendResult(..))),
        Ev::SendResult(conn, Ok(()))
    );
    h.expect("closed locally", |e| {
        *e == Ev::Closed(conn, CloseReason::Local)
    });
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("all bytes then EOF");
    assert_eq!(got.len(), payload.len());
    assert!(got == payload);
    h.command(Cmd::Send(conn, b"late".to_vec()));
    assert!(matches!(
        h.expect("late send", |e| matches!(e, Ev::SendResult(..))),
        Ev::SendResult(_, Err(_))
    ));
    h.stop();
}

#[test]
fn stop_closes_open_connections_with_shutdown() {
    let (h, addr) = Harness::start(listen_settings(4), Mode::Echo, |net| {
        net.listen(any_port(), 1, limits(4096, 65536))
            .expect("listen")
            .1
    });
    let mut c = client(addr);
    roundtrip(&mut c, b"x\n");
    let events_handle = h.handle.clone();
    let Harness {
        handle: _,
        events,
        commands: _commands,
        mut thread,
    } = h;
    events_handle.stop();
    thread
        .take()
        .expect("running")
        .join()
        .expect("loop thread")
        .expect("loop result");
    let closed: Vec<Ev> = events
        .try_iter()
        .filter(|e| matches!(e, Ev::Closed(..)))
        .collect();
    assert_eq!(closed.len(), 1);
    assert!(matches!(closed[0], Ev::Closed(_, CloseReason::Shutdown)));
    read_until_closed(&mut c);
    assert_eq!(events_handle.counters().closed_shutdown, 1);
}

#[test]
fn echo_works_with_every_idle_strategy() {
    for idle in [
        IdleStrategy::Spin,
        IdleStrategy::Backoff,
        IdleStrategy::Block,
    ] {
        let settings = NetSettings {
            idle,
            ..listen_settings(4)
        };
        let (h, addr) = Harness::start(settings, Mode::Echo, |net| {
            net.listen(any_port(), 1, limits(4096, 65536))
                .expect("listen")
                .1
        });
        let mut c = client(addr);
        for i in 0..20 {
            roundtrip(&mut c, format!("{idle:?} {i}\n").as_bytes());
        }
        h.command(Cmd::SetDeadlineInMs(5));
        h.expect("deadline", |e| *e == Ev::DeadlineReached);
        h.stop();
    }
}

#[test]
fn per_event_budgets_carry_work_over_to_the_next_cycle() {
    // Tiny budgets: every burst exceeds them, and edge-triggered readiness is not repeated,
    // so the loop must remember the unfinished connection / listener itself.
    let settings = NetSettings {
        read_bytes_per_event: 512,
        accepts_per_event: 1,
        ..listen_settings(32)
    };
    let (h, addr) = Harness::start(settings, Mode::Echo, |net| {
        net.listen(any_port(), 1, limits(4096, 1 << 20))
            .expect("listen")
            .1
    });
    let mut clients: Vec<StdStream> = (0..10).map(|_| client(addr)).collect();
    for c in &mut clients {
        roundtrip(c, b"hi\n");
    }
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let mut writer_end = clients[0].try_clone().expect("clone");
    let to_send = payload.clone();
    let writer = std::thread::spawn(move || writer_end.write_all(&to_send));
    let mut back = vec![0u8; payload.len()];
    clients[0].read_exact(&mut back).expect("everything echoed");
    writer.join().expect("writer").expect("write");
    assert!(back == payload);
    h.stop();
}
