//! Replay through the library on journals written by the socket-free pipeline: a restart's
//! RFQ numbering is an input replay honours, messages the router sends on its own
//! (`FIX_FLAG_NOT_ENGINE`) are not expected from the engine, and a journal whose outputs
//! the engine does not produce diverges at the right record.

use std::path::{Path, PathBuf};

use rfq_router::journal::format::fix_tag_value;
use rfq_router::journal::records::decode_decision;
use rfq_router::journal::replay::{replay, ReplayError, ReplaySummary};
use rfq_router::journal::tap::JournalTap;
use rfq_router::journal::{Journal, JournalConfig, JournalReader, RecordKind};
use rfq_router::pipeline::{engine_config, Pipeline, DESK};
use rfq_router::rfq::engine::{Engine, EngineLimits};
use rfq_router::select::{Protocol, ProtocolKind, StaticTiers};
use rfq_router::time::Nanos;

const DEALERS: usize = 3;
const T0: Nanos = Nanos(1_700_000_000_000_000_000);

fn protocol() -> Protocol {
    Protocol {
        kind: ProtocolKind::Broadcast,
        max_dealers: 3,
        ..Protocol::default()
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tap(dir: &Path) -> JournalTap {
    let (journal, _) = Journal::open(JournalConfig::new(dir)).unwrap_or_else(|e| panic!("{e}"));
    let mut tap = JournalTap::new(journal, DEALERS + 1);
    tap.run_start(T0, &[]).unwrap();
    tap
}

fn run_replay(dir: &Path) -> Result<ReplaySummary, ReplayError> {
    let reader = JournalReader::open(dir).unwrap_or_else(|e| panic!("{e}"));
    replay(
        reader.records(),
        |_, start, _| {
            Ok(Engine::new(
                engine_config(DEALERS, EngineLimits::default()),
                StaticTiers {
                    protocol: protocol(),
                },
                start,
            ))
        },
        |_| {},
    )
}

fn field(wire: &[u8], tag: &[u8]) -> String {
    // The last frame on the wire holds the value we want.
    let start = wire
        .windows(10)
        .rposition(|w| w == b"8=FIX.4.4\x01")
        .unwrap_or(0);
    String::from_utf8_lossy(fix_tag_value(&wire[start..], tag).expect("tag present")).into_owned()
}

#[test]
fn a_restart_numbering_is_an_input_replay_honours() {
    let dir = fresh_dir("resume");
    let mut p = Pipeline::with_dealers(DEALERS, protocol(), EngineLimits::default(), T0);
    p.attach_journal(tap(&dir));
    p.resume_numbering_after(41);
    p.peer_message(DESK, b"R", |e| {
        e.str(131, b"DESK-1")
            .uint(146, 1)
            .str(55, b"ACME")
            .str(48, b"US0000000001")
            .str(22, b"4")
            .char(54, b'1')
            .uint(38, 1_000_000);
    });
    p.deliver(DESK);
    let router_req = field(p.wire(1), b"131");
    assert!(router_req.starts_with("R42-"), "{router_req}");
    p.clear_wires();
    p.peer_message(1, b"S", |e| {
        e.str(131, router_req.as_bytes())
            .str(117, b"Q")
            .str(55, b"ACME")
            .str(48, b"US0000000001")
            .str(22, b"4")
            .str(133, b"101.25")
            .uint(135, 1_000_000);
    });
    p.deliver(1);
    // Time passes: the dealers that did not answer time out (a Tick).
    p.advance_to(Nanos(T0.0 + 30 * Nanos::PER_SEC));
    p.take_journal().unwrap().into_journal().close().unwrap();

    let s = run_replay(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.decisions_checked, 1);
    assert!(s.messages_checked >= 5, "{s:?}");
    let reader = JournalReader::open(&dir).unwrap();
    let decision = reader
        .records()
        .map(|r| r.unwrap().record)
        .find(|r| r.kind() == Some(RecordKind::EngineDecision))
        .expect("a decision");
    assert_eq!(decode_decision(decision.payload).unwrap().rfq, 42);
}

#[test]
fn the_routers_own_messages_are_not_expected_from_the_engine() {
    let notice = b"8=FIX.4.4\x019=60\x0135=AI\x0134=2\x0149=ROUTER\x0152=20231114-22:13:20.000\x0156=DESK\x01131=OLD-1\x01297=7\x0110=000\x01";
    // Flagged as the router's own (a restart notice): replay skips it.
    let dir = fresh_dir("flagged");
    let mut t = tap(&dir);
    t.set_router_origin(true);
    t.fix_out(T0, DESK, notice);
    t.set_router_origin(false);
    t.into_journal().close().unwrap();
    let s = run_replay(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.messages_checked, 0);

    // The same message unflagged: the engine never sent it, replay says where.
    let dir = fresh_dir("unflagged");
    let mut t = tap(&dir);
    let seq = t.fix_out(T0, DESK, notice).unwrap();
    t.into_journal().close().unwrap();
    match run_replay(&dir) {
        Err(ReplayError::Diverged(d)) => {
            assert_eq!(d.seq, seq);
            assert!(d.expected.contains("131=OLD-1"), "{d}");
            assert_eq!(d.got, "nothing");
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}

#[test]
fn inputs_before_any_run_start_are_refused() {
    let dir = fresh_dir("no-start");
    let (journal, _) = Journal::open(JournalConfig::new(&dir)).unwrap();
    let mut t = JournalTap::new(journal, 1);
    t.input(T0, &rfq_router::journal::records::EngineInput::Tick);
    t.into_journal().close().unwrap();
    assert!(matches!(
        run_replay(&dir),
        Err(ReplayError::NoRunStart { seq: 1 })
    ));
}
