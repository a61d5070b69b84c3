//! The demo end to end: the in-process report with a kept journal directory, and the
//! loopback FIX run (the router on its own thread, simulated desk and dealers as FIX
//! sessions over TCP, time compressed).

use rfq_router::sim::demo::{render, run_demo, DemoOptions, Progress};
use rfq_router::sim::policy::PolicyKind;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rfq-sim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn the_demo_reports_every_policy_and_keeps_its_table_and_json() {
    let dir = temp_dir("journal");
    let opts = DemoOptions {
        rfqs: 300,
        seed: 5,
        journal: Some(dir.clone()),
        loopback: false,
        loopback_rfqs: 0,
        ..DemoOptions::default()
    };
    let mut stages = Vec::new();
    let mut last = 0;
    let report = run_demo(&opts, &mut |p| match p {
        Progress::Stage { name, total } => stages.push((name, total)),
        Progress::Done(n) => last = n,
    })
    .expect("demo runs");
    assert_eq!(stages.len(), PolicyKind::ALL.len());
    assert!(stages.iter().all(|&(_, t)| t == 300));
    assert_eq!(last, 300);
    let kinds: Vec<PolicyKind> = report.selection.iter().map(|r| r.policy).collect();
    assert_eq!(kinds, PolicyKind::ALL.to_vec());
    assert_eq!(report.scorecard.len(), 12);
    assert!(report.scorecard.iter().any(|r| r.learned.is_some()));
    assert!(report.loopback.is_none());
    let text = render(&report);
    for label in [
        "dynamic (router)",
        "static list of 4",
        "broadcast to all",
        "4 at random",
        "oracle",
    ] {
        assert!(text.contains(label), "{label} in:\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
            .expect("valid JSON");
    assert_eq!(json["selection"].as_array().map(Vec::len), Some(5));
    assert!(dir.join("scores.tbl").metadata().expect("scores.tbl").len() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_loopback_run_trades_over_real_fix_sessions() {
    let opts = DemoOptions {
        rfqs: 200,
        seed: 3,
        journal: None,
        loopback: true,
        loopback_rfqs: 150,
        ..DemoOptions::default()
    };
    let report = run_demo(&opts, &mut |_| {}).expect("demo with loopback runs");
    let l = report.loopback.expect("loopback report");
    assert_eq!(l.rfqs, 150);
    assert_eq!(l.result.rfqs, 150);
    // Every RFQ reached the router and was asked of dealers over TCP; most traded.
    assert!(l.result.dealers_asked >= 1.0, "{:?}", l.result);
    assert!(l.result.fill_rate > 0.5, "{:?}", l.result);
    assert_eq!(
        l.latency[0].count, 150,
        "every desk request reached a dealer"
    );
    assert!(l.latency[2].count as f64 >= 0.5 * 150.0, "hits relayed");
}
