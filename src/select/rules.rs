//! The rules engine: `config/rules.toml` loaded into an ordered `RuleSet`, the first rule
//! whose condition holds picks the action, and the action (tiers, panel, protocol,
//! auto-execution tolerance) is plain data applied by a pure, allocation-free panel builder.
//!
//! Owns: the file format and its validation (every refusal is `file:line:column: reason`,
//! for TOML errors, out-of-range values and condition errors alike), rule matching, tiering
//! by composite score per asset class, the panel builder, the rule set's version (reload
//! counter + content hash, for the journal) and `RulesWatcher`, which reloads on SIGHUP or
//! when the file changes and keeps the rules in force when the new file is bad. Must not:
//! read the clock, allocate or do I/O on the per-RFQ path (`first_match`, `select`,
//! `build_panel`); only loading and the watcher touch the file system.
//!
//! The panel builder reads candidates through `CandidateView` (a slice of `PanelCandidate`s
//! for `recommend` and the tests, the selector's compact per-dealer arrays per RFQ): one
//! pass per pick with cheap filters first (`next_contender`) and a bounded sorted shortlist.
//!
//! First match wins: put specific rules before general ones. A rule's action starts from
//! `[default]` (which also applies when no rule matches) and overrides what it names.

use crate::select::axes::{AxeSettings, MAX_AXE_CAPACITY};
use crate::select::expr::{Condition, ExprError, Facts};
use crate::select::instruments::{AssetClass, AssetClassSet};
use crate::select::pretrade::{PretradeConfig, VolatilityBps};
use crate::select::{Protocol, ProtocolKind};
use serde::Deserialize;
use smallvec::SmallVec;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use toml::Spanned;

/// Most dealers one panel holds: the RFQ engine's limit.
pub use crate::rfq::outbox::MAX_PANEL;
/// Most rules in one file.
pub const MAX_RULES: usize = 1024;
/// Largest rules file accepted, in bytes.
pub const MAX_RULES_FILE_BYTES: u64 = 4 << 20;
/// Most tier thresholds per asset class (so at most 9 tiers).
pub const MAX_TIER_THRESHOLDS: usize = 8;
/// Most picks in one panel, and names in one always/never list.
pub const MAX_LIST: usize = 64;

// ---------------------------------------------------------------------------------------------
// Actions as plain data

/// A dealer's normalised component scores for one segment and window (DESIGN section 7):
/// fill rate in [0, 1], price improvement `1 + bps/10`, leakage `1 + markout_30m/10`, speed
/// `1 - s/60` clamped to [0, 1], loser leakage `1 - drift_bps/10`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ComponentScores {
    pub fill_rate: f64,
    pub price_improvement: f64,
    pub leakage: f64,
    pub speed: f64,
    pub loser_leakage: f64,
}

/// Weights of the components in a score. `hit_rate` in the file is the fill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub fill_rate: f64,
    pub price_improvement: f64,
    pub leakage: f64,
    pub speed: f64,
    pub loser_leakage: f64,
}

impl Weights {
    /// The seed's composite weights: fill 30%, price improvement 40%, leakage 20%, speed 10%.
    pub const SEED: Weights = Weights {
        fill_rate: 0.3,
        price_improvement: 0.4,
        leakage: 0.2,
        speed: 0.1,
        loser_leakage: 0.0,
    };

    /// `sum(weight * score)`.
    pub fn score(&self, s: &ComponentScores) -> f64 {
        self.fill_rate * s.fill_rate
            + self.price_improvement * s.price_improvement
            + self.leakage * s.leakage
            + self.speed * s.speed
            + self.loser_leakage * s.loser_leakage
    }

    fn sum(&self) -> f64 {
        self.fill_rate + self.price_improvement + self.leakage + self.speed + self.loser_leakage
    }
}

/// One step of panel building: the best `top` candidates (all, if `None`) that match the
/// filters and are not already on the panel, by the panel's weighted score.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pick {
    /// Only dealers of this tier.
    pub tier: Option<u8>,
    /// Only dealers specialising in this asset class.
    pub specialism: Option<AssetClass>,
    /// Only dealers whose weighted score is at least this.
    pub min_score: Option<f64>,
    /// How many; `None`: all that match.
    pub top: Option<u8>,
}

/// Whom to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSpec {
    /// Ranking score within each pick.
    pub weights: Weights,
    /// The statistics window the scores are read over ("over the past 90 days").
    pub window_days: u32,
    /// Applied in order after the `always` list.
    pub picks: Box<[Pick]>,
    /// Asked first whenever online (dealer names from `config/dealers.toml`).
    pub always: Box<[Box<str>]>,
    /// Never asked.
    pub never: Box<[Box<str>]>,
    /// Added to the ranking score of a dealer whose live IOI says it wants the other side of
    /// the order (`select::axes`); 0 ignores axes. In composite units (see `DEFAULT_AXE_BONUS`).
    pub axe_bonus: f64,
}

/// The default `axe_bonus`: 0.2 composite points, what 5 bps of price improvement is worth
/// under the seed's weights (0.40 x 5 / 10). Our assumption, not a published figure: an IOI
/// is not a firm quote, so it earns an axed dealer a place over peers within ~5 bps of it,
/// not over a dealer that measurably prices or behaves much better.
pub const DEFAULT_AXE_BONUS: f64 = 0.2;

/// One rule: a condition and what to do when it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: Box<str>,
    /// 1-based line of the rule's `name` in the file (0 for the built-in default).
    pub line: u32,
    /// `None`: always holds (only the default, or a last catch-all rule).
    pub when: Option<Condition>,
    pub panel: PanelSpec,
    /// Protocol, timers, maximum dealers and the auto-execution tolerance.
    pub protocol: Protocol,
}

impl Rule {
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.when.as_ref().is_none_or(|c| c.eval(facts))
    }
}

/// Tier thresholds on the composite score, per asset class.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiering {
    default: SmallVec<[f64; MAX_TIER_THRESHOLDS]>,
    by_class: [Option<SmallVec<[f64; MAX_TIER_THRESHOLDS]>>; 5],
}

