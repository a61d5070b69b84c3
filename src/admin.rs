//! The admin thread: a small HTTP/1.1 server for SREs and tools, on its own pinned thread.
//!
//! Owns the `[admin]` listener and its connections (one mio `Poll`, at most
//! `max_connections` at once, each with a bounded request buffer and a deadline), the
//! endpoints `GET /metrics` (Prometheus text: the engine thread's stage histograms and
//! counters, fetched through the bounded request/reply pair of `crate::metrics`, plus the
//! network loop's counters and its own), `GET /api/recommend?instrument=..&side=..&qty=..`
//! (the recommendation JSON of `rfq-router recommend --json`, computed here from the rules,
//! the security master and the read-only score tables: never from RFQ state) and
//! `GET /healthz`, and [`get`], the client `rfq-router stats` and the tests use. Every
//! request gets one response and the connection is closed; a request that is too large,
//! too slow, malformed, or one connection too many gets a 4xx/5xx answer and a counter,
//! never a panic. It must not touch RFQ state, take a lock the engine thread holds, or block
//! the engine thread: when the engine does not answer in time, `/metrics` says 503.

use crate::config::AdminSettings;
use crate::dealers::Dealers;
use crate::metrics::exposition;
use crate::metrics::SnapshotClient;
use crate::net::LoopHandle;
use crate::pinning::{spawn_pinned, Pinning};
use crate::rfq::types::{FixId, Side};
use crate::select::follow::RulesFollower;
use crate::select::instruments::Date;
use crate::select::scored::{ScoreSource, ScoredPanel};
use crate::select::{Candidate, Panel, RfqSpec};
use crate::time::Nanos;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long `/metrics` waits for the engine thread's snapshot.
pub const ENGINE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a finished connection may take to send its FIN after the response (its unread
/// bytes are drained meanwhile, so the response is not lost to a reset).
const LINGER: Duration = Duration::from_secs(1);
const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// An order to recommend a panel for, as `/api/recommend` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendQuery {
    pub instrument: String,
    /// `isin` or `cusip`; `None`: either.
    pub id_source: Option<IdSource>,
    pub side: Side,
    pub qty: f64,
    /// Evaluate as of this day (noon UTC); `None`: now.
    pub as_of: Option<Date>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    Isin,
    Cusip,
}

/// Why a recommendation was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecommendError {
    /// The selector refused the order (unknown instrument: the text names it).
    Refused(String),
    /// The query cannot be asked (instrument id too long, ...).
    Invalid(String),
}

/// Computes recommendations off the engine thread.
pub trait Recommender: Send {
    /// The recommendation as JSON (the same document as `rfq-router recommend --json`).
    fn recommend_json(&mut self, query: &RecommendQuery) -> Result<String, RecommendError>;
}

/// A [`Recommender`] over its own `ScoredPanel` (the same files as the engine's, loaded
/// again: rules, security master, score tables mapped read-only). Every dealer counts as
/// online, as in `rfq-router recommend`.
pub struct PanelRecommender<S: ScoreSource> {
    panel: ScoredPanel<S>,
    candidates: Vec<Candidate>,
    /// The engine's rules reloads, followed before each recommendation.
    follower: Option<RulesFollower>,
}

impl<S: ScoreSource> PanelRecommender<S> {
    pub fn new(panel: ScoredPanel<S>, dealers: &Dealers) -> PanelRecommender<S> {
        let candidates = dealers.candidates_all_online();
        PanelRecommender {
            panel,
            candidates,
            follower: None,
        }
    }

    /// Follows the engine's rules: before each recommendation, the rules the engine has
    /// installed since (a refused file changes nothing; see `select::follow`).
    pub fn following(mut self, follower: RulesFollower) -> PanelRecommender<S> {
        self.follower = Some(follower);
        self
    }

    /// The rules recommendations are made with.
    pub fn rules(&self) -> &crate::select::rules::RuleSet {
        self.panel.rules()
    }
}

/// Noon UTC of `day`, as `rfq-router recommend --as-of` takes it.
pub fn noon_of(day: Date) -> Nanos {
    Nanos(u64::try_from(day.0).unwrap_or(0) * 86_400_000_000_000 + 43_200_000_000_000)
}

