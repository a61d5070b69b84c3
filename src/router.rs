//! The router application: the RFQ engine behind the FIX host.
//!
//! Owns the adapter between `host::HostApp` (sessions by index, messages as they arrive) and
//! `rfq::Engine` (events in, commands out): it feeds each application message, session change
//! and timer tick to the engine, then sends the engine's messages on the right sessions, the
//! reply on the session being served and the rest through `Peers`. It decides nothing itself
//! and keeps no RFQ state. With a journal attached to the host, it journals every engine
//! input (with its `now`) before the engine sees it, every engine record, and every engine
//! message its session did not send (`journal::tap`), so `rfq-journal replay` can re-run it.

use crate::config::Config;
use crate::dealers::Dealers;
use crate::fix::session::{AppOutcome, Reply};
use crate::fix::{Encoder, Message};
use crate::host::{HostApp, PeerSendError, Peers};
use crate::inbox::Inbox;
use crate::journal::records::{EngineInput, PriceBits};
use crate::journal::resume::RestartNotices;
use crate::journal::tap::{UNSENT_NOT_A_SESSION, UNSENT_NOT_LOGGED_ON, UNSENT_REFUSED};
use crate::metrics::{EngineCounts, Probe, SnapshotServer};
use crate::rfq::engine::{
    AdminQuery, Counters, Engine, EngineConfig, EngineStatus, Event, Outcome,
};
use crate::rfq::outbox::{Command, Outbox, Record};
use crate::rfq::types::SessionId;
use crate::scoring::FactSender;
use crate::select::feedback::ToEngine;
use crate::select::follow::InstalledRules;
use crate::select::Panel;
use crate::time::Nanos;

/// Counters of the adapter itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterCounters {
    /// Engine messages that could not be sent (session down, refused).
    pub send_failures: u64,
    /// Journal records the engine produced (journaled when the host has a journal).
    pub journal_records: u64,
    /// TCA facts handed to the scoring thread, and dropped because its queue was full.
    pub tca_facts: u64,
    pub tca_facts_dropped: u64,
    /// Messages from the scoring thread and rules watcher handed to the engine.
    pub feedback_messages: u64,
}

/// The engine as a host application.
pub struct RouterApp<P: Panel> {
    engine: Engine<P>,
    out: Outbox,
    counters: RouterCounters,
    /// Stage latencies and queue depths (`crate::metrics`), and the admin thread's requests.
    probe: Probe,
    admin: Option<SnapshotServer>,
    /// To the scoring thread (bounded; never blocks).
    tca_facts: Option<FactSender>,
    /// From the scoring thread and the rules watcher, drained on the loop's wake.
    feedback: Option<Inbox<ToEngine>>,
    /// What a restart owes desks (RFQs left open by the previous run), sent at their logon.
    restart: Option<RestartNotices>,
    /// Told the load sequence of every rule set the engine installs (`select::follow`).
    installed_rules: Option<InstalledRules>,
}

/// Feedback messages handled per wake before the loop serves sockets again.
const FEEDBACK_PER_WAKE: usize = 64;

impl<P: Panel> RouterApp<P> {
    pub fn new(engine: Engine<P>) -> RouterApp<P> {
        let out = engine.outbox();
        RouterApp {
            engine,
            out,
            counters: RouterCounters::default(),
            probe: Probe::new(),
            admin: None,
            tca_facts: None,
            feedback: None,
            restart: None,
            installed_rules: None,
        }
    }

    /// Answers the admin thread's metrics requests (drained in `on_wake`).
    pub fn with_admin(mut self, admin: SnapshotServer) -> RouterApp<P> {
        self.admin = Some(admin);
        self
    }

    /// The engine thread's stage histograms (the journal's wiring records `JournalLag` here).
    pub fn metrics_mut(&mut self) -> &mut crate::metrics::Metrics {
        &mut self.probe.metrics
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.probe.metrics
    }

    /// Answers waiting admin requests with a copy of the metrics and counters.
    fn serve_admin(&mut self, now: Nanos, peers: &Peers<'_>) {
        let Some(admin) = &mut self.admin else {
            return;
        };
        let pending = admin.pending() as u64;
        self.probe
            .metrics
            .record_queue(crate::metrics::Queue::Inbox, pending);
        // The engine answers from its own state, through its one entry point.
        let mut status = EngineStatus::default();
        self.engine.on(
            now,
            Event::Admin(AdminQuery::Status(&mut status)),
            &mut self.out,
        );
        let counts = EngineCounts {
            engine: status.counters,
            router: self.counters,
            host: peers.host_counters(),
            open_rfqs: status.open_rfqs,
            inbox_refused: admin.refused(),
        };
        admin.serve(&self.probe.metrics, &counts);
    }

    /// Connects the scoring side: TCA facts go to `facts`, and rules reloads and score
    /// updates come from `inbox` (drained when the loop wakes).
    pub fn with_feedback(
        mut self,
        facts: Option<FactSender>,
        inbox: Option<Inbox<ToEngine>>,
    ) -> RouterApp<P> {
        self.tca_facts = facts;
        self.feedback = inbox;
        self
    }

