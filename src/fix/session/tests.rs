//! One or more tests per case of the FIX Trading Community "FIX Session Layer Test Cases"
//! v1.0, on the pure state machine with our own messages and simulated time. The dictionary
//! cases (14a-n) drive the Violation -> Reject path with the violation the validator reports,
//! so they do not depend on the validator's rules.

use super::*;
use crate::fix::echo::EchoApp;
use crate::fix::frame::{checksum, SOH};
use crate::fix::store::{MemoryStore, MemoryStoreLimits};
use crate::time::format_utc_timestamp_ms;

const T0: Nanos = Nanos(1_717_243_200 * Nanos::PER_SEC); // 2024-06-01T12:00:00Z

fn secs(n: u64) -> Nanos {
    Nanos(T0.0 + n * Nanos::PER_SEC)
}

fn ms(n: u64) -> Nanos {
    Nanos(T0.0 + n * Nanos::PER_MS)
}

/// `YYYYMMDD-HH:MM:SS` of `t`.
fn ts(t: Nanos) -> String {
    let mut b = [0u8; 21];
    String::from_utf8_lossy(&format_utc_timestamp_ms(t, &mut b)[..17]).into_owned()
}

/// A frame from `|`-separated fields after BodyLength; `{T}` is replaced by `ts(now)`.
fn msg(now: Nanos, body: &str) -> Vec<u8> {
    let body = body.replace("{T}", &ts(now)).replace('|', "\x01");
    let mut out = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
    let sum = checksum(&out);
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

fn hdr(msg_type: &str, seq: u64) -> String {
    format!("35={msg_type}|34={seq}|49=TW|52={{T}}|56=ISLD|")
}

fn fields(frame: &[u8]) -> Vec<(u32, String)> {
    frame
        .split(|&b| b == SOH)
        .filter(|f| !f.is_empty())
        .map(|f| {
            let s = String::from_utf8_lossy(f);
            let (t, v) = s.split_once('=').expect("tag=value");
            (t.parse().expect("tag"), v.to_owned())
        })
        .collect()
}

fn get(frame: &[u8], tag: u32) -> Option<String> {
    fields(frame).into_iter().find(|f| f.0 == tag).map(|f| f.1)
}

fn tags_of(frame: &[u8]) -> Vec<u32> {
    fields(frame).iter().map(|f| f.0).collect()
}

fn mtype(frame: &[u8]) -> String {
    get(frame, 35).expect("35")
}

fn seq_of(frame: &[u8]) -> u64 {
    get(frame, 34).expect("34").parse().expect("seq")
}

fn show(frame: &[u8]) -> String {
    String::from_utf8_lossy(frame).replace('\x01', "|")
}

/// Records what the application saw; echoes `D` like the acceptance application.
#[derive(Default)]
struct Recorder {
    seen: Vec<(String, u64)>,
    refuse: Vec<&'static [u8]>,
}

impl Application for Recorder {
    fn on_message(&mut self, m: &Message<'_>, _reply: &mut Reply<'_>) -> AppOutcome {
        if self.refuse.contains(&m.msg_type()) {
            return AppOutcome::UnsupportedMsgType;
        }
        self.seen.push((
            String::from_utf8_lossy(m.msg_type()).into_owned(),
            m.seq_num().unwrap_or(0),
        ));
        AppOutcome::Accepted
    }
}

fn store() -> MemoryStore {
    MemoryStore::new(MemoryStoreLimits::default(), T0)
}

fn acceptor_cfg() -> SessionConfig {
    SessionConfig::acceptor("ISLD", "TW")
}

fn session(cfg: SessionConfig) -> Session<MemoryStore> {
    Session::new(cfg, store(), Arc::new(Validator::fix44()))
}

struct Rig {
    s: Session<MemoryStore>,
    app: Recorder,
    now: Nanos,
}

impl Rig {
    fn acceptor() -> Rig {
        Rig::with(acceptor_cfg())
    }

    fn with(cfg: SessionConfig) -> Rig {
        let mut s = session(cfg);
        let mut out = CollectOutbox::default();
        s.on_connected(T0, &mut out);
        Rig {
            s,
            app: Recorder::default(),
            now: T0,
        }
    }

    /// Connected and logged on with HeartBtInt `hbi`.
    fn logged_on(hbi: u32) -> Rig {
        let mut r = Rig::acceptor();
        let out = r.send(&format!("{}98=0|108={hbi}|", hdr("A", 1)));
        assert_eq!(out.frames.len(), 1, "logon answer");
        assert_eq!(r.s.state(), SessionState::Active);
        r
    }

    fn send(&mut self, body: &str) -> CollectOutbox {
        self.now = Nanos(self.now.0 + Nanos::PER_MS);
        let bytes = msg(self.now, body);
        self.feed(&bytes)
    }

    fn feed(&mut self, bytes: &[u8]) -> CollectOutbox {
        let mut out = CollectOutbox::default();
        self.s.on_input(self.now, bytes, &mut self.app, &mut out);
        out
    }

    fn tick(&mut self, at: Nanos) -> CollectOutbox {
        self.now = at;
        let mut out = CollectOutbox::default();
        self.s.on_timer(at, &mut out);
        out
    }

    fn expected(&self) -> u64 {
        self.s.store().next_target_seq()
    }

    fn app_send(&mut self, body: &'static str) -> (u64, CollectOutbox) {
        let mut out = CollectOutbox::default();
        let seq = self
            .s
            .send_app(
                self.now,
                b"D",
                |e| {
                    for f in body.split('|').filter(|f| !f.is_empty()) {
                        let (t, v) = f.split_once('=').unwrap();
                        e.str(t.parse().unwrap(), v.as_bytes());
                    }
                },
                &mut out,
            )
            .expect("send_app");
        (seq, out)
    }
}

fn assert_reject(f: &[u8], ref_seq: u64, reason: u32, ref_tag: Option<&str>, ref_type: &str) {
    assert_eq!(mtype(f), "3", "{}", show(f));
    assert_eq!(get(f, 45).as_deref(), Some(ref_seq.to_string().as_str()));
    assert_eq!(get(f, 373).as_deref(), Some(reason.to_string().as_str()));
    assert_eq!(get(f, 371).as_deref(), ref_tag, "{}", show(f));
    assert_eq!(get(f, 372).as_deref(), Some(ref_type));
    assert!(get(f, 58).is_some_and(|t| !t.is_empty()));
}

fn disconnect_reason(out: &CollectOutbox) -> Option<DisconnectReason> {
    out.events.iter().find_map(|e| match e {
        SessionEvent::Disconnect { reason } => Some(*reason),
        _ => None,
    })
}

// ---------------------------------------------------------------- 1S: initiator logon

#[test]
fn case_1s_initiator_sends_logon_and_is_logged_on_by_a_valid_answer() {
    let mut cfg = SessionConfig::initiator("TW", "ISLD", 30);
    cfg.reset_on_logon = true;
    let mut s = session(cfg);
    let mut out = CollectOutbox::default();
    s.on_connected(T0, &mut out);
    assert_eq!(out.frames.len(), 1);
    let logon = &out.frames[0];
    assert_eq!(
        tags_of(logon),
        vec![8, 9, 35, 34, 49, 52, 56, 98, 108, 141, 10]
    );
    assert_eq!(get(logon, 49).as_deref(), Some("TW"));
    assert_eq!(get(logon, 108).as_deref(), Some("30"));
    assert_eq!(s.state(), SessionState::LogonSent);
    let answer = msg(T0, "35=A|34=1|49=ISLD|52={T}|56=TW|98=0|108=30|141=Y|");
    let mut out = CollectOutbox::default();
    s.on_input(T0, &answer, &mut NullApp, &mut out);
    assert!(out.frames.is_empty(), "an answer is not answered");
    assert_eq!(s.state(), SessionState::Active);
    assert!(matches!(
        out.events[0],
        SessionEvent::LoggedOn {
            heart_bt_int_s: 30,
            ..
        }
    ));
    assert_eq!(s.store().next_target_seq(), 2);
}

#[test]
fn initiator_answers_a_reset_it_did_not_ask_for_with_its_own_logon_numbered_1() {
    // Our Logon (34=1, no 141) is answered with 141=Y: the peer restarted its sequences, so
    // ours restart too, and our next message (a Logon with 141=Y) is numbered 1 again.
    let mut cfg = SessionConfig::initiator("TW", "ISLD", 30);
    cfg.reset_on_logon = false;
    let mut s = session(cfg);
    let mut out = CollectOutbox::default();
    s.on_connected(T0, &mut out);
    assert_eq!(get(&out.frames[0], 141), None, "no reset asked");
    let answer = msg(T0, "35=A|34=1|49=ISLD|52={T}|56=TW|98=0|108=30|141=Y|");
    let mut out = CollectOutbox::default();
    s.on_input(T0, &answer, &mut NullApp, &mut out);
    assert_eq!(s.state(), SessionState::Active);
    assert_eq!(out.frames.len(), 1, "the unrequested reset is answered");
    let f = &out.frames[0];
    assert_eq!(mtype(f), "A", "{}", show(f));
    assert_eq!(get(f, 34).as_deref(), Some("1"), "{}", show(f));
    assert_eq!(get(f, 141).as_deref(), Some("Y"), "{}", show(f));
    assert!(matches!(
        out.events[0],
        SessionEvent::LoggedOn { reset: true, .. }
    ));
    assert_eq!(s.store().next_target_seq(), 2);
    assert_eq!(s.store().next_sender_seq(), 2);
}

#[test]
fn case_1s_initiator_answer_with_seq_too_high_sends_resend_request() {
    let mut s = session(SessionConfig::initiator("TW", "ISLD", 30));
    let mut out = CollectOutbox::default();
    s.on_connected(T0, &mut out);
    let answer = msg(T0, "35=A|34=5|49=ISLD|52={T}|56=TW|98=0|108=30|");
    let mut out = CollectOutbox::default();
    s.on_input(T0, &answer, &mut NullApp, &mut out);
    assert_eq!(s.state(), SessionState::Active);
    assert_eq!(out.frames.len(), 1);
    assert_eq!(mtype(&out.frames[0]), "2");
    assert_eq!(get(&out.frames[0], 7).as_deref(), Some("1"));
    assert_eq!(get(&out.frames[0], 16).as_deref(), Some("0"));
}

#[test]
fn case_1s_initiator_disconnects_without_an_answer_in_time() {
    let mut s = session(SessionConfig::initiator("TW", "ISLD", 30));
    let mut out = CollectOutbox::default();
    s.on_connected(T0, &mut out);
    assert_eq!(s.next_deadline(), Some(secs(10)));
    let mut out = CollectOutbox::default();
    s.on_timer(secs(9), &mut out);
    assert!(!out.disconnected());
    s.on_timer(secs(10), &mut out);
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::LogonTimeout)
    );
}

