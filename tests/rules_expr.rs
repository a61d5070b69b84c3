//! The condition language: every operator, precedence and short-circuiting, the rating scale
//! (agency ordering, Moody's symbols, NR unordered), unknown values, and each syntax and type
//! error with the offset it points at.

use rfq_router::select::expr::{Condition, Facts};
use rfq_router::select::instruments::{AssetClass, Date, Instrument, Rating};
use rfq_router::select::pretrade::{PreTrade, Side};

fn instrument(asset_class: AssetClass, rating: &str) -> Instrument {
    let r = Rating::parse_any(rating).expect("rating symbol");
    Instrument {
        isin: Some(*b"XS9900000019"),
        cusip: None,
        issuer: "Testco Holdings".into(),
        sector: "Utilities".into(),
        asset_class,
        currency: *b"USD",
        coupon_pct: 4.5,
        maturity: Date::parse("2031-06-15").unwrap(),
        agency_ratings: [r, r, Rating::NR],
        rating: r,
        adv_30d: 10_000_000.0,
        last_trade: Date::parse("2026-11-10"),
        daily_vol_bps: None,
        line: 0,
    }
}

fn pretrade() -> PreTrade {
    PreTrade {
        days_since_last_trade: 10.0,
        adv_30d: 10_000_000.0,
        pct_adv: 50.0,
        impact_bps: 28.0,
        illiquid: true,
        maturity_years: 4.6,
        fair_value: f64::NAN,
        expected_price: f64::NAN,
        notional: 5_000_000.0,
    }
}

fn eval_with(src: &str, i: &Instrument, p: &PreTrade, side: Option<Side>, size: f64) -> bool {
    let c = Condition::compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    c.eval(&Facts {
        instrument: i,
        side,
        size,
        pretrade: p,
    })
}

fn eval(src: &str) -> bool {
    eval_with(
        src,
        &instrument(AssetClass::HyCorp, "BB"),
        &pretrade(),
        Some(Side::Sell),
        5_000_000.0,
    )
}

fn error(src: &str) -> (usize, String) {
    match Condition::compile(src) {
        Ok(_) => panic!("{src:?} compiled"),
        Err(e) => (e.offset, e.reason),
    }
}

#[test]
fn number_comparisons() {
    // size is 5,000,000
    for (op, below, equal, above) in [
        ("==", false, true, false),
        ("!=", true, false, true),
        ("<", false, false, true),
        ("<=", false, true, true),
        (">", true, false, false),
        (">=", true, true, false),
    ] {
        assert_eq!(
            eval(&format!("size {op} 4_000_000")),
            below,
            "size {op} 4e6"
        );
        assert_eq!(eval(&format!("size {op} 5e6")), equal, "size {op} 5e6");
        assert_eq!(
            eval(&format!("size {op} 6000000.0")),
            above,
            "size {op} 6e6"
        );
    }
    assert!(eval("pct_adv > 10 and days_since_last_trade >= 10"));
    assert!(eval("impact_bps < 28.5 and impact_bps > -1"));
    assert!(eval(
        "maturity_years > 4.5 and coupon == 4.5 and adv == 10_000_000"
    ));
    assert!(eval("notional == 5_000_000"));
    // constants may sit on the left
    assert!(eval("4_000_000 < size"));
}

/// The meaning of a three-variable formula, written as Rust spells it.
type Truth = fn(bool, bool, bool) -> bool;

#[test]
// The closures transcribe each formula literally; simplifying them would defeat the check.
#[allow(clippy::nonminimal_bool)]
fn boolean_operators_follow_precedence_and_truth_tables() {
    let forms: [(&str, Truth); 9] = [
        ("A and B", |a, b, _| a && b),
        ("A or B", |a, b, _| a || b),
        ("not A", |a, _, _| !a),
        ("A && B || C", |a, b, c| (a && b) || c),
        ("A or B and C", |a, b, c| a || (b && c)),
        ("(A or B) and C", |a, b, c| (a || b) && c),
        ("!(A and B) or not C", |a, b, c| !(a && b) || !c),
        ("not not A and (B || C)", |a, b, c| a && (b || c)),
        ("A and B and C or A and not C", |a, b, c| {
            (a && b && c) || (a && !c)
        }),
    ];
    for bits in 0..8u8 {
        let (a, b, c) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
        // a: illiquid, b: investment_grade, c: side == buy
        let mut p = pretrade();
        p.illiquid = a;
        let i = instrument(AssetClass::IgCorp, if b { "BBB-" } else { "BB+" });
        let side = Some(if c { Side::Buy } else { Side::Sell });
        for (form, truth) in forms {
            let src = form
                .replace('A', "illiquid")
                .replace('B', "investment_grade")
                .replace('C', "side == buy");
            assert_eq!(
                eval_with(&src, &i, &p, side, 1.0),
                truth(a, b, c),
                "{src} with a={a} b={b} c={c}"
            );
        }
    }
}

