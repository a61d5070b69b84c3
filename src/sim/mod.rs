//! `sim`: a seeded, simulated dealer market that drives the real router, and the yardstick
//! that compares the router's dynamic dealer selection with a static list, broadcast,
//! random panels and an oracle over the same order flow.
//!
//! Owns the market model (`model`: bonds, dealers' hidden behaviour, the desk's orders, the
//! fair-value process), its random numbers (`rng`), the baseline selection policies
//! (`policy`), the in-process run of the real engine in virtual time (`harness`) and the
//! report (`report`). It is test and demo tooling: the router itself never uses it. Nothing
//! here reads the clock to decide anything (the harness times engine calls for the latency
//! table only); the same seed gives the same tables.
//!
//! # Calibration (defaults of `model::SimConfig`)
//!
//! Sources are those of `../shared/notes/market-figures.md`; each is what the source states,
//! used as a default, not a law. Every number is a field of `SimConfig`.
//!
//! - **Dealers per request, answers**: Fermanian, Guéant & Pu (2017, arXiv:1511.07773): clients
//!   ask up to 6 dealers; a dealer answers with a probability below 1 (binomial). Answer
//!   probabilities here are 0.35-0.90 by archetype and segment; the oracle may ask up to
//!   `oracle_max_dealers` = 8. Quotes normalised by the spread follow a skew exponential power
//!   law there; here they are Gaussian around `cost_mult * base cost` with sd
//!   `quote_noise_frac` (0.35) of the base cost: the same first two moments, no skew.
//! - **Reservation prices**: Gaussian (Fermanian et al.): the desk's limit is
//!   N(1.3, 0.3) x base cost (`limit_mean_frac`, `limit_sd_frac`).
//! - **What trading costs**: Harris (2015): 52 bp for larger US corporate trades, 85 bp for
//!   retail size. `base_cost_bps`: 52 for investment grade and munis, 85 for high yield, 75
//!   for structured, 8 for governments (a liquid market; our assumption). Costs fall with
//!   size (Edwards, Harris & Piwowar 2007): x (1 MM / size)^0.15, clamped to [0.6, 1.6].
//! - **Impact**: square-root law, Y = 1, exponent 0.5 (Sato & Kanazawa measure ~0.49), on the
//!   bond's daily volatility (the instrument's `daily_vol_bps`, else the rules' asset-class
//!   default: 40 ig, 90 hy, 35 muni, 60 structured, 25 govt), with `Q / ADV` capped at 1
//!   (the law is measured below a day's volume); 2/3 of it permanent, the rest
//!   relaxing with a 10-minute time constant (Zarinelli et al.). Dealers pass half the
//!   expected impact into their quotes (inventory risk; `impact_pass_through`, assumption).
//! - **Leakage**: Baldauf & Mollner (2024): each extra dealer adds competition and a chance
//!   of leakage through dealers who trade ahead. A leaky dealer, once asked, trades ahead
//!   ~2 s later (log-normal) with probability `leak_prob` and moves the mid against the
//!   client by `leak_intensity` x the order's expected square-root impact (0.3 for the leaky
//!   archetype, 0.1 for the others); later quotes (and
//!   the rest of the client's business) pay for it. Riggs et al. (2020): quoted costs rise
//!   with the number of dealers asked: here that comes out of leakage, it is not imposed.
//! - **Fair-value noise**: Trumid: investment grade within 0.55 points of the next print 95%
//!   of the time; the note says 0.3-0.8 points. The published mid (market data) carries
//!   Gaussian noise of `feed_noise_points` = 0.3 points around the true mid.
//! - **Archetypes** (issue 6): good everywhere (answers 85%, 0.80 x base cost, 6 s median,
//!   rarely leaks); niche specialists (home: 90%, 0.60 x, 8 s; away: 35%, 1.25 x, small
//!   capacity); fast but leaky (90%, 0.85 x, 2 s, leaks 80% of the time);
//!   slow but sharp (75%, 0.65 x, 14 s median: about a quarter miss the 20 s timeout).
//!   Dealers 1-4 are the desk's relationship banks (two good, two fast-but-leaky).
//! - **Flow**: one desk RFQ every 15 s of virtual time on average (Poisson), bonds weighted by
//!   the square root of their ADV, sizes log-normal with a 2 MM median (100k to 25 MM, and at
//!   most 3 days of the bond's ADV), half buys.
//!
//! Not modelled: IOI axes (35=6), last look, dealers' inventory across RFQs, dealers who
//! answer more often when fewer compete (they cannot see how many were asked).

pub mod demo;
pub mod harness;
pub mod live;
pub mod loopback;
pub mod model;
pub mod policy;
pub mod report;
pub mod rng;
