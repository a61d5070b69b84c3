//! The scoring thread: TCA off the engine thread, the single writer of the score tables, and
//! the rules watcher.
//!
//! Owns the `[scoring]` configuration (`ScoringSettings`), and the thread started with
//! `spawn_scoring` (through `pinning::spawn_pinned("scoring", [router] scoring_cpu, ..)`). The
//! engine thread hands it `TcaFact`s through a bounded channel (`RouterApp` never blocks:
//! a full queue drops the fact and counts it). The thread runs `select::tca::Tca` (pure) with
//! the wall clock as `now` for its markout timers (the demo's loopback run: a `ScoringClock`
//! running as fast as its simulated market), applies each result to the score tables
//! (`ScoreWriter`: this thread is their only writer), and reports what it wrote back to the
//! engine thread as `ToEngine::Scores` through `inbox`, with a copy of every row it changed
//! (the engine installs those rows and journals them as its input; it never reads the live
//! tables). Between facts it polls the `RulesWatcher` (SIGHUP or a
//! changed file) and sends `ToEngine::Rules`: the new rules, or the refusal naming
//! file:line:column. It reads the clock and does file I/O; it never touches RFQ state.

use crate::config::{Checker, ConfigError, Num, Problem};
use crate::inbox::InboxSender;
use crate::pinning::StoppableThread;
use crate::select::feedback::{RulesReload, ScoreUpdate, ToEngine};
use crate::select::model::ModelConfig;
use crate::select::rows::copy_updated_rows;
use crate::select::rules::{Reload, RulesWatcher};
use crate::select::table::ScoreWriter;
use crate::select::tca::{apply, Tca, TcaConfig, TcaFact, TcaOutput};
use crate::time::Nanos;
use crossbeam::channel::{bounded, Receiver, RecvTimeoutError, Sender};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `[scoring]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringSettings {
    /// The score tables file (`--scores` overrides it); created if absent. None: no tables
    /// (TCA still runs and is journaled; selection uses neutral scores).
    pub scores: Option<PathBuf>,
    /// Dealer blocks in a new table (at least the number of dealers).
    pub dealers_capacity: u32,
    /// Segment rows per dealer in a new table.
    pub segments_per_dealer: u32,
    /// TCA facts queued from the engine thread to this one.
    pub queue_capacity: usize,
    /// Messages queued from this thread (and the rules watcher) to the engine thread.
    pub inbox_capacity: usize,
    /// TCA limits: RFQs tracked, measurements pending, mid age.
    pub max_open_rfqs: usize,
    pub max_pending: usize,
    pub max_mid_age_s: u64,
    /// Selection's precomputed scores: segment paths kept, full refresh interval.
    pub cache_paths: usize,
    pub cache_refresh_s: u64,
    /// How often the rules file is checked for changes (SIGHUP is seen at the same pace).
    pub rules_poll_ms: u64,
    /// How often the tables' dirty pages are handed to the OS.
    pub flush_every_s: u64,
    /// `[scoring.model]`: half-life, window, markout horizons, shrinkage, weights.
    pub model: ModelConfig,
}

impl Default for ScoringSettings {
    fn default() -> Self {
        ScoringSettings {
            scores: None,
            dealers_capacity: 1_024,
            segments_per_dealer: 128,
            queue_capacity: 65_536,
            inbox_capacity: 1_024,
            max_open_rfqs: 16_384,
            max_pending: 262_144,
            max_mid_age_s: 3_600,
            cache_paths: crate::select::cache::DEFAULT_CACHE_PATHS,
            cache_refresh_s: 60,
            rules_poll_ms: 1_000,
            flush_every_s: 30,
            model: ModelConfig::default(),
        }
    }
}

impl ScoringSettings {
    /// `Tca`'s configuration for `instruments` security-master entries.
    pub fn tca_config(&self, instruments: usize) -> TcaConfig {
        TcaConfig {
            model: self.model.clone(),
            max_open_rfqs: self.max_open_rfqs,
            max_pending: self.max_pending,
            max_instruments: instruments,
            max_mid_age_s: self.max_mid_age_s,
            ..TcaConfig::default()
        }
    }
}

/// `[scoring]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScoring {
    scores: Option<String>,
    dealers_capacity: Num,
    segments_per_dealer: Num,
    queue_capacity: Num,
    inbox_capacity: Num,
    max_open_rfqs: Num,
    max_pending: Num,
    max_mid_age_s: Num,
    cache_paths: Num,
    cache_refresh_s: Num,
    rules_poll_ms: Num,
    flush_every_s: Num,
    model: Option<toml::Spanned<ModelConfig>>,
}

