//! `Decimal`: an exact fixed-point number for FIX prices, quantities and amounts.
//!
//! Owns the FIX "float" text rules (an optional `-`, digits with at most one `.`, at least one
//! digit; no `+`, no exponent, no spaces), the exact value `mantissa * 10^-scale` with an
//! `i64` mantissa and a scale of at most 18, value comparison across scales, conversion to
//! `f64` for analytics, and writing through `Encoder::decimal`. Parsing is strict and never
//! rounds: text whose value does not fit (too many significant digits) is refused with
//! `None`, never truncated. It must not allocate, read configuration or know any tag.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::encode::Encoder;

/// The largest scale (digits after the decimal point) a `Decimal` carries.
pub const MAX_SCALE: u8 = 18;

/// `10^n` for `n` in `0..=18`.
const POW10: [u64; 19] = {
    let mut t = [1u64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// An exact decimal number `mantissa * 10^-scale`.
///
/// The scale is kept as written (`2000.00` has scale 2 and is written back as `2000.00`);
/// equality, ordering and hashing are by value, so `2000.00 == 2000`. The mantissa is never
/// `i64::MIN`, so negation cannot overflow.
#[derive(Clone, Copy)]
pub struct Decimal {
    mantissa: i64,
    scale: u8,
}

/// Why `str::parse::<Decimal>` failed: the text is not a FIX float, or its value does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseDecimalError;

impl fmt::Display for ParseDecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a FIX decimal, or out of range")
    }
}

impl std::error::Error for ParseDecimalError {}

impl Decimal {
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        scale: 0,
    };

    /// `mantissa * 10^-scale`; `None` if `scale > 18` or `mantissa == i64::MIN`.
    pub const fn new(mantissa: i64, scale: u8) -> Option<Decimal> {
        if scale > MAX_SCALE || mantissa == i64::MIN {
            None
        } else {
            Some(Decimal { mantissa, scale })
        }
    }

    /// A whole number (`i64::MIN` is refused, see [`Decimal::new`]).
    pub const fn from_int(value: i64) -> Option<Decimal> {
        Decimal::new(value, 0)
    }

    pub const fn mantissa(self) -> i64 {
        self.mantissa
    }

    pub const fn scale(self) -> u8 {
        self.scale
    }

    pub const fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    pub const fn is_negative(self) -> bool {
        self.mantissa < 0
    }

    /// Parses FIX float text: `-12.5`, `002000.00`, `.5`, `5.` are accepted; an empty
    /// string, a lone `-` or `.`, `+1`, `1e5`, ` 1`, `1,5`, `1.2.3` and values that need more
    /// than an `i64` mantissa or more than 18 significant decimals are `None`. Trailing zeros
    /// after the point are kept in the scale when they fit and dropped (the value is the
    /// same) when they do not.
    pub fn parse(text: &[u8]) -> Option<Decimal> {
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some(_) => (false, text),
            None => return None,
        };
        let mut magnitude: u64 = 0;
        let mut scale: u32 = 0;
        // Zeros seen after the point but not yet applied to the mantissa.
        let mut pending_zeros: u32 = 0;
        let mut seen_point = false;
        let mut seen_digit = false;
        for &b in digits {
            match b {
                b'0'..=b'9' => {
                    seen_digit = true;
                    let d = u64::from(b - b'0');
                    if !seen_point {
                        magnitude = magnitude.checked_mul(10)?.checked_add(d)?;
                    } else if d == 0 {
                        pending_zeros += 1;
                        // Bounded by the input length; keeps the counter from growing past
                        // anything meaningful on absurd inputs.
                        pending_zeros = pending_zeros.min(u32::from(u8::MAX));
                    } else {
                        let shift = pending_zeros + 1;
                        scale += shift;
                        if scale > u32::from(MAX_SCALE) {
                            return None;
                        }
                        magnitude = magnitude
                            .checked_mul(POW10[shift as usize])?
                            .checked_add(d)?;
                        pending_zeros = 0;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => return None,
            }
        }
        if !seen_digit {
            return None;
        }
        // Keep as many of the written trailing zeros as the representation allows.
        while pending_zeros > 0 && scale < u32::from(MAX_SCALE) {
            match magnitude.checked_mul(10) {
                Some(m) if m <= i64::MAX as u64 => {
                    magnitude = m;
                    scale += 1;
                    pending_zeros -= 1;
                }
                _ => break,
            }
        }
        if magnitude > i64::MAX as u64 {
            return None;
        }
        let mantissa = magnitude as i64;
        Some(Decimal {
            mantissa: if negative { -mantissa } else { mantissa },
            scale: scale as u8,
        })
    }

    /// The nearest `f64` (exact for mantissas below 2^53 at scale 0; otherwise within one
    /// rounding of the true value). For analytics, never for prices on the wire.
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / POW10[usize::from(self.scale)] as f64
    }

    /// The same value at scale `scale`, if it is exact and fits: `1.50 -> 1.5000` (scale 4)
    /// or `1.50 -> 1.5` (scale 1) work, `1.25 -> 1.2` (scale 1) does not.
    pub fn rescale(self, scale: u8) -> Option<Decimal> {
        if scale > MAX_SCALE {
            return None;
        }
        match scale.cmp(&self.scale) {
            Ordering::Equal => Some(self),
            Ordering::Greater => {
                let m = self
                    .mantissa
                    .checked_mul(POW10[usize::from(scale - self.scale)] as i64)?;
                Decimal::new(m, scale)
            }
            Ordering::Less => {
                let p = POW10[usize::from(self.scale - scale)] as i64;
                if self.mantissa % p != 0 {
                    return None;
                }
                Decimal::new(self.mantissa / p, scale)
            }
        }
    }

    /// The same value with no trailing zeros after the point (`2000.00 -> 2000`).
    pub fn normalized(self) -> Decimal {
        let mut d = self;
        while d.scale > 0 && d.mantissa % 10 == 0 {
            d.mantissa /= 10;
            d.scale -= 1;
        }
        d
    }

    /// Writes the value as field `tag` (exactly as `Display` shows it).
    pub fn encode(self, encoder: &mut Encoder, tag: u32) -> &mut Encoder {
        encoder.decimal(tag, self.mantissa, self.scale)
    }

    /// The value scaled to `10^18` units as an `i128`: exact, and comparable across scales.
    fn scaled_i128(self) -> i128 {
        i128::from(self.mantissa) * i128::from(POW10[usize::from(MAX_SCALE - self.scale)])
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Decimal) -> bool {
        self.scaled_i128() == other.scaled_i128()
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        self.scaled_i128().cmp(&other.scaled_i128())
    }
}

