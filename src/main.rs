//! `rfq-router`: the router binary.
//!
//! Owns the command line: loading and checking the configuration (`config/router.toml` and
//! `config/dealers.toml`, `config/rules.toml`, `config/instruments.csv`, or the copies
//! compiled in), recommending a panel for one order (`recommend`), starting the engine thread (network
//! loop, FIX sessions, RFQ engine) and the admin thread, reporting, and reading a running
//! router's metrics (`stats`). Errors are reported with `anyhow` and a
//! non-zero exit; a bad configuration is refused before anything starts. It holds no router
//! logic of its own.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rfq_router::admin::{AdminContext, PanelRecommender};
use rfq_router::config::{Config, Role};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn_prepared, RunningHost, SpawnOptions};
use rfq_router::inbox::inbox;
use rfq_router::journal::resume::{Restart, RestartPolicy};
use rfq_router::journal::run_files::RunPaths;
use rfq_router::journal::store::{JournalStoreLimits, SessionStore};
use rfq_router::journal::tap::{journal_config, JournalTap};
use rfq_router::journal::Journal;
use rfq_router::journal::{CorruptionPolicy, JournalError};
use rfq_router::metrics::{exposition, snapshot_channel};
use rfq_router::mid_replay::{spawn_mid_replay, MidReplay, MidsCsv};
use rfq_router::net::NetSettings;
use rfq_router::pinning::started_threads;
use rfq_router::rfq::types::{FixId, Side};
use rfq_router::router::RouterApp;
use rfq_router::scoring::{fact_queue, spawn_scoring, ScoringThread};
use rfq_router::select::follow::follow_rules;
use rfq_router::select::instruments::Date;
use rfq_router::select::rows::{capacity_for, snapshot as score_snapshot, RowScores};
use rfq_router::select::rules::RulesWatcher;
use rfq_router::select::scored::{
    load_instruments, load_rules, AnyScores, NeutralScores, ScoredPanel, TableScores,
};
use rfq_router::select::table::{ScoreReader, ScoreWriter, TableParams};
use rfq_router::select::tca::Tca;
use rfq_router::select::{Panel, RfqSpec};
use rfq_router::time::Nanos;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "rfq-router",
    version,
    about = "An RFQ router for fixed-income desks: FIX 4.4 in, a tailored dealer panel out."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Clone)]
struct ConfigArgs {
    /// Router configuration (sessions, limits, RFQ settings). Default: the copy of
    /// config/router.toml compiled into the binary.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Dealer database. Default: the copy of config/dealers.toml compiled into the binary.
    #[arg(long, value_name = "FILE")]
    dealers: Option<PathBuf>,
}

