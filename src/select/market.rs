//! Market data: the mid of a FIX MarketDataSnapshotFullRefresh (35=W), and the bounded table
//! of the latest mid per instrument that selection uses as fair value.
//!
//! Owns reading one snapshot (the instrument by SecurityID/SecurityIDSource or Symbol, and
//! its MDEntries: the mean of the best bid `269=0` and the best offer `269=1`; FIX 4.4 has no
//! mid entry type, `269=H` came with FIX 5.0 and the validator refuses it) and `MidTable`, one slot per security-master instrument, sized once. It does not
//! decide what the mid is used for (pre-trade fair value in `scored`, TCA in `tca`) and never
//! allocates after construction, reads the clock or does I/O.

use crate::fix::message::Message;
use crate::fix::tags as t;
use crate::time::Nanos;

/// The instrument and mid one snapshot gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot<'a> {
    /// SecurityID (48) when present, else Symbol (55).
    pub instrument: &'a [u8],
    /// SecurityIDSource (22) with a SecurityID; `None` for a Symbol.
    pub id_source: Option<&'a [u8]>,
    pub mid: f64,
}

/// Why a snapshot gives no mid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotError {
    NoInstrument,
    /// Not both a bid and an offer.
    NoMid,
    /// A price that is not a positive decimal, or a bid above the offer.
    BadPrice,
}

fn price(v: &[u8]) -> Result<f64, SnapshotError> {
    crate::fix::Decimal::parse(v)
        .map(|d| d.to_f64())
        .filter(|p| p.is_finite() && *p > 0.0)
        .ok_or(SnapshotError::BadPrice)
}

/// The mid of a MarketDataSnapshotFullRefresh: the mean of the best (highest) bid and the
/// best (lowest) offer. Other entry types (trades, index values, ...) are ignored.
pub fn snapshot_mid<'a>(msg: &Message<'a>) -> Result<Snapshot<'a>, SnapshotError> {
    let (instrument, id_source) = match msg.get(t::SECURITY_ID) {
        Some(id) if !id.is_empty() => (id, msg.get(t::SECURITY_ID_SOURCE)),
        _ => match msg.get(t::SYMBOL) {
            Some(s) if !s.is_empty() => (s, None),
            _ => return Err(SnapshotError::NoInstrument),
        },
    };
    let (mut bid, mut offer) = (None::<f64>, None::<f64>);
    for entry in msg.group(t::NO_MD_ENTRIES) {
        let Some(px) = entry.get(t::MD_ENTRY_PX) else {
            continue;
        };
        match entry.get(t::MD_ENTRY_TYPE) {
            Some(b"0") => {
                let p = price(px)?;
                bid = Some(bid.map_or(p, |b| b.max(p)));
            }
            Some(b"1") => {
                let p = price(px)?;
                offer = Some(offer.map_or(p, |o| o.min(p)));
            }
            _ => {}
        }
    }
    let mid = match (bid, offer) {
        (Some(b), Some(o)) if b <= o => (b + o) / 2.0,
        (Some(_), Some(_)) => return Err(SnapshotError::BadPrice),
        _ => return Err(SnapshotError::NoMid),
    };
    Ok(Snapshot {
        instrument,
        id_source,
        mid,
    })
}

/// The latest mid per instrument (security-master index), with when it came.
#[derive(Debug, Clone)]
pub struct MidTable {
    mids: Box<[(f64, Nanos)]>,
}

impl MidTable {
    /// One slot per instrument; all empty.
    pub fn new(instruments: usize) -> MidTable {
        MidTable {
            mids: vec![(f64::NAN, Nanos(0)); instruments].into_boxed_slice(),
        }
    }

    /// Stores a mid; false (and nothing stored) for an index past the table or a price that
    /// is not positive and finite.
    pub fn set(&mut self, index: u32, mid: f64, now: Nanos) -> bool {
        match self.mids.get_mut(index as usize) {
            Some(slot) if mid.is_finite() && mid > 0.0 => {
                *slot = (mid, now);
                true
            }
            _ => false,
        }
    }

    /// The latest mid and when it came, if any.
    pub fn get(&self, index: u32) -> Option<(f64, Nanos)> {
        self.mids
            .get(index as usize)
            .copied()
            .filter(|(m, _)| m.is_finite())
    }

    /// The mid if it is at most `max_age` old at `now`.
    pub fn fresh(&self, index: u32, now: Nanos, max_age: Nanos) -> Option<f64> {
        self.get(index)
            .filter(|(_, at)| now.saturating_sub(*at) <= max_age)
            .map(|(m, _)| m)
    }

    pub fn len(&self) -> usize {
        self.mids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::frame::checksum;
    use crate::fix::validate::Validator;
    use crate::fix::Decoder;

    fn with_msg(fields: &str, f: impl FnOnce(&Message<'_>)) {
        let body = format!("35=W|34=2|49=FEED|52=20231114-22:13:20.000|56=ROUTER|{fields}")
            .replace('|', "\x01");
        let mut frame = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
        let sum = checksum(&frame);
        frame.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        let mut d = Decoder::new(64);
        let mut m = d.decode(&frame).expect("tokenises");
        Validator::fix44()
            .validate(&mut m)
            .unwrap_or_else(|v| panic!("invalid W: {v:?}"));
        f(&m);
    }

    #[test]
    fn mid_from_bid_and_offer_or_a_mid_entry() {
        with_msg(
            "55=X|48=US0000000001|22=4|268=2|269=0|270=99.5|269=1|270=100.5|",
            |m| {
                let s = snapshot_mid(m).unwrap();
                assert_eq!(s.instrument, b"US0000000001");
                assert_eq!(s.id_source, Some(&b"4"[..]));
                assert_eq!(s.mid, 100.0);
            },
        );
        with_msg(
            "55=ACME|268=4|269=0|270=99|269=0|270=99.5|269=1|270=100|269=2|270=1|",
            |m| {
                let s = snapshot_mid(m).unwrap();
                assert_eq!(
                    (s.instrument, s.id_source, s.mid),
                    (&b"ACME"[..], None, 99.75),
                    "best bid, best offer; trades ignored"
                );
            },
        );
        with_msg("55=ACME|268=1|269=0|270=99|", |m| {
            assert_eq!(snapshot_mid(m), Err(SnapshotError::NoMid));
        });
        with_msg("55=ACME|268=2|269=0|270=101|269=1|270=100|", |m| {
            assert_eq!(snapshot_mid(m), Err(SnapshotError::BadPrice));
        });
        with_msg("55=ACME|268=2|269=0|270=-1|269=1|270=100|", |m| {
            assert_eq!(snapshot_mid(m), Err(SnapshotError::BadPrice));
        });
    }

    #[test]
    fn mid_table_is_bounded_and_ages() {
        let mut t = MidTable::new(2);
        assert!(t.set(1, 100.0, Nanos(10)));
        assert!(!t.set(2, 100.0, Nanos(10)), "past the table");
        assert!(!t.set(0, f64::NAN, Nanos(10)));
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(1), Some((100.0, Nanos(10))));
        assert_eq!(t.fresh(1, Nanos(15), Nanos(5)), Some(100.0));
        assert_eq!(t.fresh(1, Nanos(16), Nanos(5)), None);
    }
}
