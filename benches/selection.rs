//! Selection benchmarks (issue 4): score lookups through the seqlock, the composite score over
//! 200 and 10,000 dealers, and full panel selection (`ScoredPanel::select` with 50 rules,
//! precomputed scores, 200 and 10,000 dealers; plus the cost of filling a new segment path). Each part is one function taking `&mut Criterion`, listed in `criterion_group!`
//! at the bottom: add a group by adding a function and naming it there.
//!
//! The score fixture is a real memory-mapped table of 10,000 dealers x 100 segments (a sparse
//! 128 MB file in the temp directory, removed at the end), with rows for the segments one
//! corporate bond order touches. Nothing here asserts on time: criterion reports, people judge.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hdrhistogram::Histogram;
use rfq_router::select::model::{
    back_off, composite, metrics_with, normalise, ModelConfig, Observation, RowStats, SegmentPrior,
};
use rfq_router::select::segment::{Buckets, RatingBucket, SegmentInput, SegmentKeys};
use rfq_router::select::table::{ScoreReader, ScoreWriter, TableParams};
use rfq_router::select::{Panel, Selection};
use rfq_router::time::Nanos;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "support/selection_fixture.rs"]
mod selection_fixture;
use selection_fixture::{selection_candidates, SelectionWorld};

const DEALERS: u32 = 10_000;
const SEGMENTS_PER_DEALER: u32 = 100;
const NOW: Nanos = Nanos(1_700_000_000_000_000_000);

/// A populated table and the keys of one order.
struct ScoreFixture {
    _writer: ScoreWriter,
    reader: ScoreReader,
    keys: SegmentKeys,
    cfg: ModelConfig,
    path: PathBuf,
}