impl Tiering {
    /// Tier 1 for a composite at or above the first threshold, 2 at or above the second, ...
    /// one past the last otherwise. NaN scores land in the last tier.
    pub fn tier(&self, asset_class: AssetClass, composite: f64) -> u8 {
        let thresholds = self.by_class[asset_class as usize]
            .as_ref()
            .unwrap_or(&self.default);
        let above = thresholds.iter().position(|&t| composite >= t);
        (above.unwrap_or(thresholds.len()) + 1) as u8
    }
}

/// Identifies a rule set in the journal: which load it was, and what text it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RulesVersion {
    /// 1 for the first load, +1 for each successful reload.
    pub seq: u64,
    /// FNV-1a 64 of the file's bytes (identity, not security).
    pub hash: u64,
}

impl fmt::Display for RulesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:016x}", self.seq, self.hash)
    }
}

/// Content hash of a rules file.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A loaded, validated rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    rules: Box<[Rule]>,
    default: Rule,
    tiering: Tiering,
    pretrade: PretradeConfig,
    /// `[axes]`: the axe book's limits.
    axes: AxeSettings,
    version: RulesVersion,
    path: PathBuf,
    /// The text parsed (journaled with a reload so that replay parses the same rules).
    text: Box<str>,
}

// ---------------------------------------------------------------------------------------------
// Panel building

/// A dealer as the panel builder sees it. The caller fills one per known dealer, with scores
/// read for the rule's window and the order's segment.
#[derive(Debug, Clone, Copy)]
pub struct PanelCandidate<'a> {
    /// The name used in `always` / `never` lists.
    pub name: &'a str,
    pub scores: ComponentScores,
    /// A tier fixed in `config/dealers.toml` (0: excluded); `None`: from the composite.
    pub manual_tier: Option<u8>,
    pub specialisms: AssetClassSet,
    /// Its FIX session is logged on.
    pub online: bool,
    /// The rule's `axe_bonus` when the dealer is axed against the order, else 0: added to
    /// its weighted score for ranking (not to its tier).
    pub axe_bonus: f64,
}

impl PanelCandidate<'_> {
    /// What the panel ranks by: the weighted score plus any axe bonus.
    pub fn ranked(&self, weights: &Weights) -> f64 {
        weights.score(&self.scores) + self.axe_bonus
    }
}

/// The candidates as the panel builder reads them, by position (0..len): what it filters on
/// and the score it ranks by. `RuleSet::build_panel` reads a slice of `PanelCandidate`s;
/// the per-RFQ selector reads its compact per-dealer arrays (`scored`), so that a panel over
/// thousands of dealers does not first copy every dealer into a `PanelCandidate`. Every
/// method is called with `i < len()` and must not allocate.
pub trait CandidateView {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Its FIX session is logged on.
    fn online(&self, i: usize) -> bool;
    /// A tier fixed in `config/dealers.toml` (0: excluded); `None`: from the composite.
    fn manual_tier(&self, i: usize) -> Option<u8>;
    fn specialisms(&self, i: usize) -> AssetClassSet;
    /// The name used in `always` / `never` lists.
    fn name(&self, i: usize) -> &str;
    /// The component scores (the composite, and so the tier, comes from them).
    fn components(&self, i: usize) -> &ComponentScores;
    /// The score the panel is ranked by: `weights.score(components(i))` under the rule's
    /// panel weights, bit for bit, plus the rule's `axe_bonus` when the dealer is axed
    /// against the order (`PanelCandidate::ranked`).
    fn score(&self, i: usize) -> f64;
    /// The panel scan's cheap filters: the first candidate at or after `from` that passes
    /// `filter`, with its score. The scan calls this for every candidate and the other
    /// methods only for those it returns.
    fn next_contender(&self, from: usize, filter: &ScanFilter) -> Option<(usize, f64)> {
        (from..self.len()).find_map(|i| {
            let pass = self.online(i)
                && self.manual_tier(i) != Some(0)
                && filter
                    .specialism
                    .is_none_or(|a| self.specialisms(i).contains(a));
            if !pass {
                return None;
            }
            let score = self.score(i);
            filter.score_passes(score).then_some((i, score))
        })
    }
    /// The first candidate named `name`.
    fn position_of(&self, name: &str) -> Option<usize> {
        (0..self.len()).find(|&i| self.name(i) == name)
    }
}

/// What a candidate must pass before the panel builder looks at it closely (besides being
/// online and not manually excluded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanFilter {
    /// The shortlist is full: a candidate must score above this (its worst key). A NaN score
    /// never does (it ranks last).
    pub floor: Option<f64>,
    /// The pick's cut-off: a score below it is out (a NaN score is not below it).
    pub min_score: Option<f64>,
    /// The pick's specialism.
    pub specialism: Option<AssetClass>,
}

impl ScanFilter {
    /// `score` is above the floor and not below the cut-off.
    #[inline]
    pub fn score_passes(&self, score: f64) -> bool {
        // Above the floor: `total_order_key(score) > f` (a NaN score is not). Not below the
        // cut-off: `!(score < m)`.
        self.floor.is_none_or(|f| score > f)
            && self.min_score.is_none_or(|m| score >= m || score.is_nan())
    }
}

/// A slice of `PanelCandidate`s ranked by `weights`.
struct WeightedSlice<'s, 'a> {
    candidates: &'s [PanelCandidate<'a>],
    weights: &'s Weights,
}

impl CandidateView for WeightedSlice<'_, '_> {
    fn len(&self) -> usize {
        self.candidates.len()
    }
    fn online(&self, i: usize) -> bool {
        self.candidates[i].online
    }
    fn manual_tier(&self, i: usize) -> Option<u8> {
        self.candidates[i].manual_tier
    }
    fn specialisms(&self, i: usize) -> AssetClassSet {
        self.candidates[i].specialisms
    }
    fn name(&self, i: usize) -> &str {
        self.candidates[i].name
    }
    fn components(&self, i: usize) -> &ComponentScores {
        &self.candidates[i].scores
    }
    fn score(&self, i: usize) -> f64 {
        self.candidates[i].ranked(self.weights)
    }
}

