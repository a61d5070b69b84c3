//! FIX 4.4 tag numbers the router reads or writes, as plain `u32` constants.
//!
//! Owns nothing but names for numbers, taken from the FIX 4.4 specification; it must not grow
//! logic. The full dictionary (types, enums, layouts) comes from fefix at start-up (`dict`).
#![allow(missing_docs)]

// Standard header and trailer.
pub const BEGIN_STRING: u32 = 8;
pub const BODY_LENGTH: u32 = 9;
pub const CHECK_SUM: u32 = 10;
pub const MSG_TYPE: u32 = 35;
pub const MSG_SEQ_NUM: u32 = 34;
pub const SENDER_COMP_ID: u32 = 49;
pub const TARGET_COMP_ID: u32 = 56;
pub const SENDING_TIME: u32 = 52;
pub const POSS_DUP_FLAG: u32 = 43;
pub const POSS_RESEND: u32 = 97;
pub const ORIG_SENDING_TIME: u32 = 122;
pub const ON_BEHALF_OF_COMP_ID: u32 = 115;
pub const DELIVER_TO_COMP_ID: u32 = 128;
pub const SENDER_SUB_ID: u32 = 50;
pub const TARGET_SUB_ID: u32 = 57;
pub const LAST_MSG_SEQ_NUM_PROCESSED: u32 = 369;

// Session-level message bodies.
pub const ENCRYPT_METHOD: u32 = 98;
pub const HEART_BT_INT: u32 = 108;
pub const RESET_SEQ_NUM_FLAG: u32 = 141;
pub const NEXT_EXPECTED_MSG_SEQ_NUM: u32 = 789;
pub const TEST_REQ_ID: u32 = 112;
pub const BEGIN_SEQ_NO: u32 = 7;
pub const END_SEQ_NO: u32 = 16;
pub const NEW_SEQ_NO: u32 = 36;
pub const GAP_FILL_FLAG: u32 = 123;
pub const REF_SEQ_NUM: u32 = 45;
pub const REF_TAG_ID: u32 = 371;
pub const REF_MSG_TYPE: u32 = 372;
pub const SESSION_REJECT_REASON: u32 = 373;
pub const TEXT: u32 = 58;
pub const USERNAME: u32 = 553;
pub const PASSWORD: u32 = 554;

// Application fields used by the RFQ flow.
pub const ACCOUNT: u32 = 1;
pub const AVG_PX: u32 = 6;
pub const CL_ORD_ID: u32 = 11;
pub const CUM_QTY: u32 = 14;
pub const CURRENCY: u32 = 15;
pub const EXEC_ID: u32 = 17;
pub const SECURITY_ID_SOURCE: u32 = 22;
pub const IOI_ID: u32 = 23;
pub const IOI_QLTY_IND: u32 = 25;
pub const IOI_QTY: u32 = 27;
pub const IOI_TRANS_TYPE: u32 = 28;
pub const LAST_PX: u32 = 31;
pub const LAST_QTY: u32 = 32;
pub const ORDER_ID: u32 = 37;
pub const ORIG_CL_ORD_ID: u32 = 41;
pub const ORDER_QTY: u32 = 38;
pub const ORD_STATUS: u32 = 39;
pub const ORD_TYPE: u32 = 40;
pub const PRICE: u32 = 44;
pub const SECURITY_ID: u32 = 48;
pub const SIDE: u32 = 54;
pub const SYMBOL: u32 = 55;
pub const TIME_IN_FORCE: u32 = 59;
pub const TRANSACT_TIME: u32 = 60;
pub const VALID_UNTIL_TIME: u32 = 62;
pub const SETTL_DATE: u32 = 64;
pub const EXPIRE_TIME: u32 = 126;
pub const QUOTE_ID: u32 = 117;
pub const QUOTE_REQ_ID: u32 = 131;
pub const BID_PX: u32 = 132;
pub const OFFER_PX: u32 = 133;
pub const BID_SIZE: u32 = 134;
pub const OFFER_SIZE: u32 = 135;
pub const NO_RELATED_SYM: u32 = 146;
pub const EXEC_TYPE: u32 = 150;
pub const LEAVES_QTY: u32 = 151;
pub const SECURITY_TYPE: u32 = 167;
pub const MATURITY_DATE: u32 = 541;
pub const COUPON_RATE: u32 = 223;
pub const NO_MD_ENTRIES: u32 = 268;
pub const MD_ENTRY_TYPE: u32 = 269;
pub const MD_ENTRY_PX: u32 = 270;
pub const MD_ENTRY_SIZE: u32 = 271;
pub const QUOTE_CANCEL_TYPE: u32 = 298;
pub const QUOTE_STATUS: u32 = 297;
pub const QUOTE_REQUEST_TYPE: u32 = 303;
pub const ISSUER: u32 = 106;
pub const NO_PARTY_IDS: u32 = 453;
pub const PARTY_ID: u32 = 448;
pub const PARTY_ID_SOURCE: u32 = 447;
pub const PARTY_ROLE: u32 = 452;
pub const NO_PARTY_SUB_IDS: u32 = 802;
pub const QUOTE_REQUEST_REJECT_REASON: u32 = 658;
pub const QUOTE_RESP_ID: u32 = 693;
pub const QUOTE_RESP_TYPE: u32 = 694;
pub const QUOTE_TYPE: u32 = 537;
pub const PRICE_TYPE: u32 = 423;
pub const MID_PX: u32 = 631;
pub const QUOTE_STATUS_REQ_ID: u32 = 649;
pub const NO_QUOTE_ENTRIES: u32 = 295;
