//! Writing FIX messages into one reusable buffer, with a correct BodyLength and CheckSum.
//!
//! Owns the byte layout of outbound frames. The buffer is sized once (the maximum message
//! size) and reused for every message, so encoding never allocates; a message that would not
//! fit is refused with `EncodeError::TooLarge`, never truncated and never grown. The body is
//! written first after a reserved prefix; `finish` then writes `8=..|9=..|` right-aligned
//! against the body, so no byte is moved. It writes what it is told in the order it is told:
//! field order and content are the caller's (session, application) responsibility.

use super::frame::{checksum, SOH};
use crate::time::{Nanos, UtcTimestampCache};

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The message would exceed the encoder's maximum size.
    TooLarge { limit: usize },
    /// `finish` without `start`.
    NotStarted,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::TooLarge { limit } => write!(f, "message exceeds {limit} bytes"),
            EncodeError::NotStarted => f.write_str("finish called before start"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Room reserved in front of the body for `8=FIX.x.y<SOH>9=<up to 10 digits><SOH>`.
const PREFIX_ROOM: usize = 32;

/// Bytes beyond `limit + PREFIX_ROOM` in the buffer: a field's tag text, `=` and SOH
/// (`room_for` counts the value; the tag's up to 11 bytes and the trailer fit here).
const BUF_SLACK: usize = 32;

/// A reusable FIX message writer.
#[derive(Debug)]
pub struct Encoder {
    /// `8=<BeginString>|9=`, built once.
    lead: [u8; 24],
    lead_len: usize,
    /// The frame being built: `PREFIX_ROOM` bytes reserved, then the body from MsgType on.
    /// Sized once (limit, prefix room and one field's slack), never grown: `room_for` keeps
    /// every write inside it, so fields are written in place without a temporary.
    buf: Box<[u8]>,
    /// Bytes of `buf` in use.
    len: usize,
    limit: usize,
    begin_string: &'static [u8],
    started: bool,
    overflow: bool,
    frame_start: usize,
    /// SendingTime and other stamps: the date part formatted once per second.
    stamps: UtcTimestampCache,
}

impl Encoder {
    /// An encoder for `FIX.4.4` messages of at most `max_message_bytes` bytes in total.
    pub fn new(max_message_bytes: usize) -> Encoder {
        Encoder::with_begin_string(max_message_bytes, b"FIX.4.4")
    }

    pub fn with_begin_string(max_message_bytes: usize, begin_string: &'static [u8]) -> Encoder {
        assert!(
            begin_string.len() <= 16,
            "BeginString too long for the reserved prefix"
        );
        let mut lead = [0u8; 24];
        let mut lead_len = 0;
        for chunk in [&b"8="[..], begin_string, &[SOH], b"9="] {
            lead[lead_len..lead_len + chunk.len()].copy_from_slice(chunk);
            lead_len += chunk.len();
        }
        Encoder {
            lead,
            lead_len,
            buf: vec![0; max_message_bytes + PREFIX_ROOM + BUF_SLACK].into_boxed_slice(),
            len: 0,
            limit: max_message_bytes,
            begin_string,
            started: false,
            overflow: false,
            frame_start: 0,
            stamps: UtcTimestampCache::default(),
        }
    }

    /// Starts a new message of type `msg_type`, discarding anything unfinished.
    pub fn start(&mut self, msg_type: &[u8]) -> &mut Self {
        self.len = PREFIX_ROOM;
        self.started = true;
        self.overflow = false;
        self.frame_start = 0;
        self.str(35, msg_type)
    }

    #[inline]
    fn room_for(&mut self, n: usize) -> bool {
        // Body so far + n + trailer + the longest prefix must stay within the limit.
        let used = self.len - PREFIX_ROOM + n + 7 + 2 + self.begin_string.len() + 1 + 13;
        if used > self.limit {
            self.overflow = true;
        }
        !self.overflow
    }

    /// The standard header after MsgType's start, in one go: `34=<seq>|`, the pre-encoded
    /// `sender` field (`49=..|`), `52=<now>|` (milliseconds) and the pre-encoded `target`
    /// field (`56=..|`). The same bytes as `uint(34, seq).raw(sender).timestamp(52, now)
    /// .raw(target)`, with the constant tag texts written without formatting.
    pub fn session_header(
        &mut self,
        seq: u64,
        sender: &[u8],
        now: Nanos,
        target: &[u8],
    ) -> &mut Self {
        let mut digits = [0u8; 20];
        let seq_text = write_u64(seq, &mut digits);
        let stamp = *self.stamps.format(now);
        // 3 + seq + 1, sender, 3 + stamp + 1, target.
        let n = seq_text.len() + sender.len() + stamp.len() + target.len() + 8;
        if self.room_for(n) {
            let mut at = self.len;
            self.buf[at..at + 3].copy_from_slice(b"34=");
            at += 3;
            copy_small(&mut self.buf[at..at + seq_text.len()], seq_text);
            at += seq_text.len();
            self.buf[at] = SOH;
            at += 1;
            copy_small(&mut self.buf[at..at + sender.len()], sender);
            at += sender.len();
            self.buf[at..at + 3].copy_from_slice(b"52=");
            at += 3;
            self.buf[at..at + stamp.len()].copy_from_slice(&stamp);
            at += stamp.len();
            self.buf[at] = SOH;
            at += 1;
            copy_small(&mut self.buf[at..at + target.len()], target);
            self.len = at + target.len();
        }
        self
    }

    /// A field whose value is written as given.
    #[inline]
    pub fn str(&mut self, tag: u32, value: &[u8]) -> &mut Self {
        if self.room_for(value.len() + 12) {
            // Tag digits and `=` straight into the buffer (`room_for` and `BUF_SLACK` keep
            // the field inside it), then the value and SOH.
            let at = self.len;
            let t = put_tag_eq(&mut self.buf[at..at + 11], tag);
            let v = at + t;
            copy_small(&mut self.buf[v..v + value.len()], value);
            self.buf[v + value.len()] = SOH;
            self.len = v + value.len() + 1;
        }
        self
    }

    /// Fields already encoded as `tag=value<SOH>...` (for example an application body built
    /// elsewhere), appended as they are.
    pub fn raw(&mut self, fields: &[u8]) -> &mut Self {
        if self.room_for(fields.len()) {
            let at = self.len;
            copy_small(&mut self.buf[at..at + fields.len()], fields);
            self.len = at + fields.len();
        }
        self
    }

    /// A field with an unsigned integer value.
    pub fn uint(&mut self, tag: u32, value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let s = write_u64(value, &mut digits);
        self.str(tag, s)
    }

    /// A field with a signed integer value.
    pub fn int(&mut self, tag: u32, value: i64) -> &mut Self {
        let mut tmp = [0u8; 21];
        let mut digits = [0u8; 20];
        let s = write_u64(value.unsigned_abs(), &mut digits);
        let mut n = 0;
        if value < 0 {
            tmp[0] = b'-';
            n = 1;
        }
        tmp[n..n + s.len()].copy_from_slice(s);
        n += s.len();
        self.str(tag, &tmp[..n])
    }

    /// A single-character field.
    pub fn char(&mut self, tag: u32, value: u8) -> &mut Self {
        self.str(tag, &[value])
    }

    /// A boolean field (`Y` / `N`).
    pub fn bool(&mut self, tag: u32, value: bool) -> &mut Self {
        self.char(tag, if value { b'Y' } else { b'N' })
    }

    /// A decimal `mantissa * 10^-scale`, written without exponent and with `scale` decimals.
    pub fn decimal(&mut self, tag: u32, mantissa: i64, scale: u8) -> &mut Self {
        let mut digits = [0u8; 20];
        let s = write_u64(mantissa.unsigned_abs(), &mut digits);
        let scale = usize::from(scale.min(18));
        let mut tmp = [0u8; 44];
        let mut n = 0;
        if mantissa < 0 {
            tmp[0] = b'-';
            n = 1;
        }
        if scale == 0 {
            tmp[n..n + s.len()].copy_from_slice(s);
            n += s.len();
        } else if s.len() > scale {
            let int_len = s.len() - scale;
            tmp[n..n + int_len].copy_from_slice(&s[..int_len]);
            n += int_len;
            tmp[n] = b'.';
            n += 1;
            tmp[n..n + scale].copy_from_slice(&s[int_len..]);
            n += scale;
        } else {
            tmp[n] = b'0';
            tmp[n + 1] = b'.';
            n += 2;
            for _ in 0..scale - s.len() {
                tmp[n] = b'0';
                n += 1;
            }
            tmp[n..n + s.len()].copy_from_slice(s);
            n += s.len();
        }
        self.str(tag, &tmp[..n])
    }

    /// A UTCTimestamp field with milliseconds.
    pub fn timestamp(&mut self, tag: u32, t: Nanos) -> &mut Self {
        let text = *self.stamps.format(t);
        self.str(tag, &text)
    }

    /// Bytes of the body written so far (from MsgType on), for callers that copy fields
    /// of a message being built.
    pub fn body(&self) -> &[u8] {
        if self.len < PREFIX_ROOM {
            return &[];
        }
        &self.buf[PREFIX_ROOM..self.len]
    }

    /// Completes the message: writes BeginString and BodyLength in front of the body and the
    /// CheckSum after it, and returns the whole frame.
    pub fn finish(&mut self) -> Result<&[u8], EncodeError> {
        if !self.started {
            return Err(EncodeError::NotStarted);
        }
        self.started = false;
        if self.overflow {
            return Err(EncodeError::TooLarge { limit: self.limit });
        }
        let body_len = self.len - PREFIX_ROOM;
        let mut digits = [0u8; 20];
        let len_text = write_u64(body_len as u64, &mut digits);
        // `8=FIX.4.4|9=` is the same for every message: written as one piece.
        let lead = &self.lead[..self.lead_len];
        let prefix_len = lead.len() + len_text.len() + 1;
        let start = PREFIX_ROOM - prefix_len;
        let digits_at = start + lead.len();
        copy_small(&mut self.buf[start..digits_at], lead);
        copy_small(&mut self.buf[digits_at..PREFIX_ROOM - 1], len_text);
        self.buf[PREFIX_ROOM - 1] = SOH;
        let sum = checksum(&self.buf[start..self.len]);
        let end = self.len + 7;
        self.buf[self.len..end].copy_from_slice(&[
            b'1',
            b'0',
            b'=',
            b'0' + sum / 100,
            b'0' + (sum / 10) % 10,
            b'0' + sum % 10,
            SOH,
        ]);
        self.len = end;
        self.frame_start = start;
        Ok(&self.buf[start..end])
    }

    /// The last finished frame (empty if none).
    pub fn frame(&self) -> &[u8] {
        if self.started || self.len <= PREFIX_ROOM {
            return &[];
        }
        &self.buf[self.frame_start..self.len]
    }
}

/// `dst.copy_from_slice(src)` (same lengths) without a call into `memcpy` for the short
/// values most fields have: two overlapping fixed-size copies cover any length from 4 to 32,
/// which the compiler turns into a few loads and stores.
#[inline(always)]
pub fn copy_small(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    assert_eq!(dst.len(), n, "copy_small: lengths differ");
    match n {
        0 => {}
        1..=3 => {
            // 1: [0]; 2: [0], [1]; 3: [0], [2], [1].
            dst[0] = src[0];
            dst[n - 1] = src[n - 1];
            dst[n / 2] = src[n / 2];
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        8..=15 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        16..=32 => {
            dst[..16].copy_from_slice(&src[..16]);
            dst[n - 16..].copy_from_slice(&src[n - 16..]);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// Writes `tag` and `=` (`"131="`) into `out` and returns them: tags of up to four digits
/// (all of FIX 4.4's) without a division loop.
#[inline]
pub fn write_tag_eq(tag: u32, out: &mut [u8; 11]) -> &[u8] {
    let n = put_tag_eq(out, tag);
    &out[..n]
}

/// Writes `tag` and `=` at the start of `out` (at least 11 bytes long) and returns how many
/// bytes it wrote.
#[inline]
pub fn put_tag_eq(out: &mut [u8], tag: u32) -> usize {
    let d = |v: u32| b'0' + (v % 10) as u8;
    let n = match tag {
        0..=9 => {
            out[0] = d(tag);
            1
        }
        10..=99 => {
            out[..2].copy_from_slice(&[d(tag / 10), d(tag)]);
            2
        }
        100..=999 => {
            out[..3].copy_from_slice(&[d(tag / 100), d(tag / 10), d(tag)]);
            3
        }
        1000..=9999 => {
            out[..4].copy_from_slice(&[d(tag / 1000), d(tag / 100), d(tag / 10), d(tag)]);
            4
        }
        _ => {
            let mut digits = [0u8; 10];
            let s = write_u64(u64::from(tag), &mut digits);
            out[..s.len()].copy_from_slice(s);
            s.len()
        }
    };
    out[n] = b'=';
    n + 1
}

/// Writes `v` in decimal at the end of `out` and returns the digits written (the lowest
/// `N` digits if `out` is too short). (A two-digits-per-division version measured more
/// instructions on the RFQ path, not fewer.)
#[inline]
pub fn write_u64<const N: usize>(mut v: u64, out: &mut [u8; N]) -> &[u8] {
    let mut i = N;
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    &out[i..]
}

#[cfg(test)]
mod tests {

    #[test]
    fn decimal_digits_of_every_magnitude() {
        let mut v = 1u64;
        for _ in 0..20 {
            for x in [v - 1, v, v + 1, v.saturating_mul(7)] {
                let mut out = [0u8; 20];
                assert_eq!(write_u64(x, &mut out), x.to_string().as_bytes());
            }
            v = v.saturating_mul(10);
        }
        let mut out = [0u8; 20];
        assert_eq!(
            write_u64(u64::MAX, &mut out),
            u64::MAX.to_string().as_bytes()
        );
        let mut short = [0u8; 3];
        assert_eq!(
            write_u64(123_456, &mut short),
            b"456",
            "lowest digits when too short"
        );
        let mut short = [0u8; 4];
        assert_eq!(write_u64(123_456, &mut short), b"3456");
    }

    #[test]
    fn tag_text_is_the_decimal_tag_and_equals() {
        for tag in [
            0u32,
            7,
            10,
            99,
            100,
            131,
            999,
            1000,
            9999,
            10_000,
            65_535,
            u32::MAX,
        ] {
            let mut out = [0u8; 11];
            assert_eq!(write_tag_eq(tag, &mut out), format!("{tag}=").as_bytes());
        }
    }
    use super::*;
    use crate::fix::frame::{FrameStatus, Framer};

    #[test]
    fn writes_a_frame_the_framer_accepts() {
        let mut e = Encoder::new(4096);
        e.start(b"0")
            .uint(34, 2)
            .str(49, b"ISLD")
            .str(56, b"TW")
            .timestamp(52, Nanos(1_024_503_250_123_000_000));
        let f = e.finish().unwrap().to_vec();
        assert_eq!(
            String::from_utf8(f.clone()).unwrap().replace('\x01', "|"),
            "8=FIX.4.4|9=49|35=0|34=2|49=ISLD|56=TW|52=20020619-16:14:10.123|10=168|"
        );
        assert_eq!(
            Framer::new(4096).next_frame(&f),
            FrameStatus::Frame { len: f.len() }
        );
    }

    #[test]
    fn body_length_is_right_past_256_and_past_9999_bytes() {
        for size in [10usize, 255, 256, 257, 999, 1000, 9_999, 10_000, 100_000] {
            let mut e = Encoder::new(200_000);
            let text = vec![b'x'; size];
            e.start(b"B").uint(34, 1).str(58, &text);
            let f = e.finish().unwrap().to_vec();
            assert_eq!(
                Framer::new(200_000).next_frame(&f),
                FrameStatus::Frame { len: f.len() },
                "size {size}"
            );
        }
    }

    #[test]
    fn refuses_to_exceed_its_limit() {
        let mut e = Encoder::new(128);
        e.start(b"B").str(58, &[b'x'; 200]);
        assert_eq!(e.finish(), Err(EncodeError::TooLarge { limit: 128 }));
        // and is usable again afterwards
        e.start(b"0").uint(34, 1);
        let n = e.finish().unwrap().len();
        assert!(n <= 128);
    }

    #[test]
    fn numbers_and_decimals() {
        let mut e = Encoder::new(4096);
        e.start(b"S")
            .int(1, -42)
            .uint(2, 0)
            .decimal(3, 10_125, 2)
            .decimal(4, -5, 3)
            .decimal(5, 7, 0)
            .bool(6, true)
            .char(7, b'2');
        let f = String::from_utf8(e.finish().unwrap().to_vec())
            .unwrap()
            .replace('\x01', "|");
        assert!(
            f.contains("|1=-42|2=0|3=101.25|4=-0.005|5=7|6=Y|7=2|"),
            "{f}"
        );
    }

    #[test]
    fn finish_without_start_is_an_error() {
        let mut e = Encoder::new(256);
        assert_eq!(e.finish(), Err(EncodeError::NotStarted));
    }
}
