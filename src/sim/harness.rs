//! The in-process simulation: the real RFQ engine, driven in virtual time by the simulated
//! desk and dealers, one run per selection policy over the same order flow.
//!
//! Owns the event queue of virtual time (desk requests and decisions, dealer answers, leaks,
//! executions, engine timers), the translation between the simulated parties and FIX (every
//! message into the engine is encoded, tokenised and validated against FIX 4.4 exactly as a
//! session would hand it over; every message out of the engine is read back from its
//! outbox), and the tallies the report is built from. No sockets and no threads: a run is a
//! pure function of the configuration and the seed (wall-clock time is read only to time the
//! engine calls for the latency table; it never influences a decision). Must not: reach into
//! the engine's state other than through `Engine::on` and its public accessors.

use super::model::{
    impact_bps, order_flow, reaction, universe, AxePlan, Bond, DealerTruth, MidPaths, Order,
    SimConfig,
};
use super::policy::{BroadcastAll, Oracle, PolicyKind, RandomK, SimulatedPanel, StaticList};
use super::rng::Rng;
use crate::dealers::{Dealer, Dealers};
use crate::fix::validate::Validator;
use crate::fix::{Decoder, Encoder};
use crate::rfq::engine::{Counters, DealerConfig, Engine, EngineConfig, EngineLimits, Event};
use crate::rfq::outbox::{Command, Outbox};
use crate::rfq::types::{DealerId, FixId, SessionId};
use crate::select::feedback::{ScoreUpdate, MAX_SCORE_BATCH};
use crate::select::instruments::SecurityMaster;
use crate::select::model::{metrics, normalise, ModelConfig};
use crate::select::rules::RuleSet;
use crate::select::scored::{load_instruments, load_rules, AnyScores, ScoredPanel, TableScores};
use crate::select::segment::SegmentKey;
use crate::select::table::{ScoreReader, ScoreWriter, TableParams};
use crate::select::tca::{apply, Tca, TcaConfig, TcaFact, TcaOutput};
use crate::select::{Candidate, Panel, Protocol, ProtocolKind, RfqSpec, Selection};
use crate::time::Nanos;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// The desk's session; dealer `d` is session `d + 1`.
pub const DESK_SESSION: u16 = 0;

/// Everything a run needs that does not depend on the policy.
#[derive(Debug, Clone)]
pub struct World {
    pub cfg: Arc<SimConfig>,
    pub master: SecurityMaster,
    pub rules: RuleSet,
    pub bonds: Arc<Vec<Bond>>,
    pub orders: Arc<Vec<Order>>,
    pub dealers: Arc<Vec<DealerTruth>>,
    pub by_id: Arc<HashMap<String, usize>>,
    /// The dealers' axes and the IOIs (35=6) they send.
    pub axes: Arc<AxePlan>,
}

/// Why a world could not be built.
#[derive(Debug)]
pub enum WorldError {
    Instruments(String),
    Rules(String),
    Config(String),
}

impl std::fmt::Display for WorldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorldError::Instruments(e) => write!(f, "security master: {e}"),
            WorldError::Rules(e) => write!(f, "rules: {e}"),
            WorldError::Config(e) => write!(f, "simulation: {e}"),
        }
    }
}

impl std::error::Error for WorldError {}

/// Most dealers a simulation may have (the engine's panel limit bounds broadcast).
pub const MAX_SIM_DEALERS: usize = 32;
/// Most RFQs one run may simulate.
pub const MAX_SIM_RFQS: usize = 1_000_000;

impl World {
    /// The embedded security master and rules (the router's defaults) and `cfg`'s market.
    pub fn new(cfg: SimConfig) -> Result<World, WorldError> {
        let master = load_instruments(None).map_err(|e| WorldError::Instruments(e.to_string()))?;
        let rules = load_rules(None).map_err(|e| WorldError::Rules(e.to_string()))?;
        World::with(cfg, master, rules)
    }