fn wall_clock_now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    )
}

impl<S: ScoreSource + Send> Recommender for PanelRecommender<S> {
    fn recommend_json(&mut self, q: &RecommendQuery) -> Result<String, RecommendError> {
        if let Some(rules) = self.follower.as_mut().and_then(RulesFollower::poll) {
            // A `ScoredPanel` always takes rules; the version shows in the answer.
            let _ = self.panel.install_rules(rules);
        }
        let id = FixId::new(q.instrument.as_bytes())
            .ok_or_else(|| RecommendError::Invalid("instrument longer than 40 bytes".into()))?;
        let source = FixId::new(match q.id_source {
            Some(IdSource::Cusip) => b"1",
            Some(IdSource::Isin) => b"4",
            None => b"",
        })
        .unwrap_or(FixId::EMPTY);
        let spec = RfqSpec {
            instrument: &id,
            id_source: &source,
            side: Some(q.side),
            qty: q.qty,
            now: q.as_of.map_or_else(wall_clock_now, noon_of),
        };
        let rec = self
            .panel
            .recommend(&spec, &self.candidates)
            .map_err(|r| RecommendError::Refused(format!("{}: {}", r.text, q.instrument)))?;
        serde_json::to_string(&rec).map_err(|e| RecommendError::Invalid(e.to_string()))
    }
}

/// What the admin thread serves from.
pub struct AdminContext {
    /// The engine thread's metrics (requests answered in its `on_wake`).
    pub snapshots: SnapshotClient,
    /// The network loop's counters.
    pub net: Option<LoopHandle>,
    /// The journal's counters (when the router journals).
    pub journal: Option<crate::journal::writer::MetricsHandle>,
    /// `/api/recommend` (503 without one).
    pub recommender: Option<Box<dyn Recommender>>,
}

/// The admin thread's own counters (`rfq_router_admin_*_total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdminCounters {
    pub connections_accepted: u64,
    /// Answered 503 at once: `max_connections` were being served.
    pub connections_rejected: u64,
    pub accept_errors: u64,
    /// Whole requests read.
    pub requests: u64,
    pub responses_ok: u64,
    /// 400: malformed request line or query.
    pub bad_requests: u64,
    pub not_found: u64,
    pub method_not_allowed: u64,
    /// 431: request line and headers past `max_request_bytes`.
    pub too_large: u64,
    /// 408: no whole request within `request_timeout_ms`.
    pub timed_out: u64,
    /// 503: the engine thread did not answer a metrics request in time.
    pub engine_unavailable: u64,
    /// Connections that closed before sending a whole request.
    pub closed_early: u64,
}

