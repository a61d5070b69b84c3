//! A small driver of full panel selection for instruction-count profiling
//! (`valgrind --tool=callgrind --toggle-collect='*measured_select*' target/release/examples/selection_profile 10000 200`):
//! the same order, 50 rules, dealers and score table as `benches/selection.rs`'s
//! `full_selection/precomputed_50_rules`, without timing. Only `measured_select` (one
//! `ScoredPanel::select` with the score cache warm) is the path under study; building the
//! table and the first (cache-filling) selection are outside it. Arguments: the number of
//! dealers (default 10,000) and of measured selections (default 100). It must not be a test
//! or a benchmark: it prints nothing but a checksum so the work is not optimised away.

use rfq_router::select::scored::{ScoredPanel, TableScores};
use rfq_router::select::{Candidate, Panel, RfqSpec, Selection};

#[path = "../benches/support/selection_fixture.rs"]
mod selection_fixture;
use selection_fixture::{selection_candidates, SelectionWorld};

const TABLE_DEALERS: u32 = 10_000;

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
    // Only the dealers selected from have rows (the bench fills all 10,000: same scores).
    let world = SelectionWorld::new("rfq-sel-profile", TABLE_DEALERS, n);
    let spec = world.spec();
    let mut panel = world.panel(n);
    let candidates = selection_candidates(n);
    let mut out = Selection::default();
    // Fills the cache for the order's segment path.
    panel.select(&spec, &candidates, &mut out);
    assert_eq!(out.dealers.len(), 5, "the firing rule's panel");
    let mut sum = 0usize;
    for _ in 0..selections {
        sum += measured_select(&mut panel, &spec, &candidates, &mut out);
        sum += out.dealers.iter().map(|d| usize::from(d.0)).sum::<usize>();
    }
    println!("{sum} {:?}", out.dealers);
}
