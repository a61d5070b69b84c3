//! `rfq-journal whatif --rules FILE`: re-runs dealer selection on every recorded desk
//! QuoteRequest leg under other rules and under the rules in force, and reports how panels
//! (dealers added and removed), dealer counts, protocols and expected cost would change.
//!
//! Selection is the router's own (`ScoredPanel::recommend`, as `rfq-router recommend` uses),
//! with the security master and score tables given (or the compiled-in master and neutral
//! scores), each request evaluated at its recorded arrival time with every dealer online.
//! Must not: change the journal or any file it reads.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};

use rfq_router::dealers::Dealers;
use rfq_router::rfq::types::FixId;
use rfq_router::select::model::ModelConfig;
use rfq_router::select::scored::{
    load_instruments, load_rules, AnyScores, NeutralScores, Recommendation, ScoredPanel,
    TableScores,
};
use rfq_router::select::table::ScoreReader;
use rfq_router::select::{Candidate, RfqSpec};

use crate::common::{format_time_ms, load_config, open, progress_items, Names};
use crate::fixmsg::side_name;
use crate::model::{self, DeskLeg};
use crate::{WhatifArgs, EXIT_PROBLEMS};

/// What "expected cost" means in the output (also in `whatif --help`).
pub const EXPECTED_COST_HELP: &str = "\
Expected cost of an RFQ under a panel = the pre-trade expected market impact of the order \
(square-root model from the rules' [pretrade] settings, in bps of price) x (1 - the mean \
composite score of the panel's dealers, clamped to 0..1). The composite is the rules' \
default weighting of each dealer's fill rate, price improvement, leakage and speed scores \
(from --scores, else the neutral priors, which make every dealer equal). It reads: the \
share of the impact a panel of such dealers is expected not to give back. In money: bps x \
notional / 10,000, notional = qty x fair value / 100 when a fair value is known, else the \
face amount. Refused requests and empty panels have no expected cost and are not summed.";

/// One leg's selection under one rule set.
struct Outcome {
    rule: String,
    protocol: &'static str,
    dealers: Vec<String>,
    cost_bps: Option<f64>,
    cost: Option<f64>,
}

fn evaluate(
    panel: &ScoredPanel<AnyScores>,
    leg: &DeskLeg,
    candidates: &[Candidate],
) -> Result<Outcome, String> {
    let id = FixId::new(leg.instrument.as_bytes()).ok_or("instrument id longer than 40 bytes")?;
    let source = FixId::new(leg.id_source.as_bytes()).unwrap_or(FixId::EMPTY);
    let spec = RfqSpec {
        instrument: &id,
        id_source: &source,
        side: leg.side,
        qty: leg.qty,
        now: leg.time,
    };
    let rec: Recommendation = panel
        .recommend(&spec, candidates)
        .map_err(|r| format!("refused: {}", r.text))?;
    let composite = if rec.chosen.is_empty() {
        None
    } else {
        let sum: f64 = rec.chosen.iter().map(|c| c.composite).sum();
        Some((sum / rec.chosen.len() as f64).clamp(0.0, 1.0))
    };
    let cost_bps = match (rec.pretrade.impact_bps, composite) {
        (Some(i), Some(c)) => Some(i * (1.0 - c)),
        _ => None,
    };
    let notional = match rec.pretrade.fair_value {
        Some(f) => leg.qty * f / 100.0,
        None => leg.qty,
    };
    Ok(Outcome {
        rule: rec.rule.clone(),
        protocol: rec.protocol.kind,
        dealers: rec.chosen.iter().map(|c| c.name.clone()).collect(),
        cost_bps,
        cost: cost_bps.map(|b| b * notional / 1e4),
    })
}

fn panel(
    rules: Option<&std::path::Path>,
    a: &WhatifArgs,
    dealers: &Dealers,
    what: &str,
) -> Result<ScoredPanel<AnyScores>> {
    let rules = load_rules(rules).with_context(|| format!("loading the {what} rules"))?;
    let master =
        load_instruments(a.instruments.as_deref()).context("loading the security master")?;
    let source = match &a.scores {
        Some(p) => AnyScores::Table(TableScores::new(
            ScoreReader::open_read_only(p).with_context(|| format!("--scores {}", p.display()))?,
            ModelConfig::default(),
        )),
        None => AnyScores::Neutral(NeutralScores),
    };
    Ok(ScoredPanel::new(rules, master, dealers, source))
}

fn money(x: f64) -> String {
    format!("{x:.2}")
}

fn describe(o: &Result<Outcome, String>) -> String {
    match o {
        Ok(o) => format!(
            "rule {:<28} {:<9} {} dealer(s): {:<40} expected cost {}",
            o.rule,
            o.protocol,
            o.dealers.len(),
            o.dealers.join(", "),
            o.cost_bps.map_or_else(
                || "n/a".to_string(),
                |b| format!("{b:.2} bps ({})", money(o.cost.unwrap_or(0.0)))
            )
        ),
        Err(why) => why.clone(),
    }
}

#[derive(Default)]
struct Totals {
    legs: u64,
    panel_changed: u64,
    protocol_changed: u64,
    added: u64,
    removed: u64,
    dealers_before: u64,
    dealers_after: u64,
    refused_before: u64,
    refused_after: u64,
    cost_before: f64,
    cost_after: f64,
    costed: u64,
    added_by_dealer: BTreeMap<String, u64>,
    removed_by_dealer: BTreeMap<String, u64>,
}

