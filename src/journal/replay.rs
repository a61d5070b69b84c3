//! Replay: re-run the engine from a journal's recorded inputs and check that it produces, byte
//! for byte, the application messages and decisions the journal recorded.
//!
//! Owns the comparison rules. Each run (from its `reload`/run-start record) gets a fresh
//! engine from the caller's factory, built at the run start's time; each `input` record is
//! fed to it with its recorded `now` (a Fix input's message comes from the session's latest
//! `fix-in` record, or inline, decoded and validated as the session did; score rows and
//! rules text come inline, an event's parts gathered until its last part: the engine is
//! given the same `Event::ScoreUpdate` rows and the same rules, parsed again). What the engine
//! produces must then appear in the journal before the next input: each application message
//! as a `fix-out` record on the same session with the same MsgType and the same body (the
//! bytes after the header fields 8, 9, 35, 34, 49, 52, 56 and before the trailer 10, which
//! are the session layer's) or as an `unsent` record; each decision as a `decision` record
//! with identical bytes. Session-level messages (0 1 2 3 4 5 A j) and resends (43=Y) are the
//! session layer's, and messages flagged as the router's own (`FIX_FLAG_NOT_ENGINE`: restart
//! notices) are not the engine's: both are skipped. The first difference stops the replay. This module reads
//! through an iterator of records and never prints; progress goes to a callback.

use std::collections::VecDeque;
use std::fmt;

use super::format::{
    decode_fix_payload, fix_payload_flags, fix_tag_value, FixDirection, RecordKind,
    FIX_FLAG_NOT_ENGINE,
};
use super::reader::{JournalRecord, ReadProblem};
use super::records::{
    decode_decision, decode_input, decode_run_start, decode_unsent, encode_engine_record,
    score_rows, sub_kind, EngineInput, FixSource, RunStart, SubKind, MAX_DECISION_PAYLOAD,
};
use crate::fix::message::Decoder;
use crate::fix::validate::Validator;
use crate::rfq::engine::{Engine, Event};
use crate::rfq::outbox::{Command, Outbox};
use crate::rfq::types::SessionId;
use crate::select::feedback::{RulesReload, ScoreUpdate};
use crate::select::rows::{journal_row_format, ScoreRow, ROW_BYTES};
use crate::select::rules::RuleSet;
use crate::select::table::VERSION as TABLE_VERSION;
use crate::select::Panel;
use crate::time::Nanos;
use std::path::Path;

/// Fields a FIX session decodes at most (the session layer's default).
const MAX_FIELDS: usize = 1024;

/// Message types the session layer writes on its own.
const SESSION_LEVEL: [&[u8]; 8] = [b"0", b"1", b"2", b"3", b"4", b"5", b"A", b"j"];

/// The first place where the replayed engine and the journal disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The record where the difference shows.
    pub seq: u64,
    pub what: String,
    /// What the journal recorded.
    pub expected: String,
    /// What the replayed engine produced.
    pub got: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {}: {}\n  expected (journal): {}\n  got (replay):       {}",
            self.seq, self.what, self.expected, self.got
        )
    }
}

/// Why a replay stopped.
#[derive(Debug)]
pub enum ReplayError {
    /// The engine did something else than the journal recorded.
    Diverged(Divergence),
    /// The journal could not be read (damage); `verify` says more.
    Read(String),
    /// A record replay needs is malformed or refers to something missing.
    BadRecord { seq: u64, why: String },
    /// Inputs before any run-start record: there is no engine to give them to.
    NoRunStart { seq: u64 },
    /// The caller's factory refused to build the engine for a run.
    Engine { seq: u64, why: String },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Diverged(d) => write!(f, "replay diverged at {d}"),
            ReplayError::Read(why) => write!(f, "cannot read the journal: {why}"),
            ReplayError::BadRecord { seq, why } => write!(f, "record {seq}: {why}"),
            ReplayError::NoRunStart { seq } => write!(
                f,
                "record {seq}: an engine input before any run-start record"
            ),
            ReplayError::Engine { seq, why } => {
                write!(f, "record {seq}: cannot build the engine: {why}")
            }
        }
    }
}

impl std::error::Error for ReplayError {}

