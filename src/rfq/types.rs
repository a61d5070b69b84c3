//! Plain data the RFQ engine works with: bounded identifiers, sides, prices, handles.
//!
//! Owns value types only: fixed-capacity byte strings for FIX identifiers (so storing one never
//! allocates, and an over-long identifier is refused, not truncated), and the small enums of
//! the RFQ domain. No behaviour beyond parsing and comparing values.

/// A FIX session as the engine knows it: an index into the host's session table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u16);

/// A dealer: an index into the engine's dealer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DealerId(pub u16);

/// Maximum length of a FIX identifier the engine stores (QuoteReqID, QuoteID, SecurityID...).
pub const FIX_ID_MAX: usize = 40;

/// A FIX identifier held inline: at most `FIX_ID_MAX` bytes, never on the heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixId {
    len: u8,
    bytes: [u8; FIX_ID_MAX],
}

impl FixId {
    pub const EMPTY: FixId = FixId {
        len: 0,
        bytes: [0; FIX_ID_MAX],
    };

    /// `None` if `v` is longer than `FIX_ID_MAX`.
    pub fn new(v: &[u8]) -> Option<FixId> {
        if v.len() > FIX_ID_MAX {
            return None;
        }
        let mut bytes = [0u8; FIX_ID_MAX];
        crate::fix::encode::copy_small(&mut bytes[..v.len()], v);
        Some(FixId {
            len: v.len() as u8,
            bytes,
        })
    }

    /// A prefix followed by a decimal number, e.g. `Q` + 17 -> `Q17`.
    pub fn numbered(prefix: &[u8], n: u64) -> FixId {
        let mut digits = [0u8; 20];
        let d = crate::fix::encode::write_u64(n, &mut digits);
        let mut id = FixId::EMPTY;
        let total = (prefix.len() + d.len()).min(FIX_ID_MAX);
        let p = prefix.len().min(total);
        id.bytes[..p].copy_from_slice(&prefix[..p]);
        id.bytes[p..total].copy_from_slice(&d[..total - p]);
        id.len = total as u8;
        id
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for FixId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// The order side as the desk asked (Side 54): 1 buy, 2 sell. Shared by the engine and
/// selection (pre-trade analytics, rule conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn from_fix(v: &[u8]) -> Option<Side> {
        match v {
            b"1" => Some(Side::Buy),
            b"2" => Some(Side::Sell),
            _ => None,
        }
    }
    pub fn fix(self) -> u8 {
        match self {
            Side::Buy => b'1',
            Side::Sell => b'2',
        }
    }
    /// +1 for a buy, -1 for a sell (DESIGN section 7's `dir`).
    pub fn dir(self) -> f64 {
        match self {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }
}

/// A price or quantity: the text exactly as received (relayed byte for byte) and its value
/// for comparisons.
#[derive(Clone, Copy, PartialEq)]
pub struct Px {
    pub text: FixId,
    pub value: f64,
}

impl Px {
    /// Parses a FIX decimal with `fix::Decimal`'s rules (`-`? digits, optional `.` digits;
    /// no exponent, no sign `+`, at most 18 significant digits). `None` for anything else.
    pub fn parse(v: &[u8]) -> Option<Px> {
        let text = FixId::new(v)?;
        let value = crate::fix::Decimal::parse(v)?.to_f64();
        Some(Px { text, value })
    }
}

impl std::fmt::Debug for Px {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_id_is_bounded_and_exact() {
        assert_eq!(FixId::new(b"ABC").unwrap().as_bytes(), b"ABC");
        assert!(FixId::new(&[b'x'; FIX_ID_MAX]).is_some());
        assert!(FixId::new(&[b'x'; FIX_ID_MAX + 1]).is_none());
        assert_eq!(FixId::numbered(b"Q", 17).as_bytes(), b"Q17");
        assert_eq!(FixId::numbered(b"", 0).as_bytes(), b"0");
    }

    #[test]
    fn px_parses_fix_decimals_strictly() {
        assert_eq!(Px::parse(b"99.875").unwrap().value, 99.875);
        assert_eq!(Px::parse(b"-0.5").unwrap().value, -0.5);
        assert_eq!(Px::parse(b"002000.00").unwrap().value, 2000.0);
        assert_eq!(
            Px::parse(b"002000.00").unwrap().text.as_bytes(),
            b"002000.00"
        );
        for bad in [&b""[..], b"-", b".", b"1e5", b"1.2.3", b"abc", b" 1"] {
            assert!(
                Px::parse(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
