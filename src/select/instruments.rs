//! The security master: the bonds the router may be asked about, loaded once from
//! `config/instruments.csv`, and the vocabulary the rules speak about them (asset class,
//! agency ratings with their ordering, dates).
//!
//! Owns: parsing and validating the CSV (every error names the file, the line and the
//! column), ISIN and CUSIP check digits, the agencies' rating scales mapped onto one notch
//! scale, and an O(1) lookup by ISIN or CUSIP that does not allocate. Must not: read the
//! clock, touch the network, or be consulted with anything but identifiers the desk sent (an
//! unknown identifier is the caller's QuoteRequestReject, so `lookup` returns `Option`).

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Most instruments one security master holds.
pub const MAX_INSTRUMENTS: usize = 500_000;
/// Largest `instruments.csv` accepted, in bytes.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Longest issuer or sector name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

// ---------------------------------------------------------------------------------------------
// Asset classes

/// The desk's broad asset classes; rules and dealer specialisms speak in these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssetClass {
    /// Investment-grade corporate bonds.
    IgCorp,
    /// High-yield corporate bonds.
    HyCorp,
    /// Municipal bonds.
    Muni,
    /// Structured products (ABS, MBS, CLO, ...).
    Structured,
    /// Government and agency bonds.
    Govt,
}

impl AssetClass {
    pub const ALL: [AssetClass; 5] = [
        AssetClass::IgCorp,
        AssetClass::HyCorp,
        AssetClass::Muni,
        AssetClass::Structured,
        AssetClass::Govt,
    ];

