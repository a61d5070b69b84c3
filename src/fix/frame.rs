//! Framing: finding whole FIX messages in a byte stream.
//!
//! Owns the rules for where a message starts and ends (`8=` BeginString, `9=` BodyLength, the
//! seven-byte `10=nnn<SOH>` trailer), our maximum message size, and resynchronisation after
//! garbage. A complete candidate frame's BodyLength is checked by where its trailer sits and its
//! CheckSum by one byte sum (fefix's `RawDecoder` did both, at twice the instructions). This
//! module is a pure function of its input: it holds no state, never allocates, never blocks
//! and never panics on any input.

/// The field separator.
pub const SOH: u8 = 0x01;

/// Bytes in the trailer `10=nnn<SOH>`.
const TRAILER_LEN: usize = 7;

/// What the front of a receive buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// Not enough bytes yet to say; read more. Nothing should be consumed.
    Incomplete,
    /// A whole frame of `len` bytes starts at offset 0, and its BodyLength and CheckSum are
    /// right.
    Frame { len: usize },
    /// The first `skip` bytes are garbage, or a frame whose BodyLength or CheckSum is wrong:
    /// consume them and look again. FIX says such input is ignored, not answered.
    Garbled { skip: usize },
    /// The message at offset 0 declares a body longer than the configured maximum (or an
    /// unparseable length). No amount of reading can make it valid: the connection should be
    /// dropped.
    TooLarge { declared_body_len: u64 },
}

/// Stateless framer with a size limit.
#[derive(Debug, Clone)]
pub struct Framer {
    max_message_bytes: usize,
}

/// Smallest possible message: `8=FIX.4.4|9=5|35=0|10=000|`.
const MIN_FRAME_LEN: usize = 20;

