//! Rule evaluation benchmarks: 50 rules against one order where only the last fires (every
//! condition is evaluated), the shipped rules, instrument lookup, pre-trade analytics, and a
//! whole decision (pre-trade + rule + panel of 200 dealers). Criterion reports means; a
//! second pass times single first-match evaluations into an HDR histogram for p50/p99/max
//! (each sample includes one `Instant::now()` pair, ~20-40 ns, so these are upper bounds).
//! Run with `cargo bench --bench rules`.

use criterion::{criterion_group, criterion_main, Criterion};
use hdrhistogram::Histogram;
use rfq_router::select::expr::Facts;
use rfq_router::select::instruments::{AssetClass, AssetClassSet, Date, SecurityMaster};
use rfq_router::select::pretrade::{analyse, OrderTerms, PreTrade, Side};
use rfq_router::select::rules::{ComponentScores, PanelCandidate, PanelOutcome, RuleSet};
use rfq_router::time::Nanos;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

const ORDER_ID: &[u8] = b"US99L2QH1094"; // HY corporate, BB, ADV 6.8M
const ORDER_SIZE: f64 = 6_000_000.0;

/// 49 varied conditions that do not hold for the order, then one that does.
fn fifty_rules() -> String {
    let mut text = String::new();
    for k in 0..49u32 {
        let when = match k % 7 {
            0 => format!(
                "asset_class == muni and rating == NR and size > {}",
                2_000_000 + k
            ),
            1 => format!(
                "asset_class in [ig_corp, hy_corp] and rating <= BB+ and size > {}",
                50_000_000 + k * 1000
            ),
            2 => format!(
                "pct_adv > {} or days_since_last_trade > {}",
                100 + k,
                30 + k
            ),
            3 => format!(
                "sector in [\"Energy\", \"Utilities\", \"Media\"] and maturity_years > {}",
                k % 30
            ),
            4 => format!("issuer == \"Nobody {k}\" or (maturity_years > 40 and coupon < 1)"),
            5 => format!("side == buy and illiquid and impact_bps > {}", 100 + k),
            _ => "not (rating >= CCC-) or currency == \"JPY\"".to_string(),
        };
        text.push_str(&format!("[[rule]]\nname = \"r{k}\"\nwhen = '{when}'\n\n"));
    }
    text.push_str(
        "[[rule]]\nname = \"fires\"\nwhen = \"asset_class == hy_corp and rating < BBB- and size > 5_000_000\"\n",
    );
    text
}

struct Setup {
    fifty: RuleSet,
    shipped: RuleSet,
    master: SecurityMaster,
    now: Nanos,
    names: Vec<String>,
}

fn setup() -> Setup {
    let dir = env!("CARGO_MANIFEST_DIR");
    let fifty = RuleSet::parse(&fifty_rules(), Path::new("fifty.toml")).expect("50 rules");
    assert_eq!(fifty.rules().len(), 50);
    let shipped = RuleSet::load(format!("{dir}/config/rules.toml")).expect("rules.toml");
    let master =
        SecurityMaster::load(format!("{dir}/config/instruments.csv")).expect("instruments.csv");
    let now = Nanos(Date::parse("2026-11-20").unwrap().0 as u64 * 86_400_000_000_000);
    let names = (0..200).map(|k| format!("DLR{k:03}")).collect();
    Setup {
        fifty,
        shipped,
        master,
        now,
        names,
    }
}

fn order() -> OrderTerms {
    OrderTerms {
        side: Some(Side::Sell),
        size: ORDER_SIZE,
        mid: Some(99.25),
    }
}

fn facts<'a>(s: &'a Setup, pretrade: &'a PreTrade) -> Facts<'a> {
    Facts {
        instrument: s.master.lookup(ORDER_ID).expect("order instrument"),
        side: Some(Side::Sell),
        size: ORDER_SIZE,
        pretrade,
    }
}

fn candidates(names: &[String]) -> Vec<PanelCandidate<'_>> {
    names
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
                    speed: 0.5 + x / 4.0,
                    loser_leakage: 1.0,
                },
                manual_tier: None,
                specialisms: AssetClassSet::EMPTY.with(AssetClass::ALL[k % 5]),
                online: k % 9 != 0,
                axe_bonus: 0.0,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let instrument = s.master.lookup(ORDER_ID).unwrap();
    let pretrade = analyse(s.fifty.pretrade(), instrument, &order(), s.now);
    let f = facts(&s, &pretrade);
    assert_eq!(
        s.fifty.first_match(&f),
        Some(49),
        "only the last rule fires"
    );
    let cands = candidates(&s.names);

    c.bench_function("rules/first_match_50_rules_last_fires", |b| {
        b.iter(|| black_box(&s.fifty).first_match(black_box(&f)))
    });
    c.bench_function("rules/select_shipped_rules", |b| {
        b.iter(|| black_box(&s.shipped).select(black_box(&f)).line)
    });
    c.bench_function("instruments/lookup_isin", |b| {
        b.iter(|| black_box(&s.master).lookup(black_box(ORDER_ID)).is_some())
    });
    c.bench_function("pretrade/analyse", |b| {
        b.iter(|| analyse(s.fifty.pretrade(), black_box(instrument), &order(), s.now))
    });
    let mut out = PanelOutcome::default();
    c.bench_function("decision/pretrade_50_rules_panel_of_200", |b| {
        b.iter(|| {
            let p = analyse(s.fifty.pretrade(), instrument, black_box(&order()), s.now);
            let f = facts(&s, &p);
            let rule = s.fifty.select(&f);
            s.fifty
                .build_panel(rule, instrument.asset_class, black_box(&cands), &mut out);
            out.chosen.len()
        })
    });

    // Per-evaluation distribution of the 50-rule first match.
    let mut hist = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
    for _ in 0..10_000 {
        black_box(s.fifty.first_match(black_box(&f)));
    }
    for _ in 0..200_000 {
        let t = Instant::now();
        black_box(s.fifty.first_match(black_box(&f)));
        let ns = t.elapsed().as_nanos() as u64;
        let _ = hist.record(ns.max(1));
    }
    println!(
        "rules/first_match_50_rules_last_fires per call (incl. timer): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
