//! The simulated market: its parameters, the bond universe, the dealers' hidden behaviour,
//! the desk's order flow and the fair-value process.
//!
//! Owns everything the simulator knows and the router does not: each dealer's per-segment
//! answer probability, quote competitiveness, response-time distribution, leakage and
//! capacity; the true mid of every bond over virtual time (a random walk plus the impact of
//! trades and the leakage of dealers who trade ahead); the desk's orders and limits. Every
//! number comes from `SimConfig`, whose defaults are calibrated in `sim/mod.rs`'s notes. It is
//! pure: no clock, no I/O; every draw comes from `rng::Rng` streams keyed by the seed, so the
//! same seed gives the same market, and one order's dealer behaviour is the same draw
//! whichever selection policy runs (common random numbers).

use super::rng::{normal_cdf, Rng};
use crate::select::instruments::{AssetClass, Instrument, SecurityMaster};
use crate::select::pretrade::PretradeConfig;
use crate::time::Nanos;
use serde::Serialize;

/// Number of asset classes (the hidden behaviour's segments).
pub const SEGMENTS: usize = 5;

/// The segment index of an asset class.
pub fn segment_of(a: AssetClass) -> usize {
    match a {
        AssetClass::IgCorp => 0,
        AssetClass::HyCorp => 1,
        AssetClass::Muni => 2,
        AssetClass::Structured => 3,
        AssetClass::Govt => 4,
    }
}

/// Most impulses (trades, leaks) remembered per bond for the transient part of impact; older
/// ones keep only their permanent part.
pub const MAX_IMPULSES_PER_BOND: usize = 64;

/// One dealer's hidden behaviour in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SegmentTruth {
    /// Probability of quoting when asked (else it declines).
    pub answer_prob: f64,
    /// Quote cost as a multiple of the bond's base cost (1: an average dealer; < 1: sharper).
    pub cost_mult: f64,
    /// Median response time, seconds (log-normal).
    pub response_median_s: f64,
    /// Log-scale sigma of the response time.
    pub response_sigma: f64,
    /// Probability that, once asked, it trades ahead of the client.
    pub leak_prob: f64,
    /// Size of that move as a fraction of the order's expected square-root impact.
    pub leak_intensity: f64,
    /// Largest size (face) it quotes in full; larger requests are declined.
    pub capacity: f64,
}

/// The dealer archetypes of issue 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Archetype {
    /// Good everywhere: answers often, prices well, leaks little.
    Good,
    /// Sharp in its home asset classes, poor and reluctant elsewhere.
    Niche,
    /// Fast, keen, and trades ahead of what it sees.
    FastLeaky,
    /// Slow (often past the response timeout) but the sharpest when it does answer.
    SlowSharp,
}

impl Archetype {
    pub fn name(self) -> &'static str {
        match self {
            Archetype::Good => "good everywhere",
            Archetype::Niche => "niche specialist",
            Archetype::FastLeaky => "fast but leaky",
            Archetype::SlowSharp => "slow but sharp",
        }
    }
}

/// A dealer as the simulator knows it.
#[derive(Debug, Clone, Serialize)]
pub struct DealerTruth {
    /// PartyID and display name (`SIM01`, ...).
    pub name: String,
    pub archetype: Archetype,
    /// Home asset classes (specialisms told to the router, as `config/dealers.toml` would).
    pub home: Vec<&'static str>,
    /// Behaviour per segment (`segment_of`).
    pub segments: [SegmentTruth; SEGMENTS],
}

/// The behaviour of an archetype at home and away.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ArchetypeParams {
    pub home: SegmentTruth,
    pub away: SegmentTruth,
}