    pub fn with(
        cfg: SimConfig,
        master: SecurityMaster,
        rules: RuleSet,
    ) -> Result<World, WorldError> {
        if cfg.dealers == 0 || cfg.dealers > MAX_SIM_DEALERS {
            return Err(WorldError::Config(format!(
                "dealers must be 1..={MAX_SIM_DEALERS}, not {}",
                cfg.dealers
            )));
        }
        if cfg.rfqs == 0 || cfg.rfqs > MAX_SIM_RFQS {
            return Err(WorldError::Config(format!(
                "rfqs must be 1..={MAX_SIM_RFQS}, not {}",
                cfg.rfqs
            )));
        }
        if master.is_empty() {
            return Err(WorldError::Instruments("no instruments".into()));
        }
        let bonds = universe(&master, &cfg);
        let orders = order_flow(&bonds, &cfg);
        let dealers = cfg.dealer_truths();
        let axes_until = orders.last().map_or(cfg.start_ns, |o| o.at.0)
            + (cfg.desk_window_s.max(0.0) * 1e9) as u64;
        let axes = AxePlan::new(&cfg, &dealers, &bonds, Nanos(axes_until));
        let by_id = bonds
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.clone(), i))
            .collect();
        Ok(World {
            cfg: Arc::new(cfg),
            master,
            rules,
            bonds: Arc::new(bonds),
            orders: Arc::new(orders),
            dealers: Arc::new(dealers),
            by_id: Arc::new(by_id),
            axes: Arc::new(axes),
        })
    }

    /// Dealer `d` holds an axe against `o` (wants the other side) when it arrives.
    pub fn axed(&self, d: usize, o: &Order) -> bool {
        self.axes.against(d, o.bond, o.buy, o.at)
    }

    /// The dealers as the router's engine knows them (dealer `d` on session `d + 1`).
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            dealers: self
                .dealers
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    DealerConfig::new(
                        d.name.clone(),
                        FixId::new(d.name.as_bytes()).expect("short dealer name"),
                        SessionId(i as u16 + 1),
                        1,
                    )
                })
                .collect(),
            desks: vec![SessionId(DESK_SESSION)],
            limits: EngineLimits::default(),
            timer_tick_ms: 10,
        }
    }

    /// The dealer database the router's selection sees: names and specialisms, all tier 1.
    pub fn router_dealers(&self) -> Dealers {
        Dealers {
            dealers: self
                .dealers
                .iter()
                .enumerate()
                .map(|(i, d)| Dealer {
                    legal_entity: format!("{} (simulated)", d.name),
                    ..Dealer::new(
                        d.name.clone(),
                        d.name.clone(),
                        i + 1,
                        1,
                        d.home.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
        }
    }

    /// Seconds of virtual time the order flow spans, plus the longest markout.
    pub fn horizon_s(&self) -> f64 {
        let last = self.orders.last().map_or(self.cfg.start_ns, |o| o.at.0);
        (last - self.cfg.start_ns) as f64 / 1e9
            + 2.0 * self.cfg.markout_horizons_s[2] as f64
            + 600.0
    }

    /// The policy `kind` as a `Panel`, with its protocol forced to `protocol` when given;
    /// the dynamic policy reads its scores from `scores`.
    pub fn policy(
        &self,
        kind: PolicyKind,
        protocol: Option<ProtocolKind>,
        scores: AnyScores,
    ) -> SimulatedPanel<AnyPolicy> {
        let p = Protocol::default();
        let inner = match kind {
            PolicyKind::Dynamic => AnyPolicy::Dynamic(Box::new(ScoredPanel::new(
                self.rules.clone(),
                self.master.clone(),
                &self.router_dealers(),
                scores,
            ))),
            PolicyKind::Static => AnyPolicy::Static(StaticList {
                dealers: self
                    .cfg
                    .static_list
                    .iter()
                    .filter(|&&d| d < self.dealers.len())
                    .map(|&d| DealerId(d as u16))
                    .collect(),
                protocol: p,
            }),
            PolicyKind::Broadcast => AnyPolicy::Broadcast(BroadcastAll { protocol: p }),
            PolicyKind::Random => AnyPolicy::Random(RandomK {
                k: self.cfg.random_k,
                rng: Rng::derive(self.cfg.seed, 0x5A4D, 0, 0),
                protocol: p,
            }),
            PolicyKind::Oracle => AnyPolicy::Oracle(Oracle {
                cfg: self.cfg.clone(),
                dealers: self.dealers.clone(),
                bonds: self.bonds.clone(),
                by_id: self.by_id.clone(),
                axes: self.axes.clone(),
                protocol: p,
            }),
        };
        SimulatedPanel {
            inner,
            kind: protocol,
            time_compression: 1.0,
        }
    }
}

/// The dynamic policy's score source: the score tables the TCA loop writes.
pub type DynamicScores = AnyScores;

/// Segments per dealer in the simulation's score table.
pub const SIM_SEGMENTS_PER_DEALER: u32 = 1024;

/// The router's feedback loop as the simulation runs it: engine TCA facts and the market
/// feed's mids into `select::tca::Tca`, its observations applied to a score table that the
/// dynamic policy's `ScoredPanel` reads.
pub struct Feedback {
    tca: Tca,
    writer: ScoreWriter,
    model: ModelConfig,
    results: Vec<TcaOutput>,
    path: std::path::PathBuf,
    keep: bool,
    /// Observations the table refused (segment slots full).
    pub apply_errors: u64,
    /// Applied since the engine was last told (`Event::ScoreUpdate`), bounded by
    /// `MAX_SCORE_BATCH` (beyond it the selector's cache catches up at its next refresh).
    pending: ScoreUpdate,
}

static TABLE_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Feedback {
    /// A fresh score table at `path` (or a temporary file, removed on drop).
    pub fn new(
        world: &World,
        path: Option<std::path::PathBuf>,
    ) -> Result<Feedback, crate::select::table::TableError> {
        let model = ModelConfig::default();
        let keep = path.is_some();
        let path = path.unwrap_or_else(|| {
            let n = TABLE_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::env::temp_dir().join(format!(
                "rfq-sim-{}-{}-{n}.scores",
                std::process::id(),
                world.cfg.seed
            ))
        });
        let params = TableParams::new(world.dealers.len() as u32, SIM_SEGMENTS_PER_DEALER, &model);
        let writer = ScoreWriter::create(&path, params, Nanos(world.cfg.start_ns))?;
        Ok(Feedback {
            tca: Tca::new(TcaConfig {
                model: model.clone(),
                ..TcaConfig::default()
            }),
            writer,
            model,
            results: Vec::new(),
            path,
            keep,
            apply_errors: 0,
            pending: ScoreUpdate::default(),
        })
    }

    pub fn reader(&self) -> ScoreReader {
        self.writer.reader()
    }

    fn fact(&mut self, f: &TcaFact) {
        self.tca.on_fact(f, &mut self.results);
        self.flush();
    }

    fn advance(&mut self, now: Nanos) {
        self.tca.advance(now, &mut self.results);
        self.flush();
    }

    fn flush(&mut self) {
        for r in self.results.drain(..) {
            if apply(&mut self.writer, &self.model, &r).is_err() {
                self.apply_errors += 1;
            }
            match r {
                TcaOutput::Update(u) if self.pending.updates.len() < MAX_SCORE_BATCH => {
                    self.pending.updates.push(u)
                }
                TcaOutput::Execution(e) if self.pending.executions.len() < MAX_SCORE_BATCH => {
                    self.pending.executions.push(e)
                }
                _ => {}
            }
        }
    }

    /// What the router learned about `dealer` over all its RFQs (the `all` segment).
    pub fn learned(&self, dealer: usize, now: Nanos) -> Option<super::report::Learned> {
        learned_of(&self.writer.reader(), &self.model, dealer, now)
    }
}

/// What a score table says about `dealer` over all its RFQs (the `all` segment) at `now`;
/// None when the table has nothing on it.
pub fn learned_of(
    reader: &ScoreReader,
    model: &ModelConfig,
    dealer: usize,
    now: Nanos,
) -> Option<super::report::Learned> {
    let own = reader
        .find(dealer as u32, SegmentKey::all())
        .ok()
        .flatten()?;
    let pooled = reader
        .find(reader.header().aggregate_dealer(), SegmentKey::all())
        .ok()
        .flatten()
        .unwrap_or_default();
    let m = metrics(&own, &pooled, now, model);
    let s = normalise(&m, model.speed_scale_s);
    Some(super::report::Learned {
        composite: crate::select::model::composite(&s, &model.weights),
        fill_rate: m.fill_rate,
        price_improvement_bps: m.price_improvement_bps,
        markout_bps: m.leakage_markout_bps,
        response_s: m.response_s,
        drift_bps: m.drift_bps,
        observations: m.observations,
    })
}

impl Drop for Feedback {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One of the five policies, as one `Panel` type.
pub enum AnyPolicy {
    Dynamic(Box<ScoredPanel<DynamicScores>>),
    Static(StaticList),
    Broadcast(BroadcastAll),
    Random(RandomK),
    Oracle(Oracle),
}

impl Panel for AnyPolicy {
    fn select(&mut self, spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection) {
        match self {
            AnyPolicy::Dynamic(p) => p.select(spec, candidates, out),
            AnyPolicy::Static(p) => p.select(spec, candidates, out),
            AnyPolicy::Broadcast(p) => p.select(spec, candidates, out),
            AnyPolicy::Random(p) => p.select(spec, candidates, out),
            AnyPolicy::Oracle(p) => p.select(spec, candidates, out),
        }
    }

    fn install_rules(
        &mut self,
        rules: Box<RuleSet>,
    ) -> Result<crate::select::rules::RulesVersion, Box<RuleSet>> {
        match self {
            AnyPolicy::Dynamic(p) => p.install_rules(rules),
            _ => Err(rules),
        }
    }

    fn scores_updated(&mut self, updates: &[crate::select::tca::TcaUpdate], now: Nanos) {
        if let AnyPolicy::Dynamic(p) = self {
            p.scores_updated(updates, now);
        }
    }

    fn score_rows(&mut self, rows: &[crate::select::rows::ScoreRow], now: Nanos) {
        if let AnyPolicy::Dynamic(p) = self {
            p.score_rows(rows, now);
        }
    }

    fn market_mid(
        &mut self,
        instrument: &[u8],
        id_source: Option<&[u8]>,
        mid: f64,
        now: Nanos,
    ) -> Option<u32> {
        match self {
            AnyPolicy::Dynamic(p) => p.market_mid(instrument, id_source, mid, now),
            _ => None,
        }
    }

    fn indication(
        &mut self,
        dealer: DealerId,
        ioi: &crate::select::axes::Indication<'_>,
        now: Nanos,
    ) -> crate::select::axes::IoiOutcome {
        match self {
            AnyPolicy::Dynamic(p) => p.indication(dealer, ioi, now),
            _ => crate::select::axes::IoiOutcome::Ignored,
        }
    }
}

/// What happened to one dealer in one run, measured by the simulator against the truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DealerTally {
    pub asked: u64,
    pub quoted: u64,
    pub declined: u64,
    pub won: u64,
    /// Sum over its quotes of cost vs the true arrival mid, bps.
    pub quote_cost_bps_sum: f64,
    /// Sum over its quotes of response time, seconds.
    pub response_s_sum: f64,
    /// Times it traded ahead, and the adverse move it caused, bps.
    pub leaks: u64,
    pub leak_bps_sum: f64,
}

/// One policy's results over the order flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyResult {
    pub policy: PolicyKind,
    pub label: &'static str,
    pub rfqs: u64,
    pub filled: u64,
    /// Filled RFQs / RFQs.
    pub fill_rate: f64,
    /// Mean over all RFQs of the cost vs arrival, bps: a filled RFQ costs
    /// `dir * (exec_px - arrival_mid) / arrival_mid * 1e4` (the true mid at the desk's
    /// request); one not filled costs what the market moved against the desk until the RFQ
    /// ended plus an average dealer's cost to trade it then (the desk still has to trade).
    pub mean_cost_bps: f64,
    /// Mean over filled RFQs only (flattering to policies that fill less).
    pub mean_cost_filled_bps: f64,
    /// Mean over RFQs of the adverse move caused by asked dealers trading ahead, bps.
    pub leakage_bps: f64,
    /// Mean dealers asked per RFQ.
    pub dealers_asked: f64,
    pub per_dealer: Vec<DealerTally>,
    pub engine: EngineSummary,
    /// What the router learned per dealer (dynamic policy only; empty otherwise).
    pub learned: Vec<Option<super::report::Learned>>,
    /// TCA observations the score table refused (0 unless its segment slots ran out).
    pub score_apply_errors: u64,
    /// Each order's cost in bps, as `mean_cost_bps` averages it (for cost over time).
    #[serde(skip)]
    pub order_cost_bps: Vec<f64>,
}

/// A run's result, its engine-call timings, and the simulator messages the validator
/// refused (0 unless the simulator has a bug).
pub struct RunOutput {
    pub result: PolicyResult,
    pub timings: Timings,
    pub invalid_messages: u64,
}

/// The engine's counters that matter to the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EngineSummary {
    pub rfqs_received: u64,
    pub dealer_requests_sent: u64,
    pub quotes_accepted: u64,
    pub quotes_rejected_late: u64,
    pub declines: u64,
    pub timeouts: u64,
    pub hits: u64,
    pub fills: u64,
    pub expired: u64,
    pub cancelled: u64,
    pub no_quote_ends: u64,
    pub rejected: u64,
    pub auto_executions: u64,
    /// Market-data snapshots the engine used (the dynamic policy's feed).
    pub market_mids: u64,
    /// Dealers' IOIs (35=6) the selector's axe book applied / refused / ignored (only the
    /// dynamic policy keeps axes).
    pub iois_applied: u64,
    pub iois_rejected: u64,
    pub iois_ignored: u64,
}

