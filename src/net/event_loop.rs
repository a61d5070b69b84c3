//! The poll loop ([`EventLoop`]), the handle the handler acts through ([`Net`]) and the
//! [`Handler`] trait it calls.
//!
//! This file owns the connection table (a slab with generation counters, so a stale [`ConnId`]
//! never reaches a reused slot), listeners, dialers (outbound connections with reconnect and
//! exponential back-off), edge-triggered reads bounded per event, writes queued within a bound
//! and flushed on writable events, graceful close (flush, FIN, drain, linger deadline) and
//! the poll timeout, computed from the handler's and the loop's own deadlines. It must not
//! interpret the bytes, block on anything but `poll`, or read the clock more than once a cycle.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::buffer::{ReadBuffer, WriteQueue};
use super::clock::{Clock, SystemClock};
use super::counters::{Counter, Counters, SharedCounters};
use crate::config::{Config, ConnectionLimits, IdleStrategy};
use crate::time::Nanos;

/// Connection tokens are slot indexes below this; listener tokens start here.
const LISTENER_TOKEN_BASE: usize = 1 << 30;
/// The waker's token.
const WAKER_TOKEN: Token = Token(usize::MAX);
/// Most listeners one loop holds.
const MAX_LISTENERS: usize = 1024;
/// Backoff idle strategy, counted in consecutive empty cycles (no I/O event, no leftover read
/// or accept budget; any I/O starts the count again at 0):
/// - cycles `0..BACKOFF_SPIN_CYCLES` spin: poll with a zero timeout. An empty `epoll_wait`
///   costs about 0.2-1 us, so this is roughly the first 0.2-1 ms after the last I/O, the
///   window in which a reply or the next message of a burst usually arrives;
/// - cycles `BACKOFF_SPIN_CYCLES..BACKOFF_YIELD_CYCLES` yield the CPU (`sched_yield`) before
///   each zero-timeout poll: still no wake-up latency, but a thread sharing the core runs;
/// - from `BACKOFF_YIELD_CYCLES` on the loop blocks in epoll until an event or the next
///   deadline, as `block` does.
///
/// Timers fire on time in every phase: spinning and yielding cycles check them every cycle,
/// and a blocking poll's timeout ends at the earliest deadline.
const BACKOFF_SPIN_CYCLES: u32 = 1_000;
const BACKOFF_YIELD_CYCLES: u32 = 2_000;

/// What the loop does before its next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdlePhase {
    /// Poll with a zero timeout.
    Spin,
    /// Yield the CPU, then poll with a zero timeout.
    Yield,
    /// Poll until an event or the next deadline.
    Block,
}

fn idle_phase(strategy: IdleStrategy, idle_cycles: u32) -> IdlePhase {
    match strategy {
        IdleStrategy::Spin => IdlePhase::Spin,
        IdleStrategy::Block => IdlePhase::Block,
        IdleStrategy::Backoff if idle_cycles < BACKOFF_SPIN_CYCLES => IdlePhase::Spin,
        IdleStrategy::Backoff if idle_cycles < BACKOFF_YIELD_CYCLES => IdlePhase::Yield,
        IdleStrategy::Backoff => IdlePhase::Block,
    }
}

/// Identifies one connection for its whole life; never matches a later connection that
/// reuses the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// The slot index, dense from 0: handlers may index their own tables by it (and keep
    /// the whole `ConnId` to check the generation).
    pub fn index(self) -> usize {
        self.index as usize
    }
    pub fn generation(self) -> u32 {
        self.generation
    }
}

/// Identifies a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u32);

/// Identifies an outbound connection's dialer (which reconnects it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DialerId {
    index: u32,
    generation: u32,
}

/// Why a connection the handler knew about ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its side (read returned end of stream).
    PeerClosed,
    /// The handler called [`Net::close`] or [`Net::abort`].
    Local,
    /// The write queue would have passed its limit: the peer is not reading fast enough.
    SlowConsumer,
    /// The read buffer was full and the handler consumed none of it.
    ReadOverflow,
    /// A read failed.
    ReadError(io::ErrorKind),
    /// A write failed.
    WriteError(io::ErrorKind),
    /// The loop shut down.
    Shutdown,
}

/// Why [`Net::send`] did not queue the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No such connection (closed, or a stale id).
    UnknownConnection,
    /// The connection is closing or broken; the bytes were dropped.
    Closed,
    /// Queuing would pass the write-queue limit; the connection is being closed as a slow
    /// consumer (the handler gets `on_closed(.., SlowConsumer)`).
    QueueFull {
        queued_bytes: usize,
        limit_bytes: usize,
    },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::UnknownConnection => f.write_str("unknown connection"),
            SendError::Closed => f.write_str("connection closed"),
            SendError::QueueFull {
                queued_bytes,
                limit_bytes,
            } => write!(
                f,
                "write queue full ({queued_bytes} bytes queued, limit {limit_bytes})"
            ),
        }
    }
}

impl std::error::Error for SendError {}

/// Errors from setting up listeners and dialers.
#[derive(Debug)]
pub enum NetError {
    /// Binding or registering a listener failed.
    Listen { addr: SocketAddr, error: io::Error },
    /// The loop already holds the most listeners it allows.
    TooManyListeners,
    /// The loop already holds one dialer per allowed connection.
    TooManyDialers,
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Listen { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            NetError::TooManyListeners => write!(f, "too many listeners (max {MAX_LISTENERS})"),
            NetError::TooManyDialers => f.write_str("too many dialers (max = max_connections)"),
        }
    }
}