impl AdminCounters {
    pub fn named(&self) -> [(&'static str, u64); 12] {
        [
            ("connections_accepted", self.connections_accepted),
            ("connections_rejected", self.connections_rejected),
            ("accept_errors", self.accept_errors),
            ("requests", self.requests),
            ("responses_ok", self.responses_ok),
            ("bad_requests", self.bad_requests),
            ("not_found", self.not_found),
            ("method_not_allowed", self.method_not_allowed),
            ("too_large", self.too_large),
            ("timed_out", self.timed_out),
            ("engine_unavailable", self.engine_unavailable),
            ("closed_early", self.closed_early),
        ]
    }
}

/// The running admin thread. Dropping it stops the thread.
pub struct RunningAdmin {
    /// Where it listens (a configured port 0 resolved).
    pub local_addr: SocketAddr,
    /// How the thread was pinned.
    pub pinning: Pinning,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl RunningAdmin {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("admin thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningAdmin {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Binds `listen` and starts the admin thread (named `admin`, pinned to `cpu` when given)
/// through `pinning::spawn_pinned`. The listener is bound before this returns.
pub fn spawn(
    listen: SocketAddr,
    settings: &AdminSettings,
    cpu: Option<usize>,
    context: AdminContext,
) -> io::Result<RunningAdmin> {
    let mut listener = TcpListener::bind(listen)?;
    let local_addr = listener.local_addr()?;
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let stop = Arc::new(AtomicBool::new(false));
    let mut server = Server {
        poll,
        listener,
        // Beyond the served connections, as many again to turn away politely (503 written,
        // then FIN and drain, so the answer is not lost to a reset); past both, a bare close.
        conns: (0..2 * settings.max_connections).map(|_| None).collect(),
        settings: *settings,
        context,
        counters: AdminCounters::default(),
        stop: stop.clone(),
    };
    let (pinned_tx, pinned_rx) = std::sync::mpsc::sync_channel(1);
    let thread = spawn_pinned("admin", cpu, move |pinning| {
        let _ = pinned_tx.send(pinning);
        server.run()
    })?;
    let pinning = pinned_rx.recv().unwrap_or(Pinning::NotAsked);
    Ok(RunningAdmin {
        local_addr,
        pinning,
        stop,
        waker,
        thread: Some(thread),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the request.
    Reading,
    /// Writing the response.
    Writing,
    /// Response written and FIN sent: discarding input until the peer's FIN.
    Draining,
}

struct Conn {
    stream: TcpStream,
    request: Vec<u8>,
    response: Vec<u8>,
    written: usize,
    phase: Phase,
    deadline: Instant,
    /// Accepted only to be answered 503 (does not count as served).
    turned_away: bool,
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    settings: AdminSettings,
    context: AdminContext,
    counters: AdminCounters,
    stop: Arc<AtomicBool>,
}

/// A response: status, content type, body.
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
        }
    }

    fn json_error(status: u16, message: &str) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: format!("{}\n", serde_json::json!({ "error": message })),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out.into_bytes()
    }
}

fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// `%XX` and `+` decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Parses `/api/recommend`'s query string.
pub fn parse_recommend_query(query: &str) -> Result<RecommendQuery, String> {
    let mut instrument = None;
    let mut id_source = None;
    let mut side = None;
    let mut qty = None;
    let mut as_of = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| format!("{key}: bad percent-encoding"))?;
        let twice = || format!("{key} given twice");
        match key {
            "instrument" => {
                if value.is_empty() {
                    return Err("instrument is empty".into());
                }
                if instrument.replace(value).is_some() {
                    return Err(twice());
                }
            }
            "id_source" => {
                let v = match value.as_str() {
                    "isin" => IdSource::Isin,
                    "cusip" => IdSource::Cusip,
                    _ => return Err(format!("id_source {value:?}: expected isin or cusip")),
                };
                if id_source.replace(v).is_some() {
                    return Err(twice());
                }
            }
            "side" => {
                let v = match value.as_str() {
                    "buy" => Side::Buy,
                    "sell" => Side::Sell,
                    _ => return Err(format!("side {value:?}: expected buy or sell")),
                };
                if side.replace(v).is_some() {
                    return Err(twice());
                }
            }
            "qty" => {
                let v: f64 = value
                    .parse()
                    .ok()
                    .filter(|q: &f64| q.is_finite() && *q > 0.0)
                    .ok_or_else(|| format!("qty {value:?}: expected a positive number"))?;
                if qty.replace(v).is_some() {
                    return Err(twice());
                }
            }
            "as_of" => {
                let v = Date::parse(&value)
                    .ok_or_else(|| format!("as_of {value:?}: expected YYYY-MM-DD"))?;
                if as_of.replace(v).is_some() {
                    return Err(twice());
                }
            }
            _ => return Err(format!("unknown parameter {key:?}")),
        }
    }
    Ok(RecommendQuery {
        instrument: instrument.ok_or("instrument is required")?,
        id_source,
        side: side.ok_or("side is required")?,
        qty: qty.ok_or("qty is required")?,
        as_of,
    })
}