#[test]
fn flags_and_boolean_literals() {
    assert!(eval("illiquid"));
    assert!(eval("illiquid == true"));
    assert!(!eval("illiquid != true"));
    assert!(eval("investment_grade == false"));
    assert!(!eval("investment_grade"));
}

#[test]
fn membership() {
    assert!(eval("asset_class in [ig_corp, hy_corp]"));
    assert!(!eval("asset_class in [muni]"));
    assert!(eval("asset_class != muni") && !eval("asset_class != hy_corp"));
    assert!(eval("asset_class == hy_corp") && !eval("muni == asset_class"));
    assert!(eval("asset_class not in [muni, structured,]"));
    assert!(eval("rating in [BB+, BB, BB-]"));
    assert!(eval("rating in [Ba2]"), "Moody's Ba2 is BB");
    assert!(
        eval("sector in [\"Energy\", \"utilities\"]"),
        "text is case-insensitive"
    );
    assert!(eval("issuer == \"TESTCO HOLDINGS\""));
    assert!(eval(
        "currency in [\"USD\", \"EUR\"] and currency != \"GBP\""
    ));
    assert!(eval("side in [sell]") && !eval("side in [buy]"));
    assert!(eval("size in [1, 5_000_000]"));
}

#[test]
fn rating_scale_orders_every_notch() {
    let sp = [
        "AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-", "BB+", "BB", "BB-",
        "B+", "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C", "SD", "D",
    ];
    let moodys = [
        "Aaa", "Aa1", "Aa2", "Aa3", "A1", "A2", "A3", "Baa1", "Baa2", "Baa3", "Ba1", "Ba2", "Ba3",
        "B1", "B2", "B3", "Caa1", "Caa2", "Caa3", "Ca", "C",
    ];
    let p = pretrade();
    for (k, hi) in sp.iter().enumerate() {
        let i = instrument(AssetClass::HyCorp, hi);
        for (m, other) in sp.iter().enumerate() {
            let check = |src: String, want: bool| {
                assert_eq!(
                    eval_with(&src, &i, &p, None, 1.0),
                    want,
                    "rating {hi}: {src}"
                );
            };
            check(format!("rating > {other}"), k < m);
            check(format!("rating < {other}"), k > m);
            check(format!("rating >= {other}"), k <= m);
            check(format!("rating <= {other}"), k >= m);
            check(format!("rating == {other}"), k == m);
            check(format!("rating != {other}"), k != m);
        }
        if let Some(m) = moodys.get(k) {
            assert!(
                eval_with(&format!("rating == {m}"), &i, &p, None, 1.0),
                "{hi} = {m}"
            );
        }
        assert!(!eval_with("rating == NR", &i, &p, None, 1.0));
        assert!(eval_with("rating != NR", &i, &p, None, 1.0));
    }
    // Fitch's RD is S&P's SD
    let i = instrument(AssetClass::HyCorp, "RD");
    assert!(eval_with(
        "rating == SD and rating > D and rating < C",
        &i,
        &p,
        None,
        1.0
    ));
}

#[test]
fn not_rated_is_unordered() {
    let i = instrument(AssetClass::Muni, "NR");
    let p = pretrade();
    for src in [
        "rating < BBB",
        "rating > BBB",
        "rating <= AAA",
        "rating >= D",
        "rating < NR",
        "rating <= NR",
        "rating == BBB",
        "investment_grade",
    ] {
        assert!(
            !eval_with(src, &i, &p, None, 1.0),
            "NR: {src} should be false"
        );
    }
    for src in [
        "rating == NR",
        "rating != BBB",
        "rating in [NR]",
        "not (rating < BBB)",
    ] {
        assert!(
            eval_with(src, &i, &p, None, 1.0),
            "NR: {src} should be true"
        );
    }
}

#[test]
fn unknown_numbers_and_sides() {
    // fair_value is NaN (no mid): comparisons are false, except !=
    assert!(!eval("fair_value > 0"));
    assert!(!eval("fair_value <= 0"));
    assert!(!eval("fair_value == 100"));
    assert!(eval("fair_value != 100"));
    // a two-sided request is neither a buy nor a sell
    let i = instrument(AssetClass::HyCorp, "BB");
    let p = pretrade();
    assert!(!eval_with("side == buy", &i, &p, None, 1.0));
    assert!(!eval_with("side == sell", &i, &p, None, 1.0));
    assert!(eval_with("side != buy and side != sell", &i, &p, None, 1.0));
    assert!(eval_with("side == buy", &i, &p, Some(Side::Buy), 1.0));
}

#[test]
fn symbols_may_stand_on_either_side() {
    assert!(eval("hy_corp == asset_class"));
    assert!(eval("BBB- > rating"));
    assert!(eval("sell == side"));
}

