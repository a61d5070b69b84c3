//! Transaction-cost analysis: the facts the engine reports about every RFQ, and the pure
//! `Tca` that turns them, with market mids, into per-dealer observations for the score tables.
//!
//! Owns the engine -> scoring interface ([`TcaFact`], carried by `rfq::outbox::Command::Tca`),
//! the TCA arithmetic of DESIGN section 7 (arrival mid, implementation shortfall, price
//! improvement vs arrival and vs cover, the winner's markouts at each configured horizon,
//! response times, fills and declines), what feeds the price, winner-leakage and
//! loser-leakage scores (each quote against its RFQ's other quotes; the winner's markout net
//! of the desk's own impact; the drift while a request is out, attributed among the dealers
//! asked: see "What feeds the score" below), its own markout timers, and applying
//! the results to a `table::ScoreWriter`. Must not: read the
//! clock (every fact carries its `now`; `advance(now)` is time passing), do I/O (applying to
//! the tables writes shared memory only), or grow without bound (open RFQs, pending timers and
//! the mid table have configured limits; past one, the fact is dropped and counted).
//!
//! # Driving it (one thread, virtual time)
//!
//! ```text
//! let mut engine = Engine::new(cfg, panel, t0);
//! let mut tca = Tca::new(TcaConfig::default());
//! let mut results = Vec::new();
//! // for every event at virtual time `now`:
//! engine.on(now, event, &mut out);
//! for c in out.commands() {
//!     if let Command::Tca(fact) = c { tca.on_fact(fact, &mut results); }
//! }
//! tca.advance(now, &mut results);            // markout/drift timers due at or before `now`
//! for r in results.drain(..) { apply(&mut writer, &model, &r); /* and/or journal r */ }
//! ```
//!
//! Market mids reach `Tca` as `TcaFact::Mid` (the engine forwards each feed snapshot; a
//! simulation may also call `on_fact(&TcaFact::Mid { .. })` itself). Facts must arrive in
//! the order of their `now` (the engine emits them that way); `on_fact` first fires every
//! timer due strictly before the fact's `now`, so a markout due at `T` uses the last mid
//! received with a time at or before `T` (provided `advance` or a later fact comes after it).
//! `next_due()` says when `advance` must be called at the latest. Everything is
//! deterministic: the same facts in the same order give the same results, bit for bit.
//!
//! # What comes out ([`TcaOutput`])
//!
//! - `Update(TcaUpdate)`: one `model::Observation` for one dealer in one RFQ's segments, at
//!   a time: RfqSent (asked), Quoted/Declined with the response time, LateOrInvalid, Won
//!   (price improvement vs arrival, vs cover), Markout at horizon i (winner), NetMarkout
//!   (winner, after the leakage horizon's window closes), and when the RFQ ends
//!   Competitiveness (each firm quote) and Drift (each dealer asked who did not win).
//!   `apply` adds it to the dealer's rows in every segment of the order and to the pooled
//!   (aggregate) rows.
//! - `Execution(ExecutionTca)`: the summary of one executed RFQ (arrival mid, shortfall,
//!   improvement vs arrival and cover), for the journal and reports.
//!
//! # Sign conventions (DESIGN section 7), `dir` = +1 buy, -1 sell, all in bps
//!
//! - price improvement = `dir * (arrival_mid - exec_px) / arrival_mid * 1e4` (> 0: better
//!   than the mid when the RFQ arrived); implementation shortfall is its negative (a cost).
//! - vs cover = `dir * (cover_px - exec_px) / cover_px * 1e4` (> 0: beat the second-best).
//! - winner's markout at h = `dir * (mid(t_exec + h) - exec_px) / exec_px * 1e4` (< 0: the
//!   price reverted; the client paid a temporary premium).
//! - winner's net markout = the same at the leakage horizon with `mid(t_exec + h)` replaced
//!   by `mean_k(print_k * exp(-D(t_k))) * exp(D(t_exec-))` over the prints within
//!   `net_markout_window_s / 2` of `t_exec + h` (none: the latest print before, if fresh), where `D(t)` = the desk's lasting impact in
//!   the bond up to `t` (`sum dir_e * impact_lasting_share * impact_bps_e` over its
//!   executions, bps / 1e4): the move the desk's own trades (this one included) explain is
//!   taken out; the end mid is also multiplied by `exp(dir * ((1 - s) * L_before - s *
//!   L_after) / 1e4)`, `s` = `impact_lasting_share`, `L_before` / `L_after` the summed leakage
//!   estimates of the other dealers asked that answered before the winner's quote / did not.
//! - competitiveness of a quote = `dir * (peers - px') / peers * 1e4`, `px' = px * exp(-dir *
//!   L_before / 1e4)` (the quote cleared of the leakage estimates of the other dealers asked
//!   that answered before it), `peers` the mean of the other dealers' latest firm quotes in
//!   the RFQ, each cleared the same way (> 0: better than its peers; 0 alone).
//! - drift of the RFQ = `dir * (end - start) / start * 1e4`, `start` the smoothed mid at the
//!   opening, `end` the mean of the prints after it and before the execution (or the end
//!   without a trade) (> 0: the market moved the way the client trades, against it, while
//!   the request was out); an asked loser's `Drift` is that less the leakage estimates of the
//!   other dealers asked.
//!
//! # What feeds the score (and why it is not DESIGN's reported TCA)
//!
//! DESIGN section 7's figures stay what is reported (`ExecutionTca`: improvement vs arrival
//! and vs cover; the winner's markouts, in the rows' `markout_bps_sum`). The composite reads
//! three measurements that the
//! simulated yardstick (`tests/sim_yardstick.rs`) showed DESIGN's could not separate:
//! - Price: the improvement vs arrival on wins carries the arrival print's noise (~30 bps in
//!   the simulator's feed), the bond and size's cost, and the leaks that moved the mid before
//!   a slow dealer quoted, so a fast leaky dealer looked as good as a slow sharp one. A
//!   quote against its RFQ's other quotes cancels everything common to the RFQ, and counting
//!   every firm quote (not only wins) removes the winner selection. A quote that comes after
//!   another asked dealer's leak is priced off the moved mid: a slow quote carried the leaks
//!   of the fast dealers asked with it (about a third of the true cost gap in the simulator),
//!   and a fast leaky dealer's own leak made its slower peers look worse. So each quote is
//!   first cleared of the leakage estimates (below) of the other dealers asked that answered
//!   (quoted or declined) before it. The timing is a proxy: the router cannot see when a
//!   dealer trades ahead, only when it has priced the order; a leak that lands after its
//!   dealer answers is cleared from quotes it did not touch, one that lands before is missed
//!   for the quotes between. What stays: a dealer asked with sharp peers looks a little
//!   worse (no per-dealer fixed effects).
//! - Leakage: DESIGN's loser drift over 30 minutes charges each loser the whole move, and in
//!   30 minutes the desk's other trades in the bond (in the simulation ~5.5 of them, ~35 bps
//!   of impact each) swamp a leak of a few bps. The move while the request is out holds the
//!   leak in full and almost nothing else (no client trade yet, ~0.09 other trades, ~2 bps of
//!   walk); its start is smoothed (`MID_SMOOTHING_S`) and its end is a mean of prints. One
//!   RFQ cannot say which asked dealer leaked (DESIGN section 7), so it is attributed across
//!   RFQs by backfitting: each asked dealer's share is the drift less the current estimates
//!   of the others asked, and that share updates its own estimate (bounded, per dealer,
//!   decayed with the model's half-life, shrunk toward 0 by `prior_strength`), which tends
//!   to the least-squares fit of drift on who was asked.
//! - Winner's leakage: DESIGN's 30-minute markout has the drift's flaw: in 30 minutes the
//!   desk's other trades in the bond (~5.5, ~35 bps each) and the client's own impact move
//!   the mid, and it ends on one print (~30 bps of noise): learned markouts were +-27 bps of
//!   noise. The router routed those trades and knows their expected impact
//!   (`RfqContext::impact_bps`), so the net markout takes their lasting share
//!   (`IMPACT_LASTING_SHARE`) out, and ends on the mean of the prints in a window centred on
//!   the horizon (`NET_MARKOUT_WINDOW_S`). What stays: the walk, other RFQs' leaks, the
//!   impact model's error, and the winner's cost (the simulator's winners do not trade after
//!   the fill, so there the net markout is ~ minus the cost). The other dealers asked in the
//!   same RFQ are taken out too, with the same timing proxy as the price: the lasting share
//!   of the estimated leaks of those that answered after the winner's quote (the end mid
//!   holds them, the price does not: a fast winner looked better by them), and the reverted
//!   share of those that answered before it (the price holds them in full, the end mid only
//!   their lasting share: a slow winner looked worse).

use crate::rfq::outbox::MAX_PANEL;
use crate::rfq::types::{DealerId, Side};
use crate::select::model::{
    drift_bps, markout_bps, price_improvement_bps, quote_vs_peers_bps, vs_cover_bps, Direction,
    ModelConfig, Observation, ObservationError, MARKOUT_HORIZONS,
};
use crate::select::segment::{SegmentKey, SegmentKeys};
use crate::select::table::{PlaceError, ScoreWriter};
use crate::time::Nanos;
use smallvec::SmallVec;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// What selection knew about an RFQ's order, kept with the RFQ for its feedback: the
/// security-master index of the instrument (the mid table's key), the segments its scores
/// were read from (and so must be written to), and the expected market impact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RfqContext {
    /// Index into the security master (`SecurityMaster::instruments()`).
    pub instrument: u32,
    pub keys: SegmentKeys,
    /// Pre-trade expected impact of the order, bps (0 when unknown). Once executed, its
    /// lasting share is taken out of the net markouts of this and later executions in the
    /// bond (`IMPACT_LASTING_SHARE`); the leakage drift ends before the client's own trade.
    pub impact_bps: f64,
}

/// The dealers an RFQ asked.
pub type AskedDealers = SmallVec<[DealerId; MAX_PANEL]>;

