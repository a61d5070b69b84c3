//! The shipped `config/rules.toml` against the shipped security master: each of the seed's
//! three example rules fires for the orders it describes and not for others, and its action
//! (panel and protocol) is what the seed says.

use rfq_router::select::expr::Facts;
use rfq_router::select::instruments::{AssetClass, AssetClassSet, Date, SecurityMaster};
use rfq_router::select::pretrade::{analyse, OrderTerms, Side};
use rfq_router::select::rules::{
    ChosenBy, ComponentScores, PanelCandidate, PanelOutcome, RuleSet, Verdict,
};
use rfq_router::select::ProtocolKind;
use rfq_router::time::Nanos;

const RULE_A: &str = "seed-a-sub-ig-corporate-over-5mm";
const RULE_B: &str = "seed-b-unrated-muni-over-2mm";
const RULE_C: &str = "seed-c-over-10pct-adv";

fn config(name: &str) -> String {
    format!("{}/config/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn load() -> (RuleSet, SecurityMaster) {
    let rules = RuleSet::load(config("rules.toml")).unwrap_or_else(|e| panic!("{e}"));
    let master = SecurityMaster::load(config("instruments.csv")).unwrap_or_else(|e| panic!("{e}"));
    (rules, master)
}

fn now() -> Nanos {
    let day = Date::parse("2026-11-20").unwrap().0 as u64;
    Nanos(day * 86_400_000_000_000 + 12 * 3_600_000_000_000)
}

/// (does `rule` hold, the name of the rule that fires first) for an order.
fn decide(
    rules: &RuleSet,
    master: &SecurityMaster,
    id: &str,
    side: Option<Side>,
    size: f64,
    rule: &str,
) -> (bool, String) {
    let instrument = master.lookup(id.as_bytes()).expect(id);
    let order = OrderTerms {
        side,
        size,
        mid: None,
    };
    let pretrade = analyse(rules.pretrade(), instrument, &order, now());
    let facts = Facts {
        instrument,
        side,
        size,
        pretrade: &pretrade,
    };
    let holds = rules.rule(rule).expect(rule).matches(&facts);
    (holds, rules.select(&facts).name.to_string())
}

#[test]
fn rule_a_sub_investment_grade_corporates_over_5mm() {
    let (rules, master) = load();
    let buy = Some(Side::Buy);
    // (instrument, size, should hold): the rule's own condition
    let cases = [
        ("US99L2QH1094", 6e6, true),   // HY corp, BB
        ("US99P5IS1032", 5.5e6, true), // split BB+/Ba1/BBB- -> composite BB+
        ("XS9900345679", 6e6, true),   // EUR HY corp, BB
        ("US99K1RD2098", 20e6, true),  // B-/B3/B -> B
        ("US99L2QH1094", 5e6, false),  // not *greater* than $5 million
        ("US99E5KS1024", 10e6, false), // BBB- is investment grade, not below BBB
        ("US99J9TE1018", 10e6, false), // split BBB-/Ba1/BBB- -> composite BBB-
        ("US99B2BT1007", 10e6, false), // BBB
        ("99Z9SL108", 10e6, false),    // a BB muni is not a corporate bond
        ("US99ADMH1018", 10e6, false), // BB structured is not corporate
        ("99Z6PH106", 10e6, false),    // unrated is not "below BBB"
    ];
    for (id, size, want) in cases {
        let (holds, first) = decide(&rules, &master, id, buy, size, RULE_A);
        assert_eq!(holds, want, "{id} {size}");
        if want {
            assert_eq!(first, RULE_A, "{id}: rule (a) is first in the file");
        }
    }
    let a = rules.rule(RULE_A).unwrap();
    assert_eq!(a.panel.window_days, 90);
    assert_eq!(a.panel.weights.fill_rate, 0.6);
    assert_eq!(a.panel.weights.price_improvement, 0.4);
    assert_eq!(a.panel.weights.leakage + a.panel.weights.speed, 0.0);
    assert_eq!(a.panel.picks.len(), 1);
    assert_eq!(a.panel.picks[0].top, Some(3));
}

fn scores(fill_rate: f64, price_improvement: f64, leakage: f64, speed: f64) -> ComponentScores {
    ComponentScores {
        fill_rate,
        price_improvement,
        leakage,
        speed,
        loser_leakage: 1.0,
    }
}

fn candidate(name: &str, s: ComponentScores) -> PanelCandidate<'_> {
    PanelCandidate {
        name,
        scores: s,
        manual_tier: None,
        specialisms: AssetClassSet::EMPTY,
        online: true,
        axe_bonus: 0.0,
    }
}