#[test]
fn case_1s_initiator_disconnects_on_an_answer_from_the_wrong_comp_id() {
    let mut s = session(SessionConfig::initiator("TW", "ISLD", 30));
    let mut out = CollectOutbox::default();
    s.on_connected(T0, &mut out);
    let answer = msg(T0, "35=A|34=1|49=XXXX|52={T}|56=TW|98=0|108=30|");
    let mut out = CollectOutbox::default();
    s.on_input(T0, &answer, &mut NullApp, &mut out);
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::LogonRefused)
    );
    assert!(out.frames.is_empty());
}

// ---------------------------------------------------------------- 1B: acceptor logon

#[test]
fn case_1b_a_valid_logon_is_answered_with_logon() {
    let mut r = Rig::acceptor();
    let out = r.send(&format!("{}98=0|108=30|", hdr("A", 1)));
    let f = &out.frames[0];
    assert_eq!(tags_of(f), vec![8, 9, 35, 34, 49, 52, 56, 98, 108, 10]);
    assert_eq!(get(f, 34).as_deref(), Some("1"));
    assert_eq!(get(f, 49).as_deref(), Some("ISLD"));
    assert_eq!(get(f, 56).as_deref(), Some("TW"));
    assert_eq!(get(f, 108).as_deref(), Some("30"));
    assert_eq!(r.expected(), 2);
    assert_eq!(r.s.heart_bt_int_s(), 30);
}

#[test]
fn case_1b_logon_with_seq_too_high_is_answered_then_resend_requested() {
    let mut r = Rig::acceptor();
    let out = r.send(&format!("{}98=0|108=30|", hdr("A", 5)));
    assert_eq!(out.frames.len(), 2);
    assert_eq!(mtype(&out.frames[0]), "A");
    assert_eq!(mtype(&out.frames[1]), "2");
    assert_eq!(get(&out.frames[1], 7).as_deref(), Some("1"));
    // The gap is filled: the queued Logon (5) is passed over and 6 is next.
    let out = r.send(&format!("{}36=5|123=Y|", hdr("4", 1)));
    assert!(out.frames.is_empty());
    assert_eq!(r.expected(), 6);
}

#[test]
fn case_1b_duplicate_identity_is_refused_by_the_host_before_the_session_sees_it() {
    // The host asks `logon_comp_ids` which session a new connection names; a session that is
    // logged on is not given a second connection.
    let framer = Framer::new(4096);
    let logon = msg(T0, &format!("{}98=0|108=30|", hdr("A", 1)));
    assert_eq!(
        logon_comp_ids(&framer, &logon),
        Some((&b"TW"[..], &b"ISLD"[..]))
    );
    let hb = msg(T0, &hdr("0", 1));
    assert_eq!(logon_comp_ids(&framer, &hb), None);
    assert_eq!(logon_comp_ids(&framer, &logon[..logon.len() - 1]), None);
}

#[test]
fn case_1b_invalid_comp_ids_in_logon_disconnect_silently() {
    for body in [
        "35=A|34=1|49=WT|52={T}|56=ISLD|98=0|108=30|",
        "35=A|34=1|49=TW|52={T}|56=DLSI|98=0|108=30|",
    ] {
        let mut r = Rig::acceptor();
        let out = r.send(body);
        assert!(out.frames.is_empty(), "{}", show(&out.frames[0]));
        assert_eq!(
            disconnect_reason(&out),
            Some(DisconnectReason::LogonRefused)
        );
    }
}

#[test]
fn case_1b_logon_with_bad_sending_time_is_refused() {
    let mut r = Rig::acceptor();
    let out = r.send("35=A|34=1|49=TW|52=20010101-00:00:00|56=ISLD|98=0|108=30|");
    assert!(out.frames.is_empty());
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::LogonRefused)
    );
    // QuickFIX/J explains itself first.
    let mut cfg = acceptor_cfg();
    cfg.compat = Compat::QUICKFIXJ;
    let mut r = Rig::with(cfg);
    let out = r.send("35=A|34=1|49=TW|52=20010101-00:00:00|56=ISLD|98=0|108=30|");
    assert_eq!(mtype(&out.frames[0]), "5");
    assert!(get(&out.frames[0], 58)
        .unwrap()
        .contains("SendingTime accuracy problem"));
    assert!(out.disconnected());
}

#[test]
fn case_1b_logon_with_wrong_body_length_disconnects() {
    let mut r = Rig::acceptor();
    let good = msg(ms(1), &format!("{}98=0|108=30|", hdr("A", 1)));
    let text = String::from_utf8(good).unwrap();
    let len_at = text.find("\x019=").unwrap() + 3;
    let len_end = len_at + text[len_at..].find('\x01').unwrap();
    let bad = format!("{}40{}", &text[..len_at], &text[len_end..]);
    let out = r.feed(bad.as_bytes());
    assert!(out.frames.is_empty());
    assert!(out.disconnected());
}

