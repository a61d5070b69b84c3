//! `ScoredPanel`: the dealer-intelligence selector (issue 4) behind the `Panel` interface.
//!
//! Owns the per-RFQ composition of the selection parts: security-master lookup (an unknown
//! instrument is a `Refusal`, 658=1), pre-trade analytics, the first matching rule over the
//! order/instrument/pre-trade facts, component scores per dealer from a `ScoreSource` (the
//! score tables with back-off narrow -> broad, or neutral priors when there is no data), and
//! `rules::build_panel`. Also owns the human-facing `Recommendation` (chosen dealers with
//! their scores, the rule that fired, and why each other candidate was left out) and the
//! embedded copies of `config/rules.toml` and `config/instruments.csv`, the latest market
//! mid per instrument (the fair value) and the `Panel` hooks that install reloaded rules and
//! refresh precomputed scores after a score update. Must not: read the clock (`now` comes in
//! the `RfqSpec`), do I/O, or allocate in `Panel::select` in steady state (the score cache
//! allocates an entry per new segment path and an array per new rule weights until it is
//! full); `recommend` and construction allocate.
//!
//! `select` reads the candidates in place (`CompactCandidates`: the engine's candidates, a
//! specialism byte per dealer and the cache's weighted-score array for the rule) and
//! `rules::RuleSet::build_panel_from` keeps a bounded shortlist per pick; it records the rule,
//! the rules version and the chosen dealers' composites, not per-dealer reasons. `recommend`
//! builds a full `PanelCandidate` per dealer and runs the same builder, then explains every
//! left-out candidate.

use crate::dealers::Dealers;
use crate::rfq::types::DealerId;
use crate::select::axes::{AxeBook, AxeCounters, Indication, IoiOutcome};
use crate::select::cache::{
    CacheCounters, CachedScores, ScoreCache, DEFAULT_CACHE_PATHS, DEFAULT_REFRESH,
};
use crate::select::expr::Facts;
use crate::select::instruments::{
    AssetClass, AssetClassSet, Instrument, InstrumentsError, SecurityMaster,
};
use crate::select::market::MidTable;
use crate::select::model::{
    back_off, metrics, normalise, ModelConfig, RowStats, Scores as ModelScores,
};
use crate::select::pretrade::{analyse, OrderTerms, PreTrade, Side};
use crate::select::rows::{RowScores, ScoreRow};
use crate::select::rules::{
    CandidateView, ChosenBy, ComponentScores, PanelCandidate, PanelOutcome, Pick, Rule, RuleSet,
    RulesError, RulesVersion, ScanFilter, Verdict,
};
use crate::select::segment::{Buckets, RatingBucket, SegmentInput, SegmentKeys, SegmentLevel};
use crate::select::table::ScoreReader;
use crate::select::tca::TcaUpdate;
use crate::select::{Candidate, Panel, ProtocolKind, Refusal, RfqContext, RfqSpec, Selection};
use crate::time::Nanos;
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// How old a market mid may be to serve as fair value, unless configured otherwise.
pub const DEFAULT_MID_MAX_AGE: Nanos = Nanos(3_600 * Nanos::PER_SEC);

/// The rules shipped in `config/rules.toml`, compiled in.
pub const EMBEDDED_RULES_TOML: &str = include_str!("../../config/rules.toml");
/// Where the embedded rules say they came from in error messages.
pub const EMBEDDED_RULES_ORIGIN: &str = "<embedded config/rules.toml>";
/// The security master shipped in `config/instruments.csv`, compiled in.
pub const EMBEDDED_INSTRUMENTS_CSV: &str = include_str!("../../config/instruments.csv");
/// Where the embedded security master says it came from in error messages.
pub const EMBEDDED_INSTRUMENTS_ORIGIN: &str = "<embedded config/instruments.csv>";

/// The rules at `path`, or the embedded copy. Errors are `file:line:column: reason`.
pub fn load_rules(path: Option<&Path>) -> Result<RuleSet, RulesError> {
    match path {
        Some(p) => RuleSet::load(p),
        None => RuleSet::parse(EMBEDDED_RULES_TOML, Path::new(EMBEDDED_RULES_ORIGIN)),
    }
}