#[test]
fn rule_a_panel_is_top_three_by_60_hit_rate_40_price_improvement() {
    let (rules, _) = load();
    let a = rules.rule(RULE_A).unwrap();
    // D1 has the best composite (30/40/20/10) but a poor hit rate; the 60/40 score ranks
    // D2 > D3 > D4 > D1.
    let cands = [
        candidate("D1", scores(0.40, 1.40, 1.60, 1.00)), // 60/40: 0.80; composite 1.10
        candidate("D2", scores(0.95, 1.30, 0.80, 0.50)), // 60/40: 1.09
        candidate("D3", scores(0.90, 1.20, 0.80, 0.50)), // 60/40: 1.02
        candidate("D4", scores(0.85, 1.10, 0.80, 0.50)), // 60/40: 0.95
        candidate("D5", scores(0.99, 1.50, 0.90, 0.90)), // best of all, but offline
    ];
    let mut cands = cands;
    cands[4].online = false;
    let mut out = PanelOutcome::default();
    rules.build_panel(a, AssetClass::HyCorp, &cands, &mut out);
    let names: Vec<&str> = out
        .chosen
        .iter()
        .map(|c| cands[c.candidate as usize].name)
        .collect();
    assert_eq!(names, ["D2", "D3", "D4"]);
    assert!((out.chosen[0].score - (0.6 * 0.95 + 0.4 * 1.30)).abs() < 1e-12);
    assert!(out.chosen.iter().all(|c| c.by == ChosenBy::Pick(0)));
    assert_eq!(out.protocol.kind, ProtocolKind::Broadcast);
    assert_eq!(
        rules.verdict(a, AssetClass::HyCorp, &cands, 0, &out),
        Verdict::RankedOut
    );
    assert_eq!(
        rules.verdict(a, AssetClass::HyCorp, &cands, 4, &out),
        Verdict::Offline
    );
    assert_eq!(
        rules.verdict(a, AssetClass::HyCorp, &cands, 1, &out),
        Verdict::Chosen
    );
}

#[test]
fn rule_b_unrated_munis_over_2mm() {
    let (rules, master) = load();
    let cases = [
        ("99Z6PH106", 2.5e6, true),   // NR muni
        ("99Z7GV103", 10e6, true),    // NR muni
        ("99Z8TC109", 3e6, true),     // NR muni that never traded
        ("99Z6PH106", 2e6, false),    // not *over* $2M
        ("99U1HW108", 5e6, false),    // AA muni
        ("99Z9SL108", 5e6, false),    // rated by Fitch only: rated
        ("US99ACLC1056", 5e6, false), // NR at S&P, but rated by the others; and structured
    ];
    for (id, size, want) in cases {
        let (holds, first) = decide(&rules, &master, id, Some(Side::Sell), size, RULE_B);
        assert_eq!(holds, want, "{id} {size}");
        if want {
            assert_eq!(first, RULE_B, "{id}");
        }
    }
}

#[test]
fn rule_b_panel_is_all_tier_1_and_top_two_tier_2_muni_specialists() {
    let (rules, _) = load();
    let b = rules.rule(RULE_B).unwrap();
    let muni = AssetClassSet::EMPTY.with(AssetClass::Muni);
    // Tiers for munis come from [tiering] muni: the seed's [0.95, 0.80] on its 30/40/20/10
    // composite, shipped as (t + 0.2) / 1.2 on the five-weight composite (loser leakage
    // 0.20 / 1.2; config/rules.toml), so a dealer with no losing drift (loser_leakage 1.0,
    // as here) lands in the seed's tier.
    let mk = |name, composite_ish: f64, specialist: bool| PanelCandidate {
        specialisms: if specialist {
            muni
        } else {
            AssetClassSet::EMPTY
        },
        // all components equal: the composite equals that value
        ..candidate(
            name,
            scores(composite_ish, composite_ish, composite_ish, composite_ish),
        )
    };
    let cands = [
        mk("T2-generalist", 0.94, false),
        mk("T1-a", 0.97, false),
        mk("T2-muni-low", 0.82, true),
        mk("T1-b", 1.10, true),
        mk("T2-muni-high", 0.90, true),
        mk("T3-muni", 0.70, true),
        mk("T2-muni-mid", 0.85, true),
    ];
    for (c, want) in cands.iter().zip([2, 1, 2, 1, 2, 3, 2]) {
        assert_eq!(rules.tier_of(AssetClass::Muni, c), want, "{}", c.name);
    }
    let mut out = PanelOutcome::default();
    rules.build_panel(b, AssetClass::Muni, &cands, &mut out);
    let names: Vec<&str> = out
        .chosen
        .iter()
        .map(|c| cands[c.candidate as usize].name)
        .collect();
    assert_eq!(names, ["T1-b", "T1-a", "T2-muni-high", "T2-muni-mid"]);
    let by: Vec<ChosenBy> = out.chosen.iter().map(|c| c.by).collect();
    assert_eq!(
        by,
        [
            ChosenBy::Pick(0),
            ChosenBy::Pick(0),
            ChosenBy::Pick(1),
            ChosenBy::Pick(1)
        ]
    );
    assert_eq!(out.protocol.kind, ProtocolKind::Broadcast);
    assert_eq!(
        rules.verdict(b, AssetClass::Muni, &cands, 0, &out),
        Verdict::NoPickMatches,
        "a tier 2 generalist is not a municipal specialist"
    );
    assert_eq!(
        rules.verdict(b, AssetClass::Muni, &cands, 2, &out),
        Verdict::RankedOut
    );
    // "all" tier 1: with many tier 1 dealers, every one is asked
    let many: Vec<String> = (0..12).map(|k| format!("T1-{k}")).collect();
    let cands: Vec<PanelCandidate<'_>> = many.iter().map(|n| mk(n, 1.0, false)).collect();
    rules.build_panel(b, AssetClass::Muni, &cands, &mut out);
    assert_eq!(out.chosen.len(), 12);
}

