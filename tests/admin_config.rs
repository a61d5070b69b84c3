//! The `[admin]` table: defaults (loopback, bounded), `listen = ""` turns the admin thread
//! off, bad values are refused with file:line:column; and the admin thread is started
//! through `pinning::spawn_pinned`, so its placement is recorded for `rfq-router run` to
//! print. Owns nothing else.

use rfq_router::admin::{self, AdminContext};
use rfq_router::config::{AdminSettings, Config};
use rfq_router::metrics::snapshot_channel;
use rfq_router::pinning::{started_threads, Pinning};

const ORIGIN: &str = "test.toml";

#[test]
fn defaults_are_loopback_and_bounded() {
    let c = Config::parse("", ORIGIN).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.admin, AdminSettings::default());
    let listen = c.admin.listen.expect("on by default");
    assert!(listen.ip().is_loopback(), "{listen}");
    assert_eq!(listen.port(), 9880);
    let shipped = Config::embedded().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(shipped.admin.listen, Some(listen));
}

#[test]
fn empty_listen_turns_admin_off_and_keys_are_read() {
    let text = "[admin]\nlisten = \"\"\nmax_connections = 3\nmax_request_bytes = 4096\n\
                request_timeout_ms = 250\n";
    let c = Config::parse(text, ORIGIN).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.admin,
        AdminSettings {
            listen: None,
            max_connections: 3,
            max_request_bytes: 4096,
            request_timeout_ms: 250,
        }
    );
}

#[test]
fn bad_admin_values_are_refused_with_line_and_column() {
    for (text, line, column, words) in [
        ("[admin]\nlisten = \"localhost:80\"\n", 2, 10, "bad address"),
        ("[admin]\nlisten = \"127.0.0.1:0\"\n", 2, 10, "port 0"),
        (
            "[admin]\n\nmax_connections = 0\n",
            3,
            19,
            "greater than zero",
        ),
        ("[admin]\nmax_request_bytes = 10\n", 2, 21, "outside"),
        (
            "[admin]\nrequest_timeout_ms = 999999999999\n",
            2,
            22,
            "outside",
        ),
        ("[admin]\nport = 9880\n", 2, 1, "unknown field"),
    ] {
        let e = Config::parse(text, ORIGIN).expect_err(text);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{ORIGIN}:{line}:{column}:")),
            "{text:?}: {msg}"
        );
        assert!(msg.contains(words), "{text:?}: {msg}");
    }
}

#[test]
fn the_admin_thread_is_named_pinned_and_recorded() {
    let (snapshots, _server) = snapshot_channel(1, None);
    let running = admin::spawn(
        "127.0.0.1:0".parse().unwrap(),
        &AdminSettings::default(),
        Some(0),
        AdminContext {
            snapshots,
            net: None,
            journal: None,
            recommender: None,
        },
    )
    .unwrap();
    // CPU 0 exists everywhere this runs, unless a cpuset excludes it: either way the thread
    // runs and says which.
    assert!(
        matches!(
            running.pinning,
            Pinning::Pinned { cpu: 0 } | Pinning::Unavailable { cpu: 0, .. }
        ),
        "{:?}",
        running.pinning
    );
    let recorded = started_threads();
    assert!(
        recorded
            .iter()
            .any(|(name, p)| name == "admin" && *p == running.pinning),
        "{recorded:?}"
    );
    running.stop().expect("admin thread stops cleanly");
}

/// A free loopback port (bound, then released for the router to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn run_prints_where_each_thread_runs_and_the_admin_address() {
    use std::io::BufRead;
    let (fix, http) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("rfq-admin-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("router.toml");
    let text = rfq_router::config::EMBEDDED_ROUTER_TOML
        .replace("127.0.0.1:9878", &format!("127.0.0.1:{fix}"))
        .replace("127.0.0.1:9880", &format!("127.0.0.1:{http}"))
        .replace("# admin_cpu = 0", "admin_cpu = 0");
    std::fs::write(&config, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rfq-router"))
        .args(["run", "--status-every-s", "0", "--config"])
        .arg(&config)
        .arg("--journal")
        .arg(dir.join("journal"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start rfq-router run");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("stdout line");
        let done = line.starts_with("router running");
        lines.push(line);
        if done {
            break;
        }
    }
    let health = rfq_router::admin::get(
        format!("127.0.0.1:{http}").parse().unwrap(),
        "/healthz",
        std::time::Duration::from_secs(20),
    );
    // The journal thread times its own lag: scrape until the run's first record (written at
    // start) shows up in it (bounded).
    let mut scraped = None;
    for _ in 0..200 {
        let got = rfq_router::admin::get(
            format!("127.0.0.1:{http}").parse().unwrap(),
            "/metrics",
            std::time::Duration::from_secs(20),
        );
        let written = got.as_ref().ok().and_then(|(_, body)| {
            let samples = rfq_router::metrics::exposition::parse(body).ok()?;
            rfq_router::metrics::exposition::find(
                &samples,
                "rfq_router_stage_seconds_count",
                &[("stage", "journal_lag")],
            )
        });
        scraped = Some(got);
        if written.is_some_and(|n| n >= 1.0) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let all = lines.join("\n");
    assert!(
        lines.iter().any(|l| l.starts_with("thread engine: ")),
        "{all}"
    );
    let admin = lines
        .iter()
        .find(|l| l.starts_with("thread admin: "))
        .unwrap_or_else(|| panic!("no admin thread line:\n{all}"));
    assert!(
        admin.contains("CPU 0"),
        "admin_cpu = 0 is reported: {admin}"
    );
    assert!(
        all.contains(&format!("admin: http://127.0.0.1:{http}/metrics")),
        "{all}"
    );
    let (status, body) = health.expect("GET /healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    // The running router's /metrics parses and carries the journal's counters (its first
    // record, the run's files, is appended at start).
    let (status, body) = scraped.expect("scraped").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    let samples =
        rfq_router::metrics::exposition::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let appended = rfq_router::metrics::exposition::find(
        &samples,
        "rfq_router_journal_appended_records_total",
        &[],
    );
    assert!(appended.is_some_and(|n| n >= 1.0), "{appended:?}");
    let lagged = rfq_router::metrics::exposition::find(
        &samples,
        "rfq_router_stage_seconds_count",
        &[("stage", "journal_lag")],
    );
    assert!(lagged.is_some_and(|n| n >= 1.0), "journal lag: {lagged:?}");
}
