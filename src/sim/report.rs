//! The simulator's report: the selection-quality table, the per-dealer scorecard (what the
//! router learned beside the hidden truth), latency percentiles, as text tables or JSON.
//!
//! Owns formatting only: it computes nothing about the market, and reads no clock.

use super::harness::{PolicyResult, Timings};
use super::model::{DealerTruth, SimConfig, SEGMENTS};
use serde::Serialize;
use std::fmt::Write;

/// One row of the scorecard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreRow {
    pub dealer: String,
    pub archetype: &'static str,
    pub home: Vec<&'static str>,
    /// What the router learned (composite and components), when its TCA loop ran.
    pub learned: Option<Learned>,
    /// Hidden parameters, averaged over the segments the desk traded (weighted by its flow).
    pub truth: Truth,
    /// What the dealer did under the dynamic policy, measured by the simulator.
    pub realised: Realised,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Learned {
    /// The seed's composite (30/40/20/10 of the normalised components).
    pub composite: f64,
    /// Wins / RFQs sent.
    pub fill_rate: f64,
    /// Mean price improvement vs arrival when it won, bps (< 0: paid over the mid).
    pub price_improvement_bps: f64,
    /// Mean winner's markout at the leakage horizon (30 min), bps.
    pub markout_bps: f64,
    /// Mean seconds to a firm quote.
    pub response_s: f64,
    /// Mean drift while asked and lost, net of the client's expected impact, bps.
    pub drift_bps: f64,
    /// Decayed RFQs behind the figures.
    pub observations: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Truth {
    pub answer_prob: f64,
    pub cost_mult: f64,
    pub response_median_s: f64,
    pub leak_prob: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Realised {
    pub asked: u64,
    pub quote_rate: f64,
    pub win_rate: f64,
    pub quote_cost_bps: f64,
    pub response_s: f64,
    pub leak_bps_per_ask: f64,
}

/// Latency percentiles of one stage, microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyRow {
    pub stage: String,
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl LatencyRow {
    pub fn of(stage: &str, h: &hdrhistogram::Histogram<u64>) -> LatencyRow {
        let q = |p: f64| h.value_at_quantile(p) as f64 / 1e3;
        LatencyRow {
            stage: stage.to_string(),
            count: h.len(),
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: h.max() as f64 / 1e3,
        }
    }
}

/// Latency rows of an in-process run.
pub fn in_process_latency(t: &Timings) -> Vec<LatencyRow> {
    vec![
        LatencyRow::of("decode + validate (each message in)", &t.decode_ns),
        LatencyRow::of(
            "engine: desk RFQ -> dealer requests (select + encode)",
            &t.desk_request_ns,
        ),
        LatencyRow::of("engine: quotes, hits, fills, timers", &t.other_ns),
    ]
}

/// Hidden truth per dealer, weighted by the share of the flow in each segment.
pub fn truth_of(d: &DealerTruth, segment_share: &[f64; SEGMENTS]) -> Truth {
    let mut t = Truth {
        answer_prob: 0.0,
        cost_mult: 0.0,
        response_median_s: 0.0,
        leak_prob: 0.0,
    };
    for (s, w) in d.segments.iter().zip(segment_share) {
        t.answer_prob += w * s.answer_prob;
        t.cost_mult += w * s.cost_mult;
        t.response_median_s += w * s.response_median_s;
        t.leak_prob += w * s.leak_prob;
    }
    t
}

/// The scorecard rows from the dynamic run's tallies (and learned scores, when given).
pub fn scorecard(
    dealers: &[DealerTruth],
    segment_share: &[f64; SEGMENTS],
    dynamic: &PolicyResult,
    learned: &[Option<Learned>],
) -> Vec<ScoreRow> {
    dealers
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let t = &dynamic.per_dealer[i];
            let div = |a: f64, b: u64| if b > 0 { a / b as f64 } else { f64::NAN };
            ScoreRow {
                dealer: d.name.clone(),
                archetype: d.archetype.name(),
                home: d.home.clone(),
                learned: learned.get(i).copied().flatten(),
                truth: truth_of(d, segment_share),
                realised: Realised {
                    asked: t.asked,
                    quote_rate: div(t.quoted as f64, t.asked),
                    win_rate: div(t.won as f64, t.asked),
                    quote_cost_bps: div(t.quote_cost_bps_sum, t.quoted),
                    response_s: div(t.response_s_sum, t.quoted),
                    leak_bps_per_ask: div(t.leak_bps_sum, t.asked),
                },
            }
        })
        .collect()
}

fn f(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".to_string()
    }
}

/// The selection-quality table.
pub fn selection_table(results: &[PolicyResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<20} {:>10} {:>13} {:>8} {:>12} {:>12}",
        "policy", "cost bps", "(filled only)", "fill", "leakage bps", "dealers/RFQ"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<20} {:>10} {:>13} {:>7.1}% {:>12} {:>12}",
            r.label,
            f(r.mean_cost_bps, 2),
            f(r.mean_cost_filled_bps, 2),
            100.0 * r.fill_rate,
            f(r.leakage_bps, 2),
            f(r.dealers_asked, 2)
        );
    }
    s
}

/// The scorecard as a text table.
pub fn scorecard_table(rows: &[ScoreRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<6} {:<17} | {:>6} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6} | {:>5} {:>5} {:>6} {:>5} | {:>5} {:>5} {:>5} {:>7} {:>6} {:>6}",
        "dealer", "archetype",
        "comp", "fill", "pi_bp", "mo_bp", "resp", "drift", "obs",
        "p_ans", "cost", "resp_s", "p_lk",
        "asked", "quote", "win", "cost", "resp_s", "lk/ask"
    );
    let _ = writeln!(
        s,
        "{:<24} | {:<44} | {:<26} | realised (dynamic run)",
        "", "learned by the router", "hidden truth"
    );
    for r in rows {
        let l = r.learned;
        let lv =
            |g: fn(&Learned) -> f64, d: usize| l.as_ref().map_or("-".to_string(), |l| f(g(l), d));
        let _ = writeln!(
            s,
            "{:<6} {:<17} | {:>6} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6} | {:>5} {:>5} {:>6} {:>5} | {:>5} {:>5} {:>5} {:>7} {:>6} {:>6}",
            r.dealer,
            r.archetype,
            lv(|l| l.composite, 3),
            lv(|l| l.fill_rate, 2),
            lv(|l| l.price_improvement_bps, 1),
            lv(|l| l.markout_bps, 1),
            lv(|l| l.response_s, 1),
            lv(|l| l.drift_bps, 1),
            lv(|l| l.observations, 0),
            f(r.truth.answer_prob, 2),
            f(r.truth.cost_mult, 2),
            f(r.truth.response_median_s, 1),
            f(r.truth.leak_prob, 2),
            r.realised.asked,
            f(r.realised.quote_rate, 2),
            f(r.realised.win_rate, 2),
            f(r.realised.quote_cost_bps, 1),
            f(r.realised.response_s, 1),
            f(r.realised.leak_bps_per_ask, 2),
        );
    }
    s
}

/// Latency rows as a text table.
pub fn latency_table(rows: &[LatencyRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<58} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "stage (us)", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<58} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            r.stage, r.count, r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us
        );
    }
    s
}

/// A short description of the simulated market.
pub fn describe(cfg: &SimConfig, bonds: usize) -> String {
    format!(
        "{} RFQs, {} dealers, {} bonds, seed {}; one RFQ every {:.0} s of virtual time on average",
        cfg.rfqs, cfg.dealers, bonds, cfg.seed, cfg.mean_gap_s
    )
}