    /// The name used in config files and rule conditions.
    pub fn name(self) -> &'static str {
        match self {
            AssetClass::IgCorp => "ig_corp",
            AssetClass::HyCorp => "hy_corp",
            AssetClass::Muni => "muni",
            AssetClass::Structured => "structured",
            AssetClass::Govt => "govt",
        }
    }

    pub fn from_name(s: &str) -> Option<AssetClass> {
        AssetClass::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Corporate bonds, investment grade or high yield.
    pub fn is_corporate(self) -> bool {
        matches!(self, AssetClass::IgCorp | AssetClass::HyCorp)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for AssetClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of asset classes (a dealer's specialisms), as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AssetClassSet(u8);

impl AssetClassSet {
    pub const EMPTY: AssetClassSet = AssetClassSet(0);

    pub fn with(self, a: AssetClass) -> AssetClassSet {
        AssetClassSet(self.0 | a.bit())
    }
    pub fn contains(self, a: AssetClass) -> bool {
        self.0 & a.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<AssetClass> for AssetClassSet {
    fn from_iter<T: IntoIterator<Item = AssetClass>>(iter: T) -> Self {
        iter.into_iter()
            .fold(AssetClassSet::EMPTY, AssetClassSet::with)
    }
}

// ---------------------------------------------------------------------------------------------
// Ratings

/// The rating agencies whose scales are understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agency {
    /// S&P Global Ratings: AAA, AA+, ..., BBB-, ..., CCC-, CC, C, SD, D.
    Sp,
    /// Moody's: Aaa, Aa1, ..., Baa3, ..., Caa3, Ca, C.
    Moodys,
    /// Fitch: AAA, AA+, ..., BBB-, ..., CCC-, CC, C, RD, D.
    Fitch,
}

/// One credit rating on a single notch scale shared by the three agencies, or NR (not
/// rated).
///
/// Notches run from D (1) up to AAA (23); the agencies' symbols map onto them in the usual
/// way (AA- = Aa3, BBB- = Baa3, CC = Ca, SD = RD). NR is not a notch: it is neither above nor
/// below any rating, so ordering comparisons with NR are false and only `== NR` / `!= NR`
/// ask about it. That is why `Rating` implements `Eq` but not `Ord`: order through
/// [`Rating::notch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rating(u8);

/// Notch -> (S&P, Moody's, Fitch) symbols, best first; index 0 is AAA (notch 23). An empty
/// symbol: the agency has no such grade (Moody's has no default grades below C).
const SCALE: [(&str, &str, &str); 23] = [
    ("AAA", "Aaa", "AAA"),
    ("AA+", "Aa1", "AA+"),
    ("AA", "Aa2", "AA"),
    ("AA-", "Aa3", "AA-"),
    ("A+", "A1", "A+"),
    ("A", "A2", "A"),
    ("A-", "A3", "A-"),
    ("BBB+", "Baa1", "BBB+"),
    ("BBB", "Baa2", "BBB"),
    ("BBB-", "Baa3", "BBB-"),
    ("BB+", "Ba1", "BB+"),
    ("BB", "Ba2", "BB"),
    ("BB-", "Ba3", "BB-"),
    ("B+", "B1", "B+"),
    ("B", "B2", "B"),
    ("B-", "B3", "B-"),
    ("CCC+", "Caa1", "CCC+"),
    ("CCC", "Caa2", "CCC"),
    ("CCC-", "Caa3", "CCC-"),
    ("CC", "Ca", "CC"),
    ("C", "C", "C"),
    ("SD", "", "RD"),
    ("D", "", "D"),
];

impl Rating {
    /// Not rated.
    pub const NR: Rating = Rating(0);
    /// The lowest investment-grade notch (BBB- / Baa3).
    pub const BBB_MINUS: Rating = Rating(14);

    /// The notch, 1 (D) ..= 23 (AAA); `None` for NR.
    pub fn notch(self) -> Option<u8> {
        if self.0 == 0 {
            None
        } else {
            Some(self.0)
        }
    }

    pub fn is_rated(self) -> bool {
        self.0 != 0
    }

    /// BBB- / Baa3 or better.
    pub fn is_investment_grade(self) -> bool {
        self.0 >= Self::BBB_MINUS.0
    }

    /// A symbol on one agency's scale ("NR" and the empty string are NR). Moody's uses its
    /// own symbols; S&P writes SD and Fitch RD for a selective/restricted default, and
    /// Moody's has no D (its C is the lowest).
    pub fn parse_agency(agency: Agency, s: &str) -> Option<Rating> {
        if s.is_empty() || s == "NR" {
            return Some(Rating::NR);
        }
        let found = SCALE.iter().position(|&(sp, moodys, fitch)| {
            let symbol = match agency {
                Agency::Sp => sp,
                Agency::Moodys => moodys,
                Agency::Fitch => fitch,
            };
            !symbol.is_empty() && symbol == s
        })?;
        Some(Rating(23 - found as u8))
    }

    /// A symbol on any of the three scales, or NR. Used for rule literals.
    pub fn parse_any(s: &str) -> Option<Rating> {
        if s == "NR" {
            return Some(Rating::NR);
        }
        let found = SCALE.iter().position(|&(sp, moodys, fitch)| {
            sp == s || fitch == s || (!moodys.is_empty() && moodys == s)
        })?;
        Some(Rating(23 - found as u8))
    }

    /// The S&P-style symbol ("NR" for not rated).
    pub fn symbol(self) -> &'static str {
        match self.notch() {
            None => "NR",
            Some(n) => SCALE[usize::from(23 - n)].0,
        }
    }

    /// The composite used by the bond indices: the middle of three ratings, the lower of
    /// two, the only one, or NR when no agency rates the bond.
    pub fn composite(ratings: [Rating; 3]) -> Rating {
        let mut notches = [0u8; 3];
        let mut n = 0;
        for r in ratings {
            if let Some(x) = r.notch() {
                notches[n] = x;
                n += 1;
            }
        }
        let rated = &mut notches[..n];
        rated.sort_unstable();
        match n {
            0 => Rating::NR,
            1 => Rating(rated[0]),
            2 => Rating(rated[0]),
            _ => Rating(rated[1]),
        }
    }
}

impl fmt::Display for Rating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

// ---------------------------------------------------------------------------------------------
// Dates

/// A calendar date (UTC), as days since 1970-01-01 in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i32);

impl Date {
    /// `YYYY-MM-DD`, years 1900..=2199, with the real month lengths.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1900..=2199).contains(&y) || !(1..=12).contains(&m) {
            return None;
        }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_days = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if d == 0 || d > month_days {
            return None;
        }
        Some(Date::from_ymd(y as i32, m, d))
    }

    /// Days since the epoch of a valid (year, month, day).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Date {
        Date(crate::time::days_from_civil(i64::from(year), month, day) as i32)
    }

    /// The UTC date of an instant given in nanoseconds since the epoch.
    pub fn from_unix_nanos(ns: u64) -> Date {
        Date((ns / 86_400_000_000_000) as i32)
    }
}

