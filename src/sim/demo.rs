//! The demo behind `rfq-router demo` and `rfq-sim`: the five selection policies over one
//! seeded order flow in process, the scorecard, latency, and the loopback FIX run.
//!
//! Owns the sequence of a demo (build the market, run each policy with the real engine in
//! virtual time, read what the router learned, optionally run the router over loopback TCP)
//! and the report it returns; `render` turns it into text. Only `run_cli`, the one front end
//! both command lines share, prints (progress bars on stderr, the report on stdout); the rest
//! reports through `Progress` and return values. Files are written only under `journal` when given
//! (the loopback run's journal and its files: `loopback::run`).

use super::harness::{run_policy, PolicyResult, World, WorldError};
use super::live::{cost_curve, CostSlice, EngineMetrics, LiveReport, LoopbackScores};
use super::model::{SimConfig, SEGMENTS};
use super::policy::PolicyKind;
use super::report::{
    in_process_latency, latency_table, scorecard, scorecard_table, selection_table, LatencyRow,
    ScoreRow,
};
use crate::select::ProtocolKind;
use serde::Serialize;
use std::fmt::Write;
use std::path::PathBuf;

/// What the demo is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    pub rfqs: usize,
    pub dealers: usize,
    pub seed: u64,
    /// Keep the learned score table and the JSON report here; the loopback router journals
    /// into `journal/` here (replaced), beside the files it was built from.
    pub journal: Option<PathBuf>,
    /// Force every policy's protocol (None: the rules decide for the router, broadcast for
    /// the baselines).
    pub protocol: Option<ProtocolKind>,
    /// Also run the router over loopback TCP.
    pub loopback: bool,
    /// Loopback: RFQs to send (0: none).
    pub loopback_rfqs: usize,
    /// Loopback: the router learns live from an empty table, or reads the in-process table.
    pub loopback_scores: LoopbackScores,
    /// Loopback: virtual seconds per wall-clock second (1..=`loopback::MAX_TIME_COMPRESSION`).
    pub loopback_compression: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            rfqs: 3000,
            dealers: 12,
            seed: 1,
            journal: None,
            protocol: None,
            loopback: true,
            loopback_rfqs: 1000,
            loopback_scores: LoopbackScores::Live,
            loopback_compression: super::loopback::TIME_COMPRESSION,
        }
    }
}

/// Parses `--protocol`: `rules` (None), `broadcast`, `staggered`, `whisper`.
pub fn parse_protocol(s: &str) -> Result<Option<ProtocolKind>, String> {
    match s {
        "rules" => Ok(None),
        "broadcast" => Ok(Some(ProtocolKind::Broadcast)),
        "staggered" => Ok(Some(ProtocolKind::Staggered)),
        "whisper" => Ok(Some(ProtocolKind::Whisper)),
        other => Err(format!(
            "unknown protocol {other:?}: rules, broadcast, staggered or whisper"
        )),
    }
}

/// What a demo is doing, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A stage starts with this many steps.
    Stage { name: &'static str, total: u64 },
    /// Steps done in the current stage.
    Done(u64),
}

/// The loopback run's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopbackReport {
    /// Virtual seconds per wall second.
    pub time_compression: f64,
    pub rfqs: u64,
    /// Where the router's scores came from (live: learned during this run, from nothing).
    pub scores: LoopbackScores,
    pub result: PolicyResult,
    pub wall_s: f64,
    /// Wire latencies measured from the peers' side.
    pub latency: Vec<LatencyRow>,
    /// What the router's own scoring thread learned (live scores only).
    pub live: Option<LiveReport>,
    /// The engine thread's own metrics at the end of the run (what `/metrics` serves).
    pub engine_metrics: Option<EngineMetrics>,
    /// Cost over quarters of the run's orders, beside the in-process policies.
    pub cost_curve: Vec<CostSlice>,
    /// The scorecard as this router learned it (live scores only).
    pub scorecard: Vec<ScoreRow>,
}

/// Everything the demo shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoReport {
    pub market: String,
    pub seed: u64,
    pub protocol: &'static str,
    pub selection: Vec<PolicyResult>,
    pub scorecard: Vec<ScoreRow>,
    pub latency: Vec<LatencyRow>,
    pub loopback: Option<LoopbackReport>,
    /// Where the learned score table and report were kept, if asked.
    pub journal: Option<String>,
}

