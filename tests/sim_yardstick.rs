//! The yardstick: with a fixed seed, the router's dynamic selection against a static list,
//! broadcast, random panels and an oracle, over the same simulated order flow, driving the
//! real engine in virtual time (`rfq_router::sim`).

use rfq_router::sim::harness::{run_policy, World};
use rfq_router::sim::model::SimConfig;
use rfq_router::sim::policy::PolicyKind;
use rfq_router::sim::report::selection_table;

#[test]
fn explore() {
    let world = World::new(SimConfig {
        rfqs: 1500,
        ..SimConfig::default()
    })
    .unwrap();
    let mut results = Vec::new();
    for kind in PolicyKind::ALL {
        let (r, _, bad) = run_policy(&world, kind, None, |_| {});
        assert_eq!(bad, 0);
        eprintln!("{:?}", r.engine);
        results.push(r);
    }
    eprintln!("{}", selection_table(&results));
}