/// The security master at `path`, or the embedded copy. Errors name file and line.
pub fn load_instruments(path: Option<&Path>) -> Result<SecurityMaster, InstrumentsError> {
    match path {
        Some(p) => SecurityMaster::load(p),
        None => SecurityMaster::parse(
            EMBEDDED_INSTRUMENTS_CSV.as_bytes(),
            Path::new(EMBEDDED_INSTRUMENTS_ORIGIN),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Score sources

/// One dealer's scores for one order, and where they came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DealerScores {
    pub scores: ComponentScores,
    /// The dealer's own (decayed) RFQs behind the scores, before shrinkage.
    pub observations: f64,
    /// The segment the back-off settled on.
    pub segment: Option<SegmentLevel>,
}

/// Where component scores come from. Called once per dealer per RFQ: must not allocate.
pub trait ScoreSource {
    /// The dealer's scores for an order in the segments `keys`, or `None` when there is no
    /// data for it at all (the dealer then gets `prior()`).
    fn components(&self, dealer: DealerId, keys: &SegmentKeys, now: Nanos) -> Option<DealerScores>;

    /// The scores of a dealer without data: the model's priors (fill 0.5, no price
    /// improvement or markout, 30 s to respond).
    fn prior(&self) -> ComponentScores {
        prior_scores(&ModelConfig::default())
    }

    /// Rows the engine was given (`Event::ScoreUpdate`): a source that keeps its own copy
    /// (`rows::RowScores`) installs them and returns true; one that reads the live tables
    /// ignores them.
    fn install_rows(&mut self, _rows: &[ScoreRow]) -> bool {
        false
    }

    /// Whether the scores come only from installed rows (then the dealers refreshed after a
    /// score update are those of its rows, so a replay refreshes the same ones).
    fn follows_rows(&self) -> bool {
        false
    }
}

fn to_components(s: &ModelScores) -> ComponentScores {
    ComponentScores {
        fill_rate: s.fill,
        price_improvement: s.price_improvement,
        leakage: s.leakage,
        speed: s.speed,
        loser_leakage: s.loser_leakage,
    }
}

/// The normalised scores of an empty row in an empty segment under `model`.
pub fn prior_scores(model: &ModelConfig) -> ComponentScores {
    let empty = RowStats::default();
    let m = metrics(&empty, &empty, Nanos(0), model);
    to_components(&normalise(&m, model.speed_scale_s))
}

/// No data: every dealer gets the priors, so tiers and rules alone decide.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeutralScores;

impl ScoreSource for NeutralScores {
    fn components(&self, _: DealerId, _: &SegmentKeys, _: Nanos) -> Option<DealerScores> {
        None
    }
}

/// The score tables: the dealer's row on the primary path (issuer -> sector and rating ->
/// asset class), the first with enough observations (`model::back_off`), shrunk toward
/// that segment's pooled row. The table's dealer index is the `DealerId` (dealers.toml order).
#[derive(Debug, Clone)]
pub struct TableScores {
    reader: ScoreReader,
    model: ModelConfig,
}

impl TableScores {
    pub fn new(reader: ScoreReader, model: ModelConfig) -> TableScores {
        TableScores { reader, model }
    }
}

impl ScoreSource for TableScores {
    fn components(&self, dealer: DealerId, keys: &SegmentKeys, now: Nanos) -> Option<DealerScores> {
        let d = u32::from(dealer.0);
        let path = keys.primary_path();
        let found = back_off(&path, now, &self.model, |k| {
            self.reader.find(d, k).ok().flatten()
        })?;
        let agg = self.reader.header().aggregate_dealer();
        let pooled = self
            .reader
            .find(agg, found.key)
            .ok()
            .flatten()
            .unwrap_or_default();
        let m = metrics(&found.own, &pooled, now, &self.model);
        Some(DealerScores {
            scores: to_components(&normalise(&m, self.model.speed_scale_s)),
            observations: m.observations,
            segment: found.key.level(),
        })
    }

    fn prior(&self) -> ComponentScores {
        prior_scores(&self.model)
    }
}

/// The source chosen at start-up: the score tables when there is a file, else neutral.
#[derive(Debug, Clone)]
pub enum AnyScores {
    Neutral(NeutralScores),
    Table(TableScores),
    /// The engine's own copy of the rows it was given (the router: replayable).
    Rows(RowScores),
}

impl ScoreSource for AnyScores {
    fn components(&self, dealer: DealerId, keys: &SegmentKeys, now: Nanos) -> Option<DealerScores> {
        match self {
            AnyScores::Neutral(s) => s.components(dealer, keys, now),
            AnyScores::Table(s) => s.components(dealer, keys, now),
            AnyScores::Rows(s) => s.components(dealer, keys, now),
        }
    }

    fn prior(&self) -> ComponentScores {
        match self {
            AnyScores::Neutral(s) => s.prior(),
            AnyScores::Table(s) => s.prior(),
            AnyScores::Rows(s) => s.prior(),
        }
    }

    fn install_rows(&mut self, rows: &[ScoreRow]) -> bool {
        match self {
            AnyScores::Rows(s) => s.install_rows(rows),
            _ => false,
        }
    }

    fn follows_rows(&self) -> bool {
        matches!(self, AnyScores::Rows(_))
    }
}

/// The segments an order in `instrument` belongs to. The asset class part is the
/// `AssetClass::name()` (`ig_corp`, ...): whoever writes the tables must key them the same way.
pub fn segment_keys(
    instrument: &Instrument,
    pretrade: &PreTrade,
    maturity: &Buckets,
    size: &Buckets,
) -> SegmentKeys {
    let rating = RatingBucket::from_agency(instrument.rating.symbol().as_bytes())
        .unwrap_or(RatingBucket::NotRated);
    SegmentKeys::of(
        &SegmentInput {
            asset_class: instrument.asset_class.name().as_bytes(),
            issuer: instrument.issuer.as_bytes(),
            sector: instrument.sector.as_bytes(),
            rating,
            years_to_maturity: pretrade.maturity_years,
            notional: pretrade.notional,
        },
        maturity,
        size,
    )
}

// ---------------------------------------------------------------------------------------------
// The selector

/// Static data of one dealer that selection needs (index = `DealerId`).
#[derive(Debug, Clone)]
struct DealerInfo {
    name: Box<str>,
    specialisms: AssetClassSet,
}

/// What `select` ranks from, read in place: the engine's candidates, and per dealer
/// (index = `DealerId`) the specialisms, the names, and the score cache's component and
/// weighted scores (the rule's panel weights). Nothing is copied per dealer per RFQ.
struct CompactCandidates<'a> {
    candidates: &'a [Candidate],
    dealers: &'a [DealerInfo],
    specialisms: &'a [AssetClassSet],
    /// Dealer ids sorted by name (for `always` lists).
    by_name: &'a [u16],
    scores: CachedScores<'a>,
    /// Set when the rule gives axes a bonus and the order's instrument has live axes: the
    /// scan then adds each dealer's bonus (`axe_bonus`) to its weighted score.
    axed: Option<AxedOrder<'a>>,
}

/// The order's axes as the panel scan asks about them (built only when the rule gives axes a
/// bonus, the order has a side and its instrument has live axes).
struct AxedOrder<'a> {
    book: &'a AxeBook,
    instrument: u32,
    side: Side,
    now: Nanos,
    bonus: f64,
}