impl From<&Counters> for EngineSummary {
    fn from(c: &Counters) -> Self {
        EngineSummary {
            rfqs_received: c.rfqs_received,
            dealer_requests_sent: c.dealer_requests_sent,
            quotes_accepted: c.quotes_accepted,
            quotes_rejected_late: c.quotes_rejected_late,
            declines: c.declines,
            timeouts: c.timeouts,
            hits: c.hits,
            fills: c.fills,
            expired: c.expired,
            cancelled: c.cancelled,
            no_quote_ends: c.no_quote_ends,
            rejected: c.rfqs_rejected_invalid + c.rfqs_rejected_limit + c.rfqs_rejected_no_dealer,
            auto_executions: c.auto_executions,
            market_mids: c.market_mids,
            iois_applied: c.iois_applied,
            iois_rejected: c.iois_rejected,
            iois_ignored: c.iois_ignored,
        }
    }
}

/// Wall-clock timings of engine calls during a run (never used for decisions).
#[derive(Debug, Clone)]
pub struct Timings {
    /// Tokenise + validate of each message into the engine, ns.
    pub decode_ns: Histogram<u64>,
    /// `Engine::on` for a desk QuoteRequest (selection, protocol start, encoding), ns.
    pub desk_request_ns: Histogram<u64>,
    /// `Engine::on` for any other message or tick, ns.
    pub other_ns: Histogram<u64>,
}

