//! Segments: the slices of the market a dealer's statistics are kept for, and their keys.
//!
//! Owns `SegmentKey` (a stable 64-bit name for a segment, the same in every process and across
//! restarts, so the memory-mapped score tables and external tools agree on it), the bucketing of
//! rating, maturity and size, and the back-off paths from narrow to broad segments
//! (issuer -> sector and rating -> asset class; `all` is kept and reported but never stands
//! for a dealer's record in an asset class: see `primary_path`). It only computes keys: it does no I/O,
//! reads no clock, allocates nothing, and knows nothing about where rows live in the table
//! (`table` maps a (dealer, key) to a row).
//!
//! A key is `level << 60 | fnv1a64(parts) & (2^60 - 1)`, where `parts` are the segment's
//! labels (ASCII upper-cased, each followed by the unit separator 0x1F). Hashing names instead
//! of numbering them keeps keys stable when the security master is reordered or grows; with 60
//! bits, two distinct segments collide with probability about n^2 / 2^61 (n = 10^5 segments:
//! 4e-9). Key 0 never occurs (the level is never 0) and marks an empty table row.

/// The granularity of a segment. The numeric value is stored in the key's top four bits and
/// is part of the file format: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SegmentLevel {
    /// Every RFQ the dealer saw.
    All = 1,
    /// One asset class ("HY", "IG", "MUNI", ...).
    AssetClass = 2,
    /// Asset class x sector x rating bucket.
    SectorRating = 3,
    /// Asset class x issuer.
    Issuer = 4,
    /// Asset class x maturity bucket.
    Maturity = 5,
    /// Asset class x size bucket.
    Size = 6,
}

impl SegmentLevel {
    pub fn from_code(code: u8) -> Option<SegmentLevel> {
        Some(match code {
            1 => SegmentLevel::All,
            2 => SegmentLevel::AssetClass,
            3 => SegmentLevel::SectorRating,
            4 => SegmentLevel::Issuer,
            5 => SegmentLevel::Maturity,
            6 => SegmentLevel::Size,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SegmentLevel::All => "all",
            SegmentLevel::AssetClass => "asset_class",
            SegmentLevel::SectorRating => "sector_rating",
            SegmentLevel::Issuer => "issuer",
            SegmentLevel::Maturity => "maturity",
            SegmentLevel::Size => "size",
        }
    }
}

/// A segment's stable name. `SegmentKey::EMPTY` (0) is never a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SegmentKey(pub u64);

const HASH_MASK: u64 = (1 << 60) - 1;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const PART_SEPARATOR: u8 = 0x1f;

fn fnv1a_upper(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b.to_ascii_uppercase());
        h = h.wrapping_mul(FNV_PRIME);
    }
    h ^= u64::from(PART_SEPARATOR);
    h.wrapping_mul(FNV_PRIME)
}

impl SegmentKey {
    pub const EMPTY: SegmentKey = SegmentKey(0);

    /// The key of the segment at `level` named by `parts` (ASCII case-insensitive).
    pub fn new(level: SegmentLevel, parts: &[&[u8]]) -> SegmentKey {
        let mut h = FNV_OFFSET;
        for p in parts {
            h = fnv1a_upper(h, p);
        }
        SegmentKey((u64::from(level as u8) << 60) | (h & HASH_MASK))
    }

    pub fn all() -> SegmentKey {
        SegmentKey::new(SegmentLevel::All, &[])
    }
    pub fn asset_class(asset_class: &[u8]) -> SegmentKey {
        SegmentKey::new(SegmentLevel::AssetClass, &[asset_class])
    }
    pub fn sector_rating(asset_class: &[u8], sector: &[u8], rating: RatingBucket) -> SegmentKey {
        SegmentKey::new(
            SegmentLevel::SectorRating,
            &[asset_class, sector, rating.label().as_bytes()],
        )
    }
    pub fn issuer(asset_class: &[u8], issuer: &[u8]) -> SegmentKey {
        SegmentKey::new(SegmentLevel::Issuer, &[asset_class, issuer])
    }
    /// `bucket` from `Buckets::bucket`; its lower bound is part of the name, so changing the
    /// configured boundaries renames only the buckets that changed.
    pub fn maturity(asset_class: &[u8], buckets: &Buckets, bucket: u8) -> SegmentKey {
        let lower = buckets.lower_bound(bucket).to_bits().to_le_bytes();
        SegmentKey::new(SegmentLevel::Maturity, &[asset_class, &lower])
    }
    pub fn size(asset_class: &[u8], buckets: &Buckets, bucket: u8) -> SegmentKey {
        let lower = buckets.lower_bound(bucket).to_bits().to_le_bytes();
        SegmentKey::new(SegmentLevel::Size, &[asset_class, &lower])
    }