/// Why a demo failed.
#[derive(Debug)]
pub enum DemoError {
    World(WorldError),
    Run(String),
    Io(std::io::Error),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::World(e) => write!(f, "{e}"),
            DemoError::Run(e) => write!(f, "{e}"),
            DemoError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DemoError {}

/// The simulation configuration a demo's options give.
pub fn config_of(opts: &DemoOptions) -> SimConfig {
    SimConfig {
        seed: opts.seed,
        rfqs: opts.rfqs,
        dealers: opts.dealers,
        ..SimConfig::default()
    }
}

/// The loopback run's cost is shown over this many equal parts of its orders.
pub const COST_SLICES: usize = 4;

/// Removes a temporary file when dropped.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Runs the demo.
pub fn run_demo(
    opts: &DemoOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<DemoReport, DemoError> {
    let world = World::new(config_of(opts)).map_err(DemoError::World)?;
    if let Some(dir) = &opts.journal {
        std::fs::create_dir_all(dir).map_err(DemoError::Io)?;
    }
    let temporary = opts.journal.is_none() && opts.loopback && opts.loopback_rfqs > 0;
    let scores_path = match &opts.journal {
        Some(d) => Some(d.join("scores.tbl")),
        None if temporary => Some(std::env::temp_dir().join(format!(
            "rfq-sim-demo-{}-{}.scores",
            std::process::id(),
            opts.seed
        ))),
        None => None,
    };
    let _cleanup = TempFile(temporary.then(|| scores_path.clone()).flatten());
    if let Some(p) = &scores_path {
        if p.exists() {
            std::fs::remove_file(p).map_err(DemoError::Io)?;
        }
    }
    let mut selection = Vec::new();
    let mut latency = Vec::new();
    for kind in PolicyKind::ALL {
        progress(Progress::Stage {
            name: kind.label(),
            total: opts.rfqs as u64,
        });
        let path = if kind == PolicyKind::Dynamic {
            scores_path.clone()
        } else {
            None
        };
        let out = run_policy(&world, kind, opts.protocol, path, |n| {
            if n % 50 == 0 || n == opts.rfqs {
                progress(Progress::Done(n as u64));
            }
        })
        .map_err(|e| DemoError::Run(e.to_string()))?;
        if out.invalid_messages > 0 {
            return Err(DemoError::Run(format!(
                "{} simulator messages failed FIX validation",
                out.invalid_messages
            )));
        }
        if kind == PolicyKind::Dynamic {
            latency = in_process_latency(&out.timings);
        }
        selection.push(out.result);
    }
    let mut share = [0.0; SEGMENTS];
    for o in world.orders.iter() {
        share[world.bonds[o.bond].segment] += 1.0 / world.orders.len() as f64;
    }
    let dynamic = &selection[0];
    let card = scorecard(&world.dealers, &share, dynamic, &dynamic.learned);
    let loopback = if opts.loopback && opts.loopback_rfqs > 0 {
        let mut l = super::loopback::run(&world, opts, scores_path.as_deref(), progress)
            .map_err(|e| DemoError::Run(format!("loopback: {e}")))?;
        l.cost_curve = cost_curve(&l.result, &selection, COST_SLICES);
        if let Some(live) = &l.live {
            let mut share = [0.0; SEGMENTS];
            let n = l.result.order_cost_bps.len().max(1) as f64;
            for o in world.orders.iter().take(l.result.order_cost_bps.len()) {
                share[world.bonds[o.bond].segment] += 1.0 / n;
            }
            let learned: Vec<_> = live.dealers.iter().map(|d| d.learned).collect();
            l.scorecard = scorecard(&world.dealers, &share, &l.result, &learned);
        }
        Some(l)
    } else {
        None
    };
    let report = DemoReport {
        market: super::report::describe(&world.cfg, world.bonds.len()),
        seed: opts.seed,
        protocol: match opts.protocol {
            None => "rules (router), broadcast (baselines)",
            Some(ProtocolKind::Broadcast) => "broadcast",
            Some(ProtocolKind::Staggered) => "staggered",
            Some(ProtocolKind::Whisper) => "whisper",
        },
        selection,
        scorecard: card,
        latency,
        loopback,
        journal: opts.journal.as_ref().map(|d| d.display().to_string()),
    };
    if let Some(dir) = &opts.journal {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| DemoError::Run(format!("report JSON: {e}")))?;
        std::fs::write(dir.join("report.json"), json).map_err(DemoError::Io)?;
    }
    Ok(report)
}

/// The report as text.
pub fn render(r: &DemoReport) -> String {
    let mut s = String::new();
    s.push_str(&format!("Simulated market: {}\n", r.market));
    s.push_str(&format!("Protocol: {}\n\n", r.protocol));
    s.push_str("Selection quality, same order flow (in process, real engine, virtual time)\n");
    s.push_str("  cost bps: mean over all RFQs vs the true arrival mid (an RFQ not filled is\n");
    s.push_str("  charged the market's move plus an average dealer's cost to trade it after);\n");
    s.push_str("  leakage bps: mean adverse move caused by asked dealers trading ahead\n\n");
    s.push_str(&selection_table(&r.selection));
    s.push_str("\nDealer scorecard: what the router learned (TCA loop, all segments) beside the hidden truth\n");
    s.push_str("  learned: comp = composite, fill = wins/asked, pi_bp = quote vs the RFQ's other quotes (every quote),\n");
    s.push_str("  mo_bp = 30-min markout net of the desk's own trades, resp = seconds to quote, drift = attributed move while asked and lost, obs = RFQs\n");
    s.push_str("  truth: p_ans = answer probability, cost = quote cost x base, resp_s = median, p_lk = leak probability\n\n");
    s.push_str(&scorecard_table(&r.scorecard));
    s.push_str("\nLatency per stage, in process (wall clock, this machine)\n");
    s.push_str(&latency_table(&r.latency));
    if let Some(l) = &r.loopback {
        render_loopback(&mut s, r, l);
    }
    if let Some(j) = &r.journal {
        s.push_str(&format!(
            "\nKept in {j}: scores.tbl (learned score table), report.json\n"
        ));
        match r.loopback.as_ref().map(|l| l.scores) {
            Some(LoopbackScores::Frozen) => s.push_str(&format!(
                "  and the loopback router's journal {j}/journal (built from router.toml, \
                 dealers.toml, scores.tbl there):\n  check it with `rfq-journal replay {j}/journal`\n"
            )),
            Some(LoopbackScores::Live) => s.push_str(&format!(
                "  and the loopback router's journal {j}/journal, built from router.toml, \
                 dealers.toml and\n  {start} there (the table it wrote is {live}): check \
                 it with\n  `rfq-journal replay {j}/journal` (the live score updates are \
                 engine inputs in it)\n",
                start = super::live::LIVE_TABLE_START,
                live = super::live::LIVE_TABLE,
            )),
            None => {}
        }
    }
    s
}

/// A policy's name in a narrow column.
fn short_label(kind: PolicyKind) -> &'static str {
    match kind {
        PolicyKind::Dynamic => "dynamic",
        PolicyKind::Static => "static 4",
        PolicyKind::Broadcast => "broadcast",
        PolicyKind::Random => "random 4",
        PolicyKind::Oracle => "oracle",
    }
}

