//! Journal benchmarks: append throughput in `os` mode beside a raw sequential write of the
//! same bytes to the same disk, `fsync` mode at a 1 ms group commit, and replay (read and
//! CRC-verify) rate.
//!
//! Every figure is records/s as criterion reports it (one iteration = `BATCH` records); a
//! summary at the end adds MB/s of record bytes (headers, payload, padding) and the ratio to
//! the raw write. Files go under the target's temporary directory and are removed after each
//! benchmark. This file measures; it asserts nothing about speed.

use std::fs::{self, File};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use rfq_router::journal::format::{record_footprint, write_record};
use rfq_router::journal::{Durability, Journal, JournalConfig, JournalReader, RecordKind};
use rfq_router::time::Nanos;

/// Records per criterion iteration.
const BATCH: u64 = 10_000;
/// Records in the journal the replay benchmark reads.
const REPLAY_RECORDS: u64 = 2_000_000;
const PAYLOAD_SIZES: [usize; 2] = [100, 500];

/// (benchmark, records, record bytes, elapsed) over every measured call, for the summary.
static TOTALS: Mutex<Vec<(String, u64, u64, Duration)>> = Mutex::new(Vec::new());

fn record(name: &str, records: u64, bytes: u64, elapsed: Duration) {
    let mut t = TOTALS.lock().unwrap();
    match t.iter_mut().find(|e| e.0 == name) {
        Some(e) => {
            e.1 += records;
            e.2 += bytes;
            e.3 += elapsed;
        }
        None => t.push((name.to_string(), records, bytes, elapsed)),
    }
}

fn bench_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("journal-bench-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(dir: &Path, durability: Durability) -> JournalConfig {
    JournalConfig {
        segment_size_bytes: 64 << 20,
        queue_capacity: 16_384,
        max_payload_bytes: 4096,
        durability,
        ..JournalConfig::new(dir)
    }
}

/// Appends `iters * BATCH` records and waits until the last is durable; returns the time.
fn append_run(j: &mut Journal, payload: &[u8], iters: u64) -> Duration {
    let start = Instant::now();
    let mut last = 0;
    for _ in 0..iters * BATCH {
        let ts = Nanos(j.next_seq());
        last = j.append(RecordKind::EngineDecision, ts, payload).unwrap();
    }
    assert!(j.wait_durable(last, Duration::from_secs(600)).unwrap());
    start.elapsed()
}

fn append_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(6));

    for size in PAYLOAD_SIZES {
        let payload = vec![0x5Au8; size];
        let footprint = record_footprint(size) as u64;

        // Raw sequential write of the same record bytes, same directory, page cache only.
        let dir = bench_dir(&format!("raw-{size}"));
        let mut chunk = vec![0u8; (footprint * BATCH) as usize];
        let mut at = 0;
        for seq in 1..=BATCH {
            at += write_record(
                &mut chunk[at..],
                seq,
                Nanos(seq),
                RecordKind::EngineDecision,
                &payload,
            );
        }
        // One file grows for the whole benchmark, as the journal's segments do, so both
        // meet the same page-cache writeback to the disk.
        let mut raw = File::create(dir.join("raw.bin")).unwrap();
        let name = format!("raw_write/{size}B");
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    raw.write_all(&chunk).unwrap();
                }
                let elapsed = start.elapsed();
                record(&name, iters * BATCH, iters * BATCH * footprint, elapsed);
                elapsed
            })
        });
        drop(raw);
        fs::remove_dir_all(&dir).unwrap();

        let dir = bench_dir(&format!("os-{size}"));
        let (mut j, _) = Journal::open(config(&dir, Durability::Os)).unwrap();
        let name = format!("append_os/{size}B");
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let elapsed = append_run(&mut j, &payload, iters);
                record(&name, iters * BATCH, iters * BATCH * footprint, elapsed);
                elapsed
            })
        });
        let m = j.close().unwrap();
        eprintln!(
            "append_os/{size}B: queue full {} times, {} ms waiting",
            m.queue_full_events,
            m.backpressure_wait_ns / 1_000_000
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    let size = 100;
    let payload = vec![0x5Au8; size];
    let footprint = record_footprint(size) as u64;
    let dir = bench_dir("fsync");
    let durability = Durability::Fsync {
        group_commit_interval_us: 1000,
        group_commit_records: u32::MAX,
    };
    let (mut j, _) = Journal::open(config(&dir, durability)).unwrap();
    let name = format!("append_fsync_1ms/{size}B");
    group.sample_size(10);
    group.bench_function(&name, |b| {
        b.iter_custom(|iters| {
            let elapsed = append_run(&mut j, &payload, iters);
            record(&name, iters * BATCH, iters * BATCH * footprint, elapsed);
            elapsed
        })
    });
    let m = j.close().unwrap();
    eprintln!(
        "append_fsync_1ms: {} syncs, mean {} us, max {} us",
        m.syncs,
        m.sync_ns_total / m.syncs.max(1) / 1000,
        m.sync_ns_max / 1000
    );
    fs::remove_dir_all(&dir).unwrap();
    group.finish();
}

fn replay_bench(c: &mut Criterion) {
    let size = 100;
    let payload = vec![0x5Au8; size];
    let dir = bench_dir("replay");
    let (mut j, _) = Journal::open(config(&dir, Durability::Os)).unwrap();
    for seq in 1..=REPLAY_RECORDS {
        j.append(RecordKind::EngineDecision, Nanos(seq), &payload)
            .unwrap();
    }
    j.close().unwrap();
    let reader = JournalReader::open(&dir).unwrap();
    let footprint = record_footprint(size) as u64;

    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(REPLAY_RECORDS));
    group.sample_size(10);
    let name = format!("replay/{size}B");
    group.bench_function(&name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut n = 0u64;
                let mut bytes = 0usize;
                for r in reader.records() {
                    let r = r.unwrap();
                    n += 1;
                    bytes += r.record.payload.len();
                }
                assert_eq!(n, REPLAY_RECORDS);
                black_box(bytes);
            }
            let elapsed = start.elapsed();
            record(
                &name,
                iters * REPLAY_RECORDS,
                iters * REPLAY_RECORDS * footprint,
                elapsed,
            );
            elapsed
        })
    });
    group.finish();
    drop(reader);
    fs::remove_dir_all(&dir).unwrap();
}

fn print_summary() {
    let totals = TOTALS.lock().unwrap();
    println!("\nsummary (all calls, warm-up included):");
    let rate = |name: &str| {
        totals.iter().find(|e| e.0 == name).map(|e| {
            (
                e.1 as f64 / e.3.as_secs_f64(),
                e.2 as f64 / e.3.as_secs_f64(),
            )
        })
    };
    for (name, ..) in totals.iter() {
        let (rps, bps) = rate(name).unwrap();
        print!(
            "  {name:<24} {:>8.2} M records/s {:>9.1} MB/s",
            rps / 1e6,
            bps / 1e6
        );
        if let Some(size) = name.strip_prefix("append_os/") {
            if let Some((_, raw_bps)) = rate(&format!("raw_write/{size}")) {
                print!("   raw write is {:.2}x faster", raw_bps / bps);
            }
        }
        println!();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    append_benches(&mut c);
    replay_bench(&mut c);
    c.final_summary();
    print_summary();
}
