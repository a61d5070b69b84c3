//! The scoring model: per (dealer, segment) statistics, their decay, and the composite score.
//!
//! Owns `RowStats` (what one score-table row holds), how one observation updates it
//! (exponential decay in O(1) from the row's last update), how a row becomes metrics
//! (windows, shrinkage toward the segment's mean), the TCA sign conventions of DESIGN
//! section 7, the seed's normalisations and the weighted composite, and segment back-off.
//! Everything here is a pure function of its arguments: no clock (`now` is a parameter), no
//! I/O, no allocation. Where rows live and how they are shared is `table`'s business.
//!
//! ## Decay
//! Every count and sum in a row is a decayed total referred to the row's `last_update_ns`:
//! an observation made at `t` weighs `2^-((T - t) / half_life)` at time `T`. An update at
//! `t >= last_update` first multiplies the row by `2^-((t - last_update) / half_life)`,
//! then adds the observation with weight 1; an update older than `last_update` (out of order)
//! is added with weight `2^-((last_update - t) / half_life)` instead. Either way the row
//! equals the same sum, whatever the order of the updates, up to f32 rounding, which is what
//! lets a rebuild from the journal match the live table.
//!
//! ## Windows
//! A window ("over the past 90 days") is honoured by the row's last update: a row whose
//! last update is older than the window holds no observation inside the window, so it counts
//! as empty (the back-off goes broader, and past the asset class the dealer scores the prior).
//! Within the window the decay weighs recent data more, and data older than the window still
//! weighs at most `2^-(window / half_life)` (12.5% at the defaults, 30-day half-life and 90-day
//! window; `ModelConfig::validate` refuses a half-life longer than the window). The
//! alternative, a second accumulator per window, would double the row for a fuzzier gain:
//! an exact window needs per-event history, which is the journal's job (`rfq-journal`
//! scorecards compute exact windows from it).
//!
//! ## Shrinkage
//! A dealer's rate is the empirical-Bayes (beta-binomial) posterior mean with the segment's
//! pooled rate as the prior mean and `prior_strength` pseudo-observations:
//! `(successes + k * m) / (trials + k)`. Means (price improvement, markouts, response time,
//! drift) shrink the same way toward the segment mean, weighted by their own observation
//! counts. A dealer with few observations scores near the segment; one with many, near its
//! own record.

use crate::time::Nanos;

/// Number of markout horizons a row holds.
pub const MARKOUT_HORIZONS: usize = 3;

/// One score-table row's statistics. Counts and sums are decayed totals referred to
/// `last_update_ns`; `rfqs_total`/`wins_total` are plain lifetime counts (saturating).
/// Kept in f32 because that is what the table stores: the in-memory and on-disk values are
/// identical, so a rebuild can be compared bit for bit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowStats {
    /// When this row was last updated (0: never).
    pub last_update_ns: u64,
    /// RFQs sent to the dealer.
    pub rfqs_sent: f32,
    /// Answers in time (quotes and declines).
    pub responses: f32,
    /// Explicit declines (QuoteRequestReject / pass).
    pub declines: f32,
    /// Firm quotes in time.
    pub quotes: f32,
    /// Trades won (filled).
    pub wins: f32,
    /// Quotes that came late or were invalid.
    pub late_or_invalid: f32,
    /// Sum of response times (seconds) over `quotes`.
    pub response_s_sum: f32,
    /// Sum over `quotes` of each firm quote's competitiveness: its price against the mean of
    /// the other firm quotes in the same RFQ (bps, > 0: better than its peers; 0 for a lone
    /// quote). What the composite's price-improvement component reads; DESIGN's price
    /// improvement vs arrival is reported per execution (`tca::ExecutionTca`), not summed here.
    /// (Score-table format version 1 held the improvement vs arrival over `wins` here.)
    pub quote_vs_peers_bps_sum: f32,
    /// Sum of price vs cover (bps, > 0: better than the second-best quote) over `cover_n`.
    pub vs_cover_bps_sum: f32,
    pub cover_n: f32,
    /// Sum of the winner's markout (bps) at each configured horizon, and its count.
    pub markout_bps_sum: [f32; MARKOUT_HORIZONS],
    pub markout_n: [f32; MARKOUT_HORIZONS],
    /// Sum of leakage drift (bps) measured while this dealer was asked and lost, and its count.
    pub drift_bps_sum: f32,
    pub drift_n: f32,
    /// Sum of the winner's NET markout at the leakage horizon (bps; `tca`: the mean of the
    /// prints around the horizon, with the expected lasting impact of the desk's own
    /// executions in the bond, this one included, taken out), and its count. What the
    /// composite's winner-leakage component reads; `markout_bps_sum` keeps DESIGN's markouts.
    pub net_markout_bps_sum: f32,
    pub net_markout_n: f32,
    /// Lifetime RFQs sent (undecayed).
    pub rfqs_total: u32,
    /// Lifetime wins (undecayed).
    pub wins_total: u32,
}

