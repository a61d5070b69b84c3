//! The router journals what it does: over loopback TCP, a desk and dealers as FIX peers, the
//! real host, sessions and engine (rules-and-scores selection, as `rfq-router run` builds it),
//! with a journal attached. Checks the journal holds the desk's R, the dealers' R, the quotes,
//! the hit and the fills as `fix-in`/`fix-out`, the decision with its rationale and the
//! engine inputs; that `rfq-journal verify` accepts it and `rfq-journal replay` reproduces it
//! (and reports a tampered output); and that in `fsync` durability an ExecutionReport reaches
//! the desk only once its record is durable.

mod support;

use rfq_router::config::{Config, Role};
use rfq_router::dealers::Dealers;
use rfq_router::fix::validate::Validator;
use rfq_router::host::{sessions_from_config, spawn_journaled, RunningHost, SpawnOptions};
use rfq_router::journal::format::{
    decode_fix_payload, fix_tag_value, record_crc, segment_file_name,
};
use rfq_router::journal::records::{decode_decision, decode_input, describe};
use rfq_router::journal::run_files::RunPaths;
use rfq_router::journal::tap::{journal_config, JournalTap};
use rfq_router::journal::{DrainPause, Journal, JournalReader, RecordKind};
use rfq_router::net::NetSettings;
use rfq_router::router::RouterApp;
use rfq_router::select::rules::RuleSet;
use rfq_router::select::scored::{load_instruments, AnyScores, NeutralScores, ScoredPanel};
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use support::{now, Peer};

const ROUTER_TOML: &str = r#"
[rfq]
desk_sessions = ["desk"]

[journal]
durability = "DURABILITY"
group_commit_us = 500

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

[[session]]
name = "dealer-b"
role = "initiator"
connect = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERB"
reconnect_interval_ms = 50
reconnect_max_ms = 200

[[session]]
name = "dealer-c"
role = "acceptor"
listen = "127.0.0.1:1"
sender_comp_id = "ROUTER"
target_comp_id = "DEALERC"
"#;

const DEALERS_TOML: &str = r#"
[[dealer]]
name = "Dealer A"
party_id = "DLRA"
session = "dealer-a"
tier = 1
[[dealer]]
name = "Dealer B"
party_id = "DLRB"
session = "dealer-b"
tier = 1
hit_with = "new_order_single"
[[dealer]]
name = "Dealer C"
party_id = "DLRC"
session = "dealer-c"
tier = 2
"#;

/// No rules: the default action decides, with the protocol under test.
const RULES_TOML: &str = r#"
[default.panel]
top = 3

[default.protocol]
kind = "PROTOCOL"
max_dealers = 3
response_timeout_ms = 300
stagger_gap_ms = 150
rfq_expiry_ms = 60000
"#;