/// The selection files: rules, security master, score tables.
#[derive(clap::Args, Clone, Default)]
struct SelectionArgs {
    /// Dealer-selection rules. Default: the copy of config/rules.toml compiled into the binary
    /// (`run` reloads a FILE on SIGHUP and when it changes; the compiled-in copy never).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Security master. Default: the copy of config/instruments.csv compiled into the binary.
    #[arg(long, value_name = "FILE")]
    instruments: Option<PathBuf>,
    /// Score tables. `run` writes them (created if absent, sized by `[scoring]`); the other
    /// commands read them. Default: `[scoring] scores` in the configuration, else none (every
    /// dealer gets the neutral prior scores).
    #[arg(long, value_name = "FILE")]
    scores: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum IdSourceArg {
    Isin,
    Cusip,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum SideArg {
    Buy,
    Sell,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router (the default when no command is given).
    ///
    /// Rules: with `--rules FILE` they are reloaded without a restart on SIGHUP and whenever
    /// FILE changes (a bad file is refused with file:line:column and the rules in force stay;
    /// the admin's /api/recommend switches once the engine has installed the new rules).
    /// Without `--rules` the router runs the compiled-in copy of config/rules.toml, which
    /// cannot be reloaded: SIGHUP is noted and ignored; restart with `--rules FILE` to change
    /// the rules.
    Run {
        #[command(flatten)]
        files: ConfigArgs,
        #[command(flatten)]
        selection: SelectionArgs,
        /// Print a status line every this many seconds (0: never).
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        status_every_s: u64,
        /// Journal directory (default: `[journal] dir` of the configuration, "journal").
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// Start even if the journal is corrupt in the middle: cut it at the first bad byte
        /// (the cut bytes are saved beside the segment, later segments renamed aside).
        #[arg(long)]
        truncate_corrupt: bool,
        /// Replay market mids from this CSV on time, as a feed session's 35=W would give them
        /// (header: time, instrument, and mid or bid and ask; see config/mids.csv). Default:
        /// `[market_data] csv`. Every row is checked first: an error names file:line.
        #[arg(long, value_name = "FILE")]
        mids: Option<PathBuf>,
    },
    /// Check the configuration files and print what they describe; exit non-zero on error.
    CheckConfig {
        #[command(flatten)]
        files: ConfigArgs,
        #[command(flatten)]
        selection: SelectionArgs,
    },
    /// Run the simulated dealer market against the router: the selection-quality table
    /// (dynamic vs static list, broadcast, random, oracle), the dealer scorecard and latency,
    /// in process and over loopback FIX.
    Demo(rfq_router::sim::demo::DemoArgs),
    /// Recommend a dealer panel for an order, with the rationale, before anything is sent.
    /// Every dealer counts as online.
    Recommend {
        /// ISIN or CUSIP.
        #[arg(long, value_name = "ID")]
        instrument: String,
        /// Which kind of identifier (default: either).
        #[arg(long, value_enum)]
        id_source: Option<IdSourceArg>,
        #[arg(long, value_enum)]
        side: SideArg,
        /// Face amount.
        #[arg(long, value_name = "N")]
        qty: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Evaluate as of this date (YYYY-MM-DD, noon UTC). Default: now.
        #[arg(long, value_name = "DATE")]
        as_of: Option<String>,
        #[command(flatten)]
        files: ConfigArgs,
        #[command(flatten)]
        selection: SelectionArgs,
    },
    /// Print a running router's metrics: stage latency percentiles, queue depths, counters.
    Stats {
        /// The router's admin address (`[admin] listen`).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9880")]
        admin: std::net::SocketAddr,
        /// Print the raw Prometheus text instead of the table.
        #[arg(long)]
        raw: bool,
    },
}

fn load(files: &ConfigArgs) -> Result<(Config, Dealers)> {
    let config = match &files.config {
        Some(p) => Config::load(p)?,
        None => Config::embedded()?,
    };
    let dealers = match &files.dealers {
        Some(p) => Dealers::load(p, &config)?,
        None => Dealers::embedded(&config)?,
    };
    Ok((config, dealers))
}

fn describe(config: &Config, dealers: &Dealers) {
    println!("sessions:");
    for (i, s) in config.sessions.iter().enumerate() {
        let what = if config.rfq.desk_sessions.contains(&i) {
            "desk".to_string()
        } else if config.rfq.feed_sessions.contains(&i) {
            "market-data feed".to_string()
        } else if let Some(d) = dealers.dealers.iter().find(|d| d.session == i) {
            format!("dealer {:?} (tier {})", d.name, d.tier)
        } else {
            "unused".to_string()
        };
        let (verb, role) = match s.role {
            Role::Acceptor => ("listens on", "acceptor"),
            Role::Initiator => ("connects to", "initiator"),
        };
        println!(
            "  {:<12} {role:<9} {verb} {:<21} {}->{}  {what}",
            s.name, s.addr, s.sender_comp_id, s.target_comp_id
        );
    }
    let p = &config.rfq.protocol;
    println!(
        "default protocol: {:?}, up to {} dealers, {} ms per dealer, RFQ expiry {} ms",
        p.kind, p.max_dealers, p.response_timeout_ms, p.rfq_expiry_ms
    );
}

fn now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    )
}

/// Loads rules, security master and score tables into the selector; any bad file refuses.
/// The score tables are read-only here: `--scores`, else `[scoring] scores` if that file
/// exists.
fn scored_panel(
    selection: &SelectionArgs,
    dealers: &Dealers,
    config: &Config,
) -> Result<ScoredPanel<AnyScores>> {
    let rules = load_rules(selection.rules.as_deref())?;
    let master = load_instruments(selection.instruments.as_deref())?;
    let path = selection
        .scores
        .clone()
        .or_else(|| config.scoring.scores.clone().filter(|p| p.exists()));
    let source = match &path {
        Some(p) => AnyScores::Table(TableScores::new(
            ScoreReader::open_read_only(p)?,
            config.scoring.model.clone(),
        )),
        None => AnyScores::Neutral(NeutralScores),
    };
    Ok(ScoredPanel::new(rules, master, dealers, source))
}