fn render_loopback(s: &mut String, r: &DemoReport, l: &LoopbackReport) {
    let scores = match l.scores {
        LoopbackScores::Live => {
            "  and its own scoring thread, learning from an empty score table (cold start): TCA\n\
             \x20 facts from its engine, mids from the 35=W feed, score updates back to the engine;\n"
        }
        LoopbackScores::Frozen => {
            "  reading the score table learned in process (--loopback-scores frozen: no learning);\n"
        }
    };
    s.push_str(&format!(
        "\nLoopback FIX: the router (host, FIX sessions, engine) on its own thread\n{scores}\
         \x20 {} simulated dealers, a desk and a market-data feed (35=W) as FIX sessions over TCP;\n\
         \x20 time compressed {:.0}x ({} RFQs in {:.1} s)\n\n",
        l.result.per_dealer.len(),
        l.time_compression,
        l.rfqs,
        l.wall_s
    ));
    s.push_str(&selection_table(std::slice::from_ref(&l.result)));
    if !l.cost_curve.is_empty() {
        s.push_str(
            "\nCost bps over the loopback run's orders, in quarters, beside the in-process policies\n\
             over the same orders (in-process dynamic also starts from nothing)\n",
        );
        let _ = write!(s, "{:<12} {:>10}", "orders", "loopback");
        for p in &r.selection {
            let _ = write!(s, " {:>10}", short_label(p.policy));
        }
        s.push('\n');
        for c in &l.cost_curve {
            let _ = write!(
                s,
                "{:<12} {:>10.2}",
                format!("{}-{}", c.from + 1, c.to),
                c.loopback_bps
            );
            for p in &c.in_process {
                let _ = write!(s, " {:>10.2}", p.cost_bps);
            }
            s.push('\n');
        }
        // All of the loopback's orders: the slices weighted by their sizes.
        let n = l.cost_curve.last().map_or(0, |c| c.to).max(1) as f64;
        let all = |cost: &dyn Fn(&CostSlice) -> f64| {
            l.cost_curve
                .iter()
                .map(|c| cost(c) * (c.to - c.from) as f64)
                .sum::<f64>()
                / n
        };
        let _ = write!(s, "{:<12} {:>10.2}", "all", all(&|c| c.loopback_bps));
        for i in 0..r.selection.len() {
            let v = all(&|c| c.in_process.get(i).map_or(f64::NAN, |p| p.cost_bps));
            let _ = write!(s, " {v:>10.2}");
        }
        s.push('\n');
    }
    if let Some(live) = &l.live {
        let prior = live.dealers.first().map_or(f64::NAN, |d| d.start_composite);
        s.push_str(&format!(
            "\nDealer scorecard as the LOOPBACK router learned it (every composite started at the\n\
             prior, {prior:.3}); realised = what the dealers did in the loopback run\n\
             scoring thread: {} TCA facts, {} score-table updates, {} executions analysed, {} refused\n\n",
            live.facts,
            live.updates_applied,
            live.executions,
            live.apply_errors + live.reports_refused
        ));
        s.push_str(&scorecard_table(&l.scorecard));
    }
    if let Some(m) = &l.engine_metrics {
        s.push_str(
            "\nThe loopback router's own metrics (engine thread hdrhistograms, the data /metrics serves\n\
             and `rfq-router stats` prints; wall clock)\n",
        );
        s.push_str(&m.table);
    }
    s.push_str("\nWire latencies measured by the simulated peers (wall clock)\n");
    s.push_str(&latency_table(&l.latency));
}