impl std::error::Error for NetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetError::Listen { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// What a dialer does when its connection fails or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Try once; the dialer is gone after the first failure or close.
    Never,
    /// Retry after `initial_ms`, doubling after each failure up to `max_ms`;
    /// [`Net::reset_backoff`] goes back to `initial_ms`.
    Backoff { initial_ms: u64, max_ms: u64 },
}

/// Loop-wide settings (per-connection limits are given per listener / dialer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetSettings {
    pub idle: IdleStrategy,
    /// Most open connections (accepted + outbound, including closing ones).
    pub max_connections: u32,
    /// Bytes read from one connection per readiness event before serving others.
    pub read_bytes_per_event: u32,
    /// Connections accepted per listener readiness event before serving others.
    pub accepts_per_event: u32,
    pub connect_timeout_ms: u64,
    pub close_linger_ms: u64,
    /// Capacity of the poll's event batch.
    pub events_capacity: usize,
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings::from_limits(&crate::config::Limits::default(), IdleStrategy::Block)
    }
}

impl NetSettings {
    pub fn from_limits(limits: &crate::config::Limits, idle: IdleStrategy) -> NetSettings {
        NetSettings {
            idle,
            max_connections: limits.max_connections,
            read_bytes_per_event: limits.read_bytes_per_event,
            accepts_per_event: limits.accepts_per_event,
            connect_timeout_ms: limits.connect_timeout_ms,
            close_linger_ms: limits.close_linger_ms,
            events_capacity: 1024,
        }
    }

    pub fn from_config(config: &Config) -> NetSettings {
        NetSettings::from_limits(&config.limits, config.router.idle)
    }
}

/// What the loop calls. Every callback gets the [`Net`] handle to act through; the current
/// cycle's time is [`Net::now`].
///
/// Every connection reported by `on_accepted` or `on_connected` gets exactly one `on_closed`.
pub trait Handler {
    /// A connection arrived on the listener registered with `listener_tag`.
    fn on_accepted(&mut self, net: &mut Net, conn: ConnId, listener_tag: u64, peer: SocketAddr);

    /// A dialer's outbound connection is established.
    fn on_connected(&mut self, net: &mut Net, conn: ConnId, dialer: DialerId, tag: u64);

    /// A dialer's attempt failed; it retries at `retry_at` (`None`: the dialer is gone).
    fn on_connect_failed(
        &mut self,
        _net: &mut Net,
        _dialer: DialerId,
        _tag: u64,
        _error: io::ErrorKind,
        _retry_at: Option<Nanos>,
    ) {
    }

    /// Bytes arrived: `data` is everything not consumed so far. Returns how many bytes from
    /// the front are consumed; the rest is kept (within the read buffer's limit) and offered
    /// again with more. Consuming nothing from a full buffer closes the connection.
    fn on_data(&mut self, net: &mut Net, conn: ConnId, data: &[u8]) -> usize;

    /// The connection ended; `conn` is stale from now on.
    fn on_closed(&mut self, net: &mut Net, conn: ConnId, reason: CloseReason);

    /// Called once per loop cycle, after the cycle's I/O, with the cycle's time.
    fn on_tick(&mut self, _net: &mut Net, _now: Nanos) {}

    /// The earliest instant the handler needs `on_tick`; the loop does not sleep past it.
    fn next_deadline(&self) -> Option<Nanos> {
        None
    }

    /// Another thread called [`LoopHandle::wake`].
    fn on_wake(&mut self, _net: &mut Net) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Outbound, TCP handshake in progress; not yet known to the handler.
    Connecting { deadline: Nanos },
    /// Known to the handler; reading and writing.
    Open,
    /// Closed by the handler (already told): flushing the write queue.
    Flushing { deadline: Nanos },
    /// Flushed and FIN sent: reading and discarding until the peer's FIN.
    Draining { deadline: Nanos },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Accepted,
    Dialed(DialerId),
}

struct Conn {
    stream: TcpStream,
    state: ConnState,
    origin: Origin,
    read: ReadBuffer,
    write: WriteQueue,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

struct Listener {
    socket: TcpListener,
    tag: u64,
    limits: ConnectionLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialState {
    Waiting {
        at: Nanos,
    },
    Connecting(ConnId),
    Connected(ConnId),
    /// Stopped by the handler while connected: no retry when this connection ends.
    Stopping(ConnId),
}

struct Dialer {
    addr: SocketAddr,
    tag: u64,
    limits: ConnectionLimits,
    reconnect: Reconnect,
    delay_ms: u64,
    state: DialState,
}

struct DialerSlot {
    generation: u32,
    dialer: Option<Dialer>,
}

/// The handle the handler acts through: send, close, listen, connect, and the cycle's time.
pub struct Net {
    registry: Registry,
    now: Nanos,
    settings: NetSettings,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    open_count: u32,
    listeners: Vec<Listener>,
    dialers: Vec<DialerSlot>,
    free_dialers: Vec<u32>,
    /// Connections that ended and whose `on_closed` is due.
    closed: Vec<(ConnId, CloseReason)>,
    /// Connections / listeners whose read or accept budget ran out: serve them next cycle
    /// (edge-triggered readiness will not be reported again).
    read_again: Vec<ConnId>,
    read_again_spare: Vec<ConnId>,
    accept_again: Vec<u32>,
    accept_again_spare: Vec<u32>,
    /// Earliest deadline of a dialer or connection (connect timeout, linger); `None`: none.
    internal_deadline: Option<Nanos>,
    counters: Arc<SharedCounters>,
    stop: Arc<AtomicBool>,
}

/// A cloneable handle for other threads: wake the loop, stop it, read its counters.
#[derive(Clone)]
pub struct LoopHandle {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    counters: Arc<SharedCounters>,
}

impl LoopHandle {
    /// Makes the loop call `Handler::on_wake` soon.
    pub fn wake(&self) -> io::Result<()> {
        self.waker.wake()
    }