/// What a replay checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub records: u64,
    pub runs: u64,
    pub inputs: u64,
    /// Application messages compared with their `fix-out` (or `unsent`) record.
    pub messages_checked: u64,
    pub decisions_checked: u64,
    /// Runs whose journal ends before every output of their last input was recorded (the
    /// router stopped mid-step: a crash). What was recorded matched.
    pub runs_cut_short: u64,
}

/// An application message the replayed engine sent, waiting for its record.
#[derive(Debug)]
struct Expected {
    msg_type: &'static [u8],
    body: Vec<u8>,
    /// The input record that produced it.
    input_seq: u64,
}

/// The replayed engine of one run and what it still owes the journal.
struct Run<P: Panel> {
    engine: Engine<P>,
    out: Outbox,
    /// Per session: the latest `fix-in` record (sequence number, frame).
    last_in: Vec<(u64, Vec<u8>)>,
    /// Per session: messages produced and not yet matched.
    expected: Vec<VecDeque<Expected>>,
    decisions: VecDeque<(Vec<u8>, u64)>,
    pending: usize,
    last_input_seq: u64,
    /// Score rows of an event whose input goes on in the next record.
    rows: Vec<ScoreRow>,
    /// The rules text (or reason) of a reload received so far.
    rules_text: Vec<u8>,
}

impl<P: Panel> Run<P> {
    fn new(engine: Engine<P>) -> Run<P> {
        let out = engine.outbox();
        Run {
            engine,
            out,
            last_in: Vec::new(),
            expected: Vec::new(),
            decisions: VecDeque::new(),
            pending: 0,
            last_input_seq: 0,
            rows: Vec::new(),
            rules_text: Vec::new(),
        }
    }

    fn session_slot<T: Default>(v: &mut Vec<T>, session: u16) -> &mut T {
        let i = usize::from(session);
        if v.len() <= i {
            v.resize_with(i + 1, T::default);
        }
        &mut v[i]
    }
}

/// Human form of a message: `35=X|` then the body with `|` for SOH.
fn show(msg_type: &[u8], body: &[u8]) -> String {
    let mut s = String::from("35=");
    s.push_str(&String::from_utf8_lossy(msg_type));
    s.push('|');
    s.push_str(&String::from_utf8_lossy(body).replace('\x01', "|"));
    s
}

fn show_expected(e: &Expected) -> String {
    format!(
        "{} (from input record {})",
        show(e.msg_type, &e.body),
        e.input_seq
    )
}

/// The body of a frame the session layer wrote: after the `56=` field, before `10=`.
pub fn frame_body(raw: &[u8]) -> Option<&[u8]> {
    let mut start = 0;
    let mut body_start = None;
    while start < raw.len() {
        let end = raw[start..]
            .iter()
            .position(|&b| b == 0x01)
            .map_or(raw.len(), |p| start + p);
        let field = &raw[start..end];
        if body_start.is_none() && field.starts_with(b"56=") {
            body_start = Some(end + 1);
        }
        if field.starts_with(b"10=") && end + 1 >= raw.len() {
            return body_start.map(|b| raw.get(b..start).unwrap_or(&[]));
        }
        start = end + 1;
    }
    None
}

fn describe_decision(bytes: &[u8]) -> String {
    match decode_decision(bytes) {
        Ok(d) => format!(
            "decision rfq {} protocol {} panel {:?} recommended {:?} overridden {} rule {} \
             rules {}-{:016x} scores {:?}",
            d.rfq,
            d.protocol,
            d.panel.iter().map(|x| x.0).collect::<Vec<_>>(),
            d.recommended.iter().map(|x| x.0).collect::<Vec<_>>(),
            d.overridden,
            d.rule,
            d.rules_seq,
            d.rules_hash,
            d.scores.as_slice()
        ),
        Err(e) => format!("undecodable decision ({e})"),
    }
}

fn bad(seq: u64, why: impl Into<String>) -> ReplayError {
    ReplayError::BadRecord {
        seq,
        why: why.into(),
    }
}

