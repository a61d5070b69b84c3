//! What a restarted router owes its counterparties: the RFQs the journal shows open when the
//! previous run stopped, and the QuoteStatusReports that tell their desks they expired.
//!
//! Owns the reading of the journal's FIX records for RFQ state (the router's own identifiers,
//! `R<seq>-<slot>` and its `O`/`E` siblings, name an RFQ in every message about it), the
//! restart policy and the notices it produces. It decides from the frames alone, so it does
//! not depend on how decisions are encoded; it never writes the journal, never sends anything
//! itself (the router sends the notices when a desk session logs on) and keeps a bounded
//! number of RFQs (`MAX_OPEN_RFQS`; past it they are counted, not kept).
//!
//! The rules, in journal order, per RFQ:
//! - open: a QuoteStatusReport (AI) to a desk with QuoteStatus 0 (accepted) and QuoteID
//!   `R<seq>-<slot>`;
//! - ended: an AI to the desk for it with 4 (cancelled), 7 (expired) or 5 (rejected, unless
//!   its Text says a cancel came too late), an ExecutionReport to the desk with OrdStatus 2,
//!   or 3/4 with CumQty > 0; or the desk session logging on again (the engine ends a desk's
//!   open RFQs when its session drops), unless a hit was with a dealer;
//! - executing: a hit sent to a dealer (QuoteResponse 694=1 or NewOrderSingle, naming
//!   `E<seq>-<slot>`), until the dealer's refusal is relayed to the desk.

use std::collections::BTreeMap;
use std::path::Path;

use super::format::RecordKind;
use super::reader::JournalReader;
use super::store::{JournalIndex, JournalStore, JournalStoreLimits, SessionResume, SharedIndex};
use super::writer::MetricsHandle;
use super::JournalError;
use crate::fix::SOH;
use crate::time::Nanos;

/// Most open RFQs carried across a restart; more are counted in `RestartScan::dropped`.
pub const MAX_OPEN_RFQS: usize = 65_536;

/// What happens to RFQs open at a restart (`[journal] open_rfqs_on_restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Each is expired: its desk gets QuoteStatusReport 297=7 when it logs on again; dealers
    /// are told nothing (their requests carry ExpireTime, and a late quote for an RFQ the
    /// engine does not know is answered with a QuoteStatusReport as usual).
    #[default]
    Expire,
}

/// An RFQ the journal shows open when the previous run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRfq {
    pub desk_session: u16,
    /// The router's RFQ number (from its `R<seq>-<slot>` identifier).
    pub rfq_seq: u64,
    /// The router's QuoteID for it (`R<seq>-<slot>`).
    pub quote_id: Vec<u8>,
    pub desk_req_id: Vec<u8>,
    /// Symbol (55), SecurityID (48), SecurityIDSource (22) as the acknowledgement gave them.
    pub instrument: Vec<(u32, Vec<u8>)>,
    /// Dealer sessions that were sent its QuoteRequest.
    pub dealer_sessions: Vec<u16>,
    /// A hit was with a dealer when the run stopped: the outcome is in doubt.
    pub executing: bool,
    pub acknowledged_at: Nanos,
}

impl OpenRfq {
    /// The QuoteStatusReport body (fields after the header) that tells the desk it expired.
    pub fn expiry_notice(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        let mut put = |tag: u32, v: &[u8]| {
            b.extend_from_slice(tag.to_string().as_bytes());
            b.push(b'=');
            b.extend_from_slice(v);
            b.push(SOH);
        };
        put(117, &self.quote_id);
        put(131, &self.desk_req_id);
        for (tag, v) in &self.instrument {
            put(*tag, v);
        }
        put(297, b"7");
        if self.executing {
            put(
                58,
                b"RFQ expired: router restarted while the execution was with the dealer; outcome to be confirmed",
            );
        } else {
            put(58, b"RFQ expired: router restarted");
        }
        b
    }
}

/// What the scan found.
#[derive(Debug, Clone, Default)]
pub struct RestartScan {
    /// Open RFQs, in the order they were acknowledged.
    pub open: Vec<OpenRfq>,
    /// The highest RFQ number the previous runs used (the engine continues after it, so no
    /// identifier is reused).
    pub last_rfq_seq: u64,
    /// RFQs not kept because `MAX_OPEN_RFQS` were open.
    pub dropped: u64,
}