    /// Asks the loop to close everything and return from `run`.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        // If the wake fails the loop still sees the flag at its next cycle.
        let _ = self.waker.wake();
    }

    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }
}

/// The loop: a `Poll`, its event batch, the [`Net`] state and the clock.
pub struct EventLoop<C: Clock = SystemClock> {
    poll: Poll,
    events: Events,
    net: Net,
    clock: C,
    waker: Arc<Waker>,
    idle_cycles: u32,
}

impl EventLoop<SystemClock> {
    pub fn new(settings: NetSettings) -> io::Result<EventLoop<SystemClock>> {
        EventLoop::with_clock(settings, SystemClock)
    }
}

impl<C: Clock> EventLoop<C> {
    pub fn with_clock(settings: NetSettings, mut clock: C) -> io::Result<EventLoop<C>> {
        assert!(
            (settings.max_connections as usize) < LISTENER_TOKEN_BASE,
            "max_connections must stay below the listener token range"
        );
        assert!(
            settings.max_connections > 0,
            "max_connections must be positive"
        );
        assert!(
            settings.read_bytes_per_event > 0 && settings.accepts_per_event > 0,
            "per-event budgets must be positive"
        );
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let now = clock.now();
        Ok(EventLoop {
            events: Events::with_capacity(settings.events_capacity.max(16)),
            net: Net {
                registry,
                now,
                settings,
                slots: Vec::new(),
                free_slots: Vec::new(),
                open_count: 0,
                listeners: Vec::new(),
                dialers: Vec::new(),
                free_dialers: Vec::new(),
                closed: Vec::new(),
                read_again: Vec::new(),
                read_again_spare: Vec::new(),
                accept_again: Vec::new(),
                accept_again_spare: Vec::new(),
                internal_deadline: None,
                counters: Arc::new(SharedCounters::default()),
                stop: Arc::new(AtomicBool::new(false)),
            },
            poll,
            clock,
            waker,
            idle_cycles: 0,
        })
    }

    /// The handle, for setting up listeners and dialers before `run`.
    pub fn net(&mut self) -> &mut Net {
        &mut self.net
    }

    /// A handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            waker: Arc::clone(&self.waker),
            stop: Arc::clone(&self.net.stop),
            counters: Arc::clone(&self.net.counters),
        }
    }

    /// Runs cycles until [`LoopHandle::stop`] or [`Net::shutdown`]; then closes every
    /// connection (each gets `on_closed(.., Shutdown)`) and returns. A poll failure other
    /// than an interrupt is returned as is.
    pub fn run<H: Handler>(&mut self, handler: &mut H) -> io::Result<()> {
        let result = loop {
            if self.net.stop.load(Ordering::Acquire) {
                break Ok(());
            }
            if let Err(e) = self.run_once(handler) {
                break Err(e);
            }
        };
        self.net.close_all(handler);
        result
    }

    /// One cycle: poll (with a timeout from the idle strategy and the deadlines), read the
    /// clock, serve the events, fire due timers, call `on_tick`, deliver `on_closed`s.
    pub fn run_once<H: Handler>(&mut self, handler: &mut H) -> io::Result<()> {
        let timeout = self.poll_timeout(handler);
        if timeout == Some(Duration::ZERO)
            && idle_phase(self.net.settings.idle, self.idle_cycles) == IdlePhase::Yield
        {
            std::thread::yield_now();
        }
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let net = &mut self.net;
        net.now = self.clock.now();
        net.bump(Counter::cycles, 1);
        let had_work =
            !self.events.is_empty() || !net.read_again.is_empty() || !net.accept_again.is_empty();

        // Budgets that ran out last cycle: continue before new events. The lists swap with
        // their spares, so entries pushed meanwhile land in an allocated, empty list.
        if !net.read_again.is_empty() {
            let mut again = std::mem::take(&mut net.read_again_spare);
            std::mem::swap(&mut again, &mut net.read_again);
            for &id in &again {
                net.serve_read(handler, id);
                net.deliver_closed(handler);
            }
            again.clear();
            net.read_again_spare = again;
        }
        if !net.accept_again.is_empty() {
            let mut again = std::mem::take(&mut net.accept_again_spare);
            std::mem::swap(&mut again, &mut net.accept_again);
            for &index in &again {
                net.serve_accept(handler, index as usize);
            }
            again.clear();
            net.accept_again_spare = again;
        }

        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER_TOKEN {
                net.bump(Counter::wakeups, 1);
                handler.on_wake(net);
            } else if token.0 >= LISTENER_TOKEN_BASE {
                net.serve_accept(handler, token.0 - LISTENER_TOKEN_BASE);
            } else {
                net.serve_conn_event(
                    handler,
                    token.0,
                    event.is_readable() || event.is_read_closed() || event.is_error(),
                    event.is_writable() || event.is_write_closed() || event.is_error(),
                );
            }
            net.deliver_closed(handler);
        }

        if net.internal_deadline.is_some_and(|d| d <= net.now) {
            net.fire_timers(handler);
            net.deliver_closed(handler);
        }
        let now = net.now;
        handler.on_tick(net, now);
        net.deliver_closed(handler);

        self.idle_cycles = if had_work {
            0
        } else {
            self.idle_cycles.saturating_add(1)
        };
        Ok(())
    }

    fn poll_timeout<H: Handler>(&self, handler: &H) -> Option<Duration> {
        let net = &self.net;
        if !net.read_again.is_empty() || !net.accept_again.is_empty() || !net.closed.is_empty() {
            return Some(Duration::ZERO);
        }
        if idle_phase(net.settings.idle, self.idle_cycles) != IdlePhase::Block {
            return Some(Duration::ZERO);
        }
        let deadline = match (handler.next_deadline(), net.internal_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Measured from this cycle's time, so the wait can end up to one cycle's duration
        // late; never early (mio rounds sub-millisecond timeouts up).
        deadline.map(|d| Duration::from_nanos(d.saturating_sub(net.now).0))
    }
}

