//! Validation of a tokenised message against the FIX 4.4 dictionary.
//!
//! Owns the session-level acceptance rules a counterparty's message must meet (required
//! fields, tags defined for the message type, enum values, data formats, repeating-group
//! counts and member order, header/body/trailer order, repeated tags) and the
//! SessionRejectReason (373) and RefTagID (371) each breach maps to. It also annotates each
//! field with its repeating-group scope, which the typed views read. Lookup tables come from
//! `dict` (built once from fefix's `Dictionary::fix44()`); validating is one pass over the
//! field index and never allocates. It must not decide what to do about a breach: the session
//! state machine does.
//!
//! Behaviour follows QuickFIX's acceptance scripts (`14a`..`14j`, `15`, `21`, `2q`, `2r`,
//! `QFJ934`, `ReverseRoute*`, `RejectResentMessage`). When a message has several breaches,
//! the one reported is chosen as QuickFIX does, by level, then by position:
//! 1. structure, first in wire order: a header field after the body or a body field after
//!    the trailer (14), a repeating-group member out of layout order or before its entry's
//!    delimiter (15), a tag repeated outside a group (13);
//! 2. a MsgType the dictionary does not define (11);
//! 3. a required field missing (1): header, then body, then trailer, each in ascending tag
//!    order; then required members of group entries, in wire order;
//! 4. per field, first in wire order, checked in this order: no value (4), data format (6),
//!    enum value (5), tag number (0), tag not defined for the message type (2), and on a
//!    NumInGroup field, its count against the entries that follow (16).
//!
//! QuickFIX reports a tag the dictionary does not define as "Invalid tag number" (0), which
//! script 14a expects for 999 and 5000 alike; so UndefinedTag (3) is never produced here.
//! Checking that MsgSeqNum (34) is present, and what BeginString says, is the session's job
//! before it calls `validate` (QuickFIX/J's QFJ650 logs out on a missing MsgSeqNum).

use std::sync::Arc;

use super::dict::{
    FieldInfo, Fix44Dict, ScopeId, ValueFormat, MAX_GROUP_DEPTH, NO_SCOPE, TAG_LIMIT,
    USER_DEFINED_MIN,
};
use super::message::{parse_u64, FieldRef, Message, NO_GROUP};
use crate::time::{is_date_only, is_utc_time_only};

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

impl SessionRejectReason {
    /// The value carried in SessionRejectReason (373).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// QuickFIX/C++'s Text (58) for this reason.
    pub fn text(self) -> &'static str {
        match self {
            SessionRejectReason::InvalidTagNumber => "Invalid tag number",
            SessionRejectReason::RequiredTagMissing => "Required tag missing",
            SessionRejectReason::TagNotDefinedForMsgType => "Tag not defined for this message type",
            SessionRejectReason::UndefinedTag => "Undefined Tag",
            SessionRejectReason::TagSpecifiedWithoutValue => "Tag specified without a value",
            SessionRejectReason::ValueIncorrect => "Value is incorrect (out of range) for this tag",
            SessionRejectReason::IncorrectDataFormat => "Incorrect data format for value",
            SessionRejectReason::DecryptionProblem => "Decryption problem",
            SessionRejectReason::SignatureProblem => "Signature problem",
            SessionRejectReason::CompIdProblem => "CompID problem",
            SessionRejectReason::SendingTimeAccuracyProblem => "SendingTime accuracy problem",
            SessionRejectReason::InvalidMsgType => "Invalid MsgType",
            SessionRejectReason::XmlValidationError => "XML Validation error",
            SessionRejectReason::TagAppearsMoreThanOnce => "Tag appears more than once",
            SessionRejectReason::TagSpecifiedOutOfRequiredOrder => {
                "Tag specified out of required order"
            }
            SessionRejectReason::RepeatingGroupFieldsOutOfOrder => {
                "Repeating group fields out of order"
            }
            SessionRejectReason::IncorrectNumInGroupCount => {
                "Incorrect NumInGroup count for repeating group"
            }
            SessionRejectReason::NonDataValueIncludesFieldDelimiter => {
                "Non Data value includes field delimiter (SOH character)"
            }
            SessionRejectReason::Other => "Other",
        }
    }
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

impl Violation {
    fn new(reason: SessionRejectReason, ref_tag: Option<u32>, ref_field: Option<usize>) -> Self {
        Violation {
            reason,
            ref_tag,
            ref_field,
            text: reason.text(),
        }
    }

    /// A breach by the field at `index` whose tag is `tag` (0: not a valid tag number).
    fn at(reason: SessionRejectReason, tag: u32, index: usize) -> Self {
        Violation::new(reason, (tag != 0).then_some(tag), Some(index))
    }
}

