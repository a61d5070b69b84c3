//! Fuzz target `decode_validate`: arbitrary bytes through the Framer, the Decoder, the
//! Validator and every typed view accessor.
//!
//! Owns nothing but the harness. Each input is used twice: as a raw byte stream (framing,
//! resynchronisation, size limits), and as a message body wrapped in a correct envelope
//! (BodyLength and CheckSum computed here) so that mutations reach the tokeniser, the
//! validator and the views without having to guess a checksum. Any panic, abort, overflow
//! or time-out is a bug. The accessor lists mirror `src/fix/views`: a new accessor there
//! should be added here.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rfq_router::fix::message::parse_u64;
use rfq_router::fix::validate::Validator;
use rfq_router::fix::views::*;
use rfq_router::fix::{Decimal, Decoder, FrameStatus, Framer, Message};
use std::hint::black_box;
use std::sync::OnceLock;

const MAX_MESSAGE_BYTES: usize = 64 * 1024;

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(Validator::fix44)
}

/// Calls each named accessor of a view and keeps its result alive.
macro_rules! touch {
    ($v:expr; $($accessor:ident),* $(,)?) => {
        $( black_box($v.$accessor()); )*
    };
}

fn touch_party(p: &Party<'_, '_>) {
    touch!(p;
        party_id, party_id_source, party_role,
    );
    black_box(p.names_dealer());
    black_box(format!("{p:?}"));
    for s in p.party_sub_ids() {
        touch!(s;
            party_sub_id, party_sub_id_type,
        );
        black_box(s.fields().count());
    }
}

fn touch_related_sym(e: &RelatedSym<'_, '_>) {
    touch!(e;
        symbol, symbol_sfx, security_id, security_id_source, product, cfi_code,
        security_type, security_sub_type, maturity_date, coupon_payment_date,
        issue_date, factor, credit_rating, country_of_issue, redemption_date,
        coupon_rate, security_exchange, issuer, security_desc, dated_date,
        interest_accrual_date, side, settl_type, settl_date, settl_date2, order_qty2,
        currency, account, acct_id_source, account_type, trading_session_id,
        trading_session_sub_id, order_qty, cash_order_qty, order_percent, spread,
        benchmark_curve_currency, benchmark_curve_name, benchmark_curve_point,
        benchmark_price, benchmark_price_type, benchmark_security_id,
        benchmark_security_id_source, yield_type, yield_value, yield_calc_date,
        prev_close_px, quote_request_type, quote_type, trade_origination_date, qty_type,
        quote_price_type, ord_type, valid_until_time, expire_time, transact_time,
        price_type, price, price2,
    );
    black_box(e.fields().count());
    black_box(format!("{e:?}"));
    e.parties().for_each(|p| touch_party(&p));
}

