//! `rfq-journal` as an operator runs it: the built binary on journals written through the
//! library, checking output, filters and exit status (including `verify` naming the file and
//! offset of corruption), and clear errors for missing or foreign paths.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rfq_router::journal::format::RECORD_HEADER_LEN;
use rfq_router::journal::{FixDirection, Journal, JournalConfig, JournalReader, RecordKind};
use rfq_router::time::{parse_utc_timestamp, Nanos};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-tool-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfq-journal"))
        .args(args)
        .output()
        .expect("run rfq-journal")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fix(msg_type: &str, seq: u64) -> Vec<u8> {
    format!("8=FIX.4.4\x019=20\x0135={msg_type}\x0134={seq}\x0149=A\x0156=B\x0110=000\x01")
        .into_bytes()
}

const T0: &[u8] = b"20240102-10:00:00";

/// 40 records over 40 seconds: per second i, a FIX message on session 1 or 2 (R, S, AJ
/// cycling, in and out alternating), every fifth second an engine decision instead.
fn demo_journal(dir: &Path) -> Nanos {
    let t0 = parse_utc_timestamp(T0).unwrap();
    let config = JournalConfig {
        segment_size_bytes: 16 * 1024,
        max_payload_bytes: 4096,
        ..JournalConfig::new(dir)
    };
    let (mut j, _) = Journal::open(config).unwrap();
    for i in 0..40u64 {
        let ts = Nanos(t0.0 + i * Nanos::PER_SEC);
        if i % 5 == 4 {
            j.append(RecordKind::EngineDecision, ts, b"panel=D1,D2 rule=r7")
                .unwrap();
        } else {
            let dir = if i % 2 == 0 {
                FixDirection::Inbound
            } else {
                FixDirection::Outbound
            };
            let msg_type = ["R", "S", "AJ"][(i % 3) as usize];
            j.append_fix(dir, 1 + (i % 2) as u16, ts, &fix(msg_type, i))
                .unwrap();
        }
    }
    j.close().unwrap();
    t0
}