/// One thing the engine saw that scoring needs. Produced on the engine thread without
/// allocation (`AskedDealers` is inline); `rfq` is the engine's RFQ sequence number (the one
/// in `Record::Decision`), which links the facts of one RFQ leg.
#[derive(Debug, Clone, PartialEq)]
pub enum TcaFact {
    /// An RFQ leg was opened: its order and the mid when it arrived (NaN: none known).
    Opened {
        rfq: u64,
        context: Option<RfqContext>,
        side: Option<Side>,
        qty: f64,
        arrival_mid: f64,
        now: Nanos,
    },
    /// A dealer was sent the request.
    Asked {
        rfq: u64,
        dealer: DealerId,
        now: Nanos,
    },
    /// A firm quote was accepted; `px` is the price on the desk's side (the offer for a buy,
    /// the bid for a sell; the mid of the two for a two-sided request).
    Quoted {
        rfq: u64,
        dealer: DealerId,
        px: f64,
        now: Nanos,
    },
    /// The dealer declined (QuoteRequestReject, or refused the hit).
    Declined {
        rfq: u64,
        dealer: DealerId,
        now: Nanos,
    },
    /// The dealer did not answer within its response timeout.
    TimedOut {
        rfq: u64,
        dealer: DealerId,
        now: Nanos,
    },
    /// A quote came after the request had closed for the dealer, or failed validation.
    LateOrInvalid {
        rfq: u64,
        dealer: DealerId,
        now: Nanos,
    },
    /// The winner's execution: price and quantity filled.
    Executed {
        rfq: u64,
        dealer: DealerId,
        px: f64,
        qty: f64,
        now: Nanos,
    },
    /// The RFQ leg ended: who was asked, who won (None: no trade), and the cover (the best
    /// quote among the losers on the desk's side; NaN: none).
    Finished {
        rfq: u64,
        asked: AskedDealers,
        winner: Option<DealerId>,
        cover_px: f64,
        now: Nanos,
    },
    /// A market mid for an instrument (security-master index).
    Mid {
        instrument: u32,
        mid: f64,
        now: Nanos,
    },
}

impl TcaFact {
    /// When the fact happened.
    pub fn now(&self) -> Nanos {
        match self {
            TcaFact::Opened { now, .. }
            | TcaFact::Asked { now, .. }
            | TcaFact::Quoted { now, .. }
            | TcaFact::Declined { now, .. }
            | TcaFact::TimedOut { now, .. }
            | TcaFact::LateOrInvalid { now, .. }
            | TcaFact::Executed { now, .. }
            | TcaFact::Finished { now, .. }
            | TcaFact::Mid { now, .. } => *now,
        }
    }
}

/// One observation for one dealer, to be added to its rows in `keys`' segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcaUpdate {
    pub rfq: u64,
    pub dealer: DealerId,
    /// The order's segments (None: no security master entry; only the `all` segment).
    pub keys: Option<SegmentKeys>,
    pub obs: Observation,
    /// When the observation was made (the row decays from here).
    pub at: Nanos,
}

/// The cost analysis of one executed RFQ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutionTca {
    pub rfq: u64,
    pub dealer: DealerId,
    pub side: Side,
    pub qty: f64,
    /// NaN when no mid was known at arrival (the bps figures are then NaN too).
    pub arrival_mid: f64,
    pub exec_px: f64,
    /// `-price_improvement_bps`: the cost against the arrival mid (> 0: paid away).
    pub shortfall_bps: f64,
    pub price_improvement_bps: f64,
    /// NaN without a cover quote.
    pub cover_px: f64,
    pub vs_cover_bps: f64,
    pub at: Nanos,
}

/// A result of `Tca`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TcaOutput {
    Update(TcaUpdate),
    Execution(ExecutionTca),
}

/// Limits and horizons.
#[derive(Debug, Clone, PartialEq)]
pub struct TcaConfig {
    /// Markout horizons and the leakage (drift) horizon come from here.
    pub model: ModelConfig,
    /// RFQs tracked at once (opened, not yet finished).
    pub max_open_rfqs: usize,
    /// Markout and drift measurements waiting for their horizon.
    pub max_pending: usize,
    /// Size of the mid table (security-master indices at or above it are dropped).
    pub max_instruments: usize,
    /// A mid older than this at a horizon is not used (the measurement is skipped, counted).
    pub max_mid_age_s: u64,
    /// Time constant of the smoothed mid the leakage drift starts from (the RFQ's opening),
    /// seconds (0: the latest mid, unsmoothed). See `MID_SMOOTHING_S` for the value.
    pub mid_smoothing_s: u64,
    /// Dealers whose leakage is estimated for attribution (DealerId below this); others are
    /// charged the RFQ's drift less the estimates of those tracked, and counted.
    pub max_dealers: usize,
    /// Width of the window of prints, centred on the leakage horizon, whose mean is the net
    /// markout's end mid, seconds (the measurement is made half of it after the horizon).
    /// See `NET_MARKOUT_WINDOW_S`.
    pub net_markout_window_s: u64,
    /// Share of an execution's expected impact (`RfqContext::impact_bps`) taken as lasting
    /// when the net markout takes the desk's own executions out. See `IMPACT_LASTING_SHARE`.
    pub impact_lasting_share: f64,
}

impl Default for TcaConfig {
    fn default() -> Self {
        TcaConfig {
            model: ModelConfig::default(),
            max_open_rfqs: 16_384,
            max_pending: 262_144,
            max_instruments: 500_000,
            max_mid_age_s: 3_600,
            mid_smoothing_s: MID_SMOOTHING_S,
            max_dealers: 4_096,
            net_markout_window_s: NET_MARKOUT_WINDOW_S,
            impact_lasting_share: IMPACT_LASTING_SHARE,
        }
    }
}

/// What `Tca` dropped or skipped, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcaCounters {
    pub facts: u64,
    pub opened: u64,
    pub finished: u64,
    pub executions: u64,
    pub markouts: u64,
    /// Net markouts measured (the composite's winner-leakage input).
    pub net_markouts: u64,
    pub drifts: u64,
    /// Opened facts dropped: `max_open_rfqs` reached.
    pub open_full: u64,
    /// Measurements dropped: `max_pending` reached.
    pub pending_full: u64,
    /// Facts about an RFQ it does not track (never opened here, or dropped).
    pub unknown_rfq: u64,
    /// Mids dropped: index beyond `max_instruments` or not a positive finite price.
    pub bad_mids: u64,
    /// Measurements skipped: no mid, or one older than `max_mid_age_s`, at the horizon.
    pub no_mid: u64,
    /// Drift observations for a dealer at or past `max_dealers` (no leakage estimate kept).
    pub untracked_dealers: u64,
}

/// The default `TcaConfig::mid_smoothing_s`: 30 s. Derived from the feed and the flow, not
/// tuned: with independent print noise `s_n` every `d` seconds and a mid moving with variance
/// `s_w^2` per second, an exponentially weighted mid with time constant `tau` has noise
/// variance about `s_n^2 d / (2 tau)` and lag error about `s_w^2 tau`, least at
/// `tau* = s_n sqrt(d / 2) / s_w`. The simulator's feed prints every 10 s with 0.3 points
/// (~30 bps) of noise; the mid moves with the walk (~0.15 bps^2/s) and, mostly, with the
/// desk's other trades in the bond (~0.003 per second, ~35 bps each: ~4.8 bps^2/s), so
/// `tau*` ~ 31 s. A real composite feed prints more often with autocorrelated noise: the
/// smoothing then gains less, never nothing.
pub const MID_SMOOTHING_S: u64 = 30;

/// The default `TcaConfig::net_markout_window_s`: 300 s (+-150 s around the horizon).
/// Derived, not tuned: a mean of prints every `d` seconds with noise `s_n`, over a window `W`
/// centred on the horizon, errs by about `s_n^2 d / W` (the prints) `+ q W / 12` (a path
/// moving at `q` bps^2/s, against its value at the centre), least at
/// `W* = sqrt(12 s_n^2 d / q)`. With the desk's own trades taken out, the simulator's mid
/// moves with the walk (0.07-0.35 bps^2/s) and other RFQs' leaks (~0.1): `W*` ~ 520-735 s
/// and ~5 bps of error. Capped at a sixth of the 30-minute horizon so the window stays
/// narrow against the time it stands for: ~6 bps, under 1 bp worse than `W*`.
pub const NET_MARKOUT_WINDOW_S: u64 = 300;

/// The default `TcaConfig::impact_lasting_share`: 2/3, the published figure ("impact relaxes
/// to about 2/3 of its peak after the trade", Zarinelli et al.; `shared/notes/
/// market-figures.md`). The router has no decay model: a later trade's transient part is
/// not modelled (at most 1/3 of its impact, ~0.14 of it on average over 30 minutes).
pub const IMPACT_LASTING_SHARE: f64 = 2.0 / 3.0;

#[derive(Debug, Clone, Copy)]
struct AskedSlot {
    dealer: DealerId,
    asked_at: Nanos,
    answered: bool,
    /// When it first quoted or declined (None: not yet, or it timed out): the leak-timing
    /// proxy (a dealer's leak is taken to land by the time it has answered).
    answered_at: Option<Nanos>,
    /// The dealer's latest firm quote in time (NaN: none), and when it came.
    quote_px: f64,
    quote_at: Nanos,
}

#[derive(Debug, Clone)]
struct OpenRfq {
    context: Option<RfqContext>,
    side: Option<Side>,
    opened: Nanos,
    arrival_mid: f64,
    /// The smoothed mid when the RFQ opened (the leakage drift's start; NaN: none).
    drift_start_mid: f64,
    /// The instrument's print totals when the RFQ opened, and when it was executed: the
    /// leakage drift ends at the mean of the prints in between.
    prints_at_open: PrintTotals,
    prints_at_exec: Option<PrintTotals>,
    /// The instrument's desk impact (`Tca::desk_impact_bps`) just before this RFQ's execution
    /// (the net markout's reference; 0 before one).
    impact_before_exec_bps: f64,
    asked: SmallVec<[AskedSlot; MAX_PANEL]>,
    exec: Option<(DealerId, f64, f64, Nanos)>,
}

/// The execution a markout is measured for.
#[derive(Debug, Clone, Copy)]
struct Fill {
    rfq: u64,
    dealer: DealerId,
    keys: Option<SegmentKeys>,
    instrument: u32,
    dir: Direction,
    exec_px: f64,
}