/// What happened, as far as one dealer's statistics are concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// The dealer was asked.
    RfqSent,
    /// The dealer declined, `response_s` after it was asked.
    Declined { response_s: f64 },
    /// The dealer quoted firm, in time.
    Quoted { response_s: f64 },
    /// A quote after the deadline, or one that failed validation.
    LateOrInvalid,
    /// The dealer's quote was executed. `vs_cover_bps` is None when it was the only quote.
    Won {
        price_improvement_bps: f64,
        vs_cover_bps: Option<f64>,
    },
    /// The winner's markout at configured horizon `horizon` (an index into
    /// `ModelConfig::markout_horizons_s`).
    Markout { horizon: usize, bps: f64 },
    /// The winner's markout at the leakage horizon net of the desk's own expected impact in
    /// the bond, on a window of prints centred on the horizon (`tca`; the composite's
    /// winner-leakage input).
    NetMarkout { bps: f64 },
    /// Drift measured after an RFQ this dealer was asked for and lost, less the leakage the
    /// other dealers asked in that RFQ are estimated to add (`tca`'s attribution).
    Drift { bps: f64 },
    /// One firm quote's price against the mean of the other firm quotes in the same RFQ
    /// (`quote_vs_peers_bps`; 0 for a lone quote): one per `Quoted`, made when the RFQ ends.
    Competitiveness { bps: f64 },
}

/// Why an observation was refused (the row is left as it was).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ObservationError {
    /// A measurement is NaN or infinite.
    NotFinite,
    /// A response time below zero.
    NegativeTime,
    /// A markout horizon index past `MARKOUT_HORIZONS`.
    NoSuchHorizon { horizon: usize },
}

impl std::fmt::Display for ObservationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObservationError::NotFinite => f.write_str("measurement is not a finite number"),
            ObservationError::NegativeTime => f.write_str("response time is negative"),
            ObservationError::NoSuchHorizon { horizon } => {
                write!(f, "markout horizon index {horizon} out of range")
            }
        }
    }
}

impl std::error::Error for ObservationError {}

/// Component weights of the composite. The seed's are 30/40/20/10 (fill, price improvement,
/// leakage, speed); `loser_leakage` is ours and 0 by default, which reproduces the seed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub fill: f64,
    pub price_improvement: f64,
    pub leakage: f64,
    pub speed: f64,
    pub loser_leakage: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            fill: 0.30,
            price_improvement: 0.40,
            leakage: 0.20,
            speed: 0.10,
            loser_leakage: 0.0,
        }
    }
}

/// The model's parameters (config section `[scoring]`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Half-life of the exponential decay.
    pub half_life_s: u64,
    /// Rows not updated within this long count as empty.
    pub window_s: u64,
    /// Markout horizons, ascending.
    pub markout_horizons_s: [u64; MARKOUT_HORIZONS],
    /// The horizon of the winner's net markout, which the winner-leakage score reads (must be
    /// one of `markout_horizons_s`). Losers' leakage drift does not use it: it is measured
    /// over the request's life (`tca`).
    pub leakage_horizon_s: u64,
    /// Pseudo-observations of the segment prior in shrinkage (k).
    pub prior_strength: f64,
    /// Back-off: a segment is used when the dealer has at least this many (decayed) RFQs in it.
    pub min_observations: f64,
    /// Speed score `1 - seconds / speed_scale_s`, clamped to [0, 1] (the seed: 60).
    pub speed_scale_s: f64,
    /// Each measurement in bps is clamped to +/- this before it enters a row, so one bad
    /// market-data print cannot dominate a dealer's record.
    pub max_abs_bps: f64,
    /// Priors used when a segment has no data at all.
    pub default_fill_rate: f64,
    pub default_response_s: f64,
    pub weights: Weights,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            half_life_s: 30 * 86_400,
            window_s: 90 * 86_400,
            markout_horizons_s: [60, 300, 1_800],
            leakage_horizon_s: 1_800,
            prior_strength: 10.0,
            min_observations: 5.0,
            speed_scale_s: 60.0,
            max_abs_bps: 1_000.0,
            default_fill_rate: 0.5,
            default_response_s: 30.0,
            weights: Weights::default(),
        }
    }
}

/// A configuration the model cannot work with.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfigError {
    ZeroHalfLife,
    HalfLifeLongerThanWindow {
        half_life_s: u64,
        window_s: u64,
    },
    HorizonsNotAscending,
    LeakageHorizonNotConfigured {
        leakage_horizon_s: u64,
    },
    /// A parameter that must be finite and >= 0 (or > 0) is not.
    BadParameter {
        name: &'static str,
        value: f64,
    },
}

impl std::fmt::Display for ModelConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelConfigError::ZeroHalfLife => f.write_str("half_life_s must be above 0"),
            ModelConfigError::HalfLifeLongerThanWindow {
                half_life_s,
                window_s,
            } => write!(
                f,
                "half_life_s ({half_life_s}) must not exceed window_s ({window_s}): \
                 data older than the window would still weigh more than half"
            ),
            ModelConfigError::HorizonsNotAscending => {
                f.write_str("markout_horizons_s must be strictly ascending and above 0")
            }
            ModelConfigError::LeakageHorizonNotConfigured { leakage_horizon_s } => write!(
                f,
                "leakage_horizon_s ({leakage_horizon_s}) is not one of markout_horizons_s"
            ),
            ModelConfigError::BadParameter { name, value } => {
                write!(f, "{name} = {value} is out of range")
            }
        }
    }
}