/// The component scores of a candidate whose `DealerId` is past the dealer database (it is
/// never eligible: `online` says no).
const NO_COMPONENTS: ComponentScores = ComponentScores {
    fill_rate: 0.0,
    price_improvement: 0.0,
    leakage: 0.0,
    speed: 0.0,
    loser_leakage: 0.0,
};

impl CompactCandidates<'_> {
    /// The rule's axe bonus for `dealer` on this order (0 without a live axe against it).
    fn bonus(&self, dealer: DealerId) -> f64 {
        self.axed.as_ref().map_or(0.0, |a| {
            a.book
                .against(dealer, a.instrument, a.side, a.now)
                .map_or(0.0, |_| a.bonus)
        })
    }
    fn dealer(&self, i: usize) -> usize {
        usize::from(self.candidates[i].dealer.0)
    }
}

impl CandidateView for CompactCandidates<'_> {
    fn len(&self) -> usize {
        self.candidates.len()
    }
    fn online(&self, i: usize) -> bool {
        let c = &self.candidates[i];
        c.online && usize::from(c.dealer.0) < self.scores.weighted.len()
    }
    fn manual_tier(&self, i: usize) -> Option<u8> {
        Some(self.candidates[i].tier)
    }
    /// The panel scan's inner loop: 4 bytes of candidate and one `f64` per dealer (and a
    /// specialism byte when the pick asks for one).
    fn next_contender(&self, from: usize, filter: &ScanFilter) -> Option<(usize, f64)> {
        let weighted = self.scores.weighted;
        let rest = self.candidates.get(from..)?;
        for (k, c) in rest.iter().enumerate() {
            if !c.online || c.tier == 0 {
                continue;
            }
            let d = usize::from(c.dealer.0);
            // A dealer past the database has no score: treated as offline.
            let Some(&weighted_score) = weighted.get(d) else {
                continue;
            };
            let score = if self.axed.is_some() {
                weighted_score + self.bonus(c.dealer)
            } else {
                weighted_score
            };
            if !filter.score_passes(score) {
                continue;
            }
            if let Some(a) = filter.specialism {
                if !self.specialisms.get(d).is_some_and(|s| s.contains(a)) {
                    continue;
                }
            }
            return Some((from + k, score));
        }
        None
    }
    fn specialisms(&self, i: usize) -> AssetClassSet {
        self.specialisms
            .get(self.dealer(i))
            .copied()
            .unwrap_or(AssetClassSet::EMPTY)
    }
    fn name(&self, i: usize) -> &str {
        self.dealers.get(self.dealer(i)).map_or("", |d| &d.name)
    }
    fn components(&self, i: usize) -> &ComponentScores {
        self.scores
            .components
            .get(self.dealer(i))
            .unwrap_or(&NO_COMPONENTS)
    }
    fn score(&self, i: usize) -> f64 {
        let weighted = self
            .scores
            .weighted
            .get(self.dealer(i))
            .copied()
            .unwrap_or(f64::NAN);
        match self.candidates.get(i) {
            Some(c) if self.axed.is_some() => weighted + self.bonus(c.dealer),
            _ => weighted,
        }
    }
    /// By the name index: the dealer with that name is at its own position when the
    /// candidates list dealer `i` at position `i` (as the engine does); otherwise the first
    /// position holding a dealer of that name.
    fn position_of(&self, name: &str) -> Option<usize> {
        let from = self.by_name.partition_point(|&d| {
            self.dealers
                .get(usize::from(d))
                .is_some_and(|x| *x.name < *name)
        });
        let to = from
            + self.by_name[from..].partition_point(|&d| {
                self.dealers
                    .get(usize::from(d))
                    .is_some_and(|x| *x.name == *name)
            });
        match &self.by_name[from..to] {
            [] => None,
            &[d] if self
                .candidates
                .get(usize::from(d))
                .is_some_and(|c| c.dealer.0 == d) =>
            {
                Some(usize::from(d))
            }
            ids => self
                .candidates
                .iter()
                .position(|c| ids.contains(&c.dealer.0)),
        }
    }
}

