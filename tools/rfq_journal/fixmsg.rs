//! A flat view of one journaled FIX frame for the tools: its fields in order, lookups by
//! tag, the legs (NoRelatedSym entries) of a QuoteRequest, and the router's identifiers.
//!
//! The frames were validated on the way in (or written by the router), so this is a plain
//! tag=value split, not the session decoder; a malformed field is skipped, never a panic.
//! Must not: judge validity or allocate more than one vector per frame.

use std::fmt;

use rfq_router::rfq::types::Side;

pub const MSG_TYPE: u32 = 35;
pub const AVG_PX: u32 = 6;
pub const CL_ORD_ID: u32 = 11;
pub const CUM_QTY: u32 = 14;
pub const EXEC_ID: u32 = 17;
pub const SECURITY_ID_SOURCE: u32 = 22;
pub const LAST_PX: u32 = 31;
pub const LAST_QTY: u32 = 32;
pub const ORDER_ID: u32 = 37;
pub const ORDER_QTY: u32 = 38;
pub const ORD_STATUS: u32 = 39;
pub const PRICE: u32 = 44;
pub const SECURITY_ID: u32 = 48;
pub const SIDE: u32 = 54;
pub const SYMBOL: u32 = 55;
pub const TEXT: u32 = 58;
pub const VALID_UNTIL_TIME: u32 = 62;
pub const QUOTE_ID: u32 = 117;
pub const QUOTE_REQ_ID: u32 = 131;
pub const BID_PX: u32 = 132;
pub const OFFER_PX: u32 = 133;
pub const BID_SIZE: u32 = 134;
pub const OFFER_SIZE: u32 = 135;
pub const NO_RELATED_SYM: u32 = 146;
pub const EXEC_TYPE: u32 = 150;
pub const QUOTE_STATUS: u32 = 297;
pub const PARTY_ID: u32 = 448;
pub const QUOTE_REQUEST_REJECT_REASON: u32 = 658;
pub const QUOTE_RESP_ID: u32 = 693;
pub const QUOTE_RESP_TYPE: u32 = 694;

/// The fields of one frame, in order.
#[derive(Debug, Clone, Default)]
pub struct Fields<'a> {
    pub fields: Vec<(u32, &'a [u8])>,
}

impl<'a> Fields<'a> {
    pub fn parse(raw: &'a [u8]) -> Fields<'a> {
        let mut fields = Vec::with_capacity(32);
        for field in raw.split(|&b| b == 0x01) {
            let Some(eq) = field.iter().position(|&b| b == b'=') else {
                continue;
            };
            let tag = &field[..eq];
            if tag.is_empty() || tag.len() > 9 || !tag.iter().all(u8::is_ascii_digit) {
                continue;
            }
            let n = tag.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
            fields.push((n, &field[eq + 1..]));
        }
        Fields { fields }
    }

    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
    }

    /// The value as text (lossy), or "" when absent.
    pub fn text(&self, tag: u32) -> String {
        self.get(tag)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    pub fn number(&self, tag: u32) -> Option<f64> {
        std::str::from_utf8(self.get(tag)?)
            .ok()?
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    }

    pub fn msg_type(&self) -> &'a [u8] {
        self.get(MSG_TYPE).unwrap_or(b"")
    }

    /// The entries of the NoRelatedSym group: each starts at the group's first tag (its
    /// delimiter) and runs to the next occurrence of it. Trailer fields after the group are
    /// left in the last entry (harmless: no entry lookup asks for them).
    pub fn legs(&self) -> Vec<Fields<'a>> {
        let Some(start) = self.fields.iter().position(|(t, _)| *t == NO_RELATED_SYM) else {
            return Vec::new();
        };
        let body = &self.fields[start + 1..];
        let Some(&(delimiter, _)) = body.first() else {
            return Vec::new();
        };
        let mut legs: Vec<Fields<'a>> = Vec::new();
        for &(tag, v) in body {
            if tag == delimiter || legs.is_empty() {
                legs.push(Fields::default());
            }
            if let Some(leg) = legs.last_mut() {
                leg.fields.push((tag, v));
            }
        }
        legs
    }

    /// The instrument as the router keys it: SecurityID when given, else Symbol.
    pub fn instrument(&self) -> Option<&'a [u8]> {
        self.get(SECURITY_ID)
            .filter(|v| !v.is_empty())
            .or_else(|| self.get(SYMBOL).filter(|v| !v.is_empty() && *v != b"[N/A]"))
    }

    pub fn side(&self) -> Option<Side> {
        self.get(SIDE).and_then(Side::from_fix)
    }
}

pub fn side_name(side: Option<Side>) -> &'static str {
    match side {
        Some(Side::Buy) => "buy",
        Some(Side::Sell) => "sell",
        None => "",
    }
}

/// One RFQ leg as the router numbers it: the engine's RFQ sequence number and slab slot,
/// which every identifier the router issues for that leg carries (`R<seq>-<slot>` on dealer
/// requests, `Q<seq>-<slot>-<i>-<v>` on relayed quotes, `E`, `P`, `O`, `X` alike; see
/// `wire_ref` in src/rfq/engine.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouterKey {
    pub seq: u64,
    pub slot: u32,
}

impl fmt::Display for RouterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{}-{}", self.seq, self.slot)
    }
}

/// Parses any router identifier (`<R|Q|P|E|O|X><seq>-<slot>[-<a>-<b>]`) into its leg.
pub fn router_key(v: &[u8]) -> Option<RouterKey> {
    let (&prefix, rest) = v.split_first()?;
    if !matches!(prefix, b'R' | b'Q' | b'P' | b'E' | b'O' | b'X') {
        return None;
    }
    let mut parts = rest.split(|&b| b == b'-');
    let num = |p: &[u8]| -> Option<u64> {
        if p.is_empty() || p.len() > 19 || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(p.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
    };
    let seq = num(parts.next()?)?;
    let slot = u32::try_from(num(parts.next()?)?).ok()?;
    match (parts.next(), parts.next(), parts.next()) {
        (None, None, None) => {}
        (Some(a), Some(b), None) => {
            num(a)?;
            num(b)?;
        }
        _ => return None,
    }
    Some(RouterKey { seq, slot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_ids_name_their_leg() {
        let k = RouterKey { seq: 12, slot: 3 };
        assert_eq!(router_key(b"R12-3"), Some(k));
        assert_eq!(router_key(b"Q12-3-0-1"), Some(k));
        assert_eq!(router_key(b"E12-3"), Some(k));
        assert_eq!(router_key(b"X12-3-1-2"), Some(k));
        assert_eq!(router_key(b"O17"), None);
        assert_eq!(router_key(b"DESK-12-3"), None);
        assert_eq!(router_key(b"R12-3-1"), None);
        assert_eq!(k.to_string(), "R12-3");
    }

    #[test]
    fn legs_split_at_the_group_delimiter() {
        let raw = b"35=R\x01131=Q1\x01146=2\x0155=A\x0148=X1\x0154=1\x0155=B\x0154=2\x0110=000\x01";
        let f = Fields::parse(raw);
        let legs = f.legs();
        assert_eq!(legs.len(), 2);
        assert_eq!(legs[0].instrument(), Some(&b"X1"[..]));
        assert_eq!(legs[1].instrument(), Some(&b"B"[..]));
        assert_eq!(legs[1].side(), Some(Side::Sell));
    }
}
