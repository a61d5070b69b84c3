//! `ScoredPanel` over the shipped configuration (embedded rules, security master, dealers):
//! each of the seed's three example rules picks the dealers and protocol it describes, an
//! unknown instrument is refused, and the recommendation explains every left-out dealer.

use rfq_router::config::Config;
use rfq_router::dealers::Dealers;
use rfq_router::rfq::types::{DealerId, FixId, Side};
use rfq_router::select::instruments::Date;
use rfq_router::select::rules::ComponentScores;
use rfq_router::select::scored::{
    load_instruments, load_rules, DealerScores, Exclusion, NeutralScores, ScoreSource, ScoredPanel,
};
use rfq_router::select::segment::{SegmentKeys, SegmentLevel};
use rfq_router::select::{Candidate, Panel, ProtocolKind, Refusal, RfqSpec, Selection};
use rfq_router::time::Nanos;

// Dealers in config/dealers.toml order: A (tier 1, ig/hy), B (1, ig/muni), C (2,
// structured/hy), D (2, muni).
const A: DealerId = DealerId(0);
const B: DealerId = DealerId(1);
const C: DealerId = DealerId(2);
const D: DealerId = DealerId(3);

/// Fixed scores per dealer, chosen so that the seed rule (a)'s 60/40 fill/price-improvement
/// weights and the default 30/40/20/10 composite rank the dealers differently.
struct Fixed;

impl ScoreSource for Fixed {
    fn components(&self, dealer: DealerId, _: &SegmentKeys, _: Nanos) -> Option<DealerScores> {
        let (fill_rate, price_improvement, leakage) = match dealer.0 {
            0 => (0.5, 1.0, 1.5), // rule a: 0.70, composite 0.90
            1 => (0.9, 1.0, 1.0), // rule a: 0.94, composite 0.92
            2 => (0.2, 0.9, 1.0), // rule a: 0.48, composite 0.67
            3 => (0.8, 1.1, 1.0), // rule a: 0.92, composite 0.93
            _ => return None,
        };
        Some(DealerScores {
            scores: ComponentScores {
                fill_rate,
                price_improvement,
                leakage,
                speed: 0.5,
                loser_leakage: 1.0,
            },
            observations: 42.0,
            segment: Some(SegmentLevel::Issuer),
        })
    }
}

fn panel<S: ScoreSource>(source: S) -> (ScoredPanel<S>, Vec<Candidate>) {
    let config = Config::embedded().unwrap();
    let dealers = Dealers::embedded(&config).unwrap();
    let candidates = dealers.candidates_all_online();
    let p = ScoredPanel::new(
        load_rules(None).unwrap(),
        load_instruments(None).unwrap(),
        &dealers,
        source,
    );
    (p, candidates)
}

fn as_of() -> Nanos {
    Nanos(Date::parse("2026-11-21").unwrap().0 as u64 * 86_400_000_000_000 + 43_200_000_000_000)
}

fn select<S: ScoreSource>(
    p: &mut ScoredPanel<S>,
    candidates: &[Candidate],
    id: &str,
    source: &str,
    side: Side,
    qty: f64,
) -> Selection {
    let id = FixId::new(id.as_bytes()).unwrap();
    let source = FixId::new(source.as_bytes()).unwrap();
    let spec = RfqSpec {
        instrument: &id,
        id_source: &source,
        side: Some(side),
        qty,
        now: as_of(),
    };
    let mut out = Selection::default();
    p.select(&spec, candidates, &mut out);
    out
}

#[test]
fn seed_a_sub_ig_corporate_over_5mm_takes_the_top_three_by_60_40() {
    let (mut p, c) = panel(Fixed);
    // Quarry Hill Casinos, BB (below BBB), $6mm.
    let s = select(&mut p, &c, "US99L2QH1094", "4", Side::Buy, 6e6);
    assert_eq!(s.refusal, None);
    // 60% fill + 40% price improvement: B 0.94, D 0.92, A 0.70, C 0.48.
    assert_eq!(s.dealers.as_slice(), &[B, D, A]);
    assert_eq!(s.protocol.kind, ProtocolKind::Broadcast);
    assert_eq!(s.fair_value, None);
    // $5mm exactly is not "greater than $5 million": another rule (here > 10% ADV) decides.
    let s = select(&mut p, &c, "US99L2QH1094", "4", Side::Buy, 5e6);
    assert_eq!(s.protocol.kind, ProtocolKind::Staggered);
}

#[test]
fn seed_b_unrated_muni_over_2mm_takes_all_tier_1_and_top_two_tier_2_muni_specialists() {
    let (mut p, c) = panel(Fixed);
    // Pine Hollow Housing, NR muni (by CUSIP), $3mm.
    let s = select(&mut p, &c, "99Z6PH106", "1", Side::Sell, 3e6);
    assert_eq!(s.refusal, None);
    // Tier 1 (A, B) by composite, then tier 2 muni specialists: D (C is not one).
    assert_eq!(s.dealers.as_slice(), &[B, A, D]);
    assert_eq!(s.protocol.kind, ProtocolKind::Broadcast);
    assert_eq!(s.protocol.max_dealers, 32);
    // A rated muni does not take this rule: the panel is the default's top four.
    let s = select(&mut p, &c, "99W3WM107", "1", Side::Sell, 3e6);
    assert_eq!(
        s.protocol.max_dealers, 3,
        "a rated muni > 10% ADV is rule (c)"
    );
}