/// Every parameter of the simulation. `Default` is the calibrated market of `sim/mod.rs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimConfig {
    pub seed: u64,
    /// Desk RFQs to simulate.
    pub rfqs: usize,
    /// Dealers in the market (archetypes assigned in the cycle of `dealer_archetype`).
    pub dealers: usize,
    /// Virtual time of the first RFQ, ns since the Unix epoch.
    pub start_ns: u64,
    /// Mean gap between two desk RFQs (exponential), seconds of virtual time.
    pub mean_gap_s: f64,
    /// Order size: log-normal median (face) and log-scale sigma, clamped, rounded to 100k.
    pub size_median: f64,
    pub size_sigma: f64,
    pub size_min: f64,
    pub size_max: f64,
    /// No order is larger than this many days of the bond's ADV (desks size to liquidity).
    pub size_max_adv_days: f64,
    /// Share of buys.
    pub buy_share: f64,
    /// Base quote cost in bps for an average dealer and a 1 MM order, per segment.
    pub base_cost_bps: [f64; SEGMENTS],
    /// Costs fall with size: base * (1 MM / size)^exponent, clamped to [0.6, 1.6] (EHP 2007).
    pub size_cost_exponent: f64,
    /// Dealers add this share of the order's expected impact to their quote (inventory risk).
    pub impact_pass_through: f64,
    /// Quote noise sd as a fraction of the base cost.
    pub quote_noise_frac: f64,
    /// Desk limit (reservation price, Gaussian): mean and sd as fractions of the base cost.
    pub limit_mean_frac: f64,
    pub limit_sd_frac: f64,
    /// Square-root impact: Y, exponent, permanent share, relaxation time of the rest.
    /// `Q / ADV` is capped at `impact_max_adv_ratio` (the law is measured below one day's
    /// volume).
    pub impact_y: f64,
    pub impact_max_adv_ratio: f64,
    pub impact_exponent: f64,
    pub impact_permanent_share: f64,
    pub impact_relax_s: f64,
    /// Daily volatility by segment when the bond has none (bps).
    pub daily_vol_bps: [f64; SEGMENTS],
    /// Seconds in a trading day (to scale daily volatility to virtual seconds).
    pub trading_day_s: f64,
    /// Step of the fair-value random walk, seconds.
    pub walk_step_s: f64,
    /// Noise of the published mid around the true mid, price points (sd).
    pub feed_noise_points: f64,
    /// How long after being asked a leaky dealer trades ahead (log-normal median, seconds).
    pub leak_delay_median_s: f64,
    /// The desk decides (hits the best quote within its limit, or walks away) this long after
    /// its request, seconds.
    pub desk_window_s: f64,
    /// A hit dealer's ExecutionReport comes this long after the hit, ms.
    pub fill_delay_ms: u64,
    /// Markout horizons, seconds (DESIGN section 7: 1, 5 and 30 minutes).
    pub markout_horizons_s: [u64; 3],
    /// Dealers per RFQ for the "4 at random" policy.
    pub random_k: usize,
    /// The static list: these dealer indices, every time.
    pub static_list: Vec<usize>,
    /// Largest panel the oracle considers.
    pub oracle_max_dealers: usize,
    /// The response timeout the oracle assumes (the engine's default protocol's), seconds.
    pub oracle_timeout_s: f64,
    pub good: ArchetypeParams,
    pub niche: ArchetypeParams,
    pub fast_leaky: ArchetypeParams,
    pub slow_sharp: ArchetypeParams,
    /// Axes (IOI, 35=6; `AxePlan`): each dealer holds up to this many at a time, in bonds of
    /// its home asset classes, weighted toward off-the-run (low-ADV) paper.
    pub axes_per_dealer: usize,
    /// An axe's announced life (exponential mean, seconds): its ValidUntilTime.
    pub axe_mean_life_s: f64,
    /// Pause between one axe ending and the dealer's next in the same slot (exponential mean).
    pub axe_mean_gap_s: f64,
    /// Chance an axe is cancelled early (28=C; done elsewhere), else refreshed before it
    /// expires (28=R, new size and ValidUntilTime) with `axe_refresh_prob`, else it lapses.
    pub axe_cancel_prob: f64,
    pub axe_refresh_prob: f64,
    /// IOIQty: log-normal median (face), at most the dealer's axed capacity.
    pub axe_qty_median: f64,
    /// Against an order on the other side of its axe, a dealer quotes at this multiple of its
    /// usual cost, quotes sizes up to this multiple of its usual capacity, and answers at
    /// least this often.
    pub axe_cost_factor: f64,
    pub axe_capacity_factor: f64,
    pub axe_answer_prob: f64,
}

const fn seg(
    answer_prob: f64,
    cost_mult: f64,
    response_median_s: f64,
    response_sigma: f64,
    leak_prob: f64,
    leak_intensity: f64,
    capacity: f64,
) -> SegmentTruth {
    SegmentTruth {
        answer_prob,
        cost_mult,
        response_median_s,
        response_sigma,
        leak_prob,
        leak_intensity,
        capacity,
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        let good = seg(0.85, 0.80, 6.0, 0.5, 0.10, 0.1, 25e6);
        SimConfig {
            seed: 1,
            rfqs: 3000,
            dealers: 12,
            start_ns: 1_795_438_800 * Nanos::PER_SEC, // 2026-11-23 13:00 UTC
            mean_gap_s: 15.0,
            size_median: 2e6,
            size_sigma: 0.9,
            size_min: 1e5,
            size_max: 25e6,
            size_max_adv_days: 3.0,
            buy_share: 0.5,
            // ig, hy, muni, structured, govt
            base_cost_bps: [52.0, 85.0, 52.0, 75.0, 8.0],
            size_cost_exponent: 0.15,
            impact_pass_through: 0.5,
            quote_noise_frac: 0.35,
            limit_mean_frac: 1.3,
            limit_sd_frac: 0.3,
            impact_y: 1.0,
            impact_max_adv_ratio: 1.0,
            impact_exponent: 0.5,
            impact_permanent_share: 2.0 / 3.0,
            impact_relax_s: 600.0,
            daily_vol_bps: {
                let v = PretradeConfig::default().default_daily_vol_bps;
                AssetClass::ALL.map(|a| v.of(a))
            },
            trading_day_s: 23_400.0,
            walk_step_s: 60.0,
            feed_noise_points: 0.3,
            leak_delay_median_s: 2.0,
            desk_window_s: 30.0,
            fill_delay_ms: 200,
            markout_horizons_s: [60, 300, 1800],
            random_k: 4,
            static_list: vec![0, 1, 2, 3],
            oracle_max_dealers: 8,
            oracle_timeout_s: 20.0,
            good: ArchetypeParams {
                home: good,
                away: good,
            },
            niche: ArchetypeParams {
                home: seg(0.90, 0.60, 8.0, 0.5, 0.05, 0.1, 20e6),
                away: seg(0.35, 1.25, 12.0, 0.6, 0.10, 0.1, 5e6),
            },
            fast_leaky: {
                let s = seg(0.90, 0.85, 2.0, 0.4, 0.80, 0.3, 25e6);
                ArchetypeParams { home: s, away: s }
            },
            slow_sharp: {
                let s = seg(0.75, 0.65, 14.0, 0.5, 0.05, 0.1, 15e6);
                ArchetypeParams { home: s, away: s }
            },
            axes_per_dealer: 3,
            axe_mean_life_s: 5_400.0,
            axe_mean_gap_s: 1_800.0,
            axe_cancel_prob: 0.2,
            axe_refresh_prob: 0.3,
            axe_qty_median: 5e6,
            axe_cost_factor: 0.5,
            axe_capacity_factor: 2.0,
            axe_answer_prob: 0.95,
        }
    }
}