#[test]
fn type_errors_point_at_the_culprit() {
    let cases: [(&str, usize, &str); 14] = [
        ("rating > 5", 9, "type error"),
        ("size > \"big\"", 7, "type error"),
        ("illiquid == 1", 12, "type error"),
        ("asset_class < muni", 12, "orders numbers and ratings only"),
        ("sector >= \"A\"", 7, "orders numbers and ratings only"),
        ("illiquid > false", 9, "orders numbers and ratings only"),
        ("asset_class == munis", 15, "`munis` is not an asset class"),
        ("side == muni", 8, "`muni` is not a side"),
        ("rating < BBBB", 9, "`BBBB` is not a rating"),
        ("sector == Utilities", 10, "written in quotes"),
        ("size", 0, "is a number, not a condition"),
        ("size > 1 and sizee > 5", 13, "unknown field `sizee`"),
        ("5 > 3", 0, "at least one field"),
        (
            "rating in [BBB, 5]",
            16,
            "expected a rating, found a number",
        ),
    ];
    for (src, at, what) in cases {
        let (offset, reason) = error(src);
        assert!(reason.contains(what), "{src}: {reason}");
        assert_eq!(offset, at, "{src}: {reason}");
    }
    let (at, reason) = error("rating in [size]");
    assert_eq!(at, 11);
    assert!(reason.contains("values, not fields"), "{reason}");
    let (at, reason) = error("5 in [1]");
    assert_eq!(at, 0);
    assert!(reason.contains("must be a field"), "{reason}");
    let (at, reason) = error("foo == bar");
    assert_eq!(at, 0);
    assert!(reason.contains("unknown field `foo`"), "{reason}");
    let (at, reason) = error("size > BBB");
    assert_eq!(at, 7);
    assert!(reason.contains("unknown field `BBB`"), "{reason}");
}

#[test]
fn syntax_errors_point_at_the_culprit() {
    let cases: [(&str, usize); 12] = [
        ("", 0),
        ("size >", 6),
        ("size > 1 and", 12),
        ("(size > 1", 9),
        ("size > 1)", 8),
        ("size > 1 size > 2", 9),
        ("size >> 1", 6),
        ("rating in [AAA,", 15),
        ("rating in AAA", 10),
        ("rating in []", 11),
        ("sector == \"abc", 14),
        ("size > 1e999", 7),
    ];
    for (src, at) in cases {
        let (offset, reason) = error(src);
        assert_eq!(offset, at, "{src:?}: {reason}");
        assert!(!reason.is_empty());
    }
    let (_, reason) = error("size > 1)");
    assert!(reason.contains("unbalanced"), "{reason}");
}

#[test]
fn limits_are_errors_not_crashes() {
    let deep = format!("{}illiquid{}", "(".repeat(40), ")".repeat(40));
    let (_, reason) = error(&deep);
    assert!(reason.contains("nesting"), "{reason}");
    let nots = format!("{}illiquid", "!".repeat(2000));
    let (_, reason) = error(&nots);
    assert!(reason.contains("nesting"), "{reason}");
    let long = format!("size > 1{}", " or size > 1".repeat(400));
    let (at, reason) = error(&long);
    assert!(reason.contains("longer than"), "{reason}");
    assert_eq!(at, 4096);
    let list = format!("size in [{}]", "1, ".repeat(65));
    let (_, reason) = error(&list);
    assert!(reason.contains("at most 64"), "{reason}");
    // within the limits, nesting works
    let ok = format!("{}illiquid{}", "(".repeat(30), ")".repeat(30));
    assert!(eval(&ok));
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const TOKENS: [&str; 28] = [
        "size",
        "rating",
        "asset_class",
        "side",
        "sector",
        "illiquid",
        "pct_adv",
        "BBB-",
        "NR",
        "Baa3",
        "muni",
        "buy",
        "\"x\"",
        "5_000",
        "-1.5e3",
        "and",
        "or",
        "not",
        "in",
        "(",
        ")",
        "[",
        "]",
        ",",
        "==",
        "<",
        ">=",
        "!",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Token soup either compiles (and then evaluates) or is refused at an offset
        /// inside the text; it never panics.
        #[test]
        fn token_soup(picks in proptest::collection::vec((0..TOKENS.len(), any::<bool>()), 0..24)) {
            let src: String = picks
                .iter()
                .map(|&(t, space)| format!("{}{}", TOKENS[t], if space { " " } else { "" }))
                .collect();
            match Condition::compile(&src) {
                Ok(c) => {
                    let _ = c.eval(&Facts {
                        instrument: &instrument(AssetClass::Muni, "NR"),
                        side: None,
                        size: 1.0,
                        pretrade: &pretrade(),
                    });
                }
                Err(e) => prop_assert!(e.offset <= src.len(), "{src:?}: {e}"),
            }
        }

        /// Arbitrary text (any characters) never panics either.
        #[test]
        fn arbitrary_text(src in "\\PC{0,80}") {
            if let Err(e) = Condition::compile(&src) {
                prop_assert!(e.offset <= src.len());
            }
        }
    }
}
