//! Desk QuoteRequest bytes in -> dealer QuoteRequest bytes out, in process, through the real
//! FIX sessions (framing, tokenising, validation, session checks), the RFQ engine (selection
//! over 200 configured dealers, protocol start, timer arming) and encoding.
//!
//! Two measurements: criterion's, and an hdrhistogram of 1,000,000 single requests (p50, p90,
//! p99, p99.9, max) printed after it. Each measured request is one `deliver` of a desk
//! QuoteRequest (the router answers the desk's AI and writes the panel's QuoteRequests within
//! it); the RFQ is then cancelled outside the timed region so the engine stays in steady
//! state.

use criterion::{black_box, Criterion};
use hdrhistogram::Histogram;
use rfq_router::pipeline::{Pipeline, DESK};
use rfq_router::select::{ProtocolKind, StaticTiers};
use std::time::{Duration, Instant};

#[path = "support/rfq_path_fixture.rs"]
mod rfq_path_fixture;
use rfq_path_fixture::{cancel, pipeline, request, DEALERS};

/// One timed request: returns the time `deliver` took.
fn timed(p: &mut Pipeline<StaticTiers>, n: u64) -> Duration {
    request(p, n);
    let t = Instant::now();
    black_box(p.deliver(DESK));
    let d = t.elapsed();
    assert!(!p.wire(1).is_empty(), "dealer 1 was asked");
    cancel(p, n);
    d
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("rfq_path_200_dealers");
    for (name, kind) in [
        ("broadcast_4", ProtocolKind::Broadcast),
        ("whisper_first", ProtocolKind::Whisper),
    ] {
        let mut p = pipeline(kind);
        let mut n = 0u64;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    total += timed(&mut p, n);
                }
                total
            })
        });
    }
    g.finish();
}

fn hdr_report(requests: u64) {
    println!("\nrfq_path: desk QuoteRequest in -> dealer QuoteRequests out, {DEALERS} dealers, {requests} requests");
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "protocol", "p50 ns", "p90 ns", "p99 ns", "p99.9 ns", "max ns", "mean ns"
    );
    for (name, kind) in [
        ("broadcast_4", ProtocolKind::Broadcast),
        ("whisper_first", ProtocolKind::Whisper),
    ] {
        let mut p = pipeline(kind);
        let mut h =
            Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("histogram bounds");
        for n in 0..10_000 {
            timed(&mut p, n);
        }
        for n in 10_000..10_000 + requests {
            let d = timed(&mut p, n);
            h.record(d.as_nanos().max(1) as u64).expect("in range");
        }
        println!(
            "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9.0}",
            name,
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.90),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            h.mean()
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    let requests = std::env::var("RFQ_PATH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    hdr_report(requests);
}