pub fn run(a: &WhatifArgs, config_args: &crate::common::ConfigArgs) -> Result<ExitCode> {
    let reader = open(&a.path)?;
    let (config, dealers) = load_config(config_args)?;
    let names = Names::from_config(&config, &dealers);
    let baseline = panel(a.baseline_rules.as_deref(), a, &dealers, "baseline")?;
    let other = panel(Some(&a.rules), a, &dealers, "--rules")?;
    let in_range = |t: rfq_router::time::Nanos| {
        !(a.from.is_some_and(|f| t < f) || a.to.is_some_and(|to| t >= to))
    };
    let built = model::build(&reader, &names, in_range)?;
    let candidates = dealers.candidates_all_online();

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    writeln!(
        out,
        "whatif: {} (version {}) against {} (version {})",
        other.rules().path().display(),
        other.rules().version(),
        baseline.rules().path().display(),
        baseline.rules().version()
    )?;
    writeln!(out, "{EXPECTED_COST_HELP}")?;
    writeln!(out)?;
    let mut t = Totals::default();
    let bar = progress_items(built.model.legs.len() as u64, "RFQ legs");
    for leg in &built.model.legs {
        bar.inc(1);
        let before = evaluate(&baseline, leg, &candidates);
        let after = evaluate(&other, leg, &candidates);
        t.legs += 1;
        let empty = Vec::new();
        let b = before.as_ref().map_or(&empty, |o| &o.dealers);
        let n = after.as_ref().map_or(&empty, |o| &o.dealers);
        let added: Vec<&String> = n.iter().filter(|d| !b.contains(d)).collect();
        let removed: Vec<&String> = b.iter().filter(|d| !n.contains(d)).collect();
        let protocol_change = match (&before, &after) {
            (Ok(x), Ok(y)) if x.protocol != y.protocol => Some((x.protocol, y.protocol)),
            _ => None,
        };
        let changed = !added.is_empty()
            || !removed.is_empty()
            || protocol_change.is_some()
            || before.is_ok() != after.is_ok();
        t.panel_changed += u64::from(!added.is_empty() || !removed.is_empty());
        t.protocol_changed += u64::from(protocol_change.is_some());
        t.added += added.len() as u64;
        t.removed += removed.len() as u64;
        for d in &added {
            *t.added_by_dealer.entry((*d).clone()).or_default() += 1;
        }
        for d in &removed {
            *t.removed_by_dealer.entry((*d).clone()).or_default() += 1;
        }
        t.dealers_before += b.len() as u64;
        t.dealers_after += n.len() as u64;
        t.refused_before += u64::from(before.is_err());
        t.refused_after += u64::from(after.is_err());
        let costs = match (&before, &after) {
            (Ok(x), Ok(y)) => x.cost.zip(y.cost),
            _ => None,
        };
        if let Some((x, y)) = costs {
            t.cost_before += x;
            t.cost_after += y;
            t.costed += 1;
        }
        if a.changed_only && !changed {
            continue;
        }
        let recorded: Vec<String> =
            leg.key
                .and_then(|k| built.model.rfqs.get(&k))
                .map_or_else(Vec::new, |r| {
                    r.asks
                        .iter()
                        .map(|x| names.dealer_name_of_session(x.session))
                        .collect()
                });
        writeln!(
            out,
            "{} {} leg {} ({}) {} {} {}",
            format_time_ms(leg.time),
            leg.desk_req_id,
            leg.leg,
            leg.key
                .map_or_else(|| "not opened".to_string(), |k| k.to_string()),
            leg.instrument,
            side_name(leg.side),
            leg.qty
        )?;
        writeln!(
            out,
            "  recorded  {} dealer(s) asked: {}",
            recorded.len(),
            recorded.join(", ")
        )?;
        writeln!(out, "  baseline  {}", describe(&before))?;
        writeln!(out, "  whatif    {}", describe(&after))?;
        let list = |v: &[&String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        let mut change = format!(
            "  change    added: {}; removed: {}; dealers {} -> {}",
            list(&added),
            list(&removed),
            b.len(),
            n.len()
        );
        if let Some((x, y)) = protocol_change {
            change.push_str(&format!("; protocol {x} -> {y}"));
        }
        if let Some((x, y)) = costs {
            let bps = |o: &Result<Outcome, String>| o.as_ref().ok().and_then(|o| o.cost_bps);
            change.push_str(&format!(
                "; expected cost {:+.2} bps ({:+.2})",
                bps(&after).unwrap_or(0.0) - bps(&before).unwrap_or(0.0) + 0.0,
                y - x + 0.0
            ));
        }
        if !changed {
            change.push_str(" (unchanged)");
        }
        writeln!(out, "{change}")?;
    }
    bar.finish_and_clear();
    writeln!(out)?;
    let mean = |n: u64| {
        if t.legs == 0 {
            0.0
        } else {
            n as f64 / t.legs as f64
        }
    };
    writeln!(
        out,
        "total: {} RFQ leg(s); panel changed in {}, protocol changed in {}; dealers added {}, \
         removed {}; dealers asked {} -> {} (mean {:.2} -> {:.2}); refused {} -> {}",
        t.legs,
        t.panel_changed,
        t.protocol_changed,
        t.added,
        t.removed,
        t.dealers_before,
        t.dealers_after,
        mean(t.dealers_before),
        mean(t.dealers_after),
        t.refused_before,
        t.refused_after
    )?;
    writeln!(
        out,
        "expected cost over {} leg(s) priced under both: {} -> {} ({:+.2})",
        t.costed,
        money(t.cost_before),
        money(t.cost_after),
        t.cost_after - t.cost_before + 0.0
    )?;
    for (what, map) in [
        ("added", &t.added_by_dealer),
        ("removed", &t.removed_by_dealer),
    ] {
        if !map.is_empty() {
            let v: Vec<String> = map.iter().map(|(d, n)| format!("{d} x{n}")).collect();
            writeln!(out, "{what} by dealer: {}", v.join(", "))?;
        }
    }
    out.flush()?;
    Ok(if built.problems > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}