    /// Tells `installed` each rule set the engine installs, so readers off the engine thread
    /// (the admin's recommender) switch with it.
    pub fn with_installed_rules(mut self, installed: InstalledRules) -> RouterApp<P> {
        self.installed_rules = Some(installed);
        self
    }

    /// Builds the engine from the router configuration and the dealer database.
    pub fn from_config(config: &Config, dealers: &Dealers, panel: P, now: Nanos) -> RouterApp<P> {
        RouterApp::new(build_engine(config, dealers, panel, now))
    }

    /// Continues after a previous run: RFQ numbers after `last_rfq_seq`, and `notices` sent
    /// to each desk when its session logs on.
    pub fn resume(&mut self, last_rfq_seq: u64, notices: RestartNotices) {
        self.engine.resume_numbering_after(last_rfq_seq);
        self.restart = Some(notices);
    }

    /// The score rows the run starts from (start-up, before the host runs; `rows::snapshot`
    /// of the tables): journaled as the engine input `score-snapshot`, then given to the
    /// engine as one `Event::ScoreUpdate`, so that a replay starts from the same rows.
    pub fn load_score_snapshot(
        &mut self,
        now: Nanos,
        rows: Vec<crate::select::rows::ScoreRow>,
        mut tap: Option<&mut crate::journal::tap::JournalTap>,
    ) {
        if rows.is_empty() {
            return;
        }
        if let Some(j) = tap.as_deref_mut() {
            j.input_score_rows(now, true, &rows);
        }
        let update = crate::select::feedback::ScoreUpdate {
            rows,
            ..Default::default()
        };
        self.engine
            .on(now, Event::ScoreUpdate(&update), &mut self.out);
        for cmd in self.out.commands() {
            if let (Command::Journal(record), Some(j)) = (cmd, tap.as_deref_mut()) {
                j.engine_record(now, record);
            }
        }
        self.out.clear();
    }

    /// The restart notices (sent and pending), if this run resumed a journal.
    pub fn restart_notices(&self) -> Option<&RestartNotices> {
        self.restart.as_ref()
    }

    pub fn engine(&self) -> &Engine<P> {
        &self.engine
    }

    pub fn engine_counters(&self) -> Counters {
        *self.engine.counters()
    }

    pub fn counters(&self) -> RouterCounters {
        self.counters
    }

