//! Interop with a FIX engine nobody here wrote: QuickFIX/C++ through its Python binding.
//!
//! Owns the Rust side of the interop runs: starting the Python QuickFIX peers in
//! `tests/interop/` (`qf_acceptor.py` as a dealer, `qf_desk.py` as a desk), waiting for them
//! through pipes and channels with generous deadlines (never sleeps), and checking their
//! verdicts. Both peers validate every message against QuickFIX's FIX 4.4 data dictionary.
//!
//! These tests need a Python with `quickfix` 1.16.0: `tests/interop/run.sh` sets one up and
//! runs them with `INTEROP_PYTHON` pointing at it. Without `INTEROP_PYTHON` each test says
//! so on stderr and checks nothing else; `run.sh` is the way to run them (and `.ci/run` runs
//! it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long a peer may take to start listening, and a desk run to finish.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("INTEROP_PYTHON").map(PathBuf::from);
    if p.is_none() {
        eprintln!("interop: INTEROP_PYTHON is not set; run tests/interop/run.sh to run these");
    }
    p
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// A child process killed when dropped.
struct Peer {
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `qf_acceptor.py` with `args` and returns it with the port it listens on.
fn start_acceptor(python: &PathBuf, args: &[&str]) -> (Peer, u16) {
    let mut child = Command::new(python)
        .arg(script("qf_acceptor.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the interop python starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let peer = Peer { child };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let line = rx
        .recv_timeout(START_TIMEOUT)
        .expect("qf_acceptor.py prints LISTENING <port> once up");
    let port = line
        .strip_prefix("LISTENING ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("qf_acceptor.py said {line:?}, not LISTENING <port>"));
    (peer, port)
}

/// Runs `qf_desk.py` with `args` to completion: (exit status, its stdout).
fn run_desk(python: &PathBuf, args: &[String]) -> (ExitStatus, String) {
    let child = Command::new(python)
        .arg(script("qf_desk.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the interop python starts");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(Ok(out)) => (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        Ok(Err(e)) => panic!("waiting for qf_desk.py: {e}"),
        Err(_) => {
            // Kill the stuck desk by its id; the waiting thread then returns.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("qf_desk.py did not finish within {RUN_TIMEOUT:?}");
        }
    }
}

/// The Python side itself: QuickFIX desk against QuickFIX dealer, two legs, both sides.
/// If this fails, the interop peers are broken, not our stack.
#[test]
fn quickfix_desk_and_quickfix_dealer_agree() {
    let Some(py) = python() else { return };
    let (_dealer, port) = start_acceptor(
        &py,
        &[
            "--mode",
            "dealer",
            "--sender-comp-id",
            "DEALER",
            "--target-comp-id",
            "DESK",
        ],
    );
    for (side, req) in [("1", "RFQ-BUY"), ("2", "RFQ-SELL")] {
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--sender-comp-id",
            "DESK",
            "--target-comp-id",
            "DEALER",
            "--isin",
            "XS1234567890",
            "--isin",
            "US912828XG55",
            "--side",
            side,
            "--quote-req-id",
            req,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (status, out) = run_desk(&py, &args);
        assert!(status.success(), "desk failed:\n{out}");
        assert!(
            out.lines()
                .last()
                .is_some_and(|l| l.starts_with("PASS") && l.contains("2 quote(s)")),
            "{out}"
        );
    }
}

/// The desk's checks can fail: an acceptor that answers QuoteRequest with a
/// BusinessMessageReject (the acceptance-test application) makes it exit non-zero.
#[test]
fn quickfix_desk_fails_without_quotes() {
    let Some(py) = python() else { return };
    let (_acceptor, port) = start_acceptor(
        &py,
        &["--sender-comp-id", "ISLD", "--target-comp-id", "TW44"],
    );
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--sender-comp-id",
        "TW44",
        "--target-comp-id",
        "ISLD",
        "--timeout",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (status, out) = run_desk(&py, &args);
    assert!(!status.success(), "{out}");
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l.starts_with("FAIL") && l.contains("35=j")),
        "{out}"
    );
}
