//! `rfq-journal`: the operator's tool for the router's journal (`cat`, `stats`, `verify`,
//! `replay`).
//!
//! It only reads: it opens a journal directory (or one segment file) with the library's
//! `JournalReader`, which may be done while the router is running, and never changes a file
//! (repairs happen when the router opens the journal for writing). All format knowledge lives
//! in `rfq_router::journal`; this file is argument parsing, filtering and presentation.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use rfq_router::journal::format::record_footprint;
use rfq_router::journal::reader::FindingKind;
use rfq_router::journal::{
    FixDirection, HeaderProblem, JournalError, JournalReader, RecordKind, RecordView,
};
use rfq_router::time::{format_utc_timestamp_ms, parse_utc_timestamp, Nanos, UTC_TIMESTAMP_MS_LEN};

#[path = "rfq_journal/replay.rs"]
mod replay;

/// Exit status when `verify` finds corruption, a gap or time going backwards.
const EXIT_PROBLEMS: u8 = 1;
/// Exit status for errors: a missing path, a foreign file, an I/O error, bad arguments.
const EXIT_ERROR: u8 = 2;
/// Exit status when `verify` finds only a torn tail at the very end.
const EXIT_TORN_TAIL: u8 = 3;
/// Journals at least this big get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

#[derive(Parser)]
#[command(
    name = "rfq-journal",
    version,
    about = "Read and check an rfq-router journal",
    long_about = "Read and check an rfq-router journal.\n\n\
        PATH is a journal directory (holding seg-*.rfqj files) or a single segment file. \
        The tool only reads, so it is safe to run while the router is writing.\n\n\
        Exit status: 0 fine, 1 problems found (verify), 2 error (missing path, not a \
        journal, bad arguments), 3 only a torn tail found (verify)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print records, one per line: human-readable, or JSON lines with --json.
    Cat(CatArgs),
    /// Count records by kind, session and FIX message type; time span; sizes.
    Stats(StatsArgs),
    /// Check every CRC, sequence continuity and time order; report each problem with its
    /// segment file and byte offset. Exit 1 on corruption, 3 if the only problem is a torn
    /// tail (what a crash leaves; the router cuts it on its next start).
    Verify(VerifyArgs),
    /// Re-run the engine from the journal's recorded inputs (with their recorded times) and
    /// check that every application message and decision is identical to what was recorded.
    /// Builds the engine from the files each run recorded (or those given), refusing files
    /// whose content differs. Exit 1 and print the first difference if the replay diverges.
    Replay(replay::ReplayArgs),
}

#[derive(Args)]
struct CatArgs {
    /// Journal directory or segment file.
    path: PathBuf,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Args)]
struct FilterArgs {
    /// Only records at or after this time: YYYYMMDD-HH:MM:SS[.fff[fff[fff]]] (UTC), or
    /// nanoseconds since the Unix epoch.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    from: Option<Nanos>,
    /// Only records before this time (same forms as --from).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    to: Option<Nanos>,
    /// Only FIX records of this session id (repeatable).
    #[arg(long, value_name = "ID")]
    session: Vec<u16>,
    /// Only records of this kind (repeatable): fix-in, fix-out, decision, timer, reload,
    /// tca, score, admin.
    #[arg(long, value_parser = parse_kind, value_name = "KIND")]
    kind: Vec<RecordKind>,
    /// Only FIX records whose MsgType (tag 35) is this, e.g. R or AJ (repeatable).
    #[arg(long = "msg-type", value_name = "TYPE")]
    msg_type: Vec<String>,
}

#[derive(Args)]
struct StatsArgs {
    /// Journal directory or segment file.
    path: PathBuf,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Args)]
struct VerifyArgs {
    /// Journal directory or segment file.
    path: PathBuf,
}