fn describe_selection(panel: &ScoredPanel<AnyScores>) {
    let rules = panel.rules();
    println!(
        "selection: {} rules from {} (version {}), {} instruments",
        rules.rules().len(),
        rules.path().display(),
        rules.version(),
        panel.master().len()
    );
}

/// `rfq-router recommend`: the panel and its rationale for one order.
#[allow(clippy::too_many_arguments)]
fn recommend(
    instrument: &str,
    id_source: Option<IdSourceArg>,
    side: SideArg,
    qty: f64,
    json: bool,
    as_of: Option<&str>,
    files: &ConfigArgs,
    selection: &SelectionArgs,
) -> Result<()> {
    let (config, dealers) = load(files)?;
    let panel = scored_panel(selection, &dealers, &config)?;
    let at = match as_of {
        Some(d) => {
            let day =
                Date::parse(d).with_context(|| format!("--as-of {d:?}: expected YYYY-MM-DD"))?;
            Nanos(u64::try_from(day.0).unwrap_or(0) * 86_400_000_000_000 + 43_200_000_000_000)
        }
        None => now(),
    };
    let id = FixId::new(instrument.as_bytes())
        .with_context(|| format!("--instrument {instrument:?}: longer than 40 bytes"))?;
    let source = FixId::new(match id_source {
        Some(IdSourceArg::Cusip) => b"1",
        Some(IdSourceArg::Isin) => b"4",
        None => b"",
    })
    .unwrap_or(FixId::EMPTY);
    anyhow::ensure!(qty.is_finite() && qty > 0.0, "--qty must be positive");
    let spec = RfqSpec {
        instrument: &id,
        id_source: &source,
        side: Some(match side {
            SideArg::Buy => Side::Buy,
            SideArg::Sell => Side::Sell,
        }),
        qty,
        now: at,
    };
    let candidates = dealers.candidates_all_online();
    let rec = panel
        .recommend(&spec, &candidates)
        .map_err(|r| anyhow::anyhow!("{}: {instrument}", r.text))?;
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&rec)?)?;
    } else {
        write!(stdout, "{rec}")?;
    }
    Ok(())
}

/// Opens the journal, reports what recovery found, and writes the run's first record (the
/// files the engine is built from) with the engine's start time.
fn open_journal(
    config: &Config,
    dir: Option<PathBuf>,
    paths: &RunPaths,
    start: Nanos,
    truncate_corrupt: bool,
) -> Result<(JournalTap, Restart)> {
    let max_message = config
        .sessions
        .iter()
        .map(|s| s.limits.max_message_bytes as usize)
        .max()
        .unwrap_or(65_536);
    let mut jc = journal_config(&config.journal, dir, max_message, config.router.journal_cpu);
    let shown = jc.dir.display().to_string();
    let journal_dir = jc.dir.clone();
    if truncate_corrupt {
        jc.on_corruption = CorruptionPolicy::TruncateThere;
    }
    let (journal, report) = Journal::open(jc)
        .map_err(|e| match e {
            JournalError::Corrupt { .. } | JournalError::BadHeader { .. } => anyhow::anyhow!(
                "{e}\nthe journal is damaged before its end; refusing to start. Inspect it \
                 with `rfq-journal verify {shown}`, or start with --truncate-corrupt to cut it \
                 there (the cut bytes are kept beside the segment)"
            ),
            other => anyhow::Error::new(other),
        })
        .with_context(|| format!("opening the journal in {shown}"))?;
    for event in &report.events {
        eprintln!("rfq-router: journal {shown}: {event}");
    }
    println!(
        "journal: {shown}, durability {:?}, next record {}",
        config.journal.durability, report.next_seq
    );
    let files = paths
        .identify()
        .context("reading the configuration files for the journal")?;
    let entries: Vec<_> = files.iter().map(|f| f.as_run_file()).collect();
    // Read back what earlier runs left: sequence numbers, sent frames, open RFQs.
    let limits = JournalStoreLimits {
        recent_frames: config.journal.store_recent_frames,
        max_indexed_messages: config.journal.store_max_indexed,
        max_message_bytes: max_message,
        ..JournalStoreLimits::default()
    };
    let desks: Vec<u16> = config.rfq.desk_sessions.iter().map(|&i| i as u16).collect();
    let policy = match config.journal.open_rfqs_on_restart {
        rfq_router::config::RestartPolicySetting::Expire => RestartPolicy::Expire,
    };
    let restart = Restart::prepare(
        &journal_dir,
        limits,
        Some(journal.metrics_handle()),
        config.sessions.len(),
        &desks,
        policy,
    )
    .with_context(|| format!("reading the journal in {shown} back"))?;
    let names: Vec<String> = config.sessions.iter().map(|s| s.name.clone()).collect();
    for line in restart.describe(&names) {
        println!("restart: {line}");
    }
    let mut tap = JournalTap::new(journal, config.sessions.len());
    tap.set_write_ahead(config.journal.write_ahead);
    tap.run_start(start, &entries)
        .map_err(|e| anyhow::anyhow!("journal {shown}: writing the run's first record: {e}"))?;
    if restart.scan.last_rfq_seq > 0 {
        // Journaled as an input so that a replay numbers this run's RFQs the same way.
        tap.input(
            start,
            &rfq_router::journal::records::EngineInput::ResumeNumbering {
                last_rfq_seq: restart.scan.last_rfq_seq,
            },
        );
    }
    Ok((tap, restart))
}

