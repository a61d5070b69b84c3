//! The echo application the QuickFIX acceptance scripts expect behind the acceptor.
//!
//! Owns one behaviour: an application message of a supported type comes back on the same
//! session, with the peer's extra header fields (PossResend 97, routing) kept, the body in
//! ascending tag order and each repeating group kept whole, in its order, under its NumInGroup
//! field. A PossResend (97=Y) copy of an order already seen (same ClOrdID) is not echoed twice.
//! Other types are refused with `UnsupportedMsgType` (the session turns that into a
//! BusinessMessageReject). It must not do anything a real application would: no order state,
//! no routing. Its memory is bounded: a fixed ring of recent ClOrdIDs and one reused index.

use std::sync::Arc;

use super::dict::{Fix44Dict, NO_SCOPE};
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
    dict: Arc<Fix44Dict>,
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
            dict: Fix44Dict::shared(),
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
        let dict = &self.dict;
        let body_scope = dict.msg_type_id(msg_type).map(|id| dict.body(id));
        let is_num_in_group = |tag: u32| {
            body_scope
                .and_then(|scope| dict.member(scope, tag))
                .is_some_and(|(_, m)| m.group != NO_SCOPE)
        };
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
                if drop_empty && members == 0 && value == b"0" && is_num_in_group(r.tag) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::frame::{checksum, SOH};
    use crate::fix::session::{CollectOutbox, Session, SessionConfig};
    use crate::fix::store::{MemoryStore, MemoryStoreLimits};
    use crate::fix::validate::Validator;
    use crate::time::{format_utc_timestamp_ms, Nanos};

    const T0: Nanos = Nanos(1_717_243_200 * Nanos::PER_SEC);

    fn frame(body: &str) -> Vec<u8> {
        let mut b = [0u8; 21];
        let t = String::from_utf8_lossy(&format_utc_timestamp_ms(T0, &mut b)[..17]).into_owned();
        let body = body.replace("{T}", &t).replace('|', "\x01");
        let mut out = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
        let sum = checksum(&out);
        out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        out
    }

    /// Logs on, feeds `body` as MsgSeqNum 2 and returns the echo's fields after the header.
    fn echo(app: &mut EchoApp, body: &str) -> Option<Vec<String>> {
        let store = MemoryStore::new(MemoryStoreLimits::default(), T0);
        let mut s = Session::new(
            SessionConfig::acceptor("ISLD", "TW"),
            store,
            Arc::new(Validator::fix44()),
        );
        let mut out = CollectOutbox::default();
        s.on_connected(T0, &mut out);
        let logon = frame("35=A|34=1|49=TW|52={T}|56=ISLD|98=0|108=30|");
        s.on_input(T0, &logon, app, &mut out);
        let mut out = CollectOutbox::default();
        let (msg_type, rest) = body.split_once('|').expect("35=x| first");
        let m = frame(&format!("{msg_type}|34=2|49=TW|52={{T}}|56=ISLD|{rest}"));
        s.on_input(T0, &m, app, &mut out);
        let f = out.frames.first()?;
        let fields: Vec<String> = f
            .split(|&b| b == SOH)
            .filter(|x| !x.is_empty())
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect();
        Some(fields[7..fields.len() - 1].to_vec())
    }

    #[test]
    fn body_comes_back_in_ascending_tag_order_with_groups_whole() {
        let mut app = EchoApp::acceptance();
        let got = echo(
            &mut app,
            "35=D|60={T}|55=INTC|386=2|336=B|336=A|54=1|40=1|11=id|",
        )
        .expect("an echo");
        let tags: Vec<&str> = got.iter().map(|f| f.split('=').next().unwrap()).collect();
        assert_eq!(
            tags,
            vec!["11", "40", "54", "55", "60", "386", "336", "336"]
        );
        assert_eq!(got[6], "336=B", "group entries keep their order");
        assert_eq!(app.echoed, 1);
    }

    #[test]
    fn empty_groups_are_kept_or_dropped_as_configured() {
        let body = "35=d|320=R1|322=1|323=6|55=TBS|454=0|";
        let mut app = EchoApp::acceptance();
        let kept = echo(&mut app, body).expect("an echo");
        assert!(kept.contains(&"454=0".to_owned()), "{kept:?}");
        let mut app = EchoApp::acceptance();
        app.drop_empty_groups = true;
        let dropped = echo(&mut app, body).expect("an echo");
        assert!(
            !dropped.iter().any(|f| f.starts_with("454=")),
            "{dropped:?}"
        );
        assert!(dropped.contains(&"323=6".to_owned()));
    }

    #[test]
    fn other_types_are_refused_as_unsupported() {
        let mut app = EchoApp::acceptance();
        let got = echo(
            &mut app,
            "35=8|37=id|17=id|150=0|39=0|55=W|54=1|151=100|14=0|6=0.0|",
        )
        .expect("a reject");
        assert!(got.contains(&"380=3".to_owned()), "{got:?}");
        assert_eq!(app.echoed, 0);
    }
}