#[derive(Debug)]
struct Tracked {
    rfq: OpenRfq,
    acknowledged: bool,
    order: u64,
}

/// A router identifier `<prefix><seq>-<slot>[-...]`: (seq, slot).
fn router_ref(prefix: u8, v: &[u8]) -> Option<(u64, u64)> {
    let rest = v.strip_prefix(&[prefix])?;
    let mut parts = rest.split(|&b| b == b'-');
    let seq = digits(parts.next()?)?;
    let slot = digits(parts.next()?)?;
    Some((seq, slot))
}

fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// The fields of a frame, in order (tag, value); stops at a malformed field.
fn fields(raw: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    raw.split(|&b| b == SOH).map_while(|f| {
        let eq = f.iter().position(|&b| b == b'=')?;
        let tag = u32::try_from(digits(&f[..eq])?).ok()?;
        Some((tag, &f[eq + 1..]))
    })
}

fn get(raw: &[u8], tag: u32) -> Option<&[u8]> {
    fields(raw).find(|(t, _)| *t == tag).map(|(_, v)| v)
}

fn positive(v: Option<&[u8]>) -> bool {
    v.and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.parse::<f64>().ok())
        .is_some_and(|x| x > 0.0)
}

/// Reads the journal in `dir` and finds the RFQs left open. `desk_sessions` are the router
/// session numbers of the desks.
pub fn scan_open_rfqs(dir: &Path, desk_sessions: &[u16]) -> Result<RestartScan, JournalError> {
    let reader = match JournalReader::open(dir) {
        Ok(r) => r,
        Err(JournalError::NoSegments { .. } | JournalError::NotFound { .. }) => {
            return Ok(RestartScan::default())
        }
        Err(e) => return Err(e),
    };
    let mut scanner = RestartScanner::new(desk_sessions);
    for item in reader.records() {
        let Ok(item) = item else { continue };
        let rec = item.record;
        let Some(Ok(fix)) = rec.fix() else { continue };
        let inbound = rec.kind() == Some(RecordKind::FixInbound);
        scanner.feed(inbound, fix.session_id, fix.raw, rec.timestamp);
    }
    Ok(scanner.snapshot())
}

/// The open-RFQ rules of the module doc, fed one FIX record at a time (the restart reads the
/// whole journal through it; `rfq-journal replay` feeds it as it goes, to know at each run
/// start what that run resumed).
#[derive(Debug)]
pub struct RestartScanner {
    desk_sessions: Vec<u16>,
    tracked: BTreeMap<(u64, u64), Tracked>,
    last_rfq_seq: u64,
    dropped: u64,
    order: u64,
}

impl RestartScanner {
    pub fn new(desk_sessions: &[u16]) -> RestartScanner {
        RestartScanner {
            desk_sessions: desk_sessions.to_vec(),
            tracked: BTreeMap::new(),
            last_rfq_seq: 0,
            dropped: 0,
            order: 0,
        }
    }

    /// What the records fed so far leave open.
    pub fn snapshot(&self) -> RestartScan {
        let mut open: Vec<&Tracked> = self.tracked.values().filter(|t| t.acknowledged).collect();
        open.sort_by_key(|t| t.order);
        RestartScan {
            open: open.into_iter().map(|t| t.rfq.clone()).collect(),
            last_rfq_seq: self.last_rfq_seq,
            dropped: self.dropped,
        }
    }

    /// Starts tracking `key` if there is room; returns whether it is tracked.
    fn track(&mut self, key: (u64, u64), session: u16, at: Nanos) -> bool {
        if !self.tracked.contains_key(&key) && self.tracked.len() >= MAX_OPEN_RFQS {
            self.dropped += 1;
            return false;
        }
        self.order += 1;
        let order = self.order;
        self.tracked.entry(key).or_insert_with(|| Tracked {
            rfq: OpenRfq {
                desk_session: session,
                rfq_seq: key.0,
                quote_id: Vec::new(),
                desk_req_id: Vec::new(),
                instrument: Vec::new(),
                dealer_sessions: Vec::new(),
                executing: false,
                acknowledged_at: at,
            },
            acknowledged: false,
            order,
        });
        true
    }