#[test]
fn case_1b_logon_with_wrong_begin_string_disconnects() {
    let mut r = Rig::acceptor();
    let body = format!("{}98=0|108=30|", hdr("A", 1)).replace("{T}", &ts(T0));
    let body = body.replace('|', "\x01");
    let mut f = format!("8=FIX.3.9\x019={}\x01{}", body.len(), body).into_bytes();
    let sum = checksum(&f);
    f.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    let out = r.feed(&f);
    assert!(out.frames.is_empty());
    assert!(out.disconnected());
}

#[test]
fn case_1b_first_message_not_logon_disconnects() {
    let mut r = Rig::acceptor();
    let out = r.send(&hdr("0", 1));
    assert!(out.frames.is_empty());
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::FirstMessageNotLogon)
    );
}

#[test]
fn case_1b_negative_heart_bt_int_is_refused_with_a_logout() {
    let mut r = Rig::acceptor();
    let out = r.send(&format!("{}98=0|108=-10|", hdr("A", 1)));
    assert_eq!(mtype(&out.frames[0]), "5");
    assert_eq!(
        get(&out.frames[0], 58).as_deref(),
        Some("HeartBtInt must not be negative")
    );
    assert!(out.disconnected());
}

#[test]
fn case_1b_no_logon_in_time_disconnects() {
    let mut r = Rig::acceptor();
    assert!(r.tick(secs(9)).events.is_empty());
    let out = r.tick(secs(10));
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::LogonTimeout)
    );
}

// ---------------------------------------------------------------- 2S: standard header out

#[test]
fn case_2s_every_message_sent_has_the_standard_header_in_order_and_consecutive_numbers() {
    let mut r = Rig::logged_on(30);
    let out = r.send(&format!("{}112=X|", hdr("1", 2)));
    let (seq, app_out) = r.app_send("11=A|54=1|");
    let frames: Vec<&Vec<u8>> = out.frames.iter().chain(&app_out.frames).collect();
    assert_eq!(seq, 3);
    for (i, f) in frames.iter().enumerate() {
        let t = tags_of(f);
        assert_eq!(&t[..7], &[8, 9, 35, 34, 49, 52, 56], "{}", show(f));
        assert_eq!(*t.last().unwrap(), 10);
        assert_eq!(seq_of(f), 2 + i as u64);
        let framer = Framer::new(4096);
        assert_eq!(
            framer.next_frame(f),
            FrameStatus::Frame { len: f.len() },
            "BodyLength and CheckSum are right"
        );
        assert_eq!(
            get(f, 52).unwrap().len(),
            21,
            "SendingTime with milliseconds"
        );
    }
}

// ---------------------------------------------------------------- 2: standard header in

#[test]
fn case_2a_msg_seq_num_as_expected_is_accepted() {
    let mut r = Rig::logged_on(30);
    for seq in 2..6 {
        let out = r.send(&hdr("0", seq));
        assert!(out.frames.is_empty());
    }
    assert_eq!(r.expected(), 6);
}

#[test]
fn case_2b_msg_seq_num_too_high_sends_resend_request() {
    let mut r = Rig::logged_on(30);
    r.send(&hdr("0", 2));
    let out = r.send(&hdr("0", 10));
    assert_eq!(out.frames.len(), 1);
    let rr = &out.frames[0];
    assert_eq!(mtype(rr), "2");
    assert_eq!(get(rr, 7).as_deref(), Some("3"));
    assert_eq!(get(rr, 16).as_deref(), Some("0"));
    assert_eq!(r.s.queued_messages(), 1);
    // A second message beyond the gap is queued without asking again.
    let out = r.send(&hdr("0", 11));
    assert!(out.frames.is_empty());
    for seq in 3..10 {
        assert!(r.send(&hdr("0", seq)).frames.is_empty());
    }
    assert_eq!(r.expected(), 12, "queued 10 and 11 were processed");
    assert_eq!(r.s.queued_messages(), 0);
}

#[test]
fn case_2b_queue_is_bounded_and_overflow_is_counted() {
    let mut cfg = acceptor_cfg();
    cfg.max_queued_messages = 2;
    let mut r = Rig::with(cfg);
    r.send(&format!("{}98=0|108=30|", hdr("A", 1)));
    for seq in 10..15 {
        r.send(&hdr("0", seq));
    }
    assert_eq!(r.s.queued_messages(), 2);
    assert_eq!(r.s.counters().queue_overflows, 3);
}

#[test]
fn case_2c_msg_seq_num_too_low_without_poss_dup_logs_out_and_disconnects() {
    let mut r = Rig::logged_on(30);
    r.send(&hdr("0", 2));
    r.send(&hdr("0", 3));
    let out = r.send(&hdr("0", 2));
    assert_eq!(out.frames.len(), 1);
    assert_eq!(mtype(&out.frames[0]), "5");
    assert_eq!(
        get(&out.frames[0], 58).as_deref(),
        Some("MsgSeqNum too low, expecting 4 but received 2")
    );
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::MsgSeqNumTooLow)
    );
    assert_eq!(r.s.state(), SessionState::Disconnected);
}

#[test]
fn case_2d_garbled_message_is_ignored() {
    let mut r = Rig::logged_on(30);
    let mut bad = msg(ms(5), &hdr("0", 2));
    let n = bad.len();
    bad[n - 3] = if bad[n - 3] == b'0' { b'1' } else { b'0' }; // wrong checksum
    let out = r.feed(&bad);
    assert!(out.frames.is_empty());
    assert_eq!(r.expected(), 2);
    assert_eq!(r.s.counters().garbled_in, 1);
    assert!(r.send(&hdr("0", 2)).frames.is_empty());
    assert_eq!(r.expected(), 3);
}

#[test]
fn case_2e_poss_dup_already_received_is_ignored() {
    let mut r = Rig::logged_on(30);
    r.send(&hdr("0", 2));
    let out = r.send("35=0|34=2|43=Y|49=TW|52={T}|56=ISLD|122={T}|");
    assert!(out.frames.is_empty());
    assert_eq!(r.expected(), 3);
    assert_eq!(r.s.counters().duplicates_ignored, 1);
}

#[test]
fn case_2e_poss_dup_not_yet_received_is_processed() {
    let mut r = Rig::logged_on(30);
    let out =
        r.send("35=D|34=2|43=Y|49=TW|52={T}|56=ISLD|122={T}|11=A|21=3|40=1|54=1|55=INTC|60={T}|");
    assert!(out.frames.is_empty());
    assert_eq!(r.expected(), 3);
    assert_eq!(r.app.seen, vec![("D".to_owned(), 2)]);
}

#[test]
fn case_2f_poss_dup_with_orig_sending_time_after_sending_time_rejects_and_logs_out() {
    let mut r = Rig::logged_on(30);
    r.send(&hdr("0", 2));
    r.send(&hdr("0", 3));
    let later = ts(Nanos(r.now.0 + 10 * Nanos::PER_SEC));
    let out = r.send(&format!(
        "35=D|34=2|43=Y|49=TW|52={{T}}|56=ISLD|122={later}|11=A|21=3|40=1|54=1|55=INTC|60={{T}}|"
    ));
    assert_eq!(out.frames.len(), 2);
    assert_reject(&out.frames[0], 2, 10, None, "D");
    assert_eq!(mtype(&out.frames[1]), "5");
    assert_eq!(r.s.state(), SessionState::LogoutSent);
    assert!(r.app.seen.is_empty());
}

