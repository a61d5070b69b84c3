//! The RFQs of a journal, rebuilt from its FIX records: every desk QuoteRequest leg with
//! the router's identifier for it, the dealers asked, their quotes, declines and refusals,
//! the hit and the execution reports, and how the leg ended.
//!
//! How records are tied together (the engine's identifiers, src/rfq/engine.rs): a desk's
//! QuoteRequest carries the desk's QuoteReqID; everything the router sends to dealers and
//! back to the desk for one leg carries a router identifier `<p><seq>-<slot>[...]` naming
//! that leg (`RouterKey`); the desk-side messages the router sends carry both (QuoteReqID =
//! the desk's, QuoteID = the router's), which is where a desk leg learns its router id.
//! Dealer quote ids tie a dealer's QuoteCancel and the router's refusals to the leg.
//!
//! Owns only this bookkeeping; must not print. Bounded: past `MAX_LEGS` desk legs the scan
//! stops with an error asking for a narrower time range.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};

use rfq_router::journal::{FixDirection, FixPayload};
use rfq_router::rfq::types::Side;
use rfq_router::time::Nanos;

use crate::common::Names;
use crate::fixmsg::{self as f, router_key, Fields, RouterKey};

/// Desk RFQ legs (and router ids) one run keeps in memory.
pub const MAX_LEGS: usize = 5_000_000;
/// Score updates (observations the router applied to its tables) one run keeps in memory.
pub const MAX_SCORE_UPDATES: usize = 50_000_000;
/// Asks, quotes, declines, hits or reports kept per router id (a panel is at most 32
/// dealers; more is a misbehaving peer): past it they are counted in `Model::dropped`.
pub const MAX_PER_RFQ: usize = 1024;

/// Pushes `item` unless `v` is full; counts what was dropped.
fn push_bounded<T>(v: &mut Vec<T>, item: T, dropped: &mut u64) {
    if v.len() < MAX_PER_RFQ {
        v.push(item);
    } else {
        *dropped += 1;
    }
}

/// One leg of a desk QuoteRequest.
#[derive(Debug, Clone)]
pub struct DeskLeg {
    pub time: Nanos,
    pub desk_session: u16,
    pub desk_req_id: String,
    /// 1-based position in the request's NoRelatedSym group.
    pub leg: usize,
    /// SecurityID if given, else Symbol.
    pub instrument: String,
    /// SecurityIDSource (1 CUSIP, 4 ISIN) with a SecurityID; empty for a Symbol.
    pub id_source: String,
    pub side: Option<Side>,
    pub qty: f64,
    /// The router's identifier, once a desk-side message named it.
    pub key: Option<RouterKey>,
    /// The router's QuoteRequestReject text (658 and 58), if it refused the leg.
    pub rejected: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Ask {
    pub time: Nanos,
    pub session: u16,
}

#[derive(Debug, Clone, Default)]
pub struct Quote {
    pub time: Nanos,
    pub session: u16,
    pub dealer_quote_id: String,
    /// The QuoteID the desk saw (`Q...`), when the router relayed it.
    pub router_quote_id: String,
    pub bid_px: Option<f64>,
    pub offer_px: Option<f64>,
    pub bid_size: Option<f64>,
    pub offer_size: Option<f64>,
    pub valid_until: String,
    /// From the dealer being asked to this quote.
    pub response_ns: Option<u64>,
    /// The router's QuoteStatusReport to the dealer when it refused the quote.
    pub refused: Option<String>,
    pub withdrawn: bool,
}

impl Quote {
    pub fn status(&self) -> &'static str {
        if self.refused.is_some() {
            "refused"
        } else if self.withdrawn {
            "withdrawn"
        } else if !self.router_quote_id.is_empty() {
            "relayed"
        } else {
            "received"
        }
    }

    /// The price on the side the desk trades (offer for a buy, bid for a sell).
    pub fn px_for(&self, side: Option<Side>) -> Option<f64> {
        match side {
            Some(Side::Buy) => self.offer_px,
            Some(Side::Sell) => self.bid_px,
            None => self.bid_px.or(self.offer_px),
        }
    }
}

