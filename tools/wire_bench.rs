//! `wire-bench`: wire-to-wire latency on loopback, the router against a bare TCP relay.
//!
//! Owns the benchmark only: it starts, in one process and in alternation, (1) a relay thread
//! that copies bytes from the desk's socket to the dealer's (the floor), (2) the router with
//! `idle = "block"`, (3) the router with `idle = "spin"` and, for reference only, (4) the relay
//! busy-polling its read as the spinning router does (the floor a spinning engine could reach
//! at best). A desk client sends QuoteRequests at a fixed rate, one in flight at a time; one dealer (max_dealers = 1) reads each router
//! QuoteRequest and answers QuoteRequestReject so the RFQ ends. Per request it records the time
//! from just before the desk's `write` to just after the dealer's `read` that completed the
//! QuoteRequest, into an hdrhistogram, and prints p50/p90/p99/p99.9/max per contender and the
//! ratio of each p50 to the relay's. The peers never spin: the dealer's reads block, and the
//! desk drains what it was sent between requests with non-blocking reads, so no desk thread
//! is woken while a request is in flight (a real desk is on another machine). It reports
//! the goals (DESIGN.md section 10); it asserts nothing about them. It must not be used as a
//! test: its numbers depend on the machine and its load.

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use rfq_router::config::{Config, IdleStrategy};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::fix::{Encoder, FrameStatus, Framer, SOH};
use rfq_router::host::{sessions_from_config, spawn_with, RunningHost, SpawnOptions};
use rfq_router::net::NetSettings;
use rfq_router::pinning::{available_cpus, pin_current_thread, Pinning};
use rfq_router::router::RouterApp;
use rfq_router::select::StaticTiers;
use rfq_router::time::Nanos;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "wire-bench",
    about = "Wire-to-wire latency on loopback: desk QuoteRequest in -> dealer QuoteRequest out, \
             the router (block, spin) against a bare TCP relay"
)]
struct Args {
    /// Measured requests per contender per round.
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Requests per second sent by the desk (one in flight at a time).
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Unmeasured requests sent first, per contender per round.
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// Times the three contenders are run, in alternation.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// CPU for the middle thread (relay or router engine). Default: the last CPU this process
    /// may use; the desk and dealer peers are pinned to the others. Ignored with --no-pin.
    #[arg(long)]
    engine_cpu: Option<usize>,
    /// Pin nothing (neither the middle thread nor the peers).
    #[arg(long)]
    no_pin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    /// The floor: a thread blocking in `read` on the desk's socket, writing to the dealer's.
    Relay,
    Block,
    Spin,
    /// For reference, not a goal: the relay busy-polling a non-blocking read, as the router
    /// does in `spin` (the spin contender's floor).
    SpinRelay,
}

const CONTENDERS: [Contender; 4] = [
    Contender::Relay,
    Contender::Block,
    Contender::Spin,
    Contender::SpinRelay,
];

impl Contender {
    fn label(self) -> &'static str {
        match self {
            Contender::Relay => "relay (floor)",
            Contender::Block => "router block",
            Contender::Spin => "router spin",
            Contender::SpinRelay => "relay spin",
        }
    }
}

const ROUTER_TOML: &str = r#"
[router]
idle = "block"

[rfq]
desk_sessions = ["desk"]
max_open_rfqs = 1024
[rfq.protocol]
kind = "broadcast"
max_dealers = 1
response_timeout_ms = 20000
rfq_expiry_ms = 120000

[[session]]
name = "desk"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DESK"
heart_bt_int_s = 30

[[session]]
name = "dealer"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALER"
heart_bt_int_s = 30
"#;

const DEALERS_TOML: &str = r#"
[[dealer]]
name = "Bench Dealer"
party_id = "BDLR"
session = "dealer"
tier = 1
"#;

const INSTRUMENT: &[u8] = b"ACME 5 2031";
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn wall_now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    )
}