#[test]
fn case_2g_poss_dup_without_orig_sending_time_is_rejected_and_not_counted() {
    let mut r = Rig::logged_on(30);
    r.send(&hdr("0", 2));
    r.send(&hdr("0", 3));
    let out = r.send("35=D|34=2|43=Y|49=TW|52={T}|56=ISLD|11=A|21=3|40=1|54=1|55=INTC|60={T}|");
    assert_eq!(out.frames.len(), 1);
    assert_reject(&out.frames[0], 2, 1, Some("122"), "D");
    assert_eq!(r.expected(), 4);
    assert_eq!(r.s.state(), SessionState::Active);
}

#[test]
fn case_2h_expected_begin_string_is_accepted() {
    let mut r = Rig::logged_on(30);
    assert!(r.send(&hdr("0", 2)).frames.is_empty());
    assert_eq!(r.s.state(), SessionState::Active);
}

#[test]
fn case_2i_unexpected_begin_string_logs_out() {
    let mut r = Rig::logged_on(30);
    let body = format!("{}112=id|", hdr("1", 2))
        .replace("{T}", &ts(r.now))
        .replace('|', "\x01");
    let mut f = format!("8=FIX.4.1\x019={}\x01{}", body.len(), body).into_bytes();
    let sum = checksum(&f);
    f.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    let out = r.feed(&f);
    assert_eq!(out.frames.len(), 1);
    assert_eq!(
        get(&out.frames[0], 58).as_deref(),
        Some("Incorrect BeginString")
    );
    assert_eq!(r.s.state(), SessionState::LogoutSent);
    // The peer's Logout completes the handshake.
    let out = r.send(&hdr("5", 3));
    assert!(out.frames.is_empty());
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::LogoutComplete)
    );
}

#[test]
fn case_2j_matching_comp_ids_are_accepted() {
    let mut r = Rig::logged_on(30);
    assert!(r
        .send(&format!(
            "{}11=A|21=3|40=1|54=1|55=INTC|60={{T}}|",
            hdr("D", 2)
        ))
        .frames
        .is_empty());
    assert_eq!(r.app.seen.len(), 1);
}

#[test]
fn case_2k_comp_id_not_matching_profile_rejects_and_logs_out() {
    for body in [
        "35=D|34=2|49=WT|52={T}|56=ISLD|11=A|21=3|40=1|54=1|55=INTC|60={T}|",
        "35=D|34=2|49=TW|52={T}|56=DLSI|11=A|21=3|40=1|54=1|55=INTC|60={T}|",
    ] {
        let mut r = Rig::logged_on(30);
        let out = r.send(body);
        assert_eq!(out.frames.len(), 2);
        assert_reject(&out.frames[0], 2, 9, None, "D");
        assert_eq!(mtype(&out.frames[1]), "5");
        assert_eq!(get(&out.frames[1], 58), None, "QuickFIX/C++: no text");
        assert!(r.app.seen.is_empty());
    }
}

#[test]
fn case_2l_correct_body_length_is_accepted() {
    let mut r = Rig::logged_on(30);
    assert!(r.send(&hdr("0", 2)).frames.is_empty());
    assert_eq!(r.expected(), 3);
}

#[test]
fn case_2m_incorrect_body_length_is_ignored() {
    let mut r = Rig::logged_on(30);
    let good = String::from_utf8(msg(
        ms(3),
        &format!("{}11=A|21=3|40=1|54=1|55=INTC|60={{T}}|", hdr("D", 2)),
    ))
    .unwrap();
    let len_at = good.find("\x019=").unwrap() + 3;
    let len_end = len_at + good[len_at..].find('\x01').unwrap();
    let bad = format!("{}30{}", &good[..len_at], &good[len_end..]);
    assert!(r.feed(bad.as_bytes()).frames.is_empty());
    assert_eq!(r.expected(), 2);
    let out = r.send(&format!(
        "{}11=A|21=3|40=1|54=1|55=INTC|60={{T}}|",
        hdr("D", 3)
    ));
    assert_eq!(mtype(&out.frames[0]), "2", "gap at 2 asked again");
}

#[test]
fn case_2n_sending_time_within_range_is_accepted() {
    let mut r = Rig::logged_on(30);
    let t = ts(Nanos(r.now.0 - 119 * Nanos::PER_SEC));
    assert!(r
        .send(&format!("35=0|34=2|49=TW|52={t}|56=ISLD|"))
        .frames
        .is_empty());
    assert_eq!(r.expected(), 3);
}

#[test]
fn case_2o_sending_time_out_of_range_rejects_and_logs_out() {
    for offset in [-121i64, 121] {
        let mut r = Rig::logged_on(30);
        let t = ts(Nanos(
            (r.now.0 as i64 + offset * Nanos::PER_SEC as i64) as u64,
        ));
        let out = r.send(&format!("35=0|34=2|49=TW|52={t}|56=ISLD|"));
        assert_eq!(out.frames.len(), 2);
        assert_reject(&out.frames[0], 2, 10, None, "0");
        assert_eq!(mtype(&out.frames[1]), "5");
        // QuickFIX/J names the field.
        let mut cfg = acceptor_cfg();
        cfg.compat = Compat::QUICKFIXJ;
        let mut r = Rig::with(cfg);
        r.send(&format!("{}98=0|108=30|", hdr("A", 1)));
        let t = ts(Nanos(
            (r.now.0 as i64 + offset * Nanos::PER_SEC as i64) as u64,
        ));
        let out = r.send(&format!("35=0|34=2|49=TW|52={t}|56=ISLD|"));
        assert_reject(&out.frames[0], 2, 10, Some("52"), "0");
        assert_eq!(
            get(&out.frames[1], 58).as_deref(),
            Some("SendingTime accuracy problem, field=52")
        );
    }
}

#[test]
fn case_2p_valid_msg_type_is_accepted() {
    let mut r = Rig::logged_on(30);
    r.send(&format!(
        "{}11=A|21=3|40=1|54=1|55=INTC|60={{T}}|",
        hdr("D", 2)
    ));
    assert_eq!(r.app.seen, vec![("D".to_owned(), 2)]);
}

#[test]
fn case_2q_invalid_msg_type_violation_becomes_reject_11() {
    let mut r = Rig::logged_on(30);
    let f = msg(r.now, &hdr("*", 2));
    let out = violate(
        &mut r,
        &f,
        SessionRejectReason::InvalidMsgType,
        Some(35),
        None,
    );
    assert_reject(&out.frames[0], 2, 11, None, "*");
    assert_eq!(get(&out.frames[0], 58).as_deref(), Some("Invalid MsgType"));
    assert_eq!(r.expected(), 3);
}

#[test]
fn case_2r_unsupported_msg_type_gets_business_message_reject() {
    let mut r = Rig::logged_on(30);
    r.app.refuse.push(b"8");
    let out = r.send(&format!(
        "{}37=id|17=id|150=0|39=0|55=WLRI|54=1|151=100|14=0|6=0.0|",
        hdr("8", 2)
    ));
    let f = &out.frames[0];
    assert_eq!(mtype(f), "j");
    assert_eq!(
        tags_of(f),
        vec![8, 9, 35, 34, 49, 52, 56, 45, 58, 372, 380, 10]
    );
    assert_eq!(get(f, 58).as_deref(), Some("Unsupported Message Type"));
    assert_eq!(get(f, 372).as_deref(), Some("8"));
    assert_eq!(get(f, 380).as_deref(), Some("3"));
    assert_eq!(r.expected(), 3);
}

#[test]
fn case_2s_first_three_fields_in_order_are_accepted() {
    let mut r = Rig::logged_on(30);
    assert!(r.send(&hdr("0", 2)).frames.is_empty());
    assert_eq!(r.expected(), 3);
}