/// The archetype and home asset classes of dealer `i`: the first four are the desk's
/// relationship banks (two good everywhere, two fast but leaky: big flow houses), then a
/// cycle of specialists, slow-but-sharp and one more leaky house.
pub fn dealer_archetype(i: usize) -> (Archetype, Vec<&'static str>) {
    use Archetype::*;
    let all = vec!["ig_corp", "hy_corp", "muni", "structured", "govt"];
    match i {
        0 | 1 => (Good, all),
        2 | 3 => (FastLeaky, all),
        _ => match (i - 4) % 8 {
            0 => (Niche, vec!["ig_corp"]),
            1 => (Niche, vec!["hy_corp"]),
            2 => (SlowSharp, all),
            3 => (Niche, vec!["muni"]),
            4 => (FastLeaky, all),
            5 => (Niche, vec!["structured", "hy_corp"]),
            6 => (SlowSharp, all),
            _ => (Niche, vec!["ig_corp", "govt"]),
        },
    }
}

impl SimConfig {
    /// The dealers of this market.
    pub fn dealer_truths(&self) -> Vec<DealerTruth> {
        (0..self.dealers)
            .map(|i| {
                let (archetype, home) = dealer_archetype(i);
                let p = match archetype {
                    Archetype::Good => self.good,
                    Archetype::Niche => self.niche,
                    Archetype::FastLeaky => self.fast_leaky,
                    Archetype::SlowSharp => self.slow_sharp,
                };
                let segments = AssetClass::ALL.map(|a| {
                    if home.contains(&a.name()) {
                        p.home
                    } else {
                        p.away
                    }
                });
                DealerTruth {
                    name: format!("SIM{:02}", i + 1),
                    archetype,
                    home,
                    segments,
                }
            })
            .collect()
    }
}

/// A bond of the universe, with what the simulator needs about it.
#[derive(Debug, Clone)]
pub struct Bond {
    /// SecurityID (ISIN, or CUSIP) and its SecurityIDSource (4 ISIN, 1 CUSIP).
    pub id: String,
    pub id_source: &'static str,
    pub segment: usize,
    pub adv: f64,
    pub daily_vol_bps: f64,
    /// Mid at the start, price points.
    pub start_mid: f64,
    /// Weight in the desk's flow.
    pub weight: f64,
}

/// The bonds the desk trades: the security master's rows (so the router's master matches).
pub fn universe(master: &SecurityMaster, cfg: &SimConfig) -> Vec<Bond> {
    let mut rng = Rng::derive(cfg.seed, 0xB0, 0, 0);
    master
        .instruments()
        .iter()
        .map(|i: &Instrument| {
            let segment = segment_of(i.asset_class);
            let (id, id_source) = match (&i.isin, &i.cusip) {
                (Some(_), _) => (i.id().to_string(), "4"),
                _ => (i.id().to_string(), "1"),
            };
            let coupon_shift = 1.5 * (i.coupon_pct - 4.5);
            let start_mid = (100.0 + coupon_shift + rng.normal(0.0, 2.0)).clamp(50.0, 150.0);
            let adv = if i.adv_30d > 0.0 { i.adv_30d } else { 1e6 };
            Bond {
                id,
                id_source,
                segment,
                adv,
                daily_vol_bps: i.daily_vol_bps.unwrap_or(cfg.daily_vol_bps[segment]),
                start_mid,
                weight: adv.sqrt(),
            }
        })
        .collect()
}

/// One desk order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Order {
    pub index: usize,
    pub at: Nanos,
    pub bond: usize,
    pub buy: bool,
    pub qty: f64,
    /// The desk walks away from quotes costing more than this (bps vs the arrival mid).
    pub limit_bps: f64,
}

impl Order {
    pub fn dir(&self) -> f64 {
        if self.buy {
            1.0
        } else {
            -1.0
        }
    }
}