/// Replays `records` (as `JournalReader::records` yields them). `make_engine(start, now,
/// seq)` builds the engine for the run whose run-start record `seq` says `start`, at `now`.
/// `progress(records)` is called every 4096 records.
pub fn replay<'a, P: Panel>(
    records: impl Iterator<Item = Result<JournalRecord<'a>, ReadProblem<'a>>>,
    mut make_engine: impl FnMut(&RunStart<'_>, Nanos, u64) -> Result<Engine<P>, String>,
    mut progress: impl FnMut(u64),
) -> Result<ReplaySummary, ReplayError> {
    let validator = Validator::fix44();
    let mut decoder = Decoder::new(MAX_FIELDS);
    let mut summary = ReplaySummary::default();
    let mut run: Option<Run<P>> = None;
    let mut encoded = vec![0u8; MAX_DECISION_PAYLOAD];
    for item in records {
        let rec = item.map_err(|p| ReplayError::Read(p.to_string()))?.record;
        let seq = rec.seq;
        summary.records += 1;
        if summary.records.is_multiple_of(4096) {
            progress(summary.records);
        }
        let Some(kind) = rec.kind() else {
            return Err(bad(seq, format!("unknown record kind {}", rec.kind_code)));
        };
        match kind {
            RecordKind::ConfigReload if sub_kind(rec.payload) == Some(SubKind::RunStart as u8) => {
                let start = decode_run_start(rec.payload).map_err(|e| bad(seq, e.to_string()))?;
                if let Some(r) = run.take() {
                    finish_run(&r, &mut summary);
                }
                let engine = make_engine(&start, rec.timestamp, seq)
                    .map_err(|why| ReplayError::Engine { seq, why })?;
                run = Some(Run::new(engine));
                summary.runs += 1;
            }
            RecordKind::FixInbound => {
                let Some(r) = run.as_mut() else { continue };
                let p = decode_fix_payload(FixDirection::Inbound, rec.payload)
                    .map_err(|e| bad(seq, e.to_string()))?;
                let slot = Run::<P>::session_slot(&mut r.last_in, p.session_id);
                slot.0 = seq;
                slot.1.clear();
                slot.1.extend_from_slice(p.raw);
            }
            RecordKind::FixOutbound => {
                let Some(r) = run.as_mut() else { continue };
                let p = decode_fix_payload(FixDirection::Outbound, rec.payload)
                    .map_err(|e| bad(seq, e.to_string()))?;
                let Some(msg_type) = fix_tag_value(p.raw, b"35") else {
                    return Err(bad(seq, "fix-out frame without MsgType"));
                };
                if SESSION_LEVEL.contains(&msg_type)
                    || fix_tag_value(p.raw, b"43") == Some(b"Y")
                    || fix_payload_flags(rec.payload) & FIX_FLAG_NOT_ENGINE != 0
                {
                    continue;
                }
                let body = frame_body(p.raw)
                    .ok_or_else(|| bad(seq, "fix-out frame without 56= or 10="))?;
                let recorded = show(msg_type, body);
                let queue = Run::<P>::session_slot(&mut r.expected, p.session_id);
                let Some(e) = queue.pop_front() else {
                    return Err(ReplayError::Diverged(Divergence {
                        seq,
                        what: format!(
                            "an application message on session {} that the replayed engine did \
                             not send",
                            p.session_id
                        ),
                        expected: recorded,
                        got: "nothing".into(),
                    }));
                };
                r.pending -= 1;
                if e.msg_type != msg_type || e.body != body {
                    return Err(ReplayError::Diverged(Divergence {
                        seq,
                        what: format!("application message on session {} differs", p.session_id),
                        expected: recorded,
                        got: show_expected(&e),
                    }));
                }
                summary.messages_checked += 1;
            }
            RecordKind::Unsent => {
                let Some(r) = run.as_mut() else { continue };
                let u = decode_unsent(rec.payload).map_err(|e| bad(seq, e.to_string()))?;
                let queue = Run::<P>::session_slot(&mut r.expected, u.session);
                let recorded = format!(
                    "35={} not sent on session {} (reason {})",
                    String::from_utf8_lossy(u.msg_type),
                    u.session,
                    u.reason
                );
                match queue.pop_front() {
                    Some(e) if e.msg_type == u.msg_type => {
                        r.pending -= 1;
                        summary.messages_checked += 1;
                    }
                    other => {
                        return Err(ReplayError::Diverged(Divergence {
                            seq,
                            what: format!("an unsent message on session {}", u.session),
                            expected: recorded,
                            got: other.map_or("nothing".into(), |e| show_expected(&e)),
                        }))
                    }
                }
            }
            RecordKind::EngineDecision => {
                let Some(r) = run.as_mut() else { continue };
                match r.decisions.pop_front() {
                    Some((bytes, _)) if bytes == rec.payload => summary.decisions_checked += 1,
                    other => {
                        return Err(ReplayError::Diverged(Divergence {
                            seq,
                            what: "decision differs".into(),
                            expected: describe_decision(rec.payload),
                            got: other.map_or("no decision".into(), |(b, input)| {
                                format!("{} (from input record {input})", describe_decision(&b))
                            }),
                        }))
                    }
                }
            }
            RecordKind::EngineInput => {
                let Some(r) = run.as_mut() else {
                    return Err(ReplayError::NoRunStart { seq });
                };
                owed(r, seq)?;
                let input = decode_input(rec.payload).map_err(|e| bad(seq, e.to_string()))?;
                let now = rec.timestamp;
                summary.inputs += 1;
                r.last_input_seq = seq;
                match input {
                    EngineInput::Fix { session, message } => {
                        let frame: &[u8] = match message {
                            FixSource::Inline(f) => f,
                            FixSource::Record(want) => {
                                let slot = r.last_in.get(usize::from(session));
                                match slot {
                                    Some((have, f)) if *have == want => f,
                                    _ => {
                                        return Err(bad(
                                            seq,
                                            format!(
                                                "input names fix-in record {want}, not the latest \
                                                 of session {session}"
                                            ),
                                        ))
                                    }
                                }
                            }
                        };
                        let mut msg = decoder
                            .decode(frame)
                            .map_err(|e| bad(seq, format!("recorded message: {e:?}")))?;
                        validator
                            .validate(&mut msg)
                            .map_err(|e| bad(seq, format!("recorded message invalid: {e:?}")))?;
                        r.engine.on(
                            now,
                            Event::Fix {
                                session: SessionId(session),
                                msg: &msg,
                            },
                            &mut r.out,
                        );
                    }
                    EngineInput::SessionUp { session } => {
                        r.engine
                            .on(now, Event::SessionUp(SessionId(session)), &mut r.out);
                    }
                    EngineInput::SessionDown { session } => {
                        r.engine
                            .on(now, Event::SessionDown(SessionId(session)), &mut r.out);
                    }
                    EngineInput::Tick => {
                        r.engine.on(now, Event::Tick, &mut r.out);
                    }
                    EngineInput::ResumeNumbering { last_rfq_seq } => {
                        r.engine.resume_numbering_after(last_rfq_seq);
                        r.out.clear();
                    }
                    EngineInput::ScoreRows { more, rows, .. } => {
                        // Rows journaled by a build with another score-table layout mean
                        // something else in this one: replaying them could only mislead.
                        let other_format = rows
                            .chunks_exact(ROW_BYTES)
                            .filter_map(|c| <&[u8; ROW_BYTES]>::try_from(c).ok())
                            .map(journal_row_format)
                            .find(|&v| v != TABLE_VERSION);
                        if let Some(v) = other_format {
                            return Err(bad(
                                seq,
                                format!(
                                    "score rows in score-table format {v}, this build reads \
                                     format {TABLE_VERSION}: the journal was written by another \
                                     build; replay it with that build"
                                ),
                            ));
                        }
                        r.rows.extend(score_rows(rows));
                        if more {
                            continue;
                        }
                        let update = ScoreUpdate {
                            rows: std::mem::take(&mut r.rows),
                            ..ScoreUpdate::default()
                        };
                        r.engine.on(now, Event::ScoreUpdate(&update), &mut r.out);
                    }
                    EngineInput::RulesText {
                        refused,
                        seq: version_seq,
                        hash,
                        total_len,
                        offset,
                        part,
                    } => {
                        if offset as usize != r.rules_text.len() {
                            return Err(bad(
                                seq,
                                format!(
                                    "rules text part at byte {offset}, {} bytes received",
                                    r.rules_text.len()
                                ),
                            ));
                        }
                        r.rules_text.extend_from_slice(part);
                        if r.rules_text.len() < total_len as usize {
                            continue;
                        }
                        let text = std::mem::take(&mut r.rules_text);
                        let reload = rules_reload(refused, version_seq, hash, &text)
                            .map_err(|why| bad(seq, why))?;
                        r.engine.on(now, Event::RulesReload(reload), &mut r.out);
                    }
                    EngineInput::MarketMid { instrument, mid } => {
                        let ev = Event::MarketMid {
                            instrument,
                            mid: mid.get(),
                        };
                        r.engine.on(now, ev, &mut r.out);
                    }
                }
                collect(r, seq, &mut encoded)?;
            }
            // Records of other modules (TCA, scores, operator actions, other reloads) are not
            // engine outputs this replay checks.
            _ => {}
        }
    }
    if let Some(r) = run.take() {
        finish_run(&r, &mut summary);
    }
    progress(summary.records);
    Ok(summary)
}