#[test]
fn case_2t_first_three_fields_out_of_order_are_ignored() {
    let mut r = Rig::logged_on(30);
    let body = "34=2|35=0|49=TW|52={T}|56=ISLD|"
        .replace("{T}", &ts(r.now))
        .replace('|', "\x01");
    let mut f = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
    let sum = checksum(&f);
    f.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    assert!(r.feed(&f).frames.is_empty());
    assert_eq!(r.expected(), 2);
    assert_eq!(r.s.counters().garbled_in, 1);
}

#[test]
fn case_2_missing_msg_seq_num_logs_out_and_disconnects() {
    let mut r = Rig::logged_on(30);
    let out = r.send("35=1|49=TW|52={T}|56=ISLD|112=TEST|");
    assert_eq!(
        get(&out.frames[0], 58).as_deref(),
        Some("Received message without MsgSeqNum")
    );
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::MissingMsgSeqNum)
    );
}

// ---------------------------------------------------------------- 3: trailer

#[test]
fn case_3_valid_checksum_is_accepted_and_invalid_or_garbled_ignored() {
    let mut r = Rig::logged_on(30);
    let mut bad = msg(ms(2), &hdr("0", 2));
    let n = bad.len();
    bad[n - 2] = if bad[n - 2] == b'9' {
        b'0'
    } else {
        bad[n - 2] + 1
    };
    assert!(r.feed(&bad).frames.is_empty());
    assert!(r.feed(b"garbage\x01more garbage\x01").frames.is_empty());
    assert_eq!(r.expected(), 2);
    assert!(r.send(&hdr("0", 2)).frames.is_empty());
    assert_eq!(r.expected(), 3);
    assert!(r.s.counters().garbled_in >= 2);
}

// ---------------------------------------------------------------- 4, 5, 6: heartbeats

#[test]
fn case_4a_no_data_sent_during_heart_bt_int_sends_heartbeat() {
    let mut r = Rig::logged_on(6);
    assert_eq!(
        r.s.next_deadline(),
        Some(Nanos(ms(1).0 + 6 * Nanos::PER_SEC))
    );
    assert!(r.tick(secs(5)).frames.is_empty());
    let out = r.tick(Nanos(ms(1).0 + 6 * Nanos::PER_SEC));
    assert_eq!(out.frames.len(), 1);
    assert_eq!(mtype(&out.frames[0]), "0");
    assert_eq!(get(&out.frames[0], 112), None);
}

#[test]
fn case_4b_test_request_is_answered_with_its_test_req_id() {
    let mut r = Rig::logged_on(30);
    let out = r.send(&format!("{}112=HELLO|", hdr("1", 2)));
    assert_eq!(mtype(&out.frames[0]), "0");
    assert_eq!(get(&out.frames[0], 112).as_deref(), Some("HELLO"));
    assert_eq!(r.expected(), 3);
}

#[test]
fn case_5_valid_heartbeat_is_accepted() {
    let mut r = Rig::logged_on(30);
    assert!(r.send(&format!("{}112=X|", hdr("0", 2))).frames.is_empty());
    assert_eq!(r.expected(), 3);
}

#[test]
fn case_6_silence_sends_test_request_then_disconnects() {
    let mut r = Rig::logged_on(10);
    let last = r.now;
    // 12 s of silence: TestRequest (a heartbeat went out at 10 s).
    let out = r.tick(Nanos(last.0 + 10 * Nanos::PER_SEC));
    assert_eq!(mtype(&out.frames[0]), "0");
    let out = r.tick(Nanos(last.0 + 12 * Nanos::PER_SEC));
    assert_eq!(mtype(&out.frames[0]), "1");
    assert_eq!(get(&out.frames[0], 112).as_deref(), Some("TEST"));
    // No heartbeat while the TestRequest is out; disconnect at 24 s of silence.
    assert!(r
        .tick(Nanos(last.0 + 23 * Nanos::PER_SEC))
        .frames
        .is_empty());
    let out = r.tick(Nanos(last.0 + 24 * Nanos::PER_SEC));
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::HeartbeatTimeout)
    );
}

#[test]
fn case_6_answer_to_test_request_keeps_the_session() {
    let mut r = Rig::logged_on(10);
    let last = r.now;
    r.tick(Nanos(last.0 + 12 * Nanos::PER_SEC));
    r.now = Nanos(last.0 + 13 * Nanos::PER_SEC);
    r.send(&format!("{}112=TEST|", hdr("0", 2)));
    let out = r.tick(Nanos(last.0 + 24 * Nanos::PER_SEC));
    assert!(!out.disconnected());
    assert_eq!(r.s.state(), SessionState::Active);
}

// ---------------------------------------------------------------- 7: Reject received

#[test]
fn case_7_reject_received_increments_msg_seq_num() {
    let mut r = Rig::logged_on(30);
    assert!(r.send(&format!("{}45=1|", hdr("3", 2))).frames.is_empty());
    assert_eq!(r.expected(), 3);
}

// ---------------------------------------------------------------- 8: ResendRequest received

/// A session that sent: 1 Logon, 2 Heartbeat, 3 D, 4 D, 5 Heartbeat, 6 D.
fn rig_with_history() -> Rig {
    let mut r = Rig::logged_on(30);
    r.send(&format!("{}112=a|", hdr("1", 2)));
    r.app_send("11=A|54=1|");
    r.app_send("11=B|54=2|");
    r.send(&format!("{}112=b|", hdr("1", 3)));
    r.app_send("11=C|54=1|");
    assert_eq!(r.s.store().next_sender_seq(), 7);
    r
}

#[test]
fn case_8a_resend_of_admin_messages_only_is_one_gap_fill() {
    let mut r = Rig::logged_on(30);
    r.send(&format!("{}112=a|", hdr("1", 2)));
    r.send(&format!("{}112=b|", hdr("1", 3)));
    let out = r.send(&format!("{}7=1|16=3|", hdr("2", 4)));
    assert_eq!(out.frames.len(), 1);
    let f = &out.frames[0];
    assert_eq!(
        tags_of(f),
        vec![8, 9, 35, 34, 43, 49, 52, 56, 122, 36, 123, 10]
    );
    assert_eq!(seq_of(f), 1);
    assert_eq!(get(f, 36).as_deref(), Some("4"));
    assert_eq!(get(f, 123).as_deref(), Some("Y"));
    assert_eq!(
        r.s.store().next_sender_seq(),
        4,
        "resend uses no new number"
    );
}

#[test]
fn case_8b_resend_of_application_messages_has_poss_dup_and_orig_sending_time() {
    let mut r = rig_with_history();
    let out = r.send(&format!("{}7=3|16=4|", hdr("2", 4)));
    assert_eq!(out.frames.len(), 2);
    for (f, (seq, id)) in out.frames.iter().zip([(3, "A"), (4, "B")]) {
        assert_eq!(
            tags_of(f),
            vec![8, 9, 35, 34, 43, 49, 52, 56, 122, 11, 54, 10]
        );
        assert_eq!(seq_of(f), seq);
        assert_eq!(get(f, 43).as_deref(), Some("Y"));
        assert_eq!(get(f, 11).as_deref(), Some(id));
    }
}

#[test]
fn case_8c_resend_of_mixed_range_gap_fills_admin_and_resends_application() {
    let mut r = rig_with_history();
    let out = r.send(&format!("{}7=1|16=0|", hdr("2", 4)));
    let got: Vec<(String, u64, Option<String>)> = out
        .frames
        .iter()
        .map(|f| (mtype(f), seq_of(f), get(f, 36)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("4".to_owned(), 1, Some("3".to_owned())),
            ("D".to_owned(), 3, None),
            ("D".to_owned(), 4, None),
            ("4".to_owned(), 5, Some("6".to_owned())),
            ("D".to_owned(), 6, None),
        ]
    );
    assert_eq!(r.s.counters().messages_resent, 3);
    assert_eq!(r.s.counters().gap_fills_sent, 2);
}