fn touch_views(m: &Message<'_>) {
    let h = Header::of(m);
    touch!(h;
        msg_seq_num, sender_comp_id, target_comp_id, on_behalf_of_comp_id,
        deliver_to_comp_id, sender_sub_id, target_sub_id, poss_dup_flag, poss_resend,
        sending_time, orig_sending_time, last_msg_seq_num_processed,
    );
    black_box((h.msg_type(), h.begin_string()));
    {
        if let Ok(v) = Logon::try_from(m) {
            touch!(v;
                encrypt_method, heart_bt_int_s, raw_data_length, raw_data,
                reset_seq_num_flag, next_expected_msg_seq_num, max_message_size,
                test_message_indicator, username, password,
            );
            black_box(v.header().msg_type());
            for t in v.msg_types() {
                touch!(t;
                    ref_msg_type, msg_direction,
                );
                black_box(format!("{t:?}"));
            }
        }
        if let Ok(v) = Heartbeat::try_from(m) {
            touch!(v;
                test_req_id,
            );
            black_box(v.header().msg_type());
        }
        if let Ok(v) = TestRequest::try_from(m) {
            touch!(v;
                test_req_id,
            );
            black_box(v.header().msg_type());
        }
        if let Ok(v) = ResendRequest::try_from(m) {
            touch!(v;
                begin_seq_no, end_seq_no,
            );
            black_box(v.header().msg_type());
        }
        if let Ok(v) = Reject::try_from(m) {
            touch!(v;
                ref_seq_num, ref_tag_id, ref_msg_type, session_reject_reason,
                text, encoded_text_len, encoded_text,
            );
            black_box(v.header().msg_type());
        }
        if let Ok(v) = SequenceReset::try_from(m) {
            touch!(v;
                gap_fill_flag, new_seq_no,
            );
            black_box(v.header().msg_type());
        }
        if let Ok(v) = Logout::try_from(m) {
            touch!(v;
                text, encoded_text_len, encoded_text,
            );
            black_box(v.header().msg_type());
        }
        if let Ok(v) = QuoteRequest::try_from(m) {
            touch!(v;
                quote_req_id, rfq_req_id, cl_ord_id, order_capacity, text,
                encoded_text_len, encoded_text,
            );
            black_box(v.header().msg_type());
            v.related_syms().for_each(|e| touch_related_sym(&e));
        }
        if let Ok(v) = QuoteRequestReject::try_from(m) {
            touch!(v;
                quote_req_id, rfq_req_id, quote_request_reject_reason, text,
                encoded_text_len, encoded_text,
            );
            black_box(v.header().msg_type());
            v.related_syms().for_each(|e| touch_related_sym(&e));
        }
        if let Ok(v) = Quote::try_from(m) {
            touch!(v;
                symbol, symbol_sfx, security_id, security_id_source, product,
                cfi_code, security_type, security_sub_type, maturity_date,
                coupon_payment_date, issue_date, factor, credit_rating,
                country_of_issue, redemption_date, coupon_rate,
                security_exchange, issuer, security_desc, dated_date,
                interest_accrual_date, side, settl_type, settl_date,
                settl_date2, order_qty2, currency, account, acct_id_source,
                account_type, trading_session_id, trading_session_sub_id,
                order_qty, cash_order_qty, order_percent, bid_px, offer_px,
                mkt_bid_px, mkt_offer_px, min_bid_size, bid_size,
                min_offer_size, offer_size, valid_until_time, bid_spot_rate,
                offer_spot_rate, bid_forward_points, offer_forward_points,
                mid_px, bid_yield, mid_yield, offer_yield, transact_time,
                ord_type, commission, comm_type, cust_order_capacity,
                ex_destination, text, encoded_text_len, encoded_text, spread,
                benchmark_curve_currency, benchmark_curve_name,
                benchmark_curve_point, benchmark_price, benchmark_price_type,
                benchmark_security_id, benchmark_security_id_source, yield_type,
                yield_value, yield_calc_date, quote_req_id, quote_id,
                quote_resp_id, quote_type, quote_response_level, order_capacity,
                price_type,
            );
            black_box(v.header().msg_type());
            v.parties().for_each(|p| touch_party(&p));
        }
        if let Ok(v) = QuoteResponse::try_from(m) {
            touch!(v;
                symbol, symbol_sfx, security_id, security_id_source, product,
                cfi_code, security_type, security_sub_type, maturity_date,
                coupon_payment_date, issue_date, factor, credit_rating,
                country_of_issue, redemption_date, coupon_rate,
                security_exchange, issuer, security_desc, dated_date,
                interest_accrual_date, side, settl_type, settl_date,
                settl_date2, order_qty2, currency, account, acct_id_source,
                account_type, trading_session_id, trading_session_sub_id,
                order_qty, cash_order_qty, order_percent, bid_px, offer_px,
                mkt_bid_px, mkt_offer_px, min_bid_size, bid_size,
                min_offer_size, offer_size, valid_until_time, bid_spot_rate,
                offer_spot_rate, bid_forward_points, offer_forward_points,
                mid_px, bid_yield, mid_yield, offer_yield, transact_time,
                ord_type, commission, comm_type, cust_order_capacity,
                ex_destination, text, encoded_text_len, encoded_text, spread,
                benchmark_curve_currency, benchmark_curve_name,
                benchmark_curve_point, benchmark_price, benchmark_price_type,
                benchmark_security_id, benchmark_security_id_source, yield_type,
                yield_value, yield_calc_date, quote_resp_id, quote_id,
                quote_resp_type, cl_ord_id, order_capacity, ioi_id, quote_type,
                price, price_type,
            );
            black_box(v.header().msg_type());
            v.parties().for_each(|p| touch_party(&p));
        }
        if let Ok(v) = QuoteStatusReport::try_from(m) {
            touch!(v;
                symbol, symbol_sfx, security_id, security_id_source, product,
                cfi_code, security_type, security_sub_type, maturity_date,
                coupon_payment_date, issue_date, factor, credit_rating,
                country_of_issue, redemption_date, coupon_rate,
                security_exchange, issuer, security_desc, dated_date,
                interest_accrual_date, side, settl_type, settl_date,
                settl_date2, order_qty2, currency, account, acct_id_source,
                account_type, trading_session_id, trading_session_sub_id,
                order_qty, cash_order_qty, order_percent, bid_px, offer_px,
                mkt_bid_px, mkt_offer_px, min_bid_size, bid_size,
                min_offer_size, offer_size, valid_until_time, bid_spot_rate,
                offer_spot_rate, bid_forward_points, offer_forward_points,
                mid_px, bid_yield, mid_yield, offer_yield, transact_time,
                ord_type, commission, comm_type, cust_order_capacity,
                ex_destination, text, encoded_text_len, encoded_text, spread,
                benchmark_curve_currency, benchmark_curve_name,
                benchmark_curve_point, benchmark_price, benchmark_price_type,
                benchmark_security_id, benchmark_security_id_source, yield_type,
                yield_value, yield_calc_date, quote_status_req_id, quote_req_id,
                quote_id, quote_resp_id, quote_type, expire_time, price,
                price_type, quote_status,
            );
            black_box(v.header().msg_type());
            v.parties().for_each(|p| touch_party(&p));
        }
        if let Ok(v) = QuoteCancel::try_from(m) {
            touch!(v;
                quote_req_id, quote_id, quote_cancel_type, quote_response_level,
                account, acct_id_source, account_type, trading_session_id,
                trading_session_sub_id,
            );
            black_box(v.header().msg_type());
            v.parties().for_each(|p| touch_party(&p));
            for e in v.quote_entries() {
                touch!(e;
                    symbol, symbol_sfx, security_id, security_id_source,
                    product, cfi_code, security_type, security_sub_type,
                    maturity_date, coupon_payment_date, issue_date, factor,
                    credit_rating, country_of_issue, redemption_date,
                    coupon_rate, security_exchange, issuer, security_desc,
                    dated_date, interest_accrual_date,
                );
                black_box(format!("{e:?}"));
            }
        }
        if let Ok(v) = NewOrderSingle::try_from(m) {
            touch!(v;
                symbol, symbol_sfx, security_id, security_id_source, product,
                cfi_code, security_type, security_sub_type, maturity_date,
                coupon_payment_date, issue_date, factor, credit_rating,
                country_of_issue, redemption_date, coupon_rate,
                security_exchange, issuer, security_desc, dated_date,
                interest_accrual_date, order_qty, cash_order_qty, order_percent,
                spread, benchmark_curve_currency, benchmark_curve_name,
                benchmark_curve_point, benchmark_price, benchmark_price_type,
                benchmark_security_id, benchmark_security_id_source, yield_type,
                yield_value, yield_calc_date, cl_ord_id, secondary_cl_ord_id,
                trade_origination_date, trade_date, account, acct_id_source,
                account_type, settl_type, settl_date, handl_inst, exec_inst,
                min_qty, ex_destination, prev_close_px, side, transact_time,
                qty_type, ord_type, price_type, price, stop_px, currency,
                compliance_id, ioi_id, quote_id, time_in_force, effective_time,
                expire_date, expire_time, order_capacity, text,
                encoded_text_len, encoded_text, settl_date2, order_qty2, price2,
            );
            black_box(v.header().msg_type());
            v.parties().for_each(|p| touch_party(&p));
        }
        if let Ok(v) = ExecutionReport::try_from(m) {
            touch!(v;
                symbol, symbol_sfx, security_id, security_id_source, product,
                cfi_code, security_type, security_sub_type, maturity_date,
                coupon_payment_date, issue_date, factor, credit_rating,
                country_of_issue, redemption_date, coupon_rate,
                security_exchange, issuer, security_desc, dated_date,
                interest_accrual_date, order_qty, cash_order_qty, order_percent,
                spread, benchmark_curve_currency, benchmark_curve_name,
                benchmark_curve_point, benchmark_price, benchmark_price_type,
                benchmark_security_id, benchmark_security_id_source, yield_type,
                yield_value, yield_calc_date, order_id, secondary_order_id,
                secondary_cl_ord_id, secondary_exec_id, cl_ord_id,
                orig_cl_ord_id, quote_resp_id, trade_origination_date, exec_id,
                exec_ref_id, exec_type, ord_status, ord_rej_reason,
                exec_restatement_reason, account, acct_id_source, account_type,
                settl_type, settl_date, side, qty_type, ord_type, price_type,
                price, stop_px, currency, time_in_force, expire_date,
                expire_time, order_capacity, last_qty, last_px, last_par_px,
                last_spot_rate, last_mkt, last_capacity, leaves_qty, cum_qty,
                avg_px, trade_date, transact_time, gross_trade_amt,
                num_days_interest, accrued_interest_rate, accrued_interest_amt,
                net_money, settl_curr_amt, settl_currency, text,
                encoded_text_len, encoded_text, settl_date2, order_qty2,
            );
            black_box(v.header().msg_type());
            v.parties().for_each(|p| touch_party(&p));
        }
        if let Ok(v) = Ioi::try_from(m) {
            touch!(v;
                symbol, symbol_sfx, security_id, security_id_source, product,
                cfi_code, security_type, security_sub_type, maturity_date,
                coupon_payment_date, issue_date, factor, credit_rating,
                country_of_issue, redemption_date, coupon_rate,
                security_exchange, issuer, security_desc, dated_date,
                interest_accrual_date, order_qty, cash_order_qty, order_percent,
                spread, benchmark_curve_currency, benchmark_curve_name,
                benchmark_curve_point, benchmark_price, benchmark_price_type,
                benchmark_security_id, benchmark_security_id_source, yield_type,
                yield_value, yield_calc_date, ioi_id, ioi_trans_type,
                ioi_ref_id, side, qty_type, ioi_qty, currency, price_type,
                price, valid_until_time, ioi_qlty_ind, ioi_natural_flag, text,
                encoded_text_len, encoded_text, transact_time, url_link,
            );
            black_box(v.header().msg_type());
        }
        if let Ok(v) = MarketDataSnapshotFullRefresh::try_from(m) {
            touch!(v;
                symbol, symbol_sfx, security_id, security_id_source, product,
                cfi_code, security_type, security_sub_type, maturity_date,
                coupon_payment_date, issue_date, factor, credit_rating,
                country_of_issue, redemption_date, coupon_rate,
                security_exchange, issuer, security_desc, dated_date,
                interest_accrual_date, md_req_id, financial_status,
                corporate_action, net_chg_prev_day, appl_queue_depth,
                appl_queue_resolution,
            );
            black_box(v.header().msg_type());
            for e in v.md_entries() {
                touch!(e;
                    md_entry_type, md_entry_px, currency, md_entry_size,
                    md_entry_date, md_entry_time, tick_direction, md_mkt,
                    trading_session_id, quote_condition, trade_condition,
                    md_entry_originator, location_id, desk_id,
                    time_in_force, expire_date, expire_time, min_qty,
                    number_of_orders, md_entry_position_no, text,
                );
                black_box(format!("{e:?}"));
            }
        }
    }
}