/// Runs the demo as both command lines do (`rfq-router demo`, `rfq-sim`): a progress bar per
/// stage on stderr, then the report on stdout as text (with the elapsed time) or JSON.
pub fn run_cli(opts: &DemoOptions, json: bool) -> Result<(), String> {
    use indicatif::{ProgressBar, ProgressStyle};
    let started = std::time::Instant::now();
    let style = ProgressStyle::with_template("{prefix:>20} [{bar:40}] {pos}/{len} RFQs {elapsed}")
        .map_err(|e| format!("progress bar template: {e}"))?
        .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let report = run_demo(opts, &mut |p| match p {
        Progress::Stage { name, total } => {
            if let Some(b) = bar.take() {
                b.finish();
            }
            let b = ProgressBar::new(total).with_style(style.clone());
            b.set_prefix(name);
            bar = Some(b);
        }
        Progress::Done(n) => {
            if let Some(b) = &bar {
                b.set_position(n);
            }
        }
    })
    .map_err(|e| e.to_string())?;
    if let Some(b) = bar.take() {
        b.finish();
    }
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        println!();
        print!("{}", render(&report));
        println!("\nDone in {:.1} s.", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The demo's command-line options (`rfq-router demo`, `rfq-sim`).
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// RFQs per policy in process (the desk's order flow).
    #[arg(long, default_value_t = 3000, value_name = "N")]
    pub rfqs: usize,
    /// Simulated dealers (1..=32).
    #[arg(long, default_value_t = 12, value_name = "N")]
    pub dealers: usize,
    /// Seed of the market, the order flow and every dealer's behaviour.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Keep the learned score table (scores.tbl) and the report (report.json) here; the
    /// loopback router journals into DIR/journal (replaced) beside the files it was built
    /// from (router.toml, dealers.toml), so `rfq-journal replay DIR/journal` re-runs it.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// rules (the router's rules decide; baselines broadcast), broadcast, staggered or whisper
    /// for every policy.
    #[arg(long, default_value = "rules", value_name = "P")]
    pub protocol: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// RFQs over loopback FIX (0: skip the loopback run).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub loopback_rfqs: usize,
    /// The loopback router's scores: live (its own scoring thread learns from an empty
    /// table while it runs) or frozen (the table learned in process, read only).
    #[arg(long, default_value = "live", value_name = "S")]
    pub loopback_scores: String,
    /// Virtual seconds per wall-clock second in the loopback run (1..=10000). Dealers'
    /// answers and the router's timers run that much faster: at 1000 a 20 s response
    /// timeout is 20 ms, which a busy machine can miss; a lower figure runs longer.
    #[arg(long, default_value_t = super::loopback::TIME_COMPRESSION, value_name = "X")]
    pub loopback_compression: u32,
}

impl DemoArgs {
    pub fn options(&self) -> Result<DemoOptions, String> {
        Ok(DemoOptions {
            rfqs: self.rfqs,
            dealers: self.dealers,
            seed: self.seed,
            journal: self.journal.clone(),
            protocol: parse_protocol(&self.protocol)?,
            loopback: self.loopback_rfqs > 0,
            loopback_rfqs: self.loopback_rfqs.min(self.rfqs),
            loopback_scores: LoopbackScores::parse(&self.loopback_scores)?,
            loopback_compression: match self.loopback_compression {
                x @ 1..=super::loopback::MAX_TIME_COMPRESSION => x,
                x => {
                    return Err(format!(
                        "--loopback-compression {x}: must be 1..={}",
                        super::loopback::MAX_TIME_COMPRESSION
                    ))
                }
            },
        })
    }
}