/// The value of `tag` in one SOH-delimited frame.
fn field<'a>(frame: &'a [u8], tag: &[u8]) -> Option<&'a [u8]> {
    frame
        .split(|&b| b == SOH)
        .find_map(|f| f.strip_prefix(tag).and_then(|rest| rest.strip_prefix(b"=")))
}

/// One side of a FIX conversation over a blocking socket (no spinning: reads block).
struct FixPeer {
    stream: TcpStream,
    sender: &'static [u8],
    target: &'static [u8],
    seq: u64,
    encoder: Encoder,
    framer: Framer,
    buf: Vec<u8>,
    len: usize,
}

impl FixPeer {
    fn new(stream: TcpStream, sender: &'static [u8], target: &'static [u8]) -> Result<FixPeer> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(FixPeer {
            stream,
            sender,
            target,
            seq: 1,
            encoder: Encoder::new(1 << 16),
            framer: Framer::new(1 << 16),
            buf: vec![0; 1 << 17],
            len: 0,
        })
    }

    /// Encodes a message whose body fields come from `body`; returns the frame.
    fn encode(&mut self, msg_type: &[u8], body: impl FnOnce(&mut Encoder)) -> Result<&[u8]> {
        let seq = self.seq;
        self.seq += 1;
        let e = &mut self.encoder;
        e.start(msg_type)
            .uint(34, seq)
            .str(49, self.sender)
            .timestamp(52, wall_now())
            .str(56, self.target);
        body(e);
        e.finish().map_err(|e| anyhow::anyhow!("encode: {e:?}"))
    }

    fn send(&mut self, msg_type: &[u8], body: impl FnOnce(&mut Encoder)) -> Result<()> {
        self.encode(msg_type, body)?;
        self.stream.write_all(self.encoder.frame())?;
        Ok(())
    }

    /// Drops the first `len` buffered bytes.
    fn consume(&mut self, len: usize) {
        self.buf.copy_within(len..self.len, 0);
        self.len -= len;
    }

    /// Blocks until a frame of `msg_type` is buffered at offset 0 (other frames are dropped);
    /// returns its length and the instant the read that completed it returned.
    fn recv_type(&mut self, msg_type: &[u8]) -> Result<(usize, Instant)> {
        let mut read_at = Instant::now();
        loop {
            match self.framer.next_frame(&self.buf[..self.len]) {
                FrameStatus::Frame { len } => {
                    if field(&self.buf[..len], b"35") == Some(msg_type) {
                        return Ok((len, read_at));
                    }
                    self.consume(len);
                    continue;
                }
                FrameStatus::Garbled { skip } => {
                    self.consume(skip);
                    continue;
                }
                FrameStatus::TooLarge { .. } => bail!("oversized frame"),
                FrameStatus::Incomplete => {}
            }
            if self.len == self.buf.len() {
                bail!("read buffer full");
            }
            let n = self.stream.read(&mut self.buf[self.len..]);
            read_at = Instant::now();
            match n {
                Ok(0) => bail!("connection closed"),
                Ok(n) => self.len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("waiting for 35={}", String::from_utf8_lossy(msg_type))
                    })
                }
            }
        }
    }

    /// Logon, then a TestRequest/Heartbeat round trip proving the session is up.
    fn logon(&mut self) -> Result<()> {
        self.send(b"A", |e| {
            e.uint(98, 0).uint(108, 30);
        })?;
        let (len, _) = self.recv_type(b"A")?;
        self.consume(len);
        self.send(b"1", |e| {
            e.str(112, b"ready");
        })?;
        loop {
            let (len, _) = self.recv_type(b"0")?;
            let ready = field(&self.buf[..len], b"112") == Some(b"ready");
            self.consume(len);
            if ready {
                return Ok(());
            }
        }
    }
}

