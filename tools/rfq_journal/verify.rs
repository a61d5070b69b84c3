//! `rfq-journal verify`: every CRC, sequence continuity and time order, each problem with
//! its segment file and byte offset.
//!
//! Must not: repair anything (the router cuts a torn tail when it next opens the journal).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};

use rfq_router::journal::reader::FindingKind;
use rfq_router::journal::{HeaderProblem, JournalError, JournalReader};

use crate::common::{open, progress_bar};
use crate::{VerifyArgs, EXIT_PROBLEMS, EXIT_TORN_TAIL};

pub fn run(a: &VerifyArgs) -> Result<ExitCode> {
    let reader = match JournalReader::open(&a.path) {
        Ok(r) => r,
        // A damaged header of a journal segment is a finding, not a usage error; a file
        // that is not a segment at all (bad magic) is an error.
        Err(JournalError::BadHeader { path, problem }) if problem != HeaderProblem::BadMagic => {
            println!("{} offset 0: corrupt: {problem}", path.display());
            println!("PROBLEMS: 1 (the journal cannot be read past this header)");
            return Ok(ExitCode::from(EXIT_PROBLEMS));
        }
        Err(_) => {
            return open(&a.path)
                .map(|_| ExitCode::SUCCESS)
                .with_context(|| format!("verify {}", a.path.display()))
        }
    };
    let bar = progress_bar(reader.total_bytes());
    let scan = reader.scan_with_progress(|done| bar.set_position(done));
    bar.finish_and_clear();

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let (mut corrupt, mut torn, mut time) = (0u64, 0u64, 0u64);
    for f in &scan.findings {
        match f.kind {
            FindingKind::TornTail(_) => torn += 1,
            FindingKind::Corrupt(_) => corrupt += 1,
            FindingKind::TimeRegression { .. } => time += 1,
        }
        writeln!(out, "{f}")?;
    }
    let regressions: u64 = scan.segments.iter().map(|s| s.scan.time_regressions).sum();
    let first_seq = scan.segments.first().map_or(0, |s| s.header.first_seq);
    writeln!(
        out,
        "{} records in {} segment(s), sequence {} .. {}; {} corrupt place(s), {} torn tail, \
         {} time regression(s)",
        scan.records,
        scan.segments.len(),
        first_seq,
        scan.next_seq.saturating_sub(1),
        corrupt,
        torn,
        regressions
    )?;
    let code = if corrupt > 0 || time > 0 {
        writeln!(out, "PROBLEMS")?;
        EXIT_PROBLEMS
    } else if torn > 0 {
        writeln!(
            out,
            "TORN TAIL: what a crash mid-append leaves; the router cuts it when it next opens \
             the journal"
        )?;
        EXIT_TORN_TAIL
    } else {
        writeln!(out, "OK")?;
        0
    };
    out.flush()?;
    Ok(ExitCode::from(code))
}
