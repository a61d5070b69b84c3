//! The loopback FIX run: the real router (host, network loop, FIX sessions, engine,
//! `ScoredPanel`, and by default its own scoring thread learning from an empty table:
//! `sim::live`) on its own thread, and the simulated desk and dealers as real FIX sessions
//! over loopback TCP, with time compressed.
//!
//! Owns the peers' side of the sockets (logon, framing, heartbeats answered, one mio poll
//! for all of them on the calling thread), the mapping of virtual time to wall time
//! (`DemoOptions::loopback_compression` virtual seconds per wall second, `TIME_COMPRESSION`
//! by default: dealers answer, and the router's
//! protocol timers fire, that much faster; the router's timers are scaled by `SimulatedPanel`),
//! and the wire latencies measured from the peers' side. The market itself is
//! `harness::Market`, the same as in process. It reads the wall clock (it is a live run);
//! nothing here decides anything for the router. With a journal directory it journals the
//! router as `rfq-router run` does and writes the files a replay rebuilds the engine from.

use super::demo::{DemoOptions, LoopbackReport, Progress};
use super::harness::{fields, get, EngineSummary, Market, World};
use super::live::{engine_metrics, LiveReport, LiveScoring, LoopbackScores, SNAPSHOT_CAPACITY};
use super::policy::{PolicyKind, SimulatedPanel};
use super::report::LatencyRow;
use crate::config::Config;
use crate::dealers::Dealers;
use crate::fix::validate::Validator;
use crate::fix::{Encoder, FrameStatus, Framer};
use crate::host::{sessions_from_config, spawn_journaled, SpawnOptions};
use crate::journal::run_files::RunPaths;
use crate::journal::tap::{journal_config, JournalTap};
use crate::journal::Journal;
use crate::metrics::snapshot_channel;
use crate::net::NetSettings;
use crate::router::RouterApp;
use crate::scoring::ScoringClock;
use crate::select::rows::{self, RowScores};
use crate::select::scored::{AnyScores, ScoredPanel};
use crate::select::table::ScoreReader;
use crate::select::Panel;
use crate::time::Nanos;
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Virtual seconds per wall-clock second in the loopback run, by default
/// (`--loopback-compression`). At 1000x a dealer's 20 s response timeout is 20 ms of wall
/// clock: a machine busy with other work for that long makes dealers miss it.
pub const TIME_COMPRESSION: u32 = 1000;
/// Largest `--loopback-compression` (a 20 s timeout is then 2 ms of wall clock).
pub const MAX_TIME_COMPRESSION: u32 = 10_000;
/// The loopback run gives up after this long (wall clock) beyond twice the flow's span at its
/// compression.
pub const MAX_WALL_S: u64 = 120;

/// The selector a configuration's `[simulation]` table describes around `inner`: protocol
/// forced, then timers scaled. Without the table it chooses exactly as `inner` does, so
/// `rfq-journal replay` wraps every run's panel in it.
pub fn simulated_panel<P: Panel>(
    inner: P,
    sim: &crate::config::SimulationSettings,
) -> SimulatedPanel<P> {
    SimulatedPanel {
        inner,
        kind: sim.force_protocol,
        time_compression: sim.time_compression as f64,
    }
}

fn wall_now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    )
}

fn router_toml(
    world: &World,
    protocol: Option<crate::select::ProtocolKind>,
    compression: u32,
) -> String {
    let mut s = String::from(
        "[rfq]\ndesk_sessions = [\"desk\"]\nfeed_sessions = [\"feed\"]\ntimer_tick_ms = 1\n\n\
         [router]\nidle = \"block\"\n\n",
    );
    s.push_str(&format!("[simulation]\ntime_compression = {compression}\n"));
    if let Some(k) = protocol {
        s.push_str(&format!(
            "force_protocol = \"{}\"\n",
            format!("{k:?}").to_lowercase()
        ));
    }
    s.push('\n');
    let mut session = |name: &str, comp: &str| {
        s.push_str(&format!(
            "[[session]]\nname = \"{name}\"\nrole = \"acceptor\"\nlisten = \"127.0.0.1:1\"\n\
             sender_comp_id = \"ROUTER\"\ntarget_comp_id = \"{comp}\"\n\n"
        ));
    };
    session("desk", "DESK");
    for d in world.dealers.iter() {
        session(&d.name.to_lowercase(), &d.name);
    }
    session("feed", "FEED");
    s
}

