//! Turning an `I` line into the bytes sent on the wire.
//!
//! Owns `<TIME>`, `<TIME-n>` and `<TIME+n>` substitution (UTC `YYYYMMDD-HH:MM:SS`, whole
//! seconds: that is the form whose lengths the scripts' expected BodyLength values assume,
//! e.g. an echoed `60=<TIME>` in `2d_GarbledMessage.def`), inserting BodyLength (9) after
//! BeginString when the line has none, and appending CheckSum (10) when the line has none. A
//! line that already carries 9= or 10= keeps them exactly as written: that is how the scripts
//! send garbled input (wrong length, wrong checksum, fields out of order). `now` is a
//! parameter; this module reads no clock and does no I/O.

use crate::fix::frame::checksum;
use crate::fix::SOH;
use crate::time::{format_utc_timestamp_ms, Nanos, UTC_TIMESTAMP_MS_LEN};

/// Length of `YYYYMMDD-HH:MM:SS`.
const UTC_TIMESTAMP_S_LEN: usize = 17;
/// Largest `n` accepted in `<TIME+n>` (a day; the scripts use at most 121).
const MAX_TIME_OFFSET_S: u64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Vec<u8>),
    /// `<TIME>` shifted by this many seconds.
    Time {
        offset_s: i64,
    },
}

/// An `I` line, ready to be rendered at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTemplate {
    segments: Vec<Segment>,
}

