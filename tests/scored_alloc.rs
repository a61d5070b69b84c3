//! `ScoredPanel::select` does not allocate: a counting global allocator watches this thread
//! while it selects over the shipped rules and security master for orders that fire each
//! seed rule, the default, and an unknown instrument.

use rfq_router::config::Config;
use rfq_router::dealers::Dealers;
use rfq_router::rfq::types::{DealerId, FixId, Side};
use rfq_router::select::instruments::Date;
use rfq_router::select::scored::{load_instruments, load_rules, NeutralScores, ScoredPanel};
use rfq_router::select::{Candidate, Panel, RfqSpec, Selection};
use rfq_router::time::Nanos;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::counted;

#[test]
fn scored_panel_select_does_not_allocate() {
    let config = Config::embedded().unwrap();
    let dealers = Dealers::embedded(&config).unwrap();
    let candidates: Vec<Candidate> = dealers
        .dealers
        .iter()
        .enumerate()
        .map(|(i, d)| Candidate {
            dealer: DealerId(i as u16),
            tier: d.tier,
            online: i != 2,
        })
        .collect();
    let mut panel = ScoredPanel::new(
        load_rules(None).unwrap(),
        load_instruments(None).unwrap(),
        &dealers,
        NeutralScores,
    );
    let now = Nanos(Date::parse("2026-11-21").unwrap().0 as u64 * 86_400_000_000_000);
    let orders: Vec<(FixId, FixId, f64)> = [
        ("US99L2QH1094", "4", 6e6), // seed rule (a)
        ("99Z6PH106", "1", 3e6),    // seed rule (b)
        ("US99A1NW2025", "4", 2e6), // seed rule (c)
        ("US99A1NW1035", "4", 5e5), // a house rule or the default
        ("US0000000000", "4", 1e6), // unknown: refused
        ("99Z6PH106", "", 3e6),     // by Symbol
    ]
    .iter()
    .map(|(id, src, qty)| {
        (
            FixId::new(id.as_bytes()).unwrap(),
            FixId::new(src.as_bytes()).unwrap(),
            *qty,
        )
    })
    .collect();
    let mut out = Selection::default();
    let mut chosen = 0;
    let mut refused = 0;
    // Warm up once, then count.
    for pass in 0..2 {
        let ((), during) = counted(|| {
            for (id, src, qty) in &orders {
                let spec = RfqSpec {
                    instrument: id,
                    id_source: src,
                    side: Some(Side::Sell),
                    qty: *qty,
                    now,
                };
                out.dealers.clear();
                panel.select(&spec, &candidates, &mut out);
                chosen += out.dealers.len();
                refused += usize::from(out.refusal.is_some());
            }
        });
        if pass == 1 {
            assert_eq!(during, 0, "ScoredPanel::select allocated {during} times");
        }
    }
    assert_eq!(
        refused, 2,
        "the unknown instrument is refused on both passes"
    );
    assert!(
        chosen >= 2 * 5 * 2,
        "every known order gets a panel: {chosen}"
    );
}
