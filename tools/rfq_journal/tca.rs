//! TCA result records (journal kind `tca`, code 6) as the tools read them.
//!
//! DECODER HOOK. The payload of a `tca` record is defined by the dealer-intelligence work
//! (branch `intelligence`), not yet by FORMAT.md, so this file is the one place that has to
//! learn it: replace the body of [`decode`] with that format's decoder and keep the
//! [`TcaRow`] it returns. Until then `decode` accepts a JSON object whose keys are the
//! column names below (missing keys are empty), and returns `None` for anything else; the
//! commands count and report records they could not decode, and never guess.
//!
//! Must not: read the journal or print.

use crate::model::OpaqueRecord;

/// Columns of tca.csv, in order. Units: times UTC and ns since the epoch; prices in the
/// instrument's price convention (percent of par for bonds); *_bps in basis points, signed
/// so that positive is good for the desk (DESIGN section 7); qty in face amount.
pub const COLUMNS: [&str; 17] = [
    "time_utc",
    "time_ns",
    "journal_seq",
    "rfq",
    "dealer",
    "instrument",
    "side",
    "qty",
    "arrival_mid",
    "exec_px",
    "price_improvement_bps",
    "vs_cover_bps",
    "markout_60s_bps",
    "markout_300s_bps",
    "markout_1800s_bps",
    "drift_bps",
    "net_markout_bps",
];

/// One decoded TCA result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TcaRow {
    /// The router's id of the RFQ leg (`R<seq>-<slot>`).
    pub rfq: String,
    /// The dealer's name as in dealers.toml.
    pub dealer: String,
    pub instrument: String,
    pub side: String,
    pub qty: Option<f64>,
    pub arrival_mid: Option<f64>,
    pub exec_px: Option<f64>,
    pub price_improvement_bps: Option<f64>,
    pub vs_cover_bps: Option<f64>,
    /// At the model's markout horizons (60 s, 300 s, 1800 s by default).
    pub markout_bps: [Option<f64>; 3],
    /// Leakage drift measured for a losing dealer.
    pub drift_bps: Option<f64>,
    /// The winner's markout at the leakage horizon net of the desk's own impact (the
    /// winner-leakage score's input; `select::tca`).
    pub net_markout_bps: Option<f64>,
}

/// DECODER HOOK: the payload of one `tca` record, or `None` when this build cannot read it.
pub fn decode(payload: &[u8]) -> Option<TcaRow> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let o = v.as_object()?;
    let s = |k: &str| match o.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let n = |k: &str| {
        o.get(k)
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .filter(|x: &f64| x.is_finite())
    };
    Some(TcaRow {
        rfq: s("rfq"),
        dealer: s("dealer"),
        instrument: s("instrument"),
        side: s("side"),
        qty: n("qty"),
        arrival_mid: n("arrival_mid"),
        exec_px: n("exec_px"),
        price_improvement_bps: n("price_improvement_bps"),
        vs_cover_bps: n("vs_cover_bps"),
        markout_bps: [
            n("markout_60s_bps"),
            n("markout_300s_bps"),
            n("markout_1800s_bps"),
        ],
        drift_bps: n("drift_bps"),
        net_markout_bps: n("net_markout_bps"),
    })
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| x.to_string())
}

/// The CSV fields of a decoded record, in `COLUMNS` order.
pub fn csv_fields(rec: &OpaqueRecord, row: &TcaRow, time_utc: String) -> Vec<String> {
    vec![
        time_utc,
        rec.time.0.to_string(),
        rec.seq.to_string(),
        row.rfq.clone(),
        row.dealer.clone(),
        row.instrument.clone(),
        row.side.clone(),
        num(row.qty),
        num(row.arrival_mid),
        num(row.exec_px),
        num(row.price_improvement_bps),
        num(row.vs_cover_bps),
        num(row.markout_bps[0]),
        num(row.markout_bps[1]),
        num(row.markout_bps[2]),
        num(row.drift_bps),
        num(row.net_markout_bps),
    ]
}
