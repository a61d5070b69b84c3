//! Dealer selection: the one interface through which the RFQ engine asks "whom, and how?".
//!
//! Owns the `Panel` trait, the `Protocol` a selection prescribes, and the first selector,
//! `StaticTiers`, which ranks dealers by their configured tier (issue 3). The dealer
//! intelligence issue (4) fills the same interface with measured scores, rules and pre-trade
//! analytics: `table` (memory-mapped score tables, seqlock rows), `model` (decayed
//! statistics, shrinkage, the composite score), `segment` (segment keys and back-off),
//! `instruments` (the security master), `pretrade` (illiquidity, % of ADV, square-root
//! impact, fair value) and `rules` with its condition language `expr`; the feedback loop is
//! `tca` (facts from the engine, transaction-cost analysis), `market` (feed mids), `cache`
//! (precomputed scores per segment path) and `feedback` (reloads and score updates on their
//! way to the engine, and their journal records); `axes` keeps dealers' IOIs (35=6) for
//! selection's axe bonus. Loading files is
//! start-up or reload work and may allocate; the per-RFQ path does not.
//! Selection is part of the deterministic core: it never reads the clock, does no I/O on the
//! selection path and does not allocate while selecting.

pub mod axes;
pub mod cache;
pub mod expr;
pub mod feedback;
pub mod follow;
pub mod instruments;
pub mod market;
pub mod model;
pub mod pretrade;
pub mod rows;
pub mod rules;
pub mod scored;
pub mod segment;
pub mod table;
pub mod tca;

use crate::rfq::outbox::MAX_PANEL;
use crate::rfq::types::{DealerId, FixId, Side};
use crate::time::Nanos;
use smallvec::SmallVec;
pub use tca::RfqContext;

/// How the chosen dealers are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolKind {
    /// The whole panel at once.
    Broadcast,
    /// One dealer after another, a fixed gap apart, whatever the answers.
    Staggered,
    /// The next dealer only when the current one times out, declines, or quotes outside the
    /// tolerance around fair value.
    Whisper,
}

impl ProtocolKind {
    pub fn code(self) -> u8 {
        match self {
            ProtocolKind::Broadcast => 0,
            ProtocolKind::Staggered => 1,
            ProtocolKind::Whisper => 2,
        }
    }
}

/// The protocol and its timers for one RFQ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Protocol {
    pub kind: ProtocolKind,
    /// At most this many dealers are asked (1..=MAX_PANEL).
    pub max_dealers: u8,
    /// Each asked dealer has this long to quote or decline.
    pub response_timeout_ms: u64,
    /// Staggered: the gap between two dealers.
    pub stagger_gap_ms: u64,
    /// The whole RFQ ends this long after it arrived (unless the desk's ValidUntilTime is
    /// sooner).
    pub rfq_expiry_ms: u64,
    /// After this many dealers have been asked one by one without a usable quote, ask all the
    /// rest at once (0: never).
    pub escalate_after: u8,
    /// Whisper: a quote further than this from fair value (in bps) moves on to the next
    /// dealer.
    pub whisper_tolerance_bps: f64,
    /// Execute without the desk's click when a full-size quote is within this many bps of
    /// fair value (None: never).
    pub auto_execute_bps: Option<f64>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            kind: ProtocolKind::Broadcast,
            max_dealers: 4,
            response_timeout_ms: 20_000,
            stagger_gap_ms: 5_000,
            rfq_expiry_ms: 120_000,
            escalate_after: 0,
            whisper_tolerance_bps: 25.0,
            auto_execute_bps: None,
        }
    }
}

/// What selection knows about one dealer at decision time.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub dealer: DealerId,
    /// Manual tier from config: 1 is best; 0 means excluded.
    pub tier: u8,
    /// Its FIX session is logged on.
    pub online: bool,
}

/// The order a panel is chosen for.
#[derive(Debug, Clone, Copy)]
pub struct RfqSpec<'a> {
    /// SecurityID (48) when the desk gave one, else Symbol (55).
    pub instrument: &'a FixId,
    /// SecurityIDSource (22) with `instrument` a SecurityID; empty for a Symbol.
    pub id_source: &'a FixId,
    pub side: Option<Side>,
    pub qty: f64,
    /// When the request arrived (pre-trade analytics count days since the last trade).
    pub now: Nanos,
}

/// A selector's refusal of a request: the desk gets QuoteRequestReject (AG) with this
/// QuoteRequestRejectReason (658) and a Text (58) of `text`, then `": "` and the instrument
/// as the desk named it (the engine adds it: the text stays bounded and allocation-free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: u8,
    pub text: &'static str,
}

impl Refusal {
    /// QuoteRequestRejectReason 1.
    pub const UNKNOWN_SYMBOL: u8 = 1;

    /// The instrument is not in the security master.
    pub const UNKNOWN_INSTRUMENT: Refusal = Refusal {
        reason: Refusal::UNKNOWN_SYMBOL,
        text: "unknown instrument",
    };
}

