//! A small driver of full panel selection for instruction-count profiling
//! (`valgrind --tool=callgrind --toggle-collect='*measured_select*' target/release/examples/selection_profile 10000 200`):
//! the same order, 50 rules, dealers and score table as `benches/selection.rs`'s
//! `full_selection/precomputed_50_rules`, without timing. Only `measured_select` (one
//! `ScoredPanel::select` with the score cache warm) is the path under study; building the
//! table and the first (cache-filling) selection are outside it. Arguments: the number of
//! dealers (default 10,000) and of measured selections (default 100). It must not be a test
//! or a benchmark: it prints nothing but a checksum so the work is not optimised away.

use rfq_router::rfq::types::{FixId, Side};
use rfq_router::select::model::ModelConfig;
use rfq_router::select::rules::RuleSet;
use rfq_router::select::scored::{load_instruments, ScoredPanel, TableScores};
use rfq_router::select::table::{ScoreWriter, TableParams};
use rfq_router::select::{Candidate, Panel, RfqSpec, Selection};
use rfq_router::time::Nanos;
use std::path::Path;

#[path = "../benches/support/selection_fixture.rs"]
mod selection_fixture;
use selection_fixture::{
    fifty_rules, fill_selection_table, selection_candidates, selection_dealers, selection_keys,
    selection_now, SELECTION_ISIN, SELECTION_QTY,
};

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
    let rules = RuleSet::parse(&fifty_rules(), Path::new("profile rules")).expect("rules");
    let master = load_instruments(None).expect("embedded security master");
    let now = selection_now();
    let keys = selection_keys(&rules, &master, now);
    let cfg = ModelConfig::default();
    let path = std::env::temp_dir().join(format!("rfq-sel-profile-{}.scores", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut w = ScoreWriter::create(&path, TableParams::new(TABLE_DEALERS, 16, &cfg), Nanos(1))
        .expect("create table");
    // Only the dealers selected from have rows (the bench fills all 10,000: same scores).
    fill_selection_table(&mut w, &keys, n, now, &cfg);
    let id = FixId::new(SELECTION_ISIN).expect("isin");
    let source = FixId::new(b"4").expect("id source");
    let spec = RfqSpec {
        instrument: &id,
        id_source: &source,
        side: Some(Side::Buy),
        qty: SELECTION_QTY,
        now,
    };
    let mut panel = ScoredPanel::new(
        rules,
        master,
        &selection_dealers(n),
        TableScores::new(w.reader(), cfg),
    );
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
    drop(w);
    let _ = std::fs::remove_file(&path);
    println!("{sum} {:?}", out.dealers);
}