/// QuickFIX-style switches. `Default` gives QuickFIX's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationOptions {
    /// `ValidateUserDefinedFields`: tags >= 5000 the dictionary does not define are
    /// rejected as invalid tag numbers. Default on.
    pub validate_user_defined_fields: bool,
    /// `AllowUnknownMsgFields`: tags below 5000 that the dictionary does not define, or does
    /// not define for this message type, are accepted. Default off.
    pub allow_unknown_msg_fields: bool,
    /// `ValidateFieldsOutOfOrder`: header, body, trailer must come in that order. Default on.
    pub validate_fields_out_of_order: bool,
    /// `ValidateFieldsHaveValues`: an empty value is rejected. When off, empty values are
    /// also exempt from format and enum checks. Default on.
    pub validate_fields_have_values: bool,
    /// `ValidateUnorderedGroupFields` (QuickFIX/J): members of a group entry must follow the
    /// dictionary's order. Default on. A member before its entry's delimiter is always a breach.
    pub validate_unordered_group_fields: bool,
    /// Put RefTagID 35 on an invalid-MsgType breach, as QuickFIX/J does (its script 2q
    /// expects `371=35`); QuickFIX/C++ sends none. Default off.
    pub ref_tag_on_invalid_msg_type: bool,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        ValidationOptions {
            validate_user_defined_fields: true,
            allow_unknown_msg_fields: false,
            validate_fields_out_of_order: true,
            validate_fields_have_values: true,
            validate_unordered_group_fields: true,
            ref_tag_on_invalid_msg_type: false,
        }
    }
}

impl ValidationOptions {
    /// QuickFIX/C++'s behaviour (the defaults).
    pub fn quickfix() -> Self {
        Self::default()
    }

    /// QuickFIX/J's behaviour where it differs from QuickFIX/C++'s.
    pub fn quickfix_j() -> Self {
        ValidationOptions {
            ref_tag_on_invalid_msg_type: true,
            ..Self::default()
        }
    }
}

/// Validation rules derived from the FIX 4.4 dictionary. Cheap to clone: the tables are
/// shared.
#[derive(Debug, Clone)]
pub struct Validator {
    dict: Arc<Fix44Dict>,
    options: ValidationOptions,
}

/// Which part of the message the top-level fields have reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Header,
    Body,
    Trailer,
}

/// Bits for member positions of one group entry.
const ENTRY_WORDS: usize = super::dict::MAX_GROUP_MEMBERS / 64;

/// A repeating group being read.
#[derive(Debug, Clone, Copy)]
struct OpenGroup {
    scope: ScopeId,
    count_index: u16,
    count_tag: u32,
    declared: Option<u64>,
    entries: u64,
    in_entry: bool,
    prev_pos: usize,
    seen: [u64; ENTRY_WORDS],
}

const CLOSED: OpenGroup = OpenGroup {
    scope: NO_SCOPE,
    count_index: 0,
    count_tag: 0,
    declared: None,
    entries: 0,
    in_entry: false,
    prev_pos: 0,
    seen: [0; ENTRY_WORDS],
};

/// The first breach found at each level (see the module doc).
#[derive(Default)]
struct Found {
    structure: Option<Violation>,
    group_required: Option<Violation>,
    field: Option<Violation>,
}

impl Found {
    fn structure(&mut self, v: Violation) {
        self.structure.get_or_insert(v);
    }

    /// Keeps the breach of the earliest field.
    fn field(&mut self, v: Violation) {
        let earlier = match (self.field, v.ref_field) {
            (None, _) => true,
            (Some(old), Some(new)) => old.ref_field.is_some_and(|o| new < o),
            (Some(_), None) => false,
        };
        if earlier {
            self.field = Some(v);
        }
    }
}

impl Default for Validator {
    fn default() -> Self {
        Validator::fix44()
    }
}

impl Validator {
    /// The FIX 4.4 rules with QuickFIX's default options. The tables are built on the first
    /// call in the process (a few ms) and shared after that.
    pub fn fix44() -> Validator {
        Validator::with_options(ValidationOptions::default())
    }

    /// The FIX 4.4 rules with the given options.
    pub fn with_options(options: ValidationOptions) -> Validator {
        Validator {
            dict: Fix44Dict::shared(),
            options,
        }
    }

    pub fn options(&self) -> &ValidationOptions {
        &self.options
    }

    /// The tables the rules read.
    pub fn dict(&self) -> &Fix44Dict {
        &self.dict
    }

    /// Whether the FIX 4.4 dictionary defines `msg_type`.
    ///
    /// This is how a caller tells the two MsgType problems apart: a type the dictionary does
    /// not define (`35=*`) fails `validate` with `InvalidMsgType` (11), a session-level
    /// Reject. A type it defines but the application does not handle (an ExecutionReport
    /// sent to a router that takes none, script 2r) passes `validate` when well formed, and
    /// the application answers it with a BusinessMessageReject (35=j, BusinessRejectReason
    /// 380=3 "Unsupported Message Type"): not this module's business.
    pub fn is_known_msg_type(&self, msg_type: &[u8]) -> bool {
        self.dict.msg_type_id(msg_type).is_some()
    }

