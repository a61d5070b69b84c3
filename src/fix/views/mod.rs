//! Typed, read-only, zero-copy views over a tokenised (and, for groups, validated) `Message`.
//!
//! Owns the mapping from the FIX 4.4 messages the router uses to named accessors: one view
//! per message type (`QuoteRequest::try_from(&msg)` checks MsgType 35), entry views for
//! their repeating groups (NoRelatedSym 146, NoPartyIDs 453, NoMDEntries 268, ...), the
//! standard header, and typed parsing of values (integers, `Decimal`, UTC timestamps, dates,
//! chars, booleans, enumerations). Accessors return `None` when a field is absent or its
//! text does not parse as the type; the raw bytes stay reachable through
//! `message().get(tag)`. Views borrow the frame: they never copy, allocate or panic, and
//! they never decide whether a message is acceptable (that is `validate`'s job, which also
//! annotates group scope: on an unvalidated message every group reads as empty).

use std::marker::PhantomData;

use super::message::{Field, GroupEntry, GroupIter, Message};
use crate::time::{is_date_only, parse_utc_timestamp, Nanos};

mod enums;
mod rfq;
mod session;
mod trade;

pub use enums::*;
pub use rfq::*;
pub use session::*;
pub use trade::*;

/// Why a view could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewError {
    /// The message's MsgType (35) is not the view's.
    WrongMsgType { expected: &'static [u8] },
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewError::WrongMsgType { expected } => {
                write!(f, "MsgType is not {}", String::from_utf8_lossy(expected))
            }
        }
    }
}

impl std::error::Error for ViewError {}

/// Parses a FIX `int`: an optional `-` then 1 to 18 digits (leading zeros allowed).
pub fn parse_i64(v: &[u8]) -> Option<i64> {
    let (negative, digits) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n = 0i64;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some(if negative { -n } else { n })
}

/// Parses a FIX `char`: exactly one byte.
pub fn parse_char(v: &[u8]) -> Option<u8> {
    match v {
        [c] => Some(*c),
        _ => None,
    }
}

/// Parses a FIX `Boolean`: `Y` or `N`.
pub fn parse_bool(v: &[u8]) -> Option<bool> {
    match v {
        b"Y" => Some(true),
        b"N" => Some(false),
        _ => None,
    }
}

