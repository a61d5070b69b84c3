//! The FIX host: where the network loop, the FIX sessions and the application meet.
//!
//! Owns the binding of TCP connections to configured FIX sessions: listeners shared by
//! several acceptor sessions (the CompIDs of the first Logon pick the session; a Logon for an
//! identity that is already connected is refused, as is an unknown one), initiator dialers
//! with back-off, the limit on connections that have not logged on yet, and the plumbing
//! that carries each session's frames to its connection. It implements `net::Handler`, so it
//! runs on the engine thread and is the only owner of every session. It holds no business
//! state: the `HostApp` decides what application messages mean, and may send on other
//! sessions through the host. It must not read the clock (the loop passes `now`). With a
//! journal attached (`Host::set_journal`) every frame in and out goes through its
//! `journal::tap::JournalTap`, which may hold a session's output until it is durable.

use crate::config::{self, Config, Role as ConfigRole};
use crate::fix::session::{
    self, logon_comp_ids, AppOutcome, Application, Outbox, Reply, Session, SessionEvent,
    SessionState,
};
use crate::fix::store::{MemoryStore, MemoryStoreLimits};
use crate::fix::validate::Validator;
use crate::fix::{Encoder, FrameStatus, Framer, Message};
use crate::journal::store::SessionStore;
use crate::journal::tap::{HoldDecision, JournalTap};
use crate::net::{
    CloseReason, ConnId, DialerId, EventLoop, Handler, LoopHandle, Net, NetSettings, Reconnect,
};
use crate::time::Nanos;
use std::cell::{RefCell, RefMut};
use std::net::SocketAddr;
use std::sync::Arc;