/// The desk's order flow: the same for every policy.
pub fn order_flow(bonds: &[Bond], cfg: &SimConfig) -> Vec<Order> {
    let mut rng = Rng::derive(cfg.seed, 0x0F, 0, 0);
    let total: f64 = bonds.iter().map(|b| b.weight).sum();
    let mut t = cfg.start_ns as f64;
    (0..cfg.rfqs)
        .map(|index| {
            t += rng.exponential(cfg.mean_gap_s) * 1e9;
            let mut x = rng.uniform() * total;
            let mut bond = bonds.len() - 1;
            for (i, b) in bonds.iter().enumerate() {
                if x < b.weight {
                    bond = i;
                    break;
                }
                x -= b.weight;
            }
            let buy = rng.bernoulli(cfg.buy_share);
            let raw = rng
                .lognormal(cfg.size_median, cfg.size_sigma)
                .clamp(cfg.size_min, cfg.size_max);
            // Round lots of 100k, and never above the ADV cap (rounded down).
            let cap =
                ((cfg.size_max_adv_days * bonds[bond].adv / 1e5).floor() * 1e5).max(cfg.size_min);
            let qty = ((raw / 1e5).round() * 1e5).min(cap).max(1e5);
            let base = base_cost_bps(&bonds[bond], qty, cfg);
            let limit_bps = rng
                .normal(cfg.limit_mean_frac * base, cfg.limit_sd_frac * base)
                .max(0.2 * base);
            Order {
                index,
                at: Nanos(t as u64),
                bond,
                buy,
                qty,
                limit_bps,
            }
        })
        .collect()
}

/// Expected square-root impact of `qty` in `bond`, bps: Y * sigma * (Q / ADV)^exponent.
pub fn impact_bps(bond: &Bond, qty: f64, cfg: &SimConfig) -> f64 {
    let ratio = (qty / bond.adv).min(cfg.impact_max_adv_ratio);
    cfg.impact_y * bond.daily_vol_bps * ratio.powf(cfg.impact_exponent)
}

/// What an average dealer charges for `qty` of `bond`, bps from the mid.
pub fn base_cost_bps(bond: &Bond, qty: f64, cfg: &SimConfig) -> f64 {
    let size = (1e6 / qty).powf(cfg.size_cost_exponent).clamp(0.6, 1.6);
    cfg.base_cost_bps[bond.segment] * size + cfg.impact_pass_through * impact_bps(bond, qty, cfg)
}

/// What one asked dealer does with one order: drawn from the stream keyed by (order,
/// dealer), so every policy that asks this dealer for this order sees the same behaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reaction {
    /// `Some(cost_bps)`: quotes at this cost from the mid of the moment; `None`: declines.
    pub quote_cost_bps: Option<f64>,
    /// Seconds after being asked that it answers.
    pub after_s: f64,
    /// `Some((after_s, bps))`: trades ahead this long after being asked, moving the mid by
    /// this many bps against the client.
    pub leak: Option<(f64, f64)>,
}

/// `axed`: the dealer holds an axe against this order (`AxePlan::against`); it then behaves
/// as `axed_truth` says. The draws are the same either way (common random numbers).
pub fn reaction(
    cfg: &SimConfig,
    dealer: &DealerTruth,
    dealer_index: usize,
    bond: &Bond,
    order: &Order,
    axed: bool,
) -> Reaction {
    let mut r = Rng::derive(cfg.seed, 0xDEA1, order.index as u64, dealer_index as u64);
    let s = &truth_for(cfg, dealer, bond, axed);
    // Fixed draw order: answer, response, cost, leak, leak delay.
    let answers = r.bernoulli(s.answer_prob) && order.qty <= s.capacity;
    let after_s = r.lognormal(s.response_median_s, s.response_sigma);
    let base = base_cost_bps(bond, order.qty, cfg);
    let cost = r.normal(s.cost_mult * base, cfg.quote_noise_frac * base);
    let leaks = r.bernoulli(s.leak_prob);
    let leak_after = r.lognormal(cfg.leak_delay_median_s, 0.5);
    let leak_bps = s.leak_intensity * impact_bps(bond, order.qty, cfg);
    Reaction {
        quote_cost_bps: answers.then_some(cost),
        after_s: if answers { after_s } else { after_s.min(5.0) },
        leak: (leaks && leak_bps > 0.0).then_some((leak_after, leak_bps)),
    }
}

/// A dealer's behaviour in `bond`'s segment, axed against the order or not.
pub fn truth_for(cfg: &SimConfig, dealer: &DealerTruth, bond: &Bond, axed: bool) -> SegmentTruth {
    let s = dealer.segments[bond.segment];
    if !axed {
        return s;
    }
    SegmentTruth {
        answer_prob: s.answer_prob.max(cfg.axe_answer_prob),
        cost_mult: s.cost_mult * cfg.axe_cost_factor,
        capacity: s.capacity * cfg.axe_capacity_factor,
        ..s
    }
}

/// One axe: dealer `dealer` wants to trade `bond` (it buys when `dealer_buys`) from `from`
/// until `until` (virtual time; refreshes included, an early cancel ends it).
#[derive(Debug, Clone, PartialEq)]
pub struct AxeSpan {
    pub bond: usize,
    pub dealer_buys: bool,
    pub from: Nanos,
    pub until: Nanos,
}