impl std::error::Error for ModelConfigError {}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        if self.half_life_s == 0 {
            return Err(ModelConfigError::ZeroHalfLife);
        }
        if self.half_life_s > self.window_s {
            return Err(ModelConfigError::HalfLifeLongerThanWindow {
                half_life_s: self.half_life_s,
                window_s: self.window_s,
            });
        }
        let h = self.markout_horizons_s;
        if h[0] == 0 || h.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ModelConfigError::HorizonsNotAscending);
        }
        if self.leakage_horizon().is_none() {
            return Err(ModelConfigError::LeakageHorizonNotConfigured {
                leakage_horizon_s: self.leakage_horizon_s,
            });
        }
        let w = &self.weights;
        for (name, value, positive) in [
            ("prior_strength", self.prior_strength, false),
            ("min_observations", self.min_observations, false),
            ("speed_scale_s", self.speed_scale_s, true),
            ("max_abs_bps", self.max_abs_bps, true),
            ("default_response_s", self.default_response_s, false),
            ("weights.fill", w.fill, false),
            ("weights.price_improvement", w.price_improvement, false),
            ("weights.leakage", w.leakage, false),
            ("weights.speed", w.speed, false),
            ("weights.loser_leakage", w.loser_leakage, false),
        ] {
            if !value.is_finite() || value < 0.0 || (positive && value == 0.0) {
                return Err(ModelConfigError::BadParameter { name, value });
            }
        }
        if !(0.0..=1.0).contains(&self.default_fill_rate) {
            return Err(ModelConfigError::BadParameter {
                name: "default_fill_rate",
                value: self.default_fill_rate,
            });
        }
        Ok(())
    }

    /// Index of the leakage horizon in `markout_horizons_s`.
    pub fn leakage_horizon(&self) -> Option<usize> {
        self.markout_horizons_s
            .iter()
            .position(|&h| h == self.leakage_horizon_s)
    }

    fn half_life_ns(&self) -> f64 {
        self.half_life_s as f64 * 1e9
    }
}

/// `2^-(dt / half_life)`.
pub fn decay_factor(dt_ns: u64, half_life_ns: f64) -> f64 {
    (-(dt_ns as f64) / half_life_ns).exp2()
}

// ---------------------------------------------------------------------------------------------
// Sign conventions (DESIGN section 7). `dir` = +1 buy, -1 sell. None when a price is not a
// positive finite number.

/// The order side as a sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Buy,
    Sell,
}

impl Direction {
    pub fn sign(self) -> f64 {
        match self {
            Direction::Buy => 1.0,
            Direction::Sell => -1.0,
        }
    }
}

fn price_ok(p: f64) -> bool {
    p.is_finite() && p > 0.0
}

/// `dir * (arrival_mid - exec_px) / arrival_mid * 1e4`: > 0 when the client did better than
/// the mid at RFQ arrival.
pub fn price_improvement_bps(dir: Direction, arrival_mid: f64, exec_px: f64) -> Option<f64> {
    (price_ok(arrival_mid) && price_ok(exec_px))
        .then(|| dir.sign() * (arrival_mid - exec_px) / arrival_mid * 1e4)
}

/// `dir * (mid(t_exec + h) - exec_px) / exec_px * 1e4`: < 0 when the price reverted after the
/// trade (the client paid a temporary premium).
pub fn markout_bps(dir: Direction, exec_px: f64, mid_after: f64) -> Option<f64> {
    (price_ok(exec_px) && price_ok(mid_after))
        .then(|| dir.sign() * (mid_after - exec_px) / exec_px * 1e4)
}

/// `dir * (mid(t_rfq + h) - mid(t_rfq)) / mid(t_rfq) * 1e4 - expected_impact_bps`: > 0 when,
/// after the request was seen, the market moved the way the client wanted to trade by more
/// than the client's own expected impact explains.
pub fn drift_bps(
    dir: Direction,
    mid_at_rfq: f64,
    mid_after: f64,
    expected_impact_bps: f64,
) -> Option<f64> {
    (price_ok(mid_at_rfq) && price_ok(mid_after) && expected_impact_bps.is_finite())
        .then(|| dir.sign() * (mid_after - mid_at_rfq) / mid_at_rfq * 1e4 - expected_impact_bps)
}

/// `dir * (cover_px - exec_px) / cover_px * 1e4`: > 0 when the winner beat the second-best
/// quote (the cover) by that much.
pub fn vs_cover_bps(dir: Direction, exec_px: f64, cover_px: f64) -> Option<f64> {
    (price_ok(exec_px) && price_ok(cover_px))
        .then(|| dir.sign() * (cover_px - exec_px) / cover_px * 1e4)
}

