//! `rfq-journal`: the operator's tool for the router's journal: `cat`, `stats`, `verify`,
//! `replay`, `export`, `whatif`, `scores`.
//!
//! It only reads: it opens a journal directory (or one segment file) with the library's
//! `JournalReader`, which may be done while the router is running, and never changes a
//! journal file (repairs happen when the router opens the journal for writing). All format
//! knowledge lives in `rfq_router::journal`; selection and scoring in `rfq_router::select`.
//! This file is the command line; each command lives in `tools/rfq_journal/`.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[path = "rfq_journal/cat.rs"]
mod cat;
#[path = "rfq_journal/common.rs"]
mod common;
#[path = "rfq_journal/export.rs"]
mod export;
#[path = "rfq_journal/filter.rs"]
mod filter;
#[path = "rfq_journal/fixmsg.rs"]
mod fixmsg;
#[path = "rfq_journal/model.rs"]
mod model;
#[path = "rfq_journal/scores.rs"]
mod scores;
#[path = "rfq_journal/stats.rs"]
mod stats;
#[path = "rfq_journal/tca.rs"]
mod tca;
#[path = "rfq_journal/verify.rs"]
mod verify;
#[path = "rfq_journal/whatif.rs"]
mod whatif;

#[path = "rfq_journal/replay.rs"]
mod replay;

use common::ConfigArgs;
use filter::FilterArgs;

/// Exit status when `verify` finds corruption, a gap or time going backwards (and when
/// `cat`/`stats` skipped a damaged place).
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit status for errors: a missing path, a foreign file, an I/O error, bad arguments.
pub const EXIT_ERROR: u8 = 2;
/// Exit status when `verify` finds only a torn tail at the very end.
pub const EXIT_TORN_TAIL: u8 = 3;

#[derive(Parser)]
#[command(
    name = "rfq-journal",
    version,
    about = "Read, check and analyse an rfq-router journal",
    long_about = "Read, check and analyse an rfq-router journal.\n\n\
        PATH is a journal directory (holding seg-*.rfqj files) or a single segment file. \
        The tool only reads, so it is safe to run while the router is writing.\n\n\
        Session ids in the journal are the positions of the [[session]] entries in the \
        router configuration; names come from --config (default: the compiled-in \
        config/router.toml, as rfq-router uses) and dealers from --dealers.\n\n\
        Exit status: 0 fine, 1 problems found (verify; damaged places skipped by other \
        commands; scores differing from the table), 2 error (missing path, empty \
        directory, not a journal, bad arguments), 3 only a torn tail found (verify)."
)]
pub struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print records, one per line: human-readable, or JSON lines with --json. Filters by
    /// time, kind, session, message type, dealer and RFQ.
    Cat(CatArgs),
    /// Count records by kind, session and dealer; RFQ outcomes; time span; sizes.
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
    /// Write the RFQs, quotes, executions and TCA results as CSV files for the data
    /// warehouse: rfqs.csv (one row per desk RFQ leg), quotes.csv, executions.csv, tca.csv.
    #[command(after_long_help = export::COLUMNS_HELP)]
    Export(ExportArgs),
    /// Re-run dealer selection on every recorded desk RFQ leg under other rules (--rules)
    /// and under the rules in force (the compiled-in config/rules.toml, or
    /// --baseline-rules), and report per RFQ and in total how panels (dealers added and
    /// removed), dealer counts, protocols and expected cost change.
    #[command(after_long_help = whatif::EXPECTED_COST_HELP)]
    Whatif(WhatifArgs),
    /// Rebuild the dealers' score statistics from the journal (RFQs sent, quotes and their
    /// response times, declines, late or refused quotes, wins with price improvement and
    /// cover, and markouts and drift from TCA records) and print them per dealer; with
    /// --table, diff them against a score-table file and exit 1 on a mismatch.
    Scores(ScoresArgs),
}