/// The rules-and-scores selector.
pub struct ScoredPanel<S: ScoreSource> {
    rules: RuleSet,
    master: SecurityMaster,
    dealers: Box<[DealerInfo]>,
    source: S,
    prior: ComponentScores,
    maturity: Buckets,
    size: Buckets,
    /// The latest market mid per instrument (security-master index): the fair value.
    mids: MidTable,
    /// A mid older than this is not used as fair value.
    mid_max_age: Nanos,
    /// Every dealer's scores per recently used segment path.
    cache: ScoreCache,
    /// `dealers`' specialisms alone (the panel scan reads one byte per dealer).
    specialisms: Box<[AssetClassSet]>,
    /// Dealer ids sorted by name.
    by_name: Box<[u16]>,
    outcome: PanelOutcome,
    /// Dealers' live axes (IOIs), sized from the rules' `[axes]` at construction.
    axes: AxeBook,
}

impl<S: ScoreSource> fmt::Debug for ScoredPanel<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScoredPanel")
            .field("rules", &self.rules.version())
            .field("instruments", &self.master.len())
            .field("dealers", &self.dealers.len())
            .finish()
    }
}

/// Everything one RFQ's decision was made from (shared by `select` and `recommend`).
struct Decision<'p> {
    /// The instrument's index in the security master.
    index: u32,
    instrument: &'p Instrument,
    pretrade: PreTrade,
    keys: SegmentKeys,
    rule: &'p Rule,
}

impl<S: ScoreSource> ScoredPanel<S> {
    /// `dealers` in the order the engine numbers them (`DealerId` = index), as
    /// `RouterApp::from_config` does. Unknown asset-class names in a dealer's specialisms are
    /// ignored.
    pub fn new(
        rules: RuleSet,
        master: SecurityMaster,
        dealers: &Dealers,
        source: S,
    ) -> ScoredPanel<S> {
        let infos: Box<[DealerInfo]> = dealers
            .dealers
            .iter()
            .map(|d| DealerInfo {
                name: d.name.clone().into_boxed_str(),
                specialisms: d
                    .asset_classes
                    .iter()
                    .filter_map(|a| AssetClass::from_name(a))
                    .collect(),
            })
            .collect();
        let n = infos.len();
        let specialisms = infos.iter().map(|d| d.specialisms).collect();
        let mut by_name: Vec<u16> = (0..n).filter_map(|d| u16::try_from(d).ok()).collect();
        by_name.sort_by(|&a, &b| {
            infos[usize::from(a)]
                .name
                .cmp(&infos[usize::from(b)].name)
                .then(a.cmp(&b))
        });
        let prior = source.prior();
        let instruments = master.len();
        let axes = AxeBook::new(rules.axes(), instruments, n);
        ScoredPanel {
            axes,
            mids: MidTable::new(instruments),
            mid_max_age: DEFAULT_MID_MAX_AGE,
            cache: ScoreCache::new(n, DEFAULT_CACHE_PATHS, DEFAULT_REFRESH),
            rules,
            master,
            dealers: infos,
            source,
            prior,
            maturity: Buckets::default_maturity_years(),
            size: Buckets::default_size_notional(),
            specialisms,
            by_name: by_name.into_boxed_slice(),
            outcome: PanelOutcome::default(),
        }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Installs reloaded rules (between RFQs).
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.rules = rules;
    }

    /// Sizes the score cache (`paths` segment paths kept; an entry older than `refresh` is
    /// recomputed in full) and sets how old a market mid may be to serve as fair value.
    pub fn configure(&mut self, paths: usize, refresh: Nanos, mid_max_age: Nanos) {
        self.cache = ScoreCache::new(self.dealers.len(), paths, refresh);
        self.mid_max_age = mid_max_age;
    }

    /// What the axe book did (IOIs applied, refused, expired).
    pub fn axe_counters(&self) -> AxeCounters {
        self.axes.counters()
    }

    /// The axe book (read access).
    pub fn axes(&self) -> &AxeBook {
        &self.axes
    }

    /// What the score cache did.
    pub fn cache_counters(&self) -> CacheCounters {
        self.cache.counters()
    }

    /// The latest market mid of an instrument by security-master index, and when it came.
    pub fn mid(&self, index: u32) -> Option<(f64, Nanos)> {
        self.mids.get(index)
    }

    pub fn master(&self) -> &SecurityMaster {
        &self.master
    }