/// The hit the router sent to the winning dealer (AJ 694=1 or D).
#[derive(Debug, Clone)]
pub struct Hit {
    pub session: u16,
    pub price: Option<f64>,
    pub side: Option<Side>,
    /// No desk click preceded it: the router executed within its auto-execution band.
    pub auto: bool,
}

/// A dealer's ExecutionReport for the hit.
#[derive(Debug, Clone)]
pub struct Report {
    pub time: Nanos,
    pub session: u16,
    pub exec_id: String,
    pub exec_type: String,
    pub ord_status: String,
    pub last_qty: Option<f64>,
    pub last_px: Option<f64>,
    pub cum_qty: Option<f64>,
    pub text: String,
    /// The ExecID the router gave the desk when it relayed this report.
    pub desk_exec_id: String,
}

impl Report {
    pub fn is_fill(&self) -> bool {
        self.ord_status == "2"
            || (matches!(self.ord_status.as_str(), "1" | "3" | "4")
                && self.cum_qty.is_some_and(|c| c > 0.0))
    }
}

/// How a leg ended, as the journal shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    Filled,
    Expired,
    Cancelled,
    /// Every dealer declined, timed out or dropped.
    NoQuote(String),
}

/// Everything recorded under one router identifier.
#[derive(Debug, Clone, Default)]
pub struct RouterRfq {
    pub asks: Vec<Ask>,
    pub quotes: Vec<Quote>,
    pub declines: Vec<Ask>,
    /// The desk's hit: time, the desk's ClOrdID/QuoteRespID, the router QuoteID it named.
    pub desk_hit: Option<(Nanos, String, String)>,
    pub hits: Vec<Hit>,
    pub reports: Vec<Report>,
    pub end: Option<(Nanos, End)>,
}

/// A non-FIX record kept for commands that decode it (TCA results, score updates).
#[derive(Debug, Clone)]
pub struct OpaqueRecord {
    pub seq: u64,
    pub time: Nanos,
    pub payload: Vec<u8>,
}

/// The journal's RFQs.
#[derive(Debug, Default)]
pub struct Model {
    pub legs: Vec<DeskLeg>,
    pub rfqs: BTreeMap<RouterKey, RouterRfq>,
    leg_of_key: HashMap<RouterKey, usize>,
    /// The legs of the latest request per (desk session, QuoteReqID).
    pending: HashMap<(u16, String), Vec<usize>>,
    /// (dealer session, dealer QuoteID) -> leg.
    dealer_quotes: HashMap<(u16, String), RouterKey>,
    /// Entries not kept because a router id already had `MAX_PER_RFQ` of that kind.
    pub dropped: u64,
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

impl Model {
    pub fn leg(&self, key: RouterKey) -> Option<&DeskLeg> {
        self.leg_of_key.get(&key).map(|&i| &self.legs[i])
    }

