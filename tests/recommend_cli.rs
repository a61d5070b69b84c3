//! `rfq-router recommend` end to end: the binary prints the rule that fired, the chosen
//! dealers and each left-out dealer's reason (text and JSON), refuses an unknown instrument
//! naming it, and refuses a bad rules file with file:line:column.

use std::process::Command;

fn recommend(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rfq-router"))
        .arg("recommend")
        .args(["--as-of", "2026-11-21"])
        .args(args)
        .output()
        .expect("run rfq-router")
}

fn stdout(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn text_names_the_rule_and_why_each_dealer_was_left_out() {
    // Unrated muni, $3mm: seed rule (b). Dealer C (tier 2, not a muni specialist) is out.
    let out = stdout(&recommend(&[
        "--instrument",
        "99Z6PH106",
        "--id-source",
        "cusip",
        "--side",
        "sell",
        "--qty",
        "3000000",
    ]));
    assert!(out.contains("seed-b-unrated-muni-over-2mm"), "{out}");
    let line_of = |name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
            .to_string()
    };
    assert!(
        line_of("Dealer C").contains("not a muni specialist"),
        "{out}"
    );
    for chosen in ["Dealer A", "Dealer B", "Dealer D"] {
        assert!(line_of(chosen).contains("pick"), "{out}");
    }

    // Sub-IG corporate, $6mm: seed rule (a), top three; the fourth is ranked out.
    let out = stdout(&recommend(&[
        "--instrument",
        "US99L2QH1094",
        "--side",
        "buy",
        "--qty",
        "6000000",
    ]));
    assert!(out.contains("seed-a-sub-ig-corporate-over-5mm"), "{out}");
    assert!(line_of_in(&out, "Dealer D").contains("ranked out"), "{out}");
}

fn line_of_in(out: &str, name: &str) -> String {
    out.lines()
        .find(|l| l.contains(name))
        .unwrap_or("")
        .to_string()
}

#[test]
fn json_carries_rule_protocol_and_reasons() {
    let out = stdout(&recommend(&[
        "--instrument",
        "US99A1NW2025",
        "--id-source",
        "isin",
        "--side",
        "buy",
        "--qty",
        "2000000",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["rule"], "seed-c-over-10pct-adv");
    assert_eq!(v["protocol"]["kind"], "staggered");
    assert_eq!(v["protocol"]["stagger_gap_ms"], 5000);
    assert_eq!(v["chosen"].as_array().unwrap().len(), 3);
    let excluded = v["excluded"].as_array().unwrap();
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0]["name"], "Dealer D");
    assert_eq!(excluded[0]["reason"]["code"], "panel_full");
}

#[test]
fn unknown_instrument_and_bad_rules_are_refused() {
    let o = recommend(&[
        "--instrument",
        "US0000000000",
        "--side",
        "buy",
        "--qty",
        "1",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown instrument: US0000000000"), "{err}");

    let dir = std::env::temp_dir().join(format!("rfq-recommend-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, "[[rule]]\nname = \"x\"\nwhen = \"size >\"\n").unwrap();
    let o = recommend(&[
        "--instrument",
        "US99A1NW2025",
        "--side",
        "buy",
        "--qty",
        "1",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rules.toml:3:"), "{err}");

    // The router refuses to start on it too (check-config loads exactly what run loads).
    let o = Command::new(env!("CARGO_BIN_EXE_rfq-router"))
        .args(["check-config", "--rules", rules.to_str().unwrap()])
        .output()
        .expect("run rfq-router");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rules.toml:3:"), "{err}");
}