/// The reload a journaled rules text stands for: the same rules (parsed again, under the
/// recorded load sequence; the text must have the recorded hash) or the same refusal.
fn rules_reload(refused: bool, seq: u64, hash: u64, text: &[u8]) -> Result<RulesReload, String> {
    let text = std::str::from_utf8(text).map_err(|_| "journaled rules text is not UTF-8")?;
    if refused {
        return Ok(RulesReload::Refused { error: text.into() });
    }
    let rules = RuleSet::parse(text, Path::new("<journaled rules>"))
        .map_err(|e| format!("journaled rules do not parse: {e}"))?
        .with_seq(seq);
    let v = rules.version();
    if v.hash != hash {
        return Err(format!(
            "journaled rules text hashes to {:016x}, the record says {hash:016x}",
            v.hash
        ));
    }
    Ok(RulesReload::Installed(Box::new(rules)))
}

/// Fails if the previous input's outputs are not all recorded before input `seq`.
fn owed<P: Panel>(r: &Run<P>, seq: u64) -> Result<(), ReplayError> {
    if r.pending > 0 {
        let e = r
            .expected
            .iter()
            .enumerate()
            .find_map(|(s, q)| q.front().map(|e| (s, e)));
        if let Some((session, e)) = e {
            return Err(ReplayError::Diverged(Divergence {
                seq,
                what: format!(
                    "the replayed engine sent a message on session {session} that the journal \
                     does not have"
                ),
                expected: "nothing".into(),
                got: show_expected(e),
            }));
        }
    }
    if let Some((b, input)) = r.decisions.front() {
        return Err(ReplayError::Diverged(Divergence {
            seq,
            what: "the replayed engine made a decision the journal does not have".into(),
            expected: "no decision".into(),
            got: format!("{} (from input record {input})", describe_decision(b)),
        }));
    }
    Ok(())
}