// ---------------------------------------------------------------------------------------------
// Identifiers

fn alnum_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        _ => None,
    }
}

/// The ISIN check digit for the first 11 characters (2-letter country code + 9 alphanumeric
/// NSIN): letters expand to two digits (A = 10 ... Z = 35), then the Luhn algorithm doubles
/// every second digit counting from the right. `None` if the body is malformed.
pub fn isin_check_digit(body: &[u8]) -> Option<u8> {
    if body.len() != 11 || !body[..2].iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    // At most 22 digits once the letters are expanded.
    let mut digits = [0u8; 22];
    let mut n = 0;
    for &c in body {
        let v = alnum_value(c)?;
        if v >= 10 {
            digits[n] = (v / 10) as u8;
            digits[n + 1] = (v % 10) as u8;
            n += 2;
        } else {
            digits[n] = v as u8;
            n += 1;
        }
    }
    let mut sum = 0u32;
    for (i, &d) in digits[..n].iter().rev().enumerate() {
        // The rightmost body digit sits next to the check digit: it is doubled.
        let v = if i % 2 == 0 {
            u32::from(d) * 2
        } else {
            u32::from(d)
        };
        sum += v / 10 + v % 10;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// True for a 12-character ISIN whose check digit is right.
pub fn is_valid_isin(isin: &[u8]) -> bool {
    isin.len() == 12
        && isin[11].is_ascii_digit()
        && isin_check_digit(&isin[..11]) == Some(isin[11] - b'0')
}

/// The CUSIP check digit for the first 8 characters: letters count 10..35, `*` 36, `@` 37,
/// `#` 38; every second character is doubled; the digits of each product are summed.
pub fn cusip_check_digit(body: &[u8]) -> Option<u8> {
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0u32;
    for (i, &c) in body.iter().enumerate() {
        let mut v = match c {
            b'*' => 36,
            b'@' => 37,
            b'#' => 38,
            _ => alnum_value(c)?,
        };
        if i % 2 == 1 {
            v *= 2;
        }
        sum += v / 10 + v % 10;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// True for a 9-character CUSIP whose check digit is right.
pub fn is_valid_cusip(cusip: &[u8]) -> bool {
    cusip.len() == 9
        && cusip[8].is_ascii_digit()
        && cusip_check_digit(&cusip[..8]) == Some(cusip[8] - b'0')
}

/// An identifier as a fixed-size key: ISINs are 12 bytes, CUSIPs 9 (zero-padded), so the two
/// never collide in one map.
type IdKey = [u8; 12];

fn id_key(id: &[u8]) -> Option<IdKey> {
    if id.len() != 12 && id.len() != 9 {
        return None;
    }
    let mut key = [0u8; 12];
    for (k, &c) in key.iter_mut().zip(id) {
        *k = c.to_ascii_uppercase();
    }
    Some(key)
}

// ---------------------------------------------------------------------------------------------
// Instruments

/// One bond of the security master.
#[derive(Debug, Clone, PartialEq)]
pub struct Instrument {
    /// 12-character ISIN, when the bond has one.
    pub isin: Option<[u8; 12]>,
    /// 9-character CUSIP, when the bond has one.
    pub cusip: Option<[u8; 9]>,
    pub issuer: Box<str>,
    pub sector: Box<str>,
    pub asset_class: AssetClass,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: [u8; 3],
    /// Annual coupon, in percent of par.
    pub coupon_pct: f64,
    pub maturity: Date,
    /// S&P, Moody's, Fitch.
    pub agency_ratings: [Rating; 3],
    /// The index-style composite of `agency_ratings` (see [`Rating::composite`]).
    pub rating: Rating,
    /// 30-day average daily traded volume, face amount in the bond's currency.
    pub adv_30d: f64,
    /// The last day the bond traded, if it ever did.
    pub last_trade: Option<Date>,
    /// Daily price volatility in bps, when known; otherwise the pre-trade config's default
    /// for the asset class applies.
    pub daily_vol_bps: Option<f64>,
    /// 1-based line in the CSV, for diagnostics.
    pub line: u32,
}

impl Instrument {
    /// The ISIN if there is one, else the CUSIP, as text.
    pub fn id(&self) -> &str {
        let bytes: &[u8] = match (&self.isin, &self.cusip) {
            (Some(isin), _) => isin,
            (None, Some(cusip)) => cusip,
            (None, None) => b"?",
        };
        // Both were validated as ASCII alphanumerics at load.
        std::str::from_utf8(bytes).unwrap_or("?")
    }

    pub fn currency_str(&self) -> &str {
        std::str::from_utf8(&self.currency).unwrap_or("???")
    }
}

/// What went wrong loading the security master. `Display` is `file:line: ...`.
#[derive(Debug)]
pub enum InstrumentsError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file breaks a limit (size or row count).
    Limit { path: PathBuf, reason: String },
    /// A malformed row or header; `column` is the 1-based CSV column, 0 for the whole line.
    Invalid {
        path: PathBuf,
        line: u64,
        column: usize,
        field: String,
        reason: String,
    },
}

impl fmt::Display for InstrumentsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstrumentsError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            InstrumentsError::Limit { path, reason } => write!(f, "{}: {reason}", path.display()),
            InstrumentsError::Invalid {
                path,
                line,
                column,
                field,
                reason,
            } => {
                if *column == 0 {
                    write!(f, "{}:{line}: {reason}", path.display())
                } else {
                    write!(
                        f,
                        "{}:{line}: column {column} ({field}): {reason}",
                        path.display()
                    )
                }
            }
        }
    }
}