    /// Checks `msg` and annotates its group scopes (`FieldRef::depth` and `group`). The
    /// breach reported when there are several is chosen as the module doc says. Never
    /// allocates, never panics.
    pub fn validate(&self, msg: &mut Message<'_>) -> Result<(), Violation> {
        let d = &*self.dict;
        let o = &self.options;
        let frame = msg.frame();
        let fields = msg.field_refs_mut();
        let value = |r: &FieldRef| value_in(frame, r);

        let msg_type = fields.get(2).map(value).unwrap_or(&[]);
        let body = d.msg_type_id(msg_type).map(|id| d.body(id));

        let mut found = Found::default();
        let mut top_seen = [0u64; TAG_LIMIT as usize / 64];
        let mut stack = [CLOSED; MAX_GROUP_DEPTH];
        let mut depth = 0usize;
        let mut section = Section::Header;

        for (i, field) in fields.iter_mut().enumerate() {
            let tag = field.tag;
            let val = value(field);

            // Find the innermost open group this field belongs to, closing the others.
            let mut member = None;
            while depth > 0 {
                let g = &mut stack[depth - 1];
                if let Some((pos, group)) = d.slot(g.scope, tag) {
                    if pos == 0 || !g.in_entry {
                        if pos != 0 {
                            found.structure(Violation::at(
                                SessionRejectReason::RepeatingGroupFieldsOutOfOrder,
                                tag,
                                i,
                            ));
                        }
                        if g.in_entry {
                            self.close_entry(g, &mut found);
                        }
                        g.entries += 1;
                        g.in_entry = true;
                        g.seen = [0; ENTRY_WORDS];
                    } else if pos <= g.prev_pos && o.validate_unordered_group_fields {
                        found.structure(Violation::at(
                            SessionRejectReason::RepeatingGroupFieldsOutOfOrder,
                            tag,
                            i,
                        ));
                    }
                    g.prev_pos = pos;
                    if let Some(w) = g.seen.get_mut(pos / 64) {
                        *w |= 1 << (pos % 64);
                    }
                    member = Some((group, g.count_index));
                    break;
                }
                self.close_group(g, &mut found);
                depth -= 1;
            }

            let info = d.field(tag);
            let nested = match member {
                Some((group, count_index)) => {
                    field.depth = depth as u8;
                    field.group = count_index;
                    group
                }
                None => {
                    field.depth = 0;
                    field.group = NO_GROUP;
                    let in_header = info.is_some_and(|f| f.in_header);
                    let in_trailer = info.is_some_and(|f| f.in_trailer);
                    let out_of_order = if in_header {
                        section != Section::Header
                    } else if in_trailer {
                        section = Section::Trailer;
                        false
                    } else {
                        let late = section == Section::Trailer;
                        section = Section::Body;
                        late
                    };
                    if out_of_order && o.validate_fields_out_of_order {
                        found.structure(Violation::at(
                            SessionRejectReason::TagSpecifiedOutOfRequiredOrder,
                            tag,
                            i,
                        ));
                    }
                    if tag != 0 && tag < TAG_LIMIT {
                        let (w, bit) = (tag as usize / 64, 1u64 << (tag % 64));
                        if top_seen[w] & bit != 0 {
                            found.structure(Violation::at(
                                SessionRejectReason::TagAppearsMoreThanOnce,
                                tag,
                                i,
                            ));
                        }
                        top_seen[w] |= bit;
                    }
                    let scope = if in_header {
                        Some(d.header())
                    } else if in_trailer {
                        Some(d.trailer())
                    } else {
                        body
                    };
                    let m = scope.and_then(|s| d.slot(s, tag)).map(|(_, group)| group);
                    if found.field.is_none() && info.is_some() && m.is_none() && body.is_some() {
                        // Defined, but not for this message type (header and trailer fields
                        // are always members of their scope).
                        if !(o.allow_unknown_msg_fields && tag < USER_DEFINED_MIN) {
                            self.check_value(tag, info, i, val, &mut found);
                            found.field(Violation::at(
                                SessionRejectReason::TagNotDefinedForMsgType,
                                tag,
                                i,
                            ));
                        }
                    }
                    m.unwrap_or(NO_SCOPE)
                }
            };

            if found.field.is_none() {
                self.check_value(tag, info, i, val, &mut found);
            }

            if nested != NO_SCOPE && depth < MAX_GROUP_DEPTH {
                stack[depth] = OpenGroup {
                    scope: nested,
                    count_index: i as u16,
                    count_tag: tag,
                    declared: parse_u64(val),
                    ..CLOSED
                };
                depth += 1;
            }
        }
        while depth > 0 {
            self.close_group(&mut stack[depth - 1], &mut found);
            depth -= 1;
        }

        if let Some(v) = found.structure {
            return Err(v);
        }
        let Some(body) = body else {
            let ref_tag = o
                .ref_tag_on_invalid_msg_type
                .then_some(super::tags::MSG_TYPE);
            return Err(Violation::new(
                SessionRejectReason::InvalidMsgType,
                ref_tag,
                Some(2),
            ));
        };
        for scope in [d.header(), body, d.trailer()] {
            for &tag in d.required(scope) {
                if top_seen[tag as usize / 64] & (1 << (tag % 64)) == 0 {
                    return Err(Violation::new(
                        SessionRejectReason::RequiredTagMissing,
                        Some(u32::from(tag)),
                        None,
                    ));
                }
            }
        }
        if let Some(v) = found.group_required.or(found.field) {
            return Err(v);
        }
        Ok(())
    }

    /// The per-field checks of level 4 that depend on the value: presence, format, enum, and
    /// whether the tag number is one the dictionary (or the options) accept.
    #[inline(always)]
    fn check_value(
        &self,
        tag: u32,
        info: Option<&FieldInfo>,
        index: usize,
        val: &[u8],
        found: &mut Found,
    ) {
        // Most fields are free text, a count or a one-byte code: decided here, in line.
        if let (Some(f), [first, ..]) = (info, val) {
            if f.plain
                || (val.len() == 1 && *first < 128 && f.quick_bytes & (1 << *first) != 0)
                || (f.quick_digits && val.len() <= 18 && val.iter().all(u8::is_ascii_digit))
            {
                return;
            }
        }
        self.check_value_in_full(tag, info, index, val, found);
    }

