//! The loopback router's own learning and its own metrics: what `sim::loopback` adds around
//! the router it starts so that the demo shows the real thing, not a replay of the in-process
//! run.
//!
//! Owns the loopback router's score table (created empty: a cold start), the scoring thread
//! it runs (`scoring::spawn_scoring_on`, as `rfq-router run` starts it, on a `ScoringClock`
//! running as fast as the simulated market so that response times, markout horizons and decay
//! are in the market's time), what the table says at the end (the scorecard as the loopback
//! router learned it, with how much each dealer's composite moved from its starting value),
//! the cost of its RFQs over time (the learning curve, beside the in-process policies over
//! the same orders), and the engine thread's metrics snapshot taken through the admin
//! thread's channel (`metrics::snapshot_channel`), rendered as `/metrics` renders it and
//! tabled as `rfq-router stats` tables it. It decides nothing for the router and touches no
//! RFQ state: the router's threads do, through their bounded queues.

use super::harness::{learned_of, EngineSummary, PolicyResult, World, SIM_SEGMENTS_PER_DEALER};
use super::policy::PolicyKind;
use super::report::{LatencyRow, Learned};
use crate::inbox::{inbox, Inbox, InboxSender};
use crate::journal::writer::MetricsHandle;
use crate::metrics::exposition;
use crate::metrics::{Queue, SnapshotClient, Stage};
use crate::net::LoopHandle;
use crate::scoring::{
    fact_queue, spawn_scoring_on, FactSender, RunningScoring, ScoringClock, ScoringSettings,
    ScoringThread,
};
use crate::select::feedback::ToEngine;
use crate::select::model::ModelConfig;
use crate::select::table::{ScoreReader, ScoreWriter, TableParams};
use crate::select::tca::{Tca, TcaFact};
use crate::time::Nanos;
use crossbeam::channel::Receiver;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Where the loopback router's scores come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoopbackScores {
    /// An empty table (cold start) that the router's own scoring thread fills from its
    /// engine's TCA facts and the 35=W feed's mids while it runs; score updates reach the
    /// engine as `Event::ScoreUpdate`.
    Live,
    /// The table the in-process dynamic run learned, read only; no scoring thread (the
    /// selection does not change during the run, so its journal replays exactly with the
    /// engine inputs journaled today).
    Frozen,
}

impl LoopbackScores {
    /// Parses `--loopback-scores`: `live` or `frozen`.
    pub fn parse(s: &str) -> Result<LoopbackScores, String> {
        match s {
            "live" => Ok(LoopbackScores::Live),
            "frozen" => Ok(LoopbackScores::Frozen),
            other => Err(format!("unknown loopback scores {other:?}: live or frozen")),
        }
    }
}

/// The file name of the loopback router's live score table in the demo's `--journal` DIR.
pub const LIVE_TABLE: &str = "loopback-scores.tbl";
/// The file name of its starting state (empty), which the journal names so that a replay
/// starts from what the run started from.
pub const LIVE_TABLE_START: &str = "loopback-scores-start.tbl";

/// How long the demo waits for the engine thread's metrics snapshot.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);
/// Metrics snapshot requests in flight (one is asked for).
pub const SNAPSHOT_CAPACITY: usize = 2;

/// The loopback router's score table and the scoring side around it, before the router
/// starts (`LiveScoring::start` after).
pub struct LiveScoring {
    settings: ScoringSettings,
    model: ModelConfig,
    writer: Option<ScoreWriter>,
    reader: ScoreReader,
    path: PathBuf,
    /// The empty table as it was at the start (with a journal), named in the journal.
    start_copy: Option<PathBuf>,
    /// Removed at the end (no journal directory).
    temporary: bool,
    /// The queues between the engine and the scoring thread, each end taken once.
    facts_tx: Option<FactSender>,
    facts_rx: Option<Receiver<TcaFact>>,
    to_engine: Option<InboxSender<ToEngine>>,
    from_scoring: Option<Inbox<ToEngine>>,
    /// The composite each dealer starts from (the table's prior: nothing learned yet).
    start_composite: Vec<f64>,
    instruments: usize,
}

