//! The RFQ engine: every RFQ's lifecycle, from a desk's QuoteRequest to the fill.
//!
//! Owns all RFQ state (open RFQs with their panels and quotes, in a fixed-capacity slab) and
//! the timer wheel that drives the protocols (broadcast, staggered, whisper), response
//! timeouts, execution timeouts and expiries. `Engine::on(now, event, outbox)` is the only
//! way in: an event (an application message from a FIX session, a session up or down, time
//! passing) goes in; commands (send this message on that session, journal this decision)
//! come out in the outbox. It never reads the clock, never does I/O, and does not allocate in
//! steady state: past a configured limit the desk gets a QuoteRequestReject and a counter
//! moves. Which dealers to ask is not decided here but by the `select::Panel` it is given.

use super::outbox::{Outbox, Record, MAX_PANEL};
use super::recent::Recent;
use super::slab::{Handle, Slab};
use super::timer::{TimerId, TimerWheel};
use super::types::{DealerId, FixId, Px, SessionId, Side};
use crate::fix::message::{parse_u64, Message};
use crate::fix::tags as t;
use crate::select::feedback::{RulesReload, ScoreUpdate};
use crate::select::tca::{AskedDealers, TcaFact};
use crate::select::{
    Candidate, Panel, Protocol, ProtocolKind, Refusal as SelectionRefusal, RfqSpec, Selection,
};
use crate::time::{parse_utc_timestamp, Nanos};
use smallvec::SmallVec;

/// How a hit is sent to the winning dealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitWith {
    /// QuoteResponse (AJ) with QuoteRespType 1.
    QuoteResponse,
    /// NewOrderSingle (D), OrdType D (previously quoted), with the dealer's QuoteID.
    NewOrderSingle,
}

/// A dealer as the engine knows it.
#[derive(Debug, Clone)]
pub struct DealerConfig {
    pub name: String,
    /// The PartyID (448) that names this dealer to desks, in overrides and in quotes.
    pub party_id: FixId,
    pub session: SessionId,
    /// Manual tier: 1 best; 0 excluded from selection (a trader may still name it).
    pub tier: u8,
    /// Tell the dealer the side and size (false: ask two-sided, without size).
    pub disclose_side_and_size: bool,
    pub hit_with: HitWith,
    /// Tell a losing dealer whose quote was live that the trade was done away (AJ, 694=5).
    pub tell_losers: bool,
}

impl DealerConfig {
    /// A dealer told the side and size, hit with QuoteResponse, and told when it lost (a
    /// `[[dealer]]` entry's defaults).
    pub fn new(name: String, party_id: FixId, session: SessionId, tier: u8) -> DealerConfig {
        DealerConfig {
            name,
            party_id,
            session,
            tier,
            disclose_side_and_size: true,
            hit_with: HitWith::QuoteResponse,
            tell_losers: true,
        }
    }
}

/// Bounds on everything the engine holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineLimits {
    pub max_open_rfqs: usize,
    /// Legs (NoRelatedSym entries) in one desk QuoteRequest.
    pub max_legs: usize,
    pub max_timers: usize,
    /// A quote price must lie in (0, max_price].
    pub max_price: f64,
    /// How long the winning dealer has to answer a hit (AJ/D) with its first
    /// ExecutionReport. Past it the desk gets ExecutionReport rejected, the dealer a
    /// withdrawal of the hit, and the RFQ ends.
    pub execution_timeout_ms: u64,
    /// Timed-out executions remembered so a dealer's late ExecutionReport is recognised
    /// (oldest forgotten first).
    pub max_timed_out_executions: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_open_rfqs: 1024,
            max_legs: 8,
            max_timers: 16_384,
            max_price: 100_000.0,
            execution_timeout_ms: 30_000,
            max_timed_out_executions: 256,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub dealers: Vec<DealerConfig>,
    pub desks: Vec<SessionId>,
    pub limits: EngineLimits,
    /// Timer wheel resolution.
    pub timer_tick_ms: u64,
}

/// An input.
#[derive(Debug)]
pub enum Event<'m, 'a> {
    /// An in-order, validated application message from a logged-on session.
    Fix {
        session: SessionId,
        msg: &'m Message<'a>,
    },
    SessionUp(SessionId),
    SessionDown(SessionId),
    /// Time has passed: fire due timers.
    Tick,
    /// The rules watcher reloaded the rules (or refused a bad file): install, count, journal.
    RulesReload(RulesReload),
    /// The scoring thread wrote these updates to the score tables: refresh, journal.
    ScoreUpdate(&'m ScoreUpdate),
    /// A market mid from outside FIX (a market-data file replay): the same effect as a feed
    /// session's 35=W with that mid (fair value, TCA's arrival mid).
    MarketMid {
        instrument: &'m [u8],
        mid: f64,
    },
    /// An operator's question (the admin thread's request, put to the engine on its own
    /// thread), answered from the engine's state into the caller's slot. It changes nothing
    /// and fires no timers, so it is not an input a replay needs.
    Admin(AdminQuery<'m>),
}

/// What the admin side may ask the engine.
#[derive(Debug)]
pub enum AdminQuery<'m> {
    /// The engine's counters and the RFQ legs in flight.
    Status(&'m mut EngineStatus),
}

/// The engine's answer to [`AdminQuery::Status`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStatus {
    pub counters: Counters,
    pub open_rfqs: u64,
}

/// What the engine made of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Handled,
    /// The message type is not one this session may send (the session layer answers with a
    /// BusinessMessageReject).
    Unsupported,
}

/// Counters an SRE reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub rfqs_received: u64,
    pub rfqs_rejected_limit: u64,
    pub rfqs_rejected_invalid: u64,
    pub rfqs_rejected_no_dealer: u64,
    pub overrides: u64,
    pub dealer_requests_sent: u64,
    pub quotes_accepted: u64,
    pub quotes_rejected_unknown: u64,
    pub quotes_rejected_late: u64,
    pub quotes_rejected_duplicate: u64,
    pub quotes_rejected_mismatch: u64,
    pub declines: u64,
    pub timeouts: u64,
    pub withdrawals: u64,
    pub dealer_disconnects: u64,
    pub hits: u64,
    pub hits_rejected: u64,
    pub auto_executions: u64,
    pub fills: u64,
    pub expired: u64,
    pub cancelled: u64,
    pub no_quote_ends: u64,
    pub timer_full: u64,
    /// Rules reloads installed / refused (bad file, or a selector without rules).
    pub rules_reloads: u64,
    pub rules_refused: u64,
    /// Score updates received from the scoring thread.
    pub score_updates: u64,
    /// Market-data snapshots used / refused (no mid, unknown instrument).
    pub market_mids: u64,
    pub market_data_rejected: u64,
    /// Hits the winning dealer did not answer within `execution_timeout_ms`.
    pub execution_timeouts: u64,
    /// ExecutionReports for a hit that had already timed out (each is counted).
    pub late_execution_reports: u64,
    /// Of those, fills relayed to the desk (the desk had been told "rejected").
    pub late_fills_relayed: u64,
    /// OrderCancelReject (9) from a dealer, in answer to the router withdrawing a hit.
    pub execution_cancel_rejects: u64,
    /// Dealers' IOIs (35=6): applied to the selector's axe book (new, replace, cancel),
    /// refused (unreadable, unknown instrument or reference, expired, book full; the book
    /// counts which), or ignored (a selector without an axe book).
    pub iois_applied: u64,
    pub iois_rejected: u64,
    pub iois_ignored: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Pending,
    Asked,
    Quoted,
    Declined,
    TimedOut,
    Withdrawn,
    Disconnected,
}

#[derive(Debug, Clone, Copy)]
struct QuoteRec {
    dealer_quote_id: FixId,
    version: u32,
    bid: Option<Px>,
    offer: Option<Px>,
    bid_size: Option<Px>,
    offer_size: Option<Px>,
    valid_until: Option<Nanos>,
}