    /// The level in the key's top bits (None for `EMPTY` or a foreign value).
    pub fn level(self) -> Option<SegmentLevel> {
        SegmentLevel::from_code((self.0 >> 60) as u8)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Credit rating buckets, agencies' letter grades without notches. The order is credit
/// quality, best first; NR (not rated, withdrawn) is its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RatingBucket {
    Aaa,
    Aa,
    A,
    Bbb,
    Bb,
    B,
    /// CCC and below, including default (D, SD) and Moody's Caa/Ca/C.
    CccAndBelow,
    NotRated,
}

impl RatingBucket {
    /// Buckets an S&P/Fitch (`BBB-`, `AA+`) or Moody's (`Baa3`, `Aa1`) rating; case-insensitive.
    /// `NR`, `WR` and an empty rating are `NotRated`; anything else is `None`.
    pub fn from_agency(rating: &[u8]) -> Option<RatingBucket> {
        let mut end = rating.len();
        while end > 0 && matches!(rating[end - 1], b'+' | b'-' | b'1' | b'2' | b'3' | b' ') {
            end -= 1;
        }
        let mut start = 0;
        while start < end && rating[start] == b' ' {
            start += 1;
        }
        let core = &rating[start..end];
        let mut up = [0u8; 4];
        if core.len() > up.len() {
            return None;
        }
        for (d, s) in up.iter_mut().zip(core) {
            *d = s.to_ascii_uppercase();
        }
        Some(match &up[..core.len()] {
            b"AAA" => RatingBucket::Aaa,
            b"AA" => RatingBucket::Aa,
            b"A" => RatingBucket::A,
            b"BBB" | b"BAA" => RatingBucket::Bbb,
            b"BB" | b"BA" => RatingBucket::Bb,
            b"B" => RatingBucket::B,
            b"CCC" | b"CC" | b"C" | b"CAA" | b"CA" | b"D" | b"SD" | b"RD" => {
                RatingBucket::CccAndBelow
            }
            b"NR" | b"WR" | b"" => RatingBucket::NotRated,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            RatingBucket::Aaa => "AAA",
            RatingBucket::Aa => "AA",
            RatingBucket::A => "A",
            RatingBucket::Bbb => "BBB",
            RatingBucket::Bb => "BB",
            RatingBucket::B => "B",
            RatingBucket::CccAndBelow => "CCC-",
            RatingBucket::NotRated => "NR",
        }
    }
}

/// Most boundaries a bucketing may have.
pub const MAX_BUCKET_BOUNDS: usize = 15;

/// Ascending boundaries cutting a quantity (years to maturity, notional) into buckets:
/// bucket 0 is `< bounds[0]`, bucket i is `[bounds[i-1], bounds[i])`, the last is `>= last bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Buckets {
    bounds: [f64; MAX_BUCKET_BOUNDS],
    len: u8,
}

/// Why a bucketing was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BucketsError {
    TooMany { given: usize, max: usize },
    NotAscending { index: usize },
    NotFinite { index: usize },
}

impl std::fmt::Display for BucketsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BucketsError::TooMany { given, max } => {
                write!(f, "{given} bucket boundaries, at most {max}")
            }
            BucketsError::NotAscending { index } => {
                write!(f, "bucket boundary {index} is not above the one before it")
            }
            BucketsError::NotFinite { index } => write!(f, "bucket boundary {index} is not finite"),
        }
    }
}

impl std::error::Error for BucketsError {}

impl Buckets {
    pub fn new(bounds: &[f64]) -> Result<Buckets, BucketsError> {
        if bounds.len() > MAX_BUCKET_BOUNDS {
            return Err(BucketsError::TooMany {
                given: bounds.len(),
                max: MAX_BUCKET_BOUNDS,
            });
        }
        let mut b = [0.0; MAX_BUCKET_BOUNDS];
        for (i, &x) in bounds.iter().enumerate() {
            if !x.is_finite() {
                return Err(BucketsError::NotFinite { index: i });
            }
            if i > 0 && x <= bounds[i - 1] {
                return Err(BucketsError::NotAscending { index: i });
            }
            b[i] = x;
        }
        Ok(Buckets {
            bounds: b,
            len: bounds.len() as u8,
        })
    }