#[derive(Debug, Clone)]
enum Measure {
    Markout {
        fill: Fill,
        horizon: usize,
    },
    /// The net markout's window opens: read the netted print totals, then wait for `close_at`.
    NetMarkoutOpen {
        net: NetMarkout,
        close_at: Nanos,
    },
    /// The net markout's window closes: the mean of the netted prints since `from`.
    NetMarkoutClose {
        net: NetMarkout,
        from: PrintTotals,
    },
}

/// What a net markout needs from its execution.
#[derive(Debug, Clone)]
struct NetMarkout {
    fill: Fill,
    /// The end mid (the window's netted prints) is multiplied by `exp(end_adjust_bps / 1e4)`
    /// (bps, + : raised): the instrument's desk impact just before the execution, plus what
    /// the other asked dealers' estimated leaks did to the end mid against the execution
    /// price, taken out: `dir x ((1 - s) x before - s x after)`, `s` =
    /// `impact_lasting_share`, `before` / `after` the sums of the estimates of those that
    /// answered before the winner's quote / the rest (`Tca::leak_timing_bps`).
    end_adjust_bps: f64,
}

#[derive(Debug, Clone)]
struct Due {
    at: Nanos,
    seq: u64,
    what: Measure,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest (then first scheduled) is wanted.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug, Clone, Copy)]
struct MidAt {
    mid: f64,
    at: Nanos,
    /// Exponentially weighted mid, time constant `TcaConfig::mid_smoothing_s`.
    smooth: f64,
    /// Every valid print of the instrument so far: their sum and count (a window's mean is
    /// the difference of two readings).
    prints_sum: f64,
    prints_n: u64,
    /// The same prints, each with the desk's lasting impact at its time taken out
    /// (`print * exp(-desk_impact_bps / 1e4)`), summed: the net markout's window mean.
    netted_sum: f64,
    /// The latest print, netted the same way (a net markout's end when its window has none).
    netted: f64,
}

/// A reading of an instrument's print totals (`MidAt::prints_sum`, `prints_n`).
#[derive(Debug, Clone, Copy, Default)]
struct PrintTotals {
    sum: f64,
    n: u64,
}

impl PrintTotals {
    /// The mean of the prints between `self` and the later reading `to`.
    fn mean_until(&self, to: PrintTotals) -> Option<f64> {
        let n = to.n.checked_sub(self.n).filter(|&n| n > 0)?;
        Some((to.sum - self.sum) / n as f64)
    }
}

/// One dealer's estimated leakage: the drift (bps) it adds to an RFQ it is asked for, a
/// decayed mean shrunk toward 0 (`ModelConfig::prior_strength` pseudo-observations of 0).
#[derive(Debug, Clone, Copy, Default)]
struct LeakEstimate {
    sum_bps: f64,
    n: f64,
    last_ns: u64,
}

impl LeakEstimate {
    fn bps(&self, prior_strength: f64) -> f64 {
        let d = self.n + prior_strength;
        if d > 0.0 {
            self.sum_bps / d
        } else {
            0.0
        }
    }

    fn add(&mut self, bps: f64, at: Nanos, half_life_ns: f64) {
        if at.0 > self.last_ns && self.last_ns != 0 {
            let f = crate::select::model::decay_factor(at.0 - self.last_ns, half_life_ns);
            self.sum_bps *= f;
            self.n *= f;
        }
        self.last_ns = self.last_ns.max(at.0);
        self.sum_bps += bps;
        self.n += 1.0;
    }
}

/// The TCA state machine. Pure: no clock, no I/O. Runs on the scoring thread in the router,
/// or beside the engine in a simulation.
#[derive(Debug)]
pub struct Tca {
    cfg: TcaConfig,
    open: HashMap<u64, OpenRfq>,
    pending: BinaryHeap<Due>,
    next_seq: u64,
    mids: Vec<Option<MidAt>>,
    /// Per dealer (index `DealerId`, below `max_dealers`): the leakage attribution's estimates.
    leak: Vec<LeakEstimate>,
    /// Per instrument (index below `max_instruments`): the desk's executions' expected lasting
    /// impact so far, `sum dir x impact_lasting_share x impact_bps`, bps (+: the mid up).
    desk_impact_bps: Vec<f64>,
    counters: TcaCounters,
}

fn direction(side: Side) -> Direction {
    match side {
        Side::Buy => Direction::Buy,
        Side::Sell => Direction::Sell,
    }
}

fn finite_or_nan(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::NAN)
}

