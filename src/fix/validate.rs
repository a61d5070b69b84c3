//! Validation of a tokenised message against the FIX 4.4 dictionary.
//!
//! Owns the session-level acceptance rules a counterparty's message must meet (required
//! fields, tags defined for the message type, enum values, data formats, repeating-group
//! counts and member order, header/body/trailer order, repeated tags) and the
//! SessionRejectReason (373) and RefTagID (371) each breach maps to. It also annotates each
//! field with its repeating-group scope, which the typed views read. Lookup tables are built
//! once from fefix's `Dictionary::fix44()`; validating never allocates. It must not decide
//! what to do about a breach: the session state machine does.
//!
//! INTERFACE SKELETON: the types are final; the rules are being written on the `validate`
//! branch (issue 2) and this body is replaced there.

use super::message::Message;

/// SessionRejectReason (373) values, FIX 4.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SessionRejectReason {
    InvalidTagNumber = 0,
    RequiredTagMissing = 1,
    TagNotDefinedForMsgType = 2,
    UndefinedTag = 3,
    TagSpecifiedWithoutValue = 4,
    ValueIncorrect = 5,
    IncorrectDataFormat = 6,
    DecryptionProblem = 7,
    SignatureProblem = 8,
    CompIdProblem = 9,
    SendingTimeAccuracyProblem = 10,
    InvalidMsgType = 11,
    XmlValidationError = 12,
    TagAppearsMoreThanOnce = 13,
    TagSpecifiedOutOfRequiredOrder = 14,
    RepeatingGroupFieldsOutOfOrder = 15,
    IncorrectNumInGroupCount = 16,
    NonDataValueIncludesFieldDelimiter = 17,
    Other = 99,
}

/// One breach of the rules: what to put in the Reject (35=3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub reason: SessionRejectReason,
    /// RefTagID (371) as a number, when the offending tag is a valid number.
    pub ref_tag: Option<u32>,
    /// Index of the offending field in the message's field list, when there is one; its tag
    /// text as received is what RefTagID carries for an invalid tag number such as `-1`.
    pub ref_field: Option<usize>,
    /// Text (58), in QuickFIX's wording where QuickFIX has one.
    pub text: &'static str,
}

/// Validation rules derived from the FIX 4.4 dictionary.
#[derive(Debug)]
pub struct Validator {
    _tables: (),
}

impl Validator {
    /// Builds the lookup tables from fefix's embedded FIX 4.4 dictionary (a few ms: once).
    pub fn fix44() -> Validator {
        Validator { _tables: () }
    }

    /// Checks `msg` and annotates its group scopes. The first breach found is returned.
    pub fn validate(&self, _msg: &mut Message<'_>) -> Result<(), Violation> {
        Ok(())
    }
}
