//! The router's message path in one thread without sockets: FIX sessions around the RFQ
//! engine, fed with bytes and producing bytes.
//!
//! Owns a desk session (index 0) and dealer sessions (1..), all logged on at construction,
//! the engine behind them, and per-session "wires" collecting the frames the router writes to
//! each peer. It is the same code the network host runs (framing, tokenising, validation,
//! session rules, engine, encoding), minus the socket: benchmarks measure the in-process
//! budget with it, tests prove the path allocates nothing in steady state, and the simulator
//! can drive it. It never reads the clock: the caller sets `now`. With a journal attached
//! (`attach_journal`) it journals as the host does: each frame in and out, each engine input
//! and record, through a `journal::tap::JournalTap`; score updates and rules reloads come in
//! through `feedback`, journaled as the router journals them.

use crate::fix::session::{
    AppOutcome, Application, Outbox as SessionOutbox, Reply, Session, SessionConfig, SessionEvent,
};
use crate::fix::store::{MemoryStore, MemoryStoreLimits};
use crate::fix::validate::Validator;
use crate::fix::{Encoder, Message};
use crate::journal::records::EngineInput;
use crate::journal::tap::{JournalTap, UNSENT_REFUSED};
use crate::rfq::engine::{DealerConfig, Engine, EngineConfig, EngineLimits, Event, Outcome};
use crate::rfq::outbox::{Command, Outbox};
use crate::rfq::types::{FixId, SessionId};
use crate::select::feedback::{ScoreUpdate, ToEngine};
use crate::select::rows::ScoreRow;
use crate::select::{Panel, Protocol, StaticTiers};
use crate::time::Nanos;
use std::cell::RefCell;
use std::sync::Arc;

/// Frames written to one peer, appended (and journaled, with a journal attached).
struct Wire<'a>(&'a mut Vec<u8>, Tap<'a>);

/// The journal as a wire sees it: which session, and the `now` of the step.
#[derive(Clone, Copy)]
struct Tap<'a> {
    journal: Option<&'a RefCell<JournalTap>>,
    session: usize,
    now: Nanos,
}

impl SessionOutbox for Wire<'_> {
    fn send_frame(&mut self, frame: &[u8]) {
        if let Some(j) = self.1.journal {
            j.borrow_mut().fix_out(self.1.now, self.1.session, frame);
        }
        self.0.extend_from_slice(frame);
    }
    fn event(&mut self, _event: SessionEvent) {}
    fn received_frame(&mut self, frame: &[u8]) {
        if let Some(j) = self.1.journal {
            j.borrow_mut().fix_in(self.1.now, self.1.session, frame);
        }
    }
}

/// Builds the frames a peer sends: its own sequence numbers and CompIDs.
struct PeerWriter {
    sender: String,
    next_seq: u64,
}

/// The engine as the application of session `current`, able to send on the others.
struct PipeApp<'a, P: Panel> {
    engine: &'a mut Engine<P>,
    out: &'a mut Outbox,
    current: usize,
    now: Nanos,
    before: &'a mut [Session<MemoryStore>],
    after: &'a mut [Session<MemoryStore>],
    wires_before: &'a mut [Vec<u8>],
    wires_after: &'a mut [Vec<u8>],
    send_failures: &'a mut u64,
    journal: Option<&'a RefCell<JournalTap>>,
}