impl std::error::Error for InstrumentsError {}

/// The CSV's columns, in the order the sample file writes them (any order is accepted).
pub const COLUMNS: [&str; 14] = [
    "isin",
    "cusip",
    "issuer",
    "sector",
    "asset_class",
    "currency",
    "coupon_pct",
    "maturity",
    "rating_sp",
    "rating_moodys",
    "rating_fitch",
    "adv_30d",
    "last_trade",
    "daily_vol_bps",
];

/// One row as written: every field borrowed, validated afterwards so that each error names
/// its column.
#[derive(Deserialize)]
struct RawRow<'a> {
    isin: &'a str,
    cusip: &'a str,
    issuer: &'a str,
    sector: &'a str,
    asset_class: &'a str,
    currency: &'a str,
    coupon_pct: &'a str,
    maturity: &'a str,
    rating_sp: &'a str,
    rating_moodys: &'a str,
    rating_fitch: &'a str,
    adv_30d: &'a str,
    last_trade: &'a str,
    daily_vol_bps: &'a str,
}

/// The loaded security master: a fixed table and an index by ISIN and by CUSIP, built once.
#[derive(Debug, Clone, Default)]
pub struct SecurityMaster {
    instruments: Box<[Instrument]>,
    index: HashMap<IdKey, u32>,
}