/// Restart: the score tables' dealer statistics against the score rows the journal holds
/// (`journal::score_check`); differing rows are logged and, under `rebuild`, rewritten from
/// the journal. No journal yet, or one without score rows: nothing to check.
fn check_scores(
    dir: &Path,
    writer: &mut ScoreWriter,
    policy: rfq_router::config::ScoresOnRestart,
) -> Result<()> {
    use rfq_router::journal::score_check::{describe_diff, journal_rows, rebuild, verify};
    if !dir.exists() {
        return Ok(());
    }
    let rows = match journal_rows(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rfq-router: score tables not checked: the journal cannot be read: {e}");
            return Ok(());
        }
    };
    if rows.other_format_rows > 0 {
        println!(
            "score tables: {} journaled score rows are in an older score-table format (an \
             older build's); not compared, not restored",
            rows.other_format_rows
        );
    }
    if rows.inputs == 0 {
        println!("score tables: the journal holds no score rows to check them against");
        return Ok(());
    }
    let check = verify(&rows, &writer.reader());
    if check.is_match() {
        println!(
            "score tables: verified against the journal: {} rows match ({} journaled score \
             inputs; {} table rows not in the journal)",
            check.matching, rows.inputs, check.table_only
        );
        return Ok(());
    }
    eprintln!(
        "rfq-router: score tables differ from the journal in {} of {} rows:",
        check.differing_total, check.checked
    );
    for d in &check.differing {
        eprintln!("rfq-router:   {}", describe_diff(d));
    }
    if check.differing_total > check.differing.len() {
        eprintln!(
            "rfq-router:   ... and {} more",
            check.differing_total - check.differing.len()
        );
    }
    match policy {
        rfq_router::config::ScoresOnRestart::Rebuild => {
            let n = rebuild(&rows, writer).context("rebuilding the score tables")?;
            println!("score tables: {n} rows rebuilt from the journal ([journal] scores_on_restart = \"rebuild\")");
        }
        rfq_router::config::ScoresOnRestart::Verify => {
            println!("score tables: kept as they are ([journal] scores_on_restart = \"verify\")")
        }
    }
    Ok(())
}