impl LiveScoring {
    /// A new, empty score table for `world`'s dealers: in `dir` (`LIVE_TABLE`, with its
    /// starting state copied to `LIVE_TABLE_START`) or a temporary file. `settings` is the
    /// loopback router's `[scoring]` (its defaults).
    pub fn create(
        world: &World,
        dir: Option<&Path>,
        settings: &ScoringSettings,
        start: Nanos,
    ) -> Result<LiveScoring, String> {
        let model = settings.model.clone();
        let temporary = dir.is_none();
        let path = match dir {
            Some(d) => d.join(LIVE_TABLE),
            None => std::env::temp_dir().join(format!(
                "rfq-sim-loopback-{}-{}.scores",
                std::process::id(),
                world.cfg.seed
            )),
        };
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        if path.exists() {
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
        let params = TableParams::new(world.dealers.len() as u32, SIM_SEGMENTS_PER_DEALER, &model);
        let writer = ScoreWriter::create(&path, params, start).map_err(|e| e.to_string())?;
        writer.flush().map_err(|e| io(&path, e))?;
        let start_copy = match dir {
            Some(d) => {
                let copy = d.join(LIVE_TABLE_START);
                std::fs::copy(&path, &copy).map_err(|e| io(&copy, e))?;
                Some(copy)
            }
            None => None,
        };
        let reader = writer.reader();
        let start_composite = (0..world.dealers.len())
            .map(|d| composite_of(&reader, &model, d, start))
            .collect();
        let (facts_tx, facts_rx) = fact_queue(settings.queue_capacity);
        let (to_engine, from_scoring) = inbox(settings.inbox_capacity, None);
        Ok(LiveScoring {
            facts_tx: Some(facts_tx),
            facts_rx: Some(facts_rx),
            to_engine: Some(to_engine),
            from_scoring: Some(from_scoring),
            settings: settings.clone(),
            model,
            writer: Some(writer),
            reader,
            path,
            start_copy,
            temporary,
            start_composite,
            instruments: world.master.len(),
        })
    }

    /// The score table the journal names: the run's starting state.
    pub fn journal_scores(&self) -> Option<&Path> {
        self.start_copy.as_deref()
    }

    /// The engine's ends of the queues (for `RouterApp::with_feedback`): TCA facts out,
    /// score updates in.
    pub fn engine_side(&mut self) -> (Option<FactSender>, Option<Inbox<ToEngine>>) {
        (self.facts_tx.take(), self.from_scoring.take())
    }

    /// Starts the scoring thread once the router runs (`wake`: its loop), on a clock
    /// `factor` times faster than the wall clock from `origin` (the router's start).
    pub fn start(
        &mut self,
        wake: LoopHandle,
        origin: Nanos,
        factor: f64,
    ) -> Result<RunningScoring, String> {
        let started = "the scoring thread was started already";
        let facts = self.facts_rx.take().ok_or(started)?;
        let mut to_engine = self.to_engine.take().ok_or(started)?;
        to_engine.set_wake(wake);
        let job = ScoringThread {
            tca: Tca::new(self.settings.tca_config(self.instruments)),
            writer: self.writer.take(),
            model: self.model.clone(),
            watcher: None,
            to_engine,
            rules_poll: Duration::from_millis(self.settings.rules_poll_ms),
            flush_every: Duration::from_secs(self.settings.flush_every_s),
        };
        spawn_scoring_on(job, facts, None, ScoringClock::compressed(origin, factor))
            .map_err(|e| format!("scoring thread: {e}"))
    }

    /// What the table says now about each dealer (`now`: the scoring clock's time), and how
    /// far its composite moved from the start.
    pub fn learned(&self, dealers: usize, now: Nanos) -> Vec<LiveLearned> {
        (0..dealers)
            .map(|d| {
                let learned = learned_of(&self.reader, &self.model, d, now);
                let composite = composite_of(&self.reader, &self.model, d, now);
                LiveLearned {
                    learned,
                    start_composite: self.start_composite[d],
                    composite,
                }
            })
            .collect()
    }
}

impl Drop for LiveScoring {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The composite the selector would read for `dealer` (the prior when the table has nothing).
fn composite_of(reader: &ScoreReader, model: &ModelConfig, dealer: usize, now: Nanos) -> f64 {
    learned_of(reader, model, dealer, now).map_or_else(|| prior_composite(model), |l| l.composite)
}

/// The composite of a dealer the table knows nothing about (the model's priors).
fn prior_composite(model: &ModelConfig) -> f64 {
    use crate::select::model::{composite, metrics, normalise, RowStats};
    let empty = RowStats::default();
    let m = metrics(&empty, &empty, Nanos(0), model);
    composite(&normalise(&m, model.speed_scale_s), &model.weights)
}

/// One dealer's learned figures at the end of the loopback run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LiveLearned {
    pub learned: Option<Learned>,
    /// The composite at the start (the prior) and at the end.
    pub start_composite: f64,
    pub composite: f64,
}

/// The loopback router's learning, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveReport {
    pub scores: LoopbackScores,
    /// Per dealer (the world's order).
    pub dealers: Vec<LiveLearned>,
    /// The scoring thread's counters at the end.
    pub facts: u64,
    pub updates_applied: u64,
    pub executions: u64,
    pub apply_errors: u64,
    pub reports_refused: u64,
}

