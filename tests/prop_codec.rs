//! Property tests of the codec: encode -> frame -> decode round trips for arbitrary field
//! lists, the Framer and Decoder (and the validator and views behind them) never panicking
//! on arbitrary or mutated bytes, and the Framer finding the same frames however a stream
//! is split into reads.
//!
//! Deterministic: a fixed RNG seed and no failure files; a failure prints the minimal input.
//! No timing, no I/O.

use proptest::prelude::*;
use rfq_router::fix::validate::Validator;
use rfq_router::fix::views::*;
use rfq_router::fix::{Decoder, Encoder, FrameStatus, Framer};
use std::sync::OnceLock;

const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Tags that a plain field list must avoid: the header/trailer fields the encoder writes
/// itself, and length/data pairs whose values are read by length.
fn is_plain_tag(tag: u32) -> bool {
    const RESERVED: [u32; 4] = [8, 9, 10, 35];
    const LENGTH_OR_DATA: [u32; 32] = [
        90, 91, 93, 89, 95, 96, 212, 213, 348, 349, 350, 351, 352, 353, 354, 355, 356, 357, 358,
        359, 360, 361, 362, 363, 364, 365, 445, 446, 618, 619, 621, 622,
    ];
    !RESERVED.contains(&tag) && !LENGTH_OR_DATA.contains(&tag)
}

fn field() -> impl Strategy<Value = (u32, Vec<u8>)> {
    let tag = prop_oneof![1u32..1_000, 1u32..100_000, 1u32..1_000_000_000]
        .prop_filter("plain tag", |t| is_plain_tag(*t));
    // Any byte but SOH.
    let value = proptest::collection::vec(any::<u8>().prop_filter("no SOH", |b| *b != 0x01), 0..24);
    (tag, value)
}

fn msg_type() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        Just(&b"0"[..]),
        Just(&b"R"[..]),
        Just(&b"S"[..]),
        Just(&b"AJ"[..]),
        Just(&b"8"[..])
    ]
}

fn encode(msg_type: &[u8], fields: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut e = Encoder::new(MAX_MESSAGE_BYTES);
    e.start(msg_type);
    for (tag, value) in fields {
        e.str(*tag, value);
    }
    e.finish().expect("fits").to_vec()
}

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(Validator::fix44)
}

/// Frames, tokenises, validates and reads every view of whatever is in `bytes`, the way the
/// session will. Returns how many frames were decoded. Must never panic.
fn consume(bytes: &[u8]) -> usize {
    let framer = Framer::new(MAX_MESSAGE_BYTES);
    let mut decoder = Decoder::new(512);
    let mut at = 0;
    let mut decoded = 0;
    while at < bytes.len() {
        match framer.next_frame(&bytes[at..]) {
            FrameStatus::Frame { len } => {
                if let Ok(mut m) = decoder.decode(&bytes[at..at + len]) {
                    let _ = validator().validate(&mut m);
                    touch_views(&m);
                    decoded += 1;
                }
                at += len;
            }
            FrameStatus::Garbled { skip } => {
                assert!(skip > 0, "the framer must make progress");
                at += skip;
            }
            FrameStatus::Incomplete | FrameStatus::TooLarge { .. } => break,
        }
    }
    decoded
}

fn touch_views(m: &rfq_router::fix::Message<'_>) {
    let h = Header::of(m);
    let _ = (h.msg_seq_num(), h.sending_time(), h.poss_dup_flag());
    if let Ok(r) = QuoteRequest::try_from(m) {
        for leg in r.related_syms() {
            let _ = (
                leg.security_id(),
                leg.side(),
                leg.order_qty(),
                leg.expire_time(),
            );
            for p in leg.parties() {
                let _ = (p.party_id(), p.party_role(), p.names_dealer());
            }
        }
    }
    if let Ok(q) = Quote::try_from(m) {
        let _ = (
            q.bid_px(),
            q.offer_px(),
            q.valid_until_time(),
            q.parties().count(),
        );
    }
    if let Ok(w) = MarketDataSnapshotFullRefresh::try_from(m) {
        for e in w.md_entries() {
            let _ = (e.md_entry_type(), e.md_entry_px());
        }
    }
}

