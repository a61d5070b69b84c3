//! `rfq-journal replay`: re-run the engine from a journal and check it reproduces the run.
//!
//! Owns the command's arguments and presentation: which files to build the engine from (the
//! ones each run recorded, or the ones given), refusing files whose content differs from what
//! the run recorded unless told to go on, the progress bar, and the exit status. The replay
//! itself is `rfq_router::journal::replay`; building the engine is what `rfq-router run`
//! does (`router::engine_config`, `ScoredPanel` over rules, security master and scores).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::ProgressBar;

use rfq_router::config::Config;
use rfq_router::dealers::Dealers;
use rfq_router::journal::records::FileRole;
use rfq_router::journal::records::RunStart;
use rfq_router::journal::replay::{replay, ReplayError};
use rfq_router::journal::run_files::{mismatches, FileIdentity, RunPaths};
use rfq_router::journal::JournalReader;
use rfq_router::rfq::engine::Engine;
use rfq_router::router;
use rfq_router::select::rows::{capacity_for, RowScores};
use rfq_router::select::scored::{
    load_instruments, load_rules, AnyScores, ScoredPanel, TableScores,
};
use rfq_router::select::table::ScoreReader;
use rfq_router::sim::loopback::simulated_panel;
use rfq_router::sim::policy::SimulatedPanel;
use rfq_router::time::Nanos;

/// The panel replay builds: `rfq-router run`'s, inside the demo's wrappers (inert unless
/// the run's configuration has a `[simulation]` table).
type ReplayPanel = SimulatedPanel<ScoredPanel<AnyScores>>;

/// Exit status when the replay diverges from the journal.
const EXIT_DIVERGED: u8 = 1;
/// Journals with at least this many bytes get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

#[derive(Args)]
pub struct ReplayArgs {
    /// Journal directory or segment file.
    pub path: PathBuf,
    /// Selection rules (default: as recorded).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Security master (default: as recorded).
    #[arg(long, value_name = "FILE")]
    pub instruments: Option<PathBuf>,
    /// Score tables to score from instead of the journal's score rows: only for journals
    /// written before score rows were engine inputs (format version 2). By default the
    /// journal's own rows are used and the tables are not read.
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,
    /// Go on (with a warning) when a file's content differs from what the run recorded;
    /// without it such a replay is refused.
    #[arg(long)]
    pub allow_mismatch: bool,
}

/// The files for one run: recorded paths, overridden by the command line.
fn paths_for(a: &ReplayArgs, given: &Given<'_>, start: &RunStart<'_>) -> RunPaths {
    let recorded = RunPaths::from_run_start(start);
    RunPaths {
        config: given.config.map(Path::to_path_buf).or(recorded.config),
        dealers: given.dealers.map(Path::to_path_buf).or(recorded.dealers),
        rules: a.rules.clone().or(recorded.rules),
        instruments: a.instruments.clone().or(recorded.instruments),
        // Only given tables are read (see `build_engine`).
        scores: a.scores.clone(),
    }
}

/// The router configuration and dealer database given on the command line.
struct Given<'a> {
    config: Option<&'a Path>,
    dealers: Option<&'a Path>,
}