impl Hash for Decimal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let n = self.normalized();
        n.mantissa.hash(state);
        n.scale.hash(state);
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let magnitude = self.mantissa.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{magnitude}");
        }
        let p = POW10[usize::from(self.scale)];
        write!(
            f,
            "{sign}{}.{:0width$}",
            magnitude / p,
            magnitude % p,
            width = usize::from(self.scale)
        )
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({self})")
    }
}

impl std::str::FromStr for Decimal {
    type Err = ParseDecimalError;

    fn from_str(s: &str) -> Result<Decimal, ParseDecimalError> {
        Decimal::parse(s.as_bytes()).ok_or(ParseDecimalError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::frame::{FrameStatus, Framer};
    use crate::fix::message::Decoder;
    use proptest::prelude::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text.as_bytes()).unwrap_or_else(|| panic!("{text:?} should parse"))
    }

    fn parts(text: &str) -> (i64, u8) {
        let v = d(text);
        (v.mantissa(), v.scale())
    }

    #[test]
    fn parses_fix_float_forms() {
        assert_eq!(parts("-12.5"), (-125, 1));
        assert_eq!(parts("002000.00"), (200_000, 2));
        assert_eq!(parts(".5"), (5, 1));
        assert_eq!(parts("5."), (5, 0));
        assert_eq!(parts("0"), (0, 0));
        assert_eq!(parts("-0"), (0, 0));
        assert_eq!(parts("100"), (100, 0));
        assert_eq!(parts("99.015625"), (99_015_625, 6));
        assert_eq!(parts("0.000000000000000001"), (1, 18));
        assert_eq!(parts("9223372036854775807"), (i64::MAX, 0));
        assert_eq!(parts("-9223372036854775807"), (-i64::MAX, 0));
        assert_eq!(
            parts("0000000000000000000000000000000001.5"),
            (15, 1),
            "leading zeros never overflow"
        );
    }

    #[test]
    fn refuses_garbage_exponents_and_overflow() {
        for bad in [
            "", "-", ".", "-.", "+1", "1e5", "1E5", " 1", "1 ", "1,5", "1.2.3", "--1", "1-",
            "0x10", "NaN", "inf", "1.5\x01",
        ] {
            assert_eq!(Decimal::parse(bad.as_bytes()), None, "{bad:?}");
        }
        // Too large for an i64 mantissa.
        assert_eq!(Decimal::parse(b"9223372036854775808"), None);
        assert_eq!(Decimal::parse(b"-9223372036854775808"), None);
        assert_eq!(Decimal::parse(b"922337203685477580.8"), None);
        // A significant 19th decimal cannot be represented.
        assert_eq!(Decimal::parse(b"0.0000000000000000001"), None);
        assert_eq!(Decimal::parse(b"10.000000000000000001"), None);
        assert_eq!(
            parts("1.000000000000000001"),
            (1_000_000_000_000_000_001, 18)
        );
    }

    #[test]
    fn trailing_zeros_are_kept_when_they_fit_and_dropped_when_not() {
        assert_eq!(
            parts("1.0000000000000000000000000"),
            (1_000_000_000_000_000_000, 18)
        );
        // 19 significant integer digits leave no room for the written zeros: same value.
        let v = d("1234567890123456789.000");
        assert_eq!((v.mantissa(), v.scale()), (1_234_567_890_123_456_789, 0));
        // A few hundred zeros are still only zeros.
        let long = format!("7.{}", "0".repeat(300));
        assert_eq!(d(&long), d("7"));
    }