impl LiveReport {
    pub fn of(scoring: &RunningScoring, dealers: Vec<LiveLearned>) -> LiveReport {
        let c = &scoring.counters;
        LiveReport {
            scores: LoopbackScores::Live,
            dealers,
            facts: c.facts.load(Ordering::Relaxed),
            updates_applied: c.updates_applied.load(Ordering::Relaxed),
            executions: c.executions.load(Ordering::Relaxed),
            apply_errors: c.apply_errors.load(Ordering::Relaxed),
            reports_refused: c.reports_refused.load(Ordering::Relaxed),
        }
    }
}

/// Cost over one slice of the loopback run's orders, for it and for the in-process policies
/// over the same orders.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostSlice {
    /// Orders `from..to` (0-based, in the order the desk sent them).
    pub from: usize,
    pub to: usize,
    /// Mean cost in bps of the loopback router over these orders.
    pub loopback_bps: f64,
    /// Each in-process policy's mean cost over the same orders.
    pub in_process: Vec<PolicyCost>,
}

/// One policy's mean cost over a slice of orders.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyCost {
    pub policy: PolicyKind,
    pub cost_bps: f64,
}

/// The loopback router's cost over its orders in `slices` equal parts, beside the in-process
/// policies' costs over the same orders (`in_process`: their results, in their order).
pub fn cost_curve(
    loopback: &PolicyResult,
    in_process: &[PolicyResult],
    slices: usize,
) -> Vec<CostSlice> {
    let n = loopback.order_cost_bps.len();
    let slices = slices.clamp(1, n.max(1));
    let mean = |v: &[f64], from: usize, to: usize| {
        let part = v.get(from..to.min(v.len())).unwrap_or(&[]);
        if part.is_empty() {
            f64::NAN
        } else {
            part.iter().sum::<f64>() / part.len() as f64
        }
    };
    (0..slices)
        .map(|i| {
            let (from, to) = (i * n / slices, (i + 1) * n / slices);
            CostSlice {
                from,
                to,
                loopback_bps: mean(&loopback.order_cost_bps, from, to),
                in_process: in_process
                    .iter()
                    .map(|r| PolicyCost {
                        policy: r.policy,
                        cost_bps: mean(&r.order_cost_bps, from, to),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The engine thread's own metrics at the end of the loopback run: the stage histograms and
/// queue depths `/metrics` serves (latencies in microseconds), its counters, and the text
/// `rfq-router stats` prints from the same samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineMetrics {
    pub stages: Vec<LatencyRow>,
    /// Depths (items or bytes), in the `LatencyRow` columns (not microseconds).
    pub queues: Vec<DepthRow>,
    /// Every counter `/metrics` serves, by its Prometheus name.
    pub counters: BTreeMap<String, f64>,
    #[serde(skip)]
    pub table: String,
    /// The engine's counters as the report's summary has them.
    #[serde(skip)]
    pub summary: EngineSummary,
}

/// One queue's sampled depths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepthRow {
    pub queue: String,
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// Asks the engine thread for its metrics (as the admin thread does for `/metrics`), adds
/// the journal's lag when there is a journal, and renders them in the exposition format.
pub fn engine_metrics(
    snapshots: &mut SnapshotClient,
    net: &LoopHandle,
    journal: Option<&MetricsHandle>,
) -> Result<EngineMetrics, String> {
    let snapshot = snapshots
        .fetch(SNAPSHOT_TIMEOUT)
        .map_err(|e| format!("engine metrics: {e}"))?;
    if let Some(j) = journal {
        j.copy_lag_into(snapshot.stage_mut(Stage::JournalLag));
    }
    let stages = Stage::ALL
        .iter()
        .map(|&s| LatencyRow::of(s.name(), snapshot.stage(s).histogram()))
        .collect();
    let queues = Queue::ALL
        .iter()
        .map(|&q| {
            let d = snapshot.queue(q);
            DepthRow {
                queue: q.name().to_string(),
                count: d.count(),
                p50: d.quantile(0.5),
                p90: d.quantile(0.9),
                p99: d.quantile(0.99),
                p999: d.quantile(0.999),
                max: d.max(),
            }
        })
        .collect();
    let mut text = String::with_capacity(16 * 1024);
    let journal_counts = journal.map(MetricsHandle::snapshot);
    exposition::render(
        snapshot,
        Some(&net.counters()),
        journal_counts.as_ref(),
        &[],
        &mut text,
    );
    let samples = exposition::parse(&text).map_err(|e| format!("engine metrics: {e}"))?;
    let counters = samples
        .iter()
        .filter(|s| s.name.ends_with("_total") || s.name == "rfq_router_open_rfqs")
        .map(|s| (s.name.clone(), s.value))
        .collect();
    let summary = EngineSummary::from(&snapshot.counts.engine);
    Ok(EngineMetrics {
        summary,
        stages,
        queues,
        counters,
        table: exposition::stats_table(&samples),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(costs: &[f64]) -> PolicyResult {
        PolicyResult {
            policy: PolicyKind::Dynamic,
            label: "x",
            rfqs: costs.len() as u64,
            filled: 0,
            fill_rate: 0.0,
            mean_cost_bps: 0.0,
            mean_cost_filled_bps: 0.0,
            leakage_bps: 0.0,
            dealers_asked: 0.0,
            per_dealer: Vec::new(),
            engine: Default::default(),
            learned: Vec::new(),
            score_apply_errors: 0,
            order_cost_bps: costs.to_vec(),
        }
    }

    #[test]
    fn the_cost_curve_averages_equal_slices_of_the_same_orders() {
        let lb = result(&[1.0, 3.0, 5.0, 7.0, 9.0]);
        let other = result(&[0.0, 0.0, 10.0, 10.0, 10.0, 99.0]);
        let c = cost_curve(&lb, &[other], 2);
        assert_eq!((c[0].from, c[0].to, c[1].from, c[1].to), (0, 2, 2, 5));
        assert_eq!(c[0].loopback_bps, 2.0);
        assert_eq!(c[1].loopback_bps, 7.0);
        assert_eq!(c[0].in_process[0].cost_bps, 0.0);
        assert_eq!(
            c[1].in_process[0].cost_bps, 10.0,
            "orders past the loopback's are not used"
        );
        assert!(cost_curve(&result(&[]), &[], 4)[0].loopback_bps.is_nan());
    }

    #[test]
    fn loopback_scores_parse() {
        assert_eq!(LoopbackScores::parse("live"), Ok(LoopbackScores::Live));
        assert_eq!(LoopbackScores::parse("frozen"), Ok(LoopbackScores::Frozen));
        assert!(LoopbackScores::parse("warm").is_err());
    }
}