impl SendTemplate {
    /// Splits the line into literal bytes and time placeholders. Anything that is not a
    /// well-formed `<TIME>`, `<TIME+n>` or `<TIME-n>` stays literal.
    pub fn parse(line: &[u8]) -> SendTemplate {
        let mut segments = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < line.len() {
            if let Some((offset_s, used)) = time_placeholder(&line[i..]) {
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Time { offset_s });
                i += used;
            } else {
                literal.push(line[i]);
                i += 1;
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        SendTemplate { segments }
    }

    /// The bytes to send at `now`, into `out` (cleared first).
    pub fn render(&self, now: Nanos, out: &mut Vec<u8>) {
        out.clear();
        for seg in &self.segments {
            match seg {
                Segment::Literal(bytes) => out.extend_from_slice(bytes),
                Segment::Time { offset_s } => {
                    let shifted = if *offset_s >= 0 {
                        Nanos(
                            now.0
                                .saturating_add(offset_s.unsigned_abs() * Nanos::PER_SEC),
                        )
                    } else {
                        Nanos(
                            now.0
                                .saturating_sub(offset_s.unsigned_abs() * Nanos::PER_SEC),
                        )
                    };
                    let mut buf = [0u8; UTC_TIMESTAMP_MS_LEN];
                    let text = format_utc_timestamp_ms(shifted, &mut buf);
                    out.extend_from_slice(&text[..UTC_TIMESTAMP_S_LEN]);
                }
            }
        }
        complete_frame(out);
    }
}

/// `<TIME>` / `<TIME+n>` / `<TIME-n>` at the front of `s`: (offset in seconds, bytes used).
fn time_placeholder(s: &[u8]) -> Option<(i64, usize)> {
    let rest = s.strip_prefix(b"<TIME")?;
    if rest.first() == Some(&b'>') {
        return Some((0, 6));
    }
    let (&sign, rest) = rest.split_first()?;
    if sign != b'+' && sign != b'-' {
        return None;
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 6 || rest.get(digits) != Some(&b'>') {
        return None;
    }
    let n = rest[..digits]
        .iter()
        .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0'));
    if n > MAX_TIME_OFFSET_S {
        return None;
    }
    let n = n as i64;
    Some((if sign == b'-' { -n } else { n }, 5 + 1 + digits + 1))
}

/// Offset of the field `tag=` (at the start or right after an SOH), if present.
pub(crate) fn find_field(msg: &[u8], tag: &[u8]) -> Option<usize> {
    let matches_at = |at: usize| {
        msg.len() > at + tag.len() && &msg[at..at + tag.len()] == tag && msg[at + tag.len()] == b'='
    };
    if matches_at(0) {
        return Some(0);
    }
    msg.iter()
        .enumerate()
        .filter(|&(_, &b)| b == SOH)
        .map(|(i, _)| i + 1)
        .find(|&at| matches_at(at))
}

/// Inserts BodyLength after a leading BeginString when absent, then appends CheckSum when
/// absent. Lines that do not start with `8=` get no BodyLength (there is nowhere to put it).
fn complete_frame(msg: &mut Vec<u8>) {
    if msg.starts_with(b"8=") && find_field(msg, b"9").is_none() {
        if let Some(bs_end) = msg.iter().position(|&b| b == SOH) {
            let body_start = bs_end + 1;
            let body_end = find_field(msg, b"10")
                .filter(|&at| at >= body_start)
                .unwrap_or(msg.len());
            let len_field = format!("9={}\x01", body_end - body_start);
            msg.splice(body_start..body_start, len_field.into_bytes());
        }
    }
    if find_field(msg, b"10").is_none() {
        let sum = checksum(msg);
        msg.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::{FrameStatus, Framer};

    fn soh(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }
    fn bar(b: &[u8]) -> String {
        String::from_utf8_lossy(b).replace('\x01', "|")
    }
    /// 2002-06-19T16:14:10.500Z
    const NOW: Nanos = Nanos(1_024_503_250_500_000_000);

    fn render(line: &str) -> Vec<u8> {
        let mut out = Vec::new();
        SendTemplate::parse(&soh(line)).render(NOW, &mut out);
        out
    }

    #[test]
    fn substitutes_times_in_whole_seconds_with_offsets() {
        let out = render("8=FIX.4.4|35=0|52=<TIME>|122=<TIME-10>|60=<TIME+121>|");
        let text = bar(&out);
        assert!(
            text.contains("|52=20020619-16:14:10|122=20020619-16:14:00|60=20020619-16:16:11|"),
            "{text}"
        );
    }

    #[test]
    fn inserts_body_length_and_checksum_making_a_valid_frame() {
        let out = render("8=FIX.4.4|35=0|34=2|49=TW44|52=<TIME>|56=ISLD|");
        // 5 + 5 + 8 + 21 + 8 = 47 bytes of body with a 17-character SendingTime
        assert!(
            bar(&out).starts_with("8=FIX.4.4|9=47|35=0|"),
            "{}",
            bar(&out)
        );
        assert_eq!(
            Framer::new(4096).next_frame(&out),
            FrameStatus::Frame { len: out.len() }
        );
    }

    #[test]
    fn keeps_written_body_length_and_checksum() {
        // 2m: a BodyLength that is too short is sent as written, with a computed CheckSum.
        let out = render("8=FIX.4.4|9=30|35=D|34=2|52=<TIME>|");
        let text = bar(&out);
        assert!(text.starts_with("8=FIX.4.4|9=30|35=D|"), "{text}");
        let sum = checksum(&out[..out.len() - 7]);
        assert!(text.ends_with(&format!("|10={sum:03}|")), "{text}");

        // 3b: CheckSum written as 256 is kept; BodyLength is still inserted and correct.
        let out = render("8=FIX.4.4|35=0|34=2|49=TW44|52=<TIME>|56=ISLD|10=256|");
        let text = bar(&out);
        assert!(text.starts_with("8=FIX.4.4|9=47|35=0|"), "{text}");
        assert!(text.ends_with("|10=256|"), "{text}");

        // 2t: fields out of order, both written: sent as is.
        let out = render("35=0|8=FIX.4.4|9=29|34=2|52=<TIME>|10=121|");
        assert_eq!(
            bar(&out),
            "35=0|8=FIX.4.4|9=29|34=2|52=20020619-16:14:10|10=121|"
        );
        // 2d: a garbled CheckSum `10=0` stays garbled.
        let out = render("8=FIX.4.4|9=52|35=0|34=2|4garbled9=TW|10=0|");
        assert!(bar(&out).ends_with("|4garbled9=TW|10=0|"), "{}", bar(&out));
    }

    #[test]
    fn garbled_tag_text_is_not_mistaken_for_body_length() {
        let out = render("8=FIX.4.4|35=0|4garbled9=TW|");
        assert!(
            bar(&out).starts_with("8=FIX.4.4|9=18|35=0|"),
            "{}",
            bar(&out)
        );
    }

    #[test]
    fn malformed_placeholders_stay_literal() {
        let out = render("8=FIX.4.4|58=<TIME|58=<TIME+x>|58=<TIME*3>|58=<TIME+99999999>|");
        let text = bar(&out);
        assert!(
            text.contains("|58=<TIME|58=<TIME+x>|58=<TIME*3>|58=<TIME+99999999>|"),
            "{text}"
        );
    }

    #[test]
    fn times_before_the_epoch_saturate() {
        let mut out = Vec::new();
        SendTemplate::parse(b"8=FIX.4.4\x0152=<TIME-100>\x01").render(Nanos(0), &mut out);
        assert!(bar(&out).contains("52=19700101-00:00:00|"), "{}", bar(&out));
    }
}