/// A quote's competitiveness: `dir * (peers_mean_px - quote_px) / peers_mean_px * 1e4`, with
/// `peers_mean_px` the mean of the other firm quotes in the same RFQ (> 0: better than its
/// peers). Everything common to the RFQ (the arrival mid's noise, the bond and size's cost,
/// the market's move, the client's impact) cancels. None when a price is not positive finite.
pub fn quote_vs_peers_bps(dir: Direction, quote_px: f64, peers_mean_px: f64) -> Option<f64> {
    vs_cover_bps(dir, quote_px, peers_mean_px)
}

// ---------------------------------------------------------------------------------------------
// Updates.

impl RowStats {
    /// Multiplies every decayed field by `f`.
    fn scale(&mut self, f: f64) {
        let s = |x: &mut f32| *x = (f64::from(*x) * f) as f32;
        s(&mut self.rfqs_sent);
        s(&mut self.responses);
        s(&mut self.declines);
        s(&mut self.quotes);
        s(&mut self.wins);
        s(&mut self.late_or_invalid);
        s(&mut self.response_s_sum);
        s(&mut self.quote_vs_peers_bps_sum);
        s(&mut self.vs_cover_bps_sum);
        s(&mut self.cover_n);
        for i in 0..MARKOUT_HORIZONS {
            s(&mut self.markout_bps_sum[i]);
            s(&mut self.markout_n[i]);
        }
        s(&mut self.drift_bps_sum);
        s(&mut self.drift_n);
        s(&mut self.net_markout_bps_sum);
        s(&mut self.net_markout_n);
    }

    /// This row as it would read at `now` (every decayed field brought forward). A row whose
    /// last update is after `now` is returned unchanged.
    pub fn decayed_to(&self, now: Nanos, cfg: &ModelConfig) -> RowStats {
        let mut r = *self;
        if now.0 > self.last_update_ns {
            r.scale(decay_factor(
                now.0 - self.last_update_ns,
                cfg.half_life_ns(),
            ));
            r.last_update_ns = now.0;
        }
        r
    }

    /// True when the row holds an observation inside the window ending at `now`.
    pub fn in_window(&self, now: Nanos, cfg: &ModelConfig) -> bool {
        self.last_update_ns != 0
            && now.0.saturating_sub(self.last_update_ns)
                <= cfg.window_s.saturating_mul(1_000_000_000)
    }

