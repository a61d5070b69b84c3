//! Score table tests: file format refusals, capacity, crash repair, a read-only map in another
//! handle and in another process, and a multi-threaded torn-read stress test.
//!
//! Owns nothing but its temporary files (under the system temp dir, removed on drop). No
//! sleeps: threads and the child process synchronise through joins and pipes.

use rfq_router::select::model::{ModelConfig, Observation, RowStats};
use rfq_router::select::segment::SegmentKey;
use rfq_router::select::table::{
    ErrorKind, PlaceError, ReadError, ScoreReader, ScoreWriter, TableParams, HEADER_LEN, ROW_SIZE,
};
use rfq_router::time::Nanos;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

/// A temp directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("rfq-scores-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn params(dealers: u32, segments: u32) -> TableParams {
    TableParams::new(dealers, segments, &ModelConfig::default())
}

fn kind(e: &rfq_router::select::table::TableError) -> &ErrorKind {
    &e.kind
}

#[test]
fn ten_thousand_dealers_by_one_hundred_segments_fit_in_a_sparse_file() {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("capacity");
    let path = dir.file("big.scores");
    let p = params(10_000, 100);
    let mut w = ScoreWriter::create(&path, p, Nanos(1)).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(
        meta.len(),
        HEADER_LEN as u64 + 10_001 * 100 * ROW_SIZE as u64
    );
    assert_eq!(meta.len(), 128_016_896);
    // Sparse: only the header page (and file-system metadata) takes disk so far.
    assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());

    let cfg = ModelConfig::default();
    let key = SegmentKey::asset_class(b"HY");
    let last = 9_999;
    let agg = w.header().aggregate_dealer();
    assert_eq!(agg, 10_000);
    for dealer in [0, last, agg] {
        w.update(dealer, key, |s| {
            s.observe(Observation::RfqSent, Nanos(5), &cfg).unwrap()
        })
        .unwrap();
    }
    let r = w.reader();
    for dealer in [0, last, agg] {
        assert_eq!(r.find(dealer, key).unwrap().unwrap().rfqs_total, 1);
    }
    assert_eq!(r.find(1, key).unwrap(), None);
    assert!(matches!(
        r.find(agg + 1, key),
        Err(ReadError::OutOfRange { .. })
    ));
}

#[test]
fn capacity_beyond_the_limits_is_refused() {
    let dir = TempDir::new("limits");
    for (d, s) in [(0, 10), (10, 0), (70_000, 1), (10, 5_000), (60_000, 4_000)] {
        let e = ScoreWriter::create(&dir.file("x.scores"), params(d, s), Nanos(1)).unwrap_err();
        assert!(matches!(kind(&e), ErrorKind::Capacity { .. }), "{e}");
    }
}

#[test]
fn a_dealer_block_refuses_segments_once_full_and_keeps_the_ones_it_has() {
    let dir = TempDir::new("full");
    let mut w = ScoreWriter::create(&dir.file("t.scores"), params(2, 4), Nanos(1)).unwrap();
    let keys: Vec<_> = (0..5u8)
        .map(|i| SegmentKey::issuer(b"HY", &[b'A' + i]))
        .collect();
    let mut rows = Vec::new();
    for k in &keys[..4] {
        rows.push(w.place(1, *k).unwrap());
    }
    rows.sort();
    assert_eq!(rows, [4, 5, 6, 7], "dealer 1's block is rows 4..8");
    assert_eq!(
        w.place(1, keys[4]),
        Err(PlaceError::SegmentsFull { dealer: 1 })
    );
    assert_eq!(w.segments_full, 1);
    // Placing an existing key again finds it, and dealer 0 still has room.
    assert!(w.place(1, keys[2]).is_ok());
    assert!(w.place(0, keys[4]).is_ok());
    assert_eq!(w.place(1, SegmentKey::EMPTY), Err(PlaceError::EmptyKey));
    assert!(matches!(
        w.place(3, keys[0]),
        Err(PlaceError::NoSuchDealer { .. })
    ));
    let r = w.reader();
    for k in &keys[..4] {
        assert!(r.find(1, *k).unwrap().is_some());
    }
    assert_eq!(r.find(1, keys[4]).unwrap(), None);
}