/// Why a dealer is on the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    Always,
    /// The index of the pick in the rule's panel.
    Pick(u8),
}

/// One dealer on the panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chosen {
    /// Index into the candidate slice.
    pub candidate: u32,
    pub tier: u8,
    /// The rule's weighted score.
    pub score: f64,
    pub by: ChosenBy,
}

/// The panel (best first) and protocol for one RFQ. Reused across RFQs: its storage is inline.
#[derive(Debug, Clone, Default)]
pub struct PanelOutcome {
    pub chosen: SmallVec<[Chosen; MAX_PANEL]>,
    pub protocol: Protocol,
}

/// Why a candidate is or is not on the panel (for the recommendation's rationale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Chosen,
    Offline,
    /// Manual tier 0 in the dealer configuration.
    Excluded,
    /// On the rule's `never` list.
    NeverList,
    /// No pick of the rule accepts its tier, specialism or score.
    NoPickMatches,
    /// A pick accepts it, but better-scoring dealers filled the pick or the panel.
    RankedOut,
}

fn total_order_key(score: f64) -> f64 {
    if score.is_nan() {
        f64::NEG_INFINITY
    } else {
        score
    }
}

impl RuleSet {
    /// The first rule whose condition holds, by index. Does not allocate.
    pub fn first_match(&self, facts: &Facts<'_>) -> Option<usize> {
        self.rules.iter().position(|r| r.matches(facts))
    }

    /// The rule that applies: the first that holds, else the default.
    pub fn select(&self, facts: &Facts<'_>) -> &Rule {
        match self.first_match(facts) {
            Some(i) => &self.rules[i],
            None => &self.default,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| &*r.name == name)
    }

    pub fn default_rule(&self) -> &Rule {
        &self.default
    }

    pub fn pretrade(&self) -> &PretradeConfig {
        &self.pretrade
    }

    /// `[axes]`: the axe book's capacity, each dealer's share of it, and longest axe life.
    pub fn axes(&self) -> AxeSettings {
        self.axes
    }

    pub fn tiering(&self) -> &Tiering {
        &self.tiering
    }

    pub fn version(&self) -> RulesVersion {
        self.version
    }