#[derive(Debug, Clone, Copy)]
struct PanelSlot {
    dealer: DealerId,
    state: SlotState,
    asked_at: Nanos,
    timer: Option<TimerId>,
    quote: Option<QuoteRec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RfqState {
    Open,
    Executing,
}

#[derive(Debug, Clone, Copy)]
struct Execution {
    slot: u8,
    /// The desk's ClOrdID (hit by D) or QuoteRespID (hit by AJ).
    desk_ref: FixId,
    desk_used_order: bool,
    reports: u32,
    /// The execution timeout, until the dealer's first ExecutionReport.
    timer: Option<TimerId>,
}

/// A hit that timed out: enough to recognise the dealer's late ExecutionReport and to relay
/// a late fill to the desk under the identifiers the desk knows.
#[derive(Debug, Clone, Copy)]
struct TimedOutExecution {
    seq: u64,
    slot_index: u32,
    panel_slot: u8,
    dealer: DealerId,
    desk: SessionId,
    desk_ref: FixId,
    desk_used_order: bool,
    instrument: Instrument,
    side: Side,
    reports: u32,
}

#[derive(Debug, Clone, Copy)]
struct Instrument {
    symbol: FixId,
    security_id: FixId,
    id_source: FixId,
}

#[derive(Debug, Clone)]
struct Rfq {
    seq: u64,
    wire_id: FixId,
    desk: SessionId,
    desk_req_id: FixId,
    instrument: Instrument,
    side: Option<Side>,
    qty: Px,
    expires: Nanos,
    protocol: Protocol,
    fair_value: Option<f64>,
    panel: SmallVec<[PanelSlot; MAX_PANEL]>,
    next_ask: usize,
    state: RfqState,
    expiry_timer: Option<TimerId>,
    stagger_timer: Option<TimerId>,
    exec: Option<Execution>,
}

impl Rfq {
    /// A free slab slot's content until its first use.
    fn blank() -> Rfq {
        let none = FixId::EMPTY;
        Rfq {
            seq: 0,
            wire_id: none,
            desk: SessionId(0),
            desk_req_id: none,
            instrument: Instrument {
                symbol: none,
                security_id: none,
                id_source: none,
            },
            side: None,
            qty: Px {
                text: none,
                value: 0.0,
            },
            expires: Nanos(0),
            protocol: Protocol::default(),
            fair_value: None,
            panel: SmallVec::new(),
            next_ask: 0,
            state: RfqState::Open,
            expiry_timer: None,
            stagger_timer: None,
            exec: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum TimerKind {
    Response { rfq: Handle, slot: u8 },
    Stagger { rfq: Handle },
    Expiry { rfq: Handle },
    Execution { rfq: Handle },
}

/// One leg of a desk request, parsed.
#[derive(Debug, Clone)]
struct Leg {
    instrument: Instrument,
    side: Option<Side>,
    qty: Px,
    valid_until: Option<Nanos>,
    named: SmallVec<[DealerId; MAX_PANEL]>,
}

/// Why a desk request is refused: QuoteRequestRejectReason (658) and Text (58).
#[derive(Debug, Clone, Copy)]
struct Refusal {
    reason: u8,
    text: &'static str,
}

const REJECT_UNKNOWN_SYMBOL: u8 = 1;
const REJECT_EXCEEDS_LIMIT: u8 = 3;
const REJECT_NO_MARKET: u8 = 8;
const REJECT_OTHER: u8 = 99;

const STATUS_ACCEPTED: &[u8] = b"0";
const STATUS_CANCELED: &[u8] = b"4";
const STATUS_REJECTED: &[u8] = b"5";
const STATUS_EXPIRED: &[u8] = b"7";
const STATUS_NOT_FOUND: &[u8] = b"9";

/// The engine.
pub struct Engine<P: Panel> {
    dealers: Vec<DealerConfig>,
    dealer_online: Vec<bool>,
    desk_sessions: Vec<SessionId>,
    feed_sessions: Vec<SessionId>,
    limits: EngineLimits,
    panel: P,
    rfqs: Slab<Rfq>,
    timers: TimerWheel<TimerKind>,
    next_seq: u64,
    counters: Counters,
    // Reused scratch, sized at construction.
    candidates: Vec<Candidate>,
    selection: Selection,
    recommended: Selection,
    fired: Vec<TimerKind>,
    legs: SmallVec<[Leg; 8]>,
    timed_out: Recent<TimedOutExecution>,
    /// The dealer QuoteRequest body last written: (outbox epoch, RFQ, disclosed, range).
    request_body: Option<(u64, Handle, bool, std::ops::Range<usize>)>,
}

impl<P: Panel> Engine<P> {
    pub fn new(cfg: EngineConfig, panel: P, now: Nanos) -> Engine<P> {
        assert!(
            cfg.dealers.len() < usize::from(u16::MAX),
            "too many dealers"
        );
        assert!(
            cfg.limits.max_legs <= 8,
            "at most 8 legs per request are supported"
        );
        let n = cfg.dealers.len();
        Engine {
            dealer_online: vec![false; n],
            // Selection's view of every dealer, kept current by `set_online` (a change of
            // tier must update it too).
            candidates: cfg
                .dealers
                .iter()
                .enumerate()
                .map(|(i, d)| Candidate {
                    dealer: DealerId(i as u16),
                    tier: d.tier,
                    online: false,
                })
                .collect(),
            dealers: cfg.dealers,
            desk_sessions: cfg.desks,
            feed_sessions: Vec::new(),
            limits: cfg.limits,
            panel,
            rfqs: Slab::with_capacity_filled(cfg.limits.max_open_rfqs, Rfq::blank),
            timers: TimerWheel::new(
                4096,
                Nanos::from_millis(cfg.timer_tick_ms.max(1)),
                cfg.limits.max_timers,
                now,
            ),
            next_seq: 1,
            counters: Counters::default(),
            selection: Selection::default(),
            recommended: Selection::default(),
            fired: Vec::with_capacity(cfg.limits.max_timers),
            legs: SmallVec::new(),
            timed_out: Recent::with_capacity(cfg.limits.max_timed_out_executions),
            request_body: None,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Sessions whose peers are market-data feeds (MarketDataSnapshotFullRefresh, 35=W).
    pub fn set_feed_sessions(&mut self, feeds: &[SessionId]) {
        self.feed_sessions = feeds.to_vec();
    }

    /// The selector (read access, e.g. for its rules' version).
    pub fn panel(&self) -> &P {
        &self.panel
    }

    pub fn open_rfqs(&self) -> usize {
        self.rfqs.len()
    }

    /// After a restart: new RFQs are numbered after `last_rfq_seq` (the highest number the
    /// journal shows), so no router identifier of an earlier run is reused.
    pub fn resume_numbering_after(&mut self, last_rfq_seq: u64) {
        self.next_seq = self.next_seq.max(last_rfq_seq.saturating_add(1));
    }

    /// When the host must call `on(now, Event::Tick)` at the latest.
    pub fn next_wakeup(&self) -> Option<Nanos> {
        self.timers.next_wakeup()
    }

    /// Sizes an outbox large enough for any single call.
    pub fn outbox(&self) -> Outbox {
        let per_call_msgs = 4 * MAX_PANEL * self.limits.max_legs.max(1) + 64;
        Outbox::new(per_call_msgs * 4, per_call_msgs * 1024)
    }

    /// The single entry point. `out` is cleared first.
    pub fn on(&mut self, now: Nanos, ev: Event<'_, '_>, out: &mut Outbox) -> Outcome {
        out.clear();
        let outcome = match ev {
            Event::Admin(AdminQuery::Status(status)) => {
                // A read: no timers fire, so the state a replay rebuilds is unaffected.
                *status = EngineStatus {
                    counters: self.counters,
                    open_rfqs: self.open_rfqs() as u64,
                };
                return Outcome::Handled;
            }
            Event::Fix { session, msg } => self.on_fix(now, session, msg, out),
            Event::SessionUp(s) => {
                self.set_online(s, true);
                Outcome::Handled
            }
            Event::SessionDown(s) => {
                self.on_session_down(now, s, out);
                Outcome::Handled
            }
            Event::Tick => Outcome::Handled,
            Event::RulesReload(r) => {
                self.on_rules_reload(r, out);
                Outcome::Handled
            }
            Event::ScoreUpdate(u) => {
                self.on_score_update(now, u, out);
                Outcome::Handled
            }
            Event::MarketMid { instrument, mid } => {
                self.market_mid(now, instrument, None, mid, out);
                Outcome::Handled
            }
        };
        self.fire_timers(now, out);
        outcome
    }

    fn set_online(&mut self, s: SessionId, online: bool) {
        for (i, d) in self.dealers.iter().enumerate() {
            if d.session == s {
                self.dealer_online[i] = online;
                self.candidates[i].online = online;
            }
        }
    }

    fn is_desk(&self, s: SessionId) -> bool {
        self.desk_sessions.contains(&s)
    }

    fn dealer_by_session(&self, s: SessionId) -> Option<DealerId> {
        self.dealers
            .iter()
            .position(|d| d.session == s)
            .map(|i| DealerId(i as u16))
    }

    fn dealer_by_party(&self, party: &[u8]) -> Option<DealerId> {
        self.dealers
            .iter()
            .position(|d| d.party_id.as_bytes() == party)
            .map(|i| DealerId(i as u16))
    }

    fn on_fix(
        &mut self,
        now: Nanos,
        session: SessionId,
        msg: &Message<'_>,
        out: &mut Outbox,
    ) -> Outcome {
        if self.feed_sessions.contains(&session) {
            if msg.msg_type() != b"W" {
                return Outcome::Unsupported;
            }
            self.market_data(now, msg, out);
            return Outcome::Handled;
        }
        if self.is_desk(session) {
            match msg.msg_type() {
                b"R" => self.desk_quote_request(now, session, msg, out),
                b"AJ" => self.desk_quote_response(now, session, msg, out),
                b"D" => self.desk_order(now, session, msg, out),
                b"Z" => self.desk_cancel(now, session, msg, out),
                _ => return Outcome::Unsupported,
            }
            return Outcome::Handled;
        }
        let Some(dealer) = self.dealer_by_session(session) else {
            return Outcome::Unsupported;
        };
        match msg.msg_type() {
            b"S" => self.dealer_quote(now, dealer, msg, out),
            b"AG" => self.dealer_decline(now, dealer, msg, out),
            b"Z" => self.dealer_withdraw(now, dealer, msg, out),
            b"8" => self.dealer_execution(now, dealer, msg, out),
            // The answer to withdrawing a timed-out hit by OrderCancelRequest: counted; a
            // fill it implies arrives as its own (late) ExecutionReport.
            b"9" => self.counters.execution_cancel_rejects += 1,
            b"6" => self.dealer_ioi(now, dealer, msg),
            _ => return Outcome::Unsupported,
        }
        Outcome::Handled
    }

    // ----- desk side -------------------------------------------------------------------

    fn parse_legs(&mut self, msg: &Message<'_>) -> Result<(), Refusal> {
        self.legs.clear();
        for entry in msg.group(t::NO_RELATED_SYM) {
            if self.legs.len() == self.limits.max_legs {
                return Err(Refusal {
                    reason: REJECT_EXCEEDS_LIMIT,
                    text: "too many legs in one QuoteRequest",
                });
            }
            let too_long = Refusal {
                reason: REJECT_OTHER,
                text: "identifier longer than 40 bytes",
            };
            // One pass over the entry for its fields (seven scans were a tenth of parsing).
            let [symbol, security_id, id_source, side, qty, valid_until, expire_time, parties] =
                entry.get_each([
                    t::SYMBOL,
                    t::SECURITY_ID,
                    t::SECURITY_ID_SOURCE,
                    t::SIDE,
                    t::ORDER_QTY,
                    t::VALID_UNTIL_TIME,
                    t::EXPIRE_TIME,
                    t::NO_PARTY_IDS,
                ]);
            let symbol = FixId::new(symbol.unwrap_or(b"")).ok_or(too_long)?;
            let security_id = FixId::new(security_id.unwrap_or(b"")).ok_or(too_long)?;
            let id_source = FixId::new(id_source.unwrap_or(b"")).ok_or(too_long)?;
            if security_id.is_empty() && (symbol.is_empty() || symbol.as_bytes() == b"[N/A]") {
                return Err(Refusal {
                    reason: REJECT_UNKNOWN_SYMBOL,
                    text: "no instrument: give SecurityID/SecurityIDSource or Symbol",
                });
            }
            if !security_id.is_empty() && !matches!(id_source.as_bytes(), b"1" | b"4") {
                return Err(Refusal {
                    reason: REJECT_UNKNOWN_SYMBOL,
                    text: "SecurityIDSource must be 1 (CUSIP) or 4 (ISIN)",
                });
            }
            let side = match side {
                None => None,
                Some(v) => Some(Side::from_fix(v).ok_or(Refusal {
                    reason: REJECT_OTHER,
                    text: "Side must be 1 (buy) or 2 (sell)",
                })?),
            };
            let qty = qty
                .and_then(Px::parse)
                .filter(|q| q.value > 0.0)
                .ok_or(Refusal {
                    reason: REJECT_OTHER,
                    text: "OrderQty must be given and positive",
                })?;
            let valid_until = match valid_until.or(expire_time) {
                None => None,
                Some(v) => Some(parse_utc_timestamp(v).ok_or(Refusal {
                    reason: REJECT_OTHER,
                    text: "bad ValidUntilTime/ExpireTime",
                })?),
            };
            let mut named = SmallVec::new();
            let named_parties = parties.map(|_| entry.group(t::NO_PARTY_IDS));
            for party in named_parties.into_iter().flatten() {
                if !matches!(party.get(t::PARTY_ROLE), Some(b"1") | Some(b"35")) {
                    continue;
                }
                let id = party.get(t::PARTY_ID).unwrap_or(b"");
                let dealer = self.dealer_by_party(id).ok_or(Refusal {
                    reason: REJECT_OTHER,
                    text: "a named dealer (PartyID) is unknown",
                })?;
                if named.len() == MAX_PANEL {
                    return Err(Refusal {
                        reason: REJECT_EXCEEDS_LIMIT,
                        text: "too many dealers named",
                    });
                }
                if !named.contains(&dealer) {
                    named.push(dealer);
                }
            }
            self.legs.push(Leg {
                instrument: Instrument {
                    symbol,
                    security_id,
                    id_source,
                },
                side,
                qty,
                valid_until,
                named,
            });
        }
        if self.legs.is_empty() {
            return Err(Refusal {
                reason: REJECT_OTHER,
                text: "QuoteRequest without NoRelatedSym entries",
            });
        }
        Ok(())
    }

    fn desk_quote_request(
        &mut self,
        now: Nanos,
        desk: SessionId,
        msg: &Message<'_>,
        out: &mut Outbox,
    ) {
        self.counters.rfqs_received += 1;
        let Some(req_id) = msg.get(t::QUOTE_REQ_ID).and_then(FixId::new) else {
            self.counters.rfqs_rejected_invalid += 1;
            let r = Refusal {
                reason: REJECT_OTHER,
                text: "QuoteReqID missing or longer than 40 bytes",
            };
            self.refuse_request(desk, &FixId::EMPTY, None, r, out);
            return;
        };
        if let Err(r) = self.parse_legs(msg) {
            self.counters.rfqs_rejected_invalid += 1;
            self.refuse_request(desk, &req_id, None, r, out);
            return;
        }
        for k in 0..self.legs.len() {
            // One leg (a few hundred bytes) at a time: moving the whole SmallVec of legs out
            // and back copied kilobytes per request.
            self.open_leg(now, desk, req_id, k, out);
        }
    }

    fn refuse_request(
        &mut self,
        desk: SessionId,
        req_id: &FixId,
        instrument: Option<&Instrument>,
        r: Refusal,
        out: &mut Outbox,
    ) {
        out.begin(desk, b"AG")
            .id(t::QUOTE_REQ_ID, req_id)
            .uint(t::QUOTE_REQUEST_REJECT_REASON, u64::from(r.reason));
        out.uint(t::NO_RELATED_SYM, 1);
        match instrument {
            Some(i) => write_instrument(out, i),
            None => {
                out.str(t::SYMBOL, b"[N/A]");
            }
        }
        out.str(t::TEXT, r.text.as_bytes());
        out.end();
    }

    /// Refuses a request for a reason selection gave: Text is the selector's text, `": "`
    /// and `named` (the instrument as the desk gave it), built on the stack.
    fn refuse_naming(
        &mut self,
        desk: SessionId,
        req_id: &FixId,
        instrument: &Instrument,
        r: SelectionRefusal,
        named: &FixId,
        out: &mut Outbox,
    ) {
        let mut text = [0u8; 160];
        let mut n = 0;
        for part in [r.text.as_bytes(), b": ", named.as_bytes()] {
            let take = part.len().min(text.len() - n);
            text[n..n + take].copy_from_slice(&part[..take]);
            n += take;
        }
        out.begin(desk, b"AG")
            .id(t::QUOTE_REQ_ID, req_id)
            .uint(t::QUOTE_REQUEST_REJECT_REASON, u64::from(r.reason));
        out.uint(t::NO_RELATED_SYM, 1);
        write_instrument(out, instrument);
        out.str(t::TEXT, &text[..n]);
        out.end();
    }

    fn open_leg(
        &mut self,
        now: Nanos,
        desk: SessionId,
        req_id: FixId,
        leg_index: usize,
        out: &mut Outbox,
    ) {
        // The leg's small parts copied once; its named dealers are read in place (cloning
        // the whole leg per request copied hundreds of bytes).
        let leg = &self.legs[leg_index];
        let (instrument, side, qty, valid_until) =
            (leg.instrument, leg.side, leg.qty, leg.valid_until);
        let named_count = leg.named.len();
        if self.rfqs.is_full() {
            self.counters.rfqs_rejected_limit += 1;
            let r = Refusal {
                reason: REJECT_EXCEEDS_LIMIT,
                text: "router at its open-RFQ limit",
            };
            self.refuse_request(desk, &req_id, Some(&instrument), r, out);
            return;
        }
        // Ask selection for its recommendation (also when a trader names the panel: it is
        // journaled beside the override).
        // `candidates` is kept up to date by `set_online` (200 dealers rebuilt per request
        // was a tenth of the path's instructions).
        debug_assert!(self.candidates.iter().enumerate().all(|(i, c)| {
            c.dealer == DealerId(i as u16)
                && c.tier == self.dealers[i].tier
                && c.online == self.dealer_online[i]
        }));
        let instrument_key = if instrument.security_id.is_empty() {
            instrument.symbol
        } else {
            instrument.security_id
        };
        let id_source = if instrument.security_id.is_empty() {
            FixId::EMPTY
        } else {
            instrument.id_source
        };
        let spec = RfqSpec {
            instrument: &instrument_key,
            id_source: &id_source,
            side,
            qty: qty.value,
            now,
        };
        self.recommended.dealers.clear();
        self.recommended.refusal = None;
        self.recommended.rule = None;
        self.recommended.rules_version = None;
        self.recommended.scores.clear();
        self.panel
            .select(&spec, &self.candidates, &mut self.recommended);
        if let Some(refusal) = self.recommended.refusal {
            self.counters.rfqs_rejected_invalid += 1;
            self.refuse_naming(desk, &req_id, &instrument, refusal, &instrument_key, out);
            return;
        }
        let overridden = named_count != 0;
        self.selection.dealers.clear();
        self.selection.protocol = self.recommended.protocol;
        self.selection.fair_value = self.recommended.fair_value;
        if overridden {
            self.counters.overrides += 1;
            let max = usize::from(self.selection.protocol.max_dealers).max(named_count);
            self.selection.protocol.max_dealers = max.min(MAX_PANEL) as u8;
            self.selection
                .dealers
                .extend_from_slice(&self.legs[leg_index].named);
        } else {
            self.selection
                .dealers
                .extend_from_slice(&self.recommended.dealers);
        }
        if self.selection.dealers.is_empty() {
            self.counters.rfqs_rejected_no_dealer += 1;
            let r = Refusal {
                reason: REJECT_NO_MARKET,
                text: "no dealer available for this request",
            };
            self.refuse_request(desk, &req_id, Some(&instrument), r, out);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let protocol = self.selection.protocol;
        let mut expires = now.add_millis(protocol.rfq_expiry_ms);
        if let Some(v) = valid_until {
            expires = expires.min(v);
        }
        // Written in place: an `Rfq` is kilobytes (its panel slots hold the quotes), and
        // building it on the stack and moving it into the slab copied it twice per request.
        let (dealers, fair_value) = (&self.selection.dealers, self.selection.fair_value);
        let inserted = self.rfqs.insert_with(|r| {
            let Rfq {
                seq: r_seq,
                wire_id,
                desk: r_desk,
                desk_req_id,
                instrument: r_instrument,
                side: r_side,
                qty: r_qty,
                expires: r_expires,
                protocol: r_protocol,
                fair_value: r_fair_value,
                panel,
                next_ask,
                state,
                expiry_timer,
                stagger_timer,
                exec,
            } = r;
            *r_seq = seq;
            *wire_id = FixId::EMPTY;
            *r_desk = desk;
            *desk_req_id = req_id;
            *r_instrument = instrument;
            *r_side = side;
            *r_qty = qty;
            *r_expires = expires;
            *r_protocol = protocol;
            *r_fair_value = fair_value;
            panel.clear();
            for &d in dealers {
                panel.push(PanelSlot {
                    dealer: d,
                    state: SlotState::Pending,
                    asked_at: Nanos(0),
                    timer: None,
                    quote: None,
                });
            }
            *next_ask = 0;
            *state = RfqState::Open;
            *expiry_timer = None;
            *stagger_timer = None;
            *exec = None;
        });
        let Some(h) = inserted else {
            unreachable!("slab checked not full above");
        };
        let wire_id = wire_ref(b"R", seq, h.index, None);
        self.rfqs.get_mut(h).expect("just inserted").wire_id = wire_id;
        out.journal(Record::Decision {
            rfq: seq,
            protocol: protocol.kind.code(),
            // `from_slice`: one copy of the Copy elements, not a clone element by element.
            panel: SmallVec::from_slice(&self.selection.dealers),
            recommended: SmallVec::from_slice(&self.recommended.dealers),
            overridden,
            rule: self.recommended.rule,
            rules_version: self.recommended.rules_version,
            scores: SmallVec::from_slice(&self.recommended.scores),
        });
        match self.timers.arm(expires, TimerKind::Expiry { rfq: h }) {
            Ok(id) => self.rfqs.get_mut(h).expect("live").expiry_timer = Some(id),
            Err(_) => {
                self.counters.timer_full += 1;
                self.counters.rfqs_rejected_limit += 1;
                self.rfqs.remove(h);
                let r = Refusal {
                    reason: REJECT_EXCEEDS_LIMIT,
                    text: "router at its timer limit",
                };
                self.refuse_request(desk, &req_id, Some(&instrument), r, out);
                return;
            }
        }
        out.tca(TcaFact::Opened {
            rfq: seq,
            context: self.recommended.context,
            side,
            qty: qty.value,
            arrival_mid: self.selection.fair_value.unwrap_or(f64::NAN),
            now,
        });
        // Dealers first: the desk's acknowledgement is not on the wire-to-wire path. If the
        // protocol ended the RFQ at once (every chosen dealer went offline), the desk has
        // already been told why and there is nothing left to accept.
        self.start_protocol(now, h, out);
        if self.rfqs.get(h).is_some() {
            self.status_to_desk(h, STATUS_ACCEPTED, None, b"", out);
        }
    }

    fn start_protocol(&mut self, now: Nanos, h: Handle, out: &mut Outbox) {
        let kind = self.rfqs.get(h).expect("live rfq").protocol.kind;
        match kind {
            ProtocolKind::Broadcast => self.ask_all_remaining(now, h, out),
            ProtocolKind::Staggered => {
                self.ask_next(now, h, out);
                self.arm_stagger(now, h);
            }
            ProtocolKind::Whisper => {
                self.ask_next(now, h, out);
            }
        }
        self.maybe_finish(now, h, out);
    }

    fn arm_stagger(&mut self, now: Nanos, h: Handle) {
        let rfq = self.rfqs.get(h).expect("live rfq");
        if rfq.next_ask >= rfq.panel.len() {
            return;
        }
        let at = now.add_millis(rfq.protocol.stagger_gap_ms);
        match self.timers.arm(at, TimerKind::Stagger { rfq: h }) {
            Ok(id) => self.rfqs.get_mut(h).expect("live").stagger_timer = Some(id),
            Err(_) => self.counters.timer_full += 1,
        }
    }

    fn ask_all_remaining(&mut self, now: Nanos, h: Handle, out: &mut Outbox) {
        while self.rfqs.get(h).is_some_and(|r| r.next_ask < r.panel.len()) {
            self.ask_next(now, h, out);
        }
    }

    /// Asks the next pending dealer who is online; offline ones are marked and skipped.
    /// Returns whether a dealer was asked.
    fn ask_next(&mut self, now: Nanos, h: Handle, out: &mut Outbox) -> bool {
        loop {
            let Some(rfq) = self.rfqs.get_mut(h) else {
                return false;
            };
            if rfq.next_ask >= rfq.panel.len() || rfq.state != RfqState::Open {
                return false;
            }
            let i = rfq.next_ask;
            rfq.next_ask += 1;
            let dealer = rfq.panel[i].dealer;
            if !self.dealer_online[usize::from(dealer.0)] {
                rfq.panel[i].state = SlotState::Disconnected;
                continue;
            }
            let timeout = rfq.protocol.response_timeout_ms;
            let d = &self.dealers[usize::from(dealer.0)];
            let disclose = d.disclose_side_and_size;
            // Every dealer asked in this call with the same disclosure gets the same body:
            // encode it once (a broadcast asks the whole panel in one call).
            match &self.request_body {
                Some((epoch, rh, dis, body))
                    if *epoch == out.epoch() && *rh == h && *dis == disclose =>
                {
                    out.send_again(d.session, b"R", body.clone());
                }
                _ => {
                    out.begin(d.session, b"R")
                        .id(t::QUOTE_REQ_ID, &rfq.wire_id)
                        .uint(t::NO_RELATED_SYM, 1);
                    write_instrument(out, &rfq.instrument);
                    if disclose {
                        if let Some(side) = rfq.side {
                            out.char(t::SIDE, side.fix());
                        }
                        out.id(t::ORDER_QTY, &rfq.qty.text);
                    }
                    out.time(t::EXPIRE_TIME, rfq.expires);
                    out.end();
                    self.request_body = Some((out.epoch(), h, disclose, out.last_body()));
                }
            }
            self.counters.dealer_requests_sent += 1;
            out.tca(TcaFact::Asked {
                rfq: rfq.seq,
                dealer,
                now,
            });
            rfq.panel[i].state = SlotState::Asked;
            rfq.panel[i].asked_at = now;
            match self.timers.arm(
                now.add_millis(timeout),
                TimerKind::Response {
                    rfq: h,
                    slot: i as u8,
                },
            ) {
                Ok(id) => self.rfqs.get_mut(h).expect("live").panel[i].timer = Some(id),
                Err(_) => self.counters.timer_full += 1,
            }
            return true;
        }
    }

    /// Whisper (and escalation): after slot `i` stopped being a candidate, move on.
    fn move_on(&mut self, now: Nanos, h: Handle, out: &mut Outbox) {
        let Some(rfq) = self.rfqs.get(h) else { return };
        if rfq.state != RfqState::Open || rfq.protocol.kind != ProtocolKind::Whisper {
            return;
        }
        // Only move on when nobody asked is still pending an answer.
        if rfq.panel.iter().any(|s| s.state == SlotState::Asked) {
            return;
        }
        let asked = rfq.next_ask;
        let escalate = rfq.protocol.escalate_after;
        if escalate > 0 && asked >= usize::from(escalate) {
            self.ask_all_remaining(now, h, out);
        } else {
            self.ask_next(now, h, out);
        }
    }

    /// Ends an RFQ that can no longer produce a trade: every dealer answered or dropped out
    /// and no quote is live.
    fn maybe_finish(&mut self, now: Nanos, h: Handle, out: &mut Outbox) {
        let Some(rfq) = self.rfqs.get(h) else { return };
        if rfq.state != RfqState::Open || rfq.next_ask < rfq.panel.len() {
            return;
        }
        if rfq.panel.iter().any(|s| {
            matches!(
                s.state,
                SlotState::Asked | SlotState::Quoted | SlotState::Pending
            )
        }) {
            return;
        }
        self.counters.no_quote_ends += 1;
        self.status_to_desk(
            h,
            STATUS_REJECTED,
            None,
            b"no dealer quoted: all declined, timed out or dropped",
            out,
        );
        self.finish(now, h, out);
    }

    fn finish(&mut self, now: Nanos, h: Handle, out: &mut Outbox) {
        self.tca_finished(now, h, out);
        if let Some(rfq) = self.rfqs.remove(h) {
            let exec_timer = rfq.exec.and_then(|e| e.timer);
            for id in [rfq.expiry_timer, rfq.stagger_timer, exec_timer]
                .into_iter()
                .flatten()
            {
                self.timers.cancel(id);
            }
            for s in &rfq.panel {
                if let Some(id) = s.timer {
                    self.timers.cancel(id);
                }
            }
        }
    }

    fn status_to_desk(
        &mut self,
        h: Handle,
        status: &[u8],
        slot: Option<usize>,
        text: &[u8],
        out: &mut Outbox,
    ) {
        let rfq = self.rfqs.get(h).expect("live rfq");
        let quote_id = match slot.and_then(|i| rfq.panel[i].quote.map(|q| (i, q))) {
            Some((i, q)) => wire_ref(b"Q", rfq.seq, h.index, Some((i, q.version))),
            None => rfq.wire_id,
        };
        out.begin(rfq.desk, b"AI")
            .id(t::QUOTE_ID, &quote_id)
            .id(t::QUOTE_REQ_ID, &rfq.desk_req_id);
        write_instrument(out, &rfq.instrument);
        out.str(t::QUOTE_STATUS, status);
        if !text.is_empty() {
            out.str(t::TEXT, text);
        }
        out.end();
    }

    /// Finds the RFQ and panel slot a router QuoteID (`Q<seq>-<slot>-<idx>-<ver>`) names.
    fn find_quote(&self, quote_id: &[u8]) -> Option<(Handle, usize)> {
        let WireRef {
            seq,
            slot: index,
            extra: rest,
        } = parse_wire_ref(b"Q", quote_id)?;
        let (i, ver) = rest?;
        let h = self.live_handle(seq, index)?;
        let rfq = self.rfqs.get(h)?;
        let q = rfq.panel.get(i)?.quote?;
        (q.version == ver).then_some((h, i))
    }

    /// O(1): the slot index is in the identifier; the sequence number proves it is still the
    /// same RFQ.
    fn live_handle(&self, seq: u64, index: u32) -> Option<Handle> {
        let h = self.rfqs.handle_at(index)?;
        (self.rfqs.get(h)?.seq == seq).then_some(h)
    }

    fn desk_quote_response(
        &mut self,
        now: Nanos,
        desk: SessionId,
        msg: &Message<'_>,
        out: &mut Outbox,
    ) {
        let resp_type = msg.get(t::QUOTE_RESP_TYPE).unwrap_or(b"");
        let desk_ref = msg
            .get(t::QUOTE_RESP_ID)
            .and_then(FixId::new)
            .unwrap_or(FixId::EMPTY);
        let target = msg.get(t::QUOTE_ID).and_then(|q| self.find_quote(q));
        match resp_type {
            b"1" => self.hit(now, desk, target, desk_ref, false, msg, out),
            b"6" => {
                // Pass: the desk ends the RFQ (by QuoteID, or by its QuoteReqID).
                let h = target
                    .map(|(h, _)| h)
                    .or_else(|| self.rfq_by_desk_req(desk, msg.get(t::QUOTE_REQ_ID)));
                match h {
                    Some(h) => self.cancel_rfq(now, h, out),
                    None => self.reject_hit(
                        desk,
                        &desk_ref,
                        false,
                        msg,
                        b"unknown QuoteID or QuoteReqID",
                        out,
                    ),
                }
            }
            _ => self.reject_hit(
                desk,
                &desk_ref,
                false,
                msg,
                b"QuoteRespType must be 1 (hit/lift) or 6 (pass)",
                out,
            ),
        }
    }

    fn desk_order(&mut self, now: Nanos, desk: SessionId, msg: &Message<'_>, out: &mut Outbox) {
        let desk_ref = msg
            .get(t::CL_ORD_ID)
            .and_then(FixId::new)
            .unwrap_or(FixId::EMPTY);
        let target = msg.get(t::QUOTE_ID).and_then(|q| self.find_quote(q));
        self.hit(now, desk, target, desk_ref, true, msg, out);
    }

    fn rfq_by_desk_req(&self, desk: SessionId, req: Option<&[u8]>) -> Option<Handle> {
        let req = req?;
        self.rfqs
            .iter()
            .find(|(_, r)| r.desk == desk && r.desk_req_id.as_bytes() == req)
            .map(|(h, _)| h)
    }

    fn desk_cancel(&mut self, now: Nanos, desk: SessionId, msg: &Message<'_>, out: &mut Outbox) {
        // QuoteCancel from the desk: by our QuoteID, or by its QuoteReqID (all legs).
        if let Some((h, _)) = msg.get(t::QUOTE_ID).and_then(|q| self.find_quote(q)) {
            if self.rfqs.get(h).is_some_and(|r| r.desk == desk) {
                self.cancel_rfq(now, h, out);
                return;
            }
        }
        let mut any = false;
        while let Some(h) = self.rfq_by_desk_req(desk, msg.get(t::QUOTE_REQ_ID)) {
            self.cancel_rfq(now, h, out);
            any = true;
        }
        if !any {
            out.begin(desk, b"AI")
                .str(t::QUOTE_ID, msg.get(t::QUOTE_ID).unwrap_or(b"[N/A]"));
            if let Some(r) = msg.get(t::QUOTE_REQ_ID) {
                out.str(t::QUOTE_REQ_ID, r);
            }
            out.str(t::QUOTE_STATUS, STATUS_NOT_FOUND)
                .str(t::TEXT, b"no open RFQ matches this QuoteCancel")
                .end();
        }
    }

    fn cancel_rfq(&mut self, now: Nanos, h: Handle, out: &mut Outbox) {
        let Some(rfq) = self.rfqs.get(h) else { return };
        if rfq.state == RfqState::Executing {
            // Too late: the hit is with the dealer. The execution report will settle it.
            self.status_to_desk(
                h,
                STATUS_REJECTED,
                None,
                b"cannot cancel: execution in progress",
                out,
            );
            return;
        }
        self.counters.cancelled += 1;
        self.tell_quoted_dealers(h, b"6", None, out);
        self.status_to_desk(h, STATUS_CANCELED, None, b"cancelled by desk", out);
        self.finish(now, h, out);
    }

    /// Sends QuoteResponse with `resp_type` (6 pass, 5 done away) to every dealer with a live
    /// quote, except `except`, when that dealer wants to be told.
    fn tell_quoted_dealers(
        &mut self,
        h: Handle,
        resp_type: &[u8],
        except: Option<usize>,
        out: &mut Outbox,
    ) {
        let rfq = self.rfqs.get(h).expect("live rfq");
        for (i, s) in rfq.panel.iter().enumerate() {
            if Some(i) == except || s.state != SlotState::Quoted {
                continue;
            }
            let d = &self.dealers[usize::from(s.dealer.0)];
            if !d.tell_losers || !self.dealer_online[usize::from(s.dealer.0)] {
                continue;
            }
            let Some(q) = s.quote else { continue };
            let resp_id = wire_ref(b"P", rfq.seq, h.index, Some((i, q.version)));
            out.begin(d.session, b"AJ")
                .id(t::QUOTE_RESP_ID, &resp_id)
                .id(t::QUOTE_ID, &q.dealer_quote_id);
            out.str(t::QUOTE_RESP_TYPE, resp_type);
            write_instrument(out, &rfq.instrument);
            out.end();
        }
    }

    fn reject_hit(
        &mut self,
        desk: SessionId,
        desk_ref: &FixId,
        by_order: bool,
        msg: &Message<'_>,
        why: &[u8],
        out: &mut Outbox,
    ) {
        self.counters.hits_rejected += 1;
        let n = self.next_seq;
        self.next_seq += 1;
        out.begin(desk, b"8")
            .id(t::ORDER_ID, &FixId::numbered(b"O", n));
        if by_order {
            out.id(t::CL_ORD_ID, desk_ref);
        }
        out.id(t::EXEC_ID, &FixId::numbered(b"X", n))
            .char(t::EXEC_TYPE, b'8')
            .char(t::ORD_STATUS, b'8');
        if let Some(q) = msg.get(t::QUOTE_RESP_ID) {
            out.str(t::QUOTE_RESP_ID, q);
        }
        out.str(t::SYMBOL, msg.get(t::SYMBOL).unwrap_or(b"[N/A]"));
        out.str(
            t::SIDE,
            msg.get(t::SIDE).filter(|s| s.len() == 1).unwrap_or(b"1"),
        );
        out.uint(t::LEAVES_QTY, 0)
            .uint(t::CUM_QTY, 0)
            .uint(t::AVG_PX, 0)
            .str(t::TEXT, why)
            .end();
    }

    #[allow(clippy::too_many_arguments)]
    fn hit(
        &mut self,
        now: Nanos,
        desk: SessionId,
        target: Option<(Handle, usize)>,
        desk_ref: FixId,
        by_order: bool,
        msg: &Message<'_>,
        out: &mut Outbox,
    ) {
        let Some((h, i)) = target else {
            self.reject_hit(
                desk,
                &desk_ref,
                by_order,
                msg,
                b"unknown or replaced QuoteID",
                out,
            );
            return;
        };
        let rfq = self.rfqs.get(h).expect("found live");
        if rfq.desk != desk {
            self.reject_hit(
                desk,
                &desk_ref,
                by_order,
                msg,
                b"unknown or replaced QuoteID",
                out,
            );
            return;
        }
        if rfq.state != RfqState::Open {
            self.reject_hit(
                desk,
                &desk_ref,
                by_order,
                msg,
                b"RFQ already executing",
                out,
            );
            return;
        }
        let slot = rfq.panel[i];
        let Some(q) = slot.quote.filter(|_| slot.state == SlotState::Quoted) else {
            self.reject_hit(desk, &desk_ref, by_order, msg, b"quote withdrawn", out);
            return;
        };
        if q.valid_until.is_some_and(|v| now > v) || now >= rfq.expires {
            self.reject_hit(desk, &desk_ref, by_order, msg, b"quote expired", out);
            return;
        }
        // The price the desk trades at is the dealer's on the side the desk asked for.
        let px = match rfq.side {
            Some(Side::Buy) => q.offer,
            Some(Side::Sell) => q.bid,
            None => match msg.get(t::SIDE) {
                Some(b"1") => q.offer,
                Some(b"2") => q.bid,
                _ => None,
            },
        };
        let side = rfq
            .side
            .or_else(|| msg.get(t::SIDE).and_then(Side::from_fix));
        let (Some(px), Some(side)) = (px, side) else {
            self.reject_hit(
                desk,
                &desk_ref,
                by_order,
                msg,
                b"quote has no price on that side",
                out,
            );
            return;
        };
        self.counters.hits += 1;
        self.send_hit(now, h, i, q, px, side, desk_ref, by_order, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_hit(
        &mut self,
        now: Nanos,
        h: Handle,
        i: usize,
        q: QuoteRec,
        px: Px,
        side: Side,
        desk_ref: FixId,
        by_order: bool,
        out: &mut Outbox,
    ) {
        let rfq = self.rfqs.get_mut(h).expect("live rfq");
        rfq.state = RfqState::Executing;
        rfq.side = Some(side);
        rfq.exec = Some(Execution {
            slot: i as u8,
            desk_ref,
            desk_used_order: by_order,
            reports: 0,
            timer: None,
        });
        let exec_ref = wire_ref(b"E", rfq.seq, h.index, None);
        let dealer = rfq.panel[i].dealer;
        // Stop asking: pending response and stagger timers no longer matter.
        for s in rfq.panel.iter_mut() {
            if let Some(id) = s.timer.take() {
                self.timers.cancel(id);
            }
        }
        if let Some(id) = rfq.stagger_timer.take() {
            self.timers.cancel(id);
        }
        let d = &self.dealers[usize::from(dealer.0)];
        match d.hit_with {
            HitWith::QuoteResponse => {
                out.begin(d.session, b"AJ")
                    .id(t::QUOTE_RESP_ID, &exec_ref)
                    .id(t::QUOTE_ID, &q.dealer_quote_id);
                out.char(t::QUOTE_RESP_TYPE, b'1');
                write_instrument(out, &rfq.instrument);
                out.char(t::SIDE, side.fix())
                    .id(t::ORDER_QTY, &rfq.qty.text)
                    .id(t::PRICE, &px.text);
                out.time(t::TRANSACT_TIME, now).end();
            }
            HitWith::NewOrderSingle => {
                out.begin(d.session, b"D")
                    .id(t::CL_ORD_ID, &exec_ref)
                    .id(t::QUOTE_ID, &q.dealer_quote_id);
                write_instrument(out, &rfq.instrument);
                out.char(t::SIDE, side.fix())
                    .time(t::TRANSACT_TIME, now)
                    .id(t::ORDER_QTY, &rfq.qty.text);
                out.char(t::ORD_TYPE, b'D').id(t::PRICE, &px.text).end();
            }
        }
        let at = now.add_millis(self.limits.execution_timeout_ms);
        match self.timers.arm(at, TimerKind::Execution { rfq: h }) {
            Ok(id) => {
                if let Some(ex) = self.rfqs.get_mut(h).and_then(|r| r.exec.as_mut()) {
                    ex.timer = Some(id);
                }
            }
            Err(_) => self.counters.timer_full += 1,
        }
    }

    // ----- dealer side -----------------------------------------------------------------

    /// Finds the RFQ a router QuoteReqID (`R<seq>-<slot>`) names, and this dealer's slot in it.
    fn find_request(&self, dealer: DealerId, req_id: Option<&[u8]>) -> Option<(Handle, usize)> {
        let WireRef {
            seq, slot: index, ..
        } = parse_wire_ref(b"R", req_id?)?;
        let h = self.live_handle(seq, index)?;
        let i = self
            .rfqs
            .get(h)?
            .panel
            .iter()
            .position(|s| s.dealer == dealer)?;
        Some((h, i))
    }

    fn quote_status_to_dealer(
        &mut self,
        dealer: DealerId,
        msg: &Message<'_>,
        status: &[u8],
        text: &[u8],
        out: &mut Outbox,
    ) {
        let d = &self.dealers[usize::from(dealer.0)];
        out.begin(d.session, b"AI")
            .str(t::QUOTE_ID, msg.get(t::QUOTE_ID).unwrap_or(b"[N/A]"));
        if let Some(r) = msg.get(t::QUOTE_REQ_ID) {
            out.str(t::QUOTE_REQ_ID, r);
        }
        out.str(t::SYMBOL, msg.get(t::SYMBOL).unwrap_or(b"[N/A]"));
        out.str(t::QUOTE_STATUS, status).str(t::TEXT, text).end();
    }

    fn dealer_quote(&mut self, now: Nanos, dealer: DealerId, msg: &Message<'_>, out: &mut Outbox) {
        let Some((h, i)) = self.find_request(dealer, msg.get(t::QUOTE_REQ_ID)) else {
            self.counters.quotes_rejected_unknown += 1;
            // Unknown, finished or never asked of this dealer: all are "not found" to it.
            self.quote_status_to_dealer(
                dealer,
                msg,
                STATUS_NOT_FOUND,
                b"no open request with this QuoteReqID for you",
                out,
            );
            return;
        };
        let rfq = self.rfqs.get(h).expect("live");
        let slot = rfq.panel[i];
        let late = rfq.state != RfqState::Open
            || !matches!(slot.state, SlotState::Asked | SlotState::Quoted)
            || now >= rfq.expires;
        if late {
            self.counters.quotes_rejected_late += 1;
            out.tca(TcaFact::LateOrInvalid {
                rfq: rfq.seq,
                dealer,
                now,
            });
            self.quote_status_to_dealer(
                dealer,
                msg,
                STATUS_EXPIRED,
                b"quote arrived after the request closed for you",
                out,
            );
            return;
        }
        let Some(quote_id) = msg.get(t::QUOTE_ID).and_then(FixId::new) else {
            self.counters.quotes_rejected_mismatch += 1;
            self.quote_status_to_dealer(
                dealer,
                msg,
                STATUS_REJECTED,
                b"QuoteID missing or longer than 40 bytes",
                out,
            );
            return;
        };
        if slot.quote.is_some_and(|q| q.dealer_quote_id == quote_id) {
            self.counters.quotes_rejected_duplicate += 1;
            self.quote_status_to_dealer(dealer, msg, STATUS_REJECTED, b"duplicate QuoteID", out);
            return;
        }
        if let Err(why) = check_quote(rfq, msg, self.limits.max_price) {
            self.counters.quotes_rejected_mismatch += 1;
            out.tca(TcaFact::LateOrInvalid {
                rfq: rfq.seq,
                dealer,
                now,
            });
            self.quote_status_to_dealer(dealer, msg, STATUS_REJECTED, why, out);
            return;
        }
        let valid_until = msg.get(t::VALID_UNTIL_TIME).and_then(parse_utc_timestamp);
        let version = slot.quote.map_or(0, |q| q.version + 1);
        let q = QuoteRec {
            dealer_quote_id: quote_id,
            version,
            bid: msg.get(t::BID_PX).and_then(Px::parse),
            offer: msg.get(t::OFFER_PX).and_then(Px::parse),
            bid_size: msg.get(t::BID_SIZE).and_then(Px::parse),
            offer_size: msg.get(t::OFFER_SIZE).and_then(Px::parse),
            valid_until,
        };
        self.counters.quotes_accepted += 1;
        let rfq = self.rfqs.get_mut(h).expect("live");
        if let Some(id) = rfq.panel[i].timer.take() {
            self.timers.cancel(id);
        }
        rfq.panel[i].state = SlotState::Quoted;
        rfq.panel[i].quote = Some(q);
        let rfq = self.rfqs.get(h).expect("live");
        // Relay to the desk under our own QuoteID, naming the dealer.
        let d = &self.dealers[usize::from(dealer.0)];
        out.begin(rfq.desk, b"S")
            .id(t::QUOTE_REQ_ID, &rfq.desk_req_id);
        out.id(
            t::QUOTE_ID,
            &wire_ref(b"Q", rfq.seq, h.index, Some((i, version))),
        );
        out.uint(t::NO_PARTY_IDS, 1)
            .id(t::PARTY_ID, &d.party_id)
            .char(t::PARTY_ID_SOURCE, b'D')
            .uint(t::PARTY_ROLE, 1);
        write_instrument(out, &rfq.instrument);
        if let Some(side) = rfq.side {
            out.char(t::SIDE, side.fix());
        }
        for (tag, v) in [
            (t::BID_PX, q.bid),
            (t::OFFER_PX, q.offer),
            (t::BID_SIZE, q.bid_size),
            (t::OFFER_SIZE, q.offer_size),
        ] {
            if let Some(p) = v {
                out.id(tag, &p.text);
            }
        }
        if let Some(v) = valid_until {
            out.time(t::VALID_UNTIL_TIME, v);
        }
        out.end();
        // Whisper: a quote too far from fair value does not stop the search.
        let fair = rfq.fair_value;
        let px = quote_px_for(rfq.side, &q);
        out.tca(TcaFact::Quoted {
            rfq: rfq.seq,
            dealer,
            px: px.unwrap_or(f64::NAN),
            now,
        });
        let within = |tol: f64| match (fair, px) {
            (Some(f), Some(p)) if f > 0.0 => ((p - f).abs() / f * 1e4) <= tol,
            _ => false,
        };
        let competitive = fair.is_none() || within(rfq.protocol.whisper_tolerance_bps);
        let full_size = match (rfq.side, q.offer_size, q.bid_size) {
            (Some(Side::Buy), Some(s), _) | (Some(Side::Sell), _, Some(s)) => {
                s.value >= rfq.qty.value
            }
            (Some(_), _, _) => true, // no size: the full requested size
            (None, _, _) => false,
        };
        let auto = rfq.protocol.auto_execute_bps.is_some_and(within) && full_size;
        if auto {
            if let (Some(p), Some(side)) = (quote_side_px(rfq.side, &q), rfq.side) {
                self.counters.auto_executions += 1;
                self.counters.hits += 1;
                self.send_hit(now, h, i, q, p, side, FixId::EMPTY, false, out);
                return;
            }
        }
        if !competitive {
            self.move_on_from_quote(now, h, out);
        }
    }

    /// A quote outside tolerance: ask the next dealer as if this one had declined, keeping
    /// the quote live for the desk.
    fn move_on_from_quote(&mut self, now: Nanos, h: Handle, out: &mut Outbox) {
        let Some(rfq) = self.rfqs.get(h) else { return };
        if rfq.protocol.kind != ProtocolKind::Whisper
            || rfq.panel.iter().any(|s| s.state == SlotState::Asked)
        {
            return;
        }
        let escalate = rfq.protocol.escalate_after;
        if escalate > 0 && rfq.next_ask >= usize::from(escalate) {
            self.ask_all_remaining(now, h, out);
        } else {
            self.ask_next(now, h, out);
        }
    }

    fn slot_closed(&mut self, now: Nanos, h: Handle, i: usize, state: SlotState, out: &mut Outbox) {
        let Some(rfq) = self.rfqs.get_mut(h) else {
            return;
        };
        if let Some(id) = rfq.panel[i].timer.take() {
            self.timers.cancel(id);
        }
        rfq.panel[i].state = state;
        self.move_on(now, h, out);
        self.maybe_finish(now, h, out);
    }

    fn dealer_decline(
        &mut self,
        now: Nanos,
        dealer: DealerId,
        msg: &Message<'_>,
        out: &mut Outbox,
    ) {
        let Some((h, i)) = self.find_request(dealer, msg.get(t::QUOTE_REQ_ID)) else {
            self.counters.quotes_rejected_unknown += 1;
            return;
        };
        if self
            .rfqs
            .get(h)
            .is_some_and(|r| r.panel[i].state == SlotState::Asked)
        {
            self.counters.declines += 1;
            out.tca(TcaFact::Declined {
                rfq: self.rfqs.get(h).map_or(0, |r| r.seq),
                dealer,
                now,
            });
            self.slot_closed(now, h, i, SlotState::Declined, out);
        }
    }

    fn dealer_withdraw(
        &mut self,
        now: Nanos,
        dealer: DealerId,
        msg: &Message<'_>,
        out: &mut Outbox,
    ) {
        let quote_id = msg.get(t::QUOTE_ID).unwrap_or(b"");
        let found = self
            .find_request(dealer, msg.get(t::QUOTE_REQ_ID))
            .or_else(|| {
                self.rfqs.iter().find_map(|(h, r)| {
                    r.panel
                        .iter()
                        .position(|s| {
                            s.dealer == dealer
                                && s.quote
                                    .is_some_and(|q| q.dealer_quote_id.as_bytes() == quote_id)
                        })
                        .map(|i| (h, i))
                })
            });
        let Some((h, i)) = found else {
            self.counters.quotes_rejected_unknown += 1;
            return;
        };
        let rfq = self.rfqs.get(h).expect("live");
        if rfq.state != RfqState::Open || rfq.panel[i].state != SlotState::Quoted {
            return;
        }
        self.counters.withdrawals += 1;
        let q = rfq.panel[i].quote.expect("quoted slot has a quote");
        out.begin(rfq.desk, b"Z")
            .id(t::QUOTE_REQ_ID, &rfq.desk_req_id);
        out.id(
            t::QUOTE_ID,
            &wire_ref(b"Q", rfq.seq, h.index, Some((i, q.version))),
        )
        .char(t::QUOTE_CANCEL_TYPE, b'1');
        out.uint(t::NO_PARTY_IDS, 1)
            .id(t::PARTY_ID, &self.dealers[usize::from(dealer.0)].party_id)
            .char(t::PARTY_ID_SOURCE, b'D')
            .uint(t::PARTY_ROLE, 1);
        out.end();
        self.slot_closed(now, h, i, SlotState::Withdrawn, out);
    }

    fn dealer_execution(
        &mut self,
        now: Nanos,
        dealer: DealerId,
        msg: &Message<'_>,
        out: &mut Outbox,
    ) {
        let reference = msg.get(t::CL_ORD_ID).or_else(|| msg.get(t::QUOTE_RESP_ID));
        let Some(WireRef {
            seq, slot: index, ..
        }) = reference.and_then(|r| parse_wire_ref(b"E", r))
        else {
            self.counters.quotes_rejected_unknown += 1;
            return;
        };
        let Some(h) = self.live_handle(seq, index) else {
            if !self.late_execution(now, dealer, seq, index, msg, out) {
                self.counters.quotes_rejected_unknown += 1;
            }
            return;
        };
        let rfq = self.rfqs.get_mut(h).expect("live");
        let Some(mut ex) = rfq.exec else { return };
        if rfq.panel[usize::from(ex.slot)].dealer != dealer {
            self.counters.quotes_rejected_mismatch += 1;
            return;
        }
        // The dealer answered: the execution timeout has done its job.
        if let Some(id) = ex.timer.take() {
            self.timers.cancel(id);
        }
        ex.reports += 1;
        rfq.exec = Some(ex);
        let ord_status = msg.get(t::ORD_STATUS).unwrap_or(b"");
        let exec_type = msg.get(t::EXEC_TYPE).unwrap_or(b"");
        let side = rfq.side.map_or(b'1', Side::fix);
        out.begin(rfq.desk, b"8")
            .id(t::ORDER_ID, &wire_ref(b"O", rfq.seq, h.index, None));
        if ex.desk_used_order {
            out.id(t::CL_ORD_ID, &ex.desk_ref);
        }
        out.id(
            t::EXEC_ID,
            &wire_ref(
                b"X",
                rfq.seq,
                h.index,
                Some((usize::from(ex.slot), ex.reports)),
            ),
        );
        out.str(t::EXEC_TYPE, exec_type)
            .str(t::ORD_STATUS, ord_status);
        if !ex.desk_used_order && !ex.desk_ref.is_empty() {
            out.id(t::QUOTE_RESP_ID, &ex.desk_ref);
        }
        write_instrument(out, &rfq.instrument);
        out.char(t::SIDE, side);
        relay_fill_quantities(msg, out);
        if let Some(text) = msg.get(t::TEXT) {
            out.str(t::TEXT, text);
        }
        out.time(t::TRANSACT_TIME, now).end();
        match ord_status {
            b"2" => {
                self.counters.fills += 1;
                self.tca_executed(now, h, msg, out);
                self.tell_quoted_dealers(h, b"5", Some(usize::from(ex.slot)), out);
                self.finish(now, h, out);
            }
            b"4" | b"3"
                if msg
                    .get(t::CUM_QTY)
                    .and_then(Px::parse)
                    .is_some_and(|c| c.value > 0.0) =>
            {
                // Partially filled, rest cancelled: done.
                self.counters.fills += 1;
                self.tca_executed(now, h, msg, out);
                self.tell_quoted_dealers(h, b"5", Some(usize::from(ex.slot)), out);
                self.finish(now, h, out);
            }
            b"8" | b"4" | b"3" => {
                // The dealer refused the hit (last look): its quote is gone, the RFQ goes on.
                let rfq = self.rfqs.get_mut(h).expect("live");
                rfq.state = RfqState::Open;
                rfq.exec = None;
                self.slot_closed(now, h, usize::from(ex.slot), SlotState::Declined, out);
            }
            _ => {}
        }
    }

    /// The winning dealer did not answer the hit in time. The desk gets ExecutionReport
    /// 150=8/39=8 (the hit failed) and QuoteStatusReport 297=4 (the RFQ is over); the dealer
    /// gets the hit withdrawn (OrderCancelRequest F for a NewOrderSingle, QuoteResponse
    /// 694=3 "expired" for a QuoteResponse); other dealers with live quotes hear "pass"; the
    /// hit is remembered so that a late report is recognised.
    fn execution_timed_out(&mut self, now: Nanos, h: Handle, out: &mut Outbox) {
        let rfq = self.rfqs.get(h).expect("live rfq");
        let ex = rfq.exec.expect("executing rfq");
        let i = usize::from(ex.slot);
        let slot = rfq.panel[i];
        let side = rfq.side.unwrap_or(Side::Buy);
        self.counters.execution_timeouts += 1;
        let mut text = [0u8; 96];
        let text = timeout_text(self.limits.execution_timeout_ms, &mut text);
        // The desk: its hit failed.
        out.begin(rfq.desk, b"8")
            .id(t::ORDER_ID, &wire_ref(b"O", rfq.seq, h.index, None));
        if ex.desk_used_order {
            out.id(t::CL_ORD_ID, &ex.desk_ref);
        }
        out.id(t::EXEC_ID, &wire_ref(b"X", rfq.seq, h.index, Some((i, 0))))
            .char(t::EXEC_TYPE, b'8')
            .char(t::ORD_STATUS, b'8');
        if !ex.desk_used_order && !ex.desk_ref.is_empty() {
            out.id(t::QUOTE_RESP_ID, &ex.desk_ref);
        }
        write_instrument(out, &rfq.instrument);
        out.char(t::SIDE, side.fix())
            .uint(t::LEAVES_QTY, 0)
            .uint(t::CUM_QTY, 0)
            .uint(t::AVG_PX, 0)
            .str(t::TEXT, text)
            .time(t::TRANSACT_TIME, now)
            .end();
        // The dealer: the hit is withdrawn.
        let d = &self.dealers[usize::from(slot.dealer.0)];
        if self.dealer_online[usize::from(slot.dealer.0)] {
            let exec_ref = wire_ref(b"E", rfq.seq, h.index, None);
            match d.hit_with {
                HitWith::NewOrderSingle => {
                    out.begin(d.session, b"F")
                        .id(t::ORIG_CL_ORD_ID, &exec_ref)
                        .id(t::CL_ORD_ID, &wire_ref(b"C", rfq.seq, h.index, None));
                    write_instrument(out, &rfq.instrument);
                    out.char(t::SIDE, side.fix())
                        .time(t::TRANSACT_TIME, now)
                        .id(t::ORDER_QTY, &rfq.qty.text)
                        .str(t::TEXT, text)
                        .end();
                }
                HitWith::QuoteResponse => {
                    out.begin(d.session, b"AJ")
                        .id(t::QUOTE_RESP_ID, &wire_ref(b"C", rfq.seq, h.index, None));
                    if let Some(q) = slot.quote {
                        out.id(t::QUOTE_ID, &q.dealer_quote_id);
                    }
                    out.char(t::QUOTE_RESP_TYPE, b'3');
                    write_instrument(out, &rfq.instrument);
                    out.char(t::SIDE, side.fix()).str(t::TEXT, text).end();
                }
            }
        }
        self.timed_out.push(TimedOutExecution {
            seq: rfq.seq,
            slot_index: h.index,
            panel_slot: ex.slot,
            dealer: slot.dealer,
            desk: rfq.desk,
            desk_ref: ex.desk_ref,
            desk_used_order: ex.desk_used_order,
            instrument: rfq.instrument,
            side,
            reports: 0,
        });
        self.tell_quoted_dealers(h, b"6", Some(i), out);
        self.status_to_desk(h, STATUS_CANCELED, None, text, out);
        self.finish(now, h, out);
    }

    /// An ExecutionReport for a hit that already timed out. Every one is counted; a fill
    /// (OrdStatus 1 or 2, or a LastQty above zero) is relayed to the desk, marked late in
    /// Text, because it is a trade the desk was told had failed and must book or bust.
    /// Reports that agree with what the desk was told (rejected, cancelled) are dropped.
    /// Returns false when no remembered hit matches.
    fn late_execution(
        &mut self,
        now: Nanos,
        dealer: DealerId,
        seq: u64,
        slot_index: u32,
        msg: &Message<'_>,
        out: &mut Outbox,
    ) -> bool {
        let Some(late) = self
            .timed_out
            .find_mut(|e| e.seq == seq && e.slot_index == slot_index && e.dealer == dealer)
        else {
            return false;
        };
        self.counters.late_execution_reports += 1;
        late.reports += 1;
        let late = *late;
        let ord_status = msg.get(t::ORD_STATUS).unwrap_or(b"");
        let last_qty = msg.get(t::LAST_QTY).and_then(Px::parse);
        let is_fill = matches!(ord_status, b"1" | b"2") || last_qty.is_some_and(|q| q.value > 0.0);
        if !is_fill {
            return true;
        }
        self.counters.late_fills_relayed += 1;
        let i = usize::from(late.panel_slot);
        out.begin(late.desk, b"8")
            .id(t::ORDER_ID, &wire_ref(b"O", seq, slot_index, None));
        if late.desk_used_order {
            out.id(t::CL_ORD_ID, &late.desk_ref);
        }
        out.id(
            t::EXEC_ID,
            &wire_ref(b"X", seq, slot_index, Some((i, late.reports))),
        );
        out.str(t::EXEC_TYPE, msg.get(t::EXEC_TYPE).unwrap_or(b"F"))
            .str(t::ORD_STATUS, ord_status);
        if !late.desk_used_order && !late.desk_ref.is_empty() {
            out.id(t::QUOTE_RESP_ID, &late.desk_ref);
        }
        write_instrument(out, &late.instrument);
        out.char(t::SIDE, late.side.fix());
        relay_fill_quantities(msg, out);
        out.str(
            t::TEXT,
            &b"LATE FILL: the dealer reported this after the execution timeout; \
               the hit was reported rejected"[..],
        )
        .time(t::TRANSACT_TIME, now)
        .end();
        true
    }

    // ----- sessions and timers ---------------------------------------------------------

    fn on_session_down(&mut self, now: Nanos, s: SessionId, out: &mut Outbox) {
        self.set_online(s, false);
        if self.is_desk(s) {
            // The desk is gone: its open RFQs end (executions in progress run to their report).
            loop {
                let next = self
                    .rfqs
                    .iter()
                    .find(|(_, r)| r.desk == s && r.state == RfqState::Open)
                    .map(|(h, _)| h);
                let Some(h) = next else { break };
                self.counters.cancelled += 1;
                self.tell_quoted_dealers(h, b"6", None, out);
                self.finish(now, h, out);
            }
            return;
        }
        let Some(dealer) = self.dealer_by_session(s) else {
            return;
        };
        // Every asked or quoted slot of this dealer counts as a decline; the RFQ goes on.
        for index in 0..self.rfqs.capacity() as u32 {
            let Some(h) = self.rfqs.handle_at(index) else {
                continue;
            };
            let rfq = self.rfqs.get(h).expect("live");
            if rfq.state != RfqState::Open {
                continue;
            }
            let found = rfq.panel.iter().position(|p| {
                p.dealer == dealer && matches!(p.state, SlotState::Asked | SlotState::Quoted)
            });
            let Some(i) = found else { continue };
            self.counters.dealer_disconnects += 1;
            if let Some(q) = rfq.panel[i]
                .quote
                .filter(|_| rfq.panel[i].state == SlotState::Quoted)
            {
                out.begin(rfq.desk, b"Z")
                    .id(t::QUOTE_REQ_ID, &rfq.desk_req_id);
                out.id(
                    t::QUOTE_ID,
                    &wire_ref(b"Q", rfq.seq, h.index, Some((i, q.version))),
                )
                .char(t::QUOTE_CANCEL_TYPE, b'1')
                .end();
            }
            self.slot_closed(now, h, i, SlotState::Disconnected, out);
        }
    }

    fn fire_timers(&mut self, now: Nanos, out: &mut Outbox) {
        self.fired.clear();
        let fired = &mut self.fired;
        self.timers.advance(now, |_, k| fired.push(k));
        for n in 0..self.fired.len() {
            let k = self.fired[n];
            match k {
                TimerKind::Response { rfq, slot } => {
                    let i = usize::from(slot);
                    let Some(r) = self.rfqs.get_mut(rfq) else {
                        continue;
                    };
                    r.panel[i].timer = None;
                    if r.panel[i].state == SlotState::Asked && r.state == RfqState::Open {
                        self.counters.timeouts += 1;
                        out.tca(TcaFact::TimedOut {
                            rfq: r.seq,
                            dealer: r.panel[i].dealer,
                            now,
                        });
                        self.slot_closed(now, rfq, i, SlotState::TimedOut, out);
                    }
                }
                TimerKind::Stagger { rfq } => {
                    let Some(r) = self.rfqs.get_mut(rfq) else {
                        continue;
                    };
                    r.stagger_timer = None;
                    if r.state == RfqState::Open {
                        self.ask_next(now, rfq, out);
                        self.arm_stagger(now, rfq);
                    }
                }
                TimerKind::Execution { rfq } => {
                    let Some(ex) = self.rfqs.get_mut(rfq).and_then(|r| r.exec.as_mut()) else {
                        continue;
                    };
                    ex.timer = None;
                    if ex.reports == 0 {
                        self.execution_timed_out(now, rfq, out);
                    }
                }
                TimerKind::Expiry { rfq } => {
                    let Some(r) = self.rfqs.get_mut(rfq) else {
                        continue;
                    };
                    r.expiry_timer = None;
                    if r.state == RfqState::Open {
                        self.counters.expired += 1;
                        self.status_to_desk(rfq, STATUS_EXPIRED, None, b"RFQ expired", out);
                        self.finish(now, rfq, out);
                    }
                }
            }
        }
    }

    // ----- selection feedback (select::feedback, select::market) ------------------------

    fn on_rules_reload(&mut self, r: RulesReload, out: &mut Outbox) {
        match r {
            RulesReload::Installed(rules) => match self.panel.install_rules(rules) {
                Ok(v) => {
                    self.counters.rules_reloads += 1;
                    out.journal(Record::RulesReload {
                        seq: v.seq,
                        hash: v.hash,
                        refused: None,
                    });
                }
                Err(_) => {
                    self.counters.rules_refused += 1;
                    out.journal(Record::RulesReload {
                        seq: 0,
                        hash: 0,
                        refused: Some("this selector has no rules to reload".into()),
                    });
                }
            },
            RulesReload::Refused { error } => {
                self.counters.rules_refused += 1;
                out.journal(Record::RulesReload {
                    seq: 0,
                    hash: 0,
                    refused: Some(error),
                });
            }
        }
    }

    fn on_score_update(&mut self, now: Nanos, u: &ScoreUpdate, out: &mut Outbox) {
        // Rows alone (the run's starting snapshot) are not a report of the scoring thread.
        if !u.updates.is_empty() || !u.executions.is_empty() {
            self.counters.score_updates += 1;
        }
        self.panel.score_rows(&u.rows, now);
        self.panel.scores_updated(&u.updates, now);
        for e in &u.executions {
            out.journal(Record::TcaExecution(*e));
        }
        for x in &u.updates {
            out.journal(Record::ScoreUpdate(*x));
        }
    }

    /// A dealer's IOI: its axe goes to the selector's book (`select::axes`); nothing is sent.
    fn dealer_ioi(&mut self, now: Nanos, dealer: DealerId, msg: &Message<'_>) {
        use crate::select::axes::{parse_ioi, AxeReject, IoiOutcome};
        let outcome = match parse_ioi(msg) {
            Ok(ioi) => self.panel.indication(dealer, &ioi, now),
            Err(e) => IoiOutcome::Rejected(AxeReject::Invalid(e)),
        };
        match outcome {
            IoiOutcome::Added | IoiOutcome::Replaced | IoiOutcome::Cancelled => {
                self.counters.iois_applied += 1
            }
            IoiOutcome::Rejected(_) => self.counters.iois_rejected += 1,
            IoiOutcome::Ignored => self.counters.iois_ignored += 1,
        }
    }

    /// A feed's snapshot: the mid becomes the instrument's fair value and a TCA fact.
    fn market_data(&mut self, now: Nanos, msg: &Message<'_>, out: &mut Outbox) {
        let Ok(snap) = crate::select::market::snapshot_mid(msg) else {
            self.counters.market_data_rejected += 1;
            return;
        };
        self.market_mid(now, snap.instrument, snap.id_source, snap.mid, out);
    }

    /// A mid (from a feed's snapshot or a file replay) becomes the instrument's fair value
    /// and a TCA fact.
    fn market_mid(
        &mut self,
        now: Nanos,
        instrument: &[u8],
        id_source: Option<&[u8]>,
        mid: f64,
        out: &mut Outbox,
    ) {
        match self.panel.market_mid(instrument, id_source, mid, now) {
            Some(instrument) => {
                self.counters.market_mids += 1;
                out.tca(TcaFact::Mid {
                    instrument,
                    mid,
                    now,
                });
            }
            None => self.counters.market_data_rejected += 1,
        }
    }

    // ----- TCA facts (select::tca) -----------------------------------------------------

    /// The winner's execution: AvgPx (else LastPx, else the hit quote's price) and CumQty
    /// (else LastQty, else the requested size).
    fn tca_executed(&self, now: Nanos, h: Handle, msg: &Message<'_>, out: &mut Outbox) {
        let Some(rfq) = self.rfqs.get(h) else { return };
        let Some(ex) = rfq.exec else { return };
        let slot = &rfq.panel[usize::from(ex.slot)];
        let positive = |tag| msg.get(tag).and_then(Px::parse).filter(|p| p.value > 0.0);
        let px = positive(t::AVG_PX)
            .or_else(|| positive(t::LAST_PX))
            .map(|p| p.value)
            .or_else(|| slot.quote.and_then(|q| quote_px_for(rfq.side, &q)))
            .unwrap_or(f64::NAN);
        let qty = positive(t::CUM_QTY)
            .or_else(|| positive(t::LAST_QTY))
            .map_or(rfq.qty.value, |p| p.value);
        out.tca(TcaFact::Executed {
            rfq: rfq.seq,
            dealer: slot.dealer,
            px,
            qty,
            now,
        });
    }

    /// The RFQ leg ends: who was asked, who won, and the cover (best losing quote).
    fn tca_finished(&self, now: Nanos, h: Handle, out: &mut Outbox) {
        let Some(rfq) = self.rfqs.get(h) else { return };
        let winner = rfq.exec.map(|e| usize::from(e.slot));
        let mut asked = AskedDealers::new();
        let mut cover: Option<f64> = None;
        for (i, s) in rfq.panel.iter().enumerate() {
            if !matches!(s.state, SlotState::Pending | SlotState::Disconnected) {
                asked.push(s.dealer);
            }
            if Some(i) == winner || s.state != SlotState::Quoted {
                continue;
            }
            let Some(px) = s.quote.and_then(|q| quote_side_px(rfq.side, &q)) else {
                continue;
            };
            let better = match (rfq.side, cover) {
                (_, None) => true,
                (Some(Side::Buy), Some(c)) => px.value < c,
                (_, Some(c)) => px.value > c,
            };
            if better {
                cover = Some(px.value);
            }
        }
        out.tca(TcaFact::Finished {
            rfq: rfq.seq,
            asked,
            winner: winner.map(|i| rfq.panel[i].dealer),
            cover_px: cover.unwrap_or(f64::NAN),
            now,
        });
    }
}

/// The price of a quote on the side the desk trades.
fn quote_side_px(side: Option<Side>, q: &QuoteRec) -> Option<Px> {
    match side? {
        Side::Buy => q.offer,
        Side::Sell => q.bid,
    }
}

fn quote_px_for(side: Option<Side>, q: &QuoteRec) -> Option<f64> {
    match side {
        Some(_) => quote_side_px(side, q).map(|p| p.value),
        None => match (q.bid, q.offer) {
            (Some(b), Some(o)) => Some((b.value + o.value) / 2.0),
            (Some(p), None) | (None, Some(p)) => Some(p.value),
            _ => None,
        },
    }
}

/// Checks a dealer's quote against its request: instrument, side, size, price sanity.
fn check_quote(rfq: &Rfq, msg: &Message<'_>, max_price: f64) -> Result<(), &'static [u8]> {
    let i = &rfq.instrument;
    if !i.security_id.is_empty() {
        if msg.get(t::SECURITY_ID) != Some(i.security_id.as_bytes()) {
            return Err(b"SecurityID does not match the request");
        }
    } else if msg.get(t::SYMBOL) != Some(i.symbol.as_bytes()) {
        return Err(b"Symbol does not match the request");
    }
    let px = |tag| -> Result<Option<Px>, &'static [u8]> {
        match msg.get(tag) {
            None => Ok(None),
            Some(v) => Px::parse(v)
                .map(Some)
                .ok_or(&b"unparseable price or size"[..]),
        }
    };
    let (bid, offer) = (px(t::BID_PX)?, px(t::OFFER_PX)?);
    let (bid_size, offer_size) = (px(t::BID_SIZE)?, px(t::OFFER_SIZE)?);
    let needed = match rfq.side {
        Some(Side::Buy) => offer,
        Some(Side::Sell) => bid,
        None => bid.or(offer),
    };
    if needed.is_none() {
        return Err(b"no price on the side requested");
    }
    for p in [bid, offer].into_iter().flatten() {
        if !(p.value > 0.0 && p.value <= max_price) {
            return Err(b"price outside sane bounds");
        }
    }
    if let (Some(b), Some(o)) = (bid, offer) {
        if b.value > o.value {
            return Err(b"bid above offer");
        }
    }
    for s in [bid_size, offer_size].into_iter().flatten() {
        if s.value <= 0.0 {
            return Err(b"non-positive size");
        }
    }
    Ok(())
}

fn write_instrument(out: &mut Outbox, i: &Instrument) {
    if i.symbol.is_empty() {
        out.str(t::SYMBOL, b"[N/A]");
    } else {
        out.id(t::SYMBOL, &i.symbol);
    }
    if !i.security_id.is_empty() {
        out.id(t::SECURITY_ID, &i.security_id)
            .id(t::SECURITY_ID_SOURCE, &i.id_source);
    }
}

/// "dealer did not answer the hit within <n> ms", built on the stack.
/// The dealer's fill quantities and prices on an ExecutionReport relayed to the desk;
/// LeavesQty, CumQty and AvgPx are required in FIX 4.4, so a missing one is sent as 0.
fn relay_fill_quantities(msg: &Message<'_>, out: &mut Outbox) {
    for tag in [
        t::LAST_QTY,
        t::LAST_PX,
        t::LEAVES_QTY,
        t::CUM_QTY,
        t::AVG_PX,
    ] {
        if let Some(v) = msg.get(tag) {
            out.str(tag, v);
        } else if matches!(tag, t::LEAVES_QTY | t::CUM_QTY | t::AVG_PX) {
            out.str(tag, b"0");
        }
    }
}

fn timeout_text(timeout_ms: u64, buf: &mut [u8; 96]) -> &[u8] {
    let mut digits = [0u8; 20];
    let mut n = 0;
    for part in [
        &b"execution timeout: the dealer did not answer the hit within "[..],
        crate::fix::encode::write_u64(timeout_ms, &mut digits),
        b" ms",
    ] {
        buf[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    &buf[..n]
}

/// A router identifier: `<prefix><seq>-<slot>[-<a>-<b>]`. The slot gives O(1) lookup; the
/// sequence number makes it unique over time (a reused slot has another seq).
fn wire_ref(prefix: &[u8], seq: u64, slot: u32, extra: Option<(usize, u32)>) -> FixId {
    let mut buf = [0u8; 64];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        buf[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    };
    let mut d = [0u8; 20];
    put(prefix);
    put(crate::fix::encode::write_u64(seq, &mut d));
    put(b"-");
    put(crate::fix::encode::write_u64(u64::from(slot), &mut d));
    if let Some((a, b)) = extra {
        put(b"-");
        put(crate::fix::encode::write_u64(a as u64, &mut d));
        put(b"-");
        put(crate::fix::encode::write_u64(u64::from(b), &mut d));
    }
    FixId::new(&buf[..n]).expect("router ids fit in a FixId")
}

/// A parsed router identifier.
struct WireRef {
    seq: u64,
    slot: u32,
    /// (panel index, quote version) or (panel index, report count), when present.
    extra: Option<(usize, u32)>,
}

/// Parses `wire_ref`'s format.
fn parse_wire_ref(prefix: &[u8], v: &[u8]) -> Option<WireRef> {
    let rest = v.strip_prefix(prefix)?;
    let mut parts = rest.split(|&b| b == b'-');
    let seq = parse_u64(parts.next()?)?;
    let slot = u32::try_from(parse_u64(parts.next()?)?).ok()?;
    let extra = match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => Some((
            usize::try_from(parse_u64(a)?).ok()?,
            u32::try_from(parse_u64(b)?).ok()?,
        )),
        (None, None) => None,
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(WireRef { seq, slot, extra })
}
