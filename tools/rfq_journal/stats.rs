//! `rfq-journal stats`: counts by record kind, by session (with its configured name and
//! FIX message types) and by dealer (RFQs asked, quotes, declines, wins), the time span and
//! the journal's size.
//!
//! Must not: change the journal.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use rfq_router::journal::format::{record_footprint, SEGMENT_HEADER_LEN};
use rfq_router::journal::FixDirection;
use rfq_router::time::Nanos;

use crate::cat::kind_name;
use crate::common::{format_time, open, progress_bar, Names};
use crate::filter::{Filter, RfqMatch};
use crate::{model, StatsArgs, EXIT_PROBLEMS};

#[derive(Default)]
struct SessionCounts {
    inbound: u64,
    outbound: u64,
    by_msg_type: BTreeMap<String, u64>,
}

#[derive(Default)]
struct DealerCounts {
    asked: u64,
    quotes: u64,
    refused: u64,
    declines: u64,
    hits: u64,
    fills: u64,
}

pub fn run(a: &StatsArgs, names: &Names) -> Result<ExitCode> {
    let reader = open(&a.path)?;
    let mut filter = Filter::new(&a.filter, names)?;
    let built = model::build(&reader, names, |t| filter.in_time(t))?;
    if let Some(id) = &a.filter.rfq {
        filter.rfq = Some(RfqMatch::resolve(&built.model, id));
    }
    let bar = progress_bar(reader.total_bytes());
    let mut by_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new(); // (records, payload bytes)
    let mut by_session: BTreeMap<u16, SessionCounts> = BTreeMap::new();
    let mut used_by_segment: BTreeMap<u64, u64> = BTreeMap::new();
    let mut first: Option<(u64, Nanos)> = None;
    let mut last: Option<(u64, Nanos)> = None;
    let (mut total, mut payload_bytes, mut problems) = (0u64, 0u64, 0u64);
    for item in crate::common::with_progress(reader.records(), bar.clone(), 65_536) {
        let rec = match item {
            Ok(r) => r,
            Err(_) => {
                problems += 1; // reported by the first pass
                continue;
            }
        };
        let r = &rec.record;
        used_by_segment.insert(
            rec.segment_number,
            rec.offset + record_footprint(r.payload.len()) as u64,
        );
        if !filter.accepts(r) {
            continue;
        }
        total += 1;
        payload_bytes += r.payload.len() as u64;
        let k = by_kind.entry(kind_name(r)).or_default();
        k.0 += 1;
        k.1 += r.payload.len() as u64;
        if let Some(Ok(fix)) = r.fix() {
            let s = by_session.entry(fix.session_id).or_default();
            match fix.direction {
                FixDirection::Inbound => s.inbound += 1,
                FixDirection::Outbound => s.outbound += 1,
            }
            let t = fix.msg_type().map_or_else(
                || "?".to_string(),
                |t| String::from_utf8_lossy(t).into_owned(),
            );
            *s.by_msg_type.entry(t).or_default() += 1;
        }
        first.get_or_insert((r.seq, r.timestamp));
        last = Some((r.seq, r.timestamp));
    }
    bar.finish_and_clear();

    // Dealer activity from the RFQ model (the legs in the time range).
    let mut by_dealer: BTreeMap<String, DealerCounts> = BTreeMap::new();
    for r in built.model.rfqs.values() {
        let mut count = |session: u16, f: &mut dyn FnMut(&mut DealerCounts)| {
            f(by_dealer
                .entry(names.dealer_name_of_session(session))
                .or_default());
        };
        for a in &r.asks {
            count(a.session, &mut |c| c.asked += 1);
        }
        for q in &r.quotes {
            let refused = q.refused.is_some();
            count(q.session, &mut |c| {
                c.quotes += 1;
                c.refused += u64::from(refused);
            });
        }
        for d in &r.declines {
            count(d.session, &mut |c| c.declines += 1);
        }
        for h in &r.hits {
            count(h.session, &mut |c| c.hits += 1);
        }
        if let Some(rep) = r.reports.iter().find(|x| x.is_fill()) {
            count(rep.session, &mut |c| c.fills += 1);
        }
    }

    let file_bytes: u64 = reader.segments().iter().map(|s| s.file_len).sum();
    let used_bytes: u64 = reader
        .segments()
        .iter()
        .map(|s| {
            used_by_segment
                .get(&s.header.segment_number)
                .copied()
                .unwrap_or(SEGMENT_HEADER_LEN as u64)
        })
        .sum();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    writeln!(out, "journal   {}", reader.root().display())?;
    writeln!(
        out,
        "segments  {} ({} bytes in files, {} bytes used)",
        reader.segments().len(),
        file_bytes,
        used_bytes
    )?;
    writeln!(out, "records   {total} ({payload_bytes} payload bytes)")?;
    if let (Some((s0, t0)), Some((s1, t1))) = (first, last) {
        writeln!(out, "sequence  {s0} .. {s1}")?;
        let span = t1.saturating_sub(t0);
        writeln!(
            out,
            "time      {} .. {} ({}.{:03} s)",
            format_time(t0),
            format_time(t1),
            span.as_secs(),
            span.as_millis() % 1000
        )?;
    }
    let legs = &built.model.legs;
    if !legs.is_empty() {
        let mut outcomes: BTreeMap<&str, u64> = BTreeMap::new();
        for l in legs {
            *outcomes.entry(built.model.outcome(l).0).or_default() += 1;
        }
        let o: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "rfq legs  {} ({})", legs.len(), o.join(" "))?;
    }
    writeln!(out, "by kind")?;
    for (kind, (count, bytes)) in &by_kind {
        writeln!(
            out,
            "  {kind:<10} {count:>12} records {bytes:>14} payload bytes"
        )?;
    }
    if !by_session.is_empty() {
        writeln!(out, "by session")?;
        for (id, s) in &by_session {
            let types: Vec<String> = s
                .by_msg_type
                .iter()
                .map(|(t, c)| format!("{t}={c}"))
                .collect();
            let role = if names.is_desk(*id) {
                "desk".to_string()
            } else {
                names
                    .dealer_of_session(*id)
                    .map_or_else(|| "unused".to_string(), |d| names.dealers[d].name.clone())
            };
            writeln!(
                out,
                "  {id:<4} {:<12} in {:>10}  out {:>10}  ({role})  msg types: {}",
                names.session(*id),
                s.inbound,
                s.outbound,
                types.join(" ")
            )?;
        }
    }
    if !by_dealer.is_empty() {
        writeln!(out, "by dealer")?;
        for (name, c) in &by_dealer {
            writeln!(
                out,
                "  {name:<16} asked {:>8}  quotes {:>8}  refused {:>6}  declines {:>6}  hits {:>6}  fills {:>6}",
                c.asked, c.quotes, c.refused, c.declines, c.hits, c.fills
            )?;
        }
    }
    let problems = problems.max(built.problems);
    if problems > 0 {
        writeln!(
            out,
            "damaged   {problems} place(s): run `rfq-journal verify`"
        )?;
    }
    out.flush()?;
    Ok(if problems > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}
