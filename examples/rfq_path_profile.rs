//! A small driver of the in-process RFQ path for instruction-count profiling
//! (`valgrind --tool=callgrind --toggle-collect='*measured_deliver*'`): the same requests as
//! `benches/rfq_path.rs`, without timing. Only `measured_deliver` (desk QuoteRequest bytes in
//! -> dealer QuoteRequests and the desk's AI out) is the path under study; building the
//! request and cancelling it afterwards are outside it. It must not be a test or a benchmark:
//! it prints nothing but a checksum so the work is not optimised away.

use rfq_router::pipeline::{Pipeline, DESK};
use rfq_router::rfq::engine::EngineLimits;
use rfq_router::select::{Protocol, ProtocolKind, StaticTiers};
use rfq_router::time::Nanos;

const DEALERS: usize = 200;

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
    let protocol = Protocol {
        kind,
        max_dealers: 4,
        ..Protocol::default()
    };
    let mut p = Pipeline::with_dealers(
        DEALERS,
        protocol,
        EngineLimits::default(),
        Nanos::from_secs(1_700_000_000),
    );
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