/// One IndicationOfInterest a dealer sends.
#[derive(Debug, Clone, PartialEq)]
pub struct IoiMsg {
    pub at: Nanos,
    pub dealer: usize,
    /// IOITransType: `N`, `C` or `R`.
    pub trans: u8,
    pub id: String,
    /// IOIRefID of a cancel or replace.
    pub ref_id: Option<String>,
    pub bond: usize,
    pub dealer_buys: bool,
    pub qty: f64,
    pub valid_until: Nanos,
}

/// Every dealer's axes over the run, and the IOIs announcing them, in time order. Drawn
/// from the seed's stream per (dealer, slot), so the same seed gives the same axes.
#[derive(Debug, Clone, Default)]
pub struct AxePlan {
    /// Per dealer.
    pub spans: Vec<Vec<AxeSpan>>,
    pub messages: Vec<IoiMsg>,
}

impl AxePlan {
    /// Axes from `cfg.start_ns` until `until`.
    pub fn new(cfg: &SimConfig, dealers: &[DealerTruth], bonds: &[Bond], until: Nanos) -> AxePlan {
        let mut plan = AxePlan {
            spans: vec![Vec::new(); dealers.len()],
            messages: Vec::new(),
        };
        let s = |x: f64| (x.max(0.0) * 1e9) as u64;
        for (d, dealer) in dealers.iter().enumerate() {
            // Its home asset classes' bonds, off-the-run (low ADV) ones more often: the seed's
            // "standing axe for a particular off-the-run bond".
            let eligible: Vec<(usize, f64)> = bonds
                .iter()
                .enumerate()
                .filter(|(_, b)| {
                    dealer
                        .home
                        .iter()
                        .any(|h| AssetClass::from_name(h).map(segment_of) == Some(b.segment))
                })
                .map(|(i, b)| (i, 1.0 / b.adv.max(1.0).sqrt()))
                .collect();
            let total: f64 = eligible.iter().map(|e| e.1).sum();
            if eligible.is_empty() || total <= 0.0 {
                continue;
            }
            let capacity = dealer
                .segments
                .iter()
                .map(|x| x.capacity)
                .fold(0.0, f64::max)
                * cfg.axe_capacity_factor;
            for slot in 0..cfg.axes_per_dealer {
                let mut r = Rng::derive(cfg.seed, 0xA7E5, d as u64, slot as u64);
                let mut t = cfg.start_ns + s(r.uniform() * cfg.axe_mean_gap_s);
                let mut n = 0u64;
                while t < until.0 {
                    let mut x = r.uniform() * total;
                    let mut bond = eligible[eligible.len() - 1].0;
                    for &(i, w) in &eligible {
                        if x < w {
                            bond = i;
                            break;
                        }
                        x -= w;
                    }
                    let dealer_buys = r.bernoulli(0.5);
                    let qty = |r: &mut Rng| {
                        let q = r
                            .lognormal(cfg.axe_qty_median, 0.5)
                            .clamp(1e5, capacity.max(1e5));
                        (q / 1e5).round().max(1.0) * 1e5
                    };
                    let mut id = format!("AX{d}-{slot}-{n}");
                    n += 1;
                    let mut sent = t;
                    let mut valid = t + s(r.exponential(cfg.axe_mean_life_s)).max(1_000_000_000);
                    let msg = |at, trans, id: &str, ref_id: Option<String>, qty, valid| IoiMsg {
                        at: Nanos(at),
                        dealer: d,
                        trans,
                        id: id.to_string(),
                        ref_id,
                        bond,
                        dealer_buys,
                        qty,
                        valid_until: Nanos(valid),
                    };
                    let q = qty(&mut r);
                    plan.messages.push(msg(t, b'N', &id, None, q, valid));
                    let end = loop {
                        let u = r.uniform();
                        let frac = r.uniform();
                        if u < cfg.axe_cancel_prob {
                            let at = sent + ((valid - sent) as f64 * frac) as u64;
                            let cancel = format!("AX{d}-{slot}-{n}");
                            n += 1;
                            plan.messages
                                .push(msg(at, b'C', &cancel, Some(id.clone()), q, valid));
                            break at;
                        } else if u < cfg.axe_cancel_prob + cfg.axe_refresh_prob {
                            // Refreshed shortly before it would lapse.
                            let at = valid - ((valid - sent) as f64 * 0.1 * frac) as u64;
                            let next = format!("AX{d}-{slot}-{n}");
                            n += 1;
                            let life = s(r.exponential(cfg.axe_mean_life_s)).max(1_000_000_000);
                            let q = qty(&mut r);
                            plan.messages.push(msg(
                                at,
                                b'R',
                                &next,
                                Some(id.clone()),
                                q,
                                at + life,
                            ));
                            id = next;
                            sent = at;
                            valid = at + life;
                        } else {
                            break valid;
                        }
                    };
                    plan.spans[d].push(AxeSpan {
                        bond,
                        dealer_buys,
                        from: Nanos(t),
                        until: Nanos(end),
                    });
                    t = end + s(r.exponential(cfg.axe_mean_gap_s)).max(1_000_000_000);
                }
            }
        }
        plan.messages
            .sort_by(|a, b| (a.at, a.dealer, &a.id).cmp(&(b.at, b.dealer, &b.id)));
        plan
    }

