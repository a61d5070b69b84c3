//! `rfq-router run` and operators' signals: SIGHUP without a rules file is noted and ignored
//! (its default action would end the router), SIGTERM stops the router cleanly.

use std::io::{BufRead, BufReader, Lines};
use std::process::{ChildStdout, Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Reads lines until one starts with `prefix`; panics (with what was read) at the end of
/// the output.
fn wait_for(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str, seen: &mut Vec<String>) {
    for line in lines.by_ref() {
        let line = line.expect("stdout line");
        let found = line.starts_with(prefix);
        seen.push(line);
        if found {
            return;
        }
    }
    panic!("no line starting {prefix:?}; output:\n{}", seen.join("\n"));
}

#[test]
fn sighup_without_a_rules_file_is_ignored_and_sigterm_stops_cleanly() {
    let (fix, http) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("rfq-run-signals-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("router.toml");
    let text = rfq_router::config::EMBEDDED_ROUTER_TOML
        .replace("127.0.0.1:9878", &format!("127.0.0.1:{fix}"))
        .replace("127.0.0.1:9880", &format!("127.0.0.1:{http}"));
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rfq-router"))
        .args(["run", "--status-every-s", "0", "--config"])
        .arg(&config)
        .arg("--journal")
        .arg(dir.join("journal"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rfq-router run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    wait_for(&mut lines, "router running", &mut seen);
    assert!(
        seen.iter()
            .any(|l| l.starts_with("rules: the compiled-in copy")),
        "{}",
        seen.join("\n")
    );
    signal(child.id(), "HUP");
    wait_for(&mut lines, "SIGHUP: no rules file to reload", &mut seen);
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the router is still running after SIGHUP"
    );
    signal(child.id(), "TERM");
    for line in lines {
        seen.push(line.expect("stdout line"));
    }
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "SIGTERM stops the router cleanly: {status:?}\n{}",
        seen.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