#[test]
fn case_8_resend_is_served_in_bounded_batches() {
    let mut cfg = acceptor_cfg();
    cfg.resend_batch_max = 2;
    let mut r = Rig::with(cfg);
    r.send(&format!("{}98=0|108=30|", hdr("A", 1)));
    for _ in 0..5 {
        r.app_send("11=A|");
    }
    let out = r.send(&format!("{}7=2|16=0|", hdr("2", 2)));
    assert_eq!(out.frames.len(), 2);
    assert_eq!(r.s.next_deadline(), Some(r.now), "more to do now");
    let out = r.tick(r.now);
    assert_eq!(
        out.frames.iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
        vec![4, 5]
    );
    let out = r.tick(r.now);
    assert_eq!(
        out.frames.iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
        vec![6]
    );
    assert!(r.s.next_deadline() > Some(r.now));
}

#[test]
fn case_8_messages_no_longer_in_the_store_are_gap_filled() {
    let mut r = Rig::with(acceptor_cfg());
    r.s = Session::new(
        acceptor_cfg(),
        MemoryStore::new(
            MemoryStoreLimits {
                max_messages: 2,
                max_message_bytes: 1024,
            },
            T0,
        ),
        Arc::new(Validator::fix44()),
    );
    let mut out = CollectOutbox::default();
    r.s.on_connected(r.now, &mut out);
    r.send(&format!("{}98=0|108=30|", hdr("A", 1)));
    for _ in 0..4 {
        r.app_send("11=A|");
    }
    let out = r.send(&format!("{}7=1|16=0|", hdr("2", 2)));
    let got: Vec<(String, u64)> = out.frames.iter().map(|f| (mtype(f), seq_of(f))).collect();
    assert_eq!(
        got,
        vec![
            ("4".to_owned(), 1),
            ("D".to_owned(), 4),
            ("D".to_owned(), 5)
        ]
    );
    assert_eq!(get(&out.frames[0], 36).as_deref(), Some("4"));
}

// ---------------------------------------------------------------- 10: SequenceReset-GapFill

#[test]
fn case_10a_gap_fill_with_seq_too_high_sends_resend_request() {
    let mut r = Rig::logged_on(30);
    let out = r.send(&format!("{}36=20|123=Y|", hdr("4", 10)));
    assert_eq!(mtype(&out.frames[0]), "2");
    assert_eq!(get(&out.frames[0], 7).as_deref(), Some("2"));
    assert_eq!(r.expected(), 2);
}

#[test]
fn case_10b_gap_fill_with_expected_seq_sets_next_expected() {
    let mut r = Rig::logged_on(30);
    assert!(r
        .send(&format!("{}36=20|123=Y|", hdr("4", 2)))
        .frames
        .is_empty());
    assert_eq!(r.expected(), 20);
    let out = r.send(&format!("{}112=HELLO|", hdr("1", 20)));
    assert_eq!(get(&out.frames[0], 112).as_deref(), Some("HELLO"));
}

#[test]
fn case_10c_gap_fill_with_seq_too_low_and_poss_dup_is_ignored() {
    let mut r = Rig::logged_on(30);
    let out = r.send("35=4|34=1|43=Y|49=TW|52={T}|56=ISLD|122={T}|36=20|123=Y|");
    assert!(out.frames.is_empty());
    assert_eq!(r.expected(), 2);
}

#[test]
fn case_10d_gap_fill_with_seq_too_low_without_poss_dup_logs_out() {
    let mut r = Rig::logged_on(30);
    r.send(&hdr("0", 2));
    let out = r.send(&format!("{}36=20|123=Y|", hdr("4", 1)));
    assert_eq!(
        get(&out.frames[0], 58).as_deref(),
        Some("MsgSeqNum too low, expecting 3 but received 1")
    );
    assert!(out.disconnected());
}

// ---------------------------------------------------------------- 11: SequenceReset-Reset

#[test]
fn case_11a_reset_with_new_seq_no_greater_sets_next_expected() {
    let mut r = Rig::logged_on(30);
    assert!(r.send(&format!("{}36=25|", hdr("4", 0))).frames.is_empty());
    assert_eq!(r.expected(), 25);
    assert!(r
        .send(&format!("{}36=50|123=N|", hdr("4", 0)))
        .frames
        .is_empty());
    assert_eq!(r.expected(), 50);
}

#[test]
fn case_11b_reset_with_new_seq_no_equal_changes_nothing() {
    let mut r = Rig::logged_on(30);
    assert!(r.send(&format!("{}36=2|", hdr("4", 0))).frames.is_empty());
    assert_eq!(r.expected(), 2);
}

#[test]
fn case_11c_reset_with_new_seq_no_lower_is_rejected_value_incorrect() {
    let mut r = Rig::logged_on(30);
    let out = r.send(&format!("{}36=1|", hdr("4", 0)));
    assert_reject(&out.frames[0], 0, 5, None, "4");
    assert_eq!(r.expected(), 2, "a SequenceReset is not counted");
    let mut cfg = acceptor_cfg();
    cfg.compat = Compat::QUICKFIXJ;
    let mut r = Rig::with(cfg);
    r.send(&format!("{}98=0|108=30|", hdr("A", 1)));
    let out = r.send(&format!("{}36=1|", hdr("4", 0)));
    assert_reject(&out.frames[0], 0, 5, Some("36"), "4");
}

// ---------------------------------------------------------------- 12, 13: Logout

#[test]
fn case_12_initiated_logout_waits_for_the_answer_then_disconnects() {
    let mut r = Rig::logged_on(30);
    let mut out = CollectOutbox::default();
    r.s.logout(r.now, Some(b"bye"), &mut out);
    assert_eq!(mtype(&out.frames[0]), "5");
    assert_eq!(get(&out.frames[0], 58).as_deref(), Some("bye"));
    assert_eq!(r.s.state(), SessionState::LogoutSent);
    let out = r.send(&hdr("5", 2));
    assert!(out.frames.is_empty(), "an answer is not answered");
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::LogoutComplete)
    );
}

#[test]
fn case_12_unanswered_logout_times_out() {
    let mut r = Rig::logged_on(30);
    let mut out = CollectOutbox::default();
    let at = r.now;
    r.s.logout(at, None, &mut out);
    assert!(!r.tick(Nanos(at.0 + 1_999 * Nanos::PER_MS)).disconnected());
    let out = r.tick(Nanos(at.0 + 2_000 * Nanos::PER_MS));
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::LogoutTimeout)
    );
}

#[test]
fn case_13a_logout_in_answer_to_ours_disconnects() {
    let mut r = Rig::logged_on(30);
    let mut out = CollectOutbox::default();
    r.s.logout(r.now, None, &mut out);
    let out = r.send(&hdr("5", 2));
    assert!(out.frames.is_empty());
    assert!(out.disconnected());
}

#[test]
fn case_13b_unsolicited_logout_is_answered_then_disconnects() {
    let mut r = Rig::logged_on(30);
    let out = r.send(&hdr("5", 2));
    assert_eq!(out.frames.len(), 1);
    assert_eq!(mtype(&out.frames[0]), "5");
    assert_eq!(seq_of(&out.frames[0]), 2);
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::LogoutComplete)
    );
}

// ---------------------------------------------------------------- 14: dictionary violations

/// Feeds `frame` to the session as the validator would have judged it.
fn violate(
    r: &mut Rig,
    frame: &[u8],
    reason: SessionRejectReason,
    ref_tag: Option<u32>,
    ref_field: Option<usize>,
) -> CollectOutbox {
    let mut out = CollectOutbox::default();
    let mut dec = Decoder::new(64);
    let m = dec.decode(frame).expect("decodes");
    let seq = m.seq_num().expect("seq");
    let v = Violation {
        reason,
        ref_tag,
        ref_field,
        text: reject_text(reason),
    };
    r.s.core.on_violation(r.now, &mut out, &m, seq, v);
    out
}

