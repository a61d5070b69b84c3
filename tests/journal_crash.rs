//! The crash test: a process appending in `os` mode is killed with SIGKILL mid-stream, and
//! every record it had been told was durable must be in the journal, valid, on reopen.
//!
//! The test binary re-runs itself as the child (the same test, with an environment variable
//! naming the journal directory). The child appends without pause and prints `acked N` each
//! time `durable_seq` moves; the parent kills it once it has seen enough acknowledgements,
//! then checks the journal and that appends continue with the right sequence number.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

use rfq_router::journal::reader::FindingKind;
use rfq_router::journal::{Journal, JournalConfig, JournalReader, RecordKind};
use rfq_router::time::Nanos;

const CHILD_ENV: &str = "RFQ_JOURNAL_CRASH_CHILD_DIR";
const TEST_NAME: &str = "sigkill_while_appending_loses_no_acknowledged_record";
/// The parent kills the child once this many records are acknowledged.
const KILL_AFTER_ACKED: u64 = 30_000;
/// The child stops appending here (it is normally killed long before).
const CHILD_MAX_RECORDS: u64 = 5_000_000;

fn config(dir: &Path) -> JournalConfig {
    JournalConfig {
        segment_size_bytes: 64 * 1024,
        queue_capacity: 1024,
        max_payload_bytes: 1024,
        ..JournalConfig::new(dir)
    }
}

fn payload(seq: u64) -> Vec<u8> {
    let len = 40 + (seq % 111) as usize;
    (0..len)
        .map(|i| (seq.wrapping_mul(131) as usize + i) as u8)
        .collect()
}

fn kind(seq: u64) -> RecordKind {
    if seq.is_multiple_of(3) {
        RecordKind::EngineDecision
    } else {
        RecordKind::TimerFired
    }
}

/// The child: append as fast as possible, report durable progress, never exit normally.
fn run_child(dir: &Path) -> ! {
    let (mut journal, _) = Journal::open(config(dir)).expect("child opens the journal");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut acked = 0;
    let mut seq = 1;
    loop {
        if seq <= CHILD_MAX_RECORDS {
            let got = journal.append(kind(seq), Nanos(seq), &payload(seq));
            assert_eq!(got, Ok(seq), "child append");
            seq += 1;
        } else {
            std::thread::yield_now();
        }
        let durable = journal.durable_seq();
        if durable > acked {
            acked = durable;
            // A closed pipe means the parent is gone: stop.
            if writeln!(out, "acked {acked}")
                .and_then(|()| out.flush())
                .is_err()
            {
                std::process::exit(4);
            }
        }
        if Instant::now() > deadline {
            std::process::exit(3);
        }
    }
}

fn fresh_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-crash-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn sigkill_while_appending_loses_no_acknowledged_record() {
    if let Ok(dir) = env::var(CHILD_ENV) {
        run_child(Path::new(&dir));
    }
    let dir = fresh_dir();
    let mut child = Command::new(env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut max_acked = 0u64;
    let mut read_acks = |lines: &mut std::io::Lines<_>, stop_at: u64| -> u64 {
        for line in lines.by_ref() {
            let line: String = line.expect("read child output");
            if let Some(n) = line.strip_prefix("acked ") {
                let n: u64 = n.trim().parse().expect("ack number");
                assert!(n >= max_acked, "acks only move forward");
                max_acked = n;
                if max_acked >= stop_at {
                    break;
                }
            }
        }
        max_acked
    };
    let before_kill = read_acks(&mut lines, KILL_AFTER_ACKED);
    assert!(
        before_kill >= KILL_AFTER_ACKED,
        "child stopped early after {before_kill} acks"
    );
    child.kill().expect("SIGKILL the child");
    // Acks already in the pipe were printed before the kill: they count too.
    let acked = read_acks(&mut lines, u64::MAX);
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of SIGKILL: {status:?}"
    );

    let reader = JournalReader::open(&dir).unwrap();
    let scan = reader.scan();
    assert!(
        scan.findings
            .iter()
            .all(|f| matches!(f.kind, FindingKind::TornTail(_))),
        "only a torn tail may be left: {:?}",
        scan.findings
    );
    assert!(scan.segments.len() > 3, "the kill came after several rolls");
    let mut next = 1u64;
    for item in reader.records() {
        let Ok(rec) = item else { break }; // a torn tail ends the journal
        let r = rec.record;
        assert_eq!(r.seq, next);
        assert_eq!(r.kind(), Some(kind(next)));
        assert_eq!(r.timestamp, Nanos(next));
        assert_eq!(r.payload, &payload(next)[..], "payload of {next}");
        next += 1;
    }
    let present = next - 1;
    assert!(
        present >= acked,
        "acknowledged {acked} records but only {present} are in the journal"
    );
    drop(reader);

    let (mut journal, report) = Journal::open(config(&dir)).unwrap();
    assert_eq!(report.next_seq, present + 1);
    assert_eq!(report.records, present);
    let seq = journal
        .append(kind(present + 1), Nanos(present + 1), &payload(present + 1))
        .unwrap();
    assert_eq!(seq, present + 1);
    journal.close().unwrap();
    let scan = JournalReader::open(&dir).unwrap().scan();
    assert!(scan.findings.is_empty(), "{:?}", scan.findings);
    assert_eq!(scan.records, present + 1);
    fs::remove_dir_all(&dir).unwrap();
}
