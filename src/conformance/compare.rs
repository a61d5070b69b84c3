//! Comparing a received message with an `E` line of a script.
//!
//! Owns the matching rules, which follow QuickFIX's own runner and `fields.fmt`:
//! - the same fields in the same order, the same tags, the same values, except:
//! - CheckSum (10): any three digits. The frame was already checked by the framer, so the
//!   value is also the true checksum of what was received.
//! - BodyLength (9): any number. The framer already checked it is the true length of the
//!   received body, which, once every other field matches, is all an expected value could
//!   add; the literal values in the scripts cannot be used as written because they assume
//!   one timestamp precision and one Text wording (24 of the 510 `9=` values in the two
//!   suites do not even match the lines they are written on). An `E` line without 9 or 10
//!   (e.g. `2d_GarbledMessage.def`) simply does not compare them.
//! - SendingTime (52), TransactTime (60), OrigSendingTime (122), OrigTime (42), and any
//!   field written as `<TIME...>`: any valid FIX UTCTimestamp, with or without fractional
//!   seconds.
//! - Text (58): compared by presence only, not wording (the two suites word the same
//!   rejections differently; Text is free-form in FIX). Runner output says so.
//!
//! The two suites record two engines, and they differ: QuickFIX/J names RefTagID (371) on
//! the session's own Rejects, explains Logouts in Text, sends a Logout before closing on a
//! bad Logon, drops empty groups from echoes; QuickFIX/C++ does none of that. Our session
//! layer can behave either way (`fix::session::Compat`), so each suite is run against our
//! stack configured like its reference engine, under [`MatchRules::STRICT`] (QuickFIX/C++
//! suite) or [`MatchRules::QUICKFIX_J`] (QuickFIX/J suite). The latter adds one rule, the
//! QuickFIX/J runner's own: a SendingTime (52) or TransactTime (60) the expected line does
//! not name is accepted (that runner ignores timestamp fields, and 1d, QFJ648, QFJ650 and
//! MinQty44 expect messages without them).
//!
//! [`MatchRules::RECONCILED`] is a looser mode for running one engine configuration against
//! both suites, and says so in every report: it also accepts an extra Text (58), an extra
//! RefTagID (371) in a Reject, an extra empty repeating group (NumInGroup `=0`) and, in the
//! driver, a Logout before the close at `eDISCONNECT`. An extra field is only skipped when
//! the expected line does not carry that tag at all, so the order and values of everything
//! expected are still checked.
//!
//! Pure functions over byte slices: no I/O, no clock, never panics on any input.

use std::sync::OnceLock;

use fefix::dict::FixDatatype;

use super::script::{parse_tag, ExpectedField, ExpectedMessage};
use crate::fix::SOH;
use crate::time::parse_utc_timestamp;

/// Which comparison rules apply (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchRules {
    /// Accept a SendingTime (52) or TransactTime (60) the expected line does not name (the
    /// QuickFIX/J runner's rule).
    pub unnamed_timestamps: bool,
    /// Also accept the extra fields listed in the module docs, and a Logout before an
    /// expected disconnect.
    pub reconcile_suites: bool,
}

impl MatchRules {
    /// Same fields in the same order; only the form-compared tags and Text differ.
    pub const STRICT: MatchRules = MatchRules {
        unnamed_timestamps: false,
        reconcile_suites: false,
    };
    /// `STRICT` plus the QuickFIX/J runner's rule for timestamp fields.
    pub const QUICKFIX_J: MatchRules = MatchRules {
        unnamed_timestamps: true,
        reconcile_suites: false,
    };
    /// `QUICKFIX_J` plus the tolerances that let one engine configuration pass both suites.
    pub const RECONCILED: MatchRules = MatchRules {
        unnamed_timestamps: true,
        reconcile_suites: true,
    };

    /// One line for reports.
    pub fn summary(self) -> &'static str {
        if self.reconcile_suites {
            RECONCILED_SUMMARY
        } else if self.unnamed_timestamps {
            QUICKFIX_J_SUMMARY
        } else {
            RULES_SUMMARY
        }
    }
}

