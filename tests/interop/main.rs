//! Interop with a FIX engine nobody here wrote: QuickFIX/C++ through its Python binding.
//!
//! Owns the Rust side of the interop runs: starting the Python QuickFIX peers in
//! `tests/interop/` (`qf_acceptor.py` as a dealer, `qf_desk.py` as a desk), waiting for them
//! through pipes and channels with generous deadlines (never sleeps), and checking their
//! verdicts. Both peers validate every message against QuickFIX's FIX 4.4 data dictionary.
//!
//! The main test puts our router between the two: a QuickFIX desk (initiator) logs on to our
//! acceptor and sends a QuoteRequest; our initiator logs on to a QuickFIX dealer (acceptor)
//! and relays it; the dealer's Quotes come back to the desk through us. Every FIX message on
//! both connections is checked by QuickFIX's own data dictionary on the QuickFIX side and by
//! our validator on ours.
//!
//! These tests need a Python with `quickfix` 1.16.0: `tests/interop/run.sh` sets one up and
//! runs them with `INTEROP_PYTHON` pointing at it (`.ci/run` runs it). The target is not part
//! of a plain `cargo test` (`test = false` in Cargo.toml); run explicitly without
//! `INTEROP_PYTHON`, every test fails and says how to run it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::Arc;

use rfq_router::config::{Config, Role};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn, RunningHost};
use rfq_router::net::NetSettings;
use rfq_router::router::RouterApp;
use rfq_router::select::StaticTiers;
use rfq_router::time::Nanos;
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
    assert!(
        p.is_some(),
        "interop: INTEROP_PYTHON is not set; run `bash tests/interop/run.sh`, which installs \
         QuickFIX/C++ (Python quickfix 1.16.0) and runs these tests"
    );
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