impl Drop for ScoreFixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn score_fixture() -> ScoreFixture {
    let cfg = ModelConfig::default();
    let path = std::env::temp_dir().join(format!("rfq-bench-{}.scores", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut w = ScoreWriter::create(
        &path,
        TableParams::new(DEALERS, SEGMENTS_PER_DEALER, &cfg),
        Nanos(1),
    )
    .expect("create bench table");
    let keys = SegmentKeys::of(
        &SegmentInput {
            asset_class: b"HY",
            issuer: b"ACME INDUSTRIES",
            sector: b"Industrials",
            rating: RatingBucket::Bb,
            years_to_maturity: 7.0,
            notional: 10e6,
        },
        &Buckets::default_maturity_years(),
        &Buckets::default_size_notional(),
    );
    let agg = w.header().aggregate_dealer();
    // Every dealer: 20-60 RFQs in the broad segments, 2 in the issuer (thin, so back-off
    // goes one level up), spread over the last 30 days.
    for d in 0..DEALERS {
        let rfqs = 20 + d % 41;
        for (i, key) in keys.update_order().iter().enumerate() {
            let n = if *key == keys.issuer { 2 } else { rfqs };
            for dealer in [d, agg] {
                w.update(dealer, *key, |s| {
                    for k in 0..n {
                        let at = Nanos(NOW.0 - u64::from(k) * 60_000_000_000 * 720);
                        s.observe(Observation::RfqSent, at, &cfg).unwrap();
                        s.observe(
                            Observation::Quoted {
                                response_s: f64::from(5 + (d + k) % 40),
                            },
                            at,
                            &cfg,
                        )
                        .unwrap();
                        if !(d + k + i as u32).is_multiple_of(3) {
                            s.observe(
                                Observation::Won {
                                    price_improvement_bps: f64::from(d % 7) - 2.0,
                                    vs_cover_bps: Some(1.5),
                                },
                                at,
                                &cfg,
                            )
                            .unwrap();
                            s.observe(
                                Observation::Markout {
                                    horizon: 2,
                                    bps: -f64::from(d % 5) / 4.0,
                                },
                                at,
                                &cfg,
                            )
                            .unwrap();
                        }
                    }
                })
                .expect("bench table has room");
            }
        }
    }
    ScoreFixture {
        reader: w.reader(),
        _writer: w,
        keys,
        cfg,
        path,
    }
}

fn score_benches(c: &mut Criterion) {
    let f = score_fixture();
    let r = &f.reader;
    let cfg = &f.cfg;

    let mut g = c.benchmark_group("score_lookup");
    let row = r.locate(1234, f.keys.asset_class).unwrap().unwrap().0;
    g.bench_function("seqlock_read_row", |b| {
        b.iter(|| r.read_row(black_box(row)).unwrap())
    });
    g.bench_function("find_dealer_segment", |b| {
        b.iter(|| {
            r.find(black_box(1234), black_box(f.keys.asset_class))
                .unwrap()
        })
    });
    g.finish();

    let agg = r.header().aggregate_dealer();
    let mut g = c.benchmark_group("composite");
    for n in [200u32, DEALERS] {
        g.throughput(Throughput::Elements(u64::from(n)));
        let dealers: Vec<u32> = (0..n).map(|i| i * (DEALERS / n)).collect();
        let mut out = vec![0.0f64; n as usize];

        // Pure arithmetic: rows already in memory.
        let rows: Vec<RowStats> = dealers
            .iter()
            .map(|&d| r.find(d, f.keys.asset_class).unwrap().unwrap())
            .collect();
        let seg = r.find(agg, f.keys.asset_class).unwrap().unwrap();
        let prior = SegmentPrior::of(&seg, NOW, cfg);
        g.bench_with_input(BenchmarkId::new("rows_in_memory", n), &n, |b, _| {
            b.iter(|| {
                for (o, row) in out.iter_mut().zip(&rows) {
                    let m = metrics_with(row, &prior, NOW, cfg);
                    *o = composite(&normalise(&m, cfg.speed_scale_s), &cfg.weights);
                }
                black_box(&out);
            })
        });

        // The floor if the scoring thread published normalised components per dealer in a
        // dense array: a 5-term dot product with the rule's weights per dealer.
        let components: Vec<[f32; 5]> = rows
            .iter()
            .map(|row| {
                let s = normalise(&metrics_with(row, &prior, NOW, cfg), cfg.speed_scale_s);
                [
                    s.fill,
                    s.price_improvement,
                    s.leakage,
                    s.speed,
                    s.loser_leakage,
                ]
                .map(|x| x as f32)
            })
            .collect();
        let w = &cfg.weights;
        let wv = [
            w.fill,
            w.price_improvement,
            w.leakage,
            w.speed,
            w.loser_leakage,
        ]
        .map(|x| x as f32);
        g.bench_with_input(BenchmarkId::new("precomputed_components", n), &n, |b, _| {
            b.iter(|| {
                for (o, c) in out.iter_mut().zip(&components) {
                    *o = f64::from(c.iter().zip(&wv).map(|(c, w)| c * w).sum::<f32>());
                }
                black_box(&out);
            })
        });

        // Each dealer's row read through the seqlock, one segment.
        g.bench_with_input(BenchmarkId::new("from_table", n), &n, |b, _| {
            b.iter(|| {
                let seg = r.find(agg, f.keys.asset_class).unwrap().unwrap_or_default();
                let prior = SegmentPrior::of(&seg, NOW, cfg);
                for (o, &d) in out.iter_mut().zip(&dealers) {
                    let row = r.find(d, f.keys.asset_class).unwrap().unwrap_or_default();
                    let m = metrics_with(&row, &prior, NOW, cfg);
                    *o = composite(&normalise(&m, cfg.speed_scale_s), &cfg.weights);
                }
                black_box(&out);
            })
        });

        // With back-off along issuer -> sector x rating -> asset class (the issuer
        // rows are thin, so every dealer settles one level up), and the matching prior.
        let path = f.keys.primary_path();
        g.bench_with_input(
            BenchmarkId::new("from_table_with_backoff", n),
            &n,
            |b, _| {
                b.iter(|| {
                    // One prior per level of the path, read and computed once per RFQ.
                    let empty = SegmentPrior::of(&RowStats::default(), NOW, cfg);
                    let mut priors = [empty; 4];
                    for (p, k) in priors.iter_mut().zip(&path) {
                        let seg = r.find(agg, *k).unwrap().unwrap_or_default();
                        *p = SegmentPrior::of(&seg, NOW, cfg);
                    }
                    for (o, &d) in out.iter_mut().zip(&dealers) {
                        let chosen = back_off(&path, NOW, cfg, |k| r.find(d, k).ok().flatten());
                        *o = match chosen {
                            Some(bo) => {
                                let m = metrics_with(&bo.own, &priors[bo.depth], NOW, cfg);
                                composite(&normalise(&m, cfg.speed_scale_s), &cfg.weights)
                            }
                            None => 0.0,
                        };
                    }
                    black_box(&out);
                })
            },
        );
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Full panel selection: `ScoredPanel::select` (security master, pre-trade, 50 rules with the
// last one firing, every dealer's scores, the panel) for 200 and 10,000 dealers, with the
// scores precomputed per segment path (the cache warm, as after the first RFQ in a segment),
// over a real score table.

fn selection_benches(c: &mut Criterion) {
    // A table of 10,000 dealers with 5-40 RFQs each in every segment of the order.
    let world = SelectionWorld::new("rfq-bench-sel", DEALERS, DEALERS);
    let spec = world.spec();
    let mut g = c.benchmark_group("full_selection");
    for n in [200u32, DEALERS] {
        let mut panel = world.panel(n);
        let candidates = selection_candidates(n);
        let mut out = Selection::default();
        // Fills the cache for the order's segment path (the first RFQ in a segment).
        panel.select(&spec, &candidates, &mut out);
        assert_eq!(out.dealers.len(), 5, "the firing rule's panel");
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("precomputed_50_rules", n), &n, |b, _| {
            b.iter(|| {
                out.dealers.clear();
                panel.select(black_box(&spec), black_box(&candidates), &mut out);
                black_box(&out);
            })
        });
        // p50/p99 of single selections (each sample includes one Instant::now() pair).
        let mut hist = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        for _ in 0..2_000 {
            let t = Instant::now();
            out.dealers.clear();
            panel.select(black_box(&spec), black_box(&candidates), &mut out);
            hist.record(t.elapsed().as_nanos() as u64).unwrap();
        }
        println!(
            "full_selection/precomputed_50_rules/{n} per call (incl. timer): p50 {} ns, p99 {} ns, max {} ns",
            hist.value_at_quantile(0.50),
            hist.value_at_quantile(0.99),
            hist.max()
        );
        // The cost of filling the cache for a new segment path (every dealer's back-off and
        // shrinkage through the table).
        g.bench_with_input(BenchmarkId::new("cold_path_fill", n), &n, |b, _| {
            b.iter(|| {
                panel.configure(1, Nanos(0), Nanos(0));
                out.dealers.clear();
                panel.select(black_box(&spec), black_box(&candidates), &mut out);
                black_box(&out);
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // Short runs: the machine is shared.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = score_benches, selection_benches
}
criterion_main!(benches);