impl Default for Timings {
    fn default() -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
        Timings {
            decode_ns: h(),
            desk_request_ns: h(),
            other_ns: h(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    DeskRequest(usize),
    DeskDecide(usize),
    DealerAnswer {
        k: usize,
        d: usize,
    },
    Leak {
        k: usize,
        d: usize,
    },
    DealerFill {
        k: usize,
        d: usize,
        exec_ref: Vec<u8>,
        px: Vec<u8>,
    },
    /// The market-data feed publishes every bond's mid.
    Feed,
    /// A dealer sends the IOI `AxePlan::messages[i]`.
    Ioi(usize),
}

impl Ev {
    /// Events that go on whether or not RFQs are open (the feed, dealers' axes).
    fn background(&self) -> bool {
        matches!(self, Ev::Feed | Ev::Ioi(_))
    }
}

/// How often the market-data feed publishes every bond's mid, seconds of virtual time.
pub const FEED_INTERVAL_S: u64 = 10;
/// The feed's bid and offer sit this far either side of its mid, price points.
pub const FEED_HALF_SPREAD_POINTS: f64 = 0.05;

#[derive(Debug, Clone, Default)]
struct RfqState {
    arrival_mid: f64,
    wire_id: Vec<u8>,
    asked: Vec<usize>,
    /// Live quotes relayed to the desk: (router QuoteID, dealer, price).
    quotes: Vec<(Vec<u8>, usize, f64)>,
    decided: bool,
    ended: bool,
    filled_px: Option<f64>,
    winner: Option<usize>,
    leak_bps: f64,
    /// The true mid when the desk decided (or the RFQ ended without a decision).
    end_mid: Option<f64>,
}

/// A message a simulated party sends to the router: the session it comes from, its type,
/// and its body fields (`tag=value<SOH>`...), without the header.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub session: u16,
    pub msg_type: &'static [u8],
    pub body: Vec<u8>,
}

/// Builds a message body.
struct Body(Vec<u8>);

impl Body {
    fn new() -> Body {
        Body(Vec::with_capacity(256))
    }
    fn str(&mut self, tag: u32, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(tag.to_string().as_bytes());
        self.0.push(b'=');
        self.0.extend_from_slice(v);
        self.0.push(crate::fix::SOH);
        self
    }
    fn uint(&mut self, tag: u32, v: u64) -> &mut Self {
        self.str(tag, v.to_string().as_bytes())
    }
    fn char(&mut self, tag: u32, v: u8) -> &mut Self {
        self.str(tag, &[v])
    }
    fn px(&mut self, tag: u32, v: f64) -> &mut Self {
        self.str(tag, format!("{v:.4}").as_bytes())
    }
}

/// The simulated desk, dealers and market around a router, whatever carries the messages:
/// events in virtual time produce `Outgoing` messages; the router's messages come back
/// through `on_router_message`. Used in process (`Run`) and over loopback TCP.
pub struct Market<'w> {
    world: &'w World,
    now: Nanos,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    next_event: u64,
    mids: MidPaths,
    rfqs: Vec<RfqState>,
    wire_to_rfq: HashMap<Vec<u8>, usize>,
    /// Dealer requests whose RFQ the desk has not yet been told about: (dealer, wire id).
    parked: Vec<(usize, Vec<u8>)>,
    tally: Vec<DealerTally>,
    feedback: Option<Feedback>,
    feed_rng: Rng,
    outgoing: Vec<Outgoing>,
    /// Orders to send (a prefix of the world's flow).
    orders: usize,
    /// The market-data feed publishes to the router as a FIX session (35=W).
    feed: bool,
    /// Virtual -> wall time for timestamps inside messages (ValidUntilTime) when the router
    /// runs on the wall clock (loopback): (virtual origin, wall origin, compression).
    wall_clock: Option<(u64, u64, f64)>,
}

fn side_char(o: &Order) -> u8 {
    if o.buy {
        b'1'
    } else {
        b'2'
    }
}