    /// Adds one observation made at `at`, in O(1). A refused observation leaves the row as it
    /// was.
    pub fn observe(
        &mut self,
        obs: Observation,
        at: Nanos,
        cfg: &ModelConfig,
    ) -> Result<(), ObservationError> {
        let clamp = |bps: f64| -> Result<f64, ObservationError> {
            if bps.is_finite() {
                Ok(bps.clamp(-cfg.max_abs_bps, cfg.max_abs_bps))
            } else {
                Err(ObservationError::NotFinite)
            }
        };
        let time = |s: f64| -> Result<f64, ObservationError> {
            if !s.is_finite() {
                Err(ObservationError::NotFinite)
            } else if s < 0.0 {
                Err(ObservationError::NegativeTime)
            } else {
                Ok(s)
            }
        };
        // Validate everything before touching the row.
        let obs = match obs {
            Observation::Declined { response_s } => Observation::Declined {
                response_s: time(response_s)?,
            },
            Observation::Quoted { response_s } => Observation::Quoted {
                response_s: time(response_s)?,
            },
            Observation::Won {
                price_improvement_bps,
                vs_cover_bps,
            } => Observation::Won {
                price_improvement_bps: clamp(price_improvement_bps)?,
                vs_cover_bps: vs_cover_bps.map(clamp).transpose()?,
            },
            Observation::Markout { horizon, bps } => {
                if horizon >= MARKOUT_HORIZONS {
                    return Err(ObservationError::NoSuchHorizon { horizon });
                }
                Observation::Markout {
                    horizon,
                    bps: clamp(bps)?,
                }
            }
            Observation::Drift { bps } => Observation::Drift { bps: clamp(bps)? },
            Observation::NetMarkout { bps } => Observation::NetMarkout { bps: clamp(bps)? },
            Observation::Competitiveness { bps } => {
                Observation::Competitiveness { bps: clamp(bps)? }
            }
            o @ (Observation::RfqSent | Observation::LateOrInvalid) => o,
        };

        // Bring the row to `at`, or weigh a late observation down to the row's time.
        let w = if at.0 >= self.last_update_ns {
            if self.last_update_ns != 0 {
                self.scale(decay_factor(at.0 - self.last_update_ns, cfg.half_life_ns()));
            }
            self.last_update_ns = at.0;
            1.0
        } else {
            decay_factor(self.last_update_ns - at.0, cfg.half_life_ns())
        };
        let add = |x: &mut f32, v: f64| *x = (f64::from(*x) + w * v) as f32;
        match obs {
            Observation::RfqSent => {
                add(&mut self.rfqs_sent, 1.0);
                self.rfqs_total = self.rfqs_total.saturating_add(1);
            }
            Observation::Declined { .. } => {
                add(&mut self.responses, 1.0);
                add(&mut self.declines, 1.0);
            }
            Observation::Quoted { response_s } => {
                add(&mut self.responses, 1.0);
                add(&mut self.quotes, 1.0);
                add(&mut self.response_s_sum, response_s);
            }
            Observation::LateOrInvalid => add(&mut self.late_or_invalid, 1.0),
            Observation::Won { vs_cover_bps, .. } => {
                // The improvement vs arrival is not summed: the row's price score is the
                // competitiveness of every quote (`Competitiveness`), see RowStats.
                add(&mut self.wins, 1.0);
                if let Some(c) = vs_cover_bps {
                    add(&mut self.cover_n, 1.0);
                    add(&mut self.vs_cover_bps_sum, c);
                }
                self.wins_total = self.wins_total.saturating_add(1);
            }
            Observation::Markout { horizon, bps } => {
                add(&mut self.markout_n[horizon], 1.0);
                add(&mut self.markout_bps_sum[horizon], bps);
            }
            Observation::Drift { bps } => {
                add(&mut self.drift_n, 1.0);
                add(&mut self.drift_bps_sum, bps);
            }
            Observation::NetMarkout { bps } => {
                add(&mut self.net_markout_n, 1.0);
                add(&mut self.net_markout_bps_sum, bps);
            }
            Observation::Competitiveness { bps } => {
                add(&mut self.quote_vs_peers_bps_sum, bps);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics, normalisation, composite.

/// A dealer's measured performance in one segment, after decay, window and shrinkage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// Trades executed / RFQs sent.
    pub fill_rate: f64,
    /// Mean quote competitiveness: price vs the RFQ's other firm quotes, over every firm
    /// quote (bps; the composite's price-improvement input).
    pub price_improvement_bps: f64,
    /// Mean winner's net markout at the leakage horizon (bps; `RowStats::net_markout_bps_sum`:
    /// the composite's winner-leakage input).
    pub leakage_markout_bps: f64,
    /// Mean seconds from RFQ sent to firm quote.
    pub response_s: f64,
    /// Mean leakage drift while asked and lost (bps).
    pub drift_bps: f64,
    /// Mean price vs cover (bps).
    pub vs_cover_bps: f64,
    /// Decayed RFQs behind these numbers (the dealer's own, before shrinkage).
    pub observations: f64,
}

/// Normalised component scores (the seed's formulas).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// The fill rate itself.
    pub fill: f64,
    /// `1 + bps / 10`.
    pub price_improvement: f64,
    /// `1 + markout_bps / 10` on the winner's net markout at the leakage horizon.
    pub leakage: f64,
    /// `1 - seconds / speed_scale_s`, clamped to [0, 1].
    pub speed: f64,
    /// `1 - drift_bps / 10`.
    pub loser_leakage: f64,
}

/// `(sum + k * prior_mean) / (n + k)`, or the prior when there is nothing at all.
pub fn shrunk_mean(sum: f64, n: f64, prior_mean: f64, k: f64) -> f64 {
    let d = n + k;
    if d > 0.0 {
        (sum + k * prior_mean) / d
    } else {
        prior_mean
    }
}

fn ratio_or(sum: f32, n: f32, default: f64) -> f64 {
    if n > 0.0 {
        f64::from(sum) / f64::from(n)
    } else {
        default
    }
}

/// A segment's pooled means: the prior every dealer in the segment is shrunk toward.
/// Compute it once per segment and reuse it for every dealer (`metrics_with`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentPrior {
    pub fill_rate: f64,
    pub price_improvement_bps: f64,
    pub leakage_markout_bps: f64,
    pub response_s: f64,
    pub drift_bps: f64,
    pub vs_cover_bps: f64,
}

impl SegmentPrior {
    /// From the segment's pooled row (the table's aggregate dealer). A row outside the window
    /// counts as empty, and an empty segment gives the configured defaults. Means are ratios
    /// of decayed sums to decayed counts, so the decay cancels: no need to bring the row
    /// forward to `now`.
    pub fn of(segment: &RowStats, now: Nanos, cfg: &ModelConfig) -> SegmentPrior {
        let empty = RowStats::default();
        let seg = if segment.in_window(now, cfg) {
            segment
        } else {
            &empty
        };
        SegmentPrior {
            fill_rate: ratio_or(seg.wins, seg.rfqs_sent, cfg.default_fill_rate).clamp(0.0, 1.0),
            price_improvement_bps: ratio_or(seg.quote_vs_peers_bps_sum, seg.quotes, 0.0),
            leakage_markout_bps: ratio_or(seg.net_markout_bps_sum, seg.net_markout_n, 0.0),
            response_s: ratio_or(seg.response_s_sum, seg.quotes, cfg.default_response_s),
            drift_bps: ratio_or(seg.drift_bps_sum, seg.drift_n, 0.0),
            vs_cover_bps: ratio_or(seg.vs_cover_bps_sum, seg.cover_n, 0.0),
        }
    }
}

/// The dealer's metrics at `now` from its row and its segment's pooled row (the table's
/// aggregate dealer), with window and shrinkage applied. Either row outside the window
/// counts as empty; a segment without data falls back to the configured defaults.
pub fn metrics(own: &RowStats, segment: &RowStats, now: Nanos, cfg: &ModelConfig) -> Metrics {
    metrics_with(own, &SegmentPrior::of(segment, now, cfg), now, cfg)
}

/// `metrics` with the segment prior computed beforehand (the per-dealer part: one decay
/// factor and six shrunk means).
pub fn metrics_with(
    own: &RowStats,
    prior: &SegmentPrior,
    now: Nanos,
    cfg: &ModelConfig,
) -> Metrics {
    let empty = RowStats::default();
    let own = if own.in_window(now, cfg) { own } else { &empty };
    // Bring the row's decayed counts forward to `now`: sums and counts alike, so the
    // dealer's own means are unchanged and only its weight against the prior shrinks.
    let d = if now.0 > own.last_update_ns && own.last_update_ns != 0 {
        decay_factor(now.0 - own.last_update_ns, cfg.half_life_ns())
    } else {
        1.0
    };
    let k = cfg.prior_strength;
    let shrink =
        |sum: f32, n: f32, prior: f64| shrunk_mean(d * f64::from(sum), d * f64::from(n), prior, k);
    Metrics {
        // wins can exceed rfqs only through rounding or a partial row; clamp the rate.
        fill_rate: shrink(own.wins, own.rfqs_sent, prior.fill_rate).clamp(0.0, 1.0),
        price_improvement_bps: shrink(
            own.quote_vs_peers_bps_sum,
            own.quotes,
            prior.price_improvement_bps,
        ),
        leakage_markout_bps: shrink(
            own.net_markout_bps_sum,
            own.net_markout_n,
            prior.leakage_markout_bps,
        ),
        response_s: shrink(own.response_s_sum, own.quotes, prior.response_s),
        drift_bps: shrink(own.drift_bps_sum, own.drift_n, prior.drift_bps),
        vs_cover_bps: shrink(own.vs_cover_bps_sum, own.cover_n, prior.vs_cover_bps),
        observations: d * f64::from(own.rfqs_sent),
    }
}

/// The seed's normalisations (DESIGN section 7).
pub fn normalise(m: &Metrics, speed_scale_s: f64) -> Scores {
    Scores {
        fill: m.fill_rate,
        price_improvement: 1.0 + m.price_improvement_bps / 10.0,
        leakage: 1.0 + m.leakage_markout_bps / 10.0,
        speed: (1.0 - m.response_s / speed_scale_s).clamp(0.0, 1.0),
        loser_leakage: 1.0 - m.drift_bps / 10.0,
    }
}

/// `sum(weight * score)`.
pub fn composite(s: &Scores, w: &Weights) -> f64 {
    w.fill * s.fill
        + w.price_improvement * s.price_improvement
        + w.leakage * s.leakage
        + w.speed * s.speed
        + w.loser_leakage * s.loser_leakage
}

// ---------------------------------------------------------------------------------------------
// Back-off.

/// The segment scoring settled on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackOff<K> {
    /// Position in the path (0: the narrowest).
    pub depth: usize,
    pub key: K,
    pub own: RowStats,
}