/// The application behind all sessions of a host. `session` is the index of the session in
/// the host's configuration. Messages for the session being served go through `reply`; for
/// any other session, through `peers`.
pub trait HostApp {
    /// An in-order, validated application message from `session`.
    fn on_message(
        &mut self,
        now: Nanos,
        session: usize,
        msg: &Message<'_>,
        reply: &mut Reply<'_>,
        peers: &mut Peers<'_>,
    ) -> AppOutcome;
    /// `session` logged on.
    fn on_session_up(&mut self, _now: Nanos, _session: usize, _peers: &mut Peers<'_>) {}
    /// `session` lost its connection or logged out.
    fn on_session_down(&mut self, _now: Nanos, _session: usize, _peers: &mut Peers<'_>) {}
    /// Called every loop cycle.
    fn on_tick(&mut self, _now: Nanos, _peers: &mut Peers<'_>) {}
    /// When `on_tick` next has something to do.
    fn next_deadline(&self) -> Option<Nanos> {
        None
    }
    /// Another thread woke the loop (see [`crate::inbox`]): drain what it sent.
    fn on_wake(&mut self, _now: Nanos, _peers: &mut Peers<'_>) {}
    /// Bytes from `session`'s connection are about to be decoded (the router stamps its stage
    /// latencies from here; see `crate::metrics`).
    fn on_input(&mut self, _session: usize) {}
}

/// One `Application` per session, each seeing only its own session's messages (the echo
/// application of the conformance runs, for instance).
pub struct PerSession<A>(pub Vec<A>);

impl<A: Application> HostApp for PerSession<A> {
    fn on_message(
        &mut self,
        _now: Nanos,
        session: usize,
        msg: &Message<'_>,
        reply: &mut Reply<'_>,
        _peers: &mut Peers<'_>,
    ) -> AppOutcome {
        self.0[session].on_message(msg, reply)
    }
}

/// A session as the host runs it: its network settings and its FIX settings.
#[derive(Debug, Clone)]
pub struct HostSessionConfig {
    pub net: config::SessionConfig,
    pub fix: session::SessionConfig,
    /// Messages kept for resend.
    pub store_max_messages: usize,
}

impl HostSessionConfig {
    /// FIX settings derived from a `[[session]]` entry of `config/router.toml`.
    pub fn from_config(c: &config::SessionConfig) -> HostSessionConfig {
        let mut fix = match c.role {
            ConfigRole::Acceptor => {
                session::SessionConfig::acceptor(&c.sender_comp_id, &c.target_comp_id)
            }
            ConfigRole::Initiator => session::SessionConfig::initiator(
                &c.sender_comp_id,
                &c.target_comp_id,
                c.heart_bt_int_s,
            ),
        };
        fix.heart_bt_int_s = c.heart_bt_int_s;
        fix.reset_on_logon = c.reset_on_logon;
        fix.logon_timeout_ms = c.logon_timeout_ms;
        fix.logout_timeout_ms = c.logout_timeout_ms;
        fix.max_sending_time_skew_ms = u64::from(c.max_latency_s) * 1000;
        fix.max_message_bytes = c.limits.max_message_bytes as usize;
        HostSessionConfig {
            net: c.clone(),
            fix,
            store_max_messages: 100_000,
        }
    }
}

/// Counters of the host's own decisions (the sessions and the loop keep theirs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCounters {
    /// Accepted connections closed at once: too many waiting for a Logon.
    pub rejected_pending_limit: u64,
    /// First message was not a readable Logon.
    pub rejected_not_logon: u64,
    /// No readable Logon within the logon timeout of being accepted.
    pub rejected_logon_timeout: u64,
    /// Logon for CompIDs no acceptor session has.
    pub rejected_unknown_identity: u64,
    /// Logon for a session that already has a connection.
    pub rejected_duplicate_identity: u64,
    /// A frame the net layer would not queue (the connection is then dropped as slow).
    pub send_failures: u64,
    /// Application messages for a session that was not logged on, or that did not fit.
    pub app_send_failures: u64,
}

struct HostSession {
    cfg: HostSessionConfig,
    session: Session<SessionStore>,
    conn: Option<ConnId>,
    dialer: Option<DialerId>,
    up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Free,
    /// Accepted on a listener at the given time; waiting for the Logon that says which
    /// session it is.
    Pending(ConnId, Nanos),
    Bound(ConnId, usize),
}

/// What one session produced during one call: its frames (written to its connection in one
/// go afterwards) and the events to act on. Bounded: past `limit` bytes the connection is
/// treated like a peer that stopped reading.
struct Staged {
    frames: Vec<u8>,
    limit: usize,
    overflow: bool,
    disconnect: bool,
    logged_on: bool,
}

impl Staged {
    fn new(limit: usize) -> Staged {
        Staged {
            frames: Vec::with_capacity(limit.min(1 << 20)),
            limit,
            overflow: false,
            disconnect: false,
            logged_on: false,
        }
    }

    fn reset(&mut self) {
        self.frames.clear();
        self.overflow = false;
        self.disconnect = false;
        self.logged_on = false;
    }
}

impl Outbox for Staged {
    fn send_frame(&mut self, frame: &[u8]) {
        if self.frames.len() + frame.len() > self.limit {
            self.overflow = true;
            return;
        }
        self.frames.extend_from_slice(frame);
    }
    fn event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::LoggedOn { .. } => self.logged_on = true,
            SessionEvent::Disconnect { .. } => self.disconnect = true,
        }
    }
}

/// The journal (if any) as the host's outboxes see it: each frame in and out is journaled
/// with the loop's `now`; an outbound one may be held until durable.
#[derive(Clone, Copy)]
struct Tap<'a> {
    journal: Option<&'a RefCell<JournalTap>>,
    session: usize,
    now: Nanos,
}

impl Tap<'_> {
    fn received(&self, frame: &[u8]) {
        if let Some(j) = self.journal {
            j.borrow_mut().fix_in(self.now, self.session, frame);
        }
    }

    /// Journals an outbound frame; says whether to write it now.
    fn sent(&self, frame: &[u8]) -> HoldDecision {
        match self.journal {
            Some(j) => {
                let mut j = j.borrow_mut();
                let seq = j.fix_out(self.now, self.session, frame);
                j.hold_outbound(self.now, self.session, seq, frame)
            }
            None => HoldDecision::Pass,
        }
    }
}

/// The served session's `Staged`, journaled.
struct StagedOut<'a> {
    staged: &'a mut Staged,
    tap: Tap<'a>,
}

impl Outbox for StagedOut<'_> {
    fn send_frame(&mut self, frame: &[u8]) {
        match self.tap.sent(frame) {
            HoldDecision::Pass => self.staged.send_frame(frame),
            HoldDecision::Held => {}
            HoldDecision::Overflow => self.staged.overflow = true,
        }
    }
    fn event(&mut self, event: SessionEvent) {
        self.staged.event(event)
    }
    fn received_frame(&mut self, frame: &[u8]) {
        self.tap.received(frame)
    }
}

