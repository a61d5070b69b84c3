//! Views of the session-level (admin) messages: Logon A, Heartbeat 0, TestRequest 1,
//! ResendRequest 2, Reject 3, SequenceReset 4, Logout 5.
//!
//! Owns only the accessor tables of these messages (FIX 4.4 layouts). What the fields mean
//! for the session (sequence checks, heartbeats) is the session state machine's business,
//! not this file's.

use super::*;

message_view!(
    /// Logon (35=A).
    Logon = b"A"
);

accessors!(Logon {
    encrypt_method: enumerated<EncryptMethod> = 98,
    heart_bt_int_s: u64 = 108,
    raw_data_length: u64 = 95,
    raw_data: str = 96,
    reset_seq_num_flag: bool = 141,
    next_expected_msg_seq_num: u64 = 789,
    max_message_size: u64 = 383,
    msg_types: group<LogonMsgType> = 384,
    test_message_indicator: bool = 464,
    username: str = 553,
    password: str = 554,
});

entry_view!(
    /// One entry of Logon's NoMsgTypes (384).
    LogonMsgType
);

accessors!(LogonMsgType {
    ref_msg_type: str = 372,
    msg_direction: enumerated<MsgDirection> = 385,
});

message_view!(
    /// Heartbeat (35=0).
    Heartbeat = b"0"
);

accessors!(Heartbeat {
    test_req_id: str = 112,
});

message_view!(
    /// TestRequest (35=1).
    TestRequest = b"1"
);

accessors!(TestRequest {
    test_req_id: str = 112,
});

message_view!(
    /// ResendRequest (35=2). EndSeqNo 0 means "up to the latest".
    ResendRequest = b"2"
);

accessors!(ResendRequest {
    begin_seq_no: u64 = 7,
    end_seq_no: u64 = 16,
});

message_view!(
    /// Reject (35=3), session-level.
    Reject = b"3"
);

accessors!(Reject {
    ref_seq_num: u64 = 45,
    ref_tag_id: u64 = 371,
    ref_msg_type: str = 372,
    session_reject_reason: int = 373,
    text: str = 58,
    encoded_text_len: u64 = 354,
    encoded_text: str = 355,
});

message_view!(
    /// SequenceReset (35=4): GapFill when GapFillFlag is `Y`, Reset otherwise.
    SequenceReset = b"4"
);

accessors!(SequenceReset {
    gap_fill_flag: bool = 123,
    new_seq_no: u64 = 36,
});

impl SequenceReset<'_, '_> {
    /// GapFillFlag (123) is `Y`.
    pub fn is_gap_fill(&self) -> bool {
        self.gap_fill_flag() == Some(true)
    }
}

message_view!(
    /// Logout (35=5).
    Logout = b"5"
);

accessors!(Logout {
    text: str = 58,
    encoded_text_len: u64 = 354,
    encoded_text: str = 355,
});