/// Parses a FIX `LocalMktDate` / `UTCDateOnly` `YYYYMMDD` into the number `yyyymmdd`.
pub fn parse_date(v: &[u8]) -> Option<u32> {
    if !is_date_only(v) {
        return None;
    }
    Some(v.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0')))
}

/// Parses a FIX `UTCTimestamp` (seconds, or 3, 6 or 9 fractional digits).
pub fn parse_timestamp(v: &[u8]) -> Option<Nanos> {
    parse_utc_timestamp(v)
}

/// The entries of one repeating group, each wrapped in its entry view `V`.
pub struct Entries<'m, 'a, V> {
    inner: GroupIter<'m, 'a>,
    _view: PhantomData<fn() -> V>,
}

impl<'m, 'a, V> Entries<'m, 'a, V> {
    fn new(inner: GroupIter<'m, 'a>) -> Self {
        Entries {
            inner,
            _view: PhantomData,
        }
    }
}

impl<'m, 'a, V: From<GroupEntry<'m, 'a>>> Iterator for Entries<'m, 'a, V> {
    type Item = V;

    fn next(&mut self) -> Option<V> {
        self.inner.next().map(V::from)
    }
}

/// Generates one accessor per `name: kind = tag` on a view whose `src` has
/// `get(tag) -> Option<&'a [u8]>` and `group(tag) -> GroupIter<'m, 'a>`.
///
/// Kinds: `str` (bytes as received), `u64` (SeqNum, Length, NumInGroup), `int` (`i64`),
/// `decimal` (`Decimal`: Price, Qty, Amt, Float, Percentage, PriceOffset), `time`
/// (UTCTimestamp as `Nanos`), `date` (`yyyymmdd` as `u32`), `char` (`u8`), `bool`,
/// `enumerated<E>` (`E::from_fix`), `group<V>` (`Entries` of entry view `V`).
macro_rules! accessors {
    ($view:ident { $($name:ident : $kind:ident $(<$ty:ident>)? = $tag:literal),* $(,)? }) => {
        impl<'m, 'a> $view<'m, 'a> {
            $( accessors!(@one $name $kind $(<$ty>)? $tag); )*
        }
    };
    (@one $name:ident str $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), ", bytes as received.")]
        #[inline]
        pub fn $name(&self) -> Option<&'a [u8]> {
            self.src.get($tag)
        }
    };
    (@one $name:ident u64 $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), " as an unsigned integer.")]
        #[inline]
        pub fn $name(&self) -> Option<u64> {
            self.src.get($tag).and_then($crate::fix::message::parse_u64)
        }
    };
    (@one $name:ident int $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), " as an integer.")]
        #[inline]
        pub fn $name(&self) -> Option<i64> {
            self.src.get($tag).and_then($crate::fix::views::parse_i64)
        }
    };
    (@one $name:ident decimal $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), " as an exact decimal.")]
        #[inline]
        pub fn $name(&self) -> Option<$crate::fix::decimal::Decimal> {
            self.src.get($tag).and_then($crate::fix::decimal::Decimal::parse)
        }
    };
    (@one $name:ident time $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), " as a UTC timestamp.")]
        #[inline]
        pub fn $name(&self) -> Option<$crate::time::Nanos> {
            self.src.get($tag).and_then($crate::fix::views::parse_timestamp)
        }
    };
    (@one $name:ident date $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), " as the date number `yyyymmdd`.")]
        #[inline]
        pub fn $name(&self) -> Option<u32> {
            self.src.get($tag).and_then($crate::fix::views::parse_date)
        }
    };
    (@one $name:ident char $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), " as a single character.")]
        #[inline]
        pub fn $name(&self) -> Option<u8> {
            self.src.get($tag).and_then($crate::fix::views::parse_char)
        }
    };
    (@one $name:ident bool $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), " as a boolean (`Y`/`N`).")]
        #[inline]
        pub fn $name(&self) -> Option<bool> {
            self.src.get($tag).and_then($crate::fix::views::parse_bool)
        }
    };
    (@one $name:ident enumerated <$ty:ident> $tag:literal) => {
        #[doc = concat!("Tag ", stringify!($tag), " as [`", stringify!($ty), "`] (`None` if absent or not a listed value).")]
        #[inline]
        pub fn $name(&self) -> Option<$ty> {
            self.src.get($tag).and_then($ty::from_fix)
        }
    };
    (@one $name:ident group <$ty:ident> $tag:literal) => {
        #[doc = concat!("The entries of the repeating group whose NumInGroup tag is ", stringify!($tag), ".")]
        #[inline]
        pub fn $name(&self) -> $crate::fix::views::Entries<'m, 'a, $ty<'m, 'a>> {
            $crate::fix::views::Entries::new(self.src.group($tag))
        }
    };
}

/// Declares a top-level message view: the struct, `TryFrom<&Message>` (checking MsgType),
/// `message()` and `header()`.
macro_rules! message_view {
    ($(#[$meta:meta])* $view:ident = $msg_type:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $view<'m, 'a> {
            src: &'m $crate::fix::message::Message<'a>,
        }

        impl<'m, 'a> $view<'m, 'a> {
            /// The MsgType (35) value this view reads.
            pub const MSG_TYPE: &'static [u8] = $msg_type;

            /// The underlying message, for fields without an accessor.
            pub fn message(&self) -> &'m $crate::fix::message::Message<'a> {
                self.src
            }

            /// The standard header.
            pub fn header(&self) -> $crate::fix::views::Header<'m, 'a> {
                $crate::fix::views::Header::of(self.src)
            }
        }

        impl<'m, 'a> TryFrom<&'m $crate::fix::message::Message<'a>> for $view<'m, 'a> {
            type Error = $crate::fix::views::ViewError;

            fn try_from(
                msg: &'m $crate::fix::message::Message<'a>,
            ) -> Result<Self, $crate::fix::views::ViewError> {
                if msg.msg_type() == $msg_type {
                    Ok($view { src: msg })
                } else {
                    Err($crate::fix::views::ViewError::WrongMsgType { expected: $msg_type })
                }
            }
        }
    };
}

/// Declares a repeating-group entry view: the struct, `From<GroupEntry>` and `fields()`.
macro_rules! entry_view {
    ($(#[$meta:meta])* $view:ident) => {
        $(#[$meta])*
        pub struct $view<'m, 'a> {
            src: $crate::fix::message::GroupEntry<'m, 'a>,
        }

        impl<'m, 'a> From<$crate::fix::message::GroupEntry<'m, 'a>> for $view<'m, 'a> {
            fn from(src: $crate::fix::message::GroupEntry<'m, 'a>) -> Self {
                $view { src }
            }
        }

        impl<'m, 'a> $view<'m, 'a> {
            /// Every field of this entry in wire order, nested groups included.
            pub fn fields(&self) -> impl Iterator<Item = $crate::fix::message::Field<'a>> + '_ {
                self.src.iter()
            }
        }

        impl std::fmt::Debug for $view<'_, '_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                $crate::fix::views::debug_fields(f, stringify!($view), self.src.iter())
            }
        }
    };
}