    fn decide<'p>(
        rules: &'p RuleSet,
        master: &'p SecurityMaster,
        maturity: &Buckets,
        size: &Buckets,
        fair: (&MidTable, Nanos),
        spec: &RfqSpec<'_>,
    ) -> Result<Decision<'p>, Refusal> {
        let id_source = (!spec.id_source.is_empty()).then(|| spec.id_source.as_bytes());
        let (index, instrument) = master
            .lookup_fix_index(spec.instrument.as_bytes(), id_source)
            .ok_or(Refusal::UNKNOWN_INSTRUMENT)?;
        let side = spec.side;
        let order = OrderTerms {
            side,
            size: spec.qty,
            mid: fair.0.fresh(index, spec.now, fair.1),
        };
        let pretrade = analyse(rules.pretrade(), instrument, &order, spec.now);
        let facts = Facts {
            instrument,
            side,
            size: spec.qty,
            pretrade: &pretrade,
        };
        let rule = rules.select(&facts);
        let keys = segment_keys(instrument, &pretrade, maturity, size);
        Ok(Decision {
            index,
            instrument,
            pretrade,
            keys,
            rule,
        })
    }

    /// Why and how: the full rationale for `spec` with `candidates` (allocates: for people,
    /// the CLI and the journal). `Err` when the request would be refused.
    pub fn recommend(
        &self,
        spec: &RfqSpec<'_>,
        candidates: &[Candidate],
    ) -> Result<Recommendation, Refusal> {
        let d = Self::decide(
            &self.rules,
            &self.master,
            &self.maturity,
            &self.size,
            (&self.mids, self.mid_max_age),
            spec,
        )?;
        let asset_class = d.instrument.asset_class;
        let mut pcs: Vec<PanelCandidate<'_>> = Vec::with_capacity(candidates.len());
        let mut details: Vec<(DealerId, Option<DealerScores>)> = Vec::new();
        let mut axed: Vec<Option<String>> = Vec::new();
        for c in candidates {
            let Some(info) = self.dealers.get(usize::from(c.dealer.0)) else {
                continue;
            };
            let found = self.source.components(c.dealer, &d.keys, spec.now);
            let axe = axe_against(&self.axes, d.index, spec, c.dealer, d.rule.panel.axe_bonus);
            pcs.push(PanelCandidate {
                name: &info.name,
                scores: found.map_or(self.prior, |f| f.scores),
                manual_tier: Some(c.tier),
                specialisms: info.specialisms,
                online: c.online,
                axe_bonus: axe.map_or(0.0, |_| d.rule.panel.axe_bonus),
            });
            details.push((c.dealer, found));
            axed.push(
                axe.map(|id| format!("axed (IOI {})", String::from_utf8_lossy(id.as_bytes()))),
            );
        }
        let mut outcome = PanelOutcome::default();
        self.rules
            .build_panel(d.rule, asset_class, &pcs, &mut outcome);

        let view = |i: usize| {
            let pc = &pcs[i];
            let found = details[i].1;
            (
                pc,
                found.map_or(0.0, |f| f.observations),
                found
                    .and_then(|f| f.segment)
                    .map_or("none (prior)", SegmentLevel::name),
            )
        };
        let chosen = outcome
            .chosen
            .iter()
            .map(|ch| {
                let (pc, observations, segment) = view(ch.candidate as usize);
                ChosenDealer {
                    name: pc.name.to_string(),
                    tier: ch.tier,
                    score: ch.score,
                    composite: self.rules.composite(&pc.scores),
                    components: pc.scores.into(),
                    observations,
                    segment,
                    chosen_by: match ch.by {
                        ChosenBy::Always => "always list".to_string(),
                        ChosenBy::Pick(p) => format!("pick {}", p + 1),
                    },
                    axe: axed[ch.candidate as usize].clone(),
                }
            })
            .collect();
        let mut excluded = Vec::new();
        for i in 0..pcs.len() {
            let verdict = self.rules.verdict(d.rule, asset_class, &pcs, i, &outcome);
            if verdict == Verdict::Chosen {
                continue;
            }
            let (pc, observations, segment) = view(i);
            let tier = self.rules.tier_of(asset_class, pc);
            let score = pc.ranked(&d.rule.panel.weights);
            let reason = match verdict {
                Verdict::Offline => Exclusion::Offline,
                Verdict::Excluded => Exclusion::ExcludedTier,
                Verdict::NeverList => Exclusion::NeverList,
                Verdict::NoPickMatches => no_pick_reason(&d.rule.panel.picks, pc, tier, score),
                Verdict::RankedOut | Verdict::Chosen => {
                    if outcome.chosen.len() >= usize::from(d.rule.protocol.max_dealers) {
                        Exclusion::PanelFull {
                            max_dealers: d.rule.protocol.max_dealers,
                        }
                    } else {
                        Exclusion::RankedOut
                    }
                }
            };
            excluded.push(ExcludedDealer {
                name: pc.name.to_string(),
                tier,
                score,
                composite: self.rules.composite(&pc.scores),
                observations,
                segment,
                reason,
                why: reason.to_string(),
                axe: axed.get(i).cloned().flatten(),
            });
        }
        let p = &outcome.protocol;
        let finite = |x: f64| x.is_finite().then_some(x);
        Ok(Recommendation {
            instrument: d.instrument.id().to_string(),
            issuer: d.instrument.issuer.to_string(),
            asset_class: asset_class.name(),
            rating: d.instrument.rating.symbol(),
            side: spec.side.map(|s| match s {
                Side::Buy => "buy",
                Side::Sell => "sell",
            }),
            qty: spec.qty,
            pretrade: PretradeView {
                days_since_last_trade: finite(d.pretrade.days_since_last_trade),
                adv_30d: d.pretrade.adv_30d,
                pct_adv: finite(d.pretrade.pct_adv),
                impact_bps: finite(d.pretrade.impact_bps),
                illiquid: d.pretrade.illiquid,
                fair_value: finite(d.pretrade.fair_value),
            },
            rule: d.rule.name.to_string(),
            rule_line: d.rule.line,
            rule_condition: d.rule.when.as_ref().map(|c| c.source().to_string()),
            rules_version: self.rules.version().to_string(),
            protocol: ProtocolView {
                kind: match p.kind {
                    ProtocolKind::Broadcast => "broadcast",
                    ProtocolKind::Staggered => "staggered",
                    ProtocolKind::Whisper => "whisper",
                },
                max_dealers: p.max_dealers,
                response_timeout_ms: p.response_timeout_ms,
                stagger_gap_ms: p.stagger_gap_ms,
                rfq_expiry_ms: p.rfq_expiry_ms,
                escalate_after: p.escalate_after,
                whisper_tolerance_bps: p.whisper_tolerance_bps,
                auto_execute_bps: p.auto_execute_bps,
            },
            chosen,
            excluded,
        })
    }
}

