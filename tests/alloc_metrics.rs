//! The engine thread's metrics allocate nothing: the router's stamps around each message
//! (`Probe`), recording into the pre-sized histograms (saturating past their range), and
//! answering the admin thread's snapshot requests (a copy into the buffer the admin thread
//! sent). A counting global allocator counts allocations made on this thread.

use rfq_router::metrics::{snapshot_channel, EngineCounts, Probe, Queue, Stage};
use std::time::{Duration, Instant};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// Runs `f` and returns how many allocations it made on this thread.
fn counted(f: impl FnOnce()) -> u64 {
    counting_alloc::counted(f).1
}

/// What the router does for one desk QuoteRequest and one dealer quote.
fn one_rfq(p: &mut Probe, n: u64) {
    p.on_input();
    p.message_start(b"R");
    p.engine_done();
    p.sent(b"R", 0);
    p.sent(b"R", (n % 7) as usize * 100);
    p.message_end();
    p.on_input();
    p.message_start(b"S");
    p.engine_done();
    p.sent(b"S", 0);
    p.message_end();
}

#[test]
fn recording_and_snapshots_allocate_nothing() {
    let mut probe = Probe::new();
    for n in 0..1_000 {
        one_rfq(&mut probe, n);
    }
    let allocs = counted(|| {
        for n in 0..100_000 {
            one_rfq(&mut probe, n);
        }
        // Out-of-range values saturate instead of growing the histograms.
        probe.metrics.record(Stage::JournalLag, u64::MAX);
        probe.metrics.record_queue(Queue::Inbox, u64::MAX);
    });
    assert_eq!(allocs, 0, "allocations while recording 200,000 messages");
    assert_eq!(probe.metrics.stage(Stage::WireToWire).count(), 101_000);

    // The admin side fetches on its own thread; this thread answers as the engine does.
    let (mut client, mut server) = snapshot_channel(2, None);
    let admin = std::thread::spawn(move || {
        let snap = client
            .fetch(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        snap.stage(Stage::WireToWire).count()
    });
    let give_up = Instant::now() + Duration::from_secs(60);
    while server.pending() == 0 && Instant::now() < give_up {
        std::thread::yield_now();
    }
    assert_eq!(server.pending(), 1, "the admin thread's request arrived");
    let counts = EngineCounts::default();
    let allocs = counted(|| server.serve(&probe.metrics, &counts));
    assert_eq!(allocs, 0, "allocations while answering a snapshot request");
    assert_eq!(admin.join().expect("admin side"), 101_000);
}