    /// One FIX record: `inbound` (fix-in) or outbound, on router session `session`.
    pub fn feed(&mut self, inbound: bool, session: u16, raw: &[u8], at: Nanos) {
        let Some(msg_type) = get(raw, 35) else { return };
        let desk = self.desk_sessions.contains(&session);
        if inbound {
            if desk && msg_type == b"A" {
                // A desk's new connection: the engine ended its open RFQs when the old one
                // dropped, except those with a hit in progress.
                self.tracked
                    .retain(|_, t| t.rfq.desk_session != session || t.rfq.executing);
            }
            return;
        }
        if get(raw, 43) == Some(b"Y") {
            return; // a resend: the original was seen
        }
        let key_of = |prefix: u8, tag: u32| get(raw, tag).and_then(|v| router_ref(prefix, v));
        if desk {
            match msg_type {
                b"AI" => {
                    let Some(key) = key_of(b'R', 117) else { return };
                    self.last_rfq_seq = self.last_rfq_seq.max(key.0);
                    match get(raw, 297).unwrap_or(b"") {
                        b"0" => {
                            if !self.track(key, session, at) {
                                return;
                            }
                            let order = self.order;
                            let Some(t) = self.tracked.get_mut(&key) else {
                                return;
                            };
                            t.acknowledged = true;
                            t.order = order;
                            t.rfq.desk_session = session;
                            t.rfq.acknowledged_at = at;
                            t.rfq.quote_id = get(raw, 117).unwrap_or(b"").to_vec();
                            t.rfq.desk_req_id = get(raw, 131).unwrap_or(b"").to_vec();
                            t.rfq.instrument = fields(raw)
                                .filter(|(tag, _)| matches!(tag, 55 | 48 | 22))
                                .map(|(tag, v)| (tag, v.to_vec()))
                                .collect();
                        }
                        b"4" | b"7" => {
                            self.tracked.remove(&key);
                        }
                        b"5" if !get(raw, 58).is_some_and(|t| t.starts_with(b"cannot cancel")) => {
                            self.tracked.remove(&key);
                        }
                        _ => {}
                    }
                }
                b"8" => {
                    let Some(key) = key_of(b'O', 37) else { return };
                    let status = get(raw, 39).unwrap_or(b"");
                    let filled =
                        status == b"2" || (matches!(status, b"3" | b"4") && positive(get(raw, 14)));
                    if filled {
                        self.tracked.remove(&key);
                    } else if matches!(status, b"8" | b"3" | b"4") {
                        if let Some(t) = self.tracked.get_mut(&key) {
                            t.rfq.executing = false;
                        }
                    }
                }
                _ => {}
            }
            return;
        }
        // To a dealer.
        match msg_type {
            b"R" => {
                let Some(key) = key_of(b'R', 131) else { return };
                self.last_rfq_seq = self.last_rfq_seq.max(key.0);
                if !self.track(key, u16::MAX, at) {
                    return;
                }
                if let Some(t) = self.tracked.get_mut(&key) {
                    if !t.rfq.dealer_sessions.contains(&session) && t.rfq.dealer_sessions.len() < 64
                    {
                        t.rfq.dealer_sessions.push(session);
                    }
                }
            }
            b"AJ" | b"D" => {
                let hit = msg_type == b"D" || get(raw, 694) == Some(b"1");
                let key = key_of(b'E', 11).or_else(|| key_of(b'E', 693));
                if let (true, Some(key)) = (hit, key) {
                    self.last_rfq_seq = self.last_rfq_seq.max(key.0);
                    if let Some(t) = self.tracked.get_mut(&key) {
                        t.rfq.executing = true;
                    }
                }
            }
            _ => {}
        }
    }
}

/// The notices a restarted router owes desks, sent as each desk session logs on.
#[derive(Debug, Default)]
pub struct RestartNotices {
    /// (desk session, AI body) not yet sent.
    pending: Vec<(u16, Vec<u8>)>,
    pub sent: u64,
    pub send_failures: u64,
}

