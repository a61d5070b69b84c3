//! Proof that the per-message codec path does not allocate in steady state: framing,
//! tokenising, validating, reading every typed view (groups included) and encoding replies.
//!
//! A counting global allocator (`tests/support/counting_alloc.rs`) counts only on threads
//! that switched counting on (the test harness allocates on its own threads).

use rfq_router::fix::validate::Validator;
use rfq_router::fix::views::*;
use rfq_router::fix::{Decimal, Decoder, Encoder, FrameStatus, Framer, Message};
use rfq_router::time::Nanos;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::counted;

const MAX_MESSAGE_BYTES: usize = 8192;

/// Frames with a correct BodyLength and CheckSum around `body` (`|` for SOH).
fn frame(body: &str) -> Vec<u8> {
    let body = body.replace('|', "\x01");
    let mut out = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
    let sum = out.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

fn quote_request(legs: usize) -> Vec<u8> {
    let mut body =
        String::from("35=R|34=2|49=DESK|56=ROUTER|52=20240312-09:30:00.123|131=RFQ-20240312-0001|");
    body.push_str(&format!("146={legs}|"));
    for k in 0..legs {
        body.push_str(&format!(
            "55=[N/A]|48=XS18{k:08}|22=4|167=CORP|541=20310215|223=4.125|54=1|38={}000000|64=20240314|15=EUR|126=20240312-09:35:00.000|453=2|448=DLR-A|447=D|452=1|448=DLR-B|447=D|452=35|",
            k + 1
        ));
    }
    frame(&body)
}

fn quote() -> Vec<u8> {
    frame("35=S|34=3|49=DLR-A|56=ROUTER|52=20240312-09:30:01.456|131=RFQ-1|117=Q-1|537=1|55=[N/A]|48=XS1800000000|22=4|54=2|38=1000000|64=20240314|15=EUR|132=99.25|133=99.375|134=1000000|135=1000000|62=20240312-09:31:00.000|631=99.3125|")
}

fn session_messages() -> Vec<Vec<u8>> {
    vec![
        frame("35=A|34=1|49=DESK|56=ROUTER|52=20240312-09:29:00.000|98=0|108=30|141=Y|"),
        frame("35=0|34=4|49=DESK|56=ROUTER|52=20240312-09:30:30.000|112=T1|"),
        frame("35=1|34=5|49=DESK|56=ROUTER|52=20240312-09:30:31.000|112=T2|"),
        frame("35=2|34=6|49=DESK|56=ROUTER|52=20240312-09:30:32.000|7=1|16=0|"),
        frame("35=3|34=7|49=DESK|56=ROUTER|52=20240312-09:30:33.000|45=3|371=55|373=5|58=x|"),
        frame("35=4|34=8|49=DESK|56=ROUTER|52=20240312-09:30:34.000|123=Y|36=12|"),
        frame("35=5|34=9|49=DESK|56=ROUTER|52=20240312-09:30:35.000|58=bye|"),
        frame("35=W|34=10|49=FEED|56=ROUTER|52=20240312-09:30:36.000|262=MD1|55=[N/A]|48=XS1800000000|22=4|268=2|269=0|270=99.25|269=1|270=99.5|"),
        frame("35=8|34=11|49=DLR-A|56=ROUTER|52=20240312-09:30:37.000|37=O1|17=E1|150=F|39=2|55=[N/A]|48=XS1800000000|22=4|54=1|151=0|14=1000000|6=99.375|31=99.375|32=1000000|"),
    ]
}

/// Folds what the views read into a number, so reading cannot be optimised away and the
/// counted runs can be checked against the warm-up run.
#[derive(Default)]
struct Digest(u64);

impl Digest {
    fn bytes(&mut self, v: Option<&[u8]>) {
        self.0 = self
            .0
            .wrapping_mul(31)
            .wrapping_add(v.map_or(7, |b| b.len() as u64));
    }
    fn num(&mut self, v: Option<u64>) {
        self.0 = self.0.wrapping_mul(31).wrapping_add(v.unwrap_or(11));
    }
    fn dec(&mut self, v: Option<Decimal>) {
        self.num(v.map(|d| d.mantissa() as u64 ^ u64::from(d.scale())));
    }
    fn time(&mut self, v: Option<Nanos>) {
        self.num(v.map(|t| t.0));
    }
}

fn read_views(m: &Message<'_>, d: &mut Digest) {
    let h = Header::of(m);
    d.num(h.msg_seq_num());
    d.bytes(h.sender_comp_id());
    d.time(h.sending_time());
    if let Ok(r) = QuoteRequest::try_from(m) {
        d.bytes(r.quote_req_id());
        for leg in r.related_syms() {
            d.bytes(leg.security_id());
            d.num(leg.security_id_source().map(|s| s.as_fix().len() as u64));
            d.num(leg.side().map(|s| u64::from(s.as_fix()[0])));
            d.dec(leg.order_qty());
            d.dec(leg.coupon_rate());
            d.num(leg.maturity_date().map(u64::from));
            d.num(leg.settl_date().map(u64::from));
            d.time(leg.expire_time());
            for p in leg.parties() {
                d.bytes(p.party_id());
                d.num(p.party_role().map(|r| r as u64));
                d.num(Some(u64::from(p.names_dealer())));
            }
        }
    }
    if let Ok(q) = Quote::try_from(m) {
        d.bytes(q.quote_id());
        d.dec(q.bid_px());
        d.dec(q.offer_px());
        d.dec(q.bid_size());
        d.dec(q.mid_px());
        d.time(q.valid_until_time());
        d.num(q.quote_type().map(|t| t.value() as u64));
    }
    if let Ok(l) = Logon::try_from(m) {
        d.num(l.heart_bt_int_s());
        d.num(l.reset_seq_num_flag().map(u64::from));
        d.num(l.encrypt_method().map(|e| e.value() as u64));
    }
    if let Ok(x) = Heartbeat::try_from(m) {
        d.bytes(x.test_req_id());
    }
    if let Ok(x) = TestRequest::try_from(m) {
        d.bytes(x.test_req_id());
    }
    if let Ok(x) = ResendRequest::try_from(m) {
        d.num(x.begin_seq_no());
        d.num(x.end_seq_no());
    }
    if let Ok(x) = Reject::try_from(m) {
        d.num(x.ref_seq_num());
        d.num(x.ref_tag_id());
        d.bytes(x.text());
    }
    if let Ok(x) = SequenceReset::try_from(m) {
        d.num(Some(u64::from(x.is_gap_fill())));
        d.num(x.new_seq_no());
    }
    if let Ok(x) = Logout::try_from(m) {
        d.bytes(x.text());
    }
    if let Ok(w) = MarketDataSnapshotFullRefresh::try_from(m) {
        d.bytes(w.security_id());
        for e in w.md_entries() {
            d.num(e.md_entry_type().map(|t| u64::from(t.as_fix()[0])));
            d.dec(e.md_entry_px());
        }
    }
    if let Ok(e) = ExecutionReport::try_from(m) {
        d.num(e.exec_type().map(|t| u64::from(t.as_fix()[0])));
        d.num(e.ord_status().map(|t| u64::from(t.as_fix()[0])));
        d.dec(e.last_px());
        d.dec(e.last_qty());
        d.dec(e.leaves_qty());
    }
}

/// Encodes the router's typical outbound messages: a QuoteRequest to a dealer (one leg,
/// two parties) and a Quote to the desk.
fn encode_replies(e: &mut Encoder, d: &mut Digest) {
    let px = Decimal::new(99_375, 3).expect("valid");
    let qty = Decimal::new(5_000_000, 0).expect("valid");
    let now = Nanos(1_710_235_800_123_000_000);
    e.start(QuoteRequest::MSG_TYPE)
        .uint(34, 12)
        .str(49, b"ROUTER")
        .str(56, b"DLR-A")
        .timestamp(52, now)
        .str(131, b"RTR-000042")
        .uint(146, 1)
        .str(55, b"[N/A]")
        .str(48, b"XS1800000000")
        .str(22, SecurityIdSource::Isin.as_fix())
        .str(54, Side::Buy.as_fix());
    qty.encode(e, 38);
    e.timestamp(126, now.add_millis(30_000))
        .uint(453, 1)
        .str(448, b"DLR-A")
        .char(447, b'D')
        .int(452, party_role::LIQUIDITY_PROVIDER);
    d.num(e.finish().ok().map(|f| f.len() as u64));
    e.start(Quote::MSG_TYPE)
        .uint(34, 13)
        .str(49, b"ROUTER")
        .str(56, b"DESK")
        .timestamp(52, now)
        .str(131, b"RFQ-1")
        .str(117, b"Q-1")
        .str(537, QuoteType::Tradeable.as_fix())
        .str(48, b"XS1800000000")
        .str(22, SecurityIdSource::Isin.as_fix());
    px.encode(e, 132);
    px.encode(e, 133);
    qty.encode(e, 134);
    d.num(e.finish().ok().map(|f| f.len() as u64));
}

struct Codec {
    framer: Framer,
    decoder: Decoder,
    validator: Validator,
    encoder: Encoder,
}

/// One steady-state pass over every message; returns the digest and how many validated.
fn pass(c: &mut Codec, frames: &[Vec<u8>]) -> (u64, u32) {
    let mut d = Digest::default();
    let mut valid = 0;
    for f in frames {
        let FrameStatus::Frame { len } = c.framer.next_frame(f) else {
            d.num(None);
            continue;
        };
        let Ok(mut m) = c.decoder.decode(&f[..len]) else {
            d.num(None);
            continue;
        };
        if c.validator.validate(&mut m).is_ok() {
            valid += 1;
        }
        read_views(&m, &mut d);
    }
    encode_replies(&mut c.encoder, &mut d);
    (d.0, valid)
}

#[test]
fn the_counter_sees_allocations() {
    let (v, n) = counted(|| vec![1u8; 64]);
    assert_eq!(v.len(), 64);
    assert!(n >= 1, "the counting allocator must count");
}

#[test]
fn decode_validate_views_and_encode_do_not_allocate() {
    let mut frames = vec![quote_request(1), quote_request(4), quote()];
    frames.extend(session_messages());
    let mut c = Codec {
        framer: Framer::new(MAX_MESSAGE_BYTES),
        decoder: Decoder::new(512),
        validator: Validator::fix44(),
        encoder: Encoder::new(MAX_MESSAGE_BYTES),
    };
    // Warm-up (allocation allowed): also the reference result.
    let (expected_digest, valid) = pass(&mut c, &frames);
    assert_eq!(
        valid as usize,
        frames.len(),
        "every test message is valid FIX 4.4"
    );

    const ROUNDS: usize = 1_000;
    let (digests_match, allocations) = counted(|| {
        let mut all_match = true;
        for _ in 0..ROUNDS {
            let (digest, valid) = pass(&mut c, &frames);
            all_match &= digest == expected_digest && valid as usize == frames.len();
        }
        all_match
    });
    assert!(digests_match, "every round reads the same values");
    assert_eq!(
        allocations,
        0,
        "{allocations} allocations in {ROUNDS} rounds of {} messages",
        frames.len()
    );
}