    /// Takes one FIX record into account.
    pub fn observe(&mut self, names: &Names, time: Nanos, fix: &FixPayload<'_>) -> Result<()> {
        if self.rfqs.len() >= MAX_LEGS {
            bail!(
                "more than {MAX_LEGS} router RFQ ids in this journal: narrow it with \
                 --from/--to"
            );
        }
        let m = Fields::parse(fix.raw);
        let session = fix.session_id;
        let inbound = fix.direction == FixDirection::Inbound;
        let t = m.msg_type();
        if names.is_desk(session) {
            match (inbound, t) {
                (true, b"R") => self.desk_request(time, session, &m)?,
                (false, b"AG") => self.desk_reject(session, &m),
                (false, b"S" | b"AI" | b"Z") => self.desk_report(names, time, session, &m),
                (true, b"AJ" | b"D") => {
                    let hit = t == b"D" || m.get(f::QUOTE_RESP_TYPE) == Some(b"1");
                    if let (true, Some(q)) = (hit, m.get(f::QUOTE_ID)) {
                        if let Some(k) = router_key(q) {
                            let desk_ref = m
                                .get(f::CL_ORD_ID)
                                .or_else(|| m.get(f::QUOTE_RESP_ID))
                                .map(text)
                                .unwrap_or_default();
                            self.rfqs.entry(k).or_default().desk_hit =
                                Some((time, desk_ref, text(q)));
                        }
                    }
                }
                (false, b"8") => {
                    let Some(k) = m.get(f::ORDER_ID).and_then(router_key) else {
                        return Ok(());
                    };
                    if let Some(r) = self.rfqs.get_mut(&k).and_then(|r| {
                        r.reports
                            .iter_mut()
                            .rev()
                            .find(|r| r.desk_exec_id.is_empty())
                    }) {
                        r.desk_exec_id = m.text(f::EXEC_ID);
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        let key = |tag| m.get(tag).and_then(router_key);
        match (inbound, t) {
            (false, b"R") => {
                if let Some(k) = key(f::QUOTE_REQ_ID) {
                    let r = self.rfqs.entry(k).or_default();
                    push_bounded(&mut r.asks, Ask { time, session }, &mut self.dropped);
                }
            }
            (true, b"S") => {
                if let Some(k) = key(f::QUOTE_REQ_ID) {
                    let r = self.rfqs.entry(k).or_default();
                    let asked = r.asks.iter().rev().find(|a| a.session == session);
                    let q = Quote {
                        time,
                        session,
                        dealer_quote_id: m.text(f::QUOTE_ID),
                        bid_px: m.number(f::BID_PX),
                        offer_px: m.number(f::OFFER_PX),
                        bid_size: m.number(f::BID_SIZE),
                        offer_size: m.number(f::OFFER_SIZE),
                        valid_until: m.text(f::VALID_UNTIL_TIME),
                        response_ns: asked.map(|a| time.0.saturating_sub(a.time.0)),
                        ..Quote::default()
                    };
                    if r.quotes.len() < MAX_PER_RFQ {
                        self.dealer_quotes
                            .insert((session, q.dealer_quote_id.clone()), k);
                    }
                    push_bounded(&mut r.quotes, q, &mut self.dropped);
                }
            }
            (false, b"AI") => {
                // The router refusing a dealer's quote (late, duplicate, mismatched).
                let qid = m.text(f::QUOTE_ID);
                let k = key(f::QUOTE_REQ_ID)
                    .or_else(|| self.dealer_quotes.get(&(session, qid.clone())).copied());
                if let Some(q) = k.and_then(|k| self.rfqs.get_mut(&k)).and_then(|r| {
                    r.quotes
                        .iter_mut()
                        .rev()
                        .find(|q| q.session == session && q.dealer_quote_id == qid)
                }) {
                    q.refused = Some(format!("{} {}", m.text(f::QUOTE_STATUS), m.text(f::TEXT)));
                }
            }
            (true, b"AG") => {
                if let Some(k) = key(f::QUOTE_REQ_ID) {
                    let r = self.rfqs.entry(k).or_default();
                    push_bounded(&mut r.declines, Ask { time, session }, &mut self.dropped);
                }
            }
            (true, b"Z") => {
                let qid = m.text(f::QUOTE_ID);
                let k = key(f::QUOTE_REQ_ID)
                    .or_else(|| self.dealer_quotes.get(&(session, qid.clone())).copied());
                if let Some(r) = k.and_then(|k| self.rfqs.get_mut(&k)) {
                    for q in r.quotes.iter_mut().filter(|q| q.session == session) {
                        if qid.is_empty() || q.dealer_quote_id == qid {
                            q.withdrawn = true;
                        }
                    }
                }
            }
            (false, b"AJ" | b"D") => {
                let hit = t == b"D" || m.get(f::QUOTE_RESP_TYPE) == Some(b"1");
                let k = key(f::CL_ORD_ID).or_else(|| key(f::QUOTE_RESP_ID));
                if let (true, Some(k)) = (hit, k) {
                    let r = self.rfqs.entry(k).or_default();
                    let auto = r.desk_hit.is_none();
                    let hit = Hit {
                        session,
                        price: m.number(f::PRICE),
                        side: m.side(),
                        auto,
                    };
                    push_bounded(&mut r.hits, hit, &mut self.dropped);
                }
            }
            (true, b"8") => {
                let Some(k) = key(f::CL_ORD_ID).or_else(|| key(f::QUOTE_RESP_ID)) else {
                    return Ok(());
                };
                let report = Report {
                    time,
                    session,
                    exec_id: m.text(f::EXEC_ID),
                    exec_type: m.text(f::EXEC_TYPE),
                    ord_status: m.text(f::ORD_STATUS),
                    last_qty: m.number(f::LAST_QTY),
                    last_px: m.number(f::LAST_PX).or_else(|| m.number(f::AVG_PX)),
                    cum_qty: m.number(f::CUM_QTY),
                    text: m.text(f::TEXT),
                    desk_exec_id: String::new(),
                };
                let r = self.rfqs.entry(k).or_default();
                if report.is_fill() {
                    r.end = Some((time, End::Filled));
                }
                push_bounded(&mut r.reports, report, &mut self.dropped);
            }
            _ => {}
        }
        Ok(())
    }

    fn desk_request(&mut self, time: Nanos, session: u16, m: &Fields<'_>) -> Result<()> {
        let req = m.text(f::QUOTE_REQ_ID);
        let mut indices = Vec::new();
        for (i, leg) in m.legs().iter().enumerate() {
            if self.legs.len() >= MAX_LEGS {
                bail!(
                    "more than {MAX_LEGS} desk RFQ legs in this journal: narrow it with \
                     --from/--to"
                );
            }
            let has_id = leg.get(f::SECURITY_ID).is_some_and(|v| !v.is_empty());
            indices.push(self.legs.len());
            self.legs.push(DeskLeg {
                time,
                desk_session: session,
                desk_req_id: req.clone(),
                leg: i + 1,
                instrument: leg.instrument().map(text).unwrap_or_default(),
                id_source: if has_id {
                    leg.text(f::SECURITY_ID_SOURCE)
                } else {
                    String::new()
                },
                side: leg.side(),
                qty: leg.number(f::ORDER_QTY).unwrap_or(0.0),
                key: None,
                rejected: None,
            });
        }
        if !indices.is_empty() {
            self.pending.insert((session, req), indices);
        }
        Ok(())
    }

    /// The unresolved legs of (session, req) the message is about: the one with its
    /// instrument when it names one, else all of them (or, `first_only`, the first).
    fn unresolved(&self, session: u16, m: &Fields<'_>, first_only: bool) -> Vec<usize> {
        let Some(indices) = self.pending.get(&(session, m.text(f::QUOTE_REQ_ID))) else {
            return Vec::new();
        };
        let open: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&i| self.legs[i].key.is_none() && self.legs[i].rejected.is_none())
            .collect();
        let named: Vec<&[u8]> = [m.get(f::SECURITY_ID), m.get(f::SYMBOL)]
            .into_iter()
            .flatten()
            .filter(|v| !v.is_empty() && *v != b"[N/A]")
            .collect();
        if let Some(&i) = open
            .iter()
            .find(|&&i| named.contains(&self.legs[i].instrument.as_bytes()))
        {
            return vec![i];
        }
        if first_only {
            open.into_iter().take(1).collect()
        } else {
            open
        }
    }

    fn desk_reject(&mut self, session: u16, m: &Fields<'_>) {
        let why = format!(
            "658={} {}",
            m.text(f::QUOTE_REQUEST_REJECT_REASON),
            m.text(f::TEXT)
        );
        for i in self.unresolved(session, m, false) {
            self.legs[i].rejected = Some(why.clone());
        }
    }

    fn desk_report(&mut self, names: &Names, time: Nanos, session: u16, m: &Fields<'_>) {
        let Some(k) = m.get(f::QUOTE_ID).and_then(router_key) else {
            return;
        };
        if !self.leg_of_key.contains_key(&k) {
            if let Some(&i) = self.unresolved(session, m, true).first() {
                self.legs[i].key = Some(k);
                self.leg_of_key.insert(k, i);
            }
        }
        let r = self.rfqs.entry(k).or_default();
        match m.msg_type() {
            b"S" => {
                let dealer_session = m
                    .get(f::PARTY_ID)
                    .and_then(|p| names.dealer_by_party(p))
                    .map(|d| names.dealers[d].session);
                if let Some(q) = r.quotes.iter_mut().rev().find(|q| {
                    q.router_quote_id.is_empty()
                        && q.refused.is_none()
                        && dealer_session.is_none_or(|s| s == q.session)
                }) {
                    q.router_quote_id = m.text(f::QUOTE_ID);
                }
            }
            b"AI" => {
                let end = match m.get(f::QUOTE_STATUS) {
                    Some(b"7") => Some(End::Expired),
                    Some(b"4") => Some(End::Cancelled),
                    Some(b"5") if !m.text(f::TEXT).starts_with("cannot cancel") => {
                        Some(End::NoQuote(m.text(f::TEXT)))
                    }
                    _ => None,
                };
                if let (Some(end), None) = (end, &r.end) {
                    r.end = Some((time, end));
                }
            }
            _ => {}
        }
    }

    /// The outcome of a desk leg: `rejected`, `filled`, `expired`, `cancelled`, `no-quote`,
    /// or `open` (nothing final in the journal), with a detail text.
    pub fn outcome(&self, leg: &DeskLeg) -> (&'static str, String) {
        if let Some(why) = &leg.rejected {
            return ("rejected", why.clone());
        }
        let Some(r) = leg.key.and_then(|k| self.rfqs.get(&k)) else {
            return ("open", String::new());
        };
        match &r.end {
            Some((_, End::Filled)) => ("filled", String::new()),
            Some((_, End::Expired)) => ("expired", String::new()),
            Some((_, End::Cancelled)) => ("cancelled", String::new()),
            Some((_, End::NoQuote(t))) => ("no-quote", t.clone()),
            None => ("open", String::new()),
        }
    }
}

/// What one pass over a journal gives the commands.
#[derive(Debug, Default)]
pub struct Built {
    pub model: Model,
    /// TCA result records (kind `tca`), for the decoder hook in `tca`.
    pub tca: Vec<OpaqueRecord>,
    /// The observations the router applied to its score tables (kind `score`), in journal
    /// order; `score_undecoded` counts the records this build could not read.
    pub score_updates: Vec<rfq_router::select::tca::TcaUpdate>,
    pub score_undecoded: u64,
    /// Damaged places skipped (each was reported on stderr).
    pub problems: u64,
    /// Time of the last record taken.
    pub last_time: Option<Nanos>,
}

/// Reads every record whose time `keep` accepts into a `Model`, with a progress bar.
pub fn build(
    reader: &rfq_router::journal::JournalReader,
    names: &Names,
    keep: impl Fn(Nanos) -> bool,
) -> Result<Built> {
    use rfq_router::journal::RecordKind;
    let bar = crate::common::progress_bar(reader.total_bytes());
    let mut built = Built::default();
    for item in crate::common::with_progress(reader.records(), bar.clone(), 65_536) {
        let rec = match item {
            Ok(r) => r,
            Err(p) => {
                built.problems += 1;
                eprintln!("rfq-journal: {p} (rest of that segment skipped; run verify)");
                continue;
            }
        };
        let r = &rec.record;
        if !keep(r.timestamp) {
            continue;
        }
        built.last_time = Some(r.timestamp);
        match r.kind() {
            Some(RecordKind::FixInbound | RecordKind::FixOutbound) => {
                if let Some(Ok(fix)) = r.fix() {
                    built.model.observe(names, r.timestamp, &fix)?;
                }
            }
            Some(RecordKind::TcaResult) => {
                if built.tca.len() >= MAX_LEGS {
                    bail!("more than {MAX_LEGS} TCA records: narrow the journal with --from/--to");
                }
                built.tca.push(OpaqueRecord {
                    seq: r.seq,
                    time: r.timestamp,
                    payload: r.payload.to_vec(),
                });
            }
            Some(RecordKind::ScoreUpdate) => {
                use rfq_router::rfq::outbox::Record;
                match rfq_router::select::feedback::decode_record(r.payload) {
                    Ok(Record::ScoreUpdate(u)) => {
                        if built.score_updates.len() >= MAX_SCORE_UPDATES {
                            bail!(
                                "more than {MAX_SCORE_UPDATES} score updates: narrow the \
                                 journal with --from/--to"
                            );
                        }
                        built.score_updates.push(u);
                    }
                    _ => built.score_undecoded += 1,
                }
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    if built.model.dropped > 0 {
        eprintln!(
            "rfq-journal: {} dealer message(s) not tracked: more than {MAX_PER_RFQ} of one kind \
             for one RFQ",
            built.model.dropped
        );
    }
    Ok(built)
}