impl RestartNotices {
    /// The notices for `scan` under `policy`.
    pub fn new(scan: &RestartScan, policy: RestartPolicy) -> RestartNotices {
        let pending = match policy {
            RestartPolicy::Expire => scan
                .open
                .iter()
                .map(|r| (r.desk_session, r.expiry_notice()))
                .collect(),
        };
        RestartNotices {
            pending,
            sent: 0,
            send_failures: 0,
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Sends what `session` is owed through `send(session, msg_type, body)`; a notice that
    /// cannot be sent stays for the next logon.
    pub fn on_session_up(
        &mut self,
        session: u16,
        mut send: impl FnMut(usize, &[u8], &[u8]) -> bool,
    ) {
        if !self.pending.iter().any(|(s, _)| *s == session) {
            return;
        }
        let mut failures = 0;
        let mut sent = 0;
        self.pending.retain(|(s, body)| {
            if *s != session {
                return true;
            }
            if send(usize::from(session), b"AI", body) {
                sent += 1;
                false
            } else {
                failures += 1;
                true
            }
        });
        self.sent += sent;
        self.send_failures += failures;
    }
}

/// Everything a router starting on an existing journal resumes from.
#[derive(Debug)]
pub struct Restart {
    /// The message-store index, followed to the journal's end.
    pub index: SharedIndex,
    /// Per router session: what its FIX stream in the journal says (`None`: never seen).
    pub sessions: Vec<Option<SessionResume>>,
    pub scan: RestartScan,
    pub policy: RestartPolicy,
}

impl Restart {
    /// Reads the journal in `dir` (already recovered by `Journal::open`, which holds it for
    /// writing: `written` is its counters) for `session_count` router sessions.
    pub fn prepare(
        dir: &Path,
        limits: JournalStoreLimits,
        written: Option<MetricsHandle>,
        session_count: usize,
        desk_sessions: &[u16],
        policy: RestartPolicy,
    ) -> Result<Restart, JournalError> {
        let index = JournalIndex::open(dir, limits, written)?;
        let sessions = (0..session_count)
            .map(|i| u16::try_from(i).ok().and_then(|id| index.resume(id)))
            .collect();
        let scan = scan_open_rfqs(dir, desk_sessions)?;
        Ok(Restart {
            index: index.shared(),
            sessions,
            scan,
            policy,
        })
    }

    /// Session `i`'s journal-backed store, starting where the journal left it.
    pub fn store(&self, i: usize, now: Nanos) -> JournalStore {
        let id = u16::try_from(i).unwrap_or(u16::MAX);
        JournalStore::resume(id, &self.index, now)
    }

    /// The notices the policy owes desks.
    pub fn notices(&self) -> RestartNotices {
        RestartNotices::new(&self.scan, self.policy)
    }

    /// One line per thing an operator should know (the binary prints them).
    pub fn describe(&self, session_names: &[String]) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, s) in self.sessions.iter().enumerate() {
            let name = session_names.get(i).map_or("?", String::as_str);
            if let Some(r) = s {
                lines.push(format!(
                    "session {name}: resumes at MsgSeqNum out {} / in {}",
                    r.next_sender_seq, r.next_target_seq
                ));
            }
        }
        let executing = self.scan.open.iter().filter(|r| r.executing).count();
        let policy = match self.policy {
            RestartPolicy::Expire => "expire",
        };
        lines.push(format!(
            "open RFQs from the previous run: {} (policy {policy}: desks get QuoteStatusReport \
             297=7 at logon){}",
            self.scan.open.len(),
            if self.scan.dropped > 0 {
                format!(
                    ", {} more not kept (limit {MAX_OPEN_RFQS})",
                    self.scan.dropped
                )
            } else {
                String::new()
            }
        ));
        for r in self.scan.open.iter().filter(|r| r.executing) {
            lines.push(format!(
                "warning: RFQ {} (desk QuoteReqID {}) had a hit with dealer session(s) {:?}: \
                 execution outcome in doubt, confirm with the dealer",
                String::from_utf8_lossy(&r.quote_id),
                String::from_utf8_lossy(&r.desk_req_id),
                r.dealer_sessions
            ));
        }
        if executing == 0 && self.scan.last_rfq_seq > 0 {
            lines.push(format!(
                "RFQ numbers continue after {}",
                self.scan.last_rfq_seq
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::Encoder;
    use crate::journal::{FixDirection, Journal, JournalConfig};

    fn frame(msg_type: &str, seq: u64, body: &str) -> Vec<u8> {
        let mut e = Encoder::new(4096);
        e.start(msg_type.as_bytes())
            .uint(34, seq)
            .str(49, b"ROUTER")
            .str(52, b"20261121-21:00:00.000")
            .str(56, b"X");
        e.raw(body.replace('|', "\u{1}").as_bytes());
        e.finish().expect("fits").to_vec()
    }

    #[test]
    fn finds_acknowledged_rfqs_that_never_ended() {
        let dir = std::env::temp_dir().join(format!("rfq-journal-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut j, _) = Journal::open(JournalConfig {
            segment_size_bytes: 16 * 1024,
            max_payload_bytes: 4096,
            ..JournalConfig::new(&dir)
        })
        .expect("open");
        let mut o = |session: u16, f: Vec<u8>| {
            j.append_fix(FixDirection::Outbound, session, Nanos(7), &f)
                .expect("append");
        };
        let ack = |n: u64, req: &str| {
            frame(
                "AI",
                n,
                &format!("117=R{n}-{n}|131={req}|55=[N/A]|48=US912828Z781|22=4|297=0|"),
            )
        };
        // RFQ 1: asked, acknowledged, expired -> ended.
        o(1, frame("R", 1, "131=R1-1|146=1|55=X|"));
        o(0, ack(1, "D1"));
        o(0, frame("AI", 3, "117=R1-1|131=D1|297=7|"));
        // RFQ 2: acknowledged, still open, dealer 1 and 2 asked.
        o(1, frame("R", 2, "131=R2-2|"));
        o(2, frame("R", 1, "131=R2-2|"));
        o(0, ack(2, "D2"));
        // RFQ 3: filled.
        o(0, ack(3, "D3"));
        o(1, frame("AJ", 3, "693=E3-3-0-1|694=1|"));
        o(0, frame("8", 5, "37=O3-3|39=2|14=100|"));
        // RFQ 4: hit with the dealer, no report: executing.
        o(0, ack(4, "D4"));
        o(2, frame("D", 2, "11=E4-4-0-1|"));
        // RFQ 5: a late cancel refused, still open.
        o(0, ack(5, "D5"));
        o(
            0,
            frame(
                "AI",
                8,
                "117=R5-5|131=D5|297=5|58=cannot cancel: execution in progress|",
            ),
        );
        j.close().expect("close");

        let scan = scan_open_rfqs(&dir, &[0]).expect("scan");
        let open: Vec<(u64, bool)> = scan.open.iter().map(|r| (r.rfq_seq, r.executing)).collect();
        assert_eq!(open, vec![(2, false), (4, true), (5, false)]);
        assert_eq!(scan.last_rfq_seq, 5);
        assert_eq!(scan.open[0].dealer_sessions, vec![1, 2]);
        assert_eq!(scan.open[0].desk_req_id, b"D2");
        let notice = String::from_utf8(scan.open[0].expiry_notice()).expect("ascii");
        assert_eq!(
            notice.replace('\u{1}', "|"),
            "117=R2-2|131=D2|55=[N/A]|48=US912828Z781|22=4|297=7|58=RFQ expired: router restarted|"
        );
        let mut notices = RestartNotices::new(&scan, RestartPolicy::Expire);
        // A desk logon whose notices cannot be sent keeps them for the next one.
        notices.on_session_up(0, |_, _, _| false);
        assert_eq!((notices.pending(), notices.send_failures), (3, 3));
        let mut sent = Vec::new();
        notices.on_session_up(1, |_, _, _| panic!("not a desk with notices"));
        notices.on_session_up(0, |s, t, b| {
            sent.push((s, t.to_vec(), b.to_vec()));
            true
        });
        assert_eq!(sent.len(), 3);
        assert_eq!(notices.pending(), 0);
        assert_eq!(notices.sent, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