/// Which filter of the rule's picks keeps the candidate out: the pick it gets furthest in
/// (filters in order tier, specialism, cut-off) names the reason.
fn no_pick_reason(picks: &[Pick], c: &PanelCandidate<'_>, tier: u8, score: f64) -> Exclusion {
    let mut best: Option<(u8, Exclusion)> = None;
    for p in picks {
        let (passed, why) = if p.tier.is_some_and(|t| t != tier) {
            (0, Exclusion::TierNotPicked { tier })
        } else if let Some(a) = p.specialism.filter(|&a| !c.specialisms.contains(a)) {
            (
                1,
                Exclusion::NotSpecialist {
                    asset_class: a.name(),
                },
            )
        } else if let Some(m) = p.min_score.filter(|&m| score < m) {
            (
                2,
                Exclusion::BelowCutOff {
                    score,
                    min_score: m,
                },
            )
        } else {
            (3, Exclusion::RankedOut)
        };
        if best.is_none_or(|(b, _)| passed > b) {
            best = Some((passed, why));
        }
    }
    best.map_or(Exclusion::NoPick, |(_, why)| why)
}

impl<S: ScoreSource> Panel for ScoredPanel<S> {
    fn select(&mut self, spec: &RfqSpec<'_>, candidates: &[Candidate], out: &mut Selection) {
        out.fair_value = None;
        out.refusal = None;
        out.context = None;
        let d = match Self::decide(
            &self.rules,
            &self.master,
            &self.maturity,
            &self.size,
            (&self.mids, self.mid_max_age),
            spec,
        ) {
            Ok(d) => d,
            Err(r) => {
                out.refusal = Some(r);
                return;
            }
        };
        // A candidate list longer than the dealer database (which the engine never gives) is
        // cut where the number of known dealers in it reaches the database's size.
        let n = self.dealers.len();
        let candidates = if candidates.len() <= n {
            candidates
        } else {
            let mut known = 0;
            let cut = candidates
                .iter()
                .position(|c| {
                    known += usize::from(usize::from(c.dealer.0) < n);
                    known > n
                })
                .unwrap_or(candidates.len());
            &candidates[..cut]
        };
        let scores = self.cache.scores(
            &d.keys,
            spec.now,
            &self.source,
            self.prior,
            &d.rule.panel.weights,
        );
        let view = CompactCandidates {
            candidates,
            dealers: &self.dealers,
            specialisms: &self.specialisms,
            by_name: &self.by_name,
            scores,
            axed: spec
                .side
                .filter(|_| d.rule.panel.axe_bonus != 0.0 && self.axes.any_in(d.index))
                .map(|side| AxedOrder {
                    book: &self.axes,
                    instrument: d.index,
                    side,
                    now: spec.now,
                    bonus: d.rule.panel.axe_bonus,
                }),
        };
        self.rules
            .build_panel_from(d.rule, d.instrument.asset_class, &view, &mut self.outcome);
        out.protocol = self.outcome.protocol;
        out.fair_value = d
            .pretrade
            .fair_value
            .is_finite()
            .then_some(d.pretrade.fair_value);
        out.context = Some(RfqContext {
            instrument: d.index,
            keys: d.keys,
            impact_bps: if d.pretrade.impact_bps.is_finite() {
                d.pretrade.impact_bps
            } else {
                0.0
            },
        });
        out.dealers.clear();
        out.scores.clear();
        for ch in &self.outcome.chosen {
            let i = ch.candidate as usize;
            if let Some(c) = view.candidates.get(i) {
                out.dealers.push(c.dealer);
                let composite = self.rules.composite(view.components(i)) + view.bonus(c.dealer);
                out.scores.push(composite as f32);
            }
        }
        // The rationale journaled with the decision: which rule (by position; the default
        // rule is one past the file's rules) and which version of the rules.
        let rules = self.rules.rules();
        let index = rules
            .iter()
            .position(|r| std::ptr::eq(r, d.rule))
            .unwrap_or(rules.len());
        out.rule = u16::try_from(index).ok();
        let v = self.rules.version();
        out.rules_version = Some((v.seq, v.hash));
    }