    /// Years to maturity: < 1, 1-3, 3-5, 5-7, 7-10, 10-20, 20-30, 30+.
    pub fn default_maturity_years() -> Buckets {
        Buckets::new(&[1.0, 3.0, 5.0, 7.0, 10.0, 20.0, 30.0]).expect("static bounds are valid")
    }

    /// Notional: < 1M, 1-2M, 2-5M, 5-10M, 10-25M, 25M+.
    pub fn default_size_notional() -> Buckets {
        Buckets::new(&[1e6, 2e6, 5e6, 10e6, 25e6]).expect("static bounds are valid")
    }

    pub fn bounds(&self) -> &[f64] {
        &self.bounds[..usize::from(self.len)]
    }

    /// The bucket `x` falls in (a NaN falls in bucket 0).
    pub fn bucket(&self, x: f64) -> u8 {
        self.bounds().iter().take_while(|&&b| x >= b).count() as u8
    }

    /// The bucket's lower bound (`-inf` for bucket 0; the last bound for anything past it).
    pub fn lower_bound(&self, bucket: u8) -> f64 {
        match bucket {
            0 => f64::NEG_INFINITY,
            b => self.bounds()[usize::from(b).min(usize::from(self.len)) - 1],
        }
    }
}

/// What segmentation needs to know about one order in one instrument.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInput<'a> {
    pub asset_class: &'a [u8],
    pub issuer: &'a [u8],
    pub sector: &'a [u8],
    pub rating: RatingBucket,
    pub years_to_maturity: f64,
    pub notional: f64,
}

/// Every segment one order belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentKeys {
    pub all: SegmentKey,
    pub asset_class: SegmentKey,
    pub sector_rating: SegmentKey,
    pub issuer: SegmentKey,
    pub maturity: SegmentKey,
    pub size: SegmentKey,
}

/// Longest back-off path.
pub const MAX_PATH: usize = 3;

impl SegmentKeys {
    pub fn of(input: &SegmentInput<'_>, maturity: &Buckets, size: &Buckets) -> SegmentKeys {
        let ac = input.asset_class;
        SegmentKeys {
            all: SegmentKey::all(),
            asset_class: SegmentKey::asset_class(ac),
            sector_rating: SegmentKey::sector_rating(ac, input.sector, input.rating),
            issuer: SegmentKey::issuer(ac, input.issuer),
            maturity: SegmentKey::maturity(ac, maturity, maturity.bucket(input.years_to_maturity)),
            size: SegmentKey::size(ac, size, size.bucket(input.notional)),
        }
    }

    /// The segments of a 5-year, 1 MM order in a BB-rated high-yield bond of ACME
    /// (Industrials), with the default buckets: a fixture for the tests of `select`.
    #[cfg(test)]
    pub(crate) fn example() -> SegmentKeys {
        SegmentKeys::of(
            &SegmentInput {
                asset_class: b"hy_corp",
                issuer: b"ACME",
                sector: b"Industrials",
                rating: RatingBucket::Bb,
                years_to_maturity: 5.0,
                notional: 1e6,
            },
            &Buckets::default_maturity_years(),
            &Buckets::default_size_notional(),
        )
    }

    /// Every key an observation about this order updates, broad first (so that when a
    /// dealer's segment slots run out, the broad segments have been claimed already).
    pub fn update_order(&self) -> [SegmentKey; 6] {
        [
            self.all,
            self.asset_class,
            self.sector_rating,
            self.issuer,
            self.maturity,
            self.size,
        ]
    }

    /// The scoring back-off path, narrow first: issuer -> sector and rating -> asset class.
    /// It stops at the asset class. `all` pools a dealer's asset classes: a specialist's few
    /// asks away from home (where it declines or prices wide) and its markouts, whose level is
    /// each asset class's cost (govt ~8 bps, high yield ~85), would stand for its home, and a
    /// dealer judged on them is never asked there again. A dealer thin in the order's asset
    /// class scores the prior instead (`model::back_off`): it is tried until it has data.
    pub fn primary_path(&self) -> [SegmentKey; MAX_PATH] {
        [self.issuer, self.sector_rating, self.asset_class]
    }