impl Server {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        while !self.stop.load(Ordering::Acquire) {
            let timeout = self
                .conns
                .iter()
                .flatten()
                .map(|c| c.deadline)
                .min()
                .map(|d| d.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => self.serve(t - FIRST_CONN),
                }
            }
            self.expire(Instant::now());
        }
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let serving = self
                        .conns
                        .iter()
                        .flatten()
                        .filter(|c| !c.turned_away)
                        .count();
                    let turned_away = serving >= self.settings.max_connections as usize;
                    if turned_away {
                        self.counters.connections_rejected += 1;
                    }
                    let Some(slot) = self.conns.iter().position(Option::is_none) else {
                        // No room even to answer: a best-effort 503 and close.
                        let r = Response::text(503, "too many admin connections");
                        let _ = stream.write(&r.bytes());
                        continue;
                    };
                    let token = Token(FIRST_CONN + slot);
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .is_err()
                    {
                        self.counters.accept_errors += 1;
                        continue;
                    }
                    if !turned_away {
                        self.counters.connections_accepted += 1;
                    }
                    let request_capacity = if turned_away {
                        0
                    } else {
                        self.settings.max_request_bytes as usize
                    };
                    self.conns[slot] = Some(Conn {
                        stream,
                        request: Vec::with_capacity(request_capacity),
                        response: Vec::new(),
                        written: 0,
                        phase: Phase::Reading,
                        deadline: Instant::now()
                            + Duration::from_millis(self.settings.request_timeout_ms),
                        turned_away,
                    });
                    if turned_away {
                        let r = Response::text(503, "too many admin connections");
                        self.respond(slot, r);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.counters.accept_errors += 1;
                    return;
                }
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    /// Queues `response` on `slot` and starts writing it.
    fn respond(&mut self, slot: usize, response: Response) {
        if response.status == 200 {
            self.counters.responses_ok += 1;
        }
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        c.response = response.bytes();
        c.written = 0;
        c.phase = Phase::Writing;
        c.deadline = Instant::now() + Duration::from_millis(self.settings.request_timeout_ms);
        let token = Token(FIRST_CONN + slot);
        if self
            .poll
            .registry()
            .reregister(
                &mut c.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.close(slot);
            return;
        }
        self.write(slot);
    }

    fn write(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        while c.written < c.response.len() {
            match c.stream.write(&c.response[c.written..]) {
                Ok(0) => return self.close(slot),
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(slot),
            }
        }
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        c.phase = Phase::Draining;
        c.deadline = Instant::now() + LINGER;
        self.drain(slot);
    }

    /// Discards input until the peer's FIN (then closes).
    fn drain(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        loop {
            match c.stream.read(&mut chunk) {
                Ok(0) => return self.close(slot),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(slot),
            }
        }
    }

    fn serve(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        match c.phase {
            Phase::Writing => return self.write(slot),
            Phase::Draining => return self.drain(slot),
            Phase::Reading => {}
        }
        let max = self.settings.max_request_bytes as usize;
        let mut chunk = [0u8; 4096];
        loop {
            match c.stream.read(&mut chunk) {
                Ok(0) => {
                    self.counters.closed_early += 1;
                    return self.close(slot);
                }
                Ok(n) => {
                    if c.request.len() + n > max {
                        self.counters.too_large += 1;
                        let r = Response::text(431, "request too large");
                        return self.respond(slot, r);
                    }
                    c.request.extend_from_slice(&chunk[..n]);
                    if let Some(end) = find_header_end(&c.request) {
                        let head = c.request[..end].to_vec();
                        self.counters.requests += 1;
                        let r = self.handle(&head);
                        return self.respond(slot, r);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.counters.closed_early += 1;
                    return self.close(slot);
                }
            }
        }
    }

    /// Connections past their deadline: 408 while reading, closed otherwise.
    fn expire(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(c) = &self.conns[slot] else { continue };
            if c.deadline > now {
                continue;
            }
            if c.phase == Phase::Reading {
                self.counters.timed_out += 1;
                self.respond(slot, Response::text(408, "request timeout"));
                // A second deadline bounds the 408's own write.
            } else {
                self.close(slot);
            }
        }
    }

    fn handle(&mut self, head: &[u8]) -> Response {
        let Ok(head) = std::str::from_utf8(head) else {
            self.counters.bad_requests += 1;
            return Response::text(400, "request is not UTF-8");
        };
        let line = head.split("\r\n").next().unwrap_or("");
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            self.counters.bad_requests += 1;
            return Response::text(400, "bad request line");
        };
        if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
            self.counters.bad_requests += 1;
            return Response::text(400, "bad request line");
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let known = matches!(path, "/metrics" | "/healthz" | "/api/recommend");
        if !known {
            self.counters.not_found += 1;
            return Response::text(404, "not found: try /metrics, /healthz, /api/recommend");
        }
        if method != "GET" {
            self.counters.method_not_allowed += 1;
            return Response::text(405, "only GET");
        }
        match path {
            "/healthz" => Response::text(200, "ok"),
            "/metrics" => self.metrics(),
            _ => self.recommend(query),
        }
    }

    fn metrics(&mut self) -> Response {
        let counters = self.counters;
        let net = self.context.net.as_ref().map(LoopHandle::counters);
        let journal = self.context.journal.as_ref().map(|j| j.snapshot());
        match self.context.snapshots.fetch(ENGINE_REPLY_TIMEOUT) {
            Ok(snapshot) => {
                // The journal thread times its own lag.
                if let Some(j) = &self.context.journal {
                    j.copy_lag_into(snapshot.stage_mut(crate::metrics::Stage::JournalLag));
                }
                let mut body = String::with_capacity(16 * 1024);
                exposition::render(
                    snapshot,
                    net.as_ref(),
                    journal.as_ref(),
                    &counters.named(),
                    &mut body,
                );
                Response {
                    status: 200,
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    body,
                }
            }
            Err(e) => {
                self.counters.engine_unavailable += 1;
                Response::text(503, &e.to_string())
            }
        }
    }

    fn recommend(&mut self, query: &str) -> Response {
        let q = match parse_recommend_query(query) {
            Ok(q) => q,
            Err(e) => {
                self.counters.bad_requests += 1;
                return Response::json_error(400, &e);
            }
        };
        let Some(recommender) = self.context.recommender.as_mut() else {
            return Response::json_error(503, "no recommender configured");
        };
        match recommender.recommend_json(&q) {
            Ok(mut body) => {
                body.push('\n');
                Response {
                    status: 200,
                    content_type: "application/json",
                    body,
                }
            }
            Err(RecommendError::Refused(text)) => {
                self.counters.not_found += 1;
                Response::json_error(404, &text)
            }
            Err(RecommendError::Invalid(text)) => {
                self.counters.bad_requests += 1;
                Response::json_error(400, &text)
            }
        }
    }
}

