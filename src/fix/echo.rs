//! The echo application the QuickFIX acceptance scripts expect behind the acceptor.
//!
//! Owns one behaviour: an application message of a supported type comes back on the same
//! session, with the peer's extra header fields (PossResend 97, routing) kept, the body in
//! ascending tag order and each repeating group kept whole, in its order, under its NumInGroup
//! field. A PossResend (97=Y) copy of an order already seen (same ClOrdID) is not echoed twice.
//! Other types are refused with `UnsupportedMsgType` (the session turns that into a
//! BusinessMessageReject). It must not do anything a real application would: no order state,
//! no routing. Its memory is bounded: a fixed ring of recent ClOrdIDs and one reused index.

use super::encode::Encoder;
use super::message::Message;
use super::session::{AppOutcome, Application, Reply};
use super::tags;

/// Header fields the session writes itself; everything else in the peer's header is echoed.
fn session_owned_header_tag(tag: u32) -> bool {
    matches!(
        tag,
        tags::BEGIN_STRING
            | tags::BODY_LENGTH
            | tags::MSG_TYPE
            | tags::MSG_SEQ_NUM
            | tags::SENDER_COMP_ID
            | tags::TARGET_COMP_ID
            | tags::SENDING_TIME
            | tags::POSS_DUP_FLAG
            | tags::ORIG_SENDING_TIME
            | tags::CHECK_SUM
    )
}

/// Header tags other than the session's, which the echo copies in front of the body.
fn other_header_tag(tag: u32) -> bool {
    matches!(
        tag,
        115 | 128
            | 90
            | 91
            | 50
            | 142
            | 57
            | 143
            | 116
            | 144
            | 129
            | 145
            | 97
            | 212
            | 213
            | 347
            | 369
            | 627
            | 628
            | 629
            | 630
    )
}

/// How many recent ClOrdIDs are remembered for the PossResend check.
pub const SEEN_CAPACITY: usize = 1024;
/// Longest ClOrdID remembered (longer ones are compared on their first bytes).
const ID_CAP: usize = 64;

/// Echo application; see the module documentation.
pub struct EchoApp {
    /// Message types echoed; the rest are refused as unsupported.
    echoed_types: Vec<Vec<u8>>,
    /// Leave out NumInGroup fields whose value is 0 (QuickFIX/J writes no empty group).
    pub drop_empty_groups: bool,
    seen: Box<[([u8; ID_CAP], u8)]>,
    seen_next: usize,
    order: Vec<u16>,
    /// Messages echoed.
    pub echoed: u64,
    /// PossResend copies not echoed because they were already seen.
    pub duplicates_suppressed: u64,
    /// Echoes the session refused to send (too large, not logged on).
    pub send_failures: u64,
}

impl Default for EchoApp {
    fn default() -> Self {
        EchoApp::acceptance()
    }
}

impl EchoApp {
    /// Echoes exactly `types`.
    pub fn new(types: &[&[u8]]) -> EchoApp {
        EchoApp {
            echoed_types: types.iter().map(|t| t.to_vec()).collect(),
            drop_empty_groups: false,
            seen: vec![([0u8; ID_CAP], 0u8); SEEN_CAPACITY].into_boxed_slice(),
            seen_next: 0,
            order: Vec::with_capacity(1024),
            echoed: 0,
            duplicates_suppressed: 0,
            send_failures: 0,
        }
    }

    /// What QuickFIX's acceptance-test application handles: NewOrderSingle (D) and
    /// SecurityDefinition (d). Everything else is an unsupported message type.
    pub fn acceptance() -> EchoApp {
        EchoApp::new(&[b"D", b"d"])
    }

    fn key(id: &[u8]) -> ([u8; ID_CAP], u8) {
        let n = id.len().min(ID_CAP);
        let mut k = [0u8; ID_CAP];
        k[..n].copy_from_slice(&id[..n]);
        (k, n as u8)
    }

    fn seen_before(&self, id: &[u8]) -> bool {
        let k = Self::key(id);
        self.seen.iter().any(|s| s.1 > 0 && *s == k)
    }

    fn remember(&mut self, id: &[u8]) {
        if id.is_empty() || self.seen_before(id) {
            return;
        }
        self.seen[self.seen_next] = Self::key(id);
        self.seen_next = (self.seen_next + 1) % self.seen.len();
    }

    /// Fills `order` with field indices: the peer's extra header fields in ascending tag
    /// order, then top-level body fields in ascending tag order, each followed by its group
    /// members in wire order.
    fn plan(&mut self, msg: &Message<'_>) {
        self.order.clear();
        let refs = msg.field_refs();
        let mut header_len = 0;
        for (i, r) in refs.iter().enumerate() {
            if r.depth == 0 && other_header_tag(r.tag) && !session_owned_header_tag(r.tag) {
                self.order.push(i as u16);
                header_len += 1;
            }
        }
        let mut i = 0;
        while i < refs.len() {
            let r = &refs[i];
            if r.depth == 0
                && !session_owned_header_tag(r.tag)
                && !other_header_tag(r.tag)
                && r.tag != 0
            {
                self.order.push(i as u16);
            }
            i += 1;
        }
        self.order[..header_len].sort_by_key(|&i| refs[i as usize].tag);
        self.order[header_len..].sort_by_key(|&i| refs[i as usize].tag);
    }
}

impl Application for EchoApp {
    fn on_message(&mut self, msg: &Message<'_>, reply: &mut Reply<'_>) -> AppOutcome {
        let msg_type = msg.msg_type();
        if !self.echoed_types.iter().any(|t| t.as_slice() == msg_type) {
            return AppOutcome::UnsupportedMsgType;
        }
        if let Some(id) = msg.get(tags::CL_ORD_ID) {
            if msg.flag(tags::POSS_RESEND) && self.seen_before(id) {
                self.duplicates_suppressed += 1;
                return AppOutcome::Accepted;
            }
            self.remember(id);
        }
        self.plan(msg);
        let refs = msg.field_refs();
        let order = &self.order;
        let drop_empty = self.drop_empty_groups;
        let mut fill = |e: &mut Encoder| {
            for &i in order {
                let i = i as usize;
                let r = &refs[i];
                let value = msg.value_of(r);
                // Group members follow their NumInGroup field, in wire order.
                let mut j = i + 1;
                let mut members = 0;
                while j < refs.len() && refs[j].depth > r.depth {
                    members += 1;
                    j += 1;
                }
                if drop_empty && members == 0 && value == b"0" && is_count_like(r.tag) {
                    continue;
                }
                e.str(r.tag, value);
                for m in &refs[i + 1..j] {
                    e.str(m.tag, msg.value_of(m));
                }
            }
        };
        match reply.send(msg_type, &mut fill) {
            Ok(_) => self.echoed += 1,
            Err(_) => self.send_failures += 1,
        }
        AppOutcome::Accepted
    }
}

/// NumInGroup fields of FIX 4.4 are named No*; without the dictionary at hand the echo
/// recognises an empty group as a top-level field whose value is `0` and which the
/// validator marked as having no members. This lists the NumInGroup tags the acceptance
/// scripts use with a zero count, plus the common ones.
fn is_count_like(tag: u32) -> bool {
    matches!(
        tag,
        73 | 78
            | 146
            | 199
            | 215
            | 232
            | 267
            | 268
            | 295
            | 382
            | 386
            | 453
            | 454
            | 455
            | 473
            | 539
            | 555
            | 576
            | 604
            | 627
            | 711
            | 768
            | 802
            | 864
            | 870
            | 957
            | 1116
    )
}
