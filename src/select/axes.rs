//! Dealer axes: the IndicationOfInterest messages (35=6) dealers send to say which bonds
//! they want to trade and on which side, kept in a bounded book that selection asks, per
//! candidate, "is this dealer axed against this order?".
//!
//! Owns reading one IOI (IOIID 23, IOITransType 28 N/C/R, IOIRefID 26, the instrument by
//! SecurityID/SecurityIDSource or Symbol, Side 54 = the side the DEALER wants to trade,
//! IOIQty 27, ValidUntilTime 62) and `AxeBook`, a fixed-capacity table of live axes chained
//! per security-master instrument and per dealer: new, cancel and replace by IOIID (looked up
//! in the dealer's own chain), ValidUntilTime honoured against the `now` it is given (an axe
//! without one lives `max_life_s`), and a full book, or a dealer at its own share of it
//! (`max_per_dealer`, so one dealer's IOIs cannot crowd out the others'), refusing (counted)
//! instead of growing. Must not read the clock, do I/O, or allocate after
//! construction. It does not decide what an axe is worth: the rule's `axe_bonus` does
//! (`scored`).

use crate::fix::message::Message;
use crate::fix::tags as t;
use crate::rfq::types::{DealerId, FixId, Side};
use crate::time::{parse_utc_timestamp, Nanos};

/// IOIRefID: the IOI a cancel or replace refers to.
pub const IOI_REF_ID: u32 = 26;

/// Axes kept at once unless `[axes] capacity` says otherwise.
pub const DEFAULT_AXE_CAPACITY: usize = 1024;
/// Largest `[axes] capacity` accepted.
pub const MAX_AXE_CAPACITY: usize = 1 << 20;
/// Live axes one dealer may hold at once unless `[axes] max_per_dealer` says otherwise.
pub const DEFAULT_AXE_MAX_PER_DEALER: usize = 256;
/// An axe without ValidUntilTime lives this long unless `[axes] max_life_s` says otherwise
/// (a dealer's axes are a day's run); one with a later ValidUntilTime is cut to it.
pub const DEFAULT_AXE_MAX_LIFE_S: u64 = 86_400;

/// The book's limits (`[axes]` in `config/rules.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxeSettings {
    /// Live axes kept at once; a new one past it is refused and counted.
    pub capacity: usize,
    /// Longest life of one axe, seconds from the IOI.
    pub max_life_s: u64,
    /// Live axes one dealer may hold at once; its new one past it is refused and counted.
    pub max_per_dealer: usize,
}

impl Default for AxeSettings {
    fn default() -> Self {
        AxeSettings {
            capacity: DEFAULT_AXE_CAPACITY,
            max_life_s: DEFAULT_AXE_MAX_LIFE_S,
            max_per_dealer: DEFAULT_AXE_MAX_PER_DEALER,
        }
    }
}

/// IOITransType (28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoiTrans {
    New,
    Cancel,
    Replace,
}

/// One IOI as read from the wire (borrowing the message).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Indication<'a> {
    pub ioi_id: &'a [u8],
    pub trans: IoiTrans,
    /// IOIRefID (26): the IOI cancelled or replaced.
    pub ref_id: Option<&'a [u8]>,
    /// SecurityID (48) when present, else Symbol (55).
    pub instrument: &'a [u8],
    /// SecurityIDSource (22) with a SecurityID; `None` for a Symbol.
    pub id_source: Option<&'a [u8]>,
    /// The side the dealer wants to trade.
    pub side: Side,
    /// IOIQty (27) when numeric (FIX also allows S/M/L).
    pub qty: Option<f64>,
    pub valid_until: Option<Nanos>,
}

/// Why an IOI could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoiError {
    /// IOIID missing, empty or longer than the router keeps.
    BadId,
    /// IOITransType not N, C or R.
    BadTransType,
    NoInstrument,
    /// Side not 1 (buy) or 2 (sell).
    BadSide,
    BadValidUntil,
}

