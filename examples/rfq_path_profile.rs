//! A small driver of the in-process RFQ path for instruction-count profiling
//! (`valgrind --tool=callgrind --toggle-collect='*measured_deliver*'`): the same requests as
//! `benches/rfq_path.rs`, without timing. Only `measured_deliver` (desk QuoteRequest bytes in
//! -> dealer QuoteRequests and the desk's AI out) is the path under study; building the
//! request and cancelling it afterwards are outside it. It must not be a test or a benchmark:
//! it prints nothing but a checksum so the work is not optimised away.

use rfq_router::pipeline::{Pipeline, DESK};
use rfq_router::select::{ProtocolKind, StaticTiers};
use rfq_router::time::Nanos;

#[path = "../benches/support/rfq_path_fixture.rs"]
mod rfq_path_fixture;
use rfq_path_fixture::{cancel, pipeline, request};

#[inline(never)]
fn warm_up_deliver(p: &mut Pipeline<StaticTiers>) -> usize {
    // Not the same machine code as `measured_deliver` (identical functions get merged).
    p.deliver(DESK) + 1
}

#[inline(never)]
fn measured_deliver(p: &mut Pipeline<StaticTiers>) -> usize {
    p.deliver(DESK)
}

fn main() {
    let kind = match std::env::args().nth(1).as_deref() {
        Some("whisper") => ProtocolKind::Whisper,
        _ => ProtocolKind::Broadcast,
    };
    let requests: u64 = std::env::args()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut p = pipeline(kind);
    let mut sum = 0usize;
    // Warm-up: the session stores (4,096 frames each) fill their rings and every buffer
    // reaches its size, so the measured requests see the steady state (no allocation).
    const WARM_UP: u64 = 5_000;
    for n in 0..WARM_UP + requests {
        // Time moves 10 us per request, as in a busy router.
        p.advance_to(Nanos(p.now().0 + 10_000));
        request(&mut p, n);
        sum += if n < WARM_UP {
            warm_up_deliver(&mut p)
        } else {
            measured_deliver(&mut p)
        };
        sum += p.wire(1).len();
        cancel(&mut p, n);
    }
    println!("{sum}");
}
