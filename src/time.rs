//! Wall-clock instants as plain numbers, and their FIX UTCTimestamp text form.
//!
//! This module owns the `Nanos` type (nanoseconds since the Unix epoch, UTC) and the
//! conversion to and from `YYYYMMDD-HH:MM:SS[.sss]`. It never reads the clock: callers at the
//! edge (the network loop, tools) read it once per cycle and pass `now` into the core, which is
//! what makes replay and simulation exact. Formatting writes into caller buffers and never
//! allocates.

/// An instant, in nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(pub u64);

impl Nanos {
    pub const PER_MS: u64 = 1_000_000;
    pub const PER_SEC: u64 = 1_000_000_000;

    pub fn from_secs(secs: u64) -> Nanos {
        Nanos(secs * Self::PER_SEC)
    }
    pub fn from_millis(ms: u64) -> Nanos {
        Nanos(ms * Self::PER_MS)
    }
    pub fn as_millis(self) -> u64 {
        self.0 / Self::PER_MS
    }
    pub fn as_secs(self) -> u64 {
        self.0 / Self::PER_SEC
    }
    pub fn saturating_sub(self, other: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(other.0))
    }
    pub fn add_millis(self, ms: u64) -> Nanos {
        Nanos(self.0.saturating_add(ms.saturating_mul(Self::PER_MS)))
    }
    /// Absolute distance between two instants.
    pub fn abs_diff(self, other: Nanos) -> Nanos {
        Nanos(self.0.abs_diff(other.0))
    }
}

/// Length of `YYYYMMDD-HH:MM:SS.sss`.
pub const UTC_TIMESTAMP_MS_LEN: usize = 21;

