//! The journal's storage engine end to end: round trips across segment rolls, torn tails cut
//! on reopen, corruption refused (or cut on request), back-pressure, `fsync` group commit,
//! limits and the single-writer lock. Each test works in its own directory under the
//! target's temporary directory and removes it when it passes.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rfq_router::journal::format::{HeaderProblem, RECORD_HEADER_LEN};
use rfq_router::journal::reader::FindingKind;
use rfq_router::journal::{
    AppendError, CorruptionPolicy, Damage, Durability, FixDirection, Journal, JournalConfig,
    JournalError, JournalReader, RecordKind, RecordProblem, RecoveryEvent,
};
use rfq_router::time::Nanos;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-storage-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn small_config(dir: &Path) -> JournalConfig {
    JournalConfig {
        segment_size_bytes: 16 * 1024,
        queue_capacity: 64,
        max_payload_bytes: 2048,
        ..JournalConfig::new(dir)
    }
}

/// A deterministic record: kind, timestamp and payload derived from its sequence number.
fn expected(seq: u64) -> (RecordKind, Nanos, Vec<u8>) {
    let kind = RecordKind::ALL[(seq % 8) as usize];
    let len = ((seq * 7919) % 601) as usize;
    let payload: Vec<u8> = (0..len).map(|i| (seq as usize * 31 + i) as u8).collect();
    (kind, Nanos(1_700_000_000_000_000_000 + seq * 1000), payload)
}

fn append_expected(j: &mut Journal, seq: u64) {
    let (kind, ts, payload) = expected(seq);
    let got = match kind.fix_direction() {
        Some(dir) => {
            // The FIX payload is prefix + raw: give it the expected bytes past the prefix.
            j.append_fix(dir, (seq % 5) as u16, ts, &payload)
        }
        None => j.append(kind, ts, &payload),
    };
    assert_eq!(got, Ok(seq));
}

fn check_expected(dir: &Path, count: u64) {
    let reader = JournalReader::open(dir).expect("open for reading");
    let mut next = 1;
    for item in reader.records() {
        let rec = item.expect("no damage");
        let r = rec.record;
        let (kind, ts, payload) = expected(next);
        assert_eq!(r.seq, next);
        assert_eq!(r.kind(), Some(kind));
        assert_eq!(r.timestamp, ts);
        match r.fix() {
            Some(fix) => {
                let fix = fix.expect("FIX payload decodes");
                assert_eq!(fix.session_id, (next % 5) as u16);
                assert_eq!(fix.direction, kind.fix_direction().unwrap());
                assert_eq!(fix.raw, &payload[..]);
            }
            None => assert_eq!(r.payload, &payload[..]),
        }
        next += 1;
    }
    assert_eq!(next - 1, count, "record count");
    let scan = reader.scan();
    assert!(scan.findings.is_empty(), "findings: {:?}", scan.findings);
    assert_eq!(scan.records, count);
    assert_eq!(scan.next_seq, count + 1);
}

/// Byte offsets of every record, by sequence number, with its segment file.
fn record_places(dir: &Path) -> Vec<(u64, PathBuf, u64)> {
    let reader = JournalReader::open(dir).unwrap();
    let paths: Vec<(u64, PathBuf)> = reader
        .segments()
        .iter()
        .map(|s| (s.header.segment_number, s.path.clone()))
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let path = paths
                .iter()
                .find(|(n, _)| *n == r.segment_number)
                .unwrap()
                .1
                .clone();
            (r.record.seq, path, r.offset)
        })
        .collect()
}