fn dealers_toml(world: &World) -> String {
    let mut s = String::new();
    for d in world.dealers.iter() {
        let classes: Vec<String> = d.home.iter().map(|c| format!("\"{c}\"")).collect();
        s.push_str(&format!(
            "[[dealer]]\nname = \"{n}\"\nparty_id = \"{n}\"\nsession = \"{l}\"\ntier = 1\n\
             asset_classes = [{c}]\n\n",
            n = d.name,
            l = d.name.to_lowercase(),
            c = classes.join(", ")
        ));
    }
    s
}

struct Conn {
    stream: TcpStream,
    name: String,
    seq: u64,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
}

fn frame(encoder: &mut Encoder, name: &str, seq: u64, msg_type: &[u8], body: &[u8]) -> Vec<u8> {
    encoder
        .start(msg_type)
        .uint(34, seq)
        .str(49, name.as_bytes())
        .timestamp(52, wall_now())
        .str(56, b"ROUTER")
        .raw(body);
    encoder.finish().map(<[u8]>::to_vec).unwrap_or_default()
}

/// Connects and logs on; returns the stream (non-blocking) and any bytes read past the
/// Logon answer.
fn logon(
    addr: std::net::SocketAddr,
    name: &str,
    encoder: &mut Encoder,
) -> Result<(std::net::TcpStream, Vec<u8>), String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("{name}: connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let f = frame(encoder, name, 1, b"A", b"98=0\x01108=30\x01");
    s.write_all(&f).map_err(|e| format!("{name}: logon: {e}"))?;
    let framer = Framer::new(1 << 16);
    let mut buf = Vec::new();
    loop {
        if let FrameStatus::Frame { len } = framer.next_frame(&buf) {
            let f = fields(&buf[..len]);
            let kind = get(&f, 35).map(<[u8]>::to_vec);
            buf.drain(..len);
            match kind.as_deref() {
                Some(b"A") => break,
                Some(b"5") => return Err(format!("{name}: router refused the logon")),
                _ => continue,
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => return Err(format!("{name}: router closed during logon")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("{name}: logon answer: {e}")),
        }
    }
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok((s, buf))
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Runs the router over loopback with the world's first `opts.loopback_rfqs` orders. With
/// `opts.journal`, the router journals into `DIR/journal` (replaced) as `rfq-router run`
/// does, and its configuration and dealer database are written beside it (`router.toml`,
/// `dealers.toml`), so `rfq-journal replay DIR/journal` rebuilds the same engine.
pub fn run(
    world: &World,
    opts: &DemoOptions,
    scores: Option<&Path>,
    progress: &mut dyn FnMut(Progress),
) -> Result<LoopbackReport, String> {
    assert!(
        (1..=MAX_TIME_COMPRESSION).contains(&opts.loopback_compression),
        "loopback compression {} outside 1..={MAX_TIME_COMPRESSION} (DemoArgs checks it)",
        opts.loopback_compression
    );
    let compression = f64::from(opts.loopback_compression);
    let router_text = router_toml(world, opts.protocol, opts.loopback_compression);
    let dealers_text = dealers_toml(world);
    let mut config =
        Config::parse(&router_text, "<rfq-sim loopback router.toml>").map_err(|e| e.to_string())?;
    for s in &mut config.sessions {
        s.addr = "127.0.0.1:0".parse().expect("literal address");
    }
    let dealers = Dealers::parse(&dealers_text, "<rfq-sim dealers.toml>", &config)
        .map_err(|e| e.to_string())?;
    let start = wall_now();
    // Live: an empty table its own scoring thread fills (a cold start); frozen: the table
    // learned in process, read only.
    let mut live = match opts.loopback_scores {
        LoopbackScores::Live => Some(LiveScoring::create(
            world,
            opts.journal.as_deref(),
            &config.scoring,
            start,
        )?),
        LoopbackScores::Frozen => None,
    };
    let journal_scores = match &live {
        Some(l) => l.journal_scores(),
        None => scores,
    };
    // As `rfq-router run`: the engine scores from its own copy of the rows, the table it
    // starts from (given and journaled at start), then the rows each score update of the
    // live scoring thread carries, so `rfq-journal replay` needs only the journal.
    let snapshot = match journal_scores {
        Some(p) => rows::snapshot(&ScoreReader::open_read_only(p).map_err(|e| e.to_string())?),
        None => Vec::new(),
    };
    let source = AnyScores::Rows(RowScores::new(
        config.scoring.model.clone(),
        rows::capacity_for(
            config.scoring.dealers_capacity,
            config.scoring.segments_per_dealer,
        ),
    ));
    let panel = simulated_panel(
        ScoredPanel::new(world.rules.clone(), world.master.clone(), &dealers, source),
        &config.simulation,
    );
    let mut tap = match &opts.journal {
        Some(dir) => Some(open_journal(
            dir,
            &config,
            [&router_text, &dealers_text],
            journal_scores,
            start,
        )?),
        None => None,
    };
    let journal_metrics = tap.as_ref().map(|t| t.journal().metrics_handle());
    let (mut snapshots, snapshot_server) = snapshot_channel(SNAPSHOT_CAPACITY, None);
    let mut app =
        RouterApp::from_config(&config, &dealers, panel, start).with_admin(snapshot_server);
    app.load_score_snapshot(start, snapshot, tap.as_mut());
    if let Some(l) = &mut live {
        let (facts, inbox) = l.engine_side();
        app = app.with_feedback(facts, inbox);
    }
    let router = spawn_journaled(
        SpawnOptions::named("rfq-sim-router"),
        NetSettings::from_config(&config),
        sessions_from_config(&config),
        64,
        Arc::new(Validator::fix44()),
        app,
        tap,
    )
    .map_err(|e| format!("router: {e}"))?;
    snapshots.set_wake(router.handle.clone());
    let scoring = match &mut live {
        Some(l) => Some(l.start(router.handle.clone(), start, compression)?),
        None => None,
    };
    let addr = router.listen_addrs[0].ok_or("router: no listener")?;
    let result = drive(world, opts, addr, progress);
    // The engine's own metrics, as `/metrics` would serve them now.
    let metrics = result
        .as_ref()
        .ok()
        .map(|_| engine_metrics(&mut snapshots, &router.handle, journal_metrics.as_ref()));
    let learned = match (&live, &scoring) {
        (Some(l), Some(s)) => {
            let now = ScoringClock::compressed(start, compression).at(wall_now());
            Some(LiveReport::of(s, l.learned(world.dealers.len(), now)))
        }
        _ => None,
    };
    let stopped = router.stop();
    if let Some(s) = scoring {
        s.stop();
    }
    let mut report = result?;
    stopped.map_err(|e| format!("router thread: {e}"))?;
    report.result.policy = PolicyKind::Dynamic;
    report.result.label = match opts.loopback_scores {
        LoopbackScores::Live => "dynamic (loopback)",
        LoopbackScores::Frozen => "dynamic (loopback, frozen)",
    };
    let metrics = metrics.transpose()?;
    if let Some(m) = &metrics {
        report.result.engine = m.summary;
    }
    report.engine_metrics = metrics;
    report.live = learned;
    Ok(report)
}

/// Writes the loopback router's files into `dir`, opens a fresh journal in `dir/journal`
/// and writes the run's first record naming those files (absolute paths; the rules and
/// security master are the compiled-in copies, as in `World::new`).
fn open_journal(
    dir: &Path,
    config: &Config,
    [router_text, dealers_text]: [&str; 2],
    scores: Option<&Path>,
    start: Nanos,
) -> Result<JournalTap, String> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    let dir = std::fs::canonicalize(dir).map_err(|e| io(dir, e))?;
    let config_path = dir.join("router.toml");
    std::fs::write(&config_path, router_text).map_err(|e| io(&config_path, e))?;
    let dealers_path = dir.join("dealers.toml");
    std::fs::write(&dealers_path, dealers_text).map_err(|e| io(&dealers_path, e))?;
    let journal_dir = dir.join("journal");
    if journal_dir.exists() {
        std::fs::remove_dir_all(&journal_dir).map_err(|e| io(&journal_dir, e))?;
    }
    let scores = match scores {
        Some(p) => Some(std::fs::canonicalize(p).map_err(|e| io(p, e))?),
        None => None,
    };
    let paths = RunPaths {
        config: Some(config_path),
        dealers: Some(dealers_path),
        rules: None,
        instruments: None,
        scores,
    };
    let files = paths.identify().map_err(|e| e.to_string())?;
    let entries: Vec<_> = files.iter().map(|f| f.as_run_file()).collect();
    let max_message = config
        .sessions
        .iter()
        .map(|s| s.limits.max_message_bytes as usize)
        .max()
        .unwrap_or(65_536);
    let jc = journal_config(
        &config.journal,
        Some(journal_dir.clone()),
        max_message,
        config.router.journal_cpu,
    );
    let (journal, _recovered) =
        Journal::open(jc).map_err(|e| format!("journal {}: {e}", journal_dir.display()))?;
    let mut tap = JournalTap::new(journal, config.sessions.len());
    tap.set_write_ahead(config.journal.write_ahead);
    tap.run_start(start, &entries).map_err(|e| {
        format!(
            "journal {}: the run's first record: {e}",
            journal_dir.display()
        )
    })?;
    Ok(tap)
}

fn drive(
    world: &World,
    opts: &DemoOptions,
    addr: std::net::SocketAddr,
    progress: &mut dyn FnMut(Progress),
) -> Result<LoopbackReport, String> {
    let mut encoder = Encoder::new(8192);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut names = vec!["DESK".to_string()];
    names.extend(world.dealers.iter().map(|d| d.name.clone()));
    names.push("FEED".to_string());
    let mut conns = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let (s, rest) = logon(addr, name, &mut encoder)?;
        let mut stream = TcpStream::from_std(s);
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        conns.push(Conn {
            stream,
            name: name.clone(),
            seq: 2,
            inbuf: rest,
            outbuf: Vec::new(),
        });
    }
    let framer = Framer::new(1 << 16);
    let mut market = Market::new(world, opts.loopback_rfqs, None, true);
    let total = market.orders();
    progress(Progress::Stage {
        name: "loopback FIX",
        total: total as u64,
    });
    let mut wire_to_wire = hist();
    let mut quote_relay = hist();
    let mut hit_relay = hist();
    let mut desk_sent: Vec<Option<Instant>> = vec![None; total];
    let mut first_dealer_r: HashMap<Vec<u8>, Instant> = HashMap::new();
    let mut quote_sent: HashMap<(usize, usize), Instant> = HashMap::new();
    let mut hit_sent: Vec<Option<Instant>> = vec![None; total];
    let wall0 = Instant::now();
    let v0 = world.cfg.start_ns;
    // The router runs on the wall clock: IOIs' ValidUntilTime too.
    let compression = f64::from(opts.loopback_compression);
    market.set_wall_clock(Nanos(v0), wall_now(), compression);
    let virt = |i: Instant| Nanos(v0 + ((i - wall0).as_secs_f64() * compression * 1e9) as u64);
    let wall_of = |t: Nanos| {
        wall0 + Duration::from_secs_f64((t.0.saturating_sub(v0)) as f64 / 1e9 / compression)
    };
    let mut events = Events::with_capacity(256);
    let mut sent = 0usize;
    // The flow's span at this compression, twice, and MAX_WALL_S more.
    let span_s = world.orders[..total]
        .last()
        .map_or(0.0, |o| o.at.saturating_sub(Nanos(v0)).0 as f64 / 1e9);
    let max_wall_s = MAX_WALL_S + (2.0 * span_s / compression) as u64;
    let give_up = wall0 + Duration::from_secs(max_wall_s);
    loop {
        // Events due by now.
        let now = Instant::now();
        let vnow = virt(now);
        while market.next_due().is_some_and(|t| t <= vnow) {
            if let Some(n) = market.step() {
                sent = n;
                if n % 50 == 0 || n == total {
                    progress(Progress::Done(n as u64));
                }
            }
            for m in market.take_outgoing() {
                let c = &mut conns[usize::from(m.session)];
                let f = frame(&mut encoder, &c.name, c.seq, m.msg_type, &m.body);
                c.seq += 1;
                c.outbuf.extend_from_slice(&f);
                let body = fields(&m.body);
                let t = Instant::now();
                match (m.session, m.msg_type) {
                    (0, b"R") => {
                        if let Some(k) = desk_id(get(&body, 131)) {
                            if let Some(s) = desk_sent.get_mut(k) {
                                *s = Some(t);
                            }
                        }
                    }
                    (0, b"AJ") => {
                        if let Some(k) = get(&body, 693)
                            .and_then(|v| v.strip_prefix(b"H"))
                            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
                        {
                            if let Some(s) = hit_sent.get_mut(k) {
                                *s = Some(t);
                            }
                        }
                    }
                    (s, b"S") => {
                        if let Some(k) = quote_k(get(&body, 117)) {
                            quote_sent.insert((k, usize::from(s) - 1), t);
                        }
                    }
                    _ => {}
                }
            }
        }
        market.set_now(vnow);
        for c in &mut conns {
            flush(c)?;
        }
        if sent == total && market.finished() {
            break;
        }
        if now > give_up {
            return Err(format!(
                "gave up after {max_wall_s} s with {sent} of {total} RFQs sent"
            ));
        }
        let timeout = market
            .next_due()
            .map(|t| wall_of(t).saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(5))
            .min(Duration::from_millis(5));
        poll.poll(&mut events, Some(timeout))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let i = ev.token().0;
            if !ev.is_readable() {
                continue;
            }
            let c = &mut conns[i];
            loop {
                let mut chunk = [0u8; 16384];
                match c.stream.read(&mut chunk) {
                    Ok(0) => return Err(format!("{}: router closed the connection", c.name)),
                    Ok(n) => c.inbuf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("{}: read: {e}", c.name)),
                }
            }
        }
        // Frames received, in connection order.
        let t = Instant::now();
        let vt = virt(t);
        #[allow(clippy::needless_range_loop)] // `conns[i]` is borrowed again inside
        for i in 0..conns.len() {
            while let FrameStatus::Frame { len } = framer.next_frame(&conns[i].inbuf) {
                let frame_bytes: Vec<u8> = conns[i].inbuf.drain(..len).collect();
                let f = fields(&frame_bytes);
                let Some(msg_type) = get(&f, 35) else {
                    continue;
                };
                match msg_type {
                    b"1" => {
                        let id = get(&f, 112).unwrap_or(b"").to_vec();
                        let mut body = b"112=".to_vec();
                        body.extend_from_slice(&id);
                        body.push(crate::fix::SOH);
                        let c = &mut conns[i];
                        let out = frame(&mut encoder, &c.name, c.seq, b"0", &body);
                        c.seq += 1;
                        c.outbuf.extend_from_slice(&out);
                    }
                    b"0" | b"A" | b"2" | b"4" | b"3" | b"5" => {}
                    _ => {
                        match (i, msg_type) {
                            (0, b"S") => {
                                let k = desk_id(get(&f, 131));
                                let d = get(&f, 448).and_then(|p| {
                                    world.dealers.iter().position(|x| x.name.as_bytes() == p)
                                });
                                if let (Some(k), Some(d)) = (k, d) {
                                    if let Some(s) = quote_sent.remove(&(k, d)) {
                                        let _ = quote_relay.record(ns(t - s));
                                    }
                                }
                            }
                            (_, b"R") if i > 0 => {
                                if let Some(w) = get(&f, 131) {
                                    first_dealer_r.entry(w.to_vec()).or_insert(t);
                                }
                            }
                            (_, b"AJ") if i > 0 && get(&f, 694) == Some(b"1") => {
                                if let Some(s) = quote_k(get(&f, 117))
                                    .and_then(|k| hit_sent.get_mut(k))
                                    .and_then(Option::take)
                                {
                                    let _ = hit_relay.record(ns(t - s));
                                }
                            }
                            _ => {}
                        }
                        market.set_now(vt);
                        let msg_type = msg_type.to_vec();
                        market.on_router_message(i as u16, &msg_type, &f);
                    }
                }
            }
        }
    }
    let wall_s = wall0.elapsed().as_secs_f64();
    for (k, sent_at) in desk_sent.iter().enumerate() {
        let (Some(s), Some(r)) = (*sent_at, first_dealer_r.get(market.wire_id(k))) else {
            continue;
        };
        let _ = wire_to_wire.record(ns(r.saturating_duration_since(s)));
    }
    let result = market.result(EngineSummary::default());
    Ok(LoopbackReport {
        time_compression: compression,
        rfqs: total as u64,
        scores: opts.loopback_scores,
        result,
        wall_s,
        live: None,
        engine_metrics: None,
        cost_curve: Vec::new(),
        scorecard: Vec::new(),
        latency: vec![
            LatencyRow::of(
                "wire: desk QuoteRequest written -> first dealer's read",
                &wire_to_wire,
            ),
            LatencyRow::of(
                "wire: dealer Quote written -> desk's relay read",
                &quote_relay,
            ),
            LatencyRow::of(
                "wire: desk hit (AJ) written -> winner's AJ read",
                &hit_relay,
            ),
        ],
    })
}

fn ns(d: Duration) -> u64 {
    (d.as_nanos() as u64).max(1)
}

fn desk_id(v: Option<&[u8]>) -> Option<usize> {
    std::str::from_utf8(v?.strip_prefix(b"K")?)
        .ok()?
        .parse()
        .ok()
}

/// The order of a simulated dealer's QuoteID `q<k>-<d>`.
fn quote_k(v: Option<&[u8]>) -> Option<usize> {
    let s = std::str::from_utf8(v?).ok()?.strip_prefix('q')?;
    s.split('-').next()?.parse().ok()
}

fn flush(c: &mut Conn) -> Result<(), String> {
    while !c.outbuf.is_empty() {
        match c.stream.write(&c.outbuf) {
            Ok(0) => return Err(format!("{}: router closed the connection", c.name)),
            Ok(n) => {
                c.outbuf.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{}: write: {e}", c.name)),
        }
    }
    Ok(())
}