/// A session's output written straight to the network (sends to peers).
struct Direct<'a> {
    net: &'a mut Net,
    conn: ConnId,
    failed: bool,
    disconnect: bool,
    tap: Tap<'a>,
}

impl Outbox for Direct<'_> {
    fn send_frame(&mut self, frame: &[u8]) {
        match self.tap.sent(frame) {
            HoldDecision::Pass => {
                if self.net.send(self.conn, frame).is_err() {
                    self.failed = true;
                }
            }
            HoldDecision::Held => {}
            HoldDecision::Overflow => {
                self.failed = true;
                self.disconnect = true;
            }
        }
    }
    fn event(&mut self, event: SessionEvent) {
        if let SessionEvent::Disconnect { .. } = event {
            self.disconnect = true;
        }
    }
}

/// Why an application message for another session was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSendError {
    /// No such session, or it is the session being served (use `Reply`).
    NotAPeer,
    /// The session has no logged-on connection.
    NotLoggedOn,
    /// The session refused it (too large, store failure).
    Refused(session::SendError),
}

/// The sessions other than the one being served, for an application to send on.
pub struct Peers<'a> {
    before: &'a mut [HostSession],
    after: &'a mut [HostSession],
    /// Index of the session being served (`before.len()`), or `usize::MAX` when none is.
    current: usize,
    net: &'a mut Net,
    now: Nanos,
    counters: &'a mut HostCounters,
    /// Connections to close once the callback returns (a peer's session asked for it).
    to_close: &'a mut Vec<(ConnId, usize)>,
    journal: Option<&'a RefCell<JournalTap>>,
}

impl Peers<'_> {
    /// The journal, when one is attached: the application journals its inputs and records
    /// here. Do not hold it across `send` (which journals too).
    pub fn journal(&self) -> Option<RefMut<'_, JournalTap>> {
        self.journal.map(RefCell::borrow_mut)
    }

    /// Sends an application message whose body fields are already encoded on `session`.
    pub fn send(
        &mut self,
        session: usize,
        msg_type: &[u8],
        body: &[u8],
    ) -> Result<u64, PeerSendError> {
        let s = if session < self.before.len() {
            &mut self.before[session]
        } else if session > self.current && session != usize::MAX {
            let k = session - self.current - 1;
            self.after.get_mut(k).ok_or(PeerSendError::NotAPeer)?
        } else if self.current == usize::MAX {
            let k = session - self.before.len();
            self.after.get_mut(k).ok_or(PeerSendError::NotAPeer)?
        } else {
            return Err(PeerSendError::NotAPeer);
        };
        let Some(conn) = s.conn else {
            self.counters.app_send_failures += 1;
            return Err(PeerSendError::NotLoggedOn);
        };
        let mut out = Direct {
            net: self.net,
            conn,
            failed: false,
            disconnect: false,
            tap: Tap {
                journal: self.journal,
                session,
                now: self.now,
            },
        };
        let sent = s.session.send_app(
            self.now,
            msg_type,
            |e: &mut Encoder| {
                e.raw(body);
            },
            &mut out,
        );
        if out.failed {
            self.counters.send_failures += 1;
        }
        if out.disconnect && self.to_close.len() < self.to_close.capacity() {
            self.to_close.push((conn, session));
        }
        sent.map_err(|e| {
            self.counters.app_send_failures += 1;
            match e {
                session::SendError::NotLoggedOn => PeerSendError::NotLoggedOn,
                other => PeerSendError::Refused(other),
            }
        })
    }
}

impl Peers<'_> {
    /// The host's counters as they are now.
    pub fn host_counters(&self) -> HostCounters {
        *self.counters
    }

    /// Bytes waiting in the write queue of `session`'s connection (0 when it has none or is
    /// the session being served).
    pub fn queued_bytes(&self, session: usize) -> usize {
        let s = if session < self.before.len() {
            self.before.get(session)
        } else if self.current == usize::MAX {
            self.after.get(session - self.before.len())
        } else if session > self.current {
            self.after.get(session - self.current - 1)
        } else {
            None
        };
        s.and_then(|s| s.conn)
            .map_or(0, |conn| self.net.queued_bytes(conn))
    }
}