/// A running `qf_acceptor.py`: the process, its port, and the rest of its stdout by line.
struct Acceptor {
    _peer: Peer,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Acceptor {
    /// Waits for the `LOGON <session>` line of a session whose id contains `session`.
    fn wait_logon(&self, session: &str) {
        loop {
            let line = self
                .lines
                .recv_timeout(START_TIMEOUT)
                .unwrap_or_else(|_| panic!("no Logon from {session} within {START_TIMEOUT:?}"));
            if line.starts_with("LOGON ") && line.contains(session) {
                return;
            }
        }
    }
}

/// Starts `qf_acceptor.py` with `args` and waits until it listens.
fn start_acceptor(python: &PathBuf, args: &[&str]) -> Acceptor {
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
    Acceptor {
        _peer: peer,
        port,
        lines: rx,
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
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
    let dealer = start_acceptor(
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
        let args = strings(&[
            "--port",
            &dealer.port.to_string(),
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
        ]);
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
    let acceptor = start_acceptor(
        &py,
        &["--sender-comp-id", "ISLD", "--target-comp-id", "TW44"],
    );
    let args = strings(&[
        "--port",
        &acceptor.port.to_string(),
        "--sender-comp-id",
        "TW44",
        "--target-comp-id",
        "ISLD",
        "--timeout",
        "10",
    ]);
    let (status, out) = run_desk(&py, &args);
    assert!(!status.success(), "{out}");
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l.starts_with("FAIL") && l.contains("35=j")),
        "{out}"
    );
}

const ROUTER_TOML: &str = r#"
[rfq]
desk_sessions = ["desk"]
[rfq.protocol]
kind = "broadcast"
max_dealers = 4
response_timeout_ms = 20000
rfq_expiry_ms = 60000

[[session]]
name = "desk"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DESK"
reset_on_logon = true

[[session]]
name = "quickfix-dealer"
role = "initiator"
connect = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERQ"
reset_on_logon = true
reconnect_interval_ms = 100
reconnect_max_ms = 1000
"#;

const DEALERS_TOML: &str = r#"
[[dealer]]
name = "QuickFIX Dealer"
party_id = "DLRQ"
session = "quickfix-dealer"
tier = 1
"#;

/// Starts our router (static tiers) for `config` and `dealers_toml` on a thread; returns it
/// and the desk session's port.
fn start_router(name: &str, config: &Config, dealers_toml: &str) -> (RunningHost, u16) {
    let dealers = Dealers::parse(dealers_toml, "interop dealers.toml", config)
        .unwrap_or_else(|e| panic!("{e}"));
    let panel = StaticTiers {
        protocol: config.rfq.protocol,
    };
    let app = RouterApp::from_config(config, &dealers, panel, utc_now());
    let router = spawn(
        name,
        NetSettings::from_config(config),
        sessions_from_config(config),
        16,
        Arc::new(Validator::fix44()),
        app,
    )
    .expect("the router starts");
    let desk_port = router.listen_addrs[0]
        .expect("the desk session listens")
        .port();
    (router, desk_port)
}

fn utc_now() -> Nanos {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    Nanos(since.as_nanos() as u64)
}

/// (a) QuickFIX/C++ as the desk logs on to our acceptor and (b) our initiator logs on to
/// QuickFIX/C++ as a dealer; a two-leg QuoteRequest goes desk -> router -> dealer and each
/// leg's Quote comes back dealer -> router -> desk, on both sides of the desk's trade.
#[test]
fn quickfix_desk_to_our_router_to_quickfix_dealer() {
    let Some(py) = python() else { return };
    let dealer = start_acceptor(
        &py,
        &[
            "--mode",
            "dealer",
            "--sender-comp-id",
            "DEALERQ",
            "--target-comp-id",
            "ROUTER",
        ],
    );
    let dealer_addr: SocketAddr = format!("127.0.0.1:{}", dealer.port)
        .parse()
        .expect("loopback address");
    let mut config =
        Config::parse(ROUTER_TOML, "interop router.toml").unwrap_or_else(|e| panic!("{e}"));
    for s in &mut config.sessions {
        s.addr = match s.role {
            Role::Acceptor => "127.0.0.1:0".parse().expect("loopback address"),
            Role::Initiator => dealer_addr,
        };
    }
    let (router, desk_port) = start_router("interop-router", &config, DEALERS_TOML);
    // (b): our initiator has logged on to QuickFIX before any RFQ is sent.
    dealer.wait_logon("DEALERQ->ROUTER");

    for (side, req) in [("1", "DESK-BUY-1"), ("2", "DESK-SELL-1")] {
        let args = strings(&[
            "--port",
            &desk_port.to_string(),
            "--sender-comp-id",
            "DESK",
            "--target-comp-id",
            "ROUTER",
            "--isin",
            "XS1234567890",
            "--isin",
            "US912828XG55",
            "--side",
            side,
            "--qty",
            "2000000",
            "--quote-req-id",
            req,
        ]);
        let (status, out) = run_desk(&py, &args);
        assert!(status.success(), "desk failed:\n{out}");
        let quotes: Vec<&str> = out.lines().filter(|l| l.contains("|35=S|")).collect();
        assert_eq!(quotes.len(), 2, "{out}");
        for q in quotes {
            assert!(q.contains("|448=DLRQ|"), "the quote names its dealer: {q}");
            assert!(q.contains(&format!("|131={req}|")), "{q}");
        }
    }
    router.stop().expect("the router stops cleanly");
}

const TWO_DEALERS_ROUTER_TOML: &str = r#"
[rfq]
desk_sessions = ["desk"]
[rfq.protocol]
kind = "broadcast"
max_dealers = 4
response_timeout_ms = 20000
rfq_expiry_ms = 60000

[[session]]
name = "desk"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DESK"
reset_on_logon = true

[[session]]
name = "dealer-q"
role = "initiator"
connect = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERQ"
reset_on_logon = true
reconnect_interval_ms = 100
reconnect_max_ms = 1000

[[session]]
name = "dealer-r"
role = "initiator"
connect = "127.0.0.1:2"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERR"
reset_on_logon = true
reconnect_interval_ms = 100
reconnect_max_ms = 1000
"#;

const TWO_DEALERS_TOML: &str = r#"
[[dealer]]
name = "QuickFIX Dealer Q"
party_id = "DLRQ"
session = "dealer-q"
tier = 1

[[dealer]]
name = "QuickFIX Dealer R"
party_id = "DLRR"
session = "dealer-r"
tier = 1
hit_with = "new_order_single"
"#;

/// QuickFIX/C++ is the desk and both dealers (data-dictionary validation on everywhere): the
/// desk's QuoteRequest reaches both dealers through the router, both quotes come back, the
/// desk lifts the better offer (dealer R's, which wants NewOrderSingle) and the fill comes
/// back through the router; dealer Q, whose quote was live, is told the trade was done away.
#[test]
fn quickfix_desk_lifts_the_best_of_two_quickfix_dealers() {
    let Some(py) = python() else { return };
    let logs = std::env::temp_dir().join(format!("rfq-interop-{}", std::process::id()));
    let (q_logs, r_logs) = (logs.join("q"), logs.join("r"));
    let (q_dir, r_dir) = (
        q_logs.to_str().expect("utf-8 temp dir"),
        r_logs.to_str().expect("utf-8 temp dir"),
    );
    let dealer_q = start_acceptor(
        &py,
        &[
            "--mode",
            "dealer",
            "--sender-comp-id",
            "DEALERQ",
            "--target-comp-id",
            "ROUTER",
            "--price",
            "101.25",
            "--log-dir",
            q_dir,
        ],
    );
    let dealer_r = start_acceptor(
        &py,
        &[
            "--mode",
            "dealer",
            "--sender-comp-id",
            "DEALERR",
            "--target-comp-id",
            "ROUTER",
            "--price",
            "101.10",
            "--log-dir",
            r_dir,
        ],
    );
    let mut config = Config::parse(TWO_DEALERS_ROUTER_TOML, "interop router.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    for s in &mut config.sessions {
        let port = match s.name.as_str() {
            "dealer-q" => dealer_q.port,
            "dealer-r" => dealer_r.port,
            _ => 0,
        };
        s.addr = format!("127.0.0.1:{port}")
            .parse()
            .expect("loopback address");
    }
    let (router, desk_port) = start_router("interop-router-2", &config, TWO_DEALERS_TOML);
    dealer_q.wait_logon("DEALERQ->ROUTER");
    dealer_r.wait_logon("DEALERR->ROUTER");

    let args = strings(&[
        "--port",
        &desk_port.to_string(),
        "--isin",
        "XS1234567890",
        "--side",
        "1",
        "--qty",
        "2000000",
        "--quote-req-id",
        "DESK-TRADE-1",
        "--quotes-per-leg",
        "2",
        "--hit",
    ]);
    let (status, out) = run_desk(&py, &args);
    assert!(status.success(), "desk failed:\n{out}");
    let quotes: Vec<&str> = out.lines().filter(|l| l.contains("|35=S|")).collect();
    assert_eq!(quotes.len(), 2, "{out}");
    assert!(quotes.iter().any(|q| q.contains("|448=DLRQ|")), "{out}");
    assert!(quotes.iter().any(|q| q.contains("|448=DLRR|")), "{out}");
    let fill = out
        .lines()
        .find(|l| l.contains("|35=8|"))
        .unwrap_or_else(|| panic!("no ExecutionReport:\n{out}"));
    assert!(
        fill.contains("|39=2|") && fill.contains("|31=101.1|"),
        "{fill}"
    );
    router.stop().expect("the router stops cleanly");
    drop((dealer_q, dealer_r));
    // What each QuickFIX dealer saw and sent, from its own message log: no Reject or
    // BusinessMessageReject either way, the winner got the order, the loser "done away".
    let log_of = |dir: &std::path::Path, session: &str| {
        let path = dir.join(format!("FIX.4.4-{session}-ROUTER.messages.current.log"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .replace('\x01', "|")
    };
    let (q_log, r_log) = (log_of(&q_logs, "DEALERQ"), log_of(&r_logs, "DEALERR"));
    for log in [&q_log, &r_log] {
        assert!(
            !log.contains("|35=3|") && !log.contains("|35=j|"),
            "a reject crossed the wire:\n{log}"
        );
    }
    assert!(
        r_log.contains("|35=D|") && r_log.contains("|35=8|"),
        "{r_log}"
    );
    assert!(
        q_log.contains("|35=AJ|") && q_log.contains("|694=5|"),
        "{q_log}"
    );
    let _ = std::fs::remove_dir_all(&logs);
}