    fn install_rules(&mut self, rules: Box<RuleSet>) -> Result<RulesVersion, Box<RuleSet>> {
        let v = rules.version();
        self.rules = *rules;
        Ok(v)
    }

    fn scores_updated(&mut self, updates: &[TcaUpdate], _now: Nanos) {
        if self.source.follows_rows() {
            return; // refreshed from the rows that came with the update (`score_rows`)
        }
        for u in updates {
            self.cache.mark_dirty(u.dealer);
        }
    }

    fn score_rows(&mut self, rows: &[ScoreRow], _now: Nanos) {
        if self.source.install_rows(rows) {
            for d in rows.iter().filter_map(ScoreRow::dealer_id) {
                self.cache.mark_dirty(d);
            }
        }
    }

    fn market_mid(
        &mut self,
        instrument: &[u8],
        id_source: Option<&[u8]>,
        mid: f64,
        now: Nanos,
    ) -> Option<u32> {
        let (index, _) = self.master.lookup_fix_index(instrument, id_source)?;
        self.mids.set(index, mid, now).then_some(index)
    }

    fn indication(&mut self, dealer: DealerId, ioi: &Indication<'_>, now: Nanos) -> IoiOutcome {
        if usize::from(dealer.0) >= self.dealers.len() {
            return IoiOutcome::Ignored;
        }
        match self.master.lookup_fix_index(ioi.instrument, ioi.id_source) {
            Some((index, _)) => self.axes.apply(dealer, index, ioi, now),
            None => self.axes.unknown_instrument(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The axe hook (select::axes): kept apart from the scoring above.

/// The IOIID of `dealer`'s live axe against the order in `spec` (it wants the other side),
/// when the rule gives axes a bonus at all.
fn axe_against(
    axes: &AxeBook,
    instrument: u32,
    spec: &RfqSpec<'_>,
    dealer: DealerId,
    bonus: f64,
) -> Option<crate::rfq::types::FixId> {
    let side = spec.side?;
    if bonus == 0.0 || !axes.any_in(instrument) {
        return None;
    }
    axes.against(dealer, instrument, side, spec.now)
        .map(|a| a.ioi_id)
}

// ---------------------------------------------------------------------------------------------
// The recommendation

/// Component scores, as shown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ComponentView {
    pub fill_rate: f64,
    pub price_improvement: f64,
    pub leakage: f64,
    pub speed: f64,
    pub loser_leakage: f64,
}

impl From<ComponentScores> for ComponentView {
    fn from(s: ComponentScores) -> ComponentView {
        ComponentView {
            fill_rate: s.fill_rate,
            price_improvement: s.price_improvement,
            leakage: s.leakage,
            speed: s.speed,
            loser_leakage: s.loser_leakage,
        }
    }
}

/// A dealer on the recommended panel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChosenDealer {
    pub name: String,
    pub tier: u8,
    /// The rule's weighted score (what the panel was ranked by).
    pub score: f64,
    /// The composite (default weights; what tiers are set by).
    pub composite: f64,
    pub components: ComponentView,
    pub observations: f64,
    /// The segment the scores came from, or "none (prior)".
    pub segment: &'static str,
    /// "always list" or "pick N" (1-based, in the rule's panel).
    pub chosen_by: String,
    /// "axed (IOI <id>)" when a live IOI of the dealer's wants the other side of the order
    /// (its `score` includes the rule's `axe_bonus`).
    pub axe: Option<String>,
}

/// Why a candidate is not on the panel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Exclusion {
    /// Its FIX session is down.
    Offline,
    /// Tier 0 (excluded) in the dealer database.
    ExcludedTier,
    /// On the rule's never list.
    NeverList,
    /// The rule picks only specialists in this asset class.
    NotSpecialist { asset_class: &'static str },
    /// The rule picks only dealers scoring at least `min_score`.
    BelowCutOff { score: f64, min_score: f64 },
    /// The rule picks other tiers.
    TierNotPicked { tier: u8 },
    /// The rule's maximum number of dealers was reached by better-ranked dealers.
    PanelFull { max_dealers: u8 },
    /// A pick accepts it, but better-scoring dealers took the pick's places.
    RankedOut,
    /// The rule has no pick (only an always list) and it is not on it.
    NoPick,
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exclusion::Offline => f.write_str("offline (FIX session down)"),
            Exclusion::ExcludedTier => f.write_str("excluded (tier 0 in the dealer database)"),
            Exclusion::NeverList => f.write_str("on the rule's never list"),
            Exclusion::NotSpecialist { asset_class } => {
                write!(f, "not a {asset_class} specialist")
            }
            Exclusion::BelowCutOff { score, min_score } => {
                write!(f, "below the cut-off (score {score:.3} < {min_score:.3})")
            }
            Exclusion::TierNotPicked { tier } => write!(f, "tier {tier} not picked by the rule"),
            Exclusion::PanelFull { max_dealers } => {
                write!(f, "panel full ({max_dealers} dealers at most)")
            }
            Exclusion::RankedOut => {
                f.write_str("ranked out: better-ranked dealers filled the pick")
            }
            Exclusion::NoPick => f.write_str("not on the rule's always list"),
        }
    }
}