impl SecurityMaster {
    /// Reads and validates `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<SecurityMaster, InstrumentsError> {
        let path = path.as_ref();
        let io = |error| InstrumentsError::Io {
            path: path.to_path_buf(),
            error,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FILE_BYTES {
            return Err(InstrumentsError::Limit {
                path: path.to_path_buf(),
                reason: format!("{len} bytes is more than the limit of {MAX_FILE_BYTES}"),
            });
        }
        let text = std::fs::read(path).map_err(io)?;
        SecurityMaster::parse(&text, path)
    }

    /// Parses CSV text; `path` only names the source in errors.
    pub fn parse(text: &[u8], path: &Path) -> Result<SecurityMaster, InstrumentsError> {
        let invalid =
            |line: u64, column: usize, field: &str, reason: String| InstrumentsError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                field: field.to_string(),
                reason,
            };
        let csv_error = |e: csv::Error, headers: &[String]| {
            let line = e.position().map_or(0, |p| p.line());
            match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => {
                    let column = err.field().map_or(0, |f| f as usize + 1);
                    let field = headers
                        .get(column.wrapping_sub(1))
                        .map_or("", String::as_str);
                    invalid(line, column, field, err.kind().to_string())
                }
                csv::ErrorKind::Io(io) => InstrumentsError::Io {
                    path: path.to_path_buf(),
                    error: std::io::Error::new(io.kind(), io.to_string()),
                },
                _ => invalid(line, 0, "", e.to_string()),
            }
        };

        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(text);
        let headers = reader.headers().map_err(|e| csv_error(e, &[]))?.clone();
        let header_line = headers.position().map_or(1, |p| p.line());
        let names: Vec<String> = headers.iter().map(str::to_string).collect();
        for (i, h) in names.iter().enumerate() {
            if !COLUMNS.contains(&h.as_str()) {
                return Err(invalid(
                    header_line,
                    i + 1,
                    h,
                    format!("unknown column (expected: {})", COLUMNS.join(", ")),
                ));
            }
            if names[..i].contains(h) {
                return Err(invalid(header_line, i + 1, h, "duplicate column".into()));
            }
        }
        if let Some(missing) = COLUMNS.iter().find(|c| !names.iter().any(|h| h == *c)) {
            return Err(invalid(
                header_line,
                0,
                "",
                format!("missing column {missing:?}"),
            ));
        }
        let col = |name: &str| names.iter().position(|h| h == name).map_or(0, |i| i + 1);

        let mut instruments = Vec::new();
        let mut index: HashMap<IdKey, u32> = HashMap::new();
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(e, &names)),
            }
            let line = record.position().map_or(0, |p| p.line());
            if instruments.len() == MAX_INSTRUMENTS {
                return Err(InstrumentsError::Limit {
                    path: path.to_path_buf(),
                    reason: format!("more than {MAX_INSTRUMENTS} instruments (line {line})"),
                });
            }
            let raw: RawRow<'_> = record
                .deserialize(Some(&headers))
                .map_err(|e| csv_error(e, &names))?;
            let bad = |name: &str, reason: String| invalid(line, col(name), name, reason);
            let inst = validate_row(&raw, line, &bad)?;
            let row = instruments.len() as u32;
            for (name, id) in [
                ("isin", inst.isin.as_ref().map(|i| &i[..])),
                ("cusip", inst.cusip.as_ref().map(|c| &c[..])),
            ] {
                let Some(id) = id else { continue };
                let Some(key) = id_key(id) else { continue };
                if let Some(&first) = index.get(&key) {
                    let first_line = instruments
                        .get(first as usize)
                        .map_or(0, |i: &Instrument| i.line);
                    return Err(bad(
                        name,
                        format!(
                            "{} already defined on line {first_line}",
                            String::from_utf8_lossy(id)
                        ),
                    ));
                }
                index.insert(key, row);
            }
            instruments.push(inst);
        }
        Ok(SecurityMaster {
            instruments: instruments.into_boxed_slice(),
            index,
        })
    }

    /// The instrument with this ISIN (12 characters) or CUSIP (9 characters), upper or lower
    /// case. Does not allocate.
    pub fn lookup(&self, id: &[u8]) -> Option<&Instrument> {
        self.lookup_index(id).map(|(_, i)| i)
    }

    /// `lookup`, with the instrument's index in `instruments()` (the key of per-instrument
    /// tables such as the market mids). Does not allocate.
    pub fn lookup_index(&self, id: &[u8]) -> Option<(u32, &Instrument)> {
        let key = id_key(id)?;
        let row = *self.index.get(&key)?;
        self.instruments.get(row as usize).map(|i| (row, i))
    }

    /// `lookup_fix`, with the instrument's index in `instruments()`.
    pub fn lookup_fix_index(
        &self,
        security_id: &[u8],
        id_source: Option<&[u8]>,
    ) -> Option<(u32, &Instrument)> {
        match id_source {
            Some(b"1") if security_id.len() != 9 => None,
            Some(b"4") if security_id.len() != 12 => None,
            _ => self.lookup_index(security_id),
        }
    }

    /// Lookup honouring FIX SecurityIDSource (22): `1` CUSIP, `4` ISIN; anything else (or
    /// none) tries both.
    pub fn lookup_fix(&self, security_id: &[u8], id_source: Option<&[u8]>) -> Option<&Instrument> {
        self.lookup_fix_index(security_id, id_source)
            .map(|(_, i)| i)
    }

    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }
}