#[test]
fn bad_files_are_refused_with_a_clear_error() {
    let dir = TempDir::new("refuse");
    let path = dir.file("t.scores");
    let p = params(3, 8);
    drop(ScoreWriter::create(&path, p, Nanos(7)).unwrap());

    // Create refuses to overwrite.
    let e = ScoreWriter::create(&path, p, Nanos(7)).unwrap_err();
    assert!(matches!(kind(&e), ErrorKind::Exists));

    // The writer refuses a file made for other parameters.
    let other = TableParams {
        half_life_s: 7 * 86_400,
        ..p
    };
    let e = ScoreWriter::open(&path, other).unwrap_err();
    assert!(matches!(kind(&e), ErrorKind::ParamsMismatch { .. }));
    let msg = e.to_string();
    assert!(msg.contains("t.scores") && msg.contains("rebuild"), "{msg}");
    let e = ScoreWriter::open(&path, params(4, 8)).unwrap_err();
    assert!(matches!(kind(&e), ErrorKind::ParamsMismatch { .. }));
    // The right parameters open it.
    assert!(ScoreWriter::open(&path, p).is_ok());

    let original = std::fs::read(&path).unwrap();
    let patched = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = original.clone();
        f(&mut b);
        let q = dir.file("patched.scores");
        std::fs::write(&q, &b).unwrap();
        ScoreReader::open_read_only(&q).unwrap_err()
    };

    let e = patched(&|b| b[..8].copy_from_slice(b"NOTSCORE"));
    assert!(matches!(kind(&e), ErrorKind::BadMagic { .. }));
    assert!(e.to_string().contains("not a score table"), "{e}");

    let e = patched(&|b| b[8..12].copy_from_slice(&3u32.to_le_bytes()));
    assert!(matches!(
        kind(&e),
        ErrorKind::UnsupportedVersion {
            found: 3,
            supported: 2
        }
    ));
    assert!(e.to_string().contains("newer build"), "{e}");

    // One bit flipped in the dealer count: the CRC catches it.
    let e = patched(&|b| b[20] ^= 0x10);
    assert!(matches!(kind(&e), ErrorKind::HeaderCrc { .. }));
    assert!(e.to_string().contains("CRC32C"), "{e}");

    let e = patched(&|b| b.push(0));
    assert!(matches!(kind(&e), ErrorKind::Geometry { .. }), "{e}");

    let e = patched(&|b| b.truncate(100));
    assert!(matches!(kind(&e), ErrorKind::Truncated { file_len: 100 }));

    let e = ScoreReader::open_read_only(&dir.file("absent.scores")).unwrap_err();
    assert!(matches!(kind(&e), ErrorKind::Io { op: "open", .. }));
}

/// A table written by a version-1 build: the same file with version 1 in its header and
/// the header's CRC recomputed, as that build wrote it.
fn as_version_1(path: &std::path::Path) {
    let mut b = std::fs::read(path).unwrap();
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&b[..124]);
    b[124..128].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, &b).unwrap();
}

#[test]
fn a_version_1_table_is_refused_never_reused_and_the_message_says_what_to_do() {
    assert_eq!(rfq_router::select::table::VERSION, 2);
    let dir = TempDir::new("v1");
    let path = dir.file("old.scores");
    let p = params(3, 8);
    {
        let mut w = ScoreWriter::create(&path, p, Nanos(7)).unwrap();
        let row = w.place(1, SegmentKey::all()).unwrap();
        w.store_row(row, &row_for(5)).unwrap();
    }
    as_version_1(&path);
    let before = std::fs::read(&path).unwrap();
    // Every way in refuses it: the router's start (open_or_create), the writer, a reader.
    for e in [
        ScoreWriter::open_or_create(&path, p, Nanos(9))
            .map(|_| ())
            .unwrap_err(),
        ScoreWriter::open(&path, p).map(|_| ()).unwrap_err(),
        ScoreReader::open_read_only(&path).map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(
            kind(&e),
            ErrorKind::UnsupportedVersion {
                found: 1,
                supported: 2
            }
        ));
        let msg = e.to_string();
        for what in [
            "old.scores",
            "format version 1, written by an older build",
            "never reuses an older table",
            "offset 52 is quote competitiveness over quotes",
            "Move the file aside and start the router",
            "empty version-2 table",
            "rfq-journal scores",
        ] {
            assert!(msg.contains(what), "{what:?} not in: {msg}");
        }
    }
    // Refused, not repaired or overwritten.
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // Moved aside, the path takes a new, empty version-2 table.
    std::fs::rename(&path, dir.file("old.scores.v1")).unwrap();
    let w = ScoreWriter::open_or_create(&path, p, Nanos(9)).unwrap();
    assert_eq!(w.header().version, 2);
    assert_eq!(w.reader().find(1, SegmentKey::all()).unwrap(), None);
}