/// Every typed parser on every value: what each accessor does after its lookup.
fn parse_every_value(m: &Message<'_>) {
    for f in m.iter() {
        let v = f.value;
        black_box((
            Decimal::parse(v).map(|d| (d.to_f64(), d.normalized(), d.rescale(2), d.to_string())),
            parse_i64(v),
            parse_u64(v),
            parse_char(v),
            parse_bool(v),
            parse_date(v),
            parse_timestamp(v),
        ));
        black_box((
            Side::from_fix(v),
            SecurityIdSource::from_fix(v),
            OrdType::from_fix(v),
            OrdStatus::from_fix(v),
            ExecType::from_fix(v),
            TimeInForce::from_fix(v),
            SettlType::from_fix(v),
            IoiTransType::from_fix(v),
            IoiQltyInd::from_fix(v),
            MdEntryType::from_fix(v),
            MsgDirection::from_fix(v),
        ));
        black_box((
            QuoteRespType::from_fix(v),
            QuoteType::from_fix(v),
            QuoteRequestType::from_fix(v),
            QuoteCancelType::from_fix(v),
            QuoteStatus::from_fix(v),
            QuoteRequestRejectReason::from_fix(v),
            PriceType::from_fix(v),
            EncryptMethod::from_fix(v),
        ));
    }
}