/// A bond of the embedded security master.
const ISIN: &str = "US99A1NW1035";

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("router-journal-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

struct World {
    router: RunningHost,
    desk: Peer,
    a: Peer,
    b: Peer,
    c: Peer,
    journal_dir: PathBuf,
    pause: Option<DrainPause>,
}

fn start(name: &str, protocol: &str, durability: &str, paused: bool) -> World {
    let dir = fresh_dir(name);
    let config_path = dir.join("router.toml");
    let dealers_path = dir.join("dealers.toml");
    let rules_path = dir.join("rules.toml");
    fs::write(&config_path, ROUTER_TOML.replace("DURABILITY", durability)).unwrap();
    fs::write(&dealers_path, DEALERS_TOML).unwrap();
    fs::write(&rules_path, RULES_TOML.replace("PROTOCOL", protocol)).unwrap();
    let mut config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let dealers = Dealers::load(&dealers_path, &config).unwrap_or_else(|e| panic!("{e}"));
    // Listen on any free port; dealer B listens and the router dials it. The journal
    // records the files; replay uses the same files, so addresses do not matter to it.
    let b_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    for s in &mut config.sessions {
        s.addr = match s.role {
            Role::Acceptor => "127.0.0.1:0".parse().unwrap(),
            Role::Initiator => b_listener.local_addr().unwrap(),
        };
    }
    let rules = RuleSet::load(&rules_path).unwrap_or_else(|e| panic!("{e}"));
    let master = load_instruments(None).unwrap_or_else(|e| panic!("{e}"));
    let panel = ScoredPanel::new(rules, master, &dealers, AnyScores::Neutral(NeutralScores));
    let files = RunPaths {
        config: Some(config_path),
        dealers: Some(dealers_path),
        rules: Some(rules_path),
        instruments: None,
        scores: None,
    };
    let journal_dir = dir.join("journal");
    let jc = journal_config(&config.journal, Some(journal_dir.clone()), 65_536, None);
    let (journal, _) = Journal::open(jc).unwrap_or_else(|e| panic!("{e}"));
    let pause = paused.then(|| journal.pause_drain());
    let mut tap = JournalTap::new(journal, config.sessions.len());
    let t0 = now();
    let identities = files.identify().unwrap();
    let entries: Vec<_> = identities.iter().map(|f| f.as_run_file()).collect();
    tap.run_start(t0, &entries).unwrap();
    let app = RouterApp::from_config(&config, &dealers, panel, t0);
    let router = spawn_journaled(
        SpawnOptions::named("router-journal"),
        NetSettings::from_config(&config),
        sessions_from_config(&config),
        16,
        Arc::new(Validator::fix44()),
        app,
        Some(tap),
    )
    .unwrap();
    let addr: SocketAddr = router.listen_addrs[0].unwrap();
    let mut b = Peer::accept(&b_listener, "DEALERB", "ROUTER");
    b.recv_type("A");
    b.answer_logon_with_reset(30);
    let mut desk = Peer::connect(addr, "DESK", "ROUTER");
    desk.logon(30);
    let mut a = Peer::connect(addr, "DEALERA", "ROUTER");
    a.logon(30);
    let mut c = Peer::connect(addr, "DEALERC", "ROUTER");
    c.logon(30);
    // A TestRequest round trip on each session proves its logon was processed router-side
    // (with a paused fsync journal too: only ExecutionReports wait for durability).
    for p in [&mut desk, &mut a, &mut b, &mut c] {
        p.send("1", "112=ready|");
        let hb = p.try_recv().expect("heartbeat");
        assert_eq!(hb.get(112), Some("ready"), "{}", hb.0);
    }
    World {
        router,
        desk,
        a,
        b,
        c,
        journal_dir,
        pause,
    }
}

fn rfq(id: &str) -> String {
    format!("131={id}|146=1|55=NWU 4.25 2031|48={ISIN}|22=4|54=1|38=2000000|")
}

fn quote(dealer: &mut Peer, req: &str, id: &str, px: &str) {
    dealer.send(
        "S",
        &format!("131={req}|117={id}|55=NWU 4.25 2031|48={ISIN}|22=4|133={px}|135=2000000|"),
    );
}

/// Broadcast to A, B, C; A and B quote, C declines; the desk lifts B with a
/// NewOrderSingle; B fills; the desk gets the fill and A hears it was done away.
fn broadcast_flow(w: &mut World) {
    w.desk.send("R", &rfq("DESK-1"));
    w.desk.recv_type("AI");
    let ra = w.a.recv_type("R");
    let rb = w.b.recv_type("R");
    let rc = w.c.recv_type("R");
    quote(&mut w.a, ra.get(131).unwrap(), "A1", "101.25");
    quote(&mut w.b, rb.get(131).unwrap(), "B1", "101.10");
    w.c.send(
        "AG",
        &format!(
            "131={}|658=10|146=1|55=NWU 4.25 2031|",
            rc.get(131).unwrap()
        ),
    );
    let q1 = w.desk.recv_type("S");
    let q2 = w.desk.recv_type("S");
    let best = [&q1, &q2]
        .into_iter()
        .find(|q| q.get(448) == Some("DLRB"))
        .expect("B's quote")
        .clone();
    let qid = best.get(117).unwrap().to_string();
    w.desk.send(
        "D",
        &format!("11=ORD-1|117={qid}|55=NWU 4.25 2031|54=1|60=20250101-00:00:00|38=2000000|40=D|44=101.10|"),
    );
    let order = w.b.recv_type("D");
    let cl = order.get(11).unwrap().to_string();
    w.b.send(
        "8",
        &format!("37=B-O1|17=B-E1|150=F|39=2|11={cl}|55=NWU 4.25 2031|54=1|31=101.10|32=2000000|151=0|14=2000000|6=101.10|"),
    );
}

fn stop(w: World) -> PathBuf {
    let World {
        router,
        journal_dir,
        pause,
        ..
    } = w;
    drop(pause);
    router.stop().expect("router stops and closes its journal");
    journal_dir
}

/// (kind, session, MsgType) of every FIX record, and the decoded other records.
struct Seen {
    fix: Vec<(RecordKind, u16, String)>,
    decisions: Vec<rfq_router::journal::records::Decision>,
    inputs: Vec<String>,
    run_starts: usize,
}

fn read(dir: &Path) -> Seen {
    let reader = JournalReader::open(dir).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Seen {
        fix: Vec::new(),
        decisions: Vec::new(),
        inputs: Vec::new(),
        run_starts: 0,
    };
    for r in reader.records() {
        let r = r.unwrap_or_else(|e| panic!("{e}")).record;
        match r.kind().expect("known kind") {
            k @ (RecordKind::FixInbound | RecordKind::FixOutbound) => {
                let dir = k.fix_direction().unwrap();
                let p = decode_fix_payload(dir, r.payload).unwrap();
                let t = String::from_utf8_lossy(fix_tag_value(p.raw, b"35").unwrap());
                seen.fix.push((k, p.session_id, t.into_owned()));
            }
            RecordKind::EngineDecision => seen.decisions.push(decode_decision(r.payload).unwrap()),
            RecordKind::EngineInput => {
                decode_input(r.payload).unwrap();
                // "fix session=0 message=#12", "session-up session=1", "tick", ...
                seen.inputs
                    .push(describe(RecordKind::EngineInput, r.payload).unwrap())
            }
            RecordKind::ConfigReload => seen.run_starts += 1,
            other => panic!("unexpected record kind {other}"),
        }
    }
    seen
}

fn has(seen: &Seen, kind: RecordKind, session: u16, msg_type: &str) -> bool {
    seen.fix
        .iter()
        .any(|(k, s, t)| *k == kind && *s == session && t == msg_type)
}

fn rfq_journal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rfq-journal"))
        .args(args)
        .output()
        .expect("run rfq-journal")
}