    /// Dealer `d` holds an axe against a client trading `bond` (buying when `client_buys`) at
    /// `at`: it wants the other side.
    pub fn against(&self, d: usize, bond: usize, client_buys: bool, at: Nanos) -> bool {
        self.spans.get(d).is_some_and(|spans| {
            spans.iter().any(|s| {
                s.bond == bond && s.dealer_buys != client_buys && s.from <= at && at < s.until
            })
        })
    }

    /// The dealers axed against `order` as a bit mask (dealer `d` is bit `d`; at most 32).
    pub fn mask(&self, bond: usize, client_buys: bool, at: Nanos) -> u32 {
        (0..self.spans.len().min(32))
            .filter(|&d| self.against(d, bond, client_buys, at))
            .fold(0, |m, d| m | (1 << d))
    }
}

/// True mids over virtual time: a random walk per bond on a fixed grid (linear between
/// points), plus impulses (trades and leaks) with a permanent share and a transient share
/// that relaxes exponentially.
#[derive(Debug, Clone)]
pub struct MidPaths {
    start_ns: u64,
    step_ns: u64,
    /// Per bond: log-return offsets in bps at each grid point.
    walks: Vec<Vec<f64>>,
    start_mids: Vec<f64>,
    permanent_bps: Vec<f64>,
    /// Per bond: (time, transient bps) of recent impulses, oldest first, bounded.
    transient: Vec<std::collections::VecDeque<(u64, f64)>>,
    relax_ns: f64,
    permanent_share: f64,
}

impl MidPaths {
    /// Paths long enough for `horizon_s` seconds after `cfg.start_ns`.
    pub fn new(bonds: &[Bond], cfg: &SimConfig, horizon_s: f64) -> MidPaths {
        let step_s = cfg.walk_step_s.max(1.0);
        let points = (horizon_s / step_s).ceil() as usize + 2;
        let walks = bonds
            .iter()
            .enumerate()
            .map(|(b, bond)| {
                let mut r = Rng::derive(cfg.seed, 0x3A1C, b as u64, 0);
                let sd = bond.daily_vol_bps * (step_s / cfg.trading_day_s).sqrt();
                let mut x = 0.0;
                (0..points)
                    .map(|_| {
                        let v = x;
                        x += r.normal(0.0, sd);
                        v
                    })
                    .collect()
            })
            .collect();
        MidPaths {
            start_ns: cfg.start_ns,
            step_ns: (step_s * 1e9) as u64,
            walks,
            start_mids: bonds.iter().map(|b| b.start_mid).collect(),
            permanent_bps: vec![0.0; bonds.len()],
            transient: vec![std::collections::VecDeque::new(); bonds.len()],
            relax_ns: cfg.impact_relax_s.max(1.0) * 1e9,
            permanent_share: cfg.impact_permanent_share,
        }
    }

    /// The true mid of `bond` at `t` (impulses up to now included).
    pub fn mid(&self, bond: usize, t: Nanos) -> f64 {
        let walk = &self.walks[bond];
        let x = t.0.saturating_sub(self.start_ns) as f64 / self.step_ns as f64;
        let i = (x.floor() as usize).min(walk.len() - 2);
        let frac = (x - i as f64).clamp(0.0, 1.0);
        let w = walk[i] * (1.0 - frac) + walk[i + 1] * frac;
        let transient: f64 = self.transient[bond]
            .iter()
            .filter(|(s, _)| *s <= t.0)
            .map(|&(s, a)| a * (-((t.0 - s) as f64) / self.relax_ns).exp())
            .sum();
        // Log space: no sequence of moves takes a price through zero.
        self.start_mids[bond] * ((w + self.permanent_bps[bond] + transient) / 1e4).exp()
    }

    /// Moves `bond` by `bps` (signed, in price terms) at `t`.
    pub fn impulse(&mut self, bond: usize, t: Nanos, bps: f64) {
        self.permanent_bps[bond] += self.permanent_share * bps;
        let q = &mut self.transient[bond];
        if q.len() == MAX_IMPULSES_PER_BOND {
            q.pop_front();
        }
        q.push_back((t.0, (1.0 - self.permanent_share) * bps));
    }
}

