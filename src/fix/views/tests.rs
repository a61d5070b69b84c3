//! Tests of the typed views on realistic fixed-income messages.
//!
//! Group views need the validator's scope annotations: messages with groups go through the
//! real FIX 4.4 validator first (`annotate`), which also proves the test messages are valid.

use super::*;
use crate::fix::frame::tests::frame;
use crate::fix::message::Decoder;
use crate::fix::validate::Validator;
use crate::fix::Decimal;
use crate::time::Nanos;
use std::sync::OnceLock;

/// Validates `msg` with the FIX 4.4 validator, which also annotates group scope.
fn annotate(msg: &mut Message<'_>) {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    let v = VALIDATOR.get_or_init(Validator::fix44);
    if let Err(e) = v.validate(msg) {
        panic!("test message is not valid FIX 4.4: {e:?}");
    }
}

const HEADER: &str = "34=7|49=DESK|56=ROUTER|52=20240312-09:30:00.123|";

fn msg(body: &str) -> Vec<u8> {
    let (msg_type, rest) = body.split_once('|').expect("body starts with 35=..|");
    frame(&format!("{msg_type}|{HEADER}{rest}"))
}

fn ts(text: &str) -> Nanos {
    crate::time::parse_utc_timestamp(text.as_bytes()).expect("test timestamp")
}

fn dec(text: &str) -> Decimal {
    Decimal::parse(text.as_bytes()).expect("test decimal")
}

fn leg(isin: &str, side: u8, qty: &str, dealers: &[&str]) -> String {
    let mut s = format!(
        "55=[N/A]|48={isin}|22=4|167=CORP|541=20310215|223=4.125|106=Acme Corp|537=1|54={}|38={qty}|64=20240314|15=EUR|62=20240312-09:31:00.000|126=20240312-09:35:00.000|423=1|",
        side as char
    );
    s.push_str(&format!("453={}|", dealers.len()));
    for (k, d) in dealers.iter().enumerate() {
        let role = if k % 2 == 0 { 1 } else { 35 };
        s.push_str(&format!("448={d}|447=D|452={role}|"));
    }
    s
}

fn quote_request(legs: usize) -> Vec<u8> {
    let mut body = format!("35=R|131=RFQ-20240312-0001|146={legs}|");
    for k in 0..legs {
        let isin = format!("XS000000000{k}");
        let side = if k % 2 == 0 { b'1' } else { b'2' };
        body.push_str(&leg(
            &isin,
            side,
            &format!("{}000000", k + 1),
            &["DLR-A", "DLR-B"],
        ));
    }
    body.push_str("58=client desk 7|");
    msg(&body)
}