/// Whether `tag` is a NumInGroup field in the FIX 4.4 dictionary (built once).
fn is_num_in_group(tag: u32) -> bool {
    static TABLE: OnceLock<Vec<u32>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let dict = fefix::Dictionary::fix44();
        let mut tags: Vec<u32> = dict
            .iter_fields()
            .filter(|f| f.data_type().basetype() == FixDatatype::NumInGroup)
            .map(|f| u32::from(f.tag().get()))
            .collect();
        tags.sort_unstable();
        tags
    });
    table.binary_search(&tag).is_ok()
}

/// How one expected field is compared with the received one at the same position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    Exact,
    /// Any decimal number (its truth is checked by the framer).
    BodyLength,
    /// Any three digits (its truth is checked by the framer).
    CheckSum,
    /// Any valid UTCTimestamp.
    Timestamp,
    /// Any non-empty value.
    Presence,
}

/// Tags compared by form rather than value (`fields.fmt`).
pub const TIMESTAMP_TAGS: [u32; 4] = [52, 60, 122, 42];
/// Text: compared by presence.
pub const TEXT_TAG: u32 = 58;

/// One line for reports that says what is not compared literally.
pub const RULES_SUMMARY: &str = "fields compared in order and by value, except: \
     10 and 9 by form (the framer checks they are true), 52/60/122/42 as any UTCTimestamp, \
     58 (Text) by presence only, not wording";
/// `RULES_SUMMARY` plus the QuickFIX/J runner's timestamp rule.
pub const QUICKFIX_J_SUMMARY: &str = "fields compared in order and by value, except: \
     10 and 9 by form (the framer checks they are true), 52/60/122/42 as any UTCTimestamp, \
     58 (Text) by presence only, not wording; as QuickFIX/J's runner, a 52 or 60 the expected \
     line does not name is accepted";

/// `QUICKFIX_J_SUMMARY` plus the reconciling tolerances.
pub const RECONCILED_SUMMARY: &str = "fields compared in order and by value, except: \
     10 and 9 by form (the framer checks they are true), 52/60/122/42 as any UTCTimestamp, \
     58 (Text) by presence only, not wording; reconciling the two suites, an extra 58, \
     371 (in a Reject), 52, 60 or NumInGroup=0 the expected line does not name is accepted, \
     and so is a Logout before an expected disconnect";

pub fn rule_for(field: &ExpectedField) -> FieldRule {
    let v = field.value.as_slice();
    match field.tag {
        9 => FieldRule::BodyLength,
        10 => FieldRule::CheckSum,
        TEXT_TAG => FieldRule::Presence,
        t if TIMESTAMP_TAGS.contains(&t) => FieldRule::Timestamp,
        _ if v.starts_with(b"<TIME") && v.ends_with(b">") => FieldRule::Timestamp,
        _ => FieldRule::Exact,
    }
}

/// A received field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Got<'a> {
    tag: u32,
    raw: &'a [u8],
    value: &'a [u8],
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace(char::from(SOH), "|")
}

/// Splits a received frame into fields. Raw data fields containing SOH do not occur in the
/// scripts' messages; such a field would show up as a malformed field and fail the match.
fn received_fields(frame: &[u8]) -> Result<Vec<Got<'_>>, String> {
    let body = frame.strip_suffix(&[SOH]).unwrap_or(frame);
    let mut out = Vec::new();
    for (i, raw) in body.split(|&b| b == SOH).enumerate() {
        let eq = raw.iter().position(|&b| b == b'=');
        let tag = eq.and_then(|eq| parse_tag(&raw[..eq]));
        match (eq, tag) {
            (Some(eq), Some(tag)) => out.push(Got {
                tag,
                raw,
                value: &raw[eq + 1..],
            }),
            _ => {
                return Err(format!(
                    "received field {} {:?} is not tag=value",
                    i + 1,
                    show(raw)
                ))
            }
        }
    }
    Ok(out)
}

/// Whether a received field the expected line does not name may be skipped.
fn tolerated_extra(have: &Got<'_>, received_msg_type: &[u8]) -> bool {
    match have.tag {
        TEXT_TAG => !have.value.is_empty(),
        371 => {
            received_msg_type == b"3"
                && !have.value.is_empty()
                && have.value.iter().all(u8::is_ascii_digit)
        }
        52 | 60 => parse_utc_timestamp(have.value).is_some(),
        t => have.value == b"0" && is_num_in_group(t),
    }
}

