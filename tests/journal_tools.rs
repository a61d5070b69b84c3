//! `rfq-journal`'s analysis commands as an operator runs them: the built binary on a journal
//! this test writes with `journal::writer::Journal`, holding the FIX records of realistic RFQs
//! (desk QuoteRequests, dealer requests, quotes, declines, a late quote, a hit, executions,
//! a rejection, an expiry, an all-decline) on the embedded configuration's sessions. Checks
//! output content of `cat` filters (an RFQ followed across sessions by any of its ids),
//! `stats`, `export`, `whatif`, `scores`, every `--help`, and errors for bad inputs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rfq_router::fix::encode::Encoder;
use rfq_router::journal::{FixDirection, Journal, JournalConfig, RecordKind};
use rfq_router::time::{parse_utc_timestamp, Nanos};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-tools-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// The binary under test; `RFQ_JOURNAL_BIN` names another build of it (helpers sharing
/// one target directory can overwrite each other's `target/debug/rfq-journal`).
fn run(args: &[&str]) -> Output {
    let bin = std::env::var_os("RFQ_JOURNAL_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rfq-journal").into());
    Command::new(bin)
        .args(args)
        .output()
        .expect("run rfq-journal")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Session ids of the embedded config/router.toml (index of each [[session]]).
const DESK: u16 = 0;
const DEALER_A: u16 = 1; // Dealer A, DLRA
const DEALER_C: u16 = 2; // Dealer C, DLRC
const DEALER_D: u16 = 3; // Dealer D, DLRD
const DEALER_B: u16 = 4; // Dealer B, DLRB, hit with NewOrderSingle

const T0: &str = "20261120-14:00:00";

/// Writes FIX frames into a journal with per-session sequence numbers, like the router.
struct Writer {
    journal: Journal,
    enc: Encoder,
    seqs: [u64; 5],
    t0: Nanos,
}

impl Writer {
    fn new(dir: &Path) -> Writer {
        let config = JournalConfig {
            segment_size_bytes: 64 * 1024,
            max_payload_bytes: 8192,
            ..JournalConfig::new(dir)
        };
        let (journal, _) = Journal::open(config).unwrap();
        Writer {
            journal,
            enc: Encoder::new(8192),
            seqs: [0; 5],
            t0: parse_utc_timestamp(T0.as_bytes()).unwrap(),
        }
    }

    /// One message at `ms` after T0 on `session`; `inbound` from the peer.
    fn msg(&mut self, ms: u64, session: u16, inbound: bool, msg_type: &str, body: &[(u32, &str)]) {
        let ts = Nanos(self.t0.0 + ms * 1_000_000);
        let comp = ["DESK", "DEALERA", "DEALERC", "DEALERD", "DEALERB"][usize::from(session)];
        let (sender, target) = if inbound {
            (comp, "ROUTER")
        } else {
            ("ROUTER", comp)
        };
        self.seqs[usize::from(session)] += 1;
        let seq = self.seqs[usize::from(session)];
        self.enc
            .start(msg_type.as_bytes())
            .str(49, sender.as_bytes())
            .str(56, target.as_bytes())
            .uint(34, seq)
            .timestamp(52, ts);
        for (tag, v) in body {
            self.enc.str(*tag, v.as_bytes());
        }
        let frame = self.enc.finish().unwrap().to_vec();
        let dir = if inbound {
            FixDirection::Inbound
        } else {
            FixDirection::Outbound
        };
        self.journal.append_fix(dir, session, ts, &frame).unwrap();
    }

    fn record(&mut self, ms: u64, kind: RecordKind, payload: &[u8]) {
        let ts = Nanos(self.t0.0 + ms * 1_000_000);
        self.journal.append(kind, ts, payload).unwrap();
    }

    fn close(self) {
        self.journal.close().unwrap();
    }
}

const A_BOND: &str = "US99A1NW1035"; // Northwind Utilities, ig_corp A-
const B_BOND: &str = "US99B2BT1007"; // Bellmare Telecom, ig_corp BBB
const C_BOND: &str = "US99C3HP1093"; // Harlow Pharma, ig_corp AA-