impl Net {
    /// The current cycle's time, read once after `poll` returned.
    pub fn now(&self) -> Nanos {
        self.now
    }

    pub fn settings(&self) -> &NetSettings {
        &self.settings
    }

    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }

    /// Open connections, including outbound ones still connecting and closing ones.
    pub fn connection_count(&self) -> u32 {
        self.open_count
    }

    /// Asks the loop to shut down at the end of this cycle.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Listens on `addr` (port 0: any free port); connections accepted there get
    /// `on_accepted(.., tag, ..)` and `limits`. Returns the bound address.
    pub fn listen(
        &mut self,
        addr: SocketAddr,
        tag: u64,
        limits: ConnectionLimits,
    ) -> Result<(ListenerId, SocketAddr), NetError> {
        if self.listeners.len() >= MAX_LISTENERS {
            return Err(NetError::TooManyListeners);
        }
        let listen_err = |error| NetError::Listen { addr, error };
        let mut socket = TcpListener::bind(addr).map_err(listen_err)?;
        let local = socket.local_addr().map_err(listen_err)?;
        let index = self.listeners.len();
        self.registry
            .register(
                &mut socket,
                Token(LISTENER_TOKEN_BASE + index),
                Interest::READABLE,
            )
            .map_err(listen_err)?;
        self.listeners.push(Listener {
            socket,
            tag,
            limits,
        });
        Ok((ListenerId(index as u32), local))
    }

    /// Starts a dialer: it connects to `addr` (from the loop, this or the next cycle),
    /// reports `on_connected(.., tag)` or `on_connect_failed`, and reconnects as `reconnect`
    /// says when an attempt fails or the connection ends.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        tag: u64,
        limits: ConnectionLimits,
        reconnect: Reconnect,
    ) -> Result<DialerId, NetError> {
        let index = match self.free_dialers.pop() {
            Some(i) => i as usize,
            None if self.dialers.len() < self.settings.max_connections as usize => {
                self.dialers.push(DialerSlot {
                    generation: 0,
                    dialer: None,
                });
                self.dialers.len() - 1
            }
            None => return Err(NetError::TooManyDialers),
        };
        let delay_ms = match reconnect {
            Reconnect::Never => 0,
            Reconnect::Backoff { initial_ms, .. } => initial_ms,
        };
        let at = self.now;
        let slot = &mut self.dialers[index];
        slot.dialer = Some(Dialer {
            addr,
            tag,
            limits,
            reconnect,
            delay_ms,
            state: DialState::Waiting { at },
        });
        self.note_deadline(at);
        Ok(DialerId {
            index: index as u32,
            generation: self.dialers[index].generation,
        })
    }

    /// Back-off back to its initial delay (call when the session on it logged on).
    pub fn reset_backoff(&mut self, dialer: DialerId) {
        if let Some(d) = self.dialer_mut(dialer) {
            if let Reconnect::Backoff { initial_ms, .. } = d.reconnect {
                d.delay_ms = initial_ms;
            }
        }
    }

    /// Stops a dialer: no more attempts. A connection it holds stays open until closed.
    pub fn stop_dialing(&mut self, dialer: DialerId) {
        let Some(d) = self.dialer_mut(dialer) else {
            return;
        };
        match d.state {
            DialState::Connected(conn) => d.state = DialState::Stopping(conn),
            DialState::Stopping(_) => {}
            DialState::Connecting(conn) => {
                self.drop_conn(conn);
                self.remove_dialer(dialer);
            }
            DialState::Waiting { .. } => self.remove_dialer(dialer),
        }
    }

    /// Queues `bytes` for `conn`, writing at once as much as the socket takes. Past the
    /// write-queue limit nothing is queued, the connection is closed as a slow consumer
    /// (`on_closed(.., SlowConsumer)` follows) and `QueueFull` is returned.
    pub fn send(&mut self, conn: ConnId, bytes: &[u8]) -> Result<(), SendError> {
        let Some(c) = self.conn_mut(conn) else {
            return Err(SendError::UnknownConnection);
        };
        if c.state != ConnState::Open {
            return Err(SendError::Closed);
        }
        let mut rest = bytes;
        if c.write.is_empty() {
            // Nothing queued ahead: write straight to the socket.
            let mut written = 0usize;
            let mut failure = None;
            while written < rest.len() {
                match c.stream.write(&rest[written..]) {
                    Ok(0) => {
                        failure = Some(io::ErrorKind::WriteZero);
                        break;
                    }
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failure = Some(e.kind());
                        break;
                    }
                }
            }
            self.bump(Counter::bytes_out, written as u64);
            if let Some(kind) = failure {
                self.end_conn(conn, CloseReason::WriteError(kind));
                return Err(SendError::Closed);
            }
            rest = &rest[written..];
        }
        if rest.is_empty() {
            return Ok(());
        }
        let Some(c) = self.conn_mut(conn) else {
            return Err(SendError::UnknownConnection);
        };
        if c.write.push(rest) {
            return Ok(());
        }
        let err = SendError::QueueFull {
            queued_bytes: c.write.len(),
            limit_bytes: c.write.limit_bytes(),
        };
        self.end_conn(conn, CloseReason::SlowConsumer);
        Err(err)
    }

    /// Bytes queued for `conn` and not yet accepted by the socket (0 for an unknown id).
    pub fn queued_bytes(&self, conn: ConnId) -> usize {
        self.conn_ref(conn).map_or(0, |c| c.write.len())
    }

    /// Closes `conn` gracefully: `on_closed(.., Local)` follows at once; in the background
    /// the queued bytes are flushed, a FIN is sent and the peer's FIN awaited, within
    /// `close_linger_ms`. Sends after this fail. Unknown ids are ignored.
    pub fn close(&mut self, conn: ConnId) {
        let deadline = self.now.add_millis(self.settings.close_linger_ms);
        let Some(c) = self.conn_mut(conn) else {
            return;
        };
        if c.state != ConnState::Open {
            return;
        }
        c.state = ConnState::Flushing { deadline };
        let origin = c.origin;
        self.note_deadline(deadline);
        self.closed.push((conn, CloseReason::Local));
        self.count_close(CloseReason::Local);
        if let Origin::Dialed(d) = origin {
            self.dialer_conn_ended(d);
        }
        self.flush(conn);
    }

    /// Closes `conn` at once, dropping anything queued; `on_closed(.., Local)` follows.
    pub fn abort(&mut self, conn: ConnId) {
        if self
            .conn_ref(conn)
            .is_some_and(|c| c.state == ConnState::Open)
        {
            self.end_conn(conn, CloseReason::Local);
        }
    }

    /// Changes `conn`'s limits (for example once a Logon says which session it is). The
    /// write-queue limit applies to the next send; the read buffer is resized as soon as the
    /// bytes it holds fit (at once, in the usual case). Returns false for an unknown id.
    pub fn set_limits(&mut self, conn: ConnId, limits: ConnectionLimits) -> bool {
        let Some(c) = self.conn_mut(conn) else {
            return false;
        };
        c.write.set_limit_bytes(limits.write_queue_bytes as usize);
        c.read.request_capacity(limits.read_buffer_bytes as usize);
        true
    }

    /// The peer's address, if `conn` is known and connected.
    pub fn peer_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conn_ref(conn).and_then(|c| c.stream.peer_addr().ok())
    }

    // ---- internals ---------------------------------------------------------------------

    fn bump(&self, counter: Counter, n: u64) {
        self.counters.add(counter, n);
    }

    fn note_deadline(&mut self, at: Nanos) {
        self.internal_deadline = Some(self.internal_deadline.map_or(at, |d| d.min(at)));
    }

    fn conn_ref(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.conn.as_ref())
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.conn.as_mut())
    }

    fn dialer_mut(&mut self, id: DialerId) -> Option<&mut Dialer> {
        self.dialers
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.dialer.as_mut())
    }

    fn remove_dialer(&mut self, id: DialerId) {
        if let Some(slot) = self.dialers.get_mut(id.index as usize) {
            if slot.generation == id.generation && slot.dialer.take().is_some() {
                slot.generation = slot.generation.wrapping_add(1);
                self.free_dialers.push(id.index);
            }
        }
    }

    /// Takes a slot for a new connection and registers its socket; `None` (socket dropped)
    /// when the table is full or registration fails.
    fn insert_conn(
        &mut self,
        mut stream: TcpStream,
        state: ConnState,
        origin: Origin,
        limits: ConnectionLimits,
    ) -> Option<ConnId> {
        if self.open_count >= self.settings.max_connections {
            return None;
        }
        let index = match self.free_slots.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                self.slots.len() - 1
            }
        };
        if self
            .registry
            .register(
                &mut stream,
                Token(index),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.free_slots.push(index as u32);
            return None;
        }
        let slot = &mut self.slots[index];
        slot.conn = Some(Conn {
            stream,
            state,
            origin,
            read: ReadBuffer::new(limits.read_buffer_bytes.max(1) as usize),
            write: WriteQueue::new(limits.write_queue_bytes as usize),
        });
        self.open_count += 1;
        Some(ConnId {
            index: index as u32,
            generation: slot.generation,
        })
    }

    /// Removes the connection and its socket; nothing is reported.
    fn drop_conn(&mut self, id: ConnId) -> Option<Conn> {
        let slot = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)?;
        let mut conn = slot.conn.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(id.index);
        self.open_count -= 1;
        // Dropping the socket would also remove it from epoll; deregistering says so.
        let _ = self.registry.deregister(&mut conn.stream);
        Some(conn)
    }

    fn count_close(&self, reason: CloseReason) {
        self.bump(Counter::closed, 1);
        let counter = match reason {
            CloseReason::PeerClosed => Counter::closed_by_peer,
            CloseReason::Local => Counter::closed_local,
            CloseReason::SlowConsumer => Counter::closed_slow_consumer,
            CloseReason::ReadOverflow => Counter::read_overflow,
            CloseReason::ReadError(_) | CloseReason::WriteError(_) => Counter::closed_io_error,
            CloseReason::Shutdown => Counter::closed_shutdown,
        };
        self.bump(counter, 1);
    }

    /// Ends a connection now. If the handler still considered it open, `on_closed` is due
    /// and its dialer (if any) schedules a reconnect.
    fn end_conn(&mut self, id: ConnId, reason: CloseReason) {
        let Some(conn) = self.drop_conn(id) else {
            return;
        };
        if conn.state == ConnState::Open {
            self.closed.push((id, reason));
            self.count_close(reason);
            if let Origin::Dialed(d) = conn.origin {
                self.dialer_conn_ended(d);
            }
        }
    }

    /// The dialer's connection is over (from the handler's point of view): wait and retry.
    fn dialer_conn_ended(&mut self, id: DialerId) {
        let now = self.now;
        let Some(d) = self.dialer_mut(id) else {
            return;
        };
        if matches!(d.state, DialState::Stopping(_)) {
            self.remove_dialer(id);
            return;
        }
        match d.reconnect {
            Reconnect::Never => self.remove_dialer(id),
            Reconnect::Backoff { max_ms, .. } => {
                let at = now.add_millis(d.delay_ms);
                d.delay_ms = d.delay_ms.saturating_mul(2).min(max_ms);
                d.state = DialState::Waiting { at };
                self.note_deadline(at);
            }
        }
    }

    /// A dialer's attempt failed: report it and schedule the next one.
    fn connect_failed<H: Handler>(&mut self, handler: &mut H, id: DialerId, kind: io::ErrorKind) {
        self.bump(Counter::connect_failed, 1);
        let now = self.now;
        let Some(d) = self.dialer_mut(id) else {
            return;
        };
        if let DialState::Connecting(conn) = d.state {
            self.drop_conn(conn);
        }
        let Some(d) = self.dialer_mut(id) else {
            return;
        };
        let tag = d.tag;
        let retry_at = match d.reconnect {
            Reconnect::Never => None,
            Reconnect::Backoff { max_ms, .. } => {
                let at = now.add_millis(d.delay_ms);
                d.delay_ms = d.delay_ms.saturating_mul(2).min(max_ms);
                d.state = DialState::Waiting { at };
                Some(at)
            }
        };
        match retry_at {
            Some(at) => self.note_deadline(at),
            None => self.remove_dialer(id),
        }
        handler.on_connect_failed(self, id, tag, kind, retry_at);
    }

    fn start_attempt<H: Handler>(&mut self, handler: &mut H, id: DialerId) {
        let Some(d) = self.dialer_mut(id) else {
            return;
        };
        let (addr, limits) = (d.addr, d.limits);
        self.bump(Counter::connects_started, 1);
        let stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.connect_failed(handler, id, e.kind()),
        };
        let deadline = self.now.add_millis(self.settings.connect_timeout_ms);
        match self.insert_conn(
            stream,
            ConnState::Connecting { deadline },
            Origin::Dialed(id),
            limits,
        ) {
            Some(conn) => {
                if let Some(d) = self.dialer_mut(id) {
                    d.state = DialState::Connecting(conn);
                }
                self.note_deadline(deadline);
            }
            // Over the connection limit (or registration failed): a failed attempt, `Other`.
            None => self.connect_failed(handler, id, io::ErrorKind::Other),
        }
    }

    /// Due dialer attempts, connect timeouts and linger deadlines; recomputes the next one.
    fn fire_timers<H: Handler>(&mut self, handler: &mut H) {
        let now = self.now;
        self.internal_deadline = None;
        for index in 0..self.dialers.len() {
            let slot = &self.dialers[index];
            let id = DialerId {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(d) = &slot.dialer else { continue };
            if let DialState::Waiting { at } = d.state {
                if at <= now {
                    self.start_attempt(handler, id);
                } else {
                    self.note_deadline(at);
                }
            }
        }
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            let id = ConnId {
                index: index as u32,
                generation: slot.generation,
            };
            let Some(c) = &slot.conn else { continue };
            match c.state {
                ConnState::Open => {}
                ConnState::Connecting { deadline } => {
                    if deadline <= now {
                        if let Origin::Dialed(d) = c.origin {
                            self.connect_failed(handler, d, io::ErrorKind::TimedOut);
                        }
                    } else {
                        self.note_deadline(deadline);
                    }
                }
                ConnState::Flushing { deadline } | ConnState::Draining { deadline } => {
                    if deadline <= now {
                        self.bump(Counter::linger_expired, 1);
                        self.drop_conn(id);
                    } else {
                        self.note_deadline(deadline);
                    }
                }
            }
        }
    }

    fn serve_accept<H: Handler>(&mut self, handler: &mut H, index: usize) {
        let Some(listener) = self.listeners.get(index) else {
            return;
        };
        let (tag, limits) = (listener.tag, listener.limits);
        for _ in 0..self.settings.accepts_per_event {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.socket.accept() {
                Ok((stream, peer)) => {
                    if self.open_count >= self.settings.max_connections {
                        // Over the limit: counted, then closed by dropping it.
                        self.bump(Counter::rejected_over_limit, 1);
                        drop(stream);
                        continue;
                    }
                    // Small FIX messages must not wait for Nagle; failure only costs latency.
                    let _ = stream.set_nodelay(true);
                    match self.insert_conn(stream, ConnState::Open, Origin::Accepted, limits) {
                        Some(conn) => {
                            self.bump(Counter::accepted, 1);
                            handler.on_accepted(self, conn, tag, peer);
                            self.deliver_closed(handler);
                        }
                        // Registration failed; the socket was dropped (closed).
                        None => self.bump(Counter::accept_errors, 1),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // For example EMFILE: retried on the next readiness event, not in a spin.
                    self.bump(Counter::accept_errors, 1);
                    return;
                }
            }
        }
        self.accept_again.push(index as u32);
    }

    fn serve_conn_event<H: Handler>(
        &mut self,
        handler: &mut H,
        index: usize,
        readable: bool,
        writable: bool,
    ) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let id = ConnId {
            index: index as u32,
            generation: slot.generation,
        };
        let Some(c) = &slot.conn else { return };
        match c.state {
            ConnState::Connecting { .. } => self.finish_connect(handler, id),
            ConnState::Open => {
                if writable {
                    self.flush(id);
                }
                if readable {
                    self.serve_read(handler, id);
                }
            }
            ConnState::Flushing { .. } => {
                if writable {
                    self.flush(id);
                }
            }
            ConnState::Draining { .. } => {
                if readable {
                    self.drain(id);
                }
            }
        }
    }

    fn finish_connect<H: Handler>(&mut self, handler: &mut H, id: ConnId) {
        let Some(c) = self.conn_ref(id) else { return };
        let Origin::Dialed(dialer) = c.origin else {
            return;
        };
        let outcome = match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e.kind()),
            Ok(None) => match c.stream.peer_addr() {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                Err(e) => Err(e.kind()),
            },
        };
        match outcome {
            Ok(false) => {} // spurious wake-up, still connecting
            Err(kind) => self.connect_failed(handler, dialer, kind),
            Ok(true) => {
                if let Some(c) = self.conn_mut(id) {
                    c.state = ConnState::Open;
                    let _ = c.stream.set_nodelay(true);
                }
                let Some(d) = self.dialer_mut(dialer) else {
                    // The dialer vanished: nobody wants this connection.
                    self.drop_conn(id);
                    return;
                };
                d.state = DialState::Connected(id);
                let tag = d.tag;
                self.bump(Counter::connected, 1);
                handler.on_connected(self, id, dialer, tag);
                self.deliver_closed(handler);
                // Data may have arrived with the handshake; the readiness edge is spent.
                self.serve_read(handler, id);
            }
        }
    }

    /// Reads until WouldBlock, the per-event budget, or the connection ends; hands each read
    /// to the handler.
    fn serve_read<H: Handler>(&mut self, handler: &mut H, id: ConnId) {
        let budget = self.settings.read_bytes_per_event as usize;
        let mut read_total = 0usize;
        loop {
            let Some(c) = self.conn_mut(id) else { return };
            if c.state != ConnState::Open {
                if matches!(c.state, ConnState::Draining { .. }) {
                    self.drain(id);
                }
                return;
            }
            if read_total >= budget {
                self.read_again.push(id);
                return;
            }
            if c.read.is_full() {
                self.end_conn(id, CloseReason::ReadOverflow);
                return;
            }
            let spare = c.read.spare_mut();
            let room = spare.len().min(budget - read_total);
            match c.stream.read(&mut spare[..room]) {
                Ok(0) => {
                    self.end_conn(id, CloseReason::PeerClosed);
                    return;
                }
                Ok(n) => {
                    c.read.filled(n);
                    read_total += n;
                    self.bump(Counter::bytes_in, n as u64);
                    self.deliver_data(handler, id);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.end_conn(id, CloseReason::ReadError(e.kind()));
                    return;
                }
            }
        }
    }

    fn deliver_data<H: Handler>(&mut self, handler: &mut H, id: ConnId) {
        let Some(c) = self.conn_mut(id) else { return };
        let (buf, len) = c.read.take();
        let consumed = handler.on_data(self, id, &buf[..len]);
        // The handler may have closed the connection; if it is gone, so is the buffer.
        if let Some(c) = self.conn_mut(id) {
            c.read.put_back(buf, len, consumed);
        }
    }

    /// Writes queued bytes until the queue is empty or the socket would block. A closing
    /// connection whose queue is empty moves on to draining.
    fn flush(&mut self, id: ConnId) {
        let Some(c) = self.conn_mut(id) else { return };
        let mut written_total = 0u64;
        let mut failure = None;
        while !c.write.is_empty() {
            match c.stream.write(c.write.front()) {
                Ok(0) => {
                    failure = Some(io::ErrorKind::WriteZero);
                    break;
                }
                Ok(n) => {
                    c.write.consume(n);
                    written_total += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e.kind());
                    break;
                }
            }
        }
        let state = c.state;
        let empty = c.write.is_empty();
        self.bump(Counter::bytes_out, written_total);
        if let Some(kind) = failure {
            if state == ConnState::Open {
                self.end_conn(id, CloseReason::WriteError(kind));
            } else {
                self.drop_conn(id);
            }
            return;
        }
        if let ConnState::Flushing { deadline } = state {
            if empty {
                if let Some(c) = self.conn_mut(id) {
                    // Our FIN; then wait for theirs so our last bytes are not lost to a RST.
                    let _ = c.stream.shutdown(Shutdown::Write);
                    c.state = ConnState::Draining { deadline };
                }
                self.drain(id);
            }
        }
    }

    /// Reads and discards from a closing connection until the peer's FIN (then drops it).
    fn drain(&mut self, id: ConnId) {
        let budget = self.settings.read_bytes_per_event as usize;
        let mut read_total = 0usize;
        loop {
            let Some(c) = self.conn_mut(id) else { return };
            if read_total >= budget {
                // Leave the rest to the linger deadline rather than spin on a flooding peer.
                return;
            }
            c.read.clear();
            match c.stream.read(c.read.spare_mut()) {
                Ok(0) => {
                    self.drop_conn(id);
                    return;
                }
                Ok(n) => {
                    read_total += n;
                    self.bump(Counter::bytes_in, n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.drop_conn(id);
                    return;
                }
            }
        }
    }

    /// Calls `on_closed` for every connection that ended, including ones that end meanwhile.
    fn deliver_closed<H: Handler>(&mut self, handler: &mut H) {
        let mut i = 0;
        while i < self.closed.len() {
            let (id, reason) = self.closed[i];
            i += 1;
            handler.on_closed(self, id, reason);
        }
        self.closed.clear();
    }

    /// Shutdown: every connection is dropped; open ones get `on_closed(.., Shutdown)`.
    fn close_all<H: Handler>(&mut self, handler: &mut H) {
        self.deliver_closed(handler);
        for index in 0..self.slots.len() {
            let id = ConnId {
                index: index as u32,
                generation: self.slots[index].generation,
            };
            if let Some(conn) = self.drop_conn(id) {
                if conn.state == ConnState::Open {
                    self.closed.push((id, CloseReason::Shutdown));
                    self.count_close(CloseReason::Shutdown);
                }
            }
        }
        for (index, slot) in self.dialers.iter_mut().enumerate() {
            if slot.dialer.take().is_some() {
                slot.generation = slot.generation.wrapping_add(1);
                self.free_dialers.push(index as u32);
            }
        }
        self.read_again.clear();
        self.accept_again.clear();
        self.internal_deadline = None;
        self.deliver_closed(handler);
    }
}