/// Days since 1970-01-01 to a (year, month, day) civil date, proleptic Gregorian.
/// The era arithmetic follows the well-known days-from-civil derivation (H. Hinnant,
/// "chrono-compatible low-level date algorithms"); written here from the published maths.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn put2(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Writes `YYYYMMDD-HH:MM:SS.sss` into `out` and returns the 21 bytes written.
///
/// Years past 9999 cannot be written in this format; the instant is clamped to the last
/// representable millisecond (an invariant no real clock reaches).
pub fn format_utc_timestamp_ms(t: Nanos, out: &mut [u8; UTC_TIMESTAMP_MS_LEN]) -> &[u8] {
    const MAX_MS: u64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999
    let total_ms = t.as_millis().min(MAX_MS);
    let ms = (total_ms % 1000) as u32;
    let secs = total_ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = (secs % 86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let year = year as u32;
    put2(&mut out[0..2], year / 100);
    put2(&mut out[2..4], year % 100);
    put2(&mut out[4..6], month);
    put2(&mut out[6..8], day);
    out[8] = b'-';
    put2(&mut out[9..11], sod / 3600);
    out[11] = b':';
    put2(&mut out[12..14], (sod / 60) % 60);
    out[14] = b':';
    put2(&mut out[15..17], sod % 60);
    out[17] = b'.';
    out[18] = b'0' + (ms / 100) as u8;
    put2(&mut out[19..21], ms % 100);
    &out[..]
}

/// `format_utc_timestamp_ms` for a writer that stamps many messages within the same second:
/// the date and time of day are formatted once per second, only the milliseconds after
/// that. The output is byte for byte `format_utc_timestamp_ms`'s. Pure: it holds the last
/// text it wrote, never reads the clock.
#[derive(Debug, Clone)]
pub struct UtcTimestampCache {
    /// Whole seconds (clamped milliseconds / 1000) of `text`; `u64::MAX` before first use.
    second: u64,
    /// Whole milliseconds (clamped) of `text`; `u64::MAX` before first use.
    ms: u64,
    text: [u8; UTC_TIMESTAMP_MS_LEN],
}

impl Default for UtcTimestampCache {
    fn default() -> Self {
        UtcTimestampCache {
            second: u64::MAX,
            ms: u64::MAX,
            text: [0; UTC_TIMESTAMP_MS_LEN],
        }
    }
}

impl UtcTimestampCache {
    /// `t` as `YYYYMMDD-HH:MM:SS.sss`.
    pub fn format(&mut self, t: Nanos) -> &[u8; UTC_TIMESTAMP_MS_LEN] {
        const MAX_MS: u64 = 253_402_300_799_999; // as format_utc_timestamp_ms clamps
        let total_ms = t.as_millis().min(MAX_MS);
        if total_ms == self.ms {
            // The same millisecond again (every message of one engine step): as it is.
            return &self.text;
        }
        self.ms = total_ms;
        let second = total_ms / 1000;
        if second != self.second {
            format_utc_timestamp_ms(t, &mut self.text);
            self.second = second;
        } else {
            let ms = (total_ms % 1000) as u32;
            self.text[18] = b'0' + (ms / 100) as u8;
            put2(&mut self.text[19..21], ms % 100);
        }
        &self.text
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// Parses a FIX UTCTimestamp: `YYYYMMDD-HH:MM:SS`, optionally followed by `.` and 3, 6 or 9
/// fractional digits. Returns `None` for anything else, including out-of-range parts
/// (month 13, second 61; a leap second 60 is accepted as FIX allows it).
pub fn parse_utc_timestamp(s: &[u8]) -> Option<Nanos> {
    if s.len() < 17 || s[8] != b'-' || s[11] != b':' || s[14] != b':' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[4..6])?;
    let day = digits(&s[6..8])?;
    let hour = digits(&s[9..11])?;
    let minute = digits(&s[12..14])?;
    let second = digits(&s[15..17])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let frac_ns = match s.len() {
        17 => 0u64,
        21 | 24 | 27 if s[17] == b'.' => {
            let f = &s[18..];
            let v = u64::from(digits(f)?);
            v * 10u64.pow(9 - f.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    if days < 0 {
        return None;
    }
    let secs =
        days as u64 * 86_400 + u64::from(hour) * 3600 + u64::from(minute) * 60 + u64::from(second);
    // Years past 2554 do not fit in u64 nanoseconds: refuse rather than wrap.
    let ns = secs.checked_mul(Nanos::PER_SEC)?.checked_add(frac_ns)?;
    Some(Nanos(ns))
}

/// Parses a FIX UTCTimeOnly `HH:MM:SS[.sss]` (validation only: returns whether it is well formed).
pub fn is_utc_time_only(s: &[u8]) -> bool {
    if s.len() != 8 && s.len() != 12 {
        return false;
    }
    if s[2] != b':' || s[5] != b':' {
        return false;
    }
    let ok = matches!((digits(&s[0..2]), digits(&s[3..5]), digits(&s[6..8])),
        (Some(h), Some(m), Some(sec)) if h < 24 && m < 60 && sec <= 60);
    ok && (s.len() == 8 || (s[8] == b'.' && digits(&s[9..12]).is_some()))
}

/// Parses a FIX UTCDateOnly / LocalMktDate `YYYYMMDD` (validation only).
pub fn is_date_only(s: &[u8]) -> bool {
    s.len() == 8
        && matches!((digits(&s[0..4]), digits(&s[4..6]), digits(&s[6..8])),
            (Some(_), Some(m), Some(d)) if (1..=12).contains(&m) && (1..=31).contains(&d))
}

#[cfg(test)]
mod tests {

    #[test]
    fn cached_timestamps_equal_the_plain_format_across_seconds_and_days() {
        let mut cache = UtcTimestampCache::default();
        let start = Nanos::from_secs(1_700_006_398); // two seconds before a UTC midnight
        for step_ms in 0..4_500u64 {
            let t = Nanos(start.0 + step_ms * 1_000_000 + 123);
            let mut plain = [0u8; UTC_TIMESTAMP_MS_LEN];
            format_utc_timestamp_ms(t, &mut plain);
            assert_eq!(cache.format(t), &plain, "at +{step_ms} ms");
        }
        // Going back in time (a replay) is formatted correctly too.
        let mut plain = [0u8; UTC_TIMESTAMP_MS_LEN];
        format_utc_timestamp_ms(start, &mut plain);
        assert_eq!(cache.format(start), &plain);
    }
    use super::*;

    #[test]
    fn formats_known_instants() {
        let mut buf = [0u8; UTC_TIMESTAMP_MS_LEN];
        assert_eq!(
            format_utc_timestamp_ms(Nanos(0), &mut buf),
            b"19700101-00:00:00.000"
        );
        // 2002-06-19T16:14:10.123Z
        let t = Nanos(1_024_503_250_123_000_000);
        assert_eq!(
            format_utc_timestamp_ms(t, &mut buf),
            b"20020619-16:14:10.123"
        );
        // a leap-year day: 2024-02-29T23:59:59.999Z
        let t = Nanos(1_709_251_199_999_000_000);
        assert_eq!(
            format_utc_timestamp_ms(t, &mut buf),
            b"20240229-23:59:59.999"
        );
    }

    #[test]
    fn parse_inverts_format_over_a_range_of_days() {
        let mut buf = [0u8; UTC_TIMESTAMP_MS_LEN];
        let mut t = 0u64;
        // every 7.3 days or so across ~200 years, with varying milliseconds
        while t < 6_400_000_000_000 {
            let n = Nanos(t * 1_000_000);
            let s = format_utc_timestamp_ms(n, &mut buf).to_vec();
            assert_eq!(
                parse_utc_timestamp(&s),
                Some(n),
                "{}",
                String::from_utf8_lossy(&s)
            );
            t += 631_152_001;
        }
    }

    #[test]
    fn parse_accepts_seconds_and_sub_second_precisions() {
        assert_eq!(
            parse_utc_timestamp(b"19700101-00:00:01"),
            Some(Nanos(1_000_000_000))
        );
        assert_eq!(parse_utc_timestamp(b"19700101-00:00:01.5"), None);
        assert_eq!(
            parse_utc_timestamp(b"19700101-00:00:01.000001"),
            Some(Nanos(1_000_001_000))
        );
        assert_eq!(
            parse_utc_timestamp(b"19700101-00:00:01.000000001"),
            Some(Nanos(1_000_000_001))
        );
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            &b""[..],
            b"2002061916:14:10",
            b"20021319-16:14:10",
            b"20020619-24:14:10",
            b"20020619-16:60:10",
            b"20020619-16:14:61",
            b"2002O619-16:14:10",
            b"20020619-16:14:10.12x",
        ] {
            assert_eq!(
                parse_utc_timestamp(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn parse_refuses_instants_beyond_u64_nanoseconds() {
        assert_eq!(parse_utc_timestamp(b"99991231-00:00:00"), None);
        assert!(parse_utc_timestamp(b"25540101-00:00:00").is_some());
        assert_eq!(parse_utc_timestamp(b"25550101-00:00:00"), None);
    }

    #[test]
    fn time_and_date_only() {
        assert!(is_utc_time_only(b"16:14:10"));
        assert!(is_utc_time_only(b"16:14:10.123"));
        assert!(!is_utc_time_only(b"25:14:10"));
        assert!(is_date_only(b"20020619"));
        assert!(!is_date_only(b"20021319"));
    }
}