    /// The text these rules were parsed from (at most `MAX_RULES_FILE_BYTES`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The same rules as load number `seq` (replay installs a journaled reload's text under
    /// the load sequence it had).
    pub fn with_seq(mut self, seq: u64) -> RuleSet {
        self.version.seq = seq;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The composite score: the default action's weights (the seed's 30/40/20/10 unless
    /// configured otherwise).
    pub fn composite(&self, scores: &ComponentScores) -> f64 {
        self.default.panel.weights.score(scores)
    }

    /// A candidate's tier for an order in `asset_class`: its manual tier, else from its
    /// composite. 0 means excluded.
    pub fn tier_of(&self, asset_class: AssetClass, c: &PanelCandidate<'_>) -> u8 {
        match c.manual_tier {
            Some(t) => t,
            None => self.tiering.tier(asset_class, self.composite(&c.scores)),
        }
    }

    fn pick_accepts(pick: &Pick, c: &PanelCandidate<'_>, tier: u8, score: f64) -> bool {
        pick.tier.is_none_or(|t| t == tier)
            && pick.specialism.is_none_or(|a| c.specialisms.contains(a))
            && pick.min_score.is_none_or(|m| score >= m)
    }

    /// Applies `rule` to the candidates: the `always` dealers first, then each pick in turn
    /// (best weighted score first, ties to the earlier candidate), at most
    /// `rule.protocol.max_dealers` in all. Fills `out` (cleared first). Does not allocate.
    pub fn build_panel(
        &self,
        rule: &Rule,
        asset_class: AssetClass,
        candidates: &[PanelCandidate<'_>],
        out: &mut PanelOutcome,
    ) {
        let view = WeightedSlice {
            candidates,
            weights: &rule.panel.weights,
        };
        self.build_panel_from(rule, asset_class, &view, out);
    }

    /// `build_panel` over any `CandidateView` whose `score` is the weighted score under
    /// `rule.panel.weights` (the selector's precomputed arrays, or a slice of
    /// `PanelCandidate`s). Each pick is one pass over the candidates keeping the best `top`
    /// so far (a bounded, sorted shortlist of at most `MAX_PANEL`): the cheap filters
    /// (online, excluded, specialism, score and cut-off against the shortlist's worst) come
    /// first, and only a candidate that would enter the shortlist has its tier, the never list
    /// and the panel so far looked at. Does not allocate.
    pub fn build_panel_from<V: CandidateView + ?Sized>(
        &self,
        rule: &Rule,
        asset_class: AssetClass,
        candidates: &V,
        out: &mut PanelOutcome,
    ) {
        out.chosen.clear();
        out.protocol = rule.protocol;
        let limit = usize::from(rule.protocol.max_dealers).min(MAX_PANEL);
        for name in rule.panel.always.iter() {
            if out.chosen.len() == limit {
                return;
            }
            if let Some(i) = candidates.position_of(name) {
                let tier = self.tier_in(asset_class, candidates, i);
                let already = out.chosen.iter().any(|x| x.candidate as usize == i);
                if Self::eligible_in(rule, candidates, i, tier) && !already {
                    out.chosen.push(Chosen {
                        candidate: i as u32,
                        tier,
                        score: candidates.score(i),
                        by: ChosenBy::Always,
                    });
                }
            }
        }
        for (p, pick) in rule.panel.picks.iter().enumerate() {
            let room = limit - out.chosen.len();
            let want = pick.top.map_or(room, usize::from).min(room);
            if want == 0 {
                break;
            }
            // The best `want` so far, best first; once it is `full`, `worst` is the key a
            // newcomer must beat.
            let mut best: SmallVec<[Chosen; MAX_PANEL]> = SmallVec::new();
            let mut full = false;
            let mut worst = f64::NEG_INFINITY;
            let mut from = 0;
            // Cheap filters first (online, not excluded, specialism, the score against the
            // shortlist's worst and the cut-off: `next_contender`); the tier (maybe a
            // composite), the never list and the panel so far only for a candidate that makes
            // the cut.
            while let Some((i, score)) = candidates.next_contender(
                from,
                &ScanFilter {
                    floor: full.then_some(worst),
                    min_score: pick.min_score,
                    specialism: pick.specialism,
                },
            ) {
                from = i + 1;
                let key = total_order_key(score);
                let tier = self.tier_in(asset_class, candidates, i);
                if pick.tier.is_some_and(|t| t != tier)
                    || !Self::eligible_in(rule, candidates, i, tier)
                    || out.chosen.iter().any(|x| x.candidate as usize == i)
                {
                    continue;
                }
                let at = best
                    .iter()
                    .position(|b| total_order_key(b.score) < key)
                    .unwrap_or(best.len());
                if full {
                    if at == best.len() {
                        continue; // not better than the worst (a view's floor was loose)
                    }
                    best.pop();
                }
                best.insert(
                    at,
                    Chosen {
                        candidate: i as u32,
                        tier,
                        score,
                        by: ChosenBy::Pick(p as u8),
                    },
                );
                if best.len() == want {
                    full = true;
                    worst = best
                        .last()
                        .map_or(f64::NEG_INFINITY, |w| total_order_key(w.score));
                }
            }
            out.chosen.extend(best);
        }
    }

    fn tier_in<V: CandidateView + ?Sized>(
        &self,
        asset_class: AssetClass,
        candidates: &V,
        i: usize,
    ) -> u8 {
        match candidates.manual_tier(i) {
            Some(t) => t,
            None => self
                .tiering
                .tier(asset_class, self.composite(candidates.components(i))),
        }
    }

    fn eligible_in<V: CandidateView + ?Sized>(
        rule: &Rule,
        candidates: &V,
        i: usize,
        tier: u8,
    ) -> bool {
        candidates.online(i)
            && tier != 0
            && !rule.panel.never.iter().any(|n| **n == *candidates.name(i))
    }

    /// Why candidate `i` is or is not on `outcome`'s panel under `rule`.
    pub fn verdict(
        &self,
        rule: &Rule,
        asset_class: AssetClass,
        candidates: &[PanelCandidate<'_>],
        i: usize,
        outcome: &PanelOutcome,
    ) -> Verdict {
        let Some(c) = candidates.get(i) else {
            return Verdict::NoPickMatches;
        };
        if outcome.chosen.iter().any(|x| x.candidate as usize == i) {
            return Verdict::Chosen;
        }
        let tier = self.tier_of(asset_class, c);
        if !c.online {
            return Verdict::Offline;
        }
        if tier == 0 {
            return Verdict::Excluded;
        }
        if rule.panel.never.iter().any(|n| **n == *c.name) {
            return Verdict::NeverList;
        }
        let score = c.ranked(&rule.panel.weights);
        let always = rule.panel.always.iter().any(|n| **n == *c.name);
        if always
            || rule
                .panel
                .picks
                .iter()
                .any(|p| Self::pick_accepts(p, c, tier, score))
        {
            Verdict::RankedOut
        } else {
            Verdict::NoPickMatches
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

/// A rules file that cannot be used. `Display` is `file:line:column: reason`.
#[derive(Debug)]
pub enum RulesError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
}

impl RulesError {
    /// (line, column), 1-based; (0, 0) for I/O errors.
    pub fn position(&self) -> (usize, usize) {
        match self {
            RulesError::Io { .. } => (0, 0),
            RulesError::Invalid { line, column, .. } => (*line, *column),
        }
    }

    pub fn reason(&self) -> String {
        match self {
            RulesError::Io { error, .. } => error.to_string(),
            RulesError::Invalid { reason, .. } => reason.clone(),
        }
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            RulesError::Invalid {
                path,
                line,
                column,
                reason,
            } => write!(f, "{}:{line}:{column}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for RulesError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    pretrade: Option<RawPretrade>,
    tiering: Option<RawTiering>,
    axes: Option<RawAxes>,
    default: Option<RawAction>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxes {
    capacity: Option<Spanned<i64>>,
    max_life_s: Option<Spanned<i64>>,
    max_per_dealer: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPretrade {
    impact_y: Option<Spanned<f64>>,
    impact_exponent: Option<Spanned<f64>>,
    illiquid_after_days: Option<Spanned<f64>>,
    illiquid_below_adv: Option<Spanned<f64>>,
    default_daily_vol_bps: Option<RawVolatility>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolatility {
    ig_corp: Spanned<f64>,
    hy_corp: Spanned<f64>,
    muni: Spanned<f64>,
    structured: Spanned<f64>,
    govt: Spanned<f64>,
}

type RawThresholds = Option<Spanned<Vec<f64>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiering {
    default: RawThresholds,
    ig_corp: RawThresholds,
    hy_corp: RawThresholds,
    muni: RawThresholds,
    structured: RawThresholds,
    govt: RawThresholds,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawAssetClass {
    IgCorp,
    HyCorp,
    Muni,
    Structured,
    Govt,
}

impl From<RawAssetClass> for AssetClass {
    fn from(a: RawAssetClass) -> AssetClass {
        match a {
            RawAssetClass::IgCorp => AssetClass::IgCorp,
            RawAssetClass::HyCorp => AssetClass::HyCorp,
            RawAssetClass::Muni => AssetClass::Muni,
            RawAssetClass::Structured => AssetClass::Structured,
            RawAssetClass::Govt => AssetClass::Govt,
        }
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Broadcast,
    Staggered,
    Whisper,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    panel: Option<RawPanel>,
    protocol: Option<RawProtocol>,
    execution: Option<RawExecution>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    when: Option<Spanned<String>>,
    panel: Option<RawPanel>,
    protocol: Option<RawProtocol>,
    execution: Option<RawExecution>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeights {
    hit_rate: Option<Spanned<f64>>,
    fill_rate: Option<Spanned<f64>>,
    price_improvement: Option<Spanned<f64>>,
    leakage: Option<Spanned<f64>>,
    speed: Option<Spanned<f64>>,
    loser_leakage: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPick {
    tier: Option<Spanned<i64>>,
    specialism: Option<RawAssetClass>,
    min_score: Option<Spanned<f64>>,
    top: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPanel {
    top: Option<Spanned<i64>>,
    picks: Option<Spanned<Vec<RawPick>>>,
    weights: Option<Spanned<RawWeights>>,
    window_days: Option<Spanned<i64>>,
    always: Option<Spanned<Vec<Spanned<String>>>>,
    never: Option<Spanned<Vec<Spanned<String>>>>,
    axe_bonus: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtocol {
    kind: Option<Spanned<RawKind>>,
    max_dealers: Option<Spanned<i64>>,
    response_timeout_ms: Option<Spanned<i64>>,
    stagger_gap_ms: Option<Spanned<i64>>,
    rfq_expiry_ms: Option<Spanned<i64>>,
    escalate_after: Option<Spanned<i64>>,
    whisper_tolerance_bps: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecution {
    /// A number of bps, or `false` for "never".
    auto_execute_bps: Option<Spanned<toml::Value>>,
}

/// Byte offset -> 1-based (line, column), columns counted in characters.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Where, in the file, the first character of a string value's content is, when the string
/// is written without escapes (so offsets inside the value map one to one); otherwise the
/// start of the string token.
fn string_content_start(text: &str, span: &Range<usize>, value: &str) -> usize {
    let Some(raw) = text.get(span.clone()) else {
        return span.start;
    };
    for delim in ["\"\"\"", "'''", "\"", "'"] {
        if raw.len() >= 2 * delim.len() && raw.starts_with(delim) && raw.ends_with(delim) {
            let mut inner = &raw[delim.len()..raw.len() - delim.len()];
            let mut skip = delim.len();
            if delim.len() == 3 {
                // A newline right after the opening delimiter is not part of the value.
                if let Some(rest) = inner.strip_prefix("\r\n") {
                    inner = rest;
                    skip += 2;
                } else if let Some(rest) = inner.strip_prefix('\n') {
                    inner = rest;
                    skip += 1;
                }
            }
            if inner == value {
                return span.start + skip;
            }
            return span.start;
        }
    }
    span.start
}

struct Ctx<'t> {
    path: &'t Path,
    text: &'t str,
}

impl Ctx<'_> {
    fn err(&self, offset: usize, reason: impl Into<String>) -> RulesError {
        let (line, column) = line_col(self.text, offset);
        RulesError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            reason: reason.into(),
        }
    }

    fn int(&self, v: &Spanned<i64>, what: &str, lo: i64, hi: i64) -> Result<i64, RulesError> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return Err(self.err(
                v.span().start,
                format!("{what} = {x} is out of range ({lo}..={hi})"),
            ));
        }
        Ok(x)
    }

    fn num(&self, v: &Spanned<f64>, what: &str, lo: f64, hi: f64) -> Result<f64, RulesError> {
        let x = *v.get_ref();
        if !(x.is_finite() && x >= lo && x <= hi) {
            return Err(self.err(
                v.span().start,
                format!("{what} = {x} is out of range ({lo}..={hi})"),
            ));
        }
        Ok(x)
    }

    fn thresholds(
        &self,
        raw: &RawThresholds,
        inherit: &SmallVec<[f64; MAX_TIER_THRESHOLDS]>,
    ) -> Result<SmallVec<[f64; MAX_TIER_THRESHOLDS]>, RulesError> {
        let Some(v) = raw else {
            return Ok(inherit.clone());
        };
        let list = v.get_ref();
        let at = v.span().start;
        if list.is_empty() || list.len() > MAX_TIER_THRESHOLDS {
            return Err(self.err(
                at,
                format!("tier thresholds: 1 to {MAX_TIER_THRESHOLDS} numbers"),
            ));
        }
        if list.iter().any(|x| !x.is_finite()) || list.windows(2).any(|w| w[0] <= w[1]) {
            return Err(self.err(
                at,
                "tier thresholds must be finite and strictly descending (tier 1's first)",
            ));
        }
        Ok(list.iter().copied().collect())
    }

    fn pretrade(&self, raw: Option<&RawPretrade>) -> Result<PretradeConfig, RulesError> {
        let mut cfg = PretradeConfig::default();
        let Some(raw) = raw else { return Ok(cfg) };
        if let Some(v) = &raw.impact_y {
            cfg.impact_y = self.num(v, "impact_y", 0.0, 100.0)?;
        }
        if let Some(v) = &raw.impact_exponent {
            cfg.impact_exponent = self.num(v, "impact_exponent", 0.0, 2.0)?;
        }
        if let Some(v) = &raw.illiquid_after_days {
            cfg.illiquid_after_days = self.num(v, "illiquid_after_days", 0.0, 3650.0)?;
        }
        if let Some(v) = &raw.illiquid_below_adv {
            cfg.illiquid_below_adv = self.num(v, "illiquid_below_adv", 0.0, 1e15)?;
        }
        if let Some(v) = &raw.default_daily_vol_bps {
            let f = |x: &Spanned<f64>, n: &str| self.num(x, n, 0.0, 10_000.0);
            cfg.default_daily_vol_bps = VolatilityBps {
                ig_corp: f(&v.ig_corp, "ig_corp")?,
                hy_corp: f(&v.hy_corp, "hy_corp")?,
                muni: f(&v.muni, "muni")?,
                structured: f(&v.structured, "structured")?,
                govt: f(&v.govt, "govt")?,
            };
        }
        Ok(cfg)
    }

    fn weights(&self, raw: &Spanned<RawWeights>) -> Result<Weights, RulesError> {
        let w = raw.get_ref();
        if let (Some(_), Some(fill)) = (&w.hit_rate, &w.fill_rate) {
            return Err(self.err(
                fill.span().start,
                "hit_rate and fill_rate are the same component: give one",
            ));
        }
        let get = |v: &Option<Spanned<f64>>, n: &str| -> Result<f64, RulesError> {
            v.as_ref().map_or(Ok(0.0), |v| self.num(v, n, 0.0, 1.0))
        };
        let weights = Weights {
            fill_rate: get(&w.hit_rate, "hit_rate")? + get(&w.fill_rate, "fill_rate")?,
            price_improvement: get(&w.price_improvement, "price_improvement")?,
            leakage: get(&w.leakage, "leakage")?,
            speed: get(&w.speed, "speed")?,
            loser_leakage: get(&w.loser_leakage, "loser_leakage")?,
        };
        if (weights.sum() - 1.0).abs() > 1e-6 {
            return Err(self.err(
                raw.span().start,
                format!(
                    "weights must add up to 1 (these add up to {})",
                    weights.sum()
                ),
            ));
        }
        Ok(weights)
    }

    fn names(
        &self,
        raw: &Option<Spanned<Vec<Spanned<String>>>>,
        inherit: &[Box<str>],
    ) -> Result<Box<[Box<str>]>, RulesError> {
        let Some(list) = raw else {
            return Ok(inherit.into());
        };
        if list.get_ref().len() > MAX_LIST {
            return Err(self.err(list.span().start, format!("more than {MAX_LIST} names")));
        }
        let mut out: Vec<Box<str>> = Vec::new();
        for n in list.get_ref() {
            if n.get_ref().is_empty() {
                return Err(self.err(n.span().start, "empty dealer name"));
            }
            if out.iter().any(|o| **o == **n.get_ref()) {
                return Err(self.err(n.span().start, format!("{:?} listed twice", n.get_ref())));
            }
            out.push(n.get_ref().as_str().into());
        }
        Ok(out.into_boxed_slice())
    }

    fn panel(&self, raw: Option<&RawPanel>, base: &PanelSpec) -> Result<PanelSpec, RulesError> {
        let Some(raw) = raw else {
            return Ok(base.clone());
        };
        let weights = match &raw.weights {
            Some(w) => self.weights(w)?,
            None => base.weights,
        };
        let window_days = match &raw.window_days {
            Some(w) => self.int(w, "window_days", 1, 3650)? as u32,
            None => base.window_days,
        };
        let picks: Box<[Pick]> = match (&raw.top, &raw.picks) {
            (Some(_), Some(p)) => {
                return Err(self.err(
                    p.span().start,
                    "give either `top` (shorthand for one pick) or `picks`, not both",
                ))
            }
            (Some(top), None) => Box::new([Pick {
                top: Some(self.int(top, "top", 1, MAX_PANEL as i64)? as u8),
                ..Pick::default()
            }]),
            (None, Some(list)) => {
                if list.get_ref().is_empty() || list.get_ref().len() > MAX_LIST {
                    return Err(
                        self.err(list.span().start, format!("picks: 1 to {MAX_LIST} entries"))
                    );
                }
                let mut out = Vec::new();
                for p in list.get_ref() {
                    out.push(Pick {
                        tier: match &p.tier {
                            Some(t) => Some(self.int(t, "tier", 1, 9)? as u8),
                            None => None,
                        },
                        specialism: p.specialism.map(AssetClass::from),
                        min_score: match &p.min_score {
                            Some(m) => Some(self.num(m, "min_score", -1e6, 1e6)?),
                            None => None,
                        },
                        top: match &p.top {
                            Some(t) => Some(self.int(t, "top", 1, MAX_PANEL as i64)? as u8),
                            None => None,
                        },
                    });
                }
                out.into_boxed_slice()
            }
            (None, None) => base.picks.clone(),
        };
        let always = self.names(&raw.always, &base.always)?;
        let never = self.names(&raw.never, &base.never)?;
        if let (Some(a), Some(list)) = (
            always.iter().find(|a| never.contains(a)),
            raw.never.as_ref().or(raw.always.as_ref()),
        ) {
            return Err(self.err(
                list.span().start,
                format!("{a:?} is on both the always and the never list"),
            ));
        }
        let axe_bonus = match &raw.axe_bonus {
            Some(v) => self.num(v, "axe_bonus", 0.0, 10.0)?,
            None => base.axe_bonus,
        };
        Ok(PanelSpec {
            weights,
            window_days,
            picks,
            always,
            never,
            axe_bonus,
        })
    }

    fn protocol(
        &self,
        raw: Option<&RawProtocol>,
        exec: Option<&RawExecution>,
        base: &Protocol,
        anchor: usize,
    ) -> Result<Protocol, RulesError> {
        let mut p = *base;
        if let Some(raw) = raw {
            if let Some(k) = &raw.kind {
                p.kind = match k.get_ref() {
                    RawKind::Broadcast => ProtocolKind::Broadcast,
                    RawKind::Staggered => ProtocolKind::Staggered,
                    RawKind::Whisper => ProtocolKind::Whisper,
                };
            }
            if let Some(v) = &raw.max_dealers {
                p.max_dealers = self.int(v, "max_dealers", 1, MAX_PANEL as i64)? as u8;
            }
            if let Some(v) = &raw.response_timeout_ms {
                p.response_timeout_ms = self.int(v, "response_timeout_ms", 1, 3_600_000)? as u64;
            }
            if let Some(v) = &raw.stagger_gap_ms {
                p.stagger_gap_ms = self.int(v, "stagger_gap_ms", 0, 600_000)? as u64;
            }
            if let Some(v) = &raw.rfq_expiry_ms {
                p.rfq_expiry_ms = self.int(v, "rfq_expiry_ms", 1, 86_400_000)? as u64;
            }
            if let Some(v) = &raw.escalate_after {
                p.escalate_after = self.int(v, "escalate_after", 0, MAX_PANEL as i64)? as u8;
            }
            if let Some(v) = &raw.whisper_tolerance_bps {
                p.whisper_tolerance_bps = self.num(v, "whisper_tolerance_bps", 0.0, 10_000.0)?;
            }
        }
        if let Some(v) = exec.and_then(|e| e.auto_execute_bps.as_ref()) {
            p.auto_execute_bps = match v.get_ref() {
                toml::Value::Boolean(false) => None,
                toml::Value::Float(x) => {
                    Some(self.num(&Spanned::new(v.span(), *x), "auto_execute_bps", 0.0, 1000.0)?)
                }
                toml::Value::Integer(x) => Some(self.num(
                    &Spanned::new(v.span(), *x as f64),
                    "auto_execute_bps",
                    0.0,
                    1000.0,
                )?),
                _ => {
                    return Err(self.err(
                        v.span().start,
                        "auto_execute_bps: a number of bps, or false for never",
                    ))
                }
            };
        }
        let at = raw
            .and_then(|r| r.kind.as_ref().map(|k| k.span().start))
            .unwrap_or(anchor);
        if p.kind == ProtocolKind::Staggered && p.stagger_gap_ms == 0 {
            return Err(self.err(at, "a staggered protocol needs stagger_gap_ms > 0"));
        }
        if p.rfq_expiry_ms < p.response_timeout_ms {
            return Err(self.err(
                at,
                format!(
                    "rfq_expiry_ms ({}) is shorter than response_timeout_ms ({})",
                    p.rfq_expiry_ms, p.response_timeout_ms
                ),
            ));
        }
        Ok(p)
    }
}

impl RuleSet {
    /// Reads and validates a rules file. The set's version is `seq` 1.
    pub fn load(path: impl AsRef<Path>) -> Result<RuleSet, RulesError> {
        let path = path.as_ref();
        let io = |error| RulesError::Io {
            path: path.to_path_buf(),
            error,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_RULES_FILE_BYTES {
            return Err(RulesError::Invalid {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                reason: format!("{len} bytes is more than the limit of {MAX_RULES_FILE_BYTES}"),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        RuleSet::parse_bytes(&bytes, path)
    }

    fn parse_bytes(bytes: &[u8], path: &Path) -> Result<RuleSet, RulesError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => RuleSet::parse(text, path),
            Err(e) => {
                let good = &bytes[..e.valid_up_to()];
                let text = std::str::from_utf8(good).unwrap_or("");
                let (line, column) = line_col(text, text.len());
                Err(RulesError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    column,
                    reason: "not valid UTF-8".into(),
                })
            }
        }
    }

    /// Parses rules text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RuleSet, RulesError> {
        let ctx = Ctx { path, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            ctx.err(at, e.message().trim_end().to_string())
        })?;
        if raw.rule.len() > MAX_RULES {
            return Err(ctx.err(0, format!("more than {MAX_RULES} rules")));
        }
        let pretrade = ctx.pretrade(raw.pretrade.as_ref())?;
        let mut axes = AxeSettings::default();
        if let Some(a) = &raw.axes {
            if let Some(v) = &a.capacity {
                axes.capacity = ctx.int(v, "capacity", 1, MAX_AXE_CAPACITY as i64)? as usize;
            }
            if let Some(v) = &a.max_life_s {
                axes.max_life_s = ctx.int(v, "max_life_s", 1, 30 * 86_400)? as u64;
            }
            if let Some(v) = &a.max_per_dealer {
                axes.max_per_dealer =
                    ctx.int(v, "max_per_dealer", 1, MAX_AXE_CAPACITY as i64)? as usize;
            }
        }

        let seed_default = SmallVec::from_slice(&[1.0, 0.85]);
        let tiering = match &raw.tiering {
            None => Tiering {
                default: seed_default,
                by_class: Default::default(),
            },
            Some(t) => {
                let default = ctx.thresholds(&t.default, &seed_default)?;
                let mut by_class: [Option<SmallVec<[f64; MAX_TIER_THRESHOLDS]>>; 5] =
                    Default::default();
                for (a, r) in [
                    (AssetClass::IgCorp, &t.ig_corp),
                    (AssetClass::HyCorp, &t.hy_corp),
                    (AssetClass::Muni, &t.muni),
                    (AssetClass::Structured, &t.structured),
                    (AssetClass::Govt, &t.govt),
                ] {
                    if r.is_some() {
                        by_class[a as usize] = Some(ctx.thresholds(r, &default)?);
                    }
                }
                Tiering { default, by_class }
            }
        };

        let builtin_panel = PanelSpec {
            weights: Weights::SEED,
            window_days: 90,
            picks: Box::new([Pick {
                top: None,
                ..Pick::default()
            }]),
            always: Box::new([]),
            never: Box::new([]),
            axe_bonus: DEFAULT_AXE_BONUS,
        };
        let (default_panel, default_protocol) = match &raw.default {
            None => (builtin_panel, Protocol::default()),
            Some(d) => (
                ctx.panel(d.panel.as_ref(), &builtin_panel)?,
                ctx.protocol(
                    d.protocol.as_ref(),
                    d.execution.as_ref(),
                    &Protocol::default(),
                    0,
                )?,
            ),
        };
        let default = Rule {
            name: "default".into(),
            line: 0,
            when: None,
            panel: default_panel,
            protocol: default_protocol,
        };

        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
        for (k, r) in raw.rule.iter().enumerate() {
            let name_at = r.name.span().start;
            let name = r.name.get_ref();
            if name.is_empty() || name.len() > 64 {
                return Err(ctx.err(name_at, "a rule name is 1 to 64 characters"));
            }
            if let Some(first) = rules.iter().find(|x| *x.name == **name) {
                return Err(ctx.err(
                    name_at,
                    format!(
                        "duplicate rule name {name:?} (first on line {})",
                        first.line
                    ),
                ));
            }
            let when = match &r.when {
                None if k + 1 < raw.rule.len() => {
                    return Err(ctx.err(
                        name_at,
                        format!(
                            "rule {name:?} has no `when`, so it always holds and would hide the rules after it"
                        ),
                    ))
                }
                None => None,
                Some(w) => {
                    let base = string_content_start(text, &w.span(), w.get_ref());
                    let cond = Condition::compile(w.get_ref()).map_err(|e: ExprError| {
                        let at = if base == w.span().start {
                            base
                        } else {
                            base + e.offset
                        };
                        ctx.err(at, format!("in `when`: {}", e.reason))
                    })?;
                    Some(cond)
                }
            };
            let panel = ctx.panel(r.panel.as_ref(), &default.panel)?;
            let protocol = ctx.protocol(
                r.protocol.as_ref(),
                r.execution.as_ref(),
                &default.protocol,
                name_at,
            )?;
            rules.push(Rule {
                name: name.as_str().into(),
                line: line_col(text, name_at).0 as u32,
                when,
                panel,
                protocol,
            });
        }
        Ok(RuleSet {
            rules: rules.into_boxed_slice(),
            default,
            tiering,
            pretrade,
            axes,
            version: RulesVersion {
                seq: 1,
                hash: fnv1a64(text.as_bytes()),
            },
            path: path.to_path_buf(),
            text: text.into(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Reloading

/// What a `RulesWatcher::poll` found.
#[derive(Debug)]
pub enum Reload {
    /// Nothing to do.
    Unchanged,
    /// A new, valid rule set: install it (its `version().seq` is one past the last).
    Loaded(Box<RuleSet>),
    /// The file changed (or SIGHUP came) but is unusable: keep the rules in force, log this.
    Refused(RulesError),
}

/// Reloads the rules file on SIGHUP and when its modification time or length changes, once
/// they have stayed the same for one poll: a writer that truncates the file and then writes
/// it (an editor saving in place, a shell redirection) is not read half-way, where the part
/// written could parse as other valid rules. SIGHUP reads at once. Call `poll` from a loop
/// that is allowed to do file I/O (not the engine's per-RFQ path); no thread of its own.
#[derive(Debug)]
pub struct RulesWatcher {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    /// A changed stamp seen once, waiting to be seen again before the file is read.
    settling: Option<(SystemTime, u64)>,
    hash: u64,
    seq: u64,
    hup: Arc<AtomicBool>,
    /// Where a copy of each loaded set is staged for readers off the engine thread.
    stage: Option<crate::select::follow::RulesStage>,
}

fn stamp_of(path: &Path) -> std::io::Result<(SystemTime, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified()?, m.len()))
}

impl RulesWatcher {
    /// Watches `current.path()`, the file `current` was loaded from.
    pub fn new(current: &RuleSet) -> RulesWatcher {
        RulesWatcher {
            path: current.path.clone(),
            stamp: stamp_of(&current.path).ok(),
            settling: None,
            hash: current.version.hash,
            seq: current.version.seq,
            hup: Arc::new(AtomicBool::new(false)),
            stage: None,
        }
    }

    /// Stages a copy of every set `poll` loads (before the caller hands it to the engine),
    /// so that readers off the engine thread (the admin's recommender) can follow the
    /// engine's installs (`select::follow`).
    pub fn stage_for_followers(&mut self, stage: crate::select::follow::RulesStage) {
        self.stage = Some(stage);
    }

    /// Sets the reload flag on SIGHUP (through `signal-hook`, whose handler only stores to the
    /// flag).
    pub fn listen_for_sighup(&self) -> std::io::Result<()> {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&self.hup))?;
        Ok(())
    }

    /// The flag SIGHUP sets; setting it by hand forces a reload check too.
    pub fn reload_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.hup)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks for a reload request or a changed file and, if there is one, loads the file.
    /// A file with the same content as the rules in force is `Unchanged`.
    pub fn poll(&mut self) -> Reload {
        let forced = self.hup.swap(false, Ordering::AcqRel);
        let stamp = match stamp_of(&self.path) {
            Ok(s) => s,
            Err(error) => {
                if forced || self.stamp.is_some() {
                    self.stamp = None;
                    return Reload::Refused(RulesError::Io {
                        path: self.path.clone(),
                        error,
                    });
                }
                return Reload::Unchanged;
            }
        };
        if !forced && self.stamp == Some(stamp) {
            return Reload::Unchanged;
        }
        if !forced && self.settling != Some(stamp) {
            self.settling = Some(stamp);
            return Reload::Unchanged;
        }
        self.settling = None;
        self.stamp = Some(stamp);
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(error) => {
                return Reload::Refused(RulesError::Io {
                    path: self.path.clone(),
                    error,
                })
            }
        };
        if fnv1a64(&bytes) == self.hash {
            return Reload::Unchanged;
        }
        if bytes.len() as u64 > MAX_RULES_FILE_BYTES {
            return Reload::Refused(RulesError::Invalid {
                path: self.path.clone(),
                line: 1,
                column: 1,
                reason: format!("more than {MAX_RULES_FILE_BYTES} bytes"),
            });
        }
        match RuleSet::parse_bytes(&bytes, &self.path) {
            Ok(mut set) => {
                self.seq += 1;
                self.hash = set.version.hash;
                set.version.seq = self.seq;
                if let Some(stage) = &self.stage {
                    stage.stage(&set);
                }
                Reload::Loaded(Box::new(set))
            }
            Err(e) => Reload::Refused(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let t = "ab\ncé d\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 7), (2, 4));
        // inside a multi-byte character: its start
        assert_eq!(line_col(t, 5), (2, 2));
        assert_eq!(line_col(t, 99), (3, 1));
    }

    #[test]
    fn string_content_offsets() {
        let t = r#"when = "size > 1""#;
        assert_eq!(string_content_start(t, &(7..17), "size > 1"), 8);
        let t = "when = '''\nsize > 1'''";
        assert_eq!(string_content_start(t, &(7..22), "size > 1"), 11);
        // escapes: fall back to the string's start
        let t = r#"when = "x == \"a\"""#;
        assert_eq!(string_content_start(t, &(7..t.len()), "x == \"a\""), 7);
    }

    #[test]
    fn tiers_from_descending_thresholds() {
        let t = Tiering {
            default: SmallVec::from_slice(&[1.0, 0.8]),
            by_class: Default::default(),
        };
        assert_eq!(t.tier(AssetClass::Muni, 1.2), 1);
        assert_eq!(t.tier(AssetClass::Muni, 1.0), 1);
        assert_eq!(t.tier(AssetClass::Muni, 0.9), 2);
        assert_eq!(t.tier(AssetClass::Muni, 0.1), 3);
        assert_eq!(t.tier(AssetClass::Muni, f64::NAN), 3);
    }
}