/// Frames, tokenises, validates and reads everything in `bytes`, as a session would.
fn consume(bytes: &[u8]) {
    let framer = Framer::new(MAX_MESSAGE_BYTES);
    let mut decoder = Decoder::new(1024);
    let mut at = 0;
    while at < bytes.len() {
        match framer.next_frame(&bytes[at..]) {
            FrameStatus::Frame { len } => {
                assert!(
                    len > 0 && at + len <= bytes.len(),
                    "frame inside the buffer"
                );
                if let Ok(mut m) = decoder.decode(&bytes[at..at + len]) {
                    let verdict = validator().validate(&mut m);
                    black_box(verdict.is_ok());
                    touch_views(&m);
                    parse_every_value(&m);
                }
                at += len;
            }
            FrameStatus::Garbled { skip } => {
                assert!(skip > 0, "the framer must make progress");
                at += skip;
            }
            FrameStatus::Incomplete | FrameStatus::TooLarge { .. } => break,
        }
    }
}

/// `body` (from MsgType on) in a FIX.4.4 envelope with the right BodyLength and CheckSum.
fn envelope(body: &[u8]) -> Vec<u8> {
    let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
    out.extend_from_slice(body);
    let sum = out.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

fuzz_target!(|data: &[u8]| {
    consume(data);
    if data.len() < MAX_MESSAGE_BYTES - 64 {
        consume(&envelope(data));
    }
});