/// Validates `[scoring]`.
pub(crate) fn settings(
    checker: &Checker<'_>,
    raw: &RawScoring,
) -> Result<ScoringSettings, ConfigError> {
    let d = ScoringSettings::default();
    let model = match &raw.model {
        None => d.model.clone(),
        Some(m) => {
            m.get_ref().validate().map_err(|e| {
                checker.invalid(
                    m.span(),
                    Problem::Invalid {
                        key: "scoring.model",
                        reason: e.to_string(),
                    },
                )
            })?;
            m.get_ref().clone()
        }
    };
    let n = |v: &Num, key, default: u64, max| checker.num(v, key, default, 1, max);
    Ok(ScoringSettings {
        scores: raw
            .scores
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        dealers_capacity: n(
            &raw.dealers_capacity,
            "dealers_capacity",
            u64::from(d.dealers_capacity),
            u64::from(crate::select::table::MAX_DEALERS),
        )? as u32,
        segments_per_dealer: n(
            &raw.segments_per_dealer,
            "segments_per_dealer",
            u64::from(d.segments_per_dealer),
            u64::from(crate::select::table::MAX_SEGMENTS_PER_DEALER),
        )? as u32,
        queue_capacity: n(
            &raw.queue_capacity,
            "queue_capacity",
            d.queue_capacity as u64,
            1 << 24,
        )? as usize,
        inbox_capacity: n(
            &raw.inbox_capacity,
            "inbox_capacity",
            d.inbox_capacity as u64,
            1 << 20,
        )? as usize,
        max_open_rfqs: n(
            &raw.max_open_rfqs,
            "max_open_rfqs",
            d.max_open_rfqs as u64,
            1 << 24,
        )? as usize,
        max_pending: n(
            &raw.max_pending,
            "max_pending",
            d.max_pending as u64,
            1 << 26,
        )? as usize,
        max_mid_age_s: n(
            &raw.max_mid_age_s,
            "max_mid_age_s",
            d.max_mid_age_s,
            30 * 86_400,
        )?,
        cache_paths: n(&raw.cache_paths, "cache_paths", d.cache_paths as u64, 4_096)? as usize,
        cache_refresh_s: n(
            &raw.cache_refresh_s,
            "cache_refresh_s",
            d.cache_refresh_s,
            86_400,
        )?,
        rules_poll_ms: n(
            &raw.rules_poll_ms,
            "rules_poll_ms",
            d.rules_poll_ms,
            3_600_000,
        )?,
        flush_every_s: n(&raw.flush_every_s, "flush_every_s", d.flush_every_s, 86_400)?,
        model,
    })
}

// ---------------------------------------------------------------------------------------------
// The thread

/// Counters of the scoring thread, readable from any thread.
#[derive(Debug, Default)]
pub struct ScoringCounters {
    pub facts: AtomicU64,
    pub updates_applied: AtomicU64,
    pub executions: AtomicU64,
    /// Updates the tables refused (segment slots full, dealer past the capacity).
    pub apply_errors: AtomicU64,
    /// Reports the engine's inbox refused (full): the tables have the updates, the journal
    /// and the selector's precomputed scores miss them until the next refresh.
    pub reports_refused: AtomicU64,
    pub rules_reloaded: AtomicU64,
    pub rules_refused: AtomicU64,
    /// The last refusal, `file:line:column: reason` (for the binary to log).
    pub last_refusal: std::sync::Mutex<Option<String>>,
}

/// The sending half the engine thread uses (through `RouterApp`).
pub type FactSender = Sender<TcaFact>;

/// What the scoring thread needs.
pub struct ScoringThread {
    pub tca: Tca,
    /// None: TCA results are reported (and journaled) but not written anywhere.
    pub writer: Option<ScoreWriter>,
    pub model: ModelConfig,
    pub watcher: Option<RulesWatcher>,
    pub to_engine: InboxSender<ToEngine>,
    pub rules_poll: Duration,
    pub flush_every: Duration,
}

/// The running scoring thread.
pub struct RunningScoring {
    pub counters: Arc<ScoringCounters>,
    thread: StoppableThread,
}

impl RunningScoring {
    /// Asks the thread to finish and waits for it.
    pub fn stop(mut self) {
        self.thread.stop();
    }
}