fn validate_row(
    raw: &RawRow<'_>,
    line: u64,
    bad: &dyn Fn(&str, String) -> InstrumentsError,
) -> Result<Instrument, InstrumentsError> {
    let isin = if raw.isin.is_empty() {
        None
    } else if is_valid_isin(raw.isin.as_bytes()) {
        let mut a = [0u8; 12];
        a.copy_from_slice(raw.isin.as_bytes());
        Some(a)
    } else {
        return Err(bad(
            "isin",
            format!(
                "{:?} is not a valid ISIN (2 letters, 9 alphanumerics, check digit)",
                raw.isin
            ),
        ));
    };
    let cusip = if raw.cusip.is_empty() {
        None
    } else if is_valid_cusip(raw.cusip.as_bytes()) {
        let mut a = [0u8; 9];
        a.copy_from_slice(raw.cusip.as_bytes());
        Some(a)
    } else {
        return Err(bad(
            "cusip",
            format!(
                "{:?} is not a valid CUSIP (8 characters, check digit)",
                raw.cusip
            ),
        ));
    };
    match (&isin, &cusip) {
        (None, None) => return Err(bad("isin", "neither an ISIN nor a CUSIP".into())),
        (Some(i), Some(c)) if (&i[..2] == b"US" || &i[..2] == b"CA") && i[2..11] != c[..] => {
            return Err(bad(
                "cusip",
                format!(
                    "{:?} is not the CUSIP inside ISIN {:?}",
                    raw.cusip, raw.isin
                ),
            ))
        }
        _ => {}
    }
    let name = |field: &str, v: &str| -> Result<Box<str>, InstrumentsError> {
        if v.is_empty() {
            Err(bad(field, "empty".into()))
        } else if v.len() > MAX_NAME_BYTES {
            Err(bad(field, format!("longer than {MAX_NAME_BYTES} bytes")))
        } else {
            Ok(v.into())
        }
    };
    let issuer = name("issuer", raw.issuer)?;
    let sector = name("sector", raw.sector)?;
    let asset_class = AssetClass::from_name(raw.asset_class).ok_or_else(|| {
        bad(
            "asset_class",
            format!(
                "unknown asset class {:?} (expected one of: {})",
                raw.asset_class,
                AssetClass::ALL.map(AssetClass::name).join(", ")
            ),
        )
    })?;
    let currency = match raw.currency.as_bytes() {
        &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => [a, b, c],
        _ => {
            return Err(bad(
                "currency",
                format!("{:?} is not an ISO 4217 code", raw.currency),
            ))
        }
    };
    let number = |field: &str, v: &str, min: f64, max: f64| -> Result<f64, InstrumentsError> {
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= min && x <= max => Ok(x),
            _ => Err(bad(
                field,
                format!("{v:?} is not a number in {min}..={max}"),
            )),
        }
    };
    let coupon_pct = number("coupon_pct", raw.coupon_pct, 0.0, 100.0)?;
    let maturity = Date::parse(raw.maturity).ok_or_else(|| {
        bad(
            "maturity",
            format!("{:?} is not a date (YYYY-MM-DD)", raw.maturity),
        )
    })?;
    let rating = |field: &str, agency: Agency, v: &str| {
        Rating::parse_agency(agency, v).ok_or_else(|| {
            bad(
                field,
                format!("{v:?} is not on the {agency:?} rating scale (or NR)"),
            )
        })
    };
    let agency_ratings = [
        rating("rating_sp", Agency::Sp, raw.rating_sp)?,
        rating("rating_moodys", Agency::Moodys, raw.rating_moodys)?,
        rating("rating_fitch", Agency::Fitch, raw.rating_fitch)?,
    ];
    let adv_30d = number("adv_30d", raw.adv_30d, 0.0, 1e15)?;
    let last_trade = if raw.last_trade.is_empty() {
        None
    } else {
        Some(Date::parse(raw.last_trade).ok_or_else(|| {
            bad(
                "last_trade",
                format!(
                    "{:?} is not a date (YYYY-MM-DD, or empty if it never traded)",
                    raw.last_trade
                ),
            )
        })?)
    };
    let daily_vol_bps = if raw.daily_vol_bps.is_empty() {
        None
    } else {
        Some(number("daily_vol_bps", raw.daily_vol_bps, 0.0, 10_000.0)?)
    };
    Ok(Instrument {
        isin,
        cusip,
        issuer,
        sector,
        asset_class,
        currency,
        coupon_pct,
        maturity,
        agency_ratings,
        rating: Rating::composite(agency_ratings),
        adv_30d,
        last_trade,
        daily_vol_bps,
        line: u32::try_from(line).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_match_published_examples() {
        // Well-known public identifiers, used only to check the arithmetic.
        assert!(is_valid_isin(b"US0378331005"));
        assert!(is_valid_isin(b"GB0002634946"));
        assert!(is_valid_isin(b"AU0000XVGZA3"));
        assert!(!is_valid_isin(b"US0378331006"));
        assert!(is_valid_cusip(b"037833100"));
        assert!(is_valid_cusip(b"38259P508"));
        assert!(!is_valid_cusip(b"037833101"));
    }

    #[test]
    fn dates_round_trip_the_calendar() {
        assert_eq!(Date::parse("1970-01-01"), Some(Date(0)));
        assert_eq!(Date::parse("2000-03-01"), Some(Date(11_017)));
        assert_eq!(Date::parse("2024-02-29").map(|d| d.0), Some(19_782));
        assert_eq!(Date::parse("2023-02-29"), None);
        assert_eq!(Date::parse("2100-02-29"), None);
        assert_eq!(Date::parse("2031-04-31"), None);
        assert_eq!(Date::parse("2031-4-30"), None);
        assert_eq!(Date::from_unix_nanos(86_400_000_000_000 * 3 + 5), Date(3));
    }

    #[test]
    fn composite_rating_is_middle_of_three_lower_of_two() {
        let r = |s| Rating::parse_any(s).unwrap();
        assert_eq!(Rating::composite([r("A"), r("Baa1"), r("BBB")]), r("BBB+"));
        assert_eq!(Rating::composite([r("A"), Rating::NR, r("BBB")]), r("BBB"));
        assert_eq!(
            Rating::composite([Rating::NR, r("B1"), Rating::NR]),
            r("B+")
        );
        assert_eq!(Rating::composite([Rating::NR; 3]), Rating::NR);
    }
}
