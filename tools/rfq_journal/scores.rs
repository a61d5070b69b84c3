//! `rfq-journal scores [--at TIME] [--table FILE]`: rebuilds the dealers' score statistics
//! from the journal and prints them per dealer; with `--table`, diffs them against a score
//! table file (opened read-only) and exits 1 when a row differs beyond the tolerance.
//!
//! When the journal holds the router's own score updates (`score` records: each observation
//! the scoring thread applied to the tables, journaled by the engine when the report reached it),
//! the rebuild replays exactly those, in journal order, with `RowStats::observe` into every
//! segment they name: the tables' own history, so a table the router wrote matches it (up to
//! reports that had not reached the engine when it stopped).
//!
//! Otherwise (a journal without a scoring thread's reports) the rebuild replays, in time
//! order, what the FIX records show into `model::RowStats` with `RowStats::observe` (the
//! scoring model's own update), an approximation of what the router measures: a dealer asked (`RfqSent`), a
//! quote in time (`Quoted` with its response time) or refused by the router
//! (`LateOrInvalid`), a decline (`Declined`), a fill (`Won`: price improvement from the TCA
//! record when there is one, else against the mid of the best bid and offer quoted; cover
//! from the second-best quote on the desk's side), each dealer's latest live quote against
//! the others' (`Competitiveness`: the price score's input), and from TCA records the
//! winner's markouts, its net markout (the winner-leakage score's input) and losers' drift. Each observation updates the dealer's row in every segment
//! of the order (all, asset class, sector and rating, issuer, maturity, size; only `all`
//! when the security master does not know the bond) and the same rows of the aggregate
//! dealer (all dealers pooled), as the score tables hold them.
//! Must not: write the table or the journal.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};

use rfq_router::rfq::types::Side;
use rfq_router::select::feedback::decode_record;
use rfq_router::select::model::{
    composite, metrics, normalise, price_improvement_bps, quote_vs_peers_bps, vs_cover_bps,
    Direction, ModelConfig, Observation, RowStats,
};
use rfq_router::select::pretrade::{analyse, OrderTerms};
use rfq_router::select::scored::{load_instruments, load_rules, segment_keys};
use rfq_router::select::segment::{Buckets, SegmentKey};
use rfq_router::select::table::ScoreReader;
use rfq_router::select::tca::update_keys;
use rfq_router::time::Nanos;

use crate::common::{format_time_ms, load_config, open, progress_items, Names};
use crate::fixmsg::router_key;
use crate::model::{self, Built};
use crate::{tca, ScoresArgs, EXIT_PROBLEMS};

/// Rebuilt rows: (dealer index, segment) -> statistics. The aggregate dealer's index is the
/// number of dealers (as in the score table).
pub type Rows = BTreeMap<(u32, SegmentKey), RowStats>;

/// One timed observation for one dealer of one order.
struct Event {
    time: Nanos,
    dealer: u32,
    keys: Vec<SegmentKey>,
    obs: Observation,
}

fn direction(side: Option<Side>) -> Direction {
    match side {
        Some(Side::Sell) => Direction::Sell,
        _ => Direction::Buy,
    }
}