/// A body (from MsgType on, `|` as SOH) framed with a correct BodyLength and CheckSum.
fn frame_body(body: &[u8]) -> Vec<u8> {
    let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
    out.extend_from_slice(body);
    let sum = out.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

const QUOTE_REQUEST_BODY: &[u8] = b"35=R\x0134=2\x0149=DESK\x0156=ROUTER\x0152=20240312-09:30:00.123\x01131=RFQ-1\x01146=1\x0155=[N/A]\x0148=XS0000000001\x0122=4\x0154=1\x0138=5000000\x0164=20240314\x0115=EUR\x01126=20240312-09:35:00.000\x01453=2\x01448=DLR-A\x01447=D\x01452=1\x01448=DLR-B\x01447=D\x01452=35\x01";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EED_F1C5),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn encode_frame_decode_round_trips(mt in msg_type(), fields in proptest::collection::vec(field(), 0..40)) {
        let frame = encode(mt, &fields);
        let framer = Framer::new(MAX_MESSAGE_BYTES);
        prop_assert_eq!(framer.next_frame(&frame), FrameStatus::Frame { len: frame.len() });
        let mut decoder = Decoder::new(64);
        let m = decoder.decode(&frame).expect("our own frame tokenises");
        prop_assert_eq!(m.msg_type(), mt);
        let got: Vec<(u32, Vec<u8>)> = m.iter().map(|f| (f.tag, f.value.to_vec())).collect();
        prop_assert_eq!(got.len(), fields.len() + 4);
        prop_assert_eq!(got[0].0, 8);
        prop_assert_eq!(got[1].0, 9);
        prop_assert_eq!(got[2].0, 35);
        prop_assert_eq!(&got[3..got.len() - 1], &fields[..]);
        prop_assert_eq!(got[got.len() - 1].0, 10);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        consume(&bytes);
        let mut decoder = Decoder::new(64);
        // The decoder on its own (without the framer's checks) must not panic either.
        if let Ok(mut m) = decoder.decode(&bytes) {
            let _ = validator().validate(&mut m);
            touch_views(&m);
        }
    }

    #[test]
    fn mutated_frames_with_valid_envelopes_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12)
    ) {
        let mut body = QUOTE_REQUEST_BODY.to_vec();
        for (at, byte, op) in edits {
            let i = at.index(body.len() + 1);
            match op {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i, byte),
                _ if i < body.len() => { body.remove(i); }
                _ => {}
            }
        }
        let frame = frame_body(&body);
        consume(&frame);
        let mut stream = frame.clone();
        stream.extend_from_slice(&frame_body(QUOTE_REQUEST_BODY));
        // Whatever the first frame became, the intact one after it is still found.
        prop_assert!(consume(&stream) >= 1);
    }

    #[test]
    fn framer_finds_the_same_frames_however_the_stream_is_split(
        messages in proptest::collection::vec((msg_type(), proptest::collection::vec(field(), 0..12)), 1..6),
        garbage in proptest::collection::vec(proptest::option::of("[a-z =]{1,20}"), 6),
        cuts in proptest::collection::vec(1usize..64, 1..40),
    ) {
        let frames: Vec<Vec<u8>> = messages.iter().map(|(mt, f)| encode(mt, f)).collect();
        let mut stream = Vec::new();
        for (k, f) in frames.iter().enumerate() {
            if let Some(g) = &garbage[k] {
                // Garbage is dropped up to the next SOH-preceded BeginString.
                stream.extend_from_slice(g.as_bytes());
                stream.push(0x01);
            }
            stream.extend_from_slice(f);
        }
        let framer = Framer::new(MAX_MESSAGE_BYTES);
        let mut buf: Vec<u8> = Vec::new();
        let mut found: Vec<Vec<u8>> = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        while at < stream.len() {
            let n = (*cut.next().expect("cycle")).min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + n]);
            at += n;
            loop {
                match framer.next_frame(&buf) {
                    FrameStatus::Frame { len } => {
                        found.push(buf[..len].to_vec());
                        buf.drain(..len);
                    }
                    FrameStatus::Garbled { skip } => {
                        prop_assert!(skip > 0);
                        buf.drain(..skip);
                    }
                    FrameStatus::Incomplete => break,
                    FrameStatus::TooLarge { declared_body_len } => {
                        prop_assert!(false, "no frame here is too large: {}", declared_body_len);
                    }
                }
            }
        }
        prop_assert_eq!(found, frames);
        prop_assert!(buf.len() <= 5, "only a short garbage tail may remain");
    }
}

#[test]
fn the_mutation_seed_is_a_whole_quote_request() {
    let frame = frame_body(QUOTE_REQUEST_BODY);
    assert_eq!(consume(&frame), 1);
    let mut d = Decoder::new(64);
    let m = d.decode(&frame).expect("tokenises");
    let r = QuoteRequest::try_from(&m).expect("a QuoteRequest");
    assert_eq!(r.quote_req_id(), Some(&b"RFQ-1"[..]));
}
