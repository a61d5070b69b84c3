//! The selection policies the simulator compares, each a `select::Panel`: a static list, a
//! broadcast to all, k at random, and an oracle that knows the hidden dealer parameters
//! (the router's own dynamic selection is `select::scored::ScoredPanel`, not here).
//!
//! Owns only the baselines' choice of dealers; protocols and timers are the engine's. Every
//! policy here asks with the engine's default protocol (broadcast, 20 s per dealer), so the
//! comparison is about whom to ask. Must not read the clock or do I/O; the random policy's
//! draws come from its own seeded stream.

use super::model::{expected_cost_bps, AxePlan, Bond, DealerTruth, SimConfig};
use super::rng::Rng;
use crate::rfq::outbox::MAX_PANEL;
use crate::rfq::types::DealerId;
use crate::select::{Candidate, Panel, Protocol, ProtocolKind, RfqSpec, Selection};
use std::collections::HashMap;
use std::sync::Arc;

/// Which policy a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PolicyKind {
    /// The router: rules, security master, pre-trade and scores learned from TCA.
    Dynamic,
    /// The same relationship dealers every time.
    Static,
    /// Every dealer, every time.
    Broadcast,
    /// `random_k` dealers drawn afresh for each RFQ.
    Random,
    /// Knows every dealer's hidden parameters and minimises expected cost.
    Oracle,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Dynamic,
        PolicyKind::Static,
        PolicyKind::Broadcast,
        PolicyKind::Random,
        PolicyKind::Oracle,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::Dynamic => "dynamic (router)",
            PolicyKind::Static => "static list of 4",
            PolicyKind::Broadcast => "broadcast to all",
            PolicyKind::Random => "4 at random",
            PolicyKind::Oracle => "oracle",
        }
    }
}

fn base(out: &mut Selection, protocol: Protocol) {
    out.protocol = protocol;
    out.fair_value = None;
    out.refusal = None;
    out.dealers.clear();
}

/// The same dealers every time (those online).
#[derive(Debug, Clone)]
pub struct StaticList {
    pub dealers: Vec<DealerId>,
    pub protocol: Protocol,
}

impl Panel for StaticList {
    fn select(&mut self, _spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection) {
        base(out, self.protocol);
        for d in &self.dealers {
            if out.dealers.len() == MAX_PANEL {
                break;
            }
            if candidates.iter().any(|c| c.dealer == *d && c.online) {
                out.dealers.push(*d);
            }
        }
        out.protocol.max_dealers = out.dealers.len().max(1) as u8;
    }
}

/// Every online dealer (up to the engine's panel limit).
#[derive(Debug, Clone)]
pub struct BroadcastAll {
    pub protocol: Protocol,
}

impl Panel for BroadcastAll {
    fn select(&mut self, _spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection) {
        base(out, self.protocol);
        for c in candidates.iter().filter(|c| c.online) {
            if out.dealers.len() == MAX_PANEL {
                break;
            }
            out.dealers.push(c.dealer);
        }
        out.protocol.max_dealers = out.dealers.len().max(1) as u8;
    }
}

/// `k` online dealers drawn without replacement for each request.
#[derive(Debug, Clone)]
pub struct RandomK {
    pub k: usize,
    pub rng: Rng,
    pub protocol: Protocol,
}

impl Panel for RandomK {
    fn select(&mut self, _spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection) {
        base(out, self.protocol);
        let online = candidates.iter().filter(|c| c.online).count();
        let want = self.k.min(online).min(MAX_PANEL);
        while out.dealers.len() < want {
            let pick = self.rng.below(online as u64) as usize;
            let Some(c) = candidates.iter().filter(|c| c.online).nth(pick) else {
                break;
            };
            if !out.dealers.contains(&c.dealer) {
                out.dealers.push(c.dealer);
            }
        }
        out.protocol.max_dealers = out.dealers.len().max(1) as u8;
    }
}

/// Knows the hidden parameters (axes included): for each request, adds dealers one at a time, each time the
/// one that lowers `model::expected_cost_bps` most (competition against leakage), and stops
/// when no dealer lowers it or at `max_dealers`. Charged against the desk's mean limit.
#[derive(Debug, Clone)]
pub struct Oracle {
    pub cfg: Arc<SimConfig>,
    pub dealers: Arc<Vec<DealerTruth>>,
    pub bonds: Arc<Vec<Bond>>,
    /// SecurityID -> bond index.
    pub by_id: Arc<HashMap<String, usize>>,
    /// Which dealers are axed against which orders.
    pub axes: Arc<AxePlan>,
    pub protocol: Protocol,
}