impl Tca {
    /// `cfg.model` must be valid (`ModelConfig::validate`); asserted, as it is checked when
    /// the configuration loads.
    pub fn new(cfg: TcaConfig) -> Tca {
        assert!(
            cfg.model.validate().is_ok(),
            "TCA needs a validated model configuration"
        );
        Tca {
            open: HashMap::with_capacity(cfg.max_open_rfqs.min(1 << 16)),
            pending: BinaryHeap::new(),
            next_seq: 0,
            mids: vec![None; cfg.max_instruments],
            leak: vec![LeakEstimate::default(); cfg.max_dealers],
            desk_impact_bps: vec![0.0; cfg.max_instruments],
            counters: TcaCounters::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &TcaConfig {
        &self.cfg
    }

    pub fn counters(&self) -> TcaCounters {
        self.counters
    }

    /// RFQs opened and not finished.
    pub fn open_rfqs(&self) -> usize {
        self.open.len()
    }

    /// Measurements waiting for their horizon.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The latest mid of an instrument, and when it was seen.
    pub fn mid(&self, instrument: u32) -> Option<(f64, Nanos)> {
        self.mids
            .get(instrument as usize)
            .copied()
            .flatten()
            .map(|m| (m.mid, m.at))
    }

    /// When `advance` must next be called (the earliest pending horizon).
    pub fn next_due(&self) -> Option<Nanos> {
        self.pending.peek().map(|d| d.at)
    }

    /// Time has reached `now`: measures everything due at or before it.
    pub fn advance(&mut self, now: Nanos, out: &mut Vec<TcaOutput>) {
        while self.pending.peek().is_some_and(|d| d.at <= now) {
            let due = self.pending.pop().expect("peeked");
            self.measure(due, out);
        }
    }

    fn advance_before(&mut self, now: Nanos, out: &mut Vec<TcaOutput>) {
        while self.pending.peek().is_some_and(|d| d.at < now) {
            let due = self.pending.pop().expect("peeked");
            self.measure(due, out);
        }
    }

    /// Takes one fact; results are appended to `out`.
    pub fn on_fact(&mut self, fact: &TcaFact, out: &mut Vec<TcaOutput>) {
        self.counters.facts += 1;
        self.advance_before(fact.now(), out);
        match *fact {
            TcaFact::Mid {
                instrument,
                mid,
                now,
            } => {
                let tau_ns = self.cfg.mid_smoothing_s as f64 * 1e9;
                match self.mids.get_mut(instrument as usize) {
                    Some(slot) if mid.is_finite() && mid > 0.0 => {
                        let smooth = match *slot {
                            Some(prev) if tau_ns > 0.0 => {
                                let dt = now.saturating_sub(prev.at).0 as f64;
                                let alpha = 1.0 - (-dt / tau_ns).exp();
                                prev.smooth + alpha * (mid - prev.smooth)
                            }
                            _ => mid,
                        };
                        let (sum, n, netted) = slot
                            .map_or((0.0, 0, 0.0), |p| (p.prints_sum, p.prints_n, p.netted_sum));
                        let impact = self
                            .desk_impact_bps
                            .get(instrument as usize)
                            .copied()
                            .unwrap_or(0.0);
                        let netted_now = mid * (-impact / 1e4).exp();
                        *slot = Some(MidAt {
                            mid,
                            at: now,
                            smooth,
                            prints_sum: sum + mid,
                            prints_n: n + 1,
                            netted_sum: netted + netted_now,
                            netted: netted_now,
                        });
                    }
                    _ => self.counters.bad_mids += 1,
                }
            }
            TcaFact::Opened {
                rfq,
                context,
                side,
                arrival_mid,
                now,
                ..
            } => {
                if self.open.len() >= self.cfg.max_open_rfqs && !self.open.contains_key(&rfq) {
                    self.counters.open_full += 1;
                    return;
                }
                self.counters.opened += 1;
                // The engine's arrival mid, else the latest mid this side knows.
                let arrival_mid = if arrival_mid.is_finite() && arrival_mid > 0.0 {
                    arrival_mid
                } else {
                    context
                        .and_then(|c| self.fresh_mid(c.instrument, now))
                        .unwrap_or(f64::NAN)
                };
                let drift_start_mid = context
                    .and_then(|c| self.fresh_smoothed_mid(c.instrument, now))
                    .unwrap_or(arrival_mid);
                let prints_at_open =
                    context.map_or_else(PrintTotals::default, |c| self.print_totals(c.instrument));
                self.open.insert(
                    rfq,
                    OpenRfq {
                        context,
                        side,
                        opened: now,
                        arrival_mid,
                        drift_start_mid,
                        prints_at_open,
                        prints_at_exec: None,
                        impact_before_exec_bps: 0.0,
                        asked: SmallVec::new(),
                        exec: None,
                    },
                );
            }
            TcaFact::Asked { rfq, dealer, now } => {
                let Some(o) = self.open.get_mut(&rfq) else {
                    self.counters.unknown_rfq += 1;
                    return;
                };
                if o.asked.iter().any(|a| a.dealer == dealer) || o.asked.len() == MAX_PANEL {
                    return;
                }
                o.asked.push(AskedSlot {
                    dealer,
                    asked_at: now,
                    answered: false,
                    answered_at: None,
                    quote_px: f64::NAN,
                    quote_at: now,
                });
                let keys = o.context.map(|c| c.keys);
                out.push(update(rfq, dealer, keys, Observation::RfqSent, now));
            }
            TcaFact::Quoted {
                rfq,
                dealer,
                px,
                now,
            } => {
                // The latest firm quote stands (a requote replaces it) for the comparison
                // with its peers when the RFQ ends.
                if let Some(a) = self
                    .open
                    .get_mut(&rfq)
                    .and_then(|o| o.asked.iter_mut().find(|a| a.dealer == dealer))
                {
                    if px.is_finite() && px > 0.0 {
                        a.quote_px = px;
                        a.quote_at = now;
                    }
                }
                self.answer(rfq, dealer, now, true, out);
            }
            TcaFact::Declined { rfq, dealer, now } => {
                self.answer(rfq, dealer, now, false, out);
            }
            TcaFact::TimedOut { rfq, dealer, .. } => {
                // Counted by RfqSent without a response: nothing to add.
                if let Some(o) = self.open.get_mut(&rfq) {
                    if let Some(a) = o.asked.iter_mut().find(|a| a.dealer == dealer) {
                        a.answered = true;
                    }
                } else {
                    self.counters.unknown_rfq += 1;
                }
            }
            TcaFact::LateOrInvalid { rfq, dealer, now } => {
                let keys = self.open.get(&rfq).and_then(|o| o.context.map(|c| c.keys));
                out.push(update(rfq, dealer, keys, Observation::LateOrInvalid, now));
            }
            TcaFact::Executed {
                rfq,
                dealer,
                px,
                qty,
                now,
            } => {
                let totals = self
                    .open
                    .get(&rfq)
                    .and_then(|o| o.context)
                    .map(|c| self.print_totals(c.instrument));
                match self.open.get_mut(&rfq) {
                    Some(o) => {
                        // The first execution moves the desk's impact in the bond (once per
                        // RFQ leg: a repeated report does not trade again).
                        if o.exec.is_none() {
                            if let (Some(c), Some(side)) = (o.context, o.side) {
                                if let Some(d) = self.desk_impact_bps.get_mut(c.instrument as usize)
                                {
                                    o.impact_before_exec_bps = *d;
                                    if c.impact_bps.is_finite() {
                                        *d += direction(side).sign()
                                            * self.cfg.impact_lasting_share
                                            * c.impact_bps;
                                    }
                                }
                            }
                        }
                        o.exec = Some((dealer, px, qty, now));
                        o.prints_at_exec = o.prints_at_exec.or(totals);
                    }
                    None => self.counters.unknown_rfq += 1,
                }
            }
            TcaFact::Finished {
                rfq,
                ref asked,
                winner,
                cover_px,
                now,
            } => self.finish(rfq, asked, winner, cover_px, now, out),
        }
    }

    /// The instrument's latest mid and print totals, however old.
    fn latest(&self, instrument: u32) -> Option<MidAt> {
        self.mids.get(instrument as usize).copied().flatten()
    }

    fn fresh(&self, instrument: u32, now: Nanos) -> Option<MidAt> {
        let m = self.latest(instrument)?;
        let age = now.saturating_sub(m.at);
        (age.0 <= self.cfg.max_mid_age_s.saturating_mul(Nanos::PER_SEC)).then_some(m)
    }

    fn fresh_mid(&self, instrument: u32, now: Nanos) -> Option<f64> {
        self.fresh(instrument, now).map(|m| m.mid)
    }

    fn fresh_smoothed_mid(&self, instrument: u32, now: Nanos) -> Option<f64> {
        self.fresh(instrument, now).map(|m| m.smooth)
    }

    fn print_totals(&self, instrument: u32) -> PrintTotals {
        self.latest(instrument)
            .map_or_else(PrintTotals::default, |m| PrintTotals {
                sum: m.prints_sum,
                n: m.prints_n,
            })
    }

    /// The instrument's netted print totals (`MidAt::netted_sum`, `prints_n`).
    fn netted_totals(&self, instrument: u32) -> PrintTotals {
        self.latest(instrument)
            .map_or_else(PrintTotals::default, |m| PrintTotals {
                sum: m.netted_sum,
                n: m.prints_n,
            })
    }

    fn answer(
        &mut self,
        rfq: u64,
        dealer: DealerId,
        now: Nanos,
        quoted: bool,
        out: &mut Vec<TcaOutput>,
    ) {
        let Some(o) = self.open.get_mut(&rfq) else {
            self.counters.unknown_rfq += 1;
            return;
        };
        let keys = o.context.map(|c| c.keys);
        // The first answer counts (a requote is not a second response).
        let Some(a) = o
            .asked
            .iter_mut()
            .find(|a| a.dealer == dealer && !a.answered)
        else {
            return;
        };
        a.answered = true;
        a.answered_at = Some(now);
        let response_s = now.saturating_sub(a.asked_at).0 as f64 / 1e9;
        let obs = if quoted {
            Observation::Quoted { response_s }
        } else {
            Observation::Declined { response_s }
        };
        out.push(update(rfq, dealer, keys, obs, now));
    }

    fn finish(
        &mut self,
        rfq: u64,
        asked: &AskedDealers,
        winner: Option<DealerId>,
        cover_px: f64,
        now: Nanos,
        out: &mut Vec<TcaOutput>,
    ) {
        let Some(o) = self.open.remove(&rfq) else {
            self.counters.unknown_rfq += 1;
            return;
        };
        self.counters.finished += 1;
        let keys = o.context.map(|c| c.keys);
        let exec = o
            .exec
            .filter(|(d, px, _, _)| Some(*d) == winner && px.is_finite() && *px > 0.0);
        let cover = (cover_px.is_finite() && cover_px > 0.0).then_some(cover_px);
        if let (Some((dealer, px, qty, at)), Some(side)) = (exec, o.side) {
            self.counters.executions += 1;
            let dir = direction(side);
            let pi = price_improvement_bps(dir, o.arrival_mid, px);
            let vc = cover.and_then(|c| vs_cover_bps(dir, px, c));
            out.push(TcaOutput::Execution(ExecutionTca {
                rfq,
                dealer,
                side,
                qty,
                arrival_mid: o.arrival_mid,
                exec_px: px,
                shortfall_bps: finite_or_nan(pi.map(|p| -p)),
                price_improvement_bps: finite_or_nan(pi),
                cover_px: finite_or_nan(cover),
                vs_cover_bps: finite_or_nan(vc),
                at: at.max(o.opened),
            }));
            // Without an arrival mid the improvement is unknown: the win still counts, with
            // no improvement (0 bps) rather than a guess.
            out.push(update(
                rfq,
                dealer,
                keys,
                Observation::Won {
                    price_improvement_bps: pi.unwrap_or(0.0),
                    vs_cover_bps: vc,
                },
                at,
            ));
            if let Some(c) = o.context {
                let fill = Fill {
                    rfq,
                    dealer,
                    keys,
                    instrument: c.instrument,
                    dir,
                    exec_px: px,
                };
                let horizons = self.cfg.model.markout_horizons_s;
                for (h, &secs) in horizons.iter().enumerate() {
                    self.schedule(
                        Nanos(at.0.saturating_add(secs.saturating_mul(Nanos::PER_SEC))),
                        Measure::Markout { fill, horizon: h },
                    );
                }
                // The net markout (the score's winner-leakage input): a window of prints
                // centred on the leakage horizon, the desk's own lasting impact taken out.
                let h_ns = self
                    .cfg
                    .model
                    .leakage_horizon_s
                    .saturating_mul(Nanos::PER_SEC);
                let half_ns = (self.cfg.net_markout_window_s / 2).saturating_mul(Nanos::PER_SEC);
                let centre = at.0.saturating_add(h_ns);
                self.schedule(
                    Nanos(centre.saturating_sub(half_ns).max(at.0)),
                    Measure::NetMarkoutOpen {
                        net: NetMarkout {
                            fill,
                            end_adjust_bps: o.impact_before_exec_bps + {
                                let share = self.cfg.impact_lasting_share;
                                let quoted_at = o
                                    .asked
                                    .iter()
                                    .find(|a| a.dealer == dealer && a.quote_px.is_finite())
                                    .map_or(at, |a| a.quote_at);
                                let (before, after) =
                                    self.leak_timing_bps(&o, asked, dealer, quoted_at);
                                dir.sign() * ((1.0 - share) * before - share * after)
                            },
                        },
                        close_at: Nanos(centre.saturating_add(half_ns)),
                    },
                );
            }
        }
        // Competitiveness: every firm quote against the mean of the others in this RFQ (0
        // for a lone quote, or without a side to say which way is better), each quote first
        // cleared of the estimated leaks of the other dealers that answered before it.
        let mut cleared: SmallVec<[f64; MAX_PANEL]> = SmallVec::new();
        for a in &o.asked {
            cleared.push(match o.side {
                Some(side) if a.quote_px.is_finite() => {
                    let (before, _) = self.leak_timing_bps(&o, asked, a.dealer, a.quote_at);
                    a.quote_px * (-direction(side).sign() * before / 1e4).exp()
                }
                _ => a.quote_px,
            });
        }
        let quoted = cleared.iter().filter(|p| p.is_finite()).count();
        let px_sum: f64 = cleared.iter().filter(|p| p.is_finite()).sum();
        for (a, &px) in o.asked.iter().zip(&cleared) {
            if !px.is_finite() {
                continue;
            }
            let bps = match o.side {
                Some(side) if quoted > 1 => {
                    let peers = (px_sum - px) / (quoted - 1) as f64;
                    quote_vs_peers_bps(direction(side), px, peers).unwrap_or(0.0)
                }
                _ => 0.0,
            };
            out.push(update(
                rfq,
                a.dealer,
                keys,
                Observation::Competitiveness { bps },
                now,
            ));
        }
        // Leakage: the move while the request was out, from the smoothed mid at the opening to
        // the mean of the prints after it and before the execution (or this end), attributed
        // among every dealer asked; the losers are observed.
        let (Some(side), Some(c)) = (o.side, o.context) else {
            return;
        };
        if !(o.drift_start_mid.is_finite() && o.drift_start_mid > 0.0) {
            return;
        }
        let winner = exec.map(|e| e.0);
        let mut all = AskedDealers::new();
        for &d in asked.iter().chain(o.asked.iter().map(|a| &a.dealer)) {
            if !all.contains(&d) && all.len() < MAX_PANEL {
                all.push(d);
            }
        }
        if all.iter().all(|&d| Some(d) == winner) {
            return;
        }
        let until = o
            .prints_at_exec
            .unwrap_or_else(|| self.print_totals(c.instrument));
        let end_mid = o
            .prints_at_open
            .mean_until(until)
            .or_else(|| self.fresh_mid(c.instrument, now));
        let Some(bps) = end_mid.and_then(|m| drift_bps(direction(side), o.drift_start_mid, m, 0.0))
        else {
            self.counters.no_mid += 1;
            return;
        };
        self.counters.drifts += 1;
        self.attribute(rfq, &all, winner, keys, bps, now, out);
    }

    fn schedule(&mut self, at: Nanos, what: Measure) {
        if self.pending.len() >= self.cfg.max_pending {
            self.counters.pending_full += 1;
            return;
        }
        self.next_seq += 1;
        self.pending.push(Due {
            at,
            seq: self.next_seq,
            what,
        });
    }

    fn measure(&mut self, due: Due, out: &mut Vec<TcaOutput>) {
        let at = due.at;
        match due.what {
            Measure::Markout { fill, horizon } => {
                let Some(mid) = self.fresh_mid(fill.instrument, at) else {
                    self.counters.no_mid += 1;
                    return;
                };
                let Some(bps) = markout_bps(fill.dir, fill.exec_px, mid) else {
                    self.counters.no_mid += 1;
                    return;
                };
                self.counters.markouts += 1;
                out.push(update(
                    fill.rfq,
                    fill.dealer,
                    fill.keys,
                    Observation::Markout { horizon, bps },
                    at,
                ));
            }
            Measure::NetMarkoutOpen { net, close_at } => {
                let from = self.netted_totals(net.fill.instrument);
                self.schedule(close_at, Measure::NetMarkoutClose { net, from });
            }
            Measure::NetMarkoutClose { net, from } => {
                // No print in the window (a sparse feed): the latest print before it, if fresh,
                // as DESIGN's markout takes the latest mid.
                let f = net.fill;
                let to = self.netted_totals(f.instrument);
                let bps = from
                    .mean_until(to)
                    .or_else(|| self.fresh(f.instrument, at).map(|m| m.netted))
                    .map(|m| m * (net.end_adjust_bps / 1e4).exp())
                    .and_then(|end| markout_bps(f.dir, f.exec_px, end));
                let Some(bps) = bps else {
                    self.counters.no_mid += 1;
                    return;
                };
                self.counters.net_markouts += 1;
                out.push(update(
                    f.rfq,
                    f.dealer,
                    f.keys,
                    Observation::NetMarkout { bps },
                    at,
                ));
            }
        }
    }
}

impl Tca {
    /// The leakage attribution (backfitting): each asked dealer's share of the RFQ's drift
    /// `bps` is the drift less the current estimates of every OTHER dealer asked (all taken
    /// before this RFQ updates any of them); that share updates the dealer's estimate, and a
    /// loser's is its `Drift` observation. Repeated over RFQs this converges to the least
    /// squares fit of drift on which dealers were asked. Dealers at or past `max_dealers`
    /// have no estimate (0) and are counted.
    #[allow(clippy::too_many_arguments)]
    fn attribute(
        &mut self,
        rfq: u64,
        asked: &AskedDealers,
        winner: Option<DealerId>,
        keys: Option<SegmentKeys>,
        bps: f64,
        at: Nanos,
        out: &mut Vec<TcaOutput>,
    ) {
        let k = self.cfg.model.prior_strength;
        let half_life_ns = self.cfg.model.half_life_s as f64 * 1e9;
        let estimate = |leak: &[LeakEstimate], d: DealerId| {
            leak.get(usize::from(d.0)).map_or(0.0, |e| e.bps(k))
        };
        let total: f64 = asked.iter().map(|&d| estimate(&self.leak, d)).sum();
        let mut shares: SmallVec<[f64; MAX_PANEL]> = SmallVec::new();
        for &d in asked {
            shares.push(bps - (total - estimate(&self.leak, d)));
        }
        for (&d, &share) in asked.iter().zip(&shares) {
            match self.leak.get_mut(usize::from(d.0)) {
                Some(e) if share.is_finite() => e.add(share, at, half_life_ns),
                Some(_) => {}
                None => self.counters.untracked_dealers += 1,
            }
            if Some(d) != winner {
                out.push(update(rfq, d, keys, Observation::Drift { bps: share }, at));
            }
        }
    }

    /// The leakage estimates (bps, + : the mid moved the way the client trades) of the
    /// dealers asked in `o` (and `also_asked`) other than `dealer`, split by the leak-timing
    /// proxy: (the sum over those that answered, quote or decline, before `t`; the sum over
    /// the rest). A dealer that has answered has priced the order and is taken to have traded
    /// ahead by then, if it does; one that has not, or never answers, after. Estimates are
    /// read before this RFQ's own attribution updates them.
    fn leak_timing_bps(
        &self,
        o: &OpenRfq,
        also_asked: &AskedDealers,
        dealer: DealerId,
        t: Nanos,
    ) -> (f64, f64) {
        let (mut before, mut after) = (0.0, 0.0);
        for a in o.asked.iter().filter(|a| a.dealer != dealer) {
            let e = self.leakage_estimate_bps(a.dealer);
            if a.answered_at.is_some_and(|x| x < t) {
                before += e;
            } else {
                after += e;
            }
        }
        for &d in also_asked {
            if d != dealer && !o.asked.iter().any(|a| a.dealer == d) {
                after += self.leakage_estimate_bps(d);
            }
        }
        (before, after)
    }

    /// The current leakage estimate of `dealer` (bps of drift it adds to an RFQ it is asked
    /// for), 0 when it has none.
    pub fn leakage_estimate_bps(&self, dealer: DealerId) -> f64 {
        self.leak
            .get(usize::from(dealer.0))
            .map_or(0.0, |e| e.bps(self.cfg.model.prior_strength))
    }
}

fn update(
    rfq: u64,
    dealer: DealerId,
    keys: Option<SegmentKeys>,
    obs: Observation,
    at: Nanos,
) -> TcaOutput {
    TcaOutput::Update(TcaUpdate {
        rfq,
        dealer,
        keys,
        obs,
        at,
    })
}

/// Why an update could not be applied (in full) to the tables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ApplyError {
    /// The dealer's (or the aggregate's) segment slots are full, or the dealer index is past
    /// the table's capacity.
    Place(PlaceError),
    Observation(ObservationError),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Place(e) => write!(f, "score table: {e}"),
            ApplyError::Observation(e) => write!(f, "observation refused: {e}"),
        }
    }
}