/// Adapts the host's application to one session's `Application` callback.
struct SessionApp<'a, 'p, A: HostApp> {
    app: &'a mut A,
    session: usize,
    now: Nanos,
    peers: &'a mut Peers<'p>,
}

impl<A: HostApp> Application for SessionApp<'_, '_, A> {
    fn on_message(&mut self, msg: &Message<'_>, reply: &mut Reply<'_>) -> AppOutcome {
        self.app
            .on_message(self.now, self.session, msg, reply, self.peers)
    }
}

/// The host. Build it with [`Host::new`], register its listeners and dialers with
/// [`Host::start`], then run the loop with it as the handler.
pub struct Host<A: HostApp> {
    sessions: Vec<HostSession>,
    conns: Vec<ConnState>,
    pending: usize,
    max_pending_logon: usize,
    /// A connection that has not sent a readable Logon this long after being accepted is
    /// closed (the shortest `logon_timeout_ms` of the acceptor sessions).
    pending_logon_timeout_ms: u64,
    /// When the oldest pending connection times out, if any is pending.
    next_pending_expiry: Option<Nanos>,
    framer: Framer,
    app: A,
    counters: HostCounters,
    staged: Staged,
    to_close: Vec<(ConnId, usize)>,
    journal: Option<RefCell<JournalTap>>,
}

impl<A: HostApp> Host<A> {
    /// Journals every frame in and out from now on (and hands the tap to the application
    /// through `Peers::journal`).
    pub fn set_journal(&mut self, tap: JournalTap) {
        self.journal = Some(RefCell::new(tap));
    }