#[cfg(test)]
mod idle_tests {
    //! The idle strategies' poll timeouts under a controlled clock: spinning phases never
    //! wait, blocking phases wait exactly until the earliest deadline (never past it).

    use super::*;

    struct FixedClock(Nanos);

    impl Clock for FixedClock {
        fn now(&mut self) -> Nanos {
            self.0
        }
    }

    /// A handler that only has a deadline.
    struct DeadlineOnly(Option<Nanos>);

    impl Handler for DeadlineOnly {
        fn on_accepted(&mut self, _: &mut Net, _: ConnId, _: u64, _: SocketAddr) {}
        fn on_connected(&mut self, _: &mut Net, _: ConnId, _: DialerId, _: u64) {}
        fn on_data(&mut self, _: &mut Net, _: ConnId, data: &[u8]) -> usize {
            data.len()
        }
        fn on_closed(&mut self, _: &mut Net, _: ConnId, _: CloseReason) {}
        fn next_deadline(&self) -> Option<Nanos> {
            self.0
        }
    }

    const T0: Nanos = Nanos(1_000_000_000_000);

    fn event_loop(idle: IdleStrategy) -> EventLoop<FixedClock> {
        let settings = NetSettings {
            idle,
            ..NetSettings::default()
        };
        EventLoop::with_clock(settings, FixedClock(T0)).expect("poll")
    }