fn run(
    files: &ConfigArgs,
    selection: &SelectionArgs,
    status_every_s: u64,
    journal_dir: Option<PathBuf>,
    truncate_corrupt: bool,
    mids: Option<PathBuf>,
) -> Result<()> {
    let (config, dealers) = load(files)?;
    anyhow::ensure!(
        config.simulation == rfq_router::config::SimulationSettings::default(),
        "[simulation] is for the demo's loopback router (rfq-router demo --journal writes it); \
         remove it to run the router"
    );
    describe(&config, &dealers);
    let sc = &config.scoring;
    // The score tables: this process is their one writer (the scoring thread).
    let scores_path = selection.scores.clone().or_else(|| sc.scores.clone());
    let writer = match &scores_path {
        Some(p) => {
            anyhow::ensure!(
                dealers.dealers.len() <= sc.dealers_capacity as usize,
                "[scoring] dealers_capacity = {} is below the {} dealers configured",
                sc.dealers_capacity,
                dealers.dealers.len()
            );
            let params = TableParams::new(sc.dealers_capacity, sc.segments_per_dealer, &sc.model);
            Some(ScoreWriter::open_or_create(p, params, now())?)
        }
        None => None,
    };
    // The engine scores from its own copy of the rows: the snapshot below, then the rows
    // each score update carries (journaled as its inputs: replay is exact).
    let source = AnyScores::Rows(RowScores::new(
        sc.model.clone(),
        capacity_for(sc.dealers_capacity, sc.segments_per_dealer),
    ));
    let mut panel = ScoredPanel::new(
        load_rules(selection.rules.as_deref())?,
        load_instruments(selection.instruments.as_deref())?,
        &dealers,
        source,
    );
    panel.configure(
        sc.cache_paths,
        Nanos::from_secs(sc.cache_refresh_s),
        Nanos::from_secs(sc.max_mid_age_s),
    );
    describe_selection(&panel);
    // Market data replayed from a CSV: every row checked before anything starts.
    let md = &config.market_data;
    let mids = match mids.or_else(|| md.csv.clone()) {
        Some(p) => {
            let m = MidsCsv::load(&p, panel.master(), md.max_rows)
                .context("checking the market-data CSV")?;
            println!(
                "market data: {} mids from {}, replayed at speed {} from {} s into the file",
                m.rows().len(),
                p.display(),
                md.speed,
                md.start_offset_s
            );
            Some(m)
        }
        None => None,
    };
    match &scores_path {
        Some(p) => println!(
            "score tables: {} (written by the scoring thread)",
            p.display()
        ),
        None => println!("score tables: none (neutral scores; TCA is journaled only)"),
    }
    // Rules reload on SIGHUP and on file change, when the rules come from a file.
    let hup_ignored = Arc::new(AtomicBool::new(false));
    let mut follower = None;
    let watcher = match &selection.rules {
        Some(_) => {
            let mut w = RulesWatcher::new(panel.rules());
            // The admin's recommender switches when (and only if) the engine installs.
            let (stage, installed, f) = follow_rules(panel.rules().version().seq);
            w.stage_for_followers(stage);
            follower = Some((installed, f));
            w.listen_for_sighup()
                .context("installing the SIGHUP handler")?;
            println!(
                "rules: reloaded on SIGHUP and when {} changes",
                w.path().display()
            );
            Some(w)
        }
        None => {
            // Nothing to reload: SIGHUP must not end the router (its default action). It is
            // noted on stdout and ignored.
            signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup_ignored))
                .context("installing the SIGHUP handler")?;
            println!(
                "rules: the compiled-in copy (SIGHUP is ignored; run with --rules FILE to \
                 reload without a restart)"
            );
            None
        }
    };
    let tca = Tca::new(sc.tca_config(panel.master().len()));
    let (facts_tx, facts_rx) = fact_queue(sc.queue_capacity);
    let (mut to_engine, from_scoring) = inbox(sc.inbox_capacity, None);
    let start = now();
    let paths = RunPaths {
        config: files.config.clone(),
        dealers: files.dealers.clone(),
        rules: selection.rules.clone(),
        instruments: selection.instruments.clone(),
        scores: selection.scores.clone(),
    };
    let mut writer = writer;
    if let Some(w) = writer.as_mut() {
        let dir = journal_dir
            .clone()
            .unwrap_or_else(|| config.journal.dir.clone());
        check_scores(&dir, w, config.journal.scores_on_restart)?;
    }
    let (tap, restart) = open_journal(&config, journal_dir, &paths, start, truncate_corrupt)?;
    let journal_metrics = tap.journal().metrics_handle();
    let tap_counters = tap.counters_handle();
    let (mut snapshots, snapshot_server) = snapshot_channel(4, None);
    let admin_rules = panel.rules().clone();
    let mut app = RouterApp::from_config(&config, &dealers, panel, start)
        .with_feedback(Some(facts_tx), Some(from_scoring))
        .with_admin(snapshot_server);
    let follower = match follower {
        Some((installed, f)) => {
            app = app.with_installed_rules(installed);
            Some(f)
        }
        None => None,
    };
    app.resume(restart.scan.last_rfq_seq, restart.notices());
    let mut tap = tap;
    let snapshot = writer
        .as_ref()
        .map(|w| score_snapshot(&w.reader()))
        .unwrap_or_default();
    if !snapshot.is_empty() {
        println!(
            "score tables: {} rows loaded into the engine",
            snapshot.len()
        );
    }
    app.load_score_snapshot(start, snapshot, Some(&mut tap));
    let router = spawn_prepared(
        SpawnOptions {
            name: "engine".to_string(),
            cpu: config.router.engine_cpu,
        },
        NetSettings::from_config(&config),
        sessions_from_config(&config),
        config.limits.max_pending_logon as usize,
        Arc::new(Validator::fix44()),
        app,
        Some(tap),
        |host| {
            // Every session resumes where the journal left it and resends from it.
            for i in 0..restart.sessions.len() {
                host.set_store(i, SessionStore::Journal(restart.store(i, start)));
            }
        },
    )
    .context("starting the engine thread")?;
    to_engine.set_wake(router.handle.clone());
    let mids_to_engine = to_engine.clone();
    let scoring = spawn_scoring(
        ScoringThread {
            tca,
            writer,
            model: sc.model.clone(),
            watcher,
            to_engine,
            rules_poll: Duration::from_millis(sc.rules_poll_ms),
            flush_every: Duration::from_secs(sc.flush_every_s),
        },
        facts_rx,
        config.router.scoring_cpu,
    )
    .context("starting the scoring thread")?;
    let mid_replay = match mids {
        Some(m) => Some(
            spawn_mid_replay(
                MidReplay {
                    rows: m.into_rows(),
                    speed: md.speed,
                    start_offset_s: md.start_offset_s,
                    to_engine: mids_to_engine,
                    // A quarter of the inbox stays free for the scoring thread's reports.
                    inbox_reserve: sc.inbox_capacity / 4,
                },
                md.cpu,
            )
            .context("starting the market-data replay thread")?,
        ),
        None => None,
    };
    snapshots.set_wake(router.handle.clone());
    let _admin = match config.admin.listen {
        Some(listen) => {
            // The engine's rules as they were loaded (not the file read again: it may have
            // changed since), followed through reloads.
            let mut admin_panel = scored_panel(selection, &dealers, &config)?;
            let _ = admin_panel.install_rules(Box::new(admin_rules));
            let mut recommender = PanelRecommender::new(admin_panel, &dealers);
            if let Some(f) = follower {
                recommender = recommender.following(f);
            }
            let admin = rfq_router::admin::spawn(
                listen,
                &config.admin,
                config.router.admin_cpu,
                AdminContext {
                    snapshots,
                    net: Some(router.handle.clone()),
                    journal: Some(journal_metrics.clone()),
                    recommender: Some(Box::new(recommender)),
                },
            )
            .with_context(|| format!("starting the admin thread on {listen}"))?;
            println!(
                "admin: http://{}/metrics, /api/recommend, /healthz",
                admin.local_addr
            );
            Some(admin)
        }
        None => {
            println!("admin: off ([admin] listen = \"\")");
            None
        }
    };
    report_threads(&config, &router);
    // Ctrl-C or SIGTERM stops the router cleanly: the engine thread ends and the journal is
    // drained and synced. A second Ctrl-C exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .context("installing the signal handlers")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    println!("router running (Ctrl-C to stop)");
    let mut refusals_seen = 0;
    let status_every = Duration::from_secs(status_every_s);
    let mut next_status = Instant::now() + status_every;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if hup_ignored.swap(false, Ordering::Relaxed) {
            println!("SIGHUP: no rules file to reload (the compiled-in rules stay in force)");
        }
        if status_every_s == 0 || Instant::now() < next_status {
            continue;
        }
        next_status += status_every;
        let c = router.handle.counters();
        let s = &scoring.counters;
        let refusals = s.rules_refused.load(Ordering::Acquire);
        if refusals != refusals_seen {
            refusals_seen = refusals;
            if let Some(why) = s.last_refusal.lock().ok().and_then(|l| l.clone()) {
                eprintln!("rfq-router: rules reload refused, the rules in force stay: {why}");
            }
        }
        let j = journal_metrics.snapshot();
        let t = tap_counters.snapshot();
        println!(
            "status: connections accepted {} connected {} closed {} | bytes in {} out {} | \
             journal written {} durable {} queue {}/{} full {} failed appends {} fills held {} | \
             scoring: facts {} updates {} executions {} rules reloaded {} refused {}",
            c.accepted,
            c.connected,
            c.closed,
            c.bytes_in,
            c.bytes_out,
            j.written_seq,
            j.durable_seq,
            j.queue_len,
            j.queue_capacity,
            j.queue_full_events,
            t.append_failures,
            t.executions_held,
            s.facts.load(Ordering::Relaxed),
            s.updates_applied.load(Ordering::Relaxed),
            s.executions.load(Ordering::Relaxed),
            s.rules_reloaded.load(Ordering::Relaxed),
            s.rules_refused.load(Ordering::Relaxed),
        );
        if let Some(r) = &mid_replay {
            let c = &r.counters;
            println!(
                "status: market data replay: {} mids sent{}, {} waits on a full inbox",
                c.rows_sent.load(Ordering::Acquire),
                if c.finished.load(Ordering::Acquire) {
                    " (done)"
                } else {
                    ""
                },
                c.inbox_full_waits.load(Ordering::Relaxed)
            );
        }
        if t.append_failures > 0 {
            eprintln!(
                "rfq-router: warning: {} journal appends failed: records are missing from the \
                 journal",
                t.append_failures
            );
        }
    }
    println!("stopping");
    if let Some(r) = mid_replay {
        r.stop();
    }
    router
        .stop()
        .context("stopping the engine thread and closing the journal")?;
    let j = journal_metrics.snapshot();
    println!(
        "journal closed: {} records appended, {} written, last durable {}, queue full {} \
         times ({} ms waited)",
        j.appended_records,
        j.written_records,
        j.durable_seq,
        j.queue_full_events,
        j.backpressure_wait_ns / 1_000_000
    );
    Ok(())
}

