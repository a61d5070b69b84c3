//! The router application: the RFQ engine behind the FIX host.
//!
//! Owns the adapter between `host::HostApp` (sessions by index, messages as they arrive) and
//! `rfq::Engine` (events in, commands out): it feeds each application message, session change
//! and timer tick to the engine, then sends the engine's messages on the right sessions, the
//! reply on the session being served and the rest through `Peers`. It decides nothing itself
//! and keeps no RFQ state. Journal records are counted here until the journal (issue 5) takes
//! them.

use crate::config::Config;
use crate::dealers::Dealers;
use crate::fix::session::{AppOutcome, Reply};
use crate::fix::{Encoder, Message};
use crate::host::{HostApp, Peers};
use crate::journal::resume::RestartNotices;
use crate::rfq::engine::{Counters, Engine, EngineConfig, Event, Outcome};
use crate::rfq::outbox::{Command, Outbox};
use crate::rfq::types::SessionId;
use crate::select::Panel;
use crate::time::Nanos;

/// Counters of the adapter itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterCounters {
    /// Engine messages that could not be sent (session down, refused).
    pub send_failures: u64,
    /// Journal records produced (not yet written anywhere: issue 5).
    pub journal_records: u64,
}

/// The engine as a host application.
pub struct RouterApp<P: Panel> {
    engine: Engine<P>,
    out: Outbox,
    counters: RouterCounters,
    /// What a restart owes desks (RFQs left open by the previous run), sent at their logon.
    restart: Option<RestartNotices>,
}

impl<P: Panel> RouterApp<P> {
    pub fn new(engine: Engine<P>) -> RouterApp<P> {
        let out = engine.outbox();
        RouterApp {
            engine,
            out,
            counters: RouterCounters::default(),
            restart: None,
        }
    }

    /// Builds the engine from the router configuration and the dealer database.
    pub fn from_config(config: &Config, dealers: &Dealers, panel: P, now: Nanos) -> RouterApp<P> {
        let cfg = EngineConfig {
            dealers: dealers.engine_dealers(),
            desks: config
                .rfq
                .desk_sessions
                .iter()
                .map(|&i| SessionId(i as u16))
                .collect(),
            limits: config.rfq.limits,
            timer_tick_ms: config.rfq.timer_tick_ms,
        };
        RouterApp::new(Engine::new(cfg, panel, now))
    }

    /// Continues after a previous run: RFQ numbers after `last_rfq_seq`, and `notices` sent
    /// to each desk when its session logs on.
    pub fn resume(&mut self, last_rfq_seq: u64, notices: RestartNotices) {
        self.engine.resume_numbering_after(last_rfq_seq);
        self.restart = Some(notices);
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
    fn dispatch(&mut self, current: Option<(usize, &mut Reply<'_>)>, peers: &mut Peers<'_>) {
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
                    let ok = match (&mut reply, current_index == Some(target)) {
                        (Some(r), true) => r
                            .send(msg_type, &mut |e: &mut Encoder| {
                                e.raw(body);
                            })
                            .is_ok(),
                        _ => peers.send(target, msg_type, body).is_ok(),
                    };
                    if !ok {
                        self.counters.send_failures += 1;
                    }
                }
                Command::Journal(_) => self.counters.journal_records += 1,
            }
        }
    }
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
        let ev = Event::Fix {
            session: SessionId(session as u16),
            msg,
        };
        let outcome = self.engine.on(now, ev, &mut self.out);
        self.dispatch(Some((session, reply)), peers);
        match outcome {
            Outcome::Handled => AppOutcome::Accepted,
            Outcome::Unsupported => AppOutcome::UnsupportedMsgType,
        }
    }

    fn on_session_up(&mut self, now: Nanos, session: usize, peers: &mut Peers<'_>) {
        if let Some(notices) = &mut self.restart {
            notices.on_session_up(session as u16, |s, msg_type, body| {
                peers.send(s, msg_type, body).is_ok()
            });
        }
        self.engine.on(
            now,
            Event::SessionUp(SessionId(session as u16)),
            &mut self.out,
        );
        self.dispatch(None, peers);
    }

    fn on_session_down(&mut self, now: Nanos, session: usize, peers: &mut Peers<'_>) {
        self.engine.on(
            now,
            Event::SessionDown(SessionId(session as u16)),
            &mut self.out,
        );
        self.dispatch(None, peers);
    }

    fn on_tick(&mut self, now: Nanos, peers: &mut Peers<'_>) {
        self.engine.on(now, Event::Tick, &mut self.out);
        self.dispatch(None, peers);
    }

    fn next_deadline(&self) -> Option<Nanos> {
        self.engine.next_wakeup()
    }
}
