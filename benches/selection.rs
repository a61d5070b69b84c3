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
use rfq_router::dealers::{Dealer, Dealers, HitMessage};
use rfq_router::rfq::types::{DealerId, FixId, Side};
use rfq_router::select::instruments::Date;
use rfq_router::select::model::{
    back_off, composite, metrics_with, normalise, ModelConfig, Observation, RowStats, SegmentPrior,
};
use rfq_router::select::pretrade::{analyse, OrderTerms};
use rfq_router::select::rules::RuleSet;
use rfq_router::select::scored::{load_instruments, segment_keys, ScoredPanel, TableScores};
use rfq_router::select::segment::{Buckets, RatingBucket, SegmentInput, SegmentKeys};
use rfq_router::select::table::{ScoreReader, ScoreWriter, TableParams};
use rfq_router::select::{Candidate, Panel, RfqSpec, Selection};
use rfq_router::time::Nanos;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

        // With back-off along issuer -> sector x rating -> asset class -> all (the issuer
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

const SELECTION_ISIN: &[u8] = b"US99L2QH1094"; // HY corporate, BB, ADV 6.8M
const SELECTION_QTY: f64 = 6_000_000.0;

/// 49 conditions that do not hold for the order, then one that does (top 5 by score).
fn fifty_rules() -> String {
    let mut text = String::from(
        "[default.panel]\nwindow_days = 90\ntop = 4\n[default.protocol]\nmax_dealers = 4\n\n",
    );
    for k in 0..49u32 {
        let when = match k % 5 {
            0 => format!("asset_class == muni and size > {}", 2_000_000 + k),
            1 => format!(
                "pct_adv > {} or days_since_last_trade > {}",
                100 + k,
                30 + k
            ),
            2 => format!("issuer == \"Nobody {k}\" or maturity_years > {}", 60 + k),
            3 => format!("side == sell and illiquid and impact_bps > {}", 100 + k),
            _ => "currency == \"JPY\"".to_string(),
        };
        text.push_str(&format!("[[rule]]\nname = \"r{k}\"\nwhen = '{when}'\n\n"));
    }
    text.push_str(
        "[[rule]]\nname = \"fires\"\nwhen = \"asset_class == hy_corp and rating < BBB- and size > 5_000_000\"\n\
         [rule.panel]\ntop = 5\n[rule.protocol]\nmax_dealers = 5\n",
    );
    text
}

fn bench_dealers(n: u32) -> Dealers {
    Dealers {
        dealers: (0..n)
            .map(|i| Dealer {
                name: format!("Dealer {i}"),
                legal_entity: String::new(),
                party_id: format!("D{i}"),
                session: i as usize,
                tier: 1 + (i % 3 == 0) as u8,
                asset_classes: vec![if i % 2 == 0 { "hy_corp" } else { "ig_corp" }.to_string()],
                agreements: Vec::new(),
                contacts: Vec::new(),
                disclose_side_and_size: true,
                hit_with: HitMessage::QuoteResponse,
                tell_losers: true,
                line: 0,
            })
            .collect(),
    }
}

fn selection_benches(c: &mut Criterion) {
    let rules = RuleSet::parse(&fifty_rules(), Path::new("bench rules")).expect("bench rules");
    let master = load_instruments(None).expect("embedded security master");
    let now = Nanos(Date::parse("2026-11-21").unwrap().0 as u64 * 86_400_000_000_000);
    let instrument = master.lookup(SELECTION_ISIN).expect("bench instrument");
    let pre = analyse(
        rules.pretrade(),
        instrument,
        &OrderTerms {
            side: Some(Side::Buy),
            size: SELECTION_QTY,
            mid: None,
        },
        now,
    );
    let keys = segment_keys(
        instrument,
        &pre,
        &Buckets::default_maturity_years(),
        &Buckets::default_size_notional(),
    );
    // A table of 10,000 dealers with 5-40 RFQs each in every segment of the order.
    let cfg = ModelConfig::default();
    let path = std::env::temp_dir().join(format!("rfq-bench-sel-{}.scores", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut w = ScoreWriter::create(&path, TableParams::new(DEALERS, 16, &cfg), Nanos(1))
        .expect("create bench table");
    let agg = w.header().aggregate_dealer();
    for d in 0..DEALERS {
        for key in keys.update_order() {
            for dealer in [d, agg] {
                w.update(dealer, key, |s| {
                    for k in 0..(5 + d % 36) {
                        let at = Nanos(now.0 - u64::from(k) * 3_600_000_000_000);
                        s.observe(Observation::RfqSent, at, &cfg).unwrap();
                        s.observe(
                            Observation::Quoted {
                                response_s: f64::from(2 + (d + k) % 50),
                            },
                            at,
                            &cfg,
                        )
                        .unwrap();
                        if (d + k) % 3 != 0 {
                            s.observe(
                                Observation::Won {
                                    price_improvement_bps: f64::from(d % 9) - 3.0,
                                    vs_cover_bps: Some(1.0),
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
    let id = FixId::new(SELECTION_ISIN).unwrap();
    let source = FixId::new(b"4").unwrap();
    let spec = RfqSpec {
        instrument: &id,
        id_source: &source,
        side: Some(Side::Buy),
        qty: SELECTION_QTY,
        now,
    };
    let mut g = c.benchmark_group("full_selection");
    for n in [200u32, DEALERS] {
        let dealers = bench_dealers(n);
        let mut panel = ScoredPanel::new(
            rules.clone(),
            master.clone(),
            &dealers,
            TableScores::new(w.reader(), cfg.clone()),
        );
        let candidates: Vec<Candidate> = (0..n)
            .map(|i| Candidate {
                dealer: DealerId(i as u16),
                tier: 1 + (i % 3 == 0) as u8,
                online: i % 17 != 0,
            })
            .collect();
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
    drop(w);
    let _ = std::fs::remove_file(&path);
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