impl<P: Panel> Application for PipeApp<'_, P> {
    fn on_message(&mut self, msg: &Message<'_>, reply: &mut Reply<'_>) -> AppOutcome {
        if let Some(j) = self.journal {
            j.borrow_mut()
                .input_fix(self.now, self.current, msg.frame());
        }
        let ev = Event::Fix {
            session: SessionId(self.current as u16),
            msg,
        };
        let outcome = self.engine.on(self.now, ev, self.out);
        for cmd in self.out.commands() {
            // Commands other than these two (added by other issues) are not the pipeline's.
            if let Command::Journal(record) = cmd {
                if let Some(j) = self.journal {
                    j.borrow_mut().engine_record(self.now, record);
                }
            }
            let Command::Send {
                session,
                msg_type,
                body,
            } = cmd
            else {
                continue;
            };
            let target = usize::from(session.0);
            let body = self.out.body(body);
            let fill = |e: &mut Encoder| {
                e.raw(body);
            };
            let tap = Tap {
                journal: self.journal,
                session: target,
                now: self.now,
            };
            let sent = if target == self.current {
                reply.send(msg_type, &mut { fill }).is_ok()
            } else if target < self.current {
                let wire = &mut Wire(&mut self.wires_before[target], tap);
                self.before[target]
                    .send_app(self.now, msg_type, fill, wire)
                    .is_ok()
            } else {
                let k = target - self.current - 1;
                let wire = &mut Wire(&mut self.wires_after[k], tap);
                self.after[k]
                    .send_app(self.now, msg_type, fill, wire)
                    .is_ok()
            };
            if !sent {
                *self.send_failures += 1;
                if let Some(j) = self.journal {
                    j.borrow_mut()
                        .unsent(self.now, target, UNSENT_REFUSED, msg_type);
                }
            }
        }
        if outcome == Outcome::Unsupported {
            return AppOutcome::UnsupportedMsgType;
        }
        AppOutcome::Accepted
    }
}

struct Accept;

impl Application for Accept {
    fn on_message(&mut self, _msg: &Message<'_>, _reply: &mut Reply<'_>) -> AppOutcome {
        AppOutcome::Accepted
    }
}

/// Desk + dealers + engine, in memory.
pub struct Pipeline<P: Panel> {
    sessions: Vec<Session<MemoryStore>>,
    wires: Vec<Vec<u8>>,
    peers: Vec<PeerWriter>,
    engine: Engine<P>,
    out: Outbox,
    encoder: Encoder,
    frame: Vec<u8>,
    now: Nanos,
    send_failures: u64,
    journal: Option<RefCell<JournalTap>>,
}

/// The desk's session index.
pub const DESK: usize = 0;

/// The engine configuration of a pipeline with `dealers` dealers (for `journal::replay`,
/// which rebuilds the same engine).
pub fn engine_config(dealers: usize, limits: EngineLimits) -> EngineConfig {
    let dealers = (1..=dealers)
        .map(|i| {
            let peer = format!("D{i}");
            let party_id = FixId::new(peer.as_bytes()).expect("short id");
            DealerConfig::new(peer, party_id, SessionId(i as u16), 1)
        })
        .collect();
    EngineConfig {
        dealers,
        desks: vec![SessionId(DESK as u16)],
        limits,
        timer_tick_ms: 1,
    }
}

impl Pipeline<StaticTiers> {
    /// A desk and `dealers` dealers (party ids `D1`, `D2`, ..., all tier 1), all logged on at
    /// `now`, selection by static tiers with `protocol`.
    pub fn with_dealers(
        dealers: usize,
        protocol: Protocol,
        limits: EngineLimits,
        now: Nanos,
    ) -> Self {
        Pipeline::new(dealers, StaticTiers { protocol }, limits, now)
    }
}