#[test]
fn seed_c_over_10pct_adv_staggers_three_dealers_5s_apart() {
    let (mut p, c) = panel(Fixed);
    // Northwind 2046s (A-, IG): $2mm is 22% of its $9mm ADV.
    let s = select(&mut p, &c, "US99A1NW2025", "4", Side::Buy, 2e6);
    assert_eq!(s.refusal, None);
    assert_eq!(s.protocol.kind, ProtocolKind::Staggered);
    assert_eq!(s.protocol.stagger_gap_ms, 5_000);
    assert_eq!(s.protocol.max_dealers, 3);
    // Default composite: D 0.93, B 0.92, A 0.90; C 0.67 left out.
    assert_eq!(s.dealers.as_slice(), &[D, B, A]);
    // 5% of ADV: no rule, the default broadcast to four.
    let s = select(&mut p, &c, "US99A1NW2025", "4", Side::Buy, 450_000.0);
    assert_eq!(s.protocol.kind, ProtocolKind::Broadcast);
    assert_eq!(s.dealers.len(), 4);
}

#[test]
fn offline_and_excluded_dealers_are_never_chosen() {
    let (mut p, mut c) = panel(NeutralScores);
    c[1].online = false;
    c[3].tier = 0;
    let s = select(&mut p, &c, "US99A1NW1035", "4", Side::Buy, 2e6);
    assert_eq!(s.dealers.as_slice(), &[A, C]);
}

#[test]
fn unknown_instrument_is_refused_with_unknown_symbol() {
    let (mut p, c) = panel(NeutralScores);
    let s = select(&mut p, &c, "US0000000000", "4", Side::Buy, 1e6);
    assert_eq!(s.refusal, Some(Refusal::UNKNOWN_INSTRUMENT));
    assert_eq!(s.refusal.unwrap().reason, 1);
    assert!(s.dealers.is_empty());
    // A CUSIP given as an ISIN is not looked up as a CUSIP.
    let s = select(&mut p, &c, "99Z6PH106", "4", Side::Buy, 1e6);
    assert_eq!(s.refusal, Some(Refusal::UNKNOWN_INSTRUMENT));
    // Symbol only (no SecurityIDSource): either kind of identifier.
    let s = select(&mut p, &c, "99Z6PH106", "", Side::Buy, 1e6);
    assert_eq!(s.refusal, None);
}

#[test]
fn recommendation_explains_the_choice_and_every_left_out_dealer() {
    let (p, mut c) = panel(Fixed);
    c[2].online = false;
    let id = FixId::new(b"99Z6PH106").unwrap();
    let spec = RfqSpec {
        instrument: &id,
        id_source: &FixId::EMPTY,
        side: Some(Side::Sell),
        qty: 3e6,
        now: as_of(),
    };
    let r = p.recommend(&spec, &c).unwrap();
    assert_eq!(r.rule, "seed-b-unrated-muni-over-2mm");
    assert!(r.rule_line > 0);
    assert_eq!(
        r.chosen.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["Dealer B", "Dealer A", "Dealer D"]
    );
    assert_eq!(r.chosen[0].observations, 42.0);
    assert_eq!(r.chosen[0].segment, "issuer");
    assert_eq!(r.chosen[2].chosen_by, "pick 2");
    assert_eq!(r.excluded.len(), 1);
    assert_eq!(r.excluded[0].name, "Dealer C");
    assert_eq!(r.excluded[0].reason, Exclusion::Offline);

    // Online again, C is left out for not being a muni specialist.
    c[2].online = true;
    let r = p.recommend(&spec, &c).unwrap();
    assert_eq!(
        r.excluded[0].reason,
        Exclusion::NotSpecialist {
            asset_class: "muni"
        }
    );
    let text = r.to_string();
    assert!(text.contains("seed-b-unrated-muni-over-2mm"), "{text}");
    assert!(text.contains("not a muni specialist"), "{text}");
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["excluded"][0]["reason"]["code"], "not_specialist");
    assert_eq!(json["protocol"]["max_dealers"], 32);

    // Rule (a): C is accepted by the pick but ranked out of its three places.
    let id = FixId::new(b"US99L2QH1094").unwrap();
    let spec = RfqSpec {
        instrument: &id,
        qty: 6e6,
        ..spec
    };
    let r = p.recommend(&spec, &c).unwrap();
    assert_eq!(r.rule, "seed-a-sub-ig-corporate-over-5mm");
    assert_eq!(r.excluded[0].name, "Dealer C");
    assert_eq!(r.excluded[0].reason, Exclusion::RankedOut);

    let id = FixId::new(b"US0000000000").unwrap();
    let spec = RfqSpec {
        instrument: &id,
        ..spec
    };
    assert_eq!(p.recommend(&spec, &c), Err(Refusal::UNKNOWN_INSTRUMENT));
}