    /// `check_value` for the fields whose value has a syntax, an enum or none at all.
    #[inline(never)]
    fn check_value_in_full(
        &self,
        tag: u32,
        info: Option<&FieldInfo>,
        index: usize,
        val: &[u8],
        found: &mut Found,
    ) {
        let o = &self.options;
        if val.is_empty() {
            if o.validate_fields_have_values {
                found.field(Violation::at(
                    SessionRejectReason::TagSpecifiedWithoutValue,
                    tag,
                    index,
                ));
                return;
            }
        } else if let Some(info) = info {
            if !format_ok(info.format, val) {
                found.field(Violation::at(
                    SessionRejectReason::IncorrectDataFormat,
                    tag,
                    index,
                ));
                return;
            }
            if !self.dict.value_allowed(info, val) {
                found.field(Violation::at(
                    SessionRejectReason::ValueIncorrect,
                    tag,
                    index,
                ));
                return;
            }
        }
        if info.is_none() {
            let reject = if tag == 0 {
                true
            } else if tag >= USER_DEFINED_MIN {
                o.validate_user_defined_fields
            } else {
                !o.allow_unknown_msg_fields
            };
            if reject {
                found.field(Violation::at(
                    SessionRejectReason::InvalidTagNumber,
                    tag,
                    index,
                ));
            }
        }
    }

    /// Ends the current entry of `g`: its required members must have been seen.
    fn close_entry(&self, g: &OpenGroup, found: &mut Found) {
        if found.group_required.is_some() {
            return;
        }
        for &tag in self.dict.required(g.scope) {
            let seen = self
                .dict
                .slot(g.scope, u32::from(tag))
                .is_some_and(|(pos, _)| {
                    g.seen
                        .get(pos / 64)
                        .is_some_and(|w| w & (1 << (pos % 64)) != 0)
                });
            if !seen {
                found.group_required = Some(Violation::new(
                    SessionRejectReason::RequiredTagMissing,
                    Some(u32::from(tag)),
                    None,
                ));
                return;
            }
        }
    }

    /// Ends group `g`: last entry's required members, and the declared count.
    fn close_group(&self, g: &mut OpenGroup, found: &mut Found) {
        if g.in_entry {
            self.close_entry(g, found);
            g.in_entry = false;
        }
        if g.declared.is_some_and(|n| n != g.entries) {
            found.field(Violation::at(
                SessionRejectReason::IncorrectNumInGroupCount,
                g.count_tag,
                usize::from(g.count_index),
            ));
        }
    }
}

/// The value of `r` in `frame` (empty if the index does not fit the frame, which the decoder
/// never produces).
#[inline]
fn value_in<'f>(frame: &'f [u8], r: &FieldRef) -> &'f [u8] {
    let s = r.value_at();
    frame.get(s..s + r.value_len as usize).unwrap_or(&[])
}

fn all_digits(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(u8::is_ascii_digit)
}

/// Whether `v` (not empty) has the syntax of `format`.
fn format_ok(format: ValueFormat, v: &[u8]) -> bool {
    match format {
        ValueFormat::Text | ValueFormat::Data | ValueFormat::MultipleValue => true,
        ValueFormat::Char => v.len() == 1,
        ValueFormat::Boolean => v == b"Y" || v == b"N",
        ValueFormat::Int => {
            let digits = v.strip_prefix(b"-").unwrap_or(v);
            all_digits(digits) && digits.len() <= 18
        }
        ValueFormat::UInt => all_digits(v) && v.len() <= 18,
        ValueFormat::Float => {
            let body = v.strip_prefix(b"-").unwrap_or(v);
            let mut digits = 0usize;
            let mut dot = false;
            for &b in body {
                if b.is_ascii_digit() {
                    digits += 1;
                } else if b == b'.' && !dot {
                    dot = true;
                } else {
                    return false;
                }
            }
            digits > 0
        }
        ValueFormat::UtcTimestamp => utc_timestamp_ok(v),
        ValueFormat::UtcTimeOnly => is_utc_time_only(v),
        ValueFormat::Date => is_date_only(v),
        ValueFormat::MonthYear => month_year_ok(v),
    }
}

/// `YYYYMMDD-HH:MM:SS` with an optional `.` and 3, 6 or 9 digits (syntax and ranges only:
/// any year 0000-9999 is well formed).
fn utc_timestamp_ok(v: &[u8]) -> bool {
    if v.len() < 17 || v[8] != b'-' || !is_date_only(&v[..8]) || !is_utc_time_only(&v[9..17]) {
        return false;
    }
    match &v[17..] {
        [] => true,
        [b'.', frac @ ..] => matches!(frac.len(), 3 | 6 | 9) && all_digits(frac),
        _ => false,
    }
}