impl<P: Panel> Pipeline<P> {
    pub fn new(dealers: usize, panel: P, limits: EngineLimits, now: Nanos) -> Pipeline<P> {
        assert!(dealers < usize::from(u16::MAX), "too many dealers");
        let validator = Arc::new(Validator::fix44());
        let store = || {
            MemoryStore::new(
                MemoryStoreLimits {
                    max_messages: 4096,
                    max_message_bytes: 8192,
                },
                now,
            )
        };
        let mut sessions = Vec::with_capacity(dealers + 1);
        let mut peers = Vec::with_capacity(dealers + 1);
        for i in 0..=dealers {
            let peer = if i == DESK {
                "DESK".to_string()
            } else {
                format!("D{i}")
            };
            let mut cfg = SessionConfig::acceptor("ROUTER", &peer);
            cfg.max_message_bytes = 8192;
            sessions.push(Session::new(cfg, store(), validator.clone()));
            peers.push(PeerWriter {
                sender: peer,
                next_seq: 1,
            });
        }
        let engine = Engine::new(engine_config(dealers, limits), panel, now);
        let out = engine.outbox();
        let mut p = Pipeline {
            wires: (0..=dealers)
                .map(|_| Vec::with_capacity(64 * 1024))
                .collect(),
            sessions,
            peers,
            engine,
            out,
            encoder: Encoder::new(8192),
            frame: Vec::with_capacity(8192),
            now,
            send_failures: 0,
            journal: None,
        };
        for i in 0..=dealers {
            p.peer_message(i, b"A", |e| {
                e.uint(98, 0).uint(108, 30);
            });
            let mut frame = std::mem::take(&mut p.frame);
            let s = &mut p.sessions[i];
            let tap = Tap {
                journal: None,
                session: i,
                now,
            };
            s.on_connected(now, &mut Wire(&mut p.wires[i], tap));
            s.on_input(now, &frame, &mut Accept, &mut Wire(&mut p.wires[i], tap));
            frame.clear();
            p.frame = frame;
            assert_eq!(
                s.state(),
                crate::fix::session::SessionState::Active,
                "pipeline session {i} logged on"
            );
            p.engine
                .on(now, Event::SessionUp(SessionId(i as u16)), &mut p.out);
        }
        p.clear_wires();
        p
    }

    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Journals everything from now on, as the host does: the sessions' logons happened
    /// at construction (before the journal), so the run starts with SessionUp inputs for
    /// every session at the current `now`, then the caller's inputs.
    pub fn attach_journal(&mut self, tap: JournalTap) {
        let journal = RefCell::new(tap);
        for i in 0..self.sessions.len() {
            journal
                .borrow_mut()
                .input(self.now, &EngineInput::SessionUp { session: i as u16 });
        }
        self.journal = Some(journal);
    }

    /// As the router does after a restart: RFQs are numbered after `last_rfq_seq` (journaled
    /// as an input, so a replay does the same).
    pub fn resume_numbering_after(&mut self, last_rfq_seq: u64) {
        if let Some(j) = &self.journal {
            j.borrow_mut()
                .input(self.now, &EngineInput::ResumeNumbering { last_rfq_seq });
        }
        self.engine.resume_numbering_after(last_rfq_seq);
    }

    /// Detaches the journal (to close it).
    pub fn take_journal(&mut self) -> Option<JournalTap> {
        self.journal.take().map(RefCell::into_inner)
    }

    /// Moves time on and fires the engine's and sessions' due timers.
    pub fn advance_to(&mut self, now: Nanos) {
        self.now = now;
        if let Some(j) = &self.journal {
            j.borrow_mut().input(now, &EngineInput::Tick);
        }
        self.engine.on(now, Event::Tick, &mut self.out);
        self.dispatch(now);
        for i in 0..self.sessions.len() {
            if self.sessions[i].next_deadline().is_some_and(|d| d <= now) {
                let tap = Tap {
                    journal: self.journal.as_ref(),
                    session: i,
                    now,
                };
                self.sessions[i].on_timer(now, &mut Wire(&mut self.wires[i], tap));
            }
        }
    }

    /// Hands the engine what the scoring thread or the rules watcher sends, as the router
    /// does (`RouterApp`): journaled as the engine's input first, then its output sent.
    pub fn feedback(&mut self, msg: ToEngine) {
        let now = self.now;
        if let Some(j) = &self.journal {
            j.borrow_mut().input_feedback(now, &msg);
        }
        match msg {
            ToEngine::Rules(r) => self.engine.on(now, Event::RulesReload(r), &mut self.out),
            ToEngine::Scores(u) => self.engine.on(now, Event::ScoreUpdate(&u), &mut self.out),
            // Messages other modules add are not the pipeline's.
            #[allow(unreachable_patterns)]
            _ => return,
        };
        self.dispatch(now);
    }

