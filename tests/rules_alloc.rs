//! Rule evaluation, pre-trade analytics, instrument lookup and panel building do not allocate:
//! a counting global allocator watches this thread while they run on the shipped config.

use rfq_router::select::expr::Facts;
use rfq_router::select::instruments::{AssetClass, AssetClassSet, Date, SecurityMaster};
use rfq_router::select::pretrade::{analyse, OrderTerms, Side};
use rfq_router::select::rules::{ComponentScores, PanelCandidate, PanelOutcome, RuleSet};
use rfq_router::time::Nanos;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::counted;

#[test]
fn selection_path_does_not_allocate() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let rules = RuleSet::load(format!("{dir}/config/rules.toml")).unwrap();
    let master = SecurityMaster::load(format!("{dir}/config/instruments.csv")).unwrap();
    let now = Nanos(Date::parse("2026-11-20").unwrap().0 as u64 * 86_400_000_000_000);
    let names: Vec<String> = (0..200).map(|k| format!("DLR{k:03}")).collect();
    let candidates: Vec<PanelCandidate<'_>> = names
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let x = (k * 37 % 101) as f64 / 100.0;
            PanelCandidate {
                name: n,
                scores: ComponentScores {
                    fill_rate: x,
                    price_improvement: 0.8 + x / 2.0,
                    leakage: 1.0 - x / 10.0,
                    speed: 0.5,
                    loser_leakage: 1.0,
                },
                manual_tier: None,
                specialisms: AssetClassSet::EMPTY.with(AssetClass::ALL[k % 5]),
                online: k % 7 != 0,
                axe_bonus: 0.0,
            }
        })
        .collect();
    let ids: Vec<&[u8]> = vec![
        b"US99L2QH1094",
        b"99Z6PH106",
        b"US99A1NW1035",
        b"us99c3hp1093",
        b"99S8DC104",
        b"XS9900345679",
        b"NOSUCHBOND01",
    ];
    let mut out = PanelOutcome::default();
    let mut fired = [0usize; 16];

    let ((), during) = counted(|| {
        for round in 0..50 {
            for id in &ids {
                let Some(instrument) = master.lookup(id) else {
                    continue;
                };
                let side = if round % 2 == 0 {
                    Some(Side::Buy)
                } else {
                    Some(Side::Sell)
                };
                let size = 250_000.0 * f64::from(round + 1);
                let order = OrderTerms {
                    side,
                    size,
                    mid: Some(99.5),
                };
                let pretrade = analyse(rules.pretrade(), instrument, &order, now);
                let facts = Facts {
                    instrument,
                    side,
                    size,
                    pretrade: &pretrade,
                };
                let rule = rules.select(&facts);
                let k = rules.first_match(&facts).map_or(15, |i| i.min(14));
                fired[k] += 1;
                rules.build_panel(rule, instrument.asset_class, &candidates, &mut out);
                assert!(out.chosen.len() <= usize::from(out.protocol.max_dealers));
            }
        }
    });
    assert_eq!(during, 0, "the selection path allocated {during} times");
    // The loop exercised several rules and the default, not one path.
    assert!(fired.iter().filter(|&&n| n > 0).count() >= 4, "{fired:?}");
}
