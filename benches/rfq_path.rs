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
use rfq_router::rfq::engine::EngineLimits;
use rfq_router::select::{Protocol, ProtocolKind, StaticTiers};
use rfq_router::time::Nanos;
use std::time::{Duration, Instant};

const DEALERS: usize = 200;

fn pipeline(kind: ProtocolKind) -> Pipeline<StaticTiers> {
    let protocol = Protocol {
        kind,
        max_dealers: 4,
        ..Protocol::default()
    };
    Pipeline::with_dealers(
        DEALERS,
        protocol,
        EngineLimits::default(),
        Nanos::from_secs(1_700_000_000),
    )
}

fn request(p: &mut Pipeline<StaticTiers>, n: u64) {
    let mut id = [0u8; 20];
    let id = rfq_router::fix::encode::write_u64(n, &mut id);
    p.peer_message(DESK, b"R", |e| {
        e.str(131, id)
            .uint(146, 1)
            .str(55, b"ACME 5 2031")
            .str(48, b"US0000000001")
            .str(22, b"4")
            .char(54, b'1')
            .uint(38, 1_000_000);
    });
}

fn cancel(p: &mut Pipeline<StaticTiers>, n: u64) {
    let mut id = [0u8; 20];
    let id = rfq_router::fix::encode::write_u64(n, &mut id);
    p.peer_message(DESK, b"Z", |e| {
        e.str(131, id).str(117, b"*").char(298, b'1');
    });
    p.deliver(DESK);
    p.clear_wires();
}

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