    /// The journal tap, if one is attached.
    pub fn journal(&self) -> Option<std::cell::Ref<'_, JournalTap>> {
        self.journal.as_ref().map(RefCell::borrow)
    }

    /// Detaches the journal tap (to close the journal).
    pub fn take_journal(&mut self) -> Option<JournalTap> {
        self.journal.take().map(RefCell::into_inner)
    }

    pub fn new(
        sessions: Vec<HostSessionConfig>,
        max_pending_logon: usize,
        validator: Arc<Validator>,
        app: A,
        now: Nanos,
    ) -> Host<A> {
        let max_message = sessions
            .iter()
            .map(|s| s.fix.max_message_bytes)
            .max()
            .unwrap_or(65_536);
        let max_queue = sessions
            .iter()
            .map(|s| s.net.limits.write_queue_bytes as usize)
            .max()
            .unwrap_or(1 << 20);
        let n = sessions.len();
        let pending_logon_timeout_ms = sessions
            .iter()
            .filter(|s| s.net.role == ConfigRole::Acceptor)
            .map(|s| s.fix.logon_timeout_ms)
            .min()
            .unwrap_or(10_000);
        let sessions = sessions
            .into_iter()
            .map(|cfg| {
                let store = MemoryStore::new(
                    MemoryStoreLimits {
                        max_messages: cfg.store_max_messages,
                        max_message_bytes: cfg.fix.max_message_bytes,
                    },
                    now,
                );
                HostSession {
                    session: Session::new(
                        cfg.fix.clone(),
                        SessionStore::Memory(store),
                        validator.clone(),
                    ),
                    cfg,
                    conn: None,
                    dialer: None,
                    up: false,
                }
            })
            .collect();
        Host {
            sessions,
            conns: Vec::new(),
            pending: 0,
            max_pending_logon,
            pending_logon_timeout_ms,
            next_pending_expiry: None,
            framer: Framer::new(max_message),
            app,
            counters: HostCounters::default(),
            staged: Staged::new(max_queue),
            to_close: Vec::with_capacity(n.max(1)),
            journal: None,
        }
    }

    pub fn counters(&self) -> HostCounters {
        self.counters
    }

    pub fn app(&self) -> &A {
        &self.app
    }

    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Replaces session `i`'s message store (before the loop runs: a journal-backed store
    /// resumes the sequence numbers a restart must keep).
    pub fn set_store(&mut self, i: usize, store: SessionStore) {
        *self.sessions[i].session.store_mut() = store;
    }

    /// Session `i`'s message store.
    pub fn store(&self, i: usize) -> &SessionStore {
        self.sessions[i].session.store()
    }

    /// Whether session `i` is logged on.
    pub fn is_logged_on(&self, i: usize) -> bool {
        self.sessions[i].session.state() == SessionState::Active
    }

    /// Opens a listener per distinct acceptor address and a dialer per initiator. Returns the
    /// bound listener addresses, one per acceptor session (in session order; `None` for
    /// initiators), so that a configured port 0 can be learnt.
    pub fn start(
        &mut self,
        net: &mut Net,
    ) -> Result<Vec<Option<SocketAddr>>, crate::net::NetError> {
        let mut bound: Vec<(SocketAddr, SocketAddr)> = Vec::new();
        let mut out = Vec::with_capacity(self.sessions.len());
        for (i, s) in self.sessions.iter_mut().enumerate() {
            let c = &s.cfg.net;
            match c.role {
                ConfigRole::Acceptor => {
                    let local = match bound.iter().find(|(cfg, _)| *cfg == c.addr) {
                        Some((_, local)) => *local,
                        None => {
                            let (_, local) = net.listen(c.addr, i as u64, c.limits)?;
                            bound.push((c.addr, local));
                            local
                        }
                    };
                    out.push(Some(local));
                }
                ConfigRole::Initiator => {
                    let reconnect = Reconnect::Backoff {
                        initial_ms: c.reconnect_interval_ms,
                        max_ms: c.reconnect_max_ms,
                    };
                    s.dialer = Some(net.connect(c.addr, i as u64, c.limits, reconnect)?);
                    out.push(None);
                }
            }
        }
        Ok(out)
    }

    fn conn_state(&self, conn: ConnId) -> ConnState {
        match self.conns.get(conn.index()) {
            Some(&ConnState::Pending(c, at)) if c == conn => ConnState::Pending(c, at),
            Some(&ConnState::Bound(c, s)) if c == conn => ConnState::Bound(c, s),
            _ => ConnState::Free,
        }
    }

    fn set_conn(&mut self, conn: ConnId, state: ConnState) {
        if self.conns.len() <= conn.index() {
            self.conns.resize(conn.index() + 1, ConnState::Free);
        }
        self.conns[conn.index()] = state;
    }

    /// Runs `f` with session `i` and the others as `Peers` (`i == usize::MAX`: all are peers),
    /// then writes what session `i` staged and closes what must be closed.
    fn with_session<R>(
        &mut self,
        net: &mut Net,
        i: usize,
        f: impl FnOnce(Option<&mut HostSession>, &mut A, &mut StagedOut<'_>, &mut Peers<'_>) -> R,
    ) -> R {
        let now = net.now();
        self.staged.reset();
        let split = if i == usize::MAX { 0 } else { i };
        let (before, rest) = self.sessions.split_at_mut(split);
        let (cur, after) = if i == usize::MAX {
            (None, rest)
        } else {
            let (c, a) = rest.split_first_mut().expect("session index in range");
            (Some(c), a)
        };
        let cur_conn = cur.as_ref().and_then(|c| c.conn);
        let mut peers = Peers {
            before,
            after,
            current: i,
            net,
            now,
            counters: &mut self.counters,
            to_close: &mut self.to_close,
            journal: self.journal.as_ref(),
        };
        let mut staged = StagedOut {
            staged: &mut self.staged,
            tap: Tap {
                journal: self.journal.as_ref(),
                session: i,
                now,
            },
        };
        let r = f(cur, &mut self.app, &mut staged, &mut peers);
        // Write what the served session produced, then act on its events.
        if let (Some(conn), false) = (cur_conn, self.staged.frames.is_empty()) {
            if net.send(conn, &self.staged.frames).is_err() {
                self.counters.send_failures += 1;
            }
        }
        if i != usize::MAX {
            if let Some(conn) = cur_conn {
                if self.staged.overflow {
                    self.counters.send_failures += 1;
                    net.abort(conn);
                    self.unbind(net, conn, i);
                } else {
                    let (logged_on, disconnect) = (self.staged.logged_on, self.staged.disconnect);
                    if logged_on && !self.sessions[i].up {
                        self.sessions[i].up = true;
                        if let Some(d) = self.sessions[i].dialer {
                            net.reset_backoff(d);
                        }
                        self.session_up(net, i);
                    }
                    if disconnect {
                        net.close(conn);
                        self.unbind(net, conn, i);
                    }
                }
            }
        }
        // Nested calls (session up/down) may add to or drain this list: pop until empty.
        while let Some((conn, j)) = self.to_close.pop() {
            net.close(conn);
            self.unbind(net, conn, j);
        }
        r
    }

    fn session_up(&mut self, net: &mut Net, i: usize) {
        self.with_session(net, usize::MAX, |_, app, _, peers| {
            let now = peers.now;
            app.on_session_up(now, i, peers)
        });
    }

    fn bind(&mut self, net: &mut Net, conn: ConnId, i: usize) {
        self.set_conn(conn, ConnState::Bound(conn, i));
        self.sessions[i].conn = Some(conn);
        self.with_session(net, i, |cur, _, staged, peers| {
            let s = cur.expect("bound session");
            s.session.on_connected(peers.now, staged);
        });
    }

    fn unbind(&mut self, net: &mut Net, conn: ConnId, i: usize) {
        self.set_conn(conn, ConnState::Free);
        let now = net.now();
        let s = &mut self.sessions[i];
        if s.conn == Some(conn) {
            s.conn = None;
            if let Some(j) = &self.journal {
                j.borrow_mut().drop_hold(i);
            }
            s.session.on_disconnected(now);
            if s.up {
                s.up = false;
                self.with_session(net, usize::MAX, |_, app, _, peers| {
                    app.on_session_down(now, i, peers)
                });
            }
        }
    }

    /// Closes connections that sent no readable Logon in time. Runs only when the earliest
    /// deadline has passed, so its scan of the connection table is paid once per timeout.
    fn expire_pending(&mut self, net: &mut Net, now: Nanos) {
        let mut next: Option<Nanos> = None;
        for i in 0..self.conns.len() {
            let ConnState::Pending(conn, since) = self.conns[i] else {
                continue;
            };
            let deadline = since.add_millis(self.pending_logon_timeout_ms);
            if deadline <= now {
                self.counters.rejected_logon_timeout += 1;
                self.pending -= 1;
                self.conns[i] = ConnState::Free;
                net.close(conn);
            } else {
                next = Some(next.map_or(deadline, |d| d.min(deadline)));
            }
        }
        self.next_pending_expiry = next;
    }

    fn session_for_logon(&self, sender: &[u8], target: &[u8]) -> Option<usize> {
        self.sessions.iter().position(|s| {
            s.cfg.net.role == ConfigRole::Acceptor
                && s.cfg.net.target_comp_id.as_bytes() == sender
                && s.cfg.net.sender_comp_id.as_bytes() == target
        })
    }
}