#[test]
fn a_second_read_only_handle_sees_the_writers_updates() {
    let dir = TempDir::new("second-handle");
    let path = dir.file("t.scores");
    let cfg = ModelConfig::default();
    let mut w = ScoreWriter::create(&path, params(5, 16), Nanos(99)).unwrap();
    let other = ScoreReader::open_read_only(&path).unwrap();
    assert_eq!(other.header(), w.header());
    assert_eq!(other.header().created, Nanos(99));
    let key = SegmentKey::sector_rating(
        b"IG",
        b"Utilities",
        rfq_router::select::segment::RatingBucket::A,
    );
    assert_eq!(other.find(3, key).unwrap(), None);
    for i in 1..=3u32 {
        w.update(3, key, |s| {
            s.observe(Observation::RfqSent, Nanos(1_000), &cfg).unwrap()
        })
        .unwrap();
        // The other map shares the page cache: the update is visible at once.
        let seen = other.find(3, key).unwrap().unwrap();
        assert_eq!(seen.rfqs_total, i);
        assert_eq!(seen.rfqs_sent, i as f32);
    }
}

/// Row 0 of a fresh 1 x 1 table: where the child-process test writes.
fn child_key() -> SegmentKey {
    SegmentKey::asset_class(b"MUNI")
}

/// Helper entry point for `another_process_sees_the_writers_updates`: does nothing unless
/// that test runs this binary as a child with `SCORES_CHILD_TABLE` set. Then, for every line
/// on stdin, it prints the lifetime RFQ count it reads from its own read-only map.
#[test]
fn child_process_reader_helper() {
    let Ok(path) = std::env::var("SCORES_CHILD_TABLE") else {
        return;
    };
    let r = ScoreReader::open_read_only(std::path::Path::new(&path)).unwrap();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        if line.unwrap() == "quit" {
            break;
        }
        let n = r
            .find(0, child_key())
            .unwrap()
            .map(|s| s.rfqs_total)
            .unwrap_or(0);
        writeln!(out, "SEEN {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn another_process_sees_the_writers_updates() {
    let dir = TempDir::new("child");
    let path = dir.file("t.scores");
    let cfg = ModelConfig::default();
    let mut w = ScoreWriter::create(&path, params(1, 1), Nanos(1)).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_reader_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SCORES_CHILD_TABLE", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let mut from_child = BufReader::new(child.stdout.take().unwrap());
    let mut ask = |to: &mut std::process::ChildStdin| -> u32 {
        writeln!(to, "read").unwrap();
        to.flush().unwrap();
        // The harness's own output shares the pipe (its "test name ... " has no newline
        // before our line), so look for the marker anywhere in a line; give up after a
        // bounded number of lines instead of waiting forever.
        for _ in 0..64 {
            let mut line = String::new();
            assert!(
                from_child.read_line(&mut line).unwrap() > 0,
                "child exited early"
            );
            if let Some((_, n)) = line.trim().split_once("SEEN ") {
                return n.parse().unwrap();
            }
        }
        panic!("the child never answered");
    };
    assert_eq!(ask(&mut to_child), 0);
    for expected in 1..=3 {
        w.update(0, child_key(), |s| {
            s.observe(Observation::RfqSent, Nanos(10), &cfg).unwrap()
        })
        .unwrap();
        assert_eq!(ask(&mut to_child), expected);
    }
    writeln!(to_child, "quit").unwrap();
    drop(to_child);
    let mut rest = String::new();
    from_child.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "child failed: {rest}");
}

#[test]
fn a_row_left_half_written_by_a_crash_is_busy_until_the_next_writer_repairs_it() {
    let dir = TempDir::new("crash");
    let path = dir.file("t.scores");
    let p = params(2, 2);
    let cfg = ModelConfig::default();
    let key = SegmentKey::all();
    let row = {
        let mut w = ScoreWriter::create(&path, p, Nanos(1)).unwrap();
        w.update(1, key, |s| {
            s.observe(Observation::RfqSent, Nanos(10), &cfg).unwrap()
        })
        .unwrap();
        w.reader().locate(1, key).unwrap().unwrap().0
    };
    // Simulate a writer that died between its two sequence stores: an odd sequence.
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(HEADER_LEN as u64 + row * ROW_SIZE as u64))
            .unwrap();
        f.write_all(&5u64.to_le_bytes()).unwrap();
    }
    let r = ScoreReader::open_read_only(&path).unwrap();
    assert_eq!(r.read_row(row), Err(ReadError::Busy { row }));
    let w = ScoreWriter::open(&path, p).unwrap();
    let rec = w.reader().read_row(row).unwrap();
    assert_eq!(rec.key, key, "the slot keeps its segment");
    assert_eq!(
        rec.stats,
        RowStats::default(),
        "statistics await the rebuild"
    );
    assert_eq!(r.read_row(row).unwrap(), rec);
    assert_eq!(r.find(1, key).unwrap(), Some(RowStats::default()));
}