/// A selector's answer.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Dealers to ask, best first.
    pub dealers: SmallVec<[DealerId; MAX_PANEL]>,
    pub protocol: Protocol,
    /// Pre-trade fair value (price), when known.
    pub fair_value: Option<f64>,
    /// `Some`: the request is refused (no RFQ is opened, `dealers` is ignored).
    pub refusal: Option<Refusal>,
    /// What the RFQ's feedback (TCA) needs: the instrument's security-master index, the
    /// segments the scores came from, the expected impact. None: no security master.
    pub context: Option<RfqContext>,
    /// The rule that decided: its index in the rules file (the default rule: the number of
    /// rules). `None` for selectors without rules. Journaled with the decision.
    pub rule: Option<u16>,
    /// The version of the rules that decided: (load sequence, FNV-1a 64 of the file).
    pub rules_version: Option<(u64, u64)>,
    /// The composite score of each dealer in `dealers`, same order (empty: no scores).
    pub scores: SmallVec<[f32; MAX_PANEL]>,
}

/// The selection interface.
pub trait Panel {
    /// Fills `out` (cleared by the caller) with the panel and protocol for `spec`.
    fn select(&mut self, spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection);

    /// Installs reloaded rules (between two events: never in the middle of an RFQ's
    /// decision). A selector without rules hands them back.
    fn install_rules(
        &mut self,
        rules: Box<rules::RuleSet>,
    ) -> Result<rules::RulesVersion, Box<rules::RuleSet>> {
        Err(rules)
    }

    /// The scoring thread has applied `updates` to the score tables: refresh whatever was
    /// precomputed from them. Must not allocate.
    fn scores_updated(&mut self, _updates: &[tca::TcaUpdate], _now: Nanos) {}

    /// The score rows behind an update (or the start-up snapshot), as the scoring side wrote
    /// them: a selector that keeps its own copy installs them (`rows::RowScores`), so that
    /// what it scores from is an engine input. Must not allocate.
    fn score_rows(&mut self, _rows: &[rows::ScoreRow], _now: Nanos) {}

    /// A market mid for an instrument (SecurityID and its source, or a Symbol with `None`):
    /// keep it as the instrument's fair value. Returns the instrument's security-master index
    /// (`None`: unknown instrument, or a selector without a security master). Must not
    /// allocate.
    fn market_mid(
        &mut self,
        _instrument: &[u8],
        _id_source: Option<&[u8]>,
        _mid: f64,
        _now: Nanos,
    ) -> Option<u32> {
        None
    }

    /// A dealer's IndicationOfInterest (35=6, read by `axes::parse_ioi`): keep its axe for
    /// selection. Returns what was done (`Ignored`: a selector without an axe book). Must not
    /// allocate.
    fn indication(
        &mut self,
        _dealer: DealerId,
        _ioi: &axes::Indication<'_>,
        _now: Nanos,
    ) -> axes::IoiOutcome {
        axes::IoiOutcome::Ignored
    }
}

/// Issue 3's selector: online dealers by configured tier (1 first), then by configuration
/// order, up to the protocol's maximum.
#[derive(Debug, Clone)]
pub struct StaticTiers {
    pub protocol: Protocol,
}

impl Panel for StaticTiers {
    fn select(&mut self, _spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection) {
        out.protocol = self.protocol;
        out.fair_value = None;
        out.refusal = None;
        out.context = None;
        let max = usize::from(self.protocol.max_dealers).min(MAX_PANEL);
        // Tier by tier; a tier's scan stops once the panel is full, and the next tier is
        // only scanned if this scan saw a worse one (no separate pass for the worst tier).
        for tier in 1..=u8::MAX {
            let mut worse_seen = false;
            for c in candidates {
                if c.tier > tier {
                    worse_seen = true;
                } else if c.online && c.tier == tier {
                    if out.dealers.len() == max {
                        return;
                    }
                    out.dealers.push(c.dealer);
                }
            }
            if !worse_seen {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_tiers_ranks_by_tier_then_order_and_skips_offline_and_excluded() {
        let c = |d, tier, online| Candidate {
            dealer: DealerId(d),
            tier,
            online,
        };
        let cands = [
            c(0, 2, true),
            c(1, 1, true),
            c(2, 0, true),
            c(3, 1, false),
            c(4, 1, true),
            c(5, 3, true),
        ];
        let mut sel = StaticTiers {
            protocol: Protocol {
                max_dealers: 3,
                ..Protocol::default()
            },
        };
        let mut out = Selection::default();
        let id = FixId::new(b"X").unwrap();
        sel.select(
            &RfqSpec {
                instrument: &id,
                id_source: &FixId::EMPTY,
                side: None,
                qty: 1.0,
                now: Nanos(0),
            },
            &cands,
            &mut out,
        );
        assert_eq!(
            out.dealers.as_slice(),
            &[DealerId(1), DealerId(4), DealerId(0)]
        );
    }
}