#[test]
fn round_trip_across_many_segment_rolls_and_reopen() {
    let dir = fresh_dir("roundtrip");
    let (mut j, report) = Journal::open(small_config(&dir)).unwrap();
    assert_eq!(report.next_seq, 1);
    assert!(report.events.is_empty());
    for seq in 1..=3000 {
        append_expected(&mut j, seq);
    }
    let m = j.close().unwrap();
    assert_eq!(m.appended_records, 3000);
    assert_eq!(m.written_records, 3000);
    assert_eq!(m.durable_seq, 3000);
    assert!(
        m.segments_created >= 10,
        "rolled {} times",
        m.segments_created
    );
    check_expected(&dir, 3000);
    let segments = JournalReader::open(&dir).unwrap().segments().len();
    assert_eq!(segments as u64, m.segments_created + 1);
    assert!(
        !fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "the unused spare segment is removed on close"
    );

    let (mut j, report) = Journal::open(small_config(&dir)).unwrap();
    assert_eq!(report.next_seq, 3001);
    assert_eq!(report.records, 3000);
    assert!(report.events.is_empty(), "{:?}", report.events);
    for seq in 3001..=3500 {
        append_expected(&mut j, seq);
    }
    j.close().unwrap();
    check_expected(&dir, 3500);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn torn_tail_from_a_short_file_is_cut_and_appends_continue() {
    let dir = fresh_dir("torn-short");
    let (mut j, _) = Journal::open(small_config(&dir)).unwrap();
    for seq in 1..=200 {
        append_expected(&mut j, seq);
    }
    j.close().unwrap();
    let places = record_places(&dir);
    let (seq, path, offset) = places.last().unwrap().clone();
    assert_eq!(seq, 200);
    // The file ends in the middle of the last record, and its last bytes are garbage.
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    let cut = offset + RECORD_HEADER_LEN as u64 + 3;
    f.set_len(cut).unwrap();
    f.write_all_at(&[0xAB; 5], cut - 5).unwrap();
    drop(f);

    let scan = JournalReader::open(&dir).unwrap().scan();
    assert!(
        matches!(scan.torn_tail(), Some(t) if t.offset == offset && t.path == path),
        "{:?}",
        scan.findings
    );
    assert!(scan.first_corruption().is_none());

    let (mut j, report) = Journal::open(small_config(&dir)).unwrap();
    assert_eq!(report.next_seq, 200, "the torn record's number is reused");
    assert!(report.events.iter().any(|e| matches!(e,
        RecoveryEvent::TornTailCut { path: p, offset: o, .. } if *p == path && *o == offset)));
    assert!(report
        .events
        .iter()
        .any(|e| matches!(e, RecoveryEvent::SegmentExtended { path: p, .. } if *p == path)));
    for seq in 200..=260 {
        append_expected(&mut j, seq);
    }
    j.close().unwrap();
    check_expected(&dir, 260);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn torn_tail_with_garbage_or_a_missing_length_word_is_cut() {
    for (case, damage) in [("garbage", 0usize), ("no-length", 1)] {
        let dir = fresh_dir(&format!("torn-{case}"));
        let (mut j, _) = Journal::open(small_config(&dir)).unwrap();
        for seq in 1..=50 {
            append_expected(&mut j, seq);
        }
        j.close().unwrap();
        let (_, path, offset) = record_places(&dir).last().unwrap().clone();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        if damage == 0 {
            // Garbage over the payload: the CRC no longer matches.
            f.write_all_at(&[0x5A; 16], offset + RECORD_HEADER_LEN as u64)
                .unwrap();
        } else {
            // Killed before the length word was written: zero length, bytes after it.
            f.write_all_at(&[0; 4], offset).unwrap();
        }
        drop(f);
        let (mut j, report) = Journal::open(small_config(&dir)).unwrap();
        let cut = report.events.iter().find_map(|e| match e {
            RecoveryEvent::TornTailCut {
                offset: o, problem, ..
            } => Some((*o, *problem)),
            _ => None,
        });
        let (o, problem) = cut.unwrap_or_else(|| panic!("{case}: {:?}", report.events));
        assert_eq!(o, offset, "{case}");
        if damage == 1 {
            assert_eq!(problem, RecordProblem::DataAfterEnd);
        } else {
            assert!(matches!(problem, RecordProblem::ChecksumMismatch { .. }));
        }
        assert_eq!(report.next_seq, 50, "{case}");
        append_expected(&mut j, 50);
        j.close().unwrap();
        check_expected(&dir, 50);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn corruption_in_the_middle_is_refused_unless_asked_to_truncate() {
    let dir = fresh_dir("corrupt-middle");
    let config = JournalConfig {
        segment_size_bytes: 1 << 20,
        ..small_config(&dir)
    };
    let (mut j, _) = Journal::open(config.clone()).unwrap();
    for seq in 1..=300 {
        append_expected(&mut j, seq);
    }
    j.close().unwrap();
    let places = record_places(&dir);
    let (seq, path, offset) = places[99].clone();
    assert_eq!(seq, 100);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xFF], offset + 9).unwrap(); // a bit of the sequence number field
    drop(f);

    match Journal::open(config.clone()) {
        Err(JournalError::Corrupt {
            path: p,
            offset: o,
            problem: Damage::Record(RecordProblem::ChecksumMismatch { .. }),
        }) => {
            assert_eq!(p, path);
            assert_eq!(o, offset);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    let shown = JournalError::Corrupt {
        path: path.clone(),
        offset,
        problem: Damage::Record(RecordProblem::DataAfterEnd),
    }
    .to_string();
    assert!(shown.contains(&format!("offset {offset}")) && shown.contains("seg-"));

    let truncating = JournalConfig {
        on_corruption: CorruptionPolicy::TruncateThere,
        ..config.clone()
    };
    let (mut j, report) = Journal::open(truncating).unwrap();
    assert_eq!(report.next_seq, 100);
    let saved = report
        .events
        .iter()
        .find_map(|e| match e {
            RecoveryEvent::CorruptionCut {
                offset: o,
                saved_to,
                ..
            } if *o == offset => saved_to.clone(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{:?}", report.events));
    assert!(fs::metadata(&saved).unwrap().len() > 0, "cut bytes kept");
    for seq in 100..=120 {
        append_expected(&mut j, seq);
    }
    j.close().unwrap();
    check_expected(&dir, 120);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damage_at_the_end_of_a_segment_that_is_not_the_last_is_corruption() {
    let dir = fresh_dir("corrupt-earlier-segment");
    let (mut j, _) = Journal::open(small_config(&dir)).unwrap();
    for seq in 1..=400 {
        append_expected(&mut j, seq);
    }
    j.close().unwrap();
    let places = record_places(&dir);
    let first_path = places[0].1.clone();
    let (_, path, offset) = places
        .iter()
        .rev()
        .find(|(_, p, _)| *p == first_path)
        .unwrap()
        .clone();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0x77; 4], offset + RECORD_HEADER_LEN as u64)
        .unwrap();
    drop(f);
    let scan = JournalReader::open(&dir).unwrap().scan();
    assert!(scan.torn_tail().is_none());
    let c = scan.first_corruption().expect("corruption found");
    assert_eq!((c.path.clone(), c.offset), (path.clone(), offset));
    assert!(matches!(
        Journal::open(small_config(&dir)),
        Err(JournalError::Corrupt { offset: o, .. }) if o == offset
    ));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_full_queue_is_back_pressure_counted_and_nothing_is_lost() {
    let dir = fresh_dir("backpressure");
    let config = JournalConfig {
        queue_capacity: 4,
        ..small_config(&dir)
    };
    let (mut j, _) = Journal::open(config).unwrap();
    let pause = j.pause_drain();
    for seq in 1..=4 {
        let (kind, ts, payload) = expected(seq);
        if kind.fix_direction().is_none() {
            assert_eq!(j.try_append(kind, ts, &payload), Ok(seq));
        } else {
            append_expected(&mut j, seq);
        }
    }
    let (kind, ts, payload) = expected(5);
    assert_eq!(
        j.try_append(kind, ts, &payload),
        Err(AppendError::QueueFull)
    );
    assert_eq!(
        j.try_append_fix(FixDirection::Inbound, 1, ts, b"x"),
        Err(AppendError::QueueFull)
    );
    assert_eq!(j.metrics().queue_full_events, 2);
    assert_eq!(j.next_seq(), 5, "a refused record takes no sequence number");

    let metrics = j.metrics_handle();
    let producer = thread::spawn(move || {
        for seq in 5..=500 {
            append_expected(&mut j, seq);
        }
        j
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while metrics.snapshot().queue_full_events < 3 {
        assert!(Instant::now() < deadline, "producer never met a full queue");
        thread::yield_now();
    }
    assert_eq!(metrics.snapshot().written_records, 0, "drain is paused");
    drop(pause);
    let j = producer.join().unwrap();
    let m = j.close().unwrap();
    assert!(m.queue_full_events >= 3);
    assert_eq!(m.appended_records, 500);
    assert_eq!(m.written_records, 500);
    check_expected(&dir, 500);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fsync_mode_publishes_durable_seq_after_group_commit() {
    let dir = fresh_dir("fsync");
    let config = JournalConfig {
        durability: Durability::Fsync {
            group_commit_interval_us: 1000,
            group_commit_records: 64,
        },
        ..small_config(&dir)
    };
    let (mut j, _) = Journal::open(config.clone()).unwrap();
    for seq in 1..=1000 {
        append_expected(&mut j, seq);
        assert!(j.durable_seq() <= j.written_seq());
    }
    assert_eq!(j.wait_durable(1000, Duration::from_secs(30)), Ok(true));
    let m = j.metrics();
    assert_eq!(m.durable_seq, 1000);
    assert!(m.syncs >= 1);
    j.close().unwrap();
    check_expected(&dir, 1000);

    let (j, report) = Journal::open(config).unwrap();
    assert_eq!(report.next_seq, 1001);
    assert_eq!(j.durable_seq(), 1000);
    j.close().unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn limits_lock_and_foreign_files() {
    let dir = fresh_dir("limits");
    let (mut j, _) = Journal::open(small_config(&dir)).unwrap();
    assert_eq!(
        j.try_append(RecordKind::Admin, Nanos(1), &[0u8; 2049]),
        Err(AppendError::PayloadTooLarge {
            len: 2049,
            max: 2048
        })
    );
    assert_eq!(
        j.append_fix(FixDirection::Outbound, 1, Nanos(1), &[0u8; 2045]),
        Err(AppendError::PayloadTooLarge {
            len: 2049,
            max: 2048
        })
    );
    assert_eq!(j.metrics().payloads_too_large, 2);
    assert!(matches!(
        Journal::open(small_config(&dir)),
        Err(JournalError::Locked { .. })
    ));
    j.close().unwrap();

    let bad = JournalConfig {
        segment_size_bytes: 5000,
        ..small_config(&dir)
    };
    assert!(matches!(Journal::open(bad), Err(JournalError::Config(_))));
    let bad = JournalConfig {
        max_payload_bytes: 16 * 1024,
        ..small_config(&dir)
    };
    assert!(matches!(Journal::open(bad), Err(JournalError::Config(_))));

    // A file with a segment's name but not a segment's bytes.
    let foreign_dir = fresh_dir("foreign");
    fs::create_dir_all(&foreign_dir).unwrap();
    let foreign = foreign_dir.join("seg-000000000001.rfqj");
    fs::write(&foreign, vec![b'x'; 4096]).unwrap();
    assert!(matches!(
        Journal::open(small_config(&foreign_dir)),
        Err(JournalError::BadHeader {
            problem: HeaderProblem::BadMagic,
            ..
        })
    ));
    assert!(matches!(
        JournalReader::open(&foreign),
        Err(JournalError::BadHeader {
            problem: HeaderProblem::BadMagic,
            ..
        })
    ));
    assert!(matches!(
        JournalReader::open(&dir.join("missing")),
        Err(JournalError::NotFound { .. })
    ));
    let empty = fresh_dir("empty");
    fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        JournalReader::open(&empty),
        Err(JournalError::NoSegments { .. })
    ));
    for d in [&dir, &foreign_dir, &empty] {
        fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn time_going_backwards_is_reported_not_repaired() {
    let dir = fresh_dir("time");
    let (mut j, _) = Journal::open(small_config(&dir)).unwrap();
    for (i, ts) in [10u64, 20, 15, 30].into_iter().enumerate() {
        assert_eq!(
            j.append(RecordKind::TimerFired, Nanos(ts), b"t"),
            Ok(i as u64 + 1)
        );
    }
    j.close().unwrap();
    let scan = JournalReader::open(&dir).unwrap().scan();
    assert_eq!(scan.findings.len(), 1);
    assert!(matches!(
        scan.findings[0].kind,
        FindingKind::TimeRegression {
            seq: 3,
            previous: Nanos(20),
            found: Nanos(15)
        }
    ));
    let (j, report) = Journal::open(small_config(&dir)).unwrap();
    assert_eq!(report.time_regressions, 1);
    assert_eq!(report.next_seq, 5);
    j.close().unwrap();
    fs::remove_dir_all(&dir).unwrap();
}