impl std::error::Error for ApplyError {}

/// The segments an update goes to: every segment of the order, broad first; only `all`
/// without a security-master entry.
pub fn update_keys(keys: Option<&SegmentKeys>) -> SmallVec<[SegmentKey; 6]> {
    match keys {
        Some(k) => SmallVec::from_buf(k.update_order()),
        None => {
            let mut v = SmallVec::new();
            v.push(SegmentKey::all());
            v
        }
    }
}

/// Adds `u` to its dealer's rows and to the pooled (aggregate) rows in every segment of the
/// order. Keeps going past a failing segment and reports the first error. `Execution`
/// summaries change no row.
pub fn apply(
    writer: &mut ScoreWriter,
    model: &ModelConfig,
    output: &TcaOutput,
) -> Result<(), ApplyError> {
    let TcaOutput::Update(u) = output else {
        return Ok(());
    };
    let agg = writer.header().aggregate_dealer();
    let mut first_err = None;
    for key in update_keys(u.keys.as_ref()) {
        for dealer in [u32::from(u.dealer.0), agg] {
            let r = writer
                .update(dealer, key, |row| row.observe(u.obs, u.at, model))
                .map_err(ApplyError::Place)
                .and_then(|r| r.map_err(ApplyError::Observation));
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Markout horizons a `TcaUpdate` can name.
pub const HORIZONS: usize = MARKOUT_HORIZONS;

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000 * Nanos::PER_SEC;
    const A: DealerId = DealerId(0);
    const B: DealerId = DealerId(1);
    const C: DealerId = DealerId(2);

    fn keys() -> SegmentKeys {
        SegmentKeys::example()
    }

    fn at_s(s: u64) -> Nanos {
        Nanos(T0 + s * Nanos::PER_SEC)
    }

    fn ctx() -> Option<RfqContext> {
        Some(RfqContext {
            instrument: 7,
            keys: keys(),
            impact_bps: 2.0,
        })
    }

    /// One RFQ: A, B, C asked at 0; A quotes `a_px` at 2 s, B quotes `b_px` at 5 s, C
    /// declines at 3 s; A is executed at 10 s and the RFQ finishes.
    fn new_tca() -> Tca {
        Tca::new(TcaConfig {
            max_instruments: 16,
            ..TcaConfig::default()
        })
    }

    /// The facts that open RFQ 1 at t = 0 on instrument 7: its mid, the RFQ (1 MM on
    /// `side`, context `ctx()`), and one `Asked` per dealer in `asked`.
    fn open_rfq(side: Side, mid: f64, asked: &[DealerId]) -> Vec<TcaFact> {
        let mut facts = vec![
            TcaFact::Mid {
                instrument: 7,
                mid,
                now: at_s(0),
            },
            TcaFact::Opened {
                rfq: 1,
                context: ctx(),
                side: Some(side),
                qty: 1e6,
                arrival_mid: f64::NAN,
                now: at_s(0),
            },
        ];
        facts.extend(asked.iter().map(|&dealer| TcaFact::Asked {
            rfq: 1,
            dealer,
            now: at_s(0),
        }));
        facts
    }

    fn run(side: Side, arrival: f64, a_px: f64, b_px: f64) -> (Tca, Vec<TcaOutput>) {
        let mut t = new_tca();
        let mut out = Vec::new();
        for f in &rfq_facts(side, arrival, a_px, b_px, None) {
            t.on_fact(f, &mut out);
        }
        (t, out)
    }

    /// `run`'s facts: with `print`, also a print at 4 s (while the request is out) and one of
    /// 150 at the execution, after it (the client's own impact, not in the drift).
    fn rfq_facts(
        side: Side,
        arrival: f64,
        a_px: f64,
        b_px: f64,
        print: Option<f64>,
    ) -> Vec<TcaFact> {
        let mut facts = open_rfq(side, arrival, &[A, B, C]);
        facts.extend([
            TcaFact::Quoted {
                rfq: 1,
                dealer: A,
                px: a_px,
                now: at_s(2),
            },
            TcaFact::Declined {
                rfq: 1,
                dealer: C,
                now: at_s(3),
            },
        ]);
        if let Some(mid) = print {
            facts.push(TcaFact::Mid {
                instrument: 7,
                mid,
                now: at_s(4),
            });
        }
        facts.extend([
            TcaFact::Quoted {
                rfq: 1,
                dealer: B,
                px: b_px,
                now: at_s(5),
            },
            TcaFact::Executed {
                rfq: 1,
                dealer: A,
                px: a_px,
                qty: 1e6,
                now: at_s(10),
            },
        ]);
        if print.is_some() {
            facts.push(TcaFact::Mid {
                instrument: 7,
                mid: 150.0,
                now: at_s(10),
            });
        }
        facts.push(TcaFact::Finished {
            rfq: 1,
            asked: [A, B, C].into_iter().collect(),
            winner: Some(A),
            cover_px: b_px,
            now: at_s(10),
        });
        facts
    }

    /// `dealer`'s net markout observations in `out`.
    fn net_markouts(out: &[TcaOutput], dealer: DealerId) -> Vec<f64> {
        obs_of(out, dealer)
            .into_iter()
            .filter_map(|o| match o {
                Observation::NetMarkout { bps } => Some(bps),
                _ => None,
            })
            .collect()
    }

    fn obs_of(out: &[TcaOutput], dealer: DealerId) -> Vec<Observation> {
        out.iter()
            .filter_map(|o| match o {
                TcaOutput::Update(u) if u.dealer == dealer => Some(u.obs),
                _ => None,
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn buy_execution_improvement_cover_and_responses() {
        // Buy at 99.90 with the mid at 100 on arrival: 10 bps better; cover 99.95.
        let (_, out) = run(Side::Buy, 100.0, 99.90, 99.95);
        let ex = out
            .iter()
            .find_map(|o| match o {
                TcaOutput::Execution(e) => Some(*e),
                _ => None,
            })
            .expect("an execution summary");
        assert!(close(ex.price_improvement_bps, 10.0), "{ex:?}");
        assert!(close(ex.shortfall_bps, -10.0));
        // dir * (cover - exec) / cover = (99.95 - 99.90) / 99.95 * 1e4
        assert!(close(ex.vs_cover_bps, 0.05 / 99.95 * 1e4), "{ex:?}");
        let a = obs_of(&out, A);
        assert_eq!(a[0], Observation::RfqSent);
        assert_eq!(a[1], Observation::Quoted { response_s: 2.0 });
        match a[2] {
            Observation::Won {
                price_improvement_bps,
                vs_cover_bps: Some(c),
            } => {
                assert!(close(price_improvement_bps, 10.0));
                assert!(close(c, 0.05 / 99.95 * 1e4));
            }
            ref o => panic!("expected Won, got {o:?}"),
        }
        // The losers' drift (no print while the request was out: 0) and the quotes'
        // competitiveness come when the RFQ ends (tested below).
        assert_eq!(
            obs_of(&out, C),
            vec![
                Observation::RfqSent,
                Observation::Declined { response_s: 3.0 },
                Observation::Drift { bps: 0.0 },
            ]
        );
        assert_eq!(
            obs_of(&out, B)[..2],
            [
                Observation::RfqSent,
                Observation::Quoted { response_s: 5.0 }
            ]
        );
    }

    #[test]
    fn sell_execution_signs_flip() {
        // Sell at 100.10 with the mid at 100: 10 bps better; cover (best losing bid) 100.05.
        let (_, out) = run(Side::Sell, 100.0, 100.10, 100.05);
        let ex = out
            .iter()
            .find_map(|o| match o {
                TcaOutput::Execution(e) => Some(*e),
                _ => None,
            })
            .unwrap();
        assert!(close(ex.price_improvement_bps, 10.0), "{ex:?}");
        assert!(close(ex.vs_cover_bps, 0.05 / 100.05 * 1e4), "{ex:?}");
        // Selling below the mid is a cost.
        let (_, out) = run(Side::Sell, 100.0, 99.80, 99.70);
        let ex = out
            .iter()
            .find_map(|o| match o {
                TcaOutput::Execution(e) => Some(*e),
                _ => None,
            })
            .unwrap();
        assert!(close(ex.price_improvement_bps, -20.0), "{ex:?}");
        assert!(close(ex.shortfall_bps, 20.0));
    }

    /// Markouts for the winner at 1, 5 and 30 minutes after the execution, using the mid in
    /// force at each horizon.
    #[test]
    fn net_markout_takes_out_the_desks_own_impact_and_averages_the_window() {
        // RFQ 1: A bought at 100.10 at 10 s (expected impact 2 bps: ctx()).
        let (mut t, mut out) = run(Side::Buy, 100.0, 100.10, 100.20);
        // RFQ 2, same bond: the desk sells at 610 s, expected impact 30 bps.
        let ctx2 = ctx().map(|c| RfqContext {
            impact_bps: 30.0,
            ..c
        });
        for f in [
            TcaFact::Opened {
                rfq: 2,
                context: ctx2,
                side: Some(Side::Sell),
                qty: 1e6,
                arrival_mid: f64::NAN,
                now: at_s(600),
            },
            TcaFact::Asked {
                rfq: 2,
                dealer: B,
                now: at_s(600),
            },
            TcaFact::Quoted {
                rfq: 2,
                dealer: B,
                px: 99.9,
                now: at_s(605),
            },
            TcaFact::Executed {
                rfq: 2,
                dealer: B,
                px: 99.9,
                qty: 1e6,
                now: at_s(610),
            },
            TcaFact::Finished {
                rfq: 2,
                asked: [B].into_iter().collect(),
                winner: Some(B),
                cover_px: f64::NAN,
                now: at_s(610),
            },
        ] {
            t.on_fact(&f, &mut out);
        }
        out.clear();
        // RFQ 1's window: 1810 s +- 150 s. Prints outside it (1650 s, 2000 s) are not used;
        // the raw 30-minute markout uses the last mid at or before 1810 s (1700 s).
        for (s, m) in [
            (1_650, 90.0),
            (1_700, 100.30),
            (1_900, 100.10),
            (2_000, 110.0),
        ] {
            t.on_fact(
                &TcaFact::Mid {
                    instrument: 7,
                    mid: m,
                    now: at_s(s),
                },
                &mut out,
            );
        }
        t.advance(at_s(100_000), &mut out);
        let net: Vec<(f64, Nanos)> = out
            .iter()
            .filter_map(|o| match o {
                TcaOutput::Update(TcaUpdate {
                    dealer,
                    obs: Observation::NetMarkout { bps },
                    at,
                    ..
                }) if *dealer == A => Some((*bps, *at)),
                _ => None,
            })
            .collect();
        assert_eq!(net.len(), 1, "{out:?}");
        // The desk's lasting impact in the bond at both prints: +2/3 x 2 (RFQ 1's buy, its
        // own) - 2/3 x 30 (RFQ 2's sale); before RFQ 1's execution: 0.
        let c_bps = 2.0 / 3.0 * 2.0 - 2.0 / 3.0 * 30.0;
        let end = (100.30 + 100.10) / 2.0 * (-c_bps / 1e4f64).exp();
        let want = (end - 100.10) / 100.10 * 1e4;
        assert!(close(net[0].0, want), "{} vs {want}", net[0].0);
        assert_eq!(
            net[0].1,
            at_s(10 + 1_800 + 150),
            "measured when the window closes"
        );
        // DESIGN's markout, reported beside it, is unchanged: one mid, nothing netted.
        let raw = obs_of(&out, A)
            .into_iter()
            .find_map(|o| match o {
                Observation::Markout { horizon: 2, bps } => Some(bps),
                _ => None,
            })
            .expect("the 30-minute markout");
        assert!(close(raw, (100.30 - 100.10) / 100.10 * 1e4), "{raw}");
        // RFQ 2's window (2410 s +- 150 s) saw no print: the latest one (2000 s) stands in.
        assert_eq!(t.counters().net_markouts, 2);
    }

    #[test]
    fn net_markout_without_a_print_in_its_window_takes_the_latest_fresh_one_or_none() {
        // A sparse feed: nothing within 150 s of the horizon (1810 s). The latest print
        // before it (1500 s) stands in, netted the same way: A sold at 100.0 (its own
        // expected impact 2 bps: -2/3 x 2 of lasting impact), the print is 100.0.
        let (mut t, mut out) = run(Side::Sell, 100.0, 100.0, 99.9);
        out.clear();
        t.on_fact(
            &TcaFact::Mid {
                instrument: 7,
                mid: 100.0,
                now: at_s(1_500),
            },
            &mut out,
        );
        t.advance(at_s(100_000), &mut out);
        let net = net_markouts(&out, A);
        let end = 100.0 * (2.0 / 3.0 * 2.0 / 1e4f64).exp();
        assert_eq!(net.len(), 1, "{out:?}");
        assert!(close(net[0], -(end - 100.0) / 100.0 * 1e4), "{net:?}");
        // With no print fresh enough (`max_mid_age_s`), it is skipped, not guessed.
        let mut t = Tca::new(TcaConfig {
            max_instruments: 16,
            max_mid_age_s: 600,
            ..TcaConfig::default()
        });
        let mut out = Vec::new();
        let mut facts = open_rfq(Side::Sell, 100.0, &[A]);
        facts.extend([
            TcaFact::Quoted {
                rfq: 1,
                dealer: A,
                px: 100.0,
                now: at_s(2),
            },
            TcaFact::Executed {
                rfq: 1,
                dealer: A,
                px: 100.0,
                qty: 1e6,
                now: at_s(10),
            },
            TcaFact::Finished {
                rfq: 1,
                asked: [A].into_iter().collect(),
                winner: Some(A),
                cover_px: f64::NAN,
                now: at_s(10),
            },
        ]);
        for f in &facts {
            t.on_fact(f, &mut out);
        }
        t.advance(at_s(100_000), &mut out);
        assert!(!obs_of(&out, A)
            .iter()
            .any(|o| matches!(o, Observation::NetMarkout { .. })));
        assert_eq!(t.counters().net_markouts, 0);
        assert!(t.counters().no_mid >= 1);
    }

    fn markouts(side: Side, exec: f64, mids: [f64; 3]) -> Vec<(usize, f64, Nanos)> {
        let (mut t, mut out) = run(side, 100.0, exec, exec + 0.5);
        out.clear();
        let exec_at = 10;
        // A mid just before each horizon, then one after it that must not be used.
        for (h, (&secs, &m)) in [60u64, 300, 1_800].iter().zip(&mids).enumerate() {
            t.on_fact(
                &TcaFact::Mid {
                    instrument: 7,
                    mid: m,
                    now: at_s(exec_at + secs - 1),
                },
                &mut out,
            );
            t.on_fact(
                &TcaFact::Mid {
                    instrument: 7,
                    mid: 1.0 + h as f64,
                    now: at_s(exec_at + secs + 1),
                },
                &mut out,
            );
        }
        t.advance(at_s(100_000), &mut out);
        out.iter()
            .filter_map(|o| match o {
                TcaOutput::Update(TcaUpdate {
                    dealer,
                    obs: Observation::Markout { horizon, bps },
                    at,
                    ..
                }) if *dealer == A => Some((*horizon, *bps, *at)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn buy_markouts_at_each_horizon() {
        let m = markouts(Side::Buy, 100.0, [100.10, 99.90, 99.50]);
        assert_eq!(m.len(), 3, "{m:?}");
        // dir * (mid - exec) / exec * 1e4
        for (i, want) in [10.0, -10.0, -50.0].into_iter().enumerate() {
            assert_eq!(m[i].0, i);
            assert!(close(m[i].1, want), "{m:?}");
        }
        assert_eq!(m[0].2, at_s(10 + 60));
        assert_eq!(m[2].2, at_s(10 + 1_800));
    }

    #[test]
    fn sell_markouts_at_each_horizon() {
        let m = markouts(Side::Sell, 100.0, [100.10, 99.90, 99.50]);
        assert_eq!(m.len(), 3, "{m:?}");
        for (i, want) in [-10.0, 10.0, 50.0].into_iter().enumerate() {
            assert!(close(m[i].1, want), "{m:?}");
        }
    }

    fn drifts(out: &[TcaOutput]) -> Vec<(DealerId, f64, Nanos)> {
        out.iter()
            .filter_map(|o| match o {
                TcaOutput::Update(TcaUpdate {
                    dealer,
                    obs: Observation::Drift { bps },
                    at,
                    ..
                }) => Some((*dealer, *bps, *at)),
                _ => None,
            })
            .collect()
    }

    /// `run`'s RFQ (arrival mid 100) with a print at 4 s, while the request is out.
    fn run_with_print(side: Side, a_px: f64, b_px: f64, print: f64) -> Vec<TcaOutput> {
        let mut t = new_tca();
        let mut out = Vec::new();
        for f in &rfq_facts(side, 100.0, a_px, b_px, Some(print)) {
            t.on_fact(f, &mut out);
        }
        out
    }

    #[test]
    fn losers_see_the_move_while_the_request_was_out_and_the_winner_is_excluded() {
        // A print of 100.20 while the request was out: a buyer's market moved up 20 bps. The
        // print after the execution (the client's own trade) is not in it.
        let out = run_with_print(Side::Buy, 100.0, 100.1, 100.2);
        let d = drifts(&out);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d.iter().all(|x| x.0 != A));
        // No estimates yet: each loser's share is the whole move.
        for x in &d {
            assert!(close(x.1, 20.0), "{d:?}");
            assert_eq!(x.2, at_s(10), "measured when the RFQ ends");
        }
        // A seller seeing the same rise: the market moved against the seller.
        let out = run_with_print(Side::Sell, 100.0, 99.9, 100.2);
        let d = drifts(&out);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d.iter().all(|x| close(x.1, -20.0)), "{d:?}");
    }

    /// `dealer`'s competitiveness observations in `out`.
    fn competitiveness(out: &[TcaOutput], dealer: DealerId) -> Vec<f64> {
        out.iter()
            .filter_map(|o| match o {
                TcaOutput::Update(TcaUpdate {
                    dealer: d,
                    obs: Observation::Competitiveness { bps },
                    ..
                }) if *d == dealer => Some(*bps),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_firm_quote_is_compared_with_the_others_in_its_rfq() {
        let comp = competitiveness;
        // Buy: A offers 99.90, B 99.95; C declined (no quote, no comparison).
        let (_, out) = run(Side::Buy, 100.0, 99.90, 99.95);
        let a = comp(&out, A);
        let b = comp(&out, B);
        assert_eq!((a.len(), b.len()), (1, 1), "{out:?}");
        assert!(close(a[0], 0.05 / 99.95 * 1e4), "{a:?}");
        assert!(close(b[0], -0.05 / 99.90 * 1e4), "{b:?}");
        assert!(comp(&out, C).is_empty());
        // The loser counts as much as the winner: the arrival mid plays no part (the same
        // quotes against another arrival mid compare the same).
        let (_, again) = run(Side::Buy, 97.0, 99.90, 99.95);
        assert_eq!(comp(&again, A), a);
        // Sell: the higher bid is the better one.
        let (_, out) = run(Side::Sell, 100.0, 100.10, 100.05);
        assert!(comp(&out, A)[0] > 0.0 && comp(&out, B)[0] < 0.0);
        // A lone quote has nothing to be compared with: 0.
        let mut t = new_tca();
        let mut out = Vec::new();
        let mut facts = open_rfq(Side::Buy, 100.0, &[A, B]);
        facts.extend([
            TcaFact::Quoted {
                rfq: 1,
                dealer: A,
                px: 101.0,
                now: at_s(2),
            },
            TcaFact::Finished {
                rfq: 1,
                asked: [A, B].into_iter().collect(),
                winner: None,
                cover_px: f64::NAN,
                now: at_s(30),
            },
        ]);
        for f in &facts {
            t.on_fact(f, &mut out);
        }
        assert_eq!(comp(&out, A), vec![0.0]);
    }

    /// Without a trade every asked dealer is a loser and sees the move until the RFQ ended.
    #[test]
    fn without_a_trade_every_asked_dealer_sees_the_move_until_the_end() {
        let mut t = new_tca();
        let mut out = Vec::new();
        let mut facts = open_rfq(Side::Sell, 100.0, &[A, B]);
        facts.extend([
            // Someone sold ahead: a seller's market fell 10 bps while the request was out.
            TcaFact::Mid {
                instrument: 7,
                mid: 99.9,
                now: at_s(10),
            },
            TcaFact::Finished {
                rfq: 1,
                asked: [A, B].into_iter().collect(),
                winner: None,
                cover_px: f64::NAN,
                now: at_s(30),
            },
        ]);
        for f in &facts {
            t.on_fact(f, &mut out);
        }
        let d = drifts(&out);
        assert_eq!(d.len(), 2, "{d:?}");
        // +10 bps (the way the seller trades).
        for (dealer, bps, _) in &d {
            assert!(close(*bps, 10.0), "{dealer:?}: {bps}");
        }
    }

    /// One leaker among three dealers asked in every pair: charged the whole move, the two
    /// quiet ones would look as leaky as it when asked with it. Attributed across RFQs, the
    /// leaker's estimate approaches its move and the quiet ones' approach 0; the same facts
    /// give the same estimates.
    #[test]
    fn leakage_is_attributed_to_the_dealer_whose_requests_move_the_market() {
        let pairs = [[A, B], [A, C], [B, C]];
        let leak_bps = 10.0;
        let run_all = || {
            let mut t = new_tca();
            let mut out = Vec::new();
            let mut quiet_with_leaker = Vec::new();
            for rfq in 0..600u64 {
                let pair = pairs[(rfq % 3) as usize];
                let t0 = rfq * 100;
                let mut facts = opening(rfq, Side::Buy, t0, &pair);
                let moved = if pair.contains(&A) { leak_bps } else { 0.0 };
                facts.push(TcaFact::Mid {
                    instrument: 7,
                    mid: 100.0 * (1.0 + moved / 1e4),
                    now: at_s(t0 + 10),
                });
                facts.push(TcaFact::Finished {
                    rfq,
                    asked: pair.into_iter().collect(),
                    winner: None,
                    cover_px: f64::NAN,
                    now: at_s(t0 + 30),
                });
                out.clear();
                for f in &facts {
                    t.on_fact(f, &mut out);
                }
                if rfq >= 590 && pair.contains(&A) {
                    let quiet = if pair[0] == A { pair[1] } else { pair[0] };
                    quiet_with_leaker.extend(
                        drifts(&out)
                            .into_iter()
                            .filter(|d| d.0 == quiet)
                            .map(|d| d.1),
                    );
                }
                // Each RFQ's mid starts again at 100: reset the smoothing between RFQs.
                t.on_fact(
                    &TcaFact::Mid {
                        instrument: 7,
                        mid: 100.0,
                        now: at_s(t0 + 99),
                    },
                    &mut out,
                );
            }
            let est = [A, B, C].map(|d| t.leakage_estimate_bps(d));
            (est, quiet_with_leaker)
        };
        let (est, quiet) = run_all();
        // Shares made while the estimates were still settling stay in the sums (until the
        // decay forgets them), so the estimates approach the fit from the naive split.
        assert!(
            est[0] > 0.85 * leak_bps && est[0] < leak_bps,
            "leaker {est:?}"
        );
        assert!(est[1].abs() < 1.0 && est[2].abs() < 1.0, "quiet {est:?}");
        assert!(!quiet.is_empty());
        for q in &quiet {
            assert!(q.abs() < 1.5, "a quiet dealer asked with the leaker: {q}");
        }
        assert_eq!(run_all().0, est, "deterministic");
    }

    /// The facts that open RFQ `rfq` on instrument 7 at `t0` s: the mid at 100, the RFQ (1 MM
    /// on `side`, context `ctx()`, arrival mid 100) and one `Asked` per dealer in `asked`.
    fn opening(rfq: u64, side: Side, t0: u64, asked: &[DealerId]) -> Vec<TcaFact> {
        let mut facts = vec![
            TcaFact::Mid {
                instrument: 7,
                mid: 100.0,
                now: at_s(t0),
            },
            TcaFact::Opened {
                rfq,
                context: ctx(),
                side: Some(side),
                qty: 1e6,
                arrival_mid: 100.0,
                now: at_s(t0),
            },
        ];
        facts.extend(asked.iter().map(|&dealer| TcaFact::Asked {
            rfq,
            dealer,
            now: at_s(t0),
        }));
        facts
    }

    /// Teaches `t` that asking `dealer` moves the market `bps` the way the client trades:
    /// `n` RFQs numbered from `first`, each asking only it, the mid moving `bps` while the
    /// request is out, none traded. Returns the next free RFQ number (RFQ `r` opens at
    /// `r x 100` s).
    fn teach_leak(t: &mut Tca, dealer: DealerId, bps: f64, first: u64, n: u64) -> u64 {
        let mut out = Vec::new();
        for rfq in first..first + n {
            let t0 = rfq * 100;
            for f in opening(rfq, Side::Buy, t0, &[dealer]).into_iter().chain([
                TcaFact::Mid {
                    instrument: 7,
                    mid: 100.0 * (1.0 + bps / 1e4),
                    now: at_s(t0 + 10),
                },
                TcaFact::Finished {
                    rfq,
                    asked: [dealer].into_iter().collect(),
                    winner: None,
                    cover_px: f64::NAN,
                    now: at_s(t0 + 30),
                },
                TcaFact::Mid {
                    instrument: 7,
                    mid: 100.0,
                    now: at_s(t0 + 99),
                },
            ]) {
                t.on_fact(&f, &mut out);
            }
        }
        first + n
    }

    fn dir_of(side: Side) -> f64 {
        match side {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }

    /// A quote priced after a leaky dealer answered carries its leak: it is cleared of the
    /// dealer's estimate before the comparison. One priced before it is not, nor is one that
    /// came before the leaky dealer answered. A decline counts as an answer.
    #[test]
    fn quotes_are_cleared_of_the_leaks_of_dealers_that_answered_before_them() {
        let comps = |out: &[TcaOutput]| {
            let of = |dealer| match competitiveness(out, dealer)[..] {
                [bps] => bps,
                ref v => panic!("one competitiveness per quote: {v:?}"),
            };
            (of(B), of(C))
        };
        for side in [Side::Buy, Side::Sell] {
            let dir = dir_of(side);
            // A declines `a_declines_s` after the request; C quotes at 1 s, B at 5 s, B's
            // price moved from C's by exactly A's estimated leak.
            let run = |a_declines_s: u64| {
                let mut t = new_tca();
                let rfq = teach_leak(&mut t, A, 10.0, 0, 200);
                let leak = t.leakage_estimate_bps(A);
                assert!(leak > 5.0 && leak < 10.0, "A's estimate {leak}");
                assert_eq!(t.leakage_estimate_bps(B), 0.0);
                let c_px = 100.0 + dir * 0.5;
                let b_px = c_px * (dir * leak / 1e4).exp();
                let t0 = rfq * 100;
                let mut out = Vec::new();
                let mut facts = opening(rfq, side, t0, &[A, B, C]);
                facts.extend([
                    TcaFact::Quoted {
                        rfq,
                        dealer: C,
                        px: c_px,
                        now: at_s(t0 + 1),
                    },
                    TcaFact::Declined {
                        rfq,
                        dealer: A,
                        now: at_s(t0 + a_declines_s),
                    },
                    TcaFact::Quoted {
                        rfq,
                        dealer: B,
                        px: b_px,
                        now: at_s(t0 + 5),
                    },
                    TcaFact::Finished {
                        rfq,
                        asked: [A, B, C].into_iter().collect(),
                        winner: None,
                        cover_px: f64::NAN,
                        now: at_s(t0 + 30),
                    },
                ]);
                for f in &facts {
                    t.on_fact(f, &mut out);
                }
                (comps(&out), leak)
            };
            // A answered at 2 s, before B's quote: B and C compare even.
            let ((b, c), _) = run(2);
            assert!(b.abs() < 1e-6 && c.abs() < 1e-6, "{side:?}: B {b}, C {c}");
            // A answered at 6 s, after both quotes: B is compared as it came, worse than C by
            // the leak, and C better by as much.
            let ((b, c), leak) = run(6);
            let want = dir * (1.0 - (dir * leak / 1e4).exp()) * 1e4;
            assert!(close(b, want), "{side:?}: B {b} vs {want}");
            assert!(c > 0.9 * leak, "{side:?}: C {c}");
        }
    }

    /// The winner's net markout loses what the other asked dealers' leaks did to it: the
    /// lasting share of the leaks of those that answered after its quote (in the end mid,
    /// not in its price), and the reverted share of those that answered before it (in its
    /// price in full, in the end mid only in part).
    #[test]
    fn net_markout_takes_out_the_other_dealers_leaks_by_when_they_answered() {
        for side in [Side::Buy, Side::Sell] {
            let dir = dir_of(side);
            let mut t = new_tca();
            let next = teach_leak(&mut t, A, 10.0, 0, 200);
            let rfq = teach_leak(&mut t, C, 6.0, next, 200);
            let (la, lc) = (t.leakage_estimate_bps(A), t.leakage_estimate_bps(C));
            assert!(la > 5.0 && lc > 3.0, "{la} {lc}");
            // A declines at 1 s, B quotes at 5 s and is hit at 10 s, C declines at 8 s.
            let t0 = rfq * 100;
            let px = 100.0 + dir * 0.2;
            let mut out = Vec::new();
            let mut facts = opening(rfq, side, t0, &[A, B, C]);
            facts.extend([
                TcaFact::Declined {
                    rfq,
                    dealer: A,
                    now: at_s(t0 + 1),
                },
                TcaFact::Quoted {
                    rfq,
                    dealer: B,
                    px,
                    now: at_s(t0 + 5),
                },
                TcaFact::Declined {
                    rfq,
                    dealer: C,
                    now: at_s(t0 + 8),
                },
                TcaFact::Executed {
                    rfq,
                    dealer: B,
                    px,
                    qty: 1e6,
                    now: at_s(t0 + 10),
                },
                TcaFact::Finished {
                    rfq,
                    asked: [A, B, C].into_iter().collect(),
                    winner: Some(B),
                    cover_px: f64::NAN,
                    now: at_s(t0 + 10),
                },
                // The only print in the window (the horizon +- 150 s).
                TcaFact::Mid {
                    instrument: 7,
                    mid: 100.0 + dir * 0.5,
                    now: at_s(t0 + 10 + 1_800),
                },
            ]);
            for f in &facts {
                t.on_fact(f, &mut out);
            }
            t.advance(at_s(t0 + 100_000), &mut out);
            let net = net_markouts(&out, B);
            assert_eq!(net.len(), 1, "{out:?}");
            // The desk's own lasting impact (this trade: 2/3 of ctx()'s 2 bps) is taken out of
            // the print; A's leak (before B's quote) keeps its lasting share only: 1/3 put
            // back; C's (after) is in the print at its lasting share: taken out.
            let s = IMPACT_LASTING_SHARE;
            let end = (100.0 + dir * 0.5)
                * (-dir * s * 2.0 / 1e4).exp()
                * (dir * ((1.0 - s) * la - s * lc) / 1e4).exp();
            let want = dir * (end - px) / px * 1e4;
            assert!(close(net[0], want), "{side:?}: {} vs {want}", net[0]);
            // Not the markout without the other dealers (here their two parts partly cancel:
            // + 1/3 of A's ~9.5 bps, - 2/3 of C's ~5.7).
            let raw_end = (100.0 + dir * 0.5) * (-dir * s * 2.0 / 1e4).exp();
            let unadjusted = dir * (raw_end - px) / px * 1e4;
            assert!(
                (net[0] - unadjusted).abs() > 0.3,
                "{} vs {unadjusted}",
                net[0]
            );
        }
    }

    #[test]
    fn stale_or_missing_mids_skip_the_measurement_and_count() {
        let mut t = Tca::new(TcaConfig {
            max_instruments: 16,
            max_mid_age_s: 60,
            ..TcaConfig::default()
        });
        let (mut tt, _) = run(Side::Buy, 100.0, 100.0, 100.1);
        let mut out = Vec::new();
        // No mid since arrival (0 s): the 1-minute markout at 70 s is 70 s stale.
        tt.cfg.max_mid_age_s = 60;
        tt.advance(at_s(100_000), &mut out);
        assert!(!out.iter().any(|o| matches!(
            o,
            TcaOutput::Update(TcaUpdate {
                obs: Observation::Markout { .. },
                ..
            })
        )));
        assert!(tt.counters().no_mid >= 3);
        // Bad mids and unknown RFQs are counted, not stored.
        t.on_fact(
            &TcaFact::Mid {
                instrument: 99,
                mid: 1.0,
                now: at_s(0),
            },
            &mut out,
        );
        t.on_fact(
            &TcaFact::Mid {
                instrument: 1,
                mid: f64::NAN,
                now: at_s(0),
            },
            &mut out,
        );
        t.on_fact(
            &TcaFact::Asked {
                rfq: 5,
                dealer: A,
                now: at_s(0),
            },
            &mut out,
        );
        assert_eq!(t.counters().bad_mids, 2);
        assert_eq!(t.counters().unknown_rfq, 1);
        assert_eq!(t.mid(1), None);
    }

    #[test]
    fn limits_drop_and_count() {
        let mut t = Tca::new(TcaConfig {
            max_instruments: 4,
            max_open_rfqs: 2,
            ..TcaConfig::default()
        });
        let mut out = Vec::new();
        for rfq in 0..5 {
            t.on_fact(
                &TcaFact::Opened {
                    rfq,
                    context: None,
                    side: Some(Side::Buy),
                    qty: 1.0,
                    arrival_mid: 100.0,
                    now: at_s(rfq),
                },
                &mut out,
            );
        }
        assert_eq!(t.open_rfqs(), 2);
        assert_eq!(t.counters().open_full, 3);
    }

    #[test]
    fn apply_writes_dealer_and_pooled_rows_in_every_segment() {
        use crate::select::table::{ScoreWriter, TableParams};
        let dir = std::env::temp_dir().join(format!("rfq-tca-apply-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let model = ModelConfig::default();
        let mut w = ScoreWriter::create(&dir, TableParams::new(4, 16, &model), at_s(0)).unwrap();
        let (_, out) = run(Side::Buy, 100.0, 99.9, 99.95);
        for o in &out {
            apply(&mut w, &model, o).unwrap();
        }
        let r = w.reader();
        for key in keys().update_order() {
            let a = r.find(0, key).unwrap().expect("dealer A row");
            assert_eq!(a.rfqs_total, 1);
            assert_eq!(a.wins_total, 1);
            let pooled = r.find(4, key).unwrap().expect("pooled row");
            assert_eq!(pooled.rfqs_total, 3);
        }
        std::fs::remove_file(&dir).unwrap();
    }
}