fn build_engine(
    a: &ReplayArgs,
    given: &Given<'_>,
    start: &RunStart<'_>,
    now: rfq_router::time::Nanos,
    seq: u64,
) -> Result<Engine<ReplayPanel>> {
    let paths = paths_for(a, given, start);
    let recorded: Vec<FileIdentity> = start
        .files
        .iter()
        .map(FileIdentity::from_run_file)
        .collect();
    let current = paths.identify()?;
    // Score rows are engine inputs in the journal (since format version 3): the table as it
    // is now need not be what the run started from, and is not read unless --scores is given.
    let mut differ = mismatches(&recorded, &current);
    if a.scores.is_none() {
        differ.retain(|m| m.role != FileRole::Scores);
    }
    if !differ.is_empty() {
        let list: Vec<String> = differ.iter().map(|m| format!("  {m}")).collect();
        if !a.allow_mismatch {
            anyhow::bail!(
                "the run starting at record {seq} used other files than this replay would:\n{}\n\
                 (give the run's files with --config/--dealers/--rules/--instruments/--scores, \
                 or --allow-mismatch to replay anyway)",
                list.join("\n")
            );
        }
        eprintln!(
            "rfq-journal: warning: the run starting at record {seq} used other files; replaying \
             anyway (--allow-mismatch):\n{}",
            list.join("\n")
        );
    }
    let config = match &paths.config {
        Some(p) => Config::load(p)?,
        None => Config::embedded()?,
    };
    let dealers = match &paths.dealers {
        Some(p) => Dealers::load(p, &config)?,
        None => Dealers::embedded(&config)?,
    };
    let rules = load_rules(paths.rules.as_deref())?;
    let master = load_instruments(paths.instruments.as_deref())?;
    let sc = &config.scoring;
    let source = match &a.scores {
        // Journals written before score rows were inputs (format version 2): the table.
        Some(p) => AnyScores::Table(TableScores::new(
            ScoreReader::open_read_only(p)?,
            sc.model.clone(),
        )),
        // The rows come from the journal's score-snapshot and score-update inputs.
        None => AnyScores::Rows(RowScores::new(
            sc.model.clone(),
            capacity_for(sc.dealers_capacity, sc.segments_per_dealer),
        )),
    };
    let mut scored = ScoredPanel::new(rules, master, &dealers, source);
    scored.configure(
        sc.cache_paths,
        Nanos::from_secs(sc.cache_refresh_s),
        Nanos::from_secs(sc.max_mid_age_s),
    );
    // The demo's loopback router bends the panel as its `[simulation]` table says; for any
    // other configuration the wrapper changes nothing.
    let panel = simulated_panel(scored, &config.simulation);
    Ok(router::build_engine(&config, &dealers, panel, now))
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    crate::common::labelled_progress_bar(total_bytes, "replay ", PROGRESS_MIN_BYTES)
}

/// Runs `rfq-journal replay`; `config` and `dealers` are the files given on the command line.
pub fn run(a: &ReplayArgs, config: Option<&Path>, dealers: Option<&Path>) -> Result<ExitCode> {
    let given = Given { config, dealers };
    let reader = JournalReader::open(&a.path)?;
    let bar = progress_bar(reader.total_bytes());
    let iter = crate::common::with_progress(reader.records(), bar.clone(), 4096);
    let started = std::time::Instant::now();
    let mut engine_error: Option<anyhow::Error> = None;
    let result = replay(
        iter,
        |start, now, seq| {
            build_engine(a, &given, start, now, seq).map_err(|e| {
                let text = format!("{e:#}");
                engine_error = Some(e);
                text
            })
        },
        |_| {},
    );
    bar.finish_and_clear();
    match result {
        Ok(s) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "replay OK: {} records, {} run(s), {} inputs, {} messages and {} decisions \
                 identical ({:.0} records/s)",
                s.records,
                s.runs,
                s.inputs,
                s.messages_checked,
                s.decisions_checked,
                s.records as f64 / secs.max(1e-9)
            );
            if s.runs_cut_short > 0 {
                println!(
                    "note: {} run(s) end before every output of their last input was recorded \
                     (the router stopped mid-step); what was recorded matched",
                    s.runs_cut_short
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ReplayError::Diverged(d)) => {
            println!("replay DIVERGED at {d}");
            Ok(ExitCode::from(EXIT_DIVERGED))
        }
        Err(ReplayError::Engine { .. }) if engine_error.is_some() => {
            Err(engine_error.unwrap_or_else(|| anyhow::anyhow!("engine")))
                .context("building the engine for replay")
        }
        Err(e) => Err(e.into()),
    }
}
