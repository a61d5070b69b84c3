//! `rfq-journal cat`: records one per line, as text or JSON lines, through the filters.
//!
//! Must not: change the journal. With `--rfq` it reads the journal twice (first to tie the
//! RFQ's identifiers together, then to print).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use rfq_router::journal::{FixDirection, RecordView};

use crate::common::{format_time, hex, json_string, open, printable, progress_bar, Names};
use crate::filter::{Filter, RfqMatch};
use crate::fixmsg::{
    router_key, Fields, CL_ORD_ID, ORDER_ID, QUOTE_ID, QUOTE_REQ_ID, QUOTE_RESP_ID,
};
use crate::{model, CatArgs, EXIT_PROBLEMS};

pub fn kind_name(r: &RecordView<'_>) -> String {
    r.kind()
        .map_or_else(|| format!("kind#{}", r.kind_code), |k| k.name().to_string())
}

pub fn run(a: &CatArgs, names: &Names) -> Result<ExitCode> {
    let reader = open(&a.path)?;
    let mut filter = Filter::new(&a.filter, names)?;
    if let Some(id) = &a.filter.rfq {
        let built = model::build(&reader, names, |_| true)?;
        let m = RfqMatch::resolve(&built.model, id);
        if m.is_empty() {
            eprintln!(
                "rfq-journal: no RFQ with id {id:?} in {}",
                reader.root().display()
            );
        }
        filter.rfq = Some(m);
    }
    let bar = progress_bar(reader.total_bytes());
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut problems = 0u64;
    for item in crate::common::with_progress(reader.records(), bar.clone(), 65_536) {
        let rec = match item {
            Ok(r) => r,
            Err(p) => {
                problems += 1;
                out.flush()?;
                eprintln!("rfq-journal: {p} (rest of that segment skipped; run verify)");
                continue;
            }
        };
        let r = &rec.record;
        if !filter.accepts(r) {
            continue;
        }
        if a.json {
            write_json(&mut out, names, rec.segment_number, rec.offset, r)?;
        } else {
            write_text(&mut out, names, r)?;
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(if problems > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    })
}

/// The session's label: `ID:name`.
fn session_label(names: &Names, id: u16) -> String {
    format!("{id}:{}", names.session(id))
}

/// The router's id of the leg a message belongs to, if it names one.
fn rfq_of(raw: &[u8]) -> Option<String> {
    let m = Fields::parse(raw);
    [QUOTE_REQ_ID, QUOTE_ID, CL_ORD_ID, QUOTE_RESP_ID, ORDER_ID]
        .iter()
        .find_map(|&t| m.get(t).and_then(router_key))
        .map(|k| k.to_string())
}

fn write_text(out: &mut impl Write, names: &Names, r: &RecordView<'_>) -> io::Result<()> {
    write!(
        out,
        "{:>10} {} {:<8} ",
        r.seq,
        format_time(r.timestamp),
        kind_name(r)
    )?;
    match r.fix() {
        Some(Ok(fix)) => {
            let dir = match fix.direction {
                FixDirection::Inbound => "in ",
                FixDirection::Outbound => "out",
            };
            write!(
                out,
                "session={} {dir} ",
                session_label(names, fix.session_id)
            )?;
            let shown: Vec<u8> = fix
                .raw
                .iter()
                .map(|&b| if b == 0x01 { b'|' } else { b })
                .collect();
            out.write_all(&shown)?;
            writeln!(out)
        }
        Some(Err(e)) => writeln!(out, "bad FIX payload ({e}): {}", hex(r.payload)),
        None => match r
            .kind()
            .and_then(|k| rfq_router::journal::records::describe(k, r.payload))
        {
            Some(s) => writeln!(out, "{s}"),
            None => match printable(r.payload) {
                Some(s) => writeln!(out, "{s}"),
                None => writeln!(out, "{} bytes: {}", r.payload.len(), hex(r.payload)),
            },
        },
    }
}

fn write_json(
    out: &mut impl Write,
    names: &Names,
    segment: u64,
    offset: u64,
    r: &RecordView<'_>,
) -> io::Result<()> {
    write!(
        out,
        "{{\"seq\":{},\"ts_ns\":{},\"time\":\"{}\",\"kind\":",
        r.seq,
        r.timestamp.0,
        format_time(r.timestamp)
    )?;
    json_string(out, &kind_name(r))?;
    write!(out, ",\"segment\":{segment},\"offset\":{offset}")?;
    let body = match r.fix() {
        Some(Ok(fix)) => {
            let dir = match fix.direction {
                FixDirection::Inbound => "in",
                FixDirection::Outbound => "out",
            };
            write!(
                out,
                ",\"session\":{},\"direction\":\"{dir}\",\"session_name\":",
                fix.session_id
            )?;
            json_string(out, &names.session(fix.session_id))?;
            if let Some(d) = names.dealer_of_session(fix.session_id) {
                out.write_all(b",\"dealer\":")?;
                json_string(out, &names.dealers[d].name)?;
            }
            if let Some(t) = fix.msg_type().and_then(|t| std::str::from_utf8(t).ok()) {
                out.write_all(b",\"msg_type\":")?;
                json_string(out, t)?;
            }
            if let Some(k) = rfq_of(fix.raw) {
                out.write_all(b",\"rfq\":")?;
                json_string(out, &k)?;
            }
            std::str::from_utf8(fix.raw).map_err(|_| fix.raw)
        }
        _ => {
            if let Some(d) = r
                .kind()
                .and_then(|k| rfq_router::journal::records::describe(k, r.payload))
            {
                out.write_all(b",\"decoded\":")?;
                json_string(out, &d)?;
            }
            printable(r.payload).ok_or(r.payload)
        }
    };
    match body {
        Ok(s) => {
            out.write_all(b",\"text\":")?;
            json_string(out, s)?;
        }
        Err(bytes) => write!(out, ",\"hex\":\"{}\"", hex(bytes))?,
    }
    writeln!(out, "}}")
}
