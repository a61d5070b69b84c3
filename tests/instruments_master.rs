//! The security master: the shipped sample loads and is internally consistent, lookups work
//! by ISIN and by CUSIP, and each kind of bad row is refused naming its line and column.

use rfq_router::select::instruments::{
    cusip_check_digit, is_valid_cusip, is_valid_isin, isin_check_digit, AssetClass, Rating,
    SecurityMaster,
};
use std::path::Path;

fn shipped() -> SecurityMaster {
    let path = format!("{}/config/instruments.csv", env!("CARGO_MANIFEST_DIR"));
    SecurityMaster::load(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn shipped_sample_is_consistent() {
    let m = shipped();
    assert!(m.len() >= 40, "{} instruments", m.len());
    for class in AssetClass::ALL {
        assert!(
            m.instruments().iter().any(|i| i.asset_class == class),
            "no {class} in the sample"
        );
    }
    for i in m.instruments() {
        if let Some(isin) = &i.isin {
            assert!(is_valid_isin(isin));
            assert!(std::ptr::eq(m.lookup(isin).unwrap(), i));
        }
        if let Some(cusip) = &i.cusip {
            assert!(is_valid_cusip(cusip));
            // invented identifiers only: private-use CUSIP issuer range 99xxxx
            assert_eq!(&cusip[..2], b"99", "{}", i.id());
            assert!(std::ptr::eq(m.lookup(cusip).unwrap(), i));
        }
    }
    // the sample has the cases the seed rules need
    assert!(m
        .instruments()
        .iter()
        .any(|i| i.asset_class == AssetClass::Muni && i.rating == Rating::NR));
    assert!(m
        .instruments()
        .iter()
        .any(|i| i.asset_class.is_corporate() && i.rating.notch() < Rating::BBB_MINUS.notch()));
}

#[test]
fn lookup_by_isin_or_cusip() {
    let m = shipped();
    let by_isin = m.lookup(b"US99L2QH1094").unwrap();
    let by_cusip = m.lookup(b"99L2QH109").unwrap();
    assert!(std::ptr::eq(by_isin, by_cusip));
    assert_eq!(&*by_isin.issuer, "Quarry Hill Casinos Inc");
    assert!(std::ptr::eq(m.lookup(b"us99l2qh1094").unwrap(), by_isin));
    assert!(m.lookup(b"US99L2QH1095").is_none());
    assert!(m.lookup(b"").is_none());
    assert!(m.lookup(b"US99L2QH10").is_none());
    assert!(m.lookup_fix(b"99L2QH109", Some(b"1")).is_some());
    assert!(m.lookup_fix(b"99L2QH109", Some(b"4")).is_none());
    assert!(m.lookup_fix(b"US99L2QH1094", Some(b"4")).is_some());
    let muni = m.lookup(b"99Z8TC109").unwrap();
    assert_eq!(muni.last_trade, None);
    assert_eq!(muni.adv_30d, 0.0);
}

#[test]
fn check_digits_are_computed_not_guessed() {
    // A body, its check digit, and the other nine digits refused.
    for body in [&b"US99L2QH109"[..], b"XS990012345", b"CA99ZZ00000"] {
        let d = isin_check_digit(body).unwrap();
        for other in 0..10u8 {
            let mut isin = body.to_vec();
            isin.push(b'0' + other);
            assert_eq!(is_valid_isin(&isin), other == d, "{isin:?}");
        }
    }
    for body in [&b"99L2QH10"[..], b"99Z8TC10", b"0378331*"] {
        let d = cusip_check_digit(body).unwrap();
        for other in 0..10u8 {
            let mut cusip = body.to_vec();
            cusip.push(b'0' + other);
            assert_eq!(is_valid_cusip(&cusip), other == d, "{cusip:?}");
        }
    }
    assert_eq!(isin_check_digit(b"us037833100"), None, "lower-case country");
    assert_eq!(isin_check_digit(b"US03783310"), None, "short");
    assert_eq!(cusip_check_digit(b"0378331!"), None);
}

const HEADER: &str = "isin,cusip,issuer,sector,asset_class,currency,coupon_pct,maturity,rating_sp,rating_moodys,rating_fitch,adv_30d,last_trade,daily_vol_bps";
const ROW: &str = "US99L2QH1094,99L2QH109,Quarry Hill Casinos Inc,Gaming,hy_corp,USD,7.125,2031-08-15,BB,Ba3,BB,6800000,2026-11-19,110";

fn refused(text: &str, want: &str) {
    match SecurityMaster::parse(text.as_bytes(), Path::new("instruments.csv")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with(want), "want {want:?}, got {shown:?}");
        }
    }
}