impl Panel for Oracle {
    fn select(&mut self, spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection) {
        base(out, self.protocol);
        let id = String::from_utf8_lossy(spec.instrument.as_bytes());
        let Some(&b) = self.by_id.get(id.as_ref()) else {
            // Not a bond of the simulation: ask the first online dealer.
            if let Some(c) = candidates.iter().find(|c| c.online) {
                out.dealers.push(c.dealer);
            }
            return;
        };
        let bond = &self.bonds[b];
        let limit =
            self.cfg.limit_mean_frac * super::model::base_cost_bps(bond, spec.qty, &self.cfg);
        // Axes against a side-less request are unknown: none.
        let axed = spec.side.map_or(0, |side| {
            self.axes
                .mask(b, side == crate::rfq::types::Side::Buy, spec.now)
        });
        let mut panel: smallvec::SmallVec<[usize; MAX_PANEL]> = smallvec::SmallVec::new();
        let mut best = limit; // nobody asked: nothing fills
        let max = self.cfg.oracle_max_dealers.clamp(1, MAX_PANEL);
        while panel.len() < max {
            let mut choice = None;
            for c in candidates.iter().filter(|c| c.online) {
                let d = usize::from(c.dealer.0);
                if d >= self.dealers.len() || panel.contains(&d) {
                    continue;
                }
                panel.push(d);
                let j = expected_cost_bps(
                    &self.cfg,
                    &self.dealers,
                    &panel,
                    bond,
                    spec.qty,
                    limit,
                    axed,
                );
                panel.pop();
                if j < best - 1e-9 && choice.is_none_or(|(_, cj)| j < cj) {
                    choice = Some((d, j));
                }
            }
            let Some((d, j)) = choice else { break };
            panel.push(d);
            best = j;
        }
        if panel.is_empty() {
            if let Some(c) = candidates.iter().find(|c| c.online) {
                panel.push(usize::from(c.dealer.0));
            }
        }
        for d in panel {
            out.dealers.push(DealerId(d as u16));
        }
        out.protocol.max_dealers = out.dealers.len().max(1) as u8;
    }
}

/// Any policy as the simulation runs it: its protocol kind forced when `kind` is given (the
/// demo's `--protocol`), then its protocol timers divided by `time_compression` (virtual ->
/// wall time, over loopback; 1 or less changes nothing). The feedback hooks (rules reload,
/// score updates, market mids, IOIs) pass through. With neither set it chooses exactly as
/// `inner` does.
#[derive(Debug, Clone)]
pub struct SimulatedPanel<P> {
    pub inner: P,
    pub kind: Option<ProtocolKind>,
    pub time_compression: f64,
}

impl<P: Panel> Panel for SimulatedPanel<P> {
    fn select(&mut self, spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection) {
        self.inner.select(spec, candidates, out);
        if let Some(k) = self.kind {
            out.protocol.kind = k;
        }
        if self.time_compression <= 1.0 {
            return;
        }
        let scale = |ms: u64| ((ms as f64 / self.time_compression).round() as u64).max(1);
        out.protocol.response_timeout_ms = scale(out.protocol.response_timeout_ms);
        out.protocol.stagger_gap_ms = scale(out.protocol.stagger_gap_ms);
        out.protocol.rfq_expiry_ms = scale(out.protocol.rfq_expiry_ms);
    }

    fn install_rules(
        &mut self,
        rules: Box<crate::select::rules::RuleSet>,
    ) -> Result<crate::select::rules::RulesVersion, Box<crate::select::rules::RuleSet>> {
        self.inner.install_rules(rules)
    }

    fn scores_updated(
        &mut self,
        updates: &[crate::select::tca::TcaUpdate],
        now: crate::time::Nanos,
    ) {
        self.inner.scores_updated(updates, now);
    }

    fn score_rows(&mut self, rows: &[crate::select::rows::ScoreRow], now: crate::time::Nanos) {
        self.inner.score_rows(rows, now);
    }

    fn market_mid(
        &mut self,
        instrument: &[u8],
        id_source: Option<&[u8]>,
        mid: f64,
        now: crate::time::Nanos,
    ) -> Option<u32> {
        self.inner.market_mid(instrument, id_source, mid, now)
    }

    fn indication(
        &mut self,
        dealer: crate::rfq::types::DealerId,
        ioi: &crate::select::axes::Indication<'_>,
        now: crate::time::Nanos,
    ) -> crate::select::axes::IoiOutcome {
        self.inner.indication(dealer, ioi, now)
    }
}