#[test]
fn the_router_journals_every_message_decision_and_input() {
    let mut w = start("broadcast", "broadcast", "os", false);
    broadcast_flow(&mut w);
    let fill = w.desk.recv_type("8");
    assert_eq!(fill.get(39), Some("2"));
    w.a.recv_type("AJ");
    let dir = stop(w);
    let seen = read(&dir);
    let (i, o) = (RecordKind::FixInbound, RecordKind::FixOutbound);
    // Sessions: 0 desk, 1 dealer A, 2 dealer B, 3 dealer C.
    for (kind, session, msg_type) in [
        (i, 0, "A"),
        (o, 0, "A"),
        (i, 0, "R"),
        (o, 1, "R"),
        (o, 2, "R"),
        (o, 3, "R"),
        (o, 0, "AI"),
        (i, 1, "S"),
        (i, 2, "S"),
        (i, 3, "AG"),
        (o, 0, "S"),
        (i, 0, "D"),
        (o, 2, "D"),
        (i, 2, "8"),
        (o, 0, "8"),
        (o, 1, "AJ"),
        (i, 1, "1"),
        (o, 1, "0"),
    ] {
        assert!(
            has(&seen, kind, session, msg_type),
            "no {kind} 35={msg_type} on session {session} in {:?}",
            seen.fix
        );
    }
    assert_eq!(seen.run_starts, 1);
    assert_eq!(seen.decisions.len(), 1, "one RFQ, one decision");
    let d = &seen.decisions[0];
    assert_eq!(d.panel.len(), 3);
    assert!(!d.overridden);
    assert_eq!(
        d.scores.len(),
        d.recommended.len(),
        "composite scores journaled"
    );
    assert_ne!(d.rules_hash, 0, "rules version journaled");
    for session in 0..4 {
        let up = format!("session-up session={session}");
        assert!(seen.inputs.contains(&up), "{up} in {:?}", seen.inputs);
    }
    // desk R, two quotes, a decline, the order and the fill reach the engine by reference.
    let fix_inputs = seen
        .inputs
        .iter()
        .filter(|x| x.starts_with("fix session=") && x.contains("message=#"))
        .count();
    assert!(fix_inputs >= 6, "{:?}", seen.inputs);

    let verify = rfq_journal(&["verify", dir.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    replay_ok(&dir);

    // One recorded output changed (B's price as the desk saw it), with a valid CRC:
    // verify still passes, replay names that record and fails.
    let tampered = tamper(&dir, 0, "S", b"133=101.10", b"133=101.11");
    let o = rfq_journal(&["replay", dir.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("record {tampered}:")) && out.contains("133=101.11"),
        "replay did not name record {tampered}: {out}"
    );
}

/// `rfq-journal replay DIR` succeeds and says what it compared.
fn replay_ok(dir: &Path) -> String {
    let o = rfq_journal(&["replay", dir.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "replay failed: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with("replay OK"), "{out}");
    out
}

/// Rewrites `from` to `to` (same length) in the first `fix-out` record of `msg_type` on
/// `session` containing it, recomputing the record's CRC. Returns the record's sequence.
fn tamper(dir: &Path, session: u16, msg_type: &str, from: &[u8], to: &[u8]) -> u64 {
    assert_eq!(from.len(), to.len());
    let reader = JournalReader::open(dir).unwrap();
    let (seq, segment, offset, len) = reader
        .records()
        .map(|r| r.unwrap())
        .find_map(|r| {
            let v = r.record;
            if v.kind() != Some(RecordKind::FixOutbound) {
                return None;
            }
            let p =
                decode_fix_payload(rfq_router::journal::FixDirection::Outbound, v.payload).ok()?;
            let t = fix_tag_value(p.raw, b"35")?;
            let hit = p.session_id == session
                && t == msg_type.as_bytes()
                && p.raw.windows(from.len()).any(|w| w == from);
            hit.then_some((
                v.seq,
                r.segment_number,
                r.offset as usize,
                32 + v.payload.len(),
            ))
        })
        .expect("record to tamper with");
    drop(reader);
    let path = dir.join(segment_file_name(segment));
    let mut bytes = fs::read(&path).unwrap();
    let rec = &mut bytes[offset..offset + len];
    let at = rec.windows(from.len()).position(|w| w == from).unwrap();
    rec[at..at + to.len()].copy_from_slice(to);
    let crc = record_crc(rec);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    seq
}

#[test]
fn whisper_with_timeouts_replays_exactly() {
    // A never answers: its 300 ms response timeout moves the RFQ on to B (a timer fired by a
    // Tick); B declines; C is asked and quotes; the desk sees C's quote.
    let mut w = start("whisper", "whisper", "os", false);
    w.desk.send("R", &rfq("DESK-W"));
    w.desk.recv_type("AI");
    w.a.recv_type("R");
    let rb = w.b.recv_type("R");
    w.b.send(
        "AG",
        &format!(
            "131={}|658=10|146=1|55=NWU 4.25 2031|",
            rb.get(131).unwrap()
        ),
    );
    let rc = w.c.recv_type("R");
    quote(&mut w.c, rc.get(131).unwrap(), "C1", "100.90");
    let q = w.desk.recv_type("S");
    assert_eq!(q.get(448), Some("DLRC"));
    // A second request, then the desk cancels it while dealers are being asked; then
    // dealer C logs out (a SessionDown for the engine, journaled before its Logout reply).
    w.desk.send("R", &rfq("DESK-W2"));
    w.desk.recv_type("AI");
    w.a.recv_type("R");
    w.desk.send("Z", "131=DESK-W2|117=*|298=1|");
    let cancelled = w.desk.recv_type("AI");
    assert_eq!(cancelled.get(297), Some("4"), "{}", cancelled.0);
    w.c.send("5", "");
    w.c.recv_type("5");
    let dir = stop(w);
    let seen = read(&dir);
    assert_eq!(seen.decisions.len(), 2);
    assert!(
        seen.inputs.iter().any(|x| x == "session-down session=3"),
        "{:?}",
        seen.inputs
    );
    assert!(
        seen.inputs.iter().any(|x| x == "tick"),
        "the timeout came from a Tick: {:?}",
        seen.inputs
    );
    let out = replay_ok(&dir);
    assert!(out.contains("2 decisions"), "{out}");
}

#[test]
fn replay_refuses_files_that_differ_from_the_run() {
    let mut w = start("mismatch", "broadcast", "os", false);
    w.desk.send("R", &rfq("DESK-M"));
    w.desk.recv_type("AI");
    let dir = stop(w);
    replay_ok(&dir);
    let rules = dir.parent().unwrap().join("rules.toml");
    let mut text = fs::read_to_string(&rules).unwrap();
    text.push_str("# edited after the run\n");
    fs::write(&rules, text).unwrap();
    let o = rfq_journal(&["replay", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rules") && err.contains("--allow-mismatch"),
        "{err}"
    );
}

#[test]
fn in_fsync_mode_the_desk_gets_its_execution_report_only_once_durable() {
    let mut w = start("fsync", "broadcast", "fsync", true);
    broadcast_flow(&mut w);
    // Dealer A hears "done away" in the same engine step that produced the desk's fill; a
    // TestRequest round trip on A then proves the router has finished that step and later
    // loop cycles: had the fill been written, it would be in the desk's socket by now.
    w.a.recv_type("AJ");
    w.a.send("1", "112=after-fill|");
    let hb = w.a.try_recv().expect("heartbeat");
    assert_eq!(hb.get(112), Some("after-fill"), "{}", hb.0);
    w.desk.set_nonblocking(true);
    let early = w.desk.try_recv_nonblocking();
    assert!(
        early.is_none(),
        "the desk got {early:?} while the journal was paused (nothing durable)"
    );
    w.desk.set_nonblocking(false);
    // Let the journal thread write and sync: the fill is released.
    drop(w.pause.take());
    let fill = w.desk.recv_type("8");
    assert_eq!(fill.get(39), Some("2"));
    let dir = stop(w);
    let seen = read(&dir);
    assert!(has(&seen, RecordKind::FixOutbound, 0, "8"));
}