/// The Instrument component's accessors (those a fixed-income router reads).
macro_rules! instrument_accessors {
    ($view:ident) => {
        accessors!($view {
            symbol: str = 55,
            symbol_sfx: str = 65,
            security_id: str = 48,
            security_id_source: enumerated<SecurityIdSource> = 22,
            product: int = 460,
            cfi_code: str = 461,
            security_type: str = 167,
            security_sub_type: str = 762,
            maturity_date: date = 541,
            coupon_payment_date: date = 224,
            issue_date: date = 225,
            factor: decimal = 228,
            credit_rating: str = 255,
            country_of_issue: str = 470,
            redemption_date: date = 240,
            coupon_rate: decimal = 223,
            security_exchange: str = 207,
            issuer: str = 106,
            security_desc: str = 107,
            dated_date: date = 873,
            interest_accrual_date: date = 874,
        });
    };
}

/// The OrderQtyData component's accessors.
macro_rules! order_qty_accessors {
    ($view:ident) => {
        accessors!($view {
            order_qty: decimal = 38,
            cash_order_qty: decimal = 152,
            order_percent: decimal = 516,
        });
    };
}

/// SpreadOrBenchmarkCurveData and YieldData components.
macro_rules! spread_yield_accessors {
    ($view:ident) => {
        accessors!($view {
            spread: decimal = 218,
            benchmark_curve_currency: str = 220,
            benchmark_curve_name: str = 221,
            benchmark_curve_point: str = 222,
            benchmark_price: decimal = 662,
            benchmark_price_type: int = 663,
            benchmark_security_id: str = 699,
            benchmark_security_id_source: str = 761,
            yield_type: str = 235,
            yield_value: decimal = 236,
            yield_calc_date: date = 701,
        });
    };
}

pub(crate) use {
    accessors, entry_view, instrument_accessors, message_view, order_qty_accessors,
    spread_yield_accessors,
};

/// Writes an entry as `Name[tag=value|...]`, bytes escaped, without allocating.
fn debug_fields<'a>(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    fields: impl Iterator<Item = Field<'a>>,
) -> std::fmt::Result {
    write!(f, "{name}[")?;
    for (i, field) in fields.enumerate() {
        if i > 0 {
            f.write_str("|")?;
        }
        write!(f, "{}={}", field.tag, field.value.escape_ascii())?;
    }
    f.write_str("]")
}

/// The standard header (every message has one).
#[derive(Debug, Clone, Copy)]
pub struct Header<'m, 'a> {
    src: &'m Message<'a>,
}

impl<'m, 'a> Header<'m, 'a> {
    pub fn of(msg: &'m Message<'a>) -> Self {
        Header { src: msg }
    }

    /// MsgType (35): always present (the decoder checks it).
    pub fn msg_type(&self) -> &'a [u8] {
        self.src.msg_type()
    }

    /// BeginString (8): always present.
    pub fn begin_string(&self) -> &'a [u8] {
        self.src.begin_string()
    }
}

accessors!(Header {
    msg_seq_num: u64 = 34,
    sender_comp_id: str = 49,
    target_comp_id: str = 56,
    on_behalf_of_comp_id: str = 115,
    deliver_to_comp_id: str = 128,
    sender_sub_id: str = 50,
    target_sub_id: str = 57,
    poss_dup_flag: bool = 43,
    poss_resend: bool = 97,
    sending_time: time = 52,
    orig_sending_time: time = 122,
    last_msg_seq_num_processed: u64 = 369,
});

entry_view!(
    /// One entry of NoPartyIDs (453): a party and its role.
    Party
);

accessors!(Party {
    party_id: str = 448,
    party_id_source: char = 447,
    party_role: int = 452,
    party_sub_ids: group<PartySubId> = 802,
});

impl Party<'_, '_> {
    /// Whether this party names a dealer: PartyRole 1 (executing firm) or 35 (liquidity
    /// provider); desks use either.
    pub fn names_dealer(&self) -> bool {
        matches!(
            self.party_role(),
            Some(party_role::EXECUTING_FIRM | party_role::LIQUIDITY_PROVIDER)
        )
    }
}

entry_view!(
    /// One entry of NoPartySubIDs (802).
    PartySubId
);

accessors!(PartySubId {
    party_sub_id: str = 523,
    party_sub_id_type: int = 803,
});

#[cfg(test)]
mod tests;
