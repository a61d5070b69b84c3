//! Which records `cat` and `stats` look at: time range, kind, session (by name or id),
//! FIX message type, dealer, and one RFQ followed across desk and dealer sessions.
//!
//! Must not: print, or read the journal itself (the RFQ filter is resolved from a `Model`
//! built by the caller's first pass).

use std::collections::HashSet;

use anyhow::{bail, Result};
use clap::Args;

use rfq_router::journal::{RecordKind, RecordView};
use rfq_router::time::Nanos;

use crate::common::{parse_time, Names};
use crate::fixmsg::{self as f, router_key, Fields, RouterKey};
use crate::model::Model;

#[derive(Args, Clone, Default)]
pub struct FilterArgs {
    /// Only records at or after this time: YYYYMMDD-HH:MM:SS[.fff[fff[fff]]] (UTC), or
    /// nanoseconds since the Unix epoch.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub from: Option<Nanos>,
    /// Only records before this time (same forms as --from).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub to: Option<Nanos>,
    /// Only FIX records of this session, by name (router.toml) or id (repeatable).
    #[arg(long, value_name = "NAME|ID")]
    pub session: Vec<String>,
    /// Only records of this kind (repeatable): fix-in, fix-out, decision, timer, reload,
    /// tca, score, admin.
    #[arg(long, value_parser = parse_kind, value_name = "KIND")]
    pub kind: Vec<RecordKind>,
    /// Only FIX records whose MsgType (tag 35) is this, e.g. R or AJ (repeatable).
    #[arg(long = "msg-type", value_name = "TYPE")]
    pub msg_type: Vec<String>,
    /// Only FIX records of this dealer: on its session, or naming it (PartyID 448) on a
    /// desk session. By name, PartyID or session name (repeatable).
    #[arg(long, value_name = "DEALER")]
    pub dealer: Vec<String>,
    /// Only the FIX records of one RFQ: the desk's QuoteReqID (every leg of that request),
    /// or any identifier the router issued for a leg (R<seq>-<slot> to dealers,
    /// Q<seq>-<slot>-<i>-<v> quotes to the desk, E.. hits, O../X.. executions), or a
    /// dealer's QuoteID. Follows the RFQ across desk and dealer sessions.
    #[arg(long, value_name = "ID")]
    pub rfq: Option<String>,
}

pub fn parse_kind(s: &str) -> Result<RecordKind, String> {
    RecordKind::from_name(s).ok_or_else(|| {
        let names: Vec<_> = RecordKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind {s:?}; one of: {}", names.join(", "))
    })
}

/// What `--rfq ID` resolved to.
#[derive(Debug, Default)]
pub struct RfqMatch {
    keys: HashSet<RouterKey>,
    /// (desk session, desk QuoteReqID)
    desk_ids: HashSet<(u16, String)>,
    /// (desk session, desk ClOrdID/QuoteRespID of a hit)
    desk_refs: HashSet<(u16, String)>,
    /// (dealer session, dealer QuoteID)
    dealer_quote_ids: HashSet<(u16, String)>,
    /// When the id named one leg (not the desk's whole request): that leg's instruments,
    /// so the desk's messages about its other legs stay out.
    instruments: Option<HashSet<String>>,
}

impl RfqMatch {
    pub fn resolve(model: &Model, id: &str) -> RfqMatch {
        let mut m = RfqMatch::default();
        if let Some(k) = router_key(id.as_bytes()) {
            m.keys.insert(k);
        }
        let by_desk_id = model.legs.iter().any(|l| l.desk_req_id == id);
        for leg in model.legs.iter().filter(|l| l.desk_req_id == id) {
            m.desk_ids.insert((leg.desk_session, id.to_string()));
            if let Some(k) = leg.key {
                m.keys.insert(k);
            }
        }
        for (k, r) in &model.rfqs {
            if r.quotes.iter().any(|q| q.dealer_quote_id == id)
                || r.desk_hit.as_ref().is_some_and(|h| h.1 == id)
            {
                m.keys.insert(*k);
            }
        }
        let mut instruments = HashSet::new();
        for k in m.keys.clone() {
            if let Some(leg) = model.leg(k) {
                instruments.insert(leg.instrument.clone());
                m.desk_ids
                    .insert((leg.desk_session, leg.desk_req_id.clone()));
                if let Some((_, desk_ref, _)) = model.rfqs.get(&k).and_then(|r| r.desk_hit.as_ref())
                {
                    m.desk_refs.insert((leg.desk_session, desk_ref.clone()));
                }
            }
            if let Some(r) = model.rfqs.get(&k) {
                for q in &r.quotes {
                    m.dealer_quote_ids
                        .insert((q.session, q.dealer_quote_id.clone()));
                }
            }
        }
        if !by_desk_id {
            m.instruments = Some(instruments);
        }
        m
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.desk_ids.is_empty()
    }