fn check_value(want: &ExpectedField, have: &Got<'_>) -> bool {
    match rule_for(want) {
        FieldRule::Exact => want.value == have.value,
        FieldRule::BodyLength => {
            !have.value.is_empty() && have.value.iter().all(u8::is_ascii_digit)
        }
        FieldRule::CheckSum => have.value.len() == 3 && have.value.iter().all(u8::is_ascii_digit),
        FieldRule::Timestamp => parse_utc_timestamp(have.value).is_some(),
        FieldRule::Presence => !have.value.is_empty(),
    }
}

/// Checks `received` (one whole frame, BodyLength and CheckSum already verified) against
/// `expected` under `rules`. `Err` carries the first difference, in words; "field N" counts
/// the expected line's fields from 1.
pub fn compare(
    expected: &ExpectedMessage,
    received: &[u8],
    rules: MatchRules,
) -> Result<(), String> {
    let mut got = received_fields(received)?;
    let expects = |tag| expected.fields.iter().any(|f: &ExpectedField| f.tag == tag);
    // A line written without BodyLength / CheckSum does not compare them.
    if !expects(10) && got.last().is_some_and(|g| g.tag == 10) {
        got.pop();
    }
    if !expects(9) && got.get(1).is_some_and(|g| g.tag == 9) {
        got.remove(1);
    }
    let msg_type = got
        .iter()
        .find(|g| g.tag == 35)
        .map_or(&b""[..], |g| g.value);
    let skippable = |have: &Got<'_>| {
        let unnamed = !expects(have.tag);
        let timestamp = matches!(have.tag, 52 | 60) && parse_utc_timestamp(have.value).is_some();
        (rules.unnamed_timestamps && unnamed && timestamp)
            || (rules.reconcile_suites && unnamed && tolerated_extra(have, msg_type))
    };

    let (mut i, mut j) = (0usize, 0usize);
    while i < expected.fields.len() && j < got.len() {
        let (want, have) = (&expected.fields[i], &got[j]);
        let pos = i + 1;
        if want.tag != have.tag {
            if skippable(have) {
                j += 1;
                continue;
            }
            return Err(format!(
                "field {pos}: expected {}={}, received {}",
                want.tag,
                show(&want.value),
                show(have.raw)
            ));
        }
        if !check_value(want, have) {
            let how = match rule_for(want) {
                FieldRule::Exact => "",
                FieldRule::BodyLength => " (any number)",
                FieldRule::CheckSum => " (any three digits)",
                FieldRule::Timestamp => " (any UTCTimestamp)",
                FieldRule::Presence => " (any text)",
            };
            return Err(format!(
                "field {pos}: expected {}={}{how}, received {}",
                want.tag,
                show(&want.value),
                show(have.raw)
            ));
        }
        i += 1;
        j += 1;
    }
    while j < got.len() && skippable(&got[j]) {
        j += 1;
    }
    let n_want = expected.fields.len();
    if j < got.len() {
        return Err(format!(
            "field {}: received extra field {} ({} fields, expected {n_want})",
            n_want + 1,
            show(got[j].raw),
            got.len()
        ));
    }
    if i < n_want {
        let missing = &expected.fields[i];
        return Err(format!(
            "field {}: expected {}={}, received nothing more ({} fields, expected {n_want})",
            i + 1,
            missing.tag,
            show(&missing.value),
            got.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::script::{Action, Script};

    fn soh(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }
    fn expected(line: &str) -> ExpectedMessage {
        match Script::parse(&soh(&format!("E{line}")))
            .expect("parses")
            .steps
            .remove(0)
            .action
        {
            Action::Expect { expected, .. } => expected,
            other => panic!("{other:?}"),
        }
    }
    fn check(exp: &str, got: &str) -> Result<(), String> {
        let strict = compare(&expected(exp), &soh(got), MatchRules::STRICT);
        let reconciled = compare(&expected(exp), &soh(got), MatchRules::RECONCILED);
        // Reconciling only ever accepts more.
        assert!(
            strict.is_err() || reconciled.is_ok(),
            "{strict:?} {reconciled:?}"
        );
        strict
    }
    fn check_reconciled(exp: &str, got: &str) -> Result<(), String> {
        compare(&expected(exp), &soh(got), MatchRules::RECONCILED)
    }

    const HB_EXP: &str = "8=FIX.4.4|9=51|35=0|34=2|49=ISLD|52=00000000-00:00:00.000|56=TW44|10=0|";

    #[test]
    fn equal_messages_match_with_any_timestamp_precision() {
        assert_eq!(
            check(
                HB_EXP,
                "8=FIX.4.4|9=51|35=0|34=2|49=ISLD|52=20240101-12:00:00.123|56=TW44|10=017|"
            ),
            Ok(())
        );
        assert_eq!(
            check(
                HB_EXP,
                "8=FIX.4.4|9=47|35=0|34=2|49=ISLD|52=20240101-12:00:00|56=TW44|10=201|"
            ),
            Ok(())
        );
    }

    #[test]
    fn a_different_value_is_the_first_mismatch() {
        let e = check(
            HB_EXP,
            "8=FIX.4.4|9=51|35=0|34=3|49=ISLD|52=20240101-12:00:00.123|56=TW44|10=017|",
        )
        .unwrap_err();
        assert_eq!(e, "field 4: expected 34=2, received 34=3");
    }

    #[test]
    fn order_and_count_matter() {
        let e = check(
            HB_EXP,
            "8=FIX.4.4|9=51|35=0|49=ISLD|34=2|52=20240101-12:00:00.123|56=TW44|10=017|",
        )
        .unwrap_err();
        assert!(
            e.starts_with("field 4: expected 34=2, received 49=ISLD"),
            "{e}"
        );
        let e = check(
            HB_EXP,
            "8=FIX.4.4|9=51|35=0|34=2|49=ISLD|52=20240101-12:00:00.123|56=TW44|\
             112=X|10=017|",
        )
        .unwrap_err();
        assert!(e.starts_with("field 8: expected 10=0"), "{e}");
        let e = check(
            "8=FIX.4.4|35=0|34=2|",
            "8=FIX.4.4|9=9|35=0|34=2|58=hi|10=017|",
        )
        .unwrap_err();
        assert!(e.starts_with("field 4: received extra field 58=hi"), "{e}");
        let e = check(
            "8=FIX.4.4|35=0|34=2|58=x|",
            "8=FIX.4.4|9=9|35=0|34=2|10=017|",
        )
        .unwrap_err();
        assert!(
            e.starts_with("field 4: expected 58=x, received nothing"),
            "{e}"
        );
    }

    #[test]
    fn timestamps_must_be_well_formed() {
        let e = check(
            HB_EXP,
            "8=FIX.4.4|9=51|35=0|34=2|49=ISLD|52=yesterday|56=TW44|10=017|",
        )
        .unwrap_err();
        assert!(e.contains("(any UTCTimestamp)"), "{e}");
        // A placeholder in an expected line (QuickFIX/J scripts write 52=<TIME>).
        assert_eq!(
            check(
                "8=FIX.4.4|35=0|34=2|52=<TIME>|",
                "8=FIX.4.4|9=9|35=0|34=2|52=20240101-12:00:00|10=017|"
            ),
            Ok(())
        );
    }

    #[test]
    fn text_is_compared_by_presence() {
        let exp = "8=FIX.4.4|35=3|58=Incorrect data format for value|373=6|";
        assert_eq!(
            check(
                exp,
                "8=FIX.4.4|9=9|35=3|58=Incorrect data format for value, field=38|373=6|10=017|"
            ),
            Ok(())
        );
        assert!(check(exp, "8=FIX.4.4|9=9|35=3|373=6|10=017|").is_err());
        assert!(check(exp, "8=FIX.4.4|9=9|35=3|58=|373=6|10=017|").is_err());
    }

    #[test]
    fn lines_without_length_and_checksum_ignore_them() {
        assert_eq!(
            check(
                "8=FIX.4.4|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|",
                "8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52=20240101-12:00:00.000|56=TW44|98=0|\
                 108=30|10=123|"
            ),
            Ok(())
        );
        // but a checksum that is not three digits is refused where one is expected
        let e = check(
            HB_EXP,
            "8=FIX.4.4|9=51|35=0|34=2|49=ISLD|52=20240101-12:00:00|56=TW44|10=17|",
        )
        .unwrap_err();
        assert!(e.contains("any three digits"), "{e}");
    }

    #[test]
    fn garbage_received_is_a_mismatch_not_a_panic() {
        assert!(check(HB_EXP, "").is_err());
        assert!(check(HB_EXP, "garbage").is_err());
        assert!(check(HB_EXP, "8=FIX.4.4|=|x=y|").is_err());
        assert!(check(HB_EXP, "8=FIX.4.4|9=5|").is_err());
    }

    #[test]
    fn reconciling_accepts_only_the_listed_extra_fields() {
        // 2k: a Logout with a Text the C++ suite does not write.
        let logout = "8=FIX.4.4|35=5|34=3|49=ISLD|52=<TIME>|56=TW44|";
        let with_text = "8=FIX.4.4|9=9|35=5|34=3|49=ISLD|52=20240101-12:00:00|56=TW44|\
                         58=CompID problem|10=017|";
        assert!(check(logout, with_text).is_err());
        assert_eq!(check_reconciled(logout, with_text), Ok(()));
        // 11c: RefTagID in a Reject, only in a Reject.
        let reject = "8=FIX.4.4|35=3|45=0|58=x|372=4|373=5|";
        let with_ref = "8=FIX.4.4|9=9|35=3|45=0|58=x|371=36|372=4|373=5|10=017|";
        assert!(check(reject, with_ref).is_err());
        assert_eq!(check_reconciled(reject, with_ref), Ok(()));
        assert!(check_reconciled(
            "8=FIX.4.4|35=5|45=0|",
            "8=FIX.4.4|9=9|35=5|45=0|371=36|10=017|"
        )
        .is_err());
        // QFJ648: a Logout written without SendingTime.
        assert_eq!(
            check_reconciled(
                "8=FIX.4.4|35=5|34=1|49=ISLD|56=TW|58=x|",
                "8=FIX.4.4|9=9|35=5|34=1|49=ISLD|52=20240101-12:00:00.000|56=TW|58=y|10=017|"
            ),
            Ok(())
        );
        // MinQty44: an echoed TransactTime.
        assert_eq!(
            check_reconciled(
                "8=FIX.4.4|35=D|11=id|110=9|",
                "8=FIX.4.4|9=9|35=D|11=id|60=20240101-12:00:00|110=9|10=017|"
            ),
            Ok(())
        );
        // 21: an empty group, but not a non-empty one, nor a zero in a non-group field.
        let sec_def = "8=FIX.4.4|35=d|336=ONE_MAIN|";
        assert_eq!(
            check_reconciled(sec_def, "8=FIX.4.4|9=9|35=d|336=ONE_MAIN|454=0|10=017|"),
            Ok(())
        );
        assert!(
            check_reconciled(sec_def, "8=FIX.4.4|9=9|35=d|336=ONE_MAIN|454=1|10=017|").is_err()
        );
        assert!(check_reconciled(sec_def, "8=FIX.4.4|9=9|35=d|336=ONE_MAIN|38=0|10=017|").is_err());
        // Anything else extra is still refused.
        assert!(check_reconciled(
            logout,
            "8=FIX.4.4|9=9|35=5|34=3|49=ISLD|52=20240101-12:00:00|\
             56=TW44|43=Y|10=017|"
        )
        .is_err());
    }

    #[test]
    fn reconciling_never_excuses_an_expected_field_out_of_order() {
        // 58 is expected, so a 58 in the wrong place is not an "extra" one.
        let e = check_reconciled(
            "8=FIX.4.4|35=3|45=2|58=x|373=6|",
            "8=FIX.4.4|9=9|35=3|58=x|45=2|373=6|10=017|",
        )
        .unwrap_err();
        assert!(
            e.starts_with("field 3: expected 45=2, received 58=x"),
            "{e}"
        );
    }
}