    #[test]
    fn block_waits_until_the_earliest_deadline() {
        let l = event_loop(IdleStrategy::Block);
        let in_7ms = DeadlineOnly(Some(T0.add_millis(7)));
        assert_eq!(l.poll_timeout(&in_7ms), Some(Duration::from_millis(7)));
        let past = DeadlineOnly(Some(Nanos(T0.0 - 1)));
        assert_eq!(l.poll_timeout(&past), Some(Duration::ZERO));
        assert_eq!(l.poll_timeout(&DeadlineOnly(None)), None);
    }

    #[test]
    fn spin_never_waits() {
        let mut l = event_loop(IdleStrategy::Spin);
        l.idle_cycles = u32::MAX;
        assert_eq!(
            l.poll_timeout(&DeadlineOnly(Some(T0.add_millis(50)))),
            Some(Duration::ZERO)
        );
        assert_eq!(l.poll_timeout(&DeadlineOnly(None)), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_spins_then_yields_then_blocks_until_the_deadline() {
        let mut l = event_loop(IdleStrategy::Backoff);
        let h = DeadlineOnly(Some(T0.add_millis(3)));
        for (cycles, phase, timeout) in [
            (0, IdlePhase::Spin, Some(Duration::ZERO)),
            (
                BACKOFF_SPIN_CYCLES - 1,
                IdlePhase::Spin,
                Some(Duration::ZERO),
            ),
            (BACKOFF_SPIN_CYCLES, IdlePhase::Yield, Some(Duration::ZERO)),
            (
                BACKOFF_YIELD_CYCLES - 1,
                IdlePhase::Yield,
                Some(Duration::ZERO),
            ),
            (
                BACKOFF_YIELD_CYCLES,
                IdlePhase::Block,
                Some(Duration::from_millis(3)),
            ),
            (u32::MAX, IdlePhase::Block, Some(Duration::from_millis(3))),
        ] {
            l.idle_cycles = cycles;
            assert_eq!(idle_phase(IdleStrategy::Backoff, cycles), phase, "{cycles}");
            assert_eq!(l.poll_timeout(&h), timeout, "{cycles}");
        }
        l.idle_cycles = BACKOFF_YIELD_CYCLES;
        assert_eq!(l.poll_timeout(&DeadlineOnly(None)), None);
    }

    #[test]
    fn empty_cycles_count_up_and_reach_the_blocking_phase() {
        // Each cycle under Backoff with a past deadline polls with a zero timeout; the count
        // of empty cycles grows until the loop would block.
        let mut l = event_loop(IdleStrategy::Backoff);
        let mut h = DeadlineOnly(Some(T0));
        for _ in 0..BACKOFF_YIELD_CYCLES {
            l.run_once(&mut h).expect("cycle");
        }
        assert_eq!(l.idle_cycles, BACKOFF_YIELD_CYCLES);
        assert_eq!(
            idle_phase(IdleStrategy::Backoff, l.idle_cycles),
            IdlePhase::Block
        );
        h.0 = Some(T0.add_millis(2));
        assert_eq!(l.poll_timeout(&h), Some(Duration::from_millis(2)));
    }
}