    /// Narrow first: maturity bucket -> asset class -> all.
    pub fn maturity_path(&self) -> [SegmentKey; 3] {
        [self.maturity, self.asset_class, self.all]
    }

    /// Narrow first: size bucket -> asset class -> all.
    pub fn size_path(&self) -> [SegmentKey; 3] {
        [self.size, self.asset_class, self.all]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_level_never_collide_across_levels_and_ignore_case() {
        let a = SegmentKey::issuer(b"HY", b"Acme Corp");
        assert_eq!(a, SegmentKey::issuer(b"hy", b"ACME CORP"));
        assert_eq!(a.level(), Some(SegmentLevel::Issuer));
        assert_ne!(a, SegmentKey::issuer(b"HY", b"Acme Corp."));
        // Part boundaries matter: ("HYA", "B") is not ("HY", "AB").
        assert_ne!(
            SegmentKey::issuer(b"HYA", b"B"),
            SegmentKey::issuer(b"HY", b"AB")
        );
        assert_ne!(SegmentKey::all(), SegmentKey::EMPTY);
        assert_eq!(SegmentKey::all().level(), Some(SegmentLevel::All));
        assert_eq!(SegmentKey::EMPTY.level(), None);
        assert_ne!(
            SegmentKey::asset_class(b"HY"),
            SegmentKey::asset_class(b"IG")
        );
    }

    #[test]
    fn ratings_bucket_across_agencies() {
        use RatingBucket::*;
        for (r, b) in [
            (&b"AAA"[..], Aaa),
            (b"Aaa", Aaa),
            (b"AA+", Aa),
            (b"Aa3", Aa),
            (b"A-", A),
            (b"A1", A),
            (b"BBB-", Bbb),
            (b"Baa3", Bbb),
            (b"BB+", Bb),
            (b"Ba1", Bb),
            (b"B-", B),
            (b"B2", B),
            (b"CCC+", CccAndBelow),
            (b"Caa1", CccAndBelow),
            (b"Ca", CccAndBelow),
            (b"D", CccAndBelow),
            (b"NR", NotRated),
            (b"", NotRated),
        ] {
            assert_eq!(RatingBucket::from_agency(r), Some(b), "{:?}", r);
        }
        assert_eq!(RatingBucket::from_agency(b"XYZ"), None);
        assert_eq!(RatingBucket::from_agency(b"AAAAAA"), None);
        assert!(Aaa < Bbb && Bbb < CccAndBelow);
    }

    #[test]
    fn buckets_cut_at_their_bounds() {
        let m = Buckets::default_maturity_years();
        assert_eq!(m.bucket(0.5), 0);
        assert_eq!(m.bucket(1.0), 1);
        assert_eq!(m.bucket(6.99), 3);
        assert_eq!(m.bucket(7.0), 4);
        assert_eq!(m.bucket(45.0), 7);
        assert_eq!(m.lower_bound(4), 7.0);
        assert_eq!(m.lower_bound(0), f64::NEG_INFINITY);
        assert!(Buckets::new(&[1.0, 1.0]).is_err());
        assert!(Buckets::new(&[f64::NAN]).is_err());
        assert!(Buckets::new(&[0.0; 16]).is_err());
    }

    #[test]
    fn paths_go_from_narrow_to_broad() {
        let keys = SegmentKeys::of(
            &SegmentInput {
                asset_class: b"HY",
                issuer: b"ACME",
                sector: b"Industrials",
                rating: RatingBucket::Bb,
                years_to_maturity: 7.2,
                notional: 10e6,
            },
            &Buckets::default_maturity_years(),
            &Buckets::default_size_notional(),
        );
        let levels: Vec<_> = keys
            .primary_path()
            .iter()
            .map(|k| k.level().unwrap())
            .collect();
        assert_eq!(
            levels,
            [
                SegmentLevel::Issuer,
                SegmentLevel::SectorRating,
                SegmentLevel::AssetClass,
            ]
        );
        assert_eq!(keys.update_order()[0], SegmentKey::all());
        assert_eq!(keys.maturity.level(), Some(SegmentLevel::Maturity));
        assert_eq!(keys.size_path()[0].level(), Some(SegmentLevel::Size));
    }
}
