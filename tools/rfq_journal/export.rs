//! `rfq-journal export --csv DIR`: the journal's RFQs, quotes, executions and TCA results as
//! CSV files for the data warehouse (rfqs.csv, quotes.csv, executions.csv, tca.csv).
//!
//! Column meanings and units are in `COLUMNS_HELP` (shown by `export --help`) and README.md.
//! Must not: write anywhere but DIR, or change the journal.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::common::{format_time_ms, open, Names};
use crate::fixmsg::side_name;
use crate::model::{self, Model};
use crate::{tca, ExportArgs, EXIT_PROBLEMS};

/// What `export --help` says about the files.
pub const COLUMNS_HELP: &str = "\
Files written to DIR (created if needed; existing files of these names are replaced). \
Times are UTC (time_utc, YYYYMMDD-HH:MM:SS.fff) and ns since the Unix epoch (time_ns); \
quantities are face amounts; prices are as on the wire (percent of par for bonds); \
durations in milliseconds; *_bps in basis points. Lists are joined with ';'.

rfqs.csv - one row per desk RFQ leg (NoRelatedSym entry of a desk QuoteRequest):
  time_utc, time_ns        when the desk's QuoteRequest arrived
  desk_session             the desk's session name
  desk_quote_req_id, leg   the desk's QuoteReqID (131) and the leg's 1-based position
  router_quote_req_id      the router's id for the leg (R<seq>-<slot>), empty if never opened
  instrument, id_source    SecurityID (48) and its source (22: 1 CUSIP, 4 ISIN), or Symbol
  side, qty                buy/sell (empty: two-sided) and OrderQty (38)
  dealers_asked, dealers   how many and which dealers the router asked
  quotes                   dealer quotes received (including refused ones)
  outcome, outcome_detail  filled | expired | cancelled | no-quote | rejected | open, and text
  winner, exec_px, exec_qty  the filling dealer, LastPx and CumQty of its fill
  hit_by                   desk (the desk's click) or auto (the router's auto-execution)

