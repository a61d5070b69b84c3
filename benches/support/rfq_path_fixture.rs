//! The in-process RFQ path fixture shared by `benches/rfq_path.rs` (timings) and
//! `examples/rfq_path_profile.rs` (callgrind driver), so that both measure the same
//! pipeline and the same desk messages. It builds and sends inputs only: it must not time,
//! assert on speed or print.

use rfq_router::pipeline::{Pipeline, DESK};
use rfq_router::rfq::engine::EngineLimits;
use rfq_router::select::{Protocol, ProtocolKind, StaticTiers};
use rfq_router::time::Nanos;

/// Dealers configured in the pipeline.
pub const DEALERS: usize = 200;

/// The full path (sessions, engine, 200 dealers), asking at most 4 dealers by `kind`.
pub fn pipeline(kind: ProtocolKind) -> Pipeline<StaticTiers> {
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

/// Queues the desk's QuoteRequest number `n` (one leg, 1 MM, buy) without delivering it.
pub fn request(p: &mut Pipeline<StaticTiers>, n: u64) {
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

/// Cancels RFQ `n` (QuoteCancel, all quotes) and clears every wire, so the engine stays in
/// steady state.
pub fn cancel(p: &mut Pipeline<StaticTiers>, n: u64) {
    let mut id = [0u8; 20];
    let id = rfq_router::fix::encode::write_u64(n, &mut id);
    p.peer_message(DESK, b"Z", |e| {
        e.str(131, id).str(117, b"*").char(298, b'1');
    });
    p.deliver(DESK);
    p.clear_wires();
}