impl<A: HostApp> Handler for Host<A> {
    fn on_accepted(&mut self, net: &mut Net, conn: ConnId, _listener_tag: u64, _peer: SocketAddr) {
        if self.pending >= self.max_pending_logon {
            self.counters.rejected_pending_limit += 1;
            net.close(conn);
            return;
        }
        self.pending += 1;
        let now = net.now();
        self.set_conn(conn, ConnState::Pending(conn, now));
        let deadline = now.add_millis(self.pending_logon_timeout_ms);
        self.next_pending_expiry = Some(
            self.next_pending_expiry
                .map_or(deadline, |d| d.min(deadline)),
        );
    }

    fn on_connected(&mut self, net: &mut Net, conn: ConnId, _dialer: DialerId, tag: u64) {
        let i = tag as usize;
        if i >= self.sessions.len() || self.sessions[i].conn.is_some() {
            net.close(conn);
            return;
        }
        self.bind(net, conn, i);
    }

    fn on_data(&mut self, net: &mut Net, conn: ConnId, data: &[u8]) -> usize {
        match self.conn_state(conn) {
            ConnState::Free => data.len(),
            ConnState::Pending(..) => {
                let Some((sender, target)) = logon_comp_ids(&self.framer, data) else {
                    if self.framer.next_frame(data) == FrameStatus::Incomplete {
                        return 0;
                    }
                    self.counters.rejected_not_logon += 1;
                    self.pending -= 1;
                    self.set_conn(conn, ConnState::Free);
                    net.close(conn);
                    return data.len();
                };
                self.pending -= 1;
                let Some(i) = self.session_for_logon(sender, target) else {
                    self.counters.rejected_unknown_identity += 1;
                    self.set_conn(conn, ConnState::Free);
                    net.close(conn);
                    return data.len();
                };
                if self.sessions[i].conn.is_some() {
                    self.counters.rejected_duplicate_identity += 1;
                    self.set_conn(conn, ConnState::Free);
                    net.close(conn);
                    return data.len();
                }
                self.bind(net, conn, i);
                if self.conn_state(conn) == ConnState::Free {
                    return data.len();
                }
                self.on_data(net, conn, data)
            }
            ConnState::Bound(_, i) => {
                self.app.on_input(i);
                let consumed = self.with_session(net, i, |cur, app, staged, peers| {
                    let s = cur.expect("bound session");
                    let now = peers.now;
                    let mut session_app = SessionApp {
                        app,
                        session: i,
                        now,
                        peers,
                    };
                    s.session.on_input(now, data, &mut session_app, staged)
                });
                if self.conn_state(conn) == ConnState::Free {
                    data.len()
                } else {
                    consumed
                }
            }
        }
    }