/// The observations the journal shows, in time order.
fn events(built: &Built, names: &Names, a: &ScoresArgs) -> Result<(Vec<Event>, u64)> {
    let rules = load_rules(a.rules.as_deref()).context("loading the rules (pre-trade settings)")?;
    let master =
        load_instruments(a.instruments.as_deref()).context("loading the security master")?;
    let (maturity, size) = (
        Buckets::default_maturity_years(),
        Buckets::default_size_notional(),
    );
    let m = &built.model;
    // The router's score updates, when the journal has them: each observation its tables
    // got, in the order they got them.
    if !built.score_updates.is_empty() {
        let applied = built
            .score_updates
            .iter()
            .map(|u| Event {
                time: u.at,
                dealer: u32::from(u.dealer.0),
                keys: update_keys(u.keys.as_ref()).to_vec(),
                obs: u.obs,
            })
            .collect();
        return Ok((applied, built.score_undecoded));
    }
    // Else TCA rows by (rfq, dealer name) for the reconstruction from the FIX records.
    let mut tca_rows = Vec::new();
    let mut undecoded = 0u64;
    for rec in &built.tca {
        // The router's execution summaries (no row changes) are not the decoder hook's.
        if decode_record(&rec.payload).is_ok() {
            continue;
        }
        match tca::decode(&rec.payload) {
            Some(row) => tca_rows.push((rec.time, row)),
            None => undecoded += 1,
        }
    }
    let dealer_of = |session: u16| names.dealer_of_session(session).map(|d| d as u32);
    let mut out = Vec::new();
    let mut keys_of_rfq = BTreeMap::new();
    for (k, r) in &m.rfqs {
        let leg = m.leg(*k);
        let mut keys = vec![SegmentKey::all()];
        if let Some(leg) = leg {
            let source = (!leg.id_source.is_empty()).then_some(leg.id_source.as_bytes());
            if let Some(inst) = master.lookup_fix(leg.instrument.as_bytes(), source) {
                let pre = analyse(
                    rules.pretrade(),
                    inst,
                    &OrderTerms {
                        side: leg.side,
                        size: leg.qty,
                        mid: None,
                    },
                    leg.time,
                );
                let s = segment_keys(inst, &pre, &maturity, &size);
                keys = vec![
                    s.all,
                    s.asset_class,
                    s.sector_rating,
                    s.issuer,
                    s.maturity,
                    s.size,
                ];
                keys.retain(|k| !k.is_empty());
                keys.dedup();
            }
        }
        keys_of_rfq.insert(*k, keys.clone());
        let side = leg.and_then(|l| l.side);
        let mut push = |time: Nanos, session: u16, obs: Observation| {
            if let Some(dealer) = dealer_of(session) {
                out.push(Event {
                    time,
                    dealer,
                    keys: keys.clone(),
                    obs,
                });
            }
        };
        for ask in &r.asks {
            push(ask.time, ask.session, Observation::RfqSent);
        }
        let asked_at = |session: u16| r.asks.iter().rev().find(|x| x.session == session);
        for q in &r.quotes {
            let obs = if q.refused.is_some() {
                Observation::LateOrInvalid
            } else {
                Observation::Quoted {
                    response_s: q.response_ns.unwrap_or(0) as f64 / 1e9,
                }
            };
            push(q.time, q.session, obs);
        }
        for d in &r.declines {
            let response_s =
                asked_at(d.session).map_or(0.0, |x| d.time.0.saturating_sub(x.time.0) as f64 / 1e9);
            push(d.time, d.session, Observation::Declined { response_s });
        }
        if let Some(fill) = r.reports.iter().find(|x| x.is_fill()) {
            let dir = direction(side);
            let live: Vec<_> = r.quotes.iter().filter(|q| q.refused.is_none()).collect();
            let exec_px = fill.last_px.or_else(|| {
                r.hits
                    .iter()
                    .rev()
                    .find(|h| h.session == fill.session)?
                    .price
            });
            let winner = names.dealer_name_of_session(fill.session);
            let rfq_id = k.to_string();
            let tca_pi = tca_rows
                .iter()
                .find(|(_, t)| t.rfq == rfq_id && t.dealer == winner)
                .and_then(|(_, t)| t.price_improvement_bps);
            let best_bid = live.iter().filter_map(|q| q.bid_px).reduce(f64::max);
            let best_offer = live.iter().filter_map(|q| q.offer_px).reduce(f64::min);
            let quoted_mid = best_bid.zip(best_offer).map(|(b, o)| (b + o) / 2.0);
            let pi = tca_pi
                .or_else(|| price_improvement_bps(dir, quoted_mid?, exec_px?))
                .unwrap_or(0.0);
            // The cover: the best other dealer's price on the desk's side.
            let others = live
                .iter()
                .filter(|q| q.session != fill.session)
                .filter_map(|q| q.px_for(side));
            let cover = match dir {
                Direction::Buy => others.reduce(f64::min),
                Direction::Sell => others.reduce(f64::max),
            };
            let vs_cover = exec_px
                .zip(cover)
                .and_then(|(e, c)| vs_cover_bps(dir, e, c));
            push(
                fill.time,
                fill.session,
                Observation::Won {
                    price_improvement_bps: pi,
                    vs_cover_bps: vs_cover,
                },
            );
        }
        // The price score: each dealer's latest live quote against the mean of the other
        // dealers' (`model::quote_vs_peers_bps`; 0 alone or without a side), when the RFQ ends.
        let mut latest: Vec<(u16, f64)> = Vec::new();
        for q in r.quotes.iter().filter(|q| q.refused.is_none()) {
            if let Some(px) = q.px_for(side) {
                match latest.iter_mut().find(|x| x.0 == q.session) {
                    Some(x) => x.1 = px,
                    None => latest.push((q.session, px)),
                }
            }
        }
        let end = r
            .quotes
            .iter()
            .map(|q| q.time)
            .chain(r.reports.iter().map(|x| x.time))
            .max();
        if let Some(end) = end {
            let sum: f64 = latest.iter().map(|x| x.1).sum();
            for &(session, px) in &latest {
                let bps = match side {
                    Some(_) if latest.len() > 1 => {
                        let peers = (sum - px) / (latest.len() - 1) as f64;
                        quote_vs_peers_bps(direction(side), px, peers).unwrap_or(0.0)
                    }
                    _ => 0.0,
                };
                push(end, session, Observation::Competitiveness { bps });
            }
        }
    }
    // Markouts and drift from TCA records.
    for (time, t) in &tca_rows {
        let Some(dealer) = names.dealer(&t.dealer) else {
            continue;
        };
        let keys = router_key(t.rfq.as_bytes())
            .and_then(|k| keys_of_rfq.get(&k).cloned())
            .unwrap_or_else(|| vec![SegmentKey::all()]);
        for (horizon, bps) in t.markout_bps.iter().enumerate() {
            if let Some(bps) = bps {
                out.push(Event {
                    time: *time,
                    dealer: dealer as u32,
                    keys: keys.clone(),
                    obs: Observation::Markout { horizon, bps: *bps },
                });
            }
        }
        if let Some(bps) = t.drift_bps {
            out.push(Event {
                time: *time,
                dealer: dealer as u32,
                keys: keys.clone(),
                obs: Observation::Drift { bps },
            });
        }
        if let Some(bps) = t.net_markout_bps {
            out.push(Event {
                time: *time,
                dealer: dealer as u32,
                keys: keys.clone(),
                obs: Observation::NetMarkout { bps },
            });
        }
    }
    out.sort_by_key(|e| e.time);
    Ok((out, undecoded))
}