/// Three desk requests (four legs):
/// - DQ1 (R1-0): buy 5mm A_BOND; asked A, B, C; A and B quote, C declines; the desk hits B
///   (NewOrderSingle to B), B fills at 99.20, A hears "done away".
/// - DQ2: leg 1 (R2-1) sell 2mm B_BOND, asked A and C; A quotes, C quotes late (refused);
///   it expires. Leg 2 names an unknown bond: rejected.
/// - DQ3 (R3-2): buy 1mm C_BOND; A, B, D all decline: no quote.
fn demo_journal(dir: &Path) {
    let mut w = Writer::new(dir);
    for s in [DESK, DEALER_A, DEALER_C, DEALER_D, DEALER_B] {
        w.msg(0, s, true, "A", &[(98, "0"), (108, "30")]);
        w.msg(1, s, false, "A", &[(98, "0"), (108, "30")]);
    }
    // DQ1
    let leg1 = [
        (146, "1"),
        (55, "NWU 4.25 31"),
        (48, A_BOND),
        (22, "4"),
        (54, "1"),
        (38, "5000000"),
    ];
    let mut r = vec![(131, "DQ1")];
    r.extend_from_slice(&leg1);
    w.msg(1000, DESK, true, "R", &r);
    for s in [DEALER_A, DEALER_B, DEALER_C] {
        w.msg(
            1000,
            s,
            false,
            "R",
            &[
                (131, "R1-0"),
                (146, "1"),
                (55, "NWU 4.25 31"),
                (48, A_BOND),
                (22, "4"),
                (54, "1"),
                (38, "5000000"),
            ],
        );
    }
    w.msg(
        1000,
        DESK,
        false,
        "AI",
        &[
            (117, "R1-0"),
            (131, "DQ1"),
            (55, "NWU 4.25 31"),
            (48, A_BOND),
            (22, "4"),
            (297, "0"),
        ],
    );
    w.msg(
        2000,
        DEALER_A,
        true,
        "S",
        &[
            (131, "R1-0"),
            (117, "A-Q1"),
            (55, "NWU 4.25 31"),
            (48, A_BOND),
            (22, "4"),
            (132, "99.10"),
            (133, "99.25"),
        ],
    );
    w.msg(
        2000,
        DESK,
        false,
        "S",
        &[
            (131, "DQ1"),
            (117, "Q1-0-0-0"),
            (453, "1"),
            (448, "DLRA"),
            (447, "D"),
            (452, "1"),
            (55, "NWU 4.25 31"),
            (48, A_BOND),
            (22, "4"),
            (54, "1"),
            (132, "99.10"),
            (133, "99.25"),
        ],
    );
    w.msg(
        3000,
        DEALER_B,
        true,
        "S",
        &[
            (131, "R1-0"),
            (117, "B-Q1"),
            (55, "NWU 4.25 31"),
            (48, A_BOND),
            (22, "4"),
            (132, "99.05"),
            (133, "99.20"),
            (135, "5000000"),
        ],
    );
    w.msg(
        3000,
        DESK,
        false,
        "S",
        &[
            (131, "DQ1"),
            (117, "Q1-0-1-0"),
            (453, "1"),
            (448, "DLRB"),
            (447, "D"),
            (452, "1"),
            (55, "NWU 4.25 31"),
            (48, A_BOND),
            (22, "4"),
            (54, "1"),
            (132, "99.05"),
            (133, "99.20"),
            (135, "5000000"),
        ],
    );
    w.msg(
        4000,
        DEALER_C,
        true,
        "AG",
        &[(131, "R1-0"), (658, "99"), (146, "1"), (55, "NWU 4.25 31")],
    );
    w.msg(
        5000,
        DESK,
        true,
        "AJ",
        &[
            (693, "DH1"),
            (117, "Q1-0-1-0"),
            (694, "1"),
            (55, "NWU 4.25 31"),
            (54, "1"),
        ],
    );
    w.msg(
        5000,
        DEALER_B,
        false,
        "D",
        &[
            (11, "E1-0"),
            (117, "B-Q1"),
            (55, "NWU 4.25 31"),
            (48, A_BOND),
            (22, "4"),
            (54, "1"),
            (60, "20261120-14:00:05.000"),
            (38, "5000000"),
            (40, "D"),
            (44, "99.20"),
        ],
    );
    w.msg(
        5500,
        DEALER_B,
        true,
        "8",
        &[
            (37, "B-ORD1"),
            (11, "E1-0"),
            (17, "B-X1"),
            (150, "F"),
            (39, "2"),
            (55, "NWU 4.25 31"),
            (54, "1"),
            (32, "5000000"),
            (31, "99.20"),
            (151, "0"),
            (14, "5000000"),
            (6, "99.20"),
        ],
    );
    w.msg(
        5500,
        DESK,
        false,
        "8",
        &[
            (37, "O1-0"),
            (17, "X1-0-1-1"),
            (150, "F"),
            (39, "2"),
            (693, "DH1"),
            (55, "NWU 4.25 31"),
            (48, A_BOND),
            (22, "4"),
            (54, "1"),
            (32, "5000000"),
            (31, "99.20"),
            (151, "0"),
            (14, "5000000"),
            (6, "99.20"),
        ],
    );
    w.msg(
        5500,
        DEALER_A,
        false,
        "AJ",
        &[
            (693, "P1-0-0-0"),
            (117, "A-Q1"),
            (694, "5"),
            (55, "NWU 4.25 31"),
            (48, A_BOND),
            (22, "4"),
        ],
    );
    // A TCA result this build can read (JSON with the tca.csv column names), one it cannot.
    w.record(6000, RecordKind::TcaResult, br#"{"rfq":"R1-0","dealer":"Dealer B","instrument":"US99A1NW1035","side":"buy","qty":5000000,"arrival_mid":99.18,"exec_px":99.20,"price_improvement_bps":-2.0,"markout_60s_bps":1.5}"#);
    w.record(7000, RecordKind::TcaResult, &[0xde, 0xad, 0xbe, 0xef]);
    // DQ2: two legs, the second unknown.
    w.msg(
        10_000,
        DESK,
        true,
        "R",
        &[
            (131, "DQ2"),
            (146, "2"),
            (55, "BLT 3.875 29"),
            (48, B_BOND),
            (22, "4"),
            (54, "2"),
            (38, "2000000"),
            (55, "MYSTERY"),
            (48, "XS0000000000"),
            (22, "4"),
            (54, "2"),
            (38, "1000000"),
        ],
    );
    for s in [DEALER_A, DEALER_C] {
        w.msg(
            10_000,
            s,
            false,
            "R",
            &[
                (131, "R2-1"),
                (146, "1"),
                (55, "BLT 3.875 29"),
                (48, B_BOND),
                (22, "4"),
                (54, "2"),
                (38, "2000000"),
            ],
        );
    }
    w.msg(
        10_000,
        DESK,
        false,
        "AI",
        &[
            (117, "R2-1"),
            (131, "DQ2"),
            (55, "BLT 3.875 29"),
            (48, B_BOND),
            (22, "4"),
            (297, "0"),
        ],
    );
    w.msg(
        10_000,
        DESK,
        false,
        "AG",
        &[
            (131, "DQ2"),
            (658, "1"),
            (146, "1"),
            (55, "MYSTERY"),
            (48, "XS0000000000"),
            (22, "4"),
            (58, "unknown instrument: XS0000000000"),
        ],
    );
    w.msg(
        12_500,
        DEALER_A,
        true,
        "S",
        &[
            (131, "R2-1"),
            (117, "A-Q2"),
            (55, "BLT 3.875 29"),
            (48, B_BOND),
            (22, "4"),
            (132, "101.50"),
            (133, "101.70"),
        ],
    );
    w.msg(
        12_500,
        DESK,
        false,
        "S",
        &[
            (131, "DQ2"),
            (117, "Q2-1-0-0"),
            (453, "1"),
            (448, "DLRA"),
            (447, "D"),
            (452, "1"),
            (55, "BLT 3.875 29"),
            (48, B_BOND),
            (22, "4"),
            (54, "2"),
            (132, "101.50"),
            (133, "101.70"),
        ],
    );
    w.msg(
        40_000,
        DEALER_C,
        true,
        "S",
        &[
            (131, "R2-1"),
            (117, "C-Q2"),
            (55, "BLT 3.875 29"),
            (48, B_BOND),
            (22, "4"),
            (132, "101.40"),
        ],
    );
    w.msg(
        40_000,
        DEALER_C,
        false,
        "AI",
        &[
            (117, "C-Q2"),
            (131, "R2-1"),
            (55, "BLT 3.875 29"),
            (297, "7"),
            (58, "quote arrived after the request closed for you"),
        ],
    );
    w.msg(
        130_000,
        DESK,
        false,
        "AI",
        &[
            (117, "R2-1"),
            (131, "DQ2"),
            (55, "BLT 3.875 29"),
            (48, B_BOND),
            (22, "4"),
            (297, "7"),
            (58, "RFQ expired"),
        ],
    );
    // DQ3: everybody declines.
    w.msg(
        200_000,
        DESK,
        true,
        "R",
        &[
            (131, "DQ3"),
            (146, "1"),
            (55, "HPG 4.6 33"),
            (48, C_BOND),
            (22, "4"),
            (54, "1"),
            (38, "1000000"),
        ],
    );
    for s in [DEALER_A, DEALER_B, DEALER_D] {
        w.msg(
            200_000,
            s,
            false,
            "R",
            &[
                (131, "R3-2"),
                (146, "1"),
                (55, "HPG 4.6 33"),
                (48, C_BOND),
                (22, "4"),
                (54, "1"),
                (38, "1000000"),
            ],
        );
    }
    w.msg(
        200_000,
        DESK,
        false,
        "AI",
        &[
            (117, "R3-2"),
            (131, "DQ3"),
            (55, "HPG 4.6 33"),
            (48, C_BOND),
            (22, "4"),
            (297, "0"),
        ],
    );
    for (i, s) in [DEALER_A, DEALER_B, DEALER_D].into_iter().enumerate() {
        w.msg(
            201_000 + 1000 * i as u64,
            s,
            true,
            "AG",
            &[(131, "R3-2"), (658, "99"), (146, "1"), (55, "HPG 4.6 33")],
        );
    }
    w.msg(
        203_000,
        DESK,
        false,
        "AI",
        &[
            (117, "R3-2"),
            (131, "DQ3"),
            (55, "HPG 4.6 33"),
            (48, C_BOND),
            (22, "4"),
            (297, "5"),
            (58, "no dealer quoted: all declined, timed out or dropped"),
        ],
    );
    w.msg(210_000, DESK, true, "0", &[]);
    w.close();
}

fn lines(o: &Output) -> Vec<String> {
    text(&o.stdout).lines().map(String::from).collect()
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
    o
}

#[test]
fn cat_follows_one_rfq_across_desk_and_dealer_sessions_by_any_of_its_ids() {
    let dir = fresh_dir("cat-rfq");
    demo_journal(&dir);
    let d = dir.to_str().unwrap();
    // DQ1's trail: desk R, 3 dealer R, desk AI, 2 quotes in + 2 relayed, a decline, the desk
    // hit, the D to B, B's fill, the fill to the desk, done-away to A.
    let by_desk_id = lines(&ok(run(&["cat", d, "--rfq", "DQ1"])));
    assert_eq!(by_desk_id.len(), 15, "{by_desk_id:#?}");
    assert!(by_desk_id[0].contains("session=0:desk in ") && by_desk_id[0].contains("|35=R|"));
    for l in &by_desk_id {
        assert!(
            !l.contains("DQ2") && !l.contains("R2-1") && !l.contains("R3-2"),
            "{l}"
        );
    }
    for needle in [
        "session=1:dealer-a out",
        "session=4:dealer-b out",
        "session=2:dealer-c in",
        "35=D|",
        "B-X1",
        "X1-0-1-1",
        "694=5",
    ] {
        assert!(
            by_desk_id.iter().any(|l| l.contains(needle)),
            "no {needle} in {by_desk_id:#?}"
        );
    }
    for id in ["R1-0", "Q1-0-1-0", "E1-0", "B-Q1"] {
        let other = lines(&ok(run(&["cat", d, "--rfq", id])));
        assert_eq!(other, by_desk_id, "--rfq {id}");
    }
    // A two-leg request: the desk id gives both legs, the router id only its leg.
    let dq2 = lines(&ok(run(&["cat", d, "--rfq", "DQ2"])));
    assert!(dq2
        .iter()
        .any(|l| l.contains("XS0000000000") && l.contains("35=AG")));
    assert!(
        dq2.iter()
            .any(|l| l.contains("C-Q2") && l.contains("35=AI")),
        "the late quote's refusal"
    );
    let r21 = lines(&ok(run(&["cat", d, "--rfq", "R2-1"])));
    assert_eq!(r21.len(), dq2.len() - 1, "all but the rejected leg's AG");

    let json = lines(&ok(run(&[
        "cat",
        d,
        "--json",
        "--rfq",
        "DQ3",
        "--msg-type",
        "AG",
    ])));
    assert_eq!(json.len(), 3, "{json:#?}");
    for l in &json {
        assert!(
            l.contains("\"rfq\":\"R3-2\"") && l.contains("\"direction\":\"in\""),
            "{l}"
        );
        assert!(l.contains("\"dealer\":\"Dealer "), "{l}");
    }
    let none = run(&["cat", d, "--rfq", "NOPE"]);
    assert!(none.status.success());
    assert!(lines(&none).is_empty());
    assert!(text(&none.stderr).contains("no RFQ with id \"NOPE\""));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cat_filters_by_session_name_or_id_dealer_time_and_type() {
    let dir = fresh_dir("cat-filters");
    demo_journal(&dir);
    let d = dir.to_str().unwrap();
    let by_name = lines(&ok(run(&["cat", d, "--session", "dealer-a"])));
    let by_id = lines(&ok(run(&["cat", d, "--session", "1"])));
    assert_eq!(by_name, by_id);
    // Logon x2, R x3, S x2, done-away, AG
    assert_eq!(by_name.len(), 9, "{by_name:#?}");
    assert!(by_name.iter().all(|l| l.contains("session=1:dealer-a")));

    // Dealer B: its own session (Logon x2, R x2, S, D, 8, AG) and the desk's relayed quote
    // naming it (448=DLRB).
    let b = lines(&ok(run(&["cat", d, "--dealer", "Dealer B"])));
    assert_eq!(b.len(), 9, "{b:#?}");
    assert_eq!(b.iter().filter(|l| l.contains("session=0:desk")).count(), 1);
    assert_eq!(lines(&ok(run(&["cat", d, "--dealer", "DLRB"]))), b);

    let window = lines(&ok(run(&[
        "cat",
        d,
        "--from",
        "20261120-14:00:10",
        "--to",
        "20261120-14:03:20",
        "--msg-type",
        "AI",
    ])));
    // DQ2's accept, C's late refusal, DQ2's expiry; DQ3's at 14:03:20 is excluded.
    assert_eq!(window.len(), 3, "{window:#?}");

    let bad = run(&["cat", d, "--session", "nowhere"]);
    assert_eq!(bad.status.code(), Some(2));
    let e = text(&bad.stderr);
    assert!(e.contains("nowhere") && e.contains("dealer-a"), "{e}");
    let bad = run(&["cat", d, "--dealer", "Dealer Z"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("Dealer A"));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stats_counts_by_kind_session_and_dealer_with_outcomes() {
    let dir = fresh_dir("stats");
    demo_journal(&dir);
    let s = text(&ok(run(&["stats", dir.to_str().unwrap()])).stdout);
    assert!(
        s.contains("rfq legs  4 (expired=1 filled=1 no-quote=1 rejected=1)"),
        "{s}"
    );
    let line = |prefix: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {s}"))
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // "Dealer A asked 3 quotes 2 refused 0 declines 1 hits 0 fills 0"
    let a = line("Dealer A");
    assert_eq!(
        a[3..].join(" "),
        "3 quotes 2 refused 0 declines 1 hits 0 fills 0",
        "{a:?}"
    );
    let b = line("Dealer B");
    assert_eq!(
        b[3..].join(" "),
        "2 quotes 1 refused 0 declines 1 hits 1 fills 1",
        "{b:?}"
    );
    let c = line("Dealer C");
    assert_eq!(
        c[3..].join(" "),
        "2 quotes 1 refused 1 declines 1 hits 0 fills 0",
        "{c:?}"
    );
    let desk = line("0 ");
    assert_eq!(desk[1], "desk", "{desk:?}");
    assert!(desk.contains(&"(desk)".to_string()), "{desk:?}");
    assert_eq!(
        line("1 ")[6],
        "(Dealer",
        "dealer sessions name their dealer"
    );
    assert!(s.contains("fix-in"), "{s}");
    assert!(s.contains("(210.000 s)"), "{s}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_are_named_clearly() {
    let missing = fresh_dir("missing");
    let empty = fresh_dir("empty");
    fs::create_dir_all(&empty).unwrap();
    let foreign_dir = fresh_dir("foreign");
    fs::create_dir_all(&foreign_dir).unwrap();
    let foreign = foreign_dir.join("seg-000000000001.rfqj");
    fs::write(&foreign, vec![b'x'; 4096]).unwrap();
    let commands: [&[&str]; 6] = [
        &["cat"],
        &["stats"],
        &["verify"],
        &["export", "--csv", "/nonexistent-out"],
        &[
            "whatif",
            "--rules",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.toml"),
        ],
        &["scores"],
    ];
    for cmd in commands {
        for (path, says) in [
            (&missing, "no such file or directory"),
            (&empty, "empty journal directory"),
            (&foreign, "not an rfq-router journal segment"),
            (&foreign_dir, "not an rfq-router journal segment"),
        ] {
            let mut args = vec![cmd[0], path.to_str().unwrap()];
            args.extend_from_slice(&cmd[1..]);
            let o = run(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
            let e = text(&o.stderr);
            assert!(e.contains(says), "{args:?}: {e}");
            let named = if path == &foreign_dir { &foreign } else { path };
            assert!(
                e.contains(named.to_str().unwrap()),
                "{args:?} names the path: {e}"
            );
        }
    }
    fs::remove_dir_all(&empty).unwrap();
    fs::remove_dir_all(&foreign_dir).unwrap();
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn col<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let i = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    &row[i]
}

#[test]
fn export_writes_rfqs_quotes_executions_and_tca_as_csv() {
    let dir = fresh_dir("export");
    demo_journal(&dir);
    let out = fresh_dir("export-out");
    let o = ok(run(&[
        "export",
        dir.to_str().unwrap(),
        "--csv",
        out.to_str().unwrap(),
    ]));
    let said = text(&o.stdout);
    assert!(
        said.contains("4 rows") && said.contains("rfqs.csv"),
        "{said}"
    );
    assert!(
        text(&o.stderr).contains("1 tca record(s) not exported"),
        "{}",
        text(&o.stderr)
    );

    let (h, rfqs) = read_csv(&out.join("rfqs.csv"));
    assert_eq!(rfqs.len(), 4);
    let dq1 = &rfqs[0];
    assert_eq!(col(&h, dq1, "desk_quote_req_id"), "DQ1");
    assert_eq!(col(&h, dq1, "router_quote_req_id"), "R1-0");
    assert_eq!(col(&h, dq1, "time_utc"), "20261120-14:00:01.000");
    assert_eq!(col(&h, dq1, "instrument"), A_BOND);
    assert_eq!(col(&h, dq1, "id_source"), "4");
    assert_eq!(col(&h, dq1, "side"), "buy");
    assert_eq!(col(&h, dq1, "qty"), "5000000");
    assert_eq!(col(&h, dq1, "dealers_asked"), "3");
    assert_eq!(col(&h, dq1, "dealers"), "Dealer A;Dealer B;Dealer C");
    assert_eq!(col(&h, dq1, "quotes"), "2");
    assert_eq!(col(&h, dq1, "outcome"), "filled");
    assert_eq!(col(&h, dq1, "winner"), "Dealer B");
    assert_eq!(col(&h, dq1, "exec_px"), "99.2");
    assert_eq!(col(&h, dq1, "exec_qty"), "5000000");
    assert_eq!(col(&h, dq1, "hit_by"), "desk");
    let outcomes: Vec<(&str, &str, &str)> = rfqs
        .iter()
        .map(|r| {
            (
                col(&h, r, "desk_quote_req_id"),
                col(&h, r, "leg"),
                col(&h, r, "outcome"),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("DQ1", "1", "filled"),
            ("DQ2", "1", "expired"),
            ("DQ2", "2", "rejected"),
            ("DQ3", "1", "no-quote")
        ]
    );
    assert!(col(&h, &rfqs[2], "outcome_detail").contains("unknown instrument"));
    assert_eq!(col(&h, &rfqs[2], "router_quote_req_id"), "");
    assert_eq!(col(&h, &rfqs[3], "dealers"), "Dealer A;Dealer B;Dealer D");

    let (h, quotes) = read_csv(&out.join("quotes.csv"));
    let q: Vec<(&str, &str, &str, &str)> = quotes
        .iter()
        .map(|r| {
            (
                col(&h, r, "dealer_quote_id"),
                col(&h, r, "router_quote_id"),
                col(&h, r, "status"),
                col(&h, r, "response_ms"),
            )
        })
        .collect();
    assert_eq!(
        q,
        [
            ("A-Q1", "Q1-0-0-0", "relayed", "1000.000"),
            ("B-Q1", "Q1-0-1-0", "relayed", "2000.000"),
            ("A-Q2", "Q2-1-0-0", "relayed", "2500.000"),
            ("C-Q2", "", "refused", "30000.000"),
        ]
    );
    assert_eq!(col(&h, &quotes[1], "offer_px"), "99.2");
    assert_eq!(col(&h, &quotes[1], "desk_quote_req_id"), "DQ1");
    assert!(col(&h, &quotes[3], "detail").contains("after the request closed"));

    let (h, execs) = read_csv(&out.join("executions.csv"));
    assert_eq!(execs.len(), 1);
    let x = &execs[0];
    assert_eq!(
        [
            col(&h, x, "dealer"),
            col(&h, x, "exec_id"),
            col(&h, x, "desk_exec_id"),
            col(&h, x, "ord_status"),
            col(&h, x, "last_px"),
            col(&h, x, "hit_px"),
            col(&h, x, "side")
        ],
        ["Dealer B", "B-X1", "X1-0-1-1", "2", "99.2", "99.2", "buy"]
    );

    let (h, tca) = read_csv(&out.join("tca.csv"));
    assert_eq!(h[..4], ["time_utc", "time_ns", "journal_seq", "rfq"]);
    assert_eq!(tca.len(), 1);
    assert_eq!(col(&h, &tca[0], "dealer"), "Dealer B");
    assert_eq!(col(&h, &tca[0], "price_improvement_bps"), "-2");
    assert_eq!(col(&h, &tca[0], "markout_60s_bps"), "1.5");
    assert_eq!(col(&h, &tca[0], "markout_300s_bps"), "");
    assert_eq!(col(&h, &tca[0], "net_markout_bps"), "");

    // A time range that holds no TCA record: the header alone.
    let out2 = fresh_dir("export-out2");
    ok(run(&[
        "export",
        dir.to_str().unwrap(),
        "--csv",
        out2.to_str().unwrap(),
        "--to",
        "20261120-14:00:05",
    ]));
    let (h, tca) = read_csv(&out2.join("tca.csv"));
    assert_eq!(h.len(), 17);
    assert_eq!(h[16], "net_markout_bps");
    assert!(tca.is_empty());
    let (_, rfqs) = read_csv(&out2.join("rfqs.csv"));
    assert_eq!(rfqs.len(), 1);
    for d in [&dir, &out, &out2] {
        fs::remove_dir_all(d).unwrap();
    }
}

/// The shipped rules with the default panel cut to two dealers asked one by one (whisper),
/// never Dealer C.
fn tighter_rules(dir: &Path) -> PathBuf {
    let shipped =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.toml")).unwrap();
    let tighter = shipped
        .replacen("top = 4\nnever = []", "top = 2\nnever = [\"Dealer C\"]", 1)
        .replacen(
            "kind = \"broadcast\"\nmax_dealers = 4",
            "kind = \"whisper\"\nmax_dealers = 2",
            1,
        );
    assert_ne!(
        tighter, shipped,
        "the shipped rules changed shape: update this test"
    );
    fs::create_dir_all(dir).unwrap();
    let path = dir.join("tighter.toml");
    fs::write(&path, tighter).unwrap();
    path
}

#[test]
fn whatif_reports_panel_protocol_and_cost_changes_per_rfq_and_in_total() {
    let dir = fresh_dir("whatif");
    demo_journal(&dir);
    let rules_dir = fresh_dir("whatif-rules");
    let rules = tighter_rules(&rules_dir);
    let o = ok(run(&[
        "whatif",
        dir.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]));
    let s = text(&o.stdout);
    println!("{s}");
    assert!(
        s.contains("Expected cost of an RFQ"),
        "says what expected cost means: {s}"
    );
    // Four legs: DQ1, DQ2 leg 1 and DQ3 are known bonds; DQ2 leg 2 is refused under both.
    assert!(s.contains("DQ2 leg 2 (not opened) XS0000000000"), "{s}");
    assert!(s.contains("refused: unknown instrument"), "{s}");
    let dq3 = s.split("DQ3 leg 1").nth(1).expect("DQ3 reported");
    assert!(
        dq3.contains("recorded  3 dealer(s) asked: Dealer A, Dealer B, Dealer D"),
        "{dq3}"
    );
    let whatif_line = dq3
        .lines()
        .find(|l| l.trim_start().starts_with("whatif"))
        .unwrap();
    assert!(
        whatif_line.contains("whisper") && whatif_line.contains("3 dealer(s)"),
        "{whatif_line}"
    );
    assert!(!whatif_line.contains("Dealer C"), "{whatif_line}");
    let change = dq3
        .lines()
        .find(|l| l.trim_start().starts_with("change"))
        .unwrap();
    assert!(
        change.contains(
            "added: none; removed: Dealer C; dealers 4 -> 3; protocol broadcast -> whisper"
        ),
        "{change}"
    );
    let total = s
        .lines()
        .find(|l| l.starts_with("total: "))
        .expect("a total line");
    assert!(total.starts_with("total: 4 RFQ leg(s);"), "{total}");
    assert!(total.contains("refused 1 -> 1"), "{total}");
    assert!(
        total.contains("dealers added 0, removed 4; dealers asked 11 -> 7"),
        "{total}"
    );
    assert!(
        s.lines()
            .any(|l| l.starts_with("expected cost over 3 leg(s)")),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.starts_with("removed by dealer:") && l.contains("Dealer C")),
        "{s}"
    );

    // Against itself nothing changes.
    let same = text(
        &ok(run(&[
            "whatif",
            dir.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "--baseline-rules",
            rules.to_str().unwrap(),
            "--changed-only",
        ]))
        .stdout,
    );
    let total = same.lines().find(|l| l.starts_with("total: ")).unwrap();
    assert!(
        total.contains("panel changed in 0, protocol changed in 0; dealers added 0, removed 0"),
        "{total}"
    );
    assert!(
        !same.contains(" leg 1 ("),
        "--changed-only prints no unchanged RFQ: {same}"
    );

    let bad = run(&[
        "whatif",
        dir.to_str().unwrap(),
        "--rules",
        "/nonexistent/rules.toml",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("/nonexistent/rules.toml"),
        "{}",
        text(&bad.stderr)
    );
    for d in [&dir, &rules_dir] {
        fs::remove_dir_all(d).unwrap();
    }
}

fn line_of<'a>(s: &'a str, prefix: &str) -> Vec<&'a str> {
    s.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in {s}"))
        .split_whitespace()
        .collect()
}

#[test]
fn scores_rebuild_dealer_statistics_from_the_fix_records() {
    let dir = fresh_dir("scores");
    demo_journal(&dir);
    let s = text(&ok(run(&["scores", dir.to_str().unwrap()])).stdout);
    assert!(s.starts_with("scores at 20261120-14:03:30.000"), "{s}");
    // dealer rfqs quotes declines late wins fill ...
    let a = line_of(&s, "Dealer A");
    assert_eq!(a[2..7], ["3.00", "2.00", "1.00", "0.00", "0.00"], "{s}");
    let b = line_of(&s, "Dealer B");
    assert_eq!(b[2..7], ["2.00", "1.00", "1.00", "0.00", "1.00"], "{s}");
    let c = line_of(&s, "Dealer C");
    assert_eq!(c[2..7], ["2.00", "0.00", "1.00", "1.00", "0.00"], "{s}");
    // B won at 99.20 against A's 99.25 offer: 99.25 - 99.20 over 99.25 is 5.04 bps better
    // than the cover (shrunk toward the pool in the printed mean, so just > 0).
    let cover: f64 = b[10].parse().unwrap();
    assert!(cover > 0.0, "{s}");
    assert!(s.contains("note: 1 tca record(s) not read"), "{s}");

    // As of before the fill, B has no win.
    let before = text(
        &ok(run(&[
            "scores",
            dir.to_str().unwrap(),
            "--at",
            "20261120-14:00:05",
        ]))
        .stdout,
    );
    assert_eq!(line_of(&before, "Dealer B")[6], "0.00", "{before}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scores_diff_against_a_score_table_and_fail_on_mismatch() {
    use rfq_router::select::model::{ModelConfig, Observation};
    use rfq_router::select::segment::SegmentKey;
    use rfq_router::select::table::{ScoreWriter, TableParams};

    // One RFQ for a bond the security master does not know (so only the `all` segment):
    // Dealer A asked at 1 s and quotes at 3 s.
    let dir = fresh_dir("scores-table");
    let mut w = Writer::new(&dir);
    w.msg(
        1000,
        DESK,
        true,
        "R",
        &[
            (131, "DQ9"),
            (146, "1"),
            (55, "ZZZ"),
            (54, "1"),
            (38, "1000000"),
        ],
    );
    w.msg(
        1000,
        DEALER_A,
        false,
        "R",
        &[
            (131, "R9-0"),
            (146, "1"),
            (55, "ZZZ"),
            (54, "1"),
            (38, "1000000"),
        ],
    );
    w.msg(
        1000,
        DESK,
        false,
        "AI",
        &[(117, "R9-0"), (131, "DQ9"), (55, "ZZZ"), (297, "0")],
    );
    w.msg(
        3000,
        DEALER_A,
        true,
        "S",
        &[(131, "R9-0"), (117, "A-9"), (55, "ZZZ"), (133, "100.5")],
    );
    w.close();

    let cfg = ModelConfig::default();
    let t0 = parse_utc_timestamp(T0.as_bytes()).unwrap();
    let at = |ms: u64| Nanos(t0.0 + ms * 1_000_000);
    let make = |path: &Path, extra_rfq: bool| {
        let params = TableParams::new(4, 16, &cfg);
        let mut table = ScoreWriter::create(path, params, t0).unwrap();
        // Dealer A is dealer 0; the aggregate block is dealer 4.
        for dealer in [0, 4] {
            table
                .update(dealer, SegmentKey::all(), |r| {
                    r.observe(Observation::RfqSent, at(1000), &cfg).unwrap();
                    r.observe(Observation::Quoted { response_s: 2.0 }, at(3000), &cfg)
                        .unwrap();
                    if extra_rfq && dealer == 0 {
                        r.observe(Observation::RfqSent, at(2000), &cfg).unwrap();
                    }
                })
                .unwrap();
        }
        table.flush().unwrap();
    };
    let good = dir.join("good.scores");
    let bad = dir.join("bad.scores");
    make(&good, false);
    make(&bad, true);
    let d = dir.to_str().unwrap();

    let same = ok(run(&["scores", d, "--table", good.to_str().unwrap()]));
    let s = text(&same.stdout);
    assert!(s.contains("matches the journal"), "{s}");
    assert_eq!(line_of(&s, "Dealer A")[2..4], ["1.00", "1.00"], "{s}");

    let differ = run(&["scores", d, "--table", bad.to_str().unwrap()]);
    assert_eq!(differ.status.code(), Some(1), "{}", text(&differ.stderr));
    let s = text(&differ.stdout);
    assert!(s.contains("MISMATCH: 1 row(s)"), "{s}");
    let row = s
        .lines()
        .find(|l| l.trim_start().starts_with("Dealer A segment all"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        row.contains("rfqs_sent journal 1.0000 table 2.0000"),
        "{row}"
    );

    let missing = run(&[
        "scores",
        d,
        "--table",
        dir.join("nope.scores").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("nope.scores"),
        "{}",
        text(&missing.stderr)
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_command_has_help_that_says_what_it_needs() {
    let expect: [(&str, &[&str]); 7] = [
        (
            "",
            &[
                "cat",
                "stats",
                "verify",
                "export",
                "whatif",
                "scores",
                "--config",
                "--dealers",
            ],
        ),
        (
            "cat",
            &[
                "--rfq",
                "--dealer",
                "--session",
                "--msg-type",
                "--from",
                "--to",
                "--json",
            ],
        ),
        ("stats", &["--rfq", "--dealer", "--session"]),
        ("verify", &["PATH"]),
        (
            "export",
            &[
                "--csv",
                "rfqs.csv - one row per desk RFQ leg",
                "tca.csv",
                "basis points",
            ],
        ),
        (
            "whatif",
            &[
                "--rules",
                "--baseline-rules",
                "--instruments",
                "--dealers",
                "--scores",
                "Expected cost of an RFQ",
            ],
        ),
        ("scores", &["--at", "--table", "--tolerance"]),
    ];
    for (cmd, needles) in expect {
        let args: Vec<&str> = if cmd.is_empty() {
            vec!["--help"]
        } else {
            vec![cmd, "--help"]
        };
        let o = ok(run(&args));
        let h = text(&o.stdout);
        for n in needles {
            assert!(h.contains(n), "{cmd} --help lacks {n}: {h}");
        }
    }
}

#[test]
fn whatif_prices_panels_with_the_dealers_scores_from_a_table() {
    use rfq_router::select::model::{ModelConfig, Observation};
    use rfq_router::select::segment::SegmentKey;
    use rfq_router::select::table::{ScoreWriter, TableParams};

    let dir = fresh_dir("whatif-scores");
    demo_journal(&dir);
    let rules_dir = fresh_dir("whatif-scores-rules");
    let rules = tighter_rules(&rules_dir);
    // Dealer C (dealer 2) with a strong record the day before: 20 RFQs, all quoted in 1 s
    // and won with 5 bps of price improvement, in every asset class (scores back off no
    // further than the order's asset class). The others have no rows (neutral priors).
    let cfg = ModelConfig::default();
    let t0 = parse_utc_timestamp(T0.as_bytes()).unwrap();
    let day_before = Nanos(t0.0 - 86_400 * Nanos::PER_SEC);
    let table_path = rules_dir.join("c-strong.scores");
    let mut table =
        ScoreWriter::create(&table_path, TableParams::new(4, 16, &cfg), day_before).unwrap();
    let keys = ["ig_corp", "hy_corp", "muni", "structured", "govt"]
        .map(|a| SegmentKey::asset_class(a.as_bytes()));
    for (dealer, key) in [2, 4].into_iter().flat_map(|d| {
        std::iter::once(SegmentKey::all())
            .chain(keys)
            .map(move |k| (d, k))
    }) {
        table
            .update(dealer, key, |r| {
                for _ in 0..20 {
                    r.observe(Observation::RfqSent, day_before, &cfg).unwrap();
                    r.observe(Observation::Quoted { response_s: 1.0 }, day_before, &cfg)
                        .unwrap();
                    let won = Observation::Won {
                        price_improvement_bps: 5.0,
                        vs_cover_bps: Some(2.0),
                    };
                    r.observe(won, day_before, &cfg).unwrap();
                }
            })
            .unwrap();
    }
    table.flush().unwrap();
    drop(table);

    let args = [
        "whatif",
        dir.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--scores",
        table_path.to_str().unwrap(),
    ];
    let s = text(&ok(run(&args)).stdout);
    // DQ2 leg 1 loses Dealer C (and D): the panel's mean composite falls, the expected cost rises.
    let dq2 = s.split("DQ2 leg 1").nth(1).unwrap();
    let change = dq2
        .lines()
        .find(|l| l.trim_start().starts_with("change"))
        .unwrap();
    assert!(change.contains("removed: Dealer C, Dealer D"), "{change}");
    let delta: f64 = change
        .split("expected cost ")
        .nth(1)
        .and_then(|x| x.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        delta > 0.0,
        "losing the best-scored dealer costs more: {change}"
    );
    let total = s
        .lines()
        .find(|l| l.starts_with("expected cost over"))
        .unwrap();
    let parts: Vec<&str> = total.split_whitespace().collect();
    let (before, after): (f64, f64) = (parts[8].parse().unwrap(), parts[10].parse().unwrap());
    assert!(after > before, "{total}");
    for d in [&dir, &rules_dir] {
        fs::remove_dir_all(d).unwrap();
    }
}

/// A journal that holds the router's score updates (`score` records: the observations its
/// scoring thread applied, as the engine journaled them) rebuilds exactly the table they were
/// applied to, including what the FIX records cannot show (the price score against peers,
/// attributed drift, the net markout); one observation more in the table is a mismatch.
#[test]
fn scores_rebuild_from_the_routers_score_updates_match_its_table() {
    use rfq_router::journal::tap::JournalTap;
    use rfq_router::rfq::outbox::Record;
    use rfq_router::rfq::types::DealerId;
    use rfq_router::select::model::{ModelConfig, Observation};
    use rfq_router::select::segment::SegmentKeys;
    use rfq_router::select::table::{ScoreWriter, TableParams};
    use rfq_router::select::tca::{apply, TcaOutput, TcaUpdate};

    let dir = fresh_dir("scores-from-updates");
    fs::create_dir_all(&dir).unwrap();
    let cfg = ModelConfig::default();
    let t0 = parse_utc_timestamp(T0.as_bytes()).unwrap();
    let table_path = dir.join("t.scores");
    let mut table = ScoreWriter::create(&table_path, TableParams::new(8, 64, &cfg), t0).unwrap();
    let (journal, _) = Journal::open(JournalConfig::new(dir.join("journal"))).unwrap();
    let mut tap = JournalTap::new(journal, 8);
    tap.run_start(t0, &[]).unwrap();
    // Every segment of one order, as the scoring thread keys its updates.
    let keys = [1u64, 2, 3, 4, 5, 6].map(|i| rfq_router::select::segment::SegmentKey(i << 60 | i));
    let keys = SegmentKeys {
        all: rfq_router::select::segment::SegmentKey::all(),
        asset_class: keys[1],
        sector_rating: keys[2],
        issuer: keys[3],
        maturity: keys[4],
        size: keys[5],
    };
    let observations = [
        (0, Observation::RfqSent),
        (1, Observation::RfqSent),
        (0, Observation::Quoted { response_s: 2.5 }),
        (1, Observation::Declined { response_s: 1.0 }),
        (0, Observation::Competitiveness { bps: 3.25 }),
        (
            0,
            Observation::Won {
                price_improvement_bps: -4.0,
                vs_cover_bps: Some(1.5),
            },
        ),
        (1, Observation::Drift { bps: 7.75 }),
        (0, Observation::NetMarkout { bps: -12.5 }),
    ];
    let mut last = t0;
    for (i, (dealer, obs)) in observations.into_iter().enumerate() {
        let at = Nanos(t0.0 + (i as u64 + 1) * 1_000_000_000);
        let u = TcaUpdate {
            rfq: 1,
            dealer: DealerId(dealer),
            keys: Some(keys),
            obs,
            at,
        };
        apply(&mut table, &cfg, &TcaOutput::Update(u)).unwrap();
        tap.engine_record(at, &Record::ScoreUpdate(u));
        last = at;
    }
    tap.into_journal().close().unwrap();
    table.flush().unwrap();
    let d = dir.join("journal");
    let t = table_path.to_str().unwrap();
    let same = ok(run(&["scores", d.to_str().unwrap(), "--table", t]));
    let s = text(&same.stdout);
    assert!(s.contains("from 8 observation(s)"), "{s}");
    assert!(s.contains("matches the journal"), "{s}");

    // The table moves on without the journal: one net markout more.
    let u = TcaUpdate {
        rfq: 1,
        dealer: DealerId(0),
        keys: Some(keys),
        obs: Observation::NetMarkout { bps: 30.0 },
        at: Nanos(last.0 + 1_000_000_000),
    };
    apply(&mut table, &cfg, &TcaOutput::Update(u)).unwrap();
    table.flush().unwrap();
    let differ = run(&["scores", d.to_str().unwrap(), "--table", t]);
    assert_eq!(differ.status.code(), Some(1), "{}", text(&differ.stdout));
    assert!(
        text(&differ.stdout).contains("net_markout_bps_sum"),
        "{}",
        text(&differ.stdout)
    );
    fs::remove_dir_all(&dir).unwrap();
}