    fn on_closed(&mut self, net: &mut Net, conn: ConnId, _reason: CloseReason) {
        match self.conn_state(conn) {
            ConnState::Free => {}
            ConnState::Pending(..) => {
                self.pending -= 1;
                self.set_conn(conn, ConnState::Free);
            }
            ConnState::Bound(_, i) => self.unbind(net, conn, i),
        }
    }

    fn on_tick(&mut self, net: &mut Net, now: Nanos) {
        if let Some(j) = &self.journal {
            let sessions = &self.sessions;
            let counters = &mut self.counters;
            j.borrow_mut().release(now, |i, bytes| {
                if let Some(conn) = sessions[i].conn {
                    if net.send(conn, bytes).is_err() {
                        counters.send_failures += 1;
                    }
                }
            });
        }
        if self.next_pending_expiry.is_some_and(|d| d <= now) {
            self.expire_pending(net, now);
        }
        if self.app.next_deadline().is_some_and(|d| d <= now) {
            self.with_session(net, usize::MAX, |_, app, _, peers| app.on_tick(now, peers));
        }
        for i in 0..self.sessions.len() {
            let s = &self.sessions[i];
            if s.conn.is_none() || s.session.next_deadline().is_none_or(|d| d > now) {
                continue;
            }
            self.with_session(net, i, |cur, _, staged, _| {
                cur.expect("session").session.on_timer(now, staged)
            });
        }
    }

    fn on_wake(&mut self, net: &mut Net) {
        let now = net.now();
        self.with_session(net, usize::MAX, |_, app, _, peers| app.on_wake(now, peers));
    }

    fn next_deadline(&self) -> Option<Nanos> {
        let sessions = self
            .sessions
            .iter()
            .filter(|s| s.conn.is_some())
            .filter_map(|s| s.session.next_deadline());
        let held = self
            .journal
            .as_ref()
            .and_then(|j| j.borrow().next_deadline());
        sessions
            .chain(self.app.next_deadline())
            .chain(self.next_pending_expiry)
            .chain(held)
            .min()
    }
}

/// A host running on its own thread (tests, tools, the demo).
pub struct RunningHost {
    /// Per session: the local address of its listener (acceptors), `None` for initiators.
    pub listen_addrs: Vec<Option<SocketAddr>>,
    pub handle: LoopHandle,
    /// How the thread was pinned (or why not).
    pub pinning: crate::pinning::Pinning,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RunningHost {
    /// Stops the loop and waits for its thread.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        self.handle.stop();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("host thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// How [`spawn_with`] starts the host's thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnOptions {
    /// The thread's name (as `ps -L`, `top -H` and debuggers show it).
    pub name: String,
    /// The CPU to pin the thread to (`None`: unpinned). An unusable CPU is not an error: the
    /// thread runs unpinned and [`RunningHost::pinning`] says why.
    pub cpu: Option<usize>,
}

impl SpawnOptions {
    /// An unpinned thread named `name`.
    pub fn named(name: &str) -> SpawnOptions {
        SpawnOptions {
            name: name.to_string(),
            cpu: None,
        }
    }
}

/// Starts `sessions` with `app` on a new thread named `name`, unpinned. Listener addresses
/// are bound before this returns, so clients may connect at once.
pub fn spawn<A: HostApp + Send + 'static>(
    name: &str,
    settings: NetSettings,
    sessions: Vec<HostSessionConfig>,
    max_pending_logon: usize,
    validator: Arc<Validator>,
    app: A,
) -> std::io::Result<RunningHost> {
    spawn_with(
        SpawnOptions::named(name),
        settings,
        sessions,
        max_pending_logon,
        validator,
        app,
    )
}

