//! The engine thread's journal producer (`journal::tap::JournalTap`) on its own: Fix inputs
//! name their `fix-in` record or inline the message, a full queue is a counted wait and not
//! a loss, and in `fsync` durability an ExecutionReport (and what follows it on its session)
//! is held until its record is durable, then released in order.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rfq_router::journal::records::{decode_input, EngineInput, FixSource};
use rfq_router::journal::tap::{HoldDecision, JournalTap};
use rfq_router::journal::{Durability, Journal, JournalConfig, JournalReader, RecordKind};
use rfq_router::time::Nanos;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-tap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn frame(msg_type: &str, seq: u64) -> Vec<u8> {
    format!("8=FIX.4.4\x019=40\x0135={msg_type}\x0134={seq}\x0149=R\x0152=x\x0156=D\x0110=000\x01")
        .into_bytes()
}

fn open(dir: &Path, durability: Durability, queue_capacity: usize) -> Journal {
    let config = JournalConfig {
        durability,
        queue_capacity,
        segment_size_bytes: 1 << 20,
        max_payload_bytes: 4096,
        ..JournalConfig::new(dir)
    };
    Journal::open(config).unwrap_or_else(|e| panic!("{e}")).0
}

/// Polls `cond` until it holds (generous deadline; no fixed sleeps).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

#[test]
fn fix_inputs_name_the_fix_in_record_or_inline_a_queued_message() {
    let dir = fresh_dir("inputs");
    let mut tap = JournalTap::new(open(&dir, Durability::Os, 64), 4);
    let now = Nanos(1_000);
    let received = frame("R", 1);
    tap.fix_in(now, 2, &received);
    // The session hands the engine the frame it just received: same bytes, same place.
    tap.input_fix(now, 2, &received);
    // A message the session had queued comes from elsewhere: inlined.
    let queued = received.clone();
    tap.input_fix(now, 2, &queued);
    // The latest frame of another session is not this one's.
    tap.input_fix(now, 3, &received);
    assert_eq!(tap.counters().inputs, 3);
    assert_eq!(tap.counters().inputs_inlined, 2);
    tap.into_journal().close().unwrap();

    let reader = JournalReader::open(&dir).unwrap();
    let inputs: Vec<(u64, String)> = reader
        .records()
        .map(|r| r.unwrap().record)
        .filter(|r| r.kind() == Some(RecordKind::EngineInput))
        .map(|r| {
            let shown = match decode_input(r.payload).unwrap() {
                EngineInput::Fix {
                    session,
                    message: FixSource::Record(seq),
                } => format!("{session} record {seq}"),
                EngineInput::Fix {
                    session,
                    message: FixSource::Inline(f),
                } => format!("{session} inline {}", f == received.as_slice()),
                other => format!("{other:?}"),
            };
            (r.timestamp.0, shown)
        })
        .collect();
    assert_eq!(
        inputs,
        vec![
            (1_000, "2 record 1".to_string()),
            (1_000, "2 inline true".to_string()),
            (1_000, "3 inline true".to_string()),
        ]
    );
}

#[test]
fn a_full_queue_makes_the_engine_wait_and_loses_nothing() {
    let dir = fresh_dir("backpressure");
    let journal = open(&dir, Durability::Os, 4);
    let metrics = journal.metrics_handle();
    let pause = journal.pause_drain();
    let mut tap = JournalTap::new(journal, 1);
    let appender = std::thread::spawn(move || {
        for seq in 1..=20 {
            tap.fix_in(Nanos(seq), 0, &frame("0", seq));
        }
        tap
    });
    eventually("the producer to meet a full queue", || {
        metrics.snapshot().queue_full_events >= 1
    });
    assert_eq!(
        metrics.snapshot().written_records,
        0,
        "the writer is paused"
    );
    drop(pause);
    let tap = appender.join().expect("appender");
    assert_eq!(tap.counters().fix_in, 20);
    assert_eq!(tap.counters().append_failures, 0);
    let m = tap.into_journal().close().unwrap();
    assert_eq!(m.written_records, 20, "nothing dropped");
    assert!(m.queue_full_events >= 1);
    assert!(m.backpressure_wait_ns > 0);
}

