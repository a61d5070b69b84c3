//! `ScoredPanel::select` (the per-RFQ path: compact per-dealer arrays, weighted scores
//! precomputed per rule weights in the score cache, one bounded shortlist per pick) chooses
//! exactly what `ScoredPanel::recommend` chooses (which copies every dealer into a
//! `PanelCandidate` and asks the score source directly): same dealers in the same order,
//! same composites, for rules with always and never lists, tier / specialism / cut-off picks,
//! weights with many ties, NaN scores, offline and excluded dealers, and after score updates
//! that change some dealers' scores.

use rfq_router::dealers::{Dealer, Dealers};
use rfq_router::rfq::types::{DealerId, FixId, Side};
use rfq_router::select::instruments::Date;
use rfq_router::select::model::Observation;
use rfq_router::select::rules::{ComponentScores, RuleSet};
use rfq_router::select::scored::{load_instruments, DealerScores, ScoreSource, ScoredPanel};
use rfq_router::select::segment::{SegmentKeys, SegmentLevel};
use rfq_router::select::tca::TcaUpdate;
use rfq_router::select::{Candidate, Panel, RfqSpec, Selection};
use rfq_router::time::Nanos;
use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

const DEALERS: u16 = 300;
const ISIN: &str = "US99L2QH1094"; // HY corporate, BB

/// A small deterministic mixer.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Scores that depend on the dealer and, for every fifth dealer, on a shared epoch (bumped
/// to simulate score updates). Speed takes four values (ties); a few dealers score NaN; one
/// in eleven has no data (the prior).
struct Varied {
    epoch: Rc<Cell<u64>>,
}

impl ScoreSource for Varied {
    fn components(&self, dealer: DealerId, _: &SegmentKeys, _: Nanos) -> Option<DealerScores> {
        let d = u64::from(dealer.0);
        if d % 11 == 5 {
            return None;
        }
        let e = if d % 5 == 0 { self.epoch.get() } else { 0 };
        let h = mix(d * 7919 + e * 104_729);
        let unit = |k: u32| ((h >> (k * 12)) & 0xfff) as f64 / 4096.0;
        Some(DealerScores {
            scores: ComponentScores {
                fill_rate: if d % 37 == 3 { f64::NAN } else { unit(0) },
                price_improvement: 0.5 + unit(1),
                leakage: 0.5 + unit(2),
                speed: ((h >> 40) & 3) as f64 / 4.0,
                loser_leakage: 1.0,
            },
            observations: 10.0,
            segment: Some(SegmentLevel::AssetClass),
        })
    }
}

fn rules() -> RuleSet {
    let text = r#"
[tiering]
default = [1.00, 0.85]
hy_corp = [1.02, 0.88]

[default.panel]
weights = { fill_rate = 0.30, price_improvement = 0.40, leakage = 0.20, speed = 0.10 }
top = 4
[default.protocol]
max_dealers = 4

[[rule]]
name = "lists"
when = "size > 9_000_000"
[rule.panel]
weights = { leakage = 0.5, fill_rate = 0.5 }
always = ["Dealer 7", "Dealer 3", "Nobody", "Dealer 0", "Dealer 6"]
never = ["Dealer 11", "Dealer 12", "Dealer 40"]
picks = [
  { tier = 1, specialism = "hy_corp", top = 2 },
  { min_score = 0.9, top = 3 },
  { tier = 2 },
]
[rule.protocol]
max_dealers = 14

[[rule]]
name = "ties"
when = "size > 7_000_000"
[rule.panel]
weights = { speed = 1.0 }
top = 6
[rule.protocol]
max_dealers = 6

[[rule]]
name = "specialists"
when = "size > 5_000_000"
[rule.panel]
picks = [{ specialism = "ig_corp", top = 3 }, { tier = 3, top = 2 }]
[rule.protocol]
max_dealers = 5
"#;
    RuleSet::parse(text, Path::new("equivalence rules")).expect("rules")
}