#[test]
fn quote_request_reads_every_leg_and_its_parties() {
    let f = quote_request(4);
    let mut d = Decoder::new(256);
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let r = QuoteRequest::try_from(&m).unwrap();
    assert_eq!(r.quote_req_id(), Some(&b"RFQ-20240312-0001"[..]));
    assert_eq!(r.text(), Some(&b"client desk 7"[..]));
    assert_eq!(r.rfq_req_id(), None);
    let h = r.header();
    assert_eq!(h.msg_seq_num(), Some(7));
    assert_eq!(h.sender_comp_id(), Some(&b"DESK"[..]));
    assert_eq!(h.sending_time(), Some(ts("20240312-09:30:00.123")));
    assert_eq!(h.poss_dup_flag(), None);
    assert_eq!(h.msg_type(), b"R");

    let legs: Vec<RelatedSym<'_, '_>> = r.related_syms().collect();
    assert_eq!(legs.len(), 4);
    for (k, leg) in legs.iter().enumerate() {
        assert_eq!(
            leg.security_id(),
            Some(format!("XS000000000{k}").as_bytes())
        );
        assert_eq!(leg.security_id_source(), Some(SecurityIdSource::Isin));
        assert_eq!(leg.symbol(), Some(&b"[N/A]"[..]));
        assert_eq!(leg.security_type(), Some(&b"CORP"[..]));
        assert_eq!(leg.maturity_date(), Some(20_310_215));
        assert_eq!(leg.coupon_rate(), Some(dec("4.125")));
        assert_eq!(leg.issuer(), Some(&b"Acme Corp"[..]));
        let side = if k % 2 == 0 { Side::Buy } else { Side::Sell };
        assert_eq!(leg.side(), Some(side));
        assert_eq!(leg.order_qty(), Some(dec(&format!("{}000000", k + 1))));
        assert_eq!(leg.settl_date(), Some(20_240_314));
        assert_eq!(leg.currency(), Some(&b"EUR"[..]));
        assert_eq!(leg.quote_type(), Some(QuoteType::Tradeable));
        assert_eq!(leg.valid_until_time(), Some(ts("20240312-09:31:00.000")));
        assert_eq!(leg.expire_time(), Some(ts("20240312-09:35:00.000")));
        assert_eq!(leg.price_type(), Some(PriceType::Percentage));
        // Text (58) is top level, not part of the entry.
        assert_eq!(leg.fields().filter(|f| f.tag == 58).count(), 0);
        let parties: Vec<Party<'_, '_>> = leg.parties().collect();
        assert_eq!(parties.len(), 2);
        assert_eq!(parties[0].party_id(), Some(&b"DLR-A"[..]));
        assert_eq!(parties[0].party_id_source(), Some(b'D'));
        assert_eq!(parties[0].party_role(), Some(party_role::EXECUTING_FIRM));
        assert_eq!(
            parties[1].party_role(),
            Some(party_role::LIQUIDITY_PROVIDER)
        );
        assert!(parties.iter().all(|p| p.names_dealer()));
        assert_eq!(parties[1].party_sub_ids().count(), 0);
    }
    // Group members are not visible at top level once annotated.
    assert_eq!(m.get(48), None);
}

#[test]
fn group_views_are_empty_before_annotation_and_never_panic() {
    let f = quote_request(2);
    let mut d = Decoder::new(256);
    let m = d.decode(&f).unwrap();
    let r = QuoteRequest::try_from(&m).unwrap();
    assert_eq!(r.related_syms().count(), 0);
    assert_eq!(r.quote_req_id(), Some(&b"RFQ-20240312-0001"[..]));
}

#[test]
fn wrong_msg_type_is_refused() {
    let f = msg("35=0|");
    let mut d = Decoder::new(64);
    let m = d.decode(&f).unwrap();
    assert!(Heartbeat::try_from(&m).is_ok());
    assert_eq!(
        QuoteRequest::try_from(&m).unwrap_err(),
        ViewError::WrongMsgType { expected: b"R" }
    );
    assert_eq!(
        ExecutionReport::try_from(&m).unwrap_err().to_string(),
        "MsgType is not 8"
    );
    // "A" must not match "AJ" nor "AJ" match "A".
    let f = msg("35=AJ|693=QR1|694=1|");
    let m = d.decode(&f).unwrap();
    assert!(Logon::try_from(&m).is_err());
    assert!(QuoteResponse::try_from(&m).is_ok());
}

