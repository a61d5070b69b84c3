//! Precomputed component scores per (segment path, dealer), so that a panel over thousands
//! of dealers is a scan of a dense array instead of thousands of score-table look-ups.
//!
//! Owns `ScoreCache`: a bounded set of entries, one per back-off path (issuer -> sector and
//! rating -> asset class) seen recently, each holding every dealer's scores from a
//! `ScoreSource`. An entry is filled on first use; after a score update (`mark_dirty`) only
//! the dealers updated are recomputed at the next use; the whole entry is recomputed once it
//! is older than the refresh interval (the pooled segment priors and the decay move slowly,
//! so between refreshes a dealer's score can lag other dealers' news by at most that long).
//! Entries are allocated until the bound is reached, then the least recently used one is
//! reused: no allocation in steady state. No clock (`now` is a parameter), no I/O.
//!
//! Beside the component scores, an entry keeps up to `MAX_VIEWS` dense arrays of the weighted
//! score under a rule's panel weights (one `f64` per dealer, struct-of-arrays), so a panel is
//! ranked by reading one number per dealer instead of a 5-term sum over a 40-byte struct. A
//! view is filled the first time a rule with those weights asks for that path, kept current
//! with the components (the dealers of a score update, a refresh) and, when an entry has
//! `MAX_VIEWS` views, the least recently used one is reused for new weights.

use crate::rfq::types::DealerId;
use crate::select::rules::{ComponentScores, Weights};
use crate::select::scored::ScoreSource;
use crate::select::segment::{SegmentKey, SegmentKeys, MAX_PATH};
use crate::time::Nanos;

/// Default number of segment paths kept.
pub const DEFAULT_CACHE_PATHS: usize = 64;
/// Default age at which an entry is recomputed in full.
pub const DEFAULT_REFRESH: Nanos = Nanos(60 * Nanos::PER_SEC);
/// Most weighted-score arrays (distinct rule weights) kept per entry.
pub const MAX_VIEWS: usize = 8;

/// Every dealer's weighted score under `weights`.
#[derive(Debug)]
struct View {
    weights: Weights,
    scores: Box<[f64]>,
    last_used: u64,
}

impl View {
    fn fill(&mut self, components: &[ComponentScores]) {
        for (s, c) in self.scores.iter_mut().zip(components) {
            *s = self.weights.score(c);
        }
    }
}

/// Bit for bit (a NaN weight still finds its view).
fn same_weights(a: &Weights, b: &Weights) -> bool {
    let bits = |w: &Weights| {
        [
            w.fill_rate,
            w.price_improvement,
            w.leakage,
            w.speed,
            w.loser_leakage,
        ]
        .map(f64::to_bits)
    };
    bits(a) == bits(b)
}

#[derive(Debug)]
struct Entry {
    path: [SegmentKey; MAX_PATH],
    scores: Box<[ComponentScores]>,
    views: Vec<View>,
    dirty: Box<[bool]>,
    dirty_list: Vec<u16>,
    computed_at: Nanos,
    last_used: u64,
}

/// One path's precomputed scores, per dealer (index = `DealerId`).
#[derive(Debug, Clone, Copy)]
pub struct CachedScores<'c> {
    /// The component scores.
    pub components: &'c [ComponentScores],
    /// `weights.score(components[d])` under the weights asked for.
    pub weighted: &'c [f64],
}

/// What the cache did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    pub hits: u64,
    /// Entries filled for a path not in the cache.
    pub misses: u64,
    /// Entries recomputed in full because they were older than the refresh interval.
    pub refreshes: u64,
    /// Weighted-score arrays filled for weights an entry did not have.
    pub view_fills: u64,
    /// Dealers recomputed after a score update.
    pub dealer_updates: u64,
}

/// Every dealer's scores for recently used segment paths.
#[derive(Debug)]
pub struct ScoreCache {
    entries: Vec<Entry>,
    max_paths: usize,
    refresh: Nanos,
    dealers: usize,
    use_clock: u64,
    counters: CacheCounters,
}