#[test]
fn rule_c_over_10_percent_of_adv() {
    let (rules, master) = load();
    // Northwind 2031: ADV 42,000,000, A- rated, traded today.
    let cases = [
        ("US99A1NW1035", 4.3e6, true),  // 10.2% of ADV
        ("US99A1NW1035", 4.2e6, false), // exactly 10%: not *more* than 10%
        ("US99A1NW1035", 2e6, false),   // 4.8%
        ("US99E5KS1024", 2e6, true),    // 11.1% of 18,000,000
    ];
    for (id, size, want) in cases {
        let (holds, first) = decide(&rules, &master, id, Some(Side::Buy), size, RULE_C);
        assert_eq!(holds, want, "{id} {size}");
        if want {
            assert_eq!(first, RULE_C, "{id}");
        } else {
            assert_ne!(first, RULE_C, "{id}");
        }
    }
    // A sub-IG corporate over $5M and over 10% ADV meets rule (a) first: first match wins.
    let (holds, first) = decide(&rules, &master, "US99L2QH1094", None, 6e6, RULE_C);
    assert!(holds);
    assert_eq!(first, RULE_A);

    let c = rules.rule(RULE_C).unwrap();
    assert_eq!(c.protocol.kind, ProtocolKind::Staggered);
    assert_eq!(c.protocol.stagger_gap_ms, 5_000);
    assert_eq!(c.protocol.max_dealers, 3);
    // The panel (the default: best by composite) is cut to three dealers.
    let cands: Vec<PanelCandidate<'_>> = ["A", "B", "C", "D", "E"]
        .iter()
        .zip([0.9, 0.8, 1.0, 0.7, 0.95])
        .map(|(n, s)| candidate(n, scores(s, s, s, s)))
        .collect();
    let mut out = PanelOutcome::default();
    rules.build_panel(c, AssetClass::IgCorp, &cands, &mut out);
    let names: Vec<&str> = out
        .chosen
        .iter()
        .map(|x| cands[x.candidate as usize].name)
        .collect();
    assert_eq!(names, ["C", "E", "A"]);
    assert_eq!(out.protocol.max_dealers, 3);
}

#[test]
fn other_orders_fall_through_to_later_rules_or_the_default() {
    let (rules, master) = load();
    let sell = Some(Side::Sell);
    // Liquid IG odd lot
    let (_, first) = decide(&rules, &master, "US99C3HP1093", sell, 500_000.0, RULE_A);
    assert_eq!(first, "liquid-ig-small");
    // Nothing special: the default
    let (_, first) = decide(&rules, &master, "US99C3HP1093", sell, 2_000_000.0, RULE_A);
    assert_eq!(first, "default");
    assert_eq!(rules.default_rule().protocol.auto_execute_bps, None);
    // Distressed, small
    let (_, first) = decide(&rules, &master, "US99S8DC1044", sell, 1_000.0, RULE_A);
    assert_eq!(first, "distressed");
    // The seed's scenario: an illiquid IG corporate sold in size (not sub-IG, under 10% ADV)
    let (_, first) = decide(&rules, &master, "US99H8VI1031", sell, 10e6, RULE_A);
    // 10e6 is 312% of a 3.2M ADV: rule (c) holds first
    assert_eq!(first, RULE_C);
    let scenario = rules.rule("illiquid-corporate-block-sale").unwrap();
    assert_eq!(scenario.protocol.kind, ProtocolKind::Whisper);
    assert_eq!(scenario.protocol.auto_execute_bps, Some(10.0));
}