/// Reads an IOI. A cancel or replace names the IOI it refers to in IOIRefID (26); a cancel
/// without one cancels the IOIID itself.
pub fn parse_ioi<'a>(msg: &Message<'a>) -> Result<Indication<'a>, IoiError> {
    let ioi_id = msg
        .get(t::IOI_ID)
        .filter(|v| !v.is_empty() && v.len() <= crate::rfq::types::FIX_ID_MAX)
        .ok_or(IoiError::BadId)?;
    let trans = match msg.get(t::IOI_TRANS_TYPE) {
        Some(b"N") => IoiTrans::New,
        Some(b"C") => IoiTrans::Cancel,
        Some(b"R") => IoiTrans::Replace,
        _ => return Err(IoiError::BadTransType),
    };
    let (instrument, id_source) = match msg.get(t::SECURITY_ID) {
        Some(id) if !id.is_empty() => (id, msg.get(t::SECURITY_ID_SOURCE)),
        _ => match msg.get(t::SYMBOL) {
            Some(s) if !s.is_empty() => (s, None),
            _ => return Err(IoiError::NoInstrument),
        },
    };
    let side = msg
        .get(t::SIDE)
        .and_then(Side::from_fix)
        .ok_or(IoiError::BadSide)?;
    let qty = msg
        .get(t::IOI_QTY)
        .and_then(crate::fix::Decimal::parse)
        .map(|d| d.to_f64())
        .filter(|q| q.is_finite() && *q > 0.0);
    let valid_until = match msg.get(t::VALID_UNTIL_TIME) {
        None => None,
        Some(v) => Some(parse_utc_timestamp(v).ok_or(IoiError::BadValidUntil)?),
    };
    Ok(Indication {
        ioi_id,
        trans,
        ref_id: msg.get(IOI_REF_ID).filter(|v| !v.is_empty()),
        instrument,
        id_source,
        side,
        qty,
        valid_until,
    })
}

/// What the book did with one IOI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoiOutcome {
    Added,
    Replaced,
    Cancelled,
    /// The selector keeps no axes.
    Ignored,
    Rejected(AxeReject),
}

/// Why an IOI changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxeReject {
    /// The book is full of live axes.
    Full,
    /// The dealer holds `max_per_dealer` live axes already.
    DealerFull,
    /// A dealer index past the book's dealers.
    UnknownDealer,
    /// Not in the security master.
    UnknownInstrument,
    /// Its ValidUntilTime has passed.
    Expired,
    /// A cancel of an IOI the book does not hold.
    UnknownRef,
    Invalid(IoiError),
}

/// What the book has done, for an SRE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AxeCounters {
    pub added: u64,
    pub replaced: u64,
    pub cancelled: u64,
    pub rejected_full: u64,
    pub rejected_dealer_full: u64,
    pub rejected_unknown_dealer: u64,
    pub rejected_unknown_instrument: u64,
    pub rejected_expired: u64,
    pub rejected_invalid: u64,
    /// Cancels of unknown IOIs (ignored) and replaces of unknown IOIs (kept as new).
    pub unknown_ref: u64,
    /// Axes removed because their ValidUntilTime had passed.
    pub expired_removed: u64,
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Axe {
    dealer: DealerId,
    instrument: u32,
    side: Side,
    ioi_id: FixId,
    qty: Option<f64>,
    valid_until: Nanos,
    /// Next axe of the same instrument, or NIL (also the free list's link).
    next: u32,
    /// Next axe of the same dealer, or NIL.
    dealer_next: u32,
    live: bool,
}

/// The live axes, at most `capacity` (and `max_per_dealer` per dealer), chained per
/// instrument and per dealer.
#[derive(Debug, Clone)]
pub struct AxeBook {
    settings: AxeSettings,
    slots: Vec<Axe>,
    /// Per security-master instrument: its first axe, or NIL.
    head: Vec<u32>,
    /// Per dealer (index `DealerId`): its first axe, or NIL, and how many it holds.
    dealer_head: Vec<u32>,
    dealer_live: Vec<u32>,
    free: u32,
    live: usize,
    counters: AxeCounters,
}

/// A live axe, as selection and people see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxeView {
    pub ioi_id: FixId,
    pub side: Side,
    pub qty: Option<f64>,
    pub valid_until: Nanos,
}