/// Says how each router thread was placed; a CPU that could not be used is warned about once.
fn report_threads(config: &Config, router: &RunningHost) {
    println!(
        "thread engine: {}, idle = {:?}",
        router.pinning, config.router.idle
    );
    if let Some(warning) = router.pinning.warning("engine") {
        eprintln!("rfq-router: {warning}");
    }
    // Threads started through pinning::spawn_pinned (admin, journal, scoring) warned about
    // an unusable CPU themselves; here each says where it runs.
    for (name, pinning) in started_threads() {
        println!("thread {name}: {pinning}");
    }
}

/// `rfq-router stats`: a running router's metrics as a table.
fn stats(admin: std::net::SocketAddr, raw: bool) -> Result<()> {
    let (status, body) = rfq_router::admin::get(admin, "/metrics", Duration::from_secs(5))
        .with_context(|| format!("GET http://{admin}/metrics"))?;
    anyhow::ensure!(
        status == 200,
        "GET http://{admin}/metrics: {status} {}",
        body.trim()
    );
    if raw {
        print!("{body}");
        return Ok(());
    }
    let samples = exposition::parse(&body).context("parsing /metrics")?;
    print!("{}", exposition::stats_table(&samples));
    Ok(())
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rfq-router: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run {
        files: ConfigArgs {
            config: None,
            dealers: None,
        },
        selection: SelectionArgs::default(),
        status_every_s: 10,
        journal: None,
        truncate_corrupt: false,
        mids: None,
    }) {
        Command::Run {
            files,
            selection,
            status_every_s,
            journal,
            truncate_corrupt,
            mids,
        } => run(
            &files,
            &selection,
            status_every_s,
            journal,
            truncate_corrupt,
            mids,
        ),
        Command::Demo(args) => demo(&args),
        Command::CheckConfig { files, selection } => {
            let (config, dealers) = load(&files)?;
            describe(&config, &dealers);
            let panel = scored_panel(&selection, &dealers, &config)?;
            describe_selection(&panel);
            if let Some(p) = &config.market_data.csv {
                let m = MidsCsv::load(p, panel.master(), config.market_data.max_rows)
                    .context("checking the market-data CSV")?;
                println!("market data: {} mids in {}", m.rows().len(), p.display());
            }
            println!("configuration OK");
            Ok(())
        }
        Command::Recommend {
            instrument,
            id_source,
            side,
            qty,
            json,
            as_of,
            files,
            selection,
        } => recommend(
            &instrument,
            id_source,
            side,
            qty,
            json,
            as_of.as_deref(),
            &files,
            &selection,
        ),
        Command::Stats { admin, raw } => stats(admin, raw),
    }
}

/// `rfq-router demo`: the simulated market with a progress bar, then the report.
fn demo(args: &rfq_router::sim::demo::DemoArgs) -> Result<()> {
    let opts = args.options().map_err(anyhow::Error::msg)?;
    rfq_router::sim::demo::run_cli(&opts, args.json).map_err(|e| anyhow::anyhow!("demo: {e}"))
}