#[test]
fn session_views() {
    let mut d = Decoder::new(64);
    let f = msg("35=A|98=0|108=30|141=Y|789=12|384=2|372=R|385=R|372=S|385=S|553=u|554=p|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let l = Logon::try_from(&m).unwrap();
    assert_eq!(l.encrypt_method(), Some(EncryptMethod::None));
    assert_eq!(l.heart_bt_int_s(), Some(30));
    assert_eq!(l.reset_seq_num_flag(), Some(true));
    assert_eq!(l.next_expected_msg_seq_num(), Some(12));
    assert_eq!(l.username(), Some(&b"u"[..]));
    assert_eq!(l.password(), Some(&b"p"[..]));
    let types: Vec<_> = l
        .msg_types()
        .map(|t| (t.ref_msg_type().map(<[u8]>::to_vec), t.msg_direction()))
        .collect();
    assert_eq!(
        types,
        vec![
            (Some(b"R".to_vec()), Some(MsgDirection::Receive)),
            (Some(b"S".to_vec()), Some(MsgDirection::Send))
        ]
    );

    let f = msg("35=1|112=TEST-1|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    assert_eq!(
        TestRequest::try_from(&m).unwrap().test_req_id(),
        Some(&b"TEST-1"[..])
    );
    let f = msg("35=0|112=TEST-1|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    assert_eq!(
        Heartbeat::try_from(&m).unwrap().test_req_id(),
        Some(&b"TEST-1"[..])
    );

    let f = msg("35=2|7=5|16=0|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let rr = ResendRequest::try_from(&m).unwrap();
    assert_eq!((rr.begin_seq_no(), rr.end_seq_no()), (Some(5), Some(0)));

    let f = msg("35=3|45=6|371=55|372=R|373=5|58=Value is incorrect|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let rj = Reject::try_from(&m).unwrap();
    assert_eq!(rj.ref_seq_num(), Some(6));
    assert_eq!(rj.ref_tag_id(), Some(55));
    assert_eq!(rj.ref_msg_type(), Some(&b"R"[..]));
    assert_eq!(rj.session_reject_reason(), Some(5));
    assert_eq!(rj.text(), Some(&b"Value is incorrect"[..]));

    let f = msg("35=4|123=Y|36=20|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let sr = SequenceReset::try_from(&m).unwrap();
    assert!(sr.is_gap_fill());
    assert_eq!(sr.new_seq_no(), Some(20));
    let f = msg("35=4|36=20|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    assert!(!SequenceReset::try_from(&m).unwrap().is_gap_fill());

    let f = msg("35=5|58=bye|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    assert_eq!(Logout::try_from(&m).unwrap().text(), Some(&b"bye"[..]));
}

#[test]
fn header_flags_and_orig_sending_time() {
    let mut d = Decoder::new(64);
    let f =
        frame("35=0|34=3|49=A|56=B|43=Y|97=N|52=20240312-09:30:01|122=20240312-09:29:59.5|369=2|");
    let m = d.decode(&f).unwrap();
    let h = Header::of(&m);
    assert_eq!(h.poss_dup_flag(), Some(true));
    assert_eq!(h.poss_resend(), Some(false));
    assert_eq!(h.sending_time(), Some(ts("20240312-09:30:01")));
    // 1 fractional digit is not a FIX UTCTimestamp.
    assert_eq!(h.orig_sending_time(), None);
    assert_eq!(h.last_msg_seq_num_processed(), Some(2));
    assert_eq!(h.begin_string(), b"FIX.4.4");
}

#[test]
fn quote_and_its_responses() {
    let mut d = Decoder::new(128);
    let f = msg("35=S|131=RFQ-1|117=Q-9|537=1|453=1|448=DLR-A|447=D|452=35|55=[N/A]|48=XS0000000001|22=4|54=2|38=1000000|64=20240314|15=EUR|132=99.25|133=99.375|134=1000000|135=500000|62=20240312-09:31:00.000|631=99.3125|60=20240312-09:30:01.000|423=1|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let q = Quote::try_from(&m).unwrap();
    assert_eq!(q.quote_req_id(), Some(&b"RFQ-1"[..]));
    assert_eq!(q.quote_id(), Some(&b"Q-9"[..]));
    assert_eq!(q.quote_type(), Some(QuoteType::Tradeable));
    assert_eq!(q.security_id(), Some(&b"XS0000000001"[..]));
    assert_eq!(q.side(), Some(Side::Sell));
    assert_eq!(q.bid_px(), Some(dec("99.25")));
    assert_eq!(q.offer_px(), Some(dec("99.375")));
    assert!(q.bid_px() < q.offer_px());
    assert_eq!(q.bid_size(), Some(dec("1000000")));
    assert_eq!(q.offer_size(), Some(dec("500000")));
    assert_eq!(q.mid_px().map(Decimal::to_f64), Some(99.3125));
    assert_eq!(q.valid_until_time(), Some(ts("20240312-09:31:00.000")));
    assert_eq!(q.transact_time(), Some(ts("20240312-09:30:01.000")));
    assert_eq!(q.price_type(), Some(PriceType::Percentage));
    let p: Vec<_> = q
        .parties()
        .map(|p| p.party_id().map(<[u8]>::to_vec))
        .collect();
    assert_eq!(p, vec![Some(b"DLR-A".to_vec())]);

    let f = msg("35=AJ|693=QR-1|117=Q-9|694=1|11=ORD-1|55=[N/A]|48=XS0000000001|22=4|54=1|38=1000000|44=99.375|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let a = QuoteResponse::try_from(&m).unwrap();
    assert_eq!(a.quote_resp_id(), Some(&b"QR-1"[..]));
    assert_eq!(a.quote_resp_type(), Some(QuoteRespType::HitLift));
    assert_eq!(a.cl_ord_id(), Some(&b"ORD-1"[..]));
    assert_eq!(a.price(), Some(dec("99.375")));

    let f = msg("35=AI|131=RFQ-1|117=Q-9|297=7|55=[N/A]|48=XS0000000001|22=4|58=expired|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let s = QuoteStatusReport::try_from(&m).unwrap();
    assert_eq!(s.quote_status(), Some(QuoteStatus::Expired));
    assert_eq!(s.quote_id(), Some(&b"Q-9"[..]));
    assert_eq!(s.text(), Some(&b"expired"[..]));

    let f =
        msg("35=AG|131=RFQ-1|658=10|146=1|55=[N/A]|48=XS0000000001|22=4|54=1|38=1000000|58=pass|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let g = QuoteRequestReject::try_from(&m).unwrap();
    assert_eq!(
        g.quote_request_reject_reason(),
        Some(QuoteRequestRejectReason::Pass)
    );
    let legs: Vec<_> = g.related_syms().collect();
    assert_eq!(legs.len(), 1);
    assert_eq!(legs[0].security_id(), Some(&b"XS0000000001"[..]));
    assert_eq!(g.text(), Some(&b"pass"[..]));

    let f = msg("35=Z|131=RFQ-1|117=Q-9|298=1|295=2|55=[N/A]|48=XS0000000001|22=4|55=[N/A]|48=XS0000000002|22=4|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let z = QuoteCancel::try_from(&m).unwrap();
    assert_eq!(
        z.quote_cancel_type(),
        Some(QuoteCancelType::CancelForSecurities)
    );
    let ids: Vec<_> = z
        .quote_entries()
        .map(|e| e.security_id().map(<[u8]>::to_vec))
        .collect();
    assert_eq!(
        ids,
        vec![
            Some(b"XS0000000001".to_vec()),
            Some(b"XS0000000002".to_vec())
        ]
    );
}

#[test]
fn orders_executions_iois_and_market_data() {
    let mut d = Decoder::new(128);
    let f = msg("35=D|11=ORD-1|453=1|448=DESK-7|447=D|452=11|1=ACC1|55=[N/A]|48=XS0000000001|22=4|54=1|60=20240312-09:30:02.000|38=1000000|40=D|44=99.375|15=EUR|117=Q-9|59=3|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let o = NewOrderSingle::try_from(&m).unwrap();
    assert_eq!(o.cl_ord_id(), Some(&b"ORD-1"[..]));
    assert_eq!(o.ord_type(), Some(OrdType::PreviouslyQuoted));
    assert_eq!(o.time_in_force(), Some(TimeInForce::ImmediateOrCancel));
    assert_eq!(o.quote_id(), Some(&b"Q-9"[..]));
    assert_eq!(o.account(), Some(&b"ACC1"[..]));
    let party = o.parties().next().expect("one party");
    assert_eq!(
        party.party_role(),
        Some(party_role::ORDER_ORIGINATION_TRADER)
    );
    assert!(!party.names_dealer());

    let f = msg("35=8|37=DO-1|11=ORD-1|17=EX-1|150=F|39=2|55=[N/A]|48=XS0000000001|22=4|54=1|38=1000000|32=1000000|31=99.375|151=0|14=1000000|6=99.375|75=20240312|60=20240312-09:30:02.500|381=993750|159=1234.56|118=994984.56|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let e = ExecutionReport::try_from(&m).unwrap();
    assert_eq!(e.exec_type(), Some(ExecType::Trade));
    assert_eq!(e.ord_status(), Some(OrdStatus::Filled));
    assert_eq!(e.last_px(), Some(dec("99.375")));
    assert_eq!(e.last_qty(), Some(dec("1000000")));
    assert_eq!(e.leaves_qty(), Some(Decimal::ZERO));
    assert_eq!(e.cum_qty(), Some(dec("1000000")));
    assert_eq!(e.avg_px(), Some(dec("99.375")));
    assert_eq!(e.trade_date(), Some(20_240_312));
    assert_eq!(e.gross_trade_amt(), Some(dec("993750")));
    assert_eq!(e.accrued_interest_amt(), Some(dec("1234.56")));
    assert_eq!(e.net_money(), Some(dec("994984.56")));

    let f = msg(
        "35=6|23=IOI-1|28=N|55=[N/A]|48=XS0000000001|22=4|54=2|27=M|15=EUR|44=99.5|25=H|130=Y|",
    );
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let i = Ioi::try_from(&m).unwrap();
    assert_eq!(i.ioi_trans_type(), Some(IoiTransType::New));
    assert_eq!(i.side(), Some(Side::Sell));
    assert_eq!(i.ioi_qty(), Some(&b"M"[..]));
    assert_eq!(i.ioi_qlty_ind(), Some(IoiQltyInd::High));
    assert_eq!(i.ioi_natural_flag(), Some(true));

    let f = msg("35=W|262=MD-1|55=[N/A]|48=XS0000000001|22=4|268=3|269=0|270=99.25|271=1000000|269=1|270=99.375|271=2000000|269=2|270=99.3|272=20240312|273=09:30:00.000|");
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let w = MarketDataSnapshotFullRefresh::try_from(&m).unwrap();
    assert_eq!(w.md_req_id(), Some(&b"MD-1"[..]));
    assert_eq!(w.security_id(), Some(&b"XS0000000001"[..]));
    let entries: Vec<_> = w
        .md_entries()
        .map(|e| (e.md_entry_type(), e.md_entry_px(), e.md_entry_size()))
        .collect();
    assert_eq!(
        entries,
        vec![
            (
                Some(MdEntryType::Bid),
                Some(dec("99.25")),
                Some(dec("1000000"))
            ),
            (
                Some(MdEntryType::Offer),
                Some(dec("99.375")),
                Some(dec("2000000"))
            ),
            (Some(MdEntryType::Trade), Some(dec("99.3")), None),
        ]
    );
    let last = w.md_entries().last().expect("three entries");
    assert_eq!(last.md_entry_date(), Some(20_240_312));
    assert_eq!(last.md_entry_time(), Some(&b"09:30:00.000"[..]));
    assert_eq!(
        format!("{last:?}"),
        "MdEntry[269=2|270=99.3|272=20240312|273=09:30:00.000]"
    );
}

#[test]
fn typed_accessors_say_none_for_text_that_does_not_parse() {
    let mut d = Decoder::new(128);
    let f =
        msg("35=8|37=X|17=E|150=Z|39=|54=12|32=1e3|31=abc|75=20241301|60=yesterday|157=-3|29=AB|");
    let m = d.decode(&f).unwrap();
    let e = ExecutionReport::try_from(&m).unwrap();
    assert_eq!(e.exec_type(), None, "Z is not an ExecType");
    assert_eq!(e.ord_status(), None, "empty value");
    assert_eq!(e.side(), None, "two characters");
    assert_eq!(e.last_qty(), None, "exponent");
    assert_eq!(e.last_px(), None);
    assert_eq!(e.trade_date(), None, "month 13");
    assert_eq!(e.transact_time(), None);
    assert_eq!(e.num_days_interest(), Some(-3), "int may be negative");
    assert_eq!(e.last_capacity(), None, "char is one byte");
    assert_eq!(
        e.message().get(150),
        Some(&b"Z"[..]),
        "raw bytes stay reachable"
    );
}

#[test]
fn enums_round_trip_through_their_wire_text() {
    fn check<E: Copy + PartialEq + std::fmt::Debug>(
        all: &[E],
        to: fn(E) -> &'static [u8],
        from: fn(&[u8]) -> Option<E>,
    ) {
        assert!(!all.is_empty());
        for &v in all {
            assert_eq!(from(to(v)), Some(v), "{v:?}");
        }
    }
    check(Side::ALL, Side::as_fix, Side::from_fix);
    check(
        SecurityIdSource::ALL,
        SecurityIdSource::as_fix,
        SecurityIdSource::from_fix,
    );
    check(OrdType::ALL, OrdType::as_fix, OrdType::from_fix);
    check(OrdStatus::ALL, OrdStatus::as_fix, OrdStatus::from_fix);
    check(ExecType::ALL, ExecType::as_fix, ExecType::from_fix);
    check(TimeInForce::ALL, TimeInForce::as_fix, TimeInForce::from_fix);
    check(SettlType::ALL, SettlType::as_fix, SettlType::from_fix);
    check(
        IoiTransType::ALL,
        IoiTransType::as_fix,
        IoiTransType::from_fix,
    );
    check(IoiQltyInd::ALL, IoiQltyInd::as_fix, IoiQltyInd::from_fix);
    check(MdEntryType::ALL, MdEntryType::as_fix, MdEntryType::from_fix);
    check(
        MsgDirection::ALL,
        MsgDirection::as_fix,
        MsgDirection::from_fix,
    );
    check(
        QuoteRespType::ALL,
        QuoteRespType::as_fix,
        QuoteRespType::from_fix,
    );
    check(QuoteType::ALL, QuoteType::as_fix, QuoteType::from_fix);
    check(
        QuoteRequestType::ALL,
        QuoteRequestType::as_fix,
        QuoteRequestType::from_fix,
    );
    check(
        QuoteCancelType::ALL,
        QuoteCancelType::as_fix,
        QuoteCancelType::from_fix,
    );
    check(QuoteStatus::ALL, QuoteStatus::as_fix, QuoteStatus::from_fix);
    check(
        QuoteRequestRejectReason::ALL,
        QuoteRequestRejectReason::as_fix,
        QuoteRequestRejectReason::from_fix,
    );
    check(PriceType::ALL, PriceType::as_fix, PriceType::from_fix);
    check(
        EncryptMethod::ALL,
        EncryptMethod::as_fix,
        EncryptMethod::from_fix,
    );
    assert_eq!(QuoteStatus::from_fix(b"07"), Some(QuoteStatus::Expired));
    assert_eq!(QuoteStatus::Pass.as_fix(), b"11");
    assert_eq!(QuoteRespType::DoneAway.value(), 5);
    assert_eq!(Side::from_fix(b"b"), None);
    assert_eq!(QuoteRespType::from_fix(b"7"), None);
    assert_eq!(Side::TAG, 54);
}

#[test]
fn value_parsers_are_strict() {
    assert_eq!(parse_i64(b"-12"), Some(-12));
    assert_eq!(parse_i64(b"007"), Some(7));
    assert_eq!(parse_i64(b"-"), None);
    assert_eq!(parse_i64(b"+1"), None);
    assert_eq!(parse_i64(b"1.0"), None);
    assert_eq!(parse_i64(b"1234567890123456789"), None);
    assert_eq!(parse_char(b""), None);
    assert_eq!(parse_bool(b"y"), None);
    assert_eq!(parse_date(b"20240229"), Some(20_240_229));
    assert_eq!(parse_date(b"2024022"), None);
}

#[test]
fn views_read_what_the_encoder_writes() {
    let mut e = crate::fix::Encoder::new(1024);
    e.start(b"S")
        .uint(34, 9)
        .str(49, b"DLR-A")
        .str(56, b"ROUTER")
        .timestamp(52, Nanos(1_710_235_800_123_000_000))
        .str(131, b"RFQ-1")
        .str(117, b"Q-1")
        .str(55, b"[N/A]")
        .str(48, b"XS0000000001")
        .str(22, SecurityIdSource::Isin.as_fix())
        .str(54, Side::Sell.as_fix());
    dec("99.250").encode(&mut e, 132);
    let f = e.finish().unwrap().to_vec();
    let mut d = Decoder::new(64);
    let mut m = d.decode(&f).unwrap();
    annotate(&mut m);
    let q = Quote::try_from(&m).unwrap();
    assert_eq!(
        q.header().sending_time(),
        Some(Nanos(1_710_235_800_123_000_000))
    );
    assert_eq!(q.security_id_source(), Some(SecurityIdSource::Isin));
    assert_eq!(q.side(), Some(Side::Sell));
    let bid = q.bid_px().unwrap();
    assert_eq!((bid.mantissa(), bid.scale()), (99_250, 3));
}