quotes.csv - one row per dealer quote (Quote, 35=S, from a dealer):
  time_utc, time_ns, router_quote_req_id, desk_quote_req_id, instrument, dealer,
  dealer_quote_id (the dealer's QuoteID), router_quote_id (the QuoteID the desk saw),
  bid_px, offer_px, bid_size, offer_size, valid_until,
  response_ms              from the router's request to this dealer to the quote
  status, detail           relayed | refused (with the router's reason) | withdrawn | received

executions.csv - one row per dealer ExecutionReport (35=8) for a hit:
  time_utc, time_ns, router_quote_req_id, desk_quote_req_id, instrument, side, dealer,
  exec_id (the dealer's), desk_exec_id (the ExecID the desk got), exec_type (150),
  ord_status (39), last_qty, last_px, cum_qty, hit_px (the price the router sent),
  hit_by (desk|auto), text

tca.csv - one row per TCA result record (kind tca), when the journal has them; only the
  header otherwise: time_utc, time_ns, journal_seq, rfq, dealer, instrument, side, qty,
  arrival_mid, exec_px, price_improvement_bps, vs_cover_bps, markout_60s_bps,
  markout_300s_bps, markout_1800s_bps, drift_bps, net_markout_bps (the 1800 s markout net of
  the desk's own impact: the winner-leakage score's input) (bps signed: positive is good for
  the desk).";

fn num(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| x.to_string())
}

fn writer(dir: &Path, name: &str, header: &[&str]) -> Result<csv::Writer<fs::File>> {
    let path = dir.join(name);
    let mut w = csv::Writer::from_path(&path).with_context(|| format!("{}", path.display()))?;
    w.write_record(header)
        .with_context(|| format!("{}", path.display()))?;
    Ok(w)
}

pub fn run(a: &ExportArgs, names: &Names) -> Result<ExitCode> {
    let reader = open(&a.path)?;
    let in_range = |t: rfq_router::time::Nanos| {
        !(a.from.is_some_and(|f| t < f) || a.to.is_some_and(|to| t >= to))
    };
    let built = model::build(&reader, names, in_range)?;
    fs::create_dir_all(&a.csv).with_context(|| format!("creating {}", a.csv.display()))?;
    let m = &built.model;
    let rfqs = write_rfqs(&a.csv, m, names)?;
    let (quotes, executions) = write_quotes_and_executions(&a.csv, m, names)?;
    let mut t = writer(&a.csv, "tca.csv", &tca::COLUMNS)?;
    let (mut tca_rows, mut undecoded) = (0u64, 0u64);
    for rec in &built.tca {
        match tca::decode(&rec.payload) {
            Some(row) => {
                t.write_record(tca::csv_fields(rec, &row, format_time_ms(rec.time)))?;
                tca_rows += 1;
            }
            None => undecoded += 1,
        }
    }
    t.flush()?;
    println!("{rfqs} rows  {}", a.csv.join("rfqs.csv").display());
    println!("{quotes} rows  {}", a.csv.join("quotes.csv").display());
    println!(
        "{executions} rows  {}",
        a.csv.join("executions.csv").display()
    );
    println!("{tca_rows} rows  {}", a.csv.join("tca.csv").display());
    if undecoded > 0 {
        eprintln!(
            "rfq-journal: {undecoded} tca record(s) not exported: their payload format is not \
             known to this build (see the decoder hook in tools/rfq_journal/tca.rs)"
        );
    }
    Ok(if built.problems > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_rfqs(dir: &Path, m: &Model, names: &Names) -> Result<u64> {
    let mut w = writer(
        dir,
        "rfqs.csv",
        &[
            "time_utc",
            "time_ns",
            "desk_session",
            "desk_quote_req_id",
            "leg",
            "router_quote_req_id",
            "instrument",
            "id_source",
            "side",
            "qty",
            "dealers_asked",
            "dealers",
            "quotes",
            "outcome",
            "outcome_detail",
            "winner",
            "exec_px",
            "exec_qty",
            "hit_by",
        ],
    )?;
    let mut n = 0;
    for leg in &m.legs {
        let r = leg.key.and_then(|k| m.rfqs.get(&k));
        let (outcome, detail) = m.outcome(leg);
        let asked: Vec<String> = r.map_or_else(Vec::new, |r| {
            r.asks
                .iter()
                .map(|a| names.dealer_name_of_session(a.session))
                .collect()
        });
        let fill = r.and_then(|r| r.reports.iter().rev().find(|x| x.is_fill()));
        let hit = r.and_then(|r| r.hits.last());
        w.write_record([
            format_time_ms(leg.time),
            leg.time.0.to_string(),
            names.session(leg.desk_session),
            leg.desk_req_id.clone(),
            leg.leg.to_string(),
            leg.key.map_or_else(String::new, |k| k.to_string()),
            leg.instrument.clone(),
            leg.id_source.clone(),
            side_name(leg.side).to_string(),
            leg.qty.to_string(),
            asked.len().to_string(),
            asked.join(";"),
            r.map_or(0, |r| r.quotes.len()).to_string(),
            outcome.to_string(),
            detail,
            fill.map_or_else(String::new, |f| names.dealer_name_of_session(f.session)),
            num(fill.and_then(|f| f.last_px)),
            num(fill.and_then(|f| f.cum_qty)),
            hit.map_or("", |h| if h.auto { "auto" } else { "desk" })
                .to_string(),
        ])?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

fn write_quotes_and_executions(dir: &Path, m: &Model, names: &Names) -> Result<(u64, u64)> {
    let mut q = writer(
        dir,
        "quotes.csv",
        &[
            "time_utc",
            "time_ns",
            "router_quote_req_id",
            "desk_quote_req_id",
            "instrument",
            "dealer",
            "dealer_quote_id",
            "router_quote_id",
            "bid_px",
            "offer_px",
            "bid_size",
            "offer_size",
            "valid_until",
            "response_ms",
            "status",
            "detail",
        ],
    )?;
    let mut e = writer(
        dir,
        "executions.csv",
        &[
            "time_utc",
            "time_ns",
            "router_quote_req_id",
            "desk_quote_req_id",
            "instrument",
            "side",
            "dealer",
            "exec_id",
            "desk_exec_id",
            "exec_type",
            "ord_status",
            "last_qty",
            "last_px",
            "cum_qty",
            "hit_px",
            "hit_by",
            "text",
        ],
    )?;
    let (mut nq, mut ne) = (0, 0);
    for (k, r) in &m.rfqs {
        let leg = m.leg(*k);
        let desk_id = leg.map_or_else(String::new, |l| l.desk_req_id.clone());
        let instrument = leg.map_or_else(String::new, |l| l.instrument.clone());
        for x in &r.quotes {
            q.write_record([
                format_time_ms(x.time),
                x.time.0.to_string(),
                k.to_string(),
                desk_id.clone(),
                instrument.clone(),
                names.dealer_name_of_session(x.session),
                x.dealer_quote_id.clone(),
                x.router_quote_id.clone(),
                num(x.bid_px),
                num(x.offer_px),
                num(x.bid_size),
                num(x.offer_size),
                x.valid_until.clone(),
                x.response_ns
                    .map_or_else(String::new, |ns| format!("{:.3}", ns as f64 / 1e6)),
                x.status().to_string(),
                x.refused.clone().unwrap_or_default(),
            ])?;
            nq += 1;
        }
        for x in &r.reports {
            let hit = r.hits.iter().rev().find(|h| h.session == x.session);
            let side = hit
                .and_then(|h| h.side)
                .or_else(|| leg.and_then(|l| l.side));
            e.write_record([
                format_time_ms(x.time),
                x.time.0.to_string(),
                k.to_string(),
                desk_id.clone(),
                instrument.clone(),
                side_name(side).to_string(),
                names.dealer_name_of_session(x.session),
                x.exec_id.clone(),
                x.desk_exec_id.clone(),
                x.exec_type.clone(),
                x.ord_status.clone(),
                num(x.last_qty),
                num(x.last_px),
                num(x.cum_qty),
                num(hit.and_then(|h| h.price)),
                hit.map_or("", |h| if h.auto { "auto" } else { "desk" })
                    .to_string(),
                x.text.clone(),
            ])?;
            ne += 1;
        }
    }
    q.flush()?;
    e.flush()?;
    Ok((nq, ne))
}