/// Queues what the engine produced for input `seq`.
fn collect<P: Panel>(r: &mut Run<P>, seq: u64, encoded: &mut [u8]) -> Result<(), ReplayError> {
    // Sends and journal records are what the journal holds; other commands (added by other
    // issues, e.g. TCA facts for the scoring thread) are not outputs replay checks.
    for cmd in r.out.commands() {
        if let Command::Send {
            session,
            msg_type,
            body,
        } = cmd
        {
            let body = r.out.body(body).to_vec();
            let q = Run::<P>::session_slot(&mut r.expected, session.0);
            q.push_back(Expected {
                msg_type,
                body,
                input_seq: seq,
            });
            r.pending += 1;
        } else if let Command::Journal(record) = cmd {
            let (kind, n) = encode_engine_record(record, encoded)
                .map_err(|e| bad(seq, format!("replayed record does not encode: {e}")))?;
            if kind == RecordKind::EngineDecision {
                r.decisions.push_back((encoded[..n].to_vec(), seq));
            }
        }
    }
    Ok(())
}

fn finish_run<P: Panel>(r: &Run<P>, summary: &mut ReplaySummary) {
    if r.pending > 0 || !r.decisions.is_empty() {
        summary.runs_cut_short += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_between_the_session_header_and_the_trailer() {
        let raw = b"8=FIX.4.4\x019=30\x0135=S\x0134=7\x0149=R\x0152=x\x0156=D\x01131=Q\x01133=1\x0110=123\x01";
        assert_eq!(frame_body(raw), Some(&b"131=Q\x01133=1\x01"[..]));
        let empty = b"8=FIX.4.4\x019=30\x0135=S\x0134=7\x0149=R\x0152=x\x0156=D\x0110=123\x01";
        assert_eq!(frame_body(empty), Some(&b""[..]));
        assert_eq!(frame_body(b"8=FIX.4.4\x0110=000\x01"), None);
        assert_eq!(frame_body(b"garbage"), None);
    }
}