fn opposite(s: Side) -> Side {
    match s {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

impl AxeBook {
    /// A book for `instruments` security-master entries and `dealers` dealers (indices
    /// `0..dealers`); allocates once, here.
    pub fn new(settings: AxeSettings, instruments: usize, dealers: usize) -> AxeBook {
        let capacity = settings.capacity.clamp(1, MAX_AXE_CAPACITY);
        let max_per_dealer = settings.max_per_dealer.clamp(1, capacity);
        let blank = Axe {
            dealer: DealerId(0),
            instrument: 0,
            side: Side::Buy,
            ioi_id: FixId::EMPTY,
            qty: None,
            valid_until: Nanos(0),
            next: NIL,
            dealer_next: NIL,
            live: false,
        };
        let mut slots = vec![blank; capacity];
        for (i, s) in slots.iter_mut().enumerate() {
            s.next = if i + 1 < capacity { i as u32 + 1 } else { NIL };
        }
        AxeBook {
            settings: AxeSettings {
                capacity,
                max_per_dealer,
                ..settings
            },
            slots,
            head: vec![NIL; instruments],
            dealer_head: vec![NIL; dealers],
            dealer_live: vec![0; dealers],
            free: 0,
            live: 0,
            counters: AxeCounters::default(),
        }
    }

    pub fn settings(&self) -> AxeSettings {
        self.settings
    }

    pub fn counters(&self) -> AxeCounters {
        self.counters
    }

    /// Axes held (some may have passed their ValidUntilTime and not been removed yet).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Counts a message that could not be read as an IOI.
    pub fn invalid(&mut self, e: IoiError) -> IoiOutcome {
        self.counters.rejected_invalid += 1;
        IoiOutcome::Rejected(AxeReject::Invalid(e))
    }

    /// Counts an IOI for an instrument the security master does not know.
    pub fn unknown_instrument(&mut self) -> IoiOutcome {
        self.counters.rejected_unknown_instrument += 1;
        IoiOutcome::Rejected(AxeReject::UnknownInstrument)
    }

    /// Applies `ioi` from `dealer`, for security-master entry `instrument`, at `now`.
    pub fn apply(
        &mut self,
        dealer: DealerId,
        instrument: u32,
        ioi: &Indication<'_>,
        now: Nanos,
    ) -> IoiOutcome {
        let Some(id) = FixId::new(ioi.ioi_id) else {
            return self.invalid(IoiError::BadId);
        };
        let d = usize::from(dealer.0);
        if d >= self.dealer_head.len() {
            self.counters.rejected_unknown_dealer += 1;
            return IoiOutcome::Rejected(AxeReject::UnknownDealer);
        }
        if ioi.trans == IoiTrans::Cancel {
            let target = ioi.ref_id.unwrap_or(ioi.ioi_id);
            return match self.find_id(dealer, target) {
                Some(i) => {
                    self.remove(i);
                    self.counters.cancelled += 1;
                    IoiOutcome::Cancelled
                }
                None => {
                    self.counters.unknown_ref += 1;
                    IoiOutcome::Rejected(AxeReject::UnknownRef)
                }
            };
        }
        if usize::try_from(instrument).map_or(true, |i| i >= self.head.len()) {
            return self.unknown_instrument();
        }
        let cap = Nanos(
            now.0
                .saturating_add(self.settings.max_life_s.saturating_mul(Nanos::PER_SEC)),
        );
        let valid_until = ioi.valid_until.map_or(cap, |v| Nanos(v.0.min(cap.0)));
        if valid_until <= now {
            self.counters.rejected_expired += 1;
            return IoiOutcome::Rejected(AxeReject::Expired);
        }
        // What this IOI supersedes: the IOI it replaces, the same IOIID again, or the
        // dealer's earlier axe in the same instrument and side (the latest interest wins).
        let earlier = match ioi.trans {
            IoiTrans::Replace => {
                let r = ioi.ref_id.and_then(|r| self.find_id(dealer, r));
                if r.is_none() {
                    self.counters.unknown_ref += 1;
                }
                r
            }
            _ => None,
        }
        .or_else(|| self.find_id(dealer, ioi.ioi_id))
        .or_else(|| self.find_same(dealer, instrument, ioi.side));
        if let Some(i) = earlier {
            self.remove(i);
        }
        if self.dealer_live[d] as usize >= self.settings.max_per_dealer {
            self.remove_expired_of(d, now);
            if self.dealer_live[d] as usize >= self.settings.max_per_dealer {
                self.counters.rejected_dealer_full += 1;
                return IoiOutcome::Rejected(AxeReject::DealerFull);
            }
        }
        let Some(slot) = self.take_slot(now) else {
            self.counters.rejected_full += 1;
            return IoiOutcome::Rejected(AxeReject::Full);
        };
        let h = instrument as usize;
        self.slots[slot as usize] = Axe {
            dealer,
            instrument,
            side: ioi.side,
            ioi_id: id,
            qty: ioi.qty,
            valid_until,
            next: self.head[h],
            dealer_next: self.dealer_head[d],
            live: true,
        };
        self.head[h] = slot;
        self.dealer_head[d] = slot;
        self.dealer_live[d] += 1;
        self.live += 1;
        if earlier.is_some() {
            self.counters.replaced += 1;
            IoiOutcome::Replaced
        } else {
            self.counters.added += 1;
            IoiOutcome::Added
        }
    }

    /// The axe `dealer` holds against an order on `client_side` in `instrument` at `now`:
    /// the dealer wants to trade the other side (it buys what the client sells). Reads only.
    pub fn against(
        &self,
        dealer: DealerId,
        instrument: u32,
        client_side: Side,
        now: Nanos,
    ) -> Option<AxeView> {
        let want = opposite(client_side);
        let mut i = *self.head.get(instrument as usize)?;
        while i != NIL {
            let a = &self.slots[i as usize];
            if a.dealer == dealer && a.side == want && a.valid_until > now {
                return Some(AxeView {
                    ioi_id: a.ioi_id,
                    side: a.side,
                    qty: a.qty,
                    valid_until: a.valid_until,
                });
            }
            i = a.next;
        }
        None
    }

    /// Whether any axe is held in `instrument` (a cheap test before asking per dealer).
    pub fn any_in(&self, instrument: u32) -> bool {
        self.head
            .get(instrument as usize)
            .is_some_and(|&h| h != NIL)
    }

    /// The dealer's live axe with IOIID `id` (a walk of the dealer's own chain, at most
    /// `max_per_dealer` long).
    fn find_id(&self, dealer: DealerId, id: &[u8]) -> Option<u32> {
        let mut i = *self.dealer_head.get(usize::from(dealer.0))?;
        while i != NIL {
            let a = &self.slots[i as usize];
            if a.ioi_id.as_bytes() == id {
                return Some(i);
            }
            i = a.dealer_next;
        }
        None
    }

    /// Removes dealer `d`'s axes past their ValidUntilTime.
    fn remove_expired_of(&mut self, d: usize, now: Nanos) {
        let mut i = self.dealer_head[d];
        while i != NIL {
            let a = self.slots[i as usize];
            if a.valid_until <= now {
                self.remove(i);
                self.counters.expired_removed += 1;
            }
            i = a.dealer_next;
        }
    }

    fn find_same(&self, dealer: DealerId, instrument: u32, side: Side) -> Option<u32> {
        let mut i = *self.head.get(instrument as usize)?;
        while i != NIL {
            let a = &self.slots[i as usize];
            if a.dealer == dealer && a.side == side {
                return Some(i);
            }
            i = a.next;
        }
        None
    }

    /// A free slot; when none, the axes past their ValidUntilTime are removed first.
    fn take_slot(&mut self, now: Nanos) -> Option<u32> {
        if self.free == NIL {
            for i in 0..self.slots.len() {
                if self.slots[i].live && self.slots[i].valid_until <= now {
                    self.remove(i as u32);
                    self.counters.expired_removed += 1;
                }
            }
        }
        let slot = self.free;
        if slot == NIL {
            return None;
        }
        self.free = self.slots[slot as usize].next;
        Some(slot)
    }

    /// Unlinks slot `i` from its instrument's chain and frees it.
    fn remove(&mut self, i: u32) {
        let a = self.slots[i as usize];
        assert!(a.live, "removing a free axe slot");
        let h = a.instrument as usize;
        if self.head[h] == i {
            self.head[h] = a.next;
        } else {
            let mut p = self.head[h];
            while p != NIL {
                let next = self.slots[p as usize].next;
                if next == i {
                    self.slots[p as usize].next = a.next;
                    break;
                }
                p = next;
            }
        }
        let d = usize::from(a.dealer.0);
        if self.dealer_head[d] == i {
            self.dealer_head[d] = a.dealer_next;
        } else {
            let mut p = self.dealer_head[d];
            while p != NIL {
                let next = self.slots[p as usize].dealer_next;
                if next == i {
                    self.slots[p as usize].dealer_next = a.dealer_next;
                    break;
                }
                p = next;
            }
        }
        let s = &mut self.slots[i as usize];
        s.live = false;
        s.next = self.free;
        s.dealer_next = NIL;
        self.free = i;
        self.live -= 1;
        self.dealer_live[d] -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ioi<'a>(id: &'a [u8], trans: IoiTrans, side: Side) -> Indication<'a> {
        Indication {
            ioi_id: id,
            trans,
            ref_id: None,
            instrument: b"X",
            id_source: None,
            side,
            qty: Some(1e6),
            valid_until: None,
        }
    }

    const T0: Nanos = Nanos(1_000 * Nanos::PER_SEC);

    #[test]
    fn an_axe_counts_against_the_opposite_side_only_and_until_it_expires() {
        let mut b = AxeBook::new(AxeSettings::default(), 4, 8);
        let d = DealerId(3);
        let mut i = ioi(b"A1", IoiTrans::New, Side::Buy);
        i.valid_until = Some(Nanos(T0.0 + 60 * Nanos::PER_SEC));
        assert_eq!(b.apply(d, 2, &i, T0), IoiOutcome::Added);
        // The dealer wants to buy: it is axed against a client's sale, not a purchase.
        let v = b.against(d, 2, Side::Sell, T0).expect("axed");
        assert_eq!(v.ioi_id.as_bytes(), b"A1");
        assert!(b.against(d, 2, Side::Buy, T0).is_none());
        assert!(b.against(DealerId(4), 2, Side::Sell, T0).is_none());
        assert!(b.against(d, 1, Side::Sell, T0).is_none());
        let later = Nanos(T0.0 + 60 * Nanos::PER_SEC);
        assert!(b.against(d, 2, Side::Sell, later).is_none(), "expired");
        // Already expired on arrival: refused.
        let mut old = ioi(b"A2", IoiTrans::New, Side::Sell);
        old.valid_until = Some(T0);
        assert_eq!(
            b.apply(d, 2, &old, T0),
            IoiOutcome::Rejected(AxeReject::Expired)
        );
        // No ValidUntilTime: lives max_life_s.
        let mut b = AxeBook::new(
            AxeSettings {
                capacity: 4,
                max_life_s: 10,
                max_per_dealer: 4,
            },
            4,
            8,
        );
        b.apply(d, 0, &ioi(b"B", IoiTrans::New, Side::Sell), T0);
        assert!(b
            .against(d, 0, Side::Buy, Nanos(T0.0 + 9 * Nanos::PER_SEC))
            .is_some());
        assert!(b
            .against(d, 0, Side::Buy, Nanos(T0.0 + 10 * Nanos::PER_SEC))
            .is_none());
    }

    #[test]
    fn cancel_and_replace_by_ioi_id_and_a_full_book_refuses_and_counts() {
        let mut b = AxeBook::new(
            AxeSettings {
                capacity: 2,
                max_life_s: 3600,
                max_per_dealer: 2,
            },
            8,
            2,
        );
        let d = DealerId(0);
        assert_eq!(
            b.apply(d, 1, &ioi(b"I1", IoiTrans::New, Side::Buy), T0),
            IoiOutcome::Added
        );
        assert_eq!(
            b.apply(d, 2, &ioi(b"I2", IoiTrans::New, Side::Buy), T0),
            IoiOutcome::Added
        );
        // Full: a third (from another dealer, under its own cap) is refused, the book does
        // not grow.
        assert_eq!(
            b.apply(DealerId(1), 3, &ioi(b"I3", IoiTrans::New, Side::Buy), T0),
            IoiOutcome::Rejected(AxeReject::Full)
        );
        assert_eq!((b.len(), b.counters().rejected_full), (2, 1));
        // Replace I1 by I4, now on the other side.
        let mut r = ioi(b"I4", IoiTrans::Replace, Side::Sell);
        r.ref_id = Some(b"I1");
        r.instrument = b"X";
        assert_eq!(b.apply(d, 1, &r, T0), IoiOutcome::Replaced);
        assert!(b.against(d, 1, Side::Sell, T0).is_none());
        assert_eq!(
            b.against(d, 1, Side::Buy, T0).map(|v| v.ioi_id),
            FixId::new(b"I4")
        );
        // Another dealer cannot cancel it; its own cancel by IOIRefID does.
        let mut c = ioi(b"C1", IoiTrans::Cancel, Side::Sell);
        c.ref_id = Some(b"I4");
        assert_eq!(
            b.apply(DealerId(1), 1, &c, T0),
            IoiOutcome::Rejected(AxeReject::UnknownRef)
        );
        assert_eq!(b.apply(d, 1, &c, T0), IoiOutcome::Cancelled);
        assert!(b.against(d, 1, Side::Buy, T0).is_none());
        assert_eq!(b.len(), 1);
        // A new IOI in the same instrument and side supersedes the dealer's earlier one.
        assert_eq!(
            b.apply(d, 2, &ioi(b"I5", IoiTrans::New, Side::Buy), T0),
            IoiOutcome::Replaced
        );
        assert_eq!(b.len(), 1);
        // Expired axes make room when the book is full.
        let mut short = ioi(b"I6", IoiTrans::New, Side::Sell);
        short.valid_until = Some(Nanos(T0.0 + Nanos::PER_SEC));
        assert_eq!(b.apply(d, 5, &short, T0), IoiOutcome::Added);
        let later = Nanos(T0.0 + 2 * Nanos::PER_SEC);
        assert_eq!(
            b.apply(d, 6, &ioi(b"I7", IoiTrans::New, Side::Sell), later),
            IoiOutcome::Added
        );
        assert_eq!(b.counters().expired_removed, 1);
        // An instrument index past the master is refused.
        assert_eq!(
            b.apply(d, 99, &ioi(b"I8", IoiTrans::New, Side::Sell), later),
            IoiOutcome::Rejected(AxeReject::UnknownInstrument)
        );
    }

    #[test]
    fn one_dealer_cannot_take_more_than_its_share_of_the_book() {
        let mut b = AxeBook::new(
            AxeSettings {
                capacity: 8,
                max_life_s: 3600,
                max_per_dealer: 3,
            },
            16,
            3,
        );
        let (spammer, other) = (DealerId(0), DealerId(1));
        let ids: [&[u8]; 5] = [b"S0", b"S1", b"S2", b"S3", b"S4"];
        for (k, id) in ids.iter().enumerate() {
            let mut i = ioi(id, IoiTrans::New, Side::Buy);
            // The first one expires a second after T0.
            if k == 0 {
                i.valid_until = Some(Nanos(T0.0 + Nanos::PER_SEC));
            }
            let want = if k < 3 {
                IoiOutcome::Added
            } else {
                IoiOutcome::Rejected(AxeReject::DealerFull)
            };
            assert_eq!(b.apply(spammer, k as u32, &i, T0), want, "IOI {k}");
        }
        assert_eq!((b.len(), b.counters().rejected_dealer_full), (3, 2));
        // The book has room, and another dealer still gets in.
        assert_eq!(
            b.apply(other, 9, &ioi(b"O1", IoiTrans::New, Side::Buy), T0),
            IoiOutcome::Added
        );
        // A replace of one of its own never hits its cap; a cancel frees a place.
        let mut r = ioi(b"S5", IoiTrans::Replace, Side::Sell);
        r.ref_id = Some(b"S1");
        assert_eq!(b.apply(spammer, 1, &r, T0), IoiOutcome::Replaced);
        let mut c = ioi(b"C", IoiTrans::Cancel, Side::Buy);
        c.ref_id = Some(b"S2");
        assert_eq!(b.apply(spammer, 2, &c, T0), IoiOutcome::Cancelled);
        assert_eq!(
            b.apply(spammer, 3, &ioi(b"S6", IoiTrans::New, Side::Buy), T0),
            IoiOutcome::Added
        );
        // At its cap again: its own expired axe makes room.
        let later = Nanos(T0.0 + 2 * Nanos::PER_SEC);
        assert_eq!(
            b.apply(spammer, 4, &ioi(b"S7", IoiTrans::New, Side::Buy), later),
            IoiOutcome::Added
        );
        assert_eq!(b.counters().expired_removed, 1);
        assert!(b.against(spammer, 0, Side::Sell, later).is_none());
        for (inst, id) in [(1u32, &b"S5"[..]), (3, b"S6"), (4, b"S7")] {
            let side = if inst == 1 { Side::Buy } else { Side::Sell };
            assert_eq!(
                b.against(spammer, inst, side, later).map(|v| v.ioi_id),
                FixId::new(id),
                "instrument {inst}"
            );
        }
        assert_eq!(b.len(), 4);
        // A dealer index past the book's dealers is refused, not indexed.
        assert_eq!(
            b.apply(DealerId(3), 0, &ioi(b"X", IoiTrans::New, Side::Buy), later),
            IoiOutcome::Rejected(AxeReject::UnknownDealer)
        );
        assert_eq!(b.counters().rejected_unknown_dealer, 1);
    }

    #[test]
    fn parse_reads_the_fix_fields_and_refuses_bad_ones() {
        use crate::fix::{Decoder, Encoder};
        let mut enc = Encoder::new(1024);
        let mut dec = Decoder::new(64);
        let mut frame = |body: &[u8]| -> Vec<u8> {
            enc.start(b"6")
                .uint(34, 2)
                .str(49, b"D1")
                .timestamp(52, T0)
                .str(56, b"ROUTER")
                .raw(body);
            enc.finish().expect("encodes").to_vec()
        };
        let f = frame(
            b"23=I9\x0128=R\x0126=I8\x0155=XS1\x0148=XS1\x0122=4\x0154=2\x0127=5000000\x01\
              62=20261123-14:00:00.000\x01",
        );
        let m = dec.decode(&f).expect("decodes");
        let i = parse_ioi(&m).expect("an IOI");
        assert_eq!(i.ioi_id, b"I9");
        assert_eq!(i.trans, IoiTrans::Replace);
        assert_eq!(i.ref_id, Some(&b"I8"[..]));
        assert_eq!((i.instrument, i.id_source), (&b"XS1"[..], Some(&b"4"[..])));
        assert_eq!(i.side, Side::Sell);
        assert_eq!(i.qty, Some(5e6));
        assert!(i.valid_until.is_some());
        for (body, e) in [
            (&b"28=N\x0155=X\x0154=1\x0127=S\x01"[..], IoiError::BadId),
            (
                b"23=A\x0128=Q\x0155=X\x0154=1\x0127=S\x01",
                IoiError::BadTransType,
            ),
            (b"23=A\x0128=N\x0154=1\x0127=S\x01", IoiError::NoInstrument),
            (
                b"23=A\x0128=N\x0155=X\x0154=7\x0127=S\x01",
                IoiError::BadSide,
            ),
            (
                b"23=A\x0128=N\x0155=X\x0154=1\x0127=S\x0162=soon\x01",
                IoiError::BadValidUntil,
            ),
        ] {
            let f = frame(body);
            let m = dec.decode(&f).expect("decodes");
            assert_eq!(parse_ioi(&m), Err(e));
        }
    }
}