    /// Sends what the engine produced. `current` is the session being served, whose messages
    /// go through `reply`.
    fn dispatch(
        &mut self,
        now: Nanos,
        current: Option<(usize, &mut Reply<'_>)>,
        peers: &mut Peers<'_>,
    ) {
        let (current_index, mut reply) = match current {
            Some((i, r)) => (Some(i), Some(r)),
            None => (None, None),
        };
        for cmd in self.out.commands() {
            match cmd {
                Command::Send {
                    session,
                    msg_type,
                    body,
                } => {
                    let target = usize::from(session.0);
                    let body = self.out.body(body);
                    let sent = match (&mut reply, current_index == Some(target)) {
                        (Some(r), true) => r
                            .send(msg_type, &mut |e: &mut Encoder| {
                                e.raw(body);
                            })
                            .map(|_| ())
                            .map_err(|_| UNSENT_REFUSED),
                        _ => peers
                            .send(target, msg_type, body)
                            .map(|_| ())
                            .map_err(|e| match e {
                                PeerSendError::NotAPeer => UNSENT_NOT_A_SESSION,
                                PeerSendError::NotLoggedOn => UNSENT_NOT_LOGGED_ON,
                                PeerSendError::Refused(_) => UNSENT_REFUSED,
                            }),
                    };
                    if let Err(reason) = sent {
                        self.counters.send_failures += 1;
                        if let Some(mut j) = peers.journal() {
                            j.unsent(now, target, reason, msg_type);
                        }
                    } else if current_index != Some(target) {
                        self.probe.sent(msg_type, peers.queued_bytes(target));
                    }
                }
                Command::Journal(record) => {
                    self.counters.journal_records += 1;
                    if let (
                        Record::RulesReload {
                            seq, refused: None, ..
                        },
                        Some(rules),
                    ) = (record, &self.installed_rules)
                    {
                        rules.installed(*seq);
                    }
                    if let Some(mut j) = peers.journal() {
                        j.engine_record(now, record);
                    }
                }
                Command::Tca(fact) => {
                    if let Some(tx) = &self.tca_facts {
                        if tx.try_send(fact.clone()).is_ok() {
                            self.counters.tca_facts += 1;
                        } else {
                            self.counters.tca_facts_dropped += 1;
                        }
                    }
                }
            }
        }
    }

    /// Hands queued rules reloads and score updates to the engine, at most
    /// `FEEDBACK_PER_WAKE` at a time (the rest make `next_deadline` due at once).
    fn drain_feedback(&mut self, now: Nanos, peers: &mut Peers<'_>) {
        for _ in 0..FEEDBACK_PER_WAKE {
            let Some(msg) = self.feedback.as_ref().and_then(Inbox::try_recv) else {
                break;
            };
            self.counters.feedback_messages += 1;
            // Everything the engine reads of it (score rows, rules text) is its input.
            if let Some(mut j) = peers.journal() {
                j.input_feedback(now, &msg);
            }
            match msg {
                ToEngine::Rules(r) => {
                    self.engine.on(now, Event::RulesReload(r), &mut self.out);
                }
                ToEngine::Scores(u) => {
                    self.engine.on(now, Event::ScoreUpdate(&u), &mut self.out);
                }
                ToEngine::Mid(m) => {
                    let instrument = m.instrument.as_bytes();
                    if let Some(mut j) = peers.journal() {
                        let mid = PriceBits::new(m.mid);
                        j.input(now, &EngineInput::MarketMid { instrument, mid });
                    }
                    let ev = Event::MarketMid {
                        instrument,
                        mid: m.mid,
                    };
                    self.engine.on(now, ev, &mut self.out);
                }
            }
            self.dispatch(now, None, peers);
        }
    }
}

/// The engine's configuration from the router configuration and the dealer database (the
/// router and `rfq-journal replay` build the same engine from the same files).
pub fn engine_config(config: &Config, dealers: &Dealers) -> EngineConfig {
    EngineConfig {
        dealers: dealers.engine_dealers(),
        desks: config
            .rfq
            .desk_sessions
            .iter()
            .map(|&i| SessionId(i as u16))
            .collect(),
        limits: config.rfq.limits,
        timer_tick_ms: config.rfq.timer_tick_ms,
    }
}

/// The engine the router runs, from its configuration and dealer database: the engine
/// configuration above, and market data taken from the feed sessions only. `rfq-journal
/// replay` rebuilds a run's engine through here too, so both agree by construction.
pub fn build_engine<P: Panel>(
    config: &Config,
    dealers: &Dealers,
    panel: P,
    now: Nanos,
) -> Engine<P> {
    let mut engine = Engine::new(engine_config(config, dealers), panel, now);
    let feeds: Vec<SessionId> = config
        .rfq
        .feed_sessions
        .iter()
        .map(|&i| SessionId(i as u16))
        .collect();
    engine.set_feed_sessions(&feeds);
    engine
}

impl<P: Panel> HostApp for RouterApp<P> {
    fn on_message(
        &mut self,
        now: Nanos,
        session: usize,
        msg: &Message<'_>,
        reply: &mut Reply<'_>,
        peers: &mut Peers<'_>,
    ) -> AppOutcome {
        self.probe.message_start(msg.msg_type());
        if let Some(mut j) = peers.journal() {
            j.input_fix(now, session, msg.frame());
        }
        let ev = Event::Fix {
            session: SessionId(session as u16),
            msg,
        };
        let outcome = self.engine.on(now, ev, &mut self.out);
        self.probe.engine_done();
        self.dispatch(now, Some((session, reply)), peers);
        self.probe.message_end();
        match outcome {
            Outcome::Handled => AppOutcome::Accepted,
            Outcome::Unsupported => AppOutcome::UnsupportedMsgType,
        }
    }

    fn on_session_up(&mut self, now: Nanos, session: usize, peers: &mut Peers<'_>) {
        if let Some(mut j) = peers.journal() {
            let session = session as u16;
            j.input(now, &EngineInput::SessionUp { session });
        }
        if let Some(notices) = self.restart.as_mut().filter(|n| n.pending() > 0) {
            // The router's own messages, not the engine's: flagged so a replay skips them.
            if let Some(mut j) = peers.journal() {
                j.set_router_origin(true);
            }
            notices.on_session_up(session as u16, |s, msg_type, body| {
                peers.send(s, msg_type, body).is_ok()
            });
            if let Some(mut j) = peers.journal() {
                j.set_router_origin(false);
            }
        }
        self.engine.on(
            now,
            Event::SessionUp(SessionId(session as u16)),
            &mut self.out,
        );
        self.dispatch(now, None, peers);
    }

    fn on_session_down(&mut self, now: Nanos, session: usize, peers: &mut Peers<'_>) {
        if let Some(mut j) = peers.journal() {
            let session = session as u16;
            j.input(now, &EngineInput::SessionDown { session });
        }
        self.engine.on(
            now,
            Event::SessionDown(SessionId(session as u16)),
            &mut self.out,
        );
        self.dispatch(now, None, peers);
    }

    fn on_tick(&mut self, now: Nanos, peers: &mut Peers<'_>) {
        if let Some(mut j) = peers.journal() {
            j.input(now, &EngineInput::Tick);
        }
        self.engine.on(now, Event::Tick, &mut self.out);
        self.dispatch(now, None, peers);
        self.drain_feedback(now, peers);
    }

    fn on_wake(&mut self, now: Nanos, peers: &mut Peers<'_>) {
        self.serve_admin(now, peers);
        self.drain_feedback(now, peers);
    }

    fn next_deadline(&self) -> Option<Nanos> {
        // Feedback left over from a wake that served its share: due at once.
        if self.feedback.as_ref().is_some_and(|i| !i.is_empty()) {
            return Some(Nanos(0));
        }
        self.engine.next_wakeup()
    }

    fn on_input(&mut self, _session: usize) {
        self.probe.on_input();
    }
}