/// The bounded fact queue: `RouterApp` gets the sender, `spawn_scoring` the receiver.
pub fn fact_queue(capacity: usize) -> (FactSender, Receiver<TcaFact>) {
    bounded(capacity.max(1))
}

fn wall_now() -> Nanos {
    Nanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    )
}

/// Longest wait for a fact: the watcher and the stop flag are checked at least this often.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Facts taken in one go before results are applied and reported.
const FACTS_PER_ROUND: usize = 1_024;

/// The time the scoring thread's TCA runs on: the wall clock, or (the demo's loopback run,
/// whose market runs `factor` times faster than the wall clock) a clock that runs `factor`
/// times faster from `origin`. Every fact's time and the thread's own `now` go through
/// [`ScoringClock::at`], so response times, markout horizons and decay are measured in the
/// market's time. The factor is the `[simulation] time_compression` the router's protocol
/// timers are divided by (`sim::policy::SimulatedPanel`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoringClock {
    origin: Nanos,
    factor: f64,
}

impl ScoringClock {
    /// The wall clock as it is (`rfq-router run`).
    pub const WALL: ScoringClock = ScoringClock {
        origin: Nanos(0),
        factor: 1.0,
    };

    /// A clock `factor` times faster than the wall clock, equal to it at `origin`; a factor
    /// of 1 or less (or not finite) is the wall clock.
    pub fn compressed(origin: Nanos, factor: f64) -> ScoringClock {
        if factor.is_finite() && factor > 1.0 {
            ScoringClock { origin, factor }
        } else {
            ScoringClock::WALL
        }
    }

    /// This clock's time at wall-clock instant `wall` (before `origin`: `wall`).
    pub fn at(&self, wall: Nanos) -> Nanos {
        if self.factor <= 1.0 || wall <= self.origin {
            return wall;
        }
        let ahead = (wall.0 - self.origin.0) as f64 * self.factor;
        Nanos(
            self.origin
                .0
                .saturating_add(ahead.min(u64::MAX as f64) as u64),
        )
    }

    /// `fact` with its time read on this clock.
    pub fn fact(&self, mut fact: TcaFact) -> TcaFact {
        if self.factor <= 1.0 {
            return fact;
        }
        match &mut fact {
            TcaFact::Opened { now, .. }
            | TcaFact::Asked { now, .. }
            | TcaFact::Quoted { now, .. }
            | TcaFact::Declined { now, .. }
            | TcaFact::TimedOut { now, .. }
            | TcaFact::LateOrInvalid { now, .. }
            | TcaFact::Executed { now, .. }
            | TcaFact::Finished { now, .. }
            | TcaFact::Mid { now, .. } => *now = self.at(*now),
        }
        fact
    }
}

/// Starts the scoring thread, named `scoring` and pinned to `cpu` when given.
pub fn spawn_scoring(
    job: ScoringThread,
    facts: Receiver<TcaFact>,
    cpu: Option<usize>,
) -> std::io::Result<RunningScoring> {
    spawn_scoring_on(job, facts, cpu, ScoringClock::WALL)
}