impl<'w> Market<'w> {
    /// The first `orders` orders of the world's flow; with `feedback`, the market-data feed
    /// and the router's TCA loop run too.
    pub fn new(
        world: &'w World,
        orders: usize,
        feedback: Option<Feedback>,
        feed: bool,
    ) -> Market<'w> {
        let orders = orders.min(world.orders.len());
        let mut heap = BinaryHeap::with_capacity(orders * 4);
        for (k, o) in world.orders.iter().take(orders).enumerate() {
            heap.push(Reverse((o.at.0, k as u64, Ev::DeskRequest(k))));
        }
        if feed {
            heap.push(Reverse((world.cfg.start_ns, u64::MAX, Ev::Feed)));
        }
        // The dealers' IOIs, while the desk's orders last.
        let last = world.orders[..orders].last().map_or(0, |o| o.at.0);
        let mut next_event = world.orders.len() as u64;
        for (i, m) in world.axes.messages.iter().enumerate() {
            if m.at.0 <= last {
                next_event += 1;
                heap.push(Reverse((m.at.0, next_event, Ev::Ioi(i))));
            }
        }
        Market {
            now: Nanos(world.cfg.start_ns),
            heap,
            next_event,
            mids: MidPaths::new(&world.bonds, &world.cfg, world.horizon_s()),
            rfqs: vec![RfqState::default(); orders],
            wire_to_rfq: HashMap::new(),
            parked: Vec::new(),
            tally: vec![DealerTally::default(); world.dealers.len()],
            feedback,
            feed_rng: Rng::derive(world.cfg.seed, 0xFEED, 0, 0),
            outgoing: Vec::new(),
            orders,
            feed,
            wall_clock: None,
            world,
        }
    }

    /// Timestamps inside messages (ValidUntilTime) are written in wall time: virtual time
    /// `virtual_origin` is wall time `wall_origin`, and `compression` virtual seconds pass
    /// per wall second (the loopback run).
    pub fn set_wall_clock(&mut self, virtual_origin: Nanos, wall_origin: Nanos, compression: f64) {
        self.wall_clock = Some((virtual_origin.0, wall_origin.0, compression.max(1e-9)));
    }

    /// `t` (virtual) as the router's clock reads it.
    fn stamp(&self, t: Nanos) -> Nanos {
        match self.wall_clock {
            None => t,
            Some((v0, w0, k)) => Nanos(w0 + (t.0.saturating_sub(v0) as f64 / k) as u64),
        }
    }

    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Sets virtual time (never backwards).
    pub fn set_now(&mut self, now: Nanos) {
        self.now = Nanos(now.0.max(self.now.0));
    }

    /// When the next event is due (virtual time).
    pub fn next_due(&self) -> Option<Nanos> {
        self.heap.peek().map(|Reverse((t, _, _))| Nanos(*t))
    }

    /// Every order has been decided or ended, and nothing but the feed is pending.
    pub fn finished(&self) -> bool {
        self.rfqs.iter().all(|r| r.ended || r.filled_px.is_some())
            && self.heap.iter().all(|Reverse((_, _, e))| e.background())
    }

    /// Handles the next event (moving virtual time to it). Returns the desk requests sent
    /// so far when the event was one, for progress.
    pub fn step(&mut self) -> Option<usize> {
        let Reverse((t, _, ev)) = self.heap.pop()?;
        self.set_now(Nanos(t));
        let request = match ev {
            Ev::DeskRequest(k) => Some(k + 1),
            _ => None,
        };
        self.handle(ev);
        request
    }

    /// Messages produced since the last call.
    pub fn take_outgoing(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outgoing)
    }

    /// Score-table updates applied since the last call (for `Event::ScoreUpdate`).
    pub fn take_score_update(&mut self) -> Option<ScoreUpdate> {
        let fb = self.feedback.as_mut()?;
        (!fb.pending.is_empty()).then(|| std::mem::take(&mut fb.pending))
    }

    /// A TCA fact from the engine (in process only).
    pub fn tca_fact(&mut self, fact: &TcaFact) {
        if let Some(fb) = self.feedback.as_mut() {
            fb.fact(fact);
        }
    }

    fn advance_tca(&mut self) {
        let now = self.now;
        if let Some(fb) = self.feedback.as_mut() {
            fb.advance(now);
        }
    }

    fn schedule(&mut self, at: Nanos, ev: Ev) {
        self.next_event += 1;
        self.heap
            .push(Reverse((at.0.max(self.now.0), self.next_event, ev)));
    }

    fn after_s(&self, s: f64) -> Nanos {
        Nanos(self.now.0 + (s.max(0.0) * 1e9) as u64)
    }

    fn send(&mut self, session: u16, msg_type: &'static [u8], body: Body) {
        self.outgoing.push(Outgoing {
            session,
            msg_type,
            body: body.0,
        });
    }

    fn instrument(&self, body: &mut Body, bond: usize) {
        let b = &self.world.bonds[bond];
        body.str(55, b.id.as_bytes())
            .str(48, b.id.as_bytes())
            .str(22, b.id_source.as_bytes());
    }

    fn handle(&mut self, ev: Ev) {
        let cfg = self.world.cfg.clone();
        match ev {
            Ev::DeskRequest(k) => {
                let o = self.world.orders[k];
                self.rfqs[k].arrival_mid = self.mids.mid(o.bond, self.now);
                self.publish_mid(o.bond);
                let mut b = Body::new();
                b.str(131, format!("K{k}").as_bytes()).uint(146, 1);
                self.instrument(&mut b, o.bond);
                b.char(54, side_char(&o)).uint(38, o.qty as u64);
                self.send(DESK_SESSION, b"R", b);
                let at = self.after_s(cfg.desk_window_s);
                self.schedule(at, Ev::DeskDecide(k));
            }
            Ev::DeskDecide(k) => self.desk_decide(k),
            Ev::Feed => {
                for b in 0..self.world.bonds.len() {
                    self.publish_mid(b);
                }
                self.advance_tca();
                if self.heap.iter().any(|Reverse((_, _, e))| !e.background())
                    || self.rfqs.iter().any(|r| !r.ended && r.filled_px.is_none())
                {
                    let at = Nanos(self.now.0 + FEED_INTERVAL_S * Nanos::PER_SEC);
                    self.schedule(at, Ev::Feed);
                }
            }
            Ev::DealerAnswer { k, d } => self.dealer_answer(k, d),
            Ev::Ioi(i) => self.send_ioi(i),
            Ev::Leak { k, d } => {
                let o = self.world.orders[k];
                let r = reaction(
                    &cfg,
                    &self.world.dealers[d],
                    d,
                    &self.world.bonds[o.bond],
                    &o,
                    self.world.axed(d, &o),
                );
                if let Some((_, bps)) = r.leak {
                    self.mids.impulse(o.bond, self.now, o.dir() * bps);
                    self.rfqs[k].leak_bps += bps;
                    self.tally[d].leaks += 1;
                    self.tally[d].leak_bps_sum += bps;
                }
            }
            Ev::DealerFill { k, d, exec_ref, px } => {
                let o = self.world.orders[k];
                let qty = o.qty as u64;
                let mut b = Body::new();
                b.str(37, format!("O{k}").as_bytes())
                    .str(17, format!("X{k}").as_bytes())
                    .char(150, b'F')
                    .char(39, b'2')
                    .str(693, &exec_ref);
                self.instrument(&mut b, o.bond);
                b.char(54, side_char(&o))
                    .uint(32, qty)
                    .str(31, &px)
                    .uint(151, 0)
                    .uint(14, qty)
                    .str(6, &px);
                self.send(d as u16 + 1, b"8", b);
            }
        }
    }

    /// The feed's mid of `bond` now (true mid plus the feed's noise), to the TCA loop.
    /// A MarketDataSnapshotFullRefresh (35=W) on the feed session: a bid and an offer
    /// `FEED_HALF_SPREAD_POINTS` either side of the noisy mid (the router takes their mean).
    fn publish_mid(&mut self, bond: usize) {
        if !self.feed {
            return;
        }
        let noise = self.feed_rng.normal(0.0, self.world.cfg.feed_noise_points);
        let mid = (self.mids.mid(bond, self.now) + noise).max(1.0);
        let mut b = Body::new();
        self.instrument(&mut b, bond);
        b.uint(268, 2)
            .char(269, b'0')
            .px(270, mid - FEED_HALF_SPREAD_POINTS)
            .char(269, b'1')
            .px(270, mid + FEED_HALF_SPREAD_POINTS);
        let session = self.feed_session();
        self.send(session, b"W", b);
    }

    /// A dealer's IndicationOfInterest (35=6): IOIID, IOITransType, IOIRefID, the instrument,
    /// Side (the dealer's), IOIQty, ValidUntilTime (not on a cancel).
    fn send_ioi(&mut self, i: usize) {
        let Some(m) = self.world.axes.messages.get(i) else {
            return;
        };
        let mut b = Body::new();
        b.str(23, m.id.as_bytes()).char(28, m.trans);
        if let Some(r) = &m.ref_id {
            b.str(26, r.as_bytes());
        }
        self.instrument(&mut b, m.bond);
        b.char(54, if m.dealer_buys { b'1' } else { b'2' })
            .uint(27, m.qty as u64);
        if m.trans != b'C' {
            let mut ts = [0u8; crate::time::UTC_TIMESTAMP_MS_LEN];
            let text = crate::time::format_utc_timestamp_ms(self.stamp(m.valid_until), &mut ts);
            b.str(62, text);
        }
        let session = m.dealer as u16 + 1;
        self.send(session, b"6", b);
    }

    /// The feed's session (after the desk and the dealers).
    pub fn feed_session(&self) -> u16 {
        self.world.dealers.len() as u16 + 1
    }

    fn desk_decide(&mut self, k: usize) {
        let o = self.world.orders[k];
        let mid = self.mids.mid(o.bond, self.now);
        let st = &mut self.rfqs[k];
        st.end_mid.get_or_insert(mid);
        if st.ended || st.decided {
            return;
        }
        st.decided = true;
        let arrival = st.arrival_mid;
        let best = st
            .quotes
            .iter()
            .map(|(q, d, px)| (q.clone(), *d, o.dir() * (px - arrival) / arrival * 1e4))
            .filter(|(_, _, c)| *c <= o.limit_bps)
            .min_by(|a, b| a.2.total_cmp(&b.2));
        let mut b = Body::new();
        match best {
            Some((qid, _, _)) => {
                b.str(693, format!("H{k}").as_bytes())
                    .str(117, &qid)
                    .char(694, b'1');
                self.instrument(&mut b, o.bond);
                b.char(54, side_char(&o)).uint(38, o.qty as u64);
                self.send(DESK_SESSION, b"AJ", b);
            }
            None => {
                b.str(131, format!("K{k}").as_bytes())
                    .str(117, format!("K{k}").as_bytes())
                    .char(298, b'1');
                self.send(DESK_SESSION, b"Z", b);
            }
        }
    }

    fn dealer_answer(&mut self, k: usize, d: usize) {
        let cfg = self.world.cfg.clone();
        let o = self.world.orders[k];
        let bond = &self.world.bonds[o.bond];
        let r = reaction(
            &cfg,
            &self.world.dealers[d],
            d,
            bond,
            &o,
            self.world.axed(d, &o),
        );
        let wire = self.rfqs[k].wire_id.clone();
        let mut b = Body::new();
        match r.quote_cost_bps {
            Some(cost) => {
                let mid = self.mids.mid(o.bond, self.now);
                let px = (mid * (1.0 + o.dir() * cost / 1e4)).max(0.01);
                let arrival = self.rfqs[k].arrival_mid;
                self.tally[d].quoted += 1;
                self.tally[d].response_s_sum += r.after_s;
                self.tally[d].quote_cost_bps_sum += o.dir() * (px - arrival) / arrival * 1e4;
                b.str(131, &wire).str(117, format!("q{k}-{d}").as_bytes());
                self.instrument(&mut b, o.bond);
                b.char(54, side_char(&o));
                let (px_tag, size_tag) = if o.buy { (133, 135) } else { (132, 134) };
                b.px(px_tag, px).uint(size_tag, o.qty as u64);
                self.send(d as u16 + 1, b"S", b);
            }
            None => {
                self.tally[d].declined += 1;
                b.str(131, &wire).uint(658, 99).uint(146, 1);
                self.instrument(&mut b, o.bond);
                self.send(d as u16 + 1, b"AG", b);
            }
        }
    }

    /// A message the router sent to `session` (0: the desk; `d + 1`: dealer `d`), with its
    /// fields (header included or not: only body tags are read).
    pub fn on_router_message(&mut self, session: u16, msg_type: &[u8], f: &[(u32, &[u8])]) {
        if session == DESK_SESSION {
            self.for_desk(msg_type, f);
        } else {
            self.for_dealer(usize::from(session) - 1, msg_type, f);
        }
        self.advance_tca();
    }

    fn rfq_of_desk_id(&self, v: Option<&[u8]>) -> Option<usize> {
        let k: usize = std::str::from_utf8(v?.strip_prefix(b"K")?)
            .ok()?
            .parse()
            .ok()?;
        (k < self.rfqs.len()).then_some(k)
    }

    fn dealer_of_party(&self, v: Option<&[u8]>) -> Option<usize> {
        let v = v?;
        self.world
            .dealers
            .iter()
            .position(|d| d.name.as_bytes() == v)
    }

    fn for_desk(&mut self, msg_type: &[u8], f: &[(u32, &[u8])]) {
        match msg_type {
            b"S" => {
                let (Some(k), Some(q), Some(d)) = (
                    self.rfq_of_desk_id(get(f, 131)),
                    get(f, 117),
                    self.dealer_of_party(get(f, 448)),
                ) else {
                    return;
                };
                let o = self.world.orders[k];
                if let Some(px) = num(get(f, if o.buy { 133 } else { 132 })) {
                    let st = &mut self.rfqs[k];
                    st.quotes.retain(|(_, dd, _)| *dd != d);
                    st.quotes.push((q.to_vec(), d, px));
                }
            }
            b"Z" => {
                if let (Some(k), Some(q)) = (self.rfq_of_desk_id(get(f, 131)), get(f, 117)) {
                    self.rfqs[k].quotes.retain(|(qq, _, _)| qq != q);
                }
            }
            b"AI" => {
                let Some(k) = self.rfq_of_desk_id(get(f, 131)) else {
                    return;
                };
                match get(f, 297) {
                    Some(b"0") => {
                        // Accepted: the QuoteID is the router's request id the dealers see.
                        if let Some(wire) = get(f, 117) {
                            self.wire_to_rfq.insert(wire.to_vec(), k);
                            self.rfqs[k].wire_id = wire.to_vec();
                            let parked = std::mem::take(&mut self.parked);
                            for (d, w) in parked {
                                if w == wire {
                                    self.asked(k, d);
                                } else {
                                    self.parked.push((d, w));
                                }
                            }
                        }
                    }
                    Some(b"4") | Some(b"5") | Some(b"7") => self.end(k),
                    _ => {}
                }
            }
            b"AG" => {
                if let Some(k) = self.rfq_of_desk_id(get(f, 131)) {
                    self.end(k);
                }
            }
            b"8" => {
                let by_hit = get(f, 693)
                    .and_then(|v| v.strip_prefix(b"H"))
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<usize>().ok());
                // An auto-execution has no hit of the desk's: its OrderID `O<seq>-<slot>`
                // names the same RFQ as the dealers' request id `R<seq>-<slot>`.
                let by_order = || {
                    let o = get(f, 37)?.strip_prefix(b"O")?;
                    let mut wire = b"R".to_vec();
                    wire.extend_from_slice(o);
                    self.wire_to_rfq.get(&wire).copied()
                };
                let k = by_hit.or_else(by_order).filter(|&k| k < self.rfqs.len());
                let Some(k) = k else { return };
                match get(f, 39) {
                    Some(b"2") => {
                        let Some(px) = num(get(f, 31)).or_else(|| num(get(f, 6))) else {
                            return;
                        };
                        let o = self.world.orders[k];
                        let st = &mut self.rfqs[k];
                        st.filled_px = Some(px);
                        st.ended = true;
                        let imp = impact_bps(&self.world.bonds[o.bond], o.qty, &self.world.cfg);
                        self.mids.impulse(o.bond, self.now, o.dir() * imp);
                    }
                    Some(b"8") => self.end(k),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, k: usize) {
        let mid = self.mids.mid(self.world.orders[k].bond, self.now);
        let st = &mut self.rfqs[k];
        st.ended = true;
        st.end_mid.get_or_insert(mid);
    }

    /// Dealer `d` was asked for order `k`: it will answer, and perhaps trade ahead.
    fn asked(&mut self, k: usize, d: usize) {
        self.rfqs[k].asked.push(d);
        self.tally[d].asked += 1;
        let o = self.world.orders[k];
        let r = reaction(
            &self.world.cfg,
            &self.world.dealers[d],
            d,
            &self.world.bonds[o.bond],
            &o,
            self.world.axed(d, &o),
        );
        let at = self.after_s(r.after_s);
        self.schedule(at, Ev::DealerAnswer { k, d });
        if let Some((after, _)) = r.leak {
            let at = self.after_s(after);
            self.schedule(at, Ev::Leak { k, d });
        }
    }

    fn for_dealer(&mut self, d: usize, msg_type: &[u8], f: &[(u32, &[u8])]) {
        if d >= self.world.dealers.len() {
            return;
        }
        match msg_type {
            b"R" => {
                let Some(wire) = get(f, 131) else { return };
                match self.wire_to_rfq.get(wire) {
                    Some(&k) => self.asked(k, d),
                    // The desk's acknowledgement (which names it) comes after the dealers'
                    // requests: wait for it.
                    None if self.parked.len() < 4 * MAX_SIM_DEALERS * 64 => {
                        self.parked.push((d, wire.to_vec()))
                    }
                    None => {}
                }
            }
            b"AJ" if get(f, 694) == Some(b"1") => {
                let (Some(q), Some(exec_ref), Some(px)) = (get(f, 117), get(f, 693), get(f, 44))
                else {
                    return;
                };
                let k = std::str::from_utf8(q)
                    .ok()
                    .and_then(|q| q.strip_prefix('q'))
                    .and_then(|q| q.split('-').next())
                    .and_then(|k| k.parse::<usize>().ok())
                    .filter(|&k| k < self.rfqs.len());
                let Some(k) = k else { return };
                self.rfqs[k].winner = Some(d);
                let at = Nanos(self.now.0 + self.world.cfg.fill_delay_ms * Nanos::PER_MS);
                self.schedule(
                    at,
                    Ev::DealerFill {
                        k,
                        d,
                        exec_ref: exec_ref.to_vec(),
                        px: px.to_vec(),
                    },
                );
            }
            _ => {}
        }
    }

    /// The results so far, with the engine's counters.
    pub fn result(&mut self, engine: EngineSummary) -> PolicyResult {
        let n = self.rfqs.len().max(1) as f64;
        let mut filled = 0u64;
        let mut cost = 0.0;
        let mut shortfall = 0.0;
        let mut leak = 0.0;
        let mut asked = 0.0;
        let mut tally = self.tally.clone();
        let mut order_cost_bps = Vec::with_capacity(self.rfqs.len());
        for (k, st) in self.rfqs.iter().enumerate() {
            let o = self.world.orders[k];
            leak += st.leak_bps;
            asked += st.asked.len() as f64;
            let order_cost = if let Some(px) = st.filled_px {
                filled += 1;
                let c = o.dir() * (px - st.arrival_mid) / st.arrival_mid * 1e4;
                cost += c;
                if let Some(w) = st.winner {
                    tally[w].won += 1;
                }
                c
            } else {
                // Not done: the desk still has to trade, after the market moved, with an
                // average dealer.
                let bond = &self.world.bonds[o.bond];
                let end = st.end_mid.unwrap_or(st.arrival_mid);
                o.dir() * (end - st.arrival_mid) / st.arrival_mid * 1e4
                    + super::model::base_cost_bps(bond, o.qty, &self.world.cfg)
            };
            shortfall += order_cost;
            order_cost_bps.push(order_cost);
        }
        let mut r = PolicyResult {
            policy: PolicyKind::Dynamic,
            label: "",
            rfqs: self.rfqs.len() as u64,
            filled,
            fill_rate: filled as f64 / n,
            mean_cost_bps: shortfall / n,
            mean_cost_filled_bps: if filled > 0 {
                cost / filled as f64
            } else {
                f64::NAN
            },
            leakage_bps: leak / n,
            dealers_asked: asked / n,
            per_dealer: tally,
            engine,
            learned: Vec::new(),
            score_apply_errors: 0,
            order_cost_bps,
        };
        if let Some(fb) = self.feedback.as_mut() {
            fb.advance(Nanos(self.now.0 + 3_600 * Nanos::PER_SEC));
        }
        if let Some(fb) = &self.feedback {
            r.learned = (0..self.world.dealers.len())
                .map(|d| fb.learned(d, self.now))
                .collect();
            r.score_apply_errors = fb.apply_errors;
        }
        r
    }

    /// The router's request id for order `k` (empty until the desk was told).
    pub fn wire_id(&self, k: usize) -> &[u8] {
        &self.rfqs[k].wire_id
    }

    /// Orders this market sends.
    pub fn orders(&self) -> usize {
        self.orders
    }
}

/// One in-process run of one policy: the market around the real engine, messages encoded,
/// tokenised and validated as a FIX session would hand them over.
pub struct Run<'w, P: Panel> {
    market: Market<'w>,
    engine: Engine<P>,
    out: Outbox,
    encoder: Encoder,
    decoder: Decoder,
    validator: Validator,
    frame: Vec<u8>,
    peer_seq: Vec<u64>,
    peer_names: Vec<String>,
    pub timings: Timings,
    /// Messages the validator refused (a simulator bug if not zero).
    pub invalid_messages: u64,
}