/// Why [`get`] failed.
#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    /// The answer is not an HTTP/1.x response.
    BadResponse(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::BadResponse(why) => write!(f, "bad response: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// Most bytes [`get`] reads.
const MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// `GET path` from an admin server: the status and the body. Blocking, with `timeout` on
/// connect, each read and each write.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String), ClientError> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut raw)?;
    let text =
        String::from_utf8(raw).map_err(|_| ClientError::BadResponse("not UTF-8".to_string()))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| ClientError::BadResponse("no end of headers".to_string()))?;
    let status = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| ClientError::BadResponse(format!("status line {head:?}")))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommend_queries_parse_and_refuse() {
        let q =
            parse_recommend_query("instrument=US99L2QH1094&side=buy&qty=6000000&as_of=2026-11-21")
                .expect("valid");
        assert_eq!(q.instrument, "US99L2QH1094");
        assert_eq!(q.side, Side::Buy);
        assert_eq!(q.qty, 6_000_000.0);
        assert_eq!(q.as_of, Date::parse("2026-11-21"));
        let q = parse_recommend_query("instrument=A%20B+C&side=sell&qty=1e6&id_source=cusip")
            .expect("valid");
        assert_eq!(q.instrument, "A B C");
        assert_eq!(q.id_source, Some(IdSource::Cusip));
        for (bad, why) in [
            ("side=buy&qty=1", "instrument is required"),
            ("instrument=X&qty=1", "side is required"),
            ("instrument=X&side=buy", "qty is required"),
            ("instrument=X&side=up&qty=1", "expected buy or sell"),
            ("instrument=X&side=buy&qty=-1", "positive"),
            ("instrument=X&side=buy&qty=NaN", "positive"),
            ("instrument=X&side=buy&qty=1&qty=2", "twice"),
            (
                "instrument=X&side=buy&qty=1&colour=red",
                "unknown parameter",
            ),
            ("instrument=%ZZ&side=buy&qty=1", "percent"),
            ("instrument=X&side=buy&qty=1&as_of=21/11/2026", "YYYY-MM-DD"),
        ] {
            let e = parse_recommend_query(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn header_end_is_found() {
        assert_eq!(find_header_end(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(find_header_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
