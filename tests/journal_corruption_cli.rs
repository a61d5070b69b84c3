//! Corruption in the middle of a segment, seen from the command line: `rfq-journal verify`
//! names the segment file and byte offset and exits non-zero; `rfq-router run` refuses to
//! start on the journal (non-zero exit, the same place named) unless told
//! `--truncate-corrupt`, and then starts on the journal cut there, which verifies clean.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::thread;
use std::time::Duration;

use rfq_router::journal::{FixDirection, Journal, JournalConfig, JournalReader};
use rfq_router::time::Nanos;

const WAIT: Duration = Duration::from_secs(90);

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-corruption-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    dir
}

/// Runs a command to completion (with a generous limit) and returns its output.
fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{cmd:?} did not finish");
        }
    }
}

/// A binary of this crate: the one cargo built for this test, or the copy in
/// `RFQ_TEST_BIN_DIR` (when several worktrees share one target directory).
fn bin(name: &str, built: &str) -> PathBuf {
    std::env::var_os("RFQ_TEST_BIN_DIR")
        .map_or_else(|| PathBuf::from(built), |d| Path::new(&d).join(name))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn corruption_mid_segment_is_reported_and_refused_unless_truncation_is_asked() {
    let dir = work_dir();
    let journal = dir.join("journal");
    // A journal of several 16 KiB segments of FIX records.
    let (mut j, _) = Journal::open(JournalConfig {
        segment_size_bytes: 16 * 1024,
        max_payload_bytes: 4096,
        ..JournalConfig::new(&journal)
    })
    .expect("open");
    for seq in 1..=300u64 {
        let frame = format!("8=FIX.4.4\x019=5\x0135=0\x0134={seq}\x0110=000\x01");
        j.append_fix(FixDirection::Outbound, 1, Nanos(seq), frame.as_bytes())
            .expect("append");
    }
    j.close().expect("close");

    // Damage the 40th record of the first segment (valid records follow it).
    let reader = JournalReader::open(&journal).expect("read");
    let victim = reader
        .records()
        .filter_map(Result::ok)
        .find(|r| r.record.seq == 40)
        .map(|r| (r.segment_number, r.offset))
        .expect("record 40");
    drop(reader);
    assert_eq!(victim.0, 1, "record 40 is in the first segment");
    let segment = journal.join("seg-000000000001.rfqj");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&segment)
        .expect("segment");
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, victim.1 + 36).expect("read");
    for x in &mut b {
        *x ^= 0x5a;
    }
    f.write_all_at(&b, victim.1 + 36).expect("write");
    drop(f);
    let place = format!("seg-000000000001.rfqj offset {}", victim.1);

    // verify: non-zero, names the place.
    let out = run(
        Command::new(bin("rfq-journal", env!("CARGO_BIN_EXE_rfq-journal")))
            .arg("verify")
            .arg(&journal),
    );
    assert!(!out.status.success(), "verify passed: {}", text(&out));
    assert!(
        text(&out).contains(&place),
        "verify names {place}: {}",
        text(&out)
    );

    // The router refuses to start on it, naming the place.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = dir.join("router.toml");
    std::fs::write(
        &config,
        format!(
            "[rfq]\ndesk_sessions = [\"desk\"]\n\n[[session]]\nname = \"desk\"\n\
             role = \"acceptor\"\nlisten = \"127.0.0.1:{port}\"\nsender_comp_id = \"ROUTER\"\n\
             target_comp_id = \"DESK\"\n\n[[session]]\nname = \"dealer-a\"\n\
             role = \"acceptor\"\nlisten = \"127.0.0.1:{port}\"\nsender_comp_id = \"ROUTER\"\n\
             target_comp_id = \"DEALERA\"\n"
        ),
    )
    .expect("config");
    let dealers = dir.join("dealers.toml");
    std::fs::write(
        &dealers,
        "[[dealer]]\nname = \"Dealer A\"\nparty_id = \"DLRA\"\nsession = \"dealer-a\"\ntier = 1\n",
    )
    .expect("dealers");
    let router = |extra: &[&str]| {
        let mut c = Command::new(bin("rfq-router", env!("CARGO_BIN_EXE_rfq-router")));
        c.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--dealers")
            .arg(&dealers)
            .arg("--journal")
            .arg(&journal)
            .args(["--status-every-s", "0"])
            .args(extra);
        c
    };
    let out = run(&mut router(&[]));
    assert!(!out.status.success(), "the router started: {}", text(&out));
    assert!(
        text(&out).contains(&place) && text(&out).contains("--truncate-corrupt"),
        "the refusal names {place} and the way out: {}",
        text(&out)
    );

    // With --truncate-corrupt it cuts there and starts.
    let mut child = router(&["--truncate-corrupt"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let started = loop {
        match rx.recv_timeout(WAIT) {
            Ok(line) if line.contains("router running") => break true,
            Ok(_) => {}
            Err(_) => break false,
        }
    };
    child.kill().expect("kill");
    child.wait().expect("wait");
    let mut err = String::new();
    stderr.read_to_string(&mut err).expect("stderr");
    assert!(
        started,
        "the router did not start with --truncate-corrupt: {err}"
    );
    assert!(
        err.contains(&place),
        "the cut is reported at {place}: {err}"
    );
    let out = run(
        Command::new(bin("rfq-journal", env!("CARGO_BIN_EXE_rfq-journal")))
            .arg("verify")
            .arg(&journal),
    );
    assert!(out.status.success(), "verify after the cut: {}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
