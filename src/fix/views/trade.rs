//! Views of the order, execution, interest and market-data messages: NewOrderSingle D,
//! ExecutionReport 8, IOI 6, MarketDataSnapshotFullRefresh W (NoMDEntries 268).
//!
//! Owns only the accessor tables of these messages (FIX 4.4 layouts). What an execution or
//! a mid means for scoring is the engine's and the scorer's business, not this file's.

use super::*;

message_view!(
    /// NewOrderSingle (35=D); on a quote it carries QuoteID (117).
    NewOrderSingle = b"D"
);

instrument_accessors!(NewOrderSingle);
order_qty_accessors!(NewOrderSingle);
spread_yield_accessors!(NewOrderSingle);
accessors!(NewOrderSingle {
    cl_ord_id: str = 11,
    secondary_cl_ord_id: str = 526,
    parties: group<Party> = 453,
    trade_origination_date: date = 229,
    trade_date: date = 75,
    account: str = 1,
    acct_id_source: int = 660,
    account_type: int = 581,
    settl_type: enumerated<SettlType> = 63,
    settl_date: date = 64,
    handl_inst: char = 21,
    exec_inst: str = 18,
    min_qty: decimal = 110,
    ex_destination: str = 100,
    prev_close_px: decimal = 140,
    side: enumerated<Side> = 54,
    transact_time: time = 60,
    qty_type: int = 854,
    ord_type: enumerated<OrdType> = 40,
    price_type: enumerated<PriceType> = 423,
    price: decimal = 44,
    stop_px: decimal = 99,
    currency: str = 15,
    compliance_id: str = 376,
    ioi_id: str = 23,
    quote_id: str = 117,
    time_in_force: enumerated<TimeInForce> = 59,
    effective_time: time = 168,
    expire_date: date = 432,
    expire_time: time = 126,
    order_capacity: char = 528,
    text: str = 58,
    encoded_text_len: u64 = 354,
    encoded_text: str = 355,
    settl_date2: date = 193,
    order_qty2: decimal = 192,
    price2: decimal = 640,
});

message_view!(
    /// ExecutionReport (35=8).
    ExecutionReport = b"8"
);

instrument_accessors!(ExecutionReport);
order_qty_accessors!(ExecutionReport);
spread_yield_accessors!(ExecutionReport);
accessors!(ExecutionReport {
    order_id: str = 37,
    secondary_order_id: str = 198,
    secondary_cl_ord_id: str = 526,
    secondary_exec_id: str = 527,
    cl_ord_id: str = 11,
    orig_cl_ord_id: str = 41,
    quote_resp_id: str = 693,
    parties: group<Party> = 453,
    trade_origination_date: date = 229,
    exec_id: str = 17,
    exec_ref_id: str = 19,
    exec_type: enumerated<ExecType> = 150,
    ord_status: enumerated<OrdStatus> = 39,
    ord_rej_reason: int = 103,
    exec_restatement_reason: int = 378,
    account: str = 1,
    acct_id_source: int = 660,
    account_type: int = 581,
    settl_type: enumerated<SettlType> = 63,
    settl_date: date = 64,
    side: enumerated<Side> = 54,
    qty_type: int = 854,
    ord_type: enumerated<OrdType> = 40,
    price_type: enumerated<PriceType> = 423,
    price: decimal = 44,
    stop_px: decimal = 99,
    currency: str = 15,
    time_in_force: enumerated<TimeInForce> = 59,
    expire_date: date = 432,
    expire_time: time = 126,
    order_capacity: char = 528,
    last_qty: decimal = 32,
    last_px: decimal = 31,
    last_par_px: decimal = 669,
    last_spot_rate: decimal = 194,
    last_mkt: str = 30,
    last_capacity: char = 29,
    leaves_qty: decimal = 151,
    cum_qty: decimal = 14,
    avg_px: decimal = 6,
    trade_date: date = 75,
    transact_time: time = 60,
    gross_trade_amt: decimal = 381,
    num_days_interest: int = 157,
    accrued_interest_rate: decimal = 158,
    accrued_interest_amt: decimal = 159,
    net_money: decimal = 118,
    settl_curr_amt: decimal = 119,
    settl_currency: str = 120,
    text: str = 58,
    encoded_text_len: u64 = 354,
    encoded_text: str = 355,
    settl_date2: date = 193,
    order_qty2: decimal = 192,
});

message_view!(
    /// IOI (35=6): a dealer's axe.
    Ioi = b"6"
);

instrument_accessors!(Ioi);
order_qty_accessors!(Ioi);
spread_yield_accessors!(Ioi);
accessors!(Ioi {
    ioi_id: str = 23,
    ioi_trans_type: enumerated<IoiTransType> = 28,
    ioi_ref_id: str = 26,
    side: enumerated<Side> = 54,
    qty_type: int = 854,
    ioi_qty: str = 27,
    currency: str = 15,
    price_type: enumerated<PriceType> = 423,
    price: decimal = 44,
    valid_until_time: time = 62,
    ioi_qlty_ind: enumerated<IoiQltyInd> = 25,
    ioi_natural_flag: bool = 130,
    text: str = 58,
    encoded_text_len: u64 = 354,
    encoded_text: str = 355,
    transact_time: time = 60,
    url_link: str = 149,
});

message_view!(
    /// MarketDataSnapshotFullRefresh (35=W): the entries (`md_entries`) carry the prices.
    MarketDataSnapshotFullRefresh = b"W"
);

instrument_accessors!(MarketDataSnapshotFullRefresh);
accessors!(MarketDataSnapshotFullRefresh {
    md_req_id: str = 262,
    financial_status: str = 291,
    corporate_action: str = 292,
    net_chg_prev_day: decimal = 451,
    md_entries: group<MdEntry> = 268,
    appl_queue_depth: int = 813,
    appl_queue_resolution: int = 814,
});

entry_view!(
    /// One entry of NoMDEntries (268): a bid, offer, trade or other price point.
    MdEntry
);

accessors!(MdEntry {
    md_entry_type: enumerated<MdEntryType> = 269,
    md_entry_px: decimal = 270,
    currency: str = 15,
    md_entry_size: decimal = 271,
    md_entry_date: date = 272,
    md_entry_time: str = 273,
    tick_direction: char = 274,
    md_mkt: str = 275,
    trading_session_id: str = 336,
    quote_condition: str = 276,
    trade_condition: str = 277,
    md_entry_originator: str = 282,
    location_id: str = 283,
    desk_id: str = 284,
    time_in_force: enumerated<TimeInForce> = 59,
    expire_date: date = 432,
    expire_time: time = 126,
    min_qty: decimal = 110,
    number_of_orders: int = 346,
    md_entry_position_no: int = 290,
    text: str = 58,
});