fn case_14(reason: SessionRejectReason, body: &str, ref_tag: u32, code: u32) {
    let mut r = Rig::logged_on(30);
    let f = msg(r.now, &format!("{}{body}", hdr("D", 2)));
    let out = violate(&mut r, &f, reason, Some(ref_tag), None);
    assert_eq!(out.frames.len(), 1);
    assert_reject(&out.frames[0], 2, code, Some(&ref_tag.to_string()), "D");
    assert_eq!(
        tags_of(&out.frames[0]),
        vec![8, 9, 35, 34, 49, 52, 56, 45, 58, 371, 372, 373, 10]
    );
    assert_eq!(r.expected(), 3, "the rejected message is counted");
    assert_eq!(r.s.state(), SessionState::Active);
}

#[test]
fn case_14a_undefined_tag_is_rejected_invalid_tag_number() {
    case_14(SessionRejectReason::InvalidTagNumber, "999=HI|", 999, 0);
    // An unparseable tag is named as received.
    let mut r = Rig::logged_on(30);
    let f = msg(r.now, &format!("{}-1=HI|", hdr("0", 2)));
    let out = violate(
        &mut r,
        &f,
        SessionRejectReason::InvalidTagNumber,
        None,
        Some(7),
    );
    assert_eq!(get(&out.frames[0], 371).as_deref(), Some("-1"));
}

#[test]
fn case_14b_required_tag_missing_is_rejected() {
    case_14(SessionRejectReason::RequiredTagMissing, "21=3|", 11, 1);
}

#[test]
fn case_14c_tag_not_defined_for_msg_type_is_rejected() {
    case_14(
        SessionRejectReason::TagNotDefinedForMsgType,
        "11=A|108=3|",
        108,
        2,
    );
}

#[test]
fn case_14d_tag_without_value_is_rejected() {
    case_14(SessionRejectReason::TagSpecifiedWithoutValue, "11=|", 11, 4);
}

#[test]
fn case_14e_incorrect_enum_value_is_rejected() {
    case_14(SessionRejectReason::ValueIncorrect, "11=A|21=4|", 21, 5);
}

#[test]
fn case_14f_incorrect_data_format_is_rejected() {
    case_14(
        SessionRejectReason::IncorrectDataFormat,
        "11=A|38=+200|",
        38,
        6,
    );
}

#[test]
fn case_14g_header_body_trailer_out_of_order_is_rejected() {
    case_14(
        SessionRejectReason::TagSpecifiedOutOfRequiredOrder,
        "11=A|",
        34,
        14,
    );
}

#[test]
fn case_14h_repeated_tag_is_rejected() {
    case_14(
        SessionRejectReason::TagAppearsMoreThanOnce,
        "11=A|40=1|40=2|",
        40,
        13,
    );
}

#[test]
fn case_14i_wrong_num_in_group_count_is_rejected() {
    case_14(
        SessionRejectReason::IncorrectNumInGroupCount,
        "11=A|386=3|336=X|",
        386,
        16,
    );
}

#[test]
fn case_14j_repeating_group_members_out_of_order_are_rejected() {
    case_14(
        SessionRejectReason::RepeatingGroupFieldsOutOfOrder,
        "11=A|78=1|80=5|79=a|",
        80,
        15,
    );
}

#[test]
fn case_14k_soh_in_non_data_value_is_rejected() {
    case_14(
        SessionRejectReason::NonDataValueIncludesFieldDelimiter,
        "11=A|",
        11,
        17,
    );
}

#[test]
fn case_14l_decryption_problem_is_rejected() {
    case_14(SessionRejectReason::DecryptionProblem, "11=A|", 91, 7);
}

#[test]
fn case_14m_signature_problem_is_rejected() {
    case_14(SessionRejectReason::SignatureProblem, "11=A|", 89, 8);
}

#[test]
fn case_14n_xml_validation_error_is_rejected() {
    case_14(SessionRejectReason::XmlValidationError, "11=A|", 213, 12);
}

#[test]
fn case_14_reject_reverses_routing_fields_and_skips_empty_ones() {
    let mut r = Rig::logged_on(30);
    let f = msg(
        r.now,
        &format!(
            "{}115=JCD|116=CS|144=|11=A|21=3|40=w|54=1|55=INTC|60={{T}}|",
            hdr("D", 2)
        ),
    );
    let out = violate(
        &mut r,
        &f,
        SessionRejectReason::ValueIncorrect,
        Some(40),
        None,
    );
    let t = tags_of(&out.frames[0]);
    assert_eq!(
        t,
        vec![8, 9, 35, 34, 49, 52, 56, 128, 129, 45, 58, 371, 372, 373, 10]
    );
    assert_eq!(get(&out.frames[0], 128).as_deref(), Some("JCD"));
    assert_eq!(get(&out.frames[0], 129).as_deref(), Some("CS"));
}

#[test]
fn case_14_violation_in_a_logon_is_not_answered() {
    let mut r = Rig::acceptor();
    let f = msg(r.now, &format!("{}98=0|108=x|", hdr("A", 1)));
    let out = violate(
        &mut r,
        &f,
        SessionRejectReason::IncorrectDataFormat,
        Some(108),
        None,
    );
    assert!(out.frames.is_empty());
    assert!(out.disconnected());
}

// ---------------------------------------------------------------- 16: outgoing while down

#[test]
fn case_16_application_messages_are_refused_until_logged_on_without_using_a_number() {
    let mut s = session(acceptor_cfg());
    let mut out = CollectOutbox::default();
    assert_eq!(
        s.send_app(
            T0,
            b"D",
            |e| {
                e.str(11, b"A");
            },
            &mut out
        ),
        Err(SendError::NotLoggedOn)
    );
    assert!(out.frames.is_empty());
    assert_eq!(s.store().next_sender_seq(), 1);
    // A message too large for the encoder uses no number either.
    let mut r = Rig::logged_on(30);
    let big = vec![b'x'; 20_000];
    let mut out = CollectOutbox::default();
    let before = r.s.store().next_sender_seq();
    let res = r.s.send_app(
        r.now,
        b"D",
        |e| {
            e.str(58, &big);
        },
        &mut out,
    );
    assert!(matches!(res, Err(SendError::TooLarge { .. })));
    assert_eq!(r.s.store().next_sender_seq(), before);
}

// ---------------------------------------------------------------- 19: PossResend

#[test]
fn case_19a_poss_resend_already_seen_is_not_echoed_twice() {
    let mut r = Rig::logged_on(30);
    let mut echo = EchoApp::acceptance();
    let mut go = |r: &mut Rig, body: String| {
        r.now = Nanos(r.now.0 + Nanos::PER_MS);
        let f = msg(r.now, &body);
        let mut out = CollectOutbox::default();
        r.s.on_input(r.now, &f, &mut echo, &mut out);
        out
    };
    let out = go(
        &mut r,
        format!("{}11=id|21=3|40=1|54=1|55=MSFT|60={{T}}|", hdr("D", 2)),
    );
    assert_eq!(out.frames.len(), 1);
    let out = go(
        &mut r,
        "35=D|34=3|49=TW|52={T}|56=ISLD|97=Y|11=id|21=3|40=1|54=1|55=MSFT|60={T}|".to_owned(),
    );
    assert!(out.frames.is_empty());
    assert_eq!(r.expected(), 4, "the PossResend copy is still counted");
}