impl Framer {
    /// A framer that refuses messages longer than `max_message_bytes` in total.
    pub fn new(max_message_bytes: usize) -> Framer {
        Framer { max_message_bytes }
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Looks at the front of `buf` and says what is there. See [`FrameStatus`].
    pub fn next_frame(&self, buf: &[u8]) -> FrameStatus {
        if buf.is_empty() {
            return FrameStatus::Incomplete;
        }
        if !starts_like_begin_string(buf) {
            return match resync_offset(buf) {
                Some(at) => FrameStatus::Garbled { skip: at },
                // Keep a short tail: it may be the start of `<SOH>8=FIX` split across reads.
                None => {
                    let keep = buf.len().min(5);
                    if buf.len() > keep {
                        FrameStatus::Garbled {
                            skip: buf.len() - keep,
                        }
                    } else {
                        FrameStatus::Incomplete
                    }
                }
            };
        }
        // 8=<BeginString><SOH>
        let Some(bs_end) = find(buf, SOH, 2, 32) else {
            return if buf.len() < 34 {
                FrameStatus::Incomplete
            } else {
                self.skip_this(buf)
            };
        };
        // 9=<digits><SOH>
        let rest = &buf[bs_end + 1..];
        if rest.len() < 2 {
            return FrameStatus::Incomplete;
        }
        if &rest[..2] != b"9=" {
            return self.skip_this(buf);
        }
        let digits_at = bs_end + 3;
        let mut body_len: u64 = 0;
        let mut i = digits_at;
        loop {
            let Some(&b) = buf.get(i) else {
                return FrameStatus::Incomplete;
            };
            match b {
                b'0'..=b'9' => {
                    body_len = body_len
                        .saturating_mul(10)
                        .saturating_add(u64::from(b - b'0'));
                    if i - digits_at >= 12 {
                        return FrameStatus::TooLarge {
                            declared_body_len: body_len,
                        };
                    }
                }
                SOH if i > digits_at => break,
                _ => return self.skip_this(buf),
            }
            i += 1;
        }
        let body_start = i + 1;
        let total = (body_start as u64)
            .saturating_add(body_len)
            .saturating_add(TRAILER_LEN as u64);
        if total > self.max_message_bytes as u64 {
            return FrameStatus::TooLarge {
                declared_body_len: body_len,
            };
        }
        let total = total as usize;
        // A checksum field that is not `10=nnn` (e.g. `10=0`) ends the frame at its own SOH,
        // as QuickFIX's parser does: skipping `total` bytes would eat into the next message.
        let body_end = total - TRAILER_LEN;
        if buf.len() > body_end + 3 && &buf[body_end..body_end + 3] == b"10=" {
            let digits = &buf[body_end + 3..buf.len().min(body_end + 3 + 8)];
            if let Some(p) = digits.iter().position(|&b| b == SOH) {
                let end = body_end + 3 + p + 1;
                if end != total {
                    return FrameStatus::Garbled { skip: end };
                }
            }
        }
        if buf.len() < total {
            return FrameStatus::Incomplete;
        }
        if total < MIN_FRAME_LEN {
            return self.skip_this(buf);
        }
        let candidate = &buf[..total];
        // The trailer must sit exactly where BodyLength says, with three checksum digits.
        let t = &candidate[total - TRAILER_LEN..];
        let trailer_ok = candidate[total - TRAILER_LEN - 1] == SOH
            && &t[..3] == b"10="
            && t[3..6].iter().all(u8::is_ascii_digit)
            && t[6] == SOH;
        if trailer_ok && checksum_matches(candidate) {
            FrameStatus::Frame { len: total }
        } else {
            FrameStatus::Garbled { skip: total }
        }
    }

    /// The frame at offset 0 is broken before its length is known: skip to the next start.
    fn skip_this(&self, buf: &[u8]) -> FrameStatus {
        match resync_offset(buf) {
            Some(at) => FrameStatus::Garbled { skip: at },
            None => FrameStatus::Garbled {
                skip: buf.len().saturating_sub(5).max(1),
            },
        }
    }
}

fn starts_like_begin_string(buf: &[u8]) -> bool {
    let n = buf.len().min(6);
    buf[..n] == b"8=FIX."[..n]
}

/// Offset (>= 1) of the next `8=FIX.` (or of a prefix of it at the very end), if any.
///
/// Like QuickFIX, the next start is looked for anywhere, not only after a separator: a valid
/// message that directly follows garbage must not be lost. A false start costs nothing, since
/// every candidate is still checked for BodyLength and CheckSum.
fn resync_offset(buf: &[u8]) -> Option<usize> {
    let mut from = 1;
    while from < buf.len() {
        let rel = buf[from..].iter().position(|&b| b == b'8')?;
        let at = from + rel;
        let tail = &buf[at..];
        let n = tail.len().min(6);
        if tail[..n] == b"8=FIX."[..n] {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn find(buf: &[u8], byte: u8, from: usize, within: usize) -> Option<usize> {
    let end = buf.len().min(from + within);
    if from >= end {
        return None;
    }
    buf[from..end]
        .iter()
        .position(|&b| b == byte)
        .map(|p| p + from)
}

/// Whether the three CheckSum digits of a frame whose trailer is in place (`10=nnn<SOH>` as
/// its last seven bytes) equal the byte sum of everything before the trailer. BodyLength was
/// checked by where the trailer sits.
fn checksum_matches(frame: &[u8]) -> bool {
    let (before, trailer) = frame.split_at(frame.len() - TRAILER_LEN);
    let declared = trailer[3..6]
        .iter()
        .fold(0u32, |a, &b| a * 10 + u32::from(b.wrapping_sub(b'0')));
    declared == u32::from(checksum(before))
}

/// CheckSum of `bytes`: the sum of all bytes modulo 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    // A plain wrapping byte sum: the compiler vectorises it (a hand-written eight-bytes-at-a-
    // time version measured more instructions, not fewer).
    bytes.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

#[cfg(test)]
pub(crate) mod tests {

    #[test]
    fn checksum_is_the_byte_sum_modulo_256_at_every_length() {
        // Bytes near 255 stress the lanes; lengths cross the 8-byte and 128-word folds.
        let bytes: Vec<u8> = (0..5000u32).map(|i| (255 - (i * 7) % 13) as u8).collect();
        for len in (0..40).chain([1023, 1024, 1025, 2047, 4999, 5000]) {
            let plain = bytes[..len].iter().fold(0u8, |a, &b| a.wrapping_add(b));
            assert_eq!(checksum(&bytes[..len]), plain, "length {len}");
        }
    }
    use super::*;

    /// Builds a well-formed frame from `|`-separated body fields (without 8, 9, 10).
    pub fn frame(body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut out = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
        let sum = checksum(&out);
        out.extend_from_slice(format!("10={:03}\x01", sum).as_bytes());
        out
    }

    #[test]
    fn finds_a_whole_frame_and_waits_for_partial_ones() {
        let f = frame("35=0|34=2|49=A|56=B|52=20020619-16:14:10|");
        let framer = Framer::new(4096);
        assert_eq!(framer.next_frame(&f), FrameStatus::Frame { len: f.len() });
        for cut in 0..f.len() {
            assert_eq!(
                framer.next_frame(&f[..cut]),
                FrameStatus::Incomplete,
                "cut at {cut}"
            );
        }
        let mut two = f.clone();
        two.extend_from_slice(&f);
        assert_eq!(framer.next_frame(&two), FrameStatus::Frame { len: f.len() });
    }

    #[test]
    fn bad_checksum_is_garbled_whole_frame() {
        let mut f = frame("35=0|34=2|49=A|56=B|52=20020619-16:14:10|");
        let n = f.len();
        f[n - 2] = if f[n - 2] == b'9' { b'0' } else { f[n - 2] + 1 };
        assert_eq!(
            Framer::new(4096).next_frame(&f),
            FrameStatus::Garbled { skip: n }
        );
    }

    #[test]
    fn a_short_checksum_field_ends_the_frame_without_eating_the_next() {
        let good = frame("35=0|34=3|49=A|56=B|52=20020619-16:14:10|");
        let text = String::from_utf8(good.clone()).unwrap();
        let at = text.rfind("10=").unwrap();
        let mut bad = text.as_bytes()[..at].to_vec();
        bad.extend_from_slice(b"10=0\x01");
        let bad_len = bad.len();
        bad.extend_from_slice(&good);
        let framer = Framer::new(4096);
        assert_eq!(
            framer.next_frame(&bad),
            FrameStatus::Garbled { skip: bad_len }
        );
        assert_eq!(
            framer.next_frame(&bad[bad_len..]),
            FrameStatus::Frame { len: good.len() }
        );
    }

    #[test]
    fn wrong_body_length_is_garbled() {
        let good = frame("35=0|34=2|49=A|56=B|52=20020619-16:14:10|");
        let text = String::from_utf8(good.clone()).unwrap();
        assert!(text.contains("\x019=41\x01"), "{text:?}");
        let short = text.replacen("9=41", "9=30", 1).into_bytes();
        let framer = Framer::new(4096);
        match framer.next_frame(&short) {
            FrameStatus::Garbled { skip } => assert!(skip < short.len()),
            other => panic!("expected garbled, got {other:?}"),
        }
    }

    #[test]
    fn garbage_before_a_frame_is_skipped_to_the_next_begin_string() {
        let f = frame("35=0|34=2|49=A|56=B|52=20020619-16:14:10|");
        let mut buf = b"junk\x0135=0\x01".to_vec();
        buf.extend_from_slice(&f);
        let framer = Framer::new(4096);
        assert_eq!(framer.next_frame(&buf), FrameStatus::Garbled { skip: 10 });
        assert_eq!(
            framer.next_frame(&buf[10..]),
            FrameStatus::Frame { len: f.len() }
        );
    }

    #[test]
    fn garbage_without_a_start_keeps_only_a_short_tail() {
        let buf = vec![b'x'; 1 << 20];
        assert_eq!(
            Framer::new(4096).next_frame(&buf),
            FrameStatus::Garbled {
                skip: (1 << 20) - 5
            }
        );
    }

    #[test]
    fn huge_declared_length_is_refused_before_reading_it() {
        let framer = Framer::new(65_536);
        assert_eq!(
            framer.next_frame(b"8=FIX.4.4\x019=99999999999\x0135=0\x01"),
            FrameStatus::TooLarge {
                declared_body_len: 99_999_999_999
            }
        );
        assert!(matches!(
            framer.next_frame(b"8=FIX.4.4\x019=99999999999999999999999999"),
            FrameStatus::TooLarge { .. }
        ));
        assert_eq!(
            framer.next_frame(b"8=FIX.4.4\x019=70000\x01"),
            FrameStatus::TooLarge {
                declared_body_len: 70_000
            }
        );
    }

    #[test]
    fn non_numeric_length_is_garbled() {
        let framer = Framer::new(4096);
        assert!(matches!(
            framer.next_frame(b"8=FIX.4.4\x019=abc\x0135=0\x01"),
            FrameStatus::Garbled { .. }
        ));
        assert!(matches!(
            framer.next_frame(b"8=FIX.4.4\x0135=0\x019=5\x01"),
            FrameStatus::Garbled { .. }
        ));
    }

    #[test]
    fn checksum_sums_bytes_mod_256() {
        assert_eq!(checksum(b""), 0);
        assert_eq!(checksum(&[200, 100]), 44);
    }
}