/// A candidate left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExcludedDealer {
    pub name: String,
    pub tier: u8,
    pub score: f64,
    pub composite: f64,
    pub observations: f64,
    pub segment: &'static str,
    pub reason: Exclusion,
    /// `reason` in words.
    pub why: String,
    /// "axed (IOI <id>)", as for a chosen dealer.
    pub axe: Option<String>,
}

/// Pre-trade figures, as shown (unknown figures are absent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PretradeView {
    pub days_since_last_trade: Option<f64>,
    pub adv_30d: f64,
    pub pct_adv: Option<f64>,
    pub impact_bps: Option<f64>,
    pub illiquid: bool,
    pub fair_value: Option<f64>,
}

/// The protocol, as shown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProtocolView {
    pub kind: &'static str,
    pub max_dealers: u8,
    pub response_timeout_ms: u64,
    pub stagger_gap_ms: u64,
    pub rfq_expiry_ms: u64,
    pub escalate_after: u8,
    pub whisper_tolerance_bps: f64,
    pub auto_execute_bps: Option<f64>,
}

/// A recommended panel with its rationale. `Display` is a table for people; `Serialize`
/// gives the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    pub instrument: String,
    pub issuer: String,
    pub asset_class: &'static str,
    pub rating: &'static str,
    pub side: Option<&'static str>,
    pub qty: f64,
    pub pretrade: PretradeView,
    /// The rule that fired ("default" when none did).
    pub rule: String,
    /// Its line in the rules file (0: the default).
    pub rule_line: u32,
    pub rule_condition: Option<String>,
    /// `seq-hash` of the rules in force.
    pub rules_version: String,
    pub protocol: ProtocolView,
    /// Best first.
    pub chosen: Vec<ChosenDealer>,
    pub excluded: Vec<ExcludedDealer>,
}

fn opt(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "unknown".to_string(), |v| format!("{v:.decimals$}"))
}

impl fmt::Display for Recommendation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pt = &self.pretrade;
        writeln!(
            f,
            "instrument  {} ({}, {}, rating {})",
            self.instrument, self.issuer, self.asset_class, self.rating
        )?;
        writeln!(
            f,
            "order       {} {}",
            self.side.unwrap_or("two-sided"),
            self.qty
        )?;
        writeln!(
            f,
            "pre-trade   ADV {:.0}, {}% of ADV, impact {} bps, {} days since last trade, {}, fair value {}",
            pt.adv_30d,
            opt(pt.pct_adv, 1),
            opt(pt.impact_bps, 1),
            opt(pt.days_since_last_trade, 0),
            if pt.illiquid { "illiquid" } else { "liquid" },
            opt(pt.fair_value, 3),
        )?;
        match &self.rule_condition {
            Some(c) => writeln!(
                f,
                "rule        {} (line {}): {c}",
                self.rule, self.rule_line
            )?,
            None => writeln!(f, "rule        {} (no rule matched)", self.rule)?,
        }
        writeln!(f, "rules       version {}", self.rules_version)?;
        let p = &self.protocol;
        write!(
            f,
            "protocol    {}, up to {} dealers, {} ms per dealer",
            p.kind, p.max_dealers, p.response_timeout_ms
        )?;
        if p.kind == "staggered" {
            write!(f, ", {} ms apart", p.stagger_gap_ms)?;
        }
        if p.kind == "whisper" {
            write!(f, ", tolerance {} bps", p.whisper_tolerance_bps)?;
        }
        match p.auto_execute_bps {
            Some(b) => writeln!(f, ", auto-execute within {b} bps")?,
            None => writeln!(f, ", no auto-execution")?,
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<3} {:<20} {:>4} {:>7} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6} {:<14} by",
            "#",
            "chosen",
            "tier",
            "score",
            "composite",
            "fill",
            "pi",
            "leak",
            "speed",
            "obs",
            "segment"
        )?;
        for (k, c) in self.chosen.iter().enumerate() {
            let s = &c.components;
            writeln!(
                f,
                "{:<3} {:<20} {:>4} {:>7.3} {:>9.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.1} {:<14} {}",
                k + 1,
                c.name,
                c.tier,
                c.score,
                c.composite,
                s.fill_rate,
                s.price_improvement,
                s.leakage,
                s.speed,
                c.observations,
                c.segment,
                match &c.axe {
                    Some(a) => format!("{}, {a}", c.chosen_by),
                    None => c.chosen_by.clone(),
                }
            )?;
        }
        if self.chosen.is_empty() {
            writeln!(f, "    (no dealer)")?;
        }
        if !self.excluded.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<3} {:<20} {:>4} {:>7} {:>9}  why",
                "", "not asked", "tier", "score", "composite"
            )?;
            for e in &self.excluded {
                writeln!(
                    f,
                    "{:<3} {:<20} {:>4} {:>7.3} {:>9.3}  {}{}",
                    "-",
                    e.name,
                    e.tier,
                    e.score,
                    e.composite,
                    e.why,
                    e.axe
                        .as_deref()
                        .map_or(String::new(), |a| format!(" ({a})"))
                )?;
            }
        }
        Ok(())
    }
}