/// `YYYYMM`, `YYYYMMDD` or `YYYYMMwN` (N = 1..5).
fn month_year_ok(v: &[u8]) -> bool {
    if v.len() < 6 || !all_digits(&v[..6]) {
        return false;
    }
    let month = (v[4] - b'0') * 10 + (v[5] - b'0');
    if !(1..=12).contains(&month) {
        return false;
    }
    match &v[6..] {
        [] => true,
        [b'w', n] => (b'1'..=b'5').contains(n),
        [d0, d1] if d0.is_ascii_digit() && d1.is_ascii_digit() => {
            (1..=31).contains(&((d0 - b'0') * 10 + (d1 - b'0')))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::SessionRejectReason as R;
    use super::*;
    use crate::fix::frame::tests::frame;
    use crate::fix::message::Decoder;

    const T: &str = "20240102-03:04:05.678";

    /// A header after MsgType; `35=x|` must lead the body given to `msg`.
    fn hdr() -> String {
        format!("34=2|49=TW44|52={T}|56=ISLD|")
    }

    fn msg(msg_type: &str, body: &str) -> String {
        format!("35={msg_type}|{}{body}", hdr())
    }

    fn check_with(v: &Validator, body: &str) -> Result<(), Violation> {
        let f = frame(body);
        let mut d = Decoder::new(512);
        let mut m = d.decode(&f).expect("test frames tokenise");
        v.validate(&mut m)
    }

    fn check(body: &str) -> Result<(), Violation> {
        check_with(&Validator::fix44(), body)
    }

    /// The breach as (reason, RefTagID text as it would be sent).
    fn breach(body: &str) -> (R, Option<String>) {
        breach_with(&Validator::fix44(), body)
    }

    fn breach_with(v: &Validator, body: &str) -> (R, Option<String>) {
        let f = frame(body);
        let mut d = Decoder::new(512);
        let mut m = d.decode(&f).expect("test frames tokenise");
        let e = v.validate(&mut m).expect_err("expected a breach");
        assert_eq!(e.text, e.reason.text());
        let ref_text = match (e.ref_tag, e.ref_field) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(i)) if e.reason == R::InvalidTagNumber => {
                let r = m.field_refs()[i];
                Some(String::from_utf8_lossy(m.tag_text_of(&r)).into_owned())
            }
            _ => None,
        };
        (e.reason, ref_text)
    }

    fn is(reason: R, tag: &str) -> (R, Option<String>) {
        (reason, Some(tag.to_string()))
    }

    fn nos(extra: &str) -> String {
        msg(
            "D",
            &format!("11=ID|21=1|40=1|54=1|38=200.00|55=INTC|60={T}|{extra}"),
        )
    }

    #[test]
    fn valid_messages_pass() {
        check(&msg("0", "")).unwrap();
        check(&msg("1", "112=HELLO|")).unwrap();
        check(&msg("A", "98=0|108=30|141=Y|")).unwrap();
        check(&nos("")).unwrap();
        check(&nos("167=CS|110=9|")).unwrap();
        // 15: header and body fields in another order
        check(&format!(
            "35=D|49=TW44|34=3|56=ISLD|52={T}|40=1|55=MSFT|60={T}|54=1|21=3|11=id|"
        ))
        .unwrap();
        // 2r: a valid ExecutionReport passes; that the router takes none is the app's call
        check(&msg(
            "8",
            "37=id|17=id|150=0|39=0|55=WLRI|54=1|151=100|14=0|6=0.0|",
        ))
        .unwrap();
        // 21: a NumInGroup of zero with no entries
        check(&msg(
            "d",
            "320=JCD1091-20021011|322=1034356488676|323=6|55=TBS|22=8|167=CS|336=ONE_MAIN|\
             58=No Products found for this Class Symbol|454=0|",
        ))
        .unwrap();
        // a one-leg RFQ with a dealer panel, and a Quote
        check(&msg(
            "R",
            "131=RFQ1|146=1|55=[N/A]|48=US912828XX00|22=4|167=CORP|54=1|38=1000000|\
             453=2|448=DLR1|447=D|452=1|448=DLR2|447=D|452=35|58=hi|",
        ))
        .unwrap();
        check(&msg(
            "S",
            &format!(
                "131=RFQ1|117=Q1|55=[N/A]|48=US912828XX00|22=4|132=99.5|133=99.75|\
                 134=1000000|135=1000000|62={T}|"
            ),
        ))
        .unwrap();
        // header group NoHops, and a user-defined tag when those are not validated
        check(&msg("0", "").replace("56=ISLD|", &format!("56=ISLD|627=1|628=HOP|629={T}|")))
            .unwrap();
        let lax = Validator::with_options(ValidationOptions {
            validate_user_defined_fields: false,
            ..ValidationOptions::default()
        });
        check_with(&lax, &msg("0", "5000=HI|")).unwrap();
    }

    #[test]
    fn invalid_tag_numbers_14a() {
        assert_eq!(breach(&msg("0", "999=HI|")), is(R::InvalidTagNumber, "999"));
        assert_eq!(breach(&msg("0", "0=HI|")), is(R::InvalidTagNumber, "0"));
        assert_eq!(breach(&msg("0", "-1=HI|")), is(R::InvalidTagNumber, "-1"));
        assert_eq!(
            breach(&msg("0", "5000=HI|")),
            is(R::InvalidTagNumber, "5000")
        );
        assert_eq!(breach(&msg("0", "12a=HI|")), is(R::InvalidTagNumber, "12a"));
        let e = check(&msg("0", "-1=HI|")).unwrap_err();
        assert_eq!((e.ref_tag, e.ref_field), (None, Some(7)));
        assert_eq!(e.text, "Invalid tag number");
        let lax = Validator::with_options(ValidationOptions {
            allow_unknown_msg_fields: true,
            ..ValidationOptions::default()
        });
        check_with(&lax, &msg("0", "999=HI|55=MSFT|")).unwrap();
        assert_eq!(
            breach_with(&lax, &msg("0", "5000=HI|")).0,
            R::InvalidTagNumber
        );
    }

    #[test]
    fn required_tag_missing_14b() {
        let e = check(&format!("35=0|34=2|49=TW44|52={T}|")).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.ref_field, e.text),
            (
                R::RequiredTagMissing,
                Some(56),
                None,
                "Required tag missing"
            )
        );
        // ClOrdID and Symbol both missing: the lower tag first, as QuickFIX/C++ does
        let f = format!("35=D|49=TW44|34=3|56=ISLD|52={T}|40=1|60={T}|54=1|21=3|");
        assert_eq!(breach(&f), is(R::RequiredTagMissing, "11"));
        // QuickFIX/J's variant: only Symbol missing
        let f = format!("35=D|49=TW|34=3|56=ISLD|52={T}|40=1|60={T}|54=1|21=3|11=id|");
        assert_eq!(breach(&f), is(R::RequiredTagMissing, "55"));
        // the repeating group of a QuoteRequest is required
        assert_eq!(
            breach(&msg("R", "131=X|")),
            is(R::RequiredTagMissing, "146")
        );
        // a required member of a group entry (NoSides: ClOrdID)
        let cross = msg(
            "s",
            &format!("548=C1|549=1|550=0|552=1|54=1|55=IBM|60={T}|40=1|"),
        );
        assert_eq!(breach(&cross), is(R::RequiredTagMissing, "11"));
        let cross = cross.replace("552=1|54=1|", "552=1|54=1|11=A|");
        check(&cross).unwrap();
    }

    #[test]
    fn tag_not_defined_for_msg_type_14c() {
        assert_eq!(
            breach(&msg("0", "55=MSFT|")),
            is(R::TagNotDefinedForMsgType, "55")
        );
        // a group member outside its group
        assert_eq!(
            breach(&nos("336=X|")),
            is(R::TagNotDefinedForMsgType, "336")
        );
    }

    #[test]
    fn tag_without_value_14d_and_reverse_route() {
        let e = check(&format!("35=0|34=2|49=TW44|52={T}|56=|")).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.text),
            (
                R::TagSpecifiedWithoutValue,
                Some(56),
                "Tag specified without a value"
            )
        );
        let f = format!("35=D|34=7|49=TW44|52={T}|56=ISLD|128=JCD|129=CS|145=|11=ID|21=3|38=100|40=w|54=1|55=INTC|60={T}|");
        assert_eq!(breach(&f), is(R::TagSpecifiedWithoutValue, "145"));
        let f = format!(
            "35=D|34=2|49=TW44|52={T}|56=ISLD|115=JCD|11=ID|21=3|38=100|40=w|54=1|55=INTC|60={T}|"
        );
        assert_eq!(breach(&f), is(R::ValueIncorrect, "40"));
    }

    #[test]
    fn value_incorrect_14e() {
        let f = msg(
            "D",
            &format!("11=ID|21=4|40=1|54=1|38=002000.00|55=INTC|60={T}|"),
        );
        let e = check(&f).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.text),
            (
                R::ValueIncorrect,
                Some(21),
                "Value is incorrect (out of range) for this tag"
            )
        );
        assert_eq!(breach(&nos("167=BOO|")), is(R::ValueIncorrect, "167"));
        assert_eq!(breach(&nos("18=1 !|")), is(R::ValueIncorrect, "18"));
        check(&nos("18=1 A|")).unwrap();
        assert_eq!(
            breach(&msg("0", "").replace("52=", "43=X|52=")),
            is(R::IncorrectDataFormat, "43")
        );
    }

    #[test]
    fn incorrect_data_format_14f() {
        let e = check(&nos("").replace("38=200.00", "38=+200.00")).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.text),
            (
                R::IncorrectDataFormat,
                Some(38),
                "Incorrect data format for value"
            )
        );
        assert_eq!(
            breach(&nos("126=20040415|")),
            is(R::IncorrectDataFormat, "126")
        );
        for (field, ok) in [
            ("152=1.", true),
            ("152=.5", true),
            ("152=-0.5", true),
            ("152=.", false),
            ("152=1.2.3", false),
            ("152=1e5", false),
            ("110=-1", true),
            ("110=1-", false),
            ("126=20240102-23:59:60", true),
            ("126=20241302-00:00:00", false),
            ("126=99991231-23:59:59.123456789", true),
            ("126=20240102-03:04:05.1234", false),
            ("126=20240102-03:04:05.", false),
            ("64=20240229", true),
            ("64=2024022", false),
            ("200=202403", true),
            ("200=202403w2", true),
            ("200=20240331", true),
            ("200=202413", false),
            ("200=202403w9", false),
            ("168=12:00:00", false),
        ] {
            let r = check(&nos(&format!("{field}|")));
            assert_eq!(r.is_ok(), ok, "{field}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.reason, R::IncorrectDataFormat, "{field}");
            }
        }
        // MsgSeqNum and NumInGroup are never negative
        assert_eq!(
            breach(&msg("0", "").replace("34=2", "34=-2")),
            is(R::IncorrectDataFormat, "34")
        );
        assert_eq!(breach(&nos("386=x|")), is(R::IncorrectDataFormat, "386"));
    }

    #[test]
    fn out_of_required_order_14g() {
        let f = format!("35=D|11=id|21=3|40=1|54=1|55=MSFT|60={T}|34=2|49=TW44|52={T}|56=ISLD|");
        let e = check(&f).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.text),
            (
                R::TagSpecifiedOutOfRequiredOrder,
                Some(34),
                "Tag specified out of required order"
            )
        );
        let f = format!("35=D|55=MSFT|34=3|49=TW44|52={T}|56=ISLD|11=id|21=3|40=1|54=1|60={T}|");
        assert_eq!(breach(&f), is(R::TagSpecifiedOutOfRequiredOrder, "34"));
        // a body field after the trailer's signature
        assert_eq!(
            breach(&nos("93=2|89=ab|58=late|")),
            is(R::TagSpecifiedOutOfRequiredOrder, "58")
        );
        let lax = Validator::with_options(ValidationOptions {
            validate_fields_out_of_order: false,
            ..ValidationOptions::default()
        });
        check_with(&lax, &f).unwrap();
    }

    #[test]
    fn repeated_tag_14h() {
        let f = msg(
            "D",
            &format!("11=ID|21=1|40=1|40=2|54=1|38=200.00|55=INTC|60={T}|"),
        );
        let e = check(&f).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.text),
            (
                R::TagAppearsMoreThanOnce,
                Some(40),
                "Tag appears more than once"
            )
        );
        let f = msg(
            "D",
            &format!("11=ID|21=1|40=1|54=1|40=2|38=200.00|55=INTC|60={T}|"),
        );
        assert_eq!(breach(&f), is(R::TagAppearsMoreThanOnce, "40"));
        assert_eq!(
            breach(&msg("0", "").replace("49=TW44|", "49=TW44|49=TW44|")),
            is(R::TagAppearsMoreThanOnce, "49")
        );
    }

    #[test]
    fn num_in_group_count_14i_and_21() {
        let f = nos("386=3|336=PRE-OPEN|336=AFTER-HOURS|");
        let e = check(&f).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.text),
            (
                R::IncorrectNumInGroupCount,
                Some(386),
                "Incorrect NumInGroup count for repeating group"
            )
        );
        check(&nos("386=2|336=PRE-OPEN|336=AFTER-HOURS|")).unwrap();
        check(&nos("386=0|")).unwrap();
        assert_eq!(
            breach(&nos("386=0|336=PRE-OPEN|")),
            is(R::IncorrectNumInGroupCount, "386")
        );
        assert_eq!(
            breach(&nos("386=1|336=A|336=B|625=1|")),
            is(R::IncorrectNumInGroupCount, "386")
        );
    }

    #[test]
    fn group_members_out_of_order_14j_and_qfj934() {
        let f = nos("78=2|79=acct1|80=50|661=1|79=acct2|80=150|661=1|");
        let e = check(&f).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.text),
            (
                R::RepeatingGroupFieldsOutOfOrder,
                Some(661),
                "Repeating group fields out of order"
            )
        );
        // as the QuickFIX/J script sends it: 661=X is also a bad INT, but order comes first
        assert_eq!(
            breach(&nos("78=2|79=acct1|80=50|661=X|79=acct2|80=150|661=X|")),
            is(R::RepeatingGroupFieldsOutOfOrder, "661")
        );
        check(&nos("78=2|79=acct1|661=1|80=50|79=acct2|661=1|80=150|")).unwrap();
        let lax = Validator::with_options(ValidationOptions {
            validate_unordered_group_fields: false,
            ..ValidationOptions::default()
        });
        check_with(&lax, &f).unwrap();
        // QFJ934: a nested group before the entry's delimiter (Symbol)
        let email = msg(
            "C",
            "164=thread-id|94=0|147=subject|146=1|864=1|865=1|33=1|58=test|354=1|355=1|",
        );
        let e = check(&email).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag),
            (R::RepeatingGroupFieldsOutOfOrder, Some(864))
        );
        check(&email.replace("146=1|864", "146=1|55=X|864")).unwrap();
    }

    #[test]
    fn invalid_msg_type_2q() {
        let e = check(&msg("*", "")).unwrap_err();
        assert_eq!(
            (e.reason, e.ref_tag, e.text),
            (R::InvalidMsgType, None, "Invalid MsgType")
        );
        let qfj = Validator::with_options(ValidationOptions::quickfix_j());
        assert_eq!(
            check_with(&qfj, &msg("*", "")).unwrap_err().ref_tag,
            Some(35)
        );
        assert_eq!(breach(&msg("", "")).0, R::InvalidMsgType);
        let v = Validator::fix44();
        assert!(!v.is_known_msg_type(b"*"));
        assert!(v.is_known_msg_type(b"8") && v.is_known_msg_type(b"AJ"));
    }

    #[test]
    fn breaches_are_ranked_as_quickfix_ranks_them() {
        // structure before everything: out of order beats a missing field and a bad value
        let f = format!("35=D|40=w|34=2|49=TW44|52={T}|56=ISLD|");
        assert_eq!(breach(&f), is(R::TagSpecifiedOutOfRequiredOrder, "34"));
        // invalid MsgType before required fields
        assert_eq!(
            breach(&format!("35=*|34=2|49=TW44|52={T}|")).0,
            R::InvalidMsgType
        );
        // required fields before per-field checks
        let f = format!("35=D|34=2|49=TW44|52={T}|56=ISLD|21=4|40=1|54=1|55=X|60={T}|");
        assert_eq!(breach(&f), is(R::RequiredTagMissing, "11"));
        // per field: first in wire order, and the count of an earlier group wins
        assert_eq!(
            breach(&nos("386=3|336=A|999=x|")),
            is(R::IncorrectNumInGroupCount, "386")
        );
        assert_eq!(
            breach(&nos("999=x|167=BOO|")),
            is(R::InvalidTagNumber, "999")
        );
        // within a field: no value, then format, then tag number
        assert_eq!(
            breach(&msg("0", "55=|")),
            is(R::TagSpecifiedWithoutValue, "55")
        );
        assert_eq!(breach(&msg("0", "54=Z|")), is(R::ValueIncorrect, "54"));
    }

    #[test]
    fn quick_checks_agree_with_the_full_check() {
        let v = Validator::fix44();
        let d = v.dict();
        let full = |tag: u32, info, val: &[u8]| {
            let mut found = Found::default();
            v.check_value_in_full(tag, Some(info), 0, val, &mut found);
            found.field
        };
        let mut quick = 0;
        for tag in 1..1024u32 {
            let Some(info) = d.field(tag) else { continue };
            for b in 0..128u8 {
                if info.quick_bytes & (1 << b) != 0 {
                    quick += 1;
                    assert_eq!(full(tag, info, &[b]), None, "{tag}={b}");
                }
            }
            if info.quick_digits {
                for val in [&b"0"[..], b"42", b"123456789012345678"] {
                    assert_eq!(full(tag, info, val), None, "{tag}");
                }
            }
            if info.plain {
                assert_eq!(full(tag, info, b"any text"), None, "{tag}");
            }
        }
        assert!(quick > 100);
        assert_eq!(
            d.field(35).map(|f| f.quick_bytes & (1 << b'R') != 0),
            Some(true)
        );
        assert_eq!(d.field(52).map(|f| f.quick_bytes), Some(0));
    }

    #[test]
    fn quote_request_groups_are_annotated() {
        let f = frame(&msg(
            "R",
            "131=RFQ1|146=2|\
             55=[N/A]|48=BOND1|22=4|54=1|38=1000000|453=2|448=D1|447=D|452=1|448=D2|447=D|452=35|\
             55=[N/A]|48=BOND2|22=4|54=2|38=2000000|453=2|448=D3|447=D|452=1|802=1|523=X|803=1|448=D4|447=D|452=35|\
             58=please|",
        ));
        let mut d = Decoder::new(512);
        let mut m = d.decode(&f).unwrap();
        Validator::fix44().validate(&mut m).unwrap();
        assert_eq!(m.get(131), Some(&b"RFQ1"[..]));
        assert_eq!(m.get(58), Some(&b"please"[..]));
        assert_eq!(m.get(448), None, "PartyID is never top level here");
        let mut seen = Vec::new();
        for leg in m.group(146) {
            let parties: Vec<(String, String)> = leg
                .group(453)
                .map(|p| {
                    let s = |t| String::from_utf8_lossy(p.get(t).unwrap()).into_owned();
                    (s(448), s(452))
                })
                .collect();
            seen.push((leg.get(48).unwrap().to_vec(), leg.get_u64(38), parties));
        }
        let p = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            seen,
            vec![
                (
                    b"BOND1".to_vec(),
                    Some(1_000_000),
                    vec![p("D1", "1"), p("D2", "35")]
                ),
                (
                    b"BOND2".to_vec(),
                    Some(2_000_000),
                    vec![p("D3", "1"), p("D4", "35")]
                ),
            ]
        );
        let refs = m.field_refs();
        let at = |tag| refs.iter().position(|r| r.tag == tag).unwrap();
        assert_eq!((refs[at(146)].depth, refs[at(146)].group), (0, NO_GROUP));
        assert_eq!(
            (refs[at(48)].depth, refs[at(48)].group),
            (1, at(146) as u16)
        );
        assert_eq!(
            (refs[at(448)].depth, refs[at(448)].group),
            (2, at(453) as u16)
        );
        assert_eq!(
            (refs[at(523)].depth, refs[at(523)].group),
            (3, at(802) as u16)
        );
        let sub: Vec<_> = m
            .group(146)
            .nth(1)
            .unwrap()
            .group(453)
            .next()
            .unwrap()
            .group(802)
            .collect();
        assert_eq!(sub.len(), 1);
        assert_eq!(sub[0].get(523), Some(&b"X"[..]));
    }

    #[test]
    fn mangled_messages_never_panic() {
        let base = frame(&msg(
            "R",
            "131=RFQ1|146=2|55=A|54=1|453=1|448=D1|452=1|55=B|453=1|448=D2|802=1|523=X|58=x|",
        ));
        let v = Validator::fix44();
        let mut d = Decoder::new(512);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rejected = 0;
        for _ in 0..3000 {
            let mut f = base.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = 20 + (state as usize % (f.len() - 27));
                f[i] = b"0123456789=|AZ-.\x01"[(state >> 40) as usize % 17];
            }
            if let Ok(mut m) = d.decode(&f) {
                if v.validate(&mut m).is_err() {
                    rejected += 1;
                }
            }
        }
        assert!(rejected > 0);
    }
}