#[test]
fn case_19b_poss_resend_not_seen_is_processed_and_keeps_97() {
    let mut r = Rig::logged_on(30);
    let mut echo = EchoApp::acceptance();
    r.now = Nanos(r.now.0 + Nanos::PER_MS);
    let f = msg(
        r.now,
        "35=D|34=2|49=TW|52={T}|56=ISLD|97=Y|55=MSFT|11=id|54=1|40=1|60={T}|",
    );
    let mut out = CollectOutbox::default();
    r.s.on_input(r.now, &f, &mut echo, &mut out);
    assert_eq!(
        tags_of(&out.frames[0]),
        vec![8, 9, 35, 34, 49, 52, 56, 97, 11, 40, 54, 55, 60, 10]
    );
}

// ---------------------------------------------------------------- 20: simultaneous resend

#[test]
fn case_20_resend_request_is_served_while_our_own_is_outstanding() {
    let mut r = Rig::logged_on(30);
    r.send(&format!(
        "{}11=A|21=3|40=1|54=1|55=INTC|60={{T}}|",
        hdr("D", 2)
    ));
    r.app_send("11=A|");
    r.app_send("11=B|");
    let out = r.send(&hdr("0", 7));
    assert_eq!(mtype(&out.frames[0]), "2", "our ResendRequest for 3..");
    let out = r.send(&format!("{}7=2|16=3|", hdr("2", 8)));
    let seqs: Vec<(String, u64)> = out.frames.iter().map(|f| (mtype(f), seq_of(f))).collect();
    assert_eq!(seqs, vec![("D".to_owned(), 2), ("D".to_owned(), 3)]);
    for seq in 3..7 {
        r.send(&format!(
            "35=0|34={seq}|43=Y|49=TW|52={{T}}|56=ISLD|122={{T}}|"
        ));
    }
    assert_eq!(
        r.expected(),
        8,
        "7 came out of the queue; 8 was never queued"
    );
    let out = r.send(&hdr("5", 8));
    assert_eq!(mtype(&out.frames[0]), "5");
}

// ---------------------------------------------------------------- resets and restarts

#[test]
fn reset_seq_num_flag_while_logged_on_starts_a_new_session() {
    let mut r = Rig::logged_on(30);
    for seq in 2..10 {
        r.send(&hdr("0", seq));
    }
    let out = r.send(&format!("{}98=0|108=30|141=Y|", hdr("A", 1)));
    assert_eq!(mtype(&out.frames[0]), "A");
    assert_eq!(seq_of(&out.frames[0]), 1);
    assert_eq!(get(&out.frames[0], 141).as_deref(), Some("Y"));
    let out = r.send(&format!("{}112=1|", hdr("1", 2)));
    assert_eq!(seq_of(&out.frames[0]), 2);
}

#[test]
fn sequence_numbers_survive_a_restart_through_the_store() {
    let mut cfg = acceptor_cfg();
    cfg.reset_on_logon = false;
    let mut r = Rig::with(cfg.clone());
    r.send(&format!("{}98=0|108=30|", hdr("A", 1)));
    r.send(&hdr("0", 2));
    r.app_send("11=A|");
    let store = std::mem::replace(&mut r.s, session(cfg.clone())).into_store();
    assert_eq!((store.next_sender_seq(), store.next_target_seq()), (3, 3));
    // A new process with the same store carries on where the old one stopped.
    let mut s2 = Session::new(cfg, store, Arc::new(Validator::fix44()));
    let mut out = CollectOutbox::default();
    s2.on_connected(secs(60), &mut out);
    let logon = msg(secs(60), &format!("{}98=0|108=30|", hdr("A", 3)));
    s2.on_input(secs(60), &logon, &mut NullApp, &mut out);
    assert_eq!(
        seq_of(&out.frames[0]),
        3,
        "our Logon continues the numbering"
    );
    assert_eq!(s2.store().next_target_seq(), 4);
    // And the old application message can still be resent.
    let rr = msg(secs(60), &format!("{}7=2|16=0|", hdr("2", 4)));
    let mut out = CollectOutbox::default();
    s2.on_input(secs(60), &rr, &mut NullApp, &mut out);
    assert_eq!(mtype(&out.frames[0]), "D");
    assert_eq!(seq_of(&out.frames[0]), 2);
}

#[test]
fn partial_frames_are_left_for_the_next_read() {
    let mut r = Rig::logged_on(30);
    let f = msg(ms(9), &format!("{}112=X|", hdr("1", 2)));
    let mut out = CollectOutbox::default();
    let used = r.s.on_input(ms(9), &f[..10], &mut r.app, &mut out);
    assert_eq!(used, 0);
    let used = r.s.on_input(ms(9), &f, &mut r.app, &mut out);
    assert_eq!(used, f.len());
    assert_eq!(out.frames.len(), 1);
}

#[test]
fn a_declared_length_past_the_limit_disconnects() {
    let mut r = Rig::logged_on(30);
    let out = r.feed(b"8=FIX.4.4\x019=99999999999\x0135=0\x01");
    assert_eq!(
        disconnect_reason(&out),
        Some(DisconnectReason::MessageTooLarge)
    );
    assert_eq!(r.s.counters().too_large_in, 1);
}

#[test]
fn input_after_a_disconnect_is_ignored() {
    let mut r = Rig::logged_on(30);
    r.send(&hdr("5", 2));
    assert_eq!(r.s.state(), SessionState::Disconnected);
    let out = r.send(&format!("{}112=X|", hdr("1", 3)));
    assert!(out.frames.is_empty());
    assert_eq!(r.s.next_deadline(), None);
}

#[test]
fn a_reply_too_large_for_the_limit_is_counted_not_sent() {
    let mut r = Rig::logged_on(30);
    let id = "x".repeat(16_300);
    let out = r.send(&format!("{}112={id}|", hdr("1", 2)));
    assert!(
        out.frames.is_empty(),
        "{:?} {}",
        out.events,
        show(&out.frames[0])
    );
    assert_eq!(r.s.counters().admin_too_large, 1);
    assert_eq!(r.s.store().next_sender_seq(), 2, "no number used");
    assert_eq!(r.expected(), 3);
}

#[test]
fn large_sequence_numbers_are_followed() {
    let mut r = Rig::logged_on(30);
    let out = r.send(&format!("{}36=2147483000|", hdr("4", 0)));
    assert!(out.frames.is_empty(), "{}", show(&out.frames[0]));
    assert_eq!(r.expected(), 2_147_483_000);
    let out = r.send(&format!("{}112=X|", hdr("1", 2_147_483_000)));
    assert_eq!(get(&out.frames[0], 112).as_deref(), Some("X"));
    let out = r.send(&hdr("0", 1));
    assert!(out.disconnected(), "too low");
}

#[test]
fn the_header_cache_gives_the_same_bytes_as_formatting_across_digit_rollovers() {
    let sender = b"49=ROUTER\x01";
    let target = b"56=D1\x01";
    let mut cache = HeaderCache::EMPTY;
    let mut enc = Encoder::new(1024);
    let mut cached = 0;
    // Same millisecond throughout, then a new one: hits, misses on 9 -> 10, 99 -> 100, and on
    // the new millisecond, gaps and repeats; every header must equal a fresh formatting.
    for (seq, at) in (1..=120u64).map(|s| (s, ms(5))).chain([
        (121, ms(6)),
        (123, ms(6)),
        (123, ms(6)),
        (124, ms(6)),
    ]) {
        let want = {
            enc.start(b"R").session_header(seq, sender, at, target);
            enc.body()[5..].to_vec()
        };
        let got = match cache.next(seq, at.as_millis()) {
            Some(h) => {
                cached += 1;
                h.to_vec()
            }
            None => {
                cache.keep(&want, seq, at.as_millis());
                want.clone()
            }
        };
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "seq {seq}"
        );
    }
    assert!(cached >= 110, "the cache was used ({cached} hits)");
}