impl ScoreCache {
    /// A cache for `dealers` dealers (`DealerId` 0..dealers) and at most `max_paths` paths.
    pub fn new(dealers: usize, max_paths: usize, refresh: Nanos) -> ScoreCache {
        ScoreCache {
            entries: Vec::with_capacity(max_paths.max(1)),
            max_paths: max_paths.max(1),
            refresh,
            dealers,
            use_clock: 0,
            counters: CacheCounters::default(),
        }
    }

    pub fn counters(&self) -> CacheCounters {
        self.counters
    }

    /// Forgets every entry (e.g. new rules with other windows or weights in force).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Dealer `dealer`'s rows changed: recompute it at the next use of every entry.
    pub fn mark_dirty(&mut self, dealer: DealerId) {
        let i = usize::from(dealer.0);
        for e in &mut self.entries {
            if let Some(d) = e.dirty.get_mut(i) {
                if !*d {
                    *d = true;
                    e.dirty_list.push(dealer.0);
                }
            }
        }
    }

    /// Every dealer's scores for `keys`' back-off path at `now`, computing what is missing,
    /// stale or dirty, and their weighted score under `weights`. A dealer without data gets
    /// `prior`.
    pub fn scores<S: ScoreSource>(
        &mut self,
        keys: &SegmentKeys,
        now: Nanos,
        source: &S,
        prior: ComponentScores,
        weights: &Weights,
    ) -> CachedScores<'_> {
        self.use_clock += 1;
        let path = keys.primary_path();
        let found = self.entries.iter().position(|e| e.path == path);
        let i = match found {
            Some(i) => {
                self.counters.hits += 1;
                i
            }
            None => {
                self.counters.misses += 1;
                if self.entries.len() < self.max_paths {
                    self.entries.push(Entry {
                        path,
                        scores: vec![prior; self.dealers].into_boxed_slice(),
                        views: Vec::with_capacity(MAX_VIEWS),
                        dirty: vec![false; self.dealers].into_boxed_slice(),
                        dirty_list: Vec::with_capacity(self.dealers),
                        computed_at: Nanos(0),
                        last_used: 0,
                    });
                    self.entries.len() - 1
                } else {
                    let lru = self
                        .entries
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| e.last_used)
                        .map_or(0, |(i, _)| i);
                    self.entries[lru].path = path;
                    lru
                }
            }
        };
        let e = &mut self.entries[i];
        e.last_used = self.use_clock;
        let compute = |d: usize| {
            source
                .components(DealerId(d as u16), keys, now)
                .map_or(prior, |f| f.scores)
        };
        if found.is_none() || now.saturating_sub(e.computed_at) > self.refresh {
            if found.is_some() {
                self.counters.refreshes += 1;
            }
            for (d, s) in e.scores.iter_mut().enumerate() {
                *s = compute(d);
            }
            for v in &mut e.views {
                v.fill(&e.scores);
            }
            e.dirty.iter_mut().for_each(|x| *x = false);
            e.dirty_list.clear();
            e.computed_at = now;
        } else if !e.dirty_list.is_empty() {
            for &d in &e.dirty_list {
                let d = usize::from(d);
                let c = compute(d);
                e.scores[d] = c;
                for v in &mut e.views {
                    v.scores[d] = v.weights.score(&c);
                }
                e.dirty[d] = false;
                self.counters.dealer_updates += 1;
            }
            e.dirty_list.clear();
        }
        let v = match e
            .views
            .iter()
            .position(|v| same_weights(&v.weights, weights))
        {
            Some(v) => v,
            None => {
                self.counters.view_fills += 1;
                let v = if e.views.len() < MAX_VIEWS {
                    e.views.push(View {
                        weights: *weights,
                        scores: vec![0.0; self.dealers].into_boxed_slice(),
                        last_used: 0,
                    });
                    e.views.len() - 1
                } else {
                    let lru = e
                        .views
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, v)| v.last_used)
                        .map_or(0, |(i, _)| i);
                    e.views[lru].weights = *weights;
                    lru
                };
                e.views[v].fill(&e.scores);
                v
            }
        };
        let view = &mut e.views[v];
        view.last_used = self.use_clock;
        CachedScores {
            components: &e.scores,
            weighted: &view.scores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::scored::DealerScores;
    use std::cell::Cell;

    fn keys() -> SegmentKeys {
        SegmentKeys::example()
    }

    /// Scores from the dealer and a generation the test bumps.
    struct Source {
        generation: Cell<u32>,
    }

    impl ScoreSource for Source {
        fn components(&self, dealer: DealerId, _: &SegmentKeys, _: Nanos) -> Option<DealerScores> {
            let x = f64::from(dealer.0) + f64::from(self.generation.get()) * 0.37;
            Some(DealerScores {
                scores: ComponentScores {
                    fill_rate: (x * 0.13).fract(),
                    price_improvement: (x * 0.29).fract() + 0.5,
                    leakage: (x * 0.41).fract() + 0.5,
                    speed: (x * 0.07).fract(),
                    loser_leakage: 1.0,
                },
                observations: 1.0,
                segment: None,
            })
        }
    }

    fn weights(k: u32) -> Weights {
        let k = f64::from(k);
        Weights {
            fill_rate: 0.1 + k * 0.01,
            price_improvement: 0.4,
            leakage: 0.2 - k * 0.01,
            speed: 0.1,
            loser_leakage: k * 0.001,
        }
    }

    /// Every weighted array equals the weights applied to the components, bit for bit.
    fn check(c: CachedScores<'_>, w: &Weights) {
        assert_eq!(c.components.len(), c.weighted.len());
        for (s, x) in c.components.iter().zip(c.weighted) {
            assert_eq!(w.score(s).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn weighted_arrays_follow_updates_refreshes_and_more_weights_than_views() {
        let source = Source {
            generation: Cell::new(0),
        };
        let prior = ComponentScores::default();
        let refresh = Nanos(1_000);
        let mut cache = ScoreCache::new(50, 4, refresh);
        let k = keys();
        let mut now = Nanos(10);
        // More distinct weights than views: each round asks for all of them, in turn.
        for round in 0..3u32 {
            for w in 0..(MAX_VIEWS as u32 + 3) {
                check(
                    cache.scores(&k, now, &source, prior, &weights(w)),
                    &weights(w),
                );
            }
            // Some dealers' scores change and the cache is told.
            source.generation.set(round + 1);
            for d in (0..50).step_by(7) {
                cache.mark_dirty(DealerId(d));
            }
            let w = weights(round);
            let c = cache.scores(&k, now, &source, prior, &w);
            check(c, &w);
            assert_eq!(
                c.components[7],
                source.components(DealerId(7), &k, now).unwrap().scores
            );
        }
        // Only the last few weights fit: asking again for the first refills its array.
        let fills = cache.counters().view_fills;
        let w = weights(MAX_VIEWS as u32 + 2);
        check(cache.scores(&k, now, &source, prior, &w), &w);
        assert_eq!(cache.counters().view_fills, fills, "a kept view");
        check(
            cache.scores(&k, now, &source, prior, &weights(0)),
            &weights(0),
        );
        assert_eq!(cache.counters().view_fills, fills + 1, "a reused view");
        // Every dealer changes without being named; a refresh recomputes all of them and
        // every array.
        source.generation.set(99);
        now = Nanos(now.0 + refresh.0 + 1);
        let w = weights(0);
        let c = cache.scores(&k, now, &source, prior, &w);
        check(c, &w);
        assert_eq!(
            c.components[3],
            source.components(DealerId(3), &k, now).unwrap().scores
        );
        assert_eq!(cache.counters().refreshes, 1);
    }
}