    fn accepts(&self, names: &Names, session: u16, m: &Fields<'_>) -> bool {
        const ID_TAGS: [u32; 6] = [
            f::QUOTE_REQ_ID,
            f::QUOTE_ID,
            f::CL_ORD_ID,
            f::QUOTE_RESP_ID,
            f::ORDER_ID,
            f::EXEC_ID,
        ];
        if ID_TAGS
            .iter()
            .filter_map(|&t| m.get(t).and_then(router_key))
            .any(|k| self.keys.contains(&k))
        {
            return true;
        }
        let has = |set: &HashSet<(u16, String)>, tag| {
            m.get(tag)
                .is_some_and(|v| set.contains(&(session, String::from_utf8_lossy(v).into_owned())))
        };
        if names.is_desk(session) {
            let other_leg = m.msg_type() != b"R"
                && self.instruments.as_ref().is_some_and(|set| {
                    m.instrument()
                        .is_some_and(|i| !set.contains(String::from_utf8_lossy(i).as_ref()))
                });
            (has(&self.desk_ids, f::QUOTE_REQ_ID) && !other_leg)
                || has(&self.desk_refs, f::CL_ORD_ID)
                || has(&self.desk_refs, f::QUOTE_RESP_ID)
        } else {
            has(&self.dealer_quote_ids, f::QUOTE_ID)
        }
    }
}

/// The resolved filter.
pub struct Filter {
    pub from: Option<Nanos>,
    pub to: Option<Nanos>,
    sessions: Vec<u16>,
    kinds: Vec<RecordKind>,
    msg_types: Vec<Vec<u8>>,
    dealers: Vec<usize>,
    pub rfq: Option<RfqMatch>,
    names: Names,
}

impl Filter {
    /// Resolves names; `--rfq` is resolved later with `set_rfq` (it needs a first pass).
    pub fn new(a: &FilterArgs, names: &Names) -> Result<Filter> {
        let mut sessions = Vec::new();
        for s in &a.session {
            match names.session_id(s) {
                Some(id) => sessions.push(id),
                None => bail!(
                    "--session {s:?}: no such session name in the configuration ({}) and \
                     not a number",
                    names.sessions.join(", ")
                ),
            }
        }
        let mut dealers = Vec::new();
        for d in &a.dealer {
            match names.dealer(d) {
                Some(i) => dealers.push(i),
                None => {
                    let known: Vec<_> = names.dealers.iter().map(|d| d.name.as_str()).collect();
                    bail!(
                        "--dealer {d:?}: unknown dealer; one of: {}",
                        known.join(", ")
                    )
                }
            }
        }
        Ok(Filter {
            from: a.from,
            to: a.to,
            sessions,
            kinds: a.kind.clone(),
            msg_types: a.msg_type.iter().map(|t| t.as_bytes().to_vec()).collect(),
            dealers,
            rfq: None,
            names: names.clone(),
        })
    }

    pub fn in_time(&self, t: Nanos) -> bool {
        !(self.from.is_some_and(|f| t < f) || self.to.is_some_and(|to| t >= to))
    }

    pub fn accepts(&self, r: &RecordView<'_>) -> bool {
        if !self.in_time(r.timestamp) {
            return false;
        }
        if !self.kinds.is_empty() && !r.kind().is_some_and(|k| self.kinds.contains(&k)) {
            return false;
        }
        if self.sessions.is_empty()
            && self.msg_types.is_empty()
            && self.dealers.is_empty()
            && self.rfq.is_none()
        {
            return true;
        }
        let Some(Ok(fix)) = r.fix() else {
            return false;
        };
        if !self.sessions.is_empty() && !self.sessions.contains(&fix.session_id) {
            return false;
        }
        if !self.msg_types.is_empty()
            && !fix
                .msg_type()
                .is_some_and(|t| self.msg_types.iter().any(|m| m == t))
        {
            return false;
        }
        if self.dealers.is_empty() && self.rfq.is_none() {
            return true;
        }
        let m = Fields::parse(fix.raw);
        if !self.dealers.is_empty() {
            let party = m.get(f::PARTY_ID);
            let ok = self.dealers.iter().any(|&d| {
                let dealer = &self.names.dealers[d];
                dealer.session == fix.session_id
                    || party.is_some_and(|p| p == dealer.party_id.as_bytes())
            });
            if !ok {
                return false;
            }
        }
        self.rfq
            .as_ref()
            .is_none_or(|q| q.accepts(&self.names, fix.session_id, &m))
    }
}
