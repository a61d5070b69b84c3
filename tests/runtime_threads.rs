//! The router's threads over loopback: the engine thread's name and CPU pinning
//! (`host::spawn_with`), an unusable CPU that leaves it unpinned but running, and the FIX
//! heartbeat timer firing on time under each idle strategy (block, spin, backoff).
//!
//! Tests synchronise only by blocking reads with generous timeouts; no sleeps.

mod support;

use rfq_router::config::{Config, IdleStrategy};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn_with, RunningHost, SpawnOptions};
use rfq_router::net::NetSettings;
use rfq_router::pinning::{available_cpus, Pinning};
use rfq_router::router::RouterApp;
use rfq_router::select::StaticTiers;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{now, Peer};

const ROUTER_TOML: &str = r#"
[rfq]
desk_sessions = ["desk"]

[[session]]
name = "desk"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DESK"

[[session]]
name = "dealer-a"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERA"
"#;

const DEALERS_TOML: &str = r#"
[[dealer]]
name = "Dealer A"
party_id = "DLRA"
session = "dealer-a"
tier = 1
"#;

fn start(thread: &str, idle: IdleStrategy, cpu: Option<usize>) -> RunningHost {
    let mut config =
        Config::parse(ROUTER_TOML, "test router.toml").unwrap_or_else(|e| panic!("{e}"));
    for s in &mut config.sessions {
        s.addr = "127.0.0.1:0".parse().expect("addr");
    }
    let dealers = Dealers::parse(DEALERS_TOML, "test dealers.toml", &config)
        .unwrap_or_else(|e| panic!("{e}"));
    let app = RouterApp::from_config(
        &config,
        &dealers,
        StaticTiers {
            protocol: config.rfq.protocol,
        },
        now(),
    );
    spawn_with(
        SpawnOptions {
            name: thread.to_string(),
            cpu,
        },
        NetSettings::from_limits(&config.limits, idle),
        sessions_from_config(&config),
        16,
        Arc::new(Validator::fix44()),
        app,
    )
    .expect("router starts")
}

/// Logs a desk on and proves the engine answers (a TestRequest's Heartbeat).
fn desk_round_trip(router: &RunningHost) -> Peer {
    let addr = router.listen_addrs[0].expect("desk listener");
    let mut desk = Peer::connect(addr, "DESK", "ROUTER");
    desk.logon(30);
    desk.send("1", "112=ping|");
    let hb = desk.try_recv().expect("heartbeat");
    assert_eq!(hb.msg_type(), "0", "{}", hb.0);
    assert_eq!(hb.get(112), Some("ping"), "{}", hb.0);
    desk
}

/// The kernel's view of our threads: (name, Cpus_allowed_list) per thread.
fn threads_named(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("procfs") {
        let dir = entry.expect("task entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let status = std::fs::read_to_string(dir.join("status")).expect("status");
            let allowed = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .expect("Cpus_allowed_list")
                .trim()
                .to_string();
            found.push(allowed);
        }
    }
    found
}

#[test]
fn the_engine_thread_is_named_and_pinned_to_the_configured_cpu() {
    let cpus = available_cpus();
    assert!(!cpus.is_empty(), "the affinity mask is readable");
    // The last CPU we may use: on a 2-core machine, CPU 1, as config/router.toml suggests.
    let cpu = *cpus.last().expect("a cpu");
    let router = start("rt-pinned", IdleStrategy::Block, Some(cpu));
    assert_eq!(router.pinning, Pinning::Pinned { cpu });
    assert!(router.pinning.warning("engine").is_none());
    assert_eq!(threads_named("rt-pinned"), vec![cpu.to_string()]);
    let _desk = desk_round_trip(&router);
    router.stop().expect("clean stop");
}

#[test]
fn an_unavailable_cpu_leaves_the_engine_unpinned_but_running_and_warns_once() {
    let cpu = 4096 + available_cpus().last().copied().unwrap_or(0);
    let router = start("rt-unpinned", IdleStrategy::Block, Some(cpu));
    let Pinning::Unavailable {
        cpu: asked,
        available,
    } = router.pinning
    else {
        panic!("expected Unavailable, got {:?}", router.pinning);
    };
    assert_eq!(asked, cpu);
    assert_eq!(available, available_cpus().len());
    let warning = router.pinning.warning("engine").expect("a warning");
    assert!(warning.contains(&format!("CPU {cpu}")), "{warning}");
    assert!(warning.contains("unpinned"), "{warning}");
    // Unpinned: the thread may run on every CPU the process may use.
    let allowed = threads_named("rt-unpinned");
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    let _desk = desk_round_trip(&router);
    router.stop().expect("clean stop");
}

#[test]
fn no_cpu_configured_means_not_asked() {
    let router = start("rt-free", IdleStrategy::Block, None);
    assert_eq!(router.pinning, Pinning::NotAsked);
    assert!(router.pinning.warning("engine").is_none());
    router.stop().expect("clean stop");
}

/// Logs on with HeartBtInt=1 and waits (blocking read) for the router's own Heartbeat: a
/// timer-driven message. It must not come early, and must come within a generous bound.
fn heartbeat_fires_on_time(thread: &str, idle: IdleStrategy) {
    let router = start(thread, idle, None);
    let addr = router.listen_addrs[0].expect("desk listener");
    let mut desk = Peer::connect(addr, "DESK", "ROUTER");
    desk.send("A", "98=0|108=1|");
    let logon_ack = desk.try_recv().expect("logon answer");
    assert_eq!(logon_ack.msg_type(), "A", "{}", logon_ack.0);
    let acked = Instant::now();
    // Nothing else is sent, so the next message is the router's heartbeat (read timeout 10 s).
    let hb = desk.try_recv().expect("heartbeat before the read timeout");
    let waited = acked.elapsed();
    assert_eq!(hb.msg_type(), "0", "{}", hb.0);
    assert_eq!(hb.get(112), None, "an unsolicited heartbeat: {}", hb.0);
    // The router sent its Logon a little before we read it: allow that much earliness.
    assert!(
        waited >= Duration::from_millis(900),
        "{idle:?}: heartbeat after {waited:?}, before HeartBtInt"
    );
    assert!(
        waited <= Duration::from_secs(5),
        "{idle:?}: heartbeat after {waited:?}"
    );
    router.stop().expect("clean stop");
}

#[test]
fn heartbeat_timer_fires_on_time_when_blocking() {
    heartbeat_fires_on_time("rt-hb-block", IdleStrategy::Block);
}

#[test]
fn heartbeat_timer_fires_on_time_when_spinning() {
    heartbeat_fires_on_time("rt-hb-spin", IdleStrategy::Spin);
}

#[test]
fn heartbeat_timer_fires_on_time_under_backoff() {
    heartbeat_fires_on_time("rt-hb-backoff", IdleStrategy::Backoff);
}