#[derive(Args)]
pub struct CatArgs {
    /// Journal directory or segment file.
    pub path: PathBuf,
    /// One JSON object per line instead of text: seq, ts_ns, time, kind, segment, offset;
    /// for FIX records session, direction, session_name, dealer, msg_type, rfq (the
    /// router's id of the leg, when the message names one) and text (the raw frame).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args)]
pub struct StatsArgs {
    /// Journal directory or segment file.
    pub path: PathBuf,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Journal directory or segment file.
    pub path: PathBuf,
    /// Directory to write the CSV files into (created if needed).
    #[arg(long, value_name = "DIR")]
    pub csv: PathBuf,
    /// Only records at or after this time (YYYYMMDD-HH:MM:SS[.fff] UTC, or ns).
    #[arg(long, value_parser = common::parse_time, value_name = "TIME")]
    pub from: Option<rfq_router::time::Nanos>,
    /// Only records before this time.
    #[arg(long, value_parser = common::parse_time, value_name = "TIME")]
    pub to: Option<rfq_router::time::Nanos>,
}

#[derive(Args)]
pub struct WhatifArgs {
    /// Journal directory or segment file.
    pub path: PathBuf,
    /// The rules to try (rules.toml format).
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,
    /// The rules to compare against. Default: the compiled-in config/rules.toml (the
    /// shipped rules, what `rfq-router` runs without --rules).
    #[arg(long, value_name = "FILE")]
    pub baseline_rules: Option<PathBuf>,
    /// Security master. Default: the compiled-in config/instruments.csv.
    #[arg(long, value_name = "FILE")]
    pub instruments: Option<PathBuf>,
    /// Score tables (read-only) for the dealers' scores. Default: neutral priors.
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,
    /// Print only the RFQs whose panel, protocol or refusal changes (totals cover all).
    #[arg(long)]
    pub changed_only: bool,
    /// Only RFQs at or after this time (YYYYMMDD-HH:MM:SS[.fff] UTC, or ns).
    #[arg(long, value_parser = common::parse_time, value_name = "TIME")]
    pub from: Option<rfq_router::time::Nanos>,
    /// Only RFQs before this time.
    #[arg(long, value_parser = common::parse_time, value_name = "TIME")]
    pub to: Option<rfq_router::time::Nanos>,
}

#[derive(Args)]
pub struct ScoresArgs {
    /// Journal directory or segment file.
    pub path: PathBuf,
    /// Rebuild from the records up to this time and show the scores as of it
    /// (YYYYMMDD-HH:MM:SS[.fff] UTC, or ns). Default: the journal's last record.
    #[arg(long, value_parser = common::parse_time, value_name = "TIME")]
    pub at: Option<rfq_router::time::Nanos>,
    /// Score table to compare with (src/select/TABLE_FORMAT.md; opened read-only). Every
    /// row is compared both ways at --at; exit 1 when any differs beyond --tolerance.
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Relative tolerance of the comparison: |a - b| <= tol * (1 + max(|a|, |b|)).
    #[arg(long, default_value_t = 1e-3, value_name = "X")]
    pub tolerance: f64,
    /// Rules whose [pretrade] settings place orders in size segments. Default: the
    /// compiled-in config/rules.toml.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Security master (segments by issuer, sector, rating, maturity). Default: the
    /// compiled-in config/instruments.csv.
    #[arg(long, value_name = "FILE")]
    pub instruments: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Journal directory or segment file.
    pub path: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = (|| match &cli.command {
        Command::Cat(a) => cat::run(a, &common::load_names(&cli.config)?),
        Command::Stats(a) => stats::run(a, &common::load_names(&cli.config)?),
        Command::Verify(a) => verify::run(a),
        Command::Replay(a) => replay::run(
            a,
            cli.config.config.as_deref(),
            cli.config.dealer_db.as_deref(),
        ),
        Command::Export(a) => export::run(a, &common::load_names(&cli.config)?),
        Command::Whatif(a) => whatif::run(a, &cli.config),
        Command::Scores(a) => scores::run(a, &cli.config),
    })();
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