/// Replays the observations into rows, the aggregate dealer (`aggregate`) alongside.
fn rebuild(events: &[Event], aggregate: u32, cfg: &ModelConfig) -> (Rows, u64) {
    let mut rows = Rows::new();
    let mut refused = 0u64;
    let bar = progress_items(events.len() as u64, "observations");
    for e in events {
        bar.inc(1);
        for &key in &e.keys {
            for dealer in [e.dealer, aggregate] {
                let row = rows.entry((dealer, key)).or_default();
                if row.observe(e.obs, e.time, cfg).is_err() {
                    refused += 1;
                }
            }
        }
    }
    bar.finish_and_clear();
    (rows, refused)
}

/// The fields compared and shown, by name.
fn fields(r: &RowStats) -> Vec<(&'static str, f64)> {
    let mut v = vec![
        ("rfqs_sent", f64::from(r.rfqs_sent)),
        ("responses", f64::from(r.responses)),
        ("declines", f64::from(r.declines)),
        ("quotes", f64::from(r.quotes)),
        ("wins", f64::from(r.wins)),
        ("late_or_invalid", f64::from(r.late_or_invalid)),
        ("response_s_sum", f64::from(r.response_s_sum)),
        (
            "quote_vs_peers_bps_sum",
            f64::from(r.quote_vs_peers_bps_sum),
        ),
        ("vs_cover_bps_sum", f64::from(r.vs_cover_bps_sum)),
        ("cover_n", f64::from(r.cover_n)),
        ("drift_bps_sum", f64::from(r.drift_bps_sum)),
        ("drift_n", f64::from(r.drift_n)),
        ("net_markout_bps_sum", f64::from(r.net_markout_bps_sum)),
        ("net_markout_n", f64::from(r.net_markout_n)),
        ("rfqs_total", f64::from(r.rfqs_total)),
        ("wins_total", f64::from(r.wins_total)),
    ];
    for i in 0..r.markout_n.len() {
        v.push((
            [
                "markout_bps_sum[0]",
                "markout_bps_sum[1]",
                "markout_bps_sum[2]",
            ][i],
            f64::from(r.markout_bps_sum[i]),
        ));
        v.push((
            ["markout_n[0]", "markout_n[1]", "markout_n[2]"][i],
            f64::from(r.markout_n[i]),
        ));
    }
    v
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * (1.0 + a.abs().max(b.abs()))
}