/// Writes all of `bytes` to a non-blocking socket. The router reads everything it is sent,
/// so `WouldBlock` does not happen in practice; if it does, the thread yields and retries.
fn write_fully(stream: &mut TcpStream, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => bail!("connection closed while writing"),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads and discards what the desk has been sent so far (its socket is non-blocking);
/// returns the bytes read.
fn drain_desk(stream: &mut TcpStream, buf: &mut [u8]) -> Result<u64> {
    let mut total = 0u64;
    loop {
        match stream.read(buf) {
            Ok(0) => bail!("desk connection closed"),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(total),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The middle of the picture: the relay thread or the router.
enum Middle {
    Relay(JoinHandle<()>),
    Router(RunningHost),
}

struct Rig {
    desk: FixPeer,
    dealer: FixPeer,
    middle: Middle,
    /// Bytes the desk was sent (acknowledgements, declines), drained between requests.
    desk_bytes: u64,
    desk_scratch: Vec<u8>,
    pinning: Pinning,
}

fn connected_pair() -> Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

fn start_relay(middle_cpu: Option<usize>, spin: bool) -> Result<Rig> {
    let (desk_side, mut relay_in) = connected_pair()?;
    desk_side.set_nonblocking(true)?;
    let (mut relay_out, dealer_side) = connected_pair()?;
    relay_in.set_nonblocking(spin)?;
    let (pinned_tx, pinned_rx) = std::sync::mpsc::sync_channel(1);
    let relay = std::thread::Builder::new()
        .name("bench-relay".into())
        .spawn(move || {
            let _ = pinned_tx.send(pin_current_thread(middle_cpu));
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match relay_in.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if relay_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    // Only with `spin`: the relay polls (this is the middle, not a peer).
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })?;
    let pinning = pinned_rx.recv().context("relay thread started")?;
    let desk = FixPeer::new(desk_side, b"DESK", b"ROUTER")?;
    let dealer = FixPeer::new(dealer_side, b"DEALER", b"ROUTER")?;
    Ok(Rig {
        desk,
        dealer,
        middle: Middle::Relay(relay),
        desk_bytes: 0,
        desk_scratch: vec![0; 1 << 16],
        pinning,
    })
}

fn start_router(idle: IdleStrategy, middle_cpu: Option<usize>) -> Result<Rig> {
    let mut config = Config::parse(ROUTER_TOML, "wire-bench router.toml")?;
    for s in &mut config.sessions {
        s.addr = "127.0.0.1:0".parse().expect("literal address");
    }
    let dealers = Dealers::parse(DEALERS_TOML, "wire-bench dealers.toml", &config)?;
    let app = RouterApp::from_config(
        &config,
        &dealers,
        StaticTiers {
            protocol: config.rfq.protocol,
        },
        wall_now(),
    );
    let router = spawn_with(
        SpawnOptions {
            name: "engine".into(),
            cpu: middle_cpu,
        },
        NetSettings::from_limits(&config.limits, idle),
        sessions_from_config(&config),
        config.limits.max_pending_logon as usize,
        Arc::new(Validator::fix44()),
        app,
    )
    .context("starting the router")?;
    let addr = |i: usize| -> Result<SocketAddr> {
        router.listen_addrs[i].context("router listener address")
    };
    let mut desk = FixPeer::new(TcpStream::connect(addr(0)?)?, b"DESK", b"ROUTER")?;
    desk.logon().context("desk logon")?;
    let mut dealer = FixPeer::new(TcpStream::connect(addr(1)?)?, b"DEALER", b"ROUTER")?;
    dealer.logon().context("dealer logon")?;
    // From here on the desk reads only between requests, without blocking: nothing waits
    // on the desk's socket while a request is in flight (a real desk is on another machine).
    desk.stream.set_nonblocking(true)?;
    let pinning = router.pinning;
    Ok(Rig {
        desk,
        dealer,
        middle: Middle::Router(router),
        desk_bytes: 0,
        desk_scratch: vec![0; 1 << 16],
        pinning,
    })
}

impl Rig {
    /// Sends `count` desk QuoteRequests at `rate`/s, one in flight; records into `hist`
    /// (nanoseconds) when given.
    fn drive(
        &mut self,
        first_id: u64,
        count: u64,
        rate: u64,
        mut hist: Option<&mut Histogram<u64>>,
    ) -> Result<()> {
        let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
        let answer = matches!(self.middle, Middle::Router(_));
        let start = Instant::now();
        let mut id_buf = [0u8; 24];
        for i in 0..count {
            let due = start + interval * (i as u32);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            self.desk_bytes += drain_desk(&mut self.desk.stream, &mut self.desk_scratch)?;
            let id = req_id(&mut id_buf, first_id + i);
            self.desk.encode(b"R", |e| {
                e.str(131, id)
                    .uint(146, 1)
                    .str(55, INSTRUMENT)
                    .str(48, b"US0000000001")
                    .str(22, b"4")
                    .str(54, b"1")
                    .uint(38, 2_000_000);
            })?;
            let sent_at = Instant::now();
            write_fully(&mut self.desk.stream, self.desk.encoder.frame())?;
            let (len, read_at) = self
                .dealer
                .recv_type(b"R")
                .with_context(|| format!("dealer QuoteRequest for request {}", first_id + i))?;
            if let Some(h) = hist.as_deref_mut() {
                let ns = read_at.saturating_duration_since(sent_at).as_nanos() as u64;
                h.saturating_record(ns.max(1));
            }
            if answer {
                // Decline at once so the RFQ ends and its slot is free for the next.
                let mut router_req = [0u8; 64];
                let req = field(&self.dealer.buf[..len], b"131").unwrap_or(b"");
                let req_len = req.len().min(router_req.len());
                router_req[..req_len].copy_from_slice(&req[..req_len]);
                self.dealer.consume(len);
                self.dealer.send(b"AG", |e| {
                    e.str(131, &router_req[..req_len])
                        .uint(658, 10)
                        .uint(146, 1)
                        .str(55, INSTRUMENT);
                })?;
            } else {
                self.dealer.consume(len);
            }
        }
        Ok(())
    }

    /// Stops the middle; returns the bytes the desk was sent.
    fn stop(self) -> Result<u64> {
        let Rig {
            desk,
            dealer,
            middle,
            desk_bytes,
            ..
        } = self;
        match middle {
            Middle::Relay(t) => {
                drop(desk);
                drop(dealer);
                t.join().map_err(|_| anyhow::anyhow!("relay panicked"))?;
            }
            Middle::Router(r) => {
                r.stop().context("router stop")?;
                drop(desk);
                drop(dealer);
            }
        }
        Ok(desk_bytes)
    }
}

/// `B<n>` into `buf`, without allocating.
fn req_id(buf: &mut [u8; 24], n: u64) -> &[u8] {
    let mut digits = [0u8; 20];
    let d = rfq_router::fix::encode::write_u64(n, &mut digits);
    buf[0] = b'B';
    buf[1..1 + d.len()].copy_from_slice(d);
    &buf[..1 + d.len()]
}

struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    count: u64,
}

fn stats(h: &Histogram<u64>) -> Stats {
    let us = |ns: u64| ns as f64 / 1_000.0;
    Stats {
        p50: us(h.value_at_quantile(0.50)),
        p90: us(h.value_at_quantile(0.90)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        max: us(h.max()),
        count: h.len(),
    }
}

fn print_table(title: &str, rows: &[(Contender, &Histogram<u64>, String)]) {
    println!("{title}");
    println!(
        "  {:<14} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}  middle thread",
        "contender", "count", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "p50/relay"
    );
    let relay_p50 = rows
        .iter()
        .find(|(c, _, _)| *c == Contender::Relay)
        .map(|(_, h, _)| stats(h).p50);
    for (c, h, pin) in rows {
        let s = stats(h);
        let ratio = relay_p50.map_or("-".to_string(), |r| format!("{:.2}", s.p50 / r));
        println!(
            "  {:<14} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>10}  {pin}",
            c.label(),
            s.count,
            s.p50,
            s.p90,
            s.p99,
            s.p999,
            s.max,
            ratio
        );
    }
}

fn new_hist() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.requests == 0 || args.rate == 0 || args.rounds == 0 {
        bail!("--requests, --rate and --rounds must be positive");
    }
    let cpus = available_cpus();
    let (middle_cpu, peer_cpu) = if args.no_pin {
        (None, None)
    } else {
        let middle = args.engine_cpu.or_else(|| cpus.last().copied());
        let peer = cpus.iter().copied().find(|&c| Some(c) != middle);
        (middle, peer)
    };
    let peer_pinning = pin_current_thread(peer_cpu);
    println!(
        "wire-bench: {} requests at {}/s after {} warm-up, one in flight, {} round(s); \
         CPUs available: {:?}; desk/dealer peers {}",
        args.requests, args.rate, args.warmup, args.rounds, cpus, peer_pinning
    );
    if let Some(w) = peer_pinning.warning("bench peers") {
        println!("{w}");
    }
    let mut totals: Vec<(Contender, Histogram<u64>)> = CONTENDERS
        .iter()
        .map(|&c| Ok((c, new_hist()?)))
        .collect::<Result<_>>()?;
    let mut next_id = 1u64;
    for round in 1..=args.rounds {
        let mut rows: Vec<(Contender, Histogram<u64>, String)> = Vec::new();
        for c in CONTENDERS {
            let mut rig = match c {
                Contender::Relay => start_relay(middle_cpu, false)?,
                Contender::SpinRelay => start_relay(middle_cpu, true)?,
                Contender::Block => start_router(IdleStrategy::Block, middle_cpu)?,
                Contender::Spin => start_router(IdleStrategy::Spin, middle_cpu)?,
            };
            if let Some(w) = rig.pinning.warning(c.label()) {
                println!("{w}");
            }
            let pin = rig.pinning.to_string();
            let mut hist = new_hist()?;
            rig.drive(next_id, args.warmup, args.rate, None)
                .with_context(|| format!("{} warm-up", c.label()))?;
            next_id += args.warmup;
            rig.drive(next_id, args.requests, args.rate, Some(&mut hist))
                .with_context(|| format!("{} run", c.label()))?;
            next_id += args.requests;
            let desk_bytes = rig.stop()?;
            if matches!(c, Contender::Block | Contender::Spin) && desk_bytes == 0 {
                bail!(
                    "{}: the desk was sent nothing (no acknowledgements?)",
                    c.label()
                );
            }
            if let Some((_, total)) = totals.iter_mut().find(|(t, _)| *t == c) {
                total.add(&hist)?;
            }
            rows.push((c, hist, pin));
        }
        let view: Vec<_> = rows.iter().map(|(c, h, p)| (*c, h, p.clone())).collect();
        print_table(&format!("round {round}/{}:", args.rounds), &view);
    }
    let view: Vec<_> = totals.iter().map(|(c, h)| (*c, h, String::new())).collect();
    print_table(
        &format!("summary (all {} rounds merged):", args.rounds),
        &view,
    );
    let p50 = |c: Contender| {
        totals
            .iter()
            .find(|(t, _)| *t == c)
            .map_or(0.0, |(_, h)| stats(h).p50)
    };
    let (relay, block, spin) = (
        p50(Contender::Relay),
        p50(Contender::Block),
        p50(Contender::Spin),
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "goal block p50 <= relay p50 + 5 us: {:.2} vs {:.2} us ({:+.2} us): {}",
        block,
        relay,
        block - relay,
        verdict(block <= relay + 5.0)
    );
    println!(
        "goal spin p50 <= relay p50 / 2:     {:.2} vs {:.2} us (ratio {:.2}): {}",
        spin,
        relay / 2.0,
        spin / relay,
        verdict(spin <= relay / 2.0)
    );
    Ok(())
}