/// The `(tag, value)` pairs of `tag=value<SOH>` text.
pub fn fields(body: &[u8]) -> Vec<(u32, &[u8])> {
    body.split(|&b| b == crate::fix::SOH)
        .filter_map(|f| {
            let eq = f.iter().position(|&b| b == b'=')?;
            let tag = std::str::from_utf8(&f[..eq]).ok()?.parse().ok()?;
            Some((tag, &f[eq + 1..]))
        })
        .collect()
}

/// The first value of `tag`.
pub fn get<'a>(f: &[(u32, &'a [u8])], tag: u32) -> Option<&'a [u8]> {
    f.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

fn num(v: Option<&[u8]>) -> Option<f64> {
    std::str::from_utf8(v?).ok()?.parse().ok()
}

impl<'w, P: Panel> Run<'w, P> {
    pub fn new(world: &'w World, panel: P, feedback: Option<Feedback>) -> Run<'w, P> {
        let start = Nanos(world.cfg.start_ns);
        let mut engine = Engine::new(world.engine_config(), panel, start);
        let feed = world.dealers.len() as u16 + 1;
        engine.set_feed_sessions(&[SessionId(feed)]);
        let mut out = engine.outbox();
        for s in 0..=feed {
            engine.on(start, Event::SessionUp(SessionId(s)), &mut out);
        }
        let mut peer_names = vec!["DESK".to_string()];
        peer_names.extend(world.dealers.iter().map(|d| d.name.clone()));
        peer_names.push("FEED".to_string());
        // Only the dynamic policy (the one with a feedback loop) listens to the feed.
        let with_feed = feedback.is_some();
        Run {
            market: Market::new(world, world.orders.len(), feedback, with_feed),
            engine,
            out,
            encoder: Encoder::new(8192),
            decoder: Decoder::new(512),
            validator: Validator::fix44(),
            frame: Vec::with_capacity(8192),
            peer_seq: vec![1; world.dealers.len() + 2],
            peer_names,
            timings: Timings::default(),
            invalid_messages: 0,
        }
    }

    pub fn engine(&self) -> &Engine<P> {
        &self.engine
    }

    /// Runs to the end; `progress(done)` is called as desk requests go out.
    pub fn run(mut self, mut progress: impl FnMut(usize)) -> RunOutput {
        loop {
            let next_ev = self.market.next_due().map(|t| t.0);
            // Timers fire at the end of every engine call, so a wake-up is always ahead of
            // `now`; `max` keeps virtual time moving whatever the wheel says.
            let now = self.market.now().0;
            let wake = self.engine.next_wakeup().map(|w| w.0.max(now + 1));
            match (next_ev, wake) {
                (None, None) => break,
                (None, Some(w)) => self.tick(Nanos(w)),
                (Some(t), Some(w)) if w < t => self.tick(Nanos(w)),
                (Some(_), _) => {
                    if let Some(n) = self.market.step() {
                        progress(n);
                    }
                    for m in self.market.take_outgoing() {
                        self.deliver(&m);
                    }
                }
            }
        }
        let engine = EngineSummary::from(self.engine.counters());
        RunOutput {
            result: self.market.result(engine),
            timings: self.timings,
            invalid_messages: self.invalid_messages,
        }
    }

    fn tick(&mut self, at: Nanos) {
        self.market.set_now(at);
        let t0 = std::time::Instant::now();
        self.engine.on(at, Event::Tick, &mut self.out);
        let _ = self
            .timings
            .other_ns
            .record((t0.elapsed().as_nanos() as u64).max(1));
        self.drain();
    }

    /// Hands a simulated party's message to the engine as its FIX session would
    /// (tokenised and validated), and reads the engine's output.
    fn deliver(&mut self, m: &Outgoing) {
        let s = usize::from(m.session);
        let now = self.market.now();
        self.encoder
            .start(m.msg_type)
            .uint(34, self.peer_seq[s])
            .str(49, self.peer_names[s].as_bytes())
            .timestamp(52, now)
            .str(56, b"ROUTER")
            .raw(&m.body);
        self.peer_seq[s] += 1;
        let Ok(frame) = self.encoder.finish() else {
            self.invalid_messages += 1;
            return;
        };
        self.frame.clear();
        self.frame.extend_from_slice(frame);
        let t0 = std::time::Instant::now();
        let Ok(mut msg) = self.decoder.decode(&self.frame) else {
            self.invalid_messages += 1;
            return;
        };
        if self.validator.validate(&mut msg).is_err() {
            self.invalid_messages += 1;
            return;
        }
        let t1 = std::time::Instant::now();
        let _ = self
            .timings
            .decode_ns
            .record(((t1 - t0).as_nanos() as u64).max(1));
        self.engine.on(
            now,
            Event::Fix {
                session: SessionId(m.session),
                msg: &msg,
            },
            &mut self.out,
        );
        let spent = (t1.elapsed().as_nanos() as u64).max(1);
        let h = if m.msg_type == b"R" {
            &mut self.timings.desk_request_ns
        } else {
            &mut self.timings.other_ns
        };
        let _ = h.record(spent);
        self.drain();
    }

    /// Reads the engine's outbox: messages to the desk and to dealers, TCA facts.
    fn drain(&mut self) {
        let mut msgs: Vec<(u16, Vec<u8>, Vec<u8>)> = Vec::new();
        for c in self.out.commands() {
            match c {
                Command::Send {
                    session,
                    msg_type,
                    body,
                } => msgs.push((session.0, msg_type.to_vec(), self.out.body(body).to_vec())),
                Command::Tca(fact) => self.market.tca_fact(fact),
                _ => {}
            }
        }
        for (session, msg_type, body) in msgs {
            self.market
                .on_router_message(session, &msg_type, &fields(&body));
        }
        // As the scoring thread does in the router: tell the engine what the tables now hold
        // (its selector refreshes those dealers' cached scores).
        if let Some(u) = self.market.take_score_update() {
            let now = self.market.now();
            self.engine.on(now, Event::ScoreUpdate(&u), &mut self.out);
            self.drain();
        }
    }
}

/// Why a run could not start.
#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// Runs policy `kind` over the world's order flow. The dynamic policy learns through the TCA
/// loop into a score table at `scores_path` (a temporary file when `None`).
pub fn run_policy(
    world: &World,
    kind: PolicyKind,
    protocol: Option<ProtocolKind>,
    scores_path: Option<std::path::PathBuf>,
    progress: impl FnMut(usize),
) -> Result<RunOutput, RunError> {
    let (feedback, scores) = if kind == PolicyKind::Dynamic {
        let fb = Feedback::new(world, scores_path).map_err(|e| RunError(e.to_string()))?;
        let scores = AnyScores::Table(TableScores::new(fb.reader(), fb.model.clone()));
        (Some(fb), scores)
    } else {
        (
            None,
            AnyScores::Neutral(crate::select::scored::NeutralScores),
        )
    };
    let run = Run::new(world, world.policy(kind, protocol, scores), feedback);
    let mut out = run.run(progress);
    out.result.policy = kind;
    out.result.label = kind.label();
    Ok(out)
}