#[test]
fn os_durability_never_holds() {
    let dir = fresh_dir("os");
    let mut tap = JournalTap::new(open(&dir, Durability::Os, 64), 2);
    let er = frame("8", 5);
    let seq = tap.fix_out(Nanos(1), 0, &er);
    assert_eq!(tap.hold_outbound(Nanos(1), 0, seq, &er), HoldDecision::Pass);
    assert_eq!(tap.next_deadline(), None);
}

#[test]
fn fsync_holds_an_execution_report_and_what_follows_until_durable() {
    let dir = fresh_dir("fsync");
    let journal = open(
        &dir,
        Durability::Fsync {
            group_commit_interval_us: 200,
            group_commit_records: 1000,
        },
        64,
    );
    let pause = journal.pause_drain();
    // The journal thread tells the engine's loop when a held record became durable.
    let (woken_tx, woken) = std::sync::mpsc::channel::<()>();
    journal.set_durable_waker(Box::new(move || {
        let _ = woken_tx.send(());
    }));
    let mut tap = JournalTap::new(journal, 3);
    let t = Nanos(1_000_000);
    let send = |tap: &mut JournalTap, session: usize, f: &[u8]| {
        let seq = tap.fix_out(t, session, f);
        tap.hold_outbound(t, session, seq, f)
    };
    let quote = frame("S", 1);
    let fill = frame("8", 2);
    let heartbeat = frame("0", 3);
    let other = frame("R", 1);
    assert_eq!(send(&mut tap, 0, &quote), HoldDecision::Pass);
    assert_eq!(send(&mut tap, 0, &fill), HoldDecision::Held);
    assert_eq!(
        send(&mut tap, 0, &heartbeat),
        HoldDecision::Held,
        "behind the fill"
    );
    assert_eq!(
        send(&mut tap, 1, &other),
        HoldDecision::Pass,
        "other sessions flow"
    );
    assert!(tap.is_holding(0) && !tap.is_holding(1));
    let check = tap.next_deadline().expect("the loop must come back");
    assert!(check > t);
    // Not durable yet: nothing released, whatever the time.
    let mut released: Vec<(usize, Vec<u8>)> = Vec::new();
    tap.release(Nanos(check.0 + 1), |s, b| released.push((s, b.to_vec())));
    assert!(released.is_empty());
    assert!(woken.try_recv().is_err(), "nothing durable yet");
    drop(pause);
    woken
        .recv_timeout(Duration::from_secs(20))
        .expect("the journal thread wakes the loop once the fill is durable");
    let last = tap.journal().next_seq() - 1;
    assert_eq!(
        tap.journal().wait_durable(last, Duration::from_secs(20)),
        Ok(true)
    );
    tap.release(Nanos(check.0 + 1_000_000), |s, b| {
        released.push((s, b.to_vec()))
    });
    let mut expected = fill.clone();
    expected.extend_from_slice(&heartbeat);
    assert_eq!(
        released,
        vec![(0, expected)],
        "the fill, then what followed it"
    );
    assert!(!tap.is_holding(0));
    assert_eq!(tap.next_deadline(), None);
    let c = tap.counters();
    assert_eq!(
        (c.executions_held, c.frames_held, c.holds_released),
        (1, 2, 1)
    );

    // A session that goes down drops its hold (the frames are in its store).
    let pause = tap.journal().pause_drain();
    let fill2 = frame("8", 4);
    assert_eq!(send(&mut tap, 2, &fill2), HoldDecision::Held);
    tap.drop_hold(2);
    assert!(!tap.is_holding(2));
    assert_eq!(tap.counters().holds_dropped, 1);
    drop(pause);
    tap.into_journal().close().unwrap();
}
