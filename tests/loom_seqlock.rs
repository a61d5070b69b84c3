//! Loom model test of the score table's seqlock: the very `seqlock_write` /
//! `seqlock_try_read` the table uses, run on loom's atomics, under every interleaving and
//! every value the C++/Rust memory model lets a relaxed load return (within loom's model).
//!
//! Run with (its own target directory, because changing RUSTFLAGS rebuilds every crate):
//!
//! ```text
//! RUSTFLAGS="--cfg rfq_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --test loom_seqlock
//! ```
//!
//! The cfg is `rfq_loom` rather than loom's customary `loom` because a global `--cfg loom`
//! also switches tokio (a dependency of fefix) into its own loom mode, where it does not
//! build. Without `--cfg rfq_loom` this file compiles to nothing. It owns no files and no threads
//! beyond loom's.
#![cfg(rfq_loom)]

use loom::sync::atomic::{fence, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use rfq_router::select::table::{seqlock_try_read, seqlock_write, SeqWord};

/// loom's atomic, seen through the table's `SeqWord` trait.
struct Word(AtomicU64);

impl SeqWord for Word {
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    fn store(&self, value: u64, order: Ordering) {
        self.0.store(value, order)
    }
    fn fence(order: Ordering) {
        fence(order)
    }
}

/// A row of a sequence word and `payload` words, all zero.
fn row(payload: usize) -> Arc<Vec<Word>> {
    Arc::new((0..=payload).map(|_| Word(AtomicU64::new(0))).collect())
}

/// One writer publishes [1, 1] then [2, 2]; a reader takes one snapshot. Whatever it gets
/// must be one whole write: [0, 0], [1, 1] or [2, 2], under the sequence of that write.
#[test]
fn a_snapshot_is_always_one_whole_write() {
    loom::model(|| {
        let r = row(2);
        let w = Arc::clone(&r);
        let writer = thread::spawn(move || {
            seqlock_write(&w, &[1, 1]);
            seqlock_write(&w, &[2, 2]);
        });
        let mut out = [0u64; 2];
        if let Some(seq) = seqlock_try_read(&r, &mut out) {
            assert_eq!(out[0], out[1], "torn snapshot {out:?}");
            assert_eq!(seq, 2 * out[0], "snapshot {out:?} under sequence {seq}");
        }
        writer.join().unwrap();
        // Once the writer is joined, a read succeeds and sees the last write.
        assert_eq!(seqlock_try_read(&r, &mut out), Some(4));
        assert_eq!(out, [2, 2]);
    });
}

/// Two snapshots by the same reader never go back in time.
#[test]
fn snapshots_by_one_reader_never_go_backwards() {
    loom::model(|| {
        let r = row(1);
        let w = Arc::clone(&r);
        let writer = thread::spawn(move || {
            seqlock_write(&w, &[1]);
            seqlock_write(&w, &[2]);
        });
        let mut a = [0u64; 1];
        let mut b = [0u64; 1];
        if let (Some(s1), Some(s2)) = (seqlock_try_read(&r, &mut a), seqlock_try_read(&r, &mut b)) {
            assert!(s2 >= s1 && b[0] >= a[0], "{s1}:{a:?} then {s2}:{b:?}");
        }
        writer.join().unwrap();
    });
}

/// The model can fail: a reader without the acquire fence between its payload loads and its
/// second sequence load (the classic seqlock mistake) is caught accepting a torn snapshot.
/// This guards the test itself: if loom stopped exploring stale relaxed loads, the test above
/// would pass vacuously and this one would fail.
#[test]
fn the_model_catches_a_reader_without_its_second_fence() {
    fn broken_try_read(row: &[Word], dst: &mut [u64]) -> Option<u64> {
        let s1 = row[0].0.load(Ordering::Acquire);
        if s1 % 2 == 1 {
            return None;
        }
        for (d, w) in dst.iter_mut().zip(&row[1..]) {
            *d = w.0.load(Ordering::Relaxed);
        }
        // Missing: fence(Acquire).
        let s2 = row[0].0.load(Ordering::Relaxed);
        (s1 == s2).then_some(s1)
    }
    let caught = std::panic::catch_unwind(|| {
        loom::model(|| {
            let r = row(2);
            let w = Arc::clone(&r);
            let writer = thread::spawn(move || {
                seqlock_write(&w, &[1, 1]);
            });
            let mut out = [0u64; 2];
            if broken_try_read(&r, &mut out).is_some() {
                assert_eq!(out[0], out[1], "torn snapshot {out:?}");
            }
            writer.join().unwrap();
        });
    });
    let payload = caught.expect_err("loom did not find the torn read");
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        msg.contains("torn snapshot"),
        "failed for another reason: {msg}"
    );
}