pub fn run(a: &ScoresArgs, config_args: &crate::common::ConfigArgs) -> Result<ExitCode> {
    let reader = open(&a.path)?;
    let (config, dealers) = load_config(config_args)?;
    let names = Names::from_config(&config, &dealers);
    // Open the table first: a bad --table is an error before the long part.
    let table = match &a.table {
        Some(p) => Some(
            ScoreReader::open_read_only(p).with_context(|| format!("--table {}", p.display()))?,
        ),
        None => None,
    };
    if let Some(t) = &table {
        let held = t.header().params.dealers as usize;
        anyhow::ensure!(
            held >= dealers.dealers.len(),
            "--table {}: holds {held} dealer(s), the dealer database {}: not the router's table \
             for these dealers",
            a.table
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display(),
            dealers.dealers.len()
        );
    }
    let at_most = a.at;
    let built = model::build(&reader, &names, |t| at_most.is_none_or(|at| t <= at))?;
    let cfg = ModelConfig::default();
    let (evs, undecoded) = events(&built, &names, a)?;
    let aggregate = table.as_ref().map_or(dealers.dealers.len() as u32, |t| {
        t.header().aggregate_dealer()
    });
    let (rows, refused) = rebuild(&evs, aggregate, &cfg);
    let at = a.at.or(built.last_time).unwrap_or(Nanos(0));

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    writeln!(
        out,
        "scores at {} from {} observation(s) in {} ({} RFQ legs)",
        format_time_ms(at),
        evs.len(),
        reader.root().display(),
        built.model.rfqs.len()
    )?;
    writeln!(
        out,
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>8} {:>9}",
        "dealer",
        "rfqs",
        "quotes",
        "declines",
        "late",
        "wins",
        "fill",
        "resp_s",
        "pi_bps",
        "cover",
        "composite"
    )?;
    let all = SegmentKey::all();
    let pooled = rows.get(&(aggregate, all)).copied().unwrap_or_default();
    for (i, d) in dealers.dealers.iter().enumerate() {
        let own = rows.get(&(i as u32, all)).copied().unwrap_or_default();
        let r = own.decayed_to(at, &cfg);
        let m = metrics(&own, &pooled, at, &cfg);
        let score = composite(&normalise(&m, cfg.speed_scale_s), &cfg.weights);
        writeln!(
            out,
            "{:<16} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6.2} {:>6.3} {:>6.1} {:>9.2} {:>8.2} {:>9.3}",
            d.name,
            r.rfqs_sent,
            r.quotes,
            r.declines,
            r.late_or_invalid,
            r.wins,
            m.fill_rate,
            m.response_s,
            m.price_improvement_bps,
            m.vs_cover_bps,
            score
        )?;
    }
    writeln!(
        out,
        "(decayed counts with a {}-day half-life; fill, resp_s, pi_bps, cover are shrunk \
         toward all dealers pooled; composite weights fill {} / price improvement {} / \
         leakage {} / speed {})",
        cfg.half_life_s / 86_400,
        cfg.weights.fill,
        cfg.weights.price_improvement,
        cfg.weights.leakage,
        cfg.weights.speed
    )?;
    if undecoded > 0 {
        writeln!(
            out,
            "note: {undecoded} tca record(s) not read: format unknown to this build \
             (decoder hook in tools/rfq_journal/tca.rs)"
        )?;
    }
    if refused > 0 {
        writeln!(
            out,
            "note: {refused} observation(s) refused by the model (not finite)"
        )?;
    }
    let mut code = if built.problems > 0 { EXIT_PROBLEMS } else { 0 };
    if let (Some(table), Some(path)) = (&table, &a.table) {
        let mismatches = diff(&mut out, table, &rows, &dealers, at, &cfg, a.tolerance)?;
        if mismatches > 0 {
            writeln!(
                out,
                "MISMATCH: {mismatches} row(s) of {} differ from the journal beyond tolerance {}",
                path.display(),
                a.tolerance
            )?;
            code = EXIT_PROBLEMS;
        } else {
            writeln!(
                out,
                "table {} matches the journal (tolerance {})",
                path.display(),
                a.tolerance
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::from(code))
}

/// Compares every rebuilt row with the table's and every table row with the rebuild, both
/// brought to `at`. Returns the number of rows that differ.
fn diff(
    out: &mut impl Write,
    table: &ScoreReader,
    rows: &Rows,
    dealers: &rfq_router::dealers::Dealers,
    at: Nanos,
    cfg: &ModelConfig,
    tolerance: f64,
) -> Result<u64> {
    let aggregate = table.header().aggregate_dealer();
    let name = |d: u32| {
        if d == aggregate {
            "(all dealers)".to_string()
        } else {
            dealers
                .dealers
                .get(d as usize)
                .map_or_else(|| format!("dealer #{d}"), |x| x.name.clone())
        }
    };
    let segment = |k: SegmentKey| k.level().map_or("?", |l| l.name());
    let mut bad = 0u64;
    let mut seen = std::collections::HashSet::new();
    for (&(dealer, key), mine) in rows {
        seen.insert((dealer, key));
        let theirs = table
            .find(dealer, key)
            .map_err(|e| anyhow::anyhow!("reading the table: {e:?}"))?;
        let Some(theirs) = theirs else {
            writeln!(
                out,
                "  {} segment {} ({:#x}): in the journal, not in the table",
                name(dealer),
                segment(key),
                key.0
            )?;
            bad += 1;
            continue;
        };
        let (x, y) = (mine.decayed_to(at, cfg), theirs.decayed_to(at, cfg));
        let differing: Vec<String> = fields(&x)
            .into_iter()
            .zip(fields(&y))
            .filter(|((_, p), (_, q))| !close(*p, *q, tolerance))
            .map(|((n, p), (_, q))| format!("{n} journal {p:.4} table {q:.4}"))
            .collect();
        if !differing.is_empty() {
            writeln!(
                out,
                "  {} segment {} ({:#x}): {}",
                name(dealer),
                segment(key),
                key.0,
                differing.join("; ")
            )?;
            bad += 1;
        }
    }
    let segs = u64::from(table.header().params.segments_per_dealer);
    for row in 0..table.header().rows() {
        let rec = table
            .read_row(row)
            .map_err(|e| anyhow::anyhow!("reading table row {row}: {e:?}"))?;
        if rec.key.is_empty() {
            continue;
        }
        let dealer = (row / segs) as u32;
        if !seen.contains(&(dealer, rec.key)) && rec.stats.decayed_to(at, cfg).rfqs_sent > 0.0 {
            writeln!(
                out,
                "  {} segment {} ({:#x}): in the table, not in the journal",
                name(dealer),
                segment(rec.key),
                rec.key.0
            )?;
            bad += 1;
        }
    }
    Ok(bad)
}