    /// The score rows the run starts from, as `RouterApp::load_score_snapshot` gives them.
    pub fn load_score_snapshot(&mut self, rows: Vec<ScoreRow>) {
        if rows.is_empty() {
            return;
        }
        let now = self.now;
        if let Some(j) = &self.journal {
            j.borrow_mut().input_score_rows(now, true, &rows);
        }
        let update = ScoreUpdate {
            rows,
            ..ScoreUpdate::default()
        };
        self.engine
            .on(now, Event::ScoreUpdate(&update), &mut self.out);
        self.dispatch(now);
    }

    /// Sends (and journals) what the engine produced for the step at `now`.
    fn dispatch(&mut self, now: Nanos) {
        let cmds = self.out.commands().len();
        for c in 0..cmds {
            let cmd = &self.out.commands()[c];
            if let Command::Journal(record) = cmd {
                if let Some(j) = &self.journal {
                    j.borrow_mut().engine_record(now, record);
                }
            }
            if let Command::Send {
                session,
                msg_type,
                body,
            } = cmd
            {
                let i = usize::from(session.0);
                let body = self.out.body(body);
                let tap = Tap {
                    journal: self.journal.as_ref(),
                    session: i,
                    now,
                };
                let r = self.sessions[i].send_app(
                    now,
                    msg_type,
                    |e| {
                        e.raw(body);
                    },
                    &mut Wire(&mut self.wires[i], tap),
                );
                if r.is_err() {
                    self.send_failures += 1;
                    if let Some(j) = &self.journal {
                        j.borrow_mut().unsent(now, i, UNSENT_REFUSED, msg_type);
                    }
                }
            }
        }
    }

    /// Builds the next frame peer `session` sends (header included) with `fill` writing the
    /// body, and keeps it as the pending input. Returns its bytes.
    pub fn peer_message(
        &mut self,
        session: usize,
        msg_type: &[u8],
        fill: impl FnOnce(&mut Encoder),
    ) -> &[u8] {
        let peer = &mut self.peers[session];
        self.encoder
            .start(msg_type)
            .uint(34, peer.next_seq)
            .str(49, peer.sender.as_bytes())
            .timestamp(52, self.now)
            .str(56, b"ROUTER");
        fill(&mut self.encoder);
        peer.next_seq += 1;
        let f = self.encoder.finish().expect("pipeline peer message fits");
        self.frame.clear();
        self.frame.extend_from_slice(f);
        &self.frame
    }

    /// Delivers the pending input (from `peer_message`) to session `session`.
    pub fn deliver(&mut self, session: usize) -> usize {
        let frame = std::mem::take(&mut self.frame);
        let n = self.input(session, &frame);
        self.frame = frame;
        n
    }

    /// Feeds bytes received from peer `session` through its FIX session and the engine.
    /// Returns the bytes consumed.
    pub fn input(&mut self, session: usize, bytes: &[u8]) -> usize {
        let now = self.now;
        let (before, rest) = self.sessions.split_at_mut(session);
        let (cur, after) = rest.split_first_mut().expect("session index in range");
        let (wires_before, wrest) = self.wires.split_at_mut(session);
        let (wire, wires_after) = wrest.split_first_mut().expect("wire index in range");
        let mut app = PipeApp {
            engine: &mut self.engine,
            out: &mut self.out,
            current: session,
            now,
            before,
            after,
            wires_before,
            wires_after,
            send_failures: &mut self.send_failures,
            journal: self.journal.as_ref(),
        };
        let tap = Tap {
            journal: self.journal.as_ref(),
            session,
            now,
        };
        cur.on_input(now, bytes, &mut app, &mut Wire(wire, tap))
    }

    /// Frames the router wrote to peer `session` since the last `clear_wires`.
    pub fn wire(&self, session: usize) -> &[u8] {
        &self.wires[session]
    }

    pub fn clear_wires(&mut self) {
        for w in &mut self.wires {
            w.clear();
        }
    }

    pub fn engine(&self) -> &Engine<P> {
        &self.engine
    }

    /// Engine messages the sessions refused to send.
    pub fn send_failures(&self) -> u64 {
        self.send_failures
    }

    pub fn dealers(&self) -> usize {
        self.sessions.len() - 1
    }
}
