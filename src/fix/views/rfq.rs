//! Views of the request-for-quote messages: QuoteRequest R, QuoteRequestReject AG, Quote S,
//! QuoteResponse AJ, QuoteStatusReport AI, QuoteCancel Z, and their group entries.
//!
//! Owns only the accessor tables, following the FIX 4.4 layouts: in R and AG the instrument,
//! order and price fields and the Parties block (NoPartyIDs 453) sit inside each
//! NoRelatedSym (146) entry; in S, AJ and AI they are top level. Deciding anything about an
//! RFQ is the engine's job, not this file's.

use super::*;

/// Fields a quote carries at top level in Quote, QuoteResponse and QuoteStatusReport.
macro_rules! quote_price_accessors {
    ($view:ident) => {
        accessors!($view {
            bid_px: decimal = 132,
            offer_px: decimal = 133,
            mkt_bid_px: decimal = 645,
            mkt_offer_px: decimal = 646,
            min_bid_size: decimal = 647,
            bid_size: decimal = 134,
            min_offer_size: decimal = 648,
            offer_size: decimal = 135,
            valid_until_time: time = 62,
            bid_spot_rate: decimal = 188,
            offer_spot_rate: decimal = 190,
            bid_forward_points: decimal = 189,
            offer_forward_points: decimal = 191,
            mid_px: decimal = 631,
            bid_yield: decimal = 632,
            mid_yield: decimal = 633,
            offer_yield: decimal = 634,
            transact_time: time = 60,
            ord_type: enumerated<OrdType> = 40,
            commission: decimal = 12,
            comm_type: char = 13,
            cust_order_capacity: int = 582,
            ex_destination: str = 100,
            text: str = 58,
            encoded_text_len: u64 = 354,
            encoded_text: str = 355,
        });
    };
}

/// Side, settlement, currency and account fields common to the quote messages.
macro_rules! quote_order_accessors {
    ($view:ident) => {
        order_qty_accessors!($view);
        accessors!($view {
            side: enumerated<Side> = 54,
            settl_type: enumerated<SettlType> = 63,
            settl_date: date = 64,
            settl_date2: date = 193,
            order_qty2: decimal = 192,
            currency: str = 15,
            account: str = 1,
            acct_id_source: int = 660,
            account_type: int = 581,
            trading_session_id: str = 336,
            trading_session_sub_id: str = 625,
        });
    };
}

message_view!(
    /// QuoteRequest (35=R): one entry per instrument asked (`related_syms`).
    QuoteRequest = b"R"
);

accessors!(QuoteRequest {
    quote_req_id: str = 131,
    rfq_req_id: str = 644,
    cl_ord_id: str = 11,
    order_capacity: char = 528,
    related_syms: group<RelatedSym> = 146,
    text: str = 58,
    encoded_text_len: u64 = 354,
    encoded_text: str = 355,
});

entry_view!(
    /// One entry of NoRelatedSym (146) in QuoteRequest or QuoteRequestReject: an
    /// instrument, the order and price terms asked, and its own Parties block.
    RelatedSym
);

instrument_accessors!(RelatedSym);
quote_order_accessors!(RelatedSym);
spread_yield_accessors!(RelatedSym);
accessors!(RelatedSym {
    prev_close_px: decimal = 140,
    quote_request_type: enumerated<QuoteRequestType> = 303,
    quote_type: enumerated<QuoteType> = 537,
    trade_origination_date: date = 229,
    qty_type: int = 854,
    quote_price_type: int = 692,
    ord_type: enumerated<OrdType> = 40,
    valid_until_time: time = 62,
    expire_time: time = 126,
    transact_time: time = 60,
    price_type: enumerated<PriceType> = 423,
    price: decimal = 44,
    price2: decimal = 640,
    parties: group<Party> = 453,
});

message_view!(
    /// QuoteRequestReject (35=AG).
    QuoteRequestReject = b"AG"
);

accessors!(QuoteRequestReject {
    quote_req_id: str = 131,
    rfq_req_id: str = 644,
    quote_request_reject_reason: enumerated<QuoteRequestRejectReason> = 658,
    related_syms: group<RelatedSym> = 146,
    text: str = 58,
    encoded_text_len: u64 = 354,
    encoded_text: str = 355,
});

message_view!(
    /// Quote (35=S).
    Quote = b"S"
);

instrument_accessors!(Quote);
quote_order_accessors!(Quote);
quote_price_accessors!(Quote);
spread_yield_accessors!(Quote);
accessors!(Quote {
    quote_req_id: str = 131,
    quote_id: str = 117,
    quote_resp_id: str = 693,
    quote_type: enumerated<QuoteType> = 537,
    quote_response_level: int = 301,
    parties: group<Party> = 453,
    order_capacity: char = 528,
    price_type: enumerated<PriceType> = 423,
});

message_view!(
    /// QuoteResponse (35=AJ): hit/lift, counter, pass, done away.
    QuoteResponse = b"AJ"
);

instrument_accessors!(QuoteResponse);
quote_order_accessors!(QuoteResponse);
quote_price_accessors!(QuoteResponse);
spread_yield_accessors!(QuoteResponse);
accessors!(QuoteResponse {
    quote_resp_id: str = 693,
    quote_id: str = 117,
    quote_resp_type: enumerated<QuoteRespType> = 694,
    cl_ord_id: str = 11,
    order_capacity: char = 528,
    ioi_id: str = 23,
    quote_type: enumerated<QuoteType> = 537,
    parties: group<Party> = 453,
    price: decimal = 44,
    price_type: enumerated<PriceType> = 423,
});

message_view!(
    /// QuoteStatusReport (35=AI).
    QuoteStatusReport = b"AI"
);

instrument_accessors!(QuoteStatusReport);
quote_order_accessors!(QuoteStatusReport);
quote_price_accessors!(QuoteStatusReport);
spread_yield_accessors!(QuoteStatusReport);
accessors!(QuoteStatusReport {
    quote_status_req_id: str = 649,
    quote_req_id: str = 131,
    quote_id: str = 117,
    quote_resp_id: str = 693,
    quote_type: enumerated<QuoteType> = 537,
    parties: group<Party> = 453,
    expire_time: time = 126,
    price: decimal = 44,
    price_type: enumerated<PriceType> = 423,
    quote_status: enumerated<QuoteStatus> = 297,
});

message_view!(
    /// QuoteCancel (35=Z).
    QuoteCancel = b"Z"
);

accessors!(QuoteCancel {
    quote_req_id: str = 131,
    quote_id: str = 117,
    quote_cancel_type: enumerated<QuoteCancelType> = 298,
    quote_response_level: int = 301,
    parties: group<Party> = 453,
    account: str = 1,
    acct_id_source: int = 660,
    account_type: int = 581,
    trading_session_id: str = 336,
    trading_session_sub_id: str = 625,
    quote_entries: group<QuoteCancelEntry> = 295,
});

entry_view!(
    /// One entry of QuoteCancel's NoQuoteEntries (295): an instrument whose quotes end.
    QuoteCancelEntry
);

instrument_accessors!(QuoteCancelEntry);