#[test]
fn cat_prints_and_filters_records() {
    let dir = fresh_dir("cat");
    demo_journal(&dir);
    let d = dir.to_str().unwrap();

    let all = run(&["cat", d]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    let out = text(&all.stdout);
    assert_eq!(out.lines().count(), 40);
    let first = out.lines().next().unwrap();
    assert!(first.contains("20240102-10:00:00.000000000"), "{first}");
    assert!(
        first.contains("fix-in") && first.contains("session=1"),
        "{first}"
    );
    assert!(first.contains("8=FIX.4.4|9=20|35=R|"), "{first}");
    assert!(out.contains("decision panel=D1,D2 rule=r7"));

    // Session 2 holds the odd seconds; of those, MsgType S is i = 1, 7, 13, 25, 31, 37 (19 is
    // a decision).
    let s = run(&["cat", d, "--session", "2", "--msg-type", "S"]);
    assert!(s.status.success());
    let lines: Vec<String> = text(&s.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines
        .iter()
        .all(|l| l.contains("35=S|") && l.contains("session=2")));

    let decisions = run(&["cat", d, "--kind", "decision"]);
    assert_eq!(text(&decisions.stdout).lines().count(), 8);

    // [10:00:10, 10:00:20): ten records.
    let window = run(&[
        "cat",
        d,
        "--from",
        "20240102-10:00:10",
        "--to",
        "20240102-10:00:20.000",
    ]);
    let w = text(&window.stdout);
    assert_eq!(w.lines().count(), 10, "{w}");
    assert!(w.lines().next().unwrap().trim_start().starts_with("11 "));

    let json = run(&["cat", d, "--json", "--kind", "fix-out", "--msg-type", "AJ"]);
    assert!(json.status.success());
    let j = text(&json.stdout);
    let lines: Vec<&str> = j.lines().collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l.starts_with("{\"seq\":") && l.ends_with('}'), "{l}");
        assert!(l.contains("\"kind\":\"fix-out\""), "{l}");
        assert!(l.contains("\"msg_type\":\"AJ\""), "{l}");
        assert!(
            l.contains("\"text\":\"8=FIX.4.4\\u00019=20\\u000135=AJ"),
            "{l}"
        );
    }

    let bad = run(&["cat", d, "--kind", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("fix-in"), "lists the kinds");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stats_counts_by_kind_and_session() {
    let dir = fresh_dir("stats");
    demo_journal(&dir);
    let out = run(&["stats", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("records   40"), "{s}");
    assert!(s.contains("sequence  1 .. 40"), "{s}");
    assert!(s.contains("(39.000 s)"), "{s}");
    let line = |prefix: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {s}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    // 32 FIX messages: even seconds inbound on session 1, odd outbound on session 2.
    assert_eq!(line("fix-in")[1], "16");
    assert_eq!(line("fix-out")[1], "16");
    assert_eq!(line("decision")[1], "8");
    let session1 = line("1 ");
    assert_eq!((session1[3], session1[5]), ("16", "0"), "{session1:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verify_reports_clean_torn_and_corrupt_journals() {
    let dir = fresh_dir("verify");
    demo_journal(&dir);
    let d = dir.to_str().unwrap();
    let ok = run(&["verify", d]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));
    assert!(text(&ok.stdout).contains("40 records"));
    assert!(text(&ok.stdout).trim_end().ends_with("OK"));

    let reader = JournalReader::open(&dir).unwrap();
    let places: Vec<(u64, u64)> = reader
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r.segment_number, r.offset))
        .collect();
    let path = reader.segments()[0].path.clone();
    assert_eq!(reader.segments().len(), 1);
    drop(reader);
    let file = OpenOptions::new().write(true).open(&path).unwrap();

    // Garbage over the last record's payload: a torn tail (exit 3).
    let (_, last) = places[39];
    file.write_all_at(&[0xEE; 8], last + RECORD_HEADER_LEN as u64)
        .unwrap();
    let torn = run(&["verify", d]);
    let out = text(&torn.stdout);
    assert_eq!(torn.status.code(), Some(3), "{out}");
    assert!(out.contains(&format!("offset {last}: torn tail")), "{out}");

    // And a flipped byte in record 10: corruption (exit 1), reported with file and offset.
    let (_, tenth) = places[9];
    file.write_all_at(&[0x42], tenth + 20).unwrap();
    let bad = run(&["verify", d]);
    let out = text(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains(name) && l.contains(&format!("offset {tenth}: corrupt"))),
        "{out}"
    );
    assert!(out.contains("PROBLEMS"));
    // cat shows what precedes the damage and says where it stopped.
    let cat = run(&["cat", d]);
    assert_eq!(cat.status.code(), Some(1));
    assert_eq!(text(&cat.stdout).lines().count(), 9);
    assert!(text(&cat.stderr).contains(&format!("offset {tenth}")));

    // The router refuses to open it for writing.
    assert!(Journal::open(JournalConfig::new(&dir)).is_err());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn clear_errors_for_missing_and_foreign_paths_and_help_everywhere() {
    let missing = run(&["cat", "/nonexistent/journal/dir"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("/nonexistent/journal/dir: no such file or directory"),
        "{}",
        text(&missing.stderr)
    );

    let dir = fresh_dir("foreign");
    fs::create_dir_all(&dir).unwrap();
    let foreign = dir.join("notes.txt");
    fs::write(&foreign, "hello, this is not a journal\n").unwrap();
    for cmd in ["cat", "stats", "verify"] {
        let out = run(&[cmd, foreign.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(
            text(&out.stderr).contains("bad magic"),
            "{cmd}: {}",
            text(&out.stderr)
        );
    }
    let empty = run(&["stats", dir.to_str().unwrap()]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(text(&empty.stderr).contains("no journal segments"));

    for args in [
        &["--help"][..],
        &["cat", "--help"],
        &["stats", "--help"],
        &["verify", "--help"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: rfq-journal"), "{args:?}");
    }
    assert!(text(&run(&["cat", "--help"]).stdout).contains("--msg-type"));
    fs::remove_dir_all(&dir).unwrap();
}