/// [`spawn_scoring`] with the TCA on `clock` (the demo's loopback run: the market's time).
pub fn spawn_scoring_on(
    mut job: ScoringThread,
    facts: Receiver<TcaFact>,
    cpu: Option<usize>,
    clock: ScoringClock,
) -> std::io::Result<RunningScoring> {
    let counters = Arc::new(ScoringCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (Arc::clone(&counters), Arc::clone(&stop));
    let thread = crate::pinning::spawn_pinned("scoring", cpu, move |_| {
        job.run(&facts, &c, &s, clock);
    })?;
    Ok(RunningScoring {
        counters,
        thread: StoppableThread::new(stop, thread),
    })
}

impl ScoringThread {
    fn run(
        &mut self,
        facts: &Receiver<TcaFact>,
        c: &ScoringCounters,
        stop: &AtomicBool,
        clock: ScoringClock,
    ) {
        let mut results: Vec<TcaOutput> = Vec::with_capacity(4 * FACTS_PER_ROUND);
        let mut report = ScoreUpdate::default();
        let mut last_poll = std::time::Instant::now();
        let mut last_flush = std::time::Instant::now();
        while !stop.load(Ordering::Acquire) {
            let now = clock.at(wall_now());
            let wait = self
                .tca
                .next_due()
                .map_or(MAX_WAIT, |due| {
                    // Time on `clock` to wall time.
                    let ahead_ns = due.0.saturating_sub(now.0) as f64 / clock.factor;
                    Duration::from_nanos(ahead_ns as u64).min(MAX_WAIT)
                })
                .min(self.rules_poll);
            match facts.recv_timeout(wait) {
                Ok(f) => {
                    self.take(&clock.fact(f), c, &mut results);
                    for _ in 1..FACTS_PER_ROUND {
                        match facts.try_recv() {
                            Ok(f) => self.take(&clock.fact(f), c, &mut results),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // The engine thread is gone: finish what is due and stop.
                Err(RecvTimeoutError::Disconnected) => {
                    stop.store(true, Ordering::Release);
                }
            }
            self.tca.advance(clock.at(wall_now()), &mut results);
            for r in results.drain(..) {
                self.write(&r, c, &mut report);
                if report.is_full() {
                    self.send(&mut report, c);
                }
            }
            self.send(&mut report, c);
            if last_poll.elapsed() >= self.rules_poll {
                last_poll = std::time::Instant::now();
                self.poll_rules(c);
            }
            if last_flush.elapsed() >= self.flush_every {
                last_flush = std::time::Instant::now();
                if let Some(w) = &self.writer {
                    let _ = w.flush();
                }
            }
        }
        if let Some(w) = &self.writer {
            let _ = w.flush();
        }
    }

    fn take(&mut self, f: &TcaFact, c: &ScoringCounters, results: &mut Vec<TcaOutput>) {
        c.facts.fetch_add(1, Ordering::Relaxed);
        self.tca.on_fact(f, results);
    }

    fn write(&mut self, r: &TcaOutput, c: &ScoringCounters, report: &mut ScoreUpdate) {
        match r {
            TcaOutput::Update(u) => {
                if let Some(w) = &mut self.writer {
                    match apply(w, &self.model, r) {
                        Ok(()) => c.updates_applied.fetch_add(1, Ordering::Relaxed),
                        Err(_) => c.apply_errors.fetch_add(1, Ordering::Relaxed),
                    };
                    // The rows as written: what the engine installs (and journals).
                    copy_updated_rows(&w.reader(), u, &mut report.rows);
                }
                report.updates.push(*u);
            }
            TcaOutput::Execution(e) => {
                c.executions.fetch_add(1, Ordering::Relaxed);
                report.executions.push(*e);
            }
        }
    }

    fn send(&mut self, report: &mut ScoreUpdate, c: &ScoringCounters) {
        if report.is_empty() {
            return;
        }
        let batch = std::mem::take(report);
        if self.to_engine.send(ToEngine::Scores(batch)).is_err() {
            c.reports_refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll_rules(&mut self, c: &ScoringCounters) {
        let Some(w) = &mut self.watcher else { return };
        let msg = match w.poll() {
            Reload::Unchanged => return,
            Reload::Loaded(rules) => {
                c.rules_reloaded.fetch_add(1, Ordering::Relaxed);
                RulesReload::Installed(rules)
            }
            Reload::Refused(e) => {
                let text = e.to_string();
                if let Ok(mut last) = c.last_refusal.lock() {
                    *last = Some(text.clone());
                }
                c.rules_refused.fetch_add(1, Ordering::Release);
                RulesReload::Refused {
                    error: text.into_boxed_str(),
                }
            }
        };
        // A full inbox: the watcher has moved on; the reload is lost, counted by the inbox.
        let _ = self.to_engine.send(ToEngine::Rules(msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_clock_runs_factor_times_faster_from_its_origin() {
        let origin = Nanos::from_secs(1_000);
        let clock = ScoringClock::compressed(origin, 1000.0);
        assert_eq!(clock.at(origin), origin);
        assert_eq!(
            clock.at(Nanos(origin.0 + 1_000_000)),
            Nanos(origin.0 + 1_000_000_000)
        );
        assert_eq!(
            clock.at(Nanos::from_secs(5)),
            Nanos::from_secs(5),
            "before the origin"
        );
        let fact = TcaFact::Mid {
            instrument: 3,
            mid: 99.5,
            now: Nanos(origin.0 + 2_000_000),
        };
        assert_eq!(
            clock.fact(fact.clone()).now(),
            Nanos(origin.0 + 2_000_000_000)
        );
        assert_eq!(ScoringClock::WALL.fact(fact.clone()), fact);
        assert_eq!(ScoringClock::compressed(origin, 0.5), ScoringClock::WALL);
        assert_eq!(
            ScoringClock::compressed(origin, f64::NAN),
            ScoringClock::WALL
        );
    }
}