    #[test]
    fn compares_by_value_across_scales() {
        assert_eq!(d("2000.00"), d("2000"));
        assert!(d("101.25") > d("101.2"));
        assert!(d("-0.5") < d("0"));
        assert!(d("-1.5") < d("-1.25"));
        assert!(d("0.000000000000000001") > Decimal::ZERO);
        assert!(d("9223372036854775807") > d("922337203685477580.7"));
        assert_eq!(d("1.50").cmp(&d("1.5")), Ordering::Equal);
        let mut set = std::collections::HashSet::new();
        set.insert(d("2.50"));
        assert!(set.contains(&d("2.5")), "hash agrees with eq");
    }

    #[test]
    fn converts_to_f64_and_rescales_exactly() {
        assert_eq!(d("-12.5").to_f64(), -12.5);
        assert_eq!(d("99.75").to_f64(), 99.75);
        assert_eq!(
            d("1.50").rescale(4).map(|x| (x.mantissa(), x.scale())),
            Some((15_000, 4))
        );
        assert_eq!(
            d("1.50").rescale(1).map(|x| (x.mantissa(), x.scale())),
            Some((15, 1))
        );
        assert_eq!(d("1.25").rescale(1), None);
        assert_eq!(d("9223372036854775807").rescale(1), None);
        assert_eq!(d("1").rescale(19), None);
        assert_eq!(d("2000.00").normalized().scale(), 0);
        assert_eq!(Decimal::new(1, 19), None);
        assert_eq!(Decimal::new(i64::MIN, 0), None);
        assert_eq!("12.5".parse::<Decimal>(), Ok(d("12.5")));
        assert_eq!("1e3".parse::<Decimal>(), Err(ParseDecimalError));
    }

    #[test]
    fn displays_like_the_encoder_writes() {
        for (m, s, text) in [
            (-125, 1, "-12.5"),
            (200_000, 2, "2000.00"),
            (5, 3, "0.005"),
            (-5, 3, "-0.005"),
            (0, 2, "0.00"),
            (7, 0, "7"),
        ] {
            let v = Decimal::new(m, s).unwrap();
            assert_eq!(v.to_string(), text);
            let mut e = Encoder::new(256);
            e.start(b"S");
            v.encode(&mut e, 44);
            let body = String::from_utf8(e.body().to_vec()).unwrap();
            assert_eq!(body, format!("35=S\x0144={text}\x01"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1024,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0xDEC1_3A15),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any representable decimal written by the encoder is read back with the same
        /// mantissa and scale, through the framer and the tokeniser.
        #[test]
        fn encode_then_parse_round_trips(mantissa in (i64::MIN + 1)..=i64::MAX, scale in 0u8..=MAX_SCALE) {
            let v = Decimal::new(mantissa, scale).unwrap();
            let mut e = Encoder::new(256);
            e.start(b"S");
            v.encode(&mut e, 44);
            let frame = e.finish().unwrap().to_vec();
            prop_assert_eq!(Framer::new(256).next_frame(&frame), FrameStatus::Frame { len: frame.len() });
            let mut dec = Decoder::new(16);
            let m = dec.decode(&frame).unwrap();
            let back = Decimal::parse(m.get(44).unwrap()).unwrap();
            prop_assert_eq!((back.mantissa(), back.scale()), (mantissa, scale));
            prop_assert_eq!(back.to_string(), v.to_string());
        }

        /// Well-formed text parses to the value `f64` parsing gives, within f64 precision.
        #[test]
        fn parse_agrees_with_f64(text in "-?[0-9]{0,9}(\\.[0-9]{0,8})?") {
            let has_digit = text.bytes().any(|b| b.is_ascii_digit());
            let parsed = Decimal::parse(text.as_bytes());
            prop_assert_eq!(parsed.is_some(), has_digit);
            if let Some(v) = parsed {
                let expect: f64 = text.parse().unwrap();
                prop_assert!((v.to_f64() - expect).abs() <= expect.abs() * 1e-15, "{} -> {}", text, v);
            }
        }

        /// Ordering agrees with the order of the exact values (checked through i128 on a
        /// common scale, independently of `Ord`).
        #[test]
        fn ordering_matches_value(a in -1_000_000i64..1_000_000, sa in 0u8..6, b in -1_000_000i64..1_000_000, sb in 0u8..6) {
            let x = Decimal::new(a, sa).unwrap();
            let y = Decimal::new(b, sb).unwrap();
            let xa = i128::from(a) * 10i128.pow(u32::from(6 - sa));
            let yb = i128::from(b) * 10i128.pow(u32::from(6 - sb));
            prop_assert_eq!(x.cmp(&y), xa.cmp(&yb));
            prop_assert_eq!(x == y, xa == yb);
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Decimal::parse(&bytes);
        }
    }
}