/// Every field of the row is a function of one counter, so any mix of two writes shows.
fn row_for(c: u32) -> RowStats {
    let f = |k: u32| (c.wrapping_mul(3).wrapping_add(k) % (1 << 24)) as f32;
    RowStats {
        last_update_ns: u64::from(c) << 20 | 0xABCDE,
        rfqs_sent: f(1),
        responses: f(2),
        declines: f(3),
        quotes: f(4),
        wins: f(5),
        late_or_invalid: f(6),
        response_s_sum: f(7),
        quote_vs_peers_bps_sum: f(8),
        vs_cover_bps_sum: f(9),
        cover_n: f(10),
        markout_bps_sum: [f(11), f(12), f(13)],
        markout_n: [f(14), f(15), f(16)],
        drift_bps_sum: f(17),
        drift_n: f(18),
        net_markout_bps_sum: f(19),
        net_markout_n: f(20),
        rfqs_total: c,
        wins_total: !c,
    }
}

#[test]
fn readers_never_see_a_torn_row_under_a_busy_writer() {
    const ROWS: u32 = 4;
    const WRITES: u32 = 300_000;
    const READS_PER_READER: u32 = 300_000;
    const READERS: usize = 3;

    let dir = TempDir::new("stress");
    let path = dir.file("t.scores");
    let mut w = ScoreWriter::create(&path, params(ROWS, 1), Nanos(1)).unwrap();
    let mut rows = Vec::new();
    for d in 0..ROWS {
        let row = w.place(d, SegmentKey::all()).unwrap();
        w.store_row(row, &row_for(0)).unwrap();
        rows.push(row);
    }
    let start = Arc::new(Barrier::new(READERS + 2));
    let writer_done = Arc::new(AtomicBool::new(false));

    let mut readers = Vec::new();
    for i in 0..READERS {
        // Reader 0 uses its own read-only map, like an external tool; the others share the
        // writer's map, like the engine.
        let r = if i == 0 {
            ScoreReader::open_read_only(&path).unwrap()
        } else {
            w.reader()
        };
        let rows = rows.clone();
        let start = Arc::clone(&start);
        readers.push(std::thread::spawn(move || {
            start.wait();
            let mut last = vec![0u32; rows.len()];
            let (mut ok, mut busy, mut changed) = (0u64, 0u64, 0u64);
            for n in 0..READS_PER_READER {
                let i = n as usize % rows.len();
                match r.read_row(rows[i]) {
                    Ok(rec) => {
                        let c = rec.stats.rfqs_total;
                        assert_eq!(rec.stats, row_for(c), "torn row {}", rows[i]);
                        assert_eq!(rec.key, SegmentKey::all());
                        assert!(c >= last[i], "row went back from {} to {c}", last[i]);
                        changed += u64::from(c != last[i]);
                        last[i] = c;
                        ok += 1;
                    }
                    Err(ReadError::Busy { .. }) => busy += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            (ok, busy, changed)
        }));
    }
    let wstart = Arc::clone(&start);
    let wdone = Arc::clone(&writer_done);
    let writer = std::thread::spawn(move || {
        wstart.wait();
        for c in 1..=WRITES {
            let row = rows[(c % ROWS) as usize];
            w.store_row(row, &row_for(c)).unwrap();
        }
        wdone.store(true, Ordering::Release);
        w
    });
    start.wait();
    let w = writer.join().unwrap();
    let mut total_ok = 0;
    for h in readers {
        let (ok, busy, changed) = h.join().unwrap();
        assert!(ok > 0, "a reader never got a row ({busy} busy)");
        total_ok += ok;
        // How much the reader overlapped the writer (informational: scheduling decides).
        eprintln!("reader: {ok} consistent reads, {busy} busy, {changed} saw a new write");
    }
    assert!(writer_done.load(Ordering::Acquire));
    // After the writer is done every row holds its last write.
    let r = w.reader();
    for d in 0..ROWS {
        let last_c = (1..=WRITES).rev().find(|c| c % ROWS == d).unwrap();
        let rec = r.read_row(u64::from(d)).unwrap();
        assert_eq!(rec.stats, row_for(last_c));
    }
    assert!(total_ok >= u64::from(READS_PER_READER));
}