fn with_field(col: usize, value: &str) -> String {
    let mut fields: Vec<&str> = ROW.split(',').collect();
    fields[col] = value;
    format!("# comment\n{HEADER}\n{ROW}\n{}\n", fields.join(",")).replacen(
        ROW,
        &ROW.replace("US99L2QH1094,99L2QH109", ",99Z8TC109"),
        1,
    )
}

#[test]
fn bad_rows_name_line_and_column() {
    // A good file with a comment line, then each field broken on line 4.
    let good = format!("# comment\n{HEADER}\n{ROW}\n");
    assert_eq!(
        SecurityMaster::parse(good.as_bytes(), Path::new("x"))
            .unwrap()
            .len(),
        1
    );
    let cases = [
        (0, "US99L2QH1095", "instruments.csv:4: column 1 (isin):"),
        (1, "99L2QH108", "instruments.csv:4: column 2 (cusip):"),
        (
            1,
            "99Z8TC109",
            "instruments.csv:4: column 2 (cusip): \"99Z8TC109\" is not the CUSIP inside",
        ),
        (2, "", "instruments.csv:4: column 3 (issuer): empty"),
        (
            4,
            "corp",
            "instruments.csv:4: column 5 (asset_class): unknown asset class",
        ),
        (5, "usd", "instruments.csv:4: column 6 (currency):"),
        (6, "seven", "instruments.csv:4: column 7 (coupon_pct):"),
        (7, "2031-02-30", "instruments.csv:4: column 8 (maturity):"),
        (
            8,
            "Ba3",
            "instruments.csv:4: column 9 (rating_sp): \"Ba3\" is not on the Sp rating scale",
        ),
        (9, "BB-", "instruments.csv:4: column 10 (rating_moodys):"),
        (10, "SD", "instruments.csv:4: column 11 (rating_fitch):"),
        (11, "-5", "instruments.csv:4: column 12 (adv_30d):"),
        (
            12,
            "yesterday",
            "instruments.csv:4: column 13 (last_trade):",
        ),
        (13, "NaN", "instruments.csv:4: column 14 (daily_vol_bps):"),
    ];
    for (col, value, want) in cases {
        refused(&with_field(col, value), want);
    }
    // duplicates name the first definition
    refused(
        &format!("{HEADER}\n{ROW}\n{ROW}\n"),
        "instruments.csv:3: column 1 (isin): US99L2QH1094 already defined on line 2",
    );
    // neither identifier
    refused(
        &format!("{HEADER}\n{}\n", ROW.replace("US99L2QH1094,99L2QH109", ",")),
        "instruments.csv:2: column 1 (isin): neither",
    );
    // header problems
    refused(
        &format!("{},extra\n{ROW},1\n", HEADER),
        "instruments.csv:1: column 15 (extra): unknown column",
    );
    refused(
        &format!("{}\n", HEADER.replace(",daily_vol_bps", "")),
        "instruments.csv:1: missing column \"daily_vol_bps\"",
    );
    // a short row
    refused(
        &format!("{HEADER}\n{ROW}\nUS99L2QH1094,99L2QH109\n"),
        "instruments.csv:3:",
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Any bytes after a valid header load or are refused; never a panic.
        #[test]
        fn arbitrary_rows(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut text = format!("{HEADER}\n").into_bytes();
            text.extend_from_slice(&body);
            let _ = SecurityMaster::parse(&text, Path::new("fuzz.csv"));
        }

        /// A valid row with one field replaced by arbitrary text loads or is refused.
        #[test]
        fn arbitrary_field(col in 0usize..14, value in "[ -~]{0,20}") {
            let mut fields: Vec<String> = ROW.split(',').map(str::to_string).collect();
            fields[col] = value;
            let text = format!("{HEADER}\n{}\n", fields.join(","));
            let _ = SecurityMaster::parse(text.as_bytes(), Path::new("fuzz.csv"));
        }
    }
}