fn dealers() -> Dealers {
    Dealers {
        dealers: (0..DEALERS)
            .map(|i| {
                let h = mix(u64::from(i) + 1);
                let classes = match h % 4 {
                    0 => vec!["hy_corp".to_string()],
                    1 => vec!["ig_corp".to_string()],
                    2 => vec!["hy_corp".to_string(), "ig_corp".to_string()],
                    _ => Vec::new(),
                };
                Dealer::new(
                    format!("Dealer {i}"),
                    format!("D{i}"),
                    usize::from(i),
                    1,
                    classes,
                )
            })
            .collect(),
    }
}

fn candidates(round: u64) -> Vec<Candidate> {
    (0..DEALERS)
        .map(|i| {
            let h = mix(u64::from(i) * 31 + round * 1_000_003);
            Candidate {
                dealer: DealerId(i),
                // Mostly tiers 1-3, some excluded (0).
                tier: [1, 2, 3, 2, 1, 3, 0, 2][(h % 8) as usize],
                online: !(h >> 8).is_multiple_of(9),
            }
        })
        .collect()
}

fn now() -> Nanos {
    Nanos(Date::parse("2026-11-21").unwrap().0 as u64 * 86_400_000_000_000)
}

/// Selects for `qty` and checks the panel against the recommendation.
fn check(panel: &mut ScoredPanel<Varied>, cands: &[Candidate], qty: f64, what: &str) -> usize {
    let id = FixId::new(ISIN.as_bytes()).unwrap();
    let source = FixId::new(b"4").unwrap();
    let spec = RfqSpec {
        instrument: &id,
        id_source: &source,
        side: Some(Side::Buy),
        qty,
        now: now(),
    };
    let mut out = Selection::default();
    panel.select(&spec, cands, &mut out);
    let rec = panel.recommend(&spec, cands).expect("known instrument");
    let want: Vec<String> = rec.chosen.iter().map(|c| c.name.clone()).collect();
    let got: Vec<String> = out
        .dealers
        .iter()
        .map(|d| format!("Dealer {}", d.0))
        .collect();
    assert_eq!(got, want, "{what}: qty {qty}, rule {}", rec.rule);
    let composites: Vec<f32> = rec.chosen.iter().map(|c| c.composite as f32).collect();
    assert_eq!(
        out.scores.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
        composites.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
        "{what}: composites"
    );
    assert_eq!(out.protocol.max_dealers, rec.protocol.max_dealers);
    out.dealers.len()
}

#[test]
fn select_chooses_what_the_full_recommendation_chooses() {
    let epoch = Rc::new(Cell::new(0));
    let dealers = dealers();
    let mut panel = ScoredPanel::new(
        rules(),
        load_instruments(None).unwrap(),
        &dealers,
        Varied {
            epoch: Rc::clone(&epoch),
        },
    );
    let quantities = [10e6, 8e6, 6e6, 1e6];
    let mut chosen = 0;
    for round in 0..12u64 {
        let cands = candidates(round);
        for qty in quantities {
            chosen += check(&mut panel, &cands, qty, &format!("round {round}"));
        }
        // Every fifth dealer's scores change; the panel is told which.
        epoch.set(round + 1);
        let updates: Vec<TcaUpdate> = (0..DEALERS)
            .filter(|d| d % 5 == 0)
            .map(|d| TcaUpdate {
                rfq: round,
                dealer: DealerId(d),
                keys: None,
                obs: Observation::RfqSent,
                at: now(),
            })
            .collect();
        panel.scores_updated(&updates, now());
    }
    // The panels were not empty (the comparison compared something).
    assert!(chosen > 12 * 4 * 3, "{chosen}");
}

#[test]
fn candidates_in_another_order_or_with_unknown_dealers_choose_the_same() {
    let epoch = Rc::new(Cell::new(0));
    let dealers = dealers();
    let mut panel = ScoredPanel::new(
        rules(),
        load_instruments(None).unwrap(),
        &dealers,
        Varied { epoch },
    );
    let mut cands = candidates(3);
    cands.reverse();
    // A dealer the database does not know is never chosen and changes nothing.
    cands.insert(
        10,
        Candidate {
            dealer: DealerId(DEALERS + 5),
            tier: 1,
            online: true,
        },
    );
    for qty in [10e6, 8e6, 6e6, 1e6] {
        check(&mut panel, &cands, qty, "reversed");
    }
}