/// Walks `path` from narrow to broad and stops at the first segment where the dealer has at
/// least `min_observations` decayed RFQs inside the window; None when no segment has (the
/// dealer then scores the prior, above what learned dealers score while costs make their
/// markouts negative: it is tried until it has `min_observations` there, and tried again
/// once its data in the window has decayed below that). `lookup` returns the dealer's row
/// for a key (None: no row).
pub fn back_off<K: Copy>(
    path: &[K],
    now: Nanos,
    cfg: &ModelConfig,
    mut lookup: impl FnMut(K) -> Option<RowStats>,
) -> Option<BackOff<K>> {
    for (depth, &key) in path.iter().enumerate() {
        let Some(own) = lookup(key) else { continue };
        if !own.in_window(now, cfg) {
            continue;
        }
        if f64::from(own.decayed_to(now, cfg).rfqs_sent) >= cfg.min_observations {
            return Some(BackOff { depth, key, own });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_NS: u64 = 86_400_000_000_000;

    #[test]
    fn decay_halves_per_half_life_and_order_does_not_matter() {
        let cfg = ModelConfig::default();
        let hl = cfg.half_life_s * 1_000_000_000;
        let t0 = Nanos(1_000 * DAY_NS);
        let mut a = RowStats::default();
        a.observe(Observation::RfqSent, t0, &cfg).unwrap();
        a.observe(Observation::RfqSent, Nanos(t0.0 + hl), &cfg)
            .unwrap();
        // 1 * 1/2 + 1 = 1.5
        assert!((a.rfqs_sent - 1.5).abs() < 1e-6, "{}", a.rfqs_sent);
        assert_eq!(a.rfqs_total, 2);
        // The same two observations in the other order give the same row.
        let mut b = RowStats::default();
        b.observe(Observation::RfqSent, Nanos(t0.0 + hl), &cfg)
            .unwrap();
        b.observe(Observation::RfqSent, t0, &cfg).unwrap();
        assert_eq!(a, b);
        // Read two half-lives later: 1.5 / 4.
        let later = a.decayed_to(Nanos(t0.0 + 3 * hl), &cfg);
        assert!((later.rfqs_sent - 0.375).abs() < 1e-6);
    }

    #[test]
    fn refused_observations_leave_the_row_alone() {
        let cfg = ModelConfig::default();
        let mut r = RowStats::default();
        r.observe(Observation::RfqSent, Nanos(DAY_NS), &cfg)
            .unwrap();
        let before = r;
        let bad = [
            Observation::Quoted {
                response_s: f64::NAN,
            },
            Observation::Declined { response_s: -1.0 },
            Observation::Markout {
                horizon: 3,
                bps: 1.0,
            },
            Observation::Won {
                price_improvement_bps: 1.0,
                vs_cover_bps: Some(f64::INFINITY),
            },
        ];
        for o in bad {
            assert!(r.observe(o, Nanos(2 * DAY_NS), &cfg).is_err(), "{o:?}");
            assert_eq!(r, before);
        }
        // Outliers are clamped, not refused.
        r.observe(Observation::Drift { bps: 1e9 }, Nanos(DAY_NS), &cfg)
            .unwrap();
        assert_eq!(r.drift_bps_sum, cfg.max_abs_bps as f32);
    }

    #[test]
    fn rows_older_than_the_window_count_as_empty() {
        let cfg = ModelConfig::default();
        let mut r = RowStats::default();
        for _ in 0..50 {
            r.observe(Observation::RfqSent, Nanos(DAY_NS), &cfg)
                .unwrap();
            r.observe(
                Observation::Won {
                    price_improvement_bps: 5.0,
                    vs_cover_bps: None,
                },
                Nanos(DAY_NS),
                &cfg,
            )
            .unwrap();
        }
        let seg = RowStats::default();
        // 89 days on, inside the window: 50 RFQs and 50 wins decayed by 2^-(89/30), shrunk
        // toward the default prior 0.5 with k = 10.
        let inside = metrics(&r, &seg, Nanos(DAY_NS + 89 * DAY_NS), &cfg);
        let n = 50.0 * (-89.0f64 / 30.0).exp2();
        assert!((inside.observations - n).abs() < 1e-4, "{inside:?}");
        let expected = (n + 10.0 * 0.5) / (n + 10.0);
        assert!((inside.fill_rate - expected).abs() < 1e-4, "{inside:?}");
        let outside = metrics(&r, &seg, Nanos(DAY_NS + 91 * DAY_NS), &cfg);
        assert_eq!(outside.fill_rate, cfg.default_fill_rate);
        assert_eq!(outside.observations, 0.0);
    }

    #[test]
    fn few_observations_shrink_toward_the_segment_and_many_do_not() {
        let cfg = ModelConfig::default(); // k = 10
        let now = Nanos(10 * DAY_NS);
        let row = |rfqs: u32, wins: u32| {
            let mut r = RowStats::default();
            for i in 0..rfqs {
                r.observe(Observation::RfqSent, now, &cfg).unwrap();
                if i < wins {
                    r.observe(
                        Observation::Won {
                            price_improvement_bps: 0.0,
                            vs_cover_bps: None,
                        },
                        now,
                        &cfg,
                    )
                    .unwrap();
                }
            }
            r
        };
        let segment = row(1000, 500); // pooled rate 0.5
                                      // 2 of 2: raw 1.0, shrunk (2 + 10 * 0.5) / (2 + 10) = 7/12.
        let m = metrics(&row(2, 2), &segment, now, &cfg);
        assert!((m.fill_rate - 7.0 / 12.0).abs() < 1e-6, "{m:?}");
        // 900 of 1000: (900 + 5) / 1010.
        let m = metrics(&row(1000, 900), &segment, now, &cfg);
        assert!((m.fill_rate - 905.0 / 1010.0).abs() < 1e-6, "{m:?}");
        assert_eq!(m.observations, 1000.0);
    }

    #[test]
    fn back_off_goes_broad_while_data_is_thin() {
        let cfg = ModelConfig::default(); // min 5 observations
        let now = Nanos(DAY_NS);
        let rows = |n: u32| {
            let mut r = RowStats::default();
            for _ in 0..n {
                r.observe(Observation::RfqSent, now, &cfg).unwrap();
            }
            r
        };
        let path = ["issuer", "sector", "asset_class", "all"];
        let table = |k: &str| match k {
            "issuer" => Some(rows(2)),
            "sector" => None,
            "asset_class" => Some(rows(7)),
            "all" => Some(rows(40)),
            _ => None,
        };
        let b = back_off(&path, now, &cfg, table).unwrap();
        assert_eq!((b.depth, b.key), (2, "asset_class"));
        // Nothing reaches the minimum: none (the dealer scores the prior), however much data
        // a segment off the path holds.
        let thin = |k: &str| match k {
            "issuer" => Some(rows(1)),
            "asset_class" => Some(rows(4)),
            "all" => Some(rows(40)),
            _ => None,
        };
        assert!(back_off(&path[..3], now, &cfg, thin).is_none());
        assert!(back_off(&path, now, &cfg, |_| None).is_none());
    }

    #[test]
    fn sign_conventions_for_buys_and_sells() {
        use Direction::*;
        // Buy at 99.9 with arrival mid 100: 10 bps better than mid.
        let pi = price_improvement_bps(Buy, 100.0, 99.9).unwrap();
        assert!((pi - 10.0).abs() < 1e-9);
        // Sell at 100.1 with arrival mid 100: also 10 bps better.
        let pi = price_improvement_bps(Sell, 100.0, 100.1).unwrap();
        assert!((pi - 10.0).abs() < 1e-9);
        // Selling below the mid is negative improvement.
        assert!(price_improvement_bps(Sell, 100.0, 99.9).unwrap() < 0.0);

        // Bought at 100.2, mid 30 min later 100.0: the price reverted, markout < 0.
        let mo = markout_bps(Buy, 100.2, 100.0).unwrap();
        assert!((mo - (-0.2 / 100.2 * 1e4)).abs() < 1e-9 && mo < 0.0);
        // Sold at 99.8, mid later 100.0: reverted up, markout < 0 for a sell.
        let mo = markout_bps(Sell, 99.8, 100.0).unwrap();
        assert!((mo - (-0.2 / 99.8 * 1e4)).abs() < 1e-9 && mo < 0.0);
        // Sold at 100.0, mid later 99.5: the sale was well timed, markout > 0.
        assert!(markout_bps(Sell, 100.0, 99.5).unwrap() > 0.0);

        // Drift: a buy request, the mid moved 100 -> 100.05 (5 bps up, the way the client wanted
        // to trade), 2 bps explained by expected impact -> 3 bps leakage.
        let d = drift_bps(Buy, 100.0, 100.05, 2.0).unwrap();
        assert!((d - 3.0).abs() < 1e-9);
        // A sell request, mid moved down 5 bps: drift +3 net of 2 bps impact.
        let d = drift_bps(Sell, 100.0, 99.95, 2.0).unwrap();
        assert!((d - 3.0).abs() < 1e-9);
        // A sell request, mid moved up: against the client's direction, negative drift.
        assert!(drift_bps(Sell, 100.0, 100.05, 0.0).unwrap() < 0.0);

        // Cover: bought at 99.9, second best offered 100.0 -> 10 bps better than cover.
        assert!((vs_cover_bps(Buy, 99.9, 100.0).unwrap() - 10.0).abs() < 1e-9);
        assert!((vs_cover_bps(Sell, 100.1, 100.0).unwrap() - 10.0).abs() < 1e-9);

        assert_eq!(price_improvement_bps(Buy, 0.0, 1.0), None);
        assert_eq!(markout_bps(Buy, f64::NAN, 1.0), None);
    }

    #[test]
    fn normalisations_and_speed_clamp() {
        let m = Metrics {
            fill_rate: 0.5,
            price_improvement_bps: -5.0,
            leakage_markout_bps: 2.0,
            response_s: 75.0,
            drift_bps: 4.0,
            vs_cover_bps: 0.0,
            observations: 1.0,
        };
        let s = normalise(&m, 60.0);
        assert_eq!(s.fill, 0.5);
        assert!((s.price_improvement - 0.5).abs() < 1e-12);
        assert!((s.leakage - 1.2).abs() < 1e-12);
        assert_eq!(s.speed, 0.0);
        assert!((s.loser_leakage - 0.6).abs() < 1e-12);
        let fast = normalise(
            &Metrics {
                response_s: -3.0,
                ..m
            },
            60.0,
        );
        assert_eq!(fast.speed, 1.0);
        // A loser-leakage weight of 0 leaves the seed's composite unchanged.
        let w = Weights::default();
        let with = composite(
            &s,
            &Weights {
                loser_leakage: 0.0,
                ..w
            },
        );
        let seed = w.fill * s.fill
            + w.price_improvement * s.price_improvement
            + w.leakage * s.leakage
            + w.speed * s.speed;
        assert_eq!(with, seed);
        assert!(
            composite(
                &s,
                &Weights {
                    loser_leakage: 0.5,
                    ..w
                }
            ) > seed
        );
    }

    #[test]
    fn config_validation() {
        assert_eq!(ModelConfig::default().validate(), Ok(()));
        let bad = ModelConfig {
            half_life_s: 100 * 86_400,
            ..ModelConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ModelConfigError::HalfLifeLongerThanWindow { .. })
        ));
        let bad = ModelConfig {
            leakage_horizon_s: 900,
            ..ModelConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = ModelConfig {
            markout_horizons_s: [300, 60, 1800],
            ..ModelConfig::default()
        };
        assert_eq!(bad.validate(), Err(ModelConfigError::HorizonsNotAscending));
        let mut bad = ModelConfig::default();
        bad.weights.speed = f64::NAN;
        assert!(bad.validate().is_err());
    }
}
