//! A small driver of full panel selection for instruction-count profiling
//! (`valgrind --tool=callgrind --toggle-collect='*measured_select*' target/release/examples/selection_profile 10000 200`):
//! the same order, 50 rules, dealers and score table as `benches/selection.rs`'s
//! `full_selection/precomputed_50_rules`, without timing. Only `measured_select` (one
//! `ScoredPanel::select` with the score cache warm) is the path under study; building the
//! table and the first (cache-filling) selection are outside it. Arguments: the number of
//! dealers (default 10,000) and of measured selections (default 100). It must not be a test
//! or a benchmark: it prints nothing but a checksum so the work is not optimised away.

use rfq_router::dealers::{Dealer, Dealers, HitMessage};
use rfq_router::rfq::types::{DealerId, FixId, Side};
use rfq_router::select::instruments::Date;
use rfq_router::select::model::{ModelConfig, Observation};
use rfq_router::select::pretrade::{analyse, OrderTerms};
use rfq_router::select::rules::RuleSet;
use rfq_router::select::scored::{load_instruments, segment_keys, ScoredPanel, TableScores};
use rfq_router::select::segment::Buckets;
use rfq_router::select::table::{ScoreWriter, TableParams};
use rfq_router::select::{Candidate, Panel, RfqSpec, Selection};
use rfq_router::time::Nanos;
use std::path::Path;

const TABLE_DEALERS: u32 = 10_000;
const ISIN: &[u8] = b"US99L2QH1094"; // HY corporate, BB, ADV 6.8M
const QTY: f64 = 6_000_000.0;

/// 49 conditions that do not hold for the order, then one that does (top 5 by score): the
/// bench's rules.
fn fifty_rules() -> String {
    let mut text = String::from(
        "[default.panel]\nwindow_days = 90\ntop = 4\n[default.protocol]\nmax_dealers = 4\n\n",
    );
    for k in 0..49u32 {
        let when = match k % 5 {
            0 => format!("asset_class == muni and size > {}", 2_000_000 + k),
            1 => format!(
                "pct_adv > {} or days_since_last_trade > {}",
                100 + k,
                30 + k
            ),
            2 => format!("issuer == \"Nobody {k}\" or maturity_years > {}", 60 + k),
            3 => format!("side == sell and illiquid and impact_bps > {}", 100 + k),
            _ => "currency == \"JPY\"".to_string(),
        };
        text.push_str(&format!("[[rule]]\nname = \"r{k}\"\nwhen = '{when}'\n\n"));
    }
    text.push_str(
        "[[rule]]\nname = \"fires\"\nwhen = \"asset_class == hy_corp and rating < BBB- and size > 5_000_000\"\n\
         [rule.panel]\ntop = 5\n[rule.protocol]\nmax_dealers = 5\n",
    );
    text
}

fn dealers(n: u32) -> Dealers {
    Dealers {
        dealers: (0..n)
            .map(|i| Dealer {
                name: format!("Dealer {i}"),
                legal_entity: String::new(),
                party_id: format!("D{i}"),
                session: i as usize,
                tier: 1 + (i % 3 == 0) as u8,
                asset_classes: vec![if i % 2 == 0 { "hy_corp" } else { "ig_corp" }.to_string()],
                agreements: Vec::new(),
                contacts: Vec::new(),
                disclose_side_and_size: true,
                hit_with: HitMessage::QuoteResponse,
                tell_losers: true,
                line: 0,
            })
            .collect(),
    }
}

#[inline(never)]
fn measured_select(
    panel: &mut ScoredPanel<TableScores>,
    spec: &RfqSpec<'_>,
    candidates: &[Candidate],
    out: &mut Selection,
) -> usize {
    out.dealers.clear();
    panel.select(spec, candidates, out);
    out.dealers.len()
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(TABLE_DEALERS)
        .min(TABLE_DEALERS);
    let selections: u32 = std::env::args()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let rules = RuleSet::parse(&fifty_rules(), Path::new("profile rules")).expect("rules");
    let master = load_instruments(None).expect("embedded security master");
    let now = Nanos(Date::parse("2026-11-21").expect("date").0 as u64 * 86_400_000_000_000);
    let instrument = master.lookup(ISIN).expect("profile instrument");
    let pre = analyse(
        rules.pretrade(),
        instrument,
        &OrderTerms {
            side: Some(Side::Buy),
            size: QTY,
            mid: None,
        },
        now,
    );
    let keys = segment_keys(
        instrument,
        &pre,
        &Buckets::default_maturity_years(),
        &Buckets::default_size_notional(),
    );
    let cfg = ModelConfig::default();
    let path = std::env::temp_dir().join(format!("rfq-sel-profile-{}.scores", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut w = ScoreWriter::create(&path, TableParams::new(TABLE_DEALERS, 16, &cfg), Nanos(1))
        .expect("create table");
    let agg = w.header().aggregate_dealer();
    // Only the dealers selected from have rows (the bench fills all 10,000: same scores).
    for d in 0..n {
        for key in keys.update_order() {
            for dealer in [d, agg] {
                w.update(dealer, key, |s| {
                    for k in 0..(5 + d % 36) {
                        let at = Nanos(now.0 - u64::from(k) * 3_600_000_000_000);
                        s.observe(Observation::RfqSent, at, &cfg).expect("observe");
                        s.observe(
                            Observation::Quoted {
                                response_s: f64::from(2 + (d + k) % 50),
                            },
                            at,
                            &cfg,
                        )
                        .expect("observe");
                        if (d + k) % 3 != 0 {
                            s.observe(
                                Observation::Won {
                                    price_improvement_bps: f64::from(d % 9) - 3.0,
                                    vs_cover_bps: Some(1.0),
                                },
                                at,
                                &cfg,
                            )
                            .expect("observe");
                        }
                    }
                })
                .expect("table has room");
            }
        }
    }
    let id = FixId::new(ISIN).expect("isin");
    let source = FixId::new(b"4").expect("id source");
    let spec = RfqSpec {
        instrument: &id,
        id_source: &source,
        side: Some(Side::Buy),
        qty: QTY,
        now,
    };
    let mut panel = ScoredPanel::new(
        rules,
        master,
        &dealers(n),
        TableScores::new(w.reader(), cfg),
    );
    let candidates: Vec<Candidate> = (0..n)
        .map(|i| Candidate {
            dealer: DealerId(i as u16),
            tier: 1 + (i % 3 == 0) as u8,
            online: i % 17 != 0,
        })
        .collect();
    let mut out = Selection::default();
    // Fills the cache for the order's segment path.
    panel.select(&spec, &candidates, &mut out);
    assert_eq!(out.dealers.len(), 5, "the firing rule's panel");
    let mut sum = 0usize;
    for _ in 0..selections {
        sum += measured_select(&mut panel, &spec, &candidates, &mut out);
        sum += out.dealers.iter().map(|d| usize::from(d.0)).sum::<usize>();
    }
    drop(w);
    let _ = std::fs::remove_file(&path);
    println!("{sum} {:?}", out.dealers);
}