fn parse_time(s: &str) -> Result<Nanos, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Nanos).map_err(|e| format!("{s}: {e}"));
    }
    parse_utc_timestamp(s.as_bytes()).ok_or_else(|| {
        format!("{s}: expected YYYYMMDD-HH:MM:SS[.fff] (UTC) or nanoseconds since the epoch")
    })
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    RecordKind::from_name(s).ok_or_else(|| {
        let names: Vec<_> = RecordKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind {s:?}; one of: {}", names.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Cat(a) => cat(a),
        Command::Stats(a) => stats(a),
        Command::Verify(a) => verify(a),
        Command::Replay(a) => replay::run(a, a.config.as_deref(), a.dealers.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS; // `rfq-journal cat ... | head`
            }
            eprintln!("rfq-journal: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn open(path: &Path) -> Result<JournalReader> {
    JournalReader::open(path).map_err(anyhow::Error::from)
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    if total_bytes < PROGRESS_MIN_BYTES || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Which records a command looks at.
struct Filter {
    from: Option<Nanos>,
    to: Option<Nanos>,
    sessions: Vec<u16>,
    kinds: Vec<RecordKind>,
    msg_types: Vec<Vec<u8>>,
}

impl Filter {
    fn new(a: &FilterArgs) -> Filter {
        Filter {
            from: a.from,
            to: a.to,
            sessions: a.session.clone(),
            kinds: a.kind.clone(),
            msg_types: a.msg_type.iter().map(|t| t.as_bytes().to_vec()).collect(),
        }
    }

    fn accepts(&self, r: &RecordView<'_>) -> bool {
        if self.from.is_some_and(|f| r.timestamp < f) || self.to.is_some_and(|t| r.timestamp >= t) {
            return false;
        }
        if !self.kinds.is_empty() && !r.kind().is_some_and(|k| self.kinds.contains(&k)) {
            return false;
        }
        if self.sessions.is_empty() && self.msg_types.is_empty() {
            return true;
        }
        let Some(Ok(fix)) = r.fix() else {
            return false;
        };
        (self.sessions.is_empty() || self.sessions.contains(&fix.session_id))
            && (self.msg_types.is_empty()
                || fix
                    .msg_type()
                    .is_some_and(|t| self.msg_types.iter().any(|m| m == t)))
    }
}

/// `YYYYMMDD-HH:MM:SS.nnnnnnnnn`.
fn format_time(t: Nanos) -> String {
    let mut buf = [0u8; UTC_TIMESTAMP_MS_LEN];
    let ms = format_utc_timestamp_ms(t, &mut buf);
    format!("{}{:06}", String::from_utf8_lossy(ms), t.0 % Nanos::PER_MS)
}

fn kind_name(r: &RecordView<'_>) -> String {
    r.kind()
        .map_or_else(|| format!("kind#{}", r.kind_code), |k| k.name().to_string())
}

fn printable(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.chars().any(|c| c.is_control() && c != '\t')).then_some(s)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn cat(a: &CatArgs) -> Result<ExitCode> {
    let reader = open(&a.path)?;
    let filter = Filter::new(&a.filter);
    let bar = progress_bar(reader.total_bytes());
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut problems = 0u64;
    let mut records = reader.records();
    let mut n = 0u64;
    while let Some(item) = records.next() {
        n += 1;
        if n.is_multiple_of(65_536) {
            bar.set_position(records.bytes_done());
        }
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
            write_json(&mut out, rec.segment_number, rec.offset, r)?;
        } else {
            write_text(&mut out, r)?;
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

fn write_text(out: &mut impl Write, r: &RecordView<'_>) -> io::Result<()> {
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
            write!(out, "session={} {dir} ", fix.session_id)?;
            let shown: Vec<u8> = fix
                .raw
                .iter()
                .map(|&b| if b == 0x01 { b'|' } else { b })
                .collect();
            out.write_all(&shown)?;
            writeln!(out)
        }
        Some(Err(e)) => writeln!(out, "bad FIX payload ({e}): {}", hex(r.payload)),
        None => match printable(r.payload) {
            Some(s) => writeln!(out, "{s}"),
            None => writeln!(out, "{} bytes: {}", r.payload.len(), hex(r.payload)),
        },
    }
}

fn json_string(out: &mut impl Write, s: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    for c in s.chars() {
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            '\n' => out.write_all(b"\\n")?,
            '\r' => out.write_all(b"\\r")?,
            '\t' => out.write_all(b"\\t")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => write!(out, "{c}")?,
        }
    }
    out.write_all(b"\"")
}

fn write_json(
    out: &mut impl Write,
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
                ",\"session\":{},\"direction\":\"{dir}\"",
                fix.session_id
            )?;
            if let Some(t) = fix.msg_type().and_then(|t| std::str::from_utf8(t).ok()) {
                out.write_all(b",\"msg_type\":")?;
                json_string(out, t)?;
            }
            std::str::from_utf8(fix.raw).map_err(|_| fix.raw)
        }
        _ => printable(r.payload).ok_or(r.payload),
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

#[derive(Default)]
struct SessionCounts {
    inbound: u64,
    outbound: u64,
    by_msg_type: BTreeMap<String, u64>,
}

fn stats(a: &StatsArgs) -> Result<ExitCode> {
    let reader = open(&a.path)?;
    let filter = Filter::new(&a.filter);
    let bar = progress_bar(reader.total_bytes());
    let mut by_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new(); // (records, payload bytes)
    let mut by_session: BTreeMap<u16, SessionCounts> = BTreeMap::new();
    let mut used_by_segment: BTreeMap<u64, u64> = BTreeMap::new();
    let mut first: Option<(u64, Nanos)> = None;
    let mut last: Option<(u64, Nanos)> = None;
    let (mut total, mut payload_bytes, mut problems) = (0u64, 0u64, 0u64);
    let mut records = reader.records();
    let mut n = 0u64;
    while let Some(item) = records.next() {
        n += 1;
        if n.is_multiple_of(65_536) {
            bar.set_position(records.bytes_done());
        }
        let rec = match item {
            Ok(r) => r,
            Err(p) => {
                problems += 1;
                eprintln!("rfq-journal: {p} (rest of that segment skipped; run verify)");
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

    let file_bytes: u64 = reader.segments().iter().map(|s| s.file_len).sum();
    let used_bytes: u64 = reader
        .segments()
        .iter()
        .map(|s| {
            used_by_segment
                .get(&s.header.segment_number)
                .copied()
                .unwrap_or(rfq_router::journal::format::SEGMENT_HEADER_LEN as u64)
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
            writeln!(
                out,
                "  {id:<6} in {:>10}  out {:>10}  msg types: {}",
                s.inbound,
                s.outbound,
                types.join(" ")
            )?;
        }
    }
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

fn verify(a: &VerifyArgs) -> Result<ExitCode> {
    let reader = match JournalReader::open(&a.path) {
        Ok(r) => r,
        // A damaged header of a journal segment is a finding, not a usage error; a file
        // that is not a segment at all (bad magic) is an error.
        Err(JournalError::BadHeader { path, problem }) if problem != HeaderProblem::BadMagic => {
            println!("{} offset 0: corrupt: {problem}", path.display());
            println!("PROBLEMS: 1 (the journal cannot be read past this header)");
            return Ok(ExitCode::from(EXIT_PROBLEMS));
        }
        Err(e) => return Err(e).with_context(|| format!("verify {}", a.path.display())),
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
