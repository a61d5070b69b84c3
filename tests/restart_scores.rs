//! `rfq-router run` on a journal checks its score tables against the journal's score rows
//! at start: the first run journals the table it starts from; the table then changes behind
//! the journal's back (as when the scoring thread wrote rows whose report never reached the
//! engine before a crash); the second run logs the differing rows and rebuilds them from the
//! journal (`[journal] scores_on_restart = "rebuild"`, the default); the third finds the
//! table verified.

use rfq_router::config::Config;
use rfq_router::journal::score_check::{journal_rows, verify};
use rfq_router::rfq::types::DealerId;
use rfq_router::select::model::Observation;
use rfq_router::select::table::{ScoreReader, ScoreWriter, TableParams};
use rfq_router::select::tca::{apply, TcaOutput, TcaUpdate};
use rfq_router::time::Nanos;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn observe(w: &mut ScoreWriter, config: &Config, dealer: u16, obs: Observation, at: u64) {
    let u = TcaUpdate {
        rfq: 1,
        dealer: DealerId(dealer),
        keys: None,
        obs,
        at: Nanos(at),
    };
    apply(w, &config.scoring.model, &TcaOutput::Update(u)).unwrap();
}

/// Runs the router until it is up, stops it with SIGTERM; returns its stdout and stderr.
fn run_once(config: &Path, journal: &Path, scores: &Path) -> (Vec<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rfq-router"))
        .args(["run", "--status-every-s", "0", "--config"])
        .arg(config)
        .arg("--journal")
        .arg(journal)
        .arg("--scores")
        .arg(scores)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rfq-router run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("stdout line");
        let up = line.starts_with("router running");
        seen.push(line);
        if up {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    for line in lines {
        seen.push(line.expect("stdout line"));
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{:?}\n{}\n{stderr}",
        out.status,
        seen.join("\n")
    );
    (seen, stderr)
}

fn has(lines: &[String], prefix: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix))
}

#[test]
fn restart_verifies_the_score_tables_and_rebuilds_differing_rows_from_the_journal() {
    let (fix, http) = (free_port(), free_port());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("restart-scores-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("router.toml");
    let text = rfq_router::config::EMBEDDED_ROUTER_TOML
        .replace("127.0.0.1:9878", &format!("127.0.0.1:{fix}"))
        .replace("127.0.0.1:9880", &format!("127.0.0.1:{http}"));
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::parse(&text, "router.toml").unwrap();
    let sc = &config.scoring;
    let params = TableParams::new(sc.dealers_capacity, sc.segments_per_dealer, &sc.model);
    let scores = dir.join("t.scores");
    let journal = dir.join("journal");
    let t0 = 1_700_000_000 * Nanos::PER_SEC;
    {
        let mut w = ScoreWriter::create(&scores, params, Nanos(t0)).unwrap();
        observe(&mut w, &config, 0, Observation::RfqSent, t0);
        observe(&mut w, &config, 1, Observation::RfqSent, t0);
    }

    // First run: the table is journaled as the rows the engine starts from.
    let (out, _) = run_once(&config_path, &journal, &scores);
    assert!(
        has(&out, "score tables: 3 rows loaded into the engine"),
        "{}",
        out.join("\n")
    );

    // Behind the journal's back: dealer 1 (and the pooled row) move on.
    {
        let mut w = ScoreWriter::open(&scores, params).unwrap();
        observe(
            &mut w,
            &config,
            1,
            Observation::Declined { response_s: 1.0 },
            t0 + 5,
        );
    }
    let rows = journal_rows(&journal).unwrap();
    let check = verify(&rows, &ScoreReader::open_read_only(&scores).unwrap());
    assert_eq!(check.differing_total, 2, "{check:?}");

    // Second run: the differing rows are logged and rebuilt from the journal.
    let (out, err) = run_once(&config_path, &journal, &scores);
    assert!(
        err.contains("score tables differ from the journal in 2 of 3 rows")
            && err.contains("dealer 1 segment")
            && err.contains("pooled segment"),
        "{err}"
    );
    assert!(
        has(&out, "score tables: 2 rows rebuilt from the journal"),
        "{}\n{err}",
        out.join("\n")
    );
    let check = verify(&rows, &ScoreReader::open_read_only(&scores).unwrap());
    assert!(check.is_match(), "{check:?}");

    // Third run: verified.
    let (out, _) = run_once(&config_path, &journal, &scores);
    assert!(
        has(
            &out,
            "score tables: verified against the journal: 3 rows match"
        ),
        "{}",
        out.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
