//! FIX 4.4 enumerated field values the router reads and writes, as Rust enums.
//!
//! Owns the value <-> wire-text mapping of each listed field (`Side::from_fix(b"1")`,
//! `Side::Buy.as_fix()`), for char/string-coded and integer-coded enumerations, with the
//! values of the FIX 4.4 specification. `from_fix` is `None` for text that is not a listed
//! value. Fields with a large, open-ended domain (PartyRole) are integers with named
//! constants instead. No logic beyond the mapping belongs here.

use super::parse_i64;

/// Declares an enumeration whose values are compared as wire text (`bytes`) or as integers
/// (`int`, so `05` reads as `5`), with `TAG`, `from_fix` and `as_fix`.
macro_rules! fix_enum {
    ($(#[$meta:meta])* $name:ident = $tag:literal as bytes {
        $($variant:ident = $text:literal),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            /// The field's tag.
            pub const TAG: u32 = $tag;

            /// Every listed value, in specification order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The value for wire text `v`, if it is one of the listed values.
            pub fn from_fix(v: &[u8]) -> Option<Self> {
                match v {
                    $($text => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The wire text of this value.
            pub fn as_fix(self) -> &'static [u8] {
                match self {
                    $(Self::$variant => $text),*
                }
            }
        }
    };
    ($(#[$meta:meta])* $name:ident = $tag:literal as int {
        $($variant:ident = $value:literal),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            /// The field's tag.
            pub const TAG: u32 = $tag;

            /// Every listed value, in specification order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The value for wire text `v` (an integer, leading zeros allowed), if listed.
            pub fn from_fix(v: &[u8]) -> Option<Self> {
                match parse_i64(v)? {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The integer value.
            pub fn value(self) -> i64 {
                match self {
                    $(Self::$variant => $value),*
                }
            }

            /// The wire text of this value.
            pub fn as_fix(self) -> &'static [u8] {
                match self {
                    $(Self::$variant => stringify!($value).as_bytes()),*
                }
            }
        }
    };
}

fix_enum!(
    /// Side (54).
    Side = 54 as bytes {
        Buy = b"1",
        Sell = b"2",
        BuyMinus = b"3",
        SellPlus = b"4",
        SellShort = b"5",
        SellShortExempt = b"6",
        Undisclosed = b"7",
        Cross = b"8",
        CrossShort = b"9",
        CrossShortExempt = b"A",
        AsDefined = b"B",
        Opposite = b"C",
        Subscribe = b"D",
        Redeem = b"E",
        Lend = b"F",
        Borrow = b"G",
    }
);

fix_enum!(
    /// SecurityIDSource (22).
    SecurityIdSource = 22 as bytes {
        Cusip = b"1",
        Sedol = b"2",
        Quik = b"3",
        Isin = b"4",
        Ric = b"5",
        IsoCurrency = b"6",
        IsoCountry = b"7",
        ExchangeSymbol = b"8",
        ConsolidatedTapeAssociation = b"9",
        Bloomberg = b"A",
        Wertpapier = b"B",
        Dutch = b"C",
        Valoren = b"D",
        Sicovam = b"E",
        Belgian = b"F",
        Common = b"G",
        ClearingHouse = b"H",
        IsdaFpmlSpecification = b"I",
        OptionPriceReportingAuthority = b"J",
    }
);

fix_enum!(
    /// OrdType (40).
    OrdType = 40 as bytes {
        Market = b"1",
        Limit = b"2",
        Stop = b"3",
        StopLimit = b"4",
        WithOrWithout = b"6",
        LimitOrBetter = b"7",
        LimitWithOrWithout = b"8",
        OnBasis = b"9",
        PreviouslyQuoted = b"D",
        PreviouslyIndicated = b"E",
        ForexSwap = b"G",
        Funari = b"I",
        MarketIfTouched = b"J",
        MarketWithLeftOverAsLimit = b"K",
        PreviousFundValuationPoint = b"L",
        NextFundValuationPoint = b"M",
        Pegged = b"P",
    }
);

fix_enum!(
    /// OrdStatus (39).
    OrdStatus = 39 as bytes {
        New = b"0",
        PartiallyFilled = b"1",
        Filled = b"2",
        DoneForDay = b"3",
        Canceled = b"4",
        PendingCancel = b"6",
        Stopped = b"7",
        Rejected = b"8",
        Suspended = b"9",
        PendingNew = b"A",
        Calculated = b"B",
        Expired = b"C",
        AcceptedForBidding = b"D",
        PendingReplace = b"E",
    }
);

fix_enum!(
    /// ExecType (150).
    ExecType = 150 as bytes {
        New = b"0",
        DoneForDay = b"3",
        Canceled = b"4",
        Replaced = b"5",
        PendingCancel = b"6",
        Stopped = b"7",
        Rejected = b"8",
        Suspended = b"9",
        PendingNew = b"A",
        Calculated = b"B",
        Expired = b"C",
        Restated = b"D",
        PendingReplace = b"E",
        Trade = b"F",
        TradeCorrect = b"G",
        TradeCancel = b"H",
        OrderStatus = b"I",
    }
);

fix_enum!(
    /// TimeInForce (59).
    TimeInForce = 59 as bytes {
        Day = b"0",
        GoodTillCancel = b"1",
        AtTheOpening = b"2",
        ImmediateOrCancel = b"3",
        FillOrKill = b"4",
        GoodTillCrossing = b"5",
        GoodTillDate = b"6",
        AtTheClose = b"7",
    }
);

fix_enum!(
    /// SettlType (63).
    SettlType = 63 as bytes {
        Regular = b"0",
        Cash = b"1",
        NextDay = b"2",
        TPlus2 = b"3",
        TPlus3 = b"4",
        TPlus4 = b"5",
        Future = b"6",
        WhenAndIfIssued = b"7",
        SellersOption = b"8",
        TPlus5 = b"9",
    }
);

fix_enum!(
    /// IOITransType (28).
    IoiTransType = 28 as bytes {
        New = b"N",
        Cancel = b"C",
        Replace = b"R",
    }
);

fix_enum!(
    /// IOIQltyInd (25).
    IoiQltyInd = 25 as bytes {
        Low = b"L",
        Medium = b"M",
        High = b"H",
    }
);

fix_enum!(
    /// MDEntryType (269).
    MdEntryType = 269 as bytes {
        Bid = b"0",
        Offer = b"1",
        Trade = b"2",
        IndexValue = b"3",
        OpeningPrice = b"4",
        ClosingPrice = b"5",
        SettlementPrice = b"6",
        TradingSessionHighPrice = b"7",
        TradingSessionLowPrice = b"8",
        TradingSessionVwapPrice = b"9",
        Imbalance = b"A",
        TradeVolume = b"B",
        OpenInterest = b"C",
    }
);

fix_enum!(
    /// MsgDirection (385), in Logon's NoMsgTypes entries.
    MsgDirection = 385 as bytes {
        Send = b"S",
        Receive = b"R",
    }
);

fix_enum!(
    /// QuoteRespType (694): 1 hit/lift, 5 done away, 6 pass are the router's.
    QuoteRespType = 694 as int {
        HitLift = 1,
        Counter = 2,
        Expired = 3,
        Cover = 4,
        DoneAway = 5,
        Pass = 6,
    }
);

fix_enum!(
    /// QuoteType (537).
    QuoteType = 537 as int {
        Indicative = 0,
        Tradeable = 1,
        RestrictedTradeable = 2,
        Counter = 3,
    }
);

fix_enum!(
    /// QuoteRequestType (303).
    QuoteRequestType = 303 as int {
        Manual = 1,
        Automatic = 2,
    }
);

fix_enum!(
    /// QuoteCancelType (298).
    QuoteCancelType = 298 as int {
        CancelForSecurities = 1,
        CancelForSecurityType = 2,
        CancelForUnderlyingSecurity = 3,
        CancelAllQuotes = 4,
    }
);

fix_enum!(
    /// QuoteStatus (297).
    QuoteStatus = 297 as int {
        Accepted = 0,
        CancelForSymbol = 1,
        CanceledForSecurityType = 2,
        CanceledForUnderlying = 3,
        CanceledAll = 4,
        Rejected = 5,
        RemovedFromMarket = 6,
        Expired = 7,
        Query = 8,
        QuoteNotFound = 9,
        Pending = 10,
        Pass = 11,
        LockedMarketWarning = 12,
        CrossMarketWarning = 13,
        CanceledDueToLockMarket = 14,
        CanceledDueToCrossMarket = 15,
    }
);

fix_enum!(
    /// QuoteRequestRejectReason (658).
    QuoteRequestRejectReason = 658 as int {
        UnknownSymbol = 1,
        Exchange = 2,
        QuoteRequestExceedsLimit = 3,
        TooLateToEnter = 4,
        InvalidPrice = 5,
        NotAuthorizedToRequestQuote = 6,
        NoMatchForInquiry = 7,
        NoMarketForInstrument = 8,
        NoInventory = 9,
        Pass = 10,
        Other = 99,
    }
);

fix_enum!(
    /// PriceType (423).
    PriceType = 423 as int {
        Percentage = 1,
        PerUnit = 2,
        FixedAmount = 3,
        Discount = 4,
        Premium = 5,
        Spread = 6,
        TedPrice = 7,
        TedYield = 8,
        Yield = 9,
        FixedCabinetTradePrice = 10,
        VariableCabinetTradePrice = 11,
    }
);

fix_enum!(
    /// EncryptMethod (98); sessions here accept only `None`.
    EncryptMethod = 98 as int {
        None = 0,
        Pkcs = 1,
        Des = 2,
        PkcsDes = 3,
        PgpDes = 4,
        PgpDesMd5 = 5,
        Pem = 6,
    }
);

/// PartyRole (452) values the router names (the domain has dozens; the accessor is `i64`).
pub mod party_role {
    pub const EXECUTING_FIRM: i64 = 1;
    pub const CLIENT_ID: i64 = 3;
    pub const INVESTOR_ID: i64 = 5;
    pub const ENTERING_FIRM: i64 = 7;
    pub const ORDER_ORIGINATION_TRADER: i64 = 11;
    pub const EXECUTING_TRADER: i64 = 12;
    pub const ORDER_ORIGINATION_FIRM: i64 = 13;
    pub const CONTRA_FIRM: i64 = 17;
    pub const CUSTOMER_ACCOUNT: i64 = 24;
    pub const LIQUIDITY_PROVIDER: i64 = 35;
    pub const ENTERING_TRADER: i64 = 36;
}