/// The oracle's expected cost of asking `panel` (dealer indices, with their truths) for
/// `order`: E[min(limit, best answering quote)] plus the expected leakage of the panel, bps.
/// A request nobody fills is charged the desk's limit (the cost it was willing to bear).
/// Dealers whose bit is set in `axed` hold an axe against the order (`truth_for`).
pub fn expected_cost_bps(
    cfg: &SimConfig,
    dealers: &[DealerTruth],
    panel: &[usize],
    bond: &Bond,
    qty: f64,
    limit_bps: f64,
    axed: u32,
) -> f64 {
    let base = base_cost_bps(bond, qty, cfg);
    let sd = (cfg.quote_noise_frac * base).max(1e-6);
    let imp = impact_bps(bond, qty, cfg);
    let mut leak = 0.0;
    let mut parts: smallvec::SmallVec<[(f64, f64); 16]> = smallvec::SmallVec::new();
    for &d in panel {
        let s = &truth_for(cfg, &dealers[d], bond, d < 32 && axed & (1 << d) != 0);
        let in_time =
            normal_cdf((cfg.oracle_timeout_s / s.response_median_s).ln() / s.response_sigma);
        let p = if qty <= s.capacity {
            s.answer_prob * in_time
        } else {
            0.0
        };
        parts.push((p, s.cost_mult * base));
        leak += s.leak_prob * s.leak_intensity * imp;
    }
    // E[min(L, Y)] = lo + integral_lo^L P(Y > x) dx, with P(Y > x) = prod(1 - p_i Phi).
    let lo = parts
        .iter()
        .map(|&(_, m)| m - 5.0 * sd)
        .fold(limit_bps, f64::min);
    let steps = 80;
    let h = (limit_bps - lo) / steps as f64;
    let mut integral = 0.0;
    for k in 0..steps {
        let x = lo + (k as f64 + 0.5) * h;
        let survive: f64 = parts
            .iter()
            .map(|&(p, m)| 1.0 - p * normal_cdf((x - m) / sd))
            .product();
        integral += survive * h;
    }
    lo + integral + leak
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::scored::load_instruments;
    use std::collections::HashMap;

    fn market(cfg: &SimConfig) -> (Vec<Bond>, Vec<Order>) {
        let master = load_instruments(None).expect("embedded master");
        let bonds = universe(&master, cfg);
        let orders = order_flow(&bonds, cfg);
        (bonds, orders)
    }

    #[test]
    fn order_flow_is_reproducible_and_matches_its_configuration() {
        let cfg = SimConfig {
            rfqs: 20_000,
            ..SimConfig::default()
        };
        let (bonds, a) = market(&cfg);
        let (_, b) = market(&cfg);
        assert_eq!(a, b, "same seed, same flow");
        let buys = a.iter().filter(|o| o.buy).count() as f64 / a.len() as f64;
        assert!((buys - cfg.buy_share).abs() < 0.015, "buy share {buys}");
        let mut sizes: Vec<f64> = a.iter().map(|o| o.qty).collect();
        sizes.sort_by(f64::total_cmp);
        // Orders in bonds with room for the whole distribution keep its median.
        let mut roomy: Vec<f64> = a
            .iter()
            .filter(|o| cfg.size_max_adv_days * bonds[o.bond].adv >= cfg.size_max)
            .map(|o| o.qty)
            .collect();
        roomy.sort_by(f64::total_cmp);
        let median = roomy[roomy.len() / 2];
        assert!(
            (median / cfg.size_median - 1.0).abs() < 0.1,
            "median size {median}"
        );
        assert!(sizes[0] >= cfg.size_min && sizes[sizes.len() - 1] <= cfg.size_max);
        for o in &a {
            assert!(
                o.qty <= (cfg.size_max_adv_days * bonds[o.bond].adv).max(cfg.size_min.max(1e5)),
                "{o:?}"
            );
        }
        let span_s = (a[a.len() - 1].at.0 - cfg.start_ns) as f64 / 1e9;
        let gap = span_s / a.len() as f64;
        assert!((gap / cfg.mean_gap_s - 1.0).abs() < 0.03, "mean gap {gap}");
        let other = SimConfig {
            seed: 2,
            ..cfg.clone()
        };
        assert_ne!(order_flow(&bonds, &other), a, "another seed, another flow");
    }

    #[test]
    fn dealer_reactions_match_the_hidden_parameters() {
        let cfg = SimConfig::default();
        let (bonds, orders) = market(&cfg);
        let dealers = cfg.dealer_truths();
        // Dealer 2 (fast but leaky) on every order: answer rate, cost, response, leaks.
        let d = 2;
        let (mut answered, mut n, mut leaks) = (0.0, 0.0, 0.0);
        let (mut cost_ratio, mut times) = (0.0, Vec::new());
        for _ in 0..4 {
            for o in &orders {
                let bond = &bonds[o.bond];
                let s = dealers[d].segments[bond.segment];
                if o.qty > s.capacity {
                    continue;
                }
                let r = reaction(&cfg, &dealers[d], d, bond, o, false);
                n += 1.0;
                if let Some(c) = r.quote_cost_bps {
                    answered += 1.0;
                    cost_ratio += c / base_cost_bps(bond, o.qty, &cfg);
                    times.push(r.after_s);
                }
                if r.leak.is_some() {
                    leaks += 1.0;
                }
            }
        }
        let s = dealers[d].segments[0];
        assert!((answered / n - s.answer_prob).abs() < 0.02, "answer rate");
        assert!((cost_ratio / answered - s.cost_mult).abs() < 0.03, "cost");
        assert!((leaks / n - s.leak_prob).abs() < 0.02, "leak rate");
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        assert!(
            (median / s.response_median_s - 1.0).abs() < 0.08,
            "median {median}"
        );
        // Same keys, same reaction.
        let o = &orders[17];
        assert_eq!(
            reaction(&cfg, &dealers[d], d, &bonds[o.bond], o, false),
            reaction(&cfg, &dealers[d], d, &bonds[o.bond], o, false)
        );
    }

    #[test]
    fn mids_walk_with_the_configured_volatility_and_impulses_relax_to_their_permanent_share() {
        let cfg = SimConfig::default();
        let (bonds, _) = market(&cfg);
        let days = 40.0;
        let mut paths = MidPaths::new(&bonds, &cfg, days * cfg.trading_day_s);
        // Daily log-returns across bonds, normalised by each bond's vol: sd ~ 1.
        let (mut s2, mut n) = (0.0, 0.0);
        for (b, bond) in bonds.iter().enumerate() {
            for day in 0..(days as u64 - 1) {
                let t0 = Nanos(cfg.start_ns + day * (cfg.trading_day_s as u64) * Nanos::PER_SEC);
                let t1 = Nanos(t0.0 + (cfg.trading_day_s as u64) * Nanos::PER_SEC);
                let r = (paths.mid(b, t1) / paths.mid(b, t0)).ln() * 1e4 / bond.daily_vol_bps;
                s2 += r * r;
                n += 1.0;
            }
        }
        let sd = (s2 / n).sqrt();
        assert!((sd - 1.0).abs() < 0.06, "normalised daily sd {sd}");
        let t = Nanos(cfg.start_ns + 1000 * Nanos::PER_SEC);
        let before = paths.mid(0, t);
        paths.impulse(0, t, 30.0);
        let now = paths.mid(0, t) / before - 1.0;
        assert!((now.ln_1p() * 1e4 - 30.0).abs() < 0.01);
        let later = Nanos(t.0 + 20 * 600 * Nanos::PER_SEC);
        let walk_only = {
            let fresh = MidPaths::new(&bonds, &cfg, days * cfg.trading_day_s);
            fresh.mid(0, later)
        };
        let kept = (paths.mid(0, later) / walk_only).ln() * 1e4;
        assert!((kept - 20.0).abs() < 0.1, "permanent share kept {kept}");
    }

    #[test]
    fn axes_are_reproducible_follow_their_iois_and_stay_in_home_segments() {
        let cfg = SimConfig::default();
        let (bonds, orders) = market(&cfg);
        let dealers = cfg.dealer_truths();
        let until = orders[orders.len() - 1].at;
        let plan = AxePlan::new(&cfg, &dealers, &bonds, until);
        let again = AxePlan::new(&cfg, &dealers, &bonds, until);
        assert_eq!(plan.messages, again.messages, "same seed, same axes");
        assert!(plan.messages.windows(2).all(|w| w[0].at <= w[1].at));
        let mut live: HashMap<String, (usize, usize, bool)> = HashMap::new();
        let (mut n, mut c, mut r) = (0, 0, 0);
        for m in &plan.messages {
            let home = &dealers[m.dealer].home;
            assert!(home
                .iter()
                .any(|h| AssetClass::from_name(h).map(segment_of) == Some(bonds[m.bond].segment)));
            match m.trans {
                b'N' => n += 1,
                b'C' | b'R' => {
                    let old = live
                        .remove(m.ref_id.as_deref().expect("a reference"))
                        .expect("refers to a live IOI");
                    assert_eq!(old, (m.dealer, m.bond, m.dealer_buys));
                    if m.trans == b'C' {
                        c += 1;
                    } else {
                        r += 1;
                    }
                }
                _ => panic!("IOITransType {}", m.trans),
            }
            if m.trans != b'C' {
                assert!(m.valid_until > m.at);
                live.insert(m.id.clone(), (m.dealer, m.bond, m.dealer_buys));
            }
        }
        assert!(n > 100 && c > 10 && r > 10, "N {n}, C {c}, R {r}");
        // The truth follows the spans: at most axes_per_dealer at once per dealer.
        for o in orders.iter().step_by(50) {
            for (d, spans) in plan.spans.iter().enumerate() {
                let now = spans
                    .iter()
                    .filter(|s| s.from <= o.at && o.at < s.until)
                    .count();
                assert!(now <= cfg.axes_per_dealer);
                let against = plan.against(d, o.bond, o.buy, o.at);
                assert_eq!(against, plan.mask(o.bond, o.buy, o.at) & (1 << d) != 0);
            }
        }
        let axed = orders
            .iter()
            .filter(|o| plan.mask(o.bond, o.buy, o.at) != 0)
            .count();
        assert!(axed > 0, "some orders meet an axe");
    }

    #[test]
    fn the_oracles_expected_cost_prefers_sharp_quiet_dealers() {
        let cfg = SimConfig::default();
        let (bonds, _) = market(&cfg);
        let dealers = cfg.dealer_truths();
        let bond = bonds.iter().find(|b| b.segment == 0).expect("an ig bond");
        let limit = 1.3 * base_cost_bps(bond, 2e6, &cfg);
        let good = expected_cost_bps(&cfg, &dealers, &[0, 1], bond, 2e6, limit, 0);
        let leaky = expected_cost_bps(&cfg, &dealers, &[2, 3], bond, 2e6, limit, 0);
        assert!(good < leaky, "good {good} vs leaky {leaky}");
        let one = expected_cost_bps(&cfg, &dealers, &[0], bond, 2e6, limit, 0);
        assert!(good < one, "competition helps: {good} vs {one}");
        // An axe against the order makes its dealer cheaper to ask.
        let axed = expected_cost_bps(&cfg, &dealers, &[0], bond, 2e6, limit, 1);
        assert!(axed < one, "axed {axed} vs {one}");
    }
}
