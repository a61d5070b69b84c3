//! Telling the threads off the engine which rules the engine runs.
//!
//! Owns the three ends that let a reader of the rules outside the engine thread (the admin
//! thread's `/api/recommend`) switch to reloaded rules exactly when the engine installs them,
//! never earlier and never for a refused file: [`RulesStage`] (the rules watcher's thread
//! stages an immutable copy of every rule set it hands the engine, in a bounded queue),
//! [`InstalledRules`] (the engine thread stores the load sequence of the set it installed:
//! one atomic store, no lock, no allocation) and [`RulesFollower`] (the reader takes the
//! staged copy whose sequence the engine installed). Nothing here reads the clock or does I/O;
//! it holds no RFQ state and never shares a rule set the engine uses (each side has its own
//! copy), so house rule 1 holds. Staged copies are bounded ([`STAGED_RULES`]): an older one
//! is dropped and counted when the reader falls behind.

use crate::select::rules::RuleSet;
use crossbeam::channel::{bounded, Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Rule sets staged and not yet taken by the follower, at most.
pub const STAGED_RULES: usize = 4;

/// What the three ends share.
#[derive(Debug, Default)]
struct Shared {
    /// `RulesVersion::seq` of the set the engine installed last (0: none since the start).
    installed_seq: AtomicU64,
    /// Staged copies dropped because `STAGED_RULES` were waiting.
    staged_dropped: AtomicU64,
    /// Installs the follower could not follow (the staged copy was dropped).
    missed: AtomicU64,
}

/// The watcher's end: stages a copy of each rule set before it goes to the engine.
#[derive(Clone, Debug)]
pub struct RulesStage {
    tx: Sender<Box<RuleSet>>,
    /// To drop the oldest staged copy when the queue is full.
    rx: Receiver<Box<RuleSet>>,
    shared: Arc<Shared>,
}

/// The engine thread's end: records the rules it installed.
#[derive(Clone)]
pub struct InstalledRules {
    shared: Arc<Shared>,
}

/// The reader's end (one thread): the rules to switch to, once the engine has.
pub struct RulesFollower {
    rx: Receiver<Box<RuleSet>>,
    shared: Arc<Shared>,
    /// Staged copies taken from the queue, oldest first (at most `STAGED_RULES`).
    pending: Vec<RuleSet>,
    /// The sequence followed last.
    followed_seq: u64,
}

/// The three ends, for rules whose first set has load sequence `current_seq`.
pub fn follow_rules(current_seq: u64) -> (RulesStage, InstalledRules, RulesFollower) {
    let (tx, rx) = bounded(STAGED_RULES);
    let shared = Arc::new(Shared::default());
    shared.installed_seq.store(current_seq, Ordering::Relaxed);
    (
        RulesStage {
            tx,
            rx: rx.clone(),
            shared: Arc::clone(&shared),
        },
        InstalledRules {
            shared: Arc::clone(&shared),
        },
        RulesFollower {
            rx,
            shared,
            pending: Vec::with_capacity(STAGED_RULES),
            followed_seq: current_seq,
        },
    )
}

impl RulesStage {
    /// Stages a copy of `rules`. Call before handing `rules` to the engine: the follower
    /// finds it once the engine reports the install. Never blocks; when `STAGED_RULES` copies
    /// wait, the oldest is dropped (and counted).
    pub fn stage(&self, rules: &RuleSet) {
        let mut copy = Box::new(rules.clone());
        for _ in 0..=STAGED_RULES {
            match self.tx.try_send(copy) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) => {
                    copy = back;
                    if self.rx.try_recv().is_ok() {
                        self.shared.staged_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        self.shared.staged_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Staged copies dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.shared.staged_dropped.load(Ordering::Relaxed)
    }
}

impl InstalledRules {
    /// The engine installed the rule set with load sequence `seq`. One atomic store.
    pub fn installed(&self, seq: u64) {
        self.shared.installed_seq.store(seq, Ordering::Release);
    }

    /// The sequence the engine installed last.
    pub fn seq(&self) -> u64 {
        self.shared.installed_seq.load(Ordering::Acquire)
    }
}

impl RulesFollower {
    /// The rules to install now: the staged copy of the set the engine installed since the
    /// last call, if any. Copies older than it are discarded.
    pub fn poll(&mut self) -> Option<Box<RuleSet>> {
        // The installed sequence first: a set is staged before the engine is handed it, so
        // every copy up to the one read here is already in the queue.
        let installed = self.shared.installed_seq.load(Ordering::Acquire);
        while let Ok(r) = self.rx.try_recv() {
            if self.pending.len() == STAGED_RULES {
                self.pending.remove(0);
                self.shared.staged_dropped.fetch_add(1, Ordering::Relaxed);
            }
            self.pending.push(*r);
        }
        if installed == self.followed_seq {
            return None;
        }
        self.followed_seq = installed;
        let found = self
            .pending
            .iter()
            .position(|r| r.version().seq == installed)
            .map(|i| Box::new(self.pending.swap_remove(i)));
        self.pending.retain(|r| r.version().seq > installed);
        if found.is_none() {
            self.shared.missed.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// The load sequence of the rules followed last.
    pub fn followed_seq(&self) -> u64 {
        self.followed_seq
    }

    /// Installs the follower could not follow (their staged copy was dropped).
    pub fn missed(&self) -> u64 {
        self.shared.missed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn set(seq: u64, top: u32) -> RuleSet {
        let text = format!("[default.panel]\nwindow_days = 90\ntop = {top}\n");
        RuleSet::parse(&text, Path::new("t.toml"))
            .expect("valid rules")
            .with_seq(seq)
    }

    #[test]
    fn follows_only_what_the_engine_installed() {
        let (stage, engine, mut admin) = follow_rules(1);
        assert!(admin.poll().is_none());
        // Staged, not installed (the engine has not got it yet, or refused it): no switch.
        stage.stage(&set(2, 3));
        assert!(admin.poll().is_none());
        engine.installed(2);
        let got = admin.poll().expect("the installed set");
        assert_eq!(got.version().seq, 2);
        assert!(admin.poll().is_none());
        // Two staged, the engine jumps to the latest: the older copy is discarded.
        stage.stage(&set(3, 4));
        stage.stage(&set(4, 5));
        engine.installed(4);
        assert_eq!(admin.poll().expect("set 4").version().seq, 4);
        assert_eq!(admin.followed_seq(), 4);
        assert_eq!(admin.missed(), 0);
    }

    #[test]
    fn a_full_stage_drops_the_oldest_and_counts() {
        let (stage, engine, mut admin) = follow_rules(1);
        for seq in 2..2 + STAGED_RULES as u64 + 2 {
            stage.stage(&set(seq, 3));
        }
        assert_eq!(stage.dropped(), 2);
        // Set 2 was dropped: following it is a counted miss, never a wrong switch.
        engine.installed(2);
        assert!(admin.poll().is_none());
        assert_eq!(admin.missed(), 1);
        engine.installed(7);
        assert_eq!(admin.poll().expect("set 7").version().seq, 7);
    }
}