/// As [`spawn`], with the thread's name and CPU from `options`. The thread pins itself
/// before its first cycle; this returns once it has, with the outcome in
/// [`RunningHost::pinning`] (the library prints nothing: the caller reports it).
pub fn spawn_with<A: HostApp + Send + 'static>(
    options: SpawnOptions,
    settings: NetSettings,
    sessions: Vec<HostSessionConfig>,
    max_pending_logon: usize,
    validator: Arc<Validator>,
    app: A,
) -> std::io::Result<RunningHost> {
    spawn_journaled(
        options,
        settings,
        sessions,
        max_pending_logon,
        validator,
        app,
        None,
    )
}

/// As [`spawn_with`], journaling through `journal` when given. The journal is closed (drained
/// and synced) when the host's thread ends, so a stopped host has written everything.
pub fn spawn_journaled<A: HostApp + Send + 'static>(
    options: SpawnOptions,
    settings: NetSettings,
    sessions: Vec<HostSessionConfig>,
    max_pending_logon: usize,
    validator: Arc<Validator>,
    app: A,
    journal: Option<JournalTap>,
) -> std::io::Result<RunningHost> {
    spawn_prepared(
        options,
        settings,
        sessions,
        max_pending_logon,
        validator,
        app,
        journal,
        |_| {},
    )
}

/// As [`spawn_journaled`], with `prepare` run on the host before its listeners open (a
/// restart gives the sessions their journal-backed stores there).
#[allow(clippy::too_many_arguments)]
pub fn spawn_prepared<A: HostApp + Send + 'static>(
    options: SpawnOptions,
    settings: NetSettings,
    sessions: Vec<HostSessionConfig>,
    max_pending_logon: usize,
    validator: Arc<Validator>,
    app: A,
    journal: Option<JournalTap>,
    prepare: impl FnOnce(&mut Host<A>),
) -> std::io::Result<RunningHost> {
    let mut event_loop = EventLoop::new(settings)?;
    let now = event_loop.net().now();
    let mut host = Host::new(sessions, max_pending_logon, validator, app, now);
    prepare(&mut host);
    if let Some(tap) = journal {
        // Held ExecutionReports go out on the loop cycle after their record is durable.
        let wake = event_loop.handle();
        tap.journal().set_durable_waker(Box::new(move || {
            let _ = wake.wake();
        }));
        host.set_journal(tap);
    }
    let listen_addrs = host
        .start(event_loop.net())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let handle = event_loop.handle();
    let (pinned_tx, pinned_rx) = std::sync::mpsc::sync_channel(1);
    let cpu = options.cpu;
    let thread = std::thread::Builder::new()
        .name(options.name)
        .spawn(move || {
            // The receiver waits for this; if it is gone the caller gave up, which is fine.
            let _ = pinned_tx.send(crate::pinning::pin_current_thread(cpu));
            let ran = event_loop.run(&mut host);
            let closed = match host.take_journal() {
                Some(tap) => tap
                    .into_journal()
                    .close()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string())),
                None => Ok(()),
            };
            ran.and(closed)
        })?;
    let pinning = match pinned_rx.recv() {
        Ok(p) => p,
        // The thread ended before reporting: join it to surface why.
        Err(_) => {
            let ended = thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("host thread panicked")));
            return Err(ended
                .err()
                .unwrap_or_else(|| std::io::Error::other("host thread ended at start")));
        }
    };
    Ok(RunningHost {
        listen_addrs,
        handle,
        pinning,
        thread: Some(thread),
    })
}

/// The host settings of a whole `config/router.toml`.
pub fn sessions_from_config(config: &Config) -> Vec<HostSessionConfig> {
    config
        .sessions
        .iter()
        .map(HostSessionConfig::from_config)
        .collect()
}
