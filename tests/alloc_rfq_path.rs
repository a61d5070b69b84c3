//! The RFQ path allocates nothing in steady state: desk QuoteRequest bytes in, selection over
//! 200 dealers, dealer QuoteRequests out, a quote, the desk's hit, the dealer's fill and the
//! desk's execution report, through the real FIX sessions and engine (no sockets), with and
//! without the journal enqueue (every frame in and out, every engine input and decision). A
//! counting global allocator counts allocations made on this thread while the router code
//! runs (the journal thread's own work is not the engine thread's). The journaled run is then
//! replayed from its journal and must match byte for byte.

use rfq_router::journal::replay::replay;
use rfq_router::journal::tap::JournalTap;
use rfq_router::journal::{Journal, JournalConfig, JournalReader};
use rfq_router::pipeline::{engine_config, Pipeline, DESK};
use rfq_router::rfq::engine::Engine;
use rfq_router::rfq::engine::EngineLimits;
use rfq_router::select::{Protocol, ProtocolKind, StaticTiers};
use rfq_router::time::Nanos;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// Runs `f` and returns how many allocations it made on this thread.
fn counted(f: impl FnOnce()) -> u64 {
    counting_alloc::counted(f).1
}

/// Value of `tag` in the last frame on a wire (test-side parsing; not counted).
fn last_field(wire: &[u8], tag: &str) -> String {
    let text = String::from_utf8_lossy(wire).replace('\x01', "|");
    let key = format!("|{tag}=");
    let at = text
        .rfind(&key)
        .unwrap_or_else(|| panic!("no {tag} in {text}"));
    text[at + key.len()..]
        .split('|')
        .next()
        .unwrap()
        .to_string()
}

/// One full RFQ: returns allocations made by the router code.
fn one_rfq(p: &mut Pipeline<StaticTiers>, n: u64) -> u64 {
    let mut allocs = 0;
    let req = format!("DESK-{n}");
    p.peer_message(DESK, b"R", |e| {
        e.str(131, req.as_bytes())
            .uint(146, 1)
            .str(55, b"ACME 5 2031")
            .str(48, b"US0000000001")
            .str(22, b"4")
            .char(54, b'1')
            .uint(38, 1_000_000);
    });
    allocs += counted(|| {
        p.deliver(DESK);
    });
    let router_req = last_field(p.wire(1), "131");
    p.clear_wires();
    p.peer_message(1, b"S", |e| {
        e.str(131, router_req.as_bytes())
            .str(117, b"Q")
            .str(55, b"ACME 5 2031")
            .str(48, b"US0000000001")
            .str(22, b"4")
            .str(133, b"101.25")
            .uint(135, 1_000_000);
    });
    allocs += counted(|| {
        p.deliver(1);
    });
    let quote_id = last_field(p.wire(DESK), "117");
    p.clear_wires();
    p.peer_message(DESK, b"AJ", |e| {
        e.str(693, b"HIT")
            .str(117, quote_id.as_bytes())
            .char(694, b'1')
            .str(55, b"ACME 5 2031")
            .char(54, b'1');
    });
    allocs += counted(|| {
        p.deliver(DESK);
    });
    let exec_ref = last_field(p.wire(1), "693");
    p.clear_wires();
    p.peer_message(1, b"8", |e| {
        e.str(37, b"O")
            .str(17, b"E")
            .char(150, b'F')
            .char(39, b'2')
            .str(693, exec_ref.as_bytes());
        e.str(55, b"ACME 5 2031")
            .char(54, b'1')
            .str(31, b"101.25")
            .uint(32, 1_000_000);
        e.uint(151, 0).uint(14, 1_000_000).str(6, b"101.25");
    });
    allocs += counted(|| {
        p.deliver(1);
    });
    assert_eq!(last_field(p.wire(DESK), "39"), "2", "desk got the fill");
    p.clear_wires();
    allocs
}

#[test]
fn full_rfq_path_allocates_nothing_after_warm_up() {
    let protocol = Protocol {
        kind: ProtocolKind::Broadcast,
        max_dealers: 4,
        ..Protocol::default()
    };
    let now = Nanos::from_secs(1_700_000_000);
    let mut p = Pipeline::with_dealers(200, protocol, EngineLimits::default(), now);
    // Warm-up: every message-store slot and buffer reaches its working size.
    for n in 0..6_000 {
        one_rfq(&mut p, n);
    }
    let mut total = 0;
    for n in 6_000..9_000 {
        total += one_rfq(&mut p, n);
    }
    assert_eq!(p.engine().open_rfqs(), 0, "every RFQ finished");
    assert_eq!(p.engine().counters().fills, 9_000);
    assert_eq!(p.send_failures(), 0);
    assert_eq!(
        total, 0,
        "allocations on the RFQ path over 3,000 RFQs after warm-up"
    );
}

#[test]
fn full_rfq_path_with_journal_enqueue_allocates_nothing_after_warm_up() {
    let protocol = Protocol {
        kind: ProtocolKind::Broadcast,
        max_dealers: 4,
        ..Protocol::default()
    };
    let limits = EngineLimits::default();
    let now = Nanos::from_secs(1_700_000_000);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("alloc-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A small queue: its payload buffers cycle many times during warm-up and reach their
    // working size; a full queue is back-pressure (a wait), not an allocation.
    let config = JournalConfig {
        queue_capacity: 1024,
        segment_size_bytes: 16 << 20,
        ..JournalConfig::new(&dir)
    };
    let (journal, _) = Journal::open(config).unwrap_or_else(|e| panic!("{e}"));
    let mut tap = JournalTap::new(journal, 201);
    tap.run_start(now, &[]).unwrap();
    let mut p = Pipeline::with_dealers(200, protocol, limits, now);
    p.attach_journal(tap);
    for n in 0..6_000 {
        one_rfq(&mut p, n);
    }
    let mut total = 0;
    for n in 6_000..9_000 {
        total += one_rfq(&mut p, n);
    }
    assert_eq!(p.engine().counters().fills, 9_000);
    let tap = p.take_journal().expect("journal attached");
    let c = tap.counters();
    assert_eq!(c.append_failures, 0);
    assert_eq!(c.engine_records, 9_000, "one decision per RFQ");
    assert_eq!(c.inputs_inlined, 0);
    let metrics = tap.into_journal().close().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(metrics.written_records, metrics.appended_records);
    assert_eq!(
        total, 0,
        "allocations on the journaled RFQ path over 3,000 RFQs after warm-up"
    );

    // The journal alone reproduces the run.
    let reader = JournalReader::open(&dir).unwrap_or_else(|e| panic!("{e}"));
    let summary = replay(
        reader.records(),
        |_, start, _| {
            Ok(Engine::new(
                engine_config(200, limits),
                StaticTiers { protocol },
                start,
            ))
        },
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.decisions_checked, 9_000);
    // Per RFQ: 4 dealer QuoteRequests, the desk's ack, the quote to the desk, the hit to the
    // dealer and the desk's fill (only one dealer quoted: nobody to tell it was done away).
    assert_eq!(summary.messages_checked, 9_000 * 8, "{summary:?}");
    assert_eq!(summary.runs_cut_short, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the guard: an allocation inside `counted` is seen.
    let n = counted(|| {
        let v: Vec<u8> = Vec::with_capacity(16);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}
